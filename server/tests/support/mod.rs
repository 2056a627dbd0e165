//! Helpers for the integration tests: start a server on 127.0.0.1:0, talk raw HTTP/1.1 to it.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr};
use std::time::{Duration, Instant};

use queuelab_server::{Config, Handle, start};

/// Generous deadline for anything the tests wait for (a loaded 2-core machine is slow).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A server on 127.0.0.1:0 with `f` applied to the defaults (seed 1).
pub fn server(f: impl FnOnce(&mut Config)) -> Handle {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().expect("a valid address"),
        seed: 1,
        ..Config::default()
    };
    f(&mut c);
    start(c).expect("the server starts")
}

/// A client connection with a read timeout.
pub fn connect(h: &Handle) -> TcpStream {
    let s = TcpStream::connect(h.local_addr()).expect("connect to the server");
    s.set_read_timeout(Some(PATIENCE))
        .expect("set a read timeout");
    s.set_nodelay(true).expect("set TCP_NODELAY");
    s
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `(wait_us, service_us)` from a served request's JSON body.
    pub fn times_us(&self) -> (u64, u64) {
        let t = self.text();
        let field = |name: &str| -> u64 {
            let key = format!("\"{name}\":");
            let start = t.find(&key).unwrap_or_else(|| panic!("no {name} in {t:?}")) + key.len();
            t[start..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or_else(|_| panic!("bad {name} in {t:?}"))
        };
        (field("wait_us"), field("service_us"))
    }

    /// The number of bytes this response had on the wire (qserve writes `Name: value` headers).
    pub fn wire_len(&self) -> usize {
        let status = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason).len();
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum();
        status + headers + 2 + self.body.len()
    }

    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// `read`, retried on `Interrupted`. A blocking socket read with a timeout (`SO_RCVTIMEO`) is
/// never restarted by the kernel after the process was stopped and continued (signal(7)), so a
/// test process that is paused and resumed would otherwise see a spurious error.
pub fn read_retrying(s: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// Reads one response from `s`, keeping bytes of later responses in `pending`.
/// `Ok(None)` on a clean EOF before any byte of a response.
pub fn read_response(s: &mut impl Read, pending: &mut Vec<u8>) -> io::Result<Option<Response>> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(pending) {
            Ok(httparse::Status::Complete(head_len)) => {
                let status = resp.code.expect("a complete head has a status");
                let reason = resp.reason.unwrap_or("").to_owned();
                let headers: Vec<(String, String)> = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().expect("a numeric Content-Length"))
                    .expect("every qserve response has a Content-Length");
                while pending.len() < head_len + len {
                    let n = read_retrying(s, &mut chunk)?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF in body"));
                    }
                    pending.extend_from_slice(&chunk[..n]);
                }
                let body = pending[head_len..head_len + len].to_vec();
                pending.drain(..head_len + len);
                return Ok(Some(Response {
                    status,
                    reason,
                    headers,
                    body,
                }));
            }
            Ok(httparse::Status::Partial) => {
                let n = read_retrying(s, &mut chunk)?;
                if n == 0 {
                    if pending.is_empty() {
                        return Ok(None);
                    }
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF in head"));
                }
                pending.extend_from_slice(&chunk[..n]);
            }
            Err(e) => panic!(
                "unparsable response {e:?}: {:?}",
                String::from_utf8_lossy(pending)
            ),
        }
    }
}

/// Sends `raw` and reads one response.
pub fn roundtrip(s: &mut TcpStream, raw: &[u8]) -> Response {
    s.write_all(raw).expect("send a request");
    let mut pending = Vec::new();
    read_response(s, &mut pending)
        .expect("read a response")
        .expect("a response before EOF")
}

/// A plain `GET path` with a Host header.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// Whether the server closes `s` (EOF or reset) within the patience; bytes read are ignored.
/// Sends a good request and then `raw` on a new connection, checks that the good one is answered
/// 200 first, and returns the answer to `raw` (which callers expect to be an error) with the
/// connection, for the caller to check that the server closes it.
pub fn answer_after_a_good_request(h: &Handle, raw: &[u8], name: &str) -> (Response, TcpStream) {
    let mut s = connect(h);
    // A good request first: the error must come after its answer, in order.
    let mut all = get("/fine");
    all.extend_from_slice(raw);
    s.write_all(&all).expect("send");
    let mut pending = Vec::new();
    let first = read_response(&mut s, &mut pending)
        .expect("read")
        .expect("a response");
    assert_eq!(first.status, 200, "{name}: the good request first");
    let r = read_response(&mut s, &mut pending)
        .expect("read")
        .expect("an error response");
    (r, s)
}

pub fn closed_by_server(s: &mut TcpStream) -> bool {
    let deadline = Instant::now() + PATIENCE;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
    false
}

/// The value of a sample line `name` (with labels, exactly) in a Prometheus text body.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            let (n, v) = l.rsplit_once(' ')?;
            (n == name).then(|| v.parse::<f64>().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

/// Fetches `/metrics` on a new connection.
pub fn scrape(h: &Handle) -> String {
    let mut s = connect(h);
    let r = roundtrip(&mut s, &get("/metrics"));
    assert_eq!(r.status, 200);
    r.text()
}

/// Polls `cond` on `/metrics` until it holds (panics after the patience).
pub fn wait_for_metrics(h: &Handle, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = scrape(h);
        if cond(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A keep-alive connection for repeated `/metrics` scrapes: one connection for the whole test, so
/// the `connections` gauge counts it once and a full `--max-connections` cannot refuse it.
pub struct Scraper {
    s: TcpStream,
    pending: Vec<u8>,
}

impl Scraper {
    pub fn new(h: &Handle) -> Self {
        Scraper {
            s: connect(h),
            pending: Vec::new(),
        }
    }

    /// The current `/metrics` text.
    pub fn text(&mut self) -> String {
        self.s.write_all(&get("/metrics")).expect("send a scrape");
        let r = read_response(&mut self.s, &mut self.pending)
            .expect("read a scrape")
            .expect("a scrape answer");
        assert_eq!(r.status, 200);
        r.text()
    }

    /// Polls until `cond` holds on the metrics text (panics after the patience).
    pub fn wait_for(&mut self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.text();
            if cond(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Closes `s` with a reset (`SO_LINGER` 0), as a crashed or impatient peer does.
pub fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .expect("set SO_LINGER 0");
    drop(s);
}

/// Resident set size of this process (the server runs in it), from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a resident page count in /proc/self/statm");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

/// Every request the server counted, once each: answers written (by outcome) plus requests it
/// accepted and never answered (by reason).
pub fn accounted(c: &queuelab_server::metrics::Counters) -> u64 {
    c.served
        + c.blocked
        + c.overflow
        + c.shutting_down
        + c.rejected()
        + c.internal_error
        + c.metrics
        + c.healthz
        + c.abandoned
        + c.grace_expired
        + c.forwarded
        + c.forward_failed()
}

/// The same sum from a `/metrics` text: every `qserve_requests_total` and
/// `qserve_requests_unanswered_total` series.
pub fn accounted_in(text: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with("qserve_requests_total{")
                || l.starts_with("qserve_requests_unanswered_total{")
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Like [`connect`], with `SO_RCVBUF` set before connecting (which fixes the TCP window instead
/// of letting the kernel grow it).
pub fn connect_with_rcvbuf(h: &Handle, bytes: usize) -> TcpStream {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = h.local_addr();
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .expect("a socket");
    s.set_recv_buffer_size(bytes).expect("set SO_RCVBUF");
    s.connect(&addr.into()).expect("connect to the server");
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(PATIENCE))
        .expect("set a read timeout");
    s.set_nodelay(true).expect("set TCP_NODELAY");
    s
}

/// Reads qserve's start-up line from its piped stderr: the line, the address it listens on, and
/// the reader for what follows.
pub fn startup(child: &mut Child) -> (String, String, BufReader<ChildStderr>) {
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("the start-up line");
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the address in the start-up line")
        .to_owned();
    (line, addr, stderr)
}
