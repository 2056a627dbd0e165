//! `qload`: parses the flags, builds a validated `Config`, runs it and maps the outcome to an exit
//! code (0 the run completed, 2 bad usage, 1 failure at run time).
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use queuelab_client::cli::{self, CliError, RunArgs};
use queuelab_client::merge;

/// An open-loop HTTP/1.1 load generator: Poisson arrivals at a fixed rate from pinned
/// thread-per-core event loops, latency measured from the intended send time.
#[derive(Debug, Parser)]
#[command(
    name = "qload",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  qload -R 1000 -d 30s --mu 2000 http://127.0.0.1:8000/\n  qload --max -c 64 -d 10s --json http://127.0.0.1:8000/ > run.json\n  qload --users 50 --think 100ms -n 10k http://127.0.0.1:8000/\n  qload merge pod-*.json --json"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

/// Subcommands besides the load run itself.
#[derive(Debug, Subcommand)]
enum Command {
    /// Merge JSON results of several runs into one (histograms merged exactly).
    Merge(merge::MergeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::Merge(args)) => merge::main(&args),
        None => load(cli.run),
    };
    cli::exit_code(outcome)
}

/// The load run: flags → `Config` → `run` → output.
fn load(args: RunArgs) -> Result<(), CliError> {
    let (config, output) = args.into_config()?;
    let stop = cli::stop_on_signals();
    let result = queuelab_client::run_with_stop(config, stop).map_err(CliError::Runtime)?;
    output.emit(&result)
}
