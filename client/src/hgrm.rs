//! `--hgrm FILE`: the latency distributions as HdrHistogram percentile-distribution text, the
//! format of HdrHistogram's `outputPercentileDistribution` (what `wrk2 -U` prints and what
//! HdrHistogram's plotter reads).
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!     0.052223 0.000000000000          1           1.00
//!     …
//!     1.376255 0.990625000000       1982         106.67
//!     2.260991 1.000000000000       2000
//! #[Mean    =     0.540271, StdDeviation   =     0.391227]
//! #[Max     =     2.260991, Total count    =         2000]
//! #[Buckets =           32, SubBuckets     =         2048]
//! ```
//!
//! A header, a blank line, then one row per percentile tick: the value (the highest value
//! equivalent to the histogram's bucket at that percentile), the percentile as a fraction, the
//! count of values up to that value and 1/(1 − percentile) (left out on the last row, at 1).
//! The ticks are HdrHistogram's default: [`TICKS_PER_HALF_DISTANCE`] = 5 equal steps in every
//! half of the distance left to 100% (0, 0.1, … 0.5, 0.55, … 0.75, 0.775, …), from the `hdrhistogram`
//! crate's quantile iterator. Then the footer: the mean and standard deviation, the maximum and
//! the count, and the histogram's bucket and sub-bucket counts.
//!
//! **Units.** Values are in milliseconds, the unit the plotter labels its axis with (the
//! histograms hold nanoseconds: scaled by 1/10⁶), printed with six decimals where wrk2 prints
//! three (its histograms hold microseconds): a nanosecond histogram's three significant digits
//! then survive for any latency down to a microsecond, where three decimals would round a
//! 35 µs loopback latency to 0.035 ms.
//!
//! **Files.** `FILE` gets the latency from the intended send time (corrected for coordinated
//! omission, `latency_us`), and a file beside it the latency from the write
//! (`latency_uncorrected_us`): `FILE` with `.uncorrected` before its extension (`run.hgrm` →
//! `run.uncorrected.hgrm`), or after its name if it has none (`run` → `run.uncorrected`), so
//! the plotter can show both.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use queuelab_common::stats::histogram_from_string;

use crate::result::RunResult;

/// Percentile ticks per half distance to 100% (HdrHistogram's default).
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// Nanoseconds per millisecond: the histograms' unit per the file's.
pub const NS_PER_UNIT: f64 = 1e6;
/// Decimals of the values (nanoseconds in milliseconds).
const DECIMALS: usize = 6;

/// The percentile distribution of a nanosecond histogram, in milliseconds (see the module docs).
pub fn percentile_distribution(h: &Histogram<u64>) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let ms = |ns: f64| ns / NS_PER_UNIT;
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value = ms(v.value_iterated_to() as f64);
            if q < 1.0 {
                let _ = writeln!(
                    o,
                    "{value:12.DECIMALS$} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(o, "{value:12.DECIMALS$} {q:2.12} {total:10}");
            }
        }
    }
    let (max, mean, stdev) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (ms(h.max() as f64), ms(h.mean()), ms(h.stdev()))
    };
    let _ = writeln!(
        o,
        "#[Mean    = {mean:12.DECIMALS$}, StdDeviation   = {stdev:12.DECIMALS$}]"
    );
    let _ = writeln!(
        o,
        "#[Max     = {max:12.DECIMALS$}, Total count    = {:12}]",
        h.len()
    );
    let _ = writeln!(
        o,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_buckets(h)
    );
    o
}

/// The histogram's sub-buckets per bucket: it holds (buckets + 1) halves of them.
fn sub_buckets(h: &Histogram<u64>) -> usize {
    2 * h.distinct_values() / (usize::from(h.buckets()) + 1)
}

/// The file of the uncorrected latency beside `path` (see the module docs).
pub fn uncorrected_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let derived = match (path.file_stem(), path.extension()) {
        (Some(stem), Some(ext)) => format!(
            "{}.uncorrected.{}",
            stem.to_string_lossy(),
            ext.to_string_lossy()
        ),
        _ => format!("{}.uncorrected", name.unwrap_or_default()),
    };
    path.with_file_name(derived)
}

/// Writes the corrected latency of `r` to `path` and the uncorrected one beside it.
pub fn write_files(r: &RunResult, path: &Path) -> anyhow::Result<()> {
    for (file, hist, what) in [
        (path.to_path_buf(), &r.histogram, "histogram"),
        (
            uncorrected_path(path),
            &r.histogram_uncorrected,
            "histogram_uncorrected",
        ),
    ] {
        let h = histogram_from_string(hist).with_context(|| format!("the result's {what}"))?;
        std::fs::write(&file, percentile_distribution(&h))
            .with_context(|| format!("{}", file.display()))?;
    }
    Ok(())
}

/// A percentile-distribution text read back (for tests, here and in the integration tests).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    /// (value, percentile, total count, 1/(1 − percentile) where given) per row.
    pub rows: Vec<(f64, f64, u64, Option<f64>)>,
    /// Mean and standard deviation of the footer.
    pub mean: f64,
    /// Standard deviation of the footer.
    pub stdev: f64,
    /// Maximum of the footer.
    pub max: f64,
    /// Total count of the footer.
    pub count: u64,
    /// Buckets and sub-buckets of the footer.
    pub buckets: (u64, u64),
}

/// Reads a text written by [`percentile_distribution`] (or by HdrHistogram); `None` if it is
/// not one.
pub fn parse(text: &str) -> Option<Parsed> {
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next()?.split_whitespace().collect();
    if head != ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"] {
        return None;
    }
    let mut p = Parsed::default();
    // "#[Name = x, Name = y]": the two numbers.
    let pair = |l: &str| -> Option<(String, String)> {
        let inner = l.strip_prefix("#[")?.strip_suffix(']')?;
        let (a, b) = inner.split_once(',')?;
        Some((
            a.split_once('=')?.1.trim().to_owned(),
            b.split_once('=')?.1.trim().to_owned(),
        ))
    };
    for line in lines {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if t.starts_with("#[Mean") {
            let (a, b) = pair(t)?;
            (p.mean, p.stdev) = (a.parse().ok()?, b.parse().ok()?);
        } else if t.starts_with("#[Max") {
            let (a, b) = pair(t)?;
            (p.max, p.count) = (a.parse().ok()?, b.parse().ok()?);
        } else if t.starts_with("#[Buckets") {
            let (a, b) = pair(t)?;
            p.buckets = (a.parse().ok()?, b.parse().ok()?);
        } else {
            let f: Vec<&str> = t.split_whitespace().collect();
            if !(3..=4).contains(&f.len()) {
                return None;
            }
            let inv = match f.get(3) {
                Some(x) => Some(x.parse().ok()?),
                None => None,
            };
            p.rows.push((
                f[0].parse().ok()?,
                f[1].parse().ok()?,
                f[2].parse().ok()?,
                inv,
            ));
        }
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use queuelab_common::stats::{new_histogram, record_ns};

    /// The quantile ticks by their definition: steps of 1/(2·T·2^k) while the distance left to
    /// 1 lies in (2^-(k+1), 2^-k].
    fn ticks_after(q: f64) -> f64 {
        let halvings = (1.0 / (1.0 - q)).log2().floor();
        q + 1.0 / (f64::from(2 * TICKS_PER_HALF_DISTANCE) * 2f64.powf(halvings))
    }

    #[test]
    fn the_distribution_reads_back_to_the_histogram() {
        // Spread-out values from 20 µs to about 80 ms, some repeated.
        let values: Vec<u64> = (1..=5000u64)
            .map(|i| 20_000 + (i * i * 7919) % 80_000_000)
            .collect();
        let mut h = new_histogram();
        for &v in &values {
            record_ns(&mut h, v);
        }
        let text = percentile_distribution(&h);
        assert!(
            text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"),
            "{text}"
        );
        let p = parse(&text).expect("parses");
        let n = values.len() as u64;
        assert!(p.rows.len() > 20, "{} rows", p.rows.len());
        // Percentiles: 0 first, then the ticks in order, the last at 1 with no inverse.
        assert_eq!(p.rows[0].1, 0.0);
        let mut want_q = 0.0;
        for (i, &(value, q, count, inv)) in p.rows.iter().enumerate() {
            let last = i + 1 == p.rows.len();
            if last {
                assert_eq!((q, count, inv), (1.0, n, None), "last row");
                assert_eq!(value, h.max() as f64 / 1e6);
            } else {
                // The quantile iterator may jump to 1 early, never skip a tick before.
                assert!((q - want_q).abs() < 1e-12, "row {i}: {q} against {want_q}");
                want_q = ticks_after(want_q);
                let inv = inv.expect("every row but the last has 1/(1-p)");
                assert!((inv - 1.0 / (1.0 - q)).abs() <= 0.005 + 1e-9, "row {i}");
            }
            // The value is the histogram's at that percentile, in ms to the nanosecond, and
            // the count is of the recorded values up to it (exactly, from the values).
            let ns = (value * 1e6).round() as u64;
            assert_eq!(ns, h.highest_equivalent(ns), "row {i}: a bucket's top");
            let up_to = values
                .iter()
                .filter(|&&v| h.highest_equivalent(v) <= ns)
                .count() as u64;
            assert_eq!(count, up_to, "row {i}");
            assert!(count as f64 >= q * n as f64 * (1.0 - 1e-12), "row {i}");
            // ... and it is the first bucket to reach the percentile: the buckets below hold
            // fewer values, or exactly as many (the iterator sums its ticks in floating point,
            // so 0.1 + 0.1 + 0.1 lies just above 0.3 and a bucket that reaches 30% exactly
            // falls short of it; the 12 decimals printed round that away).
            let below = values
                .iter()
                .filter(|&&v| h.highest_equivalent(v) < h.lowest_equivalent(ns))
                .count() as u64;
            assert!(below == 0 || below as f64 <= q * n as f64, "row {i}");
            if !last && (below as f64) < q * n as f64 {
                assert_eq!(
                    h.highest_equivalent(h.value_at_quantile(q)),
                    ns,
                    "row {i}: the histogram's own value at {q}"
                );
            }
        }
        // Monotone in all three columns.
        for w in p.rows.windows(2) {
            assert!(
                w[0].0 <= w[1].0 && w[0].1 <= w[1].1 && w[0].2 <= w[1].2,
                "{w:?}"
            );
        }
        // The footer.
        assert_eq!(p.count, n);
        assert_eq!(p.max, h.max() as f64 / 1e6);
        assert!(
            (p.mean - h.mean() / 1e6).abs() <= 0.5e-6,
            "{} {}",
            p.mean,
            h.mean()
        );
        assert!((p.stdev - h.stdev() / 1e6).abs() <= 0.5e-6);
        assert_eq!(p.buckets, (u64::from(h.buckets()), 2048));
    }

    #[test]
    fn an_empty_histogram_has_a_header_and_a_footer() {
        let p = parse(&percentile_distribution(&new_histogram())).expect("parses");
        assert!(p.rows.is_empty());
        assert_eq!((p.count, p.max, p.mean), (0, 0.0, 0.0));
        // One value: a single row at 0 and the last at 1.
        let mut h = new_histogram();
        record_ns(&mut h, 1_234_567);
        let p = parse(&percentile_distribution(&h)).expect("parses");
        assert_eq!(p.rows.len(), 2, "{p:?}");
        assert_eq!((p.rows[0].1, p.rows[1].1), (0.0, 1.0));
        assert_eq!(p.rows[1].0, h.highest_equivalent(1_234_567) as f64 / 1e6);
        assert_eq!(p.count, 1);
    }

    #[test]
    fn the_uncorrected_file_sits_beside() {
        let u = |p: &str| uncorrected_path(Path::new(p));
        assert_eq!(u("run.hgrm"), PathBuf::from("run.uncorrected.hgrm"));
        assert_eq!(u("/tmp/a/run"), PathBuf::from("/tmp/a/run.uncorrected"));
        assert_eq!(u("out/x.y.hgrm"), PathBuf::from("out/x.y.uncorrected.hgrm"));
        assert_eq!(u(".hgrm"), PathBuf::from(".hgrm.uncorrected"));
    }
}
