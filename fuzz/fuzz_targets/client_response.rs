//! qload's response parser (status line, headers, Content-Length, chunked and close-delimited
//! bodies) on arbitrary bytes cut into reads at arbitrary points, as a connection feeds it.
//!
//! Input layout: byte 0 picks the read size (1..=256), byte 1 bit 0 marks a response to HEAD;
//! the rest is what the server sent. Invariants: no panic; never consumes more than given; while
//! the head is incomplete the kept bytes stay under the head limit (plus one read); the stream
//! ends at the first error or `close`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use queuelab_client::http::{Progress, ResponseParser};
use queuelab_common::http::MAX_HEAD_BYTES;

fuzz_target!(|data: &[u8]| {
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
