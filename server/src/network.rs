//! The network model: an open network of stations ([`Network`]) computed in virtual time,
//! exact and deterministic for a seed, with no I/O.
//!
//! Each station is a [`QueueModel`] (any discipline: FCFS, LCFS, processor sharing, priority
//! with or without preemption; `c` servers or infinitely many, a capacity, any service
//! distribution) whose service times come from the station's own stream, and the draws follow
//! the contract of [`queuelab_common::network`]'s module docs: an external arrival draws its
//! entry station from [`ENTRY_STREAM`] and then, when the network has several classes
//! (`classes` at the top level of the file), its class from [`CLASS_STREAM`] (a request's
//! `X-Priority` overrides it, the draw being made anyway); an arrival at station `j` draws its
//! service time from [`service_stream`]`(j)` and then one uniform from [`route_stream`]`(j)`
//! (both drawn also when it is then blocked), which decides its hop when it leaves `j`. The
//! class belongs to the request for its whole route: priority stations serve by it, the others
//! ignore it.
//!
//! # Two kinds of station
//!
//! - *Decided at admission*: FCFS with finitely many servers, any discipline with infinitely
//!   many servers, and zero service. A departure is final at the arrival there (Lindley: it
//!   depends only on earlier arrivals at that station), so the departure from `i` at `d`, which
//!   is the arrival at the next station `j` at `d`, is known as soon as the arrival at `i` is
//!   processed, and is kept at once as a pending *transfer* in a min-heap keyed by
//!   `(d, creation sequence)`.
//! - *Event-driven*: every other station (LCFS, PS, priority, preemptive priority with finitely
//!   many servers). Its queue's event engine gives the time of its next departure if nothing else
//!   arrived ([`QueueModel::next_departure_ns`]) and processes exactly that departure
//!   ([`QueueModel::depart_next`]); the transfer (or the exit) is created when the departure is
//!   processed, at its time.
//!
//! # The order of events, and why it is exact
//!
//! Let `next` be the earliest of the earliest pending transfer and every event-driven station's
//! next departure. To process everything up to `t` (before an external arrival at `t`, and at
//! any poll or read at `t`), while `next ≤ t`: if an event-driven station departs at `next`, the
//! lowest-indexed such station processes exactly one departure (among simultaneous ones at a
//! station, the earliest arrival there leaves first) and creates its transfer with the next
//! creation number; otherwise the earliest transfer (by time, then creation) arrives at its
//! station: it draws its service and hop and is admitted, blocked or turned away. Then the
//! external arrival is processed. At one instant, then: departures, then transfers (the older
//! first), then external arrivals.
//!
//! Every event is processed at its own time and in that one order. An event-driven station's
//! next departure can only be postponed by later arrivals, never advanced (see the
//! [queue module docs](crate::queue), "Why a tentative departure is never late"), and the
//! arrivals at a station are processed in time order, so the next departure the rule takes is
//! the real one: nothing that happens later can come before it. A decided station's departures
//! are final at admission. So every station sees the arrivals the contract says in the order it
//! says, and the fate of every request depends only on the seed, the external arrival times and
//! the classes they name, never on when or how often threads poll: a poll or read at `t`
//! processes the events up to `t` that the next external arrival would process anyway, in the
//! same order. An external arrival earlier than the last time processed (two threads' clock
//! reads racing for the lock) is clamped to it, as the single queue clamps its arrivals.
//!
//! # Tickets and memory
//!
//! An accepted request gets a [`NetTicket`] (its slot in the model's slab and the slot's
//! generation) with a lower bound of its answer time: the lower bound at its current station —
//! the departure at a decided station, the engine's tentative departure at an event-driven one
//! (later arrivals only postpone it), or the time of its pending transfer. [`NetworkModel::poll`]
//! answers [`NetPoll::Done`] once it has exited or been blocked by `now`, else
//! [`NetPoll::Pending`] with a later lower bound (every event up to `now` has been processed,
//! so the current station's bound is later than `now`). The slab holds the requests in the
//! network plus the finished ones not yet polled (bounded by the connections' pipelines); each
//! keeps its first [`MAX_VISITS`] visits in a fixed array and only the count and the sums of
//! the others, so nothing is allocated per request once the slab, the heaps and the engines
//! have grown to the load.
//!
//! # Departure gaps (Burke's check)
//!
//! Each station keeps a histogram of the gaps between its successive departures in virtual
//! time ([`DepartureGaps`]), with the fixed log-spaced edges [`GAP_EDGES_NS`]: counts per edge
//! (a gap of `g` ns is counted at every edge `≥ g`, as a Prometheus histogram's cumulative `le`
//! buckets), their sum and count, preallocated and updated under the model's mutex. Departures
//! are recorded in time order as the model's clock passes them: an event-driven station's when
//! they are processed; a decided station's (computed at admission, out of time order with
//! several servers) go through a per-station min-heap of the departures not yet passed. By
//! Burke's theorem the departures of an M/M/1 (or M/M/c) queue in its steady state are a
//! Poisson process: the gaps of a station fed only by external (Poisson) arrivals are then
//! Exp(λ_j); an M/D/1 station's are not.
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use queuelab_common::model::{Classes, MAX_CLASSES};
use queuelab_common::network::{ENTRY_STREAM, Hop, Network, route_stream, service_stream};
use queuelab_common::samplers::{CLASS_STREAM, Rng, ServiceSampler, rng};
use rand::RngExt;

use crate::queue::{Outcome, Poll, QueueModel, Service, Ticket};

/// Buckets of a [`DepartureGaps`] histogram: log-spaced edges from 1 µs to 10 s.
pub const GAP_BUCKETS: usize = 48;

/// The upper edges (ns) of the departure-gap buckets: `round(1000 · 10^(7k/47))` for
/// k = 0‥47, 1 µs to 10 s, a factor 10^(7/47) ≈ 1.41 apart (the `le` of
/// `qserve_station_departure_gap_seconds_bucket` is the edge in seconds; `+Inf` holds the rest).
pub const GAP_EDGES_NS: [u64; GAP_BUCKETS] = [
    1_000,
    1_409,
    1_986,
    2_798,
    3_942,
    5_555,
    7_827,
    11_029,
    15_541,
    21_899,
    30_858,
    43_481,
    61_268,
    86_332,
    121_648,
    171_413,
    241_534,
    340_341,
    479_569,
    675_752,
    952_190,
    1_341_713,
    1_890_583,
    2_663_986,
    3_753_774,
    5_289_374,
    7_453_160,
    10_502_111,
    14_798_332,
    20_852_059,
    29_382_254,
    41_401_996,
    58_338_794,
    82_204_126,
    115_832_329,
    163_217_213,
    229_986_385,
    324_069_604,
    456_640_543,
    643_443_826,
    906_664_911,
    1_277_564_921,
    1_800_193_333,
    2_536_619_456,
    3_574_304_018,
    5_036_486_331,
    7_096_820_648,
    10_000_000_000,
];

/// The departure gaps of one station (see the module docs): cumulative counts at each of
/// [`GAP_EDGES_NS`], their count (the `+Inf` bucket) and sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepartureGaps {
    /// Gaps `≤ GAP_EDGES_NS[k]`.
    pub le: [u64; GAP_BUCKETS],
    /// Gaps recorded.
    pub count: u64,
    /// Their sum (ns).
    pub sum_ns: u128,
    /// The last departure (none yet: no gap for the first).
    last_ns: Option<u64>,
}

impl Default for DepartureGaps {
    fn default() -> Self {
        DepartureGaps {
            le: [0; GAP_BUCKETS],
            count: 0,
            sum_ns: 0,
            last_ns: None,
        }
    }
}

impl DepartureGaps {
    /// Records a departure at `d_ns` (the gap since the one before, if any).
    pub fn depart(&mut self, d_ns: u64) {
        if let Some(last) = self.last_ns {
            let g = d_ns.saturating_sub(last);
            // The first edge at or above g; every edge from there up counts it.
            let k = GAP_EDGES_NS.partition_point(|&e| e < g);
            for c in &mut self.le[k..] {
                *c += 1;
            }
            self.count += 1;
            self.sum_ns += u128::from(g);
        }
        self.last_ns = Some(self.last_ns.map_or(d_ns, |l| l.max(d_ns)));
    }
}

/// Visits of a request kept one by one for its `Server-Timing` (the later ones are summed): with
/// two durations each plus `rest` and `late`, an answer has at most 16 durations, what a client
/// such as qload keeps.
pub const MAX_VISITS: usize = 7;

/// One visit of a request to a station.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Visit {
    /// The station's index.
    pub station: u16,
    /// Arrival at the station (ns).
    pub arrive_ns: u64,
    /// Start of service.
    pub start_ns: u64,
    /// Departure.
    pub depart_ns: u64,
    /// Service time.
    pub service_ns: u64,
}

impl Visit {
    /// The visit of a request served at station `j` with the single queue's times `sv`; its start
    /// is the arrival plus the wait, i.e. the departure less the service (under PS and
    /// preemption, where service is not one stretch, that is not when it was first served).
    fn served(j: usize, sv: &Service) -> Self {
        Visit {
            station: j as u16,
            arrive_ns: sv.arrival_ns,
            start_ns: sv.arrival_ns + sv.wait_ns,
            depart_ns: sv.departure_ns,
            service_ns: sv.service_ns,
        }
    }
}

/// How a request left the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Exited after its last visit.
    Exited,
    /// Blocked at a full station (its capacity reached): a 503.
    Blocked {
        /// The station.
        station: u16,
    },
    /// Turned away at a station without a capacity that held its overflow limit: a 503.
    Overflow {
        /// The station.
        station: u16,
    },
}

/// The record of a finished request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// External arrival time (after clamping).
    pub arrival_ns: u64,
    /// When it left the network (exit, or the blocking arrival).
    pub end_ns: u64,
    /// How.
    pub end: End,
    /// The first [`MAX_VISITS`] visits, in order.
    pub visits: [Visit; MAX_VISITS],
    /// Visits made (completed, not counting a blocked arrival); those beyond [`MAX_VISITS`] are
    /// only summed.
    pub n_visits: u32,
    /// Σ wait of the visits beyond [`MAX_VISITS`].
    pub rest_wait_ns: u64,
    /// Σ service of the visits beyond [`MAX_VISITS`].
    pub rest_service_ns: u64,
    /// The request's priority class (for its whole route; 0 with one class).
    pub class: u8,
}

impl Route {
    fn new(arrival_ns: u64, class: u8) -> Self {
        Route {
            class,
            arrival_ns,
            end_ns: arrival_ns,
            end: End::Exited,
            visits: [Visit::default(); MAX_VISITS],
            n_visits: 0,
            rest_wait_ns: 0,
            rest_service_ns: 0,
        }
    }

    /// The visits kept one by one.
    pub fn kept(&self) -> &[Visit] {
        &self.visits[..(self.n_visits as usize).min(MAX_VISITS)]
    }

    /// Σ (wait + service) over every visit: the end-to-end sojourn of an exited request.
    pub fn sojourn_ns(&self) -> u64 {
        let kept: u64 = self.kept().iter().map(|v| v.depart_ns - v.arrive_ns).sum();
        kept + self.rest_wait_ns + self.rest_service_ns
    }

    fn push(&mut self, v: Visit) {
        match self.visits.get_mut(self.n_visits as usize) {
            Some(slot) => *slot = v,
            None => {
                self.rest_wait_ns += v.start_ns - v.arrive_ns;
                self.rest_service_ns += v.service_ns;
            }
        }
        self.n_visits = self.n_visits.saturating_add(1);
    }
}

/// A request accepted into the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetTicket {
    /// Its slot in the model.
    pub id: u32,
    /// That slot's generation (a finished slot's old tickets are refused).
    pub generation: u32,
    /// A lower bound of its answer time (ns): the lower bound of its departure from its first
    /// station.
    pub tentative_ns: u64,
}

/// What happens to an external arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetOutcome {
    /// In the network: poll the ticket once the clock passes `tentative_ns`.
    Accepted(NetTicket),
    /// Blocked or turned away at its entry station at once (no visits).
    Refused(End),
}

/// The answer of [`NetworkModel::poll`].
// Returned by value once per request; boxing the route would allocate on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetPoll {
    /// It has left the network by the time polled; its slot is freed.
    Done(Route),
    /// Not yet: it leaves no earlier than this (ns, later than the time polled).
    Pending(u64),
    /// The ticket is unknown (already answered, released, or of another model).
    Unknown,
}

/// Counters of one station.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StationStats {
    /// Arrivals at it (external and transfers).
    pub arrivals: u64,
    /// Visits accepted.
    pub visits: u64,
    /// Arrivals blocked at its capacity.
    pub blocked: u64,
    /// Arrivals over its overflow limit.
    pub overflow: u64,
    /// Σ service times of its visits (server-ns).
    pub busy_ns: u128,
    /// Σ (departure − arrival) of its visits (an event-driven station's counted at departure).
    pub sojourn_ns: u128,
    /// Gaps between successive departures, those the clock has passed (see the module docs).
    pub gaps: DepartureGaps,
}

#[derive(Debug)]
struct StationState {
    queue: QueueModel,
    sampler: ServiceSampler,
    service_rng: Rng,
    route_rng: Rng,
    stats: StationStats,
    /// Event-driven (see the module docs): departures are processed one by one.
    event: bool,
    /// Event-driven: the network slot of each of the engine's slots.
    owner: Vec<u32>,
    /// Decided at admission: departures the clock has not passed yet, earliest on top.
    unpassed: BinaryHeap<Reverse<u64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    /// In the network: leaves its current station (decided at admission) or arrives at the
    /// next one (a pending transfer) at `due_ns`.
    InFlight {
        due_ns: u64,
    },
    /// At event-driven station `station`, its engine's `ticket`; goes to `next` when it leaves.
    At {
        station: u16,
        ticket: Ticket,
        next: Hop,
    },
    /// Left the network (its record's `end`).
    Finished,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    generation: u32,
    state: State,
    /// The connection closed: free the slot when it leaves the network.
    released: bool,
    route: Route,
}

/// A pending transfer: `(time, creation sequence, slot, next station)`.
type Transfer = Reverse<(u64, u64, u32, u16)>;

/// No departure pending at an event-driven station.
const NONE: u64 = u64::MAX;

/// The network; see the [module docs](self).
#[derive(Debug)]
pub struct NetworkModel {
    net: Network,
    stations: Vec<StationState>,
    /// The event-driven stations, in index order.
    event_stations: Vec<usize>,
    /// Decided stations (their departure gaps go through `unpassed`).
    decided_stations: Vec<usize>,
    /// Each station's next departure if nothing else arrives ([`NONE`] for none, and for a
    /// decided station).
    next_departure: Vec<u64>,
    entry_rng: Rng,
    /// The class mix of external arrivals, and its generator with several classes.
    classes: Classes,
    class_rng: Option<Rng>,
    transfers: BinaryHeap<Transfer>,
    seq: u64,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// The latest time processed (arrivals and polls): every event at or before it has been
    /// processed, and external arrivals are clamped to it.
    clock_ns: u64,
    arrivals: u64,
    exited: u64,
}

/// Why a network cannot be emulated by [`NetworkModel`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// Whether a network's answers name the class (`class;desc=N` in `Server-Timing`) and its
/// metrics count the sojourn by class: several classes, or a station that serves by class.
pub fn names_class(net: &Network) -> bool {
    network_classes(net).len() > 1 || net.stations.iter().any(|s| s.model.discipline.by_class())
}

/// The class mix of a network's external arrivals.
pub fn network_classes(net: &Network) -> Classes {
    net.classes
}

impl NetworkModel {
    /// Checks that every station can be emulated: at most `u16::MAX` stations, and no classes
    /// of a station's own (a request's class is the network's, for its whole route).
    pub fn check(net: &Network) -> Result<(), Unsupported> {
        for s in &net.stations {
            if s.model.classes.len() > 1 {
                return Err(Unsupported(format!(
                    "station {}: classes belong to the requests: give them at the top level",
                    s.name
                )));
            }
        }
        if net.stations.len() > usize::from(u16::MAX) {
            return Err(Unsupported("too many stations".into()));
        }
        Ok(())
    }

    /// The model of `net` with draws from `seed`; a station without a capacity holds at most
    /// `overflow_limit` requests. Call [`NetworkModel::check`] first.
    pub fn new(net: &Network, seed: u64, overflow_limit: usize) -> Self {
        let stations: Vec<StationState> = net
            .stations
            .iter()
            .enumerate()
            .map(|(j, s)| {
                // The request carries the class; the station's queue draws none.
                let model = s.model.with_classes(Classes::default());
                let queue = QueueModel::new(&model, seed, overflow_limit);
                let event = !queue.decides_at_arrival();
                StationState {
                    queue,
                    sampler: model.sampler(),
                    service_rng: rng(seed, service_stream(j)),
                    route_rng: rng(seed, route_stream(j)),
                    stats: StationStats::default(),
                    event,
                    owner: Vec::with_capacity(if event { 1024 } else { 0 }),
                    unpassed: BinaryHeap::with_capacity(if event { 0 } else { 1024 }),
                }
            })
            .collect();
        let classes = network_classes(net);
        NetworkModel {
            event_stations: (0..stations.len()).filter(|&j| stations[j].event).collect(),
            decided_stations: (0..stations.len())
                .filter(|&j| !stations[j].event)
                .collect(),
            next_departure: vec![NONE; stations.len()],
            net: net.clone(),
            stations,
            entry_rng: rng(seed, ENTRY_STREAM),
            classes,
            class_rng: (classes.len() > 1).then(|| rng(seed, CLASS_STREAM)),
            transfers: BinaryHeap::with_capacity(1024),
            seq: 0,
            slots: Vec::with_capacity(1024),
            free: Vec::with_capacity(1024),
            clock_ns: 0,
            arrivals: 0,
            exited: 0,
        }
    }

    /// The network emulated.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// An external arrival at `a_ns`, of class `class` if it names one (`X-Priority`, clamped to
    /// `MAX_CLASSES − 1`), else of the class drawn from the network's mix (drawn either way when
    /// the network has several classes).
    pub fn arrive(&mut self, a_ns: u64, class: Option<u8>) -> NetOutcome {
        let a = a_ns.max(self.clock_ns);
        self.advance(a);
        self.arrivals += 1;
        let u = self.entry_rng.random::<f64>();
        let drawn = match &mut self.class_rng {
            Some(r) => self.classes.draw(r.random::<f64>()),
            None => 0,
        };
        let class = class.map_or(drawn, |c| c.min(MAX_CLASSES as u8 - 1));
        let j = match self.net.hop(None, u) {
            Hop::Station(j) => j,
            // A validated network always enters somewhere; an entry row of zeros exits at once.
            Hop::Exit => 0,
        };
        let id = self.alloc(a, class);
        match self.visit(id, j, a) {
            Some(bound_ns) => NetOutcome::Accepted(NetTicket {
                id,
                generation: self.slots[id as usize].generation,
                tentative_ns: bound_ns,
            }),
            None => {
                let end = self.slots[id as usize].route.end;
                self.free_slot(id);
                NetOutcome::Refused(end)
            }
        }
    }

    /// Whether `ticket`'s request has left the network by `now_ns` (processing every event up
    /// to `now_ns`).
    pub fn poll(&mut self, ticket: NetTicket, now_ns: u64) -> NetPoll {
        self.advance(now_ns);
        let Some(slot) = self.slots.get(ticket.id as usize) else {
            return NetPoll::Unknown;
        };
        if slot.generation != ticket.generation || slot.released {
            return NetPoll::Unknown;
        }
        match slot.state {
            State::Free => NetPoll::Unknown,
            State::InFlight { due_ns } => NetPoll::Pending(due_ns),
            State::At {
                station, ticket, ..
            } => {
                // Every departure up to the clock has been processed, so the engine's poll only
                // gives its lower bound, later than the clock.
                let clock = self.clock_ns;
                match self.stations[usize::from(station)]
                    .queue
                    .poll(ticket, clock)
                {
                    Poll::Pending(t) => NetPoll::Pending(t),
                    Poll::Done(_) | Poll::Unknown => NetPoll::Pending(clock.saturating_add(1)),
                }
            }
            State::Finished if slot.route.end_ns > now_ns => NetPoll::Pending(slot.route.end_ns),
            State::Finished => {
                let route = slot.route;
                self.free_slot(ticket.id);
                NetPoll::Done(route)
            }
        }
    }

    /// Forgets `ticket`'s answer (its connection closed): the request still goes its way through
    /// the network, and its slot is freed when it leaves.
    pub fn release(&mut self, ticket: NetTicket) {
        let Some(slot) = self.slots.get_mut(ticket.id as usize) else {
            return;
        };
        if slot.generation != ticket.generation || slot.state == State::Free {
            return;
        }
        slot.released = true;
        if slot.state == State::Finished {
            self.free_slot(ticket.id);
        }
    }

    /// Processes every event up to `t` (and up to the clock, if later) in the order of the
    /// module docs: departures at event-driven stations (the lowest index first), then
    /// transfers by `(time, creation)`.
    fn advance(&mut self, t: u64) {
        self.clock_ns = self.clock_ns.max(t);
        let t = self.clock_ns;
        loop {
            let mut dep: Option<(u64, usize)> = None;
            for &j in &self.event_stations {
                let d = self.next_departure[j];
                if d <= t && dep.is_none_or(|(best, _)| d < best) {
                    dep = Some((d, j));
                }
            }
            let transfer = self.transfers.peek().map(|r| r.0).filter(|tr| tr.0 <= t);
            match (dep, transfer) {
                (Some((d, j)), tr) if tr.is_none_or(|tr| d <= tr.0) => self.depart(j),
                (_, Some((at, _, id, k))) => {
                    self.transfers.pop();
                    self.visit(id, usize::from(k), at);
                }
                _ => break,
            }
        }
        for &j in &self.decided_stations {
            let st = &mut self.stations[j];
            while let Some(&Reverse(d)) = st.unpassed.peek() {
                if d > t {
                    break;
                }
                st.unpassed.pop();
                st.stats.gaps.depart(d);
            }
        }
    }

    /// Event-driven station `j` processes its next departure: the request's visit, then its
    /// transfer (created now) or its exit.
    fn depart(&mut self, j: usize) {
        let st = &mut self.stations[j];
        let left = st.queue.depart_next();
        self.next_departure[j] = st.queue.next_departure_ns().unwrap_or(NONE);
        let Some((eid, sv)) = left else {
            return;
        };
        let Some(&id) = st.owner.get(eid as usize) else {
            return;
        };
        let d = sv.departure_ns;
        st.stats.sojourn_ns += u128::from(d - sv.arrival_ns);
        st.stats.gaps.depart(d);
        let slot = &mut self.slots[id as usize];
        let State::At { next, .. } = slot.state else {
            return;
        };
        slot.route.push(Visit::served(j, &sv));
        self.leave(id, next, d);
    }

    /// Request `id` leaves its station at `d` for `next`: a transfer created now, or its exit.
    fn leave(&mut self, id: u32, next: Hop, d: u64) {
        let slot = &mut self.slots[id as usize];
        match next {
            Hop::Station(k) => {
                slot.state = State::InFlight { due_ns: d };
                self.transfers.push(Reverse((d, self.seq, id, k as u16)));
                self.seq += 1;
            }
            Hop::Exit => {
                slot.route.end = End::Exited;
                slot.route.end_ns = d;
                self.exited += 1;
                self.finish(id);
            }
        }
    }

    /// Request `id` arrives at station `j` at `a`: its draws, then admitted (a decided
    /// station's departure and next transfer or exit at once), blocked or turned away. Returns
    /// the lower bound of its departure when admitted.
    fn visit(&mut self, id: u32, j: usize, a: u64) -> Option<u64> {
        let st = &mut self.stations[j];
        let s = st.sampler.sample_ns(&mut st.service_rng);
        let u = st.route_rng.random::<f64>();
        st.stats.arrivals += 1;
        let class = self.slots[id as usize].route.class;
        let outcome = st.queue.arrive_with(a, s, class);
        let next = self.net.hop(Some(j), u);
        let sv = match outcome {
            Outcome::Served(sv) => sv,
            Outcome::Queued(ticket) => {
                st.stats.visits += 1;
                st.stats.busy_ns += u128::from(s);
                let e = ticket.id as usize;
                if st.owner.len() <= e {
                    st.owner.resize(e + 1, 0);
                }
                st.owner[e] = id;
                self.next_departure[j] = st.queue.next_departure_ns().unwrap_or(NONE);
                self.slots[id as usize].state = State::At {
                    station: j as u16,
                    ticket,
                    next,
                };
                return Some(ticket.tentative_ns);
            }
            Outcome::Blocked | Outcome::Overflow => {
                let end = if outcome == Outcome::Blocked {
                    st.stats.blocked += 1;
                    End::Blocked { station: j as u16 }
                } else {
                    st.stats.overflow += 1;
                    End::Overflow { station: j as u16 }
                };
                let slot = &mut self.slots[id as usize];
                slot.route.end = end;
                slot.route.end_ns = a;
                self.finish(id);
                return None;
            }
        };
        st.stats.visits += 1;
        st.stats.busy_ns += u128::from(sv.service_ns);
        st.stats.sojourn_ns += u128::from(sv.departure_ns - sv.arrival_ns);
        let d = sv.departure_ns;
        st.unpassed.push(Reverse(d));
        self.slots[id as usize].route.push(Visit::served(j, &sv));
        self.leave(id, next, d);
        Some(d)
    }

    fn finish(&mut self, id: u32) {
        let slot = &mut self.slots[id as usize];
        slot.state = State::Finished;
        if slot.released {
            self.free_slot(id);
        }
    }

    fn alloc(&mut self, a: u64, class: u8) -> u32 {
        let route = Route::new(a, class);
        if let Some(id) = self.free.pop() {
            let slot = &mut self.slots[id as usize];
            slot.generation = slot.generation.wrapping_add(1);
            slot.state = State::InFlight { due_ns: a };
            slot.released = false;
            slot.route = route;
            return id;
        }
        let id = self.slots.len() as u32;
        self.slots.push(Slot {
            generation: 0,
            state: State::InFlight { due_ns: a },
            released: false,
            route,
        });
        id
    }

    fn free_slot(&mut self, id: u32) {
        let slot = &mut self.slots[id as usize];
        if slot.state != State::Free {
            slot.state = State::Free;
            self.free.push(id);
        }
    }

    /// External arrivals so far.
    pub fn arrivals(&self) -> u64 {
        self.arrivals
    }

    /// Requests that exited (after their last visit) so far, counted when their exit was
    /// computed (from a decided station it may still be ahead of the clock).
    pub fn exited(&self) -> u64 {
        self.exited
    }

    /// Slots in use (requests in the network or finished and not yet polled).
    pub fn slots_in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Station `j`'s counters, its number present and busy servers at `now_ns`, and its
    /// ∫ N_j dt up to `now_ns` (request-ns), after processing the events up to `now_ns` (a
    /// time before the clock counts as the clock). Changes no outcome.
    pub fn station_at(&mut self, j: usize, now_ns: u64) -> (StationStats, usize, usize, u128) {
        self.advance(now_ns);
        let t = self.clock_ns;
        let st = &mut self.stations[j];
        (
            st.stats,
            st.queue.in_system(t),
            st.queue.busy_servers(t),
            st.queue.in_system_integral_ns(t),
        )
    }
}
