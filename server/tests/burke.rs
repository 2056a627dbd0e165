//! Burke's check on the network model (no sockets): the departure-gap histogram a station
//! keeps ([`queuelab_server::network::DepartureGaps`]) is exact, its edges are the
//! documented ones, and its KS distance to Exp(λ) is within noise for an M/M/1 first station
//! (Burke: its departures are Poisson) and far beyond it for an M/D/1 one.
use queuelab_common::model::{Model, Servers, ServiceKind};
use queuelab_common::network::{Network, Station};
use queuelab_common::samplers::{exp_sample, rng};
use queuelab_common::stats::{ks_critical, ks_edges};
use queuelab_server::network::{DepartureGaps, GAP_BUCKETS, GAP_EDGES_NS, NetworkModel};

/// A tandem: `first` (μ = 1000) then an M/M/1 at μ = 1000, then exit.
fn tandem(first: ServiceKind) -> Network {
    Network {
        stations: vec![
            Station {
                name: "web".into(),
                model: Model::new(1000.0, Servers::Finite(1)).with_service(first),
            },
            Station {
                name: "db".into(),
                model: Model::new(1000.0, Servers::Finite(1)),
            },
        ],
        entry: vec![1.0, 0.0],
        routing: vec![vec![0.0, 1.0], vec![0.0, 0.0]],
        exit: vec![0.0, 1.0],
        classes: Default::default(),
    }
}

const WARMUP: usize = 20_000;
const MEASURED: usize = 100_000;

/// Feeds `net` Poisson arrivals at `lambda` (seeded) and returns station 0's gaps over the
/// measured arrivals: the difference of its histogram after the warm-up and at the end.
fn measured_gaps(net: &Network, lambda: f64, seed: u64) -> DepartureGaps {
    let mut m = NetworkModel::new(net, seed, usize::MAX);
    let mut r = rng(seed, 1_000);
    let mut t = 0u64;
    let mut before = DepartureGaps::default();
    for i in 0..WARMUP + MEASURED {
        t += (exp_sample(1.0 / lambda, &mut r) * 1e9).round() as u64;
        m.arrive(t, None);
        if i + 1 == WARMUP {
            before = m.station_at(0, t).0.gaps;
        }
    }
    let after = m.station_at(0, t).0.gaps;
    let mut d = after;
    for (x, b) in d.le.iter_mut().zip(&before.le) {
        *x -= b;
    }
    d.count -= before.count;
    d.sum_ns -= before.sum_ns;
    d
}

fn ks_exp(g: &DepartureGaps, lambda: f64) -> f64 {
    let edges: Vec<f64> = GAP_EDGES_NS.iter().map(|&e| e as f64 * 1e-9).collect();
    ks_edges(&edges, &g.le, g.count, |x| 1.0 - (-lambda * x).exp())
}

/// The threshold of the M/M/1 cases. Under Burke the measured gaps (a window starting after
/// 20000 arrivals, by when an M/M/1 queue at ρ ≤ 0.8, relaxation time ≈ 1/(μ(1 − √ρ)²) ≈ 90
/// arrivals, is stationary to far below 10⁻⁶) are i.i.d. Exp(λ), so by the
/// Dvoretzky–Kiefer–Wolfowitz inequality P(D > ε) ≤ 2e^{−2nε²} = 10⁻⁶ at ε = ks_critical(n,
/// 10⁻⁶) (≈ 0.0085 at n = 10⁵), and the edge-restricted D is at most D. The arrival and service
/// times are whole nanoseconds: that moves a gap by < 2 ns, the CDF at an edge by < 2λ·10⁻⁹;
/// 10⁻⁵ covers it.
fn threshold(n: u64) -> f64 {
    ks_critical(n, 1e-6) + 1e-5
}

#[test]
fn the_edges_are_the_documented_log_spacing() {
    assert_eq!(GAP_EDGES_NS.len(), GAP_BUCKETS);
    for (k, &e) in GAP_EDGES_NS.iter().enumerate() {
        let want = (1000.0 * 10f64.powf(7.0 * k as f64 / 47.0)).round() as u64;
        assert_eq!(e, want, "edge {k}");
    }
    assert_eq!(GAP_EDGES_NS[0], 1_000);
    assert_eq!(GAP_EDGES_NS[GAP_BUCKETS - 1], 10_000_000_000);
}

#[test]
fn gaps_are_counted_cumulatively_and_exactly() {
    let mut g = DepartureGaps::default();
    g.depart(5_000);
    assert_eq!(g.count, 0, "the first departure has no gap");
    g.depart(5_000 + 1_000); // exactly on the first edge: counted there
    g.depart(6_000 + 1_001); // just above it: from the second edge
    g.depart(7_001 + 20_000_000_000); // beyond the last edge: only in +Inf
    assert_eq!(g.count, 3);
    assert_eq!(g.sum_ns, 1_000 + 1_001 + 20_000_000_000);
    assert_eq!(g.le[0], 1);
    assert_eq!(g.le[1], 2);
    assert_eq!(g.le[GAP_BUCKETS - 1], 2);
}

#[test]
fn every_station_keeps_gaps_as_the_clock_passes_them() {
    let mut net = tandem(ServiceKind::Exp);
    net.stations[1].model = Model::new(1000.0, Servers::Finite(2));
    let mut m = NetworkModel::new(&net, 3, usize::MAX);
    // One departure passed: no gap yet.
    m.arrive(1, None);
    assert_eq!(m.station_at(1, 1_000_000_000).0.gaps.count, 0);
    let mut m = NetworkModel::new(&net, 3, usize::MAX);
    for i in 1..=100u64 {
        m.arrive(i * 2_000_000, None);
    }
    let now = 1_000_000_000;
    assert_eq!(m.station_at(0, now).0.gaps.count, 99);
    assert_eq!(m.station_at(1, now).0.gaps.count, 99);
}

#[test]
fn burke_mm1_departures_are_exponential_within_noise() {
    for (rho, seed) in [(0.5, 11), (0.8, 12)] {
        let lambda = rho * 1000.0;
        let g = measured_gaps(&tandem(ServiceKind::Exp), lambda, seed);
        assert!(g.count as usize >= MEASURED - 10, "{}", g.count);
        let d = ks_exp(&g, lambda);
        let t = threshold(g.count);
        eprintln!("M/M/1 ρ = {rho}: n = {}, D = {d:.5}, bound {t:.5}", g.count);
        assert!(d < t, "ρ = {rho}: D = {d} over the noise bound {t}");
    }
}

#[test]
fn burke_fails_for_md1_departures() {
    // An M/D/1 station at ρ = 0.8: a departure leaves the queue non-empty with probability ρ,
    // and then the next gap is exactly 1/μ = 1 ms; so F(0.952 ms) (the edge below 1 ms) is the
    // idle gaps' share only, at most about P(idle + 1 ms ≤ 0.952 ms) = 0, where Exp(800) has
    // 1 − e^{−0.762} ≈ 0.53. D is at least about 0.5, some 60 times the noise bound.
    let lambda = 800.0;
    let g = measured_gaps(&tandem(ServiceKind::Const), lambda, 13);
    let d = ks_exp(&g, lambda);
    let t = threshold(g.count);
    eprintln!("M/D/1 ρ = 0.8: n = {}, D = {d:.5}, bound {t:.5}", g.count);
    assert!(d > 0.4, "D = {d}");
    assert!(d > 10.0 * t, "D = {d} not beyond the noise bound {t}");
}
