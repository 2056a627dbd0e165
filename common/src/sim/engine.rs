//! The event engine behind [`super::replay`] and the simulations: one queue (c servers or
//! infinitely many, a limit on the number present, a discipline), fed arrivals in time order and
//! asked for its departures in time order.
//!
//! The event calendar is split in two: the arrivals are the caller's (a sequence of customers, a
//! Poisson schedule, users back from thinking), the departures the engine's. The caller keeps the
//! two in time order by taking every departure due at or before the next arrival
//! ([`Engine::depart_by`]) before making it arrive ([`Engine::arrive`]): a departure at the very
//! instant of an arrival happens first, the textbook convention (and `qserve`'s). A network of
//! queues ([`super::network`]) interleaves its stations by asking each for the time of its next
//! departure ([`Engine::next_departure_ns`]). Under every discipline, departures due at one
//! instant leave in the order the customers arrived.
//!
//! Only the customers present are held, so a simulation of any length runs in the memory of its
//! longest queue. Per discipline:
//! - non-preemptive (FCFS, LCFS, priority): the customers in service sit in a calendar of their
//!   departure times (a binary heap); the waiting ones in a FIFO, a stack, or one FIFO per class.
//!   A departure frees a server that takes the next waiting customer at once. All integer ns.
//! - preemptive-resume priority: the customers in service are kept by rank (class, then arrival
//!   order) in an ordered map, so the lowest-ranked is at hand to be preempted; a preempted
//!   customer keeps its remaining work (integer ns) and goes back to the head of its class, which
//!   it outranks. Departures are in a heap whose entries a preemption leaves stale: an entry counts
//!   only if it still matches the customer's current departure.
//! - processor sharing: each of the n present is served at rate min(1, c/n), so all advance
//!   together in *virtual time* V (the work each has received since the busy period began,
//!   dV/dt = min(1, c/n)). A customer arriving at virtual time V with work S leaves at virtual
//!   time V + S, which never changes: departures are in the order of these finish tags (a heap),
//!   and the next one is at real time t + (F − V)/rate. V and the real time of the last event are
//!   `f64` nanoseconds (V restarts at 0 with each busy period, so it stays small and exact for
//!   integer and half-integer work); departures are reported rounded to the nearest ns.
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use crate::model::{Discipline, Model, Servers};

/// A customer as the engine keeps it: the caller's identifier, what the result needs back, and
/// its arrival order (the tie-breaker of every discipline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Job {
    id: u64,
    arrival_ns: u64,
    class: u8,
    seq: u64,
    /// When it first had a server (`u64::MAX` until then; its arrival under processor sharing).
    start_ns: u64,
}

/// A customer that left the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Departure {
    /// The identifier given to [`Engine::arrive`].
    pub id: u64,
    /// Its arrival time (ns).
    pub arrival_ns: u64,
    /// Its class.
    pub class: u8,
    /// When it first had a server (ns): under processor sharing its arrival; under preemption
    /// its first start, however often it was preempted after.
    pub start_ns: u64,
    /// Its departure time (ns).
    pub departure_ns: u64,
}

impl Job {
    fn departed(self, departure_ns: u64) -> Departure {
        Departure {
            id: self.id,
            arrival_ns: self.arrival_ns,
            class: self.class,
            start_ns: self.start_ns.min(departure_ns),
            departure_ns,
        }
    }
}

/// One queue under simulation; see the module docs.
#[derive(Debug)]
pub(crate) struct Engine {
    /// Customers present (waiting and in service).
    present: usize,
    /// An arrival finding this many present is blocked.
    limit: usize,
    /// Arrivals admitted so far (the next one's `seq`).
    seq: u64,
    core: Core,
}

#[derive(Debug)]
enum Core {
    NonPreemptive(NonPreemptive),
    Preemptive(Preemptive),
    Sharing(Sharing),
}

impl Engine {
    /// An empty queue with the servers and discipline of `model` (its service times are the
    /// caller's) that blocks an arrival finding `limit` present.
    pub fn new(model: &Model, limit: usize) -> Engine {
        let servers = match model.servers {
            Servers::Finite(c) => usize::try_from(c).unwrap_or(usize::MAX),
            Servers::Infinite => usize::MAX,
        };
        let core = match model.discipline {
            Discipline::Fcfs => {
                Core::NonPreemptive(NonPreemptive::new(servers, Waiting::Fifo(VecDeque::new())))
            }
            Discipline::Lcfs => {
                Core::NonPreemptive(NonPreemptive::new(servers, Waiting::Lifo(Vec::new())))
            }
            Discipline::Priority => {
                Core::NonPreemptive(NonPreemptive::new(servers, Waiting::ByClass(Vec::new())))
            }
            Discipline::PriorityPreemptive => Core::Preemptive(Preemptive::new(servers)),
            Discipline::Ps => Core::Sharing(Sharing::new(servers)),
        };
        Engine {
            present: 0,
            limit,
            seq: 0,
            core,
        }
    }

    /// A customer `id` arriving at `arrival_ns` with `service_ns` of work: admitted (`true`) or
    /// blocked because `limit` were present. Every departure due at or before `arrival_ns` must
    /// have been taken with [`Engine::depart_by`] first, and arrivals come in time order.
    pub fn arrive(&mut self, id: u64, arrival_ns: u64, service_ns: u64, class: u8) -> bool {
        if self.present >= self.limit {
            return false;
        }
        let job = Job {
            id,
            arrival_ns,
            class,
            seq: self.seq,
            start_ns: u64::MAX,
        };
        self.seq += 1;
        self.present += 1;
        match &mut self.core {
            Core::NonPreemptive(q) => q.arrive(job, service_ns),
            Core::Preemptive(q) => q.arrive(job, service_ns),
            Core::Sharing(q) => q.arrive(job, service_ns),
        }
        true
    }

    /// The next departure if it is due at or before `t_ns` (then it has happened: a waiting
    /// customer may have taken its server), else `None`. `u64::MAX` drains the queue.
    pub fn depart_by(&mut self, t_ns: u64) -> Option<Departure> {
        let d = match &mut self.core {
            Core::NonPreemptive(q) => q.depart_by(t_ns),
            Core::Preemptive(q) => q.depart_by(t_ns),
            Core::Sharing(q) => q.depart_by(t_ns),
        }?;
        self.present -= 1;
        Some(d)
    }

    /// When the next departure is due if nothing else arrives (rounded to the nearest ns under
    /// processor sharing, as [`Engine::depart_by`] reports it), or `None` when the queue is
    /// empty. `depart_by(u64::MAX)` takes that departure; among departures due at one instant
    /// the earliest arrival leaves first.
    pub fn next_departure_ns(&mut self) -> Option<u64> {
        match &mut self.core {
            Core::NonPreemptive(q) => q.calendar.peek().map(|Reverse(s)| s.at_ns),
            Core::Preemptive(q) => q.next_departure_ns(),
            Core::Sharing(q) => q.next_departure().map(|(at, _)| at.round() as u64),
        }
    }
}

/// A departure on a calendar: ordered by time, then by arrival order (two customers leaving at
/// the same instant leave in the order they came: in a single queue their fates are the same
/// either way; in a network it decides which reaches the next station first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scheduled {
    at_ns: u64,
    job: Job,
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at_ns, self.job.seq).cmp(&(other.at_ns, other.job.seq))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A customer waiting with its whole service ahead of it.
#[derive(Debug, Clone, Copy)]
struct Pending {
    job: Job,
    service_ns: u64,
}

/// The waiting room of a non-preemptive discipline.
#[derive(Debug)]
enum Waiting {
    /// FCFS: the oldest first.
    Fifo(VecDeque<Pending>),
    /// LCFS: the latest first.
    Lifo(Vec<Pending>),
    /// Priority: the oldest of the lowest class number first (index = class).
    ByClass(Vec<VecDeque<Pending>>),
}

impl Waiting {
    fn push(&mut self, p: Pending) {
        match self {
            Waiting::Fifo(q) => q.push_back(p),
            Waiting::Lifo(s) => s.push(p),
            Waiting::ByClass(by) => {
                let k = usize::from(p.job.class);
                if by.len() <= k {
                    by.resize_with(k + 1, VecDeque::new);
                }
                by[k].push_back(p);
            }
        }
    }

    /// The customer a server that just became free takes.
    fn take(&mut self) -> Option<Pending> {
        match self {
            Waiting::Fifo(q) => q.pop_front(),
            Waiting::Lifo(s) => s.pop(),
            Waiting::ByClass(by) => by.iter_mut().find_map(VecDeque::pop_front),
        }
    }
}

/// FCFS, LCFS and non-preemptive priority: a customer in service keeps its server to the end.
#[derive(Debug)]
struct NonPreemptive {
    servers: usize,
    /// The customers in service, by departure time (one per busy server).
    calendar: BinaryHeap<Reverse<Scheduled>>,
    waiting: Waiting,
}

impl NonPreemptive {
    fn new(servers: usize, waiting: Waiting) -> Self {
        NonPreemptive {
            servers,
            calendar: BinaryHeap::new(),
            waiting,
        }
    }

    fn arrive(&mut self, mut job: Job, service_ns: u64) {
        if self.calendar.len() < self.servers {
            job.start_ns = job.arrival_ns;
            self.calendar.push(Reverse(Scheduled {
                at_ns: job.arrival_ns.saturating_add(service_ns),
                job,
            }));
        } else {
            self.waiting.push(Pending { job, service_ns });
        }
    }

    fn depart_by(&mut self, t_ns: u64) -> Option<Departure> {
        let Reverse(next) = *self.calendar.peek()?;
        if next.at_ns > t_ns {
            return None;
        }
        self.calendar.pop();
        if let Some(mut p) = self.waiting.take() {
            // The freed server starts the next customer at the departure instant.
            p.job.start_ns = next.at_ns;
            self.calendar.push(Reverse(Scheduled {
                at_ns: next.at_ns.saturating_add(p.service_ns),
                job: p.job,
            }));
        }
        Some(next.job.departed(next.at_ns))
    }
}

/// A customer of the preemptive discipline in service: `remaining_ns` of work left when it
/// (re)started at `since_ns`.
#[derive(Debug, Clone, Copy)]
struct Running {
    job: Job,
    since_ns: u64,
    remaining_ns: u64,
}

impl Running {
    fn departure_ns(&self) -> u64 {
        self.since_ns.saturating_add(self.remaining_ns)
    }
}

/// A customer of the preemptive discipline waiting, with the work it has left.
#[derive(Debug, Clone, Copy)]
struct Suspended {
    job: Job,
    remaining_ns: u64,
}

/// The rank of a customer: lower class number first, then earlier arrival.
type Rank = (u8, u64);

fn rank(job: &Job) -> Rank {
    (job.class, job.seq)
}

/// Preemptive-resume priority: the customers in service are always the c highest-ranked present.
#[derive(Debug)]
struct Preemptive {
    servers: usize,
    running: BTreeMap<Rank, Running>,
    /// Departure times of the customers in service, plus stale ones of customers preempted since
    /// (skipped when reached); at one instant by arrival order (`seq`), then the rank that finds
    /// the customer in `running`.
    calendar: BinaryHeap<Reverse<(u64, u64, Rank)>>,
    /// Waiting customers, one FIFO per class in arrival order (index = class).
    waiting: Vec<VecDeque<Suspended>>,
}

impl Preemptive {
    fn new(servers: usize) -> Self {
        Preemptive {
            servers,
            running: BTreeMap::new(),
            calendar: BinaryHeap::new(),
            waiting: Vec::new(),
        }
    }

    fn start(&mut self, mut job: Job, now_ns: u64, remaining_ns: u64) {
        job.start_ns = job.start_ns.min(now_ns);
        let r = Running {
            job,
            since_ns: now_ns,
            remaining_ns,
        };
        self.calendar
            .push(Reverse((r.departure_ns(), job.seq, rank(&job))));
        self.running.insert(rank(&job), r);
    }

    fn class_queue(&mut self, class: u8) -> &mut VecDeque<Suspended> {
        let k = usize::from(class);
        if self.waiting.len() <= k {
            self.waiting.resize_with(k + 1, VecDeque::new);
        }
        &mut self.waiting[k]
    }

    fn arrive(&mut self, job: Job, service_ns: u64) {
        let now = job.arrival_ns;
        if self.running.len() < self.servers {
            self.start(job, now, service_ns);
            return;
        }
        // Every server is busy: the arrival (the latest of all) outranks the lowest-ranked
        // customer in service only by a strictly lower class number.
        let lowest = self.running.last_key_value().map(|(k, _)| *k);
        match lowest {
            Some(key) if job.class < key.0 => {
                if let Some(r) = self.running.remove(&key) {
                    // Due strictly after `now` (a departure at `now` was taken first), so
                    // some work is left.
                    debug_assert!(r.departure_ns() > now, "a departure due now was not taken");
                    let done = now.saturating_sub(r.since_ns);
                    let remaining_ns = r.remaining_ns.saturating_sub(done);
                    // It outranks every waiting customer (those in service outrank those
                    // waiting), so it goes to the head of its class.
                    self.class_queue(r.job.class).push_front(Suspended {
                        job: r.job,
                        remaining_ns,
                    });
                }
                self.start(job, now, service_ns);
            }
            _ => self.class_queue(job.class).push_back(Suspended {
                job,
                remaining_ns: service_ns,
            }),
        }
    }

    /// Whether a calendar entry is the current departure of a customer in service (not left
    /// stale by a preemption).
    fn is_current(&self, at_ns: u64, key: &Rank) -> bool {
        self.running
            .get(key)
            .is_some_and(|r| r.departure_ns() == at_ns)
    }

    /// The next departure's time, dropping the stale entries ahead of it.
    fn next_departure_ns(&mut self) -> Option<u64> {
        loop {
            let Reverse((at_ns, _, key)) = *self.calendar.peek()?;
            if self.is_current(at_ns, &key) {
                return Some(at_ns);
            }
            self.calendar.pop();
        }
    }

    fn depart_by(&mut self, t_ns: u64) -> Option<Departure> {
        loop {
            let Reverse((at_ns, _, key)) = *self.calendar.peek()?;
            if at_ns > t_ns {
                return None;
            }
            self.calendar.pop();
            if !self.is_current(at_ns, &key) {
                continue; // stale: that customer was preempted (and has left or runs later)
            }
            let r = self.running.remove(&key)?;
            if let Some(s) = self.waiting.iter_mut().find_map(VecDeque::pop_front) {
                self.start(s.job, at_ns, s.remaining_ns);
            }
            return Some(r.job.departed(at_ns));
        }
    }
}

/// A processor-sharing customer by its finish tag (virtual time), then arrival order.
#[derive(Debug, Clone, Copy)]
struct Tagged {
    finish: f64,
    job: Job,
}

impl Ord for Tagged {
    fn cmp(&self, other: &Self) -> Ordering {
        self.finish
            .total_cmp(&other.finish)
            .then(self.job.seq.cmp(&other.job.seq))
    }
}

impl PartialOrd for Tagged {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Tagged {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Tagged {}

/// Processor sharing with c servers, in virtual time (see the module docs).
#[derive(Debug)]
struct Sharing {
    /// c (infinite for infinitely many servers).
    servers: f64,
    /// Virtual time: work received by each customer present since the busy period began (ns).
    virtual_ns: f64,
    /// Real time of the last event (ns).
    last_ns: f64,
    jobs: BinaryHeap<Reverse<Tagged>>,
}

impl Sharing {
    fn new(servers: usize) -> Self {
        Sharing {
            servers: if servers == usize::MAX {
                f64::INFINITY
            } else {
                servers as f64
            },
            virtual_ns: 0.0,
            last_ns: 0.0,
            jobs: BinaryHeap::new(),
        }
    }

    /// The rate at which each of the customers present is served: min(1, c/n).
    fn rate(&self) -> f64 {
        let n = self.jobs.len() as f64;
        if n <= self.servers {
            1.0
        } else {
            self.servers / n
        }
    }

    fn arrive(&mut self, mut job: Job, service_ns: u64) {
        job.start_ns = job.arrival_ns;
        // Never before the last event: a departure reported rounded down to the arrival's ns
        // (as a network processes it, before the arrival) may be a fraction of a ns after it.
        let now = (job.arrival_ns as f64).max(self.last_ns);
        if !self.jobs.is_empty() {
            self.virtual_ns += (now - self.last_ns) * self.rate();
        }
        self.last_ns = now;
        self.jobs.push(Reverse(Tagged {
            finish: self.virtual_ns + service_ns as f64,
            job,
        }));
    }

    /// The next departure's real time (unrounded) and tag.
    fn next_departure(&self) -> Option<(f64, Tagged)> {
        let Reverse(next) = *self.jobs.peek()?;
        let at = self.last_ns + (next.finish - self.virtual_ns).max(0.0) / self.rate();
        Some((at, next))
    }

    fn depart_by(&mut self, t_ns: u64) -> Option<Departure> {
        let (at, next) = self.next_departure()?;
        if at > t_ns as f64 {
            return None;
        }
        self.jobs.pop();
        // Exactly its tag: no rounding error carried from one departure to the next.
        self.virtual_ns = if self.jobs.is_empty() {
            0.0
        } else {
            next.finish
        };
        self.last_ns = at;
        // `as` saturates; `at` is at least the (integer) arrival time, so the rounded value is too.
        Some(next.job.departed(at.round() as u64))
    }
}
