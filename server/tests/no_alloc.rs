//! No allocation per request on the hot path: after warm-up, thousands of requests (plain and
//! pipelined, with and without the queue) make (almost) no allocation in the whole process.
//!
//! This file holds one test only, so that nothing else allocates in the process meanwhile.
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Sends `rounds` batches of `depth` pipelined requests, reading the `depth` answers (of fixed
/// length `answer_len`) into a fixed buffer, so the client itself allocates nothing.
fn exchange(
    s: &mut std::net::TcpStream,
    batch: &[u8],
    depth: usize,
    answer_len: usize,
    rounds: usize,
) {
    let mut buf = vec![0u8; answer_len * depth];
    for _ in 0..rounds {
        s.write_all(batch).expect("send");
        s.read_exact(&mut buf).expect("read the answers");
        // Every answer of the batch, in release builds too (an `assert!` formats its message,
        // and so allocates, only when it fails).
        for (i, answer) in buf.chunks(answer_len).enumerate() {
            assert!(
                answer.starts_with(b"HTTP/1.1 200 OK"),
                "answer {i} of a batch is not a 200: {:?}",
                String::from_utf8_lossy(answer)
            );
        }
    }
}

fn measure(name: &str, configure: impl FnOnce(&mut queuelab_server::Config)) {
    let h = server(configure);
    let mut s = connect(&h);
    let req = get("/");
    // The answer's length is fixed (a constant body, a Date of fixed width).
    let first = roundtrip(&mut s, &req);
    assert_eq!(first.status, 200);
    let probe = first.wire_len();
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
    drop(s);
    h.shutdown();
    h.join().expect("clean shutdown");
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
}
