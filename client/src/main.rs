//! `qload`: parses the flags, builds a validated `Config`, runs it and maps the outcome to an exit
//! code (0 the run completed, 2 bad usage, 1 failure at run time).
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use queuelab_client::cli::{self, CliError, RunArgs};
use queuelab_client::{merge, search};

/// An open-loop HTTP/1.1 load generator: Poisson arrivals at a fixed rate from pinned
/// thread-per-core event loops, latency measured from the intended send time.
#[derive(Debug, Parser)]
#[command(
    name = "qload",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  qload -R 1000 -d 30s --mu 2000 http://127.0.0.1:8000/\n  qload --max -c 64 -d 10s --json http://127.0.0.1:8000/ > run.json\n  qload --users 50 --think 100ms -n 10k http://127.0.0.1:8000/\n  qload merge pod-*.json --json\n  qload search --slo 'p99<10ms' --lo 100 --hi 2000 http://127.0.0.1:8000/"
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
    /// Find the highest open-loop rate whose run meets an objective (e.g. 'p99<10ms').
    Search(Box<search::SearchArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::Merge(args)) => merge::main(&args),
        Some(Command::Search(args)) => knee_search(args),
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

/// The knee search: flags → `SearchConfig` → `search::run` (a line per probe) → output.
fn knee_search(args: Box<search::SearchArgs>) -> Result<(), CliError> {
    let (config, output) = args.into_config()?;
    let stop = cli::stop_on_signals();
    let result = search::run(&config, stop, |p| output.probe(p)).map_err(CliError::Runtime)?;
    output.emit(&result)
}
