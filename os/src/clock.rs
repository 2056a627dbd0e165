//! One monotonic clock in integer nanoseconds.
//!
//! Every time in queuelab's event loops is a count of nanoseconds on a [`Clock`]: since the clock's
//! *origin*, the `CLOCK_MONOTONIC` reading (the clock behind `std::time::Instant`, read through the
//! vDSO without a system call) taken when the clock was made. Integer nanoseconds make deadline
//! arithmetic exact and cheap; keeping the origin lets a deadline be converted to the absolute raw
//! monotonic time a timerfd is armed at ([`Clock::raw_ns`]), with no second reading of "now".
//!
//! `qserve` makes one clock per server start, so its times (and its uptime) count from the start
//! and every I/O thread puts arrivals on the same time line. `qload` uses the process-wide clock
//! ([`Clock::process`], read by [`now_ns`]), so every worker thread and every run in the process
//! shares one time line without passing the clock around.
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::time::{ClockId, clock_gettime};

/// Raw `CLOCK_MONOTONIC` in nanoseconds (its zero is unspecified, in practice the boot).
#[inline]
pub fn monotonic_raw_ns() -> u64 {
    // CLOCK_MONOTONIC always exists on Linux: the call cannot fail.
    let ts = clock_gettime(ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Unix time in nanoseconds from the system's wall clock, if it is after 1970.
fn wall_ns() -> Option<u64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A monotonic clock counting nanoseconds from its origin, plus the wall-clock time at the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    origin_raw_ns: u64,
    wall_origin_ns: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// The process-wide clock, started by its first use.
static PROCESS: OnceLock<Clock> = OnceLock::new();

impl Clock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        Clock {
            origin_raw_ns: monotonic_raw_ns(),
            wall_origin_ns: wall_ns().unwrap_or(0),
        }
    }

    /// The process-wide clock: its zero is the first call of this function (or of [`now_ns`]).
    #[inline]
    pub fn process() -> Clock {
        *PROCESS.get_or_init(Clock::new)
    }

    /// Nanoseconds since the clock's zero.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        monotonic_raw_ns().saturating_sub(self.origin_raw_ns)
    }

    /// The raw `CLOCK_MONOTONIC` time of `ns` on this clock (what a timerfd is armed at).
    #[inline]
    pub fn raw_ns(&self, ns: u64) -> u64 {
        self.origin_raw_ns.saturating_add(ns)
    }

    /// Unix time in nanoseconds, read from the system's wall clock (for `Date` headers; it may
    /// jump, unlike [`Clock::now_ns`]). Before 1970 it reads as the wall time at the origin.
    pub fn wall_now_ns(&self) -> u64 {
        wall_ns().unwrap_or(self.wall_origin_ns)
    }
}

/// Now, in nanoseconds on the process-wide clock ([`Clock::process`]).
#[inline]
pub fn now_ns() -> u64 {
    Clock::process().now_ns()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn clock_is_monotonic_and_matches_instant() {
        let c = Clock::new();
        let a = c.now_ns();
        let i = Instant::now();
        std::thread::sleep(Duration::from_millis(5));
        let b = c.now_ns();
        let el = i.elapsed().as_nanos() as u64;
        assert!(b > a);
        assert!(b - a >= 5_000_000, "slept 5 ms, measured {} ns", b - a);
        // Both measure the same interval on the same clock; the two readings of each pair are
        // taken back to back, so they differ by scheduling delays only: generous 50 ms slack for a
        // loaded machine.
        assert!((b - a).abs_diff(el) < 50_000_000, "{} vs {el}", b - a);
    }

    #[test]
    fn a_clock_counts_from_its_origin() {
        let before = monotonic_raw_ns();
        let c = Clock::new();
        let after = monotonic_raw_ns();
        // The origin lies between the two raw readings around its creation.
        assert!(c.raw_ns(0) >= before && c.raw_ns(0) <= after);
        assert_eq!(c.raw_ns(1_234), c.raw_ns(0) + 1_234);
        // Shortly after its creation the clock reads little more than the creation took.
        assert!(c.now_ns() <= monotonic_raw_ns() - before);
        // A raw reading of "now" agrees with the clock's own reading within the time between them.
        let n = c.now_ns();
        let raw = monotonic_raw_ns();
        assert!(c.raw_ns(n) <= raw);
    }

    #[test]
    fn the_process_clock_is_one_clock() {
        let a = Clock::process();
        let t = now_ns();
        let b = Clock::process();
        assert_eq!(a, b, "every call sees the same origin");
        assert!(b.now_ns() >= t);
    }

    #[test]
    fn wall_clock_is_unix_time() {
        let c = Clock::new();
        let w = c.wall_now_ns();
        // 2020-01-01 and 2200-01-01 in Unix nanoseconds: any sane system clock lies between.
        assert!(w > 1_577_836_800 * 1_000_000_000, "{w}");
        assert!(w < 7_258_118_400 * 1_000_000_000, "{w}");
    }
}
