//! The server's whole input path for one connection: an arbitrary byte stream, cut into reads at
//! arbitrary points, fed to `RequestReader` the way a connection feeds it (a bounded read buffer,
//! unconsumed bytes kept and offered again with the next read).
//!
//! Input layout: the first byte picks the read size (1..=256), the rest is the stream.
//! Invariants: no panic; a call never consumes more than it was given; the buffer a connection
//! keeps never exceeds the head limit plus one read (a partial head over the limit is rejected);
//! after a rejection the connection is closed, so the stream ends there; a class named by
//! `X-Priority` is below `MAX_CLASSES`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use queuelab_common::http::MAX_HEAD_BYTES;
use queuelab_common::model::MAX_CLASSES;
use queuelab_server::http::{Parsed, RequestReader};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let read_size = usize::from(cut) + 1;
    let mut reader = RequestReader::new();
    let mut pending: Vec<u8> = Vec::with_capacity(MAX_HEAD_BYTES + 256);
    for read in stream.chunks(read_size) {
        pending.extend_from_slice(read);
        loop {
            let (used, parsed) = reader.next(&pending);
            assert!(used <= pending.len(), "consumed {used} of {}", pending.len());
            pending.drain(..used);
            match parsed {
                Parsed::Request(head) => {
                    // The reader skips the body itself: whatever it declared is still owed.
                    assert_eq!(reader.body_left(), head.content_length);
                    // A class the head names (X-Priority) is always one the queue has.
                    assert!(head.class.is_none_or(|c| usize::from(c) < MAX_CLASSES));
                }
                Parsed::NeedMore => break,
                Parsed::Reject(_) => return,
            }
        }
        assert!(
            pending.len() <= MAX_HEAD_BYTES + read_size,
            "kept {} bytes of a partial head",
            pending.len()
        );
    }
});
