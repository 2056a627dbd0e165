//! Human units on the command line: rates and counts with SI suffixes (`10k`, `1.5M`),
//! durations with unit suffixes (`250us`, `10ms`, `30s`, `2m`, `1h`; a bare number is seconds).
//!
//! Suffixes:
//! - rates: `k`/`K` (10³), `M` (10⁶), `G` (10⁹), optionally followed by `/s`; the number may be
//!   a decimal or use exponent notation (`2.5k`, `1e5`). Lower-case `m` is rejected rather than
//!   read as "milli", which would silently turn `1m` into one request every 1000 seconds.
//! - counts: the same SI suffixes; the number is a plain decimal and the result must be a whole
//!   number (`1.5k` is 1500, `1.2345k` is rejected).
//! - durations: `ns`, `us` (also `µs` and `μs`), `ms`, `s`, `m`, `h`; no suffix means seconds.
//!
//! Counts and durations are computed in exact decimal integer arithmetic (no floating point),
//! so `0.1s` is exactly 100 ms and `1.5k` exactly 1500.
use std::time::Duration;

/// A value that could not be parsed; the message names the input and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: {reason}")]
pub struct UnitError {
    /// What kind of value was expected ("rate", "duration", "count").
    pub what: &'static str,
    /// The input as given.
    pub input: String,
    /// Why it was rejected (a fixed text, or one naming a detail, as a trace file's bad line).
    pub reason: std::borrow::Cow<'static, str>,
}

impl UnitError {
    /// An error for `input`, expected to be a `what`, rejected because of `reason`.
    pub fn new(
        what: &'static str,
        input: &str,
        reason: impl Into<std::borrow::Cow<'static, str>>,
    ) -> Self {
        UnitError {
            what,
            input: input.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The SI multiplier of a trailing suffix character, if it is one.
fn si_multiplier(c: char) -> Option<u64> {
    match c {
        'k' | 'K' => Some(1_000),
        'M' => Some(1_000_000),
        'G' => Some(1_000_000_000),
        _ => None,
    }
}

/// Splits an optional SI suffix off `s`: (number part, multiplier).
fn split_si(s: &str) -> (&str, u64) {
    match s.chars().last().and_then(si_multiplier) {
        Some(m) => (&s[..s.len() - 1], m),
        None => (s, 1),
    }
}

/// Parses a positive finite rate in events per second: `500`, `2.5k`, `1M`, `10k/s`.
pub fn parse_rate(s: &str) -> Result<f64, UnitError> {
    let err = |reason| UnitError::new("rate", s, reason);
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    if t.is_empty() {
        return Err(err("empty (expected a number such as 500, 2.5k or 1M)"));
    }
    if t.starts_with('-') {
        return Err(err("must be positive"));
    }
    let (num, mult) = split_si(t);
    if num.is_empty() {
        return Err(err("missing number before the suffix"));
    }
    if !num
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(err(
            "not a number (expected e.g. 500, 2.5k, 1M or 10k/s; suffixes k, M, G)",
        ));
    }
    let v: f64 = num.parse().map_err(|_| {
        err("not a number (expected e.g. 500, 2.5k, 1M or 10k/s; suffixes k, M, G)")
    })?;
    let v = v * mult as f64;
    if !v.is_finite() {
        return Err(err("too large"));
    }
    if v <= 0.0 {
        return Err(err("must be positive"));
    }
    Ok(v)
}

/// A non-negative decimal `int.frac` as an exact rational `mantissa / 10^scale`.
struct Decimal {
    mantissa: u128,
    scale: u32,
}

/// Why a decimal literal was rejected.
enum DecimalError {
    Empty,
    Negative,
    Junk,
    TooLong,
}

/// Parses `digits[.digits]` exactly (at least one digit, at most 25 digits in all).
fn parse_decimal(s: &str) -> Result<Decimal, DecimalError> {
    if s.is_empty() {
        return Err(DecimalError::Empty);
    }
    if s.starts_with('-') {
        return Err(DecimalError::Negative);
    }
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(DecimalError::Junk);
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::Junk);
    }
    // At most 25 digits: the mantissa is below 10^25, and its product with the largest multiplier
    // (one hour in ns, 3.6·10^12) stays below 10^38 < u128::MAX ≈ 3.4·10^38.
    if int.len() + frac.len() > 25 {
        return Err(DecimalError::TooLong);
    }
    let mut mantissa: u128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        mantissa = mantissa * 10 + u128::from(b - b'0');
    }
    Ok(Decimal {
        mantissa,
        scale: frac.len() as u32,
    })
}

/// Parses a non-negative integer count with an optional SI suffix: `1000`, `10k`, `2M`.
pub fn parse_count(s: &str) -> Result<u64, UnitError> {
    let err = |reason| UnitError::new("count", s, reason);
    let t = s.trim();
    let (num, mult) = split_si(t);
    let d = parse_decimal(num).map_err(|e| match e {
        DecimalError::Empty => err("empty (expected a whole number such as 1000 or 10k)"),
        DecimalError::Negative => err("must not be negative"),
        DecimalError::Junk => err("not a number (expected e.g. 1000, 10k or 2M)"),
        DecimalError::TooLong => err("too many digits"),
    })?;
    let scaled = d.mantissa * u128::from(mult);
    let div = 10u128.pow(d.scale);
    if scaled % div != 0 {
        return Err(err("not a whole number"));
    }
    u64::try_from(scaled / div).map_err(|_| err("too large"))
}

/// Parses a duration: `250ns`, `250us` (or `µs`), `10ms`, `30s`, `2m`, `1h`, a bare number is seconds.
///
/// Decimals are exact (`1.5s`, `0.25ms`); a value finer than a nanosecond is rounded to the nearest
/// nanosecond. Negative values, unknown units and values over `u64::MAX` seconds are rejected.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let err = |reason| UnitError::new("duration", s, reason);
    let t = s.trim();
    // Longest suffixes first: "ms" before "s", "ns" before "s".
    const UNITS: [(&str, u128); 9] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("", 1_000_000_000),
    ];
    let (num, unit_ns) = UNITS
        .iter()
        .find_map(|&(suffix, ns)| t.strip_suffix(suffix).map(|n| (n, ns)))
        .unwrap_or((t, 1_000_000_000));
    let d = parse_decimal(num).map_err(|e| match e {
        DecimalError::Empty if t.is_empty() => err("empty (expected e.g. 250us, 10ms, 30s, 2m)"),
        DecimalError::Empty => err("missing number before the unit"),
        DecimalError::Negative => err("must not be negative"),
        DecimalError::Junk => {
            err("not a duration (expected a number and one of ns, us, ms, s, m, h)")
        }
        DecimalError::TooLong => err("too many digits"),
    })?;
    let div = 10u128.pow(d.scale);
    let ns = (d.mantissa * unit_ns + div / 2) / div;
    let secs = u64::try_from(ns / 1_000_000_000).map_err(|_| err("too large"))?;
    Ok(Duration::new(secs, (ns % 1_000_000_000) as u32))
}

/// Formats a duration compactly for humans (`250us`, `1.5ms`, `30s`).
///
/// The unit is the largest of `ns`, `us`, `ms`, `s` that keeps the number at least 1, with at most
/// three decimals (rounded, trailing zeros dropped); whole minutes and hours print as `2m`, `1h`.
/// The output parses back with [`parse_duration`] (exactly, when no rounding was needed).
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    const HOUR: u128 = 3_600_000_000_000;
    const MINUTE: u128 = 60_000_000_000;
    if ns % HOUR == 0 {
        return format!("{}h", ns / HOUR);
    }
    if ns % MINUTE == 0 {
        return format!("{}m", ns / MINUTE);
    }
    let (unit_ns, suffix) = if ns < 1_000 {
        (1, "ns")
    } else if ns < 1_000_000 {
        (1_000, "us")
    } else if ns < 1_000_000_000 {
        (1_000_000, "ms")
    } else {
        (1_000_000_000, "s")
    };
    if unit_ns == 1 {
        return format!("{ns}ns");
    }
    // Three decimals of the unit, rounded half up, in integer thousandths.
    let milli_units = (ns * 1000 + unit_ns / 2) / unit_ns;
    let int = milli_units / 1000;
    let frac = milli_units % 1000;
    if frac == 0 {
        format!("{int}{suffix}")
    } else {
        let digits = format!("{frac:03}");
        format!("{int}.{}{suffix}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rate_accepts() {
        let table: &[(&str, f64)] = &[
            ("500", 500.0),
            ("2.5k", 2500.0),
            ("2.5K", 2500.0),
            ("1M", 1e6),
            ("1G", 1e9),
            ("10k/s", 10_000.0),
            ("0.5", 0.5),
            (" 7 ", 7.0),
            ("1e5", 1e5),
            ("1.5e3k", 1.5e6),
            ("120/s", 120.0),
        ];
        for &(input, want) in table {
            let got = parse_rate(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert!(
                (got - want).abs() <= 1e-12 * want,
                "{input:?}: {got} != {want}"
            );
        }
    }

    #[test]
    fn parse_rate_rejects_with_reason() {
        let table: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("/s", "empty"),
            ("0", "positive"),
            ("0k", "positive"),
            ("-5", "positive"),
            ("-0.1k", "positive"),
            ("NaN", "not a number"),
            ("nan", "not a number"),
            ("inf", "not a number"),
            ("infinity", "not a number"),
            ("1e400", "too large"),
            ("1e305G", "too large"),
            ("abc", "not a number"),
            ("10x", "not a number"),
            ("1m", "not a number"),
            ("k", "missing number"),
            ("1.2.3", "not a number"),
            ("1 000", "not a number"),
            ("10kk", "not a number"),
        ];
        for &(input, reason) in table {
            match parse_rate(input) {
                Ok(v) => panic!("{input:?} accepted as {v}"),
                Err(e) => {
                    assert_eq!(e.what, "rate");
                    assert_eq!(e.input, input);
                    assert!(
                        e.reason.contains(reason),
                        "{input:?}: reason {:?}",
                        e.reason
                    );
                    let msg = e.to_string();
                    assert!(msg.starts_with("invalid rate"), "{msg}");
                }
            }
        }
    }

    #[test]
    fn parse_count_table() {
        let ok: &[(&str, u64)] = &[
            ("0", 0),
            ("1000", 1000),
            ("10k", 10_000),
            ("10K", 10_000),
            ("2M", 2_000_000),
            ("1.5k", 1500),
            ("0.001k", 1),
            ("3G", 3_000_000_000),
            ("18446744073709551615", u64::MAX),
            (" 42 ", 42),
        ];
        for &(input, want) in ok {
            assert_eq!(parse_count(input), Ok(want), "{input:?}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("k", "empty"),
            ("-1", "negative"),
            ("1.5", "whole"),
            ("1.2345k", "whole"),
            ("18446744073709551616", "too large"),
            ("20000000000G", "too large"),
            ("1e3", "not a number"),
            ("abc", "not a number"),
            (".", "not a number"),
            ("1.2.3", "not a number"),
            ("10x", "not a number"),
            ("12345678901234567890123456", "too many digits"),
        ];
        for &(input, reason) in bad {
            match parse_count(input) {
                Ok(v) => panic!("{input:?} accepted as {v}"),
                Err(e) => {
                    assert_eq!(e.what, "count");
                    assert!(
                        e.reason.contains(reason),
                        "{input:?}: reason {:?}",
                        e.reason
                    );
                }
            }
        }
    }

    #[test]
    fn parse_duration_table() {
        let ok: &[(&str, Duration)] = &[
            ("250ns", Duration::from_nanos(250)),
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("250μs", Duration::from_micros(250)),
            ("10ms", Duration::from_millis(10)),
            ("30s", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("5", Duration::from_secs(5)),
            ("1.5s", Duration::from_millis(1500)),
            ("1.5", Duration::from_millis(1500)),
            ("0.1s", Duration::from_millis(100)),
            ("0.25ms", Duration::from_micros(250)),
            (".5s", Duration::from_millis(500)),
            ("2.", Duration::from_secs(2)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("1.5h", Duration::from_secs(5400)),
            ("0.0000000004s", Duration::ZERO),
            ("0.0000000005s", Duration::from_nanos(1)),
            (" 3ms ", Duration::from_millis(3)),
            ("18446744073709551615s", Duration::from_secs(u64::MAX)),
        ];
        for &(input, want) in ok {
            assert_eq!(parse_duration(input), Ok(want), "{input:?}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("ms", "missing number"),
            ("-1s", "negative"),
            ("-5", "negative"),
            ("10x", "not a duration"),
            ("1d", "not a duration"),
            ("abc", "not a duration"),
            ("1.2.3s", "not a duration"),
            ("1e3s", "not a duration"),
            ("inf", "not a duration"),
            ("NaN", "not a duration"),
            ("1 s", "not a duration"),
            ("10mss", "not a duration"),
            ("18446744073709551616s", "too large"),
            ("5124095576030432h", "too large"),
            ("0.00000000000000000000000001s", "too many digits"),
        ];
        for &(input, reason) in bad {
            match parse_duration(input) {
                Ok(v) => panic!("{input:?} accepted as {v:?}"),
                Err(e) => {
                    assert_eq!(e.what, "duration");
                    assert!(
                        e.reason.contains(reason),
                        "{input:?}: reason {:?}",
                        e.reason
                    );
                }
            }
        }
    }

    #[test]
    fn format_duration_table() {
        let table: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(999), "999ns"),
            (Duration::from_micros(250), "250us"),
            (Duration::from_nanos(1_500), "1.5us"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_nanos(1_234_567), "1.235ms"),
            (Duration::from_millis(10), "10ms"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_nanos(999_999_999), "1000ms"),
        ];
        for &(d, want) in table {
            assert_eq!(format_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn format_then_parse_round_trips_when_exact() {
        for ns in [
            1u64,
            7,
            999,
            1_000,
            1_500,
            250_000,
            10_000_000,
            1_500_000_000,
        ] {
            let d = Duration::from_nanos(ns);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{ns} ns");
        }
        for secs in [1u64, 30, 59, 60, 61, 120, 3600, 5400, 86_400] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{secs} s");
        }
    }
}
