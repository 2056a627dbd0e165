//! No allocation per request on the hot path: after warm-up, thousands of requests (plain and
//! pipelined, with and without the queue, FCFS and processor sharing, a network of
//! event-driven stations, each with its `Server-Timing` header, and forwarded from one station to another over kept-alive
//! connections) make (almost) no allocation in the whole process.
//!
//! This file holds one test only, so that nothing else allocates in the process meanwhile.
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use queuelab_common::model::{Classes, Discipline, Model};
use queuelab_common::network::{Network, Station};
use queuelab_common::samplers::ServiceKind;
use queuelab_common::theory::Servers;
use support::*;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers every call to the system allocator unchanged and only bumps an atomic counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Sends `rounds` batches of `depth` pipelined requests and reads the `depth` answers into a
/// fixed buffer, so the client itself allocates nothing. Every answer's body ends in `}\n`, which
/// no header holds, so the answers are counted by that; their lengths may differ (a queued
/// answer's `Server-Timing` grows by a digit when its lateness reaches 10 ms), at most `answer_max`
/// bytes each.
fn exchange(
    s: &mut std::net::TcpStream,
    batch: &[u8],
    depth: usize,
    answer_max: usize,
    rounds: usize,
) {
    let mut buf = vec![0u8; answer_max * depth];
    for _ in 0..rounds {
        s.write_all(batch).expect("send");
        let mut len = 0;
        let mut answers = 0;
        while answers < depth {
            assert!(len < buf.len(), "answers longer than {answer_max} bytes");
            let n = read_retrying(s, &mut buf[len..]).expect("read the answers");
            assert!(n > 0, "EOF after {answers} of {depth} answers");
            // Ends split across reads are found: the scan starts a byte before the new data.
            let from = len.saturating_sub(1);
            len += n;
            answers += buf[from..len].windows(2).filter(|w| w == b"}\n").count();
        }
        assert_eq!(answers, depth, "more answers than requests");
        // Every answer of the batch, in release builds too (an `assert!` formats its message,
        // and so allocates, only when it fails).
        let mut rest = &buf[..len];
        for i in 0..depth {
            assert!(
                rest.starts_with(b"HTTP/1.1 200 OK"),
                "answer {i} of a batch is not a 200: {:?}",
                String::from_utf8_lossy(rest)
            );
            let end = rest
                .windows(2)
                .position(|w| w == b"}\n")
                .expect("counted above")
                + 2;
            rest = &rest[end..];
        }
        assert!(rest.is_empty());
    }
}

fn measure(name: &str, configure: impl FnOnce(&mut queuelab_server::Config)) {
    let h = server(configure);
    measure_on(name, &h);
    h.shutdown();
    h.join().expect("clean shutdown");
}

/// Warm-up, then counts the allocations of 5,000 single and 500 × 16 pipelined requests to `h`.
fn measure_on(name: &str, h: &queuelab_server::Handle) {
    let mut s = connect(h);
    let req = get("/");
    // A constant body and a Date of fixed width; only a queued answer's `late` in its
    // Server-Timing may grow by a few digits.
    let first = roundtrip(&mut s, &req);
    assert_eq!(first.status, 200);
    assert!(first.header("server-timing").is_some(), "{first:?}");
    let probe = first.wire_len() + 32;
    let depth = 16;
    let batch: Vec<u8> = req
        .iter()
        .copied()
        .cycle()
        .take(req.len() * depth)
        .collect();
    exchange(&mut s, &req, 1, probe, 2_000);
    exchange(&mut s, &batch, depth, probe, 200);
    let before = ALLOCS.load(Ordering::Relaxed);
    exchange(&mut s, &req, 1, probe, 5_000);
    exchange(&mut s, &batch, depth, probe, 500);
    let allocated = ALLOCS.load(Ordering::Relaxed) - before;
    let requests = 5_000 + 500 * depth;
    // Per-request allocation would show `requests` or more; the slack covers rare growth of a
    // reused buffer and the test harness.
    assert!(
        allocated < 20,
        "{name}: {allocated} allocations for {requests} requests"
    );
    eprintln!("{name}: {allocated} allocations for {requests} requests");
}

/// The forward path, station A to station B, both in this process (so both are counted): A's
/// pool connections to B are opened during the warm-up (one suffices for one client connection,
/// whose requests are forwarded one at a time) and kept alive, and then each request is A's
/// wait and service, the request written into the pool connection's buffer, B's answer parsed
/// and relayed with the composed Server-Timing.
fn measure_forward() {
    let b = server(|c| c.model.service = ServiceKind::Zero);
    let a = server(|c| {
        c.model.service = ServiceKind::Zero;
        c.forward = Some(queuelab_server::Forward::new(&format!(
            "http://{}/",
            b.local_addr()
        )));
    });
    measure_on("forward A -> B", &a);
    let m = scrape(&a);
    // Every request went downstream: the first, the warm-up's and the measured ones.
    let sent = 1 + 2_000 + 200 * 16 + 5_000 + 500 * 16;
    assert_eq!(metric(&m, "qserve_forward_requests_total"), f64::from(sent));
    assert_eq!(
        metric(&m, "qserve_requests_total{outcome=\"forwarded\"}"),
        f64::from(sent)
    );
    a.shutdown();
    a.join().expect("A ends");
    b.shutdown();
    b.join().expect("B ends");
}

#[test]
fn requests_do_not_allocate() {
    measure("zero service", |c| c.model.service = ServiceKind::Zero);
    // Constant service through the queue and the timer wheel: every answer has the same length.
    measure("queued", |c| {
        c.model.service = ServiceKind::Const;
        c.model.servers = Servers::Infinite;
        c.model.mu = 50_000.0;
    });
    // Processor sharing with two classes: departures known only when they come (a ticket
    // polled at its earliest departure, re-armed when postponed), a class drawn per arrival,
    // named in Server-Timing and counted by class. Waits vary, so answers differ by a few
    // digits, within the probe's slack.
    measure("processor sharing, two classes", |c| {
        c.model.service = ServiceKind::Const;
        c.model.mu = 50_000.0;
        c.model.discipline = Discipline::Ps;
        c.model.classes = Classes::new(&[0.5, 0.5]).expect("valid classes");
    });
    // A network of event-driven stations (processor sharing, then preemptive priority) with two
    // classes: departures processed one at a time, tickets re-armed, every visit in
    // Server-Timing with the class last. A tandem, so every answer has the same fields.
    let mut net = Network {
        stations: vec![
            Station {
                name: "front".into(),
                model: Model::new(50_000.0, Servers::Finite(1))
                    .with_service(ServiceKind::Const)
                    .with_discipline(Discipline::Ps),
            },
            Station {
                name: "prio".into(),
                model: Model::new(50_000.0, Servers::Finite(1))
                    .with_discipline(Discipline::PriorityPreemptive),
            },
        ],
        entry: vec![1.0, 0.0],
        routing: vec![vec![0.0, 1.0], vec![0.0, 0.0]],
        exit: vec![0.0, 1.0],
        classes: Classes::default(),
    };
    net.classes = Classes::new(&[0.5, 0.5]).expect("valid classes");
    measure("network of PS and priority stations", |c| {
        c.network = Some(net)
    });
    measure_forward();
}
