//! The `qserve` binary: help, exit codes, environment variables, the start-up line, and SIGTERM
//! with a request in flight (answered, summary printed, exit 0).
mod support;

use std::io::{BufRead, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::{PATIENCE, metric, read_response, startup};

const BIN: &str = env!("CARGO_BIN_EXE_qserve");

fn wait_with_deadline(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("wait for qserve") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("qserve did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn help_explains_every_flag_and_its_environment_variable() {
    let out = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("run qserve");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "listen",
        "mu",
        "servers",
        "capacity",
        "service",
        "threads",
        "seed",
        "max-connections",
        "header-timeout",
        "idle-timeout",
        "grace",
        "spin",
        "busy-poll",
        "model",
        "discipline",
        "classes",
    ] {
        let env = format!("QSERVE_{}", flag.to_uppercase().replace('-', "_"));
        assert!(
            text.contains(&format!("--{flag}")),
            "--{flag} missing from --help"
        );
        assert!(text.contains(&env), "{env} missing from --help");
    }
    for words in [
        "default: 0.0.0.0:8000",
        "exp",
        "inf",
        "503",
        "408",
        "default: 50us",
        "--spin 0",
        "X-Priority",
        "allowed with any",
    ] {
        assert!(text.contains(words), "{words:?} missing from --help");
    }
}

#[test]
fn bad_usage_exits_2() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: &[Case<'_>] = &[
        (&["--mu", "0"], &[]),
        (&["--mu", "fast"], &[]),
        (&["--servers", "0"], &[]),
        (&["--servers", "2", "--capacity", "1"], &[]),
        (&["--service", "gamma"], &[]),
        (&["--threads", "0"], &[]),
        (&["--spin", "1s"], &[]),
        (&["--header-timeout", "0s"], &[]),
        (&["--no-such-flag"], &[]),
        (&[], &[("QSERVE_MU", "-5")]),
        (&["--model", "M/M/2/1"], &[]),
        (&["--model", "M/M/1", "--servers", "2"], &[]),
        (&["--model", "M/M/1"], &[("QSERVE_CAPACITY", "4")]),
        (&[], &[("QSERVE_MODEL", "M/X/1")]),
        (&[], &[("QSERVE_LISTEN", "nowhere")]),
    ];
    for (args, env) in cases {
        let mut cmd = Command::new(BIN);
        cmd.args(*args).envs(env.iter().copied());
        if !env.iter().any(|(k, _)| *k == "QSERVE_LISTEN") {
            cmd.arg("--listen=127.0.0.1:0");
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run qserve");
        let status = wait_with_deadline(&mut child);
        assert_eq!(status.code(), Some(2), "{args:?} {env:?}");
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
            .expect("read stderr");
        assert!(!err.is_empty(), "{args:?} {env:?}: says why");
    }
}

#[test]
fn a_port_in_use_is_a_runtime_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address");
    let out = Command::new(BIN)
        .args(["--listen", &addr.to_string()])
        .output()
        .expect("run qserve");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on"), "{err}");
}

#[test]
fn sigterm_answers_the_request_in_flight_and_exits_0() {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--mu", "4", "--seed", "5"])
        .env("QSERVE_SERVICE", "const")
        .env("QSERVE_SERVERS", "inf")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start qserve");
    let (line, addr, stderr) = startup(&mut child);
    assert!(line.contains("model M/D/inf"), "{line}");
    assert!(line.contains("infinitely many servers"), "{line}");
    assert!(line.contains("seed 5"), "{line}");

    let mut s = TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    // Wait until the request has arrived, then ask the server to stop.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut m = TcpStream::connect(&addr).expect("connect");
        m.set_read_timeout(Some(PATIENCE)).expect("timeout");
        m.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("send");
        let mut pending = Vec::new();
        let r = read_response(&mut m, &mut pending)
            .expect("read")
            .expect("metrics");
        if metric(&r.text(), "qserve_arrivals_total") == 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the request never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: sending a signal to our own child process, whose pid is valid until waited for.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);

    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending)
        .expect("read")
        .expect("the answer in flight");
    assert_eq!(r.status, 200);
    assert_eq!(r.times_us(), (0, 250_000));
    assert!(r.closes());
    let status = wait_with_deadline(&mut child);
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    for l in stderr.lines() {
        rest.push_str(&l.expect("stderr"));
        rest.push('\n');
    }
    assert!(rest.contains("qserve: stopped after"), "{rest}");
    assert!(rest.contains(" 1 served"), "{rest}");
    assert!(rest.contains("0 unanswered"), "{rest}");
}

/// CPU time (user + system) the process `pid` has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may hold spaces, but ends with the last ')'):
    // state is field 3, utime 14 and stime 15, in clock ticks.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(hz > 0);
    Duration::from_secs_f64(ticks as f64 / hz as f64)
}

/// `--busy-poll` (here through QSERVE_BUSY_POLL): the I/O thread keeps running while a client
/// is connected, even with nothing to do, and sleeps again once no connection is open.
///
/// Behaviour, not speed: without busy-polling an idle connection costs the server nothing but a
/// timeout sweep now and then (microseconds per second), so "1 s of CPU while a silent client
/// stays connected" can only come from polling without sleeping. The wait for that second is
/// bounded by 60 s of wall time, so a loaded machine only has to give the thread a small share
/// of a core. A sleeping process accrues no CPU however loaded the machine is, so the idle
/// phases allow 0.3 s (the start-up, the sweeps and one clock tick of rounding fit many times).
#[test]
fn busy_poll_spins_while_a_client_is_connected_and_sleeps_otherwise() {
    /// Kills the server if an assertion fails first.
    struct Reap(Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Reap(
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--service", "zero"])
            .env("QSERVE_BUSY_POLL", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start qserve"),
    );
    let pid = child.0.id();
    let (line, addr, _stderr) = startup(&mut child.0);
    assert!(line.contains("busy-poll while connected"), "{line}");
    let idle_allowance = Duration::from_millis(300);

    // No connection: asleep.
    let before = cpu_time(pid);
    std::thread::sleep(Duration::from_secs(1));
    let idle = cpu_time(pid) - before;
    assert!(
        idle < idle_allowance,
        "idle without clients, yet used {idle:?} of CPU"
    );

    // A connection that sends nothing: the thread polls on.
    let s = TcpStream::connect(&addr).expect("connect");
    let before = cpu_time(pid);
    let deadline = Instant::now() + Duration::from_secs(60);
    let busy = loop {
        let used = cpu_time(pid) - before;
        if used >= Duration::from_secs(1) || Instant::now() > deadline {
            break used;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        busy >= Duration::from_secs(1),
        "only {busy:?} of CPU in 60 s while connected"
    );

    // Closed again: asleep once the server has seen the end of the connection.
    drop(s);
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_time(pid);
    std::thread::sleep(Duration::from_secs(1));
    let idle = cpu_time(pid) - before;
    assert!(
        idle < idle_allowance,
        "still used {idle:?} of CPU after the client left"
    );

    // SAFETY: sending a signal to our own child process, whose pid is valid until waited for.
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    assert_eq!(wait_with_deadline(&mut child.0).code(), Some(0));
}

/// `--classes` that are not probabilities of 1 to 8 classes summing to 1, and an unknown
/// `--discipline`, are usage errors (exit 2) whose message names the flag, from the command line
/// or the environment.
#[test]
fn bad_classes_and_disciplines_exit_2_naming_the_flag() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        (&["--classes", "0.5"], &[], "--classes"),
        (&["--classes", "0.5,0.6"], &[], "--classes"),
        (&["--classes", "0.5,x"], &[], "--classes"),
        (&["--classes=-0.5,1.5"], &[], "--classes"),
        (&["--classes", ""], &[], "--classes"),
        (&["--classes", "1,0,0,0,0,0,0,0,0"], &[], "--classes"),
        (&["--classes", "nan"], &[], "--classes"),
        (&[], &[("QSERVE_CLASSES", "0.2,0.2")], "--classes"),
        (&["--discipline", "random"], &[], "--discipline"),
        (&[], &[("QSERVE_DISCIPLINE", "sjf")], "--discipline"),
    ];
    for (args, env, flag) in cases {
        let out = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0"])
            .args(*args)
            .envs(env.iter().copied())
            .output()
            .expect("run qserve");
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{args:?} {env:?}: {err}");
    }
}

/// `--discipline` and `--classes` (also as QSERVE_DISCIPLINE and QSERVE_CLASSES) reach the
/// model: its name carries the discipline, and the start-up line states the discipline and the
/// classes, between the capacity and the seed (the earlier fields unchanged).
#[test]
fn discipline_and_classes_reach_the_start_up_line() {
    for (env, args, want) in [
        (
            &[][..],
            &["--mu", "500"][..],
            "model M/M/1: mu 500/s per server, 1 server, exp service with mean 2ms; saturates at \
             c*mu = 500/s; no capacity (503 as overflow above 100000 in system); discipline \
             fcfs, one class; seed 3; timers:",
        ),
        (
            &[("QSERVE_DISCIPLINE", "ps")][..],
            &[][..],
            "model M/M/1-PS: mu 1000/s",
        ),
        (
            &[("QSERVE_DISCIPLINE", "ps")][..],
            &[][..],
            "; discipline ps, one class; seed 3;",
        ),
        (
            &[("QSERVE_CLASSES", "0.25,0.75")][..],
            &["--discipline", "priority"][..],
            "model M/M/1-NP: mu 1000/s",
        ),
        (
            &[("QSERVE_CLASSES", "0.25,0.75")][..],
            &["--discipline", "priority-preemptive", "--capacity", "5"][..],
            "capacity K = 5 (503 when full); discipline priority-preemptive, 2 classes \
             0.25,0.75 (X-Priority: N names one); seed 3;",
        ),
        (
            &[("QSERVE_CLASSES", "0.5,0.5")][..],
            &["--classes", "0.1,0.2,0.7"][..],
            "discipline fcfs, 3 classes 0.1,0.2,0.7",
        ),
    ] {
        let line = startup_line(&["--seed", "3"], args, env);
        assert!(line.contains(want), "{env:?} {args:?}: {line}");
        assert!(
            line.starts_with("qserve: listening on 127.0.0.1:"),
            "{line}"
        );
    }
}

/// `--model` (here through QSERVE_MODEL) sets servers, capacity and service at once, and the
/// start-up line names the model it was given.
#[test]
fn model_by_name_from_the_environment() {
    for (env, args, want) in [
        (
            &[("QSERVE_MODEL", "M/D/4/8")][..],
            &["--mu", "2k"][..],
            "model M/D/4/8: mu 2000/s per server, 4 servers, const service",
        ),
        (
            &[][..],
            &["--model", "M/M/inf"][..],
            "model M/M/inf: mu 1000/s",
        ),
        (
            &[("QSERVE_MU", "500")][..],
            &[][..],
            "model M/M/1: mu 500/s",
        ),
    ] {
        let line = startup_line(&[], args, env);
        assert!(line.contains(want), "{env:?} {args:?}: {line}");
    }
}

/// The start-up line of a qserve started on a free port with `base` and `args` and the
/// environment `env`, then stopped with SIGTERM (which it must survive with exit 0).
fn startup_line(base: &[&str], args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .args(base)
        .args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start qserve");
    let (line, _addr, _stderr) = startup(&mut child);
    // SAFETY: sending a signal to our own child process, whose pid is valid until waited for.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    assert_eq!(wait_with_deadline(&mut child).code(), Some(0));
    line
}

/// The spin margin is 50us unless `--spin 0` (or QSERVE_SPIN=0) turns it off; the start-up line
/// and `qserve_spin_seconds` say which.
#[test]
fn spin_defaults_to_50us_and_0_turns_it_off() {
    for (args, env, want_line, want_metric) in [
        (
            &[][..],
            &[][..],
            "timers: spin 50us before each deadline",
            50e-6,
        ),
        (&["--spin", "0"][..], &[][..], "timers: timerfd sleep", 0.0),
        (
            &[][..],
            &[("QSERVE_SPIN", "0")][..],
            "timers: timerfd sleep",
            0.0,
        ),
        (
            &["--spin", "20us"][..],
            &[("QSERVE_SPIN", "0")][..],
            "timers: spin 20us before each deadline",
            20e-6,
        ),
    ] {
        let mut child = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--service", "zero"])
            .args(args)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start qserve");
        let (line, addr, _stderr) = startup(&mut child);
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(PATIENCE)).expect("a read timeout");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut pending = Vec::new();
        let r = read_response(&mut s, &mut pending)
            .expect("read")
            .expect("an answer");
        // SAFETY: sending a signal to our own child process, whose pid is valid until waited for.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
        assert_eq!(wait_with_deadline(&mut child).code(), Some(0));
        assert!(line.contains(want_line), "{args:?} {env:?}: {line}");
        let spin = metric(&r.text(), "qserve_spin_seconds");
        assert!(
            (spin - want_metric).abs() < 1e-12,
            "{args:?} {env:?}: qserve_spin_seconds {spin}"
        );
    }
}

/// Busy-polling is on by default when a core is left over beside the I/O threads, and off on one
/// CPU, with `--no-busy-poll` or with `QSERVE_NO_BUSY_POLL=1`; the start-up line says which.
#[test]
fn busy_poll_defaults_to_on_when_a_core_is_left_over() {
    // Spawned from a thread of its own restricted to `cpus` (a child inherits its spawning
    // thread's mask), so the test's other threads keep theirs.
    fn line_with(cpus: Option<Vec<usize>>, args: &[&str], env: &[(&str, &str)]) -> String {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    if let Some(cpus) = &cpus {
                        queuelab_os::affinity::set_current(cpus)
                            .expect("restrict the spawning thread");
                    }
                    startup_line(&["--service", "zero"], args, env)
                })
                .join()
                .expect("the spawning thread")
        })
    }
    const BUSY: &str = "busy-poll while connected";
    let allowed = queuelab_os::affinity::allowed().expect("sched_getaffinity");
    let one = line_with(Some(vec![allowed[0]]), &[], &[]);
    assert!(!one.contains(BUSY), "on one CPU: {one}");
    let forced = line_with(Some(vec![allowed[0]]), &["--busy-poll"], &[]);
    assert!(forced.contains(BUSY), "--busy-poll on one CPU: {forced}");
    let off = line_with(None, &["--no-busy-poll"], &[]);
    assert!(!off.contains(BUSY), "--no-busy-poll: {off}");
    let off = line_with(None, &[], &[("QSERVE_NO_BUSY_POLL", "1")]);
    assert!(!off.contains(BUSY), "QSERVE_NO_BUSY_POLL=1: {off}");
    if queuelab_os::affinity::usable_cores() >= 2 {
        let two = line_with(None, &[], &[]);
        assert!(two.contains(BUSY), "with a core left over: {two}");
        let both = line_with(None, &["--threads", "2"], &[]);
        if queuelab_os::affinity::usable_cores() == 2 {
            assert!(!both.contains(BUSY), "two I/O threads on two CPUs: {both}");
        }
    }
}

/// qserve run to its exit with `args` and `env` (a loopback listener unless the caller sets
/// one): the exit code and stderr.
fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .arg("--listen=127.0.0.1:0")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run qserve");
    let status = wait_with_deadline(&mut child);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("read stderr");
    (status.code(), err)
}

/// A --forward URL qserve cannot use is a usage error (exit 2) that names the flag and says
/// what is expected, from the flag or from QSERVE_FORWARD; so are the forward limits.
#[test]
fn bad_forward_settings_exit_2_saying_why() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        (
            &["--forward", "https://127.0.0.1:9/"],
            &[],
            "expected http://host:port/",
        ),
        (
            &["--forward", "ftp://127.0.0.1:9/"],
            &[],
            "expected http://host:port/",
        ),
        (
            &["--forward", "127.0.0.1:9"],
            &[],
            "expected http://host:port/",
        ),
        (
            &["--forward", "http://127.0.0.1:9/api"],
            &[],
            "the path must be /",
        ),
        (&["--forward", "http:///"], &[], "expected a host and port"),
        (&["--forward", "http://"], &[], "expected a host and port"),
        (
            &["--forward", "http://user@127.0.0.1:9/"],
            &[],
            "expected a host and port",
        ),
        (
            &[],
            &[("QSERVE_FORWARD", "https://127.0.0.1:9/")],
            "expected http://host:port/",
        ),
        (
            &[],
            &[("QSERVE_FORWARD", "http://127.0.0.1:9/x")],
            "the path must be /",
        ),
        (
            &[
                "--forward",
                "http://127.0.0.1:9/",
                "--forward-timeout",
                "0s",
            ],
            &[],
            "--forward-timeout",
        ),
        (
            &["--forward", "http://127.0.0.1:9/"],
            &[("QSERVE_FORWARD_TIMEOUT", "0s")],
            "--forward-timeout",
        ),
        (
            &[
                "--forward",
                "http://127.0.0.1:9/",
                "--forward-connections",
                "0",
            ],
            &[],
            "forward-connections",
        ),
        (
            &["--forward", "http://127.0.0.1:9/"],
            &[("QSERVE_FORWARD_QUEUE", "0")],
            "forward-queue",
        ),
    ];
    for (args, env, says) in cases {
        let (code, err) = run_to_exit(args, env);
        assert_eq!(code, Some(2), "{args:?} {env:?}: {err}");
        assert!(err.contains(says), "{args:?} {env:?}: says {says:?}: {err}");
        if args.contains(&"--forward") || env.iter().any(|(k, _)| *k == "QSERVE_FORWARD") {
            assert!(
                err.contains("forward"),
                "{args:?} {env:?}: names the flag: {err}"
            );
        }
    }
}

/// --network and --forward exclude each other (from flags or the environment), with a message
/// that says so; the network file itself is valid, so nothing else is refused.
#[test]
fn network_and_forward_exit_2_together() {
    let dir = std::env::temp_dir().join(format!("qserve-cli-fwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let path = dir.join("one.toml");
    std::fs::write(
        &path,
        "[[station]]\nname = \"web\"\nmu = 1000\n[routing]\nentry = { web = 1.0 }\n\
         web = { exit = 1.0 }\n",
    )
    .expect("write the file");
    let file = path.to_str().expect("a UTF-8 temp path");
    let url = "http://127.0.0.1:9/";
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: [Case<'_>; 3] = [
        (&["--network", file, "--forward", url], &[]),
        (&["--network", file], &[("QSERVE_FORWARD", url)]),
        (&["--forward", url], &[("QSERVE_NETWORK", file)]),
    ];
    // The control: the same file alone starts (and stops on SIGTERM).
    let line = startup_line(&["--network", file], &[], &[]);
    for (args, env) in cases {
        let (code, err) = run_to_exit(args, env);
        assert_eq!(code, Some(2), "{args:?} {env:?}: {err}");
        assert!(
            err.contains("--network and --forward cannot be used together"),
            "{args:?} {env:?}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(line.contains("listening on"), "{line}");
}

/// QSERVE_FORWARD and its companions reach the start-up line as the flags do.
#[test]
fn forward_settings_from_the_environment_reach_the_start_up_line() {
    let env = [
        ("QSERVE_FORWARD", "http://127.0.0.1:9/"),
        ("QSERVE_FORWARD_CONNECTIONS", "3"),
        ("QSERVE_FORWARD_TIMEOUT", "750ms"),
    ];
    let line = startup_line(&[], &[], &env);
    assert!(
        line.ends_with(
            "forwarding to http://127.0.0.1:9/ (3 connections per thread, timeout 750ms)\n"
        ),
        "{line}"
    );
    let flags = startup_line(
        &[],
        &[
            "--forward",
            "http://127.0.0.1:9/",
            "--forward-connections",
            "3",
            "--forward-timeout",
            "750ms",
        ],
        &[],
    );
    assert_eq!(
        line.split("forwarding to").nth(1),
        flags.split("forwarding to").nth(1),
        "{line} vs {flags}"
    );
}
