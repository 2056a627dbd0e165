//! Allocations per request on one kept-alive connection, plain and TLS, counted by a global
//! allocator (this test binary has its own, and only this test).
//!
//! The count covers every thread but the test server's (its threads mark themselves), so it
//! holds qload's worker and coordinator. Two runs of one user on one connection differ only in
//! their number of requests (R and R + 1000): everything a run does once (threads, histograms,
//! the connection, its TLS handshake and buffers, the move to qload's record layer, the session
//! tickets, the result) is the same in both, so the difference of their counts is what 1000
//! requests after the first cost.
//!
//! A plain request allocates nothing, and neither does a TLS request, in TLS 1.3 and TLS 1.2 and
//! each of their AEADs: after the handshake the records are sealed and opened in place in the
//! connection's buffers (`tls::record`). (On rustls 0.23's own record path, which the
//! connections left, a request of one record answered by one record allocated exactly twice:
//! its unbuffered API seals each outgoing record in a fresh `Vec` and copies each opened one
//! into another.) One allocation per request anywhere would show as 1.0.
mod tls_server;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use queuelab_client::tls::Verify;
use queuelab_client::{Config, Mode, Target, run};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tls_server::{Behavior, Pki, TlsServer};

/// Allocations (and reallocations) by the counted threads.
static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the test server's threads: their allocations are not counted.
    static IGNORED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    // `try_with`: a thread being torn down has no thread-locals left; count it (conservative).
    if !IGNORED.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

/// The system allocator, counting allocations.
struct Counting;

// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the counter is only bookkeeping on the side (a const-initialized thread-local that
// never allocates).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's layout is passed on as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (through this allocator).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` was allocated by `System` with `layout`; the caller guarantees the rest.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn ignore_this_thread() {
    IGNORED.with(|c| c.set(true));
}

/// Allocations of a run of `n` requests, one after the other on one connection, to `target`.
fn allocations(target: &Target, n: u64) -> u64 {
    let mut c = Config::new(target.clone(), Mode::Max { connections: 1 });
    c.pin = false;
    c.threads = Some(1);
    c.requests = Some(n);
    c.duration = None;
    c.timeout = Duration::from_secs(5);
    // One interval for the whole run: its report is made once in either run.
    c.interval = Duration::from_secs(3600);
    c.backlog = 16;
    c.arrival_samples = 16;
    let before = ALLOCS.load(Ordering::SeqCst);
    let r = run(c).expect("the run completes");
    let after = ALLOCS.load(Ordering::SeqCst);
    assert_eq!(r.requests.completed, n, "{:?}", r.requests);
    assert_eq!(r.connections.opened, 1, "one connection carried them all");
    after - before
}

/// Allocations per request over 1000 requests after the first R = 200, best of three tries (a
/// try can only gain allocations from work that is not per request, never lose any).
fn per_request(target: &Target) -> f64 {
    (0..3)
        .map(|_| {
            let short = allocations(target, 200);
            let long = allocations(target, 1200);
            long.saturating_sub(short) as f64 / 1000.0
        })
        .fold(f64::INFINITY, f64::min)
}

/// A run's own bookkeeping may differ by an allocation or two between the short and the long run
/// (a time-series vector that grows with the run's length, not with its requests): at most 0.002
/// per request over the 1000. One allocation per request would show as 1.0.
const NONE: f64 = 0.01;

#[test]
fn requests_on_a_kept_alive_connection_allocate_nothing() {
    ignore_this_thread();
    let plain = TlsServer::start_with(Behavior::Plain, ignore_this_thread);
    IGNORED.with(|c| c.set(false));
    let plain_per_request = per_request(&Target::get(plain.addr()));
    eprintln!("allocations per request: plain {plain_per_request}");
    assert!(
        plain_per_request < NONE,
        "a plain request allocates ({plain_per_request})"
    );

    let pki = Pki::new(false);
    let mut store = RootCertStore::empty();
    store
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).expect("PEM"))
        .expect("a CA");
    let store = Arc::new(store);
    use rustls::crypto::ring::cipher_suite as s;
    // The test certificate is ECDSA: TLS 1.2's ECDHE_ECDSA suites.
    for suite in [
        s::TLS13_AES_128_GCM_SHA256,
        s::TLS13_AES_256_GCM_SHA384,
        s::TLS13_CHACHA20_POLY1305_SHA256,
        s::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        s::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        s::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ] {
        ignore_this_thread();
        let server =
            TlsServer::start_with(Behavior::Serve(pki.with_suite(suite)), ignore_this_thread);
        IGNORED.with(|c| c.set(false));
        let target = Target::https(
            server.addr(),
            "localhost",
            Verify::Roots(Arc::clone(&store)),
        )
        .expect("an https target");
        let n = per_request(&target);
        eprintln!("allocations per request: {suite:?} {n}");
        assert!(n < NONE, "a request over {suite:?} allocates {n} times");
    }
}
