//! HTTP/1.1 request reading and response writing, without I/O.
//!
//! [`RequestReader`] turns the bytes of one connection, in whatever pieces they arrive, into a
//! sequence of request heads: it skips each request's body (framed by `Content-Length` only) and
//! parses the next head with `httparse` into a fixed array of [`MAX_HEADERS`] headers. A head that
//! is still incomplete asks for more bytes, up to [`MAX_HEAD_BYTES`].
//!
//! Input that cannot be served is a [`Reject`], answered with a canned response and a close:
//!
//! | status | when |
//! |---|---|
//! | 400 | malformed request line or header (also obs-fold continuation lines, whitespace before a colon, and a line ending in a bare LF); HTTP/1.1 without `Host`, or more than one `Host`; an invalid or conflicting `Content-Length`; `Content-Length` together with `Transfer-Encoding`; `Transfer-Encoding` in an HTTP/1.0 request; control bytes in a header value |
//! | 400 | an `X-Priority` that is not a class `0` to `MAX_CLASSES − 1` (7), or repeated with different values ([`Reject::BadPriority`], its own reason and metric label) |
//! | 408 | the head did not arrive within `--header-timeout` (decided by the connection, not here) |
//! | 413 | `Content-Length` above [`MAX_REQUEST_BODY`] |
//! | 431 | head larger than [`MAX_HEAD_BYTES`], or more than [`MAX_HEADERS`] header fields |
//! | 501 | `Transfer-Encoding` (chunked request bodies are not implemented) |
//! | 505 | a well-formed version other than HTTP/1.0 and HTTP/1.1 (e.g. `HTTP/2.0`) |
//!
//! `X-Priority: N` names the request's priority class (class 0 the highest): a decimal integer
//! below [`MAX_CLASSES`], optionally surrounded by whitespace; repeated, every value must be the
//! same. It is read from the headers httparse has already split, without allocation, into
//! [`Head::class`]; without it the queue draws the class from `--classes`.
//!
//! Responses are written into a reused buffer from fixed byte strings, the cached `Date` and
//! numbers formatted with `itoa`: no allocation once the buffer has grown to its working size.
//! Answers that went through the queue also carry a `Server-Timing` header
//! ([`write_server_timing`]): how long the request waited, was served, and how late its answer
//! was rendered, so that a client can tell the server's time from the path's.
use queuelab_common::http::{MAX_HEAD_BYTES, MAX_HEADERS, MAX_REQUEST_BODY, SERVER_NAME};
use queuelab_common::model::MAX_CLASSES;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Through the queue (every path but the two below).
    Queue,
    /// `/metrics`: Prometheus text, bypassing the queue.
    Metrics,
    /// `/healthz`: `ok`, bypassing the queue.
    Healthz,
}

/// What the server needs to know about a parsed request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// Body length in bytes (0 without `Content-Length`).
    pub content_length: u64,
    /// The route of the request target.
    pub route: Route,
    /// A `HEAD` request: the response has headers only.
    pub head_only: bool,
    /// An HTTP/1.1 request with a body and `Expect: 100-continue`: the client waits for an
    /// interim `100 Continue` before sending the body.
    pub expect_continue: bool,
    /// The priority class named by `X-Priority` (below [`MAX_CLASSES`]), `None` without one.
    pub class: Option<u8>,
}

impl Head {
    /// The `Connection` header the response needs.
    pub fn connection(&self) -> ConnHeader {
        match (self.keep_alive, self.minor_version) {
            (false, _) => ConnHeader::Close,
            (true, 0) => ConnHeader::KeepAlive,
            (true, _) => ConnHeader::Default,
        }
    }
}

/// Input that gets a canned error response and a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// 400: malformed or ambiguous.
    BadRequest,
    /// 408: the head was too slow.
    Timeout,
    /// 413: the body is over the limit.
    ContentTooLarge,
    /// 431: the head is over the limit (size or header count).
    HeadTooLarge,
    /// 501: `Transfer-Encoding` is not implemented.
    NotImplemented,
    /// 505: an HTTP version other than 1.0 and 1.1.
    VersionNotSupported,
    /// 400: an `X-Priority` that is not a class below [`MAX_CLASSES`], or two that differ.
    BadPriority,
}

impl Reject {
    /// How many kinds there are (the length of per-kind counters).
    pub const COUNT: usize = 7;

    /// All kinds, in the order of [`Reject::index`].
    pub const ALL: [Reject; Reject::COUNT] = [
        Reject::BadRequest,
        Reject::Timeout,
        Reject::ContentTooLarge,
        Reject::HeadTooLarge,
        Reject::NotImplemented,
        Reject::VersionNotSupported,
        Reject::BadPriority,
    ];

    /// The status code.
    pub fn status(self) -> u16 {
        match self {
            Reject::BadRequest => 400,
            Reject::Timeout => 408,
            Reject::ContentTooLarge => 413,
            Reject::HeadTooLarge => 431,
            Reject::NotImplemented => 501,
            Reject::VersionNotSupported => 505,
            Reject::BadPriority => 400,
        }
    }

    /// A dense index for counters (position in [`Reject::ALL`]).
    pub fn index(self) -> usize {
        match self {
            Reject::BadRequest => 0,
            Reject::Timeout => 1,
            Reject::ContentTooLarge => 2,
            Reject::HeadTooLarge => 3,
            Reject::NotImplemented => 4,
            Reject::VersionNotSupported => 5,
            Reject::BadPriority => 6,
        }
    }

    fn status_line(self) -> &'static [u8] {
        match self {
            Reject::BadRequest => b"HTTP/1.1 400 Bad Request\r\n",
            Reject::Timeout => b"HTTP/1.1 408 Request Timeout\r\n",
            Reject::ContentTooLarge => b"HTTP/1.1 413 Content Too Large\r\n",
            Reject::HeadTooLarge => b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            Reject::NotImplemented => b"HTTP/1.1 501 Not Implemented\r\n",
            Reject::VersionNotSupported => b"HTTP/1.1 505 HTTP Version Not Supported\r\n",
            Reject::BadPriority => b"HTTP/1.1 400 Bad Request\r\n",
        }
    }

    fn body(self) -> &'static [u8] {
        match self {
            Reject::BadRequest => b"bad request\n",
            Reject::Timeout => b"request head timed out\n",
            Reject::ContentTooLarge => b"request body too large\n",
            Reject::HeadTooLarge => b"request head too large\n",
            Reject::NotImplemented => b"transfer-encoding not implemented\n",
            Reject::VersionNotSupported => b"http version not supported\n",
            Reject::BadPriority => b"invalid X-Priority: expected one class 0 to 7\n",
        }
    }
}

/// One step of [`RequestReader::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A complete head; its body (if any) is skipped by later calls.
    Request(Head),
    /// Everything usable was consumed; call again with more bytes.
    NeedMore,
    /// The input cannot be served: answer and close.
    Reject(Reject),
}

/// Splits one connection's byte stream into request heads; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct RequestReader {
    body_left: u64,
}

impl RequestReader {
    /// A reader at the start of a connection.
    pub fn new() -> Self {
        RequestReader { body_left: 0 }
    }

    /// Bytes of the current request's body still to skip.
    pub fn body_left(&self) -> u64 {
        self.body_left
    }

    /// Consumes bytes from the front of `buf`: first what is left of the previous request's body,
    /// then at most one head. Returns the number of bytes consumed and what was found. After
    /// [`Parsed::NeedMore`] the unconsumed bytes (a partial head) must be offered again, with more
    /// appended.
    pub fn next(&mut self, buf: &[u8]) -> (usize, Parsed) {
        let skip = self.body_left.min(buf.len() as u64) as usize;
        self.body_left -= skip as u64;
        if self.body_left > 0 || skip == buf.len() {
            return (skip, Parsed::NeedMore);
        }
        match parse_head(&buf[skip..]) {
            Ok(Some((len, head))) => {
                self.body_left = head.content_length;
                (skip + len, Parsed::Request(head))
            }
            Ok(None) if buf.len() - skip >= MAX_HEAD_BYTES => {
                (skip, Parsed::Reject(Reject::HeadTooLarge))
            }
            Ok(None) => (skip, Parsed::NeedMore),
            Err(r) => (skip, Parsed::Reject(r)),
        }
    }
}

/// Parses one head at the start of `buf`: `Ok(None)` if incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, Reject> {
    // Uninitialized header slots: initializing 64 of them (2 KiB) would cost more than parsing a
    // typical head.
    let mut headers =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD_BYTES => Err(Reject::HeadTooLarge),
        Ok(httparse::Status::Complete(len)) if has_bare_lf(&buf[..len]) => Err(Reject::BadRequest),
        Ok(httparse::Status::Complete(len)) => analyse(&req).map(|h| Some((len, h))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(Reject::HeadTooLarge),
        Err(httparse::Error::Version) => Err(classify_version(buf)),
        Err(_) => Err(Reject::BadRequest),
    }
}

/// Whether a head has a line ending in a bare LF (not preceded by CR).
///
/// RFC 9112 §2.2 lets a recipient accept a bare LF as a line terminator, and httparse does. qserve
/// refuses it (400): a front end that ends lines only at CRLF would read `Host: a\nContent-Length:
/// 5` as one field where qserve reads two, which is how request smuggling starts. Every client
/// worth measuring sends CRLF. (A bare CR is already refused by httparse.)
fn has_bare_lf(head: &[u8]) -> bool {
    let Some((&first, rest)) = head.split_first() else {
        return false;
    };
    // Each byte against the one before it, folded branch-free over integers so that it
    // vectorizes: 10-15 ns for a typical head (a `windows(2)` boolean fold took ~1 ns a byte).
    let bare = rest.iter().zip(head).fold(0u8, |acc, (&c, &prev)| {
        acc | (u8::from(c == b'\n') & u8::from(prev != b'\r'))
    });
    first == b'\n' || bare != 0
}

/// A version that httparse refused: 505 if it is a well-formed `HTTP/x.y` (or `HTTP/x`), else 400.
fn classify_version(buf: &[u8]) -> Reject {
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = buf[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[..line_end]);
    let token = line.rsplit(|&b| b == b' ').next().unwrap_or(&[]);
    let Some(rest) = token.strip_prefix(b"HTTP/") else {
        return Reject::BadRequest;
    };
    let mut parts = rest.splitn(2, |&b| b == b'.');
    let major_ok = parts
        .next()
        .is_some_and(|m| !m.is_empty() && m.iter().all(u8::is_ascii_digit));
    let minor_ok = parts
        .next()
        .is_none_or(|m| !m.is_empty() && m.iter().all(u8::is_ascii_digit));
    if major_ok && minor_ok {
        Reject::VersionNotSupported
    } else {
        Reject::BadRequest
    }
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

// The reason of `Reject::BadPriority` spells the range out.
const _: () = assert!(MAX_CLASSES == 8, "update the X-Priority reason");

/// An `X-Priority` value (already trimmed): a decimal class below [`MAX_CLASSES`]. Leading zeros
/// are allowed (`007` is 7); at most three digits, so the arithmetic cannot overflow.
fn parse_class(v: &[u8]) -> Option<u8> {
    if v.is_empty() || v.len() > 3 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = v.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    (usize::from(n) < MAX_CLASSES).then_some(n as u8)
}

/// A `Content-Length` element: 1 to 19 decimal digits.
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

fn route_of(target: &str) -> Route {
    let path = target.split(['?', '#']).next().unwrap_or(target);
    match path {
        "/metrics" => Route::Metrics,
        "/healthz" => Route::Healthz,
        _ => Route::Queue,
    }
}

/// Checks a complete head and extracts what the server needs.
fn analyse(req: &httparse::Request<'_, '_>) -> Result<Head, Reject> {
    let minor_version = match req.version {
        Some(v @ (0 | 1)) => v,
        _ => return Err(Reject::VersionNotSupported),
    };
    let mut hosts = 0u32;
    let mut length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut close = false;
    let mut keep_alive = false;
    let mut expect_continue = false;
    let mut class: Option<u8> = None;
    for h in req.headers.iter() {
        if h.value
            .iter()
            .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err(Reject::BadRequest);
        }
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("content-length") {
            // A list of identical values (or repeated identical headers) is one length (RFC 9110
            // §8.6); anything else is ambiguous framing.
            for part in h.value.split(|&b| b == b',') {
                let v = parse_length(trim_ows(part)).ok_or(Reject::BadRequest)?;
                match length {
                    Some(prev) if prev != v => return Err(Reject::BadRequest),
                    _ => length = Some(v),
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
        } else if name.eq_ignore_ascii_case("x-priority") {
            // Repeated, it must say the same thing each time: two classes for one request is
            // ambiguous, and which one a proxy in front kept is anyone's guess.
            let v = parse_class(trim_ows(h.value)).ok_or(Reject::BadPriority)?;
            match class {
                Some(prev) if prev != v => return Err(Reject::BadPriority),
                _ => class = Some(v),
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = trim_ows(h.value).eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = trim_ows(token);
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    if hosts > 1 || (minor_version == 1 && hosts == 0) {
        return Err(Reject::BadRequest);
    }
    if transfer_encoding {
        // Both framings at once is the classic smuggling shape (RFC 9112 §6.3); HTTP/1.0 has no
        // transfer codings. Otherwise a chunked body is simply not implemented.
        return Err(if length.is_some() || minor_version == 0 {
            Reject::BadRequest
        } else {
            Reject::NotImplemented
        });
    }
    let content_length = length.unwrap_or(0);
    if content_length > MAX_REQUEST_BODY as u64 {
        return Err(Reject::ContentTooLarge);
    }
    Ok(Head {
        minor_version,
        keep_alive: if minor_version == 1 {
            !close
        } else {
            keep_alive && !close
        },
        content_length,
        route: route_of(req.path.unwrap_or("/")),
        head_only: req.method == Some("HEAD"),
        expect_continue: expect_continue && minor_version == 1 && content_length > 0,
        class,
    })
}

/// The `Connection` header of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnHeader {
    /// None: HTTP/1.1 persistence is the default.
    Default,
    /// `Connection: keep-alive` (an HTTP/1.0 client asked for it).
    KeepAlive,
    /// `Connection: close`: the server closes after this response.
    Close,
}

/// What the queue said about a request, as the response reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// 503: the system held `K` requests.
    Capacity,
    /// 503: the system held the overflow limit (no capacity set).
    Overflow,
    /// 503: the server is shutting down.
    ShuttingDown,
}

const SERVER_LINE: &[u8] = b"Server: ";
const JSON: &[u8] = b"application/json";
const TEXT: &[u8] = b"text/plain; charset=utf-8";
/// Content type of `/metrics` (Prometheus text exposition format 0.0.4).
pub const PROMETHEUS_TEXT: &[u8] = b"text/plain; version=0.0.4; charset=utf-8";

/// Appends a complete response.
pub fn write_response(
    out: &mut Vec<u8>,
    status_line: &[u8],
    date: &[u8; 29],
    content_type: &[u8],
    body: &[u8],
    conn: ConnHeader,
    head_only: bool,
) {
    start_head(out, status_line, date, content_type, body.len());
    end_head(out, conn);
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// Appends a response head up to the `Content-Length` value (no line end), so that a caller may
/// add header fields of its own before [`end_head`].
fn start_head(
    out: &mut Vec<u8>,
    status_line: &[u8],
    date: &[u8; 29],
    content_type: &[u8],
    body_len: usize,
) {
    let mut len = itoa::Buffer::new();
    out.extend_from_slice(status_line);
    out.extend_from_slice(SERVER_LINE);
    out.extend_from_slice(SERVER_NAME.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type);
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(len.format(body_len).as_bytes());
}

/// Ends the last header field of a head and the head itself.
pub(crate) fn end_head(out: &mut Vec<u8>, conn: ConnHeader) {
    out.extend_from_slice(match conn {
        ConnHeader::Default => b"\r\n\r\n".as_slice(),
        ConnHeader::KeepAlive => b"\r\nConnection: keep-alive\r\n\r\n",
        ConnHeader::Close => b"\r\nConnection: close\r\n\r\n",
    });
}

/// Nanoseconds to whole microseconds, rounded to nearest.
fn us(ns: u64) -> u64 {
    ns.saturating_add(500) / 1000
}

/// Where the time of a queued answer went, in nanoseconds on the server's clock: what its
/// `Server-Timing` header reports (see [`write_server_timing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerTiming {
    /// Queueing: service start minus arrival.
    pub wait_ns: u64,
    /// The service time drawn at arrival.
    pub service_ns: u64,
    /// The clock when the answer was rendered minus its departure time: how late the departure
    /// timer (and the loop turn that rendered it) was. 0 for an answer that is not queued.
    pub late_ns: u64,
    /// The request's priority class, named after the durations when the model has several
    /// classes or serves by class (`None`: not named).
    pub class: Option<u8>,
}

/// Appends `value` ns as milliseconds with exactly three decimals, rounded to the nearest
/// microsecond: 999 ns is `0.001`, 1 s is `1000.000`. Integer arithmetic and `itoa` only, so it
/// neither allocates (beyond `out`'s growth) nor depends on float formatting.
pub(crate) fn put_ms(out: &mut Vec<u8>, ns: u64) {
    let us = us(ns);
    let frac = us % 1000;
    let mut int = itoa::Buffer::new();
    out.extend_from_slice(int.format(us / 1000).as_bytes());
    // `frac` < 1000: three digits, leading zeros kept.
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

/// Appends the `Server-Timing` header field of a queued answer without its line end:
/// `Server-Timing: wait;dur=0.412, service;dur=1.187, late;dur=0.003` (W3C Server Timing; the
/// durations are milliseconds, three decimals, each rounded to the nearest microsecond on its
/// own, so their sum may differ from the rounded total by up to 1.5 µs). A client subtracts
/// their sum from the latency it measured to get what the path (network, kernels, both
/// programs) added.
///
/// With [`ServerTiming::class`] set, the class follows as a fourth metric without a duration,
/// `…, late;dur=0.003, class;desc=1`: a client that sums durations finds none there, and one
/// that sorts answers by class reads it from `desc`.
pub fn write_server_timing(out: &mut Vec<u8>, t: ServerTiming) {
    out.extend_from_slice(b"Server-Timing: wait;dur=");
    put_ms(out, t.wait_ns);
    out.extend_from_slice(b", service;dur=");
    put_ms(out, t.service_ns);
    out.extend_from_slice(b", late;dur=");
    put_ms(out, t.late_ns);
    if let Some(class) = t.class {
        let mut n = itoa::Buffer::new();
        out.extend_from_slice(b", class;desc=");
        out.extend_from_slice(n.format(class).as_bytes());
    }
}

/// Appends the `Server-Timing` field of a network's answer without its line end: each visit in
/// order as two metrics named after its station, `NAME.wait` and `NAME.service` (a dot is a
/// token character), then, past [`crate::network::MAX_VISITS`] visits, the later ones summed as
/// `rest;dur=…;desc=N` (N visits), then `late`, and last, given `class`, `class;desc=N` (as a
/// single queue's, without a duration):
/// `Server-Timing: web.wait;dur=0.120, web.service;dur=0.910, db.wait;dur=0.000, …, late;dur=0.004`.
/// At most 16 durations, so a client that keeps 16 (qload) sums them all: their sum is the
/// request's sojourn in the network (every wait and service) plus `late`, to the rounding of
/// each to the microsecond. A visit's wait is its sojourn there less its service (under PS and
/// preemption, the time not served).
pub fn write_network_timing(
    out: &mut Vec<u8>,
    route: &crate::network::Route,
    stations: &[queuelab_common::network::Station],
    late_ns: u64,
    class: Option<u8>,
) {
    out.extend_from_slice(b"Server-Timing: ");
    for v in route.kept() {
        let name = stations
            .get(usize::from(v.station))
            .map_or(&b"station"[..], |s| s.name.as_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(b".wait;dur=");
        put_ms(out, v.start_ns - v.arrive_ns);
        out.extend_from_slice(b", ");
        out.extend_from_slice(name);
        out.extend_from_slice(b".service;dur=");
        put_ms(out, v.service_ns);
        out.extend_from_slice(b", ");
    }
    let kept = route.kept().len() as u32;
    if route.n_visits > kept {
        out.extend_from_slice(b"rest;dur=");
        put_ms(out, route.rest_wait_ns + route.rest_service_ns);
        let mut n = itoa::Buffer::new();
        out.extend_from_slice(b";desc=");
        out.extend_from_slice(n.format(route.n_visits - kept).as_bytes());
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(b"late;dur=");
    put_ms(out, late_ns);
    if let Some(class) = class {
        let mut n = itoa::Buffer::new();
        out.extend_from_slice(b", class;desc=");
        out.extend_from_slice(n.format(class).as_bytes());
    }
}

/// What the `Server-Timing` of a network's answer reports (see [`write_network_timing`]).
#[derive(Debug, Clone, Copy)]
pub struct NetworkTiming<'a> {
    /// The request's route.
    pub route: &'a crate::network::Route,
    /// The network's stations (their names).
    pub stations: &'a [queuelab_common::network::Station],
    /// The answer's lateness (ns).
    pub late_ns: u64,
    /// The class, when the answers name it.
    pub class: Option<u8>,
}

/// Appends the `200` answer of a request that exited a network:
/// `{"wait_us":W,"service_us":S,"visits":N}` (W and S summed over its visits), with the
/// `Server-Timing` of [`write_network_timing`]; `HEAD` gets the same head.
pub fn write_network_served(
    out: &mut Vec<u8>,
    date: &[u8; 29],
    t: NetworkTiming<'_>,
    conn: ConnHeader,
    head_only: bool,
) {
    let route = t.route;
    let service: u64 =
        route.kept().iter().map(|v| v.service_ns).sum::<u64>() + route.rest_service_ns;
    let wait = route.sojourn_ns() - service;
    let mut body = [0u8; 96];
    let mut n = 0;
    let mut put = |s: &[u8]| {
        body[n..n + s.len()].copy_from_slice(s);
        n += s.len();
    };
    let mut num = itoa::Buffer::new();
    put(b"{\"wait_us\":");
    put(num.format(us(wait)).as_bytes());
    put(b",\"service_us\":");
    put(num.format(us(service)).as_bytes());
    put(b",\"visits\":");
    put(num.format(route.n_visits).as_bytes());
    put(b"}\n");
    start_head(out, b"HTTP/1.1 200 OK\r\n", date, JSON, n);
    out.extend_from_slice(b"\r\n");
    write_network_timing(out, route, t.stations, t.late_ns, t.class);
    end_head(out, conn);
    if !head_only {
        out.extend_from_slice(&body[..n]);
    }
}

/// Appends the `200` answer of a served request: `{"wait_us":W,"service_us":S}`, with the
/// `Server-Timing` header of `t` (see [`write_server_timing`]); `HEAD` gets the same head.
pub fn write_served(
    out: &mut Vec<u8>,
    date: &[u8; 29],
    t: ServerTiming,
    conn: ConnHeader,
    head_only: bool,
) {
    let mut body = [0u8; 64];
    let mut n = 0;
    let mut put = |s: &[u8]| {
        body[n..n + s.len()].copy_from_slice(s);
        n += s.len();
    };
    let mut num = itoa::Buffer::new();
    put(b"{\"wait_us\":");
    put(num.format(us(t.wait_ns)).as_bytes());
    put(b",\"service_us\":");
    put(num.format(us(t.service_ns)).as_bytes());
    put(b"}\n");
    start_head(out, b"HTTP/1.1 200 OK\r\n", date, JSON, n);
    out.extend_from_slice(b"\r\n");
    write_server_timing(out, t);
    end_head(out, conn);
    if !head_only {
        out.extend_from_slice(&body[..n]);
    }
}

/// Appends a `503` answer.
pub fn write_unavailable(
    out: &mut Vec<u8>,
    date: &[u8; 29],
    why: Unavailable,
    conn: ConnHeader,
    head_only: bool,
) {
    let body: &[u8] = match why {
        Unavailable::Capacity => b"{\"error\":\"capacity\"}\n",
        Unavailable::Overflow => b"{\"error\":\"overflow\"}\n",
        Unavailable::ShuttingDown => b"{\"error\":\"shutting down\"}\n",
    };
    write_response(
        out,
        b"HTTP/1.1 503 Service Unavailable\r\n",
        date,
        JSON,
        body,
        conn,
        head_only,
    );
}

/// Appends the `500` answer of a queued request the queue model no longer knew when its
/// departure came (it never should: a ticket is only forgotten when its connection closes).
pub fn write_internal_error(out: &mut Vec<u8>, date: &[u8; 29], conn: ConnHeader, head_only: bool) {
    write_response(
        out,
        b"HTTP/1.1 500 Internal Server Error\r\n",
        date,
        JSON,
        b"{\"error\":\"internal\"}\n",
        conn,
        head_only,
    );
}

/// Appends the canned answer of a [`Reject`] (always with `Connection: close`).
pub fn write_reject(out: &mut Vec<u8>, date: &[u8; 29], r: Reject) {
    write_response(
        out,
        r.status_line(),
        date,
        TEXT,
        r.body(),
        ConnHeader::Close,
        false,
    );
}

/// Appends the `/healthz` answer.
pub fn write_healthz(out: &mut Vec<u8>, date: &[u8; 29], conn: ConnHeader, head_only: bool) {
    write_response(
        out,
        b"HTTP/1.1 200 OK\r\n",
        date,
        TEXT,
        b"ok\n",
        conn,
        head_only,
    );
}

/// Appends a `200` answer with a Prometheus text body.
pub fn write_metrics(
    out: &mut Vec<u8>,
    date: &[u8; 29],
    body: &[u8],
    conn: ConnHeader,
    head_only: bool,
) {
    write_response(
        out,
        b"HTTP/1.1 200 OK\r\n",
        date,
        PROMETHEUS_TEXT,
        body,
        conn,
        head_only,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Option<Head>, Reject> {
        parse_head(raw.as_bytes()).map(|o| o.map(|(_, h)| h))
    }

    #[test]
    fn valid_heads() {
        let get = Head {
            minor_version: 1,
            keep_alive: true,
            content_length: 0,
            route: Route::Queue,
            head_only: false,
            expect_continue: false,
            class: None,
        };
        let cases: &[(&str, Head)] = &[
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", get),
            ("GET /x?y HTTP/1.1\r\nHost: a\r\n\r\n", get),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                Head {
                    keep_alive: false,
                    ..get
                },
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n",
                Head {
                    keep_alive: false,
                    ..get
                },
            ),
            (
                "GET / HTTP/1.0\r\n\r\n",
                Head {
                    minor_version: 0,
                    keep_alive: false,
                    ..get
                },
            ),
            (
                "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                Head {
                    minor_version: 0,
                    ..get
                },
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
                Head {
                    content_length: 5,
                    ..get
                },
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
                Head {
                    content_length: 5,
                    ..get
                },
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7 , 7\r\n\r\n",
                Head {
                    content_length: 7,
                    ..get
                },
            ),
            (
                "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n",
                Head {
                    route: Route::Metrics,
                    ..get
                },
            ),
            (
                "HEAD /healthz?full HTTP/1.1\r\nHost: a\r\n\r\n",
                Head {
                    route: Route::Healthz,
                    head_only: true,
                    ..get
                },
            ),
            ("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", get),
            (
                "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
                Head {
                    content_length: 3,
                    expect_continue: true,
                    ..get
                },
            ),
            // No body, nothing to wait for.
            (
                "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
                get,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX-Priority: 0\r\n\r\n",
                Head {
                    class: Some(0),
                    ..get
                },
            ),
            // Any case of the name, whitespace around the value, leading zeros, the same value
            // twice, on any route.
            (
                "GET / HTTP/1.1\r\nHost: a\r\nx-priority: \t7 \r\n\r\n",
                Head {
                    class: Some(7),
                    ..get
                },
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX-PRIORITY:003\r\nX-Priority: 3\r\n\r\n",
                Head {
                    class: Some(3),
                    ..get
                },
            ),
            (
                "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Priority: 1\r\n\r\n",
                Head {
                    route: Route::Healthz,
                    class: Some(1),
                    ..get
                },
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(head(raw), Ok(Some(*want)), "{raw:?}");
        }
    }

    #[test]
    fn rejected_heads() {
        let long_header = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "y".repeat(9000)
        );
        let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
        let too_many = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
        let cases: &[(&str, Reject)] = &[
            ("GET / HTTP/1.1\r\n\r\n", Reject::BadRequest),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                Reject::BadRequest,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                Reject::BadRequest,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n",
                Reject::BadRequest,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
                Reject::BadRequest,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
                Reject::BadRequest,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
                Reject::BadRequest,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
                Reject::BadRequest,
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                Reject::BadRequest,
            ),
            (
                "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                Reject::BadRequest,
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                Reject::NotImplemented,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
                Reject::BadRequest,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n",
                Reject::BadRequest,
            ),
            ("GET / HTTP/1.1\r\nHo st: a\r\n\r\n", Reject::BadRequest),
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", Reject::BadRequest),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
                Reject::BadRequest,
            ),
            ("GET / HTTP/1.1\nHost: a\n\n", Reject::BadRequest),
            ("GET / HTTP/1.1\r\nHost: a\n\r\n", Reject::BadRequest),
            ("GET / HTTP/1.1\r\nHost: a\r\n\n", Reject::BadRequest),
            ("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Reject::BadRequest),
            (
                "POST / HTTP/1.1\r\nHost: a\nContent-Length: 5\r\n\r\n",
                Reject::BadRequest,
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\rContent-Length: 5\r\n\r\n",
                Reject::BadRequest,
            ),
            ("GET\x00 / HTTP/1.1\r\nHost: a\r\n\r\n", Reject::BadRequest),
            (
                "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
                Reject::VersionNotSupported,
            ),
            (
                "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
                Reject::VersionNotSupported,
            ),
            ("GET / HTTP/3\r\n\r\n", Reject::VersionNotSupported),
            ("GET / http/1.1\r\n\r\n", Reject::BadRequest),
            ("GET / FOO\r\n\r\n", Reject::BadRequest),
            (
                &format!(
                    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
                    MAX_REQUEST_BODY + 1
                ),
                Reject::ContentTooLarge,
            ),
            (&long_header, Reject::HeadTooLarge),
            (&too_many, Reject::HeadTooLarge),
            // X-Priority: not a number, out of range, signed, fractional, a list, empty, too
            // many digits, or two different classes.
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX-Priority: high\r\n\r\n",
                Reject::BadPriority,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX-Priority: 8\r\n\r\n",
                Reject::BadPriority,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX-Priority: 256\r\n\r\n",
                Reject::BadPriority,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX-Priority: -1\r\n\r\n",
                Reject::BadPriority,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX-Priority: +1\r\n\r\n",
                Reject::BadPriority,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX-Priority: 1.0\r\n\r\n",
                Reject::BadPriority,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX-Priority: 1, 1\r\n\r\n",
                Reject::BadPriority,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX-Priority: \r\n\r\n",
                Reject::BadPriority,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX-Priority: 0001\r\n\r\n",
                Reject::BadPriority,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nX-Priority: 1\r\nX-Priority: 2\r\n\r\n",
                Reject::BadPriority,
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(head(raw), Err(*want), "{raw:?}");
        }
    }

    #[test]
    fn partial_heads_ask_for_more() {
        for raw in [
            "",
            "GET",
            "GET / HTTP/1.1\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n",
        ] {
            assert_eq!(head(raw), Ok(None), "{raw:?}");
        }
    }

    #[test]
    fn reader_skips_bodies_and_splits_pipelines() {
        let stream = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbodyGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
        // Feed the stream one byte at a time, as the slowest possible peer would.
        let mut reader = RequestReader::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut heads = Vec::new();
        for &b in stream.iter() {
            pending.push(b);
            loop {
                let (used, parsed) = reader.next(&pending);
                pending.drain(..used);
                match parsed {
                    Parsed::Request(h) => heads.push(h),
                    Parsed::NeedMore => break,
                    Parsed::Reject(r) => panic!("unexpected reject {r:?}"),
                }
            }
        }
        assert!(pending.is_empty());
        assert_eq!(heads.len(), 2);
        assert_eq!(heads[0].content_length, 4);
        assert_eq!(heads[1].content_length, 0);
    }

    #[test]
    fn reader_rejects_a_partial_head_at_the_limit() {
        let mut reader = RequestReader::new();
        let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        buf.resize(MAX_HEAD_BYTES, b'y');
        assert_eq!(reader.next(&buf).1, Parsed::Reject(Reject::HeadTooLarge));
        buf.truncate(MAX_HEAD_BYTES - 1);
        assert_eq!(reader.next(&buf).1, Parsed::NeedMore);
    }

    #[test]
    fn served_body_reports_microseconds() {
        let date = *b"Thu, 01 Jan 1970 00:00:00 GMT";
        let mut out = Vec::new();
        let t = ServerTiming {
            wait_ns: 12_499,
            service_ns: 845_500,
            late_ns: 0,
            class: None,
        };
        write_served(&mut out, &date, t, ConnHeader::Default, false);
        let text = String::from_utf8(out).expect("ascii");
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\nServer: qserve\r\n"),
            "{text}"
        );
        assert!(
            text.contains("\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n"),
            "{text}"
        );
        assert!(
            text.ends_with("\r\n\r\n{\"wait_us\":12,\"service_us\":846}\n"),
            "{text}"
        );
        let body_len = "{\"wait_us\":12,\"service_us\":846}\n".len();
        assert!(
            text.contains(&format!("Content-Length: {body_len}\r\n")),
            "{text}"
        );
    }

    /// Milliseconds with three decimals, each rounded to the nearest microsecond.
    #[test]
    fn server_timing_durations_render_as_rounded_milliseconds() {
        let cases: &[(u64, &str)] = &[
            (0, "0.000"),
            (1, "0.000"),
            (499, "0.000"),
            (500, "0.001"),
            (999, "0.001"),
            (1_000, "0.001"),
            (1_499, "0.001"),
            (1_500, "0.002"),
            (9_999, "0.010"),
            (412_000, "0.412"),
            (999_499, "0.999"),
            (999_500, "1.000"),
            (1_187_400, "1.187"),
            (1_000_000_000, "1000.000"),
            (3_600_000_000_000, "3600000.000"),
            // The largest value: rounding saturates instead of overflowing.
            (u64::MAX - 499, "18446744073709.551"),
            (u64::MAX, "18446744073709.551"),
        ];
        for &(ns, want) in cases {
            let mut out = Vec::new();
            put_ms(&mut out, ns);
            assert_eq!(String::from_utf8(out).expect("ascii"), want, "{ns} ns");
            // Each field of the header on its own.
            let mut out = Vec::new();
            write_server_timing(
                &mut out,
                ServerTiming {
                    wait_ns: ns,
                    service_ns: 2_000,
                    late_ns: ns,
                    class: None,
                },
            );
            assert_eq!(
                String::from_utf8(out).expect("ascii"),
                format!("Server-Timing: wait;dur={want}, service;dur=0.002, late;dur={want}"),
                "{ns} ns"
            );
        }
    }

    /// The exact bytes of a queued answer, `GET` and `HEAD`, kept alive and closing.
    #[test]
    fn served_answers_carry_server_timing() {
        let date = *b"Thu, 01 Jan 1970 00:00:00 GMT";
        let t = ServerTiming {
            wait_ns: 412_000,
            service_ns: 1_186_501,
            late_ns: 2_600,
            class: None,
        };
        let head = "HTTP/1.1 200 OK\r\nServer: qserve\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\
                    Content-Type: application/json\r\nContent-Length: 34\r\n\
                    Server-Timing: wait;dur=0.412, service;dur=1.187, late;dur=0.003\r\n";
        let body = "{\"wait_us\":412,\"service_us\":1187}\n";
        assert_eq!(body.len(), 34);
        let cases = [
            (ConnHeader::Default, false, format!("{head}\r\n{body}")),
            (ConnHeader::Default, true, format!("{head}\r\n")),
            (
                ConnHeader::Close,
                false,
                format!("{head}Connection: close\r\n\r\n{body}"),
            ),
            (
                ConnHeader::KeepAlive,
                true,
                format!("{head}Connection: keep-alive\r\n\r\n"),
            ),
        ];
        for (conn, head_only, want) in cases {
            let mut out = Vec::new();
            write_served(&mut out, &date, t, conn, head_only);
            assert_eq!(
                String::from_utf8(out).expect("ascii"),
                want,
                "{conn:?} head_only={head_only}"
            );
        }
    }

    /// A named class follows the three durations as `class;desc=N`, with no `dur`; the three
    /// durations are unchanged.
    #[test]
    fn server_timing_names_the_class_after_the_durations() {
        let base = ServerTiming {
            wait_ns: 412_000,
            service_ns: 1_186_501,
            late_ns: 2_600,
            class: None,
        };
        let durations = "Server-Timing: wait;dur=0.412, service;dur=1.187, late;dur=0.003";
        for (class, want) in [
            (None, durations.to_owned()),
            (Some(0), format!("{durations}, class;desc=0")),
            (Some(7), format!("{durations}, class;desc=7")),
        ] {
            let mut out = Vec::new();
            write_server_timing(&mut out, ServerTiming { class, ..base });
            assert_eq!(String::from_utf8(out).expect("ascii"), want, "{class:?}");
        }
        // In a whole answer too, the body unchanged.
        let date = [b'x'; 29];
        let mut out = Vec::new();
        let t = ServerTiming {
            class: Some(2),
            ..base
        };
        write_served(&mut out, &date, t, ConnHeader::Default, false);
        let text = String::from_utf8(out).expect("ascii");
        assert!(
            text.contains(&format!("\r\n{durations}, class;desc=2\r\n\r\n")),
            "{text}"
        );
        assert!(
            text.ends_with("{\"wait_us\":412,\"service_us\":1187}\n"),
            "{text}"
        );
    }

    /// The bad-priority reject is a 400 with its own reason; the 500 of a lost ticket keeps the
    /// connection as asked.
    #[test]
    fn bad_priority_and_internal_error_answers() {
        let date = [b'x'; 29];
        let mut out = Vec::new();
        write_reject(&mut out, &date, Reject::BadPriority);
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(
            text.ends_with("invalid X-Priority: expected one class 0 to 7\n"),
            "{text}"
        );
        assert_eq!(Reject::BadPriority.status(), 400);
        for (i, r) in Reject::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
        let mut out = Vec::new();
        write_internal_error(&mut out, &date, ConnHeader::Default, false);
        let text = String::from_utf8(out).expect("ascii");
        assert!(
            text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{text}"
        );
        assert!(!text.contains("Connection:"), "{text}");
        assert!(!text.contains("Server-Timing"), "{text}");
        assert!(text.ends_with("{\"error\":\"internal\"}\n"), "{text}");
    }

    /// Answers that did not go through the queue carry no `Server-Timing`.
    #[test]
    fn other_answers_have_no_server_timing() {
        let date = [b'x'; 29];
        let mut out = Vec::new();
        write_healthz(&mut out, &date, ConnHeader::Default, false);
        write_unavailable(
            &mut out,
            &date,
            Unavailable::Capacity,
            ConnHeader::Default,
            false,
        );
        write_reject(&mut out, &date, Reject::BadRequest);
        write_metrics(&mut out, &date, b"x 1\n", ConnHeader::Default, false);
        let text = String::from_utf8(out).expect("ascii");
        assert_eq!(text.matches("HTTP/1.1 ").count(), 4, "{text}");
        assert!(!text.contains("Server-Timing"), "{text}");
    }

    #[test]
    fn head_responses_have_no_body_but_keep_the_length() {
        let date = [b'x'; 29];
        let mut out = Vec::new();
        write_healthz(&mut out, &date, ConnHeader::Close, true);
        let text = String::from_utf8(out).expect("ascii");
        assert!(
            text.ends_with("Content-Length: 3\r\nConnection: close\r\n\r\n"),
            "{text}"
        );
    }
}
