//! The batches of the confidence interval of the mean latency (adaptive batch means).
//!
//! Successive latencies of a queue are correlated, so the interval of their mean comes from
//! *batch means*: the measured window is cut into batches of equal length, by completion time,
//! and the Student t interval is taken over the batch means
//! ([`queuelab_common::stats::batch_means_ci`]). The batch length must grow with the run, so
//! that any run ends with enough batches (at least [`MIN_BATCHES`]) and not too many (few, long
//! batches keep their means nearly independent): the classic adaptive scheme. Each worker keeps
//! [`SLOTS`] = 2B slots (sum and count of the latencies completed in each), starting at
//! [`FIRST_LENGTH_NS`]; when a completion falls beyond the last slot, neighbours are merged
//! pairwise (slots 2i and 2i + 1 become slot i) and the length doubles. So a run of any length
//! beyond B · [`FIRST_LENGTH_NS`] ends with between B and 2B batches of equal length, and the
//! sums are kept exactly (integer nanoseconds). The batches do not depend on the time series'
//! `--interval`.
//!
//! The slots are a fixed array inside the worker's accounting ([`BatchAcc`]): recording is a
//! division and three additions, never an allocation. Completion times are counted from the
//! start of the measurement and, once the worker's schedule has stopped, held at its end, so
//! that the answers that drain after the schedule count in the last batch instead of stretching
//! the batches over the drain. At the end the coordinator brings the workers' slots to the
//! longest length (merging pairwise, which keeps them aligned, since all start at the same
//! instant) and adds them slot by slot; the last batch, when the window covered less than half
//! of it, joins the one before (like a short last interval of the time series), so no batch of
//! a few answers weighs as much as a full one. The result keeps them ([`Batches`]) so that
//! `qload merge` can combine runs.
//!
//! The interval ([`Batches::ci`]) needs at least [`MIN_BATCHES`] non-empty batches (Law and
//! Kelton advise 10 to 30); with fewer it is left out. Its bounds are clamped to the range of
//! the latencies observed: a mean cannot lie below the smallest value nor above the largest, so
//! a lower bound is never negative.
use hdrhistogram::Histogram;
use queuelab_common::stats::{self, MeanCi};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::result::{self, Interval, Latency};

/// B: a run ends with between B and 2B batches.
pub const HALF_SLOTS: usize = 16;
/// 2B: the slots each worker keeps.
pub const SLOTS: usize = 2 * HALF_SLOTS;
/// Length of a batch at the start of a run (1 ms), doubled whenever the run outgrows the slots.
pub const FIRST_LENGTH_NS: u64 = 1_000_000;
/// Fewest non-empty batches the interval of the mean is computed from.
pub const MIN_BATCHES: usize = 10;
/// Most batches a merge lines up by time (more: they are concatenated instead).
const MAX_MERGED_BATCHES: usize = 1 << 16;
/// Most answers a batch read from a file may claim (2^53, where f64 stops counting exactly; no
/// run comes near it).
const MAX_BATCH_COUNT: u64 = 1 << 53;

/// One worker's batches (or several workers' added): see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchAcc {
    length_ns: u64,
    /// Slots holding something or reached by the window: `0..used`.
    used: usize,
    sum_ns: [u128; SLOTS],
    sum_uncorrected_ns: [u128; SLOTS],
    count: [u64; SLOTS],
}

impl Default for BatchAcc {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchAcc {
    /// Empty slots of [`FIRST_LENGTH_NS`].
    pub fn new() -> Self {
        Self {
            length_ns: FIRST_LENGTH_NS,
            used: 0,
            sum_ns: [0; SLOTS],
            sum_uncorrected_ns: [0; SLOTS],
            count: [0; SLOTS],
        }
    }

    /// The current batch length, ns.
    pub fn length_ns(&self) -> u64 {
        self.length_ns
    }

    /// The slots in use (the batches so far, empty ones included).
    pub fn used(&self) -> usize {
        self.used
    }

    /// Slot `i`: (sum of latencies ns, sum of uncorrected latencies ns, count).
    pub fn slot(&self, i: usize) -> Option<(u128, u128, u64)> {
        (i < self.used).then(|| (self.sum_ns[i], self.sum_uncorrected_ns[i], self.count[i]))
    }

    /// The index of the slot of time `t_ns` (since the start), merging slots until it fits.
    fn index(&mut self, t_ns: u64) -> usize {
        loop {
            let i = t_ns / self.length_ns;
            if i < SLOTS as u64 {
                // Below SLOTS, so it fits in usize.
                return i as usize;
            }
            self.fold();
        }
    }

    /// Records a completion at `t_ns` after the start of the measurement.
    #[inline]
    pub fn record(&mut self, t_ns: u64, latency_ns: u64, uncorrected_ns: u64) {
        let i = self.index(t_ns);
        self.sum_ns[i] += u128::from(latency_ns);
        self.sum_uncorrected_ns[i] += u128::from(uncorrected_ns);
        self.count[i] += 1;
        self.used = self.used.max(i + 1);
    }

    /// Merges neighbours pairwise and doubles the length.
    fn fold(&mut self) {
        for i in 0..HALF_SLOTS {
            let (a, b) = (2 * i, 2 * i + 1);
            self.sum_ns[i] = self.sum_ns[a] + self.sum_ns[b];
            self.sum_uncorrected_ns[i] = self.sum_uncorrected_ns[a] + self.sum_uncorrected_ns[b];
            self.count[i] = self.count[a] + self.count[b];
        }
        for i in HALF_SLOTS..SLOTS {
            self.sum_ns[i] = 0;
            self.sum_uncorrected_ns[i] = 0;
            self.count[i] = 0;
        }
        self.used = self.used.div_ceil(2);
        // Saturating: past 2^63 ns every time fits in slot 0, so the loop of `index` ends.
        self.length_ns = self.length_ns.saturating_mul(2);
    }

    /// Merges pairwise until the length is at least `length_ns`.
    pub fn coarsen_to(&mut self, length_ns: u64) {
        while self.length_ns < length_ns && self.length_ns < u64::MAX {
            self.fold();
        }
    }

    /// Adds another worker's batches (same start): both brought to the longer length first.
    pub fn add(&mut self, o: &BatchAcc) {
        let mut o = o.clone();
        o.coarsen_to(self.length_ns);
        self.coarsen_to(o.length_ns);
        for i in 0..o.used {
            self.sum_ns[i] += o.sum_ns[i];
            self.sum_uncorrected_ns[i] += o.sum_uncorrected_ns[i];
            self.count[i] += o.count[i];
        }
        self.used = self.used.max(o.used);
    }

    /// The batches of a window that ended `end_ns` after its start: slots up to the end (empty
    /// ones included), the last joined to the one before when the window covered less than half
    /// of it (see the module docs).
    pub fn finish(&self, end_ns: u64) -> Batches {
        let mut acc = self.clone();
        if end_ns > 0 {
            // The slot holding the window's last instant is reached, even if empty.
            let last = acc.index(end_ns - 1);
            acc.used = acc.used.max(last + 1);
        }
        let mut n = acc.used;
        if n >= 2 {
            let covered = end_ns.saturating_sub((n as u64 - 1).saturating_mul(acc.length_ns));
            if covered < acc.length_ns / 2 {
                let (a, b) = (n - 2, n - 1);
                acc.sum_ns[a] += acc.sum_ns[b];
                acc.sum_uncorrected_ns[a] += acc.sum_uncorrected_ns[b];
                acc.count[a] += acc.count[b];
                n -= 1;
            }
        }
        let us = |ns: u128| ns as f64 / 1e3;
        Batches {
            length_s: acc.length_ns as f64 / 1e9,
            sum_us: acc.sum_ns[..n].iter().map(|&s| us(s)).collect(),
            sum_uncorrected_us: acc.sum_uncorrected_ns[..n].iter().map(|&s| us(s)).collect(),
            count: acc.count[..n].to_vec(),
        }
    }
}

/// The batches of the 95% interval of the mean latency: the latencies completed in each
/// `length_s` of the measured window, from its start (answers that came after the window count
/// in the last batch), so that `qload merge` can compute the interval of the merged run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Batches {
    /// Length of each batch, seconds (the last may hold up to 1.5 lengths: a short end of the
    /// window joins the batch before it).
    pub length_s: f64,
    /// Sum of the latencies (from the intended time) completed in each batch, µs.
    pub sum_us: Vec<f64>,
    /// Sum of their uncorrected latencies (from the write), µs.
    pub sum_uncorrected_us: Vec<f64>,
    /// Completions in each batch.
    pub count: Vec<u64>,
}

/// How [`merge`] combined the parts' batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combined {
    /// Batch by batch at the same time (the parts ran together).
    ByTime,
    /// One part's batches after the other's.
    Concatenated,
}

impl Batches {
    /// Whether the three lists have one entry per batch and the numbers are usable (a result
    /// read from a file may hold anything).
    pub fn is_valid(&self) -> bool {
        let n = self.count.len();
        self.length_s.is_finite()
            && self.length_s > 0.0
            && self.sum_us.len() == n
            && self.sum_uncorrected_us.len() == n
            && self.count.iter().all(|&c| c <= MAX_BATCH_COUNT)
            && self
                .sum_us
                .iter()
                .chain(&self.sum_uncorrected_us)
                .all(|s| s.is_finite() && *s >= 0.0)
    }

    /// The batches that hold at least one completion.
    pub fn nonempty(&self) -> usize {
        self.count.iter().filter(|&&n| n > 0).count()
    }

    /// The 95% interval of the mean latency (`uncorrected`: from the write) over the batches,
    /// clamped to `[min_us, max_us]` (the smallest and largest latency observed) and to 0:
    /// `None` with fewer than [`MIN_BATCHES`] non-empty batches, or for invalid batches.
    pub fn ci(&self, uncorrected: bool, min_us: f64, max_us: f64) -> Option<MeanCi> {
        if !self.is_valid() || self.nonempty() < MIN_BATCHES {
            return None;
        }
        let sums = if uncorrected {
            &self.sum_uncorrected_us
        } else {
            &self.sum_us
        };
        // The total must fit (merged batches read from files could claim anything).
        self.count
            .iter()
            .try_fold(0u64, |total, &n| total.checked_add(n))?;
        let pairs: Vec<(f64, u64)> = sums
            .iter()
            .copied()
            .zip(self.count.iter().copied())
            .collect();
        stats::batch_means_ci(&pairs)
            .filter(|ci| ci.mean.is_finite() && ci.low.is_finite() && ci.high.is_finite())
            .map(|ci| clamp(ci, min_us, max_us))
    }

    /// Pairwise merges until the length is `length_s` (to a part in a billion); `false` (and
    /// unchanged) when it is not a power-of-two multiple of this length.
    fn coarsen_to(&mut self, length_s: f64) -> bool {
        let mut b = self.clone();
        while b.length_s < length_s * (1.0 - 1e-9) {
            let pair = |v: &[f64]| v.chunks(2).map(|c| c.iter().sum()).collect::<Vec<f64>>();
            b.sum_us = pair(&b.sum_us);
            b.sum_uncorrected_us = pair(&b.sum_uncorrected_us);
            b.count = b
                .count
                .chunks(2)
                .map(|c| c.iter().fold(0u64, |a, &n| a.saturating_add(n)))
                .collect();
            b.length_s *= 2.0;
        }
        if (b.length_s - length_s).abs() > 1e-9 * length_s {
            return false;
        }
        b.length_s = length_s;
        *self = b;
        true
    }
}

/// `ci` with its bounds held to `[max(min, 0), max]`.
pub fn clamp(ci: MeanCi, min_us: f64, max_us: f64) -> MeanCi {
    let floor = min_us.max(0.0);
    let ceiling = max_us.max(floor);
    MeanCi {
        mean: ci.mean,
        low: ci.low.clamp(floor, ceiling),
        high: ci.high.clamp(floor, ceiling),
    }
}

/// The batches of several parts as one: `parts` holds each part's batches and the start of its
/// window in seconds after the earliest (`None`: unknown). When the parts ran `together` (their
/// windows form one stretch of time), every start is known and the lengths can be brought to
/// the longest by pairwise merges, the batches are added by time: a part's batch `j` goes into
/// the merged batch `j + round(start / length)`. Otherwise they are concatenated, in order of
/// start (else of the parts), brought to the longest length where possible (else kept as they
/// are, and `length_s` is the longest). `None` when a part's batches are invalid.
pub fn merge(parts: &[(&Batches, Option<f64>)], together: bool) -> Option<(Batches, Combined)> {
    if parts.iter().any(|(b, _)| !b.is_valid()) {
        return None;
    }
    let length_s = parts.iter().map(|(b, _)| b.length_s).fold(0.0, f64::max);
    let mut all_matched = true;
    let mut brought: Vec<(Batches, Option<f64>)> = Vec::with_capacity(parts.len());
    for (b, start) in parts {
        let mut b = (*b).clone();
        all_matched &= b.coarsen_to(length_s);
        brought.push((b, *start));
    }
    let starts: Option<Vec<f64>> = brought.iter().map(|(_, s)| *s).collect();
    if let (true, true, Some(starts)) = (together, all_matched, starts) {
        let shifts: Vec<usize> = starts
            .iter()
            .map(|s| {
                (s.max(0.0) / length_s)
                    .round()
                    .min(MAX_MERGED_BATCHES as f64) as usize
            })
            .collect();
        let n = brought
            .iter()
            .zip(&shifts)
            .map(|((b, _), s)| b.count.len() + s)
            .max()
            .unwrap_or(0);
        if n <= MAX_MERGED_BATCHES {
            let mut m = Batches {
                length_s,
                sum_us: vec![0.0; n],
                sum_uncorrected_us: vec![0.0; n],
                count: vec![0; n],
            };
            for ((b, _), &s) in brought.iter().zip(&shifts) {
                for j in 0..b.count.len() {
                    m.sum_us[j + s] += b.sum_us[j];
                    m.sum_uncorrected_us[j + s] += b.sum_uncorrected_us[j];
                    m.count[j + s] = m.count[j + s].saturating_add(b.count[j]);
                }
            }
            return Some((m, Combined::ByTime));
        }
    }
    // Stable: parts without a known start keep their order, after those with one.
    brought.sort_by(|a, b| {
        let key = |s: Option<f64>| s.unwrap_or(f64::INFINITY);
        key(a.1).total_cmp(&key(b.1))
    });
    let mut m = Batches {
        length_s,
        ..Batches::default()
    };
    for (b, _) in &brought {
        m.sum_us.extend_from_slice(&b.sum_us);
        m.sum_uncorrected_us
            .extend_from_slice(&b.sum_uncorrected_us);
        m.count.extend_from_slice(&b.count);
    }
    Some((m, Combined::Concatenated))
}

/// The latency summary of the nanosecond histogram `h` with the interval of its mean from
/// `batches` (`uncorrected`: the latency from the write).
pub fn latency(h: &Histogram<u64>, batches: &Batches, uncorrected: bool) -> Latency {
    let l = Latency::from_histogram(h, None);
    Latency::from_histogram(h, batches.ci(uncorrected, l.min, l.max))
}

/// The interval of the mean over the intervals of a time series, as results without batches
/// (of older versions) give it: each interval a batch ([`result::batch_ci`]), with the same
/// minimum of [`MIN_BATCHES`] and the same clamps as [`Batches::ci`].
pub fn interval_ci(
    intervals: &[Interval],
    uncorrected: bool,
    min_us: f64,
    max_us: f64,
) -> Option<MeanCi> {
    if result::batch_count(intervals) < MIN_BATCHES {
        return None;
    }
    result::batch_ci(intervals, uncorrected).map(|ci| clamp(ci, min_us, max_us))
}

#[cfg(test)]
mod tests {
    use super::*;
    use queuelab_common::samplers::rng;
    use rand::Rng as _;

    /// Uniform on [0, 1) from the top 53 bits.
    fn unit(r: &mut queuelab_common::samplers::Rng) -> f64 {
        (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn any_run_ends_with_b_to_2b_equal_batches_and_exact_sums() {
        let mut r = rng(42, 0);
        for case in 0..300 {
            // Runs from 40 ms to about 3 hours, from 1 to 3000 completions at random times.
            let end_ns = (40e6 * (2.0f64).powf(unit(&mut r) * 18.0)) as u64;
            let n = 1 + (r.next_u64() % 3000) as usize;
            let mut acc = BatchAcc::new();
            let mut samples = Vec::with_capacity(n);
            let mut t = 0u64;
            for _ in 0..n {
                // Increasing times (completions come in order), ending at end_ns at the latest.
                t = (t + (unit(&mut r) * 2.0 * end_ns as f64 / n as f64) as u64).min(end_ns);
                let lat = r.next_u64() % 10_000_000_000;
                let unc = lat / 3;
                acc.record(t, lat, unc);
                samples.push((t, lat, unc));
            }
            let len = acc.length_ns();
            // Slots of equal length, each holding exactly the samples of its span of time.
            assert!(acc.used() <= SLOTS);
            for i in 0..acc.used() {
                let (lo, hi) = (i as u64 * len, (i as u64 + 1) * len);
                let mine = samples.iter().filter(|(t, _, _)| (lo..hi).contains(t));
                let want = mine.fold((0u128, 0u128, 0u64), |a, &(_, l, u)| {
                    (a.0 + u128::from(l), a.1 + u128::from(u), a.2 + 1)
                });
                assert_eq!(acc.slot(i), Some(want), "case {case}, slot {i}");
            }
            let b = acc.finish(end_ns);
            // The run outgrew B slots of the first length: B..=2B batches.
            assert!(
                (HALF_SLOTS..=SLOTS).contains(&b.count.len()),
                "case {case}: {} batches over {end_ns} ns",
                b.count.len()
            );
            assert_eq!(b.count.iter().sum::<u64>(), n as u64, "case {case}");
            let total: u128 = samples.iter().map(|s| u128::from(s.1)).sum();
            let got: u128 = (0..acc.used()).map(|i| acc.slot(i).expect("used").0).sum();
            assert_eq!(got, total, "case {case}: sums kept exactly");
            // The batches cover the window: the last starts within 1.5 lengths of its end.
            let start_last = (b.count.len() as f64 - 1.0) * b.length_s;
            let end_s = end_ns as f64 / 1e9;
            assert!(start_last < end_s && end_s - start_last <= 1.5 * b.length_s + 1e-9);
            assert!(b.is_valid());
        }
    }

    #[test]
    fn workers_align_and_add_slot_by_slot() {
        // One worker saw 10 s, the other 100 ms: the short one is brought to the long length.
        let (mut a, mut b) = (BatchAcc::new(), BatchAcc::new());
        for k in 0..1000u64 {
            a.record(k * 10_000_000, 1_000, 500);
        }
        for k in 0..100u64 {
            b.record(k * 1_000_000, 3_000, 1_000);
        }
        assert!(b.length_ns() < a.length_ns());
        let mut sum = a.clone();
        sum.add(&b);
        assert_eq!(sum.length_ns(), a.length_ns());
        let (s0, u0, n0) = sum.slot(0).expect("slot 0");
        let (a0, au, an) = a.slot(0).expect("slot 0");
        // All of b's 100 ms lies in the first slot (10 s / 32 slots → 512 ms each).
        assert_eq!(a.length_ns(), 512_000_000);
        assert_eq!((s0, u0, n0), (a0 + 300_000, au + 100_000, an + 100));
        for i in 1..a.used() {
            assert_eq!(sum.slot(i), a.slot(i));
        }
        // Adding the other way round gives the same.
        let mut other = b.clone();
        other.add(&a);
        assert_eq!(other, sum);
    }

    #[test]
    fn a_short_end_joins_the_batch_before() {
        let mut acc = BatchAcc::new();
        for k in 0..20u64 {
            acc.record(k * 1_000_000 + 500_000, 1_000_000, 1_000_000);
        }
        // The window ends 0.3 ms into slot 20: that slot joins slot 19.
        acc.record(20_100_000, 4_000_000, 1_000_000);
        let b = acc.finish(20_300_000);
        assert_eq!(b.count.len(), 20);
        assert_eq!(b.count[19], 2);
        assert_eq!(b.sum_us[19], 5_000.0);
        // Ending 0.6 ms into it: a batch of its own.
        let b = acc.finish(20_600_000);
        assert_eq!((b.count.len(), b.count[20]), (21, 1));
        // A window reaching past the last completion gets its empty batches.
        let b = acc.finish(25_000_000);
        assert_eq!(b.count.len(), 25);
        assert_eq!(b.nonempty(), 21);
        // Nothing measured: no batch.
        assert_eq!(BatchAcc::new().finish(0).count.len(), 0);
    }

    /// A standard normal from two uniforms (Box–Muller).
    fn normal(r: &mut queuelab_common::samplers::Rng) -> f64 {
        let u = 1.0 - unit(r);
        let v = unit(r);
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// The interval covers the true mean of i.i.d. latencies in 95% of runs.
    ///
    /// Each replication: 496 latencies N(1000 µs, 200 µs) completing every 2 ms over a window
    /// of 992 ms, so the slots grow to 32 ms and the run ends with 31 batches of exactly 16
    /// answers. For normal data in equal batches the t interval covers exactly 95% (the
    /// truncation to integer nanoseconds moves the true mean by −0.5 ns, allowed for). Over
    /// R = 10,000 replications the number of covers is Binomial(R, 0.95): sd = √(R·0.95·0.05) =
    /// 21.8, and a correct program falls outside 9500 ± 4.89 sd (two-sided 10⁻⁶) = ±106 covers
    /// less than once in a million runs. The seed fixes the outcome; the bound is what any seed
    /// would meet.
    #[test]
    fn the_interval_covers_the_true_mean_95_percent_of_the_time() {
        const R: u64 = 10_000;
        const N: u64 = 496;
        let mut r = rng(7, 1);
        let mut covers = 0u64;
        let mut widths = 0.0;
        for _ in 0..R {
            let mut acc = BatchAcc::new();
            let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
            for k in 0..N {
                let lat = (1_000_000.0 + 200_000.0 * normal(&mut r)).max(1.0) as u64;
                lo = lo.min(lat as f64 / 1e3);
                hi = hi.max(lat as f64 / 1e3);
                acc.record(k * 2_000_000, lat, lat);
            }
            let b = acc.finish(992_000_000);
            assert_eq!(b.count, vec![16; 31]);
            let ci = b.ci(false, lo, hi).expect("enough batches");
            widths += ci.high - ci.low;
            let truth = 1000.0 - 0.0005;
            covers += u64::from(ci.low <= truth && truth <= ci.high);
        }
        let tolerance = (R as f64 * 0.95 * 0.05).sqrt() * 4.89;
        let want = 0.95 * R as f64;
        assert!(
            (covers as f64 - want).abs() <= tolerance,
            "{covers} of {R} intervals cover the mean (mean width {:.1} µs)",
            widths / R as f64
        );
    }

    #[test]
    fn too_few_batches_give_no_interval_and_bounds_are_clamped() {
        let mut acc = BatchAcc::new();
        for k in 0..5u64 {
            acc.record(k * 1_000_000, 100_000, 50_000);
        }
        let b = acc.finish(5_000_000);
        assert_eq!(b.nonempty(), 5);
        assert_eq!(b.ci(false, 100.0, 100.0), None);
        // Ten batches of wildly different means: the t interval reaches below zero, clamped
        // to the smallest latency seen; the top to the largest.
        let b = Batches {
            length_s: 0.1,
            sum_us: vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1000.0],
            sum_uncorrected_us: vec![1.0; 10],
            count: vec![1; 10],
        };
        let raw = stats::batch_means_ci(
            &b.sum_us
                .iter()
                .map(|&s| (s, 1))
                .collect::<Vec<(f64, u64)>>(),
        )
        .expect("ten batches");
        assert!(raw.low < 0.0, "{raw:?}");
        let ci = b.ci(false, 1.0, 1000.0).expect("ten batches");
        assert_eq!(ci.low, 1.0);
        assert_eq!(ci.high, raw.high.min(1000.0));
        assert_eq!(ci.mean, raw.mean);
        // With an empty batch among them: nine non-empty, no interval.
        let mut nine = b.clone();
        nine.count[3] = 0;
        nine.sum_us[3] = 0.0;
        assert_eq!(nine.ci(false, 1.0, 1000.0), None);
        // Lists of different lengths are refused, and numbers no run gives.
        let mut bad = b.clone();
        bad.sum_us.pop();
        assert!(!bad.is_valid());
        assert_eq!(bad.ci(false, 1.0, 1000.0), None);
        let spoilers: [fn(&mut Batches); 4] = [
            |b| b.sum_us[0] = f64::INFINITY,
            |b| b.sum_uncorrected_us[0] = -1.0,
            |b| b.count[0] = u64::MAX,
            |b| b.length_s = 0.0,
        ];
        for spoil in spoilers {
            let mut bad = b.clone();
            spoil(&mut bad);
            assert!(!bad.is_valid(), "{bad:?}");
            assert_eq!(bad.ci(false, 1.0, 1000.0), None);
            assert_eq!(merge(&[(&b, Some(0.0)), (&bad, Some(0.0))], true), None);
        }
        // Valid batches whose sums overflow when added give no interval (and no panic).
        let huge = Batches {
            length_s: 0.1,
            sum_us: vec![f64::MAX; 10],
            sum_uncorrected_us: vec![f64::MAX; 10],
            count: vec![MAX_BATCH_COUNT; 10],
        };
        let (m, _) = merge(&[(&huge, Some(0.0)), (&huge, Some(0.0))], true).expect("valid");
        assert_eq!(m.ci(false, 0.0, f64::MAX), None);
    }

    fn batches(length_s: f64, counts: &[u64]) -> Batches {
        Batches {
            length_s,
            sum_us: counts.iter().map(|&n| 10.0 * n as f64).collect(),
            sum_uncorrected_us: counts.iter().map(|&n| 5.0 * n as f64).collect(),
            count: counts.to_vec(),
        }
    }

    #[test]
    fn parts_together_add_by_time_and_parts_apart_concatenate() {
        let a = batches(0.1, &[1, 2, 3, 4]);
        let b = batches(0.05, &[1, 1, 1, 1, 1, 1]);
        // Together, b starting 0.1 s after a: b coarsened to 0.1 s ([2, 2, 2]), shifted by 1.
        let (m, how) = merge(&[(&a, Some(0.0)), (&b, Some(0.1))], true).expect("valid");
        assert_eq!(how, Combined::ByTime);
        assert_eq!(m.length_s, 0.1);
        assert_eq!(m.count, vec![1, 4, 5, 6]);
        assert_eq!(m.sum_us, vec![10.0, 40.0, 50.0, 60.0]);
        assert_eq!(m.sum_uncorrected_us, vec![5.0, 20.0, 25.0, 30.0]);
        // Apart: one after the other, by start.
        let (m, how) = merge(&[(&a, Some(5.0)), (&b, Some(0.0))], false).expect("valid");
        assert_eq!(how, Combined::Concatenated);
        assert_eq!(m.count, vec![2, 2, 2, 1, 2, 3, 4]);
        // Starts unknown: concatenated in the parts' order.
        let (m, how) = merge(&[(&a, None), (&b, None)], true).expect("valid");
        assert_eq!(how, Combined::Concatenated);
        assert_eq!(m.count, vec![1, 2, 3, 4, 2, 2, 2]);
        // Lengths that no pairwise merge can match: concatenated as they are.
        let c = batches(0.03, &[7]);
        let (m, how) = merge(&[(&a, Some(0.0)), (&c, Some(0.0))], true).expect("valid");
        assert_eq!(how, Combined::Concatenated);
        assert_eq!((m.length_s, m.count.len()), (0.1, 5));
        // Invalid batches: no merge.
        let mut bad = a.clone();
        bad.length_s = f64::NAN;
        assert_eq!(merge(&[(&a, Some(0.0)), (&bad, Some(0.0))], true), None);
    }
}
