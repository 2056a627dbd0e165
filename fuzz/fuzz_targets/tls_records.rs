//! qload's TLS record layer after the handshake (`tls::record`) on what a hostile server may
//! send, with fixed keys: records opened in place in a connection-sized incoming buffer, read in
//! pieces of arbitrary sizes, handshake messages joined across records, key updates, alerts.
//!
//! Input layout: byte 0 bit 0 picks the mode, bits 1–2 the AEAD (AES-128-GCM, AES-256-GCM,
//! ChaCha20-Poly1305), bit 3 the version (TLS 1.3, TLS 1.2); byte 1 the read size
//! (1 + 64 × byte). The rest is
//! - raw (bit 0 clear): the bytes the server sent, as they are (almost all fail to open: this
//!   explores the headers, lengths and bounds);
//! - sealed (bit 0 set): commands, each sealed by the "server" under its current key so that the
//!   inner layer is reached: `[type, padding, len_hi, len_lo, content…]` (a type of 0xfe: a
//!   KeyUpdate, the server then moving to its next key as the schedule does, `padding` bit 0 =
//!   update_requested; 0xff: flip the bit `content[0] % 8` of the stream's byte at
//!   `len` % its length). (TLS 1.2: no padding, KeyUpdates refused; the types are the records'.)
//!
//! Invariants: no panic; the buffer holds at most its size; the data handed out is a prefix of
//! the application data sealed (nothing forged, nothing out of order) and never more than the
//! input; once the layer fails or the peer closes, nothing more comes; sealing afterwards
//! (a KeyUpdate owed first) fits the connection's outgoing buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use queuelab_client::tls::record::{
    Aead, Flow, HANDSHAKE, IV, Inbox, KEY_UPDATE, Key, KeySchedule, Received, RecordError, Records,
    Version,
};
use queuelab_client::tls::{INCOMING_TLS_BYTES, OUTGOING_TLS_BYTES};

/// The n-th key of a direction: every byte `base + n`.
fn key(version: Version, aead: Aead, base: u8, n: u8) -> Key {
    let fill = base.wrapping_add(n);
    let bytes = [fill; 32];
    Key::new(version, aead, &bytes[..aead.key_len()], &[fill ^ 0x5a; IV], 0, u64::MAX)
        .expect("a key of the AEAD's length")
}

struct Schedule {
    version: Version,
    aead: Aead,
    tx: u8,
    rx: u8,
    tickets: usize,
}

impl KeySchedule for Schedule {
    fn next_tx(&mut self) -> Result<Key, RecordError> {
        self.tx = self.tx.wrapping_add(1);
        Ok(key(self.version, self.aead, 100, self.tx))
    }
    fn next_rx(&mut self) -> Result<Key, RecordError> {
        self.rx = self.rx.wrapping_add(1);
        Ok(key(self.version, self.aead, 200, self.rx))
    }
    fn ticket(&mut self, body: &[u8]) -> Result<(), RecordError> {
        assert!(body.len() < INCOMING_TLS_BYTES);
        self.tickets += 1;
        Ok(())
    }
}

/// The server's records for the sealed mode, and the application data among them.
fn seal_commands(version: Version, aead: Aead, mut cmds: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut tx = key(version, aead, 200, 0);
    let mut updates = 0u8;
    let mut stream = Vec::new();
    let mut data = Vec::new();
    let mut out = vec![0u8; 5 + (1 << 14) + 1 + 256 + 16];
    while let [typ, padding, hi, lo, rest @ ..] = cmds {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        let (content, next) = rest.split_at(len);
        cmds = next;
        match *typ {
            0xfe => {
                let body = [KEY_UPDATE, 0, 0, 1, padding & 1];
                if let Ok(n) = tx.seal(HANDSHAKE, &body, 0, &mut out) {
                    stream.extend_from_slice(&out[..n]);
                }
                updates = updates.wrapping_add(1);
                tx = key(version, aead, 200, updates);
            }
            0xff => {
                if !stream.is_empty() {
                    let at = usize::from(u16::from_be_bytes([*hi, *lo])) % stream.len();
                    stream[at] ^= 1 << (content.first().copied().unwrap_or(0) % 8);
                }
            }
            t => {
                let content = &content[..content.len().min(1 << 14)];
                let padding = match version {
                    Version::Tls13 => usize::from(*padding),
                    Version::Tls12 => 0,
                };
                if let Ok(n) = tx.seal(t, content, padding, &mut out) {
                    stream.extend_from_slice(&out[..n]);
                    if t == 23 {
                        data.extend_from_slice(content);
                    } else if t == 0 && version == Version::Tls13 {
                        // No type of its own: the last byte of the content that is not zero
                        // is the type, the zeros after it padding (as any receiver reads it).
                        if let Some(i) = content.iter().rposition(|&b| b != 0) {
                            if content[i] == 23 {
                                data.extend_from_slice(&content[..i]);
                            }
                        }
                    }
                }
            }
        }
    }
    (stream, data)
}

fuzz_target!(|input: &[u8]| {
    let [flags, read, rest @ ..] = input else {
        return;
    };
    let aead = match (flags >> 1) & 3 {
        1 => Aead::Aes256Gcm,
        2 => Aead::Chacha20Poly1305,
        _ => Aead::Aes128Gcm,
    };
    let version = if flags & 8 == 0 {
        Version::Tls13
    } else {
        Version::Tls12
    };
    let read = 1 + usize::from(*read) * 64;
    let (stream, sealed_data) = if flags & 1 == 1 {
        seal_commands(version, aead, rest)
    } else {
        (rest.to_vec(), Vec::new())
    };
    let schedule = Schedule {
        version,
        aead,
        tx: 0,
        rx: 0,
        tickets: 0,
    };
    let mut records = Records::new(
        schedule,
        key(version, aead, 100, 0),
        key(version, aead, 200, 0),
    );
    let mut inbox = Inbox::new(INCOMING_TLS_BYTES);
    let mut got: Vec<u8> = Vec::new();
    let mut pos = 0;
    let mut last = Received::NeedMore;
    while pos < stream.len() && last == Received::NeedMore {
        let space = inbox.read_space();
        let n = read.min(space.len()).min(stream.len() - pos);
        if n == 0 {
            // The layer refuses what cannot fit before the buffer is full.
            panic!("a full incoming buffer that waits for more");
        }
        space[..n].copy_from_slice(&stream[pos..pos + n]);
        inbox.filled(n);
        pos += n;
        assert!(inbox.held() <= inbox.capacity());
        let end = records.receive(&mut inbox, &mut |d| {
            assert!(!d.is_empty(), "an empty record handed out");
            got.extend_from_slice(d);
            Flow::More
        });
        assert!(
            !matches!(end, Received::Stopped { .. }),
            "stopped, but the callback never stops"
        );
        last = end;
    }
    assert!(got.len() <= stream.len());
    if flags & 1 == 1 {
        assert!(sealed_data.starts_with(&got), "data that was not sealed, or out of order");
    }
    if last == Received::Closed {
        let again = records.receive(&mut inbox, &mut |_| panic!("data after close_notify"));
        assert_eq!(again, Received::Closed, "a closed layer stays closed");
    }
    let mut out = vec![0u8; OUTGOING_TLS_BYTES];
    let n = records
        .seal(&[b'x'; 1 << 14], &mut out)
        .expect("a full record and an owed KeyUpdate fit the outgoing buffer");
    assert!(n <= OUTGOING_TLS_BYTES);
});
