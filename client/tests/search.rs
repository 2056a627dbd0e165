//! `qload search`: its JSON output held to the checked-in schema, its exit codes, and (ignored,
//! real sockets and timing) the knee of an in-process M/M/1 qserve against theory.
//!
//! The schema is generated from the Rust types (`queuelab_client::search::json_schema`); the
//! checked-in file must be that, byte for byte. After a change to the search result types,
//! rewrite it with `UPDATE_SCHEMA=1 cargo test -p queuelab-client --test search` and review the
//! diff.
mod support;

use std::net::SocketAddr;
use std::process::{Command, Output};

use queuelab_client::search::{SearchResult, Status, Verdict};
use queuelab_common::model::{Model, Servers};
use queuelab_common::samplers::ServiceKind;
use serde_json::Value;
use support::{Behavior, TestServer, refusing_addr};

const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/search.schema.json");

fn qload(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qload"))
        .args(args)
        .output()
        .expect("qload runs")
}

/// `qload search ARGS URL`, ARGS split at whitespace.
fn search(args: &str, url: &str) -> Output {
    let mut all = vec!["search"];
    all.extend(args.split_whitespace());
    all.push(url);
    qload(&all)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The generated schema, as the file holds it: pretty-printed, with a final newline.
fn generated_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&queuelab_client::search::json_schema())
        .expect("the schema serializes");
    text.push('\n');
    text
}

#[test]
fn the_schema_file_is_generated_from_the_types() {
    let want = generated_schema_text();
    if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(SCHEMA_FILE, &want).expect("rewriting the schema");
        return;
    }
    let have = std::fs::read_to_string(SCHEMA_FILE).expect("the schema is checked in");
    assert!(
        have == want,
        "{SCHEMA_FILE} is not the schema the search types generate. If the types changed on \
         purpose, rewrite it with `UPDATE_SCHEMA=1 cargo test -p queuelab-client --test search` \
         and review the diff."
    );
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(SCHEMA_FILE).expect("the schema is checked in");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

/// `stdout` is one search result valid against the schema; it is returned parsed.
fn valid_result(v: &jsonschema::Validator, stdout: &[u8]) -> SearchResult {
    let json: Value = serde_json::from_slice(stdout).expect("one JSON document");
    let errors: Vec<String> = v
        .iter_errors(&json)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    serde_json::from_value(json).expect("reads back")
}

#[test]
fn a_short_search_prints_a_valid_document() {
    let v = schema();
    let server = TestServer::start(Behavior::Length);
    let url = format!("http://{}/", server.addr());
    // Two probes of 200 ms (10 batches of 20 ms) against an instant server: p99 < 1 s holds at
    // both (whatever the machine's load, an answer on loopback takes far less), so the answer is
    // "at least --hi".
    let o = search(
        "--slo p99<1s,mean<1s --lo 200 --hi 400 -d 200ms --warmup 0s -t 1 --no-pin --json",
        &url,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let r = valid_result(&v, &o.stdout);
    assert_eq!(r.status, Status::AtLeast);
    assert_eq!(r.rate, Some(400.0));
    assert_eq!(r.bracket, [Some(400.0), None]);
    assert_eq!(r.probes.len(), 2);
    assert_eq!(r.objective, "p99<1s,mean<1s");
    assert_eq!(r.limits["p99_us"], 1e6);
    // Too few answers for 20 batches of 100 each: 10 batches of 20 ms.
    assert_eq!(r.config.interval_s, None);
    assert!(
        r.probes.iter().all(|p| p.interval_s == 0.02),
        "{:?}",
        r.probes
    );
    for p in &r.probes {
        assert_eq!(p.verdict, Verdict::Meets);
        assert!(p.completed > 0 && p.failed == 0, "{p:?}");
        assert!(
            p.estimate["p99_us"].is_some_and(|x| x > 0.0 && x < 1e6),
            "{p:?}"
        );
        assert!(p.estimate.contains_key("mean_us"));
    }
    // The probe lines went to stderr, one per probe.
    let err = text(&o.stderr);
    assert_eq!(
        err.lines().filter(|l| l.contains("/s  mean ")).count(),
        2,
        "{err}"
    );

    // Without --json: the probe lines, then the summary, on stdout.
    let o = search(
        "--slo p99<1s --lo 200 --hi 400 -d 200ms --warmup 0s -t 1 --no-pin",
        &url,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("   200.0/s  p99 "), "{out}");
    assert!(
        out.contains("knee: at least 400.0/s (meets p99<1s)"),
        "{out}"
    );
}

#[test]
fn no_answer_exits_1_with_the_document() {
    let v = schema();
    let url = format!("http://{}/", refusing_addr());
    let o = search(
        "--slo p99<10ms --lo 100 -d 200ms --warmup 0s -t 1 --no-pin --json -q",
        &url,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no rate meets p99<10ms"),
        "{}",
        text(&o.stderr)
    );
    assert!(!text(&o.stderr).contains("/s  p99 "), "-q: no probe lines");
    let r = valid_result(&v, &o.stdout);
    assert_eq!(
        (r.status, r.rate, r.bracket),
        (Status::BelowLo, None, [None, Some(100.0)])
    );
    assert_eq!(r.probes.len(), 1);
    assert!(r.probes[0].failed > 0 && r.probes[0].completed == 0);
}

#[test]
fn bad_usage_exits_2() {
    for (args, want) in [
        (
            &["search", "--slo", "p99<10", "http://127.0.0.1:1/"][..],
            "needs a unit",
        ),
        (
            &[
                "search",
                "--slo",
                "p99<10ms",
                "-R",
                "5",
                "http://127.0.0.1:1/",
            ],
            "--rate",
        ),
        (&["search", "http://127.0.0.1:1/"], "--slo"),
    ] {
        let o = qload(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            text(&o.stderr).contains(want),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }
}

fn qserve_mm1(mu: f64) -> queuelab_server::Handle {
    queuelab_server::start(queuelab_server::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        model: Model::new(mu, Servers::Finite(1)).with_service(ServiceKind::Exp),
        seed: 17,
        ..queuelab_server::Config::default()
    })
    .expect("qserve starts")
}

/// The knee of M/M/1 (μ = 1000/s) for p99 < 10 ms, from [100, 1000]/s with probes of 2 s.
///
/// Theory: the sojourn time S is Exp(μ − λ), p99 = ln(100)/(μ − λ) < 10 ms ⇔ λ < λ* = 539.5/s.
///
/// The tolerance, derived.
///
/// What is measured: the latency M of an answer is its sojourn in qserve's queue plus qserve's
/// timer lateness plus the path P (client, both kernels, the loops: latency minus the
/// Server-Timing durations, measured on every answer; its largest value over the probes is
/// P̂). qserve's queue sees the intended arrival times shifted by the send lag; iid shifts keep
/// a Poisson process Poisson, stalls bunch it and only add queueing, so S ≤ M always and, when
/// every probe kept its schedule, M ≤ S + O with O = P̂ + 1 ms (the lateness of qserve's
/// departure timer, which busy-waits its last 50 µs, stays far below that on a machine that
/// keeps a schedule). Hence the true crossing of the measured p99 lies in [λ_O, λ*] with
/// λ_O = μ − ln(100)/(10 ms − O) (O = 2 ms gives 424/s).
///
/// Noise: a probe is decided wrongly only if its estimate lies on the wrong side of 10 ms,
/// off its true p99 by at least that p99's distance from the bound. If every estimate is within
/// a relative ±h of its truth, wrong decisions happen only at rates where p99(r) is within
/// that of 10 ms: p99 ∝ 1/(μ − r), so within (μ − λ_c)·h of the crossing λ_c. The answer g met
/// and the lowest failing rate is above it by at most the resolution (5% of g), so
/// λ_O − (μ − λ_O)·h − 5% · g < g < λ* + (μ − λ*)·h.
///
/// h from the probes themselves: each reports a 95% interval whose half-width is t · SE with
/// t ≤ t_{0.975, 9} = 2.262 (10 batches of 200 ms, ~100 answers each at the knee, so a
/// batch p99 is not just its maximum); in the normal approximation of the batch method, an
/// estimate is off by more than 5.6 SE with probability 2·10⁻⁸, under 10⁻⁶ over the at most 16
/// probes. So h = 5.6/2.093 · (largest relative half-width) (2.093 = t_{0.975, 19}, the
/// smallest t a pooled probe has, makes the SE the largest). With the intervals qload gives
/// here (±10–25%) h is 0.3–0.7: a wide range, but derived: it catches a search that bisects
/// the wrong way, mistakes units or understates its intervals; precision is for the benchmark.
///
/// On a machine too loaded to keep the schedule (or with a path near 10 ms) only the upper
/// bound is asserted, and an answer of none is allowed.
#[test]
#[ignore = "end to end and timing-dependent: scripts/test.sh runs it (cargo test -- --ignored)"]
fn the_knee_of_mm1_matches_theory() {
    let (mu, limit_s) = (1000.0f64, 0.010f64);
    let server = qserve_mm1(mu);
    let url = format!("http://{}/", server.local_addr());
    let o = search(
        concat!(
            "--slo p99<10ms --lo 100 --hi 1000 --resolution 5% --repeats 2 --max-probes 16 ",
            "-d 2s --warmup 0.5s --no-pin --seed 5 --json -q"
        ),
        &url,
    );
    server.shutdown();
    let _ = server.join();
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        text(&o.stderr)
    );
    let r = valid_result(&schema(), &o.stdout);
    let probes: Vec<(f64, Verdict, u32, Option<f64>)> = r
        .probes
        .iter()
        .map(|p| (p.rate, p.verdict, p.repeats, p.estimate["p99_us"]))
        .collect();
    let rel = r
        .probes
        .iter()
        .filter_map(|p| {
            let (e, lo, hi) = (p.estimate["p99_us"]?, p.low["p99_us"]?, p.high["p99_us"]?);
            Some((hi - lo) / (2.0 * e))
        })
        .fold(0.0f64, f64::max);
    let h = 5.6 / 2.093 * rel;
    let lambda_star = mu - 100f64.ln() / limit_s;
    let high = lambda_star + (mu - lambda_star) * h;
    let path_s = r
        .probes
        .iter()
        .filter_map(|p| p.path_max_us)
        .fold(0.0f64, f64::max)
        / 1e6;
    let overhead_s = path_s + 0.001;
    let kept = r.probes.iter().all(|p| p.schedule_kept);
    let low = if kept && overhead_s < limit_s {
        let lambda_o = mu - 100f64.ln() / (limit_s - overhead_s);
        lambda_o - (mu - lambda_o) * h - 0.05 * high
    } else {
        f64::NEG_INFINITY
    };
    let why = format!(
        "bounds ({low:.1}, {high:.1}) with h {h:.3}, path max {:.0} us, schedule kept {kept}; \
         probes {probes:?}",
        path_s * 1e6
    );
    match r.rate {
        Some(g) => assert!(low < g && g < high, "knee {g:.1}/s outside the {why}"),
        None => assert!(low < 100.0, "no answer, although 100/s should meet: {why}"),
    }
    // 1000/s is past μ: wherever it is probed (second, after --lo met) it fails.
    if let Some(p) = r.probes.get(1) {
        assert_eq!((p.rate, p.verdict), (1000.0, Verdict::Fails), "{why}");
    }
    eprintln!("knee {:?} ({:?}): {why}", r.rate, r.status);
}
