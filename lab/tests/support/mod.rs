//! Helpers shared by the lab's integration tests: `qlab sweep`'s flags from words, a fresh
//! temporary directory, the qserve binary the tests start.
#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;

use clap::Parser;
use queuelab_lab::SweepArgs;
use queuelab_lab::sweep::SweepPlan;

/// `qlab sweep`'s flags, as its command line parses them.
#[derive(Debug, Parser)]
pub struct SweepCli {
    #[command(flatten)]
    pub args: SweepArgs,
}

/// The flags of `qlab sweep WORDS…`.
pub fn parse(words: &[&str]) -> Result<SweepArgs, clap::Error> {
    SweepCli::try_parse_from(std::iter::once("sweep").chain(words.iter().copied())).map(|c| c.args)
}

/// The plan of `qlab sweep WORDS…` (the flags must parse).
pub fn plan(words: &[&str]) -> anyhow::Result<SweepPlan> {
    parse(words).expect("flags parse").plan()
}

/// A path in the temporary directory for this test process, removed if it exists.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qlab-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

/// The qserve binary beside this test's own executable (target/<profile>/deps/…).
pub fn qserve() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("tests live in target/<profile>/deps");
    let path = dir.join("qserve");
    assert!(
        path.is_file(),
        "{} is missing: build it first (cargo build -p queuelab-server, or cargo test --workspace)",
        path.display()
    );
    path
}
