//! Where a worker's due requests come from: its open-loop arrival process, or its users.
//!
//! - Open loop: the thread's own arrival process (Poisson, constant or uniform gaps) at its
//!   share of λ, due at absolute times `start + Σ gaps`; with a rate profile, the gaps are drawn
//!   in operational time and mapped through Λ⁻¹ (see `queuelab_common::samplers::Schedule`), and
//!   nothing is due once the profile has run out.
//! - Users (closed loop and `--max`): a heap of users, each due at the end of its think time
//!   (exponential with the configured mean; zero in `--max`), pushed again when its previous
//!   request ends.
//!
//! A [`Source`] owns the worker's RNG stream for the schedule, so that nothing else drawing
//! random numbers (e.g. the gap sample) changes the schedule, and counts the measured requests
//! against the thread's share of `--requests`.
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use queuelab_common::samplers::{Rng, Schedule, exp_sample};

use super::SourcePlan;

/// "No user": a request of the open-loop schedule.
pub(super) const NO_USER: u32 = u32::MAX;

#[derive(Debug)]
enum Kind {
    Open {
        schedule: Schedule,
        next: u64,
    },
    Users {
        heap: BinaryHeap<Reverse<(u64, u32)>>,
        think_s: f64,
    },
}

/// The arrival source of one worker (see the module docs).
#[derive(Debug)]
pub(super) struct Source {
    kind: Kind,
    rng: Rng,
    /// The common start of the schedules (absolute ns).
    start: u64,
    /// This thread's share of `--requests`.
    limit: Option<u64>,
    /// Measured requests issued so far.
    issued: u64,
}

impl Source {
    /// The source of `plan` from `start` (absolute ns), drawing from `rng`, for at most `limit`
    /// measured requests.
    pub fn new(plan: SourcePlan, start: u64, mut rng: Rng, limit: Option<u64>) -> Self {
        let kind = match plan {
            SourcePlan::Open { rate, arrival } => {
                let mut schedule = Schedule::new(arrival, rate);
                let next = start + schedule.next_ns(&mut rng);
                Kind::Open { schedule, next }
            }
            SourcePlan::Shaped {
                profile,
                share,
                arrival,
            } => {
                let mut schedule = Schedule::shaped(arrival, profile, share)
                    .expect("the plan gives each thread a positive share of the profile");
                let next = at(start, schedule.next_ns(&mut rng));
                Kind::Open { schedule, next }
            }
            SourcePlan::Users { users, think_s } => {
                let mut heap = BinaryHeap::with_capacity(users as usize);
                for u in 0..users {
                    heap.push(Reverse((start + think_ns(think_s, &mut rng), u)));
                }
                Kind::Users { heap, think_s }
            }
        };
        Self {
            kind,
            rng,
            start,
            limit,
            issued: 0,
        }
    }

    /// When the next request is due (absolute ns), if one is.
    pub fn peek(&self) -> Option<u64> {
        match &self.kind {
            Kind::Open { next, .. } => (*next != Schedule::END).then_some(*next),
            Kind::Users { heap, .. } => heap.peek().map(|r| r.0.0),
        }
    }

    /// Takes the next due request: its intended time and its user ([`NO_USER`] in open loop).
    /// The caller checked [`Source::peek`].
    pub fn pop(&mut self) -> Option<(u64, u32)> {
        match &mut self.kind {
            Kind::Open { schedule, next } => {
                let due = *next;
                if due == Schedule::END {
                    return None;
                }
                *next = at(self.start, schedule.next_ns(&mut self.rng));
                Some((due, NO_USER))
            }
            Kind::Users { heap, .. } => heap.pop().map(|r| r.0),
        }
    }

    /// A user's request ended at `now`: it thinks, then is due again.
    pub fn user_done(&mut self, user: u32, now: u64) {
        if let Kind::Users { heap, think_s } = &mut self.kind {
            debug_assert!(heap.len() < heap.capacity(), "a user is in the heap twice");
            heap.push(Reverse((now + think_ns(*think_s, &mut self.rng), user)));
        }
    }

    /// Issuing stopped: users waiting to think are not due any more.
    pub fn stop(&mut self) {
        if let Kind::Users { heap, .. } = &mut self.kind {
            heap.clear();
        }
    }

    /// Counts a measured request issued.
    pub fn count_measured(&mut self) {
        self.issued += 1;
    }

    /// Whether the thread's share of `--requests` has been issued.
    pub fn share_done(&self) -> bool {
        self.limit.is_some_and(|limit| self.issued >= limit)
    }
}

/// `start + offset`, or [`Schedule::END`] for a schedule that has run out.
fn at(start: u64, offset: u64) -> u64 {
    if offset == Schedule::END {
        Schedule::END
    } else {
        start.saturating_add(offset)
    }
}

fn think_ns(think_s: f64, rng: &mut Rng) -> u64 {
    if think_s <= 0.0 {
        0
    } else {
        (exp_sample(think_s, rng) * 1e9).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use queuelab_common::samplers::{ArrivalKind, rng};

    #[test]
    fn open_loop_yields_its_schedule_from_the_start_and_counts_the_share() {
        let plan = SourcePlan::Open {
            rate: 1000.0,
            arrival: ArrivalKind::Constant,
        };
        let start = 5_000;
        let mut s = Source::new(plan, start, rng(1, 0), Some(3));
        // Constant gaps of 1 ms from the start; a user is never due again in open loop.
        for k in 1..=4u64 {
            assert_eq!(s.peek(), Some(start + k * 1_000_000));
            assert_eq!(s.pop(), Some((start + k * 1_000_000, NO_USER)));
            s.user_done(NO_USER, 0);
        }
        assert!(!s.share_done());
        for _ in 0..3 {
            s.count_measured();
        }
        assert!(s.share_done());
        // Stopping leaves an open-loop schedule as it is (the loop stops asking).
        s.stop();
        assert!(s.peek().is_some());
    }

    #[test]
    fn a_shaped_source_follows_its_profile_and_runs_out() {
        use queuelab_common::profile::Profile;
        use std::sync::Arc;
        // Constant gaps in operational time at half the rate: the n-th arrival where Λ = 2n.
        // Λ: 1000/s for 1 s, nothing for 1 s, then a ramp 1000 → 0 over 1 s (500 more).
        let profile = Arc::new(Profile::parse("1k:1s,0:1s,1k..0:1s").expect("valid"));
        let plan = SourcePlan::Shaped {
            profile: Arc::clone(&profile),
            share: 0.5,
            arrival: ArrivalKind::Constant,
        };
        let start = 7_000;
        let mut s = Source::new(plan, start, rng(1, 0), None);
        let mut n = 0u64;
        while let Some(due) = s.peek() {
            n += 1;
            assert_eq!(s.pop(), Some((due, NO_USER)));
            let want = profile.inverse(2.0 * n as f64).expect("within") * 1e9;
            assert!(((due - start) as f64 - want).abs() <= 1.0, "{n}: {due}");
            // Nothing is due in the zero segment.
            assert!(!(start + 1_000_000_000 + 1..start + 2_000_000_000).contains(&due));
        }
        // Λ = 1500 at share 1/2: 750 arrivals, the 500th at the end of the first second.
        assert_eq!(n, 750);
        assert_eq!(s.pop(), None, "ran out");
        assert_eq!(s.peek(), None);

        // Poisson: the same times as the sampler's from the same stream, offset by the start.
        let poisson = SourcePlan::Shaped {
            profile: Arc::clone(&profile),
            share: 1.0,
            arrival: ArrivalKind::Poisson,
        };
        let mut s = Source::new(poisson, start, rng(4, 2), None);
        let mut sched = Schedule::shaped(ArrivalKind::Poisson, profile, 1.0).expect("valid");
        let mut r = rng(4, 2);
        loop {
            let t = sched.next_ns(&mut r);
            if t == Schedule::END {
                assert_eq!(s.pop(), None);
                break;
            }
            assert_eq!(s.pop(), Some((start + t, NO_USER)));
        }
    }

    #[test]
    fn users_are_due_again_after_thinking_and_not_after_the_stop() {
        let plan = SourcePlan::Users {
            users: 3,
            think_s: 0.0,
        };
        let mut s = Source::new(plan, 100, rng(1, 0), None);
        // No think time: every user is due at the start, each once.
        let mut users = Vec::new();
        for _ in 0..3 {
            let (due, user) = s.pop().expect("a user is due");
            assert_eq!(due, 100);
            users.push(user);
        }
        users.sort_unstable();
        assert_eq!(users, [0, 1, 2]);
        assert_eq!(s.peek(), None);
        assert!(!s.share_done(), "no --requests: never done");
        s.user_done(1, 7_000);
        assert_eq!(s.pop(), Some((7_000, 1)));
        s.user_done(2, 8_000);
        s.stop();
        assert_eq!(s.peek(), None);
    }

    #[test]
    fn think_times_are_exponential_with_the_configured_mean() {
        let plan = SourcePlan::Users {
            users: 1,
            think_s: 0.001,
        };
        let mut s = Source::new(plan, 0, rng(3, 0), None);
        let n = 20_000u64;
        let mut sum = 0.0;
        let mut now = 0;
        for _ in 0..n {
            let (due, user) = s.pop().expect("the user is due");
            sum += (due - now) as f64;
            now = due;
            s.user_done(user, now);
        }
        // Exp(1 ms): the mean of n draws has sd 1 ms / sqrt(n) = 7.1 µs; 5 sd is 35 µs.
        let mean = sum / n as f64;
        assert!((mean - 1e6).abs() < 5.0 * 1e6 / (n as f64).sqrt(), "{mean}");
    }
}
