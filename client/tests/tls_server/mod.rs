//! An in-test TLS server for qload's https tests: its own CA and leaf certificates (rcgen), and
//! a thread per connection with a blocking rustls `ServerConnection` over std's `TcpListener`
//! on 127.0.0.1, bounded in time and stopped when dropped.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// The longest a server's connection lives (every test ends well before).
const CONN_LIFE: Duration = Duration::from_secs(10);

/// A CA and, signed by it, a leaf for `localhost` and 127.0.0.1.
pub struct Pki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The leaf and the CA.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key (PKCS#8 DER).
    pub key: Vec<u8>,
}

impl Pki {
    /// A new CA and leaf; `expired`: the leaf's validity ended in 2001.
    pub fn new(expired: bool) -> Self {
        let ca_key = KeyPair::generate().expect("a key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: two CAs of one name would look like issuers of each other's leaves.
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        ca.distinguished_name
            .push(DnType::CommonName, format!("qload test CA {n}"));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, ca_key).expect("the CA signs itself");
        let leaf_key = KeyPair::generate().expect("a key");
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("leaf parameters");
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        if expired {
            leaf.not_before = date_time_ymd(2000, 1, 1);
            leaf.not_after = date_time_ymd(2001, 1, 1);
        }
        let leaf = leaf
            .signed_by(&leaf_key, &ca)
            .expect("the CA signs the leaf");
        Self {
            ca_pem: ca.pem(),
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key: leaf_key.serialize_der(),
        }
    }

    /// Writes the CA's PEM into `dir` and returns its path.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write the CA file");
        path
    }

    /// A server configuration with this leaf, offering `alpn` (none: no ALPN) over
    /// `versions`.
    pub fn server_config(
        &self,
        alpn: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .expect("the leaf and its key");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// [`Pki::server_config`] with ALPN `http/1.1` and every version.
    pub fn http11(&self) -> Arc<ServerConfig> {
        self.server_config(&[b"http/1.1"], rustls::ALL_VERSIONS)
    }

    /// ALPN `http/1.1`, with cipher suite `suite` only (and its version).
    pub fn with_suite(&self, suite: rustls::SupportedCipherSuite) -> Arc<ServerConfig> {
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = vec![suite];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[suite.version()])
            .expect("the suite's version")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .expect("the leaf and its key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "qload-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the server does on each connection.
#[derive(Clone)]
pub enum Behavior {
    /// TLS, then `200` with `Content-Length: 2` and `ok` to every request, keep-alive.
    Serve(Arc<ServerConfig>),
    /// TLS, then the answer as `Serve` does, then a close_notify and the end of the connection
    /// (no `Connection: close`: the client learns it when it next looks).
    CloseAfterAnswer(Arc<ServerConfig>),
    /// TLS, then an answer whose body ends with the connection (`200`, no length), close_notify.
    EofBody(Arc<ServerConfig>),
    /// TLS, then, to the first request, encrypted bytes that are not HTTP.
    Garbage(Arc<ServerConfig>),
    /// TLS, then, to the first request, bytes outside TLS records' protection.
    RawGarbage(Arc<ServerConfig>),
    /// Accepts, reads and never answers (until the peer closes).
    Silent,
    /// Reads the ClientHello, then closes.
    CloseAfterHello,
    /// No TLS: answers as `Serve` does over plain TCP.
    Plain,
    /// As `Serve`, and after every `every`-th answer on a connection the server updates its
    /// traffic keys (a KeyUpdate that requests the client's too: rustls's server asks for one).
    KeyUpdates {
        /// The configuration.
        config: Arc<ServerConfig>,
        /// Answers per key update.
        every: usize,
    },
    /// As `Serve`, with a body of `bytes` bytes (a multiple of 10) to every request.
    Big {
        /// The configuration.
        config: Arc<ServerConfig>,
        /// Length of the body.
        bytes: usize,
    },
}

/// A running server; stopped when dropped.
pub struct TlsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    resumed: Arc<AtomicUsize>,
    counts: Arc<Counts>,
    accept: Option<JoinHandle<()>>,
}

/// What the server counts of the TLS 1.3 records it reads and of the key updates it makes.
#[derive(Default)]
pub struct Counts {
    /// Records read of outer type application_data and 22 bytes of ciphertext: a protected
    /// KeyUpdate (a 5-byte message, its content type, a 16-byte tag; qload's requests are far
    /// longer).
    pub key_update_records: AtomicUsize,
    /// Key updates the server made (`Behavior::KeyUpdates`).
    pub refreshes: AtomicUsize,
}

impl TlsServer {
    /// Starts a server with `behavior` on an ephemeral loopback port. `on_thread` runs first on
    /// every thread of the server (e.g. to keep it out of a count).
    pub fn start_with(behavior: Behavior, on_thread: fn()) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let resumed = Arc::new(AtomicUsize::new(0));
        let counts = Arc::new(Counts::default());
        let (s, a, r, re, co) = (
            Arc::clone(&stop),
            Arc::clone(&accepted),
            Arc::clone(&requests),
            Arc::clone(&resumed),
            Arc::clone(&counts),
        );
        let accept = std::thread::spawn(move || {
            on_thread();
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                let (s, r, re, co, b) = (
                    Arc::clone(&s),
                    Arc::clone(&r),
                    Arc::clone(&re),
                    Arc::clone(&co),
                    behavior.clone(),
                );
                std::thread::spawn(move || {
                    on_thread();
                    connection(stream, b, &s, &r, &re, co);
                });
            }
        });
        Self {
            addr,
            stop,
            accepted,
            requests,
            resumed,
            counts,
            accept: Some(accept),
        }
    }

    pub fn start(behavior: Behavior) -> Self {
        Self::start_with(behavior, || {})
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Connections whose handshake resumed an earlier session (of those that got a request).
    pub fn resumed(&self) -> usize {
        self.resumed.load(Ordering::SeqCst)
    }

    /// What the server counted of records and key updates.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// The length of the request at the start of `buf` (head and `Content-Length` body), once it
/// has all arrived.
fn request_end(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
    let body = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    (buf.len() >= head + body).then_some(head + body)
}

pub const GOOD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn connection(
    sock: TcpStream,
    behavior: Behavior,
    stop: &AtomicBool,
    requests: &AtomicUsize,
    resumed: &AtomicUsize,
    counts: Arc<Counts>,
) {
    let _ = sock.set_nodelay(true);
    let _ = sock.set_read_timeout(Some(Duration::from_millis(20)));
    let deadline = Instant::now() + CONN_LIFE;
    let config = match &behavior {
        Behavior::Silent => return hold(sock, stop, deadline),
        Behavior::Plain => return serve_plain(sock, stop, requests, deadline),
        Behavior::CloseAfterHello => {
            let mut sock = sock;
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                match sock.read(&mut buf) {
                    Ok(0) => return,
                    Ok(_) => return,
                    Err(_) => {}
                }
            }
            return;
        }
        Behavior::Serve(c)
        | Behavior::CloseAfterAnswer(c)
        | Behavior::EofBody(c)
        | Behavior::Garbage(c)
        | Behavior::RawGarbage(c)
        | Behavior::KeyUpdates { config: c, .. }
        | Behavior::Big { config: c, .. } => Arc::clone(c),
    };
    let Ok(conn) = ServerConnection::new(config) else {
        return;
    };
    let mut tls = StreamOwned::new(conn, Scanned::new(sock, counts));
    // Large enough for the tests' largest request (a 100 kB body).
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0;
    let mut answered = 0;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        while let Some(end) = request_end(&buf[..len]) {
            buf.copy_within(end..len, 0);
            len -= end;
            if answered == 0 && tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                resumed.fetch_add(1, Ordering::SeqCst);
            }
            answered += 1;
            requests.fetch_add(1, Ordering::SeqCst);
            let ok = match &behavior {
                Behavior::Serve(_) => tls.write_all(GOOD).is_ok(),
                Behavior::KeyUpdates { every, .. } => {
                    let mut ok = tls.write_all(GOOD).is_ok();
                    if answered % every == 0 {
                        ok &= tls.conn.refresh_traffic_keys().is_ok() && tls.flush().is_ok();
                        tls.sock.counts.refreshes.fetch_add(1, Ordering::SeqCst);
                    }
                    ok
                }
                Behavior::Big { bytes, .. } => {
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {bytes}\r\n\r\n");
                    tls.write_all(head.as_bytes()).is_ok()
                        && tls.write_all(&b"0123456789".repeat(bytes / 10)).is_ok()
                        && tls.flush().is_ok()
                }
                Behavior::CloseAfterAnswer(_) => {
                    let _ = tls.write_all(GOOD);
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                    false
                }
                Behavior::EofBody(_) => {
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\n\r\nok, until the end");
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                    false
                }
                Behavior::Garbage(_) => {
                    let _ = tls.write_all(b"\x00\x01 this is not HTTP at all\r\n\r\n");
                    let _ = tls.flush();
                    return hold(tls.sock.sock, stop, deadline);
                }
                Behavior::RawGarbage(_) => {
                    let _ = tls
                        .sock
                        .sock
                        .write_all(b"garbage outside any record\r\n\r\n");
                    return hold(tls.sock.sock, stop, deadline);
                }
                Behavior::Silent | Behavior::CloseAfterHello | Behavior::Plain => false,
            };
            if !ok {
                return;
            }
        }
        if len == buf.len() {
            return;
        }
        match tls.read(&mut buf[len..]) {
            Ok(0) => return,
            Ok(n) => len += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// The server's socket, its incoming bytes scanned for record headers (see [`Counts`]).
struct Scanned {
    sock: TcpStream,
    counts: Arc<Counts>,
    header: [u8; 5],
    header_len: usize,
    /// Bytes of the current record's body still to come.
    body_left: usize,
}

impl Scanned {
    fn new(sock: TcpStream, counts: Arc<Counts>) -> Self {
        Self {
            sock,
            counts,
            header: [0; 5],
            header_len: 0,
            body_left: 0,
        }
    }

    fn scan(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let skip = self.body_left.min(bytes.len());
                self.body_left -= skip;
                bytes = &bytes[skip..];
                continue;
            }
            self.header[self.header_len] = bytes[0];
            self.header_len += 1;
            bytes = &bytes[1..];
            if self.header_len == 5 {
                let len = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                if self.header[0] == 23 && len == 22 {
                    self.counts
                        .key_update_records
                        .fetch_add(1, Ordering::SeqCst);
                }
                self.body_left = len;
                self.header_len = 0;
            }
        }
    }
}

impl Read for Scanned {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.sock.read(buf)?;
        self.scan(&buf[..n]);
        Ok(n)
    }
}

impl Write for Scanned {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sock.write(buf)
    }

    // rustls writes its queued records in one vectored write (its last gasp after an error,
    // an alert, is that one call): the socket's own, not the default's first buffer only.
    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        self.sock.write_vectored(bufs)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.sock.flush()
    }
}

/// `Behavior::Plain`: answers every request with `GOOD` over plain TCP, keep-alive.
fn serve_plain(mut s: TcpStream, stop: &AtomicBool, requests: &AtomicUsize, deadline: Instant) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        while let Some(end) = request_end(&buf[..len]) {
            buf.copy_within(end..len, 0);
            len -= end;
            requests.fetch_add(1, Ordering::SeqCst);
            if s.write_all(GOOD).is_err() {
                return;
            }
        }
        if len == buf.len() {
            return;
        }
        match s.read(&mut buf[len..]) {
            Ok(0) => return,
            Ok(n) => len += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Keeps the connection until the peer closes it, reading and dropping (bounded by `deadline`).
fn hold(mut s: TcpStream, stop: &AtomicBool, deadline: Instant) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
