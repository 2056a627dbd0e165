//! The `qload` binary: exit codes (0 run completed, 2 bad usage, 1 failure), the outputs
//! (`--json`, `--csv`, text) and `qload merge`.
mod support;

use std::process::{Command, Output};

use queuelab_client::result::RunResult;
use queuelab_common::stats::histogram_from_string;
use support::{Behavior, TestServer, refusing_addr};

fn qload(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qload"))
        .args(args)
        .output()
        .expect("qload runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn bad_usage_exits_2_with_a_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["-R", "10", "ftp://example.com/"], "unsupported scheme"),
        (&["-R", "10", "example.com"], "not a URL"),
        (&["http://127.0.0.1:1/"], "--rate"),
        (&["-R", "0", "http://127.0.0.1:1/"], "rate"),
        (&["-R", "fast", "http://127.0.0.1:1/"], "rate"),
        (
            &["-R", "10", "-d", "soon", "http://127.0.0.1:1/"],
            "duration",
        ),
        (
            &["-R", "10", "--think", "1s", "http://127.0.0.1:1/"],
            "--users",
        ),
        (
            &["--max", "--users", "3", "http://127.0.0.1:1/"],
            "cannot be used",
        ),
        (
            &["-R", "10", "--servers", "2", "http://127.0.0.1:1/"],
            "--mu",
        ),
        (
            &["-R", "10", "--model", "M/M/2", "http://127.0.0.1:1/"],
            "--mu",
        ),
        (
            &[
                "-R",
                "10",
                "--mu",
                "1k",
                "--model",
                "M/M/2/1",
                "http://127.0.0.1:1/",
            ],
            "below --servers",
        ),
        (
            &["-R", "10", "-H", "no colon", "http://127.0.0.1:1/"],
            "invalid header",
        ),
        (
            &["-R", "10", "-m", "GE T", "http://127.0.0.1:1/"],
            "invalid method",
        ),
        (
            &["-R", "10", "-n", "0", "http://127.0.0.1:1/"],
            "--requests",
        ),
        (
            &["-R", "10", "--no-such-flag", "http://127.0.0.1:1/"],
            "unexpected",
        ),
        (&["-R", "10"], "URL"),
        (&["merge"], "FILES"),
        (
            &["-R", "100..5k", "http://127.0.0.1:1/"],
            "a ramp without a duration",
        ),
        (
            &["-R", "200:1s,300", "http://127.0.0.1:1/"],
            "entry 2 (300): no duration",
        ),
        (
            &["-R", "200:1s,,300:1s", "http://127.0.0.1:1/"],
            "entry 2 is empty",
        ),
        (&["--rate=-5:1s", "http://127.0.0.1:1/"], "negative"),
        (&["-R", "NaN..5:1s", "http://127.0.0.1:1/"], "not a number"),
        (&["-R", "200:0s", "http://127.0.0.1:1/"], "lasts 0s"),
        (&["-R", "0:10s", "http://127.0.0.1:1/"], "send nothing"),
        (
            &["-R", "1:9000h", "http://127.0.0.1:1/"],
            "more than a year",
        ),
        (
            &["-R", "100:1s", "--users", "3", "http://127.0.0.1:1/"],
            "cannot be used",
        ),
    ];
    for &(args, needle) in cases {
        let o = qload(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(needle),
            "{args:?}: stderr lacks {needle:?}: {}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty(), "{args:?} printed on stdout");
    }
}

/// `qload ARGS` with the system's roots read from `cert_file` (rustls-native-certs honours
/// `SSL_CERT_FILE`).
fn qload_with_system_roots(args: &[&str], cert_file: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qload"))
        .args(args)
        .env("SSL_CERT_FILE", cert_file)
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("qload runs")
}

#[test]
fn tls_flags_are_checked_before_anything_runs() {
    let dir = std::env::temp_dir().join(format!("qload-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "no certificate in here\n").expect("write");
    let not_pem = not_pem.to_string_lossy().into_owned();
    let missing = dir.join("missing.pem").to_string_lossy().into_owned();
    let cases: &[(&[&str], &str)] = &[
        (
            &["-R", "10", "--insecure", "http://127.0.0.1:1/"],
            "apply to https:// URLs only",
        ),
        (
            &["-R", "10", "--cacert", &not_pem, "http://127.0.0.1:1/"],
            "apply to https:// URLs only",
        ),
        (
            &["-R", "10", "--cacert", &missing, "https://127.0.0.1:1/"],
            "missing.pem",
        ),
        (
            &["-R", "10", "--cacert", &not_pem, "https://127.0.0.1:1/"],
            "no PEM certificate",
        ),
        (
            &[
                "-R",
                "10",
                "--cacert",
                &not_pem,
                "--insecure",
                "https://127.0.0.1:1/",
            ],
            "cannot be used with",
        ),
        (
            &["-R", "10", "--insecure", "https://bad_host!/"],
            "invalid characters",
        ),
    ];
    for &(args, needle) in cases {
        let o = qload(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(needle),
            "{args:?}: stderr lacks {needle:?}: {}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty(), "{args:?} printed on stdout");
    }
    // No system roots at all, and neither flag: refused, saying what to do.
    let o = qload_with_system_roots(&["-R", "10", "https://127.0.0.1:1/"], &missing);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no system root certificates could be loaded")
            && stderr(&o).contains("--cacert"),
        "{}",
        stderr(&o)
    );
    // With --insecure (or --cacert) the system's roots are not needed: the run goes ahead (and
    // fails to connect to a port nobody listens on).
    let refused = refusing_addr();
    let url = format!("https://{refused}/");
    let o = qload_with_system_roots(
        &[
            "-R",
            "50",
            "-d",
            "100ms",
            "--timeout",
            "1s",
            "--no-pin",
            "--insecure",
            "--json",
            &url,
        ],
        &missing,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: RunResult = serde_json::from_str(&stdout(&o)).expect("a JSON result");
    assert_eq!(r.requests.errors_by_kind.connect, r.requests.issued);
    assert!(r.warnings.iter().any(|w| w.contains("--insecure")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_and_version_exit_0() {
    let o = qload(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    for flag in [
        "--rate",
        "--arrival",
        "--duration",
        "--requests",
        "--warmup",
        "--threads",
        "--connections",
        "--users",
        "--think",
        "--max",
        "--timeout",
        "--method",
        "--header",
        "--body",
        "--seed",
        "--no-pin",
        "--spin",
        "--mu",
        "--servers",
        "--json",
        "--csv",
        "--cacert",
        "--insecure",
    ] {
        assert!(stdout(&o).contains(flag), "--help lacks {flag}");
    }
    assert!(stdout(&o).contains("TLS:"), "--help lacks the TLS heading");
    // The model flags are qserve's too, but only qserve reads them from QSERVE_* variables.
    assert!(
        !stdout(&o).contains("QSERVE_"),
        "qload reads a QSERVE_* variable"
    );
    for flag in ["--capacity", "--service", "--model"] {
        assert!(stdout(&o).contains(flag), "--help lacks {flag}");
    }
    assert_eq!(qload(&["--version"]).status.code(), Some(0));
    assert_eq!(qload(&["merge", "--help"]).status.code(), Some(0));
}

#[test]
fn json_csv_and_text_outputs() {
    let server = TestServer::start(Behavior::Length);
    let url = format!("http://{}/x?y=1", server.addr());
    let dir = std::env::temp_dir().join(format!("qload-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let csv = dir.join("series.csv");
    let csv_arg = csv.to_string_lossy().into_owned();
    let o = qload(&[
        "-R",
        "300",
        "-n",
        "150",
        "--no-pin",
        "-t",
        "1",
        "--interval",
        "100ms",
        "--json",
        "--csv",
        &csv_arg,
        "-H",
        "X-Test: 1",
        "--mu",
        "2000",
        &url,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: RunResult = serde_json::from_str(&stdout(&o)).expect("one JSON document on stdout");
    assert_eq!(r.requests.completed, 150);
    assert_eq!(r.url, url);
    assert!(r.theory.is_some());
    let text = std::fs::read_to_string(&csv).expect("the CSV was written");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(queuelab_client::report::CSV_COLUMNS.join(",").as_str())
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), r.intervals.len());
    let completed: u64 = rows
        .iter()
        .map(|row| {
            row.split(',')
                .nth(3)
                .and_then(|c| c.parse::<u64>().ok())
                .expect("a count")
        })
        .sum();
    assert_eq!(completed, 150);

    let o = qload(&["-R", "300", "-n", "50", "--no-pin", &url]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    for needle in ["latency", "send lag", "arrivals", "completed 50"] {
        assert!(text.contains(needle), "text lacks {needle:?}:\n{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rate profile sets the length of the run; a shorter --duration cuts it, a longer one does
/// not lengthen it. (The length is where the schedule stopped, exact whatever the machine.)
#[test]
fn a_profile_lasts_its_length_unless_cut() {
    let server = TestServer::start(Behavior::Length);
    let url = format!("http://{}/", server.addr());
    let base = [
        "-R",
        "300:300ms,0..300:200ms",
        "--no-pin",
        "-t",
        "1",
        "--interval",
        "100ms",
        "--json",
    ];
    for (extra, want_s) in [
        (&[][..], 0.5),
        (&["-d", "10s"][..], 0.5),
        (&["-d", "200ms"][..], 0.2),
    ] {
        let o = qload(&[&base[..], extra, &[url.as_str()]].concat());
        assert_eq!(o.status.code(), Some(0), "{extra:?}: {}", stderr(&o));
        let r: RunResult = serde_json::from_str(&stdout(&o)).expect("one JSON document");
        assert!(
            (r.duration_s - want_s).abs() < 1e-9,
            "{extra:?}: {}",
            r.duration_s
        );
        assert_eq!(r.config.duration_s, Some(want_s), "{extra:?}");
        assert_eq!(r.config.profile.as_deref(), Some("300:300ms,0..300:200ms"));
        // The first interval's target is the first step's rate.
        assert_eq!(r.intervals[0].target_rate, Some(300.0), "{extra:?}");
    }
    // The text names the profile.
    let o = qload(&[&base[..7], &[url.as_str()]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("arrivals on the profile 300:300ms,0..300:200ms"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_run_against_a_dead_server_completes_with_errors() {
    let url = format!("http://{}/", refusing_addr());
    let o = qload(&["-R", "100", "-n", "20", "--json", "--no-pin", &url]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: RunResult = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(r.requests.errors_by_kind.connect, 20);
}

#[test]
fn merge_adds_up_split_results() {
    let server = TestServer::start(Behavior::Length);
    let url = format!("http://{}/", server.addr());
    let dir = std::env::temp_dir().join(format!("qload-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut parts = Vec::new();
    let mut files = Vec::new();
    for (i, n) in [(0, "120"), (1, "80")] {
        let seed = (i + 5).to_string();
        let o = qload(&[
            "-R", "400", "-n", n, "--seed", &seed, "--json", "--no-pin", &url,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let path = dir.join(format!("part{i}.json"));
        std::fs::write(&path, &o.stdout).expect("write part");
        parts.push(serde_json::from_slice::<RunResult>(&o.stdout).expect("JSON"));
        files.push(path.to_string_lossy().into_owned());
    }
    // Also as one file holding both documents (the concatenated logs of a Job's pods).
    let both = dir.join("both.json");
    std::fs::write(
        &both,
        [
            std::fs::read(&files[0]).expect("read"),
            std::fs::read(&files[1]).expect("read"),
        ]
        .concat(),
    )
    .expect("write both");

    let mut args = vec!["merge", "--json"];
    args.extend(files.iter().map(String::as_str));
    for args in [
        args,
        vec!["merge", "--json", both.to_str().expect("utf-8 path")],
    ] {
        let o = qload(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let m: RunResult = serde_json::from_str(&stdout(&o)).expect("merged JSON");
        assert_eq!(m.parts, 2);
        assert_eq!(m.requests.completed, 200);
        assert_eq!(m.requests.issued, 200);
        // The merged histogram is the union of the parts'.
        let mut union = histogram_from_string(&parts[0].histogram).expect("decodes");
        union
            .add(histogram_from_string(&parts[1].histogram).expect("decodes"))
            .expect("same bounds");
        let merged = histogram_from_string(&m.histogram).expect("decodes");
        assert_eq!(merged, union);
        for q in [0.5, 0.9, 0.99, 0.999] {
            let want = union.value_at_quantile(q) as f64 / 1e3;
            let got = match q {
                0.5 => m.latency_us.p50,
                0.9 => m.latency_us.p90,
                0.99 => m.latency_us.p99,
                _ => m.latency_us.p999,
            };
            assert_eq!(got, want, "quantile {q}");
        }
        // The parts ran one after the other: the rates are over the union of their windows,
        // the sum of their durations (to the microseconds of the UTC times), so they average.
        let d: f64 = parts.iter().map(|p| p.duration_s).sum();
        assert!((m.duration_s - d).abs() < 1e-5, "{} vs {d}", m.duration_s);
        let offered = 400.0 * (parts[0].duration_s + parts[1].duration_s);
        assert!((m.target_rate.expect("open loop") - offered / m.duration_s).abs() < 1e-9);
        let sent = parts[0].requests.sent_in_window + parts[1].requests.sent_in_window;
        assert!((m.achieved_rate - sent as f64 / m.duration_s).abs() < 1e-9);
        assert!(
            m.warnings.iter().any(|w| w.contains("do not overlap")),
            "{:?}",
            m.warnings
        );
    }

    let o = qload(&[
        "merge",
        dir.join("missing.json").to_str().expect("utf-8 path"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, b"{\"not\": \"a result\"}").expect("write");
    let o = qload(&["merge", garbage.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not a qload JSON result"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs qload with `args` and returns its exit code, its stdout, and the CPU time (user +
/// system) it used, from `wait4`'s resource usage of exactly this child.
// The child is reaped by `wait4` (which also gives its resource usage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn qload_with_cpu(args: &[&str]) -> (Option<i32>, String, std::time::Duration) {
    use std::io::Read as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_qload"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("qload runs");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut out)
        .expect("read stdout");
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, which nothing else waits for; both pointers are valid.
    let rc = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(rc, child.id() as libc::pid_t, "wait4");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let tv = |t: libc::timeval| {
        std::time::Duration::from_secs(t.tv_sec as u64)
            + std::time::Duration::from_micros(t.tv_usec as u64)
    };
    (code, out, tv(usage.ru_utime) + tv(usage.ru_stime))
}

/// `--busy-poll`: while a request is in flight the thread polls without sleeping, however long
/// the answer takes; without it, it sleeps between the spin margins.
///
/// The server never answers, so from the first send to the end of the run (1.5 s of schedule,
/// then up to the 1 s timeout) a request is always in flight: a busy-polling thread runs all of
/// that time, at least 2.5 s of wall time. Behaviour, not speed: the threshold is 0.4 s of CPU,
/// so a loaded machine only has to give the thread a sixth of a core. The same run without the
/// flag polls only 200 µs around each of its ~15 sends (3 ms) and otherwise sleeps; its
/// threshold is the same 0.4 s (a sleeping process accrues no CPU however loaded the machine).
#[test]
fn busy_poll_keeps_polling_while_a_request_is_in_flight() {
    let server = TestServer::start(Behavior::Silent);
    let url = format!("http://{}/", server.addr());
    let base = [
        "-R",
        "10",
        "-d",
        "1500ms",
        "--timeout",
        "1s",
        "--json",
        "--no-pin",
        &url,
    ];
    let limit = std::time::Duration::from_millis(400);
    let (code, out, cpu) = qload_with_cpu(&[&base[..], &["--busy-poll"]].concat());
    assert_eq!(code, Some(0));
    let r: RunResult = serde_json::from_str(&out).expect("JSON");
    assert!(r.config.busy_poll);
    assert!(r.requests.errors_by_kind.timeout + r.requests.errors_by_kind.unfinished > 0);
    assert!(cpu >= limit, "busy-polling used only {cpu:?} of CPU");

    let (code, out, cpu) = qload_with_cpu(&base);
    assert_eq!(code, Some(0));
    let r: RunResult = serde_json::from_str(&out).expect("JSON");
    assert!(!r.config.busy_poll);
    assert!(cpu < limit, "without --busy-poll it used {cpu:?} of CPU");
}
