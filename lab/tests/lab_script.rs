//! `scripts/run-bench.sh` at the shell level: its help, and the refusals of the `qlab sweep` it
//! runs, which happen before qlab starts anything. (The full `run-bench.sh --quick` run is part of
//! `scripts/test.sh`, outside `cargo test`, because it builds the release binaries and cargo's
//! build lock is held while tests run.)
use std::path::PathBuf;
use std::process::{Command, Output};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/run-bench.sh")
}

fn run(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        // This build's qlab (so the script does not build), and a qserve that does not exist: a
        // test that got past validation would fail loudly here rather than start anything.
        .env("QLAB", env!("CARGO_BIN_EXE_qlab"))
        .env("QSERVE", "/nonexistent/qserve")
        .output()
        .expect("bash runs")
}

#[test]
fn help_lists_every_flag() {
    let out = run(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--mu",
        "--servers",
        "--capacity",
        "--service",
        "--rhos",
        "--duration",
        "--warmup",
        "--seed",
        "--out",
        "--url",
        "--quick",
        "--help",
    ] {
        assert!(
            text.contains(flag),
            "--help does not mention {flag}:\n{text}"
        );
    }
}

#[test]
fn bad_usage_exits_2_before_doing_anything() {
    for (args, why) in [
        (&["--bogus"][..], "unexpected argument"),
        (&["--mu"][..], "a value is required"),
        (&["--quick", "--duration", "5s"][..], "--quick"),
        (&["--service", "zero"][..], "zero"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
        assert!(!err.contains("building"), "{args:?} started a build");
        assert!(
            !err.contains("/nonexistent"),
            "{args:?} tried to start qserve: {err}"
        );
    }
}

#[test]
fn a_missing_qserve_is_a_runtime_error_that_names_it() {
    let out = run(&[
        "--rhos",
        "0.5",
        "--duration",
        "1s",
        "--out",
        "/nonexistent/out",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/qserve"), "{err}");
}
