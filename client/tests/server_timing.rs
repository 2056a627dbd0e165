//! `Server-Timing` end to end: a small in-test server on 127.0.0.1 answers with chosen headers,
//! and the JSON result must count and decompose them; then, against qserve itself, the mean
//! latency must be the mean path plus the mean durations.
//!
//! One user in closed loop sends the requests one after the other on one connection, so the
//! server's k-th answer is the k-th request's and the mix of headers is known exactly.
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use queuelab_client::result::{MAX_TIMING_NAMES, RunResult};
use queuelab_client::{Mode, run};
use support::{Behavior, TestServer, config};

/// A server whose answer to its k-th request (over all connections) carries the header lines
/// `answers[k % answers.len()]`, after sleeping `delay`.
fn timing_server(answers: &'static [&'static [&'static str]], delay: Duration) -> TestServer {
    TestServer::start(Behavior::Timed { answers, delay })
}

/// `n` requests, one at a time, against `addr`.
fn one_by_one(addr: SocketAddr, n: u64) -> RunResult {
    let mut c = config(
        addr,
        Mode::Closed {
            users: 1,
            think: Duration::ZERO,
        },
    );
    c.requests = Some(n);
    c.duration = None;
    let r = run(c).expect("the run completes");
    assert_eq!(r.requests.completed, n, "{:?}", r.requests);
    r
}

/// Relative precision of a value read from a histogram of three significant digits.
const HIST_PRECISION: f64 = 1e-3;

#[test]
fn durations_are_counted_bounded_and_taken_out_of_the_latency() {
    // Four kinds of answers in turn, 10 of each: qserve-like durations (1 ms in all); nine more
    // names over two header lines (0.1 ms each), of which one finds the table of 8 full; a
    // malformed header; no header at all.
    static ANSWERS: &[&[&str]] = &[
        &["wait;dur=0.6, service;dur=0.4"],
        &[
            "a;dur=0.1, b;dur=0.1, c;dur=0.1",
            "d;dur=0.1, e;dur=0.1, f;dur=0.1, g;dur=0.1",
        ],
        &["wait;dur=abc"],
        &[],
    ];
    let server = timing_server(ANSWERS, Duration::from_millis(2));
    let r = one_by_one(server.addr(), 40);
    let h = r.server_timing_headers;
    assert_eq!((h.carried, h.malformed), (20, 10), "{h:?}");
    // wait, service, a … f fill the table; g is dropped from each of its 10 answers.
    assert_eq!(h.dropped_names, 10, "{h:?}");
    assert_eq!(h.negative_path, 0, "2 ms of sleep exceed every Σdur: {h:?}");
    let names: Vec<&str> = r.server_timing.keys().map(String::as_str).collect();
    assert_eq!(names.len(), MAX_TIMING_NAMES);
    assert_eq!(names, ["a", "b", "c", "d", "e", "f", "service", "wait"]);
    // Means from exact sums of exact nanoseconds.
    let wait = &r.server_timing["wait"];
    assert_eq!((wait.count, wait.mean), (10, 600.0));
    assert_eq!(r.server_timing["a"].count, 10);
    assert!((r.server_timing["a"].mean - 100.0).abs() < 1e-9);
    // p50 of ten 600 µs values, within the histogram's precision.
    assert!(
        (wait.p50 - 600.0).abs() <= 600.0 * HIST_PRECISION,
        "{wait:?}"
    );
    let server_us = r.server_us.as_ref().expect("answers carried durations");
    // Σdur: 1 ms on ten answers, 0.7 ms (g counted, though its name was not kept) on ten.
    assert_eq!(server_us.count, 20);
    assert!((server_us.mean - 850.0).abs() < 1e-9, "{server_us:?}");
    let path = r.path_us.as_ref().expect("answers carried durations");
    assert_eq!(path.count, 20);
    // Each path is its latency minus at most 1 ms, and each latency is at least 2 ms of sleep.
    assert!(
        path.max <= r.latency_us.max * (1.0 + HIST_PRECISION),
        "{path:?}"
    );
    assert!(
        path.p50 >= (2000.0 - 1000.0) * (1.0 - HIST_PRECISION),
        "{path:?}"
    );
    // The intervals' path counts add up to the carried answers (weighted by their means).
    let sum: f64 = r
        .intervals
        .iter()
        .filter_map(|i| i.server_mean_us.map(|m| (m, i)))
        .map(|(m, i)| m * i.completed as f64)
        .sum();
    assert!(
        sum > 0.0,
        "some interval has a server mean: {:?}",
        r.intervals
    );
    // The JSON, with these fields filled, holds to the checked-in schema and reads back.
    let json = serde_json::to_value(&r).expect("serializes");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/result.schema.json"
    ))
    .expect("the schema is checked in");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    let v = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let back: RunResult = serde_json::from_value(json).expect("parses");
    assert_eq!(back, r);
}

#[test]
fn latency_is_path_plus_durations_when_every_answer_carries_them() {
    static ANSWERS: &[&[&str]] = &[&["wait;dur=0.6, service;dur=0.4"], &["service;dur=0.5"]];
    let server = timing_server(ANSWERS, Duration::from_millis(2));
    let r = one_by_one(server.addr(), 30);
    let h = r.server_timing_headers;
    assert_eq!(
        (h.carried, h.malformed, h.negative_path),
        (30, 0, 0),
        "{h:?}"
    );
    let server_us = r.server_us.as_ref().expect("carried");
    let path = r.path_us.as_ref().expect("carried");
    assert!((server_us.mean - 750.0).abs() < 1e-9, "{server_us:?}");
    // path = latency − Σdur answer by answer, so the means add up exactly; the latency mean
    // comes from its histogram, within its precision.
    let sum = path.mean + server_us.mean;
    assert!(
        (sum - r.latency_us.mean).abs() <= r.latency_us.mean * HIST_PRECISION,
        "path {} + server {} against latency {}",
        path.mean,
        server_us.mean,
        r.latency_us.mean
    );
    // Per interval too: each interval's path and server means add up to its latency mean
    // (both from exact sums over the same answers).
    for iv in r.intervals.iter().filter(|i| i.completed > 0) {
        let (p, s) = (
            iv.path_mean_us.expect("carried"),
            iv.server_mean_us.expect("carried"),
        );
        assert!((p + s - iv.mean_us).abs() <= 1e-6 * iv.mean_us, "{iv:?}");
        assert!(iv.path_p50_us.is_some(), "{iv:?}");
    }
}

#[test]
fn durations_above_the_latency_count_as_negative_paths() {
    static ANSWERS: &[&[&str]] = &[&["late;dur=60000"]];
    let server = timing_server(ANSWERS, Duration::ZERO);
    let r = one_by_one(server.addr(), 5);
    let h = r.server_timing_headers;
    assert_eq!((h.carried, h.negative_path), (5, 5), "{h:?}");
    let path = r.path_us.as_ref().expect("carried");
    assert_eq!((path.count, path.mean), (5, 0.0));
    assert_eq!(r.server_timing["late"].mean, 60_000_000.0);
}

#[test]
fn answers_without_the_header_leave_the_fields_empty() {
    static ANSWERS: &[&[&str]] = &[&[]];
    let server = timing_server(ANSWERS, Duration::ZERO);
    let r = one_by_one(server.addr(), 5);
    assert!(r.server_timing.is_empty());
    assert_eq!((r.path_us.as_ref(), r.server_us.as_ref()), (None, None));
    assert_eq!(r.server_timing_headers, Default::default());
    assert!(r.intervals.iter().all(|i| i.path_mean_us.is_none()
        && i.path_p50_us.is_none()
        && i.server_mean_us.is_none()));
}

/// Against qserve, which sends `wait`, `service` and `late` on every queued answer.
///
/// Tolerance: latency = path + Σdur holds answer by answer (no answer's durations exceed its
/// latency: qserve's clock starts after qload's intended time), so the exact means agree to
/// rounding; the 2% allow for the latency mean being read from its histogram (0.1%) and for
/// answers whose header might be missing or malformed (the check below requires none).
#[test]
#[ignore = "timing-dependent end to end; scripts/test.sh runs it"]
fn against_qserve_latency_is_path_plus_the_durations() {
    use queuelab_common::model::{Model, Servers};
    use queuelab_common::samplers::{ArrivalKind, ServiceKind};

    let server = queuelab_server::start(queuelab_server::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        model: Model::new(1000.0, Servers::Finite(1)).with_service(ServiceKind::Exp),
        seed: 11,
        ..queuelab_server::Config::default()
    })
    .expect("qserve starts");
    let mut c = config(
        server.local_addr(),
        Mode::Open {
            rate: 500.0,
            arrival: ArrivalKind::Poisson,
        },
    );
    c.duration = Some(Duration::from_secs(3));
    c.interval = Duration::from_millis(500);
    let r = run(c).expect("the run completes");
    server.shutdown();
    let _ = server.join();

    let h = r.server_timing_headers;
    assert!(r.requests.completed > 500, "{:?}", r.requests);
    assert_eq!(h.carried, r.requests.completed, "{h:?}");
    assert_eq!((h.malformed, h.dropped_names), (0, 0), "{h:?}");
    for name in ["wait", "service", "late"] {
        assert!(
            r.server_timing.contains_key(name),
            "{:?}",
            r.server_timing.keys()
        );
    }
    let path = r.path_us.as_ref().expect("carried");
    let durations: f64 = r.server_timing.values().map(|d| d.mean).sum();
    let sum = path.mean + durations;
    assert!(
        (sum - r.latency_us.mean).abs() <= 0.02 * r.latency_us.mean,
        "path {} + durations {durations} against latency {}",
        path.mean,
        r.latency_us.mean
    );
}
