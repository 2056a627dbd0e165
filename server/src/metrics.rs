//! Counters and histograms, and their Prometheus text rendering for `/metrics`.
//!
//! Each I/O thread counts into a private [`LocalMetrics`] batch (plain integers and a short buffer
//! of samples) and adds it to its shared [`ThreadMetrics`] once per event-loop turn, under a mutex
//! that only a `/metrics` request or the final summary contends for. Histograms are HDR histograms
//! of nanoseconds with fixed bounds (`queuelab_common::stats`), so recording never allocates.
//!
//! Exposed series (all prefixed `qserve_`):
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `requests_total{outcome}` | counter | answers written, by outcome: `served` (200 through the queue), `blocked` (503 at capacity K), `overflow` (503 at the default in-system limit), `shutting_down` (503 while draining), `bad_request` (400), `bad_priority` (400: an invalid `X-Priority`), `timeout` (408), `too_large` (413), `head_too_large` (431), `not_implemented` (501), `bad_version` (505), `internal_error` (500: a queued request the model no longer knew; never expected), `metrics`, `healthz` |
//! | `requests_unanswered_total{reason}` | counter | requests accepted but never answered: `abandoned` (the client went away first: it reset the connection, or the connection failed, before the answer was written), `grace_expired` (still queued when the shutdown grace ran out) |
//! | `arrivals_total` | counter | arrivals seen by the queue model |
//! | `in_system` | gauge | requests in the queue model now (waiting plus in service) |
//! | `busy_servers` | gauge | servers busy now |
//! | `busy_seconds_total` | counter | server-seconds of service admitted (sum of service times); `rate()/c` is the utilization |
//! | `in_system_seconds_total` | counter | ∫ number in system dt of the queue model (request-seconds): `rate()` is the time-average number in system L, and L = λW (Little's law) checks it against `sojourn_seconds`; absent with `--service zero` |
//! | `sojourn_seconds` | summary | wait + service of served requests (quantiles 0.5, 0.9, 0.99, 0.999, 1, `_sum`, `_count`); also `_sum{class}` and `_count{class}` per priority class, for the classes 0 to the larger of the configured number and the highest class served, which add up to the unlabelled totals |
//! | `timer_lateness_seconds` | summary | departure timer fire time minus departure time |
//! | `connections` | gauge | connections open |
//! | `connections_total{result}` | counter | `accepted`, or `rejected` (over `--max-connections`, closed at once) |
//! | `connections_closed_total{reason}` | counter | `idle` (after `--idle-timeout`), `error` (I/O error) |
//! | `mu`, `servers`, `capacity`, `overflow_limit` | gauge | the configured model (`+Inf` for none) |
//! | `threads`, `spin_seconds`, `uptime_seconds` | gauge | configuration and age |
//! | `info{model,service}` | gauge | 1, with the Kendall notation and service distribution |
//!
//! Accounting: every request head the server parses (and every slow head it times out) gets
//! exactly one answer or one reason for having none, so once nothing is in progress
//! `sum(requests_total) + sum(requests_unanswered_total)` is the number of requests parsed. An
//! answer is counted when it is put in the connection's output; if the peer is gone by the time
//! it is written, it was served into the void and stays counted by its outcome. Bytes a
//! connection never parsed are not requests: those after a `Connection: close`, a bad request or
//! a 503 while shutting down (the close tells the client they were not processed), and those
//! still unread, beyond the [`crate::PIPELINE_MAX`] limit, when a connection is reset.
//!
//! An abandoned request keeps its place in the queue model until its departure: the model cannot
//! take back an admitted request, because the departures behind it were computed from its own.
//! So `in_system` still counts it, and later arrivals wait for it and see it against the
//! capacity, exactly as if it had been served into the void.
//!
//! Each thread adds its batch to the shared counts at the end of every turn of its event loop,
//! so a scrape answered by one thread may lag another thread's latest answers by one turn (the
//! scrape itself is always counted in its own text).
use std::io::Write as _;

use hdrhistogram::Histogram;
use queuelab_common::stats::{merge_histogram, new_histogram, record_n_ns, record_ns};

use queuelab_common::model::MAX_CLASSES;

use crate::forward::Fault;
use crate::http::Reject;

/// Event counts of one thread (or, summed, of the server).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// 200 answers through the queue.
    pub served: u64,
    /// 503: capacity K reached.
    pub blocked: u64,
    /// 503: default in-system limit reached.
    pub overflow: u64,
    /// 503: the server was draining.
    pub shutting_down: u64,
    /// Canned error answers, indexed by [`Reject::index`].
    pub rejects: [u64; Reject::COUNT],
    /// 500: a queued request whose ticket the queue model no longer knew at its departure.
    pub internal_error: u64,
    /// `/metrics` answers.
    pub metrics: u64,
    /// `/healthz` answers.
    pub healthz: u64,
    /// Accepted requests whose client went away before the answer was written.
    pub abandoned: u64,
    /// Accepted requests still unanswered when the shutdown grace ran out.
    pub grace_expired: u64,
    /// Connections accepted and kept.
    pub conn_accepted: u64,
    /// Connections closed at once for being over `--max-connections`.
    pub conn_rejected: u64,
    /// Connections closed after `--idle-timeout`.
    pub conn_idle_closed: u64,
    /// Connections closed on an I/O error.
    pub conn_errors: u64,
    /// Failed `accept` calls (e.g. out of file descriptors).
    pub accept_errors: u64,
    /// Times an I/O thread returned freed memory to the system after a peak of connections.
    pub memory_trims: u64,
    /// `--forward`: answers relayed from the downstream (any status).
    pub forwarded: u64,
    /// `--forward`: requests sent downstream.
    pub forward_requests: u64,
    /// `--forward`: 502/504 answers, indexed by [`Fault::index`].
    pub forward_errors: [u64; Fault::COUNT],
    /// `--forward`: total hop time of relayed answers (dispatch to answer), ns.
    pub forward_ns: u64,
    /// `--forward`: answers whose downstream `Server-Timing` entries were cut.
    pub forward_timing_truncated: u64,
}

impl Counters {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &Counters) {
        self.served += o.served;
        self.blocked += o.blocked;
        self.overflow += o.overflow;
        self.shutting_down += o.shutting_down;
        for (a, b) in self.rejects.iter_mut().zip(o.rejects.iter()) {
            *a += b;
        }
        self.internal_error += o.internal_error;
        self.metrics += o.metrics;
        self.healthz += o.healthz;
        self.abandoned += o.abandoned;
        self.grace_expired += o.grace_expired;
        self.conn_accepted += o.conn_accepted;
        self.conn_rejected += o.conn_rejected;
        self.conn_idle_closed += o.conn_idle_closed;
        self.conn_errors += o.conn_errors;
        self.accept_errors += o.accept_errors;
        self.memory_trims += o.memory_trims;
        self.forwarded += o.forwarded;
        self.forward_requests += o.forward_requests;
        for (a, b) in self.forward_errors.iter_mut().zip(o.forward_errors.iter()) {
            *a += b;
        }
        self.forward_ns += o.forward_ns;
        self.forward_timing_truncated += o.forward_timing_truncated;
    }

    /// All 502/504 answers of `--forward`.
    pub fn forward_failed(&self) -> u64 {
        self.forward_errors.iter().sum()
    }

    /// All canned error answers.
    pub fn rejected(&self) -> u64 {
        self.rejects.iter().sum()
    }
}

/// Sojourns of served requests by priority class: a fixed array per class (no allocation),
/// indexed by the class number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassSojourns {
    /// Exact sum of the sojourns of each class, ns.
    pub sum_ns: [u128; MAX_CLASSES],
    /// Served requests of each class.
    pub count: [u64; MAX_CLASSES],
}

impl ClassSojourns {
    /// Records one sojourn of `class` (a class beyond the last counts as the last; the parser
    /// and the model never produce one).
    #[inline]
    pub fn record(&mut self, class: u8, ns: u64) {
        let i = usize::from(class).min(MAX_CLASSES - 1);
        self.sum_ns[i] += u128::from(ns);
        self.count[i] += 1;
    }

    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &ClassSojourns) {
        for i in 0..MAX_CLASSES {
            self.sum_ns[i] += o.sum_ns[i];
            self.count[i] += o.count[i];
        }
    }

    /// One more than the highest class with a served request (0 when none was served).
    pub fn seen(&self) -> usize {
        self.count.iter().rposition(|&n| n > 0).map_or(0, |i| i + 1)
    }
}

/// The shared metrics of one thread.
#[derive(Debug)]
pub struct ThreadMetrics {
    /// Counts.
    pub counters: Counters,
    /// Sojourn (wait + service) of served requests, ns.
    pub sojourn: Histogram<u64>,
    /// Exact sum of the recorded sojourns, ns.
    pub sojourn_sum_ns: u128,
    /// The sojourns by class.
    pub class_sojourn: ClassSojourns,
    /// Timer lateness, ns.
    pub lateness: Histogram<u64>,
    /// Exact sum of the recorded lateness, ns.
    pub lateness_sum_ns: u128,
}

impl Default for ThreadMetrics {
    fn default() -> Self {
        ThreadMetrics {
            counters: Counters::default(),
            sojourn: new_histogram(),
            sojourn_sum_ns: 0,
            class_sojourn: ClassSojourns::default(),
            lateness: new_histogram(),
            lateness_sum_ns: 0,
        }
    }
}

impl ThreadMetrics {
    /// Adds another thread's metrics.
    pub fn merge(&mut self, o: &ThreadMetrics) {
        self.counters.add(&o.counters);
        merge_histogram(&mut self.sojourn, &o.sojourn);
        self.sojourn_sum_ns += o.sojourn_sum_ns;
        self.class_sojourn.add(&o.class_sojourn);
        merge_histogram(&mut self.lateness, &o.lateness);
        self.lateness_sum_ns += o.lateness_sum_ns;
    }

    /// Empties it (keeping the histograms' storage).
    pub fn reset(&mut self) {
        self.counters = Counters::default();
        self.sojourn.reset();
        self.sojourn_sum_ns = 0;
        self.class_sojourn = ClassSojourns::default();
        self.lateness.reset();
        self.lateness_sum_ns = 0;
    }
}

/// Samples buffered before a flush; a full buffer flushes early.
const SAMPLE_BATCH: usize = 4096;

/// A thread's private batch of metrics, added to its [`ThreadMetrics`] once per loop turn.
#[derive(Debug)]
pub struct LocalMetrics {
    /// Counts since the last flush.
    pub counters: Counters,
    sojourn: Vec<u64>,
    zero_sojourns: u64,
    class_sojourn: ClassSojourns,
    lateness: Vec<u64>,
    dirty: bool,
}

impl Default for LocalMetrics {
    fn default() -> Self {
        LocalMetrics {
            counters: Counters::default(),
            sojourn: Vec::with_capacity(SAMPLE_BATCH),
            zero_sojourns: 0,
            class_sojourn: ClassSojourns::default(),
            lateness: Vec::with_capacity(SAMPLE_BATCH),
            dirty: false,
        }
    }
}

impl LocalMetrics {
    /// Marks the batch as holding something to flush (after changing `counters`).
    #[inline]
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Whether the sample buffers are full and should be flushed now.
    #[inline]
    pub fn full(&self) -> bool {
        self.sojourn.len() >= SAMPLE_BATCH || self.lateness.len() >= SAMPLE_BATCH
    }

    /// Records the sojourn of a served request of priority class `class`.
    #[inline]
    pub fn sojourn(&mut self, ns: u64, class: u8) {
        self.dirty = true;
        self.class_sojourn.record(class, ns);
        if ns == 0 {
            self.zero_sojourns += 1;
        } else {
            self.sojourn.push(ns);
        }
    }

    /// Records the lateness of a departure timer.
    #[inline]
    pub fn lateness(&mut self, ns: u64) {
        self.dirty = true;
        self.lateness.push(ns);
    }

    /// Adds the batch to `shared` and empties it.
    pub fn flush_into(&mut self, shared: &mut ThreadMetrics) {
        if !self.dirty {
            return;
        }
        shared.counters.add(&self.counters);
        self.counters = Counters::default();
        for &ns in &self.sojourn {
            record_ns(&mut shared.sojourn, ns);
            shared.sojourn_sum_ns += u128::from(ns);
        }
        if self.zero_sojourns > 0 {
            record_n_ns(&mut shared.sojourn, 0, self.zero_sojourns);
            self.zero_sojourns = 0;
        }
        shared.class_sojourn.add(&self.class_sojourn);
        self.class_sojourn = ClassSojourns::default();
        for &ns in &self.lateness {
            record_ns(&mut shared.lateness, ns);
            shared.lateness_sum_ns += u128::from(ns);
        }
        self.sojourn.clear();
        self.lateness.clear();
        self.dirty = false;
    }
}

/// Everything `/metrics` shows, gathered under the locks and rendered after.
#[derive(Debug)]
pub struct Snapshot<'a> {
    /// Sum over threads.
    pub totals: &'a ThreadMetrics,
    /// Arrivals seen by the model.
    pub arrivals: u64,
    /// In system now.
    pub in_system: usize,
    /// Servers busy now.
    pub busy_servers: usize,
    /// Server-seconds of service admitted.
    pub busy_s: f64,
    /// ∫ number in system dt so far, request-seconds (`None` without a queue).
    pub in_system_s: Option<f64>,
    /// Configured priority classes (`--classes`; 1 by default).
    pub classes: usize,
    /// Connections open now.
    pub connections: usize,
    /// Configured μ (per second).
    pub mu: f64,
    /// Configured c (`None` for infinitely many).
    pub servers: Option<u32>,
    /// Configured K.
    pub capacity: Option<u32>,
    /// Overflow limit.
    pub overflow_limit: usize,
    /// I/O threads.
    pub threads: usize,
    /// Spin margin (seconds).
    pub spin_s: f64,
    /// Uptime (seconds).
    pub uptime_s: f64,
    /// Kendall notation.
    pub model: &'a str,
    /// Service distribution (flag spelling).
    pub service: &'a str,
    /// `--network`: each station's series (empty for one queue; at most 64).
    pub stations: &'a [StationSnapshot<'a>],
}

/// The series of one station of a network, labelled `station="NAME"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StationSnapshot<'a> {
    /// The station's name.
    pub name: &'a str,
    /// Visits accepted (`qserve_station_visits_total`).
    pub visits: u64,
    /// Arrivals blocked at its capacity (`qserve_station_blocked_total`).
    pub blocked: u64,
    /// Arrivals over its overflow limit (`qserve_station_overflow_total`).
    pub overflow: u64,
    /// Server-seconds of service admitted (`qserve_busy_seconds_total{station}`).
    pub busy_s: f64,
    /// Σ wait + service of its visits, seconds (`qserve_sojourn_seconds_sum{station}`; the
    /// count is `visits`).
    pub sojourn_s: f64,
    /// ∫ N_j dt, request-seconds (`qserve_in_system_seconds_total{station}`).
    pub in_system_s: f64,
    /// In the station now (`qserve_in_system{station}`).
    pub in_system: usize,
    /// Gaps between its successive departures in virtual time
    /// (`qserve_station_departure_gap_seconds`, a histogram; the network model keeps them for
    /// every station, in time order); `None` leaves the station out of the family.
    pub gaps: Option<crate::network::DepartureGaps>,
}

fn reject_outcome(r: Reject) -> &'static str {
    match r {
        Reject::BadRequest => "bad_request",
        Reject::Timeout => "timeout",
        Reject::ContentTooLarge => "too_large",
        Reject::HeadTooLarge => "head_too_large",
        Reject::NotImplemented => "not_implemented",
        Reject::VersionNotSupported => "bad_version",
        Reject::BadPriority => "bad_priority",
    }
}

fn opt_value(v: Option<f64>) -> String {
    match v {
        Some(x) => format!("{x}"),
        None => "+Inf".to_owned(),
    }
}

fn summary(
    out: &mut Vec<u8>,
    name: &str,
    help: &str,
    h: &Histogram<u64>,
    sum_ns: u128,
) -> std::io::Result<()> {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} summary")?;
    for q in [0.5, 0.9, 0.99, 0.999] {
        let v = if h.is_empty() {
            0
        } else {
            h.value_at_quantile(q)
        };
        writeln!(out, "{name}{{quantile=\"{q}\"}} {}", v as f64 * 1e-9)?;
    }
    writeln!(out, "{name}{{quantile=\"1\"}} {}", h.max() as f64 * 1e-9)?;
    writeln!(out, "{name}_sum {}", sum_ns as f64 * 1e-9)?;
    writeln!(out, "{name}_count {}", h.len())
}

/// Renders the Prometheus text exposition (format 0.0.4) of `s` into `out`.
pub fn render(out: &mut Vec<u8>, s: &Snapshot<'_>) {
    // Writing into a Vec cannot fail.
    let _ = render_inner(out, s);
}

fn render_inner(out: &mut Vec<u8>, s: &Snapshot<'_>) -> std::io::Result<()> {
    let c = &s.totals.counters;
    writeln!(
        out,
        "# HELP qserve_requests_total Answers written, by outcome."
    )?;
    writeln!(out, "# TYPE qserve_requests_total counter")?;
    let mut outcomes: Vec<(&str, u64)> = vec![
        ("served", c.served),
        ("blocked", c.blocked),
        ("overflow", c.overflow),
        ("shutting_down", c.shutting_down),
    ];
    for r in Reject::ALL {
        outcomes.push((reject_outcome(r), c.rejects[r.index()]));
    }
    outcomes.push(("internal_error", c.internal_error));
    outcomes.push(("forwarded", c.forwarded));
    outcomes.push(("forward_error", c.forward_failed()));
    outcomes.push(("metrics", c.metrics));
    outcomes.push(("healthz", c.healthz));
    for (outcome, n) in outcomes {
        writeln!(out, "qserve_requests_total{{outcome=\"{outcome}\"}} {n}")?;
    }
    writeln!(
        out,
        "# HELP qserve_requests_unanswered_total Accepted requests never answered, by reason."
    )?;
    writeln!(out, "# TYPE qserve_requests_unanswered_total counter")?;
    writeln!(
        out,
        "qserve_requests_unanswered_total{{reason=\"abandoned\"}} {}",
        c.abandoned
    )?;
    writeln!(
        out,
        "qserve_requests_unanswered_total{{reason=\"grace_expired\"}} {}",
        c.grace_expired
    )?;
    writeln!(
        out,
        "# HELP qserve_forward_requests_total Requests sent on to the --forward downstream."
    )?;
    writeln!(out, "# TYPE qserve_forward_requests_total counter")?;
    writeln!(out, "qserve_forward_requests_total {}", c.forward_requests)?;
    writeln!(
        out,
        "# HELP qserve_forward_errors_total Forwarded requests answered 502 or 504 (timeout), by kind."
    )?;
    writeln!(out, "# TYPE qserve_forward_errors_total counter")?;
    for f in Fault::ALL {
        writeln!(
            out,
            "qserve_forward_errors_total{{kind=\"{}\"}} {}",
            f.label(),
            c.forward_errors[f.index()]
        )?;
    }
    writeln!(
        out,
        "# HELP qserve_forward_seconds Hop time of relayed answers: dispatch to the downstream's answer (its own time included)."
    )?;
    writeln!(out, "# TYPE qserve_forward_seconds summary")?;
    writeln!(
        out,
        "qserve_forward_seconds_sum {}",
        c.forward_ns as f64 * 1e-9
    )?;
    writeln!(out, "qserve_forward_seconds_count {}", c.forwarded)?;
    writeln!(
        out,
        "# HELP qserve_forward_timing_truncated_total Relayed answers whose downstream Server-Timing entries were cut at the length bound."
    )?;
    writeln!(out, "# TYPE qserve_forward_timing_truncated_total counter")?;
    writeln!(
        out,
        "qserve_forward_timing_truncated_total {}",
        c.forward_timing_truncated
    )?;
    writeln!(
        out,
        "# HELP qserve_arrivals_total Arrivals seen by the queue model."
    )?;
    writeln!(out, "# TYPE qserve_arrivals_total counter")?;
    writeln!(out, "qserve_arrivals_total {}", s.arrivals)?;
    writeln!(
        out,
        "# HELP qserve_in_system Requests in the queue model now (waiting plus in service)."
    )?;
    writeln!(out, "# TYPE qserve_in_system gauge")?;
    writeln!(out, "qserve_in_system {}", s.in_system)?;
    for st in s.stations {
        writeln!(
            out,
            "qserve_in_system{{station=\"{}\"}} {}",
            st.name, st.in_system
        )?;
    }
    writeln!(out, "# HELP qserve_busy_servers Servers busy now.")?;
    writeln!(out, "# TYPE qserve_busy_servers gauge")?;
    writeln!(out, "qserve_busy_servers {}", s.busy_servers)?;
    writeln!(
        out,
        "# HELP qserve_busy_seconds_total Server-seconds of service admitted; rate()/c is the utilization."
    )?;
    writeln!(out, "# TYPE qserve_busy_seconds_total counter")?;
    writeln!(out, "qserve_busy_seconds_total {}", s.busy_s)?;
    for st in s.stations {
        writeln!(
            out,
            "qserve_busy_seconds_total{{station=\"{}\"}} {}",
            st.name, st.busy_s
        )?;
    }
    if let Some(area) = s.in_system_s {
        writeln!(
            out,
            "# HELP qserve_in_system_seconds_total Time integral of the number in system \
             (request-seconds); rate() is the mean number in system."
        )?;
        writeln!(out, "# TYPE qserve_in_system_seconds_total counter")?;
        writeln!(out, "qserve_in_system_seconds_total {area}")?;
        for st in s.stations {
            writeln!(
                out,
                "qserve_in_system_seconds_total{{station=\"{}\"}} {}",
                st.name, st.in_system_s
            )?;
        }
    }
    summary(
        out,
        "qserve_sojourn_seconds",
        "Wait plus service of served requests (queue model time); _sum and _count also by class.",
        &s.totals.sojourn,
        s.totals.sojourn_sum_ns,
    )?;
    // The same family, so right after its unlabelled samples: every configured class (a class
    // nobody was served in shows as 0), and any higher one an X-Priority named.
    let by_class = &s.totals.class_sojourn;
    let shown = s.classes.max(by_class.seen()).min(MAX_CLASSES);
    for class in 0..shown {
        writeln!(
            out,
            "qserve_sojourn_seconds_sum{{class=\"{class}\"}} {}",
            by_class.sum_ns[class] as f64 * 1e-9
        )?;
    }
    for class in 0..shown {
        writeln!(
            out,
            "qserve_sojourn_seconds_count{{class=\"{class}\"}} {}",
            by_class.count[class]
        )?;
    }
    // Per station: one visit's wait + service there (the unlabelled series are end to end).
    for st in s.stations {
        writeln!(
            out,
            "qserve_sojourn_seconds_sum{{station=\"{}\"}} {}",
            st.name, st.sojourn_s
        )?;
    }
    for st in s.stations {
        writeln!(
            out,
            "qserve_sojourn_seconds_count{{station=\"{}\"}} {}",
            st.name, st.visits
        )?;
    }
    if !s.stations.is_empty() {
        for (family, help, get) in [
            (
                "qserve_station_visits_total",
                "Visits accepted at each station of the network.",
                (|st: &StationSnapshot<'_>| st.visits) as fn(&StationSnapshot<'_>) -> u64,
            ),
            (
                "qserve_station_blocked_total",
                "Arrivals blocked at each station's capacity (the request is answered 503).",
                |st| st.blocked,
            ),
            (
                "qserve_station_overflow_total",
                "Arrivals over each station's overflow limit (the request is answered 503).",
                |st| st.overflow,
            ),
        ] {
            writeln!(out, "# HELP {family} {help}")?;
            writeln!(out, "# TYPE {family} counter")?;
            for st in s.stations {
                writeln!(out, "{family}{{station=\"{}\"}} {}", st.name, get(st))?;
            }
        }
    }
    if s.stations.iter().any(|st| st.gaps.is_some()) {
        let family = "qserve_station_departure_gap_seconds";
        writeln!(
            out,
            "# HELP {family} Gaps between successive departures from each station in \
             virtual time (Burke's check: Exp(lambda) for an M/M/c station fed by external \
             arrivals)."
        )?;
        writeln!(out, "# TYPE {family} histogram")?;
        for st in s.stations {
            let Some(g) = &st.gaps else { continue };
            for (edge, count) in crate::network::GAP_EDGES_NS.iter().zip(&g.le) {
                writeln!(
                    out,
                    "{family}_bucket{{station=\"{}\",le=\"{}\"}} {count}",
                    st.name,
                    *edge as f64 * 1e-9
                )?;
            }
            writeln!(
                out,
                "{family}_bucket{{station=\"{}\",le=\"+Inf\"}} {}",
                st.name, g.count
            )?;
            writeln!(
                out,
                "{family}_sum{{station=\"{}\"}} {}",
                st.name,
                g.sum_ns as f64 * 1e-9
            )?;
            writeln!(out, "{family}_count{{station=\"{}\"}} {}", st.name, g.count)?;
        }
    }
    summary(
        out,
        "qserve_timer_lateness_seconds",
        "Departure timer fire time minus departure time.",
        &s.totals.lateness,
        s.totals.lateness_sum_ns,
    )?;
    writeln!(out, "# HELP qserve_connections Connections open.")?;
    writeln!(out, "# TYPE qserve_connections gauge")?;
    writeln!(out, "qserve_connections {}", s.connections)?;
    writeln!(
        out,
        "# HELP qserve_connections_total Connections accepted, or rejected over --max-connections."
    )?;
    writeln!(out, "# TYPE qserve_connections_total counter")?;
    writeln!(
        out,
        "qserve_connections_total{{result=\"accepted\"}} {}",
        c.conn_accepted
    )?;
    writeln!(
        out,
        "qserve_connections_total{{result=\"rejected\"}} {}",
        c.conn_rejected
    )?;
    writeln!(
        out,
        "# HELP qserve_connections_closed_total Connections closed by the server, by reason."
    )?;
    writeln!(out, "# TYPE qserve_connections_closed_total counter")?;
    writeln!(
        out,
        "qserve_connections_closed_total{{reason=\"idle\"}} {}",
        c.conn_idle_closed
    )?;
    writeln!(
        out,
        "qserve_connections_closed_total{{reason=\"error\"}} {}",
        c.conn_errors
    )?;
    writeln!(
        out,
        "# HELP qserve_accept_errors_total Failed accept calls."
    )?;
    writeln!(out, "# TYPE qserve_accept_errors_total counter")?;
    writeln!(out, "qserve_accept_errors_total {}", c.accept_errors)?;
    writeln!(
        out,
        "# HELP qserve_memory_trims_total Times freed memory was returned to the system after a \
         peak of connections had closed."
    )?;
    writeln!(out, "# TYPE qserve_memory_trims_total counter")?;
    writeln!(out, "qserve_memory_trims_total {}", c.memory_trims)?;
    let gauges: [(&str, &str, String); 8] = [
        (
            "mu",
            "Configured service rate per server (1/s).",
            format!("{}", s.mu),
        ),
        (
            "servers",
            "Configured number of servers.",
            opt_value(s.servers.map(f64::from)),
        ),
        (
            "capacity",
            "Configured capacity K (requests in system).",
            opt_value(s.capacity.map(f64::from)),
        ),
        (
            "overflow_limit",
            "In-system limit without a capacity.",
            format!("{}", s.overflow_limit),
        ),
        ("threads", "I/O threads.", format!("{}", s.threads)),
        (
            "spin_seconds",
            "Busy-wait margin before each deadline.",
            format!("{}", s.spin_s),
        ),
        (
            "uptime_seconds",
            "Time since start.",
            format!("{}", s.uptime_s),
        ),
        (
            "info",
            "The model (Kendall notation) and service distribution.",
            String::new(),
        ),
    ];
    for (name, help, value) in gauges {
        writeln!(out, "# HELP qserve_{name} {help}")?;
        writeln!(out, "# TYPE qserve_{name} gauge")?;
        if name == "info" {
            writeln!(
                out,
                "qserve_info{{model=\"{}\",service=\"{}\"}} 1",
                s.model, s.service
            )?;
        } else {
            writeln!(out, "qserve_{name} {value}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_moves_counts_and_samples() {
        let mut local = LocalMetrics::default();
        let mut shared = ThreadMetrics::default();
        local.counters.served += 2;
        local.sojourn(1_000, 0);
        local.sojourn(0, 2);
        local.lateness(5_000);
        local.flush_into(&mut shared);
        assert_eq!(shared.counters.served, 2);
        assert_eq!(shared.sojourn.len(), 2);
        assert_eq!(shared.sojourn_sum_ns, 1_000);
        assert_eq!(shared.lateness.len(), 1);
        assert_eq!(shared.class_sojourn.count[..3], [1, 0, 1]);
        assert_eq!(shared.class_sojourn.sum_ns[0], 1_000);
        assert_eq!(shared.class_sojourn.seen(), 3);
        // A second flush adds nothing.
        local.flush_into(&mut shared);
        assert_eq!(shared.counters.served, 2);
        assert_eq!(shared.class_sojourn.count[..3], [1, 0, 1]);
    }

    #[test]
    fn render_names_every_series() {
        let mut totals = ThreadMetrics::default();
        totals.counters.served = 7;
        totals.counters.rejects[Reject::HeadTooLarge.index()] = 2;
        record_ns(&mut totals.sojourn, 2_000_000);
        let snap = Snapshot {
            totals: &totals,
            arrivals: 9,
            in_system: 1,
            busy_servers: 1,
            busy_s: 0.5,
            in_system_s: Some(0.25),
            classes: 1,
            connections: 3,
            mu: 500.0,
            servers: Some(2),
            capacity: None,
            overflow_limit: 100_000,
            threads: 1,
            spin_s: 0.0,
            uptime_s: 1.5,
            model: "M/M/2",
            service: "exp",
            stations: &[],
        };
        let mut out = Vec::new();
        render(&mut out, &snap);
        let text = String::from_utf8(out).expect("utf-8");
        for line in [
            "qserve_requests_total{outcome=\"served\"} 7",
            "qserve_requests_total{outcome=\"head_too_large\"} 2",
            "qserve_in_system 1",
            "qserve_in_system_seconds_total 0.25",
            "qserve_requests_total{outcome=\"bad_priority\"} 0",
            "qserve_requests_total{outcome=\"internal_error\"} 0",
            "qserve_sojourn_seconds_count 1",
            "qserve_timer_lateness_seconds_count 0",
            "qserve_connections 3",
            "qserve_mu 500",
            "qserve_servers 2",
            "qserve_capacity +Inf",
            "qserve_info{model=\"M/M/2\",service=\"exp\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    /// Every configured class is shown (0 when unused), and any higher class served; the
    /// unlabelled totals stay; the in-system integral is absent without a queue.
    #[test]
    fn sojourn_by_class_and_no_integral_without_a_queue() {
        let mut local = LocalMetrics::default();
        let mut totals = ThreadMetrics::default();
        local.sojourn(1_000_000, 0);
        local.sojourn(3_000_000, 0);
        local.sojourn(500_000_000, 4);
        local.flush_into(&mut totals);
        let render_with = |classes: usize, in_system_s: Option<f64>| {
            let snap = Snapshot {
                totals: &totals,
                arrivals: 3,
                in_system: 0,
                busy_servers: 0,
                busy_s: 0.0,
                in_system_s,
                classes,
                connections: 0,
                mu: 10.0,
                servers: Some(1),
                capacity: None,
                overflow_limit: 100_000,
                threads: 1,
                spin_s: 0.0,
                uptime_s: 1.0,
                model: "M/M/1-NP",
                service: "exp",
                stations: &[],
            };
            let mut out = Vec::new();
            render(&mut out, &snap);
            String::from_utf8(out).expect("utf-8")
        };
        let text = render_with(2, None);
        for line in [
            "qserve_sojourn_seconds_count 3",
            "qserve_sojourn_seconds_sum{class=\"0\"} 0.004",
            "qserve_sojourn_seconds_count{class=\"0\"} 2",
            "qserve_sojourn_seconds_count{class=\"1\"} 0",
            "qserve_sojourn_seconds_count{class=\"3\"} 0",
            "qserve_sojourn_seconds_sum{class=\"4\"} 0.5",
            "qserve_sojourn_seconds_count{class=\"4\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("class=\"5\""), "{text}");
        assert!(!text.contains("qserve_in_system_seconds_total"), "{text}");
        // The per-class samples follow the family's own, before the next family's HELP.
        let lines: Vec<&str> = text.lines().collect();
        let first = lines
            .iter()
            .position(|l| l.starts_with("qserve_sojourn_seconds_sum{class="))
            .expect("per-class sums");
        assert_eq!(lines[first - 1], "qserve_sojourn_seconds_count 3");
        assert!(lines[first + 10].starts_with("# HELP qserve_timer_lateness_seconds"));
        // Eight configured classes: all eight, none seen beyond.
        let text = render_with(8, Some(1.5));
        assert!(
            text.contains("qserve_sojourn_seconds_count{class=\"7\"} 0"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l == "qserve_in_system_seconds_total 1.5"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE qserve_in_system_seconds_total counter"),
            "{text}"
        );
    }
}
