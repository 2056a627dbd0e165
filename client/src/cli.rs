//! The command line of `qload`: raw flags ([`RunArgs`]), their validation into a [`Config`] and the
//! outputs they ask for ([`Output`]), and the error type every subcommand returns ([`CliError`],
//! mapped to exit code 2 for bad usage and 1 for a failure at run time).
//!
//! Subcommands (`qload merge …`, and any added later) each have an `Args` struct and an entry
//! point returning `Result<(), CliError>`; `main.rs` lists them in one enum and dispatches.
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use queuelab_common::model::ModelArgs;
use queuelab_common::profile::RateSpec;
use queuelab_common::samplers::ArrivalKind;
use queuelab_common::units::{parse_count, parse_duration};

use crate::config::{self, Config, Mode, Target};
use crate::http::parse_header;
use crate::result::RunResult;
use crate::tls::Verify;

/// Default number of connections of `--max`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 32;

/// A failed command: bad usage (exit 2) or a failure while running (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The flags are wrong; nothing was run.
    #[error("{0}")]
    Usage(String),
    /// Something failed while running.
    #[error("{0:#}")]
    Runtime(anyhow::Error),
    /// Stopped by SIGINT or SIGTERM before the work was done (exit 130).
    #[error("{0}")]
    Interrupted(String),
}

impl CliError {
    /// The process exit code: 2 for usage, 1 for runtime failures, 130 when interrupted (the
    /// shell's convention for SIGINT).
    pub fn code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Runtime(_) => 1,
            CliError::Interrupted(_) => 130,
        }
    }
}

/// Prints the error (if any) on stderr as `qload: …` and returns the exit code.
pub fn exit_code(outcome: Result<(), CliError>) -> ExitCode {
    exit_code_of("qload", outcome)
}

/// Prints the error (if any) on stderr as `PROGRAM: …` and returns the exit code.
pub fn exit_code_of(program: &str, outcome: Result<(), CliError>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::from(e.code())
        }
    }
}

/// Writes `s` to stdout; a closed pipe (`qload … | head`) is not an error.
pub fn print_stdout(s: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(CliError::Runtime(
            anyhow::Error::new(e).context("writing to stdout"),
        )),
        _ => Ok(()),
    }
}

/// Flags of a load run: `qload [OPTIONS] <URL>`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Load")]
pub struct RunArgs {
    /// Target URL: http://HOST:PORT/PATH?QUERY or https://… (port, path and query optional).
    #[arg(value_name = "URL", required = true)]
    pub url: Option<String>,

    /// Open loop: aggregate arrival rate in requests per second (e.g. 500, 10k, 1.5M), or a
    /// profile of rates over time (e.g. 200:30s,1k:30s or 0..5k:30s,5k:60s).
    ///
    /// The rate is split evenly over the threads; each thread runs its own arrival process at
    /// RATE/threads with absolute intended times, so the total is RATE whatever the answers do.
    ///
    /// A profile is a comma-separated list of entries, each a step RATE:DUR (RATE per second for
    /// DUR) or a linear ramp FROM..TO:DUR (from FROM to TO per second over DUR). Rates take the
    /// suffixes k, M, G and may be 0 (no requests in that entry); durations are as for
    /// --duration (a bare number is seconds). Examples: 200:30s,1000:30s (200/s for 30 s, then
    /// 1000/s for 30 s); 100..5k:60s (from 100/s to 5000/s over 60 s); 0..5k:30s,5k:60s. The
    /// arrivals are then a non-homogeneous Poisson process of that rate (each thread takes its
    /// share); the run lasts the profile (--duration can only cut it shorter, --requests still
    /// caps it); --warmup runs at the profile's first rate before it starts; the result gives
    /// each interval its target rate and checks the gaps in the profile's operational time.
    #[arg(short = 'R', long, value_name = "RATE|PROFILE", value_parser = RateSpec::parse,
          conflicts_with_all = ["users", "max"])]
    pub rate: Option<RateSpec>,

    /// Inter-arrival distribution of the open loop: poisson, constant or uniform.
    ///
    /// poisson: exponential gaps (default); constant: exactly 1/rate; uniform: on [0, 2/rate].
    /// With a rate profile the same three in its operational time (where the rate is 1): poisson
    /// is the non-homogeneous Poisson process, constant puts the n-th request where n requests
    /// are expected (evenly spaced at each moment's rate), uniform draws gaps on [0, 2] there.
    #[arg(
        long,
        value_name = "KIND",
        default_value = "poisson",
        requires = "rate"
    )]
    pub arrival: ArrivalKind,

    /// Measured duration (e.g. 30s, 2m) after the warmup.
    ///
    /// Default 10s unless --requests is given; with both, whichever ends first. With a rate
    /// profile the default is the profile's length, and a longer --duration is cut to it.
    #[arg(short = 'd', long, value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Number of measured requests to issue (e.g. 10000, 50k); warmup requests not included.
    #[arg(short = 'n', long, value_name = "N", value_parser = parse_count)]
    pub requests: Option<u64>,

    /// Send during this time before measuring. Not counted, not in the histograms.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "0s")]
    pub warmup: Duration,

    /// Closed loop: number of users, each thinking, sending and waiting for its answer.
    #[arg(long, value_name = "N", conflicts_with = "max")]
    pub users: Option<u32>,

    /// Mean think time of a closed-loop user, exponentially distributed (default 0: none).
    #[arg(long, value_name = "DUR", value_parser = parse_duration, requires = "users")]
    pub think: Option<Duration>,

    /// Maximum throughput: each connection sends again as soon as its answer is in.
    ///
    /// Uses --connections connections (default 32) with one request in flight each.
    #[arg(long)]
    pub max: bool,

    /// Worker threads [default: open loop, one per 50000/s of rate; else one per core; at most
    /// one per core this process may run on].
    ///
    /// Capped by the number of users (closed loop), of connections (--max) and of requests.
    #[arg(short = 't', long, value_name = "N", help_heading = "Engine")]
    pub threads: Option<usize>,

    /// Cap on open connections over all threads.
    ///
    /// Open loop: default 10000, opened on demand (a due request takes an idle connection, else
    /// opens one, at most 8 per pass of the event loop, else waits in the backlog). Closed loop:
    /// default one per user. --max: the number of connections, default 32.
    #[arg(short = 'c', long, value_name = "N", help_heading = "Engine")]
    pub connections: Option<usize>,

    /// Bound on due requests waiting for a free connection, over all threads (default 100000).
    ///
    /// Beyond it, due requests fail at once and are counted as "backlog" errors.
    #[arg(long, value_name = "N", value_parser = parse_count, help_heading = "Engine")]
    pub backlog: Option<u64>,

    /// Per-request timeout from the write (or from the start of the connect), default 10s.
    ///
    /// A new connection's connect and TLS handshake (https) share one timeout from the start of
    /// the connect. The run ends at most one timeout after the schedule ends; requests still in
    /// flight then are counted as "unfinished".
    #[arg(long, value_name = "DUR", value_parser = parse_duration, help_heading = "Engine")]
    pub timeout: Option<Duration>,

    /// Busy-poll this long before each intended send instead of sleeping (default 200us).
    ///
    /// The loop sleeps on a timerfd until SPIN before the send, then polls with a zero timeout
    /// until the intended time; after a write it also polls for up to SPIN while the answer may
    /// arrive (not with --max). A timer wake-up is late by tens of microseconds to a millisecond
    /// at p99 (virtual machines are the worst); a busy poll by a few. Larger values cost CPU and
    /// give a smaller send lag; 0 sleeps all the way.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, help_heading = "Engine")]
    pub spin: Option<Duration>,

    /// Poll without sleeping while any request is in flight (costs a core per thread) [default:
    /// on when the threads are pinned and a core is left over].
    ///
    /// Beyond --spin, which polls only near a send and just after a write: a busy-polling thread
    /// polls with a zero timeout until every in-flight answer has come, however late, so that no
    /// answer's timestamp includes a wake-up (tens of microseconds, up to a millisecond at p99 on
    /// a virtual machine). It is on by default when each thread is pinned to a core of its own
    /// and at least one core this process may use is left over (for a server on the same machine,
    /// and the kernel); --no-busy-poll turns it off, e.g. to leave the CPU to other work.
    #[arg(long, help_heading = "Engine", conflicts_with = "no_busy_poll")]
    pub busy_poll: bool,

    /// Sleep between events even when a core would be free to poll (see --busy-poll).
    #[arg(long, help_heading = "Engine")]
    pub no_busy_poll: bool,

    /// Seed of the random streams (arrivals, think times); each thread gets its own stream.
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Engine")]
    pub seed: u64,

    /// Do not pin worker threads to cores.
    #[arg(long, help_heading = "Engine")]
    pub no_pin: bool,

    /// Length of the intervals of the time series and the live line (default 1s).
    ///
    /// The batches of the 95% interval of the mean do not depend on it: their length adapts to
    /// the run (16 to 32 batches of equal length, see docs/qload.md).
    #[arg(long, value_name = "DUR", value_parser = parse_duration, help_heading = "Engine")]
    pub interval: Option<Duration>,

    /// HTTP method.
    #[arg(
        short = 'm',
        long,
        value_name = "METHOD",
        default_value = "GET",
        help_heading = "Request"
    )]
    pub method: String,

    /// Extra request header "Name: value" (repeatable). A Host header replaces the URL's.
    #[arg(
        short = 'H',
        long = "header",
        value_name = "HEADER",
        help_heading = "Request"
    )]
    pub headers: Vec<String>,

    /// Request body (sent with Content-Length); @FILE reads it from FILE.
    #[arg(long, value_name = "BODY", help_heading = "Request")]
    pub body: Option<String>,

    /// Trust the CA certificates of this PEM file instead of the system's roots (https only).
    ///
    /// Every CERTIFICATE block of FILE is a root; the server's certificate must chain to one of
    /// them and name the URL's host (a DNS name, or an IP literal among its IP addresses).
    /// Without --cacert and --insecure the system's roots are used (SSL_CERT_FILE and
    /// SSL_CERT_DIR point elsewhere); a run without any is refused.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "TLS",
        conflicts_with = "insecure"
    )]
    pub cacert: Option<PathBuf>,

    /// Do not verify the server's certificate (https only): the result warns of it.
    ///
    /// Any certificate is taken, for any name, expired or not; the handshake's signatures are
    /// still checked (the server must hold the key of the certificate it shows). Meant for test
    /// servers with self-signed certificates; the measurement is the same.
    #[arg(long, help_heading = "TLS")]
    pub insecure: bool,

    /// The queue behind the URL; with --mu its theory is printed beside the measurement.
    #[command(flatten, next_help_heading = "Theory (with --mu)")]
    pub model: ModelArgs,

    /// Print one JSON document on stdout instead of the text summary.
    #[arg(long, help_heading = "Output")]
    pub json: bool,

    /// Write the per-interval time series to FILE as CSV.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub csv: Option<PathBuf>,

    /// Write the latency distribution to FILE as HdrHistogram percentile text (ms), for
    /// HdrHistogram's plotter; the uncorrected latency goes beside it.
    ///
    /// The format of HdrHistogram's outputPercentileDistribution (as wrk2 -U prints it): value
    /// in milliseconds (six decimals), percentile, total count and 1/(1-percentile), 5 ticks
    /// per half distance to 100%, then the mean, deviation, maximum, count and bucket footer.
    /// FILE holds the latency from the intended send time; FILE with ".uncorrected" before its
    /// extension (run.hgrm -> run.uncorrected.hgrm; no extension: FILE.uncorrected) the latency
    /// from the write. Written after the run, beside --json or the text summary.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub hgrm: Option<PathBuf>,

    /// No live line on stderr (it is printed only when stderr is a terminal anyway).
    #[arg(short = 'q', long, help_heading = "Output")]
    pub quiet: bool,
}

/// Where the result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// JSON on stdout instead of text.
    pub json: bool,
    /// CSV time series file.
    pub csv: Option<PathBuf>,
    /// HdrHistogram percentile-distribution file (and the uncorrected one beside it).
    pub hgrm: Option<PathBuf>,
}

impl Output {
    /// Writes the result: the CSV and hgrm files if asked, then JSON or text on stdout.
    pub fn emit(&self, result: &RunResult) -> Result<(), CliError> {
        if let Some(path) = &self.hgrm {
            crate::hgrm::write_files(result, path).map_err(CliError::Runtime)?;
        }
        if let Some(path) = &self.csv {
            let file = std::fs::File::create(path)
                .map_err(|e| CliError::Runtime(anyhow::anyhow!("{}: {e}", path.display())))?;
            crate::report::write_csv(result, io::BufWriter::new(file))
                .map_err(|e| CliError::Runtime(anyhow::anyhow!("{}: {e}", path.display())))?;
        }
        if self.json {
            let mut s =
                serde_json::to_string_pretty(result).map_err(|e| CliError::Runtime(e.into()))?;
            s.push('\n');
            print_stdout(&s)
        } else {
            print_stdout(&crate::report::text(result))
        }
    }
}

impl RunArgs {
    /// Validates the flags into a configuration and the outputs (errors are usage errors).
    pub fn into_config(self) -> Result<(Config, Output), CliError> {
        let usage = |m: String| CliError::Usage(m);
        if self.think.is_some() && self.users.is_none() {
            // clap skips `requires` when the required flag conflicts with a present one (--rate).
            return Err(usage(
                "--think needs --users (it is the closed loop's think time)".into(),
            ));
        }
        if self.model.mu.is_none() && self.model.describes_queue() {
            return Err(usage(
                "--servers, --capacity, --service and --model describe the queue whose service \
                 rate is --mu: give --mu too"
                    .into(),
            ));
        }
        let url = self
            .url
            .ok_or_else(|| usage("a target URL is required (see --help)".into()))?;
        let headers = self
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| usage(e.to_string()))?;
        let body = match self.body {
            Some(b) => Some(match b.strip_prefix('@') {
                Some(path) => {
                    std::fs::read(path).map_err(|e| usage(format!("--body @{path}: {e}")))?
                }
                None => b.into_bytes(),
            }),
            None => None,
        };
        let verify = match (self.cacert, self.insecure) {
            (Some(file), _) => Some(Verify::CaFile(file)),
            (None, true) => Some(Verify::Insecure),
            (None, false) => None,
        };
        let target = Target::with_verify(&url, &self.method, &headers, body.as_deref(), verify)
            .map_err(|e| usage(e.to_string()))?;
        let mode = if self.max {
            let c = match self.connections {
                Some(c) => u32::try_from(c)
                    .map_err(|_| usage(format!("--connections {c} is too large")))?,
                None => DEFAULT_MAX_CONNECTIONS,
            };
            Mode::Max { connections: c }
        } else if let Some(users) = self.users {
            Mode::Closed {
                users,
                think: self.think.unwrap_or(Duration::ZERO),
            }
        } else if let Some(rate) = &self.rate {
            Mode::Open {
                rate: match rate {
                    RateSpec::Constant(r) => *r,
                    RateSpec::Shaped(p) => p.mean(),
                },
                arrival: self.arrival,
            }
        } else {
            return Err(usage(
                "say how to load: --rate RATE (open loop), --users N (closed loop) or --max".into(),
            ));
        };
        let mut config = Config::new(target, mode);
        config.profile = match self.rate {
            Some(RateSpec::Shaped(p)) if !self.max && self.users.is_none() => Some(p),
            _ => None,
        };
        config.duration = match (self.duration, self.requests) {
            (Some(d), _) => Some(d),
            // A profile bounds the run by its own length.
            (None, _) if config.profile.is_some() => None,
            (None, Some(_)) => None,
            (None, None) => Some(config::DEFAULT_DURATION),
        };
        config.requests = self.requests;
        config.warmup = self.warmup;
        config.threads = self.threads;
        config.connections = self.connections;
        if let Some(b) = self.backlog {
            config.backlog = usize::try_from(b).unwrap_or(usize::MAX);
        }
        if let Some(t) = self.timeout {
            config.timeout = t;
        }
        if let Some(s) = self.spin {
            config.spin = s;
        }
        config.busy_poll = match (self.busy_poll, self.no_busy_poll) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        if let Some(i) = self.interval {
            config.interval = i;
        }
        config.seed = self.seed;
        config.pin = !self.no_pin;
        config.theory = self.model.given_model();
        config.live = !self.quiet && io::stderr().is_terminal();
        config.validate().map_err(|e| usage(e.to_string()))?;
        Ok((
            config,
            Output {
                json: self.json,
                csv: self.csv,
                hgrm: self.hgrm,
            },
        ))
    }
}

/// A stop flag set by the first SIGINT or SIGTERM (the run then drains and reports); a second one
/// terminates the process at once.
pub fn stop_on_signals() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The second signal exits with the conventional 128 + signal number… but only once the
        // flag is already set; registering can fail only for forbidden signals, not these.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop));
        let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
    }
    stop
}
