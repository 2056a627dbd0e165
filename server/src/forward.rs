//! `--forward URL`: the downstream pool of one I/O thread, and the answers it relays.
//!
//! A station that forwards sends each request it has served (its departure time reached) on to
//! the downstream, and answers upstream when the downstream answers. Each I/O thread keeps its own
//! pool of HTTP/1.1 keep-alive connections to the downstream, on its own mio loop:
//!
//! - at most `--forward-connections` connections, opened on demand (non-blocking `connect`),
//!   reused last in, first out (the warmest first), each with one request in flight;
//! - each connection's buffers are allocated when it is first opened and kept when it closes, so
//!   that no request allocates: the request out ([`OUT_CAP`]: a head and a body of the sizes qserve
//!   accepts) and the answer in ([`IN_CAP`]);
//! - requests that find every connection busy wait in a bounded queue (`--forward-queue`); one
//!   over it gets `502 {"error":"forward_busy"}`.
//!
//! The request sent downstream is the upstream request's own method and target (path and query)
//! with `Host` set to the downstream's `host:port` and the request's body, if any, framed by
//! `Content-Length`. The URL's own path must be `/` (or empty): it is not a prefix.
//!
//! The answer is parsed with httparse and bounded: a head of at most [`MAX_HEAD_BYTES`] and
//! [`MAX_HEADERS`] fields, a body of at most [`MAX_FORWARD_BODY`], framed by `Content-Length`,
//! `chunked`, or the connection's close (no framing). A 1xx answer, a transfer coding other than
//! `chunked`, `Content-Length` with `Transfer-Encoding`, conflicting lengths or control bytes in a
//! header value are garbage ([`Fault::Parse`]). Any fault closes the downstream connection.
//!
//! The upstream answer has the downstream's status, reason, `Content-Type` and body, and a
//! `Server-Timing` composed so that **the sum of its durations is still this station's own time**
//! (what qload subtracts from its latency to get the path): this station's `wait`, `service` and
//! `late`, then `hop`, then the downstream's entries appended verbatim. `hop` is the hop's
//! *overhead*: the time from this station's dispatch (its departure, plus `late`) to the
//! downstream's answer being read, **minus the sum of the downstream's own durations**. The full
//! hop time (downstream included) is what `qserve_forward_seconds` records. The downstream's
//! entries are bounded at [`MAX_FORWARD_TIMING`] bytes: longer, they are cut at an entry boundary
//! (counted in `qserve_forward_timing_truncated_total`), and `hop` subtracts only the entries
//! kept, so the sum stays right. Since the rule holds at every station, the entries of a tandem
//! of stations add up to the first station's time at any depth.
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use queuelab_common::http::{MAX_HEAD_BYTES, MAX_HEADERS, MAX_REQUEST_BODY, SERVER_NAME};

use crate::http::{ConnHeader, ServerTiming};

/// Largest body of a downstream answer relayed (bytes): what qserve accepts as a request body.
pub const MAX_FORWARD_BODY: usize = MAX_REQUEST_BODY;
/// Longest run of downstream `Server-Timing` entries relayed (bytes).
pub const MAX_FORWARD_TIMING: usize = 1024;
/// Most `Server-Timing` header lines of a downstream answer read (later ones are dropped and
/// counted as a truncation).
const MAX_TIMING_LINES: usize = 4;
/// Room for chunk framing in the answer buffer.
const CHUNK_SLACK: usize = 8 * 1024;
/// A downstream connection's answer buffer.
pub const IN_CAP: usize = MAX_HEAD_BYTES + MAX_FORWARD_BODY + CHUNK_SLACK;
/// A downstream connection's request buffer (grows only if the host name is very long).
pub const OUT_CAP: usize = MAX_HEAD_BYTES + MAX_REQUEST_BODY + 256;
/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 1024;

/// Why a forwarded request got no downstream answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The connection could not be opened (refused, unreachable).
    Connect,
    /// The connection was reset (or a write failed).
    Reset,
    /// The downstream closed before its answer was complete.
    Closed,
    /// The answer was not HTTP/1.x as qserve reads it.
    Parse,
    /// The answer's head or body was over the limits.
    TooLarge,
    /// Every connection was busy and the wait queue full.
    Busy,
    /// No answer within `--forward-timeout` (504).
    Timeout,
}

impl Fault {
    /// How many kinds there are.
    pub const COUNT: usize = 7;
    /// All kinds, in the order of [`Fault::index`].
    pub const ALL: [Fault; Fault::COUNT] = [
        Fault::Connect,
        Fault::Reset,
        Fault::Closed,
        Fault::Parse,
        Fault::TooLarge,
        Fault::Busy,
        Fault::Timeout,
    ];

    /// A dense index for counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The `kind` label of `qserve_forward_errors_total`.
    pub fn label(self) -> &'static str {
        match self {
            Fault::Connect => "connect",
            Fault::Reset => "reset",
            Fault::Closed => "closed",
            Fault::Parse => "parse",
            Fault::TooLarge => "too_large",
            Fault::Busy => "busy",
            Fault::Timeout => "timeout",
        }
    }

    fn status_line(self) -> &'static [u8] {
        match self {
            Fault::Timeout => b"HTTP/1.1 504 Gateway Timeout\r\n",
            _ => b"HTTP/1.1 502 Bad Gateway\r\n",
        }
    }

    fn body(self) -> &'static [u8] {
        match self {
            Fault::Connect => b"{\"error\":\"forward_connect\"}\n",
            Fault::Reset => b"{\"error\":\"forward_reset\"}\n",
            Fault::Closed => b"{\"error\":\"forward_closed\"}\n",
            Fault::Parse => b"{\"error\":\"forward_parse\"}\n",
            Fault::TooLarge => b"{\"error\":\"forward_too_large\"}\n",
            Fault::Busy => b"{\"error\":\"forward_busy\"}\n",
            Fault::Timeout => b"{\"error\":\"forward_timeout\"}\n",
        }
    }
}

/// A forwarded request: the upstream connection (slab key and generation) waiting for it, and
/// when it was dispatched (ns on the server clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Job {
    pub key: u32,
    pub generation: u32,
    pub since_ns: u64,
    pub head_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Connecting,
    Idle,
    Sending,
    Receiving,
    /// The answer is complete and waits for [`Pool::finish`].
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

/// Where the parts of a parsed answer head lie in the answer buffer.
#[derive(Debug, Clone, Copy)]
struct AnswerHead {
    status: u16,
    reason: (usize, usize),
    content_type: Option<(usize, usize)>,
    content_length: Option<(usize, usize)>,
    timing: [(usize, usize); MAX_TIMING_LINES],
    timing_lines: usize,
    timing_dropped: bool,
    head_len: usize,
    framing: Framing,
    close: bool,
    /// End of the answer (set when complete).
    end: usize,
    /// Body length (decoded, for chunked).
    body_len: usize,
}

#[derive(Debug)]
struct Down {
    stream: Option<TcpStream>,
    state: State,
    job: Option<Job>,
    out: Vec<u8>,
    out_pos: usize,
    buf: Box<[u8]>,
    filled: usize,
    head: Option<AnswerHead>,
}

/// What [`Pool::acquire`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// This connection (idle, or being opened) takes the request.
    Conn(usize),
    /// Every connection is busy.
    Busy,
}

/// One I/O thread's connections to the downstream; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Pool {
    addr: SocketAddr,
    host: Vec<u8>,
    base: usize,
    downs: Vec<Down>,
    /// Idle connections, the most recently used last.
    idle: Vec<usize>,
    /// Connections not open.
    closed: Vec<usize>,
    waiting: VecDeque<Job>,
    queue_max: usize,
    timeout_ns: u64,
}

fn range(buf: &[u8], s: &[u8]) -> (usize, usize) {
    let start = (s.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    (start, start + s.len())
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

fn parse_decimal(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    usize::try_from(n).ok()
}

/// Parses an answer head at the start of `buf`: `Ok(None)` if incomplete.
fn parse_answer_head(buf: &[u8], head_only: bool) -> Result<Option<AnswerHead>, Fault> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n > MAX_HEAD_BYTES => return Err(Fault::TooLarge),
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
            return Err(Fault::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Fault::TooLarge),
        Err(_) => return Err(Fault::Parse),
    };
    let status = resp.code.ok_or(Fault::Parse)?;
    if status < 200 {
        return Err(Fault::Parse);
    }
    let reason = resp.reason.unwrap_or("").as_bytes();
    let mut h = AnswerHead {
        status,
        reason: if reason
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
        {
            range(buf, reason)
        } else {
            (0, 0)
        },
        content_type: None,
        content_length: None,
        timing: [(0, 0); MAX_TIMING_LINES],
        timing_lines: 0,
        timing_dropped: false,
        head_len,
        framing: Framing::UntilClose,
        close: resp.version != Some(1),
        end: 0,
        body_len: 0,
    };
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for f in resp.headers.iter() {
        if f.value
            .iter()
            .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err(Fault::Parse);
        }
        let name = f.name;
        if name.eq_ignore_ascii_case("content-length") {
            for part in f.value.split(|&b| b == b',') {
                let v = parse_decimal(trim_ows(part)).ok_or(Fault::Parse)?;
                match length {
                    Some(prev) if prev != v => return Err(Fault::Parse),
                    _ => length = Some(v),
                }
            }
            h.content_length = Some(range(buf, trim_ows(f.value)));
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = f.value.rsplit(|&b| b == b',').next().unwrap_or(&[]);
            if chunked || !trim_ows(last).eq_ignore_ascii_case(b"chunked") {
                return Err(Fault::Parse);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-type") {
            h.content_type = Some(range(buf, trim_ows(f.value)));
        } else if name.eq_ignore_ascii_case("server-timing") {
            if h.timing_lines < MAX_TIMING_LINES {
                h.timing[h.timing_lines] = range(buf, f.value);
                h.timing_lines += 1;
            } else {
                h.timing_dropped = true;
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in f.value.split(|&b| b == b',') {
                if trim_ows(token).eq_ignore_ascii_case(b"close") {
                    h.close = true;
                }
            }
        }
    }
    if chunked && length.is_some() {
        return Err(Fault::Parse);
    }
    h.framing = if head_only || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        if n > MAX_FORWARD_BODY {
            return Err(Fault::TooLarge);
        }
        Framing::Length(n)
    } else {
        h.close = true;
        Framing::UntilClose
    };
    Ok(Some(h))
}

/// One chunk: `Ok(Some((data_start, size, next)))`, `Ok(None)` if incomplete.
fn chunk_at(buf: &[u8], pos: usize) -> Result<Option<(usize, usize, usize)>, Fault> {
    let rest = &buf[pos..];
    let Some(nl) = rest
        .iter()
        .take(MAX_CHUNK_LINE + 1)
        .position(|&b| b == b'\n')
    else {
        return if rest.len() > MAX_CHUNK_LINE {
            Err(Fault::Parse)
        } else {
            Ok(None)
        };
    };
    let line = rest[..nl].strip_suffix(b"\r").ok_or(Fault::Parse)?;
    let size_hex = line.split(|&b| b == b';').next().unwrap_or(&[]);
    let size_hex = trim_ows(size_hex);
    if size_hex.is_empty() || size_hex.len() > 8 || !size_hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(Fault::Parse);
    }
    let size = size_hex.iter().fold(0usize, |n, &d| {
        n * 16 + (d as char).to_digit(16).map_or(0, |v| v as usize)
    });
    let data = pos + nl + 1;
    Ok(Some((data, size, data + size)))
}

/// Scans a chunked body from `pos`: `Ok(Some((end, body_len)))` once complete.
fn chunked_end(buf: &[u8], mut pos: usize) -> Result<Option<(usize, usize)>, Fault> {
    let mut body = 0usize;
    loop {
        let Some((data, size, next)) = chunk_at(buf, pos)? else {
            return Ok(None);
        };
        if size == 0 {
            // Trailer fields, then an empty line.
            let mut p = data;
            loop {
                let rest = &buf[p..];
                let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                    return Ok(None);
                };
                if nl == 0 || rest[nl - 1] != b'\r' {
                    return Err(Fault::Parse);
                }
                p += nl + 1;
                if nl == 1 {
                    return Ok(Some((p, body)));
                }
            }
        }
        body += size;
        if body > MAX_FORWARD_BODY {
            return Err(Fault::TooLarge);
        }
        if buf.len() < next + 2 {
            return Ok(None);
        }
        if &buf[next..next + 2] != b"\r\n" {
            return Err(Fault::Parse);
        }
        pos = next + 2;
    }
}

impl Down {
    fn new() -> Self {
        Down {
            stream: None,
            state: State::Closed,
            job: None,
            out: Vec::new(),
            out_pos: 0,
            buf: Box::default(),
            filled: 0,
            head: None,
        }
    }

    /// Writes what is left of the request: `Err` on a failed write.
    fn flush(&mut self) -> Result<(), Fault> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(Fault::Reset);
        };
        while self.out_pos < self.out.len() {
            match stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(Fault::Reset),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Fault::Reset),
            }
        }
        self.state = State::Receiving;
        Ok(())
    }

    /// Reads and parses: `Ok(true)` once the answer is complete.
    fn receive(&mut self) -> Result<bool, Fault> {
        let head_only = self.job.is_some_and(|j| j.head_only);
        loop {
            if self.filled == self.buf.len() {
                return Err(Fault::TooLarge);
            }
            let Some(stream) = self.stream.as_mut() else {
                return Err(Fault::Reset);
            };
            let eof = match stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => true,
                Ok(n) => {
                    self.filled += n;
                    false
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Fault::Reset),
            };
            let buf = &self.buf[..self.filled];
            if self.head.is_none() {
                self.head = parse_answer_head(buf, head_only)?;
            }
            let Some(h) = self.head.as_mut() else {
                if eof {
                    return Err(Fault::Closed);
                }
                continue;
            };
            let done = match h.framing {
                Framing::Empty => Some((h.head_len, 0)),
                Framing::Length(n) => (buf.len() >= h.head_len + n).then_some((h.head_len + n, n)),
                Framing::Chunked => chunked_end(buf, h.head_len)?,
                Framing::UntilClose if eof => Some((buf.len(), buf.len() - h.head_len)),
                Framing::UntilClose => {
                    if buf.len() - h.head_len > MAX_FORWARD_BODY {
                        return Err(Fault::TooLarge);
                    }
                    None
                }
            };
            if let Some((end, body_len)) = done {
                h.end = end;
                h.body_len = body_len;
                // Anything after the answer is not ours: do not reuse the connection.
                if end < buf.len() || eof {
                    h.close = true;
                }
                self.state = State::Done;
                return Ok(true);
            }
            if eof {
                return Err(Fault::Closed);
            }
        }
    }
}

impl Pool {
    /// A pool of at most `connections` connections to `addr`, whose tokens are `base + i`.
    pub(crate) fn new(
        addr: SocketAddr,
        host: &str,
        connections: usize,
        queue_max: usize,
        timeout_ns: u64,
        base: usize,
    ) -> Self {
        Pool {
            addr,
            host: host.as_bytes().to_vec(),
            base,
            downs: (0..connections).map(|_| Down::new()).collect(),
            idle: Vec::with_capacity(connections),
            closed: (0..connections).rev().collect(),
            waiting: VecDeque::with_capacity(queue_max),
            queue_max,
            timeout_ns,
        }
    }

    /// The connection index of a mio token, if it is one of the pool's.
    pub(crate) fn index_of(&self, token: Token) -> Option<usize> {
        token
            .0
            .checked_sub(self.base)
            .filter(|&i| i < self.downs.len())
    }

    /// Whether a request could start now.
    pub(crate) fn has_free(&self) -> bool {
        !self.idle.is_empty() || !self.closed.is_empty()
    }

    /// A connection for a new request: the most recently used idle one, else a new one (whose
    /// buffers are allocated on its first opening). `Err(Fault::Connect)` if it cannot be opened.
    pub(crate) fn acquire(&mut self, registry: &Registry) -> Result<Acquired, Fault> {
        if let Some(i) = self.idle.pop() {
            return Ok(Acquired::Conn(i));
        }
        let Some(i) = self.closed.pop() else {
            return Ok(Acquired::Busy);
        };
        let d = &mut self.downs[i];
        let opened = TcpStream::connect(self.addr).and_then(|mut s| {
            registry.register(
                &mut s,
                Token(self.base + i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(s)
        });
        match opened {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                if d.buf.is_empty() {
                    d.buf = vec![0u8; IN_CAP].into_boxed_slice();
                    d.out = Vec::with_capacity(OUT_CAP);
                }
                d.stream = Some(s);
                d.state = State::Connecting;
                Ok(Acquired::Conn(i))
            }
            Err(_) => {
                self.closed.push(i);
                Err(Fault::Connect)
            }
        }
    }

    /// Queues a request for the next free connection; false when the queue is full.
    pub(crate) fn enqueue(&mut self, job: Job) -> bool {
        if self.waiting.len() >= self.queue_max {
            return false;
        }
        self.waiting.push_back(job);
        true
    }

    /// The request waiting longest, if a connection is free for it.
    pub(crate) fn pop_waiting(&mut self) -> Option<Job> {
        if self.has_free() {
            self.waiting.pop_front()
        } else {
            None
        }
    }

    /// Starts request `job` on connection `i` (from [`Pool::acquire`]): `line` is the request's
    /// method and target, `body` its body. `Err` if the write failed at once (the connection is
    /// closed).
    pub(crate) fn send(
        &mut self,
        i: usize,
        job: Job,
        line: &[u8],
        body: &[u8],
        registry: &Registry,
    ) -> Result<(), Fault> {
        let host = &self.host;
        let d = &mut self.downs[i];
        d.job = Some(job);
        d.out.clear();
        d.out_pos = 0;
        d.filled = 0;
        d.head = None;
        d.out.extend_from_slice(line);
        d.out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        d.out.extend_from_slice(host);
        if !body.is_empty() {
            let mut n = itoa::Buffer::new();
            d.out.extend_from_slice(b"\r\nContent-Length: ");
            d.out.extend_from_slice(n.format(body.len()).as_bytes());
        }
        d.out.extend_from_slice(b"\r\n\r\n");
        d.out.extend_from_slice(body);
        if d.state == State::Connecting {
            return Ok(());
        }
        d.state = State::Sending;
        match d.flush() {
            Ok(()) => Ok(()),
            Err(f) => {
                self.close(i, registry);
                Err(f)
            }
        }
    }

    fn close(&mut self, i: usize, registry: &Registry) {
        let d = &mut self.downs[i];
        if let Some(mut s) = d.stream.take() {
            let _ = registry.deregister(&mut s);
        }
        if d.state == State::Idle {
            self.idle.retain(|&j| j != i);
        }
        d.state = State::Closed;
        d.job = None;
        d.head = None;
        d.filled = 0;
        self.closed.push(i);
    }

    /// Handles a readiness event of connection `i`: the request's outcome once it has one.
    /// `Ok(())` means the answer is complete: render it with [`Pool::answer`], then call
    /// [`Pool::finish`].
    pub(crate) fn on_event(
        &mut self,
        i: usize,
        registry: &Registry,
    ) -> Option<(Job, Result<(), Fault>)> {
        let d = self.downs.get_mut(i)?;
        let r = match d.state {
            State::Closed | State::Done => return None,
            State::Idle => {
                // Unsolicited bytes, an EOF or an error: this connection is of no more use.
                let mut probe = [0u8; 64];
                let gone = match d.stream.as_mut().map(|s| s.read(&mut probe)) {
                    Some(Err(e)) => e.kind() != io::ErrorKind::WouldBlock,
                    Some(Ok(_)) | None => true,
                };
                if gone {
                    self.close(i, registry);
                }
                return None;
            }
            State::Connecting => {
                let s = d.stream.as_ref()?;
                match (s.take_error(), s.peer_addr()) {
                    (Ok(None), Ok(_)) => {
                        d.state = State::Sending;
                        d.flush().and_then(|()| d.receive())
                    }
                    (Ok(None), Err(e)) if e.kind() == io::ErrorKind::NotConnected => {
                        return None;
                    }
                    _ => Err(Fault::Connect),
                }
            }
            State::Sending => d.flush().and_then(|()| {
                if d.state == State::Receiving {
                    d.receive()
                } else {
                    Ok(false)
                }
            }),
            State::Receiving => d.receive(),
        };
        let job = d.job?;
        match r {
            Ok(false) => None,
            Ok(true) => Some((job, Ok(()))),
            Err(f) => {
                self.close(i, registry);
                Some((job, Err(f)))
            }
        }
    }

    /// After an answer was rendered: the connection goes back to the idle stack, or is closed
    /// when the downstream asked for that (or sent more than its answer).
    pub(crate) fn finish(&mut self, i: usize, registry: &Registry) {
        let Some(d) = self.downs.get_mut(i) else {
            return;
        };
        if d.state != State::Done {
            return;
        }
        if d.head.is_some_and(|h| h.close) {
            self.close(i, registry);
            return;
        }
        d.state = State::Idle;
        d.job = None;
        d.head = None;
        d.filled = 0;
        self.idle.push(i);
    }

    /// Requests that waited `--forward-timeout` since their dispatch, in flight (their connection
    /// closed) or in the queue: each goes to `out`.
    pub(crate) fn expire(&mut self, now: u64, registry: &Registry, out: &mut Vec<Job>) {
        let timeout = self.timeout_ns;
        let over = |j: &Job| now.saturating_sub(j.since_ns) >= timeout;
        for i in 0..self.downs.len() {
            let d = &self.downs[i];
            if matches!(
                d.state,
                State::Connecting | State::Sending | State::Receiving
            ) {
                if let Some(j) = d.job.filter(over) {
                    out.push(j);
                    self.close(i, registry);
                }
            }
        }
        while self.waiting.front().is_some_and(over) {
            if let Some(j) = self.waiting.pop_front() {
                out.push(j);
            }
        }
    }

    /// The complete answer of connection `i`.
    pub(crate) fn answer(&self, i: usize) -> Option<Answer<'_>> {
        let d = self.downs.get(i)?;
        let head = d.head.filter(|_| d.state == State::Done)?;
        Some(Answer {
            buf: &d.buf[..d.filled],
            head,
        })
    }
}

/// A complete downstream answer, borrowed from its connection's buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answer<'a> {
    buf: &'a [u8],
    head: AnswerHead,
}

impl Answer<'_> {
    fn part(&self, r: (usize, usize)) -> &[u8] {
        self.buf.get(r.0..r.1).unwrap_or(&[])
    }

    fn write_body(&self, out: &mut Vec<u8>) {
        let h = &self.head;
        match h.framing {
            Framing::Empty => {}
            Framing::Length(_) | Framing::UntilClose => {
                out.extend_from_slice(self.part((h.head_len, h.end)));
            }
            Framing::Chunked => {
                let mut pos = h.head_len;
                while let Ok(Some((data, size, next))) = chunk_at(self.buf, pos) {
                    if size == 0 || next > self.buf.len() {
                        break;
                    }
                    out.extend_from_slice(&self.buf[data..next]);
                    pos = next + 2;
                }
            }
        }
    }
}

/// Splits `s` at `sep` outside quoted strings.
fn split_outside_quotes(s: &[u8], sep: u8, mut f: impl FnMut(&[u8]) -> bool) {
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in s.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            if !f(&s[start..i]) {
                return;
            }
            start = i + 1;
        }
    }
    f(&s[start..]);
}

/// A `dur` value (milliseconds, `digits [ "." digits ]`) in ns, rounded as qload reads it.
fn dur_ns(v: &[u8]) -> Option<u64> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(p) => (&v[..p], &v[p + 1..]),
        None => (v, &[][..]),
    };
    if int.is_empty() || int.len() > 12 || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !frac.iter().all(u8::is_ascii_digit) || (v.contains(&b'.') && frac.is_empty()) {
        return None;
    }
    let ms = int.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    let mut ns = 0u64;
    for k in 0..6 {
        ns = ns * 10 + frac.get(k).map_or(0, |&d| u64::from(d - b'0'));
    }
    if frac.get(6).is_some_and(|&d| d >= b'5') {
        ns += 1;
    }
    Some(ms * 1_000_000 + ns)
}

/// The first `dur` of one `Server-Timing` entry, ns (0 without one).
fn entry_dur_ns(entry: &[u8]) -> u64 {
    let mut first = true;
    let mut found = None;
    split_outside_quotes(entry, b';', |param| {
        if first {
            first = false;
            return true;
        }
        let mut kv = param.splitn(2, |&b| b == b'=');
        let name = trim_ows(kv.next().unwrap_or(&[]));
        if name.eq_ignore_ascii_case(b"dur") {
            found = kv.next().and_then(|v| dur_ns(trim_ows(v)));
            return false;
        }
        true
    });
    found.unwrap_or(0)
}

/// What [`write_answer`] reports for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Relayed {
    /// The downstream's entries were cut.
    pub truncated: bool,
}

/// Appends the upstream answer relaying `a`: the downstream's status, reason, content type and
/// body; `Server-Timing` with this station's `own` durations, `hop` = `hop_ns` minus the
/// downstream's durations, and the downstream's entries (see the [module docs](self)).
pub(crate) fn write_answer(
    out: &mut Vec<u8>,
    date: &[u8; 29],
    a: &Answer<'_>,
    own: ServerTiming,
    hop_ns: u64,
    conn: ConnHeader,
    head_only: bool,
) -> Relayed {
    let h = &a.head;
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(num.format(h.status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(a.part(h.reason));
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(SERVER_NAME.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date);
    if let Some(ct) = h.content_type {
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(a.part(ct));
    }
    out.extend_from_slice(b"\r\nContent-Length: ");
    match (h.framing, h.content_length) {
        // A HEAD (or 304) answer keeps the length the downstream announced.
        (Framing::Empty, Some(cl)) => out.extend_from_slice(a.part(cl)),
        _ => out.extend_from_slice(num.format(h.body_len).as_bytes()),
    }
    // The downstream's entries that fit, and the sum of their durations.
    let mut entries = [0u8; MAX_FORWARD_TIMING];
    let mut len = 0usize;
    let mut sum_ns = 0u64;
    let mut truncated = h.timing_dropped;
    for &line in &h.timing[..h.timing_lines] {
        if truncated {
            break;
        }
        split_outside_quotes(a.part(line), b',', |e| {
            let e = trim_ows(e);
            if e.is_empty() {
                return true;
            }
            let sep = if len == 0 { 0 } else { 2 };
            if len + sep + e.len() > MAX_FORWARD_TIMING {
                truncated = true;
                return false;
            }
            if sep > 0 {
                entries[len..len + 2].copy_from_slice(b", ");
            }
            entries[len + sep..len + sep + e.len()].copy_from_slice(e);
            len += sep + e.len();
            sum_ns = sum_ns.saturating_add(entry_dur_ns(e));
            true
        });
    }
    out.extend_from_slice(b"\r\n");
    crate::http::write_server_timing(out, own);
    out.extend_from_slice(b", hop;dur=");
    crate::http::put_ms(out, hop_ns.saturating_sub(sum_ns));
    if len > 0 {
        out.extend_from_slice(b", ");
        out.extend_from_slice(&entries[..len]);
    }
    crate::http::end_head(out, conn);
    if !head_only {
        a.write_body(out);
    }
    Relayed { truncated }
}

/// Appends the 502 or 504 answer of a forwarded request that got no downstream answer, with this
/// station's own `Server-Timing`.
pub(crate) fn write_fault(
    out: &mut Vec<u8>,
    date: &[u8; 29],
    fault: Fault,
    own: ServerTiming,
    conn: ConnHeader,
    head_only: bool,
) {
    let body = fault.body();
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(fault.status_line());
    out.extend_from_slice(b"Server: ");
    out.extend_from_slice(SERVER_NAME.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
    out.extend_from_slice(num.format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    crate::http::write_server_timing(out, own);
    crate::http::end_head(out, conn);
    if !head_only {
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Option<(AnswerHead, usize, usize)>, Fault> {
        let Some(h) = parse_answer_head(raw, false)? else {
            return Ok(None);
        };
        let end = match h.framing {
            Framing::Empty => Some((h.head_len, 0)),
            Framing::Length(n) => (raw.len() >= h.head_len + n).then_some((h.head_len + n, n)),
            Framing::Chunked => chunked_end(raw, h.head_len)?,
            Framing::UntilClose => Some((raw.len(), raw.len() - h.head_len)),
        };
        Ok(end.map(|(e, b)| (h, e, b)))
    }

    #[test]
    fn answers_framed_by_length_and_chunks() {
        let (h, end, body) = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
            .expect("parses")
            .expect("complete");
        assert_eq!((h.status, end, body, h.close), (200, 41, 3, false));
        let raw = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n";
        let (h, end, body) = parse(raw).expect("parses").expect("complete");
        assert_eq!((h.status, end, body), (201, raw.len(), 5));
        let mut out = Vec::new();
        Answer {
            buf: raw,
            head: AnswerHead {
                end,
                body_len: body,
                ..h
            },
        }
        .write_body(&mut out);
        assert_eq!(out, b"abcde");
        // Incomplete chunked and length bodies ask for more.
        assert!(parse(&raw[..raw.len() - 2]).expect("parses").is_none());
        assert!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab")
                .expect("parses")
                .is_none()
        );
        assert!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Len")
                .expect("parses")
                .is_none()
        );
    }

    #[test]
    fn garbage_and_oversized_answers_are_faults() {
        let cases: &[(&[u8], Fault)] = &[
            (b"HELLO\r\n\r\n", Fault::Parse),
            (b"HTTP/1.1 100 Continue\r\n\r\n", Fault::Parse),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
                Fault::Parse,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                Fault::Parse,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                Fault::Parse,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                Fault::Parse,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
                Fault::TooLarge,
            ),
        ];
        for &(raw, want) in cases {
            assert_eq!(
                parse(raw).err(),
                Some(want),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let big = vec![b'a'; MAX_HEAD_BYTES + 10];
        let mut raw = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        raw.extend_from_slice(&big);
        assert_eq!(parse(&raw).err(), Some(Fault::TooLarge));
        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        chunked.extend_from_slice(format!("{:x}\r\n", MAX_FORWARD_BODY + 1).as_bytes());
        chunked.extend_from_slice(&vec![b'x'; MAX_FORWARD_BODY + 1]);
        chunked.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(parse(&chunked).err(), Some(Fault::TooLarge));
    }

    #[test]
    fn durations_are_read_as_qload_reads_them() {
        assert_eq!(dur_ns(b"0.412"), Some(412_000));
        assert_eq!(dur_ns(b"12"), Some(12_000_000));
        assert_eq!(dur_ns(b"0.0000005"), Some(1));
        assert_eq!(dur_ns(b"1."), None);
        assert_eq!(dur_ns(b"-1"), None);
        assert_eq!(entry_dur_ns(b"wait;dur=1.5"), 1_500_000);
        assert_eq!(entry_dur_ns(b"x;desc=\"a;dur=9\";dur=2"), 2_000_000);
        assert_eq!(entry_dur_ns(b"class;desc=1"), 0);
    }

    fn relay(timing_lines: &[&str], hop_ns: u64) -> (String, Relayed) {
        let mut raw =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n".to_vec();
        for l in timing_lines {
            raw.extend_from_slice(format!("Server-Timing: {l}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\nok");
        let (h, end, body) = parse(&raw).expect("parses").expect("complete");
        let a = Answer {
            buf: &raw,
            head: AnswerHead {
                end,
                body_len: body,
                ..h
            },
        };
        let own = ServerTiming {
            wait_ns: 1_000_000,
            service_ns: 2_000_000,
            late_ns: 0,
            class: None,
        };
        let mut out = Vec::new();
        let r = write_answer(
            &mut out,
            &[b'D'; 29],
            &a,
            own,
            hop_ns,
            ConnHeader::Default,
            false,
        );
        (String::from_utf8(out).expect("ASCII"), r)
    }

    /// The hop is reported net of the downstream's durations, so the sum of every `dur` is this
    /// station's own time: wait + service + late + the whole hop.
    #[test]
    fn relayed_timing_sums_to_the_station_time() {
        let (s, r) = relay(
            &["wait;dur=0.500, service;dur=1.250", "late;dur=0.010"],
            5_000_000,
        );
        assert!(!r.truncated);
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"), "{s}");
        assert!(
            s.contains("\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"),
            "{s}"
        );
        assert!(
            s.contains(
                "Server-Timing: wait;dur=1.000, service;dur=2.000, late;dur=0.000, hop;dur=3.240, \
             wait;dur=0.500, service;dur=1.250, late;dur=0.010\r\n"
            ),
            "{s}"
        );
        assert!(s.ends_with("\r\n\r\nok"), "{s}");
    }

    #[test]
    fn long_downstream_timing_is_cut_at_an_entry() {
        let entry = "x;dur=1.000";
        let line = vec![entry; 200].join(", ");
        let (s, r) = relay(&[&line], 1_000_000_000);
        assert!(r.truncated);
        let st = s
            .lines()
            .find(|l| l.starts_with("Server-Timing: "))
            .expect("a Server-Timing line");
        let kept = st.matches(entry).count();
        // Each entry takes 13 bytes with its separator; the first needs no separator.
        assert_eq!(kept, (MAX_FORWARD_TIMING + 2) / (entry.len() + 2));
        // hop = 1000 ms minus the kept entries' 1 ms each.
        assert!(
            st.contains(&format!("hop;dur={}.000, x", 1000 - kept)),
            "{st}"
        );
        assert!(st.ends_with(entry));
    }
}
