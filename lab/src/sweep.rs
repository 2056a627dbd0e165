//! `qlab sweep`: one open-loop Poisson run per load ρ, each followed by an overhead run at the
//! same rate, all recorded in `results.json`, then the report.
//!
//! For point `i` at load ρ the arrival rate is λ = ρ·c·μ (ρ·μ for infinitely many servers). The
//! run sends for a warm-up (not measured: the queue starts empty and needs time to reach its
//! stationary regime) and then for the measured duration. The overhead run sends the same λ to a
//! zero-service endpoint; it is made at every point, not once, because the cost of the path
//! depends on the rate (at low rates both processes sleep between requests and pay for waking
//! up; at high rates they do not). It is shorter (a fifth of the duration by default) because its
//! spread is small next to the queue's; its own interval enters the net interval.
//!
//! Warm-up ("auto"): four relaxation times of the queue, clamped to [1 s, 10 s]. The relaxation
//! time of M/M/1 is `1/(μ(1 − √ρ)²)` (Morse 1955), 1.5 s at ρ = 0.95 and μ = 1000/s, and
//! `1/(cμ(1 − √ρ)²)` is the same scale for M/M/c near saturation; with a capacity K the queue
//! cannot hold more than K, and it fills or drains in about `K/(cμ|1 − ρ|)`; with infinitely
//! many servers it forgets its start after a few service times.
//!
//! `--quick` spends about [`QUICK_BUDGET`] sending: two relaxation times of warm-up per point
//! (clamped to [0.3 s, 3 s]: the high loads get the most), the rest split evenly.
//!
//! `results.json` is rewritten after every point, so an interrupted sweep keeps what it measured
//! and `qlab report` can still draw it.
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use queuelab_common::model::{Discipline, Load, Model, Servers};

use queuelab_client::result::RunResult;

use crate::measure::{self, RunOptions, RunSpec};
use crate::progress::SweepLog;
use crate::record::{
    Check, FORMAT, LabConfig, MetricsWindow, OverheadSummary, PointMeasurement, PointRecord,
    Reference, RejectedAttempt, ResultsFile, Verdict, utc_stamps,
};
use crate::report::{self, ReportOutput};
use crate::servers::ServerPlan;
use crate::{analysis, checks, scrape};

/// The default loads: ten points from 0.1 to 0.95.
pub const DEFAULT_RHOS: [f64; 10] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];
/// Default measured duration per point (ten points take about ten minutes with the overhead runs).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(45);
/// Time budget of a `--quick` sweep's runs (the whole sweep stays under a minute).
pub const QUICK_BUDGET: Duration = Duration::from_secs(48);
/// Most points a `--quick` sweep accepts.
pub const QUICK_MAX_POINTS: usize = 40;
/// Default most measurements of a point (`--attempts`).
pub const DEFAULT_ATTEMPTS: u32 = 3;
/// Shortest measured duration of a point.
pub const MIN_DURATION: Duration = Duration::from_millis(100);

/// How long to warm up before measuring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Warmup {
    /// The same for every point.
    Fixed(Duration),
    /// Four relaxation times of the queue at that load, clamped to [1 s, 10 s].
    Auto,
    /// `--quick`: two relaxation times, clamped to [0.3 s, 3 s].
    Quick,
}

/// What a sweep varies.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SweepKind {
    /// The load ρ (`--rhos`): the sweep of this module.
    #[default]
    Load,
    /// The number of users of a closed loop (`--users`, `--think`): [`crate::closed`].
    Closed(crate::closed::ClosedPlan),
    /// The service's variability C² at one load (`--cv2`, `--rho`): [`crate::variability`].
    Variability(crate::variability::VariabilityPlan),
    /// An open network over the external rate λ (`--network`): [`crate::netsweep`].
    Network(Box<crate::netsweep::NetworkPlan>),
}

/// A validated sweep.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    /// The queue under test.
    pub url: String,
    /// The zero-service endpoint for the overhead runs (`None`: no overhead runs).
    pub overhead_url: Option<String>,
    /// What the server emulates.
    pub model: Model,
    /// Loads per server, in order.
    pub rhos: Vec<f64>,
    /// Measured duration of each point.
    pub duration: Duration,
    /// Warm-up rule.
    pub warmup: Warmup,
    /// Measured duration of each overhead run.
    pub overhead_duration: Duration,
    /// Warm-up of each overhead run.
    pub overhead_warmup: Duration,
    /// Base seed.
    pub seed: u64,
    /// Whether `--quick` set the durations.
    pub quick: bool,
    /// Output directory (created; must not hold anything yet).
    pub out: PathBuf,
    /// Engine knobs.
    pub opts: RunOptions,
    /// The servers to start before sweeping (`None`: `url` is already running).
    pub servers: Option<ServerPlan>,
    /// The CPUs the load generator runs on (empty: where it may).
    pub client_cpus: Vec<usize>,
    /// Set (by SIGINT or SIGTERM) to end the sweep: the run in progress drains and stops.
    pub stop: Arc<AtomicBool>,
    /// Most measurements of a point whose checks fail (at least 1; see [`crate::checks`]).
    pub attempts: u32,
    /// What the sweep varies (the load unless `--users` or `--cv2`).
    pub kind: SweepKind,
    /// Replications of a point's simulation, where the reference needs one
    /// (`--sim-replications`; see [`crate::analysis::reference_need`]).
    pub sim_replications: u32,
}

/// The relaxation time of `model` at load `rho` in seconds (see the module docs).
pub fn relaxation_s(model: &Model, rho: f64) -> f64 {
    match model.servers {
        Servers::Infinite => 5.0 / model.mu,
        Servers::Finite(c) => {
            let cmu = f64::from(c) * model.mu;
            let open = if rho < 1.0 {
                1.0 / (cmu * (1.0 - rho.sqrt()).powi(2))
            } else {
                f64::INFINITY
            };
            match model.capacity {
                Some(k) => open.min(f64::from(k) / (cmu * (1.0 - rho).abs().max(0.05))),
                None => open,
            }
        }
    }
}

/// The default warm-up of `model` at load `rho`: four relaxation times, clamped to [1 s, 10 s].
pub fn auto_warmup(model: &Model, rho: f64) -> Duration {
    Duration::from_secs_f64((4.0 * relaxation_s(model, rho)).clamp(1.0, 10.0))
}

/// The warm-up of a `--quick` sweep: two relaxation times, clamped to [0.3 s, 3 s].
pub fn quick_warmup(model: &Model, rho: f64) -> Duration {
    Duration::from_secs_f64((2.0 * relaxation_s(model, rho)).clamp(0.3, 3.0))
}

/// The durations of a `--quick` sweep: (measured, overhead measured, overhead warm-up) for every
/// point, the warm-ups being [`quick_warmup`]. What [`QUICK_BUDGET`] leaves after the warm-ups is
/// split evenly over the points: 75% measured, 20% overhead run, 5% its warm-up (all of it
/// measured without overhead runs). `None` when fewer than 0.3 s per point would be left.
pub fn quick_durations(
    model: &Model,
    rhos: &[f64],
    overhead: bool,
) -> Option<(Duration, Duration, Duration)> {
    let warm: f64 = rhos
        .iter()
        .map(|&r| quick_warmup(model, r).as_secs_f64())
        .sum();
    let share = (QUICK_BUDGET.as_secs_f64() - warm) / rhos.len().max(1) as f64;
    if share < 0.3 {
        return None;
    }
    let d = |f: f64| Duration::from_secs_f64(share * f);
    Some(if overhead {
        (d(0.75), d(0.20), d(0.05))
    } else {
        (d(1.0), Duration::ZERO, Duration::ZERO)
    })
}

/// The arrival seed of point `i`'s run (or of its overhead run): the SplitMix64 finalizer of the
/// base seed and the run's number.
///
/// Hashed rather than `seed + i` because the server is typically started with the same `--seed`:
/// qserve draws its service times and qload its arrival gaps from `rng(seed, 0)`, so equal seeds
/// would make every service time proportional to the gap before it and the queue would barely
/// wait. A hashed seed equals a seed a person types only by a 2⁻⁶⁴ accident.
pub fn run_seed(base: u64, i: usize, overhead: bool) -> u64 {
    let n = 2 * i as u64 + u64::from(overhead);
    // "lab-seed" in ASCII, so that base 0 with run 0 is not the finalizer's fixed input 0.
    let mut z = (base ^ 0x6c61_622d_7365_6564)
        .wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `http://host:port/healthz` for a URL `http://host:port/anything`: the zero-service path of the
/// same qserve (it bypasses the queue).
pub fn healthz_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}/healthz"))
}

impl SweepPlan {
    /// Warm-up of the point at `rho`.
    pub fn warmup_for(&self, rho: f64) -> Duration {
        match self.warmup {
            Warmup::Fixed(d) => d,
            Warmup::Auto => auto_warmup(&self.model, rho),
            Warmup::Quick => quick_warmup(&self.model, rho),
        }
    }

    /// Sending time of the whole sweep (warm-ups, measurements and overhead runs).
    pub fn sending_time(&self) -> Duration {
        match &self.kind {
            SweepKind::Load => {}
            SweepKind::Closed(cp) => return crate::closed::sending_time(self, cp),
            SweepKind::Variability(vp) => return crate::variability::sending_time(self, vp),
            SweepKind::Network(np) => return crate::netsweep::sending_time(self, np),
        }
        self.rhos
            .iter()
            .map(|&r| {
                let o = if self.overhead_url.is_some() {
                    self.overhead_duration + self.overhead_warmup
                } else {
                    Duration::ZERO
                };
                self.duration + self.warmup_for(r) + o
            })
            .sum()
    }

    /// The configuration as recorded in `results.json`.
    pub fn lab_config(&self) -> LabConfig {
        LabConfig {
            url: self.url.clone(),
            overhead_url: self.overhead_url.clone(),
            mu: self.model.mu,
            servers: self.model.servers.to_string(),
            capacity: self.model.capacity,
            service: self.model.service.to_string(),
            rhos: self.rhos.clone(),
            duration_s: self.duration.as_secs_f64(),
            overhead_duration_s: self.overhead_duration.as_secs_f64(),
            seed: self.seed,
            quick: self.quick,
            discipline: (self.model.discipline != Discipline::Fcfs)
                .then(|| self.model.discipline.to_string()),
            classes: (self.model.classes.len() > 1).then(|| self.model.classes.to_string()),
        }
    }
}

/// The default output directory `results/YYYYmmdd-HHMMSS` (UTC), with `-2`, `-3`, … appended if
/// that name is taken.
pub fn default_out_dir(now_unix_s: u64) -> PathBuf {
    let (_, stamp) = utc_stamps(now_unix_s);
    let base = Path::new("results").join(&stamp);
    let mut p = base.clone();
    let mut n = 2;
    while p.exists() {
        p = Path::new("results").join(format!("{stamp}-{n}"));
        n += 1;
    }
    p
}

/// Creates `dir` (and its parents); refuses a directory that already holds files, so a sweep
/// never mixes its results with older ones.
pub fn create_fresh_dir(dir: &Path) -> anyhow::Result<()> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "output directory {} is not empty; choose a new --out (or delete it)",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

fn now_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A results file for `plan` with no point yet, stamped now.
pub(crate) fn new_results_file(plan: &SweepPlan) -> ResultsFile {
    let (created, _) = utc_stamps(now_unix_s());
    ResultsFile {
        format: FORMAT.into(),
        created,
        qload_version: env!("CARGO_PKG_VERSION").into(),
        config: plan.lab_config(),
        overhead: None,
        points: Vec::with_capacity(plan.rhos.len()),
        analysis: Vec::new(),
        closed: None,
        variability: None,
    }
}

/// Recomputes the output-only sections of `file` (analysis and overhead summary).
fn refresh(file: &mut ResultsFile, model: &Model) {
    file.analysis = file
        .points
        .iter()
        .map(|r| analysis::analyze(model, r))
        .collect();
    let means: Vec<Option<f64>> = file.analysis.iter().map(|a| a.overhead_mean_us).collect();
    file.overhead = Some(OverheadSummary {
        url: file.config.overhead_url.clone(),
        method: "per point, same arrival rate, zero-service endpoint; net = measured − mean \
                 overhead; CDFs compared after a shift by the mean overhead"
            .into(),
        range_us: analysis::summarize(&file.analysis).overhead_range_us,
        mean_us: means,
    });
}

/// Runs the sweep: measures every point, keeps `results.json` up to date, then writes the report.
/// Progress goes to `log`: a [`crate::progress::SweepProgress`] in the command (a bar on a
/// terminal), any writer of lines otherwise.
pub fn sweep(plan: &SweepPlan, log: &mut dyn SweepLog) -> anyhow::Result<ReportOutput> {
    create_fresh_dir(&plan.out)?;
    let mut file = new_results_file(plan);
    file.write(&plan.out)?;
    let n = plan.rhos.len();
    let mut sims = analysis::SimCache::default();
    for (i, &rho) in plan.rhos.iter().enumerate() {
        match measure_point(plan, i, rho, &mut sims, log) {
            Ok(rec) => {
                file.points.push(rec);
                refresh(&mut file, &plan.model);
                file.write(&plan.out)?;
                if let Some(a) = file.analysis.last() {
                    log.line(&progress_line(i, n, a));
                }
                log.point_done();
            }
            Err(e) => {
                // Keep what was measured: draw it, then report the failure.
                if !file.points.is_empty() {
                    let _ = report::report(&plan.out);
                }
                return Err(e.context(format!(
                    "point {} of {n} (ρ = {rho}); the points before it are in {}",
                    i + 1,
                    plan.out.display()
                )));
            }
        }
    }
    report::report(&plan.out)
}

/// One measurement of a point: the run against the queue and its overhead run.
#[derive(Debug, Clone)]
struct Attempt {
    measured: PointMeasurement,
    raw: RunResult,
    overhead: Option<PointMeasurement>,
    overhead_raw: Option<RunResult>,
    metrics: Option<MetricsWindow>,
}

/// The arrival seed of attempt `attempt` (1 for the first) of a run whose first attempt has
/// `seed`: the seed itself for the first, else the SplitMix64 finalizer of it and the attempt, so
/// that a re-run draws a new schedule (the same one would meet the same stall of its own making
/// — a burst that the schedule holds) and is still reproducible.
pub fn attempt_seed(seed: u64, attempt: u32) -> u64 {
    if attempt <= 1 {
        return seed;
    }
    let mut z = seed.wrapping_add(u64::from(attempt).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What the attempts at a point came to.
#[derive(Debug)]
pub(crate) struct Kept<A> {
    pub(crate) attempt: A,
    /// Its number (1 for the first).
    pub(crate) number: u32,
    pub(crate) seed: u64,
    pub(crate) checks: Vec<Check>,
    pub(crate) rejected: Vec<RejectedAttempt>,
}

impl<A> Kept<A> {
    /// `ok` when the kept attempt passed every check, else `failed`.
    pub(crate) fn verdict(&self) -> Verdict {
        if checks::all_passed(&self.checks) {
            Verdict::Ok
        } else {
            Verdict::Failed
        }
    }
}

/// Measures a point up to `max_attempts` times with `run(attempt, seed, log)`, checking each
/// with `check`, and keeps the first attempt that passes, else the last. Each attempt that is
/// measured again is logged with the checks it failed. `Err` from `run` ends the point; so does
/// `stopped()` after an attempt (SIGINT: that attempt is kept, none other started).
pub(crate) fn with_retries<A>(
    max_attempts: u32,
    seed: u64,
    label: &str,
    mut run: impl FnMut(u32, u64, &mut dyn SweepLog) -> anyhow::Result<A>,
    check: impl Fn(&A) -> Vec<Check>,
    stopped: impl Fn() -> bool,
    log: &mut dyn SweepLog,
) -> anyhow::Result<Kept<A>> {
    let max_attempts = max_attempts.max(1);
    let mut rejected = Vec::new();
    let mut number = 1;
    loop {
        let s = attempt_seed(seed, number);
        let attempt = run(number, s, log)?;
        let checks = check(&attempt);
        let failed = checks::failed(&checks);
        if failed.is_empty() || number >= max_attempts || stopped() {
            if !failed.is_empty() {
                log.line(&format!(
                    "{label} attempt {number} failed {}; kept, marked failed",
                    describe_all(&failed)
                ));
            }
            return Ok(Kept {
                attempt,
                number,
                seed: s,
                checks,
                rejected,
            });
        }
        log.line(&format!(
            "{label} attempt {number} failed {}; again",
            describe_all(&failed)
        ));
        rejected.push(RejectedAttempt {
            attempt: number,
            failed,
        });
        number += 1;
    }
}

fn describe_all(failed: &[Check]) -> String {
    failed
        .iter()
        .map(checks::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Measures the open point `i` at `rho` of `plan` (with its re-runs) into its record.
pub(crate) fn measure_point(
    plan: &SweepPlan,
    i: usize,
    rho: f64,
    sims: &mut analysis::SimCache,
    log: &mut dyn SweepLog,
) -> anyhow::Result<PointRecord> {
    let lambda = plan.model.lambda(Load::Rho(rho));
    let warmup = plan.warmup_for(rho);
    let seed = run_seed(plan.seed, i, false);
    let overhead_seed = run_seed(plan.seed, i, true);
    let n = plan.rhos.len();
    let kept = with_retries(
        plan.attempts,
        seed,
        &format!("[{}/{n}] ρ = {rho:.2}:", i + 1),
        |number, seed, log| {
            log.start(i, rho, number);
            log.line(&format!(
                "[{}/{n}] ρ = {rho:.2}: λ = {lambda:.1}/s for {:.1} s after a {:.1} s warm-up{}",
                i + 1,
                plan.duration.as_secs_f64(),
                warmup.as_secs_f64(),
                if number > 1 {
                    format!(" (attempt {number} of {})", plan.attempts)
                } else {
                    String::new()
                }
            ));
            measure_attempt(
                plan,
                lambda,
                warmup,
                seed,
                attempt_seed(overhead_seed, number),
                log,
            )
        },
        |a| checks::check_point(&plan.model, lambda, &a.raw, a.overhead_raw.as_ref()),
        || plan.stop.load(Ordering::Relaxed),
        log,
    )?;
    let verdict = kept.verdict();
    let a = kept.attempt;
    let reference = point_reference(plan, i, lambda, &a.measured, sims, log);
    Ok(PointRecord {
        index: i,
        rho,
        lambda,
        warmup_s: warmup.as_secs_f64(),
        seed: kept.seed,
        measured: a.measured,
        overhead: a.overhead,
        raw: a.raw,
        overhead_raw: a.overhead_raw,
        attempts: kept.number,
        verdict: Some(verdict),
        checks: kept.checks,
        rejected: kept.rejected,
        reference,
        metrics: a.metrics,
    })
}

/// The reference of point `i`: the closed form, or the simulation (cached per (model, λ)),
/// sized by the requests the point measured ([`analysis::sim_options`]).
fn point_reference(
    plan: &SweepPlan,
    i: usize,
    lambda: f64,
    measured: &PointMeasurement,
    sims: &mut analysis::SimCache,
    log: &mut dyn SweepLog,
) -> Option<Reference> {
    let need = analysis::reference_need(&plan.model, lambda)?;
    let opts = analysis::sim_options(
        measured.completed,
        plan.sim_replications,
        run_seed(plan.seed, i, false),
    );
    if need != analysis::ReferenceNeed::Theory {
        log.line(&format!(
            "[{}/{}] simulating {} at λ = {lambda:.1}/s: {} replications of {} customers",
            i + 1,
            plan.rhos.len(),
            plan.model.name(),
            opts.replications,
            opts.customers
        ));
    }
    match sims.reference(&plan.model, lambda, &opts) {
        Ok(r) => r,
        Err(e) => {
            log.line(&format!(
                "warning: the simulation failed, this point has no reference: {e}"
            ));
            None
        }
    }
}

/// One attempt at a point: the run against the queue, then its overhead run.
fn measure_attempt(
    plan: &SweepPlan,
    lambda: f64,
    warmup: Duration,
    seed: u64,
    overhead_seed: u64,
    log: &mut dyn SweepLog,
) -> anyhow::Result<Attempt> {
    let spec = RunSpec {
        url: &plan.url,
        rate: lambda,
        duration: plan.duration,
        warmup,
        seed,
        model: Some(&plan.model),
        opts: &plan.opts,
        stop: &plan.stop,
    };
    let (measured, raw, metrics) = match scrape::metrics_url(&plan.url) {
        Some(url) => {
            let (m, r, scraped) = measure::measure_scraped(&spec, &url)?;
            let metrics = scraped.unwrap_or_else(|e| {
                log.line(&format!(
                    "warning: no /metrics window (Little's law, classes): {e}"
                ));
                None
            });
            (m, r, metrics)
        }
        None => {
            let (m, r) = measure::measure(&spec)?;
            (m, r, None)
        }
    };
    if plan.stop.load(Ordering::Relaxed) {
        bail!("interrupted; this point's partial run is not recorded");
    }
    let (overhead, overhead_raw) = match &plan.overhead_url {
        Some(url) => match measure::measure(&RunSpec {
            url,
            rate: lambda,
            duration: plan.overhead_duration,
            warmup: plan.overhead_warmup,
            seed: overhead_seed,
            model: None,
            opts: &plan.opts,
            stop: &plan.stop,
        }) {
            Ok((m, v)) => (Some(m), Some(v)),
            Err(e) => {
                log.line(&format!(
                    "warning: overhead run at {url} failed, this point has no net values: {e:#}"
                ));
                (None, None)
            }
        },
        None => (None, None),
    };
    Ok(Attempt {
        measured,
        raw,
        overhead,
        overhead_raw,
        metrics,
    })
}

fn progress_line(i: usize, n: usize, a: &analysis::PointAnalysis) -> String {
    let v = |x: Option<f64>| x.map_or_else(|| "–".to_owned(), |x| format!("{x:.1}"));
    let mut s = format!(
        "[{}/{n}] ρ = {:.2}: mean {} µs, theory {} µs, ",
        i + 1,
        a.rho,
        v(a.mean_us),
        v(a.theory.as_ref().map(|t| t.mean_us)),
    );
    // With Server-Timing the path of the same run is the overhead taken out; the twin's is
    // beside it.
    match a.path_mean_us {
        Some(p) => s.push_str(&format!(
            "path {} µs (twin {} µs)",
            v(Some(p)),
            v(a.overhead_mean_us)
        )),
        None => s.push_str(&format!("overhead {} µs", v(a.overhead_mean_us))),
    }
    if let Some(e) = a.err_net.or(a.err_raw) {
        s.push_str(&format!(
            ", error {:+.2}%{}",
            e * 100.0,
            if a.err_net.is_some() { " net" } else { " raw" }
        ));
    }
    if a.errors > 0 {
        s.push_str(&format!(", {} errors", a.errors));
    }
    if a.failed() {
        s.push_str(", FAILED its checks");
    } else if a.attempts > 1 {
        s.push_str(&format!(", checks ok at attempt {}", a.attempts));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mm1() -> Model {
        Model::new(1000.0, Servers::Finite(1))
    }

    #[test]
    fn auto_warmup_grows_near_saturation_and_is_clamped() {
        let m = mm1();
        assert_eq!(auto_warmup(&m, 0.1), Duration::from_secs(1));
        // τ = 1/(1000·(1 − √0.95)²) ≈ 1.55 s → 4τ ≈ 6.2 s.
        let w = auto_warmup(&m, 0.95).as_secs_f64();
        assert!((w - 6.2).abs() < 0.1, "{w}");
        assert_eq!(auto_warmup(&m, 0.999), Duration::from_secs(10));
        let k = m.with_capacity(Some(10));
        // Past saturation the capacity bounds it: 10/(1000·0.5) = 20 ms → clamped to 1 s.
        assert_eq!(auto_warmup(&k, 1.5), Duration::from_secs(1));
        let mut inf = m;
        inf.servers = Servers::Infinite;
        assert_eq!(auto_warmup(&inf, 5.0), Duration::from_secs(1));
    }

    fn plan_for(rhos: &[f64], warmup: Warmup, overhead: bool) -> SweepPlan {
        SweepPlan {
            url: "http://127.0.0.1:8000/".into(),
            overhead_url: overhead.then(|| "http://127.0.0.1:8000/healthz".into()),
            model: mm1(),
            rhos: rhos.to_vec(),
            duration: DEFAULT_DURATION,
            warmup,
            overhead_duration: DEFAULT_DURATION / 5,
            overhead_warmup: Duration::from_millis(500),
            seed: 1,
            quick: false,
            out: PathBuf::from("unused"),
            opts: RunOptions::default(),
            servers: None,
            client_cpus: Vec::new(),
            stop: Arc::default(),
            attempts: DEFAULT_ATTEMPTS,
            kind: SweepKind::Load,
            sim_replications: analysis::DEFAULT_SIM_REPLICATIONS,
        }
    }

    #[test]
    fn quick_sweep_of_the_default_points_fits_in_a_minute() {
        for overhead in [true, false] {
            let (d, od, ow) =
                quick_durations(&mm1(), &DEFAULT_RHOS, overhead).expect("ten points fit");
            let mut plan = plan_for(&DEFAULT_RHOS, Warmup::Quick, overhead);
            (plan.duration, plan.overhead_duration, plan.overhead_warmup) = (d, od, ow);
            let total = plan.sending_time();
            assert!(
                total <= QUICK_BUDGET + Duration::from_millis(1),
                "{total:?}"
            );
            // Leaves 12 s for starting and ending twenty runs.
            assert!(total + Duration::from_secs(12) <= Duration::from_secs(60));
            assert!(d >= Duration::from_millis(2500), "{d:?}");
        }
        // The highest load warms up longest: 2τ at ρ = 0.95 is 3.1 s, clamped to 3 s.
        assert_eq!(quick_warmup(&mm1(), 0.95), Duration::from_secs(3));
        assert_eq!(quick_warmup(&mm1(), 0.1), Duration::from_millis(300));
        let many: Vec<f64> = (1..=QUICK_MAX_POINTS).map(|i| i as f64 / 50.0).collect();
        let (d, ..) = quick_durations(&mm1(), &many, true).expect("40 points fit");
        assert!(d >= MIN_DURATION, "{d:?}");
        let too_many = vec![0.95; 20];
        assert!(quick_durations(&mm1(), &too_many, true).is_none());
    }

    #[test]
    fn default_sweep_takes_about_ten_minutes() {
        let t = plan_for(&DEFAULT_RHOS, Warmup::Auto, true)
            .sending_time()
            .as_secs_f64();
        assert!((480.0..=660.0).contains(&t), "{t} s");
    }

    #[test]
    fn run_seeds_are_distinct_and_never_small() {
        let mut seen = std::collections::HashSet::new();
        for base in [0u64, 1, 2, 42, u64::MAX] {
            for i in 0..100 {
                for overhead in [false, true] {
                    let s = run_seed(base, i, overhead);
                    assert!(s > 1_000_000, "run seed {s} could be a server's --seed");
                    assert!(seen.insert(s), "repeated seed {s}");
                }
            }
        }
        assert_eq!(run_seed(7, 3, true), run_seed(7, 3, true), "deterministic");
    }

    fn fake_check(passed: bool) -> Vec<Check> {
        vec![Check {
            name: "send_lag_max".into(),
            value: if passed { 1000.0 } else { 99_100.0 },
            limit: 30_000.0,
            unit: "us".into(),
            passed,
        }]
    }

    /// Runs `with_retries` over attempts that pass as `passes` says; returns what was kept, the
    /// seeds the attempts got, and the log.
    fn retries(max: u32, passes: &[bool]) -> (Kept<usize>, Vec<u64>, String) {
        let mut seeds = Vec::new();
        let mut log = Vec::new();
        let kept = with_retries(
            max,
            77,
            "[1/1] ρ = 0.40:",
            |n, seed, _| {
                seeds.push(seed);
                Ok(n as usize - 1)
            },
            |&k| fake_check(passes[k]),
            || false,
            &mut log,
        )
        .expect("no run fails");
        (kept, seeds, String::from_utf8(log).expect("UTF-8"))
    }

    #[test]
    fn a_failing_point_is_measured_again_until_it_passes() {
        let (kept, seeds, log) = retries(3, &[false, true, true]);
        assert_eq!((kept.attempt, kept.number), (1, 2));
        assert_eq!(seeds, [77, attempt_seed(77, 2)]);
        assert_eq!(kept.seed, attempt_seed(77, 2));
        assert!(checks::all_passed(&kept.checks));
        assert_eq!(kept.rejected.len(), 1);
        assert_eq!(kept.rejected[0].attempt, 1);
        assert_eq!(kept.rejected[0].failed, fake_check(false));
        assert_eq!(
            log,
            "[1/1] ρ = 0.40: attempt 1 failed send_lag_max 99.1ms > 30.0ms; again\n"
        );
        // A first attempt that passes is the only one.
        let (kept, seeds, log) = retries(3, &[true]);
        assert_eq!((kept.number, seeds.len(), log.as_str()), (1, 1, ""));
        assert!(kept.rejected.is_empty());
    }

    #[test]
    fn a_point_that_keeps_failing_keeps_its_last_attempt() {
        let (kept, seeds, log) = retries(3, &[false, false, false, true]);
        assert_eq!((kept.attempt, kept.number), (2, 3));
        assert_eq!(seeds.len(), 3);
        assert!(!checks::all_passed(&kept.checks));
        let numbers: Vec<u32> = kept.rejected.iter().map(|r| r.attempt).collect();
        assert_eq!(numbers, [1, 2]);
        assert_eq!(log.matches("; again").count(), 2);
        assert!(
            log.ends_with("attempt 3 failed send_lag_max 99.1ms > 30.0ms; kept, marked failed\n")
        );
        // One attempt allowed: no re-run.
        let (kept, seeds, _) = retries(1, &[false, true]);
        assert_eq!((kept.number, seeds.len()), (1, 1));
        assert!(kept.rejected.is_empty());
    }

    #[test]
    fn an_interrupted_point_is_not_measured_again() {
        let mut runs = 0;
        let kept = with_retries(
            3,
            5,
            "",
            |_, _, _| {
                runs += 1;
                Ok(())
            },
            |_| fake_check(false),
            || true,
            &mut std::io::sink(),
        )
        .expect("kept");
        assert_eq!((runs, kept.number), (1, 1));
        // A failing run ends the point.
        let e = with_retries(
            3,
            5,
            "",
            |_, _, _| -> anyhow::Result<()> { bail!("connection refused") },
            |_| fake_check(true),
            || false,
            &mut std::io::sink(),
        );
        assert!(e.is_err());
    }

    #[test]
    fn attempt_seeds_are_new_and_reproducible() {
        let mut seen = std::collections::HashSet::new();
        for base in [run_seed(1, 0, false), run_seed(1, 0, true), 0, u64::MAX] {
            assert_eq!(
                attempt_seed(base, 1),
                base,
                "the first attempt keeps its seed"
            );
            for k in 2..10 {
                let s = attempt_seed(base, k);
                assert_eq!(s, attempt_seed(base, k));
                assert!(s != base && seen.insert(s), "{base} {k}");
            }
        }
    }

    #[test]
    fn healthz_url_keeps_scheme_and_authority() {
        assert_eq!(
            healthz_url("http://127.0.0.1:8000/work?x=1").as_deref(),
            Some("http://127.0.0.1:8000/healthz")
        );
        assert_eq!(
            healthz_url("http://qserve.default.svc").as_deref(),
            Some("http://qserve.default.svc/healthz")
        );
        assert_eq!(healthz_url("no-scheme"), None);
        assert_eq!(healthz_url("http:///x"), None);
    }

    #[test]
    fn fresh_dir_is_created_and_a_used_one_refused() {
        let base = std::env::temp_dir().join(format!("qload-lab-fresh-{}", std::process::id()));
        let dir = base.join("a/b");
        create_fresh_dir(&dir).expect("created");
        create_fresh_dir(&dir).expect("empty is fine");
        fs::write(dir.join("results.json"), "{}").expect("write");
        let e = create_fresh_dir(&dir).expect_err("not empty");
        assert!(e.to_string().contains("not empty"), "{e}");
        fs::remove_dir_all(&base).expect("cleanup");
    }
}
