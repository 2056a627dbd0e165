//! Closed sweeps: the flags, the record's round trip, the analysis of a canned point against the
//! M/M/1//N birth–death chain, the plots, and (ignored: timing-dependent) a short sweep against
//! qserve on loopback.
use std::fs;
use std::time::Duration;

use queuelab_client::result::{DurationSummary, Interval, Requests, RunResult};
use queuelab_common::model::{Model, Servers};
use queuelab_common::sim::SimOptions;
use queuelab_common::theory;
use queuelab_lab::ReportArgs;
use queuelab_lab::closed::{self, ClosedAnalysis};
use queuelab_lab::record::{ClosedPointRecord, ClosedSweep, ResultsFile, Verdict};
use queuelab_lab::sweep::SweepKind;

mod support;
use support::{parse, plan, temp_dir};

const URL: &str = "http://127.0.0.1:9/";

#[test]
fn users_and_think_make_a_closed_plan() {
    let p = plan(&["--users", "1,2,4", "--think", "10ms", URL]).expect("valid");
    match p.kind {
        SweepKind::Closed(cp) => {
            assert_eq!(cp.users, [1, 2, 4]);
            assert_eq!(cp.think, Duration::from_millis(10));
        }
        k => panic!("not closed: {k:?}"),
    }
    // Without --users the sweep is of the load, as before.
    assert_eq!(plan(&[URL]).expect("valid").kind, SweepKind::Load);
}

#[test]
fn the_simulated_references_take_the_sweeps_replications_and_seed() {
    let words = [
        "--users",
        "1,2",
        "--think",
        "1ms",
        "--sim-replications",
        "4",
        "--seed",
        "9",
        URL,
    ];
    match plan(&words).expect("valid").kind {
        SweepKind::Closed(cp) => assert_eq!((cp.sim.replications, cp.sim.seed), (4, 9)),
        k => panic!("not closed: {k:?}"),
    }
    let words = ["--cv2", "1,4", "--sim-replications", "3", "--seed", "5"];
    match plan(&words).expect("valid").kind {
        SweepKind::Variability(vp) => assert_eq!((vp.sim.replications, vp.sim.seed), (3, 5)),
        k => panic!("not a variability sweep: {k:?}"),
    }
}

#[test]
fn closed_flags_conflict_with_a_load_list_and_need_each_other() {
    for words in [
        &["--users", "1,2", "--think", "1ms", "--rhos", "0.5", URL][..],
        &["--users", "1,2", "--think", "1ms", "--quick", URL][..],
        &["--users", "1,2", "--think", "1ms", "--cv2", "1", URL][..],
        &["--users", "1,2", URL][..],
        &["--think", "1ms", URL][..],
        &["--users", "two", "--think", "1ms", URL][..],
    ] {
        assert!(parse(words).is_err(), "{words:?} parsed");
    }
    for (words, says) in [
        (&["--users", "0,2", "--think", "1ms", URL][..], "at least 1"),
        (
            &["--users", "2", "--think", "1ms", "--servers", "inf", URL][..],
            "finite number of servers",
        ),
        (
            &["--users", "2", "--think", "1ms", "--capacity", "4", URL][..],
            "--capacity",
        ),
        (
            &["--users", "2", "--think", "1ms", "--service", "h2", URL][..],
            "--service h2",
        ),
    ] {
        let e = plan(words).expect_err("refused");
        assert!(format!("{e:#}").contains(says), "{words:?}: {e:#}");
    }
}

/// An M/M/1 point of `users` users with think time `think_s`, as qload would report it: 16
/// one-second intervals whose completions give the throughput `x` (±`spread` alternately) and
/// whose server means give `r_us`, a path of `path_us` on every answer.
fn canned(users: u32, think_s: f64, x: f64, spread: f64, r_us: f64, path_us: f64) -> RunResult {
    let intervals: Vec<Interval> = (0..16)
        .map(|k| {
            let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
            let completed = (x + sign * spread).round() as u64;
            Interval {
                t_s: f64::from(k),
                duration_s: 1.0,
                sent: completed,
                completed,
                mean_us: r_us + path_us + sign * 2.0,
                mean_uncorrected_us: r_us + path_us,
                server_mean_us: Some(r_us + sign * 2.0),
                path_mean_us: Some(path_us),
                ..Interval::default()
            }
        })
        .collect();
    let completed: u64 = intervals.iter().map(|i| i.completed).sum();
    let summary = |mean: f64| DurationSummary {
        count: completed,
        mean,
        p50: mean,
        p90: mean,
        p99: mean,
        max: mean,
        histogram: String::new(),
    };
    let mut r = RunResult {
        mode: "closed".into(),
        duration_s: 16.0,
        throughput: completed as f64 / 16.0,
        requests: Requests {
            sent: completed,
            completed,
            ..Requests::default()
        },
        intervals,
        server_us: Some(summary(r_us)),
        path_us: Some(summary(path_us)),
        ..RunResult::default()
    };
    r.latency_us.mean = r_us + path_us;
    r.latency_us.count = completed;
    r.config.users = Some(u64::from(users));
    r.config.think_s = Some(think_s);
    r
}

fn record(users: u32, think_s: f64, raw: RunResult, model: &Model) -> ClosedPointRecord {
    let path_s = raw.path_us.as_ref().map_or(0.0, |p| p.mean * 1e-6);
    ClosedPointRecord {
        index: 0,
        users,
        think_s,
        warmup_s: 1.0,
        seed: 1,
        reference: closed::reference(model, users, think_s + path_s, &SimOptions::default()).ok(),
        raw,
        attempts: 1,
        verdict: Some(Verdict::Ok),
        checks: Vec::new(),
        rejected: Vec::new(),
    }
}

fn mm1() -> Model {
    Model::new(1000.0, Servers::Finite(1))
}

#[test]
fn the_birth_death_reference_of_mm1_with_two_users_is_the_hand_computed_one() {
    // M/M/1//2, μ = 1000/s, Z = 10 ms: λ₀ = 2/Z = 200/s, λ₁ = 100/s, so π ∝ (1, 0.2, 0.02):
    // X = μ(1 − π₀) = 1000 · 0.22/1.22, Q = (0.2 + 2·0.02)/1.22, R = Q/X.
    let r = closed::reference(&mm1(), 2, 0.010, &SimOptions::default()).expect("theory");
    assert_eq!(r.source, "theory (MVA)");
    let x = 1000.0 * 0.22 / 1.22;
    let rr = (0.24 / 1.22) / x;
    assert!((r.throughput - x).abs() < 1e-9, "{}", r.throughput);
    assert!((r.response_s - rr).abs() < 1e-12, "{}", r.response_s);
    // Little over the cycle: N = X(R + Z).
    assert!((r.throughput * (r.response_s + 0.010) - 2.0).abs() < 1e-9);
    // One user never waits: R = D, X = 1/(D + Z). The knee N* = (D + Z)/D = 11.
    let one = closed::reference(&mm1(), 1, 0.010, &SimOptions::default()).expect("theory");
    assert!((one.response_s - 0.001).abs() < 1e-12);
    assert!((one.throughput - 1.0 / 0.011).abs() < 1e-9);
    assert!((one.n_star - 11.0).abs() < 1e-9);
    assert_eq!(one.throughput_half, None);
}

#[test]
fn a_canned_point_at_theory_is_covered_and_a_biased_one_is_not() {
    let model = mm1();
    let (users, z, path_us) = (4, 0.005, 30.0);
    let t = theory::closed_birth_death(1000.0, 1, z + path_us * 1e-6, users);
    let r_us = t.response_s * 1e6;
    let raw = canned(users, z, t.throughput, 3.0, r_us, path_us);
    let a: ClosedAnalysis = closed::analyze(&record(users, z, raw, &model));
    // Z_eff = Z + the mean path.
    assert!((a.think_eff_s - (z + 30e-6)).abs() < 1e-12);
    let r = a.reference.as_ref().expect("a reference");
    assert!((r.throughput - t.throughput).abs() < 1e-9);
    // X: the completions over the 16 s, rounded per interval (so within 0.5/s of theory).
    assert!(
        (a.throughput - t.throughput).abs() <= 0.5,
        "{}",
        a.throughput
    );
    // The batch rates alternate ±3/s: s = 3·√(16/15), half-width t₁₅·s/√16.
    let (lo, hi) = a.throughput_ci.expect("16 batches");
    let half = 2.131_449_5 * 3.0 * (16.0f64 / 15.0).sqrt() / 4.0;
    assert!(((hi - lo) / 2.0 - half).abs() < 0.02, "{lo} {hi}");
    assert_eq!(a.covers_throughput, Some(true));
    assert_eq!(a.covers_response, Some(true));
    assert!((a.response_net_us.expect("net") - r_us).abs() < 1e-9);
    assert_eq!(a.path_us, Some(30.0));
    let little = a.little_users.expect("Little");
    assert!((little - f64::from(users)).abs() < 0.05, "{little}");

    // 5% too few answers, and a response 10% long: both outside their intervals.
    let biased = canned(users, z, t.throughput * 0.95, 3.0, r_us * 1.1, path_us);
    let b = closed::analyze(&record(users, z, biased, &model));
    assert_eq!(b.covers_throughput, Some(false));
    assert_eq!(b.covers_response, Some(false));
    assert!(b.err_response.is_some_and(|e| (e - 0.1).abs() < 1e-9));
}

#[test]
fn the_throughput_interval_joins_a_stub_to_the_batch_before_it() {
    let iv = |duration_s: f64, completed: u64| Interval {
        duration_s,
        completed,
        ..Interval::default()
    };
    let ci = closed::throughput_ci(&[iv(1.0, 100), iv(1.0, 120), iv(0.01, 5)]).expect("two");
    // Batches (100, 1 s) and (125, 1.01 s); estimate 225/2.01.
    assert!((ci.mean - 225.0 / 2.01).abs() < 1e-9);
    let rates: [f64; 2] = [100.0, 125.0 / 1.01];
    let m = (rates[0] + rates[1]) / 2.0;
    let s = (((rates[0] - m).powi(2) + (rates[1] - m).powi(2)) / 1.0).sqrt();
    let half = 12.706_204_7 * s / 2f64.sqrt();
    assert!(((ci.high - ci.low) / 2.0 - half).abs() < 1e-3 * half);
    assert!(closed::throughput_ci(&[iv(1.0, 100)]).is_none());
}

fn closed_file(points: Vec<ClosedPointRecord>) -> ResultsFile {
    let mut f: ResultsFile =
        serde_json::from_str(include_str!("data/lab-v1/results.json")).expect("fixture");
    f.points.clear();
    f.analysis.clear();
    f.config.service = "exp".into();
    f.config.mu = 1000.0;
    f.config.capacity = None;
    f.closed = Some(ClosedSweep {
        users: points.iter().map(|p| p.users).collect(),
        think_s: 0.005,
        analysis: points.iter().map(closed::analyze).collect(),
        points,
    });
    f
}

fn canned_points() -> Vec<ClosedPointRecord> {
    [1, 4, 16]
        .into_iter()
        .map(|n| {
            let t = theory::closed_birth_death(1000.0, 1, 0.005 + 30e-6, n);
            let raw = canned(n, 0.005, t.throughput, 3.0, t.response_s * 1e6, 30.0);
            ClosedPointRecord {
                index: n as usize,
                ..record(n, 0.005, raw, &mm1())
            }
        })
        .collect()
}

#[test]
fn a_closed_record_reads_back_as_written_and_old_files_have_none() {
    let dir = temp_dir("closed-record");
    fs::create_dir_all(&dir).expect("dir");
    let f = closed_file(canned_points());
    f.write(&dir).expect("written");
    let back = ResultsFile::read(&dir).expect("reads");
    // JSON keeps every value but may round the last bit of a float: compare the parts, and the
    // numbers to 1e-12.
    let (c, b) = (
        f.closed.as_ref().expect("closed"),
        back.closed.as_ref().expect("closed back"),
    );
    assert_eq!((&b.users, b.think_s), (&c.users, c.think_s));
    assert_eq!(b.points.len(), 3);
    for (p, q) in c.points.iter().zip(&b.points) {
        assert_eq!(
            (p.users, p.seed, p.verdict, p.attempts),
            (q.users, q.seed, q.verdict, q.attempts)
        );
        assert_eq!(p.raw.intervals.len(), q.raw.intervals.len());
        assert_eq!(p.raw.requests, q.raw.requests);
        let (r, s) = (
            p.reference.as_ref().expect("ref"),
            q.reference.as_ref().expect("ref"),
        );
        assert_eq!(r.source, s.source);
        for (x, y) in [
            (r.throughput, s.throughput),
            (r.response_s, s.response_s),
            (r.think_eff_s, s.think_eff_s),
            (r.n_star, s.n_star),
        ] {
            assert!((x - y).abs() <= 1e-12 * x.abs(), "{x} {y}");
        }
        let (a, a2) = (closed::analyze(p), closed::analyze(q));
        assert_eq!(
            (a.covers_throughput, a.covers_response),
            (a2.covers_throughput, a2.covers_response)
        );
    }
    assert_eq!(back.config, f.config);
    let text: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("results.json")).expect("text"))
            .expect("JSON");
    assert!(text.get("closed").is_some() && text.get("variability").is_none());
    // A file of a load sweep, written before closed sweeps existed, has neither section.
    let old: ResultsFile =
        serde_json::from_str(include_str!("data/lab-v1/results.json")).expect("fixture");
    assert!(old.closed.is_none() && old.variability.is_none());
    let again = serde_json::to_value(&old).expect("encodes");
    assert!(again.get("closed").is_none() && again.get("variability").is_none());

    // `qlab report` redraws it: the table, the CSV and both plots, the same bytes twice.
    queuelab_lab::report_main(ReportArgs { dir: dir.clone() }).expect("report");
    let table = fs::read_to_string(dir.join("table.txt")).expect("table");
    assert!(table.contains("theory (MVA)"), "{table}");
    assert!(
        table.contains("at 3 of 3 points and of R at 3 of 3"),
        "{table}"
    );
    let svg = fs::read_to_string(dir.join(closed::THROUGHPUT_SVG)).expect("plot");
    queuelab_lab::report_main(ReportArgs { dir: dir.clone() }).expect("report again");
    assert_eq!(
        fs::read_to_string(dir.join(closed::THROUGHPUT_SVG)).expect("plot"),
        svg
    );
    let csv = fs::read_to_string(dir.join(closed::CLOSED_CSV)).expect("csv");
    assert_eq!(csv.lines().count(), 4, "{csv}");
    fs::remove_dir_all(&dir).expect("cleanup");
}

fn series_ids(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
    doc.descendants()
        .filter_map(|n| n.attribute("id"))
        .filter_map(|id| id.strip_prefix("series-"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn both_plots_render_with_reference_bounds_and_knee() {
    let f = closed_file(canned_points());
    let r = closed::render(&f).expect("renders");
    assert_eq!(r.plots.len(), 2);
    for (name, svg) in &r.plots {
        let ids = series_ids(svg);
        for want in ["bound", "knee", "reference"] {
            assert!(ids.iter().any(|i| i == want), "{name}: {want} in {ids:?}");
        }
        assert!(
            ids.iter().any(|i| i.starts_with("measured")),
            "{name}: {ids:?}"
        );
        // The knee N* = (D + Z_eff)/D = 6.03 lies within the sweep (1 … 16).
        assert!(svg.contains("knee N* = 6.0"), "{name}");
    }
}

/// A qserve on 127.0.0.1:0 emulating M/M/1 at μ = 1000/s.
fn server() -> queuelab_server::Handle {
    queuelab_server::start(queuelab_server::Config {
        listen: "127.0.0.1:0".parse().expect("literal address"),
        model: mm1(),
        seed: 7,
        spin: Duration::from_micros(50),
        ..queuelab_server::Config::default()
    })
    .expect("qserve starts on 127.0.0.1:0")
}

#[test]
#[ignore = "timing-dependent end to end; scripts/test.sh runs it"]
fn a_closed_sweep_of_two_points_against_qserve() {
    let srv = server();
    let url = format!("http://{}/", srv.local_addr());
    let dir = temp_dir("closed-sweep");
    let out = dir.display().to_string();
    let p = plan(&[
        "--users",
        "1,4",
        "--think",
        "5ms",
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--attempts",
        "1",
        "--no-overhead",
        "--out",
        &out,
        &url,
    ])
    .expect("valid");
    let SweepKind::Closed(cp) = p.kind.clone() else {
        panic!("closed");
    };
    let o = closed::sweep(&p, &cp, &mut std::io::sink()).expect("the sweep runs");
    let file = ResultsFile::read(&dir).expect("results.json");
    let c = file.closed.as_ref().expect("a closed section");
    assert_eq!(c.points.len(), 2);
    assert!(file.points.is_empty());
    for (a, n) in c.analysis.iter().zip([1, 4]) {
        assert_eq!(a.users, n);
        assert_eq!(a.errors, 0);
        // Each user sends at most one request per think time plus a service: X < N/Z. Far
        // above zero: at least a tenth of N/(Z + D + 10 ms of path).
        assert!(
            a.throughput > 0.1 * f64::from(n) / 0.016,
            "{}",
            a.throughput
        );
        assert!(
            a.throughput < f64::from(n) / 0.005 * 1.5,
            "{}",
            a.throughput
        );
        // qserve sends Server-Timing: the net and the path exist and Z_eff exceeds Z.
        assert!(a.response_net_us.is_some() && a.path_us.is_some());
        assert!(a.think_eff_s > 0.005);
        let r = a.reference.as_ref().expect("theory for M/M/1");
        assert_eq!(r.source, "theory (MVA)");
        assert!(a.throughput_ci.is_some() && a.response_net_ci_us.is_some());
    }
    assert!(o.table.contains("N"), "{}", o.table);
    for name in [closed::THROUGHPUT_SVG, closed::RESPONSE_SVG, "table.txt"] {
        assert!(dir.join(name).is_file(), "{name}");
    }
    drop(srv);
    fs::remove_dir_all(&dir).expect("cleanup");
}
