//! The queue model: a FIFO queue with `c` servers (or infinitely many) and an optional capacity,
//! computed in virtual time with no I/O.
//!
//! A request *arrives* at `a` (nanoseconds on the server's monotonic clock, when its head has been
//! parsed). Its service time `S` is drawn at arrival from one seeded generator, in arrival order
//! (also for arrivals that are then turned away, so the n-th arrival always gets the n-th draw).
//!
//! - `c` servers, FIFO: requests start service in arrival order, each on the server that frees up
//!   first: `start = max(a, earliest free time)`, departure `d = start + S`, and that server is free
//!   again at `d`. For `c = 1` this is Lindley's recursion `d_n = max(a_n, d_{n-1}) + S_n`. The free
//!   times live in a binary min-heap of `c` entries.
//! - Infinitely many servers (`--servers inf`): `d = a + S` (M/G/∞, pure delay).
//! - Capacity `K` (requests in the system, waiting or in service): the number in the system at `a`
//!   is the number of accepted requests with `d > a`, kept as a min-heap of pending departures. An
//!   arrival that finds `K` present is [`Outcome::Blocked`] (M/M/c/K); it takes no server time.
//! - Without a capacity the system is still bounded, at [`DEFAULT_OVERFLOW_LIMIT`] requests by
//!   default, so an overloaded server (ρ ≥ 1) cannot grow its memory without bound: an arrival
//!   over that limit is [`Outcome::Overflow`], counted apart from capacity blocking.
//! - Service kind `zero`: no queue at all; every request departs at its arrival.
//!
//! Arrival times must not go backwards; several I/O threads share one model behind a mutex, and a
//! thread may read the clock just before another that then takes the lock first, so an arrival
//! earlier than the previous one is treated as arriving with it (the difference is the time
//! between two clock reads, nanoseconds). For a given seed and sequence of arrival times the
//! outcomes are fully deterministic.
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use queuelab_common::model::{Model, Servers};
use queuelab_common::samplers::{self, Rng, ServiceKind, ServiceSampler, rng};

/// Requests allowed in the system when no capacity is set; arrivals beyond it get `503` and are
/// counted as overflow (about 800 KB of pending departures at most).
pub const DEFAULT_OVERFLOW_LIMIT: usize = 100_000;

/// The stream of [`queuelab_common::samplers::rng`] the model draws service times from (distinct
/// from the streams `qload` draws arrivals from, see [`samplers::SERVICE_STREAM`]).
pub const SERVICE_STREAM: u64 = samplers::SERVICE_STREAM;

/// What happens to an arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted, FCFS: served at the given times (known at arrival).
    Served(Service),
    /// Accepted under a discipline whose departures depend on later arrivals (LCFS, PS,
    /// priority): the departure is not known yet; ask [`QueueModel::poll`] once the clock passes
    /// `ticket.tentative_ns`.
    Queued(Ticket),
    /// Turned away: the system held `K` requests (capacity blocking, M/M/c/K).
    Blocked,
    /// Turned away: no capacity was set and the system held the overflow limit.
    Overflow,
}

/// The timing of an accepted request, all in nanoseconds on the server's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// Arrival time `a` (after clamping to the previous arrival).
    pub arrival_ns: u64,
    /// Departure time `d = a + wait + service`.
    pub departure_ns: u64,
    /// Time spent waiting for a server.
    pub wait_ns: u64,
    /// Service time `S`.
    pub service_ns: u64,
    /// The request's priority class (0 with one class).
    pub class: u8,
}

/// A request accepted under a discipline whose departure depends on later arrivals.
///
/// `tentative_ns` is its departure if nothing else arrived: later arrivals can only postpone it,
/// never advance it, so a timer armed for it never fires after the real departure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Slot of the job in the model.
    pub id: u32,
    /// Generation of that slot (a released slot's old tickets are refused).
    pub generation: u32,
    /// The departure if nothing else arrives (ns).
    pub tentative_ns: u64,
    /// The request's priority class.
    pub class: u8,
}

/// The answer of [`QueueModel::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// The request has departed (at `departure_ns ≤ now`); its slot is freed.
    Done(Service),
    /// Not yet: its departure is now no earlier than this (ns).
    Pending(u64),
    /// The ticket is unknown (released, or from another model).
    Unknown,
}

/// Counters kept by the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Arrivals seen.
    pub arrivals: u64,
    /// Arrivals accepted.
    pub accepted: u64,
    /// Arrivals blocked at capacity.
    pub blocked: u64,
    /// Arrivals over the overflow limit.
    pub overflow: u64,
    /// Sum of the service times of accepted arrivals (server-nanoseconds of work).
    pub busy_ns: u128,
}

#[derive(Debug)]
enum ServerState {
    /// Free times of the `c` servers, earliest on top.
    Finite(BinaryHeap<Reverse<u64>>),
    Infinite,
}

/// The queue; see the [module docs](self).
#[derive(Debug)]
pub struct QueueModel {
    sampler: ServiceSampler,
    rng: Rng,
    servers: ServerState,
    capacity: Option<u32>,
    overflow_limit: usize,
    /// Departure times of accepted requests not yet known to have left, earliest on top.
    pending: BinaryHeap<Reverse<u64>>,
    last_arrival: u64,
    stats: ModelStats,
}

impl QueueModel {
    /// The queue of `model`, its service times drawn from `seed`, holding at most
    /// `overflow_limit` requests when `model` has no capacity. `Servers::Finite(0)` is treated as
    /// one server (models are validated before they get here).
    pub fn new(model: &Model, seed: u64, overflow_limit: usize) -> Self {
        let servers = match model.servers {
            Servers::Finite(c) => {
                let c = c.max(1) as usize;
                let mut heap = BinaryHeap::with_capacity(c);
                heap.extend(std::iter::repeat_n(Reverse(0), c));
                ServerState::Finite(heap)
            }
            Servers::Infinite => ServerState::Infinite,
        };
        let limit = match model.capacity {
            Some(k) => k as usize,
            None => overflow_limit,
        };
        QueueModel {
            sampler: model.sampler(),
            rng: rng(seed, SERVICE_STREAM),
            servers,
            capacity: model.capacity,
            overflow_limit,
            // Pending departures never exceed the limit; reserve it up front (bounded, so a huge K
            // grows the heap on demand instead of reserving it all at start).
            pending: BinaryHeap::with_capacity(limit.min(1 << 20)),
            last_arrival: 0,
            stats: ModelStats::default(),
        }
    }

    /// An arrival at `a_ns`: draws its service time (and its class from `--classes` unless
    /// `class` names it) and decides its fate.
    pub fn arrive(&mut self, a_ns: u64, class: Option<u8>) -> Outcome {
        let s = self.sampler.sample_ns(&mut self.rng);
        let _ = class;
        self.arrive_with_service(a_ns, s)
    }

    /// Whether `ticket` has departed by `now_ns` (processing every departure up to `now_ns`).
    pub fn poll(&mut self, ticket: Ticket, now_ns: u64) -> Poll {
        let _ = (ticket, now_ns);
        Poll::Unknown
    }

    /// Forgets `ticket`'s answer (its connection closed): the request still occupies the queue
    /// until its departure, as an answer nobody reads does under FCFS, and its slot is freed then.
    pub fn release(&mut self, ticket: Ticket) {
        let _ = ticket;
    }

    /// The time integral of the number in system from the start to `now_ns`, in
    /// request-nanoseconds (`qserve_in_system_seconds_total` once divided by 10⁹).
    pub fn in_system_integral_ns(&mut self, now_ns: u64) -> u128 {
        let _ = now_ns;
        0
    }

    /// An arrival at `a_ns` with a given service time (what [`QueueModel::arrive`] does after its
    /// draw); for tests and simulations that supply their own service times.
    pub fn arrive_with_service(&mut self, a_ns: u64, service_ns: u64) -> Outcome {
        let a = a_ns.max(self.last_arrival);
        self.last_arrival = a;
        self.stats.arrivals += 1;
        if self.sampler.kind == ServiceKind::Zero {
            self.stats.accepted += 1;
            return Outcome::Served(Service {
                arrival_ns: a,
                departure_ns: a,
                wait_ns: 0,
                service_ns: 0,
                class: 0,
            });
        }
        let in_system = self.in_system(a);
        match self.capacity {
            Some(k) if in_system >= k as usize => {
                self.stats.blocked += 1;
                return Outcome::Blocked;
            }
            None if in_system >= self.overflow_limit => {
                self.stats.overflow += 1;
                return Outcome::Overflow;
            }
            _ => {}
        }
        let start = match &mut self.servers {
            ServerState::Finite(free) => {
                let mut earliest = free
                    .peek_mut()
                    .expect("a finite queue always has at least one server");
                let start = a.max(earliest.0);
                earliest.0 = start.saturating_add(service_ns);
                start
            }
            ServerState::Infinite => a,
        };
        let departure = start.saturating_add(service_ns);
        self.pending.push(Reverse(departure));
        self.stats.accepted += 1;
        self.stats.busy_ns += u128::from(service_ns);
        Outcome::Served(Service {
            arrival_ns: a,
            departure_ns: departure,
            wait_ns: start - a,
            service_ns,
            class: 0,
        })
    }

    /// Number of accepted requests in the system at `now_ns` (departure after `now_ns`). Forgets
    /// departures at or before `now_ns`, so `now_ns` should not be before the last arrival.
    pub fn in_system(&mut self, now_ns: u64) -> usize {
        while let Some(&Reverse(d)) = self.pending.peek() {
            if d > now_ns {
                break;
            }
            self.pending.pop();
        }
        self.pending.len()
    }

    /// Number of servers busy at `now_ns` (for infinitely many servers: requests in the system).
    pub fn busy_servers(&mut self, now_ns: u64) -> usize {
        match &self.servers {
            ServerState::Finite(free) => free.iter().filter(|t| t.0 > now_ns).count(),
            ServerState::Infinite => self.in_system(now_ns),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> ModelStats {
        self.stats
    }

    /// The in-system limit that applies: `K`, or the overflow limit without a capacity.
    pub fn limit(&self) -> usize {
        self.capacity.map_or(self.overflow_limit, |k| k as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(servers: Servers, capacity: Option<u32>, kind: ServiceKind) -> QueueModel {
        let m = Model::new(1000.0, servers)
            .with_capacity(capacity)
            .with_service(kind);
        QueueModel::new(&m, 1, 3)
    }

    fn served(o: Outcome) -> Service {
        match o {
            Outcome::Served(s) => s,
            other => panic!("expected Served, got {other:?}"),
        }
    }

    #[test]
    fn lindley_by_hand() {
        let mut m = model(Servers::Finite(1), None, ServiceKind::Const);
        // S = 1 ms each; arrivals at 0, 0.5 ms, 3 ms.
        let a = served(m.arrive_with_service(0, 1_000_000));
        let b = served(m.arrive_with_service(500_000, 1_000_000));
        let c = served(m.arrive_with_service(3_000_000, 1_000_000));
        assert_eq!((a.wait_ns, a.departure_ns), (0, 1_000_000));
        assert_eq!((b.wait_ns, b.departure_ns), (500_000, 2_000_000));
        assert_eq!((c.wait_ns, c.departure_ns), (0, 4_000_000));
    }

    #[test]
    fn two_servers_take_the_earliest_free() {
        let mut m = model(Servers::Finite(2), None, ServiceKind::Const);
        let a = served(m.arrive_with_service(0, 10));
        let b = served(m.arrive_with_service(1, 3));
        let c = served(m.arrive_with_service(2, 5));
        assert_eq!(a.departure_ns, 10);
        assert_eq!(b.departure_ns, 4);
        // c waits for b's server (free at 4), not a's (free at 10).
        assert_eq!((c.wait_ns, c.departure_ns), (2, 9));
    }

    #[test]
    fn capacity_counts_waiting_and_in_service() {
        let mut m = model(Servers::Finite(1), Some(2), ServiceKind::Const);
        served(m.arrive_with_service(0, 100));
        served(m.arrive_with_service(1, 100));
        assert_eq!(m.arrive_with_service(2, 100), Outcome::Blocked);
        // The first leaves at 100: room again at 100 (departure at a counts as gone).
        let d = served(m.arrive_with_service(100, 100));
        assert_eq!(d.departure_ns, 300);
        assert_eq!(m.stats().blocked, 1);
    }

    #[test]
    fn overflow_limit_applies_without_capacity() {
        let mut m = model(Servers::Infinite, None, ServiceKind::Const);
        for t in 0..3 {
            served(m.arrive_with_service(t, 1000));
        }
        assert_eq!(m.arrive_with_service(3, 1000), Outcome::Overflow);
        assert_eq!(m.stats().overflow, 1);
        assert_eq!(m.in_system(999), 3);
        assert_eq!(m.in_system(1000), 2);
    }

    #[test]
    fn zero_service_answers_at_once() {
        let mut m = model(Servers::Finite(1), Some(1), ServiceKind::Zero);
        for t in [5, 5, 6] {
            let s = served(m.arrive(t, None));
            assert_eq!((s.departure_ns, s.wait_ns, s.service_ns), (t, 0, 0));
        }
    }

    #[test]
    fn arrivals_never_go_backwards() {
        let mut m = model(Servers::Finite(1), None, ServiceKind::Const);
        served(m.arrive_with_service(100, 10));
        let s = served(m.arrive_with_service(50, 10));
        assert_eq!(s.arrival_ns, 100);
        assert_eq!(s.departure_ns, 120);
    }

    #[test]
    fn busy_servers_counts_unfinished_services() {
        let mut m = model(Servers::Finite(3), None, ServiceKind::Const);
        served(m.arrive_with_service(0, 10));
        served(m.arrive_with_service(0, 20));
        assert_eq!(m.busy_servers(5), 2);
        assert_eq!(m.busy_servers(15), 1);
        assert_eq!(m.busy_servers(20), 0);
    }
}
