//! The lab's reference and its scrape of `/metrics`, end to end: a short sweep against qserve on
//! 127.0.0.1:0, then the recorded reference, the metrics window of the measured run, Little's
//! law where the server integrates the number in system, and the outputs that show them.
//!
//! Behaviour, not speed: the window's length and counts are held to bounds that a loaded
//! machine meets (the scrapes land within tens of milliseconds of the window's edges).
use std::fs;
use std::time::Duration;

use clap::Parser;
use queuelab_common::model::{Model, Servers};
use queuelab_lab::SweepArgs;
use queuelab_lab::record::{ReferenceKind, ResultsFile};
use queuelab_lab::sweep;

mod support;
use support::temp_dir;

#[derive(Debug, Parser)]
struct SweepCli {
    #[command(flatten)]
    args: SweepArgs,
}

#[test]
#[ignore = "timing-dependent end to end; scripts/test.sh runs it"]
fn a_sweep_records_its_reference_and_the_servers_window() {
    let srv = queuelab_server::start(queuelab_server::Config {
        listen: "127.0.0.1:0".parse().expect("literal address"),
        model: Model::new(2000.0, Servers::Finite(1)),
        seed: 5,
        spin: Duration::from_micros(50),
        ..queuelab_server::Config::default()
    })
    .expect("qserve starts on 127.0.0.1:0");
    let url = format!("http://{}/", srv.local_addr());
    let out = temp_dir("reference");
    let out_s = out.to_string_lossy().into_owned();
    let words = [
        "sweep",
        "--mu",
        "2000",
        "--rhos",
        "0.5",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
        "--out",
        &out_s,
        "--threads",
        "1",
        "--no-pin",
        "--attempts",
        "1",
        &url,
    ];
    let plan = SweepCli::try_parse_from(words)
        .expect("flags parse")
        .args
        .plan()
        .expect("flags validate");
    assert_eq!(plan.sim_replications, 10, "the default");
    let mut log = Vec::new();
    let res = sweep::sweep(&plan, &mut log).expect("sweep runs");
    let log = String::from_utf8_lossy(&log);
    assert!(
        !log.contains("simulating"),
        "M/M/1 needs no simulation: {log}"
    );
    assert!(!log.contains("no /metrics window"), "{log}");

    let file = ResultsFile::read(&out).expect("results.json reads back");
    let rec = &file.points[0];
    // The closed form is the reference, recorded as such.
    let r = rec.reference.as_ref().expect("a reference");
    assert_eq!(r.kind, ReferenceKind::Theory);
    assert!((r.mean_us.expect("W") - 1000.0).abs() < 1e-6, "1/(μ − λ)");
    assert_eq!(r.replications, None);
    // The window is the measured one: 2 s by the server's clock, give or take the scrapes'
    // alignment (a loaded machine may wake the scraper late; 0.5 s would mean the warm-up
    // was in it).
    let w = rec.metrics.as_ref().expect("qserve's /metrics window");
    assert!(w.measured_only);
    assert!((w.uptime_s - 2.0).abs() < 0.25, "{w:?}");
    // The requests served in it are about those the client measured (±25% for the same
    // alignment at 1000/s, plus the ones in flight at the edges).
    let served = w.sojourn_count.expect("sojourn count") as f64;
    let measured = rec.measured.completed as f64;
    assert!(
        (served / measured - 1.0).abs() < 0.25,
        "{served} vs {measured}"
    );
    let a = &res.rendered.points[0];
    assert_eq!(a.ref_label().as_deref(), Some("theory"));
    assert!(
        res.rendered.table.contains(" theory"),
        "{}",
        res.rendered.table
    );
    // Little's law where the server integrates N (qserve_in_system_seconds_total).
    match (w.in_system_s, a.little) {
        (Some(_), Some(l)) => {
            assert!(l.ratio.is_finite() && l.ratio > 0.0, "{l:?}");
            assert!(res.rendered.table.contains("L/XW"));
        }
        (None, l) => assert_eq!(l, None),
        (Some(_), None) => panic!("an integral and a net mean give a ratio: {a:?}"),
    }
    let html = fs::read_to_string(out.join("index.html")).expect("index.html");
    assert!(
        html.contains("<th>ref</th>"),
        "the page names the reference"
    );
    drop(srv);
    fs::remove_dir_all(&out).expect("cleanup");
}
