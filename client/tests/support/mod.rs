//! Small in-test HTTP servers with chosen (mis)behaviour, on 127.0.0.1:0, a thread per connection.
//!
//! They record what a load generator must be judged by: connections accepted, the arrival time of
//! every request head, and requests that arrived while another was still unanswered on the same
//! connection (pipelining, which qload must never do).
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use queuelab_client::{Config, Mode, Target};

/// What the server does with each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// `200` with a `Content-Length` body, keep-alive.
    Length,
    /// `200` with a chunked body (three chunks), keep-alive.
    Chunked,
    /// `200` with `Connection: close`, then closes.
    ConnectionClose,
    /// `200` with a body delimited by closing the connection (no length, no chunking).
    BodyUntilClose,
    /// `200` with `Content-Length` and keep-alive headers, but closes right after anyway.
    CloseAfterAnswer,
    /// Half an answer (the head and part of the body), then closes.
    CloseMidAnswer,
    /// Bytes that are not HTTP.
    Garbage,
    /// Reads requests and never answers.
    Silent,
    /// `503` with an empty body, keep-alive.
    Unavailable,
    /// After sleeping `delay`, `200` with the body `ok` and, on the server's k-th request (over
    /// all connections, from 0), the `Server-Timing` header lines `answers[k % answers.len()]`.
    Timed {
        answers: &'static [&'static [&'static str]],
        delay: Duration,
    },
}

const BODY: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicUsize,
    requests: AtomicUsize,
    pipelined: AtomicUsize,
    arrivals: Mutex<Vec<Instant>>,
}

/// A running test server; stopped when dropped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    accept: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with `behavior` on an ephemeral loopback port.
    pub fn start(behavior: Behavior) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (s, c) = (Arc::clone(&stop), Arc::clone(&counters));
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                c.accepted.fetch_add(1, Ordering::SeqCst);
                let (s, c) = (Arc::clone(&s), Arc::clone(&c));
                std::thread::spawn(move || serve(stream, behavior, &s, &c));
            }
        });
        Self {
            addr,
            stop,
            counters,
            accept: Some(accept),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.counters.accepted.load(Ordering::SeqCst)
    }

    /// Request heads received so far.
    pub fn requests(&self) -> usize {
        self.counters.requests.load(Ordering::SeqCst)
    }

    /// Requests that arrived while the previous one on their connection was unanswered.
    pub fn pipelined(&self) -> usize {
        self.counters.pipelined.load(Ordering::SeqCst)
    }

    /// Arrival times of the request heads, sorted.
    pub fn arrivals(&self) -> Vec<Instant> {
        let mut v = self
            .counters
            .arrivals
            .lock()
            .expect("arrivals lock")
            .clone();
        v.sort();
        v
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// The length of the request head at the start of `buf`, once its blank line has arrived.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn serve(mut stream: TcpStream, behavior: Behavior, stop: &AtomicBool, c: &Counters) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = vec![0u8; 16 * 1024];
    let mut len = 0;
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        // Answer every complete request head in the buffer.
        while let Some(end) = head_end(&buf[..len]) {
            let now = Instant::now();
            let k = c.requests.fetch_add(1, Ordering::SeqCst);
            c.arrivals.lock().expect("arrivals lock").push(now);
            if len > end {
                // More bytes than one request: a second request before this one's answer.
                c.pipelined.fetch_add(1, Ordering::SeqCst);
            }
            buf.copy_within(end..len, 0);
            len -= end;
            if !answer(&mut stream, behavior, k) {
                return;
            }
        }
        if len == buf.len() {
            return;
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) => return,
            Ok(n) => len += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Writes the answer to the server's request `k`; `false` when the connection is to be closed.
fn answer(s: &mut TcpStream, behavior: Behavior, k: usize) -> bool {
    let length_head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        BODY.len()
    );
    let result = match behavior {
        Behavior::Length => s.write_all(&[length_head.as_bytes(), BODY].concat()),
        Behavior::Chunked => s.write_all(
            &[
                &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
                b"a\r\n",
                &BODY[..10],
                b"\r\n1a;ext=1\r\n",
                &BODY[10..],
                b"\r\n0\r\nX-Trailer: yes\r\n\r\n",
            ]
            .concat(),
        ),
        Behavior::ConnectionClose => {
            let _ = s.write_all(
                &[
                    &b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 36\r\n\r\n"[..],
                    BODY,
                ]
                .concat(),
            );
            return false;
        }
        Behavior::BodyUntilClose => {
            let _ = s.write_all(&[&b"HTTP/1.1 200 OK\r\n\r\n"[..], BODY].concat());
            return false;
        }
        Behavior::CloseAfterAnswer => {
            let _ = s.write_all(&[length_head.as_bytes(), BODY].concat());
            return false;
        }
        Behavior::CloseMidAnswer => {
            let _ = s.write_all(&[length_head.as_bytes(), &BODY[..5]].concat());
            return false;
        }
        Behavior::Garbage => s.write_all(b"SSH-2.0-OpenSSH_9.2p1\r\n\r\n\x00\x01\x02"),
        Behavior::Silent => Ok(()),
        Behavior::Unavailable => {
            s.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        }
        Behavior::Timed { answers, delay } => {
            std::thread::sleep(delay);
            let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
            for line in answers[k % answers.len()] {
                head.push_str("Server-Timing: ");
                head.push_str(line);
                head.push_str("\r\n");
            }
            head.push_str("\r\nok");
            s.write_all(head.as_bytes())
        }
    };
    result.is_ok()
}

/// A configuration against `addr` with the given mode, unpinned (tests share the machine),
/// with a short interval so that short runs still have several batches.
pub fn config(addr: SocketAddr, mode: Mode) -> Config {
    let mut c = Config::new(Target::get(addr), mode);
    c.pin = false;
    c.threads = Some(1);
    c.interval = Duration::from_millis(100);
    c
}

/// An address nobody listens on (bound, then closed).
pub fn refusing_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("local address");
    drop(l);
    a
}

/// Closes `s` with a reset (SO_LINGER 0) instead of an orderly FIN.
pub fn reset(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `s` owns an open socket descriptor; `linger` is a valid `struct linger` whose size
    // is passed with it. A failure only means an orderly close instead of a reset.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::from_ref(&linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}
