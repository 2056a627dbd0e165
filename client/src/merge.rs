//! `qload merge`: several results (e.g. of the pods of one Job, each sending λ/N) combined into one.
//!
//! - Counts add up. The rates are over the **union of the parts' measured windows**
//!   (`start_utc` to `end_utc`): `duration_s` is the time during which at least one part
//!   measured, `achieved_rate` and `throughput` are the summed counts per second of it, and
//!   `target_rate` is Σ target·duration over it. Parts that ran together (pods of one Job) have
//!   a union of about one duration, so their rates add; parts that ran one after the other have
//!   the sum of their durations, so their rates average; a partial overlap lies between. When
//!   the windows do not all overlap, a warning names the separate stretches of time (and one
//!   says when they overlap only in part, the union more than 10% longer than the longest part).
//!   The merged window runs from the earliest start to the latest end. Results without windows
//!   (older versions) fall back to adding the rates, as for parts that ran together, with the
//!   longest duration, and a warning that the windows are unknown. `elapsed_s` is the longest.
//! - The serialized histograms are decoded and added, so every percentile of the merged result is
//!   that of the union of all measurements, exactly as if one client had recorded them; the
//!   latency summaries are recomputed from the merged histograms.
//! - The time series is merged interval by interval (counts added, target rates
//!   added, means weighted by completions); per-interval percentiles cannot be recovered from summaries and become `null`
//!   where more than one part contributed.
//! - The interval of the mean is recomputed from the parts' batches ([`crate::batches`]): when
//!   the parts ran together (their windows form one stretch of time), batch by batch at the
//!   same time, after bringing every part to the longest batch length by pairwise merges (a
//!   part's batches shifted by its start over the earliest, rounded to a batch); otherwise
//!   (windows apart or unknown, or lengths that no pairwise merge can match) one part's batches
//!   after the other's, in order of start. Without batches in every part (older versions), it
//!   comes from the merged time series as those versions computed it, with the same minimum of
//!   batches and clamps.
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
//! - Phases (connect, TLS handshake): the histograms are added and the means weighted by their
//!   counts, as for `Server-Timing`; the TLS error counts add up like the other errors, and the
//!   first TLS error's text is the first part's that has one.
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;
use std::time::SystemTime;

use hdrhistogram::Histogram;
use queuelab_common::model::Model;
use queuelab_common::stats::{histogram_from_string, histogram_to_string, new_histogram};

use crate::batches::{self, Batches};
use crate::cli::CliError;
use crate::counts::Counts;
use crate::result::{
    self, Arrivals, DurationSummary, Interval, Latency, MAX_TIMING_NAMES, Phases, Requests,
    RunResult, SendLag, ServerTimingCounts, StatusCounts,
};
use crate::utc::{self, Window};

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
    /// Write the merged latency distribution to FILE as HdrHistogram percentile text (ms).
    ///
    /// As `qload --hgrm`: FILE gets the latency from the intended send time, and FILE with
    /// `.uncorrected` before its extension (`all.hgrm` → `all.uncorrected.hgrm`) the latency
    /// from the write.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
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
    if let Some(path) = &args.hgrm {
        crate::hgrm::write_files(&merged, path).map_err(CliError::Runtime)?;
    }
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

/// The phases of opening connections of several workers or parts, merged exactly (see the
/// module docs).
#[derive(Debug, Default)]
pub(crate) struct PhasesAcc {
    connect: Option<Summed>,
    tls: Option<Summed>,
}

impl PhasesAcc {
    /// Adds the totals of one worker of a run.
    pub(crate) fn add_thread(&mut self, p: &crate::engine::PhaseDurations) {
        for (slot, d) in [(&mut self.connect, &p.connect), (&mut self.tls, &p.tls)] {
            if let Some(d) = d {
                add_summed(slot, &d.hist, d.sum_ns as f64);
            }
        }
    }

    /// Adds the phases of part `i` of a merge.
    fn add_part(&mut self, i: usize, p: &Phases) -> Result<(), MergeError> {
        let parts = [
            (
                &mut self.connect,
                &p.connect_us,
                "phases.connect_us histogram",
            ),
            (&mut self.tls, &p.tls_us, "phases.tls_us histogram"),
        ];
        for (slot, d, what) in parts {
            if let Some(d) = d {
                let h = decode(i, what, &d.histogram)?;
                // The sum back from the mean: weighting the means by their counts.
                add_summed(slot, &h, d.mean * 1e3 * d.count as f64);
            }
        }
        Ok(())
    }

    /// The phases of the result.
    pub(crate) fn finish(&self) -> Phases {
        Phases {
            connect_us: self.connect.as_ref().map(summary),
            tls_us: self.tls.as_ref().map(summary),
        }
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
    let mut phases = PhasesAcc::default();
    let mut tls_first_error = None;
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
        phases.add_part(i, &p.phases)?;
        if tls_first_error.is_none() {
            tls_first_error.clone_from(&p.requests.tls_first_error);
        }
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
    let mut requests = counts.requests();
    requests.tls_first_error = tls_first_error;
    let connections = counts.connections(peak, cap);

    let summed = Span {
        target_rate,
        achieved_rate,
        throughput,
        duration_s,
        ..Span::default()
    };
    let span = merged_span(parts, &requests, summed, &mut warnings);

    let intervals = merge_intervals(parts);
    let merged_batches = merge_batches(parts, &span, &mut warnings);
    let (latency_us, latency_uncorrected_us) = match &merged_batches {
        Some(b) => (
            batches::latency(&latency, b, false),
            batches::latency(&uncorrected, b, true),
        ),
        None => {
            let with_ci = |h: &Histogram<u64>, uncorrected: bool| {
                let l = Latency::from_histogram(h, None);
                let ci = batches::interval_ci(&intervals, uncorrected, l.min, l.max);
                Latency::from_histogram(h, ci)
            };
            (with_ci(&latency, false), with_ci(&uncorrected, true))
        }
    };
    let theory = merge_theory(parts, &latency_us, &requests.status, &mut warnings);
    let mut merged = RunResult {
        format: result::FORMAT_VERSION,
        mode: if parts.iter().all(|p| p.mode == first.mode) {
            first.mode.clone()
        } else {
            "mixed".to_owned()
        },
        url: first.url.clone(),
        target_rate: span.target_rate,
        achieved_rate: span.achieved_rate,
        throughput: span.throughput,
        duration_s: span.duration_s,
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
        start_utc: span.start_utc,
        end_utc: span.end_utc,
        batches: merged_batches,
        phases: phases.finish(),
    };
    timing.finish_into(&mut merged);
    Ok(merged)
}

/// The rates of a merge and the window they are over (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
struct Span {
    target_rate: Option<f64>,
    achieved_rate: f64,
    throughput: f64,
    duration_s: f64,
    start_utc: Option<String>,
    end_utc: Option<String>,
    /// Each part's start, seconds after the earliest (`None`: unknown).
    starts: Vec<Option<f64>>,
    /// Whether the windows are known and form one stretch of time.
    together: bool,
}

/// A part's measured window, if it has a readable one.
fn window_of(p: &RunResult) -> Option<(SystemTime, SystemTime)> {
    let start = utc::parse_rfc3339(p.start_utc.as_deref()?)?;
    let end = utc::parse_rfc3339(p.end_utc.as_deref()?)?;
    (end >= start).then_some((start, end))
}

/// Seconds from `earlier` to `later` (0 if `later` is not later).
fn secs(earlier: SystemTime, later: SystemTime) -> f64 {
    later
        .duration_since(earlier)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// "part 3" or "parts 0, 2".
fn part_list(indices: &[usize]) -> String {
    let list: Vec<String> = indices.iter().map(usize::to_string).collect();
    match list.len() {
        1 => format!("part {}", list[0]),
        _ => format!("parts {}", list.join(", ")),
    }
}

/// The rates over the union of the parts' windows; `summed` holds the rates added and the
/// longest duration, the fallback for parts without windows (see the module docs).
fn merged_span(
    parts: &[RunResult],
    requests: &Requests,
    summed: Span,
    warnings: &mut Vec<String>,
) -> Span {
    let windows: Vec<Option<(SystemTime, SystemTime)>> = parts.iter().map(window_of).collect();
    if let ([only], [w]) = (parts, &windows[..]) {
        // One part is its own window, its rates unchanged.
        return Span {
            target_rate: only.target_rate,
            achieved_rate: only.achieved_rate,
            throughput: only.throughput,
            duration_s: only.duration_s,
            start_utc: w.and(only.start_utc.clone()),
            end_utc: w.and(only.end_utc.clone()),
            starts: vec![w.map(|_| 0.0)],
            together: w.is_some(),
        };
    }
    let known: Option<Vec<(SystemTime, SystemTime)>> = windows.iter().copied().collect();
    let Some(known) = known else {
        let missing: Vec<usize> = (0..parts.len()).filter(|&i| windows[i].is_none()).collect();
        warnings.push(format!(
            "the measured windows of {} are unknown (no start_utc and end_utc: results of an \
             older qload): the rates are added as for parts that ran together, over the longest \
             duration",
            part_list(&missing)
        ));
        let earliest = windows.iter().flatten().map(|w| w.0).min();
        return Span {
            starts: windows
                .iter()
                .map(|w| Some(secs(earliest?, w.as_ref()?.0)))
                .collect(),
            together: false,
            ..summed
        };
    };
    let (Some(earliest), Some(latest)) = (
        known.iter().map(|w| w.0).min(),
        known.iter().map(|w| w.1).max(),
    ) else {
        // Not reached: there are parts, and every one has a window.
        return Span {
            starts: vec![None; parts.len()],
            ..summed
        };
    };
    let spans: Vec<Window> = known
        .iter()
        .map(|&(s, e)| Window {
            start: secs(earliest, s),
            end: secs(earliest, e),
        })
        .collect();
    let union = utc::union(&spans);
    let u = union.measure;
    let longest = spans.iter().map(|w| w.end - w.start).fold(0.0, f64::max);
    if union.stretches.len() > 1 {
        let described: Vec<String> = union
            .stretches
            .iter()
            .map(|st| {
                let start = st.iter().map(|&i| known[i].0).min().unwrap_or(earliest);
                let end = st.iter().map(|&i| known[i].1).max().unwrap_or(latest);
                format!(
                    "{} from {} to {}",
                    part_list(st),
                    utc::format_rfc3339(start),
                    utc::format_rfc3339(end)
                )
            })
            .collect();
        warnings.push(format!(
            "the parts' measured windows do not overlap: {} separate stretches of time ({}); \
             the rates are over the union of the windows, {u:.3} s (the stretches' durations \
             added), so the rates of parts that ran one after the other average where those of \
             parts that ran together add, and the batches of the interval of the mean follow \
             one another",
            union.stretches.len(),
            described.join("; ")
        ));
    } else if u > 1.1 * longest {
        warnings.push(format!(
            "the parts' measured windows overlap only in part: the rates are over their union, \
             {u:.3} s, where the longest part measured {longest:.3} s"
        ));
    }
    if u <= 0.0 {
        // Windows of no length: nothing to divide by; as a run of no duration, no rates.
        return Span {
            target_rate: summed.target_rate,
            duration_s: 0.0,
            starts: spans.iter().map(|w| Some(w.start)).collect(),
            together: union.stretches.len() == 1,
            start_utc: Some(utc::format_rfc3339(earliest)),
            end_utc: Some(utc::format_rfc3339(latest)),
            ..Span::default()
        };
    }
    let offered: Vec<f64> = parts
        .iter()
        .filter_map(|p| p.target_rate.map(|t| t * p.duration_s))
        .collect();
    Span {
        target_rate: (!offered.is_empty()).then(|| offered.iter().sum::<f64>() / u),
        achieved_rate: requests.sent_in_window as f64 / u,
        throughput: requests.completed as f64 / u,
        duration_s: u,
        start_utc: Some(utc::format_rfc3339(earliest)),
        end_utc: Some(utc::format_rfc3339(latest)),
        starts: spans.iter().map(|w| Some(w.start)).collect(),
        together: union.stretches.len() == 1,
    }
}

/// The parts' batches as one (see the module docs); `None` when a part has none (or unusable
/// ones: then with a warning).
fn merge_batches(parts: &[RunResult], span: &Span, warnings: &mut Vec<String>) -> Option<Batches> {
    let with: Option<Vec<(&Batches, Option<f64>)>> = parts
        .iter()
        .zip(&span.starts)
        .map(|(p, s)| p.batches.as_ref().map(|b| (b, *s)))
        .collect();
    let with = with?;
    match batches::merge(&with, span.together) {
        Some((b, _)) => Some(b),
        None => {
            let bad: Vec<usize> = (0..parts.len())
                .filter(|&i| !with[i].0.is_valid())
                .collect();
            warnings.push(format!(
                "the batches of {} are unusable: the interval of the mean comes from the time \
                 series",
                part_list(&bad)
            ));
            None
        }
    }
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
            start_utc: None,
            end_utc: None,
            batches: None,
            phases: Default::default(),
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

    /// `r` as an open-loop run at `rate` measuring from `start_s` (after a fixed instant) for
    /// `duration_s`, with the counts of a kept schedule.
    fn windowed(mut r: RunResult, start_s: f64, duration_s: f64, rate: f64) -> RunResult {
        let base = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_750_000_000);
        let at = |s: f64| utc::format_rfc3339(base + std::time::Duration::from_secs_f64(s));
        let n = (rate * duration_s).round() as u64;
        r.requests.sent_in_window = n;
        r.requests.sent = n;
        r.requests.completed = n;
        r.target_rate = Some(rate);
        r.achieved_rate = n as f64 / duration_s;
        r.throughput = n as f64 / duration_s;
        r.duration_s = duration_s;
        r.start_utc = Some(at(start_s));
        r.end_utc = Some(at(start_s + duration_s));
        r
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn parts_that_ran_together_add_their_rates() {
        let a = windowed(sample_result(), 0.0, 10.0, 100.0);
        let b = windowed(sample_result(), 0.2, 10.0, 100.0);
        let m = merge(&[a.clone(), b.clone()]).expect("merge");
        // The union: 10.2 s; 2000 requests over it.
        assert!(close(m.duration_s, 10.2), "{}", m.duration_s);
        assert!(close(m.achieved_rate, 2000.0 / 10.2), "{}", m.achieved_rate);
        assert!(close(m.throughput, 2000.0 / 10.2));
        assert!(close(m.target_rate.expect("open loop"), 2000.0 / 10.2));
        assert!(m.achieved_rate > 190.0, "about the sum of 100/s and 100/s");
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert_eq!(m.start_utc, a.start_utc);
        assert_eq!(m.end_utc, b.end_utc);
        // Exactly together: exactly the sum.
        let m = merge(&[a.clone(), a]).expect("merge");
        assert!(close(m.achieved_rate, 200.0) && close(m.duration_s, 10.0));
    }

    #[test]
    fn parts_one_after_the_other_average_their_rates_and_say_so() {
        let a = windowed(sample_result(), 0.0, 10.0, 100.0);
        let b = windowed(sample_result(), 20.0, 10.0, 100.0);
        let m = merge(&[b.clone(), a.clone()]).expect("merge");
        assert!(close(m.duration_s, 20.0), "{}", m.duration_s);
        assert!(close(m.achieved_rate, 100.0), "{}", m.achieved_rate);
        assert!(close(m.target_rate.expect("open loop"), 100.0));
        let w = m.warnings.join("\n");
        assert!(w.contains("do not overlap: 2 separate stretches"), "{w}");
        // In time order: part 1 (a) first, then part 0 (b), each with its window.
        let first = format!("part 1 from {}", a.start_utc.as_deref().expect("set"));
        let second = format!("part 0 from {}", b.start_utc.as_deref().expect("set"));
        assert!(w.contains(&first) && w.contains(&second), "{w}");
        assert!(w.find(&first) < w.find(&second), "{w}");
        assert!(w.contains("20.000 s"), "{w}");
        assert_eq!(m.start_utc, a.start_utc);
        assert_eq!(m.end_utc, b.end_utc);
    }

    #[test]
    fn parts_that_overlap_in_part_lie_between() {
        let a = windowed(sample_result(), 0.0, 10.0, 100.0);
        let b = windowed(sample_result(), 5.0, 10.0, 100.0);
        let m = merge(&[a, b]).expect("merge");
        assert!(close(m.duration_s, 15.0), "{}", m.duration_s);
        assert!(close(m.achieved_rate, 2000.0 / 15.0), "{}", m.achieved_rate);
        let w = m.warnings.join("\n");
        assert!(w.contains("overlap only in part"), "{w}");
        assert!(!w.contains("do not overlap"), "{w}");
    }

    #[test]
    fn parts_without_windows_add_their_rates_as_before_and_say_so() {
        let old = windowed(sample_result(), 0.0, 10.0, 100.0);
        let old = RunResult {
            start_utc: None,
            end_utc: None,
            ..old
        };
        let m = merge(&[old.clone(), old.clone()]).expect("merge");
        assert!(close(m.achieved_rate, 200.0) && close(m.duration_s, 10.0));
        assert!(close(m.target_rate.expect("open loop"), 200.0));
        assert_eq!((m.start_utc.as_deref(), m.end_utc.as_deref()), (None, None));
        let w = m.warnings.join("\n");
        assert!(w.contains("windows of parts 0, 1 are unknown"), "{w}");
        // One part with a window, one without: still the old way, naming the one without.
        let new = windowed(sample_result(), 50.0, 10.0, 100.0);
        let m = merge(&[new, old]).expect("merge");
        assert!(close(m.achieved_rate, 200.0));
        assert!(
            m.warnings
                .join("\n")
                .contains("windows of part 1 are unknown")
        );
        // An unreadable window counts as none.
        let mut bad = windowed(sample_result(), 0.0, 10.0, 100.0);
        bad.start_utc = Some("soon".into());
        let m = merge(&[bad.clone(), bad]).expect("merge");
        assert!(close(m.achieved_rate, 200.0));
    }

    /// Batches of `length_s` with `counts[j]` answers of `mean_us[j]` each.
    fn batches_of(length_s: f64, counts: &[u64], mean_us: &[f64]) -> Batches {
        Batches {
            length_s,
            sum_us: counts
                .iter()
                .zip(mean_us)
                .map(|(&n, m)| n as f64 * m)
                .collect(),
            sum_uncorrected_us: counts
                .iter()
                .zip(mean_us)
                .map(|(&n, m)| n as f64 * m / 2.0)
                .collect(),
            count: counts.to_vec(),
        }
    }

    #[test]
    fn the_interval_of_a_merge_comes_from_the_parts_batches() {
        let means: Vec<f64> = (0..20).map(|j| 1000.0 + 10.0 * f64::from(j % 7)).collect();
        let with = |r: RunResult, counts: &[u64]| RunResult {
            batches: Some(batches_of(0.5, counts, &means)),
            ..r
        };
        let lat: Vec<u64> = (900_000..1_100_000).step_by(1000).collect();
        let a = with(windowed(result_from(&lat), 0.0, 10.0, 100.0), &[50; 20]);
        let b = with(windowed(result_from(&lat), 0.5, 10.0, 100.0), &[30; 20]);
        // Together: b's batches added one batch later (0.5 s / 0.5 s).
        let m = merge(&[a.clone(), b.clone()]).expect("merge");
        let mb = m.batches.as_ref().expect("merged batches");
        assert_eq!(mb.count.len(), 21);
        assert_eq!((mb.count[0], mb.count[1], mb.count[20]), (50, 80, 30));
        let l = m.latency_us;
        let want = mb.ci(false, l.min, l.max).expect("21 batches");
        assert_eq!((l.ci95_low, l.ci95_high), (Some(want.low), Some(want.high)));
        let u = m.latency_uncorrected_us;
        let want = mb.ci(true, u.min, u.max).expect("21 batches");
        assert_eq!(u.ci95_low, Some(want.low));
        // One after the other: concatenated, 40 batches.
        let late = with(windowed(result_from(&lat), 100.0, 10.0, 100.0), &[30; 20]);
        let m = merge(&[late, a.clone()]).expect("merge");
        let mb = m.batches.as_ref().expect("merged batches");
        assert_eq!(mb.count.len(), 40);
        assert_eq!((mb.count[0], mb.count[39]), (50, 30), "in order of start");
        assert!(m.latency_us.ci95_low.is_some());
        // A part of an older version (no batches): the time series' intervals are the batches,
        // with at least ten of them.
        let old = RunResult {
            batches: None,
            ..b.clone()
        };
        let m = merge(&[a.clone(), old.clone()]).expect("merge");
        assert_eq!(m.batches, None);
        assert_eq!(m.latency_us.ci95_low, None, "no intervals: no interval");
        let iv = |k: u64| Interval {
            t_s: k as f64,
            duration_s: 1.0,
            completed: 10,
            mean_us: 1000.0 + (k % 3) as f64,
            mean_uncorrected_us: 500.0,
            ..Interval::default()
        };
        let series = |n: u64| (0..n).map(iv).collect::<Vec<_>>();
        let m = merge(&[
            RunResult {
                intervals: series(9),
                ..old.clone()
            },
            RunResult {
                intervals: series(9),
                ..old.clone()
            },
        ])
        .expect("merge");
        assert_eq!(m.latency_us.ci95_low, None, "nine batches");
        let m = merge(&[
            RunResult {
                intervals: series(12),
                ..old.clone()
            },
            old,
        ])
        .expect("merge");
        let ci = result::batch_ci(&m.intervals, false).expect("twelve batches");
        assert_eq!(m.latency_us.ci95_high, Some(ci.high));
        // Unusable batches: a warning, and the time series instead.
        let mut bad = a.clone();
        if let Some(b) = bad.batches.as_mut() {
            b.count.pop();
        }
        let m = merge(&[a, bad]).expect("merge");
        assert!(
            m.warnings
                .join("\n")
                .contains("batches of part 1 are unusable"),
            "{:?}",
            m.warnings
        );
        assert_eq!(m.batches, None);
    }

    #[test]
    fn phases_and_tls_errors_merge_exactly() {
        // Connect and handshake durations of two parts: the merged phases are those of the union.
        let phases_of = |connect: &[u64], tls: &[u64]| {
            let summed = |v: &[u64]| {
                let mut acc = None;
                for &ns in v {
                    add_summed(&mut acc, &hist_of(ns), ns as f64);
                }
                acc
            };
            PhasesAcc {
                connect: summed(connect),
                tls: summed(tls),
            }
            .finish()
        };
        let connect: Vec<u64> = (1..=500u64).map(|i| 20_000 + i * i * 13 % 90_000).collect();
        let tls: Vec<u64> = (1..=300u64).map(|i| 900_000 + i * 7919 % 400_000).collect();
        let whole = phases_of(&connect, &tls);
        let mut a = sample_result();
        a.phases = phases_of(&connect[..200], &tls[..100]);
        a.requests.errors_by_kind.tls = 3;
        a.requests.tls_errors.certificate = 3;
        let mut b = sample_result();
        b.phases = phases_of(&connect[200..], &tls[100..]);
        b.requests.errors_by_kind.tls = 2;
        b.requests.tls_errors.alert = 2;
        b.requests.tls_first_error = Some("received fatal alert: HandshakeFailure".into());
        let m = merge(&[a, b]).expect("merge");
        for (got, want) in [
            (&m.phases.connect_us, &whole.connect_us),
            (&m.phases.tls_us, &whole.tls_us),
        ] {
            let (got, want) = (got.as_ref().expect("merged"), want.as_ref().expect("whole"));
            assert_eq!(
                histogram_from_string(&got.histogram).expect("decodes"),
                histogram_from_string(&want.histogram).expect("decodes")
            );
            assert_eq!(
                (got.count, got.p50, got.p99, got.max),
                (want.count, want.p50, want.p99, want.max)
            );
            // Means recombined from mean × count: equal to rounding (values below 1.3e6 ns).
            assert!(
                (got.mean - want.mean).abs() <= 1e-9 * want.mean,
                "{got:?} {want:?}"
            );
        }
        assert_eq!(m.requests.errors_by_kind.tls, 5);
        assert_eq!(
            (
                m.requests.tls_errors.certificate,
                m.requests.tls_errors.alert
            ),
            (3, 2)
        );
        assert_eq!(m.requests.errors, 5);
        // The first part with a text gives it.
        assert_eq!(
            m.requests.tls_first_error.as_deref(),
            Some("received fatal alert: HandshakeFailure")
        );
        // Plain results of older versions have no phases: none merged.
        let m = merge(&[sample_result(), sample_result()]).expect("merge");
        assert_eq!(m.phases, Phases::default());
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
        // The same profile: no warning about it (the sample results have no UTC windows, which
        // is warned of apart).
        assert!(
            !m.warnings.iter().any(|w| w.contains("profile")),
            "{:?}",
            m.warnings
        );
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
