//! The self-checks of a point: does the run measure the queue it claims to, or did the machine,
//! the client or the server get in the way?
//!
//! [`check_point`] holds qload's result of a point (and of its overhead run) to a fixed list of
//! limits, each derived below from what it protects: the arrival process the queue saw, the
//! stationarity of the run, and a bias of at most about 1% of W on the mean. A point that fails
//! one is measured again by the sweep (`--attempts`); see `crate::sweep`.
//!
//! A check whose input the run does not have (no `Server-Timing` from the server, too few
//! batches, no arrival statistics) is left out of the list rather than listed as passed: a
//! listed check always means the value was measured. The order is fixed ([`NAMES`]).
//!
//! Limits, in order (T = measured duration, λ = target rate, E\[S\] = 1/μ, ρ = λ/(cμ)):
//!
//! - `arrival_rate`: |achieved/target − 1| ≤ 5/√(λT). The count of a Poisson process over T is
//!   Poisson(λT), of relative standard deviation 1/√(λT); five of them leave a kept schedule a
//!   two-sided chance of 5.7·10⁻⁷ of failing.
//! - `arrival_ks`: the KS distance of the normalized send gaps from Exp(1) ≤ √(ln(2/α)/(2n)),
//!   α = 10⁻⁶, n the gaps: the Dvoretzky–Kiefer–Wolfowitz inequality with Massart's constant,
//!   P(D > ε) ≤ 2e^{−2nε²}, holds for every n, not only asymptotically.
//! - `send_lag_p99` ≤ E\[S\]/10: a request sent late arrives late; lags of a tenth of a service
//!   time move the arrival process the queue sees by a few % of its gaps at most (at ρ ≤ 0.95 the
//!   mean gap is over a service time).
//! - `send_lag_max` and `server_stall` (the largest `late` of the server's departures) ≤ the stall
//!   limit s\*: a stall of s piles up λs requests that wait s/2 on average, and leaves a backlog
//!   that the queue works off at cμ − λ; together they add about λs²/(2(1 − ρ)) to the total
//!   response time of the λT requests, a bias of s²/(2T(1 − ρ)) on the mean. Holding it to εW
//!   with ε = 1% gives s\* = √(2T(1 − ρ)εW); for M/M/1, W(1 − ρ) = 1/μ and s\* = √(2Tε/μ), 30 ms
//!   at T = 45 s and μ = 1000/s. W is the model's theory; without one (no closed form), the
//!   M/M/1 form √(2TεE\[S\]). With infinitely many servers no backlog forms (factor 1 instead of
//!   1 − ρ); with a capacity at ρ ≥ 1 the backlog is bounded by K and blocked beyond it, and the
//!   factor is held at 1 − 0.95 (the limit of a queue near saturation, which is smaller, so
//!   stricter, than what blocking allows).
//! - `timer_late_p99`: the server's `late` p99 ≤ E\[S\]/10, for the same reason as the send lag:
//!   a departure that fires late lengthens the service the next customer waits for.
//! - `stationarity`: the logarithms of the B batch means of the latency (the batches of the
//!   interval of the mean, [`queuelab_client::result::batches_of`]), each against the others.
//!   Logarithms, because near saturation a batch mean of sojourn times is right-skewed: one long
//!   busy period lifts a batch far above the rest with nothing wrong (the lab's quick sweep at
//!   ρ = 0.8 failed a batch at t = 10.3 on the raw means that way), and the log of a positive,
//!   skewed mean is close to symmetric; a stall still lifts its batch by a factor. Then
//!   t_i = (x_i − m₋ᵢ) /
//!   (s₋ᵢ·√(1 + 1/(B − 1))), with m₋ᵢ, s₋ᵢ the mean and standard deviation of the other B − 1, is
//!   Student-t with B − 2 degrees of freedom for iid normal batch means (the externally
//!   studentized residual). The value is max |t_i|, the limit the Bonferroni quantile
//!   t_{B−2}(1 − α/(2B)) with α = 10⁻⁴, so that a stationary run fails with probability below α.
//!   A stall or a drift of the machine shows as one batch far from the others. Skipped with
//!   fewer than 4 batches.
//! - `overhead_stability`: the median of the path (latency minus the server's `Server-Timing`
//!   durations) per interval against the run's median path: max |p50_i − p50| ≤ max(20 µs,
//!   E\[S\]/50). The net of a point from `Server-Timing` subtracts each request's own path, so a
//!   change of the path does not bias it; what it shows is a machine whose state changed within
//!   the run (another process taking the cores, a frequency change), which the zero-service twin,
//!   measured at another time, does not see. 20 µs is the order of the path itself on loopback
//!   (15–32 µs): a median that doubles is a different machine; E\[S\]/50 keeps a slower queue from
//!   failing on the path's ordinary spread, and bounds what the twin's net (which assumes one
//!   constant path) may be off by to 2% of a service time. Without `Server-Timing` the same test
//!   is made on the overhead run (its interval medians of the latency against its median), the
//!   path as the twin measures it; without either, skipped. Intervals shorter than half the
//!   longest (the stub at the end of a run) are left out, as in the batches.
//! - `errors`: requests without an answer = 0. A failed request is a response time not measured,
//!   and those fail at the worst moments (timeouts when the queue is long).
use queuelab_client::result::{self, RunResult};
use queuelab_common::model::{Model, Servers};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::analysis;
use crate::record::Check;

/// The checks in the order [`check_point`] lists them.
pub const NAMES: [&str; 9] = [
    "arrival_rate",
    "arrival_ks",
    "send_lag_p99",
    "send_lag_max",
    "server_stall",
    "timer_late_p99",
    "stationarity",
    "overhead_stability",
    "errors",
];

/// Standard deviations of the Poisson count allowed to `arrival_rate`.
pub const RATE_SIGMAS: f64 = 5.0;
/// Significance of `arrival_ks` (DKW–Massart).
pub const KS_ALPHA: f64 = 1e-6;
/// Significance of `stationarity` over all its batches (Bonferroni).
pub const STATIONARITY_ALPHA: f64 = 1e-4;
/// Fewest batches `stationarity` is made with (B − 2 ≥ 2 degrees of freedom).
pub const STATIONARITY_MIN_BATCHES: usize = 4;
/// The bias of the mean a stall may cause, as a fraction of W (`send_lag_max`, `server_stall`).
pub const STALL_EPSILON: f64 = 0.01;
/// The least limit of `overhead_stability`, µs.
pub const PATH_DRIFT_FLOOR_US: f64 = 20.0;

/// The `Server-Timing` metric of the departure timer's lateness.
pub const LATE_METRIC: &str = "late";

fn check(name: &str, value: f64, limit: f64, unit: &str) -> Check {
    Check {
        name: name.into(),
        value,
        limit,
        unit: unit.into(),
        // NaN fails: a value that could not be computed is not within anything.
        passed: value <= limit,
    }
}

/// The stall limit s\* in µs for a run of `duration_s` at `lambda` (see the module docs).
pub fn stall_limit_us(model: &Model, lambda: f64, duration_s: f64) -> f64 {
    let es = 1.0 / model.mu;
    let factor = match model.servers {
        Servers::Infinite => 1.0,
        Servers::Finite(c) => (1.0 - lambda / (f64::from(c) * model.mu)).max(0.05),
    };
    let wf = match analysis::theory_at(model, lambda) {
        Ok(t) if t.mean_us > 0.0 && t.mean_us.is_finite() => t.mean_us * 1e-6 * factor,
        // No closed form: M/M/1's W(1 − ρ) = E[S].
        _ => es,
    };
    stall_limit_for_us(wf, duration_s)
}

/// The limit of `stationarity` for `b` batches: t_{b−2}(1 − α/(2b)).
pub fn stationarity_limit(b: usize) -> Option<f64> {
    if b < STATIONARITY_MIN_BATCHES {
        return None;
    }
    let t = StudentsT::new(0.0, 1.0, (b - 2) as f64).ok()?;
    Some(t.inverse_cdf(1.0 - STATIONARITY_ALPHA / (2.0 * b as f64)))
}

/// max |t_i| of the batch means `xs`, each against the others (see the module docs).
pub fn max_studentized(xs: &[f64]) -> Option<f64> {
    let b = xs.len();
    if b < 3 {
        return None;
    }
    let k = (b - 1) as f64;
    let mut worst = 0.0f64;
    for (i, &x) in xs.iter().enumerate() {
        // Two passes over the others (B is a few tens at most): no cancellation for large means.
        let others = || {
            xs.iter()
                .enumerate()
                .filter(move |&(j, _)| j != i)
                .map(|(_, &y)| y)
        };
        let m = others().sum::<f64>() / k;
        let ss: f64 = others().map(|y| (y - m) * (y - m)).sum();
        let s = (ss.max(0.0) / (k - 1.0)).sqrt();
        let d = (x - m).abs();
        let t = if s > 0.0 {
            d / (s * (1.0 + 1.0 / k).sqrt())
        } else if d == 0.0 {
            0.0
        } else {
            f64::INFINITY
        };
        worst = worst.max(t);
    }
    Some(worst)
}

/// The largest |median of an interval − `p50`| over the full intervals of `raw` that have a
/// median by `median` (µs), or `None` when none has.
fn max_interval_drift(
    raw: &RunResult,
    p50: f64,
    median: impl Fn(&result::Interval) -> Option<f64>,
) -> Option<f64> {
    let full = raw
        .intervals
        .iter()
        .map(|i| i.duration_s)
        .fold(0.0, f64::max);
    raw.intervals
        .iter()
        .filter(|i| i.completed > 0 && i.duration_s >= 0.5 * full)
        .filter_map(median)
        .map(|m| (m - p50).abs())
        .fold(None, |w: Option<f64>, d| Some(w.map_or(d, |w| w.max(d))))
}

/// What the limits of a point depend on besides the run: the service time the lag limits are a
/// tenth (and the path drift a fiftieth) of, and the stall limit s\*.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// E\[S\] in µs: `send_lag_p99` and `timer_late_p99` are held to a tenth of it,
    /// `overhead_stability` to max(20 µs, E\[S\]/50).
    pub service_us: f64,
    /// s\* in µs: `send_lag_max` and `server_stall` are held to it.
    pub stall_us: f64,
}

impl Limits {
    /// The limits of a single queue `model` at `lambda` for a run of `duration_s`: E\[S\] = 1/μ
    /// and [`stall_limit_us`].
    pub fn of_model(model: &Model, lambda: f64, duration_s: f64) -> Self {
        Limits {
            service_us: 1e6 / model.mu,
            stall_us: stall_limit_us(model, lambda, duration_s),
        }
    }
}

/// The stall limit √(2T·f·εW) in µs for a run of `duration_s`, with `w_times_factor_s` the mean
/// sojourn W times the backlog factor f (1 − ρ, or 1 without a backlog) in seconds (see the
/// module docs).
pub fn stall_limit_for_us(w_times_factor_s: f64, duration_s: f64) -> f64 {
    (2.0 * duration_s * STALL_EPSILON * w_times_factor_s).sqrt() * 1e6
}

/// The checks of one point of `model` at `lambda`: `raw` is qload's result of the run against
/// the queue, `overhead_raw` that of its overhead run, if made. In the order of [`NAMES`], the
/// checks whose input is missing left out (see the module docs).
pub fn check_point(
    model: &Model,
    lambda: f64,
    raw: &RunResult,
    overhead_raw: Option<&RunResult>,
) -> Vec<Check> {
    let limits = Limits::of_model(model, lambda, raw.duration_s);
    check_point_with(&limits, lambda, raw, overhead_raw)
}

/// [`check_point`] with the limits given: a network's point ([`crate::netsweep`]) derives them
/// from the network rather than from one queue.
pub fn check_point_with(
    limits: &Limits,
    lambda: f64,
    raw: &RunResult,
    overhead_raw: Option<&RunResult>,
) -> Vec<Check> {
    let mut out = Vec::with_capacity(NAMES.len());
    let t = raw.duration_s;
    let es_us = limits.service_us;
    let target = raw.target_rate.unwrap_or(lambda);
    if target > 0.0 && t > 0.0 {
        out.push(check(
            NAMES[0],
            (raw.achieved_rate / target - 1.0).abs(),
            RATE_SIGMAS / (target * t).sqrt(),
            "ratio",
        ));
    }
    if let Some(d) = raw.arrivals.ks_d.filter(|_| raw.arrivals.samples > 0) {
        let n = raw.arrivals.samples as f64;
        out.push(check(
            NAMES[1],
            d,
            ((2.0 / KS_ALPHA).ln() / (2.0 * n)).sqrt(),
            "distance",
        ));
    }
    out.push(check(NAMES[2], raw.send_lag_us.p99, es_us / 10.0, "us"));
    let stall = limits.stall_us;
    out.push(check(NAMES[3], raw.send_lag_us.max, stall, "us"));
    let late = raw.server_timing.get(LATE_METRIC).filter(|l| l.count > 0);
    if let Some(l) = late {
        out.push(check(NAMES[4], l.max, stall, "us"));
        out.push(check(NAMES[5], l.p99, es_us / 10.0, "us"));
    }
    // On the logarithms of the batch means (see the module docs); a mean is positive.
    let means: Vec<f64> = result::batches_of(&raw.intervals, |i| Some(i.mean_us))
        .iter()
        .map(|&(sum, n)| (sum / n as f64).max(f64::MIN_POSITIVE).ln())
        .collect();
    if let (Some(limit), Some(v)) = (stationarity_limit(means.len()), max_studentized(&means)) {
        out.push(check(NAMES[6], v, limit, "t"));
    }
    let drift_limit = PATH_DRIFT_FLOOR_US.max(es_us / 50.0);
    let drift = match &raw.path_us {
        Some(p) if p.count > 0 => max_interval_drift(raw, p.p50, |i| i.path_p50_us),
        _ => overhead_raw
            .filter(|o| o.requests.completed > 0)
            .and_then(|o| max_interval_drift(o, o.latency_us.p50, |i| i.p50_us)),
    };
    if let Some(d) = drift {
        out.push(check(NAMES[7], d, drift_limit, "us"));
    }
    out.push(check(NAMES[8], raw.requests.errors as f64, 0.0, "requests"));
    out
}

/// Whether every check passed.
pub fn all_passed(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.passed)
}

/// The checks that failed, cloned.
pub fn failed(checks: &[Check]) -> Vec<Check> {
    checks.iter().filter(|c| !c.passed).cloned().collect()
}

fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "us" if v.abs() >= 1000.0 => format!("{:.1}ms", v / 1000.0),
        "us" => format!("{v:.1}µs"),
        "ratio" => format!("{:.2}%", v * 100.0),
        "requests" => format!("{v:.0}"),
        _ => format!("{v:.4}"),
    }
}

/// A check as one phrase: `send_lag_max 99.1ms > 30.0ms` (`≤` when it passed).
pub fn describe(c: &Check) -> String {
    format!(
        "{} {} {} {}",
        c.name,
        fmt_value(c.value, &c.unit),
        if c.passed { "≤" } else { ">" },
        fmt_value(c.limit, &c.unit)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use queuelab_client::result::{
        Arrivals, DurationSummary, Interval, Requests, SendLag, batch_count,
    };
    use queuelab_common::stats;

    fn mm1() -> Model {
        Model::new(1000.0, Servers::Finite(1))
    }

    /// A 45 s run at λ = 500 against M/M/1 (μ = 1000/s) that passes every check: 16 batches
    /// of latency means 2000 ± 20, path medians 25 ± 2, `late` p99 5 µs and max 50 µs.
    fn good() -> RunResult {
        let intervals = (0..16)
            .map(|k| Interval {
                t_s: k as f64 * 2.8125,
                duration_s: 2.8125,
                sent: 1406,
                completed: 1406,
                mean_us: 2000.0 + if k % 2 == 0 { 20.0 } else { -20.0 },
                p50_us: Some(24.0 + f64::from(k % 3)),
                path_p50_us: Some(25.0 + if k % 2 == 0 { 2.0 } else { -2.0 }),
                server_mean_us: Some(1975.0),
                ..Interval::default()
            })
            .collect();
        let summary = |p50: f64, p99: f64, max: f64| DurationSummary {
            count: 22_500,
            mean: p50,
            p50,
            p90: p99,
            p99,
            max,
            histogram: String::new(),
        };
        RunResult {
            duration_s: 45.0,
            target_rate: Some(500.0),
            achieved_rate: 500.5,
            requests: Requests {
                sent: 22_500,
                completed: 22_500,
                ..Requests::default()
            },
            send_lag_us: SendLag {
                mean: 3.0,
                p50: 2.0,
                p99: 10.0,
                max: 1000.0,
            },
            arrivals: Arrivals {
                samples: 22_500,
                ks_d: Some(0.005),
                ..Arrivals::default()
            },
            intervals,
            server_timing: [(LATE_METRIC.to_owned(), summary(0.4, 5.0, 50.0))]
                .into_iter()
                .collect(),
            path_us: Some(summary(25.0, 40.0, 200.0)),
            ..RunResult::default()
        }
    }

    fn by_name<'a>(checks: &'a [Check], name: &str) -> Option<&'a Check> {
        checks.iter().find(|c| c.name == name)
    }

    /// Checks `r` and returns the names of those that failed.
    fn failing(r: &RunResult, overhead: Option<&RunResult>) -> Vec<String> {
        check_point(&mm1(), 500.0, r, overhead)
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn a_good_run_passes_every_check_in_order() {
        let checks = check_point(&mm1(), 500.0, &good(), None);
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, NAMES);
        assert!(all_passed(&checks), "{checks:?}");
        // The limits, as derived.
        let lim = |n: &str| by_name(&checks, n).expect(n).limit;
        assert!((lim("arrival_rate") - 5.0 / 22_500f64.sqrt()).abs() < 1e-12);
        assert!((lim("arrival_ks") - ((2e6f64).ln() / 45_000.0).sqrt()).abs() < 1e-12);
        assert_eq!(lim("send_lag_p99"), 100.0);
        assert_eq!(lim("timer_late_p99"), 100.0);
        // M/M/1 at T = 45 s, μ = 1000/s: √(2·45·0.01/1000) = 30 ms, whatever ρ.
        assert!((lim("send_lag_max") - 30_000.0).abs() < 1e-6);
        assert!((lim("server_stall") - 30_000.0).abs() < 1e-6);
        assert_eq!(lim("overhead_stability"), 20.0);
        assert_eq!(lim("errors"), 0.0);
        assert!(failed(&checks).is_empty());
    }

    #[test]
    fn each_check_fails_on_its_own_fault() {
        let fails = |f: &dyn Fn(&mut RunResult), want: &str| {
            let mut r = good();
            f(&mut r);
            assert_eq!(failing(&r, None), [want], "{want}");
        };
        // 4% short of the rate against the 5/√22 500 = 3.3% allowed.
        fails(&|r| r.achieved_rate = 480.0, "arrival_rate");
        fails(&|r| r.arrivals.ks_d = Some(0.02), "arrival_ks");
        fails(&|r| r.send_lag_us.p99 = 150.0, "send_lag_p99");
        fails(&|r| r.send_lag_us.max = 99_100.0, "send_lag_max");
        fails(
            &|r| {
                if let Some(l) = r.server_timing.get_mut(LATE_METRIC) {
                    l.max = 400_000.0;
                }
            },
            "server_stall",
        );
        fails(
            &|r| {
                if let Some(l) = r.server_timing.get_mut(LATE_METRIC) {
                    l.p99 = 120.0;
                }
            },
            "timer_late_p99",
        );
        // One batch 400 µs above 15 others of spread 20.7: t ≈ 19 against a limit near 7.7.
        fails(&|r| r.intervals[5].mean_us = 2400.0, "stationarity");
        fails(
            &|r| r.intervals[9].path_p50_us = Some(60.0),
            "overhead_stability",
        );
        fails(&|r| r.requests.errors = 1, "errors");
    }

    #[test]
    fn checks_without_their_input_are_left_out() {
        let mut r = good();
        r.server_timing.clear();
        r.path_us = None;
        r.arrivals.ks_d = None;
        r.intervals.truncate(3);
        let checks = check_point(&mm1(), 500.0, &r, None);
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["arrival_rate", "send_lag_p99", "send_lag_max", "errors"]
        );
        // Four batches are enough for the stationarity check.
        r.intervals = good().intervals;
        r.intervals.truncate(4);
        assert!(by_name(&check_point(&mm1(), 500.0, &r, None), "stationarity").is_some());
    }

    #[test]
    fn without_server_timing_the_overhead_run_is_held_to_the_stability_limit() {
        let mut r = good();
        r.server_timing.clear();
        r.path_us = None;
        let mut o = good();
        o.latency_us.p50 = 25.0;
        let c = check_point(&mm1(), 500.0, &r, Some(&o));
        let s = by_name(&c, "overhead_stability").expect("from the overhead run");
        // Interval medians 24, 25, 26 against 25.
        assert_eq!((s.value, s.passed), (1.0, true));
        o.intervals[4].p50_us = Some(80.0);
        assert_eq!(failing(&r, Some(&o)), ["overhead_stability"]);
        // The stub at the end of a run is not held to it.
        o.intervals[4].p50_us = Some(25.0);
        o.intervals.push(Interval {
            duration_s: 0.01,
            completed: 3,
            p50_us: Some(500.0),
            ..Interval::default()
        });
        assert!(failing(&r, Some(&o)).is_empty());
    }

    #[test]
    fn the_stall_limit_follows_t_rho_and_w() {
        // M/M/1: W(1 − ρ) = 1/μ at every load.
        for lambda in [100.0, 500.0, 950.0] {
            let s = stall_limit_us(&mm1(), lambda, 45.0);
            assert!((s - 30_000.0).abs() < 1e-6, "{lambda}: {s}");
        }
        // A quarter of the time, half the limit.
        assert!((stall_limit_us(&mm1(), 500.0, 11.25) - 15_000.0).abs() < 1e-6);
        // M/D/1 waits half as long: W = 1/μ + ρ/(2μ(1 − ρ)); at ρ = 0.5, 1.5 ms.
        let md1 = mm1().with_service(queuelab_common::model::ServiceKind::Const);
        let want = (2.0 * 45.0 * 0.5 * 0.01 * 1.5e-3f64).sqrt() * 1e6;
        assert!((stall_limit_us(&md1, 500.0, 45.0) - want).abs() < 1e-6);
        // M/M/∞: no backlog, W = 1/μ.
        let inf = Model::new(1000.0, Servers::Infinite);
        assert!((stall_limit_us(&inf, 5000.0, 45.0) - 30_000.0).abs() < 1e-6);
    }

    #[test]
    fn the_stationarity_limit_is_the_bonferroni_t_quantile() {
        // The quantile function agrees with the tabulated 97.5% points.
        for dof in [2u64, 5, 14, 30] {
            let t = StudentsT::new(0.0, 1.0, dof as f64).expect("t");
            let q = t.inverse_cdf(0.975);
            assert!((q - stats::student_t_975(dof)).abs() < 1e-3, "{dof}: {q}");
        }
        for b in [4usize, 8, 16, 30] {
            let l = stationarity_limit(b).expect("enough batches");
            let t = StudentsT::new(0.0, 1.0, (b - 2) as f64).expect("t");
            let tail = 1.0 - t.cdf(l);
            let want = STATIONARITY_ALPHA / (2.0 * b as f64);
            assert!((tail / want - 1.0).abs() < 1e-6, "{b}: {tail} vs {want}");
        }
        assert_eq!(stationarity_limit(3), None);
        // Fewer batches, fewer degrees of freedom, a wider limit.
        assert!(stationarity_limit(4) > stationarity_limit(16));
    }

    #[test]
    fn studentized_deviation_of_one_batch_against_the_others() {
        // 1, 2, 3, 10: the others of 10 have mean 2 and sd 1: t = 8/(1·√(4/3)).
        let t = max_studentized(&[1.0, 2.0, 3.0, 10.0]).expect("t");
        assert!((t - 8.0 / (4.0f64 / 3.0).sqrt()).abs() < 1e-9, "{t}");
        // Location and scale do not matter.
        let shifted = max_studentized(&[1e6 + 2.0, 1e6 + 4.0, 1e6 + 6.0, 1e6 + 20.0]).expect("t");
        assert!((shifted - t).abs() < 1e-6, "{shifted}");
        assert_eq!(max_studentized(&[5.0; 6]), Some(0.0));
        assert_eq!(max_studentized(&[5.0, 5.0, 5.0, 6.0]), Some(f64::INFINITY));
        assert_eq!(max_studentized(&[1.0, 2.0]), None);
    }

    #[test]
    fn a_stationary_run_of_normal_batches_passes_nearly_always() {
        // 2000 runs of 16 iid normal batch means. Each fails with probability at most α = 1e-4,
        // so the failures are at most Binomial(2000, 1e-4) ≈ Poisson(0.2): more than 5 has
        // probability 7e-8. (A fixed xorshift stream and Box–Muller, so the run is repeatable.)
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut unif = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let limit = stationarity_limit(16).expect("16 batches");
        let mut failures = 0;
        for _ in 0..2000 {
            let xs: Vec<f64> = (0..16)
                .map(|_| (-2.0 * unif().ln()).sqrt() * (std::f64::consts::TAU * unif()).cos())
                .collect();
            if max_studentized(&xs).expect("t") > limit {
                failures += 1;
            }
        }
        assert!(failures <= 5, "{failures} of 2000 stationary runs failed");
        // One batch 20 units off fifteen of sd 0.5 is caught.
        let mut xs: Vec<f64> = (0..16).map(|k| f64::from(k % 2)).collect();
        xs[7] = 20.0;
        assert!(max_studentized(&xs).expect("t") > limit);
        assert_eq!(batch_count(&good().intervals), 16);
    }

    #[test]
    fn descriptions_read_plainly() {
        let c = check("send_lag_max", 99_100.0, 30_000.0, "us");
        assert_eq!(describe(&c), "send_lag_max 99.1ms > 30.0ms");
        let c = check("send_lag_p99", 12.0, 100.0, "us");
        assert_eq!(describe(&c), "send_lag_p99 12.0µs ≤ 100.0µs");
        let c = check("arrival_rate", 0.01, 0.0067, "ratio");
        assert_eq!(describe(&c), "arrival_rate 1.00% > 0.67%");
        assert_eq!(
            describe(&check("errors", 3.0, 0.0, "requests")),
            "errors 3 > 0"
        );
        assert!(!check("x", f64::NAN, 1.0, "t").passed);
    }
}
