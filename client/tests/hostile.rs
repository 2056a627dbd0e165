//! qload against hostile servers: bad chunk framing, bodies beyond the limit, resets, slow drips,
//! answers that come before the request. Each test points an open-loop run at a server whose first
//! few connections misbehave (each carries exactly one request: qload opens a connection for a
//! request and never reuses one that failed) while the later ones answer properly, and checks
//!
//! - the error kind: exactly one error of the documented kind per hostile connection;
//! - accounting: `issued = completed + errors`, nothing retried (the hostile connections are fresh);
//! - other traffic unharmed: every other request completes, on later connections;
//! - the deadline: the run ends within its duration plus one timeout, plus a margin for a loaded
//!   machine (behaviour is checked, never speed).
//!
//! The servers are threads on 127.0.0.1:0, bounded in what they send and in time. The test binary
//! counts its heap (a global allocator) so that a huge body can be shown not to be kept; that test
//! runs alone (the others take a shared lock, it takes it exclusively).
mod support;

use support::{head_end, reset};

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use queuelab_client::result::RunResult;
use queuelab_client::{Mode, run};
use queuelab_common::http::MAX_RESPONSE_BODY;
use queuelab_common::samplers::ArrivalKind;

/// Heap bytes in use by the whole test binary, and the most since the last reset.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting the bytes in use.
struct Counting;

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the counters are only bookkeeping on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout is passed on as received.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (through this allocator).
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` with `layout`; the caller guarantees the rest.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Shared by the tests, taken exclusively by the one that measures the heap.
static HEAP: RwLock<()> = RwLock::new(());

fn shared_lock() -> std::sync::RwLockReadGuard<'static, ()> {
    HEAP.read().unwrap_or_else(|e| e.into_inner())
}

/// What a hostile connection does: gets the connection's number among the hostile ones.
type Script = fn(usize, TcpStream);

/// A server whose first `bad` connections run `script`; later ones answer every request with
/// `200` and a small body, keep-alive.
#[derive(Debug)]
struct Hostile {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    good_requests: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
}

impl Hostile {
    fn start(bad: usize, script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let good_requests = Arc::new(AtomicUsize::new(0));
        let (s, a, g) = (
            Arc::clone(&stop),
            Arc::clone(&accepted),
            Arc::clone(&good_requests),
        );
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let n = a.fetch_add(1, Ordering::SeqCst);
                let (s, g) = (Arc::clone(&s), Arc::clone(&g));
                std::thread::spawn(move || {
                    if n < bad {
                        script(n, stream);
                    } else {
                        answer_well(stream, &s, &g);
                    }
                });
            }
        });
        Self {
            addr,
            stop,
            accepted,
            good_requests,
            accept: Some(accept),
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn good_requests(&self) -> usize {
        self.good_requests.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Reads until a whole request head has arrived (or the peer goes away, or 5 s pass).
fn read_request(s: &mut TcpStream) -> bool {
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while Instant::now() < deadline && len < buf.len() {
        match s.read(&mut buf[len..]) {
            Ok(0) => return false,
            Ok(n) => {
                len += n;
                if head_end(&buf[..len]).is_some() {
                    return true;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    false
}

/// Keeps the connection until the peer closes it (at most 5 s), reading and dropping.
fn hold_until_closed(s: &mut TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

const GOOD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// The well-behaved server: answers every request head with `GOOD`, keep-alive.
fn answer_well(mut s: TcpStream, stop: &AtomicBool, requests: &AtomicUsize) {
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = vec![0u8; 16 * 1024];
    let mut len = 0;
    while !stop.load(Ordering::SeqCst) {
        while let Some(end) = head_end(&buf[..len]) {
            buf.copy_within(end..len, 0);
            len -= end;
            requests.fetch_add(1, Ordering::SeqCst);
            if s.write_all(GOOD).is_err() {
                return;
            }
        }
        if len == buf.len() {
            return;
        }
        match s.read(&mut buf[len..]) {
            Ok(0) => return,
            Ok(n) => len += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Writes `total` bytes of zeros after `head`, in 64 KiB writes, until the peer stops reading.
fn stream_body(s: &mut TcpStream, head: &[u8], total: usize) -> usize {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    if s.write_all(head).is_err() {
        return 0;
    }
    let mut sent = 0;
    while sent < total {
        let n = ZEROS.len().min(total - sent);
        match s.write(&ZEROS[..n]) {
            Ok(0) | Err(_) => break,
            Ok(k) => sent += k,
        }
    }
    sent
}

const RATE: f64 = 100.0;
const DURATION: Duration = Duration::from_millis(500);
/// Slack for start-up, thread scheduling and a loaded 2-core machine.
const MARGIN: Duration = Duration::from_secs(5);

/// An open-loop run of DURATION at RATE against `server` with `timeout`; checks the deadline and
/// the accounting, and returns the result.
fn run_against(server: &Hostile, timeout: Duration) -> RunResult {
    let mut c = support::config(
        server.addr,
        Mode::Open {
            rate: RATE,
            arrival: ArrivalKind::Constant,
        },
    );
    c.duration = Some(DURATION);
    c.timeout = timeout;
    // Small preallocations: the heap test measures what the run itself keeps.
    c.backlog = 1000;
    c.arrival_samples = 1000;
    let t = Instant::now();
    let r = run(c).expect("the run completes");
    let elapsed = t.elapsed();
    assert!(
        elapsed < DURATION + timeout + MARGIN,
        "the run took {elapsed:?} (duration {DURATION:?}, timeout {timeout:?})"
    );
    let q = &r.requests;
    assert_eq!(q.errors, q.errors_by_kind.total(), "{q:?}");
    assert_eq!(q.issued, q.completed + q.errors, "{q:?}");
    // Constant arrivals at 100/s for 0.5 s: 50 requests (one more or less at the edges).
    assert!((49..=51).contains(&q.issued), "{q:?}");
    assert_eq!(
        q.retries, 0,
        "hostile connections are fresh: nothing to retry; {q:?}"
    );
    r
}

/// The hostile connections failed with `kinds` only, and everything else completed with 200.
fn assert_only_bad_failed(r: &RunResult, server: &Hostile, bad: u64, failed: u64) {
    let q = &r.requests;
    assert_eq!(failed, bad, "{q:?}");
    assert_eq!(q.errors, bad, "{q:?}");
    assert_eq!(q.completed, q.issued - bad, "{q:?}");
    assert_eq!(q.status.s2xx, q.completed, "{q:?}");
    assert_eq!(server.good_requests() as u64, q.completed, "{q:?}");
    assert!(
        server.accepted() as u64 > bad,
        "accepted {}",
        server.accepted()
    );
}

#[test]
fn bad_chunk_sizes_count_parse_errors() {
    let _l = shared_lock();
    fn script(n: usize, mut s: TcpStream) {
        if !read_request(&mut s) {
            return;
        }
        let body: &[u8] = match n {
            // Not hexadecimal.
            0 => b"zz\r\nab\r\n0\r\n\r\n",
            // Overflows 64 bits (17 hex digits).
            1 => b"1ffffffffffffffff\r\nab\r\n0\r\n\r\n",
            // A size line without its CRLF, and data without its CRLF.
            2 => b"2 \nab\r\n0\r\n\r\n",
            _ => b"2\r\nabXY0\r\n\r\n",
        };
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let _ = s.write_all(&[&head[..], body].concat());
        // Stays open: qload must be the one to close.
        hold_until_closed(&mut s);
    }
    let server = Hostile::start(4, script);
    let r = run_against(&server, Duration::from_secs(2));
    assert_only_bad_failed(&r, &server, 4, r.requests.errors_by_kind.parse);
}

#[test]
fn bodies_over_the_limit_count_parse_errors_and_are_not_kept() {
    let _l = HEAP.write().unwrap_or_else(|e| e.into_inner());
    static SENT: AtomicUsize = AtomicUsize::new(0);
    fn script(n: usize, mut s: TcpStream) {
        if !read_request(&mut s) {
            return;
        }
        let total = MAX_RESPONSE_BODY + MAX_RESPONSE_BODY / 2;
        let head = match n {
            // Delimited by the close: caught while counting.
            0 => "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_owned(),
            // One chunk larger than the limit: caught at its size line.
            1 => format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{total:x}\r\n"),
            // A Content-Length over the limit: caught at the head.
            _ => format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n"),
        };
        SENT.fetch_add(
            stream_body(&mut s, head.as_bytes(), total),
            Ordering::SeqCst,
        );
    }
    let server = Hostile::start(3, script);
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let r = run_against(&server, Duration::from_secs(5));
    let peak = PEAK.load(Ordering::SeqCst).saturating_sub(before);
    assert_only_bad_failed(&r, &server, 3, r.requests.errors_by_kind.parse);
    // The close-delimited body really was streamed past the limit (the others may be cut short
    // by the close as soon as their head is read).
    let sent = SENT.load(Ordering::SeqCst);
    assert!(
        sent > MAX_RESPONSE_BODY,
        "the server sent only {sent} bytes"
    );
    // Body bytes are counted and dropped: the heap of the whole run (histograms, buffers,
    // preallocated tables: about 2 MB) grew by far less than one body's 16 MiB.
    assert!(
        peak < MAX_RESPONSE_BODY / 2,
        "the heap grew by {peak} bytes while {sent} body bytes were sent"
    );
}

#[test]
fn reset_mid_answer_counts_read_errors() {
    let _l = shared_lock();
    fn script(_: usize, mut s: TcpStream) {
        if !read_request(&mut s) {
            return;
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf of it");
        // Give the partial answer time to be read, then reset.
        std::thread::sleep(Duration::from_millis(20));
        reset(s);
    }
    let server = Hostile::start(3, script);
    let r = run_against(&server, Duration::from_secs(2));
    assert_only_bad_failed(&r, &server, 3, r.requests.errors_by_kind.read);
}

#[test]
fn accept_then_reset_counts_read_or_write_errors() {
    let _l = shared_lock();
    fn script(_: usize, s: TcpStream) {
        reset(s);
    }
    let server = Hostile::start(3, script);
    let r = run_against(&server, Duration::from_secs(2));
    let e = r.requests.errors_by_kind;
    // The connection was established, so never `connect`: `read` when the reset arrives before
    // or after the request is written, `write` when it arrives during the write.
    assert_eq!(e.connect, 0, "{e:?}");
    assert_only_bad_failed(&r, &server, 3, e.read + e.write);
}

#[test]
fn slow_drip_beyond_the_timeout_counts_timeouts() {
    let _l = shared_lock();
    fn script(_: usize, mut s: TcpStream) {
        if !read_request(&mut s) {
            return;
        }
        // A valid answer, one byte every 30 ms: 2.5 s in all, far beyond the 300 ms timeout.
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n0123456789012345678901234567890123456789";
        for b in answer {
            if s.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }
    let server = Hostile::start(3, script);
    let timeout = Duration::from_millis(300);
    let r = run_against(&server, timeout);
    assert_only_bad_failed(&r, &server, 3, r.requests.errors_by_kind.timeout);
}

#[test]
fn answer_before_the_request_is_taken_as_the_answer() {
    let _l = shared_lock();
    fn script(_: usize, mut s: TcpStream) {
        // An overloaded server's early refusal, written as soon as the connection is accepted.
        let _ = s.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy",
        );
        // Read the request before closing, so that the close is orderly (no reset).
        read_request(&mut s);
        hold_until_closed(&mut s);
    }
    let server = Hostile::start(3, script);
    let r = run_against(&server, Duration::from_secs(2));
    let q = &r.requests;
    // HTTP/1.1 lets a server answer before the request is complete: the answer counts, it is
    // not lost (without reading it the request would hang until its timeout).
    assert_eq!(q.errors, 0, "{q:?}");
    assert_eq!(q.completed, q.issued, "{q:?}");
    assert_eq!(q.status.s503, 3, "{q:?}");
    assert_eq!(q.status.s2xx, q.completed - 3, "{q:?}");
    assert_eq!(server.good_requests() as u64, q.completed - 3);
}
