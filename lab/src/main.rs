//! `qlab`: the queueing lab's command. Parses the flags of `qlab sweep` or `qlab report`, runs the
//! command and maps the outcome to an exit code (0 done, 2 bad usage, 1 failure at run time).
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use queuelab_client::cli::exit_code_of;
use queuelab_lab::{ReportArgs, SweepArgs, report_main, sweep_main};

/// The queueing lab: sweep the load over a queue server, compare every point with theory, and
/// draw it.
#[derive(Debug, Parser)]
#[command(
    name = "qlab",
    version,
    after_help = "Examples:\n  qlab sweep --mu 1000 --quick                  (starts qserve and its zero-service twin itself)\n  qlab sweep --mu 1000 --rhos 0.2,0.5,0.8 http://127.0.0.1:8000/\n  qlab report results/20261201-120000"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sweep the load over a queue and compare every point with theory.
    Sweep(Box<SweepArgs>),
    /// Redraw a sweep's table and plots from its results.json.
    Report(ReportArgs),
}

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Sweep(args) => sweep_main(*args),
        Command::Report(args) => report_main(args),
    };
    exit_code_of("qlab", outcome)
}
