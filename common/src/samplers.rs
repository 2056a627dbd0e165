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
//! Service-time distributions, each with mean exactly m = 1/μ (μ the service rate, `U` uniform on
//! `[0, 1)`, `E` standard exponential, `Z` standard normal, all drawn from the one generator given).
//! Each is drawn by a closed formula from one to three variates, with no table and no allocation,
//! because `qserve` draws one per request; the few constants a kind needs (a square root, a power)
//! are recomputed per draw, which costs tens of nanoseconds and keeps [`ServiceSampler`] two plain
//! fields.
//! - exponential (`exp`, C² = 1): `m·E` (ziggurat method of `rand_distr`);
//! - constant (`const`, C² = 0): exactly `m`;
//! - uniform on `[0, 2m)` (`uniform`, C² = 1/3): `2mU` (53 random bits);
//! - Erlang with k phases (`erlang:K`, C² = 1/k): the sum of k exponentials of mean m/k, the time
//!   through k exponential stages in series. Up to 8 phases the exponentials are summed; beyond,
//!   the same Gamma(k, m/k) law is drawn by Marsaglia and Tsang's method (`rand_distr::Gamma`,
//!   about one normal and one uniform per draw), so a large k costs no more than a small one;
//! - two-phase hyperexponential with balanced means (`h2:CV2`, any C² > 1; Whitt): with
//!   probability p₁ = ½(1 + √((C²−1)/(C²+1))) an exponential of rate μ₁ = 2p₁μ, else one of rate
//!   μ₂ = 2p₂μ (p₂ = 1 − p₁), so each branch carries half the mean. It is the usual stand-in for a
//!   mix of short and long jobs: `E[S²] = (1 + C²)m²` and the CDF is 1 − p₁e^{−μ₁t} − p₂e^{−μ₂t};
//! - lognormal (`lognormal:CV2`, any C² > 0): σ² = ln(1 + C²), `S = m·exp(σZ − σ²/2)`
//!   (E[e^{σZ}] = e^{σ²/2}, so the mean is m). Heavy-ish tailed but with every moment finite; the
//!   CDF is Φ((ln(t/m) + σ²/2)/σ);
//! - bounded Pareto (`pareto:ALPHA[:RATIO]`, shape α > 0 on [L, H], H = RATIO·L): the inverse CDF
//!   `L·(1 − U(1 − (L/H)^α))^(−1/α)`. With ℓ = ln(H/L) and h(b) = ∫₀^ℓ e^{−by} dy (= ℓ at b = 0,
//!   else (1 − e^{−bℓ})/b), the moments are E[S^j] = L^j·h(α−j)/h(α), so L = m·h(α)/h(α−1) gives
//!   the mean m and C² = h(α)h(α−2)/h(α−1)² − 1; h is computed with `expm1`, which stays
//!   accurate through α = 1 and α = 2 (where the closed forms turn into logarithms). A heavy tail (unbounded, α < 2
//!   would have an infinite variance) cut off at H so that its moments, and so the theory, exist;
//! - trace (`trace:FILE`): a time drawn uniformly, with replacement, from a file of measured
//!   times, scaled by m/(their mean); its C² and CDF are the sample's own (an empirical step CDF).
//!
//! Arrivals (`--arrival` of `qload`, λ the arrival rate): Poisson (exponential gaps `E/λ`),
//! constant (`1/λ`) or uniform (`2U/λ`).
//!
//! A [`Schedule`] turns gaps into absolute intended times `Σ gaps`: the whole nanoseconds are summed
//! in an integer and the fraction of a nanosecond is carried, so the rounding error of the n-th
//! time stays below one nanosecond however long the run (a running `f64` sum of seconds would lose
//! resolution as it grows). A constant schedule computes the n-th time directly as `n/λ`.
//!
//! A *shaped* schedule ([`Schedule::shaped`]) follows a [`Profile`] λ(t) instead of a constant
//! rate: a non-homogeneous Poisson process, drawn exactly by a change of time. The gaps are drawn
//! in *operational time*, where the process has unit rate (Exp(1) for Poisson; exactly 1 for
//! constant, so that the arrivals are evenly spaced in Λ; U[0, 2] for uniform), and each arrival
//! time is Λ⁻¹ of their running sum (scaled to the thread's share of λ). Since Λ is increasing, the
//! times come in order; a cursor keeps the segment of the profile reached, so a draw costs O(1)
//! and allocates nothing. The operational time is kept relative to the start of the current
//! segment, so it loses no precision over a long profile, and the n-th time of a constant one is
//! computed from n directly.
use std::sync::Arc;

use rand::RngExt;
use rand_distr::{Distribution, Exp1, Gamma, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

use crate::profile::Profile;

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

fn kind_error(
    what: &'static str,
    s: &str,
    reason: impl Into<std::borrow::Cow<'static, str>>,
) -> crate::units::UnitError {
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

/// Up to this many phases an Erlang time is drawn as a sum of exponentials (cheaper than the
/// Gamma method's normal, uniform, logarithm and cube); beyond, by the Gamma method, whose cost
/// does not grow with k.
const ERLANG_SUM_MAX: u32 = 8;

/// Service times read from a file of microseconds, one a line (`trace:FILE`).
///
/// The times give the shape; [`ServiceSampler`] scales them to mean 1/μ. A trace is built only by
/// [`Trace::parse`] (or [`Trace::new`]), which checks the times and computes once what every draw
/// needs: their mean and variance, and a sorted copy for the empirical CDF (changing `times_s` of
/// an owned trace does not update them: build a new one).
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The file as given.
    pub path: String,
    /// The times in seconds, in file order (at least one, each finite and ≥ 0, mean > 0).
    pub times_s: Vec<f64>,
    /// Mean of `times_s`.
    mean: f64,
    /// Population variance of `times_s` (two-pass, so a nearly constant trace keeps its C²).
    var: f64,
    /// `times_s` in increasing order.
    sorted: Vec<f64>,
}

impl Trace {
    /// A trace of `times_s` (seconds) named `path`: at least one time, each finite and
    /// non-negative, with a positive mean.
    pub fn new(path: &str, times_s: Vec<f64>) -> Result<Trace, String> {
        if times_s.is_empty() {
            return Err(format!(
                "trace {path}: no service times (every line is blank or a comment)"
            ));
        }
        if let Some((i, x)) = times_s
            .iter()
            .enumerate()
            .find(|(_, x)| !(x.is_finite() && **x >= 0.0))
        {
            return Err(format!(
                "trace {path}: time {} is {x}, not a finite non-negative number of seconds",
                i + 1
            ));
        }
        let n = times_s.len() as f64;
        let mean = times_s.iter().sum::<f64>() / n;
        if !(mean > 0.0 && mean.is_finite()) {
            return Err(format!(
                "trace {path}: the times have mean {mean} s, so they cannot be scaled to mean 1/μ \
                 (at least one must be positive, and their sum finite)"
            ));
        }
        let var = times_s.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        let mut sorted = times_s.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        Ok(Trace {
            path: path.to_owned(),
            times_s,
            mean,
            var,
            sorted,
        })
    }

    /// Reads a trace from the text of a file: one non-negative finite number of microseconds per
    /// line; blank lines and comments (from `#` to the end of the line) are skipped. A bad line is
    /// an error naming the file, the line number and its text
    /// (`trace FILE line 7: "abc" is not a number of microseconds`).
    pub fn parse(path: &str, text: &str) -> Result<Trace, String> {
        let mut times = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let body = match line.find('#') {
                Some(at) => &line[..at],
                None => line,
            }
            .trim();
            if body.is_empty() {
                continue;
            }
            let lineno = i + 1;
            let us: f64 = body.parse().map_err(|_| {
                format!("trace {path} line {lineno}: {body:?} is not a number of microseconds")
            })?;
            if !us.is_finite() {
                return Err(format!(
                    "trace {path} line {lineno}: {body:?} is not a finite number of microseconds"
                ));
            }
            if us < 0.0 {
                return Err(format!(
                    "trace {path} line {lineno}: {body:?} is negative (a service time is ≥ 0)"
                ));
            }
            // A division, not a product with 1e-6: the quotient is correctly rounded, so
            // `12.5` becomes exactly the double nearest 12.5 µs.
            times.push(us / 1e6);
        }
        Trace::new(path, times)
    }

    /// Reads and parses the file at `path`, leaking it for the life of the process (a trace is
    /// loaded once, at start-up).
    pub fn load(path: &str) -> Result<&'static Trace, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("trace {path}: {e}"))?;
        Ok(Box::leak(Box::new(Trace::parse(path, &text)?)))
    }

    /// Mean of the times (seconds).
    pub fn mean_s(&self) -> f64 {
        self.mean
    }

    /// The squared coefficient of variation of the times (population variance over mean²).
    pub fn cv2(&self) -> f64 {
        self.var / (self.mean * self.mean)
    }

    /// The fraction of the times at most `t_s` seconds once scaled by `scale` (the empirical CDF,
    /// by bisection of the sorted copy).
    fn cdf_scaled(&self, t_s: f64, scale: f64) -> f64 {
        let below = self.sorted.partition_point(|&x| x * scale <= t_s);
        below as f64 / self.sorted.len().max(1) as f64
    }
}

/// A parameter of a service kind as a finite number, or `reason`.
fn param_f64(p: &str, reason: &'static str) -> Result<f64, &'static str> {
    match p.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(reason),
    }
}

/// The parameter of `erlang:K`.
fn parse_erlang(p: Option<&str>) -> Result<ServiceKind, &'static str> {
    let Some(p) = p.map(str::trim) else {
        return Err("erlang needs its number of phases: erlang:K with K a whole number ≥ 1");
    };
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the phases K of erlang:K must be a whole number ≥ 1");
    }
    match p.parse::<u32>() {
        Ok(0) => Err("the phases K of erlang:K must be at least 1"),
        Ok(k) => Ok(ServiceKind::Erlang(k)),
        Err(_) => Err("the phases K of erlang:K are too many (at most 4294967295)"),
    }
}

/// The parameter of `h2:CV2`.
fn parse_h2(p: Option<&str>) -> Result<ServiceKind, &'static str> {
    let p = p.ok_or("h2 needs its squared coefficient of variation: h2:CV2 with CV2 > 1")?;
    let cv2 = param_f64(p, "the CV2 of h2:CV2 must be a number > 1")?;
    if cv2 > 1.0 {
        Ok(ServiceKind::H2 { cv2 })
    } else {
        Err("the CV2 of h2:CV2 must be above 1 (C² = 1 is exp, below 1 try erlang:K)")
    }
}

/// The parameter of `lognormal:CV2`.
fn parse_lognormal(p: Option<&str>) -> Result<ServiceKind, &'static str> {
    let p = p.ok_or(
        "lognormal needs its squared coefficient of variation: lognormal:CV2 with CV2 > 0",
    )?;
    let cv2 = param_f64(p, "the CV2 of lognormal:CV2 must be a number > 0")?;
    if cv2 > 0.0 {
        Ok(ServiceKind::Lognormal { cv2 })
    } else {
        Err("the CV2 of lognormal:CV2 must be above 0 (C² = 0 is const)")
    }
}

/// The parameters of `pareto:ALPHA[:RATIO]`.
fn parse_pareto(p: Option<&str>) -> Result<ServiceKind, &'static str> {
    let p = p.ok_or("pareto needs its shape: pareto:ALPHA or pareto:ALPHA:RATIO, ALPHA > 0")?;
    let (a, r) = match p.split_once(':') {
        Some((a, r)) => (a, Some(r)),
        None => (p, None),
    };
    let alpha = param_f64(
        a,
        "the shape ALPHA of pareto:ALPHA[:RATIO] must be a number > 0",
    )?;
    if alpha <= 0.0 {
        return Err("the shape ALPHA of pareto:ALPHA[:RATIO] must be above 0");
    }
    let ratio = match r {
        None => DEFAULT_PARETO_RATIO,
        Some(r) if r.contains(':') => {
            return Err("too many parameters: pareto:ALPHA or pareto:ALPHA:RATIO");
        }
        Some(r) => param_f64(
            r,
            "the RATIO (largest over smallest time) of pareto:ALPHA:RATIO must be a number > 1",
        )?,
    };
    if ratio <= 1.0 {
        return Err("the RATIO (largest over smallest time) of pareto:ALPHA:RATIO must be above 1");
    }
    let kind = ServiceKind::Pareto { alpha, ratio };
    // A huge ratio with a small shape overflows the second moment (e^{(2−α)·ln RATIO}).
    if !kind.cv2().is_finite() {
        return Err("RATIO is too large for this ALPHA: the second moment overflows");
    }
    Ok(kind)
}

impl std::str::FromStr for ServiceKind {
    type Err = crate::units::UnitError;
    /// Accepts `exp`, `const`, `uniform`, `zero` (and `exponential`, `deterministic`),
    /// `erlang:K`, `h2:CV2`, `lognormal:CV2`, `pareto:ALPHA[:RATIO]`, `trace:FILE`. The names
    /// ignore case; the file name of a trace is taken as given, and the file is read at once
    /// ([`Trace::load`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let (name, param) = match t.split_once(':') {
            Some((name, param)) => (name.trim(), Some(param)),
            None => (t, None),
        };
        let err = |reason| kind_error("service distribution", s, reason);
        let name = name.to_ascii_lowercase();
        let simple = match name.as_str() {
            "exp" | "exponential" => Some(ServiceKind::Exp),
            "const" | "constant" | "deterministic" => Some(ServiceKind::Const),
            "uniform" => Some(ServiceKind::Uniform),
            "zero" => Some(ServiceKind::Zero),
            _ => None,
        };
        if let Some(kind) = simple {
            return match param {
                None => Ok(kind),
                Some(_) => Err(err("exp, const, uniform and zero take no parameter")),
            };
        }
        match name.as_str() {
            "erlang" => parse_erlang(param).map_err(err),
            "h2" => parse_h2(param).map_err(err),
            "lognormal" => parse_lognormal(param).map_err(err),
            "pareto" => parse_pareto(param).map_err(err),
            "trace" => match param {
                None | Some("") => Err(err("trace needs its file: trace:FILE")),
                Some(path) => Trace::load(path)
                    .map(ServiceKind::Trace)
                    .map_err(|e| kind_error("service distribution", s, e)),
            },
            _ => Err(err(
                "expected exp, const, uniform, zero, erlang:K, h2:CV2, lognormal:CV2, \
                 pareto:ALPHA[:RATIO] or trace:FILE",
            )),
        }
    }
}

impl std::fmt::Display for ServiceKind {
    /// The flag spelling: `exp`, `const`, `uniform`, `zero`, `erlang:4`, `h2:4`, …; it parses
    /// back to the same kind (the shortest decimal of each `f64` reads back exactly).
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

/// h(b) = ∫₀^ℓ e^{−by} dy: ℓ at b = 0, else (1 − e^{−bℓ})/b, by `expm1` so that it is accurate
/// for b near 0 too (the bounded Pareto's α = 1 and α = 2).
#[inline]
fn pareto_h(b: f64, ell: f64) -> f64 {
    if b == 0.0 {
        ell
    } else {
        -(-b * ell).exp_m1() / b
    }
}

/// The bounded Pareto of shape `alpha` and max/min `ratio` scaled to mean `mean`: its lower bound
/// L, ℓ = ln(ratio) and q = 1 − ratio^{−α} (the normalization of its CDF).
#[inline]
fn pareto_shape(alpha: f64, ratio: f64, mean: f64) -> (f64, f64, f64) {
    let ell = ratio.ln();
    let h_a = pareto_h(alpha, ell);
    // E[S]/L = h(α−1)/h(α).
    let low = mean * h_a / pareto_h(alpha - 1.0, ell);
    (low, ell, alpha * h_a)
}

/// The branch probabilities (p₁, p₂) of the balanced-means H2 of squared coefficient of
/// variation `cv2` (> 1). p₂ = ½(1 − r) with r = √((C²−1)/(C²+1)) is computed as
/// 1/((C²+1)(1+r)), which is the same but does not cancel for a large C².
#[inline]
fn h2_branches(cv2: f64) -> (f64, f64) {
    let r = ((cv2 - 1.0) / (cv2 + 1.0)).sqrt();
    let p2 = 1.0 / ((cv2 + 1.0) * (1.0 + r));
    (1.0 - p2, p2)
}

impl ServiceKind {
    /// The squared coefficient of variation C² = `Var[S]/E[S]²` (0 for `Const` and `Zero`; NaN
    /// for a Pareto with parameters out of range).
    pub fn cv2(&self) -> f64 {
        match *self {
            ServiceKind::Exp => 1.0,
            ServiceKind::Const | ServiceKind::Zero => 0.0,
            // Uniform on [0, 2m]: Var = (2m)²/12 = m²/3.
            ServiceKind::Uniform => 1.0 / 3.0,
            ServiceKind::Erlang(k) => 1.0 / f64::from(k.max(1)),
            ServiceKind::H2 { cv2 } | ServiceKind::Lognormal { cv2 } => cv2,
            ServiceKind::Pareto { alpha, ratio } => {
                if !(alpha > 0.0 && ratio > 1.0) {
                    return f64::NAN;
                }
                // E[S^j] = L^j h(α−j)/h(α): C² = E[S²]/E[S]² − 1 = h(α)h(α−2)/h(α−1)² − 1.
                let ell = ratio.ln();
                let h1 = pareto_h(alpha - 1.0, ell);
                pareto_h(alpha, ell) * pareto_h(alpha - 2.0, ell) / (h1 * h1) - 1.0
            }
            ServiceKind::Trace(t) => t.cv2(),
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

    /// One service time in nanoseconds, drawn from `rng` alone (no allocation).
    #[inline]
    pub fn sample_ns(&self, rng: &mut Rng) -> u64 {
        s_to_ns(self.sample_s(rng))
    }

    /// One service time in seconds (before rounding to a nanosecond).
    #[inline]
    fn sample_s(&self, rng: &mut Rng) -> f64 {
        let m = 1.0 / self.mu;
        match self.kind {
            ServiceKind::Exp => exp1(rng) * m,
            ServiceKind::Const => m,
            ServiceKind::Uniform => 2.0 * unit(rng) * m,
            ServiceKind::Zero => 0.0,
            ServiceKind::Erlang(k) => {
                let k = k.max(1);
                if k <= ERLANG_SUM_MAX {
                    (0..k).map(|_| exp1(rng)).sum::<f64>() * (m / f64::from(k))
                } else {
                    // Gamma(k, 1)·m/k. The shape is ≥ 9 and the scale 1, which `Gamma::new`
                    // always accepts; the other arm only keeps the mean should it ever refuse.
                    match Gamma::new(f64::from(k), 1.0) {
                        Ok(g) => g.sample(rng) * (m / f64::from(k)),
                        Err(_) => m,
                    }
                }
            }
            ServiceKind::H2 { cv2 } => {
                let (p1, p2) = h2_branches(cv2);
                // Branch i has rate 2pᵢμ, that is mean m/(2pᵢ).
                let p = if unit(rng) < p1 { p1 } else { p2 };
                exp1(rng) * (m / (2.0 * p))
            }
            ServiceKind::Lognormal { cv2 } => {
                let s2 = cv2.ln_1p();
                let z: f64 = StandardNormal.sample(rng);
                m * (s2.sqrt() * z - 0.5 * s2).exp()
            }
            ServiceKind::Pareto { alpha, ratio } => {
                let (low, _, q) = pareto_shape(alpha, ratio, m);
                // F(x) = (1 − (L/x)^α)/q, so x = L·(1 − Uq)^(−1/α); 1 − Uq > ratio^−α > 0.
                let x = low * (-(-unit(rng) * q).ln_1p() / alpha).exp();
                x.clamp(low, low * ratio)
            }
            ServiceKind::Trace(t) => {
                let n = t.times_s.len();
                if n == 0 {
                    return m;
                }
                let i = rng.random_range(0..n);
                t.times_s[i] * (m / t.mean)
            }
        }
    }

    /// The mean service time in seconds (0 for `Zero`).
    pub fn mean_s(&self) -> f64 {
        match self.kind {
            ServiceKind::Zero => 0.0,
            _ => 1.0 / self.mu,
        }
    }

    /// The second moment `E[S²]` in s² (0 for `Zero`): (1 + C²)/μ², exact for every kind (for a
    /// trace, the scaled sample's own second moment).
    pub fn second_moment_s2(&self) -> f64 {
        let m = self.mean_s();
        (1.0 + self.kind.cv2()) * m * m
    }

    /// The service-time CDF P(S ≤ t) at `t_s` seconds, where it has a closed form (today every
    /// kind: `None` is for distributions that may come without one).
    ///
    /// Erlang by the regularized lower incomplete gamma function and lognormal by the normal
    /// CDF (both from `statrs`); a trace's is the empirical step CDF of its scaled times.
    pub fn cdf(&self, t_s: f64) -> Option<f64> {
        if t_s.is_nan() {
            return Some(f64::NAN);
        }
        let m = self.mean_s();
        let p = match self.kind {
            ServiceKind::Zero => f64::from(u8::from(t_s >= 0.0)),
            ServiceKind::Const => f64::from(u8::from(t_s >= m)),
            _ if t_s <= 0.0 => 0.0,
            ServiceKind::Exp => -(-t_s / m).exp_m1(),
            ServiceKind::Uniform => (t_s / (2.0 * m)).min(1.0),
            ServiceKind::Erlang(k) => {
                let k = f64::from(k.max(1));
                // P(k, kt/m); the only errors are for arguments ruled out above (t ≤ 0) or an
                // infinite t, whose CDF is 1.
                statrs::function::gamma::checked_gamma_lr(k, k * t_s / m).unwrap_or(1.0)
            }
            ServiceKind::H2 { cv2 } => {
                let (p1, p2) = h2_branches(cv2);
                1.0 - p1 * (-2.0 * p1 * t_s / m).exp() - p2 * (-2.0 * p2 * t_s / m).exp()
            }
            ServiceKind::Lognormal { cv2 } => {
                // ln S ~ N(ln m − σ²/2, σ²): Φ(z) = erfc(−z/√2)/2.
                let s2 = cv2.ln_1p();
                let z = ((t_s / m).ln() + 0.5 * s2) / s2.sqrt();
                0.5 * statrs::function::erf::erfc(-z / std::f64::consts::SQRT_2)
            }
            ServiceKind::Pareto { alpha, ratio } => {
                let (low, _, q) = pareto_shape(alpha, ratio, m);
                if t_s <= low {
                    0.0
                } else if t_s >= low * ratio {
                    1.0
                } else {
                    // (1 − (L/t)^α)/q.
                    -(-alpha * (t_s / low).ln()).exp_m1() / q
                }
            }
            ServiceKind::Trace(t) => t.cdf_scaled(t_s, m / t.mean),
        };
        Some(p)
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
    /// The profile of a shaped schedule (`None`: the constant rate above).
    shape: Option<Box<Shape>>,
}

/// Where a shaped schedule is in its profile (see the module docs).
#[derive(Debug, Clone)]
struct Shape {
    profile: Arc<Profile>,
    /// Operational time of the whole profile per unit of this schedule's: 1/share.
    scale: f64,
    /// The segment reached.
    piece: usize,
    /// Operational time (of the whole profile) since the start of that segment.
    local: f64,
    /// The latest time produced (the times never go back, whatever the rounding).
    last_ns: u64,
    /// The profile has been run through.
    done: bool,
}

impl Shape {
    /// The `n`-th time of `kind`, or [`Schedule::END`].
    #[inline]
    fn next_ns(&mut self, kind: ArrivalKind, n: u64, rng: &mut Rng) -> u64 {
        if self.done {
            return Schedule::END;
        }
        let p = &*self.profile;
        let inside = match kind {
            ArrivalKind::Poisson => {
                self.local += exp1(rng) * self.scale;
                p.settle(&mut self.piece, &mut self.local)
            }
            ArrivalKind::Uniform => {
                self.local += 2.0 * unit(rng) * self.scale;
                p.settle(&mut self.piece, &mut self.local)
            }
            ArrivalKind::Constant => match p.seek(n as f64 * self.scale, &mut self.piece) {
                Some(local) => {
                    self.local = local;
                    true
                }
                None => false,
            },
        };
        if !inside {
            self.done = true;
            return Schedule::END;
        }
        let t = p.time_ns(self.piece, self.local).max(self.last_ns);
        self.last_ns = t;
        t
    }
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
            shape: None,
        })
    }

    /// What [`Schedule::next_ns`] returns once a shaped schedule has run past the end of its
    /// profile: no arrival is ever due.
    pub const END: u64 = u64::MAX;

    /// A schedule that follows `profile`, at `share` (> 0, finite) of its rate: λ(t)·share, a
    /// thread's part of a rate split over several (see the module docs). `None` for a `share`
    /// out of range.
    ///
    /// Its [`Schedule::rate`] is the mean over the profile, λ̄·share.
    pub fn shaped(kind: ArrivalKind, profile: Arc<Profile>, share: f64) -> Option<Self> {
        if !(share.is_finite() && share > 0.0) {
            return None;
        }
        let mut s = Schedule::try_new(kind, profile.mean() * share)?;
        s.shape = Some(Box::new(Shape {
            profile,
            scale: 1.0 / share,
            piece: 0,
            local: 0.0,
            last_ns: 0,
            done: false,
        }));
        Some(s)
    }

    /// The profile of a shaped schedule.
    pub fn profile(&self) -> Option<&Profile> {
        self.shape.as_deref().map(|s| &*s.profile)
    }

    /// The next intended time, in nanoseconds since the start; strictly non-decreasing.
    ///
    /// It is the exact running sum of the gaps drawn so far, rounded down to a nanosecond
    /// (for a constant schedule, `n/λ` rounded to the nearest nanosecond). A shaped schedule
    /// gives Λ⁻¹ of the running sum of its operational gaps, rounded to the nearest nanosecond,
    /// and [`Schedule::END`] from the end of its profile on.
    #[inline]
    pub fn next_ns(&mut self, rng: &mut Rng) -> u64 {
        self.n += 1;
        if let Some(shape) = self.shape.as_deref_mut() {
            return shape.next_ns(self.kind, self.n, rng);
        }
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
