//! Wall-clock (UTC) times of a run's measured window, and the union of several windows.
//!
//! A run times everything on `CLOCK_MONOTONIC`. To say *when* it measured, the system clock is
//! read once, next to the monotonic clock, when the run starts ([`WallClock::now`]); any
//! monotonic instant then maps to UTC by the difference ([`WallClock::rfc3339`]), so no request
//! reads the wall clock, and a step of the system clock during the run (NTP) moves nothing.
//! Results carry the window as RFC 3339 with microseconds (`2025-01-31T12:00:00.123456Z`).
//!
//! `qload merge` takes the union of the parts' windows ([`union`]): its measure is the time
//! during which at least one part measured, the basis of the merged rates.
use std::time::{Duration, SystemTime};

/// The system clock at one monotonic instant (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    mono_ns: u64,
    wall: SystemTime,
}

impl WallClock {
    /// Reads both clocks, once.
    pub fn now() -> Self {
        Self::at(queuelab_os::clock::now_ns(), SystemTime::now())
    }

    /// The wall clock read as `wall` at the monotonic instant `mono_ns`.
    pub fn at(mono_ns: u64, wall: SystemTime) -> Self {
        Self { mono_ns, wall }
    }

    /// The wall-clock time of the monotonic instant `mono_ns`.
    pub fn time(&self, mono_ns: u64) -> SystemTime {
        // Checked: a difference of a few hours never overflows a SystemTime; keep it total.
        let moved = if mono_ns >= self.mono_ns {
            self.wall
                .checked_add(Duration::from_nanos(mono_ns - self.mono_ns))
        } else {
            self.wall
                .checked_sub(Duration::from_nanos(self.mono_ns - mono_ns))
        };
        moved.unwrap_or(self.wall)
    }

    /// The instant `mono_ns` in RFC 3339, UTC, with microseconds.
    pub fn rfc3339(&self, mono_ns: u64) -> String {
        format_rfc3339(self.time(mono_ns))
    }
}

/// `t` in RFC 3339, UTC, with microseconds.
pub fn format_rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// Reads an RFC 3339 time (as [`format_rfc3339`] writes it; any number of decimals, `Z`).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(s.trim()).ok()
}

/// A measured window, in seconds after some common origin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Start.
    pub start: f64,
    /// End (not before the start).
    pub end: f64,
}

/// The union of windows: its measure and its separate stretches.
#[derive(Debug, Clone, PartialEq)]
pub struct Union {
    /// The time covered by at least one window, seconds.
    pub measure: f64,
    /// The indices of the windows in each separate stretch of time (overlapping or touching
    /// windows are in one stretch), in time order; each stretch's indices in order of start.
    pub stretches: Vec<Vec<usize>>,
}

/// The union of `windows` (see [`Union`]).
pub fn union(windows: &[Window]) -> Union {
    let mut order: Vec<usize> = (0..windows.len()).collect();
    order.sort_by(|&a, &b| windows[a].start.total_cmp(&windows[b].start));
    let mut measure = 0.0;
    let mut stretches: Vec<Vec<usize>> = Vec::new();
    let mut current: Option<(f64, f64)> = None;
    for i in order {
        let w = windows[i];
        match current {
            Some((s, e)) if w.start <= e => {
                current = Some((s, e.max(w.end)));
                if let Some(last) = stretches.last_mut() {
                    last.push(i);
                }
            }
            _ => {
                if let Some((s, e)) = current {
                    measure += e - s;
                }
                current = Some((w.start, w.end.max(w.start)));
                stretches.push(vec![i]);
            }
        }
    }
    if let Some((s, e)) = current {
        measure += e - s;
    }
    Union { measure, stretches }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_instants_map_to_utc_with_microseconds() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let c = WallClock::at(5_000_000_000, wall);
        assert_eq!(c.rfc3339(5_000_000_000), "2023-11-14T22:13:20.000000Z");
        assert_eq!(c.rfc3339(6_234_567_891), "2023-11-14T22:13:21.234567Z");
        assert_eq!(c.rfc3339(4_999_999_000), "2023-11-14T22:13:19.999999Z");
        let back = parse_rfc3339("2023-11-14T22:13:21.234567Z").expect("parses");
        assert_eq!(
            back.duration_since(wall).expect("later"),
            Duration::from_micros(1_234_567)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339(""), None);
    }

    #[test]
    fn the_union_measures_overlaps_once() {
        let w = |start: f64, end: f64| Window { start, end };
        // Together: one duration.
        let u = union(&[w(0.0, 10.0), w(0.2, 10.1)]);
        assert!((u.measure - 10.1).abs() < 1e-12);
        assert_eq!(u.stretches, vec![vec![0, 1]]);
        // One after the other: the sum.
        let u = union(&[w(20.0, 30.0), w(0.0, 10.0)]);
        assert!((u.measure - 20.0).abs() < 1e-12);
        assert_eq!(u.stretches, vec![vec![1], vec![0]]);
        // In part, and a window inside another.
        let u = union(&[w(0.0, 10.0), w(5.0, 15.0), w(6.0, 7.0), w(40.0, 41.0)]);
        assert!((u.measure - 16.0).abs() < 1e-12);
        assert_eq!(u.stretches, vec![vec![0, 1, 2], vec![3]]);
        assert_eq!(union(&[]).measure, 0.0);
    }
}
