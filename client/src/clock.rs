//! The monotonic clock in integer nanoseconds, and a timerfd that wakes the event loop at an absolute
//! time on that clock.
//!
//! All engine times are `CLOCK_MONOTONIC` nanoseconds (the clock behind `std::time::Instant`, read
//! through the vDSO without a system call). Keeping the raw value instead of an `Instant` lets a
//! deadline be handed to `timerfd_settime` as an absolute time (`TFD_TIMER_ABSTIME`), so a wake-up
//! is never shifted by the time spent computing it.
//!
//! Why a timerfd: mio's poll timeout is whole milliseconds (rounded up), far too coarse for an
//! arrival schedule with gaps of tens of microseconds. The timerfd is registered in the poll like a
//! socket; armed at `intended − spin`, it wakes the loop shortly before a send is due and the loop
//! busy-polls the rest. Registration is edge-triggered and re-arming resets the expiration count, so
//! the timer is never read: one `timerfd_settime` per change of deadline, no other system call.
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Now, in nanoseconds of `CLOCK_MONOTONIC`.
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux, so the
    // call cannot fail (and if it did, `ts` stays zeroed, which is still a valid value).
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A non-blocking `CLOCK_MONOTONIC` timerfd armed at absolute times.
#[derive(Debug)]
pub struct Timer {
    fd: OwnedFd,
    armed_at: Option<u64>,
}

impl Timer {
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
        // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd, armed_at: None })
    }

    /// Arms the timer to expire at `at_ns` (absolute, `CLOCK_MONOTONIC`), unless it already is.
    /// A time in the past expires at once.
    pub fn arm(&mut self, at_ns: u64) -> io::Result<()> {
        if self.armed_at == Some(at_ns) {
            return Ok(());
        }
        // A zero it_value would disarm: the earliest representable time expires immediately.
        let at = at_ns.max(1);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (at / 1_000_000_000) as libc::time_t,
                tv_nsec: (at % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: `self.fd` is a valid timerfd; `spec` is a valid itimerspec; the old value is not
        // requested (null is allowed).
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            self.armed_at = None;
            return Err(io::Error::last_os_error());
        }
        self.armed_at = Some(at_ns);
        Ok(())
    }

    /// Notes that the timer fired (its event was seen), so the next `arm` re-arms even at the
    /// same time.
    pub fn fired(&mut self) {
        self.armed_at = None;
    }
}

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_matches_instant() {
        let a = now_ns();
        let i = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = now_ns();
        let el = i.elapsed().as_nanos() as u64;
        assert!(b > a);
        // Both measure the same interval on the same clock; generous slack for a loaded machine.
        assert!((b - a).abs_diff(el) < 50_000_000, "{} vs {el}", b - a);
        assert!(b - a >= 5_000_000);
    }

    #[test]
    fn timer_wakes_a_poll_at_an_absolute_time() {
        use mio::unix::SourceFd;
        use mio::{Events, Interest, Poll, Token};
        let mut poll = Poll::new().expect("poll");
        let mut events = Events::with_capacity(4);
        let mut timer = Timer::new().expect("timerfd");
        poll.registry()
            .register(
                &mut SourceFd(&timer.as_raw_fd()),
                Token(7),
                Interest::READABLE,
            )
            .expect("register");
        for _ in 0..3 {
            let at = now_ns() + 2_000_000;
            timer.arm(at).expect("arm");
            // Wait with a long poll timeout: only the timer can end it early.
            let mut woke = false;
            while !woke {
                poll.poll(&mut events, Some(std::time::Duration::from_secs(10)))
                    .expect("poll");
                woke = events.iter().any(|e| e.token() == Token(7));
            }
            timer.fired();
            assert!(now_ns() >= at, "woke before the deadline");
        }
    }
}
