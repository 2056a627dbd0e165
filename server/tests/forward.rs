//! `--forward`: two stations in-process on loopback (A forwards to B), and downstreams that fail
//! in each way qserve counts.
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use queuelab_server::{Config, Forward, Handle};
use support::*;

fn forwarding_to(url: &str, f: impl FnOnce(&mut Config)) -> Handle {
    server(|c| {
        c.model.mu = 2000.0;
        c.forward = Some(Forward::new(url));
        f(c);
    })
}

/// The `dur` of every `Server-Timing` entry, by name, in order (ms).
fn timings(r: &Response) -> Vec<(String, f64)> {
    let v = r.header("server-timing").expect("a Server-Timing header");
    v.split(',')
        .filter_map(|e| {
            let mut parts = e.trim().split(';');
            let name = parts.next()?.to_owned();
            let dur = parts.find_map(|p| p.trim().strip_prefix("dur="))?;
            Some((name, dur.parse().ok()?))
        })
        .collect()
}

/// A fake downstream: accepts connections and gives each to `serve` on its own thread, until
/// stopped. Bounded: at most 64 connections.
struct Fake {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    fn new(serve: fn(TcpStream)) -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        let addr = l.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !s2.load(Ordering::Acquire) && n < 64 {
                match l.accept() {
                    Ok((c, _)) => {
                        n += 1;
                        let _ = c.set_nonblocking(false);
                        std::thread::spawn(move || serve(c));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Fake {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads a request head (up to the blank line), bounded by the patience.
fn read_head(c: &mut TcpStream) -> bool {
    let _ = c.set_read_timeout(Some(PATIENCE));
    let mut got = Vec::new();
    let mut b = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut b) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&b[..n]),
        }
    }
    true
}

/// End to end through two stations: every answer is B's 200 with A's timing, the hop, then B's;
/// the durations add up to no more than the latency measured here (each is rounded to 0.5 µs,
/// seven of them: 3.5 µs of slack).
#[test]
fn two_stations_compose_server_timing() {
    let b = server(|c| c.model.mu = 2000.0);
    let a = forwarding_to(&format!("http://{}/", b.local_addr()), |_| {});
    let mut s = connect(&a);
    let n = 40;
    for i in 0..n {
        let t0 = Instant::now();
        let r = roundtrip(&mut s, &get(&format!("/item?i={i}")));
        let latency_ms = t0.elapsed().as_secs_f64() * 1e3;
        assert_eq!(r.status, 200, "{}", r.text());
        let t = timings(&r);
        let names: Vec<&str> = t.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["wait", "service", "late", "hop", "wait", "service", "late"],
            "{t:?}"
        );
        let sum: f64 = t.iter().map(|(_, d)| d).sum();
        assert!(
            sum <= latency_ms + 0.0035,
            "sum {sum} ms > latency {latency_ms} ms"
        );
        // B's body: its own wait and service, which the last entries report.
        let (_, service_us) = r.times_us();
        assert!(
            (t[5].1 * 1e3 - service_us as f64).abs() <= 1.0,
            "{t:?} {}",
            r.text()
        );
    }
    let m = scrape(&a);
    assert_eq!(metric(&m, "qserve_forward_requests_total"), f64::from(n));
    assert_eq!(
        metric(&m, "qserve_requests_total{outcome=\"forwarded\"}"),
        f64::from(n)
    );
    assert_eq!(metric(&m, "qserve_forward_seconds_count"), f64::from(n));
    assert!(metric(&m, "qserve_forward_seconds_sum") > 0.0);
    // B saw every request once, with its path.
    let mb = scrape(&b);
    assert_eq!(
        metric(&mb, "qserve_requests_total{outcome=\"served\"}"),
        f64::from(n)
    );
    a.shutdown();
    b.shutdown();
    a.join().expect("A ends");
    b.join().expect("B ends");
}

/// A request body goes downstream with the method; a POST's answer is B's.
#[test]
fn bodies_and_methods_are_forwarded() {
    fn echo(mut c: TcpStream) {
        let _ = c.set_read_timeout(Some(PATIENCE));
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        while !got.ends_with(b"hello") {
            match c.read(&mut b) {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&b[..n]),
            }
        }
        let body = String::from_utf8_lossy(&got).replace("\r\n", "|");
        let _ = write!(
            c,
            "HTTP/1.1 201 Made\r\nServer-Timing: x;dur=0.001\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let fake = Fake::new(echo);
    let a = forwarding_to(&fake.url(), |_| {});
    let mut s = connect(&a);
    let r = roundtrip(
        &mut s,
        b"POST /p?q=1 HTTP/1.1\r\nHost: up\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!((r.status, r.reason.as_str()), (201, "Made"));
    let text = r.text();
    assert!(
        text.starts_with(&format!(
            "POST /p?q=1 HTTP/1.1|Host: {}|Content-Length: 5||hello",
            fake.addr
        )),
        "{text}"
    );
    assert!(
        r.header("server-timing")
            .is_some_and(|v| v.ends_with(", x;dur=0.001"))
    );
}

/// B stopped: A answers 502 (connect) for later requests, counted, every request answered, and
/// A's run ends.
#[test]
fn a_stopped_downstream_gives_502_connect() {
    let b = server(|_| {});
    let url = format!("http://{}/", b.local_addr());
    b.shutdown();
    b.join().expect("B ends");
    let a = forwarding_to(&url, |_| {});
    let mut s = connect(&a);
    let t0 = Instant::now();
    for _ in 0..10 {
        let r = roundtrip(&mut s, &get("/"));
        assert_eq!(r.status, 502);
        assert!(r.text().contains("forward_connect"), "{}", r.text());
    }
    assert!(t0.elapsed() < PATIENCE);
    let m = scrape(&a);
    assert_eq!(
        metric(&m, "qserve_forward_errors_total{kind=\"connect\"}"),
        10.0
    );
    a.shutdown();
    let sum = a.join().expect("A ends");
    assert_eq!(sum.counters.forward_failed(), 10);
    assert_eq!(sum.counters.abandoned + sum.counters.grace_expired, 0);
}

fn never_answers(mut c: TcpStream) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let mut b = [0u8; 1024];
    while matches!(c.read(&mut b), Ok(n) if n > 0) {}
}

/// A downstream that reads forever: 504 after --forward-timeout (200 ms), counted.
#[test]
fn a_silent_downstream_gives_504() {
    let fake = Fake::new(never_answers);
    let a = forwarding_to(&fake.url(), |c| {
        if let Some(f) = c.forward.as_mut() {
            f.timeout = Duration::from_millis(200);
        }
    });
    let mut s = connect(&a);
    let t0 = Instant::now();
    let r = roundtrip(&mut s, &get("/"));
    let took = t0.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    // Not before the timeout (less the sweep's granularity of 25 ms at most), not much after.
    assert!(took >= Duration::from_millis(170), "{took:?}");
    assert!(took < PATIENCE, "{took:?}");
    let m = scrape(&a);
    assert_eq!(
        metric(&m, "qserve_forward_errors_total{kind=\"timeout\"}"),
        1.0
    );
}

/// Garbage, a reset and an early close each give 502 of their kind.
#[test]
fn faulty_downstreams_give_502_by_kind() {
    fn garbage(mut c: TcpStream) {
        if read_head(&mut c) {
            let _ = c.write_all(b"SPAM SPAM SPAM\r\n\r\n");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    fn resets(mut c: TcpStream) {
        if read_head(&mut c) {
            reset(c);
        }
    }
    fn closes_early(mut c: TcpStream) {
        if read_head(&mut c) {
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
        }
    }
    for (serve, kind) in [
        (garbage as fn(TcpStream), "parse"),
        (resets, "reset"),
        (closes_early, "closed"),
    ] {
        let fake = Fake::new(serve);
        let a = forwarding_to(&fake.url(), |_| {});
        let mut s = connect(&a);
        for _ in 0..3 {
            let r = roundtrip(&mut s, &get("/"));
            assert_eq!(r.status, 502, "{kind}: {}", r.text());
            assert!(
                r.text().contains(&format!("forward_{kind}")),
                "{kind}: {}",
                r.text()
            );
        }
        let m = scrape(&a);
        assert_eq!(
            metric(
                &m,
                &format!("qserve_forward_errors_total{{kind=\"{kind}\"}}")
            ),
            3.0,
            "{kind}"
        );
    }
}

/// Shutdown of A with requests in flight downstream (which never answers): A ends within its
/// grace (300 ms) and the requests are counted as unanswered at the end of the grace.
#[test]
fn shutdown_with_requests_in_flight_ends_within_grace() {
    let fake = Fake::new(never_answers);
    let a = forwarding_to(&fake.url(), |c| c.grace = Duration::from_millis(300));
    let mut conns: Vec<TcpStream> = (0..4).map(|_| connect(&a)).collect();
    for s in &mut conns {
        s.write_all(&get("/")).expect("send");
    }
    wait_for_metrics(&a, "4 forwarded", |m| {
        metric(m, "qserve_forward_requests_total") >= 4.0
    });
    let t0 = Instant::now();
    a.shutdown();
    let sum = a.join().expect("A ends");
    assert!(
        t0.elapsed() < Duration::from_millis(300) + PATIENCE / 4,
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(sum.counters.grace_expired, 4);
    for s in &mut conns {
        assert!(closed_by_server(s));
    }
}

/// One downstream connection and a wait queue of one, downstream silent: of three concurrent
/// requests (zero service, so all three depart at once), the first holds the connection, the
/// second waits for it, and the third finds both taken: 502 forward_busy at once. The other two
/// end in 504 at --forward-timeout (1 s; the wait for a connection counts). Counted by kind.
#[test]
fn a_full_pool_and_queue_give_502_busy() {
    let fake = Fake::new(never_answers);
    let a = forwarding_to(&fake.url(), |c| {
        c.model.service = queuelab_common::samplers::ServiceKind::Zero;
        if let Some(f) = c.forward.as_mut() {
            f.connections = 1;
            f.queue = 1;
            // Long enough that the first request cannot time out (and free the connection)
            // before the third has departed, on a loaded machine too.
            f.timeout = Duration::from_secs(1);
        }
    });
    let mut conns: Vec<TcpStream> = (0..3).map(|_| connect(&a)).collect();
    for s in &mut conns {
        s.write_all(&get("/")).expect("send");
    }
    let mut statuses = Vec::new();
    for s in &mut conns {
        let mut pending = Vec::new();
        let r = read_response(s, &mut pending)
            .expect("read an answer")
            .expect("an answer");
        let kind = if r.text().contains("forward_busy") {
            "busy"
        } else if r.text().contains("forward_timeout") {
            "timeout"
        } else {
            "other"
        };
        statuses.push((r.status, kind));
    }
    statuses.sort();
    assert_eq!(
        statuses,
        [(502, "busy"), (504, "timeout"), (504, "timeout")],
        "{statuses:?}"
    );
    let m = scrape(&a);
    assert_eq!(
        metric(&m, "qserve_forward_errors_total{kind=\"busy\"}"),
        1.0
    );
    assert_eq!(
        metric(&m, "qserve_forward_errors_total{kind=\"timeout\"}"),
        2.0
    );
    assert_eq!(
        metric(&m, "qserve_requests_total{outcome=\"forward_error\"}"),
        3.0
    );
    a.shutdown();
    a.join().expect("A ends");
}

/// Answers over the bounds (a declared body over 64 KiB, a chunked body that grows past it, a
/// head over 8 KiB) each give 502 forward_too_large, counted, and A keeps serving.
#[test]
fn a_downstream_answer_too_large_gives_502_too_large() {
    fn declares_too_much(mut c: TcpStream) {
        if read_head(&mut c) {
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\nxx");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    fn chunks_too_much(mut c: TcpStream) {
        if read_head(&mut c) {
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            let chunk = [b'x'; 4096];
            // 17 chunks of 4 KiB: 68 KiB > 64 KiB.
            for _ in 0..17 {
                if c.write_all(b"1000\r\n").is_err()
                    || c.write_all(&chunk).is_err()
                    || c.write_all(b"\r\n").is_err()
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    fn head_too_long(mut c: TcpStream) {
        if read_head(&mut c) {
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\n");
            let line = format!("X-Filler: {}\r\n", "y".repeat(1000));
            for _ in 0..10 {
                if c.write_all(line.as_bytes()).is_err() {
                    return;
                }
            }
            let _ = c.write_all(b"Content-Length: 0\r\n\r\n");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for (serve, what) in [
        (declares_too_much as fn(TcpStream), "declared length"),
        (chunks_too_much, "chunked body"),
        (head_too_long, "head"),
    ] {
        let fake = Fake::new(serve);
        let a = forwarding_to(&fake.url(), |_| {});
        let mut s = connect(&a);
        for _ in 0..2 {
            let r = roundtrip(&mut s, &get("/"));
            assert_eq!(r.status, 502, "{what}: {}", r.text());
            assert!(
                r.text().contains("forward_too_large"),
                "{what}: {}",
                r.text()
            );
        }
        let m = scrape(&a);
        assert_eq!(
            metric(&m, "qserve_forward_errors_total{kind=\"too_large\"}"),
            2.0,
            "{what}"
        );
        a.shutdown();
        a.join().expect("A ends");
    }
}
