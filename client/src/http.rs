//! HTTP/1.1 on the client side: the request rendered once, and a streaming response parser.
//!
//! The request bytes are fixed for the whole run (method, path, `Host`, user headers, body with
//! `Content-Length`), so they are rendered once and every send is one `write` of the same slice.
//!
//! [`ResponseParser`] reads one response at a time from whatever bytes have arrived, without
//! allocating and without keeping the body: the head is parsed with `httparse` once it is complete
//! (up to [`MAX_HEAD_BYTES`]); the body is only counted, framed by `Content-Length`, by
//! `Transfer-Encoding: chunked` (a byte-level state machine, so chunk boundaries may fall anywhere in
//! the reads), or by the end of the connection. Interim `1xx` answers are skipped. Bodies beyond
//! [`MAX_RESPONSE_BODY`] are an error. The parser reports whether the connection must close after
//! the response (`Connection: close`, HTTP/1.0 without keep-alive, a body delimited by the close).
//!
//! The `Server-Timing` header lines of a final answer are read while the head's slices are alive
//! ([`crate::timing`]) into a fixed-size value the parser keeps, and are available after
//! [`Progress::Done`] through [`ResponseParser::server_timing`]. That value is allocated the first
//! time a connection's answers carry the header and reused for every later answer, so a
//! connection to a server that never sends it costs nothing more, and no answer allocates.
use queuelab_common::http::{MAX_HEAD_BYTES, MAX_HEADERS, MAX_RESPONSE_BODY};

use crate::timing::ServerTiming;

/// Why a request could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The method is not an HTTP token.
    #[error("invalid method {0:?} (expected a token such as GET, POST)")]
    Method(String),
    /// A `--header` is not `Name: value`, or its value holds a control character.
    #[error(
        "invalid header {0:?} (expected \"Name: value\" without line breaks or control characters)"
    )]
    Header(String),
    /// A request-target that is empty or not printable ASCII.
    #[error("invalid request target {0:?} (expected printable ASCII)")]
    Target(String),
    /// A `Host` (from the URL or a `--header`) that is not printable ASCII.
    #[error("invalid Host {0:?} (expected printable ASCII without spaces)")]
    Host(String),
    /// The user set `Content-Length` or `Transfer-Encoding`, which qload computes itself.
    #[error("header {0:?} is set by qload from --body; do not pass it")]
    Framing(String),
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(crate::timing::is_tchar)
}

/// Whether `s` is printable ASCII (`0x21..=0x7e`), as a `Host` value must be.
fn is_printable_host(s: &str) -> bool {
    s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Splits and checks a `Name: value` header argument. A value may hold any byte but the control
/// characters (tab excepted); a `Host` value only printable ASCII.
pub fn parse_header(h: &str) -> Result<(String, String), RequestError> {
    let bad = || RequestError::Header(h.to_owned());
    let (name, value) = h.split_once(':').ok_or_else(bad)?;
    let (name, value) = (name.trim(), value.trim());
    if !is_token(name) || value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(bad());
    }
    if name.eq_ignore_ascii_case("host") && !is_printable_host(value) {
        return Err(RequestError::Host(value.to_owned()));
    }
    if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
    {
        return Err(RequestError::Framing(name.to_owned()));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// Renders the request once: `METHOD path HTTP/1.1`, `Host` (unless the user gives one), a
/// `User-Agent` (likewise), the user's headers in order, `Content-Length` when there is a body.
/// The path and every `Host` must be printable ASCII (the URL parser percent-encodes the path).
pub fn render_request(
    method: &str,
    path: &str,
    host: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Result<Vec<u8>, RequestError> {
    if !is_token(method) {
        return Err(RequestError::Method(method.to_owned()));
    }
    if path.is_empty() || !is_printable_host(path) {
        return Err(RequestError::Target(path.to_owned()));
    }
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("host") && (host.is_empty() || !is_printable_host(host)) {
        return Err(RequestError::Host(host.to_owned()));
    }
    for (k, v) in headers {
        if k.eq_ignore_ascii_case("host") && !is_printable_host(v) {
            return Err(RequestError::Host(v.clone()));
        }
    }
    let mut out = Vec::with_capacity(128 + body.map_or(0, <[u8]>::len));
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !has("host") {
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has("user-agent") {
        out.extend_from_slice(b"User-Agent: qload\r\n");
    }
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(body) = body {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    Ok(out)
}

/// Why a response could not be parsed (all counted as the `parse` error kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The head is not valid HTTP/1.x (httparse's verdict).
    #[error("malformed response head")]
    Head,
    /// The head is longer than `MAX_HEAD_BYTES` (or has more than `MAX_HEADERS` fields).
    #[error("response head too large")]
    HeadTooLarge,
    /// `Content-Length` is not a number, or several disagree.
    #[error("bad Content-Length")]
    ContentLength,
    /// A chunk size line or chunk delimiter is malformed.
    #[error("malformed chunked body")]
    Chunked,
    /// The body exceeds `MAX_RESPONSE_BODY`.
    #[error("response body too large")]
    BodyTooLarge,
    /// `101 Switching Protocols`: nothing qload can speak.
    #[error("unsupported protocol switch")]
    Upgrade,
}

/// What [`ResponseParser::advance`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The response is not complete: keep the unconsumed bytes and read more.
    NeedMore,
    /// A complete response.
    Done {
        /// Its status code.
        status: u16,
        /// Whether the connection must be closed after it.
        close: bool,
    },
    /// The response is malformed; the connection must be closed.
    Error(ParseError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Hex digits of a chunk size; `digits` counts them.
    Size { value: u64, digits: u8 },
    /// Chunk extension after `;` (ignored) up to CR.
    Ext { value: u64 },
    /// CR seen after the size line, LF expected.
    SizeLf { value: u64 },
    /// Chunk data still to skip.
    Data(u64),
    /// CR expected after the data.
    DataCr,
    /// LF expected after the data.
    DataLf,
    /// Start of a trailer line (or of the final empty line).
    TrailerStart,
    /// Inside a trailer field line, up to LF.
    TrailerLine,
    /// CR of the final empty line seen, LF expected.
    EndLf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Body(Body),
}

/// A streaming parser of one HTTP/1.x response at a time (see the module docs).
#[derive(Debug, Clone)]
pub struct ResponseParser {
    phase: Phase,
    status: u16,
    close: bool,
    body_seen: u64,
    trailer_seen: usize,
    /// The `Server-Timing` of the current (or just completed) answer; boxed, and only once a
    /// header was seen, to keep a connection small (see the module docs).
    timing: Option<Box<ServerTiming>>,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseParser {
    /// A parser waiting for a response head.
    pub fn new() -> Self {
        Self {
            phase: Phase::Head,
            status: 0,
            close: false,
            body_seen: 0,
            trailer_seen: 0,
            timing: None,
        }
    }

    /// Forgets the current response (after an error or a reconnect), its `Server-Timing` too
    /// (the space for it is kept).
    pub fn reset(&mut self) {
        self.next_response();
        if let Some(t) = self.timing.as_deref_mut() {
            t.clear();
        }
    }

    /// Ready for the next response; the `Server-Timing` of the one just done stays readable
    /// until the next head is parsed.
    fn next_response(&mut self) {
        self.phase = Phase::Head;
        self.status = 0;
        self.close = false;
        self.body_seen = 0;
        self.trailer_seen = 0;
    }

    /// The `Server-Timing` of the answer last reported [`Progress::Done`] (valid until the next
    /// call of [`advance`](Self::advance) or [`reset`](Self::reset)); `None` when it had no such
    /// header.
    pub fn server_timing(&self) -> Option<&ServerTiming> {
        self.timing.as_deref().filter(|t| t.is_present())
    }

    /// Whether the head of the current response has been parsed (the body is being counted).
    pub fn in_body(&self) -> bool {
        matches!(self.phase, Phase::Body(_))
    }

    /// Feeds the bytes received and not yet consumed. Returns how many were consumed and the
    /// progress. While the head is incomplete nothing is consumed (the caller keeps the bytes and
    /// appends more); body bytes are consumed as they come. After `Done`, bytes beyond the response
    /// are left unconsumed. `head_request` marks a response to `HEAD` (no body whatever it says).
    pub fn advance(&mut self, buf: &[u8], head_request: bool) -> (usize, Progress) {
        let mut pos = 0;
        loop {
            match self.phase {
                Phase::Head => {
                    let rest = &buf[pos..];
                    match self.parse_head(rest, head_request) {
                        Ok(None) => {
                            if rest.len() >= MAX_HEAD_BYTES {
                                return (pos, Progress::Error(ParseError::HeadTooLarge));
                            }
                            return (pos, Progress::NeedMore);
                        }
                        Ok(Some(n)) => {
                            pos += n;
                            if let Some(p) = self.body_finished() {
                                return (pos, p);
                            }
                        }
                        Err(e) => return (pos, Progress::Error(e)),
                    }
                }
                Phase::Body(Body::Length(remaining)) => {
                    let take = remaining.min((buf.len() - pos) as u64);
                    pos += take as usize;
                    let left = remaining - take;
                    self.phase = Phase::Body(Body::Length(left));
                    if left == 0 {
                        return (pos, self.done());
                    }
                    return (pos, Progress::NeedMore);
                }
                Phase::Body(Body::UntilClose) => {
                    let take = buf.len() - pos;
                    self.body_seen += take as u64;
                    if self.body_seen > MAX_RESPONSE_BODY as u64 {
                        return (pos + take, Progress::Error(ParseError::BodyTooLarge));
                    }
                    return (pos + take, Progress::NeedMore);
                }
                Phase::Body(Body::Chunked(state)) => {
                    let (n, res) = self.chunked(state, &buf[pos..]);
                    return (pos + n, res);
                }
            }
        }
    }

    /// The connection ended (EOF). A body delimited by the close is complete; anything else is cut.
    pub fn eof(&mut self) -> Option<Progress> {
        match self.phase {
            Phase::Body(Body::UntilClose) => Some(self.done()),
            _ => None,
        }
    }

    fn done(&mut self) -> Progress {
        let p = Progress::Done {
            status: self.status,
            close: self.close,
        };
        self.next_response();
        p
    }

    /// After a head: completes at once when there is no body.
    fn body_finished(&mut self) -> Option<Progress> {
        // After an interim 1xx the phase is still `Head`: the next head is parsed.
        match self.phase {
            Phase::Body(Body::Length(0)) => Some(self.done()),
            _ => None,
        }
    }

    /// Parses a complete head at the start of `buf`: `Ok(None)` if incomplete, else its length.
    fn parse_head(&mut self, buf: &[u8], head_request: bool) -> Result<Option<usize>, ParseError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let n = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(ParseError::HeadTooLarge),
            Err(_) => return Err(ParseError::Head),
        };
        if n > MAX_HEAD_BYTES {
            return Err(ParseError::HeadTooLarge);
        }
        let status = resp.code.ok_or(ParseError::Head)?;
        if status == 101 {
            return Err(ParseError::Upgrade);
        }
        if (100..200).contains(&status) {
            // Interim answer (100 Continue, 103 Early Hints): the real one follows.
            self.phase = Phase::Head;
            return Ok(Some(n));
        }
        if let Some(t) = self.timing.as_deref_mut() {
            t.clear();
        }
        let http10 = resp.version == Some(0);
        let mut close = http10;
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut other_coding = false;
        for h in resp.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let v = parse_decimal(h.value).ok_or(ParseError::ContentLength)?;
                if length.is_some_and(|l| l != v) {
                    return Err(ParseError::ContentLength);
                }
                length = Some(v);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                // The last coding decides the framing.
                let last = h
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .map(trim_ascii)
                    .unwrap_or_default();
                if last.eq_ignore_ascii_case(b"chunked") {
                    chunked = true;
                    other_coding = false;
                } else {
                    chunked = false;
                    other_coding = true;
                }
            } else if h.name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',').map(trim_ascii) {
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if http10 && token.eq_ignore_ascii_case(b"keep-alive") {
                        close = false;
                    }
                }
            } else if h.name.eq_ignore_ascii_case("server-timing") {
                self.timing
                    .get_or_insert_with(|| Box::new(ServerTiming::new()))
                    .add_header(h.value);
            }
        }
        self.status = status;
        let no_body = head_request || status == 204 || status == 304;
        let body = if no_body {
            Body::Length(0)
        } else if chunked {
            Body::Chunked(Chunk::Size {
                value: 0,
                digits: 0,
            })
        } else if other_coding {
            Body::UntilClose
        } else if let Some(len) = length {
            if len > MAX_RESPONSE_BODY as u64 {
                return Err(ParseError::BodyTooLarge);
            }
            Body::Length(len)
        } else {
            Body::UntilClose
        };
        if body == Body::UntilClose {
            close = true;
        }
        self.close = close;
        self.phase = Phase::Body(body);
        Ok(Some(n))
    }

    /// Runs the chunked-body state machine over `buf`.
    fn chunked(&mut self, mut state: Chunk, buf: &[u8]) -> (usize, Progress) {
        let err = |i, e| (i, Progress::Error(e));
        let mut i = 0;
        while i < buf.len() {
            if let Chunk::Data(rem) = state {
                // Skip the data in bulk; it is only counted.
                let take = rem.min((buf.len() - i) as u64);
                i += take as usize;
                state = if rem == take {
                    Chunk::DataCr
                } else {
                    Chunk::Data(rem - take)
                };
                continue;
            }
            let b = buf[i];
            i += 1;
            state = match state {
                Chunk::Data(_) => unreachable!("handled above"),
                Chunk::Size { value, digits } => match (hex_value(b), b) {
                    (Some(d), _) if digits < 15 => Chunk::Size {
                        value: value * 16 + u64::from(d),
                        digits: digits + 1,
                    },
                    (Some(_), _) => return err(i, ParseError::BodyTooLarge),
                    (None, _) if digits == 0 => return err(i, ParseError::Chunked),
                    (None, b'\r') => Chunk::SizeLf { value },
                    (None, b';' | b' ' | b'\t') => Chunk::Ext { value },
                    (None, _) => return err(i, ParseError::Chunked),
                },
                Chunk::Ext { value } => match b {
                    b'\r' => Chunk::SizeLf { value },
                    b'\n' => return err(i, ParseError::Chunked),
                    _ => {
                        self.trailer_seen += 1;
                        if self.trailer_seen > MAX_HEAD_BYTES {
                            return err(i, ParseError::Chunked);
                        }
                        Chunk::Ext { value }
                    }
                },
                Chunk::SizeLf { value } => {
                    if b != b'\n' {
                        return err(i, ParseError::Chunked);
                    }
                    if value == 0 {
                        Chunk::TrailerStart
                    } else {
                        self.body_seen += value;
                        if self.body_seen > MAX_RESPONSE_BODY as u64 {
                            return err(i, ParseError::BodyTooLarge);
                        }
                        Chunk::Data(value)
                    }
                }
                Chunk::DataCr if b == b'\r' => Chunk::DataLf,
                Chunk::DataLf if b == b'\n' => Chunk::Size {
                    value: 0,
                    digits: 0,
                },
                Chunk::DataCr | Chunk::DataLf => return err(i, ParseError::Chunked),
                Chunk::TrailerStart => match b {
                    b'\r' => Chunk::EndLf,
                    b'\n' => return err(i, ParseError::Chunked),
                    _ => Chunk::TrailerLine,
                },
                Chunk::TrailerLine => {
                    self.trailer_seen += 1;
                    if self.trailer_seen > MAX_HEAD_BYTES {
                        return err(i, ParseError::Chunked);
                    }
                    if b == b'\n' {
                        Chunk::TrailerStart
                    } else {
                        Chunk::TrailerLine
                    }
                }
                Chunk::EndLf if b == b'\n' => return (i, self.done()),
                Chunk::EndLf => return err(i, ParseError::Chunked),
            };
        }
        self.phase = Phase::Body(Body::Chunked(state));
        (i, Progress::NeedMore)
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    let v = trim_ascii(v);
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        v.iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')),
    )
}

fn trim_ascii(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

/// The class of a status code, as counted in the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 200–299.
    Success,
    /// 300–399.
    Redirect,
    /// 400–499.
    ClientError,
    /// 500–599.
    ServerError,
    /// Anything else (a final 1xx, or outside 100–599).
    Other,
}

impl StatusClass {
    /// The class of `status`.
    pub fn of(status: u16) -> Self {
        match status {
            200..=299 => Self::Success,
            300..=399 => Self::Redirect,
            400..=499 => Self::ClientError,
            500..=599 => Self::ServerError,
            _ => Self::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes the way the engine does: unconsumed bytes are kept
    /// at the front and new bytes appended. Returns every outcome that is not `NeedMore`, with the
    /// bytes left over after the last one, and whether the parser was still waiting at the end.
    fn feed(input: &[u8], step: usize, head_request: bool) -> (Vec<Progress>, usize) {
        let mut p = ResponseParser::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut fed = 0;
        while fed < input.len() {
            let end = (fed + step).min(input.len());
            buf.extend_from_slice(&input[fed..end]);
            fed = end;
            loop {
                let (n, prog) = p.advance(&buf, head_request);
                buf.drain(..n);
                match prog {
                    Progress::NeedMore => break,
                    Progress::Error(_) => {
                        out.push(prog);
                        return (out, buf.len());
                    }
                    Progress::Done { .. } => {
                        out.push(prog);
                        if buf.is_empty() {
                            break;
                        }
                    }
                }
            }
        }
        if let Some(prog) = p.eof() {
            out.push(prog);
        }
        (out, buf.len())
    }

    fn done(status: u16, close: bool) -> Progress {
        Progress::Done { status, close }
    }

    #[test]
    fn responses_parse_at_every_split() {
        let cases: &[(&str, &[u8], bool, &[Progress])] = &[
            (
                "content-length",
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                false,
                &[Progress::Done {
                    status: 200,
                    close: false,
                }],
            ),
            (
                "two keep-alive responses back to back",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 503 No\r\nContent-Length: 0\r\n\r\n",
                false,
                &[
                    Progress::Done {
                        status: 200,
                        close: false,
                    },
                    Progress::Done {
                        status: 503,
                        close: false,
                    },
                ],
            ),
            (
                "chunked with extension and trailer",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n",
                false,
                &[Progress::Done {
                    status: 200,
                    close: false,
                }],
            ),
            (
                "chunked wins over content-length",
                b"HTTP/1.1 201 Created\r\nContent-Length: 99\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                false,
                &[Progress::Done {
                    status: 201,
                    close: false,
                }],
            ),
            (
                "connection close",
                b"HTTP/1.1 404 Not Found\r\nConnection: keep-alive, Close\r\nContent-Length: 3\r\n\r\nnop",
                false,
                &[Progress::Done {
                    status: 404,
                    close: true,
                }],
            ),
            (
                "http/1.0 closes by default",
                b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
                false,
                &[Progress::Done {
                    status: 200,
                    close: true,
                }],
            ),
            (
                "http/1.0 keep-alive",
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
                false,
                &[Progress::Done {
                    status: 200,
                    close: false,
                }],
            ),
            (
                "body until close",
                b"HTTP/1.1 200 OK\r\n\r\nstreamed until the end",
                false,
                &[Progress::Done {
                    status: 200,
                    close: true,
                }],
            ),
            (
                "interim 100 then final",
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n",
                false,
                &[Progress::Done {
                    status: 302,
                    close: false,
                }],
            ),
            (
                "204 has no body",
                b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
                false,
                &[Progress::Done {
                    status: 204,
                    close: false,
                }],
            ),
            (
                "HEAD has no body",
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
                true,
                &[Progress::Done {
                    status: 200,
                    close: false,
                }],
            ),
            (
                "garbage",
                b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
                false,
                &[Progress::Error(ParseError::Head)],
            ),
            (
                "bad content-length",
                b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                false,
                &[Progress::Error(ParseError::ContentLength)],
            ),
            (
                "conflicting content-lengths",
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                false,
                &[Progress::Error(ParseError::ContentLength)],
            ),
            (
                "body too large",
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
                false,
                &[Progress::Error(ParseError::BodyTooLarge)],
            ),
            (
                "bad chunk size",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                false,
                &[Progress::Error(ParseError::Chunked)],
            ),
            (
                "missing CRLF after chunk data",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n",
                false,
                &[Progress::Error(ParseError::Chunked)],
            ),
            (
                "switching protocols",
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                false,
                &[Progress::Error(ParseError::Upgrade)],
            ),
        ];
        for &(name, input, head, want) in cases {
            for step in 1..=input.len() {
                let (got, left) = feed(input, step, head);
                assert_eq!(got, want, "{name}, fed {step} bytes at a time");
                if matches!(want.last(), Some(Progress::Done { .. })) {
                    assert_eq!(left, 0, "{name}: bytes left over, step {step}");
                }
            }
        }
    }

    #[test]
    fn truncated_responses_are_not_done() {
        for input in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Le",
        ] {
            let (got, _) = feed(input, input.len(), false);
            assert!(
                got.is_empty(),
                "{got:?} for {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn server_timing_is_read_with_the_head_and_kept_until_the_next_one() {
        let input: &[u8] = b"HTTP/1.1 103 Early Hints\r\nServer-Timing: early;dur=9\r\n\r\n\
HTTP/1.1 200 OK\r\nServer-Timing: wait;dur=0.412\r\nContent-Length: 2\r\n\
server-timing: service;dur=1.187, late;dur=0.003\r\n\r\nhi\
HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        for step in 1..=input.len() {
            let mut p = ResponseParser::new();
            let mut buf: Vec<u8> = Vec::new();
            let mut seen = Vec::new();
            for piece in input.chunks(step) {
                buf.extend_from_slice(piece);
                loop {
                    let (n, prog) = p.advance(&buf, false);
                    buf.drain(..n);
                    match prog {
                        Progress::Done { .. } => {
                            // Read right after the answer, as the engine does.
                            seen.push(p.server_timing().map(|t| {
                                t.metrics()
                                    .iter()
                                    .map(|m| (m.name().to_owned(), m.dur_ns()))
                                    .collect::<Vec<_>>()
                            }));
                            if buf.is_empty() {
                                break;
                            }
                        }
                        Progress::NeedMore => break,
                        Progress::Error(e) => panic!("{e}"),
                    }
                }
            }
            let first = vec![
                ("wait".to_owned(), 412_000),
                ("service".to_owned(), 1_187_000),
                ("late".to_owned(), 3_000),
            ];
            // The interim answer's header is not the final answer's; the second answer has none.
            assert_eq!(seen, [Some(first), None], "fed {step} bytes at a time");
        }
        // A malformed header is not an error of the answer.
        let mut p = ResponseParser::new();
        let (_, prog) = p.advance(
            b"HTTP/1.1 200 OK\r\nServer-Timing: a;dur=-1\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert_eq!(prog, done(200, false));
        assert!(p.server_timing().is_some_and(|t| t.is_malformed()));
        p.reset();
        assert!(p.server_timing().is_none());
    }

    #[test]
    fn oversized_head_is_an_error() {
        let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
        while input.len() <= MAX_HEAD_BYTES {
            input.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let (got, _) = feed(&input, 4096, false);
        assert_eq!(got, [Progress::Error(ParseError::HeadTooLarge)]);
    }

    #[test]
    fn leftover_after_response_is_left() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxGARBAGE";
        let mut p = ResponseParser::new();
        let (n, prog) = p.advance(input, false);
        assert_eq!(prog, done(200, false));
        assert_eq!(&input[n..], b"GARBAGE");
    }

    #[test]
    fn renders_requests() {
        let headers = vec![("X-A".to_owned(), "1".to_owned())];
        let r = render_request("POST", "/q?x=1", "h:81", &headers, Some(b"abc"))
            .expect("valid request");
        assert_eq!(
            r,
            b"POST /q?x=1 HTTP/1.1\r\nHost: h:81\r\nUser-Agent: qload\r\nX-A: 1\r\nContent-Length: 3\r\n\r\nabc"
        );
        let own_host = vec![("host".to_owned(), "other".to_owned())];
        let r = render_request("GET", "/", "h", &own_host, None).expect("valid request");
        assert_eq!(
            r,
            b"GET / HTTP/1.1\r\nUser-Agent: qload\r\nhost: other\r\n\r\n"
        );
        // The request parses as HTTP.
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut req = httparse::Request::new(&mut headers);
        assert!(matches!(req.parse(&r), Ok(httparse::Status::Complete(n)) if n == r.len()));
        assert!(render_request("GE T", "/", "h", &[], None).is_err());
        // The Host header and the request-target are printable ASCII or nothing is rendered.
        for (path, host, headers) in [
            ("/", "h\u{e9}", vec![]),
            ("/", "a b", vec![]),
            ("/", "", vec![]),
            ("/", "h", vec![("Host".to_owned(), "x\u{1}".to_owned())]),
            ("/\u{1d7}", "h", vec![]),
            ("/a b", "h", vec![]),
            ("", "h", vec![]),
        ] {
            assert!(
                render_request("GET", path, host, &headers, None).is_err(),
                "{path:?} {host:?} {headers:?}"
            );
        }
    }

    #[test]
    fn header_arguments() {
        assert_eq!(
            parse_header("X-Key:  v a l "),
            Ok(("X-Key".to_owned(), "v a l".to_owned()))
        );
        for bad in [
            "novalue",
            ": v",
            "Bad Name: v",
            "X: a\r\nY: b",
            "X: a\u{1}b",
            "X: \u{7f}",
        ] {
            assert!(parse_header(bad).is_err(), "{bad:?}");
        }
        // Tabs and non-ASCII text are allowed in values, except in Host.
        assert!(parse_header("X-Name: a\tb \u{e9}").is_ok());
        for bad in ["Host: h\u{e9}", "host: a b", "HOST: a\tb"] {
            assert!(
                matches!(parse_header(bad), Err(RequestError::Host(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_header("Content-Length: 5"),
            Err(RequestError::Framing(_))
        ));
    }

    #[test]
    fn status_classes() {
        assert_eq!(StatusClass::of(200), StatusClass::Success);
        assert_eq!(StatusClass::of(399), StatusClass::Redirect);
        assert_eq!(StatusClass::of(404), StatusClass::ClientError);
        assert_eq!(StatusClass::of(503), StatusClass::ServerError);
        assert_eq!(StatusClass::of(99), StatusClass::Other);
        assert_eq!(StatusClass::of(600), StatusClass::Other);
    }
}
