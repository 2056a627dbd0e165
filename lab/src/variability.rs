//! Variability sweeps (`qlab sweep --cv2 0,0.25,1,4,16 --rho 0.7`): one load ρ, one service
//! distribution per point, each with its own squared coefficient of variation C² (and mean
//! 1/μ), to show what variability alone costs: by Pollaczek–Khinchine, the M/G/1 mean sojourn is
//! W = 1/μ + λ(1 + C²)/(2μ²(1 − ρ)), linear in C², and the tail grows faster still.
//!
//! The family (`--service`) names the distributions:
//!
//! - `h2` (the default, or any of const, Erlang, exp, H2 given with `--service`): C² = 0 is
//!   `const`, C² = 1/k for an integer k ≥ 2 is `erlang:k`, C² = 1 is `exp`, C² > 1 is `h2:C²`;
//!   any other C² below 1 is refused (no member of the family has it);
//! - `lognormal`: every C² > 0 is `lognormal:C²`; C² = 0 is refused.
//!
//! Each point restarts qserve with its service (and its zero-service twin) and is an ordinary
//! open point of the load sweep ([`crate::sweep`]: the same measurement, self-checks and
//! re-runs, and [`crate::analysis::analyze`] with the point's own model), recorded with its
//! model in the `variability` section of `results.json`. Its reference is the simulator's mean
//! and 99th percentile at the point's λ (`queuelab_common::sim::simulate_open`), with their 95%
//! intervals over replications; where the simulator gives none, the theory's p99 if the model
//! has one. The warm-up ("auto") scales the M/M/c relaxation time of [`crate::sweep`] by
//! (1 + C²)/2: in heavy traffic the queue behaves as a reflected Brownian motion whose variance,
//! and so relaxation time, grows with (C_a² + C_s²)/2, with C_a² = 1 for Poisson arrivals.
//!
//! The plot, `mean_vs_cv2.svg`: the measured mean (net, with its 95% interval) and p99 (net)
//! against C², the Pollaczek–Khinchine line through them (c = 1; with c > 1 the
//! (1 + C²)/2 · W_q(M/M/c) approximation, named so), and the reference p99s with their intervals.
//! The C² axis is logarithmic when the positive C² span a decade or more, with C² = 0 placed a
//! decade below the smallest positive one (the axis is broken there, and its tick says 0); the
//! time axis is logarithmic when the values span more than a factor 20.
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use queuelab_common::model::{Load, Model, Servers, ServiceKind};
use queuelab_common::sim::{self, SimOptions};
use queuelab_common::theory;

use crate::analysis::{self, PointAnalysis};
use crate::closed::panic_text;
use crate::progress::SweepLog;
use crate::record::{
    OpenReference, ResultsFile, VariabilityPoint, VariabilitySweep, Verdict, write_atomic,
};
use crate::report::{INDEX_HTML, RESULTS_CSV, TABLE_TXT};
use crate::servers::{LocalServers, ServerPlan};
use crate::svg::{Axis, Chart, Marker, PALETTE, Point, Series, Style};
use crate::sweep::{self, SweepPlan, Warmup};

/// File name of the plot.
pub const CV2_SVG: &str = "mean_vs_cv2.svg";

/// The family the services of a variability sweep come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// const (C² = 0), Erlang (1/k), exp (1), H2 (> 1).
    H2,
    /// Lognormal (any C² > 0).
    Lognormal,
}

impl Family {
    /// `h2` or `lognormal`, as recorded.
    pub fn name(self) -> &'static str {
        match self {
            Family::H2 => "h2",
            Family::Lognormal => "lognormal",
        }
    }

    /// The family of a `--service` given with `--cv2` (`None`: the default, h2). Its parameter,
    /// if any, is replaced by the sweep's C² values.
    pub fn of_service(service: Option<ServiceKind>) -> Result<Family, String> {
        match service {
            None
            | Some(
                ServiceKind::H2 { .. }
                | ServiceKind::Exp
                | ServiceKind::Const
                | ServiceKind::Erlang(_),
            ) => Ok(Family::H2),
            Some(ServiceKind::Lognormal { .. }) => Ok(Family::Lognormal),
            Some(other) => Err(format!(
                "--cv2 varies the h2 family (const, erlang, exp, h2) or lognormal; --service \
                 {other} has no C² to vary"
            )),
        }
    }

    /// What makes each C² (for the page's setup).
    pub fn members(self) -> &'static str {
        match self {
            Family::H2 => "C² = 0: const, 1/k: erlang:k, 1: exp, above 1: h2:C²",
            Family::Lognormal => "lognormal:C² for every C² > 0",
        }
    }

    /// Reads a recorded family name.
    pub fn parse(name: &str) -> Result<Family, String> {
        match name {
            "h2" => Ok(Family::H2),
            "lognormal" => Ok(Family::Lognormal),
            _ => Err(format!("unknown service family {name:?}")),
        }
    }
}

/// How far from 1/k a C² below 1 may be and still be Erlang's (relative): decimal input such as
/// 0.333333 for 1/3 is accepted, 0.3 is not.
const ERLANG_TOLERANCE: f64 = 1e-4;

/// The service of `family` with squared coefficient of variation `cv2`, or why there is none.
pub fn service_for(family: Family, cv2: f64) -> Result<ServiceKind, String> {
    if !(cv2.is_finite() && cv2 >= 0.0) {
        return Err(format!(
            "C² = {cv2} is not a squared coefficient of variation"
        ));
    }
    match family {
        Family::Lognormal if cv2 == 0.0 => {
            Err("C² = 0: a lognormal service always varies (use the h2 family for const)".into())
        }
        Family::Lognormal => Ok(ServiceKind::Lognormal { cv2 }),
        Family::H2 if cv2 == 0.0 => Ok(ServiceKind::Const),
        Family::H2 if cv2 == 1.0 => Ok(ServiceKind::Exp),
        Family::H2 if cv2 > 1.0 => Ok(ServiceKind::H2 { cv2 }),
        Family::H2 => {
            let k = (1.0 / cv2).round();
            if k >= 2.0 && k <= f64::from(u32::MAX) && (k * cv2 - 1.0).abs() <= ERLANG_TOLERANCE {
                Ok(ServiceKind::Erlang(k as u32))
            } else {
                Err(format!(
                    "C² = {cv2}: below 1 the h2 family has only 1/k (Erlang with k phases: 0.5, \
                     0.333…, 0.25, …) and 0 (const); use --service lognormal for any C² > 0"
                ))
            }
        }
    }
}

/// The name of a variability sweep's queue: no one service names it, so it is the general
/// M/G/c (with the discipline's suffix) and the family, `M/G/1 with the h2 family`. The first
/// point's model (`M/D/1` for C² = 0) would name one point only.
pub fn family_model_name(base: &Model, family: &str) -> String {
    format!(
        "M/G/{}{} with the {family} family",
        base.servers,
        base.discipline.suffix()
    )
}

/// The C² values as a list, `0, 1, 4, 16`.
pub fn cv2_list(cv2: &[f64]) -> String {
    cv2.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A validated variability sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct VariabilityPlan {
    /// The load per server of every point.
    pub rho: f64,
    /// The family.
    pub family: Family,
    /// The C² values, in order.
    pub cv2: Vec<f64>,
    /// The service of each.
    pub services: Vec<ServiceKind>,
    /// How much the simulator runs for each reference.
    pub sim: SimOptions,
}

impl VariabilityPlan {
    /// The plan of `cv2` in `family` at `rho`; refuses every value the family cannot make,
    /// naming them all.
    pub fn new(family: Family, rho: f64, cv2: &[f64]) -> Result<Self, String> {
        if cv2.is_empty() {
            return Err("--cv2 needs at least one value".into());
        }
        if !(rho.is_finite() && rho > 0.0 && rho < 1.0) {
            return Err(format!(
                "--rho {rho}: a variability sweep needs a stable open queue, 0 < ρ < 1"
            ));
        }
        let (services, bad): (Vec<_>, Vec<_>) = cv2
            .iter()
            .map(|&c| service_for(family, c))
            .partition(Result::is_ok);
        if !bad.is_empty() {
            let why: Vec<String> = bad.into_iter().filter_map(Result::err).collect();
            return Err(format!(
                "--cv2 for the {} family: {}",
                family.name(),
                why.join("; ")
            ));
        }
        Ok(VariabilityPlan {
            rho,
            family,
            cv2: cv2.to_vec(),
            services: services.into_iter().filter_map(Result::ok).collect(),
            sim: SimOptions::default(),
        })
    }

    /// What the sweep's first log line names: `M/G/1 with the h2 family (C² = 0, 1, 4, 16 at
    /// ρ = 0.7)`, for the queue `base` (whose service is any point's).
    pub fn describe(&self, base: &Model) -> String {
        format!(
            "{} (C² = {} at ρ = {})",
            family_model_name(base, self.family.name()),
            cv2_list(&self.cv2),
            self.rho
        )
    }
}

/// The mean sojourn the Pollaczek–Khinchine formula gives `model`'s servers and capacity with
/// a service of squared coefficient of variation `cv2` at `lambda` (s): exact for one server,
/// W = 1/μ + λ(1 + C²)/(2μ²(1 − ρ)); with c servers the approximation
/// 1/μ + (1 + C²)/2 · W_q(M/M/c) (which is exact at C² = 1). `None` with a capacity, infinitely
/// many servers or ρ ≥ 1. The bool says whether the value is exact.
pub fn pk_mean_s(model: &Model, lambda: f64, cv2: f64) -> Option<(f64, bool)> {
    if model.capacity.is_some() {
        return None;
    }
    let Servers::Finite(c) = model.servers else {
        return None;
    };
    let mu = model.mu;
    let rho = lambda / (f64::from(c) * mu);
    if !(rho > 0.0 && rho < 1.0) {
        return None;
    }
    if c == 1 {
        return Some((
            1.0 / mu + lambda * (1.0 + cv2) / (2.0 * mu * mu * (1.0 - rho)),
            true,
        ));
    }
    let a = lambda / mu;
    let wq_mmc = theory::erlang_c(c, a) / (f64::from(c) * mu - lambda);
    Some((1.0 / mu + (1.0 + cv2) / 2.0 * wq_mmc, false))
}

/// The simulated reference of `model` at `lambda`, or why there is none (a panic of the
/// simulator is caught: a missing reference must not lose a measured sweep).
pub fn reference(model: &Model, lambda: f64, opts: &SimOptions) -> Result<OpenReference, String> {
    let s = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sim::simulate_open(model, lambda, opts)
    }))
    .map_err(|p| format!("the simulator failed: {}", panic_text(p.as_ref())))?;
    Ok(OpenReference {
        source: format!("simulation, {} replications", s.replications),
        mean_s: s.mean_s.value,
        mean_half_s: s.mean_s.half_width,
        p99_s: s.p99_s.value,
        p99_half_s: s.p99_s.half_width,
    })
}

/// The warm-up of a point: a fixed one as given, else the load sweep's rule at ρ with the
/// relaxation time scaled by (1 + C²)/2 (see the module docs), within the same bounds.
pub fn warmup_for(plan: &SweepPlan, model: &Model, rho: f64, cv2: f64) -> std::time::Duration {
    let scale = ((1.0 + cv2) / 2.0).max(0.5);
    let tau = sweep::relaxation_s(model, rho) * scale;
    let secs = match plan.warmup {
        Warmup::Fixed(d) => return d,
        Warmup::Auto => (4.0 * tau).clamp(1.0, 10.0),
        Warmup::Quick => (2.0 * tau).clamp(0.3, 3.0),
    };
    std::time::Duration::from_secs_f64(secs)
}

/// Sending time of a variability sweep.
pub fn sending_time(plan: &SweepPlan, vp: &VariabilityPlan) -> std::time::Duration {
    vp.services
        .iter()
        .zip(&vp.cv2)
        .map(|(&s, &c)| {
            let m = plan.model.with_service(s);
            let o = if plan.overhead_url.is_some() {
                plan.overhead_duration + plan.overhead_warmup
            } else {
                std::time::Duration::ZERO
            };
            plan.duration + warmup_for(plan, &m, vp.rho, c) + o
        })
        .sum()
}

/// What [`report`] wrote.
#[derive(Debug, Clone)]
pub struct VariabilityOutput {
    /// The table as printed.
    pub table: String,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Runs a variability sweep: for each C², starts qserve (and its twin) with the point's
/// service, measures it as an open point, stops them; `results.json` is kept up to date; then
/// the report. `servers` is how to start them (the sweep cannot restart a server at a URL).
pub fn sweep(
    plan: &SweepPlan,
    vp: &VariabilityPlan,
    servers: &ServerPlan,
    log: &mut dyn SweepLog,
) -> anyhow::Result<VariabilityOutput> {
    sweep::create_fresh_dir(&plan.out)?;
    let mut file = sweep::new_results_file(plan);
    file.config.rhos = vec![vp.rho];
    file.config.service = vp
        .services
        .iter()
        .map(ToString::to_string)
        .find(|s| s.parse::<ServiceKind>().is_ok())
        .unwrap_or_else(|| "exp".into());
    file.variability = Some(VariabilitySweep {
        rho: vp.rho,
        family: vp.family.name().into(),
        cv2: vp.cv2.clone(),
        points: Vec::with_capacity(vp.cv2.len()),
    });
    file.write(&plan.out)?;
    let n = vp.cv2.len();
    for (i, (&cv2, &service)) in vp.cv2.iter().zip(&vp.services).enumerate() {
        let model = plan.model.with_service(service);
        let rec = measure_one(plan, vp, servers, i, cv2, model, log).map_err(|e| {
            if file
                .variability
                .as_ref()
                .is_some_and(|v| !v.points.is_empty())
            {
                let _ = report(&plan.out);
            }
            e.context(format!(
                "point {} of {n} (C² = {cv2}, --service {service}); the points before it are \
                 in {}",
                i + 1,
                plan.out.display()
            ))
        })?;
        let a = analysis::analyze(&model, &rec.point);
        log.line(&format!(
            "[{}/{n}] C² = {cv2} ({}): mean {} µs net, Pollaczek–Khinchine {} µs, p99 {} µs net{}",
            i + 1,
            rec.model,
            opt(a.net_mean_us.or(a.mean_us), 1),
            opt(
                pk_mean_s(&model, rec.point.lambda, cv2).map(|(w, _)| w * 1e6),
                1
            ),
            opt(p99_net_us(&rec, &a), 1),
            if a.failed() {
                ", FAILED its checks"
            } else {
                ""
            }
        ));
        if let Some(v) = file.variability.as_mut() {
            v.points.push(rec);
        }
        file.write(&plan.out)?;
        log.point_done();
    }
    report(&plan.out)
}

fn measure_one(
    plan: &SweepPlan,
    vp: &VariabilityPlan,
    servers: &ServerPlan,
    i: usize,
    cv2: f64,
    model: Model,
    log: &mut dyn SweepLog,
) -> anyhow::Result<VariabilityPoint> {
    let sp = ServerPlan {
        model,
        ..servers.clone()
    };
    let local =
        LocalServers::start(&sp).with_context(|| format!("starting qserve for {model:?}"))?;
    // The servers inherited the servers' CPUs from this thread; the client goes back to its own.
    if !plan.client_cpus.is_empty() {
        queuelab_os::affinity::set_current(&plan.client_cpus).context("pinning the client")?;
    }
    let mut p = plan.clone();
    p.model = model;
    p.url = local.queue.url();
    if p.overhead_url.is_some() {
        p.overhead_url = Some(local.twin.url());
    }
    p.warmup = Warmup::Fixed(warmup_for(plan, &model, vp.rho, cv2));
    // The point's label counts the sweep's points.
    p.rhos = vec![vp.rho; vp.cv2.len()];
    let point = sweep::measure_point(
        &p,
        i,
        vp.rho,
        &mut crate::analysis::SimCache::default(),
        log,
    )?;
    drop(local);
    let reference = match reference(&model, point.lambda, &vp.sim) {
        Ok(r) => Some(r),
        Err(e) => {
            log.line(&format!("C² = {cv2}: no simulated reference: {e}"));
            None
        }
    };
    Ok(VariabilityPoint {
        cv2,
        service: model.service.to_string(),
        model: model.name(),
        point,
        reference,
    })
}

/// The 99th percentile of the server's own time (µs): from `Server-Timing` when the answers
/// carried it, else the raw p99 less the mean overhead.
pub fn p99_net_us(rec: &VariabilityPoint, a: &PointAnalysis) -> Option<f64> {
    match rec.point.raw.server_us.as_ref().filter(|s| s.count > 0) {
        Some(s) => Some(s.p99),
        None => a.p99_us.map(|p| p - a.overhead_mean_us.unwrap_or(0.0)),
    }
}

/// One point of a variability sweep, analysed.
#[derive(Debug, Clone)]
pub struct VariabilityAnalysis {
    /// C².
    pub cv2: f64,
    /// The service's flag spelling.
    pub service: String,
    /// The open point's analysis with the point's own model.
    pub point: PointAnalysis,
    /// Pollaczek–Khinchine's mean (µs), and whether it is exact (one server).
    pub pk_mean_us: Option<(f64, bool)>,
    /// Whether the net interval of the mean holds it.
    pub covers_pk: Option<bool>,
    /// The net p99 (µs).
    pub p99_net_us: Option<f64>,
    /// The reference p99 and its half-width (µs; no half-width from theory), and its source.
    pub reference_p99_us: Option<(f64, Option<f64>, String)>,
}

impl VariabilityAnalysis {
    /// The mean the table shows: net, else raw (no overhead run, no Server-Timing).
    pub fn mean_us(&self) -> Option<f64> {
        self.point.net_mean_us.or(self.point.mean_us)
    }

    /// Its 95% interval.
    pub fn ci95_us(&self) -> Option<(f64, f64)> {
        self.point.net_ci95_us.or(self.point.ci95_us)
    }

    /// (mean − W(PK))/W(PK).
    pub fn err_pk(&self) -> Option<f64> {
        self.mean_us()
            .zip(self.pk_mean_us)
            .filter(|(_, (w, _))| *w > 0.0)
            .map(|(m, (w, _))| m / w - 1.0)
    }
}

/// The model of a recorded variability point: the sweep's queue with the point's service.
pub fn point_model(base: &Model, family: Family, p: &VariabilityPoint) -> anyhow::Result<Model> {
    let s = service_for(family, p.cv2).map_err(anyhow::Error::msg)?;
    Ok(base.with_service(s))
}

/// Analyses a recorded variability sweep.
pub fn analyze(base: &Model, v: &VariabilitySweep) -> anyhow::Result<Vec<VariabilityAnalysis>> {
    let family = Family::parse(&v.family).map_err(anyhow::Error::msg)?;
    v.points
        .iter()
        .map(|p| {
            let model = point_model(base, family, p)?;
            let a = analysis::analyze(&model, &p.point);
            let pk = pk_mean_s(&model, p.point.lambda, p.cv2).map(|(w, e)| (w * 1e6, e));
            let covers_pk = pk.and_then(|(w, _)| {
                a.net_ci95_us
                    .or(a.ci95_us)
                    .map(|(lo, hi)| lo <= w && w <= hi)
            });
            let reference_p99_us = match &p.reference {
                Some(r) => Some((r.p99_s * 1e6, Some(r.p99_half_s * 1e6), r.source.clone())),
                None => a
                    .theory
                    .as_ref()
                    .and_then(|t| t.p99_us)
                    .map(|p| (p, None, "theory".to_owned())),
            };
            Ok(VariabilityAnalysis {
                cv2: p.cv2,
                service: p.service.clone(),
                p99_net_us: p99_net_us(p, &a),
                point: a,
                pk_mean_us: pk,
                covers_pk,
                reference_p99_us,
            })
        })
        .collect()
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

/// The text table of a variability sweep (times in µs).
pub fn table(base: &Model, v: &VariabilitySweep, points: &[VariabilityAnalysis]) -> String {
    let mut s = format!(
        "{}: variability sweep over C² = {} at ρ = {}: μ = {}/s, c = {}; each point its own \
         service, W(PK) = 1/μ + λ(1 + C²)/(2μ²(1 − ρ))\n",
        family_model_name(base, &v.family),
        cv2_list(&v.cv2),
        v.rho,
        base.mu,
        base.servers
    );
    if points.len() < v.cv2.len() {
        s.push_str(&format!(
            "incomplete: {} of {} points measured\n",
            points.len(),
            v.cv2.len()
        ));
    }
    s.push_str(&format!(
        "\n{:>7} {:>14} {:>9} {:>10} {:>10} {:>22} {:>6} {:>8} {:>10} {:>20} {:>7}\n",
        "C²",
        "service",
        "λ/s",
        "W(PK)",
        "net",
        "net 95% CI",
        "W in",
        "err",
        "p99 net",
        "p99 ref",
        "checks"
    ));
    for a in points {
        let p = &a.point;
        let ci = a.ci95_us();
        let mean = a.mean_us();
        let err = a.err_pk().map(|e| format!("{:+.2}%", e * 100.0));
        s.push_str(&format!(
            "{:>7} {:>14} {:>9.1} {:>10} {:>10} {:>22} {:>6} {:>8} {:>10} {:>20} {:>7}\n",
            a.cv2,
            a.service,
            p.lambda,
            opt(a.pk_mean_us.map(|w| w.0), 1),
            opt(mean, 1),
            ci.map_or_else(|| "–".into(), |(l, h)| format!("[{l:.1}, {h:.1}]")),
            match a.covers_pk {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "–",
            },
            err.unwrap_or_else(|| "–".into()),
            opt(a.p99_net_us, 1),
            match &a.reference_p99_us {
                Some((v, Some(h), _)) => format!("{v:.1} ± {h:.1}"),
                Some((v, None, _)) => format!("{v:.1} (theory)"),
                None => "–".into(),
            },
            match (p.verdict, p.attempts) {
                (Some(Verdict::Failed), _) => "FAILED".to_owned(),
                (Some(Verdict::Ok), n) if n > 1 => format!("ok ({n})"),
                (Some(Verdict::Ok), _) => "ok".to_owned(),
                (None, _) => "–".to_owned(),
            },
        ));
    }
    let with: Vec<bool> = points.iter().filter_map(|a| a.covers_pk).collect();
    s.push_str(&format!(
        "Summary: the net 95% interval holds the Pollaczek–Khinchine mean at {} of {} points{}; \
         p99 ref is the simulator's, ± its 95% half-width over replications\n",
        with.iter().filter(|&&c| c).count(),
        with.len(),
        if points.iter().any(|a| a.pk_mean_us.is_some_and(|w| !w.1)) {
            " (c > 1: the (1 + C²)/2 · W_q(M/M/c) approximation)"
        } else {
            ""
        }
    ));
    for a in points {
        if let Some(n) = a.point.all_notes() {
            s.push_str(&format!("note C² = {}: {n}\n", a.cv2));
        }
    }
    s
}

/// Where each C² goes on the x axis, and the ticks (see the module docs).
#[derive(Debug, Clone)]
pub struct Cv2Axis {
    /// Logarithmic (positions are log10 C², C² = 0 a decade below the smallest positive).
    pub log: bool,
    zero_at: f64,
}

impl Cv2Axis {
    /// The axis for the swept values `cv2`.
    pub fn for_values(cv2: &[f64]) -> Self {
        let pos: Vec<f64> = cv2.iter().copied().filter(|&c| c > 0.0).collect();
        let lo = pos.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = pos.iter().copied().fold(0.0, f64::max);
        let log = pos.len() >= 2 && hi / lo >= 10.0;
        Cv2Axis {
            log,
            zero_at: if log { lo.log10() - 1.0 } else { 0.0 },
        }
    }

    /// The position of `cv2`.
    pub fn at(&self, cv2: f64) -> f64 {
        if !self.log {
            cv2
        } else if cv2 > 0.0 {
            cv2.log10()
        } else {
            self.zero_at
        }
    }
}

/// A log axis for times: positions log10 of the value, ticks at 1, 2, 5 × 10^k labelled with
/// the value.
fn log_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let mut out = Vec::new();
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    for k in a..=b {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(k);
            if v >= lo * 0.999 && v <= hi * 1.001 {
                let label = if v >= 1.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v}")
                };
                out.push((v.log10(), label));
            }
        }
    }
    out
}

/// Tick positions and labels of an axis, for [`Chart::render_with_ticks`].
pub type Ticks = Vec<(f64, String)>;

/// The plot of a variability sweep: (chart, x ticks, y ticks) for
/// [`Chart::render_with_ticks`].
pub fn chart(
    base: &Model,
    v: &VariabilitySweep,
    points: &[VariabilityAnalysis],
    subtitle: &str,
) -> (Chart, Option<Ticks>, Option<Ticks>) {
    let xs = Cv2Axis::for_values(&v.cv2);
    let lambda = base.lambda(Load::Rho(v.rho));
    let values_us: Vec<f64> = points
        .iter()
        .flat_map(|a| {
            [
                a.point.net_mean_us.or(a.point.mean_us),
                a.point.net_ci95_us.map(|c| c.1),
                a.point.net_ci95_us.map(|c| c.0),
                a.p99_net_us,
                a.reference_p99_us
                    .as_ref()
                    .map(|r| r.0 + r.1.unwrap_or(0.0)),
                a.pk_mean_us.map(|w| w.0),
            ]
        })
        .flatten()
        .chain(
            v.cv2
                .iter()
                .filter_map(|&c| pk_mean_s(base, lambda, c).map(|w| w.0 * 1e6)),
        )
        .filter(|x| x.is_finite() && *x > 0.0)
        .collect();
    let lo = values_us.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values_us.iter().copied().fold(0.0, f64::max);
    let (scale, unit) = if hi >= 2000.0 {
        (1e-3, "ms")
    } else {
        (1.0, "µs")
    };
    let log_y = lo.is_finite() && hi / lo > 20.0;
    let y = |us: f64| {
        let v = us * scale;
        if log_y { v.max(1e-9).log10() } else { v }
    };
    let mut series = Vec::new();
    // Pollaczek–Khinchine: a curve over the positive C² (on a log axis), and its value at 0.
    let cmax = v.cv2.iter().copied().fold(0.0, f64::max).max(1e-9);
    let cmin = v
        .cv2
        .iter()
        .copied()
        .filter(|&c| c > 0.0)
        .fold(f64::INFINITY, f64::min);
    let grid: Vec<f64> = if xs.log {
        (0..=120)
            .map(|k| cmin * (cmax / cmin).powf(f64::from(k) / 120.0))
            .collect()
    } else {
        (0..=120).map(|k| cmax * f64::from(k) / 120.0).collect()
    };
    let exact = pk_mean_s(base, lambda, 1.0).is_some_and(|w| w.1);
    let pk_label = if exact {
        "Pollaczek–Khinchine W"
    } else {
        "(1 + C²)/2 · Wq(M/M/c) + 1/μ"
    };
    let pk: Vec<Point> = grid
        .iter()
        .filter_map(|&c| pk_mean_s(base, lambda, c).map(|w| Point::new(xs.at(c), y(w.0 * 1e6))))
        .collect();
    if !pk.is_empty() {
        series.push(Series {
            id: "pk".into(),
            label: pk_label.into(),
            color: PALETTE[0].into(),
            style: Style::Line { dashed: true },
            points: pk,
        });
    }
    if xs.log
        && v.cv2.contains(&0.0)
        && let Some((w, _)) = pk_mean_s(base, lambda, 0.0)
    {
        let z = xs.at(0.0);
        series.push(Series {
            id: "pk-zero".into(),
            label: format!("{pk_label} at C² = 0"),
            color: PALETTE[0].into(),
            style: Style::Line { dashed: true },
            points: vec![
                Point::new(z - 0.15, y(w * 1e6)),
                Point::new(z + 0.15, y(w * 1e6)),
            ],
        });
    }
    let bar = |ci: Option<(f64, f64)>| ci.map(|(l, h)| (y(l.max(1e-9)), y(h.max(1e-9))));
    series.push(Series {
        id: "measured-mean".into(),
        label: "measured mean (net), 95% CI".into(),
        color: PALETTE[1].into(),
        style: Style::Markers(Marker::Circle),
        points: points
            .iter()
            .filter_map(|a| {
                let m = a.point.net_mean_us.or(a.point.mean_us)?;
                Some(Point {
                    x: xs.at(a.cv2),
                    y: y(m),
                    err: bar(a.point.net_ci95_us.or(a.point.ci95_us)),
                })
            })
            .collect(),
    });
    series.push(Series {
        id: "measured-p99".into(),
        label: "measured p99 (net)".into(),
        color: PALETTE[2].into(),
        style: Style::Markers(Marker::Square),
        points: points
            .iter()
            .filter_map(|a| a.p99_net_us.map(|p| Point::new(xs.at(a.cv2), y(p))))
            .collect(),
    });
    let refs: Vec<Point> = points
        .iter()
        .filter_map(|a| {
            let (p, h, _) = a.reference_p99_us.as_ref()?;
            Some(Point {
                x: xs.at(a.cv2),
                y: y(*p),
                err: h.map(|h| (y((p - h).max(1e-9)), y(p + h))),
            })
        })
        .collect();
    if !refs.is_empty() {
        series.push(Series {
            id: "reference-p99".into(),
            label: "reference p99 (simulation), 95% CI".into(),
            color: PALETTE[3].into(),
            style: Style::Markers(Marker::Diamond),
            points: refs,
        });
    }
    let (x_axis, x_ticks) = if xs.log {
        let a = xs.at(0.0).min(cmin.log10()) - 0.3;
        let b = cmax.log10() + 0.3;
        let mut vals = v.cv2.clone();
        vals.sort_by(f64::total_cmp);
        vals.dedup();
        let ticks = vals.iter().map(|&c| (xs.at(c), format!("{c}"))).collect();
        (
            Axis::fixed("service variability C² (log scale; 0 set apart)", a, b),
            Some(ticks),
        )
    } else {
        (
            Axis::auto("service variability C²", 0.0, cmax * 1.05, true),
            None,
        )
    };
    let (y_axis, y_ticks) = if log_y {
        let (a, b) = (lo * scale / 1.3, hi * scale * 1.3);
        (
            Axis::fixed(
                format!("response time ({unit}, log scale)"),
                a.log10(),
                b.log10(),
            ),
            Some(log_ticks(a, b)),
        )
    } else {
        let top = if hi > 0.0 { hi * scale * 1.1 } else { 1.0 };
        (
            Axis::auto(format!("response time ({unit})"), 0.0, top, true),
            None,
        )
    };
    let notes = vec![format!("ρ = {} at every point, λ = {lambda:.1}/s", v.rho)];
    (
        Chart {
            id: "mean-vs-cv2".into(),
            title: format!(
                "{}: response time against service variability",
                family_model_name(base, &v.family)
            ),
            subtitle: subtitle.to_owned(),
            x: x_axis,
            y: y_axis,
            series,
            notes,
        },
        x_ticks,
        y_ticks,
    )
}

/// The CSV of a variability sweep, `results.csv`: one row per C² with the numbers of its table
/// row (times in µs, errors as fractions, empty where a value does not exist; `pk_exact` says
/// whether W(PK) is exact, one server, or the (1 + C²)/2 approximation).
/// `verdict`, `attempts` and `failed_checks` are the load sweep's columns, filled as there.
pub fn csv(points: &[VariabilityAnalysis]) -> anyhow::Result<String> {
    let load_cell = |name: &str, p: &PointAnalysis| {
        crate::table::CSV_COLUMNS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(String::new, |(_, cell)| cell(p))
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "cv2",
        "service",
        "lambda",
        "achieved_rate",
        "pk_mean_us",
        "pk_exact",
        "mean_us",
        "net_mean_us",
        "net_ci95_low_us",
        "net_ci95_high_us",
        "covers_pk",
        "err_pk",
        "p99_net_us",
        "ref_p99_us",
        "ref_p99_half_us",
        "reference",
        "verdict",
        "attempts",
        "failed_checks",
    ])?;
    let f = |v: Option<f64>| {
        v.filter(|v| v.is_finite())
            .map_or_else(String::new, |v| v.to_string())
    };
    let b = |v: Option<bool>| v.map_or_else(String::new, |v| v.to_string());
    for a in points {
        let p = &a.point;
        let r = a.reference_p99_us.as_ref();
        w.write_record([
            a.cv2.to_string(),
            a.service.clone(),
            p.lambda.to_string(),
            p.achieved_rate.to_string(),
            f(a.pk_mean_us.map(|w| w.0)),
            b(a.pk_mean_us.map(|w| w.1)),
            f(p.mean_us),
            f(a.mean_us()),
            f(a.ci95_us().map(|c| c.0)),
            f(a.ci95_us().map(|c| c.1)),
            b(a.covers_pk),
            f(a.err_pk()),
            f(a.p99_net_us),
            f(r.map(|r| r.0)),
            f(r.and_then(|r| r.1)),
            r.map_or_else(String::new, |r| r.2.clone()),
            load_cell("verdict", p),
            load_cell("attempts", p),
            load_cell("failed_checks", p),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// Everything a variability sweep shows, not yet written anywhere.
#[derive(Debug, Clone)]
pub struct VariabilityRendered {
    /// Per-point analysis.
    pub points: Vec<VariabilityAnalysis>,
    /// The text table.
    pub table: String,
    /// `results.csv`.
    pub csv: String,
    /// The plot: file name and document.
    pub plots: Vec<(&'static str, String)>,
    /// The one-line setup under the plot's title and the page's heading.
    pub subtitle: String,
}

/// Everything a variability sweep shows, from its results file (no I/O).
pub fn render_all(file: &ResultsFile) -> anyhow::Result<VariabilityRendered> {
    let base = file.config.model()?;
    let Some(v) = &file.variability else {
        bail!("not a variability sweep (no `variability` section)");
    };
    let points = analyze(&base, v)?;
    let subtitle = format!(
        "μ = {}/s, c = {}, ρ = {}, {} s per point; started {}",
        file.config.mu, base.servers, v.rho, file.config.duration_s, file.created
    );
    let (c, xt, yt) = chart(&base, v, &points, &subtitle);
    let svg = c.render_with_ticks(xt.as_deref(), yt.as_deref());
    Ok(VariabilityRendered {
        table: table(&base, v, &points),
        csv: csv(&points)?,
        plots: vec![(CV2_SVG, svg)],
        points,
        subtitle,
    })
}

/// Renders a variability sweep's table and plot from its results file (no I/O).
pub fn render(file: &ResultsFile) -> anyhow::Result<(String, String)> {
    let r = render_all(file)?;
    let svg = r
        .plots
        .into_iter()
        .map(|(_, d)| d)
        .next()
        .unwrap_or_default();
    Ok((r.table, svg))
}

/// Redraws a variability sweep from `dir/results.json`: `table.txt`, `results.csv`, the plot
/// and `index.html` (last, so that the list of files written ends with the one to open).
pub fn report(dir: &Path) -> anyhow::Result<VariabilityOutput> {
    let mut file = ResultsFile::read(dir)?;
    if let Some(v) = file.variability.as_mut() {
        for p in &mut v.points {
            crate::measure::refresh_intervals(&mut p.point);
        }
    }
    let r = render_all(&file)?;
    let page = crate::html::render_variability_html(&file, &r);
    let mut files = Vec::new();
    let mut put = |name: &str, text: &str| -> anyhow::Result<()> {
        let p = dir.join(name);
        write_atomic(&p, text.as_bytes())?;
        files.push(p);
        Ok(())
    };
    put(TABLE_TXT, &r.table)?;
    put(RESULTS_CSV, &r.csv)?;
    for (name, doc) in &r.plots {
        put(name, doc)?;
    }
    put(INDEX_HTML, &page)?;
    Ok(VariabilityOutput {
        table: r.table,
        files,
    })
}
