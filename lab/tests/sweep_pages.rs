//! The pages of closed and variability sweeps as `qlab report DIR` writes them: from a recorded
//! `results.json` of each kind (lab/tests/data/closed-v1 and variability-v1), the page, the CSVs
//! and the plots, the same bytes twice; and the name a variability sweep goes by.
use std::fs;
use std::path::{Path, PathBuf};

use queuelab_lab::record::ResultsFile;
use queuelab_lab::report::{INDEX_HTML, RESULTS_CSV, TABLE_TXT};
use queuelab_lab::sweep::SweepKind;
use queuelab_lab::variability::{self, Family, VariabilityPlan};
use queuelab_lab::{ReportArgs, closed};

mod support;
use support::{plan, temp_dir};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A fresh directory holding a copy of fixture `name`'s results.json.
fn copy_of(name: &str) -> PathBuf {
    let d = temp_dir(&format!("pages-{name}"));
    fs::create_dir_all(&d).expect("mkdir");
    fs::copy(data(name).join("results.json"), d.join("results.json")).expect("copy");
    d
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every file `names` in `dir`, read.
fn snapshot(dir: &Path, names: &[&str]) -> Vec<String> {
    names.iter().map(|n| read(dir, n)).collect()
}

#[test]
fn qlab_report_of_a_closed_sweep_writes_its_page() {
    let dir = copy_of("closed-v1");
    let out = closed::report(&dir).expect("report");
    let names = [
        TABLE_TXT,
        closed::CLOSED_CSV,
        closed::THROUGHPUT_SVG,
        closed::RESPONSE_SVG,
        INDEX_HTML,
    ];
    let written: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    assert_eq!(out.files, written, "index.html last");
    let page = read(&dir, INDEX_HTML);
    assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
    assert!(page.contains("<h1>M/M/1: closed sweep of 2026-12-01 20:13:37 UTC</h1>"));
    assert_eq!(page.matches("<tr id=\"point-").count(), 3);
    assert_eq!(page.matches("<td>theory (MVA)</td>").count(), 3);
    assert_eq!(page.matches("<svg").count(), 2);
    // The page shows the table the report printed.
    assert!(out.table.starts_with("M/M/1 closed loop"));
    assert!(page.contains("M/M/1 closed loop: think Z = 5.000 ms"));
    // The command does the same, byte for byte, and again.
    let first = snapshot(&dir, &names);
    queuelab_lab::report_main(ReportArgs { dir: dir.clone() }).expect("qlab report");
    assert_eq!(snapshot(&dir, &names), first);
    // No load sweep's files appear beside it.
    assert!(!dir.join(RESULTS_CSV).exists() && !dir.join("mean_vs_rho.svg").exists());
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn qlab_report_of_a_variability_sweep_writes_its_page_and_csv() {
    let dir = copy_of("variability-v1");
    let out = variability::report(&dir).expect("report");
    let names = [TABLE_TXT, RESULTS_CSV, variability::CV2_SVG, INDEX_HTML];
    let written: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    assert_eq!(out.files, written, "index.html last");
    let page = read(&dir, INDEX_HTML);
    assert!(page.contains(
        "<h1>M/G/1 with the h2 family: variability sweep of 2026-12-01 20:13:50 UTC</h1>"
    ));
    assert_eq!(page.matches("<tr id=\"point-").count(), 3);
    assert_eq!(
        page.matches("<td>simulation, 10 replications</td>").count(),
        3
    );
    assert_eq!(page.matches("<svg").count(), 1);
    let csv = read(&dir, RESULTS_CSV);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 3, "{csv}");
    assert!(lines[0].starts_with("cv2,service,"), "{}", lines[0]);
    for (line, (cv2, service)) in lines[1..]
        .iter()
        .zip([(0, "const"), (1, "exp"), (4, "h2:4")])
    {
        assert!(line.starts_with(&format!("{cv2},{service},")), "{line}");
    }
    let first = snapshot(&dir, &names);
    queuelab_lab::report_main(ReportArgs { dir: dir.clone() }).expect("qlab report");
    assert_eq!(snapshot(&dir, &names), first);
    // The file itself is left as it was: report reads it, never writes it.
    assert_eq!(
        ResultsFile::read(&dir).expect("reads"),
        ResultsFile::read(&data("variability-v1")).expect("reads")
    );
    fs::remove_dir_all(&dir).expect("cleanup");
}

fn variability_plan(words: &[&str]) -> (queuelab_common::model::Model, VariabilityPlan) {
    let plan = plan(words).expect("valid");
    match plan.kind {
        SweepKind::Variability(vp) => (plan.model, vp),
        k => panic!("not a variability sweep: {k:?}"),
    }
}

#[test]
fn a_variability_sweep_is_named_by_its_family_not_its_first_point() {
    // No URL: qlab would start qserve itself (not here: only the plan is made).
    let no_pin = "--no-pin";
    let (model, vp) = variability_plan(&["--cv2", "0,1,4,16", "--rho", "0.7", no_pin]);
    // The plan's model is the first point's: M/D/1 for C² = 0.
    assert_eq!(model.name(), "M/D/1");
    assert_eq!(
        vp.describe(&model),
        "M/G/1 with the h2 family (C² = 0, 1, 4, 16 at ρ = 0.7)"
    );
    let (model, vp) = variability_plan(&[
        "--cv2",
        "0.25,4",
        "--service",
        "lognormal",
        "--servers",
        "2",
        no_pin,
    ]);
    assert_eq!(model.name(), "M/LN/2");
    assert_eq!(
        vp.describe(&model),
        "M/G/2 with the lognormal family (C² = 0.25, 4 at ρ = 0.7)"
    );
    // The discipline stays in the name.
    let (model, vp) = variability_plan(&["--cv2", "1,4", "--discipline", "ps", no_pin]);
    assert_eq!(
        vp.describe(&model),
        "M/G/1-PS with the h2 family (C² = 1, 4 at ρ = 0.7)"
    );
    assert_eq!(
        variability::family_model_name(&model, Family::H2.name()),
        "M/G/1-PS with the h2 family"
    );
}
