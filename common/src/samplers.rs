//! Seeded samplers for service times and inter-arrival gaps.
//!
//! Every stream is a `Xoshiro256PlusPlus` seeded from `(seed, stream)` so that each thread or queue gets
//! an independent, reproducible sequence. Times are integer nanoseconds: a sample is drawn in `f64`
//! seconds and rounded to the nearest nanosecond.
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator every sampler draws from.
pub type Rng = Xoshiro256PlusPlus;

/// A generator for `stream` (thread index, connection index, …) of a run seeded with `seed`.
/// Different streams of one seed are independent (they are `stream` long jumps apart).
pub fn rng(seed: u64, stream: u64) -> Rng { todo!() }

/// The distribution of service times of `qserve` (`--service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// Exponential with mean 1/μ (the M in M/M/c).
    Exp,
    /// Deterministic, exactly 1/μ (M/D/1).
    Const,
    /// Uniform on [0, 2/μ] (mean 1/μ; an M/G/1 example).
    Uniform,
    /// No service at all: answer at once (maximum-throughput mode).
    Zero,
}

impl std::str::FromStr for ServiceKind {
    type Err = crate::units::UnitError;
    /// Accepts `exp`, `const`, `uniform`, `zero` (and `exponential`, `deterministic`).
    fn from_str(s: &str) -> Result<Self, Self::Err> { todo!() }
}

impl std::fmt::Display for ServiceKind {
    /// The flag spelling: `exp`, `const`, `uniform`, `zero`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { todo!() }
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
    pub fn new(kind: ServiceKind, mu: f64) -> Self { todo!() }
    /// One service time in nanoseconds.
    pub fn sample_ns(&self, rng: &mut Rng) -> u64 { todo!() }
    /// The mean service time in seconds (0 for `Zero`).
    pub fn mean_s(&self) -> f64 { todo!() }
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
    fn from_str(s: &str) -> Result<Self, Self::Err> { todo!() }
}

impl std::fmt::Display for ArrivalKind {
    /// The flag spelling: `poisson`, `constant`, `uniform`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { todo!() }
}

/// An arrival schedule: absolute intended times `t0 + Σ gaps`, in nanoseconds since `t0`.
/// The sum is kept exactly (the fractional nanoseconds carried), so it never drifts from the rate.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: ArrivalKind,
    rate: f64,
    next_s: f64,
}

impl Schedule {
    /// A schedule at `rate` arrivals per second (positive, finite) starting at offset 0.
    pub fn new(kind: ArrivalKind, rate: f64) -> Self { todo!() }
    /// The next intended time, in nanoseconds since the start; strictly non-decreasing.
    pub fn next_ns(&mut self, rng: &mut Rng) -> u64 { todo!() }
    /// The rate in arrivals per second.
    pub fn rate(&self) -> f64 { self.rate }
}

/// One exponential sample with the given mean (seconds in, seconds out); for think times.
pub fn exp_sample(mean_s: f64, rng: &mut Rng) -> f64 { todo!() }
