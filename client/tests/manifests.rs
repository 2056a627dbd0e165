//! qload against the Kubernetes manifests (kube/): the Job's arguments, expanded as the kubelet
//! expands `$(VAR)`, are accepted by qload and measure something, and scripts/kube-collect.sh
//! turns such pods' logs into one merged result.
//!
//! The manifests' policy and qserve's side are server/tests/manifests.rs.
#[path = "../../server/tests/support/kube.rs"]
mod kube;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kube::Manifests;
use queuelab_client::result::RunResult;

const QLOAD: &str = env!("CARGO_BIN_EXE_qload");

/// Generous bound for a 3-second qload run on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// A fresh scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("queuelab-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// qserve in-process on 127.0.0.1:0, the manifests' default model (M/M/1, mu 1000/s).
fn qserve() -> queuelab_server::Handle {
    queuelab_server::start(queuelab_server::Config {
        listen: "127.0.0.1:0".parse().expect("a valid address"),
        seed: 7,
        ..queuelab_server::Config::default()
    })
    .expect("qserve starts")
}

fn wait_output(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().expect("poll the child").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} still running after {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collect the output")
}

/// Runs the Job's container for the given completion indices at once, as the Job's pods run,
/// against `url` and shortened (2 s measured after 1 s of warmup); returns each pod's stdout,
/// parsed, and its expected seed.
fn run_job_pods(m: &Manifests, indices: &[u32], url: &str) -> Vec<(String, RunResult, u64)> {
    let c = m.qload();
    let pods: Vec<_> = indices
        .iter()
        .map(|&i| {
            let argv = m.argv(
                c,
                Some(i),
                &[
                    ("QLOAD_DURATION", "2s"),
                    ("QLOAD_WARMUP", "1s"),
                    ("QLOAD_URL", url),
                ],
            );
            assert_eq!(argv[0], "/qload", "the image's qload");
            let seed = argv
                .iter()
                .position(|a| a == "--seed")
                .and_then(|p| argv[p + 1].parse().ok())
                .expect("a numeric --seed");
            let child = Command::new(QLOAD)
                .args(&argv[1..])
                .env_clear()
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start qload");
            (i, argv, seed, child)
        })
        .collect();
    pods.into_iter()
        .map(|(i, argv, seed, child)| {
            let out = wait_output(child, &format!("qload for index {i}"));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "index {i}: qload {argv:?} failed: {stderr}"
            );
            let stdout = String::from_utf8(out.stdout).expect("UTF-8 JSON");
            let r: RunResult = serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("index {i}: not a JSON result ({e}): {stdout}"));
            (stdout, r, seed)
        })
        .collect()
}

#[test]
fn qload_accepts_the_jobs_arguments_for_every_index() {
    let m = Manifests::load();
    let n = m.job.spec.completions.expect("completions");
    let server = qserve();
    let url = format!("http://{}/", server.local_addr());
    let indices: Vec<u32> = (0..n).collect();
    let results = run_job_pods(&m, &indices, &url);
    server.shutdown();
    let _ = server.join();

    let rate: f64 = m.env(m.qload(), Some(0))["QLOAD_RATE"]
        .parse()
        .expect("a plain QLOAD_RATE");
    for (i, (_, r, seed)) in results.iter().enumerate() {
        assert_eq!(r.config.seed, *seed, "index {i}: the seed of its arguments");
        assert_eq!(r.config.threads, 1, "index {i}: --threads 1");
        assert!(!r.config.pin, "index {i}: --no-pin");
        assert_eq!(r.target_rate, Some(rate), "index {i}: QLOAD_RATE");
        assert!(r.requests.completed > 0, "index {i}: {:?}", r.requests);
        assert_eq!(r.requests.errors, 0, "index {i}: {:?}", r.requests);
        assert!(r.achieved_rate > 0.0 && r.latency_us.p50 > 0.0, "index {i}");
    }
}

/// A stand-in kubectl: job `qload` has one succeeded pod per file in `logs`, named after it,
/// whose log is that file. It answers exactly the calls kube-collect.sh makes.
const FAKE_KUBECTL: &str = r#"#!/usr/bin/env bash
case "$*" in
    "get job qload -o jsonpath={.spec.completions}"*) echo @N@ ;;
    "get pods -l batch.kubernetes.io/job-name=qload --field-selector=status.phase=Succeeded "*)
        for f in "@LOGS@"/*; do p="${f##*/}"; i="${p#qload-}"; printf '%s\t%s\n' "$p" "${i%%-*}"; done ;;
    "logs "*) set -- $*; cat "@LOGS@/$2" ;;
    *) echo "stand-in kubectl: unexpected: $*" >&2; exit 1 ;;
esac
"#;

fn collect_script() -> PathBuf {
    kube::repo_dir().join("scripts/kube-collect.sh")
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write the stand-in");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn kube_collect_splits_pod_logs_and_merges_their_results() {
    let m = Manifests::load();
    let server = qserve();
    let url = format!("http://{}/", server.local_addr());
    let results = run_job_pods(&m, &[0, 1], &url);
    server.shutdown();
    let _ = server.join();

    let scratch = Scratch::new("kube-collect");
    let logs = scratch.0.join("logs");
    std::fs::create_dir_all(&logs).expect("create the log directory");
    for (i, (json, _, _)) in results.iter().enumerate() {
        // kubectl logs interleaves stderr: a diagnostic line before and after the JSON.
        let log = format!("qload: warning: pinned to no core\n{json}qload: done\n");
        std::fs::write(logs.join(format!("qload-{i}-x7k2p")), log).expect("write a pod log");
    }
    let kubectl = scratch.0.join("kubectl");
    write_executable(
        &kubectl,
        &FAKE_KUBECTL
            .replace("@N@", &results.len().to_string())
            .replace("@LOGS@", &logs.display().to_string()),
    );
    let out_dir = scratch.0.join("collected");
    let child = Command::new("bash")
        .arg(collect_script())
        .args(["--out".as_ref(), out_dir.as_os_str()])
        .args(["--qload", QLOAD])
        .env("KUBECTL", &kubectl)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kube-collect.sh");
    let out = wait_output(child, "kube-collect.sh");
    assert!(
        out.status.success(),
        "kube-collect.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    for (i, (_, want, _)) in results.iter().enumerate() {
        let part = std::fs::read_to_string(out_dir.join(format!("qload-{i}.json")))
            .expect("the extracted result");
        let part: RunResult = serde_json::from_str(&part).expect("the extracted JSON parses");
        assert_eq!(&part, want, "index {i}: extracted without the stderr lines");
    }
    let merged = std::fs::read_to_string(out_dir.join("merged.json")).expect("merged.json");
    let merged: RunResult = serde_json::from_str(&merged).expect("merged.json parses");
    let parts: Vec<&RunResult> = results.iter().map(|(_, r, _)| r).collect();
    assert_eq!(merged.parts, parts.len() as u64);
    let sum = |f: fn(&RunResult) -> u64| parts.iter().map(|r| f(r)).sum::<u64>();
    assert_eq!(merged.requests.sent, sum(|r| r.requests.sent));
    assert_eq!(merged.requests.completed, sum(|r| r.requests.completed));
    assert_eq!(merged.requests.errors, sum(|r| r.requests.errors));
    // A percentile of a union lies between the parts' percentiles.
    for (q, get) in [
        (
            "p50",
            (|l| l.p50) as fn(&queuelab_client::result::Latency) -> f64,
        ),
        ("p99", |l| l.p99),
        ("max", |l| l.max),
    ] {
        let lo = parts
            .iter()
            .map(|r| get(&r.latency_us))
            .fold(f64::INFINITY, f64::min);
        let hi = parts.iter().map(|r| get(&r.latency_us)).fold(0.0, f64::max);
        let v = get(&merged.latency_us);
        assert!(lo <= v && v <= hi, "merged {q} {v} not in [{lo}, {hi}]");
    }
}
