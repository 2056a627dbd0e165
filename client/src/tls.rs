//! HTTPS: the TLS setup of a run and what its failures are called.
//!
//! A [`TlsSetup`] is made once per run (by the code that builds the [`Target`](crate::Target),
//! the coordinator's side) and shared by every worker thread: one `Arc<rustls::ClientConfig>`
//! (rustls with the *ring* provider, TLS 1.2 and 1.3, ALPN `http/1.1`, sessions resumed as a
//! browser would) and the name the server is checked against, which is also the SNI (a DNS
//! name; an IP literal is checked against the certificate's IP addresses and sends no SNI).
//!
//! The server's certificate is verified against the roots [`Verify`] names: the system's
//! (loaded once, through `rustls-native-certs`, which honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`), those of a PEM file (`--cacert`), or none at all (`--insecure`: any
//! certificate is taken, but the handshake's signatures are still checked, so the server must
//! hold the key of the certificate it shows).
//!
//! The connections themselves are the engine's (rustls's unbuffered API on the worker's mio loop);
//! this module also names their failures ([`classify`]) and sizes their buffers.
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::result::TlsErrorKind;

pub mod record;

/// Size of a TLS connection's incoming buffer: the largest TLS record, its 5-byte header and
/// 2^14 bytes of plaintext with the largest expansion any version allows (2048 bytes, TLS 1.2;
/// TLS 1.3 allows 256). A handshake message that spans records (a long certificate chain) must
/// fit in it whole: one longer than this fails the handshake as a `tls` error (`other`).
pub const INCOMING_TLS_BYTES: usize = 5 + (1 << 14) + 2048;
/// Most plaintext encrypted into one record of the outgoing buffer: a request is encrypted and
/// written this much at a time.
pub const PLAIN_CHUNK: usize = 1 << 14;
/// Size of a TLS connection's outgoing buffer: one record of [`PLAIN_CHUNK`] bytes with its
/// header and the largest expansion (TLS 1.2: an 8-byte explicit nonce and a 16-byte tag; TLS
/// 1.3: a content type and a tag), or the client's handshake flights (a ClientHello of well
/// under 2 KiB, then a Finished), with room to spare.
pub const OUTGOING_TLS_BYTES: usize = PLAIN_CHUNK + 1024;
/// Longest error text kept (the first TLS error of each worker thread).
pub const MAX_ERROR_TEXT: usize = 240;

/// Which certificates a TLS connection trusts.
#[derive(Debug, Clone)]
pub enum Verify {
    /// The system's roots (via `rustls-native-certs`).
    System,
    /// The roots of a PEM file (`--cacert`), instead of the system's.
    CaFile(PathBuf),
    /// These roots (for code and tests).
    Roots(Arc<RootCertStore>),
    /// None: any certificate is taken (`--insecure`). The handshake's signatures are still
    /// verified.
    Insecure,
}

/// Why the TLS setup cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// No root certificate of the system could be loaded.
    #[error(
        "no system root certificates could be loaded{0}; give the server's CA with --cacert FILE, or --insecure to skip verification"
    )]
    NoSystemRoots(String),
    /// The `--cacert` file cannot be read or holds no usable certificate.
    #[error("--cacert {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The host is no valid DNS name or IP address to check a certificate against.
    #[error("{0:?}: not a host name a certificate can be checked against")]
    ServerName(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The TLS setup of a run (see the module docs): cheap to clone (the configuration is shared).
#[derive(Clone)]
pub struct TlsSetup {
    /// The configuration every connection of the run is made from.
    pub config: Arc<ClientConfig>,
    /// The name the server's certificate is checked against, also sent as SNI.
    pub server_name: ServerName<'static>,
    /// Certificate verification is off (`--insecure`).
    pub insecure: bool,
    /// What the roots are, for reports (`system (146 roots)`, `--cacert ca.pem (1 root)`,
    /// `none (--insecure)`).
    pub roots: String,
}

impl fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSetup")
            .field("server_name", &self.server_name)
            .field("insecure", &self.insecure)
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

/// Two setups are the same when they share their configuration and check the same name.
impl PartialEq for TlsSetup {
    fn eq(&self, o: &Self) -> bool {
        Arc::ptr_eq(&self.config, &o.config)
            && self.server_name == o.server_name
            && self.insecure == o.insecure
    }
}

impl Eq for TlsSetup {}

/// The crypto provider of every connection: rustls's *ring* one.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsSetup {
    /// The setup for connections to `host` (as written in the URL, without brackets), trusting
    /// what `verify` says. Loads the roots (the system's or a file's) now, once.
    pub fn new(host: &str, verify: Verify) -> Result<Self, TlsError> {
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|_| TlsError::ServerName(host.to_owned()))?;
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let (mut config, insecure, roots) = match verify {
            Verify::Insecure => {
                let verifier = NoVerification {
                    algorithms: provider.signature_verification_algorithms,
                };
                let config = builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
                    .with_no_client_auth();
                (config, true, "none (--insecure)".to_owned())
            }
            Verify::System => {
                let roots = system_roots()?;
                let n = roots.len();
                let config = builder.with_root_certificates(roots).with_no_client_auth();
                (config, false, format!("system ({n} root{})", plural(n)))
            }
            Verify::CaFile(path) => {
                let roots = roots_from_pem_file(&path)?;
                let n = roots.len();
                let config = builder.with_root_certificates(roots).with_no_client_auth();
                let what = format!("--cacert {} ({n} root{})", path.display(), plural(n));
                (config, false, what)
            }
            Verify::Roots(roots) => {
                let n = roots.len();
                let config = builder.with_root_certificates(roots).with_no_client_auth();
                (config, false, format!("given ({n} root{})", plural(n)))
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // After the handshake the connection takes the traffic secrets from rustls and protects
        // its records itself, in place (see `record`): no allocation per request.
        config.enable_secret_extraction = true;
        Ok(Self {
            config: Arc::new(config),
            server_name,
            insecure,
            roots,
        })
    }
}

/// The system's root certificates; an error when none can be loaded.
pub fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (_, refused) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let mut why = String::new();
        if let Some(e) = found.errors.first() {
            why = format!(" ({e})");
        } else if refused > 0 {
            why = format!(" ({refused} could not be parsed)");
        }
        return Err(TlsError::NoSystemRoots(why));
    }
    Ok(roots)
}

/// The root certificates of the PEM file at `path` (every `CERTIFICATE` block in it; other
/// blocks are skipped); an error when it cannot be read or holds none.
pub fn roots_from_pem_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let bad = |reason: String| TlsError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("no PEM certificate in it".to_owned()));
    }
    Ok(roots)
}

/// `--insecure`: takes any certificate for any name, but checks the handshake's signatures
/// with the provider's algorithms (the server must own the key of the certificate it shows).
#[derive(Debug)]
struct NoVerification {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Whether `first`, the first bytes a server sent on a connection, can start a TLS record: a
/// content type of TLS (20 to 24: change_cipher_spec, alert, handshake, application_data,
/// heartbeat) and, when known, a major version of 3. A plain-HTTP server's answer (`HTTP/…`)
/// cannot.
pub fn looks_like_tls(first: &[u8]) -> bool {
    match first {
        [] => true,
        [t] => (20..=24).contains(t),
        [t, major, ..] => (20..=24).contains(t) && *major == 3,
    }
}

/// What a rustls error on a connection was. `first` are the first bytes the server sent on it
/// (up to 5; empty if none): whatever rustls made of bytes that cannot start a TLS record,
/// the server does not speak TLS.
pub fn classify(e: &rustls::Error, first: &[u8]) -> TlsErrorKind {
    use rustls::Error as E;
    if !looks_like_tls(first) {
        return TlsErrorKind::NotTls;
    }
    match e {
        E::InvalidCertificate(_) | E::NoCertificatesPresented | E::UnsupportedNameType => {
            TlsErrorKind::Certificate
        }
        E::AlertReceived(_) => TlsErrorKind::Alert,
        _ => TlsErrorKind::Other,
    }
}

/// `text` cut to at most [`MAX_ERROR_TEXT`] bytes (at a character boundary).
pub fn bounded(mut text: String) -> String {
    if text.len() > MAX_ERROR_TEXT {
        let mut end = MAX_ERROR_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{AlertDescription, CertificateError, InvalidMessage};

    #[test]
    fn classification() {
        let tls = [22u8, 3, 3, 0, 80];
        let cases: Vec<(rustls::Error, &[u8], TlsErrorKind)> = vec![
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                &tls,
                TlsErrorKind::Certificate,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::Expired),
                &tls,
                TlsErrorKind::Certificate,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                &tls,
                TlsErrorKind::Certificate,
            ),
            (
                rustls::Error::NoCertificatesPresented,
                &tls,
                TlsErrorKind::Certificate,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::NoApplicationProtocol),
                &[21, 3, 3],
                TlsErrorKind::Alert,
            ),
            (
                rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType),
                b"HTTP/",
                TlsErrorKind::NotTls,
            ),
            (
                rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType),
                b"SSH-2",
                TlsErrorKind::NotTls,
            ),
            (
                rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType),
                &[22, 2],
                TlsErrorKind::NotTls,
            ),
            (rustls::Error::DecryptError, &tls, TlsErrorKind::Other),
            (
                rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType),
                &tls,
                TlsErrorKind::Other,
            ),
        ];
        for (e, first, want) in cases {
            assert_eq!(classify(&e, first), want, "{e:?} after {first:?}");
        }
        assert!(looks_like_tls(&[]));
        assert!(looks_like_tls(&[23]));
        assert!(!looks_like_tls(b"H"));
    }

    #[test]
    fn error_texts_are_bounded() {
        assert_eq!(bounded("short".into()), "short");
        let long = "é".repeat(MAX_ERROR_TEXT);
        let cut = bounded(long);
        assert!(cut.len() <= MAX_ERROR_TEXT && cut.len() >= MAX_ERROR_TEXT - 1);
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn setups_name_the_server_and_refuse_bad_roots() {
        let s = TlsSetup::new("127.0.0.1", Verify::Insecure).expect("insecure needs no roots");
        assert!(matches!(s.server_name, ServerName::IpAddress(_)));
        assert!(s.insecure);
        assert_eq!(s.config.alpn_protocols, [b"http/1.1".to_vec()]);
        let s = TlsSetup::new("::1", Verify::Insecure).expect("an IPv6 literal");
        assert!(matches!(s.server_name, ServerName::IpAddress(_)));
        let s = TlsSetup::new("localhost", Verify::Roots(Arc::new(RootCertStore::empty())))
            .expect("an empty store is the caller's choice");
        assert!(matches!(s.server_name, ServerName::DnsName(_)));
        assert!(!s.insecure);
        assert!(matches!(
            TlsSetup::new("bad name!", Verify::Insecure),
            Err(TlsError::ServerName(_))
        ));
        let dir = std::env::temp_dir().join(format!("qload-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").expect("write");
        let e = TlsSetup::new("localhost", Verify::CaFile(empty)).expect_err("no certificate");
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let missing = dir.join("missing.pem");
        let e = TlsSetup::new("localhost", Verify::CaFile(missing)).expect_err("no file");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
