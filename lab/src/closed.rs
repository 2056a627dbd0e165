//! Closed sweeps (`qlab sweep --users 1,2,4,… --think Z`): the queue in front of N users, each
//! thinking for an exponential time of mean Z, sending one request and waiting for its answer.
//!
//! For each N the lab makes one closed-loop qload run (a warm-up, then the measured duration)
//! and reads from it:
//!
//! - the throughput X(N): answers completed per second of the measured window;
//! - the response time R(N): raw (qload's latency, from the end of the think time to the answer)
//!   and net (the server's own time, the sum of each answer's `Server-Timing` durations);
//! - the path: raw − net, what both programs and the loopback TCP add outside the queue.
//!
//! **The effective think time.** From the queue's point of view a user's cycle is think, path
//! and sojourn: between two visits to the queue a user spends Z thinking *and* the path's time
//! on the way there and back. So the think time the queue sees is Z_eff = Z + the mean path
//! (measured at that N, from the same requests), and the reference is the closed model with
//! Z_eff. In the product-form model (exponential service, or processor sharing) the users
//! outside the queue form an infinite-server (delay) station, whose effect is insensitive to its
//! distribution beyond the mean (BCMP), so an exponential think time plus a nearly constant path
//! is exactly a delay of mean Z_eff; for other models it is an approximation of the same order
//! as the path's spread against Z.
//!
//! **The reference** is `queuelab_common::theory::closed(model, N, Z_eff)` where the model has
//! a product form ("theory (MVA)"), else `queuelab_common::sim::simulate_closed` ("simulation,
//! R replications ± hw"). The asymptotic bounds X ≤ min(N/(D + Z), c/D) and
//! R ≥ max(D, N·D/c − Z) (D = 1/μ) and their knee N* = c(D + Z)/D are drawn dashed.
//!
//! **Intervals and coverage.** Both measured means carry batch-means 95% intervals over the
//! intervals of qload's time series (the sweep asks for [`crate::measure::BATCHES`] of them; a
//! short stub at the end joins the batch before it, as for open points): X from the
//! per-interval completions over the interval's length ([`throughput_ci`]), R net from the
//! per-interval server means (`Interval.server_mean_us`), R raw from the per-interval latency
//! means. A reference covers a measurement when the interval of their difference,
//! `measured − reference ± √(h_m² + h_ref²)`, contains 0 (h_ref = 0 for theory, the
//! simulation's own half-width otherwise). Z_eff carries the path's sampling noise into the
//! reference; the path's mean is known to a fraction of a microsecond against think times of
//! milliseconds, so this is left out.
//!
//! Checks: those of an open point that apply to a closed loop ([`closed_checks`]: the send lag,
//! stalls of client and server, the departure timer, stationarity of the batch means, the
//! stability of the path, errors); the arrival checks, which test a Poisson schedule, do not.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, bail};
use queuelab_client::config::{Config, Mode, Target};
use queuelab_client::result::{self, Interval, RunResult};
use queuelab_common::model::{Model, Servers};
use queuelab_common::sim::{self, SimOptions};
use queuelab_common::stats::{self, MeanCi};
use queuelab_common::theory;
use serde::{Deserialize, Serialize};

use crate::checks;
use crate::measure::{BATCHES, RunOptions};
use crate::progress::SweepLog;
use crate::record::{
    ClosedPointRecord, ClosedReference, ClosedSweep, ResultsFile, Verdict, write_atomic,
};
use crate::report::{INDEX_HTML, TABLE_TXT};
use crate::svg::{Axis, Chart, Marker, PALETTE, Point, Series, Style};
use crate::sweep::{self, SweepPlan, Warmup};

/// File name of the throughput plot.
pub const THROUGHPUT_SVG: &str = "throughput_vs_users.svg";
/// File name of the response-time plot.
pub const RESPONSE_SVG: &str = "response_vs_users.svg";
/// File name of the CSV of a closed sweep.
pub const CLOSED_CSV: &str = "closed.csv";

/// What a closed sweep varies.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedPlan {
    /// The numbers of users N, in order.
    pub users: Vec<u32>,
    /// Mean think time Z.
    pub think: Duration,
    /// How much the simulator runs where there is no theory.
    pub sim: SimOptions,
}

/// The default warm-up of a closed point: twenty cycles of a user at the bound, Z + max(D, N·D/c)
/// (a closed system forgets its empty start within a few cycles: every user has been through the
/// queue), clamped to [1 s, 10 s].
pub fn auto_warmup(model: &Model, users: u32, think: Duration) -> Duration {
    let d = 1.0 / model.mu;
    let c = match model.servers {
        Servers::Finite(c) => f64::from(c),
        Servers::Infinite => f64::from(users),
    };
    let cycle = think.as_secs_f64() + d.max(f64::from(users) * d / c);
    Duration::from_secs_f64((20.0 * cycle).clamp(1.0, 10.0))
}

/// The warm-up of the point with `users` users under `plan`'s rule (`--quick` is refused for
/// closed sweeps, so it is the automatic one there too).
pub fn warmup_for(plan: &SweepPlan, users: u32, think: Duration) -> Duration {
    match plan.warmup {
        Warmup::Fixed(d) => d,
        Warmup::Auto | Warmup::Quick => auto_warmup(&plan.model, users, think),
    }
}

/// Sending time of a closed sweep.
pub fn sending_time(plan: &SweepPlan, cp: &ClosedPlan) -> Duration {
    cp.users
        .iter()
        .map(|&n| plan.duration + warmup_for(plan, n, cp.think))
        .sum()
}

/// The qload configuration of a closed-loop run of `users` users against `url`.
pub fn config_for(
    url: &str,
    users: u32,
    think: Duration,
    duration: Duration,
    warmup: Duration,
    seed: u64,
    opts: &RunOptions,
) -> anyhow::Result<Config> {
    let target = Target::new(url, "GET", &[], None).with_context(|| format!("target {url}"))?;
    let mut c = Config::new(target, Mode::Closed { users, think });
    c.duration = Some(duration);
    c.warmup = warmup;
    c.seed = seed;
    // One user per thread at most: a thread without a user would idle.
    c.threads = opts.threads.map(|t| t.min(users as usize).max(1));
    c.pin = opts.pin;
    if let Some(s) = opts.spin {
        c.spin = s;
    }
    c.busy_poll = Some(opts.busy_poll);
    if let Some(t) = opts.timeout {
        c.timeout = t;
    }
    c.interval = (duration / BATCHES).max(Duration::from_millis(10));
    c.live = false;
    Ok(c)
}

/// The checks of a closed point: [`checks::check_point`] at the measured throughput without the
/// arrival checks (`arrival_rate`, `arrival_ks`), which test an open Poisson schedule.
pub fn closed_checks(model: &Model, raw: &RunResult) -> Vec<crate::record::Check> {
    let x = if raw.duration_s > 0.0 {
        raw.requests.completed as f64 / raw.duration_s
    } else {
        0.0
    };
    checks::check_point(model, x, raw, None)
        .into_iter()
        .filter(|c| c.name != "arrival_rate" && c.name != "arrival_ks")
        .collect()
}

/// The reference of `users` users with effective think time `think_eff_s` in front of `model`
/// (see the module docs), or why there is none.
pub fn reference(
    model: &Model,
    users: u32,
    think_eff_s: f64,
    opts: &SimOptions,
) -> Result<ClosedReference, String> {
    let c = match model.servers {
        Servers::Finite(c) => c,
        Servers::Infinite => return Err("no bounds with infinitely many servers".into()),
    };
    // The bounds depend only on D, c and Z: those of the birth–death chain are every model's.
    let bounds = theory::closed_birth_death(model.mu, c, think_eff_s, users);
    match theory::closed(model, users, think_eff_s) {
        Ok(t) => Ok(ClosedReference {
            source: "theory (MVA)".into(),
            think_eff_s,
            throughput: t.throughput,
            throughput_half: None,
            response_s: t.response_s,
            response_half_s: None,
            bound_throughput: t.bound_throughput,
            bound_response_s: t.bound_response_s,
            n_star: t.n_star,
        }),
        Err(why) => {
            // A reference that fails must not lose what was measured: the simulator's panic
            // becomes a note.
            let s = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                sim::simulate_closed(model, users, think_eff_s, opts)
            }))
            .map_err(|p| {
                format!(
                    "no theory ({why}) and the simulator failed: {}",
                    panic_text(p.as_ref())
                )
            })?;
            Ok(ClosedReference {
                source: format!(
                    "simulation, {} replications ± {:.1} µs",
                    s.replications,
                    s.response_s.half_width * 1e6
                ),
                think_eff_s,
                throughput: s.throughput.value,
                throughput_half: Some(s.throughput.half_width),
                response_s: s.response_s.value,
                response_half_s: Some(s.response_s.half_width),
                bound_throughput: bounds.bound_throughput,
                bound_response_s: bounds.bound_response_s,
                n_star: bounds.n_star,
            })
        }
    }
}

/// The message of a caught panic.
pub(crate) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// The batch-means interval of the throughput over `intervals`: each interval's completions over
/// its length is a batch rate (a stub shorter than half the longest interval joins the batch
/// before it, as in [`result::batch_ci`]); the estimate is all completions over all the time,
/// the half-width Student's t over the batch rates. `None` with fewer than two batches.
pub fn throughput_ci(intervals: &[Interval]) -> Option<MeanCi> {
    let full = intervals.iter().map(|i| i.duration_s).fold(0.0, f64::max);
    let mut batches: Vec<(f64, f64)> = Vec::with_capacity(intervals.len());
    for i in intervals.iter().filter(|i| i.duration_s > 0.0) {
        let c = i.completed as f64;
        match batches.last_mut() {
            Some(last) if i.duration_s < 0.5 * full => {
                last.0 += c;
                last.1 += i.duration_s;
            }
            _ => batches.push((c, i.duration_s)),
        }
    }
    let b = batches.len();
    if b < 2 {
        return None;
    }
    let (c, t): (f64, f64) = batches
        .iter()
        .fold((0.0, 0.0), |(c, t), &(bc, bt)| (c + bc, t + bt));
    let mean = c / t;
    let rates: Vec<f64> = batches.iter().map(|&(c, t)| c / t).collect();
    let m = rates.iter().sum::<f64>() / b as f64;
    let s2 = rates.iter().map(|r| (r - m) * (r - m)).sum::<f64>() / (b - 1) as f64;
    let half = stats::student_t_975(b as u64 - 1) * (s2 / b as f64).sqrt();
    Some(MeanCi {
        mean,
        low: mean - half,
        high: mean + half,
    })
}

/// One closed point, measured against its reference. Times in µs unless named otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedAnalysis {
    /// Users N.
    pub users: u32,
    /// Mean think time Z (s).
    pub think_s: f64,
    /// Answers completed in the measured window.
    pub completed: u64,
    /// Requests without an answer.
    pub errors: u64,
    /// Measured throughput X (1/s).
    pub throughput: f64,
    /// Its 95% batch-means interval.
    pub throughput_ci: Option<(f64, f64)>,
    /// Mean response time, raw (qload's latency).
    pub response_raw_us: Option<f64>,
    /// Its 95% interval.
    pub response_raw_ci_us: Option<(f64, f64)>,
    /// Mean response time of the queue, net of the path (Server-Timing).
    pub response_net_us: Option<f64>,
    /// Its 95% interval.
    pub response_net_ci_us: Option<(f64, f64)>,
    /// Mean path (raw − net).
    pub path_us: Option<f64>,
    /// The think time the queue sees, Z + the mean path (s).
    pub think_eff_s: f64,
    /// Little's law over the whole cycle: X·(R raw + Z), which should be N.
    pub little_users: Option<f64>,
    /// The reference, if any.
    pub reference: Option<ClosedReference>,
    /// Whether the reference's X is within the measured X's interval (see the module docs).
    pub covers_throughput: Option<bool>,
    /// Whether the reference's R is within the measured net R's interval (raw without
    /// Server-Timing).
    pub covers_response: Option<bool>,
    /// (X − X_ref)/X_ref.
    pub err_throughput: Option<f64>,
    /// (R − R_ref)/R_ref, R net (raw without Server-Timing).
    pub err_response: Option<f64>,
    /// The point's verdict.
    pub verdict: Option<Verdict>,
    /// Attempts made.
    pub attempts: u32,
    /// Why something is missing.
    pub notes: Vec<String>,
}

/// Whether the interval of `measured − reference` (half-widths combined in quadrature) holds 0.
fn covers(measured: f64, ci: Option<(f64, f64)>, reference: f64, ref_half: Option<f64>) -> bool {
    let h = ci.map_or(0.0, |(lo, hi)| (hi - lo) / 2.0);
    let r = ref_half.unwrap_or(0.0);
    (measured - reference).abs() <= (h * h + r * r).sqrt()
}

/// Analyses one recorded closed point (no I/O; the reference is the one recorded).
pub fn analyze(rec: &ClosedPointRecord) -> ClosedAnalysis {
    let raw = &rec.raw;
    let mut notes = Vec::new();
    let throughput = if raw.duration_s > 0.0 {
        raw.requests.completed as f64 / raw.duration_s
    } else {
        0.0
    };
    let pair = |c: MeanCi| (c.low, c.high);
    let throughput_ci = throughput_ci(&raw.intervals).map(pair);
    let has_answers = raw.requests.completed > 0;
    let response_raw_us = has_answers.then_some(raw.latency_us.mean);
    let response_raw_ci_us = result::batch_ci(&raw.intervals, false).map(pair);
    let timed = raw.server_us.as_ref().filter(|s| s.count > 0);
    let response_net_us = timed.map(|s| s.mean);
    let response_net_ci_us = timed.and_then(|_| {
        stats::batch_means_ci(&result::batches_of(&raw.intervals, |i| i.server_mean_us)).map(pair)
    });
    let path_us = raw.path_us.as_ref().filter(|p| p.count > 0).map(|p| p.mean);
    if timed.is_none() {
        notes.push("no Server-Timing: R is raw and Z_eff = Z".into());
    }
    let think_eff_s = rec.think_s + path_us.unwrap_or(0.0) * 1e-6;
    let little_users = response_raw_us.map(|r| throughput * (r * 1e-6 + rec.think_s));
    let mut a = ClosedAnalysis {
        users: rec.users,
        think_s: rec.think_s,
        completed: raw.requests.completed,
        errors: raw.requests.errors,
        throughput,
        throughput_ci,
        response_raw_us,
        response_raw_ci_us,
        response_net_us,
        response_net_ci_us,
        path_us,
        think_eff_s,
        little_users,
        reference: rec.reference.clone(),
        covers_throughput: None,
        covers_response: None,
        err_throughput: None,
        err_response: None,
        verdict: rec.verdict,
        attempts: rec.attempts,
        notes,
    };
    match &rec.reference {
        Some(r) => {
            if has_answers && r.throughput > 0.0 {
                a.err_throughput = Some(throughput / r.throughput - 1.0);
                a.covers_throughput = throughput_ci
                    .map(|ci| covers(throughput, Some(ci), r.throughput, r.throughput_half));
            }
            let (resp, ci) = match response_net_us {
                Some(n) => (Some(n), response_net_ci_us),
                None => (response_raw_us, response_raw_ci_us),
            };
            let r_us = r.response_s * 1e6;
            if let Some(m) = resp.filter(|_| r_us > 0.0) {
                a.err_response = Some(m / r_us - 1.0);
                a.covers_response =
                    ci.map(|ci| covers(m, Some(ci), r_us, r.response_half_s.map(|h| h * 1e6)));
            }
        }
        None => a.notes.push("no reference".into()),
    }
    a
}

/// Runs a closed sweep: measures every N, keeps `results.json` up to date (an empty `points`
/// and a `closed` section), then writes the report ([`report`]).
pub fn sweep(
    plan: &SweepPlan,
    cp: &ClosedPlan,
    log: &mut dyn SweepLog,
) -> anyhow::Result<ClosedOutput> {
    sweep::create_fresh_dir(&plan.out)?;
    let mut file = sweep::new_results_file(plan);
    file.closed = Some(ClosedSweep {
        users: cp.users.clone(),
        think_s: cp.think.as_secs_f64(),
        points: Vec::with_capacity(cp.users.len()),
        analysis: Vec::new(),
    });
    file.write(&plan.out)?;
    let n = cp.users.len();
    for (i, &users) in cp.users.iter().enumerate() {
        let rec = measure_point(plan, cp, i, users, log).map_err(|e| {
            if file.closed.as_ref().is_some_and(|c| !c.points.is_empty()) {
                let _ = report(&plan.out);
            }
            e.context(format!(
                "point {} of {n} (N = {users}); the points before it are in {}",
                i + 1,
                plan.out.display()
            ))
        })?;
        let a = analyze(&rec);
        log.line(&progress_line(i, n, &a));
        if let Some(c) = file.closed.as_mut() {
            c.points.push(rec);
            c.analysis = c.points.iter().map(analyze).collect();
        }
        file.write(&plan.out)?;
        log.point_done();
    }
    report(&plan.out)
}

fn progress_line(i: usize, n: usize, a: &ClosedAnalysis) -> String {
    let v = |x: Option<f64>| x.map_or_else(|| "–".to_owned(), |x| format!("{x:.1}"));
    let mut s = format!(
        "[{}/{n}] N = {}: X = {:.1}/s (reference {}), R = {} µs net (reference {} µs), path {} µs",
        i + 1,
        a.users,
        a.throughput,
        v(a.reference.as_ref().map(|r| r.throughput)),
        v(a.response_net_us.or(a.response_raw_us)),
        v(a.reference.as_ref().map(|r| r.response_s * 1e6)),
        v(a.path_us),
    );
    if a.verdict == Some(Verdict::Failed) {
        s.push_str(", FAILED its checks");
    }
    s
}

fn measure_point(
    plan: &SweepPlan,
    cp: &ClosedPlan,
    i: usize,
    users: u32,
    log: &mut dyn SweepLog,
) -> anyhow::Result<ClosedPointRecord> {
    let n = cp.users.len();
    let warmup = warmup_for(plan, users, cp.think);
    let kept = sweep::with_retries(
        plan.attempts,
        sweep::run_seed(plan.seed, i, false),
        &format!("[{}/{n}] N = {users}:", i + 1),
        |number, seed, log| {
            // Not `log.start`: the progress bar names a load ρ, which a closed point has not.
            log.line(&format!(
                "[{}/{n}] N = {users}: closed loop, think {:.1} ms, for {:.1} s after a {:.1} s \
                 warm-up{}",
                i + 1,
                cp.think.as_secs_f64() * 1e3,
                plan.duration.as_secs_f64(),
                warmup.as_secs_f64(),
                if number > 1 {
                    format!(" (attempt {number} of {})", plan.attempts)
                } else {
                    String::new()
                }
            ));
            let config = config_for(
                &plan.url,
                users,
                cp.think,
                plan.duration,
                warmup,
                seed,
                &plan.opts,
            )?;
            let raw = queuelab_client::run_with_stop(config, Arc::clone(&plan.stop))
                .with_context(|| format!("closed-loop qload run of {users} users"))?;
            if plan.stop.load(Ordering::Relaxed) {
                bail!("interrupted; this point's partial run is not recorded");
            }
            Ok(raw)
        },
        |raw| closed_checks(&plan.model, raw),
        || plan.stop.load(Ordering::Relaxed),
        log,
    )?;
    let verdict = kept.verdict();
    let raw = kept.attempt;
    let path_s = raw
        .path_us
        .as_ref()
        .filter(|p| p.count > 0)
        .map_or(0.0, |p| p.mean * 1e-6);
    let think_s = cp.think.as_secs_f64();
    let reference = match reference(&plan.model, users, think_s + path_s, &cp.sim) {
        Ok(r) => Some(r),
        Err(e) => {
            log.line(&format!("[{}/{n}] N = {users}: no reference: {e}", i + 1));
            None
        }
    };
    Ok(ClosedPointRecord {
        index: i,
        users,
        think_s,
        warmup_s: warmup.as_secs_f64(),
        seed: kept.seed,
        raw,
        attempts: kept.number,
        verdict: Some(verdict),
        checks: kept.checks,
        rejected: kept.rejected,
        reference,
    })
}

/// What [`report`] wrote.
#[derive(Debug, Clone)]
pub struct ClosedOutput {
    /// The table as printed.
    pub table: String,
    /// Files written.
    pub files: Vec<PathBuf>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

fn opt_ci(v: Option<(f64, f64)>, digits: usize) -> String {
    v.map_or_else(
        || "–".into(),
        |(a, b)| format!("[{a:.digits$}, {b:.digits$}]"),
    )
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "–",
    }
}

/// The text table of a closed sweep: a header naming the model, then one row per N (times in
/// µs), the references' sources and the coverage summary.
pub fn table(model: &Model, sweep: &ClosedSweep, points: &[ClosedAnalysis]) -> String {
    let mut s = format!(
        "{} closed loop: think Z = {:.3} ms, μ = {}/s, c = {}; the reference uses \
         Z_eff = Z + the mean path measured at each N (the queue sees the path as think time)\n",
        model.name(),
        sweep.think_s * 1e3,
        model.mu,
        model.servers,
    );
    if points.len() < sweep.users.len() {
        s.push_str(&format!(
            "incomplete: {} of {} points measured\n",
            points.len(),
            sweep.users.len()
        ));
    }
    s.push_str(&format!(
        "\n{:>5} {:>10} {:>22} {:>10} {:>10} {:>22} {:>10} {:>8} {:>9} {:>8} {:>7} {:>7} {:>7}\n",
        "N",
        "X/s",
        "X 95% CI",
        "X ref",
        "R net",
        "R net 95% CI",
        "R ref",
        "path",
        "Z_eff ms",
        "X(R+Z)",
        "X cov",
        "R cov",
        "checks"
    ));
    for a in points {
        let r = a.reference.as_ref();
        s.push_str(&format!(
            "{:>5} {:>10.1} {:>22} {:>10} {:>10} {:>22} {:>10} {:>8} {:>9.3} {:>8} {:>7} {:>7} {:>7}\n",
            a.users,
            a.throughput,
            opt_ci(a.throughput_ci, 1),
            opt(r.map(|r| r.throughput), 1),
            opt(a.response_net_us.or(a.response_raw_us), 1),
            opt_ci(a.response_net_ci_us.or(a.response_raw_ci_us), 1),
            opt(r.map(|r| r.response_s * 1e6), 1),
            opt(a.path_us, 1),
            a.think_eff_s * 1e3,
            opt(a.little_users, 2),
            yes_no(a.covers_throughput),
            yes_no(a.covers_response),
            match (a.verdict, a.attempts) {
                (Some(Verdict::Failed), _) => "FAILED".to_owned(),
                (Some(Verdict::Ok), n) if n > 1 => format!("ok ({n})"),
                (Some(Verdict::Ok), _) => "ok".to_owned(),
                (None, _) => "–".to_owned(),
            },
        ));
    }
    let mut sources: Vec<&str> = points
        .iter()
        .filter_map(|a| a.reference.as_ref().map(|r| r.source.as_str()))
        .collect();
    sources.dedup();
    let counted = |f: fn(&ClosedAnalysis) -> Option<bool>| {
        let with: Vec<bool> = points.iter().filter_map(f).collect();
        (with.iter().filter(|&&c| c).count(), with.len())
    };
    let (cx, nx) = counted(|a| a.covers_throughput);
    let (cr, nr) = counted(|a| a.covers_response);
    s.push_str(&format!(
        "Summary: the reference is within the 95% interval of X at {cx} of {nx} points and of R \
         at {cr} of {nr}; reference: {}; X(R+Z) is Little's law over the whole cycle (it \
         should be N)\n",
        if sources.is_empty() {
            "none".to_owned()
        } else {
            sources.join("; ")
        }
    ));
    for a in points {
        for n in &a.notes {
            s.push_str(&format!("note N = {}: {n}\n", a.users));
        }
    }
    s
}

/// The mean Z_eff over the points (the bounds' think time), or Z without points.
fn mean_think_eff(sweep: &ClosedSweep, points: &[ClosedAnalysis]) -> f64 {
    if points.is_empty() {
        return sweep.think_s;
    }
    points.iter().map(|a| a.think_eff_s).sum::<f64>() / points.len() as f64
}

/// The N axis: 0 to a little above the largest N.
fn users_axis(points: &[ClosedAnalysis]) -> Axis {
    let max = points
        .iter()
        .map(|a| f64::from(a.users))
        .fold(1.0, f64::max);
    Axis::auto("users N", 0.0, max * 1.05, true)
}

/// The bounds and the knee, for `mean Z_eff` (see [`ClosedReference`]).
fn bounds(model: &Model, z: f64) -> Option<(f64, f64, f64)> {
    match model.servers {
        Servers::Finite(c) => {
            let d = 1.0 / model.mu;
            let c = f64::from(c);
            Some((d, c, c * (d + z) / d))
        }
        Servers::Infinite => None,
    }
}

fn knee_series(n_star: f64, y_max: f64) -> Series {
    Series {
        id: "knee".into(),
        label: format!("knee N* = {n_star:.1}"),
        color: "#888".into(),
        style: Style::Line { dashed: true },
        points: vec![Point::new(n_star, 0.0), Point::new(n_star, y_max)],
    }
}

/// X(N) against N: the measured throughput with its interval, the reference, the bound
/// min(N/(D + Z_eff), c/D) dashed and the knee N*.
pub fn throughput_chart(
    model: &Model,
    sweep: &ClosedSweep,
    points: &[ClosedAnalysis],
    subtitle: &str,
) -> Chart {
    let x = users_axis(points);
    let z = mean_think_eff(sweep, points);
    let mut series = Vec::new();
    let mut y_max = points
        .iter()
        .map(|a| a.throughput_ci.map_or(a.throughput, |c| c.1))
        .fold(0.0, f64::max);
    let reference: Vec<Point> = points
        .iter()
        .filter_map(|a| {
            a.reference
                .as_ref()
                .map(|r| Point::new(f64::from(a.users), r.throughput))
        })
        .collect();
    y_max = reference.iter().map(|p| p.y).fold(y_max, f64::max);
    let mut notes = vec![format!(
        "bounds and knee at the mean Z_eff = {:.3} ms",
        z * 1e3
    )];
    let knee = bounds(model, z).map(|(d, c, n_star)| {
        let light = |n: f64| n / (d + z);
        let mut pts = vec![Point::new(1.0, light(1.0))];
        if n_star > 1.0 && n_star < x.max {
            pts.push(Point::new(n_star, c / d));
        }
        pts.push(Point::new(x.max, light(x.max).min(c / d)));
        let bound = Series {
            id: "bound".into(),
            label: "bound min(N/(D+Z), c/D)".into(),
            color: PALETTE[3].into(),
            style: Style::Line { dashed: true },
            points: pts,
        };
        (bound, n_star, c / d)
    });
    if let Some((bound, n_star, top)) = knee {
        y_max = y_max.max(top);
        series.push(bound);
        if n_star <= x.max {
            series.push(knee_series(n_star, y_max * 1.1));
        } else {
            notes.push(format!("knee N* = {n_star:.1} beyond the sweep"));
        }
    }
    if !reference.is_empty() {
        series.push(Series {
            id: "reference".into(),
            label: "reference X(N)".into(),
            color: PALETTE[0].into(),
            style: Style::Line { dashed: false },
            points: reference,
        });
    }
    series.push(Series {
        id: "measured".into(),
        label: "measured X, 95% CI".into(),
        color: PALETTE[1].into(),
        style: Style::Markers(Marker::Circle),
        points: points
            .iter()
            .map(|a| Point {
                x: f64::from(a.users),
                y: a.throughput,
                err: a.throughput_ci,
            })
            .collect(),
    });
    Chart {
        id: "throughput-vs-users".into(),
        title: format!("{} closed loop: throughput X(N)", model.name()),
        subtitle: subtitle.to_owned(),
        x,
        y: Axis::auto("throughput X (1/s)", 0.0, y_max * 1.1, true),
        series,
        notes,
    }
}

/// R(N) against N: the measured net response time with its interval, the reference, the bound
/// max(D, N·D/c − Z_eff) dashed and the knee N*.
pub fn response_chart(
    model: &Model,
    sweep: &ClosedSweep,
    points: &[ClosedAnalysis],
    subtitle: &str,
) -> Chart {
    let x = users_axis(points);
    let z = mean_think_eff(sweep, points);
    let r_max_us = points
        .iter()
        .flat_map(|a| {
            [
                a.response_net_ci_us.or(a.response_raw_ci_us).map(|c| c.1),
                a.response_net_us.or(a.response_raw_us),
                a.reference.as_ref().map(|r| r.response_s * 1e6),
            ]
        })
        .flatten()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let (scale, unit) = if r_max_us >= 2000.0 {
        (1e-3, "ms")
    } else {
        (1.0, "µs")
    };
    let mut series = Vec::new();
    let mut y_max = r_max_us * scale;
    let notes = vec![format!(
        "bounds and knee at the mean Z_eff = {:.3} ms; R net of the path",
        z * 1e3
    )];
    if let Some((d, c, n_star)) = bounds(model, z) {
        let heavy = |n: f64| (n * d / c - z).max(d) * 1e6 * scale;
        let mut pts = vec![Point::new(1.0, heavy(1.0))];
        if n_star > 1.0 && n_star < x.max {
            pts.push(Point::new(n_star, d * 1e6 * scale));
        }
        pts.push(Point::new(x.max, heavy(x.max)));
        y_max = y_max.max(pts.iter().map(|p| p.y).fold(0.0, f64::max));
        series.push(Series {
            id: "bound".into(),
            label: "bound max(D, N·D/c − Z)".into(),
            color: PALETTE[3].into(),
            style: Style::Line { dashed: true },
            points: pts,
        });
        if n_star <= x.max {
            series.push(knee_series(n_star, y_max * 1.1));
        }
    }
    let reference: Vec<Point> = points
        .iter()
        .filter_map(|a| {
            a.reference
                .as_ref()
                .map(|r| Point::new(f64::from(a.users), r.response_s * 1e6 * scale))
        })
        .collect();
    if !reference.is_empty() {
        series.push(Series {
            id: "reference".into(),
            label: "reference R(N)".into(),
            color: PALETTE[0].into(),
            style: Style::Line { dashed: false },
            points: reference,
        });
    }
    series.push(Series {
        id: "measured-net".into(),
        label: "measured R (net), 95% CI".into(),
        color: PALETTE[1].into(),
        style: Style::Markers(Marker::Circle),
        points: points
            .iter()
            .filter_map(|a| {
                let m = a.response_net_us.or(a.response_raw_us)?;
                let ci = a.response_net_ci_us.or(a.response_raw_ci_us);
                Some(Point {
                    x: f64::from(a.users),
                    y: m * scale,
                    err: ci.map(|(lo, hi)| (lo * scale, hi * scale)),
                })
            })
            .collect(),
    });
    Chart {
        id: "response-vs-users".into(),
        title: format!("{} closed loop: response time R(N)", model.name()),
        subtitle: subtitle.to_owned(),
        x,
        y: Axis::auto(
            format!("mean response time R ({unit})"),
            0.0,
            y_max * 1.1,
            true,
        ),
        series,
        notes,
    }
}

/// The CSV of a closed sweep: one row per N (times in µs, X in 1/s, empty where missing).
pub fn csv(points: &[ClosedAnalysis]) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "users",
        "think_s",
        "throughput",
        "throughput_ci95_low",
        "throughput_ci95_high",
        "ref_throughput",
        "response_raw_us",
        "response_net_us",
        "response_net_ci95_low_us",
        "response_net_ci95_high_us",
        "ref_response_us",
        "path_us",
        "think_eff_s",
        "little_users",
        "covers_throughput",
        "covers_response",
        "reference",
    ])?;
    let f = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
    let b = |v: Option<bool>| v.map_or_else(String::new, |v| v.to_string());
    for a in points {
        let r = a.reference.as_ref();
        w.write_record([
            a.users.to_string(),
            a.think_s.to_string(),
            a.throughput.to_string(),
            f(a.throughput_ci.map(|c| c.0)),
            f(a.throughput_ci.map(|c| c.1)),
            f(r.map(|r| r.throughput)),
            f(a.response_raw_us),
            f(a.response_net_us),
            f(a.response_net_ci_us.map(|c| c.0)),
            f(a.response_net_ci_us.map(|c| c.1)),
            f(r.map(|r| r.response_s * 1e6)),
            f(a.path_us),
            a.think_eff_s.to_string(),
            f(a.little_users),
            b(a.covers_throughput),
            b(a.covers_response),
            r.map_or_else(String::new, |r| r.source.clone()),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// Everything a closed sweep shows, not yet written anywhere.
#[derive(Debug, Clone)]
pub struct ClosedRendered {
    /// Per-point analysis.
    pub points: Vec<ClosedAnalysis>,
    /// The text table.
    pub table: String,
    /// The CSV.
    pub csv: String,
    /// The two plots: file name and document.
    pub plots: Vec<(&'static str, String)>,
    /// The one-line setup under the plots' titles and the page's heading.
    pub subtitle: String,
}

/// Everything a closed sweep shows, from its results file (no I/O).
pub fn render(file: &ResultsFile) -> anyhow::Result<ClosedRendered> {
    let model = file.config.model()?;
    let Some(sweep) = &file.closed else {
        bail!("not a closed sweep (no `closed` section)");
    };
    let points: Vec<ClosedAnalysis> = sweep.points.iter().map(analyze).collect();
    let subtitle = format!(
        "μ = {}/s, c = {}, think {:.3} ms, {} s per point; started {}",
        file.config.mu,
        model.servers,
        sweep.think_s * 1e3,
        file.config.duration_s,
        file.created
    );
    let table = table(&model, sweep, &points);
    let plots = vec![
        (
            THROUGHPUT_SVG,
            throughput_chart(&model, sweep, &points, &subtitle).render(),
        ),
        (
            RESPONSE_SVG,
            response_chart(&model, sweep, &points, &subtitle).render(),
        ),
    ];
    let csv = csv(&points)?;
    Ok(ClosedRendered {
        points,
        table,
        csv,
        plots,
        subtitle,
    })
}

/// Redraws a closed sweep from `dir/results.json`: `table.txt`, `closed.csv`, the two plots and
/// `index.html` (last, so that the list of files written ends with the one to open).
pub fn report(dir: &Path) -> anyhow::Result<ClosedOutput> {
    let file = ResultsFile::read(dir)?;
    let rendered = render(&file)?;
    let page = crate::html::render_closed_html(&file, &rendered);
    let ClosedRendered {
        table, csv, plots, ..
    } = rendered;
    let mut files = Vec::new();
    let mut put = |name: &str, text: &str| -> anyhow::Result<()> {
        let p = dir.join(name);
        write_atomic(&p, text.as_bytes())?;
        files.push(p);
        Ok(())
    };
    put(TABLE_TXT, &table)?;
    put(CLOSED_CSV, &csv)?;
    for (name, doc) in &plots {
        put(name, doc)?;
    }
    put(INDEX_HTML, &page)?;
    Ok(ClosedOutput { table, files })
}
