//! `qload`: an open-loop HTTP/1.1 load generator for queueing experiments and high-rate tests.
//!
//! Requests leave on a schedule (Poisson by default, at an aggregate rate λ) from pinned
//! thread-per-core mio event loops, one request in flight per connection. Latency is measured from
//! each request's *intended* send time, so a slow server cannot slow the schedule down and hide
//! its own queueing (no coordinated omission); the uncorrected latency and the send lag are kept
//! too, and every run checks the arrival process it actually produced.
//!
//! - [`Config`] describes a run, [`run`] performs it and returns a [`RunResult`] (the JSON result).
//! - [`merge`] combines results of several runs (e.g. several pods) exactly.
//! - [`report`] renders results as text, CSV and the live line.
//! - [`cli`] holds the command-line flags of `qload` and their validation into a `Config`.
//! - [`lab`] is the queueing lab built on [`run`] (`qload sweep`, `qload report`).
//!
//! # Threads
//!
//! The coordinator (the caller of [`run`]) splits the work over T worker threads (default: one
//! per core the process may run on): each gets λ/T (the superposition of independent Poisson
//! processes is Poisson), its share of users, connections, backlog and `--requests`, and its own
//! RNG stream `rng(seed, thread)`. Workers share nothing while running; once per interval each
//! sends a small report for the live line and time series, and at the end its totals, which the
//! coordinator merges (histograms added, counts summed).
#![deny(missing_docs)]

pub mod cli;
mod clock;
pub mod config;
mod engine;
pub mod http;
pub mod lab;
pub mod merge;
pub mod report;
pub mod result;
pub mod url;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use queuelab_common::stats::{self, histogram_to_string, ks_pvalue, ks_statistic, new_histogram};
use queuelab_common::theory::QueueSpec;

pub use config::{Config, Mode, Target, TheoryParams};
pub use result::RunResult;

use clock::now_ns;
use engine::{IntervalReport, Plan, Shared, SourcePlan, ThreadResult, Worker};
use result::{
    Arrivals, ConfigEcho, Connections, ErrorsByKind, Interval, Latency, Requests, SendLag,
    StatusCounts, TheoryResult,
};

/// Time between starting the workers and the common start of their schedules.
const START_MARGIN_NS: u64 = 20_000_000;

/// Runs the load described by `config` and returns its result.
///
/// Errors are failures of the machine (no threads, no epoll), not of the server: the server's
/// faults are counted in the result. The run ends within its duration (plus warmup) plus one
/// timeout, whatever the server does.
pub fn run(config: Config) -> anyhow::Result<RunResult> {
    run_with_stop(config, Arc::new(AtomicBool::new(false)))
}

/// Like [`run`], and `stop` ends the schedule early when set (e.g. by SIGINT): the requests in
/// flight drain for at most one timeout and the result covers the time until then.
pub fn run_with_stop(config: Config, stop: Arc<AtomicBool>) -> anyhow::Result<RunResult> {
    config.validate()?;
    raise_fd_limit();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let plans = plan(&config, &cores);
    let threads = plans.len();

    let t0 = now_ns();
    let start_ns = t0 + START_MARGIN_NS;
    let measure_start_ns = start_ns + config.warmup.as_nanos() as u64;
    let shared = Arc::new(Shared {
        addr: config.target.addr,
        request: config.target.request.clone().into_boxed_slice(),
        head_request: config.target.head_request,
        start_ns,
        measure_start_ns,
        issue_end_ns: config
            .duration
            .map(|d| measure_start_ns + d.as_nanos() as u64),
        timeout_ns: config.timeout.as_nanos() as u64,
        spin_ns: config.spin.as_nanos() as u64,
        interval_ns: config.interval.as_nanos() as u64,
        stop,
    });

    let (tx, rx) = mpsc::channel::<IntervalReport>();
    let mut handles = Vec::with_capacity(threads);
    for p in plans {
        let shared = Arc::clone(&shared);
        let tx = tx.clone();
        let pin = config.pin;
        let handle = std::thread::Builder::new()
            .name(format!("qload-{}", p.index))
            .spawn(move || -> std::io::Result<ThreadResult> {
                match p.core {
                    // Best effort: pinning can be refused (e.g. in a restricted cpuset).
                    Some(core) if pin => {
                        core_affinity::set_for_current(core);
                    }
                    _ => {}
                }
                Worker::new(shared, p, tx)?.run()
            })
            .context("spawning a worker thread")?;
        handles.push(handle);
    }
    drop(tx);

    let mut series = SeriesAcc::new(threads, measure_start_ns, config.interval.as_nanos() as u64);
    while let Ok(report) = rx.recv() {
        match series.add(report) {
            Some(line) if config.live => eprintln!("{line}"),
            _ => {}
        }
    }
    let mut results = Vec::with_capacity(threads);
    for h in handles {
        let r = h
            .join()
            .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?
            .context("worker event loop")?;
        results.push(r);
    }
    let elapsed_s = (now_ns() - t0) as f64 / 1e9;
    Ok(build_result(
        &config,
        threads,
        results,
        series.finish(),
        measure_start_ns,
        elapsed_s,
    ))
}

/// Splits `config` over the worker threads.
fn plan(config: &Config, cores: &[core_affinity::CoreId]) -> Vec<Plan> {
    let available = cores.len().max(1);
    let mut threads = config.threads.unwrap_or(available);
    match config.mode {
        Mode::Closed { users, .. } => threads = threads.min(users as usize),
        Mode::Max { connections } => threads = threads.min(connections as usize),
        Mode::Open { .. } => {}
    }
    if let Some(n) = config.requests {
        threads = threads.min(n.try_into().unwrap_or(usize::MAX));
    }
    let threads = threads.max(1);
    let share = |total: u64, i: usize| -> u64 {
        let t = threads as u64;
        total / t + u64::from((i as u64) < total % t)
    };
    let conn_total = match config.mode {
        Mode::Open { .. } => config
            .connections
            .unwrap_or(config::DEFAULT_OPEN_CONNECTIONS),
        Mode::Closed { users, .. } => config.connections.unwrap_or(users as usize),
        Mode::Max { connections } => connections as usize,
    };
    (0..threads)
        .map(|i| {
            let source = match config.mode {
                Mode::Open { rate, arrival } => SourcePlan::Open {
                    rate: rate / threads as f64,
                    arrival,
                },
                Mode::Closed { users, think } => SourcePlan::Users {
                    users: share(u64::from(users), i) as u32,
                    think_s: think.as_secs_f64(),
                },
                Mode::Max { connections } => SourcePlan::Users {
                    users: share(u64::from(connections), i) as u32,
                    think_s: 0.0,
                },
            };
            Plan {
                index: i,
                core: cores.get(i % available).copied(),
                seed: config.seed,
                source,
                requests: config.requests.map(|n| share(n, i)),
                conn_cap: (share(conn_total as u64, i) as usize).max(1),
                backlog_cap: (share(config.backlog as u64, i) as usize).max(1),
                gap_samples: share(config.arrival_samples as u64, i) as usize,
            }
        })
        .collect()
}

/// Raises the soft limit on open files to the hard limit (many connections need many).
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill and then to pass back; failures are ignored (the run
    // then counts connect errors when it runs out of descriptors).
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Merges the workers' interval reports into the time series.
#[derive(Debug)]
struct SeriesAcc {
    threads: usize,
    measure_start_ns: u64,
    interval_ns: u64,
    rows: BTreeMap<u64, Row>,
}

#[derive(Debug)]
struct Row {
    reports: usize,
    end_ns: u64,
    sent: u64,
    completed: u64,
    errors: u64,
    latency_sum_ns: f64,
    uncorrected_sum_ns: f64,
    latency: Histogram<u64>,
    lag: Histogram<u64>,
    lag_max_ns: u64,
}

impl SeriesAcc {
    fn new(threads: usize, measure_start_ns: u64, interval_ns: u64) -> Self {
        Self {
            threads,
            measure_start_ns,
            interval_ns,
            rows: BTreeMap::new(),
        }
    }

    /// Adds one report; returns the live line when an interval is complete.
    fn add(&mut self, r: IntervalReport) -> Option<String> {
        let row = self.rows.entry(r.index).or_insert_with(|| Row {
            reports: 0,
            end_ns: 0,
            sent: 0,
            completed: 0,
            errors: 0,
            latency_sum_ns: 0.0,
            uncorrected_sum_ns: 0.0,
            latency: Histogram::new_from(&r.latency),
            lag: Histogram::new_from(&r.lag),
            lag_max_ns: 0,
        });
        row.reports += 1;
        row.end_ns = row.end_ns.max(r.end_ns);
        row.sent += r.sent;
        row.completed += r.completed;
        row.errors += r.errors;
        row.latency_sum_ns += r.latency_sum_ns;
        row.uncorrected_sum_ns += r.uncorrected_sum_ns;
        add_histogram(&mut row.latency, &r.latency);
        add_histogram(&mut row.lag, &r.lag);
        row.lag_max_ns = row.lag_max_ns.max(r.lag_max_ns);
        if row.reports == self.threads {
            let iv = interval_of(self.measure_start_ns, self.interval_ns, r.index, row);
            Some(report::live_line(&iv))
        } else {
            None
        }
    }

    fn interval(&self, index: u64, row: &Row) -> Interval {
        interval_of(self.measure_start_ns, self.interval_ns, index, row)
    }

    fn finish(self) -> Vec<Interval> {
        self.rows
            .iter()
            .map(|(&i, row)| self.interval(i, row))
            .collect()
    }
}

/// The interval `index` of the series from its merged row.
fn interval_of(measure_start_ns: u64, interval_ns: u64, index: u64, row: &Row) -> Interval {
    let start = measure_start_ns + index * interval_ns;
    let per = |sum: f64| {
        if row.completed > 0 {
            sum / row.completed as f64 / 1e3
        } else {
            0.0
        }
    };
    let q =
        |h: &Histogram<u64>, q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1e3);
    Interval {
        t_s: (start - measure_start_ns) as f64 / 1e9,
        duration_s: row.end_ns.saturating_sub(start) as f64 / 1e9,
        sent: row.sent,
        completed: row.completed,
        errors: row.errors,
        mean_us: per(row.latency_sum_ns),
        mean_uncorrected_us: per(row.uncorrected_sum_ns),
        p50_us: q(&row.latency, 0.5),
        p99_us: q(&row.latency, 0.99),
        send_lag_p99_us: q(&row.lag, 0.99),
        send_lag_max_us: row.lag_max_ns as f64 / 1e3,
    }
}

/// Adds `src` into `dst` (same bounds; values beyond `dst`'s range are clamped).
pub(crate) fn add_histogram(dst: &mut Histogram<u64>, src: &Histogram<u64>) {
    if dst.add(src).is_err() {
        for v in src.iter_recorded() {
            let value = v.value_iterated_to().clamp(1, dst.high());
            let _ = dst.record_n(value, v.count_at_value());
        }
    }
}

fn build_result(
    config: &Config,
    threads: usize,
    results: Vec<ThreadResult>,
    intervals: Vec<Interval>,
    measure_start_ns: u64,
    elapsed_s: f64,
) -> RunResult {
    let mut latency = new_histogram();
    let mut uncorrected = new_histogram();
    let mut lag = new_histogram();
    let mut requests = Requests::default();
    let mut errors = ErrorsByKind::default();
    let mut status = StatusCounts::default();
    let mut connections = Connections::default();
    let mut gaps: Vec<f64> = Vec::new();
    let mut issue_end = measure_start_ns;
    let mut rate_sum = 0.0;
    for r in &results {
        add_histogram(&mut latency, &r.latency);
        add_histogram(&mut uncorrected, &r.uncorrected);
        add_histogram(&mut lag, &r.lag);
        requests.issued += r.issued;
        requests.sent += r.sent;
        requests.sent_in_window += r.sent_in_window;
        requests.completed += r.completed;
        requests.backlog_waits += r.backlog_waits;
        requests.warmup += r.warmup_sent;
        errors.merge(&r.errors);
        status.merge(&r.status);
        connections.opened += r.opened;
        connections.peak += r.peak_open;
        gaps.extend_from_slice(&r.gaps);
        issue_end = issue_end.max(r.issue_end_ns);
        if r.gap_count > 0 && r.gap_sum_ns > 0.0 {
            rate_sum += r.gap_count as f64 / (r.gap_sum_ns / 1e9);
        }
    }
    requests.errors = errors.total();
    requests.errors_by_kind = errors;
    requests.status = status;
    connections.cap = match config.mode {
        Mode::Open { .. } => config
            .connections
            .unwrap_or(config::DEFAULT_OPEN_CONNECTIONS) as u64,
        Mode::Closed { users, .. } => config.connections.unwrap_or(users as usize) as u64,
        Mode::Max { connections } => u64::from(connections),
    };
    let duration_s = (issue_end - measure_start_ns) as f64 / 1e9;
    let per_s = |n: u64| {
        if duration_s > 0.0 {
            n as f64 / duration_s
        } else {
            0.0
        }
    };
    let achieved_rate = per_s(requests.sent_in_window);
    let throughput = per_s(requests.completed);
    let target_rate = match config.mode {
        Mode::Open { rate, .. } => Some(rate),
        _ => None,
    };
    let arrivals = arrival_check(&mut gaps, rate_sum);
    let latency_us = Latency::from_histogram(&latency, result::batch_ci(&intervals, false));
    let latency_uncorrected_us =
        Latency::from_histogram(&uncorrected, result::batch_ci(&intervals, true));
    let send_lag_us = SendLag::from_histogram(&lag);
    let mut warnings = Vec::new();
    let theory = config.theory.and_then(|t| {
        let lambda = target_rate.unwrap_or(achieved_rate);
        match theory_result(t, lambda, &latency_us, &status) {
            Ok(tr) => Some(tr),
            Err(e) => {
                warnings.push(format!("no theory: {e}"));
                None
            }
        }
    });
    let (arrival, users, think_s) = match config.mode {
        Mode::Open { arrival, .. } => (Some(arrival.to_string()), None, None),
        Mode::Closed { users, think } => (None, Some(u64::from(users)), Some(think.as_secs_f64())),
        Mode::Max { connections } => (None, Some(u64::from(connections)), Some(0.0)),
    };
    let mut result = RunResult {
        format: result::FORMAT_VERSION,
        mode: config.mode.name().to_owned(),
        url: config.target.url.clone(),
        target_rate,
        achieved_rate,
        throughput,
        duration_s,
        elapsed_s,
        parts: 1,
        requests,
        latency_us,
        latency_uncorrected_us,
        send_lag_us,
        arrivals,
        theory,
        connections,
        config: ConfigEcho {
            method: config.target.method.clone(),
            arrival,
            threads: threads as u64,
            users,
            think_s,
            duration_s: config.duration.map(|d| d.as_secs_f64()),
            requests: config.requests,
            warmup_s: config.warmup.as_secs_f64(),
            timeout_s: config.timeout.as_secs_f64(),
            seed: config.seed,
            spin_us: config.spin.as_secs_f64() * 1e6,
            pin: config.pin,
            interval_s: config.interval.as_secs_f64(),
        },
        warnings,
        intervals,
        histogram: histogram_to_string(&latency),
        histogram_uncorrected: histogram_to_string(&uncorrected),
        histogram_send_lag: histogram_to_string(&lag),
    };
    let more = schedule_warnings(&result, config);
    result.warnings.extend(more);
    result
}

/// KS and moments of the pooled normalized gaps; `rate_sum` is Σ over threads of 1/mean gap.
fn arrival_check(gaps: &mut [f64], rate_sum: f64) -> Arrivals {
    let gap_mean_us = (rate_sum > 0.0).then(|| 1e6 / rate_sum);
    let n = gaps.len();
    let moments = stats::mean_cv(gaps);
    let (ks_d, ks_p) = if n >= 2 {
        let d = ks_statistic(gaps, |x| 1.0 - (-x).exp());
        (Some(d), Some(ks_pvalue(d, n)))
    } else {
        (None, None)
    };
    Arrivals {
        samples: n as u64,
        gap_mean_us,
        gap_mean_norm: moments.map(|m| m.0),
        gap_cv: moments.map(|m| m.1),
        ks_d,
        ks_p,
    }
}

/// The theory for `t` at rate `lambda`, beside the measured latency.
pub(crate) fn theory_result(
    t: TheoryParams,
    lambda: f64,
    latency: &Latency,
    status: &StatusCounts,
) -> Result<TheoryResult, queuelab_common::theory::TheoryError> {
    let spec = QueueSpec {
        lambda,
        mu: t.mu,
        servers: t.servers,
        capacity: t.capacity,
        service: t.service,
    };
    let th = spec.theory()?;
    let us = |s: f64| s * 1e6;
    let rel = |measured: f64, theory: f64| {
        if theory > 0.0 {
            (measured - theory) / theory
        } else {
            0.0
        }
    };
    let mean_us = us(th.mean_s);
    let p50_us = th.p50_s.map(us);
    let p99_us = th.p99_s.map(us);
    let completed = status.s2xx + status.s3xx + status.s4xx + status.s5xx + status.other;
    Ok(TheoryResult {
        model: th.model,
        lambda,
        mu: t.mu,
        servers: t.servers.to_string(),
        capacity: t.capacity,
        service: t.service.to_string(),
        rho: th.rho,
        mean_us,
        p50_us,
        p90_us: th.p90_s.map(us),
        p99_us,
        blocking: th.blocking,
        blocking_measured: if completed > 0 {
            status.s503 as f64 / completed as f64
        } else {
            0.0
        },
        rel_err_mean: rel(latency.mean, mean_us),
        rel_err_p50: p50_us.map(|p| rel(latency.p50, p)),
        rel_err_p99: p99_us.map(|p| rel(latency.p99, p)),
        mean_in_ci: match (latency.ci95_low, latency.ci95_high) {
            (Some(lo), Some(hi)) => Some(lo <= mean_us && mean_us <= hi),
            _ => None,
        },
    })
}

/// Warnings about a schedule that was not kept, and about errors.
fn schedule_warnings(r: &RunResult, config: &Config) -> Vec<String> {
    let mut w = Vec::new();
    let req = &r.requests;
    if let (Mode::Open { arrival, .. }, Some(target)) = (config.mode, r.target_rate) {
        // The count of a kept Poisson schedule is Poisson(λD): allow 5 standard deviations
        // plus 1% before calling it a miss.
        let expected = target * r.duration_s;
        if expected > 0.0 {
            let tolerance = 5.0 * expected.sqrt() + 0.01 * expected;
            let sent = req.sent_in_window as f64;
            if (sent - expected).abs() > tolerance {
                w.push(format!(
                    "rate missed: sent {:.0} requests/s against a target of {target:.0} (the schedule could not be kept)",
                    r.achieved_rate
                ));
            }
        }
        let mean_gap_us = 1e6 * r.config.threads as f64 / target;
        let lag_limit = (0.1 * mean_gap_us).max(100.0);
        if req.sent > 0 && r.send_lag_us.p99 > lag_limit {
            w.push(format!(
                "send lag p99 {:.0}us exceeds {lag_limit:.0}us: sends left late (client overloaded, too few connections, or a slow server holding them)",
                r.send_lag_us.p99
            ));
        }
        if arrival == queuelab_common::samplers::ArrivalKind::Poisson
            && r.arrivals.ks_p.is_some_and(|p| p < 1e-6)
        {
            w.push(format!(
                "send gaps are not exponential: KS D = {:.4}, p = {:.1e} over {} gaps",
                r.arrivals.ks_d.unwrap_or(0.0),
                r.arrivals.ks_p.unwrap_or(0.0),
                r.arrivals.samples
            ));
        }
    }
    if req.errors_by_kind.backlog > 0 {
        w.push(format!(
            "{} requests dropped: the backlog of requests waiting for a connection was full",
            req.errors_by_kind.backlog
        ));
    }
    if req.issued > 0 && req.backlog_waits * 100 > req.issued {
        w.push(format!(
            "{} requests ({:.1}%) waited for a free connection (cap {})",
            req.backlog_waits,
            100.0 * req.backlog_waits as f64 / req.issued as f64,
            r.connections.cap
        ));
    }
    if req.issued > 0 && req.errors * 100 > req.issued {
        w.push(format!(
            "{} of {} requests failed ({:.1}%)",
            req.errors,
            req.issued,
            100.0 * req.errors as f64 / req.issued as f64
        ));
    }
    if req.completed == 0 {
        w.push("no request completed".to_owned());
    }
    w
}
