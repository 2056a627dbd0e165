//! One worker thread: an event loop over its own connections, driven by its own arrival source.
//!
//! # Model
//!
//! Each worker owns a mio `Poll`, its connections (a `Slab`, key = `Token`), an RNG stream, its
//! histograms and counters; nothing is shared on the hot path. Once per interval it sends a small
//! report (counts and two interval histograms) to the coordinating thread, which merges them for
//! the live line and the time series and sends the histograms back for reuse; at the end it
//! returns its totals.
//!
//! One loop serves every mode. A [`Source`] yields *due* requests with their intended times:
//! - open loop: the thread's own arrival process at λ/T, absolute times `t0 + Σ gaps`;
//! - users (closed loop and `--max`): a heap of users, each due at the end of its think time
//!   (exponential; zero in `--max`), pushed again when its previous request ends.
//!
//! A due request takes an idle connection, else opens one (up to the thread's cap, and at most
//! [`CONNECTS_PER_PASS`] per pass of the loop), else waits in a bounded FIFO backlog (overflow:
//! `backlog` error). Idle connections are kept in strict LIFO order (most recently used first,
//! see [`IdleList`]): few connections stay warm, and those that idled long sink to the bottom,
//! where a server's idle timeout closes them without being raced by new requests.
//! One request is in flight per connection; when the server closes a connection its slot is
//! reused for the next connect. The intended time is kept with the request, so its latency
//! counts every wait (backlog, connect, retry, lateness of the loop): no coordinated omission.
//!
//! # Retry on a stale keep-alive connection
//!
//! A server may close an idle connection just as a request is written on it: the request then
//! fails (a write error, a reset, or the end of the connection) before any byte of an answer, and
//! the server never saw it. As HTTP clients do for idempotent methods (`GET`, `HEAD`, `PUT`,
//! `DELETE`, `OPTIONS`), such a request is retried once, on a freshly opened connection (closing
//! the least recently used idle one if the cap is reached), keeping its intended time. Requests on
//! connections opened for them, failures after part of the answer, timeouts and other methods
//! are never retried. Retries are counted (`requests.retries`).
//!
//! # Precise waits
//!
//! Before a send the loop arms a timerfd at `intended − spin` and sleeps in `epoll_wait`; once
//! within `spin` of the send it polls with a zero timeout (still serving I/O) until the intended
//! time and writes. The send lag (write − intended) is recorded for every request. After a write
//! it also polls for up to `spin` while requests are in flight, so that a quick answer is not
//! timestamped late by this core's wake-up (except in `--max`, where that would only burn CPU).
//! With `--busy-poll` it polls with a zero timeout for as long as any request is in flight, however
//! long the answer takes (the lab's queued answers come milliseconds after the write, when the
//! spin margin is long over); it sleeps only with nothing in flight and the next send far off.
//!
//! # Memory and work per request
//!
//! Reads go into one buffer per worker ([`READ_SCRATCH`]); the response parser consumes body
//! bytes as they come, so a connection keeps only the start of a response head split across
//! reads, in a small buffer that is empty (and unallocated) until a head is first split, never
//! exceeds [`MAX_HEAD_BYTES`] + 1 bytes and is shrunk back to [`HEAD_KEEP`] once the head is
//! parsed. A connection costs about 200 bytes of this process's memory, plus the kernel's socket.
//!
//! No allocation per request: the backlog, heap, idle links and gap sample are preallocated or
//! grow only with the number of connection slots. System calls in steady state: one `write`, one
//! `read` (a short read means the socket is drained, so no second read to see `EAGAIN`), and
//! `epoll_wait` amortized over the events it returns; interest is registered once per connection.
//!
//! # End of a run
//!
//! Issuing stops at the end of the duration, after the last of the thread's share of
//! `--requests`, or on the stop flag; then the loop drains for at most one timeout. Requests still
//! in flight or waiting then are counted as `unfinished`. A request in flight longer than the
//! timeout fails as `timeout` (checked by a sweep every few milliseconds).
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use hdrhistogram::Histogram;
use mio::event::Event;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use queuelab_common::http::MAX_HEAD_BYTES;
use queuelab_common::samplers::{ArrivalKind, Rng, Schedule, exp_sample, rng};
use queuelab_common::stats::{HIST_MAX_NS, new_histogram, record_ns};
use queuelab_os::clock::{Clock, now_ns};
use queuelab_os::timer::Timer;
use queuelab_os::wait::Wait;
use rand::Rng as _;
use slab::Slab;

use crate::http::{Progress, ResponseParser};
use crate::result::{ErrorKind, ErrorsByKind, StatusCounts};

/// Token of the timerfd (slab keys never get this large).
const TIMER: Token = Token(usize::MAX);
/// "No user": a request of the open-loop schedule.
const NO_USER: u32 = u32::MAX;
/// Size of a worker's read buffer, shared by all its connections. Body bytes are counted and
/// dropped as they come, so a larger buffer buys only fewer reads of large bodies.
pub(crate) const READ_SCRATCH: usize = 64 * 1024;
/// Capacity a connection's head buffer keeps once a head split across reads has been parsed
/// (typical response heads are shorter); a larger one is shrunk back to it.
pub(crate) const HEAD_KEEP: usize = 512;
/// "No connection" in the idle links.
const NIL: usize = usize::MAX;
/// Most due requests handled before the loop polls again (keeps I/O served when far behind).
const ISSUE_BUDGET: usize = 256;
/// Most connections opened per pass of the loop. A connect on loopback runs the whole handshake
/// inside the system call (tens of microseconds); opening hundreds at once after a stall of the
/// server would stall the loop itself and make it fall further behind. Requests beyond the pace
/// wait in the backlog for the next pass or for a connection that frees up.
const CONNECTS_PER_PASS: usize = 8;
/// Significant digits of the per-interval histograms (percentiles to 1%).
const INTERVAL_SIGFIG: u8 = 2;

/// What the coordinator tells every worker.
#[derive(Debug)]
pub(crate) struct Shared {
    pub addr: SocketAddr,
    pub request: Box<[u8]>,
    pub head_request: bool,
    /// When every worker starts (absolute ns).
    pub start_ns: u64,
    /// Start of the measurement (after the warmup).
    pub measure_start_ns: u64,
    /// End of the schedule, if bounded by a duration.
    pub issue_end_ns: Option<u64>,
    pub timeout_ns: u64,
    pub spin_ns: u64,
    /// `--busy-poll`: never sleep while a request is in flight.
    pub busy_poll: bool,
    pub interval_ns: u64,
    /// Whether the method is idempotent, so that a request that failed on a stale keep-alive
    /// connection may be retried once (see the module docs).
    pub retry_idempotent: bool,
    pub stop: Arc<AtomicBool>,
}

/// What one worker does.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub index: usize,
    pub core: Option<usize>,
    pub seed: u64,
    pub source: SourcePlan,
    /// This thread's share of `--requests`.
    pub requests: Option<u64>,
    pub conn_cap: usize,
    pub backlog_cap: usize,
    pub gap_samples: usize,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum SourcePlan {
    Open { rate: f64, arrival: ArrivalKind },
    Users { users: u32, think_s: f64 },
}

/// The two histograms of one interval: latency of its completions, send lag of its writes (ns,
/// two significant digits). They travel to the coordinator in each report and come back empty
/// for reuse, so a worker allocates them only while the coordinator is behind.
#[derive(Debug)]
pub(crate) struct IntervalHists {
    pub latency: Histogram<u64>,
    pub lag: Histogram<u64>,
}

impl IntervalHists {
    pub fn new() -> Self {
        Self {
            latency: interval_histogram(),
            lag: interval_histogram(),
        }
    }

    pub fn reset(&mut self) {
        self.latency.reset();
        self.lag.reset();
    }
}

/// One interval of one worker, sent to the coordinator.
#[derive(Debug)]
pub(crate) struct IntervalReport {
    /// The worker's index.
    pub thread: usize,
    pub index: u64,
    /// The worker's last interval: it reports no later one.
    pub last: bool,
    /// End of the interval as this worker saw it (shorter than the interval for the last one).
    pub end_ns: u64,
    pub sent: u64,
    pub completed: u64,
    pub errors: u64,
    pub latency_sum_ns: f64,
    pub uncorrected_sum_ns: f64,
    pub hists: IntervalHists,
    pub lag_max_ns: u64,
}

/// The totals of one worker.
#[derive(Debug)]
pub(crate) struct ThreadResult {
    pub issued: u64,
    pub sent: u64,
    pub sent_in_window: u64,
    pub completed: u64,
    pub warmup_sent: u64,
    pub backlog_waits: u64,
    /// Measured requests retried on a fresh connection after a stale keep-alive connection failed.
    pub retries: u64,
    pub errors: ErrorsByKind,
    pub status: StatusCounts,
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
    pub opened: u64,
    pub peak_open: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The slot has no socket (free for the next connect).
    Closed,
    /// Connecting, with the request that asked for the connection.
    Connecting,
    /// Connected, no request.
    Idle,
    /// The request is partly written.
    Writing,
    /// The request is written; the answer is awaited.
    Reading,
}

/// A request, from the moment it is due.
#[derive(Debug, Clone, Copy)]
struct Pending {
    intended: u64,
    user: u32,
    measured: bool,
    /// This is the retry of a request that failed on a stale keep-alive connection: it must go
    /// on a fresh connection, and is never retried again.
    retried: bool,
    /// Start of the (first) write (0 before).
    write_ns: u64,
}

#[derive(Debug)]
struct Conn {
    sock: Option<TcpStream>,
    state: State,
    req: Pending,
    written: usize,
    /// The start of a response head split across reads (see the module docs); empty otherwise.
    head: Vec<u8>,
    parser: ResponseParser,
    /// Timeout of the connect or of the request in flight.
    deadline: u64,
    /// The request in flight was placed on a kept-alive connection (not one opened for it).
    reused: bool,
    /// Some byte of the answer to the request in flight has arrived.
    answered: bool,
}

impl Conn {
    fn new() -> Self {
        Self {
            sock: None,
            state: State::Closed,
            req: Pending {
                intended: 0,
                user: NO_USER,
                measured: false,
                retried: false,
                write_ns: 0,
            },
            written: 0,
            head: Vec::new(),
            parser: ResponseParser::new(),
            deadline: u64::MAX,
            reused: false,
            answered: false,
        }
    }

    /// Forgets the start of a head; a buffer grown past [`HEAD_KEEP`] shrinks back.
    fn clear_head(&mut self) {
        self.head.clear();
        if self.head.capacity() > HEAD_KEEP {
            self.head.shrink_to(HEAD_KEEP);
        }
    }

    /// Feeds the bytes just read to the parser, after the kept start of a head if there is one.
    /// Returns the progress and, when the answer is done, whether bytes followed it.
    fn feed(&mut self, input: &[u8], head_request: bool) -> (Progress, bool) {
        if self.head.is_empty() {
            let (used, progress) = self.parser.advance(input, head_request);
            let rest = &input[used..];
            match progress {
                Progress::NeedMore if !rest.is_empty() => {
                    // Only the start of a head is ever left unconsumed (body bytes are counted as
                    // they come), and the parser bounds it by MAX_HEAD_BYTES.
                    debug_assert!(
                        !self.parser.in_body() && rest.len() < MAX_HEAD_BYTES,
                        "{} bytes left unconsumed in the body",
                        rest.len()
                    );
                    if self.head.capacity() == 0 {
                        self.head.reserve_exact(HEAD_KEEP.max(rest.len()));
                    }
                    self.head.extend_from_slice(rest);
                    (progress, false)
                }
                Progress::Done { .. } => (progress, !rest.is_empty()),
                _ => (progress, false),
            }
        } else {
            self.head.extend_from_slice(input);
            let (used, progress) = self.parser.advance(&self.head, head_request);
            let extra = used < self.head.len();
            match progress {
                Progress::NeedMore => {
                    self.head.drain(..used);
                    if self.head.is_empty() {
                        self.clear_head();
                    }
                    (progress, false)
                }
                Progress::Done { .. } => {
                    self.clear_head();
                    (progress, extra)
                }
                Progress::Error(_) => {
                    self.clear_head();
                    (progress, false)
                }
            }
        }
    }

    fn busy(&self) -> bool {
        matches!(
            self.state,
            State::Connecting | State::Writing | State::Reading
        )
    }
}

/// The idle connections of a worker in strict LIFO order: a doubly linked list of slab keys,
/// the most recently used at the front. Push, pop at either end and removal of any member are
/// O(1) and keep the order of the others (removing from the middle of a plain stack by swapping
/// would bring a long-idle connection to the top, where the next request takes it just as the
/// server's idle timeout closes it). The links grow only with the number of slots.
#[derive(Debug)]
pub(crate) struct IdleList {
    prev: Vec<usize>,
    next: Vec<usize>,
    front: usize,
    back: usize,
    len: usize,
}

impl IdleList {
    /// An empty list with room for the links of `slots` slots.
    pub fn with_capacity(slots: usize) -> Self {
        Self {
            prev: Vec::with_capacity(slots),
            next: Vec::with_capacity(slots),
            front: NIL,
            back: NIL,
            len: 0,
        }
    }

    /// Number of idle connections.
    pub fn len(&self) -> usize {
        self.len
    }

    fn is_linked(&self, key: usize) -> bool {
        key < self.prev.len() && (self.prev[key] != NIL || self.front == key)
    }

    /// Makes `key` the most recently used idle connection.
    pub fn push_front(&mut self, key: usize) {
        if key >= self.prev.len() {
            self.prev.resize(key + 1, NIL);
            self.next.resize(key + 1, NIL);
        }
        debug_assert!(!self.is_linked(key), "slot {key} is already idle");
        self.prev[key] = NIL;
        self.next[key] = self.front;
        if self.front != NIL {
            self.prev[self.front] = key;
        } else {
            self.back = key;
        }
        self.front = key;
        self.len += 1;
    }

    /// The most recently used idle connection, taken off the list.
    pub fn pop_front(&mut self) -> Option<usize> {
        let key = self.front;
        (key != NIL).then(|| {
            self.remove(key);
            key
        })
    }

    /// The least recently used idle connection (left on the list).
    pub fn back(&self) -> Option<usize> {
        (self.back != NIL).then_some(self.back)
    }

    /// Takes `key` off the list, wherever it is.
    pub fn remove(&mut self, key: usize) {
        debug_assert!(self.is_linked(key), "slot {key} is not idle");
        let (p, n) = (self.prev[key], self.next[key]);
        if p != NIL {
            self.next[p] = n;
        } else {
            self.front = n;
        }
        if n != NIL {
            self.prev[n] = p;
        } else {
            self.back = p;
        }
        self.prev[key] = NIL;
        self.next[key] = NIL;
        self.len -= 1;
    }
}

/// Where due requests come from.
#[derive(Debug)]
enum Source {
    Open {
        schedule: Schedule,
        next: u64,
    },
    Users {
        heap: BinaryHeap<Reverse<(u64, u32)>>,
        think_s: f64,
    },
}

impl Source {
    fn new(plan: SourcePlan, start: u64, rng: &mut Rng) -> Self {
        match plan {
            SourcePlan::Open { rate, arrival } => {
                let mut schedule = Schedule::new(arrival, rate);
                let next = start + schedule.next_ns(rng);
                Source::Open { schedule, next }
            }
            SourcePlan::Users { users, think_s } => {
                let mut heap = BinaryHeap::with_capacity(users as usize);
                for u in 0..users {
                    heap.push(Reverse((start + think_ns(think_s, rng), u)));
                }
                Source::Users { heap, think_s }
            }
        }
    }

    fn peek(&self) -> Option<u64> {
        match self {
            Source::Open { next, .. } => Some(*next),
            Source::Users { heap, .. } => heap.peek().map(|r| r.0.0),
        }
    }

    /// Takes the next due request (the caller checked `peek`).
    fn pop(&mut self, start: u64, rng: &mut Rng) -> Option<(u64, u32)> {
        match self {
            Source::Open { schedule, next } => {
                let due = *next;
                *next = start + schedule.next_ns(rng);
                Some((due, NO_USER))
            }
            Source::Users { heap, .. } => heap.pop().map(|r| r.0),
        }
    }

    /// A user's request ended at `now`: it thinks, then is due again.
    fn user_done(&mut self, user: u32, now: u64, rng: &mut Rng) {
        if let Source::Users { heap, think_s } = self {
            debug_assert!(heap.len() < heap.capacity(), "a user is in the heap twice");
            heap.push(Reverse((now + think_ns(*think_s, rng), user)));
        }
    }
}

fn think_ns(think_s: f64, rng: &mut Rng) -> u64 {
    if think_s <= 0.0 {
        0
    } else {
        (exp_sample(think_s, rng) * 1e9).round() as u64
    }
}

/// Counters of the current interval.
#[derive(Debug)]
struct IntervalStats {
    sent: u64,
    completed: u64,
    errors: u64,
    latency_sum_ns: f64,
    uncorrected_sum_ns: f64,
    hists: IntervalHists,
    lag_max_ns: u64,
}

/// A histogram of one interval (coarser than the run's: percentiles to 1%).
pub(crate) fn interval_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, INTERVAL_SIGFIG)
        .expect("fixed bounds 1..=HIST_MAX_NS with 2 significant digits are valid")
}

impl IntervalStats {
    fn new() -> Self {
        Self {
            sent: 0,
            completed: 0,
            errors: 0,
            latency_sum_ns: 0.0,
            uncorrected_sum_ns: 0.0,
            hists: IntervalHists::new(),
            lag_max_ns: 0,
        }
    }

    /// The report of this interval; `spare` (empty histograms back from the coordinator, or new
    /// ones) records the next.
    fn take(
        &mut self,
        thread: usize,
        index: u64,
        end_ns: u64,
        last: bool,
        spare: IntervalHists,
    ) -> IntervalReport {
        let r = IntervalReport {
            thread,
            index,
            last,
            end_ns,
            sent: self.sent,
            completed: self.completed,
            errors: self.errors,
            latency_sum_ns: self.latency_sum_ns,
            uncorrected_sum_ns: self.uncorrected_sum_ns,
            hists: std::mem::replace(&mut self.hists, spare),
            lag_max_ns: self.lag_max_ns,
        };
        self.sent = 0;
        self.completed = 0;
        self.errors = 0;
        self.latency_sum_ns = 0.0;
        self.uncorrected_sum_ns = 0.0;
        self.hists.reset();
        self.lag_max_ns = 0;
        r
    }
}

/// One worker (see the module docs).
pub(crate) struct Worker {
    shared: Arc<Shared>,
    plan: Plan,
    poll: Poll,
    timer: Timer,
    conns: Slab<Conn>,
    idle: IdleList,
    free: Vec<usize>,
    /// The read buffer of all connections (see the module docs).
    rbuf: Box<[u8]>,
    open: usize,
    inflight: usize,
    backlog: VecDeque<Pending>,
    source: Source,
    rng: Rng,
    sample_rng: Rng,
    issuing: bool,
    issued_measured: u64,
    drain_deadline: u64,
    next_tick: u64,
    tick_ns: u64,
    interval_index: u64,
    next_interval: u64,
    iv: IntervalStats,
    tx: Sender<IntervalReport>,
    /// Histograms the coordinator has merged and sends back for reuse.
    recycle: Receiver<IntervalHists>,
    scratch: Vec<usize>,
    last_send: u64,
    /// Connections opened in this pass of the loop (see [`CONNECTS_PER_PASS`]).
    connects_this_pass: usize,
    /// Time of the latest write (measured or not).
    last_write: u64,
    /// Whether to poll rather than sleep for a spin margin after each write (not in `--max`).
    spin_after_send: bool,
    res: ThreadResult,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.plan.index)
            .field("open", &self.open)
            .field("inflight", &self.inflight)
            .field("idle", &self.idle.len())
            .field("backlog", &self.backlog.len())
            .field("issuing", &self.issuing)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Sets up the worker (called on its own thread, after pinning).
    pub fn new(
        shared: Arc<Shared>,
        plan: Plan,
        tx: Sender<IntervalReport>,
        recycle: Receiver<IntervalHists>,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut timer = Timer::new(&Clock::process())?;
        poll.registry()
            .register(&mut timer, TIMER, Interest::READABLE)?;
        let mut rng = rng(plan.seed, plan.index as u64);
        // A separate stream for the gap sample, so sampling does not change the schedule.
        let sample_rng =
            queuelab_common::samplers::rng(plan.seed ^ 0x5eed_5a3f_1e00_0000, plan.index as u64);
        let source = Source::new(plan.source, shared.start_ns, &mut rng);
        let cap = plan.conn_cap;
        let prealloc = cap.min(4096);
        let tick_ns = (shared.timeout_ns / 10).clamp(1_000_000, 50_000_000);
        let res = ThreadResult {
            issued: 0,
            sent: 0,
            sent_in_window: 0,
            completed: 0,
            warmup_sent: 0,
            backlog_waits: 0,
            retries: 0,
            errors: ErrorsByKind::default(),
            status: StatusCounts::default(),
            latency: new_histogram(),
            uncorrected: new_histogram(),
            lag: new_histogram(),
            gaps: Vec::with_capacity(plan.gap_samples),
            gap_sum_ns: 0.0,
            gap_count: 0,
            issue_end_ns: shared.start_ns,
            opened: 0,
            peak_open: 0,
        };
        Ok(Self {
            poll,
            timer,
            conns: Slab::with_capacity(prealloc),
            idle: IdleList::with_capacity(prealloc),
            free: Vec::with_capacity(cap),
            rbuf: vec![0; READ_SCRATCH].into_boxed_slice(),
            open: 0,
            inflight: 0,
            backlog: VecDeque::with_capacity(plan.backlog_cap),
            source,
            rng,
            sample_rng,
            issuing: true,
            issued_measured: 0,
            drain_deadline: u64::MAX,
            next_tick: shared.start_ns + tick_ns,
            tick_ns,
            interval_index: 0,
            next_interval: shared.measure_start_ns + shared.interval_ns,
            iv: IntervalStats::new(),
            tx,
            recycle,
            scratch: Vec::with_capacity(cap),
            last_send: 0,
            connects_this_pass: 0,
            last_write: 0,
            spin_after_send: !matches!(plan.source, SourcePlan::Users { think_s, .. } if think_s <= 0.0),
            shared,
            plan,
            res,
        })
    }

    /// Runs the loop to the end and returns the totals.
    pub fn run(mut self) -> io::Result<ThreadResult> {
        let mut events = Events::with_capacity(1024);
        // Everyone starts together: sleep most of the way, then poll the rest.
        loop {
            let now = now_ns();
            if now >= self.shared.start_ns {
                break;
            }
            let left = self.shared.start_ns - now;
            if left > 2_000_000 {
                std::thread::sleep(Duration::from_nanos(left - 1_000_000));
            } else {
                std::hint::spin_loop();
            }
        }
        loop {
            let now = now_ns();
            self.connects_this_pass = 0;
            if now >= self.next_tick {
                self.tick(now);
            }
            while now >= self.next_interval {
                self.flush_interval(self.next_interval);
            }
            match self.shared.issue_end_ns {
                Some(end) if self.issuing && now >= end => self.stop_issuing(end),
                _ => {}
            }
            self.refill();
            if self.issuing {
                self.issue_due(now);
            }
            if !self.issuing {
                if self.inflight == 0 && self.backlog.is_empty() {
                    break;
                }
                if now >= self.drain_deadline {
                    self.abandon();
                    break;
                }
            }
            self.wait(&mut events)?;
            for ev in events.iter() {
                self.on_event(ev);
            }
        }
        let end = now_ns();
        self.flush_last_interval(end);
        self.finish_gaps();
        Ok(self.res)
    }

    /// Sleeps until the next thing to do: the timerfd while far, a zero-timeout poll when close.
    fn wait(&mut self, events: &mut Events) -> io::Result<()> {
        // The next send is approached awake for the spin margin; the other times need no margin.
        let mut deadline = None;
        let mut wake = self.next_tick.min(self.next_interval);
        if self.issuing {
            deadline = self.source.peek();
            if let Some(end) = self.shared.issue_end_ns {
                wake = wake.min(end);
            }
        } else {
            wake = wake.min(self.drain_deadline);
        }
        let now = now_ns();
        // Requests wait only because the connect pace was reached: come straight back.
        let waiting_for_pace = !self.backlog.is_empty() && self.open < self.plan.conn_cap;
        // Just after a send the answer may be a few tens of microseconds away; sleeping now would
        // add this core's wake-up time to its latency. Poll for up to the spin margin instead
        // (not in --max, where every connection is always in flight and polling only costs).
        let answer_soon = self.inflight > 0
            && (self.shared.busy_poll
                || (self.spin_after_send
                    && now < self.last_write.saturating_add(self.shared.spin_ns)));
        let action = Wait {
            now,
            deadline,
            wake: Some(wake),
            spin_ns: self.shared.spin_ns,
            // No stretch of spinning on the clock alone: within the margin the loop polls, and
            // `issue_due` reads the clock again before each send.
            quiet_ns: 0,
            busy: waiting_for_pace || answer_soon,
        }
        .decide();
        let timeout = self.timer.prepare(action)?;
        loop {
            match self.poll.poll(events, timeout) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn on_event(&mut self, ev: &Event) {
        let token = ev.token();
        if token == TIMER {
            self.timer.fired();
            return;
        }
        let key = token.0;
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
        let to_eof = ev.is_read_closed() || ev.is_error();
        match conn.state {
            State::Closed => {}
            State::Connecting | State::Writing => {
                if conn.state == State::Connecting {
                    self.on_connecting(key);
                } else if ev.is_writable() || ev.is_error() || ev.is_write_closed() {
                    self.write_request(key);
                }
                // An answer that came before the request was written (a server answering at
                // once) raised its readable edge in this very event: read it now, or never.
                if readable
                    && self
                        .conns
                        .get(key)
                        .is_some_and(|c| c.state == State::Reading)
                {
                    self.on_readable(key, to_eof);
                }
            }
            State::Reading | State::Idle => {
                if readable {
                    self.on_readable(key, to_eof);
                }
            }
        }
    }

    /// Housekeeping every few milliseconds: timeouts and the stop flag.
    fn tick(&mut self, now: u64) {
        self.next_tick = now + self.tick_ns;
        if self.issuing && self.shared.stop.load(Ordering::Relaxed) {
            self.stop_issuing(now);
        }
        self.scratch.clear();
        for (key, c) in self.conns.iter() {
            if c.busy() && c.deadline <= now {
                self.scratch.push(key);
            }
        }
        for i in 0..self.scratch.len() {
            let key = self.scratch[i];
            let kind = if self.conns[key].state == State::Connecting {
                ErrorKind::Connect
            } else {
                ErrorKind::Timeout
            };
            self.fail_conn(key, kind, now);
        }
    }

    fn stop_issuing(&mut self, at: u64) {
        if !self.issuing {
            return;
        }
        self.issuing = false;
        self.res.issue_end_ns = at.max(self.shared.measure_start_ns);
        self.drain_deadline = at.max(now_ns()) + self.shared.timeout_ns;
        // Users waiting to think are not due any more.
        if let Source::Users { heap, .. } = &mut self.source {
            heap.clear();
        }
    }

    /// Issues every request due by `now` (at most a budget of them before polling again).
    fn issue_due(&mut self, mut now: u64) {
        let end = self.shared.issue_end_ns.unwrap_or(u64::MAX);
        for _ in 0..ISSUE_BUDGET {
            let Some(due) = self.source.peek() else {
                return;
            };
            if due > now {
                // Not due yet; within the spin margin the loop polls with a zero timeout.
                now = now_ns();
                if due > now {
                    return;
                }
            }
            if due >= end {
                self.stop_issuing(end);
                return;
            }
            let Some((intended, user)) = self.source.pop(self.shared.start_ns, &mut self.rng)
            else {
                return;
            };
            self.issue(intended, user);
            if !self.issuing {
                return;
            }
        }
    }

    /// Issues one due request, counts it, and stops issuing after the last of `--requests`.
    fn issue(&mut self, intended: u64, user: u32) {
        let measured = intended >= self.shared.measure_start_ns;
        if measured {
            self.issued_measured += 1;
            self.res.issued += 1;
        }
        self.dispatch(Pending {
            intended,
            user,
            measured,
            retried: false,
            write_ns: 0,
        });
        if self
            .plan
            .requests
            .is_some_and(|limit| self.issued_measured >= limit)
        {
            self.stop_issuing(now_ns());
        }
    }

    /// A due request: an idle connection, else a new one, else the backlog.
    fn dispatch(&mut self, p: Pending) {
        if !self.backlog.is_empty() {
            self.refill();
        }
        if self.backlog.is_empty() && self.try_place(p) {
            return;
        }
        if self.backlog.len() < self.plan.backlog_cap {
            if p.measured {
                self.res.backlog_waits += 1;
            }
            self.backlog.push_back(p);
        } else {
            self.fail(p, ErrorKind::Backlog, now_ns());
        }
    }

    /// Gives waiting requests the connections that are free.
    fn refill(&mut self) {
        // Taken off before it is placed: placing may fail another request and retry it at the
        // front of the backlog.
        while let Some(p) = self.backlog.pop_front() {
            if !self.try_place(p) {
                self.backlog.push_front(p);
                return;
            }
        }
    }

    /// Places `p` on an idle or new connection; `false` (and nothing done) if neither is
    /// available. A retry goes on a new connection only, for which the least recently used idle
    /// connection is closed when the cap is reached.
    fn try_place(&mut self, p: Pending) -> bool {
        if !p.retried {
            if let Some(key) = self.idle.pop_front() {
                let c = &mut self.conns[key];
                c.state = State::Writing;
                c.req = p;
                c.written = 0;
                c.reused = true;
                c.answered = false;
                self.inflight += 1;
                self.write_request(key);
                return true;
            }
        }
        if self.connects_this_pass >= CONNECTS_PER_PASS {
            return false;
        }
        if self.open >= self.plan.conn_cap {
            match self.idle.back() {
                Some(stale) if p.retried => self.close_conn(stale),
                _ => return false,
            }
        }
        self.connects_this_pass += 1;
        self.connect(p);
        true
    }

    fn connect(&mut self, p: Pending) {
        let now = now_ns();
        let key = match self.free.pop() {
            Some(k) => k,
            None => self.conns.insert(Conn::new()),
        };
        let mut sock = match TcpStream::connect(self.shared.addr) {
            Ok(s) => s,
            Err(_) => {
                self.free.push(key);
                self.fail(p, ErrorKind::Connect, now);
                return;
            }
        };
        if self
            .poll
            .registry()
            .register(
                &mut sock,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            self.free.push(key);
            self.fail(p, ErrorKind::Connect, now);
            return;
        }
        let c = &mut self.conns[key];
        c.sock = Some(sock);
        c.state = State::Connecting;
        c.req = p;
        c.written = 0;
        c.reused = false;
        c.answered = false;
        c.clear_head();
        c.parser.reset();
        c.deadline = now.saturating_add(self.shared.timeout_ns);
        self.open += 1;
        self.inflight += 1;
        self.res.opened += 1;
        self.res.peak_open = self.res.peak_open.max(self.open as u64);
    }

    fn on_connecting(&mut self, key: usize) {
        let c = &mut self.conns[key];
        let Some(sock) = c.sock.as_ref() else {
            return;
        };
        let failed = match sock.take_error() {
            // Established, then reset or aborted by the peer before the request was written
            // (e.g. accepted and closed at once): not a failure to connect.
            Ok(Some(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                ) =>
            {
                Some(ErrorKind::Read)
            }
            Ok(Some(_)) | Err(_) => Some(ErrorKind::Connect),
            Ok(None) => match sock.peer_addr() {
                Ok(_) => None,
                // Not connected yet: a spurious event.
                Err(e)
                    if e.kind() == io::ErrorKind::NotConnected
                        || e.kind() == io::ErrorKind::WouldBlock =>
                {
                    return;
                }
                Err(_) => Some(ErrorKind::Connect),
            },
        };
        if let Some(kind) = failed {
            self.fail_conn(key, kind, now_ns());
            return;
        }
        // Small requests and answers: no Nagle delay.
        let _ = sock.set_nodelay(true);
        c.state = State::Writing;
        c.written = 0;
        self.write_request(key);
    }

    /// Writes (the rest of) the request of connection `key`.
    fn write_request(&mut self, key: usize) {
        let now = now_ns();
        let c = &mut self.conns[key];
        if c.written == 0 {
            // The timeout runs from the start of each attempt's write.
            self.last_write = now;
            c.deadline = now.saturating_add(self.shared.timeout_ns);
            if c.req.write_ns == 0 {
                // A request's first write (a retry keeps the first one's time and count).
                c.req.write_ns = now;
                let req = c.req;
                self.record_send(req, now);
            }
        }
        let c = &mut self.conns[key];
        let Some(sock) = c.sock.as_mut() else {
            return;
        };
        let request = &self.shared.request;
        let resumed = c.written > 0;
        loop {
            match sock.write(&request[c.written..]) {
                Ok(0) => break,
                Ok(n) => {
                    c.written += n;
                    if c.written == request.len() {
                        c.state = State::Reading;
                        if resumed {
                            // The answer may have raced the end of a long write; its readiness
                            // edge could be gone, so look once.
                            self.on_readable(key, false);
                        }
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.state = State::Writing;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.fail_conn(key, ErrorKind::Write, now_ns());
    }

    /// Reads what arrived on connection `key` and parses it. `to_eof`: the event says the peer
    /// closed or errored, so read until the end instead of trusting a short read.
    fn on_readable(&mut self, key: usize, to_eof: bool) {
        let head_request = self.shared.head_request;
        loop {
            let c = &mut self.conns[key];
            let Some(sock) = c.sock.as_mut() else {
                return;
            };
            // While a head is split across reads, read no more than can complete the longest
            // head allowed: the bytes a connection keeps stay within MAX_HEAD_BYTES + 1.
            let want = if c.head.is_empty() {
                self.rbuf.len()
            } else {
                (MAX_HEAD_BYTES + 1)
                    .saturating_sub(c.head.len())
                    .clamp(1, self.rbuf.len())
            };
            match sock.read(&mut self.rbuf[..want]) {
                Ok(0) => {
                    self.on_eof(key);
                    return;
                }
                Ok(n) => {
                    if c.state != State::Reading {
                        // Bytes nobody asked for: the connection is out of step; drop it.
                        self.close_conn(key);
                        return;
                    }
                    c.answered = true;
                    match c.feed(&self.rbuf[..n], head_request) {
                        (Progress::NeedMore, _) => {}
                        (Progress::Done { status, close }, extra) => {
                            // Anything after the answer is out of step: close after it.
                            self.complete(key, status, close || extra || to_eof);
                            return;
                        }
                        (Progress::Error(_), _) => {
                            self.fail_conn(key, ErrorKind::Parse, now_ns());
                            return;
                        }
                    }
                    if n < want && !to_eof {
                        // A short read drained the socket; the next arrival raises a new edge.
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    if c.state == State::Reading {
                        self.fail_conn(key, ErrorKind::Read, now_ns());
                    } else {
                        self.close_conn(key);
                    }
                    return;
                }
            }
        }
    }

    fn on_eof(&mut self, key: usize) {
        let c = &mut self.conns[key];
        if c.state == State::Reading {
            if let Some(Progress::Done { status, .. }) = c.parser.eof() {
                self.complete(key, status, true);
            } else {
                self.fail_conn(key, ErrorKind::Closed, now_ns());
            }
        } else {
            self.close_conn(key);
        }
    }

    /// The request on `key` got its whole answer.
    fn complete(&mut self, key: usize, status: u16, close: bool) {
        let now = now_ns();
        let req = self.conns[key].req;
        self.inflight -= 1;
        if close {
            self.close_conn(key);
        } else {
            self.make_idle(key);
        }
        if req.measured {
            let latency = now.saturating_sub(req.intended);
            let uncorrected = now.saturating_sub(req.write_ns);
            record_ns(&mut self.res.latency, latency);
            record_ns(&mut self.res.uncorrected, uncorrected);
            self.res.completed += 1;
            self.res.status.add(status);
            self.iv.completed += 1;
            self.iv.latency_sum_ns += latency as f64;
            self.iv.uncorrected_sum_ns += uncorrected as f64;
            record_ns(&mut self.iv.hists.latency, latency);
        }
        // The user's next request (at once in --max) is issued by the loop after the whole batch
        // of events: the server then gets requests in bursts and serves more per wake-up than
        // when each is written as soon as its predecessor's answer is read.
        self.user_done(req.user, now);
    }

    /// The request on `key` (if any) failed with `kind`; the connection is closed. A request
    /// that failed on a stale keep-alive connection is retried instead (see the module docs).
    fn fail_conn(&mut self, key: usize, kind: ErrorKind, now: u64) {
        let c = &self.conns[key];
        let busy = c.busy();
        let req = c.req;
        let stale = c.reused
            && !c.answered
            && matches!(kind, ErrorKind::Write | ErrorKind::Read | ErrorKind::Closed);
        self.close_conn(key);
        if busy {
            self.inflight -= 1;
            if stale && !req.retried && self.shared.retry_idempotent {
                self.retry(req, kind, now);
            } else {
                self.fail(req, kind, now);
            }
        }
    }

    /// Sends `p` again on a fresh connection, keeping its intended time (and its first write's
    /// time and count). It is older than anything in the backlog, so it goes first; with the
    /// backlog full it fails with the error that caused the retry.
    fn retry(&mut self, mut p: Pending, kind: ErrorKind, now: u64) {
        p.retried = true;
        if p.measured {
            self.res.retries += 1;
        }
        if self.try_place(p) {
            return;
        }
        if self.backlog.len() < self.plan.backlog_cap {
            self.backlog.push_front(p);
        } else {
            self.fail(p, kind, now);
        }
    }

    fn fail(&mut self, p: Pending, kind: ErrorKind, now: u64) {
        if p.measured {
            self.res.errors.add(kind, 1);
            self.iv.errors += 1;
        }
        self.user_done(p.user, now);
    }

    fn user_done(&mut self, user: u32, now: u64) {
        if user != NO_USER && self.issuing {
            self.source.user_done(user, now, &mut self.rng);
        }
    }

    fn make_idle(&mut self, key: usize) {
        let c = &mut self.conns[key];
        c.state = State::Idle;
        c.req.write_ns = 0;
        c.req.retried = false;
        self.idle.push_front(key);
    }

    /// Closes the socket of `key` (if any) and frees the slot.
    fn close_conn(&mut self, key: usize) {
        let c = &mut self.conns[key];
        if c.state == State::Closed {
            return;
        }
        if c.state == State::Idle {
            self.idle.remove(key);
        }
        let c = &mut self.conns[key];
        // Dropping the socket closes it, which also removes it from the epoll set.
        c.sock = None;
        c.state = State::Closed;
        c.clear_head();
        c.written = 0;
        c.req.write_ns = 0;
        c.req.retried = false;
        c.deadline = u64::MAX;
        c.parser.reset();
        self.open -= 1;
        self.free.push(key);
    }

    /// Counts a send: rate, lag and the gap since the previous one.
    fn record_send(&mut self, req: Pending, now: u64) {
        if !req.measured {
            self.res.warmup_sent += 1;
            return;
        }
        self.res.sent += 1;
        if self.issuing {
            self.res.sent_in_window += 1;
        }
        let lag = now.saturating_sub(req.intended);
        record_ns(&mut self.res.lag, lag);
        record_ns(&mut self.iv.hists.lag, lag);
        self.iv.lag_max_ns = self.iv.lag_max_ns.max(lag);
        self.iv.sent += 1;
        if self.last_send != 0 {
            let gap = now.saturating_sub(self.last_send) as f64;
            self.res.gap_sum_ns += gap;
            self.res.gap_count += 1;
            // Reservoir sample (algorithm R) of the gaps, bounded and preallocated.
            let cap = self.plan.gap_samples;
            if self.res.gaps.len() < cap {
                self.res.gaps.push(gap);
            } else if cap > 0 {
                let j = ((self.sample_rng.next_u64() as u128 * self.res.gap_count as u128) >> 64)
                    as usize;
                if j < cap {
                    self.res.gaps[j] = gap;
                }
            }
        }
        self.last_send = now;
    }

    /// Sends the current interval to the coordinator and starts the next.
    fn flush_interval(&mut self, end_ns: u64) {
        if end_ns <= self.shared.measure_start_ns {
            // Still in the warmup: nothing was measured.
            self.next_interval = self.shared.measure_start_ns + self.shared.interval_ns;
            return;
        }
        self.send_interval(end_ns, false);
        self.interval_index += 1;
        self.next_interval += self.shared.interval_ns;
    }

    /// Sends the (possibly shorter) last interval at the end of the run, marked as the last.
    fn flush_last_interval(&mut self, end_ns: u64) {
        if end_ns > self.shared.measure_start_ns {
            self.send_interval(end_ns, true);
        }
        // A run that ended in its warmup measured nothing and reports no interval.
    }

    fn send_interval(&mut self, end_ns: u64, last: bool) {
        // Histograms the coordinator has merged come back empty; new ones only while it lags.
        let spare = self
            .recycle
            .try_recv()
            .unwrap_or_else(|_| IntervalHists::new());
        let report = self
            .iv
            .take(self.plan.index, self.interval_index, end_ns, last, spare);
        // The coordinator only stops listening when the run failed; the report is then moot.
        let _ = self.tx.send(report);
    }

    /// At the drain deadline: whatever is still in flight or waiting is unfinished.
    fn abandon(&mut self) {
        let now = now_ns();
        while let Some(p) = self.backlog.pop_front() {
            self.fail(p, ErrorKind::Unfinished, now);
        }
        self.scratch.clear();
        for (key, c) in self.conns.iter() {
            if c.busy() {
                self.scratch.push(key);
            }
        }
        for i in 0..self.scratch.len() {
            let key = self.scratch[i];
            self.fail_conn(key, ErrorKind::Unfinished, now);
        }
    }

    /// Normalizes the gap sample to mean 1 (by the configured rate in open loop).
    fn finish_gaps(&mut self) {
        let scale = match self.plan.source {
            SourcePlan::Open { rate, .. } => rate / 1e9,
            SourcePlan::Users { .. } if self.res.gap_count > 0 => {
                self.res.gap_count as f64 / self.res.gap_sum_ns
            }
            SourcePlan::Users { .. } => 0.0,
        };
        for g in &mut self.res.gaps {
            *g *= scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pops every idle connection, most recently used first.
    fn drain(l: &mut IdleList) -> Vec<usize> {
        std::iter::from_fn(|| l.pop_front()).collect()
    }

    #[test]
    fn idle_list_keeps_lifo_order_when_members_leave_from_the_middle() {
        let mut l = IdleList::with_capacity(2);
        // Used in the order 0..8: 7 is the most recent, 0 has idled longest.
        for key in 0..8 {
            l.push_front(key);
        }
        assert_eq!(l.back(), Some(0));
        // The server closes some idle connections (the middle, the front, the back).
        l.remove(3);
        l.remove(7);
        l.remove(0);
        assert_eq!(l.len(), 5);
        // A plain stack with swap-removal would now offer a long-idle connection first.
        assert_eq!(drain(&mut l), [6, 5, 4, 2, 1]);
        assert_eq!(l.len(), 0);
        assert_eq!(l.back(), None);
        // Reused slots link again, beyond the initial capacity too.
        for key in [9, 1, 12] {
            l.push_front(key);
        }
        l.remove(1);
        assert_eq!(l.back(), Some(9));
        assert_eq!(drain(&mut l), [12, 9]);
    }

    #[test]
    fn idle_list_matches_a_reference_model() {
        // Random pushes, pops and removals against a Vec kept in most-recent-first order.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut l = IdleList::with_capacity(0);
        let mut model: Vec<usize> = Vec::new();
        for _ in 0..20_000 {
            match next(3) {
                0 => {
                    let free: Vec<usize> = (0..64).filter(|k| !model.contains(k)).collect();
                    if let Some(&key) = free.get(next(free.len().max(1))) {
                        l.push_front(key);
                        model.insert(0, key);
                    }
                }
                1 => assert_eq!(l.pop_front(), (!model.is_empty()).then(|| model.remove(0))),
                _ if !model.is_empty() => {
                    let key = model.remove(next(model.len()));
                    l.remove(key);
                }
                _ => {}
            }
            assert_eq!(l.len(), model.len());
            assert_eq!(l.back(), model.last().copied());
        }
    }

    /// Feeds `input` to a fresh connection's parser in reads of `step` bytes, as
    /// `Worker::on_readable` does; returns the outcomes and the largest head buffer kept.
    fn feed_in_reads(input: &[u8], step: usize) -> (Vec<(Progress, bool)>, usize) {
        let mut c = Conn::new();
        let mut out = Vec::new();
        let mut most = 0;
        let mut pos = 0;
        while pos < input.len() {
            // The engine reads no more than completes a head while one is split.
            let want = if c.head.is_empty() {
                step
            } else {
                step.min((MAX_HEAD_BYTES + 1).saturating_sub(c.head.len()).max(1))
            };
            let end = (pos + want).min(input.len());
            let got = c.feed(&input[pos..end], false);
            pos = end;
            most = most.max(c.head.capacity());
            if got.0 != Progress::NeedMore {
                out.push(got);
                if !matches!(got.0, Progress::Done { close: false, .. }) || got.1 {
                    break;
                }
            }
        }
        assert!(
            c.head.capacity() <= HEAD_KEEP,
            "head buffer kept at {}",
            c.head.capacity()
        );
        (out, most)
    }

    #[test]
    fn connection_keeps_only_a_split_head_and_shrinks_it_back() {
        let mut big_head = b"HTTP/1.1 200 OK\r\n".to_vec();
        while big_head.len() < 6000 {
            // Long fields: at most MAX_HEADERS (64) of them are allowed.
            big_head.extend_from_slice(b"X-Filler: ");
            big_head.extend_from_slice(&[b'a'; 150]);
            big_head.extend_from_slice(b"\r\n");
        }
        let mut big = big_head.clone();
        big.extend_from_slice(b"Content-Length: 100000\r\n\r\n");
        big.resize(big.len() + 100_000, b'x');
        let small = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec();
        for step in [1, 7, 100, 4096, READ_SCRATCH] {
            let (out, most) = feed_in_reads(&small, step);
            assert_eq!(
                out,
                [(
                    Progress::Done {
                        status: 200,
                        close: false
                    },
                    false
                )],
                "step {step}"
            );
            // A head that arrives in one read is never copied.
            if step >= small.len() {
                assert_eq!(most, 0, "step {step}");
            }
            let (out, most) = feed_in_reads(&big, step);
            assert_eq!(
                out,
                [(
                    Progress::Done {
                        status: 200,
                        close: false
                    },
                    false
                )],
                "step {step}"
            );
            // The body (100 kB) is never kept: at most the head, bounded by the head limit.
            assert!(
                most <= 2 * (MAX_HEAD_BYTES + 1),
                "kept {most} bytes, step {step}"
            );
        }
        // A head beyond the limit is an error with the kept bytes still bounded.
        let mut huge = big_head;
        while huge.len() <= 3 * MAX_HEAD_BYTES {
            huge.extend_from_slice(
                b"X-More: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n",
            );
        }
        for step in [1, 1000, READ_SCRATCH] {
            let (out, most) = feed_in_reads(&huge, step);
            assert_eq!(
                out,
                [(
                    Progress::Error(crate::http::ParseError::HeadTooLarge),
                    false
                )],
                "step {step}"
            );
            assert!(
                most <= 2 * (MAX_HEAD_BYTES + 1),
                "kept {most} bytes, step {step}"
            );
        }
        // Bytes after a complete answer are reported (the engine closes the connection).
        let (out, _) = feed_in_reads(b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200", 64);
        assert_eq!(
            out,
            [(
                Progress::Done {
                    status: 204,
                    close: false
                },
                true
            )]
        );
    }

    #[test]
    fn a_connection_slot_is_small() {
        // 10,000 connections must fit in a few MB of this process (the sockets are the kernel's).
        assert!(
            std::mem::size_of::<Conn>() <= 160,
            "Conn is {} bytes",
            std::mem::size_of::<Conn>()
        );
        assert_eq!(
            Conn::new().head.capacity(),
            0,
            "no buffer before a split head"
        );
    }
}
