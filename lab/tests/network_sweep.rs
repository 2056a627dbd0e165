//! `qlab sweep --network`: the plan (a bad file, unstable loads refused naming the station, the
//! default loads), the per-station values and Burke's D from canned `/metrics` texts (exact), and
//! one short sweep end to end (ignored: it starts servers and runs qload).
mod support;

use std::fs;

use queuelab_common::network::Network;
use queuelab_lab::netsweep::{self, Loads, NetworkResults};
use queuelab_lab::scrape::Metrics;
use queuelab_lab::sweep::SweepKind;

use support::{plan, qserve, temp_dir};

const TANDEM: &str = r#"
[[station]]
name = "web"
mu = 1000
[[station]]
name = "db"
mu = 500
servers = 2
[routing]
entry = { web = 1.0 }
web = { db = 1.0 }
db = { exit = 1.0 }
"#;

/// Two M/M/1 stations of μ = 1000/s in a line.
const MM1_TANDEM: &str = "[[station]]\nname = \"a\"\nmu = 1000\n[[station]]\nname = \"b\"\nmu = 1000\n\
     [routing]\nentry = { a = 1.0 }\na = { b = 1.0 }\nb = { exit = 1.0 }\n";

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let d = temp_dir(name);
    fs::create_dir_all(&d).expect("temp dir");
    let p = d.join("net.toml");
    fs::write(&p, text).expect("write");
    p
}

#[test]
fn the_default_loads_are_five_fractions_of_lambda_max() {
    let p = write("net-default", TANDEM);
    let plan = plan(&["--network", p.to_str().expect("utf-8")]).expect("valid");
    let SweepKind::Network(np) = &plan.kind else {
        panic!("a network sweep")
    };
    // web: c μ / v = 1000; db: 2 × 500 / 1 = 1000: λ_max = 1000.
    assert_eq!(np.lambda_max, 1000.0);
    assert_eq!(np.rates, vec![200.0, 350.0, 500.0, 650.0, 800.0]);
    assert_eq!(plan.rhos, vec![0.2, 0.35, 0.5, 0.65, 0.8]);
}

#[test]
fn rates_and_rhos_are_planned_and_unstable_ones_refused_with_the_station() {
    let p = write("net-unstable", TANDEM);
    let path = p.to_str().expect("utf-8");
    let ok = plan(&["--network", path, "--rates", "100,900"]).expect("valid");
    let SweepKind::Network(np) = &ok.kind else {
        panic!("a network sweep")
    };
    assert_eq!(np.rates, vec![100.0, 900.0]);
    let e = plan(&["--network", path, "--rhos", "0.5,1.0"])
        .expect_err("ρ = 1 refused")
        .to_string();
    assert!(e.contains("\"web\"") && e.contains("1000"), "{e}");
    // db saturates first once web is faster.
    let p2 = write("net-unstable-db", &TANDEM.replace("mu = 1000", "mu = 3000"));
    let e = plan(&[
        "--network",
        p2.to_str().expect("utf-8"),
        "--rates",
        "500,1200",
    ])
    .expect_err("past λ_max refused")
    .to_string();
    assert!(e.contains("\"db\"") && e.contains("λ = 1200"), "{e}");
    assert!(
        !e.contains("λ = 500/s"),
        "only the unstable point is named: {e}"
    );
}

#[test]
fn a_bad_network_file_is_refused_with_its_reason() {
    let p = write(
        "net-bad",
        &TANDEM.replace("db = { exit = 1.0 }", "db = { exit = 0.5 }"),
    );
    let e = plan(&["--network", p.to_str().expect("utf-8")])
        .expect_err("a row not summing to 1")
        .to_string();
    assert!(e.contains("--network"), "{e}");
    let missing = temp_dir("net-missing").join("none.toml");
    let e = plan(&["--network", missing.to_str().expect("utf-8")])
        .expect_err("no file")
        .to_string();
    assert!(e.contains("reading"), "{e}");
    // No station saturates (infinite servers): rhos have no meaning.
    let net = Network::parse(
        &TANDEM
            .replace("servers = 2", "servers = \"inf\"")
            .replace("mu = 1000\n", "mu = 1000\nservers = \"inf\"\n"),
    )
    .expect("valid network");
    let e = netsweep::plan_rates(&net, f64::INFINITY, &Loads::Default).expect_err("no λ_max");
    assert!(e.contains("--rates"), "{e}");
}

/// Two scrapes of a web/db tandem 2 s apart (the series qserve --network writes).
const BEFORE: &str = r#"
qserve_uptime_seconds 10
qserve_arrivals_total 1000
qserve_busy_seconds_total{station="web"} 0.5
qserve_busy_seconds_total{station="db"} 1.0
qserve_in_system_seconds_total{station="web"} 0.75
qserve_in_system_seconds_total{station="db"} 1.5
qserve_sojourn_seconds_sum{station="web"} 0.7
qserve_sojourn_seconds_sum{station="db"} 1.4
qserve_sojourn_seconds_count{station="web"} 1000
qserve_sojourn_seconds_count{station="db"} 999
qserve_station_visits_total{station="web"} 1000
qserve_station_visits_total{station="db"} 999
qserve_station_blocked_total{station="web"} 0
qserve_station_blocked_total{station="db"} 0
qserve_station_departure_gap_seconds_bucket{station="web",le="0.001"} 100
qserve_station_departure_gap_seconds_bucket{station="web",le="0.002"} 150
qserve_station_departure_gap_seconds_bucket{station="web",le="+Inf"} 200
qserve_station_departure_gap_seconds_sum{station="web"} 0.4
qserve_station_departure_gap_seconds_count{station="web"} 200
"#;
const AFTER: &str = r#"
qserve_uptime_seconds 12
qserve_arrivals_total 2000
qserve_busy_seconds_total{station="web"} 1.5
qserve_busy_seconds_total{station="db"} 2.6
qserve_in_system_seconds_total{station="web"} 2.75
qserve_in_system_seconds_total{station="db"} 5.5
qserve_sojourn_seconds_sum{station="web"} 2.7
qserve_sojourn_seconds_sum{station="db"} 5.4
qserve_sojourn_seconds_count{station="web"} 2000
qserve_sojourn_seconds_count{station="db"} 1999
qserve_station_visits_total{station="web"} 2000
qserve_station_visits_total{station="db"} 1999
qserve_station_blocked_total{station="web"} 0
qserve_station_blocked_total{station="db"} 3
qserve_station_departure_gap_seconds_bucket{station="web",le="0.001"} 500
qserve_station_departure_gap_seconds_bucket{station="web",le="0.002"} 800
qserve_station_departure_gap_seconds_bucket{station="web",le="+Inf"} 1200
qserve_station_departure_gap_seconds_sum{station="web"} 2.4
qserve_station_departure_gap_seconds_count{station="web"} 1200
"#;

#[test]
fn per_station_values_from_two_scrapes_are_exact() {
    let net = Network::parse(TANDEM).expect("valid");
    let (a, b) = (Metrics::parse(BEFORE), Metrics::parse(AFTER));
    let w = netsweep::station_window(&net, &a, &b).expect("a window");
    assert_eq!(w.len(), 2);
    // web: Δbusy 1 s over ΔT 2 s, one server; Δ∫N 2 → L 1; W = 2 s / 1000; 1000 visits per
    // 1000 arrivals.
    assert_eq!((w[0].name.as_str(), w[0].utilisation), ("web", 0.5));
    assert_eq!(w[0].l, 1.0);
    assert_eq!(w[0].w_s, 2.0 / 1000.0);
    assert_eq!(w[0].visits, 1.0);
    // db: two servers: Δbusy 1.6 / (2 × 2) = 0.4; L = 4/2 = 2; W = 4/1000; 3 blocked.
    assert!(
        (w[1].utilisation - 0.4).abs() < 1e-15,
        "{}",
        w[1].utilisation
    );
    assert_eq!(w[1].l, 2.0);
    assert_eq!(w[1].w_s, 4.0 / 1000.0);
    assert_eq!(w[1].blocked, 3.0);
    // A scrape without a series is an error, not a zero.
    let e = netsweep::station_window(&net, &a, &Metrics::parse("qserve_uptime_seconds 12\n"))
        .expect_err("missing series");
    assert!(e.contains("qserve_arrivals_total"), "{e}");
}

#[test]
fn burke_d_from_canned_buckets_is_exact() {
    let net = Network::parse(TANDEM).expect("valid");
    let (a, b) = (Metrics::parse(BEFORE), Metrics::parse(AFTER));
    let checks = netsweep::burke(&net, &a, &b);
    // Only web: db has routing into it (and two servers).
    assert_eq!(checks.len(), 1);
    let c = &checks[0];
    assert_eq!(c.station, "web");
    // 1000 gaps summing to 2 s: λ̂ = 500/s. F_n(1 ms) = 400/1000, F_n(2 ms) = 650/1000.
    assert_eq!(c.n, 1000);
    assert_eq!(c.rate, 500.0);
    let d1 = (0.4 - (1.0 - (-0.5f64).exp())).abs();
    let d2 = (0.65 - (1.0 - (-1.0f64).exp())).abs();
    assert_eq!(c.d, d1.max(d2));
    // DKW: √(ln(2/α)/(2n)).
    assert_eq!(c.noise_05, ((2.0f64 / 0.05).ln() / 2000.0).sqrt());
    assert_eq!(c.noise_001, ((2.0f64 / 1e-3).ln() / 2000.0).sqrt());
    assert!(c.expected_poisson);
}

#[test]
fn batch_intervals_are_student_t_over_the_batches() {
    let m = netsweep::batch_interval(2.0, &[1.0, 3.0]);
    // s = √2, t(1) = 12.706, half = 12.706 · √2/√2.
    let (lo, hi) = m.ci95.expect("two batches");
    assert!(
        (hi - 2.0 - 12.7062).abs() < 1e-3 && (2.0 - lo - 12.7062).abs() < 1e-3,
        "{lo} {hi}"
    );
    assert!(netsweep::batch_interval(2.0, &[1.0]).ci95.is_none());
}

/// What every recorded point holds, whatever the machine did: the kept attempt's checks in the
/// order of `checks::NAMES`, one rejected attempt per re-run, each with a failed check, the
/// verdict ok exactly when every kept check passed (else every attempt was used), and the seed
/// of the attempt kept.
fn assert_checks_consistent(pt: &netsweep::NetPoint, max: u32) {
    use queuelab_lab::checks::NAMES;
    use queuelab_lab::record::Verdict;
    let names: Vec<&str> = pt.checks.iter().map(|c| c.name.as_str()).collect();
    let order: Vec<&str> = NAMES
        .iter()
        .copied()
        .filter(|n| names.contains(n))
        .collect();
    assert_eq!(names, order, "checks in their fixed order");
    for n in ["arrival_rate", "send_lag_p99", "send_lag_max", "errors"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    assert!((1..=max).contains(&pt.attempts), "{}", pt.attempts);
    assert_eq!(pt.rejected.len() as u32, pt.attempts - 1);
    for (k, a) in pt.rejected.iter().enumerate() {
        assert_eq!(a.attempt, k as u32 + 1);
        assert!(!a.failed.is_empty() && a.failed.iter().all(|c| !c.passed));
    }
    let all = pt.checks.iter().all(|c| c.passed);
    match pt.verdict {
        Some(Verdict::Ok) => assert!(all, "{:?}", pt.checks),
        Some(Verdict::Failed) => assert!(!all && pt.attempts == max, "{pt:?}"),
        None => panic!("no verdict"),
    }
    assert!(pt.seed.is_some(), "the kept attempt's seed");
}

/// The network sweeps of these tests run one at a time: each busy-polls a core.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pids of this process's children that run `qserve --network`.
fn network_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // pid (comm) state ppid …: the comm may hold spaces, so split after its ')'.
        let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
        let cmd = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        (ppid == me && cmd.split(|&b| b == 0).any(|a| a == b"--network")).then_some(pid)
    })
    .collect()
}

#[test]
#[ignore = "starts qserve and runs qload: timing-dependent end to end"]
fn a_stalled_network_attempt_is_measured_again_with_a_new_seed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let _one = serial();
    let p = write("net-stall", MM1_TANDEM);
    let dir = temp_dir("net-stall-out");
    let qs = qserve().display().to_string();
    let pl = plan(&[
        "--network",
        p.to_str().expect("utf-8"),
        "--rhos",
        "0.4",
        "--duration",
        "3s",
        "--warmup",
        "1s",
        "--attempts",
        "3",
        "--sim-replications",
        "3",
        "--busy-poll",
        "--qserve",
        &qs,
        "--out",
        dir.to_str().expect("utf-8"),
    ])
    .expect("valid");
    let SweepKind::Network(np) = pl.kind.clone() else {
        panic!("a network sweep")
    };
    let sp = pl.servers.clone().expect("local servers");
    let mut pl = pl;
    pl.servers = None;
    // The first attempt's qserve is stopped for 400 ms two seconds after it starts (a second
    // into its 3 s of measurement): fifty times the stall limit of this point,
    // √(2·3 s·0.01·W(1 − ρ)) = 11 ms with W = 2/(1000 − 400) s and ρ = 0.4.
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let staller = std::thread::spawn(move || {
        let start = Instant::now();
        let pid = loop {
            if flag.load(Ordering::Relaxed) || start.elapsed() > Duration::from_secs(30) {
                return None;
            }
            if let Some(&pid) = network_children().first() {
                break pid;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        std::thread::sleep(Duration::from_secs(2));
        let kill = |sig: &str| {
            std::process::Command::new("kill")
                .args([sig, &pid.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        };
        let stopped = kill("-STOP");
        std::thread::sleep(Duration::from_millis(400));
        kill("-CONT");
        Some(stopped)
    });
    let mut log = Vec::new();
    let res = netsweep::sweep(&pl, &np, &sp, &mut log);
    done.store(true, Ordering::Relaxed);
    let stalled = staller.join().expect("staller");
    let log = String::from_utf8_lossy(&log).into_owned();
    res.unwrap_or_else(|e| panic!("the sweep runs: {e:#}\n{log}"));
    assert_eq!(stalled, Some(true), "the first attempt was stopped: {log}");
    let r = NetworkResults::read(&dir).expect("results.json");
    let pt = &r.points[0];
    assert_checks_consistent(pt, 3);
    // The stall shows in a check of the first attempt (the server late, the client's sends
    // held, or the batch or path medians moved), which is measured again with a new seed.
    assert!(pt.attempts >= 2, "{log}");
    let first = &pt.rejected[0];
    assert!(
        first.failed.iter().any(|c| [
            "server_stall",
            "stationarity",
            "send_lag_max",
            "timer_late_p99",
            "overhead_stability"
        ]
        .contains(&c.name.as_str())),
        "{:?}",
        first.failed
    );
    assert!(
        log.contains("λ = 400.0/s: attempt 1 failed") && log.contains("; again"),
        "{log}"
    );
    let base = queuelab_lab::sweep::run_seed(1, 0, false);
    assert_eq!(
        pt.seed,
        Some(queuelab_lab::sweep::attempt_seed(base, pt.attempts))
    );
    assert_ne!(pt.seed, Some(base));
    let table = fs::read_to_string(dir.join("table.txt")).expect("table.txt");
    assert!(
        table.contains("re-run λ = 400.0/s: attempt 1 failed"),
        "{table}"
    );
    let csv = fs::read_to_string(dir.join("results.csv")).expect("results.csv");
    assert!(csv.contains(&format!(",{},", pt.attempts)), "{csv}");
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
#[ignore = "starts qserve and runs qload: timing-dependent end to end"]
fn a_short_tandem_sweep_writes_every_output() {
    let _one = serial();
    let p = write("net-e2e", MM1_TANDEM);
    let dir = temp_dir("net-e2e-out");
    let qs = qserve().display().to_string();
    let pl = plan(&[
        "--network",
        p.to_str().expect("utf-8"),
        "--rhos",
        "0.3,0.6",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
        "--sim-replications",
        "3",
        "--qserve",
        &qs,
        "--out",
        dir.to_str().expect("utf-8"),
    ])
    .expect("valid");
    let SweepKind::Network(np) = pl.kind.clone() else {
        panic!("a network sweep")
    };
    let sp = pl.servers.clone().expect("local servers");
    let mut pl = pl;
    pl.servers = None;
    let o = netsweep::sweep(&pl, &np, &sp, &mut std::io::sink()).expect("the sweep runs");
    for f in [
        "results.json",
        "results.csv",
        "table.txt",
        "index.html",
        "station-a-w.svg",
        "station-a-rho.svg",
        "station-b-w.svg",
        "station-b-rho.svg",
        "end_to_end.svg",
        "end_to_end_ks.svg",
        "burke.svg",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(o.table.contains("Burke a"), "{}", o.table);
    let r = NetworkResults::read(&dir).expect("results.json");
    assert_eq!(r.points.len(), 2);
    for pt in &r.points {
        assert_checks_consistent(pt, 3);
        // The server's own times against the simulated end-to-end sojourns.
        let ks = pt.end_to_end.ks.expect("an end-to-end KS distance");
        assert!(ks.d >= 0.0 && ks.d <= 1.0 && ks.noise > 0.0, "{ks:?}");
        assert!(ks.n_eff >= 1.0 && ks.n_eff <= pt.completed as f64, "{ks:?}");
        assert!(
            (ks.noise - 1.358 * (1.0 / ks.n_eff + 1.0 / ks.m_eff).sqrt()).abs() < 1e-12,
            "{ks:?}"
        );
        assert_eq!(pt.reference, "theory");
        assert_eq!(pt.errors, 0);
        assert!(pt.completed > 300, "{}", pt.completed);
        for s in &pt.stations {
            // Every request visits each station once: the visit count is exact up to the
            // requests in flight at the window's edges.
            assert!((s.visits.value - 1.0).abs() < 0.05, "{s:?}");
            assert!(
                s.utilisation.value > 0.0 && s.utilisation.value < 1.0,
                "{s:?}"
            );
        }
        assert_eq!(pt.burke.len(), 1);
    }
    // The CSV: two stations and the end-to-end row per point, and a header.
    let csv = fs::read_to_string(dir.join("results.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 1 + 2 * 3);
}

#[test]
fn burke_applies_with_exponential_service_or_infinitely_many_servers_and_no_capacity() {
    use queuelab_common::model::{Discipline, Model, Servers, ServiceKind};
    let m = |c: Servers| Model::new(1000.0, c);
    let applies = [
        m(Servers::Finite(1)),
        m(Servers::Finite(3)),
        m(Servers::Infinite),
        // M/G/∞ departs as a Poisson process whatever the service.
        m(Servers::Infinite).with_service(ServiceKind::Const),
        m(Servers::Finite(2)).with_discipline(Discipline::Ps),
        m(Servers::Finite(1)).with_discipline(Discipline::PriorityPreemptive),
    ];
    for a in &applies {
        assert!(netsweep::burke_applies(a), "{a:?}");
    }
    let not = [
        m(Servers::Finite(1)).with_service(ServiceKind::Const),
        m(Servers::Finite(2)).with_service(ServiceKind::Erlang(2)),
        m(Servers::Finite(1)).with_capacity(Some(10)),
        m(Servers::Infinite).with_capacity(Some(10)),
    ];
    for a in &not {
        assert!(!netsweep::burke_applies(a), "{a:?}");
    }
    // Every station fed only by external arrivals, whatever its servers: here web (one server)
    // and api (two), not db (routed into).
    let net = Network::parse(
        "[[station]]\nname = \"web\"\nmu = 1000\n[[station]]\nname = \"api\"\nmu = 500\n\
         servers = 2\n[[station]]\nname = \"db\"\nmu = 3000\n[routing]\n\
         entry = { web = 0.5, api = 0.5 }\nweb = { db = 1.0 }\napi = { db = 1.0 }\n\
         db = { exit = 1.0 }\n",
    )
    .expect("valid");
    assert_eq!(netsweep::burke_stations(&net), [0, 1]);
    // The two-server station's gaps, when exported, are checked as the single server's are.
    let two = |t: &str| {
        t.replace("station=\"web\"", "station=\"api\"")
            + "qserve_station_departure_gap_seconds_bucket{station=\"web\",le=\"+Inf\"} 0\n"
    };
    let (a, b) = (
        Metrics::parse(&(BEFORE.to_owned() + &two(BEFORE))),
        Metrics::parse(&(AFTER.to_owned() + &two(AFTER))),
    );
    let checks = netsweep::burke(&net, &a, &b);
    let names: Vec<&str> = checks.iter().map(|c| c.station.as_str()).collect();
    assert_eq!(names, ["web", "api"]);
    assert_eq!(checks[1].n, 1000);
    assert_eq!(checks[1].d, checks[0].d);
    assert!(checks.iter().all(|c| c.expected_poisson));
}

#[test]
fn the_check_limits_of_a_network_come_from_its_fastest_station_and_end_to_end_w() {
    use queuelab_common::model::{Model, Servers};
    use queuelab_lab::checks::{Limits, STALL_EPSILON};
    let net = Network::parse(TANDEM).expect("valid");
    // λ = 500: web M/M/1 at ρ = 0.5, W = 1/(1000 − 500) = 2 ms; db M/M/2 at ρ = 0.5 (a = 1):
    // Erlang C = (1/2)/(1/2) / (1 + 1 + 1) = 1/3, W = 2 ms + (1/3)/(1000 − 500) = 2.667 ms.
    // End to end W = 4.667 ms; the busiest finite station's 1 − ρ = 0.5.
    let l = netsweep::network_limits(&net, 500.0, 45.0);
    assert_eq!(l.service_us, 1000.0, "web's 1/μ, the fastest");
    let w = 2e-3 + 2e-3 + (1.0 / 3.0) / 500.0;
    let want = (2.0 * 45.0 * STALL_EPSILON * w * 0.5).sqrt() * 1e6;
    assert!(
        (l.stall_us - want).abs() < 1e-6 * want,
        "{} vs {want}",
        l.stall_us
    );
    // One M/M/1 station: the single queue's limits.
    let one = Network::parse(
        "[[station]]\nname = \"q\"\nmu = 1000\n[routing]\nentry = { q = 1.0 }\nq = { exit = 1.0 }\n",
    )
    .expect("valid");
    for lambda in [100.0, 500.0, 900.0] {
        let a = netsweep::network_limits(&one, lambda, 45.0);
        let b = Limits::of_model(&Model::new(1000.0, Servers::Finite(1)), lambda, 45.0);
        assert!(
            (a.stall_us - b.stall_us).abs() < 1e-6 * b.stall_us,
            "{a:?} {b:?}"
        );
        assert_eq!(a.service_us, b.service_us);
    }
    // No product form (an M/D/1 station): the decomposition, web's M/D/1 mean at λ = 500
    // (1 ms + 0.5/(2·1000·0.5) = 1.5 ms) plus db's M/M/2 (2.667 ms).
    let md = Network::parse(&TANDEM.replace("mu = 1000\n", "mu = 1000\nservice = \"const\"\n"))
        .expect("valid");
    let l = netsweep::network_limits(&md, 500.0, 45.0);
    let w = 1.5e-3 + 2e-3 + (1.0 / 3.0) / 500.0;
    let want = (2.0 * 45.0 * STALL_EPSILON * w * 0.5).sqrt() * 1e6;
    assert!(
        (l.stall_us - want).abs() < 1e-6 * want,
        "{} vs {want}",
        l.stall_us
    );
}

/// A scrape with two classes' end-to-end series: (sum s, count) each.
fn class_scrape(c0: (f64, f64), c1: (f64, f64)) -> Metrics {
    Metrics::parse(&format!(
        "qserve_sojourn_seconds_sum{{class=\"0\"}} {}\nqserve_sojourn_seconds_count{{class=\"0\"}} {}\n\
         qserve_sojourn_seconds_sum{{class=\"1\"}} {}\nqserve_sojourn_seconds_count{{class=\"1\"}} {}\n\
         qserve_sojourn_seconds_sum{{station=\"web\"}} 9\nqserve_sojourn_seconds_count{{station=\"web\"}} 9\n",
        c0.0, c0.1, c1.0, c1.1
    ))
}

#[test]
fn each_class_end_to_end_mean_comes_from_its_series_against_the_simulator() {
    // Class 0: 1 ms per request in both batches; class 1: 3 ms then 5 ms.
    let s = [
        class_scrape((1.0, 1000.0), (3.0, 1000.0)),
        class_scrape((2.0, 2000.0), (6.0, 2000.0)),
        class_scrape((3.0, 3000.0), (11.0, 3000.0)),
    ];
    let refs = [(1000.0, 5.0), (3000.0, 10.0)];
    let c = netsweep::class_points(&s, &refs);
    assert_eq!(c.len(), 2);
    assert_eq!((c[0].class, c[0].requests), (0, 2000.0));
    assert!((c[0].mean_us.value - 1000.0).abs() < 1e-9);
    let (lo, hi) = c[0].mean_us.ci95.expect("two batches");
    assert!((hi - lo).abs() < 1e-6, "identical batches: no width");
    assert_eq!(c[0].ref_mean_us, Some((1000.0, Some(5.0))));
    assert_eq!(c[0].covered, Some(true));
    // Class 1: 8 s over 2000 = 4 ms, batches 3 and 5 ms: half-width 12.706·1/√2·√2 = 12.7 ms.
    assert!((c[1].mean_us.value - 4000.0).abs() < 1e-9);
    let (lo, hi) = c[1].mean_us.ci95.expect("two batches");
    assert!((hi - 4000.0 - 12_706.2).abs() < 1.0 && (4000.0 - lo - 12_706.2).abs() < 1.0);
    assert_eq!(c[1].covered, Some(true));
    // A class the simulator does not know has no reference; one class has no blocks.
    assert!(
        netsweep::class_points(&s, &refs[..1])[1]
            .ref_mean_us
            .is_none()
    );
    let single = Metrics::parse(
        "qserve_sojourn_seconds_sum{class=\"0\"} 1\nqserve_sojourn_seconds_count{class=\"0\"} 1\n",
    );
    assert!(netsweep::class_points(&[single.clone(), single], &refs).is_empty());
    assert_eq!(
        netsweep::class_window(&s[0], &s[2]),
        [(0, 2.0, 2000.0), (1, 8.0, 2000.0)]
    );
}

/// A recorded point at λ of the TANDEM network, one station, checked as `verdict` says.
fn recorded(lambda: f64, attempts: u32, passed: bool) -> netsweep::NetPoint {
    use queuelab_lab::record::{Check, RejectedAttempt, Verdict};
    let m = |v: f64| netsweep::Measured {
        value: v,
        ci95: Some((0.9 * v, 1.1 * v)),
    };
    let stall = |ok: bool| Check {
        name: "send_lag_max".into(),
        value: if ok { 1000.0 } else { 99_100.0 },
        limit: 30_000.0,
        unit: "us".into(),
        passed: ok,
    };
    netsweep::NetPoint {
        lambda,
        rho: lambda / 1000.0,
        achieved_rate: lambda,
        sent: 1000,
        completed: 1000,
        errors: 0,
        blocked: 0,
        reference: "theory".into(),
        stations: vec![netsweep::StationPoint {
            name: "web".into(),
            rho: lambda / 1000.0,
            visits_theory: 1.0,
            utilisation: m(lambda / 1000.0),
            l: m(1.0),
            w_us: m(2000.0),
            visits: m(1.0),
            blocked: 0.0,
            ref_w_us: Some((2000.0, None)),
            ref_l: Some((1.0, None)),
            covered_w: Some(true),
        }],
        end_to_end: netsweep::EndToEnd {
            raw: m(2050.0),
            overhead_mean_us: Some(50.0),
            net: m(2000.0),
            server_p50_p90_p99: Some([1400.0, 4600.0, 9200.0]),
            ref_mean_us: Some((2000.0, None)),
            ref_quantiles_us: Some([(1386.0, 10.0), (4605.0, 30.0), (9210.0, 80.0)]),
            covered: Some(true),
            ks: Some(netsweep::EndToEndKs {
                d: if passed { 0.01 } else { 0.2 },
                noise: 0.03,
                n_eff: 4000.0,
                m_eff: 20_000.0,
            }),
            classes: vec![netsweep::ClassPoint {
                class: 1,
                requests: 300.0,
                mean_us: m(2500.0),
                ref_mean_us: Some((2400.0, Some(20.0))),
                covered: Some(true),
            }],
        },
        burke: Vec::new(),
        notes: Vec::new(),
        seed: Some(7),
        attempts,
        verdict: Some(if passed { Verdict::Ok } else { Verdict::Failed }),
        checks: vec![stall(passed)],
        rejected: (1..attempts)
            .map(|a| RejectedAttempt {
                attempt: a,
                failed: vec![stall(false)],
            })
            .collect(),
    }
}

fn results(points: Vec<netsweep::NetPoint>) -> NetworkResults {
    NetworkResults {
        format: netsweep::NETWORK_FORMAT.into(),
        created: "2025-01-01T00:00:00Z".into(),
        network_file: "net.toml".into(),
        network: TANDEM.into(),
        lambda_max: 1000.0,
        rates: points.iter().map(|p| p.lambda).collect(),
        duration_s: 3.0,
        seed: 1,
        points,
    }
}

#[test]
fn the_outputs_show_each_points_checks_re_runs_ks_and_classes() {
    let r = results(vec![recorded(200.0, 2, true), recorded(500.0, 3, false)]);
    let t = netsweep::table(&r);
    assert!(t.contains("reference theory, checks ok (2)"), "{t}");
    assert!(t.contains("checks FAILED"), "{t}");
    assert!(
        t.contains("re-run λ = 200.0/s: attempt 1 failed send_lag_max 99.1ms > 30.0ms"),
        "{t}"
    );
    assert!(
        t.contains("FAILED λ = 500.0/s: attempt 3 (kept) failed send_lag_max"),
        "{t}"
    );
    assert!(t.contains("end to end KS against the simulation: D = 0.0100, noise 0.0300"));
    assert!(t.contains("BEYOND noise"), "{t}");
    assert!(t.contains("class 1: 300 requests, mean 2500.0 µs"), "{t}");
    // The failed point is left out of the counts.
    assert!(
        t.contains(
            "W_j covered at 1 of 1 station-points, the end-to-end mean at 1 of 1 points, \
                    end-to-end KS within noise at 1 of 1; 1 point FAILED its checks"
        ),
        "{t}"
    );
    let csv = netsweep::csv(&r).expect("csv");
    let header: Vec<&str> = csv.lines().next().expect("header").split(',').collect();
    for col in [
        "ks",
        "ks_noise",
        "verdict",
        "attempts",
        "failed_checks",
        "burke_applies",
    ] {
        assert!(header.contains(&col), "{col}: {header:?}");
    }
    // Per point: the station, the end-to-end row and the class row.
    assert_eq!(csv.lines().count(), 1 + 2 * 3);
    let e2e = csv
        .lines()
        .find(|l| l.contains(",end-to-end,") && l.starts_with("500"))
        .expect("row");
    assert!(e2e.ends_with(",0.2,0.03,failed,3,send_lag_max"), "{e2e}");
    assert!(csv.contains(",class-1,"), "{csv}");
    let plots = netsweep::plots(&r);
    assert!(
        plots.iter().any(|(n, _)| n == netsweep::END_TO_END_KS_SVG),
        "{:?}",
        plots.iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    let page = netsweep::html(&r, &t, &plots);
    assert!(page.contains("<h2>Checks</h2>") && page.contains("id=\"checks-2\""));
    assert!(page.contains("attempt 1 measured again: failed send_lag_max"));
}

#[test]
fn a_results_file_from_before_the_checks_reads_as_before() {
    let r = results(vec![recorded(200.0, 1, true)]);
    let mut v = serde_json::to_value(&r).expect("json");
    let p = v["points"][0].as_object_mut().expect("a point");
    for k in ["seed", "attempts", "verdict", "checks", "rejected"] {
        assert!(p.remove(k).is_some(), "{k}");
    }
    let e = p["end_to_end"].as_object_mut().expect("end to end");
    assert!(e.remove("ks").is_some() && e.remove("classes").is_some());
    let dir = temp_dir("net-old");
    fs::create_dir_all(&dir).expect("dir");
    fs::write(dir.join("results.json"), v.to_string()).expect("write");
    let old = NetworkResults::read(&dir).expect("an older file reads");
    let pt = &old.points[0];
    assert_eq!((pt.attempts, pt.verdict, pt.seed), (0, None, None));
    assert!(pt.checks.is_empty() && pt.end_to_end.ks.is_none());
    let t = netsweep::table(&old);
    assert!(t.contains("checks –") && !t.contains("re-run"), "{t}");
    assert!(!t.contains("KS"), "{t}");
    netsweep::report(&dir).expect("redrawn");
    fs::remove_dir_all(&dir).expect("cleanup");
}
