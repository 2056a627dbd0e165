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
//! The [`Worker`] is the loop: it waits, dispatches events and due requests, and decides what
//! happens to a request. It composes three parts, each owning its state:
//! - [`schedule`]: the arrival source (open loop, or the users of closed loop and `--max`);
//! - [`pool`]: the connections (slots, idle list, connect pace, each connection's I/O and state);
//! - [`account`]: the histograms, the [`Counts`](crate::counts::Counts) of the current interval
//!   and the totals, the batches of the interval of the mean ([`crate::batches`]), the gap
//!   sample.
//!
//! One loop serves every mode. A [`Source`] yields *due* requests with their intended times:
//! - open loop: the thread's own arrival process at λ/T, absolute times `t0 + Σ gaps` (with a
//!   rate profile, `t0 + Λ⁻¹(Σ gaps)` of operational gaps at the thread's share of λ(t));
//! - users (closed loop and `--max`): a heap of users, each due at the end of its think time
//!   (exponential; zero in `--max`), pushed again when its previous request ends.
//!
//! A due request takes an idle connection, else opens one (up to the thread's cap, and at most
//! [`CONNECTS_PER_PASS`](pool::CONNECTS_PER_PASS) per pass of the loop), else waits in a bounded
//! FIFO backlog (overflow: `backlog` error). Idle connections are kept in strict LIFO order (most
//! recently used first, see [`IdleList`](pool::IdleList)): few connections stay warm, and those
//! that idled long sink to the bottom, where a server's idle timeout closes them without being
//! raced by new requests. One request is in flight per connection; when the server closes a
//! connection its slot is reused for the next connect. The intended time is kept with the
//! request, so its latency counts every wait (backlog, connect, retry, lateness of the loop): no
//! coordinated omission.
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
//! Reads go into one buffer per worker ([`READ_SCRATCH`](pool::READ_SCRATCH)); the response
//! parser consumes body bytes as they come, so a connection keeps only the start of a response
//! head split across reads, in a small buffer that is empty (and unallocated) until a head is
//! first split, never exceeds
//! [`MAX_HEAD_BYTES`](queuelab_common::http::MAX_HEAD_BYTES) + 1 bytes and is shrunk back to
//! [`HEAD_KEEP`](pool::HEAD_KEEP) once the head is parsed. A connection costs about 200 bytes of
//! this process's memory, plus the kernel's socket, and about 800 more once its answers carry
//! `Server-Timing` (the parser's fixed-size table, allocated then and reused).
//!
//! A TLS connection (an https target) reads into an incoming buffer of its own instead, which
//! holds one whole record until rustls has decrypted it, and encrypts its requests into an
//! outgoing one; both are allocated when it opens (see [`tls`]), and the plaintext goes to the
//! same parser.
//!
//! No allocation per request: the backlog, heap, idle links and gap sample are preallocated or
//! grow only with the number of connection slots (rustls allocates two per request on a TLS
//! connection, inside its record layer; docs/qload.md says which). System calls in steady state: one `write`, one
//! `read` (a short read means the socket is drained, so no second read to see `EAGAIN`), and
//! `epoll_wait` amortized over the events it returns; interest is registered once per connection.
//!
//! # End of a run
//!
//! Issuing stops at the end of the duration, after the last of the thread's share of
//! `--requests`, or on the stop flag; then the loop drains for at most one timeout. Requests still
//! in flight or waiting then are counted as `unfinished`. A request in flight longer than the
//! timeout fails as `timeout` (checked by a sweep every few milliseconds).
mod account;
mod pool;
mod schedule;
mod tls;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use mio::event::Event;
use mio::{Events, Interest, Poll, Token};
use queuelab_common::profile::Profile;
use queuelab_common::samplers::{ArrivalKind, rng};

use crate::result::{ErrorKind, TlsErrorKind};
use crate::tls::TlsSetup;
use queuelab_os::clock::{Clock, now_ns};
use queuelab_os::timer::Timer;
use queuelab_os::wait::Wait;

use account::Account;
pub(crate) use account::{IntervalHists, IntervalStats, PhaseDurations, ThreadResult, Timing};
use pool::{Connected, Handshake, Pool, Read, Start, State, Write};
use schedule::{NO_USER, Source};

/// Token of the timerfd (slab keys never get this large).
const TIMER: Token = Token(usize::MAX);
/// Most due requests handled before the loop polls again (keeps I/O served when far behind).
const ISSUE_BUDGET: usize = 256;

/// What the coordinator tells every worker.
#[derive(Debug)]
pub(crate) struct Shared {
    pub addr: SocketAddr,
    /// The TLS setup of an https target (shared by every worker's connections).
    pub tls: Option<TlsSetup>,
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

#[derive(Debug, Clone)]
pub(crate) enum SourcePlan {
    Open {
        rate: f64,
        arrival: ArrivalKind,
    },
    /// Open loop following a rate profile (the warmup's lead included), at `share` of its rate.
    Shaped {
        profile: Arc<Profile>,
        share: f64,
        arrival: ArrivalKind,
    },
    Users {
        users: u32,
        think_s: f64,
    },
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
    pub stats: IntervalStats,
}

/// A request, from the moment it is due.
#[derive(Debug, Clone, Copy)]
struct Pending {
    intended: u64,
    /// Its user ([`NO_USER`] in open loop).
    user: u32,
    measured: bool,
    /// This is the retry of a request that failed on a stale keep-alive connection: it must go
    /// on a fresh connection, and is never retried again.
    retried: bool,
    /// Start of the (first) write (0 before).
    write_ns: u64,
}

/// One worker (see the module docs).
///
/// Besides its parts, the worker keeps what steers its loop: whether it is issuing, its
/// deadlines, the requests waiting for a connection, and its tallies of open connections and of
/// requests in flight (the pool reports what opened and closed; the worker decides).
pub(crate) struct Worker {
    shared: Arc<Shared>,
    plan: Plan,
    poll: Poll,
    timer: Timer,
    source: Source,
    pool: Pool,
    account: Account,
    /// Connections open.
    open: usize,
    /// Requests connecting, being written or awaiting their answer.
    inflight: usize,
    backlog: VecDeque<Pending>,
    issuing: bool,
    drain_deadline: u64,
    next_tick: u64,
    tick_ns: u64,
    interval_index: u64,
    next_interval: u64,
    tx: Sender<IntervalReport>,
    /// Histograms the coordinator has merged and sends back for reuse.
    recycle: Receiver<IntervalHists>,
    /// Keys of connections to fail in a sweep (preallocated).
    scratch: Vec<usize>,
    /// Time of the latest write (measured or not).
    last_write: u64,
    /// Whether to poll rather than sleep for a spin margin after each write (not in `--max`).
    spin_after_send: bool,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.plan.index)
            .field("open", &self.open)
            .field("inflight", &self.inflight)
            .field("idle", &self.pool.idle_len())
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
        let source = Source::new(
            plan.source.clone(),
            shared.start_ns,
            rng(plan.seed, plan.index as u64),
            plan.requests,
        );
        let cap = plan.conn_cap;
        let tick_ns = (shared.timeout_ns / 10).clamp(1_000_000, 50_000_000);
        Ok(Self {
            poll,
            timer,
            source,
            pool: Pool::new(cap, shared.tls.clone()),
            account: Account::new(
                &plan,
                shared.start_ns,
                shared.measure_start_ns,
                shared.issue_end_ns,
            ),
            open: 0,
            inflight: 0,
            backlog: VecDeque::with_capacity(plan.backlog_cap),
            issuing: true,
            drain_deadline: u64::MAX,
            next_tick: shared.start_ns + tick_ns,
            tick_ns,
            interval_index: 0,
            next_interval: shared.measure_start_ns + shared.interval_ns,
            tx,
            recycle,
            scratch: Vec::with_capacity(cap),
            last_write: 0,
            spin_after_send: !matches!(plan.source, SourcePlan::Users { think_s, .. } if think_s <= 0.0),
            shared,
            plan,
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
            self.pool.new_pass();
            if now >= self.next_tick {
                self.tick(now);
            }
            while now >= self.next_interval {
                self.flush_interval(self.next_interval);
            }
            self.refill();
            // Issue what was due before the end first: a loop that wakes late (a stalled core)
            // still sends every request intended inside the window, late, as an open loop must.
            if self.issuing {
                self.issue_due(now);
            }
            match self.shared.issue_end_ns {
                Some(end)
                    if self.issuing
                        && now >= end
                        && self.source.peek().is_none_or(|due| due >= end) =>
                {
                    self.stop_issuing(end)
                }
                _ => {}
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
        let mut result = self.account.finish();
        result.tls_first_error = self.pool.take_tls_error();
        Ok(result)
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
        let Some(state) = self.pool.state(key) else {
            return;
        };
        let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
        let to_eof = ev.is_read_closed() || ev.is_error();
        match state {
            State::Closed => {}
            State::Connecting | State::Writing => {
                if state == State::Connecting {
                    self.on_connecting(key);
                } else if ev.is_writable() || ev.is_error() || ev.is_write_closed() {
                    self.write_request(key);
                }
                // An answer that came before the request was written (a server answering at
                // once) raised its readable edge in this very event: read it now, or never.
                if readable && self.pool.state(key) == Some(State::Reading) {
                    self.on_readable(key, to_eof);
                }
            }
            State::Handshaking => {
                if readable || ev.is_writable() || ev.is_write_closed() {
                    self.on_handshake(key);
                }
            }
            State::Reading | State::Idle => {
                if ev.is_writable() && self.pool.has_pending_out(key) {
                    if let Err(kind) = self.pool.flush_pending(key) {
                        self.fail_conn(key, kind, now_ns());
                        return;
                    }
                }
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
        self.pool.expired_into(now, &mut self.scratch);
        for i in 0..self.scratch.len() {
            let key = self.scratch[i];
            let kind = match self.pool.state(key) {
                Some(State::Connecting) => ErrorKind::Connect,
                // The handshake shares the connect's timeout.
                Some(State::Handshaking) => {
                    self.pool
                        .note_tls_error("no end of the TLS handshake within the timeout");
                    ErrorKind::Tls(TlsErrorKind::HandshakeTimeout)
                }
                _ => ErrorKind::Timeout,
            };
            self.fail_conn(key, kind, now);
        }
    }

    fn stop_issuing(&mut self, at: u64) {
        if !self.issuing {
            return;
        }
        self.issuing = false;
        self.account.issue_end(at.max(self.shared.measure_start_ns));
        self.drain_deadline = at.max(now_ns()) + self.shared.timeout_ns;
        self.source.stop();
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
            let Some((intended, user)) = self.source.pop() else {
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
        let p = Pending {
            intended,
            user,
            measured: intended >= self.shared.measure_start_ns,
            retried: false,
            write_ns: 0,
        };
        if p.measured {
            self.source.count_measured();
            self.account.issued(&p);
        }
        self.dispatch(p);
        if self.source.share_done() {
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
            self.account.backlog_wait(&p);
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
            if let Some(key) = self.pool.reuse(p) {
                self.inflight += 1;
                self.write_request(key);
                return true;
            }
        }
        if !self.pool.may_connect() {
            return false;
        }
        if self.open >= self.plan.conn_cap {
            match self.pool.least_recent_idle() {
                Some(stale) if p.retried => self.close_conn(stale),
                _ => return false,
            }
        }
        self.connect(p);
        true
    }

    /// Opens a connection for `p` (counted against the pass's pace); a failure fails `p`.
    fn connect(&mut self, p: Pending) {
        let now = now_ns();
        let deadline = now.saturating_add(self.shared.timeout_ns);
        if let Err(kind) =
            self.pool
                .connect(self.shared.addr, self.poll.registry(), p, now, deadline)
        {
            self.fail(p, kind, now);
            return;
        }
        self.open += 1;
        self.inflight += 1;
        self.account.opened(self.open);
    }

    fn on_connecting(&mut self, key: usize) {
        match self.pool.finish_connect(key, now_ns()) {
            Connected::NotYet => {}
            Connected::Failed(kind) => self.fail_conn(key, kind, now_ns()),
            Connected::Ready { connect_ns } => {
                self.account.connected(connect_ns);
                self.write_request(key);
            }
            Connected::Handshake { connect_ns } => {
                self.account.connected(connect_ns);
                self.on_handshake(key);
            }
        }
    }

    /// Runs the TLS handshake of connection `key` as far as it goes; once it ends, the request
    /// is written.
    fn on_handshake(&mut self, key: usize) {
        let now = now_ns();
        match self.pool.handshake(key, now) {
            Handshake::Pending => {}
            Handshake::Done { tls_ns } => {
                self.account.handshaken(tls_ns);
                self.write_request(key);
                // The reads of the handshake may have stopped with bytes left in the socket
                // (its readiness edge then gone): look once.
                if self.pool.state(key) == Some(State::Reading) {
                    self.on_readable(key, false);
                }
            }
            Handshake::Failed(kind) => self.fail_conn(key, kind, now),
        }
    }

    /// Writes (the rest of) the request of connection `key`.
    fn write_request(&mut self, key: usize) {
        let now = now_ns();
        match self.pool.start_write(key, now, self.shared.timeout_ns) {
            Start::Resume => {}
            Start::Attempt => self.last_write = now,
            Start::First(req) => {
                self.last_write = now;
                self.account.sent(&req, now, self.issuing);
            }
        }
        match self.pool.write(key, &self.shared.request) {
            Write::Blocked => {}
            // The answer may have raced the end of a long write; its readiness edge could be
            // gone, so look once.
            Write::Written { resumed: true } => self.on_readable(key, false),
            Write::Written { resumed: false } => {}
            Write::Failed(kind) => self.fail_conn(key, kind, now_ns()),
        }
    }

    /// Reads what arrived on connection `key` and acts on it. `to_eof`: the event says the peer
    /// closed or errored (see [`Pool::read`]).
    fn on_readable(&mut self, key: usize, to_eof: bool) {
        match self.pool.read(key, to_eof, self.shared.head_request) {
            Read::Wait => {}
            Read::Answer { status, close } => self.complete(key, status, close),
            Read::Failed(kind) => self.fail_conn(key, kind, now_ns()),
            // The connection is out of step; drop it.
            Read::Stray => self.close_conn(key),
        }
    }

    /// The request on `key` got its whole answer.
    fn complete(&mut self, key: usize, status: u16, close: bool) {
        let now = now_ns();
        let req = self.pool.req(key);
        self.inflight -= 1;
        // Counted before the connection is closed or reused: its parser holds the answer's
        // Server-Timing until then.
        self.account
            .completed(&req, status, now, self.pool.server_timing(key));
        if close {
            self.close_conn(key);
        } else {
            self.pool.make_idle(key);
        }
        // The user's next request (at once in --max) is issued by the loop after the whole batch
        // of events: the server then gets requests in bursts and serves more per wake-up than
        // when each is written as soon as its predecessor's answer is read.
        self.user_done(req.user, now);
    }

    /// The request on `key` (if any) failed with `kind`; the connection is closed. A request
    /// that failed on a stale keep-alive connection is retried instead (see the module docs).
    fn fail_conn(&mut self, key: usize, kind: ErrorKind, now: u64) {
        let in_flight = self.pool.in_flight(key);
        self.close_conn(key);
        if let Some((req, unanswered_reuse)) = in_flight {
            self.inflight -= 1;
            let stale = unanswered_reuse
                && matches!(kind, ErrorKind::Write | ErrorKind::Read | ErrorKind::Closed);
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
        self.account.retried(&p);
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
        self.account.failed(&p, kind);
        self.user_done(p.user, now);
    }

    fn user_done(&mut self, user: u32, now: u64) {
        if user != NO_USER && self.issuing {
            self.source.user_done(user, now);
        }
    }

    /// Closes connection `key` (if open) and frees its slot.
    fn close_conn(&mut self, key: usize) {
        if self.pool.close(key) {
            self.open -= 1;
        }
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
        let report = IntervalReport {
            thread: self.plan.index,
            index: self.interval_index,
            last,
            end_ns,
            stats: self.account.take_interval(spare),
        };
        // The coordinator only stops listening when the run failed; the report is then moot.
        let _ = self.tx.send(report);
    }

    /// At the drain deadline: whatever is still in flight or waiting is unfinished.
    fn abandon(&mut self) {
        let now = now_ns();
        while let Some(p) = self.backlog.pop_front() {
            self.fail(p, ErrorKind::Unfinished, now);
        }
        self.pool.busy_into(&mut self.scratch);
        for i in 0..self.scratch.len() {
            let key = self.scratch[i];
            self.fail_conn(key, ErrorKind::Unfinished, now);
        }
    }
}
