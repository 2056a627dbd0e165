//! The reference simulator of open networks of queues ([`crate::network`]): an exact replay of
//! given external arrivals ([`replay_network`]), against which `qserve --network` is held
//! customer by customer, and seeded independent replications at a Poisson rate
//! ([`simulate_network`]).
//!
//! # What a replay computes (the semantics `qserve --network` must match)
//!
//! Every station is a queue as `qserve`'s single queue: `c` servers (or infinitely many) and a
//! discipline (FCFS, LCFS, processor sharing, priority, preemptive priority), the contract of
//! [`crate::network`]'s module docs ("The draws"):
//!
//! - The n-th external arrival draws `u = rng.random::<f64>()` from `rng(seed, ENTRY_STREAM)`
//!   and enters [`Network::hop`]`(None, u)`; then, only when [`Network::classes`] has more than
//!   one class, one uniform from `rng(seed, CLASS_STREAM)` gives its class
//!   ([`Classes::draw`](crate::model::Classes::draw)), which it keeps on its whole route (the
//!   `classes` argument of [`replay_network`] may override it; the draw is made all the same).
//!   The n-th arrival at station `j` (external or a transfer, admitted or blocked) draws first
//!   its service time `sampler.sample_ns(&mut s)` with `s = rng(seed, service_stream(j))` and
//!   `sampler` station `j`'s [`Model::sampler`], then `u = r.random::<f64>()` with `r = rng(seed,
//!   route_stream(j))`, and goes next to [`Network::hop`]`(Some(j), u)` when it leaves `j`.
//!   `random::<f64>()` is `rand`'s standard uniform on [0, 1) (53 random bits).
//! - At an arrival at `j` at time `a`, every departure from `j` at or before `a` has happened.
//!   If the requests present are `limit_j` or more the arrival is blocked: the request leaves
//!   the network at `a` ([`NetFate::Blocked`]; the blocked visit is not in its visits).
//!   `limit_j` is the station's capacity K, or the `limit` argument (the overflow limit) when it
//!   has none.
//! - Two kinds of station. *Decided at admission*: FCFS with finite servers, any discipline with
//!   infinitely many servers, any station with zero service. With `c` servers FCFS, `start =
//!   max(a, earliest free time of the c servers)`, on that server, which is free again at `d =
//!   start + S` (Lindley's recursion for `c = 1`); with infinitely many, `start = a`, `d = a +
//!   S`; zero service gives `S = 0`, `d = a`. The transfer to the next station (or the exit) at
//!   `d` is created at the admission. *Event-driven*: every other station (LCFS, PS, priority,
//!   preemptive priority with finite servers and non-zero service), an engine of the single
//!   queue's semantics ([`crate::sim::replay`]: the next departure is the one the discipline
//!   gives if nothing else arrives); the transfer (or exit) is created when the departure is
//!   processed, at its time. Processor sharing keeps fractional virtual time and reports each
//!   departure rounded to the nearest ns, which is the transfer's time.
//! - The order of events. Let `next` be the earliest of the earliest pending transfer and every
//!   event-driven station's next departure. Before an external arrival at `t` (and at the end,
//!   with `t = ∞`), while `next <= t`: if some event-driven station has a departure at `next`,
//!   the lowest-indexed such station processes exactly one departure (its earliest arrival
//!   first among simultaneous ones), whose transfer is created then, with the next creation
//!   number; otherwise the earliest transfer (by time, then creation number) arrives at its
//!   station. Then the external arrival. So at one instant: departures first, then transfers
//!   (oldest first), then external arrivals in the order given. This fixes which arrival at a
//!   station is the n-th (its draws) and the order of arrivals at one instant.
//! - A transfer has no delay: the departure from `i` at `d` is the arrival at the next station
//!   at `d`, or the exit at `d` ([`NetFate::Exited`]).
//!
//! # Replications
//!
//! [`simulate_network`]'s replication `r` is exactly [`replay_network`] of the network with seed
//! [`replication_seed`]`(opts.seed, r)` (the classes drawn) on Poisson arrivals drawn from
//! `rng(that seed, 0)` (stream 0 is none of the network's streams) by [`Schedule`]`::next_ns`,
//! the first `opts.warmup` external arrivals discarded and the next `opts.customers` measured.
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hdrhistogram::Histogram;
use rand::RngExt;

use super::Estimate;
use super::SimOptions;
use super::engine::Engine;
#[cfg(doc)]
use crate::model::Model;
use crate::model::{Discipline, MAX_CLASSES, Servers, ServiceKind};
use crate::network::{ENTRY_STREAM, Hop, Network, Station, route_stream, service_stream};
use crate::samplers::{self, ArrivalKind, CLASS_STREAM, Schedule, ServiceSampler};
use crate::stats;

/// One visit of a request at a station (all times in ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    /// The station (its index in [`Network::stations`]).
    pub station: usize,
    /// Its arrival at the station.
    pub arrive_ns: u64,
    /// The start of its service: when a server first took it (under processor sharing its
    /// arrival; under preemptive priority its first start, preempted or not after).
    pub start_ns: u64,
    /// Its departure: `start_ns + service_ns` when it was served without a break (every
    /// discipline but processor sharing and preemptive priority, where it is later when it
    /// shared or lost its server).
    pub depart_ns: u64,
    /// Its service time (its work).
    pub service_ns: u64,
}

/// What became of an external arrival in [`replay_network`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetFate {
    /// It left the network at `at_ns` after `visits`.
    Exited {
        /// Its exit (the departure of its last visit).
        at_ns: u64,
        /// Its priority class (0 the highest), kept on its whole route.
        class: u8,
        /// Its visits in order.
        visits: Vec<Visit>,
    },
    /// It was blocked at `station` at `at_ns` (the station held its capacity or the overflow
    /// limit) after `visits` (which do not include the blocked one).
    Blocked {
        /// The instant of the blocked arrival.
        at_ns: u64,
        /// Its priority class (0 the highest).
        class: u8,
        /// The station that turned it away.
        station: usize,
        /// Its visits before.
        visits: Vec<Visit>,
    },
}

impl NetFate {
    /// Its visits.
    pub fn visits(&self) -> &[Visit] {
        match self {
            NetFate::Exited { visits, .. } | NetFate::Blocked { visits, .. } => visits,
        }
    }

    /// When it left the network (exit or blocking).
    pub fn at_ns(&self) -> u64 {
        match self {
            NetFate::Exited { at_ns, .. } | NetFate::Blocked { at_ns, .. } => *at_ns,
        }
    }

    /// Its priority class.
    pub fn class(&self) -> u8 {
        match self {
            NetFate::Exited { class, .. } | NetFate::Blocked { class, .. } => *class,
        }
    }
}

/// The fate of each external arrival of `arrivals_ns` (non-decreasing, ns) in `net` with the
/// draws of `seed`, `limit` being the overflow limit of a station without a capacity; exactly as
/// the module docs say. `classes`: `None`, each arrival has the class it draws (one class: 0);
/// `Some(c)`, arrival `i` has class `c[i]` (at most [`MAX_CLASSES`]` − 1`, as `qserve` clamps
/// `X-Priority`) instead, its class draw still made (an arrival beyond `c`'s length keeps the
/// drawn one).
///
/// # Panics
/// If the arrival times decrease.
pub fn replay_network(
    net: &Network,
    seed: u64,
    arrivals_ns: &[u64],
    limit: usize,
    classes: Option<&[u8]>,
) -> Vec<NetFate> {
    let mut fates: Vec<Option<NetFate>> = vec![None; arrivals_ns.len()];
    run(net, seed, arrivals_ns, limit, classes, |i, fate| {
        if let Some(f) = fates.get_mut(i) {
            *f = Some(fate);
        }
    });
    fates
        .into_iter()
        .map(|f| {
            // Every request ends (the exit is reachable from every station).
            f.unwrap_or(NetFate::Exited {
                at_ns: 0,
                class: 0,
                visits: Vec::new(),
            })
        })
        .collect()
}

/// Whether station `s` is decided at admission (see the module docs), else event-driven.
fn decided_at_admission(s: &Station) -> bool {
    let m = &s.model;
    m.service == ServiceKind::Zero
        || m.servers == Servers::Infinite
        || m.discipline == Discipline::Fcfs
}

/// How a station under replay serves.
enum Serving {
    /// Decided at admission: the free times of the c servers (a min-heap; `None` for infinitely
    /// many) and the departures of the requests present (a min-heap).
    Admission {
        free: Option<BinaryHeap<Reverse<u64>>>,
        pending: BinaryHeap<Reverse<u64>>,
    },
    /// Event-driven: the single queue's engine (ids are request indices) and its next
    /// departure's time, kept up to date.
    Events { engine: Engine, next: Option<u64> },
}

/// One station under replay.
struct StationState {
    sampler: ServiceSampler,
    service_rng: samplers::Rng,
    route_rng: samplers::Rng,
    serving: Serving,
    limit: usize,
}

/// A transfer: `(time, creation order, request, station)`, taken smallest first.
type Transfer = Reverse<(u64, u64, usize, usize)>;

/// The state of a replay but the stations: the requests' visits, classes and pending route
/// draws, and the transfers.
struct Requests<'a, F: FnMut(usize, NetFate)> {
    net: &'a Network,
    visits: Vec<Vec<Visit>>,
    class: Vec<u8>,
    /// The route uniform and service time drawn at a request's arrival at an event-driven
    /// station, used when it leaves.
    drawn: Vec<(f64, u64)>,
    transfers: BinaryHeap<Transfer>,
    created: u64,
    on_fate: F,
}

impl<F: FnMut(usize, NetFate)> Requests<'_, F> {
    /// Request `r` leaves station `j` at `d` after drawing `u`: a transfer created now, or its
    /// exit.
    fn leave(&mut self, r: usize, j: usize, d: u64, u: f64) {
        match self.net.hop(Some(j), u) {
            Hop::Station(k) => {
                self.transfers.push(Reverse((d, self.created, r, k)));
                self.created += 1;
            }
            Hop::Exit => (self.on_fate)(
                r,
                NetFate::Exited {
                    at_ns: d,
                    class: self.class[r],
                    visits: std::mem::take(&mut self.visits[r]),
                },
            ),
        }
    }

    /// The arrival of request `r` at station `j` at `t`.
    fn arrive(&mut self, st: &mut StationState, r: usize, j: usize, t: u64) {
        let service = st.sampler.sample_ns(&mut st.service_rng);
        let u = st.route_rng.random::<f64>();
        let admitted = match &mut st.serving {
            Serving::Admission { free, pending } => {
                while pending.peek().is_some_and(|&Reverse(d)| d <= t) {
                    pending.pop();
                }
                if pending.len() >= st.limit {
                    false
                } else {
                    let start = match free {
                        None => t,
                        Some(free) => {
                            let earliest = free.pop().map_or(0, |Reverse(f)| f);
                            let start = t.max(earliest);
                            free.push(Reverse(start.saturating_add(service)));
                            start
                        }
                    };
                    let d = start.saturating_add(service);
                    pending.push(Reverse(d));
                    self.visits[r].push(Visit {
                        station: j,
                        arrive_ns: t,
                        start_ns: start,
                        depart_ns: d,
                        service_ns: service,
                    });
                    self.leave(r, j, d, u);
                    true
                }
            }
            Serving::Events { engine, next } => {
                let ok = engine.arrive(r as u64, t, service, self.class[r]);
                if ok {
                    self.drawn[r] = (u, service);
                    *next = engine.next_departure_ns();
                }
                ok
            }
        };
        if !admitted {
            (self.on_fate)(
                r,
                NetFate::Blocked {
                    at_ns: t,
                    class: self.class[r],
                    station: j,
                    visits: std::mem::take(&mut self.visits[r]),
                },
            );
        }
    }

    /// Every event up to `t` (see the module docs, "The order of events").
    fn process_to(&mut self, stations: &mut [StationState], t: u64) {
        loop {
            // The earliest departure of an event-driven station, the lowest index on a tie.
            let departure = stations
                .iter()
                .enumerate()
                .filter_map(|(j, s)| match s.serving {
                    Serving::Events { next: Some(d), .. } => Some((d, j)),
                    _ => None,
                })
                .min();
            let transfer = self.transfers.peek().map(|&Reverse((at, ..))| at);
            match (departure, transfer) {
                (Some((d, j)), tr) if d <= t && tr.is_none_or(|at| d <= at) => {
                    let Serving::Events { engine, next } = &mut stations[j].serving else {
                        unreachable!("only event-driven stations have departures")
                    };
                    // Due at `d`: the earliest, whatever the bound.
                    let Some(dep) = engine.depart_by(u64::MAX) else {
                        *next = None;
                        continue;
                    };
                    *next = engine.next_departure_ns();
                    let r = usize::try_from(dep.id).unwrap_or(usize::MAX);
                    let (u, service) = self.drawn[r];
                    self.visits[r].push(Visit {
                        station: j,
                        arrive_ns: dep.arrival_ns,
                        start_ns: dep.start_ns,
                        depart_ns: dep.departure_ns,
                        service_ns: service,
                    });
                    self.leave(r, j, dep.departure_ns, u);
                }
                (_, Some(at)) if at <= t => {
                    if let Some(Reverse((at, _, r, k))) = self.transfers.pop() {
                        self.arrive(&mut stations[k], r, k, at);
                    }
                }
                _ => return,
            }
        }
    }
}

/// The replay: calls `on_fate(i, fate)` for each external arrival `i` once it has left.
fn run(
    net: &Network,
    seed: u64,
    arrivals_ns: &[u64],
    limit: usize,
    classes: Option<&[u8]>,
    on_fate: impl FnMut(usize, NetFate),
) {
    let mut stations: Vec<StationState> = net
        .stations
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let limit = s
                .model
                .capacity
                .map_or(limit, |k| usize::try_from(k).unwrap_or(usize::MAX));
            let serving = if decided_at_admission(s) {
                Serving::Admission {
                    free: match s.model.servers {
                        Servers::Finite(c) => Some((0..c.max(1)).map(|_| Reverse(0)).collect()),
                        Servers::Infinite => None,
                    },
                    pending: BinaryHeap::new(),
                }
            } else {
                Serving::Events {
                    engine: Engine::new(&s.model, limit),
                    next: None,
                }
            };
            StationState {
                sampler: s.model.sampler(),
                service_rng: samplers::rng(seed, service_stream(j)),
                route_rng: samplers::rng(seed, route_stream(j)),
                serving,
                limit,
            }
        })
        .collect();
    let mut entry_rng = samplers::rng(seed, ENTRY_STREAM);
    let mut class_rng = samplers::rng(seed, CLASS_STREAM);
    let mut req = Requests {
        net,
        visits: vec![Vec::new(); arrivals_ns.len()],
        class: vec![0; arrivals_ns.len()],
        drawn: vec![(0.0, 0); arrivals_ns.len()],
        transfers: BinaryHeap::new(),
        created: 0,
        on_fate,
    };
    let top = u8::try_from(MAX_CLASSES - 1).unwrap_or(u8::MAX);
    let mut last = 0;
    for (i, &a) in arrivals_ns.iter().enumerate() {
        assert!(
            a >= last,
            "replay_network: arrival {i} at {a} ns is before the one ahead of it ({last} ns)"
        );
        last = a;
        req.process_to(&mut stations, a);
        let u = entry_rng.random::<f64>();
        let drawn = if net.classes.len() > 1 {
            net.classes.draw(class_rng.random::<f64>())
        } else {
            0
        };
        req.class[i] = classes
            .and_then(|c| c.get(i))
            .map_or(drawn, |&c| c.min(top));
        match net.hop(None, u) {
            Hop::Station(j) => req.arrive(&mut stations[j], i, j, a),
            // Not for a parsed network (the entry names stations only).
            Hop::Exit => (req.on_fate)(
                i,
                NetFate::Exited {
                    at_ns: a,
                    class: req.class[i],
                    visits: Vec::new(),
                },
            ),
        }
    }
    req.process_to(&mut stations, u64::MAX);
}

/// The seed of replication `r` of [`simulate_network`]: `seed` for `r = 0`, else `seed` XOR
/// `r·0x9E3779B97F4A7C15` (the generator's seeding hashes it, so nearby seeds give unrelated
/// streams).
pub fn replication_seed(seed: u64, r: u32) -> u64 {
    seed ^ u64::from(r).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// One station of a [`NetworkSimResult`].
#[derive(Debug, Clone, PartialEq)]
pub struct StationSim {
    /// Its name.
    pub name: String,
    /// Visits (admitted) per measured external arrival.
    pub visits: Estimate,
    /// Busy time over c × the measured span (with infinitely many servers: over the span, the
    /// mean number in service).
    pub utilisation: Estimate,
    /// Mean number present L (time average over the measured span).
    pub in_system: Estimate,
    /// Mean sojourn per admitted visit W (s) of the measured requests.
    pub mean_s: Estimate,
    /// Fraction of the measured requests' arrivals at it that it blocked.
    pub blocking: Estimate,
}

/// A network simulated at an external Poisson rate ([`simulate_network`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSimResult {
    /// Replications run.
    pub replications: u32,
    /// External arrivals measured per replication.
    pub customers: u64,
    /// Per station, in file order.
    pub stations: Vec<StationSim>,
    /// Mean end-to-end sojourn of the requests that exited (s).
    pub mean_s: Estimate,
    /// Its median (s).
    pub p50_s: Estimate,
    /// Its 90th percentile (s).
    pub p90_s: Estimate,
    /// Its 99th percentile (s).
    pub p99_s: Estimate,
    /// Fraction of the measured requests blocked somewhere.
    pub blocking: Estimate,
    /// Mean number in the network (time average, Σ of the stations').
    pub in_system: Estimate,
    /// Mean end-to-end sojourn per class of the requests that exited (s), class 0 first: one
    /// entry per class of [`Network::classes`].
    pub class_mean_s: Vec<Estimate>,
    /// Every measured end-to-end sojourn (of the requests that exited) of every replication, in
    /// ns, as an HDR histogram serialized by [`crate::stats::histogram_to_string`] (as
    /// [`super::SimResult::histogram`], for goodness of fit against a measurement).
    pub histogram: String,
}

/// `net` with Poisson external arrivals at `lambda`, simulated per `opts` (see the module docs,
/// "Replications"); no overflow limit (a station without a capacity never blocks).
///
/// The measured span is from the arrival of the first measured request to the arrival that
/// follows the last; time averages (L, utilisation) integrate over it the visits of every
/// request, measured or not; the per-visit and end-to-end values are those of the measured
/// requests, each followed to its end.
///
/// # Panics
/// If `lambda` is not positive and finite.
pub fn simulate_network(net: &Network, lambda: f64, opts: &SimOptions) -> NetworkSimResult {
    assert!(
        lambda.is_finite() && lambda > 0.0,
        "simulate_network: the arrival rate must be positive and finite, got {lambda}"
    );
    let mut pooled = stats::new_histogram();
    // One replication at a time, each histogram merged and dropped.
    let runs: Vec<NetRun> = (0..opts.replications)
        .map(|r| {
            let (run, histogram) = net_replication(net, lambda, opts, r);
            stats::merge_histogram(&mut pooled, &histogram);
            run
        })
        .collect();
    let estimate = |f: &dyn Fn(&NetRun) -> f64| {
        Estimate::from_replications(&runs.iter().map(f).collect::<Vec<_>>())
    };
    let stations = net
        .stations
        .iter()
        .enumerate()
        .map(|(j, s)| StationSim {
            name: s.name.clone(),
            visits: estimate(&|r| r.stations[j][0]),
            utilisation: estimate(&|r| r.stations[j][1]),
            in_system: estimate(&|r| r.stations[j][2]),
            mean_s: estimate(&|r| r.stations[j][3]),
            blocking: estimate(&|r| r.stations[j][4]),
        })
        .collect();
    NetworkSimResult {
        replications: opts.replications,
        customers: opts.customers,
        stations,
        mean_s: estimate(&|r| r.mean_s),
        p50_s: estimate(&|r| r.quantiles_s[0]),
        p90_s: estimate(&|r| r.quantiles_s[1]),
        p99_s: estimate(&|r| r.quantiles_s[2]),
        blocking: estimate(&|r| r.blocking),
        in_system: estimate(&|r| r.in_system),
        class_mean_s: (0..net.classes.len())
            .map(|k| estimate(&|r| r.class_mean_s[k]))
            .collect(),
        histogram: stats::histogram_to_string(&pooled),
    }
}

/// The values of one replication: per station [visits, utilisation, L, W, blocking].
struct NetRun {
    stations: Vec<[f64; 5]>,
    mean_s: f64,
    quantiles_s: [f64; 3],
    blocking: f64,
    in_system: f64,
    class_mean_s: Vec<f64>,
}

/// The length of `[lo, hi] ∩ [a, b]` (ns).
fn overlap(lo: u64, hi: u64, a: u64, b: u64) -> u64 {
    hi.min(b).saturating_sub(lo.max(a))
}

/// One replication: its values and the histogram of its measured end-to-end sojourns (ns).
fn net_replication(
    net: &Network,
    lambda: f64,
    opts: &SimOptions,
    r: u32,
) -> (NetRun, Histogram<u64>) {
    let seed = replication_seed(opts.seed, r);
    let mut arrival_rng = samplers::rng(seed, 0);
    let mut schedule = Schedule::new(ArrivalKind::Poisson, lambda);
    let warmup = usize::try_from(opts.warmup).unwrap_or(usize::MAX);
    let total = warmup.saturating_add(usize::try_from(opts.customers).unwrap_or(usize::MAX));
    // One more arrival than fed: the end of the measured span.
    let arrivals: Vec<u64> = (0..=total)
        .map(|_| schedule.next_ns(&mut arrival_rng))
        .collect();
    let (span_lo, span_hi) = (arrivals[warmup.min(total)], arrivals[total]);
    let span = span_hi.saturating_sub(span_lo) as f64;
    let n = net.stations.len();
    let mut area = vec![0u128; n];
    let mut busy = vec![0u128; n];
    let mut count = vec![0u64; n];
    let mut sum_ns = vec![0u128; n];
    let mut blocked_at = vec![0u64; n];
    let mut histogram: Histogram<u64> = stats::new_histogram();
    let (mut exited, mut exit_sum_ns, mut blocked) = (0u64, 0u128, 0u64);
    let mut class_count = vec![0u64; net.classes.len()];
    let mut class_sum_ns = vec![0u128; net.classes.len()];
    run(
        net,
        seed,
        &arrivals[..total],
        usize::MAX,
        None,
        |i, fate: NetFate| {
            for v in fate.visits() {
                area[v.station] += u128::from(overlap(v.arrive_ns, v.depart_ns, span_lo, span_hi));
                // The work done in the span: exact for a visit served without a break; under PS or
                // preemption, exact for a visit inside the span or outside it, and within one
                // service time for one across an end of it.
                let worked = v.depart_ns.saturating_sub(v.service_ns);
                busy[v.station] += u128::from(overlap(worked, v.depart_ns, span_lo, span_hi));
            }
            if i < warmup {
                return;
            }
            for v in fate.visits() {
                count[v.station] += 1;
                sum_ns[v.station] += u128::from(v.depart_ns - v.arrive_ns);
            }
            match fate {
                NetFate::Exited { at_ns, class, .. } => {
                    let t = at_ns - arrivals[i];
                    stats::record_ns(&mut histogram, t);
                    exited += 1;
                    exit_sum_ns += u128::from(t);
                    let k = usize::from(class);
                    if let (Some(c), Some(s)) = (class_count.get_mut(k), class_sum_ns.get_mut(k)) {
                        *c += 1;
                        *s += u128::from(t);
                    }
                }
                NetFate::Blocked { station, .. } => {
                    blocked += 1;
                    blocked_at[station] += 1;
                }
            }
        },
    );
    let measured = opts.customers as f64;
    let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { f64::NAN };
    let stations = (0..n)
        .map(|j| {
            let servers = match net.stations[j].model.servers {
                Servers::Finite(c) => f64::from(c),
                Servers::Infinite => 1.0,
            };
            [
                ratio(count[j] as f64, measured),
                ratio(busy[j] as f64, servers * span),
                ratio(area[j] as f64, span),
                ratio(sum_ns[j] as f64 / 1e9, count[j] as f64),
                ratio(blocked_at[j] as f64, (count[j] + blocked_at[j]) as f64),
            ]
        })
        .collect();
    let quantile = |q: f64| {
        if exited == 0 {
            f64::NAN
        } else {
            histogram.value_at_quantile(q) as f64 / 1e9
        }
    };
    let run = NetRun {
        stations,
        mean_s: ratio(exit_sum_ns as f64 / 1e9, exited as f64),
        quantiles_s: [quantile(0.5), quantile(0.9), quantile(0.99)],
        blocking: ratio(blocked as f64, measured),
        in_system: ratio(area.iter().sum::<u128>() as f64, span),
        class_mean_s: class_count
            .iter()
            .zip(&class_sum_ns)
            .map(|(&c, &s)| ratio(s as f64 / 1e9, c as f64))
            .collect(),
    };
    (run, histogram)
}
