//! The `sweep` and `report` subcommands: their flags, the validation that turns flags into a
//! [`SweepPlan`], and the commands themselves (results on stdout, progress on stderr).
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::Args;
use queuelab_common::model::{DEFAULT_MU, Load, Model, ModelArgs, Servers, ServiceKind};
use queuelab_common::sim::SimOptions;
use queuelab_common::units::parse_duration;

use crate::analysis;
use crate::closed::{self, ClosedPlan};
use crate::measure::RunOptions;
use crate::netsweep;
use crate::progress::SweepProgress;
use crate::record::ResultsFile;
use crate::report;
use crate::servers::{CpuSplit, LocalServers, ServerPlan, find_qserve};
use crate::sweep::{self, SweepKind, SweepPlan, Warmup};
use crate::variability::{self, Family, VariabilityPlan};
use queuelab_client::cli::{CliError, print_stdout, stop_on_signals};
use queuelab_client::config::Target;

/// `qlab sweep`: measure a queue at a series of loads and compare every point with theory.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Sweep the load ρ over a queue server and compare each point with queueing theory",
    long_about = "Sweep the load ρ over a queue server (qserve) and compare each point with \
queueing theory.\n\nFor each ρ, an open-loop Poisson run at λ = ρ·c·μ (ρ·μ with --servers inf) \
measures the response time; a second run at the same rate against a zero-service endpoint \
measures the fixed overhead of the path. Writes results.json, results.csv, table.txt and SVG \
plots into --out, and prints the table. The flags --mu, --servers, --capacity and --service \
(or --model) must describe how the server was started; their defaults are qserve's (μ = 1000/s, \
one server, no capacity, exponential service).\n\nWith --users and --think, a closed-loop \
sweep over the number of users instead (throughput and response time against MVA or the \
simulator); with --cv2 and --rho, a sweep of the service's variability C² at one load (each \
point restarts qserve with its service; see docs/lab.md)."
)]
// `--service` also takes a bare family (`h2`, `lognormal`) for `--cv2`; see `sweep_service_value`.
#[command(mut_arg("service", |a| a.value_parser(sweep_service_value)))]
pub struct SweepArgs {
    /// URL of a queue server already running [default: qlab starts qserve itself]
    #[arg(
        long_help = "URL of a queue server that is already running (e.g. in minikube), such as \
http://127.0.0.1:8000/. Without it, qlab starts qserve itself with the model's flags, and its \
zero-service twin for the overhead runs, each on a free loopback port, pinned to the first core \
qlab may use (qlab's own threads take the others), and stops both when the sweep ends, fails or \
is interrupted."
    )]
    pub url: Option<String>,

    /// The same as the URL argument
    #[arg(long = "url", value_name = "URL", conflicts_with = "url")]
    pub url_flag: Option<String>,

    /// The qserve binary to start [default: $QSERVE, else qserve beside qlab, else on the PATH]
    #[arg(long, value_name = "PATH", conflicts_with_all = ["url", "url_flag"])]
    pub qserve: Option<PathBuf>,

    /// The queue, as the server was started: --mu (default 1000), --servers, --capacity,
    /// --service, or --model for the last three.
    #[command(flatten)]
    pub model: ModelArgs,

    /// Loads per server, comma-separated
    #[arg(
        long,
        value_delimiter = ',',
        long_help = "Offered loads per server ρ = λ/(cμ), comma-separated, measured in this \
order. Each must be positive; below 1 unless --capacity is set or --servers is inf. \
Default: ten points from 0.1 to 0.95. With --network, loads relative to the bottleneck \
station, λ = ρ·λ_max (default: 0.2, 0.35, 0.5, 0.65, 0.8)."
    )]
    pub rhos: Vec<f64>,

    /// Measured duration per point [default: 45s]
    #[arg(
        long,
        value_parser = parse_duration,
        conflicts_with = "quick",
        long_help = "Measured duration of each point (e.g. 45s, 2m), after its warm-up. The \
relative error of a mean grows like 1/√duration and quickly with ρ: at μ = 1000/s, 30 s at \
ρ = 0.5 gives about 2.3%, 40 s at ρ = 0.8 about 5% (one standard deviation). Default: 45s, \
about ten minutes for the ten default points."
    )]
    pub duration: Option<Duration>,

    /// Warm-up per point, sent but not measured [default: auto]
    #[arg(
        long,
        value_parser = parse_duration,
        conflicts_with = "quick",
        long_help = "Warm-up before each point's measurement: requests are sent but not \
measured while the queue, which starts empty, reaches its stationary regime. Default: four \
relaxation times of the queue at that load (about 1/(cμ(1−√ρ)²) each), between 1s and 10s."
    )]
    pub warmup: Option<Duration>,

    /// Base seed of the arrival schedules
    #[arg(
        long,
        default_value_t = 1,
        long_help = "Base seed of the arrival schedules. Each run's seed is a hash of it and \
the run's number (recorded in results.json), so it differs from the server's own --seed even \
when both are given the same value: equal seeds would draw service times and arrival gaps from \
the same random stream."
    )]
    pub seed: u64,

    /// Output directory, created fresh [default: results/YYYYmmdd-HHMMSS (UTC)]
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// The whole sweep in under a minute, trading precision for time
    #[arg(
        long,
        long_help = "Fit the whole sweep in under a minute: about 48 s of sending. Each point \
warms up for two relaxation times of the queue (0.3 s to 3 s, the high loads longest); the rest \
is split evenly (75% measured, 25% for the overhead run), about 3 s measured per point for the \
ten default loads. Short runs trade precision for time: intervals are wide and high loads may \
not reach their stationary regime. Conflicts with --duration and --warmup."
    )]
    pub quick: bool,

    /// Zero-service URL for the overhead runs [default: the URL's /healthz]
    #[arg(
        long,
        conflicts_with = "no_overhead",
        long_help = "A zero-service endpoint used to measure the fixed overhead of the path \
(client, loopback or network, server) at each point's rate: qserve's /healthz (the default, \
derived from URL) or a twin qserve started with --service zero."
    )]
    pub overhead_url: Option<String>,

    /// Do not measure the overhead (no net values)
    #[arg(long)]
    pub no_overhead: bool,

    /// Worker threads of each run [default: one per core qload may use]
    #[arg(long)]
    pub threads: Option<usize>,

    /// Do not pin worker threads to cores
    #[arg(long)]
    pub no_pin: bool,

    /// Busy-wait margin before each intended send [default: qload's]
    #[arg(long, value_parser = parse_duration)]
    pub spin: Option<Duration>,

    /// Poll without sleeping while requests are in flight [default: on with two cores or more]
    #[arg(
        long,
        conflicts_with = "no_busy_poll",
        long_help = "Busy-poll on both sides: qload polls without sleeping while a request is in \
flight, and the servers qlab starts poll while a client is connected (qserve --busy-poll). A \
queued answer comes milliseconds after its request, when a sleeping client would pay a wake-up \
on every answer that the zero-service overhead run does not see. Default: on when each side has \
a core of its own (two cores or more, and pinning not disabled); each busy-polling process then \
keeps its core fully busy during the runs."
    )]
    pub busy_poll: bool,

    /// Let both sides sleep between events (costs accuracy; see --busy-poll)
    #[arg(long)]
    pub no_busy_poll: bool,

    /// Most measurements of a point whose self-checks fail
    #[arg(
        long,
        default_value_t = sweep::DEFAULT_ATTEMPTS,
        value_parser = clap::value_parser!(u32).range(1..),
        long_help = "Most measurements of a point: a point whose self-checks fail (arrival rate \
and distribution, send lag, a stall of the client or the server, the departure timer's lateness, \
stationarity of the batch means, stability of the path, errors; see docs/lab.md) is measured \
again, its overhead run too, with a new seed, up to this many times. The first attempt that \
passes is kept, else the last, marked failed and left out of the summary. 1: no re-runs."
    )]
    pub attempts: u32,

    /// Replications of the simulation where a point has no closed form
    #[arg(
        long,
        default_value_t = analysis::DEFAULT_SIM_REPLICATIONS,
        value_parser = clap::value_parser!(u32).range(2..),
        long_help = "Independent replications of the simulation that is a point's reference \
where theory has no closed form (or has the mean but not the percentiles and the distribution): \
each of 20 customers per request the point measured, at least 100000, simulated in qlab after \
the point's runs, once per model and arrival rate. The interval of the simulated mean is Student's \
t over the replications, so at least 2."
    )]
    pub sim_replications: u32,

    /// Per-request timeout [default: qload's]
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// A closed-loop sweep over these numbers of users, comma-separated (instead of --rhos)
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "N,…",
        conflicts_with_all = ["rhos", "quick", "cv2"],
        requires = "think",
        long_help = "Sweep the number of users N of a closed loop instead of the load: at each N, \
N users each think for an exponential time of mean --think, send one request and wait for its \
answer. Each point reports the throughput X(N) and the response time R(N), raw and net of the \
path (Server-Timing), against the closed model with the think time the queue sees, Z + the mean \
path (MVA where the model has a product form, else the simulator), with the asymptotic bounds. \
Needs --think; conflicts with --rhos, --quick and --cv2."
    )]
    pub users: Vec<u32>,

    /// Mean think time of each user of a closed sweep (e.g. 10ms)
    #[arg(long, value_parser = parse_duration, requires = "users")]
    pub think: Option<Duration>,

    /// A sweep of the service's variability over these C², comma-separated (at one --rho)
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "C²,…",
        conflicts_with_all = ["rhos", "quick", "url", "url_flag"],
        long_help = "Sweep the squared coefficient of variation C² of the service at one load \
(--rho, default 0.7), each point with its own service of mean 1/μ from the --service family: h2 \
(the default: C² = 0 is const, 1/k is erlang:k, 1 is exp, above 1 is h2:C²) or lognormal (any \
C² > 0). Each point restarts qserve with its service, so no URL. The plot draws the measured \
mean and p99 against C², the Pollaczek–Khinchine mean and simulated p99s."
    )]
    pub cv2: Vec<f64>,

    /// Sweep an open network of stations over the arrival rate (a network TOML file)
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["users", "cv2", "url", "url_flag", "quick"],
        long_help = "Sweep an open network of stations (the TOML file of qserve --network; see \
docs/models.md \"## Networks\") over the external arrival rate λ: --rates gives λ itself, --rhos \
fractions of λ_max (the rate at which the bottleneck station saturates; default 0.2 to 0.8 in \
five points). A load at or past λ_max is refused, naming the unstable station. Each point \
restarts qserve --network FILE and reports per station the utilisation, L, W and the visits \
per request from /metrics, end to end the mean and percentiles, against the product form \
where it holds and the simulator elsewhere, and Burke's check of the first station's \
departures (see docs/lab.md \"## Network sweeps\"). The model flags (--mu, …) are ignored."
    )]
    pub network: Option<PathBuf>,

    /// The external arrival rates λ of a --network sweep, comma-separated (1/s)
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "λ,…",
        requires = "network",
        conflicts_with = "rhos"
    )]
    pub rates: Vec<f64>,

    /// The one load per server of a --cv2 sweep [default: 0.7]
    #[arg(long, requires = "cv2", conflicts_with = "rhos")]
    pub rho: Option<f64>,
}

/// `--service` of `qlab sweep`: a service kind as everywhere, or a bare family name for `--cv2`
/// (`h2`, `lognormal`), read as that kind with an undefined C² (NaN) which the sweep replaces
/// point by point (and refuses without `--cv2`).
fn sweep_service_value(s: &str) -> Result<ServiceKind, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "h2" => Ok(ServiceKind::H2 { cv2: f64::NAN }),
        "lognormal" => Ok(ServiceKind::Lognormal { cv2: f64::NAN }),
        _ => s.parse::<ServiceKind>().map_err(|e| e.to_string()),
    }
}

/// Whether `s` is a bare family of `--service` (see [`sweep_service_value`]).
fn family_only(s: ServiceKind) -> bool {
    matches!(s, ServiceKind::H2 { cv2 } | ServiceKind::Lognormal { cv2 } if cv2.is_nan())
}

/// The default load of a `--cv2` sweep: high enough for the queue to matter, low enough for a
/// short run to hold many busy periods.
pub const DEFAULT_CV2_RHO: f64 = 0.7;

/// `qlab report DIR`: redraw a sweep from its `results.json`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Recompute the table, results.csv and the plots of a sweep from its results.json",
    long_about = "Recompute the table, results.csv, table.txt and the SVG plots of a sweep \
from DIR/results.json (written by qlab sweep), and print the table."
)]
pub struct ReportArgs {
    /// Directory of a sweep (holding results.json)
    pub dir: PathBuf,
}

impl SweepArgs {
    /// Validates the flags into a plan (the URL is resolved here, once, to fail early).
    pub fn plan(mut self) -> anyhow::Result<SweepPlan> {
        let mut model = self.model.model_or(DEFAULT_MU);
        model.validate()?;
        let kind = self.kind(&model)?;
        match &kind {
            SweepKind::Variability(vp) => model = model.with_service(vp.services[0]),
            _ if family_only(model.service) => {
                let f = if matches!(model.service, ServiceKind::H2 { .. }) {
                    "h2"
                } else {
                    "lognormal"
                };
                bail!("--service {f}: give its C² (as {f}:4), or sweep it with --cv2");
            }
            _ => {}
        }
        if model.service == ServiceKind::Zero {
            bail!(
                "--service zero has no queue to sweep (it is what the overhead runs measure); \
                 use exp, const or uniform"
            );
        }
        let rhos_given = !self.rhos.is_empty();
        if !rhos_given {
            self.rhos = sweep::DEFAULT_RHOS.to_vec();
        }
        if let SweepKind::Network(np) = &kind {
            self.rhos = np.rates.iter().map(|l| l / np.lambda_max).collect();
        }
        for &r in self
            .rhos
            .iter()
            .filter(|_| !matches!(kind, SweepKind::Network(_)))
        {
            if !(r.is_finite() && r > 0.0) {
                bail!("--rhos: every load must be positive and finite, got {r}");
            }
            if analysis::needs_rho_below_one(&model) && r >= 1.0 {
                bail!(
                    "--rhos: ρ = {r} ≥ 1 makes the queue unstable (it grows without bound); \
                     stay below 1, or set --capacity for an M/M/c/K sweep"
                );
            }
            let lambda = model.lambda(Load::Rho(r));
            if lambda > 1e7 {
                bail!("--rhos: ρ = {r} means λ = {lambda} requests/s, beyond a sweep");
            }
        }
        let cpus = if self.no_pin {
            None
        } else {
            CpuSplit::of(&queuelab_os::affinity::allowed().unwrap_or_default())
        };
        let busy_poll = self.busy_poll || (!self.no_busy_poll && cpus.is_some());
        let (url, overhead_url, servers) = match self.url.or(self.url_flag) {
            Some(url) => {
                Target::new(&url, "GET", &[], None).with_context(|| format!("URL {url}"))?;
                let overhead_url = if self.no_overhead {
                    None
                } else {
                    let u = match self.overhead_url {
                        Some(u) => u,
                        None => sweep::healthz_url(&url)
                            .with_context(|| format!("cannot derive /healthz from {url}"))?,
                    };
                    Target::new(&u, "GET", &[], None)
                        .with_context(|| format!("--overhead-url {u}"))?;
                    Some(u)
                };
                (url, overhead_url, None)
            }
            None => {
                if self.overhead_url.is_some() {
                    bail!("--overhead-url needs a URL: without one, qlab starts the twin itself");
                }
                let servers = ServerPlan {
                    qserve: find_qserve(self.qserve.as_deref()),
                    model,
                    seed: self.seed,
                    spin: SERVER_SPIN.to_owned(),
                    busy_poll,
                    cpus: cpus.as_ref().map_or_else(Vec::new, |s| s.server.clone()),
                };
                // Filled in once the servers listen (see `sweep_main`).
                (
                    String::new(),
                    (!self.no_overhead).then(String::new),
                    Some(servers),
                )
            }
        };
        let (duration, warmup, overhead_duration, overhead_warmup) = if self.quick {
            if self.rhos.len() > sweep::QUICK_MAX_POINTS {
                bail!(
                    "--quick takes at most {} points (got {})",
                    sweep::QUICK_MAX_POINTS,
                    self.rhos.len()
                );
            }
            let (d, od, ow) = sweep::quick_durations(&model, &self.rhos, overhead_url.is_some())
                .with_context(|| {
                    "--quick: these loads need more than the minute for their warm-ups; \
                         use fewer or lower loads, or --duration"
                })?;
            (d, Warmup::Quick, od, ow)
        } else {
            let d = self.duration.unwrap_or(sweep::DEFAULT_DURATION);
            let w = self.warmup.map_or(Warmup::Auto, Warmup::Fixed);
            // The overhead's spread is small: a fifth of the time gives it a tight interval.
            let od = (d / 5).max(Duration::from_secs(1)).min(d);
            (d, w, od, Duration::from_millis(500).min(d))
        };
        if duration < sweep::MIN_DURATION {
            bail!("--duration must be at least {:?}", sweep::MIN_DURATION);
        }
        let out = match self.out {
            Some(p) => p,
            None => sweep::default_out_dir(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            ),
        };
        if self.threads == Some(0) {
            bail!("--threads must be at least 1");
        }
        Ok(SweepPlan {
            url,
            overhead_url,
            servers,
            client_cpus: cpus.map_or_else(Vec::new, |s| s.client),
            stop: Arc::new(AtomicBool::new(false)),
            model,
            rhos: self.rhos,
            duration,
            warmup,
            overhead_duration,
            overhead_warmup,
            seed: self.seed,
            quick: self.quick,
            attempts: self.attempts,
            kind,
            sim_replications: self.sim_replications,
            out,
            opts: RunOptions {
                threads: self.threads,
                pin: !self.no_pin,
                spin: self.spin,
                busy_poll,
                timeout: self.timeout,
            },
        })
    }
}

impl SweepArgs {
    /// What the flags sweep: the load, the users of a closed loop, or the service's C².
    fn kind(&self, model: &Model) -> anyhow::Result<SweepKind> {
        if let Some(path) = &self.network {
            let loads = if !self.rates.is_empty() {
                netsweep::Loads::Rates(self.rates.clone())
            } else if !self.rhos.is_empty() {
                netsweep::Loads::Rhos(self.rhos.clone())
            } else {
                netsweep::Loads::Default
            };
            let np = netsweep::NetworkPlan::new(path, loads, self.sim_options())?;
            return Ok(SweepKind::Network(Box::new(np)));
        }
        if !self.users.is_empty() {
            let think = self.think.unwrap_or(Duration::ZERO);
            if self.users.contains(&0) {
                bail!("--users: every number of users must be at least 1");
            }
            if let Some(&n) = self.users.iter().find(|&&n| n > MAX_USERS) {
                bail!("--users: {n} users is beyond a sweep (at most {MAX_USERS})");
            }
            if model.servers == Servers::Infinite {
                bail!(
                    "--users: a closed sweep needs a finite number of servers (no bounds with inf)"
                );
            }
            if model.capacity.is_some() {
                bail!("--users with --capacity: in a closed loop N already bounds the queue");
            }
            return Ok(SweepKind::Closed(ClosedPlan {
                users: self.users.clone(),
                think,
                sim: self.sim_options(),
            }));
        }
        if !self.cv2.is_empty() {
            let given = self.model.service.or(self.model.model.map(|k| k.service));
            let family = Family::of_service(given).map_err(anyhow::Error::msg)?;
            let rho = self.rho.unwrap_or(DEFAULT_CV2_RHO);
            if model.capacity.is_some() {
                bail!(
                    "--cv2 with --capacity: the Pollaczek–Khinchine line is of a queue without one"
                );
            }
            let mut vp =
                VariabilityPlan::new(family, rho, &self.cv2).map_err(anyhow::Error::msg)?;
            vp.sim = self.sim_options();
            return Ok(SweepKind::Variability(vp));
        }
        Ok(SweepKind::Load)
    }
}

impl SweepArgs {
    /// The simulations of a closed or variability sweep's references: the default size with
    /// `--sim-replications` replications (at least 2, for an interval) and the sweep's seed.
    fn sim_options(&self) -> SimOptions {
        SimOptions {
            replications: self.sim_replications.max(2),
            seed: self.seed,
            ..SimOptions::default()
        }
    }
}

/// Most users of a closed sweep's point (each is a connection of qload's).
pub const MAX_USERS: u32 = 10_000;

fn list_files(files: &[PathBuf]) {
    let mut err = std::io::stderr().lock();
    for f in files {
        let _ = writeln!(err, "wrote {}", f.display());
    }
}

/// qserve's `--spin` in the lab: a sleeping wake-up is late by tens of microseconds, which would
/// add to every response time; 50 µs of busy-waiting before each departure removes it.
pub const SERVER_SPIN: &str = "50us";

/// `qlab sweep`: starts the servers unless a URL was given, runs the sweep, prints the table on
/// stdout and the files written on stderr, and stops the servers. Invalid flags are a usage error
/// (exit 2); a failure while measuring is a runtime error (exit 1); SIGINT or SIGTERM ends the
/// sweep after the run in progress drains (exit 130), the points before it kept.
pub fn sweep_main(args: SweepArgs) -> Result<(), CliError> {
    let mut plan = args.plan().map_err(|e| CliError::Usage(format!("{e:#}")))?;
    plan.stop = stop_on_signals();
    let mut err = std::io::stderr();
    // A variability sweep starts its servers point by point, each with its service.
    let per_point = match &plan.kind {
        SweepKind::Variability(_) | SweepKind::Network(_) => plan.servers.take(),
        _ => None,
    };
    let servers = match plan.servers.take() {
        Some(sp) => {
            let s = LocalServers::start(&sp).map_err(CliError::Runtime)?;
            plan.url = s.queue.url();
            if plan.overhead_url.is_some() {
                plan.overhead_url = Some(s.twin.url());
            }
            let pinned = if sp.cpus.is_empty() {
                String::from("unpinned")
            } else {
                format!("pinned to CPU {:?}", sp.cpus)
            };
            let _ = writeln!(
                err,
                "qserve at {} and its zero-service twin at {}, {pinned}{}",
                plan.url,
                s.twin.url(),
                if sp.busy_poll { ", busy-polling" } else { "" }
            );
            Some(s)
        }
        None => None,
    };
    if !plan.client_cpus.is_empty() {
        queuelab_os::affinity::set_current(&plan.client_cpus)
            .context("pinning the client")
            .map_err(CliError::Runtime)?;
    }
    let t = plan.sending_time().as_secs_f64();
    let (what, points) = match &plan.kind {
        SweepKind::Load => (plan.model.name(), plan.rhos.len()),
        SweepKind::Closed(cp) => (
            format!("{} (closed loop, think {:?})", plan.model.name(), cp.think),
            cp.users.len(),
        ),
        // The family, not the first point's model (M/D/1 for C² = 0).
        SweepKind::Variability(vp) => (vp.describe(&plan.model), vp.cv2.len()),
        SweepKind::Network(np) => (format!("the network {}", np.path.display()), np.rates.len()),
    };
    let _ = writeln!(
        err,
        "sweep of {what} over {points} points into {}: about {:.0} min {:.0} s of sending{}",
        plan.out.display(),
        (t / 60.0).floor(),
        t % 60.0,
        if plan.quick {
            " (--quick: short runs, precision traded for time)"
        } else {
            ""
        }
    );
    let mut progress = SweepProgress::new(points, t / points.max(1) as f64);
    let outcome = match (&plan.kind, &per_point) {
        (SweepKind::Closed(cp), _) => {
            closed::sweep(&plan, cp, &mut progress).map(|o| (o.table, o.files))
        }
        (SweepKind::Variability(vp), Some(sp)) => {
            variability::sweep(&plan, vp, sp, &mut progress).map(|o| (o.table, o.files))
        }
        (SweepKind::Network(np), Some(sp)) => {
            netsweep::sweep(&plan, np, sp, &mut progress).map(|o| (o.table, o.files))
        }
        (SweepKind::Network(_), None) => Err(anyhow::anyhow!(
            "--network restarts qserve for each point: it cannot drive a server at a URL"
        )),
        (SweepKind::Variability(_), None) => Err(anyhow::anyhow!(
            "--cv2 restarts qserve for each point: it cannot drive a server at a URL"
        )),
        (SweepKind::Load, _) => {
            sweep::sweep(&plan, &mut progress).map(|o| (o.rendered.table, o.files))
        }
    };
    progress.finish();
    // Stop the servers before printing, so that their summaries do not interleave the table.
    drop(servers);
    let (table, files) = match outcome {
        Ok(out) => out,
        Err(e) if plan.stop.load(Ordering::Relaxed) => {
            return Err(CliError::Interrupted(format!("{e:#}")));
        }
        Err(e) => return Err(CliError::Runtime(e)),
    };
    print_stdout(&table)?;
    list_files(&files);
    Ok(())
}

/// `qlab report DIR`: rewrites the table, CSV and plots from `DIR/results.json` and prints the
/// table.
pub fn report_main(args: ReportArgs) -> Result<(), CliError> {
    if netsweep::is_network_results(&args.dir) {
        let o = netsweep::report(&args.dir).map_err(CliError::Runtime)?;
        print_stdout(&o.table)?;
        list_files(&o.files);
        return Ok(());
    }
    let file = ResultsFile::read(&args.dir).map_err(CliError::Runtime)?;
    let (table, files) = if file.closed.is_some() {
        closed::report(&args.dir).map(|o| (o.table, o.files))
    } else if file.variability.is_some() {
        variability::report(&args.dir).map(|o| (o.table, o.files))
    } else {
        report::report(&args.dir).map(|o| (o.rendered.table, o.files))
    }
    .map_err(CliError::Runtime)?;
    print_stdout(&table)?;
    list_files(&files);
    Ok(())
}
