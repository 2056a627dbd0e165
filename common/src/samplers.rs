//! Seeded samplers for service times and inter-arrival gaps.
//!
//! Every stream is a `Xoshiro256PlusPlus` seeded from `(seed, stream)` so that each thread or queue gets
//! an independent, reproducible sequence. Times are integer nanoseconds: a sample is drawn in `f64`
//! seconds and rounded to the nearest nanosecond.
//!
//! Streams: the generator seeded with `seed` (through SplitMix64) is advanced by `stream` long jumps
//! of 2^192 steps each, so streams never overlap within 2^192 draws. Up to stream 1024 the long
//! jumps are made one by one (about 0.4 µs each); beyond, in one general jump of about 0.5 ms, so
//! any `u64` stream index is usable.
//!
//! Distributions (μ the service rate, λ the arrival rate):
//! - exponential: `Exp1 / μ` (ziggurat method of `rand_distr`);
//! - constant: exactly `1/μ`;
//! - uniform on `[0, 2/μ)`: `2U/μ` with `U` uniform on `[0, 1)` (53 random bits).
//!
//! A [`Schedule`] turns gaps into absolute intended times `Σ gaps`: the whole nanoseconds are summed
//! in an integer and the fraction of a nanosecond is carried, so the rounding error of the n-th
//! time stays below one nanosecond however long the run (a running `f64` sum of seconds would lose
//! resolution as it grows). A constant schedule computes the n-th time directly as `n/λ`.
use rand::RngExt;
use rand_distr::{Distribution, Exp1};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

/// The generator every sampler draws from.
pub type Rng = Xoshiro256PlusPlus;

/// Up to this stream index [`rng`] long-jumps in a loop; beyond, it jumps in one step.
const LONG_JUMP_LOOP_MAX: u64 = 1024;

/// The stream `qserve` draws service times from. `qload` draws its arrivals from streams
/// `0, 1, 2, …` (one per worker thread), so a server and a client given the same `--seed` still draw
/// independent sequences: were they the same stream, every service time would be proportional to
/// the gap before it and the queue would hardly ever wait.
pub const SERVICE_STREAM: u64 = 1 << 32;

/// The stream `qserve` draws priority classes from (one uniform per arrival when there are
/// several classes, whether or not the request names its own class, so the n-th arrival always
/// gets the n-th draw).
pub const CLASS_STREAM: u64 = SERVICE_STREAM + 1;

/// A generator for `stream` (thread index, connection index, …) of a run seeded with `seed`.
/// Different streams of one seed are independent (they are `stream` long jumps apart).
pub fn rng(seed: u64, stream: u64) -> Rng {
    let mut r = Xoshiro256PlusPlus::seed_from_u64(seed);
    if stream <= LONG_JUMP_LOOP_MAX {
        // One long jump costs about 0.4 µs; the general jump below about 0.5 ms.
        for _ in 0..stream {
            r.long_jump();
        }
    } else {
        // stream · 2^192 < 2^256 − 1, the period: the same as `stream` calls of `long_jump`.
        r.jump_ce(stream, 192);
    }
    r
}

/// One draw of the standard exponential distribution (mean 1).
#[inline]
fn exp1(rng: &mut Rng) -> f64 {
    Exp1.sample(rng)
}

/// One draw of the uniform distribution on `[0, 1)`.
#[inline]
fn unit(rng: &mut Rng) -> f64 {
    rng.random::<f64>()
}

/// Seconds (finite, non-negative) to the nearest nanosecond, saturating.
#[inline]
fn s_to_ns(s: f64) -> u64 {
    // `as` saturates: NaN → 0, above u64::MAX → u64::MAX.
    (s * 1e9).round() as u64
}

fn kind_error(what: &'static str, s: &str, reason: &'static str) -> crate::units::UnitError {
    crate::units::UnitError::new(what, s, reason)
}

/// The distribution of service times of `qserve` (`--service`); every kind has mean 1/μ.
///
/// The kinds with a parameter carry it (`erlang:4`, `h2:4`, `lognormal:10`, `pareto:1.5:1000`,
/// `trace:FILE`). A trace is loaded once, when its flag is parsed, and lives as long as the process
/// (a `&'static` [`Trace`]), which keeps the kind and every model holding it `Copy`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ServiceKind {
    /// Exponential with mean 1/μ (the M in M/M/c).
    Exp,
    /// Deterministic, exactly 1/μ (M/D/1).
    Const,
    /// Uniform on [0, 2/μ] (mean 1/μ; an M/G/1 example).
    Uniform,
    /// No service at all: answer at once (maximum-throughput mode).
    Zero,
    /// Erlang with `k ≥ 1` phases, each exponential with mean 1/(kμ): C² = 1/k (M/E_k/c).
    Erlang(u32),
    /// Two-phase hyperexponential with squared coefficient of variation `cv2 > 1` and balanced
    /// means (each branch carries half of the mean): M/H2/c.
    H2 {
        /// Squared coefficient of variation C² = Var/mean² (> 1).
        cv2: f64,
    },
    /// Lognormal with squared coefficient of variation `cv2 > 0`: M/LN/c.
    Lognormal {
        /// Squared coefficient of variation C² (> 0).
        cv2: f64,
    },
    /// Bounded Pareto with shape `alpha > 0` on [m, ratio·m], m chosen for mean 1/μ: M/BP/c.
    Pareto {
        /// Shape α (> 0).
        alpha: f64,
        /// Largest over smallest value (> 1; 1000 by default).
        ratio: f64,
    },
    /// Service times drawn with replacement from a file (scaled to mean 1/μ).
    Trace(&'static Trace),
}

/// The default max/min ratio of `pareto:ALPHA`.
pub const DEFAULT_PARETO_RATIO: f64 = 1000.0;

/// Service times read from a file of microseconds, one a line (`trace:FILE`).
///
/// The times give the shape; [`ServiceSampler`] scales them to mean 1/μ.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The file as given.
    pub path: String,
    /// The times in seconds, in file order (at least one, each finite and ≥ 0, mean > 0).
    pub times_s: Vec<f64>,
}

impl Trace {
    /// Reads a trace from the text of a file: one non-negative number of microseconds per line;
    /// blank lines and lines starting with `#` are skipped. A bad line is an error naming it.
    pub fn parse(path: &str, text: &str) -> Result<Trace, String> {
        let _ = (path, text);
        Err("trace: not yet".into())
    }

    /// Reads and parses the file at `path`, leaking it for the life of the process (a trace is
    /// loaded once, at start-up).
    pub fn load(path: &str) -> Result<&'static Trace, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("trace {path:?}: {e}"))?;
        Ok(Box::leak(Box::new(Trace::parse(path, &text)?)))
    }

    /// Mean of the times (seconds).
    pub fn mean_s(&self) -> f64 {
        self.times_s.iter().sum::<f64>() / self.times_s.len().max(1) as f64
    }
}

impl std::str::FromStr for ServiceKind {
    type Err = crate::units::UnitError;
    /// Accepts `exp`, `const`, `uniform`, `zero` (and `exponential`, `deterministic`),
    /// `erlang:K`, `h2:CV2`, `lognormal:CV2`, `pareto:ALPHA[:RATIO]`, `trace:FILE`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "exp" | "exponential" => Ok(ServiceKind::Exp),
            "const" | "constant" | "deterministic" => Ok(ServiceKind::Const),
            "uniform" => Ok(ServiceKind::Uniform),
            "zero" => Ok(ServiceKind::Zero),
            _ => Err(kind_error(
                "service distribution",
                s,
                "expected exp, const, uniform, zero, erlang:K, h2:CV2, lognormal:CV2, \
                 pareto:ALPHA[:RATIO] or trace:FILE",
            )),
        }
    }
}

impl std::fmt::Display for ServiceKind {
    /// The flag spelling: `exp`, `const`, `uniform`, `zero`, `erlang:4`, `h2:4`, …; it parses
    /// back to the same kind.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceKind::Exp => f.write_str("exp"),
            ServiceKind::Const => f.write_str("const"),
            ServiceKind::Uniform => f.write_str("uniform"),
            ServiceKind::Zero => f.write_str("zero"),
            ServiceKind::Erlang(k) => write!(f, "erlang:{k}"),
            ServiceKind::H2 { cv2 } => write!(f, "h2:{cv2}"),
            ServiceKind::Lognormal { cv2 } => write!(f, "lognormal:{cv2}"),
            ServiceKind::Pareto { alpha, ratio } => write!(f, "pareto:{alpha}:{ratio}"),
            ServiceKind::Trace(t) => write!(f, "trace:{}", t.path),
        }
    }
}

impl ServiceKind {
    /// The squared coefficient of variation C² = Var[S]/E[S]² (0 for `Const` and `Zero`).
    pub fn cv2(&self) -> f64 {
        match *self {
            ServiceKind::Exp => 1.0,
            ServiceKind::Const | ServiceKind::Zero => 0.0,
            // Uniform on [0, 2m]: Var = (2m)²/12 = m²/3.
            ServiceKind::Uniform => 1.0 / 3.0,
            ServiceKind::Erlang(k) => 1.0 / f64::from(k.max(1)),
            ServiceKind::H2 { cv2 } | ServiceKind::Lognormal { cv2 } => cv2,
            ServiceKind::Pareto { .. } => f64::NAN,
            ServiceKind::Trace(t) => {
                let m = t.mean_s();
                let n = t.times_s.len().max(1) as f64;
                let var = t.times_s.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
                var / (m * m)
            }
        }
    }

    /// Whether the distribution is exponential (the M of Kendall's notation).
    pub fn is_exp(&self) -> bool {
        matches!(self, ServiceKind::Exp)
    }
}

/// A service-time sampler: a [`ServiceKind`] at service rate μ (per second, per server).
#[derive(Debug, Clone, Copy)]
pub struct ServiceSampler {
    /// The distribution.
    pub kind: ServiceKind,
    /// Service rate μ in 1/s (ignored for `Zero`).
    pub mu: f64,
}

impl ServiceSampler {
    /// A sampler; `mu` must be positive and finite unless `kind` is `Zero`.
    ///
    /// # Panics
    /// If `kind` is not `Zero` and `mu` is not positive and finite (validate with
    /// [`crate::units::parse_rate`] first, or use [`ServiceSampler::try_new`]).
    pub fn new(kind: ServiceKind, mu: f64) -> Self {
        match Self::try_new(kind, mu) {
            Some(s) => s,
            None => {
                panic!("ServiceSampler::new: service rate mu = {mu} must be positive and finite")
            }
        }
    }

    /// A sampler, or `None` if `kind` is not `Zero` and `mu` is not positive and finite.
    pub fn try_new(kind: ServiceKind, mu: f64) -> Option<Self> {
        if kind != ServiceKind::Zero && !(mu.is_finite() && mu > 0.0) {
            return None;
        }
        Some(ServiceSampler { kind, mu })
    }

    /// One service time in nanoseconds.
    #[inline]
    pub fn sample_ns(&self, rng: &mut Rng) -> u64 {
        match self.kind {
            ServiceKind::Exp => s_to_ns(exp1(rng) / self.mu),
            ServiceKind::Const => s_to_ns(1.0 / self.mu),
            ServiceKind::Uniform => s_to_ns(2.0 * unit(rng) / self.mu),
            ServiceKind::Zero => 0,
            _ => s_to_ns(exp1(rng) / self.mu),
        }
    }

    /// The mean service time in seconds (0 for `Zero`).
    pub fn mean_s(&self) -> f64 {
        match self.kind {
            ServiceKind::Zero => 0.0,
            _ => 1.0 / self.mu,
        }
    }

    /// The second moment E[S²] in s² (0 for `Zero`): (1 + C²)/μ².
    pub fn second_moment_s2(&self) -> f64 {
        let m = self.mean_s();
        (1.0 + self.kind.cv2()) * m * m
    }
}

/// The arrival process of `qload` (`--arrival`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivalKind {
    /// Exponential gaps: a Poisson process.
    Poisson,
    /// Evenly spaced gaps of exactly 1/λ.
    Constant,
    /// Gaps uniform on [0, 2/λ].
    Uniform,
}

impl std::str::FromStr for ArrivalKind {
    type Err = crate::units::UnitError;
    /// Accepts `poisson` (or `exp`), `constant` (or `const`), `uniform`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "poisson" | "exp" | "exponential" => Ok(ArrivalKind::Poisson),
            "constant" | "const" => Ok(ArrivalKind::Constant),
            "uniform" => Ok(ArrivalKind::Uniform),
            _ => Err(kind_error(
                "arrival process",
                s,
                "expected poisson, constant or uniform",
            )),
        }
    }
}

impl std::fmt::Display for ArrivalKind {
    /// The flag spelling: `poisson`, `constant`, `uniform`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArrivalKind::Poisson => "poisson",
            ArrivalKind::Constant => "constant",
            ArrivalKind::Uniform => "uniform",
        })
    }
}

/// An arrival schedule: absolute intended times `t0 + Σ gaps`, in nanoseconds since `t0`.
/// The sum is kept exactly (the fractional nanoseconds carried), so it never drifts from the rate.
///
/// The first time is one gap after the start (for a constant schedule, `1/λ`).
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: ArrivalKind,
    rate: f64,
    /// Mean gap 1/λ in nanoseconds.
    gap_ns: f64,
    /// Arrivals produced so far.
    n: u64,
    /// Whole nanoseconds of the running sum of gaps.
    whole_ns: u64,
    /// The fraction of a nanosecond carried, in `[0, 1)`.
    frac_ns: f64,
}

impl Schedule {
    /// A schedule at `rate` arrivals per second (positive, finite) starting at offset 0.
    ///
    /// # Panics
    /// If `rate` is not positive and finite (validate with [`crate::units::parse_rate`] first,
    /// or use [`Schedule::try_new`]).
    pub fn new(kind: ArrivalKind, rate: f64) -> Self {
        match Self::try_new(kind, rate) {
            Some(s) => s,
            None => panic!("Schedule::new: rate = {rate} must be positive and finite"),
        }
    }

    /// A schedule, or `None` if `rate` is not positive and finite.
    pub fn try_new(kind: ArrivalKind, rate: f64) -> Option<Self> {
        if !(rate.is_finite() && rate > 0.0) {
            return None;
        }
        Some(Schedule {
            kind,
            rate,
            gap_ns: 1e9 / rate,
            n: 0,
            whole_ns: 0,
            frac_ns: 0.0,
        })
    }

    /// The next intended time, in nanoseconds since the start; strictly non-decreasing.
    ///
    /// It is the exact running sum of the gaps drawn so far, rounded down to a nanosecond
    /// (for a constant schedule, `n/λ` rounded to the nearest nanosecond).
    #[inline]
    pub fn next_ns(&mut self, rng: &mut Rng) -> u64 {
        self.n += 1;
        let gap = match self.kind {
            ArrivalKind::Constant => {
                // Direct from the count: no accumulated error at all.
                let t = (self.n as f64 * self.gap_ns).round() as u64;
                self.whole_ns = t;
                return t;
            }
            ArrivalKind::Poisson => exp1(rng) * self.gap_ns,
            ArrivalKind::Uniform => 2.0 * unit(rng) * self.gap_ns,
        };
        let total = self.frac_ns + gap;
        let whole = total.floor();
        self.frac_ns = total - whole;
        self.whole_ns = self.whole_ns.saturating_add(whole as u64);
        self.whole_ns
    }

    /// The rate in arrivals per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The arrival process.
    pub fn kind(&self) -> ArrivalKind {
        self.kind
    }

    /// How many times [`Schedule::next_ns`] has been called.
    pub fn count(&self) -> u64 {
        self.n
    }
}

/// One exponential sample with the given mean (seconds in, seconds out); for think times.
pub fn exp_sample(mean_s: f64, rng: &mut Rng) -> f64 {
    exp1(rng) * mean_s
}
