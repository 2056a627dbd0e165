//! One worker thread: an event loop over its own connections, driven by its own arrival source.
//!
//! # Model
//!
//! Each worker owns a mio `Poll`, its connections (a `Slab`, key = `Token`), an RNG stream, its
//! histograms and counters; nothing is shared on the hot path. Once per interval it sends a small
//! report (counts and two interval histograms) to the coordinating thread, which merges them for
//! the live line and the time series; at the end it returns its totals.
//!
//! One loop serves every mode. A [`Source`] yields *due* requests with their intended times:
//! - open loop: the thread's own arrival process at λ/T, absolute times `t0 + Σ gaps`;
//! - users (closed loop and `--max`): a heap of users, each due at the end of its think time
//!   (exponential; zero in `--max`), pushed again when its previous request ends.
//!
//! A due request takes an idle connection (LIFO, so few connections stay warm), else opens one
//! (up to the thread's cap, and at most [`CONNECTS_PER_PASS`] per pass of the loop), else waits
//! in a bounded FIFO backlog (overflow: `backlog` error).
//! One request is in flight per connection; when the server closes a connection its slot is
//! reused for the next connect. The intended time is kept with the request, so its latency
//! counts every wait (backlog, connect, lateness of the loop): no coordinated omission.
//!
//! # Precise waits
//!
//! Before a send the loop arms a timerfd at `intended − spin` and sleeps in `epoll_wait`; once
//! within `spin` of the send it polls with a zero timeout (still serving I/O) until the intended
//! time and writes. The send lag (write − intended) is recorded for every request. After a write
//! it also polls for up to `spin` while requests are in flight, so that a quick answer is not
//! timestamped late by this core's wake-up (except in `--max`, where that would only burn CPU).
//!
//! # Per request
//!
//! No allocation: buffers are allocated when a slot is first used, the backlog, heap, idle stack
//! and gap sample are preallocated. System calls in steady state: one `write`, one `read` (a short
//! read means the socket is drained, so no second read to see `EAGAIN`), and `epoll_wait`
//! amortized over the events it returns; interest is registered once per connection.
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
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use hdrhistogram::Histogram;
use mio::event::Event;
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use queuelab_common::samplers::{ArrivalKind, Rng, Schedule, exp_sample, rng};
use queuelab_common::stats::{HIST_MAX_NS, new_histogram, record_ns};
use rand::Rng as _;
use slab::Slab;

use crate::clock::{Timer, now_ns};
use crate::http::{Progress, ResponseParser};
use crate::result::{ErrorKind, ErrorsByKind, StatusCounts};

/// Token of the timerfd (slab keys never get this large).
const TIMER: Token = Token(usize::MAX);
/// "No user": a request of the open-loop schedule.
const NO_USER: u32 = u32::MAX;
/// Size of a connection's read buffer. It must hold a whole response head
/// (`MAX_HEAD_BYTES`); body bytes are counted and dropped, so more buys only fewer reads.
const READ_BUF: usize = 16 * 1024;
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
    pub interval_ns: u64,
    pub stop: Arc<AtomicBool>,
}

/// What one worker does.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub index: usize,
    pub core: Option<core_affinity::CoreId>,
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

/// One interval of one worker, sent to the coordinator.
#[derive(Debug)]
pub(crate) struct IntervalReport {
    pub index: u64,
    /// End of the interval as this worker saw it (shorter than the interval for the last one).
    pub end_ns: u64,
    pub sent: u64,
    pub completed: u64,
    pub errors: u64,
    pub latency_sum_ns: f64,
    pub uncorrected_sum_ns: f64,
    pub latency: Histogram<u64>,
    pub lag: Histogram<u64>,
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
    /// Start of the write (0 before).
    write_ns: u64,
}

#[derive(Debug)]
struct Conn {
    sock: Option<TcpStream>,
    state: State,
    req: Pending,
    written: usize,
    buf: Box<[u8]>,
    len: usize,
    parser: ResponseParser,
    /// Timeout of the connect or of the request in flight.
    deadline: u64,
    /// Position in the idle stack while `Idle`.
    idle_pos: usize,
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
                write_ns: 0,
            },
            written: 0,
            buf: vec![0; READ_BUF].into_boxed_slice(),
            len: 0,
            parser: ResponseParser::new(),
            deadline: u64::MAX,
            idle_pos: 0,
        }
    }

    fn busy(&self) -> bool {
        matches!(
            self.state,
            State::Connecting | State::Writing | State::Reading
        )
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
    latency: Histogram<u64>,
    lag: Histogram<u64>,
    lag_max_ns: u64,
}

fn interval_histogram() -> Histogram<u64> {
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
            latency: interval_histogram(),
            lag: interval_histogram(),
            lag_max_ns: 0,
        }
    }

    fn take(&mut self, index: u64, end_ns: u64) -> IntervalReport {
        let r = IntervalReport {
            index,
            end_ns,
            sent: self.sent,
            completed: self.completed,
            errors: self.errors,
            latency_sum_ns: self.latency_sum_ns,
            uncorrected_sum_ns: self.uncorrected_sum_ns,
            latency: self.latency.clone(),
            lag: self.lag.clone(),
            lag_max_ns: self.lag_max_ns,
        };
        self.sent = 0;
        self.completed = 0;
        self.errors = 0;
        self.latency_sum_ns = 0.0;
        self.uncorrected_sum_ns = 0.0;
        self.latency.reset();
        self.lag.reset();
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
    idle: Vec<usize>,
    free: Vec<usize>,
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
            .field("backlog", &self.backlog.len())
            .field("issuing", &self.issuing)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Sets up the worker (called on its own thread, after pinning).
    pub fn new(shared: Arc<Shared>, plan: Plan, tx: Sender<IntervalReport>) -> io::Result<Self> {
        let poll = Poll::new()?;
        let timer = Timer::new()?;
        poll.registry()
            .register(&mut SourceFd(&timer.as_raw_fd()), TIMER, Interest::READABLE)?;
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
            idle: Vec::with_capacity(cap),
            free: Vec::with_capacity(cap),
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
        self.flush_interval(end.max(self.shared.measure_start_ns));
        self.finish_gaps();
        Ok(self.res)
    }

    /// Sleeps until the next thing to do: the timerfd while far, a zero-timeout poll when close.
    fn wait(&mut self, events: &mut Events) -> io::Result<()> {
        let mut target = self.next_tick.min(self.next_interval);
        if self.issuing {
            if let Some(due) = self.source.peek() {
                target = target.min(due.saturating_sub(self.shared.spin_ns));
            }
            if let Some(end) = self.shared.issue_end_ns {
                target = target.min(end);
            }
        } else {
            target = target.min(self.drain_deadline);
        }
        let now = now_ns();
        // Requests wait only because the connect pace was reached: come straight back.
        let waiting_for_pace = !self.backlog.is_empty() && self.open < self.plan.conn_cap;
        // Just after a send the answer may be a few tens of microseconds away; sleeping now would
        // add this core's wake-up time to its latency. Poll for up to the spin margin instead
        // (not in --max, where every connection is always in flight and polling only costs).
        let answer_soon = self.spin_after_send
            && self.inflight > 0
            && now < self.last_write.saturating_add(self.shared.spin_ns);
        let timeout = if target <= now || waiting_for_pace || answer_soon {
            Some(Duration::ZERO)
        } else {
            self.timer.arm(target)?;
            None
        };
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
        match conn.state {
            State::Closed => {}
            State::Connecting => self.on_connecting(key),
            State::Writing => {
                if ev.is_writable() || ev.is_error() || ev.is_write_closed() {
                    self.write_request(key);
                }
            }
            State::Reading | State::Idle => {
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.on_readable(key, ev.is_read_closed() || ev.is_error());
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
        while let Some(&p) = self.backlog.front() {
            if !self.try_place(p) {
                return;
            }
            self.backlog.pop_front();
        }
    }

    /// Places `p` on an idle or new connection; `false` if neither is available.
    fn try_place(&mut self, p: Pending) -> bool {
        if let Some(key) = self.idle.pop() {
            let c = &mut self.conns[key];
            c.state = State::Writing;
            c.req = p;
            c.written = 0;
            self.inflight += 1;
            self.write_request(key);
            true
        } else if self.open < self.plan.conn_cap && self.connects_this_pass < CONNECTS_PER_PASS {
            self.connects_this_pass += 1;
            self.connect(p);
            true
        } else {
            false
        }
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
        c.len = 0;
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
            Ok(Some(_)) | Err(_) => true,
            Ok(None) => match sock.peer_addr() {
                Ok(_) => false,
                // Not connected yet: a spurious event.
                Err(e)
                    if e.kind() == io::ErrorKind::NotConnected
                        || e.kind() == io::ErrorKind::WouldBlock =>
                {
                    return;
                }
                Err(_) => true,
            },
        };
        if failed {
            self.fail_conn(key, ErrorKind::Connect, now_ns());
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
        if c.written == 0 && c.req.write_ns == 0 {
            self.last_write = now;
            c.req.write_ns = now;
            c.deadline = now.saturating_add(self.shared.timeout_ns);
            let req = c.req;
            self.record_send(req, now);
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
        loop {
            let c = &mut self.conns[key];
            let Some(sock) = c.sock.as_mut() else {
                return;
            };
            let space = c.buf.len() - c.len;
            debug_assert!(
                space > 0,
                "read buffer full: len {} state {:?}",
                c.len,
                c.state
            );
            match sock.read(&mut c.buf[c.len..]) {
                Ok(0) => {
                    self.on_eof(key);
                    return;
                }
                Ok(n) => {
                    c.len += n;
                    if c.state != State::Reading {
                        // Bytes nobody asked for: the connection is out of step; drop it.
                        self.close_conn(key);
                        return;
                    }
                    let (consumed, progress) =
                        c.parser.advance(&c.buf[..c.len], self.shared.head_request);
                    match progress {
                        Progress::NeedMore => {
                            if consumed > 0 {
                                c.buf.copy_within(consumed..c.len, 0);
                                c.len -= consumed;
                            }
                        }
                        Progress::Done { status, close } => {
                            // Anything after the answer is out of step: close after it.
                            let extra = c.len > consumed;
                            c.len = 0;
                            self.complete(key, status, close || extra || to_eof);
                            return;
                        }
                        Progress::Error(_) => {
                            self.fail_conn(key, ErrorKind::Parse, now_ns());
                            return;
                        }
                    }
                    if n < space && !to_eof {
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
            record_ns(&mut self.iv.latency, latency);
        }
        // The user's next request (at once in --max) is issued by the loop after the whole batch
        // of events: the server then gets requests in bursts and serves more per wake-up than
        // when each is written as soon as its predecessor's answer is read.
        self.user_done(req.user, now);
    }

    /// The request on `key` (if any) failed with `kind`; the connection is closed.
    fn fail_conn(&mut self, key: usize, kind: ErrorKind, now: u64) {
        let c = &self.conns[key];
        let busy = c.busy();
        let req = c.req;
        self.close_conn(key);
        if busy {
            self.inflight -= 1;
            self.fail(req, kind, now);
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
        c.idle_pos = self.idle.len();
        c.req.write_ns = 0;
        self.idle.push(key);
    }

    /// Closes the socket of `key` (if any) and frees the slot.
    fn close_conn(&mut self, key: usize) {
        let c = &mut self.conns[key];
        if c.state == State::Closed {
            return;
        }
        if c.state == State::Idle {
            let pos = c.idle_pos;
            self.idle.swap_remove(pos);
            if let Some(&moved) = self.idle.get(pos) {
                self.conns[moved].idle_pos = pos;
            }
        }
        let c = &mut self.conns[key];
        // Dropping the socket closes it, which also removes it from the epoll set.
        c.sock = None;
        c.state = State::Closed;
        c.len = 0;
        c.written = 0;
        c.req.write_ns = 0;
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
        record_ns(&mut self.iv.lag, lag);
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
        let report = self.iv.take(self.interval_index, end_ns);
        // The coordinator only stops listening when the run failed; the report is then moot.
        let _ = self.tx.send(report);
        self.interval_index += 1;
        self.next_interval += self.shared.interval_ns;
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
