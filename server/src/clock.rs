//! Time: one monotonic clock for every thread, and a `timerfd` to sleep until a wheel deadline.
//!
//! All queue times are nanoseconds since the server's start on `CLOCK_MONOTONIC` (the clock behind
//! `std::time::Instant` on Linux), read with `clock_gettime`, so that every I/O thread puts its
//! arrivals on the same time line and a deadline can be armed on a `timerfd` as an *absolute*
//! monotonic time (`TFD_TIMER_ABSTIME`): no error from converting "now" twice.
//!
//! The timer wheel counts ticks of [`TICK_NS`]; a departure at `d` ns is due at tick
//! `ceil(d / TICK_NS)`, so it never fires early, and at most one tick (250 ns) late from rounding.
//! mio's own poll timeout is whole milliseconds, which is why the deadline is a `timerfd` registered
//! in the poll instead.
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds per timer-wheel tick.
pub const TICK_NS: u64 = 250;

/// Raw `CLOCK_MONOTONIC` in nanoseconds.
fn monotonic_raw_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is always available on Linux,
    // so the call cannot fail (it is served by the vDSO without a system call).
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The server's clock: nanoseconds since its start on the monotonic clock, plus the wall-clock
/// time at the start (for the `Date` header).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin_raw_ns: u64,
    wall_origin_ns: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Clock {
            origin_raw_ns: monotonic_raw_ns(),
            wall_origin_ns: wall,
        }
    }

    /// Nanoseconds since the clock's zero.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        monotonic_raw_ns().saturating_sub(self.origin_raw_ns)
    }

    /// The raw monotonic time of `ns` on this clock (for `timerfd`).
    fn raw(&self, ns: u64) -> u64 {
        self.origin_raw_ns.saturating_add(ns)
    }

    /// Unix time in nanoseconds, read from the system's wall clock.
    pub fn wall_now_ns(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(self.wall_origin_ns, |d| d.as_nanos() as u64)
    }
}

/// The first wheel tick at or after `ns`.
#[inline]
pub fn tick_ceil(ns: u64) -> u64 {
    ns.div_ceil(TICK_NS)
}

/// The last wheel tick at or before `ns`.
#[inline]
pub fn tick_floor(ns: u64) -> u64 {
    ns / TICK_NS
}

/// A one-shot, non-blocking `timerfd` on `CLOCK_MONOTONIC`, armed at absolute times.
#[derive(Debug)]
pub struct TimerFd {
    fd: OwnedFd,
    /// The raw monotonic time it is armed for, if armed and not yet read as expired.
    armed: Option<u64>,
}

impl TimerFd {
    /// A new, disarmed timer.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain system call with constant flags; the result is checked below.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly created, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(TimerFd { fd, armed: None })
    }

    fn settime(&mut self, raw_ns: u64) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (raw_ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (raw_ns % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: `self.fd` is a valid timerfd; `spec` is a valid itimerspec that outlives the
        // call; the old-value pointer may be null.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Arms the timer to expire at `ns` on `clock` (a time already passed expires at once).
    /// Re-arming for the same time is free.
    pub fn arm_at(&mut self, clock: &Clock, ns: u64) -> io::Result<()> {
        // A zero it_value would disarm; the raw monotonic time is never zero after boot.
        let raw = clock.raw(ns).max(1);
        if self.armed == Some(raw) {
            return Ok(());
        }
        self.settime(raw)?;
        self.armed = Some(raw);
        Ok(())
    }

    /// Disarms the timer (free when it is not armed).
    pub fn disarm(&mut self) -> io::Result<()> {
        if self.armed.is_none() {
            return Ok(());
        }
        self.settime(0)?;
        self.armed = None;
        Ok(())
    }

    /// Notes that the timer fired (after a readable event) without reading it: the next
    /// [`TimerFd::arm_at`] or [`TimerFd::disarm`] then always calls `timerfd_settime`, which
    /// clears the expiration count, so one `read` per wake-up is saved. With edge-triggered
    /// polling an unread count does not repeat events.
    pub fn expired(&mut self) {
        self.armed = None;
    }

    /// Reads (and so clears) the expiration count after a readable event; the timer is then
    /// considered disarmed. Spurious wake-ups read nothing and change nothing.
    pub fn drain(&mut self) {
        let mut count = 0u64;
        // SAFETY: reading 8 bytes into a valid, writable, 8-byte u64 from a valid timerfd.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut count as *mut u64).cast::<libc::c_void>(),
                std::mem::size_of::<u64>(),
            )
        };
        if n == std::mem::size_of::<u64>() as isize {
            self.armed = None;
        }
    }
}

impl AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_deadlines_up_and_now_down() {
        assert_eq!(tick_ceil(0), 0);
        assert_eq!(tick_ceil(1), 1);
        assert_eq!(tick_ceil(TICK_NS), 1);
        assert_eq!(tick_ceil(TICK_NS + 1), 2);
        assert_eq!(tick_floor(TICK_NS - 1), 0);
        assert_eq!(tick_floor(TICK_NS), 1);
    }

    #[test]
    fn clock_is_monotonic() {
        let c = Clock::new();
        let a = c.now_ns();
        let b = c.now_ns();
        assert!(b >= a);
    }

    #[test]
    fn timerfd_expires_and_reads_once() {
        let clock = Clock::new();
        let mut t = TimerFd::new().expect("timerfd_create");
        t.arm_at(&clock, clock.now_ns() + 1_000_000).expect("arm");
        std::thread::sleep(std::time::Duration::from_millis(20));
        t.drain();
        assert!(t.armed.is_none(), "an expired timer reads its count");
        // Nothing left to read: a second drain is a harmless no-op.
        t.drain();
        t.disarm().expect("disarm");
    }
}
