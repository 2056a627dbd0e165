//! Closed forms of the queues `qserve` emulates, for the sojourn (response) time T = wait + service.
//!
//! Every function takes the queue as a [`Model`] and the Poisson arrival rate λ beside it:
//! [`predict`] (means, percentiles, blocking), [`sojourn_cdf`], [`sojourn_quantile`],
//! [`sojourn_cdf_fn`], and [`compare`], which holds a measurement against the prediction.
//! Closed (finite-source) systems have [`closed`], [`mva`] and [`closed_birth_death`].
//!
//! Models: M/M/1, M/M/c (Erlang C), M/M/c/K (blocking probability and sojourn of accepted customers),
//! M/D/1 and M/G/1 for every service law (Pollaczek–Khinchine), M/M/∞ (and M/D/∞, M/G/∞: T is the
//! service time); the disciplines LCFS, PS and priority classes (non-preemptive and
//! preemptive-resume) where a closed form exists; M/M/c//N. Where none exists the error is
//! [`TheoryError::Unsupported`] and the simulator ([`crate::sim`]) is the reference.
//! Rates are per second, times in seconds.
//!
//! # Formulas
//!
//! With a = λ/μ the offered load and ρ = a/c the load per server:
//!
//! - **M/M/1**: T ~ Exp(μ − λ).
//! - **M/M/c**: the probability of waiting is Erlang C, computed from the Erlang B recursion
//!   B₀ = 1, Bₖ = a·Bₖ₋₁/(k + a·Bₖ₋₁), C = B/(1 − ρ(1 − B)) (no factorials, no overflow);
//!   Wq = C/(cμ − λ) and P(T > t) = e^{−μt} + Cμ/(cμ − λ − μ)·(e^{−μt} − e^{−(cμ−λ)t}), evaluated
//!   with `expm1` so it stays exact when cμ − λ is close to μ (limit Cμt·e^{−μt}).
//! - **M/M/c/K**: the stationary distribution πₙ ∝ aⁿ/n! (n ≤ c), π_c·ρ^{n−c} (c < n ≤ K) is
//!   normalized in log space with the geometric part summed in closed form, so any K and any ρ
//!   (also ρ ≥ 1) work without overflow. Blocking is π_K (PASTA), throughput λ(1 − π_K), L = Σ nπₙ,
//!   W = L/throughput (Little). An accepted arrival finds n with probability πₙ/(1 − π_K); if
//!   n ≥ c it waits for k = n − c + 1 departures at rate cμ, so Wq is a mixture of Erlang(k, cμ).
//!   Writing each Erlang tail as a Poisson sum and exchanging the sums gives
//!   P(Wq > u) = Σⱼ Pois(j; cμu)·Q̄ⱼ₊₁ with Q̄ₘ = P(k ≥ m), and convolving with the service time,
//!   P(T > t) = e^{−μt} + 1/(c−1)·Σ_{i≥1} Pois(i; cμt)·Hᵢ, Hᵢ = β(Hᵢ₋₁ + Q̄ᵢ), β = (c−1)/c:
//!   a sum of positive terms (no cancellation, nothing raised to the K-th power). For c = 1 the
//!   sojourn of an arrival that finds n is Erlang(n + 1, μ) and P(T > t) = Σⱼ Pois(j; μt)·P(n ≥ j).
//!   The work per evaluation is proportional to cμt, not to K.
//! - **M/D/1** (service D = 1/μ): Pollaczek–Khinchine W = D + ρD/(2(1 − ρ)). For the distribution,
//!   the classical alternating sum of Erlang (1909) cancels catastrophically once t ≫ D, so a
//!   positive-term form is used: with Qₘ = P(N ≤ m) the stationary number in system, a customer's
//!   wait is at most kD + uD (0 ≤ u < 1) exactly when max(N, 1) + A ≤ k + 1, where N is the number
//!   present (1 − u)D before it arrives and A ~ Poisson(λ(1 − u)D) the arrivals since then, so
//!   P(Wq ≤ (k + u)D) = Σ_{j=0..k} Q_{k+1−j}·Pois(j; ρ(1 − u)) (the form of Franx 2001).
//!   The πₙ come from the embedded departure chain by the cut equation
//!   π_{n+1} = e^{ρ}(π₀Āₙ + Σ_{j=1..n} πⱼĀ_{n+1−j}), Āₘ = P(Pois(ρ) > m), again positive terms.
//! - **M/G/1** (FCFS) with any service law of mean 1/μ and squared coefficient of variation C²:
//!   Pollaczek–Khinchine Wq = λE\[S²\]/(2(1 − ρ)) with E\[S²\] = (1 + C²)/μ² taken from the
//!   sampler ([`crate::samplers::ServiceSampler::second_moment_s2`]), i.e. the M/M/1 wait times
//!   (1 + C²)/2 (Kleinrock, Queueing Systems vol. 1, 1975, ch. 5; Harchol-Balter, Performance
//!   Modeling and Design of Computer Systems, 2013, ch. 23). Uniform on [0, 2/μ] gives
//!   E\[S²\] = 4/(3μ²), Erlang-k (1 + 1/k)/μ². The distribution has no simple closed form, so
//!   percentiles are `None` (M/M/1 and M/D/1 keep theirs). A law whose second moment is not
//!   known is `Unsupported`. M/G/c with c ≥ 2 and non-exponential service has no closed form.
//! - **M/·/∞**: T = S for every request, at any load. With a capacity K the system is the Erlang
//!   loss system M/G/K/K, whose blocking probability is Erlang B for any service distribution
//!   (insensitivity); likewise M/G/c/c when K = c.
//! - **Zero service** (`--service zero`): T = 0, nobody waits, model name `M/0`.
//!
//! # Disciplines
//!
//! - **LCFS** (non-preemptive): the order of service does not depend on the sizes, so the number
//!   in system, and with it the mean (Little), is that of FCFS (Kleinrock, Queueing Systems
//!   vol. 2, 1976, §3.5; Harchol-Balter ch. 29): M/G/1-LCFS, M/M/c-LCFS. Percentiles `None` (the
//!   law of the sojourn differs).
//! - **PS** (each of n present served at rate min(1, c/n)): insensitive, the number in system
//!   depends on the service law only through its mean (Kleinrock vol. 2, ch. 4; Kelly,
//!   Reversibility and Stochastic Networks, 1979, §3.3, the symmetric queues): M/G/1-PS has
//!   W = 1/(μ − λ) and M/G/c-PS the W of M/M/c. Percentiles `None`. `mean_wait_s` is then the
//!   delay W − 1/μ.
//! - With exponential service and a capacity K > c, LCFS and PS leave the birth–death chain of
//!   M/M/c/K unchanged: its blocking, L and W (Little); percentiles `None`. A capacity with
//!   another law, or with priority classes, is `Unsupported`.
//! - **Priority classes**, class 0 the highest, the same service law for all, λₖ = pₖλ and
//!   σₖ = Σ_{i≤k} λᵢ/(cμ) (σ₋₁ = 0):
//!   - non-preemptive M/G/1 (Cobham 1954; Kleinrock vol. 2, §3.6; Harchol-Balter ch. 31):
//!     Wq,ₖ = W₀/((1 − σₖ₋₁)(1 − σₖ)), W₀ = λE\[S²\]/2, the mean residual work found;
//!   - non-preemptive M/M/c (same μ for all): the same with W₀ = C(c, a)/(cμ), Erlang C
//!     (Kleinrock vol. 2, §3.6); M/G/c with c ≥ 2 is `Unsupported`;
//!   - preemptive-resume M/G/1 (Kleinrock vol. 2, ch. 3; Harchol-Balter ch. 32):
//!     Tₖ = E\[S\]/(1 − σₖ₋₁) + (Σ_{i≤k} λᵢE\[S²\]/2)/((1 − σₖ₋₁)(1 − σₖ)), the classes below k
//!     invisible to it; `mean_wait_s` is Tₖ − E\[S\]. Several servers: `Unsupported`.
//!
//!   [`Theory::classes`] holds one entry per class (class 0 first); the totals are the
//!   λₖ-weighted means, which for the non-preemptive order are FCFS's (Kleinrock's conservation
//!   law, vol. 2, §3.4). With one class both orders are FCFS, with its percentiles. Where nobody
//!   waits (∞ servers, loss systems, zero service) every class gets the totals.
//!
//! # Closed systems
//!
//! N users each think for a mean Z (exponential), send one request and wait for its answer, in
//! front of one queue of c servers (mean service D = 1/μ): [`closed`]. The exact means, where
//! the product form holds (exponential service, or PS with any law):
//!
//! - **MVA** ([`mva`]; Reiser & Lavenberg, Mean-value analysis of closed multichain queueing
//!   networks, J. ACM 27, 1980; Lazowska et al., Quantitative System Performance, 1984, ch. 6):
//!   by the arrival theorem R(N) = D(1 + Q(N − 1)), X(N) = N/(Z + R(N)), Q(N) = X(N)R(N) for
//!   one server; for c servers the load-dependent form with the marginal probabilities of the
//!   queue, R(N) = D(1 + Q(N − 1) + Σ_{j<c−1} (c − 1 − j)p(j | N − 1))/c (see [`mva`] for the
//!   stable recursion of the p). [`closed`] uses it for one server.
//! - **The birth–death chain** ([`closed_birth_death`]): with n at the queue, users arrive at
//!   (N − n)/Z and leave at min(n, c)μ; [`closed`] uses it for several servers, and the tests
//!   hold the two against each other.
//! - **Bounds** (Lazowska et al., ch. 5): X ≤ min(N/(D + Z), c/D), R ≥ max(D, ND/c − Z), the
//!   knee N* = c(D + Z)/D.
//!
//! M/G/1//N FCFS with non-exponential service has no product form: `Unsupported`.
//!
//! Percentiles without a closed form are found by bisection on the (monotone) CDF to a relative
//! tolerance of 10⁻⁹.
use crate::model::{Discipline, Model, ModelError};
use crate::samplers::ServiceKind;

pub use crate::model::Servers;

/// Why no prediction can be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TheoryError {
    /// ρ ≥ 1 with infinite capacity: the queue grows without bound.
    #[error("unstable queue: rho = {rho:.3} >= 1 with no capacity")]
    Unstable {
        /// Offered load per server.
        rho: f64,
    },
    /// The arrival rate is out of range (λ ≤ 0, infinite or NaN).
    #[error("invalid queue parameters: {0}")]
    Invalid(&'static str),
    /// The model is not a queue ([`Model::validate`]).
    #[error("invalid queue parameters: {0}")]
    Model(#[from] ModelError),
    /// No closed form for this combination (e.g. capacity with non-exponential service).
    #[error("no closed form for {0}")]
    Unsupported(String),
}

/// What theory predicts for a [`Model`] at an arrival rate; see [`predict`].
#[derive(Debug, Clone, PartialEq)]
pub struct Theory {
    /// Kendall notation: `M/M/1`, `M/M/2`, `M/M/1/10`, `M/D/1`, `M/G/1`, `M/M/inf`, …
    pub model: String,
    /// Offered load per server ρ = λ/(cμ) (λ/μ for ∞ servers).
    pub rho: f64,
    /// Probability that an arrival is blocked (M/M/c/K), else 0.
    pub blocking: f64,
    /// Throughput of accepted requests λ(1 − blocking).
    pub throughput: f64,
    /// Mean number in system L.
    pub mean_in_system: f64,
    /// Mean wait in queue Wq (seconds) of accepted requests; under PS and preemptive priority,
    /// where a request can be served and wait by turns, the delay W − 1/μ.
    pub mean_wait_s: f64,
    /// Mean sojourn W = Wq + 1/μ (seconds) of accepted requests.
    pub mean_s: f64,
    /// Median sojourn (seconds), where the distribution is known.
    pub p50_s: Option<f64>,
    /// 90th percentile of the sojourn (seconds), where known.
    pub p90_s: Option<f64>,
    /// 99th percentile of the sojourn (seconds), where known.
    pub p99_s: Option<f64>,
    /// Per priority class (class 0 first) under a priority discipline; empty otherwise.
    pub classes: Vec<ClassTheory>,
}

/// The prediction for one priority class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassTheory {
    /// Arrival rate of the class λₖ = pₖλ (1/s).
    pub lambda: f64,
    /// Mean wait in queue (s).
    pub mean_wait_s: f64,
    /// Mean sojourn (s).
    pub mean_s: f64,
}

/// A closed (finite-source) system: `users` users, each thinking for a time of mean `think_s`
/// (exponential), then sending a request and waiting for its answer; see [`closed`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClosedTheory {
    /// Number of users N.
    pub users: u32,
    /// Mean think time Z (s).
    pub think_s: f64,
    /// Throughput X(N) (1/s).
    pub throughput: f64,
    /// Mean response time R(N) (s): X = N/(R + Z).
    pub response_s: f64,
    /// Mean number in the queue (waiting plus in service) Q = X·R.
    pub mean_in_system: f64,
    /// Utilization per server X·D/c.
    pub utilization: f64,
    /// Asymptotic bound on the throughput: min(N/(D + Z), c/D), D = 1/μ.
    pub bound_throughput: f64,
    /// Asymptotic bound on the response time: max(D, N·D/c − Z).
    pub bound_response_s: f64,
    /// The knee N* = c(D + Z)/D where the two throughput bounds meet.
    pub n_star: f64,
}

/// The exact mean values of a closed system of `users` users with mean think time `think_s` in
/// front of `model` (no capacity): where the model has a product form (exponential service, or
/// processor sharing with any service: the number at the queue is insensitive), else
/// [`TheoryError::Unsupported`] (the simulator is the reference then).
///
/// One server: exact MVA ([`mva`]); several: the birth–death chain ([`closed_birth_death`]),
/// which the tests hold MVA against for both.
pub fn closed(model: &Model, users: u32, think_s: f64) -> Result<ClosedTheory, TheoryError> {
    model.validate()?;
    if users == 0 || !(think_s.is_finite() && think_s >= 0.0) {
        return Err(TheoryError::Invalid(
            "a closed system needs at least one user and a finite think time",
        ));
    }
    let c = match model.servers {
        Servers::Finite(c) => c,
        Servers::Infinite => {
            return Err(TheoryError::Unsupported(
                "a closed system in front of infinitely many servers".into(),
            ));
        }
    };
    let product_form = model.service.is_exp() || model.discipline == Discipline::Ps;
    if !product_form || model.capacity.is_some() || model.service == ServiceKind::Zero {
        return Err(TheoryError::Unsupported(format!(
            "{} with {users} users: no product form (the simulator is the reference)",
            model.name()
        )));
    }
    if c == 1 {
        let mut last = None;
        mva_each(model.mu, c, think_s, users, |t| last = Some(t));
        if let Some(t) = last {
            return Ok(t);
        }
    }
    Ok(closed_birth_death(model.mu, c, think_s, users))
}

/// Exact mean value analysis of `users` users thinking for a mean `think_s` (a delay station)
/// in front of one queue of `servers` servers of rate `mu`: one [`ClosedTheory`] per population
/// N = 1..=`users`, in order.
///
/// For one server, plain MVA (Reiser & Lavenberg 1980): R(N) = D(1 + Q(N − 1)), D = 1/μ, by the
/// arrival theorem (an arriving user sees the queue of the system with one user fewer);
/// X(N) = N/(Z + R(N)), Q(N) = X(N)·R(N). For c servers the queue is load dependent (rate
/// min(j, c)μ with j present) and MVA needs the marginal probabilities p(j | N) of j present;
/// only j < c − 1 enter:
/// R(N) = D·(1 + Q(N − 1) + Σ_{j=0}^{c−2} (c − 1 − j)·p(j | N − 1))/c,
/// p(j | N) = X(N)·D/j·p(j − 1 | N − 1) for 1 ≤ j < c, so the work is O(N·c), not O(N²).
/// The textbook p(0 | N) = 1 − Σ_{j≥1} p(j | N) cancels catastrophically once the queue is
/// rarely empty (relative errors of 10⁻⁹ at c = 8 by N = 40); instead, with G(N) the
/// normalizing constant of the product form, X(N) = G(N − 1)/G(N) and the queue is empty when
/// all N users think, p(0 | N) = (Z^N/N!)/G(N), so p(0 | N) = p(0 | N − 1)·Z·X(N)/N: a product
/// of positive terms, exact to rounding (and 0 for Z = 0, when nobody ever thinks).
///
/// Expects μ positive and finite, `think_s` finite and ≥ 0 ([`closed`] checks them for a
/// model); no servers or no users give an empty vector. Every entry holds X ≤ the bound,
/// R ≥ the bound (up to rounding), and R(1) = D exactly.
pub fn mva(mu: f64, servers: u32, think_s: f64, users: u32) -> Vec<ClosedTheory> {
    let mut out = Vec::with_capacity(users as usize);
    mva_each(mu, servers, think_s, users, |t| out.push(t));
    out
}

/// [`mva`], handing each population's result to `f` instead of collecting them.
fn mva_each(mu: f64, servers: u32, think_s: f64, users: u32, mut f: impl FnMut(ClosedTheory)) {
    if servers == 0 {
        return;
    }
    let d = 1.0 / mu;
    let cf = f64::from(servers);
    // p[j] = p(j | n − 1) for j < c − 1 (only those enter R); with no users, nobody is present.
    let keep = (servers - 1) as usize;
    let mut p = vec![0.0f64; keep];
    let mut next = vec![0.0f64; keep];
    if let Some(p0) = p.first_mut() {
        *p0 = 1.0;
    }
    let mut q = 0.0f64;
    for n in 1..=users {
        // Σ_{j<c−1} (c − 1 − j)·p(j | n − 1); the integer sums stay exact, so R(1) = D·(c/c).
        let idle: f64 = p
            .iter()
            .enumerate()
            .map(|(j, pj)| (keep - j) as f64 * pj)
            .sum();
        let r = d * ((1.0 + q + idle) / cf);
        let x = f64::from(n) / (think_s + r);
        q = x * r;
        if keep > 0 {
            // p(j | n) = X·D/j·p(j − 1 | n − 1) for 1 ≤ j < c − 1, and p(0 | n) by its own
            // product: every term positive, so nothing cancels.
            let xd = x * d;
            for j in (1..keep).rev() {
                next[j] = xd / j as f64 * p[j - 1];
            }
            next[0] = p[0] * think_s * x / f64::from(n);
            std::mem::swap(&mut p, &mut next);
        }
        f(closed_entry(mu, servers, think_s, n, x, r, q));
    }
}

/// A [`ClosedTheory`] of N users from its throughput, response time and queue, with the
/// asymptotic bounds.
fn closed_entry(mu: f64, c: u32, think_s: f64, users: u32, x: f64, r: f64, q: f64) -> ClosedTheory {
    let d = 1.0 / mu;
    let cf = f64::from(c);
    let nf = f64::from(users);
    ClosedTheory {
        users,
        think_s,
        throughput: x,
        response_s: r,
        mean_in_system: q,
        utilization: x * d / cf,
        bound_throughput: (nf / (d + think_s)).min(cf / d),
        bound_response_s: d.max(nf * d / cf - think_s),
        n_star: cf * (d + think_s) / d,
    }
}

/// The finite-source queue M/M/c//N by its birth–death chain: in state n (requests at the queue)
/// users arrive at rate (N − n)/Z and leave at rate min(n, c)μ; πₙ ∝ Πₖ<ₙ λₖ/μₖ₊₁, normalized
/// in log space. X = Σ πₙ min(n, c)μ, Q = Σ nπₙ, R = Q/X (Little). With Z = 0 every user is
/// always at the queue (πₙ = 1 at n = N).
pub fn closed_birth_death(mu: f64, c: u32, think_s: f64, users: u32) -> ClosedTheory {
    let n_users = users as usize;
    let mut log_p = vec![0.0f64; n_users + 1];
    if think_s > 0.0 {
        for n in 1..=n_users {
            let up = ((users as usize - (n - 1)) as f64 / think_s).ln();
            let down = (f64::from(c.min(n as u32)) * mu).ln();
            log_p[n] = log_p[n - 1] + up - down;
        }
    } else {
        log_p
            .iter_mut()
            .take(n_users)
            .for_each(|x| *x = f64::NEG_INFINITY);
    }
    let max = log_p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_p.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = w.iter().sum();
    let (mut x, mut q) = (0.0, 0.0);
    for (n, wn) in w.iter().enumerate() {
        let p = wn / total;
        x += p * f64::from(c.min(n as u32)) * mu;
        q += p * n as f64;
    }
    closed_entry(mu, c, think_s, users, x, q / x, q)
}

/// Most servers a finite-server model is computed for (the work grows with c).
pub const MAX_SERVERS: u32 = 1_000_000;

/// Largest number of whole service times D an M/D/1 sojourn CDF is tabulated for (about 80 MB of
/// table); only loads within 10⁻⁵ of 1 need that many for their 99th percentile.
const MD1_MAX_STEPS: usize = 10_000_000;

/// The prediction for `model` with Poisson arrivals at `lambda` per second, or why there is none.
pub fn predict(model: &Model, lambda: f64) -> Result<Theory, TheoryError> {
    let mut a = analyze(model, lambda)?;
    let classes = std::mem::take(&mut a.classes);
    let p50_s = a.sojourn.quantile(0.5);
    let p90_s = a.sojourn.quantile(0.9);
    let p99_s = a.sojourn.quantile(0.99);
    Ok(Theory {
        model: model.name(),
        rho: a.rho,
        blocking: a.blocking,
        throughput: a.throughput,
        mean_in_system: a.mean_in_system,
        mean_wait_s: a.mean_wait_s,
        mean_s: a.mean_s,
        p50_s,
        p90_s,
        p99_s,
        classes,
    })
}

/// P(T ≤ t) for the sojourn of an accepted request of `model` at `lambda`, where the
/// distribution is known.
///
/// `None` when there is no prediction ([`predict`] fails), no known distribution (M/G/1), or
/// `t_s` is NaN. Negative times give 0.
pub fn sojourn_cdf(model: &Model, lambda: f64, t_s: f64) -> Option<f64> {
    analyze(model, lambda).ok()?.sojourn.cdf(t_s)
}

/// The q-quantile of the sojourn (0 < q < 1) of `model` at `lambda`, where the distribution is
/// known.
///
/// The smallest t with P(T ≤ t) ≥ q (to a relative 10⁻⁹ where found by bisection).
pub fn sojourn_quantile(model: &Model, lambda: f64, q: f64) -> Option<f64> {
    analyze(model, lambda).ok()?.sojourn.quantile(q)
}

/// A CDF of the sojourn of `model` at `lambda` that can be evaluated many times, with its set-up
/// (stationary distribution, M/D/1 table) done once: for goodness-of-fit tests over many points.
/// `None` where [`sojourn_cdf`] would be `None`.
///
/// The function returns NaN where [`sojourn_cdf`] would be `None` (NaN input, or an M/D/1 time
/// beyond ten million service times).
pub fn sojourn_cdf_fn(model: &Model, lambda: f64) -> Option<impl Fn(f64) -> f64 + use<>> {
    let mut s = analyze(model, lambda).ok()?.sojourn;
    s.cdf(0.0)?;
    // The M/D/1 table grows on demand, hence the cell; the closure is not re-entrant.
    let cell = std::cell::RefCell::new(s);
    Some(move |t: f64| cell.borrow_mut().cdf(t).unwrap_or(f64::NAN))
}

/// A measured response time to hold against theory, in microseconds (as `qload` and the lab
/// report it). Absent values are not compared.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MeasuredSummary {
    /// Mean.
    pub mean_us: Option<f64>,
    /// 95% confidence interval of the mean.
    pub ci95_us: Option<(f64, f64)>,
    /// Median.
    pub p50_us: Option<f64>,
    /// 99th percentile.
    pub p99_us: Option<f64>,
}

/// Theory at one arrival rate beside a measurement; see [`compare`]. Times in microseconds,
/// relative errors as fractions (0.01 = 1%).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The prediction (times in seconds).
    pub theory: Theory,
    /// The arrival rate λ of the prediction (1/s).
    pub lambda: f64,
    /// Predicted mean sojourn W of accepted requests.
    pub mean_us: f64,
    /// Predicted median, where the distribution is known.
    pub p50_us: Option<f64>,
    /// Predicted 90th percentile, where known.
    pub p90_us: Option<f64>,
    /// Predicted 99th percentile, where known.
    pub p99_us: Option<f64>,
    /// `(measured − W)/W` of the mean; `None` without a measured mean or when W is 0.
    pub rel_err_mean: Option<f64>,
    /// The same for the median (`None` also where the median is unknown).
    pub rel_err_p50: Option<f64>,
    /// The same for the 99th percentile.
    pub rel_err_p99: Option<f64>,
    /// Whether W lies in the measured mean's 95% interval; `None` without an interval.
    pub mean_in_ci: Option<bool>,
}

/// Holds `measured` against what theory predicts for `model` at arrival rate `lambda`: the one
/// place where a measurement meets the closed forms (`qload`'s `theory` and every point of a lab
/// sweep go through it).
pub fn compare(
    model: &Model,
    lambda: f64,
    measured: &MeasuredSummary,
) -> Result<Comparison, TheoryError> {
    let theory = predict(model, lambda)?;
    let us = |s: f64| s * 1e6;
    let mean_us = us(theory.mean_s);
    let p50_us = theory.p50_s.map(us);
    let p99_us = theory.p99_s.map(us);
    // A relative error needs a positive prediction (zero service predicts 0).
    let rel = |m: Option<f64>, t: Option<f64>| match (m, t) {
        (Some(m), Some(t)) if t > 0.0 => Some((m - t) / t),
        _ => None,
    };
    Ok(Comparison {
        lambda,
        mean_us,
        p50_us,
        p90_us: theory.p90_s.map(us),
        p99_us,
        rel_err_mean: rel(measured.mean_us, Some(mean_us)),
        rel_err_p50: rel(measured.p50_us, p50_us),
        rel_err_p99: rel(measured.p99_us, p99_us),
        mean_in_ci: measured
            .ci95_us
            .map(|(lo, hi)| lo <= mean_us && mean_us <= hi),
        theory,
    })
}

/// Validates `model` at `lambda` and computes everything but the percentiles.
fn analyze(model: &Model, lambda: f64) -> Result<Analysis, TheoryError> {
    let mu = model.mu;
    if !(lambda.is_finite() && lambda > 0.0) {
        return Err(TheoryError::Invalid(
            "arrival rate lambda must be positive and finite",
        ));
    }
    model.validate()?;
    let mut analysis = analyze_discipline(model, lambda, mu)?;
    if model.discipline.by_class() && analysis.classes.is_empty() {
        // One class, or nobody ever waits: every class sees the totals.
        analysis.classes = model
            .classes
            .probabilities()
            .iter()
            .map(|p| ClassTheory {
                lambda: p * lambda,
                mean_wait_s: analysis.mean_wait_s,
                mean_s: analysis.mean_s,
            })
            .collect();
    }
    Ok(analysis)
}

/// [`analyze`] after validation: the structure (zero service, ∞ servers, loss system, capacity,
/// stability), then the discipline.
fn analyze_discipline(model: &Model, lambda: f64, mu: f64) -> Result<Analysis, TheoryError> {
    if model.service == ServiceKind::Zero {
        return Ok(Analysis {
            rho: 0.0,
            blocking: 0.0,
            throughput: lambda,
            mean_in_system: 0.0,
            mean_wait_s: 0.0,
            mean_s: 0.0,
            sojourn: Sojourn::Zero,
            classes: Vec::new(),
        });
    }
    let a = lambda / mu;
    let c = match model.servers {
        Servers::Infinite => {
            // M/G/∞, or the Erlang loss system M/G/K/K with a capacity: nobody waits, so the
            // discipline does not matter.
            let blocking = model.capacity.map_or(0.0, |k| erlang_b(k, a));
            return Ok(loss_system(model.service, lambda, mu, a, blocking));
        }
        Servers::Finite(c) => c,
    };
    if c > MAX_SERVERS {
        return Err(TheoryError::Unsupported(format!(
            "{} (more than {MAX_SERVERS} servers; use inf)",
            model.name()
        )));
    }
    let rho = a / f64::from(c);
    // With one class, both priority disciplines are FCFS (nobody outranks anybody).
    let discipline = match model.discipline {
        d if d.by_class() && model.classes.len() == 1 => Discipline::Fcfs,
        d => d,
    };
    match (model.service, model.capacity) {
        (_, Some(k)) if k == c => {
            return Ok(loss_system(model.service, lambda, mu, rho, erlang_b(c, a)));
        }
        (ServiceKind::Exp, Some(k)) => {
            return match discipline {
                Discipline::Fcfs => Ok(mmck(c, k, lambda, mu)),
                // Exponential service and an order that ignores the classes: the number in
                // system is the same birth–death chain, so L, the blocking and W (Little) are
                // those of M/M/c/K; the distribution of the sojourn is not.
                Discipline::Lcfs | Discipline::Ps => Ok(Analysis {
                    sojourn: Sojourn::Unknown,
                    ..mmck(c, k, lambda, mu)
                }),
                Discipline::Priority | Discipline::PriorityPreemptive => {
                    Err(TheoryError::Unsupported(format!(
                        "{}: priority classes with a capacity (the simulator is the reference)",
                        model.name()
                    )))
                }
            };
        }
        (kind, Some(_)) => {
            return Err(TheoryError::Unsupported(format!(
                "{}: a capacity above the number of servers needs exponential service, not {kind}",
                model.name()
            )));
        }
        (_, None) if rho >= 1.0 => return Err(TheoryError::Unstable { rho }),
        (_, None) => {}
    }
    match discipline {
        Discipline::Fcfs => fcfs(model, c, lambda),
        // The order of service does not depend on the sizes, so the number in system (and
        // with it the mean, by Little) is FCFS's; the distribution is not.
        Discipline::Lcfs => Ok(Analysis {
            sojourn: Sojourn::Unknown,
            ..fcfs(model, c, lambda)?
        }),
        // Insensitive: the number in system is that of M/M/c whatever the service law.
        Discipline::Ps => Ok(Analysis {
            sojourn: Sojourn::Unknown,
            ..mmc(c, lambda, mu)
        }),
        Discipline::Priority => priority(model, c, lambda, false),
        Discipline::PriorityPreemptive => priority(model, c, lambda, true),
    }
}

/// FCFS without capacity, ρ < 1: M/M/c, M/D/1, M/G/1 (Pollaczek–Khinchine).
fn fcfs(model: &Model, c: u32, lambda: f64) -> Result<Analysis, TheoryError> {
    let mu = model.mu;
    match model.service {
        ServiceKind::Exp => Ok(mmc(c, lambda, mu)),
        ServiceKind::Const if c == 1 => Ok(md1(lambda, mu)),
        _ if c == 1 => mg1(model, lambda),
        kind => Err(TheoryError::Unsupported(format!(
            "{}: more than one server with {kind} service (the simulator is the reference)",
            model.name()
        ))),
    }
}

/// E\[S²\] of the model's service time, or why it is not known.
fn second_moment(model: &Model) -> Result<f64, TheoryError> {
    let es2 = model.sampler().second_moment_s2();
    if es2.is_finite() && es2 > 0.0 {
        Ok(es2)
    } else {
        Err(TheoryError::Unsupported(format!(
            "{}: the second moment of the {} service time is not known",
            model.name(),
            model.service
        )))
    }
}

/// M/G/1 with ρ < 1: Pollaczek–Khinchine Wq = λE\[S²\]/(2(1 − ρ)), no distribution.
fn mg1(model: &Model, lambda: f64) -> Result<Analysis, TheoryError> {
    let mu = model.mu;
    let rho = lambda / mu;
    let wq = lambda * second_moment(model)? / (2.0 * (1.0 - rho));
    let w = wq + 1.0 / mu;
    Ok(Analysis {
        rho,
        blocking: 0.0,
        throughput: lambda,
        mean_in_system: lambda * w,
        mean_wait_s: wq,
        mean_s: w,
        sojourn: Sojourn::Unknown,
        classes: Vec::new(),
    })
}

/// Two or more priority classes, the same service law for all, no capacity, ρ < 1: Cobham's
/// formula (non-preemptive; M/G/1, or M/M/c with Erlang C) or the preemptive-resume M/G/1.
/// Totals are the λₖ-weighted means of the classes.
fn priority(model: &Model, c: u32, lambda: f64, preemptive: bool) -> Result<Analysis, TheoryError> {
    let mu = model.mu;
    let d = 1.0 / mu;
    let cf = f64::from(c);
    let unsupported = |why: &str| {
        Err(TheoryError::Unsupported(format!(
            "{}: {why} (the simulator is the reference)",
            model.name()
        )))
    };
    // The numerator of the waits: W₀ (non-preemptive), or E[S²]/2 to be multiplied by the
    // arrival rate of the classes at or above k (preemptive).
    let (w0, half_es2) = match (preemptive, c, model.service) {
        (false, 1, _) => (lambda * second_moment(model)? / 2.0, 0.0),
        (false, _, ServiceKind::Exp) => (erlang_c(c, lambda / mu) / (cf * mu), 0.0),
        (false, _, kind) => return unsupported(&format!("priority classes with {kind} service")),
        (true, 1, _) => (0.0, second_moment(model)? / 2.0),
        (true, _, _) => return unsupported("preemptive priority with more than one server"),
    };
    let mut classes = Vec::with_capacity(model.classes.len());
    let (mut sigma_before, mut lambda_upto) = (0.0f64, 0.0f64);
    let (mut mean_wait_s, mut mean_s) = (0.0, 0.0);
    for &p in model.classes.probabilities() {
        let lambda_k = p * lambda;
        lambda_upto += lambda_k;
        // σₖ per server; the last one is ρ < 1, so every denominator is positive.
        let sigma = (lambda_upto / (cf * mu)).min(lambda / (cf * mu));
        let denominator = (1.0 - sigma_before) * (1.0 - sigma);
        let (wait, t) = if preemptive {
            let t = d / (1.0 - sigma_before) + lambda_upto * half_es2 / denominator;
            (t - d, t)
        } else {
            let wq = w0 / denominator;
            (wq, wq + d)
        };
        classes.push(ClassTheory {
            lambda: lambda_k,
            mean_wait_s: wait,
            mean_s: t,
        });
        mean_wait_s += p * wait;
        mean_s += p * t;
        sigma_before = sigma;
    }
    Ok(Analysis {
        rho: lambda / (cf * mu),
        blocking: 0.0,
        throughput: lambda,
        mean_in_system: lambda * mean_s,
        mean_wait_s,
        mean_s,
        sojourn: Sojourn::Unknown,
        classes,
    })
}

/// Erlang B: blocking probability of M/M/c/c with offered load `a = λ/μ`.
///
/// By the recursion B₀ = 1, Bₖ = a·Bₖ₋₁/(k + a·Bₖ₋₁), stable for any c and a (0 for a ≤ 0).
pub fn erlang_b(c: u32, a: f64) -> f64 {
    if a.is_nan() || a <= 0.0 {
        return if c == 0 { 1.0 } else { 0.0 };
    }
    let mut b = 1.0;
    for k in 1..=c {
        let ab = a * b;
        b = ab / (f64::from(k) + ab);
        if b == 0.0 {
            // Underflowed (k far above a): it stays 0, so a capacity of 4·10⁹ costs nothing.
            break;
        }
    }
    b
}

/// Erlang C: probability that an arrival waits in M/M/c with offered load `a = λ/μ < c`.
///
/// C = B/(1 − ρ(1 − B)) with B = [`erlang_b`]`(c, a)` and ρ = a/c; 1 when a ≥ c (everybody waits).
pub fn erlang_c(c: u32, a: f64) -> f64 {
    if c == 0 || a >= f64::from(c) {
        return 1.0;
    }
    if a.is_nan() || a <= 0.0 {
        return 0.0;
    }
    let b = erlang_b(c, a);
    let rho = a / f64::from(c);
    b / (1.0 - rho * (1.0 - b))
}

/// Everything [`predict`] reports except the percentiles, plus the sojourn law.
struct Analysis {
    rho: f64,
    blocking: f64,
    throughput: f64,
    mean_in_system: f64,
    mean_wait_s: f64,
    mean_s: f64,
    sojourn: Sojourn,
    /// Per class under a priority discipline (filled by [`analyze`] where every class sees the
    /// totals); empty otherwise.
    classes: Vec<ClassTheory>,
}

/// Nobody waits: M/G/∞, or the loss system M/G/c/c (load `rho` and blocking given); T = S.
fn loss_system(service: ServiceKind, lambda: f64, mu: f64, rho: f64, blocking: f64) -> Analysis {
    let throughput = lambda * (1.0 - blocking);
    let sojourn = match service {
        ServiceKind::Exp => Sojourn::Exp { rate: mu },
        ServiceKind::Const => Sojourn::Const { d: 1.0 / mu },
        ServiceKind::Uniform => Sojourn::Uniform { w: 2.0 / mu },
        ServiceKind::Zero => Sojourn::Zero,
        _ => Sojourn::Unknown,
    };
    Analysis {
        rho,
        blocking,
        throughput,
        mean_in_system: throughput / mu,
        mean_wait_s: 0.0,
        mean_s: 1.0 / mu,
        sojourn,
        classes: Vec::new(),
    }
}

/// M/M/c with ρ < 1.
fn mmc(c: u32, lambda: f64, mu: f64) -> Analysis {
    let a = lambda / mu;
    let wait_prob = erlang_c(c, a);
    let gamma = f64::from(c) * mu - lambda;
    let wq = wait_prob / gamma;
    let w = wq + 1.0 / mu;
    let sojourn = if c == 1 {
        Sojourn::Exp { rate: gamma }
    } else {
        Sojourn::Mmc {
            mu,
            wait_prob,
            gamma,
        }
    };
    Analysis {
        rho: a / f64::from(c),
        blocking: 0.0,
        throughput: lambda,
        mean_in_system: lambda * w,
        mean_wait_s: wq,
        mean_s: w,
        sojourn,
        classes: Vec::new(),
    }
}

/// M/M/c/K with K > c, any load.
fn mmck(c: u32, k: u32, lambda: f64, mu: f64) -> Analysis {
    let a = lambda / mu;
    let rho = a / f64::from(c);
    let ln_a = a.ln();
    let ln_rho = rho.ln();
    // Unnormalized weights in logs: ln wₙ = n·ln a − ln n! for n ≤ c; wₙ = w_c·ρ^{n−c} above.
    let ln_w = |n: u32| f64::from(n) * ln_a - ln_factorial(u64::from(n));
    let ln_wc = ln_w(c);
    let geo = k - c + 1; // states c..=K
    let mut below = LogSum::new(); // n < c
    let mut below_mean = 0.0; // Σ n·wₙ for n < c, scaled by e^{−max}
    let below_max = (0..c).map(ln_w).fold(f64::NEG_INFINITY, f64::max);
    for n in 0..c {
        let lw = ln_w(n);
        below.add(lw);
        below_mean += f64::from(n) * (lw - below_max).exp();
    }
    let ln_upper = ln_wc + ln_geometric_sum(u64::from(geo), ln_rho); // n = c..=K
    let ln_z = below.with(ln_upper);
    // Accepted arrivals find n < K: all weight but w_K.
    let ln_z_acc = below.with(ln_wc + ln_geometric_sum(u64::from(geo - 1), ln_rho));
    let blocking = (ln_wc + f64::from(k - c) * ln_rho - ln_z).exp();
    // L = Σ_{n<c} n·πₙ + P(N ≥ c)·(c + E[n − c | N ≥ c]), the latter a truncated geometric mean.
    let p_upper = (ln_upper - ln_z).exp();
    let l_below = below_mean * (below_max - ln_z).exp();
    let l = l_below + p_upper * (f64::from(c) + truncated_geometric_mean(u64::from(geo), ln_rho));
    let throughput = lambda * (1.0 - blocking);
    let w = l / throughput;
    Analysis {
        rho,
        blocking,
        throughput,
        mean_in_system: l,
        mean_wait_s: (w - 1.0 / mu).max(0.0),
        mean_s: w,
        sojourn: Sojourn::Mmck(Mmck::new(c, k, mu, ln_rho, ln_wc, ln_z_acc)),
        classes: Vec::new(),
    }
}

/// M/D/1 with ρ < 1.
fn md1(lambda: f64, mu: f64) -> Analysis {
    let d = 1.0 / mu;
    let rho = lambda * d;
    let wq = rho * d / (2.0 * (1.0 - rho));
    let w = d + wq;
    Analysis {
        rho,
        blocking: 0.0,
        throughput: lambda,
        mean_in_system: lambda * w,
        mean_wait_s: wq,
        mean_s: w,
        sojourn: Sojourn::Md1(Md1::new(rho, d)),
        classes: Vec::new(),
    }
}

/// The law of the sojourn time of an accepted request.
enum Sojourn {
    /// T = 0.
    Zero,
    /// T ~ Exp(rate).
    Exp { rate: f64 },
    /// T = d.
    Const { d: f64 },
    /// T ~ U[0, w].
    Uniform { w: f64 },
    /// M/M/c, c ≥ 2: P(wait) = `wait_prob`, γ = cμ − λ.
    Mmc { mu: f64, wait_prob: f64, gamma: f64 },
    /// M/M/c/K, K > c.
    Mmck(Mmck),
    /// M/D/1.
    Md1(Md1),
    /// No known distribution (M/G/1).
    Unknown,
}

impl Sojourn {
    /// P(T ≤ t).
    fn cdf(&mut self, t: f64) -> Option<f64> {
        if t.is_nan() || matches!(self, Sojourn::Unknown) {
            return None;
        }
        if t < 0.0 {
            return Some(0.0);
        }
        Some(match self {
            Sojourn::Zero => 1.0,
            Sojourn::Exp { rate } => -(-*rate * t).exp_m1(),
            Sojourn::Const { d } => f64::from(u8::from(t >= *d)),
            Sojourn::Uniform { w } => (t / *w).min(1.0),
            Sojourn::Mmc {
                mu,
                wait_prob,
                gamma,
            } => 1.0 - mmc_survival(*mu, *wait_prob, *gamma, t),
            Sojourn::Mmck(m) => 1.0 - m.survival(t),
            Sojourn::Md1(m) => m.cdf(t)?,
            Sojourn::Unknown => return None,
        })
    }

    /// The smallest t with P(T ≤ t) ≥ q, for 0 < q < 1.
    fn quantile(&mut self, q: f64) -> Option<f64> {
        if !(q > 0.0 && q < 1.0) {
            return None;
        }
        let scale = match self {
            Sojourn::Unknown => return None,
            Sojourn::Zero => return Some(0.0),
            Sojourn::Exp { rate } => return Some(-(-q).ln_1p() / *rate),
            Sojourn::Const { d } => return Some(*d),
            Sojourn::Uniform { w } => return Some(q * *w),
            Sojourn::Mmc { mu, .. } => 1.0 / *mu,
            Sojourn::Mmck(m) => 1.0 / m.mu,
            Sojourn::Md1(m) => m.d,
        };
        // Bracket: cdf(lo) < q ≤ cdf(hi), doubling hi from the service-time scale.
        let (mut lo, mut hi) = (0.0, scale);
        let mut doublings = 0;
        while self.cdf(hi)? < q {
            lo = hi;
            hi *= 2.0;
            doublings += 1;
            if doublings > 200 {
                return None;
            }
        }
        for _ in 0..200 {
            if hi - lo <= 1e-9 * hi {
                break;
            }
            let mid = 0.5 * (lo + hi);
            if self.cdf(mid)? >= q {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi)
    }
}

/// P(T > t) of M/M/c (c ≥ 2): e^{−μt} + Cμ/δ·(e^{−μt} − e^{−(μ+δ)t}), δ = cμ − λ − μ = γ − μ.
fn mmc_survival(mu: f64, wait_prob: f64, gamma: f64, t: f64) -> f64 {
    let delta = gamma - mu;
    let e_mu = (-mu * t).exp();
    let s = if delta == 0.0 {
        e_mu * (1.0 + wait_prob * mu * t)
    } else if delta > 0.0 {
        // e^{−μt}(1 − e^{−δt})/δ with expm1: exact for small δ, no overflow.
        e_mu * (1.0 + wait_prob * mu * (-(-delta * t).exp_m1()) / delta)
    } else {
        // γ < μ: factor out e^{−γt} instead, so nothing grows like e^{|δ|t}.
        e_mu + wait_prob * mu * (-gamma * t).exp() * (-(delta * t).exp_m1()) / (-delta)
    };
    s.clamp(0.0, 1.0)
}

/// The sojourn law of M/M/c/K for accepted arrivals (see the module docs).
struct Mmck {
    c: u32,
    k: u32,
    mu: f64,
    ln_rho: f64,
    /// ln w_c, the unnormalized weight of c in system.
    ln_wc: f64,
    /// ln Σ_{n<K} wₙ: normalizes the distribution seen by accepted arrivals.
    ln_z_acc: f64,
    /// `tail[j]` = P(an accepted arrival finds at least c + j present), grown on demand.
    tail: Vec<f64>,
}

/// Most entries kept in an M/M/c/K tail table (32 MiB); later ones are computed when needed.
const MMCK_TABLE_MAX: usize = 1 << 22;

impl Mmck {
    fn new(c: u32, k: u32, mu: f64, ln_rho: f64, ln_wc: f64, ln_z_acc: f64) -> Self {
        Mmck {
            c,
            k,
            mu,
            ln_rho,
            ln_wc,
            ln_z_acc,
            tail: Vec::new(),
        }
    }

    /// P(an accepted arrival finds at least c + j present), 0 ≤ j < K − c:
    /// w_c·ρʲ·G(K − c − j)/Z_acc, G the geometric sum.
    fn tail_direct(&self, j: u64) -> f64 {
        let n = u64::from(self.k - self.c) - j;
        (self.ln_wc + j as f64 * self.ln_rho + ln_geometric_sum(n, self.ln_rho) - self.ln_z_acc)
            .exp()
    }

    /// [`Mmck::tail_direct`] through the table.
    fn tail(&mut self, j: u64) -> f64 {
        let j_us = j as usize;
        if j_us >= MMCK_TABLE_MAX {
            return self.tail_direct(j);
        }
        while self.tail.len() <= j_us {
            let next = self.tail_direct(self.tail.len() as u64);
            self.tail.push(next);
        }
        self.tail[j_us]
    }

    /// P(T > t).
    fn survival(&mut self, t: f64) -> f64 {
        let (c, k, mu) = (self.c, self.k, self.mu);
        let x = f64::from(c) * mu * t;
        // Pois(i; x) is negligible (the two tails together below 10⁻²⁰) outside [i_lo, i_hi].
        let i_hi = poisson_upper_index(x);
        let i_lo = poisson_lower_index(x);
        let waits = u64::from(k - c); // an arrival can find c + 0 … c + waits − 1 present
        let s = if c == 1 {
            // Σ_{j=0}^{K−1} Pois(j; μt)·P(n ≥ j), with P(n ≥ 0) = 1 and P(n ≥ j) = tail[j − 1].
            let mut s = 0.0;
            for j in i_lo..=i_hi.min(waits) {
                let tail = if j == 0 { 1.0 } else { self.tail(j - 1) };
                s += poisson_pmf(j, x) * tail;
            }
            s
        } else {
            let beta = f64::from(c - 1) / f64::from(c);
            let mut h = 0.0;
            let mut sum = 0.0;
            for i in 1..=i_hi {
                let add = if i <= waits { self.tail(i - 1) } else { 0.0 };
                h = beta * (h + add);
                if i > waits && h == 0.0 {
                    break;
                }
                if i >= i_lo {
                    sum += poisson_pmf(i, x) * h;
                }
            }
            (-mu * t).exp() + sum / f64::from(c - 1)
        };
        s.clamp(0.0, 1.0)
    }
}

/// The M/D/1 sojourn CDF with its table of Qₘ = P(N ≤ m), grown on demand.
struct Md1 {
    rho: f64,
    d: f64,
    /// Āₘ = P(Pois(ρ) > m) for the m where it is above the smallest normal double.
    abar: Vec<f64>,
    /// Stationary πₙ.
    pi: Vec<f64>,
    /// Qₘ = Σ_{n ≤ m} πₙ.
    q: Vec<f64>,
}

impl Md1 {
    fn new(rho: f64, d: f64) -> Self {
        // Pois(i; ρ) for ρ < 1 falls below 1e-300 before i = 200.
        let mut pmf = Vec::new();
        let mut p = (-rho).exp();
        let mut i = 0u32;
        while p > 1e-300 && i < 400 {
            pmf.push(p);
            i += 1;
            p *= rho / f64::from(i);
        }
        // Suffix sums, accumulated from the small end: Ā_m = Σ_{i>m} pmf_i.
        let mut abar = vec![0.0; pmf.len()];
        let mut acc = 0.0;
        for m in (0..pmf.len()).rev() {
            abar[m] = acc;
            acc += pmf[m];
        }
        Md1 {
            rho,
            d,
            abar,
            pi: vec![1.0 - rho],
            q: vec![1.0 - rho],
        }
    }

    /// Extends the table to hold Q_m.
    fn ensure(&mut self, m: usize) {
        let e_rho = self.rho.exp();
        let len = self.abar.len();
        while self.q.len() <= m {
            let n = self.pi.len() - 1;
            // π_{n+1} = e^ρ(π₀Āₙ + Σ_{j=1}^{n} πⱼĀ_{n+1−j}); Ā is 0 beyond its table.
            let abar = |i: usize| if i < len { self.abar[i] } else { 0.0 };
            let mut s = self.pi[0] * abar(n);
            let j_min = (n + 1).saturating_sub(len - 1).max(1);
            for j in j_min..=n {
                s += self.pi[j] * abar(n + 1 - j);
            }
            let next = e_rho * s;
            self.pi.push(next);
            let last = *self.q.last().expect("the table starts with Q_0");
            self.q.push((last + next).min(1.0));
        }
    }

    /// P(T ≤ t) = P(Wq ≤ t − D), or `None` past the table's limit.
    fn cdf(&mut self, t: f64) -> Option<f64> {
        if t < self.d {
            return Some(0.0);
        }
        let s = (t - self.d) / self.d;
        if s >= MD1_MAX_STEPS as f64 {
            return None;
        }
        let k = s.floor();
        let u = (s - k).clamp(0.0, 1.0);
        let k = k as usize;
        self.ensure(k + 1);
        // Σ_{j=0}^{k} Q_{k+1−j}·Pois(j; ρ(1 − u)), the Poisson weights computed by recurrence.
        let x = self.rho * (1.0 - u);
        let mut pmf = (-x).exp();
        let mut sum = 0.0;
        for j in 0..=k {
            sum += self.q[k + 1 - j] * pmf;
            pmf *= x / (j + 1) as f64;
            if pmf < 1e-300 {
                break;
            }
        }
        Some(sum.min(1.0))
    }
}

/// Accumulates ln Σ e^{xᵢ} without overflow.
#[derive(Clone, Copy)]
struct LogSum {
    max: f64,
    scaled: f64,
}

impl LogSum {
    fn new() -> Self {
        LogSum {
            max: f64::NEG_INFINITY,
            scaled: 0.0,
        }
    }

    fn add(&mut self, x: f64) {
        if x == f64::NEG_INFINITY {
            return;
        }
        if x > self.max {
            self.scaled = self.scaled * (self.max - x).exp() + 1.0;
            self.max = x;
        } else {
            self.scaled += (x - self.max).exp();
        }
    }

    /// ln of the sum with one more term, leaving `self` as it is.
    fn with(mut self, x: f64) -> f64 {
        self.add(x);
        self.max + self.scaled.ln()
    }
}

/// ln n!: exact products below 21, Stirling's series (error < 2·10⁻¹⁵) above.
fn ln_factorial(n: u64) -> f64 {
    if n <= 20 {
        let mut p: u64 = 1;
        for i in 2..=n {
            p *= i;
        }
        return (p as f64).ln();
    }
    let x = n as f64;
    let x2 = x * x;
    x * x.ln() - x
        + 0.5 * (2.0 * std::f64::consts::PI * x).ln()
        + (1.0 / 12.0 - (1.0 / 360.0 - (1.0 / 1260.0 - 1.0 / (1680.0 * x2)) / x2) / x2) / x
}

/// Pois(i; x) = e^{−x}xⁱ/i!, in log space (no overflow or underflow on the way).
fn poisson_pmf(i: u64, x: f64) -> f64 {
    if x == 0.0 {
        return if i == 0 { 1.0 } else { 0.0 };
    }
    (i as f64 * x.ln() - x - ln_factorial(i)).exp()
}

/// An index past which the Poisson(x) probabilities add up to less than 10⁻²⁰:
/// x + 10√x + 40 (the Chernoff bound on the tail at that distance is below e^{−45}).
fn poisson_upper_index(x: f64) -> u64 {
    (x + 10.0 * x.sqrt() + 40.0).ceil() as u64
}

/// An index below which the Poisson(x) probabilities add up to less than 10⁻²⁰:
/// x − 10√x − 40, at least 0 (the lower tail is lighter than the upper one).
fn poisson_lower_index(x: f64) -> u64 {
    (x - 10.0 * x.sqrt() - 40.0).floor().max(0.0) as u64
}

/// ln Σ_{j=0}^{n−1} e^{j·lr} (a geometric sum of n terms with ratio e^{lr}); −∞ for n = 0.
fn ln_geometric_sum(n: u64, lr: f64) -> f64 {
    if n == 0 {
        return f64::NEG_INFINITY;
    }
    let nf = n as f64;
    if lr == 0.0 {
        nf.ln()
    } else if lr < 0.0 {
        // (1 − rⁿ)/(1 − r), both factors by expm1: exact near r = 1.
        (-(nf * lr).exp_m1()).ln() - (-lr.exp_m1()).ln()
    } else {
        // rⁿ(1 − r⁻ⁿ)/(r − 1): no overflow for large n.
        nf * lr + (-(-nf * lr).exp_m1()).ln() - lr.exp_m1().ln()
    }
}

/// The mean of j ∈ {0, …, n−1} with weights e^{j·lr} (n ≥ 1).
fn truncated_geometric_mean(n: u64, lr: f64) -> f64 {
    let nf = n as f64;
    if lr > 0.0 {
        // Mirror j → n − 1 − j turns ratio r into 1/r.
        return (nf - 1.0) - truncated_geometric_mean(n, -lr);
    }
    let x = -lr; // ≥ 0
    if nf * x < 1e-2 {
        // Series of 1/(eˣ − 1) − n/(eⁿˣ − 1) in x; the next term is below 10⁻¹⁴ relative.
        let n2 = nf * nf;
        (nf - 1.0) / 2.0 - x * (n2 - 1.0) / 12.0 + x * x * x * (n2 * n2 - 1.0) / 720.0
    } else {
        1.0 / x.exp_m1() - nf / (nf * x).exp_m1()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_factorial_matches_direct_sum() {
        let mut direct = 0.0f64;
        for n in 1..=2000u64 {
            direct += (n as f64).ln();
            let got = ln_factorial(n);
            assert!(
                (got - direct).abs() <= 1e-13 * direct.max(1.0),
                "{n}: {got} vs {direct}"
            );
        }
        assert_eq!(ln_factorial(0), 0.0);
    }

    #[test]
    fn geometric_helpers_match_direct_sums() {
        for &r in &[
            0.3f64,
            0.9,
            0.999,
            0.999_999_9,
            1.0,
            1.000_000_1,
            1.001,
            1.1,
            2.0,
        ] {
            for &n in &[1u64, 2, 3, 10, 100, 1000] {
                let (mut s, mut sj) = (0.0f64, 0.0f64);
                for j in 0..n {
                    let w = r.powi(j as i32);
                    s += w;
                    sj += j as f64 * w;
                }
                let lr = r.ln();
                let got = ln_geometric_sum(n, lr).exp();
                assert!((got - s).abs() <= 1e-11 * s, "r {r} n {n}: {got} vs {s}");
                let mean = truncated_geometric_mean(n, lr);
                assert!(
                    (mean - sj / s).abs() <= 1e-9 * (sj / s).max(1.0),
                    "r {r} n {n}: mean {mean} vs {}",
                    sj / s
                );
            }
        }
        assert_eq!(ln_geometric_sum(0, 0.5), f64::NEG_INFINITY);
    }

    #[test]
    fn poisson_pmf_sums_to_one() {
        for &x in &[0.0, 0.5, 3.0, 100.0, 10_000.0] {
            let s: f64 = (0..=poisson_upper_index(x))
                .map(|i| poisson_pmf(i, x))
                .sum();
            assert!((s - 1.0).abs() < 1e-10, "x {x}: {s}");
        }
    }

    #[test]
    fn log_sum_matches_direct() {
        let mut ls = LogSum::new();
        for x in [-1000.0, 3.0, 1.0, -2.0, 700.0] {
            ls.add(x);
        }
        let direct = 700.0 + ((3.0f64 - 700.0).exp() + 1.0).ln();
        assert!((ls.with(f64::NEG_INFINITY) - direct).abs() < 1e-12);
    }
}
