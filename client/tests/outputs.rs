//! The outputs of a real run against an in-process qserve: the `--hgrm` files, the UTC window,
//! and the batches of the interval of the mean (enough of them in two seconds, and a text that
//! says why there is no interval after five requests).
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use queuelab_client::batches::{HALF_SLOTS, MIN_BATCHES, SLOTS};
use queuelab_client::hgrm;
use queuelab_client::result::RunResult;
use queuelab_client::utc::parse_rfc3339;
use queuelab_client::{Config, Mode, Target, run};
use queuelab_common::model::{Model, Servers};
use queuelab_common::samplers::{ArrivalKind, ServiceKind};
use queuelab_common::stats::histogram_from_string;

fn qserve(service: ServiceKind) -> queuelab_server::Handle {
    queuelab_server::start(queuelab_server::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        model: Model::new(1000.0, Servers::Finite(1)).with_service(service),
        seed: 3,
        ..queuelab_server::Config::default()
    })
    .expect("qserve starts")
}

fn qload(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qload"))
        .args(args)
        .output()
        .expect("qload runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh directory for this test's files.
fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("qload-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Reads an hgrm file and checks what any such file must hold: monotone rows from percentile
/// 0 to 1, the last at the footer's count and maximum.
fn read_hgrm(path: &std::path::Path) -> hgrm::Parsed {
    let t = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let p = hgrm::parse(&t).unwrap_or_else(|| panic!("{} does not parse:\n{t}", path.display()));
    let (first, last) = (p.rows[0], p.rows[p.rows.len() - 1]);
    assert_eq!(first.1, 0.0);
    assert_eq!((last.1, last.2, last.3), (1.0, p.count, None));
    assert_eq!(last.0, p.max);
    for w in p.rows.windows(2) {
        assert!(
            w[0].0 <= w[1].0 && w[0].1 <= w[1].1 && w[0].2 <= w[1].2,
            "{w:?}"
        );
    }
    p
}

#[test]
fn hgrm_files_are_written_by_a_run_and_by_a_merge() {
    let server = qserve(ServiceKind::Zero);
    let url = format!("http://{}/", server.local_addr());
    let d = dir("hgrm");
    let file = d.join("run.hgrm");
    let file_arg = file.to_string_lossy().into_owned();
    let o = qload(&[
        "-R", "500", "-n", "200", "--no-pin", "-t", "1", "--json", "--hgrm", &file_arg, &url,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let r: RunResult = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(r.requests.completed, 200);
    let corrected = read_hgrm(&file);
    let uncorrected = read_hgrm(&d.join("run.uncorrected.hgrm"));
    // Each file is its histogram: the count, and the maximum in ms to the nanosecond.
    for (p, h, what) in [
        (&corrected, &r.histogram, "corrected"),
        (&uncorrected, &r.histogram_uncorrected, "uncorrected"),
    ] {
        let h = histogram_from_string(h).expect("decodes");
        assert_eq!(p.count, 200, "{what}");
        assert_eq!(p.max, h.max() as f64 / 1e6, "{what}");
        assert_eq!(p.buckets.0, u64::from(h.buckets()), "{what}");
    }
    // A request's latency from the write is at most its latency from the intended time.
    assert!(uncorrected.max <= corrected.max);
    assert!(uncorrected.mean <= corrected.mean);

    // The merge of the run with itself: twice every count.
    let json = d.join("run.json");
    std::fs::write(&json, &o.stdout).expect("write the result");
    let json_arg = json.to_string_lossy().into_owned();
    let merged = d.join("merged");
    let merged_arg = merged.to_string_lossy().into_owned();
    let o = qload(&["merge", "--hgrm", &merged_arg, &json_arg, &json_arg]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let m = read_hgrm(&merged);
    assert_eq!((m.count, m.max), (400, corrected.max));
    assert_eq!(m.rows.last().map(|r| r.2), Some(400));
    assert_eq!(read_hgrm(&d.join("merged.uncorrected")).count, 400);

    // An unwritable file is a failure at run time (exit 1), after the run.
    let o = qload(&[
        "-R",
        "500",
        "-n",
        "5",
        "--no-pin",
        "--hgrm",
        d.join("no/such/dir/x.hgrm").to_str().expect("utf-8 path"),
        &url,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("x.hgrm"), "{}", text(&o.stderr));
    server.shutdown();
    let _ = server.join();
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_run_too_short_for_an_interval_says_why_and_records_its_window() {
    let server = qserve(ServiceKind::Zero);
    let url = format!("http://{}/", server.local_addr());
    let before = SystemTime::now();
    let o = qload(&["-R", "500", "-n", "5", "--no-pin", "--json", &url]);
    let after = SystemTime::now();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let r: RunResult = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(r.requests.completed, 5);
    assert_eq!(
        (r.latency_us.ci95_low, r.latency_us.ci95_high),
        (None, None)
    );
    assert_eq!(r.latency_uncorrected_us.ci95_low, None);
    let b = r.batches.as_ref().expect("a run records its batches");
    assert!(b.nonempty() <= 5 && b.nonempty() < MIN_BATCHES, "{b:?}");
    assert_eq!(b.count.iter().sum::<u64>(), 5);
    // The window: within the time the process ran, as long as the measured duration (to the
    // microseconds the times are written with).
    let start = parse_rfc3339(r.start_utc.as_deref().expect("start_utc")).expect("RFC 3339");
    let end = parse_rfc3339(r.end_utc.as_deref().expect("end_utc")).expect("RFC 3339");
    let slack = Duration::from_millis(1);
    assert!(before <= start + slack && end <= after + slack, "{r:?}");
    let window = end
        .duration_since(start)
        .expect("end after start")
        .as_secs_f64();
    assert!(
        (window - r.duration_s).abs() <= 2e-6,
        "{window} vs {}",
        r.duration_s
    );

    // The text says why the interval is missing, and shows the window.
    let o = qload(&["-R", "500", "-n", "5", "--no-pin", &url]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let t = text(&o.stdout);
    let why = t
        .lines()
        .find(|l| l.trim_start().starts_with("latency"))
        .expect("a latency line");
    assert!(
        why.contains("(CI left out: ") && why.contains(", need 10)"),
        "{t}"
    );
    assert!(t.contains("  window      ") && t.contains("Z (UTC)"), "{t}");
    server.shutdown();
    let _ = server.join();
}

/// Two seconds of M/M/1 at ρ = 0.2: 400 answers over 31 batches of 64 ms (32 slots of 64 ms
/// cover 2.048 s; the 16 ms of the last slot join the one before). With about 13 answers per
/// batch, every batch holds one unless no answer completes in 64 ms, probability about e^-13
/// per batch even at half the rate (a machine that stalls for a whole batch would empty one;
/// 10 non-empty of 31 still leave a wide margin).
#[test]
#[ignore = "real sockets and rates: scripts/test.sh runs it (cargo test -- --ignored)"]
fn a_two_second_run_gets_enough_batches_and_a_non_negative_interval() {
    let server = qserve(ServiceKind::Exp);
    let mut c = Config::new(
        Target::get(server.local_addr()),
        Mode::Open {
            rate: 200.0,
            arrival: ArrivalKind::Poisson,
        },
    );
    c.pin = false;
    c.duration = Some(Duration::from_secs(2));
    let r = run(c).expect("the run completes");
    server.shutdown();
    let _ = server.join();
    let b = r.batches.as_ref().expect("batches");
    assert!(
        (HALF_SLOTS..=SLOTS).contains(&b.count.len()),
        "{} batches",
        b.count.len()
    );
    assert!((b.length_s - 0.064).abs() < 1e-12, "{b:?}");
    assert!(b.nonempty() >= MIN_BATCHES, "{b:?}");
    assert_eq!(b.count.iter().sum::<u64>(), r.requests.completed);
    for l in [&r.latency_us, &r.latency_uncorrected_us] {
        let (lo, hi) = (
            l.ci95_low.expect("an interval"),
            l.ci95_high.expect("an interval"),
        );
        assert!(lo >= 0.0 && lo >= l.min, "{l:?}");
        assert!(lo <= l.mean && l.mean <= hi && hi <= l.max, "{l:?}");
    }
}
