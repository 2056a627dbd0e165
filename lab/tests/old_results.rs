//! `qlab report` on a sweep written by the lab before its results were read through qload's types
//! (`tests/data/lab-v1`: M/M/1/3 at μ = 2000/s, ρ = 0.4 and 1.2, 400 ms per point, recorded with
//! the `results.csv` and `table.txt` that version drew from it). The file reads back, and the
//! report redraws the same table and CSV, byte for byte.
use std::fs;
use std::path::{Path, PathBuf};

use queuelab_lab::measure;
use queuelab_lab::record::ResultsFile;
use queuelab_lab::report;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/lab-v1")
        .join(name)
}

/// A copy of the fixture's results.json alone in a fresh directory.
fn copy_of_fixture(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qlab-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("mkdir");
    fs::copy(fixture("results.json"), d.join("results.json")).expect("copy results.json");
    d
}

#[test]
fn a_results_file_of_the_previous_version_reads_back_typed() {
    let dir = copy_of_fixture("v1-read");
    let mut file = ResultsFile::read(&dir).expect("the old file reads");
    assert_eq!(file.points.len(), 2);
    for p in &mut file.points {
        let m = &p.measured;
        // The keys the old measurement had are there; those it lacked read as their defaults.
        assert!(m.completed > 0 && m.latency_us.mean > 0.0);
        assert_eq!((m.latency_us.count, m.latency_us.min), (0, 0.0));
        assert_eq!(m.send_lag_us.mean, 0.0);
        assert_eq!(m.batches, None);
        // The raw results are qload's typed results, whole.
        assert_eq!(p.raw.requests.completed, m.completed);
        assert_eq!(p.raw.requests.status.s503, m.blocked);
        assert_eq!(p.raw.latency_us.count, m.completed);
        assert_eq!(p.raw.latency_us.p99, m.latency_us.p99);
        assert_eq!(p.raw.histogram, m.histogram);
        let o = p.overhead.as_ref().expect("overhead measured");
        let o_raw = p.overhead_raw.as_ref().expect("overhead raw result");
        assert_eq!(o_raw.requests.completed, o.completed);
        // The report recounts the batches from the series: 400 ms in 16 intervals of 25 ms.
        measure::refresh_intervals(p);
        let b = queuelab_client::result::batch_count(&p.raw.intervals) as u64;
        assert_eq!(p.measured.batches, Some(b));
        assert!(b >= 16, "{b} batches");
    }
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn the_report_of_a_previous_sweep_is_unchanged() {
    let dir = copy_of_fixture("v1-report");
    let out = report::report(&dir).expect("qlab report on the old file");
    assert_eq!(out.rendered.points.len(), 2);
    for name in [
        "results.csv",
        "table.txt",
        "mean_vs_rho.svg",
        "error_vs_rho.svg",
        "cdf.svg",
        "blocking_vs_rho.svg",
    ] {
        let want = fs::read_to_string(fixture(name)).expect("fixture");
        let got = fs::read_to_string(dir.join(name)).expect("written");
        assert_eq!(
            got, want,
            "{name} differs from what the previous version drew"
        );
        if name.ends_with(".svg") {
            let doc = roxmltree::Document::parse(&got)
                .unwrap_or_else(|e| panic!("{name} is not well-formed: {e}"));
            let series = doc
                .descendants()
                .filter(|n| {
                    n.attribute("class")
                        .is_some_and(|c| c.starts_with("series "))
                })
                .count();
            assert!(series >= 2, "{name}: {series} series");
        }
    }
    fs::remove_dir_all(&dir).expect("cleanup");
}
