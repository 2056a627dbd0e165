//! A worker's accounting: what its requests did, per interval and in total.
//!
//! [`Account`] owns the run's three histograms (latency from the intended time, latency from the
//! write, send lag), the current interval ([`IntervalStats`]: its [`Counts`], latency sums, send
//! lag maximum and two coarse histograms), the totals of the intervals already reported, and the
//! sample of gaps between sends for the arrival check. The worker tells it of each event (a
//! request issued, sent, completed, failed, retried, a connection opened); every count goes into
//! the current interval only, and an interval's counts join the totals when it is taken, so each
//! event is counted once and the totals are the sum of the intervals.
//!
//! The answers' `Server-Timing` durations ([`Timing`]) are kept the same way: per metric name a
//! histogram and an exact sum, the server's total Σdur and the path (latency − Σdur) likewise,
//! and per interval the path's sum and histogram and the server's sum.
//!
//! The batches of the interval of the mean latency ([`BatchAcc`], see [`crate::batches`]) are
//! kept apart from the intervals: sums and counts by completion time in a fixed array of slots
//! whose length adapts to the run.
//!
//! Nothing here allocates per request: the histograms have fixed bounds, the batches are a fixed
//! array and the gap sample is preallocated at its cap (a reservoir sample beyond it; with a rate
//! profile each send reads Λ at a cursor, O(1), to measure its gap in operational time). The
//! `Server-Timing` table allocates
//! when a metric name is first seen (its name and histogram), at most
//! [`MAX_TIMING_NAMES`] times a run, and the server's and the path's histograms when the first
//! answer carries a duration.
use std::sync::Arc;

use hdrhistogram::Histogram;
use queuelab_common::profile::Profile;
use queuelab_common::samplers::Rng;
use queuelab_common::stats::{HIST_MAX_NS, new_histogram, record_ns};
use rand::Rng as _;

use super::{Pending, Plan, SourcePlan};
use crate::batches::BatchAcc;
use crate::counts::Counts;
use crate::result::{ErrorKind, MAX_TIMING_NAMES, ServerTimingCounts};
use crate::timing::ServerTiming;

/// Significant digits of the per-interval histograms (percentiles to 1%).
const INTERVAL_SIGFIG: u8 = 2;

/// The histograms of one interval: latency of its completions, send lag of its writes, path of
/// its completions that carried `Server-Timing` durations (ns, two significant digits). They
/// travel to the coordinator in each report and come back empty for reuse, so a worker
/// allocates them only while the coordinator is behind.
#[derive(Debug)]
pub(crate) struct IntervalHists {
    pub latency: Histogram<u64>,
    pub lag: Histogram<u64>,
    pub path: Histogram<u64>,
}

impl IntervalHists {
    pub fn new() -> Self {
        Self {
            latency: interval_histogram(),
            lag: interval_histogram(),
            path: interval_histogram(),
        }
    }

    pub fn reset(&mut self) {
        self.latency.reset();
        self.lag.reset();
        self.path.reset();
    }
}

/// A histogram of one interval (coarser than the run's: percentiles to 1%).
pub(crate) fn interval_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, INTERVAL_SIGFIG)
        .expect("fixed bounds 1..=HIST_MAX_NS with 2 significant digits are valid")
}

/// What one interval measured: of one worker while it runs and in its report, of all workers
/// once the coordinator has added their reports.
#[derive(Debug)]
pub(crate) struct IntervalStats {
    /// Its counts (the time series shows `sent`, `completed` and the errors).
    pub counts: Counts,
    /// Sum of the latencies of its completions, ns.
    pub latency_sum_ns: f64,
    /// Sum of their uncorrected latencies, ns.
    pub uncorrected_sum_ns: f64,
    /// Largest send lag of its writes, ns.
    pub lag_max_ns: u64,
    /// Its completions that carried `Server-Timing` durations.
    pub timed: u64,
    /// Sum of their paths (latency − Σdur, at least 0), ns.
    pub path_sum_ns: f64,
    /// Sum of their Σdur, ns.
    pub server_sum_ns: f64,
    pub hists: IntervalHists,
}

impl IntervalStats {
    /// An empty interval recording into `hists` (which must be empty).
    pub fn with_hists(hists: IntervalHists) -> Self {
        Self {
            counts: Counts::default(),
            latency_sum_ns: 0.0,
            uncorrected_sum_ns: 0.0,
            lag_max_ns: 0,
            timed: 0,
            path_sum_ns: 0.0,
            server_sum_ns: 0.0,
            hists,
        }
    }

    /// Adds another worker's report of the same interval.
    pub fn add(&mut self, o: &Self) {
        self.counts += o.counts;
        self.latency_sum_ns += o.latency_sum_ns;
        self.uncorrected_sum_ns += o.uncorrected_sum_ns;
        self.lag_max_ns = self.lag_max_ns.max(o.lag_max_ns);
        self.timed += o.timed;
        self.path_sum_ns += o.path_sum_ns;
        self.server_sum_ns += o.server_sum_ns;
        crate::add_histogram(&mut self.hists.latency, &o.hists.latency);
        crate::add_histogram(&mut self.hists.lag, &o.hists.lag);
        crate::add_histogram(&mut self.hists.path, &o.hists.path);
    }

    /// This interval, leaving an empty one that records into `spare` (empty histograms back
    /// from the coordinator, or new ones).
    fn take(&mut self, spare: IntervalHists) -> Self {
        let mut next = Self::with_hists(spare);
        next.hists.reset();
        std::mem::replace(self, next)
    }
}

/// The totals of one worker.
#[derive(Debug)]
pub(crate) struct ThreadResult {
    pub counts: Counts,
    /// Most connections open at once.
    pub peak_open: u64,
    pub latency: Histogram<u64>,
    pub uncorrected: Histogram<u64>,
    pub lag: Histogram<u64>,
    /// Gaps between consecutive measured sends, normalized to mean 1 (see `Arrivals`).
    pub gaps: Vec<f64>,
    /// Sum and count of all measured gaps, ns.
    pub gap_sum_ns: f64,
    pub gap_count: u64,
    /// When this worker stopped issuing.
    pub issue_end_ns: u64,
    /// Its answers' `Server-Timing` durations.
    pub timing: Timing,
    /// The batches of the interval of the mean latency, from the start of the measurement.
    pub batches: BatchAcc,
    /// How long its connections took to open.
    pub phases: PhaseDurations,
    /// The text of its first TLS error, if it met one (set by the worker from its pool).
    pub tls_first_error: Option<String>,
}

/// The durations of the phases of opening connections (see `Phases` in the result), each
/// allocated when its first value comes.
#[derive(Debug, Default)]
pub(crate) struct PhaseDurations {
    /// Connect start → TCP established.
    pub connect: Option<Durations>,
    /// TCP established → TLS handshake done.
    pub tls: Option<Durations>,
}

/// Durations in nanoseconds: a histogram and their exact sum.
#[derive(Debug)]
pub(crate) struct Durations {
    pub hist: Histogram<u64>,
    pub sum_ns: u128,
}

impl Durations {
    fn new() -> Self {
        Self {
            hist: new_histogram(),
            sum_ns: 0,
        }
    }

    fn record(&mut self, ns: u64) {
        record_ns(&mut self.hist, ns);
        self.sum_ns += u128::from(ns);
    }
}

/// The `Server-Timing` durations of one worker's measured answers (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Timing {
    /// By metric name, in the order first seen: at most [`MAX_TIMING_NAMES`].
    pub names: Vec<(String, Durations)>,
    /// Σdur of each answer that carried a duration.
    pub server: Option<Durations>,
    /// Latency − Σdur of the same answers (0 when negative).
    pub path: Option<Durations>,
    pub counts: ServerTimingCounts,
}

impl Timing {
    /// The answer whose latency (from the intended time) is `latency` carried `t`; adds its
    /// path and Σdur to the interval `iv`.
    fn record(&mut self, t: &ServerTiming, latency: u64, iv: &mut IntervalStats) {
        if t.is_malformed() {
            self.counts.malformed += 1;
            return;
        }
        self.counts.dropped_names += u64::from(t.dropped());
        let metrics = t.metrics();
        if metrics.is_empty() {
            return;
        }
        self.counts.carried += 1;
        let mut total = 0u64;
        for m in metrics {
            total = total.saturating_add(m.dur_ns());
            let name = m.name();
            if let Some((_, d)) = self.names.iter_mut().find(|(n, _)| n == name) {
                d.record(m.dur_ns());
            } else if self.names.len() < MAX_TIMING_NAMES {
                // A new name: copied once, with its histogram (bounded per run).
                let mut d = Durations::new();
                d.record(m.dur_ns());
                self.names.push((name.to_owned(), d));
            } else {
                self.counts.dropped_names += 1;
            }
        }
        let path = match latency.checked_sub(total) {
            Some(p) => p,
            None => {
                self.counts.negative_path += 1;
                0
            }
        };
        self.server.get_or_insert_with(Durations::new).record(total);
        self.path.get_or_insert_with(Durations::new).record(path);
        iv.timed += 1;
        iv.path_sum_ns += path as f64;
        iv.server_sum_ns += total as f64;
        record_ns(&mut iv.hists.path, path);
    }
}

/// The gaps between consecutive measured sends: their sum and count, and a bounded sample.
///
/// With a rate profile the sample holds operational gaps instead, `share·(Λ(t_i) − Λ(t_{i−1}))`
/// of consecutive send times (Exp(1) for a kept Poisson schedule: the time-rescaling theorem);
/// Λ is read at a cursor that follows the send times, so no search and no allocation.
#[derive(Debug)]
struct Gaps {
    /// Reservoir sample (algorithm R), preallocated at `cap`.
    sample: Vec<f64>,
    cap: usize,
    sum_ns: f64,
    count: u64,
    /// Time of the latest measured send (0 before the first).
    last_send: u64,
    /// A stream of its own, so that sampling does not change the schedule.
    rng: Rng,
    /// The profile the schedule follows, if any.
    shape: Option<GapShape>,
}

/// What [`Gaps`] needs to measure gaps in operational time.
#[derive(Debug)]
struct GapShape {
    profile: Arc<Profile>,
    /// The thread's share of the profile's rate.
    share: f64,
    /// The start of the schedule (absolute ns): the profile's time 0.
    start_ns: u64,
    cursor: usize,
    /// Λ·share at the latest measured send.
    last: f64,
}

impl Gaps {
    fn record(&mut self, now: u64) {
        // In operational time when shaped (and kept current from the first send on).
        let operational = self.shape.as_mut().map(|s| {
            let u = s.share
                * s.profile
                    .cumulative_at_ns(now.saturating_sub(s.start_ns), &mut s.cursor);
            let gap = u - s.last;
            s.last = u;
            gap
        });
        if self.last_send != 0 {
            let ns = now.saturating_sub(self.last_send) as f64;
            let gap = operational.unwrap_or(ns);
            self.sum_ns += ns;
            self.count += 1;
            let cap = self.cap;
            if self.sample.len() < cap {
                self.sample.push(gap);
            } else if cap > 0 {
                let j = ((self.rng.next_u64() as u128 * self.count as u128) >> 64) as usize;
                if j < cap {
                    self.sample[j] = gap;
                }
            }
        }
        self.last_send = now;
    }
}

/// The accounting of one worker (see the module docs).
#[derive(Debug)]
pub(super) struct Account {
    /// The intervals taken so far, added.
    totals: Counts,
    /// The current interval.
    iv: IntervalStats,
    latency: Histogram<u64>,
    uncorrected: Histogram<u64>,
    lag: Histogram<u64>,
    gaps: Gaps,
    peak_open: u64,
    issue_end_ns: u64,
    /// Start of the measurement: the origin of the batches.
    measure_start_ns: u64,
    /// Completion times are held at this instant (the planned end of the schedule, or where it
    /// stopped), so that the answers draining after it count in the last batch.
    batch_time_cap: u64,
    batches: BatchAcc,
    /// The configured rate of the thread in open loop (normalizes the gaps; with a profile they
    /// are operational gaps already).
    open_rate: Option<f64>,
    timing: Timing,
    phases: PhaseDurations,
}

impl Account {
    /// The accounting of the worker of `plan`, whose schedule starts at `start_ns`, whose
    /// measurement starts at `measure_start_ns` and whose schedule ends at `issue_end_ns` (if
    /// bounded by a duration).
    pub fn new(
        plan: &Plan,
        start_ns: u64,
        measure_start_ns: u64,
        issue_end_ns: Option<u64>,
    ) -> Self {
        Self {
            totals: Counts::default(),
            iv: IntervalStats::with_hists(IntervalHists::new()),
            latency: new_histogram(),
            uncorrected: new_histogram(),
            lag: new_histogram(),
            gaps: Gaps {
                sample: Vec::with_capacity(plan.gap_samples),
                cap: plan.gap_samples,
                sum_ns: 0.0,
                count: 0,
                last_send: 0,
                rng: queuelab_common::samplers::rng(
                    plan.seed ^ 0x5eed_5a3f_1e00_0000,
                    plan.index as u64,
                ),
                shape: match &plan.source {
                    SourcePlan::Shaped { profile, share, .. } => Some(GapShape {
                        profile: Arc::clone(profile),
                        share: *share,
                        start_ns,
                        cursor: 0,
                        last: 0.0,
                    }),
                    _ => None,
                },
            },
            peak_open: 0,
            issue_end_ns: start_ns,
            measure_start_ns,
            batch_time_cap: issue_end_ns.unwrap_or(u64::MAX),
            batches: BatchAcc::new(),
            open_rate: match plan.source {
                SourcePlan::Open { rate, .. } => Some(rate),
                SourcePlan::Shaped { .. } | SourcePlan::Users { .. } => None,
            },
            timing: Timing {
                names: Vec::with_capacity(MAX_TIMING_NAMES),
                ..Timing::default()
            },
            phases: PhaseDurations::default(),
        }
    }

    /// The schedule issued `p`.
    pub fn issued(&mut self, p: &Pending) {
        if p.measured {
            self.iv.counts.issued += 1;
        }
    }

    /// `p` waits in the backlog for a connection.
    pub fn backlog_wait(&mut self, p: &Pending) {
        if p.measured {
            self.iv.counts.backlog_waits += 1;
        }
    }

    /// `p` is sent again on a fresh connection.
    pub fn retried(&mut self, p: &Pending) {
        if p.measured {
            self.iv.counts.retries += 1;
        }
    }

    /// A connection was opened; `open` are open now.
    pub fn opened(&mut self, open: usize) {
        self.iv.counts.opened += 1;
        self.peak_open = self.peak_open.max(open as u64);
    }

    /// The first write of `req` at `now` (`issuing`: the schedule still runs): its send lag and
    /// the gap since the previous send.
    pub fn sent(&mut self, req: &Pending, now: u64, issuing: bool) {
        let c = &mut self.iv.counts;
        if !req.measured {
            c.warmup += 1;
            return;
        }
        c.sent += 1;
        if issuing {
            c.sent_in_window += 1;
        }
        let lag = now.saturating_sub(req.intended);
        record_ns(&mut self.lag, lag);
        record_ns(&mut self.iv.hists.lag, lag);
        self.iv.lag_max_ns = self.iv.lag_max_ns.max(lag);
        self.gaps.record(now);
    }

    /// `req` got its whole answer, with `status` and the answer's `Server-Timing` if it had
    /// the header, at `now`.
    pub fn completed(
        &mut self,
        req: &Pending,
        status: u16,
        now: u64,
        timing: Option<&ServerTiming>,
    ) {
        if !req.measured {
            return;
        }
        let latency = now.saturating_sub(req.intended);
        let uncorrected = now.saturating_sub(req.write_ns);
        record_ns(&mut self.latency, latency);
        record_ns(&mut self.uncorrected, uncorrected);
        self.iv.counts.completed += 1;
        self.iv.counts.status.add(status);
        self.iv.latency_sum_ns += latency as f64;
        self.iv.uncorrected_sum_ns += uncorrected as f64;
        record_ns(&mut self.iv.hists.latency, latency);
        let t = now
            .min(self.batch_time_cap)
            .saturating_sub(self.measure_start_ns);
        self.batches.record(t, latency, uncorrected);
        if let Some(t) = timing {
            self.timing.record(t, latency, &mut self.iv);
        }
    }

    /// `req` failed with `kind`.
    pub fn failed(&mut self, req: &Pending, kind: ErrorKind) {
        if req.measured {
            self.iv.counts.failed(kind);
        }
    }

    /// A connection's TCP connect took `ns` (from its start to established).
    pub fn connected(&mut self, ns: u64) {
        self.phases
            .connect
            .get_or_insert_with(Durations::new)
            .record(ns);
    }

    /// A connection's TLS handshake took `ns` (from the TCP connection established to its end).
    pub fn handshaken(&mut self, ns: u64) {
        self.phases
            .tls
            .get_or_insert_with(Durations::new)
            .record(ns);
    }

    /// The schedule stopped at `at` (not before `measure_start_ns`).
    pub fn issue_end(&mut self, at: u64) {
        self.issue_end_ns = at;
        self.batch_time_cap = self.batch_time_cap.min(at);
    }

    /// The current interval, for its report; its counts join the totals, and the next one
    /// records into `spare`.
    pub fn take_interval(&mut self, spare: IntervalHists) -> IntervalStats {
        self.totals += self.iv.counts;
        self.iv.take(spare)
    }

    /// The totals, with what the last interval counted if it was not taken (a run that ended
    /// in its warmup reports no interval), and the gap sample normalized to mean 1: by the
    /// configured rate in open loop, in operational time with a profile, else by the measured
    /// mean gap.
    pub fn finish(mut self) -> ThreadResult {
        self.totals += self.iv.counts;
        let scale = match self.open_rate {
            _ if self.gaps.shape.is_some() => 1.0,
            Some(rate) => rate / 1e9,
            None if self.gaps.count > 0 => self.gaps.count as f64 / self.gaps.sum_ns,
            None => 0.0,
        };
        for g in &mut self.gaps.sample {
            *g *= scale;
        }
        ThreadResult {
            counts: self.totals,
            peak_open: self.peak_open,
            latency: self.latency,
            uncorrected: self.uncorrected,
            lag: self.lag,
            gaps: self.gaps.sample,
            gap_sum_ns: self.gaps.sum_ns,
            gap_count: self.gaps.count,
            issue_end_ns: self.issue_end_ns,
            timing: self.timing,
            batches: self.batches,
            phases: self.phases,
            tls_first_error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use queuelab_common::samplers::ArrivalKind;

    fn plan(source: SourcePlan, gap_samples: usize) -> Plan {
        Plan {
            index: 0,
            core: None,
            seed: 7,
            source,
            requests: None,
            conn_cap: 4,
            backlog_cap: 4,
            gap_samples,
        }
    }

    fn req(intended: u64, measured: bool) -> Pending {
        Pending {
            intended,
            user: super::super::schedule::NO_USER,
            measured,
            retried: false,
            write_ns: 0,
        }
    }

    #[test]
    fn each_event_counts_once_and_the_totals_are_the_sum_of_the_intervals() {
        let open = SourcePlan::Open {
            rate: 1000.0,
            arrival: ArrivalKind::Constant,
        };
        let mut a = Account::new(&plan(open, 16), 5, 5, None);
        // Warmup: only the send of an unmeasured request is counted.
        let w = req(10, false);
        a.issued(&w);
        a.backlog_wait(&w);
        a.sent(&w, 11, true);
        a.completed(&w, 200, 12, None);
        a.failed(&w, ErrorKind::Read);
        a.opened(1);
        // Interval 0: two sends 1 ms apart, one answer after 300 µs, one timeout.
        let mut r1 = req(1_000_000, true);
        a.issued(&r1);
        a.sent(&r1, 1_000_500, true);
        r1.write_ns = 1_000_500;
        a.completed(&r1, 503, 1_300_000, None);
        let r2 = req(2_000_000, true);
        a.issued(&r2);
        a.backlog_wait(&r2);
        a.sent(&r2, 2_000_500, true);
        a.retried(&r2);
        a.failed(&r2, ErrorKind::Timeout);
        let iv0 = a.take_interval(IntervalHists::new());
        let c0 = iv0.counts;
        assert_eq!((c0.issued, c0.sent, c0.sent_in_window), (2, 2, 2));
        assert_eq!((c0.completed, c0.warmup, c0.backlog_waits), (1, 1, 1));
        assert_eq!((c0.retries, c0.opened), (1, 1));
        assert_eq!((c0.errors.timeout, c0.errors.total()), (1, 1));
        assert_eq!((c0.status.s5xx, c0.status.s503, c0.status.s2xx), (1, 1, 0));
        assert_eq!(iv0.latency_sum_ns, 300_000.0);
        assert_eq!(iv0.uncorrected_sum_ns, 299_500.0);
        assert_eq!(iv0.lag_max_ns, 500);
        assert_eq!(iv0.hists.latency.len(), 1);
        assert_eq!(iv0.hists.lag.len(), 2);
        // Interval 1 starts empty; a send after the schedule stopped is not in the window.
        let r3 = req(3_000_000, true);
        a.issued(&r3);
        a.sent(&r3, 3_000_100, false);
        a.opened(3);
        a.opened(2);
        let iv1 = a.take_interval(IntervalHists::new());
        assert_eq!(iv1.counts.completed, 0);
        assert_eq!((iv1.counts.sent, iv1.counts.sent_in_window), (1, 0));
        assert_eq!(iv1.latency_sum_ns, 0.0);
        assert_eq!(iv1.lag_max_ns, 100);
        // Counted after the last interval was taken: still in the totals.
        a.failed(&r3, ErrorKind::Unfinished);
        a.issue_end(4_000_000);
        let t = a.finish();
        let mut sum = c0;
        sum += iv1.counts;
        sum.errors.unfinished += 1;
        assert_eq!(t.counts, sum);
        assert_eq!(t.peak_open, 3);
        assert_eq!(t.issue_end_ns, 4_000_000);
        assert_eq!(
            (t.latency.len(), t.uncorrected.len(), t.lag.len()),
            (1, 1, 3)
        );
        // Gaps between measured sends: 1 ms and 0.9996 ms, normalized by the rate (1/ms).
        assert_eq!(t.gap_count, 2);
        assert_eq!(t.gap_sum_ns, 1_999_600.0);
        assert_eq!(t.gaps.len(), 2);
        assert!((t.gaps[0] - 1.0).abs() < 1e-12, "{:?}", t.gaps);
        assert!((t.gaps[1] - 0.9996).abs() < 1e-12, "{:?}", t.gaps);
    }

    fn timing(lines: &[&str]) -> ServerTiming {
        let mut t = ServerTiming::new();
        for l in lines {
            t.add_header(l.as_bytes());
        }
        t
    }

    #[test]
    fn server_timing_splits_the_latency_into_server_and_path() {
        let open = SourcePlan::Open {
            rate: 1000.0,
            arrival: ArrivalKind::Constant,
        };
        let mut a = Account::new(&plan(open, 4), 0, 0, None);
        let names_cap = a.timing.names.capacity();
        // Latency 2 ms from the intended time (1.5 ms from the write): Σdur = 1.602 ms, path
        // 398 µs (from the intended time, not the write).
        let mut r = req(1_000_000, true);
        r.write_ns = 1_500_000;
        let qserve = timing(&["wait;dur=0.412, service;dur=1.187, late;dur=0.003"]);
        a.completed(&r, 200, 3_000_000, Some(&qserve));
        // Durations above the latency: path 0, counted.
        a.completed(&r, 200, 2_000_000, Some(&timing(&["service;dur=5"])));
        // Unmeasured, malformed, without a duration, without the header: no path.
        a.completed(&req(0, false), 200, 3_000_000, Some(&qserve));
        a.completed(&r, 200, 3_000_000, Some(&timing(&["wait;dur=-1"])));
        a.completed(&r, 200, 3_000_000, Some(&timing(&["miss;desc=x"])));
        a.completed(&r, 200, 3_000_000, None);
        let iv = a.take_interval(IntervalHists::new());
        assert_eq!(iv.counts.completed, 5);
        assert_eq!(iv.timed, 2);
        assert_eq!(iv.path_sum_ns, 398_000.0);
        assert_eq!(iv.server_sum_ns, 1_602_000.0 + 5_000_000.0);
        assert_eq!(iv.hists.path.len(), 2);
        // Eleven more names over two answers: five fit beside the three seen, the other six are
        // dropped, but every duration still counts in the server's total.
        let many: Vec<String> = (0..11).map(|i| format!("n{i};dur=0.001")).collect();
        a.completed(&r, 200, 3_000_000, Some(&timing(&[&many[..6].join(",")])));
        a.completed(&r, 200, 3_000_000, Some(&timing(&[&many[6..].join(",")])));
        // 17 durations in one answer: the 17th is dropped from the answer itself.
        let seventeen: Vec<String> = (0..17).map(|_| "n0;dur=0.001".to_owned()).collect();
        a.completed(&r, 200, 3_000_000, Some(&timing(&[&seventeen.join(",")])));
        let t = a.finish().timing;
        assert_eq!(
            t.counts,
            ServerTimingCounts {
                carried: 5,
                malformed: 1,
                dropped_names: 6 + 1,
                negative_path: 1,
            }
        );
        let names: Vec<&str> = t.names.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["wait", "service", "late", "n0", "n1", "n2", "n3", "n4"]
        );
        assert_eq!(t.names.capacity(), names_cap, "the table never grew");
        let sum = |name: &str| {
            let (_, d) = t.names.iter().find(|(n, _)| n == name).expect("kept");
            (d.hist.len(), d.sum_ns)
        };
        assert_eq!(sum("wait"), (1, 412_000));
        assert_eq!(sum("service"), (2, 6_187_000));
        assert_eq!(sum("n0"), (17, 17_000));
        let server = t.server.expect("answers carried durations");
        assert_eq!(server.hist.len(), 5);
        assert_eq!(
            server.sum_ns,
            1_602_000 + 5_000_000 + 6_000 + 5_000 + 16_000
        );
        let path = t.path.expect("answers carried durations");
        assert_eq!(path.hist.len(), 5);
        assert_eq!(
            path.sum_ns,
            398_000 + (2_000_000 - 6_000) + (2_000_000 - 5_000) + (2_000_000 - 16_000)
        );
    }

    #[test]
    fn batches_go_by_completion_time_and_the_drain_counts_at_the_end() {
        let open = SourcePlan::Open {
            rate: 1000.0,
            arrival: ArrivalKind::Constant,
        };
        // The measurement starts at 1 ms (batches of 1 ms from there), planned to end at 9 ms.
        let mut r = req(1_000_000, true);
        r.write_ns = 1_100_000;
        let account = || {
            let mut a = Account::new(&plan(open.clone(), 4), 0, 1_000_000, Some(9_000_000));
            a.completed(&r, 200, 1_500_000, None);
            a.completed(&r, 200, 3_200_000, None);
            a.completed(&req(0, false), 200, 3_300_000, None);
            a
        };
        // An answer after the planned end counts at the end: 8 ms in, slot 8.
        let mut a = account();
        a.completed(&r, 200, 9_500_000, None);
        let b = a.finish().batches;
        assert_eq!(b.used(), 9);
        assert_eq!(b.slot(8), Some((8_500_000, 8_400_000, 1)));
        // The schedule stops early, at 4 ms: an answer at 60 ms counts at 3 ms in, slot 3.
        let mut a = account();
        a.issue_end(4_000_000);
        a.completed(&r, 503, 60_000_000, None);
        let b = a.finish().batches;
        assert_eq!(b.length_ns(), 1_000_000);
        assert_eq!(b.used(), 4);
        assert_eq!(b.slot(0), Some((500_000, 400_000, 1)));
        assert_eq!(b.slot(1), Some((0, 0, 0)));
        assert_eq!(b.slot(2), Some((2_200_000, 2_100_000, 1)));
        assert_eq!(b.slot(3), Some((59_000_000, 58_900_000, 1)));
    }

    #[test]
    fn with_a_profile_the_gaps_are_measured_in_operational_time() {
        // λ = 1000/s for 1 s, then a ramp 1000 → 3000 over 1 s; half of it for this thread.
        let profile = Arc::new(Profile::parse("1k:1s,1k..3k:1s").expect("valid"));
        let shaped = SourcePlan::Shaped {
            profile: Arc::clone(&profile),
            share: 0.5,
            arrival: ArrivalKind::Poisson,
        };
        let start = 10_000;
        let mut a = Account::new(&plan(shaped, 8), start, start, None);
        let cap = a.gaps.sample.capacity();
        // Sends at 0.5 s, 1 s, 1.5 s, 2 s since the start.
        for k in 1..=4u64 {
            let t = start + k * 500_000_000;
            a.sent(&req(t, true), t, true);
        }
        let r = a.finish();
        // Λ·share at the sends: 250, 500, (1000 + 500 + 2000·0.5²/2)/2 = 875, 1500; the first
        // send starts the count, so the gaps are 250, 375, 625.
        assert_eq!(r.gap_count, 3);
        assert_eq!(
            r.gap_sum_ns, 1.5e9,
            "the real-time sum is kept for the mean gap"
        );
        let want = [250.0, 375.0, 625.0];
        assert_eq!(r.gaps.len(), 3);
        for (g, w) in r.gaps.iter().zip(want) {
            assert!((g - w).abs() < 1e-9, "{:?}", r.gaps);
        }
        assert_eq!(r.gaps.capacity(), cap, "the sample never grew");
    }

    #[test]
    fn the_gap_sample_stays_within_its_cap_and_users_normalize_by_the_mean_gap() {
        let users = SourcePlan::Users {
            users: 1,
            think_s: 0.0,
        };
        let mut a = Account::new(&plan(users, 4), 0, 0, None);
        let cap = a.gaps.sample.capacity();
        // Gaps of 1, 2, 3, ... µs; the mean of 100 gaps is 50.5 µs.
        let mut t = 1_000;
        for k in 0..=100u64 {
            t += k * 1_000;
            a.sent(&req(t, true), t, true);
        }
        let r = a.finish();
        assert_eq!(r.gap_count, 100);
        assert_eq!(r.gaps.len(), 4);
        assert_eq!(r.gaps.capacity(), cap, "the sample never grew");
        // Each kept gap is one of k / 50.5 for k in 1..=100.
        for g in &r.gaps {
            let k = g * 50.5;
            assert!(
                (k - k.round()).abs() < 1e-9 && (1.0..=100.0).contains(&k),
                "{g}"
            );
        }
    }
}
