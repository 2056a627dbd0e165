//! A worker's connections: the slots, the idle list, the connect pace and each connection's state
//! machine (see the parent module's docs for the policy).
//!
//! [`Pool`] owns the sockets, their slots (a `Slab`, key = mio `Token`), the free slots, the
//! idle connections in strict LIFO order ([`IdleList`]) and the read buffer they share. Its
//! methods do the I/O of one connection and say what came of it ([`Connected`], [`Write`],
//! [`Read`]); what that means for the request (completion, failure, retry) and for the worker's
//! tallies of open connections and requests in flight is decided by the worker.
//!
//! A connection is plain or TLS (an https target): a TLS one carries a [`TlsConn`] (its record
//! layer: rustls's unbuffered client, then ours in place once the handshake is done; and its two
//! buffers, allocated when it opens) and goes through one more state, [`State::Handshaking`],
//! between the TCP connect and the first write. Its reads go into
//! its own incoming buffer instead of the worker's shared one (a record must be whole before it
//! can be decrypted), and the plaintext of each record goes to the same response parser, the
//! same way; its writes encrypt the request part by part into its outgoing buffer.
use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use queuelab_common::http::MAX_HEAD_BYTES;
use slab::Slab;

use super::Pending;
use super::schedule::NO_USER;
use super::tls::{Flow, Flush, Step, TlsConn};
use crate::http::{Progress, ResponseParser};
use crate::result::{ErrorKind, TlsErrorKind};
use crate::timing::ServerTiming;
use crate::tls::{PLAIN_CHUNK, TlsSetup, bounded};

/// Size of a worker's read buffer, shared by all its connections. Body bytes are counted and
/// dropped as they come, so a larger buffer buys only fewer reads of large bodies.
pub(crate) const READ_SCRATCH: usize = 64 * 1024;
/// Capacity a connection's head buffer keeps once a head split across reads has been parsed
/// (typical response heads are shorter); a larger one is shrunk back to it.
pub(crate) const HEAD_KEEP: usize = 512;
/// "No connection" in the idle links.
const NIL: usize = usize::MAX;
/// Most connections opened per pass of the loop. A connect on loopback runs the whole handshake
/// inside the system call (tens of microseconds); opening hundreds at once after a stall of the
/// server would stall the loop itself and make it fall further behind. Requests beyond the pace
/// wait in the backlog for the next pass or for a connection that frees up.
pub(super) const CONNECTS_PER_PASS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// The slot has no socket (free for the next connect).
    Closed,
    /// Connecting, with the request that asked for the connection.
    Connecting,
    /// Connected, in the TLS handshake (https), with the request that asked for the connection.
    Handshaking,
    /// Connected, no request.
    Idle,
    /// The request is partly written.
    Writing,
    /// The request is written; the answer is awaited.
    Reading,
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
    /// The TLS state and buffers of an https connection (boxed: plain connections stay small).
    tls: Option<Box<TlsConn>>,
    /// When the connect started, then (TLS) when the TCP connection was established.
    since: u64,
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
            tls: None,
            since: 0,
        }
    }

    /// Forgets the start of a head; a buffer grown past [`HEAD_KEEP`] shrinks back.
    fn clear_head(&mut self) {
        clear_head(&mut self.head);
    }

    /// Feeds the bytes just read to the parser (see [`feed`]).
    fn feed(&mut self, input: &[u8], head_request: bool) -> (Progress, bool) {
        feed(&mut self.head, &mut self.parser, input, head_request)
    }

    /// The peer ended the connection (a read of 0 bytes).
    fn eof(&mut self) -> Read {
        eof(self.state, &mut self.parser)
    }

    fn busy(&self) -> bool {
        matches!(
            self.state,
            State::Connecting | State::Handshaking | State::Writing | State::Reading
        )
    }
}

/// Forgets the start of a head; a buffer grown past [`HEAD_KEEP`] shrinks back.
fn clear_head(head: &mut Vec<u8>) {
    head.clear();
    if head.capacity() > HEAD_KEEP {
        head.shrink_to(HEAD_KEEP);
    }
}

/// Feeds the bytes just read (or just decrypted) to a connection's `parser`, after the kept start
/// of a head in `head` if there is one. Returns the progress and, when the answer is done,
/// whether bytes followed it.
fn feed(
    head: &mut Vec<u8>,
    parser: &mut ResponseParser,
    input: &[u8],
    head_request: bool,
) -> (Progress, bool) {
    if head.is_empty() {
        let (used, progress) = parser.advance(input, head_request);
        let rest = &input[used..];
        match progress {
            Progress::NeedMore if !rest.is_empty() => {
                // Only the start of a head is ever left unconsumed (body bytes are counted as
                // they come), and the parser bounds it by MAX_HEAD_BYTES.
                debug_assert!(
                    !parser.in_body() && rest.len() < MAX_HEAD_BYTES,
                    "{} bytes left unconsumed in the body",
                    rest.len()
                );
                if head.capacity() == 0 {
                    head.reserve_exact(HEAD_KEEP.max(rest.len()));
                }
                head.extend_from_slice(rest);
                (progress, false)
            }
            Progress::Done { .. } => (progress, !rest.is_empty()),
            _ => (progress, false),
        }
    } else {
        head.extend_from_slice(input);
        let (used, progress) = parser.advance(head, head_request);
        let extra = used < head.len();
        match progress {
            Progress::NeedMore => {
                head.drain(..used);
                if head.is_empty() {
                    clear_head(head);
                }
                (progress, false)
            }
            Progress::Done { .. } => {
                clear_head(head);
                (progress, extra)
            }
            Progress::Error(_) => {
                clear_head(head);
                (progress, false)
            }
        }
    }
}

/// The peer ended a connection in `state` whose answer `parser` reads (a read of 0 bytes, or a
/// TLS close_notify).
fn eof(state: State, parser: &mut ResponseParser) -> Read {
    if state != State::Reading {
        return Read::Stray;
    }
    match parser.eof() {
        // A body delimited by the end of the connection is complete.
        Some(Progress::Done { status, .. }) => Read::Answer {
            status,
            close: true,
        },
        _ => Read::Failed(ErrorKind::Closed),
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

/// What came of a connect when its socket became ready ([`Pool::finish_connect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Connected {
    /// Not connected yet (a spurious event), or no socket: nothing to do.
    NotYet,
    /// The connect failed, or the peer reset the connection before the request was written.
    Failed(ErrorKind),
    /// Connected after `connect_ns`: the request is to be written.
    Ready {
        /// From the start of the connect to the connection established.
        connect_ns: u64,
    },
    /// Connected after `connect_ns`: the TLS handshake is to be run ([`Pool::handshake`]).
    Handshake {
        /// From the start of the connect to the connection established.
        connect_ns: u64,
    },
}

/// What came of running the TLS handshake ([`Pool::handshake`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handshake {
    /// It waits for the peer or for room in the socket.
    Pending,
    /// It ended after `tls_ns`: the request is to be written.
    Done {
        /// From the TCP connection established to the end of the handshake.
        tls_ns: u64,
    },
    /// It failed.
    Failed(ErrorKind),
}

/// How a write attempt begins ([`Pool::start_write`]).
#[derive(Debug, Clone, Copy)]
pub(super) enum Start {
    /// The rest of a partly written request.
    Resume,
    /// A new attempt (its timeout runs from now) of a request written before: a retry.
    Attempt,
    /// The first write of this request.
    First(Pending),
}

/// What came of writing ([`Pool::write`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    /// The socket is full (the rest goes on its next writable event), or there is no socket.
    Blocked,
    /// The whole request is written; `resumed`: it took more than one attempt, so the answer may
    /// have raced the end of the write.
    Written { resumed: bool },
    /// Writing failed: a write error, the peer's close_notify (`closed`), or a TLS error.
    Failed(ErrorKind),
}

/// What came of reading ([`Pool::read`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    /// Nothing more to read now (the socket is drained), or no socket.
    Wait,
    /// The answer is complete; `close`: the connection cannot carry another request.
    Answer {
        /// Its status.
        status: u16,
        /// Close the connection after it.
        close: bool,
    },
    /// The request in flight failed: the peer reset or closed it, or the answer is not HTTP.
    Failed(ErrorKind),
    /// Bytes, an end or an error on a connection no answer was awaited on: it is out of step.
    Stray,
}

/// A worker's connections (see the module docs).
#[derive(Debug)]
pub(super) struct Pool {
    conns: Slab<Conn>,
    idle: IdleList,
    free: Vec<usize>,
    /// The read buffer of all connections (see the parent module's docs).
    rbuf: Box<[u8]>,
    /// Connections opened in this pass of the loop (see [`CONNECTS_PER_PASS`]).
    connects_this_pass: usize,
    /// The TLS setup of an https target: every connection is a TLS one.
    tls: Option<TlsSetup>,
    /// The text of the first TLS error of these connections (kept once, bounded).
    tls_first_error: Option<String>,
}

impl Pool {
    /// An empty pool for at most `cap` connections (slots preallocated up to 4096), TLS ones
    /// when `tls` is given.
    pub fn new(cap: usize, tls: Option<TlsSetup>) -> Self {
        let prealloc = cap.min(4096);
        Self {
            conns: Slab::with_capacity(prealloc),
            idle: IdleList::with_capacity(prealloc),
            free: Vec::with_capacity(cap),
            rbuf: vec![0; READ_SCRATCH].into_boxed_slice(),
            connects_this_pass: 0,
            tls,
            tls_first_error: None,
        }
    }

    /// Keeps `text` as the first TLS error if there was none.
    pub fn note_tls_error(&mut self, text: &str) {
        if self.tls_first_error.is_none() {
            self.tls_first_error = Some(bounded(text.to_owned()));
        }
    }

    /// The text of the first TLS error, taken.
    pub fn take_tls_error(&mut self) -> Option<String> {
        self.tls_first_error.take()
    }

    /// A new pass of the loop: the connect pace starts again.
    pub fn new_pass(&mut self) {
        self.connects_this_pass = 0;
    }

    /// Whether this pass may still open a connection.
    pub fn may_connect(&self) -> bool {
        self.connects_this_pass < CONNECTS_PER_PASS
    }

    /// Number of idle connections.
    pub fn idle_len(&self) -> usize {
        self.idle.len()
    }

    /// The least recently used idle connection (left idle).
    pub fn least_recent_idle(&self) -> Option<usize> {
        self.idle.back()
    }

    /// The state of slot `key`, if it exists.
    pub fn state(&self, key: usize) -> Option<State> {
        self.conns.get(key).map(|c| c.state)
    }

    /// The `Server-Timing` of the answer just completed on `key`, if it had the header (until
    /// the connection is closed or reads the next answer).
    pub fn server_timing(&self, key: usize) -> Option<&ServerTiming> {
        self.conns.get(key).and_then(|c| c.parser.server_timing())
    }

    /// The request on `key`.
    pub fn req(&self, key: usize) -> Pending {
        self.conns[key].req
    }

    /// The request in flight on `key` (connecting, writing or reading), if any, and whether the
    /// connection may have been stale: the request was placed on a kept-alive connection and no
    /// byte of an answer has come.
    pub fn in_flight(&self, key: usize) -> Option<(Pending, bool)> {
        let c = &self.conns[key];
        c.busy().then_some((c.req, c.reused && !c.answered))
    }

    /// Puts `p` on the most recently used idle connection, if there is one, and returns it; the
    /// request is then to be written.
    pub fn reuse(&mut self, p: Pending) -> Option<usize> {
        let key = self.idle.pop_front()?;
        let c = &mut self.conns[key];
        c.state = State::Writing;
        c.req = p;
        c.written = 0;
        c.reused = true;
        c.answered = false;
        Some(key)
    }

    /// Opens a connection to `addr` for `p` at `now` in a free slot, registered with
    /// `registry`, which times out at `deadline` (its TLS handshake too); it counts against this
    /// pass's pace, failed or not. An error if no socket could be opened or registered, or no TLS
    /// connection made (the slot stays free).
    pub fn connect(
        &mut self,
        addr: SocketAddr,
        registry: &Registry,
        p: Pending,
        now: u64,
        deadline: u64,
    ) -> Result<(), ErrorKind> {
        self.connects_this_pass += 1;
        let tls = match &self.tls {
            Some(setup) => match TlsConn::new(setup) {
                Ok(t) => Some(Box::new(t)),
                Err(e) => {
                    self.note_tls_error(&e.to_string());
                    return Err(ErrorKind::Tls(TlsErrorKind::Other));
                }
            },
            None => None,
        };
        let key = match self.free.pop() {
            Some(k) => k,
            None => self.conns.insert(Conn::new()),
        };
        let Ok(mut sock) = TcpStream::connect(addr) else {
            self.free.push(key);
            return Err(ErrorKind::Connect);
        };
        if registry
            .register(
                &mut sock,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            self.free.push(key);
            return Err(ErrorKind::Connect);
        }
        let c = &mut self.conns[key];
        c.sock = Some(sock);
        c.tls = tls;
        c.since = now;
        c.state = State::Connecting;
        c.req = p;
        c.written = 0;
        c.reused = false;
        c.answered = false;
        c.clear_head();
        c.parser.reset();
        c.deadline = deadline;
        Ok(())
    }

    /// The socket of a connecting `key` became ready at `now`: connected, failed, or not yet.
    pub fn finish_connect(&mut self, key: usize, now: u64) -> Connected {
        let c = &mut self.conns[key];
        let Some(sock) = c.sock.as_ref() else {
            return Connected::NotYet;
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
                    return Connected::NotYet;
                }
                Err(_) => Some(ErrorKind::Connect),
            },
        };
        if let Some(kind) = failed {
            return Connected::Failed(kind);
        }
        // Small requests and answers: no Nagle delay.
        let _ = sock.set_nodelay(true);
        let connect_ns = now.saturating_sub(c.since);
        c.since = now;
        c.written = 0;
        if c.tls.is_some() {
            c.state = State::Handshaking;
            Connected::Handshake { connect_ns }
        } else {
            c.state = State::Writing;
            Connected::Ready { connect_ns }
        }
    }

    /// Runs the TLS handshake of `key` at `now` as far as it can go without waiting: writes the
    /// client's flights, reads and gives rustls the server's. Failures are `tls` errors:
    /// `closed` for an end or a reset of the connection, else what rustls said ([`classify`](
    /// crate::tls::classify)); a handshake that never ends is failed by the worker's timeout
    /// sweep.
    pub fn handshake(&mut self, key: usize, now: u64) -> Handshake {
        let Pool {
            conns,
            tls_first_error: error,
            ..
        } = self;
        let c = &mut conns[key];
        let (Some(sock), Some(tls)) = (c.sock.as_mut(), c.tls.as_deref_mut()) else {
            return Handshake::Pending;
        };
        let closed = |error: &mut Option<String>, what: &str| {
            if error.is_none() {
                *error = Some(bounded(format!(
                    "the server {what} the connection during the TLS handshake"
                )));
            }
            Handshake::Failed(ErrorKind::Tls(TlsErrorKind::Closed))
        };
        let mut drained = false;
        loop {
            match tls.flush(sock) {
                Flush::Done => {}
                Flush::Blocked => return Handshake::Pending,
                Flush::Failed => return closed(error, "reset"),
            }
            match tls.process(sock, None, &mut |_| Flow::Stop, error) {
                Step::HandshakeDone => {
                    c.state = State::Writing;
                    c.written = 0;
                    return Handshake::Done {
                        tls_ns: now.saturating_sub(c.since),
                    };
                }
                Step::Blocked => return Handshake::Pending,
                Step::NeedRead => {
                    if drained {
                        return Handshake::Pending;
                    }
                    let space = tls.read_space();
                    let want = space.len();
                    if want == 0 {
                        // rustls reports a full buffer it cannot use before asking for more.
                        return Handshake::Failed(ErrorKind::Tls(TlsErrorKind::Other));
                    }
                    match sock.read(space) {
                        Ok(0) => return closed(error, "closed"),
                        Ok(n) => {
                            tls.filled(n);
                            // A short read drained the socket: the next arrival raises an edge.
                            drained = n < want;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Handshake::Pending;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return closed(error, "reset"),
                    }
                }
                Step::PeerClosed => return closed(error, "closed"),
                Step::Failed(kind) => return Handshake::Failed(kind),
                Step::Stopped { .. } | Step::Encrypted => {
                    if error.is_none() {
                        *error = Some("application data before the end of the handshake".into());
                    }
                    return Handshake::Failed(ErrorKind::Tls(TlsErrorKind::Other));
                }
            }
        }
    }

    /// Writes the encrypted bytes `key` still holds (a TLS connection whose reads made rustls
    /// answer, e.g. a key update, while the socket was full); an error if writing failed.
    pub fn flush_pending(&mut self, key: usize) -> Result<(), ErrorKind> {
        let c = &mut self.conns[key];
        match (c.sock.as_mut(), c.tls.as_deref_mut()) {
            (Some(sock), Some(tls)) if tls.pending_out() => match tls.flush(sock) {
                Flush::Failed => Err(ErrorKind::Write),
                Flush::Done | Flush::Blocked => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Whether `key` is a TLS connection with encrypted bytes waiting for the socket.
    pub fn has_pending_out(&self, key: usize) -> bool {
        self.conns
            .get(key)
            .and_then(|c| c.tls.as_deref())
            .is_some_and(TlsConn::pending_out)
    }

    /// Before writing on `key` at `now`: a new attempt's timeout runs from the start of its write
    /// (`timeout_ns`), and a request's first write takes its time (a retry keeps the first one's).
    pub fn start_write(&mut self, key: usize, now: u64, timeout_ns: u64) -> Start {
        let c = &mut self.conns[key];
        if c.written > 0 {
            return Start::Resume;
        }
        c.deadline = now.saturating_add(timeout_ns);
        if c.req.write_ns != 0 {
            return Start::Attempt;
        }
        c.req.write_ns = now;
        Start::First(c.req)
    }

    /// Writes (the rest of) `request` on `key`.
    pub fn write(&mut self, key: usize, request: &[u8]) -> Write {
        if self.conns[key].tls.is_some() {
            return self.write_tls(key, request);
        }
        let c = &mut self.conns[key];
        let Some(sock) = c.sock.as_mut() else {
            return Write::Blocked;
        };
        let resumed = c.written > 0;
        loop {
            match sock.write(&request[c.written..]) {
                Ok(0) => return Write::Failed(ErrorKind::Write),
                Ok(n) => {
                    c.written += n;
                    if c.written == request.len() {
                        c.state = State::Reading;
                        return Write::Written { resumed };
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.state = State::Writing;
                    return Write::Blocked;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Write::Failed(ErrorKind::Write),
            }
        }
    }

    /// [`Pool::write`] on a TLS connection: the request is encrypted [`PLAIN_CHUNK`] bytes at a
    /// time into the connection's outgoing buffer, which is written out before the next part is
    /// encrypted (`written` counts the plaintext encrypted). A write the socket does not take
    /// whole resumes with the rest of the buffer.
    fn write_tls(&mut self, key: usize, request: &[u8]) -> Write {
        let Pool {
            conns,
            tls_first_error: error,
            ..
        } = self;
        let c = &mut conns[key];
        let (Some(sock), Some(tls)) = (c.sock.as_mut(), c.tls.as_deref_mut()) else {
            return Write::Blocked;
        };
        let resumed = c.written > 0 || tls.pending_out();
        loop {
            match tls.flush(sock) {
                Flush::Done => {}
                Flush::Blocked => {
                    c.state = State::Writing;
                    return Write::Blocked;
                }
                Flush::Failed => return Write::Failed(ErrorKind::Write),
            }
            if c.written == request.len() {
                c.state = State::Reading;
                return Write::Written { resumed };
            }
            let end = request.len().min(c.written + PLAIN_CHUNK);
            match tls.process(
                sock,
                Some(&request[c.written..end]),
                &mut |_| Flow::Stop,
                error,
            ) {
                Step::Encrypted => c.written = end,
                // rustls had a message of its own to send first; the socket is full.
                Step::Blocked => {
                    c.state = State::Writing;
                    return Write::Blocked;
                }
                // The server said goodbye (close_notify) before the request was written: a
                // kept-alive connection it had closed.
                Step::PeerClosed => return Write::Failed(ErrorKind::Closed),
                Step::Failed(kind) => return Write::Failed(kind),
                Step::NeedRead | Step::HandshakeDone | Step::Stopped { .. } => {
                    if error.is_none() {
                        *error = Some("the TLS connection could not take the request".into());
                    }
                    return Write::Failed(ErrorKind::Tls(TlsErrorKind::Other));
                }
            }
        }
    }

    /// Reads what arrived on `key` and parses it. `to_eof`: the event says the peer closed or
    /// errored, so read until the end instead of trusting a short read; an answer then closes
    /// the connection. Bytes after a complete answer are out of step: it closes too.
    pub fn read(&mut self, key: usize, to_eof: bool, head_request: bool) -> Read {
        if self.conns[key].tls.is_some() {
            return self.read_tls(key, to_eof, head_request);
        }
        loop {
            let c = &mut self.conns[key];
            let Some(sock) = c.sock.as_mut() else {
                return Read::Wait;
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
                Ok(0) => return c.eof(),
                Ok(n) => {
                    if c.state != State::Reading {
                        // Bytes nobody asked for.
                        return Read::Stray;
                    }
                    c.answered = true;
                    match c.feed(&self.rbuf[..n], head_request) {
                        (Progress::NeedMore, _) => {}
                        (Progress::Done { status, close }, extra) => {
                            return Read::Answer {
                                status,
                                close: close || extra || to_eof,
                            };
                        }
                        (Progress::Error(_), _) => return Read::Failed(ErrorKind::Parse),
                    }
                    if n < want && !to_eof {
                        // A short read drained the socket; the next arrival raises a new edge.
                        return Read::Wait;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Read::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if c.state == State::Reading => return Read::Failed(ErrorKind::Read),
                Err(_) => return Read::Stray,
            }
        }
    }

    /// [`Pool::read`] on a TLS connection (see [`Pool::read_tls_records`]). A connection whose
    /// key nears its confidentiality limit closes after the answer (a new one opens for the
    /// next request), as if the answer said `Connection: close`.
    fn read_tls(&mut self, key: usize, to_eof: bool, head_request: bool) -> Read {
        match self.read_tls_records(key, to_eof, head_request) {
            Read::Answer { status, close } => Read::Answer {
                status,
                close: close || self.conns[key].tls.as_deref().is_some_and(TlsConn::worn),
            },
            other => other,
        }
    }

    /// [`Pool::read`] on a TLS connection: reads go into the connection's incoming buffer,
    /// its record layer takes the records in it, and the plaintext of each goes to the parser
    /// as a plain read's bytes do. After a complete answer the records already read are still
    /// taken (a session ticket, a key update, the peer's close_notify), so that only a partial
    /// record is ever left: plaintext after the answer, or the peer's close_notify, closes the
    /// connection. The peer's close_notify is an end of the connection like a read of 0 bytes.
    fn read_tls_records(&mut self, key: usize, to_eof: bool, head_request: bool) -> Read {
        let Pool {
            conns,
            tls_first_error: error,
            ..
        } = self;
        let c = &mut conns[key];
        let Conn {
            sock,
            tls,
            state,
            head,
            parser,
            answered,
            ..
        } = c;
        let (Some(sock), Some(tls)) = (sock.as_mut(), tls.as_deref_mut()) else {
            return Read::Wait;
        };
        let reading = *state == State::Reading;
        // The answer once complete: its status and whether it closes the connection.
        let mut answer: Option<(u16, bool)> = None;
        let mut parse_error = false;
        let mut extra = false;
        // Whether the last read drained the socket (it returned less than it could take).
        let mut drained = false;
        loop {
            let space = tls.read_space();
            let want = space.len();
            if want == 0 {
                // A full buffer nothing could be taken from (the record layer says so first).
                return match answer {
                    Some((status, _)) => Read::Answer {
                        status,
                        close: true,
                    },
                    None if reading => Read::Failed(ErrorKind::Tls(TlsErrorKind::Other)),
                    None => Read::Stray,
                };
            }
            let mut eof_seen = false;
            match sock.read(space) {
                Ok(0) => eof_seen = true,
                Ok(n) => {
                    tls.filled(n);
                    drained = n < want;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return match answer {
                        Some((status, close)) => Read::Answer {
                            status,
                            close: close || to_eof,
                        },
                        None => Read::Wait,
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) if reading && answer.is_none() => return Read::Failed(ErrorKind::Read),
                Err(_) => {
                    return match answer {
                        Some((status, _)) => Read::Answer {
                            status,
                            close: true,
                        },
                        None => Read::Stray,
                    };
                }
            }
            let mut on_data = |plain: &[u8]| {
                if !reading || answer.is_some() {
                    extra = true;
                    return Flow::Stop;
                }
                *answered = true;
                match feed(head, parser, plain, head_request) {
                    (Progress::NeedMore, _) => Flow::More,
                    (Progress::Done { status, close }, more) => {
                        // Go on: records after the answer are out of step.
                        answer = Some((status, close || more));
                        Flow::More
                    }
                    (Progress::Error(_), _) => {
                        parse_error = true;
                        Flow::Stop
                    }
                }
            };
            let step = tls.process(sock, None, &mut on_data, error);
            if parse_error {
                return Read::Failed(ErrorKind::Parse);
            }
            if let Some((status, close)) = answer {
                match step {
                    // Nothing more in what was read: the answer stands, and the connection with
                    // it unless the socket may hold more (a full read) which is to be looked at.
                    Step::NeedRead | Step::Blocked if !eof_seen && !extra => {
                        if drained || matches!(step, Step::Blocked) {
                            return Read::Answer {
                                status,
                                close: close || to_eof,
                            };
                        }
                        continue;
                    }
                    _ => {
                        return Read::Answer {
                            status,
                            close: true,
                        };
                    }
                }
            }
            match step {
                Step::Stopped { .. } => return Read::Stray,
                Step::PeerClosed => return eof(*state, parser),
                Step::Failed(kind) if reading => return Read::Failed(kind),
                Step::Failed(_) | Step::HandshakeDone | Step::Encrypted => return Read::Stray,
                // A key update or an alert of rustls's own waits for the socket.
                Step::Blocked => return Read::Wait,
                Step::NeedRead => {}
            }
            if eof_seen {
                return eof(*state, parser);
            }
            if drained && !to_eof {
                // A short read drained the socket; the next arrival raises a new edge.
                return Read::Wait;
            }
        }
    }

    /// The request on `key` is done and the connection kept: it becomes the most recently used
    /// idle one.
    pub fn make_idle(&mut self, key: usize) {
        let c = &mut self.conns[key];
        c.state = State::Idle;
        c.req.write_ns = 0;
        c.req.retried = false;
        self.idle.push_front(key);
    }

    /// Closes the socket of `key` (if any) and frees the slot; `true` if it was open.
    pub fn close(&mut self, key: usize) -> bool {
        let c = &mut self.conns[key];
        if c.state == State::Closed {
            return false;
        }
        if c.state == State::Idle {
            self.idle.remove(key);
        }
        let c = &mut self.conns[key];
        // Dropping the socket closes it, which also removes it from the epoll set (a TLS
        // connection is dropped without a close_notify: the request/answer framing of HTTP/1.1
        // never needs it).
        c.sock = None;
        c.tls = None;
        c.state = State::Closed;
        c.clear_head();
        c.written = 0;
        c.req.write_ns = 0;
        c.req.retried = false;
        c.deadline = u64::MAX;
        c.parser.reset();
        self.free.push(key);
        true
    }

    /// Puts into `out` (cleared first) the connections with a request in flight.
    pub fn busy_into(&self, out: &mut Vec<usize>) {
        out.clear();
        out.extend(self.conns.iter().filter(|(_, c)| c.busy()).map(|(k, _)| k));
    }

    /// Puts into `out` (cleared first) the connections whose connect or request timed out by
    /// `now`.
    pub fn expired_into(&self, now: u64, out: &mut Vec<usize>) {
        out.clear();
        out.extend(
            self.conns
                .iter()
                .filter(|(_, c)| c.busy() && c.deadline <= now)
                .map(|(k, _)| k),
        );
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
    /// `Pool::read` does; returns the outcomes and the largest head buffer kept.
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
