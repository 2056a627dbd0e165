//! The queue model against a brute-force discrete-event simulation of the same arrivals and
//! service times, determinism by seed, and work conservation across the disciplines.
//!
//! The simulation is written the textbook way, independently of the model's algorithm: an event
//! list of departures, an explicit FIFO waiting line and a count of busy servers; departures at
//! or before an arrival's time are processed first, a departure hands its server to the head of
//! the line, and an arrival that finds `K` in the system is lost. Both must give every customer
//! the identical departure time (integer nanoseconds) and the identical fate.
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use queuelab_common::model::{Classes, Discipline, Model, Servers};
use queuelab_common::samplers::{ServiceKind, ServiceSampler, exp_sample, rng};
use queuelab_common::sim::{Customer, Fate};
use queuelab_server::queue::{Outcome, Poll, QueueModel, SERVICE_STREAM};

/// Departure time of each customer, `None` if blocked.
fn simulate(
    customers: &[(u64, u64)],
    servers: Servers,
    capacity: Option<usize>,
) -> Vec<Option<u64>> {
    let c = match servers {
        Servers::Finite(c) => Some(c as usize),
        Servers::Infinite => None,
    };
    let mut out = vec![None; customers.len()];
    let mut busy = 0usize;
    let mut line: VecDeque<usize> = VecDeque::new();
    let mut events: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let depart = |t: u64,
                  busy: &mut usize,
                  line: &mut VecDeque<usize>,
                  events: &mut BinaryHeap<Reverse<(u64, usize)>>,
                  out: &mut Vec<Option<u64>>| {
        *busy -= 1;
        if let Some(j) = line.pop_front() {
            *busy += 1;
            let d = t + customers[j].1;
            out[j] = Some(d);
            events.push(Reverse((d, j)));
        }
    };
    for (i, &(a, s)) in customers.iter().enumerate() {
        while let Some(&Reverse((t, _))) = events.peek() {
            if t > a {
                break;
            }
            events.pop();
            depart(t, &mut busy, &mut line, &mut events, &mut out);
        }
        if capacity.is_some_and(|k| busy + line.len() >= k) {
            continue;
        }
        if c.is_none_or(|c| busy < c) {
            busy += 1;
            out[i] = Some(a + s);
            events.push(Reverse((a + s, i)));
        } else {
            line.push_back(i);
        }
    }
    while let Some(Reverse((t, _))) = events.pop() {
        depart(t, &mut busy, &mut line, &mut events, &mut out);
    }
    assert!(line.is_empty(), "everyone admitted leaves");
    out
}

/// Poisson arrivals at `lambda` with service times drawn as the server draws them.
fn customers(n: usize, lambda: f64, service: ServiceSampler, seed: u64) -> Vec<(u64, u64)> {
    let mut gaps = rng(seed, 1000);
    let mut draws = rng(seed, SERVICE_STREAM);
    let mut t = 0u64;
    (0..n)
        .map(|_| {
            t += (exp_sample(1.0 / lambda, &mut gaps) * 1e9).round() as u64;
            (t, service.sample_ns(&mut draws))
        })
        .collect()
}

fn check(
    name: &str,
    n: usize,
    lambda: f64,
    servers: Servers,
    capacity: Option<u32>,
    kind: ServiceKind,
) {
    let mu = 1000.0;
    let sampler = ServiceSampler::new(kind, mu);
    let seed = 0x5eed ^ n as u64;
    let cs = customers(n, lambda, sampler, seed);
    let want = simulate(&cs, servers, capacity.map(|k| k as usize));
    let queue = Model::new(mu, servers)
        .with_capacity(capacity)
        .with_service(kind);
    assert_eq!(
        (queue.sampler().kind, queue.sampler().mu),
        (sampler.kind, sampler.mu)
    );
    let mut model = QueueModel::new(&queue, seed, usize::MAX);
    let mut blocked = 0;
    let mut waited = 0;
    for (i, (&(a, s), w)) in cs.iter().zip(&want).enumerate() {
        // `arrive` draws the same service time as `customers` did: same seed, same stream, same
        // order.
        let got = model.arrive(a, None);
        match (got, w) {
            (Outcome::Served(sv), Some(d)) => {
                assert_eq!(sv.departure_ns, *d, "{name}: customer {i} departs");
                assert_eq!(sv.service_ns, s, "{name}: customer {i} service");
                assert_eq!(
                    sv.wait_ns + sv.service_ns,
                    d - a,
                    "{name}: customer {i} sojourn"
                );
                if sv.wait_ns > 0 {
                    waited += 1;
                }
            }
            (Outcome::Blocked, None) => blocked += 1,
            (got, want) => panic!("{name}: customer {i}: model {got:?}, simulation {want:?}"),
        }
    }
    // The cases are chosen so that each exercises what it is named for.
    if capacity.is_some() {
        assert!(blocked > n / 100, "{name}: only {blocked} blocked");
    }
    let loss_system = match (servers, capacity) {
        (Servers::Infinite, _) => true,
        (Servers::Finite(c), Some(k)) => k == c,
        (Servers::Finite(_), None) => false,
    };
    if loss_system {
        assert_eq!(waited, 0, "{name}: nobody waits without a waiting room");
    } else {
        assert!(waited > n / 10, "{name}: only {waited} waited");
    }
}

#[test]
fn mm1_matches_the_simulation() {
    check(
        "M/M/1",
        200_000,
        900.0,
        Servers::Finite(1),
        None,
        ServiceKind::Exp,
    );
}

#[test]
fn mmc_matches_the_simulation() {
    check(
        "M/M/4",
        200_000,
        3_700.0,
        Servers::Finite(4),
        None,
        ServiceKind::Exp,
    );
    check(
        "M/M/32",
        100_000,
        30_000.0,
        Servers::Finite(32),
        None,
        ServiceKind::Exp,
    );
}

#[test]
fn mmck_matches_the_simulation() {
    check(
        "M/M/1/5",
        100_000,
        1_200.0,
        Servers::Finite(1),
        Some(5),
        ServiceKind::Exp,
    );
    check(
        "M/M/3/7",
        100_000,
        3_300.0,
        Servers::Finite(3),
        Some(7),
        ServiceKind::Exp,
    );
    check(
        "M/M/2/2",
        100_000,
        1_500.0,
        Servers::Finite(2),
        Some(2),
        ServiceKind::Exp,
    );
}

#[test]
fn mminf_matches_the_simulation() {
    check(
        "M/M/inf",
        100_000,
        50_000.0,
        Servers::Infinite,
        None,
        ServiceKind::Exp,
    );
    check(
        "M/M/inf/40",
        100_000,
        40_000.0,
        Servers::Infinite,
        Some(40),
        ServiceKind::Exp,
    );
}

#[test]
fn other_service_distributions_match_the_simulation() {
    check(
        "M/D/1",
        100_000,
        950.0,
        Servers::Finite(1),
        None,
        ServiceKind::Const,
    );
    check(
        "M/G/2",
        100_000,
        1_900.0,
        Servers::Finite(2),
        None,
        ServiceKind::Uniform,
    );
}

fn outcomes(seed: u64, arrivals: &[u64]) -> Vec<Outcome> {
    let model = Model::new(1000.0, Servers::Finite(2)).with_capacity(Some(6));
    let mut m = QueueModel::new(&model, seed, 100_000);
    arrivals.iter().map(|&a| m.arrive(a, None)).collect()
}

#[test]
fn the_model_is_deterministic_for_a_seed() {
    let arrivals: Vec<u64> = customers(
        10_000,
        2_500.0,
        ServiceSampler::new(ServiceKind::Const, 1.0),
        9,
    )
    .into_iter()
    .map(|(a, _)| a)
    .collect();
    let a = outcomes(42, &arrivals);
    assert_eq!(
        a,
        outcomes(42, &arrivals),
        "same seed, same arrivals: same outcomes"
    );
    assert_ne!(
        a,
        outcomes(43, &arrivals),
        "another seed gives other service times"
    );
    assert!(a.contains(&Outcome::Blocked), "K = 6 at rho 1.25 blocks");
}

#[test]
fn overflow_bounds_the_system_without_capacity() {
    // rho = 2 with no capacity: the system would grow without bound; the limit holds it.
    let sampler = ServiceSampler::new(ServiceKind::Exp, 1000.0);
    let cs = customers(50_000, 2_000.0, sampler, 3);
    let mut m = QueueModel::new(&Model::new(1000.0, Servers::Finite(1)), 3, 1_000);
    let mut overflow = 0;
    for &(a, _) in &cs {
        if m.arrive(a, None) == Outcome::Overflow {
            overflow += 1;
        }
        assert!(m.in_system(a) <= 1_000);
    }
    assert!(
        overflow > 10_000,
        "about half of the arrivals overflow, got {overflow}"
    );
    assert_eq!(m.stats().overflow, overflow);
    assert_eq!(m.stats().blocked, 0);
}

/// Runs `customers` (given arrival and service times and classes) through the queue of `model`,
/// an arrival that finds `limit` present being turned away, each ticket polled at its tentative
/// departure until it is done, as an I/O thread does; the fate of each in the shape of
/// [`queuelab_common::sim::replay`]'s, so the two can be compared customer by customer.
fn run(model: &Model, customers: &[Customer], limit: usize) -> Vec<Fate> {
    let cap = model.capacity.map_or(limit, |k| (k as usize).min(limit));
    let model = model.with_capacity(Some(u32::try_from(cap).unwrap_or(u32::MAX)));
    let mut q = QueueModel::new(&model, 0, limit);
    let mut fates = vec![Fate::Blocked; customers.len()];
    let mut tickets = vec![None; customers.len()];
    // (next poll time, customer), earliest first: the I/O threads' timers.
    let mut timers: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let poll_due = |q: &mut QueueModel,
                    timers: &mut BinaryHeap<Reverse<(u64, usize)>>,
                    fates: &mut [Fate],
                    tickets: &[Option<_>],
                    now: u64| {
        while let Some(&Reverse((t, i))) = timers.peek() {
            if t > now {
                break;
            }
            timers.pop();
            let ticket = tickets[i].expect("a timer only for a ticket");
            match q.poll(ticket, t) {
                Poll::Done(s) => fates[i] = Fate::Departed(s.departure_ns),
                Poll::Pending(next) => {
                    assert!(next > t, "customer {i}: pending at {next}, polled at {t}");
                    timers.push(Reverse((next, i)));
                }
                Poll::Unknown => panic!("customer {i}: ticket unknown"),
            }
        }
    };
    for (i, c) in customers.iter().enumerate() {
        poll_due(&mut q, &mut timers, &mut fates, &tickets, c.arrival_ns);
        match q.arrive_with(c.arrival_ns, c.service_ns, c.class) {
            Outcome::Served(s) => fates[i] = Fate::Departed(s.departure_ns),
            Outcome::Queued(t) => {
                tickets[i] = Some(t);
                timers.push(Reverse((t.tentative_ns, i)));
            }
            Outcome::Blocked | Outcome::Overflow => {}
        }
    }
    poll_due(&mut q, &mut timers, &mut fates, &tickets, u64::MAX);
    fates
}

/// Poisson arrivals at `lambda` with `kind` service at μ = 1000/s and classes drawn from
/// `classes`.
fn random_customers(
    n: usize,
    lambda: f64,
    kind: ServiceKind,
    classes: &[f64],
    seed: u64,
) -> Vec<Customer> {
    let classes = Classes::new(classes).expect("valid classes");
    let sampler = ServiceSampler::new(kind, 1000.0);
    let mut gaps = rng(seed, 1000);
    let mut draws = rng(seed, SERVICE_STREAM);
    let mut t = 0u64;
    (0..n)
        .map(|_| {
            t += (exp_sample(1.0 / lambda, &mut gaps) * 1e9).round() as u64;
            let u = 1.0 - (-exp_sample(1.0, &mut gaps)).exp();
            Customer {
                arrival_ns: t,
                service_ns: sampler.sample_ns(&mut draws),
                class: classes.draw(u),
            }
        })
        .collect()
}

/// The times at which the system empties (the ends of the busy periods), from the fates.
fn busy_period_ends(customers: &[Customer], fates: &[Fate]) -> Vec<u64> {
    let mut events: Vec<(u64, i32)> = Vec::new();
    for (c, f) in customers.iter().zip(fates) {
        if let Fate::Departed(d) = *f {
            // At the same instant a departure comes before an arrival.
            events.push((c.arrival_ns, 1));
            events.push((d, -1));
        }
    }
    events.sort_unstable();
    let mut n = 0;
    let mut ends = Vec::new();
    for (t, delta) in events {
        n += delta;
        if n == 0 {
            ends.push(t);
        }
    }
    ends
}

const DISCIPLINES: [Discipline; 5] = [
    Discipline::Fcfs,
    Discipline::Lcfs,
    Discipline::Ps,
    Discipline::Priority,
    Discipline::PriorityPreemptive,
];

#[test]
fn one_server_conserves_work_under_every_discipline() {
    // With one server every discipline is work-conserving: the unfinished work, hence the busy
    // periods (where each ends, and how many it serves), are the same whatever the order. The
    // departure times themselves differ with the order (S = 1 and 2 at once leave at 1 and 3
    // or at 2 and 3), except with equal service times and no preemption, where the k-th
    // departure of a busy period is always at its start plus k·S.
    for (kind, lambda) in [(ServiceKind::Exp, 900.0), (ServiceKind::Const, 950.0)] {
        let cs = random_customers(50_000, lambda, kind, &[0.2, 0.3, 0.5], 21);
        let fcfs = Model::new(1000.0, Servers::Finite(1)).with_service(kind);
        let base = run(&fcfs, &cs, 1_000_000);
        let ends = busy_period_ends(&cs, &base);
        assert!(
            ends.len() > 1_000 && ends.len() < cs.len() / 3,
            "{} busy periods",
            ends.len()
        );
        let sorted = |f: &[Fate]| {
            let mut d: Vec<u64> = f
                .iter()
                .map(|f| match f {
                    Fate::Departed(d) => *d,
                    Fate::Blocked => panic!("no capacity, nobody blocked"),
                })
                .collect();
            d.sort_unstable();
            d
        };
        let base_sorted = sorted(&base);
        for d in DISCIPLINES {
            let fates = run(&fcfs.with_discipline(d), &cs, 1_000_000);
            assert_eq!(
                busy_period_ends(&cs, &fates),
                ends,
                "{kind} {d}: busy periods"
            );
            let same_order_free = kind == ServiceKind::Const
                && matches!(
                    d,
                    Discipline::Fcfs | Discipline::Lcfs | Discipline::Priority
                );
            let differs = sorted(&fates) != base_sorted;
            if same_order_free {
                assert!(!differs, "{kind} {d}: departure times");
            } else if d != Discipline::Fcfs {
                // Each of these reorders service somewhere in 50,000 customers at ρ ≥ 0.9.
                assert!(differs, "{kind} {d}: no customer served out of order");
            }
        }
    }
}

#[test]
fn the_run_helper_matches_fcfs_and_blocks_at_the_limit() {
    let cs = random_customers(20_000, 1_500.0, ServiceKind::Exp, &[1.0], 4);
    let model = Model::new(1000.0, Servers::Finite(1)).with_capacity(Some(3));
    let mut q = QueueModel::new(&model, 0, 100);
    let want: Vec<Fate> = cs
        .iter()
        .map(
            |c| match q.arrive_with(c.arrival_ns, c.service_ns, c.class) {
                Outcome::Served(s) => Fate::Departed(s.departure_ns),
                _ => Fate::Blocked,
            },
        )
        .collect();
    assert!(want.contains(&Fate::Blocked));
    assert_eq!(run(&model, &cs, 100), want);
    // The limit applies like K, and a one-class priority queue is FCFS.
    let open = Model::new(1000.0, Servers::Finite(1));
    assert_eq!(run(&open, &cs, 3), want);
    assert_eq!(
        run(&open.with_discipline(Discipline::Priority), &cs, 3),
        want
    );
}

/// Every discipline against the common simulator (`sim::replay`, an event calendar written
/// apart from the server's incremental engine), customer by customer on the same arrivals,
/// service times and classes: the same customers blocked, and the same departures — to the
/// nanosecond for FCFS, LCFS and both priorities (integer arithmetic in both), and within 10 ns
/// for processor sharing, which both compute in floating-point virtual time (the two differ only
/// by rounding: an f64 holds a time of seconds in nanoseconds to 10⁻⁶ ns, and a busy period of
/// thousands of events accumulates far less than a nanosecond of it).
#[test]
fn every_discipline_matches_the_simulator_customer_by_customer() {
    use queuelab_common::sim::replay;
    let disciplines = [
        Discipline::Fcfs,
        Discipline::Lcfs,
        Discipline::Ps,
        Discipline::Priority,
        Discipline::PriorityPreemptive,
    ];
    let services = [
        ServiceKind::Exp,
        ServiceKind::H2 { cv2: 8.0 },
        ServiceKind::Const,
    ];
    let mut compared = 0usize;
    for (d_i, &discipline) in disciplines.iter().enumerate() {
        for (s_i, &service) in services.iter().enumerate() {
            for c in [1u32, 3] {
                for capacity in [None, Some(c + 4)] {
                    for (rho, classes) in [(0.6, &[1.0][..]), (0.95, &[0.2, 0.3, 0.5][..])] {
                        let lambda = rho * f64::from(c) * 1000.0;
                        let seed = (d_i * 100 + s_i * 10) as u64 + u64::from(c);
                        let cs = random_customers(6_000, lambda, service, classes, seed);
                        let model = Model::new(1000.0, Servers::Finite(c))
                            .with_capacity(capacity)
                            .with_service(service)
                            .with_discipline(discipline)
                            .with_classes(Classes::new(classes).expect("classes"));
                        let limit = 100_000;
                        let got = run(&model, &cs, limit);
                        let want = replay(&model, &cs, capacity.map_or(limit, |k| k as usize));
                        let tolerance = if discipline == Discipline::Ps { 10 } else { 0 };
                        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                            let same = match (g, w) {
                                (Fate::Departed(a), Fate::Departed(b)) => {
                                    a.abs_diff(*b) <= tolerance
                                }
                                (Fate::Blocked, Fate::Blocked) => true,
                                _ => false,
                            };
                            assert!(
                                same,
                                "{} c={c} K={capacity:?} ρ={rho} {service}: customer {i}: \
                                 server {g:?}, simulator {w:?}",
                                model.name()
                            );
                        }
                        compared += got.len();
                    }
                }
            }
        }
    }
    assert_eq!(compared, 5 * 3 * 2 * 2 * 2 * 6_000);
}
