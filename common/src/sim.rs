//! An exact discrete-event simulation of every model `qserve` emulates: the reference where no
//! closed form exists (percentiles of M/G/1 and M/G/c, processor sharing, LCFS, priority classes,
//! traces, finite-source systems with a general service time).
//!
//! Two uses:
//! - [`replay`]: given the arrival times, service times and classes of a sequence of customers,
//!   the fate of each (departure time or blocked), exactly, written the textbook way (an event
//!   list, independently of `qserve`'s own algorithm), so that tests can hold the server's queue
//!   against it customer by customer;
//! - [`simulate_open`] and [`simulate_closed`]: seeded independent replications of a model at an
//!   arrival rate (or with a finite population), giving the mean and percentiles of the sojourn
//!   with 95% confidence intervals across replications.
use crate::model::Model;

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
/// arrival happens first.
pub fn replay(model: &Model, customers: &[Customer], limit: usize) -> Vec<Fate> {
    let _ = (model, customers, limit);
    unimplemented!("replay")
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
pub fn simulate_open(model: &Model, lambda: f64, opts: &SimOptions) -> SimResult {
    let _ = (model, lambda, opts);
    unimplemented!("simulate_open")
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
pub fn simulate_closed(
    model: &Model,
    users: u32,
    think_s: f64,
    opts: &SimOptions,
) -> ClosedSimResult {
    let _ = (model, users, think_s, opts);
    unimplemented!("simulate_closed")
}
