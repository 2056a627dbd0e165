//! The network model: an open network of FCFS stations ([`Network`]) computed in virtual time,
//! exact and deterministic for a seed, with no I/O.
//!
//! Each station is a [`QueueModel`] (FCFS: `c` servers or infinitely many, a capacity, any
//! service distribution) whose service times come from the station's own stream, and the routing
//! draws follow the contract of [`queuelab_common::network`]'s module docs: an external arrival
//! draws its entry station from [`ENTRY_STREAM`]; an arrival at station `j` draws its service
//! time from [`service_stream`]`(j)` and then one uniform from [`route_stream`]`(j)` (both drawn
//! also when it is then blocked).
//!
//! # Why it is exact
//!
//! Under FCFS a departure from a station is final at the arrival there (Lindley: it depends only
//! on earlier arrivals at that station). So the departure from `i` at `d`, which is the arrival at
//! the next station `j` at `d`, is known as soon as the arrival at `i` is processed, and is kept
//! as a pending *transfer* in a min-heap keyed by `(d, creation sequence)`. Before an external
//! arrival at `a` is processed, and at any poll or read at `now`, every transfer at or before
//! `a` (`now`) is processed in that order (those it creates too, which are never earlier): its
//! arrival at `j` draws its service and hop, gets its departure, and pushes its next transfer or
//! records its exit. Then the external arrival is processed. Every station therefore sees its
//! arrivals in time order, transfers before an external arrival at the same nanosecond and the
//! older transfer first among simultaneous ones, exactly as the contract says, and the fate of
//! every request depends only on the seed and the external arrival times, never on when or how
//! often threads poll. An external arrival earlier than the last time processed (two threads'
//! clock reads racing for the lock) is clamped to it, as the single queue clamps its arrivals.
//!
//! # Tickets and memory
//!
//! An accepted request gets a [`NetTicket`] (its slot in the model's slab and the slot's
//! generation) with a lower bound of its answer time: the departure from its current station.
//! [`NetworkModel::poll`] answers [`NetPoll::Done`] once it has exited or been blocked by `now`,
//! else [`NetPoll::Pending`] with a later lower bound. The slab holds the requests in the network
//! plus the finished ones not yet polled (bounded by the connections' pipelines); each keeps its
//! first [`MAX_VISITS`] visits in a fixed array and only the count and the sums of the others, so
//! nothing is allocated per request once the slab and the heap have grown to the load.
//!
//! # Departure gaps (Burke's check)
//!
//! Each single-server station keeps a histogram of the gaps between its successive departures
//! in virtual time ([`DepartureGaps`]), with the fixed log-spaced edges [`GAP_EDGES_NS`]: counts
//! per edge (a gap of `g` ns is counted at every edge `≥ g`, as a Prometheus histogram's
//! cumulative `le` buckets), their sum and count, preallocated and updated under the model's
//! mutex. With one server FCFS departs in the order of admission, and the admissions at a
//! station are processed in time order, so each departure is computed after the one before it
//! and the gaps are exact. With several servers (or infinitely many) departures are computed
//! out of their time order, and no gaps are kept (the histogram stays empty). By Burke's
//! theorem the departures of an M/M/1 queue in its steady state are a Poisson process: the gaps
//! of a station fed only by external (Poisson) arrivals are then Exp(λ_j); an M/D/1 station's
//! are not.
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use queuelab_common::model::Discipline;
use queuelab_common::network::{ENTRY_STREAM, Hop, Network, route_stream, service_stream};
use queuelab_common::samplers::{Rng, ServiceSampler, rng};
use rand::RngExt;

use crate::queue::{Outcome, QueueModel};

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
}

impl Route {
    fn new(arrival_ns: u64) -> Self {
        Route {
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
    /// A lower bound of its answer time (ns): the departure from its first station.
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
    /// Σ (departure − arrival) of its visits.
    pub sojourn_ns: u128,
    /// Gaps between successive departures (single-server stations only; see the module docs).
    pub gaps: DepartureGaps,
}

#[derive(Debug)]
struct StationState {
    queue: QueueModel,
    sampler: ServiceSampler,
    service_rng: Rng,
    route_rng: Rng,
    stats: StationStats,
    /// One server: departures are computed in time order, so their gaps are kept.
    keeps_gaps: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    /// In the network: leaves its current station at `due_ns`.
    InFlight {
        due_ns: u64,
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

/// The network; see the [module docs](self).
#[derive(Debug)]
pub struct NetworkModel {
    net: Network,
    stations: Vec<StationState>,
    entry_rng: Rng,
    transfers: BinaryHeap<Transfer>,
    seq: u64,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// The latest time processed (arrivals and polls): external arrivals are clamped to it.
    clock_ns: u64,
    arrivals: u64,
    exited: u64,
}

/// Why a network cannot be emulated by [`NetworkModel`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

impl NetworkModel {
    /// Checks that every station can be emulated: FCFS only for now (or infinitely many servers,
    /// where every discipline is FCFS).
    pub fn check(net: &Network) -> Result<(), Unsupported> {
        for s in &net.stations {
            if s.model.discipline != Discipline::Fcfs
                && s.model.servers != queuelab_common::model::Servers::Infinite
            {
                return Err(Unsupported(format!(
                    "station {}: only fcfs in a network for now (got {})",
                    s.name, s.model.discipline
                )));
            }
            if s.model.classes.len() > 1 {
                return Err(Unsupported(format!(
                    "station {}: priority classes are not supported in a network",
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
    /// `overflow_limit` requests. Call [`NetworkModel::check`] first: an unsupported station is
    /// emulated as FCFS.
    pub fn new(net: &Network, seed: u64, overflow_limit: usize) -> Self {
        let stations: Vec<StationState> = net
            .stations
            .iter()
            .enumerate()
            .map(|(j, s)| {
                let model = s.model.with_discipline(Discipline::Fcfs);
                StationState {
                    queue: QueueModel::new(&model, seed, overflow_limit),
                    sampler: model.sampler(),
                    service_rng: rng(seed, service_stream(j)),
                    route_rng: rng(seed, route_stream(j)),
                    stats: StationStats::default(),
                    keeps_gaps: model.servers == queuelab_common::model::Servers::Finite(1),
                }
            })
            .collect();
        NetworkModel {
            net: net.clone(),
            stations,
            entry_rng: rng(seed, ENTRY_STREAM),
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

    /// An external arrival at `a_ns`.
    pub fn arrive(&mut self, a_ns: u64) -> NetOutcome {
        let a = a_ns.max(self.clock_ns);
        self.advance(a);
        self.arrivals += 1;
        let u = self.entry_rng.random::<f64>();
        let j = match self.net.hop(None, u) {
            Hop::Station(j) => j,
            // A validated network always enters somewhere; an entry row of zeros exits at once.
            Hop::Exit => 0,
        };
        let id = self.alloc(a);
        match self.visit(id, j, a) {
            Some(due_ns) => NetOutcome::Accepted(NetTicket {
                id,
                generation: self.slots[id as usize].generation,
                tentative_ns: due_ns,
            }),
            None => {
                let end = self.slots[id as usize].route.end;
                self.free_slot(id);
                NetOutcome::Refused(end)
            }
        }
    }

    /// Whether `ticket`'s request has left the network by `now_ns` (processing every transfer up
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

    /// Processes every transfer at or before `t`, in `(time, creation)` order.
    fn advance(&mut self, t: u64) {
        self.clock_ns = self.clock_ns.max(t);
        while let Some(&Reverse((at, _, id, j))) = self.transfers.peek() {
            if at > t {
                break;
            }
            self.transfers.pop();
            self.visit(id, usize::from(j), at);
        }
    }

    /// Request `id` arrives at station `j` at `a`: its draws, its departure, its next transfer
    /// or its end. Returns the departure when accepted.
    fn visit(&mut self, id: u32, j: usize, a: u64) -> Option<u64> {
        let st = &mut self.stations[j];
        let s = st.sampler.sample_ns(&mut st.service_rng);
        let u = st.route_rng.random::<f64>();
        st.stats.arrivals += 1;
        let outcome = st.queue.arrive_with_service(a, s);
        let slot = &mut self.slots[id as usize];
        let sv = match outcome {
            Outcome::Served(sv) => sv,
            Outcome::Blocked | Outcome::Overflow | Outcome::Queued(_) => {
                let end = if outcome == Outcome::Blocked {
                    st.stats.blocked += 1;
                    End::Blocked { station: j as u16 }
                } else {
                    st.stats.overflow += 1;
                    End::Overflow { station: j as u16 }
                };
                slot.route.end = end;
                slot.route.end_ns = a;
                self.finish(id);
                return None;
            }
        };
        st.stats.visits += 1;
        st.stats.busy_ns += u128::from(sv.service_ns);
        st.stats.sojourn_ns += u128::from(sv.departure_ns - sv.arrival_ns);
        if st.keeps_gaps {
            st.stats.gaps.depart(sv.departure_ns);
        }
        let d = sv.departure_ns;
        slot.route.push(Visit {
            station: j as u16,
            arrive_ns: sv.arrival_ns,
            start_ns: sv.arrival_ns + sv.wait_ns,
            depart_ns: d,
            service_ns: sv.service_ns,
        });
        match self.net.hop(Some(j), u) {
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
        Some(d)
    }

    fn finish(&mut self, id: u32) {
        let slot = &mut self.slots[id as usize];
        slot.state = State::Finished;
        if slot.released {
            self.free_slot(id);
        }
    }

    fn alloc(&mut self, a: u64) -> u32 {
        let route = Route::new(a);
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
    /// computed (it may still be ahead of the clock).
    pub fn exited(&self) -> u64 {
        self.exited
    }

    /// Slots in use (requests in the network or finished and not yet polled).
    pub fn slots_in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Station `j`'s counters, its number present and busy servers at `now_ns`, and its
    /// ∫ N_j dt up to `now_ns` (request-ns), after processing the transfers up to `now_ns`.
    /// Changes no outcome.
    pub fn station_at(&mut self, j: usize, now_ns: u64) -> (StationStats, usize, usize, u128) {
        self.advance(now_ns);
        let st = &mut self.stations[j];
        (
            st.stats,
            st.queue.in_system(now_ns),
            st.queue.busy_servers(now_ns),
            st.queue.in_system_integral_ns(now_ns),
        )
    }
}
