//! The `Server-Timing` header end to end, against the `qserve` binary on 127.0.0.1: every answer
//! that went through the queue carries `wait`, `service` and `late` in milliseconds with three
//! decimals, agreeing with the body's microseconds, and the class after them when the model has
//! classes; answers that bypass the queue (`/healthz`, `/metrics`) and 503s carry none;
//! `--service zero` reports all three as 0.
//!
//! Behaviour, not speed: the checks hold however late the server's answers are.
mod support;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use support::{PATIENCE, Response, read_response, startup};

const BIN: &str = env!("CARGO_BIN_EXE_qserve");

/// A running qserve, killed when dropped (also when an assertion fails first).
struct Qserve {
    child: Child,
    addr: String,
}

impl Qserve {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--seed", "7"])
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start qserve");
        let (_line, addr, _stderr) = startup(&mut child);
        Qserve { child, addr }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).expect("connect to qserve");
        s.set_read_timeout(Some(PATIENCE)).expect("a read timeout");
        s.set_nodelay(true).expect("TCP_NODELAY");
        s
    }
}

impl Drop for Qserve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The three durations of a `Server-Timing` value, in µs, after checking its exact shape:
/// `wait;dur=M.MMM, service;dur=M.MMM, late;dur=M.MMM` (an unsigned decimal, three places).
fn timing_us(value: &str) -> [u64; 3] {
    let mut out = [0u64; 3];
    let parts: Vec<&str> = value.split(", ").collect();
    assert_eq!(parts.len(), 3, "{value:?}");
    for ((part, name), slot) in parts.iter().zip(["wait", "service", "late"]).zip(&mut out) {
        let dur = part
            .strip_prefix(name)
            .and_then(|p| p.strip_prefix(";dur="))
            .unwrap_or_else(|| panic!("{name} out of place in {value:?}"));
        let (int, frac) = dur
            .split_once('.')
            .unwrap_or_else(|| panic!("no decimals in {value:?}"));
        assert!(
            !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.len() == 3
                && frac.bytes().all(|b| b.is_ascii_digit()),
            "{name} is not milliseconds with three decimals in {value:?}"
        );
        let int: u64 = int.parse().expect("digits");
        let frac: u64 = frac.parse().expect("digits");
        *slot = int * 1000 + frac;
    }
    out
}

/// Checks one queued answer: its header agrees with its body (each field rounded to the
/// microsecond on its own, so each within 1 µs). Returns `[wait, service, late]` in µs.
fn check_served(r: &Response) -> [u64; 3] {
    assert_eq!(r.status, 200, "{r:?}");
    let value = r
        .header("server-timing")
        .unwrap_or_else(|| panic!("a queued answer without Server-Timing: {r:?}"));
    let t = timing_us(value);
    let (wait_us, service_us) = r.times_us();
    assert!(
        t[0].abs_diff(wait_us) <= 1,
        "{value:?} against {}",
        r.text()
    );
    assert!(
        t[1].abs_diff(service_us) <= 1,
        "{value:?} against {}",
        r.text()
    );
    assert!(
        (t[0] + t[1]).abs_diff(wait_us + service_us) <= 2,
        "{value:?} against {}",
        r.text()
    );
    t
}

/// Reads the head of a `HEAD` answer (it has a `Content-Length` but no body).
fn read_head_only(s: &mut TcpStream) -> Vec<(String, String)> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = support::read_retrying(s, &mut chunk).expect("read a head");
        assert!(n > 0, "EOF in a head");
        got.extend_from_slice(&chunk[..n]);
    }
    let end = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("found above")
        + 4;
    assert_eq!(end, got.len(), "bytes after a HEAD answer's head");
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut headers);
    assert!(resp.parse(&got).expect("a valid head").is_complete());
    assert_eq!(resp.code, Some(200));
    resp.headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// M/M/1 at μ = 2000/s: pipelined bursts on several connections queue behind one another, so
/// the answers have waits as well as service times. `GET`, `POST` and `HEAD` all carry the header.
#[test]
fn queued_answers_carry_server_timing_that_matches_the_body() {
    let q = Qserve::start(&["--mu", "2000"]);
    const CONNS: usize = 4;
    const DEPTH: usize = 16;
    let mut conns: Vec<TcpStream> = (0..CONNS).map(|_| q.connect()).collect();
    let burst: Vec<u8> = (0..DEPTH)
        .flat_map(|i| {
            if i % 2 == 0 {
                format!("GET /q{i} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
            } else {
                format!("POST /q{i} HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
                    .into_bytes()
            }
        })
        .collect();
    for s in &mut conns {
        s.write_all(&burst).expect("send a burst");
    }
    let mut waited = 0;
    for s in &mut conns {
        let mut pending = Vec::new();
        for i in 0..DEPTH {
            let r = read_response(s, &mut pending)
                .expect("read an answer")
                .unwrap_or_else(|| panic!("EOF before answer {i}"));
            let [wait, _, _late] = check_served(&r);
            if wait > 0 {
                waited += 1;
            }
        }
    }
    // 64 arrivals within a few ms at μ = 2000/s: all but the first few wait (a burst read at
    // once arrives at one instant, so the second waits the whole first service time).
    assert!(waited > 0, "no answer waited");

    // HEAD: the same head, no body.
    let mut s = q.connect();
    s.write_all(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send HEAD");
    let headers = read_head_only(&mut s);
    let value = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("server-timing"))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("a HEAD answer without Server-Timing: {headers:?}"));
    timing_us(value);

    // What bypasses the queue carries none.
    let mut s = q.connect();
    for path in ["/healthz", "/metrics"] {
        s.write_all(&support::get(path)).expect("send");
        let mut pending = Vec::new();
        let r = read_response(&mut s, &mut pending)
            .expect("read")
            .expect("an answer");
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("server-timing").is_none(), "{path}: {r:?}");
    }
}

/// M/D/1/1 with a service of 250 ms: of two requests pipelined in one write, the second finds the
/// system full and gets a 503 (no Server-Timing), after the first's 200 (with it).
#[test]
fn a_503_at_capacity_has_no_server_timing() {
    let q = Qserve::start(&["--mu", "4", "--service", "const", "--capacity", "1"]);
    let mut s = q.connect();
    let two = [support::get("/a"), support::get("/b")].concat();
    s.write_all(&two).expect("send two requests");
    let mut pending = Vec::new();
    let first = read_response(&mut s, &mut pending)
        .expect("read")
        .expect("the first answer");
    let [_, service, _] = check_served(&first);
    assert_eq!(service, 250_000, "{first:?}");
    let second = read_response(&mut s, &mut pending)
        .expect("read")
        .expect("the second answer");
    assert_eq!(second.status, 503, "{second:?}");
    assert!(second.text().contains("capacity"), "{second:?}");
    assert!(second.header("server-timing").is_none(), "{second:?}");
}

/// `--service zero`: no queue, every answer at once, all three durations 0.
#[test]
fn zero_service_reports_zeros() {
    let q = Qserve::start(&["--service", "zero"]);
    let mut s = q.connect();
    let mut pending = Vec::new();
    for _ in 0..20 {
        s.write_all(&support::get("/")).expect("send");
        let r = read_response(&mut s, &mut pending)
            .expect("read")
            .expect("an answer");
        assert_eq!(
            r.header("server-timing"),
            Some("wait;dur=0.000, service;dur=0.000, late;dur=0.000"),
            "{r:?}"
        );
        assert_eq!(check_served(&r), [0, 0, 0]);
    }
}

/// With classes (or a priority discipline) the binary names each answer's class after the three
/// durations, unchanged: `class;desc=N`, the X-Priority one when given, else one of the
/// configured classes. The default model names none (the other tests check the exact shape).
#[test]
fn classes_are_named_after_the_durations() {
    let q = Qserve::start(&[
        "--mu",
        "5000",
        "--discipline",
        "priority",
        "--classes",
        "0.5,0.5",
    ]);
    let mut s = q.connect();
    let mut pending = Vec::new();
    for (header, want) in [
        ("X-Priority: 1\r\n", Some("1")),
        ("X-Priority: 6\r\n", Some("6")),
        ("", None),
    ] {
        s.write_all(format!("GET / HTTP/1.1\r\nHost: t\r\n{header}\r\n").as_bytes())
            .expect("send");
        let r = read_response(&mut s, &mut pending)
            .expect("read")
            .expect("an answer");
        let value = r.header("server-timing").expect("Server-Timing").to_owned();
        let (durations, class) = value
            .rsplit_once(", class;desc=")
            .unwrap_or_else(|| panic!("no class in {value:?}"));
        let [wait, service, _] = timing_us(durations);
        assert_eq!((wait, service), r.times_us(), "{value:?}");
        match want {
            Some(n) => assert_eq!(class, n, "{value:?}"),
            None => assert!(class == "0" || class == "1", "{value:?}"),
        }
    }
}
