//! The spin-then-poll policy of an event loop that must act at a given nanosecond.
//!
//! Waking from `epoll_wait` on a timer costs tens of microseconds on a typical machine (the
//! scheduler's wake-up latency), so a loop that sleeps until a deadline acts late by that much. With
//! a *spin margin* the loop instead sleeps on a timer armed at `deadline − spin` and covers the
//! rest awake: it keeps serving I/O with zero-timeout polls (so arrivals are stamped when they
//! come), and for a last *quiet* stretch, if it has one, spins on the clock alone (handling an
//! event takes a few microseconds and would make the deadline late). A loop may also have to be
//! awake at housekeeping times that need no margin, and may choose to never sleep at all (busy
//! polling, or work it already knows about).
//!
//! [`Wait::decide`] makes that decision from plain numbers, so both binaries' loops share it and
//! it is tested without a clock; [`crate::timer::Timer::prepare`] carries it out before a poll.
//!
//! ```
//! use queuelab_os::wait::{Action, Wait};
//!
//! let w = Wait { now: 1_000, deadline: Some(100_000), wake: None, spin_ns: 20_000,
//!                quiet_ns: 5_000, busy: false };
//! assert_eq!(w.decide(), Action::Sleep { arm_at: Some(80_000) });
//! assert_eq!(Wait { now: 90_000, ..w }.decide(), Action::Poll);
//! assert_eq!(Wait { now: 97_000, ..w }.decide(), Action::Spin);
//! assert_eq!(Wait { now: 100_000, ..w }.decide(), Action::Due);
//! ```

/// What a loop knows when it is about to wait (all times in nanoseconds on its clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// Now.
    pub now: u64,
    /// The next deadline to be met closely (a send, a departure), approached awake for the last
    /// `spin_ns`.
    pub deadline: Option<u64>,
    /// The next time the loop must merely be awake by (interval ends, timeout sweeps), without a
    /// spin margin.
    pub wake: Option<u64>,
    /// The spin margin before `deadline` (zero: sleep until the deadline itself).
    pub spin_ns: u64,
    /// The last stretch before `deadline` spent spinning on the clock alone, without polling for
    /// I/O (zero: none).
    pub quiet_ns: u64,
    /// Poll with a zero timeout whatever the times (busy polling, or work ready): the timer is not
    /// touched.
    pub busy: bool,
}

/// What to do before the next poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing is close: arm the timer at `arm_at` (`deadline − spin` or the wake time, whichever
    /// comes first), or disarm it when there is neither, and poll without a timeout.
    Sleep {
        /// When the timer should fire.
        arm_at: Option<u64>,
    },
    /// Within reach but not yet quiet: poll for I/O with a zero timeout.
    Poll,
    /// The deadline is within the quiet stretch: spin on the clock alone.
    Spin,
    /// The deadline or the wake time has come: act on it (polling only with a zero timeout).
    Due,
}

impl Wait {
    /// The policy: see the [module docs](self).
    pub fn decide(&self) -> Action {
        if self.busy {
            return Action::Poll;
        }
        let spun = self.deadline.map(|d| d.saturating_sub(self.spin_ns));
        let arm_at = match (spun, self.wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match arm_at {
            None => return Action::Sleep { arm_at: None },
            Some(t) if t > self.now => return Action::Sleep { arm_at: Some(t) },
            Some(_) => {}
        }
        let passed = |t: Option<u64>| t.is_some_and(|t| t <= self.now);
        if passed(self.deadline) || passed(self.wake) {
            Action::Due
        } else if self.deadline.is_some_and(|d| d - self.now <= self.quiet_ns) {
            // `d > now` here: a deadline not passed.
            Action::Spin
        } else {
            Action::Poll
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    const NONE: Option<u64> = None;

    /// (now, deadline, wake, spin, quiet, busy) and the decision wanted.
    type Row = (u64, Option<u64>, Option<u64>, u64, u64, bool, Action);

    #[test]
    fn decisions() {
        let sleep = |t: u64| Sleep { arm_at: Some(t) };
        #[rustfmt::skip]
        let table: &[Row] = &[
            // Nothing to wait for: disarm and sleep until I/O.
            (100, NONE, NONE, 0, 0, false, Sleep { arm_at: None }),
            (100, NONE, NONE, 50, 10, false, Sleep { arm_at: None }),
            // Busy polling overrides everything, even an empty schedule.
            (100, NONE, NONE, 0, 0, true, Poll),
            (100, Some(1_000_000), Some(2_000_000), 50, 10, true, Poll),
            (100, Some(50), NONE, 0, 0, true, Poll),
            // No spin margin: sleep until the deadline itself, act when it has come.
            (100, Some(1_000), NONE, 0, 0, false, sleep(1_000)),
            (100, Some(101), NONE, 0, 0, false, sleep(101)),
            (100, Some(100), NONE, 0, 0, false, Due),
            (100, Some(7), NONE, 0, 0, false, Due),
            // A spin margin: the timer is armed `spin` early...
            (100, Some(1_000), NONE, 300, 0, false, sleep(700)),
            (100, Some(401), NONE, 300, 0, false, sleep(101)),
            // ...and from `deadline − spin` on the loop polls (the margin's end included).
            (100, Some(400), NONE, 300, 0, false, Poll),
            (100, Some(101), NONE, 300, 0, false, Poll),
            (100, Some(100), NONE, 300, 0, false, Due),
            // A quiet stretch: the last `quiet` before the deadline spins on the clock alone.
            (100, Some(400), NONE, 300, 50, false, Poll),
            (100, Some(151), NONE, 300, 50, false, Poll),
            (100, Some(150), NONE, 300, 50, false, Spin),
            (100, Some(101), NONE, 300, 50, false, Spin),
            (100, Some(100), NONE, 300, 50, false, Due),
            // A quiet stretch longer than the margin: spin for the whole margin.
            (100, Some(400), NONE, 300, 1_000, false, Spin),
            (100, Some(401), NONE, 300, 1_000, false, sleep(101)),
            // A margin longer than the time since the clock's zero saturates (polls at once).
            (100, Some(200), NONE, 1_000, 0, false, Poll),
            // A wake time needs no margin: the timer is armed at it when it comes first...
            (100, Some(1_000), Some(500), 300, 0, false, sleep(500)),
            (100, Some(1_000), Some(800), 300, 0, false, sleep(700)),
            (100, NONE, Some(500), 300, 50, false, sleep(500)),
            // ...and once passed, it is due, though the deadline is not close.
            (100, NONE, Some(100), 300, 50, false, Due),
            (100, Some(1_000), Some(90), 300, 50, false, Due),
            // The deadline within reach and the wake time not passed: poll, or spin if quiet.
            (100, Some(300), Some(5_000), 300, 50, false, Poll),
            (100, Some(120), Some(5_000), 300, 50, false, Spin),
            // Far in the future, near the end of the clock's range.
            (100, Some(u64::MAX), NONE, 300, 50, false, sleep(u64::MAX - 300)),
            (u64::MAX - 10, Some(u64::MAX), NONE, 300, 50, false, Spin),
        ];
        for &(now, deadline, wake, spin_ns, quiet_ns, busy, want) in table {
            let w = Wait {
                now,
                deadline,
                wake,
                spin_ns,
                quiet_ns,
                busy,
            };
            assert_eq!(w.decide(), want, "{w:?}");
        }
    }

    #[test]
    fn sleeping_never_arms_past_a_deadline_or_wake_time() {
        // Over a grid of inputs: a sleep is armed in the future, no later than `deadline − spin`
        // and the wake time; anything else happens only when the sleep would have been now.
        let times = [0, 1, 99, 100, 101, 150, 400, 401, 1_000, u64::MAX];
        let opts = [None, Some(0), Some(100), Some(120), Some(400), Some(1_000)];
        for &deadline in &opts {
            for &wake in &opts {
                for spin_ns in [0, 50, 300] {
                    for quiet_ns in [0, 20, 500] {
                        for &now in &times {
                            let w = Wait {
                                now,
                                deadline,
                                wake,
                                spin_ns,
                                quiet_ns,
                                busy: false,
                            };
                            let limit = [deadline.map(|d| d.saturating_sub(spin_ns)), wake]
                                .into_iter()
                                .flatten()
                                .min();
                            match w.decide() {
                                Sleep { arm_at } => {
                                    assert_eq!(arm_at, limit, "{w:?}");
                                    assert!(arm_at.is_none_or(|t| t > now), "{w:?}");
                                }
                                _ => assert!(limit.is_some_and(|t| t <= now), "{w:?}"),
                            }
                        }
                    }
                }
            }
        }
    }
}
