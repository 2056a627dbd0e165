//! TLS records after the handshake, sealed and opened in place: TLS 1.3 (RFC 8446 §5.2, §5.3)
//! and TLS 1.2's AEAD suites (RFC 5246 §6.2.3.3, RFC 5288, RFC 7905).
//!
//! Why this exists: the hot path must not allocate per request, and rustls 0.23 has no in-place
//! path for application data (its unbuffered API seals each record through a fresh `Vec` and
//! copies each opened one into another). rustls documents the way out for exactly this case (its
//! `kernel` module): it runs the handshake and the key schedule, then hands over the traffic
//! secrets and a [`KernelConnection`](rustls::kernel::KernelConnection) that derives the next
//! secrets on a key update and stores session tickets. The cryptography is *ring*'s AEADs
//! ([`ring::aead::LessSafeKey`]); the handshake and the key schedule are rustls's; only the record
//! framing is ours, in this module. TLS 1.3:
//!
//! - a record is a 5-byte header (type 23, legacy version 0x0303, the length of what follows)
//!   and the AEAD's output over the inner plaintext `content || content type || zero padding`,
//!   with the header as additional data;
//! - the nonce is the key's IV XOR the record's 64-bit big-endian sequence number, left-padded to
//!   12 bytes; the sequence number counts the records of one key in one direction from 0;
//! - at most 2^14 bytes of content per record (the inner plaintext at most 2^14 + 1, the
//!   ciphertext at most 2^14 + 256).
//!
//! TLS 1.2 (AES-GCM and ChaCha20-Poly1305 only): the header carries the real content type and
//! the AEAD's output is over the content alone; the additional data is the sequence number, the
//! type, the version and the content's length (13 bytes). AES-GCM's nonce is the key's 4-byte
//! salt and an 8-byte explicit part sent before the ciphertext (ours: the IV XOR the sequence
//! number, as rustls does; the peer's: whatever its record says); ChaCha20-Poly1305's is the IV
//! XOR the sequence number, as in TLS 1.3, with nothing sent. At most 2^14 bytes of content, at
//! most 2^14 + 2048 of ciphertext. TLS 1.2 has no key updates.
//!
//! [`Key`] seals into and opens in the caller's buffers. [`Inbox`] is a connection's incoming
//! buffer: records are opened where they were read, a handshake message split across records is
//! joined in place at the front of the same buffer (bounded by it), and [`Inbox::next`] yields
//! what each record held. [`Records`] is a connection's whole record layer after the handshake:
//! application data to the caller, session tickets and key updates to the [`KeySchedule`]
//! (rustls's kernel connection), alerts, and the counts behind the confidentiality limit.
//! Nothing here allocates; every malformed input is an [`RecordError`], never a panic.
use ring::aead::{
    AES_128_GCM, AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey,
};
use rustls::{AlertDescription, ConnectionTrafficSecrets};

use crate::result::TlsErrorKind;

/// Bytes of a record's header.
pub const HEADER: usize = 5;
/// Bytes of an AEAD tag (all three AEADs).
pub const TAG: usize = 16;
/// Bytes of an IV (and of a nonce).
pub const IV: usize = 12;
/// Bytes of TLS 1.2 AES-GCM's explicit nonce, sent before each record's ciphertext.
pub const EXPLICIT_NONCE: usize = 8;
/// Most content bytes in one record (2^14).
pub const MAX_CONTENT: usize = 1 << 14;
/// Most bytes of a TLS 1.3 inner plaintext: the content and its type byte (padding included).
pub const MAX_INNER: usize = MAX_CONTENT + 1;
/// Most bytes of a TLS 1.3 record's ciphertext, the tag included (2^14 + 256).
pub const MAX_CIPHERTEXT: usize = MAX_CONTENT + 256;
/// Most bytes of a TLS 1.2 record's ciphertext (2^14 + 2048).
pub const MAX_CIPHERTEXT_TLS12: usize = MAX_CONTENT + 2048;
/// Fewest bytes of a TLS 1.3 record's ciphertext: a content type and the tag.
pub const MIN_CIPHERTEXT: usize = 1 + TAG;
/// Most bytes of a whole record of [`MAX_CONTENT`] bytes as this module seals it (TLS 1.2
/// AES-GCM: its explicit nonce; TLS 1.3: the type byte, no padding).
pub const MAX_SEALED: usize = HEADER + EXPLICIT_NONCE + MAX_CONTENT + TAG;
/// Bytes of a sealed KeyUpdate message (a 4-byte handshake header and its 1-byte body).
pub const KEY_UPDATE_RECORD: usize = HEADER + 4 + 1 + 1 + TAG;
/// Most records without application data accepted in a row from the peer (key updates,
/// session tickets, ignored alerts, TLS 1.2 HelloRequests; rustls and BoringSSL bound key updates
/// the same way): a peer cannot keep the connection busy deriving keys or storing tickets.
pub const MAX_QUIET: u32 = 32;

/// Content type `change_cipher_spec`.
pub const CHANGE_CIPHER_SPEC: u8 = 20;
/// Content type `alert`.
pub const ALERT: u8 = 21;
/// Content type `handshake`.
pub const HANDSHAKE: u8 = 22;
/// Content type `application_data`.
pub const APPLICATION_DATA: u8 = 23;
/// Handshake type `hello_request` (TLS 1.2: the server asks for a renegotiation).
pub const HELLO_REQUEST: u8 = 0;
/// Handshake type `new_session_ticket`.
pub const NEW_SESSION_TICKET: u8 = 4;
/// Handshake type `key_update`.
pub const KEY_UPDATE: u8 = 24;

/// Why a record could not be sealed or opened, or what the peer sent instead of data. All end
/// the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A header that cannot start a protected record.
    #[error("a TLS record of type {typ}, version {major}.{minor} after the handshake")]
    Header {
        /// Its content type.
        typ: u8,
        /// Its legacy version's major byte.
        major: u8,
        /// Its legacy version's minor byte.
        minor: u8,
    },
    /// A ciphertext too short for the AEAD's overhead, or longer than the version allows.
    #[error("a TLS record of {0} bytes of ciphertext (too short or too long)")]
    Length(usize),
    /// The record does not decrypt under the key (a wrong tag: tampered, or out of step).
    #[error("a TLS record that does not decrypt (bad tag)")]
    Open,
    /// A TLS 1.3 inner plaintext of zeros only: no content type.
    #[error("a TLS record of padding only (no content type)")]
    NoType,
    /// A plaintext longer than the version allows (TLS 1.3: 2^14 + 1 with the type; 1.2: 2^14).
    #[error("a TLS record of {0} bytes of plaintext (too long)")]
    Overflow(usize),
    /// A content type other than application data, handshake or alert.
    #[error("a TLS record of content type {0} after the handshake")]
    ContentType(u8),
    /// A record, or a handshake message joined from records, that cannot fit the buffer.
    #[error("a TLS record or handshake message longer than the {0}-byte incoming buffer")]
    TooLong(usize),
    /// A record of another type between the records of one handshake message.
    #[error("a TLS record of another type inside a handshake message")]
    Interleaved,
    /// A handshake record with no content.
    #[error("an empty handshake record")]
    EmptyHandshake,
    /// An alert whose content is not 2 bytes.
    #[error("an alert of {0} bytes")]
    BadAlert(usize),
    /// The peer sent an alert (other than close_notify and those ignored).
    #[error("received fatal alert: {0:?}")]
    Alert(AlertDescription),
    /// The peer sent an alert outside the records' protection.
    #[error("received an unprotected alert after the handshake: {0:?}")]
    PlainAlert(AlertDescription),
    /// A handshake message of a type a client never gets after the handshake (in its version).
    #[error("a handshake message of type {0} after the handshake")]
    Handshake(u8),
    /// A KeyUpdate that is malformed or does not end its record.
    #[error("a malformed KeyUpdate")]
    KeyUpdate,
    /// More than [`MAX_QUIET`] records without application data between them.
    #[error(
        "more than {MAX_QUIET} records without application data (key updates, tickets, ignored alerts)"
    )]
    TooQuiet,
    /// A key's sequence numbers ran out, or (TLS 1.2, which cannot update its keys) its
    /// confidentiality limit was reached.
    #[error("a TLS key has protected all the records it may")]
    Exhausted,
    /// Content to seal longer than 2^14 bytes (TLS 1.3: with its padding).
    #[error("{0} bytes to seal in one record (too long)")]
    SealTooLong(usize),
    /// Padding asked of a TLS 1.2 record (1.2 has none).
    #[error("padding asked of a TLS 1.2 record")]
    Padding,
    /// No room in the outgoing buffer for the sealed record.
    #[error("no room for a {0}-byte record in the outgoing buffer")]
    NoRoom(usize),
    /// A key of the wrong length for its AEAD.
    #[error("a TLS traffic key of the wrong length")]
    KeyLength,
    /// Traffic secrets of an AEAD this module does not have.
    #[error("traffic secrets of an unsupported AEAD")]
    UnsupportedAead,
    /// The key schedule (rustls) refused a key update or a session ticket.
    #[error("{0}")]
    Schedule(String),
}

impl RecordError {
    /// The `tls` error kind this counts as: `alert` for the peer's alerts, else `other`.
    pub fn kind(&self) -> TlsErrorKind {
        match self {
            Self::Alert(_) | Self::PlainAlert(_) => TlsErrorKind::Alert,
            _ => TlsErrorKind::Other,
        }
    }
}

/// The protocol version of a connection's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// The AEAD of a cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aead {
    /// AES-128-GCM.
    Aes128Gcm,
    /// AES-256-GCM.
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    Chacha20Poly1305,
}

impl Aead {
    /// All three.
    pub const ALL: [Aead; 3] = [Aead::Aes128Gcm, Aead::Aes256Gcm, Aead::Chacha20Poly1305];

    /// Bytes of its key.
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm => 16,
            Self::Aes256Gcm | Self::Chacha20Poly1305 => 32,
        }
    }

    /// The version and AEAD of cipher suite `suite`, if it is one of those this module has
    /// (TLS 1.3's three, TLS 1.2's ECDHE suites with AES-GCM or ChaCha20-Poly1305).
    pub fn of_suite(suite: rustls::CipherSuite) -> Option<(Version, Self)> {
        use rustls::CipherSuite as C;
        Some(match suite {
            C::TLS13_AES_128_GCM_SHA256 => (Version::Tls13, Self::Aes128Gcm),
            C::TLS13_AES_256_GCM_SHA384 => (Version::Tls13, Self::Aes256Gcm),
            C::TLS13_CHACHA20_POLY1305_SHA256 => (Version::Tls13, Self::Chacha20Poly1305),
            C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => (Version::Tls12, Self::Aes128Gcm),
            C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            | C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => (Version::Tls12, Self::Aes256Gcm),
            C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            | C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => {
                (Version::Tls12, Self::Chacha20Poly1305)
            }
            _ => return None,
        })
    }

    fn ring(self) -> &'static ring::aead::Algorithm {
        match self {
            Self::Aes128Gcm => &AES_128_GCM,
            Self::Aes256Gcm => &AES_256_GCM,
            Self::Chacha20Poly1305 => &CHACHA20_POLY1305,
        }
    }

    /// Whether TLS 1.2 sends an explicit nonce before each ciphertext with it (AES-GCM).
    fn explicit_nonce(self) -> usize {
        match self {
            Self::Aes128Gcm | Self::Aes256Gcm => EXPLICIT_NONCE,
            Self::Chacha20Poly1305 => 0,
        }
    }
}

/// One direction's traffic key: the AEAD key, its IV, the sequence number of its next record
/// and the confidentiality limit of its suite, for records of one version.
pub struct Key {
    key: LessSafeKey,
    version: Version,
    aead: Aead,
    iv: [u8; IV],
    seq: u64,
    limit: u64,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No key material in debug output.
        f.debug_struct("Key")
            .field("version", &self.version)
            .field("aead", &self.aead)
            .field("seq", &self.seq)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A key of `aead` for records of `version` from its bytes and IV (TLS 1.2 AES-GCM: the
    /// 4-byte salt and the 8 bytes the explicit nonces start from), whose next record has
    /// sequence number `seq`; `limit`: the records one key may protect (the suite's
    /// confidentiality limit).
    pub fn new(
        version: Version,
        aead: Aead,
        key: &[u8],
        iv: &[u8],
        seq: u64,
        limit: u64,
    ) -> Result<Self, RecordError> {
        let iv: [u8; IV] = iv.try_into().map_err(|_| RecordError::KeyLength)?;
        if key.len() != aead.key_len() {
            return Err(RecordError::KeyLength);
        }
        let key = UnboundKey::new(aead.ring(), key).map_err(|_| RecordError::KeyLength)?;
        Ok(Self {
            key: LessSafeKey::new(key),
            version,
            aead,
            iv,
            seq,
            limit,
        })
    }

    /// The key of rustls's extracted `(seq, secrets)` for records of `version` with `limit`.
    pub fn from_secrets(
        version: Version,
        (seq, secrets): (u64, ConnectionTrafficSecrets),
        limit: u64,
    ) -> Result<Self, RecordError> {
        let (aead, key, iv) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (Aead::Aes128Gcm, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (Aead::Aes256Gcm, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (Aead::Chacha20Poly1305, key, iv)
            }
            _ => return Err(RecordError::UnsupportedAead),
        };
        Self::new(version, aead, key.as_ref(), iv.as_ref(), seq, limit)
    }

    /// The version of its records.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The sequence number of the next record: the records this key has protected so far.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The confidentiality limit this key was made with.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether this key has protected 15/16 of its limit: its connection is to close after the
    /// answer in progress (the last 1/16, 2^20 records of AES-GCM's 2^24, is the margin for it).
    pub fn worn(&self) -> bool {
        self.seq >= self.limit - self.limit / 16
    }

    /// Bytes a record's ciphertext may have (the AEAD's overhead at least, the version's most).
    fn ciphertext_range(&self) -> std::ops::RangeInclusive<usize> {
        match self.version {
            Version::Tls13 => MIN_CIPHERTEXT..=MAX_CIPHERTEXT,
            Version::Tls12 => self.aead.explicit_nonce() + TAG..=MAX_CIPHERTEXT_TLS12,
        }
    }

    /// The sequence number of the next record, or an error when they are used up.
    fn next_seq(&self) -> Result<u64, RecordError> {
        if self.seq == u64::MAX {
            return Err(RecordError::Exhausted);
        }
        Ok(self.seq)
    }

    /// The IV XOR the sequence number `seq`, big-endian in the last 8 bytes (RFC 8446 §5.3;
    /// RFC 7905 for TLS 1.2 ChaCha20-Poly1305; rustls's explicit nonces for TLS 1.2 AES-GCM).
    fn xor_nonce(&self, seq: u64) -> [u8; IV] {
        let mut nonce = self.iv;
        for (n, s) in nonce[IV - 8..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    /// TLS 1.2's additional data: sequence number, type, version, content length.
    fn tls12_aad(seq: u64, typ: u8, version: [u8; 2], len: usize) -> [u8; 13] {
        let mut aad = [0; 13];
        aad[..8].copy_from_slice(&seq.to_be_bytes());
        aad[8] = typ;
        aad[9..11].copy_from_slice(&version);
        // At most 2^14 + 2048: the callers check the length first.
        aad[11..].copy_from_slice(&(len as u16).to_be_bytes());
        aad
    }

    /// Seals `content` of content type `typ`, followed by `padding` zeros (TLS 1.3 only), as
    /// one record at the start of `out`; returns the record's length (TLS 1.3: `HEADER + content
    /// + 1 + padding + TAG`; TLS 1.2: `HEADER + explicit nonce + content + TAG`). The content is
    /// copied into `out` and encrypted there; nothing is allocated.
    pub fn seal(
        &mut self,
        typ: u8,
        content: &[u8],
        padding: usize,
        out: &mut [u8],
    ) -> Result<usize, RecordError> {
        let (prefix, inner) = match self.version {
            Version::Tls13 => (0, content.len() + 1 + padding),
            Version::Tls12 if padding > 0 => return Err(RecordError::Padding),
            Version::Tls12 => (self.aead.explicit_nonce(), content.len()),
        };
        let limit = match self.version {
            Version::Tls13 => MAX_INNER,
            Version::Tls12 => MAX_CONTENT,
        };
        if inner > limit {
            return Err(RecordError::SealTooLong(inner));
        }
        let total = HEADER + prefix + inner + TAG;
        if out.len() < total {
            return Err(RecordError::NoRoom(total));
        }
        let seq = self.next_seq()?;
        let nonce = self.xor_nonce(seq);
        let (header, body) = out[..total].split_at_mut(HEADER);
        let length =
            u16::try_from(prefix + inner + TAG).expect("at most 2^14 + 25 by the check above");
        let [hi, lo] = length.to_be_bytes();
        let outer = match self.version {
            Version::Tls13 => APPLICATION_DATA,
            Version::Tls12 => typ,
        };
        header.copy_from_slice(&[outer, 3, 3, hi, lo]);
        let (explicit, rest) = body.split_at_mut(prefix);
        explicit.copy_from_slice(&nonce[IV - prefix..]);
        let (plain, tag_out) = rest.split_at_mut(inner);
        plain[..content.len()].copy_from_slice(content);
        let sealed = match self.version {
            Version::Tls13 => {
                plain[content.len()] = typ;
                plain[content.len() + 1..].fill(0);
                self.key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&header[..]),
                    plain,
                )
            }
            Version::Tls12 => self.key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::tls12_aad(seq, typ, [3, 3], inner)),
                plain,
            ),
        };
        let tag = sealed.map_err(|_| RecordError::SealTooLong(inner))?;
        tag_out.copy_from_slice(tag.as_ref());
        self.seq += 1;
        Ok(total)
    }

    /// Opens `body` (a record's ciphertext and tag, and TLS 1.2 AES-GCM's explicit nonce before
    /// them) in place under `header` (its 5 bytes); returns the content type and where the
    /// content now lies in `body` (TLS 1.3: the padding stripped).
    fn open(
        &mut self,
        header: &[u8],
        body: &mut [u8],
    ) -> Result<(u8, std::ops::Range<usize>), RecordError> {
        let seq = self.next_seq()?;
        match self.version {
            Version::Tls13 => {
                let nonce = Nonce::assume_unique_for_key(self.xor_nonce(seq));
                let inner = self
                    .key
                    .open_in_place(nonce, Aad::from(header), body)
                    .map_err(|_| RecordError::Open)?
                    .len();
                self.seq += 1;
                if inner > MAX_INNER {
                    return Err(RecordError::Overflow(inner));
                }
                // The content type is the last byte that is not padding.
                let Some(type_at) = body[..inner].iter().rposition(|&b| b != 0) else {
                    return Err(RecordError::NoType);
                };
                Ok((body[type_at], 0..type_at))
            }
            Version::Tls12 => {
                let prefix = self.aead.explicit_nonce();
                let len = body.len() - prefix - TAG;
                let nonce = if prefix == 0 {
                    self.xor_nonce(seq)
                } else {
                    let mut nonce = [0; IV];
                    nonce[..IV - prefix].copy_from_slice(&self.iv[..IV - prefix]);
                    nonce[IV - prefix..].copy_from_slice(&body[..prefix]);
                    nonce
                };
                let aad = Self::tls12_aad(seq, header[0], [header[1], header[2]], len);
                let n = self
                    .key
                    .open_in_place(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad),
                        &mut body[prefix..],
                    )
                    .map_err(|_| RecordError::Open)?
                    .len();
                self.seq += 1;
                if n > MAX_CONTENT {
                    return Err(RecordError::Overflow(n));
                }
                Ok((header[0], prefix..prefix + n))
            }
        }
    }
}

/// What the next record of an [`Inbox`] held.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// No whole record (or handshake message) is there yet: more bytes are needed.
    NeedMore,
    /// Application data (never empty: empty records are skipped).
    Data(&'a [u8]),
    /// A whole handshake message: its type and body (without the 4-byte header).
    Handshake {
        /// The handshake type.
        typ: u8,
        /// The body.
        body: &'a [u8],
        /// Nothing of another message follows it in its record (a KeyUpdate must end its
        /// record: the next record is under the new key).
        ends_record: bool,
    },
    /// An alert.
    Alert {
        /// Its level (1 warning, 2 fatal; TLS 1.3 ignores it).
        level: u8,
        /// Its description.
        description: u8,
    },
}

/// A connection's incoming buffer: bytes read from the socket, opened record by record where
/// they lie (see the module docs). `buf[..hs]` holds the start of a handshake message joined from
/// the records opened so far; `buf[hs..len]` the bytes not yet opened (the last record possibly
/// partial). What [`Inbox::next`] returned last, `buf[..taken]`, is removed when the inbox is next
/// used.
pub struct Inbox {
    buf: Box<[u8]>,
    len: usize,
    hs: usize,
    taken: usize,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("size", &self.buf.len())
            .field("len", &self.len)
            .field("hs", &self.hs)
            .finish_non_exhaustive()
    }
}

impl Inbox {
    /// An empty inbox of `size` bytes (allocated now, never grown). Anything smaller than one
    /// record of the largest size cannot take every record a peer may send.
    pub fn new(size: usize) -> Self {
        Self {
            buf: vec![0; size].into_boxed_slice(),
            len: 0,
            hs: 0,
            taken: 0,
        }
    }

    /// Its size.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Removes what [`Inbox::next`] returned last.
    fn settle(&mut self) {
        if self.taken > 0 {
            self.buf.copy_within(self.taken..self.len, 0);
            self.len -= self.taken;
            self.hs = self.hs.saturating_sub(self.taken);
            self.taken = 0;
        }
    }

    /// The free part, for the next read (empty when full).
    pub fn read_space(&mut self) -> &mut [u8] {
        self.settle();
        &mut self.buf[self.len..]
    }

    /// `n` bytes were read into [`Inbox::read_space`].
    pub fn filled(&mut self, n: usize) {
        self.len = (self.len + n).min(self.buf.len());
    }

    /// Bytes held and not yet handed out (opened or not).
    pub fn held(&self) -> usize {
        self.len - self.taken
    }

    /// The bytes held, for a record layer that works on them itself (rustls during the
    /// handshake); only before [`Inbox::next`] was first used.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.settle();
        &mut self.buf[..self.len]
    }

    /// Removes the first `n` bytes held (what that record layer is done with).
    pub fn discard(&mut self, n: usize) {
        self.settle();
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
        self.hs = self.hs.saturating_sub(n);
    }

    /// Opens the next record with `rx` and says what it held (see [`Inbound`]); a handshake
    /// message that spans records is joined first. What is returned stays in the buffer until
    /// the next call (or read). An error leaves the inbox unusable (its connection ends).
    pub fn next(&mut self, rx: &mut Key) -> Result<Inbound<'_>, RecordError> {
        self.settle();
        let size = self.buf.len();
        let lengths = rx.ciphertext_range();
        let shortest = HEADER + *lengths.start();
        loop {
            if self.hs >= 4 {
                let n = u32::from_be_bytes([0, self.buf[1], self.buf[2], self.buf[3]]) as usize;
                let end = 4 + n;
                if end <= self.hs {
                    self.taken = end;
                    return Ok(Inbound::Handshake {
                        typ: self.buf[0],
                        body: &self.buf[4..end],
                        ends_record: end == self.hs,
                    });
                }
                // The record that completes it starts at `hs` or later and carries the rest of
                // the message and the AEAD's overhead: it must fit.
                if end + shortest > size {
                    return Err(RecordError::TooLong(size));
                }
            }
            let at = self.hs;
            if at + shortest > size {
                return Err(RecordError::TooLong(size));
            }
            if self.len < at + HEADER {
                return Ok(Inbound::NeedMore);
            }
            let [typ, major, minor, hi, lo] = [
                self.buf[at],
                self.buf[at + 1],
                self.buf[at + 2],
                self.buf[at + 3],
                self.buf[at + 4],
            ];
            let length = usize::from(u16::from_be_bytes([hi, lo]));
            if typ == ALERT && major == 3 && length == 2 {
                // An alert outside the protection (a peer that could not decrypt ours, say).
                if self.len < at + HEADER + 2 {
                    return Ok(Inbound::NeedMore);
                }
                return Err(RecordError::PlainAlert(AlertDescription::from(
                    self.buf[at + HEADER + 1],
                )));
            }
            // The legacy version is ignored past its major byte (RFC 8446 §5.1; in TLS 1.2 it
            // is authenticated). The outer type of every TLS 1.3 record is application_data; a
            // TLS 1.2 record's is its own.
            let outer_ok = match rx.version {
                Version::Tls13 => typ == APPLICATION_DATA,
                Version::Tls12 => matches!(typ, APPLICATION_DATA | ALERT | HANDSHAKE),
            };
            if !outer_ok || major != 3 {
                return Err(RecordError::Header { typ, major, minor });
            }
            if !lengths.contains(&length) {
                return Err(RecordError::Length(length));
            }
            let end = at + HEADER + length;
            if end > size {
                return Err(RecordError::TooLong(size));
            }
            if end > self.len {
                return Ok(Inbound::NeedMore);
            }
            let (header, body) = self.buf[at..end].split_at_mut(HEADER);
            let (typ, content) = rx.open(header, body)?;
            // Where the content lies in the buffer.
            let (from, len) = (at + HEADER + content.start, content.len());
            match typ {
                APPLICATION_DATA | ALERT if at > 0 => return Err(RecordError::Interleaved),
                APPLICATION_DATA if len == 0 => {
                    // Empty application data: allowed, and nothing to hand over.
                    self.taken = end;
                    self.settle();
                }
                APPLICATION_DATA => {
                    self.taken = end;
                    return Ok(Inbound::Data(&self.buf[from..from + len]));
                }
                ALERT if len != 2 => return Err(RecordError::BadAlert(len)),
                ALERT => {
                    self.taken = end;
                    return Ok(Inbound::Alert {
                        level: self.buf[from],
                        description: self.buf[from + 1],
                    });
                }
                HANDSHAKE if len == 0 => return Err(RecordError::EmptyHandshake),
                HANDSHAKE => {
                    // Join: the content moves to the end of the message so far, the rest of the
                    // record (its header's room, nonce, type, padding, tag) is squeezed out.
                    self.buf.copy_within(from..from + len, at);
                    self.buf.copy_within(end..self.len, at + len);
                    self.len -= end - (at + len);
                    self.hs = at + len;
                }
                other => return Err(RecordError::ContentType(other)),
            }
        }
    }
}

/// What to make of a record's plaintext: [`Records::receive`]'s callback says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    More,
    /// Stop: the caller has what it wanted (an answer), or will not take more.
    Stop,
}

/// The key schedule behind a [`Records`]: rustls's kernel connection on a real connection.
pub trait KeySchedule {
    /// The next key to send with, after a KeyUpdate of ours.
    fn next_tx(&mut self) -> Result<Key, RecordError>;
    /// The next key to receive with, after the peer's KeyUpdate.
    fn next_rx(&mut self) -> Result<Key, RecordError>;
    /// Takes the body of a NewSessionTicket (for a later connection to resume).
    fn ticket(&mut self, body: &[u8]) -> Result<(), RecordError>;
}

/// Where [`Records::receive`] stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Every whole record is taken: more bytes are needed.
    NeedMore,
    /// The callback said [`Flow::Stop`]; `more`: bytes followed what it took.
    Stopped {
        /// Bytes followed.
        more: bool,
    },
    /// The peer's close_notify: the end of the connection (nothing after it is read).
    Closed,
    /// The connection failed.
    Failed(RecordError),
}

/// A connection's record layer after the handshake (see the module docs).
#[derive(Debug)]
pub struct Records<S> {
    schedule: S,
    tx: Key,
    rx: Key,
    /// The peer asked for a key update: ours is sent before our next record.
    owe_update: bool,
    /// Records without application data received since the last with (see [`MAX_QUIET`]).
    quiet_in_a_row: u32,
    /// The peer's close_notify came.
    closed: bool,
}

impl<S: KeySchedule> Records<S> {
    /// The record layer of keys `tx` and `rx` (of one version), later ones from `schedule`.
    pub fn new(schedule: S, tx: Key, rx: Key) -> Self {
        debug_assert_eq!(tx.version, rx.version, "the keys of one connection");
        Self {
            schedule,
            tx,
            rx,
            owe_update: false,
            quiet_in_a_row: 0,
            closed: false,
        }
    }

    /// The key schedule.
    pub fn schedule(&self) -> &S {
        &self.schedule
    }

    /// The key records are sealed with.
    pub fn tx(&self) -> &Key {
        &self.tx
    }

    /// The key records are opened with.
    pub fn rx(&self) -> &Key {
        &self.rx
    }

    /// A KeyUpdate of ours is owed to the peer.
    pub fn owes_update(&self) -> bool {
        self.owe_update
    }

    /// Whether either key is [`Key::worn`]: the connection is to close after its answer.
    pub fn worn(&self) -> bool {
        self.tx.worn() || self.rx.worn()
    }

    /// One more record without application data; an error past [`MAX_QUIET`] in a row.
    fn quiet(&mut self) -> Result<(), RecordError> {
        self.quiet_in_a_row += 1;
        if self.quiet_in_a_row > MAX_QUIET {
            return Err(RecordError::TooQuiet);
        }
        Ok(())
    }

    /// Opens the records `inbox` holds, hands each one's application data to `on_data`, and
    /// deals with the rest itself. TLS 1.3: a NewSessionTicket goes to the schedule, a
    /// KeyUpdate changes the key records are opened with (and, if the peer asks, makes ours
    /// owed), user_canceled is ignored. TLS 1.2: a HelloRequest is ignored (no renegotiation),
    /// and so is an alert of level warning. close_notify ends the connection; any other alert
    /// or handshake message fails it.
    pub fn receive(
        &mut self,
        inbox: &mut Inbox,
        on_data: &mut dyn FnMut(&[u8]) -> Flow,
    ) -> Received {
        if self.closed {
            return Received::Closed;
        }
        let tls13 = self.rx.version == Version::Tls13;
        loop {
            let what = match inbox.next(&mut self.rx) {
                Ok(what) => what,
                Err(e) => return Received::Failed(e),
            };
            let done = match what {
                Inbound::NeedMore => return Received::NeedMore,
                Inbound::Data(plain) => {
                    self.quiet_in_a_row = 0;
                    if on_data(plain) == Flow::Stop {
                        return Received::Stopped {
                            more: inbox.held() > 0,
                        };
                    }
                    Ok(())
                }
                Inbound::Handshake {
                    typ: NEW_SESSION_TICKET,
                    body,
                    ..
                } if tls13 => self.quiet().and_then(|()| self.schedule.ticket(body)),
                Inbound::Handshake {
                    typ: KEY_UPDATE,
                    body,
                    ends_record,
                } if tls13 => {
                    let request = match (body, ends_record) {
                        ([0], true) => Ok(false),
                        ([1], true) => Ok(true),
                        _ => Err(RecordError::KeyUpdate),
                    };
                    request.and_then(|request| {
                        self.quiet()?;
                        self.rx = self.schedule.next_rx()?;
                        // Several requests before ours is sent are answered by one (RFC 8446
                        // §4.6.3).
                        self.owe_update |= request;
                        Ok(())
                    })
                }
                Inbound::Handshake {
                    typ: HELLO_REQUEST,
                    body: [],
                    ..
                } if !tls13 => self.quiet(),
                Inbound::Handshake { typ, .. } => Err(RecordError::Handshake(typ)),
                Inbound::Alert { level, description } => {
                    match AlertDescription::from(description) {
                        AlertDescription::CloseNotify => {
                            self.closed = true;
                            return Received::Closed;
                        }
                        AlertDescription::UserCanceled => self.quiet(),
                        // TLS 1.2's warnings (e.g. no_renegotiation) end nothing.
                        _ if !tls13 && level == 1 => self.quiet(),
                        other => Err(RecordError::Alert(other)),
                    }
                }
            };
            if let Err(e) = done {
                return Received::Failed(e);
            }
        }
    }

    /// Seals the KeyUpdate owed to the peer, if any, at the start of `out` and moves to the next
    /// key to send with; returns the bytes written (0 if none was owed, or `out` has no room
    /// for it yet: it stays owed).
    pub fn seal_owed(&mut self, out: &mut [u8]) -> Result<usize, RecordError> {
        if !self.owe_update || out.len() < KEY_UPDATE_RECORD {
            return Ok(0);
        }
        self.update_tx(out)
    }

    /// Seals a KeyUpdate (update_not_requested) under the current key and moves to the next.
    fn update_tx(&mut self, out: &mut [u8]) -> Result<usize, RecordError> {
        let n = self.tx.seal(HANDSHAKE, &[KEY_UPDATE, 0, 0, 1, 0], 0, out)?;
        self.tx = self.schedule.next_tx()?;
        self.owe_update = false;
        Ok(n)
    }

    /// Seals `content` (at most 2^14 bytes) as application data at the start of `out`, after
    /// the KeyUpdate owed to the peer if there is one; returns the bytes written. A TLS 1.3 key
    /// about to reach its confidentiality limit is replaced first (by a KeyUpdate of ours), so
    /// no key ever protects more records than its limit; a TLS 1.2 one, which cannot be
    /// replaced, refuses to seal more ([`RecordError::Exhausted`]; the connection closes long
    /// before, see [`Key::worn`]).
    pub fn seal(&mut self, content: &[u8], out: &mut [u8]) -> Result<usize, RecordError> {
        let mut n = 0;
        let at_limit = self.tx.seq.saturating_add(1) >= self.tx.limit;
        match self.tx.version {
            Version::Tls13 if self.owe_update || at_limit => n = self.update_tx(out)?,
            Version::Tls12 if self.tx.seq >= self.tx.limit => {
                return Err(RecordError::Exhausted);
            }
            _ => {}
        }
        Ok(n + self.tx.seal(APPLICATION_DATA, content, 0, &mut out[n..])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key schedule of fixed, distinct keys (the n-th update's key is all n+1), counting
    /// what it was asked for.
    #[derive(Debug)]
    struct Fixed {
        version: Version,
        aead: Aead,
        limit: u64,
        tx_updates: u8,
        rx_updates: u8,
        tickets: Vec<Vec<u8>>,
    }

    /// A key of `version` whose bytes are all `fill`.
    fn key_of(version: Version, aead: Aead, fill: u8, limit: u64) -> Key {
        let bytes = [fill; 32];
        Key::new(
            version,
            aead,
            &bytes[..aead.key_len()],
            &[fill ^ 0x5a; IV],
            0,
            limit,
        )
        .expect("a key of the AEAD's length")
    }

    /// A TLS 1.3 key whose bytes are all `fill`.
    fn key(aead: Aead, fill: u8, limit: u64) -> Key {
        key_of(Version::Tls13, aead, fill, limit)
    }

    impl KeySchedule for Fixed {
        fn next_tx(&mut self) -> Result<Key, RecordError> {
            self.tx_updates = self.tx_updates.wrapping_add(1);
            Ok(key_of(
                self.version,
                self.aead,
                100u8.wrapping_add(self.tx_updates),
                self.limit,
            ))
        }
        fn next_rx(&mut self) -> Result<Key, RecordError> {
            self.rx_updates = self.rx_updates.wrapping_add(1);
            Ok(key_of(
                self.version,
                self.aead,
                200u8.wrapping_add(self.rx_updates),
                self.limit,
            ))
        }
        fn ticket(&mut self, body: &[u8]) -> Result<(), RecordError> {
            if body.first() == Some(&0xff) {
                return Err(RecordError::Schedule("a refused ticket".into()));
            }
            self.tickets.push(body.to_vec());
            Ok(())
        }
    }

    /// The peer's side: its tx is our rx (fill 200 + n), its rx our tx (fill 100 + n).
    struct Peer {
        version: Version,
        aead: Aead,
        tx: Key,
        rx: Key,
        tx_updates: u8,
        rx_updates: u8,
    }

    impl Peer {
        /// A TLS 1.3 peer.
        fn new(aead: Aead) -> Self {
            Self::of(Version::Tls13, aead)
        }

        fn of(version: Version, aead: Aead) -> Self {
            Self {
                version,
                aead,
                tx: key_of(version, aead, 200, u64::MAX),
                rx: key_of(version, aead, 100, u64::MAX),
                tx_updates: 0,
                rx_updates: 0,
            }
        }

        fn seal(&mut self, typ: u8, content: &[u8], padding: usize) -> Vec<u8> {
            let mut out = vec![0; HEADER + EXPLICIT_NONCE + content.len() + 1 + padding + TAG];
            let n = self.tx.seal(typ, content, padding, &mut out).expect("seal");
            out.truncate(n);
            out
        }

        /// A KeyUpdate (`request`: update_requested) under the current key; then the next key.
        fn key_update(&mut self, request: bool) -> Vec<u8> {
            let r = self.seal(HANDSHAKE, &[KEY_UPDATE, 0, 0, 1, u8::from(request)], 0);
            self.tx_updates = self.tx_updates.wrapping_add(1);
            self.tx = key_of(
                self.version,
                self.aead,
                200u8.wrapping_add(self.tx_updates),
                u64::MAX,
            );
            r
        }

        /// Opens every record of `bytes` (ours), following our KeyUpdates; returns what each held.
        fn open_all(&mut self, bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
            let mut inbox = Inbox::new(bytes.len().max(64));
            inbox.read_space()[..bytes.len()].copy_from_slice(bytes);
            inbox.filled(bytes.len());
            let mut got = Vec::new();
            loop {
                match inbox.next(&mut self.rx).expect("our records open") {
                    Inbound::NeedMore => break,
                    Inbound::Data(d) => got.push((APPLICATION_DATA, d.to_vec())),
                    Inbound::Handshake { typ, body, .. } => {
                        got.push((HANDSHAKE, [&[typ][..], body].concat()));
                        if typ == KEY_UPDATE {
                            self.rx_updates = self.rx_updates.wrapping_add(1);
                            self.rx = key_of(
                                self.version,
                                self.aead,
                                100u8.wrapping_add(self.rx_updates),
                                u64::MAX,
                            );
                        }
                    }
                    Inbound::Alert { description, .. } => got.push((ALERT, vec![description])),
                }
            }
            assert_eq!(inbox.held(), 0, "only whole records");
            got
        }
    }

    /// A TLS 1.3 record layer.
    fn records(aead: Aead, limit: u64) -> Records<Fixed> {
        records_of(Version::Tls13, aead, limit)
    }

    fn records_of(version: Version, aead: Aead, limit: u64) -> Records<Fixed> {
        let schedule = Fixed {
            version,
            aead,
            limit,
            tx_updates: 0,
            rx_updates: 0,
            tickets: Vec::new(),
        };
        Records::new(
            schedule,
            key_of(version, aead, 100, limit),
            key_of(version, aead, 200, limit),
        )
    }

    /// Feeds `stream` to `r` in reads of at most `step` bytes (and no more than the inbox has
    /// room for, as a socket read); returns the data (one entry per record) and how it ended.
    fn receive_in_reads(
        r: &mut Records<Fixed>,
        inbox: &mut Inbox,
        stream: &[u8],
        step: usize,
    ) -> (Vec<Vec<u8>>, Received) {
        let mut data = Vec::new();
        let mut last = Received::NeedMore;
        let mut pos = 0;
        while pos < stream.len() {
            let space = inbox.read_space();
            let n = step.min(space.len()).min(stream.len() - pos);
            assert!(n > 0, "the inbox is full and waits for more");
            space[..n].copy_from_slice(&stream[pos..pos + n]);
            inbox.filled(n);
            pos += n;
            last = r.receive(inbox, &mut |d| {
                data.push(d.to_vec());
                Flow::More
            });
            if last != Received::NeedMore {
                break;
            }
        }
        (data, last)
    }

    #[test]
    fn every_suite_round_trips_whole_split_and_several_records_per_read() {
        for aead in Aead::ALL {
            let mut peer = Peer::new(aead);
            let contents: Vec<Vec<u8>> = vec![
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
                vec![7; 1],
                (0..MAX_CONTENT).map(|i| (i % 251) as u8).collect(),
                vec![0; 300], // content of zeros: only trailing zeros *after* the type are padding
                b"last".to_vec(),
            ];
            let mut stream = Vec::new();
            for (i, c) in contents.iter().enumerate() {
                // Padding of every kind: none, some, enough to reach the most allowed.
                let padding = match i {
                    1 => 1000,
                    2 => 0,
                    3 => MAX_INNER - c.len() - 1,
                    _ => i * 7,
                };
                let rec = peer.seal(APPLICATION_DATA, c, padding);
                assert!(rec.len() <= HEADER + MAX_CIPHERTEXT);
                stream.extend_from_slice(&rec);
            }
            // The largest record is exactly at the maximum of content.
            assert_eq!(contents[2].len(), MAX_CONTENT);
            for step in [1, 5, 6, 17, 1000, 4096, crate::tls::INCOMING_TLS_BYTES] {
                let mut r = records(aead, u64::MAX);
                let mut inbox = Inbox::new(crate::tls::INCOMING_TLS_BYTES);
                let (data, end) = receive_in_reads(&mut r, &mut inbox, &stream, step);
                assert_eq!(end, Received::NeedMore, "{aead:?} step {step}");
                assert_eq!(
                    data, contents,
                    "{aead:?} step {step}: padding stripped, data whole"
                );
                assert_eq!(r.rx().seq(), contents.len() as u64);
                assert_eq!(inbox.held(), 0);
            }
            // Ours: sealed records open on the peer's side, in sequence.
            let mut r = records(aead, u64::MAX);
            let mut out = vec![0; crate::tls::OUTGOING_TLS_BYTES];
            let mut sent = Vec::new();
            for c in &contents {
                let n = r.seal(c, &mut out).expect("seal");
                assert_eq!(n, HEADER + c.len() + 1 + TAG, "no padding sent");
                sent.extend_from_slice(&out[..n]);
            }
            let got = peer.open_all(&sent);
            let want: Vec<(u8, Vec<u8>)> = contents
                .iter()
                .map(|c| (APPLICATION_DATA, c.clone()))
                .collect();
            assert_eq!(got, want, "{aead:?}");
        }
    }

    #[test]
    fn tampered_oversized_and_malformed_records_are_refused() {
        let aead = Aead::Aes128Gcm;
        let good = Peer::new(aead).seal(APPLICATION_DATA, b"hello", 3);
        let refuse = |bytes: &[u8]| -> RecordError {
            let mut r = records(aead, u64::MAX);
            let mut inbox = Inbox::new(crate::tls::INCOMING_TLS_BYTES);
            let (data, end) = receive_in_reads(&mut r, &mut inbox, bytes, bytes.len().max(1));
            assert!(data.is_empty(), "{data:?}");
            match end {
                Received::Failed(e) => e,
                other => panic!("{other:?} for {bytes:?}"),
            }
        };
        // Every byte of the record matters: the header is the additional data.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            match i {
                0 => assert_eq!(
                    refuse(&bad),
                    RecordError::Header {
                        typ: 22,
                        major: 3,
                        minor: 3
                    }
                ),
                1 => assert_eq!(
                    refuse(&bad),
                    RecordError::Header {
                        typ: 23,
                        major: 2,
                        minor: 3
                    }
                ),
                // The length: below.
                3 | 4 => {}
                // The minor version is ignored but authenticated, like the rest.
                _ => assert_eq!(refuse(&bad), RecordError::Open, "byte {i}"),
            }
        }
        // A length one byte short or long (with a byte more sent): it fails to open.
        let mut short = good.clone();
        short[4] -= 1;
        assert_eq!(refuse(&short), RecordError::Open);
        let mut long = good.clone();
        long[4] += 1;
        long.push(0);
        assert_eq!(refuse(&long), RecordError::Open);
        // Over 2^14 + 256 bytes of ciphertext: refused from the header, before it arrives.
        let n = (MAX_CIPHERTEXT + 1) as u16;
        let [hi, lo] = n.to_be_bytes();
        assert_eq!(
            refuse(&[23, 3, 3, hi, lo]),
            RecordError::Length(MAX_CIPHERTEXT + 1)
        );
        assert_eq!(refuse(&[23, 3, 3, 0, 16]), RecordError::Length(16));
        assert!(matches!(
            refuse(&[22, 3, 3, 0, 40]),
            RecordError::Header { typ: 22, .. }
        ));
        assert!(matches!(
            refuse(b"HTTP/1.1 200 OK\r\n"),
            RecordError::Header { typ: b'H', .. }
        ));
        assert_eq!(
            refuse(&[21, 3, 3, 0, 2, 2, 40]),
            RecordError::PlainAlert(AlertDescription::HandshakeFailure)
        );
        assert_eq!(refuse(&[21, 3, 3, 0, 2, 2, 40]).kind(), TlsErrorKind::Alert);
        // An inner plaintext of 2^14 + 2 bytes opens but is refused. The sealer will not make
        // one, so it is sealed here by hand.
        let peer = Peer::new(aead);
        let inner = MAX_INNER + 1;
        let mut rec = vec![0; HEADER + inner + TAG];
        let [hi, lo] = ((inner + TAG) as u16).to_be_bytes();
        rec[..HEADER].copy_from_slice(&[23, 3, 3, hi, lo]);
        rec[HEADER + inner - 1] = APPLICATION_DATA;
        let (h, body) = rec.split_at_mut(HEADER);
        let (plain, tag_out) = body.split_at_mut(inner);
        let nonce = Nonce::assume_unique_for_key(peer.tx.xor_nonce(peer.tx.seq));
        let tag = peer
            .tx
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(&h[..]), plain)
            .expect("ring seals");
        tag_out.copy_from_slice(tag.as_ref());
        assert_eq!(refuse(&rec), RecordError::Overflow(inner));
        // Only padding: no content type.
        let mut rec = Peer::new(aead).seal(APPLICATION_DATA, b"", 0);
        // Turn the type byte into padding by sealing an all-zero inner plaintext by hand.
        let peer2 = Peer::new(aead);
        let (h, body) = rec.split_at_mut(HEADER);
        let (plain, tag_out) = body.split_at_mut(1);
        plain[0] = 0;
        let nonce = Nonce::assume_unique_for_key(peer2.tx.xor_nonce(peer2.tx.seq));
        let tag = peer2
            .tx
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(&h[..]), plain)
            .expect("ring seals");
        tag_out.copy_from_slice(tag.as_ref());
        assert_eq!(refuse(&rec), RecordError::NoType);
        // Inner types a client never takes after the handshake.
        for t in [20u8, 24, 99] {
            let rec = Peer::new(aead).seal(t, b"x", 0);
            assert_eq!(refuse(&rec), RecordError::ContentType(t));
        }
        // A record under the wrong key (out of step): refused, never taken as data.
        let mut other = Peer::new(Aead::Aes128Gcm);
        other.tx = key(aead, 7, u64::MAX);
        assert_eq!(
            refuse(&other.seal(APPLICATION_DATA, b"x", 0)),
            RecordError::Open
        );
        // A replayed record (the sequence number moved on).
        let mut peer = Peer::new(aead);
        let once = peer.seal(APPLICATION_DATA, b"once", 0);
        let mut r = records(aead, u64::MAX);
        let mut inbox = Inbox::new(crate::tls::INCOMING_TLS_BYTES);
        let twice = [once.clone(), once].concat();
        let (data, end) = receive_in_reads(&mut r, &mut inbox, &twice, twice.len());
        assert_eq!(data, [b"once".to_vec()]);
        assert_eq!(end, Received::Failed(RecordError::Open));
    }

    #[test]
    fn the_sealer_refuses_too_much_and_too_little_room() {
        let mut k = key(Aead::Chacha20Poly1305, 1, u64::MAX);
        let mut out = vec![0; MAX_SEALED];
        assert_eq!(
            k.seal(APPLICATION_DATA, &[0; MAX_CONTENT + 1], 0, &mut out),
            Err(RecordError::SealTooLong(MAX_INNER + 1))
        );
        assert_eq!(
            k.seal(APPLICATION_DATA, &[0; 10], 0, &mut out[..HEADER + 10 + TAG]),
            Err(RecordError::NoRoom(HEADER + 11 + TAG))
        );
        assert_eq!(k.seq(), 0, "nothing sealed, no sequence number used");
        assert_eq!(
            k.seal(APPLICATION_DATA, &[0; MAX_CONTENT], 0, &mut out),
            Ok(HEADER + MAX_INNER + TAG)
        );
        assert_eq!(k.seq(), 1);
        // TLS 1.2: no padding, no type byte; AES-GCM's explicit nonce makes the largest record.
        let mut k = key_of(Version::Tls12, Aead::Aes256Gcm, 1, u64::MAX);
        assert_eq!(
            k.seal(APPLICATION_DATA, &[0; MAX_CONTENT + 1], 0, &mut out),
            Err(RecordError::SealTooLong(MAX_CONTENT + 1))
        );
        assert_eq!(
            k.seal(APPLICATION_DATA, b"x", 1, &mut out),
            Err(RecordError::Padding)
        );
        assert_eq!(
            k.seal(APPLICATION_DATA, &[0; MAX_CONTENT], 0, &mut out),
            Ok(MAX_SEALED)
        );
        let mut k = key_of(Version::Tls12, Aead::Chacha20Poly1305, 1, u64::MAX);
        assert_eq!(
            k.seal(APPLICATION_DATA, &[0; MAX_CONTENT], 0, &mut out),
            Ok(HEADER + MAX_CONTENT + TAG)
        );
        let v = Version::Tls13;
        assert!(Key::new(v, Aead::Aes128Gcm, &[0; 32], &[0; IV], 0, 1).is_err());
        assert!(Key::new(v, Aead::Aes256Gcm, &[0; 32], &[0; 8], 0, 1).is_err());
    }

    /// A NewSessionTicket message (type 4) with a body of `n` bytes, the first `first`.
    fn ticket(n: usize, first: u8) -> Vec<u8> {
        let mut m = vec![NEW_SESSION_TICKET, 0, (n >> 8) as u8, n as u8];
        m.extend((0..n).map(|i| if i == 0 { first } else { i as u8 }));
        m
    }

    #[test]
    fn tickets_are_joined_across_records_and_split_within_one() {
        let aead = Aead::Aes256Gcm;
        let (t1, t2, t3) = (ticket(300, 1), ticket(50, 2), ticket(9000, 3));
        let mut peer = Peer::new(aead);
        let mut stream = Vec::new();
        // Two messages in one record.
        stream.extend(peer.seal(HANDSHAKE, &[t1.clone(), t2.clone()].concat(), 5));
        // One message over three records, cut inside its header and its body.
        stream.extend(peer.seal(HANDSHAKE, &t3[..2], 0));
        stream.extend(peer.seal(HANDSHAKE, &t3[2..5000], 0));
        stream.extend(peer.seal(HANDSHAKE, &t3[5000..], 100));
        stream.extend(peer.seal(APPLICATION_DATA, b"data after", 0));
        for step in [1, 100, 7000, stream.len()] {
            let mut r = records(aead, u64::MAX);
            let mut inbox = Inbox::new(crate::tls::INCOMING_TLS_BYTES);
            let (data, end) = receive_in_reads(&mut r, &mut inbox, &stream, step);
            assert_eq!(end, Received::NeedMore);
            assert_eq!(data, [b"data after".to_vec()], "step {step}");
            let want: Vec<Vec<u8>> = [&t1, &t2, &t3].iter().map(|t| t[4..].to_vec()).collect();
            assert_eq!(r.schedule().tickets, want, "step {step}");
        }
    }

    #[test]
    fn handshake_messages_that_cannot_fit_or_interleave_are_refused() {
        let aead = Aead::Aes128Gcm;
        let fail = |stream: &[u8], size: usize| {
            let mut r = records(aead, u64::MAX);
            let mut inbox = Inbox::new(size);
            match receive_in_reads(&mut r, &mut inbox, stream, 64) {
                (_, Received::Failed(e)) => e,
                other => panic!("{other:?}"),
            }
        };
        // A message longer than the buffer can ever join: refused from its header, at once.
        let mut peer = Peer::new(aead);
        let big = ticket(20_000, 1);
        let s = peer.seal(HANDSHAKE, &big[..100], 0);
        let size = crate::tls::INCOMING_TLS_BYTES;
        assert_eq!(fail(&s, size), RecordError::TooLong(size));
        // One that would fit, but the records bringing it leave no room.
        let mut peer = Peer::new(aead);
        let t = ticket(2000, 1);
        let mut s = peer.seal(HANDSHAKE, &t[..1000], 0);
        s.extend(peer.seal(HANDSHAKE, &t[1000..], 0));
        assert_eq!(fail(&s, 1500), RecordError::TooLong(1500));
        // Application data or an alert inside a handshake message.
        let mut peer = Peer::new(aead);
        let mut s = peer.seal(HANDSHAKE, &t[..10], 0);
        s.extend(peer.seal(APPLICATION_DATA, b"x", 0));
        assert_eq!(fail(&s, size), RecordError::Interleaved);
        let mut peer = Peer::new(aead);
        let mut s = peer.seal(HANDSHAKE, &t[..10], 0);
        s.extend(peer.seal(ALERT, &[1, 0], 0));
        assert_eq!(fail(&s, size), RecordError::Interleaved);
        // An empty handshake record, a message a client never gets, a refused ticket.
        assert_eq!(
            fail(&Peer::new(aead).seal(HANDSHAKE, b"", 0), size),
            RecordError::EmptyHandshake
        );
        assert_eq!(
            fail(&Peer::new(aead).seal(HANDSHAKE, &[0, 0, 0, 0], 0), size),
            RecordError::Handshake(0)
        );
        assert!(matches!(
            fail(&Peer::new(aead).seal(HANDSHAKE, &ticket(5, 0xff), 0), size),
            RecordError::Schedule(_)
        ));
        // Malformed alerts.
        assert_eq!(
            fail(&Peer::new(aead).seal(ALERT, &[2], 0), size),
            RecordError::BadAlert(1)
        );
    }

    #[test]
    fn key_updates_change_the_keys_and_requests_are_answered_once() {
        for aead in Aead::ALL {
            let mut peer = Peer::new(aead);
            let mut stream = Vec::new();
            stream.extend(peer.seal(APPLICATION_DATA, b"one", 0));
            stream.extend(peer.key_update(false));
            stream.extend(peer.seal(APPLICATION_DATA, b"two", 0));
            // Two requests before ours is sent: one update of ours answers both.
            stream.extend(peer.key_update(true));
            stream.extend(peer.key_update(true));
            stream.extend(peer.seal(APPLICATION_DATA, b"three", 0));
            let mut r = records(aead, u64::MAX);
            let mut inbox = Inbox::new(crate::tls::INCOMING_TLS_BYTES);
            let (data, end) = receive_in_reads(&mut r, &mut inbox, &stream, 13);
            assert_eq!(end, Received::NeedMore);
            assert_eq!(data, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
            assert_eq!(r.schedule().rx_updates, 3);
            assert!(r.owes_update());
            // Ours goes first, under the old key; the data after it under the new one.
            let mut out = vec![0; crate::tls::OUTGOING_TLS_BYTES];
            let n = r.seal(b"request", &mut out).expect("seal");
            assert_eq!(n, KEY_UPDATE_RECORD + HEADER + 7 + 1 + TAG);
            assert!(!r.owes_update());
            assert_eq!(r.schedule().tx_updates, 1);
            let n2 = r.seal(b"next", &mut out[n..]).expect("seal");
            assert_eq!(r.schedule().tx_updates, 1, "no update owed any more");
            let got = peer.open_all(&out[..n + n2]);
            assert_eq!(
                got,
                [
                    (HANDSHAKE, vec![KEY_UPDATE, 0]),
                    (APPLICATION_DATA, b"request".to_vec()),
                    (APPLICATION_DATA, b"next".to_vec()),
                ],
                "{aead:?}"
            );
            // An owed update with no room waits; with room it is sealed alone.
            let mut peer = Peer::new(aead);
            let mut r = records(aead, u64::MAX);
            let mut inbox = Inbox::new(crate::tls::INCOMING_TLS_BYTES);
            let ku = peer.key_update(true);
            receive_in_reads(&mut r, &mut inbox, &ku, ku.len());
            assert_eq!(r.seal_owed(&mut out[..KEY_UPDATE_RECORD - 1]), Ok(0));
            assert!(r.owes_update());
            assert_eq!(r.seal_owed(&mut out), Ok(KEY_UPDATE_RECORD));
            assert_eq!(r.seal_owed(&mut out), Ok(0), "owed once");
            assert_eq!(
                peer.open_all(&out[..KEY_UPDATE_RECORD]),
                [(HANDSHAKE, vec![KEY_UPDATE, 0])]
            );
        }
    }

    #[test]
    fn bad_key_updates_and_endless_ones_are_refused() {
        let aead = Aead::Chacha20Poly1305;
        let fail = |stream: &[u8]| {
            let mut r = records(aead, u64::MAX);
            let mut inbox = Inbox::new(crate::tls::INCOMING_TLS_BYTES);
            match receive_in_reads(&mut r, &mut inbox, stream, stream.len()) {
                (_, Received::Failed(e)) => e,
                other => panic!("{other:?}"),
            }
        };
        for body in [
            &[KEY_UPDATE, 0, 0, 1, 2][..],
            &[KEY_UPDATE, 0, 0, 2, 0, 0],
            &[KEY_UPDATE, 0, 0, 0],
        ] {
            assert_eq!(
                fail(&Peer::new(aead).seal(HANDSHAKE, body, 0)),
                RecordError::KeyUpdate
            );
        }
        // A KeyUpdate followed by more of a message in its record (the next key would not
        // protect it).
        let mut m = vec![KEY_UPDATE, 0, 0, 1, 0];
        m.extend(ticket(10, 1));
        assert_eq!(
            fail(&Peer::new(aead).seal(HANDSHAKE, &m, 0)),
            RecordError::KeyUpdate
        );
        // 32 updates in a row are taken, the 33rd is not; data between them resets the count.
        let mut peer = Peer::new(aead);
        let mut ok = Vec::new();
        for i in 0..3 * MAX_QUIET {
            ok.extend(peer.key_update(false));
            if i % MAX_QUIET == MAX_QUIET - 1 {
                ok.extend(peer.seal(APPLICATION_DATA, b"x", 0));
            }
        }
        let mut r = records(aead, u64::MAX);
        let mut inbox = Inbox::new(crate::tls::INCOMING_TLS_BYTES);
        let (data, end) = receive_in_reads(&mut r, &mut inbox, &ok, 1000);
        assert_eq!((data.len(), end), (3, Received::NeedMore));
        let mut peer = Peer::new(aead);
        let mut s = Vec::new();
        for _ in 0..=MAX_QUIET {
            s.extend(peer.key_update(false));
        }
        assert_eq!(fail(&s), RecordError::TooQuiet);
    }

    #[test]
    fn alerts_end_or_fail_the_connection() {
        let aead = Aead::Aes256Gcm;
        let run = |stream: &[u8]| {
            let mut r = records(aead, u64::MAX);
            let mut inbox = Inbox::new(crate::tls::INCOMING_TLS_BYTES);
            receive_in_reads(&mut r, &mut inbox, stream, stream.len())
        };
        let mut peer = Peer::new(aead);
        let mut s = peer.seal(APPLICATION_DATA, b"body", 0);
        s.extend(peer.seal(ALERT, &[1, 90], 0)); // user_canceled: ignored
        s.extend(peer.seal(ALERT, &[1, 0], 0)); // close_notify: the end
        s.extend(peer.seal(APPLICATION_DATA, b"after the end", 0));
        assert_eq!(run(&s), (vec![b"body".to_vec()], Received::Closed));
        let s = Peer::new(aead).seal(ALERT, &[2, 20], 0);
        let (_, end) = run(&s);
        let Received::Failed(e) = end else {
            panic!("{end:?}")
        };
        assert_eq!(e, RecordError::Alert(AlertDescription::BadRecordMac));
        assert_eq!(e.kind(), TlsErrorKind::Alert);
        assert_eq!(e.to_string(), "received fatal alert: BadRecordMac");
    }

    #[test]
    fn a_stop_leaves_the_rest_for_later() {
        let aead = Aead::Aes128Gcm;
        let mut peer = Peer::new(aead);
        let mut s = peer.seal(APPLICATION_DATA, b"first", 0);
        s.extend(peer.seal(APPLICATION_DATA, b"second", 0));
        let mut r = records(aead, u64::MAX);
        let mut inbox = Inbox::new(crate::tls::INCOMING_TLS_BYTES);
        inbox.read_space()[..s.len()].copy_from_slice(&s);
        inbox.filled(s.len());
        let mut seen = Vec::new();
        let end = r.receive(&mut inbox, &mut |d| {
            seen.push(d.to_vec());
            Flow::Stop
        });
        assert_eq!(end, Received::Stopped { more: true });
        let end = r.receive(&mut inbox, &mut |d| {
            seen.push(d.to_vec());
            Flow::Stop
        });
        assert_eq!(end, Received::Stopped { more: false });
        assert_eq!(seen, [b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(inbox.read_space().len(), inbox.capacity());
    }

    #[test]
    fn keys_wear_out_before_their_limit_and_the_sender_rekeys_at_it() {
        // A limit of 64 records: worn (close after the answer) from 60 = 64 - 64/16.
        let aead = Aead::Aes128Gcm;
        let mut r = records(aead, 64);
        let mut out = vec![0; 4096];
        let mut sent = Vec::new();
        for i in 0..200u64 {
            assert_eq!(r.worn(), r.tx().seq() >= 60, "record {i}");
            let n = r.seal(b"x", &mut out).expect("seal");
            sent.extend_from_slice(&out[..n]);
            assert!(
                r.tx().seq() <= 64,
                "a key protected {} records",
                r.tx().seq()
            );
        }
        // Sealing past the limit moved to new keys by KeyUpdates of ours (the 64th record of
        // a key is its KeyUpdate): 200 data records over keys of 63 each.
        assert_eq!(r.schedule().tx_updates, 3);
        let mut peer = Peer::new(aead);
        let got = peer.open_all(&sent);
        assert_eq!(
            got.iter().filter(|(t, _)| *t == APPLICATION_DATA).count(),
            200
        );
        assert_eq!(got.iter().filter(|(t, _)| *t == HANDSHAKE).count(), 3);
        // The receiving side wears too.
        let mut r = records(aead, 64);
        let mut peer = Peer::new(aead);
        let mut s = Vec::new();
        for _ in 0..60 {
            s.extend(peer.seal(APPLICATION_DATA, b"y", 0));
        }
        let mut inbox = Inbox::new(crate::tls::INCOMING_TLS_BYTES);
        let (_, end) = receive_in_reads(&mut r, &mut inbox, &s[..s.len() - 1], 4096);
        assert_eq!(end, Received::NeedMore);
        assert!(!r.worn(), "59 records opened");
        let (_, _) = receive_in_reads(&mut r, &mut inbox, &s[s.len() - 1..], 1);
        assert!(r.worn(), "60 records opened");
        // ChaCha20-Poly1305 has no practical limit.
        assert!(!key(Aead::Chacha20Poly1305, 0, u64::MAX).worn());
    }

    #[test]
    fn nonces_follow_rfc_8446() {
        // iv XOR the sequence number, big-endian in the last 8 bytes.
        let iv: [u8; IV] = [
            0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab,
        ];
        let mut k = Key::new(
            Version::Tls13,
            Aead::Aes128Gcm,
            &[0; 16],
            &iv,
            0x0102_0304_0506_0708,
            10,
        )
        .expect("key");
        assert_eq!(
            k.xor_nonce(k.seq),
            [
                0xa0, 0xa1, 0xa2, 0xa3, 0xa5, 0xa7, 0xa5, 0xa3, 0xad, 0xaf, 0xad, 0xa3
            ]
        );
        k.seq = u64::MAX;
        assert_eq!(k.next_seq(), Err(RecordError::Exhausted));
        let mut out = [0; 64];
        assert_eq!(
            k.seal(APPLICATION_DATA, b"x", 0, &mut out),
            Err(RecordError::Exhausted)
        );
    }

    #[test]
    fn tls12_round_trips_split_reads_and_the_largest_record_in_every_aead() {
        let v = Version::Tls12;
        for aead in Aead::ALL {
            let mut peer = Peer::of(v, aead);
            let contents: Vec<Vec<u8>> = vec![
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
                vec![7; 1],
                (0..MAX_CONTENT).map(|i| (i % 251) as u8).collect(),
                vec![0; 300], // no padding in TLS 1.2: zeros are content
                b"last".to_vec(),
            ];
            let mut stream = Vec::new();
            for (seq, c) in contents.iter().enumerate() {
                let rec = peer.seal(APPLICATION_DATA, c, 0);
                let explicit = aead.explicit_nonce();
                assert_eq!(rec.len(), HEADER + explicit + c.len() + TAG, "{aead:?}");
                assert_eq!(rec[..3], [APPLICATION_DATA, 3, 3], "the real type outside");
                if explicit > 0 {
                    // AES-GCM's explicit nonce: the IV's last 8 bytes XOR the sequence number.
                    let want = peer.tx.xor_nonce(seq as u64);
                    assert_eq!(rec[HEADER..HEADER + 8], want[4..], "record {seq}");
                }
                stream.extend_from_slice(&rec);
            }
            for step in [1, 5, 13, 1000, crate::tls::INCOMING_TLS_BYTES] {
                let mut r = records_of(v, aead, u64::MAX);
                let mut inbox = Inbox::new(crate::tls::INCOMING_TLS_BYTES);
                let (data, end) = receive_in_reads(&mut r, &mut inbox, &stream, step);
                assert_eq!(end, Received::NeedMore, "{aead:?} step {step}");
                assert_eq!(data, contents, "{aead:?} step {step}");
            }
            let mut r = records_of(v, aead, u64::MAX);
            let mut out = vec![0; crate::tls::OUTGOING_TLS_BYTES];
            let mut sent = Vec::new();
            for c in &contents {
                let n = r.seal(c, &mut out).expect("seal");
                sent.extend_from_slice(&out[..n]);
            }
            let want: Vec<(u8, Vec<u8>)> = contents
                .iter()
                .map(|c| (APPLICATION_DATA, c.clone()))
                .collect();
            assert_eq!(peer.open_all(&sent), want, "{aead:?}");
        }
    }

    /// `content` as a TLS 1.2 record of type `typ` under `k`, built here without the sealer's
    /// checks (to make records it refuses to).
    fn seal_tls12_by_hand(k: &mut Key, typ: u8, content: &[u8]) -> Vec<u8> {
        let prefix = k.aead.explicit_nonce();
        let len = prefix + content.len() + TAG;
        let mut rec = vec![typ, 3, 3, (len >> 8) as u8, len as u8];
        let nonce = k.xor_nonce(k.seq);
        rec.extend_from_slice(&nonce[IV - prefix..]);
        let mut body = content.to_vec();
        let aad = Key::tls12_aad(k.seq, typ, [3, 3], content.len());
        let tag = k
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .expect("ring seals");
        k.seq += 1;
        rec.extend_from_slice(&body);
        rec.extend_from_slice(tag.as_ref());
        rec
    }

    #[test]
    fn tls12_refuses_tampering_and_what_a_client_never_gets_after_the_handshake() {
        let v = Version::Tls12;
        let run = |aead: Aead, bytes: &[u8]| {
            let mut r = records_of(v, aead, u64::MAX);
            let mut inbox = Inbox::new(crate::tls::INCOMING_TLS_BYTES);
            receive_in_reads(&mut r, &mut inbox, bytes, bytes.len().max(1))
        };
        let fail = |aead: Aead, bytes: &[u8]| match run(aead, bytes) {
            (data, Received::Failed(e)) if data.is_empty() => e,
            other => panic!("{other:?} for {bytes:?}"),
        };
        for aead in [Aead::Aes128Gcm, Aead::Chacha20Poly1305] {
            let good = Peer::of(v, aead).seal(APPLICATION_DATA, b"hello", 0);
            for i in 0..good.len() {
                let mut bad = good.clone();
                bad[i] ^= 0x01;
                match i {
                    // The type (now handshake, a valid outer type) and the version are in the
                    // additional data.
                    1 => assert_eq!(
                        fail(aead, &bad),
                        RecordError::Header {
                            typ: 23,
                            major: 2,
                            minor: 3
                        }
                    ),
                    3 | 4 => {}
                    // The explicit nonce too: a wrong nonce does not open.
                    _ => assert_eq!(fail(aead, &bad), RecordError::Open, "{aead:?} byte {i}"),
                }
            }
            // A replay: the sequence number in the additional data moved on.
            let mut peer = Peer::of(v, aead);
            let once = peer.seal(APPLICATION_DATA, b"once", 0);
            let (data, end) = run(aead, &[once.clone(), once].concat());
            assert_eq!(data, [b"once".to_vec()]);
            assert_eq!(end, Received::Failed(RecordError::Open), "{aead:?}");
            // Lengths: under the AEAD's overhead, over 2^14 + 2048; a plaintext over 2^14.
            let short = aead.explicit_nonce() + TAG - 1;
            assert_eq!(
                fail(aead, &[23, 3, 3, 0, short as u8]),
                RecordError::Length(short)
            );
            let [hi, lo] = ((MAX_CIPHERTEXT_TLS12 + 1) as u16).to_be_bytes();
            assert_eq!(
                fail(aead, &[23, 3, 3, hi, lo]),
                RecordError::Length(MAX_CIPHERTEXT_TLS12 + 1)
            );
            let mut peer = Peer::of(v, aead);
            let over = seal_tls12_by_hand(&mut peer.tx, APPLICATION_DATA, &[1; MAX_CONTENT + 1]);
            assert_eq!(fail(aead, &over), RecordError::Overflow(MAX_CONTENT + 1));
        }
        let aead = Aead::Aes256Gcm;
        // change_cipher_spec after the handshake; messages of TLS 1.3 only.
        let mut peer = Peer::of(v, aead);
        let ccs = seal_tls12_by_hand(&mut peer.tx, CHANGE_CIPHER_SPEC, &[1]);
        assert!(matches!(
            fail(aead, &ccs),
            RecordError::Header { typ: 20, .. }
        ));
        let ku = Peer::of(v, aead).seal(HANDSHAKE, &[KEY_UPDATE, 0, 0, 1, 0], 0);
        assert_eq!(fail(aead, &ku), RecordError::Handshake(KEY_UPDATE));
        let nst = Peer::of(v, aead).seal(HANDSHAKE, &ticket(20, 1), 0);
        assert_eq!(fail(aead, &nst), RecordError::Handshake(NEW_SESSION_TICKET));
        // A HelloRequest and warnings are ignored; close_notify ends; a fatal alert fails.
        let mut peer = Peer::of(v, aead);
        let mut s = peer.seal(HANDSHAKE, &[HELLO_REQUEST, 0, 0, 0], 0);
        s.extend(peer.seal(ALERT, &[1, 100], 0)); // no_renegotiation, a warning
        s.extend(peer.seal(APPLICATION_DATA, b"body", 0));
        s.extend(peer.seal(ALERT, &[1, 0], 0));
        s.extend(peer.seal(APPLICATION_DATA, b"after the end", 0));
        assert_eq!(run(aead, &s), (vec![b"body".to_vec()], Received::Closed));
        let fatal = Peer::of(v, aead).seal(ALERT, &[2, 40], 0);
        assert_eq!(
            fail(aead, &fatal),
            RecordError::Alert(AlertDescription::HandshakeFailure)
        );
        // Endless HelloRequests.
        let mut peer = Peer::of(v, aead);
        let mut s = Vec::new();
        for _ in 0..=MAX_QUIET {
            s.extend(peer.seal(HANDSHAKE, &[HELLO_REQUEST, 0, 0, 0], 0));
        }
        assert_eq!(fail(aead, &s), RecordError::TooQuiet);
    }

    #[test]
    fn tls12_keys_are_never_updated_and_refuse_to_seal_past_their_limit() {
        let mut r = records_of(Version::Tls12, Aead::Aes128Gcm, 64);
        let mut out = vec![0; 4096];
        for i in 0..64u64 {
            assert_eq!(r.worn(), i >= 60, "record {i}");
            r.seal(b"x", &mut out).expect("within the limit");
        }
        assert_eq!(r.seal(b"x", &mut out), Err(RecordError::Exhausted));
        assert_eq!(r.tx().seq(), 64);
        assert_eq!(r.schedule().tx_updates, 0, "no KeyUpdate in TLS 1.2");
    }

    /// A rustls client (qload's configuration) and server with `suite` only, their handshake
    /// done in memory (TLS 1.3: the server's NewSessionTickets taken by the client).
    fn rustls_pair(
        suite: rustls::SupportedCipherSuite,
    ) -> (rustls::Connection, rustls::Connection) {
        use std::sync::Arc;
        let cert =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a cert");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()),
        );
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = vec![suite];
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[suite.version()])
            .expect("the suite's version")
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .expect("the cert and its key");
        // qload's own configuration (secret extraction on), certificate checks off.
        let setup =
            crate::tls::TlsSetup::new("localhost", crate::tls::Verify::Insecure).expect("a setup");
        assert!(setup.config.enable_secret_extraction);
        let mut client = rustls::Connection::Client(
            rustls::ClientConnection::new(
                Arc::clone(&setup.config),
                "localhost".try_into().expect("a name"),
            )
            .expect("a client"),
        );
        let mut server = rustls::Connection::Server(
            rustls::ServerConnection::new(Arc::new(server)).expect("a server"),
        );
        for _ in 0..10 {
            shuttle(&mut client, &mut server);
            shuttle(&mut server, &mut client);
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
        assert_eq!(client.negotiated_cipher_suite(), Some(suite));
        (client, server)
    }

    /// Moves every TLS byte `from` has to send into `to`.
    fn shuttle(from: &mut rustls::Connection, to: &mut rustls::Connection) {
        let mut bytes = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut bytes).expect("write to a Vec");
        }
        deliver(to, &bytes);
    }

    fn deliver(to: &mut rustls::Connection, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            to.read_tls(&mut bytes).expect("read from a slice");
            to.process_new_packets().expect("rustls takes the records");
        }
    }

    #[test]
    fn rustls_opens_what_we_seal_and_we_open_what_it_seals_in_every_suite() {
        use rustls::crypto::ring::cipher_suite as cs;
        use std::io::{Read as _, Write as _};
        let (v12, v13) = (Version::Tls12, Version::Tls13);
        // The test certificate is ECDSA: the ECDHE_ECDSA suites of TLS 1.2 (the RSA ones
        // differ only in the handshake's signature).
        let suites = [
            (cs::TLS13_AES_128_GCM_SHA256, v13, Aead::Aes128Gcm),
            (cs::TLS13_AES_256_GCM_SHA384, v13, Aead::Aes256Gcm),
            (
                cs::TLS13_CHACHA20_POLY1305_SHA256,
                v13,
                Aead::Chacha20Poly1305,
            ),
            (
                cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                v12,
                Aead::Aes128Gcm,
            ),
            (
                cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                v12,
                Aead::Aes256Gcm,
            ),
            (
                cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                v12,
                Aead::Chacha20Poly1305,
            ),
        ];
        for (suite, version, aead) in suites {
            assert_eq!(Aead::of_suite(suite.suite()), Some((version, aead)));
            let (client, mut server) = rustls_pair(suite);
            let secrets = client
                .dangerous_extract_secrets()
                .expect("extraction is on");
            if version == v13 {
                // rustls opened the server's tickets under this key already: ours goes on from
                // the sequence number it reached.
                assert!(
                    secrets.rx.0 > 0,
                    "{suite:?}: the tickets were opened by rustls"
                );
            }
            let secrets_tx_seq = secrets.tx.0;
            let mut r = Records::new(
                Fixed {
                    version,
                    aead,
                    limit: u64::MAX,
                    tx_updates: 0,
                    rx_updates: 0,
                    tickets: Vec::new(),
                },
                Key::from_secrets(version, secrets.tx, u64::MAX).expect("tx"),
                Key::from_secrets(version, secrets.rx, u64::MAX).expect("rx"),
            );
            // rustls's records (a long answer is several) open here.
            let answer: Vec<u8> = (0..40_000u32).map(|i| (i % 253) as u8).collect();
            server.writer().write_all(&answer).expect("buffered");
            let mut bytes = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut bytes).expect("write to a Vec");
            }
            let mut inbox = Inbox::new(crate::tls::INCOMING_TLS_BYTES);
            let (data, end) = receive_in_reads(&mut r, &mut inbox, &bytes, 3000);
            assert_eq!(end, Received::NeedMore);
            assert_eq!(data.concat(), answer, "{suite:?}");
            assert!(data.len() >= 3, "{} records", data.len());
            // Ours open in rustls, padded (TLS 1.3) or not. (Our KeyUpdates are for rustls's
            // kernel connection to derive: tests/tls.rs has them.)
            let mut out = vec![0; crate::tls::OUTGOING_TLS_BYTES];
            let mut sent = Vec::new();
            let n = r.seal(b"GET / HTTP/1.1\r\n\r\n", &mut out).expect("seal");
            sent.extend_from_slice(&out[..n]);
            let padding = if version == v13 { 700 } else { 0 };
            let n =
                r.tx.seal(APPLICATION_DATA, b"padded", padding, &mut out)
                    .expect("seal");
            sent.extend_from_slice(&out[..n]);
            let n = r.seal(b"and the next", &mut out).expect("seal");
            sent.extend_from_slice(&out[..n]);
            let n = r.seal(&[b'q'; MAX_CONTENT], &mut out).expect("seal");
            sent.extend_from_slice(&out[..n]);
            deliver(&mut server, &sent);
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match server.reader().read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{suite:?}: {e}"),
                }
            }
            let want = [
                &b"GET / HTTP/1.1\r\n\r\npaddedand the next"[..],
                &[b'q'; MAX_CONTENT][..],
            ]
            .concat();
            assert_eq!(got, want, "{suite:?}");
            assert_eq!(r.tx().seq(), secrets_tx_seq + 4);
            // rustls's close_notify ends the connection (TLS 1.3 and 1.2 alike).
            server.send_close_notify();
            let mut bytes = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut bytes).expect("write to a Vec");
            }
            let (_, end) = receive_in_reads(&mut r, &mut inbox, &bytes, 3000);
            assert_eq!(end, Received::Closed, "{suite:?}: rustls's close_notify");
        }
    }
}
