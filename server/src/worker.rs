//! The I/O threads: one mio event loop each, sharing only the queue model and the metrics.
//!
//! Each thread owns its listener (one `SO_REUSEPORT` socket per thread), a slab of connections
//! whose keys are the mio tokens, a timer wheel whose earliest deadline is armed on a `timerfd`,
//! a 64 KiB read buffer and a batch of metrics. Connections are edge-triggered: every readiness
//! event is treated as a hint (it may be spurious), reads and writes go on until `WouldBlock`, and
//! `Interrupted` is retried.
//!
//! A connection is a small state machine:
//!
//! - `Open`: read, parse heads (a [`RequestReader`]), admit each request to the queue, and keep
//!   one *slot* per request in arrival order. A slot holds the departure time and what to answer.
//!   The front slots whose departure has passed are rendered into the output buffer and written.
//!   Only the front slot's departure is on the wheel, so responses always leave in request order
//!   (pipelining) and a connection has at most one live timer.
//! - `Closing`: after `Connection: close`, HTTP/1.0, a bad request or shutdown: nothing more is
//!   read; the queued answers are written, then the connection lingers.
//! - `Lingering`: the write side is shut down and input is read and discarded until the peer
//!   closes (or [`LINGER_NS`] passes), so that a close never turns into a reset that would destroy
//!   the last answer in flight.
//!
//! Back-pressure: a connection stops reading and parsing while it has [`PIPELINE_MAX`] requests
//! unanswered or more than [`OUT_HIGH`] bytes of unsent output, so a client that pipelines without
//! reading cannot make the server buffer without bound; the kernel's socket buffers then push back
//! on the client. Input held back this way is resumed by the connection's own answers: when they
//! lift the back-pressure, the connection parses on without waiting for a readiness event (none
//! may come: the client may have sent everything already).
//!
//! A peer that goes away: an EOF is a half-close, and the requests already sent are still
//! answered. A reset (`EPOLLERR`) closes the connection at once, also when it is not reading
//! (closing, or back-pressured), and its unanswered requests are counted as abandoned; in the
//! queue model they keep their places until their departures (see [`crate::metrics`]).
//!
//! Timing: the loop computes the next wheel deadline; if it is more than `--spin` away the timerfd
//! is armed at `deadline - spin` and the thread sleeps in `epoll_wait`. Within the spin margin it
//! no longer sleeps: it keeps serving I/O with non-blocking polls (so that arrivals are stamped
//! when they come), and for the last [`SPIN_QUIET_NS`] it spins on the clock alone. Due timers are
//! fired before and between the events of a batch, not only after it. Each fired departure
//! records its lateness (clock at firing minus the departure time) in the metrics, and each queued
//! answer reports its own (clock at rendering minus the departure time) as the `late` of its
//! `Server-Timing` header. With `--busy-poll` the thread never sleeps while a connection is open:
//! every turn polls with a zero timeout, so an arrival is stamped, and a departure written, a loop
//! turn after the fact rather than a wake-up later; with no connection open it sleeps as usual.
//!
//! Timeouts (header, idle, linger, shutdown grace) are checked by a periodic sweep on the same
//! wheel, a few times per shortest timeout.
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use queuelab_common::http::{MAX_HEAD_BYTES, http_date};
use queuelab_common::samplers::ServiceKind;
use queuelab_os::clock::Clock;
use queuelab_os::timer::Timer as TimerFd;
use queuelab_os::wait::{Action, Wait};
use slab::Slab;

use crate::Config;
use crate::forward::{self, Acquired, Fault, Job, Pool};
use crate::http::{
    self, ConnHeader, Head, Parsed, Reject, RequestReader, Route, Unavailable, write_reject,
};
use crate::metrics::{self, LocalMetrics, Snapshot, ThreadMetrics};
use crate::network::{End, NetOutcome, NetPoll, NetTicket, NetworkModel, Route as NetRoute};
use crate::queue::{Outcome, Poll as Departure, QueueModel, Ticket};
use crate::wheel::{Expired, TICK_NS, Wheel, tick_ceil, tick_floor};

/// Token of each thread's waker (shutdown requests).
pub(crate) const WAKER: Token = Token(usize::MAX - 1);
const LISTENER: Token = Token(usize::MAX - 2);
const TIMER: Token = Token(usize::MAX - 3);
/// Tokens of the downstream connections of `--forward` start here (connection keys stay below).
const FORWARD_BASE: usize = usize::MAX / 2;

/// Requests a connection may have unanswered before it stops reading.
pub const PIPELINE_MAX: usize = 32;
/// Unsent output (bytes) above which a connection stops reading.
pub const OUT_HIGH: usize = 32 * 1024;
/// Size of each thread's read buffer.
pub const READ_BUF: usize = 64 * 1024;
/// Longest time a closing connection waits for its peer to close (ns).
pub const LINGER_NS: u64 = 2_000_000_000;
/// Reads per event while lingering (then wait for more data or the linger deadline).
const LINGER_READS: usize = 16;
/// Reads one connection may make per turn of the event loop before the others get theirs; a
/// connection with input left is revisited on the next turn (readiness is edge-triggered, so it
/// must not simply wait for another event).
const READS_PER_TURN: usize = 8;
/// Initial capacity of each thread's output buffer (an answer is about 200 bytes; pipelined
/// answers grow it). A connection has no output buffer of its own until the socket leaves part
/// of an answer unsent (see `Io::answer`).
const OUT_INIT: usize = 4096;
/// Initial room for unanswered requests of a connection (one, unless the client pipelines: then
/// it grows towards [`PIPELINE_MAX`] once and keeps that size while the buffers are pooled).
const SLOTS_INIT: usize = 2;
/// Connections whose closing since the last trim makes freed memory worth returning to the
/// system (see [`Worker::trim_after_peak`]).
const TRIM_MIN_DROP: usize = 256;
/// Last stretch before a deadline spent spinning on the clock alone, without polling for I/O
/// (handling an event takes a few microseconds and would make the departure late).
const SPIN_QUIET_NS: u64 = 10_000;
/// Initial room per timer-wheel slot (384 slots: about 36 KiB per thread).
const WHEEL_SLOT_CAPACITY: usize = 4;
/// Buffers kept for reuse by new connections, per thread. Enough to absorb connection churn
/// without allocating; not so many that a passing peak of connections pins its buffers for good
/// (the rest are freed as their connections close).
const POOL_MAX: usize = 64;
/// Capacity a pooled input buffer keeps at most (a partial head fits).
const POOLED_INBUF: usize = MAX_HEAD_BYTES;
/// Capacity a pooled output buffer keeps at most (a few pipelined answers fit).
const POOLED_OUT: usize = OUT_INIT;

/// State shared by every I/O thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub clock: Clock,
    /// The one logical queue (`None` with `--service zero`: no queue at all).
    pub queue: Option<Mutex<QueueModel>>,
    /// `--network`: the network of stations (then `queue` is `None`).
    pub network: Option<Mutex<NetworkModel>>,
    pub model_name: String,
    pub shutdown: AtomicBool,
    pub shutdown_at_ns: AtomicU64,
    pub abort: AtomicBool,
    pub open_connections: AtomicUsize,
    pub metrics: Vec<Mutex<ThreadMetrics>>,
    /// Woken when an I/O thread exits (lets `run` notice a failed thread).
    pub exit_waker: Option<Arc<Waker>>,
    /// `--forward`: the downstream's address (resolved once at start) and `Host`.
    pub forward: Option<(std::net::SocketAddr, String)>,
}

/// Locks a mutex, ignoring poisoning (the data are counters and a queue whose updates are single
/// statements; a panic elsewhere cannot leave them half-changed in a way that matters more than
/// losing the server).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Clone, Copy)]
enum Timer {
    /// The front slot of connection `key` (generation `generation`) is due.
    Departure { key: u32, generation: u32 },
    /// Periodic timeout sweep.
    Sweep,
    /// The shutdown grace period is over.
    DrainDeadline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Served {
        wait_ns: u64,
        service_ns: u64,
    },
    /// Accepted under a discipline whose departure later arrivals can postpone: the slot's
    /// `due_ns` is the earliest the departure can be, and the model says at that time whether it
    /// has come ([`QueueModel::poll`]).
    Queued(Ticket),
    /// Accepted into the network (`--network`): the slot's `due_ns` is a lower bound of its
    /// exit, and the model says at that time whether it has left ([`NetworkModel::poll`]).
    NetQueued(NetTicket),
    /// Exited the network: the visits are in [`Io`]'s `net_route` while it is rendered.
    NetServed,
    /// 500: the model did not know a queued request's ticket (never expected).
    Internal,
    /// `--forward`: served here at `since_ns` - `late_ns`, dispatched downstream at `since_ns`
    /// once its body is complete (`dispatched`); `sent` once its bytes went to a downstream
    /// connection.
    Forwarding {
        wait_ns: u64,
        service_ns: u64,
        late_ns: u64,
        since_ns: u64,
        dispatched: bool,
        sent: bool,
    },
    Unavailable(Unavailable),
    Reject(Reject),
    Metrics,
    Healthz,
}

/// One request awaiting its answer.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// When the answer may be written (ns on the server clock).
    due_ns: u64,
    reply: Reply,
    conn: ConnHeader,
    head_only: bool,
    /// The request's priority class: the one its `X-Priority` named, else the model's draw (0
    /// for answers that did not go through the queue).
    class: u8,
    /// `--forward`: length of the request's method and target at the front of the connection's
    /// `fwd` buffer (0: not forwarded), followed by `fwd_body` bytes of body.
    fwd_line: u16,
    fwd_body: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    Closing,
    Lingering { until_ns: u64 },
}

/// Buffers of a connection, recycled through a per-thread pool.
#[derive(Debug)]
struct Bufs {
    inbuf: Vec<u8>,
    out: Vec<u8>,
    slots: VecDeque<Slot>,
    fwd: Vec<u8>,
}

impl Bufs {
    fn new() -> Self {
        Bufs {
            inbuf: Vec::new(),
            out: Vec::new(),
            slots: VecDeque::with_capacity(SLOTS_INIT),
            fwd: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// This connection's slab key (its token).
    key: u32,
    generation: u32,
    /// `--forward`: the method and target, then the body, of each request still to forward, in
    /// order (see [`Slot::fwd_line`]).
    fwd: Vec<u8>,
    /// The body now being received is forwarded (copied into `fwd`).
    capture: bool,
    reader: RequestReader,
    /// Received bytes not yet consumed: a partial head, or heads held back by back-pressure.
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    slots: VecDeque<Slot>,
    phase: Phase,
    /// Readable and not yet read until `WouldBlock`.
    want_read: bool,
    /// The peer signalled end of input (read until EOF, no short-read shortcut).
    rdhup: bool,
    /// Queued for another turn (see [`READS_PER_TURN`]).
    revisit: bool,
    peer_eof: bool,
    broken: bool,
    /// When the head now being received began (`None` between requests).
    head_since: Option<u64>,
    last_active_ns: u64,
    /// Departure time of the front slot that a wheel entry is armed for.
    timer_for: Option<u64>,
}

impl Conn {
    fn out_pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    fn backpressured(&self) -> bool {
        self.slots.len() >= PIPELINE_MAX || self.out_pending() > OUT_HIGH
    }

    fn idle(&self) -> bool {
        self.slots.is_empty() && self.out_pending() == 0
    }
}

/// Why a connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Normal,
    Idle,
    Error,
    GraceExpired,
}

/// What `drive` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Keep,
    Close(Why),
}

/// The cached `Date` header value, re-rendered when the wall-clock second changes.
#[derive(Debug)]
struct DateCache {
    bytes: [u8; 29],
    next_check_ns: u64,
}

impl DateCache {
    fn refresh(&mut self, clock: &Clock, now_ns: u64) {
        if now_ns < self.next_check_ns {
            return;
        }
        let wall = clock.wall_now_ns();
        http_date(wall / 1_000_000_000, &mut self.bytes);
        self.next_check_ns = now_ns + (1_000_000_000 - wall % 1_000_000_000);
    }
}

/// What connection handling needs besides the connection itself.
#[derive(Debug)]
struct Io {
    shared: Arc<Shared>,
    index: usize,
    clock: Clock,
    /// Latest clock reading.
    now: u64,
    /// Reads left in this `drive` call (see [`READS_PER_TURN`]).
    read_budget: usize,
    rbuf: Box<[u8]>,
    /// Output buffer of the thread, lent to each connection that has nothing unsent.
    wbuf: Vec<u8>,
    date: DateCache,
    local: LocalMetrics,
    metrics_body: Vec<u8>,
    metrics_scratch: Option<Box<ThreadMetrics>>,
    draining: bool,
    zero: bool,
    /// Whether `Server-Timing` names the class: the model has several classes or serves by
    /// class.
    name_class: bool,
    /// The route of the network answer being rendered (see [`Reply::NetServed`]).
    net_route: Option<NetRoute>,
    /// While a departure timer is being handled: the time it was armed for (see
    /// [`Worker::on_departure`]).
    fired_for: Option<u64>,
    /// `--forward` is on.
    forward: bool,
    /// Requests whose departure came, to be dispatched downstream by the worker.
    fwd_jobs: VecDeque<Job>,
}

/// One I/O thread.
#[derive(Debug)]
pub(crate) struct Worker {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Slab<Conn>,
    next_gen: u32,
    wheel: Wheel<Timer>,
    expired: Vec<Expired<Timer>>,
    timerfd: TimerFd,
    pool: Vec<Bufs>,
    /// Most connections open at once since memory was last returned to the system.
    conn_peak: usize,
    sweep_keys: Vec<usize>,
    /// Connections that used up their read budget with input left: driven again next turn.
    revisit: Vec<usize>,
    revisit_next: Vec<usize>,
    accept_paused: bool,
    spin_ns: u64,
    /// `--busy-poll`: poll with a zero timeout while any connection is open.
    busy_poll: bool,
    sweep_ns: u64,
    header_timeout_ns: u64,
    idle_timeout_ns: u64,
    drain_deadline_ns: u64,
    /// `--forward`: this thread's downstream connections.
    downstream: Option<Pool>,
    /// Within [`Worker::dispatch`] (which is not re-entered).
    dispatching: bool,
    fwd_expired: Vec<Job>,
    fwd_timeout_ns: u64,
    io: Io,
}

fn dur_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Worker {
    pub(crate) fn new(
        index: usize,
        shared: Arc<Shared>,
        poll: Poll,
        listener: std::net::TcpListener,
    ) -> io::Result<Self> {
        let config = &shared.config;
        let header_timeout_ns = dur_ns(config.header_timeout);
        let idle_timeout_ns = dur_ns(config.idle_timeout);
        let fwd_timeout_ns = config
            .forward
            .as_ref()
            .map_or(u64::MAX, |f| dur_ns(f.timeout));
        // A few sweeps per shortest timeout, between 1 ms and 100 ms apart.
        let sweep_ns = (header_timeout_ns.min(idle_timeout_ns).min(fwd_timeout_ns) / 8)
            .clamp(1_000_000, 100_000_000);
        let pool = match (&shared.forward, &config.forward) {
            (Some((addr, host)), Some(f)) => Some(Pool::new(
                *addr,
                host,
                f.connections,
                f.queue,
                fwd_timeout_ns,
                FORWARD_BASE,
            )),
            _ => None,
        };
        let clock = shared.clock;
        let mut listener = TcpListener::from_std(listener);
        let mut timerfd = TimerFd::new(&clock)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        poll.registry()
            .register(&mut timerfd, TIMER, Interest::READABLE)?;
        let mut date = DateCache {
            bytes: [b' '; 29],
            next_check_ns: 0,
        };
        date.refresh(&clock, clock.now_ns());
        Ok(Worker {
            poll,
            listener: Some(listener),
            conns: Slab::new(),
            next_gen: 0,
            wheel: Wheel::with_slot_capacity(WHEEL_SLOT_CAPACITY),
            expired: Vec::new(),
            timerfd,
            pool: Vec::new(),
            conn_peak: 0,
            sweep_keys: Vec::new(),
            revisit: Vec::new(),
            revisit_next: Vec::new(),
            accept_paused: false,
            spin_ns: dur_ns(config.spin),
            busy_poll: config.busy_poll,
            sweep_ns,
            header_timeout_ns,
            idle_timeout_ns,
            drain_deadline_ns: u64::MAX,
            dispatching: false,
            fwd_expired: Vec::new(),
            fwd_timeout_ns,
            io: Io {
                forward: pool.is_some(),
                fwd_jobs: VecDeque::with_capacity(if pool.is_some() { 256 } else { 0 }),
                zero: config.model.service == ServiceKind::Zero,
                name_class: match &config.network {
                    Some(net) => crate::network::names_class(net),
                    None => config.model.classes.len() > 1 || config.model.discipline.by_class(),
                },
                fired_for: None,
                net_route: None,
                shared: Arc::clone(&shared),
                index,
                clock,
                now: 0,
                read_budget: READS_PER_TURN,
                rbuf: vec![0u8; READ_BUF].into_boxed_slice(),
                wbuf: Vec::with_capacity(OUT_INIT),
                date,
                local: LocalMetrics::default(),
                metrics_body: Vec::new(),
                metrics_scratch: None,
                draining: false,
            },
            downstream: pool,
        })
    }

    /// Runs the event loop until the server has shut down.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let now = self.io.clock.now_ns();
        self.wheel.advance(tick_floor(now), &mut self.expired);
        self.wheel
            .insert(tick_ceil(now + self.sweep_ns), Timer::Sweep);
        let result = loop {
            if self.io.shared.abort.load(Ordering::Acquire) {
                self.close_all(Why::GraceExpired);
                break Ok(());
            }
            if !self.io.draining && self.io.shared.shutdown.load(Ordering::Acquire) {
                self.begin_drain();
            }
            if self.io.draining && self.conns.is_empty() {
                break Ok(());
            }
            // With --busy-poll the thread never sleeps while a connection is open: an arrival
            // is read, and a departure written, without a wake-up's delay. Connections with
            // input left are served on without sleeping either.
            let timeout = match self.arm_timer() {
                Ok(_) if !self.revisit.is_empty() => Some(Duration::ZERO),
                Ok(t) => t,
                Err(e) => break Err(e),
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    break Err(e);
                }
            }
            self.handle_events(&events);
            // Connections that yielded their turn with input left.
            std::mem::swap(&mut self.revisit, &mut self.revisit_next);
            for i in 0..self.revisit_next.len() {
                let key = self.revisit_next[i];
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.revisit = false;
                }
                self.drive(key);
            }
            self.revisit_next.clear();
            if let Err(e) = self.spin(&mut events) {
                break Err(e);
            }
            self.fire_due();
            self.io.flush_local();
        };
        self.io.flush_local();
        result
    }

    /// Handles one batch of readiness events. Departures that come due meanwhile are fired
    /// between events, not after the whole batch.
    fn handle_events(&mut self, events: &Events) {
        let now = self.io.clock.now_ns();
        self.io.now = now;
        self.io.date.refresh(&self.io.clock, now);
        // Before this batch: a request read after `Handle::shutdown` returned must see it.
        if !self.io.draining && self.io.shared.shutdown.load(Ordering::Acquire) {
            self.begin_drain();
        }
        self.fire_due();
        for ev in events.iter() {
            match ev.token() {
                WAKER => {}
                LISTENER => self.accept(),
                TIMER => self.timerfd.fired(),
                t if self
                    .downstream
                    .as_ref()
                    .and_then(|p| p.index_of(t))
                    .is_some() =>
                {
                    self.on_forward_event(t);
                }
                Token(key) => {
                    if let Some(conn) = self.conns.get_mut(key) {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            conn.want_read = true;
                        }
                        if ev.is_read_closed() || ev.is_error() {
                            conn.rdhup = true;
                        }
                        if ev.is_error() {
                            // EPOLLERR on TCP is fatal (a reset, or a retransmission timeout).
                            // Noticed here, not by a read: a connection that is not reading
                            // (closing after a queued answer, or held back by back-pressure)
                            // would otherwise keep its descriptor, and its requests would be
                            // counted as served into the void, until their departures.
                            conn.broken |= !matches!(conn.stream.take_error(), Ok(None));
                        }
                        self.drive(key);
                    }
                }
            }
            if self.io.local.full() {
                self.io.flush_local();
            }
            if !self.io.zero {
                self.fire_due();
            }
        }
    }

    /// With `--spin`: while the next deadline is within the spin margin, keep serving I/O with
    /// non-blocking polls (so arrivals are stamped when they come, not when the spin ends), and
    /// spin on the clock alone for the last [`SPIN_QUIET_NS`], then return for [`Self::fire_due`].
    fn spin(&mut self, events: &mut Events) -> io::Result<()> {
        if self.spin_ns == 0 {
            return Ok(());
        }
        loop {
            match self.wait_plan(false).decide() {
                Action::Sleep { .. } | Action::Due => return Ok(()),
                Action::Poll => {
                    match self.poll.poll(events, Some(Duration::ZERO)) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                    if !events.is_empty() {
                        self.handle_events(events);
                    }
                }
                Action::Spin => std::hint::spin_loop(),
            }
        }
    }

    /// What the wait policy needs to know now: the next wheel deadline, approached awake for the
    /// spin margin and alone for the last [`SPIN_QUIET_NS`].
    fn wait_plan(&self, busy: bool) -> Wait {
        Wait {
            now: self.io.clock.now_ns(),
            deadline: self
                .wheel
                .next_deadline()
                .map(|tick| tick.saturating_mul(TICK_NS)),
            wake: None,
            spin_ns: self.spin_ns,
            quiet_ns: SPIN_QUIET_NS,
            busy,
        }
    }

    /// Arms the timerfd for the next deadline (minus the spin margin), or disarms it when there is
    /// none, and returns the poll timeout: none when sleeping, zero within the margin or with
    /// `--busy-poll` while a connection is open (the timer then is left as it is).
    fn arm_timer(&mut self) -> io::Result<Option<Duration>> {
        let busy = self.busy_poll && !self.conns.is_empty();
        let action = self.wait_plan(busy).decide();
        self.timerfd.prepare(action)
    }

    /// Fires every timer that is due now.
    fn fire_due(&mut self) {
        let clock = self.io.clock;
        let Some(tick) = self.wheel.next_deadline() else {
            return;
        };
        let now = clock.now_ns();
        if tick.saturating_mul(TICK_NS) > now {
            return;
        }
        let mut expired = std::mem::take(&mut self.expired);
        self.wheel.advance(tick_floor(now), &mut expired);
        for e in expired.drain(..) {
            match e.value {
                Timer::Departure { key, generation } => self.on_departure(key as usize, generation),
                Timer::Sweep => {
                    let now = clock.now_ns();
                    self.sweep(now);
                    self.wheel
                        .insert(tick_ceil(now + self.sweep_ns), Timer::Sweep);
                }
                Timer::DrainDeadline => self.close_all(Why::GraceExpired),
            }
        }
        self.expired = expired;
    }

    fn on_departure(&mut self, key: usize, generation: u32) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.generation != generation {
            return;
        }
        let now = self.io.clock.now_ns();
        let mut fired_for = None;
        if let Some(due) = conn.timer_for.take() {
            match conn.slots.front() {
                // A queued request's timer was armed for the earliest its departure could be,
                // which is not its departure: the lateness is recorded when the model confirms
                // the departure (in `render_due`), against that departure.
                Some(s)
                    if s.due_ns == due
                        && matches!(s.reply, Reply::Queued(_) | Reply::NetQueued(_)) =>
                {
                    fired_for = Some(due);
                }
                Some(s) if s.due_ns == due => self.io.local.lateness(now.saturating_sub(due)),
                _ => {}
            }
        }
        self.io.fired_for = fired_for;
        self.drive(key);
        self.io.fired_for = None;
    }

    /// Does everything a connection can do now, then arms its timer or closes it.
    fn drive(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        self.io.read_budget = READS_PER_TURN;
        let next = self.io.drive(conn);
        if self.io.read_budget == 0 && conn.want_read && !conn.revisit {
            conn.revisit = true;
            self.revisit.push(key);
        }
        match next {
            Next::Close(why) => self.close(key, why),
            Next::Keep => {
                // One wheel entry per connection at a time (entries cannot be withdrawn): while
                // one is armed, a front slot whose time moved (a new front, or a queued request
                // the model postponed) waits for it to fire, which is soon, since an entry is
                // only left behind by a slot already due; `on_departure` then arms the new time.
                if conn.timer_for.is_none() {
                    if let Some(front) = conn.slots.front() {
                        if front.due_ns > self.io.now {
                            let generation = conn.generation;
                            conn.timer_for = Some(front.due_ns);
                            self.wheel.insert(
                                tick_ceil(front.due_ns),
                                Timer::Departure {
                                    key: key as u32,
                                    generation,
                                },
                            );
                        }
                    }
                }
            }
        }
        if !self.io.fwd_jobs.is_empty() {
            self.dispatch();
        }
    }

    /// A readiness event of a downstream connection.
    fn on_forward_event(&mut self, token: Token) {
        let Some(pool) = self.downstream.as_mut() else {
            return;
        };
        let Some(i) = pool.index_of(token) else {
            return;
        };
        if let Some((job, result)) = pool.on_event(i, self.poll.registry()) {
            self.complete(job, result.map(|()| i));
        }
        self.dispatch();
    }

    /// Sends the requests whose departure came (and those waiting for a connection, first) to
    /// the downstream, as far as connections are free. Not re-entered: a completion inside it
    /// that dispatches more leaves that to the loop here.
    fn dispatch(&mut self) {
        if self.dispatching {
            return;
        }
        self.dispatching = true;
        loop {
            let waiting = self.downstream.as_mut().and_then(Pool::pop_waiting);
            let Some(job) = waiting.or_else(|| self.io.fwd_jobs.pop_front()) else {
                break;
            };
            self.start_job(job);
        }
        self.dispatching = false;
    }

    /// The front slot of `job`'s connection, if the connection is still there and waits for it.
    fn job_conn(&mut self, job: Job) -> Option<&mut Conn> {
        self.conns
            .get_mut(job.key as usize)
            .filter(|c| c.generation == job.generation)
            .filter(|c| {
                c.slots
                    .front()
                    .is_some_and(|s| matches!(s.reply, Reply::Forwarding { .. }))
            })
    }

    fn start_job(&mut self, job: Job) {
        if self.job_conn(job).is_none() {
            // Its client went away (counted as abandoned when the connection closed).
            return;
        }
        let now = self.io.clock.now_ns();
        if now.saturating_sub(job.since_ns) >= self.fwd_timeout_ns {
            self.complete(job, Err(Fault::Timeout));
            return;
        }
        let Some(pool) = self.downstream.as_mut() else {
            return;
        };
        let i = match pool.acquire(self.poll.registry()) {
            Ok(Acquired::Conn(i)) => i,
            Ok(Acquired::Busy) => {
                if !pool.enqueue(job) {
                    self.complete(job, Err(Fault::Busy));
                }
                return;
            }
            Err(f) => {
                self.complete(job, Err(f));
                return;
            }
        };
        let Some(conn) = self
            .conns
            .get_mut(job.key as usize)
            .filter(|c| c.generation == job.generation)
        else {
            return;
        };
        let Some(front) = conn.slots.front_mut() else {
            return;
        };
        let line = usize::from(front.fwd_line);
        let end = (line + front.fwd_body as usize).min(conn.fwd.len());
        if let Reply::Forwarding { ref mut sent, .. } = front.reply {
            *sent = true;
        }
        let r = pool.send(
            i,
            job,
            &conn.fwd[..line],
            &conn.fwd[line..end],
            self.poll.registry(),
        );
        conn.fwd.drain(..end);
        self.io.local.counters.forward_requests += 1;
        self.io.local.touch();
        if let Err(f) = r {
            self.complete(job, Err(f));
        }
    }

    /// The outcome of a forwarded request: the downstream's answer on connection `Ok(i)`, or a
    /// fault. Renders the upstream answer (if its connection still waits for it), releases the
    /// downstream connection and drives the upstream one on.
    fn complete(&mut self, job: Job, result: Result<usize, Fault>) {
        let now = self.io.clock.now_ns();
        let io = &mut self.io;
        if let Some(conn) = self
            .conns
            .get_mut(job.key as usize)
            .filter(|c| c.generation == job.generation)
        {
            if let Some(&slot) = conn.slots.front() {
                if let Reply::Forwarding {
                    wait_ns,
                    service_ns,
                    late_ns,
                    since_ns,
                    sent,
                    ..
                } = slot.reply
                {
                    if !sent {
                        let end = (usize::from(slot.fwd_line) + slot.fwd_body as usize)
                            .min(conn.fwd.len());
                        conn.fwd.drain(..end);
                    }
                    conn.slots.pop_front();
                    let mut header = slot.conn;
                    if io.draining && conn.slots.is_empty() {
                        header = ConnHeader::Close;
                        conn.phase = Phase::Closing;
                    }
                    let own = http::ServerTiming {
                        wait_ns,
                        service_ns,
                        late_ns,
                        class: io.name_class.then_some(slot.class),
                    };
                    let hop_ns = now.saturating_sub(since_ns);
                    let c = &mut io.local.counters;
                    let answer = match result {
                        Ok(i) => self.downstream.as_ref().and_then(|p| p.answer(i)),
                        Err(_) => None,
                    };
                    match (answer, result) {
                        (Some(a), _) => {
                            let r = forward::write_answer(
                                &mut conn.out,
                                &io.date.bytes,
                                &a,
                                own,
                                hop_ns,
                                header,
                                slot.head_only,
                            );
                            c.forwarded += 1;
                            c.forward_ns += hop_ns;
                            c.forward_timing_truncated += u64::from(r.truncated);
                        }
                        (None, r) => {
                            let fault = r.err().unwrap_or(Fault::Parse);
                            forward::write_fault(
                                &mut conn.out,
                                &io.date.bytes,
                                fault,
                                own,
                                header,
                                slot.head_only,
                            );
                            c.forward_errors[fault.index()] += 1;
                        }
                    }
                    io.local.sojourn(wait_ns + service_ns, slot.class);
                    io.local.touch();
                }
            }
        }
        if let (Ok(i), Some(pool)) = (result, self.downstream.as_mut()) {
            pool.finish(i, self.poll.registry());
        }
        self.drive(job.key as usize);
    }

    fn accept(&mut self) {
        let max = self.io.shared.config.max_connections;
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let open = &self.io.shared.open_connections;
                    let c = &mut self.io.local.counters;
                    if open.fetch_add(1, Ordering::AcqRel) >= max {
                        open.fetch_sub(1, Ordering::AcqRel);
                        c.conn_rejected += 1;
                        self.io.local.touch();
                        drop(stream);
                        continue;
                    }
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    if key >= u32::MAX as usize
                        || key >= FORWARD_BASE
                        || self
                            .poll
                            .registry()
                            .register(
                                &mut stream,
                                Token(key),
                                Interest::READABLE | Interest::WRITABLE,
                            )
                            .is_err()
                    {
                        open.fetch_sub(1, Ordering::AcqRel);
                        c.accept_errors += 1;
                        self.io.local.touch();
                        continue;
                    }
                    // Small answers must leave at once, not wait for Nagle's algorithm.
                    let _ = stream.set_nodelay(true);
                    let bufs = self.pool.pop().unwrap_or_else(Bufs::new);
                    self.next_gen = self.next_gen.wrapping_add(1);
                    entry.insert(Conn {
                        stream,
                        key: key as u32,
                        fwd: bufs.fwd,
                        capture: false,
                        generation: self.next_gen,
                        reader: RequestReader::new(),
                        inbuf: bufs.inbuf,
                        out: bufs.out,
                        out_pos: 0,
                        slots: bufs.slots,
                        phase: Phase::Open,
                        want_read: true,
                        rdhup: false,
                        revisit: false,
                        peer_eof: false,
                        broken: false,
                        head_since: None,
                        last_active_ns: self.io.clock.now_ns(),
                        timer_for: None,
                    });
                    c.conn_accepted += 1;
                    self.io.local.touch();
                    self.accept_paused = false;
                    self.conn_peak = self.conn_peak.max(self.conns.len());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        || e.kind() == io::ErrorKind::ConnectionAborted =>
                {
                    continue;
                }
                Err(_) => {
                    // Out of descriptors or memory: the pending connections stay in the backlog;
                    // the sweep tries again.
                    self.io.local.counters.accept_errors += 1;
                    self.io.local.touch();
                    self.accept_paused = true;
                    return;
                }
            }
        }
    }

    fn close(&mut self, key: usize, why: Why) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.io
            .shared
            .open_connections
            .fetch_sub(1, Ordering::AcqRel);
        // Queued requests no one will read: the model keeps them in the system until they depart
        // (as under FCFS) and forgets their tickets.
        if let Some(n) = &self.io.shared.network {
            if conn
                .slots
                .iter()
                .any(|s| matches!(s.reply, Reply::NetQueued(_)))
            {
                let mut n = lock(n);
                for s in &conn.slots {
                    if let Reply::NetQueued(ticket) = s.reply {
                        n.release(ticket);
                    }
                }
            }
        }
        if let Some(q) = &self.io.shared.queue {
            if conn
                .slots
                .iter()
                .any(|s| matches!(s.reply, Reply::Queued(_)))
            {
                let mut q = lock(q);
                for s in &conn.slots {
                    if let Reply::Queued(ticket) = s.reply {
                        q.release(ticket);
                    }
                }
            }
        }
        let c = &mut self.io.local.counters;
        let unanswered = conn.slots.len() as u64;
        match why {
            Why::GraceExpired => c.grace_expired += unanswered,
            _ => c.abandoned += unanswered,
        }
        match why {
            Why::Idle => c.conn_idle_closed += 1,
            Why::Error => c.conn_errors += 1,
            Why::Normal | Why::GraceExpired => {}
        }
        self.io.local.touch();
        if self.pool.len() < POOL_MAX {
            let mut bufs = Bufs {
                inbuf: std::mem::take(&mut conn.inbuf),
                out: std::mem::take(&mut conn.out),
                slots: std::mem::take(&mut conn.slots),
                fwd: std::mem::take(&mut conn.fwd),
            };
            bufs.fwd.clear();
            bufs.fwd.shrink_to(POOLED_INBUF);
            bufs.inbuf.clear();
            bufs.out.clear();
            bufs.slots.clear();
            // Back to a working size (a no-op for the usual small buffers). A connection that
            // once held a pipelined burst grows its input to a read buffer or two and its output
            // past OUT_HIGH; pooled as they were (the input's size was never checked), such
            // buffers pinned up to about 256 KiB each, POOL_MAX times over, for good.
            bufs.inbuf.shrink_to(POOLED_INBUF);
            bufs.out.shrink_to(POOLED_OUT);
            self.pool.push(bufs);
        }
    }

    fn close_all(&mut self, why: Why) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            self.close(k, why);
        }
    }

    fn begin_drain(&mut self) {
        self.io.draining = true;
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        let at = self.io.shared.shutdown_at_ns.load(Ordering::Acquire);
        self.drain_deadline_ns = at.saturating_add(dur_ns(self.io.shared.config.grace));
        self.wheel
            .insert(tick_ceil(self.drain_deadline_ns), Timer::DrainDeadline);
        // Answer what is already buffered (new requests get 503 and a close), close idle ones.
        let mut keys = std::mem::take(&mut self.sweep_keys);
        keys.clear();
        keys.extend(self.conns.iter().map(|(k, _)| k));
        for &k in &keys {
            if let Some(conn) = self.conns.get_mut(k) {
                conn.want_read = true;
            }
            self.drive(k);
        }
        self.sweep_keys = keys;
    }

    /// Applies the header, idle and linger timeouts.
    fn sweep(&mut self, now: u64) {
        if self.accept_paused {
            self.accept();
        }
        if let Some(pool) = self.downstream.as_mut() {
            let mut expired = std::mem::take(&mut self.fwd_expired);
            pool.expire(now, self.poll.registry(), &mut expired);
            // Requests whose body never came in full: never dispatched, they time out too.
            for (k, c) in self.conns.iter() {
                if let Some(Slot {
                    reply:
                        Reply::Forwarding {
                            since_ns,
                            dispatched: false,
                            ..
                        },
                    head_only,
                    ..
                }) = c.slots.front().copied()
                {
                    if now.saturating_sub(since_ns) >= self.fwd_timeout_ns {
                        expired.push(Job {
                            key: k as u32,
                            generation: c.generation,
                            since_ns,
                            head_only,
                        });
                    }
                }
            }
            for job in expired.drain(..) {
                self.complete(job, Err(Fault::Timeout));
            }
            self.fwd_expired = expired;
            self.dispatch();
        }
        let mut keys = std::mem::take(&mut self.sweep_keys);
        keys.clear();
        for (k, c) in self.conns.iter() {
            let due = match c.phase {
                Phase::Lingering { until_ns } => now >= until_ns,
                Phase::Open => {
                    c.head_since
                        .is_some_and(|t| now.saturating_sub(t) >= self.header_timeout_ns)
                        || (c.idle()
                            && now.saturating_sub(c.last_active_ns) >= self.idle_timeout_ns)
                }
                Phase::Closing => false,
            };
            if due {
                keys.push(k);
            }
        }
        for &k in &keys {
            let Some(conn) = self.conns.get_mut(k) else {
                continue;
            };
            match conn.phase {
                Phase::Lingering { .. } => self.close(k, Why::Normal),
                Phase::Open if conn.head_since.is_some() => {
                    conn.head_since = None;
                    conn.inbuf.clear();
                    conn.phase = Phase::Closing;
                    conn.slots.push_back(Slot {
                        due_ns: 0,
                        reply: Reply::Reject(Reject::Timeout),
                        conn: ConnHeader::Close,
                        head_only: false,
                        class: 0,
                        fwd_line: 0,
                        fwd_body: 0,
                    });
                    self.drive(k);
                }
                Phase::Open => self.close(k, Why::Idle),
                Phase::Closing => {}
            }
        }
        self.sweep_keys = keys;
        self.trim_after_peak();
    }

    /// After a peak of connections has passed (a stall piles them up, then they close), returns
    /// the memory their buffers freed to the system. The allocator keeps freed memory for reuse,
    /// so without this the process would stay at the size of its largest connection count for
    /// good. Runs when at least [`TRIM_MIN_DROP`] connections, and at least half of the peak,
    /// have gone since the last trim: rarely, and only after a burst. `malloc_trim` walks the
    /// heap (well under a millisecond at these sizes) and is glibc's; elsewhere this does nothing.
    fn trim_after_peak(&mut self) {
        let open = self.conns.len();
        let gone = self.conn_peak.saturating_sub(open);
        if gone < TRIM_MIN_DROP || open > self.conn_peak / 2 {
            return;
        }
        self.conn_peak = open;
        // The peak's connections are closed; keep only what the pool holds.
        self.sweep_keys.shrink_to(open);
        self.revisit.shrink_to(open);
        self.revisit_next.shrink_to(open);
        self.conns.shrink_to_fit();
        queuelab_os::memory::trim();
        self.io.local.counters.memory_trims += 1;
        self.io.local.touch();
    }
}

impl Io {
    fn flush_local(&mut self) {
        let mut m = lock(&self.shared.metrics[self.index]);
        self.local.flush_into(&mut m);
    }

    /// Reads, parses, answers and writes as far as possible without blocking.
    fn drive(&mut self, conn: &mut Conn) -> Next {
        if let Phase::Lingering { .. } = conn.phase {
            return self.linger(conn);
        }
        if conn.broken {
            return Next::Close(Why::Error);
        }
        loop {
            let stopped = self.consume_input(conn);
            self.answer(conn);
            if conn.broken {
                return Next::Close(Why::Error);
            }
            // Writing may have lifted the back-pressure that stopped the input: go round again.
            if !stopped || conn.backpressured() {
                break;
            }
        }
        if conn.idle() {
            if conn.phase == Phase::Closing || (self.draining && conn.phase == Phase::Open) {
                let _ = conn.stream.shutdown(Shutdown::Write);
                conn.phase = Phase::Lingering {
                    until_ns: self.now + LINGER_NS,
                };
                conn.want_read = true;
                return self.linger(conn);
            }
            if conn.peer_eof {
                return Next::Close(Why::Normal);
            }
        }
        Next::Keep
    }

    /// Reads and parses until the socket is drained, the connection is back-pressured or stops
    /// reading. Returns true when back-pressure left input behind (unparsed in `inbuf` or unread
    /// in the socket), which only this connection's own answers can release.
    fn consume_input(&mut self, conn: &mut Conn) -> bool {
        if conn.phase != Phase::Open {
            conn.inbuf.clear();
            return false;
        }
        if !conn.inbuf.is_empty() && !conn.backpressured() {
            let mut buf = std::mem::take(&mut conn.inbuf);
            let used = self.parse(conn, &buf);
            buf.drain(..used);
            conn.inbuf = buf;
        }
        let mut rbuf = std::mem::take(&mut self.rbuf);
        while conn.want_read && conn.phase == Phase::Open && !conn.peer_eof {
            if conn.backpressured() {
                break;
            }
            if self.read_budget == 0 {
                break;
            }
            self.read_budget -= 1;
            match conn.stream.read(&mut rbuf[..]) {
                Ok(0) => {
                    conn.peer_eof = true;
                    conn.want_read = false;
                }
                Ok(n) => {
                    // The arrival time of the heads in these bytes (not needed without a queue:
                    // the time the poll returned serves for the timeouts).
                    if !self.zero {
                        self.now = self.clock.now_ns();
                    }
                    conn.last_active_ns = self.now;
                    // With edge-triggered readiness a short read means the socket is drained: any
                    // later data raises a new event. Not so once the peer has half-closed, where
                    // the EOF itself must be read.
                    if n < rbuf.len() && !conn.rdhup {
                        conn.want_read = false;
                    }
                    if conn.inbuf.is_empty() {
                        let used = self.parse(conn, &rbuf[..n]);
                        if used < n && conn.phase == Phase::Open {
                            conn.inbuf.extend_from_slice(&rbuf[used..n]);
                        }
                    } else {
                        let mut buf = std::mem::take(&mut conn.inbuf);
                        buf.extend_from_slice(&rbuf[..n]);
                        let used = self.parse(conn, &buf);
                        buf.drain(..used);
                        conn.inbuf = buf;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.want_read = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    conn.broken = true;
                    break;
                }
            }
        }
        self.rbuf = rbuf;
        // Not only the read loop above stops at back-pressure: parsing `inbuf` can fill the
        // pipeline too. Reporting only the former lost the latter: a burst of more than
        // PIPELINE_MAX requests read at once got its first PIPELINE_MAX answers and then waited
        // for an event that never came (no more bytes need arrive, and a socket that took every
        // answer at once raises no writable edge), until the idle timeout closed it uncounted.
        conn.phase == Phase::Open
            && conn.backpressured()
            && (!conn.inbuf.is_empty() || (conn.want_read && !conn.peer_eof))
    }

    /// Parses heads from `buf` and admits them; returns the bytes consumed. Stops at an
    /// incomplete head, at back-pressure, or when the connection stops reading (then everything is
    /// consumed: the rest is ignored).
    fn parse(&mut self, conn: &mut Conn, buf: &[u8]) -> usize {
        let mut pos = 0;
        while conn.phase == Phase::Open {
            if conn.backpressured() {
                return pos;
            }
            // The body bytes this call skips (a forwarded request's are kept), then the head.
            let body_left = conn.reader.body_left();
            let skip = body_left.min((buf.len() - pos) as u64) as usize;
            if conn.capture {
                conn.fwd.extend_from_slice(&buf[pos..pos + skip]);
                conn.capture = body_left > skip as u64;
            }
            let head_start = pos + skip;
            let (used, parsed) = conn.reader.next(&buf[pos..]);
            pos += used;
            match parsed {
                Parsed::NeedMore => {
                    if pos < buf.len() && conn.reader.body_left() == 0 {
                        conn.head_since.get_or_insert(self.now);
                    }
                    return pos;
                }
                Parsed::Request(head) => {
                    conn.head_since = None;
                    self.admit(conn, head, &buf[head_start..pos]);
                }
                Parsed::Reject(r) => {
                    conn.head_since = None;
                    conn.phase = Phase::Closing;
                    conn.slots.push_back(Slot {
                        due_ns: 0,
                        reply: Reply::Reject(r),
                        conn: ConnHeader::Close,
                        head_only: false,
                        class: 0,
                        fwd_line: 0,
                        fwd_body: 0,
                    });
                }
            }
        }
        buf.len()
    }

    /// A complete head arrived now: decide its answer and when it may be written.
    fn admit(&mut self, conn: &mut Conn, head: Head, raw: &[u8]) {
        let now = self.now;
        // The class a request names goes to the model, which serves it so; without one the
        // model draws it from `--classes`. What the answer and the metrics report is the
        // model's class, the one the request was served as.
        let named = head.class;
        let (due_ns, reply, class, connection) = if self.draining {
            (
                0,
                Reply::Unavailable(Unavailable::ShuttingDown),
                0,
                ConnHeader::Close,
            )
        } else {
            let (due, reply, class) = match head.route {
                Route::Metrics => (0, Reply::Metrics, 0),
                Route::Healthz => (0, Reply::Healthz, 0),
                Route::Queue if self.zero => (
                    0,
                    Reply::Served {
                        wait_ns: 0,
                        service_ns: 0,
                    },
                    named.unwrap_or(0),
                ),
                Route::Queue if self.shared.network.is_some() => {
                    let outcome = match &self.shared.network {
                        Some(n) => lock(n).arrive(now, named),
                        None => NetOutcome::Refused(End::Overflow { station: 0 }),
                    };
                    match outcome {
                        NetOutcome::Accepted(t) => (t.tentative_ns, Reply::NetQueued(t), 0),
                        NetOutcome::Refused(End::Overflow { .. }) => {
                            (0, Reply::Unavailable(Unavailable::Overflow), 0)
                        }
                        NetOutcome::Refused(_) => (0, Reply::Unavailable(Unavailable::Capacity), 0),
                    }
                }
                Route::Queue => {
                    let outcome = match &self.shared.queue {
                        Some(q) => lock(q).arrive(now, named),
                        None => Outcome::Overflow,
                    };
                    match outcome {
                        // FCFS: the departure is known now.
                        Outcome::Served(s) => (
                            s.departure_ns,
                            Reply::Served {
                                wait_ns: s.wait_ns,
                                service_ns: s.service_ns,
                            },
                            s.class,
                        ),
                        // Later arrivals may postpone it: ask the model when the earliest
                        // possible departure comes (see `render_due`).
                        Outcome::Queued(t) => (t.tentative_ns, Reply::Queued(t), t.class),
                        Outcome::Blocked => (0, Reply::Unavailable(Unavailable::Capacity), 0),
                        Outcome::Overflow => (0, Reply::Unavailable(Unavailable::Overflow), 0),
                    }
                }
            };
            (due, reply, class, head.connection())
        };
        if connection == ConnHeader::Close {
            conn.phase = Phase::Closing;
        }
        if head.expect_continue && !self.draining && conn.slots.is_empty() {
            // Every earlier answer is already in the output buffer, so the interim answer is in
            // order. (Behind pending answers it is skipped: the client sends the body after its
            // own short wait, as RFC 9110 §10.1.1 lets it.)
            conn.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        // `--forward`: keep the method and target (the request line without its version) and
        // the body, to send on once served.
        let (mut fwd_line, mut fwd_body) = (0u16, 0u32);
        if self.forward && matches!(reply, Reply::Served { .. } | Reply::Queued(_)) {
            let line =
                raw.iter()
                    .position(|&b| b != b'\r' && b != b'\n')
                    .map_or(&[][..], |start| {
                        let rest = &raw[start..];
                        let end = rest.iter().position(|&b| b == b'\r').unwrap_or(rest.len());
                        let line = &rest[..end];
                        // A complete head's request line: `METHOD SP target SP HTTP/1.x`.
                        let cut = line.iter().rposition(|&b| b == b' ').unwrap_or(0);
                        &line[..cut]
                    });
            if let Ok(n) = u16::try_from(line.len()) {
                if n > 0 {
                    conn.fwd.extend_from_slice(line);
                    fwd_line = n;
                    // Bounded by MAX_REQUEST_BODY (parse_head refuses more).
                    fwd_body = u32::try_from(head.content_length).unwrap_or(u32::MAX);
                    conn.capture = fwd_body > 0;
                }
            }
        }
        conn.slots.push_back(Slot {
            due_ns,
            reply,
            conn: connection,
            head_only: head.head_only,
            class,
            fwd_line,
            fwd_body,
        });
    }

    /// Renders the due answers and writes them. A connection with nothing unsent borrows the
    /// thread's buffer for this: the answers are rendered into it and written from it, and it
    /// goes back to the thread once empty. Only when the socket leaves bytes unsent does the
    /// connection keep it (the thread goes on with the connection's empty one, which grows on its
    /// next use). So connections hold no output memory unless their client is slow to read:
    /// about 0.4 KB each instead of 1 KB or more at thousands of connections.
    fn answer(&mut self, conn: &mut Conn) {
        let borrowed = conn.out.is_empty();
        if borrowed {
            std::mem::swap(&mut conn.out, &mut self.wbuf);
        }
        self.render_due(conn);
        self.write_out(conn);
        if borrowed && conn.out.is_empty() {
            std::mem::swap(&mut conn.out, &mut self.wbuf);
        }
    }

    /// Renders every front slot that is due into the output buffer. A queued request's slot is
    /// due when its departure may have come: the model says whether it has (then it is answered
    /// like any served request) or when it may come now (the slot waits until then: its timer is
    /// armed again by `Worker::drive`).
    fn render_due(&mut self, conn: &mut Conn) {
        while let Some(&slot) = conn.slots.front() {
            if let Reply::Forwarding { dispatched, .. } = slot.reply {
                // Waiting for its body (then dispatch it) or for the downstream.
                if !dispatched {
                    self.dispatch_when_complete(conn);
                }
                break;
            }
            // Whether `now` was read for this slot (else it may date from the start of the batch).
            let mut fresh = false;
            if slot.due_ns > self.now {
                // Read the clock only when it matters (immediate answers have `due_ns` 0).
                self.now = self.clock.now_ns();
                fresh = true;
                if slot.due_ns > self.now {
                    break;
                }
            }
            let mut slot = slot;
            if let Reply::Queued(ticket) = slot.reply {
                if !fresh {
                    self.now = self.clock.now_ns();
                    fresh = true;
                }
                let polled = match &self.shared.queue {
                    Some(q) => lock(q).poll(ticket, self.now),
                    None => Departure::Unknown,
                };
                match polled {
                    Departure::Done(s) => {
                        // The timer that brought us here, against the real departure.
                        if self.fired_for == Some(slot.due_ns) {
                            self.local.lateness(self.now.saturating_sub(s.departure_ns));
                        }
                        self.fired_for = None;
                        slot.due_ns = s.departure_ns;
                        slot.reply = Reply::Served {
                            wait_ns: s.wait_ns,
                            service_ns: s.service_ns,
                        };
                    }
                    Departure::Pending(t) => {
                        // Not before the next tick even if the model said otherwise, so that
                        // the slot waits on the wheel instead of being polled in a loop.
                        if let Some(front) = conn.slots.front_mut() {
                            front.due_ns = t.max(self.now + 1);
                        }
                        self.fired_for = None;
                        break;
                    }
                    Departure::Unknown => slot.reply = Reply::Internal,
                }
            }
            if let Reply::NetQueued(ticket) = slot.reply {
                if !fresh {
                    self.now = self.clock.now_ns();
                    fresh = true;
                }
                let polled = match &self.shared.network {
                    Some(n) => lock(n).poll(ticket, self.now),
                    None => NetPoll::Unknown,
                };
                match polled {
                    NetPoll::Done(route) => {
                        if self.fired_for == Some(slot.due_ns) {
                            self.local.lateness(self.now.saturating_sub(route.end_ns));
                        }
                        self.fired_for = None;
                        slot.due_ns = route.end_ns;
                        slot.reply = match route.end {
                            End::Exited => {
                                self.net_route = Some(route);
                                Reply::NetServed
                            }
                            End::Blocked { .. } => Reply::Unavailable(Unavailable::Capacity),
                            End::Overflow { .. } => Reply::Unavailable(Unavailable::Overflow),
                        };
                    }
                    NetPoll::Pending(t) => {
                        if let Some(front) = conn.slots.front_mut() {
                            front.due_ns = t.max(self.now + 1);
                        }
                        self.fired_for = None;
                        break;
                    }
                    NetPoll::Unknown => slot.reply = Reply::Internal,
                }
            }
            if let (
                Reply::Served {
                    wait_ns,
                    service_ns,
                },
                true,
            ) = (slot.reply, slot.fwd_line > 0)
            {
                // Served here: now it goes downstream, and the answer waits for the downstream's.
                if !fresh {
                    self.now = self.clock.now_ns();
                }
                if let Some(front) = conn.slots.front_mut() {
                    front.reply = Reply::Forwarding {
                        wait_ns,
                        service_ns,
                        late_ns: self.now.saturating_sub(slot.due_ns),
                        since_ns: self.now,
                        dispatched: false,
                        sent: false,
                    };
                }
                self.dispatch_when_complete(conn);
                break;
            }
            conn.slots.pop_front();
            if self.draining && conn.slots.is_empty() {
                // The last answer of a draining server tells the client the connection ends.
                slot.conn = ConnHeader::Close;
                conn.phase = Phase::Closing;
            }
            // A queued answer reports its lateness against the clock now, not against a cached
            // reading that may be a whole batch of events old (a vDSO read costs tens of ns).
            let late_ns = match slot.reply {
                Reply::Served { .. } | Reply::NetServed if !self.zero => {
                    if !fresh {
                        self.now = self.clock.now_ns();
                    }
                    self.now.saturating_sub(slot.due_ns)
                }
                _ => 0,
            };
            self.render(&mut conn.out, slot, late_ns);
        }
    }

    /// A front slot being forwarded whose body has arrived in full is dispatched: handed to the
    /// worker (see [`Worker::dispatch`]).
    fn dispatch_when_complete(&mut self, conn: &mut Conn) {
        let Some(front) = conn.slots.front_mut() else {
            return;
        };
        let need = usize::from(front.fwd_line) + front.fwd_body as usize;
        if let Reply::Forwarding {
            since_ns,
            ref mut dispatched,
            ..
        } = front.reply
        {
            if *dispatched || conn.fwd.len() < need {
                return;
            }
            *dispatched = true;
            self.fwd_jobs.push_back(Job {
                key: conn.key,
                generation: conn.generation,
                since_ns,
                head_only: front.head_only,
            });
        }
    }

    /// Renders one answer; `late_ns` is the `late` of a queued answer's `Server-Timing`.
    fn render(&mut self, out: &mut Vec<u8>, slot: Slot, late_ns: u64) {
        let date = &self.date.bytes;
        let c = &mut self.local.counters;
        match slot.reply {
            Reply::Served {
                wait_ns,
                service_ns,
            } => {
                let timing = http::ServerTiming {
                    wait_ns,
                    service_ns,
                    late_ns,
                    class: self.name_class.then_some(slot.class),
                };
                http::write_served(out, date, timing, slot.conn, slot.head_only);
                c.served += 1;
                self.local.sojourn(wait_ns + service_ns, slot.class);
            }
            Reply::NetServed => match (self.net_route.take(), &self.shared.config.network) {
                (Some(route), Some(net)) => {
                    http::write_network_served(
                        out,
                        date,
                        http::NetworkTiming {
                            route: &route,
                            stations: &net.stations,
                            late_ns,
                            class: self.name_class.then_some(route.class),
                        },
                        slot.conn,
                        slot.head_only,
                    );
                    c.served += 1;
                    self.local.sojourn(route.sojourn_ns(), route.class);
                }
                _ => {
                    http::write_internal_error(out, date, slot.conn, slot.head_only);
                    c.internal_error += 1;
                }
            },
            // `render_due` turns every queued slot into one of the others before rendering it,
            // and forwarded ones are answered by `Worker::complete`.
            Reply::Queued(_) | Reply::NetQueued(_) | Reply::Internal | Reply::Forwarding { .. } => {
                http::write_internal_error(out, date, slot.conn, slot.head_only);
                c.internal_error += 1;
            }
            Reply::Unavailable(why) => {
                http::write_unavailable(out, date, why, slot.conn, slot.head_only);
                match why {
                    Unavailable::Capacity => c.blocked += 1,
                    Unavailable::Overflow => c.overflow += 1,
                    Unavailable::ShuttingDown => c.shutting_down += 1,
                }
            }
            Reply::Reject(r) => {
                write_reject(out, date, r);
                c.rejects[r.index()] += 1;
            }
            Reply::Healthz => {
                http::write_healthz(out, date, slot.conn, slot.head_only);
                c.healthz += 1;
            }
            Reply::Metrics => {
                c.metrics += 1;
                // Marked before the render flushes the batch, so a scrape always counts itself
                // (an unmarked batch is not flushed: the count used to lag by one at times).
                self.local.touch();
                self.render_metrics();
                http::write_metrics(
                    out,
                    &self.date.bytes,
                    &self.metrics_body,
                    slot.conn,
                    slot.head_only,
                );
            }
        }
        self.local.touch();
    }

    /// Renders `/metrics` into `metrics_body` (allocates; not on the request path).
    fn render_metrics(&mut self) {
        self.flush_local();
        let shared = &self.shared;
        let totals = self.metrics_scratch.get_or_insert_with(Box::default);
        totals.reset();
        for m in &shared.metrics {
            totals.merge(&lock(m));
        }
        let now = self.clock.now_ns();
        let (arrivals, in_system, busy_servers, busy_s, in_system_s) = match &shared.queue {
            Some(q) => {
                let mut q = lock(q);
                let stats = q.stats();
                (
                    stats.arrivals,
                    q.in_system(now),
                    q.busy_servers(now),
                    stats.busy_ns as f64 * 1e-9,
                    Some(q.in_system_integral_ns(now) as f64 * 1e-9),
                )
            }
            None => (totals.counters.served, 0, 0, 0.0, None),
        };
        // A network: each station's series; the unlabelled ones are the whole network's (a
        // request is at exactly one station while in the network, so ∫N dt is the sum).
        let mut stations = Vec::new();
        let (arrivals, in_system, busy_servers, busy_s, in_system_s) =
            match (&shared.network, &shared.config.network) {
                (Some(n), Some(net)) => {
                    let mut n = lock(n);
                    let (mut present, mut busy, mut busy_ns, mut area) = (0, 0, 0u128, 0u128);
                    for (j, station) in net.stations.iter().enumerate() {
                        let (st, here, serving, integral) = n.station_at(j, now);
                        present += here;
                        busy += serving;
                        busy_ns += st.busy_ns;
                        area += integral;
                        stations.push(metrics::StationSnapshot {
                            name: &station.name,
                            visits: st.visits,
                            blocked: st.blocked,
                            overflow: st.overflow,
                            busy_s: st.busy_ns as f64 * 1e-9,
                            sojourn_s: st.sojourn_ns as f64 * 1e-9,
                            in_system_s: integral as f64 * 1e-9,
                            in_system: here,
                            gaps: Some(st.gaps),
                        });
                    }
                    (
                        n.arrivals(),
                        present,
                        busy,
                        busy_ns as f64 * 1e-9,
                        Some(area as f64 * 1e-9),
                    )
                }
                _ => (arrivals, in_system, busy_servers, busy_s, in_system_s),
            };
        let config = &shared.config;
        let service = config.model.service.to_string();
        self.metrics_body.clear();
        metrics::render(
            &mut self.metrics_body,
            &Snapshot {
                totals,
                arrivals,
                in_system,
                busy_servers,
                busy_s,
                in_system_s,
                classes: match &config.network {
                    Some(net) => crate::network::network_classes(net).len(),
                    None => config.model.classes.len(),
                },
                connections: shared.open_connections.load(Ordering::Relaxed),
                mu: config.model.mu,
                servers: match config.model.servers {
                    queuelab_common::model::Servers::Finite(c) => Some(c),
                    queuelab_common::model::Servers::Infinite => None,
                },
                capacity: config.model.capacity,
                overflow_limit: config.overflow_limit,
                threads: config.threads,
                spin_s: config.spin.as_secs_f64(),
                uptime_s: now as f64 * 1e-9,
                model: &shared.model_name,
                service: &service,
                stations: &stations,
            },
        );
    }

    fn write_out(&mut self, conn: &mut Conn) {
        while conn.out_pos < conn.out.len() {
            match conn.stream.write(&conn.out[conn.out_pos..]) {
                Ok(0) => {
                    conn.broken = true;
                    break;
                }
                Ok(n) => {
                    conn.out_pos += n;
                    conn.last_active_ns = self.now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    conn.broken = true;
                    break;
                }
            }
        }
        if conn.out_pos == conn.out.len() {
            conn.out.clear();
            conn.out_pos = 0;
        } else if conn.out_pos > OUT_HIGH {
            conn.out.drain(..conn.out_pos);
            conn.out_pos = 0;
        }
    }

    /// Reads and discards input after the write side was shut down, until the peer closes.
    fn linger(&mut self, conn: &mut Conn) -> Next {
        if !conn.want_read {
            return Next::Keep;
        }
        for _ in 0..LINGER_READS {
            match conn.stream.read(&mut self.rbuf[..]) {
                Ok(0) => return Next::Close(Why::Normal),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.want_read = false;
                    return Next::Keep;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close(Why::Normal),
            }
        }
        Next::Keep
    }
}
