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
//! - [`search`] finds the highest rate whose run meets a latency and error objective.
//! - [`report`] renders results as text, CSV and the live line.
//! - [`cli`] holds the command-line flags of `qload` and their validation into a `Config`.
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
#![forbid(unsafe_code)]

pub mod batches;
pub mod cli;
pub mod config;
pub mod counts;
mod engine;
pub mod hgrm;
pub mod http;
pub mod merge;
pub mod report;
pub mod result;
pub mod search;
pub mod timing;
pub mod tls;
pub mod url;
pub mod utc;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use queuelab_common::model::Model;
use queuelab_common::profile::Profile;
use queuelab_common::stats::{self, histogram_to_string, ks_pvalue, ks_statistic, new_histogram};
use queuelab_common::theory::{self, MeasuredSummary};
use queuelab_os::clock::now_ns;

pub use config::{Config, Mode, Target};
pub use result::RunResult;

use counts::Counts;
use engine::{
    IntervalHists, IntervalReport, IntervalStats, Plan, Shared, SourcePlan, ThreadResult, Worker,
};
use result::{Arrivals, ConfigEcho, Interval, Latency, SendLag, StatusCounts, TheoryResult};

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
pub fn run_with_stop(mut config: Config, stop: Arc<AtomicBool>) -> anyhow::Result<RunResult> {
    config.validate()?;
    // Many connections need many descriptors: as many as the hard limit allows. A failure is not
    // fatal (the run then counts connect errors when it runs out of descriptors).
    queuelab_os::limits::raise_open_files(u64::MAX);
    let cores = queuelab_os::affinity::allowed().unwrap_or_default();
    let plans = plan(&config, &cores);
    let threads = plans.len();
    let busy_poll = config.busy_poll.unwrap_or_else(|| {
        !matches!(config.mode, Mode::Max { .. })
            && config::busy_poll_by_default(
                config.pin,
                threads,
                cores.len().min(queuelab_os::affinity::usable_cores()),
            )
    });
    // Resolved once, so the result echoes what the threads did.
    config.busy_poll = Some(busy_poll);

    let t0 = now_ns();
    // The only reading of the system clock: every UTC time of the result is mapped from here.
    let wall = utc::WallClock::at(t0, std::time::SystemTime::now());
    let start_ns = t0 + START_MARGIN_NS;
    let measure_start_ns = start_ns + config.warmup.as_nanos() as u64;
    let shared = Arc::new(Shared {
        addr: config.target.addr,
        tls: config.target.tls.clone(),
        request: config.target.request.clone().into_boxed_slice(),
        head_request: config.target.head_request,
        start_ns,
        measure_start_ns,
        issue_end_ns: config
            .schedule_duration()
            .map(|d| measure_start_ns + d.as_nanos() as u64),
        timeout_ns: config.timeout.as_nanos() as u64,
        spin_ns: config.spin.as_nanos() as u64,
        busy_poll,
        interval_ns: config.interval.as_nanos() as u64,
        retry_idempotent: is_idempotent(&config.target.method),
        stop,
    });

    let (tx, rx) = mpsc::channel::<IntervalReport>();
    let mut handles = Vec::with_capacity(threads);
    // Per worker: the channel on which its interval histograms come back for reuse.
    let mut returns = Vec::with_capacity(threads);
    for p in plans {
        let shared = Arc::clone(&shared);
        let tx = tx.clone();
        let (back_tx, back_rx) = mpsc::channel::<IntervalHists>();
        returns.push(back_tx);
        let pin = config.pin;
        let handle = std::thread::Builder::new()
            .name(format!("qload-{}", p.index))
            .spawn(move || -> std::io::Result<ThreadResult> {
                match p.core {
                    // Best effort: pinning can be refused (e.g. in a restricted cpuset).
                    Some(core) if pin => {
                        let _ = queuelab_os::affinity::pin_current(core);
                    }
                    _ => {}
                }
                Worker::new(shared, p, tx, back_rx)?.run()
            })
            .context("spawning a worker thread")?;
        handles.push(handle);
    }
    drop(tx);

    let mut series = SeriesAcc::new(threads, measure_start_ns, config.interval.as_nanos() as u64);
    series.intensity = Intensity::of(&config);
    let shaped = config.profile.is_some();
    while let Ok(report) = rx.recv() {
        let thread = report.thread;
        let hists = series.add(report, |iv| {
            if config.live {
                if shaped {
                    eprintln!("{}", report::live_line_with_target(iv));
                } else {
                    eprintln!("{}", report::live_line(iv));
                }
            }
        });
        // The worker may have ended; its histograms are then dropped.
        if let Some(back) = returns.get(thread) {
            let _ = back.send(hists);
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
        Window {
            measure_start_ns,
            wall,
        },
        elapsed_s,
    ))
}

/// Splits `config` over the worker threads.
fn plan(config: &Config, cores: &[usize]) -> Vec<Plan> {
    let available = cores.len().max(1);
    let mut threads = config.threads.unwrap_or(available);
    match config.mode {
        Mode::Closed { users, .. } => threads = threads.min(users as usize),
        Mode::Max { connections } => threads = threads.min(connections as usize),
        Mode::Open { rate, .. } if config.threads.is_none() => {
            // A profile needs the threads of its peak.
            let rate = config.profile.as_ref().map_or(rate, Profile::peak);
            // Saturating float-to-int: any rate gives a count, capped by the cores just below.
            let needed = (rate / config::DEFAULT_RATE_PER_THREAD).ceil() as usize;
            threads = threads.min(needed.max(1));
        }
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
    // The schedules follow the profile from the start of the warmup, which runs at its first
    // rate; each thread takes 1/T of it.
    let shaped = config
        .profile
        .as_ref()
        .map(|p| Arc::new(p.with_lead(config.warmup)));
    (0..threads)
        .map(|i| {
            let source = match config.mode {
                Mode::Open { arrival, .. } if shaped.is_some() => SourcePlan::Shaped {
                    profile: Arc::clone(shaped.as_ref().expect("checked just above")),
                    share: 1.0 / threads as f64,
                    arrival,
                },
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

/// Whether `method` is idempotent (RFC 9110, 9.2.2), so that a request that failed on a stale
/// keep-alive connection before any answer may be sent again. Only the common ones are listed.
fn is_idempotent(method: &str) -> bool {
    ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]
        .iter()
        .any(|m| method.eq_ignore_ascii_case(m))
}

/// Merges the workers' interval reports into the time series.
///
/// An interval is *open* from its first report until every worker that runs that long has
/// reported it; then its row of the series (counts, means, p50/p99, send-lag figures) is computed
/// and kept, and its histograms go back to a pool for the next interval. So the state kept per
/// past interval is one [`Interval`] (under 200 bytes), and only as many intervals are open at a
/// time as the workers are apart (usually one or two).
#[derive(Debug)]
struct SeriesAcc {
    measure_start_ns: u64,
    interval_ns: u64,
    /// The target intensity, for each interval's `target_rate` (the run's end not known yet:
    /// [`build_result`] cuts it at the end of the schedule).
    intensity: Intensity,
    /// For each worker that has finished, the index of its last interval.
    last: Vec<Option<u64>>,
    /// Intervals with some but not all of their reports, by index.
    open: BTreeMap<u64, Row>,
    /// Histograms of closed intervals, for the next open ones.
    spare: Vec<IntervalHists>,
    /// The closed intervals, in the order they closed (by index at the end).
    done: Vec<(u64, Interval)>,
    /// Indices of open intervals that became complete (reused).
    ready: Vec<u64>,
}

/// One interval being merged: the workers' reports added so far.
#[derive(Debug)]
struct Row {
    reports: usize,
    end_ns: u64,
    stats: IntervalStats,
}

impl Row {
    fn new(hists: IntervalHists) -> Self {
        Self {
            reports: 0,
            end_ns: 0,
            stats: IntervalStats::with_hists(hists),
        }
    }

    fn add(&mut self, r: &IntervalReport) {
        self.reports += 1;
        self.end_ns = self.end_ns.max(r.end_ns);
        self.stats.add(&r.stats);
    }
}

impl SeriesAcc {
    fn new(threads: usize, measure_start_ns: u64, interval_ns: u64) -> Self {
        Self {
            measure_start_ns,
            interval_ns,
            intensity: Intensity::None,
            last: vec![None; threads],
            open: BTreeMap::new(),
            spare: Vec::new(),
            done: Vec::new(),
            ready: Vec::new(),
        }
    }

    /// Adds one report; `on_close` sees each interval that it completes (for the live line).
    /// Returns the report's histograms, emptied, for the worker to reuse.
    fn add(&mut self, r: IntervalReport, mut on_close: impl FnMut(&Interval)) -> IntervalHists {
        let spare = &mut self.spare;
        self.open
            .entry(r.index)
            .or_insert_with(|| Row::new(spare.pop().unwrap_or_else(IntervalHists::new)))
            .add(&r);
        if r.last {
            if let Some(slot) = self.last.get_mut(r.thread) {
                *slot = Some(r.index);
            }
        }
        // A report completes its own interval; a worker's last one may also complete later
        // intervals, which no longer wait for it.
        self.ready.clear();
        for (&index, row) in &self.open {
            if row.reports >= self.expected(index) {
                self.ready.push(index);
            }
        }
        for i in 0..self.ready.len() {
            let index = self.ready[i];
            if let Some(iv) = self.close(index) {
                on_close(&iv);
            }
        }
        let mut hists = r.stats.hists;
        hists.reset();
        hists
    }

    /// Number of workers that report interval `index`: all but those that ended before it.
    fn expected(&self, index: u64) -> usize {
        self.last
            .iter()
            .filter(|l| l.is_none_or(|last| last >= index))
            .count()
    }

    /// Closes interval `index`: keeps its row of the series, recycles its histograms.
    fn close(&mut self, index: u64) -> Option<Interval> {
        let mut row = self.open.remove(&index)?;
        let mut iv = interval_of(self.measure_start_ns, self.interval_ns, index, &row);
        iv.target_rate = self.intensity.mean(iv.t_s, iv.t_s + iv.duration_s, None);
        self.done.push((index, iv));
        row.stats.hists.reset();
        self.spare.push(row.stats.hists);
        Some(iv)
    }

    /// The series, every interval closed (also those a worker never reported, e.g. when it
    /// failed), in order.
    fn finish(mut self) -> Vec<Interval> {
        while let Some((&index, _)) = self.open.first_key_value() {
            self.close(index);
        }
        self.done.sort_by_key(|&(index, _)| index);
        self.done.into_iter().map(|(_, iv)| iv).collect()
    }
}

/// The interval `index` of the series from its merged row.
fn interval_of(measure_start_ns: u64, interval_ns: u64, index: u64, row: &Row) -> Interval {
    let start = measure_start_ns + index * interval_ns;
    let s = &row.stats;
    let per = |sum: f64| {
        if s.counts.completed > 0 {
            sum / s.counts.completed as f64 / 1e3
        } else {
            0.0
        }
    };
    let q =
        |h: &Histogram<u64>, q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1e3);
    // Over the completions that carried Server-Timing durations; none: null.
    let timed_mean = |sum: f64| (s.timed > 0).then(|| sum / s.timed as f64 / 1e3);
    Interval {
        t_s: (start - measure_start_ns) as f64 / 1e9,
        duration_s: row.end_ns.saturating_sub(start) as f64 / 1e9,
        sent: s.counts.sent,
        completed: s.counts.completed,
        errors: s.counts.errors.total(),
        mean_us: per(s.latency_sum_ns),
        mean_uncorrected_us: per(s.uncorrected_sum_ns),
        p50_us: q(&s.hists.latency, 0.5),
        p99_us: q(&s.hists.latency, 0.99),
        p90_us: q(&s.hists.latency, 0.9),
        p999_us: q(&s.hists.latency, 0.999),
        send_lag_p99_us: q(&s.hists.lag, 0.99),
        send_lag_max_us: s.lag_max_ns as f64 / 1e3,
        path_mean_us: timed_mean(s.path_sum_ns),
        path_p50_us: q(&s.hists.path, 0.5),
        server_mean_us: timed_mean(s.server_sum_ns),
        target_rate: None,
    }
}

/// The target intensity of a run, over time since the start of the measurement.
#[derive(Debug, Clone, Default)]
enum Intensity {
    /// No target: closed loop, `--max`.
    #[default]
    None,
    /// A constant rate.
    Constant(f64),
    /// A rate profile.
    Shaped(Profile),
}

impl Intensity {
    fn of(config: &Config) -> Self {
        match (&config.mode, &config.profile) {
            (Mode::Open { .. }, Some(p)) => Intensity::Shaped(p.clone()),
            (Mode::Open { rate, .. }, None) => Intensity::Constant(*rate),
            _ => Intensity::None,
        }
    }

    /// The expected arrivals from the start of the measurement to `t` seconds.
    fn cumulative(&self, t: f64) -> f64 {
        match self {
            Intensity::None => 0.0,
            Intensity::Constant(r) => r * t.max(0.0),
            Intensity::Shaped(p) => p.cumulative(t),
        }
    }

    /// The mean intensity over `[a, b]` (seconds since the start of the measurement), 0 from
    /// `end` on (the schedule had stopped; `None`: not known, taken as running); for an empty
    /// window the intensity at `a`. `None` without a target.
    fn mean(&self, a: f64, b: f64, end: Option<f64>) -> Option<f64> {
        let cut = |t: f64| end.map_or(t, |e| t.min(e));
        let rate = match self {
            Intensity::None => return None,
            _ if b > a => (self.cumulative(cut(b)) - self.cumulative(cut(a))) / (b - a),
            _ if end.is_some_and(|e| a >= e) => 0.0,
            Intensity::Constant(r) => *r,
            Intensity::Shaped(p) => p.rate_at(a),
        };
        Some(rate)
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

/// Where the measured window starts, on both clocks.
#[derive(Debug, Clone, Copy)]
struct Window {
    measure_start_ns: u64,
    wall: utc::WallClock,
}

fn build_result(
    config: &Config,
    threads: usize,
    results: Vec<ThreadResult>,
    intervals: Vec<Interval>,
    window: Window,
    elapsed_s: f64,
) -> RunResult {
    let measure_start_ns = window.measure_start_ns;
    let mut latency = new_histogram();
    let mut uncorrected = new_histogram();
    let mut lag = new_histogram();
    let mut counts = Counts::default();
    let mut peak_open = 0;
    let mut gaps: Vec<f64> = Vec::new();
    let mut issue_end = measure_start_ns;
    let mut rate_sum = 0.0;
    let mut timing = merge::TimingAcc::default();
    let mut batch_acc = batches::BatchAcc::new();
    let mut phases = merge::PhasesAcc::default();
    let mut tls_first_error = None;
    for r in &results {
        timing.add_thread(&r.timing);
        batch_acc.add(&r.batches);
        phases.add_thread(&r.phases);
        if tls_first_error.is_none() {
            tls_first_error.clone_from(&r.tls_first_error);
        }
        add_histogram(&mut latency, &r.latency);
        add_histogram(&mut uncorrected, &r.uncorrected);
        add_histogram(&mut lag, &r.lag);
        counts += r.counts;
        // The threads ran side by side: the sum of their peaks bounds the process's.
        peak_open += r.peak_open;
        gaps.extend_from_slice(&r.gaps);
        issue_end = issue_end.max(r.issue_end_ns);
        if r.gap_count > 0 && r.gap_sum_ns > 0.0 {
            rate_sum += r.gap_count as f64 / (r.gap_sum_ns / 1e9);
        }
    }
    let mut requests = counts.requests();
    requests.tls_first_error = tls_first_error;
    let cap = match config.mode {
        Mode::Open { .. } => config
            .connections
            .unwrap_or(config::DEFAULT_OPEN_CONNECTIONS) as u64,
        Mode::Closed { users, .. } => config.connections.unwrap_or(users as usize) as u64,
        Mode::Max { connections } => u64::from(connections),
    };
    let connections = counts.connections(peak_open, cap);
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
    let intensity = Intensity::of(config);
    let target_rate = match (&intensity, config.mode) {
        // The mean of the profile over the measurement.
        (Intensity::Shaped(_), _) => intensity.mean(0.0, duration_s, Some(duration_s)),
        (_, Mode::Open { rate, .. }) => Some(rate),
        _ => None,
    };
    let mut intervals = intervals;
    for iv in &mut intervals {
        iv.target_rate = intensity.mean(iv.t_s, iv.t_s + iv.duration_s, Some(duration_s));
    }
    let arrivals = arrival_check(&mut gaps, rate_sum);
    let batches = batch_acc.finish(issue_end - measure_start_ns);
    let latency_us = batches::latency(&latency, &batches, false);
    let latency_uncorrected_us = batches::latency(&uncorrected, &batches, true);
    let send_lag_us = SendLag::from_histogram(&lag);
    let mut warnings = Vec::new();
    if config.target.tls.as_ref().is_some_and(|t| t.insecure) {
        warnings.push(
            "TLS certificate verification was off (--insecure): the server's identity was not checked"
                .to_owned(),
        );
    }
    if config.theory.is_some() && config.profile.is_some() {
        warnings.push(format!(
            "the theory is of a steady load at the profile's mean rate {:.1}/s; this load followed a profile",
            target_rate.unwrap_or(0.0)
        ));
    }
    let theory = config.theory.and_then(|t| {
        let lambda = target_rate.unwrap_or(achieved_rate);
        match theory_result(t, lambda, &latency_us, &requests.status) {
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
            duration_s: config.schedule_duration().map(|d| d.as_secs_f64()),
            requests: config.requests,
            warmup_s: config.warmup.as_secs_f64(),
            timeout_s: config.timeout.as_secs_f64(),
            seed: config.seed,
            spin_us: config.spin.as_secs_f64() * 1e6,
            busy_poll: config.busy_poll.unwrap_or(false),
            pin: config.pin,
            interval_s: config.interval.as_secs_f64(),
            profile: config.profile.as_ref().map(Profile::to_string),
        },
        warnings,
        intervals,
        histogram: histogram_to_string(&latency),
        histogram_uncorrected: histogram_to_string(&uncorrected),
        histogram_send_lag: histogram_to_string(&lag),
        server_timing: Default::default(),
        path_us: None,
        server_us: None,
        server_timing_headers: Default::default(),
        start_utc: Some(window.wall.rfc3339(measure_start_ns)),
        end_utc: Some(window.wall.rfc3339(issue_end)),
        batches: Some(batches),
        phases: phases.finish(),
    };
    timing.finish_into(&mut result);
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

/// The theory of `model` at rate `lambda`, beside the measured latency ([`theory::compare`]).
///
/// Where theory predicts 0 (zero service) the JSON has always said 0 for the relative error.
pub(crate) fn theory_result(
    model: Model,
    lambda: f64,
    latency: &Latency,
    status: &StatusCounts,
) -> Result<TheoryResult, queuelab_common::theory::TheoryError> {
    let measured = MeasuredSummary {
        mean_us: Some(latency.mean),
        ci95_us: latency.ci95_low.zip(latency.ci95_high),
        p50_us: Some(latency.p50),
        p99_us: Some(latency.p99),
    };
    let c = theory::compare(&model, lambda, &measured)?;
    let completed = status.s2xx + status.s3xx + status.s4xx + status.s5xx + status.other;
    Ok(TheoryResult {
        model: c.theory.model,
        lambda,
        mu: model.mu,
        servers: model.servers.to_string(),
        capacity: model.capacity,
        service: model.service.to_string(),
        rho: c.theory.rho,
        mean_us: c.mean_us,
        p50_us: c.p50_us,
        p90_us: c.p90_us,
        p99_us: c.p99_us,
        blocking: c.theory.blocking,
        blocking_measured: if completed > 0 {
            status.s503 as f64 / completed as f64
        } else {
            0.0
        },
        rel_err_mean: c.rel_err_mean.unwrap_or(0.0),
        rel_err_p50: c.p50_us.map(|_| c.rel_err_p50.unwrap_or(0.0)),
        rel_err_p99: c.p99_us.map(|_| c.rel_err_p99.unwrap_or(0.0)),
        mean_in_ci: c.mean_in_ci,
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
                let of = if config.profile.is_some() {
                    "the profile's mean"
                } else {
                    "a target"
                };
                w.push(format!(
                    "rate missed: sent {:.0} requests/s against {of} of {target:.0} (the schedule could not be kept)",
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

#[cfg(test)]
mod tests {
    use super::*;
    use queuelab_common::stats::record_ns;

    fn open(rate: f64) -> Config {
        let target = config::Target::get("127.0.0.1:1".parse().expect("literal address"));
        Config::new(
            target,
            Mode::Open {
                rate,
                arrival: queuelab_common::samplers::ArrivalKind::Poisson,
            },
        )
    }

    /// An open-loop run starts a thread per `DEFAULT_RATE_PER_THREAD` of rate, at most one per
    /// core; `--threads` overrides it; closed loops keep one per core (at most one per user).
    #[test]
    fn threads_follow_the_rate_up_to_the_cores() {
        let cores = [0, 1, 2, 3];
        let n = |c: &Config| plan(c, &cores).len();
        assert_eq!(n(&open(500.0)), 1);
        assert_eq!(n(&open(config::DEFAULT_RATE_PER_THREAD)), 1);
        assert_eq!(n(&open(config::DEFAULT_RATE_PER_THREAD * 2.5)), 3);
        assert_eq!(n(&open(1e12)), 4);
        let mut c = open(500.0);
        c.threads = Some(3);
        assert_eq!(n(&c), 3);
        c.mode = Mode::Closed {
            users: 10,
            think: std::time::Duration::from_millis(1),
        };
        c.threads = None;
        assert_eq!(n(&c), 4);
        let per_thread: Vec<f64> = plan(&open(120_000.0), &cores)
            .iter()
            .map(|p| match p.source {
                SourcePlan::Open { rate, .. } => rate,
                _ => f64::NAN,
            })
            .collect();
        assert_eq!(per_thread, vec![40_000.0; 3]);
    }

    /// A profile takes the threads of its peak rate, each with an equal share of it, from the
    /// start of the warmup at its first rate.
    #[test]
    fn a_profile_is_shared_over_the_threads_of_its_peak() {
        let cores = [0, 1, 2, 3];
        let target = config::Target::get("127.0.0.1:1".parse().expect("literal address"));
        let profile = Profile::parse("10:1s,10..120k:1s").expect("valid");
        let mut c = Config::shaped(
            target,
            profile,
            queuelab_common::samplers::ArrivalKind::Poisson,
        );
        c.warmup = std::time::Duration::from_secs(2);
        let plans = plan(&c, &cores);
        // Mean 30 007.5/s, but a peak of 120 000/s: three threads.
        assert_eq!(plans.len(), 3);
        for p in &plans {
            match &p.source {
                SourcePlan::Shaped { profile, share, .. } => {
                    assert_eq!(*share, 1.0 / 3.0);
                    assert_eq!(profile.to_string(), "10:2s,10:1s,10..120k:1s");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn the_target_intensity_is_cut_where_the_schedule_stopped() {
        let shaped = Intensity::Shaped(Profile::parse("100:1s,400..800:1s").expect("valid"));
        let near =
            |x: Option<f64>, want: f64| x.is_some_and(|x| (x - want).abs() < 1e-9 * want.max(1.0));
        assert!(near(shaped.mean(0.0, 1.0, None), 100.0));
        assert!(near(shaped.mean(1.0, 1.5, None), 500.0));
        assert!(near(shaped.mean(1.5, 2.0, Some(2.0)), 700.0));
        // A drain stub after the end: nothing was due.
        assert!(near(shaped.mean(2.0, 2.004, Some(2.0)), 0.0));
        // Stopped at 1.5 s (--requests): half of [1, 2] at the ramp's first half.
        assert!(near(shaped.mean(1.0, 2.0, Some(1.5)), 250.0));
        assert!(near(shaped.mean(1.5, 1.5, None), 600.0));
        assert!(near(shaped.mean(1.5, 1.5, Some(1.5)), 0.0));
        let flat = Intensity::Constant(300.0);
        assert!(near(flat.mean(3.0, 4.0, Some(10.0)), 300.0));
        assert!(near(flat.mean(9.5, 10.5, Some(10.0)), 150.0));
        assert_eq!(Intensity::None.mean(0.0, 1.0, None), None);
    }

    /// Busy-polling by default needs pinned threads and a core left over.
    #[test]
    fn busy_poll_by_default_leaves_a_core() {
        assert!(config::busy_poll_by_default(true, 1, 2));
        assert!(config::busy_poll_by_default(true, 3, 4));
        assert!(!config::busy_poll_by_default(true, 2, 2));
        assert!(!config::busy_poll_by_default(false, 1, 8));
        assert!(!config::busy_poll_by_default(true, 1, 1));
    }

    /// A report of `thread` for interval `index` with `completed` answers of `latency_ns` each.
    fn report(
        thread: usize,
        index: u64,
        last: bool,
        completed: u64,
        latency_ns: u64,
        hists: IntervalHists,
    ) -> IntervalReport {
        let mut hists = hists;
        for _ in 0..completed {
            record_ns(&mut hists.latency, latency_ns);
            record_ns(&mut hists.lag, 1_000);
        }
        let mut stats = IntervalStats::with_hists(hists);
        stats.counts.sent = completed;
        stats.counts.completed = completed;
        stats.latency_sum_ns = (completed * latency_ns) as f64;
        stats.uncorrected_sum_ns = (completed * latency_ns) as f64;
        stats.lag_max_ns = 1_000;
        IntervalReport {
            thread,
            index,
            last,
            end_ns: 1_000 + (index + 1) * 1_000_000,
            stats,
        }
    }

    #[test]
    fn series_keeps_constant_state_per_interval() {
        // Two workers report 2,000 intervals (33 min at the default 1 s): the accumulator
        // keeps one small row per closed interval and no histogram beyond a fixed pool, and the
        // workers get their histograms back, so nothing is allocated per interval once warm.
        const N: u64 = 2_000;
        let mut series = SeriesAcc::new(2, 1_000, 1_000_000);
        let mut pools = [vec![IntervalHists::new()], vec![IntervalHists::new()]];
        let mut closed = 0u64;
        for index in 0..N {
            for (thread, pool) in pools.iter_mut().enumerate() {
                let hists = pool.pop().expect("a histogram came back");
                let latency = if thread == 0 { 10_000 } else { 30_000 };
                let r = report(thread, index, index == N - 1, 3, latency, hists);
                let back = series.add(r, |iv| {
                    closed += 1;
                    assert_eq!(iv.completed, 6);
                    // Merged over both workers (3 answers at 10 µs, 3 at 30 µs): the median
                    // comes from one, the 99th percentile from the other (to 2 digits).
                    let near =
                        |v: Option<f64>, x: f64| v.is_some_and(|v| (v - x).abs() <= 0.01 * x);
                    assert!(near(iv.p50_us, 10.0), "{iv:?}");
                    assert!(near(iv.p99_us, 30.0), "{iv:?}");
                    assert!(near(iv.p90_us, 30.0), "{iv:?}");
                    assert!(near(iv.p999_us, 30.0), "{iv:?}");
                });
                assert!(
                    back.latency.is_empty() && back.lag.is_empty() && back.path.is_empty(),
                    "returned empty"
                );
                pool.push(back);
            }
            assert!(series.open.is_empty(), "interval {index} still open");
            assert!(
                series.spare.len() <= 1,
                "{} spare histograms",
                series.spare.len()
            );
        }
        assert_eq!(closed, N);
        // What is retained per interval: one `Interval` (plain numbers, no heap): 8 numbers of
        // 8 bytes, nine optional ones (16 bytes each), and the index: 216 bytes, 0.8 MB for
        // an hour of one-second intervals.
        let per_interval = std::mem::size_of::<(u64, Interval)>();
        assert!(per_interval <= 216, "{per_interval} bytes per interval");
        let rows = series.finish();
        assert_eq!(rows.len() as u64, N);
        assert!(rows.windows(2).all(|w| w[0].t_s < w[1].t_s));
        assert_eq!(rows[17].mean_us, 20.0);
    }

    #[test]
    fn series_closes_intervals_a_finished_worker_no_longer_reports() {
        let mut series = SeriesAcc::new(2, 0, 1_000_000);
        let mut lines = Vec::new();
        // Worker 1 ends after interval 1; worker 0 runs to interval 4.
        for (thread, index, last) in [(0, 0, false), (1, 0, false), (0, 1, false), (0, 2, false)] {
            series.add(
                report(thread, index, last, 1, 5_000, IntervalHists::new()),
                |iv| lines.push(iv.t_s),
            );
        }
        // Interval 1 waits for worker 1, and interval 2 too (worker 1 might still reach it).
        assert_eq!(lines, [0.0]);
        assert_eq!(series.open.len(), 2);
        series.add(report(1, 1, true, 1, 5_000, IntervalHists::new()), |iv| {
            lines.push(iv.t_s)
        });
        // Worker 1's last report closes interval 1 and, no longer waiting for it, interval 2.
        assert_eq!(lines, [0.0, 0.001, 0.002]);
        assert!(series.open.is_empty());
        for index in 3..5 {
            series.add(
                report(0, index, index == 4, 1, 5_000, IntervalHists::new()),
                |iv| lines.push(iv.t_s),
            );
            assert!(series.open.is_empty(), "interval {index} closes at once");
        }
        let rows = series.finish();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0].completed, 2);
        assert_eq!(rows[1].completed, 2);
        assert_eq!(rows[4].completed, 1);
    }

    #[test]
    fn series_finish_closes_what_a_failed_worker_left_open() {
        let mut series = SeriesAcc::new(3, 0, 1_000_000);
        for index in 0..3 {
            series.add(
                report(0, index, false, 2, 5_000, IntervalHists::new()),
                |_| panic!("no interval is complete without workers 1 and 2"),
            );
        }
        let rows = series.finish();
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.completed == 2 && r.p50_us.is_some()));
    }

    #[test]
    fn idempotent_methods_are_retried() {
        for m in ["GET", "get", "HEAD", "PUT", "DELETE", "OPTIONS"] {
            assert!(is_idempotent(m), "{m}");
        }
        for m in ["POST", "PATCH", "CONNECT", "PROPFIND"] {
            assert!(!is_idempotent(m), "{m}");
        }
    }
}
