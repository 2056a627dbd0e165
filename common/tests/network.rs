//! The network simulator: the replay against hand-computed sequences and against the draws
//! contract of `network`'s module docs, its routing frequencies by chi-square, and the
//! replications against the product form and the Pollaczek–Khinchine formula.
//!
//! Statistical tolerances (as in `tests/sim.rs`): an [`Estimate`] over R = 20 replications has
//! the half-width t₀.₉₇₅(19)·s/√R, and (value − truth)/(s/√R) follows Student's t with 19
//! degrees of freedom (the replications are independent, each value a mean of tens of thousands
//! of customers, close to normal). A test that checks m estimates accepts
//! |value − truth| ≤ K_m·half_width with K_m = t_{1−10⁻⁶/(2m)}(19)/t₀.₉₇₅(19), computed below from
//! statrs: by Bonferroni a correct program fails the whole test with probability below 10⁻⁶.
//! The warm-up (10% of the run) leaves a start-up bias far below the half-widths at these loads.
use queuelab_common::model::{Discipline, Servers};
use queuelab_common::network::{ENTRY_STREAM, Hop, Network, route_stream, service_stream, theory};
use queuelab_common::samplers::{CLASS_STREAM, rng};
use queuelab_common::sim::{
    Customer, Estimate, Fate, NetFate, SimOptions, Visit, replay, replay_network, replication_seed,
    simulate_network,
};
use queuelab_common::stats;
use rand::RngExt;
use statrs::distribution::{ChiSquared, ContinuousCDF, StudentsT};

/// The web/db network of the issue, as the lab and scripts/network-bench.sh use it.
const WEB_DB: &str = include_str!("../../docs/networks/web-db.toml");
const WEB_DB_CLASSES: &str = include_str!("../../docs/networks/web-db-classes.toml");

fn tandem(first: &str, second: &str) -> Network {
    Network::parse(&format!(
        "[[station]]\nname = \"one\"\n{first}\n[[station]]\nname = \"two\"\n{second}\n\
         [routing]\nentry = {{ one = 1 }}\none = {{ two = 1 }}\ntwo = {{ exit = 1 }}\n"
    ))
    .expect("valid in this test")
}

fn v(station: usize, arrive_ns: u64, start_ns: u64, depart_ns: u64) -> Visit {
    Visit {
        station,
        arrive_ns,
        start_ns,
        depart_ns,
        service_ns: depart_ns - start_ns,
    }
}

/// A visit's service time when it is not `depart_ns − start_ns` (it was preempted or shared).
trait WithService {
    fn with_service(self, service_ns: u64) -> Self;
}

impl WithService for Visit {
    fn with_service(self, service_ns: u64) -> Self {
        Visit { service_ns, ..self }
    }
}

/// A constant tandem by hand: one serves 100 ns, two 200 ns.
/// one: r0 0→0→100, r1 50→100→200, r2 300→300→400, r3 300→400→500 (same-instant external
/// arrivals in the order given); two: r0 100→100→300, r1 200→300→500, r2 400→500→700,
/// r3 500→700→900. With capacity 1 at two: r1 finds r0 (d = 300 > 200) and is blocked at 200;
/// r2 arrives at 400 when r0 has left (300) and runs 400→600; r3 finds r2 (600 > 500) at 500.
#[test]
fn a_constant_tandem_by_hand() {
    let net = tandem(
        "mu = 10_000_000\nservice = \"const\"",
        "mu = 5_000_000\nservice = \"const\"",
    );
    let fates = replay_network(&net, 7, &[0, 50, 300, 300], usize::MAX, None);
    let want = vec![
        NetFate::Exited {
            at_ns: 300,
            class: 0,
            visits: vec![v(0, 0, 0, 100), v(1, 100, 100, 300)],
        },
        NetFate::Exited {
            at_ns: 500,
            class: 0,
            visits: vec![v(0, 50, 100, 200), v(1, 200, 300, 500)],
        },
        NetFate::Exited {
            at_ns: 700,
            class: 0,
            visits: vec![v(0, 300, 300, 400), v(1, 400, 500, 700)],
        },
        NetFate::Exited {
            at_ns: 900,
            class: 0,
            visits: vec![v(0, 300, 400, 500), v(1, 500, 700, 900)],
        },
    ];
    assert_eq!(fates, want);

    let net = tandem(
        "mu = 10_000_000\nservice = \"const\"",
        "mu = 5_000_000\nservice = \"const\"\ncapacity = 1",
    );
    let fates = replay_network(&net, 7, &[0, 50, 300, 300], usize::MAX, None);
    assert_eq!(fates[0], want[0]);
    assert_eq!(
        fates[1],
        NetFate::Blocked {
            at_ns: 200,
            class: 0,
            station: 1,
            visits: vec![v(0, 50, 100, 200)]
        }
    );
    assert_eq!(
        fates[2],
        NetFate::Exited {
            at_ns: 600,
            class: 0,
            visits: vec![v(0, 300, 300, 400), v(1, 400, 400, 600)]
        }
    );
    assert_eq!(
        fates[3],
        NetFate::Blocked {
            at_ns: 500,
            class: 0,
            station: 1,
            visits: vec![v(0, 300, 400, 500)]
        }
    );
    // The overflow limit acts as a capacity where there is none: the same fates with limit 1.
    let net = tandem(
        "mu = 10_000_000\nservice = \"const\"\ncapacity = 4",
        "mu = 5_000_000\nservice = \"const\"",
    );
    assert_eq!(
        replay_network(&net, 7, &[0, 50, 300, 300], 1, None)[1..],
        fates[1..]
    );
    // Infinitely many servers at two: d = a + 200.
    let net = tandem(
        "mu = 10_000_000\nservice = \"const\"",
        "mu = 5_000_000\nservice = \"const\"\nservers = \"inf\"",
    );
    let fates = replay_network(&net, 7, &[0, 50, 300, 300], usize::MAX, None);
    let exits: Vec<u64> = fates.iter().map(NetFate::at_ns).collect();
    assert_eq!(exits, [300, 400, 600, 700]);
}

/// A transfer and an external arrival at the same station at the same nanosecond: the transfer
/// goes first. a (100 ns) → b (100 ns) → a with probability ½ or exit. Request 0 arrives at 0,
/// leaves a at 100, b at 200 and (for a seed whose first draw of b's route stream is below ½
/// and the next two above) comes back to a at 200, when request 1 arrives from outside. The
/// transfer first: r0 a 200→200→300, then r1 a 200→300→400; b: r0 300→400 (exit), r1 400→500
/// (exit). With capacity 1 at a, r1 finds r0 there and is blocked.
#[test]
fn transfers_come_before_external_arrivals() {
    let text = "[[station]]\nname = \"a\"\nmu = 10_000_000\nservice = \"const\"\n\
                [[station]]\nname = \"b\"\nmu = 10_000_000\nservice = \"const\"\n\
                [routing]\nentry = { a = 1 }\na = { b = 1 }\nb = { a = 0.5, exit = 0.5 }\n";
    let net = Network::parse(text).expect("valid in this test");
    let seed = (0..1000u64)
        .find(|&s| {
            let mut r = rng(s, route_stream(1));
            let u: [f64; 3] = [r.random(), r.random(), r.random()];
            u[0] < 0.5 && u[1] >= 0.5 && u[2] >= 0.5
        })
        .expect("valid in this test");
    let fates = replay_network(&net, seed, &[0, 200], usize::MAX, None);
    assert_eq!(
        fates,
        vec![
            NetFate::Exited {
                at_ns: 400,
                class: 0,
                visits: vec![
                    v(0, 0, 0, 100),
                    v(1, 100, 100, 200),
                    v(0, 200, 200, 300),
                    v(1, 300, 300, 400)
                ],
            },
            NetFate::Exited {
                at_ns: 500,
                class: 0,
                visits: vec![v(0, 200, 300, 400), v(1, 400, 400, 500)],
            },
        ]
    );
    let net = Network::parse(&text.replace(
        "service = \"const\"\n[[",
        "service = \"const\"\ncapacity = 1\n[[",
    ))
    .expect("valid in this test");
    let fates = replay_network(&net, seed, &[0, 200], usize::MAX, None);
    assert_eq!(
        fates[1],
        NetFate::Blocked {
            at_ns: 200,
            class: 0,
            station: 0,
            visits: vec![]
        }
    );
}

/// Every arrival at a station in time order, as (time, fate index, visit index or None when
/// blocked there).
fn arrivals_at(fates: &[NetFate], j: usize) -> Vec<(u64, usize, Option<usize>)> {
    let mut a = Vec::new();
    for (i, f) in fates.iter().enumerate() {
        for (k, vis) in f.visits().iter().enumerate() {
            if vis.station == j {
                a.push((vis.arrive_ns, i, Some(k)));
            }
        }
        if let NetFate::Blocked { at_ns, station, .. } = f
            && *station == j
        {
            a.push((*at_ns, i, None));
        }
    }
    a.sort();
    a
}

/// The draws contract and the single-queue semantics on a random network: three stations (one
/// of 2 servers with a capacity, one with infinitely many, heavy-tailed and Erlang service),
/// feedback, 20 000 Poisson arrivals near saturation so that there is blocking. With
/// continuous service times no two arrivals at a station share a nanosecond (up to ties of
/// probability ~10⁻⁶ per pair, which the sort would then order by request: checked below to be
/// absent), so each station's arrivals in time order are its n-th arrivals. For each station:
/// the n-th arrival's service time is the n-th draw of its service stream and its next hop
/// the hop of the n-th uniform of its route stream; and the station's visits replayed through
/// the single-queue reference `sim::replay` (FCFS, its servers, its limit) give the same
/// blocked arrivals and departures. The n-th external arrival enters at the hop of the n-th
/// uniform of the entry stream.
#[test]
fn replay_follows_the_draws_contract() {
    let text = "\
[[station]]
name = \"front\"
mu = 3000
servers = 2
capacity = 6
service = \"pareto:1.5\"
[[station]]
name = \"cache\"
mu = 500
servers = \"inf\"
service = \"erlang:3\"
[[station]]
name = \"db\"
mu = 2500
service = \"h2:4\"
[routing]
entry = { front = 0.8, db = 0.2 }
front = { cache = 0.3, db = 0.3, exit = 0.4 }
cache = { front = 0.5, exit = 0.5 }
db = { front = 0.2, db = 0.1, exit = 0.7 }
";
    check_draws_contract(text, 11);
}

/// The same with every discipline (and the classes of the file), each station's arrivals
/// replayed through the single-queue reference `sim::replay` with its discipline and the
/// requests' classes: preemptive priority with 2 servers and a capacity (heavy-tailed service,
/// so that it blocks), processor sharing, LCFS (with feedback to itself), non-preemptive
/// priority, and an infinite-server LCFS station (decided at admission). Three classes.
/// Processor sharing keeps fractional time, and its departures are compared within 2 ns: the
/// network processes a PS departure at its rounded time, so an arrival within half a ns after
/// the exact departure may come after it in the network and before it in the reference, which
/// moves that departure by less than a ns.
#[test]
fn replay_follows_the_draws_contract_under_every_discipline() {
    let text = "\
classes = \"0.3,0.2,0.5\"
[[station]]
name = \"front\"
mu = 3000
servers = 2
capacity = 6
service = \"pareto:1.5\"
discipline = \"priority-preemptive\"
[[station]]
name = \"cache\"
mu = 1500
service = \"erlang:3\"
discipline = \"ps\"
[[station]]
name = \"db\"
mu = 2500
service = \"h2:4\"
discipline = \"lcfs\"
[[station]]
name = \"batch\"
mu = 4000
service = \"uniform\"
discipline = \"priority\"
[[station]]
name = \"pool\"
mu = 2000
servers = \"inf\"
discipline = \"lcfs\"
[routing]
entry = { front = 0.7, db = 0.3 }
front = { cache = 0.3, db = 0.3, batch = 0.1, exit = 0.3 }
cache = { front = 0.3, pool = 0.2, exit = 0.5 }
db = { front = 0.1, db = 0.1, batch = 0.2, exit = 0.6 }
batch = { exit = 1 }
pool = { exit = 1 }
";
    let fates = check_draws_contract(text, 12);
    // Every class came, and some requests waited behind a later arrival: the disciplines acted.
    for k in 0..3 {
        assert!(fates.iter().any(|f| f.class() == k), "class {k}");
    }
    let overtaken = |j: usize| {
        let mut at: Vec<(u64, u64)> = fates
            .iter()
            .flat_map(|f| f.visits().iter().filter(|v| v.station == j))
            .map(|v| (v.arrive_ns, v.depart_ns))
            .collect();
        at.sort();
        at.windows(2).any(|w| w[1].1 < w[0].1)
    };
    assert!((0..4).all(overtaken));
}

/// The contract checks of the two tests above on the network `text`: 20 000 Poisson arrivals at
/// 3000/s with the overflow limit 40, seeded with `seed`. Returns the fates.
fn check_draws_contract(text: &str, seed: u64) -> Vec<NetFate> {
    let net = Network::parse(text).expect("valid in this test");
    let mut gaps = rng(99, 0);
    let mut t = 0u64;
    let arrivals: Vec<u64> = (0..20_000)
        .map(|_| {
            t += 1 + (-(1.0 - gaps.random::<f64>()).ln() / 3000.0 * 1e9) as u64;
            t
        })
        .collect();
    let limit = 40;
    let fates = replay_network(&net, seed, &arrivals, limit, None);
    // Entry hops and classes.
    let mut entry = rng(seed, ENTRY_STREAM);
    let mut class = rng(seed, CLASS_STREAM);
    for (i, f) in fates.iter().enumerate() {
        let first = match (f.visits().first(), f) {
            (Some(vis), _) => vis.station,
            (None, NetFate::Blocked { station, .. }) => *station,
            (None, NetFate::Exited { .. }) => panic!("request {i} has no visit"),
        };
        assert_eq!(
            Hop::Station(first),
            net.hop(None, entry.random::<f64>()),
            "{i}"
        );
        let want = if net.classes.len() > 1 {
            net.classes.draw(class.random::<f64>())
        } else {
            0
        };
        assert_eq!(f.class(), want, "{i}");
        let first_at = f.visits().first().map_or(f.at_ns(), |vis| vis.arrive_ns);
        assert_eq!(first_at, arrivals[i]);
    }
    let mut blocked_total = 0;
    for (j, st) in net.stations.iter().enumerate() {
        let at = arrivals_at(&fates, j);
        assert!(at.windows(2).all(|w| w[0].0 < w[1].0), "a tie at {j}");
        let mut service = rng(seed, service_stream(j));
        let mut route = rng(seed, route_stream(j));
        let sampler = st.model.sampler();
        let m = st.model;
        // Served without a break: depart = start + service.
        let unbroken = m.servers == Servers::Infinite
            || !matches!(
                m.discipline,
                Discipline::Ps | Discipline::PriorityPreemptive
            );
        let ps = m.discipline == Discipline::Ps && m.servers != Servers::Infinite;
        let mut customers = Vec::new();
        for &(a, i, k) in &at {
            let s = sampler.sample_ns(&mut service);
            let u = route.random::<f64>();
            customers.push(Customer {
                arrival_ns: a,
                service_ns: s,
                class: fates[i].class(),
            });
            if let Some(k) = k {
                let vis = fates[i].visits()[k];
                assert_eq!(vis.service_ns, s);
                assert!(vis.arrive_ns <= vis.start_ns, "{vis:?}");
                if unbroken {
                    assert_eq!(vis.depart_ns, vis.start_ns + s);
                } else {
                    assert!(vis.depart_ns + 1 >= vis.start_ns + s, "{vis:?}");
                }
                if ps {
                    assert_eq!(vis.start_ns, vis.arrive_ns);
                }
                let next = match fates[i].visits().get(k + 1) {
                    Some(n) => {
                        assert_eq!(n.arrive_ns, vis.depart_ns, "no delay in a transfer");
                        Hop::Station(n.station)
                    }
                    None => match &fates[i] {
                        NetFate::Exited { at_ns, .. } => {
                            assert_eq!(*at_ns, vis.depart_ns);
                            Hop::Exit
                        }
                        NetFate::Blocked { station, at_ns, .. } => {
                            assert_eq!(*at_ns, vis.depart_ns);
                            Hop::Station(*station)
                        }
                    },
                };
                assert_eq!(next, net.hop(Some(j), u), "request {i} after station {j}");
            }
        }
        let lim = st
            .model
            .capacity
            .map_or(limit, |k| usize::try_from(k).expect("valid in this test"));
        let reference = replay(&st.model, &customers, lim);
        for (&(_, i, k), fate) in at.iter().zip(&reference) {
            match (k, fate) {
                (Some(k), Fate::Departed(d)) => {
                    let got = fates[i].visits()[k].depart_ns;
                    if ps {
                        assert!(got.abs_diff(*d) <= 2, "station {j}: {got} against {d}");
                    } else {
                        assert_eq!(got, *d, "station {j}, request {i}");
                    }
                }
                (None, Fate::Blocked) => blocked_total += 1,
                other => panic!("station {j}, request {i}: {other:?}"),
            }
        }
    }
    // The test means something: there was blocking, and feedback.
    assert!(blocked_total > 0);
    assert!(fates.iter().any(|f| f.visits().len() >= 4));
    // Deterministic for a seed; another seed differs.
    assert_eq!(replay_network(&net, seed, &arrivals, limit, None), fates);
    assert_ne!(
        replay_network(&net, seed + 1, &arrivals, limit, None),
        fates
    );
    fates
}

#[test]
#[should_panic(expected = "before the one ahead")]
fn replay_rejects_arrivals_out_of_order() {
    let net = Network::parse(WEB_DB).expect("valid in this test");
    replay_network(&net, 1, &[5, 4], usize::MAX, None);
}

/// The hops out of each station (and the entry), counted over 10⁵ replayed requests, against
/// the routing by a chi-square test. The route draws at a station are independent uniforms
/// consumed in arrival order, so the first M hops out of station j (in arrival order at j) are
/// M independent draws of its row, whatever the route of each request: a multinomial sample.
/// M is fixed beforehand (below the number of visits every station surely gets: the expected
/// count minus far more than 6 standard deviations) so that the sample size does not depend
/// on the outcomes. Four rows are tested, each at 10⁻⁶/4 (Bonferroni): the statistic's
/// threshold is the chi-square quantile 1 − 2.5·10⁻⁷ with (categories − 1) degrees of freedom.
#[test]
fn routing_frequencies_by_chi_square() {
    let text = "\
[[station]]
name = \"a\"
mu = 5000
[[station]]
name = \"b\"
mu = 5000
servers = 2
[[station]]
name = \"c\"
mu = 8000
service = \"uniform\"
[routing]
entry = { a = 0.5, b = 0.3, c = 0.2 }
a = { b = 0.25, c = 0.25, exit = 0.5 }
b = { a = 0.1, c = 0.2, b = 0.1, exit = 0.6 }
c = { a = 0.3, exit = 0.7 }
";
    let net = Network::parse(text).expect("valid in this test");
    let v = queuelab_common::network::visit_ratios(&net).expect("valid in this test");
    let n = 100_000usize;
    // Arrivals 1 ms apart: far below saturation (λ = 1000/s), no blocking.
    let arrivals: Vec<u64> = (0..n as u64).map(|i| i * 1_000_000).collect();
    let fates = replay_network(&net, 5, &arrivals, usize::MAX, None);
    // M: the visits to j are at least ~n·v_j·(1 − 5%); each visit count per request has a
    // variance of order v_j², so the SD of the sum is ~√n·v_j ≈ 0.3% of n·v_j: 5% is > 15 SD.
    let m: Vec<usize> = v
        .iter()
        .map(|&vj| (0.95 * n as f64 * vj) as usize)
        .collect();
    let mut hops: Vec<Vec<u64>> = vec![vec![0; 4]; 3]; // [a, b, c, exit]
    for (j, &mj) in m.iter().enumerate() {
        let at = arrivals_at(&fates, j);
        assert!(at.len() >= mj, "station {j}: {} visits", at.len());
        for &(_, i, k) in at.iter().take(mj) {
            let k = k.expect("valid in this test");
            let next = fates[i].visits().get(k + 1).map_or(3, |n| n.station);
            hops[j][next] += 1;
        }
    }
    let mut entry = vec![0u64; 4];
    for f in &fates {
        entry[f.visits()[0].station] += 1;
    }
    let rows: Vec<(Vec<f64>, &[u64])> = vec![
        (vec![0.5, 0.3, 0.2, 0.0], &entry),
        (
            net.routing[0]
                .iter()
                .copied()
                .chain([net.exit[0]])
                .collect(),
            &hops[0],
        ),
        (
            net.routing[1]
                .iter()
                .copied()
                .chain([net.exit[1]])
                .collect(),
            &hops[1],
        ),
        (
            net.routing[2]
                .iter()
                .copied()
                .chain([net.exit[2]])
                .collect(),
            &hops[2],
        ),
    ];
    for (r, (p, counts)) in rows.iter().enumerate() {
        let total: u64 = counts.iter().sum();
        let mut chi2 = 0.0;
        let mut categories = 0;
        for (&pk, &ok) in p.iter().zip(counts.iter()) {
            if pk == 0.0 {
                assert_eq!(ok, 0, "row {r}: a hop of probability 0 happened");
                continue;
            }
            categories += 1;
            let e = pk * total as f64;
            chi2 += (ok as f64 - e).powi(2) / e;
        }
        let threshold = ChiSquared::new(f64::from(categories - 1))
            .expect("valid in this test")
            .inverse_cdf(1.0 - 1e-6 / rows.len() as f64);
        assert!(
            chi2 <= threshold,
            "row {r}: chi2 = {chi2} > {threshold} ({counts:?} against {p:?})"
        );
    }
}

/// K_m of the module docs.
fn k_for(m: usize) -> f64 {
    let t = StudentsT::new(0.0, 1.0, 19.0).expect("valid in this test");
    t.inverse_cdf(1.0 - 1e-6 / (2.0 * m as f64)) / stats::student_t_975(19)
}

fn opts() -> SimOptions {
    SimOptions {
        customers: 40_000,
        warmup: 4_000,
        replications: 20,
        seed: 3,
    }
}

#[track_caller]
fn close(what: &str, est: Estimate, truth: f64, k: f64) {
    assert!(
        est.half_width.is_finite() && est.half_width > 0.0,
        "{what}: {est:?}"
    );
    assert!(
        (est.value - truth).abs() <= k * est.half_width,
        "{what}: {} ± {} against {truth} (K = {k})",
        est.value,
        est.half_width
    );
    // The interval is narrow enough for the test to mean something.
    assert!(
        est.half_width < 0.05 * truth.abs(),
        "{what}: half-width {} of {truth}",
        est.half_width
    );
}

/// The web/db network at λ = 500/s (ρ_web = 0.588, ρ_db = 0.147) against Jackson's product
/// form: end-to-end mean, and per station the visits, the utilisation, L and W. 1 + 4·2 = 9
/// estimates.
#[test]
fn web_db_against_the_product_form() {
    let net = Network::parse(WEB_DB).expect("valid in this test");
    let lambda = 500.0;
    let t = theory(&net, lambda).expect("valid in this test");
    let sim = simulate_network(&net, lambda, &opts());
    let k = k_for(9);
    close("T", sim.mean_s, t.mean_s.expect("valid in this test"), k);
    for (s, th) in sim.stations.iter().zip(&t.stations) {
        close(&format!("{} visits", s.name), s.visits, th.visits, k);
        close(&format!("{} utilisation", s.name), s.utilisation, th.rho, k);
        close(
            &format!("{} L", s.name),
            s.in_system,
            th.l.expect("valid in this test"),
            k,
        );
        close(
            &format!("{} W", s.name),
            s.mean_s,
            th.w_s.expect("valid in this test"),
            k,
        );
        assert_eq!(s.blocking.value, 0.0);
    }
    assert_eq!(sim.blocking.value, 0.0);
    // Little end to end, and the percentiles are ordered.
    assert!((sim.in_system.value / lambda - sim.mean_s.value).abs() < 0.05 * sim.mean_s.value);
    assert!(sim.p50_s.value < sim.p90_s.value && sim.p90_s.value < sim.p99_s.value);
}

/// A tandem of two M/M/1 at λ = 200 (μ 300, 500): T = 1/100 + 1/300, and its sojourn is the
/// sum of two independent exponentials (Burke), whose median solves
/// (μ₂e^{−μ₁t} − μ₁e^{−μ₂t})/(μ₂ − μ₁) = ½ with rates 100 and 300 (bisection below); 2
/// estimates + the median = 3. The percentile carries the histogram's resolution (0.1%) too.
#[test]
fn mm1_tandem_against_the_product_form() {
    let net = tandem("mu = 300", "mu = 500");
    let sim = simulate_network(&net, 200.0, &opts());
    let k = k_for(3);
    close("T", sim.mean_s, 1.0 / 100.0 + 1.0 / 300.0, k);
    close("L one", sim.stations[0].in_system, 2.0, k);
    let (a, b) = (100.0f64, 300.0f64);
    let survival = |t: f64| (b * (-a * t).exp() - a * (-b * t).exp()) / (b - a);
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if survival(mid) > 0.5 {
            lo = mid
        } else {
            hi = mid
        }
    }
    let est = sim.p50_s;
    assert!(
        (est.value - lo).abs() <= k * est.half_width + 0.002 * lo,
        "median {est:?} against {lo}"
    );
}

/// An M/D/1 tandem: the first station sees Poisson arrivals, so its W is Pollaczek–Khinchine's
/// 1/μ + λ/(2μ²(1 − ρ)) = 1/400 + 300/(2·400²·0.25) = 0.00625 s at λ = 300, μ = 400; the second
/// is no M/D/1 (see below). 3 estimates.
#[test]
fn md1_tandem_first_station_against_pollaczek_khinchine() {
    let net = tandem(
        "mu = 400\nservice = \"const\"",
        "mu = 500\nservice = \"const\"",
    );
    let t = theory(&net, 300.0).expect("valid in this test");
    assert!(t.mean_s.is_none());
    let sim = simulate_network(&net, 300.0, &opts());
    let k = k_for(3);
    close("W one", sim.stations[0].mean_s, 0.00625, k);
    close("rho one", sim.stations[0].utilisation, 0.75, k);
    close("rho two", sim.stations[1].utilisation, 0.6, k);
    // Behind a D station of 2.5 ms the second (2 ms) never waits: its arrivals, the first's
    // departures, are at least 2.5 ms apart. Its W is exactly 2 ms (no M/D/1 there).
    assert!(
        (sim.stations[1].mean_s.value - 0.002).abs() < 1e-12,
        "{:?}",
        sim.stations[1]
    );
}

/// Blocking: an M/M/1/2 first station (λ = μ = 1000): P(block) = ρ²/(1 + ρ + ρ²) = 1/3 for
/// an M/M/1/K at ρ = 1 (K = 2), and its blocked fraction is the network's. 2 estimates.
#[test]
fn blocking_at_a_capacity() {
    let net = tandem("mu = 1000\ncapacity = 2", "mu = 5000");
    let sim = simulate_network(&net, 1000.0, &opts());
    let k = k_for(2);
    close("blocking at one", sim.stations[0].blocking, 1.0 / 3.0, k);
    close("blocking", sim.blocking, 1.0 / 3.0, k);
    assert_eq!(sim.stations[1].blocking.value, 0.0);
}

/// `net` with station `j`'s discipline set to `d` (the file parser is not what is tested).
fn with_discipline(mut net: Network, j: usize, d: Discipline) -> Network {
    net.stations[j].model.discipline = d;
    net
}

/// Processor sharing at one (the first station of a tandem), by hand: 100 ns of work each,
/// arrivals at 0 and 50. r0 alone 0–50 (50 done); both at rate ½ until r0's last 50 are done at
/// 150 (r1 has 50 done too); r1 alone to 200. Station two (FCFS, 200 ns): r0 150→150→350, r1
/// 200→350→550.
#[test]
fn processor_sharing_by_hand() {
    let net = with_discipline(
        tandem(
            "mu = 10_000_000\nservice = \"const\"",
            "mu = 5_000_000\nservice = \"const\"",
        ),
        0,
        Discipline::Ps,
    );
    let fates = replay_network(&net, 7, &[0, 50], usize::MAX, None);
    let ps = |a, d| Visit {
        station: 0,
        arrive_ns: a,
        start_ns: a,
        depart_ns: d,
        service_ns: 100,
    };
    assert_eq!(
        fates,
        vec![
            NetFate::Exited {
                at_ns: 350,
                class: 0,
                visits: vec![ps(0, 150), v(1, 150, 150, 350)],
            },
            NetFate::Exited {
                at_ns: 550,
                class: 0,
                visits: vec![ps(50, 200), v(1, 200, 350, 550)],
            },
        ]
    );
}

/// Preemptive priority at two (200 ns each) behind FCFS one (100 ns), by hand, the classes
/// named: r0 (class 1) at 0: one 0→0→100, two from 100. r1 (class 0) at 50: one waits for r0,
/// 50→100→200, and its transfer to two at 200 preempts r0 (100 ns done, 100 left): r1 two
/// 200→200→400, r0 resumes 400→500. Without the preemption (class 1 for both, or non-preemptive
/// priority) r0 leaves two at 300 and r1 runs 300→500.
#[test]
fn a_transfer_preempts_by_hand() {
    let base = tandem(
        "mu = 10_000_000\nservice = \"const\"",
        "mu = 5_000_000\nservice = \"const\"",
    );
    let net = with_discipline(base.clone(), 1, Discipline::PriorityPreemptive);
    let fates = replay_network(&net, 7, &[0, 50], usize::MAX, Some(&[1, 0]));
    assert_eq!(
        fates,
        vec![
            NetFate::Exited {
                at_ns: 500,
                class: 1,
                visits: vec![v(0, 0, 0, 100), v(1, 100, 100, 500).with_service(200)],
            },
            NetFate::Exited {
                at_ns: 400,
                class: 0,
                visits: vec![v(0, 50, 100, 200), v(1, 200, 200, 400)],
            },
        ]
    );
    let unbroken = vec![
        vec![v(0, 0, 0, 100), v(1, 100, 100, 300)],
        vec![v(0, 50, 100, 200), v(1, 200, 300, 500)],
    ];
    for (d, classes) in [
        (Discipline::PriorityPreemptive, [1, 1]),
        (Discipline::Priority, [1, 0]),
        (Discipline::Fcfs, [1, 0]),
    ] {
        let net = with_discipline(base.clone(), 1, d);
        let fates = replay_network(&net, 7, &[0, 50], usize::MAX, Some(&classes));
        let visits: Vec<Vec<Visit>> = fates.iter().map(|f| f.visits().to_vec()).collect();
        assert_eq!(visits, unbroken, "{d}");
        assert_eq!(fates[1].class(), classes[1]);
    }
}

/// LCFS and non-preemptive priority at one (100 ns each) in front of an infinite-server two
/// (200 ns), by hand: r0 (class 1) at 0, r1 (class 1) at 10, r2 (class 0) at 20. Both serve r0
/// 0→100; then LCFS takes the latest waiting, r2, 100→200, and r1 200→300; priority takes r2
/// too (class 0), and r1 after. With classes (1, 0, 1) LCFS is unchanged and priority takes r1
/// first. Two: d = a + 200.
#[test]
fn lcfs_and_priority_by_hand() {
    let base = tandem(
        "mu = 10_000_000\nservice = \"const\"",
        "mu = 5_000_000\nservice = \"const\"\nservers = \"inf\"",
    );
    let late_first = vec![
        vec![v(0, 0, 0, 100), v(1, 100, 100, 300)],
        vec![v(0, 10, 200, 300), v(1, 300, 300, 500)],
        vec![v(0, 20, 100, 200), v(1, 200, 200, 400)],
    ];
    let r1_first = vec![
        late_first[0].clone(),
        vec![v(0, 10, 100, 200), v(1, 200, 200, 400)],
        vec![v(0, 20, 200, 300), v(1, 300, 300, 500)],
    ];
    for (d, classes, want) in [
        (Discipline::Lcfs, [1, 1, 0], &late_first),
        (Discipline::Lcfs, [1, 0, 1], &late_first),
        (Discipline::Priority, [1, 1, 0], &late_first),
        (Discipline::Priority, [1, 0, 1], &r1_first),
        (Discipline::Fcfs, [1, 1, 0], &r1_first),
    ] {
        let net = with_discipline(base.clone(), 0, d);
        let fates = replay_network(&net, 7, &[0, 10, 20], usize::MAX, Some(&classes));
        let visits: Vec<Vec<Visit>> = fates.iter().map(|f| f.visits().to_vec()).collect();
        assert_eq!(&visits, want, "{d} {classes:?}");
        let exits: Vec<u64> = fates.iter().map(NetFate::at_ns).collect();
        let want_exits: Vec<u64> = want.iter().map(|v| v[1].depart_ns).collect();
        assert_eq!(exits, want_exits);
    }
}

/// The order of events at one instant, by a constructed tie. Stations f, l, p (each FCFS,
/// decided at admission, or LCFS, event-driven), all 100 ns and all to c (FCFS, 50 ns), then the
/// exit; the entry a quarter to each. Requests r0, r1, r2 arrive at 0 and r3 at 100, and a seed
/// is searched for whose entry draws send r0 to the third station of the file, r1 to the second,
/// r2 to the first and r3 to c. All three leave their station at 100; at 100 the event-driven
/// departures are processed first, by station index, each creating its transfer then; the
/// transfers created at admission (at 0, in admission order r0, r1, r2) are older; the
/// transfers then arrive at c oldest first, and the external r3 last. c's start and departure
/// per request (r0, r1, r2, r3), by hand:
/// - f FCFS, l and p LCFS: f's r2 is transfer 0; departures l (r1) then p (r0): 1, 2. At c r2
///   100→150, r1 150→200, r0 200→250, r3 250→300.
/// - the file p before l (r0 now at l, index 2; r1 at p, index 1): the same, by index.
/// - all LCFS: departures f (r2), l (r1), p (r0): the same.
/// - f and l FCFS, p LCFS: r1 (l) 0 and r2 (f) 1 at admission, p's r0 2: r1, r2, r0.
/// - f LCFS, l and p FCFS: r0 (p) 0 and r1 (l) 1 at admission, f's r2 2 when it departs:
///   r0, r1, r2 (a departure processed first does not make its transfer older).
///
/// And at one station a departure comes before a transfer's arrival at the same instant:
/// behind an FCFS one (100 ns), an LCFS two (100 ns) with capacity 1: r0 is at two 100→200;
/// r1 (one 100→200) arrives at two at 200, as r0 leaves, and is admitted, 200→300.
#[test]
fn simultaneous_events_follow_the_order_rule() {
    let file = |order: [&str; 3], disciplines: [&str; 3]| {
        let mut t = String::new();
        for (name, d) in order.iter().zip(disciplines) {
            t.push_str(&format!(
                "[[station]]\nname = \"{name}\"\nmu = 10_000_000\nservice = \"const\"\n\
                 discipline = \"{d}\"\n"
            ));
        }
        t.push_str("[[station]]\nname = \"c\"\nmu = 20_000_000\nservice = \"const\"\n[routing]\n");
        t.push_str(&format!(
            "entry = {{ {} = 0.25, {} = 0.25, {} = 0.25, c = 0.25 }}\n",
            order[0], order[1], order[2]
        ));
        t.push_str("f = { c = 1 }\nl = { c = 1 }\np = { c = 1 }\nc = { exit = 1 }\n");
        Network::parse(&t).expect("valid in this test")
    };
    let net = file(["f", "l", "p"], ["fcfs", "lcfs", "lcfs"]);
    let seed = (0..100_000u64)
        .find(|&s| {
            let mut r = rng(s, ENTRY_STREAM);
            [2, 1, 0, 3]
                .iter()
                .all(|&j| net.hop(None, r.random::<f64>()) == Hop::Station(j))
        })
        .expect("valid in this test");
    let at_c = |net: &Network| -> Vec<(u64, u64)> {
        let c = net.station("c").expect("valid in this test");
        let fates = replay_network(net, seed, &[0, 0, 0, 100], usize::MAX, None);
        fates
            .iter()
            .map(|f| {
                let vis = f.visits().last().expect("valid in this test");
                assert_eq!(vis.station, c);
                assert_eq!(vis.arrive_ns, 100);
                (vis.start_ns, vis.depart_ns)
            })
            .collect()
    };
    let (first, second, third, last) = ((100, 150), (150, 200), (200, 250), (250, 300));
    let r2_r1_r0 = vec![third, second, first, last];
    assert_eq!(at_c(&net), r2_r1_r0);
    assert_eq!(
        at_c(&file(["f", "p", "l"], ["fcfs", "lcfs", "lcfs"])),
        r2_r1_r0
    );
    assert_eq!(
        at_c(&file(["f", "l", "p"], ["lcfs", "lcfs", "lcfs"])),
        r2_r1_r0
    );
    assert_eq!(
        at_c(&file(["f", "l", "p"], ["fcfs", "fcfs", "lcfs"])),
        vec![third, first, second, last]
    );
    assert_eq!(
        at_c(&file(["f", "l", "p"], ["lcfs", "fcfs", "fcfs"])),
        vec![first, second, third, last]
    );

    let net = tandem(
        "mu = 10_000_000\nservice = \"const\"",
        "mu = 10_000_000\nservice = \"const\"\ndiscipline = \"lcfs\"\ncapacity = 1",
    );
    let fates = replay_network(&net, 7, &[0, 100], usize::MAX, None);
    assert_eq!(
        fates[1],
        NetFate::Exited {
            at_ns: 300,
            class: 0,
            visits: vec![v(0, 100, 100, 200), v(1, 200, 200, 300)],
        }
    );
}

/// The classes: drawn per external arrival from the class stream (`classes.draw` of its n-th
/// uniform, checked one by one), their frequencies over 30 000 arrivals against the file's mix
/// by a chi-square test (2 degrees of freedom, the threshold its 1 − 10⁻⁶ quantile: a correct
/// program fails with probability 10⁻⁶; the draws are independent uniforms, so the counts are
/// multinomial); `classes` overriding some of them (clamped to MAX_CLASSES − 1) while the draws
/// of the others stay; one class: every request class 0.
#[test]
fn classes_are_drawn_and_overridden() {
    let text = "classes = \"0.2,0.3,0.5\"\n[[station]]\nname = \"a\"\nmu = 100000\n\
                discipline = \"priority\"\n[routing]\nentry = { a = 1 }\na = { exit = 1 }\n";
    let net = Network::parse(text).expect("valid in this test");
    let n = 30_000u64;
    let arrivals: Vec<u64> = (0..n).map(|i| i * 100_000).collect();
    let seed = 21;
    let fates = replay_network(&net, seed, &arrivals, usize::MAX, None);
    let mut draws = rng(seed, CLASS_STREAM);
    let drawn: Vec<u8> = (0..n)
        .map(|_| net.classes.draw(draws.random::<f64>()))
        .collect();
    let classes: Vec<u8> = fates.iter().map(NetFate::class).collect();
    assert_eq!(classes, drawn);
    let mut counts = [0u64; 3];
    for &c in &classes {
        counts[usize::from(c)] += 1;
    }
    let chi2: f64 = counts
        .iter()
        .zip(net.classes.probabilities())
        .map(|(&o, &p)| {
            let e = p * n as f64;
            (o as f64 - e).powi(2) / e
        })
        .sum();
    let threshold = ChiSquared::new(2.0)
        .expect("valid in this test")
        .inverse_cdf(1.0 - 1e-6);
    assert!(chi2 <= threshold, "chi2 = {chi2} > {threshold}: {counts:?}");
    // Overrides: the first 1000 named (0, 1, …, 7, 200 → 7), the rest drawn as without.
    let named: Vec<u8> = (0..1000u32)
        .map(|i| if i % 10 == 9 { 200 } else { (i % 10) as u8 })
        .collect();
    let fates = replay_network(&net, seed, &arrivals, usize::MAX, Some(&named));
    for (i, f) in fates.iter().enumerate() {
        let want = named.get(i).map_or(drawn[i], |&c| c.min(7));
        assert_eq!(f.class(), want, "{i}");
    }
    // One class: no class draw, class 0 (even where the file's priority station serves by it).
    let one = Network::parse(&text.replace("classes = \"0.2,0.3,0.5\"\n", ""))
        .expect("valid in this test");
    let fates = replay_network(&one, seed, &arrivals[..100], usize::MAX, None);
    assert!(fates.iter().all(|f| f.class() == 0));
}

/// Shorter runs than `opts()` for the tests that simulate a network several times: 20
/// replications of 10 000 measured arrivals after 1 000 (the tolerances of the module docs
/// hold for any run length; `close` checks that the interval is still narrow).
fn short_opts() -> SimOptions {
    SimOptions {
        customers: 10_000,
        warmup: 1_000,
        replications: 20,
        seed: 5,
    }
}

/// The web/db network (feedback; single-server stations, one entry) with exponential service at
/// λ = 500/s under each discipline at both stations, two classes (30% class 0): the product form
/// holds for each (the number at a station is the same birth–death process under every
/// work-conserving discipline with one exponential rate), so the simulated end-to-end mean and
/// each station's L are the M/M/1 ones, as for FCFS. 5 disciplines × 3 estimates, plus under
/// FCFS (where the class changes nothing) each class's end-to-end mean against T: 17 estimates.
/// Under the priority disciplines class 0's mean is below class 1's, by far: at ρ_web = 0.59,
/// class 0 waits behind only its 30% of the load (beyond the 2 × 3.6 half-widths asserted); the
/// pooled histogram holds every measured sojourn, its mean the replications' mean (equal counts,
/// no blocking) to the histogram's 0.1%.
#[test]
fn every_discipline_against_the_product_form() {
    let k = k_for(17);
    let lambda = 500.0;
    for d in ["fcfs", "lcfs", "ps", "priority", "priority-preemptive"] {
        let text = WEB_DB
            .replace("mu = 1000", &format!("mu = 1000\ndiscipline = \"{d}\""))
            .replace("mu = 2000", &format!("mu = 2000\ndiscipline = \"{d}\""));
        let net = Network::parse(&format!("classes = \"0.3,0.7\"\n{text}")).expect("valid");
        let t = theory(&net, lambda).expect("valid in this test");
        assert!(t.product_form, "{d}");
        let sim = simulate_network(&net, lambda, &short_opts());
        let want = t.mean_s.expect("product form");
        close(&format!("{d} T"), sim.mean_s, want, k);
        for (s, th) in sim.stations.iter().zip(&t.stations) {
            close(
                &format!("{d} {} L", s.name),
                s.in_system,
                th.l.expect("product form"),
                k,
            );
        }
        assert_eq!(sim.class_mean_s.len(), 2);
        match d {
            "fcfs" => {
                for (c, est) in sim.class_mean_s.iter().enumerate() {
                    close(&format!("{d} T class {c}"), *est, want, k);
                }
            }
            "priority" | "priority-preemptive" => {
                let (c0, c1) = (sim.class_mean_s[0], sim.class_mean_s[1]);
                assert!(
                    c0.value + k * c0.half_width < c1.value - k * c1.half_width,
                    "{d}: class 0 {c0:?}, class 1 {c1:?}"
                );
            }
            _ => {}
        }
        let h = stats::histogram_from_string(&sim.histogram).expect("valid in this test");
        assert_eq!(h.len(), u64::from(sim.replications) * sim.customers);
        assert!(
            (h.mean() / 1e9 - sim.mean_s.value).abs() < 2e-3 * sim.mean_s.value,
            "{d}: histogram mean {} against {}",
            h.mean() / 1e9,
            sim.mean_s.value
        );
    }
}

/// Insensitivity: the web/db network with both stations processor sharing, web's service H2
/// with cv² = 4 and db's constant, has the product form of the exponential one (symmetric
/// queues: the number present depends on the service only through its mean). λ = 500/s; the
/// end-to-end mean and both L: 3 estimates. An FCFS web with the same H2 service is no product
/// form and its simulated mean is far above (checked beyond both intervals), so the test
/// tells the disciplines apart.
#[test]
fn processor_sharing_is_insensitive() {
    let text = WEB_DB
        .replace(
            "mu = 1000",
            "mu = 1000\ndiscipline = \"ps\"\nservice = \"h2:4\"",
        )
        .replace(
            "mu = 2000",
            "mu = 2000\ndiscipline = \"ps\"\nservice = \"const\"",
        );
    let net = Network::parse(&text).expect("valid in this test");
    let lambda = 500.0;
    let t = theory(&net, lambda).expect("valid in this test");
    assert!(t.product_form);
    let exp = theory(&Network::parse(WEB_DB).expect("valid"), lambda).expect("valid");
    assert_eq!(t.mean_s, exp.mean_s);
    let sim = simulate_network(&net, lambda, &short_opts());
    let k = k_for(3);
    close("PS T", sim.mean_s, t.mean_s.expect("product form"), k);
    for (s, th) in sim.stations.iter().zip(&t.stations) {
        close(
            &format!("PS {} L", s.name),
            s.in_system,
            th.l.expect("product form"),
            k,
        );
    }
    let fcfs = Network::parse(&text.replace(
        "discipline = \"ps\"\nservice = \"h2:4\"",
        "service = \"h2:4\"",
    ))
    .expect("valid in this test");
    assert!(!theory(&fcfs, lambda).expect("valid").product_form);
    let f = simulate_network(&fcfs, lambda, &short_opts());
    assert!(
        f.mean_s.value - k * f.mean_s.half_width > sim.mean_s.value + k * sim.mean_s.half_width,
        "FCFS H2 {:?} against PS {:?}",
        f.mean_s,
        sim.mean_s
    );
}

/// A two-class priority tandem (μ 1000 then 1250, λ = 700/s, class 0 30%), both stations
/// non-preemptive, then both preemptive. Replications as `simulate_network`'s (20 replays of
/// Poisson arrivals, each its own seed), computing per replication and station j the mean
/// sojourn W_{j,k} of each class of the measured requests. The conservation law: with one
/// exponential rate for every class, the number at a station is the FCFS one, so the
/// class-weighted mean Σ_k p_k W_{j,k} (weights the arrival fractions p = (0.3, 0.7), which are
/// the work fractions ρ_k/ρ with equal rates) is the FCFS M/M/1 W_j = 1/(μ_j − λ) (Jackson), 2
/// stations × 2 disciplines = 4 estimates; and class 0 is faster end to end than class 1: the
/// difference T_1 − T_0 per replication is positive beyond K·half-width (2 more, 6 in all).
#[test]
fn a_priority_tandem_conserves_the_fcfs_mean() {
    let k = k_for(6);
    let p = [0.3, 0.7];
    let lambda = 700.0;
    let opts = short_opts();
    for d in ["priority", "priority-preemptive"] {
        let net = Network::parse(&format!(
            "classes = \"0.3,0.7\"\n[[station]]\nname = \"one\"\nmu = 1000\ndiscipline = \"{d}\"\n\
             [[station]]\nname = \"two\"\nmu = 1250\ndiscipline = \"{d}\"\n[routing]\n\
             entry = {{ one = 1 }}\none = {{ two = 1 }}\ntwo = {{ exit = 1 }}\n"
        ))
        .expect("valid in this test");
        let mut weighted = [Vec::new(), Vec::new()];
        let mut gap = Vec::new();
        for r in 0..opts.replications {
            let seed = replication_seed(opts.seed, r);
            let mut gaps = rng(seed, 0);
            let mut t = 0u64;
            let total = (opts.warmup + opts.customers) as usize;
            let arrivals: Vec<u64> = (0..total)
                .map(|_| {
                    t += (-(1.0 - gaps.random::<f64>()).ln() / lambda * 1e9) as u64;
                    t
                })
                .collect();
            let fates = replay_network(&net, seed, &arrivals, usize::MAX, None);
            // [station][class] sums (ns) and counts; end to end per class.
            let mut sum = [[0u64; 2]; 2];
            let mut n = [0u64; 2];
            let mut e2e = [0u64; 2];
            for (i, f) in fates.iter().enumerate().skip(opts.warmup as usize) {
                let c = usize::from(f.class());
                n[c] += 1;
                for vis in f.visits() {
                    sum[vis.station][c] += vis.depart_ns - vis.arrive_ns;
                }
                e2e[c] += f.at_ns() - arrivals[i];
            }
            for j in 0..2 {
                weighted[j].push(
                    (0..2)
                        .map(|c| p[c] * sum[j][c] as f64 / n[c] as f64 / 1e9)
                        .sum::<f64>(),
                );
            }
            gap.push((e2e[1] as f64 / n[1] as f64 - e2e[0] as f64 / n[0] as f64) / 1e9);
        }
        for (j, mu) in [1000.0, 1250.0].into_iter().enumerate() {
            close(
                &format!("{d} station {j}: Σ p_k W_k"),
                Estimate::from_replications(&weighted[j]),
                1.0 / (mu - lambda),
                k,
            );
        }
        let g = Estimate::from_replications(&gap);
        assert!(g.value > k * g.half_width, "{d}: T_1 − T_0 = {g:?}");
    }
}

/// The shipped docs/networks/web-db-classes.toml (a preemptive-priority web, a processor-sharing
/// db with H2 service, two classes) says it has web-db.toml's theory: the same visit ratios,
/// utilisations and λ_max, and the same product form per station and end to end (exponential
/// service under any work-conserving discipline; processor sharing insensitive). Both are
/// computed by the same code from different files, so equality is exact.
#[test]
fn the_shipped_classes_network_has_the_web_db_theory() {
    let net = Network::parse(WEB_DB_CLASSES).expect("the shipped file parses");
    let plain = Network::parse(WEB_DB).expect("the shipped file parses");
    assert_eq!(net.classes.len(), 2);
    assert_eq!(
        net.stations[0].model.discipline,
        Discipline::PriorityPreemptive
    );
    assert_eq!(net.stations[1].model.discipline, Discipline::Ps);
    for lambda in [100.0, 400.0, 700.0] {
        let t = theory(&net, lambda).expect("stable");
        let p = theory(&plain, lambda).expect("stable");
        assert!(t.product_form, "at {lambda}/s");
        assert_eq!(t.lambda_max, p.lambda_max);
        assert_eq!(t.mean_s, p.mean_s, "at {lambda}/s");
        for (a, b) in t.stations.iter().zip(&p.stations) {
            assert_eq!((a.visits, a.rho, a.l, a.w_s), (b.visits, b.rho, b.l, b.w_s));
        }
    }
}
