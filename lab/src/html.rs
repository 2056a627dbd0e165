//! `index.html`: the one page of a sweep a person opens, beside `results.json`.
//!
//! It shows what the other outputs show, together: the setup, the summary, a table of the points
//! with each point's verdict, the plots, and each point's self-checks with the attempts that were
//! measured again and why. It is written from the same [`Rendered`] as the table and the plots,
//! so it says what they say.
//!
//! Closed sweeps ([`render_closed_html`], from [`ClosedRendered`]) and variability sweeps
//! ([`render_variability_html`], from [`VariabilityRendered`]) have a page of the same make:
//! the same head, style, setup table, summary list, checks section and text table, with a row
//! per N or per C² and the reference of every point named. The parts are shared so the three
//! pages cannot drift apart.
//!
//! The page is self-contained: the plots are inline SVG, the style is a small embedded `<style>`,
//! and it loads nothing (no scripts, fonts, images or style sheets, from the network or beside
//! it), so it opens the same from a results directory copied anywhere, offline, or attached to a
//! message. The only links are relative ones to the files of the same directory and fragments
//! within the page. Every string from the results file (URLs, versions, check names, notes) is
//! escaped with [`crate::svg::escape`], which is enough for HTML text and double-quoted attribute
//! values as it is for XML. A results file written before the lab checked its points (no
//! verdict) shows "—" where the verdict, the attempts and the checks would be.
use std::fmt::Write as _;

use crate::analysis::PointAnalysis;
use crate::closed::{CLOSED_CSV, ClosedAnalysis, ClosedRendered};
use crate::record::{
    Check, ClosedPointRecord, PointRecord, RESULTS_JSON, RejectedAttempt, ResultsFile,
    VariabilityPoint, Verdict,
};
use crate::report::{self, RESULTS_CSV, Rendered, TABLE_TXT};
use crate::svg::escape;
use crate::table;
use crate::variability::{self, Family, VariabilityAnalysis, VariabilityRendered};

/// What stands where a value does not exist.
const NONE: &str = "—";

/// The page's style: readable tables, plots scaled to the width, failed points in red.
const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;\
max-width:1200px;padding:0 1.5rem 3rem;color:#1b1b1b;background:#fff;line-height:1.4}
h1{font-size:1.6rem;margin:1.5rem 0 .3rem}h2{font-size:1.25rem;margin:2rem 0 .6rem;\
border-bottom:1px solid #ddd;padding-bottom:.2rem}h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
.subtitle{color:#555;margin:0 0 .8rem}nav a{margin-right:1rem}
table{border-collapse:collapse;font-size:.9rem;margin:.4rem 0}
th,td{border:1px solid #d4d4d4;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3;font-weight:600}\
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.kv th{width:14rem}
tr.failed td{background:#fde4e1}tr.failed td.verdict,.bad{color:#a1000e;font-weight:700}
.pass{color:#0b6b2e}.muted{color:#666}td.verdict a{color:inherit}
figure{margin:1rem 0 2rem}figure svg{max-width:100%;height:auto;display:block}
figcaption{color:#555;font-size:.9rem}
pre{background:#f7f7f7;padding:.8rem;overflow-x:auto;font-size:.8rem}
";

fn t1(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| NONE.to_owned(), |v| format!("{v:.1}"))
}

fn pct(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| NONE.to_owned(), |v| format!("{:+.2}%", v * 100.0))
}

fn ci(c: Option<(f64, f64)>) -> String {
    c.map_or_else(|| NONE.to_owned(), |(lo, hi)| format!("[{lo:.1}, {hi:.1}]"))
}

fn ks(v: Option<f64>) -> String {
    v.map_or_else(|| NONE.to_owned(), |v| format!("{v:.4}"))
}

/// A check's value or limit with four significant digits (they range from ratios near 1 to
/// microseconds in the thousands).
fn sig(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let mag = v.abs().log10().floor();
    if !(-4.0..15.0).contains(&mag) {
        return format!("{v:.3e}");
    }
    let decimals = (3.0 - mag).clamp(0.0, 7.0) as usize;
    format!("{v:.decimals$}")
}

/// `2026-12-01T15:04:39Z` as `2026-12-01 15:04:39 UTC`; anything else as it is.
fn human_date(iso: &str) -> String {
    match iso.strip_suffix('Z') {
        Some(s) if s.len() == 19 && s.as_bytes().get(10) == Some(&b'T') => {
            format!("{} {} UTC", &s[..10], &s[11..])
        }
        _ => iso.to_owned(),
    }
}

/// An SVG document without its XML declaration, which HTML does not allow inside a page.
fn inline_svg(doc: &str) -> &str {
    let d = doc.trim_start();
    match d.strip_prefix("<?xml").and_then(|r| r.split_once("?>")) {
        Some((_, rest)) => rest.trim_start(),
        None => d,
    }
}

fn verdict_cell(rec: Option<&PointRecord>) -> (&'static str, String, String) {
    verdict_cells(rec.and_then(|r| r.verdict.map(|v| (v, r.attempts))))
}

/// (row class, verdict cell, attempts cell) of a verdict and its number of attempts.
fn verdict_cells(v: Option<(Verdict, u32)>) -> (&'static str, String, String) {
    match v {
        Some((Verdict::Ok, n)) => ("ok", "ok".into(), n.to_string()),
        Some((Verdict::Failed, n)) => ("failed", "FAILED".into(), n.to_string()),
        None => ("unchecked", NONE.into(), NONE.into()),
    }
}

/// The verdict cell's text, linked to the point's checks when it has a verdict.
fn verdict_link(id: usize, checked: bool, verdict: String) -> String {
    if checked {
        format!("<a href=\"#checks-{id}\">{verdict}</a>")
    } else {
        verdict
    }
}

/// Table cells, each with its class (empty: none); the text is already HTML.
fn cells(o: &mut String, cells: &[(&str, String)]) {
    for (class, text) in cells {
        if class.is_empty() {
            let _ = write!(o, "<td>{text}</td>");
        } else {
            let _ = write!(o, "<td class=\"{class}\">{text}</td>");
        }
    }
}

fn setup(o: &mut String, file: &ResultsFile, model_name: &str) {
    let c = &file.config;
    let rhos: Vec<String> = c.rhos.iter().map(|r| format!("{r}")).collect();
    let kv: Vec<(&str, String)> = vec![
        ("model", escape(model_name)),
        ("service rate μ per server", format!("{}/s", c.mu)),
        ("servers c", escape(&c.servers)),
        (
            "capacity K",
            c.capacity.map_or_else(|| "none".into(), |k| k.to_string()),
        ),
        ("service distribution", escape(&c.service)),
        ("loads ρ", escape(&rhos.join(", "))),
        ("measured per point", format!("{} s", c.duration_s)),
        (
            "overhead run per point",
            format!("{} s", c.overhead_duration_s),
        ),
        (
            "durations chosen by",
            if c.quick {
                "--quick (short runs: wide intervals, early transients)".into()
            } else {
                "the flags".into()
            },
        ),
        ("seed", c.seed.to_string()),
        ("URL", escape(&c.url)),
        (
            "overhead URL",
            c.overhead_url
                .as_deref()
                .map_or_else(|| "not measured".into(), escape),
        ),
        ("qload version", escape(&file.qload_version)),
        ("started", escape(&human_date(&file.created))),
        ("results format", escape(&file.format)),
    ];
    kv_section(o, &kv);
}

/// The setup section: one row per (name, value); the values are already HTML.
fn kv_section(o: &mut String, kv: &[(&str, String)]) {
    o.push_str("<section id=\"setup\">\n<h2>Setup</h2>\n<table class=\"kv\">\n");
    for (k, v) in kv {
        let _ = writeln!(o, "<tr><th scope=\"row\">{k}</th><td>{v}</td></tr>");
    }
    o.push_str("</table>\n</section>\n");
}

/// One point's verdict and checks, whatever the sweep: what the summary's list of failed points
/// and the checks section need.
struct PointChecks<'a> {
    /// The point's position: the anchors `point-{id}` and `checks-{id}`.
    id: usize,
    /// What names the point: `ρ = 0.40`, `N = 4`, `C² = 4 (h2:4)` (HTML).
    label: String,
    verdict: Option<Verdict>,
    attempts: u32,
    checks: &'a [Check],
    rejected: &'a [RejectedAttempt],
}

impl<'a> PointChecks<'a> {
    fn of(id: usize, label: String, p: &'a PointRecord) -> Self {
        PointChecks {
            id,
            label,
            verdict: p.verdict,
            attempts: p.attempts,
            checks: &p.checks,
            rejected: &p.rejected,
        }
    }
}

/// The summary's line on failed points, linked to their checks, and whether it reports a miss.
fn failed_item(points: &[PointChecks]) -> (bool, String) {
    let checked: Vec<&PointChecks> = points.iter().filter(|p| p.verdict.is_some()).collect();
    let failed: Vec<&PointChecks> = checked
        .iter()
        .copied()
        .filter(|p| p.verdict == Some(Verdict::Failed))
        .collect();
    if checked.is_empty() {
        (
            false,
            format!("Failed points: {NONE} (recorded before the lab checked its points)."),
        )
    } else if failed.is_empty() {
        (
            false,
            format!(
                "Every checked point passed its checks ({} of {}).",
                checked.len(),
                points.len()
            ),
        )
    } else {
        let list: Vec<String> = failed
            .iter()
            .map(|p| format!("<a href=\"#checks-{}\">{}</a>", p.id, p.label))
            .collect();
        (
            true,
            format!(
                "{} of {} checked points failed their checks: {}.",
                failed.len(),
                checked.len(),
                list.join(", ")
            ),
        )
    }
}

/// The summary section: one item per line, red when it reports a miss (the text is HTML).
fn summary_section(o: &mut String, items: &[(bool, String)]) {
    o.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<ul>\n");
    for (bad, text) in items {
        let _ = writeln!(
            o,
            "<li{}>{text}</li>",
            if *bad { " class=\"bad\"" } else { "" }
        );
    }
    o.push_str("</ul>\n</section>\n");
}

/// The notes under a table of points (already HTML), if any.
fn notes_list(o: &mut String, notes: &[String]) {
    if !notes.is_empty() {
        let _ = writeln!(o, "<ul class=\"notes\">\n{}\n</ul>", notes.join("\n"));
    }
}

fn summary(o: &mut String, file: &ResultsFile, rendered: &Rendered) {
    let s = &rendered.summary;
    let mut items: Vec<(bool, String)> = Vec::new();
    if s.with_net_interval > 0 {
        items.push((
            s.covered_net < s.with_net_interval,
            format!(
                "The net 95% interval covers theory's W at {} of {} points.",
                s.covered_net, s.with_net_interval
            ),
        ));
    } else {
        items.push((
            false,
            "No net intervals (the overhead was not measured, or theory has no mean).".into(),
        ));
    }
    if let (Some(m), Some(a)) = (s.mean_err_net, s.mean_abs_err_net) {
        items.push((
            false,
            format!(
                "Mean net error {:+.2}% (mean |error| {:.2}%).",
                m * 100.0,
                a * 100.0
            ),
        ));
    }
    if s.ks_net_compared > 0 {
        items.push((
            s.ks_net_within_noise < s.ks_net_compared,
            format!(
                "The net KS distance is within sampling noise at {} of {} points{}.",
                s.ks_net_within_noise,
                s.ks_net_compared,
                s.max_ks_net
                    .map(|k| format!(" (largest {k:.4})"))
                    .unwrap_or_default()
            ),
        ));
    }
    if s.little_compared > 0 {
        items.push((
            s.little_holds < s.little_compared,
            format!(
                "Little's law: L/(X·W) is within its tolerance at {} of {} points.",
                s.little_holds, s.little_compared
            ),
        ));
    }
    items.push(failed_item(&load_checks(file)));
    items.push((
        false,
        match s.overhead_range_us {
            Some((lo, hi)) => format!("Overhead of the zero-service twin {lo:.1}–{hi:.1} µs."),
            None => "Overhead not measured.".into(),
        },
    ));
    items.push((
        s.errors > 0,
        format!("{} requests failed without a response.", s.errors),
    ));
    if file.points.len() < file.config.rhos.len() {
        items.push((
            true,
            format!(
                "Incomplete: {} of {} points measured.",
                file.points.len(),
                file.config.rhos.len()
            ),
        ));
    }
    summary_section(o, &items);
}

/// The checks of a load sweep's points, named by their load.
fn load_checks(file: &ResultsFile) -> Vec<PointChecks<'_>> {
    file.points
        .iter()
        .map(|p| PointChecks::of(p.index, format!("ρ = {:.2}", p.rho), p))
        .collect()
}

fn points_table(o: &mut String, file: &ResultsFile, points: &[PointAnalysis]) {
    let timed = points.iter().any(PointAnalysis::timed);
    let referenced = points.iter().any(|p| p.reference.is_some());
    let simulated = points.iter().any(|p| {
        p.reference
            .as_ref()
            .is_some_and(|r| r.replications.is_some())
    });
    let little = points.iter().any(|p| p.little.is_some());
    let (w, f) = if simulated {
        ("the reference's W (theory, or the simulation)", "reference")
    } else {
        ("theory's W", "theory")
    };
    let _ = write!(
        o,
        "<section id=\"points\">\n<h2>Points</h2>\n<p class=\"muted\">Times in µs; net = \
         {}; errors relative to {w}; KS = sup |F<sub>measured</sub> − \
         F<sub>{f}</sub>| of the net response time, beside the distance sampling noise alone \
         reaches at 95%{}.</p>\n<table class=\"points\">\n<thead><tr><th>#</th><th>ρ</th>\
         <th>λ/s</th><th>achieved/s</th><th>{}</th><th>measured</th><th>95% CI</th>\
         {}<th>overhead</th><th>net</th><th>net error</th><th>W in CI</th><th>KS net</th>\
         <th>KS noise</th>{}{}<th>verdict</th><th>attempts</th></tr></thead>\n<tbody>\n",
        if timed {
            "the server's own time from Server-Timing (measured − the path of the same \
             requests); overhead = the zero-service twin's, the cross-check"
        } else {
            "measured − overhead"
        },
        if little {
            "; L/XW = Little's ratio, L from the server's ∫N dt over the measured window, X the \
             accepted throughput, W the net mean (! beyond what the window's edges allow)"
        } else {
            ""
        },
        if simulated { "ref W" } else { "theory W" },
        if timed { "<th>path</th>" } else { "" },
        if referenced { "<th>ref</th>" } else { "" },
        if little { "<th>L/XW</th>" } else { "" },
    );
    for (i, p) in points.iter().enumerate() {
        let rec = file.points.get(i);
        let (class, verdict, attempts) = verdict_cell(rec);
        let index = rec.map_or(i, |r| r.index);
        let covers = match p.covers_net.or(p.covers_raw) {
            Some(true) => "<span class=\"pass\">yes</span>".to_owned(),
            Some(false) => "<span class=\"bad\">no</span>".to_owned(),
            None => NONE.to_owned(),
        };
        let verdict = verdict_link(index, rec.is_some_and(|r| r.verdict.is_some()), verdict);
        let _ = write!(o, "<tr id=\"point-{index}\" class=\"point {class}\">");
        let mut row = vec![
            ("n", (index + 1).to_string()),
            ("n", format!("{:.2}", p.rho)),
            ("n", format!("{:.1}", p.lambda)),
            ("n", format!("{:.1}", p.achieved_rate)),
            ("n", t1(p.ref_mean_us())),
            ("n", t1(p.mean_us)),
            ("n", ci(p.ci95_us)),
            ("n", t1(p.overhead_mean_us)),
            ("n", t1(p.net_mean_us)),
            ("n", pct(p.err_net)),
            ("", covers),
            ("n", ks(p.ks_net)),
            ("n", ks(p.ks_noise)),
            ("verdict", verdict),
            ("n", attempts),
        ];
        // After KS noise, before the verdict, as in the header.
        let mut at = 13;
        if referenced {
            row.insert(at, ("", escape(&table::ref_cell(p))));
            at += 1;
        }
        if little {
            let bad = p.little.is_some_and(|l| !l.holds());
            row.insert(at, (if bad { "n bad" } else { "n" }, table::little_cell(p)));
        }
        if timed {
            // After the 95% CI, before the twin's overhead, as in the header.
            row.insert(7, ("n", t1(p.path_mean_us)));
        }
        cells(o, &row);
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
    let notes: Vec<String> = points
        .iter()
        .filter_map(|p| {
            p.all_notes()
                .map(|n| format!("<li>ρ = {:.2}: {}</li>", p.rho, escape(&n)))
        })
        .collect();
    notes_list(o, &notes);
    o.push_str("</section>\n");
    classes_table(o, points);
}

/// One table per priority class: the server's mean sojourn against the reference.
fn classes_table(o: &mut String, points: &[PointAnalysis]) {
    let Some(n) = points
        .iter()
        .flat_map(|p| p.classes.iter().map(|c| usize::from(c.class) + 1))
        .max()
    else {
        return;
    };
    o.push_str(
        "<section id=\"classes\">\n<h2>Classes</h2>\n<p class=\"muted\">Times in µs; the \
         server's mean sojourn of each class over the measured window (from /metrics) against \
         the reference's (± its 95% half-width; 0 for a closed form). Class 0 is the \
         highest.</p>\n",
    );
    for k in 0..n {
        let _ = write!(
            o,
            "<h3>Class {k}</h3>\n<table class=\"points classes\" id=\"class-{k}\">\n<thead><tr>\
             <th>ρ</th><th>requests</th><th>measured</th><th>reference</th><th>± ref</th>\
             <th>error</th></tr></thead>\n<tbody>\n"
        );
        for p in points {
            let Some(c) = p.classes.iter().find(|c| usize::from(c.class) == k) else {
                continue;
            };
            let err = c
                .reference_us
                .filter(|&r| r > 0.0)
                .map(|r| (c.mean_us - r) / r);
            o.push_str("<tr>");
            cells(
                o,
                &[
                    ("n", format!("{:.2}", p.rho)),
                    ("n", c.count.to_string()),
                    ("n", t1(Some(c.mean_us))),
                    ("n", t1(c.reference_us)),
                    ("n", t1(c.reference_half_width_us)),
                    ("n", pct(err)),
                ],
            );
            o.push_str("</tr>\n");
        }
        o.push_str("</tbody>\n</table>\n");
    }
    o.push_str("</section>\n");
}

fn plots(o: &mut String, plots: &[(&str, String)]) {
    o.push_str("<section id=\"plots\">\n<h2>Plots</h2>\n");
    for (name, doc) in plots {
        let id = name.trim_end_matches(".svg");
        let name = escape(name);
        let _ = writeln!(
            o,
            "<figure id=\"plot-{}\">\n{}\n<figcaption><a href=\"{name}\">{name}</a></figcaption>\n\
             </figure>",
            escape(id),
            inline_svg(doc).trim_end()
        );
    }
    o.push_str("</section>\n");
}

fn check_rows(o: &mut String, checks: &[Check]) {
    o.push_str(
        "<table class=\"checks\">\n<thead><tr><th>check</th><th>value</th><th>limit</th>\
         <th>unit</th><th>passed</th></tr></thead>\n<tbody>\n",
    );
    for c in checks {
        let _ = writeln!(
            o,
            "<tr class=\"check {}\"><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td>{}</td><td class=\"verdict\">{}</td></tr>",
            if c.passed { "ok" } else { "failed" },
            escape(&c.name),
            sig(c.value),
            sig(c.limit),
            escape(&c.unit),
            if c.passed { "yes" } else { "NO" }
        );
    }
    o.push_str("</tbody>\n</table>\n");
}

fn checks(o: &mut String, points: &[PointChecks]) {
    o.push_str("<section id=\"checks\">\n<h2>Checks</h2>\n");
    if points.iter().all(|p| p.verdict.is_none()) {
        let _ = writeln!(
            o,
            "<p class=\"muted\">{NONE} These points were recorded before the lab checked its \
             own measurements: no verdicts, no checks.</p>"
        );
    }
    for p in points {
        let (class, verdict, _) = verdict_cells(p.verdict.map(|v| (v, p.attempts)));
        let _ = writeln!(
            o,
            "<div class=\"point-checks {class}\" id=\"checks-{}\">",
            p.id
        );
        let head = match p.verdict {
            Some(_) => format!(
                "{verdict} after {} attempt{}",
                p.attempts,
                if p.attempts == 1 { "" } else { "s" }
            ),
            None => NONE.to_owned(),
        };
        let _ = writeln!(
            o,
            "<h3>{}: <span class=\"{}\">{head}</span></h3>",
            p.label,
            match p.verdict {
                Some(Verdict::Failed) => "bad",
                Some(Verdict::Ok) => "pass",
                None => "muted",
            }
        );
        if p.verdict.is_some() {
            if p.checks.is_empty() {
                o.push_str("<p class=\"muted\">No checks recorded.</p>\n");
            } else {
                check_rows(o, p.checks);
            }
        }
        for r in p.rejected {
            let names: Vec<String> = r.failed.iter().map(|c| escape(&c.name)).collect();
            let _ = writeln!(
                o,
                "<p>Attempt {} was measured again: it failed {}.</p>",
                r.attempt,
                if names.is_empty() {
                    NONE.to_owned()
                } else {
                    names.join(", ")
                }
            );
            if !r.failed.is_empty() {
                check_rows(o, &r.failed);
            }
        }
        o.push_str("</div>\n");
    }
    o.push_str("</section>\n");
}

/// The page of a sweep: setup, summary, points, plots and checks (see the module docs). A pure
/// function of its arguments, so a report redrawn from the same `results.json` gives the same
/// bytes.
pub fn render_html(file: &ResultsFile, rendered: &Rendered) -> String {
    let c = &file.config;
    let (model_name, subtitle) = match c.model() {
        Ok(m) => (m.name(), report::describe(file, &m)),
        // `render` refuses such a file; the page still says what the file holds.
        Err(e) => (
            format!("servers {}, service {}", c.servers, c.service),
            format!("{e:#}"),
        ),
    };
    let mut o = page_start(
        file,
        &Head {
            title: format!("{model_name} sweep"),
            h1: format!("{model_name}: load sweep"),
            subtitle,
            csv: RESULTS_CSV,
        },
        &rendered.plots,
    );
    setup(&mut o, file, &model_name);
    summary(&mut o, file, rendered);
    points_table(&mut o, file, &rendered.points);
    plots(&mut o, &rendered.plots);
    checks(&mut o, &load_checks(file));
    page_end(&mut o, &rendered.table);
    o
}

/// What the head of a page says (plain text: [`page_start`] escapes it).
struct Head {
    /// The document's title, before the date.
    title: String,
    /// The heading, before "of" and the date.
    h1: String,
    /// The line under the heading.
    subtitle: String,
    /// The CSV of the sweep, linked in the navigation.
    csv: &'static str,
}

/// The document up to and including the header: the style, the title, the navigation through
/// the sections and to the files of the directory. Every sweep's page starts so.
fn page_start(file: &ResultsFile, head: &Head, plots: &[(&str, String)]) -> String {
    let date = human_date(&file.created);
    let mut o =
        String::with_capacity(16 * 1024 + plots.iter().map(|(_, d)| d.len()).sum::<usize>());
    let csv = head.csv;
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}, {} — queuelab</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <header>\n<h1>{} of {}</h1>\n<p class=\"subtitle\">{}</p>\n\
         <nav><a href=\"#setup\">setup</a><a href=\"#summary\">summary</a>\
         <a href=\"#points\">points</a><a href=\"#plots\">plots</a><a href=\"#checks\">checks</a>\
         <a href=\"#table\">table</a> files: <a href=\"{RESULTS_JSON}\">{RESULTS_JSON}</a> \
         <a href=\"{csv}\">{csv}</a> <a href=\"{TABLE_TXT}\">{TABLE_TXT}</a></nav>\n\
         </header>\n",
        escape(&head.title),
        escape(&date),
        escape(&head.h1),
        escape(&date),
        escape(&head.subtitle),
    );
    o
}

/// The text table as `table.txt` holds it, and the end of the document.
fn page_end(o: &mut String, table: &str) {
    let _ = write!(
        o,
        "<section id=\"table\">\n<h2>The table as printed</h2>\n<pre>{}</pre>\n</section>\n\
         <footer><p class=\"muted\">Written by qlab from {RESULTS_JSON}; <code>qlab report \
         DIR</code> writes it again.</p></footer>\n</body>\n</html>\n",
        escape(table)
    );
}

/// A yes/no cell of whether an interval holds a reference (a dash where there is none).
fn covered_cell(v: Option<bool>) -> String {
    match v {
        Some(true) => "<span class=\"pass\">yes</span>".to_owned(),
        Some(false) => "<span class=\"bad\">no</span>".to_owned(),
        None => NONE.to_owned(),
    }
}

/// The mean of the values that exist.
fn mean_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().filter(|v| v.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The smallest and largest of the values that exist.
fn range_of(values: impl Iterator<Item = Option<f64>>) -> Option<(f64, f64)> {
    values
        .flatten()
        .filter(|v| v.is_finite())
        .fold(None, |r, v| match r {
            None => Some((v, v)),
            Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
        })
}

/// The warm-ups of the points: `1.0 s`, or `1.0–3.2 s` when they differ.
fn warmups(values: impl Iterator<Item = f64>) -> String {
    match range_of(values.map(Some)) {
        Some((lo, hi)) if (hi - lo).abs() < 0.05 => format!("{lo:.1} s"),
        Some((lo, hi)) => format!("{lo:.1}–{hi:.1} s"),
        None => NONE.to_owned(),
    }
}

/// The file's model, or what its configuration holds when it names none (the renderers refuse
/// such a file; a page would still say what it holds).
fn model_or_config(file: &ResultsFile) -> Result<queuelab_common::model::Model, String> {
    file.config.model().map_err(|e| {
        format!(
            "servers {}, service {} ({e:#})",
            file.config.servers, file.config.service
        )
    })
}

/// The rows of the setup every sweep shares after its own: the seed, where it measured, what
/// measured, when, and the file's format.
fn common_setup(file: &ResultsFile, kv: &mut Vec<(&str, String)>) {
    kv.push(("seed", file.config.seed.to_string()));
    kv.push(("qload version", escape(&file.qload_version)));
    kv.push(("started", escape(&human_date(&file.created))));
    kv.push(("results format", escape(&file.format)));
}

/// The page of a closed sweep (`qlab sweep --users … --think …`): the setup (model, users, think
/// time, durations, seed), the summary of the table's coverage line, a row per N with its
/// verdict and its reference named (`theory (MVA)`, `simulation, R replications ± hw`), the two
/// plots and each point's checks, in the load sweep's style and under its rules (see the module
/// docs). A pure function of its arguments.
pub fn render_closed_html(file: &ResultsFile, rendered: &ClosedRendered) -> String {
    let c = &file.config;
    let (users, think_s, records): (&[u32], f64, &[ClosedPointRecord]) = file
        .closed
        .as_ref()
        .map_or((&[], 0.0, &[]), |s| (&s.users, s.think_s, &s.points));
    let model_name = model_or_config(file).map_or_else(|e| e, |m| m.name());
    let mut o = page_start(
        file,
        &Head {
            title: format!("{model_name} closed sweep"),
            h1: format!("{model_name}: closed sweep"),
            subtitle: rendered.subtitle.clone(),
            csv: CLOSED_CSV,
        },
        &rendered.plots,
    );
    let list: Vec<String> = users.iter().map(ToString::to_string).collect();
    let mut kv: Vec<(&str, String)> =
        vec![
        ("model", escape(&model_name)),
        ("service rate μ per server", format!("{}/s", c.mu)),
        ("servers c", escape(&c.servers)),
        ("service distribution", escape(&c.service)),
        ("users N", escape(&list.join(", "))),
        (
            "think time Z",
            format!(
                "{:.3} ms per user, exponential (each user thinks, sends one request and waits \
                 for its answer)",
                think_s * 1e3
            ),
        ),
        ("measured per point", format!("{} s", c.duration_s)),
        ("warm-up per point", warmups(records.iter().map(|r| r.warmup_s))),
        (
            "reference",
            "the closed model with the think time the queue sees, Z<sub>eff</sub> = Z + the mean \
             path at that N: mean-value analysis where the model has a product form \
             (theory (MVA)), else the simulator"
                .into(),
        ),
        ("URL", escape(&c.url)),
    ];
    common_setup(file, &mut kv);
    kv_section(&mut o, &kv);
    let points = &rendered.points;
    let checks_of: Vec<PointChecks> = records
        .iter()
        .enumerate()
        .map(|(i, r)| PointChecks {
            id: i,
            label: format!("N = {}", r.users),
            verdict: r.verdict,
            attempts: r.attempts,
            checks: &r.checks,
            rejected: &r.rejected,
        })
        .collect();
    closed_summary(&mut o, users.len(), points, &checks_of);
    closed_points(&mut o, points);
    plots(&mut o, &rendered.plots);
    checks(&mut o, &checks_of);
    page_end(&mut o, &rendered.table);
    o
}

fn closed_summary(o: &mut String, planned: usize, points: &[ClosedAnalysis], pc: &[PointChecks]) {
    let mut items: Vec<(bool, String)> = Vec::new();
    let count = |f: fn(&ClosedAnalysis) -> Option<bool>| {
        let with: Vec<bool> = points.iter().filter_map(f).collect();
        (with.iter().filter(|&&c| c).count(), with.len())
    };
    for (what, (covered, with)) in [
        ("X", count(|a| a.covers_throughput)),
        ("R (net)", count(|a| a.covers_response)),
    ] {
        items.push(if with > 0 {
            (
                covered < with,
                format!(
                    "The reference's {what} is within the 95% interval of the measured {what} at \
                     {covered} of {with} points."
                ),
            )
        } else {
            (
                false,
                format!(
                    "No interval of {what} holds a reference (no reference, or too few batches)."
                ),
            )
        });
    }
    let ex = mean_of(points.iter().map(|a| a.err_throughput));
    let er = mean_of(points.iter().map(|a| a.err_response));
    if ex.is_some() || er.is_some() {
        items.push((
            false,
            format!(
                "Mean error against the reference: X {}, R {}.",
                pct(ex),
                pct(er)
            ),
        ));
    }
    if let Some((lo, hi)) = range_of(
        points
            .iter()
            .map(|a| a.little_users.map(|l| l / f64::from(a.users.max(1)))),
    ) {
        items.push((
            false,
            format!(
                "Little's law over the whole cycle: X·(R + Z)/N from {lo:.3} to {hi:.3} (it \
                 should be 1)."
            ),
        ));
    }
    let theory = points
        .iter()
        .filter(|a| {
            a.reference
                .as_ref()
                .is_some_and(|r| r.source.starts_with("theory"))
        })
        .count();
    let with = points.iter().filter(|a| a.reference.is_some()).count();
    let none = points.len() - with;
    items.push((
        none > 0,
        format!(
            "Reference: theory (MVA) at {theory} of {} points, the simulation at {}{}.",
            points.len(),
            with - theory,
            if none > 0 {
                format!(", none at {none} (see the notes)")
            } else {
                String::new()
            }
        ),
    ));
    items.push(failed_item(pc));
    let errors: u64 = points.iter().map(|a| a.errors).sum();
    items.push((
        errors > 0,
        format!("{errors} requests failed without a response."),
    ));
    if points.len() < planned {
        items.push((
            true,
            format!("Incomplete: {} of {planned} points measured.", points.len()),
        ));
    }
    summary_section(o, &items);
}

fn closed_points(o: &mut String, points: &[ClosedAnalysis]) {
    let net = points.iter().any(|a| a.response_net_us.is_some());
    let _ = write!(
        o,
        "<section id=\"points\">\n<h2>Points</h2>\n<p class=\"muted\">Times in µs; X = answers \
         per second of the measured window; R = {}; path = raw − net; Z<sub>eff</sub> = Z + the \
         mean path, the think time the queue sees and the reference's; a reference is covered \
         when the interval of measured − reference (both half-widths in quadrature) holds 0; \
         X·(R + Z) is Little's law over the cycle, which should be N.</p>\n\
         <table class=\"points\">\n<thead><tr><th>#</th><th>N</th><th>X/s</th>\
         <th>X 95% CI</th><th>X ref</th><th>X covered</th><th>{}</th>\
         <th>R 95% CI</th><th>R ref</th><th>R covered</th><th>path</th>\
         <th>Z<sub>eff</sub> ms</th><th>X·(R + Z)</th><th>reference</th><th>verdict</th>\
         <th>attempts</th></tr></thead>\n<tbody>\n",
        if net {
            "the server's own time from Server-Timing (net of the path)"
        } else {
            "the raw response time (the answers carried no Server-Timing)"
        },
        if net { "R net" } else { "R" },
    );
    for (i, a) in points.iter().enumerate() {
        let (class, verdict, attempts) = verdict_cells(a.verdict.map(|v| (v, a.attempts)));
        let verdict = verdict_link(i, a.verdict.is_some(), verdict);
        let r = a.reference.as_ref();
        let _ = write!(o, "<tr id=\"point-{i}\" class=\"point {class}\">");
        cells(
            o,
            &[
                ("n", (i + 1).to_string()),
                ("n", a.users.to_string()),
                ("n", t1(Some(a.throughput))),
                ("n", ci(a.throughput_ci)),
                ("n", t1(r.map(|r| r.throughput))),
                ("", covered_cell(a.covers_throughput)),
                ("n", t1(a.response_net_us.or(a.response_raw_us))),
                ("n", ci(a.response_net_ci_us.or(a.response_raw_ci_us))),
                ("n", t1(r.map(|r| r.response_s * 1e6))),
                ("", covered_cell(a.covers_response)),
                ("n", t1(a.path_us)),
                ("n", format!("{:.3}", a.think_eff_s * 1e3)),
                (
                    "n",
                    a.little_users
                        .filter(|l| l.is_finite())
                        .map_or_else(|| NONE.to_owned(), |l| format!("{l:.2}")),
                ),
                ("", r.map_or_else(|| NONE.to_owned(), |r| escape(&r.source))),
                ("verdict", verdict),
                ("n", attempts),
            ],
        );
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
    let notes: Vec<String> = points
        .iter()
        .filter(|a| !a.notes.is_empty())
        .map(|a| format!("<li>N = {}: {}</li>", a.users, escape(&a.notes.join("; "))))
        .collect();
    notes_list(o, &notes);
    o.push_str("</section>\n");
}

/// The page of a variability sweep (`qlab sweep --cv2 … --rho …`): the setup (the family and its
/// members, ρ, durations, seed), the summary of the table's Pollaczek–Khinchine line, a row per
/// C² with its verdict and its p99's reference named, the plot and each point's checks, in the
/// load sweep's style and under its rules (see the module docs). The sweep is named by its
/// family (`M/G/1 with the h2 family`), not by any one point's model. A pure function of its
/// arguments.
pub fn render_variability_html(file: &ResultsFile, rendered: &VariabilityRendered) -> String {
    let c = &file.config;
    let v = file.variability.as_ref();
    let family = v.map_or("", |v| v.family.as_str());
    let cv2: &[f64] = v.map_or(&[], |v| &v.cv2);
    let records: &[VariabilityPoint] = v.map_or(&[], |v| &v.points);
    let rho = v.map_or(f64::NAN, |v| v.rho);
    let model = model_or_config(file);
    let name = match &model {
        Ok(m) => variability::family_model_name(m, family),
        Err(e) => e.clone(),
    };
    let mut o = page_start(
        file,
        &Head {
            title: format!("{name} variability sweep"),
            h1: format!("{name}: variability sweep"),
            subtitle: rendered.subtitle.clone(),
            csv: RESULTS_CSV,
        },
        &rendered.plots,
    );
    let fam = Family::parse(family).ok();
    let services: Vec<String> = cv2
        .iter()
        .map(|&x| {
            fam.and_then(|f| variability::service_for(f, x).ok())
                .map_or_else(|| NONE.to_owned(), |s| s.to_string())
        })
        .collect();
    let lambda = model
        .as_ref()
        .ok()
        .map(|m| m.lambda(queuelab_common::model::Load::Rho(rho)));
    let mut kv: Vec<(&str, String)> = vec![
        ("model", escape(&name)),
        ("service rate μ per server", format!("{}/s", c.mu)),
        ("servers c", escape(&c.servers)),
        (
            "family",
            match fam {
                Some(f) => format!("{} ({})", escape(family), f.members()),
                None => escape(family),
            },
        ),
        ("C² values", escape(&variability::cv2_list(cv2))),
        ("services", escape(&services.join(", "))),
        (
            "load ρ",
            format!(
                "{} at every point, λ = {}/s (the same mean service time 1/μ at every point)",
                escape(&rho.to_string()),
                lambda.map_or_else(|| NONE.to_owned(), |l| format!("{l:.1}"))
            ),
        ),
        ("measured per point", format!("{} s", c.duration_s)),
        (
            "overhead run per point",
            if c.overhead_url.is_some() {
                format!("{} s", c.overhead_duration_s)
            } else {
                "not measured".into()
            },
        ),
        (
            "durations chosen by",
            if c.quick {
                "--quick (short runs: wide intervals, early transients)".into()
            } else {
                "the flags".into()
            },
        ),
        (
            "warm-up per point",
            warmups(records.iter().map(|r| r.point.warmup_s)),
        ),
        (
            "reference",
            "the mean: Pollaczek–Khinchine's W (exact with one server; with c &gt; 1 the \
             (1 + C²)/2 · W<sub>q</sub>(M/M/c) approximation); the p99: the simulator at the \
             point's λ, ± its 95% half-width over replications (theory's p99 where the simulator \
             gave none)"
                .into(),
        ),
        (
            "URL",
            if c.url.is_empty() {
                "a qserve started for each point, with the point's service".into()
            } else {
                escape(&c.url)
            },
        ),
        (
            "overhead URL",
            match c.overhead_url.as_deref() {
                None => "not measured".into(),
                Some("") => "the zero-service twin started with each point's qserve".into(),
                Some(u) => escape(u),
            },
        ),
    ];
    common_setup(file, &mut kv);
    kv_section(&mut o, &kv);
    let checks_of: Vec<PointChecks> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            PointChecks::of(
                i,
                format!("C² = {} ({})", r.cv2, escape(&r.service)),
                &r.point,
            )
        })
        .collect();
    variability_summary(&mut o, cv2.len(), &rendered.points, &checks_of);
    variability_points(&mut o, records, &rendered.points);
    plots(&mut o, &rendered.plots);
    checks(&mut o, &checks_of);
    page_end(&mut o, &rendered.table);
    o
}

fn variability_summary(
    o: &mut String,
    planned: usize,
    points: &[VariabilityAnalysis],
    pc: &[PointChecks],
) {
    let mut items: Vec<(bool, String)> = Vec::new();
    let with: Vec<bool> = points.iter().filter_map(|a| a.covers_pk).collect();
    let covered = with.iter().filter(|&&c| c).count();
    let approx = points.iter().any(|a| a.pk_mean_us.is_some_and(|w| !w.1));
    items.push(if with.is_empty() {
        (
            false,
            "No interval to hold the Pollaczek–Khinchine mean (no mean, or no W(PK) for this \
             queue)."
                .into(),
        )
    } else {
        (
            covered < with.len(),
            format!(
                "The net 95% interval holds the Pollaczek–Khinchine mean at {covered} of {} \
                 points{}.",
                with.len(),
                if approx {
                    " (c &gt; 1: the (1 + C²)/2 · W<sub>q</sub>(M/M/c) approximation)"
                } else {
                    ""
                }
            ),
        )
    });
    let errs: Vec<Option<f64>> = points.iter().map(VariabilityAnalysis::err_pk).collect();
    if let (Some(m), Some(a)) = (
        mean_of(errs.iter().copied()),
        mean_of(errs.iter().map(|e| e.map(f64::abs))),
    ) {
        items.push((
            false,
            format!(
                "Mean net error against W(PK) {:+.2}% (mean |error| {:.2}%).",
                m * 100.0,
                a * 100.0
            ),
        ));
    }
    let simulated = points
        .iter()
        .filter(|a| a.reference_p99_us.as_ref().is_some_and(|r| r.1.is_some()))
        .count();
    let with_ref = points
        .iter()
        .filter(|a| a.reference_p99_us.is_some())
        .count();
    let none = points.len() - with_ref;
    items.push((
        none > 0,
        format!(
            "The p99's reference is the simulation's (± its 95% half-width over replications) at \
             {simulated} of {} points, theory's at {}{}.",
            points.len(),
            with_ref - simulated,
            if none > 0 {
                format!(", none at {none}")
            } else {
                String::new()
            }
        ),
    ));
    items.push(failed_item(pc));
    items.push((
        false,
        match range_of(points.iter().map(|a| a.point.overhead_mean_us)) {
            Some((lo, hi)) => format!("Overhead of the zero-service twin {lo:.1}–{hi:.1} µs."),
            None => "Overhead not measured.".into(),
        },
    ));
    let errors: u64 = points.iter().map(|a| a.point.errors).sum();
    items.push((
        errors > 0,
        format!("{errors} requests failed without a response."),
    ));
    if points.len() < planned {
        items.push((
            true,
            format!("Incomplete: {} of {planned} points measured.", points.len()),
        ));
    }
    summary_section(o, &items);
}

fn variability_points(
    o: &mut String,
    records: &[VariabilityPoint],
    points: &[VariabilityAnalysis],
) {
    let timed = points.iter().any(|a| a.point.timed());
    let approx = points.iter().any(|a| a.pk_mean_us.is_some_and(|w| !w.1));
    let _ = write!(
        o,
        "<section id=\"points\">\n<h2>Points</h2>\n<p class=\"muted\">Times in µs; net = {}; \
         W(PK) = {}; error relative to W(PK); p99 ref = the reference's 99th percentile ± its \
         95% half-width over the simulation's replications.</p>\n<table class=\"points\">\n\
         <thead><tr><th>#</th><th>C²</th><th>service</th><th>model</th><th>W(PK)</th>\
         <th>net</th><th>net 95% CI</th><th>W(PK) in CI</th><th>error</th><th>p99 net</th>\
         <th>p99 ref</th><th>reference</th><th>verdict</th><th>attempts</th></tr></thead>\n\
         <tbody>\n",
        if timed {
            "the server's own time from Server-Timing (measured − the path of the same requests)"
        } else {
            "measured − overhead"
        },
        if approx {
            "1/μ + (1 + C²)/2 · W<sub>q</sub>(M/M/c), the approximation for c &gt; 1"
        } else {
            "Pollaczek–Khinchine's mean sojourn, 1/μ + λ(1 + C²)/(2μ²(1 − ρ))"
        },
    );
    for (i, a) in points.iter().enumerate() {
        let p = &a.point;
        let (class, verdict, attempts) = verdict_cells(p.verdict.map(|v| (v, p.attempts)));
        let verdict = verdict_link(i, p.verdict.is_some(), verdict);
        let r = a.reference_p99_us.as_ref();
        let model = records
            .get(i)
            .map_or_else(|| NONE.to_owned(), |r| escape(&r.model));
        let _ = write!(o, "<tr id=\"point-{i}\" class=\"point {class}\">");
        cells(
            o,
            &[
                ("n", (i + 1).to_string()),
                ("n", escape(&a.cv2.to_string())),
                ("", escape(&a.service)),
                ("", model),
                ("n", t1(a.pk_mean_us.map(|w| w.0))),
                ("n", t1(a.mean_us())),
                ("n", ci(a.ci95_us())),
                ("", covered_cell(a.covers_pk)),
                ("n", pct(a.err_pk())),
                ("n", t1(a.p99_net_us)),
                (
                    "n",
                    match r {
                        Some((v, Some(h), _)) => format!("{v:.1} ± {h:.1}"),
                        Some((v, None, _)) => t1(Some(*v)),
                        None => NONE.to_owned(),
                    },
                ),
                ("", r.map_or_else(|| NONE.to_owned(), |r| escape(&r.2))),
                ("verdict", verdict),
                ("n", attempts),
            ],
        );
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
    let notes: Vec<String> = points
        .iter()
        .filter_map(|a| {
            a.point
                .all_notes()
                .map(|n| format!("<li>C² = {}: {}</li>", a.cv2, escape(&n)))
        })
        .collect();
    notes_list(o, &notes);
    o.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RejectedAttempt;

    /// The lab-v1 sweep (M/M/1/3, ρ = 0.4 and 1.2), written before the checks existed.
    fn fixture() -> ResultsFile {
        serde_json::from_str(include_str!("../tests/data/lab-v1/results.json"))
            .expect("the fixture reads")
    }

    fn page(file: &ResultsFile) -> (Rendered, String) {
        let r = report::render(file).expect("render");
        let html = render_html(file, &r);
        (r, html)
    }

    fn check(name: &str, value: f64, limit: f64, passed: bool) -> Check {
        Check {
            name: name.into(),
            value,
            limit,
            unit: "ratio".into(),
            passed,
        }
    }

    /// The fixture with verdicts: ρ = 0.4 passed at once, ρ = 1.2 failed three attempts.
    fn checked() -> ResultsFile {
        let mut f = fixture();
        let ok = &mut f.points[0];
        ok.attempts = 1;
        ok.verdict = Some(Verdict::Ok);
        ok.checks = vec![check("arrival_rate", 0.998, 0.95, true)];
        let bad = &mut f.points[1];
        bad.attempts = 3;
        bad.verdict = Some(Verdict::Failed);
        bad.checks = vec![
            check("arrival_rate", 0.987, 0.95, true),
            check("send_lag_p99", 812.5, 200.0, false),
        ];
        bad.rejected = (1..=2)
            .map(|attempt| RejectedAttempt {
                attempt,
                failed: vec![check(
                    "send_lag_p99",
                    640.0 + f64::from(attempt),
                    200.0,
                    false,
                )],
            })
            .collect();
        f
    }

    /// The text of the table row with id `point-{index}`.
    fn point_row(html: &str, index: usize) -> &str {
        let start = html
            .find(&format!("<tr id=\"point-{index}\""))
            .unwrap_or_else(|| panic!("no row for point {index}"));
        let len = html[start..].find("</tr>").expect("row closed");
        &html[start..start + len]
    }

    /// Values of attribute `name` anywhere in the page (double-quoted, as this module writes).
    fn attr_values<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
        let key = format!(" {name}=\"");
        html.match_indices(&key)
            .filter_map(|(i, _)| {
                let rest = &html[i + key.len()..];
                rest.find('"').map(|end| &rest[..end])
            })
            .collect()
    }

    #[test]
    fn every_point_has_one_row() {
        for file in [fixture(), checked()] {
            let (r, html) = page(&file);
            assert_eq!(r.points.len(), 2);
            assert_eq!(html.matches("<tr id=\"point-").count(), file.points.len());
            for (p, a) in file.points.iter().zip(&r.points) {
                assert_eq!(
                    html.matches(&format!("id=\"point-{}\"", p.index)).count(),
                    1
                );
                let row = point_row(&html, p.index);
                // ρ, λ and the measured mean as the text table shows them.
                for want in [
                    format!("{:.2}", a.rho),
                    format!("{:.1}", a.lambda),
                    t1(a.mean_us),
                    t1(a.theory.as_ref().map(|t| t.mean_us)),
                ] {
                    assert!(row.contains(&want), "{want} missing in {row}");
                }
            }
        }
    }

    #[test]
    fn each_plot_is_inline_exactly_once() {
        let (r, html) = page(&fixture());
        // M/M/1/3: mean, error, CDF and blocking.
        assert_eq!(r.plots.len(), 4);
        assert_eq!(html.matches("<svg").count(), r.plots.len());
        assert!(!html.contains("<?xml"), "no XML declaration inside HTML");
        for (name, doc) in &r.plots {
            let body = inline_svg(doc).trim_end();
            assert!(
                body.starts_with("<svg") && body.ends_with("</svg>"),
                "{name}"
            );
            assert_eq!(html.matches(body).count(), 1, "{name}");
            let id = name.trim_end_matches(".svg");
            assert_eq!(html.matches(&format!("id=\"plot-{id}\"")).count(), 1);
        }
    }

    #[test]
    fn nothing_is_loaded_from_anywhere() {
        let mut f = checked();
        // URLs in the data are shown, never linked.
        f.config.url = "https://example.invalid/q".into();
        f.config.overhead_url = Some("http://example.invalid/healthz".into());
        let (_, html) = page(&f);
        assert!(html.contains("https://example.invalid/q"));
        assert_self_contained(&html);
    }

    /// The page loads nothing: no reference to another host, no script, style sheet, image or
    /// frame; links only to fragments and to files of the same directory.
    fn assert_self_contained(html: &str) {
        for name in ["src", "href", "xlink:href", "action", "poster", "data"] {
            for v in attr_values(html, name) {
                let v = v.to_ascii_lowercase();
                assert!(
                    !(v.starts_with("http:") || v.starts_with("https:") || v.starts_with("//")),
                    "{name}=\"{v}\" loads from elsewhere"
                );
            }
        }
        // Every link is a fragment of the page or a file of the directory.
        for v in attr_values(html, "href") {
            assert!(
                v.starts_with('#') || !v.contains(':') && !v.contains('/'),
                "href=\"{v}\""
            );
        }
        assert!(attr_values(html, "src").is_empty());
        for tag in [
            "<script", "<link", "<img", "<iframe", "<object", "<embed", "@import",
        ] {
            assert!(!html.contains(tag), "{tag}");
        }
        // The only url() references are the plots' own clip paths.
        for (i, _) in html.match_indices("url(") {
            assert!(html[i..].starts_with("url(#"), "{}", &html[i..i + 30]);
        }
    }

    #[test]
    fn strings_from_the_file_are_escaped() {
        let mut f = checked();
        f.config.url = "http://h/<script>alert(\"u\")</script>".into();
        f.qload_version = "<b>9</b> & 'x'".into();
        f.created = "<i>yesterday</i>".into();
        f.points[1].checks[1].name = "<img src=x onerror=alert(1)>".into();
        f.points[1].checks[1].unit = "µs\" onmouseover=\"x".into();
        f.points[1].rejected[0].failed[0].name = "</table><h1>".into();
        let (_, html) = page(&f);
        for raw in [
            "<script>",
            "<b>9</b>",
            "<i>yesterday</i>",
            "<img src=x",
            "\" onmouseover=\"x",
            "</table><h1>",
        ] {
            assert!(!html.contains(raw), "{raw:?} unescaped");
        }
        for escaped in [
            "&lt;script&gt;alert(&quot;u&quot;)&lt;/script&gt;",
            "&lt;b&gt;9&lt;/b&gt; &amp; &apos;x&apos;",
            "&lt;i&gt;yesterday&lt;/i&gt;",
            "&lt;img src=x onerror=alert(1)&gt;",
            "µs&quot; onmouseover=&quot;x",
            "&lt;/table&gt;&lt;h1&gt;",
        ] {
            assert!(html.contains(escaped), "{escaped:?} missing");
        }
        // The page's own structure is intact: one table of checks per checked point and per
        // rejected attempt.
        assert_eq!(html.matches("<table class=\"checks\">").count(), 2 + 2);
    }

    #[test]
    fn a_failed_point_is_marked() {
        let (_, html) = page(&checked());
        let ok = point_row(&html, 0);
        assert!(ok.contains("class=\"point ok\""), "{ok}");
        assert!(ok.contains("<a href=\"#checks-0\">ok</a>") && !ok.contains("FAILED"));
        let bad = point_row(&html, 1);
        assert!(bad.contains("class=\"point failed\""), "{bad}");
        assert!(bad.contains("<a href=\"#checks-1\">FAILED</a>"), "{bad}");
        assert!(bad.ends_with("<td class=\"n\">3</td>"), "attempts: {bad}");
        assert_eq!(html.matches("class=\"point failed\"").count(), 1);
        // The summary names it, the checks say which failed and which attempts were redone.
        assert!(html.contains(
            "<li class=\"bad\">1 of 2 checked points failed their checks: \
             <a href=\"#checks-1\">ρ = 1.20</a>.</li>"
        ));
        assert!(html.contains("<div class=\"point-checks failed\" id=\"checks-1\">"));
        assert!(html.contains("FAILED after 3 attempts"));
        assert!(html.contains("ok after 1 attempt<"));
        assert!(html.contains(
            "<tr class=\"check failed\"><td>send_lag_p99</td><td class=\"n\">812.5</td>\
             <td class=\"n\">200.0</td><td>ratio</td><td class=\"verdict\">NO</td></tr>"
        ));
        for a in 1..=2 {
            assert!(
                html.contains(&format!(
                    "<p>Attempt {a} was measured again: it failed send_lag_p99.</p>"
                )),
                "attempt {a}"
            );
        }
        // The CSS that makes the mark visible is there.
        assert!(STYLE.contains("tr.failed td{background:"));
    }

    #[test]
    fn a_file_from_before_the_checks_shows_dashes() {
        let (_, html) = page(&fixture());
        for i in 0..2 {
            let row = point_row(&html, i);
            assert!(row.contains("class=\"point unchecked\""), "{row}");
            assert!(
                row.ends_with(&format!(
                    "<td class=\"verdict\">{NONE}</td><td class=\"n\">{NONE}</td>"
                )),
                "{row}"
            );
        }
        assert!(!html.contains("<table class=\"checks\">"));
        assert!(!html.contains("FAILED"));
        assert!(html.contains("Failed points: — (recorded before the lab checked its points)."));
    }

    #[test]
    fn the_page_says_what_the_sweep_was() {
        let f = fixture();
        let (r, html) = page(&f);
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.ends_with("</html>\n"));
        assert!(html.contains("<title>M/M/1/3 sweep, 2026-12-01 15:04:39 UTC — queuelab</title>"));
        for want in [
            "<h1>M/M/1/3: load sweep of 2026-12-01 15:04:39 UTC</h1>",
            "<th scope=\"row\">seed</th><td>3</td>",
            "<th scope=\"row\">qload version</th><td>0.1.0</td>",
            "<th scope=\"row\">URL</th><td>http://127.0.0.1:18431/</td>",
            "<th scope=\"row\">loads ρ</th><td>0.4, 1.2</td>",
            "<th scope=\"row\">measured per point</th><td>0.4 s</td>",
        ] {
            assert!(html.contains(want), "{want}");
        }
        // The summary's numbers are those of the text table's summary line.
        let s = &r.summary;
        assert!(html.contains(&format!(
            "covers theory's W at {} of {} points",
            s.covered_net, s.with_net_interval
        )));
        let m = s.mean_err_net.expect("a net error");
        assert!(html.contains(&format!("Mean net error {:+.2}%", m * 100.0)));
        assert!(
            r.table
                .contains(&format!("mean net error {:+.2}%", m * 100.0))
        );
        assert!(html.contains(&format!(
            "within sampling noise at {} of {} points",
            s.ks_net_within_noise, s.ks_net_compared
        )));
        // A pure function: the same file gives the same bytes.
        assert_eq!(render_html(&f, &r), html);
    }

    #[test]
    fn numbers_and_dates_read_plainly() {
        assert_eq!(sig(0.998), "0.9980");
        assert_eq!(sig(812.5), "812.5");
        assert_eq!(sig(12_345.6), "12346");
        assert_eq!(sig(0.0), "0");
        assert_eq!(sig(-0.0123), "-0.01230");
        assert_eq!(sig(3e-7), "3.000e-7");
        assert_eq!(
            human_date("2026-12-01T15:04:39Z"),
            "2026-12-01 15:04:39 UTC"
        );
        assert_eq!(human_date("yesterday"), "yesterday");
        assert_eq!(inline_svg("<?xml version=\"1.0\"?>\n<svg/>"), "<svg/>");
        assert_eq!(inline_svg("<svg/>"), "<svg/>");
    }
    /// A closed sweep of M/M/1 at N = 1, 4, 16 with think time 5 ms, measured on a loaded
    /// machine: every point failed its checks after two attempts.
    fn closed_fixture() -> ResultsFile {
        serde_json::from_str(include_str!("../tests/data/closed-v1/results.json"))
            .expect("the closed fixture reads")
    }

    /// A variability sweep of the h2 family at C² = 0, 1, 4 and ρ = 0.5, measured likewise:
    /// every point failed its checks at its one attempt.
    fn variability_fixture() -> ResultsFile {
        serde_json::from_str(include_str!("../tests/data/variability-v1/results.json"))
            .expect("the variability fixture reads")
    }

    fn closed_page(file: &ResultsFile) -> (ClosedRendered, String) {
        let r = crate::closed::render(file).expect("render");
        let html = render_closed_html(file, &r);
        (r, html)
    }

    fn variability_page(file: &ResultsFile) -> (VariabilityRendered, String) {
        let r = variability::render_all(file).expect("render");
        let html = render_variability_html(file, &r);
        (r, html)
    }

    /// Each plot inline once, without its XML declaration, in a figure of its own.
    fn assert_plots_inline(html: &str, plots: &[(&str, String)]) {
        assert_eq!(html.matches("<svg").count(), plots.len());
        assert!(!html.contains("<?xml"), "no XML declaration inside HTML");
        for (name, doc) in plots {
            let body = inline_svg(doc).trim_end();
            assert_eq!(html.matches(body).count(), 1, "{name}");
            let id = name.trim_end_matches(".svg");
            assert_eq!(html.matches(&format!("id=\"plot-{id}\"")).count(), 1);
            assert!(
                html.contains(&format!("<a href=\"{name}\">{name}</a>")),
                "{name}"
            );
        }
    }

    /// Strings that must not appear raw, and what they must appear as.
    fn assert_escaped(html: &str, pairs: &[(&str, &str)]) {
        for (raw, escaped) in pairs {
            assert!(!html.contains(raw), "{raw:?} unescaped");
            assert!(html.contains(escaped), "{escaped:?} missing");
        }
    }

    /// A passing list of checks, for a point made to pass.
    fn passing() -> Vec<Check> {
        vec![
            check("send_lag_p99", 35.0, 100.0, true),
            check("errors", 0.0, 0.0, true),
        ]
    }

    #[test]
    fn a_closed_page_has_a_row_per_n_with_its_verdict_and_reference() {
        let mut f = closed_fixture();
        let c = f.closed.as_mut().expect("a closed section");
        // N = 1 passed at once; N = 4's reference came from the simulator, named as the sweep
        // names it.
        c.points[0].verdict = Some(Verdict::Ok);
        c.points[0].attempts = 1;
        c.points[0].checks = passing();
        c.points[0].rejected.clear();
        c.points[1].reference.as_mut().expect("a reference").source =
            "simulation, 10 replications ± 12.3 µs".into();
        let (r, html) = closed_page(&f);
        assert_eq!(r.points.len(), 3);
        assert_eq!(html.matches("<tr id=\"point-").count(), 3);
        for (i, a) in r.points.iter().enumerate() {
            let row = point_row(&html, i);
            for want in [
                format!("<td class=\"n\">{}</td>", a.users),
                t1(Some(a.throughput)),
                ci(a.throughput_ci),
                t1(a.reference.as_ref().map(|r| r.throughput)),
                t1(a.response_net_us),
                ci(a.response_net_ci_us),
                t1(a.reference.as_ref().map(|r| r.response_s * 1e6)),
                t1(a.path_us),
                format!("{:.3}", a.think_eff_s * 1e3),
            ] {
                assert!(row.contains(&want), "{want} missing in {row}");
            }
        }
        assert!(point_row(&html, 0).contains("<td>theory (MVA)</td>"));
        assert!(point_row(&html, 1).contains("<td>simulation, 10 replications ± 12.3 µs</td>"));
        assert!(point_row(&html, 2).contains("<td>theory (MVA)</td>"));
        // The verdicts, each linked to the point's checks.
        let ok = point_row(&html, 0);
        assert!(ok.contains("class=\"point ok\"") && ok.contains("<a href=\"#checks-0\">ok</a>"));
        for i in 1..3 {
            let bad = point_row(&html, i);
            assert!(bad.contains("class=\"point failed\""), "{bad}");
            assert!(
                bad.contains(&format!("<a href=\"#checks-{i}\">FAILED</a>")),
                "{bad}"
            );
            assert!(bad.ends_with("<td class=\"n\">2</td>"), "attempts: {bad}");
        }
        // The summary: the coverage of the text table's summary line, the references counted,
        // the failed points named and linked.
        for (what, f) in [
            (
                "X",
                (|a: &ClosedAnalysis| a.covers_throughput) as fn(&ClosedAnalysis) -> _,
            ),
            ("R (net)", |a: &ClosedAnalysis| a.covers_response),
        ] {
            let with: Vec<bool> = r.points.iter().filter_map(f).collect();
            let n = with.iter().filter(|&&c| c).count();
            assert!(
                html.contains(&format!(
                    "The reference's {what} is within the 95% interval of the measured {what} \
                     at {n} of {} points.",
                    with.len()
                )),
                "{what}"
            );
        }
        assert!(html.contains("Reference: theory (MVA) at 2 of 3 points, the simulation at 1."));
        assert!(html.contains(
            "<li class=\"bad\">2 of 3 checked points failed their checks: \
             <a href=\"#checks-1\">N = 4</a>, <a href=\"#checks-2\">N = 16</a>.</li>"
        ));
        // Each point's checks, and the attempts measured again.
        assert!(html.contains("<div class=\"point-checks ok\" id=\"checks-0\">"));
        assert!(html.contains("<h3>N = 1: <span class=\"pass\">ok after 1 attempt</span></h3>"));
        assert!(
            html.contains("<h3>N = 16: <span class=\"bad\">FAILED after 2 attempts</span></h3>")
        );
        assert_eq!(
            html.matches("<p>Attempt 1 was measured again: it failed ")
                .count(),
            2
        );
        assert_eq!(
            html.matches("<table class=\"checks\">").count(),
            3 + 2,
            "each point's kept attempt, and the two rejected ones"
        );
        // The head and the setup.
        assert!(
            html.contains("<title>M/M/1 closed sweep, 2026-12-01 20:13:37 UTC — queuelab</title>")
        );
        assert!(html.contains("<h1>M/M/1: closed sweep of 2026-12-01 20:13:37 UTC</h1>"));
        for want in [
            "<th scope=\"row\">users N</th><td>1, 4, 16</td>",
            "<th scope=\"row\">think time Z</th><td>5.000 ms per user",
            "<th scope=\"row\">measured per point</th><td>1 s</td>",
            "<th scope=\"row\">warm-up per point</th><td>0.3 s</td>",
            "<th scope=\"row\">seed</th><td>3</td>",
            "<a href=\"closed.csv\">closed.csv</a>",
            "<a href=\"table.txt\">table.txt</a>",
        ] {
            assert!(html.contains(want), "{want}");
        }
        assert_plots_inline(&html, &r.plots);
        assert_eq!(r.plots.len(), 2);
        assert!(html.contains(&escape(&r.table)));
        assert_self_contained(&html);
        // A pure function: the same file gives the same bytes.
        assert_eq!(render_closed_html(&f, &r), html);
    }

    #[test]
    fn strings_of_a_closed_file_are_escaped() {
        let mut f = closed_fixture();
        f.config.url = "http://h/<script>alert(\"u\")</script>".into();
        f.qload_version = "<b>9</b> & 'x'".into();
        f.created = "<i>yesterday</i>".into();
        let c = f.closed.as_mut().expect("a closed section");
        c.points[0].reference.as_mut().expect("a reference").source =
            "<img src=x onerror=alert(1)>".into();
        c.points[1].checks[0].name = "</table><h1>".into();
        c.points[2].rejected[0].failed[0].unit = "µs\" onmouseover=\"x".into();
        let (_, html) = closed_page(&f);
        assert_escaped(
            &html,
            &[
                (
                    "<script>",
                    "&lt;script&gt;alert(&quot;u&quot;)&lt;/script&gt;",
                ),
                ("<b>9</b>", "&lt;b&gt;9&lt;/b&gt; &amp; &apos;x&apos;"),
                ("<i>yesterday</i>", "&lt;i&gt;yesterday&lt;/i&gt;"),
                ("<img src=x", "<td>&lt;img src=x onerror=alert(1)&gt;</td>"),
                ("</table><h1>", "<td>&lt;/table&gt;&lt;h1&gt;</td>"),
                ("\" onmouseover=\"x", "µs&quot; onmouseover=&quot;x"),
            ],
        );
        assert_eq!(html.matches("<table class=\"checks\">").count(), 3 + 3);
        assert_self_contained(&html);
    }

    #[test]
    fn a_variability_page_names_the_family_and_has_a_row_per_cv2() {
        let mut f = variability_fixture();
        let v = f.variability.as_mut().expect("a variability section");
        // C² = 1 passed.
        v.points[1].point.verdict = Some(Verdict::Ok);
        v.points[1].point.checks = passing();
        let (r, html) = variability_page(&f);
        // Named by the family, not by the first point's model (M/D/1).
        assert!(html.contains(
            "<title>M/G/1 with the h2 family variability sweep, 2026-12-01 20:13:50 UTC — \
             queuelab</title>"
        ));
        assert!(html.contains(
            "<h1>M/G/1 with the h2 family: variability sweep of 2026-12-01 20:13:50 UTC</h1>"
        ));
        assert!(!html.contains("M/D/1 sweep") && !html.contains("<h1>M/D/1"));
        assert!(
            r.table
                .starts_with("M/G/1 with the h2 family: variability sweep")
        );
        for want in [
            "<th scope=\"row\">model</th><td>M/G/1 with the h2 family</td>",
            "<th scope=\"row\">C² values</th><td>0, 1, 4</td>",
            "<th scope=\"row\">services</th><td>const, exp, h2:4</td>",
            "<th scope=\"row\">load ρ</th><td>0.5 at every point, λ = 500.0/s",
            "<th scope=\"row\">family</th><td>h2 (C² = 0: const",
            "<th scope=\"row\">URL</th><td>a qserve started for each point",
            "<th scope=\"row\">seed</th><td>3</td>",
            "<a href=\"results.csv\">results.csv</a>",
        ] {
            assert!(html.contains(want), "{want}");
        }
        assert_eq!(r.points.len(), 3);
        assert_eq!(html.matches("<tr id=\"point-").count(), 3);
        let models = ["M/D/1", "M/M/1", "M/H2/1"];
        for (i, a) in r.points.iter().enumerate() {
            let row = point_row(&html, i);
            let (p99, h, source) = a.reference_p99_us.clone().expect("a simulated p99");
            let h = h.expect("with its half-width");
            for want in [
                format!("<td class=\"n\">{}</td>", a.cv2),
                format!("<td>{}</td>", a.service),
                format!("<td>{}</td>", models[i]),
                t1(a.pk_mean_us.map(|w| w.0)),
                t1(a.mean_us()),
                ci(a.ci95_us()),
                pct(a.err_pk()),
                t1(a.p99_net_us),
                format!("{p99:.1} ± {h:.1}"),
                format!("<td>{source}</td>"),
            ] {
                assert!(row.contains(&want), "{want} missing in {row}");
            }
            assert_eq!(source, "simulation, 10 replications");
        }
        // W(PK) = 1/μ + λ(1 + C²)/(2μ²(1 − ρ)) at μ = 1000/s, λ = 500/s: 1.5, 2 and 3.5 ms.
        for (i, w) in ["1500.0", "2000.0", "3500.0"].iter().enumerate() {
            assert!(point_row(&html, i).contains(&format!("<td class=\"n\">{w}</td>")));
        }
        assert!(point_row(&html, 1).contains("class=\"point ok\""));
        for i in [0, 2] {
            let row = point_row(&html, i);
            assert!(row.contains("class=\"point failed\""), "{row}");
            assert!(row.contains(&format!("<a href=\"#checks-{i}\">FAILED</a>")));
        }
        // The summary says what the table's summary line says.
        let with: Vec<bool> = r.points.iter().filter_map(|a| a.covers_pk).collect();
        let n = with.iter().filter(|&&c| c).count();
        let line = format!(
            "holds the Pollaczek–Khinchine mean at {n} of {} points",
            with.len()
        );
        assert!(html.contains(&line) && r.table.contains(&line), "{line}");
        assert!(html.contains(
            "<li class=\"bad\">2 of 3 checked points failed their checks: \
             <a href=\"#checks-0\">C² = 0 (const)</a>, <a href=\"#checks-2\">C² = 4 (h2:4)</a>.\
             </li>"
        ));
        assert!(html.contains(
            "<li>The p99's reference is the simulation's (± its 95% half-width over \
             replications) at 3 of 3 points, theory's at 0.</li>"
        ));
        assert!(html.contains("<h3>C² = 1 (exp): <span class=\"pass\">ok after 1 attempt</span>"));
        assert!(html.contains("<h3>C² = 4 (h2:4): <span class=\"bad\">FAILED after 1 attempt<"));
        assert_eq!(html.matches("<table class=\"checks\">").count(), 3);
        assert_eq!(r.plots.len(), 1);
        assert_plots_inline(&html, &r.plots);
        assert!(html.contains(&escape(&r.table)));
        assert_self_contained(&html);
        assert_eq!(render_variability_html(&f, &r), html);
    }

    #[test]
    fn strings_of_a_variability_file_are_escaped() {
        let mut f = variability_fixture();
        f.config.url = "http://h/<u>".into();
        f.config.overhead_url = Some("http://h/<o>".into());
        f.qload_version = "<b>9</b>".into();
        let v = f.variability.as_mut().expect("a variability section");
        v.points[0].service = "<s>const</s>".into();
        v.points[1].model = "M/<M>/1".into();
        v.points[2].reference.as_mut().expect("a reference").source = "<script>x</script>".into();
        v.points[2].point.checks[0].name = "a\"b".into();
        let (_, html) = variability_page(&f);
        assert_escaped(
            &html,
            &[
                ("http://h/<u>", "<td>http://h/&lt;u&gt;</td>"),
                ("http://h/<o>", "<td>http://h/&lt;o&gt;</td>"),
                ("<b>9</b>", "&lt;b&gt;9&lt;/b&gt;"),
                ("<s>const</s>", "<td>&lt;s&gt;const&lt;/s&gt;</td>"),
                ("M/<M>/1", "<td>M/&lt;M&gt;/1</td>"),
                ("<script>x", "<td>&lt;script&gt;x&lt;/script&gt;</td>"),
                ("<td>a\"b</td>", "<td>a&quot;b</td>"),
            ],
        );
        // The escaped service names its point in the summary and the checks too.
        assert!(html.contains("C² = 0 (&lt;s&gt;const&lt;/s&gt;)"));
        assert_self_contained(&html);
    }

    #[test]
    fn the_variability_csv_has_a_row_per_cv2_with_the_table_numbers() {
        let f = variability_fixture();
        let r = variability::render_all(&f).expect("render");
        let mut rd = csv::Reader::from_reader(r.csv.as_bytes());
        let head: Vec<String> = rd
            .headers()
            .expect("a header")
            .iter()
            .map(str::to_owned)
            .collect();
        for col in [
            "cv2",
            "service",
            "pk_mean_us",
            "net_mean_us",
            "net_ci95_low_us",
            "net_ci95_high_us",
            "covers_pk",
            "p99_net_us",
            "ref_p99_us",
            "ref_p99_half_us",
            "reference",
            "verdict",
            "attempts",
            "failed_checks",
        ] {
            assert!(head.iter().any(|h| h == col), "{col} in {head:?}");
        }
        let col = |name: &str| head.iter().position(|h| h == name).expect("a column");
        let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.expect("a row")).collect();
        assert_eq!(rows.len(), 3);
        let num = |row: &csv::StringRecord, name: &str| -> f64 {
            row[col(name)].parse().expect("a number")
        };
        for (row, a) in rows.iter().zip(&r.points) {
            assert_eq!(num(row, "cv2"), a.cv2);
            assert_eq!(&row[col("service")], a.service);
            assert_eq!(num(row, "pk_mean_us"), a.pk_mean_us.expect("W(PK)").0);
            assert_eq!(num(row, "net_mean_us"), a.mean_us().expect("a mean"));
            assert_eq!(num(row, "p99_net_us"), a.p99_net_us.expect("a p99"));
            let (p99, h, source) = a.reference_p99_us.clone().expect("a reference");
            assert_eq!(num(row, "ref_p99_us"), p99);
            assert_eq!(Some(num(row, "ref_p99_half_us")), h);
            assert_eq!(&row[col("reference")], source);
            assert_eq!(&row[col("covers_pk")], a.covers_pk.expect("PK").to_string());
            assert_eq!(&row[col("verdict")], "failed");
            assert_eq!(&row[col("attempts")], "1");
            assert!(!row[col("failed_checks")].is_empty());
        }
    }
}
