//! `qload search`: the knee search, the highest open-loop rate whose run meets an objective
//! such as `p99<10ms,errors<0.1%`.
//!
//! # The objective
//!
//! `METRIC<VALUE`, several joined by commas, all of which must hold ([`Slo::parse`]):
//!
//! - `mean`, `p50`, `p90`, `p99`, `p999`: the latency from the intended send time (the corrected
//!   one, so a server that falls behind cannot hide its queue), with a unit (`500us`, `10ms`,
//!   `1s`);
//! - `errors`: the error rate failed / (completed + failed), as a percentage (`errors<1%`) or a
//!   fraction (`errors<0.001`). Every failure of the run counts: refused or timed-out connects,
//!   timeouts, resets, requests dropped from a full backlog.
//!
//! Latency objectives are over the completed requests. A probe in which more requests fail than
//! complete fails whatever its latency ("errors dominate"), and so does one in which none
//! completes; to hold failures to a bound below that, give an `errors` objective too.
//!
//! # Probes
//!
//! A probe at rate r is one or more full open-loop runs ([`crate::run`]) at r, configured by the
//! same flags as a plain run (`-d` per run, default [`DEFAULT_PROBE_DURATION`]; `--warmup`,
//! default 1 s here; threads, connections, timeout, headers, method, …). Run k of the search
//! (from 0) uses the seed `--seed + k`, so no two runs repeat one arrival stream. The intervals
//! of a run's time series are the batches below: unless `--interval` is given (it must leave at
//! least [`MIN_BATCHES`]), a run is cut into [`PROBE_BATCHES`] (20) of them, or fewer, down to
//! [`MIN_BATCHES`] (10), where 20 would hold fewer than `1/(1−q)` expected answers each for the
//! highest quantile q of the objective (see [`probe_interval`]): with 100 answers a batch's p99
//! is not yet its maximum.
//!
//! # Estimates and their 95% intervals
//!
//! - The point estimate of a latency metric is that of the run's pooled histogram (all its
//!   measured answers; the runs of a repeated probe pooled).
//! - Its interval comes from batches: each full-length interval of the time series with at least
//!   one answer is a batch, and the metric computed over the answers of each batch (the interval's
//!   `mean_us`, `p50_us`, `p90_us`, `p99_us`, `p999_us`) gives `n` batch values `x_i` with sample
//!   standard deviation `s`. The interval is `estimate ± t_{0.975, n−1} · s/√n`. The stub interval
//!   at the end of a run (shorter than half the others; the last answers drain into it) is no
//!   batch, but its answers are in the pooled histogram. The runs of a repeated probe pool their
//!   batches.
//! - The error rate's interval is Wilson's score interval for a binomial proportion at z =
//!   1.96, over all the probe's requests.
//!
//! Assumptions. The batch interval treats the batch values as independent draws whose spread
//! stands for that of the pooled estimate: `s/√n` is the standard error of the pooled quantile
//! when the batches are nearly independent, which holds when each batch is much longer than the
//! queue's relaxation time (for M/M/1 about `1/(μ(1−√ρ)²)`: 14 ms at μ = 1000/s, ρ = 0.54,
//! against 250 ms batches of a 5 s probe), and when a batch holds enough answers for its own
//! quantile: for a tail like the exponential's the spread of a batch quantile matches the
//! asymptotic `√(q(1−q)/m)/f(x_q)` down to about one answer above the quantile per batch
//! (m(1−q) ≈ 1: the second largest of 135 answers, p99, has a standard deviation within 7% of
//! it), but a batch quantile that is the batch's maximum understates the spread (by 2.5× at
//! m(1−q) = 0.1). Hence the batch count above, and a probe whose batches still hold fewer than
//! `1/(1−q)` answers (too low a rate for its duration) says so in its warnings. Wilson's
//! interval treats requests as independent trials; failures of a real server come in bursts,
//! so it is optimistic when failures are many. The pooled estimate is that of a run that
//! started with a warmup (default 1 s) from an empty queue.
//!
//! # Decision and search
//!
//! A probe **meets** the objective when every metric's interval lies below its bound (upper end
//! below), and **fails** when any lies above (lower end above). Otherwise it is repeated at the
//! same rate and the runs pooled, up to `--repeats` runs in all (default 3); then it is decided
//! by the point estimates (meets when each is below its bound) and marked `undecided`.
//!
//! The search first probes `--lo` (default 10/s). With `--hi` it then probes `--hi` and bisects
//! `[lo, hi]`; without, it doubles the rate until a probe fails (at most [`MAX_DOUBLINGS`]
//! doublings, never above [`MAX_RATE`]). It bisects, taking the geometric midpoint when
//! `hi/lo > 4` and the arithmetic one otherwise, until `hi − lo` is at most the resolution
//! (`--resolution`, default 1% of the answer, or an absolute rate). The answer is the highest
//! rate that met the objective, with the bracket `[highest met, lowest failed]`.
//!
//! - If even `--lo` fails, there is no answer (`rate` null, [`Status::BelowLo`], exit code 1).
//! - If `--hi` meets (or the doubling reaches its bound), the answer is at least that rate
//!   ([`Status::AtLeast`]).
//! - `--max-probes` bounds the runs of the whole search (each repeat counts; default 20): when
//!   it is reached the answer is the best so far and the bracket is wider than the resolution
//!   ([`Status::MaxProbes`]).
//!
//! The search's logic ([`search`]) takes the probe as a closure, so its tests run it against
//! simulated queues; [`run`] runs it against a real server.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use queuelab_common::stats::{self, StatsError, histogram_from_string, merge_histogram};
use queuelab_common::units::{parse_duration, parse_rate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cli::{CliError, RunArgs, print_stdout};
use crate::config::{Config, Mode};
use crate::report::fmt_us;
use crate::result::{Interval, RunResult};

/// Version of the search result format.
pub const FORMAT_VERSION: u32 = 1;
/// Default `-d` of each probe run in a search.
pub const DEFAULT_PROBE_DURATION: Duration = Duration::from_secs(5);
/// Default `--lo` of a search, per second.
pub const DEFAULT_LO: f64 = 10.0;
/// Default `--repeats`: most runs of one probe.
pub const DEFAULT_REPEATS: u32 = 3;
/// Default `--max-probes`: most runs of one search.
pub const DEFAULT_MAX_PROBES: u32 = 20;
/// Batches a probe run is cut into by default: its interval is the duration over this.
pub const PROBE_BATCHES: u32 = 20;
/// Fewest batches a probe run may have (a `--interval` that leaves fewer is refused).
pub const MIN_BATCHES: u32 = 10;
/// Most doublings of the rate without `--hi`: from 10/s to 10.5 million per second.
pub const MAX_DOUBLINGS: u32 = 20;
/// Highest rate a probe may run at (the bound of [`Config::validate`]).
pub const MAX_RATE: f64 = 1e8;
/// z of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// One metric an objective bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Mean latency.
    Mean,
    /// Median latency.
    P50,
    /// 90th percentile latency.
    P90,
    /// 99th percentile latency.
    P99,
    /// 99.9th percentile latency.
    P999,
    /// Error rate: failed / (completed + failed).
    Errors,
}

impl Metric {
    /// Every metric, in the order of the output.
    pub const ALL: [Metric; 6] = [
        Metric::Mean,
        Metric::P50,
        Metric::P90,
        Metric::P99,
        Metric::P999,
        Metric::Errors,
    ];

    /// The name in an objective (`p99`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Mean => "mean",
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P99 => "p99",
            Metric::P999 => "p999",
            Metric::Errors => "errors",
        }
    }

    /// The key in the JSON output, with its unit (`p99_us`; `errors` is a fraction).
    pub fn key(self) -> &'static str {
        match self {
            Metric::Mean => "mean_us",
            Metric::P50 => "p50_us",
            Metric::P90 => "p90_us",
            Metric::P99 => "p99_us",
            Metric::P999 => "p999_us",
            Metric::Errors => "errors",
        }
    }

    /// The quantile of a percentile metric.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Metric::P50 => Some(0.5),
            Metric::P90 => Some(0.9),
            Metric::P99 => Some(0.99),
            Metric::P999 => Some(0.999),
            Metric::Mean | Metric::Errors => None,
        }
    }

    fn batch_value(self, b: &Batch) -> Option<f64> {
        match self {
            Metric::Mean => Some(b.mean_us),
            Metric::P50 => b.p50_us,
            Metric::P90 => b.p90_us,
            Metric::P99 => b.p99_us,
            Metric::P999 => b.p999_us,
            Metric::Errors => None,
        }
    }

    /// A value of this metric for people: a latency with its unit, an error rate in percent.
    pub fn format(self, v: f64) -> String {
        match self {
            Metric::Errors => format!("{:.3}%", 100.0 * v),
            _ => fmt_us(v),
        }
    }
}

/// One bound: `metric < limit` (µs for a latency, a fraction for the error rate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    /// What is bounded.
    pub metric: Metric,
    /// The bound it must stay below.
    pub limit: f64,
}

/// The objective of a search: every one of its bounds must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// The bounds, in the order given.
    pub objectives: Vec<Objective>,
    /// The text it was parsed from (trimmed).
    pub text: String,
}

/// Why an objective does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part:?}: {reason}")]
pub struct SloError {
    /// The part of the text at fault.
    pub part: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Slo {
    /// Parses `METRIC<VALUE[,METRIC<VALUE…]` (see the module docs). Metric names are
    /// case-insensitive; whitespace around the parts is ignored; each metric may be bounded once.
    pub fn parse(text: &str) -> Result<Slo, SloError> {
        let text = text.trim();
        let err = |part: &str, reason: String| SloError {
            part: part.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(err(
                text,
                "empty: give e.g. p99<10ms or p99<10ms,errors<1%".into(),
            ));
        }
        let mut objectives: Vec<Objective> = Vec::new();
        for part in text.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(err(
                    text,
                    "an empty objective between commas (or a comma at an end)".into(),
                ));
            }
            let Some((name, value)) = part.split_once('<') else {
                let reason = if part.contains('>') {
                    "objectives are upper bounds: METRIC<VALUE, e.g. p99<10ms".into()
                } else {
                    "expected METRIC<VALUE, e.g. p99<10ms".into()
                };
                return Err(err(part, reason));
            };
            let (name, value) = (name.trim(), value.trim());
            if let Some(rest) = value.strip_prefix('=') {
                return Err(err(
                    part,
                    format!("only < is supported (write {name}<{})", rest.trim()),
                ));
            }
            let Some(metric) = Metric::ALL
                .into_iter()
                .find(|m| m.name().eq_ignore_ascii_case(name))
            else {
                return Err(err(
                    part,
                    format!("unknown metric {name:?}: one of mean, p50, p90, p99, p999, errors"),
                ));
            };
            if objectives.iter().any(|o| o.metric == metric) {
                return Err(err(part, format!("{} is bounded twice", metric.name())));
            }
            let limit = match metric {
                Metric::Errors => parse_error_rate(value),
                _ => parse_latency(value),
            }
            .map_err(|reason| err(part, reason))?;
            objectives.push(Objective { metric, limit });
        }
        Ok(Slo {
            objectives,
            text: text.to_owned(),
        })
    }

    /// The highest quantile the objective bounds (`None`: only the mean and errors).
    pub fn highest_quantile(&self) -> Option<f64> {
        self.objectives
            .iter()
            .filter_map(|o| o.metric.quantile())
            .reduce(f64::max)
    }

    /// The bounds by JSON key ([`Metric::key`]).
    pub fn limits(&self) -> BTreeMap<String, f64> {
        self.objectives
            .iter()
            .map(|o| (o.metric.key().to_owned(), o.limit))
            .collect()
    }
}

/// A latency bound in µs: a positive duration with a unit.
fn parse_latency(value: &str) -> Result<f64, String> {
    if value.is_empty() {
        return Err("no value after <".into());
    }
    if value.ends_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "a latency needs a unit: us, ms or s (e.g. {value}ms)"
        ));
    }
    let d = parse_duration(value).map_err(|e| format!("not a duration: {}", e.reason))?;
    if d.is_zero() {
        return Err("a latency bound must be positive".into());
    }
    Ok(d.as_nanos() as f64 / 1e3)
}

/// An error-rate bound as a fraction: `1%`, `0.5%` or `0.001`, in (0, 1].
fn parse_error_rate(value: &str) -> Result<f64, String> {
    if value.is_empty() {
        return Err("no value after <".into());
    }
    let (number, percent) = match value.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (value, false),
    };
    let x: f64 = number
        .parse()
        .ok()
        .filter(|x: &f64| x.is_finite())
        .ok_or_else(|| format!("{value:?} is not a number or a percentage (e.g. 1% or 0.01)"))?;
    let fraction = if percent { x / 100.0 } else { x };
    if fraction <= 0.0 {
        return Err(
            "no run fails less than never: the bound must be positive (e.g. errors<0.01%)".into(),
        );
    }
    if fraction > 1.0 {
        return Err(if percent {
            "an error rate is at most 100%".into()
        } else {
            format!("a fraction is at most 1 (for a percentage write {value}%)")
        });
    }
    Ok(fraction)
}

/// `--resolution`: when the bisection stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolution {
    /// `hi − lo` at most this fraction of the answer (`1%`).
    Relative(f64),
    /// `hi − lo` at most this rate, per second (`5`, `5/s`, `1k`).
    Absolute(f64),
}

impl Resolution {
    /// `1%` (relative, below 100%) or a rate (absolute).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let x: f64 = p
                .trim()
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite())
                .ok_or_else(|| format!("{s:?} is not a percentage"))?;
            if !(x > 0.0 && x < 100.0) {
                return Err(format!(
                    "{s}: a relative resolution is above 0% and below 100%"
                ));
            }
            Ok(Resolution::Relative(x / 100.0))
        } else {
            let r =
                parse_rate(s).map_err(|e| format!("{s:?}: {} (or give a percentage)", e.reason))?;
            if !(r > 0.0 && r.is_finite()) {
                return Err(format!("{s}: the resolution must be positive"));
            }
            Ok(Resolution::Absolute(r))
        }
    }

    /// The width of bracket it accepts around an answer `rate`.
    pub fn at(self, rate: f64) -> f64 {
        match self {
            Resolution::Relative(f) => f * rate,
            Resolution::Absolute(r) => r,
        }
    }

    /// As given on the command line (`1%`, `5/s`).
    pub fn text(self) -> String {
        match self {
            Resolution::Relative(f) => format!("{}%", 100.0 * f),
            Resolution::Absolute(r) => format!("{r}/s"),
        }
    }
}

/// The batch length of a probe run of `duration` at `rate` for an objective whose highest
/// quantile is `q`: the duration over [`PROBE_BATCHES`], or over fewer batches, down to
/// [`MIN_BATCHES`], where [`PROBE_BATCHES`] would expect fewer than `1/(1−q)` answers per batch
/// (`rate · duration · (1−q)` batches then hold that many each); never below 10 ms, the shortest
/// interval of a run.
pub fn probe_interval(duration: Duration, rate: f64, q: Option<f64>) -> Duration {
    let fit = q.map_or(f64::INFINITY, |q| {
        (rate * duration.as_secs_f64() * (1.0 - q)).floor()
    });
    // Saturating: fit is at least 0 and clamped into the u32 range by the bounds.
    let batches = fit.clamp(f64::from(MIN_BATCHES), f64::from(PROBE_BATCHES)) as u32;
    (duration / batches).max(Duration::from_millis(10))
}

/// One batch of a probe: a full interval of a run's time series.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Batch {
    /// Answers in it.
    pub completed: u64,
    /// Their mean latency, µs.
    pub mean_us: f64,
    /// Their median, µs.
    pub p50_us: Option<f64>,
    /// Their 90th percentile, µs.
    pub p90_us: Option<f64>,
    /// Their 99th percentile, µs.
    pub p99_us: Option<f64>,
    /// Their 99.9th percentile, µs.
    pub p999_us: Option<f64>,
}

impl From<&Interval> for Batch {
    fn from(i: &Interval) -> Self {
        Batch {
            completed: i.completed,
            mean_us: i.mean_us,
            p50_us: i.p50_us,
            p90_us: i.p90_us,
            p99_us: i.p99_us,
            p999_us: i.p999_us,
        }
    }
}

/// What the runs of one probe measured, pooled: the material of its estimates.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Latency of every measured answer, ns (from the intended send time).
    pub latency: Histogram<u64>,
    /// The batches, in time order within each run.
    pub batches: Vec<Batch>,
    /// Measured requests completed.
    pub completed: u64,
    /// Measured requests failed (every kind).
    pub failed: u64,
    /// Runs pooled.
    pub runs: u32,
    /// Measured seconds, summed over the runs.
    pub duration_s: f64,
    /// Length of the batches (the runs' interval), seconds.
    pub interval_s: f64,
    /// Whether every run kept its schedule (see [`SCHEDULE_WARNINGS`]).
    pub schedule_kept: bool,
    /// The largest p99 of the path (latency minus the answers' `Server-Timing` durations) over
    /// the runs, µs; `None` when no answer carried the header.
    pub path_p99_us: Option<f64>,
    /// The longest path of any answer of the runs, µs; `None` like `path_p99_us`.
    pub path_max_us: Option<f64>,
    /// The runs' warnings, each once.
    pub warnings: Vec<String>,
}

/// The beginnings of the warnings of a run ([`crate::run`]) that say its schedule was not kept:
/// the rate missed, sends late, or the gaps not those asked for.
pub const SCHEDULE_WARNINGS: [&str; 3] = ["rate missed", "send lag", "send gaps are not"];

/// Whether a run's warning says that its schedule was not kept.
pub fn is_schedule_warning(w: &str) -> bool {
    SCHEDULE_WARNINGS.iter().any(|p| w.starts_with(p))
}

/// The batches of a run's time series: its full-length intervals with answers (an interval
/// shorter than half the longest, the stub at the end, is left out).
pub fn batches_of(intervals: &[Interval]) -> Vec<Batch> {
    let full = intervals.iter().map(|i| i.duration_s).fold(0.0, f64::max);
    intervals
        .iter()
        .filter(|i| i.completed > 0 && i.duration_s >= 0.5 * full)
        .map(Batch::from)
        .collect()
}

/// A point estimate and its 95% interval (`None`: not enough data for it).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Estimate {
    /// The estimate.
    pub value: Option<f64>,
    /// Lower end of the interval.
    pub low: Option<f64>,
    /// Upper end of the interval.
    pub high: Option<f64>,
}

/// Wilson's 95% score interval of a proportion with `k` successes in `n` trials (`None` for
/// `n = 0`).
pub fn wilson(k: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (n, p) = (n as f64, k as f64 / n as f64);
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At k = 0 (k = n) the lower (upper) end is 0 (1) exactly; the formula leaves rounding.
    let low = if k == 0 {
        0.0
    } else {
        (center - half).max(0.0)
    };
    let high = if p == 1.0 {
        1.0
    } else {
        (center + half).min(1.0)
    };
    Some((low, high))
}

/// How a probe stands against the objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Every interval below its bound.
    Meets,
    /// Some interval above its bound (or errors dominate, or nothing completed).
    Fails,
    /// Neither.
    Undecided,
}

/// The verdict of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The rate meets the objective.
    Meets,
    /// It does not.
    Fails,
}

impl Measurement {
    /// The measurement of one run.
    pub fn from_result(r: &RunResult) -> Result<Self, StatsError> {
        let mut warnings = Vec::new();
        for w in &r.warnings {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
        Ok(Self {
            latency: histogram_from_string(&r.histogram)?,
            batches: batches_of(&r.intervals),
            completed: r.requests.completed,
            failed: r.requests.errors,
            runs: 1,
            duration_s: r.duration_s,
            interval_s: r.config.interval_s,
            schedule_kept: !r.warnings.iter().any(|w| is_schedule_warning(w)),
            path_p99_us: r.path_us.as_ref().map(|p| p.p99),
            path_max_us: r.path_us.as_ref().map(|p| p.max),
            warnings,
        })
    }

    /// Adds the runs of `other` (at the same rate).
    pub fn pool(&mut self, other: Measurement) {
        merge_histogram(&mut self.latency, &other.latency);
        self.batches.extend(other.batches);
        self.completed += other.completed;
        self.failed += other.failed;
        self.runs += other.runs;
        self.duration_s += other.duration_s;
        self.schedule_kept &= other.schedule_kept;
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.path_p99_us = max(self.path_p99_us, other.path_p99_us);
        self.path_max_us = max(self.path_max_us, other.path_max_us);
        for w in other.warnings {
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
    }

    /// The estimate of `metric` and its 95% interval (see the module docs).
    pub fn estimate(&self, metric: Metric) -> Estimate {
        if metric == Metric::Errors {
            let n = self.completed + self.failed;
            let value = (n > 0).then(|| self.failed as f64 / n as f64);
            let ci = wilson(self.failed, n);
            return Estimate {
                value,
                low: ci.map(|c| c.0),
                high: ci.map(|c| c.1),
            };
        }
        if self.latency.is_empty() {
            return Estimate::default();
        }
        let value = match metric.quantile() {
            Some(q) => self.latency.value_at_quantile(q) as f64 / 1e3,
            None => self.latency.mean() / 1e3,
        };
        let xs: Vec<f64> = self
            .batches
            .iter()
            .filter_map(|b| metric.batch_value(b))
            .collect();
        let mut e = Estimate {
            value: Some(value),
            low: None,
            high: None,
        };
        if xs.len() >= 2 {
            let n = xs.len() as f64;
            let m = xs.iter().sum::<f64>() / n;
            let s = (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt();
            let half = stats::student_t_975(xs.len() as u64 - 1) * s / n.sqrt();
            e.low = Some(value - half);
            e.high = Some(value + half);
        }
        e
    }

    /// Where the probe stands: [`Decision::Fails`] when nothing completed or more requests
    /// failed than completed; else by the intervals of the objectives.
    pub fn decide(&self, slo: &Slo) -> Decision {
        if self.completed == 0 || self.failed > self.completed {
            return Decision::Fails;
        }
        let mut all_meet = true;
        for o in &slo.objectives {
            let e = self.estimate(o.metric);
            match (e.low, e.high) {
                (Some(low), _) if low > o.limit => return Decision::Fails,
                (_, Some(high)) if high < o.limit => {}
                _ => all_meet = false,
            }
        }
        if all_meet {
            Decision::Meets
        } else {
            Decision::Undecided
        }
    }

    /// The verdict of the point estimates: meets when every one is below its bound (and the
    /// probe did not fail outright, see [`Measurement::decide`]).
    pub fn by_estimate(&self, slo: &Slo) -> Verdict {
        let ok = self.completed > 0
            && self.failed <= self.completed
            && slo
                .objectives
                .iter()
                .all(|o| self.estimate(o.metric).value.is_some_and(|v| v < o.limit));
        if ok { Verdict::Meets } else { Verdict::Fails }
    }

    /// The probe's own warnings beside its runs': why it failed outright, and intervals that
    /// cannot be trusted.
    fn own_warnings(&self, slo: &Slo) -> Vec<String> {
        let mut w = Vec::new();
        if self.completed == 0 {
            w.push("no request completed".to_owned());
        } else if self.failed > self.completed {
            w.push(format!(
                "errors dominate: {} of {} requests failed",
                self.failed,
                self.failed + self.completed
            ));
        }
        let latency = slo.objectives.iter().any(|o| o.metric != Metric::Errors);
        if latency && self.completed > 0 && self.batches.len() < 2 {
            w.push(format!(
                "{} batch(es) with answers: no interval for the latency (a longer -d, or a \
                 higher rate, gives more)",
                self.batches.len()
            ));
        }
        if !self.batches.is_empty() {
            let per_batch = self.batches.iter().map(|b| b.completed).sum::<u64>() as f64
                / self.batches.len() as f64;
            for o in &slo.objectives {
                if let Some(q) = o.metric.quantile() {
                    if per_batch * (1.0 - q) < 1.0 {
                        w.push(format!(
                            "{}: a batch holds {per_batch:.0} answers, fewer than the {:.0} that \
                             put one above the quantile, so its interval understates the error \
                             (a longer -d helps)",
                            o.metric.name(),
                            1.0 / (1.0 - q)
                        ));
                    }
                }
            }
        }
        w
    }
}

/// One probe of a search, as the output shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ProbeRecord {
    /// The rate, per second.
    pub rate: f64,
    /// Whether the rate meets the objective.
    pub verdict: Verdict,
    /// Whether the intervals left it open after all its runs, so that the point estimates
    /// decided.
    pub undecided: bool,
    /// Runs pooled in this probe (1 unless it was undecided after a run).
    pub repeats: u32,
    /// Measured seconds over its runs.
    pub duration_s: f64,
    /// Length of its batches (its runs' interval), seconds.
    pub interval_s: f64,
    /// The estimate of each bounded metric, by key (`p99_us`, `mean_us`, …: µs; `errors`: a
    /// fraction); `null` when nothing completed.
    #[schemars(extend("propertyNames" = {"enum": ["mean_us", "p50_us", "p90_us", "p99_us", "p999_us", "errors"]}))]
    pub estimate: BTreeMap<String, Option<f64>>,
    /// Lower ends of the 95% intervals, by key (`null`: fewer than two batches).
    #[schemars(extend("propertyNames" = {"enum": ["mean_us", "p50_us", "p90_us", "p99_us", "p999_us", "errors"]}))]
    pub low: BTreeMap<String, Option<f64>>,
    /// Upper ends of the 95% intervals, by key.
    #[schemars(extend("propertyNames" = {"enum": ["mean_us", "p50_us", "p90_us", "p99_us", "p999_us", "errors"]}))]
    pub high: BTreeMap<String, Option<f64>>,
    /// Batches behind the latency intervals.
    pub batches: u64,
    /// Measured requests completed.
    pub completed: u64,
    /// Measured requests failed.
    pub failed: u64,
    /// Whether every run kept its schedule (no warning of a missed rate, late sends or
    /// non-exponential gaps): when not, the client rather than the server may be the limit.
    pub schedule_kept: bool,
    /// Largest p99 of the path over its runs (latency minus the `Server-Timing` durations),
    /// µs; `null` when the answers carried no such header.
    pub path_p99_us: Option<f64>,
    /// The longest path of any answer of its runs, µs (`null` like `path_p99_us`): the most
    /// the path added to any one latency.
    pub path_max_us: Option<f64>,
    /// The runs' warnings and the probe's own.
    pub warnings: Vec<String>,
}

impl ProbeRecord {
    /// The record of a probe at `rate` from its pooled measurement.
    pub fn new(rate: f64, m: &Measurement, slo: &Slo, verdict: Verdict, undecided: bool) -> Self {
        let (mut estimate, mut low, mut high) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        for o in &slo.objectives {
            let e = m.estimate(o.metric);
            let k = o.metric.key().to_owned();
            estimate.insert(k.clone(), e.value);
            low.insert(k.clone(), e.low);
            high.insert(k, e.high);
        }
        let mut warnings = m.warnings.clone();
        warnings.extend(m.own_warnings(slo));
        Self {
            rate,
            verdict,
            undecided,
            repeats: m.runs,
            duration_s: m.duration_s,
            interval_s: m.interval_s,
            estimate,
            low,
            high,
            batches: m.batches.len() as u64,
            completed: m.completed,
            failed: m.failed,
            schedule_kept: m.schedule_kept,
            path_p99_us: m.path_p99_us,
            path_max_us: m.path_max_us,
            warnings,
        }
    }

    /// What is printed when the probe is done: its [`line`](Self::line), then each of its
    /// warnings on a line of its own.
    pub fn text(&self) -> String {
        let mut s = self.line();
        s.push('\n');
        for w in &self.warnings {
            let _ = writeln!(s, "            warning: {w}");
        }
        s
    }

    /// The probe on one line: rate, each metric's estimate and interval, verdict, runs.
    pub fn line(&self) -> String {
        let mut s = format!("{:>10}", fmt_rate(self.rate));
        for m in Metric::ALL {
            let Some(&value) = self.estimate.get(m.key()) else {
                continue;
            };
            let f = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| m.format(v));
            let _ = write!(s, "  {} {}", m.name(), f(value));
            match (self.low.get(m.key()), self.high.get(m.key())) {
                (Some(&Some(lo)), Some(&Some(hi))) => {
                    let _ = write!(s, " [{}, {}]", m.format(lo), m.format(hi));
                }
                _ => s.push_str(" [-]"),
            }
        }
        let verdict = match self.verdict {
            Verdict::Meets => "meets",
            Verdict::Fails => "fails",
        };
        let _ = write!(
            s,
            "  {verdict}{}  ({} run{}, {:.1}s",
            if self.undecided { " (undecided)" } else { "" },
            self.repeats,
            if self.repeats == 1 { "" } else { "s" },
            self.duration_s
        );
        if self.failed > 0 {
            let _ = write!(s, ", {} failed", self.failed);
        }
        if !self.schedule_kept {
            s.push_str(", schedule not kept");
        }
        s.push(')');
        s
    }
}

/// A rate for people: `538.2/s`, `12.5k/s`.
pub fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.3}M/s", r / 1e6)
    } else if r >= 1e4 {
        format!("{:.2}k/s", r / 1e3)
    } else if r >= 100.0 {
        format!("{r:.1}/s")
    } else {
        format!("{r:.2}/s")
    }
}

/// How a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The bracket is within the resolution: `rate` is the answer.
    Found,
    /// `--hi` met the objective (or the doubling reached its bound): the answer is at least
    /// `rate`.
    AtLeast,
    /// Even `--lo` failed: no answer.
    BelowLo,
    /// `--max-probes` runs were done before the bracket was within the resolution: `rate` is the
    /// best so far.
    MaxProbes,
    /// Stopped by a signal: `rate` is the best so far.
    Interrupted,
}

/// What the search is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// The objective.
    pub slo: Slo,
    /// The first rate probed, per second.
    pub lo: f64,
    /// The top of the bracket, if given.
    pub hi: Option<f64>,
    /// When the bisection stops.
    pub resolution: Resolution,
    /// Most runs of one probe.
    pub repeats: u32,
    /// Most runs of the search.
    pub max_probes: u32,
}

/// The logic's outcome, before the echo of the configuration is added.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The answer: the highest rate that met the objective (`None` if none did).
    pub rate: Option<f64>,
    /// How it ended.
    pub status: Status,
    /// Highest rate that met, lowest that failed.
    pub bracket: [Option<f64>; 2],
    /// The probes, in the order run.
    pub probes: Vec<ProbeRecord>,
    /// Runs done.
    pub runs: u32,
    /// What the reader should know about the answer.
    pub warnings: Vec<String>,
}

/// The midpoint of a bisection step: geometric when `hi/lo > 4`, else arithmetic.
pub fn midpoint(lo: f64, hi: f64) -> f64 {
    if hi > 4.0 * lo {
        (lo * hi).sqrt()
    } else {
        0.5 * (lo + hi)
    }
}

/// The search's state: the probe, the runs done, the probes recorded.
struct Searcher<'a, P, F> {
    params: &'a Params,
    stop: &'a AtomicBool,
    probe: P,
    on_probe: F,
    runs: u32,
    probes: Vec<ProbeRecord>,
}

impl<P, F> Searcher<'_, P, F>
where
    P: FnMut(f64) -> anyhow::Result<Measurement>,
    F: FnMut(&ProbeRecord),
{
    fn budget_left(&self) -> bool {
        self.runs < self.params.max_probes
    }

    /// One run at `rate`; `None` when stopped (before it, or during it: a cut run is dropped).
    fn run(&mut self, rate: f64) -> anyhow::Result<Option<Measurement>> {
        if self.stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let m = (self.probe)(rate)?;
        self.runs += 1;
        Ok((!self.stop.load(Ordering::SeqCst)).then_some(m))
    }

    /// A probe at `rate`, repeated while undecided (see the module docs); `None` when stopped.
    fn probe_at(&mut self, rate: f64) -> anyhow::Result<Option<Verdict>> {
        let Some(mut m) = self.run(rate)? else {
            return Ok(None);
        };
        let slo = &self.params.slo;
        let (verdict, undecided) = loop {
            match m.decide(slo) {
                Decision::Meets => break (Verdict::Meets, false),
                Decision::Fails => break (Verdict::Fails, false),
                Decision::Undecided if m.runs >= self.params.repeats || !self.budget_left() => {
                    break (m.by_estimate(slo), true);
                }
                Decision::Undecided => match self.run(rate)? {
                    Some(more) => m.pool(more),
                    None => return Ok(None),
                },
            }
        };
        let record = ProbeRecord::new(rate, &m, slo, verdict, undecided);
        (self.on_probe)(&record);
        self.probes.push(record);
        Ok(Some(verdict))
    }
}

/// Runs the search of `params` with `probe` (one run at a rate → its measurement); `on_probe`
/// sees each probe when it is decided. `stop` ends it between runs (the run under way when it is
/// set is dropped). Errors are those of `probe`.
pub fn search(
    params: &Params,
    stop: &AtomicBool,
    probe: impl FnMut(f64) -> anyhow::Result<Measurement>,
    on_probe: impl FnMut(&ProbeRecord),
) -> anyhow::Result<Outcome> {
    let mut s = Searcher {
        params,
        stop,
        probe,
        on_probe,
        runs: 0,
        probes: Vec::new(),
    };
    let mut warnings = Vec::new();
    let slo = &params.slo.text;
    // The highest rate that met and the lowest that failed, so far.
    let (mut good, mut bad): (Option<f64>, Option<f64>) = (None, None);
    let status = 'search: {
        let lo = params.lo;
        match s.probe_at(lo)? {
            None => break 'search Status::Interrupted,
            Some(Verdict::Fails) => {
                bad = Some(lo);
                warnings.push(format!("even --lo {} fails {slo}", fmt_rate(lo)));
                break 'search Status::BelowLo;
            }
            Some(Verdict::Meets) => good = Some(lo),
        }
        let mut g = lo;
        let mut b: f64;
        if let Some(hi) = params.hi {
            if !s.budget_left() {
                break 'search Status::MaxProbes;
            }
            match s.probe_at(hi)? {
                None => break 'search Status::Interrupted,
                Some(Verdict::Meets) => {
                    good = Some(hi);
                    warnings.push(format!(
                        "--hi {} meets {slo}: the knee is at or above it",
                        fmt_rate(hi)
                    ));
                    break 'search Status::AtLeast;
                }
                Some(Verdict::Fails) => {
                    bad = Some(hi);
                    b = hi;
                }
            }
        } else {
            let mut doublings = 0;
            loop {
                if doublings == MAX_DOUBLINGS || 2.0 * g > MAX_RATE {
                    warnings.push(format!(
                        "no probe failed up to {} ({doublings} doublings): the knee is at or \
                         above it",
                        fmt_rate(g)
                    ));
                    break 'search Status::AtLeast;
                }
                if !s.budget_left() {
                    break 'search Status::MaxProbes;
                }
                let r = 2.0 * g;
                doublings += 1;
                match s.probe_at(r)? {
                    None => break 'search Status::Interrupted,
                    Some(Verdict::Meets) => {
                        good = Some(r);
                        g = r;
                    }
                    Some(Verdict::Fails) => {
                        bad = Some(r);
                        b = r;
                        break;
                    }
                }
            }
        }
        loop {
            if b - g <= params.resolution.at(g) {
                break 'search Status::Found;
            }
            if !s.budget_left() {
                break 'search Status::MaxProbes;
            }
            let mid = midpoint(g, b);
            match s.probe_at(mid)? {
                None => break 'search Status::Interrupted,
                Some(Verdict::Meets) => {
                    good = Some(mid);
                    g = mid;
                }
                Some(Verdict::Fails) => {
                    bad = Some(mid);
                    b = mid;
                }
            }
        }
    };
    match status {
        Status::MaxProbes => warnings.push(format!(
            "stopped after {} runs (--max-probes) before the bracket was within the resolution",
            s.runs
        )),
        Status::Interrupted => warnings.push("interrupted: the answer is the best so far".into()),
        _ => {}
    }
    let undecided = s.probes.iter().filter(|p| p.undecided).count();
    if undecided > 0 {
        warnings.push(format!(
            "{undecided} probe(s) stayed undecided after --repeats {} runs and were decided by \
             the point estimate",
            params.repeats
        ));
    }
    let missed = s.probes.iter().filter(|p| !p.schedule_kept).count();
    if missed > 0 {
        warnings.push(format!(
            "{missed} probe(s) did not keep their schedule: there the client, not the server, may \
             be the limit"
        ));
    }
    Ok(Outcome {
        rate: good,
        status,
        bracket: [good, bad],
        probes: s.probes,
        runs: s.runs,
        warnings,
    })
}

/// The configuration echoed in a search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SearchEcho {
    /// `--lo`, per second.
    pub lo: f64,
    /// `--hi`, per second (`null`: the search doubled from `lo`).
    pub hi: Option<f64>,
    /// `--resolution` as given (`1%` or a rate such as `5/s`).
    pub resolution: String,
    /// `--repeats`: most runs of one probe.
    pub repeats: u32,
    /// `--max-probes`: most runs of the search.
    pub max_probes: u32,
    /// Measured duration of each run, seconds.
    pub duration_s: f64,
    /// Warmup of each run, seconds.
    pub warmup_s: f64,
    /// `--interval` of the runs (the batches), seconds; `null`: chosen per probe (see the
    /// probes' `interval_s`).
    pub interval_s: Option<f64>,
    /// `--arrival` of the runs.
    #[schemars(extend("enum" = ["poisson", "constant", "uniform"]))]
    pub arrival: String,
    /// Seed of the first run (run k uses seed + k).
    pub seed: u64,
}

/// What `qload search --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SearchResult {
    /// Version of this format ([`FORMAT_VERSION`]).
    #[schemars(extend("const" = FORMAT_VERSION))]
    pub format: u32,
    /// The URL probed.
    pub url: String,
    /// The objective as given (`p99<10ms,errors<0.1%`).
    pub objective: String,
    /// Its bounds by key (`p99_us`, …: µs; `errors`: a fraction), the keys of the probes'
    /// estimates.
    #[schemars(extend("propertyNames" = {"enum": ["mean_us", "p50_us", "p90_us", "p99_us", "p999_us", "errors"]}))]
    pub limits: BTreeMap<String, f64>,
    /// The answer: the highest rate that met the objective, per second (`null`: even `lo`
    /// failed).
    pub rate: Option<f64>,
    /// How the search ended: `found` (within the resolution), `at_least` (the top of the range
    /// met: the knee is at or above `rate`), `below_lo`, `max_probes` (out of runs: `rate` is the
    /// best so far), `interrupted`.
    pub status: Status,
    /// `[highest rate that met, lowest that failed]`, per second (`null` where none did).
    pub bracket: [Option<f64>; 2],
    /// The resolution at the answer, per second (`null` without an answer).
    pub resolution_rate: Option<f64>,
    /// Runs done (each repeat of a probe counts).
    pub runs: u32,
    /// The probes, in the order run.
    pub probes: Vec<ProbeRecord>,
    /// What the reader should know about the answer.
    pub warnings: Vec<String>,
    /// The search's configuration.
    pub config: SearchEcho,
}

impl SearchResult {
    /// The readable summary printed after the probe lines.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let bracket = |b: Option<f64>| b.map_or_else(|| "-".to_owned(), fmt_rate);
        match (self.status, self.rate) {
            (Status::Interrupted, None) => {
                let _ = writeln!(
                    o,
                    "knee: none yet (interrupted before a probe met {})",
                    self.objective
                );
            }
            (Status::BelowLo, _) | (_, None) => {
                let _ = writeln!(
                    o,
                    "knee: none, even {} fails {}",
                    fmt_rate(self.config.lo),
                    self.objective
                );
            }
            (Status::AtLeast, Some(r)) => {
                let _ = writeln!(
                    o,
                    "knee: at least {} (meets {})",
                    fmt_rate(r),
                    self.objective
                );
            }
            (Status::Found, Some(r)) => {
                let _ = writeln!(
                    o,
                    "knee: {} meets {}; {} fails (resolution {}{})",
                    fmt_rate(r),
                    self.objective,
                    bracket(self.bracket[1]),
                    self.config.resolution,
                    self.resolution_rate
                        .filter(|_| self.config.resolution.ends_with('%'))
                        .map_or_else(String::new, |x| format!(" = {}", fmt_rate(x)))
                );
            }
            (Status::MaxProbes | Status::Interrupted, Some(r)) => {
                let _ = writeln!(
                    o,
                    "knee: {} meets {}, {} fails (best so far, wider than the resolution {})",
                    fmt_rate(r),
                    self.objective,
                    bracket(self.bracket[1]),
                    self.config.resolution
                );
            }
        }
        let _ = writeln!(
            o,
            "  {} probes, {} runs of {}s each (+{}s warmup)",
            self.probes.len(),
            self.runs,
            self.config.duration_s,
            self.config.warmup_s
        );
        for w in &self.warnings {
            let _ = writeln!(o, "  warning: {w}");
        }
        o
    }
}

/// The JSON Schema of [`SearchResult`], generated from these types; `schema/search.schema.json`
/// is this, pretty-printed, and a test holds the two together.
pub fn json_schema() -> schemars::Schema {
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<SearchResult>();
    schema.insert(
        "$id".into(),
        "https://example.invalid/queuelab/qload/search.schema.json".into(),
    );
    schema.insert("title".into(), "qload search result".into());
    schema
}

/// A search ready to run: the probe runs' configuration and the search's parameters.
#[derive(Debug, Clone)]
pub struct SearchConfig {
    /// Every run is this, at the probe's rate and its own seed.
    pub base: Config,
    /// `--interval`, the batch length of every run; `None`: [`probe_interval`] of each probe.
    pub interval: Option<Duration>,
    /// The search.
    pub params: Params,
}

/// Runs the search against the server of `config.base`, each probe run a [`crate::run`];
/// `on_probe` sees each probe when it is decided.
pub fn run(
    config: &SearchConfig,
    stop: Arc<AtomicBool>,
    on_probe: impl FnMut(&ProbeRecord),
) -> anyhow::Result<SearchResult> {
    let base = &config.base;
    let mut k = 0u64;
    let probe = |rate: f64| -> anyhow::Result<Measurement> {
        let mut c = base.clone();
        if let Mode::Open { rate: r, .. } = &mut c.mode {
            *r = rate;
        }
        c.seed = base.seed.wrapping_add(k);
        c.interval = config.interval.unwrap_or_else(|| {
            probe_interval(
                base.duration.unwrap_or(DEFAULT_PROBE_DURATION),
                rate,
                config.params.slo.highest_quantile(),
            )
        });
        k += 1;
        let result = crate::run_with_stop(c, Arc::clone(&stop))?;
        Ok(Measurement::from_result(&result)?)
    };
    let outcome = search(&config.params, &stop, probe, on_probe)?;
    let p = &config.params;
    let arrival = match base.mode {
        Mode::Open { arrival, .. } => arrival.to_string(),
        _ => String::new(),
    };
    Ok(SearchResult {
        format: FORMAT_VERSION,
        url: base.target.url.clone(),
        objective: p.slo.text.clone(),
        limits: p.slo.limits(),
        rate: outcome.rate,
        status: outcome.status,
        bracket: outcome.bracket,
        resolution_rate: outcome.rate.map(|r| p.resolution.at(r)),
        runs: outcome.runs,
        probes: outcome.probes,
        warnings: outcome.warnings,
        config: SearchEcho {
            lo: p.lo,
            hi: p.hi,
            resolution: p.resolution.text(),
            repeats: p.repeats,
            max_probes: p.max_probes,
            duration_s: base.duration.map_or(0.0, |d| d.as_secs_f64()),
            warmup_s: base.warmup.as_secs_f64(),
            interval_s: config.interval.map(|i| i.as_secs_f64()),
            arrival,
            seed: base.seed,
        },
    })
}

/// `qload search` flags: the search's own, then those of a run.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Example:\n  qload search --slo 'p99<10ms,errors<0.1%' --lo 100 --hi 2000 http://127.0.0.1:8000/",
    mut_arg("duration", |a| a
        .help("Measured duration of each probe run (e.g. 5s) [default: 5s]")
        .long_help("Measured duration of each probe run, after its warmup [default: 5s].\n\n\
                    The run is cut into 10 to 20 batches (its intervals) for the 95% intervals \
                    of the estimates; see --interval.")),
    mut_arg("warmup", |a| a
        .default_value("1s")
        .help("Send during this time before each probe run measures")),
    mut_arg("interval", |a| a
        .help("Batch length of each probe run [default: the duration / 20, or / 10 to 19 at rates \
               where 20 batches would hold fewer than 1/(1-q) answers for the objective's \
               quantile q]")
        .long_help("Batch length of each probe run (at least 10ms; the duration must hold at \
                    least 10).\n\n\
                    Default: the duration / 20, or over fewer batches (down to 10) at rates \
                    where 20 would hold fewer than 1/(1-q) answers each for the highest quantile \
                    q of the objective (100 for p99): a batch p99 that is its batch's maximum \
                    understates the spread.")),
    mut_arg("seed", |a| a.help("Seed of the first probe run; run k of the search uses seed + k")),
    mut_arg("arrival", |a| a.requires(clap::builder::Resettable::Reset)),
    mut_arg("json", |a| a.help("Print one JSON document with every probe (search.schema.json) instead of the text")),
    mut_arg("quiet", |a| a.help("With --json, no probe lines on stderr")),
    mut_arg("rate", |a| a.hide(true)),
    mut_arg("users", |a| a.hide(true)),
    mut_arg("think", |a| a.hide(true)),
    mut_arg("max", |a| a.hide(true)),
    mut_arg("requests", |a| a.hide(true)),
    mut_arg("csv", |a| a.hide(true)),
    mut_arg("mu", |a| a.hide(true)),
    mut_arg("servers", |a| a.hide(true)),
    mut_arg("capacity", |a| a.hide(true)),
    mut_arg("service", |a| a.hide(true)),
    mut_arg("model", |a| a.hide(true)),
    mut_arg("discipline", |a| a.hide(true)),
    mut_arg("classes", |a| a.hide(true)),
)]
pub struct SearchArgs {
    /// The objective: METRIC<VALUE, comma-separated, all must hold (e.g. 'p99<10ms,errors<1%').
    ///
    /// METRIC is mean, p50, p90, p99 or p999 (the latency from the intended send time, VALUE with
    /// a unit: us, ms, s) or errors (failed / (completed + failed), VALUE a percentage or a
    /// fraction: 1%, 0.001). A probe meets it when every 95% interval lies below its bound.
    #[arg(long, value_name = "OBJECTIVE", help_heading = "Search")]
    pub slo: String,

    /// The first rate probed, per second (e.g. 100, 2k).
    ///
    /// If it fails, there is no answer (exit code 1). Without --hi the rate is doubled from here
    /// until a probe fails.
    #[arg(long, value_name = "RATE", value_parser = parse_rate, default_value = "10",
          help_heading = "Search")]
    pub lo: f64,

    /// The top of the range: bisect [--lo, --hi] (no doubling). If it meets, the answer is "at
    /// least --hi".
    #[arg(long, value_name = "RATE", value_parser = parse_rate, help_heading = "Search")]
    pub hi: Option<f64>,

    /// Stop bisecting when the bracket is this narrow: a percentage of the answer (1%) or a
    /// rate (5, 5/s).
    #[arg(
        long,
        value_name = "RES",
        default_value = "1%",
        help_heading = "Search"
    )]
    pub resolution: String,

    /// Most runs of one probe: an undecided probe (an interval across its bound) is repeated at
    /// the same rate, the runs pooled; after N runs its point estimate decides.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_REPEATS, help_heading = "Search")]
    pub repeats: u32,

    /// Most runs of the whole search (each repeat counts): bounds its time to about N × (-d +
    /// --warmup). When reached, the answer is the best so far.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PROBES, help_heading = "Search")]
    pub max_probes: u32,

    /// The flags of each probe run.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Where the search's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchOutput {
    /// One JSON document on stdout (probe lines on stderr unless `quiet`) instead of text.
    pub json: bool,
    /// No probe lines on stderr with `json`.
    pub quiet: bool,
}

impl SearchArgs {
    /// Validates the flags into a search (errors are usage errors).
    pub fn into_config(self) -> Result<(SearchConfig, SearchOutput), CliError> {
        let usage = |m: &str| Err(CliError::Usage(m.to_owned()));
        let r = &self.run;
        if r.rate.is_some() {
            return usage("--rate: the search chooses the rate; bound it with --lo and --hi");
        }
        if r.users.is_some() || r.think.is_some() || r.max {
            return usage(
                "--users, --think and --max are closed loops; the search runs the open loop at \
                 the rates it chooses",
            );
        }
        if r.requests.is_some() {
            return usage("--requests: each probe run is bounded by -d (default 5s)");
        }
        if r.csv.is_some() {
            return usage("--csv: a search writes no time series (--json has every probe)");
        }
        if r.model.mu.is_some() || r.model.describes_queue() {
            return usage("--mu and the other theory flags do not apply to a search");
        }
        let slo = Slo::parse(&self.slo).map_err(|e| CliError::Usage(format!("--slo {e}")))?;
        let resolution = Resolution::parse(&self.resolution)
            .map_err(|e| CliError::Usage(format!("--resolution {e}")))?;
        let bad_rate = |x: f64| !(x.is_finite() && x > 0.0 && x <= MAX_RATE);
        if bad_rate(self.lo) {
            return usage("--lo must be a positive rate of at most 100M/s");
        }
        if let Some(hi) = self.hi {
            if bad_rate(hi) {
                return usage("--hi must be a positive rate of at most 100M/s");
            }
            if hi <= self.lo {
                return usage("--hi must be above --lo");
            }
        }
        if self.repeats == 0 {
            return usage("--repeats must be at least 1");
        }
        if self.max_probes == 0 {
            return usage("--max-probes must be at least 1");
        }
        let duration = r.duration.unwrap_or(DEFAULT_PROBE_DURATION);
        let interval = r
            .interval
            .unwrap_or(probe_interval(duration, f64::INFINITY, None));
        if interval.is_zero() || duration.as_nanos() / interval.as_nanos() < u128::from(MIN_BATCHES)
        {
            return Err(CliError::Usage(format!(
                "each probe run needs at least {MIN_BATCHES} batches: -d {duration:?} with \
                 intervals of {interval:?} gives fewer (a longer -d, or a shorter --interval of \
                 at least 10ms)"
            )));
        }
        let output = SearchOutput {
            json: r.json,
            quiet: r.quiet,
        };
        let given_interval = r.interval;
        let mut run = self.run;
        run.rate = Some(queuelab_common::profile::RateSpec::Constant(self.lo));
        run.duration = Some(duration);
        run.interval = Some(interval);
        let (mut base, _) = run.into_config()?;
        base.live = false;
        Ok((
            SearchConfig {
                base,
                interval: given_interval,
                params: Params {
                    slo,
                    lo: self.lo,
                    hi: self.hi,
                    resolution,
                    repeats: self.repeats,
                    max_probes: self.max_probes,
                },
            },
            output,
        ))
    }
}

impl SearchOutput {
    /// Shows a decided probe: a line on stdout (text) or stderr (`--json`, unless quiet).
    pub fn probe(&self, p: &ProbeRecord) {
        let line = p.text();
        if !self.json {
            // A closed stdout is reported when the summary is written.
            let _ = print_stdout(&line);
        } else if !self.quiet {
            let _ = io::stderr().lock().write_all(line.as_bytes());
        }
    }

    /// Writes the result; no answer is an error (exit 1), an interrupted search exits 130.
    pub fn emit(&self, r: &SearchResult) -> Result<(), CliError> {
        if self.json {
            let mut s = serde_json::to_string_pretty(r).map_err(|e| CliError::Runtime(e.into()))?;
            s.push('\n');
            print_stdout(&s)?;
        } else {
            print_stdout(&r.text())?;
        }
        match r.status {
            Status::BelowLo => Err(CliError::Runtime(anyhow::anyhow!(
                "no rate meets {}: even --lo {} fails",
                r.objective,
                fmt_rate(r.config.lo)
            ))),
            Status::Interrupted => Err(CliError::Interrupted("search interrupted".into())),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use queuelab_common::samplers::{self, ArrivalKind};
    use queuelab_common::stats::{new_histogram, record_ns};

    #[test]
    fn objective_grammar() {
        use Metric::*;
        let ok: &[(&str, &[(Metric, f64)])] = &[
            ("p99<10ms", &[(P99, 10_000.0)]),
            ("  P99 < 10ms ", &[(P99, 10_000.0)]),
            ("mean<500us", &[(Mean, 500.0)]),
            ("p50<250µs", &[(P50, 250.0)]),
            ("p90<1.5ms", &[(P90, 1_500.0)]),
            ("p999<1s", &[(P999, 1e6)]),
            ("p99<100ns", &[(P99, 0.1)]),
            ("errors<1%", &[(Errors, 0.01)]),
            ("errors<0.001", &[(Errors, 0.001)]),
            ("errors<0.5 %", &[(Errors, 0.005)]),
            ("errors<100%", &[(Errors, 1.0)]),
            ("p99<10ms,errors<0.1%", &[(P99, 10_000.0), (Errors, 0.001)]),
            (
                "errors<1%, mean<2ms ,p50<1ms",
                &[(Errors, 0.01), (Mean, 2_000.0), (P50, 1_000.0)],
            ),
        ];
        for &(text, want) in ok {
            let slo = Slo::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let got: Vec<(Metric, f64)> =
                slo.objectives.iter().map(|o| (o.metric, o.limit)).collect();
            assert_eq!(got.len(), want.len(), "{text}");
            for (g, w) in got.iter().zip(want) {
                assert_eq!(g.0, w.0, "{text}");
                assert!(
                    (g.1 - w.1).abs() <= 1e-9 * w.1,
                    "{text}: {} vs {}",
                    g.1,
                    w.1
                );
            }
            assert_eq!(slo.text, text.trim());
        }
        // Every error names what is wrong.
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("p99<10", "needs a unit"),
            ("p99<10.", "needs a unit"),
            ("p99<", "no value"),
            ("errors<", "no value"),
            ("p99<0ms", "positive"),
            ("p99<fast", "not a duration"),
            ("p99<-1ms", "not a duration"),
            ("p99<=10ms", "only < is supported (write p99<10ms)"),
            ("p99>10ms", "upper bounds"),
            ("p99 10ms", "expected METRIC<VALUE"),
            ("p95<10ms", "unknown metric \"p95\""),
            ("<10ms", "unknown metric \"\""),
            ("p99<10ms,", "empty objective"),
            ("p99<10ms,,errors<1%", "empty objective"),
            ("p99<10ms,p99<5ms", "bounded twice"),
            ("errors<0%", "must be positive"),
            ("errors<0", "must be positive"),
            ("errors<-1%", "must be positive"),
            ("errors<5", "for a percentage write 5%"),
            ("errors<150%", "at most 100%"),
            ("errors<lots", "not a number"),
            ("errors<nan", "not a number"),
            ("errors<inf%", "not a number"),
        ];
        for &(text, want) in bad {
            let e = Slo::parse(text).expect_err(text).to_string();
            assert!(e.contains(want), "{text:?}: {e:?} should say {want:?}");
        }
        let e = Slo::parse("p99<10ms,p95<5ms").expect_err("p95");
        assert_eq!(e.part, "p95<5ms", "the part at fault is named");
        let slo = Slo::parse("p99<10ms,errors<1%").expect("parses");
        assert_eq!(
            slo.limits(),
            BTreeMap::from([("p99_us".to_owned(), 10_000.0), ("errors".to_owned(), 0.01)])
        );
    }

    #[test]
    fn resolution_grammar() {
        assert_eq!(Resolution::parse("1%"), Ok(Resolution::Relative(0.01)));
        assert_eq!(Resolution::parse(" 2.5% "), Ok(Resolution::Relative(0.025)));
        assert_eq!(Resolution::parse("5"), Ok(Resolution::Absolute(5.0)));
        assert_eq!(Resolution::parse("5/s"), Ok(Resolution::Absolute(5.0)));
        assert_eq!(Resolution::parse("1k"), Ok(Resolution::Absolute(1000.0)));
        for bad in ["0%", "100%", "-1%", "x%", "0", "fast", ""] {
            assert!(Resolution::parse(bad).is_err(), "{bad:?}");
        }
        assert!((Resolution::Relative(0.01).at(540.0) - 5.4).abs() < 1e-12);
        assert_eq!(Resolution::Absolute(5.0).at(540.0), 5.0);
        assert_eq!(Resolution::Relative(0.01).text(), "1%");
        assert_eq!(Resolution::Absolute(5.0).text(), "5/s");
    }

    #[test]
    fn probes_take_fewer_batches_where_twenty_would_be_too_small_for_the_quantile() {
        let d = Duration::from_secs(5);
        let ms = Duration::from_millis;
        // 20 batches of 250 ms need 100 answers each for a p99: 400/s and above.
        assert_eq!(probe_interval(d, 400.0, Some(0.99)), ms(250));
        assert_eq!(probe_interval(d, 1e6, Some(0.99)), ms(250));
        // At 300/s: 15 batches of 100 answers.
        assert_eq!(probe_interval(d, 300.0, Some(0.99)), d / 15);
        // Never fewer than 10, however low the rate.
        assert_eq!(probe_interval(d, 10.0, Some(0.99)), ms(500));
        assert_eq!(probe_interval(d, 0.0, Some(0.999)), ms(500));
        // A p999 needs 1000 per batch: 20 batches from 4000/s.
        assert_eq!(probe_interval(d, 3000.0, Some(0.999)), d / 15);
        // The mean and errors alone: 20.
        assert_eq!(probe_interval(d, 10.0, None), ms(250));
        // Never below the 10 ms a run allows.
        assert_eq!(probe_interval(ms(150), 1e6, Some(0.5)), ms(10));
        let slo = Slo::parse("mean<1ms,p90<2ms,p99<3ms,errors<1%").expect("parses");
        assert_eq!(slo.highest_quantile(), Some(0.99));
        assert_eq!(
            Slo::parse("mean<1ms").expect("parses").highest_quantile(),
            None
        );
    }

    #[test]
    fn midpoints_are_geometric_on_wide_brackets() {
        assert!((midpoint(100.0, 1000.0) - 1000f64.sqrt() * 10.0).abs() < 1e-9);
        assert_eq!(midpoint(100.0, 400.0), 250.0);
        assert_eq!(midpoint(316.0, 1000.0), 658.0);
    }

    /// A measurement of the latencies `lat_ns` cut into `batches` batches in order (the last
    /// may be short), with `failed` failures beside them: what a run's pooled histogram and its
    /// intervals give.
    fn measured(lat_ns: &[u64], batches: usize, failed: u64, duration_s: f64) -> Measurement {
        let mut all = new_histogram();
        let mut h = new_histogram();
        let size = lat_ns.len().div_ceil(batches).max(1);
        let mut out = Vec::new();
        let q = |h: &Histogram<u64>, q: f64| Some(h.value_at_quantile(q) as f64 / 1e3);
        for chunk in lat_ns.chunks(size) {
            h.reset();
            for &x in chunk {
                record_ns(&mut all, x);
                record_ns(&mut h, x);
            }
            out.push(Batch {
                completed: chunk.len() as u64,
                mean_us: chunk.iter().sum::<u64>() as f64 / chunk.len() as f64 / 1e3,
                p50_us: q(&h, 0.5),
                p90_us: q(&h, 0.9),
                p99_us: q(&h, 0.99),
                p999_us: q(&h, 0.999),
            });
        }
        Measurement {
            latency: all,
            batches: out,
            completed: lat_ns.len() as u64,
            failed,
            runs: 1,
            duration_s,
            interval_s: duration_s / batches as f64,
            schedule_kept: true,
            path_p99_us: None,
            path_max_us: None,
            warnings: Vec::new(),
        }
    }

    /// A measurement whose pooled histogram holds `pooled_us` (100 times) and whose batches have
    /// the p99 (and mean) values `batch_us`.
    fn with_batches(pooled_us: f64, batch_us: &[f64]) -> Measurement {
        let mut all = new_histogram();
        for _ in 0..100 {
            record_ns(&mut all, (pooled_us * 1e3) as u64);
        }
        Measurement {
            latency: all,
            batches: batch_us
                .iter()
                .map(|&x| Batch {
                    completed: 5,
                    mean_us: x,
                    p99_us: Some(x),
                    ..Batch::default()
                })
                .collect(),
            completed: 100,
            failed: 0,
            runs: 1,
            duration_s: 1.0,
            interval_s: 0.05,
            schedule_kept: true,
            path_p99_us: None,
            path_max_us: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn latency_intervals_are_t_over_root_n_of_the_batches_around_the_pooled_value() {
        let m = with_batches(2_500.0, &[1_000.0, 2_000.0, 3_000.0, 4_000.0]);
        // s of 1, 2, 3, 4 ms: √(5/3) ms; half-width t(3)·s/√4, around the pooled 2.5 ms (the
        // histogram's value, within its 0.1%).
        let half = stats::student_t_975(3) * (5.0f64 / 3.0).sqrt() * 1e3 / 2.0;
        for metric in [Metric::P99, Metric::Mean] {
            let e = m.estimate(metric);
            let v = e.value.expect("a value");
            assert!((v - 2_500.0).abs() <= 2.5, "{metric:?} {v}");
            assert!((e.low.expect("low") - (v - half)).abs() < 1e-9, "{e:?}");
            assert!((e.high.expect("high") - (v + half)).abs() < 1e-9, "{e:?}");
        }
        // Batches without the metric (no p50 here) give no interval; nor does one batch.
        let e = m.estimate(Metric::P50);
        assert!(e.value.is_some() && e.low.is_none() && e.high.is_none());
        let one = with_batches(2_500.0, &[1_000.0]);
        assert_eq!(one.estimate(Metric::P99).high, None);
        // Nothing completed: nothing at all.
        let mut none = with_batches(2_500.0, &[]);
        none.latency.reset();
        assert_eq!(none.estimate(Metric::P99), Estimate::default());
    }

    #[test]
    fn the_error_interval_is_wilson() {
        let near = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        // Reference values of the 95% Wilson interval (z = 1.959964).
        let (lo, hi) = wilson(5, 100).expect("n > 0");
        assert!((lo - 0.021_543_679).abs() < 1e-8 && (hi - 0.111_750_469).abs() < 1e-8);
        let (lo, hi) = wilson(0, 100).expect("n > 0");
        assert!(lo == 0.0 && (hi - 0.036_993_498).abs() < 1e-8);
        let (lo, hi) = wilson(10, 10).expect("n > 0");
        assert!((lo - 0.722_467_200).abs() < 1e-8 && hi == 1.0);
        assert_eq!(wilson(0, 0), None);
        let mut m = with_batches(1_000.0, &[1_000.0, 1_000.0]);
        m.completed = 95;
        m.failed = 5;
        let e = m.estimate(Metric::Errors);
        assert!(
            near(e.value, 0.05)
                && near(e.low, 0.021_543_679_154)
                && near(e.high, 0.111_750_469_232)
        );
    }

    #[test]
    fn decisions() {
        let slo = |t: &str| Slo::parse(t).expect("parses");
        // Interval [0.446, 4.554] ms (half-width t(3)·1.291/2 = 2.054 ms around 2.5 ms).
        let m = with_batches(2_500.0, &[1_000.0, 2_000.0, 3_000.0, 4_000.0]);
        assert_eq!(m.decide(&slo("p99<5ms")), Decision::Meets);
        assert_eq!(m.decide(&slo("p99<400us")), Decision::Fails);
        assert_eq!(m.decide(&slo("p99<3ms")), Decision::Undecided);
        assert_eq!(m.by_estimate(&slo("p99<3ms")), Verdict::Meets);
        assert_eq!(m.by_estimate(&slo("p99<2ms")), Verdict::Fails);
        // All must hold: one failing bound fails, one open bound leaves it open.
        assert_eq!(m.decide(&slo("p99<5ms,mean<400us")), Decision::Fails);
        assert_eq!(m.decide(&slo("p99<5ms,mean<3ms")), Decision::Undecided);
        assert_eq!(m.decide(&slo("mean<3ms,p99<400us")), Decision::Fails);
        // No interval (one batch): open, decided by the estimate.
        let one = with_batches(2_500.0, &[1_000.0]);
        assert_eq!(one.decide(&slo("p99<1s")), Decision::Undecided);
        assert_eq!(one.by_estimate(&slo("p99<1s")), Verdict::Meets);
        // Errors: 0 of 100 has the upper end 3.7%: meets 5%, open at 1%.
        assert_eq!(m.decide(&slo("p99<5ms,errors<5%")), Decision::Meets);
        assert_eq!(m.decide(&slo("p99<5ms,errors<1%")), Decision::Undecided);
        let mut failing = m.clone();
        failing.failed = 20;
        // 20 of 120: [11.0%, 23.9%].
        assert_eq!(failing.decide(&slo("p99<5ms,errors<10%")), Decision::Fails);
        assert_eq!(failing.decide(&slo("p99<5ms,errors<30%")), Decision::Meets);
        // More failed than completed fails whatever the objective says, and nothing completed too.
        failing.failed = 101;
        assert_eq!(failing.decide(&slo("p99<1s")), Decision::Fails);
        assert_eq!(failing.by_estimate(&slo("p99<1s")), Verdict::Fails);
        assert!(failing.own_warnings(&slo("p99<1s"))[0].starts_with("errors dominate"));
        let mut none = with_batches(2_500.0, &[]);
        none.latency.reset();
        none.completed = 0;
        assert_eq!(none.decide(&slo("errors<100%")), Decision::Fails);
        assert_eq!(none.by_estimate(&slo("errors<100%")), Verdict::Fails);
        assert_eq!(none.own_warnings(&slo("p99<1s")), ["no request completed"]);
    }

    #[test]
    fn pooling_adds_histograms_batches_and_counts() {
        let mut a = measured(&[1_000_000; 100], 20, 1, 1.0);
        let mut b = measured(&[3_000_000; 300], 20, 2, 2.0);
        a.warnings = vec!["w1".into()];
        b.warnings = vec!["w1".into(), "w2".into()];
        b.schedule_kept = false;
        b.path_p99_us = Some(40.0);
        b.path_max_us = Some(400.0);
        a.pool(b);
        assert_eq!((a.completed, a.failed, a.runs), (400, 3, 2));
        assert_eq!(a.batches.len(), 40);
        assert_eq!(a.duration_s, 3.0);
        assert!(!a.schedule_kept);
        assert_eq!((a.path_p99_us, a.path_max_us), (Some(40.0), Some(400.0)));
        assert_eq!(a.warnings, ["w1", "w2"]);
        // The pooled median is that of the union: 3 ms (300 of 400).
        let p50 = a.estimate(Metric::P50).value.expect("a value");
        assert!((p50 - 3_000.0).abs() <= 3.0, "{p50}");
    }

    #[test]
    fn a_run_becomes_a_measurement() {
        let mut r = crate::merge::tests::sample_result();
        let mut h = new_histogram();
        for k in 1..=100 {
            record_ns(&mut h, k * 10_000);
        }
        r.histogram = stats::histogram_to_string(&h);
        r.requests.completed = 100;
        r.requests.errors = 4;
        r.duration_s = 2.0;
        let iv = |duration_s: f64, completed: u64, p99: f64| Interval {
            duration_s,
            completed,
            mean_us: p99 / 2.0,
            p99_us: Some(p99),
            ..Interval::default()
        };
        // Four full intervals, one empty, the stub at the end: three batches... four.
        r.intervals = vec![
            iv(0.5, 30, 900.0),
            iv(0.5, 0, 0.0),
            iv(0.5, 30, 1_000.0),
            iv(0.5, 39, 1_100.0),
            iv(0.1, 1, 5_000.0),
        ];
        r.warnings = vec![
            "rate missed: sent 90 requests/s against a target of 100 (the schedule could not be kept)".into(),
            "4 of 104 requests failed (3.8%)".into(),
        ];
        r.path_us = Some(crate::result::DurationSummary {
            p99: 55.0,
            max: 90.0,
            ..Default::default()
        });
        let m = Measurement::from_result(&r).expect("decodes");
        assert_eq!(
            m.batches.len(),
            3,
            "the empty interval and the stub are no batches"
        );
        assert_eq!(m.batches[2].p99_us, Some(1_100.0));
        assert_eq!(
            (m.completed, m.failed, m.runs, m.duration_s),
            (100, 4, 1, 2.0)
        );
        assert!(!m.schedule_kept);
        assert_eq!((m.path_p99_us, m.path_max_us), (Some(55.0), Some(90.0)));
        assert_eq!(m.latency.len(), 100);
        let p99 = m.estimate(Metric::P99).value.expect("a value");
        assert!((p99 - 990.0).abs() <= 1.0, "{p99}");
        r.histogram = "not base64!".into();
        assert!(Measurement::from_result(&r).is_err());
    }

    /// The warnings of a run that say its schedule was not kept are the ones recognised.
    #[test]
    fn schedule_warnings_are_recognised() {
        let addr = "127.0.0.1:9".parse().expect("literal address");
        let config = Config::new(
            crate::Target::get(addr),
            Mode::Open {
                rate: 1000.0,
                arrival: ArrivalKind::Poisson,
            },
        );
        let mut r = crate::merge::tests::sample_result();
        r.target_rate = Some(1000.0);
        r.duration_s = 1.0;
        r.achieved_rate = 500.0;
        r.requests.issued = 1000;
        r.requests.sent = 500;
        r.requests.sent_in_window = 500;
        r.requests.completed = 480;
        r.requests.errors = 520;
        r.requests.errors_by_kind.backlog = 500;
        r.requests.backlog_waits = 600;
        r.send_lag_us.p99 = 50_000.0;
        r.arrivals.ks_p = Some(1e-9);
        r.arrivals.ks_d = Some(0.2);
        r.config.threads = 1;
        let w = crate::schedule_warnings(&r, &config);
        let schedule: Vec<&String> = w.iter().filter(|w| is_schedule_warning(w)).collect();
        assert_eq!(schedule.len(), 3, "{w:#?}");
        // Backlog, waits and failures are not about the schedule.
        assert_eq!(w.len(), 6, "{w:#?}");
        r.warnings = w;
        assert!(!Measurement::from_result(&r).expect("decodes").schedule_kept);
    }

    /// A simulated server: each run at rate λ gives `seconds·λ` independent Exp(μ − λ)
    /// latencies (the M/M/1 sojourn time; past μ, Exp(1/s): far above any bound), in 20
    /// batches, drawn from a seeded stream. Its p99 is ln(100)/(μ − λ).
    fn mm1_probe(
        mu: f64,
        seconds: f64,
        seed: u64,
    ) -> impl FnMut(f64) -> anyhow::Result<Measurement> {
        let mut rng = samplers::rng(seed, 0);
        move |rate| {
            let n = ((rate * seconds).round() as usize).max(1);
            let mean_s = 1.0 / (mu - rate).max(1.0);
            let lat: Vec<u64> = (0..n)
                .map(|_| (samplers::exp_sample(mean_s, &mut rng) * 1e9) as u64)
                .collect();
            Ok(measured(&lat, 20, 0, seconds))
        }
    }

    fn params(slo: &str, lo: f64, hi: Option<f64>) -> Params {
        Params {
            slo: Slo::parse(slo).expect("parses"),
            lo,
            hi,
            resolution: Resolution::Relative(0.01),
            repeats: 3,
            max_probes: 40,
        }
    }

    fn run_search(
        p: &Params,
        probe: impl FnMut(f64) -> anyhow::Result<Measurement>,
    ) -> (Outcome, Vec<f64>) {
        let mut seen = Vec::new();
        let o = search(p, &AtomicBool::new(false), probe, |r| seen.push(r.rate))
            .expect("the fakes do not fail");
        // Every probe was shown once, in order, and the runs add up.
        let rates: Vec<f64> = o.probes.iter().map(|p| p.rate).collect();
        assert_eq!(rates, seen);
        assert_eq!(o.probes.iter().map(|p| p.repeats).sum::<u32>(), o.runs);
        assert!(o.runs <= p.max_probes);
        (o, rates)
    }

    /// Checks that `o` is a consistent bracket: the highest rate that met and the lowest that
    /// failed, met below failed.
    fn assert_bracket(o: &Outcome) {
        let met = o
            .probes
            .iter()
            .filter(|p| p.verdict == Verdict::Meets)
            .map(|p| p.rate)
            .fold(None, |a: Option<f64>, r| Some(a.map_or(r, |a| a.max(r))));
        let failed = o
            .probes
            .iter()
            .filter(|p| p.verdict == Verdict::Fails)
            .map(|p| p.rate)
            .fold(None, |a: Option<f64>, r| Some(a.map_or(r, |a| a.min(r))));
        assert_eq!(o.bracket, [met, failed], "{o:#?}");
        assert_eq!(o.rate, met);
        if let [Some(g), Some(b)] = o.bracket {
            assert!(g < b, "{o:#?}");
        }
    }

    // The tolerance of the knee against the simulated M/M/1 (μ = 1000/s, p99 < 10 ms, so
    // λ* = μ − ln(100)/10 ms = 539.48/s), derived:
    //
    // A probe at rate r is decided wrongly only if its pooled estimate p̂ lies on the other
    // side of the bound from the true p99(r): "meets" needs p̂ < 10 ms (the interval's upper end,
    // or the estimate itself when undecided, is below it), "fails" needs p̂ > 10 ms. p̂ is the
    // ⌈0.99 N⌉-th of N = 60 r·k iid Exp(μ − r) values (k = 1, 2, 3 pooled runs), rounded up by
    // at most 0.1% by the histogram, so P(wrong at r) is a binomial tail: below λ*,
    // P(#{X > 10 ms/1.001} ≥ N − ⌊0.99N⌋ + 2), above it P(#{X > 10.01 ms} ≤ N − ⌈0.99N⌉ − 1),
    // summed over k. Computed exactly (log-gamma sums): it is below 2.5·10⁻⁸ for every
    // r ≤ 507.08/s (down to 10/s) and every r ≥ 567.68/s. A search runs at most 40 runs, so
    // with probability above 1 − 40 · 2.5·10⁻⁸ = 1 − 10⁻⁶ every probe outside (507.08, 567.68)
    // is decided rightly. Then the answer g (it met) is below 567.68, and the lowest failing
    // rate b (it failed) is above 507.08 with b − g ≤ 1% of g < 5.68: g > 501.4.
    const KNEE_LOW: f64 = 501.4;
    const KNEE_HIGH: f64 = 567.68;

    #[test]
    fn bisection_finds_the_knee_of_a_simulated_mm1() {
        let p = params("p99<10ms", 100.0, Some(1000.0));
        let (o, rates) = run_search(&p, mm1_probe(1000.0, 60.0, 7));
        assert_eq!(o.status, Status::Found, "{o:#?}");
        assert_bracket(&o);
        let (g, b) = (o.rate.expect("found"), o.bracket[1].expect("found"));
        assert!(KNEE_LOW < g && g < KNEE_HIGH, "knee {g}/s, {rates:?}");
        assert!(b - g <= 0.01 * g, "bracket [{g}, {b}]");
        // lo, hi, then the geometric midpoint of [100, 1000], then arithmetic ones.
        assert_eq!(rates[..3], [100.0, 1000.0, midpoint(100.0, 1000.0)]);
        assert_eq!(o.probes[0].verdict, Verdict::Meets);
        assert_eq!(o.probes[1].verdict, Verdict::Fails);
        // Each probe has its estimate and interval of the p99, in µs.
        for pr in &o.probes {
            let e = pr.estimate["p99_us"].expect("answers");
            let (lo, hi) = (
                pr.low["p99_us"].expect("batches"),
                pr.high["p99_us"].expect("batches"),
            );
            assert!(lo < e && e < hi, "{pr:?}");
            assert_eq!(pr.batches, 20 * u64::from(pr.repeats));
        }
    }

    #[test]
    fn without_hi_the_rate_doubles_until_a_probe_fails() {
        let p = params("p99<10ms", 10.0, None);
        let (o, rates) = run_search(&p, mm1_probe(1000.0, 60.0, 8));
        assert_eq!(o.status, Status::Found, "{o:#?}");
        assert_bracket(&o);
        // 10 … 320 are far below the knee, 640 far above (see KNEE_LOW): decided rightly.
        assert_eq!(rates[..7], [10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0]);
        let verdicts: Vec<Verdict> = o.probes[..7].iter().map(|p| p.verdict).collect();
        assert_eq!(verdicts[..6], [Verdict::Meets; 6]);
        assert_eq!(verdicts[6], Verdict::Fails);
        // Then bisection of [320, 640]: arithmetic midpoints.
        assert_eq!(rates[7], 480.0);
        let g = o.rate.expect("found");
        assert!(KNEE_LOW < g && g < KNEE_HIGH, "knee {g}/s, {rates:?}");
    }

    #[test]
    fn doubling_stops_at_its_bounds() {
        // A server that meets everything: 200 answers of 1 ms at any rate.
        let fast = |_rate: f64| Ok(measured(&[1_000_000; 200], 20, 0, 1.0));
        let mut p = params("p99<10ms", 1.0, None);
        p.max_probes = 100;
        let (o, rates) = run_search(&p, fast);
        assert_eq!(o.status, Status::AtLeast);
        assert_eq!(rates.len(), 1 + MAX_DOUBLINGS as usize);
        assert_eq!(o.rate, Some(f64::from(1u32 << MAX_DOUBLINGS)));
        assert_eq!(o.bracket, [o.rate, None]);
        assert!(o.warnings[0].contains("20 doublings"), "{:?}", o.warnings);
        // From 1M/s: 2M … 64M, then 128M would pass the rate a run may have.
        let p = params("p99<10ms", 1e6, None);
        let (o, rates) = run_search(&p, fast);
        assert_eq!(o.status, Status::AtLeast);
        assert_eq!(rates.last(), Some(&64e6));
        assert_eq!(rates.len(), 7);
    }

    #[test]
    fn a_failing_lo_has_no_answer() {
        // 600/s is above KNEE_HIGH: it fails (p99 11.5 ms).
        let p = params("p99<10ms", 600.0, Some(1000.0));
        let (o, rates) = run_search(&p, mm1_probe(1000.0, 60.0, 9));
        assert_eq!(o.status, Status::BelowLo);
        assert_eq!(rates, [600.0]);
        assert_eq!((o.rate, o.bracket), (None, [None, Some(600.0)]));
        assert!(
            o.warnings[0].contains("even --lo 600.0/s fails p99<10ms"),
            "{:?}",
            o.warnings
        );
        // So does one where everything fails outright.
        let refused = |_rate: f64| {
            let mut m = measured(&[], 20, 500, 1.0);
            m.latency.reset();
            Ok(m)
        };
        let (o, _) = run_search(&params("p99<10ms", 100.0, None), refused);
        assert_eq!(o.status, Status::BelowLo);
        assert_eq!(o.probes[0].warnings, ["no request completed"]);
        assert_eq!(o.probes[0].estimate["p99_us"], None);
    }

    #[test]
    fn a_passing_hi_is_a_lower_bound() {
        // 400/s is below KNEE_LOW: it meets.
        let p = params("p99<10ms", 100.0, Some(400.0));
        let (o, rates) = run_search(&p, mm1_probe(1000.0, 60.0, 10));
        assert_eq!(o.status, Status::AtLeast);
        assert_eq!(rates, [100.0, 400.0]);
        assert_eq!((o.rate, o.bracket), (Some(400.0), [Some(400.0), None]));
        assert!(o.warnings[0].contains("at or above"), "{:?}", o.warnings);
    }

    #[test]
    fn max_probes_bounds_the_runs() {
        let mut p = params("p99<10ms", 100.0, Some(1000.0));
        p.max_probes = 4;
        let (o, _) = run_search(&p, mm1_probe(1000.0, 60.0, 11));
        assert_eq!(o.status, Status::MaxProbes, "{o:#?}");
        assert_eq!(o.runs, 4);
        assert_bracket(&o);
        let (g, b) = (o.rate.expect("lo met"), o.bracket[1].expect("hi failed"));
        assert!(b - g > 0.01 * g);
        assert!(
            o.warnings.iter().any(|w| w.contains("--max-probes")),
            "{:?}",
            o.warnings
        );
        // A budget of one run: lo alone.
        p.max_probes = 1;
        let (o, _) = run_search(&p, mm1_probe(1000.0, 60.0, 12));
        assert_eq!(
            (o.status, o.runs, o.probes.len()),
            (Status::MaxProbes, 1, 1)
        );
    }

    #[test]
    fn undecided_probes_repeat_and_pool() {
        // Every run: pooled p99 9 ms, batch p99s alternating 5 and 13 ms. One run: half-width
        // t(19)·4.10/√20 = 1.92 ms; three pooled: t(59)·4.03/√60 = 1.04 ms: [7.96, 10.04] ms,
        // still across 10 ms.
        let alternating = || with_batches(9_000.0, &[5_000.0, 13_000.0].repeat(10));
        let mut runs = 0;
        let probe = |_rate: f64| {
            runs += 1;
            Ok(alternating())
        };
        let p = params("p99<10ms", 100.0, Some(200.0));
        let (o, _) = run_search(&p, probe);
        assert_eq!(o.status, Status::AtLeast);
        for pr in &o.probes {
            assert_eq!(
                (pr.repeats, pr.undecided, pr.verdict),
                (3, true, Verdict::Meets)
            );
            assert_eq!(pr.batches, 60);
        }
        assert_eq!(o.runs, 6);
        assert!(
            o.warnings
                .iter()
                .any(|w| w.contains("2 probe(s) stayed undecided"))
        );
        // Decided by the pooled runs: the second run's batches all at 9 ms narrow the interval
        // to t(39)·2.86/√40 = 0.92 ms, below 10 ms.
        let mut k = 0;
        let probe = |_rate: f64| {
            k += 1;
            Ok(if k % 2 == 1 {
                alternating()
            } else {
                with_batches(9_000.0, &[9_000.0; 20])
            })
        };
        let (o, _) = run_search(&params("p99<10ms", 100.0, Some(200.0)), probe);
        for pr in &o.probes {
            assert_eq!(
                (pr.repeats, pr.undecided, pr.verdict),
                (2, false, Verdict::Meets)
            );
        }
        // With --repeats 1 the first run decides.
        let mut p = params("p99<10ms", 100.0, Some(200.0));
        p.repeats = 1;
        let (o, _) = run_search(&p, |_| Ok(alternating()));
        assert_eq!(o.runs, 2);
        assert!(o.probes.iter().all(|p| p.undecided && p.repeats == 1));
        // An undecided probe at its bound fails by the estimate: 9 ms is not below 9 ms.
        let (o, _) = run_search(
            &params("p99<9ms", 100.0, Some(200.0)),
            |_| Ok(alternating()),
        );
        assert_eq!(o.status, Status::BelowLo);
        assert!(o.probes[0].undecided);
    }

    #[test]
    fn a_stop_ends_the_search_between_runs() {
        let stop = AtomicBool::new(false);
        let mut calls = 0;
        let probe = |_rate: f64| {
            calls += 1;
            if calls == 3 {
                stop.store(true, Ordering::SeqCst);
            }
            Ok(measured(&[1_000_000; 200], 20, 0, 1.0))
        };
        let o = search(&params("p99<10ms", 100.0, None), &stop, probe, |_| {}).expect("no failure");
        assert_eq!(o.status, Status::Interrupted);
        // The third run was cut by the stop: dropped.
        assert_eq!((o.runs, o.probes.len()), (3, 2));
        assert_eq!(o.rate, Some(200.0));
        // A failing probe fails the search.
        let e = search(
            &params("p99<10ms", 100.0, None),
            &AtomicBool::new(false),
            |_| Err(anyhow::anyhow!("no epoll")),
            |_| {},
        );
        assert!(e.is_err());
    }

    #[test]
    fn small_batches_warn_for_tail_quantiles() {
        // 20 batches of 50 answers: one above the p99 needs 100 per batch, one above p999 1000;
        // the median is fine.
        let m = measured(&[1_000_000; 1000], 20, 0, 1.0);
        let w = m.own_warnings(&Slo::parse("p50<10ms,p99<10ms,p999<10ms").expect("parses"));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("p99: a batch holds 50 answers, fewer than the 100"),
            "{w:?}"
        );
        assert!(
            w[1].starts_with("p999: a batch holds 50 answers, fewer than the 1000"),
            "{w:?}"
        );
        assert!(
            m.own_warnings(&Slo::parse("p90<10ms").expect("parses"))
                .is_empty()
        );
    }

    #[test]
    fn text_output() {
        let (o, _) = run_search(&params("p99<10ms,errors<5%", 100.0, Some(400.0)), |_| {
            Ok(with_batches(2_500.0, &[1_000.0, 2_000.0, 3_000.0, 4_000.0]))
        });
        let line = o.probes[0].line();
        assert_eq!(
            line,
            "   100.0/s  p99 2.50ms [446.3us, 4.55ms]  errors 0.000% [0.000%, 3.699%]  meets  (1 run, 1.0s)",
        );
        let mut quiet = o.probes[0].clone();
        quiet.warnings.clear();
        assert_eq!(quiet.text(), format!("{line}\n"));
        let mut warned = o.probes[0].clone();
        warned.warnings = vec!["send lag p99 900us exceeds 100us".into()];
        assert_eq!(
            warned.text(),
            format!("{line}\n            warning: send lag p99 900us exceeds 100us\n")
        );
        let mut r = SearchResult {
            format: FORMAT_VERSION,
            url: "http://127.0.0.1:1/".into(),
            objective: "p99<10ms".into(),
            limits: BTreeMap::new(),
            rate: Some(538.2),
            status: Status::Found,
            bracket: [Some(538.2), Some(542.0)],
            resolution_rate: Some(5.382),
            runs: 14,
            probes: o.probes,
            warnings: vec!["1 probe(s) stayed undecided".into()],
            config: SearchEcho {
                lo: 100.0,
                hi: Some(1000.0),
                resolution: "1%".into(),
                repeats: 3,
                max_probes: 20,
                duration_s: 5.0,
                warmup_s: 1.0,
                interval_s: None,
                arrival: "poisson".into(),
                seed: 1,
            },
        };
        let t = r.text();
        assert!(
            t.starts_with("knee: 538.2/s meets p99<10ms; 542.0/s fails (resolution 1% = 5.38/s)\n"),
            "{t}"
        );
        assert!(
            t.contains("  2 probes, 14 runs of 5s each (+1s warmup)\n"),
            "{t}"
        );
        assert!(
            t.contains("  warning: 1 probe(s) stayed undecided\n"),
            "{t}"
        );
        r.status = Status::AtLeast;
        r.bracket = [Some(1000.0), None];
        r.rate = Some(1000.0);
        assert!(
            r.text()
                .starts_with("knee: at least 1000.0/s (meets p99<10ms)"),
            "{}",
            r.text()
        );
        r.status = Status::BelowLo;
        r.rate = None;
        assert!(
            r.text()
                .starts_with("knee: none, even 100.0/s fails p99<10ms"),
            "{}",
            r.text()
        );
        r.status = Status::Interrupted;
        assert!(
            r.text().starts_with("knee: none yet (interrupted"),
            "{}",
            r.text()
        );
        r.status = Status::MaxProbes;
        r.rate = Some(500.0);
        r.bracket = [Some(500.0), Some(600.0)];
        assert!(
            r.text()
                .starts_with("knee: 500.0/s meets p99<10ms, 600.0/s fails (best so far"),
            "{}",
            r.text()
        );
    }

    #[test]
    fn rates_print_with_four_digits() {
        assert_eq!(fmt_rate(10.0), "10.00/s");
        assert_eq!(fmt_rate(538.24), "538.2/s");
        assert_eq!(fmt_rate(5000.0), "5000.0/s");
        assert_eq!(fmt_rate(12_500.0), "12.50k/s");
        assert_eq!(fmt_rate(64e6), "64.000M/s");
    }

    /// `qload search …` as clap parses it.
    fn cli(args: &[&str]) -> Result<(SearchConfig, SearchOutput), CliError> {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct T {
            #[command(flatten)]
            search: SearchArgs,
        }
        let mut all = vec!["search"];
        all.extend_from_slice(args);
        let t = T::try_parse_from(all).map_err(|e| CliError::Usage(e.to_string()))?;
        t.search.into_config()
    }

    #[test]
    fn flags_make_the_probe_runs() {
        let url = "http://127.0.0.1:1/";
        let (c, out) = cli(&["--slo", "p99<10ms", url]).expect("valid");
        assert_eq!(c.base.duration, Some(Duration::from_secs(5)));
        assert_eq!(c.base.warmup, Duration::from_secs(1));
        assert_eq!(c.base.interval, Duration::from_millis(250));
        assert_eq!(c.interval, None, "chosen per probe");
        assert!(!c.base.live);
        assert_eq!(c.params.lo, DEFAULT_LO);
        assert_eq!(c.params.hi, None);
        assert_eq!(c.params.resolution, Resolution::Relative(0.01));
        assert_eq!((c.params.repeats, c.params.max_probes), (3, 20));
        assert_eq!(
            out,
            SearchOutput {
                json: false,
                quiet: false
            }
        );
        let (c, out) = cli(&[
            "--slo",
            "p99<10ms,errors<1%",
            "--lo",
            "100",
            "--hi",
            "1k",
            "--resolution",
            "5",
            "--repeats",
            "2",
            "--max-probes",
            "9",
            "-d",
            "2s",
            "--warmup",
            "0.5s",
            "--arrival",
            "constant",
            "-t",
            "1",
            "--timeout",
            "1s",
            "--seed",
            "42",
            "-H",
            "X-A: b",
            "-m",
            "POST",
            "--json",
            "-q",
            url,
        ])
        .expect("valid");
        assert_eq!(c.params.slo.objectives.len(), 2);
        assert_eq!((c.params.lo, c.params.hi), (100.0, Some(1000.0)));
        assert_eq!(c.params.resolution, Resolution::Absolute(5.0));
        assert_eq!((c.params.repeats, c.params.max_probes), (2, 9));
        assert_eq!(c.base.duration, Some(Duration::from_secs(2)));
        assert_eq!(c.base.warmup, Duration::from_millis(500));
        assert_eq!(c.base.interval, Duration::from_millis(100));
        assert_eq!(
            c.base.mode,
            Mode::Open {
                rate: 100.0,
                arrival: ArrivalKind::Constant
            }
        );
        assert_eq!(
            (c.base.threads, c.base.timeout, c.base.seed),
            (Some(1), Duration::from_secs(1), 42)
        );
        assert_eq!(c.base.target.method, "POST");
        assert!(String::from_utf8_lossy(&c.base.target.request).contains("X-A: b\r\n"));
        assert_eq!(
            out,
            SearchOutput {
                json: true,
                quiet: true
            }
        );
        // An --interval that leaves 10 batches is taken.
        let (c, _) = cli(&["--slo", "p99<1s", "-d", "1s", "--interval", "100ms", url]).expect("10");
        assert_eq!(c.interval, Some(Duration::from_millis(100)));
    }

    #[test]
    fn flags_a_search_refuses() {
        let url = "http://127.0.0.1:1/";
        let cases: &[(&[&str], &str)] = &[
            (
                &["--slo", "p99<10ms", "-R", "100", url],
                "--rate: the search chooses",
            ),
            (&["--slo", "p99<10ms", "--users", "3", url], "closed loops"),
            (&["--slo", "p99<10ms", "--max", url], "closed loops"),
            (&["--slo", "p99<10ms", "-n", "100", url], "--requests"),
            (&["--slo", "p99<10ms", "--csv", "x.csv", url], "--csv"),
            (&["--slo", "p99<10ms", "--mu", "1000", url], "theory"),
            (&["--slo", "p99<10ms", "--servers", "2", url], "theory"),
            (
                &["--slo", "p99<10", url],
                "--slo \"p99<10\": a latency needs a unit",
            ),
            (
                &["--slo", "p99<10ms", "--resolution", "0%", url],
                "--resolution",
            ),
            (
                &["--slo", "p99<10ms", "--lo", "100", "--hi", "100", url],
                "--hi must be above --lo",
            ),
            (&["--slo", "p99<10ms", "--lo", "0", url], "must be positive"),
            (
                &["--slo", "p99<10ms", "--hi", "1G", url],
                "--hi must be a positive rate of at most",
            ),
            (&["--slo", "p99<10ms", "--repeats", "0", url], "--repeats"),
            (
                &["--slo", "p99<10ms", "--max-probes", "0", url],
                "--max-probes",
            ),
            (
                &["--slo", "p99<10ms", "-d", "50ms", url],
                "at least 10 batches",
            ),
            (
                &["--slo", "p99<10ms", "--interval", "1s", url],
                "at least 10 batches",
            ),
            (
                &["--slo", "p99<10ms", "ftp://127.0.0.1/"],
                "unsupported scheme",
            ),
            (&["--slo", "p99<10ms", "--timeout", "0s", url], "--timeout"),
            (&[url], "--slo"),
        ];
        for &(args, want) in cases {
            match cli(args) {
                Err(CliError::Usage(m)) => {
                    assert!(m.contains(want), "{args:?}: {m:?} lacks {want:?}")
                }
                other => panic!("{args:?}: {:?}", other.map(|_| ())),
            }
        }
    }
}
