//! The target URL: `http://host[:port][/path][?query]`, nothing else.
//!
//! qload speaks plain HTTP/1.1 only, so `https://` and every other scheme are refused with a message
//! that says so. The host is resolved once, when the configuration is validated: every connection of
//! the run goes to that one address, and the `Host` header carries the host as written.
use std::net::{SocketAddr, ToSocketAddrs};

/// A URL that cannot be used; the message says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// `https://`: qload has no TLS.
    #[error(
        "{0:?}: https is not supported (qload speaks plain HTTP/1.1; put a TLS-terminating proxy in front, or use http://)"
    )]
    Https(String),
    /// Any scheme other than `http`.
    #[error("{url:?}: unsupported scheme {scheme:?} (only http:// is supported)")]
    Scheme {
        /// The URL as given.
        url: String,
        /// The scheme found.
        scheme: String,
    },
    /// No `scheme://` at all.
    #[error("{0:?}: not a URL (expected http://host[:port][/path])")]
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

/// A parsed `http://` URL, not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host as written, without brackets for IPv6 literals.
    pub host: String,
    /// Port (80 when absent).
    pub port: u16,
    /// Whether the host was an IPv6 literal in brackets.
    pub ipv6_literal: bool,
    /// Path and query, starting with `/` (the fragment dropped).
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://host[:port][/path][?query][#fragment]`.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let malformed = |reason| UrlError::Malformed {
            url: url.to_owned(),
            reason,
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(UrlError::NoScheme(url.to_owned()));
        };
        if scheme.eq_ignore_ascii_case("https") {
            return Err(UrlError::Https(url.to_owned()));
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(UrlError::Scheme {
                url: url.to_owned(),
                scheme: scheme.to_owned(),
            });
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') {
            return Err(malformed("user information in the URL is not supported"));
        }
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(malformed(
                "the path contains spaces or control characters (percent-encode them)",
            ));
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
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'%'))
        {
            return Err(malformed("invalid characters in the host"));
        }
        let port = match port_str {
            None => 80,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(malformed("invalid port (expected 1-65535)")),
                Ok(p) => p,
            },
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            ipv6_literal,
            path,
        })
    }

    /// The `Host` header value: the host as written, with the port unless it is 80.
    pub fn host_header(&self) -> String {
        let host = if self.ipv6_literal {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
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
    fn rejects_table() {
        let https = HttpUrl::parse("https://example.com/");
        assert!(matches!(https, Err(UrlError::Https(_))), "{https:?}");
        assert!(
            https
                .expect_err("https is refused")
                .to_string()
                .contains("https is not supported")
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
            "http://h/a b",
            "http://h\r\nX: y/",
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
}
