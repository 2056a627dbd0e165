//! The queue model: `c` servers (or infinitely many), an optional capacity and a discipline
//! (FCFS, LCFS, processor sharing, priority classes with or without preemption), computed in
//! virtual time with no I/O.
//!
//! A request *arrives* at `a` (nanoseconds on the server's monotonic clock, when its head has been
//! parsed). Its service time `S` is drawn at arrival from one seeded generator, in arrival order
//! (also for arrivals that are then turned away, so the n-th arrival always gets the n-th draw).
//! With several classes (`--classes`), its class is drawn too, from a second generator
//! ([`samplers::CLASS_STREAM`]), one uniform per arrival whether or not the request names its
//! own class (`X-Priority`), so that naming a class never shifts the draws of the others.
//!
//! # FCFS: the departure known at arrival
//!
//! - `c` servers, FIFO: requests start service in arrival order, each on the server that frees up
//!   first: `start = max(a, earliest free time)`, departure `d = start + S`, and that server is free
//!   again at `d`. For `c = 1` this is Lindley's recursion `d_n = max(a_n, d_{n-1}) + S_n`. The free
//!   times live in a binary min-heap of `c` entries. The answer is [`Outcome::Served`] at once.
//! - Infinitely many servers (`--servers inf`): `d = a + S` (M/G/∞, pure delay). Every discipline
//!   is this one then (nobody waits, everyone is served at rate 1), so it is computed so.
//! - Capacity `K` (requests in the system, waiting or in service): the number in the system at `a`
//!   is the number of accepted requests with `d > a`, kept as a min-heap of pending departures. An
//!   arrival that finds `K` present is [`Outcome::Blocked`] (M/M/c/K); it takes no server time.
//! - Without a capacity the system is still bounded, at [`DEFAULT_OVERFLOW_LIMIT`] requests by
//!   default, so an overloaded server (ρ ≥ 1) cannot grow its memory without bound: an arrival
//!   over that limit is [`Outcome::Overflow`], counted apart from capacity blocking.
//! - Service kind `zero`: no queue at all; every request departs at its arrival.
//!
//! # The other disciplines: an event-driven engine and tickets
//!
//! Under LCFS, PS and priority a departure depends on what arrives later, so an accepted arrival
//! gets [`Outcome::Queued`] with a [`Ticket`] instead: its slot in the engine's slab, the slot's
//! generation, and `tentative_ns`, a lower bound of its departure. The I/O thread arms a timer
//! for it and asks [`QueueModel::poll`] when it fires: [`Poll::Done`] with the request's times
//! once it has left, else [`Poll::Pending`] with a new (later) lower bound; a closed connection
//! calls [`QueueModel::release`]. The disciplines, each with `c` servers:
//!
//! - **LCFS** (non-preemptive): a server that frees up takes the *latest* arrival waiting (a
//!   stack).
//! - **PS**: each of the `n` requests present is served at rate `min(1, c/n)`. In virtual time `V`
//!   (the service every present request has received, advancing at that rate), a request arriving
//!   at `V(a)` leaves when `V` reaches its virtual finish `V(a) + S`, so requests leave in the
//!   order of their virtual finishes (a min-heap) and the next departure is, in real time,
//!   `t_last + (V_min − V)·max(1, n/c)`. At a departure `V` is set to the leaver's virtual finish
//!   (never recomputed from the rounded time, so no error builds up); event times carry their
//!   fraction of a nanosecond (`t_off`) and are rounded to the nearest nanosecond only where
//!   they leave the engine.
//! - **Priority, non-preemptive**: a server that frees up takes the oldest waiting request of
//!   the lowest class number (a FIFO per class).
//! - **Priority, preemptive-resume**: the requests in service are always the `c` highest ranked
//!   present (lower class number, then earlier arrival); an arrival that outranks the lowest
//!   ranked in service takes its server, and the preempted request keeps its remaining work and
//!   resumes when it is among the `c` highest again.
//!
//! Every call first processes the departures at or before the time it names, each at its own
//! time, and never moves the state to that time otherwise: the state changes only at events (an
//! arrival, a departure), so the results do not depend on when or how often threads poll. An
//! arrival is clamped to the last event (`a = max(a, last event)`, as arrivals are clamped to
//! the previous arrival under FCFS), then the departures at or before `a` leave (a departure at
//! the instant of an arrival happens first), then the capacity or overflow limit is checked
//! against the requests present. A departed request's slot waits for its poll (or is freed at
//! its departure if released); the slab reuses freed slots and allocates nothing once warm.
//! Each call costs O(log n) (plus the departures it processes).
//!
//! # Why a tentative departure is never late
//!
//! A later arrival can only postpone a present request's departure, never advance it:
//!
//! - LCFS and non-preemptive priority: a request in service keeps its departure. A waiting one
//!   leaves at its start plus `S`; its start is when a server frees up after every request ahead
//!   of it in the line has started. An arrival either goes behind it (nothing changes for it) or
//!   ahead of it (all servers were busy, or it would not wait): the line ahead only gains a
//!   request, and with list scheduling on identical servers the sorted vector of the servers'
//!   free times after assigning a list is monotone in the list (taking the earliest free time
//!   `f` to `f + S` maps a pointwise-larger sorted vector to a pointwise-larger one), so its
//!   start can only be later.
//! - Preemptive priority: a request is served exactly when fewer than `c` requests that outrank
//!   it are present, and requests it outranks do not matter to it. Adding a request that
//!   outranks it adds one to that count while it is present and, by the same argument applied in
//!   rank order to the requests above, postpones theirs, so the count is pointwise no smaller and
//!   the request is served during a subset of the time: it leaves later, or at the same time.
//! - PS: the rate `min(1, c/n)` falls as `n` grows. With an extra request, every request's
//!   attained service is pointwise no larger (at the first instant some request would be ahead
//!   with the extra one, fewer would be present there, so some request would have left earlier,
//!   i.e. been ahead before — a contradiction), so each finishes no earlier.
//!
//! So a departure computed as if nothing else arrived is a lower bound of the real one, and so is
//! any lower bound of that. [`Ticket::tentative_ns`] and [`Poll::Pending`] give, for a request in
//! service under LCFS or priority, its departure if nothing else arrives; with one server, the
//! same exactly for a waiting request too (from the work ahead of it, kept as per-class or stack
//! running sums); with `c > 1`, a waiting request's earliest possible departure (the next
//! departure plus its remaining work); under PS, the front's next departure for the front and,
//! for another request, the front's departure plus the rest of its virtual work (it is served at
//! rate at most 1), less a slack of 10⁻³ ns for the rounding of `f64` virtual times. A timer
//! armed for it therefore never fires after the departure; a `Pending` answer is always later
//! than the time polled.
//!
//! # The integral of the number in system
//!
//! [`QueueModel::in_system_integral_ns`] is ∫₀^now N(t) dt in request-nanoseconds, exact: under
//! FCFS the sum over accepted requests of `d − a` less, over the departures still ahead of
//! `now`, the sum of `d − now` (a running sum of the pending departures, so no scan); under the
//! other disciplines accumulated at each event plus `n·(now − last event)`.
//!
//! Arrival times must not go backwards; several I/O threads share one model behind a mutex, and a
//! thread may read the clock just before another that then takes the lock first, so an arrival
//! earlier than the previous one is treated as arriving with it (the difference is the time
//! between two clock reads, nanoseconds). For a given seed and sequence of arrival times the
//! outcomes are fully deterministic. Reading the FCFS model (`in_system`, `busy_servers`, the
//! integral) at a time after the last arrival changes no outcome either: the departures a read
//! passes are kept aside until an arrival passes them too.
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use queuelab_common::model::{Classes, Discipline, MAX_CLASSES, Model, Servers};
use queuelab_common::samplers::{self, CLASS_STREAM, Rng, ServiceKind, ServiceSampler, rng};
use rand::RngExt;

mod events;

use events::Engine;

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
    /// Time spent waiting for a server (`d − a − S`: under PS and preemption, the time not
    /// served).
    pub wait_ns: u64,
    /// Service time `S`.
    pub service_ns: u64,
    /// The request's priority class (0 with one class).
    pub class: u8,
}

/// A request accepted under a discipline whose departure depends on later arrivals.
///
/// `tentative_ns` is a lower bound of its departure (its departure if nothing else arrived,
/// exactly, in the cases the [module docs](self) list): later arrivals can only postpone a
/// departure, never advance it, so a timer armed for it never fires after the real departure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Slot of the job in the model.
    pub id: u32,
    /// Generation of that slot (a released slot's old tickets are refused).
    pub generation: u32,
    /// The departure if nothing else arrives, or a lower bound of it (ns).
    pub tentative_ns: u64,
    /// The request's priority class.
    pub class: u8,
}

/// The answer of [`QueueModel::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// The request has departed (at `departure_ns ≤ now`); its slot is freed.
    Done(Service),
    /// Not yet: its departure is no earlier than this (ns, later than the time polled).
    Pending(u64),
    /// The ticket is unknown (already answered, released, or from another model).
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
    /// The class generator, with several classes only.
    class_rng: Option<Rng>,
    classes: Classes,
    servers: ServerState,
    capacity: Option<u32>,
    overflow_limit: usize,
    /// FCFS: departure times of accepted requests after the last time the model looked at
    /// (an arrival or a read), earliest on top.
    pending: BinaryHeap<Reverse<u64>>,
    /// FCFS: the sum of `pending`.
    pending_sum: u128,
    /// FCFS: departures a read at a time after the last arrival has passed, kept until an
    /// arrival passes them too (one racing the read, earlier than it, still finds them present).
    passed: BinaryHeap<Reverse<u64>>,
    /// FCFS: the latest time a read looked at.
    read_ns: u64,
    /// FCFS: Σ (d − a) over accepted requests.
    sojourn_sum: u128,
    last_arrival: u64,
    /// Every discipline but FCFS (with finitely many servers).
    engine: Option<Box<Engine>>,
    stats: ModelStats,
}

impl QueueModel {
    /// The queue of `model`, its service times drawn from `seed`, holding at most
    /// `overflow_limit` requests when `model` has no capacity. `Servers::Finite(0)` is treated as
    /// one server (models are validated before they get here).
    pub fn new(model: &Model, seed: u64, overflow_limit: usize) -> Self {
        let limit = match model.capacity {
            Some(k) => k as usize,
            None => overflow_limit,
        };
        // Bounded, so that a huge K grows the structures on demand instead of reserving it all.
        let reserve = limit.min(1 << 20);
        let (servers, engine) = match model.servers {
            Servers::Finite(c) => {
                let c = c.max(1) as usize;
                let engine = (model.discipline != Discipline::Fcfs
                    && model.service != ServiceKind::Zero)
                    .then(|| Box::new(Engine::new(model.discipline, c, reserve.min(1 << 17))));
                let mut heap = BinaryHeap::with_capacity(if engine.is_some() { 0 } else { c });
                if engine.is_none() {
                    heap.extend(std::iter::repeat_n(Reverse(0), c));
                }
                (ServerState::Finite(heap), engine)
            }
            Servers::Infinite => (ServerState::Infinite, None),
        };
        let fcfs = engine.is_none();
        QueueModel {
            sampler: model.sampler(),
            rng: rng(seed, SERVICE_STREAM),
            class_rng: (model.classes.len() > 1).then(|| rng(seed, CLASS_STREAM)),
            classes: model.classes,
            servers,
            capacity: model.capacity,
            overflow_limit,
            // Pending departures never exceed the limit; reserve it up front.
            pending: BinaryHeap::with_capacity(if fcfs { reserve } else { 0 }),
            pending_sum: 0,
            passed: BinaryHeap::new(),
            read_ns: 0,
            sojourn_sum: 0,
            last_arrival: 0,
            engine,
            stats: ModelStats::default(),
        }
    }

    /// An arrival at `a_ns`: draws its service time (and its class from `--classes`, which
    /// `class` overrides: the draw is made either way) and decides its fate.
    pub fn arrive(&mut self, a_ns: u64, class: Option<u8>) -> Outcome {
        let s = self.sampler.sample_ns(&mut self.rng);
        let drawn = match &mut self.class_rng {
            Some(r) => self.classes.draw(r.random::<f64>()),
            None => 0,
        };
        self.arrive_with(a_ns, s, class.unwrap_or(drawn))
    }

    /// An arrival at `a_ns` with a given service time and class (what [`QueueModel::arrive`]
    /// does after its draws); for tests and simulations that supply their own. The class is
    /// clamped to `MAX_CLASSES − 1`.
    pub fn arrive_with(&mut self, a_ns: u64, service_ns: u64, class: u8) -> Outcome {
        let class = class.min(MAX_CLASSES as u8 - 1);
        let Some(engine) = &mut self.engine else {
            return self.arrive_fcfs(a_ns, service_ns, class);
        };
        let a = engine.begin_arrival(a_ns);
        self.stats.arrivals += 1;
        let present = engine.present();
        match self.capacity {
            Some(k) if present >= k as usize => {
                self.stats.blocked += 1;
                return Outcome::Blocked;
            }
            None if present >= self.overflow_limit => {
                self.stats.overflow += 1;
                return Outcome::Overflow;
            }
            _ => {}
        }
        self.stats.accepted += 1;
        self.stats.busy_ns += u128::from(service_ns);
        Outcome::Queued(engine.admit(a, service_ns, class))
    }

    /// Whether `ticket` has departed by `now_ns` (processing every departure up to `now_ns`):
    /// [`Poll::Done`] once (its slot is freed then), [`Poll::Pending`] with a lower bound of its
    /// departure before, [`Poll::Unknown`] for a ticket answered, released or not of this model
    /// (and always under FCFS, which gives no tickets).
    pub fn poll(&mut self, ticket: Ticket, now_ns: u64) -> Poll {
        match &mut self.engine {
            Some(e) => e.poll(ticket, now_ns),
            None => Poll::Unknown,
        }
    }

    /// Whether every departure is known at arrival ([`Outcome::Served`]): FCFS with finitely
    /// many servers, any discipline with infinitely many, zero service. Otherwise arrivals get
    /// tickets ([`Outcome::Queued`]) from the event-driven engine.
    pub fn decides_at_arrival(&self) -> bool {
        self.engine.is_none()
    }

    /// Under a discipline whose departures depend on later arrivals (see the module docs): the
    /// time of the next departure if nothing else arrives (`None` when nobody is present, and
    /// always under FCFS, whose departures are known at arrival). Later arrivals can only
    /// postpone it. A caller that processes departures one by one ([`QueueModel::depart_next`])
    /// drives the queue's clock itself: it must take every departure due at or before an
    /// arrival or a read before making them.
    pub fn next_departure_ns(&mut self) -> Option<u64> {
        self.engine.as_mut()?.next_departure_ns()
    }

    /// Processes exactly the next departure ([`QueueModel::next_departure_ns`]), at its time
    /// (among simultaneous departures, the earliest arrival leaves first), and returns the slot
    /// of the request that left (its [`Ticket::id`]) and its times. The slot is freed at once:
    /// the ticket is not to be polled. `None` under FCFS or when nobody is present.
    pub fn depart_next(&mut self) -> Option<(u32, Service)> {
        self.engine.as_mut()?.depart_one()
    }

    /// Forgets `ticket`'s answer (its connection closed): the request still occupies the queue
    /// until its departure, as an answer nobody reads does under FCFS, and its slot is freed then.
    pub fn release(&mut self, ticket: Ticket) {
        if let Some(e) = &mut self.engine {
            e.release(ticket);
        }
    }

    /// The time integral of the number in system from the start to `now_ns`, in
    /// request-nanoseconds (`qserve_in_system_seconds_total` once divided by 10⁹). A time before
    /// the last event counts as that event's.
    pub fn in_system_integral_ns(&mut self, now_ns: u64) -> u128 {
        if let Some(e) = &mut self.engine {
            return e.integral(now_ns);
        }
        let t = self.read_at(now_ns);
        // Every pending departure is after t: Σ (d − t) over them, subtracted from Σ (d − a).
        let ahead = self.pending_sum - self.pending.len() as u128 * u128::from(t);
        self.sojourn_sum - ahead
    }

    /// An arrival at `a_ns` with a given service time, class 0 (see [`QueueModel::arrive_with`]).
    pub fn arrive_with_service(&mut self, a_ns: u64, service_ns: u64) -> Outcome {
        self.arrive_with(a_ns, service_ns, 0)
    }

    /// The FCFS arrival (also every discipline with infinitely many servers or zero service).
    fn arrive_fcfs(&mut self, a_ns: u64, service_ns: u64, class: u8) -> Outcome {
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
                class,
            });
        }
        let in_system = self.present_at_arrival(a);
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
        self.pending_sum += u128::from(departure);
        self.sojourn_sum += u128::from(departure - a);
        self.stats.accepted += 1;
        self.stats.busy_ns += u128::from(service_ns);
        Outcome::Served(Service {
            arrival_ns: a,
            departure_ns: departure,
            wait_ns: start - a,
            service_ns,
            class,
        })
    }

    /// FCFS: the requests present at arrival time `a` (forgetting the departures at or before it).
    fn present_at_arrival(&mut self, a: u64) -> usize {
        while let Some(&Reverse(d)) = self.pending.peek() {
            if d > a {
                break;
            }
            self.pending.pop();
            self.pending_sum -= u128::from(d);
        }
        if !self.passed.is_empty() {
            while self.passed.peek().is_some_and(|r| r.0 <= a) {
                self.passed.pop();
            }
        }
        self.pending.len() + self.passed.len()
    }

    /// FCFS: a read at `now` (no earlier than the last arrival or read): moves the departures it
    /// passes aside, so that `pending` holds exactly the requests present then.
    fn read_at(&mut self, now: u64) -> u64 {
        let t = now.max(self.last_arrival).max(self.read_ns);
        self.read_ns = t;
        while let Some(&Reverse(d)) = self.pending.peek() {
            if d > t {
                break;
            }
            self.pending.pop();
            self.pending_sum -= u128::from(d);
            if d > self.last_arrival {
                self.passed.push(Reverse(d));
            }
        }
        t
    }

    /// Number of accepted requests in the system at `now_ns` (processing the departures up to
    /// it; a time before the last event counts as that event's). Changes no outcome.
    pub fn in_system(&mut self, now_ns: u64) -> usize {
        if let Some(e) = &mut self.engine {
            e.advance(now_ns);
            return e.present();
        }
        self.read_at(now_ns);
        self.pending.len()
    }

    /// Number of servers busy at `now_ns` (for infinitely many servers: requests in the system).
    pub fn busy_servers(&mut self, now_ns: u64) -> usize {
        if let Some(e) = &mut self.engine {
            return e.busy(now_ns);
        }
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

    // ---- every discipline ------------------------------------------------------------------

    use queuelab_common::samplers::exp_sample;

    const END: u64 = u64::MAX / 4;

    fn engine(discipline: Discipline, c: u32, capacity: Option<u32>) -> QueueModel {
        let m = Model::new(1000.0, Servers::Finite(c))
            .with_capacity(capacity)
            .with_discipline(discipline)
            .with_classes(Classes::new(&[0.3, 0.7]).expect("valid classes"));
        QueueModel::new(&m, 1, 1_000_000)
    }

    fn queued(o: Outcome) -> Ticket {
        match o {
            Outcome::Queued(t) => t,
            other => panic!("expected Queued, got {other:?}"),
        }
    }

    fn done(p: Poll) -> Service {
        match p {
            Poll::Done(s) => s,
            other => panic!("expected Done, got {other:?}"),
        }
    }

    /// Admits `(a, S, class)` in order and returns the tickets.
    fn admit(m: &mut QueueModel, jobs: &[(u64, u64, u8)]) -> Vec<Ticket> {
        jobs.iter()
            .map(|&(a, s, k)| queued(m.arrive_with(a, s, k)))
            .collect()
    }

    /// The departure of every ticket, polled once at the end.
    fn departures(m: &mut QueueModel, tickets: &[Ticket]) -> Vec<u64> {
        tickets
            .iter()
            .map(|&t| done(m.poll(t, END)).departure_ns)
            .collect()
    }

    #[test]
    fn lcfs_by_hand() {
        let mut m = engine(Discipline::Lcfs, 1, None);
        let t = admit(&mut m, &[(0, 10, 0), (1, 5, 0), (2, 3, 0)]);
        // 0 runs 0–10; 1 then 2 wait; at 10 the latest (2) runs 10–13, then 1 runs 13–18.
        assert_eq!(
            t.iter().map(|t| t.tentative_ns).collect::<Vec<_>>(),
            [10, 15, 13]
        );
        // Between events: 1's departure if nothing else arrives, with 2 now ahead of it.
        assert_eq!(m.poll(t[1], 12), Poll::Pending(18));
        assert_eq!(m.poll(t[2], 12), Poll::Pending(13));
        let s = done(m.poll(t[2], 13));
        assert_eq!((s.arrival_ns, s.wait_ns, s.service_ns), (2, 8, 3));
        assert_eq!(departures(&mut m, &t[..2]), [10, 18]);

        let mut m = engine(Discipline::Lcfs, 2, None);
        let t = admit(
            &mut m,
            &[(0, 10, 0), (0, 4, 0), (1, 3, 0), (2, 6, 0), (3, 1, 0)],
        );
        // Servers: 0 on 0–10, 1 on 0–4; at 4 the latest (4) runs 4–5, at 5 then 3 runs 5–11,
        // at 10 then 2 runs 10–13. Waiting with two servers: the next free server plus S.
        assert_eq!(t[4].tentative_ns, 5);
        assert_eq!(t[2].tentative_ns, 4 + 3);
        assert_eq!(departures(&mut m, &t), [10, 4, 13, 11, 5]);
    }

    #[test]
    fn processor_sharing_by_hand() {
        let mut m = engine(Discipline::Ps, 1, None);
        let t = admit(&mut m, &[(0, 6, 0), (2, 2, 0)]);
        // 0 alone on 0–2 (4 left); then both at rate 1/2: 1 leaves at 6, 0 at 6 + 2 = 8.
        assert_eq!(t[0].tentative_ns, 6);
        assert_eq!(t[1].tentative_ns, 6);
        // 0 is not the front: after the front leaves at 6 it still needs 2 at rate ≤ 1.
        assert_eq!(m.poll(t[0], 3), Poll::Pending(8));
        assert_eq!(departures(&mut m, &t), [8, 6]);

        let mut m = engine(Discipline::Ps, 2, None);
        let t = admit(&mut m, &[(0, 4, 0), (0, 8, 0), (0, 12, 0)]);
        // Three on two servers at rate 2/3: 0 leaves at 6 (V = 4); then rate 1: 1 needs 4 more
        // (10), 2 needs 8 more (14). Both servers busy to 10, one to 14: 24 of work.
        assert_eq!(departures(&mut m, &t), [6, 10, 14]);
        let mut m = engine(Discipline::Ps, 1, None);
        let t = admit(&mut m, &[(0, 3, 0), (0, 3, 0), (0, 3, 0)]);
        assert_eq!(departures(&mut m, &t), [9, 9, 9]);
        // Fractions of a nanosecond carry: 1 ns each for 3 at rate 1/3 is 3 ns, then the
        // arrivals' shares are exact.
        let mut m = engine(Discipline::Ps, 1, None);
        let t = admit(&mut m, &[(0, 1, 0), (0, 1, 0), (0, 2, 0), (1, 1, 0)]);
        // 0–1: three at 1/3 (V = 1/3); four at 1/4 until 0 and 1 finish (V = 1, at
        // 1 + 4·(2/3) = 11/3); then two: job 3 (vf = 4/3) at 11/3 + 2/3 = 13/3, job 2 (vf 2)
        // then alone: 13/3 + 2/3 = 5.
        assert_eq!(departures(&mut m, &t), [4, 4, 5, 4]);
    }

    #[test]
    fn priority_by_hand() {
        // Non-preemptive, one server: 0 (class 1) runs 0–10; then class 0 oldest first (2:
        // 10–13, 3: 13–15), then 1 (15–20).
        let mut m = engine(Discipline::Priority, 1, None);
        let t = admit(&mut m, &[(0, 10, 1), (1, 5, 1), (2, 3, 0), (3, 2, 0)]);
        assert_eq!(
            t.iter().map(|t| t.tentative_ns).collect::<Vec<_>>(),
            [10, 15, 13, 15]
        );
        assert_eq!(m.poll(t[1], 9), Poll::Pending(20));
        assert_eq!(departures(&mut m, &t), [10, 20, 13, 15]);
        // Two servers: both free at 10 take class 0 first.
        let mut m = engine(Discipline::Priority, 2, None);
        let t = admit(&mut m, &[(0, 10, 1), (0, 10, 1), (1, 5, 1), (2, 3, 0)]);
        assert_eq!(departures(&mut m, &t), [10, 10, 15, 13]);

        // Preemptive-resume, one server: 1 (class 0) preempts 0 at 2 (8 left) and runs 2–5;
        // 3 (class 0) then runs 5–7; 0 resumes 7–15; 2 (class 1, after 0) runs 15–19.
        let mut m = engine(Discipline::PriorityPreemptive, 1, None);
        let t = admit(&mut m, &[(0, 10, 1), (2, 3, 0), (3, 4, 1), (4, 2, 0)]);
        assert_eq!(
            t.iter().map(|t| t.tentative_ns).collect::<Vec<_>>(),
            [10, 5, 17, 7]
        );
        assert_eq!(m.poll(t[0], 6), Poll::Pending(15));
        assert_eq!(m.poll(t[2], 6), Poll::Pending(19));
        let s = done(m.poll(t[0], 15));
        assert_eq!((s.wait_ns, s.service_ns, s.class), (5, 10, 1));
        assert_eq!(departures(&mut m, &t[1..]), [5, 19, 7]);
        // Two servers: 2 (class 0) preempts the lowest ranked in service, 1 (later arrival).
        let mut m = engine(Discipline::PriorityPreemptive, 2, None);
        let t = admit(&mut m, &[(0, 10, 1), (0, 10, 1), (1, 2, 0)]);
        assert_eq!(departures(&mut m, &t), [10, 12, 3]);
    }

    #[test]
    fn one_class_priority_is_fcfs() {
        let mk = |d: Discipline, c: u32| {
            let m = Model::new(1000.0, Servers::Finite(c)).with_discipline(d);
            QueueModel::new(&m, 7, 1_000_000)
        };
        for c in [1, 3] {
            let mut fcfs = mk(Discipline::Fcfs, c);
            let mut np = mk(Discipline::Priority, c);
            let mut pr = mk(Discipline::PriorityPreemptive, c);
            let jobs = random_jobs(5_000, 0.95 * f64::from(c) * 1000.0, 1, 11 + u64::from(c));
            let want: Vec<u64> = jobs
                .iter()
                .map(|&(a, s, _)| served(fcfs.arrive_with(a, s, 0)).departure_ns)
                .collect();
            let np_t = admit(&mut np, &jobs);
            let pr_t = admit(&mut pr, &jobs);
            assert_eq!(departures(&mut np, &np_t), want, "c = {c}");
            assert_eq!(departures(&mut pr, &pr_t), want, "c = {c}");
        }
    }

    #[test]
    fn capacity_counts_every_present_request() {
        for d in [
            Discipline::Lcfs,
            Discipline::Ps,
            Discipline::Priority,
            Discipline::PriorityPreemptive,
        ] {
            let mut m = engine(d, 1, Some(2));
            queued(m.arrive_with(0, 100, 1));
            let b = queued(m.arrive_with(1, 100, 0));
            assert_eq!(m.arrive_with(2, 100, 0), Outcome::Blocked, "{d}");
            // A released request still holds its place until it leaves.
            m.release(b);
            assert_eq!(m.arrive_with(3, 100, 0), Outcome::Blocked, "{d}");
            assert_eq!(m.in_system(3), 2, "{d}");
            let s = m.stats();
            assert_eq!((s.arrivals, s.accepted, s.blocked), (4, 2, 2), "{d}");
        }
        // Non-preemptive LCFS: the first leaves at 100, and a departure at the instant of an
        // arrival happens first.
        let mut m = engine(Discipline::Lcfs, 1, Some(2));
        let t = admit(&mut m, &[(0, 100, 0), (1, 100, 0)]);
        assert_eq!(m.arrive_with(99, 1, 0), Outcome::Blocked);
        let c = queued(m.arrive_with(100, 1, 0));
        assert_eq!(c.tentative_ns, 201);
        assert_eq!(departures(&mut m, &[t[0], c, t[1]]), [100, 201, 200]);
        // Overflow without a capacity.
        let m = Model::new(1000.0, Servers::Finite(1)).with_discipline(Discipline::Ps);
        let mut m = QueueModel::new(&m, 1, 2);
        queued(m.arrive_with(0, 10, 0));
        queued(m.arrive_with(0, 10, 0));
        assert_eq!(m.arrive_with(0, 10, 0), Outcome::Overflow);
        assert_eq!(m.stats().overflow, 1);
    }

    #[test]
    fn classes_are_drawn_one_per_arrival_and_given_ones_override() {
        let classes = Classes::new(&[0.3, 0.7]).expect("valid classes");
        let model = Model::new(1000.0, Servers::Finite(1)).with_classes(classes);
        let mut m = QueueModel::new(&model, 5, 1_000_000);
        let mut draws = rng(5, CLASS_STREAM);
        let mut counts = [0u32; 2];
        for i in 0..10_000u64 {
            let want = classes.draw(draws.random::<f64>());
            // Every third arrival names its class: it takes no other draw's place.
            let given = (i % 3 == 0).then_some(1);
            let s = served(m.arrive(i * 2_000_000, given));
            assert_eq!(s.class, given.unwrap_or(want), "arrival {i}");
            if given.is_none() {
                counts[usize::from(want)] += 1;
            }
        }
        // 6,666 drawn with P(0) = 0.3: sd = √(6666·0.21) ≈ 37; 0.3·6666 ± 6 sd.
        assert!((1_778..=2_222).contains(&counts[0]), "{counts:?}");
        // Clamped to MAX_CLASSES − 1; one class: no draw, class 0 unless given.
        assert_eq!(served(m.arrive(1 << 40, Some(200))).class, 7);
        let mut one = QueueModel::new(&Model::new(1000.0, Servers::Finite(1)), 5, 100);
        assert_eq!(served(one.arrive(0, None)).class, 0);
        assert_eq!(served(one.arrive(1, Some(3))).class, 3);
        // Under a priority discipline the ticket carries it, and the done service.
        let mut m = engine(Discipline::Priority, 1, None);
        let t = queued(m.arrive(0, Some(6)));
        assert_eq!(t.class, 6);
        assert_eq!(done(m.poll(t, END)).class, 6);
        // The same draws as FCFS: the class generator is separate from the service one.
        let mut f = QueueModel::new(&model, 5, 1_000_000);
        let mut p = QueueModel::new(&model.with_discipline(Discipline::Priority), 5, 1_000_000);
        for i in 0..100 {
            let s = served(f.arrive(i * 10_000_000, None));
            let t = queued(p.arrive(i * 10_000_000, None));
            assert_eq!(s.class, t.class);
            assert_eq!(s.departure_ns, done(p.poll(t, END)).departure_ns);
        }
    }

    #[test]
    fn departures_one_by_one_are_the_polled_ones_in_time_order() {
        for d in [
            Discipline::Lcfs,
            Discipline::Ps,
            Discipline::Priority,
            Discipline::PriorityPreemptive,
        ] {
            for c in [1u32, 2] {
                let jobs = random_jobs(5_000, 0.9 * f64::from(c) * 1000.0, 3, 40 + u64::from(c));
                let mut polled = engine(d, c, None);
                let tickets = admit(&mut polled, &jobs);
                let want = departures(&mut polled, &tickets);
                // Driven by hand: every departure due at or before an arrival first.
                let mut m = engine(d, c, None);
                let mut slot_of = Vec::new();
                let mut got = vec![0u64; jobs.len()];
                let mut last = 0;
                let mut take = |m: &mut QueueModel, until: u64, slot_of: &[usize]| {
                    while let Some(t) = m.next_departure_ns().filter(|&t| t <= until) {
                        let (id, sv) = m.depart_next().expect("a departure");
                        assert_eq!(sv.departure_ns, t, "{d} c = {c}");
                        assert!(t >= last, "{d} c = {c}: out of time order");
                        last = t;
                        got[slot_of[id as usize]] = t;
                    }
                };
                for (i, &(a, s, k)) in jobs.iter().enumerate() {
                    take(&mut m, a, &slot_of);
                    let t = queued(m.arrive_with(a, s, k));
                    let id = t.id as usize;
                    if slot_of.len() <= id {
                        slot_of.resize(id + 1, 0);
                    }
                    slot_of[id] = i;
                }
                take(&mut m, END, &slot_of);
                assert_eq!(got, want, "{d} c = {c}");
                assert_eq!(m.in_system(END), 0);
                assert_eq!(m.next_departure_ns(), None);
            }
        }
        // Simultaneous departures: the earlier arrival first, whatever the slots. x leaves at 1
        // and its slot (0) goes to c, which leaves at 10 with a (slot 1, the earlier arrival).
        for d in [Discipline::Lcfs, Discipline::PriorityPreemptive] {
            let mut m = engine(d, 2, None);
            let x = queued(m.arrive_with(0, 1, 0));
            let a = queued(m.arrive_with(0, 10, 0));
            let _ = done(m.poll(x, 1));
            let c = queued(m.arrive_with(1, 9, 0));
            assert!(c.id < a.id, "{d}");
            let first = m.depart_next().expect("a departure");
            let second = m.depart_next().expect("a departure");
            assert_eq!(
                (first.0, first.1.arrival_ns, first.1.departure_ns),
                (a.id, 0, 10)
            );
            assert_eq!(
                (second.0, second.1.arrival_ns, second.1.departure_ns),
                (c.id, 1, 10)
            );
        }
        // FCFS: no departures to take one by one.
        let mut f = model(Servers::Finite(1), None, ServiceKind::Const);
        served(f.arrive_with_service(0, 10));
        assert_eq!(f.next_departure_ns(), None);
        assert_eq!(f.depart_next(), None);
    }

    #[test]
    fn tickets_are_answered_once_and_released_ones_are_refused() {
        let mut m = engine(Discipline::Lcfs, 1, None);
        let t = admit(&mut m, &[(0, 10, 0), (1, 10, 0), (2, 10, 0)]);
        // Released before it leaves: refused, yet it still holds the server (0–10) and its
        // place until it leaves.
        m.release(t[0]);
        assert_eq!(m.poll(t[0], 5), Poll::Unknown);
        assert_eq!(m.in_system(5), 3);
        assert_eq!(m.busy_servers(5), 1);
        // Its slot is freed at its departure (10) and reused with a new generation.
        let d = queued(m.arrive_with(11, 10, 0));
        assert_eq!(d.id, t[0].id);
        assert_ne!(d.generation, t[0].generation);
        assert_eq!(m.poll(t[0], 11), Poll::Unknown);
        // Answered once; then the ticket is stale.
        assert_eq!(done(m.poll(t[2], 20)).departure_ns, 20);
        assert_eq!(m.poll(t[2], 20), Poll::Unknown);
        // 1 then runs 30–40 (after d, the later arrival).
        assert_eq!(m.poll(d, 25), Poll::Pending(30));
        assert_eq!(done(m.poll(d, 30)).departure_ns, 30);
        // Released after it left (another call processed its departure): the slot is freed at
        // once, and is the next one used.
        assert_eq!(m.in_system(45), 0);
        m.release(t[1]);
        assert_eq!(m.poll(t[1], END), Poll::Unknown);
        let e = queued(m.arrive_with(50, 1, 0));
        assert_eq!(
            (e.id, e.generation),
            (t[1].id, t[1].generation.wrapping_add(1))
        );
        // A ticket of no slot, or a poll before the departure.
        let ghost = Ticket {
            id: 1_000,
            generation: 0,
            tentative_ns: 0,
            class: 0,
        };
        assert_eq!(m.poll(ghost, END), Poll::Unknown);
        // FCFS gives no tickets.
        let mut f = model(Servers::Finite(1), None, ServiceKind::Const);
        assert_eq!(f.poll(ghost, 0), Poll::Unknown);
    }

    /// `n` arrivals `(a, S, class)`: Poisson at `lambda`, exponential service at μ = 1000/s,
    /// classes uniform over `classes`.
    fn random_jobs(n: usize, lambda: f64, classes: u8, seed: u64) -> Vec<(u64, u64, u8)> {
        let mut r = rng(seed, 77);
        let mut t = 0u64;
        (0..n)
            .map(|_| {
                t += (exp_sample(1.0 / lambda, &mut r) * 1e9).round() as u64;
                let s = (exp_sample(1e-3, &mut r) * 1e9).round() as u64;
                let k = (r.random::<f64>() * f64::from(classes)) as u8;
                (t, s, k)
            })
            .collect()
    }

    /// ∫₀^t N dt by brute force from the arrivals and departures.
    fn brute_integral(jobs: &[(u64, u64, u8)], deps: &[u64], t: u64) -> u128 {
        jobs.iter()
            .zip(deps)
            .filter(|((a, _, _), _)| *a <= t)
            .map(|((a, _, _), &d)| u128::from(d.min(t) - a))
            .sum()
    }

    #[test]
    fn polls_between_events_change_nothing() {
        for d in [
            Discipline::Lcfs,
            Discipline::Ps,
            Discipline::Priority,
            Discipline::PriorityPreemptive,
        ] {
            for c in [1u32, 2] {
                let name = format!("{d} c = {c}");
                let jobs = random_jobs(10_000, 0.9 * f64::from(c) * 1000.0, 3, 100 + u64::from(c));
                // Polled only at the end.
                let mut quiet = engine(d, c, None);
                let tickets = admit(&mut quiet, &jobs);
                let want = departures(&mut quiet, &tickets);
                // Polled, read and integrated at many times between the arrivals.
                let mut busy = engine(d, c, None);
                let mut r = rng(9, 9);
                let mut got = vec![None; jobs.len()];
                let mut open: Vec<(usize, Ticket)> = Vec::new();
                let mut waited = 0;
                for (i, &(a, s, k)) in jobs.iter().enumerate() {
                    let t = queued(busy.arrive_with(a, s, k));
                    assert_eq!(t.tentative_ns, tickets[i].tentative_ns, "{name}: {i}");
                    // The tentative departure is never after the real one.
                    assert!(t.tentative_ns <= want[i], "{name}: {i} tentative");
                    assert!(t.tentative_ns >= a + s, "{name}: {i} at least S");
                    if want[i] > a + s {
                        waited += 1;
                    }
                    open.push((i, t));
                    let next = jobs.get(i + 1).map_or(a + 50_000_000, |j| j.0);
                    for _ in 0..3 {
                        if open.is_empty() {
                            break;
                        }
                        let now = a + (r.random::<f64>() * (next - a) as f64) as u64;
                        let now = now.max(a);
                        let pick = (r.random::<f64>() * open.len() as f64) as usize;
                        let (j, tk) = open[pick.min(open.len() - 1)];
                        match busy.poll(tk, now) {
                            Poll::Done(sv) => {
                                assert!(sv.departure_ns <= now);
                                got[j] = Some(sv.departure_ns);
                                open.swap_remove(pick.min(open.len() - 1));
                            }
                            Poll::Pending(p) => {
                                assert!(p > now, "{name}: {j} pending in the past");
                                assert!(p <= want[j], "{name}: {j} pending after departure");
                            }
                            Poll::Unknown => panic!("{name}: {j} unknown"),
                        }
                        assert!(busy.busy_servers(now) <= c as usize);
                        let _ = busy.in_system(now);
                        let _ = busy.in_system_integral_ns(now);
                    }
                }
                for (j, tk) in open {
                    got[j] = Some(done(busy.poll(tk, END)).departure_ns);
                }
                let got: Vec<u64> = got
                    .into_iter()
                    .map(|d| d.expect("every job polled"))
                    .collect();
                assert_eq!(got, want, "{name}");
                assert!(waited > 1_000, "{name}: only {waited} waited");
                // The integral, exact at any time (after the last arrival: between them the
                // models have processed different events, which the brute force does not see).
                let end = jobs[jobs.len() - 1].0;
                for t in [end, end + 1_000_000, END] {
                    let mut fresh = engine(d, c, None);
                    admit(&mut fresh, &jobs);
                    assert_eq!(
                        fresh.in_system_integral_ns(t),
                        brute_integral(&jobs, &want, t),
                        "{name}: integral at {t}"
                    );
                }
                assert_eq!(
                    busy.in_system_integral_ns(END),
                    brute_integral(&jobs, &want, END),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn the_integral_is_exact_between_events() {
        for d in [
            Discipline::Fcfs,
            Discipline::Ps,
            Discipline::PriorityPreemptive,
        ] {
            let jobs = random_jobs(2_000, 1_800.0, 2, 5);
            let mut probe = engine(d, 2, None);
            let outcomes: Vec<Outcome> = jobs
                .iter()
                .map(|&(a, s, k)| probe.arrive_with(a, s, k))
                .collect();
            let deps: Vec<u64> = outcomes
                .iter()
                .map(|o| match *o {
                    Outcome::Served(s) => s.departure_ns,
                    Outcome::Queued(t) => done(probe.poll(t, END)).departure_ns,
                    other => panic!("{other:?}"),
                })
                .collect();
            // At the arrivals and halfway to the next, in order.
            let mut m = engine(d, 2, None);
            for (i, &(a, s, k)) in jobs.iter().enumerate() {
                m.arrive_with(a, s, k);
                assert_eq!(
                    m.in_system_integral_ns(a),
                    brute_integral(&jobs, &deps, a),
                    "{d}: at {i}"
                );
                let mid = jobs.get(i + 1).map_or(a + 1_000, |j| (a + j.0) / 2);
                assert_eq!(
                    m.in_system_integral_ns(mid),
                    brute_integral(&jobs, &deps, mid),
                    "{d}: after {i}"
                );
                let present = jobs[..=i]
                    .iter()
                    .zip(&deps)
                    .filter(|(j, d)| j.0 <= mid && **d > mid)
                    .count();
                assert_eq!(m.in_system(mid), present, "{d}: present after {i}");
            }
        }
    }

    #[test]
    fn fcfs_reads_change_no_outcome() {
        // Reads (in_system, busy_servers, the integral) at times *after* the next arrival, as a
        // metrics scrape racing an I/O thread does, against no reads at all: the same outcomes,
        // blocking included.
        let m = Model::new(1000.0, Servers::Finite(2)).with_capacity(Some(4));
        let jobs = random_jobs(20_000, 2_400.0, 1, 8);
        let mut quiet = QueueModel::new(&m, 1, 100);
        let mut read = QueueModel::new(&m, 1, 100);
        let mut blocked = 0;
        for (i, &(a, s, _)) in jobs.iter().enumerate() {
            let want = quiet.arrive_with_service(a, s);
            assert_eq!(read.arrive_with_service(a, s), want, "arrival {i}");
            blocked += usize::from(want == Outcome::Blocked);
            let ahead = jobs.get(i + 2).map_or(a, |j| j.0);
            let _ = read.in_system(ahead);
            let _ = read.in_system_integral_ns(ahead);
            let _ = read.busy_servers(ahead);
        }
        assert!(blocked > 1_000, "only {blocked} blocked");
        let end = jobs[jobs.len() - 1].0 + 1_000_000_000;
        assert_eq!(
            read.in_system_integral_ns(end),
            quiet.in_system_integral_ns(end)
        );
        assert_eq!(read.in_system(end), 0);
    }
}
