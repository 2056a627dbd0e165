//! The validated configuration of one run, independent of how it was given (flags or code).
//!
//! A [`Config`] names one target (an address resolved once and the request bytes rendered once),
//! one load [`Mode`], the bounds of the run and the engine's knobs. [`Config::validate`] checks the
//! combinations; [`crate::run`] calls it too, so a `Config` built in code is held to the same rules
//! as one built from flags.
use std::net::SocketAddr;
use std::time::Duration;

use queuelab_common::model::Model;
use queuelab_common::profile::Profile;
use queuelab_common::samplers::ArrivalKind;

use crate::http::{RequestError, render_request};
use crate::tls::{TlsError, TlsSetup, Verify};
use crate::url::{HttpUrl, UrlError};

/// How requests are generated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Open loop: arrivals at `rate` per second in total (split evenly over the threads), spaced by
    /// `arrival`, whatever the answers do. With a [`Config::profile`] the rate follows the profile
    /// instead.
    Open {
        /// Aggregate rate λ in requests per second (with a [`Config::profile`], not used: the
        /// profile's mean, as [`Config::shaped`] sets it).
        rate: f64,
        /// Inter-arrival distribution.
        arrival: ArrivalKind,
    },
    /// Closed loop: `users` users; each thinks for an exponential time of mean `think`, sends, and
    /// waits for the answer (or the error) before thinking again.
    Closed {
        /// Number of users.
        users: u32,
        /// Mean think time (zero: send again at once).
        think: Duration,
    },
    /// Maximum throughput: each connection sends again as soon as its answer is in (a closed loop
    /// of one user per connection with no think time).
    Max {
        /// Number of connections (= users).
        connections: u32,
    },
}

impl Mode {
    /// `open`, `closed` or `max`.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Open { .. } => "open",
            Mode::Closed { .. } => "closed",
            Mode::Max { .. } => "max",
        }
    }
}

/// Where requests go and what they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given (for reports).
    pub url: String,
    /// The address every connection goes to (resolved once).
    pub addr: SocketAddr,
    /// The request, rendered once.
    pub request: Vec<u8>,
    /// Whether the method is `HEAD` (responses then have no body).
    pub head_request: bool,
    /// The method (for reports).
    pub method: String,
    /// For an https URL, the TLS setup every connection shares (made once, when the target is
    /// built); `None` for plain http.
    pub tls: Option<TlsSetup>,
}

/// Why a target or a configuration is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The URL is unusable.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The request cannot be rendered.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The TLS setup cannot be made (no roots, a bad `--cacert` file, …).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A value or a combination of values is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl Target {
    /// Parses and resolves `url` and renders the request (`headers` as `(name, value)` pairs).
    /// An https URL trusts the system's roots (see [`Target::with_verify`]).
    pub fn new(
        url: &str,
        method: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<Self, ConfigError> {
        Self::with_verify(url, method, headers, body, None)
    }

    /// Like [`Target::new`], and an https URL's server is verified as `verify` says (`None`: the
    /// system's roots), the roots loaded now. `verify` on an http URL is an error: there is
    /// nothing to verify.
    pub fn with_verify(
        url: &str,
        method: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
        verify: Option<Verify>,
    ) -> Result<Self, ConfigError> {
        let parsed = HttpUrl::parse(url)?;
        let tls = match (parsed.tls, verify) {
            (true, verify) => Some(TlsSetup::new(
                &parsed.host,
                verify.unwrap_or(Verify::System),
            )?),
            (false, None) => None,
            (false, Some(_)) => {
                return Err(ConfigError::Invalid(format!(
                    "{url}: --cacert and --insecure apply to https:// URLs only"
                )));
            }
        };
        let addr = parsed.resolve()?;
        let request = render_request(method, &parsed.path, &parsed.host_header(), headers, body)?;
        Ok(Self {
            url: url.to_owned(),
            addr,
            request,
            head_request: method.eq_ignore_ascii_case("HEAD"),
            method: method.to_owned(),
            tls,
        })
    }

    /// `GET /` over TLS to `addr`, whose certificate is checked against `name` (a DNS name or an
    /// IP literal, also the SNI and the `Host` header) as `verify` says (convenient in tests).
    pub fn https(addr: SocketAddr, name: &str, verify: Verify) -> Result<Self, ConfigError> {
        let tls = TlsSetup::new(name, verify)?;
        let host = if name.contains(':') {
            format!("[{name}]:{}", addr.port())
        } else {
            format!("{name}:{}", addr.port())
        };
        let request = render_request("GET", "/", &host, &[], None)?;
        Ok(Self {
            url: format!("https://{host}/"),
            addr,
            request,
            head_request: false,
            method: "GET".to_owned(),
            tls: Some(tls),
        })
    }

    /// `GET /` to `addr` (convenient in tests).
    pub fn get(addr: SocketAddr) -> Self {
        let url = format!("http://{addr}/");
        let host = addr.to_string();
        let request = render_request("GET", "/", &host, &[], None)
            .expect("GET / with a literal host renders");
        Self {
            url,
            addr,
            request,
            head_request: false,
            method: "GET".to_owned(),
            tls: None,
        }
    }
}

/// Default `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `--duration` when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Default `--spin`: the busy-poll margin before each intended send.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(200);
/// Open-loop rate one worker thread is given by default: with `--threads` unset a run at rate R
/// starts `ceil(R / DEFAULT_RATE_PER_THREAD)` threads (at most one per core). A thread sustains
/// several times this (docs/qload.md), so the margin is wide, and a low-rate run leaves the other
/// cores free: for a server on the same machine, and for busy-polling (see
/// [`busy_poll_by_default`]).
pub const DEFAULT_RATE_PER_THREAD: f64 = 50_000.0;

/// Whether a run busy-polls when `--busy-poll`/`--no-busy-poll` is not given: when its threads are
/// pinned, each to a core of its own, and at least one of the `cores` it may use (the allowed CPUs,
/// fewer under a container's CPU limit) is left over for everything else (a server on the same machine, the kernel's network work). A sleeping thread pays a
/// wake-up for every answer, tens of microseconds to a millisecond at p99 (virtual machines are
/// the worst), which lands in every latency it measures; polling costs the thread's core instead.
/// With no core to spare polling would take the CPU from whatever it measures, so it sleeps.
pub fn busy_poll_by_default(pin: bool, threads: usize, cores: usize) -> bool {
    pin && threads < cores
}

/// Default cap on open connections in open-loop mode (all threads together).
pub const DEFAULT_OPEN_CONNECTIONS: usize = 10_000;
/// Default backlog of due requests waiting for a connection (all threads together).
pub const DEFAULT_BACKLOG: usize = 100_000;
/// Default bound on the send gaps kept for the arrival check (all threads together).
pub const DEFAULT_ARRIVAL_SAMPLES: usize = 100_000;

/// A complete, validated description of one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where requests go and what they are.
    pub target: Target,
    /// How requests are generated.
    pub mode: Mode,
    /// Measured duration (after the warmup). `None` with `requests` set: until that many are issued.
    pub duration: Option<Duration>,
    /// Number of measured requests to issue; `None`: bounded by `duration` only.
    pub requests: Option<u64>,
    /// Time before the measurement during which requests are sent but not measured.
    pub warmup: Duration,
    /// Worker threads; `None`: one per core this process may run on.
    pub threads: Option<usize>,
    /// Cap on open connections (all threads); `None`: the mode's default (open loop: grown on
    /// demand up to [`DEFAULT_OPEN_CONNECTIONS`]; closed loop: one per user; max: its connections).
    pub connections: Option<usize>,
    /// Bound on due requests waiting for a connection (all threads); beyond it they fail as
    /// `backlog` errors.
    pub backlog: usize,
    /// Per-request timeout, from the write (or from the start of the connect).
    pub timeout: Duration,
    /// Seed of every random stream.
    pub seed: u64,
    /// Pin each worker thread to its own core.
    pub pin: bool,
    /// Busy-poll this long before each intended send instead of sleeping through it.
    pub spin: Duration,
    /// Never sleep while a request is in flight: poll with a zero timeout until its answer.
    /// `None` decides by the cores (see [`busy_poll_by_default`]).
    pub busy_poll: Option<bool>,
    /// Length of the intervals of the time series (and of the batches of the batch-means CI).
    pub interval: Duration,
    /// The queue to compare with, if any (`--mu`, `--servers`, …).
    pub theory: Option<Model>,
    /// Print a line per interval on stderr while running.
    pub live: bool,
    /// Bound on the send gaps kept for the arrival check (all threads).
    pub arrival_samples: usize,
    /// Open loop only: the aggregate rate follows this profile λ(t) from the start of the
    /// measurement (a non-homogeneous Poisson process, or evenly spaced or uniform gaps in its
    /// operational time, as `arrival` says). The run lasts the profile; `duration` can only cut
    /// it shorter. During the warmup the rate is the profile's first, λ(0).
    pub profile: Option<Profile>,
}

impl Config {
    /// A configuration with the defaults for everything but the target and the mode.
    pub fn new(target: Target, mode: Mode) -> Self {
        Self {
            target,
            mode,
            duration: Some(DEFAULT_DURATION),
            requests: None,
            warmup: Duration::ZERO,
            threads: None,
            connections: None,
            backlog: DEFAULT_BACKLOG,
            timeout: DEFAULT_TIMEOUT,
            seed: 1,
            pin: true,
            spin: DEFAULT_SPIN,
            busy_poll: None,
            interval: Duration::from_secs(1),
            theory: None,
            live: false,
            arrival_samples: DEFAULT_ARRIVAL_SAMPLES,
            profile: None,
        }
    }

    /// An open-loop configuration whose rate follows `profile`, with `arrival` gaps in its
    /// operational time, and the defaults for everything else; it lasts the profile (no
    /// `duration`).
    pub fn shaped(target: Target, profile: Profile, arrival: ArrivalKind) -> Self {
        let mut c = Self::new(
            target,
            Mode::Open {
                rate: profile.mean(),
                arrival,
            },
        );
        c.duration = None;
        c.profile = Some(profile);
        c
    }

    /// How long the schedule runs after the warmup: the `duration`, or with a profile the
    /// profile's length, cut by the `duration` if that is shorter. `None`: until `requests` have
    /// been issued.
    pub fn schedule_duration(&self) -> Option<Duration> {
        match &self.profile {
            Some(p) => Some(self.duration.map_or(p.duration(), |d| d.min(p.duration()))),
            None => self.duration,
        }
    }

    /// Checks ranges and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.profile.is_some() && !matches!(self.mode, Mode::Open { .. }) {
            return bad(
                "a rate profile is for the open loop (--rate), not --users or --max".into(),
            );
        }
        match self.mode {
            // The profile was checked when it was made (its rates and length).
            Mode::Open { .. } if self.profile.is_some() => {}
            Mode::Open { rate, .. } if !(rate.is_finite() && rate > 0.0) => {
                return bad(format!("rate must be positive and finite, got {rate}"));
            }
            Mode::Open { rate, .. } if rate > 1e8 => {
                return bad(format!("rate {rate} is beyond what one machine can send"));
            }
            Mode::Open { rate, .. } if rate < 1e-6 => {
                return bad(format!(
                    "rate {rate} is too small (at least 1e-6 per second)"
                ));
            }
            Mode::Closed { users: 0, .. } => return bad("--users must be at least 1".into()),
            Mode::Max { connections: 0 } => {
                return bad("--connections must be at least 1".into());
            }
            _ => {}
        }
        if self.schedule_duration().is_none() && self.requests.is_none() {
            return bad("the run needs a bound: --duration and/or --requests".into());
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return bad("--duration must be positive".into());
        }
        if self.requests == Some(0) {
            return bad("--requests must be at least 1".into());
        }
        const LONGEST: Duration = Duration::from_secs(366 * 24 * 3600);
        let long = |d: Duration| d > LONGEST;
        if self.duration.is_some_and(long) || long(self.warmup) || long(self.timeout) {
            return bad("durations are limited to a year".into());
        }
        if matches!(self.mode, Mode::Closed { think, .. } if long(think)) {
            return bad("--think is limited to a year".into());
        }
        if long(self.interval) {
            return bad("the interval is limited to a year".into());
        }
        if self.timeout.is_zero() {
            return bad("--timeout must be positive".into());
        }
        if self.threads == Some(0) {
            return bad("--threads must be at least 1".into());
        }
        if self.threads.is_some_and(|t| t > 1024) {
            return bad("--threads must be at most 1024".into());
        }
        if self.connections == Some(0) {
            return bad("--connections must be at least 1".into());
        }
        if self.interval < Duration::from_millis(10) {
            return bad("the interval must be at least 10ms".into());
        }
        if self.spin > Duration::from_millis(100) {
            return bad("--spin must be at most 100ms".into());
        }
        if let Some(m) = &self.theory {
            m.validate()
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use queuelab_common::model::Servers;

    fn base() -> Config {
        let addr = "127.0.0.1:9".parse().expect("literal address");
        Config::new(
            Target::get(addr),
            Mode::Open {
                rate: 100.0,
                arrival: ArrivalKind::Poisson,
            },
        )
    }

    type Change = Box<dyn Fn(&mut Config)>;

    #[test]
    fn validation_table() {
        assert!(base().validate().is_ok());
        let cases: Vec<(&str, Change)> = vec![
            (
                "zero rate",
                Box::new(|c| {
                    c.mode = Mode::Open {
                        rate: 0.0,
                        arrival: ArrivalKind::Poisson,
                    }
                }),
            ),
            (
                "subnormal rate",
                Box::new(|c| {
                    c.mode = Mode::Open {
                        rate: 5e-324,
                        arrival: ArrivalKind::Poisson,
                    }
                }),
            ),
            (
                "infinite rate",
                Box::new(|c| {
                    c.mode = Mode::Open {
                        rate: f64::INFINITY,
                        arrival: ArrivalKind::Poisson,
                    }
                }),
            ),
            (
                "no users",
                Box::new(|c| {
                    c.mode = Mode::Closed {
                        users: 0,
                        think: Duration::ZERO,
                    }
                }),
            ),
            (
                "no connections",
                Box::new(|c| c.mode = Mode::Max { connections: 0 }),
            ),
            (
                "a profile in closed loop",
                Box::new(|c| {
                    c.profile = Some(Profile::parse("100:1s").expect("valid"));
                    c.mode = Mode::Closed {
                        users: 2,
                        think: Duration::ZERO,
                    };
                }),
            ),
            (
                "no bound",
                Box::new(|c| {
                    c.duration = None;
                    c.requests = None;
                }),
            ),
            (
                "zero duration",
                Box::new(|c| c.duration = Some(Duration::ZERO)),
            ),
            ("zero requests", Box::new(|c| c.requests = Some(0))),
            ("zero timeout", Box::new(|c| c.timeout = Duration::ZERO)),
            (
                "huge warmup",
                Box::new(|c| c.warmup = Duration::from_secs(u64::MAX / 2)),
            ),
            ("zero threads", Box::new(|c| c.threads = Some(0))),
            (
                "tiny interval",
                Box::new(|c| c.interval = Duration::from_millis(1)),
            ),
            (
                "bad mu",
                Box::new(|c| c.theory = Some(Model::new(-1.0, Servers::Finite(1)))),
            ),
            (
                "capacity below servers",
                Box::new(|c| {
                    c.theory = Some(Model::new(1000.0, Servers::Finite(2)).with_capacity(Some(1)))
                }),
            ),
        ];
        for (name, change) in cases {
            let mut c = base();
            change(&mut c);
            assert!(c.validate().is_err(), "{name} should be rejected");
        }
    }

    #[test]
    fn a_profile_bounds_the_run_and_a_duration_cuts_it() {
        let addr = "127.0.0.1:9".parse().expect("literal address");
        let p = Profile::parse("0..100:2s,10:3s").expect("valid");
        let mut c = Config::shaped(Target::get(addr), p.clone(), ArrivalKind::Poisson);
        // The mode's rate is the mean: (100 + 30)/5.
        assert_eq!(
            c.mode,
            Mode::Open {
                rate: 26.0,
                arrival: ArrivalKind::Poisson
            }
        );
        // No duration, no --requests: the profile is the bound.
        assert!(c.validate().is_ok());
        assert_eq!(c.schedule_duration(), Some(Duration::from_secs(5)));
        c.duration = Some(Duration::from_secs(2));
        assert_eq!(c.schedule_duration(), Some(Duration::from_secs(2)));
        // Longer than the profile: the profile's length wins.
        c.duration = Some(Duration::from_secs(60));
        assert_eq!(c.schedule_duration(), Some(Duration::from_secs(5)));
        // The mode's rate is not held to the plain rate's rules with a profile.
        c.mode = Mode::Open {
            rate: 0.0,
            arrival: ArrivalKind::Constant,
        };
        assert!(c.validate().is_ok());
        c.profile = None;
        assert!(c.validate().is_err());
        assert_eq!(base().schedule_duration(), Some(DEFAULT_DURATION));
    }
}
