//! Keep-alive connections that the server closes while they idle.
//!
//! A server closes a connection that has idled past its idle timeout; a request written on it in
//! the meantime is lost, the server never saw it. The in-test server here makes that race certain:
//! a request that arrives on a connection idle for longer than `IDLE` (since its previous answer)
//! is dropped with the connection, as if the server's timer had fired just before, alternately by
//! an orderly close and by a reset (so both `closed` and `read` failures occur). The first request
//! on a connection is always answered. qload must send an idempotent request again, once, on a
//! fresh connection (keeping its intended time), and count the retry; other methods fail as
//! before.
mod support;

use support::{head_end, reset};

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use queuelab_client::result::RunResult;
use queuelab_client::{Mode, Target, run};
use queuelab_common::samplers::ArrivalKind;

/// The server's idle timeout.
const IDLE: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicUsize,
    answered: AtomicUsize,
    dropped: AtomicUsize,
    /// Idle connections the server closed on its own.
    reaped: AtomicUsize,
}

/// The idle-closing server (see the module docs). With `reap`, it also closes connections idle for
/// longer than `IDLE` on its own, a few milliseconds late (the granularity of its read timeout).
#[derive(Debug)]
struct IdleClosing {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    c: Arc<Counters>,
    accept: Option<JoinHandle<()>>,
}

impl IdleClosing {
    fn start(reap: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let c = Arc::new(Counters::default());
        let (s, cc) = (Arc::clone(&stop), Arc::clone(&c));
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let n = cc.accepted.fetch_add(1, Ordering::SeqCst);
                let (s, cc) = (Arc::clone(&s), Arc::clone(&cc));
                std::thread::spawn(move || serve(stream, n, reap, &s, &cc));
            }
        });
        Self {
            addr,
            stop,
            c,
            accept: Some(accept),
        }
    }
}

impl Drop for IdleClosing {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve(mut s: TcpStream, n: usize, reap: bool, stop: &AtomicBool, c: &Counters) {
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_millis(5)));
    let mut buf = [0u8; 8192];
    let mut len = 0;
    // Time of the previous answer; `None` before the first request.
    let mut last: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        if let Some(end) = head_end(&buf[..len]) {
            if last.is_some_and(|t| t.elapsed() > IDLE) {
                // The idle timer "fired" before this request: it is lost with the connection.
                c.dropped.fetch_add(1, Ordering::SeqCst);
                if n % 2 == 0 {
                    drop(s);
                } else {
                    reset(s);
                }
                return;
            }
            buf.copy_within(end..len, 0);
            len -= end;
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
            c.answered.fetch_add(1, Ordering::SeqCst);
            last = Some(Instant::now());
            continue;
        }
        if len == buf.len() {
            return;
        }
        match s.read(&mut buf[len..]) {
            Ok(0) => return,
            Ok(k) => len += k,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if reap && len == 0 && last.is_some_and(|t| t.elapsed() > IDLE) {
                    c.reaped.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// `n` Poisson arrivals at `rate` with `method`.
fn run_with(server: &IdleClosing, method: &str, rate: f64, n: u64) -> RunResult {
    let mut c = support::config(
        server.addr,
        Mode::Open {
            rate,
            arrival: ArrivalKind::Poisson,
        },
    );
    c.target = Target::new(&format!("http://{}/", server.addr), method, &[], None)
        .expect("a valid target");
    c.requests = Some(n);
    c.duration = None;
    c.timeout = Duration::from_secs(5);
    let t = Instant::now();
    let r = run(c).expect("the run completes");
    // n requests at `rate` take about n / rate seconds (2 s here); the rest is for a loaded machine.
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
    let q = &r.requests;
    assert_eq!(q.issued, n, "{q:?}");
    assert_eq!(q.issued, q.completed + q.errors, "{q:?}");
    assert_eq!(q.errors, q.errors_by_kind.total(), "{q:?}");
    r
}

#[test]
fn requests_on_stale_keepalive_connections_are_retried_on_fresh_ones() {
    let server = IdleClosing::start(false);
    // At 50/s a gap exceeds IDLE = 20 ms with probability e^-1 = 0.37: about 37 of the 100
    // requests find their (kept-alive) connection stale. None finding it is 0.63^99 < 1e-19.
    let r = run_with(&server, "GET", 50.0, 100);
    let q = &r.requests;
    let dropped = server.c.dropped.load(Ordering::SeqCst) as u64;
    // Every lost request was retried, once, on a fresh connection, which answers the first
    // request it gets: nothing fails, nothing is counted twice.
    assert_eq!(q.errors, 0, "{q:?}");
    assert_eq!(q.completed, 100, "{q:?}");
    assert_eq!(q.retries, dropped, "{q:?}");
    assert!(q.retries > 0, "{q:?}");
    assert_eq!(q.sent, 100, "a retry is not a second send: {q:?}");
    assert_eq!(server.c.answered.load(Ordering::SeqCst), 100);
    // A fresh connection per retry, besides the first (and any opened when requests overlap).
    assert!(r.connections.opened > dropped, "{:?}", r.connections);
}

#[test]
fn non_idempotent_requests_are_not_retried() {
    let server = IdleClosing::start(false);
    let r = run_with(&server, "POST", 50.0, 100);
    let q = &r.requests;
    let dropped = server.c.dropped.load(Ordering::SeqCst) as u64;
    assert_eq!(q.retries, 0, "{q:?}");
    assert!(dropped > 0, "{q:?}");
    // Each lost POST is one error: the end of the connection or a reset, before any answer.
    let e = q.errors_by_kind;
    assert_eq!(e.closed + e.read + e.write, dropped, "{e:?}");
    assert_eq!(q.errors, dropped, "{q:?}");
    assert_eq!(q.completed, 100 - dropped, "{q:?}");
}

#[test]
fn a_server_reaping_idle_connections_loses_no_request() {
    // The server also closes idle connections on its own, like qserve's --idle-timeout: qload
    // mostly sees the close first and opens a new connection; when the two race, it retries.
    let server = IdleClosing::start(true);
    // At 80/s a gap exceeds IDLE plus the server's 5 ms granularity with probability
    // e^-2 = 0.135, so the server reaps some connection unless none of 159 gaps does:
    // 0.865^159 < 1e-9.
    let r = run_with(&server, "GET", 80.0, 160);
    let q = &r.requests;
    let c = &server.c;
    assert_eq!(q.errors, 0, "{q:?}");
    assert_eq!(q.completed, 160, "{q:?}");
    // Retried: every request the server dropped, and any written on a connection just as the
    // server reaped it (the server never read those).
    let (dropped, reaped) = (
        c.dropped.load(Ordering::SeqCst) as u64,
        c.reaped.load(Ordering::SeqCst) as u64,
    );
    assert!(
        (dropped..=dropped + reaped).contains(&q.retries),
        "{q:?}, dropped {dropped}, reaped {reaped}"
    );
    assert!(reaped > 0, "the server reaped no idle connection");
    assert_eq!(c.answered.load(Ordering::SeqCst), 160);
    assert_eq!(
        r.connections.opened as usize,
        c.accepted.load(Ordering::SeqCst),
        "{:?}",
        r.connections
    );
}
