//! The connection state machine against servers that behave and servers that misbehave: every
//! request ends as a completion or as exactly one error of the right kind, connections are reused
//! when they may be, and every run ends on time whatever the server does.
//!
//! Bounds on time are generous (the machine may be loaded): they check that a run ends, never how
//! fast it runs.
mod support;

use std::time::{Duration, Instant};

use queuelab_client::result::RunResult;
use queuelab_client::{Mode, run};
use queuelab_common::samplers::ArrivalKind;
use support::{Behavior, TestServer, config, refusing_addr};

const RATE: f64 = 200.0;

fn open() -> Mode {
    Mode::Open {
        rate: RATE,
        arrival: ArrivalKind::Poisson,
    }
}

/// Every measured request ends exactly once.
fn assert_accounted(r: &RunResult) {
    let q = &r.requests;
    assert_eq!(q.errors, q.errors_by_kind.total(), "{q:?}");
    assert_eq!(q.issued, q.completed + q.errors, "{q:?}");
    assert!(q.sent <= q.issued, "{q:?}");
}

/// Runs `n` requests at RATE against `behavior`, with `timeout`; returns the result and the
/// wall time of the run.
fn run_against(behavior: Behavior, n: u64, timeout: Duration) -> (RunResult, Duration, TestServer) {
    let server = TestServer::start(behavior);
    let mut c = config(server.addr(), open());
    c.requests = Some(n);
    c.duration = None;
    c.timeout = timeout;
    let t = Instant::now();
    let r = run(c).expect("the run completes");
    (r, t.elapsed(), server)
}

#[test]
fn content_length_answers_complete_on_reused_connections() {
    let (r, _, server) = run_against(Behavior::Length, 200, Duration::from_secs(5));
    assert_accounted(&r);
    assert_eq!(r.requests.completed, 200);
    assert_eq!(r.requests.status.s2xx, 200);
    assert_eq!(server.requests(), 200);
    // Keep-alive: far fewer connections than requests. At 200/s with answers in microseconds one
    // or two connections carry everything; 50 leaves room for a badly stalled machine.
    assert!(server.accepted() < 50, "accepted {}", server.accepted());
    assert_eq!(r.connections.opened as usize, server.accepted());
    assert_eq!(server.pipelined(), 0);
}

#[test]
fn chunked_answers_complete() {
    let (r, _, server) = run_against(Behavior::Chunked, 150, Duration::from_secs(5));
    assert_accounted(&r);
    assert_eq!(r.requests.completed, 150);
    assert!(server.accepted() < 50, "accepted {}", server.accepted());
}

#[test]
fn connection_close_is_honoured_with_one_connection_per_request() {
    let (r, _, server) = run_against(Behavior::ConnectionClose, 100, Duration::from_secs(5));
    assert_accounted(&r);
    assert_eq!(r.requests.completed, 100);
    assert_eq!(r.requests.errors, 0);
    assert_eq!(server.accepted(), 100);
    assert_eq!(r.connections.opened, 100);
}

#[test]
fn body_delimited_by_close_completes_at_eof() {
    let (r, _, server) = run_against(Behavior::BodyUntilClose, 100, Duration::from_secs(5));
    assert_accounted(&r);
    assert_eq!(r.requests.completed, 100);
    assert_eq!(server.accepted(), 100);
}

#[test]
fn server_closing_after_each_answer_is_followed_by_reconnects() {
    let (r, _, server) = run_against(Behavior::CloseAfterAnswer, 100, Duration::from_secs(5));
    assert_accounted(&r);
    // The close may race the next send on that connection (then `closed` or `read`); nothing else
    // may go wrong, and most requests complete.
    let e = r.requests.errors_by_kind;
    assert_eq!(e.closed + e.read, r.requests.errors, "{e:?}");
    assert!(r.requests.completed > 0);
    assert!(server.accepted() as u64 >= r.requests.completed);
}

#[test]
fn close_mid_answer_counts_closed() {
    let (r, _, _server) = run_against(Behavior::CloseMidAnswer, 100, Duration::from_secs(5));
    assert_accounted(&r);
    assert_eq!(r.requests.completed, 0);
    assert_eq!(r.requests.errors_by_kind.closed, 100, "{:?}", r.requests);
}

#[test]
fn garbage_counts_parse_errors() {
    let (r, _, _server) = run_against(Behavior::Garbage, 100, Duration::from_secs(5));
    assert_accounted(&r);
    assert_eq!(r.requests.completed, 0);
    assert_eq!(r.requests.errors_by_kind.parse, 100, "{:?}", r.requests);
}

#[test]
fn silent_server_times_out_and_the_run_ends_on_time() {
    let timeout = Duration::from_millis(300);
    let server = TestServer::start(Behavior::Silent);
    let mut c = config(server.addr(), open());
    c.duration = Some(Duration::from_secs(1));
    c.timeout = timeout;
    let t = Instant::now();
    let r = run(c).expect("the run completes");
    let elapsed = t.elapsed();
    assert_accounted(&r);
    assert_eq!(r.requests.completed, 0);
    let e = r.requests.errors_by_kind;
    // Requests written near the end are still in flight at the final deadline: `unfinished`.
    assert_eq!(e.timeout + e.unfinished, r.requests.issued, "{e:?}");
    assert!(e.timeout > 0, "{e:?}");
    // Duration + timeout, plus generous slack for start-up on a loaded machine.
    assert!(
        elapsed < Duration::from_secs(1) + timeout + Duration::from_secs(3),
        "took {elapsed:?}"
    );
    // One request in flight per connection: every unanswered request holds its own connection.
    assert_eq!(server.pipelined(), 0);
    assert_eq!(r.connections.opened as usize, server.accepted());
}

#[test]
fn refused_connections_count_connect_errors() {
    let mut c = config(refusing_addr(), open());
    c.requests = Some(100);
    c.duration = None;
    c.timeout = Duration::from_secs(2);
    let t = Instant::now();
    let r = run(c).expect("the run completes");
    assert_accounted(&r);
    assert_eq!(r.requests.errors_by_kind.connect, 100, "{:?}", r.requests);
    assert_eq!(r.requests.sent, 0);
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn statuses_are_counted_by_class() {
    let (r, _, _server) = run_against(Behavior::Unavailable, 100, Duration::from_secs(5));
    assert_accounted(&r);
    assert_eq!(r.requests.completed, 100);
    assert_eq!(r.requests.status.s5xx, 100);
    assert_eq!(r.requests.status.s503, 100);
    assert_eq!(r.requests.status.s2xx, 0);
}

#[test]
fn capped_connections_make_requests_wait_in_the_backlog() {
    // One connection to a silent server: the first request holds it until its timeout, every
    // later one waits in the backlog and is still waiting (unfinished) or dropped at the end.
    let server = TestServer::start(Behavior::Silent);
    let mut c = config(server.addr(), open());
    c.duration = Some(Duration::from_millis(500));
    c.timeout = Duration::from_millis(300);
    c.connections = Some(1);
    c.backlog = 20;
    let r = run(c).expect("the run completes");
    assert_accounted(&r);
    assert!(server.accepted() <= 3, "accepted {}", server.accepted());
    assert!(r.requests.backlog_waits > 0, "{:?}", r.requests);
    let e = r.requests.errors_by_kind;
    assert!(e.backlog > 0, "{e:?}");
    assert!(!r.warnings.is_empty());
}

#[test]
fn warmup_requests_are_sent_but_not_measured() {
    let server = TestServer::start(Behavior::Length);
    let mut c = config(server.addr(), open());
    c.warmup = Duration::from_millis(300);
    c.duration = None;
    c.requests = Some(100);
    let r = run(c).expect("the run completes");
    assert_accounted(&r);
    assert_eq!(r.requests.completed, 100);
    assert!(r.requests.warmup > 0, "{:?}", r.requests);
    assert_eq!(
        server.requests() as u64,
        r.requests.completed + r.requests.warmup
    );
    assert_eq!(r.latency_us.count, 100);
}

#[test]
fn closed_loop_users_think_and_need_at_most_one_connection_each() {
    let server = TestServer::start(Behavior::Length);
    let mode = Mode::Closed {
        users: 4,
        think: Duration::from_millis(5),
    };
    let mut c = config(server.addr(), mode);
    c.requests = Some(400);
    c.duration = None;
    let r = run(c).expect("the run completes");
    assert_accounted(&r);
    assert_eq!(r.requests.completed, 400);
    assert_eq!(r.mode, "closed");
    assert_eq!(r.target_rate, None);
    // Users take idle connections (kept alive) and never need more than one each.
    assert!(
        (1..=4).contains(&server.accepted()),
        "accepted {}",
        server.accepted()
    );
    assert_eq!(r.connections.opened as usize, server.accepted());
    assert_eq!(server.pipelined(), 0);
    // Each user thinks about 100 times, Exp(5ms) each: the busiest user's thinking alone is at
    // least a Gamma(100, 5ms) sum, mean 0.5s, sd 0.05s, so the run lasts more than 0.5s − 5 sd.
    assert!(r.duration_s > 0.25, "duration {}", r.duration_s);
}

#[test]
fn closed_loop_with_fewer_connections_than_users_queues_them() {
    let server = TestServer::start(Behavior::Length);
    let mode = Mode::Closed {
        users: 8,
        think: Duration::ZERO,
    };
    let mut c = config(server.addr(), mode);
    c.connections = Some(2);
    c.requests = Some(500);
    c.duration = None;
    let r = run(c).expect("the run completes");
    assert_accounted(&r);
    assert_eq!(r.requests.completed, 500);
    assert_eq!(server.accepted(), 2);
    assert!(r.requests.backlog_waits > 0);
    assert_eq!(server.pipelined(), 0);
}

#[test]
fn max_mode_keeps_every_connection_busy_with_one_request() {
    let server = TestServer::start(Behavior::Length);
    let mut c = config(server.addr(), Mode::Max { connections: 8 });
    c.requests = Some(3000);
    c.duration = None;
    let r = run(c).expect("the run completes");
    assert_accounted(&r);
    assert_eq!(r.requests.completed, 3000);
    assert_eq!(r.requests.errors, 0);
    assert_eq!(server.accepted(), 8);
    assert_eq!(server.pipelined(), 0);
    assert_eq!(r.mode, "max");
    assert!(r.throughput > 0.0);
}

#[test]
fn max_mode_with_two_threads_splits_connections() {
    let server = TestServer::start(Behavior::Length);
    let mut c = config(server.addr(), Mode::Max { connections: 6 });
    c.threads = Some(2);
    c.duration = Some(Duration::from_millis(500));
    let r = run(c).expect("the run completes");
    assert_accounted(&r);
    assert_eq!(r.config.threads, 2);
    assert_eq!(server.accepted(), 6);
    assert_eq!(r.requests.errors, 0);
    assert!(r.requests.completed > 0);
}

#[test]
fn stop_flag_ends_the_run_early() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let server = TestServer::start(Behavior::Length);
    let mut c = config(server.addr(), open());
    c.duration = Some(Duration::from_secs(60));
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let t = Instant::now();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        s.store(true, Ordering::SeqCst);
    });
    let r = queuelab_client::run_with_stop(c, stop).expect("the run completes");
    setter.join().expect("setter thread");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
    assert_accounted(&r);
    assert!(r.duration_s < 20.0);
    assert!(r.requests.completed > 0);
}

#[test]
fn max_mode_against_a_refusing_server_ends_on_time() {
    // Every connect fails at once and each user retries at once: the loop must still poll,
    // keep its deadlines and stop.
    let mut c = config(refusing_addr(), Mode::Max { connections: 4 });
    c.duration = Some(Duration::from_millis(300));
    c.timeout = Duration::from_millis(500);
    let t = Instant::now();
    let r = run(c).expect("the run completes");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_accounted(&r);
    assert_eq!(r.requests.completed, 0);
    assert!(r.requests.errors_by_kind.connect > 0);
    assert_eq!(
        r.requests.errors, r.requests.errors_by_kind.connect,
        "{:?}",
        r.requests
    );
}
