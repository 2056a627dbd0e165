//! The event-driven engine behind every discipline whose departures depend on later arrivals
//! (LCFS, processor sharing, priority classes with or without preemption); see the
//! [queue module docs](super) for the disciplines, the ticket protocol and why it is exact.
//!
//! Jobs live in a slab (`jobs` with a free list), addressed by a [`Ticket`]'s `id` and checked
//! by its `generation`. The state changes only at events — an arrival, or a departure at or
//! before the time a call names — and every event is processed at its own time, so no result
//! depends on when the I/O threads call.
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use queuelab_common::model::{Discipline, MAX_CLASSES};

use super::{Poll, Service, Ticket};

/// Processor sharing rebases its virtual time on zero once it exceeds this (ns of attained
/// service), so that `f64` keeps a resolution of 10⁻⁶ ns however long the system stays busy.
const REBASE_V: f64 = 4_294_967_296.0;

/// Slack of the processor-sharing lower bound (ns): more than the `f64` error of the virtual
/// times between now and a departure (values below [`REBASE_V`] carry 10⁻⁶ ns of resolution),
/// so the bound never exceeds the departure once both are rounded.
const PS_SLACK: f64 = 1e-3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// An empty slot (on the free list).
    Free,
    /// Present, not being served.
    Waiting,
    /// Present and served (for PS: present).
    Running,
    /// Left at this time; the slot waits for its poll (or is freed at once if released).
    Departed(u64),
}

#[derive(Debug, Clone, Copy)]
struct Job {
    generation: u32,
    state: State,
    /// The connection closed: free the slot at departure, refuse polls.
    released: bool,
    class: u8,
    arrival: u64,
    service: u64,
    /// Arrival order (the tie-break of priority ranks).
    seq: u64,
    /// LCFS: the work in the stack up to and including this job when it was pushed; priority:
    /// the work ever enqueued in its class up to and including it.
    cum: u128,
    /// Non-preemptive: the departure once in service; preemptive: the start of the current
    /// service segment.
    since: u64,
    /// Preemptive: the work left at `since`.
    rem: u64,
    /// Preemptive: service segments started (older heap entries are stale).
    epoch: u32,
    /// PS: the virtual finish, `V(a) + S`.
    vf: f64,
}

impl Job {
    const EMPTY: Job = Job {
        generation: 0,
        state: State::Free,
        released: false,
        class: 0,
        arrival: 0,
        service: 0,
        seq: 0,
        cum: 0,
        since: 0,
        rem: 0,
        epoch: 0,
        vf: 0.0,
    };
}

/// Where non-preemptive disciplines keep their waiting requests (one per model, so the size of
/// the larger variant costs nothing).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Line {
    /// LCFS: a stack of ids, and the work in it.
    Stack { ids: Vec<u32>, work: u128 },
    /// Priority: a FIFO per class, the work ever enqueued and dequeued per class.
    Classes {
        queues: Box<[VecDeque<u32>; MAX_CLASSES]>,
        enq: [u128; MAX_CLASSES],
        deq: [u128; MAX_CLASSES],
    },
}

#[derive(Debug)]
enum Kind {
    /// LCFS and non-preemptive priority: a departure is known once service starts.
    NonPreemptive {
        /// (departure, seq, id) of the requests in service, earliest on top (among
        /// simultaneous departures the earliest arrival).
        running: BinaryHeap<Reverse<(u64, u64, u32)>>,
        line: Line,
    },
    /// Preemptive-resume priority.
    Preemptive {
        /// (class, seq, id) of the requests waiting (preempted ones included), best on top.
        waiting: BinaryHeap<Reverse<(u8, u64, u32)>>,
        /// (departure if not preempted, seq, id, epoch) of the requests in service, earliest on
        /// top (among simultaneous departures the earliest arrival); entries whose epoch is not
        /// the job's are stale.
        by_departure: BinaryHeap<Reverse<(u64, u64, u32, u32)>>,
        /// (class, seq, id, epoch) of the requests in service, the lowest ranked on top.
        by_rank: BinaryHeap<(u8, u64, u32, u32)>,
        running: usize,
        /// Work ever arrived per class, and work done per class (finished service segments).
        enq: [u128; MAX_CLASSES],
        done: [u128; MAX_CLASSES],
    },
    /// Processor sharing in virtual time.
    Sharing {
        /// (virtual finish as `f64` bits — non-negative, so the bits order as the values —,
        /// seq, id), earliest on top.
        heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
        /// Virtual time at the last event: the service each present job has received since
        /// `V` was at its arrival value.
        v: f64,
        /// The last event's exact time is `t_last + t_off` (a departure falls between two
        /// nanoseconds; `t_last` is the rounded one), |t_off| ≤ 1/2.
        t_off: f64,
    },
}

/// The engine; [`super::QueueModel`] holds one for every discipline but FCFS.
#[derive(Debug)]
pub(super) struct Engine {
    kind: Kind,
    c: usize,
    jobs: Vec<Job>,
    free: Vec<u32>,
    /// Time of the last event (ns).
    t_last: u64,
    /// Requests present (waiting or in service).
    present: usize,
    /// ∫₀^t_last N(t) dt (request-ns).
    integral: u128,
    /// Arrivals admitted.
    seq: u64,
}

fn sat(x: u128) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

impl Engine {
    /// The engine of `discipline` with `c ≥ 1` servers, its slab reserved for `reserve` jobs.
    pub(super) fn new(discipline: Discipline, c: usize, reserve: usize) -> Engine {
        let c = c.max(1);
        let kind = match discipline {
            Discipline::Ps => Kind::Sharing {
                heap: BinaryHeap::with_capacity(reserve),
                v: 0.0,
                t_off: 0.0,
            },
            Discipline::PriorityPreemptive => Kind::Preemptive {
                waiting: BinaryHeap::with_capacity(reserve),
                by_departure: BinaryHeap::with_capacity(2 * c.min(reserve) + 64),
                by_rank: BinaryHeap::with_capacity(2 * c.min(reserve) + 64),
                running: 0,
                enq: [0; MAX_CLASSES],
                done: [0; MAX_CLASSES],
            },
            Discipline::Lcfs => Kind::NonPreemptive {
                running: BinaryHeap::with_capacity(c.min(reserve)),
                line: Line::Stack {
                    ids: Vec::with_capacity(reserve),
                    work: 0,
                },
            },
            // FCFS never gets here; priority without preemption.
            Discipline::Fcfs | Discipline::Priority => Kind::NonPreemptive {
                running: BinaryHeap::with_capacity(c.min(reserve)),
                line: Line::Classes {
                    queues: Box::new(std::array::from_fn(|_| {
                        VecDeque::with_capacity(reserve / MAX_CLASSES)
                    })),
                    enq: [0; MAX_CLASSES],
                    deq: [0; MAX_CLASSES],
                },
            },
        };
        Engine {
            kind,
            c,
            jobs: Vec::with_capacity(reserve),
            free: Vec::with_capacity(reserve),
            t_last: 0,
            present: 0,
            integral: 0,
            seq: 0,
        }
    }

    /// Requests present (after the last event processed).
    pub(super) fn present(&self) -> usize {
        self.present
    }

    /// The start of an arrival at `a`: clamps it to the last event, processes every departure
    /// at or before it, and makes it the last event. Returns the arrival time.
    pub(super) fn begin_arrival(&mut self, a: u64) -> u64 {
        let a = a.max(self.t_last);
        self.advance(a);
        if let Kind::Sharing { heap, v, t_off } = &mut self.kind {
            // The last event happened at t_last + t_off exactly; V has advanced at the rate
            // min(1, c/n) since then. An arrival in the same nanosecond as a departure that
            // fell just after it (t_off > 0) happens with it.
            let gap = (a - self.t_last) as f64 - *t_off;
            if gap > 0.0 {
                if !heap.is_empty() {
                    *v += gap * (self.c as f64 / heap.len() as f64).min(1.0);
                }
                *t_off = 0.0;
            }
        }
        self.step(a);
        a
    }

    /// Adds an accepted arrival (after [`Engine::begin_arrival`] at `a`) and returns its ticket.
    pub(super) fn admit(&mut self, a: u64, service: u64, class: u8) -> Ticket {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.jobs.push(Job::EMPTY);
                (self.jobs.len() - 1) as u32
            }
        };
        let seq = self.seq;
        self.seq += 1;
        // The slot's epoch carries on: stale heap entries of its previous job must stay stale.
        let Job {
            generation, epoch, ..
        } = self.jobs[id as usize];
        self.jobs[id as usize] = Job {
            generation,
            state: State::Waiting,
            released: false,
            class,
            arrival: a,
            service,
            seq,
            cum: 0,
            since: a,
            rem: service,
            epoch,
            vf: 0.0,
        };
        self.present += 1;
        let c = self.c;
        let jobs = &mut self.jobs;
        match &mut self.kind {
            Kind::NonPreemptive { running, line } => {
                if running.len() < c {
                    let j = &mut jobs[id as usize];
                    j.state = State::Running;
                    j.since = a.saturating_add(service);
                    running.push(Reverse((j.since, seq, id)));
                } else {
                    match line {
                        Line::Stack { ids, work } => {
                            *work += u128::from(service);
                            jobs[id as usize].cum = *work;
                            ids.push(id);
                        }
                        Line::Classes { queues, enq, .. } => {
                            let k = usize::from(class);
                            enq[k] += u128::from(service);
                            jobs[id as usize].cum = enq[k];
                            queues[k].push_back(id);
                        }
                    }
                }
            }
            Kind::Preemptive {
                waiting,
                by_departure,
                by_rank,
                running,
                enq,
                done,
            } => {
                let k = usize::from(class);
                enq[k] += u128::from(service);
                jobs[id as usize].cum = enq[k];
                if *running == c {
                    // The lowest ranked in service; preempted if the arrival ranks above it.
                    let lowest = loop {
                        let &(lc, ls, lid, le) = by_rank.peek().expect("c requests are in service");
                        if jobs[lid as usize].epoch == le
                            && jobs[lid as usize].state == State::Running
                        {
                            break (lc, ls, lid);
                        }
                        by_rank.pop();
                    };
                    if (class, seq) < (lowest.0, lowest.1) {
                        let l = &mut jobs[lowest.2 as usize];
                        let attained = a - l.since;
                        l.rem -= attained;
                        done[usize::from(l.class)] += u128::from(attained);
                        l.epoch = l.epoch.wrapping_add(1);
                        l.state = State::Waiting;
                        by_rank.pop();
                        waiting.push(Reverse((l.class, l.seq, lowest.2)));
                        *running -= 1;
                    }
                }
                if *running < c {
                    start_preemptive(jobs, by_departure, by_rank, running, id, a);
                } else {
                    waiting.push(Reverse((class, seq, id)));
                }
            }
            Kind::Sharing { heap, v, .. } => {
                if heap.is_empty() {
                    *v = 0.0;
                } else if *v > REBASE_V {
                    // Shift every virtual finish by −V (a monotone map: the order holds).
                    let shift = *v;
                    let mut all = std::mem::take(heap).into_vec();
                    for Reverse((bits, _, jid)) in all.iter_mut() {
                        let j = &mut jobs[*jid as usize];
                        j.vf = (j.vf - shift).max(0.0);
                        *bits = j.vf.to_bits();
                    }
                    *heap = BinaryHeap::from(all);
                    *v = 0.0;
                }
                let vf = *v + service as f64;
                let j = &mut jobs[id as usize];
                j.vf = vf;
                j.state = State::Running;
                heap.push(Reverse((vf.to_bits(), seq, id)));
            }
        }
        Ticket {
            id,
            generation,
            tentative_ns: self.tentative(id),
            class,
        }
    }

    /// Adds `n · (t − t_last)` to the integral and makes `t` the last event.
    fn step(&mut self, t: u64) {
        let dt = t.saturating_sub(self.t_last);
        self.integral += self.present as u128 * u128::from(dt);
        self.t_last = self.t_last.max(t);
    }

    /// The next departure if nothing else arrives: its time (ns), for PS the exact offset of
    /// that time from `t_last` (ns, before rounding), and the job.
    fn next_departure(&mut self) -> Option<(u64, f64, u32)> {
        let c = self.c;
        let jobs = &self.jobs;
        match &mut self.kind {
            Kind::NonPreemptive { running, .. } => running.peek().map(|r| (r.0.0, 0.0, r.0.2)),
            Kind::Preemptive { by_departure, .. } => loop {
                let &Reverse((d, _, id, e)) = by_departure.peek()?;
                let j = &jobs[id as usize];
                if j.epoch == e && j.state == State::Running {
                    return Some((d, 0.0, id));
                }
                by_departure.pop();
            },
            Kind::Sharing { heap, v, t_off } => {
                let &Reverse((bits, _, id)) = heap.peek()?;
                let n = heap.len() as f64;
                // Every present job is served at min(1, c/n): the front needs vf − V more.
                let delta = *t_off + (f64::from_bits(bits) - *v).max(0.0) * (n / c as f64).max(1.0);
                let whole = delta.round().max(0.0);
                Some((self.t_last.saturating_add(whole as u64), delta, id))
            }
        }
    }

    /// Processes every departure at or before `now`.
    pub(super) fn advance(&mut self, now: u64) {
        while let Some((d, delta, _)) = self.next_departure() {
            if d > now {
                break;
            }
            let _ = self.depart_next(d, delta);
        }
    }

    /// Processes the next departure, at `d` (`delta` as [`Engine::next_departure`] gave it), and
    /// returns the job that left.
    fn depart_next(&mut self, d: u64, delta: f64) -> Option<u32> {
        let prev = self.t_last;
        self.step(d);
        let jobs = &mut self.jobs;
        let gone = match &mut self.kind {
            Kind::NonPreemptive { running, line } => {
                let Reverse((_, _, id)) = running.pop()?;
                let next = match line {
                    Line::Stack { ids, work } => ids.pop().inspect(|&n| {
                        *work -= u128::from(jobs[n as usize].service);
                    }),
                    Line::Classes { queues, deq, .. } => {
                        queues.iter_mut().enumerate().find_map(|(k, q)| {
                            let n = q.pop_front()?;
                            deq[k] += u128::from(jobs[n as usize].service);
                            Some(n)
                        })
                    }
                };
                if let Some(n) = next {
                    let j = &mut jobs[n as usize];
                    j.state = State::Running;
                    j.since = d.saturating_add(j.service);
                    running.push(Reverse((j.since, j.seq, n)));
                }
                id
            }
            Kind::Preemptive {
                waiting,
                by_departure,
                by_rank,
                running,
                done,
                ..
            } => {
                let Reverse((_, _, id, _)) = by_departure.pop()?;
                let j = &mut jobs[id as usize];
                done[usize::from(j.class)] += u128::from(j.rem);
                j.rem = 0;
                *running -= 1;
                if let Some(Reverse((_, _, n))) = waiting.pop() {
                    start_preemptive(jobs, by_departure, by_rank, running, n, d);
                }
                id
            }
            Kind::Sharing { heap, v, t_off } => {
                let Reverse((bits, _, id)) = heap.pop()?;
                // The departing job has received all its work, so V is its virtual finish (set,
                // not recomputed from the rounded time); this event happened at prev + delta
                // exactly, d − prev being that rounded.
                *v = f64::from_bits(bits).max(*v);
                *t_off = delta - (d - prev) as f64;
                if heap.is_empty() {
                    *v = 0.0;
                    *t_off = 0.0;
                }
                id
            }
        };
        let j = &mut self.jobs[gone as usize];
        j.state = State::Departed(d);
        let released = j.released;
        self.present -= 1;
        if released {
            self.free_slot(gone);
        }
        Some(gone)
    }

    /// The time of the next departure if nothing else arrives (ns; `None` when empty): a lower
    /// bound of the next real one, which later arrivals can only postpone.
    pub(super) fn next_departure_ns(&mut self) -> Option<u64> {
        self.next_departure().map(|(d, _, _)| d)
    }

    /// Processes exactly the next departure, at its own time (the one
    /// [`Engine::next_departure_ns`] gives; among simultaneous ones the earliest arrival), and
    /// returns the job that left and its times. Its slot is freed at once (no ticket of it is
    /// polled): the caller keeps what it needs from the returned id.
    pub(super) fn depart_one(&mut self) -> Option<(u32, Service)> {
        let (d, delta, _) = self.next_departure()?;
        let id = self.depart_next(d, delta)?;
        let j = self.jobs[id as usize];
        if j.state != State::Free {
            self.free_slot(id);
        }
        Some((
            id,
            Service {
                arrival_ns: j.arrival,
                departure_ns: d,
                wait_ns: d.saturating_sub(j.arrival).saturating_sub(j.service),
                service_ns: j.service,
                class: j.class,
            },
        ))
    }

    fn free_slot(&mut self, id: u32) {
        let j = &mut self.jobs[id as usize];
        j.state = State::Free;
        j.released = false;
        j.generation = j.generation.wrapping_add(1);
        self.free.push(id);
    }

    /// A lower bound of the departure of present job `id`: exact if nothing else arrives for
    /// a request in service (but under PS) and for every request with one server; see the
    /// [module docs](super) for why later arrivals can only postpone a departure.
    fn tentative(&mut self, id: u32) -> u64 {
        let c = self.c;
        let front = self.next_departure();
        let j = self.jobs[id as usize];
        // A waiting request cannot leave before a server frees up (the earliest departure).
        let d0 = front.map_or(self.t_last, |f| f.0);
        match (&self.kind, j.state) {
            (_, State::Departed(d)) => d,
            (Kind::NonPreemptive { .. }, State::Running) => j.since,
            (Kind::NonPreemptive { .. }, _) if c > 1 => d0.saturating_add(j.service),
            (Kind::NonPreemptive { line, .. }, _) => {
                // One server: from d0 it serves, back to back, every request ahead of this one
                // and then this one.
                let ahead = match line {
                    Line::Stack { work, .. } => work - j.cum + u128::from(j.service),
                    Line::Classes { enq, deq, .. } => {
                        let k = usize::from(j.class);
                        (0..k).map(|h| enq[h] - deq[h]).sum::<u128>() + (j.cum - deq[k])
                    }
                };
                sat(u128::from(d0) + ahead)
            }
            (Kind::Preemptive { .. }, State::Running) => j.since.saturating_add(j.rem),
            (Kind::Preemptive { .. }, _) if c > 1 => d0.saturating_add(j.rem),
            (Kind::Preemptive { enq, done, .. }, _) => {
                // One server, busy without a break since the request in service started its
                // current segment: from then it does the work of the higher classes and of
                // this class up to this request (present then or arrived since), unfinished
                // at that start (`done` counts finished segments only).
                let since = front.map_or(self.t_last, |f| self.jobs[f.2 as usize].since);
                let k = usize::from(j.class);
                let ahead = (0..k).map(|h| enq[h] - done[h]).sum::<u128>() + (j.cum - done[k]);
                sat(u128::from(since) + ahead)
            }
            (Kind::Sharing { .. }, _) => {
                let Some((d0, delta, fid)) = front else {
                    return self.t_last;
                };
                if fid == id {
                    return d0;
                }
                // After the front leaves (at t_last + delta exactly), this job still needs
                // vf − vf_front of service, at a rate of at most 1.
                // Rounded as departures are, less a slack for the `f64` error: with
                // `more ≥ exact − PS_SLACK`, `⌊more + 1/2⌋` never exceeds the rounded departure.
                let more = delta + (j.vf - self.jobs[fid as usize].vf) - PS_SLACK;
                d0.max(
                    self.t_last
                        .saturating_add((more + 0.5).floor().max(0.0) as u64),
                )
            }
        }
    }

    fn job_of(&self, t: Ticket) -> Option<&Job> {
        let j = self.jobs.get(t.id as usize)?;
        (j.generation == t.generation && j.state != State::Free && !j.released).then_some(j)
    }

    /// See [`super::QueueModel::poll`].
    pub(super) fn poll(&mut self, ticket: Ticket, now: u64) -> Poll {
        self.advance(now);
        let Some(j) = self.job_of(ticket).copied() else {
            return Poll::Unknown;
        };
        match j.state {
            State::Departed(d) if d <= now => {
                self.free_slot(ticket.id);
                Poll::Done(Service {
                    arrival_ns: j.arrival,
                    departure_ns: d,
                    wait_ns: (d - j.arrival).saturating_sub(j.service),
                    service_ns: j.service,
                    class: j.class,
                })
            }
            // Departed by a call that named a later time than this one.
            State::Departed(d) => Poll::Pending(d),
            _ => Poll::Pending(self.tentative(ticket.id)),
        }
    }

    /// See [`super::QueueModel::release`].
    pub(super) fn release(&mut self, ticket: Ticket) {
        let Some(j) = self.job_of(ticket) else {
            return;
        };
        if matches!(j.state, State::Departed(_)) {
            self.free_slot(ticket.id);
        } else {
            self.jobs[ticket.id as usize].released = true;
        }
    }

    /// ∫₀^now N(t) dt after processing the departures up to `now`.
    pub(super) fn integral(&mut self, now: u64) -> u128 {
        self.advance(now);
        self.integral + self.present as u128 * u128::from(now.saturating_sub(self.t_last))
    }

    /// Servers busy after processing the departures up to `now`.
    pub(super) fn busy(&mut self, now: u64) -> usize {
        self.advance(now);
        match &self.kind {
            Kind::NonPreemptive { running, .. } => running.len(),
            Kind::Preemptive { running, .. } => *running,
            Kind::Sharing { heap, .. } => heap.len().min(self.c),
        }
    }
}

/// Starts (or resumes) service of `id` at `t` under preemptive priority.
fn start_preemptive(
    jobs: &mut [Job],
    by_departure: &mut BinaryHeap<Reverse<(u64, u64, u32, u32)>>,
    by_rank: &mut BinaryHeap<(u8, u64, u32, u32)>,
    running: &mut usize,
    id: u32,
    t: u64,
) {
    let j = &mut jobs[id as usize];
    j.state = State::Running;
    j.since = t;
    j.epoch = j.epoch.wrapping_add(1);
    by_departure.push(Reverse((t.saturating_add(j.rem), j.seq, id, j.epoch)));
    by_rank.push((j.class, j.seq, id, j.epoch));
    *running += 1;
    // Entries of preempted or departed requests stay behind until they reach the top; drop
    // them all once they outnumber the live ones (amortized O(1) per push).
    let live = |e: u32, id: u32, jobs: &[Job]| {
        let j = &jobs[id as usize];
        j.epoch == e && j.state == State::Running
    };
    if by_rank.len() > 2 * *running + 32 {
        by_rank.retain(|&(_, _, id, e)| live(e, id, jobs));
    }
    if by_departure.len() > 2 * *running + 32 {
        by_departure.retain(|&Reverse((_, _, id, e))| live(e, id, jobs));
    }
}
