//! The queue model that `qserve` emulates, `qload` prints the theory of and `qlab` sweeps: one
//! type, [`Model`], its validation, its Kendall name ([`Kendall`]) and its command-line flags
//! ([`ModelArgs`]).
//!
//! A model is a FIFO queue with Poisson arrivals, `c` servers (or infinitely many) of service rate
//! μ each, an optional capacity K (requests in the system, waiting plus in service) and a
//! service-time distribution. The arrival side is apart, as a [`Load`]: an arrival rate λ (what
//! `qload` sends) or a load per server ρ = λ/(cμ) (what the lab sweeps); [`Model::lambda`] and
//! [`Model::rho`] convert.
//!
//! The three programs share the flags `--mu`, `--servers`, `--capacity`, `--service` and `--model`
//! by flattening [`ModelArgs`]; each keeps its own defaults (`qserve` and `qlab` μ = 1000/s,
//! `qload` no model unless `--mu` is given) and `qserve` alone also reads them from the
//! environment (`QSERVE_MU`, …), which it adds to its own command.
//!
//! ```
//! use queuelab_common::model::{Kendall, Load, Model, Servers};
//!
//! let m = Model::parse("M/M/2/10", 500.0).unwrap();
//! assert_eq!((m.servers, m.capacity), (Servers::Finite(2), Some(10)));
//! assert_eq!(m.name(), "M/M/2/10");
//! assert_eq!(m.lambda(Load::Rho(0.5)), 500.0); // ρ·c·μ
//! assert_eq!(m.rho(250.0), 0.25);
//! assert!("M/M/1/0".parse::<Kendall>().is_err());
//! ```
use std::fmt;
use std::str::FromStr;

pub use crate::samplers::ServiceKind;
use crate::samplers::ServiceSampler;
use crate::units::{parse_count, parse_rate};

/// Number of servers: `c` or infinitely many (pure delay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Servers {
    /// `c ≥ 1` servers.
    Finite(u32),
    /// M/·/∞: every request is served at once.
    Infinite,
}

impl FromStr for Servers {
    type Err = crate::units::UnitError;
    /// A positive integer or `inf` (also `infinite`, `infinity`, `∞`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let err = |reason| crate::units::UnitError::new("number of servers", s, reason);
        match t.to_ascii_lowercase().as_str() {
            "inf" | "infinite" | "infinity" | "∞" => return Ok(Servers::Infinite),
            "" => return Err(err("empty (expected a positive integer or inf)")),
            _ => {}
        }
        if !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("expected a positive integer or inf"));
        }
        match t.parse::<u32>() {
            Ok(0) => Err(err("must be at least 1")),
            Ok(c) => Ok(Servers::Finite(c)),
            Err(_) => Err(err("too large")),
        }
    }
}

impl fmt::Display for Servers {
    /// `c` or `inf`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Servers::Finite(c) => write!(f, "{c}"),
            Servers::Infinite => f.write_str("inf"),
        }
    }
}

/// The service rate of `qserve` and `qlab` when `--mu` is not given (1/s).
pub const DEFAULT_MU: f64 = 1000.0;

/// A queue: Poisson arrivals, `servers` servers of rate `mu`, optional capacity, a service-time
/// distribution.
///
/// The fields are public to read and to change; a new model starts from [`Model::new`],
/// [`Model::parse`] or [`Default`] (M/M/1 at μ = [`DEFAULT_MU`]), so that fields added later
/// (the queueing discipline) get their defaults without touching the code that builds models.
/// Nothing is checked on construction: [`Model::validate`] is the one check every program applies.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Model {
    /// Service rate μ per server (1/s); unused with [`ServiceKind::Zero`].
    pub mu: f64,
    /// Number of servers.
    pub servers: Servers,
    /// Capacity K (in system, waiting plus in service), if any.
    pub capacity: Option<u32>,
    /// Service-time distribution (each with mean 1/μ).
    pub service: ServiceKind,
    /// The order of service.
    pub discipline: Discipline,
    /// The priority classes (one by default).
    pub classes: Classes,
}

impl Default for Model {
    /// M/M/1 at μ = [`DEFAULT_MU`].
    fn default() -> Self {
        Model::new(DEFAULT_MU, Servers::Finite(1))
    }
}

/// Why a model is not a queue: the message names the flag at fault (the flags are the same in
/// every program).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// μ is zero, negative, infinite or NaN (with a service other than zero).
    #[error("--mu must be a positive rate, got {0}")]
    Mu(f64),
    /// `Servers::Finite(0)`.
    #[error("--servers must be at least 1 (or inf)")]
    NoServers,
    /// A capacity of 0: nobody could ever be admitted.
    #[error("--capacity must be at least 1")]
    NoCapacity,
    /// K < c: K counts the requests in service, so it cannot be below the servers.
    #[error(
        "--capacity {capacity} is below --servers {servers}: K counts the requests in service too"
    )]
    CapacityBelowServers {
        /// K.
        capacity: u32,
        /// c.
        servers: u32,
    },
    /// A Kendall name that does not parse.
    #[error("invalid model {name:?}: {reason}")]
    Name {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// How hard the arrivals push: an arrival rate, or a load per server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Arrival rate λ (1/s).
    Rate(f64),
    /// Offered load per server ρ = λ/(cμ) (λ/μ with infinitely many servers).
    Rho(f64),
}

impl Model {
    /// c servers of rate `mu`, exponential service, no capacity (not validated).
    pub fn new(mu: f64, servers: Servers) -> Self {
        Model {
            mu,
            servers,
            capacity: None,
            service: ServiceKind::Exp,
            discipline: Discipline::Fcfs,
            classes: Classes::default(),
        }
    }

    /// The same model with discipline `discipline`.
    pub fn with_discipline(self, discipline: Discipline) -> Self {
        Model { discipline, ..self }
    }

    /// The same model with classes `classes`.
    pub fn with_classes(self, classes: Classes) -> Self {
        Model { classes, ..self }
    }

    /// The same model with capacity `capacity`.
    pub fn with_capacity(self, capacity: Option<u32>) -> Self {
        Model { capacity, ..self }
    }

    /// The same model with service-time distribution `service`.
    pub fn with_service(self, service: ServiceKind) -> Self {
        Model { service, ..self }
    }

    /// The model named `name` in Kendall notation ([`Kendall`]) with service rate `mu`, validated.
    pub fn parse(name: &str, mu: f64) -> Result<Self, ModelError> {
        let m = Model::new(mu, Servers::Finite(1)).with_kendall(name.parse()?);
        m.validate()?;
        Ok(m)
    }

    /// The same model with the servers, capacity and service of `k` (μ kept).
    pub fn with_kendall(self, k: Kendall) -> Self {
        Model {
            servers: k.servers,
            capacity: k.capacity,
            service: k.service,
            ..self
        }
    }

    /// Checks that this is a queue: μ positive and finite (unless the service is zero), c ≥ 1,
    /// K ≥ 1 and K ≥ c.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.service != ServiceKind::Zero && !(self.mu.is_finite() && self.mu > 0.0) {
            return Err(ModelError::Mu(self.mu));
        }
        self.kendall().validate()
    }

    /// The model in Kendall notation, without μ.
    pub fn kendall(&self) -> Kendall {
        Kendall {
            servers: self.servers,
            capacity: self.capacity,
            service: self.service,
        }
    }

    /// Kendall notation: `M/M/1`, `M/M/2/10`, `M/D/1`, `M/G/1`, `M/M/inf`, `M/0`, … (see
    /// [`Kendall`]); [`Model::parse`] reads it back.
    pub fn name(&self) -> String {
        format!("{}{}", self.kendall(), self.discipline.suffix())
    }

    /// The arrival rate λ of `load`: itself, or ρ·c·μ (ρ·μ with infinitely many servers, where
    /// ρ is the mean number of busy servers).
    pub fn lambda(&self, load: Load) -> f64 {
        match (load, self.servers) {
            (Load::Rate(lambda), _) => lambda,
            (Load::Rho(rho), Servers::Finite(c)) => rho * f64::from(c) * self.mu,
            (Load::Rho(rho), Servers::Infinite) => rho * self.mu,
        }
    }

    /// The offered load per server at arrival rate `lambda`: λ/(cμ), λ/μ for infinitely many
    /// servers, 0 for zero service (nobody ever occupies a server).
    pub fn rho(&self, lambda: f64) -> f64 {
        if self.service == ServiceKind::Zero {
            return 0.0;
        }
        match self.servers {
            Servers::Finite(c) => lambda / (f64::from(c) * self.mu),
            Servers::Infinite => lambda / self.mu,
        }
    }

    /// The service-time sampler of this model (μ unchecked: validate first).
    pub fn sampler(&self) -> ServiceSampler {
        ServiceSampler {
            kind: self.service,
            mu: self.mu,
        }
    }
}

/// A model's Kendall name: everything of a [`Model`] but μ.
///
/// Arrivals are always Poisson (`M`). Then the service: `M` (exponential), `D` (constant), `G`
/// (uniform on [0, 2/μ], the general distribution `qserve` first offered), `Ek` (Erlang with k
/// phases); the number of servers (`inf` for ∞); and the capacity K if any: `M/M/1`, `M/M/2`,
/// `M/M/1/10`, `M/D/1`, `M/G/1`, `M/E4/1`, `M/M/inf`, `M/D/inf`, `M/G/inf`, `M/M/inf/10` (the
/// Erlang loss system with 10 places). Zero service is `M/0` whatever the servers and capacity (it
/// has no queue), and `M/0` reads back as one server without capacity. Parsing ignores case and
/// spaces around the parts and takes `∞` for `inf`.
///
/// The kinds whose parameter the letter cannot carry print as `M/H2/c` (hyperexponential),
/// `M/LN/c` (lognormal), `M/BP/c` (bounded Pareto) and `M/T/c` (trace) but do not parse back:
/// the parser refuses them with a message pointing to `--service h2:CV2` and the others.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kendall {
    /// Number of servers.
    pub servers: Servers,
    /// Capacity K, if any.
    pub capacity: Option<u32>,
    /// Service-time distribution.
    pub service: ServiceKind,
}

impl Kendall {
    /// c ≥ 1, K ≥ 1 and K ≥ c (see [`Model::validate`]).
    pub fn validate(&self) -> Result<(), ModelError> {
        match (self.servers, self.capacity) {
            (Servers::Finite(0), _) => Err(ModelError::NoServers),
            (_, Some(0)) => Err(ModelError::NoCapacity),
            (Servers::Finite(c), Some(k)) if k < c => Err(ModelError::CapacityBelowServers {
                capacity: k,
                servers: c,
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Kendall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let service = match self.service {
            ServiceKind::Exp => "M",
            ServiceKind::Const => "D",
            ServiceKind::Uniform => "G",
            ServiceKind::Zero => return f.write_str("M/0"),
            ServiceKind::Erlang(k) => return write_kendall(f, format_args!("E{k}"), self),
            ServiceKind::H2 { .. } => "H2",
            ServiceKind::Lognormal { .. } => "LN",
            ServiceKind::Pareto { .. } => "BP",
            ServiceKind::Trace(_) => "T",
        };
        write!(f, "M/{service}/{}", self.servers)?;
        match self.capacity {
            Some(k) => write!(f, "/{k}"),
            None => Ok(()),
        }
    }
}

impl FromStr for Kendall {
    type Err = ModelError;
    /// `M/S/c` or `M/S/c/K`, or `M/0`; the result is validated (c ≥ 1, K ≥ 1, K ≥ c).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let bad = |reason| ModelError::Name {
            name: name.to_owned(),
            reason,
        };
        let parts: Vec<&str> = name.split('/').map(str::trim).collect();
        if !parts[0].eq_ignore_ascii_case("M") {
            return Err(bad("arrivals must be M (Poisson): the name starts with M/"));
        }
        let service = match parts.get(1).map(|s| s.to_ascii_uppercase()).as_deref() {
            Some("M") => ServiceKind::Exp,
            Some("D") => ServiceKind::Const,
            Some("G") => ServiceKind::Uniform,
            Some("0") if parts.len() == 2 => {
                return Ok(Kendall {
                    servers: Servers::Finite(1),
                    capacity: None,
                    service: ServiceKind::Zero,
                });
            }
            Some("0") => return Err(bad("zero service is named M/0, with nothing after it")),
            Some(e) if e.starts_with('E') => {
                ServiceKind::Erlang(erlang_phases(&e[1..]).map_err(bad)?)
            }
            Some("H2") => {
                return Err(bad(
                    "H2 carries no C² in its name: give --service h2:CV2 (and --servers, \
                     --capacity) instead of --model",
                ));
            }
            Some("LN") => {
                return Err(bad(
                    "LN carries no C² in its name: give --service lognormal:CV2 (and --servers, \
                     --capacity) instead of --model",
                ));
            }
            Some("BP") => {
                return Err(bad(
                    "BP carries no shape in its name: give --service pareto:ALPHA[:RATIO] (and \
                     --servers, --capacity) instead of --model",
                ));
            }
            Some("T") => {
                return Err(bad(
                    "T carries no file in its name: give --service trace:FILE (and --servers, \
                     --capacity) instead of --model",
                ));
            }
            _ => {
                return Err(bad(
                    "the service must be M (exponential), D (constant), G (uniform), Ek (Erlang \
                     with k phases) or 0 (zero)",
                ));
            }
        };
        let servers = match parts.get(2) {
            Some(c) => c
                .parse::<Servers>()
                .map_err(|_| bad("the number of servers must be a positive integer or inf"))?,
            None => return Err(bad("the number of servers is missing (as in M/M/1)")),
        };
        let capacity = match parts.get(3) {
            Some(k) if k.bytes().all(|b| b.is_ascii_digit()) && !k.is_empty() => Some(
                k.parse::<u32>()
                    .map_err(|_| bad("the capacity is too large"))?,
            ),
            Some(_) => return Err(bad("the capacity must be a positive integer")),
            None => None,
        };
        if parts.len() > 4 {
            return Err(bad(
                "too many parts: at most M/S/c/K (arrivals, service, servers, capacity)",
            ));
        }
        let k = Kendall {
            servers,
            capacity,
            service,
        };
        k.validate()?;
        Ok(k)
    }
}

fn mu_value(s: &str) -> Result<f64, String> {
    parse_rate(s).map_err(|e| e.to_string())
}

fn servers_value(s: &str) -> Result<Servers, String> {
    s.parse::<Servers>().map_err(|e| e.to_string())
}

fn capacity_value(s: &str) -> Result<u32, String> {
    let n = parse_count(s).map_err(|e| e.to_string())?;
    u32::try_from(n).map_err(|_| format!("{s:?} is too large"))
}

fn service_value(s: &str) -> Result<ServiceKind, String> {
    s.parse::<ServiceKind>().map_err(|e| e.to_string())
}

fn kendall_value(s: &str) -> Result<Kendall, String> {
    s.parse::<Kendall>().map_err(|e| e.to_string())
}

/// The k of the service `Ek` of a Kendall name (the text after the `E`).
fn erlang_phases(k: &str) -> Result<u32, &'static str> {
    if k.is_empty() {
        return Err("Erlang service needs its number of phases, as in M/E4/1");
    }
    if !k.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the phases k of an Erlang service Ek must be a whole number, as in M/E4/1");
    }
    match k.parse::<u32>() {
        Ok(0) => Err("the phases k of an Erlang service Ek must be at least 1"),
        Ok(k) => Ok(k),
        Err(_) => Err("the phases k of an Erlang service Ek are too many"),
    }
}

/// `M/{service}/c[/K]` for a service letter that needs formatting (`E4`).
fn write_kendall(
    f: &mut fmt::Formatter<'_>,
    service: fmt::Arguments<'_>,
    k: &Kendall,
) -> fmt::Result {
    write!(f, "M/{service}/{}", k.servers)?;
    match k.capacity {
        Some(cap) => write!(f, "/{cap}"),
        None => Ok(()),
    }
}

/// The order in which a queue serves its requests (`--discipline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Discipline {
    /// First come, first served (the default).
    #[default]
    Fcfs,
    /// Last come, first served, non-preemptive: a free server takes the latest arrival waiting.
    Lcfs,
    /// Processor sharing: each of the n requests present is served at rate min(1, c/n).
    Ps,
    /// Priority classes, non-preemptive: a free server takes the oldest request of the highest
    /// class waiting (class 0 is the highest).
    Priority,
    /// Priority classes, preemptive-resume: an arrival of a higher class takes a server from the
    /// lowest-class request in service, which resumes later where it stopped.
    PriorityPreemptive,
}

impl Discipline {
    /// The flag spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Discipline::Fcfs => "fcfs",
            Discipline::Lcfs => "lcfs",
            Discipline::Ps => "ps",
            Discipline::Priority => "priority",
            Discipline::PriorityPreemptive => "priority-preemptive",
        }
    }

    /// The suffix of a model name (`M/M/1-PS`), empty for FCFS.
    pub fn suffix(&self) -> &'static str {
        match self {
            Discipline::Fcfs => "",
            Discipline::Lcfs => "-LCFS",
            Discipline::Ps => "-PS",
            Discipline::Priority => "-NP",
            Discipline::PriorityPreemptive => "-PR",
        }
    }

    /// Whether requests are served by class.
    pub fn by_class(&self) -> bool {
        matches!(self, Discipline::Priority | Discipline::PriorityPreemptive)
    }
}

impl fmt::Display for Discipline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Discipline {
    type Err = crate::units::UnitError;
    /// `fcfs` (or `fifo`), `lcfs` (or `lifo`), `ps`, `priority` (or `np`),
    /// `priority-preemptive` (or `pr`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fcfs" | "fifo" => Ok(Discipline::Fcfs),
            "lcfs" | "lifo" => Ok(Discipline::Lcfs),
            "ps" => Ok(Discipline::Ps),
            "priority" | "np" => Ok(Discipline::Priority),
            "priority-preemptive" | "pr" => Ok(Discipline::PriorityPreemptive),
            _ => Err(crate::units::UnitError::new(
                "discipline",
                s,
                "expected fcfs, lcfs, ps, priority or priority-preemptive",
            )),
        }
    }
}

/// Most priority classes (`--classes`; `X-Priority` takes 0 to `MAX_CLASSES − 1`).
pub const MAX_CLASSES: usize = 8;

/// The probabilities of the priority classes (`--classes P0,P1,…`), class 0 the highest; a
/// request's class is drawn at arrival from them unless it names its own (`X-Priority`).
///
/// A fixed array so that a [`Model`] stays `Copy`. One class of probability 1 by default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Classes {
    n: u8,
    p: [f64; MAX_CLASSES],
}

impl Default for Classes {
    fn default() -> Self {
        let mut p = [0.0; MAX_CLASSES];
        p[0] = 1.0;
        Classes { n: 1, p }
    }
}

impl Classes {
    /// Classes with probabilities `p` (1 to [`MAX_CLASSES`] of them, each in [0, 1], summing to 1
    /// within 10⁻⁶; they are then normalized).
    pub fn new(p: &[f64]) -> Result<Classes, String> {
        if p.is_empty() || p.len() > MAX_CLASSES {
            return Err(format!("give 1 to {MAX_CLASSES} class probabilities"));
        }
        if let Some(bad) = p
            .iter()
            .find(|x| !(x.is_finite() && (0.0..=1.0).contains(*x)))
        {
            return Err(format!("probability {bad} is not in [0, 1]"));
        }
        let sum: f64 = p.iter().sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(format!("the probabilities sum to {sum}, not 1"));
        }
        let mut a = [0.0; MAX_CLASSES];
        for (d, s) in a.iter_mut().zip(p) {
            *d = s / sum;
        }
        Ok(Classes {
            n: p.len() as u8,
            p: a,
        })
    }

    /// The number of classes.
    pub fn len(&self) -> usize {
        usize::from(self.n)
    }

    /// Whether there is only the one default class (never empty).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The class of a uniform draw `u` in [0, 1): the first class whose cumulative probability
    /// exceeds `u` (the last class for rounding at the top).
    pub fn draw(&self, u: f64) -> u8 {
        let mut acc = 0.0;
        for (i, p) in self.probabilities().iter().enumerate() {
            acc += p;
            if u < acc {
                return i as u8;
            }
        }
        self.n - 1
    }

    /// The probabilities, class 0 first.
    pub fn probabilities(&self) -> &[f64] {
        &self.p[..self.len()]
    }
}

impl fmt::Display for Classes {
    /// `P0,P1,…` as the flag takes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.probabilities().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl FromStr for Classes {
    type Err = String;
    /// `P0,P1,…`, e.g. `0.3,0.7`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut p = Vec::new();
        for part in s.split(',') {
            let x: f64 = part
                .trim()
                .parse()
                .map_err(|_| format!("class probability {part:?} is not a number"))?;
            p.push(x);
        }
        Classes::new(&p)
    }
}

fn discipline_value(s: &str) -> Result<Discipline, String> {
    s.parse::<Discipline>().map_err(|e| e.to_string())
}

fn classes_value(s: &str) -> Result<Classes, String> {
    s.parse::<Classes>()
}

/// The flags of a model, shared by `qserve`, `qload` and `qlab` (`#[command(flatten)]`).
///
/// Every field is optional so that each program applies its own defaults
/// ([`ModelArgs::model_or`], [`ModelArgs::given_model`]) and can tell a flag given from one
/// defaulted. `--model` names the servers, capacity and service at once and conflicts with
/// `--servers`, `--capacity` and `--service`. No flag reads the environment here: `qserve` adds
/// its `QSERVE_*` variables to its own command.
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct ModelArgs {
    /// Service rate μ per server, requests/s.
    #[arg(
        long,
        value_name = "RATE",
        value_parser = mu_value,
        long_help = "Service rate μ of each server, in requests per second (SI suffixes: 500, \
                     2.5k, 1M). The mean service time is 1/μ. Ignored with --service zero."
    )]
    pub mu: Option<f64>,

    /// Number of servers c, or `inf` [default: 1].
    #[arg(
        long,
        value_name = "N|inf",
        value_parser = servers_value,
        long_help = "Number of servers c of the FIFO queue (default 1), or `inf` for a pure \
                     delay: every request is served at once for its service time (M/M/inf). \
                     The queue saturates at c·μ requests/s."
    )]
    pub servers: Option<Servers>,

    /// Capacity K: requests in the system (waiting + in service); more get 503.
    #[arg(
        long,
        value_name = "K",
        value_parser = capacity_value,
        long_help = "Capacity K of the system, counting requests waiting and in service \
                     (M/M/c/K). An arrival that finds K present is answered 503 at once and \
                     counted as blocked. Must be at least --servers. Default: no capacity."
    )]
    pub capacity: Option<u32>,

    /// Service-time distribution: exp, const, uniform, zero, erlang:K, h2:CV2, lognormal:CV2,
    /// pareto:ALPHA, pareto:ALPHA:RATIO or trace:FILE [default: exp].
    #[arg(
        long,
        value_name = "KIND",
        value_parser = service_value,
        long_help = "Service-time distribution, each with mean 1/μ (C² is the squared \
                     coefficient of variation, variance over mean²):\n\
                     - `exp`: exponential, C² = 1 (M/M/c, the default);\n\
                     - `const`: deterministic, C² = 0 (M/D/c);\n\
                     - `uniform`: uniform on [0, 2/μ], C² = 1/3 (M/G/c);\n\
                     - `erlang:K`: Erlang with K ≥ 1 phases in series, C² = 1/K (M/EK/c);\n\
                     - `h2:CV2`: two-phase hyperexponential with balanced means, any C² = CV2 > \
                     1 (M/H2/c);\n\
                     - `lognormal:CV2`: lognormal with C² = CV2 > 0 (M/LN/c);\n\
                     - `pareto:ALPHA[:RATIO]`: bounded Pareto of shape ALPHA > 0 whose largest \
                     time is RATIO > 1 times its smallest (default 1000), a heavy tail cut \
                     off so its moments exist (M/BP/c);\n\
                     - `trace:FILE`: times drawn with replacement from FILE (one number of \
                     microseconds a line, blank lines and # comments skipped), scaled to mean \
                     1/μ (M/T/c);\n\
                     - `zero`: no queue at all, every request is answered at once (the \
                     maximum-throughput mode)."
    )]
    pub service: Option<ServiceKind>,

    /// The queue in Kendall notation (M/M/1, M/M/2/10, M/D/1, M/E4/1, M/G/inf, M/0, …).
    #[arg(
        long,
        value_name = "NAME",
        value_parser = kendall_value,
        conflicts_with_all = ["servers", "capacity", "service"],
        long_help = "The queue in Kendall notation, instead of --servers, --capacity and \
                     --service: M/S/c or M/S/c/K, where the arrivals are M (Poisson), the \
                     service S is M (exponential), D (constant), G (uniform on [0, 2/μ]) or Ek \
                     (Erlang with k phases), c the number of servers (or inf) and K the \
                     capacity; M/0 is zero service. For example M/M/1, M/M/2/10, M/D/1, \
                     M/E4/1, M/G/1, M/M/inf. The name has no μ: give it with --mu. The \
                     distributions with a parameter the name cannot hold (h2, lognormal, \
                     pareto, trace) are given with --service instead."
    )]
    pub model: Option<Kendall>,

    /// Order of service: fcfs, lcfs, ps, priority or priority-preemptive [default: fcfs].
    #[arg(
        long,
        value_name = "ORDER",
        value_parser = discipline_value,
        long_help = "Order of service: `fcfs` (first come, first served, the default), `lcfs` \
                     (last come, first served, non-preemptive), `ps` (processor sharing: each \
                     of the n requests present is served at rate min(1, c/n)), `priority` \
                     (classes, non-preemptive; class 0 first) or `priority-preemptive` \
                     (classes, preemptive-resume)."
    )]
    pub discipline: Option<Discipline>,

    /// Priority class probabilities P0,P1,… (class 0 the highest).
    #[arg(
        long,
        value_name = "P0,P1,…",
        value_parser = classes_value,
        long_help = "The probabilities of the priority classes, class 0 the highest, e.g. \
                     `0.3,0.7`: each request's class is drawn at arrival (seeded) unless it \
                     carries `X-Priority: N`. Up to 8 classes; they must sum to 1. Default: one \
                     class."
    )]
    pub classes: Option<Classes>,
}

impl ModelArgs {
    /// The model of these flags, with μ = `default_mu` unless `--mu` was given; one server,
    /// no capacity and exponential service unless given. Not validated ([`Model::validate`]).
    pub fn model_or(&self, default_mu: f64) -> Model {
        let base = Model::new(self.mu.unwrap_or(default_mu), Servers::Finite(1))
            .with_discipline(self.discipline.unwrap_or_default())
            .with_classes(self.classes.unwrap_or_default());
        match self.model {
            Some(k) => base.with_kendall(k),
            None => Model {
                servers: self.servers.unwrap_or(base.servers),
                capacity: self.capacity,
                service: self.service.unwrap_or(base.service),
                ..base
            },
        }
    }

    /// The model only if `--mu` was given (`qload`: no μ, no theory).
    pub fn given_model(&self) -> Option<Model> {
        self.mu.map(|mu| self.model_or(mu))
    }

    /// Whether any flag but `--mu` was given (they describe the queue whose rate `--mu` is).
    pub fn describes_queue(&self) -> bool {
        self.servers.is_some()
            || self.capacity.is_some()
            || self.service.is_some()
            || self.model.is_some()
            || self.discipline.is_some()
            || self.classes.is_some()
    }
}
