//! Statistics shared by both programs.
//!
//! - Latency histograms: HDR histograms of nanoseconds with fixed bounds (1 ns to one hour, three
//!   significant digits) created up front, so recording never allocates or resizes.
//! - Serialization of a histogram to a string (V2 + DEFLATE, base64) for JSON results and merging.
//! - Confidence intervals by batch means (Student t), Kolmogorov–Smirnov against a CDF.
use hdrhistogram::Histogram;

/// Highest value a latency histogram records, in nanoseconds (one hour); larger values are clamped.
pub const HIST_MAX_NS: u64 = 3_600_000_000_000;
/// Significant decimal digits kept by latency histograms.
pub const HIST_SIGFIG: u8 = 3;

/// A new latency histogram in nanoseconds with the fixed bounds above.
pub fn new_histogram() -> Histogram<u64> { todo!() }

/// Records `ns` (clamped to `[1, HIST_MAX_NS]`) without allocating.
pub fn record_ns(h: &mut Histogram<u64>, ns: u64) { todo!() }

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
pub fn summarize(h: &Histogram<u64>) -> Summary { todo!() }

/// Serializes a histogram (V2 format, DEFLATE compressed, standard base64).
pub fn histogram_to_string(h: &Histogram<u64>) -> String { todo!() }

/// The inverse of [`histogram_to_string`]; the result has the fixed bounds of [`new_histogram`].
pub fn histogram_from_string(s: &str) -> Result<Histogram<u64>, StatsError> { todo!() }

/// Why a statistic could not be computed or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    /// The serialized histogram is not valid base64 or V2 data.
    #[error("invalid serialized histogram: {0}")]
    BadHistogram(String),
}

/// Two-sided 97.5% quantile of Student's t with `dof` degrees of freedom (for 95% intervals).
pub fn student_t_975(dof: u64) -> f64 { todo!() }

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
pub fn batch_means_ci(batches: &[(f64, u64)]) -> Option<MeanCi> { todo!() }

/// Kolmogorov–Smirnov statistic D of `samples` (sorted in place) against the continuous `cdf`.
pub fn ks_statistic(samples: &mut [f64], cdf: impl Fn(f64) -> f64) -> f64 { todo!() }

/// Asymptotic p-value of a KS statistic `d` from `n` samples (Stephens' small-sample correction).
pub fn ks_pvalue(d: f64, n: usize) -> f64 { todo!() }

/// KS distance between the distribution in a nanosecond histogram and `cdf` (taking seconds):
/// the largest gap between the empirical and theoretical CDF at the histogram's bucket edges.
pub fn ks_histogram(h: &Histogram<u64>, cdf: impl Fn(f64) -> f64) -> f64 { todo!() }

/// Mean and coefficient of variation of a slice (`None` when empty or the mean is 0).
pub fn mean_cv(xs: &[f64]) -> Option<(f64, f64)> { todo!() }
