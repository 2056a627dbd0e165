//! Open networks of queues: stations, routing, and how a request's route is drawn.
//!
//! A network is a set of [`Station`]s, each a queue as `qserve` emulates one (μ per server,
//! servers, capacity, service distribution, discipline), and a routing: where an external
//! arrival enters (`entry`), and from each station where a request goes next (another station,
//! or `exit`, leaving the network). A request's route is drawn visit by visit; it waits and is
//! served at each station it visits and is answered when it exits. An arrival at a full station
//! (its capacity reached) is blocked there: the request leaves the network at that instant, and
//! its answer is a 503.
//!
//! The file is TOML ([`Network::parse`]):
//!
//! ```toml
//! [[station]]
//! name = "web"
//! mu = 1000          # per server; servers, capacity, service, discipline as for one queue
//! [[station]]
//! name = "db"
//! mu = 2000
//! [routing]
//! entry = { web = 1.0 }                 # where an arrival enters
//! web = { db = 0.5, exit = 0.5 }        # each row sums to 1; "exit" leaves the network
//! db = { web = 0.3, exit = 0.7 }
//! ```
//!
//! # The draws (a contract: `qserve --network` and the simulator's network replay both follow it,
//! so that the same seed and arrival times give the same routes and service times)
//!
//! - Each station `j` (in file order, from 0) has two random streams of its own:
//!   [`service_stream`]`(j)` for its service times and [`route_stream`]`(j)` for the hop after it,
//!   both `samplers::rng(seed, stream)`. The entry draws come from [`ENTRY_STREAM`].
//! - An external arrival draws one uniform from the entry stream (in the order of external
//!   arrivals) and enters the station [`Network::hop`] names.
//! - An arrival at station `j` (external or from another station) draws, in the order of
//!   arrivals at `j`, first its service time (station `j`'s sampler on its service stream), then
//!   one uniform from `j`'s route stream which decides its next hop when it leaves `j`. Both are
//!   drawn also for an arrival that is then blocked (so the n-th arrival at `j` always gets the
//!   n-th draws).
//! - Events happen in time order; at the same nanosecond, transfers from one station to the next
//!   come before external arrivals, and among transfers at the same instant the one created first
//!   goes first. A transfer has no delay: the departure from `i` at `d` is the arrival at `j` at
//!   `d`.
#![allow(missing_docs)] // the skeleton: the bodies and docs come with the implementation

use crate::model::Model;

/// Stream of the entry draws (where an external arrival enters).
pub const ENTRY_STREAM: u64 = (1 << 32) + 0x100;

/// Stream of the service times of station `j`.
pub fn service_stream(j: usize) -> u64 {
    (1 << 33) + 2 * j as u64
}

/// Stream of the hop draws of station `j`.
pub fn route_stream(j: usize) -> u64 {
    (1 << 33) + 2 * j as u64 + 1
}

/// Most stations in a network.
pub const MAX_STATIONS: usize = 64;

/// One station: a name and the queue it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Station {
    /// Its name (as in the file, and the `station` label of the metrics).
    pub name: String,
    /// Its queue: μ per server, servers, capacity, service, discipline (classes: one).
    pub model: Model,
}

/// Where a request goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// To station `j` (its index in [`Network::stations`]).
    Station(usize),
    /// Out of the network.
    Exit,
}

/// An open network of queues (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// The stations, in file order.
    pub stations: Vec<Station>,
    /// `entry[j]`: the probability that an external arrival enters at station `j` (sums to 1).
    pub entry: Vec<f64>,
    /// `routing[i][j]`: the probability that a request leaving station `i` goes to station `j`.
    pub routing: Vec<Vec<f64>>,
    /// `exit[i]`: the probability that a request leaving station `i` leaves the network
    /// (`exit[i] + Σ_j routing[i][j] = 1`).
    pub exit: Vec<f64>,
}

/// Why a network file is unusable: the reason, and the line (1-based) it is about when known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{reason}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct NetworkError {
    /// The line of the file at fault, if known.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl Network {
    /// Parses and validates a network file's text (see the module docs): unknown stations, a
    /// row or the entry not summing to 1 (within 1e-9), negative probabilities, a station that
    /// cannot reach the exit, bad queue parameters are errors naming the line.
    pub fn parse(text: &str) -> Result<Network, NetworkError> {
        let _ = text;
        unimplemented!("network parsing")
    }

    /// [`Network::parse`] of the file at `path` (the error names the file).
    pub fn load(path: &std::path::Path) -> Result<Network, NetworkError> {
        let _ = path;
        unimplemented!("network loading")
    }

    /// The index of the station named `name`.
    pub fn station(&self, name: &str) -> Option<usize> {
        self.stations.iter().position(|s| s.name == name)
    }

    /// The hop decided by the uniform `u` ∈ [0, 1): from the entry (`from = None`) or after
    /// station `from`, by inverting the cumulative probabilities in station order (the exit
    /// last).
    pub fn hop(&self, from: Option<usize>, u: f64) -> Hop {
        let row: &[f64] = match from {
            None => &self.entry,
            Some(i) => &self.routing[i],
        };
        let mut acc = 0.0;
        for (j, &p) in row.iter().enumerate() {
            acc += p;
            if u < acc {
                return Hop::Station(j);
            }
        }
        match from {
            Some(i) if self.exit[i] > 0.0 => Hop::Exit,
            // The probabilities sum to 1 only within rounding: a `u` beyond their sum goes to the
            // last hop that can happen.
            _ => row
                .iter()
                .rposition(|&p| p > 0.0)
                .map_or(Hop::Exit, Hop::Station),
        }
    }
}
