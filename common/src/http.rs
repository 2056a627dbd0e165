//! HTTP limits and canned bytes that `qserve` and `qload` agree on.

/// Largest request or response head accepted (bytes, request line or status line included).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most header fields parsed in one head.
pub const MAX_HEADERS: usize = 64;
/// Largest request body `qserve` accepts by default (bytes).
pub const MAX_REQUEST_BODY: usize = 64 * 1024;
/// Largest response body `qload` reads before counting an error (bytes).
pub const MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;
/// The `Server` header value.
pub const SERVER_NAME: &str = "qserve";

/// Formats an HTTP `Date` value (IMF-fixdate, RFC 9110) for Unix time `secs` into `out` (29 bytes).
pub fn http_date(secs: u64, out: &mut [u8; 29]) { todo!() }
