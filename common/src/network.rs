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
//! Each `[[station]]` has a `name` (unique, letters, digits, `_` and `-`, not `exit` or
//! `entry`), `mu` (a number or a rate text such as `"2.5k"`) and optionally `servers` (an
//! integer or `"inf"`, default 1), `capacity` (K, counting the requests waiting and in service),
//! `service` (the text of `--service`: `exp`, `const`, `erlang:4`, `h2:4`, …, default `exp`)
//! and `discipline` (the text of `--discipline`, default `fcfs`). `[routing]` has `entry`, the
//! probabilities of the first station, and one row per station, its probabilities of going to
//! each station or to `exit` (absent keys are 0). Every station must have a row; every row and
//! the entry sum to 1 within 10⁻⁹; the exit must be reachable from every station (else requests
//! would circulate for ever); and every station must be reachable from the entry (a station no
//! request visits is an error, not a warning: it is most likely a misspelt name). Unknown keys
//! are errors. At most [`MAX_STATIONS`] stations.
//!
//! The theory of a network ([`theory`]): the traffic equations, visit ratios, utilisations, the
//! largest stable rate, and Jackson's product form where every station is M/M/c (or M/M/∞)
//! without a capacity. The simulator is [`crate::sim::network`].
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
//!   goes first, a transfer being created when its request is admitted at the station it leaves
//!   (under FCFS its departure time is known then). A transfer has no delay: the departure from
//!   `i` at `d` is the arrival at `j` at `d`. At a station, a departure at the instant of an
//!   arrival happens first (the requests present at an arrival at `a` are those admitted with a
//!   departure `d > a`), as in the single queue.
//! - The uniforms are `rand`'s `rng.random::<f64>()` (53 random bits, in [0, 1)).

use crate::model::{Classes, Discipline, Model, Servers, ServiceKind};

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
    /// The priority classes of the external arrivals (class 0 the highest): a request draws its
    /// class when it enters and keeps it on its whole route. One class by default.
    pub classes: Classes,
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
    /// Parses and validates a network file's text (see the module docs, "The file"). Every
    /// error names the line it is about where there is one: TOML syntax, unknown keys, a bad
    /// station (name, μ, servers, capacity, service, discipline, as [`Model::validate`] checks
    /// a queue), an unknown station in a row or the entry, a row or the entry not summing to 1
    /// (within 10⁻⁹), a negative or non-finite probability, a station without a row, a station
    /// from which the exit cannot be reached, a station no request can reach, more than
    /// [`MAX_STATIONS`] stations.
    pub fn parse(text: &str) -> Result<Network, NetworkError> {
        file::parse(text)
    }

    /// [`Network::parse`] of the file at `path` (the error names the file).
    pub fn load(path: &std::path::Path) -> Result<Network, NetworkError> {
        let text = std::fs::read_to_string(path).map_err(|e| NetworkError {
            line: None,
            reason: format!("{}: {e}", path.display()),
        })?;
        Network::parse(&text).map_err(|e| NetworkError {
            line: e.line,
            reason: format!("{}: {}", path.display(), e.reason),
        })
    }

    /// For each station, whether a request there can reach the exit (a search back from the
    /// exit along the hops of positive probability).
    pub fn reaches_exit(&self) -> Vec<bool> {
        let n = self.stations.len();
        let mut ok: Vec<bool> = self.exit.iter().map(|&e| e > 0.0).collect();
        let mut changed = true;
        while changed {
            changed = false;
            for i in 0..n {
                if !ok[i] && (0..n).any(|j| ok[j] && self.routing[i][j] > 0.0) {
                    ok[i] = true;
                    changed = true;
                }
            }
        }
        ok
    }

    /// For each station, whether some request can reach it (a search from the entry along the
    /// hops of positive probability).
    pub fn reached(&self) -> Vec<bool> {
        let n = self.stations.len();
        let mut seen: Vec<bool> = self.entry.iter().map(|&p| p > 0.0).collect();
        let mut stack: Vec<usize> = (0..n).filter(|&j| seen[j]).collect();
        while let Some(i) = stack.pop() {
            for (j, &p) in self.routing[i].iter().enumerate() {
                if !seen[j] && p > 0.0 {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        seen
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

/// What the theory of open networks says of a [`Network`] at an external arrival rate λ; see
/// [`theory`].
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkTheory {
    /// The external arrival rate λ (1/s).
    pub lambda: f64,
    /// Per station, in file order.
    pub stations: Vec<StationTheory>,
    /// The largest stable external rate λ_max = min_j c_j μ_j / v_j (infinite if no station
    /// can saturate).
    pub lambda_max: f64,
    /// Whether the network has a product form (Jackson: every station M/M/c or M/M/∞, FCFS,
    /// without capacity), so that the per-station and end-to-end means below are exact.
    pub product_form: bool,
    /// The mean number in the network Σ_j L_j (product form only).
    pub in_system: Option<f64>,
    /// The end-to-end mean sojourn T = Σ_j L_j / λ = Σ_j v_j W_j (Little; product form only).
    pub mean_s: Option<f64>,
}

/// One station of a [`NetworkTheory`].
#[derive(Debug, Clone, PartialEq)]
pub struct StationTheory {
    /// Its name.
    pub name: String,
    /// Its total arrival rate λ_j (external and internal) from the traffic equations (1/s).
    pub lambda: f64,
    /// Its visit ratio v_j = λ_j / λ: the mean number of visits of a request.
    pub visits: f64,
    /// Its load per server ρ_j = λ_j / (c_j μ_j) (λ_j/μ_j with infinitely many servers, the
    /// mean number of busy servers; 0 with zero service).
    pub rho: f64,
    /// Whether it is stable: ρ_j < 1, or infinitely many servers, or zero service.
    pub stable: bool,
    /// Its mean number present L_j as an M/M/c queue at λ_j (product form only).
    pub l: Option<f64>,
    /// Its mean sojourn per visit W_j (s) as an M/M/c queue at λ_j (product form only).
    pub w_s: Option<f64>,
    /// The probability that an arrival at it waits, Erlang C (product form only).
    pub wait_prob: Option<f64>,
}

/// Why [`theory`] has no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NetworkTheoryError {
    /// λ is not positive and finite.
    #[error("the arrival rate must be positive and finite, got {0}")]
    Rate(f64),
    /// A station is saturated: its queue would grow without bound.
    #[error(
        "unstable network: station {station:?} has rho = {rho:.3} >= 1 (the network is stable \
         below lambda = {lambda_max:.6} per second)"
    )]
    Unstable {
        /// The first unstable station (file order).
        station: String,
        /// Its load per server.
        rho: f64,
        /// The largest stable external rate.
        lambda_max: f64,
    },
    /// The traffic equations have no unique solution (a network that [`Network::parse`]
    /// accepted never has this: every station reaches the exit).
    #[error("the traffic equations are singular: some station cannot reach the exit")]
    Singular,
}

/// The visit ratios v_j, the solution of the traffic equations for λ = 1:
/// `v_j = entry_j + Σ_i v_i·routing[i][j]`, i.e. `(I − Pᵀ) v = entry`, by Gaussian elimination
/// with partial pivoting. `λ_j = λ·v_j` at any external rate λ.
pub fn visit_ratios(net: &Network) -> Result<Vec<f64>, NetworkTheoryError> {
    let n = net.stations.len();
    // a[j] = row j of (I − Pᵀ) with the right-hand side entry_j appended.
    let mut a: Vec<Vec<f64>> = (0..n)
        .map(|j| {
            let mut row: Vec<f64> = (0..n)
                .map(|i| f64::from(u8::from(i == j)) - net.routing[i][j])
                .collect();
            row.push(net.entry[j]);
            row
        })
        .collect();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))
            .ok_or(NetworkTheoryError::Singular)?;
        // Also refuses a NaN pivot.
        if a[pivot][col].abs().partial_cmp(&1e-12) != Some(std::cmp::Ordering::Greater) {
            return Err(NetworkTheoryError::Singular);
        }
        a.swap(col, pivot);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for row in rest.iter_mut() {
            let f = row[col] / pivot_row[col];
            if f != 0.0 {
                for (x, &p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= f * p;
                }
            }
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r][k] * x[k]).sum();
        x[r] = (a[r][n] - s) / a[r][r];
    }
    // Rounding may leave −1e-17 where the answer is 0.
    Ok(x.into_iter().map(|v| v.max(0.0)).collect())
}

/// The capacity c_j μ_j of station `j` to serve visits (1/s): infinite with infinitely many
/// servers or zero service.
fn station_capacity(s: &Station) -> f64 {
    match (s.model.service, s.model.servers) {
        (ServiceKind::Zero, _) | (_, Servers::Infinite) => f64::INFINITY,
        (_, Servers::Finite(c)) => f64::from(c) * s.model.mu,
    }
}

/// The largest stable external rate λ_max = min_j c_j μ_j / v_j (infinite when no station can
/// saturate): the network is stable at λ iff λ < λ_max (a station with a capacity never grows
/// without bound, but it is counted too: at λ ≥ λ_max it blocks, which the traffic equations
/// do not describe).
pub fn lambda_max(net: &Network) -> Result<f64, NetworkTheoryError> {
    let v = visit_ratios(net)?;
    Ok(net
        .stations
        .iter()
        .zip(&v)
        .map(|(s, &v)| {
            if v > 0.0 {
                station_capacity(s) / v
            } else {
                f64::INFINITY
            }
        })
        .fold(f64::INFINITY, f64::min))
}

/// Whether the network has a product form (Jackson's theorem): every station serves
/// exponential times first come first served with c servers or infinitely many, without a
/// capacity. Then in the steady state the numbers at the stations are independent, each
/// distributed as an M/M/c queue at its λ_j, although the flows inside the network are not
/// Poisson (with feedback).
pub fn is_product_form(net: &Network) -> bool {
    net.stations.iter().all(|s| {
        let m = &s.model;
        m.service == ServiceKind::Exp
            && m.capacity.is_none()
            && (m.discipline == Discipline::Fcfs || m.servers == Servers::Infinite)
    })
}

/// The theory of `net` at external Poisson rate `lambda`: the traffic equations
/// ([`visit_ratios`]), each station's λ_j, v_j, ρ_j; an error naming the first station with
/// ρ_j ≥ 1 (finite servers, non-zero service); and where the network has a product form
/// ([`is_product_form`]) each station's L_j, W_j and P(wait) as an M/M/c queue at λ_j
/// ([`crate::theory::predict`]) and the end-to-end mean T = Σ L_j / λ.
///
/// Without a product form there is no closed form for L_j, W_j or T (an M/G/1 station's
/// Pollaczek–Khinchine value at λ_j is only a "decomposition" approximation: its arrivals are
/// not Poisson when requests come back to it); they are `None`, and the simulator
/// ([`crate::sim::simulate_network`]) is the reference. The station with a capacity is not
/// in the product form either (blocking thins the flows the traffic equations assume).
pub fn theory(net: &Network, lambda: f64) -> Result<NetworkTheory, NetworkTheoryError> {
    if !(lambda.is_finite() && lambda > 0.0) {
        return Err(NetworkTheoryError::Rate(lambda));
    }
    let v = visit_ratios(net)?;
    let lambda_max = lambda_max(net)?;
    let product_form = is_product_form(net);
    let mut stations = Vec::with_capacity(net.stations.len());
    for (s, &v) in net.stations.iter().zip(&v) {
        let lj = lambda * v;
        let rho = s.model.rho(lj);
        let stable = station_capacity(s).is_infinite() || rho < 1.0;
        if !stable {
            return Err(NetworkTheoryError::Unstable {
                station: s.name.clone(),
                rho,
                lambda_max,
            });
        }
        let (l, w_s, wait_prob) = if product_form && lj > 0.0 {
            match crate::theory::predict(&s.model, lj) {
                Ok(t) => {
                    let wait = match s.model.servers {
                        Servers::Finite(c) => crate::theory::erlang_c(c, lj / s.model.mu),
                        Servers::Infinite => 0.0,
                    };
                    (Some(t.mean_in_system), Some(t.mean_s), Some(wait))
                }
                Err(_) => (None, None, None),
            }
        } else if product_form {
            (Some(0.0), Some(1.0 / s.model.mu), Some(0.0))
        } else {
            (None, None, None)
        };
        stations.push(StationTheory {
            name: s.name.clone(),
            lambda: lj,
            visits: v,
            rho,
            stable,
            l,
            w_s,
            wait_prob,
        });
    }
    let in_system = if product_form {
        stations.iter().map(|s| s.l).sum::<Option<f64>>()
    } else {
        None
    };
    Ok(NetworkTheory {
        lambda,
        mean_s: in_system.map(|l| l / lambda),
        in_system,
        stations,
        lambda_max,
        product_form,
    })
}

/// The file format: TOML read by serde, then checked.
mod file {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use toml::Spanned;

    use super::{MAX_STATIONS, Network, NetworkError, Station};
    use crate::model::{Classes, Discipline, Model, Servers, ServiceKind};

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct FileToml {
        #[serde(default)]
        station: Vec<Spanned<StationToml>>,
        routing: Option<Spanned<BTreeMap<Spanned<String>, Spanned<RowToml>>>>,
    }

    type RowToml = BTreeMap<Spanned<String>, Spanned<f64>>;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct StationToml {
        name: Spanned<String>,
        mu: Spanned<NumberOrText>,
        servers: Option<Spanned<NumberOrText>>,
        capacity: Option<Spanned<i64>>,
        service: Option<Spanned<String>>,
        discipline: Option<Spanned<String>>,
    }

    /// A number, or a text (`"2.5k"`, `"inf"`).
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText {
        Int(i64),
        Float(f64),
        Text(String),
    }

    /// The 1-based line of byte offset `at` of `text`.
    fn line_of(text: &str, at: usize) -> usize {
        let at = at.min(text.len());
        text.as_bytes()[..at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    struct Ctx<'a> {
        text: &'a str,
    }

    impl Ctx<'_> {
        fn err(&self, span: std::ops::Range<usize>, reason: impl Into<String>) -> NetworkError {
            NetworkError {
                line: Some(line_of(self.text, span.start)),
                reason: reason.into(),
            }
        }
    }

    fn valid_name(name: &str) -> bool {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    pub(super) fn parse(text: &str) -> Result<Network, NetworkError> {
        let cx = Ctx { text };
        let file: FileToml = toml::from_str(text).map_err(|e| NetworkError {
            line: e.span().map(|s| line_of(text, s.start)),
            reason: e.message().trim_end().to_owned(),
        })?;
        if file.station.is_empty() {
            return Err(NetworkError {
                line: None,
                reason: "no stations: give at least one [[station]] table".into(),
            });
        }
        let mut stations: Vec<Station> = Vec::with_capacity(file.station.len());
        for (i, st) in file.station.iter().enumerate() {
            let st = st.get_ref();
            let name = st.name.get_ref();
            let name_err = |reason: String| cx.err(st.name.span(), reason);
            if i == MAX_STATIONS {
                return Err(name_err(format!(
                    "too many stations: at most {MAX_STATIONS}"
                )));
            }
            if !valid_name(name) {
                return Err(name_err(format!(
                    "station name {name:?} must be letters, digits, '_' or '-'"
                )));
            }
            if name == "exit" || name == "entry" {
                return Err(name_err(format!(
                    "a station cannot be named {name:?} (a key of the routing)"
                )));
            }
            if stations.iter().any(|s| s.name == *name) {
                return Err(name_err(format!("a second station named {name:?}")));
            }
            let model = station_model(&cx, name, st)?;
            stations.push(Station {
                name: name.clone(),
                model,
            });
        }
        let n = stations.len();
        let Some(routing) = file.routing else {
            return Err(NetworkError {
                line: None,
                reason: "no [routing] table: give entry = { … } and one row per station".into(),
            });
        };
        let routing_span = routing.span();
        let index = |name: &str| stations.iter().position(|s| s.name == name);
        let mut entry: Option<Vec<f64>> = None;
        let mut rows: Vec<Option<(Vec<f64>, f64)>> = vec![None; n];
        for (key, row) in routing.get_ref() {
            let from = key.get_ref().as_str();
            let is_entry = from == "entry";
            let i = if is_entry {
                None
            } else {
                match index(from) {
                    Some(i) => Some(i),
                    None => {
                        return Err(cx.err(
                            key.span(),
                            format!("routing row of an unknown station {from:?}"),
                        ));
                    }
                }
            };
            let what = if is_entry {
                "the entry".to_owned()
            } else {
                format!("the row of {from:?}")
            };
            let mut p = vec![0.0; n];
            let mut exit = 0.0;
            let mut sum = 0.0;
            for (to, q) in row.get_ref() {
                let to_name = to.get_ref().as_str();
                let v = *q.get_ref();
                if !(v.is_finite() && v >= 0.0) {
                    return Err(cx.err(
                        q.span(),
                        format!("{what}: probability {v} to {to_name:?} is not a number ≥ 0"),
                    ));
                }
                if to_name == "exit" {
                    if is_entry {
                        return Err(cx.err(
                            to.span(),
                            "the entry cannot go to the exit: it names stations only",
                        ));
                    }
                    exit = v;
                } else {
                    match index(to_name) {
                        Some(j) => p[j] = v,
                        None => {
                            return Err(cx.err(
                                to.span(),
                                format!("{what} names an unknown station {to_name:?}"),
                            ));
                        }
                    }
                }
                sum += v;
            }
            if (sum - 1.0).abs() > 1e-9 {
                return Err(cx.err(key.span(), format!("{what} sums to {sum}, not 1")));
            }
            match i {
                None => entry = Some(p),
                Some(i) => rows[i] = Some((p, exit)),
            }
        }
        let Some(entry) = entry else {
            return Err(cx.err(
                routing_span,
                "the routing has no entry = { station = probability, … }",
            ));
        };
        let mut routing = Vec::with_capacity(n);
        let mut exit = Vec::with_capacity(n);
        for (i, row) in rows.into_iter().enumerate() {
            match row {
                Some((p, e)) => {
                    routing.push(p);
                    exit.push(e);
                }
                None => {
                    return Err(cx.err(
                        file.station[i].get_ref().name.span(),
                        format!(
                            "station {:?} has no routing row (give {} = {{ exit = 1.0 }} if it \
                             leads out)",
                            stations[i].name, stations[i].name
                        ),
                    ));
                }
            }
        }
        let net = Network {
            stations,
            entry,
            routing,
            exit,
            classes: Classes::default(),
        };
        // Graph checks: every station reaches the exit, every station is reached.
        let to_exit = net.reaches_exit();
        let reached = net.reached();
        for i in 0..n {
            let span = file.station[i].get_ref().name.span();
            if !to_exit[i] {
                return Err(cx.err(
                    span,
                    format!(
                        "station {:?} cannot reach the exit: its requests would circulate \
                         for ever",
                        net.stations[i].name
                    ),
                ));
            }
            if !reached[i] {
                return Err(cx.err(
                    span,
                    format!(
                        "station {:?} is reached by no request (neither the entry nor any \
                         row leads to it)",
                        net.stations[i].name
                    ),
                ));
            }
        }
        Ok(net)
    }

    fn station_model(cx: &Ctx<'_>, name: &str, st: &StationToml) -> Result<Model, NetworkError> {
        let bad = |span: std::ops::Range<usize>, what: String| {
            cx.err(span, format!("station {name:?}: {what}"))
        };
        let mu = match st.mu.get_ref() {
            NumberOrText::Int(i) => *i as f64,
            NumberOrText::Float(x) => *x,
            NumberOrText::Text(t) => {
                crate::units::parse_rate(t).map_err(|e| bad(st.mu.span(), format!("mu: {e}")))?
            }
        };
        let servers = match &st.servers {
            None => Servers::Finite(1),
            Some(s) => match s.get_ref() {
                NumberOrText::Int(c) => match u32::try_from(*c) {
                    Ok(c) if c >= 1 => Servers::Finite(c),
                    _ => {
                        return Err(bad(
                            s.span(),
                            format!(
                                "servers must be an integer from 1 to {} or \"inf\"",
                                u32::MAX
                            ),
                        ));
                    }
                },
                NumberOrText::Float(_) => {
                    return Err(bad(
                        s.span(),
                        "servers must be an integer or \"inf\"".into(),
                    ));
                }
                NumberOrText::Text(t) => t
                    .parse::<Servers>()
                    .map_err(|e| bad(s.span(), e.to_string()))?,
            },
        };
        let capacity = match &st.capacity {
            None => None,
            Some(k) => match u32::try_from(*k.get_ref()) {
                Ok(k) => Some(k),
                Err(_) => {
                    return Err(bad(
                        k.span(),
                        format!("capacity must be an integer from 1 to {}", u32::MAX),
                    ));
                }
            },
        };
        let service = match &st.service {
            None => ServiceKind::Exp,
            Some(s) => s
                .get_ref()
                .parse::<ServiceKind>()
                .map_err(|e| bad(s.span(), e.to_string()))?,
        };
        let discipline = match &st.discipline {
            None => Discipline::Fcfs,
            Some(d) => d
                .get_ref()
                .parse::<Discipline>()
                .map_err(|e| bad(d.span(), e.to_string()))?,
        };
        // qserve's network model and the simulator's replay serve FCFS (with infinitely many
        // servers every discipline is the same pure delay); another discipline would be served
        // as FCFS without a word, so it is refused here, where the file names it.
        if let Some(d) = &st.discipline
            && discipline != Discipline::Fcfs
            && servers != Servers::Infinite
        {
            return Err(bad(
                d.span(),
                format!(
                    "discipline {:?}: the stations of a network are served fcfs (qserve --network \
                     and the simulator; infinitely many servers take any)",
                    d.get_ref()
                ),
            ));
        }
        let model = Model::new(mu, servers)
            .with_capacity(capacity)
            .with_service(service)
            .with_discipline(discipline);
        // The model's messages name the flags; in a file they are the keys.
        model.validate().map_err(|e| {
            let span = match e {
                crate::model::ModelError::Mu(_) => st.mu.span(),
                _ => st.capacity.as_ref().map_or(st.name.span(), |k| k.span()),
            };
            bad(span, e.to_string().replace("--", ""))
        })?;
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB_DB: &str = "\
[[station]]
name = \"web\"
mu = 1000
[[station]]
name = \"db\"
mu = 2000
[routing]
entry = { web = 1.0 }
web = { db = 0.5, exit = 0.5 }
db = { web = 0.3, exit = 0.7 }
";

    /// A file of two stations `a` and `b` with `extra` appended to station `a`'s table (line 3
    /// on) and the routing `routing` (its first line is line 6 + the lines of `extra`).
    fn two(extra: &str, routing: &str) -> String {
        format!(
            "[[station]]\nname = \"a\"\nmu = 100\n{extra}[[station]]\nname = \"b\"\nmu = 200\n\
             [routing]\n{routing}"
        )
    }

    const ROUTES: &str = "entry = { a = 1.0 }\na = { b = 0.5, exit = 0.5 }\nb = { exit = 1.0 }\n";

    #[test]
    fn parses_good_files() {
        let net = Network::parse(WEB_DB).expect("valid in this test");
        assert_eq!(net.stations.len(), 2);
        assert_eq!(net.entry, vec![1.0, 0.0]);
        assert_eq!(net.routing, vec![vec![0.0, 0.5], vec![0.3, 0.0]]);
        assert_eq!(net.exit, vec![0.5, 0.7]);
        assert_eq!(net.station("db"), Some(1));
        assert_eq!(
            net.stations[0].model,
            Model::new(1000.0, Servers::Finite(1))
        );

        let net = Network::parse(&two("servers = \"inf\"\nservice = \"erlang:4\"\n", ROUTES))
            .expect("valid in this test");
        assert_eq!(net.stations[0].model.servers, Servers::Infinite);
        assert_eq!(net.stations[0].model.service, ServiceKind::Erlang(4));

        let net = Network::parse(&two(
            "servers = 3\ncapacity = 10\ndiscipline = \"fcfs\"\nservice = \"const\"\n",
            ROUTES,
        ))
        .expect("valid in this test");
        let m = net.stations[0].model;
        assert_eq!((m.servers, m.capacity), (Servers::Finite(3), Some(10)));
        assert_eq!(
            (m.discipline, m.service),
            (Discipline::Fcfs, ServiceKind::Const)
        );
        // Infinitely many servers take any discipline (all are the same pure delay).
        let net = Network::parse(&two("servers = \"inf\"\ndiscipline = \"ps\"\n", ROUTES))
            .expect("valid in this test");
        assert_eq!(net.stations[0].model.discipline, Discipline::Ps);

        // μ as a rate text, a self-loop, probabilities summing to 1 only within rounding.
        let text = "[[station]]\nname = \"x-1_A\"\nmu = \"2.5k\"\n[routing]\n\
                    entry = { x-1_A = 1 }\nx-1_A = { x-1_A = 0.1, exit = 0.2 }\n";
        let e = Network::parse(text).expect_err("invalid in this test");
        assert_eq!(e.line, Some(6), "{e}"); // 0.3: not 1
        let text = text.replace("exit = 0.2", "exit = 0.7, x-1_A = 0.2");
        let e = Network::parse(&text).expect_err("invalid in this test"); // a key twice is a TOML error
        assert_eq!(e.line, Some(6), "{e}");
        let text = "[[station]]\nname = \"x-1_A\"\nmu = \"2.5k\"\n[routing]\n\
                    entry = { x-1_A = 1 }\nx-1_A = { x-1_A = 0.1, exit = 0.7 , \"x-1_A\" = 0.2 }\n";
        assert!(Network::parse(text).is_err());
        let text = "[[station]]\nname = \"s\"\nmu = \"2.5k\"\n[routing]\n\
                    entry = { s = 1 }\ns = { s = 0.1, exit = 0.7000000000000001 }\n";
        assert!(Network::parse(text).is_err()); // 0.8
        let text = "[[station]]\nname = \"s\"\nmu = \"2.5k\"\n[routing]\n\
                    entry = { s = 1 }\ns = { s = 0.1, exit = 0.9000000000000001 }\n";
        let net = Network::parse(text).expect("valid in this test");
        assert_eq!(net.stations[0].model.mu, 2500.0);
        assert_eq!((net.routing[0][0], net.exit[0]), (0.1, 0.9000000000000001));
    }

    #[test]
    fn bad_files_name_the_line_and_the_reason() {
        let cases: Vec<(String, Option<usize>, &str)> = vec![
            // TOML syntax.
            ("[[station]]\nname = \"a\"\nmu = \n".into(), Some(3), ""),
            // Unknown keys, in a station, the top level.
            (two("mux = 3\n", ROUTES), Some(4), "unknown field"),
            (
                format!("speed = 3\n{}", two("", ROUTES)),
                Some(1),
                "unknown field",
            ),
            // Names.
            (
                two("", ROUTES).replace("\"b\"", "\"a\""),
                Some(5),
                "second station",
            ),
            (
                two("", ROUTES).replace("\"b\"", "\"b c\""),
                Some(5),
                "letters",
            ),
            (
                two("", ROUTES).replace("\"b\"", "\"exit\""),
                Some(5),
                "cannot be named",
            ),
            (
                two("", ROUTES).replace("\"b\"", "\"entry\""),
                Some(5),
                "cannot be named",
            ),
            (two("", ROUTES).replace("\"b\"", "\"\""), Some(5), "letters"),
            // Queue parameters.
            (
                two("", ROUTES).replace("mu = 100", "mu = 0"),
                Some(3),
                "mu must be a positive",
            ),
            (
                two("", ROUTES).replace("mu = 100", "mu = -1.5"),
                Some(3),
                "positive",
            ),
            (
                two("", ROUTES).replace("mu = 100", "mu = nan"),
                Some(3),
                "positive",
            ),
            (
                two("", ROUTES).replace("mu = 100", "mu = \"fast\""),
                Some(3),
                "mu:",
            ),
            (two("servers = 0\n", ROUTES), Some(4), "servers must be"),
            (two("servers = \"many\"\n", ROUTES), Some(4), "servers"),
            (two("servers = 1.5\n", ROUTES), Some(4), "integer"),
            (
                two("capacity = 0\n", ROUTES),
                Some(4),
                "capacity must be at least 1",
            ),
            (two("capacity = -3\n", ROUTES), Some(4), "capacity must be"),
            (
                two("servers = 2\ncapacity = 1\n", ROUTES),
                Some(5),
                "below servers 2",
            ),
            (two("service = \"bogus\"\n", ROUTES), Some(4), "service"),
            (
                two("discipline = \"random\"\n", ROUTES),
                Some(4),
                "discipline",
            ),
            (
                two("discipline = \"ps\"\n", ROUTES),
                Some(4),
                "are served fcfs",
            ),
            // Routing: unknown stations, sums, probabilities, rows.
            (
                two("", &ROUTES.replace("b = 0.5", "c = 0.5")),
                Some(9),
                "unknown station \"c\"",
            ),
            (
                two("", &ROUTES.replace("entry = { a", "entry = { z")),
                Some(8),
                "unknown station",
            ),
            (
                two("", &format!("{ROUTES}c = {{ exit = 1.0 }}\n")),
                Some(11),
                "unknown station",
            ),
            (
                two("", &ROUTES.replace("exit = 0.5", "exit = 0.4")),
                Some(9),
                "sums to 0.9",
            ),
            (
                two("", &ROUTES.replace("a = 1.0", "a = 0.5, b = 0.6")),
                Some(8),
                "sums to 1.1",
            ),
            (
                two(
                    "",
                    &ROUTES.replace("b = 0.5, exit = 0.5", "b = -0.5, exit = 1.5"),
                ),
                Some(9),
                "not a number ≥ 0",
            ),
            (
                two("", &ROUTES.replace("exit = 0.5", "exit = nan")),
                Some(9),
                "not a number",
            ),
            (
                two("", &ROUTES.replace("exit = 0.5", "exit = inf")),
                Some(9),
                "not a number",
            ),
            (
                two("", &ROUTES.replace("a = 1.0 }", "a = 1.0, exit = 0 }")),
                Some(8),
                "entry",
            ),
            (
                two("", "entry = { a = 1.0 }\na = { exit = 1.0 }\n"),
                Some(5),
                "no routing row",
            ),
            (
                two("", "a = { exit = 1.0 }\nb = { exit = 1.0 }\n"),
                Some(7),
                "no entry",
            ),
            (two("", ""), Some(7), "no entry"),
            (
                "[[station]]\nname = \"a\"\nmu = 1\n".into(),
                None,
                "no [routing]",
            ),
            ("[routing]\nentry = {}\n".into(), None, "no stations"),
            // The graph: a loop without an exit; a station nobody reaches.
            (
                two(
                    "",
                    "entry = { a = 1.0 }\na = { b = 1.0 }\nb = { a = 1.0 }\n",
                ),
                Some(2),
                "cannot reach the exit",
            ),
            (
                two(
                    "",
                    "entry = { a = 1.0 }\na = { exit = 1.0 }\nb = { exit = 1.0 }\n",
                ),
                Some(5),
                "reached by no request",
            ),
        ];
        let mut wrong = Vec::new();
        for (text, line, reason) in &cases {
            let e = Network::parse(text).expect_err(text);
            if e.line != *line || !e.reason.contains(reason) {
                wrong.push(format!("{text}=> {e} (wanted line {line:?}, {reason:?})"));
            } else if let Some(l) = line {
                assert!(e.to_string().starts_with(&format!("line {l}: ")), "{e}");
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    }

    #[test]
    fn too_many_stations() {
        let many = |n: usize| {
            let mut t = String::new();
            for i in 0..n {
                t.push_str(&format!("[[station]]\nname = \"s{i}\"\nmu = 1\n"));
            }
            t.push_str("[routing]\nentry = { s0 = 1 }\n");
            for i in 0..n {
                t.push_str(&format!(
                    "s{i} = {{ exit = 0.5, s{} = 0.5 }}\n",
                    (i + 1) % n
                ));
            }
            t
        };
        let net = Network::parse(&many(MAX_STATIONS)).expect("valid in this test");
        assert_eq!(net.stations.len(), MAX_STATIONS);
        let e = Network::parse(&many(MAX_STATIONS + 1)).expect_err("invalid in this test");
        // The name of station 65 is on line 3·64 + 2.
        assert_eq!(e.line, Some(3 * MAX_STATIONS + 2), "{e}");
        assert!(e.reason.contains("too many stations"), "{e}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("queuelab-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("valid in this test");
        let path = dir.join("net.toml");
        std::fs::write(&path, WEB_DB).expect("valid in this test");
        assert_eq!(
            Network::load(&path).expect("valid in this test"),
            Network::parse(WEB_DB).expect("valid in this test")
        );
        std::fs::write(&path, WEB_DB.replace("mu = 2000", "mu = 0")).expect("valid in this test");
        let e = Network::load(&path).expect_err("invalid in this test");
        assert_eq!(e.line, Some(6));
        assert!(e.reason.contains("net.toml"), "{e}");
        let e = Network::load(&dir.join("absent.toml")).expect_err("invalid in this test");
        assert!(e.line.is_none() && e.reason.contains("absent.toml"), "{e}");
        std::fs::remove_dir_all(&dir).expect("valid in this test");
    }

    #[test]
    fn hop_inverts_the_cumulative_probabilities() {
        let net = Network::parse(WEB_DB).expect("valid in this test");
        assert_eq!(net.hop(None, 0.0), Hop::Station(0));
        assert_eq!(net.hop(None, 0.999_999), Hop::Station(0));
        assert_eq!(net.hop(Some(0), 0.0), Hop::Station(1));
        assert_eq!(net.hop(Some(0), 0.499_999), Hop::Station(1));
        assert_eq!(net.hop(Some(0), 0.5), Hop::Exit);
        assert_eq!(net.hop(Some(1), 0.299_999), Hop::Station(0));
        assert_eq!(net.hop(Some(1), 0.3), Hop::Exit);
        assert_eq!(net.hop(Some(1), 1.0), Hop::Exit);
    }

    fn close(x: f64, want: f64) -> bool {
        (x - want).abs() <= 1e-9 * want.abs().max(1e-300)
    }

    /// Jackson's theorem (Harchol-Balter, "Performance Modeling and Design of Computer
    /// Systems", 2013, ch. 17 "Networks of Queues and Jackson Product Form"; Bolch et al.,
    /// "Queueing Networks and Markov Chains", 2nd ed., 2006, §7.3.4): an open network with
    /// feedback, worked by hand here (the numbers are this test's, not the books').
    ///
    /// Three stations, λ = 10/s into A; A → B 0.6, A → C 0.4; B → A 0.2 (feedback), B → exit
    /// 0.8; C → exit. μ_A = 20, μ_B = 10, C has 2 servers of μ_C = 4.
    /// Traffic: λ_A = 10 + 0.2 λ_B, λ_B = 0.6 λ_A ⇒ λ_A = 10/0.88 = 125/11 = 11.3636…,
    /// λ_B = 75/11 = 6.8181…, λ_C = 50/11 = 4.5454…; v = (25/22, 15/22, 10/22).
    /// ρ_A = (125/11)/20 = 25/44, ρ_B = (75/11)/10 = 15/22, ρ_C = (50/11)/8 = 25/44.
    /// L_A = ρ/(1−ρ) = 25/19; L_B = 15/7; L_C (M/M/2: 2ρ/(1−ρ²)) = (50/44)/(1311/1936) =
    /// 2200/1311. L = 25/19 + 15/7 + 2200/1311 = 5.1367549…, T = L/λ = 0.51367549… s.
    /// W_A = 1/(μ−λ_A) = 1/(20 − 125/11) = 11/95. P(wait at C) = Erlang C(2, 25/22) =
    /// 2ρ²/(1+ρ) = (1250/1936)/(69/44) = 1250/3036.
    /// λ_max = min(20/(25/22), 10/(15/22), 8/(10/22)) = min(17.6, 44/3, 17.6) = 44/3 (B).
    #[test]
    fn a_jackson_network_with_feedback_by_hand() {
        let text = "\
[[station]]
name = \"A\"
mu = 20
[[station]]
name = \"B\"
mu = 10
[[station]]
name = \"C\"
mu = 4
servers = 2
[routing]
entry = { A = 1 }
A = { B = 0.6, C = 0.4 }
B = { A = 0.2, exit = 0.8 }
C = { exit = 1 }
";
        let net = Network::parse(text).expect("valid in this test");
        let t = theory(&net, 10.0).expect("valid in this test");
        assert!(t.product_form);
        let want_lambda = [125.0 / 11.0, 75.0 / 11.0, 50.0 / 11.0];
        let want_rho = [25.0 / 44.0, 15.0 / 22.0, 25.0 / 44.0];
        let want_l = [25.0 / 19.0, 15.0 / 7.0, 2200.0 / 1311.0];
        for (j, s) in t.stations.iter().enumerate() {
            assert!(close(s.lambda, want_lambda[j]), "{s:?}");
            assert!(close(s.visits, want_lambda[j] / 10.0), "{s:?}");
            assert!(close(s.rho, want_rho[j]), "{s:?}");
            assert!(close(s.l.expect("valid in this test"), want_l[j]), "{s:?}");
            // Little at each station.
            assert!(
                close(s.w_s.expect("valid in this test") * s.lambda, want_l[j]),
                "{s:?}"
            );
            assert!(s.stable);
        }
        assert!(close(
            t.stations[0].w_s.expect("valid in this test"),
            11.0 / 95.0
        ));
        assert!(close(
            t.stations[2].wait_prob.expect("valid in this test"),
            1250.0 / 3036.0
        ));
        let l: f64 = want_l.iter().sum();
        assert!(close(t.in_system.expect("valid in this test"), l));
        assert!(close(t.mean_s.expect("valid in this test"), l / 10.0));
        assert!((t.mean_s.expect("valid in this test") - 0.513_675_49).abs() < 1e-8);
        assert!(close(t.lambda_max, 44.0 / 3.0));
        // Just above λ_max, B saturates first.
        match theory(&net, 44.0 / 3.0 + 1e-9) {
            Err(NetworkTheoryError::Unstable { station, rho, .. }) => {
                assert_eq!(station, "B");
                assert!(rho >= 1.0);
            }
            other => panic!("{other:?}"),
        }
        assert!(theory(&net, 14.6).is_ok());
    }

    /// A textbook's worked example: Hillier & Lieberman, *Introduction to Operations Research*
    /// (9th ed., 2010), §17.9 "Queueing Networks", the Jackson network of three service
    /// facilities: external Poisson arrivals a = (1, 4, 3) per hour, s = (1, 2, 1) servers of
    /// μ = 10 per hour each, routing p12 = 0.6, p13 = 0.3, p21 = 0.1, p23 = 0.3, p31 = 0.4,
    /// p32 = 0.4 (the rest leaves). The book solves λ1 = 1 + 0.1λ2 + 0.4λ3,
    /// λ2 = 4 + 0.6λ1 + 0.4λ3, λ3 = 3 + 0.3λ1 + 0.3λ2 to λ = (5, 10, 7.5), so ρ = (1/2, 1/2,
    /// 3/4), L = (1, 4/3, 3), L = 16/3 in the network and W = L/Σa = 2/3 hour. External
    /// arrivals at several facilities are an entry split a/Σa at λ = Σa = 8.
    #[test]
    fn the_jackson_network_of_hillier_and_lieberman() {
        let text = "\
[[station]]
name = \"f1\"
mu = 10
[[station]]
name = \"f2\"
mu = 10
servers = 2
[[station]]
name = \"f3\"
mu = 10
[routing]
entry = { f1 = 0.125, f2 = 0.5, f3 = 0.375 }
f1 = { f2 = 0.6, f3 = 0.3, exit = 0.1 }
f2 = { f1 = 0.1, f3 = 0.3, exit = 0.6 }
f3 = { f1 = 0.4, f2 = 0.4, exit = 0.2 }
";
        let net = Network::parse(text).expect("valid in this test");
        let t = theory(&net, 8.0).expect("valid in this test");
        assert!(t.product_form);
        let want_lambda = [5.0, 10.0, 7.5];
        let want_rho = [0.5, 0.5, 0.75];
        let want_l = [1.0, 4.0 / 3.0, 3.0];
        for (j, s) in t.stations.iter().enumerate() {
            assert!(close(s.lambda, want_lambda[j]), "{s:?}");
            assert!(close(s.rho, want_rho[j]), "{s:?}");
            assert!(close(s.l.expect("valid in this test"), want_l[j]), "{s:?}");
        }
        assert!(close(t.in_system.expect("valid in this test"), 16.0 / 3.0));
        assert!(close(t.mean_s.expect("valid in this test"), 2.0 / 3.0));
    }

    /// The example of the issue: web (μ 1000) → db 0.5, db (μ 2000) → web 0.3.
    /// λ_web = λ + 0.3 λ_db, λ_db = 0.5 λ_web ⇒ v_web = 1/0.85, v_db = 0.5/0.85; ρ_web =
    /// λ/850, ρ_db = λ/3400, λ_max = 850; T = Σ v_j/(μ_j − λ_j) = Σ L_j / λ.
    #[test]
    fn web_db_from_100_to_700_per_second() {
        let net = Network::parse(WEB_DB).expect("valid in this test");
        let v = visit_ratios(&net).expect("valid in this test");
        assert!(close(v[0], 1.0 / 0.85) && close(v[1], 0.5 / 0.85), "{v:?}");
        assert!(close(lambda_max(&net).expect("valid in this test"), 850.0));
        for lambda in [100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0] {
            let t = theory(&net, lambda).expect("valid in this test");
            let (lw, ld) = (lambda / 0.85, lambda * 0.5 / 0.85);
            assert!(close(t.stations[0].rho, lambda / 850.0));
            assert!(close(t.stations[1].rho, lambda / 3400.0));
            let by_visits = v[0] / (1000.0 - lw) + v[1] / (2000.0 - ld);
            let (rw, rd) = (lw / 1000.0, ld / 2000.0);
            let by_little = (rw / (1.0 - rw) + rd / (1.0 - rd)) / lambda;
            assert!(
                close(t.mean_s.expect("valid in this test"), by_visits),
                "{lambda}: {t:?}"
            );
            assert!(
                close(t.mean_s.expect("valid in this test"), by_little),
                "{lambda}: {t:?}"
            );
        }
        // The values docs/models.md quotes.
        for (lambda, ms) in [
            (100.0, 1.636_363_6),
            (400.0, 2.555_555_6),
            (700.0, 7.037_037_0),
        ] {
            let t = theory(&net, lambda).expect("valid in this test");
            assert!((t.mean_s.expect("product form") * 1e3 - ms).abs() < 1e-6);
        }
        let e = theory(&net, 850.0).expect_err("invalid in this test");
        assert!(e.to_string().contains("\"web\""), "{e}");
        assert!(matches!(
            theory(&net, 0.0),
            Err(NetworkTheoryError::Rate(_))
        ));
        assert!(matches!(
            theory(&net, f64::NAN),
            Err(NetworkTheoryError::Rate(_))
        ));
    }

    /// A tandem of two M/M/1: T = 1/(μ1 − λ) + 1/(μ2 − λ); with an M/D/1 second station there
    /// is no product form, and the visits and loads are still given.
    #[test]
    fn tandem() {
        let text = "[[station]]\nname = \"one\"\nmu = 300\n[[station]]\nname = \"two\"\n\
                    mu = 500\n[routing]\nentry = { one = 1 }\none = { two = 1 }\n\
                    two = { exit = 1 }\n";
        let net = Network::parse(text).expect("valid in this test");
        for lambda in [50.0, 150.0, 299.0] {
            let t = theory(&net, lambda).expect("valid in this test");
            let want = 1.0 / (300.0 - lambda) + 1.0 / (500.0 - lambda);
            assert!(close(t.mean_s.expect("valid in this test"), want), "{t:?}");
            assert_eq!(t.stations[1].visits, 1.0);
        }
        assert!(close(lambda_max(&net).expect("valid in this test"), 300.0));
        let net = Network::parse(&text.replace("mu = 500", "mu = 500\nservice = \"const\""))
            .expect("valid in this test");
        let t = theory(&net, 100.0).expect("valid in this test");
        assert!(!t.product_form && t.mean_s.is_none() && t.stations[0].l.is_none());
        assert!(close(t.stations[1].rho, 0.2));
        // Infinite servers and zero service never saturate.
        let net = Network::parse(&text.replace("mu = 500", "mu = 500\nservers = \"inf\""))
            .expect("valid in this test");
        assert!(close(lambda_max(&net).expect("valid in this test"), 300.0));
        let t = theory(&net, 100.0).expect("valid in this test");
        assert!(t.product_form);
        assert!(
            close(t.stations[1].l.expect("valid in this test"), 0.2)
                && close(t.stations[1].w_s.expect("valid in this test"), 0.002)
        );
        let net = Network::parse(&text.replace("mu = 300", "mu = 300\nservice = \"zero\""))
            .expect("valid in this test");
        assert!(close(lambda_max(&net).expect("valid in this test"), 500.0));
    }

    /// The traffic equations of a three-cycle a → b → c → a, each hop with probability 0.9
    /// (exit 0.1): v_a = 1/(1 − 0.9³), v_b = 0.9 v_a, v_c = 0.81 v_a.
    #[test]
    fn visit_ratios_of_a_cycle() {
        let text = "[[station]]\nname = \"a\"\nmu = 1\n[[station]]\nname = \"b\"\nmu = 1\n\
                    [[station]]\nname = \"c\"\nmu = 1\n[routing]\nentry = { a = 1 }\n\
                    a = { b = 0.9, exit = 0.1 }\nb = { c = 0.9, exit = 0.1 }\n\
                    c = { a = 0.9, exit = 0.1 }\n";
        let net = Network::parse(text).expect("valid in this test");
        let v = visit_ratios(&net).expect("valid in this test");
        let va = 1.0 / (1.0 - 0.729);
        assert!(
            close(v[0], va) && close(v[1], 0.9 * va) && close(v[2], 0.81 * va),
            "{v:?}"
        );
        // A hand-made singular routing (no exit anywhere) is refused, not divided by 0.
        let mut bad = net.clone();
        bad.routing = vec![
            vec![0.0, 1.0, 0.0],
            vec![0.0, 0.0, 1.0],
            vec![1.0, 0.0, 0.0],
        ];
        bad.exit = vec![0.0; 3];
        assert_eq!(visit_ratios(&bad), Err(NetworkTheoryError::Singular));
    }
}
