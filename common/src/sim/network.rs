//! The reference simulator of open networks of queues ([`crate::network`]): an exact replay of
//! given external arrivals ([`replay_network`]), against which `qserve --network` is held
//! customer by customer, and seeded independent replications at a Poisson rate
//! ([`simulate_network`]).
//!
//! # What a replay computes (the semantics `qserve --network` must match)
//!
//! Every station is FCFS with `c` servers (or infinitely many), as `qserve`'s single queue:
//!
//! - The draws follow the contract of [`crate::network`]'s module docs: the n-th external
//!   arrival draws `u = rng.random::<f64>()` from `rng(seed, ENTRY_STREAM)` and enters
//!   [`Network::hop`]`(None, u)`; the n-th arrival at station `j` (external or a transfer,
//!   admitted or blocked) draws first its service time `sampler.sample_ns(&mut s)` with `s =
//!   rng(seed, service_stream(j))` and `sampler` station `j`'s [`Model::sampler`], then `u =
//!   r.random::<f64>()` with `r = rng(seed, route_stream(j))`, and goes next to
//!   [`Network::hop`]`(Some(j), u)` when it leaves `j`. `random::<f64>()` is `rand`'s standard
//!   uniform on [0, 1) (53 random bits).
//! - At an arrival at `j` at time `a`, the requests present at `j` are those admitted there
//!   with a departure `d > a` (a departure at the instant of an arrival has happened first). If
//!   they are `limit_j` or more the arrival is blocked: the request leaves the network at `a`
//!   ([`NetFate::Blocked`]; the blocked visit is not in its visits). `limit_j` is the station's
//!   capacity K, or the `limit` argument (the overflow limit) when it has none.
//! - Otherwise, with `c` servers: `start = max(a, earliest free time of the c servers)`, on that
//!   server, which is free again at `d = start + S` (Lindley's recursion for `c = 1`); with
//!   infinitely many, `start = a`, `d = a + S`. Zero service gives `S = 0`, `d = a`.
//! - The departure from `j` at `d` is at once the arrival at the next station, or the exit at
//!   `d` ([`NetFate::Exited`]).
//! - The order of events: in time order; at the same nanosecond the transfers (arrivals at a
//!   station from another station) come before the external arrivals, and transfers at the same
//!   instant come in the order they were created, a transfer being created when its request is
//!   admitted at the station it leaves (that is when its departure time is known). External
//!   arrivals at the same instant come in the order given. This fixes which arrival at a station
//!   is the n-th (its draws) and the FCFS order of arrivals at the same instant.
//!
//! Other disciplines than FCFS are replayed as FCFS (a network with them is accepted by
//! [`Network::parse`]; `qserve` may refuse it).
//!
//! # Replications
//!
//! [`simulate_network`]'s replication `r` is exactly [`replay_network`] of the network with seed
//! [`replication_seed`]`(opts.seed, r)` on Poisson arrivals drawn from `rng(that seed, 0)`
//! (stream 0 is none of the network's streams) by [`Schedule`]`::next_ns`, the first
//! `opts.warmup` external arrivals discarded and the next `opts.customers` measured.
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hdrhistogram::Histogram;
use rand::RngExt;

use super::Estimate;
use super::SimOptions;
#[cfg(doc)]
use crate::model::Model;
use crate::model::Servers;
use crate::network::{ENTRY_STREAM, Hop, Network, route_stream, service_stream};
use crate::samplers::{self, ArrivalKind, Schedule, ServiceSampler};
use crate::stats;

/// One visit of a request at a station (all times in ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    /// The station (its index in [`Network::stations`]).
    pub station: usize,
    /// Its arrival at the station.
    pub arrive_ns: u64,
    /// The start of its service.
    pub start_ns: u64,
    /// Its departure (`start_ns + service_ns`).
    pub depart_ns: u64,
    /// Its service time.
    pub service_ns: u64,
}

/// What became of an external arrival in [`replay_network`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetFate {
    /// It left the network at `at_ns` after `visits`.
    Exited {
        /// Its exit (the departure of its last visit).
        at_ns: u64,
        /// Its visits in order.
        visits: Vec<Visit>,
    },
    /// It was blocked at `station` at `at_ns` (the station held its capacity or the overflow
    /// limit) after `visits` (which do not include the blocked one).
    Blocked {
        /// The instant of the blocked arrival.
        at_ns: u64,
        /// The station that turned it away.
        station: usize,
        /// Its visits before.
        visits: Vec<Visit>,
    },
}

impl NetFate {
    /// Its visits.
    pub fn visits(&self) -> &[Visit] {
        match self {
            NetFate::Exited { visits, .. } | NetFate::Blocked { visits, .. } => visits,
        }
    }

    /// When it left the network (exit or blocking).
    pub fn at_ns(&self) -> u64 {
        match self {
            NetFate::Exited { at_ns, .. } | NetFate::Blocked { at_ns, .. } => *at_ns,
        }
    }
}

/// The fate of each external arrival of `arrivals_ns` (non-decreasing, ns) in `net` with the
/// draws of `seed`, `limit` being the overflow limit of a station without a capacity; exactly as
/// the module docs say.
///
/// # Panics
/// If the arrival times decrease.
pub fn replay_network(net: &Network, seed: u64, arrivals_ns: &[u64], limit: usize) -> Vec<NetFate> {
    let mut fates: Vec<Option<NetFate>> = vec![None; arrivals_ns.len()];
    run(net, seed, arrivals_ns, limit, |i, fate| {
        if let Some(f) = fates.get_mut(i) {
            *f = Some(fate);
        }
    });
    fates
        .into_iter()
        .map(|f| {
            // Every request ends (the exit is reachable from every station).
            f.unwrap_or(NetFate::Exited {
                at_ns: 0,
                visits: Vec::new(),
            })
        })
        .collect()
}

/// One station under replay.
struct StationState {
    sampler: ServiceSampler,
    service_rng: samplers::Rng,
    route_rng: samplers::Rng,
    /// The free times of the c servers (a min-heap), or `None` for infinitely many.
    free: Option<BinaryHeap<Reverse<u64>>>,
    /// The departures of the requests present (a min-heap).
    pending: BinaryHeap<Reverse<u64>>,
    limit: usize,
}

/// A transfer: `(time, creation order, request, station)`, taken smallest first.
type Transfer = Reverse<(u64, u64, usize, usize)>;

/// The replay: calls `on_fate(i, fate)` for each external arrival `i` once it has left.
fn run(
    net: &Network,
    seed: u64,
    arrivals_ns: &[u64],
    limit: usize,
    mut on_fate: impl FnMut(usize, NetFate),
) {
    let mut stations: Vec<StationState> = net
        .stations
        .iter()
        .enumerate()
        .map(|(j, s)| StationState {
            sampler: s.model.sampler(),
            service_rng: samplers::rng(seed, service_stream(j)),
            route_rng: samplers::rng(seed, route_stream(j)),
            free: match s.model.servers {
                Servers::Finite(c) => Some((0..c.max(1)).map(|_| Reverse(0)).collect()),
                Servers::Infinite => None,
            },
            pending: BinaryHeap::new(),
            limit: s
                .model
                .capacity
                .map_or(limit, |k| usize::try_from(k).unwrap_or(usize::MAX)),
        })
        .collect();
    let mut entry_rng = samplers::rng(seed, ENTRY_STREAM);
    let mut visits: Vec<Vec<Visit>> = vec![Vec::new(); arrivals_ns.len()];
    let mut transfers: BinaryHeap<Transfer> = BinaryHeap::new();
    let mut created = 0u64;
    // The arrival of request `r` at station `j` at `t`.
    let mut arrive = |r: usize,
                      j: usize,
                      t: u64,
                      visits: &mut Vec<Vec<Visit>>,
                      transfers: &mut BinaryHeap<Transfer>,
                      on_fate: &mut dyn FnMut(usize, NetFate)| {
        let st = &mut stations[j];
        let service = st.sampler.sample_ns(&mut st.service_rng);
        let u = st.route_rng.random::<f64>();
        while st.pending.peek().is_some_and(|&Reverse(d)| d <= t) {
            st.pending.pop();
        }
        if st.pending.len() >= st.limit {
            on_fate(
                r,
                NetFate::Blocked {
                    at_ns: t,
                    station: j,
                    visits: std::mem::take(&mut visits[r]),
                },
            );
            return;
        }
        let start = match &mut st.free {
            None => t,
            Some(free) => {
                let earliest = free.pop().map_or(0, |Reverse(f)| f);
                let start = t.max(earliest);
                free.push(Reverse(start.saturating_add(service)));
                start
            }
        };
        let d = start.saturating_add(service);
        st.pending.push(Reverse(d));
        visits[r].push(Visit {
            station: j,
            arrive_ns: t,
            start_ns: start,
            depart_ns: d,
            service_ns: service,
        });
        match net.hop(Some(j), u) {
            Hop::Station(k) => {
                transfers.push(Reverse((d, created, r, k)));
                created += 1;
            }
            Hop::Exit => on_fate(
                r,
                NetFate::Exited {
                    at_ns: d,
                    visits: std::mem::take(&mut visits[r]),
                },
            ),
        }
    };
    let mut last = 0;
    for (i, &a) in arrivals_ns.iter().enumerate() {
        assert!(
            a >= last,
            "replay_network: arrival {i} at {a} ns is before the one ahead of it ({last} ns)"
        );
        last = a;
        while let Some(&Reverse((t, _, r, k))) = transfers.peek() {
            if t > a {
                break;
            }
            transfers.pop();
            arrive(r, k, t, &mut visits, &mut transfers, &mut on_fate);
        }
        let u = entry_rng.random::<f64>();
        match net.hop(None, u) {
            Hop::Station(j) => arrive(i, j, a, &mut visits, &mut transfers, &mut on_fate),
            // Not for a parsed network (the entry names stations only).
            Hop::Exit => on_fate(
                i,
                NetFate::Exited {
                    at_ns: a,
                    visits: Vec::new(),
                },
            ),
        }
    }
    while let Some(Reverse((t, _, r, k))) = transfers.pop() {
        arrive(r, k, t, &mut visits, &mut transfers, &mut on_fate);
    }
}

/// The seed of replication `r` of [`simulate_network`]: `seed` for `r = 0`, else `seed` XOR
/// `r·0x9E3779B97F4A7C15` (the generator's seeding hashes it, so nearby seeds give unrelated
/// streams).
pub fn replication_seed(seed: u64, r: u32) -> u64 {
    seed ^ u64::from(r).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// One station of a [`NetworkSimResult`].
#[derive(Debug, Clone, PartialEq)]
pub struct StationSim {
    /// Its name.
    pub name: String,
    /// Visits (admitted) per measured external arrival.
    pub visits: Estimate,
    /// Busy time over c × the measured span (with infinitely many servers: over the span, the
    /// mean number in service).
    pub utilisation: Estimate,
    /// Mean number present L (time average over the measured span).
    pub in_system: Estimate,
    /// Mean sojourn per admitted visit W (s) of the measured requests.
    pub mean_s: Estimate,
    /// Fraction of the measured requests' arrivals at it that it blocked.
    pub blocking: Estimate,
}

/// A network simulated at an external Poisson rate ([`simulate_network`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSimResult {
    /// Replications run.
    pub replications: u32,
    /// External arrivals measured per replication.
    pub customers: u64,
    /// Per station, in file order.
    pub stations: Vec<StationSim>,
    /// Mean end-to-end sojourn of the requests that exited (s).
    pub mean_s: Estimate,
    /// Its median (s).
    pub p50_s: Estimate,
    /// Its 90th percentile (s).
    pub p90_s: Estimate,
    /// Its 99th percentile (s).
    pub p99_s: Estimate,
    /// Fraction of the measured requests blocked somewhere.
    pub blocking: Estimate,
    /// Mean number in the network (time average, Σ of the stations').
    pub in_system: Estimate,
}

/// `net` with Poisson external arrivals at `lambda`, simulated per `opts` (see the module docs,
/// "Replications"); no overflow limit (a station without a capacity never blocks).
///
/// The measured span is from the arrival of the first measured request to the arrival that
/// follows the last; time averages (L, utilisation) integrate over it the visits of every
/// request, measured or not; the per-visit and end-to-end values are those of the measured
/// requests, each followed to its end.
///
/// # Panics
/// If `lambda` is not positive and finite.
pub fn simulate_network(net: &Network, lambda: f64, opts: &SimOptions) -> NetworkSimResult {
    assert!(
        lambda.is_finite() && lambda > 0.0,
        "simulate_network: the arrival rate must be positive and finite, got {lambda}"
    );
    let runs: Vec<NetRun> = (0..opts.replications)
        .map(|r| net_replication(net, lambda, opts, r))
        .collect();
    let estimate = |f: &dyn Fn(&NetRun) -> f64| {
        Estimate::from_replications(&runs.iter().map(f).collect::<Vec<_>>())
    };
    let stations = net
        .stations
        .iter()
        .enumerate()
        .map(|(j, s)| StationSim {
            name: s.name.clone(),
            visits: estimate(&|r| r.stations[j][0]),
            utilisation: estimate(&|r| r.stations[j][1]),
            in_system: estimate(&|r| r.stations[j][2]),
            mean_s: estimate(&|r| r.stations[j][3]),
            blocking: estimate(&|r| r.stations[j][4]),
        })
        .collect();
    NetworkSimResult {
        replications: opts.replications,
        customers: opts.customers,
        stations,
        mean_s: estimate(&|r| r.mean_s),
        p50_s: estimate(&|r| r.quantiles_s[0]),
        p90_s: estimate(&|r| r.quantiles_s[1]),
        p99_s: estimate(&|r| r.quantiles_s[2]),
        blocking: estimate(&|r| r.blocking),
        in_system: estimate(&|r| r.in_system),
    }
}

/// The values of one replication: per station [visits, utilisation, L, W, blocking].
struct NetRun {
    stations: Vec<[f64; 5]>,
    mean_s: f64,
    quantiles_s: [f64; 3],
    blocking: f64,
    in_system: f64,
}

/// The length of `[lo, hi] ∩ [a, b]` (ns).
fn overlap(lo: u64, hi: u64, a: u64, b: u64) -> u64 {
    hi.min(b).saturating_sub(lo.max(a))
}

fn net_replication(net: &Network, lambda: f64, opts: &SimOptions, r: u32) -> NetRun {
    let seed = replication_seed(opts.seed, r);
    let mut arrival_rng = samplers::rng(seed, 0);
    let mut schedule = Schedule::new(ArrivalKind::Poisson, lambda);
    let warmup = usize::try_from(opts.warmup).unwrap_or(usize::MAX);
    let total = warmup.saturating_add(usize::try_from(opts.customers).unwrap_or(usize::MAX));
    // One more arrival than fed: the end of the measured span.
    let arrivals: Vec<u64> = (0..=total)
        .map(|_| schedule.next_ns(&mut arrival_rng))
        .collect();
    let (span_lo, span_hi) = (arrivals[warmup.min(total)], arrivals[total]);
    let span = span_hi.saturating_sub(span_lo) as f64;
    let n = net.stations.len();
    let mut area = vec![0u128; n];
    let mut busy = vec![0u128; n];
    let mut count = vec![0u64; n];
    let mut sum_ns = vec![0u128; n];
    let mut blocked_at = vec![0u64; n];
    let mut histogram: Histogram<u64> = stats::new_histogram();
    let (mut exited, mut exit_sum_ns, mut blocked) = (0u64, 0u128, 0u64);
    run(net, seed, &arrivals[..total], usize::MAX, |i, fate| {
        for v in fate.visits() {
            area[v.station] += u128::from(overlap(v.arrive_ns, v.depart_ns, span_lo, span_hi));
            busy[v.station] += u128::from(overlap(v.start_ns, v.depart_ns, span_lo, span_hi));
        }
        if i < warmup {
            return;
        }
        for v in fate.visits() {
            count[v.station] += 1;
            sum_ns[v.station] += u128::from(v.depart_ns - v.arrive_ns);
        }
        match fate {
            NetFate::Exited { at_ns, .. } => {
                let t = at_ns - arrivals[i];
                stats::record_ns(&mut histogram, t);
                exited += 1;
                exit_sum_ns += u128::from(t);
            }
            NetFate::Blocked { station, .. } => {
                blocked += 1;
                blocked_at[station] += 1;
            }
        }
    });
    let measured = opts.customers as f64;
    let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { f64::NAN };
    let stations = (0..n)
        .map(|j| {
            let servers = match net.stations[j].model.servers {
                Servers::Finite(c) => f64::from(c),
                Servers::Infinite => 1.0,
            };
            [
                ratio(count[j] as f64, measured),
                ratio(busy[j] as f64, servers * span),
                ratio(area[j] as f64, span),
                ratio(sum_ns[j] as f64 / 1e9, count[j] as f64),
                ratio(blocked_at[j] as f64, (count[j] + blocked_at[j]) as f64),
            ]
        })
        .collect();
    let quantile = |q: f64| {
        if exited == 0 {
            f64::NAN
        } else {
            histogram.value_at_quantile(q) as f64 / 1e9
        }
    };
    NetRun {
        stations,
        mean_s: ratio(exit_sum_ns as f64 / 1e9, exited as f64),
        quantiles_s: [quantile(0.5), quantile(0.9), quantile(0.99)],
        blocking: ratio(blocked as f64, measured),
        in_system: ratio(area.iter().sum::<u128>() as f64, span),
    }
}
