//! An exact discrete-event simulation of every model `qserve` emulates: the reference where no
//! closed form exists (percentiles of M/G/1 and M/G/c, processor sharing, LCFS, priority classes,
//! traces, finite-source systems with a general service time), and a check of the closed forms
//! where they do.
//!
//! Networks of queues have their own replay and simulation in [`network`] (re-exported here).
//!
//! Two uses:
//! - [`replay`]: given the arrival times, service times and classes of a sequence of customers,
//!   the fate of each (departure time or blocked), exactly, written the textbook way (an event
//!   calendar, independently of `qserve`'s own algorithm), so that tests can hold the server's
//!   queue against it customer by customer;
//! - [`simulate_open`] and [`simulate_closed`]: seeded independent replications of a model at an
//!   arrival rate (or with a finite population), giving the mean and percentiles of the sojourn
//!   with 95% confidence intervals across replications.
//!
//! # What is simulated, and how
//!
//! One queue: c servers (or infinitely many: every customer served at once, d = a + S), an
//! optional limit on the customers present (an arrival finding it reached is blocked and takes no
//! service), and a discipline — FCFS, LCFS non-preemptive, priority non-preemptive (the oldest of
//! the lowest class number), priority preemptive-resume (the c customers in service are always
//! the c highest-ranked present, by class then arrival; a preempted customer keeps its remaining
//! work) and processor sharing (each of the n present served at rate min(1, c/n)).
//!
//! The simulation is event driven: arrivals and departures are taken from an event calendar in
//! time order, a departure at the same instant as an arrival first, and nothing happens between
//! events. Times are integer nanoseconds, so every discipline but PS is exact to the ns; PS runs
//! in *virtual time* (the work each customer present has received, which grows at rate
//! min(1, c/n)): a customer's finish tag, its arrival's virtual time plus its work, never changes,
//! so the next departure is the smallest tag (a heap, O(log n) per event), its real time computed
//! in `f64` and reported rounded to the nearest ns. Only the customers present are held, so a
//! replication of any length runs in the memory of its longest queue (the engine is a private
//! module, whose docs give the data structures of each discipline).
//!
//! # The interval method: independent replications
//!
//! Successive sojourns in a queue are correlated, so their sample standard deviation says little
//! about the error of their mean. Each replication `r` of a simulation is therefore a whole
//! independent run from an empty system, with its own random streams ([`crate::samplers::rng`]
//! of `(seed, 4r)` for the arrivals or think times, `4r + 1` for the service times, `4r + 2` for
//! the classes); the first `warmup` customers are discarded (the empty start is not the steady
//! state), and the next `customers` give one value of each statistic per replication. The R
//! values are independent and, for long enough runs, close to normal: the estimate is their mean
//! and its 95% interval `± t₀.₉₇₅(R − 1)·s/√R` ([`Estimate`]), which holds for the mean and for
//! the percentiles alike (a percentile of one run is a consistent estimate of the percentile,
//! biased by O(1/n)).
use hdrhistogram::Histogram;
use rand::RngExt;

use crate::model::Model;
use crate::samplers::{self, ArrivalKind, Schedule};
use crate::stats;

mod engine;
pub mod network;

use engine::{Departure, Engine};
pub use network::{
    NetFate, NetworkSimResult, StationSim, Visit, replay_network, replication_seed,
    simulate_network,
};

/// The random streams of replication `r` (see the module docs).
fn streams(seed: u64, r: u32) -> (samplers::Rng, samplers::Rng, samplers::Rng) {
    let base = 4 * u64::from(r);
    (
        samplers::rng(seed, base),
        samplers::rng(seed, base + 1),
        samplers::rng(seed, base + 2),
    )
}

/// One customer of a [`replay`]: arrival and service time (ns) and priority class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Customer {
    /// Arrival time (ns), non-decreasing along the sequence.
    pub arrival_ns: u64,
    /// Service time (ns).
    pub service_ns: u64,
    /// Priority class (0 the highest).
    pub class: u8,
}

/// What became of a customer of a [`replay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Served, leaving at this time (ns).
    Departed(u64),
    /// Turned away: the system held its capacity K (or the overflow limit).
    Blocked,
}

/// The fate of each customer of `customers` in `model` (its servers, capacity and discipline;
/// the service times are given), an arrival that finds `limit` requests present being blocked
/// (`limit` = K, or the overflow limit without a capacity). A departure at the very time of an
/// arrival happens first; customers arriving at the same instant arrive in sequence order.
///
/// The model's service distribution, μ and capacity are not used (the limit is `limit`); its
/// servers and discipline are.
///
/// # Panics
/// If the arrival times decrease along the sequence.
pub fn replay(model: &Model, customers: &[Customer], limit: usize) -> Vec<Fate> {
    let mut fates = vec![Fate::Blocked; customers.len()];
    let mut engine = Engine::new(model, limit);
    let record = |d: Departure, fates: &mut [Fate]| {
        // Ids are indices into `customers`.
        if let Some(f) = usize::try_from(d.id).ok().and_then(|i| fates.get_mut(i)) {
            *f = Fate::Departed(d.departure_ns);
        }
    };
    let mut last_arrival = 0;
    for (i, c) in customers.iter().enumerate() {
        assert!(
            c.arrival_ns >= last_arrival,
            "replay: customer {i} arrives at {} ns, before the one ahead of it ({last_arrival} ns)",
            c.arrival_ns
        );
        last_arrival = c.arrival_ns;
        while let Some(d) = engine.depart_by(c.arrival_ns) {
            record(d, &mut fates);
        }
        // A blocked customer keeps its `Fate::Blocked`.
        engine.arrive(i as u64, c.arrival_ns, c.service_ns, c.class);
    }
    while let Some(d) = engine.depart_by(u64::MAX) {
        record(d, &mut fates);
    }
    fates
}

/// How much to simulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimOptions {
    /// Customers measured per replication (after the warm-up).
    pub customers: u64,
    /// Customers discarded at the start of each replication.
    pub warmup: u64,
    /// Independent replications (at least 2 for an interval).
    pub replications: u32,
    /// Seed; replication `r` draws from streams derived from `(seed, r)`.
    pub seed: u64,
}

impl Default for SimOptions {
    /// 200 000 customers after 20 000 of warm-up, 10 replications, seed 1.
    fn default() -> Self {
        SimOptions {
            customers: 200_000,
            warmup: 20_000,
            replications: 10,
            seed: 1,
        }
    }
}

/// A value estimated over replications: their mean and the half-width of its 95% interval
/// (Student t with replications − 1 degrees of freedom).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Mean over the replications.
    pub value: f64,
    /// Half-width of the 95% confidence interval.
    pub half_width: f64,
}

impl Estimate {
    /// The estimate from one value per replication: their mean and
    /// `t₀.₉₇₅(R − 1)·s/√R` ([`stats::student_t_975`], `s` the sample standard deviation with
    /// divisor R − 1) over the R values that are not NaN (a replication where the statistic is
    /// undefined, such as a class without customers). NaN without values; an infinite half-width
    /// with one.
    pub fn from_replications(values: &[f64]) -> Estimate {
        let xs = values.iter().copied().filter(|x| !x.is_nan());
        let n = xs.clone().count();
        if n == 0 {
            return Estimate {
                value: f64::NAN,
                half_width: f64::NAN,
            };
        }
        let mean = xs.clone().sum::<f64>() / n as f64;
        if n == 1 {
            return Estimate {
                value: mean,
                half_width: f64::INFINITY,
            };
        }
        let var = xs.map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
        Estimate {
            value: mean,
            half_width: stats::student_t_975(n as u64 - 1) * (var / n as f64).sqrt(),
        }
    }

    /// Whether `x` lies in the interval `value ± half_width`.
    pub fn contains(&self, x: f64) -> bool {
        (x - self.value).abs() <= self.half_width
    }
}

/// An open model simulated at an arrival rate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimResult {
    /// Replications run.
    pub replications: u32,
    /// Customers measured per replication.
    pub customers: u64,
    /// Mean sojourn of accepted customers (s).
    pub mean_s: Estimate,
    /// Median sojourn (s).
    pub p50_s: Estimate,
    /// 90th percentile (s).
    pub p90_s: Estimate,
    /// 99th percentile (s).
    pub p99_s: Estimate,
    /// Fraction of arrivals blocked.
    pub blocking: Estimate,
    /// Mean number in system (time average).
    pub mean_in_system: Estimate,
    /// Mean sojourn per class (s), class 0 first (one entry with one class).
    pub class_mean_s: Vec<Estimate>,
    /// Every measured sojourn of every replication, in ns, as an HDR histogram serialized by
    /// [`crate::stats::histogram_to_string`] (for goodness of fit against a measurement).
    pub histogram: String,
}

/// `model` (service drawn from its distribution, classes from its probabilities) with Poisson
/// arrivals at `lambda`, simulated per `opts`.
///
/// Each replication numbers its arrivals 0, 1, 2, … and measures those from `opts.warmup` to
/// `opts.warmup + opts.customers − 1`, every one followed to its departure (blocked ones count for
/// [`SimResult::blocking`] only). An arrival draws its service time (`model.sampler()`) and, with
/// several classes, one uniform for its class ([`crate::model::Classes::draw`]), blocked or not.
/// The number in system is averaged over time from the arrival of the first measured customer
/// to the arrival that follows the last. A model with a capacity K blocks at K present; without,
/// nobody is blocked (an unstable model then just builds a long queue).
///
/// # Panics
/// If `lambda` is not positive and finite.
pub fn simulate_open(model: &Model, lambda: f64, opts: &SimOptions) -> SimResult {
    assert!(
        lambda.is_finite() && lambda > 0.0,
        "simulate_open: the arrival rate must be positive and finite, got {lambda}"
    );
    let mut pooled = stats::new_histogram();
    // One replication at a time, each histogram merged and dropped: the memory does not grow
    // with the replications.
    let runs: Vec<OpenValues> = (0..opts.replications)
        .map(|r| {
            let run = open_replication(model, lambda, opts, r);
            stats::merge_histogram(&mut pooled, &run.sojourns.histogram);
            OpenValues {
                mean_s: run.sojourns.mean_s(),
                quantiles_s: [0.5, 0.9, 0.99].map(|q| run.sojourns.quantile_s(q)),
                blocking: run.blocking,
                mean_in_system: run.mean_in_system,
                class_mean_s: (0..model.classes.len())
                    .map(|k| run.sojourns.class_mean_s(k))
                    .collect(),
            }
        })
        .collect();
    let estimate = |f: &dyn Fn(&OpenValues) -> f64| {
        Estimate::from_replications(&runs.iter().map(f).collect::<Vec<_>>())
    };
    SimResult {
        replications: opts.replications,
        customers: opts.customers,
        mean_s: estimate(&|r| r.mean_s),
        p50_s: estimate(&|r| r.quantiles_s[0]),
        p90_s: estimate(&|r| r.quantiles_s[1]),
        p99_s: estimate(&|r| r.quantiles_s[2]),
        blocking: estimate(&|r| r.blocking),
        mean_in_system: estimate(&|r| r.mean_in_system),
        class_mean_s: (0..model.classes.len())
            .map(|k| estimate(&|r| r.class_mean_s[k]))
            .collect(),
        histogram: stats::histogram_to_string(&pooled),
    }
}

/// The values of one replication of [`simulate_open`].
#[derive(Debug)]
struct OpenValues {
    mean_s: f64,
    /// p50, p90, p99.
    quantiles_s: [f64; 3],
    blocking: f64,
    mean_in_system: f64,
    class_mean_s: Vec<f64>,
}

/// The limit on the customers present of `model`: its capacity, or none.
fn limit_of(model: &Model) -> usize {
    model
        .capacity
        .map_or(usize::MAX, |k| usize::try_from(k).unwrap_or(usize::MAX))
}

/// A class for the next arrival: one uniform draw when there are several classes.
fn draw_class(model: &Model, rng: &mut samplers::Rng) -> u8 {
    if model.classes.len() > 1 {
        model.classes.draw(rng.random::<f64>())
    } else {
        0
    }
}

/// The sojourns of the measured customers of one replication.
#[derive(Debug)]
struct Sojourns {
    histogram: Histogram<u64>,
    count: u64,
    sum_ns: u128,
    class_count: Vec<u64>,
    class_sum_ns: Vec<u128>,
}

impl Sojourns {
    fn new(classes: usize) -> Self {
        Sojourns {
            histogram: stats::new_histogram(),
            count: 0,
            sum_ns: 0,
            class_count: vec![0; classes],
            class_sum_ns: vec![0; classes],
        }
    }

    fn record(&mut self, d: &Departure) {
        let ns = d.departure_ns - d.arrival_ns;
        stats::record_ns(&mut self.histogram, ns);
        self.count += 1;
        self.sum_ns += u128::from(ns);
        let k = usize::from(d.class);
        if let (Some(c), Some(s)) = (self.class_count.get_mut(k), self.class_sum_ns.get_mut(k)) {
            *c += 1;
            *s += u128::from(ns);
        }
    }

    /// Mean in seconds of `sum_ns` over `count` (NaN for none).
    fn mean(sum_ns: u128, count: u64) -> f64 {
        if count == 0 {
            f64::NAN
        } else {
            sum_ns as f64 / count as f64 / 1e9
        }
    }

    /// The mean sojourn (s), exact (not the histogram's).
    fn mean_s(&self) -> f64 {
        Self::mean(self.sum_ns, self.count)
    }

    /// The mean sojourn of class `k` (s; NaN if it had none).
    fn class_mean_s(&self, k: usize) -> f64 {
        match (self.class_count.get(k), self.class_sum_ns.get(k)) {
            (Some(&c), Some(&s)) => Self::mean(s, c),
            _ => f64::NAN,
        }
    }

    fn quantile_s(&self, q: f64) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            // The histogram's value, as `stats::summarize` reports a measurement's.
            self.histogram.value_at_quantile(q) as f64 / 1e9
        }
    }
}

/// ∫ (number in system) dt over a span `[start, end]` (ns), from the changes in time order.
#[derive(Debug)]
struct Occupancy {
    present: u64,
    last_ns: u64,
    start_ns: u64,
    end_ns: u64,
    area: u128,
}

impl Occupancy {
    /// The number present changes by `delta` at `t_ns`.
    fn change(&mut self, t_ns: u64, delta: i64) {
        let lo = self.last_ns.max(self.start_ns);
        let hi = t_ns.min(self.end_ns);
        if hi > lo {
            self.area += u128::from(self.present) * u128::from(hi - lo);
        }
        self.last_ns = t_ns;
        self.present = self.present.saturating_add_signed(delta);
    }

    fn mean(&self) -> f64 {
        if self.end_ns > self.start_ns {
            self.area as f64 / (self.end_ns - self.start_ns) as f64
        } else {
            f64::NAN
        }
    }
}

/// One replication of [`simulate_open`].
#[derive(Debug)]
struct OpenRun {
    blocking: f64,
    mean_in_system: f64,
    sojourns: Sojourns,
}

fn open_replication(model: &Model, lambda: f64, opts: &SimOptions, r: u32) -> OpenRun {
    let (mut arrival_rng, mut service_rng, mut class_rng) = streams(opts.seed, r);
    let sampler = model.sampler();
    let mut schedule = Schedule::new(ArrivalKind::Poisson, lambda);
    let mut engine = Engine::new(model, limit_of(model));
    let mut sojourns = Sojourns::new(model.classes.len());
    let mut occupancy = Occupancy {
        present: 0,
        last_ns: 0,
        start_ns: u64::MAX,
        end_ns: u64::MAX,
        area: 0,
    };
    let warmup = opts.warmup;
    let total = warmup.saturating_add(opts.customers);
    let mut blocked = 0u64;
    let departed = |d: Departure, occupancy: &mut Occupancy, sojourns: &mut Sojourns| {
        occupancy.change(d.departure_ns, -1);
        if d.id >= warmup {
            sojourns.record(&d);
        }
    };
    let mut next_ns = schedule.next_ns(&mut arrival_rng);
    for i in 0..total {
        let t = next_ns;
        next_ns = schedule.next_ns(&mut arrival_rng);
        while let Some(d) = engine.depart_by(t) {
            departed(d, &mut occupancy, &mut sojourns);
        }
        if i == warmup {
            occupancy.start_ns = t;
        }
        if i + 1 == total {
            occupancy.end_ns = next_ns;
        }
        let service = sampler.sample_ns(&mut service_rng);
        let class = draw_class(model, &mut class_rng);
        if engine.arrive(i, t, service, class) {
            occupancy.change(t, 1);
        } else if i >= warmup {
            blocked += 1;
        }
    }
    while let Some(d) = engine.depart_by(u64::MAX) {
        departed(d, &mut occupancy, &mut sojourns);
    }
    let measured = opts.customers;
    OpenRun {
        blocking: if measured == 0 {
            f64::NAN
        } else {
            blocked as f64 / measured as f64
        },
        mean_in_system: occupancy.mean(),
        sojourns,
    }
}

/// A closed system simulated: `users` users, each thinking an exponential time of mean
/// `think_s`, then sending one request and waiting for its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedSimResult {
    /// Replications run.
    pub replications: u32,
    /// Throughput X (1/s).
    pub throughput: Estimate,
    /// Mean response time R (s).
    pub response_s: Estimate,
    /// 99th percentile of the response time (s).
    pub p99_s: Estimate,
}

/// `model` fed by `users` users with exponential think times of mean `think_s`.
///
/// Every user starts thinking at time 0; a request draws its service time and class at arrival,
/// and its user thinks again from its departure. The first `opts.warmup` completions are
/// discarded and the next `opts.customers` measured: the response times of those, and the
/// throughput `customers / (t_last − t_first)` between the last warm-up completion (time 0
/// without warm-up) and the last measured one. A request that finds the model's capacity K
/// present is blocked and its user thinks again (it counts as no completion).
///
/// # Panics
/// If `think_s` is negative, infinite or NaN.
pub fn simulate_closed(
    model: &Model,
    users: u32,
    think_s: f64,
    opts: &SimOptions,
) -> ClosedSimResult {
    assert!(
        think_s.is_finite() && think_s >= 0.0,
        "simulate_closed: the think time must be finite and non-negative, got {think_s}"
    );
    // (throughput, mean response, p99) of each replication, its histogram dropped.
    let runs: Vec<[f64; 3]> = (0..opts.replications)
        .map(|r| {
            let run = closed_replication(model, users, think_s, opts, r);
            [
                run.throughput,
                run.sojourns.mean_s(),
                run.sojourns.quantile_s(0.99),
            ]
        })
        .collect();
    let estimate =
        |i: usize| Estimate::from_replications(&runs.iter().map(|v| v[i]).collect::<Vec<_>>());
    ClosedSimResult {
        replications: opts.replications,
        throughput: estimate(0),
        response_s: estimate(1),
        p99_s: estimate(2),
    }
}

/// One replication of [`simulate_closed`].
#[derive(Debug)]
struct ClosedRun {
    throughput: f64,
    sojourns: Sojourns,
}

fn closed_replication(
    model: &Model,
    users: u32,
    think_s: f64,
    opts: &SimOptions,
    r: u32,
) -> ClosedRun {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    let (mut think_rng, mut service_rng, mut class_rng) = streams(opts.seed, r);
    let mut think = move |from_ns: u64| {
        let s = samplers::exp_sample(think_s, &mut think_rng);
        from_ns.saturating_add((s * 1e9).round() as u64)
    };
    let sampler = model.sampler();
    let mut engine = Engine::new(model, limit_of(model));
    let mut sojourns = Sojourns::new(model.classes.len());
    // The users thinking, by the time they send (the arrival side of the event calendar).
    let mut thinking: BinaryHeap<Reverse<(u64, u32)>> =
        (0..users).map(|u| Reverse((think(0), u))).collect();
    let warmup = opts.warmup;
    let total = warmup.saturating_add(opts.customers);
    let (mut completions, mut first_ns, mut last_ns) = (0u64, 0u64, 0u64);
    while completions < total {
        let next_arrival = thinking.peek().map_or(u64::MAX, |Reverse((t, _))| *t);
        if let Some(d) = engine.depart_by(next_arrival) {
            completions += 1;
            if completions == warmup {
                first_ns = d.departure_ns;
            } else if completions > warmup {
                sojourns.record(&d);
                last_ns = d.departure_ns;
            }
            let user = u32::try_from(d.id).unwrap_or(u32::MAX);
            thinking.push(Reverse((think(d.departure_ns), user)));
            continue;
        }
        let Some(Reverse((t, user))) = thinking.pop() else {
            break; // no users at all
        };
        let service = sampler.sample_ns(&mut service_rng);
        let class = draw_class(model, &mut class_rng);
        if !engine.arrive(u64::from(user), t, service, class) {
            thinking.push(Reverse((think(t), user)));
        }
    }
    let span_s = last_ns.saturating_sub(first_ns) as f64 / 1e9;
    ClosedRun {
        throughput: if sojourns.count > 0 && span_s > 0.0 {
            sojourns.count as f64 / span_s
        } else {
            f64::NAN
        },
        sojourns,
    }
}
