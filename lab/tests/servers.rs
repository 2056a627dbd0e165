//! The servers `qlab sweep` starts for itself: both answer, each on its own loopback port, and
//! they are gone after the sweep, whether it ends, fails or is interrupted (SIGINT).
//!
//! These start the `qserve` binary of this workspace's build (target/<profile>/qserve, built by
//! `cargo test --workspace`), so they are end-to-end tests and run with `--ignored`
//! (scripts/test.sh does).
use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use queuelab_common::model::{Model, Servers};
use queuelab_lab::servers::{LocalServers, ServerPlan};

mod support;
use support::qserve;

fn answers(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Waits (up to 10 s) until nothing listens on `addr` any more.
fn gone(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !answers(addr) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
#[ignore = "end to end: starts the qserve binary (scripts/test.sh runs it)"]
fn both_servers_answer_and_stop_when_dropped() {
    let plan = ServerPlan {
        qserve: qserve(),
        model: Model::new(1000.0, Servers::Finite(2)).with_capacity(Some(5)),
        seed: 7,
        spin: "0us".into(),
        busy_poll: false,
        cpus: Vec::new(),
    };
    let servers = LocalServers::start(&plan).expect("both start");
    let (q, t) = (servers.queue.addr(), servers.twin.addr());
    assert_ne!(q, t);
    assert!(q.ip().is_loopback() && t.ip().is_loopback());
    assert!(answers(q) && answers(t));
    let banner = servers
        .queue
        .banner()
        .expect("qserve printed its start-up line");
    assert!(banner.contains("M/M/2/5"), "{banner}");
    let twin = servers
        .twin
        .banner()
        .expect("the twin printed its start-up line");
    assert!(twin.contains("zero service"), "{twin}");
    drop(servers);
    assert!(gone(q) && gone(t), "a server outlived its guard");
}

#[test]
#[ignore = "end to end: starts the qserve binary (scripts/test.sh runs it)"]
fn a_bad_model_is_reported_with_the_servers_log() {
    let plan = ServerPlan {
        qserve: qserve(),
        model: Model::new(0.0, Servers::Finite(1)),
        seed: 1,
        spin: "0us".into(),
        busy_poll: false,
        cpus: Vec::new(),
    };
    let err = LocalServers::start(&plan).expect_err("qserve refuses a negative rate");
    let text = format!("{err:#}");
    assert!(text.contains("exited at start"), "{text}");
    assert!(
        text.contains("--mu"),
        "qserve's own message is shown: {text}"
    );
}

/// The addresses in qlab's line `qserve at http://A/ and its zero-service twin at http://B/, …`.
fn announced(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let mut addrs = line
        .split("http://")
        .skip(1)
        .filter_map(|s| s.split('/').next()?.parse().ok());
    Some((addrs.next()?, addrs.next()?))
}

/// A long `qlab sweep` that starts its own servers; returns it, its stderr lines after the
/// announcement, and the two addresses it announced.
fn start_sweep(
    name: &str,
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStderr>>,
    SocketAddr,
    SocketAddr,
    PathBuf,
) {
    let out = std::env::temp_dir().join(format!("qlab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut qlab = Command::new(env!("CARGO_BIN_EXE_qlab"))
        .args([
            "sweep",
            "--rhos",
            "0.5",
            "--duration",
            "60s",
            "--warmup",
            "1s",
        ])
        .arg("--qserve")
        .arg(qserve())
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qlab starts");
    let mut lines = BufReader::new(qlab.stderr.take().expect("piped")).lines();
    let (q, t) = loop {
        let line = lines
            .next()
            .expect("qlab announces its servers before it ends")
            .expect("stderr is text");
        if let Some(addrs) = announced(&line) {
            break addrs;
        }
    };
    assert!(answers(q) && answers(t));
    (qlab, lines, q, t, out)
}

#[test]
#[ignore = "end to end: starts the qserve binary (scripts/test.sh runs it)"]
fn ctrl_c_stops_the_sweep_and_both_servers() {
    let (mut qlab, lines, q, t, out) = start_sweep("sigint");
    // Into the first run, then Ctrl-C.
    std::thread::sleep(Duration::from_millis(1500));
    queuelab_os::process::interrupt(qlab.id()).expect("signal qlab");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = qlab.wait().expect("qlab exits");
    assert_eq!(status.code(), Some(130), "{status:?}: {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("interrupted")),
        "it says why it stopped: {rest:?}"
    );
    assert!(gone(q) && gone(t), "a server outlived qlab");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
#[ignore = "end to end: starts the qserve binary (scripts/test.sh runs it)"]
fn a_killed_qlab_leaves_no_server_behind() {
    let (mut qlab, _lines, q, t, out) = start_sweep("sigkill");
    // SIGKILL: no drop runs; the kernel's parent-death signal stops the servers.
    qlab.kill().expect("kill qlab");
    let _ = qlab.wait();
    assert!(gone(q) && gone(t), "a server outlived a killed qlab");
    let _ = std::fs::remove_dir_all(&out);
}
