//! `qserve`: an HTTP/1.1 server that *is* a queue.
//!
//! Every request that is not `/metrics` or `/healthz` waits in an emulated queue with `c`
//! servers and random service times, and its answer is written when its virtual departure time
//! comes. A real network client therefore sees an M/M/c (or M/M/c/K, M/D/1, M/G/1, M/M/∞) system
//! whose theory is known exactly. The queue serves FCFS by default, or LCFS, processor sharing or
//! by priority class (`--discipline`); a request names its class with `X-Priority: N`, or has
//! one drawn from `--classes`. Under FCFS a departure is known at arrival; under the other
//! disciplines later arrivals can postpone it, so an I/O thread holds a ticket and asks the model
//! at the earliest time the departure can be. The pieces:
//!
//! - [`queue`]: the queue model, pure arithmetic on arrival times (Lindley's recursion, `c`
//!   servers, capacity), shared by all I/O threads behind one mutex;
//! - [`network`]: `--network`, an open network of FCFS stations computed the same way, exact
//!   for a seed (transfers between stations in time order);
//! - [`wheel`]: a hierarchical timer wheel with 250 ns ticks whose earliest deadline is armed on a
//!   `timerfd` (the clock, the timer and the spin-then-poll wait are [`queuelab_os`]'s), with an
//!   optional busy-wait (`--spin`) before each deadline;
//! - [`http`]: request parsing (httparse) and canned responses;
//! - [`metrics`]: counters, histograms and the Prometheus text of `/metrics`;
//! - the I/O threads: mio event loops with connections in a slab (private module `worker`).
//!
//! [`run`] serves until SIGTERM or SIGINT; tests use [`start`], [`Handle::shutdown`] and
//! [`Handle::join`], which take the same path.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod forward;
pub mod http;
pub mod metrics;
pub mod network;
pub mod queue;
pub mod wheel;
mod worker;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, anyhow};
use mio::{Events, Interest, Poll, Token, Waker};
use queuelab_common::model::{Model, Servers};
use queuelab_common::network::{MAX_STATIONS, Network};
use queuelab_common::samplers::{ServiceKind, ServiceSampler};
use queuelab_common::stats;
use queuelab_common::units::format_duration;
use queuelab_os::clock::Clock;

use crate::metrics::{Counters, ThreadMetrics};
use crate::network::NetworkModel;
use crate::queue::{DEFAULT_OVERFLOW_LIMIT, QueueModel};
use crate::worker::{Shared, WAKER, Worker, lock};

pub use crate::worker::{LINGER_NS, OUT_HIGH, PIPELINE_MAX, READ_BUF};

/// Most I/O threads.
pub const MAX_THREADS: usize = 256;
/// Most connections (`--max-connections`).
pub const MAX_CONNECTIONS: usize = 1 << 24;
/// Most downstream connections per I/O thread (`--forward-connections`).
pub const MAX_FORWARD_CONNECTIONS: usize = 4096;
/// Longest wait queue for a downstream connection per I/O thread (`--forward-queue`).
pub const MAX_FORWARD_QUEUE: usize = 1 << 20;
/// Most servers (`--servers`).
pub const MAX_SERVERS: u32 = 1_000_000;
/// Largest capacity (`--capacity`).
pub const MAX_CAPACITY: u32 = 10_000_000;
/// Longest spin margin (`--spin`).
pub const MAX_SPIN: Duration = Duration::from_millis(100);
/// The default spin margin (`--spin`): a departure timer that sleeps in `epoll_wait` wakes tens
/// of microseconds late (p99 80–180 µs on virtual CPUs), and that lateness adds to every response
/// time; spinning the last 50 µs takes it out, for at most 50 µs of one core per departure (5% of
/// a core at 1,000 requests/s, less when departures are closer together than the margin).
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// A validated configuration of the server; see [`Config::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The queue to emulate (μ is ignored with [`ServiceKind::Zero`]).
    pub model: Model,
    /// I/O threads.
    pub threads: usize,
    /// Seed of the service-time generator.
    pub seed: u64,
    /// Connections open at most; more are accepted and closed at once.
    pub max_connections: usize,
    /// Longest time a request head may take to arrive (else 408).
    pub header_timeout: Duration,
    /// Idle keep-alive connections are closed after this.
    pub idle_timeout: Duration,
    /// On shutdown, how long queued requests get to be answered.
    pub grace: Duration,
    /// Busy-wait this long before each deadline instead of sleeping through it (0: never;
    /// default [`DEFAULT_SPIN`]).
    pub spin: Duration,
    /// Never sleep in `epoll_wait` while a connection is open (poll with a zero timeout): costs
    /// a whole core while clients are connected, saves the wake-up latency on every arrival.
    pub busy_poll: bool,
    /// In-system limit without a capacity (503 and counted as overflow beyond it).
    pub overflow_limit: usize,
    /// `--network`: emulate this open network of stations instead of `model` (see
    /// [`network`]).
    pub network: Option<Network>,
    /// `--forward`: send each served request on to this downstream (see [`forward`]).
    pub forward: Option<Forward>,
}

/// Where and how `--forward` sends served requests on (see [`forward`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// `http://host:port/` (the path must be `/` or empty; the port defaults to 80).
    pub url: String,
    /// Connections to the downstream per I/O thread, at most.
    pub connections: usize,
    /// Requests waiting for a free connection per I/O thread, at most (then 502 `forward_busy`).
    pub queue: usize,
    /// Longest time from dispatch to the downstream's answer (then 504).
    pub timeout: Duration,
}

impl Forward {
    /// `url` with the defaults: 64 connections and a queue of 1024 per thread, a 10 s timeout.
    pub fn new(url: &str) -> Self {
        Forward {
            url: url.to_owned(),
            connections: 64,
            queue: 1024,
            timeout: Duration::from_secs(10),
        }
    }

    /// The `host:port` of the URL (what `Host` says downstream).
    pub fn authority(&self) -> Result<String, ConfigError> {
        let bad = |why: &str| ConfigError(format!("--forward {:?}: {why}", self.url));
        let rest = self
            .url
            .strip_prefix("http://")
            .ok_or_else(|| bad("expected http://host:port/"))?;
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if !(path.is_empty() || path == "/") {
            return Err(bad(
                "the path must be / (requests keep their own path and query)",
            ));
        }
        if auth.is_empty() || auth.contains('@') || auth.bytes().any(|b| b <= b' ' || b >= 0x7f) {
            return Err(bad("expected a host and port"));
        }
        let has_port = match auth.strip_prefix('[') {
            Some(v6) => v6.contains("]:"),
            None => auth.contains(':'),
        };
        Ok(if has_port {
            auth.to_owned()
        } else {
            format!("{auth}:80")
        })
    }

    /// Resolves the URL's host once (the first address).
    pub fn resolve(&self) -> Result<(SocketAddr, String), ConfigError> {
        use std::net::ToSocketAddrs;
        let auth = self.authority()?;
        let addr = auth
            .to_socket_addrs()
            .map_err(|e| ConfigError(format!("--forward {:?}: cannot resolve: {e}", self.url)))?
            .next()
            .ok_or_else(|| {
                ConfigError(format!("--forward {:?}: no address for the host", self.url))
            })?;
        Ok((addr, auth))
    }
}

impl Default for Config {
    /// The flag defaults: `0.0.0.0:8000`, μ = 1000/s, one server, no capacity, exponential
    /// service, one thread, seed 0, 10,000 connections, 10 s header timeout, 60 s idle timeout,
    /// 10 s grace, a spin margin of [`DEFAULT_SPIN`] (50 µs), no busy-poll.
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            model: Model::default(),
            threads: 1,
            seed: 0,
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            grace: Duration::from_secs(10),
            spin: DEFAULT_SPIN,
            busy_poll: false,
            overflow_limit: DEFAULT_OVERFLOW_LIMIT,
            network: None,
            forward: None,
        }
    }
}

/// A configuration that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Checks every field; the message names the flag at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        if self.network.is_some() && self.forward.is_some() {
            // A network in one process routes between its own stations; forwarding is the
            // network across processes, one station each.
            return Err(ConfigError(
                "--network and --forward cannot be used together (one process emulates the \
                 whole network, or one station of it that forwards)"
                    .to_owned(),
            ));
        }
        if let Some(net) = &self.network {
            validate_network(net)?;
        }
        // Whether it is a queue at all (μ, c ≥ 1, K ≥ 1, K ≥ c); then what one server can hold.
        self.model
            .validate()
            .map_err(|e| ConfigError(e.to_string()))?;
        if let Servers::Finite(c) = self.model.servers {
            if c > MAX_SERVERS {
                return err(format!(
                    "--servers must be 1..={MAX_SERVERS} or inf, got {c}"
                ));
            }
        }
        if let Some(k) = self.model.capacity {
            if k > MAX_CAPACITY {
                return err(format!("--capacity must be 1..={MAX_CAPACITY}, got {k}"));
            }
        }
        if self.threads == 0 || self.threads > MAX_THREADS {
            return err(format!(
                "--threads must be 1..={MAX_THREADS}, got {}",
                self.threads
            ));
        }
        if self.max_connections == 0 || self.max_connections > MAX_CONNECTIONS {
            return err(format!(
                "--max-connections must be 1..={MAX_CONNECTIONS}, got {}",
                self.max_connections
            ));
        }
        if self.header_timeout.is_zero() {
            return err("--header-timeout must be positive".into());
        }
        if self.idle_timeout.is_zero() {
            return err("--idle-timeout must be positive".into());
        }
        if self.spin > MAX_SPIN {
            return err(format!(
                "--spin must be at most {}, got {}",
                format_duration(MAX_SPIN),
                format_duration(self.spin)
            ));
        }
        if self.overflow_limit == 0 {
            return err("the overflow limit must be positive".into());
        }
        if let Some(f) = &self.forward {
            f.authority()?;
            if f.connections == 0 || f.connections > MAX_FORWARD_CONNECTIONS {
                return err(format!(
                    "--forward-connections must be 1..={MAX_FORWARD_CONNECTIONS}, got {}",
                    f.connections
                ));
            }
            if f.queue == 0 || f.queue > MAX_FORWARD_QUEUE {
                return err(format!(
                    "--forward-queue must be 1..={MAX_FORWARD_QUEUE}, got {}",
                    f.queue
                ));
            }
            if f.timeout.is_zero() {
                return err("--forward-timeout must be positive".into());
            }
        }
        Ok(())
    }

    /// The start-up description of the network (`None` without `--network`): its stations (each
    /// with its discipline), its routing and its classes.
    pub fn describe_network(&self) -> Option<String> {
        let net = self.network.as_ref()?;
        let stations: Vec<String> = net
            .stations
            .iter()
            .map(|s| {
                let c = match s.model.servers {
                    Servers::Finite(c) => c.to_string(),
                    Servers::Infinite => "inf".to_owned(),
                };
                let k = s
                    .model
                    .capacity
                    .map_or(String::new(), |k| format!(" K={k}"));
                format!(
                    "{} ({} mu {}/s c={c}{k} {})",
                    s.name, s.model.service, s.model.mu, s.model.discipline
                )
            })
            .collect();
        let row = |probs: &[f64], exit: Option<f64>| -> String {
            let mut parts: Vec<String> = probs
                .iter()
                .enumerate()
                .filter(|(_, p)| **p > 0.0)
                .map(|(j, p)| format!("{} {p}", net.stations[j].name))
                .collect();
            if let Some(e) = exit.filter(|e| *e > 0.0) {
                parts.push(format!("exit {e}"));
            }
            parts.join(", ")
        };
        let mut routing = vec![format!("entry -> {}", row(&net.entry, None))];
        for (i, s) in net.stations.iter().enumerate() {
            routing.push(format!(
                "{} -> {}",
                s.name,
                row(&net.routing[i], Some(net.exit[i]))
            ));
        }
        let classes = crate::network::network_classes(net);
        let classes = match classes.len() {
            1 => "one class".to_owned(),
            n => format!("{n} classes {classes} (X-Priority: N names one)"),
        };
        Some(format!(
            "network of {} station{}: {}; routing: {}; {classes}",
            net.stations.len(),
            if net.stations.len() == 1 { "" } else { "s" },
            stations.join(", "),
            routing.join("; ")
        ))
    }

    /// The service sampler of this configuration.
    pub fn sampler(&self) -> ServiceSampler {
        self.model.sampler()
    }

    /// Kendall notation of the emulated queue (`M/M/1`, `M/M/4/20`, `M/D/1`, …), or `none` with
    /// `--service zero`.
    pub fn model_name(&self) -> String {
        if self.model.service == ServiceKind::Zero {
            return "none (zero service)".to_owned();
        }
        self.model.name()
    }

    /// The start-up line: where it listens, the model and what theory says of it at μ.
    pub fn describe(&self, addr: SocketAddr) -> String {
        let threads = match self.threads {
            1 => "1 I/O thread".to_owned(),
            n => format!("{n} I/O threads"),
        };
        if let Some(net) = self.describe_network() {
            return format!(
                "qserve: listening on {addr} with {threads}; {net}; \
                 503 when a station is full; seed {}",
                self.seed
            );
        }
        let model = self.model_name();
        let Model { mu, service, .. } = self.model;
        let theory = if service == ServiceKind::Zero {
            "no queue: every request is answered at once".to_owned()
        } else {
            let mean = format_duration(Duration::from_secs_f64(1.0 / mu));
            match self.model.servers {
                Servers::Finite(c) => format!(
                    "mu {mu}/s per server, {c} server{}, {service} service with mean {mean}; saturates at c*mu = {}/s",
                    if c == 1 { "" } else { "s" },
                    mu * f64::from(c)
                ),
                Servers::Infinite => format!(
                    "mu {mu}/s, infinitely many servers (pure delay), {service} service with mean {mean}; \
                     response time = service time at any load"
                ),
            }
        };
        let limit = match self.model.capacity {
            Some(k) => format!("capacity K = {k} (503 when full)"),
            None => format!(
                "no capacity (503 as overflow above {} in system)",
                self.overflow_limit
            ),
        };
        let wait = if self.spin.is_zero() {
            "timerfd sleep".to_owned()
        } else {
            format!("spin {} before each deadline", format_duration(self.spin))
        };
        let wait = if self.busy_poll {
            format!("{wait}, busy-poll while connected")
        } else {
            wait
        };
        let classes = &self.model.classes;
        let order = match classes.len() {
            1 => format!("discipline {}, one class", self.model.discipline),
            n => format!(
                "discipline {}, {n} classes {classes} (X-Priority: N names one)",
                self.model.discipline
            ),
        };
        let forward = match &self.forward {
            Some(f) => format!(
                "; forwarding to {} ({} connections per thread, timeout {})",
                f.url,
                f.connections,
                format_duration(f.timeout)
            ),
            None => String::new(),
        };
        format!(
            "qserve: listening on {addr} with {threads}; model {model}: {theory}; {limit}; \
             {order}; seed {}; timers: {wait}{forward}",
            self.seed
        )
    }
}

/// Longest station name in a network: `NAME.service` must fit a `Server-Timing` metric name
/// of 32 bytes, what qload accepts.
pub const MAX_STATION_NAME: usize = 24;

/// Whether `b` is an HTTP token byte (RFC 9110 `tchar`).
fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn validate_network(net: &Network) -> Result<(), ConfigError> {
    let err = |m: String| Err(ConfigError(format!("--network: {m}")));
    if net.stations.is_empty() || net.stations.len() > MAX_STATIONS {
        return err(format!(
            "a network has 1..={MAX_STATIONS} stations, got {}",
            net.stations.len()
        ));
    }
    let n = net.stations.len();
    if net.entry.len() != n || net.routing.len() != n || net.exit.len() != n {
        return err("the routing does not match the stations".into());
    }
    for s in &net.stations {
        if s.name.is_empty()
            || s.name.len() > MAX_STATION_NAME
            || !s.name.bytes().all(tchar)
            || s.name == "rest"
            || s.name == "late"
        {
            return err(format!(
                "station {:?}: a name is 1..={MAX_STATION_NAME} token characters (letters, \
                 digits, -_.!#$%&'*+^`|~), not rest or late",
                s.name
            ));
        }
        if let Err(e) = s.model.validate() {
            return err(format!("station {}: {e}", s.name));
        }
        if let Servers::Finite(c) = s.model.servers {
            if c > MAX_SERVERS {
                return err(format!(
                    "station {}: servers must be 1..={MAX_SERVERS} or inf, got {c}",
                    s.name
                ));
            }
        }
        if let Some(k) = s.model.capacity {
            if k > MAX_CAPACITY {
                return err(format!(
                    "station {}: capacity must be 1..={MAX_CAPACITY}, got {k}",
                    s.name
                ));
            }
        }
    }
    NetworkModel::check(net).map_err(|e| ConfigError(format!("--network: {e}")))
}

/// Totals of a finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// How long the server ran.
    pub uptime: Duration,
    /// Event counts summed over the I/O threads.
    pub counters: Counters,
    /// Arrivals seen by the queue model.
    pub arrivals: u64,
    /// Sojourn (wait + service) of served requests, µs.
    pub sojourn: stats::Summary,
    /// Timer lateness, µs.
    pub lateness: stats::Summary,
}

impl fmt::Display for Summary {
    /// One line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        write!(
            f,
            "qserve: stopped after {:.1}s: {} served, {} blocked, {} overflow, {} refused while \
             shutting down, {} bad requests, {} unanswered ({} abandoned by clients, {} at the \
             end of the grace period); {} connections ({} over the limit); sojourn mean {:.0}us \
             p99 {:.0}us; timer lateness p50 {:.1}us p99 {:.1}us",
            self.uptime.as_secs_f64(),
            c.served,
            c.blocked,
            c.overflow,
            c.shutting_down,
            c.rejected(),
            c.abandoned + c.grace_expired,
            c.abandoned,
            c.grace_expired,
            c.conn_accepted,
            c.conn_rejected,
            self.sojourn.mean,
            self.sojourn.p99,
            self.lateness.p50,
            self.lateness.p99,
        )
    }
}

/// A running server; see [`start`].
#[derive(Debug)]
pub struct Handle {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    wakers: Vec<Arc<Waker>>,
    threads: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Handle {
    /// The address the server listens on (with the port chosen when listening on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn wake_all(&self) {
        for w in &self.wakers {
            let _ = w.wake();
        }
    }

    /// Starts a graceful shutdown (what SIGTERM does): stop accepting, answer what is queued
    /// within the grace period (new requests on open connections get 503), close, and let the
    /// I/O threads end. Returns at once; [`Handle::join`] waits.
    pub fn shutdown(&self) {
        if !self.shared.shutdown.load(Ordering::Acquire) {
            let now = self.shared.clock.now_ns();
            self.shared.shutdown_at_ns.store(now, Ordering::Release);
            self.shared.shutdown.store(true, Ordering::Release);
        }
        self.wake_all();
    }

    /// Stops at once: every connection is closed and queued requests are counted as unanswered.
    pub fn abort(&self) {
        self.shared.abort.store(true, Ordering::Release);
        self.wake_all();
    }

    /// Whether every I/O thread has ended.
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(JoinHandle::is_finished)
    }

    fn any_finished(&self) -> bool {
        self.threads.iter().any(JoinHandle::is_finished)
    }

    /// Waits for the I/O threads to end (after [`Handle::shutdown`] or [`Handle::abort`]) and
    /// returns the totals, or the first error an I/O thread failed with.
    pub fn join(mut self) -> anyhow::Result<Summary> {
        let mut first_err: Option<anyhow::Error> = None;
        for (i, t) in std::mem::take(&mut self.threads).into_iter().enumerate() {
            let r = match t.join() {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => anyhow!(e).context(format!("I/O thread {i} failed")),
                Err(_) => anyhow!("I/O thread {i} panicked"),
            };
            first_err.get_or_insert(r);
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok(self.summary())
    }

    fn summary(&self) -> Summary {
        let mut totals = ThreadMetrics::default();
        for m in &self.shared.metrics {
            totals.merge(&lock(m));
        }
        let arrivals = match (&self.shared.queue, &self.shared.network) {
            (Some(q), _) => lock(q).stats().arrivals,
            (None, Some(n)) => lock(n).arrivals(),
            (None, None) => totals.counters.served,
        };
        Summary {
            uptime: Duration::from_nanos(self.shared.clock.now_ns()),
            counters: totals.counters,
            arrivals,
            sojourn: stats::summarize(&totals.sojourn),
            lateness: stats::summarize(&totals.lateness),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        self.abort();
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }
}

/// Raises the soft limit on open files (within the hard limit) so that `--max-connections` can be
/// reached (a distribution's default soft limit is often 1024), and warns when it still cannot.
fn ensure_fd_limit(max_connections: usize) {
    // Listeners, the timerfd, the poll and wakers per thread, plus the standard streams.
    let wanted = (max_connections as u64).saturating_add(64);
    let cur = queuelab_os::limits::raise_open_files(wanted);
    if cur < wanted {
        eprintln!(
            "qserve: warning: the open-file limit is {cur}, below --max-connections {max_connections}; \
             connections beyond it fail to be accepted (raise `ulimit -n`)"
        );
    }
}

/// Binds one listening socket per I/O thread on the same address (`SO_REUSEPORT` when there are
/// several, so the kernel spreads connections over them).
fn bind_listeners(addr: SocketAddr, n: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let bind_one = |addr: SocketAddr| -> std::io::Result<std::net::TcpListener> {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        if n > 1 {
            s.set_reuse_port(true)?;
        }
        s.bind(&addr.into())?;
        s.listen(4096)?;
        s.set_nonblocking(true)?;
        Ok(s.into())
    };
    let first = bind_one(addr)?;
    let actual = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(bind_one(actual)?);
    }
    Ok(all)
}

/// Starts the server on its own threads and returns at once. The server runs until
/// [`Handle::shutdown`] (or [`Handle::abort`], or dropping the handle).
pub fn start(config: Config) -> anyhow::Result<Handle> {
    start_with(config, None)
}

fn start_with(config: Config, exit_waker: Option<Arc<Waker>>) -> anyhow::Result<Handle> {
    config.validate()?;
    let forward = config.forward.as_ref().map(Forward::resolve).transpose()?;
    ensure_fd_limit(config.max_connections);
    let listeners = bind_listeners(config.listen, config.threads)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local_addr = listeners[0]
        .local_addr()
        .context("reading the listening address")?;
    let network = config
        .network
        .as_ref()
        .map(|n| Mutex::new(NetworkModel::new(n, config.seed, config.overflow_limit)));
    let queue = (network.is_none() && config.model.service != ServiceKind::Zero).then(|| {
        Mutex::new(QueueModel::new(
            &config.model,
            config.seed,
            config.overflow_limit,
        ))
    });
    let shared = Arc::new(Shared {
        model_name: config.model_name(),
        clock: Clock::new(),
        queue,
        network,
        shutdown: AtomicBool::new(false),
        shutdown_at_ns: AtomicU64::new(0),
        abort: AtomicBool::new(false),
        open_connections: AtomicUsize::new(0),
        metrics: (0..config.threads)
            .map(|_| Mutex::new(ThreadMetrics::default()))
            .collect(),
        exit_waker,
        forward,
        config,
    });
    let mut handle = Handle {
        local_addr,
        shared: Arc::clone(&shared),
        wakers: Vec::new(),
        threads: Vec::new(),
    };
    // On an error below, dropping `handle` stops the threads already started.
    for (i, listener) in listeners.into_iter().enumerate() {
        let poll = Poll::new().context("creating an event loop")?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).context("creating a waker")?);
        let worker = Worker::new(i, Arc::clone(&shared), poll, listener)
            .context("setting up an I/O thread")?;
        let exit = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("qserve-io-{i}"))
            .spawn(move || {
                let r = worker.run();
                if let Some(w) = &exit.exit_waker {
                    let _ = w.wake();
                }
                r
            })
            .context("spawning an I/O thread")?;
        handle.wakers.push(waker);
        handle.threads.push(thread);
    }
    Ok(handle)
}

const SIGNAL: Token = Token(0);
const EXIT: Token = Token(1);

/// Serves until SIGTERM or SIGINT, then shuts down gracefully (see [`Handle::shutdown`]) and
/// returns the totals; a second signal stops at once. Prints the start-up line and the one-line
/// summary on stderr.
pub fn run(config: Config) -> anyhow::Result<Summary> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use std::io::Read;

    let mut poll = Poll::new().context("creating the signal poll")?;
    let (rx, tx) = std::os::unix::net::UnixStream::pair().context("creating the signal pipe")?;
    rx.set_nonblocking(true)?;
    tx.set_nonblocking(true)?;
    let mut ids = Vec::new();
    for sig in [SIGTERM, SIGINT] {
        let tx = tx.try_clone().context("cloning the signal pipe")?;
        ids.push(
            signal_hook::low_level::pipe::register(sig, tx)
                .context("registering a signal handler")?,
        );
    }
    let mut rx = mio::net::UnixStream::from_std(rx);
    poll.registry()
        .register(&mut rx, SIGNAL, Interest::READABLE)
        .context("registering the signal pipe")?;
    let exit_waker = Arc::new(Waker::new(poll.registry(), EXIT).context("creating a waker")?);

    let result = (|| {
        let handle = start_with(config.clone(), Some(exit_waker))?;
        eprintln!("{}", config.describe(handle.local_addr()));
        let mut events = Events::with_capacity(8);
        let mut signals = 0usize;
        let mut acted_on = 0usize;
        let mut buf = [0u8; 16];
        loop {
            // A thread wakes us as it exits, perhaps just before it has finished: poll with a
            // timeout so the final check cannot be missed.
            if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(100))) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    handle.abort();
                    return Err(anyhow!(e).context("waiting for signals"));
                }
            }
            loop {
                match rx.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => signals += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            if signals != acted_on {
                if signals >= 2 {
                    handle.abort();
                } else {
                    handle.shutdown();
                }
                acted_on = signals;
            }
            if handle.is_finished() {
                break;
            }
            if handle.any_finished() && signals == 0 {
                // An I/O thread failed: stop the others and report its error.
                handle.abort();
            }
        }
        handle.join()
    })();
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    let summary = result?;
    eprintln!("{summary}");
    Ok(summary)
}
