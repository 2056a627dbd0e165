//! The sweep as text: `results.csv` (one row per point, every number) and the table printed on
//! stdout (two blocks: the mean, then the distribution).
//!
//! CSV conventions: a header row; times in µs (`mean_us` and the percentiles are of accepted
//! requests, `mean_all_us` of every response, 503s included: they differ only with blocking);
//! relative errors as fractions (0.01 = 1%); booleans `true`/`false`; an empty field where a
//! value does not exist (no theory, no overhead run, …). Written with the `csv` crate: a field is
//! quoted only if it holds a comma, a quote or a line break.
use std::fmt::Write as _;

use crate::analysis::{NetSource, PointAnalysis, SweepSummary};
use crate::checks;
use crate::record::Verdict;

type Cell = fn(&PointAnalysis) -> String;

fn f(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

fn of(v: Option<f64>) -> String {
    v.map(f).unwrap_or_default()
}

fn ob(v: Option<bool>) -> String {
    v.map(|b| b.to_string()).unwrap_or_default()
}

/// The CSV columns: header name and how to fill it. The header and the rows come from this one
/// list, so they cannot disagree.
pub const CSV_COLUMNS: &[(&str, Cell)] = &[
    ("rho", |p| f(p.rho)),
    ("lambda", |p| f(p.lambda)),
    ("achieved_rate", |p| f(p.achieved_rate)),
    ("sent", |p| p.sent.to_string()),
    ("completed", |p| p.completed.to_string()),
    ("errors", |p| p.errors.to_string()),
    ("blocked", |p| p.blocked.to_string()),
    ("mean_us", |p| of(p.mean_us)),
    ("mean_all_us", |p| of(p.mean_all_us)),
    ("ci95_low_us", |p| of(p.ci95_us.map(|c| c.0))),
    ("ci95_high_us", |p| of(p.ci95_us.map(|c| c.1))),
    ("p50_us", |p| of(p.p50_us)),
    ("p90_us", |p| of(p.p90_us)),
    ("p99_us", |p| of(p.p99_us)),
    ("p999_us", |p| of(p.p999_us)),
    ("model", |p| {
        p.theory
            .as_ref()
            .map(|t| t.model.clone())
            .unwrap_or_default()
    }),
    ("theory_mean_us", |p| {
        of(p.theory.as_ref().map(|t| t.mean_us))
    }),
    ("theory_p50_us", |p| {
        of(p.theory.as_ref().and_then(|t| t.p50_us))
    }),
    ("theory_p90_us", |p| {
        of(p.theory.as_ref().and_then(|t| t.p90_us))
    }),
    ("theory_p99_us", |p| {
        of(p.theory.as_ref().and_then(|t| t.p99_us))
    }),
    ("theory_blocking", |p| {
        of(p.theory.as_ref().map(|t| t.blocking))
    }),
    ("overhead_mean_us", |p| of(p.overhead_mean_us)),
    ("overhead_ci95_half_us", |p| of(p.overhead_half_us)),
    ("net_mean_us", |p| of(p.net_mean_us)),
    ("net_ci95_low_us", |p| of(p.net_ci95_us.map(|c| c.0))),
    ("net_ci95_high_us", |p| of(p.net_ci95_us.map(|c| c.1))),
    ("err_raw", |p| of(p.err_raw)),
    ("err_net", |p| of(p.err_net)),
    ("ci_covers_theory_raw", |p| ob(p.covers_raw)),
    ("ci_covers_theory_net", |p| ob(p.covers_net)),
    ("ks_raw", |p| of(p.ks_raw)),
    ("ks_net", |p| of(p.ks_net)),
    ("ks_noise", |p| of(p.ks_noise)),
    ("blocking_measured", |p| of(p.blocking_measured)),
    ("send_lag_p50_us", |p| f(p.send_lag_p50_us)),
    ("send_lag_p99_us", |p| f(p.send_lag_p99_us)),
    ("send_lag_max_us", |p| f(p.send_lag_max_us)),
    ("arrivals_gap_cv", |p| of(p.gap_cv)),
    ("arrivals_ks_p", |p| of(p.arrivals_ks_p)),
    ("verdict", |p| match p.verdict {
        Some(Verdict::Ok) => "ok".into(),
        Some(Verdict::Failed) => "failed".into(),
        None => String::new(),
    }),
    ("attempts", |p| {
        if p.attempts > 0 {
            p.attempts.to_string()
        } else {
            String::new()
        }
    }),
    ("failed_checks", |p| {
        p.failed_checks
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }),
    ("net_source", |p| match p.net_source {
        Some(NetSource::ServerTiming) => "server_timing".into(),
        Some(NetSource::Twin) => "twin".into(),
        None => String::new(),
    }),
    ("path_mean_us", |p| of(p.path_mean_us)),
    ("net_twin_mean_us", |p| of(p.net_twin_mean_us)),
    ("err_net_twin", |p| of(p.err_net_twin)),
    ("ci_covers_theory_net_twin", |p| ob(p.covers_net_twin)),
    ("ks_net_twin", |p| of(p.ks_net_twin)),
];

/// The `ref` cell: `theory`, `sim ±0.4%`, or `–`.
pub fn ref_cell(p: &PointAnalysis) -> String {
    p.ref_label().unwrap_or_else(|| "–".into())
}

/// The `L/XW` cell: Little's ratio to three decimals, `!` after it when it is farther from 1
/// than its tolerance, `–` without one.
pub fn little_cell(p: &PointAnalysis) -> String {
    match p.little {
        Some(l) => format!("{:.3}{}", l.ratio, if l.holds() { "" } else { "!" }),
        None => "–".into(),
    }
}

/// The lines on the points whose Little's ratio is farther from 1 than its tolerance.
pub fn little_lines(points: &[PointAnalysis]) -> String {
    let mut o = String::new();
    for p in points {
        if let Some(l) = p.little.filter(|l| !l.holds()) {
            let _ = writeln!(
                o,
                "Little ρ = {:.2}: L/(X·W) = {:.4} (L = {:.3}, X = {:.1}/s, W = {:.1} µs), \
                 farther from 1 than the window's edges allow (±{:.4})",
                p.rho, l.ratio, l.l, l.x, l.w_us, l.tolerance
            );
        }
    }
    o
}

/// One block per priority class: the server's mean sojourn of the class at each point against
/// the reference's (empty when no point has classes).
pub fn class_blocks(points: &[PointAnalysis]) -> String {
    let mut o = String::new();
    let n = points
        .iter()
        .flat_map(|p| p.classes.iter().map(|c| usize::from(c.class) + 1))
        .max()
        .unwrap_or(0);
    for k in 0..n {
        let _ = writeln!(
            o,
            "Class {k}{} (µs; the server's mean sojourn from /metrics against the reference)",
            if k == 0 { ", the highest" } else { "" }
        );
        let _ = writeln!(
            o,
            "{:>5} {:>9} {:>10} {:>10} {:>9} {:>8}",
            "ρ", "requests", "measured", "reference", "± ref", "error"
        );
        for p in points {
            let Some(c) = p.classes.iter().find(|c| usize::from(c.class) == k) else {
                continue;
            };
            let err = c
                .reference_us
                .filter(|&r| r > 0.0)
                .map(|r| (c.mean_us - r) / r);
            let _ = writeln!(
                o,
                "{:>5.2} {:>9} {:>10} {:>10} {:>9} {:>8}",
                p.rho,
                c.count,
                t1(Some(c.mean_us)),
                t1(c.reference_us),
                t1(c.reference_half_width_us),
                pct(err)
            );
        }
        let _ = writeln!(o);
    }
    o
}

/// The verdict of a point as the table shows it: `ok`, `ok (2)` when it took two attempts,
/// `FAILED`, or `–` for a point recorded before the checks.
pub fn verdict_cell(p: &PointAnalysis) -> String {
    match p.verdict {
        Some(Verdict::Ok) if p.attempts > 1 => format!("ok ({})", p.attempts),
        Some(Verdict::Ok) => "ok".into(),
        Some(Verdict::Failed) => "FAILED".into(),
        None => "–".into(),
    }
}

/// The lines under the table on the points measured again or failed, one per attempt that
/// failed (empty when there were none).
pub fn rerun_lines(points: &[PointAnalysis]) -> String {
    let mut o = String::new();
    let list = |cs: &[crate::record::Check]| {
        cs.iter()
            .map(checks::describe)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for p in points {
        for r in &p.rejected {
            let _ = writeln!(
                o,
                "re-run ρ = {:.2}: attempt {} failed {}",
                p.rho,
                r.attempt,
                list(&r.failed)
            );
        }
        if p.failed() {
            let _ = writeln!(
                o,
                "FAILED ρ = {:.2}: attempt {} (kept) failed {}; left out of the summary",
                p.rho,
                p.attempts,
                list(&p.failed_checks)
            );
        }
    }
    o
}

/// `results.csv`: the header and one row per point.
pub fn csv(points: &[PointAnalysis]) -> anyhow::Result<String> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(CSV_COLUMNS.iter().map(|c| c.0))?;
    for p in points {
        out.write_record(CSV_COLUMNS.iter().map(|c| (c.1)(p)))?;
    }
    let bytes = out.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes)?)
}

fn t1(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{v:.1}"))
        .unwrap_or_else(|| "–".into())
}

fn pct(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{:+.2}%", v * 100.0))
        .unwrap_or_else(|| "–".into())
}

fn ci(c: Option<(f64, f64)>) -> String {
    c.map(|(lo, hi)| format!("[{lo:.1}, {hi:.1}]"))
        .unwrap_or_else(|| "[–]".into())
}

fn pair(m: Option<f64>, t: Option<f64>) -> String {
    format!("{}/{}", t1(m), t1(t))
}

/// The table printed after a sweep (and by `qlab report`), ending with a one-line summary.
pub fn render(points: &[PointAnalysis], summary: &SweepSummary, capacity: bool) -> String {
    let mut o = String::new();
    let checked = points.iter().any(|p| p.verdict.is_some());
    let timed = points.iter().any(PointAnalysis::timed);
    let referenced = points.iter().any(|p| p.reference.is_some());
    let simulated = points.iter().any(|p| {
        p.reference
            .as_ref()
            .is_some_and(|r| r.replications.is_some())
    });
    let little = points.iter().any(|p| p.little.is_some());
    let _ = writeln!(
        o,
        "Mean response time (µs); net = {}; errors relative to {}",
        if timed {
            "the server's own time (Server-Timing), else measured − overhead"
        } else {
            "measured − overhead"
        },
        if simulated {
            "the reference W (theory, or a simulation with its 95% half-width)"
        } else {
            "theory W"
        }
    );
    // With Server-Timing the path of the same requests (measured − net) gets a column of its own
    // before the twin's overhead; a table without it keeps its old layout.
    let mut head = format!("{:>5} {:>9} {:>10}", "ρ", "λ/s", "achieved/s");
    if timed {
        let _ = write!(head, " {:>7}", "path");
    }
    let _ = write!(
        head,
        " {:>9} {:>9} {:>21} {:>9} {:>21} {:>9} {:>8} {:>8} {:>7}",
        "overhead",
        "measured",
        "95% CI",
        "net",
        "net 95% CI",
        if simulated { "ref W" } else { "theory W" },
        "err raw",
        "err net",
        "W in CI"
    );
    if referenced {
        let _ = write!(head, " {:>11}", "ref");
    }
    if little {
        let _ = write!(head, " {:>7}", "L/XW");
    }
    if checked {
        let _ = write!(head, " {:>8}", "checks");
    }
    let _ = writeln!(o, "{head}");
    for p in points {
        let w = p.ref_mean_us();
        let covers = match p.covers_net.or(p.covers_raw) {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "–",
        };
        let mut line = format!("{:>5.2} {:>9.1} {:>10.1}", p.rho, p.lambda, p.achieved_rate);
        if timed {
            let _ = write!(line, " {:>7}", t1(p.path_mean_us));
        }
        let _ = write!(
            line,
            " {:>9} {:>9} {:>21} {:>9} {:>21} {:>9} {:>8} {:>8} {:>7}",
            t1(p.overhead_mean_us),
            t1(p.mean_us),
            ci(p.ci95_us),
            t1(p.net_mean_us),
            ci(p.net_ci95_us),
            t1(w),
            pct(p.err_raw),
            pct(p.err_net),
            covers
        );
        if referenced {
            let _ = write!(line, " {:>11}", ref_cell(p));
        }
        if little {
            let _ = write!(line, " {:>7}", little_cell(p));
        }
        if checked {
            let _ = write!(line, " {:>8}", verdict_cell(p));
        }
        let _ = writeln!(o, "{line}");
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Distribution (µs, measured/{r}); KS = sup |F_measured − F_{r}|; KS noise = what \
         sampling alone reaches at 95%{}",
        if capacity {
            "; blocking = fraction of 503"
        } else {
            ""
        },
        r = if simulated { "reference" } else { "theory" }
    );
    let mut head = format!(
        "{:>5} {:>17} {:>17} {:>19} {:>7} {:>7} {:>8}",
        "ρ", "p50", "p90", "p99", "KS raw", "KS net", "KS noise"
    );
    if capacity {
        let _ = write!(head, " {:>15}", "blocking");
    }
    let _ = write!(head, " {:>9} {:>9} {:>7}", "lag p99", "lag max", "errors");
    let _ = writeln!(o, "{head}");
    for p in points {
        let t = p.theory.as_ref();
        let [r50, r90, r99] = p.ref_percentiles_us();
        let ks = |k: Option<f64>| k.map(|k| format!("{k:.4}")).unwrap_or_else(|| "–".into());
        let mut line = format!(
            "{:>5.2} {:>17} {:>17} {:>19} {:>7} {:>7} {:>8}",
            p.rho,
            pair(p.p50_us, r50),
            pair(p.p90_us, r90),
            pair(p.p99_us, r99),
            ks(p.ks_raw),
            ks(p.ks_net),
            ks(p.ks_noise)
        );
        if capacity {
            let b = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "–".into());
            let _ = write!(
                line,
                " {:>15}",
                format!(
                    "{}/{}",
                    b(p.blocking_measured),
                    b(t.map(|t| t.blocking).or(p
                        .reference
                        .as_ref()
                        .and_then(|r| r.blocking)
                        .map(|b| b.value)))
                )
            );
        }
        let _ = write!(
            line,
            " {:>9.1} {:>9.1} {:>7}",
            p.send_lag_p99_us, p.send_lag_max_us, p.errors
        );
        let _ = writeln!(o, "{line}");
    }
    let _ = writeln!(o);
    o.push_str(&class_blocks(points));
    let _ = writeln!(o, "{}", summary_line(summary));
    o.push_str(&rerun_lines(points));
    o.push_str(&little_lines(points));
    o
}

/// One line on the whole sweep: coverage, mean error, worst KS distance, overhead, errors.
pub fn summary_line(s: &SweepSummary) -> String {
    let mut parts = Vec::new();
    if s.with_net_interval > 0 {
        parts.push(format!(
            "net 95% CI covers theory at {} of {} points",
            s.covered_net, s.with_net_interval
        ));
    }
    if let (Some(m), Some(a)) = (s.mean_err_net, s.mean_abs_err_net) {
        parts.push(format!(
            "mean net error {:+.2}% (mean |error| {:.2}%)",
            m * 100.0,
            a * 100.0
        ));
    }
    if let Some(k) = s.max_ks_net {
        parts.push(format!("max KS net {k:.4}"));
    }
    if s.ks_net_compared > 0 {
        parts.push(format!(
            "KS net within sampling noise at {} of {} points",
            s.ks_net_within_noise, s.ks_net_compared
        ));
    }
    if s.little_compared > 0 {
        parts.push(format!(
            "Little's law L = X·W within its tolerance at {} of {} points",
            s.little_holds, s.little_compared
        ));
    }
    match s.overhead_range_us {
        Some((lo, hi)) => parts.push(format!("overhead {lo:.1}–{hi:.1} µs")),
        None => parts.push("overhead not measured".into()),
    }
    parts.push(format!("{} errors", s.errors));
    if s.failed > 0 {
        parts.push(format!(
            "{} of {} points FAILED their checks (left out of coverage, net errors and KS)",
            s.failed, s.points
        ));
    }
    format!("Summary: {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::TheoryValues;

    fn point() -> PointAnalysis {
        PointAnalysis {
            rho: 0.5,
            lambda: 500.0,
            achieved_rate: 499.0,
            sent: 1000,
            completed: 1000,
            mean_us: Some(2050.0),
            ci95_us: Some((1950.0, 2150.0)),
            p50_us: Some(1400.0),
            theory: Some(TheoryValues {
                model: "M/M/1".into(),
                mean_us: 2000.0,
                p50_us: Some(1386.3),
                p90_us: None,
                p99_us: None,
                blocking: 0.0,
            }),
            overhead_mean_us: Some(25.0),
            net_mean_us: Some(2025.0),
            err_raw: Some(0.025),
            err_net: Some(0.0125),
            covers_net: Some(true),
            ..PointAnalysis::default()
        }
    }

    #[test]
    fn csv_rows_have_as_many_fields_as_the_header() {
        let text = csv(&[point(), PointAnalysis::default()]).expect("CSV");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let n = lines[0].split(',').count();
        assert_eq!(n, CSV_COLUMNS.len());
        for l in &lines[1..] {
            assert_eq!(l.split(',').count(), n, "{l}");
        }
        assert!(
            text.ends_with('\n') && !text.contains('\r'),
            "bare newlines"
        );
        let names: Vec<&str> = lines[0].split(',').collect();
        let row: Vec<&str> = lines[1].split(',').collect();
        let col = |k: &str| row[names.iter().position(|n| *n == k).expect(k)];
        assert_eq!(col("mean_us"), "2050");
        assert_eq!(col("theory_mean_us"), "2000");
        assert_eq!(col("err_net"), "0.0125");
        assert_eq!(col("ci_covers_theory_net"), "true");
        assert_eq!(col("theory_p90_us"), "");
        assert_eq!(col("model"), "M/M/1");
    }

    #[test]
    fn csv_quotes_fields_that_need_it() {
        let named = |model: &str| {
            let mut p = point();
            if let Some(t) = p.theory.as_mut() {
                t.model = model.into();
            }
            p
        };
        let text = csv(&[named("a,b"), named("say \"x\""), named("M/M/1")]).expect("CSV");
        let model = CSV_COLUMNS
            .iter()
            .position(|c| c.0 == "model")
            .expect("a model column");
        let mut rows = csv::Reader::from_reader(text.as_bytes());
        let got: Vec<String> = rows
            .records()
            .map(|r| r.expect("a valid row")[model].to_owned())
            .collect();
        assert_eq!(got, ["a,b", "say \"x\"", "M/M/1"]);
        // Quoted only where needed, quotes doubled.
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains(",\"a,b\","), "{}", lines[1]);
        assert!(lines[2].contains(",\"say \"\"x\"\"\","), "{}", lines[2]);
        assert!(lines[3].contains(",M/M/1,"), "{}", lines[3]);
    }

    #[test]
    fn table_shows_values_and_summary() {
        let pts = [point()];
        let s = crate::analysis::summarize(&pts);
        let t = render(&pts, &s, false);
        for want in [
            "2050.0",
            "[1950.0, 2150.0]",
            "+2.50%",
            "+1.25%",
            "yes",
            "1400.0/1386.3",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        assert!(t.contains("covers theory at 1 of 1 points"), "{t}");
        assert!(!t.contains("blocking"));
        assert!(render(&pts, &s, true).contains("blocking"));
        // Recorded before the checks: no verdict column, no lines about them.
        assert!(!t.contains("checks") && !t.contains("FAILED") && !t.contains("re-run"));
    }

    #[test]
    fn table_and_csv_show_verdicts_attempts_and_reruns() {
        use crate::record::{Check, RejectedAttempt};
        let stall = Check {
            name: "send_lag_max".into(),
            value: 99_100.0,
            limit: 30_000.0,
            unit: "us".into(),
            passed: false,
        };
        let once = PointAnalysis {
            verdict: Some(Verdict::Ok),
            attempts: 1,
            ..point()
        };
        let twice = PointAnalysis {
            rho: 0.4,
            verdict: Some(Verdict::Ok),
            attempts: 2,
            rejected: vec![RejectedAttempt {
                attempt: 1,
                failed: vec![stall.clone()],
            }],
            net_source: Some(NetSource::ServerTiming),
            ..point()
        };
        let failed = PointAnalysis {
            rho: 0.9,
            verdict: Some(Verdict::Failed),
            attempts: 2,
            rejected: vec![RejectedAttempt {
                attempt: 1,
                failed: vec![stall.clone()],
            }],
            failed_checks: vec![stall],
            ..point()
        };
        let pts = [once, twice, failed];
        let s = crate::analysis::summarize(&pts);
        let t = render(&pts, &s, false);
        let rows: Vec<&str> = t.lines().filter(|l| l.contains("499.0")).collect();
        assert_eq!(rows.len(), 3, "{t}");
        assert!(rows[0].ends_with("       ok"), "{}", rows[0]);
        assert!(rows[1].ends_with("   ok (2)"), "{}", rows[1]);
        assert!(rows[2].ends_with("   FAILED"), "{}", rows[2]);
        assert!(t.contains("checks"), "{t}");
        assert!(
            t.contains("net = the server's own time (Server-Timing)"),
            "{t}"
        );
        assert!(
            t.contains("re-run ρ = 0.40: attempt 1 failed send_lag_max 99.1ms > 30.0ms\n"),
            "{t}"
        );
        assert!(
            t.contains("re-run ρ = 0.90: attempt 1 failed send_lag_max"),
            "{t}"
        );
        assert!(
            t.contains("FAILED ρ = 0.90: attempt 2 (kept) failed send_lag_max 99.1ms > 30.0ms"),
            "{t}"
        );
        // The failed point is out of the coverage: 2 of 2, and said so.
        assert!(t.contains("covers theory at 2 of 2 points"), "{t}");
        assert!(t.contains("1 of 3 points FAILED their checks"), "{t}");

        let text = csv(&pts).expect("CSV");
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let head = r.headers().expect("header").clone();
        let col = |k: &str| head.iter().position(|h| h == k).expect(k);
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.expect("row")).collect();
        let got = |i: usize, k: &str| rows[i][col(k)].to_owned();
        assert_eq!(
            [got(0, "verdict"), got(1, "verdict"), got(2, "verdict")],
            ["ok", "ok", "failed"]
        );
        assert_eq!([got(0, "attempts"), got(1, "attempts")], ["1", "2"]);
        assert_eq!(got(2, "failed_checks"), "send_lag_max");
        assert_eq!(got(1, "net_source"), "server_timing");
        assert_eq!(got(0, "failed_checks"), "");
    }

    fn referenced(kind: crate::record::ReferenceKind, little: Option<f64>) -> PointAnalysis {
        use crate::record::{Little, Reference};
        let sim = kind == crate::record::ReferenceKind::Simulation;
        PointAnalysis {
            reference: Some(Reference {
                kind,
                replications: sim.then_some(10),
                customers: sim.then_some(100_000),
                seed: None,
                mean_us: Some(2000.0),
                mean_half_width_us: Some(if sim { 8.0 } else { 0.0 }),
                p50_us: Some(1390.0),
                p90_us: Some(4600.0),
                p99_us: Some(9200.0),
                percentiles: Some(kind),
                blocking: None,
                class_mean_us: Vec::new(),
                n_eff: None,
                histogram: None,
            }),
            little: little.map(|ratio| Little {
                l: ratio,
                x: 500.0,
                w_us: 2000.0,
                ratio,
                tolerance: 0.02,
            }),
            ..point()
        }
    }

    #[test]
    fn the_reference_and_littles_ratio_have_columns() {
        use crate::record::{ClassPoint, ReferenceKind};
        let mut sim = referenced(ReferenceKind::Simulation, Some(1.05));
        sim.theory = None;
        sim.rho = 0.9;
        sim.classes = vec![
            ClassPoint {
                class: 0,
                count: 300,
                mean_us: 1500.0,
                reference_us: Some(1520.0),
                reference_half_width_us: Some(10.0),
            },
            ClassPoint {
                class: 1,
                count: 700,
                mean_us: 2450.0,
                reference_us: Some(2400.0),
                reference_half_width_us: Some(30.0),
            },
        ];
        let pts = [referenced(ReferenceKind::Theory, Some(1.003)), sim];
        let s = crate::analysis::summarize(&pts);
        assert_eq!((s.little_holds, s.little_compared), (1, 2));
        let t = render(&pts, &s, false);
        let head = t
            .lines()
            .find(|l| l.contains("W in CI"))
            .expect("header of the mean block");
        assert!(head.contains("ref W") && head.contains(" ref") && head.contains("L/XW"));
        let row = |rho: &str| {
            t.lines()
                .find(|l| l.trim_start().starts_with(rho) && l.contains("499.0"))
                .unwrap_or_else(|| panic!("row {rho} in\n{t}"))
        };
        assert!(row("0.50").contains(" theory ") && row("0.50").contains(" 1.003"));
        // 8/2000: ±0.4%; 1.05 is outside its ±0.02.
        assert!(row("0.90").contains("sim ±0.4%") && row("0.90").contains("1.050!"));
        // The simulated reference's mean and percentiles are the ones shown.
        assert!(row("0.90").contains("2000.0"), "{}", row("0.90"));
        assert!(t.contains("1400.0/1390.0"), "{t}");
        assert!(t.contains("errors relative to the reference W"), "{t}");
        assert!(t.contains("Little's law L = X·W within its tolerance at 1 of 2 points"));
        assert!(t.contains("Little ρ = 0.90: L/(X·W) = 1.0500"), "{t}");
        assert!(!t.contains("Little ρ = 0.50"), "{t}");
        // One block per class, with the class's error against its reference.
        assert!(
            t.contains("Class 0, the highest") && t.contains("Class 1 (µs"),
            "{t}"
        );
        assert!(t.contains("+2.08%") && t.contains("-1.32%"), "{t}");
        // The CSV keeps its columns (the reference and Little's law are in results.json).
        let c = csv(&pts).expect("CSV");
        assert!(!c.lines().next().expect("header").contains("reference"));
        // Without references (an older file) the table keeps its layout.
        let old = render(&[point()], &crate::analysis::summarize(&[point()]), false);
        assert!(!old.contains("L/XW") && !old.contains("ref W") && !old.contains("Class 0"));
    }
}
