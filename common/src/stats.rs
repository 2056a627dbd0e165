//! Statistics shared by both programs.
//!
//! - Latency histograms: HDR histograms of nanoseconds with fixed bounds (1 ns to one hour, three
//!   significant digits) created up front, so recording never allocates or resizes.
//! - Serialization of a histogram to a string (V2 + DEFLATE, base64) for JSON results and merging.
//! - Confidence intervals by batch means (Student t), Kolmogorov–Smirnov against a CDF.
//!
//! Batch means: successive observations of a queue are correlated, so the sample standard
//! deviation of single observations understates the error of their mean. Grouping them into `b`
//! long batches (in time order) gives batch means that are nearly independent; the interval is the
//! Student t interval over those `b` means (Law and Kelton, *Simulation Modeling and Analysis*).
//!
//! Kolmogorov–Smirnov: `D = sup |F_n(x) − F(x)|`; its p-value uses the limiting Kolmogorov
//! distribution `Q(λ) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²λ²}` at `λ = (√n + 0.12 + 0.11/√n)·D`
//! (Stephens 1970), accurate for `n ≥ 5` or so; for small λ the equivalent Jacobi-theta form
//! `1 − √(2π)/λ Σ_{k≥1} e^{−(2k−1)²π²/(8λ²)}` converges faster and is used instead.
use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

/// Highest value a latency histogram records, in nanoseconds (one hour); larger values are clamped.
pub const HIST_MAX_NS: u64 = 3_600_000_000_000;
/// Significant decimal digits kept by latency histograms.
pub const HIST_SIGFIG: u8 = 3;

/// Longest serialized histogram accepted by [`histogram_from_string`] (bytes of base64). A histogram
/// with the fixed bounds encodes to well under 1 MiB even with every bucket in use.
pub const MAX_SERIALIZED_LEN: usize = 8 * 1024 * 1024;

/// A new latency histogram in nanoseconds with the fixed bounds above.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, HIST_SIGFIG)
        .expect("the fixed bounds 1..=HIST_MAX_NS with 3 significant digits are valid")
}

/// Records `ns` (clamped to `[1, HIST_MAX_NS]`) without allocating.
#[inline]
pub fn record_ns(h: &mut Histogram<u64>, ns: u64) {
    record_n_ns(h, ns, 1);
}

/// Records `count` values of `ns` (clamped like [`record_ns`]) without allocating.
#[inline]
pub fn record_n_ns(h: &mut Histogram<u64>, ns: u64, count: u64) {
    // Also clamp to the histogram's own range, so a histogram made elsewhere cannot make
    // recording fail (or resize, if it auto-resizes).
    let v = ns.clamp(1, HIST_MAX_NS.min(h.high()));
    let r = h.record_n(v, count);
    debug_assert!(r.is_ok(), "recording {v} (clamped from {ns}) failed: {r:?}");
}

/// Adds every value of `src` to `dst`, clamping values above `dst`'s range to its top.
pub fn merge_histogram(dst: &mut Histogram<u64>, src: &Histogram<u64>) {
    if dst.add(src).is_ok() {
        return;
    }
    // `add` fails only when `src` holds values beyond `dst`'s range (before changing anything).
    for v in src.iter_recorded() {
        record_n_ns(dst, v.value_iterated_to(), v.count_at_value());
    }
}

/// Summary of a histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Number of values.
    pub count: u64,
    /// Mean (µs).
    pub mean: f64,
    /// Standard deviation (µs).
    pub stdev: f64,
    /// Minimum (µs).
    pub min: f64,
    /// Median (µs).
    pub p50: f64,
    /// 90th percentile (µs).
    pub p90: f64,
    /// 99th percentile (µs).
    pub p99: f64,
    /// 99.9th percentile (µs).
    pub p999: f64,
    /// Maximum (µs).
    pub max: f64,
}

/// Summarizes a nanosecond histogram in microseconds (all zero when empty).
///
/// Values are those of the histogram: within 0.1% (three significant digits) of the recorded ones.
/// The standard deviation is the population one (divided by n).
pub fn summarize(h: &Histogram<u64>) -> Summary {
    if h.is_empty() {
        return Summary::default();
    }
    let us = |ns: u64| ns as f64 / 1e3;
    Summary {
        count: h.len(),
        mean: h.mean() / 1e3,
        stdev: h.stdev() / 1e3,
        min: us(h.min()),
        p50: us(h.value_at_quantile(0.5)),
        p90: us(h.value_at_quantile(0.9)),
        p99: us(h.value_at_quantile(0.99)),
        p999: us(h.value_at_quantile(0.999)),
        max: us(h.max()),
    }
}

/// Serializes a histogram (V2 format, DEFLATE compressed, standard base64).
pub fn histogram_to_string(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing into memory fails only for a count above i64::MAX, never reached");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The inverse of [`histogram_to_string`]; the result has the fixed bounds of [`new_histogram`].
///
/// Also accepts uncompressed V2 data and histograms with other bounds; values above
/// [`HIST_MAX_NS`] are clamped to it.
pub fn histogram_from_string(s: &str) -> Result<Histogram<u64>, StatsError> {
    let s = s.trim();
    if s.len() > MAX_SERIALIZED_LEN {
        return Err(StatsError::BadHistogram(format!(
            "{} bytes, more than the {MAX_SERIALIZED_LEN} accepted",
            s.len()
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| StatsError::BadHistogram(format!("base64: {e}")))?;
    let decoded: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| StatsError::BadHistogram(format!("V2 data: {e}")))?;
    let mut h = new_histogram();
    merge_histogram(&mut h, &decoded);
    Ok(h)
}

/// Why a statistic could not be computed or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    /// The serialized histogram is not valid base64 or V2 data.
    #[error("invalid serialized histogram: {0}")]
    BadHistogram(String),
}

/// t_{0.975, ν} for ν = 1..=30 (index ν − 1), to 12 significant digits.
const T975: [f64; 30] = [
    12.7062047361747,
    4.30265272974946,
    3.18244630528371,
    2.77644510519779,
    2.57058183563632,
    2.44691185114497,
    2.36462425159279,
    2.30600413520417,
    2.26215716279821,
    2.22813885198627,
    2.20098516009164,
    2.17881282966723,
    2.16036865646279,
    2.14478668791780,
    2.13144954555978,
    2.11990529922125,
    2.10981557783332,
    2.10092204024104,
    2.09302405440831,
    2.08596344726586,
    2.07961384472768,
    2.07387306790403,
    2.06865761041905,
    2.06389856162803,
    2.05953855275330,
    2.05552943864287,
    2.05183051648029,
    2.04840714179525,
    2.04522964213270,
    2.04227245630124,
];

/// Two-sided 97.5% quantile of Student's t with `dof` degrees of freedom (for 95% intervals).
///
/// Exact (tabulated) for `dof ≤ 30`; beyond, the Cornish–Fisher expansion of the t quantile in
/// powers of 1/ν around the normal quantile z = 1.959964 (Abramowitz and Stegun 26.7.5, terms to
/// ν⁻⁴), whose error is below 3·10⁻⁸ for ν ≥ 31. `dof = 0` gives infinity.
pub fn student_t_975(dof: u64) -> f64 {
    match dof {
        0 => f64::INFINITY,
        1..=30 => T975[(dof - 1) as usize],
        _ => {
            let z: f64 = 1.959_963_984_540_054;
            let n = dof as f64;
            let z2 = z * z;
            let g1 = z * (z2 + 1.0) / 4.0;
            let g2 = z * ((5.0 * z2 + 16.0) * z2 + 3.0) / 96.0;
            let g3 = z * (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) / 384.0;
            let g4 =
                z * ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) / 92160.0;
            z + (g1 + (g2 + (g3 + g4 / n) / n) / n) / n
        }
    }
}

/// A 95% confidence interval of a mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanCi {
    /// The point estimate.
    pub mean: f64,
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

/// Batch means: `batches` holds (sum, count) per batch in time order; the estimate is the overall
/// mean and the interval is `mean ± t · s/√b` over the `b` non-empty batch means, each weighted
/// equally. `None` with fewer than two non-empty batches.
///
/// The overall mean is `Σ sum / Σ count`; `s` is the sample standard deviation (divisor b − 1) of
/// the batch means and `t` is [`student_t_975`]`(b − 1)`.
pub fn batch_means_ci(batches: &[(f64, u64)]) -> Option<MeanCi> {
    let (mut b, mut total, mut count) = (0u64, 0.0f64, 0u64);
    let (mut m_mean, mut m2) = (0.0f64, 0.0f64);
    for &(sum, n) in batches.iter().filter(|&&(_, n)| n > 0) {
        total += sum;
        count += n;
        // Welford's update over the batch means.
        b += 1;
        let m = sum / n as f64;
        let delta = m - m_mean;
        m_mean += delta / b as f64;
        m2 += delta * (m - m_mean);
    }
    if b < 2 {
        return None;
    }
    let mean = total / count as f64;
    let s = (m2 / (b - 1) as f64).sqrt();
    let half = student_t_975(b - 1) * s / (b as f64).sqrt();
    Some(MeanCi {
        mean,
        low: mean - half,
        high: mean + half,
    })
}

/// Kolmogorov–Smirnov statistic D of `samples` (sorted in place) against the continuous `cdf`.
///
/// `D = max_i max(F(x_(i)) − (i−1)/n, i/n − F(x_(i)))`; 0 for no samples.
pub fn ks_statistic(samples: &mut [f64], cdf: impl Fn(f64) -> f64) -> f64 {
    samples.sort_unstable_by(f64::total_cmp);
    let n = samples.len() as f64;
    let mut d = 0.0f64;
    for (i, &x) in samples.iter().enumerate() {
        let f = cdf(x);
        let below = i as f64 / n;
        let above = (i + 1) as f64 / n;
        d = d.max(f - below).max(above - f);
    }
    d
}

/// The limiting Kolmogorov survival function `Q(λ) = P(√n·D > λ)` as n → ∞.
pub fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda.is_nan() || lambda <= 0.0 {
        return 1.0;
    }
    let q = if lambda < 1.18 {
        // 1 − K(λ), K(λ) = √(2π)/λ Σ e^{−(2k−1)²π²/(8λ²)}: the terms fall off at least as
        // e^{−8k·0.89}, so 6 terms reach double precision.
        let c = -std::f64::consts::PI * std::f64::consts::PI / (8.0 * lambda * lambda);
        let mut s = 0.0;
        for k in 1..=6 {
            let j = (2 * k - 1) as f64;
            s += (c * j * j).exp();
        }
        1.0 - (2.0 * std::f64::consts::PI).sqrt() / lambda * s
    } else {
        // 2 Σ (−1)^{k−1} e^{−2k²λ²}: at λ ≥ 1.18 the terms fall off at least as e^{−2.78k²}.
        let mut s = 0.0;
        for k in 1..=8 {
            let kf = k as f64;
            let term = (-2.0 * kf * kf * lambda * lambda).exp();
            s += if k % 2 == 1 { term } else { -term };
        }
        2.0 * s
    };
    q.clamp(0.0, 1.0)
}

/// Asymptotic p-value of a KS statistic `d` from `n` samples (Stephens' small-sample correction).
pub fn ks_pvalue(d: f64, n: usize) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let sn = (n as f64).sqrt();
    kolmogorov_q((sn + 0.12 + 0.11 / sn) * d)
}

/// KS distance between the distribution in a nanosecond histogram and `cdf` (taking seconds):
/// the largest gap between the empirical and theoretical CDF at the histogram's bucket edges.
///
/// A bucket holds the integer nanoseconds `lo..=hi`; its edges are taken half a nanosecond outside,
/// at `lo − ½` and `hi + ½` ns, where the empirical CDF is exactly the fraction of values below
/// (resp. up to) the bucket, also when `cdf` has an atom at a whole nanosecond (the service time
/// of M/D/1, say). Between recorded buckets the empirical CDF is flat and `cdf` monotone, so these
/// edges give the supremum for the binned data. 0 for an empty histogram.
pub fn ks_histogram(h: &Histogram<u64>, cdf: impl Fn(f64) -> f64) -> f64 {
    let n = h.len();
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    let mut cum = 0u64;
    let mut d = 0.0f64;
    for v in h.iter_recorded() {
        let hi = v.value_iterated_to();
        let lo = h.lowest_equivalent(hi);
        let before = cum as f64 / n;
        cum += v.count_at_value();
        let after = cum as f64 / n;
        let f_lo = cdf((lo as f64 - 0.5) * 1e-9);
        let f_hi = cdf((hi as f64 + 0.5) * 1e-9);
        d = d.max((f_lo - before).abs()).max((after - f_hi).abs());
    }
    d
}

/// KS distance between a distribution known only through cumulative counts at fixed edges (a
/// Prometheus histogram's `le` buckets) and `cdf`: `max_k |cum_k/n − cdf(edge_k)|` over the
/// edges, `n` the total count (the `+Inf` bucket). The empirical CDF is known only at the edges,
/// so this is a lower bound of the KS distance of the samples themselves (the supremum over
/// every x is at least that over the edges). 0 when `n` is 0.
pub fn ks_edges(edges: &[f64], cumulative: &[u64], n: u64, cdf: impl Fn(f64) -> f64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    edges
        .iter()
        .zip(cumulative)
        .filter(|(x, _)| x.is_finite())
        .map(|(&x, &c)| (c as f64 / n - cdf(x)).abs())
        .fold(0.0, f64::max)
}

/// The Dvoretzky–Kiefer–Wolfowitz bound of the KS distance of `n` i.i.d. samples at level
/// `alpha`: `P(D > ε) ≤ 2e^{−2nε²}` (Massart's constant) for every n, so
/// `ε = √(ln(2/α)/(2n))` is exceeded with probability at most α. A little above the exact
/// critical value (conservative); infinite for no samples.
pub fn ks_critical(n: u64, alpha: f64) -> f64 {
    if n == 0 {
        return f64::INFINITY;
    }
    ((2.0 / alpha).ln() / (2.0 * n as f64)).sqrt()
}

/// Mean and coefficient of variation of a slice (`None` when empty or the mean is 0).
///
/// The coefficient of variation is `s / mean` with `s` the sample standard deviation (divisor
/// n − 1; 0 for one value). An exponential distribution has CV 1, a constant one 0.
pub fn mean_cv(xs: &[f64]) -> Option<(f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if mean == 0.0 || !mean.is_finite() {
        return None;
    }
    let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
    let sd = if xs.len() > 1 {
        (ss / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Some((mean, sd / mean))
}
