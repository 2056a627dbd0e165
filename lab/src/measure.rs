//! One measured run of the sweep: the only place where the lab meets qload's engine.
//!
//! [`measure`] builds a [`Config`] for an open-loop Poisson run (rate, duration, warm-up, seed),
//! calls [`queuelab_client::run_with_stop`], and converts the typed [`RunResult`] it returns with
//! [`measurement_from_run`]. The same types read the raw results back from `results.json`, so a
//! key that qload renames or drops is a compile error here, not a number missing at run time.
//!
//! Batches: the measured duration is cut into [`BATCHES`] batches for the batch-means interval of
//! the mean. Law and Kelton advise 10 to 30 batches; fewer, longer batches keep the batch means
//! nearly independent at high load, where successive sojourn times are correlated over seconds.
//! A point shorter than `BATCHES` times the shortest interval (10 ms) has fewer; the measurement
//! records how many it had.
//!
//! The scrape: [`measure_scraped`] reads the server's `/metrics` ([`crate::scrape`]) at the
//! start and at the end of the measured window, so that the counters' differences cover the
//! measured window alone, not the warm-up. qload runs warm-up and measurement in one call, so a
//! thread beside it sleeps until the window's planned edges, which qload fixes when it is
//! called: its schedules start [`SCHEDULE_START`] after the call, and the measurement a warm-up
//! later. The scrapes land within a millisecond or so of those edges (the call's own set-up, the
//! thread's wake-up, the scrape's round trip); an error there slides the window by that much
//! without changing its length, and the analysis allows for it. A run that ends before its
//! planned end (interrupted) gets no window.
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use queuelab_common::model::Model;
use queuelab_common::samplers::ArrivalKind;

use crate::record::{MetricsWindow, PointMeasurement, PointRecord};
use crate::scrape::{self, Snapshot};
use queuelab_client::config::{Config, Mode, Target};
use queuelab_client::result::{self, RunResult};

/// Number of batches of the batch-means confidence interval.
pub const BATCHES: u32 = 16;

/// Engine knobs passed through to every run of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// Worker threads (`None`: one per core the process may use).
    pub threads: Option<usize>,
    /// Pin worker threads to cores.
    pub pin: bool,
    /// Busy-poll margin before each intended send (`None`: qload's default).
    pub spin: Option<Duration>,
    /// Poll without sleeping while requests are in flight (`--busy-poll`).
    pub busy_poll: bool,
    /// Per-request timeout (`None`: qload's default).
    pub timeout: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: None,
            pin: true,
            spin: None,
            busy_poll: false,
            timeout: None,
        }
    }
}

/// One open-loop run to make.
#[derive(Debug, Clone)]
pub struct RunSpec<'a> {
    /// Target URL.
    pub url: &'a str,
    /// Arrival rate λ (1/s).
    pub rate: f64,
    /// Measured duration.
    pub duration: Duration,
    /// Warm-up before measuring.
    pub warmup: Duration,
    /// Seed of the arrival schedule.
    pub seed: u64,
    /// The queue behind the URL (recorded in qload's own result as its theory), if any.
    pub model: Option<&'a Model>,
    /// Engine knobs.
    pub opts: &'a RunOptions,
    /// Ends the run early when set (SIGINT): what was in flight drains for at most one timeout.
    pub stop: &'a Arc<AtomicBool>,
}

/// The qload configuration for `spec`.
pub fn config_for(spec: &RunSpec<'_>) -> anyhow::Result<Config> {
    let target =
        Target::new(spec.url, "GET", &[], None).with_context(|| format!("target {}", spec.url))?;
    let mut c = Config::new(
        target,
        Mode::Open {
            rate: spec.rate,
            arrival: ArrivalKind::Poisson,
        },
    );
    c.duration = Some(spec.duration);
    c.warmup = spec.warmup;
    c.seed = spec.seed;
    c.threads = spec.opts.threads;
    c.pin = spec.opts.pin;
    if let Some(s) = spec.opts.spin {
        c.spin = s;
    }
    c.busy_poll = Some(spec.opts.busy_poll);
    if let Some(t) = spec.opts.timeout {
        c.timeout = t;
    }
    c.interval = (spec.duration / BATCHES).max(Duration::from_millis(10));
    c.theory = spec.model.copied();
    c.live = false;
    Ok(c)
}

/// Runs `spec` and returns the lab's measurement with qload's whole result.
pub fn measure(spec: &RunSpec<'_>) -> anyhow::Result<(PointMeasurement, RunResult)> {
    let config = config_for(spec)?;
    let result =
        queuelab_client::run_with_stop(config, Arc::clone(spec.stop)).with_context(|| {
            format!(
                "qload run against {} at {:.1} requests/s",
                spec.url, spec.rate
            )
        })?;
    let m = measurement_from_run(&result)?;
    Ok((m, result))
}

/// How long after it is called qload starts its schedules (its start margin, which lets every
/// worker be ready at the common start).
pub const SCHEDULE_START: Duration = Duration::from_millis(20);

/// The differences of the server's `/metrics` over a measured window, or why there are none.
pub type Scraped = Result<Option<MetricsWindow>, String>;

/// Like [`measure`], and scrapes `metrics_url` at the start and at the end of the measured
/// window (see the module docs). `Ok(None)`: the run ended early, or the server has no
/// `qserve_uptime_seconds`; `Err`: a scrape failed (the measurement stands).
pub fn measure_scraped(
    spec: &RunSpec<'_>,
    metrics_url: &str,
) -> anyhow::Result<(PointMeasurement, RunResult, Scraped)> {
    let called = Instant::now();
    let start_at = called + SCHEDULE_START + spec.warmup;
    let end_at = start_at + spec.duration;
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let url = metrics_url.to_owned();
    let scraper = std::thread::Builder::new()
        .name("qlab-scrape".into())
        .spawn(move || -> Scraped {
            // Sleeps until `at`; false when the run ended first.
            let wait_until = |at: Instant| {
                let left = at.saturating_duration_since(Instant::now());
                matches!(
                    done_rx.recv_timeout(left),
                    Err(mpsc::RecvTimeoutError::Timeout)
                )
            };
            if !wait_until(start_at) {
                return Ok(None);
            }
            let first = Snapshot::scrape(&url).map_err(|e| format!("{e:#}"));
            if !wait_until(end_at) {
                return Ok(None);
            }
            let last = Snapshot::scrape(&url).map_err(|e| format!("{e:#}"))?;
            Ok(scrape::window(&first?, &last, true))
        })
        .context("spawning the scrape thread")?;
    let run = measure(spec);
    // The run's end, if the scraper still waits for an edge: it gives up.
    drop(done_tx);
    let scraped = scraper
        .join()
        .unwrap_or_else(|_| Err("the scrape thread panicked".into()));
    let (m, r) = run?;
    Ok((m, r, scraped))
}

/// Sets the interval of the mean and the batch count of `m` from the time series of `raw`
/// (`intervals`), with this qload's rule ([`result::batch_ci`]), so that results written before a
/// change of that rule are redrawn with it. Without a series, or with fewer than two batches,
/// the interval `m` has is kept.
fn refresh_from_series(m: &mut PointMeasurement, raw: &RunResult) {
    if raw.intervals.is_empty() {
        return;
    }
    m.batches = Some(result::batch_count(&raw.intervals) as u64);
    if let Some(ci) = result::batch_ci(&raw.intervals, false) {
        m.latency_us.ci95_low = Some(ci.low);
        m.latency_us.ci95_high = Some(ci.high);
    }
}

/// Recomputes the intervals of a recorded point (and of its overhead run) from the raw qload
/// results it keeps; what `qlab report` does before drawing.
pub fn refresh_intervals(rec: &mut PointRecord) {
    refresh_from_series(&mut rec.measured, &rec.raw);
    if let (Some(o), Some(raw)) = (rec.overhead.as_mut(), rec.overhead_raw.as_ref()) {
        refresh_from_series(o, raw);
    }
}

/// The adapter: qload's result as a [`PointMeasurement`].
///
/// The interval of the mean is recomputed from `intervals` when the result has them (see
/// [`result::batch_ci`]), else taken from `latency_us.ci95_low`/`ci95_high`. Blocked requests are
/// the 503 answers (qserve answers no other 5xx status to qload's requests, and a proxy's 502 is
/// not the queue's blocking). Fails for a result without a target rate (not an open-loop run).
pub fn measurement_from_run(r: &RunResult) -> anyhow::Result<PointMeasurement> {
    let target_rate = r
        .target_rate
        .context("qload result: `target_rate` is null (not an open-loop run)")?;
    let q = &r.requests;
    let mut m = PointMeasurement {
        target_rate,
        achieved_rate: r.achieved_rate,
        duration_s: r.duration_s,
        sent: q.sent,
        completed: q.completed,
        errors: q.errors,
        errors_by_kind: q.errors_by_kind,
        status: q.status,
        blocked: q.status.s503,
        latency_us: r.latency_us,
        send_lag_us: r.send_lag_us,
        gap_cv: r.arrivals.gap_cv,
        arrivals_ks_p: r.arrivals.ks_p,
        histogram: r.histogram.clone(),
        batches: None,
    };
    refresh_from_series(&mut m, r);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use queuelab_client::result::{
        Arrivals, ErrorsByKind, FORMAT_VERSION, Interval, Latency, Requests, SendLag, StatusCounts,
    };

    fn sample() -> RunResult {
        RunResult {
            format: FORMAT_VERSION,
            mode: "open".into(),
            target_rate: Some(500.0),
            achieved_rate: 498.5,
            duration_s: 2.0,
            requests: Requests {
                sent: 997,
                completed: 990,
                errors: 7,
                errors_by_kind: ErrorsByKind {
                    timeout: 7,
                    ..ErrorsByKind::default()
                },
                status: StatusCounts {
                    s2xx: 900,
                    s5xx: 90,
                    s503: 90,
                    ..StatusCounts::default()
                },
                ..Requests::default()
            },
            latency_us: Latency {
                count: 990,
                mean: 2000.5,
                stdev: 1900.0,
                min: 30.0,
                p50: 1400.0,
                p90: 4600.0,
                p99: 9200.0,
                p999: 13800.0,
                max: 20000.0,
                ci95_low: Some(1900.0),
                ci95_high: Some(2101.0),
            },
            latency_uncorrected_us: Latency {
                mean: 1990.0,
                ..Latency::default()
            },
            send_lag_us: SendLag {
                mean: 4.0,
                p50: 3.0,
                p99: 12.0,
                max: 80.0,
            },
            arrivals: Arrivals {
                samples: 996,
                gap_mean_us: Some(2006.0),
                gap_cv: Some(1.01),
                ks_d: Some(0.02),
                ks_p: Some(0.4),
                ..Arrivals::default()
            },
            histogram: "HISTFAAAA".into(),
            ..RunResult::default()
        }
    }

    #[test]
    fn adapter_reads_the_typed_result() {
        let r = sample();
        let m = measurement_from_run(&r).expect("valid result");
        assert_eq!(
            (m.sent, m.completed, m.errors, m.blocked),
            (997, 990, 7, 90)
        );
        assert_eq!(
            (m.target_rate, m.achieved_rate, m.duration_s),
            (500.0, 498.5, 2.0)
        );
        assert_eq!(m.latency_us.mean, 2000.5);
        assert_eq!(m.latency_us.ci95_low, Some(1900.0));
        // Without a time series the whole summary is qload's, interval included.
        assert_eq!(m.latency_us, r.latency_us);
        assert_eq!(m.batches, None);
        assert_eq!(m.send_lag_us.p99, 12.0);
        assert_eq!(m.gap_cv, Some(1.01));
        assert_eq!(m.arrivals_ks_p, Some(0.4));
        assert_eq!(m.errors_by_kind.timeout, 7);
        assert_eq!(m.errors_by_kind.total(), 7);
        assert_eq!(m.status.s2xx, 900);
        assert_eq!(m.histogram, "HISTFAAAA");
    }

    #[test]
    fn adapter_recomputes_the_interval_from_the_time_series() {
        let mut r = sample();
        let iv = |t_s: f64, duration_s: f64, n: u64, mean_us: f64| Interval {
            t_s,
            duration_s,
            sent: n,
            completed: n,
            mean_us,
            mean_uncorrected_us: mean_us,
            ..Interval::default()
        };
        r.intervals = vec![
            iv(0.0, 1.0, 400, 1990.0),
            iv(1.0, 1.0, 400, 2010.0),
            iv(2.0, 0.002, 2, 9000.0),
        ];
        let m = measurement_from_run(&r).expect("valid result");
        let ci = result::batch_ci(&r.intervals, false).expect("two batches");
        assert_eq!(m.latency_us.ci95_low, Some(ci.low));
        assert_eq!(m.latency_us.ci95_high, Some(ci.high));
        assert_ne!(m.latency_us.ci95_low, Some(1900.0));
        // The 2 ms stub is counted with the batch before it.
        assert_eq!(m.batches, Some(2));

        // What `qlab report` does to a point recorded with the stored interval.
        let stored = measurement_from_run(&sample()).expect("valid result");
        let mut rec = PointRecord {
            index: 0,
            rho: 0.5,
            lambda: 500.0,
            warmup_s: 1.0,
            seed: 1,
            measured: stored.clone(),
            overhead: Some(stored),
            raw: r.clone(),
            overhead_raw: Some(r),
            attempts: 1,
            verdict: None,
            checks: Vec::new(),
            rejected: Vec::new(),
            reference: None,
            metrics: None,
        };
        assert_eq!(rec.measured.latency_us.ci95_low, Some(1900.0));
        refresh_intervals(&mut rec);
        assert_eq!(rec.measured.latency_us.ci95_high, Some(ci.high));
        assert_eq!(rec.measured.batches, Some(2));
        let o = rec.overhead.expect("overhead");
        assert_eq!(o.latency_us.ci95_low, Some(ci.low));
        assert_eq!(o.batches, Some(2));
    }

    #[test]
    fn adapter_counts_503_as_blocked_and_keeps_null_intervals() {
        let mut r = sample();
        // Other 5xx answers (a proxy's 502) are not the queue's blocking.
        r.requests.status.s5xx = 95;
        r.latency_us.ci95_low = None;
        let m = measurement_from_run(&r).expect("valid result");
        assert_eq!(m.blocked, 90);
        assert_eq!(m.latency_us.ci95_low, None);
        // A series too short for an interval keeps the (null) one qload gave.
        r.intervals = vec![Interval {
            duration_s: 1.0,
            completed: 10,
            mean_us: 5.0,
            ..Interval::default()
        }];
        let m = measurement_from_run(&r).expect("valid result");
        assert_eq!((m.latency_us.ci95_low, m.batches), (None, Some(1)));
    }

    #[test]
    fn adapter_names_the_missing_key() {
        let mut r = sample();
        r.target_rate = None;
        let e = measurement_from_run(&r).expect_err("target_rate is required");
        assert!(format!("{e:#}").contains("target_rate"), "{e:#}");
        // A raw result read back without `latency_us.p99` is refused, naming the key.
        let text = serde_json::to_string(&sample()).expect("serializes");
        let without = text.replace("\"p99\":9200.0,", "");
        assert_ne!(text, without, "the key was there to remove");
        let e = serde_json::from_str::<RunResult>(&without).expect_err("p99 is required");
        assert!(e.to_string().contains("p99"), "{e}");
        assert!(serde_json::from_str::<RunResult>("null").is_err());
        let back: RunResult = serde_json::from_str(&text).expect("round trip");
        assert_eq!(back, sample());
    }
}
