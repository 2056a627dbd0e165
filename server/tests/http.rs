//! The HTTP/1.1 responder over real sockets on 127.0.0.1:0: persistence, pipelining order, HTTP/1.0,
//! every canned error status, capacity, timeouts, connection limits, back-pressure, `/metrics`,
//! `/healthz` and the graceful shutdown.
mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use queuelab_common::samplers::{ServiceKind, ServiceSampler, rng};
use queuelab_common::theory::Servers;
use queuelab_server::queue::SERVICE_STREAM;
use support::*;

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let h = server(|c| {
        c.model.servers = Servers::Infinite;
        c.model.mu = 20_000.0;
    });
    let mut s = connect(&h);
    let mut pending = Vec::new();
    for i in 0..50 {
        s.write_all(&get(&format!("/item/{i}"))).expect("send");
        let r = read_response(&mut s, &mut pending)
            .expect("read")
            .expect("a response");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("server"), Some("qserve"));
        assert!(
            r.header("date")
                .is_some_and(|d| d.ends_with(" GMT") && d.len() == 29)
        );
        assert!(!r.closes());
        let (wait, _service) = r.times_us();
        assert_eq!(wait, 0, "infinitely many servers never make a request wait");
    }
    let summary = {
        h.shutdown();
        h.join().expect("clean shutdown")
    };
    assert_eq!(summary.counters.served, 50);
    assert_eq!(summary.counters.conn_accepted, 1);
}

#[test]
fn spin_mode_serves_in_order_and_records_lateness() {
    // The busy-wait path: each deadline is within the spin margin, so the thread polls without
    // sleeping and then spins to it. Pipelined and concurrent requests must still be answered
    // exactly as the queue says.
    let h = server(|c| {
        c.model.service = ServiceKind::Const;
        c.model.mu = 2_000.0; // 500 us
        c.spin = Duration::from_millis(2);
    });
    let mut a = connect(&h);
    let mut b = connect(&h);
    let mut two = get("/1");
    two.extend_from_slice(&get("/2"));
    let mut pending_a = Vec::new();
    let mut pending_b = Vec::new();
    for _ in 0..50 {
        a.write_all(&two).expect("send");
        b.write_all(&get("/3")).expect("send");
        for _ in 0..2 {
            let r = read_response(&mut a, &mut pending_a)
                .expect("read")
                .expect("an answer");
            assert_eq!(r.status, 200);
            assert_eq!(r.times_us().1, 500);
        }
        let r = read_response(&mut b, &mut pending_b)
            .expect("read")
            .expect("an answer");
        assert_eq!(r.status, 200);
    }
    let text = scrape(&h);
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"served\"}"),
        150.0
    );
    assert_eq!(metric(&text, "qserve_spin_seconds"), 0.002);
    let fired = metric(&text, "qserve_timer_lateness_seconds_count");
    assert!(
        (100.0..=150.0).contains(&fired),
        "{fired} timers fired for 150 answers"
    );
}

#[test]
fn pipelined_answers_come_in_request_order() {
    // With infinitely many servers each request departs after its own service time, so later
    // requests often depart before earlier ones; the answers must still follow request order.
    // The service times are the seeded draws in arrival order, so the n-th answer must report
    // the n-th draw.
    let seed = 77;
    let h = server(|c| {
        c.model.servers = Servers::Infinite;
        c.model.mu = 200.0;
        c.seed = seed;
    });
    let sampler = ServiceSampler::new(ServiceKind::Exp, 200.0);
    let mut draws = rng(seed, SERVICE_STREAM);
    let mut s = connect(&h);
    let mut batch = Vec::new();
    let n = 24;
    for i in 0..n {
        if i == 10 {
            batch.extend_from_slice(&get("/healthz"));
        }
        batch.extend_from_slice(&get(&format!("/r/{i}")));
    }
    s.write_all(&batch).expect("send the pipeline");
    let mut pending = Vec::new();
    let mut arrival_order_departures = Vec::new();
    for i in 0..=n {
        let r = read_response(&mut s, &mut pending)
            .expect("read")
            .expect("a response");
        assert_eq!(r.status, 200);
        if i == 10 {
            assert_eq!(r.text(), "ok\n", "the /healthz answer keeps its place");
            continue;
        }
        let expected_us = (sampler.sample_ns(&mut draws) + 500) / 1000;
        let (wait, service) = r.times_us();
        assert_eq!((wait, service), (0, expected_us), "answer {i} out of order");
        arrival_order_departures.push(expected_us);
    }
    let mut sorted = arrival_order_departures.clone();
    sorted.sort_unstable();
    assert_ne!(
        sorted, arrival_order_departures,
        "the draws should depart out of order, or the test proves nothing"
    );
}

#[test]
fn http10_closes_unless_keep_alive() {
    let h = server(|c| c.model.service = ServiceKind::Zero);
    let mut s = connect(&h);
    let r = roundtrip(&mut s, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(r.closes());
    assert!(closed_by_server(&mut s));

    let mut s = connect(&h);
    let ka = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let r = roundtrip(&mut s, ka);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    let r = roundtrip(&mut s, ka);
    assert_eq!(r.status, 200);
}

#[test]
fn connection_close_is_honoured_and_later_requests_ignored() {
    let h = server(|c| c.model.service = ServiceKind::Zero);
    let mut s = connect(&h);
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_vec();
    raw.extend_from_slice(&get("/after-close"));
    s.write_all(&raw).expect("send");
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending)
        .expect("read")
        .expect("a response");
    assert!(r.closes());
    assert!(
        read_response(&mut s, &mut pending)
            .expect("a clean close")
            .is_none(),
        "nothing is answered after Connection: close"
    );
}

#[test]
fn every_bad_input_gets_its_status_and_a_close() {
    let h = server(|c| c.model.service = ServiceKind::Zero);
    let long_head = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "y".repeat(9000)
    );
    let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n".to_vec(), 400),
        ("no host", b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("two hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), 400),
        (
            "conflicting lengths",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
                .to_vec(),
            400,
        ),
        (
            "invalid length",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3x\r\n\r\nabc".to_vec(),
            400,
        ),
        (
            "length with transfer-encoding",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_vec(),
            400,
        ),
        (
            "control byte in a header",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\x07b\r\n\r\n".to_vec(),
            400,
        ),
        (
            "body too large",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n".to_vec(),
            413,
        ),
        ("head too large", long_head.into_bytes(), 431),
        (
            "too many headers",
            format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").into_bytes(),
            431,
        ),
        (
            "chunked body",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                .to_vec(),
            501,
        ),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n".to_vec(), 505),
        ("HTTP/1.7", b"GET / HTTP/1.7\r\nHost: a\r\n\r\n".to_vec(), 505),
    ];
    for (name, raw, status) in &cases {
        let (r, mut s) = answer_after_a_good_request(&h, raw, name);
        assert_eq!(r.status, *status, "{name}: {:?}", r.text());
        assert!(r.closes(), "{name}: Connection: close");
        assert!(closed_by_server(&mut s), "{name}: the server closes");
    }
    let text = scrape(&h);
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"bad_request\"}"),
        7.0
    );
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"too_large\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"head_too_large\"}"),
        2.0
    );
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"not_implemented\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"bad_version\"}"),
        2.0
    );
}

#[test]
fn request_bodies_are_skipped() {
    let h = server(|c| c.model.service = ServiceKind::Zero);
    let mut s = connect(&h);
    s.write_all(b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234")
        .expect("send");
    std::thread::sleep(Duration::from_millis(50));
    let mut rest = b"56789".to_vec();
    rest.extend_from_slice(&get("/b"));
    s.write_all(&rest).expect("send");
    let mut pending = Vec::new();
    for _ in 0..2 {
        let r = read_response(&mut s, &mut pending)
            .expect("read")
            .expect("a response");
        assert_eq!(r.status, 200);
    }
}

#[test]
fn expect_100_continue_gets_an_interim_answer() {
    let h = server(|c| c.model.service = ServiceKind::Zero);
    let mut s = connect(&h);
    s.write_all(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .expect("send the head");
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).expect("read the interim answer");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"body").expect("send the body");
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending)
        .expect("read")
        .expect("the final answer");
    assert_eq!(r.status, 200);
}

#[test]
fn a_flooding_pipeline_does_not_starve_other_connections() {
    let h = server(|c| c.model.service = ServiceKind::Zero);
    let addr = h.local_addr();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooder = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).expect("connect");
            let mut r = s.try_clone().expect("clone");
            let reader = std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = read_retrying(&mut r, &mut buf) {
                    if n == 0 {
                        break;
                    }
                }
            });
            let req = get("/flood");
            let chunk: Vec<u8> = req.iter().copied().cycle().take(req.len() * 2000).collect();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = s.shutdown(Shutdown::Both);
            let _ = reader.join();
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let mut s = connect(&h);
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(roundtrip(&mut s, &get("/")).status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "starved by the flood"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flooder.join().expect("the flooder");
}

#[test]
fn slow_head_gets_408() {
    let h = server(|c| {
        c.model.service = ServiceKind::Zero;
        c.header_timeout = Duration::from_millis(300);
    });
    let mut s = connect(&h);
    let started = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
        .expect("send half a head");
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending)
        .expect("read")
        .expect("a 408");
    assert_eq!(r.status, 408);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "not before the timeout"
    );
    assert!(closed_by_server(&mut s));
}

#[test]
fn idle_connections_are_closed() {
    let h = server(|c| {
        c.model.service = ServiceKind::Zero;
        c.idle_timeout = Duration::from_millis(300);
    });
    let mut s = connect(&h);
    assert_eq!(roundtrip(&mut s, &get("/")).status, 200);
    let started = Instant::now();
    assert!(closed_by_server(&mut s));
    assert!(started.elapsed() >= Duration::from_millis(250));
    let text = scrape(&h);
    assert_eq!(
        metric(&text, "qserve_connections_closed_total{reason=\"idle\"}"),
        1.0
    );
}

#[test]
fn half_closed_client_still_gets_its_answer() {
    let h = server(|c| {
        c.model.service = ServiceKind::Const;
        c.model.mu = 20.0;
    });
    let mut s = connect(&h);
    s.write_all(&get("/")).expect("send");
    s.shutdown(Shutdown::Write).expect("half-close");
    let mut all = Vec::new();
    s.read_to_end(&mut all)
        .expect("read until the server closes");
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\"service_us\":50000}\n"), "{text}");
}

#[test]
fn arrivals_at_capacity_get_503() {
    // One server, K = 2, each service exactly 400 ms: of four simultaneous requests two are in
    // the system (one served, one waiting) and two are turned away at once.
    let h = server(|c| {
        c.model.service = ServiceKind::Const;
        c.model.mu = 2.5;
        c.model.capacity = Some(2);
    });
    let mut conns: Vec<TcpStream> = (0..4).map(|_| connect(&h)).collect();
    let started = Instant::now();
    for s in conns.iter_mut() {
        s.write_all(&get("/")).expect("send");
    }
    let mut statuses = Vec::new();
    for s in conns.iter_mut() {
        let mut pending = Vec::new();
        let r = read_response(s, &mut pending)
            .expect("read")
            .expect("a response");
        statuses.push((r.status, started.elapsed()));
        if r.status == 503 {
            assert_eq!(r.text(), "{\"error\":\"capacity\"}\n");
            assert!(!r.closes(), "a blocked request keeps its connection");
        }
    }
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    let blocked = statuses.iter().filter(|(s, _)| *s == 503).count();
    assert_eq!((ok, blocked), (2, 2), "{statuses:?}");
    let text = scrape(&h);
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"blocked\"}"),
        2.0
    );
    assert_eq!(metric(&text, "qserve_capacity"), 2.0);
}

#[test]
fn connections_over_the_limit_are_closed_at_once() {
    let h = server(|c| {
        c.model.service = ServiceKind::Zero;
        c.max_connections = 2;
    });
    let mut a = connect(&h);
    let mut b = connect(&h);
    assert_eq!(roundtrip(&mut a, &get("/")).status, 200);
    assert_eq!(roundtrip(&mut b, &get("/")).status, 200);
    let mut c = connect(&h);
    let _ = c.write_all(&get("/"));
    assert!(closed_by_server(&mut c), "the third connection is closed");
    // The first two are unharmed, and once one closes there is room again.
    assert_eq!(roundtrip(&mut a, &get("/")).status, 200);
    drop(b);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut d = connect(&h);
        if d.write_all(&get("/")).is_ok() {
            let mut pending = Vec::new();
            if let Ok(Some(r)) = read_response(&mut d, &mut pending) {
                assert_eq!(r.status, 200);
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no room after a connection closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(a);
    h.shutdown();
    let summary = h.join().expect("clean shutdown");
    assert!(summary.counters.conn_rejected >= 1);
}

#[test]
fn a_client_that_never_reads_cannot_make_the_server_buffer() {
    let h = server(|c| c.model.service = ServiceKind::Zero);
    let mut flood = connect(&h);
    flood
        .set_write_timeout(Some(Duration::from_secs(2)))
        .expect("set a write timeout");
    let req = get("/flood");
    let chunk: Vec<u8> = req.iter().copied().cycle().take(req.len() * 1000).collect();
    // Without back-pressure the server would read everything and buffer ~4x as many answer bytes.
    let limit: usize = 256 << 20;
    let mut written = 0usize;
    let started = Instant::now();
    loop {
        match flood.write(&chunk) {
            Ok(n) => written += n,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                break;
            }
            Err(e) => panic!("write failed: {e}"),
        }
        assert!(
            written < limit,
            "the server kept reading {written} bytes from a client that never reads"
        );
        assert!(started.elapsed() < PATIENCE, "the flood never blocked");
    }
    // Other clients are unharmed.
    let mut other = connect(&h);
    assert_eq!(roundtrip(&mut other, &get("/healthz")).status, 200);
    drop(flood);
}

#[test]
fn metrics_and_healthz_bypass_a_full_queue() {
    let h = server(|c| {
        c.model.service = ServiceKind::Const;
        c.model.mu = 0.5; // 2 s per request
        c.model.capacity = Some(1);
        c.model.servers = Servers::Finite(1);
    });
    let mut busy = connect(&h);
    busy.write_all(&get("/slow")).expect("send");
    let text = wait_for_metrics(&h, "the slow request to arrive", |t| {
        metric(t, "qserve_in_system") == 1.0
    });
    let started = Instant::now();
    let mut s = connect(&h);
    let r = roundtrip(&mut s, &get("/healthz"));
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "healthz waited in the queue"
    );
    for (name, value) in [
        ("qserve_arrivals_total", 1.0),
        ("qserve_busy_servers", 1.0),
        ("qserve_busy_seconds_total", 2.0),
        ("qserve_mu", 0.5),
        ("qserve_servers", 1.0),
        ("qserve_capacity", 1.0),
        ("qserve_overflow_limit", 100_000.0),
        ("qserve_threads", 1.0),
        ("qserve_connections_total{result=\"rejected\"}", 0.0),
        ("qserve_info{model=\"M/D/1/1\",service=\"const\"}", 1.0),
    ] {
        assert_eq!(metric(&text, name), value, "{name}");
    }
    assert!(metric(&text, "qserve_connections") >= 2.0);
    assert!(metric(&text, "qserve_uptime_seconds") > 0.0);
    for series in [
        "# TYPE qserve_sojourn_seconds summary",
        "# TYPE qserve_timer_lateness_seconds summary",
        "qserve_sojourn_seconds{quantile=\"0.99\"}",
        "qserve_timer_lateness_seconds_count",
        "qserve_requests_unanswered_total{reason=\"abandoned\"}",
    ] {
        assert!(text.contains(series), "missing {series}");
    }
    let mut pending = Vec::new();
    let r = read_response(&mut busy, &mut pending)
        .expect("read")
        .expect("the slow answer");
    assert_eq!(r.times_us(), (0, 2_000_000));
    let text = scrape(&h);
    assert_eq!(metric(&text, "qserve_sojourn_seconds_count"), 1.0);
    assert_eq!(metric(&text, "qserve_timer_lateness_seconds_count"), 1.0);
    assert!(metric(&text, "qserve_timer_lateness_seconds{quantile=\"1\"}") < 1.0);
}

#[test]
fn shutdown_answers_every_request_in_flight() {
    // One server, 100 ms per request: six requests on three connections take 600 ms to drain.
    let h = server(|c| {
        c.model.service = ServiceKind::Const;
        c.model.mu = 10.0;
        c.grace = Duration::from_secs(30);
    });
    let mut conns: Vec<TcpStream> = (0..3).map(|_| connect(&h)).collect();
    for s in conns.iter_mut() {
        let mut two = get("/a");
        two.extend_from_slice(&get("/b"));
        s.write_all(&two).expect("send");
    }
    let mut idle = connect(&h);
    assert_eq!(roundtrip(&mut idle, &get("/healthz")).status, 200);
    wait_for_metrics(&h, "all six requests to arrive", |t| {
        metric(t, "qserve_arrivals_total") == 6.0
    });
    h.shutdown();
    for (i, s) in conns.iter_mut().enumerate() {
        let mut pending = Vec::new();
        let first = read_response(s, &mut pending)
            .expect("read")
            .expect("first answer");
        let second = read_response(s, &mut pending)
            .expect("read")
            .expect("second answer");
        assert_eq!((first.status, second.status), (200, 200), "connection {i}");
        assert!(second.closes(), "the last answer while draining says close");
        assert!(
            read_response(s, &mut pending)
                .expect("clean close")
                .is_none()
        );
    }
    assert!(closed_by_server(&mut idle), "idle connections are closed");
    let summary = h.join().expect("clean shutdown");
    assert_eq!(summary.counters.served, 6);
    assert_eq!(
        summary.counters.abandoned + summary.counters.grace_expired,
        0
    );
    assert_eq!(summary.arrivals, 6);
}

#[test]
fn requests_after_shutdown_get_503_and_new_connections_are_refused() {
    let h = server(|c| {
        c.model.service = ServiceKind::Const;
        c.model.mu = 5.0;
        c.grace = Duration::from_secs(30);
    });
    let mut s = connect(&h);
    s.write_all(&get("/queued")).expect("send");
    wait_for_metrics(&h, "the request to arrive", |t| {
        metric(t, "qserve_arrivals_total") == 1.0
    });
    let addr = h.local_addr();
    h.shutdown();
    s.write_all(&get("/late")).expect("send after shutdown");
    let mut pending = Vec::new();
    let first = read_response(&mut s, &mut pending)
        .expect("read")
        .expect("the queued answer");
    assert_eq!(first.status, 200);
    let second = read_response(&mut s, &mut pending)
        .expect("read")
        .expect("the late answer");
    assert_eq!(second.status, 503);
    assert!(second.closes());
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        std::thread::sleep(Duration::from_millis(10));
    }
    let summary = h.join().expect("clean shutdown");
    assert_eq!(summary.counters.shutting_down, 1);
}

#[test]
fn grace_expiry_counts_what_is_left() {
    let h = server(|c| {
        c.model.service = ServiceKind::Const;
        c.model.mu = 0.1; // 10 s
        c.grace = Duration::from_millis(200);
    });
    let mut s = connect(&h);
    s.write_all(&get("/")).expect("send");
    wait_for_metrics(&h, "the request to arrive", |t| {
        metric(t, "qserve_arrivals_total") == 1.0
    });
    let started = Instant::now();
    h.shutdown();
    let summary = h.join().expect("shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "grace was not applied"
    );
    assert_eq!(summary.counters.grace_expired, 1);
    assert_eq!(summary.counters.served, 0);
    assert!(closed_by_server(&mut s));
}

#[test]
fn several_threads_share_one_queue() {
    // Two I/O threads, one server at 100 ms per request: ten requests on ten connections (spread
    // over both threads by the kernel) must be served one after the other.
    let h = server(|c| {
        c.threads = 2;
        c.model.service = ServiceKind::Const;
        c.model.mu = 10.0;
    });
    let mut conns: Vec<TcpStream> = (0..10).map(|_| connect(&h)).collect();
    for s in conns.iter_mut() {
        s.write_all(&get("/")).expect("send");
    }
    let mut waits: Vec<u64> = conns
        .iter_mut()
        .map(|s| {
            let mut pending = Vec::new();
            let r = read_response(s, &mut pending)
                .expect("read")
                .expect("an answer");
            assert_eq!(r.status, 200);
            r.times_us().0
        })
        .collect();
    waits.sort_unstable();
    // Waits are multiples of 100 ms minus the tiny gaps between arrivals: k*100ms - gaps.
    for (k, w) in waits.iter().enumerate() {
        let ideal = k as u64 * 100_000;
        assert!(
            *w <= ideal && ideal - *w < 50_000,
            "wait {w}us of the {k}-th request; all waits {waits:?}"
        );
    }
}
