//! What a sweep stores in `results.json`, and how it is read back.
//!
//! The file holds everything needed to redo the analysis: the sweep's configuration, and for each
//! point the lab's own [`PointMeasurement`] (numbers plus the serialized latency histogram), the
//! overhead run's measurement, and both raw qload results as they came (`raw`, `overhead_raw`,
//! qload's [`RunResult`]). `qlab report` recomputes theory, errors, distances, table and plots
//! from the measurements alone; the `analysis` and `overhead` sections are outputs kept for other
//! tools to read, and are ignored on input.
//!
//! Every part is read back through these types. Files written before the measurement kept qload's
//! whole summaries lack `latency_us.count`, `latency_us.min` and `send_lag_us.mean`, which read
//! as 0 (the analysis does not use them), and `batches`, which `qlab report` recounts from `raw`.
use std::fs;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use queuelab_client::result::{ErrorsByKind, Latency, RunResult, SendLag, StatusCounts};
use queuelab_common::model::{Classes, Discipline, Model, Servers, ServiceKind};
use serde::{Deserialize, Serialize};

use crate::analysis::PointAnalysis;

/// Identifies the layout of `results.json`; bumped on incompatible changes.
pub const FORMAT: &str = "queuelab-lab/1";
/// File name of the JSON results inside a sweep's directory.
pub const RESULTS_JSON: &str = "results.json";

/// The sweep's configuration as recorded (strings for the enums, so the file reads plainly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabConfig {
    /// The URL under test.
    pub url: String,
    /// Where the overhead was measured (`None`: not measured).
    pub overhead_url: Option<String>,
    /// Service rate per server μ (1/s).
    pub mu: f64,
    /// `c` or `inf`.
    pub servers: String,
    /// Capacity K.
    pub capacity: Option<u32>,
    /// `exp`, `const`, `uniform` or `zero`.
    pub service: String,
    /// Offered loads per server, in sweep order.
    pub rhos: Vec<f64>,
    /// Measured duration of each point (s).
    pub duration_s: f64,
    /// Measured duration of each point's overhead run (s).
    pub overhead_duration_s: f64,
    /// Base seed; each run's arrival seed is derived from it (`sweep::run_seed`, recorded per point).
    pub seed: u64,
    /// Whether `--quick` chose the durations (precision traded for time).
    pub quick: bool,
    /// The order of service (`fcfs`, `ps`, `priority`, …; absent in older files: FCFS).
    #[serde(default)]
    pub discipline: Option<String>,
    /// The probabilities of the priority classes, `P0,P1,…` (absent: one class).
    #[serde(default)]
    pub classes: Option<String>,
}

impl LabConfig {
    /// The model these strings describe (the queue the sweep drove, as configured on the server).
    pub fn model(&self) -> anyhow::Result<Model> {
        let servers: Servers = self
            .servers
            .parse()
            .with_context(|| format!("config.servers {:?}", self.servers))?;
        let service: ServiceKind = self
            .service
            .parse()
            .with_context(|| format!("config.service {:?}", self.service))?;
        let mut model = Model::new(self.mu, servers)
            .with_capacity(self.capacity)
            .with_service(service);
        if let Some(d) = &self.discipline {
            let d: Discipline = d
                .parse()
                .with_context(|| format!("config.discipline {d:?}"))?;
            model = model.with_discipline(d);
        }
        if let Some(c) = &self.classes {
            let c: Classes = c
                .parse()
                .map_err(|e| anyhow::anyhow!("config.classes {c:?}: {e}"))?;
            model = model.with_classes(c);
        }
        model
            .validate()
            .context("the config section describes no queue")?;
        Ok(model)
    }
}

/// One qload run as the lab uses it: the parts of qload's [`RunResult`] the analysis reads, with
/// the interval of the mean recomputed from the time series (see [`crate::measure`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PointMeasurement {
    /// Intended arrival rate (1/s).
    pub target_rate: f64,
    /// Achieved send rate (1/s).
    pub achieved_rate: f64,
    /// Measured duration (s).
    pub duration_s: f64,
    /// Requests sent.
    pub sent: u64,
    /// Responses received (any status).
    pub completed: u64,
    /// Requests that failed without a response.
    pub errors: u64,
    /// Failures by kind.
    pub errors_by_kind: ErrorsByKind,
    /// Responses by status class, and the 503s.
    pub status: StatusCounts,
    /// Responses with status 503 (blocked by the server's capacity).
    pub blocked: u64,
    /// Response time from the intended send time, µs.
    #[serde(deserialize_with = "LatencyV1::deserialize")]
    pub latency_us: Latency,
    /// Send lag, µs.
    #[serde(deserialize_with = "SendLagV1::deserialize")]
    pub send_lag_us: SendLag,
    /// Coefficient of variation of the actual send gaps (1 for Poisson), if reported.
    pub gap_cv: Option<f64>,
    /// p-value of the KS test of the send gaps against the exponential, if reported.
    pub arrivals_ks_p: Option<f64>,
    /// The response-time histogram (nanoseconds, serialized by `queuelab_common::stats`).
    pub histogram: String,
    /// Batches behind the interval of the mean: the intervals of the time series, a short last
    /// one counted with the one before ([`queuelab_client::result::batch_count`]). `None` when
    /// the result had no time series (and in files written before it was kept).
    #[serde(default)]
    pub batches: Option<u64>,
}

/// Reads a [`Latency`] as `results.json` may hold it: the keys qload's summary had before the lab
/// kept all of them (`count` and `min` absent read as 0). The fields must be those of `Latency`,
/// or this does not compile.
#[derive(Deserialize)]
#[serde(remote = "Latency")]
struct LatencyV1 {
    #[serde(default)]
    count: u64,
    mean: f64,
    stdev: f64,
    #[serde(default)]
    min: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
    ci95_low: Option<f64>,
    ci95_high: Option<f64>,
}

/// Reads a [`SendLag`] as `results.json` may hold it (`mean` absent reads as 0).
#[derive(Deserialize)]
#[serde(remote = "SendLag")]
struct SendLagV1 {
    #[serde(default)]
    mean: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

/// One point of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointRecord {
    /// Position in the sweep.
    pub index: usize,
    /// Offered load per server.
    pub rho: f64,
    /// Arrival rate λ (1/s).
    pub lambda: f64,
    /// Warm-up before measuring (s).
    pub warmup_s: f64,
    /// Seed of the arrival schedule.
    pub seed: u64,
    /// The measurement against the queue.
    pub measured: PointMeasurement,
    /// The same rate against the zero-service path, if measured.
    pub overhead: Option<PointMeasurement>,
    /// qload's result for `measured`, as it came.
    pub raw: RunResult,
    /// qload's result for `overhead`, as it came.
    #[serde(default)]
    pub overhead_raw: Option<RunResult>,
    /// How many times the point was measured (1 when the first attempt passed its checks; 0 in
    /// files written before the checks existed).
    #[serde(default)]
    pub attempts: u32,
    /// Whether the kept attempt passed every check (`None` in files written before the checks).
    #[serde(default)]
    pub verdict: Option<Verdict>,
    /// The checks of the kept attempt, in a fixed order.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// The attempts that were measured again, oldest first, with the checks they failed.
    #[serde(default)]
    pub rejected: Vec<RejectedAttempt>,
    /// What the point is held against, as the sweep decided it (the simulation's results
    /// included, so that `qlab report` does not simulate again). `None` in older files: theory.
    #[serde(default)]
    pub reference: Option<Reference>,
    /// The server's `/metrics` over the measured window (`None`: not scraped, or a server
    /// without those series). See [`crate::scrape`].
    #[serde(default)]
    pub metrics: Option<MetricsWindow>,
}

/// Where a point's reference comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReferenceKind {
    /// The closed form (`queuelab_common::theory`).
    Theory,
    /// The simulator (`queuelab_common::sim::simulate_open`), with replications.
    Simulation,
}

impl ReferenceKind {
    /// `theory` or `simulation`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReferenceKind::Theory => "theory",
            ReferenceKind::Simulation => "simulation",
        }
    }
}

/// A value of a reference with the half-width of its 95% interval (0 for a closed form).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RefEstimate {
    /// The value (µs for times).
    pub value: f64,
    /// Half-width of its 95% interval over the replications.
    pub half_width: f64,
}

/// What a point is compared with, in µs: the closed form's mean (and its percentiles, or the
/// simulation's where the closed form has none), or the simulation's estimates with their 95%
/// half-widths (see `crate::analysis`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// Where the mean comes from.
    pub kind: ReferenceKind,
    /// Replications of the simulation, if one ran (for the mean, or only the percentiles and
    /// the distribution).
    #[serde(default)]
    pub replications: Option<u32>,
    /// Customers measured per replication.
    #[serde(default)]
    pub customers: Option<u64>,
    /// The simulation's seed.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Mean sojourn of accepted requests.
    pub mean_us: Option<f64>,
    /// Half-width of its 95% interval (`None` or 0 for a closed form).
    pub mean_half_width_us: Option<f64>,
    /// Median.
    pub p50_us: Option<f64>,
    /// 90th percentile.
    pub p90_us: Option<f64>,
    /// 99th percentile.
    pub p99_us: Option<f64>,
    /// Where the percentiles come from (`None`: there are none).
    #[serde(default)]
    pub percentiles: Option<ReferenceKind>,
    /// Blocking probability, with its interval for a simulation.
    #[serde(default)]
    pub blocking: Option<RefEstimate>,
    /// Mean sojourn per class (µs), class 0 first; empty with one class.
    #[serde(default)]
    pub class_mean_us: Vec<RefEstimate>,
    /// The effective number of independent samples behind the simulated distribution (s²/se²
    /// of its sojourns and its mean), for the noise level of a KS distance against it.
    #[serde(default)]
    pub n_eff: Option<f64>,
    /// The simulation's pooled sojourn histogram (ns, `queuelab_common::stats` serialization):
    /// the reference distribution where the closed form has none. Kept in `points`, left out
    /// of the `analysis` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
}

/// Differences of qserve's `/metrics` between the start and the end of a measured window.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricsWindow {
    /// Δ`qserve_uptime_seconds`: the window's length by the server's clock (s).
    pub uptime_s: f64,
    /// Δ`qserve_in_system_seconds_total`: ∫N dt over the window (request-seconds); `None` when
    /// the server has no such series.
    pub in_system_s: Option<f64>,
    /// `qserve_in_system` at the start and at the end (the window's edges).
    pub in_system_edges: Option<(f64, f64)>,
    /// Δ`qserve_sojourn_seconds_sum` (s) of the requests served in the window.
    pub sojourn_sum_s: Option<f64>,
    /// Δ`qserve_sojourn_seconds_count`.
    pub sojourn_count: Option<u64>,
    /// The same per class (`{class="k"}`), class order.
    #[serde(default)]
    pub classes: Vec<ClassSojourn>,
    /// Whether the window is the measured one alone (`false`: it includes the warm-up).
    pub measured_only: bool,
}

/// One class's sojourn totals over a window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ClassSojourn {
    /// The class (0 the highest).
    pub class: u8,
    /// Δ sum of sojourn times (s).
    pub sum_s: f64,
    /// Δ count.
    pub count: u64,
}

/// Little's law at a point: L from the server's ∫N dt, against X·W from the client's accepted
/// throughput and the point's net mean (see `crate::analysis`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Little {
    /// Time-average number in system L = Δ∫N dt / Δuptime.
    pub l: f64,
    /// Accepted throughput X (non-503 answers per second of the measured duration).
    pub x: f64,
    /// Mean server time W (µs).
    pub w_us: f64,
    /// L / (X·W).
    pub ratio: f64,
    /// How far from 1 the ratio may be by the window's edges alone (see `crate::analysis`).
    pub tolerance: f64,
}

impl Little {
    /// Whether |ratio − 1| is within the tolerance.
    pub fn holds(&self) -> bool {
        (self.ratio - 1.0).abs() <= self.tolerance
    }
}

/// One priority class at a point: the server's mean sojourn of the class against the reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassPoint {
    /// The class (0 the highest).
    pub class: u8,
    /// Requests of the class served in the window.
    pub count: u64,
    /// Their mean sojourn (µs).
    pub mean_us: f64,
    /// The reference's mean sojourn of the class (µs).
    pub reference_us: Option<f64>,
    /// Half-width of its 95% interval (0 for a closed form).
    pub reference_half_width_us: Option<f64>,
}

/// The verdict of a point's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every check passed.
    Ok,
    /// Some check failed in every attempt; the point is marked and kept out of the summary.
    Failed,
}

/// One self-check of a point: a measured value against its limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What is checked (`arrival_rate`, `send_lag_p99`, …; see `crate::checks`).
    pub name: String,
    /// The measured value, in `unit`.
    pub value: f64,
    /// The limit the value is held to, in `unit`.
    pub limit: f64,
    /// The unit of both (`us`, `ratio`, …).
    pub unit: String,
    /// Whether the value is within the limit.
    pub passed: bool,
}

/// An attempt at a point that failed its checks and was measured again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedAttempt {
    /// Its number (1 for the first).
    pub attempt: u32,
    /// The checks it failed.
    pub failed: Vec<Check>,
}

/// The overhead of the measurement path across the sweep (an output, for reading).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverheadSummary {
    /// Where it was measured.
    pub url: Option<String>,
    /// How it is used.
    pub method: String,
    /// Mean overhead per point (µs), in sweep order (`None` where not measured).
    pub mean_us: Vec<Option<f64>>,
    /// Smallest and largest of those.
    pub range_us: Option<(f64, f64)>,
}

/// The whole `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultsFile {
    /// [`FORMAT`].
    pub format: String,
    /// When the sweep started (UTC, ISO 8601).
    pub created: String,
    /// The qload version that measured.
    pub qload_version: String,
    /// The sweep's configuration.
    pub config: LabConfig,
    /// Overhead summary (output only).
    #[serde(default)]
    pub overhead: Option<OverheadSummary>,
    /// The points measured so far, in order.
    pub points: Vec<PointRecord>,
    /// Per-point analysis (output only; recomputed by `qlab report`).
    #[serde(default)]
    pub analysis: Vec<PointAnalysis>,
    /// A closed-loop sweep over the number of users (`qlab sweep --users`): then `points` is
    /// empty. Absent in files of load sweeps (and in files written before closed sweeps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<ClosedSweep>,
    /// A sweep of the service's variability C² at one load (`qlab sweep --cv2`): then `points`
    /// is empty. Absent in files of other sweeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variability: Option<VariabilitySweep>,
}

/// A closed-loop sweep: for each number of users N, a closed-loop run of N users with mean
/// think time Z (see `crate::closed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedSweep {
    /// The numbers of users, in sweep order.
    pub users: Vec<u32>,
    /// Mean think time Z of each user (s).
    pub think_s: f64,
    /// The points measured so far, in order.
    pub points: Vec<ClosedPointRecord>,
    /// Per-point analysis (output only; recomputed by `qlab report`).
    #[serde(default)]
    pub analysis: Vec<crate::closed::ClosedAnalysis>,
}

/// One point of a closed sweep: N users, qload's result, its checks and its reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedPointRecord {
    /// Position in the sweep.
    pub index: usize,
    /// Number of users N.
    pub users: u32,
    /// Mean think time Z (s).
    pub think_s: f64,
    /// Warm-up before measuring (s).
    pub warmup_s: f64,
    /// Seed of the think times.
    pub seed: u64,
    /// qload's result of the closed-loop run, as it came.
    pub raw: RunResult,
    /// How many times the point was measured.
    pub attempts: u32,
    /// Whether the kept attempt passed every check.
    pub verdict: Option<Verdict>,
    /// The checks of the kept attempt.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// The attempts that were measured again, with the checks they failed.
    #[serde(default)]
    pub rejected: Vec<RejectedAttempt>,
    /// What the queue should have done with these users (`None`: no reference could be made).
    pub reference: Option<ClosedReference>,
}

/// The reference of a closed point: the model with N users whose think time is the effective
/// one, Z_eff = Z + the mean path measured at that point (see `crate::closed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedReference {
    /// Where the values come from: `theory (MVA)` or `simulation, R replications ± hw`.
    pub source: String,
    /// The think time the queue sees, Z_eff (s).
    pub think_eff_s: f64,
    /// Throughput X(N) (1/s).
    pub throughput: f64,
    /// Half-width of its 95% interval (simulation only).
    pub throughput_half: Option<f64>,
    /// Mean response time R(N) of the queue (s).
    pub response_s: f64,
    /// Half-width of its 95% interval (simulation only, s).
    pub response_half_s: Option<f64>,
    /// Asymptotic bound on the throughput min(N/(D + Z_eff), c/D) (1/s).
    pub bound_throughput: f64,
    /// Asymptotic bound on the response time max(D, N·D/c − Z_eff) (s).
    pub bound_response_s: f64,
    /// The knee N* = c(D + Z_eff)/D.
    pub n_star: f64,
}

/// A variability sweep: the same load ρ, one service distribution per point, each of its own
/// C² (see `crate::variability`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariabilitySweep {
    /// The load per server of every point.
    pub rho: f64,
    /// The family the services come from: `h2` (const, Erlang, exp, H2) or `lognormal`.
    pub family: String,
    /// The C² values, in sweep order.
    pub cv2: Vec<f64>,
    /// The points measured so far, in order.
    pub points: Vec<VariabilityPoint>,
}

/// One point of a variability sweep: an ordinary open point with its own service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariabilityPoint {
    /// The squared coefficient of variation of the service.
    pub cv2: f64,
    /// The service qserve ran with, as its flag (`const`, `erlang:4`, `exp`, `h2:4`, …).
    pub service: String,
    /// The point's model in Kendall notation (`M/D/1`, `M/E4/1`, `M/H2/1`, …).
    pub model: String,
    /// The measurement, as in a load sweep.
    pub point: PointRecord,
    /// The simulated reference of the point's model at its λ (`None`: the simulator gave none).
    pub reference: Option<OpenReference>,
}

/// A simulated reference of an open point (seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenReference {
    /// `simulation, R replications`.
    pub source: String,
    /// Mean sojourn.
    pub mean_s: f64,
    /// Half-width of its 95% interval.
    pub mean_half_s: f64,
    /// 99th percentile of the sojourn.
    pub p99_s: f64,
    /// Half-width of its 95% interval.
    pub p99_half_s: f64,
}

impl ResultsFile {
    /// Reads and checks `dir/results.json`.
    pub fn read(dir: &Path) -> anyhow::Result<ResultsFile> {
        let path = dir.join(RESULTS_JSON);
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let file: ResultsFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a lab results file", path.display()))?;
        if file.format != FORMAT {
            bail!(
                "{}: format {:?}, this qload reads {FORMAT:?}",
                path.display(),
                file.format
            );
        }
        file.config.model()?;
        Ok(file)
    }

    /// Writes `dir/results.json` atomically (a temporary file renamed over it), so a sweep that is
    /// interrupted leaves the last complete version.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self).context("encoding results.json")?;
        write_atomic(&dir.join(RESULTS_JSON), text.as_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut f = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// `seconds since the epoch` as `YYYY-MM-DDTHH:MM:SSZ` (UTC), and the compact `YYYYmmdd-HHMMSS`.
pub fn utc_stamps(unix_s: u64) -> (String, String) {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    (
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"),
        format!("{y:04}{m:02}{d:02}-{hh:02}{mm:02}{ss:02}"),
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (era arithmetic: 400-year cycles
/// of 146 097 days, with years starting in March so the leap day falls at the end).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
impl PointMeasurement {
    /// For tests: a measurement whose histogram holds `values_us` (µs), `blocked` of them 503s,
    /// with the 95% interval `ci(mean)` around their mean.
    pub(crate) fn of_sample(
        values_us: &[f64],
        blocked: u64,
        ci: impl Fn(f64) -> (f64, f64),
    ) -> Self {
        use queuelab_common::stats;
        let mut h = stats::new_histogram();
        for &v in values_us {
            stats::record_ns(&mut h, (v * 1e3).round() as u64);
        }
        let mean = values_us.iter().sum::<f64>() / values_us.len() as f64;
        let q = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        let (low, high) = ci(mean);
        PointMeasurement {
            sent: values_us.len() as u64,
            completed: values_us.len() as u64,
            blocked,
            latency_us: Latency {
                mean,
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
                p999: q(0.999),
                ci95_low: Some(low),
                ci95_high: Some(high),
                ..Default::default()
            },
            histogram: stats::histogram_to_string(&h),
            ..PointMeasurement::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_match_known_dates() {
        for (t, iso, compact) in [
            (0, "1970-01-01T00:00:00Z", "19700101-000000"),
            (951_782_400, "2000-02-29T00:00:00Z", "20000229-000000"),
            (1_709_251_199, "2024-02-29T23:59:59Z", "20240229-235959"),
            (4_102_444_800, "2100-01-01T00:00:00Z", "21000101-000000"),
        ] {
            assert_eq!(utc_stamps(t), (iso.to_owned(), compact.to_owned()), "{t}");
        }
    }

    #[test]
    fn config_strings_give_the_model() {
        let c = LabConfig {
            url: "http://127.0.0.1:8000/".into(),
            overhead_url: None,
            mu: 1000.0,
            servers: "2".into(),
            capacity: Some(10),
            service: "const".into(),
            rhos: vec![0.5],
            duration_s: 1.0,
            overhead_duration_s: 1.0,
            seed: 1,
            quick: false,
            discipline: None,
            classes: None,
        };
        let m = c.model().expect("a model");
        assert_eq!(
            (m.mu, m.servers, m.capacity, m.service),
            (1000.0, Servers::Finite(2), Some(10), ServiceKind::Const)
        );
        assert_eq!(m.discipline, Discipline::Fcfs);
        assert_eq!(m.classes.len(), 1);
        let p = LabConfig {
            discipline: Some("priority".into()),
            classes: Some("0.3,0.7".into()),
            capacity: None,
            ..c.clone()
        }
        .model()
        .expect("a priority model");
        assert_eq!(p.discipline, Discipline::Priority);
        assert_eq!(p.classes.probabilities(), [0.3, 0.7]);
        for bad in [
            LabConfig {
                servers: "two".into(),
                ..c.clone()
            },
            LabConfig {
                service: "gamma".into(),
                ..c.clone()
            },
            LabConfig {
                discipline: Some("random".into()),
                ..c.clone()
            },
            LabConfig {
                classes: Some("0.5,0.6".into()),
                ..c.clone()
            },
            LabConfig { mu: 0.0, ..c },
        ] {
            assert!(bad.model().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = std::env::temp_dir().join(format!("qload-lab-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join("x.txt");
        write_atomic(&p, b"one").expect("first write");
        write_atomic(&p, b"two").expect("second write");
        assert_eq!(fs::read_to_string(&p).expect("read back"), "two");
        assert!(!dir.join(".x.txt.tmp").exists());
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
