//! `qlab report DIR`: everything a sweep shows, recomputed from `DIR/results.json`.
//!
//! The sweep itself ends by calling [`report`], so the table and the plots of a fresh sweep and
//! of a later `qlab report` come from the same code and the same data, byte for byte.
//! Written: `results.csv`, `table.txt` (the table printed on stdout), the SVG plots of
//! [`crate::plots`], and `index.html` ([`crate::html`]), the page that shows them all. The plots are well-formed by construction (one writer escapes every text and
//! attribute and closes what it opens, [`crate::svg`]); the tests parse them with an XML parser.
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use queuelab_common::model::{Discipline, Model};

use crate::analysis::{self, PointAnalysis, SweepSummary};
use crate::plots::{self, PlotContext};
use crate::record::{ResultsFile, write_atomic};
use crate::{html, measure, table};

/// File name of the CSV.
pub const RESULTS_CSV: &str = "results.csv";
/// File name of the saved table.
pub const TABLE_TXT: &str = "table.txt";
/// File name of the page a person opens ([`crate::html`]).
pub const INDEX_HTML: &str = "index.html";

/// Everything derived from a results file, not yet written anywhere.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Per-point analysis.
    pub points: Vec<PointAnalysis>,
    /// Totals.
    pub summary: SweepSummary,
    /// The text table (with its header lines).
    pub table: String,
    /// The CSV.
    pub csv: String,
    /// SVG plots: file name and document.
    pub plots: Vec<(&'static str, String)>,
}

/// What [`report`] wrote.
#[derive(Debug, Clone)]
pub struct ReportOutput {
    /// The rendering.
    pub rendered: Rendered,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// A one-line description of a sweep's setup (the plots' subtitle and the table's header).
pub fn describe(file: &ResultsFile, model: &Model) -> String {
    let c = &file.config;
    let mut s = format!("μ = {}/s per server, c = {}", fmt_rate(c.mu), model.servers);
    if let Some(k) = model.capacity {
        s.push_str(&format!(", K = {k}"));
    }
    if model.discipline != Discipline::Fcfs {
        s.push_str(&format!(", {}", model.discipline));
    }
    if model.classes.len() > 1 {
        s.push_str(&format!(", classes {}", model.classes));
    }
    s.push_str(&format!(
        ", service {}; {} s per point{}",
        model.service,
        fmt_secs(c.duration_s),
        if c.quick { " (quick)" } else { "" }
    ));
    match &c.overhead_url {
        Some(_) => s.push_str("; overhead measured at the same rate, zero service"),
        None => s.push_str("; overhead not measured"),
    }
    s
}

fn fmt_rate(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn fmt_secs(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Analyses a results file and renders table, CSV and plots (no I/O).
pub fn render(file: &ResultsFile) -> anyhow::Result<Rendered> {
    let model = file.config.model()?;
    let points: Vec<PointAnalysis> = file
        .points
        .iter()
        .map(|r| analysis::analyze(&model, r))
        .collect();
    let summary = analysis::summarize(&points);
    let name = model.name();
    let ctx = PlotContext {
        model: &model,
        model_name: name.clone(),
        subtitle: describe(file, &model),
    };
    let mut head = format!("{name}: {}\n", ctx.subtitle);
    head.push_str(&format!("url {}", file.config.url));
    if let Some(o) = &file.config.overhead_url {
        head.push_str(&format!("; overhead url {o}"));
    }
    head.push_str(&format!("; started {}\n", file.created));
    if file.config.quick {
        head.push_str(
            "quick sweep: short runs trade precision for time (wide intervals, early transients)\n",
        );
    }
    if file.points.len() < file.config.rhos.len() {
        head.push_str(&format!(
            "incomplete: {} of {} points measured\n",
            file.points.len(),
            file.config.rhos.len()
        ));
    }
    let notes: Vec<String> = points
        .iter()
        .filter_map(|p| {
            p.all_notes()
                .map(|n| format!("note ρ = {:.2}: {n}\n", p.rho))
        })
        .collect();
    let table = format!(
        "{head}\n{}{}",
        table::render(&points, &summary, model.capacity.is_some()),
        notes.concat()
    );
    let mut plots = vec![
        (plots::MEAN_SVG, plots::mean_chart(&ctx, &points).render()),
        (plots::ERROR_SVG, plots::error_chart(&ctx, &points).render()),
    ];
    if let Some(c) = plots::cdf_chart(&ctx, &file.points, &points) {
        plots.push((plots::CDF_SVG, c.render()));
    }
    if let Some(c) = plots::blocking_chart(&ctx, &points) {
        plots.push((plots::BLOCKING_SVG, c.render()));
    }
    if let Some(c) = plots::classes_chart(&ctx, &points) {
        plots.push((plots::CLASSES_SVG, c.render()));
    }
    Ok(Rendered {
        csv: table::csv(&points)?,
        points,
        summary,
        table,
        plots,
    })
}

/// Re-reads `dir/results.json` and rewrites `results.csv`, `table.txt`, the plots and
/// `index.html`, with each point's interval recomputed from its raw qload result
/// ([`measure::refresh_intervals`]).
pub fn report(dir: &Path) -> anyhow::Result<ReportOutput> {
    let mut file = ResultsFile::read(dir)?;
    file.points.iter_mut().for_each(measure::refresh_intervals);
    let rendered = render(&file)?;
    let page = html::render_html(&file, &rendered);
    let mut out = write_rendered(dir, rendered)?;
    // Last, so that the list of files written ends with the one to open.
    let p = dir.join(INDEX_HTML);
    write_atomic(&p, page.as_bytes())?;
    out.files.push(p);
    Ok(out)
}

/// Writes a rendering into `dir`; plots a model does not have (blocking without K) are removed
/// if an older run left them.
pub fn write_rendered(dir: &Path, rendered: Rendered) -> anyhow::Result<ReportOutput> {
    let mut files = Vec::new();
    let mut put = |name: &str, text: &str| -> anyhow::Result<()> {
        let p = dir.join(name);
        write_atomic(&p, text.as_bytes())?;
        files.push(p);
        Ok(())
    };
    put(RESULTS_CSV, &rendered.csv)?;
    put(TABLE_TXT, &rendered.table)?;
    for (name, doc) in &rendered.plots {
        put(name, doc)?;
    }
    for name in [plots::CDF_SVG, plots::BLOCKING_SVG] {
        if !rendered.plots.iter().any(|(n, _)| *n == name) {
            let p = dir.join(name);
            if p.exists() {
                fs::remove_file(&p).with_context(|| format!("removing stale {}", p.display()))?;
            }
        }
    }
    Ok(ReportOutput { rendered, files })
}
