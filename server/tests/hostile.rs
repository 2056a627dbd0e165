//! Hostile peers against a real server on 127.0.0.1:0: slow heads (slowloris), request smuggling
//! shapes, oversized bodies, connection floods above `--max-connections`, half-closed and reset
//! connections, a pipelined flood from a slow reader, and overload without a capacity.
//!
//! Every test checks two things: the documented answer or counter for the hostile peer, and that a
//! well-behaved client is answered correctly meanwhile. Requests are accounted for exactly: every
//! request the server parsed is one of the `qserve_requests_total` outcomes or one of the
//! `qserve_requests_unanswered_total` reasons, and the tests compare that sum with what they sent.
//!
//! Timing: these tests check behaviour, not speed. Where a bound on time appears it is the
//! server's own timeout (a server held up by a hostile peer would answer no sooner than that) or
//! the generous [`PATIENCE`]; loopback answers take well under a millisecond.
mod support;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use queuelab_common::http::MAX_REQUEST_BODY;
use queuelab_common::samplers::ServiceKind;
use queuelab_server::PIPELINE_MAX;
use support::*;

/// Tests that measure the process as a whole (its memory) take this exclusively; the others share
/// it, so nothing else runs in the process while a measurement is under way.
static EXCLUSIVE: RwLock<()> = RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    EXCLUSIVE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    EXCLUSIVE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One slow client of the slowloris test: a non-blocking socket that sends its head one byte at
/// a time.
struct Slow {
    s: Option<TcpStream>,
    period: Duration,
    next_at: Instant,
    sent: usize,
    first_byte: Option<Instant>,
    input: Vec<u8>,
    /// Status of the answer and when it was complete.
    answer: Option<(u16, Instant)>,
    /// The server closed the connection (EOF or reset) after its answer.
    closed: bool,
    /// Something unexpected (an error before the answer, a second answer).
    fault: Option<String>,
}

impl Slow {
    fn done(&self) -> bool {
        self.closed || self.fault.is_some()
    }

    /// Sends the next byte when due and reads whatever has arrived.
    fn step(&mut self, head: &[u8], now: Instant) {
        let Some(s) = self.s.as_mut() else {
            return;
        };
        if self.answer.is_none() && now >= self.next_at && self.sent < head.len() {
            match s.write(&head[self.sent..=self.sent]) {
                Ok(1) => {
                    self.sent += 1;
                    self.first_byte.get_or_insert(now);
                    self.next_at = now + self.period;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.fault = Some(format!("write failed before an answer: {e}"));
                    return;
                }
            }
        }
        let mut buf = [0u8; 1024];
        let mut end: Option<String> = None;
        loop {
            match s.read(&mut buf) {
                Ok(0) => {
                    end = Some("closed".into());
                    break;
                }
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    end = Some(format!("read failed: {e}"));
                    break;
                }
            }
        }
        // The answer and the close may come in one read.
        if !self.input.is_empty() {
            let mut pending = std::mem::take(&mut self.input);
            let mut src = io::empty();
            match read_response(&mut src, &mut pending) {
                Ok(Some(r)) if self.answer.is_none() => self.answer = Some((r.status, now)),
                Ok(Some(r)) => self.fault = Some(format!("a second answer {}", r.status)),
                // Incomplete: `read_response` read EOF from the empty source; keep the bytes.
                Ok(None) | Err(_) => {}
            }
            self.input = pending;
        }
        if let Some(why) = end {
            if self.answer.is_none() {
                self.fault = Some(format!("{why} without an answer"));
            }
            self.closed = true;
            self.s = None;
        }
    }
}

#[test]
fn slowloris_heads_get_408_while_others_are_served() {
    let _g = shared();
    const SLOW: usize = 300;
    let header_timeout = Duration::from_secs(1);
    let h = server(|c| {
        c.model.service = ServiceKind::Const;
        c.model.mu = 1000.0;
        c.header_timeout = header_timeout;
    });
    let mut scraper = Scraper::new(&h);
    let mut head = b"GET /slow HTTP/1.1\r\nHost: slow\r\nX-Pad: ".to_vec();
    head.resize(head.len() + 400, b'a');
    let start = Instant::now();
    let mut slow: Vec<Slow> = (0..SLOW)
        .map(|i| {
            let s = connect(&h);
            s.set_nonblocking(true).expect("non-blocking");
            Slow {
                s: Some(s),
                // 100..=200 ms between bytes, staggered so the bytes do not come in bursts.
                period: Duration::from_millis(100 + (i as u64 * 37) % 101),
                next_at: start + Duration::from_millis((i as u64 * 7) % 100),
                sent: 0,
                first_byte: None,
                input: Vec::new(),
                answer: None,
                closed: false,
                fault: None,
            }
        })
        .collect();

    // The well-behaved client: requests 25 ms apart for as long as the slow heads last.
    let stop = Arc::new(AtomicBool::new(false));
    let normal = {
        let stop = Arc::clone(&stop);
        let mut s = connect(&h);
        std::thread::spawn(move || {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = roundtrip(&mut s, &get("/normal"));
                latencies.push(t.elapsed());
                assert_eq!(r.status, 200);
                // One server, one client at a time: no wait, the constant 1 ms service.
                assert_eq!(r.times_us(), (0, 1000));
                std::thread::sleep(Duration::from_millis(25));
            }
            latencies
        })
    };

    let deadline = Instant::now() + PATIENCE;
    while !slow.iter().all(Slow::done) {
        assert!(Instant::now() < deadline, "slow clients still pending");
        let now = Instant::now();
        for c in slow.iter_mut() {
            c.step(&head, now);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let latencies = normal.join().expect("the normal client");

    for (i, c) in slow.iter().enumerate() {
        assert!(c.fault.is_none(), "slow client {i}: {:?}", c.fault);
        let (status, at) = c.answer.expect("an answer");
        assert_eq!(status, 408, "slow client {i}");
        let first = c.first_byte.expect("a first byte");
        assert!(
            at - first >= header_timeout,
            "slow client {i}: 408 after {:?}, before the header timeout",
            at - first
        );
        assert!(c.closed, "slow client {i} not closed");
        assert!(c.sent < head.len(), "slow client {i} finished its head");
    }
    assert!(
        latencies.len() >= 5,
        "only {} normal requests",
        latencies.len()
    );
    // A server held up by the slow heads would answer no sooner than they time out.
    let worst = latencies.iter().max().copied().unwrap_or_default();
    assert!(
        worst < header_timeout,
        "a normal request took {worst:?} among the slow heads"
    );
    let text = scraper.wait_for("every slow connection closed", |t| {
        metric(t, "qserve_connections") == 1.0
    });
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"timeout\"}"),
        SLOW as f64
    );
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"served\"}"),
        latencies.len() as f64
    );
    assert_eq!(
        metric(&text, "qserve_connections_total{result=\"accepted\"}"),
        (SLOW + 2) as f64
    );
}

/// Request shapes whose framing a front proxy and this server could read differently. Each must
/// get exactly one error answer and a close; the request appended after it must never be answered.
#[test]
fn smuggling_shapes_get_one_answer_and_a_close() {
    let _g = shared();
    let h = server(|c| c.model.service = ServiceKind::Zero);
    let smuggled = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let cases: &[(&str, &[u8], u16)] = &[
        (
            "CL then TE",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            "TE then CL",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            "duplicate differing CL",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\n",
            400,
        ),
        (
            "CL list with differing values",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 36\r\n\r\n",
            400,
        ),
        (
            "CL with a plus sign",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +0\r\n\r\n",
            400,
        ),
        (
            "CL with a minus sign",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            400,
        ),
        (
            "CL in hex",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x24\r\n\r\n",
            400,
        ),
        (
            "CL with a space inside",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3 6\r\n\r\n",
            400,
        ),
        (
            "CL with a space before the colon",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 36\r\n\r\n",
            400,
        ),
        (
            "TE with a space before the colon",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            "TE chunked in HTTP/1.0",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            "TE chunked alone",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            501,
        ),
        (
            "TE with an unknown coding",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
            501,
        ),
        (
            "obs-fold continuation line",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
            400,
        ),
        (
            "obs-fold hiding a length",
            b"POST / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tContent-Length: 36\r\n\r\n",
            400,
        ),
        (
            "whitespace before the first header",
            b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
            400,
        ),
        // Bare LF: RFC 9112 §2.2 lets a recipient accept it, and httparse does; qserve refuses it,
        // because a front end that splits lines only at CRLF would see a different set of fields.
        (
            "bare LF line endings",
            b"GET / HTTP/1.1\nHost: a\n\n",
            400,
        ),
        (
            "bare LF hiding a length",
            b"POST / HTTP/1.1\r\nHost: a\nContent-Length: 36\r\n\r\n",
            400,
        ),
        (
            "bare CR hiding a length",
            b"POST / HTTP/1.1\r\nHost: a\rContent-Length: 36\r\n\r\n",
            400,
        ),
        (
            "NUL in a header value",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n",
            400,
        ),
        (
            "two Host headers",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
        ),
    ];
    let mut scraper = Scraper::new(&h);
    let mut normal = connect(&h);
    for (name, raw, status) in cases {
        let mut s = connect(&h);
        let mut all = raw.to_vec();
        all.extend_from_slice(smuggled);
        s.write_all(&all).expect("send");
        let mut pending = Vec::new();
        let r = read_response(&mut s, &mut pending)
            .expect("read")
            .expect("an error answer");
        assert_eq!(r.status, *status, "{name}: {:?}", r.text());
        assert!(r.closes(), "{name}: Connection: close");
        match read_response(&mut s, &mut pending) {
            Ok(None) => {}
            Ok(Some(second)) => panic!("{name}: a second answer {second:?}"),
            // A reset after the answer is a close too.
            Err(e) => assert_ne!(e.kind(), io::ErrorKind::WouldBlock, "{name}: no close"),
        }
        // Other traffic is unharmed.
        assert_eq!(
            roundtrip(&mut normal, &get("/normal")).status,
            200,
            "{name}"
        );
    }
    let text = scraper.text();
    let expect = |status: u16| cases.iter().filter(|c| c.2 == status).count() as f64;
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"bad_request\"}"),
        expect(400)
    );
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"not_implemented\"}"),
        expect(501)
    );
    // Only the normal client's requests were served: nothing smuggled got through.
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"served\"}"),
        cases.len() as f64
    );
}

#[test]
fn oversized_body_gets_413_and_its_bytes_are_never_parsed() {
    let _g = shared();
    let h = server(|c| c.model.service = ServiceKind::Zero);
    let mut scraper = Scraper::new(&h);
    let mut normal = connect(&h);

    // Exactly at the limit is fine, and the request after the body is answered.
    let mut s = connect(&h);
    let mut raw =
        format!("POST /max HTTP/1.1\r\nHost: a\r\nContent-Length: {MAX_REQUEST_BODY}\r\n\r\n")
            .into_bytes();
    raw.resize(raw.len() + MAX_REQUEST_BODY, b'x');
    raw.extend_from_slice(&get("/after"));
    s.write_all(&raw).expect("send");
    let mut pending = Vec::new();
    for _ in 0..2 {
        let r = read_response(&mut s, &mut pending)
            .expect("read")
            .expect("an answer");
        assert_eq!(r.status, 200);
    }
    drop(s);

    // One byte over: 413 and a close. The body is made of requests; none may be answered. The
    // client goes on sending a large body after the answer: the server discards it for a while
    // and closes, it does not read forever.
    let s = connect(&h);
    let over = MAX_REQUEST_BODY + 1;
    let head =
        format!("POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: {over}\r\n\r\n").into_bytes();
    let body: Vec<u8> = get("/in-body").into_iter().cycle().take(over).collect();
    let mut w = s.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        w.write_all(&head).expect("send the head");
        let _ = w.write_all(&body);
        // Then more, 64 KiB a millisecond, until the server closes (after its linger time).
        let chunk = vec![b'z'; 1 << 16];
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if w.write(&chunk).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    });
    let mut r = s;
    let mut pending = Vec::new();
    let first = read_response(&mut r, &mut pending)
        .expect("read")
        .expect("the 413");
    assert_eq!(first.status, 413);
    assert!(first.closes());
    match read_response(&mut r, &mut pending) {
        Ok(None) | Err(_) => {}
        Ok(Some(second)) => panic!("a second answer {second:?}"),
    }
    assert!(
        writer.join().expect("the writer"),
        "the server kept reading after its 413"
    );
    assert_eq!(roundtrip(&mut normal, &get("/normal")).status, 200);
    let text = scraper.wait_for("the connection to close", |t| {
        metric(t, "qserve_connections") == 2.0
    });
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"too_large\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"served\"}"),
        3.0
    );
}

#[test]
fn connection_flood_over_the_limit_is_refused_and_recovers() {
    let _g = shared();
    const LIMIT: usize = 50;
    const EXISTING: usize = 10;
    const FLOOD: usize = 500;
    let h = server(|c| {
        c.model.service = ServiceKind::Zero;
        c.max_connections = LIMIT;
    });
    // The first existing connection doubles as the metrics scraper.
    let mut existing: Vec<TcpStream> = (0..EXISTING).map(|_| connect(&h)).collect();
    for s in existing.iter_mut() {
        assert_eq!(roundtrip(s, &get("/before")).status, 200);
    }
    let scrape = |s: &mut TcpStream| roundtrip(s, &get("/metrics")).text();

    let mut flood: Vec<TcpStream> = (0..FLOOD)
        .map(|_| {
            let s = TcpStream::connect(h.local_addr()).expect("the kernel completes the handshake");
            s.set_read_timeout(Some(PATIENCE)).expect("read timeout");
            s
        })
        .collect();
    // Each flood connection asks once: the ones over the limit were closed at once (EOF or reset,
    // without an answer); the others are served.
    let mut kept = Vec::new();
    let mut refused = 0usize;
    for s in flood.drain(..) {
        let mut s = s;
        let answered = s.write_all(&get("/healthz")).is_ok() && {
            let mut pending = Vec::new();
            match read_response(&mut s, &mut pending) {
                Ok(Some(r)) => {
                    assert_eq!(r.status, 200);
                    true
                }
                Ok(None) => false,
                Err(e) => {
                    assert!(
                        e.kind() != io::ErrorKind::WouldBlock
                            && e.kind() != io::ErrorKind::TimedOut,
                        "a flood connection neither answered nor closed"
                    );
                    false
                }
            }
        };
        if answered {
            kept.push(s);
        } else {
            refused += 1;
        }
    }
    assert_eq!(kept.len(), LIMIT - EXISTING);
    assert_eq!(refused, FLOOD - (LIMIT - EXISTING));
    // The existing connections keep working.
    for s in existing.iter_mut() {
        assert_eq!(roundtrip(s, &get("/during")).status, 200);
    }
    let text = scrape(&mut existing[0]);
    assert_eq!(metric(&text, "qserve_connections"), LIMIT as f64);
    assert_eq!(
        metric(&text, "qserve_connections_total{result=\"rejected\"}"),
        refused as f64
    );

    // The flood ends: the gauge returns to the baseline (no descriptor leak) and new connections
    // are accepted again, up to the limit.
    drop(kept);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = scrape(&mut existing[0]);
        if metric(&text, "qserve_connections") == EXISTING as f64 {
            break;
        }
        assert!(Instant::now() < deadline, "connections not closed:\n{text}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut fresh: Vec<TcpStream> = (0..LIMIT - EXISTING).map(|_| connect(&h)).collect();
    for s in fresh.iter_mut() {
        assert_eq!(roundtrip(s, &get("/after")).status, 200);
    }
    let text = scrape(&mut existing[0]);
    assert_eq!(metric(&text, "qserve_connections"), LIMIT as f64);
    assert_eq!(
        metric(&text, "qserve_connections_total{result=\"rejected\"}"),
        refused as f64,
        "a connection was refused below the limit"
    );
    assert_eq!(metric(&text, "qserve_accept_errors_total"), 0.0);
    drop(fresh);
    drop(existing);
    h.shutdown();
    let summary = h.join().expect("clean shutdown");
    assert_eq!(summary.counters.conn_rejected, refused as u64);
    assert_eq!(
        summary.counters.conn_accepted,
        (EXISTING + 2 * (LIMIT - EXISTING)) as u64
    );
}

/// A client that sends its requests and then shuts its write side still gets every answer, also
/// when it pipelined more than [`PIPELINE_MAX`] of them (the rest wait, unread, behind the EOF).
#[test]
fn half_closed_pipeline_gets_every_answer() {
    let _g = shared();
    let service_us = 1_000;
    let h = server(|c| {
        c.model.service = ServiceKind::Const;
        c.model.mu = 1000.0;
    });
    let mut other = connect(&h);
    let mut s = connect(&h);
    let n = 2 * PIPELINE_MAX + 1;
    let burst: Vec<u8> = (0..n).flat_map(|i| get(&format!("/h/{i}"))).collect();
    s.write_all(&burst).expect("send");
    s.shutdown(Shutdown::Write).expect("half-close");
    let mut pending = Vec::new();
    for k in 0..n as u64 {
        let r = read_response(&mut s, &mut pending)
            .unwrap_or_else(|e| panic!("answer {k}: {e}"))
            .unwrap_or_else(|| panic!("EOF before answer {k}"));
        assert_eq!(r.status, 200);
        let (wait, service) = r.times_us();
        assert_eq!(service, service_us);
        // At most k services ahead of it (fewer once back-pressure delays its arrival).
        assert!(wait <= k * service_us, "{k}: waited {wait}us");
    }
    assert!(
        read_response(&mut s, &mut pending)
            .expect("a clean close")
            .is_none()
    );
    assert_eq!(roundtrip(&mut other, &get("/other")).status, 200);
    h.shutdown();
    let summary = h.join().expect("clean shutdown");
    assert_eq!(summary.counters.served, n as u64 + 1);
    assert_eq!(accounted(&summary.counters), n as u64 + 1);
}

/// A peer that resets its connection mid-head, mid-body or while its request waits in the queue.
/// The model cannot take back an admitted request (the departures behind it are computed from its
/// own), so it stays in the system until its departure, "served into the void", and is counted as
/// `abandoned` when its connection goes.
#[test]
fn resets_mid_head_mid_body_and_while_queued_are_accounted() {
    let _g = shared();
    let h = server(|c| {
        c.model.service = ServiceKind::Const;
        c.model.mu = 0.1; // 10 s each: nothing departs during the test
        c.model.capacity = Some(3);
        c.grace = Duration::from_millis(100);
    });
    let mut scraper = Scraper::new(&h);
    let gauge = |t: &str| metric(t, "qserve_connections");

    // Mid-head: nothing was parsed, nothing is counted but the connection error.
    let mut a = connect(&h);
    a.write_all(b"GET /a HTTP/1.1\r\nHo").expect("send");
    scraper.wait_for("the connection", |t| gauge(t) == 2.0);
    reset(a);
    // Mid-body: the head was parsed, so the request is in the queue.
    let mut b = connect(&h);
    b.write_all(b"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
        .expect("send");
    scraper.wait_for("the mid-body arrival", |t| {
        metric(t, "qserve_arrivals_total") == 1.0
    });
    reset(b);
    // Queued: a complete request waiting for its answer.
    let mut c = connect(&h);
    c.write_all(&get("/c")).expect("send");
    scraper.wait_for("the queued arrival", |t| {
        metric(t, "qserve_arrivals_total") == 2.0
    });
    reset(c);

    let text = scraper.wait_for("the resets", |t| {
        gauge(t) == 1.0
            && metric(t, "qserve_requests_unanswered_total{reason=\"abandoned\"}") == 2.0
    });
    assert_eq!(
        metric(&text, "qserve_connections_closed_total{reason=\"error\"}"),
        3.0
    );
    // Both abandoned requests are still in the system: K = 3 leaves room for one more.
    assert_eq!(metric(&text, "qserve_in_system"), 2.0);
    let mut d = connect(&h);
    d.write_all(&get("/d")).expect("send");
    scraper.wait_for("the next arrival", |t| metric(t, "qserve_in_system") == 3.0);
    let mut e = connect(&h);
    let r = roundtrip(&mut e, &get("/e"));
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "{\"error\":\"capacity\"}\n");
    let text = scraper.text();
    assert_eq!(metric(&text, "qserve_arrivals_total"), 4.0);

    // Shut down with /d still queued: it is counted at the end of the grace.
    drop(scraper);
    h.shutdown();
    let summary = h.join().expect("clean shutdown");
    let c = &summary.counters;
    assert_eq!(
        (c.served, c.blocked, c.abandoned, c.grace_expired),
        (0, 1, 2, 1)
    );
    // Four requests reached the parser (b, c, d, e), plus the scrapes.
    assert_eq!(accounted(c), 4 + c.metrics);
    assert_eq!(summary.arrivals, 4);
    assert!(closed_by_server(&mut d));
}

/// A reset is noticed at once also on a connection that is not reading: one that asked to close
/// after its queued answer, and one held back by the pipeline limit. Its unanswered requests are
/// counted as abandoned and its descriptor is freed long before the answers' departures.
#[test]
fn a_reset_is_noticed_while_the_connection_is_not_reading() {
    let _g = shared();
    let h = server(|c| {
        c.model.service = ServiceKind::Const;
        c.model.mu = 0.01; // 100 s each
    });
    let mut scraper = Scraper::new(&h);

    let mut closing = connect(&h);
    closing
        .write_all(b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut held = connect(&h);
    let extra = 8;
    let pipeline: Vec<u8> = (0..PIPELINE_MAX + extra)
        .flat_map(|i| get(&format!("/p/{i}")))
        .collect();
    held.write_all(&pipeline).expect("send the pipeline");
    scraper.wait_for("every admitted arrival", |t| {
        metric(t, "qserve_arrivals_total") == (1 + PIPELINE_MAX) as f64
    });
    // The server reads no further than the pipeline limit.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        metric(&scraper.text(), "qserve_arrivals_total"),
        (1 + PIPELINE_MAX) as f64
    );
    let mut other = connect(&h);
    reset(closing);
    reset(held);
    let text = scraper.wait_for("both resets noticed", |t| {
        metric(t, "qserve_connections") == 2.0
    });
    let r = roundtrip(&mut other, &get("/healthz"));
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    assert_eq!(
        metric(
            &text,
            "qserve_requests_unanswered_total{reason=\"abandoned\"}"
        ),
        (1 + PIPELINE_MAX) as f64
    );
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"served\"}"),
        0.0
    );
    // Every parsed request is accounted for; the `extra` ones never left the socket buffer.
    let text = scraper.text();
    let scrapes = metric(&text, "qserve_requests_total{outcome=\"metrics\"}");
    assert_eq!(
        accounted_in(&text),
        (1 + PIPELINE_MAX) as f64 + scrapes + 1.0 // the /healthz
    );
}

/// One connection pipelines 100,000 requests as fast as it can while reading its answers slowly.
/// The server holds at most [`PIPELINE_MAX`] requests and about [`queuelab_server::OUT_HIGH`]
/// bytes of output for it, so its memory stays flat; every answer arrives, in order and well
/// formed, and another client is served meanwhile.
#[test]
fn pipelined_flood_from_a_slow_reader_stays_bounded_and_in_order() {
    let _g = exclusive();
    const N: usize = 100_000;
    let h = server(|c| c.model.service = ServiceKind::Zero);
    // Three request shapes in a fixed pattern, with three distinguishable answers; the last
    // request asks to close.
    fn request(i: usize) -> &'static [u8] {
        if i == N - 1 {
            return b"GET /last HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n";
        }
        match i % 10 {
            3 => b"GET /healthz HTTP/1.1\r\nHost: f\r\n\r\n",
            7 => b"GET /f HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            _ => b"GET /f HTTP/1.1\r\nHost: f\r\n\r\n",
        }
    }
    // A small receive buffer (it also turns off its autotuning, up to 32 MB here), so that the
    // answers the reader has not taken pile up at the server, not in the client's kernel.
    let s = connect_with_rcvbuf(&h, 64 * 1024);
    let mut w = s.try_clone().expect("clone");
    let baseline = rss_bytes();
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let writer = std::thread::spawn(move || {
        let mut chunk = Vec::with_capacity(64 * 1024);
        let mut i = 0;
        while i < N {
            chunk.clear();
            while i < N && chunk.len() < 60 * 1024 {
                chunk.extend_from_slice(request(i));
                i += 1;
            }
            w.write_all(&chunk).expect("the server keeps reading");
        }
    });
    let other = {
        let done = Arc::clone(&done);
        let mut s = connect(&h);
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !done.load(Ordering::Relaxed) {
                let r = roundtrip(&mut s, &get("/other"));
                assert_eq!((r.status, r.times_us()), (200, (0, 0)));
                n += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            n
        })
    };

    /// Reads at most 8 KiB every 2 ms for the first two seconds (about 4 MB/s, far slower than
    /// the server can answer), then at full speed.
    struct SlowReader {
        s: TcpStream,
        slow_until: Instant,
    }
    impl Read for SlowReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if Instant::now() < self.slow_until {
                std::thread::sleep(Duration::from_millis(2));
                let n = buf.len().min(8 * 1024);
                return self.s.read(&mut buf[..n]);
            }
            self.s.read(buf)
        }
    }
    let mut reader = SlowReader {
        s,
        slow_until: Instant::now() + Duration::from_secs(2),
    };
    let mut pending = Vec::new();
    for i in 0..N {
        let r = read_response(&mut reader, &mut pending)
            .unwrap_or_else(|e| panic!("answer {i} of {N}: {e}"))
            .unwrap_or_else(|| panic!("EOF before answer {i}"));
        assert_eq!(r.status, 200, "answer {i}");
        let shape = (
            r.header("content-type"),
            r.header("connection"),
            r.body.as_slice(),
        );
        let json = b"{\"wait_us\":0,\"service_us\":0}\n".as_slice();
        let want = if i == N - 1 {
            (Some("application/json"), Some("close"), json)
        } else {
            match i % 10 {
                3 => (Some("text/plain; charset=utf-8"), None, b"ok\n".as_slice()),
                7 => (Some("application/json"), Some("keep-alive"), json),
                _ => (Some("application/json"), None, json),
            }
        };
        assert_eq!(shape, want, "answer {i} out of order or malformed");
    }
    assert!(
        read_response(&mut reader, &mut pending)
            .expect("a clean close")
            .is_none()
    );
    writer.join().expect("the writer");
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("the sampler");
    let others = other.join().expect("the other client");
    assert!(others >= 1, "the other client was never served");

    // Without back-pressure the server reads all 4 MB of requests at once and renders the 22 MB
    // of answers (220 bytes each with their Server-Timing) faster than the slow reader takes
    // them, less the ~4 MB its socket's send buffer holds: measured +10.6 MB with the limits
    // switched off when the answers were 154 bytes (without Server-Timing). Bounded, it
    // holds tens of KiB for this connection: measured +0.3 to +0.5 MB for the whole process,
    // the test's own threads included. 4 MiB lies well between the two.
    let grown = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    eprintln!(
        "pipelined flood: resident memory grew by {} KiB",
        grown >> 10
    );
    assert!(
        grown < 4 << 20,
        "resident memory grew by {} KiB during the flood",
        grown >> 10
    );
    h.shutdown();
    let summary = h.join().expect("clean shutdown");
    assert_eq!(
        summary.counters.served + summary.counters.healthz,
        N as u64 + u64::from(others)
    );
}

/// ρ > 1 without a capacity: the in-system limit holds, the excess gets 503 `overflow` at once,
/// and every request sent is counted exactly once.
#[test]
fn overload_without_capacity_is_capped_and_every_request_counted() {
    let _g = shared();
    const LIMIT: usize = 20;
    const CLIENTS: usize = 40;
    const EACH: usize = 25;
    let service_us = 5_000; // μ = 200/s, one server
    let h = server(|c| {
        c.model.service = ServiceKind::Const;
        c.model.mu = 200.0;
        c.threads = 2;
        c.overflow_limit = LIMIT;
    });
    let addr = h.local_addr();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = Arc::clone(&done);
        let mut scraper = Scraper::new(&h);
        std::thread::spawn(move || {
            let (mut max, mut scrapes) = (0.0f64, 0u64);
            while !done.load(Ordering::Relaxed) {
                max = max.max(metric(&scraper.text(), "qserve_in_system"));
                scrapes += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            (max, scrapes, scraper)
        })
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).expect("connect");
                s.set_read_timeout(Some(PATIENCE)).expect("read timeout");
                let mut pending = Vec::new();
                let (mut ok, mut overflow) = (0u64, 0u64);
                for _ in 0..EACH {
                    s.write_all(&get("/load")).expect("send");
                    let r = read_response(&mut s, &mut pending)
                        .expect("read")
                        .expect("an answer");
                    match r.status {
                        200 => {
                            let (wait, service) = r.times_us();
                            assert_eq!(service, service_us);
                            // At most LIMIT - 1 ahead, each at most one constant service.
                            assert!(
                                wait <= (LIMIT as u64 - 1) * service_us,
                                "waited {wait}us: more than {} ahead",
                                LIMIT - 1
                            );
                            ok += 1;
                        }
                        503 => {
                            assert_eq!(r.text(), "{\"error\":\"overflow\"}\n");
                            assert!(!r.closes(), "an overflow keeps the connection");
                            overflow += 1;
                        }
                        other => panic!("status {other}"),
                    }
                }
                (ok, overflow)
            })
        })
        .collect();
    let (mut ok, mut overflow) = (0, 0);
    for c in clients {
        let (o, f) = c.join().expect("a client");
        ok += o;
        overflow += f;
    }
    done.store(true, Ordering::Relaxed);
    let (max_in_system, scrapes, mut scraper) = sampler.join().expect("the sampler");
    assert!(max_in_system <= LIMIT as f64, "{max_in_system} in system");
    assert!(overflow > 0, "ρ > 1 should overflow");
    assert!(ok > 0);
    assert_eq!(ok + overflow, (CLIENTS * EACH) as u64);
    // Each I/O thread adds its counts to the shared ones once per turn of its loop, so a scrape
    // may briefly lag an answer already received; wait for the last turn.
    let text = scraper.wait_for("every answer counted", |t| {
        accounted_in(t) - metric(t, "qserve_requests_total{outcome=\"metrics\"}")
            == (CLIENTS * EACH) as f64
    });
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"served\"}"),
        ok as f64
    );
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"overflow\"}"),
        overflow as f64
    );
    assert_eq!(metric(&text, "qserve_overflow_limit"), LIMIT as f64);
    // The sampler's scrapes are counted too (and this one's text counts at least itself).
    assert!(metric(&text, "qserve_requests_total{outcome=\"metrics\"}") > scrapes as f64);
    drop(scraper);
    h.shutdown();
    let summary = h.join().expect("clean shutdown");
    assert_eq!(summary.arrivals, (CLIENTS * EACH) as u64);
    assert_eq!(
        accounted(&summary.counters),
        (CLIENTS * EACH) as u64 + summary.counters.metrics
    );
}

/// Overload and then SIGTERM's path with requests still queued: each request sent is answered
/// (200 or 503) or counted as expired at the end of the grace, and the client's view agrees with
/// the server's counters.
#[test]
fn shutdown_with_a_full_queue_accounts_for_every_request() {
    let _g = shared();
    const LIMIT: usize = 6;
    const CONNS: usize = 10;
    const DEPTH: usize = 2;
    let h = server(|c| {
        c.model.service = ServiceKind::Const;
        c.model.mu = 1.0; // 1 s each: six admitted take six seconds, far beyond the grace
        c.overflow_limit = LIMIT;
        c.grace = Duration::from_millis(300);
    });
    let mut scraper = Scraper::new(&h);
    let mut conns: Vec<TcpStream> = (0..CONNS).map(|_| connect(&h)).collect();
    for (i, s) in conns.iter_mut().enumerate() {
        let pipeline: Vec<u8> = (0..DEPTH)
            .flat_map(|k| get(&format!("/q/{i}/{k}")))
            .collect();
        s.write_all(&pipeline).expect("send");
    }
    let text = scraper.wait_for("every arrival", |t| {
        metric(t, "qserve_arrivals_total") == (CONNS * DEPTH) as f64
    });
    // (A scrape's text counts the scrape itself.)
    let scrapes = metric(&text, "qserve_requests_total{outcome=\"metrics\"}");
    drop(scraper);
    h.shutdown();
    let (mut ok, mut overflow, mut unanswered) = (0u64, 0u64, 0u64);
    for s in conns.iter_mut() {
        let mut pending = Vec::new();
        let mut answered = 0;
        // Answers until the server closes (EOF, or a reset at the end of the grace).
        while let Ok(Some(r)) = read_response(s, &mut pending) {
            answered += 1;
            match r.status {
                200 => ok += 1,
                503 => {
                    assert_eq!(r.text(), "{\"error\":\"overflow\"}\n");
                    overflow += 1;
                }
                other => panic!("status {other}"),
            }
        }
        unanswered += (DEPTH - answered) as u64;
    }
    let summary = h.join().expect("clean shutdown");
    let c = &summary.counters;
    assert_eq!(
        (c.served, c.overflow, c.grace_expired + c.abandoned),
        (ok, overflow, unanswered)
    );
    assert!(c.grace_expired >= 1, "the grace should expire: {c:?}");
    assert!(overflow >= 1, "the limit should overflow: {c:?}");
    assert_eq!(accounted(c), (CONNS * DEPTH) as u64 + scrapes as u64);
    assert_eq!(summary.arrivals, (CONNS * DEPTH) as u64);
}

/// Regression: a burst of pipelined requests larger than [`PIPELINE_MAX`] that arrives in one
/// piece and is then followed by silence. The server read it all, answered the first
/// `PIPELINE_MAX` in one go and then waited for an event that never came: the rest stayed in its
/// buffer, unanswered and uncounted, until the idle timeout closed the connection.
#[test]
fn a_pipelined_burst_over_the_limit_is_answered_in_full() {
    let _g = shared();
    let h = server(|c| c.model.service = ServiceKind::Zero);
    let mut s = connect(&h);
    let n = 5 * PIPELINE_MAX + 3;
    let burst: Vec<u8> = (0..n).flat_map(|i| get(&format!("/b/{i}"))).collect();
    s.write_all(&burst).expect("send the burst");
    let mut pending = Vec::new();
    for i in 0..n {
        let r = read_response(&mut s, &mut pending)
            .unwrap_or_else(|e| panic!("answer {i} of {n}: {e}"))
            .unwrap_or_else(|| panic!("EOF before answer {i}"));
        assert_eq!(r.status, 200);
    }
}

/// A passing peak of connections (a stall piles them up, then they close) does not pin its
/// memory: once at least 256 connections, and half of the peak, have gone, the I/O thread
/// returns the freed memory to the system (`qserve_memory_trims_total`). A small peak does not
/// trigger it, and the server serves on either way.
#[test]
fn a_passed_peak_of_connections_returns_its_memory() {
    let _guard = exclusive();
    let h = server(|c| c.model.service = ServiceKind::Zero);
    let mut scraper = Scraper::new(&h);
    let open_and_close = |n: usize| {
        let mut conns: Vec<TcpStream> = (0..n).map(|_| connect(&h)).collect();
        for s in &mut conns {
            assert_eq!(roundtrip(s, &get("/")).status, 200);
        }
        drop(conns);
    };
    let trims = |s: &mut Scraper| metric(&s.text(), "qserve_memory_trims_total");

    // 100 connections: below the threshold. Several sweeps (100 ms apart) pass with them closed.
    open_and_close(100);
    let deadline = Instant::now() + PATIENCE;
    while metric(&scraper.text(), "qserve_connections") > 1.0 {
        assert!(Instant::now() < deadline, "connections never closed");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(trims(&mut scraper), 0.0);

    // 400 connections, then closed: one trim.
    open_and_close(400);
    let deadline = Instant::now() + PATIENCE;
    while trims(&mut scraper) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no trim after 400 connections closed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(trims(&mut scraper), 1.0);
    let mut s = connect(&h);
    assert_eq!(roundtrip(&mut s, &get("/")).status, 200);
    drop(s);
    drop(scraper);
    h.shutdown();
    h.join().expect("clean shutdown");
}
