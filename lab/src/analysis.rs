//! Measured against predicted, for one point of a sweep.
//!
//! For a point at arrival rate λ the prediction is `queuelab_common::theory::compare(model, λ, …)`:
//! mean sojourn W, its percentiles where the distribution is known, and the blocking probability
//! for a capacity K, held against the measured mean and its interval. The measurement is qload's response time, taken
//! from each request's *intended* send time, so it is the server's sojourn plus the fixed cost of
//! the path (client and server code, two trips through the loopback TCP stack, send lag).
//!
//! The overhead correction: the same rate is sent to a zero-service endpoint (qserve's `/healthz`
//! or a `--service zero` twin), whose response time is that fixed cost alone. With `o` its mean:
//!
//! - net mean = measured mean − o; its 95% half-width is `√(h_m² + h_o²)` (the two batch-means
//!   intervals are of independent runs, so their variances add);
//! - relative errors: raw `(mean − W)/W` and net `(mean − o − W)/W`;
//! - distributions: the measured response time is compared with theory both as it is (`ks_raw`)
//!   and shifted by `−o` (`ks_net`, i.e. against the CDF `F(t − o)`). Shifting by the mean treats
//!   the overhead as a constant; its spread (a few µs) is far below the queue's (a millisecond at
//!   μ = 1000), which is why the mean shift is enough.
//!
//! The net from `Server-Timing`: a server that says on each answer how long the request waited,
//! was served and how late its departure fired (qserve's `Server-Timing: wait;dur=…,
//! service;dur=…, late;dur=…`) lets qload split each response time into the server's own time
//! (the sum of those durations, `server_us`) and the path (the rest, `path_us`). Then:
//!
//! - net mean = the mean server time of the answers that carried the header, which is their mean
//!   latency minus their mean path, request by request in the same run: no second run, no
//!   assumption that the path costs the same in the twin and at another moment;
//! - its 95% interval by batch means over the same batches as the latency's, of the per-interval
//!   server means (`Interval.server_mean_us`); without that series, the latency's interval
//!   centred on the net mean (the path's spread within a batch is microseconds against the
//!   queue's milliseconds, so the two intervals have the same width to a fraction of a percent);
//! - `ks_net`: the server times' histogram against the sojourn CDF itself, unshifted. Only
//!   accepted requests carry the header (a 503 is not queued), so no blocking mixture enters.
//!
//! The zero-service twin's net stays for servers without the header, and as a cross-check where
//! both exist (`net_twin_…`). `net_source` says which one `net_mean_us` is.
//!
//! Points whose self-checks failed in every attempt (`crate::checks`) are analysed like any
//! other, marked (`verdict`), and left out of [`SweepSummary`]'s coverage, errors and
//! distances, where they are counted as failed.
//!
//! The Kolmogorov–Smirnov distance is `sup |F̂(t) − F(t)|` at the histogram's bucket edges
//! (three significant digits, so bucketing moves it by at most ~0.1% of the CDF's local slope
//! times t). Successive sojourn times in a queue are correlated, so the usual KS critical values
//! for independent samples do not apply as they are. The lab reports beside the distance its
//! sampling-noise level `ks_noise` = 1.358/√n_eff, the 95% critical value of the KS distance for
//! n_eff independent samples, where n_eff = s²/se² is the number of independent samples that
//! would give the mean the standard error se that the batch means found (s: the standard
//! deviation of the response times; se = batch-means half-width / t₀.₉₇₅(b − 1), with b the
//! batches the point actually had, fewer than planned for a short point); n_eff is at most the
//! number of responses. It borrows the mean's correlation for the whole CDF, so it is
//! a guide to whether a distance is noise, not a test: at ρ = 0.1 and 4,500 responses it is about
//! 0.02, at ρ = 0.95 several times that.
use hdrhistogram::Histogram;
use queuelab_common::model::{Model, Servers};
use queuelab_common::sim::{self, SimOptions, SimResult};
use queuelab_common::stats;
use queuelab_common::theory::{self, Comparison, MeasuredSummary};
use serde::{Deserialize, Serialize};

use queuelab_client::result;

use crate::record::{
    Check, ClassPoint, Little, PointRecord, RefEstimate, Reference, ReferenceKind, RejectedAttempt,
    Verdict,
};

/// What theory predicts at one point, in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TheoryValues {
    /// Kendall notation.
    pub model: String,
    /// Mean sojourn W of accepted requests.
    pub mean_us: f64,
    /// Median, where the distribution is known.
    pub p50_us: Option<f64>,
    /// 90th percentile, where known.
    pub p90_us: Option<f64>,
    /// 99th percentile, where known.
    pub p99_us: Option<f64>,
    /// Blocking probability (0 without capacity).
    pub blocking: f64,
}

/// One point, measured against predicted. Times in µs, errors as fractions (0.01 = 1%).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PointAnalysis {
    /// Offered load per server.
    pub rho: f64,
    /// Arrival rate λ (1/s).
    pub lambda: f64,
    /// Achieved send rate (1/s).
    pub achieved_rate: f64,
    /// Requests sent.
    pub sent: u64,
    /// Responses received.
    pub completed: u64,
    /// Requests without a response.
    pub errors: u64,
    /// 503 responses.
    pub blocked: u64,
    /// Measured mean response time of accepted requests (see [`analyze`] for blocking; `None`
    /// without accepted responses).
    pub mean_us: Option<f64>,
    /// Measured mean over all responses (accepted and blocked), as qlab reports it.
    pub mean_all_us: Option<f64>,
    /// Its 95% interval (batch means).
    pub ci95_us: Option<(f64, f64)>,
    /// Measured median.
    pub p50_us: Option<f64>,
    /// Measured 90th percentile.
    pub p90_us: Option<f64>,
    /// Measured 99th percentile.
    pub p99_us: Option<f64>,
    /// Measured 99.9th percentile.
    pub p999_us: Option<f64>,
    /// The prediction, if the model has one.
    pub theory: Option<TheoryValues>,
    /// Why there is no prediction.
    pub theory_note: Option<String>,
    /// Mean overhead of the path at this rate.
    pub overhead_mean_us: Option<f64>,
    /// Half-width of the overhead mean's 95% interval.
    pub overhead_half_us: Option<f64>,
    /// Measured mean net of the overhead.
    pub net_mean_us: Option<f64>,
    /// Its 95% interval.
    pub net_ci95_us: Option<(f64, f64)>,
    /// `(mean − W)/W`.
    pub err_raw: Option<f64>,
    /// `(mean − o − W)/W`.
    pub err_net: Option<f64>,
    /// Whether the raw interval contains W.
    pub covers_raw: Option<bool>,
    /// Whether the net interval contains W.
    pub covers_net: Option<bool>,
    /// KS distance, measured against F.
    pub ks_raw: Option<f64>,
    /// KS distance, measured against F shifted by the overhead mean.
    pub ks_net: Option<f64>,
    /// The KS distance that sampling noise alone reaches at 95% for this point's effective
    /// number of independent samples (see the module docs); absent from older results.
    #[serde(default)]
    pub ks_noise: Option<f64>,
    /// Fraction of responses that were 503.
    pub blocking_measured: Option<f64>,
    /// Send lag median (µs).
    pub send_lag_p50_us: f64,
    /// Send lag 99th percentile (µs).
    pub send_lag_p99_us: f64,
    /// Send lag maximum (µs).
    pub send_lag_max_us: f64,
    /// Coefficient of variation of the send gaps.
    pub gap_cv: Option<f64>,
    /// KS p-value of the send gaps against the exponential.
    pub arrivals_ks_p: Option<f64>,
    /// Problems met while analysing (undecodable histogram, …).
    pub notes: Vec<String>,
    /// Where the net values come from (`None`: no net values).
    #[serde(default)]
    pub net_source: Option<NetSource>,
    /// Mean path of the run against the queue (latency minus the `Server-Timing` durations), µs.
    #[serde(default)]
    pub path_mean_us: Option<f64>,
    /// The zero-service twin's net mean, when the net comes from `Server-Timing` (a cross-check;
    /// otherwise the twin's net is `net_mean_us` itself).
    #[serde(default)]
    pub net_twin_mean_us: Option<f64>,
    /// Its 95% interval.
    #[serde(default)]
    pub net_twin_ci95_us: Option<(f64, f64)>,
    /// Its relative error against W.
    #[serde(default)]
    pub err_net_twin: Option<f64>,
    /// Whether its interval contains W.
    #[serde(default)]
    pub covers_net_twin: Option<bool>,
    /// Its KS distance (the response times shifted by the twin's mean).
    #[serde(default)]
    pub ks_net_twin: Option<f64>,
    /// How many times the point was measured (0: recorded before the checks).
    #[serde(default)]
    pub attempts: u32,
    /// The verdict of its checks (`None`: recorded before the checks).
    #[serde(default)]
    pub verdict: Option<Verdict>,
    /// The checks the kept attempt failed (empty when it passed).
    #[serde(default)]
    pub failed_checks: Vec<Check>,
    /// The attempts measured again, with the checks they failed.
    #[serde(default)]
    pub rejected: Vec<RejectedAttempt>,
    /// What the point is held against: theory's closed form, or the simulation (its histogram
    /// left out). `None`: neither exists (an unstable queue, a model nothing describes), or the
    /// point was recorded before references were (it is held against the closed form).
    #[serde(default)]
    pub reference: Option<Reference>,
    /// Little's law over the measured window, from the server's `/metrics` (`None`: not
    /// scraped, or no ∫N dt series, or no net mean).
    #[serde(default)]
    pub little: Option<Little>,
    /// Per priority class: the server's mean sojourn against the reference (empty with one
    /// class, or without a scrape).
    #[serde(default)]
    pub classes: Vec<ClassPoint>,
}

/// Where a point's net values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetSource {
    /// The server's own `Server-Timing` durations, per request of the same run.
    ServerTiming,
    /// The zero-service twin's mean at the same rate, subtracted from the mean.
    Twin,
}

impl PointAnalysis {
    /// Whether the point's checks failed in every attempt (kept out of the summary's coverage,
    /// errors and distances).
    pub fn failed(&self) -> bool {
        self.verdict == Some(Verdict::Failed)
    }

    /// Whether the point's net is the server's own time from Server-Timing.
    pub fn timed(&self) -> bool {
        self.net_source == Some(NetSource::ServerTiming)
    }

    /// The reference's mean W (µs): the simulation's, or theory's.
    pub fn ref_mean_us(&self) -> Option<f64> {
        self.reference
            .as_ref()
            .and_then(|r| r.mean_us)
            .or(self.theory.as_ref().map(|t| t.mean_us))
    }

    /// The reference's percentiles (p50, p90, p99), µs, from the closed form or the simulation.
    pub fn ref_percentiles_us(&self) -> [Option<f64>; 3] {
        match &self.reference {
            Some(r) => [r.p50_us, r.p90_us, r.p99_us],
            None => {
                let t = self.theory.as_ref();
                [
                    t.and_then(|t| t.p50_us),
                    t.and_then(|t| t.p90_us),
                    t.and_then(|t| t.p99_us),
                ]
            }
        }
    }

    /// The reference as the table names it: `theory`, or `sim ±0.4%` (the half-width of the
    /// simulated mean relative to it); `None` without a reference.
    pub fn ref_label(&self) -> Option<String> {
        let r = self.reference.as_ref()?;
        Some(match r.kind {
            ReferenceKind::Theory => "theory".into(),
            ReferenceKind::Simulation => match (r.mean_us, r.mean_half_width_us) {
                (Some(m), Some(h)) if m > 0.0 => format!("sim ±{:.1}%", 100.0 * h / m),
                _ => "sim".into(),
            },
        })
    }

    /// The point's notes and its theory note, joined by `; ` (`None` when there are none).
    pub fn all_notes(&self) -> Option<String> {
        let mut n = self.notes.clone();
        n.extend(self.theory_note.clone());
        (!n.is_empty()).then(|| n.join("; "))
    }
}

/// The prediction at `lambda`, in µs, or why there is none.
pub fn theory_at(model: &Model, lambda: f64) -> Result<TheoryValues, String> {
    theory::compare(model, lambda, &MeasuredSummary::default())
        .map(|c| TheoryValues::from(&c))
        .map_err(|e| e.to_string())
}

impl From<&Comparison> for TheoryValues {
    fn from(c: &Comparison) -> Self {
        TheoryValues {
            model: c.theory.model.clone(),
            mean_us: c.mean_us,
            p50_us: c.p50_us,
            p90_us: c.p90_us,
            p99_us: c.p99_us,
            blocking: c.theory.blocking,
        }
    }
}

/// The sojourn CDF at `lambda` as a function of µs (0 below 0), if the distribution is known.
pub fn theory_cdf_us(model: &Model, lambda: f64) -> Option<impl Fn(f64) -> f64 + use<>> {
    let cdf = theory::sojourn_cdf_fn(model, lambda)?;
    Some(move |t_us: f64| {
        if t_us <= 0.0 {
            return 0.0;
        }
        let v = cdf(t_us * 1e-6);
        // NaN only beyond ten million service times (M/D/1), where the CDF is 1 to any precision.
        if v.is_nan() { 1.0 } else { v }
    })
}

fn half_width(ci: Option<(f64, f64)>) -> Option<f64> {
    ci.map(|(lo, hi)| (hi - lo).abs() / 2.0)
}

/// The empirical CDF of a nanosecond histogram as a step function of µs.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCdf {
    /// (highest value of a bucket in µs, fraction of values ≤ it), increasing.
    steps: Vec<(f64, f64)>,
}

impl StepCdf {
    /// From a decoded histogram (`None` when it is empty).
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Self> {
        let total = h.len();
        if total == 0 {
            return None;
        }
        let mut cum = 0u64;
        let steps = h
            .iter_recorded()
            .map(|v| {
                cum += v.count_since_last_iteration();
                (
                    h.highest_equivalent(v.value_iterated_to()) as f64 / 1e3,
                    cum as f64 / total as f64,
                )
            })
            .collect();
        Some(StepCdf { steps })
    }

    /// The fraction of values ≤ `t_us`.
    pub fn at(&self, t_us: f64) -> f64 {
        match self.steps.partition_point(|&(x, _)| x <= t_us) {
            0 => 0.0,
            i => self.steps[i - 1].1,
        }
    }
}

/// The predicted distribution of qload's response times at one point: a mixture of the accepted
/// requests' sojourn F (shifted by `shift_us`, the overhead, for the net comparison) with weight
/// `1 − b`, and of the blocked requests, answered at once, with weight `b`. Blocked answers cost
/// what a zero-service answer costs, so their distribution is the overhead run's (or a step at 0
/// when the overhead was not measured). Without blocking this is just `F(t − shift)`.
pub struct ResponseCdf<F> {
    sojourn_us: F,
    blocked: f64,
    shift_us: f64,
    blocked_cdf: Option<StepCdf>,
}

impl<F> std::fmt::Debug for ResponseCdf<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCdf")
            .field("blocked", &self.blocked)
            .field("shift_us", &self.shift_us)
            .finish_non_exhaustive()
    }
}

impl<F: Fn(f64) -> f64> ResponseCdf<F> {
    /// A mixture with blocking fraction `blocked` (0 for none).
    pub fn new(sojourn_us: F, blocked: f64, shift_us: f64, blocked_cdf: Option<StepCdf>) -> Self {
        ResponseCdf {
            sojourn_us,
            blocked: blocked.clamp(0.0, 1.0),
            shift_us,
            blocked_cdf,
        }
    }

    /// P(response time ≤ `t_us`).
    pub fn at(&self, t_us: f64) -> f64 {
        let b = self.blocked;
        let accepted = (self.sojourn_us)(t_us - self.shift_us);
        if b == 0.0 {
            return accepted;
        }
        let blocked = match &self.blocked_cdf {
            Some(c) => c.at(t_us),
            None => f64::from(u8::from(t_us >= 0.0)),
        };
        (1.0 - b) * accepted + b * blocked
    }
}

fn decode(s: &str) -> Result<Histogram<u64>, String> {
    stats::histogram_from_string(s).map_err(|e| e.to_string())
}

/// Analyses one recorded point of a sweep of `model`.
///
/// With blocking (a fraction `b` of 503 answers, which qload times like any other response) the
/// statistics of the accepted requests are recovered from those of all responses, taking the
/// blocked ones to cost the overhead `o` (0 when not measured): mean `(m − b·o)/(1 − b)`, net mean
/// `(m − o)/(1 − b)`, percentile q at the all-response quantile `b + (1 − b)·q`; the KS distance
/// compares all responses with the mixture of [`ResponseCdf`].
///
/// The means are held against the point's [`Reference`] (see [`resolve_reference`]): the
/// relative error is `(m − W)/W`, and the interval covers when it contains W, widened by the
/// reference's own half-width in quadrature when the reference is a simulation
/// (`|centre − W| ≤ √(h² + h_ref²)`: the two estimates are independent).
pub fn analyze(model: &Model, rec: &PointRecord) -> PointAnalysis {
    let theory = theory::compare(model, rec.lambda, &MeasuredSummary::default());
    let reference = resolve_reference(model, rec, theory.as_ref().ok());
    let mut a = measured(model, rec, reference.as_ref());
    match &theory {
        Ok(c) => a.theory = Some(TheoryValues::from(c)),
        Err(e) => a.theory_note = Some(e.to_string()),
    }
    // W = 0 (zero service) gives no relative error, and no coverage either.
    if let Some((w, h)) = reference
        .as_ref()
        .and_then(|r| r.mean_us.map(|w| (w, r.mean_half_width_us.unwrap_or(0.0))))
        .filter(|&(w, _)| w > 0.0)
    {
        (a.err_raw, a.covers_raw) = against(w, h, a.mean_us, a.ci95_us);
        if a.net_mean_us.is_some() {
            (a.err_net, a.covers_net) = against(w, h, a.net_mean_us, a.net_ci95_us);
        }
        if a.net_twin_mean_us.is_some() {
            (a.err_net_twin, a.covers_net_twin) =
                against(w, h, a.net_twin_mean_us, a.net_twin_ci95_us);
        }
    }
    a.little = little(rec, &a);
    a.classes = class_points(model, rec, reference.as_ref());
    // Kept in the analysis as the sweep recorded it; a point of an older file, held against
    // the closed form alone, shows none (its outputs are those it had).
    a.reference = reference
        .filter(|_| rec.reference.is_some())
        .map(|r| Reference {
            histogram: None,
            ..r
        });
    a
}

/// The relative error of `mean` against the reference `w` (half-width `h_ref`), and whether
/// the interval `ci` covers it: `lo ≤ w ≤ hi` for a closed form, `|centre − w| ≤ √(h² + h_ref²)`
/// for a simulated reference.
fn against(
    w: f64,
    h_ref: f64,
    mean: Option<f64>,
    ci: Option<(f64, f64)>,
) -> (Option<f64>, Option<bool>) {
    let err = mean.map(|m| (m - w) / w);
    let covers = ci.map(|(lo, hi)| {
        if h_ref > 0.0 {
            ((lo + hi) / 2.0 - w).abs() <= ((hi - lo).abs() / 2.0).hypot(h_ref)
        } else {
            lo <= w && w <= hi
        }
    });
    (err, covers)
}

/// Default replications of a point's simulation (`--sim-replications`).
pub const DEFAULT_SIM_REPLICATIONS: u32 = 10;
/// Fewest customers per replication of a point's simulation.
pub const SIM_MIN_CUSTOMERS: u64 = 100_000;
/// Customers per replication for each request the point measured: the simulated mean is then
/// far more precise than the measured one (its variance adds to the measurement's in the
/// coverage test, at about 1/(20·R) of it for equally correlated samples).
pub const SIM_CUSTOMERS_PER_REQUEST: u64 = 20;

/// What a point's reference needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceNeed {
    /// The closed form has the mean, the percentiles and the distribution (and the classes).
    Theory,
    /// The closed form has the mean; the percentiles, the distribution (or the classes' means)
    /// come from the simulator.
    TheoryAndSimulation,
    /// No closed form: the simulator is the reference.
    Simulation,
}

/// What the reference of `model` at `lambda` needs; `None` when there can be none (an unstable
/// queue, an invalid rate).
pub fn reference_need(model: &Model, lambda: f64) -> Option<ReferenceNeed> {
    match theory::predict(model, lambda) {
        Ok(t) => {
            let distribution = t.p50_s.is_some() && theory::sojourn_cdf_fn(model, lambda).is_some();
            // Priority classes need the classes' means too.
            let classes =
                !(model.discipline.by_class() && model.classes.len() > 1 && t.classes.is_empty());
            Some(if distribution && classes {
                ReferenceNeed::Theory
            } else {
                ReferenceNeed::TheoryAndSimulation
            })
        }
        Err(theory::TheoryError::Unsupported(_)) => Some(ReferenceNeed::Simulation),
        Err(_) => None,
    }
}

/// The simulation of a point that measured `measured_requests` requests: `replications`
/// replications of [`SIM_CUSTOMERS_PER_REQUEST`] customers per measured request (at least
/// [`SIM_MIN_CUSTOMERS`]), a tenth as many more discarded first as warm-up.
pub fn sim_options(measured_requests: u64, replications: u32, seed: u64) -> SimOptions {
    let customers = measured_requests
        .saturating_mul(SIM_CUSTOMERS_PER_REQUEST)
        .max(SIM_MIN_CUSTOMERS);
    SimOptions {
        customers,
        warmup: customers / 10,
        replications: replications.max(2),
        seed,
    }
}

/// The reference of a closed form.
fn theory_reference(model: &Model, c: &Comparison) -> Reference {
    let percentiles = c.p50_us.is_some().then_some(ReferenceKind::Theory);
    Reference {
        kind: ReferenceKind::Theory,
        replications: None,
        customers: None,
        seed: None,
        mean_us: Some(c.mean_us),
        mean_half_width_us: Some(0.0),
        p50_us: c.p50_us,
        p90_us: c.p90_us,
        p99_us: c.p99_us,
        percentiles,
        blocking: Some(RefEstimate {
            value: c.theory.blocking,
            half_width: 0.0,
        }),
        class_mean_us: class_means(model, c),
        n_eff: None,
        histogram: None,
    }
}

/// The closed form's mean per class: the priority classes' own, or, when the classes only
/// label the requests (a discipline that does not look at them), the one mean W for each.
fn class_means(model: &Model, c: &Comparison) -> Vec<RefEstimate> {
    let exact = |value: f64| RefEstimate {
        value,
        half_width: 0.0,
    };
    if !c.theory.classes.is_empty() {
        c.theory
            .classes
            .iter()
            .map(|k| exact(k.mean_s * 1e6))
            .collect()
    } else if model.classes.len() > 1 && !model.discipline.by_class() {
        vec![exact(c.mean_us); model.classes.len()]
    } else {
        Vec::new()
    }
}

/// The effective number of independent samples of a simulation's pooled sojourn `histogram`
/// (serialized, ns) whose mean has the 95% half-width `half_width_us` over `replications`:
/// n_eff = s²/se², se = half-width / t₀.₉₇₅(R − 1), at most the samples (all of them when the
/// half-width is 0). `None` for an empty or undecodable histogram.
pub fn simulated_n_eff(histogram: &str, half_width_us: f64, replications: u32) -> Option<f64> {
    let h = decode(histogram).ok()?;
    let sd = h.stdev() / 1e3;
    let t = stats::student_t_975(u64::from(replications.max(2)) - 1);
    let se = half_width_us / t;
    let total = h.len() as f64;
    (total > 0.0).then(|| {
        if se > 0.0 && sd.is_finite() {
            (sd / se).powi(2).clamp(1.0, total)
        } else {
            total
        }
    })
}

/// The reference of a simulation.
fn simulated_reference(s: &SimResult, opts: &SimOptions) -> Reference {
    let us = |e: &sim::Estimate| RefEstimate {
        value: e.value * 1e6,
        half_width: e.half_width * 1e6,
    };
    let n_eff = simulated_n_eff(&s.histogram, s.mean_s.half_width * 1e6, s.replications);
    Reference {
        kind: ReferenceKind::Simulation,
        replications: Some(s.replications),
        customers: Some(s.customers),
        seed: Some(opts.seed),
        mean_us: Some(s.mean_s.value * 1e6),
        mean_half_width_us: Some(s.mean_s.half_width * 1e6),
        p50_us: Some(s.p50_s.value * 1e6),
        p90_us: Some(s.p90_s.value * 1e6),
        p99_us: Some(s.p99_s.value * 1e6),
        percentiles: Some(ReferenceKind::Simulation),
        blocking: Some(RefEstimate {
            value: s.blocking.value,
            half_width: s.blocking.half_width,
        }),
        class_mean_us: s.class_mean_s.iter().map(us).collect(),
        n_eff,
        histogram: Some(s.histogram.clone()),
    }
}

/// The closed form's mean with the simulation's percentiles and distribution where the closed
/// form has none (and its class means where the closed form has none).
fn merged_reference(model: &Model, c: &Comparison, sim: Reference) -> Reference {
    let t = theory_reference(model, c);
    let from_theory = t.percentiles.is_some();
    Reference {
        kind: ReferenceKind::Theory,
        mean_us: t.mean_us,
        mean_half_width_us: t.mean_half_width_us,
        p50_us: if from_theory { t.p50_us } else { sim.p50_us },
        p90_us: if from_theory { t.p90_us } else { sim.p90_us },
        p99_us: if from_theory { t.p99_us } else { sim.p99_us },
        percentiles: if from_theory {
            t.percentiles
        } else {
            sim.percentiles
        },
        blocking: t.blocking,
        class_mean_us: if t.class_mean_us.is_empty() {
            sim.class_mean_us.clone()
        } else {
            t.class_mean_us
        },
        ..sim
    }
}

/// The reference of `model` at `lambda`, simulated with `opts` where [`reference_need`] says
/// so; `None` where there can be none.
pub fn reference_at(model: &Model, lambda: f64, opts: &SimOptions) -> Option<Reference> {
    let need = reference_need(model, lambda)?;
    let theory = theory::compare(model, lambda, &MeasuredSummary::default()).ok();
    match (need, theory) {
        (ReferenceNeed::Theory, Some(c)) => Some(theory_reference(model, &c)),
        (ReferenceNeed::TheoryAndSimulation, Some(c)) => {
            let s = simulated_reference(&sim::simulate_open(model, lambda, opts), opts);
            Some(merged_reference(model, &c, s))
        }
        _ => Some(simulated_reference(
            &sim::simulate_open(model, lambda, opts),
            opts,
        )),
    }
}

/// The references of a sweep, each (model, λ) simulated once (a point measured again, or two
/// points at the same rate, reuse it).
#[derive(Debug, Default)]
pub struct SimCache {
    entries: Vec<(Model, f64, Option<Reference>)>,
}

impl SimCache {
    /// The reference of `model` at `lambda` ([`reference_at`]), from the cache when it was
    /// computed before. A simulator that panics gives `Err` with its message (the sweep goes
    /// on without a reference for that point) and is not cached.
    pub fn reference(
        &mut self,
        model: &Model,
        lambda: f64,
        opts: &SimOptions,
    ) -> Result<Option<Reference>, String> {
        if let Some((_, _, r)) = self
            .entries
            .iter()
            .find(|(m, l, _)| m == model && *l == lambda)
        {
            return Ok(r.clone());
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            reference_at(model, lambda, opts)
        }))
        .map_err(|p| {
            p.downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the simulator panicked".into())
        })?;
        self.entries.push((*model, lambda, r.clone()));
        Ok(r)
    }
}

/// The reference a recorded point is held against: the closed form recomputed where it exists
/// (with the recorded simulation's percentiles, distribution and class means where it has
/// none), else the recorded simulation; a point recorded without a reference (an older file)
/// gets the closed form alone.
pub fn resolve_reference(
    model: &Model,
    rec: &PointRecord,
    theory: Option<&Comparison>,
) -> Option<Reference> {
    match (&rec.reference, theory) {
        (Some(r), Some(c)) if r.kind == ReferenceKind::Theory => {
            let sim_part = r.replications.is_some().then(|| r.clone());
            Some(match sim_part {
                Some(s) => merged_reference(model, c, s),
                None => theory_reference(model, c),
            })
        }
        (Some(r), _) => Some(r.clone()),
        (None, Some(c)) => Some(theory_reference(model, c)),
        (None, None) => None,
    }
}

/// Whether the reference's distribution is the simulation's histogram rather than the closed
/// form's CDF.
fn simulated_distribution(r: Option<&Reference>) -> bool {
    r.is_some_and(|r| {
        r.kind == ReferenceKind::Simulation || r.percentiles == Some(ReferenceKind::Simulation)
    })
}

/// The reference's sojourn CDF as a function of µs: the closed form's, or the simulated
/// histogram's step function.
pub fn reference_cdf_us(
    model: &Model,
    lambda: f64,
    reference: Option<&Reference>,
) -> Option<Box<dyn Fn(f64) -> f64>> {
    if !simulated_distribution(reference) {
        if let Some(f) = theory_cdf_us(model, lambda) {
            return Some(Box::new(f));
        }
    }
    let h = decode(reference?.histogram.as_deref()?).ok()?;
    let c = StepCdf::from_histogram(&h)?;
    Some(Box::new(move |t: f64| c.at(t)))
}

/// How far from 1 Little's ratio may be for the timer's lateness and the alignment of the
/// scrapes with the schedule (see [`little`]).
pub const LITTLE_SLACK: f64 = 0.01;

/// Little's law L = X·W over the measured window (see the module docs): L = Δ∫N dt / Δuptime
/// from the server's `/metrics`, X the accepted answers per second of the measured duration,
/// W the net mean (the server's own time).
///
/// The tolerance: L·T counts the time in system of everyone present in the window, X·W·T that
/// of the customers who arrived in it; they differ by the remaining sojourns of those present
/// at the two edges, about (N_start + N_end)·W, which relative to X·W·T is
/// (N_start + N_end)/(X·T). Three times that (plus one customer, for small queues), plus
/// [`LITTLE_SLACK`] for the departure timer's lateness, which Server-Timing counts in W and the
/// model's integral does not, and for scrapes a few milliseconds off the schedule's edges. A
/// window that includes the warm-up adds warm-up/Δuptime. It is a note, not a check.
pub fn little(rec: &PointRecord, a: &PointAnalysis) -> Option<Little> {
    let w = rec.metrics.as_ref()?;
    let integral = w.in_system_s?;
    let m = &rec.measured;
    let x = m.completed.saturating_sub(m.blocked) as f64 / m.duration_s;
    let w_us = a.net_mean_us?;
    if !(w.uptime_s > 0.0 && x > 0.0 && x.is_finite() && w_us > 0.0) {
        return None;
    }
    let l = integral / w.uptime_s;
    let ratio = l / (x * w_us * 1e-6);
    let edges = w.in_system_edges.map_or(2.0 * l, |(s, e)| s + e);
    let mut tolerance = 3.0 * (edges + 1.0) / (x * m.duration_s) + LITTLE_SLACK;
    if !w.measured_only {
        tolerance += rec.warmup_s / w.uptime_s;
    }
    Some(Little {
        l,
        x,
        w_us,
        ratio,
        tolerance,
    })
}

/// Per class, the server's mean sojourn over the window against the reference's, for a model
/// with priority classes (or classes that label requests).
fn class_points(
    model: &Model,
    rec: &PointRecord,
    reference: Option<&Reference>,
) -> Vec<ClassPoint> {
    let Some(w) = rec.metrics.as_ref() else {
        return Vec::new();
    };
    if !(model.discipline.by_class() || model.classes.len() > 1) {
        return Vec::new();
    }
    w.classes
        .iter()
        .filter(|c| c.count > 0)
        .map(|c| {
            let r = reference.and_then(|r| r.class_mean_us.get(usize::from(c.class)));
            ClassPoint {
                class: c.class,
                count: c.count,
                mean_us: c.sum_s / c.count as f64 * 1e6,
                reference_us: r.map(|r| r.value),
                reference_half_width_us: r.map(|r| r.half_width),
            }
        })
        .collect()
}

/// Everything of [`analyze`] but the theory: the measurement of accepted requests (recovered
/// from all responses), net of the overhead, and the distances of its distribution from theory's.
fn measured(model: &Model, rec: &PointRecord, reference: Option<&Reference>) -> PointAnalysis {
    let m = &rec.measured;
    let mut a = PointAnalysis {
        rho: rec.rho,
        lambda: rec.lambda,
        achieved_rate: m.achieved_rate,
        sent: m.sent,
        completed: m.completed,
        errors: m.errors,
        blocked: m.blocked,
        send_lag_p50_us: m.send_lag_us.p50,
        send_lag_p99_us: m.send_lag_us.p99,
        send_lag_max_us: m.send_lag_us.max,
        gap_cv: m.gap_cv,
        arrivals_ks_p: m.arrivals_ks_p,
        attempts: rec.attempts,
        verdict: rec.verdict,
        failed_checks: rec.checks.iter().filter(|c| !c.passed).cloned().collect(),
        rejected: rec.rejected.clone(),
        ..PointAnalysis::default()
    };
    if let Some(o) = rec.overhead.as_ref().filter(|o| o.completed > 0) {
        a.overhead_mean_us = Some(o.latency_us.mean);
        a.overhead_half_us = half_width(o.latency_us.ci95_low.zip(o.latency_us.ci95_high));
    } else if rec.overhead.is_some() {
        a.notes.push("overhead run got no responses".into());
    }
    if m.completed == 0 {
        a.notes.push("no responses".into());
        return a;
    }
    let b = m.blocked as f64 / m.completed as f64;
    a.blocking_measured = Some(b);
    let hist = match decode(&m.histogram) {
        Ok(h) if !h.is_empty() => Some(h),
        Ok(_) => {
            a.notes.push("empty latency histogram".into());
            None
        }
        Err(e) => {
            a.notes.push(format!("latency histogram: {e}"));
            None
        }
    };
    if m.blocked >= m.completed {
        a.notes.push("every response was blocked (503)".into());
        return a;
    }
    let l = &m.latency_us;
    a.mean_all_us = Some(l.mean);
    let scale = 1.0 / (1.0 - b);
    let bo = b * a.overhead_mean_us.unwrap_or(0.0);
    a.mean_us = Some((l.mean - bo) * scale);
    a.ci95_us = l
        .ci95_low
        .zip(l.ci95_high)
        .map(|(lo, hi)| ((lo - bo) * scale, (hi - bo) * scale));
    let q = |reported: f64, q: f64| match (&hist, b > 0.0) {
        (Some(h), true) => h.value_at_quantile(b + (1.0 - b) * q) as f64 / 1e3,
        _ => reported,
    };
    a.p50_us = Some(q(l.p50, 0.5));
    a.p90_us = Some(q(l.p90, 0.9));
    a.p99_us = Some(q(l.p99, 0.99));
    a.p999_us = Some(q(l.p999, 0.999));
    if let Some(o) = a.overhead_mean_us {
        let net = (l.mean - o) * scale;
        a.net_mean_us = Some(net);
        a.net_ci95_us = half_width(l.ci95_low.zip(l.ci95_high)).map(|hm| {
            let h = hm.hypot(a.overhead_half_us.unwrap_or(0.0)) * scale;
            (net - h, net + h)
        });
    }
    // A point recorded without its series is taken to have had the planned number of batches.
    a.ks_noise = ks_noise(
        l.stdev,
        half_width(l.ci95_low.zip(l.ci95_high)),
        m.completed,
        m.batches.unwrap_or(u64::from(crate::measure::BATCHES)),
    );
    // Against a simulated distribution the distance is of two samples, and the noise of both
    // adds: 1.358·√(1/n_eff + 1/m_eff).
    if simulated_distribution(reference) {
        a.ks_noise = match (a.ks_noise, reference.and_then(|r| r.n_eff)) {
            (Some(k), Some(m)) if m > 0.0 => Some(k.hypot(KS_CRITICAL_95 / m.sqrt())),
            _ => None,
        };
    }
    if let Some(h) = &hist {
        // ks_histogram passes seconds; the CDFs here take µs.
        if let Some(raw) = reference_response_cdf_us(model, rec, reference, 0.0) {
            a.ks_raw = Some(stats::ks_histogram(h, |t_s| raw(t_s * 1e6)));
        }
        if let Some(net) = a
            .overhead_mean_us
            .and_then(|o| reference_response_cdf_us(model, rec, reference, o))
        {
            a.ks_net = Some(stats::ks_histogram(h, |t_s| net(t_s * 1e6)));
        }
    }
    if a.net_mean_us.is_some() {
        a.net_source = Some(NetSource::Twin);
    }
    net_from_server_timing(model, rec, reference, &mut a);
    a
}

/// The net values from the server's `Server-Timing` durations, when the run has them; the twin's
/// move to the `net_twin_…` fields as a cross-check (see the module docs).
fn net_from_server_timing(
    model: &Model,
    rec: &PointRecord,
    reference: Option<&Reference>,
    a: &mut PointAnalysis,
) {
    let raw = &rec.raw;
    let Some(server) = raw.server_us.as_ref().filter(|s| s.count > 0) else {
        return;
    };
    a.path_mean_us = raw.path_us.as_ref().map(|p| p.mean);
    let net = server.mean;
    let ci = stats::batch_means_ci(&result::batches_of(&raw.intervals, |i| i.server_mean_us))
        .map(|c| {
            // Centred on the exact mean of the header's answers; the width from the batches.
            let h = (c.high - c.low) / 2.0;
            (net - h, net + h)
        })
        .or_else(|| {
            // No series of server means: the latency's interval, shifted by the mean path.
            half_width(a.ci95_us).map(|h| (net - h, net + h))
        });
    let ks = match decode(&server.histogram) {
        Ok(h) if !h.is_empty() => reference_cdf_us(model, rec.lambda, reference)
            .map(|cdf| stats::ks_histogram(&h, |t_s| cdf(t_s * 1e6))),
        Ok(_) => None,
        Err(e) => {
            a.notes.push(format!("server time histogram: {e}"));
            None
        }
    };
    if a.net_source == Some(NetSource::Twin) {
        a.net_twin_mean_us = a.net_mean_us;
        a.net_twin_ci95_us = a.net_ci95_us;
        a.ks_net_twin = a.ks_net;
    }
    a.net_mean_us = Some(net);
    a.net_ci95_us = ci;
    a.ks_net = ks;
    a.net_source = Some(NetSource::ServerTiming);
}

/// 95% critical value of the KS distance for one sample of `n` independent draws
/// (asymptotic Kolmogorov distribution: P(√n·D > 1.358) = 0.05).
const KS_CRITICAL_95: f64 = 1.358;

/// The KS sampling-noise level of a point: `1.358/√n_eff` with `n_eff = s²/se²` (at most `n`),
/// where `se` is the batch-means standard error of the mean behind the interval half-width
/// `half`, made of `batches` batches (see the module docs). `None` without responses; `n` itself
/// when there is no interval, the interval has no width, or fewer than two batches made it.
pub fn ks_noise(stdev: f64, half: Option<f64>, n: u64, batches: u64) -> Option<f64> {
    effective_samples(stdev, half, n, batches).map(|n_eff| KS_CRITICAL_95 / n_eff.sqrt())
}

/// n_eff = s²/se² of [`ks_noise`] (in [1, n]): `None` without samples, `n` itself when there is
/// no interval, the interval has no width, or fewer than two batches made it.
pub fn effective_samples(stdev: f64, half: Option<f64>, n: u64, batches: u64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    Some(match half {
        Some(h) if h > 0.0 && stdev.is_finite() && batches >= 2 => {
            let t = stats::student_t_975(batches - 1);
            (stdev * t / h).powi(2).clamp(1.0, n)
        }
        _ => n,
    })
}

/// The two-sample KS distance of a measured histogram against a simulated one (both serialized,
/// ns, the same bucket layout, so the sup over the measured buckets' edges is the exact sup) and
/// its 95% noise level 1.358·√(1/n_eff + 1/m_eff), n_eff and m_eff the two samples' effective
/// sizes: `(distance, noise)`, `None` when either histogram is empty or undecodable or a size
/// is not positive.
pub fn two_sample_ks(
    measured: &str,
    n_eff: f64,
    simulated: &str,
    m_eff: f64,
) -> Option<(f64, f64)> {
    if !(n_eff > 0.0 && m_eff > 0.0) {
        return None;
    }
    let h = decode(measured).ok().filter(|h| !h.is_empty())?;
    let sim = StepCdf::from_histogram(&decode(simulated).ok()?)?;
    // ks_histogram passes seconds; the step function takes µs.
    let d = stats::ks_histogram(&h, |t_s| sim.at(t_s * 1e6));
    Some((d, KS_CRITICAL_95 * (1.0 / n_eff + 1.0 / m_eff).sqrt()))
}

/// The predicted CDF (µs) of all of qload's response times at a recorded point: the sojourn of
/// the point's reference ([`resolve_reference`]: the closed form, or the simulated histogram)
/// shifted by `shift_us`, mixed with the blocked answers as measured (see [`ResponseCdf`]).
/// `None` when the sojourn distribution is not known.
pub fn predicted_cdf_us(
    model: &Model,
    rec: &PointRecord,
    shift_us: f64,
) -> Option<impl Fn(f64) -> f64 + use<>> {
    let theory = theory::compare(model, rec.lambda, &MeasuredSummary::default()).ok();
    let reference = resolve_reference(model, rec, theory.as_ref());
    reference_response_cdf_us(model, rec, reference.as_ref(), shift_us)
}

fn reference_response_cdf_us(
    model: &Model,
    rec: &PointRecord,
    reference: Option<&Reference>,
    shift_us: f64,
) -> Option<impl Fn(f64) -> f64 + use<>> {
    let sojourn = reference_cdf_us(model, rec.lambda, reference)?;
    let m = &rec.measured;
    let b = if m.completed > 0 {
        m.blocked as f64 / m.completed as f64
    } else {
        0.0
    };
    let blocked_cdf = rec
        .overhead
        .as_ref()
        .filter(|o| o.completed > 0 && b > 0.0)
        .and_then(|o| decode(&o.histogram).ok())
        .and_then(|h| StepCdf::from_histogram(&h));
    let r = ResponseCdf::new(sojourn, b, shift_us, blocked_cdf);
    Some(move |t_us: f64| r.at(t_us))
}

/// The measured response-time CDF of a serialized histogram, as (µs, F) points: one per recorded
/// bucket, thinned to at most about `max_points` by skipping buckets closer than `1/max_points`
/// of the span (the last is always kept).
pub fn empirical_cdf_us(histogram: &str, max_points: usize) -> Option<Vec<(f64, f64)>> {
    let h = decode(histogram).ok()?;
    let steps = StepCdf::from_histogram(&h)?.steps;
    let (lo, hi) = (steps[0].0, steps[steps.len() - 1].0);
    let min_gap = (hi - lo) / max_points.max(2) as f64;
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(max_points.min(steps.len()) + 1);
    let mut last_x = f64::NEG_INFINITY;
    for (i, &(x, f)) in steps.iter().enumerate() {
        if x - last_x >= min_gap || i + 1 == steps.len() {
            out.push((x, f));
            last_x = x;
        }
    }
    Some(out)
}

/// Totals over a sweep's points.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SweepSummary {
    /// Points analysed.
    pub points: usize,
    /// Points with both a prediction and a net interval.
    pub with_net_interval: usize,
    /// Of those, how many net intervals contain W.
    pub covered_net: usize,
    /// Mean of the net relative errors (signed), over points that have one.
    pub mean_err_net: Option<f64>,
    /// Mean of |net relative error|.
    pub mean_abs_err_net: Option<f64>,
    /// Largest net KS distance.
    pub max_ks_net: Option<f64>,
    /// Points whose net KS distance is within its sampling-noise level.
    #[serde(default)]
    pub ks_net_within_noise: usize,
    /// Points with both a net KS distance and a noise level.
    #[serde(default)]
    pub ks_net_compared: usize,
    /// Smallest and largest overhead mean (µs).
    pub overhead_range_us: Option<(f64, f64)>,
    /// Total errors (requests without a response).
    pub errors: u64,
    /// Points whose checks failed in every attempt: counted here and nowhere else (not in the
    /// coverage, the errors against theory, the KS distances).
    #[serde(default)]
    pub failed: usize,
    /// Points whose Little's ratio is within its tolerance.
    #[serde(default)]
    pub little_holds: usize,
    /// Points with a Little's ratio.
    #[serde(default)]
    pub little_compared: usize,
}

/// Sums up a sweep. Points that failed their checks are counted as failed and left out of the
/// coverage, the relative errors and the KS distances; their overhead and request errors count.
pub fn summarize(all: &[PointAnalysis]) -> SweepSummary {
    let failed = all.iter().filter(|p| p.failed()).count();
    let points: Vec<&PointAnalysis> = all.iter().filter(|p| !p.failed()).collect();
    let nets: Vec<f64> = points.iter().filter_map(|p| p.err_net).collect();
    let mean = |xs: &[f64]| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    let abs: Vec<f64> = nets.iter().map(|e| e.abs()).collect();
    let ovh: Vec<f64> = all.iter().filter_map(|p| p.overhead_mean_us).collect();
    SweepSummary {
        points: all.len(),
        with_net_interval: points.iter().filter(|p| p.covers_net.is_some()).count(),
        covered_net: points.iter().filter(|p| p.covers_net == Some(true)).count(),
        mean_err_net: mean(&nets),
        mean_abs_err_net: mean(&abs),
        max_ks_net: points
            .iter()
            .filter_map(|p| p.ks_net)
            .fold(None, |m: Option<f64>, k| Some(m.map_or(k, |m| m.max(k)))),
        ks_net_within_noise: points
            .iter()
            .filter(|p| matches!((p.ks_net, p.ks_noise), (Some(k), Some(n)) if k <= n))
            .count(),
        ks_net_compared: points
            .iter()
            .filter(|p| p.ks_net.is_some() && p.ks_noise.is_some())
            .count(),
        overhead_range_us: ovh.iter().fold(None, |r, &o| match r {
            None => Some((o, o)),
            Some((lo, hi)) => Some((f64::min(lo, o), f64::max(hi, o))),
        }),
        errors: all.iter().map(|p| p.errors).sum(),
        failed,
        little_holds: points
            .iter()
            .filter(|p| p.little.is_some_and(|l| l.holds()))
            .count(),
        little_compared: points.iter().filter(|p| p.little.is_some()).count(),
    }
}

/// Whether the model's mean is finite at every load below 1 only (no capacity, finite servers):
/// then the sweep must stay below ρ = 1.
pub fn needs_rho_below_one(model: &Model) -> bool {
    model.capacity.is_none() && matches!(model.servers, Servers::Finite(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::PointMeasurement;
    use queuelab_client::result::RunResult;

    const O_US: f64 = 25.0;

    fn model(capacity: Option<u32>) -> Model {
        Model::new(1000.0, Servers::Finite(1)).with_capacity(capacity)
    }

    /// A measurement whose histogram holds `values_us`, `blocked` of them 503s, and whose mean's
    /// interval is ± `half` µs.
    fn measurement(values_us: &[f64], blocked: u64, half: f64) -> PointMeasurement {
        PointMeasurement::of_sample(values_us, blocked, |m| (m - half, m + half))
    }

    /// `n` values at the midpoints of the quantile function: a sample with exactly the
    /// distribution, up to a KS distance of 1/(2n).
    fn quantile_sample(n: usize, inv: impl Fn(f64) -> f64) -> Vec<f64> {
        (0..n).map(|i| inv((i as f64 + 0.5) / n as f64)).collect()
    }

    fn record(
        lambda: f64,
        measured: PointMeasurement,
        overhead: Option<PointMeasurement>,
    ) -> PointRecord {
        PointRecord {
            index: 0,
            rho: lambda / 1000.0,
            lambda,
            warmup_s: 0.0,
            seed: 1,
            measured,
            overhead,
            raw: RunResult::default(),
            overhead_raw: None,
            attempts: 1,
            verdict: None,
            checks: Vec::new(),
            rejected: Vec::new(),
            reference: None,
            metrics: None,
        }
    }

    #[test]
    fn mm1_point_net_of_overhead_matches_theory() {
        // M/M/1, λ = 500, μ = 1000: T ~ Exp(500/s), W = 2000 µs; every response also pays 25 µs.
        let w = 2000.0;
        let vals = quantile_sample(20_000, |p| O_US - w * (1.0 - p).ln());
        let rec = record(
            500.0,
            measurement(&vals, 0, 40.0),
            Some(measurement(&[O_US; 5000], 0, 0.5)),
        );
        let a = analyze(&model(None), &rec);
        let t = a.theory.as_ref().expect("M/M/1 has a theory");
        assert_eq!(t.model, "M/M/1");
        assert!((t.mean_us - w).abs() < 1e-6, "{}", t.mean_us);
        let p50 = t.p50_us.expect("p50");
        let p99 = t.p99_us.expect("p99");
        assert!((p50 / (w * 2f64.ln()) - 1.0).abs() < 1e-6, "{p50}");
        assert!((p99 / (w * 100f64.ln()) - 1.0).abs() < 1e-6, "{p99}");
        assert_eq!(t.blocking, 0.0);
        assert_eq!(a.blocking_measured, Some(0.0));
        // The midpoint sample's mean falls short of W by about (1 + ln 2n)/2n ≈ 0.03%; bucketing
        // adds at most 0.1%.
        let err_net = a.err_net.expect("net error");
        assert!(err_net.abs() < 0.003, "{err_net}");
        let err_raw = a.err_raw.expect("raw error");
        assert!((err_raw - O_US / w).abs() < 0.003, "{err_raw}");
        assert_eq!(a.covers_net, Some(true));
        let (lo, hi) = a.net_ci95_us.expect("net interval");
        assert!(((hi - lo) / 2.0 - 40f64.hypot(0.5)).abs() < 1e-9);
        // Net: only sampling (1/2n) and bucketing (≤ 0.1% of t times the density ≤ 1/e·0.001).
        let ks_net = a.ks_net.expect("ks net");
        assert!(ks_net < 0.002, "{ks_net}");
        // Raw: the 25 µs shift, largest at t = 25 µs: 1 − e^{−25/2000} = 0.0124.
        let ks_raw = a.ks_raw.expect("ks raw");
        assert!((ks_raw - 0.0124).abs() < 0.0015, "{ks_raw}");
    }

    #[test]
    fn mm1k_blocked_answers_are_taken_out() {
        // M/M/1/4 at λ = μ: the number in system is uniform on 0..=4, blocking 1/5, L = 2,
        // throughput 800/s, W = L/throughput = 2500 µs.
        let m = model(Some(4));
        let accepted = quantile_sample(4000, |p| {
            O_US + theory::sojourn_quantile(&m, 1000.0, p).expect("M/M/1/K sojourn is known") * 1e6
        });
        let mut all = accepted.clone();
        all.extend([O_US; 1000]);
        let rec = record(
            1000.0,
            measurement(&all, 1000, 30.0),
            Some(measurement(&[O_US; 2000], 0, 0.5)),
        );
        let a = analyze(&m, &rec);
        let t = a.theory.as_ref().expect("M/M/1/4 has a theory");
        assert_eq!(t.model, "M/M/1/4");
        assert!((t.blocking - 0.2).abs() < 1e-12, "{}", t.blocking);
        assert!((t.mean_us - 2500.0).abs() < 1e-6, "{}", t.mean_us);
        assert_eq!(a.blocking_measured, Some(0.2));
        let acc_mean = accepted.iter().sum::<f64>() / accepted.len() as f64;
        let mean = a.mean_us.expect("mean of accepted");
        assert!((mean / acc_mean - 1.0).abs() < 1e-9, "{mean} vs {acc_mean}");
        let net = a.net_mean_us.expect("net mean");
        assert!((net / 2500.0 - 1.0).abs() < 0.003, "{net}");
        // The interval of the accepted mean is the all-response interval scaled by 1/(1 − b).
        let (lo, hi) = a.ci95_us.expect("interval");
        assert!(((hi - lo) / 2.0 - 30.0 / 0.8).abs() < 1e-9);
        let p50 = a.p50_us.expect("p50") - O_US;
        let tp50 = t.p50_us.expect("theory p50");
        assert!((p50 / tp50 - 1.0).abs() < 0.003, "{p50} vs {tp50}");
        let ks_net = a.ks_net.expect("ks net");
        assert!(ks_net < 0.003, "{ks_net}");
    }

    #[test]
    fn missing_pieces_give_notes_not_panics() {
        let m = model(None);
        let empty = analyze(&m, &record(500.0, PointMeasurement::default(), None));
        assert!(empty.mean_us.is_none() && empty.ks_raw.is_none());
        assert!(empty.notes.iter().any(|n| n.contains("no responses")));
        assert!(empty.theory.is_some(), "theory does not need a measurement");

        let mut bad = measurement(&[2000.0; 100], 0, 10.0);
        bad.histogram = "not base64!".into();
        let a = analyze(&m, &record(500.0, bad, Some(PointMeasurement::default())));
        assert!(a.ks_raw.is_none());
        assert!(
            a.notes.iter().any(|n| n.contains("histogram")),
            "{:?}",
            a.notes
        );
        assert!(
            a.notes.iter().any(|n| n.contains("overhead")),
            "{:?}",
            a.notes
        );
        assert!(a.net_mean_us.is_none() && a.mean_us.is_some());

        let unstable = analyze(&m, &record(1500.0, measurement(&[1.0], 0, 1.0), None));
        assert!(unstable.theory.is_none());
        assert!(
            unstable
                .theory_note
                .as_deref()
                .is_some_and(|n| n.contains("unstable"))
        );
        assert!(unstable.err_raw.is_none());
    }

    #[test]
    fn step_cdf_and_mixture() {
        let mut h = stats::new_histogram();
        for v in [10_000u64, 20_000, 20_000, 40_000] {
            stats::record_ns(&mut h, v);
        }
        let c = StepCdf::from_histogram(&h).expect("not empty");
        assert_eq!(c.at(5.0), 0.0);
        assert_eq!(c.at(10.01), 0.25);
        assert_eq!(c.at(30.0), 0.75);
        assert_eq!(c.at(1e9), 1.0);
        let sojourn = |t: f64| {
            if t <= 0.0 {
                0.0
            } else {
                1.0 - (-t / 100.0).exp()
            }
        };
        let plain = ResponseCdf::new(sojourn, 0.0, 10.0, None);
        assert_eq!(plain.at(10.0), 0.0);
        assert!((plain.at(110.0) - (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        let mixed = ResponseCdf::new(sojourn, 0.25, 0.0, Some(c));
        assert!((mixed.at(30.0) - (0.75 * sojourn(30.0) + 0.25 * 0.75)).abs() < 1e-12);
        let instant = ResponseCdf::new(sojourn, 0.5, 0.0, None);
        assert_eq!(instant.at(0.0), 0.5);
    }

    #[test]
    fn summary_counts_coverage_errors_and_overhead() {
        let p = |e: f64, covers: bool, o: f64| PointAnalysis {
            err_net: Some(e),
            covers_net: Some(covers),
            overhead_mean_us: Some(o),
            ks_net: Some(e.abs()),
            errors: 1,
            ..PointAnalysis::default()
        };
        let s = summarize(&[
            p(0.01, true, 20.0),
            p(-0.03, false, 30.0),
            PointAnalysis::default(),
        ]);
        assert_eq!((s.points, s.with_net_interval, s.covered_net), (3, 2, 1));
        assert!((s.mean_err_net.expect("mean") + 0.01).abs() < 1e-12);
        assert!((s.mean_abs_err_net.expect("abs") - 0.02).abs() < 1e-12);
        assert_eq!(s.max_ks_net, Some(0.03));
        assert_eq!(s.overhead_range_us, Some((20.0, 30.0)));
        assert_eq!(s.errors, 2);
        // Neither point has a noise level: nothing compared.
        assert_eq!((s.ks_net_within_noise, s.ks_net_compared), (0, 0));
    }

    /// `n` draws of Exp(rate) (1/s) in a serialized ns histogram, from a fixed xorshift stream.
    fn exp_histogram(n: usize, rate: f64, seed: u64) -> String {
        let mut x = seed | 1;
        let mut h = stats::new_histogram();
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            stats::record_ns(&mut h, (-u.ln() / rate * 1e9).round() as u64);
        }
        stats::histogram_to_string(&h)
    }

    #[test]
    fn two_sample_ks_is_within_noise_for_one_distribution_and_beyond_for_another() {
        // Two independent samples of 20 000 from Exp(1000/s) (iid: n_eff = n). The two-sample
        // distance satisfies P(√(nm/(n+m))·D > x) → 2Σ(−1)^{k−1}e^{−2k²x²} ≤ 2e^{−2x²}: at
        // x = √(ln(2·10⁶)/2) = 2.69 that is 10⁻⁶, so a correct distance exceeds 2.69·√(2/n)
        // = 0.027 less than once in 10⁶ (the buckets only lower the sup: fewer edges).
        let n = 20_000usize;
        let a = exp_histogram(n, 1000.0, 0x9e37_79b9_7f4a_7c15);
        let b = exp_histogram(n, 1000.0, 0x2545_f491_4f6c_dd1d);
        let nf = n as f64;
        let (d, noise) = two_sample_ks(&a, nf, &b, nf).expect("both histograms");
        assert!((noise - 1.358 * (2.0 / nf).sqrt()).abs() < 1e-12, "{noise}");
        let bound = ((2e6f64).ln() / 2.0).sqrt() * (2.0 / nf).sqrt();
        assert!(d <= bound, "same distribution: D = {d} > {bound}");
        // Against Exp(1300/s): sup |e^{−x} − e^{−1.3x}| = 0.096 at x = ln(1.3)/0.3. Each
        // empirical CDF is within √(ln(2/α)/(2n)) = 0.0195 of its own at α = 5·10⁻⁷ (DKW), so
        // the sample distance is within 0.039 of 0.096 (and 0.001 for the buckets' width, 0.1%
        // of x at the sup): at least 0.056, four times the 95% noise level of 0.0136.
        let c = exp_histogram(n, 1300.0, 0x2545_f491_4f6c_dd1d);
        let (d, noise) = two_sample_ks(&a, nf, &c, nf).expect("both histograms");
        let dkw = 2.0 * ((2.0f64 / 5e-7).ln() / (2.0 * nf)).sqrt() + 0.001;
        assert!(d > noise, "shifted: D = {d}, noise {noise}");
        assert!((d - 0.096).abs() <= dkw, "{d} against 0.096 ± {dkw}");
        // Fewer effective samples, more noise; nothing to compare, no distance.
        let (_, wider) = two_sample_ks(&a, nf / 4.0, &c, nf).expect("both");
        assert!(wider > noise);
        assert_eq!(two_sample_ks(&a, 0.0, &c, nf), None);
        assert_eq!(two_sample_ks(&a, nf, "not base64!", nf), None);
        let empty = stats::histogram_to_string(&stats::new_histogram());
        assert_eq!(two_sample_ks(&empty, nf, &c, nf), None);
    }

    #[test]
    fn the_simulated_effective_size_is_s_over_se_squared() {
        // Exp(1000/s): s ≈ 1000 µs. A half-width of 2.262·10 µs over 10 replications is
        // se = 10 µs: n_eff = (1000/10)² ≈ 10⁴. The sample's s has a relative standard
        // deviation of √((κ − 1)/(4n)) = 1% (κ = 9 for the exponential): within 5% at five of
        // them, so n_eff within 11%.
        let h = exp_histogram(20_000, 1000.0, 7);
        let t = stats::student_t_975(9);
        let m = simulated_n_eff(&h, t * 10.0, 10).expect("n_eff");
        assert!((m / 1e4 - 1.0).abs() < 0.11, "{m}");
        // No width: every sample; an absurd one: at least one.
        assert_eq!(simulated_n_eff(&h, 0.0, 10), Some(20_000.0));
        assert_eq!(simulated_n_eff(&h, 1e12, 10), Some(1.0));
        assert_eq!(simulated_n_eff("x", 1.0, 10), None);
    }

    #[test]
    fn ks_noise_follows_the_effective_number_of_samples() {
        let b = u64::from(crate::measure::BATCHES);
        let t = stats::student_t_975(b - 1);
        let (s, n) = (1000.0, 10_000u64);
        // Independent samples: the batch-means half-width is t·s/√n, so n_eff = n.
        let iid = ks_noise(s, Some(t * s / 100.0), n, b).expect("noise");
        assert!((iid - 0.01358).abs() < 1e-9, "{iid}");
        // An interval three times wider (correlated samples): n_eff = n/9, noise ×3.
        let corr = ks_noise(s, Some(3.0 * t * s / 100.0), n, b).expect("noise");
        assert!((corr - 3.0 * 0.01358).abs() < 1e-9, "{corr}");
        // Narrower than independent samples allow, or no interval: n_eff = n.
        assert_eq!(ks_noise(s, Some(t * s / 1000.0), n, b), Some(iid));
        assert_eq!(ks_noise(s, None, n, b), Some(iid));
        assert_eq!(ks_noise(s, Some(0.0), n, b), Some(iid));
        assert_eq!(ks_noise(s, Some(10.0), 0, b), None);
        // An interval wider than the spread of single samples: n_eff floors at 1.
        assert_eq!(ks_noise(1.0, Some(1e6), n, b), Some(1.358));
        // An interval of fewer than two batches is no interval.
        assert_eq!(ks_noise(s, Some(3.0 * t * s / 100.0), n, 1), Some(iid));
    }

    #[test]
    fn ks_noise_takes_the_batches_a_short_point_had() {
        // A 60 ms point: six 10 ms intervals and a 1 ms stub, which joins the sixth: b = 6, and
        // se = half/t(5), not half/t(15) as the planned 16 batches would have it.
        let iv = |duration_s: f64| queuelab_client::result::Interval {
            duration_s,
            completed: 50,
            mean_us: 2000.0,
            ..queuelab_client::result::Interval::default()
        };
        let mut series = vec![iv(0.01); 6];
        series.push(iv(0.001));
        let b = queuelab_client::result::batch_count(&series) as u64;
        assert_eq!(b, 6);
        let (s, half, n) = (2000.0, 400.0, 301u64);
        let want = |b: u64| {
            let n_eff = (s * stats::student_t_975(b - 1) / half).powi(2);
            assert!(n_eff > 1.0 && n_eff < n as f64, "{n_eff} within the clamp");
            1.358 / n_eff.sqrt()
        };
        let short = ks_noise(s, Some(half), n, b).expect("noise");
        assert!((short - want(6)).abs() < 1e-12, "{short}");
        // t(5) = 2.571 against t(15) = 2.131: the same half-width is a smaller standard error
        // with fewer batches, so the planned 16 would overstate the noise by a fifth
        // (noise ∝ 1/t: 2.131/2.571 = 0.83).
        let planned = want(u64::from(crate::measure::BATCHES));
        assert!(short / planned < 0.85, "{short} vs {planned}");

        // Through the analysis: the measurement's batch count is the one used.
        let mut m = measurement(&[2000.0; 301], 0, half);
        m.latency_us.stdev = s;
        m.batches = Some(b);
        let a = analyze(&model(None), &record(500.0, m.clone(), None));
        assert_eq!(a.ks_noise, Some(short));
        // Without a count (a point recorded without its series), the planned number.
        m.batches = None;
        let a = analyze(&model(None), &record(500.0, m, None));
        assert_eq!(a.ks_noise, Some(planned));
    }

    /// A run's `Server-Timing` decomposition: server times `server_us` (their mean and
    /// histogram), paths of mean `path`, and per-interval server means `means`.
    fn with_server_timing(rec: &mut PointRecord, server_us: &[f64], path: f64, means: &[f64]) {
        use queuelab_client::result::{DurationSummary, Interval};
        let m = PointMeasurement::of_sample(server_us, 0, |m| (m, m));
        rec.raw.server_us = Some(DurationSummary {
            count: server_us.len() as u64,
            mean: m.latency_us.mean,
            p50: m.latency_us.p50,
            histogram: m.histogram,
            ..DurationSummary::default()
        });
        rec.raw.path_us = Some(DurationSummary {
            count: server_us.len() as u64,
            mean: path,
            p50: path,
            ..DurationSummary::default()
        });
        rec.raw.intervals = means
            .iter()
            .map(|&x| Interval {
                duration_s: 1.0,
                completed: 100,
                mean_us: x + path,
                server_mean_us: Some(x),
                ..Interval::default()
            })
            .collect();
    }

    #[test]
    fn net_from_server_timing_with_the_twin_as_a_cross_check() {
        // M/M/1 at λ = 500: W = 2000 µs. The run's answers pay a path of 30 µs, the twin saw 25.
        let w = 2000.0;
        let sojourn = quantile_sample(20_000, |p| -w * (1.0 - p).ln());
        let latency: Vec<f64> = sojourn.iter().map(|s| s + 30.0).collect();
        let mut rec = record(
            500.0,
            measurement(&latency, 0, 40.0),
            Some(measurement(&[O_US; 5000], 0, 0.5)),
        );
        let means = [1980.0, 2020.0, 1990.0, 2010.0];
        with_server_timing(&mut rec, &sojourn, 30.0, &means);
        let a = analyze(&model(None), &rec);
        assert_eq!(a.net_source, Some(NetSource::ServerTiming));
        assert_eq!(a.path_mean_us, Some(30.0));
        let sm = sojourn.iter().sum::<f64>() / sojourn.len() as f64;
        let net = a.net_mean_us.expect("net");
        // The exact mean of the server times, kept by the summary (not the histogram's).
        assert!((net - sm).abs() < 1e-6, "{net} vs {sm}");
        // The interval from the four server means: s = 18.26, t(3) = 3.182, half = 29.05.
        let (lo, hi) = a.net_ci95_us.expect("interval");
        let s = (means.iter().map(|x| (x - 2000.0f64).powi(2)).sum::<f64>() / 3.0).sqrt();
        let half = stats::student_t_975(3) * s / 2.0;
        assert!(((hi - lo) / 2.0 - half).abs() < 1e-9, "{lo} {hi}");
        assert!(((hi + lo) / 2.0 - net).abs() < 1e-9);
        assert_eq!(a.covers_net, Some(true));
        assert!(a.err_net.expect("err").abs() < 0.003);
        // The server times follow Exp(500/s) unshifted: sampling and bucketing only.
        assert!(a.ks_net.expect("ks") < 0.002, "{:?}", a.ks_net);
        // The twin's net is kept beside it: 5 µs too high (30 − 25), interval √(40² + 0.5²).
        let twin = a.net_twin_mean_us.expect("twin net");
        assert!((twin - (sm + 5.0)).abs() < 0.5, "{twin}");
        let (lo, hi) = a.net_twin_ci95_us.expect("twin interval");
        assert!(((hi - lo) / 2.0 - 40f64.hypot(0.5)).abs() < 1e-9);
        assert_eq!(a.covers_net_twin, Some(true));
        assert!(
            (a.err_net_twin.expect("twin err") - a.err_net.expect("err") - 5.0 / w).abs() < 3e-4
        );
        // Shifted by 25 where the path was 30: off by 5 µs at the origin, 1 − e^{−5/2000}.
        assert!(a.ks_net_twin.expect("twin ks") > 0.002);

        // Without the series of server means: the latency's ±40, centred on the net.
        rec.raw
            .intervals
            .iter_mut()
            .for_each(|i| i.server_mean_us = None);
        let a = analyze(&model(None), &rec);
        let (lo, hi) = a.net_ci95_us.expect("interval");
        assert!(((hi - lo) / 2.0 - 40.0).abs() < 1e-9 && ((hi + lo) / 2.0 - net).abs() < 1e-9);

        // Without a twin: the Server-Timing net alone.
        rec.overhead = None;
        let a = analyze(&model(None), &rec);
        assert_eq!(a.net_source, Some(NetSource::ServerTiming));
        assert!(a.net_twin_mean_us.is_none() && a.err_net_twin.is_none());

        // Without the header: the twin's, as before.
        let a = analyze(
            &model(None),
            &record(
                500.0,
                measurement(&latency, 0, 40.0),
                Some(measurement(&[O_US; 10], 0, 0.5)),
            ),
        );
        assert_eq!(a.net_source, Some(NetSource::Twin));
        assert!(a.net_twin_mean_us.is_none() && a.path_mean_us.is_none());
    }

    #[test]
    fn failed_points_are_marked_and_left_out_of_the_summary() {
        let mut rec = record(500.0, measurement(&[2000.0; 100], 0, 10.0), None);
        rec.verdict = Some(Verdict::Failed);
        rec.attempts = 2;
        let bad = Check {
            name: "send_lag_max".into(),
            value: 99_100.0,
            limit: 30_000.0,
            unit: "us".into(),
            passed: false,
        };
        let good = Check {
            passed: true,
            name: "errors".into(),
            ..bad.clone()
        };
        rec.checks = vec![good, bad.clone()];
        rec.rejected = vec![RejectedAttempt {
            attempt: 1,
            failed: vec![bad.clone()],
        }];
        let a = analyze(&model(None), &rec);
        assert!(a.failed());
        assert_eq!(a.attempts, 2);
        assert_eq!(a.failed_checks, [bad]);
        assert_eq!(a.rejected, rec.rejected);

        let p = |e: f64, verdict: Option<Verdict>| PointAnalysis {
            err_net: Some(e),
            covers_net: Some(e.abs() < 0.05),
            ks_net: Some(e.abs()),
            ks_noise: Some(0.1),
            overhead_mean_us: Some(100.0 * e.abs()),
            errors: 1,
            verdict,
            ..PointAnalysis::default()
        };
        let s = summarize(&[
            p(0.01, Some(Verdict::Ok)),
            p(0.5, Some(Verdict::Failed)),
            p(-0.03, None),
        ]);
        assert_eq!((s.points, s.failed), (3, 1));
        assert_eq!((s.with_net_interval, s.covered_net), (2, 2));
        assert!((s.mean_err_net.expect("mean") + 0.01).abs() < 1e-12);
        assert_eq!(s.max_ks_net, Some(0.03));
        assert_eq!((s.ks_net_within_noise, s.ks_net_compared), (2, 2));
        // The overhead and the request errors of every point still count.
        assert_eq!(s.overhead_range_us, Some((1.0, 50.0)));
        assert_eq!(s.errors, 3);
    }

    #[test]
    fn summary_counts_points_within_ks_noise() {
        let p = |ks: f64, noise: Option<f64>| PointAnalysis {
            ks_net: Some(ks),
            ks_noise: noise,
            ..PointAnalysis::default()
        };
        let s = summarize(&[
            p(0.01, Some(0.02)),
            p(0.03, Some(0.02)),
            p(0.02, Some(0.02)),
            p(0.01, None),
        ]);
        assert_eq!((s.ks_net_within_noise, s.ks_net_compared), (2, 3));
    }

    // ---- references, Little's law, classes ----

    use crate::record::{ClassSojourn, MetricsWindow};
    use queuelab_common::model::{Classes, Discipline, ServiceKind};

    /// A recorded simulation reference of mean `w` ± `h` µs whose histogram holds `sample_us`.
    fn sim_reference(w: f64, h: f64, sample_us: &[f64], n_eff: f64) -> Reference {
        let m = PointMeasurement::of_sample(sample_us, 0, |m| (m, m));
        Reference {
            kind: ReferenceKind::Simulation,
            replications: Some(10),
            customers: Some(sample_us.len() as u64 / 10),
            seed: Some(3),
            mean_us: Some(w),
            mean_half_width_us: Some(h),
            p50_us: Some(m.latency_us.p50),
            p90_us: Some(m.latency_us.p90),
            p99_us: Some(m.latency_us.p99),
            percentiles: Some(ReferenceKind::Simulation),
            blocking: Some(RefEstimate::default()),
            class_mean_us: Vec::new(),
            n_eff: Some(n_eff),
            histogram: Some(m.histogram),
        }
    }

    #[test]
    fn the_reference_a_model_needs() {
        let mm1 = model(None);
        assert_eq!(reference_need(&mm1, 500.0), Some(ReferenceNeed::Theory));
        assert_eq!(
            reference_need(&mm1.with_capacity(Some(4)), 1500.0),
            Some(ReferenceNeed::Theory)
        );
        // M/G/1 (uniform): Pollaczek–Khinchine has the mean, not the distribution.
        assert_eq!(
            reference_need(&mm1.with_service(ServiceKind::Uniform), 500.0),
            Some(ReferenceNeed::TheoryAndSimulation)
        );
        // Two servers with hyperexponential service: no closed form at all.
        let h2 = Model::new(1000.0, Servers::Finite(2)).with_service(ServiceKind::H2 { cv2: 4.0 });
        assert_eq!(reference_need(&h2, 1000.0), Some(ReferenceNeed::Simulation));
        // Unstable, or no arrivals: nothing to compare with.
        assert_eq!(reference_need(&mm1, 1500.0), None);
        assert_eq!(reference_need(&mm1, 0.0), None);
        // A closed form is a reference without simulating.
        let r = reference_at(&mm1, 500.0, &sim_options(1000, 10, 1)).expect("M/M/1");
        assert_eq!(r.kind, ReferenceKind::Theory);
        assert_eq!((r.replications, r.histogram.as_deref()), (None, None));
        assert!((r.mean_us.expect("W") - 2000.0).abs() < 1e-9);
        assert_eq!(r.percentiles, Some(ReferenceKind::Theory));
    }

    #[test]
    fn simulation_size_scales_with_the_point() {
        let o = sim_options(45_000, 10, 9);
        assert_eq!(
            (o.customers, o.warmup, o.replications, o.seed),
            (900_000, 90_000, 10, 9)
        );
        let small = sim_options(300, 1, 9);
        assert_eq!(
            (small.customers, small.replications),
            (SIM_MIN_CUSTOMERS, 2)
        );
    }

    #[test]
    fn a_point_against_a_recorded_simulation() {
        // A queue with no closed form, simulated: W = 2000 ± 20 µs, its histogram a sample of
        // Exp(2000 µs) (what the server times also follow here).
        let m = Model::new(1000.0, Servers::Finite(2)).with_service(ServiceKind::H2 { cv2: 4.0 });
        let sojourn = quantile_sample(20_000, |p| -2000.0 * (1.0 - p).ln());
        let mut rec = record(
            500.0,
            measurement(&sojourn, 0, 30.0),
            Some(measurement(&[O_US; 100], 0, 0.5)),
        );
        let means = [2015.0, 2045.0, 2030.0, 2030.0];
        with_server_timing(&mut rec, &sojourn, 0.0, &means);
        rec.reference = Some(sim_reference(1960.0, 20.0, &sojourn, 10_000.0));
        let a = analyze(&m, &rec);
        assert!(a.theory.is_none() && a.theory_note.is_some());
        let r = a.reference.as_ref().expect("the simulation");
        assert_eq!(r.kind, ReferenceKind::Simulation);
        assert!(r.histogram.is_none(), "left out of the analysis");
        assert_eq!(a.ref_label().as_deref(), Some("sim ±1.0%"));
        // The error is against the simulated mean.
        let net = a.net_mean_us.expect("net");
        let err = a.err_net.expect("error");
        assert!((err - (net - 1960.0) / 1960.0).abs() < 1e-12, "{err}");
        // The net interval's half-width: t(3)·s/2 of the four server means.
        let (lo, hi) = a.net_ci95_us.expect("interval");
        let h = (hi - lo) / 2.0;
        // net − 1960 ≈ 40: outside ±h alone when h < 40, inside √(h² + 20²) when that is ≥ 40.
        let d = ((lo + hi) / 2.0 - 1960.0).abs();
        assert_eq!(a.covers_net, Some(d <= h.hypot(20.0)));
        assert!(d > h, "the interval alone misses it: {d} vs {h}");
        // The same sample on both sides: a two-sample distance of (almost) zero, whose noise
        // adds the simulation's 1.358/√10000 to the measurement's.
        assert!(a.ks_net.expect("ks") < 1e-9, "{:?}", a.ks_net);
        let alone = ks_noise(
            rec.measured.latency_us.stdev,
            Some(30.0),
            rec.measured.completed,
            u64::from(crate::measure::BATCHES),
        )
        .expect("noise");
        let both = a.ks_noise.expect("noise");
        assert!((both - alone.hypot(0.01358)).abs() < 1e-12, "{both}");
        // The percentiles are the simulation's.
        assert_eq!(a.ref_percentiles_us()[0], r.p50_us);

        // The same sample shifted by 10% is a KS distance the reference sees.
        let shifted: Vec<f64> = sojourn.iter().map(|x| x * 1.1).collect();
        rec.reference = Some(sim_reference(1960.0, 20.0, &shifted, 10_000.0));
        let a = analyze(&m, &rec);
        // sup |F(t) − F(t/1.1)| for Exp(2000 µs): where the densities meet,
        // t = 2200·ln 1.1/0.1 = 2096.8 µs: e^{−0.9531} − e^{−1.0484} = 0.0351 (bucketing and the
        // midpoint samples move it by less than 0.002).
        let ks = a.ks_net.expect("ks");
        assert!((ks - 0.0351).abs() < 0.002, "{ks}");
    }

    #[test]
    fn the_closed_form_mean_with_the_simulated_distribution() {
        // M/G/1 (uniform service) at λ = 500: P–K W = 1/μ + λE[S²]/(2(1 − ρ)) = 1666.7 µs.
        let m = model(None).with_service(ServiceKind::Uniform);
        let sample = quantile_sample(5000, |p| 1666.7 * p * 2.0);
        let mut rec = record(500.0, measurement(&sample, 0, 30.0), None);
        let mut sim = sim_reference(1670.0, 15.0, &sample, 5000.0);
        sim.kind = ReferenceKind::Theory;
        rec.reference = Some(sim);
        let a = analyze(&m, &rec);
        let r = a.reference.as_ref().expect("reference");
        assert_eq!(r.kind, ReferenceKind::Theory);
        assert_eq!(r.percentiles, Some(ReferenceKind::Simulation));
        let w = r.mean_us.expect("W");
        assert!((w - 5000.0 / 3.0).abs() < 1e-6, "the closed form's: {w}");
        assert_eq!(r.mean_half_width_us, Some(0.0));
        assert_eq!(a.ref_label().as_deref(), Some("theory"));
        // The raw KS is against the simulated histogram: the same sample.
        assert!(a.ks_raw.expect("ks") < 1e-9);
        assert!(a.ref_percentiles_us()[1].is_some());
        // Coverage against a closed form is the interval itself.
        let (lo, hi) = a.ci95_us.expect("interval");
        assert_eq!(a.covers_raw, Some(lo <= w && w <= hi));
    }

    fn window(in_system_s: Option<f64>, edges: (f64, f64)) -> MetricsWindow {
        MetricsWindow {
            uptime_s: 10.0,
            in_system_s,
            in_system_edges: Some(edges),
            sojourn_sum_s: Some(20.0),
            sojourn_count: Some(10_000),
            classes: Vec::new(),
            measured_only: true,
        }
    }

    #[test]
    fn littles_ratio_from_the_scrape() {
        // 10 000 answers in 10 s (X = 1000/s) of mean server time 2000 µs: X·W = 2; the server
        // integrated 20 request-seconds over 10 s: L = 2.
        let server = quantile_sample(10_000, |p| -2000.0 * (1.0 - p).ln());
        let mut m = measurement(&server, 0, 40.0);
        m.duration_s = 10.0;
        let mut rec = record(1000.0, m, None);
        with_server_timing(&mut rec, &server, 20.0, &[2000.0, 2000.0]);
        let w_us = server.iter().sum::<f64>() / server.len() as f64;
        rec.metrics = Some(window(Some(20.0), (3.0, 1.0)));
        let a = analyze(&model(None), &rec);
        let l = a.little.expect("Little");
        assert_eq!((l.l, l.x), (2.0, 1000.0));
        assert!((l.w_us - w_us).abs() < 1e-9);
        assert!((l.ratio - 2.0 / (1000.0 * w_us * 1e-6)).abs() < 1e-12);
        // 3·(3 + 1 + 1)/(1000·10) + 1%.
        assert!((l.tolerance - (0.0015 + LITTLE_SLACK)).abs() < 1e-12);
        assert!(l.holds(), "{l:?}");
        // 5% more in system than X·W: beyond the edges' allowance.
        rec.metrics = Some(window(Some(21.0 * w_us / 2000.0), (3.0, 1.0)));
        let l = analyze(&model(None), &rec).little.expect("Little");
        assert!((l.ratio - 1.05).abs() < 1e-9 && !l.holds(), "{l:?}");
        assert_eq!(summarize(&[analyze(&model(None), &rec)]).little_compared, 1);
        // The 503s are not in X (nor in the system).
        rec.measured.blocked = 2000;
        let l = analyze(&model(None), &rec).little.expect("Little");
        assert_eq!(l.x, 800.0);
        // A window with the warm-up in it allows for it.
        rec.warmup_s = 1.0;
        let mut w = window(Some(20.0), (3.0, 1.0));
        w.measured_only = false;
        rec.metrics = Some(w);
        let l2 = analyze(&model(None), &rec).little.expect("Little");
        assert!((l2.tolerance - l.tolerance - 0.1).abs() < 1e-12);
        // No integral (an older qserve), or no scrape: no ratio.
        rec.metrics = Some(window(None, (0.0, 0.0)));
        assert_eq!(analyze(&model(None), &rec).little, None);
        rec.metrics = None;
        assert_eq!(analyze(&model(None), &rec).little, None);
    }

    #[test]
    fn classes_from_the_scrape_against_the_reference() {
        let classes = Classes::new(&[0.3, 0.7]).expect("classes");
        let m = model(None)
            .with_discipline(Discipline::Priority)
            .with_classes(classes);
        let mut rec = record(500.0, measurement(&[2000.0; 100], 0, 10.0), None);
        let mut w = window(Some(10.0), (1.0, 1.0));
        w.classes = vec![
            ClassSojourn {
                class: 0,
                sum_s: 1.5,
                count: 1000,
            },
            ClassSojourn {
                class: 1,
                sum_s: 4.9,
                count: 2000,
            },
            ClassSojourn {
                class: 2,
                sum_s: 0.0,
                count: 0,
            },
        ];
        rec.metrics = Some(w.clone());
        let mut r = sim_reference(2000.0, 20.0, &[2000.0; 100], 100.0);
        r.class_mean_us = vec![
            RefEstimate {
                value: 1520.0,
                half_width: 10.0,
            },
            RefEstimate {
                value: 2400.0,
                half_width: 30.0,
            },
        ];
        rec.reference = Some(r);
        let a = analyze(&m, &rec);
        assert_eq!(a.classes.len(), 2, "a class with no requests is left out");
        assert_eq!((a.classes[0].class, a.classes[0].count), (0, 1000));
        assert!((a.classes[0].mean_us - 1500.0).abs() < 1e-9);
        assert!((a.classes[1].mean_us - 2450.0).abs() < 1e-9);
        assert_eq!(a.classes[0].reference_us, Some(1520.0));
        assert_eq!(a.classes[1].reference_half_width_us, Some(30.0));

        // Classes that only label requests (FCFS): each class's reference is W itself.
        let fcfs = model(None).with_classes(classes);
        let mut plain = record(500.0, measurement(&[2000.0; 100], 0, 10.0), None);
        plain.metrics = Some(w);
        let a = analyze(&fcfs, &plain);
        assert_eq!(a.classes.len(), 2);
        for c in &a.classes {
            assert!((c.reference_us.expect("W") - 2000.0).abs() < 1e-9, "{c:?}");
            assert_eq!(c.reference_half_width_us, Some(0.0));
        }
        // One class, no discipline by class: no per-class rows.
        assert!(analyze(&model(None), &plain).classes.is_empty());
    }

    #[test]
    fn references_are_cached_per_model_and_rate() {
        let mut cache = SimCache::default();
        // M/M/1 needs no simulation: cached as the closed form.
        let opts = sim_options(10, 2, 1);
        let r = cache.reference(&model(None), 500.0, &opts).expect("theory");
        assert_eq!(r.map(|r| r.kind), Some(ReferenceKind::Theory));
        assert_eq!(cache.entries.len(), 1);
        assert!(cache.reference(&model(None), 500.0, &opts).is_ok());
        assert_eq!(cache.entries.len(), 1, "from the cache");
    }

    /// The simulator against the closed form, through the lab's use of it (needs the simulator).
    #[test]
    fn a_simulated_reference_of_mm1_agrees_with_theory() {
        // M/M/1 at ρ = 0.5, μ = 1000/s: W = 2000 µs, p50 = W·ln 2. Four replications of 10⁵
        // customers: the asymptotic variance of the mean sojourn of M/M/1 at ρ = 0.5 is about
        // 3·10⁻⁵ s² per customer, so over 4·10⁵ customers the mean's standard deviation is about
        // 9 µs; 60 µs (3%) is more than six of them. The median is as precise; the KS distance of
        // ~5·10⁴ effective samples has a standard deviation of about 0.004, and 0.02 is five.
        let m = model(None);
        let opts = sim_options(5000, 4, 11);
        let s = simulated_reference(&sim::simulate_open(&m, 500.0, &opts), &opts);
        assert_eq!(s.kind, ReferenceKind::Simulation);
        assert_eq!((s.replications, s.customers), (Some(4), Some(100_000)));
        let w = s.mean_us.expect("mean");
        assert!((w - 2000.0).abs() < 60.0, "{w}");
        let h = s.mean_half_width_us.expect("half-width");
        assert!(h > 0.0 && h < 60.0, "{h}");
        let p50 = s.p50_us.expect("p50");
        assert!((p50 / (2000.0 * 2f64.ln()) - 1.0).abs() < 0.03, "{p50}");
        let hist = decode(s.histogram.as_deref().expect("histogram")).expect("decodes");
        let cdf = theory_cdf_us(&m, 500.0).expect("M/M/1 CDF");
        let ks = stats::ks_histogram(&hist, |t| cdf(t * 1e6));
        assert!(ks < 0.02, "{ks}");
        assert!(s.n_eff.expect("n_eff") > 1000.0);

        // As a point's reference, a model with a closed form only for its mean (M/G/1) gets
        // the simulated percentiles.
        let g = m.with_service(ServiceKind::Uniform);
        let r = reference_at(&g, 500.0, &opts).expect("M/G/1");
        assert_eq!(r.kind, ReferenceKind::Theory);
        assert_eq!(r.percentiles, Some(ReferenceKind::Simulation));
        assert!(r.histogram.is_some() && r.replications == Some(4));
    }
}
