//! The target URL: `http://host[:port][/path][?query]` or `https://…` (HTTP/1.1 over TLS), nothing
//! else.
//!
//! Every other scheme is refused with a message that says so. The port defaults to 80 for http and
//! 443 for https. The host is resolved once, when the configuration is validated: every connection
//! of the run goes to that one address, and the `Host` header carries the host as written (with
//! the port unless it is the scheme's default); for https the host is also the name the server's
//! certificate is checked against (see [`crate::tls`]).
//!
//! Both go into every request verbatim, so both are printable ASCII (`0x21..=0x7e`) by
//! construction: in the path and query every other byte (spaces, control characters, the UTF-8
//! bytes of non-ASCII text) is percent-encoded, as curl does (`/a b` → `/a%20b`, `/é` →
//! `/%C3%A9`), while `%` sequences already there are kept; the host may hold only letters,
//! digits, `.`, `-`, `_` (and, in brackets, an IPv6 literal with its `%zone`), else the URL is
//! refused.
use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};

/// A URL that cannot be used; the message says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Any scheme other than `http` and `https`.
    #[error("{url:?}: unsupported scheme {scheme:?} (only http:// and https:// are supported)")]
    Scheme {
        /// The URL as given.
        url: String,
        /// The scheme found.
        scheme: String,
    },
    /// No `scheme://` at all.
    #[error("{0:?}: not a URL (expected http[s]://host[:port][/path])")]
    NoScheme(String),
    /// Some part is malformed (empty host, bad port, user info, bad characters).
    #[error("{url:?}: {reason}")]
    Malformed {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The host name did not resolve to any address.
    #[error("{host}: cannot resolve host: {reason}")]
    Resolve {
        /// The host as written.
        host: String,
        /// The resolver's message.
        reason: String,
    },
}

/// A parsed `http://` or `https://` URL, not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https://`: HTTP over TLS.
    pub tls: bool,
    /// Host as written, without brackets for IPv6 literals.
    pub host: String,
    /// Port (80 when absent, 443 for https).
    pub port: u16,
    /// Whether the host was an IPv6 literal in brackets.
    pub ipv6_literal: bool,
    /// Path and query, starting with `/` (the fragment dropped).
    pub path: String,
}

impl HttpUrl {
    /// Parses `http[s]://host[:port][/path][?query][#fragment]`.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let malformed = |reason| UrlError::Malformed {
            url: url.to_owned(),
            reason,
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(UrlError::NoScheme(url.to_owned()));
        };
        let tls = scheme.eq_ignore_ascii_case("https");
        if !tls && !scheme.eq_ignore_ascii_case("http") {
            return Err(UrlError::Scheme {
                url: url.to_owned(),
                scheme: scheme.to_owned(),
            });
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], encode_target("/", &rest[i..])),
            Some(i) => (&rest[..i], encode_target("", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') {
            return Err(malformed("user information in the URL is not supported"));
        }
        let (host, port_str, ipv6_literal) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                return Err(malformed("unclosed '[' in the host"));
            };
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| malformed("junk after the IPv6 address"))?,
                ),
            };
            (host, port, true)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p), false),
                None => (authority, None, false),
            }
        };
        if host.is_empty() {
            return Err(malformed("empty host"));
        }
        // `:` and `%` (a zone) only inside the brackets of an IPv6 literal.
        if !host.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'-' | b'_')
                || (ipv6_literal && matches!(b, b':' | b'%'))
        }) {
            return Err(malformed("invalid characters in the host"));
        }
        let port = match port_str {
            None => Self::default_port(tls),
            // Digits only (`parse` alone would take a sign).
            Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(malformed("invalid port (expected 1-65535)"));
            }
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(malformed("invalid port (expected 1-65535)")),
                Ok(p) => p,
            },
        };
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
            ipv6_literal,
            path,
        })
    }

    /// The port of the scheme: 443 for https, 80 for http.
    pub fn default_port(tls: bool) -> u16 {
        if tls { 443 } else { 80 }
    }

    /// The `Host` header value: the host as written, with the port unless it is the scheme's
    /// default.
    pub fn host_header(&self) -> String {
        let host = if self.ipv6_literal {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == Self::default_port(self.tls) {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Whether `s` is non-empty printable ASCII (`0x21..=0x7e`): what a request-target and a
    /// `Host` value may hold.
    pub fn is_printable(s: &str) -> bool {
        !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
    }

    /// Resolves the host once; the first address the resolver returns is used.
    pub fn resolve(&self) -> Result<SocketAddr, UrlError> {
        let resolve_err = |reason: String| UrlError::Resolve {
            host: self.host.clone(),
            reason,
        };
        let mut addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| resolve_err(e.to_string()))?;
        addrs
            .next()
            .ok_or_else(|| resolve_err("no addresses".to_owned()))
    }
}

/// `prefix` then `raw` with every byte outside printable ASCII (`0x21..=0x7e`) percent-encoded.
fn encode_target(prefix: &str, raw: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + raw.len());
    out.push_str(prefix);
    for &b in raw.as_bytes() {
        if (0x21..=0x7e).contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_table() {
        let cases: &[(&str, &str, u16, &str, &str)] = &[
            (
                "http://127.0.0.1:8000/",
                "127.0.0.1",
                8000,
                "/",
                "127.0.0.1:8000",
            ),
            ("http://localhost", "localhost", 80, "/", "localhost"),
            (
                "HTTP://example.com:80/a/b?c=d",
                "example.com",
                80,
                "/a/b?c=d",
                "example.com",
            ),
            ("http://h:81?x=1", "h", 81, "/?x=1", "h:81"),
            ("http://[::1]:9000/p#frag", "::1", 9000, "/p", "[::1]:9000"),
            ("http://[::1]/", "::1", 80, "/", "[::1]"),
        ];
        for &(url, host, port, path, host_header) in cases {
            let u = HttpUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(u.host, host, "{url}");
            assert_eq!(u.port, port, "{url}");
            assert_eq!(u.path, path, "{url}");
            assert_eq!(u.host_header(), host_header, "{url}");
        }
    }

    #[test]
    fn https_urls_default_to_port_443() {
        let cases: &[(&str, &str, u16, &str, &str)] = &[
            (
                "https://example.com/",
                "example.com",
                443,
                "/",
                "example.com",
            ),
            ("HTTPS://h:443/a?b", "h", 443, "/a?b", "h"),
            ("https://h:80/", "h", 80, "/", "h:80"),
            (
                "https://127.0.0.1:8443",
                "127.0.0.1",
                8443,
                "/",
                "127.0.0.1:8443",
            ),
            ("https://[::1]/x", "::1", 443, "/x", "[::1]"),
        ];
        for &(url, host, port, path, host_header) in cases {
            let u = HttpUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(u.tls, "{url}");
            assert_eq!(u.host, host, "{url}");
            assert_eq!(u.port, port, "{url}");
            assert_eq!(u.path, path, "{url}");
            assert_eq!(u.host_header(), host_header, "{url}");
        }
        let plain = HttpUrl::parse("http://h:443/").expect("valid");
        assert!(!plain.tls);
        assert_eq!(plain.host_header(), "h:443");
        for url in ["https://", "https://u@h/", "https://h:0/"] {
            assert!(HttpUrl::parse(url).is_err(), "{url} should be rejected");
        }
    }

    #[test]
    fn rejects_table() {
        let ftp = HttpUrl::parse("ftp://example.com/");
        assert!(
            ftp.expect_err("ftp is refused")
                .to_string()
                .contains("only http:// and https://")
        );
        for url in [
            "ftp://x/",
            "ws://x/",
            "example.com",
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:65536/",
            "http://h:x/",
            "http://u:p@h/",
            "http://[::1/",
            "http://h\r\nX: y/",
            "http://h:+80/",
            "http://h:/",
            "http://a:b:80/",
            "http://h%41/",
            "http://hé/",
            "http://h\u{7f}/",
            "http://[::1]x/",
        ] {
            assert!(HttpUrl::parse(url).is_err(), "{url} should be rejected");
        }
    }

    #[test]
    fn resolves_loopback() {
        let u = HttpUrl::parse("http://127.0.0.1:8123/").expect("valid URL");
        let addr = u.resolve().expect("a literal resolves");
        assert_eq!(addr, "127.0.0.1:8123".parse().expect("literal"));
    }

    #[test]
    fn request_targets_are_percent_encoded_to_printable_ascii() {
        let cases: &[(&str, &str)] = &[
            // Found by fuzzing: non-ASCII text went into the request line as raw UTF-8.
            ("http://hhttx/\u{1d7}tt", "/%C7%97tt"),
            ("http://h/a b?c d", "/a%20b?c%20d"),
            ("http://h?q=\u{e9}", "/?q=%C3%A9"),
            ("http://h/\t\r\n\u{0}\u{7f}", "/%09%0D%0A%00%7F"),
            // Printable ASCII, `%` sequences included, is kept as written.
            (
                "http://h/%41%zz~!*'();:@&=+$,/?[]",
                "/%41%zz~!*'();:@&=+$,/?[]",
            ),
            ("http://h/caf\u{e9}#fr\u{e9}", "/caf%C3%A9"),
        ];
        for &(url, path) in cases {
            let u = HttpUrl::parse(url).unwrap_or_else(|e| panic!("{url:?}: {e}"));
            assert_eq!(u.path, path, "{url:?}");
            assert!(HttpUrl::is_printable(&u.path), "{url:?}");
        }
    }

    #[test]
    fn accepted_urls_give_printable_targets_and_hosts() {
        // Every string over a small alphabet of troublesome characters, up to four of them after
        // a valid prefix: whatever is accepted yields a printable target and Host header.
        let alphabet = [
            '/', '?', '#', ':', '[', ']', '@', '%', ' ', '\t', '\n', 'a', '1', '\u{e9}', '\u{7f}',
        ];
        let mut accepted = 0;
        let n = alphabet.len();
        for len in 0..=4u32 {
            for mut code in 0..n.pow(len) {
                let mut tail = String::new();
                for _ in 0..len {
                    tail.push(alphabet[code % n]);
                    code /= n;
                }
                for prefix in ["http://h", "http://h/", "http://[::1]"] {
                    let url = format!("{prefix}{tail}");
                    if let Ok(u) = HttpUrl::parse(&url) {
                        accepted += 1;
                        assert!(HttpUrl::is_printable(&u.path), "{url:?} -> {:?}", u.path);
                        assert!(u.path.starts_with('/'), "{url:?} -> {:?}", u.path);
                        let host = u.host_header();
                        assert!(HttpUrl::is_printable(&host), "{url:?} -> Host {host:?}");
                    }
                }
            }
        }
        assert!(accepted > 10_000, "only {accepted} accepted");
    }
}
