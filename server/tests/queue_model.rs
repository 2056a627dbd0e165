//! The queue model against a brute-force discrete-event simulation of the same arrivals and
//! service times, and determinism by seed.
//!
//! The simulation is written the textbook way, independently of the model's algorithm: an event
//! list of departures, an explicit FIFO waiting line and a count of busy servers; departures at
//! or before an arrival's time are processed first, a departure hands its server to the head of
//! the line, and an arrival that finds `K` in the system is lost. Both must give every customer
//! the identical departure time (integer nanoseconds) and the identical fate.
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use queuelab_common::model::{Model, Servers};
use queuelab_common::samplers::{ServiceKind, ServiceSampler, exp_sample, rng};
use queuelab_server::queue::{Outcome, QueueModel, SERVICE_STREAM};

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
