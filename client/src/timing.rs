//! The `Server-Timing` header of an answer (W3C Server Timing), read without allocating.
//!
//! A server that says how long it worked on an answer lets qload split the latency it measures
//! into the server's own time and the *path*: what the network, both kernels and both programs
//! added. qserve sends `Server-Timing: wait;dur=0.412, service;dur=1.187, late;dur=0.003`; any
//! server may send its own metrics.
//!
//! The grammar read (RFC 9110's list rule, as the W3C specification uses it):
//!
//! ```text
//! Server-Timing = #metric                       ; comma-separated, empty elements allowed
//! metric        = name *( OWS ";" OWS param )
//! param         = pname [ OWS "=" OWS value ]
//! value         = token / quoted-string
//! ```
//!
//! The first `dur` parameter of a metric (the name compared without case) is its duration, a
//! decimal number of milliseconds (`digits [ "." digits ]`, no sign, no exponent), converted to
//! integer nanoseconds without floating point: the 7th decimal rounds half up, later ones are
//! ignored. A metric without `dur` (a description, a flag) is valid and ignored. Several header
//! lines in one answer all count.
//!
//! Everything is bounded, because the bytes come from the network: a metric name is a token of
//! at most [`MAX_NAME_BYTES`]; at most [`MAX_METRICS`] durations are kept per answer, and the
//! rest are counted as dropped ([`ServerTiming::dropped`]). Anything else that is not this
//! grammar (a `dur` that is not such a number, an empty or overlong name, a stray byte, a
//! non-ASCII byte outside a quoted string) makes the whole answer's timing malformed: its
//! durations are not used, and the answer counts as malformed, never as a failed request.
//!
//! [`ServerTiming`] is a fixed-size value filled by [`crate::http::ResponseParser`] while the
//! header slices are alive, and read after the answer is done.

/// Most durations kept from one answer (the rest are counted as dropped).
pub const MAX_METRICS: usize = 16;

/// Longest metric name accepted, bytes (a longer one makes the answer's timing malformed).
pub const MAX_NAME_BYTES: usize = 32;

/// One metric of an answer with its duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    name: [u8; MAX_NAME_BYTES],
    len: u8,
    dur_ns: u64,
}

impl Metric {
    const EMPTY: Self = Self {
        name: [0; MAX_NAME_BYTES],
        len: 0,
        dur_ns: 0,
    };

    /// The metric's name (a token: printable ASCII).
    pub fn name(&self) -> &str {
        // A token is ASCII, so this never falls back.
        std::str::from_utf8(&self.name[..usize::from(self.len)]).unwrap_or("")
    }

    /// Its duration, nanoseconds.
    pub fn dur_ns(&self) -> u64 {
        self.dur_ns
    }
}

/// The `Server-Timing` durations of one answer (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTiming {
    metrics: [Metric; MAX_METRICS],
    len: usize,
    dropped: u32,
    present: bool,
    malformed: bool,
}

impl Default for ServerTiming {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a header value is not the grammar (the answer's timing is then malformed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Malformed;

impl ServerTiming {
    /// Nothing read yet.
    pub const fn new() -> Self {
        Self {
            metrics: [Metric::EMPTY; MAX_METRICS],
            len: 0,
            dropped: 0,
            present: false,
            malformed: false,
        }
    }

    /// Forgets the previous answer's timing.
    pub fn clear(&mut self) {
        self.len = 0;
        self.dropped = 0;
        self.present = false;
        self.malformed = false;
    }

    /// Reads one `Server-Timing` header line's value, adding its durations to those of the
    /// answer's earlier lines.
    pub fn add_header(&mut self, value: &[u8]) {
        self.present = true;
        if self.malformed {
            return;
        }
        if self.parse(value).is_err() {
            self.malformed = true;
        }
    }

    /// Whether the answer had a `Server-Timing` header at all.
    pub fn is_present(&self) -> bool {
        self.present
    }

    /// Whether some header line was not the grammar (the durations are then not used).
    pub fn is_malformed(&self) -> bool {
        self.malformed
    }

    /// The durations, in the order they came (empty when malformed).
    pub fn metrics(&self) -> &[Metric] {
        if self.malformed {
            &[]
        } else {
            &self.metrics[..self.len]
        }
    }

    /// Durations beyond [`MAX_METRICS`] that were read but not kept (0 when malformed).
    pub fn dropped(&self) -> u32 {
        if self.malformed { 0 } else { self.dropped }
    }

    /// The sum of the kept durations, nanoseconds (saturating).
    pub fn total_ns(&self) -> u64 {
        self.metrics()
            .iter()
            .fold(0u64, |s, m| s.saturating_add(m.dur_ns))
    }

    fn push(&mut self, name: &[u8], dur_ns: u64) {
        if self.len == MAX_METRICS {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        let m = &mut self.metrics[self.len];
        m.name[..name.len()].copy_from_slice(name);
        // Bounded by MAX_NAME_BYTES (32), so it fits a u8.
        m.len = name.len() as u8;
        m.dur_ns = dur_ns;
        self.len += 1;
    }

    fn parse(&mut self, v: &[u8]) -> Result<(), Malformed> {
        let mut c = Cursor { v, pos: 0 };
        loop {
            c.ows();
            match c.peek() {
                None => return Ok(()),
                // An empty list element.
                Some(b',') => {
                    c.pos += 1;
                    continue;
                }
                Some(_) => {}
            }
            let name = c.token();
            if name.is_empty() || name.len() > MAX_NAME_BYTES {
                return Err(Malformed);
            }
            let mut dur: Option<u64> = None;
            loop {
                c.ows();
                if c.peek() != Some(b';') {
                    break;
                }
                c.pos += 1;
                c.ows();
                let pname = c.token();
                if pname.is_empty() {
                    return Err(Malformed);
                }
                let is_dur = pname.eq_ignore_ascii_case(b"dur");
                c.ows();
                if c.peek() == Some(b'=') {
                    c.pos += 1;
                    c.ows();
                    let value = c.value()?;
                    if is_dur && dur.is_none() {
                        dur = Some(value.millis_to_ns()?);
                    }
                } else if is_dur && dur.is_none() {
                    // A `dur` without a number.
                    return Err(Malformed);
                }
            }
            match c.peek() {
                None => {}
                Some(b',') => c.pos += 1,
                Some(_) => return Err(Malformed),
            }
            if let Some(ns) = dur {
                self.push(name, ns);
            }
        }
    }
}

/// A parameter value: a token, or the inside of a quoted string (escapes still in it).
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Token(&'a [u8]),
    Quoted(&'a [u8]),
}

impl Value<'_> {
    /// The value's bytes, a quoted string's escapes resolved.
    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        let (raw, quoted) = match *self {
            Value::Token(t) => (t, false),
            Value::Quoted(q) => (q, true),
        };
        let mut escaped = false;
        raw.iter().copied().filter(move |&b| {
            if quoted && !escaped && b == b'\\' {
                escaped = true;
                return false;
            }
            escaped = false;
            true
        })
    }

    /// A decimal number of milliseconds as nanoseconds (see the module docs).
    fn millis_to_ns(&self) -> Result<u64, Malformed> {
        let (mut int, mut int_digits) = (0u64, 0u32);
        let (mut frac, mut frac_digits) = (0u64, 0u32);
        let mut round_up = false;
        let mut in_frac = false;
        for b in self.bytes() {
            match b {
                b'0'..=b'9' if !in_frac => {
                    int = int
                        .checked_mul(10)
                        .and_then(|x| x.checked_add(u64::from(b - b'0')))
                        .ok_or(Malformed)?;
                    int_digits += 1;
                }
                b'0'..=b'9' => {
                    frac_digits = frac_digits.saturating_add(1);
                    match frac_digits {
                        1..=6 => frac = frac * 10 + u64::from(b - b'0'),
                        7 => round_up = b >= b'5',
                        _ => {}
                    }
                }
                b'.' if !in_frac && int_digits > 0 => in_frac = true,
                _ => return Err(Malformed),
            }
        }
        if int_digits == 0 || (in_frac && frac_digits == 0) {
            return Err(Malformed);
        }
        for _ in frac_digits.min(6)..6 {
            frac *= 10;
        }
        int.checked_mul(1_000_000)
            .and_then(|x| x.checked_add(frac + u64::from(round_up)))
            .ok_or(Malformed)
    }
}

/// A position in one header value.
#[derive(Debug)]
struct Cursor<'a> {
    v: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.v.get(self.pos).copied()
    }

    /// Skips optional whitespace (spaces and tabs).
    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// The (possibly empty) token at the cursor.
    fn token(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        &self.v[start..self.pos]
    }

    /// A parameter value: a non-empty token or a quoted string.
    fn value(&mut self) -> Result<Value<'a>, Malformed> {
        if self.peek() != Some(b'"') {
            let t = self.token();
            return if t.is_empty() {
                Err(Malformed)
            } else {
                Ok(Value::Token(t))
            };
        }
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek() {
                None => return Err(Malformed),
                Some(b'"') => {
                    let inner = &self.v[start..self.pos];
                    self.pos += 1;
                    return Ok(Value::Quoted(inner));
                }
                Some(b'\\') => {
                    // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                    match self.v.get(self.pos + 1) {
                        Some(&b) if b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) => {}
                        Some(&b) if b >= 0x80 => {}
                        _ => return Err(Malformed),
                    }
                    self.pos += 2;
                }
                // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
                Some(b) if b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80 => {
                    self.pos += 1;
                }
                Some(_) => return Err(Malformed),
            }
        }
    }
}

/// A byte of an HTTP token (RFC 9110, 5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The (name, ns) pairs read and the dropped count; `None` when malformed.
    type Read = Option<(Vec<(String, u64)>, u32)>;

    /// What a set of header lines reads as.
    fn read(lines: &[&[u8]]) -> Read {
        let mut t = ServerTiming::new();
        for l in lines {
            t.add_header(l);
        }
        assert!(t.is_present());
        if t.is_malformed() {
            assert!(t.metrics().is_empty() && t.dropped() == 0 && t.total_ns() == 0);
            return None;
        }
        let m = t
            .metrics()
            .iter()
            .map(|m| (m.name().to_owned(), m.dur_ns()))
            .collect();
        Some((m, t.dropped()))
    }

    fn ok(pairs: &[(&str, u64)]) -> Read {
        Some((pairs.iter().map(|&(n, d)| (n.to_owned(), d)).collect(), 0))
    }

    #[test]
    fn header_values_read_as_the_grammar_says() {
        let seventeen: String = (0..17)
            .map(|i| format!("m{i};dur={i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let overlong = format!("{};dur=1", "n".repeat(MAX_NAME_BYTES + 1));
        let longest = format!("{};dur=1", "n".repeat(MAX_NAME_BYTES));
        let cases: Vec<(&str, Vec<&[u8]>, Read)> = vec![
            (
                "qserve's header",
                vec![b"wait;dur=0.412, service;dur=1.187, late;dur=0.003"],
                ok(&[("wait", 412_000), ("service", 1_187_000), ("late", 3_000)]),
            ),
            (
                "spaces and tabs around everything",
                vec![b"  db \t; dur = 53 ;desc=x ,\tapp;dur=47.2  "],
                ok(&[("db", 53_000_000), ("app", 47_200_000)]),
            ),
            (
                "quoted values, with escapes",
                vec![br#"cache;desc="Cache \"Read\", fast";dur="2.5""#],
                ok(&[("cache", 2_500_000)]),
            ),
            (
                "the first dur counts",
                vec![b"x;dur=1;dur=2;DUR=3"],
                ok(&[("x", 1_000_000)]),
            ),
            (
                "dur is compared without case",
                vec![b"x;Dur=4"],
                ok(&[("x", 4_000_000)]),
            ),
            (
                "several header lines all count",
                vec![b"a;dur=1", b"b;dur=2, c;dur=3"],
                ok(&[("a", 1_000_000), ("b", 2_000_000), ("c", 3_000_000)]),
            ),
            (
                "a metric without dur is ignored",
                vec![b"miss, edge;desc=\"x\", total;dur=9"],
                ok(&[("total", 9_000_000)]),
            ),
            (
                "unknown names and parameters are kept or ignored",
                vec![b"Custom-Metric.1;foo;bar=baz;dur=0"],
                ok(&[("Custom-Metric.1", 0)]),
            ),
            (
                "rounding at the 7th decimal, later ones ignored",
                vec![b"a;dur=0.0000005, b;dur=0.0000004999, c;dur=1.23456789"],
                ok(&[("a", 1), ("b", 0), ("c", 1_234_568)]),
            ),
            (
                "empty list elements",
                vec![b" , a;dur=1,, ", b""],
                ok(&[("a", 1_000_000)]),
            ),
            ("longest name", vec![longest.as_bytes()], {
                ok(&[(&"n".repeat(MAX_NAME_BYTES), 1_000_000)])
            }),
            (
                "non-ASCII inside a quoted description",
                vec!["a;desc=\"caf\u{e9}\";dur=1".as_bytes()],
                ok(&[("a", 1_000_000)]),
            ),
            ("dur=abc", vec![b"a;dur=abc"], None),
            ("dur=-1", vec![b"a;dur=-1"], None),
            ("dur=1e3", vec![b"a;dur=1e3"], None),
            ("dur=+1", vec![b"a;dur=+1"], None),
            ("dur=.5", vec![b"a;dur=.5"], None),
            ("dur=5.", vec![b"a;dur=5."], None),
            ("dur=1.2.3", vec![b"a;dur=1.2.3"], None),
            ("dur without a value", vec![b"a;dur"], None),
            ("dur= (empty)", vec![b"a;dur="], None),
            ("dur overflows", vec![b"a;dur=99999999999999999999"], None),
            ("empty name", vec![b";dur=1"], None),
            ("empty parameter name", vec![b"a;=1;dur=1"], None),
            ("overlong name", vec![overlong.as_bytes()], None),
            ("non-ASCII name", vec!["caf\u{e9};dur=1".as_bytes()], None),
            ("non-ASCII dur", vec!["a;dur=\"1\u{e9}\"".as_bytes()], None),
            ("unterminated quote", vec![b"a;desc=\"x;dur=1"], None),
            ("stray byte", vec![b"a;dur=1 b;dur=2"], None),
            (
                "one bad line spoils the answer",
                vec![b"a;dur=1", b"b;dur=x"],
                None,
            ),
        ];
        for (name, lines, want) in cases {
            assert_eq!(read(&lines), want, "{name}");
        }
        // 17 durations: 16 kept in order, one dropped.
        let (kept, dropped) = read(&[seventeen.as_bytes()]).expect("valid");
        assert_eq!(kept.len(), MAX_METRICS);
        assert_eq!(dropped, 1);
        assert_eq!(kept[15], ("m15".to_owned(), 15_000_000));
    }

    #[test]
    fn the_table_is_small() {
        // A connection allocates one when its answers carry the header (docs: about 800 bytes).
        let size = std::mem::size_of::<ServerTiming>();
        assert!(size <= 800, "ServerTiming is {size} bytes");
    }

    #[test]
    fn clear_forgets_and_totals_add() {
        let mut t = ServerTiming::new();
        assert!(!t.is_present());
        t.add_header(b"wait;dur=0.412, service;dur=1.187, late;dur=0.003");
        assert_eq!(t.total_ns(), 1_602_000);
        t.add_header(b"junk;dur=x");
        assert!(t.is_malformed());
        assert_eq!(t.total_ns(), 0);
        t.clear();
        assert!(!t.is_present() && !t.is_malformed() && t.metrics().is_empty());
        t.add_header(&[0xff, b';', b'd']);
        assert!(t.is_malformed());
    }
}
