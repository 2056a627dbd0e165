//! Closed forms of the queues `qserve` emulates, for the sojourn (response) time T = wait + service.
//!
//! Models: M/M/1, M/M/c (Erlang C), M/M/c/K (blocking probability and sojourn of accepted customers),
//! M/D/1 and M/G/1 (Pollaczek–Khinchine), M/M/∞ (and M/D/∞, M/G/∞: T is the service time).
//! Rates are per second, times in seconds.
use crate::samplers::ServiceKind;

/// Number of servers: `c` or infinitely many (pure delay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Servers {
    /// `c ≥ 1` servers.
    Finite(u32),
    /// M/·/∞: every request is served at once.
    Infinite,
}

impl std::str::FromStr for Servers {
    type Err = crate::units::UnitError;
    /// A positive integer or `inf`.
    fn from_str(s: &str) -> Result<Self, Self::Err> { todo!() }
}

impl std::fmt::Display for Servers {
    /// `c` or `inf`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { todo!() }
}

/// A queue to predict: arrivals Poisson at λ, `servers`, optional capacity K, service at μ per server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueSpec {
    /// Arrival rate λ (1/s).
    pub lambda: f64,
    /// Service rate μ per server (1/s).
    pub mu: f64,
    /// Number of servers.
    pub servers: Servers,
    /// Capacity K (in system, waiting plus in service), if any.
    pub capacity: Option<u32>,
    /// Service-time distribution.
    pub service: ServiceKind,
}

/// Why no prediction can be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TheoryError {
    /// ρ ≥ 1 with infinite capacity: the queue grows without bound.
    #[error("unstable queue: rho = {rho:.3} >= 1 with no capacity")]
    Unstable {
        /// Offered load per server.
        rho: f64,
    },
    /// A parameter is out of range (λ ≤ 0, μ ≤ 0, c = 0, K < c, …).
    #[error("invalid queue parameters: {0}")]
    Invalid(&'static str),
    /// No closed form for this combination (e.g. capacity with non-exponential service).
    #[error("no closed form for {0}")]
    Unsupported(String),
}

/// What theory predicts for a [`QueueSpec`].
#[derive(Debug, Clone, PartialEq)]
pub struct Theory {
    /// Kendall notation: `M/M/1`, `M/M/2`, `M/M/1/10`, `M/D/1`, `M/G/1`, `M/M/inf`, …
    pub model: String,
    /// Offered load per server ρ = λ/(cμ) (λ/μ for ∞ servers).
    pub rho: f64,
    /// Probability that an arrival is blocked (M/M/c/K), else 0.
    pub blocking: f64,
    /// Throughput of accepted requests λ(1 − blocking).
    pub throughput: f64,
    /// Mean number in system L.
    pub mean_in_system: f64,
    /// Mean wait in queue Wq (seconds) of accepted requests.
    pub mean_wait_s: f64,
    /// Mean sojourn W = Wq + 1/μ (seconds) of accepted requests.
    pub mean_s: f64,
    /// Median sojourn (seconds), where the distribution is known.
    pub p50_s: Option<f64>,
    /// 90th percentile of the sojourn (seconds), where known.
    pub p90_s: Option<f64>,
    /// 99th percentile of the sojourn (seconds), where known.
    pub p99_s: Option<f64>,
}

impl QueueSpec {
    /// Offered load per server.
    pub fn rho(&self) -> f64 { todo!() }
    /// The prediction, or why there is none.
    pub fn theory(&self) -> Result<Theory, TheoryError> { todo!() }
    /// P(T ≤ t) for the sojourn of an accepted request, where the distribution is known.
    pub fn sojourn_cdf(&self, t_s: f64) -> Option<f64> { todo!() }
    /// The q-quantile of the sojourn (0 < q < 1), where the distribution is known.
    pub fn sojourn_quantile(&self, q: f64) -> Option<f64> { todo!() }
    /// Kendall notation for this spec.
    pub fn model_name(&self) -> String { todo!() }
}

/// Erlang B: blocking probability of M/M/c/c with offered load `a = λ/μ`.
pub fn erlang_b(c: u32, a: f64) -> f64 { todo!() }

/// Erlang C: probability that an arrival waits in M/M/c with offered load `a = λ/μ < c`.
pub fn erlang_c(c: u32, a: f64) -> f64 { todo!() }
