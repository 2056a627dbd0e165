//! The simulator against hand-computed sequences (every discipline, one and two servers, with a
//! capacity), against invariants of work-conserving queues on long random sequences, and against
//! the closed forms of queueing theory.
//!
//! Statistical tolerances: an [`Estimate`] of R = 20 replications has the half-width
//! t₀.₉₇₅(19)·s/√R, and (the replication values being independent and close to normal)
//! (value − truth)/(s/√R) follows Student's t with 19 degrees of freedom. So
//! |value − truth| ≤ K·half_width with K = t_{1−5·10⁻⁷}(19)/t₀.₉₇₅(19) = 7.0691/2.0930 = 3.3775
//! fails with probability 10⁻⁶ for a correct program; [`K`] rounds it up. A percentile also
//! carries the histogram's resolution (its value is the top of a bucket at most 0.1% wide) and
//! the O(1/n) bias of a sample quantile (about 10⁻⁴ relative at n = 20 000 for the 99th
//! percentile of an exponential): 0.2% of the truth is added for those.
use queuelab_common::model::{Classes, Discipline, Model, Servers};
use queuelab_common::samplers::{ServiceKind, rng};
use queuelab_common::sim::{
    Customer, Estimate, Fate, SimOptions, replay, simulate_closed, simulate_open,
};
use queuelab_common::stats;
use queuelab_common::theory;
use rand::RngExt;
use rand_distr::{Distribution, Exp1};

use Fate::{Blocked, Departed as D};

const ALL: [Discipline; 5] = [
    Discipline::Fcfs,
    Discipline::Lcfs,
    Discipline::Priority,
    Discipline::PriorityPreemptive,
    Discipline::Ps,
];

/// See the module docs: the 1 − 10⁻⁶ multiple of a 95% half-width over 20 replications.
const K: f64 = 3.38;

/// The model of a replay: its servers and discipline (μ and the service are not used).
fn model(d: Discipline, servers: Servers) -> Model {
    Model::new(1000.0, servers).with_discipline(d)
}

/// Customers from `(arrival, service, class)`.
fn customers(spec: &[(u64, u64, u8)]) -> Vec<Customer> {
    spec.iter()
        .map(|&(arrival_ns, service_ns, class)| Customer {
            arrival_ns,
            service_ns,
            class,
        })
        .collect()
}

fn run(d: Discipline, c: u32, limit: usize, spec: &[(u64, u64, u8)]) -> Vec<Fate> {
    replay(&model(d, Servers::Finite(c)), &customers(spec), limit)
}

const NO_LIMIT: usize = usize::MAX;

#[test]
fn fcfs_by_hand() {
    // c = 1: A 0–10, B waits to 10–15, C 15–16, D arrives to an idle server 20–24.
    let s = [(0, 10, 0), (2, 5, 0), (3, 1, 0), (20, 4, 0)];
    assert_eq!(
        run(Discipline::Fcfs, 1, NO_LIMIT, &s),
        [D(10), D(15), D(16), D(24)]
    );
    // c = 1, K = 1: A leaves at 10, the instant B arrives; the departure comes first, so B finds
    // the system empty and is served 10–13.
    let s = [(0, 10, 0), (10, 3, 0)];
    assert_eq!(run(Discipline::Fcfs, 1, 1, &s), [D(10), D(13)]);
    // c = 1, K = 2: C finds A and B present and is blocked; D arrives as A leaves (first), finds
    // only B and waits for it: B 10–20, D 20–21.
    let s = [(0, 10, 0), (1, 10, 0), (2, 1, 0), (10, 1, 0)];
    assert_eq!(
        run(Discipline::Fcfs, 1, 2, &s),
        [D(10), D(20), Blocked, D(21)]
    );
    // c = 2: A 0–10 and B 1–4 on the two servers; C, D, E wait. B's server takes C (the
    // oldest) 4–9, then D 9–10; at 10 A and D leave together and one server takes E 10–12.
    let s = [(0, 10, 0), (1, 3, 0), (2, 5, 0), (3, 1, 0), (4, 2, 0)];
    assert_eq!(
        run(Discipline::Fcfs, 2, NO_LIMIT, &s),
        [D(10), D(4), D(9), D(10), D(12)]
    );
    // c = 2, K = 3: D finds A, B, C present and is blocked; E arrives as B leaves (first), so it
    // is admitted; C started at 4 (to 9), E waits and runs 9–11.
    assert_eq!(
        run(Discipline::Fcfs, 2, 3, &s),
        [D(10), D(4), D(9), Blocked, D(11)]
    );
    // Zero work: A leaves at 0, before B (arriving at 0) is counted against K = 1.
    let s = [(0, 0, 0), (0, 3, 0)];
    assert_eq!(run(Discipline::Fcfs, 1, 1, &s), [D(0), D(3)]);
}

#[test]
fn lcfs_by_hand() {
    // c = 1: A 0–10; at 10 B, C, D wait and the latest, D, runs 10–11, then C 11–14; E arrives
    // at 12 and, the latest waiting at 14, runs 14–15; B last 15–17.
    let s = [(0, 10, 0), (1, 2, 0), (2, 3, 0), (3, 1, 0), (12, 1, 0)];
    assert_eq!(
        run(Discipline::Lcfs, 1, NO_LIMIT, &s),
        [D(10), D(17), D(14), D(11), D(15)]
    );
    // The departure at 5 comes before C's arrival at 5: the free server takes B (the latest
    // waiting then), C waits: B 5–6, C 6–7.
    let s = [(0, 5, 0), (1, 1, 0), (5, 1, 0)];
    assert_eq!(run(Discipline::Lcfs, 1, NO_LIMIT, &s), [D(5), D(6), D(7)]);
    // c = 2: A 0–10 and B 0–4 in service; C, D, E wait. At 4 the latest, E, runs 4–9; at 9 D
    // 9–10; at 10 A and D leave and one server takes C 10–11.
    let s = [(0, 10, 0), (0, 4, 0), (1, 1, 0), (2, 1, 0), (3, 5, 0)];
    assert_eq!(
        run(Discipline::Lcfs, 2, NO_LIMIT, &s),
        [D(10), D(4), D(11), D(10), D(9)]
    );
    // c = 2, K = 4: E finds four present and is blocked; at 4 the latest waiting is D (4–5),
    // then C 5–6.
    assert_eq!(
        run(Discipline::Lcfs, 2, 4, &s),
        [D(10), D(4), D(6), D(5), Blocked]
    );
}

#[test]
fn priority_by_hand() {
    // c = 1: A (class 1) 0–10 is not preempted; waiting at 10: B(1), C(0), D(2), E(0). The
    // oldest of the lowest class number goes first: C 10–13, E 13–14, B 14–16, D 16–17.
    let s = [(0, 10, 1), (1, 2, 1), (2, 3, 0), (3, 1, 2), (4, 1, 0)];
    assert_eq!(
        run(Discipline::Priority, 1, NO_LIMIT, &s),
        [D(10), D(16), D(13), D(17), D(14)]
    );
    // c = 2, K = 5: A, B 0–10; C(2), D(0), E(1) wait; F finds five present and is blocked. At 10
    // both servers free: D 10–11 and E 10–11; then C 11–12.
    let s = [
        (0, 10, 1),
        (0, 10, 1),
        (1, 1, 2),
        (2, 1, 0),
        (3, 1, 1),
        (4, 1, 0),
    ];
    assert_eq!(
        run(Discipline::Priority, 2, 5, &s),
        [D(10), D(10), D(12), D(11), D(11), Blocked]
    );
    // One class: priority is FCFS.
    let s = [(0, 10, 0), (1, 3, 0), (2, 5, 0), (3, 1, 0), (4, 2, 0)];
    assert_eq!(
        run(Discipline::Priority, 2, NO_LIMIT, &s),
        run(Discipline::Fcfs, 2, NO_LIMIT, &s)
    );
}

#[test]
fn preemptive_priority_by_hand() {
    // c = 1: A (class 1) runs 0–2 and is preempted by B (class 0) with 8 left; B 2–5. C (class
    // 0) does not outrank B (same class) and waits, as does D (class 2). At 5: C 5–7, then A
    // resumes 7–15, D 15–16; E arrives at 20 to an idle server: 20–22.
    let s = [(0, 10, 1), (2, 3, 0), (3, 2, 0), (4, 1, 2), (20, 2, 1)];
    assert_eq!(
        run(Discipline::PriorityPreemptive, 1, NO_LIMIT, &s),
        [D(15), D(5), D(7), D(16), D(22)]
    );
    // Nested: A (2) 0–1, 9 left; B (1) 1–2, 9 left; C (0) 2–4; then B 4–13, A 13–22.
    let s = [(0, 10, 2), (1, 10, 1), (2, 2, 0)];
    assert_eq!(
        run(Discipline::PriorityPreemptive, 1, NO_LIMIT, &s),
        [D(22), D(13), D(4)]
    );
    // The preempted customer resumes before one of its class that came after it: A (1) runs
    // 0–2 with B (1) waiting; C (0) preempts A (8 left) and runs 2–5; then A 5–13, B 13–15.
    let s = [(0, 10, 1), (1, 2, 1), (2, 3, 0)];
    assert_eq!(
        run(Discipline::PriorityPreemptive, 1, NO_LIMIT, &s),
        [D(13), D(15), D(5)]
    );
    // A leaves at 5, before B's arrival at 5 could preempt it.
    let s = [(0, 5, 1), (5, 1, 0)];
    assert_eq!(
        run(Discipline::PriorityPreemptive, 1, NO_LIMIT, &s),
        [D(5), D(6)]
    );
    // c = 2: A (1) from 0 and B (2) from 1 in service. C (0) at 2 preempts the lowest-ranked, B
    // (done 1, 9 left), and runs 2–6. D (0) at 3 preempts A (done 3, 7 left), 3–5. E (1) at 4
    // does not outrank C or D and waits behind A in class 1. At 5 the best waiting is A (class 1,
    // earlier than E): 5–12. At 6 E runs 6–7, at 7 B resumes 7–16.
    let s = [(0, 10, 1), (1, 10, 2), (2, 4, 0), (3, 2, 0), (4, 1, 1)];
    assert_eq!(
        run(Discipline::PriorityPreemptive, 2, NO_LIMIT, &s),
        [D(12), D(16), D(6), D(5), D(7)]
    );
    // c = 1, K = 2: B preempts A at 1 (9 left); C finds two present and is blocked; B leaves
    // at 3 and A resumes 3–12.
    let s = [(0, 10, 1), (1, 2, 0), (2, 1, 0)];
    assert_eq!(
        run(Discipline::PriorityPreemptive, 1, 2, &s),
        [D(12), D(3), Blocked]
    );
}

#[test]
fn processor_sharing_by_hand() {
    // c = 1: A alone 0–1 (3 left). From 1, A and B at rate 1/2: by 2 A has 2.5 left, B 1.5.
    // From 2, three at rate 1/3: C (1) is done first, 3 time units later, at 5; A 1.5, B 0.5
    // left. Two at rate 1/2: B done at 6; A alone, 1 left, done at 7.
    let s = [(0, 4, 0), (1, 2, 0), (2, 1, 0)];
    assert_eq!(run(Discipline::Ps, 1, NO_LIMIT, &s), [D(7), D(6), D(5)]);
    // Fractional times, rounded: A, B, C (1000 each) at rate 1/3 from 0; at 1000 each has 2000/3
    // left and D arrives: four at rate 1/4, A, B, C done 8000/3 later, at 3666.67 → 3667; D has
    // received 2000/3 and finishes its last 1000/3 alone at rate 1: at 4000.
    let s = [(0, 1000, 0), (0, 1000, 0), (0, 1000, 0), (1000, 1000, 0)];
    assert_eq!(
        run(Discipline::Ps, 1, NO_LIMIT, &s),
        [D(3667), D(3667), D(3667), D(4000)]
    );
    // c = 2: A, B, C (4000 each) at rate 2/3; by 3000 each has 2000 left and D (1000) arrives:
    // four at rate 1/2, D done at 5000 (A, B, C then 1000 left); three at rate 2/3: 1500 more,
    // at 6500.
    let s = [(0, 4000, 0), (0, 4000, 0), (0, 4000, 0), (3000, 1000, 0)];
    assert_eq!(
        run(Discipline::Ps, 2, NO_LIMIT, &s),
        [D(6500), D(6500), D(6500), D(5000)]
    );
    // c = 2 with at most two present: each served at rate 1, as if alone.
    let s = [(0, 5, 0), (1, 2, 0)];
    assert_eq!(run(Discipline::Ps, 2, NO_LIMIT, &s), [D(5), D(3)]);
    // c = 1, K = 2: A and B at rate 1/2 both leave at 8; C is blocked; D arrives at 8 after the
    // departures and is alone: 8–9.
    let s = [(0, 4, 0), (0, 4, 0), (1, 1, 0), (8, 1, 0)];
    assert_eq!(run(Discipline::Ps, 1, 2, &s), [D(8), D(8), Blocked, D(9)]);
}

#[test]
fn infinite_servers_are_a_pure_delay() {
    let s = [(0, 5, 1), (1, 1, 0), (1, 10, 2), (3, 0, 0)];
    for d in ALL {
        let m = model(d, Servers::Infinite);
        assert_eq!(
            replay(&m, &customers(&s), NO_LIMIT),
            [D(5), D(2), D(11), D(3)],
            "{d}"
        );
        // K = 2: C finds A and B present; D arrives after B left (at 2).
        assert_eq!(
            replay(&m, &customers(&s), 2),
            [D(5), D(2), Blocked, D(3)],
            "{d}"
        );
    }
}

#[test]
fn nothing_is_admitted_with_a_limit_of_zero() {
    for d in ALL {
        assert_eq!(run(d, 1, 0, &[(0, 1, 0), (5, 1, 0)]), [Blocked, Blocked]);
    }
    assert_eq!(run(Discipline::Fcfs, 1, NO_LIMIT, &[]), []);
}

/// `n` customers with Poisson arrivals of mean gap `gap_ns`, exponential work of mean `mean_ns`
/// (or exactly `mean_ns` if `constant`), classes uniform over `0..classes`.
fn random_customers(
    seed: u64,
    n: usize,
    gap_ns: f64,
    mean_ns: f64,
    constant: bool,
    classes: u8,
) -> Vec<Customer> {
    let mut r = rng(seed, 0);
    let mut t = 0.0f64;
    (0..n)
        .map(|_| {
            let e: f64 = Exp1.sample(&mut r);
            t += e * gap_ns;
            let w: f64 = Exp1.sample(&mut r);
            Customer {
                arrival_ns: t as u64,
                service_ns: if constant {
                    mean_ns as u64
                } else {
                    (w * mean_ns) as u64
                },
                class: r.random_range(0..classes),
            }
        })
        .collect()
}

fn departures(fates: &[Fate]) -> Vec<u64> {
    fates
        .iter()
        .map(|f| match f {
            D(t) => *t,
            Blocked => panic!("nobody is blocked without a limit"),
        })
        .collect()
}

#[test]
fn single_server_disciplines_conserve_work() {
    // ρ = 0.9 so that busy periods are long and hold many customers of every class.
    let cs = random_customers(7, 10_000, 1.0e6, 0.9e6, false, 3);
    let m1 = |d| model(d, Servers::Finite(1));
    let fcfs = departures(&replay(&m1(Discipline::Fcfs), &cs, NO_LIMIT));
    // FCFS is Lindley's recursion d_i = max(a_i, d_{i−1}) + S_i; the busy periods follow, an
    // arrival at the very end of one starting the next.
    let mut prev = 0;
    let mut periods: Vec<(u64, u64, Vec<usize>)> = Vec::new();
    for (i, c) in cs.iter().enumerate() {
        let d = c.arrival_ns.max(prev) + c.service_ns;
        assert_eq!(fcfs[i], d, "FCFS customer {i}");
        match periods.last_mut() {
            Some((_, end, members)) if c.arrival_ns < *end => {
                *end = d;
                members.push(i);
            }
            _ => periods.push((c.arrival_ns, d, vec![i])),
        }
        prev = d;
    }
    assert!(
        periods.len() > 100 && periods.iter().any(|p| p.2.len() > 50),
        "busy periods: {}",
        periods.len()
    );
    // Any work-conserving discipline keeps the server busy exactly when someone is present:
    // the same busy periods, each customer leaving within the one it arrived in, the last at its
    // end, and none before receiving its whole work.
    for d in ALL {
        let dep = departures(&replay(&m1(d), &cs, NO_LIMIT));
        for (start, end, members) in &periods {
            let last = members.iter().map(|&i| dep[i]).max();
            assert_eq!(last, Some(*end), "{d}: busy period from {start}");
            for &i in members {
                assert!(
                    dep[i] >= cs[i].arrival_ns + cs[i].service_ns && dep[i] <= *end,
                    "{d}: customer {i} leaves at {} in the busy period {start}–{end}",
                    dep[i]
                );
            }
        }
    }
}

#[test]
fn non_preemptive_disciplines_share_departures_with_constant_work() {
    // With equal work, which customer a free server takes does not change when servers free
    // up: FCFS, LCFS and priority (non-preemptive) have the same multiset of departure times,
    // with one server or two.
    for (c, gap) in [(1, 1.0e6), (2, 0.55e6)] {
        let cs = random_customers(11, 10_000, gap, 1.0e6, true, 3);
        let sorted = |d| {
            let mut v = departures(&replay(&model(d, Servers::Finite(c)), &cs, NO_LIMIT));
            v.sort_unstable();
            v
        };
        let fcfs = sorted(Discipline::Fcfs);
        assert_eq!(sorted(Discipline::Lcfs), fcfs, "LCFS, c = {c}");
        assert_eq!(sorted(Discipline::Priority), fcfs, "priority, c = {c}");
        // And the orders differ indeed (a queue formed).
        let lcfs = departures(&replay(
            &model(Discipline::Lcfs, Servers::Finite(c)),
            &cs,
            NO_LIMIT,
        ));
        let fcfs_order = departures(&replay(
            &model(Discipline::Fcfs, Servers::Finite(c)),
            &cs,
            NO_LIMIT,
        ));
        assert_ne!(lcfs, fcfs_order, "c = {c}");
    }
}

#[test]
fn preemptive_priority_classes_ignore_the_classes_below() {
    // Under preemptive priority, classes 0..=k are served as if the lower classes did not exist:
    // class 0 alone is FCFS, classes 0 and 1 are the same preemptive queue without class 2.
    for c in [1, 2] {
        let cs = random_customers(13, 10_000, 1.0e6, 0.9e6 * f64::from(c), false, 3);
        let pr = model(Discipline::PriorityPreemptive, Servers::Finite(c));
        let all = departures(&replay(&pr, &cs, NO_LIMIT));
        for (top, reference) in [(0u8, Discipline::Fcfs), (1, Discipline::PriorityPreemptive)] {
            let (idx, sub): (Vec<usize>, Vec<Customer>) = cs
                .iter()
                .enumerate()
                .filter(|(_, x)| x.class <= top)
                .map(|(i, x)| (i, *x))
                .unzip();
            let alone = departures(&replay(
                &model(reference, Servers::Finite(c)),
                &sub,
                NO_LIMIT,
            ));
            for (j, &i) in idx.iter().enumerate() {
                assert_eq!(all[i], alone[j], "c = {c}, classes ≤ {top}, customer {i}");
            }
        }
        // One class: preemptive priority is FCFS.
        let one: Vec<Customer> = cs.iter().map(|x| Customer { class: 0, ..*x }).collect();
        assert_eq!(
            replay(&pr, &one, NO_LIMIT),
            replay(&model(Discipline::Fcfs, Servers::Finite(c)), &one, NO_LIMIT)
        );
    }
}

#[test]
fn processor_sharing_with_enough_servers_serves_everyone_at_once() {
    // With c at least the most ever present, every rate is 1: d = a + S, as for ∞ servers.
    let cs = random_customers(17, 2_000, 1.0e6, 0.5e6, false, 1);
    let dep = departures(&replay(
        &model(Discipline::Ps, Servers::Finite(2_000)),
        &cs,
        NO_LIMIT,
    ));
    for (i, c) in cs.iter().enumerate() {
        assert_eq!(dep[i], c.arrival_ns + c.service_ns, "customer {i}");
    }
}

#[test]
#[should_panic(expected = "before the one ahead of it")]
fn replay_rejects_arrivals_out_of_order() {
    run(Discipline::Fcfs, 1, NO_LIMIT, &[(5, 1, 0), (4, 1, 0)]);
}

fn opts(customers: u64, warmup: u64) -> SimOptions {
    SimOptions {
        customers,
        warmup,
        replications: 20,
        seed: 1,
    }
}

/// `est` within K half-widths (plus `extra`) of `truth`.
#[track_caller]
fn close(what: &str, est: Estimate, truth: f64, extra: f64) {
    assert!(
        est.half_width.is_finite() && est.half_width > 0.0,
        "{what}: {est:?}"
    );
    assert!(
        (est.value - truth).abs() <= K * est.half_width + extra,
        "{what}: {} ± {} against {truth}",
        est.value,
        est.half_width
    );
    // And the interval is narrow enough for the test to mean something.
    assert!(
        est.half_width < 0.05 * truth.abs().max(1e-12),
        "{what}: half-width {} of {truth}",
        est.half_width
    );
}

const MU: f64 = 1000.0;

fn mm1(d: Discipline) -> Model {
    Model::new(MU, Servers::Finite(1)).with_discipline(d)
}

#[test]
fn mm1_mean_percentiles_and_little() {
    let lambda = 500.0;
    let r = simulate_open(&mm1(Discipline::Fcfs), lambda, &opts(20_000, 2_000));
    assert_eq!((r.replications, r.customers), (20, 20_000));
    // The sojourn is exponential with rate μ − λ: mean 1/(μ − λ), p = −ln(1 − q)/(μ − λ).
    let rate = MU - lambda;
    close("mean", r.mean_s, 1.0 / rate, 0.0);
    close("p50", r.p50_s, 2f64.ln() / rate, 0.002 * 2f64.ln() / rate);
    close("p90", r.p90_s, 10f64.ln() / rate, 0.002 * 10f64.ln() / rate);
    close(
        "p99",
        r.p99_s,
        100f64.ln() / rate,
        0.002 * 100f64.ln() / rate,
    );
    // L = ρ/(1 − ρ) (= λW, Little).
    close("L", r.mean_in_system, 1.0, 0.0);
    assert_eq!(r.blocking.value, 0.0);
    assert_eq!(r.class_mean_s.len(), 1);
    assert_eq!(r.class_mean_s[0], r.mean_s);
    // Every measured sojourn of every replication is in the pooled histogram.
    let h = stats::histogram_from_string(&r.histogram).expect("a histogram");
    assert_eq!(h.len(), 20 * 20_000);
    // Seeded: the same again, and another seed differs.
    assert_eq!(
        simulate_open(&mm1(Discipline::Fcfs), lambda, &opts(2_000, 100)),
        simulate_open(&mm1(Discipline::Fcfs), lambda, &opts(2_000, 100))
    );
    let other = SimOptions {
        seed: 2,
        ..opts(2_000, 100)
    };
    assert_ne!(
        simulate_open(&mm1(Discipline::Fcfs), lambda, &other).mean_s,
        simulate_open(&mm1(Discipline::Fcfs), lambda, &opts(2_000, 100)).mean_s
    );
}

#[test]
fn mm2_mean() {
    let m = Model::new(MU, Servers::Finite(2));
    let lambda = 1400.0;
    let truth = theory::predict(&m, lambda).expect("M/M/2").mean_s;
    let r = simulate_open(&m, lambda, &opts(20_000, 2_000));
    close("M/M/2 mean", r.mean_s, truth, 0.0);
}

#[test]
fn md1_and_mg1_means_are_pollaczek_khinchine() {
    // W = 1/μ + λE[S²]/(2(1 − ρ)), E[S²] = (1 + C²)/μ²: C² = 0 (D), 1/3 (uniform on [0, 2/μ]).
    let lambda = 700.0;
    let rho = lambda / MU;
    for (service, cv2) in [(ServiceKind::Const, 0.0), (ServiceKind::Uniform, 1.0 / 3.0)] {
        let m = mm1(Discipline::Fcfs).with_service(service);
        let truth = 1.0 / MU + lambda * (1.0 + cv2) / (MU * MU) / (2.0 * (1.0 - rho));
        let r = simulate_open(&m, lambda, &opts(20_000, 2_000));
        close(&format!("{service} mean"), r.mean_s, truth, 0.0);
    }
}

#[test]
fn processor_sharing_mean_is_insensitive() {
    // M/G/1-PS: W = E[S]/(1 − ρ) whatever the distribution of the work.
    let lambda = 600.0;
    for service in [ServiceKind::Exp, ServiceKind::Const, ServiceKind::Uniform] {
        let m = mm1(Discipline::Ps).with_service(service);
        let r = simulate_open(&m, lambda, &opts(20_000, 2_000));
        close(
            &format!("PS {service} mean"),
            r.mean_s,
            1.0 / (MU - lambda),
            0.0,
        );
        close("PS L", r.mean_in_system, lambda / (MU - lambda), 0.0);
    }
}

#[test]
fn lcfs_mean_is_the_fcfs_mean() {
    // The number in system of M/G/1 does not depend on a non-preemptive order that ignores the
    // work, so neither does the mean sojourn (Little): 1/(μ − λ) for M/M/1.
    let lambda = 500.0;
    let r = simulate_open(&mm1(Discipline::Lcfs), lambda, &opts(20_000, 2_000));
    close("LCFS mean", r.mean_s, 1.0 / (MU - lambda), 0.0);
}

#[test]
fn two_priority_classes_match_cobham() {
    // λ = 700, p = (0.3, 0.7): ρ₀ = 0.21, ρ₁ = 0.49, σ₀ = 0.21, σ₁ = 0.7; E[S] = 1/μ,
    // E[S²] = 2/μ².
    let lambda = 700.0;
    let classes = Classes::new(&[0.3, 0.7]).expect("classes");
    let es = 1.0 / MU;
    let es2 = 2.0 / (MU * MU);
    let lam = [0.3 * lambda, 0.7 * lambda];
    let sigma = [lam[0] * es, (lam[0] + lam[1]) * es];
    let before = [0.0, sigma[0]];
    // Non-preemptive: W_q,k = W₀/((1 − σ_{k−1})(1 − σ_k)), W₀ = λE[S²]/2; T_k = W_q,k + E[S].
    let w0 = lambda * es2 / 2.0;
    let np = [0, 1].map(|k| w0 / ((1.0 - before[k]) * (1.0 - sigma[k])) + es);
    // Preemptive-resume: T_k = E[S]/(1 − σ_{k−1}) + (Σ_{i≤k} λ_i E[S²]/2)/((1 − σ_{k−1})(1 − σ_k)).
    let pr = [0, 1].map(|k| {
        let r_k: f64 = lam[..=k].iter().map(|l| l * es2 / 2.0).sum();
        es / (1.0 - before[k]) + r_k / ((1.0 - before[k]) * (1.0 - sigma[k]))
    });
    // Class 0 under preemption is an M/M/1 of its own.
    assert!((pr[0] - 1.0 / (MU - lam[0])).abs() < 1e-12);
    for (d, truth) in [
        (Discipline::Priority, np),
        (Discipline::PriorityPreemptive, pr),
    ] {
        let m = mm1(d).with_classes(classes);
        let r = simulate_open(&m, lambda, &opts(20_000, 2_000));
        assert_eq!(r.class_mean_s.len(), 2);
        for (k, (est, t)) in r.class_mean_s.iter().zip(truth).enumerate() {
            close(&format!("{d} class {k}"), *est, t, 0.0);
        }
        // The overall mean is the mix, and (exponential work, work conserving) the number in
        // system is the FCFS one, ρ/(1 − ρ).
        let mix = 0.3 * truth[0] + 0.7 * truth[1];
        close(&format!("{d} mean"), r.mean_s, mix, 0.0);
        close(&format!("{d} L"), r.mean_in_system, 0.7 / 0.3, 0.0);
    }
}

#[test]
fn mm1k_blocking() {
    // M/M/1/K: P_K = (1 − ρ)ρ^K/(1 − ρ^{K+1}), L = ρ/(1 − ρ) − (K + 1)ρ^{K+1}/(1 − ρ^{K+1}).
    let (lambda, k) = (800.0, 3);
    let rho: f64 = lambda / MU;
    let m = mm1(Discipline::Fcfs).with_capacity(Some(k));
    let pk = (1.0 - rho) * rho.powi(k as i32) / (1.0 - rho.powi(k as i32 + 1));
    let l = rho / (1.0 - rho)
        - f64::from(k + 1) * rho.powi(k as i32 + 1) / (1.0 - rho.powi(k as i32 + 1));
    let r = simulate_open(&m, lambda, &opts(20_000, 1_000));
    close("M/M/1/3 blocking", r.blocking, pk, 0.0);
    close("M/M/1/3 L", r.mean_in_system, l, 0.0);
    // Accepted customers: W = L/(λ(1 − P_K)).
    close("M/M/1/3 mean", r.mean_s, l / (lambda * (1.0 - pk)), 0.0);
    // PS blocks the same (the number in system is the same birth–death chain).
    let r = simulate_open(
        &m.with_discipline(Discipline::Ps),
        lambda,
        &opts(20_000, 1_000),
    );
    close("M/M/1/3-PS blocking", r.blocking, pk, 0.0);
}

#[test]
fn erlang_loss_with_infinite_servers_and_a_limit() {
    // M/M/∞ with K places is M/M/K/K: blocking is Erlang B(K, λ/μ); without a limit W = 1/μ.
    let lambda = 2000.0;
    let m = Model::new(MU, Servers::Infinite).with_capacity(Some(3));
    let r = simulate_open(&m, lambda, &opts(20_000, 1_000));
    close(
        "M/M/inf/3 blocking",
        r.blocking,
        theory::erlang_b(3, lambda / MU),
        0.0,
    );
    let r = simulate_open(&m.with_capacity(None), lambda, &opts(20_000, 1_000));
    close("M/M/inf mean", r.mean_s, 1.0 / MU, 0.0);
    close("M/M/inf L", r.mean_in_system, lambda / MU, 0.0);
}

#[test]
fn closed_mm1_matches_the_birth_death_chain() {
    // M/M/1//N: X(N) = μ(1 − π₀), R = N/X − Z (with the birth–death π).
    for (users, think_s) in [(5, 0.002), (3, 0.0)] {
        let truth = theory::closed_birth_death(MU, 1, think_s, users);
        for d in [Discipline::Fcfs, Discipline::Ps] {
            let r = simulate_closed(&mm1(d), users, think_s, &opts(20_000, 1_000));
            assert_eq!(r.replications, 20);
            close(
                &format!("{d} X({users})"),
                r.throughput,
                truth.throughput,
                0.0,
            );
            close(
                &format!("{d} R({users})"),
                r.response_s,
                truth.response_s,
                0.0,
            );
            assert!(r.p99_s.value > r.response_s.value, "{r:?}");
        }
    }
    // Two servers: X = Σ π_n min(n, 2)μ.
    let truth = theory::closed_birth_death(MU, 2, 0.003, 8);
    let m = Model::new(MU, Servers::Finite(2));
    let r = simulate_closed(&m, 8, 0.003, &opts(20_000, 1_000));
    close("M/M/2//8 X", r.throughput, truth.throughput, 0.0);
    close("M/M/2//8 R", r.response_s, truth.response_s, 0.0);
}

#[test]
fn estimates_over_replications() {
    // Mean 2, s = 1 (values 1, 2, 3): half-width t₀.₉₇₅(2)·1/√3.
    let e = Estimate::from_replications(&[1.0, 2.0, 3.0]);
    assert_eq!(e.value, 2.0);
    assert!((e.half_width - 4.302_652_729_749_464 / 3f64.sqrt()).abs() < 1e-12);
    assert!(e.contains(2.0 + e.half_width) && !e.contains(2.0 + 1.01 * e.half_width));
    // NaN values (no customers of a class in that replication) are left out.
    assert_eq!(Estimate::from_replications(&[1.0, f64::NAN, 2.0, 3.0]), e);
    let one = Estimate::from_replications(&[5.0]);
    assert_eq!((one.value, one.half_width), (5.0, f64::INFINITY));
    assert!(Estimate::from_replications(&[]).value.is_nan());
}
