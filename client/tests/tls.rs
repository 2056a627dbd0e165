//! qload over HTTPS against an in-test TLS server (rustls, certificates made by the test with its
//! own CA, see `tls_server`), and against servers that fail the handshake in each of the ways
//! the `tls` error kinds name.
//!
//! Every run is short (a few tenths of a second at 100–200 requests/s, or a few hundred requests
//! as fast as they go) and checks behaviour, never speed: counts and kinds, the accounting
//! (`issued = completed + errors`, the TLS breakdown adding up to the `tls` errors), and that the
//! run ends within its duration plus one timeout plus a margin for a loaded machine.
mod tls_server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use queuelab_client::result::{RunResult, TlsErrors};
use queuelab_client::tls::Verify;
use queuelab_client::{Config, Mode, Target, run};
use queuelab_common::model::{Model, Servers};
use queuelab_common::samplers::{ArrivalKind, ServiceKind};
use queuelab_common::stats::histogram_from_string;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tls_server::{Behavior, Pki, TempDir, TlsServer};

/// Slack for start-up, thread scheduling and a loaded 2-core machine.
const MARGIN: Duration = Duration::from_secs(5);

/// `https://127.0.0.1:PORT/` of `server`, verified as `verify` says.
fn target(addr: SocketAddr, verify: Verify) -> Target {
    let url = format!("https://127.0.0.1:{}/", addr.port());
    Target::with_verify(&url, "GET", &[], None, Some(verify)).expect("an https target")
}

/// The roots of `pki`'s CA.
fn roots(pki: &Pki) -> Verify {
    let mut store = RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).expect("the CA's PEM");
    store.add(ca).expect("a CA certificate");
    Verify::Roots(Arc::new(store))
}

fn config(target: Target, mode: Mode) -> Config {
    let mut c = Config::new(target, mode);
    c.pin = false;
    c.threads = Some(1);
    c.interval = Duration::from_millis(100);
    c.busy_poll = Some(false);
    c
}

/// An open-loop run of `duration` at `rate` (constant gaps) with `timeout`; checks the deadline
/// and the accounting.
fn open_run(target: Target, rate: f64, duration: Duration, timeout: Duration) -> RunResult {
    let mut c = config(
        target,
        Mode::Open {
            rate,
            arrival: ArrivalKind::Constant,
        },
    );
    c.duration = Some(duration);
    c.timeout = timeout;
    let t = Instant::now();
    let r = run(c).expect("the run completes");
    let elapsed = t.elapsed();
    assert!(
        elapsed < duration + timeout + MARGIN,
        "the run took {elapsed:?} (duration {duration:?}, timeout {timeout:?})"
    );
    check_accounting(&r);
    // Constant gaps: rate × duration requests, one more or less at the edges.
    let want = rate * duration.as_secs_f64();
    let issued = r.requests.issued as f64;
    assert!((issued - want).abs() <= 1.0, "{:?}", r.requests);
    r
}

/// The short run most tests make: 100/s with constant gaps for 300 ms, a 2 s timeout.
fn short_run(target: Target) -> RunResult {
    open_run(
        target,
        100.0,
        Duration::from_millis(300),
        Duration::from_secs(2),
    )
}

/// The text of the run's first TLS error, which must contain `want`.
fn assert_first_error(r: &RunResult, want: &str) {
    let text = r.requests.tls_first_error.as_deref().unwrap_or_default();
    assert!(text.contains(want), "{text:?} lacks {want:?}");
}

/// `n` requests as fast as `connections` connections go.
fn max_run(target: Target, connections: u32, n: u64) -> RunResult {
    let mut c = config(target, Mode::Max { connections });
    c.requests = Some(n);
    c.duration = None;
    c.timeout = Duration::from_secs(5);
    let r = run(c).expect("the run completes");
    check_accounting(&r);
    r
}

fn check_accounting(r: &RunResult) {
    let q = &r.requests;
    assert_eq!(q.errors, q.errors_by_kind.total(), "{q:?}");
    assert_eq!(q.issued, q.completed + q.errors, "{q:?}");
    assert_eq!(q.tls_errors.total(), q.errors_by_kind.tls, "{q:?}");
}

/// Every request completed with 200, each connection's handshake timed.
fn assert_all_complete(r: &RunResult, server: &TlsServer) {
    let q = &r.requests;
    assert!(q.issued > 0, "{q:?}");
    assert_eq!(q.errors, 0, "{q:?} {:?}", q.tls_first_error);
    assert_eq!(q.completed, q.issued, "{q:?}");
    assert_eq!(q.status.s2xx, q.completed, "{q:?}");
    assert_eq!(server.requests() as u64, q.completed, "{q:?}");
    let opened = r.connections.opened;
    assert!(opened >= 1, "{:?}", r.connections);
    let tls = r.phases.tls_us.as_ref().expect("the handshakes are timed");
    let connect = r
        .phases
        .connect_us
        .as_ref()
        .expect("the connects are timed");
    assert_eq!(tls.count, opened, "a handshake per connection opened");
    assert_eq!(connect.count, opened, "a connect per connection opened");
    for (what, d) in [("tls", tls), ("connect", connect)] {
        let h = histogram_from_string(&d.histogram).expect("the histogram decodes");
        assert_eq!(h.len(), d.count, "{what}");
        assert!(d.mean > 0.0 && d.max >= d.p50, "{what}: {d:?}");
    }
    assert_eq!(q.tls_first_error, None);
}

/// Every request failed as a `tls` error of the kind `pick` reads.
fn assert_all_tls(r: &RunResult, pick: fn(&TlsErrors) -> u64, what: &str) {
    let q = &r.requests;
    assert!(q.issued > 0, "{q:?}");
    assert_eq!(q.completed, 0, "{what}: {q:?}");
    assert_eq!(q.errors_by_kind.tls, q.issued, "{what}: {q:?}");
    assert_eq!(pick(&q.tls_errors), q.issued, "{what}: {q:?}");
    assert!(
        q.tls_first_error.is_some(),
        "{what}: the first error's text"
    );
    assert!(r.phases.tls_us.is_none(), "{what}: no handshake ended");
}

#[test]
fn trusted_through_cacert_every_request_completes_and_each_handshake_is_timed() {
    let pki = Pki::new(false);
    let dir = TempDir::new("cacert");
    let ca = pki.write_ca(&dir.0);
    let server = TlsServer::start(Behavior::Serve(pki.http11()));
    let r = open_run(
        target(server.addr(), Verify::CaFile(ca)),
        200.0,
        Duration::from_millis(500),
        Duration::from_secs(2),
    );
    assert_all_complete(&r, &server);
    assert!(r.url.starts_with("https://127.0.0.1:"), "{}", r.url);
    assert!(
        !r.warnings.iter().any(|w| w.contains("verification")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_dns_name_is_the_sni_and_connections_are_kept_alive() {
    let pki = Pki::new(false);
    let server = TlsServer::start(Behavior::Serve(pki.http11()));
    let t = Target::https(server.addr(), "localhost", roots(&pki)).expect("target");
    assert!(
        String::from_utf8_lossy(&t.request)
            .contains(&format!("Host: localhost:{}\r\n", server.addr().port()))
    );
    let r = max_run(t, 4, 400);
    assert_all_complete(&r, &server);
    // Four connections carried the 400 requests: no reconnects.
    assert_eq!(r.connections.opened, 4, "{:?}", r.connections);
    assert_eq!(server.accepted(), 4);
}

#[test]
fn tls12_servers_and_requests_larger_than_a_record_work() {
    let pki = Pki::new(false);
    let server = TlsServer::start(Behavior::Serve(
        pki.server_config(&[b"http/1.1"], &[&rustls::version::TLS12]),
    ));
    // 100 kB: seven records of at most 16 KiB, written as the socket takes them.
    let body = vec![b'x'; 100_000];
    let url = format!("https://127.0.0.1:{}/upload", server.addr().port());
    let t = Target::with_verify(&url, "PUT", &[], Some(&body), Some(roots(&pki)))
        .expect("an https target");
    let r = max_run(t, 2, 40);
    assert_all_complete(&r, &server);
    let server13 = TlsServer::start(Behavior::Serve(pki.http11()));
    let url = format!("https://127.0.0.1:{}/upload", server13.addr().port());
    let t = Target::with_verify(&url, "PUT", &[], Some(&body), Some(roots(&pki)))
        .expect("an https target");
    let r = max_run(t, 2, 40);
    assert_all_complete(&r, &server13);
}

#[test]
fn closes_and_bodies_ended_by_the_connection_are_as_over_plain_http() {
    let pki = Pki::new(false);
    // close_notify after each answer, no `Connection: close`: each request finds its connection
    // closed and opens another (or, in a race, is retried on a fresh one).
    let server = TlsServer::start(Behavior::CloseAfterAnswer(pki.http11()));
    let r = open_run(
        target(server.addr(), roots(&pki)),
        200.0,
        Duration::from_millis(300),
        Duration::from_secs(2),
    );
    assert_eq!(r.requests.errors, 0, "{:?}", r.requests);
    assert_eq!(r.requests.completed, r.requests.issued);
    assert_eq!(
        r.phases.tls_us.as_ref().map(|d| d.count),
        Some(r.connections.opened)
    );
    assert!(r.connections.opened >= r.requests.completed);
    // A body delimited by the end of the connection (here its close_notify) is complete.
    let server = TlsServer::start(Behavior::EofBody(pki.http11()));
    let r = open_run(
        target(server.addr(), roots(&pki)),
        200.0,
        Duration::from_millis(300),
        Duration::from_secs(2),
    );
    assert_eq!(r.requests.errors, 0, "{:?}", r.requests);
    assert_eq!(r.requests.completed, r.requests.issued);
}

#[test]
fn an_unknown_issuer_fails_every_request_as_a_certificate_error() {
    let pki = Pki::new(false);
    let other = Pki::new(false);
    let server = TlsServer::start(Behavior::Serve(pki.http11()));
    let r = short_run(target(server.addr(), roots(&other)));
    assert_all_tls(&r, |t| t.certificate, "unknown issuer");
    assert_first_error(&r, "UnknownIssuer");
    assert_eq!(
        server.requests(),
        0,
        "no request went to an untrusted server"
    );
    let report = queuelab_client::report::text(&r);
    let n = r.requests.issued;
    assert!(
        report.contains(&format!(
            "tls: {n} (certificate {n}; first: invalid peer certificate"
        )),
        "{report}"
    );
}

#[test]
fn without_cacert_the_system_roots_do_not_know_the_test_ca() {
    // The system's roots as rustls-native-certs finds them, pointed by SSL_CERT_FILE at a file
    // of an unrelated CA (the test CA is in no real system store either).
    let pki = Pki::new(false);
    let other = Pki::new(false);
    let dir = TempDir::new("system");
    let system = other.write_ca(&dir.0);
    let server = TlsServer::start(Behavior::Serve(pki.http11()));
    let url = format!("https://127.0.0.1:{}/", server.addr().port());
    let t = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qload"))
        .args(["-R", "100", "-d", "300ms", "--timeout", "2s", "-t", "1"])
        .args(["--arrival", "constant", "--no-pin", "--json", &url])
        .env("SSL_CERT_FILE", &system)
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("qload runs");
    assert!(t.elapsed() < Duration::from_millis(2300) + MARGIN);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: RunResult = serde_json::from_slice(&out.stdout).expect("a JSON result");
    check_accounting(&r);
    assert_all_tls(&r, |t| t.certificate, "system roots");
    assert_eq!(server.requests(), 0);
}

#[test]
fn insecure_completes_and_the_result_says_verification_was_off() {
    let pki = Pki::new(true);
    let server = TlsServer::start(Behavior::Serve(pki.http11()));
    // An expired certificate of an unknown CA: taken all the same.
    let r = open_run(
        target(server.addr(), Verify::Insecure),
        200.0,
        Duration::from_millis(300),
        Duration::from_secs(2),
    );
    assert_all_complete(&r, &server);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("verification was off") && w.contains("--insecure")),
        "{:?}",
        r.warnings
    );
    let text = queuelab_client::report::text(&r);
    assert!(
        text.contains("warning: TLS certificate verification was off"),
        "{text}"
    );
}

#[test]
fn an_expired_certificate_is_a_certificate_error() {
    let pki = Pki::new(true);
    let dir = TempDir::new("expired");
    let ca = pki.write_ca(&dir.0);
    let server = TlsServer::start(Behavior::Serve(pki.http11()));
    let r = short_run(target(server.addr(), Verify::CaFile(ca)));
    assert_all_tls(&r, |t| t.certificate, "expired");
    assert_first_error(&r, "expired");
}

#[test]
fn a_server_without_http11_sends_an_alert() {
    let pki = Pki::new(false);
    // ALPN h2 only: the server refuses the client's http/1.1 with no_application_protocol.
    let server = TlsServer::start(Behavior::Serve(
        pki.server_config(&[b"h2"], rustls::ALL_VERSIONS),
    ));
    let r = short_run(target(server.addr(), roots(&pki)));
    assert_all_tls(&r, |t| t.alert, "ALPN");
    assert_first_error(&r, "NoApplicationProtocol");
}

#[test]
fn a_handshake_that_never_ends_fails_at_the_timeout_and_the_run_ends_on_time() {
    let server = TlsServer::start(Behavior::Silent);
    let timeout = Duration::from_millis(300);
    let duration = Duration::from_millis(400);
    let r = open_run(
        target(server.addr(), Verify::Insecure),
        20.0,
        duration,
        timeout,
    );
    let q = &r.requests;
    // Every handshake fails at its deadline (the connect's start plus the timeout); the last
    // request's deadline is 50 ms before the end of the drain, so on a loop that fell behind it
    // may be counted unfinished instead, never as anything else.
    assert!(q.tls_errors.handshake_timeout >= q.issued - 1, "{q:?}");
    assert_eq!(
        q.tls_errors.handshake_timeout + q.errors_by_kind.unfinished,
        q.issued,
        "{q:?}"
    );
    assert_eq!(q.completed, 0);
    assert!(r.elapsed_s < (duration + timeout + MARGIN).as_secs_f64());
    assert!(server.accepted() as u64 >= q.issued);
}

#[test]
fn a_plain_http_server_on_an_https_url_is_not_tls() {
    let server = queuelab_server::start(queuelab_server::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        model: Model::new(1000.0, Servers::Finite(1)).with_service(ServiceKind::Zero),
        ..queuelab_server::Config::default()
    })
    .expect("qserve starts");
    let r = short_run(target(server.local_addr(), Verify::Insecure));
    server.shutdown();
    let _ = server.join();
    assert_all_tls(&r, |t| t.not_tls, "plain HTTP");
}

#[test]
fn a_server_closing_mid_handshake_is_closed() {
    let server = TlsServer::start(Behavior::CloseAfterHello);
    let r = short_run(target(server.addr(), Verify::Insecure));
    assert_all_tls(&r, |t| t.closed, "closed mid-handshake");
    assert_first_error(&r, "during the TLS handshake");
}

#[test]
fn garbage_after_the_handshake_is_counted_and_nothing_breaks() {
    let pki = Pki::new(false);
    // Encrypted bytes that are not HTTP: a parse error, as over plain HTTP.
    let server = TlsServer::start(Behavior::Garbage(pki.http11()));
    let r = short_run(target(server.addr(), roots(&pki)));
    let q = &r.requests;
    assert_eq!(q.errors_by_kind.parse, q.issued, "{q:?}");
    assert_eq!(r.phases.tls_us.as_ref().map(|d| d.count), Some(q.issued));
    // Bytes outside the records' protection: rustls refuses them, a tls error of no named kind.
    let server = TlsServer::start(Behavior::RawGarbage(pki.http11()));
    let r = short_run(target(server.addr(), roots(&pki)));
    assert_all_tls_after_handshake(&r);
}

/// Every request failed as a `tls` error of kind `other`, after its handshake ended.
fn assert_all_tls_after_handshake(r: &RunResult) {
    let q = &r.requests;
    assert_eq!(q.errors_by_kind.tls, q.issued, "{q:?}");
    assert_eq!(q.tls_errors.other, q.issued, "{q:?}");
    assert_eq!(r.phases.tls_us.as_ref().map(|d| d.count), Some(q.issued));
}

/// The TLS 1.3 cipher suites of rustls's *ring* provider.
fn tls13_suites() -> [rustls::SupportedCipherSuite; 3] {
    use rustls::crypto::ring::cipher_suite as s;
    [
        s::TLS13_AES_128_GCM_SHA256,
        s::TLS13_AES_256_GCM_SHA384,
        s::TLS13_CHACHA20_POLY1305_SHA256,
    ]
}

/// Waits (up to a few seconds, for a loaded machine) until `read` reaches `want`; returns the
/// last value read.
fn wait_for(want: usize, read: impl Fn() -> usize) -> usize {
    let deadline = Instant::now() + MARGIN;
    loop {
        let got = read();
        if got >= want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn key_updates_of_the_server_are_followed_and_answered_on_one_connection() {
    use std::sync::atomic::Ordering::SeqCst;
    let pki = Pki::new(false);
    for suite in tls13_suites() {
        // After every third answer the server moves to new keys and asks qload to do the same:
        // qload must open what follows with the server's next key, send a KeyUpdate of its own
        // and seal what follows with its next key, or the connection fails.
        let server = TlsServer::start(Behavior::KeyUpdates {
            config: pki.with_suite(suite),
            every: 3,
        });
        let r = max_run(target(server.addr(), roots(&pki)), 1, 100);
        assert_all_complete(&r, &server);
        assert_eq!(r.connections.opened, 1, "{suite:?}: {:?}", r.connections);
        assert_eq!(server.accepted(), 1, "{suite:?}");
        let counts = server.counts();
        assert_eq!(counts.refreshes.load(SeqCst), 33, "{suite:?}");
        // Each request of the server's got one KeyUpdate of qload's (the last may still be on
        // its way to the server when the run ends).
        let ours = wait_for(33, || counts.key_update_records.load(SeqCst));
        assert_eq!(ours, 33, "{suite:?}: qload's KeyUpdates");
    }
}

#[test]
fn every_tls12_aead_carries_requests_and_answers_larger_than_a_record() {
    use rustls::crypto::ring::cipher_suite as s;
    let pki = Pki::new(false);
    // The test certificate is ECDSA: the ECDHE_ECDSA suites.
    for suite in [
        s::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        s::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        s::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ] {
        let server = TlsServer::start(Behavior::Big {
            config: pki.with_suite(suite),
            bytes: 50_000,
        });
        let body = vec![b'x'; 40_000];
        let url = format!("https://127.0.0.1:{}/upload", server.addr().port());
        let t = Target::with_verify(&url, "PUT", &[], Some(&body), Some(roots(&pki)))
            .expect("an https target");
        let r = max_run(t, 1, 30);
        assert_all_complete(&r, &server);
        assert_eq!(r.connections.opened, 1, "{suite:?}: {:?}", r.connections);
    }
}

#[test]
fn later_connections_resume_with_a_session_ticket() {
    let pki = Pki::new(false);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        // One connection per request, one after the other: every connection after the first
        // resumes the session of the one before (TLS 1.3: with one of the two tickets rustls's
        // server sends after each handshake, taken on qload's record layer; TLS 1.2: with the
        // session the handshake stored).
        let server = TlsServer::start(Behavior::CloseAfterAnswer(
            pki.server_config(&[b"http/1.1"], &[version]),
        ));
        let r = max_run(target(server.addr(), roots(&pki)), 1, 20);
        assert_eq!(r.requests.errors, 0, "{version:?}: {:?}", r.requests);
        assert_eq!(r.requests.completed, 20);
        assert_eq!(server.accepted(), 20);
        assert_eq!(r.connections.opened, 20);
        assert_eq!(server.resumed(), 19, "{version:?}: resumed handshakes");
    }
}

#[test]
fn large_answers_span_records_over_tls13_and_tls12() {
    let pki = Pki::new(false);
    for versions in [&[&rustls::version::TLS13], &[&rustls::version::TLS12]] {
        // 200 kB: thirteen records of at most 16 KiB, more than the incoming buffer holds.
        let server = TlsServer::start(Behavior::Big {
            config: pki.server_config(&[b"http/1.1"], versions),
            bytes: 200_000,
        });
        let r = max_run(target(server.addr(), roots(&pki)), 2, 30);
        assert_all_complete(&r, &server);
        assert_eq!(r.connections.opened, 2, "{versions:?}: {:?}", r.connections);
    }
}
