//! A one-shot, non-blocking `CLOCK_MONOTONIC` timerfd armed at absolute times on a [`Clock`].
//!
//! Registered in a mio poll like a socket (it is a [`mio::event::Source`]), it wakes the loop at
//! a deadline to the microsecond, where mio's own timeout is whole milliseconds. Registration is
//! meant to be edge-triggered and the timer is never read: re-arming resets the expiration count,
//! so a loop spends one `timerfd_settime` per change of deadline and no other system call. After
//! the timer's event, [`Timer::fired`] forgets the armed time so that the next [`Timer::arm`]
//! really re-arms, even for the same time.
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};

use crate::clock::Clock;
use crate::wait::Action;

/// A non-blocking `CLOCK_MONOTONIC` timerfd armed at absolute times on a [`Clock`].
#[derive(Debug)]
pub struct Timer {
    fd: OwnedFd,
    clock: Clock,
    /// The raw monotonic time it is armed for, if armed and not seen to fire since.
    armed: Option<u64>,
}

/// An `itimerspec` that fires once at the raw monotonic time `raw_ns` (zero disarms).
fn once_at(raw_ns: u64) -> Itimerspec {
    Itimerspec {
        it_interval: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: Timespec {
            tv_sec: (raw_ns / 1_000_000_000) as i64,
            tv_nsec: (raw_ns % 1_000_000_000) as i64,
        },
    }
}

impl Timer {
    /// A new, disarmed timer whose times are nanoseconds on `clock`.
    pub fn new(clock: &Clock) -> io::Result<Self> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        Ok(Timer {
            fd,
            clock: *clock,
            armed: None,
        })
    }

    fn settime(&mut self, raw_ns: u64) -> io::Result<()> {
        match timerfd_settime(&self.fd, TimerfdTimerFlags::ABSTIME, &once_at(raw_ns)) {
            Ok(_) => Ok(()),
            Err(e) => {
                // The kernel's state is unknown: make the next arm or disarm call again.
                self.armed = None;
                Err(e.into())
            }
        }
    }

    /// Arms the timer to expire at `at_ns` on its clock, unless it already is. A time already
    /// passed expires at once.
    pub fn arm(&mut self, at_ns: u64) -> io::Result<()> {
        // A zero it_value would disarm: the earliest representable time expires immediately.
        let raw = self.clock.raw_ns(at_ns).max(1);
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

    /// Notes that the timer fired (its readiness event was seen) without reading it, so that the
    /// next [`Timer::arm`] or [`Timer::disarm`] calls `timerfd_settime`, which clears the
    /// expiration count. With edge-triggered polling an unread count does not repeat events.
    pub fn fired(&mut self) {
        self.armed = None;
    }

    /// Carries out a [`crate::wait`] decision before a poll and returns the poll's timeout:
    /// [`Action::Sleep`] arms the timer at its time (or disarms it when there is none) and sleeps
    /// without a timeout, until the timer or I/O wakes the poll; any other action leaves the timer
    /// as it is and polls with a zero timeout.
    pub fn prepare(&mut self, action: Action) -> io::Result<Option<Duration>> {
        match action {
            Action::Sleep { arm_at: Some(at) } => {
                self.arm(at)?;
                Ok(None)
            }
            Action::Sleep { arm_at: None } => {
                self.disarm()?;
                Ok(None)
            }
            Action::Due | Action::Poll | Action::Spin => Ok(Some(Duration::ZERO)),
        }
    }
}

impl AsFd for Timer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl mio::event::Source for Timer {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).deregister(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    const T: Token = Token(7);

    /// Polls until the timer's event, with a long timeout that only the timer can cut short.
    fn wait_for_timer(poll: &mut Poll, events: &mut Events) {
        loop {
            poll.poll(events, Some(Duration::from_secs(10)))
                .expect("poll");
            if events.iter().any(|e| e.token() == T) {
                return;
            }
        }
    }

    #[test]
    fn timer_wakes_a_poll_at_an_absolute_time() {
        let clock = Clock::new();
        let mut poll = Poll::new().expect("poll");
        let mut events = Events::with_capacity(4);
        let mut timer = Timer::new(&clock).expect("timerfd");
        poll.registry()
            .register(&mut timer, T, Interest::READABLE)
            .expect("register");
        for _ in 0..3 {
            let at = clock.now_ns() + 2_000_000;
            timer.arm(at).expect("arm");
            wait_for_timer(&mut poll, &mut events);
            timer.fired();
            assert!(clock.now_ns() >= at, "woke before the deadline");
        }
    }

    #[test]
    fn a_disarmed_timer_stays_quiet() {
        let clock = Clock::new();
        let mut poll = Poll::new().expect("poll");
        let mut events = Events::with_capacity(4);
        let mut timer = Timer::new(&clock).expect("timerfd");
        poll.registry()
            .register(&mut timer, T, Interest::READABLE)
            .expect("register");
        timer.arm(clock.now_ns() + 5_000_000).expect("arm");
        timer.disarm().expect("disarm");
        assert_eq!(timer.armed, None);
        poll.poll(&mut events, Some(Duration::from_millis(30)))
            .expect("poll");
        assert!(events.is_empty(), "a disarmed timer fired");
        // Armed again after a disarm, it fires.
        timer.arm(clock.now_ns() + 1_000_000).expect("arm");
        wait_for_timer(&mut poll, &mut events);
    }

    #[test]
    fn a_past_time_fires_at_once_and_rearming_is_free() {
        let clock = Clock::new();
        let mut poll = Poll::new().expect("poll");
        let mut events = Events::with_capacity(4);
        let mut timer = Timer::new(&clock).expect("timerfd");
        poll.registry()
            .register(&mut timer, T, Interest::READABLE)
            .expect("register");
        timer.arm(0).expect("arm at the origin");
        let armed = timer.armed;
        assert!(armed.is_some());
        timer.arm(0).expect("same time again");
        assert_eq!(timer.armed, armed);
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .expect("poll");
        assert!(events.iter().any(|e| e.token() == T), "a past time fires");
    }

    #[test]
    fn prepare_arms_for_sleep_and_polls_otherwise() {
        let clock = Clock::new();
        let mut timer = Timer::new(&clock).expect("timerfd");
        let at = clock.now_ns() + 1_000_000_000;
        let t = timer
            .prepare(Action::Sleep { arm_at: Some(at) })
            .expect("arm");
        assert_eq!(t, None);
        assert_eq!(timer.armed, Some(clock.raw_ns(at)));
        for a in [Action::Due, Action::Poll, Action::Spin] {
            assert_eq!(timer.prepare(a).expect("poll"), Some(Duration::ZERO));
            assert_eq!(
                timer.armed,
                Some(clock.raw_ns(at)),
                "{a:?} left the timer alone"
            );
        }
        assert_eq!(
            timer
                .prepare(Action::Sleep { arm_at: None })
                .expect("disarm"),
            None
        );
        assert_eq!(timer.armed, None);
    }
}
