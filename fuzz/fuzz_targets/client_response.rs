//! qload's response parser (status line, headers, Content-Length, chunked and close-delimited
//! bodies) on arbitrary bytes cut into reads at arbitrary points, as a connection feeds it.
//!
//! Input layout: byte 0 picks the read size (1..=256), byte 1 bit 0 marks a response to HEAD;
//! the rest is what the server sent. Invariants: no panic; never consumes more than given; while
//! the head is incomplete the kept bytes stay under the head limit (plus one read); the stream
//! ends at the first error or `close`.
//!
//! The same bytes are also read as `Server-Timing` header values, directly (split into lines at
//! the byte 0x0a, each line one header of the same answer) and through the parser after every
//! completed answer: no panic, and the bounds hold (at most `MAX_METRICS` durations, names of
//! at most `MAX_NAME_BYTES` token bytes, nothing kept from a malformed answer).
#![no_main]

use libfuzzer_sys::fuzz_target;
use queuelab_client::http::{Progress, ResponseParser};
use queuelab_client::timing::{MAX_METRICS, MAX_NAME_BYTES, ServerTiming};
use queuelab_common::http::MAX_HEAD_BYTES;

fn check(t: &ServerTiming) {
    let m = t.metrics();
    assert!(m.len() <= MAX_METRICS, "{} durations kept", m.len());
    if t.is_malformed() {
        assert!(m.is_empty() && t.dropped() == 0 && t.total_ns() == 0);
    }
    if t.dropped() > 0 {
        assert_eq!(m.len(), MAX_METRICS, "dropped before the table was full");
    }
    let mut total = 0u64;
    for x in m {
        let name = x.name();
        assert!(!name.is_empty() && name.len() <= MAX_NAME_BYTES, "{name:?}");
        assert!(name.bytes().all(|b| b.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&b)));
        total = total.saturating_add(x.dur_ns());
    }
    assert_eq!(total, t.total_ns());
}

fuzz_target!(|data: &[u8]| {
    let mut direct = ServerTiming::new();
    for line in data.split(|&b| b == b'\n') {
        direct.add_header(line);
    }
    assert!(direct.is_present());
    check(&direct);

    let [cut, flags, stream @ ..] = data else {
        return;
    };
    let read_size = usize::from(*cut) + 1;
    let head_request = flags & 1 == 1;
    let mut parser = ResponseParser::new();
    let mut pending: Vec<u8> = Vec::with_capacity(MAX_HEAD_BYTES + 256);
    for read in stream.chunks(read_size) {
        pending.extend_from_slice(read);
        loop {
            let (used, progress) = parser.advance(&pending, head_request);
            assert!(used <= pending.len(), "consumed {used} of {}", pending.len());
            pending.drain(..used);
            if let (Progress::Done { .. }, Some(t)) = (progress, parser.server_timing()) {
                check(t);
            }
            match progress {
                Progress::NeedMore => break,
                Progress::Done { close: true, .. } | Progress::Error(_) => return,
                Progress::Done { close: false, .. } => {
                    if pending.is_empty() {
                        break;
                    }
                }
            }
        }
        assert!(
            pending.len() <= MAX_HEAD_BYTES + read_size,
            "kept {} bytes of a partial head",
            pending.len()
        );
    }
    let _ = parser.eof();
});
