//! `qload merge`: several results (e.g. of the pods of one Job, each sending λ/N) combined into one.
//!
//! - Counts, rates and throughput add up (the pods ran side by side); `duration_s` and `elapsed_s`
//!   are the longest.
//! - The serialized histograms are decoded and added, so every percentile of the merged result is
//!   that of the union of all measurements, exactly as if one client had recorded them; the
//!   latency summaries are recomputed from the merged histograms.
//! - The time series is merged interval by interval (counts added, target rates added, means
//!   weighted by completions); per-interval percentiles cannot be recovered from summaries and become `null`
//!   where more than one part contributed. The batch-means interval of the mean is recomputed
//!   from the merged series.
//! - Arrivals: independent Poisson streams superpose to a Poisson stream at the summed rate, so
//!   the merged mean gap is `1/Σ(1/gap_i)`; the normalized gaps are pooled (mean and coefficient of
//!   variation from the parts' moments); `ks_d` is the sample-weighted mean of the parts' (a
//!   description) and `ks_p` combines the parts' p-values by Fisher's method,
//!   `P(χ²₂ₖ > −2 Σ ln pᵢ)`.
//! - Theory, when every part carries the same queue, is recomputed at the summed λ against the
//!   merged latency.
//! - `Server-Timing`: per metric name (united by value), for the server's total and for the path,
//!   the histograms are added and the means weighted by their counts; the header counts add up.
//!   At most [`MAX_TIMING_NAMES`] names are kept (those with the most values), the values of the
//!   others are counted in `dropped_names`. The interval path and server means are weighted by
//!   completions (exact when every answer of the interval carried the header, as qserve's do);
//!   the interval path median becomes `null` like the latency one. The workers of one run are
//!   merged the same way.
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;

use hdrhistogram::Histogram;
use queuelab_common::model::Model;
use queuelab_common::stats::{histogram_from_string, histogram_to_string, new_histogram};

use crate::cli::CliError;
use crate::counts::Counts;
use crate::result::{
    self, Arrivals, DurationSummary, Interval, Latency, MAX_TIMING_NAMES, RunResult, SendLag,
    ServerTimingCounts, StatusCounts,
};

/// Why results cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no results to merge")]
    Empty,
    /// A part's histogram does not decode.
    #[error("part {part}: {what}: {source}")]
    Histogram {
        /// Index of the part (0-based).
        part: usize,
        /// Which histogram.
        what: &'static str,
        /// The decoding error.
        source: queuelab_common::stats::StatsError,
    },
    /// A part was written by an incompatible version of qload.
    #[error(
        "part {part}: result format {found}, this qload reads format {}",
        result::FORMAT_VERSION
    )]
    Format {
        /// Index of the part (0-based).
        part: usize,
        /// Its format number.
        found: u32,
    },
}

/// `qload merge` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// JSON results to merge (`-` reads standard input). A file may hold several results, one
    /// after the other (e.g. the concatenated logs of a Job's pods).
    #[arg(required = true, value_name = "FILES")]
    pub files: Vec<PathBuf>,
    /// Print the merged result as one JSON document instead of the text summary.
    #[arg(long)]
    pub json: bool,
}

/// Reads every result in `text` (one or more JSON documents, concatenated or one per line).
pub fn parse_results(text: &str) -> Result<Vec<RunResult>, serde_json::Error> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<RunResult>()
        .collect()
}

/// Reads and merges the results in `files` (`-` is standard input).
pub fn merge_files(files: &[PathBuf]) -> anyhow::Result<RunResult> {
    let mut parts = Vec::new();
    for f in files {
        let mut text = String::new();
        if f.as_os_str() == "-" {
            io::stdin().read_to_string(&mut text)?;
        } else {
            text =
                std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        }
        let found = parse_results(&text)
            .map_err(|e| anyhow::anyhow!("{}: not a qload JSON result: {e}", f.display()))?;
        if found.is_empty() {
            anyhow::bail!("{}: no result in it", f.display());
        }
        parts.extend(found);
    }
    Ok(merge(&parts)?)
}

/// The entry point of `qload merge`.
pub fn main(args: &MergeArgs) -> Result<(), CliError> {
    let merged = merge_files(&args.files).map_err(CliError::Runtime)?;
    let out = if args.json {
        let mut s =
            serde_json::to_string_pretty(&merged).map_err(|e| CliError::Runtime(e.into()))?;
        s.push('\n');
        s
    } else {
        crate::report::text(&merged)
    };
    crate::cli::print_stdout(&out)
}

fn decode(part: usize, what: &'static str, s: &str) -> Result<Histogram<u64>, MergeError> {
    histogram_from_string(s).map_err(|source| MergeError::Histogram { part, what, source })
}

/// A histogram of nanoseconds and the exact sum of its values (ns).
type Summed = (Histogram<u64>, f64);

/// The `Server-Timing` durations of several workers or parts, merged exactly (see the module
/// docs).
#[derive(Debug, Default)]
pub(crate) struct TimingAcc {
    names: BTreeMap<String, Summed>,
    server: Option<Summed>,
    path: Option<Summed>,
    counts: ServerTimingCounts,
}

fn add_summed(slot: &mut Option<Summed>, h: &Histogram<u64>, sum_ns: f64) {
    let (dst, sum) = slot.get_or_insert_with(|| (new_histogram(), 0.0));
    crate::add_histogram(dst, h);
    *sum += sum_ns;
}

fn summary(s: &Summed) -> DurationSummary {
    DurationSummary::from_histogram(&s.0, s.1 / 1e3)
}

impl TimingAcc {
    fn add_counts(&mut self, o: ServerTimingCounts) {
        // Destructured so that a new count cannot be forgotten here.
        let ServerTimingCounts {
            carried,
            malformed,
            dropped_names,
            negative_path,
        } = o;
        self.counts.carried += carried;
        self.counts.malformed += malformed;
        self.counts.dropped_names += dropped_names;
        self.counts.negative_path += negative_path;
    }

    fn add_name(&mut self, name: &str, h: &Histogram<u64>, sum_ns: f64) {
        let mut slot = self.names.remove(name);
        add_summed(&mut slot, h, sum_ns);
        if let Some(s) = slot {
            self.names.insert(name.to_owned(), s);
        }
    }

    /// Adds the totals of one worker of a run.
    pub(crate) fn add_thread(&mut self, t: &crate::engine::Timing) {
        self.add_counts(t.counts);
        for (name, d) in &t.names {
            self.add_name(name, &d.hist, d.sum_ns as f64);
        }
        if let Some(d) = &t.server {
            add_summed(&mut self.server, &d.hist, d.sum_ns as f64);
        }
        if let Some(d) = &t.path {
            add_summed(&mut self.path, &d.hist, d.sum_ns as f64);
        }
    }

    /// Adds the `Server-Timing` of part `i` of a merge.
    fn add_part(&mut self, i: usize, p: &RunResult) -> Result<(), MergeError> {
        self.add_counts(p.server_timing_headers);
        // The sum back from the mean: weighting the means by their counts.
        let sum_ns = |d: &DurationSummary| d.mean * 1e3 * d.count as f64;
        for (name, d) in &p.server_timing {
            let h = decode(i, "server_timing histogram", &d.histogram)?;
            self.add_name(name, &h, sum_ns(d));
        }
        if let Some(d) = &p.server_us {
            let h = decode(i, "server_us histogram", &d.histogram)?;
            add_summed(&mut self.server, &h, sum_ns(d));
        }
        if let Some(d) = &p.path_us {
            let h = decode(i, "path_us histogram", &d.histogram)?;
            add_summed(&mut self.path, &h, sum_ns(d));
        }
        Ok(())
    }

    /// Fills the `Server-Timing` fields of `r`: at most [`MAX_TIMING_NAMES`] names, those with
    /// the most values (ties by name); the values of the others are counted as dropped.
    pub(crate) fn finish_into(mut self, r: &mut RunResult) {
        let mut names: Vec<(String, Summed)> =
            std::mem::take(&mut self.names).into_iter().collect();
        names.sort_by(|a, b| b.1.0.len().cmp(&a.1.0.len()).then_with(|| a.0.cmp(&b.0)));
        for (_, s) in names.iter().skip(MAX_TIMING_NAMES) {
            self.counts.dropped_names += s.0.len();
        }
        r.server_timing = names
            .iter()
            .take(MAX_TIMING_NAMES)
            .map(|(n, s)| (n.clone(), summary(s)))
            .collect();
        r.server_us = self.server.as_ref().map(summary);
        r.path_us = self.path.as_ref().map(summary);
        r.server_timing_headers = self.counts;
    }
}

/// Merges results (see the module docs). One part gives that part back (recomputed).
pub fn merge(parts: &[RunResult]) -> Result<RunResult, MergeError> {
    let first = parts.first().ok_or(MergeError::Empty)?;
    let mut latency = new_histogram();
    let mut uncorrected = new_histogram();
    let mut lag = new_histogram();
    let mut counts = Counts::default();
    // Levels, not counts: the parts ran side by side, so their peaks and caps add up too.
    let (mut peak, mut cap) = (0, 0);
    let mut warnings = Vec::new();
    let mut target_rate: Option<f64> = None;
    let (mut achieved_rate, mut throughput) = (0.0, 0.0);
    let (mut duration_s, mut elapsed_s) = (0.0f64, 0.0f64);
    let mut n_parts = 0;
    let mut timing = TimingAcc::default();
    let mut config = first.config.clone();
    config.threads = 0;
    config.users = None;
    config.requests = None;
    for (i, p) in parts.iter().enumerate() {
        if p.format != result::FORMAT_VERSION {
            return Err(MergeError::Format {
                part: i,
                found: p.format,
            });
        }
        crate::add_histogram(&mut latency, &decode(i, "histogram", &p.histogram)?);
        crate::add_histogram(
            &mut uncorrected,
            &decode(i, "histogram_uncorrected", &p.histogram_uncorrected)?,
        );
        crate::add_histogram(
            &mut lag,
            &decode(i, "histogram_send_lag", &p.histogram_send_lag)?,
        );
        timing.add_part(i, p)?;
        counts += Counts::of(p);
        peak += p.connections.peak;
        cap += p.connections.cap;
        if let Some(t) = p.target_rate {
            target_rate = Some(target_rate.unwrap_or(0.0) + t);
        }
        achieved_rate += p.achieved_rate;
        throughput += p.throughput;
        duration_s = duration_s.max(p.duration_s);
        elapsed_s = elapsed_s.max(p.elapsed_s);
        n_parts += p.parts.max(1);
        config.threads += p.config.threads;
        if let Some(u) = p.config.users {
            config.users = Some(config.users.unwrap_or(0) + u);
        }
        if let Some(n) = p.config.requests {
            config.requests = Some(config.requests.unwrap_or(0) + n);
        }
        for w in &p.warnings {
            warnings.push(if parts.len() > 1 {
                format!("part {i}: {w}")
            } else {
                w.clone()
            });
        }
        if p.url != first.url {
            warnings.push(format!(
                "part {i} measured {} while part 0 measured {}",
                p.url, first.url
            ));
        }
        if p.mode != first.mode {
            warnings.push(format!(
                "part {i} ran in {} mode, part 0 in {} mode",
                p.mode, first.mode
            ));
        }
        if p.config.profile != first.config.profile {
            warnings.push(format!(
                "part {i} followed the rate profile {}, part 0 {}",
                p.config.profile.as_deref().unwrap_or("(none)"),
                first.config.profile.as_deref().unwrap_or("(none)")
            ));
        }
        if (p.config.interval_s - first.config.interval_s).abs() > 1e-9 {
            warnings.push(format!(
                "part {i} has {}s intervals, part 0 {}s: the merged series mixes them",
                p.config.interval_s, first.config.interval_s
            ));
        }
    }
    let requests = counts.requests();
    let connections = counts.connections(peak, cap);

    let intervals = merge_intervals(parts);
    let latency_us = Latency::from_histogram(&latency, result::batch_ci(&intervals, false));
    let latency_uncorrected_us =
        Latency::from_histogram(&uncorrected, result::batch_ci(&intervals, true));
    let theory = merge_theory(parts, &latency_us, &requests.status, &mut warnings);
    let mut merged = RunResult {
        format: result::FORMAT_VERSION,
        mode: if parts.iter().all(|p| p.mode == first.mode) {
            first.mode.clone()
        } else {
            "mixed".to_owned()
        },
        url: first.url.clone(),
        target_rate,
        achieved_rate,
        throughput,
        duration_s,
        elapsed_s,
        parts: n_parts,
        requests,
        latency_us,
        latency_uncorrected_us,
        send_lag_us: SendLag::from_histogram(&lag),
        arrivals: merge_arrivals(parts.iter().map(|p| &p.arrivals)),
        theory,
        connections,
        config,
        warnings,
        intervals,
        histogram: histogram_to_string(&latency),
        histogram_uncorrected: histogram_to_string(&uncorrected),
        histogram_send_lag: histogram_to_string(&lag),
        server_timing: Default::default(),
        path_us: None,
        server_us: None,
        server_timing_headers: Default::default(),
    };
    timing.finish_into(&mut merged);
    Ok(merged)
}

/// Interval by interval: counts added, means weighted by completions.
fn merge_intervals(parts: &[RunResult]) -> Vec<Interval> {
    let len = parts.iter().map(|p| p.intervals.len()).max().unwrap_or(0);
    (0..len)
        .map(|i| {
            let rows: Vec<&Interval> = parts.iter().filter_map(|p| p.intervals.get(i)).collect();
            if let [only] = rows[..] {
                return *only;
            }
            let mut m = Interval {
                t_s: rows.iter().map(|r| r.t_s).fold(f64::INFINITY, f64::min),
                ..Interval::default()
            };
            let (mut lat, mut unc) = (0.0, 0.0);
            // Path and server means, each weighted by the completions of the rows that have one.
            let (mut path, mut server) = ((0.0, 0u64), (0.0, 0u64));
            for r in &rows {
                if let Some(m) = r.path_mean_us {
                    path.0 += m * r.completed as f64;
                    path.1 += r.completed;
                }
                if let Some(m) = r.server_mean_us {
                    server.0 += m * r.completed as f64;
                    server.1 += r.completed;
                }
                m.duration_s = m.duration_s.max(r.duration_s);
                m.sent += r.sent;
                m.completed += r.completed;
                m.errors += r.errors;
                lat += r.mean_us * r.completed as f64;
                unc += r.mean_uncorrected_us * r.completed as f64;
                m.send_lag_max_us = m.send_lag_max_us.max(r.send_lag_max_us);
                // The parts ran side by side: their target rates add up, as their rates do.
                if let Some(t) = r.target_rate {
                    m.target_rate = Some(m.target_rate.unwrap_or(0.0) + t);
                }
            }
            if m.completed > 0 {
                m.mean_us = lat / m.completed as f64;
                m.mean_uncorrected_us = unc / m.completed as f64;
            }
            let mean = |(sum, n): (f64, u64)| (n > 0).then(|| sum / n as f64);
            m.path_mean_us = mean(path);
            m.server_mean_us = mean(server);
            m
        })
        .collect()
}

/// Pools the parts' arrival checks (see the module docs).
pub fn merge_arrivals<'a>(parts: impl IntoIterator<Item = &'a Arrivals>) -> Arrivals {
    let parts: Vec<&Arrivals> = parts.into_iter().collect();
    if let [only] = parts[..] {
        return *only;
    }
    let mut out = Arrivals::default();
    let mut rate = 0.0;
    let (mut n_m, mut sum, mut sum_sq) = (0.0, 0.0, 0.0);
    let (mut n_ks, mut d_sum, mut fisher, mut k) = (0.0, 0.0, 0.0, 0u32);
    for a in &parts {
        out.samples += a.samples;
        if let Some(g) = a.gap_mean_us.filter(|g| *g > 0.0) {
            rate += 1.0 / g;
        }
        let n = a.samples as f64;
        if let (Some(m), Some(cv)) = (a.gap_mean_norm, a.gap_cv) {
            // Each part: Σx = n m, Σx² = n (var + m²) with var = (cv m)² (population moments).
            sum += n * m;
            sum_sq += n * ((cv * m).powi(2) + m * m);
            n_m += n;
        }
        if let (Some(d), Some(p)) = (a.ks_d, a.ks_p) {
            d_sum += d * n;
            n_ks += n;
            fisher += -2.0 * p.max(1e-300).ln();
            k += 1;
        }
    }
    if rate > 0.0 {
        out.gap_mean_us = Some(1.0 / rate);
    }
    if n_m > 0.0 {
        let mean = sum / n_m;
        let var = (sum_sq / n_m - mean * mean).max(0.0);
        out.gap_mean_norm = Some(mean);
        out.gap_cv = (mean > 0.0).then(|| var.sqrt() / mean);
    }
    if k > 0 && n_ks > 0.0 {
        out.ks_d = Some(d_sum / n_ks);
        out.ks_p = Some(chi2_even_sf(fisher, k));
    }
    out
}

/// `P(χ² > x)` with `2k` degrees of freedom: `e^{−x/2} Σ_{j<k} (x/2)^j / j!`.
fn chi2_even_sf(x: f64, k: u32) -> f64 {
    let h = x / 2.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    for j in 1..k {
        term *= h / f64::from(j);
        sum += term;
    }
    (sum * (-h).exp()).min(1.0)
}

/// The theory at the summed λ when every part names the same queue.
fn merge_theory(
    parts: &[RunResult],
    latency: &Latency,
    status: &StatusCounts,
    warnings: &mut Vec<String>,
) -> Option<crate::result::TheoryResult> {
    let first = parts.first()?.theory.as_ref()?;
    let mut lambda = 0.0;
    for p in parts {
        let t = p.theory.as_ref()?;
        if t.mu != first.mu
            || t.servers != first.servers
            || t.capacity != first.capacity
            || t.service != first.service
        {
            warnings.push("the parts model different queues: no merged theory".to_owned());
            return None;
        }
        lambda += t.lambda;
    }
    let model = Model::new(first.mu, first.servers.parse().ok()?)
        .with_capacity(first.capacity)
        .with_service(first.service.parse().ok()?);
    match crate::theory_result(model, lambda, latency, status) {
        Ok(t) => Some(t),
        Err(e) => {
            warnings.push(format!("no theory at the summed rate: {e}"));
            None
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::result::{Connections, Requests};
    use queuelab_common::stats::record_ns;

    /// A result whose three histograms hold `latencies_ns` (lag: a tenth of each).
    pub(crate) fn result_from(latencies_ns: &[u64]) -> RunResult {
        let mut h = new_histogram();
        let mut lag = new_histogram();
        for &v in latencies_ns {
            record_ns(&mut h, v);
            record_ns(&mut lag, v / 10);
        }
        let mut r = sample_result();
        r.requests.issued = latencies_ns.len() as u64;
        r.requests.sent = latencies_ns.len() as u64;
        r.requests.completed = latencies_ns.len() as u64;
        r.requests.status.s2xx = latencies_ns.len() as u64;
        r.latency_us = Latency::from_histogram(&h, None);
        r.latency_uncorrected_us = Latency::from_histogram(&h, None);
        r.send_lag_us = SendLag::from_histogram(&lag);
        r.histogram = histogram_to_string(&h);
        r.histogram_uncorrected = histogram_to_string(&h);
        r.histogram_send_lag = histogram_to_string(&lag);
        r
    }

    pub(crate) fn sample_result() -> RunResult {
        let empty = histogram_to_string(&new_histogram());
        RunResult {
            format: result::FORMAT_VERSION,
            mode: "open".into(),
            url: "http://127.0.0.1:1/".into(),
            target_rate: Some(100.0),
            achieved_rate: 100.0,
            throughput: 100.0,
            duration_s: 1.0,
            elapsed_s: 1.1,
            parts: 1,
            requests: Requests::default(),
            latency_us: Latency::default(),
            latency_uncorrected_us: Latency::default(),
            send_lag_us: SendLag::default(),
            arrivals: Arrivals::default(),
            theory: None,
            connections: Connections::default(),
            config: crate::result::ConfigEcho {
                method: "GET".into(),
                arrival: Some("poisson".into()),
                threads: 1,
                users: None,
                think_s: None,
                duration_s: Some(1.0),
                requests: None,
                warmup_s: 0.0,
                timeout_s: 10.0,
                seed: 1,
                spin_us: 200.0,
                busy_poll: false,
                pin: true,
                interval_s: 1.0,
                profile: None,
            },
            warnings: vec![],
            intervals: vec![],
            histogram: empty.clone(),
            histogram_uncorrected: empty.clone(),
            histogram_send_lag: empty,
            server_timing: Default::default(),
            path_us: None,
            server_us: None,
            server_timing_headers: Default::default(),
        }
    }

    #[test]
    fn fisher_combination_matches_closed_forms() {
        // k = 1: P(χ²₂ > x) = e^{-x/2}, so one p-value comes back unchanged.
        for p in [0.9, 0.5, 0.01, 1e-8] {
            let x = -2.0 * f64::ln(p);
            assert!((chi2_even_sf(x, 1) - p).abs() < 1e-12 * p.max(1e-3));
        }
        // k = 2, x = 4: e^{-2} (1 + 2) = 0.40600584970983811.
        assert!((chi2_even_sf(4.0, 2) - 0.406_005_849_709_838_1).abs() < 1e-12);
    }

    #[test]
    fn arrivals_pool_moments() {
        // Two parts with the same moments pool to those moments.
        let a = Arrivals {
            samples: 100,
            gap_mean_us: Some(200.0),
            gap_mean_norm: Some(1.0),
            gap_cv: Some(1.0),
            ks_d: Some(0.05),
            ks_p: Some(0.5),
        };
        let m = merge_arrivals([&a, &a]);
        assert_eq!(m.samples, 200);
        assert!(
            (m.gap_mean_us.expect("rate") - 100.0).abs() < 1e-9,
            "rates add"
        );
        assert!((m.gap_mean_norm.expect("mean") - 1.0).abs() < 1e-12);
        assert!((m.gap_cv.expect("cv") - 1.0).abs() < 1e-12);
        assert!((m.ks_d.expect("d") - 0.05).abs() < 1e-12);
        // Fisher with p = 0.5 twice: x = 4 ln 2, P = e^{-x/2}(1 + x/2) = 0.25 (1 + 2 ln 2).
        let want = 0.25 * (1.0 + 2.0 * std::f64::consts::LN_2);
        assert!((m.ks_p.expect("p") - want).abs() < 1e-12);
        // Means 1 and 3 with no spread: pooled mean 2, sd 1, cv 0.5.
        let lo = Arrivals {
            gap_mean_norm: Some(1.0),
            gap_cv: Some(0.0),
            ..a
        };
        let hi = Arrivals {
            gap_mean_norm: Some(3.0),
            gap_cv: Some(0.0),
            ..a
        };
        let m = merge_arrivals([&lo, &hi]);
        assert!((m.gap_mean_norm.expect("mean") - 2.0).abs() < 1e-12);
        assert!((m.gap_cv.expect("cv") - 0.5).abs() < 1e-12);
    }

    #[test]
    fn merge_of_parts_equals_the_whole() {
        // Deterministic, spread-out values: the union's percentiles are known exactly.
        let all: Vec<u64> = (1..=3000u64)
            .map(|i| i * i * 37 % 9_000_011 + 1000)
            .collect();
        let (a, b) = all.split_at(1234);
        let whole = result_from(&all);
        let merged = merge(&[result_from(a), result_from(b)]).expect("merge");
        assert_eq!(merged.parts, 2);
        assert_eq!(merged.requests.completed, 3000);
        assert_eq!(merged.requests.status.s2xx, 3000);
        assert_eq!(merged.latency_us, whole.latency_us);
        assert_eq!(merged.send_lag_us, whole.send_lag_us);
        let h = histogram_from_string(&merged.histogram).expect("decodes");
        let w = histogram_from_string(&whole.histogram).expect("decodes");
        assert_eq!(h, w, "the merged histogram is the histogram of the union");
        assert!((merged.achieved_rate - 200.0).abs() < 1e-9);
        assert_eq!(merged.target_rate, Some(200.0));

        // Server-Timing: the same union, name by name, for the server's total and the path.
        let durs: Vec<(u64, u64)> = all.iter().map(|&l| (l / 3, l / 2 + l % 7)).collect();
        let whole = with_timing(result_from(&all), &all, &durs);
        let merged = merge(&[
            with_timing(result_from(a), a, &durs[..a.len()]),
            with_timing(result_from(b), b, &durs[a.len()..]),
        ])
        .expect("merge");
        assert_eq!(
            merged.server_timing.keys().collect::<Vec<_>>(),
            ["service", "wait"]
        );
        let same = |m: &DurationSummary, w: &DurationSummary, what: &str| {
            // Histograms added exactly; the means are sums over counts recombined, equal to
            // rounding (values below 10^13 ns, 3000 of them: relative error far below 1e-12).
            assert_eq!(
                histogram_from_string(&m.histogram).expect("decodes"),
                histogram_from_string(&w.histogram).expect("decodes"),
                "{what}"
            );
            assert_eq!(
                (m.count, m.p50, m.p90, m.p99, m.max),
                (w.count, w.p50, w.p90, w.p99, w.max)
            );
            assert!(
                (m.mean - w.mean).abs() <= 1e-12 * w.mean,
                "{what}: {} vs {}",
                m.mean,
                w.mean
            );
        };
        for (name, w) in &whole.server_timing {
            same(&merged.server_timing[name], w, name);
        }
        same(
            merged.server_us.as_ref().expect("merged"),
            whole.server_us.as_ref().expect("whole"),
            "server",
        );
        same(
            merged.path_us.as_ref().expect("merged"),
            whole.path_us.as_ref().expect("whole"),
            "path",
        );
        assert_eq!(merged.server_timing_headers.carried, 3000);
        assert_eq!(merged.server_timing_headers.malformed, 6);
        assert_eq!(
            merged.server_timing_headers.negative_path,
            whole.server_timing_headers.negative_path
        );
        // The interval means weighted by completions; the median unknown after a merge.
        let (m, w) = (merged.intervals[0], whole.intervals[0]);
        let close = |x: Option<f64>, y: Option<f64>| {
            let (x, y) = (x.expect("merged"), y.expect("whole"));
            (x - y).abs() <= 1e-12 * y
        };
        assert!(close(m.path_mean_us, w.path_mean_us), "{m:?} {w:?}");
        assert!(close(m.server_mean_us, w.server_mean_us), "{m:?} {w:?}");
        assert_eq!(m.path_p50_us, None);
    }

    #[test]
    fn merged_names_are_bounded_by_count() {
        // Parts with 5 names each, 10 in all: the 8 with the most values are kept.
        let part = |names: &[&str], n: usize| {
            let mut acc = TimingAcc::default();
            for (k, name) in names.iter().enumerate() {
                let mut h = new_histogram();
                for _ in 0..n + k {
                    record_ns(&mut h, 1_000);
                }
                acc.add_name(name, &h, 1_000.0 * (n + k) as f64);
            }
            let mut r = sample_result();
            acc.finish_into(&mut r);
            r
        };
        let a = part(&["a0", "a1", "a2", "a3", "a4"], 10);
        let b = part(&["b0", "b1", "b2", "b3", "b4"], 1);
        let m = merge(&[a, b]).expect("merge");
        assert_eq!(m.server_timing.len(), MAX_TIMING_NAMES);
        assert!(!m.server_timing.contains_key("b0") && !m.server_timing.contains_key("b1"));
        // b0 had 1 value, b1 2.
        assert_eq!(m.server_timing_headers.dropped_names, 3);
        assert!((m.server_timing["a4"].mean - 1.0).abs() < 1e-12);
    }

    /// `r` with the `Server-Timing` of answers whose (wait, service) durations are `durs_ns`,
    /// paired with its latencies (`all`), the way a run fills it; one interval.
    fn with_timing(mut r: RunResult, all: &[u64], durs_ns: &[(u64, u64)]) -> RunResult {
        let mut acc = TimingAcc::default();
        let (mut names, mut server, mut path) = (BTreeMap::new(), None, None);
        let mut iv = Interval {
            completed: all.len() as u64,
            ..Interval::default()
        };
        let (mut path_sum, mut server_sum) = (0.0, 0.0);
        for (&lat, &(w, s)) in all.iter().zip(durs_ns) {
            for (name, v) in [("wait", w), ("service", s)] {
                let e = names.entry(name).or_insert_with(|| (new_histogram(), 0.0));
                record_ns(&mut e.0, v);
                e.1 += v as f64;
            }
            let p = lat.saturating_sub(w + s);
            add_summed(&mut server, &hist_of(w + s), (w + s) as f64);
            add_summed(&mut path, &hist_of(p), p as f64);
            acc.counts.carried += 1;
            acc.counts.negative_path += u64::from(lat < w + s);
            path_sum += p as f64;
            server_sum += (w + s) as f64;
        }
        for (n, (h, sum)) in names {
            acc.add_name(n, &h, sum);
        }
        acc.server = server;
        acc.path = path;
        acc.counts.malformed = 3;
        acc.finish_into(&mut r);
        iv.path_mean_us = Some(path_sum / all.len() as f64 / 1e3);
        iv.server_mean_us = Some(server_sum / all.len() as f64 / 1e3);
        iv.path_p50_us = Some(1.0);
        r.intervals = vec![iv];
        r
    }

    fn hist_of(ns: u64) -> Histogram<u64> {
        let mut h = new_histogram();
        record_ns(&mut h, ns);
        h
    }

    #[test]
    fn interval_target_rates_add_up_over_the_parts() {
        let iv = |target: Option<f64>| Interval {
            duration_s: 1.0,
            sent: 10,
            target_rate: target,
            ..Interval::default()
        };
        let mut a = sample_result();
        a.config.profile = Some("100:1s,300:1s".into());
        a.intervals = vec![iv(Some(100.0)), iv(Some(300.0))];
        let mut b = a.clone();
        b.intervals = vec![iv(Some(50.0)), iv(Some(150.0)), iv(Some(0.0))];
        let m = merge(&[a.clone(), b.clone()]).expect("merge");
        let targets: Vec<Option<f64>> = m.intervals.iter().map(|i| i.target_rate).collect();
        assert_eq!(targets, [Some(150.0), Some(450.0), Some(0.0)]);
        assert_eq!(m.config.profile.as_deref(), Some("100:1s,300:1s"));
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        // Closed-loop rows have none, and add nothing.
        b.intervals = vec![iv(None)];
        let m = merge(&[a.clone(), b.clone()]).expect("merge");
        assert_eq!(m.intervals[0].target_rate, Some(100.0));
        let mut c = b.clone();
        c.config.profile = None;
        let m = merge(&[b.clone(), c]).expect("merge");
        assert_eq!(m.intervals[0].target_rate, None);
        assert!(
            m.warnings
                .iter()
                .any(|w| w.contains("followed the rate profile")),
            "{:?}",
            m.warnings
        );
    }

    #[test]
    fn single_part_round_trips() {
        let r = result_from(&[1000, 2000, 3000]);
        let m = merge(std::slice::from_ref(&r)).expect("merge");
        assert_eq!(m, r);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(matches!(merge(&[]), Err(MergeError::Empty)));
        let mut r = sample_result();
        r.histogram = "not base64!".into();
        assert!(matches!(
            merge(&[r]),
            Err(MergeError::Histogram { part: 0, .. })
        ));
        let mut r = sample_result();
        r.format = 99;
        assert!(matches!(merge(&[r]), Err(MergeError::Format { .. })));
        assert!(parse_results("{\"format\": 1}").is_err());
    }

    #[test]
    fn several_documents_in_one_text() {
        let r = result_from(&[1000]);
        let one = serde_json::to_string(&r).expect("serialize");
        let pretty = serde_json::to_string_pretty(&r).expect("serialize");
        let text = format!("{one}\n{pretty}\n{one}");
        assert_eq!(parse_results(&text).expect("parse").len(), 3);
    }
}
