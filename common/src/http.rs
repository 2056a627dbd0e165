//! HTTP limits and canned bytes that `qserve` and `qload` agree on.
//!
//! [`http_date`] formats the `Date` header (IMF-fixdate, RFC 9110 §5.6.7) from Unix seconds with
//! integer arithmetic only: days since 1970-01-01 become a proleptic Gregorian date through the
//! "civil from days" computation on 400-year eras (146 097 days each, starting on March 1 so the
//! leap day is the last day of a year).

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
///
/// Example: 0 → `Thu, 01 Jan 1970 00:00:00 GMT`. Years past 9999 (after Unix time 253402300799)
/// cannot be written in four digits; such times are clamped to `Fri, 31 Dec 9999 23:59:59 GMT`.
pub fn http_date(secs: u64, out: &mut [u8; 29]) {
    const WEEKDAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    const MAX_SECS: u64 = 253_402_300_799;
    let secs = secs.min(MAX_SECS);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let weekday = WEEKDAYS[(days % 7) as usize];

    fn two(out: &mut [u8], v: u64) {
        out[0] = b'0' + (v / 10) as u8;
        out[1] = b'0' + (v % 10) as u8;
    }
    out[0..3].copy_from_slice(weekday);
    out[3..5].copy_from_slice(b", ");
    two(&mut out[5..7], day);
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    out[11] = b' ';
    two(&mut out[12..14], year / 100);
    two(&mut out[14..16], year % 100);
    out[16] = b' ';
    two(&mut out[17..19], rem / 3600);
    out[19] = b':';
    two(&mut out[20..22], rem / 60 % 60);
    out[22] = b':';
    two(&mut out[23..25], rem % 60);
    out[25..29].copy_from_slice(b" GMT");
}

/// The proleptic Gregorian date (year, month 1..=12, day 1..=31) of `days` after 1970-01-01.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so each 400-year era starts on March 1 and its leap days
    // fall at the ends of years. 1970-01-01 is day 719 468 of that count.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    // Year of era 0..=399: remove the leap days (one per 4 years, less one per 100, plus one
    // per 400 years, the last being day 146096).
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year, 0..=365
    let mp = (5 * doy + 2) / 153; // March-based month 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(secs: u64) -> String {
        let mut out = [0u8; 29];
        http_date(secs, &mut out);
        String::from_utf8(out.to_vec()).expect("http_date writes ASCII")
    }

    #[test]
    fn http_date_known_dates() {
        let table: &[(u64, &str)] = &[
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (951_868_799, "Tue, 29 Feb 2000 23:59:59 GMT"),
            (951_868_800, "Wed, 01 Mar 2000 00:00:00 GMT"),
            (1_234_567_890, "Fri, 13 Feb 2009 23:31:30 GMT"),
            (2_147_483_647, "Tue, 19 Jan 2038 03:14:07 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
            (4_107_456_000, "Sun, 28 Feb 2100 00:00:00 GMT"),
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (u64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for &(secs, want) in table {
            assert_eq!(date(secs), want, "{secs}");
        }
    }

    /// Walks day by day from 1970 to 2400 with a naive calendar and compares every date.
    #[test]
    fn civil_from_days_matches_naive_calendar() {
        let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for days in 0..(430 * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let len = match m {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
