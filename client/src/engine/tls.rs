//! One TLS connection's records: rustls's unbuffered client over the pool's socket.
//!
//! rustls's unbuffered API decrypts in and encrypts into buffers its caller owns. A [`TlsConn`]
//! owns two, allocated when the connection opens and never grown: the incoming buffer
//! ([`INCOMING_TLS_BYTES`], one whole record of the largest size) holds the bytes read from the
//! socket until rustls has taken the records in them (a record split across reads stays until
//! its rest comes), and the outgoing one ([`OUTGOING_TLS_BYTES`]) holds the client's handshake
//! flights and then each encrypted part of a request until the socket has taken it (a partial
//! write resumes from where it stopped). Decrypted answers are handed to the caller record by
//! record, straight to the response parser.
//!
//! [`TlsConn::process`] turns the crank: it gives rustls the incoming bytes, and does what the
//! state rustls returns asks for (encode a handshake message into the outgoing buffer, write it
//! out, hand over plaintext, encrypt the next part of a request) until rustls needs something
//! only the event loop can give (more bytes from the peer, room in the socket) or the caller's
//! part is done ([`Step`]).
use std::io::{self, Write as _};

use mio::net::TcpStream;
use rustls::client::UnbufferedClientConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};

use crate::result::{ErrorKind, TlsErrorKind};
use crate::tls::{INCOMING_TLS_BYTES, OUTGOING_TLS_BYTES, TlsSetup, bounded, classify};

/// What the caller makes of a record of plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Keep going.
    More,
    /// Stop: the caller has what it wanted (an answer), or will not take more.
    Stop,
}

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

/// A TLS connection's state and buffers (see the module docs).
pub(super) struct TlsConn {
    conn: UnbufferedClientConnection,
    /// Bytes read from the socket, `inb[..in_len]` not yet taken by rustls.
    inb: Box<[u8]>,
    in_len: usize,
    /// Encrypted bytes to write, `out[out_start..out_end]`.
    out: Box<[u8]>,
    out_start: usize,
    out_end: usize,
    /// The first bytes the peer sent (up to 5), to tell a peer that does not speak TLS.
    first: [u8; 5],
    first_len: u8,
    handshake_done: bool,
}

impl std::fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConn")
            .field("in_len", &self.in_len)
            .field("out", &(self.out_start, self.out_end))
            .field("handshake_done", &self.handshake_done)
            .finish_non_exhaustive()
    }
}

impl TlsConn {
    /// A new client connection of `setup`, its buffers allocated (the only allocations of the
    /// connection outside rustls).
    pub fn new(setup: &TlsSetup) -> Result<Self, rustls::Error> {
        Ok(Self {
            conn: UnbufferedClientConnection::new(
                std::sync::Arc::clone(&setup.config),
                setup.server_name.clone(),
            )?,
            inb: vec![0; INCOMING_TLS_BYTES].into_boxed_slice(),
            in_len: 0,
            out: vec![0; OUTGOING_TLS_BYTES].into_boxed_slice(),
            out_start: 0,
            out_end: 0,
            first: [0; 5],
            first_len: 0,
            handshake_done: false,
        })
    }

    /// Whether encrypted bytes wait for the socket.
    pub fn pending_out(&self) -> bool {
        self.out_start < self.out_end
    }

    /// The free part of the incoming buffer, for the next read (empty when full).
    pub fn read_space(&mut self) -> &mut [u8] {
        &mut self.inb[self.in_len..]
    }

    /// `n` bytes were read into [`TlsConn::read_space`].
    pub fn filled(&mut self, n: usize) {
        let first_len = usize::from(self.first_len);
        if first_len < self.first.len() {
            let take = (self.first.len() - first_len).min(n);
            self.first[first_len..first_len + take]
                .copy_from_slice(&self.inb[self.in_len..self.in_len + take]);
            self.first_len += take as u8;
        }
        self.in_len += n;
    }

    /// Writes what the outgoing buffer holds.
    pub fn flush(&mut self, sock: &mut TcpStream) -> Flush {
        flush(sock, &self.out, &mut self.out_start, &mut self.out_end)
    }

    /// Runs rustls over the incoming bytes until it needs the event loop (see the module docs).
    ///
    /// - `encrypt`: after the handshake, the part of the request to encrypt when rustls allows
    ///   it (then [`Step::Encrypted`]); it must fit the outgoing buffer, which must be empty.
    /// - `on_data`: gets each record of plaintext; [`Flow::Stop`] ends the call.
    /// - `error`: where the text of a rustls error goes, if it is `None`.
    pub fn process(
        &mut self,
        sock: &mut TcpStream,
        encrypt: Option<&[u8]>,
        on_data: &mut dyn FnMut(&[u8]) -> Flow,
        error: &mut Option<String>,
    ) -> Step {
        loop {
            let UnbufferedStatus { mut discard, state } =
                self.conn.process_tls_records(&mut self.inb[..self.in_len]);
            let step = match state {
                Err(e) => {
                    let kind = classify(&e, &self.first[..usize::from(self.first_len)]);
                    if error.is_none() {
                        *error = Some(bounded(e.to_string()));
                    }
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
                                if error.is_none() {
                                    *error = Some(bounded(e.to_string()));
                                }
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
                            if error.is_none() {
                                *error = Some("a handshake message too large to send".into());
                            }
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
                    if self.in_len == self.inb.len() && discard == 0 {
                        if error.is_none() {
                            *error = Some(format!(
                                "a handshake message longer than the {INCOMING_TLS_BYTES}-byte buffer"
                            ));
                        }
                        Some(Step::Failed(ErrorKind::Tls(TlsErrorKind::Other)))
                    } else {
                        Some(Step::NeedRead)
                    }
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    if !self.handshake_done {
                        self.handshake_done = true;
                        Some(Step::HandshakeDone)
                    } else if let Some(plain) = encrypt {
                        match traffic.encrypt(plain, &mut self.out[self.out_end..]) {
                            Ok(n) => {
                                self.out_end += n;
                                Some(Step::Encrypted)
                            }
                            Err(
                                e @ (EncryptError::InsufficientSize(_)
                                | EncryptError::EncryptExhausted),
                            ) => {
                                if error.is_none() {
                                    *error = Some(bounded(e.to_string()));
                                }
                                Some(Step::Failed(ErrorKind::Tls(TlsErrorKind::Other)))
                            }
                        }
                    } else if self.in_len == self.inb.len() && discard == 0 {
                        // A full buffer rustls takes nothing from: it cannot go on.
                        if error.is_none() {
                            *error = Some(format!(
                                "a message longer than the {INCOMING_TLS_BYTES}-byte buffer"
                            ));
                        }
                        Some(Step::Failed(ErrorKind::Tls(TlsErrorKind::Other)))
                    } else {
                        Some(Step::NeedRead)
                    }
                }
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => Some(Step::PeerClosed),
                Ok(_) => {
                    // Early data is a server's state; nothing else exists in this version.
                    if error.is_none() {
                        *error = Some("an unexpected TLS state".into());
                    }
                    Some(Step::Failed(ErrorKind::Tls(TlsErrorKind::Other)))
                }
            };
            if discard > 0 {
                self.inb.copy_within(discard..self.in_len, 0);
                self.in_len -= discard;
            }
            if let Some(step) = step {
                return step;
            }
        }
    }
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
