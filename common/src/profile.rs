//! Load shapes: an arrival rate that changes over time, `--rate 200:30s,100..5k:60s`.
//!
//! A [`Profile`] is a sequence of segments, each a step (a constant rate for a duration,
//! `200:30s`) or a linear ramp (`100..5k:60s`: from 100/s to 5000/s over 60 s). Together they
//! give the intensity λ(t) of a non-homogeneous Poisson process over `[0, duration)` (0 outside),
//! its cumulative intensity Λ(t) = ∫₀ᵗ λ (the expected number of arrivals by t), and the inverse
//! Λ⁻¹ that turns *operational time* (where the process has unit rate) back into real time.
//!
//! # Grammar
//!
//! ```text
//! profile := entry ( "," entry )*
//! entry   := RATE ":" DUR                 a step: RATE for DUR
//!          | RATE ".." RATE ":" DUR       a linear ramp from the first rate to the second
//! ```
//!
//! Rates are as `--rate` takes them ([`parse_rate`]: `500`, `2.5k`, `1M`, `10k/s`), and may be 0
//! (no arrivals in that segment); durations as `--duration` takes them ([`parse_duration`]:
//! `250ms`, `30s`, `2m`, a bare number is seconds). Whitespace around the parts is ignored. A
//! profile is refused, with a reason naming the entry, when an entry is empty, lacks its `:DUR`
//! (a step or a ramp), has a zero duration, a negative, non-numeric or infinite rate, or a rate
//! above [`MAX_RATE`]; when the whole lasts more than [`MAX_DURATION`] or holds more than
//! [`MAX_SEGMENTS`] entries; and when every rate is 0 (it would send nothing).
//!
//! # Numerics
//!
//! In a segment starting at rate `a` with slope `k = (b − a)/d`, the operational time `w` spent
//! by offset `s` is `g(s) = a·s + k·s²/2`, and its inverse is the root of a quadratic, computed in
//! the form `s = 2w / (a + √(a² + 2kw))`, which neither cancels nor divides by zero when the ramp
//! starts at 0 (`s = √(2w/k)`) or is nearly flat (`s → w/a`). A falling ramp (`k < 0`) is solved
//! from its end, `s = d − 2v / (b + √(b² − 2kv))` with `v = g(d) − w`, where the same form again
//! adds only positive terms (solved from its start it would take the square root of a difference
//! that vanishes at the end of a ramp down to 0). Where λ is near 0 the inverse is ill-conditioned
//! by nature (a small change of Λ is a long time); everywhere else Λ⁻¹(Λ(t)) = t to rounding.
use std::fmt;
use std::time::Duration;

use crate::units::{UnitError, format_duration, parse_duration, parse_rate};

/// The largest rate of a segment, per second (as a plain `--rate`: beyond one machine).
pub const MAX_RATE: f64 = 1e8;
/// The longest profile (as every duration of a run: a year).
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);
/// The most entries of a profile.
pub const MAX_SEGMENTS: usize = 10_000;

/// One segment of a [`Profile`]: a rate going linearly from `from` to `to` over `duration` (a step
/// when the two are equal).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Rate at the start, per second (≥ 0).
    pub from: f64,
    /// Rate at the end, per second (≥ 0).
    pub to: f64,
    /// Length (> 0).
    pub duration: Duration,
}

impl Segment {
    /// A step: `rate` for `duration`.
    pub fn step(rate: f64, duration: Duration) -> Self {
        Segment {
            from: rate,
            to: rate,
            duration,
        }
    }

    /// A linear ramp from `from` to `to` over `duration`.
    pub fn ramp(from: f64, to: f64, duration: Duration) -> Self {
        Segment { from, to, duration }
    }

    /// Whether the rate changes along the segment.
    pub fn is_ramp(&self) -> bool {
        self.from != self.to
    }

    /// The expected arrivals in the segment, (from + to)/2 · duration.
    pub fn area(&self) -> f64 {
        0.5 * (self.from + self.to) * self.duration.as_secs_f64()
    }
}

/// A segment with what the integrals need, computed once.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Piece {
    seg: Segment,
    /// Start, ns since the start of the profile (exact: the sum of the durations before it).
    start_ns: u64,
    /// Its length, ns.
    dur_ns: u64,
    /// Start and length, seconds.
    start_s: f64,
    dur_s: f64,
    /// Slope of the rate, per second per second.
    slope: f64,
    /// Λ at its start.
    cum: f64,
    /// Λ over it.
    area: f64,
}

impl Piece {
    /// Operational time from the piece's start to offset `s` seconds into it.
    fn g(&self, s: f64) -> f64 {
        let s = s.clamp(0.0, self.dur_s);
        if s >= self.dur_s {
            return self.area;
        }
        self.seg.from * s + 0.5 * self.slope * s * s
    }

    /// The offset `s` (seconds, in `[0, dur_s]`) at which the operational time from the piece's
    /// start reaches `w`: the inverse of [`Piece::g`] (see the module docs for the numerics).
    fn g_inv(&self, w: f64) -> f64 {
        if w.is_nan() || w <= 0.0 {
            return 0.0;
        }
        if w >= self.area {
            return self.dur_s;
        }
        let (a, b, k) = (self.seg.from, self.seg.to, self.slope);
        let s = if k == 0.0 {
            w / a
        } else if k > 0.0 {
            // a ≥ 0, k > 0, w > 0: the denominator is positive.
            2.0 * w / (a + (a * a + 2.0 * k * w).sqrt())
        } else {
            // From the end: v > 0 is the operational time left, the rate rises from b going
            // backwards with slope −k > 0.
            let v = self.area - w;
            self.dur_s - 2.0 * v / (b + (b * b - 2.0 * k * v).sqrt())
        };
        s.clamp(0.0, self.dur_s)
    }

    /// The rate at offset `s` seconds.
    fn rate(&self, s: f64) -> f64 {
        (self.seg.from + self.slope * s.clamp(0.0, self.dur_s)).max(0.0)
    }
}

/// A rate profile: the intensity λ(t) of the arrivals over time (see the module docs).
///
/// Built by [`Profile::parse`] (or [`Profile::new`] from segments), which checks it; it then
/// holds at least one segment, every rate in `[0, MAX_RATE]`, every duration positive, a total
/// duration of at most [`MAX_DURATION`] (a profile lengthened by [`Profile::with_lead`] may be
/// longer) and a positive expected count [`Profile::total`].
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pieces: Vec<Piece>,
    duration: Duration,
    total: f64,
}

/// A rate of a profile: as [`parse_rate`], and 0 too.
fn parse_profile_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("a rate is missing".to_owned());
    }
    if t.starts_with('-') {
        return Err(format!("rate {t:?} is negative (rates are ≥ 0)"));
    }
    if is_zero(t) {
        return Ok(0.0);
    }
    let r = parse_rate(t).map_err(|e| format!("rate {t:?}: {}", e.reason))?;
    if r > MAX_RATE {
        return Err(format!(
            "rate {t:?} is above {MAX_RATE:e}/s, beyond what one machine can send"
        ));
    }
    Ok(r)
}

/// Whether `t` spells zero in the syntax of [`parse_rate`] (`0`, `0.0`, `0k`, `0/s`).
fn is_zero(t: &str) -> bool {
    let t = t.strip_suffix("/s").unwrap_or(t);
    let t = t.strip_suffix(['k', 'K', 'M', 'G']).unwrap_or(t);
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && t.parse::<f64>() == Ok(0.0)
}

/// The shortest of `5000`, `5k`, `0.005M` that reads back as exactly `r`.
fn fmt_rate(r: f64) -> String {
    let plain = format!("{r}");
    let mut best = plain;
    for (div, suffix) in [(1e3, "k"), (1e6, "M")] {
        if r == 0.0 {
            break;
        }
        let s = format!("{}{suffix}", r / div);
        if s.len() <= best.len() && parse_rate(&s) == Ok(r) {
            best = s;
        }
    }
    best
}

/// A duration that reads back exactly: the compact form when it does, else whole nanoseconds.
fn fmt_duration(d: Duration) -> String {
    let s = format_duration(d);
    if parse_duration(&s) == Ok(d) {
        s
    } else {
        format!("{}ns", d.as_nanos())
    }
}

impl Profile {
    /// A profile of `segments`, checked as the module docs say (the error is the reason).
    pub fn new(segments: Vec<Segment>) -> Result<Profile, String> {
        if segments.is_empty() {
            return Err("no segment".to_owned());
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(format!(
                "{} entries, more than the {MAX_SEGMENTS} a profile may have",
                segments.len()
            ));
        }
        let mut total = Duration::ZERO;
        for (i, s) in segments.iter().enumerate() {
            let n = i + 1;
            for r in [s.from, s.to] {
                if r.is_nan() || r < 0.0 {
                    return Err(format!("entry {n}: rate {r} is not a number ≥ 0"));
                }
                if r > MAX_RATE {
                    return Err(format!(
                        "entry {n}: rate {r} is above {MAX_RATE:e}/s, beyond what one machine can send"
                    ));
                }
            }
            if s.duration.is_zero() {
                return Err(format!(
                    "entry {n} lasts 0s: every entry needs a positive duration"
                ));
            }
            total = total
                .checked_add(s.duration)
                .filter(|t| *t <= MAX_DURATION)
                .ok_or_else(|| {
                    "the profile lasts more than a year (the longest a run may be)".to_owned()
                })?;
        }
        let p = Self::build(segments);
        if p.total <= 0.0 {
            return Err("every rate is 0: the profile would send nothing".to_owned());
        }
        Ok(p)
    }

    /// The pieces of `segments` (checked by the caller).
    fn build(segments: Vec<Segment>) -> Profile {
        let mut pieces = Vec::with_capacity(segments.len());
        let (mut start_ns, mut cum) = (0u64, 0.0f64);
        for seg in segments {
            let dur_ns = u64::try_from(seg.duration.as_nanos()).unwrap_or(u64::MAX);
            let dur_s = seg.duration.as_secs_f64();
            let area = seg.area();
            pieces.push(Piece {
                seg,
                start_ns,
                dur_ns,
                start_s: start_ns as f64 / 1e9,
                dur_s,
                slope: (seg.to - seg.from) / dur_s,
                cum,
                area,
            });
            start_ns = start_ns.saturating_add(dur_ns);
            cum += area;
        }
        Profile {
            pieces,
            duration: Duration::from_nanos(start_ns),
            total: cum,
        }
    }

    /// A constant `rate` (> 0) for `duration` (> 0): the profile `RATE:DUR`.
    pub fn constant(rate: f64, duration: Duration) -> Result<Profile, String> {
        Self::new(vec![Segment::step(rate, duration)])
    }

    /// Parses a profile (see the module docs for the grammar); a refusal names the entry and
    /// says what is wrong with it.
    pub fn parse(s: &str) -> Result<Profile, UnitError> {
        let err = |reason: String| UnitError::new("rate profile", s, reason);
        if s.trim().is_empty() {
            return Err(err(
                "empty (expected e.g. 200:30s,1000:30s or 100..5k:60s)".to_owned()
            ));
        }
        let count = s.split(',').count();
        if count > MAX_SEGMENTS {
            return Err(err(format!(
                "{count} entries, more than the {MAX_SEGMENTS} a profile may have"
            )));
        }
        let mut segments = Vec::with_capacity(count);
        for (i, entry) in s.split(',').enumerate() {
            let n = i + 1;
            let e = entry.trim();
            if e.is_empty() {
                return Err(err(format!(
                    "entry {n} is empty (two commas in a row, or one at an end)"
                )));
            }
            let at = |reason: String| err(format!("entry {n} ({e}): {reason}"));
            let (rates, dur) = match e.split_once(':') {
                Some((r, d)) => (r, Some(d)),
                None => (e, None),
            };
            let ramp = rates.split_once("..");
            let Some(dur) = dur else {
                return Err(at(if ramp.is_some() {
                    "a ramp without a duration: write FROM..TO:DUR, e.g. 100..5k:60s".to_owned()
                } else {
                    "no duration: write RATE:DUR, e.g. 200:30s".to_owned()
                }));
            };
            if dur.contains(':') {
                return Err(at(
                    "more than one ':' (an entry is RATE:DUR or FROM..TO:DUR)".to_owned(),
                ));
            }
            if dur.trim().is_empty() {
                return Err(at("the duration after ':' is missing".to_owned()));
            }
            let duration =
                parse_duration(dur).map_err(|x| at(format!("duration: {}", x.reason)))?;
            if duration.is_zero() {
                return Err(at(
                    "lasts 0s: every entry needs a positive duration".to_owned()
                ));
            }
            let (from, to) = match ramp {
                Some((a, b)) => {
                    if b.contains("..") {
                        return Err(at("a ramp has two rates, FROM..TO".to_owned()));
                    }
                    (parse_profile_rate(a), parse_profile_rate(b))
                }
                None => (parse_profile_rate(rates), parse_profile_rate(rates)),
            };
            segments.push(Segment {
                from: from.map_err(&at)?,
                to: to.map_err(&at)?,
                duration,
            });
        }
        Profile::new(segments).map_err(err)
    }

    /// The segments, in order.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = &Segment> + '_ {
        self.pieces.iter().map(|p| &p.seg)
    }

    /// The start of segment `i` since the start of the profile, if there is one.
    pub fn segment_start(&self, i: usize) -> Option<Duration> {
        self.pieces.get(i).map(|p| Duration::from_nanos(p.start_ns))
    }

    /// Total length.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The expected number of arrivals over the whole profile, Λ(end).
    pub fn total(&self) -> f64 {
        self.total
    }

    /// The mean rate over the whole profile, Λ(end)/duration.
    pub fn mean(&self) -> f64 {
        self.total / self.duration.as_secs_f64()
    }

    /// The highest rate anywhere in the profile.
    pub fn peak(&self) -> f64 {
        self.pieces
            .iter()
            .map(|p| p.seg.from.max(p.seg.to))
            .fold(0.0, f64::max)
    }

    /// The rate at the start, λ(0).
    pub fn first_rate(&self) -> f64 {
        self.pieces.first().map_or(0.0, |p| p.seg.from)
    }

    /// This profile after a step of `lead` at its first rate (nothing added for a zero `lead`).
    /// The lead may take the total past [`MAX_DURATION`].
    pub fn with_lead(&self, lead: Duration) -> Profile {
        if lead.is_zero() {
            return self.clone();
        }
        let mut segs = Vec::with_capacity(self.pieces.len() + 1);
        segs.push(Segment::step(self.first_rate(), lead));
        segs.extend(self.segments().copied());
        Self::build(segs)
    }

    /// The piece holding time `t_s` (the last piece for `t_s` at or past the end).
    fn piece_at(&self, t_s: f64) -> usize {
        self.pieces
            .partition_point(|p| p.start_s <= t_s)
            .saturating_sub(1)
    }

    /// The intensity λ(t) at `t_s` seconds since the start: right-continuous at the boundaries
    /// of segments, 0 before the start and from the end on.
    pub fn rate_at(&self, t_s: f64) -> f64 {
        if t_s.is_nan() || t_s < 0.0 || t_s >= self.duration.as_secs_f64() {
            return 0.0;
        }
        let p = &self.pieces[self.piece_at(t_s)];
        p.rate(t_s - p.start_s)
    }

    /// The cumulative intensity Λ(t) = ∫₀ᵗ λ at `t_s` seconds since the start (0 before the
    /// start, [`Profile::total`] from the end on).
    pub fn cumulative(&self, t_s: f64) -> f64 {
        if t_s.is_nan() || t_s <= 0.0 {
            return 0.0;
        }
        if t_s >= self.duration.as_secs_f64() {
            return self.total;
        }
        let p = &self.pieces[self.piece_at(t_s)];
        p.cum + p.g(t_s - p.start_s)
    }

    /// Λ at `t_ns` nanoseconds since the start, for callers whose times do not decrease:
    /// `cursor` (start it at 0) keeps the segment of the previous call, so a call costs O(1)
    /// amortized and allocates nothing. A time before the cursor's segment is still answered
    /// (by a search from the start).
    pub fn cumulative_at_ns(&self, t_ns: u64, cursor: &mut usize) -> f64 {
        let n = self.pieces.len();
        if *cursor >= n || self.pieces[*cursor].start_ns > t_ns {
            *cursor = 0;
        }
        while *cursor + 1 < n && self.pieces[*cursor + 1].start_ns <= t_ns {
            *cursor += 1;
        }
        let p = &self.pieces[*cursor];
        let off = t_ns.saturating_sub(p.start_ns);
        if off >= p.dur_ns {
            return p.cum + p.area;
        }
        p.cum + p.g(off as f64 / 1e9)
    }

    /// Λ⁻¹(u): the first time (seconds since the start) by which `u` arrivals are expected,
    /// `inf { t : Λ(t) ≥ u }`; 0 for `u ≤ 0`, `None` for `u` above [`Profile::total`].
    pub fn inverse(&self, u: f64) -> Option<f64> {
        if u.is_nan() || u > self.total {
            return None;
        }
        if u <= 0.0 {
            return Some(0.0);
        }
        let i = self
            .pieces
            .partition_point(|p| p.cum + p.area < u)
            .min(self.pieces.len() - 1);
        let p = &self.pieces[i];
        Some(p.start_s + p.g_inv(u - p.cum))
    }

    /// The mean intensity over `[a, b]` (seconds since the start): (Λ(b) − Λ(a))/(b − a), or
    /// λ(a) when the window is empty.
    pub fn mean_rate(&self, a: f64, b: f64) -> f64 {
        if b > a {
            (self.cumulative(b) - self.cumulative(a)) / (b - a)
        } else {
            self.rate_at(a)
        }
    }

    /// Moves (`piece`, `local`) — operational time `local` past the start of piece `piece` —
    /// forward into the piece that holds it: the first with a positive area and `local` within
    /// it. `false` when it lies past the end of the profile.
    pub(crate) fn settle(&self, piece: &mut usize, local: &mut f64) -> bool {
        while let Some(p) = self.pieces.get(*piece) {
            if p.area > 0.0 && *local <= p.area {
                return true;
            }
            *local -= p.area;
            *piece += 1;
        }
        false
    }

    /// Moves `piece` forward to the piece that holds the operational time `u` (since the
    /// start), and returns `u` relative to its start; `None` past the end.
    pub(crate) fn seek(&self, u: f64, piece: &mut usize) -> Option<f64> {
        while let Some(p) = self.pieces.get(*piece) {
            if p.area > 0.0 && u <= p.cum + p.area {
                return Some(u - p.cum);
            }
            *piece += 1;
        }
        None
    }

    /// The time (ns since the start) at which operational time `local` past the start of
    /// `piece` is reached (a piece [`Profile::settle`] or [`Profile::seek`] gave).
    pub(crate) fn time_ns(&self, piece: usize, local: f64) -> u64 {
        let Some(p) = self.pieces.get(piece) else {
            return self.duration.as_nanos() as u64;
        };
        let off = (p.g_inv(local) * 1e9).round() as u64;
        p.start_ns + off.min(p.dur_ns)
    }
}

impl std::str::FromStr for Profile {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::parse(s)
    }
}

impl fmt::Display for Profile {
    /// The entries as the grammar spells them, e.g. `200:30s,100..5k:1m`: each rate in its
    /// shortest exact form (`5k`, `1.5M`, `250`), each duration in one that reads back exactly,
    /// so the text parses back to the same profile.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.segments().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if s.is_ramp() {
                write!(f, "{}..{}", fmt_rate(s.from), fmt_rate(s.to))?;
            } else {
                f.write_str(&fmt_rate(s.from))?;
            }
            write!(f, ":{}", fmt_duration(s.duration))?;
        }
        Ok(())
    }
}

/// What `--rate` takes: a constant rate (`1000`, `10k`) or a profile (`200:30s,1k:30s`).
#[derive(Debug, Clone, PartialEq)]
pub enum RateSpec {
    /// A plain rate, per second.
    Constant(f64),
    /// A rate that changes over time.
    Shaped(Profile),
}

impl RateSpec {
    /// A profile when `s` has a `:`, `,` or `..` in it ([`Profile::parse`]), else a plain rate
    /// ([`parse_rate`]).
    pub fn parse(s: &str) -> Result<RateSpec, UnitError> {
        if s.contains([':', ',']) || s.contains("..") {
            Profile::parse(s).map(RateSpec::Shaped)
        } else {
            parse_rate(s).map(RateSpec::Constant)
        }
    }
}

impl std::str::FromStr for RateSpec {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RateSpec::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn parse_accepts() {
        let ms = Duration::from_millis;
        let table: &[(&str, &[Segment])] = &[
            ("200:30s", &[Segment::step(200.0, secs(30.0))]),
            (
                "200:30s,1000:30s",
                &[
                    Segment::step(200.0, secs(30.0)),
                    Segment::step(1000.0, secs(30.0)),
                ],
            ),
            ("100..5k:60s", &[Segment::ramp(100.0, 5000.0, secs(60.0))]),
            (
                "0..5k:30s,5k:60s",
                &[
                    Segment::ramp(0.0, 5000.0, secs(30.0)),
                    Segment::step(5000.0, secs(60.0)),
                ],
            ),
            (
                " 1.5M : 250ms , 2k..0 : 1.5 ",
                &[
                    Segment::step(1.5e6, ms(250)),
                    Segment::ramp(2000.0, 0.0, ms(1500)),
                ],
            ),
            (
                "10k/s:1m,0:2s,0k..1e3:1h",
                &[
                    Segment::step(1e4, secs(60.0)),
                    Segment::step(0.0, secs(2.0)),
                    Segment::ramp(0.0, 1000.0, secs(3600.0)),
                ],
            ),
            ("5..5:1s", &[Segment::step(5.0, secs(1.0))]),
            (
                "0.5:100us",
                &[Segment::step(0.5, Duration::from_micros(100))],
            ),
        ];
        for &(input, want) in table {
            let p = Profile::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            let got: Vec<Segment> = p.segments().copied().collect();
            assert_eq!(got, want, "{input:?}");
            assert_eq!(
                RateSpec::parse(input).expect("a profile"),
                RateSpec::Shaped(p)
            );
        }
        // Without `:`, `,` or `..` it is a plain rate, as before.
        assert_eq!(RateSpec::parse("1000"), Ok(RateSpec::Constant(1000.0)));
        assert_eq!(RateSpec::parse("10k/s"), Ok(RateSpec::Constant(1e4)));
        assert!(RateSpec::parse("0").is_err(), "a plain rate stays positive");
    }

    #[test]
    fn parse_rejects_with_reason() {
        let table: &[(&str, &str)] = &[
            ("", "empty"),
            (" ", "empty"),
            (",", "entry 1 is empty"),
            ("200:1s,", "entry 2 is empty"),
            ("200:1s,,300:1s", "entry 2 is empty"),
            (",200:1s", "entry 1 is empty"),
            ("200:1s,300", "entry 2 (300): no duration: write RATE:DUR"),
            ("100..5k", "a ramp without a duration"),
            (
                "200:1s,100..5k",
                "entry 2 (100..5k): a ramp without a duration",
            ),
            ("200:", "the duration after ':' is missing"),
            ("200:0s", "lasts 0s"),
            ("1..2:0", "lasts 0s"),
            ("200:1s:2s", "more than one ':'"),
            ("-5:1s", "negative"),
            ("5..-1:1s", "negative"),
            ("NaN:1s", "not a number"),
            ("nan..5:1s", "not a number"),
            ("inf:1s", "not a number"),
            ("1e400:1s", "too large"),
            ("2e8:1s", "beyond what one machine can send"),
            ("0..200M:1s", "beyond what one machine can send"),
            ("abc:1s", "not a number"),
            (":1s", "a rate is missing"),
            ("..5:1s", "a rate is missing"),
            ("1..2..3:1s", "a ramp has two rates"),
            ("200:1x", "duration"),
            ("200:-1s", "duration: must not be negative"),
            ("0:10s", "every rate is 0"),
            ("0:1s,0..0:2s", "every rate is 0"),
            ("1:5000h,1:5000h", "more than a year"),
            ("1:18446744073709551615s,1:1s", "more than a year"),
        ];
        for &(input, reason) in table {
            match Profile::parse(input) {
                Ok(p) => panic!("{input:?} accepted as {p}"),
                Err(e) => {
                    assert_eq!(e.what, "rate profile");
                    assert!(
                        e.reason.contains(reason),
                        "{input:?}: reason {:?}, wanted {reason:?}",
                        e.reason
                    );
                }
            }
        }
        let many = vec!["1:1s"; MAX_SEGMENTS + 1].join(",");
        assert!(Profile::parse(&many).is_err_and(|e| e.reason.contains("more than the 10000")),);
        assert!(Profile::parse(&vec!["1:1s"; MAX_SEGMENTS].join(",")).is_ok());
        // A plain rate that is not one is refused as a rate.
        assert!(RateSpec::parse("fast").is_err_and(|e| e.what == "rate"));
        // Segments built in code are held to the same rules.
        assert!(Profile::new(vec![]).is_err());
        assert!(Profile::new(vec![Segment::step(f64::NAN, secs(1.0))]).is_err());
        assert!(Profile::new(vec![Segment::step(1.0, Duration::ZERO)]).is_err());
        assert!(Profile::constant(f64::INFINITY, secs(1.0)).is_err());
    }

    #[test]
    fn display_parses_back_to_the_same_profile() {
        let table: &[(&str, &str)] = &[
            ("200:30s,1000:30s", "200:30s,1k:30s"),
            ("100..5000:60s", "100..5k:1m"),
            ("0..5k:30s, 5k:60s", "0..5k:30s,5k:1m"),
            ("1500000:0.25", "1.5M:250ms"),
            ("1234.5:1.0000001s", "1234.5:1000000100ns"),
            ("0.001..2.5k:90s", "0.001..2.5k:90s"),
            ("1e-7:1s", "0.0000001:1s"),
        ];
        for &(input, want) in table {
            let p = Profile::parse(input).expect("valid");
            let text = p.to_string();
            assert_eq!(text, want, "{input:?}");
            assert_eq!(Profile::parse(&text).expect("reads back"), p, "{input:?}");
        }
    }

    #[test]
    fn random_profiles_print_back_exactly() {
        use rand::RngExt;
        let mut r = crate::samplers::rng(9, 0);
        for _ in 0..2000 {
            let n = r.random_range(1..6usize);
            let segs: Vec<Segment> = (0..n)
                .map(|_| {
                    // Rates of every shape: whole, decimal, tiny, large, zero; either a step or
                    // a ramp; durations to the nanosecond.
                    let rate = |r: &mut crate::samplers::Rng| match r.random_range(0..5u32) {
                        0 => 0.0,
                        1 => f64::from(r.random_range(1..100_000u32)),
                        2 => r.random::<f64>() * 1e4,
                        3 => r.random::<f64>() * 1e-3,
                        _ => f64::from(r.random_range(1..100u32)) * 1e6,
                    };
                    let from = rate(&mut r);
                    let to = if r.random::<bool>() {
                        from
                    } else {
                        rate(&mut r)
                    };
                    let duration = Duration::from_nanos(r.random_range(1..10_000_000_000_000u64));
                    Segment::ramp(from, to, duration)
                })
                .collect();
            let Ok(p) = Profile::new(segs) else {
                continue;
            };
            let text = p.to_string();
            assert_eq!(Profile::parse(&text).as_ref(), Ok(&p), "{text}");
        }
    }

    /// A profile exercising every kind of segment: steps, rising ramps (from 0, nearly flat),
    /// falling ramps (to 0), a zero segment between them.
    fn mixed() -> Profile {
        Profile::parse("0..2k:5s,2k:2s,500:3s,0:1s,1000..1000.000001:60s,3k..0:4s,7:250ms")
            .expect("valid")
    }

    /// Λ by numerical integration of λ (Simpson on each segment, exact for the linear pieces).
    fn integral(p: &Profile, t: f64) -> f64 {
        let mut sum = 0.0;
        let mut start = 0.0;
        for s in p.segments() {
            let d = s.duration.as_secs_f64();
            let end = (start + d).min(t);
            if end > start {
                let (a, m) = (start, 0.5 * (start + end));
                // λ evaluated inside the segment, just off its boundaries (right-continuity).
                let at = |x: f64| s.from + (s.to - s.from) * ((x - start) / d);
                sum += (end - a) / 6.0 * (at(a) + 4.0 * at(m) + at(end));
            }
            start += d;
        }
        sum
    }

    #[test]
    fn cumulative_is_the_integral_of_the_rate() {
        let p = mixed();
        let end = p.duration().as_secs_f64();
        assert!((end - 75.25).abs() < 1e-12);
        let want_total = 5000.0 + 4000.0 + 1500.0 + 0.0 + 60_000.000_03 + 6000.0 + 1.75;
        assert!((p.total() - want_total).abs() < 1e-9 * want_total);
        assert_eq!(p.peak(), 3000.0);
        assert_eq!(p.first_rate(), 0.0);
        for i in 0..=3010 {
            let t = i as f64 * 0.025;
            let got = p.cumulative(t);
            let want = integral(&p, t.min(end));
            assert!(
                (got - want).abs() <= 1e-9 * want.max(1.0),
                "Λ({t}) = {got}, ∫λ = {want}"
            );
            // The ns form with a cursor agrees, times increasing.
        }
        let mut cursor = 0;
        for i in 0..=7600u64 {
            let t_ns = i * 10_000_000;
            let a = p.cumulative_at_ns(t_ns, &mut cursor);
            let b = p.cumulative(t_ns as f64 / 1e9);
            assert!((a - b).abs() <= 1e-9 * b.max(1.0), "{t_ns}: {a} vs {b}");
        }
        // Going back resets the cursor rather than answering wrong.
        assert_eq!(p.cumulative_at_ns(0, &mut cursor), 0.0);
        assert!((p.cumulative_at_ns(6_000_000_000, &mut cursor) - 7000.0).abs() < 1e-9);
        // Rates: right-continuous, 0 outside.
        assert_eq!(p.rate_at(-1.0), 0.0);
        assert_eq!(p.rate_at(0.0), 0.0);
        assert!((p.rate_at(2.5) - 1000.0).abs() < 1e-9);
        assert_eq!(p.rate_at(5.0), 2000.0);
        assert_eq!(p.rate_at(7.0), 500.0);
        assert_eq!(p.rate_at(10.5), 0.0);
        assert_eq!(p.rate_at(71.0), 3000.0);
        assert!((p.rate_at(74.0) - 750.0).abs() < 1e-9);
        assert_eq!(p.rate_at(75.0), 7.0);
        assert_eq!(p.rate_at(75.25), 0.0);
        assert_eq!(p.cumulative(1e9), p.total());
    }

    #[test]
    fn inverse_undoes_cumulative() {
        let p = mixed();
        let end = p.duration().as_secs_f64();
        // t → Λ(t) → t wherever the rate is not tiny. Where it is, Λ⁻¹ is ill-conditioned: an
        // error δ in Λ (a few ulps of Λ ≤ 8e4, whose ulp is 1.5e-11, so δ ≤ 1e-10) moves t by
        // δ/λ(t); the bound below is 1e-9 s plus that, with λ at least 1e-2 at the points tried
        // (Λ⁻¹ of a quadratic's root near λ = 0 is checked separately).
        let mut worst: f64 = 0.0;
        for i in 0..=75_250 {
            let t = i as f64 * 0.001;
            // The rate on both sides of t (Λ is flat to the left of a zero segment's end).
            let lam = p.rate_at(t).min(p.rate_at(t - 1e-12));
            if lam < 1e-2 {
                continue;
            }
            let back = p.inverse(p.cumulative(t)).expect("within the total");
            let tol = 1e-9 + 1e-10 / lam;
            worst = worst.max((back - t).abs());
            assert!((back - t).abs() <= tol, "Λ⁻¹(Λ({t})) = {back}");
        }
        assert!(worst < 1e-6, "{worst}");
        // u → Λ⁻¹(u) → u everywhere: Λ is well-conditioned.
        let total = p.total();
        for i in 0..=100_000 {
            let u = total * i as f64 / 100_000.0;
            let t = p.inverse(u).expect("within the total");
            assert!((0.0..=end).contains(&t));
            let back = p.cumulative(t);
            assert!((back - u).abs() <= 1e-11 * total, "Λ(Λ⁻¹({u})) = {back}");
        }
        assert_eq!(p.inverse(0.0), Some(0.0));
        assert_eq!(p.inverse(-1.0), Some(0.0));
        assert_eq!(p.inverse(total * (1.0 + 1e-12)), None);
        // The zero segment [10, 11) holds no arrival: the 10 500th is expected at its start.
        let at = p.inverse(10_500.0).expect("within");
        assert!((at - 10.0).abs() < 1e-9, "{at}");
        let next = p.inverse(10_500.0 + 1e-6).expect("within");
        assert!((next - 11.0).abs() < 2e-9, "{next}");
    }

    #[test]
    fn ramps_from_zero_and_nearly_flat_ramps_invert_exactly() {
        // From 0: Λ(t) = k t²/2, Λ⁻¹(u) = √(2u/k), with k = 2000/5; tiny u included.
        let p = Profile::parse("0..2k:5s").expect("valid");
        let k: f64 = 400.0;
        for u in [1e-300, 1e-30, 1e-12, 1e-6, 0.5, 1.0, 100.0, 4999.999] {
            let t = p.inverse(u).expect("within");
            let want = (2.0 * u / k).sqrt();
            assert!(
                (t - want).abs() <= 1e-14 * want,
                "Λ⁻¹({u}) = {t}, want {want}"
            );
        }
        // To 0, at the very end: Λ(5) − Λ(t) = k(5 − t)²/2.
        let p = Profile::parse("2k..0:5s").expect("valid");
        for v in [1e-12, 1e-6, 0.5, 100.0] {
            let t = p.inverse(p.total() - v).expect("within");
            let want = 5.0 - (2.0 * v / k).sqrt();
            // v itself carries the rounding of total − v (ulp(5000) ≈ 1e-12).
            let dv = 1e-12;
            let tol = 1e-14 + ((2.0 * (v + dv) / k).sqrt() - (2.0 * v / k).sqrt());
            assert!((t - want).abs() <= tol, "{v}: {t} vs {want}");
        }
        // Nearly flat: 1000 → 1000·(1 + 1e-12) over 60 s, slope k = 1.7e-11. The inverse is
        // u/1000 within k·t/2000 ≤ 5e-13 relative; and Λ of it is u to a few ulps, which the
        // textbook root (−a + √(a² + 2ku))/k would miss by far (√(1e6 + 4e-7) − 1000 keeps
        // three digits).
        let p = Profile::new(vec![Segment::ramp(
            1000.0,
            1000.0 * (1.0 + 1e-12),
            secs(60.0),
        )])
        .expect("valid");
        for u in [1e-9, 1.0, 12_345.678, 59_999.0] {
            let t = p.inverse(u).expect("within");
            assert!((t - u / 1000.0).abs() <= 1e-12 * (u / 1000.0), "{u}: {t}");
            assert!(
                (p.cumulative(t) - u).abs() <= 1e-14 * u.max(1.0),
                "{u}: {t}"
            );
        }
    }

    #[test]
    fn mean_rate_over_windows() {
        let p = Profile::parse("100:1s,400..800:1s,0:1s").expect("valid");
        let table: &[(f64, f64, f64)] = &[
            (0.0, 1.0, 100.0),
            (0.25, 0.5, 100.0),
            // The ramp: λ(t) = 400 + 400(t − 1); its mean over a window is λ at the middle.
            (1.0, 2.0, 600.0),
            (1.0, 1.25, 450.0),
            (1.5, 1.75, 650.0),
            // Across a boundary: (100·0.5 + 0.5·(400 + 600)/2)/1.
            (0.5, 1.5, 300.0),
            // Into the zero segment and past the end.
            (1.5, 2.5, 350.0),
            (2.0, 3.0, 0.0),
            (3.0, 4.0, 0.0),
            (0.0, 3.0, 700.0 / 3.0),
            // An empty window: the rate there.
            (1.5, 1.5, 600.0),
        ];
        for &(a, b, want) in table {
            let got = p.mean_rate(a, b);
            assert!(
                (got - want).abs() < 1e-9 * want.max(1.0),
                "[{a}, {b}]: {got}"
            );
        }
        assert!((p.mean() - 700.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_lead_prepends_the_first_rate() {
        let p = Profile::parse("100..300:2s,50:1s").expect("valid");
        let lead = p.with_lead(Duration::from_secs(3));
        assert_eq!(lead.duration(), Duration::from_secs(6));
        assert_eq!(lead.to_string(), "100:3s,100..300:2s,50:1s");
        // Shifted by the lead, the profile is the same.
        for i in 0..=30 {
            let t = i as f64 * 0.1;
            let shifted = lead.cumulative(3.0 + t) - lead.cumulative(3.0);
            assert!((shifted - p.cumulative(t)).abs() < 1e-9);
        }
        assert_eq!(p.with_lead(Duration::ZERO), p);
        assert_eq!(p.segment_start(1), Some(Duration::from_secs(2)));
        assert_eq!(p.segment_start(2), None);
    }
}
