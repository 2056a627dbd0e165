//! One TLS connection's records: rustls's unbuffered client for the handshake, then our own
//! record layer, in place, over the pool's socket.
//!
//! A [`TlsConn`] owns two buffers, allocated when the connection opens and never grown: the
//! incoming one ([`INCOMING_TLS_BYTES`], one whole record of the largest size, an [`Inbox`])
//! holds the bytes read from the socket until their records are taken (a record split across
//! reads stays until its rest comes), and the outgoing one ([`OUTGOING_TLS_BYTES`]) holds the
//! client's handshake flights and then each sealed part of a request until the socket has taken
//! it (a partial write resumes from where it stopped). Opened answers are handed to the caller
//! record by record, straight to the response parser.
//!
//! The handshake is rustls's: [`TlsConn::process`] gives it the incoming bytes and does what the
//! state it returns asks for (encode a handshake message into the outgoing buffer, write it out,
//! hand over plaintext, encrypt the next part of a request) until it needs something only the
//! event loop can give (more bytes from the peer, room in the socket) or the caller's part is
//! done ([`Step`]). rustls 0.23 allocates for every record it seals or opens, so once the
//! handshake is done (rustls reaches `WriteTraffic`, nothing left to send, nothing unread) the
//! connection becomes rustls's *kernel* connection: the traffic secrets go to a
//! [`Records`](crate::tls::record::Records), which seals requests into the outgoing buffer and
//! opens answers where they were read, with *ring*, in TLS 1.3 and in TLS 1.2; rustls keeps the
//! key schedule (TLS 1.3's key updates) and takes the session tickets. Every suite of rustls's
//! *ring* provider has an AEAD the record layer has; a connection of another would stay on
//! rustls's record path.
use std::io::{self, Write as _};

use mio::net::TcpStream;
use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::kernel::KernelConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ProtocolVersion, SupportedCipherSuite};

use crate::result::{ErrorKind, TlsErrorKind};
pub(super) use crate::tls::record::Flow;
use crate::tls::record::{Aead, Inbox, Key, KeySchedule, Received, RecordError, Records, Version};
use crate::tls::{INCOMING_TLS_BYTES, OUTGOING_TLS_BYTES, TlsSetup, bounded, classify};

/// Where [`TlsConn::process`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// rustls needs more bytes from the peer (or, after the handshake, has nothing more to do).
    NeedRead,
    /// The outgoing buffer holds bytes the socket would not take yet: wait until it is writable.
    Blocked,
    /// The handshake ended (reported once).
    HandshakeDone,
    /// The part of the request asked for was encrypted into the outgoing buffer.
    Encrypted,
    /// The plaintext callback said [`Flow::Stop`]; `more`: more decrypted records were waiting.
    Stopped {
        /// Plaintext followed what the callback took.
        more: bool,
    },
    /// The peer closed its side cleanly (close_notify): an end of the connection.
    PeerClosed,
    /// The connection failed.
    Failed(ErrorKind),
}

/// How a write of the outgoing buffer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flush {
    /// Everything is written (or there was nothing).
    Done,
    /// The socket is full; the rest waits.
    Blocked,
    /// Writing failed.
    Failed,
}

/// The record layer of a connection.
// The whole `TlsConn` is boxed already (a plain connection's slot stays small): boxing the larger
// variant on its own too would only add an allocation per connection.
#[allow(clippy::large_enum_variant)]
enum Layer {
    /// rustls's own: the handshake (and a suite the record layer does not have).
    Rustls(UnbufferedClientConnection),
    /// Ours, in place: the connection after its handshake.
    Kernel(Records<Schedule>),
    /// Neither: a conversion failed (the connection is closed).
    Gone,
}

/// rustls's kernel connection as the key schedule of our record layer.
struct Schedule {
    conn: KernelConnection<ClientConnectionData>,
    /// The connection's version (TLS 1.2 has no key updates: rustls refuses them).
    version: Version,
    /// The suite's confidentiality limit (records per key).
    limit: u64,
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedule")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

fn schedule_error(e: rustls::Error) -> RecordError {
    RecordError::Schedule(bounded(e.to_string()))
}

impl KeySchedule for Schedule {
    fn next_tx(&mut self) -> Result<Key, RecordError> {
        let secrets = self.conn.update_tx_secret().map_err(schedule_error)?;
        Key::from_secrets(self.version, secrets, self.limit)
    }

    fn next_rx(&mut self) -> Result<Key, RecordError> {
        let secrets = self.conn.update_rx_secret().map_err(schedule_error)?;
        Key::from_secrets(self.version, secrets, self.limit)
    }

    fn ticket(&mut self, body: &[u8]) -> Result<(), RecordError> {
        self.conn
            .handle_new_session_ticket(body)
            .map_err(schedule_error)
    }
}

/// A TLS connection's state and buffers (see the module docs).
pub(super) struct TlsConn {
    layer: Layer,
    /// Bytes read from the socket and not yet taken.
    inbox: Inbox,
    /// Encrypted bytes to write, `out[out_start..out_end]`.
    out: Box<[u8]>,
    out_start: usize,
    out_end: usize,
    /// The first bytes the peer sent (up to 5), to tell a peer that does not speak TLS.
    first: [u8; 5],
    first_len: u8,
    handshake_done: bool,
    /// The connection may still move to our record layer (it is rustls's, and its suite is
    /// not known to be one ours lacks).
    may_convert: bool,
}

impl std::fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let layer = match &self.layer {
            Layer::Rustls(_) => "rustls",
            Layer::Kernel(_) => "in place",
            Layer::Gone => "gone",
        };
        f.debug_struct("TlsConn")
            .field("layer", &layer)
            .field("inbox", &self.inbox)
            .field("out", &(self.out_start, self.out_end))
            .field("handshake_done", &self.handshake_done)
            .finish_non_exhaustive()
    }
}

/// Keeps `text` as the error's text if there is none yet.
fn note(error: &mut Option<String>, text: impl FnOnce() -> String) {
    if error.is_none() {
        *error = Some(bounded(text()));
    }
}

impl TlsConn {
    /// A new client connection of `setup`, its buffers allocated (the only allocations of the
    /// connection outside rustls).
    pub fn new(setup: &TlsSetup) -> Result<Self, rustls::Error> {
        Ok(Self {
            layer: Layer::Rustls(UnbufferedClientConnection::new(
                std::sync::Arc::clone(&setup.config),
                setup.server_name.clone(),
            )?),
            inbox: Inbox::new(INCOMING_TLS_BYTES),
            out: vec![0; OUTGOING_TLS_BYTES].into_boxed_slice(),
            out_start: 0,
            out_end: 0,
            first: [0; 5],
            first_len: 0,
            handshake_done: false,
            may_convert: true,
        })
    }

    /// Whether encrypted bytes wait for the socket.
    pub fn pending_out(&self) -> bool {
        self.out_start < self.out_end
    }

    /// Whether a key of the connection is near its confidentiality limit: it is to close after
    /// the answer in progress (see [`Records::worn`]).
    pub fn worn(&self) -> bool {
        match &self.layer {
            Layer::Kernel(records) => records.worn(),
            Layer::Rustls(_) | Layer::Gone => false,
        }
    }

    /// The free part of the incoming buffer, for the next read (empty when full).
    pub fn read_space(&mut self) -> &mut [u8] {
        self.inbox.read_space()
    }

    /// `n` bytes were read into [`TlsConn::read_space`].
    pub fn filled(&mut self, n: usize) {
        let first_len = usize::from(self.first_len);
        if first_len < self.first.len() {
            let take = (self.first.len() - first_len).min(n);
            let read = self.inbox.read_space();
            self.first[first_len..first_len + take].copy_from_slice(&read[..take]);
            self.first_len += take as u8;
        }
        self.inbox.filled(n);
    }

    /// Writes what the outgoing buffer holds.
    pub fn flush(&mut self, sock: &mut TcpStream) -> Flush {
        flush(sock, &self.out, &mut self.out_start, &mut self.out_end)
    }

    /// Takes the incoming bytes until the event loop is needed (see the module docs).
    ///
    /// - `encrypt`: after the handshake, the part of the request to encrypt (then
    ///   [`Step::Encrypted`]); at most [`PLAIN_CHUNK`](crate::tls::PLAIN_CHUNK) bytes, and the
    ///   outgoing buffer must be empty.
    /// - `on_data`: gets each record of plaintext; [`Flow::Stop`] ends the call.
    /// - `error`: where the text of an error goes, if it is `None`.
    pub fn process(
        &mut self,
        sock: &mut TcpStream,
        encrypt: Option<&[u8]>,
        on_data: &mut dyn FnMut(&[u8]) -> Flow,
        error: &mut Option<String>,
    ) -> Step {
        match &mut self.layer {
            Layer::Kernel(records) => {
                let out = Out {
                    buf: &mut self.out,
                    start: &mut self.out_start,
                    end: &mut self.out_end,
                };
                process_in_place(records, &mut self.inbox, out, sock, encrypt, on_data, error)
            }
            Layer::Rustls(_) => self.process_rustls(sock, encrypt, on_data, error),
            Layer::Gone => {
                note(error, || "the TLS connection is gone".into());
                Step::Failed(ErrorKind::Tls(TlsErrorKind::Other))
            }
        }
    }

    /// [`TlsConn::process`] on rustls's record layer. At a clean point after the handshake
    /// (rustls at `WriteTraffic`, nothing unread) it moves the connection to ours.
    fn process_rustls(
        &mut self,
        sock: &mut TcpStream,
        encrypt: Option<&[u8]>,
        on_data: &mut dyn FnMut(&[u8]) -> Flow,
        error: &mut Option<String>,
    ) -> Step {
        loop {
            let Layer::Rustls(conn) = &mut self.layer else {
                return self.process(sock, encrypt, on_data, error);
            };
            // What the incoming buffer holds, all of it rustls's to take (reads only add to it).
            let held = self.inbox.held();
            let full = held == self.inbox.capacity();
            let UnbufferedStatus { mut discard, state } =
                conn.process_tls_records(self.inbox.bytes_mut());
            // Stop here and move to our record layer (then do `encrypt` there, if given).
            let mut convert = false;
            let step = match state {
                Err(e) => {
                    let kind = classify(&e, &self.first[..usize::from(self.first_len)]);
                    note(error, || e.to_string());
                    Some(Step::Failed(ErrorKind::Tls(kind)))
                }
                Ok(ConnectionState::ReadTraffic(mut records)) => {
                    let mut step = None;
                    while let Some(record) = records.next_record() {
                        match record {
                            Ok(record) => {
                                discard += record.discard;
                                if on_data(record.payload) == Flow::Stop {
                                    step = Some(Step::Stopped {
                                        more: records.peek_len().is_some(),
                                    });
                                    break;
                                }
                            }
                            Err(e) => {
                                note(error, || e.to_string());
                                step = Some(Step::Failed(ErrorKind::Tls(TlsErrorKind::Other)));
                                break;
                            }
                        }
                    }
                    step
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    match encode.encode(&mut self.out[self.out_end..]) {
                        Ok(n) => {
                            self.out_end += n;
                            None
                        }
                        Err(EncodeError::InsufficientSize(_) | EncodeError::AlreadyEncoded) => {
                            // The client's own flights are far below the buffer's size.
                            note(error, || "a handshake message too large to send".into());
                            Some(Step::Failed(ErrorKind::Tls(TlsErrorKind::Other)))
                        }
                    }
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    match flush(sock, &self.out, &mut self.out_start, &mut self.out_end) {
                        Flush::Done => {
                            transmit.done();
                            None
                        }
                        // Not done: rustls asks again once the rest is written.
                        Flush::Blocked => Some(Step::Blocked),
                        // During the handshake the peer went away; after it, a write failed.
                        Flush::Failed if self.handshake_done => {
                            Some(Step::Failed(ErrorKind::Write))
                        }
                        Flush::Failed => Some(Step::Failed(ErrorKind::Tls(TlsErrorKind::Closed))),
                    }
                }
                Ok(ConnectionState::BlockedHandshake) => {
                    if full && discard == 0 {
                        note(error, || {
                            format!(
                                "a handshake message longer than the {INCOMING_TLS_BYTES}-byte buffer"
                            )
                        });
                        Some(Step::Failed(ErrorKind::Tls(TlsErrorKind::Other)))
                    } else {
                        Some(Step::NeedRead)
                    }
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    // Nothing unread: rustls holds no part of a message either (it keeps
                    // those in the incoming buffer).
                    let clean = self.may_convert && discard == held;
                    if !self.handshake_done {
                        self.handshake_done = true;
                        convert = clean;
                        Some(Step::HandshakeDone)
                    } else if let Some(plain) = encrypt {
                        if clean {
                            convert = true;
                            None
                        } else {
                            match traffic.encrypt(plain, &mut self.out[self.out_end..]) {
                                Ok(n) => {
                                    self.out_end += n;
                                    Some(Step::Encrypted)
                                }
                                Err(
                                    e @ (EncryptError::InsufficientSize(_)
                                    | EncryptError::EncryptExhausted),
                                ) => {
                                    note(error, || e.to_string());
                                    Some(Step::Failed(ErrorKind::Tls(TlsErrorKind::Other)))
                                }
                            }
                        }
                    } else if full && discard == 0 {
                        // A full buffer rustls takes nothing from: it cannot go on.
                        note(error, || {
                            format!("a message longer than the {INCOMING_TLS_BYTES}-byte buffer")
                        });
                        Some(Step::Failed(ErrorKind::Tls(TlsErrorKind::Other)))
                    } else {
                        Some(Step::NeedRead)
                    }
                }
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => Some(Step::PeerClosed),
                Ok(_) => {
                    // Early data is a server's state; nothing else exists in this version.
                    note(error, || "an unexpected TLS state".into());
                    Some(Step::Failed(ErrorKind::Tls(TlsErrorKind::Other)))
                }
            };
            if discard > 0 {
                self.inbox.discard(discard);
            }
            if convert {
                if let Err(e) = self.convert() {
                    note(error, || e.to_string());
                    return Step::Failed(ErrorKind::Tls(e.kind()));
                }
                if step.is_none() {
                    // `encrypt` is done on our record layer.
                    return self.process(sock, encrypt, on_data, error);
                }
            }
            if let Some(step) = step {
                return step;
            }
        }
    }

    /// Moves a connection whose handshake is done to our record layer, if its suite is one
    /// ours has (every suite of rustls's *ring* provider is); another stays on rustls's for
    /// good. An error (rustls refused to hand over, which its state at `WriteTraffic` rules
    /// out) leaves no layer at all.
    fn convert(&mut self) -> Result<(), RecordError> {
        let Layer::Rustls(conn) = &self.layer else {
            return Ok(());
        };
        let (common, version) = match (conn.negotiated_cipher_suite(), conn.protocol_version()) {
            (Some(SupportedCipherSuite::Tls13(s)), Some(ProtocolVersion::TLSv1_3)) => {
                (&s.common, Version::Tls13)
            }
            (Some(SupportedCipherSuite::Tls12(s)), Some(ProtocolVersion::TLSv1_2)) => {
                (&s.common, Version::Tls12)
            }
            _ => {
                self.may_convert = false;
                return Ok(());
            }
        };
        if Aead::of_suite(common.suite).map(|(v, _)| v) != Some(version) {
            self.may_convert = false;
            return Ok(());
        }
        let limit = common.confidentiality_limit;
        let Layer::Rustls(conn) = std::mem::replace(&mut self.layer, Layer::Gone) else {
            unreachable!("matched above");
        };
        let (secrets, conn) = conn
            .dangerous_into_kernel_connection()
            .map_err(schedule_error)?;
        let tx = Key::from_secrets(version, secrets.tx, limit)?;
        let rx = Key::from_secrets(version, secrets.rx, limit)?;
        let schedule = Schedule {
            conn,
            version,
            limit,
        };
        self.layer = Layer::Kernel(Records::new(schedule, tx, rx));
        Ok(())
    }
}

/// The outgoing buffer, `buf[*start..*end]` to write.
struct Out<'a> {
    buf: &'a mut [u8],
    start: &'a mut usize,
    end: &'a mut usize,
}

/// [`TlsConn::process`] on our record layer: `encrypt` is sealed (after a KeyUpdate owed to
/// the peer) and nothing read; else the records read are opened, and a KeyUpdate they made owed
/// is sealed and written at once (if the socket is full it waits in the outgoing buffer, which
/// the event loop writes when the socket is writable).
fn process_in_place(
    records: &mut Records<Schedule>,
    inbox: &mut Inbox,
    out: Out<'_>,
    sock: &mut TcpStream,
    encrypt: Option<&[u8]>,
    on_data: &mut dyn FnMut(&[u8]) -> Flow,
    error: &mut Option<String>,
) -> Step {
    let mut failed = |e: RecordError| {
        let kind = e.kind();
        note(error, || e.to_string());
        Step::Failed(ErrorKind::Tls(kind))
    };
    if let Some(plain) = encrypt {
        return match records.seal(plain, &mut out.buf[*out.end..]) {
            Ok(n) => {
                *out.end += n;
                Step::Encrypted
            }
            Err(e) => failed(e),
        };
    }
    let step = match records.receive(inbox, on_data) {
        Received::NeedMore => Step::NeedRead,
        Received::Stopped { more } => Step::Stopped { more },
        Received::Closed => Step::PeerClosed,
        Received::Failed(e) => return failed(e),
    };
    if records.owes_update() && step != Step::PeerClosed {
        match records.seal_owed(&mut out.buf[*out.end..]) {
            Ok(n) => *out.end += n,
            Err(e) => return failed(e),
        }
        if flush(sock, out.buf, out.start, out.end) == Flush::Failed && step == Step::NeedRead {
            return Step::Failed(ErrorKind::Write);
        }
    }
    step
}

/// Writes `out[*start..*end]` to `sock` (on the fields, so that it can run while rustls's state
/// borrows the connection); both go back to 0 once all is written.
fn flush(sock: &mut TcpStream, out: &[u8], start: &mut usize, end: &mut usize) -> Flush {
    while *start < *end {
        match sock.write(&out[*start..*end]) {
            Ok(0) => return Flush::Failed,
            Ok(n) => *start += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flush::Blocked,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Flush::Failed,
        }
    }
    *start = 0;
    *end = 0;
    Flush::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_connection_is_its_buffers_and_under_2_kib_more() {
        // Boxed per connection beside its two buffers (docs/qload.md "HTTPS" gives the sum):
        // the rustls handshake state or our record layer (two ring keys and rustls's kernel
        // connection) inline, whichever is larger.
        let size = std::mem::size_of::<TlsConn>();
        assert!(size <= 2048, "TlsConn is {size} bytes");
    }
}
