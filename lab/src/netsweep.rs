//! Network sweeps (`qlab sweep --network FILE [--rates 100,200 | --rhos 0.2,0.5]`): an open
//! network of stations (`queuelab_common::network`) emulated by `qserve --network FILE`, swept
//! over the external arrival rate λ, each station compared with the theory of open networks.
//!
//! # Loads
//!
//! `--rates` gives λ itself (requests/s); `--rhos` gives loads relative to the bottleneck,
//! λ = ρ·λ_max with λ_max = min_j c_j μ_j / v_j, so that ρ is the load of the busiest station.
//! The default is five loads from 0.2 to 0.8 of λ_max. A point at or past λ_max is refused
//! before anything runs, naming the station that would be unstable (ρ_j ≥ 1) and λ_max.
//!
//! # A point
//!
//! qserve is started with `--network FILE` and its zero-service twin (a single zero-service
//! queue, the path's fixed overhead), both fresh for each point. qload runs at λ against the
//! network after a warm-up (auto: four relaxation times of the bottleneck station as an M/M/c
//! queue at its ρ, 1 s to 10 s), and `/metrics` is scraped at [`SCRAPES`] + 1 instants spread
//! evenly over the measured window. From the first and last scrapes, per station j
//! ([`station_window`]): utilisation Δbusy_j/(ΔT·c_j) (ΔT the server's uptime difference; with
//! infinitely many servers c = 1, the mean number busy), L_j = Δ∫N_j/ΔT, W_j =
//! Δsojourn_sum_j/Δsojourn_count_j, and the visits per request Δvisits_j/Δarrivals (external
//! arrivals: both are counted when admitted, so they match at the window's edges). The
//! [`SCRAPES`] consecutive windows are batches: the 95% interval of each value is Student's t
//! over their values. End to end: qload's mean and its interval, net of the path (less the twin
//! run's mean), and the server's own time (the sum of each answer's `Server-Timing` durations)
//! for the percentiles.
//!
//! # References
//!
//! Where the network has a product form (Jackson: every station M/M/c or M/M/∞ FCFS without a
//! capacity) the reference is theory (`theory(net, λ)`: per-station W_j, L_j, and the
//! end-to-end mean Σ L_j/λ), said "theory"; else the simulator (`simulate_network`, with
//! `--sim-replications` replications, each 20 customers per measured request and at least
//! 100 000), said "sim ±h%" with the half-width of the end-to-end mean's 95% interval. The
//! percentiles' reference is always the simulator when it ran. Utilisations and visit ratios
//! come from the traffic equations in both cases. A value is *covered* when the reference lies
//! in the measured 95% interval (theory), or the two intervals overlap (simulation).
//!
//! # Self-checks and re-runs
//!
//! Every attempt at a point is held to the single queue's self-checks
//! ([`crate::checks::check_point_with`]) with limits derived for the network
//! ([`network_limits`]: E\[S\] the fastest station's mean service time, the stall limit from
//! the end-to-end W and the bottleneck's 1 − ρ). A point that fails one is measured again,
//! servers restarted, with a new seed ([`crate::sweep::attempt_seed`]) up to `--attempts`
//! times; the first attempt that passes is kept, else the last with the verdict `failed`, left
//! out of the summary's counts. `results.json` records per point its `seed`, `attempts`,
//! `verdict`, `checks` and `rejected` attempts (optional fields: older files read as before).
//!
//! # The end-to-end distribution
//!
//! The server's own time of each answer (the sum of its `Server-Timing` durations, the
//! end-to-end sojourn in the network) is held against the simulator's end-to-end sojourns by
//! the two-sample KS distance ([`crate::analysis::two_sample_ks`]), with the noise of both
//! samples, 1.358·√(1/n_eff + 1/m_eff): n_eff from the batch means of the server's times, m_eff
//! from the simulated mean's standard error over its replications.
//!
//! # Classes
//!
//! With several classes, each class's end-to-end mean over the window
//! (Δ`qserve_sojourn_seconds_sum{class="k"}` / Δ`_count`, its interval over the batches) is
//! held against the simulator's mean of that class, the two intervals overlapping or not.
//!
//! # Burke's check
//!
//! For every station fed only by external arrivals (no routing into it) whose departure gaps
//! qserve exports, qserve keeps the gaps between its departures in virtual time
//! (`qserve_station_departure_gap_seconds`, cumulative buckets from 1 µs to 10 s). By Burke's
//! theorem the departures of an M/M/c or M/M/∞ station are a Poisson process, and so are
//! those of any work-conserving discipline with exponential service of one rate, and of
//! infinitely many servers with any service ([`burke_applies`]). [`burke`] takes the difference of the first and last scrapes' buckets and
//! computes D = max over the bucket edges of |F_n(x) − (1 − e^{−λ̂x})| with λ̂ = n/Σgaps. D over
//! the edges is a lower bound of the KS distance of the gaps themselves. Its noise level is the
//! Dvoretzky–Kiefer–Wolfowitz bound √(ln(2/α)/(2n)) at α = 0.05 and 10⁻³ (a little above the
//! exact KS critical values; with λ estimated the true critical values are lower still, so the
//! check is conservative). The p-value printed is that of the edge-restricted D, so an upper
//! bound of the true one. An M/D/1 first station shows how it fails: D is then about 0.5; the
//! stations Burke does not apply to are shown as that contrast.
//!
//! # Outputs
//!
//! In `--out`: `results.json` (the network, the plan and a per-station block per point),
//! `results.csv` (one row per point and station, plus an `end-to-end` row per point),
//! `table.txt` (also printed), per station `station-NAME-w.svg` (W_j against λ: the theory line
//! or the simulated points, and the measured points with their intervals) and
//! `station-NAME-rho.svg` (ρ_j from the traffic equations and the measured utilisation),
//! `end_to_end.svg` (the mean against λ), `end_to_end_ks.svg` (the end-to-end KS distance and
//! its noise against λ), `burke.svg` (D against the station's ρ with the noise
//! band) when a station has the check, and `index.html` (all of it on one page).
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use queuelab_common::model::{Model, Servers};
use queuelab_common::network::{Network, NetworkTheoryError, lambda_max, theory};
use queuelab_common::sim::SimOptions;
use queuelab_common::sim::network::{NetworkSimResult, simulate_network};
use queuelab_common::stats::{ks_critical, ks_edges, ks_pvalue, student_t_975};
use serde::{Deserialize, Serialize};

use crate::measure::{RunSpec, SCHEDULE_START, measure};
use crate::progress::SweepLog;
use crate::record::{Check, RejectedAttempt, Verdict, utc_stamps, write_atomic};
use crate::report::{INDEX_HTML, RESULTS_CSV, TABLE_TXT};
use crate::scrape::{Metrics, SCRAPE_TIMEOUT, fetch, metrics_url};
use crate::servers::{LocalServer, ServerPlan};
use crate::svg::{Axis, Chart, Marker, PALETTE, Point, Series, Style, escape};
use crate::sweep::{SweepPlan, Warmup};

/// The default loads of a network sweep, as fractions of λ_max.
pub const DEFAULT_NETWORK_RHOS: [f64; 5] = [0.2, 0.35, 0.5, 0.65, 0.8];
/// Windows (batches) the measured window is cut into by the scrapes.
pub const SCRAPES: usize = 8;
/// The format tag of a network sweep's `results.json`.
pub const NETWORK_FORMAT: &str = "qlab-network/1";
/// File name of the end-to-end plot.
pub const END_TO_END_SVG: &str = "end_to_end.svg";
/// File name of the end-to-end KS plot.
pub const END_TO_END_KS_SVG: &str = "end_to_end_ks.svg";
/// File name of Burke's plot.
pub const BURKE_SVG: &str = "burke.svg";
/// The gap histogram's family in qserve's `/metrics`.
pub const GAP_FAMILY: &str = "qserve_station_departure_gap_seconds";

/// A validated network sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkPlan {
    /// The network file.
    pub path: PathBuf,
    /// Its text (recorded).
    pub text: String,
    /// The network.
    pub net: Network,
    /// The largest stable external rate.
    pub lambda_max: f64,
    /// The external rates λ of the points, in order.
    pub rates: Vec<f64>,
    /// How much the simulator runs for a reference (customers are set per point).
    pub sim: SimOptions,
}

/// How the loads were given.
#[derive(Debug, Clone, PartialEq)]
pub enum Loads {
    /// External rates λ (1/s).
    Rates(Vec<f64>),
    /// Fractions of λ_max.
    Rhos(Vec<f64>),
    /// Neither: [`DEFAULT_NETWORK_RHOS`].
    Default,
}

/// Why λ cannot be swept, naming the unstable station; `None` if it can.
pub fn refuse(net: &Network, lambda: f64) -> Option<String> {
    match theory(net, lambda) {
        Ok(_) => None,
        Err(NetworkTheoryError::Unstable {
            station,
            rho,
            lambda_max,
        }) => Some(format!(
            "λ = {lambda}/s: station {station:?} would be unstable (ρ = {rho:.3} ≥ 1); the \
             network is stable only below λ_max = {lambda_max:.3}/s, and a sweep stops short of it"
        )),
        Err(e) => Some(format!("λ = {lambda}/s: {e}")),
    }
}

impl NetworkPlan {
    /// Reads `path` and plans the loads; every refused load is named with its station.
    pub fn new(path: &Path, loads: Loads, sim: SimOptions) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--network: reading {}", path.display()))?;
        let net = Network::parse(&text)
            .map_err(|e| anyhow::anyhow!("--network {}: {e}", path.display()))?;
        let lmax = lambda_max(&net).map_err(|e| anyhow::anyhow!("--network: {e}"))?;
        let rates = plan_rates(&net, lmax, &loads).map_err(anyhow::Error::msg)?;
        Ok(NetworkPlan {
            path: path.to_path_buf(),
            text,
            net,
            lambda_max: lmax,
            rates,
            sim,
        })
    }
}

/// The rates of `loads` for `net` (whose λ_max is `lmax`), or every reason some are refused.
pub fn plan_rates(net: &Network, lmax: f64, loads: &Loads) -> Result<Vec<f64>, String> {
    let rates: Vec<f64> = match loads {
        Loads::Rates(r) => r.clone(),
        Loads::Rhos(_) | Loads::Default if !lmax.is_finite() => {
            return Err(
                "no station of this network can saturate (λ_max is infinite): give \
                        the loads as --rates"
                    .into(),
            );
        }
        Loads::Rhos(r) => {
            if let Some(bad) = r.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
                return Err(format!("--rhos: every load must be positive, got {bad}"));
            }
            r.iter().map(|r| r * lmax).collect()
        }
        Loads::Default => DEFAULT_NETWORK_RHOS.iter().map(|r| r * lmax).collect(),
    };
    if rates.is_empty() {
        return Err("a network sweep needs at least one load".into());
    }
    let mut why = Vec::new();
    for &l in &rates {
        if !(l.is_finite() && l > 0.0) {
            why.push(format!("λ = {l}: a rate must be positive and finite"));
        } else if l > 1e6 {
            why.push(format!("λ = {l}/s is beyond a sweep"));
        } else if let Some(w) = refuse(net, l) {
            why.push(w);
        }
    }
    if why.is_empty() {
        Ok(rates)
    } else {
        Err(why.join("; "))
    }
}

/// The model of station j as an M/M/c queue for the warm-up rule.
fn bottleneck(net: &Network, lambda: f64) -> (Model, f64) {
    let t = theory(net, lambda).ok();
    let (j, rho) = t
        .as_ref()
        .and_then(|t| {
            t.stations
                .iter()
                .enumerate()
                .filter(|(j, _)| net.stations[*j].model.servers != Servers::Infinite)
                .map(|(j, s)| (j, s.rho))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        })
        .unwrap_or((0, 0.5));
    (net.stations[j].model, rho)
}

/// The warm-up of the point at λ.
pub fn warmup_for(plan: &SweepPlan, np: &NetworkPlan, lambda: f64) -> Duration {
    let (m, rho) = bottleneck(&np.net, lambda);
    let tau = crate::sweep::relaxation_s(&m, rho.min(0.99));
    match plan.warmup {
        Warmup::Fixed(d) => d,
        Warmup::Auto => Duration::from_secs_f64((4.0 * tau).clamp(1.0, 10.0)),
        Warmup::Quick => Duration::from_secs_f64((2.0 * tau).clamp(0.3, 3.0)),
    }
}

/// Sending time of a network sweep.
pub fn sending_time(plan: &SweepPlan, np: &NetworkPlan) -> Duration {
    np.rates
        .iter()
        .map(|&l| {
            let o = if plan.overhead_url.is_some() {
                plan.overhead_duration + plan.overhead_warmup
            } else {
                Duration::ZERO
            };
            plan.duration + warmup_for(plan, np, l) + o
        })
        .sum()
}

/// A value measured over the window, with its 95% interval over the batches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Over the whole window.
    pub value: f64,
    /// The 95% interval (Student's t over the batches), if there were at least two.
    pub ci95: Option<(f64, f64)>,
}

/// One station's values over one window of two scrapes.
#[derive(Debug, Clone, PartialEq)]
pub struct StationWindow {
    /// Its name.
    pub name: String,
    /// Δbusy/(ΔT·c).
    pub utilisation: f64,
    /// Δ∫N/ΔT.
    pub l: f64,
    /// Δsojourn_sum/Δsojourn_count (s); NaN without visits.
    pub w_s: f64,
    /// Δvisits/Δarrivals.
    pub visits: f64,
    /// Δblocked.
    pub blocked: f64,
}

fn delta(a: &Metrics, b: &Metrics, name: &str, labels: &[(&str, &str)]) -> Result<f64, String> {
    let get = |m: &Metrics| {
        m.get(name, labels)
            .ok_or_else(|| format!("/metrics has no {name}{labels:?}"))
    };
    Ok(get(b)? - get(a)?)
}

/// Each station's values between the scrapes `a` and `b` (see the module docs), exactly.
pub fn station_window(
    net: &Network,
    a: &Metrics,
    b: &Metrics,
) -> Result<Vec<StationWindow>, String> {
    let dt = delta(a, b, "qserve_uptime_seconds", &[])?;
    if dt <= 0.0 {
        return Err(format!("the server's uptime did not advance ({dt} s)"));
    }
    let arrivals = delta(a, b, "qserve_arrivals_total", &[])?;
    let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { f64::NAN };
    net.stations
        .iter()
        .map(|s| {
            let l = [("station", s.name.as_str())];
            let c = match s.model.servers {
                Servers::Finite(c) => f64::from(c),
                Servers::Infinite => 1.0,
            };
            let count = delta(a, b, "qserve_sojourn_seconds_count", &l)?;
            Ok(StationWindow {
                name: s.name.clone(),
                utilisation: delta(a, b, "qserve_busy_seconds_total", &l)? / (dt * c),
                l: delta(a, b, "qserve_in_system_seconds_total", &l)? / dt,
                w_s: ratio(delta(a, b, "qserve_sojourn_seconds_sum", &l)?, count),
                visits: ratio(delta(a, b, "qserve_station_visits_total", &l)?, arrivals),
                blocked: delta(a, b, "qserve_station_blocked_total", &l).unwrap_or(0.0),
            })
        })
        .collect()
}

/// The mean of `batches` with its Student-t 95% interval (`None` with fewer than two finite).
pub fn batch_interval(value: f64, batches: &[f64]) -> Measured {
    let xs: Vec<f64> = batches.iter().copied().filter(|x| x.is_finite()).collect();
    let ci95 = (xs.len() >= 2).then(|| {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        let s = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let h = student_t_975(xs.len() as u64 - 1) * s / n.sqrt();
        (value - h, value + h)
    });
    Measured { value, ci95 }
}

/// Burke's check of one station over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurkeCheck {
    /// The station.
    pub station: String,
    /// Whether Burke's theorem applies ([`burke_applies`]: exponential service or infinitely
    /// many servers, no capacity): D should then be within noise.
    pub expected_poisson: bool,
    /// Gaps in the window.
    pub n: u64,
    /// λ̂ = n/Σgaps (1/s).
    pub rate: f64,
    /// D over the bucket edges (a lower bound of the KS distance).
    pub d: f64,
    /// The DKW noise level at α = 0.05.
    pub noise_05: f64,
    /// At α = 10⁻³.
    pub noise_001: f64,
    /// The p-value of D (an upper bound of the true one: D is a lower bound).
    pub p_value: f64,
}

impl BurkeCheck {
    /// Whether D is within the noise at 10⁻³.
    pub fn within_noise(&self) -> bool {
        self.d <= self.noise_001
    }
}

/// The stations Burke's check is made at: those fed only by external arrivals (a Poisson
/// stream, thinned), whatever their servers, discipline or service; [`burke`] keeps those whose
/// gaps qserve exports. Whether the departures should be Poisson is [`burke_applies`].
pub fn burke_stations(net: &Network) -> Vec<usize> {
    (0..net.stations.len())
        .filter(|&j| net.entry[j] > 0.0 && net.routing.iter().all(|row| row[j] == 0.0))
        .collect()
}

/// Whether a station fed by a Poisson stream departs as one in steady state. Burke's theorem
/// holds for M/M/c and M/M/∞ without a capacity, and for any work-conserving discipline (every
/// discipline qserve has: FCFS, LCFS, PS, priority with or without preemption) when the service
/// is exponential of one rate, since the number in system is then the same birth–death process
/// and the departures are its downward jumps, which reversibility makes Poisson. Infinitely many
/// servers depart as a Poisson process whatever the service (M/G/∞: each arrival leaves after
/// its own independent service, a thinned-and-shifted Poisson process), and a station without
/// service time passes its arrivals on as they come. A capacity breaks it (the departures of
/// M/M/c/K are not Poisson), and so does a service that is not exponential with finitely many
/// servers (M/D/1 departs far more regularly).
pub fn burke_applies(model: &Model) -> bool {
    use queuelab_common::model::ServiceKind;
    model.capacity.is_none()
        && (model.service == ServiceKind::Exp
            || model.service == ServiceKind::Zero
            || model.servers == Servers::Infinite)
}

/// The cumulative buckets of station `name`'s gaps: `(le edges in s, counts)` ordered by edge,
/// the `+Inf` count, and the sum (s).
pub fn gap_buckets(m: &Metrics, name: &str) -> Option<GapBuckets> {
    let bucket = format!("{GAP_FAMILY}_bucket");
    let mut edges: Vec<(f64, f64)> = m
        .samples
        .iter()
        .filter(|s| s.name == bucket && s.labels.iter().any(|(k, v)| k == "station" && v == name))
        .filter_map(|s| {
            let le = s.labels.iter().find(|(k, _)| k == "le")?;
            let x = match le.1.as_str() {
                "+Inf" => f64::INFINITY,
                t => t.parse().ok()?,
            };
            Some((x, s.value))
        })
        .collect();
    edges.sort_by(|a, b| a.0.total_cmp(&b.0));
    let label = [("station", name)];
    let count = m.get(&format!("{GAP_FAMILY}_count"), &label)?;
    let sum = m.get(&format!("{GAP_FAMILY}_sum"), &label)?;
    (!edges.is_empty()).then_some((edges, count, sum))
}

/// A station's gap histogram in one scrape: `(le, cumulative count)` by edge, count, sum (s).
pub type GapBuckets = (Vec<(f64, f64)>, f64, f64);

/// A reference value and the half-width of its interval (none from theory).
pub type RefValue = Option<(f64, Option<f64>)>;

/// What [`references`] gives: per station (W_j µs, L_j), the end-to-end block, the source, notes,
/// and the simulated distribution.
pub type References = (
    Vec<(RefValue, RefValue)>,
    EndToEnd,
    String,
    Vec<String>,
    SimulatedDistribution,
);

/// What [`build_point`] gives: the stations, the end-to-end block, the source, Burke, notes.
pub type BuiltPoint = (
    Vec<StationPoint>,
    EndToEnd,
    String,
    Vec<BurkeCheck>,
    Vec<String>,
);

/// Burke's check of every eligible station between the scrapes `a` and `b`.
pub fn burke(net: &Network, a: &Metrics, b: &Metrics) -> Vec<BurkeCheck> {
    burke_stations(net)
        .into_iter()
        .filter_map(|j| {
            let s = &net.stations[j];
            let (ea, ca, sa) = gap_buckets(a, &s.name)?;
            let (eb, cb, sb) = gap_buckets(b, &s.name)?;
            if ea.len() != eb.len() || ea.iter().zip(&eb).any(|(x, y)| x.0 != y.0) {
                return None;
            }
            let n = (cb - ca).max(0.0) as u64;
            let sum = sb - sa;
            let rate = if sum > 0.0 { n as f64 / sum } else { f64::NAN };
            let edges: Vec<f64> = eb.iter().map(|e| e.0).collect();
            let cum: Vec<u64> = ea
                .iter()
                .zip(&eb)
                .map(|(x, y)| (y.1 - x.1).max(0.0) as u64)
                .collect();
            let d = ks_edges(&edges, &cum, n, |x| 1.0 - (-rate * x).exp());
            let m = &s.model;
            Some(BurkeCheck {
                station: s.name.clone(),
                expected_poisson: burke_applies(m),
                n,
                rate,
                d,
                noise_05: ks_critical(n, 0.05),
                noise_001: ks_critical(n, 1e-3),
                p_value: ks_pvalue(d, usize::try_from(n).unwrap_or(usize::MAX)),
            })
        })
        .collect()
}

/// One station of a recorded point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationPoint {
    /// Its name.
    pub name: String,
    /// ρ_j from the traffic equations.
    pub rho: f64,
    /// The visit ratio v_j.
    pub visits_theory: f64,
    /// Measured utilisation.
    pub utilisation: Measured,
    /// Measured L_j.
    pub l: Measured,
    /// Measured W_j (µs).
    pub w_us: Measured,
    /// Measured visits per external arrival.
    pub visits: Measured,
    /// Arrivals blocked in the window.
    pub blocked: f64,
    /// Reference W_j (µs) and the half-width of its interval (simulation only).
    pub ref_w_us: Option<(f64, Option<f64>)>,
    /// Reference L_j and half-width.
    pub ref_l: Option<(f64, Option<f64>)>,
    /// Whether the measured interval of W_j covers the reference.
    pub covered_w: Option<bool>,
}

/// The end-to-end values of a recorded point (µs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndToEnd {
    /// qload's mean and its interval.
    pub raw: Measured,
    /// The twin's mean (the path), if run.
    pub overhead_mean_us: Option<f64>,
    /// The raw mean and interval less the path.
    pub net: Measured,
    /// The server's own time (Σ Server-Timing durations): p50, p90, p99.
    pub server_p50_p90_p99: Option<[f64; 3]>,
    /// The reference mean and half-width (simulation only).
    pub ref_mean_us: Option<(f64, Option<f64>)>,
    /// The simulated p50, p90, p99 and their half-widths.
    pub ref_quantiles_us: Option<[(f64, f64); 3]>,
    /// Whether the net interval covers the reference.
    pub covered: Option<bool>,
    /// The KS distance of the server's own times against the simulated end-to-end sojourns
    /// (`None` in files written before it, or without either distribution).
    #[serde(default)]
    pub ks: Option<EndToEndKs>,
    /// Per class, when the network has several (empty otherwise, and in older files).
    #[serde(default)]
    pub classes: Vec<ClassPoint>,
}

/// The two-sample KS distance of a point's end-to-end times (the server's own time of each
/// answer, the sum of its `Server-Timing` durations) against the simulator's end-to-end
/// sojourns ([`crate::analysis::two_sample_ks`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EndToEndKs {
    /// sup |F_measured − F_simulated| over the measured buckets' edges.
    pub d: f64,
    /// Its 95% noise level 1.358·√(1/n_eff + 1/m_eff).
    pub noise: f64,
    /// The measured sample's effective size s²/se² (batch means over the server's own times).
    pub n_eff: f64,
    /// The simulated sample's (its mean's standard error over the replications).
    pub m_eff: f64,
}

impl EndToEndKs {
    /// Whether D is within its noise level.
    pub fn within_noise(&self) -> bool {
        self.d <= self.noise
    }
}

/// One class's end-to-end mean at a point: measured from qserve's per-class series
/// (`qserve_sojourn_seconds_sum{class="k"}` / `_count`), against the simulator's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassPoint {
    /// The class (0 the first).
    pub class: u8,
    /// Its requests served in the window.
    pub requests: f64,
    /// Its mean end-to-end sojourn (µs) with the 95% interval over the batches.
    pub mean_us: Measured,
    /// The simulated mean and half-width (µs).
    pub ref_mean_us: Option<(f64, Option<f64>)>,
    /// Whether the two intervals overlap.
    pub covered: Option<bool>,
}

/// The end-to-end distribution measured at a point: the histogram (ns, serialized) of the
/// server's own time of each answer and its effective sample size s²/se².
#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredDistribution {
    /// The histogram.
    pub histogram: String,
    /// n_eff.
    pub n_eff: f64,
}

/// The server's own times of a run as a [`MeasuredDistribution`]: n_eff from the batch means of
/// the per-interval server means (the batches of the mean's interval), as
/// [`crate::analysis::ks_noise`] does for a single queue. `None` without `Server-Timing`.
pub fn measured_distribution(
    raw: &queuelab_client::result::RunResult,
) -> Option<MeasuredDistribution> {
    let s = raw.server_us.as_ref().filter(|s| s.count > 0)?;
    let h = queuelab_common::stats::histogram_from_string(&s.histogram).ok()?;
    let batches = queuelab_client::result::batches_of(&raw.intervals, |i| i.server_mean_us);
    let half = queuelab_common::stats::batch_means_ci(&batches).map(|c| (c.high - c.low) / 2.0);
    let n_eff =
        crate::analysis::effective_samples(h.stdev() / 1e3, half, s.count, batches.len() as u64)?;
    Some(MeasuredDistribution {
        histogram: s.histogram.clone(),
        n_eff,
    })
}

/// The simulator's end-to-end distribution and class means, as a point uses them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimulatedDistribution {
    /// Its pooled end-to-end sojourns (ns, serialized) and their effective size m_eff.
    pub histogram: Option<(String, f64)>,
    /// Per class, the mean end-to-end sojourn and its half-width (µs).
    pub class_means_us: Vec<(f64, f64)>,
}

/// What [`simulated_distribution`] reads of a simulation.
fn simulated_distribution(s: &NetworkSimResult) -> SimulatedDistribution {
    let hist = (!s.histogram.is_empty())
        .then(|| {
            crate::analysis::simulated_n_eff(
                &s.histogram,
                s.mean_s.half_width * 1e6,
                s.replications,
            )
            .map(|m| (s.histogram.clone(), m))
        })
        .flatten();
    SimulatedDistribution {
        histogram: hist,
        class_means_us: s
            .class_mean_s
            .iter()
            .map(|e| (e.value * 1e6, e.half_width * 1e6))
            .collect(),
    }
}

/// Each class's (class, Δsum in s, Δcount) between the scrapes `a` and `b`, class order; the
/// classes of `b` that `a` has too.
pub fn class_window(a: &Metrics, b: &Metrics) -> Vec<(u8, f64, f64)> {
    let of = |m: &Metrics| -> Vec<(u8, f64, f64)> {
        let counts = m.by_label("qserve_sojourn_seconds_count", "class");
        let mut v: Vec<(u8, f64, f64)> = m
            .by_label("qserve_sojourn_seconds_sum", "class")
            .iter()
            .filter_map(|(k, sum)| {
                let (_, count) = counts.iter().find(|(c, _)| c == k)?;
                Some((k.parse().ok()?, *sum, *count))
            })
            .collect();
        v.sort_by_key(|c| c.0);
        v.dedup_by_key(|c| c.0);
        v
    };
    let (first, last) = (of(a), of(b));
    last.iter()
        .filter_map(|&(k, s1, c1)| {
            let &(_, s0, c0) = first.iter().find(|c| c.0 == k)?;
            Some((k, s1 - s0, c1 - c0))
        })
        .collect()
}

/// The per-class end-to-end blocks of a point from its scrapes (at least two), against the
/// simulated class means `refs` (µs, half-width): empty unless the scrapes have two classes or
/// more.
pub fn class_points(scrapes: &[Metrics], refs: &[(f64, f64)]) -> Vec<ClassPoint> {
    let (Some(first), Some(last)) = (scrapes.first(), scrapes.last()) else {
        return Vec::new();
    };
    let whole = class_window(first, last);
    if whole.len() < 2 {
        return Vec::new();
    }
    let batches: Vec<Vec<(u8, f64, f64)>> = scrapes
        .windows(2)
        .map(|w| class_window(&w[0], &w[1]))
        .collect();
    let mean_us = |sum: f64, count: f64| {
        if count > 0.0 {
            sum / count * 1e6
        } else {
            f64::NAN
        }
    };
    whole
        .iter()
        .map(|&(k, sum, count)| {
            let per: Vec<f64> = batches
                .iter()
                .filter_map(|b| b.iter().find(|c| c.0 == k).map(|c| mean_us(c.1, c.2)))
                .collect();
            let m = batch_interval(mean_us(sum, count), &per);
            let r = refs.get(usize::from(k)).map(|&(v, h)| (v, Some(h)));
            ClassPoint {
                class: k,
                requests: count,
                covered: covers(&m, r),
                mean_us: m,
                ref_mean_us: r,
            }
        })
        .collect()
}

/// A recorded point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetPoint {
    /// External rate λ (1/s).
    pub lambda: f64,
    /// λ/λ_max.
    pub rho: f64,
    /// Achieved send rate.
    pub achieved_rate: f64,
    /// Requests sent and answered, errors, 503s.
    pub sent: u64,
    /// Answered.
    pub completed: u64,
    /// Failed.
    pub errors: u64,
    /// 503 answers.
    pub blocked: u64,
    /// "theory" or "sim ±h%".
    pub reference: String,
    /// Per station.
    pub stations: Vec<StationPoint>,
    /// End to end.
    pub end_to_end: EndToEnd,
    /// Burke's check of the stations it applies to.
    pub burke: Vec<BurkeCheck>,
    /// What went wrong without losing the point (a scrape, the simulator).
    pub notes: Vec<String>,
    /// The arrival seed of the attempt kept (`None` in files written before the checks).
    #[serde(default)]
    pub seed: Option<u64>,
    /// How many times the point was measured (1 when the first attempt passed its checks; 0 in
    /// files written before the checks).
    #[serde(default)]
    pub attempts: u32,
    /// Whether the kept attempt passed every check (`None` in files written before the checks).
    #[serde(default)]
    pub verdict: Option<Verdict>,
    /// The checks of the kept attempt, in the order of [`crate::checks::NAMES`].
    #[serde(default)]
    pub checks: Vec<Check>,
    /// The attempts measured again, oldest first, with the checks they failed.
    #[serde(default)]
    pub rejected: Vec<RejectedAttempt>,
}

impl NetPoint {
    /// Whether every attempt failed its checks (the last was kept).
    pub fn failed(&self) -> bool {
        self.verdict == Some(Verdict::Failed)
    }

    /// The checks the kept attempt failed.
    pub fn failed_checks(&self) -> Vec<Check> {
        crate::checks::failed(&self.checks)
    }
}

/// `results.json` of a network sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkResults {
    /// [`NETWORK_FORMAT`].
    pub format: String,
    /// When it started (UTC).
    pub created: String,
    /// The network file, as given.
    pub network_file: String,
    /// Its text.
    pub network: String,
    /// λ_max.
    pub lambda_max: f64,
    /// The planned rates.
    pub rates: Vec<f64>,
    /// Measured seconds per point.
    pub duration_s: f64,
    /// Base seed.
    pub seed: u64,
    /// The points measured.
    pub points: Vec<NetPoint>,
}

impl NetworkResults {
    /// Reads `dir/results.json`.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let p = dir.join("results.json");
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        let r: NetworkResults =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
        if r.format != NETWORK_FORMAT {
            bail!("{}: not a network sweep ({})", p.display(), r.format);
        }
        Ok(r)
    }

    /// Writes `dir/results.json`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        write_atomic(
            &dir.join("results.json"),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }
}

/// Whether `dir/results.json` is a network sweep's.
pub fn is_network_results(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("format").and_then(|f| f.as_str()) == Some(NETWORK_FORMAT))
}

/// The references of a point: the per-station values, the end-to-end mean and quantiles, the
/// source's name.
pub fn references(net: &Network, lambda: f64, sim: &SimOptions, customers: u64) -> References {
    let mut notes = Vec::new();
    let th = theory(net, lambda).ok();
    let opts = SimOptions {
        customers: customers.max(100_000),
        ..*sim
    };
    let simulated = std::panic::catch_unwind(|| simulate_network(net, lambda, &opts))
        .map_err(|_| notes.push("the simulator failed".to_owned()))
        .ok();
    let mut e2e = EndToEnd {
        raw: Measured {
            value: f64::NAN,
            ci95: None,
        },
        overhead_mean_us: None,
        net: Measured {
            value: f64::NAN,
            ci95: None,
        },
        server_p50_p90_p99: None,
        ref_mean_us: None,
        ref_quantiles_us: simulated
            .as_ref()
            .map(|s| [&s.p50_s, &s.p90_s, &s.p99_s].map(|e| (e.value * 1e6, e.half_width * 1e6))),
        covered: None,
        ks: None,
        classes: Vec::new(),
    };
    let dist = simulated
        .as_ref()
        .map(simulated_distribution)
        .unwrap_or_default();
    let product = th.as_ref().filter(|t| t.product_form && t.mean_s.is_some());
    let (per_station, source) = match (product, &simulated) {
        (Some(t), _) => {
            e2e.ref_mean_us = t.mean_s.map(|m| (m * 1e6, None));
            (
                t.stations
                    .iter()
                    .map(|s| (s.w_s.map(|w| (w * 1e6, None)), s.l.map(|l| (l, None))))
                    .collect(),
                "theory".to_owned(),
            )
        }
        (None, Some(s)) => {
            e2e.ref_mean_us = Some((s.mean_s.value * 1e6, Some(s.mean_s.half_width * 1e6)));
            (
                s.stations
                    .iter()
                    .map(|st| {
                        (
                            Some((st.mean_s.value * 1e6, Some(st.mean_s.half_width * 1e6))),
                            Some((st.in_system.value, Some(st.in_system.half_width))),
                        )
                    })
                    .collect(),
                format!(
                    "sim ±{:.1}%",
                    100.0 * s.mean_s.half_width / s.mean_s.value.max(1e-12)
                ),
            )
        }
        (None, None) => (vec![(None, None); net.stations.len()], "none".to_owned()),
    };
    (per_station, e2e, source, notes, dist)
}

/// Whether a measured interval covers a reference (a point from theory; an interval from the
/// simulator: they overlap).
pub fn covers(m: &Measured, reference: Option<(f64, Option<f64>)>) -> Option<bool> {
    let (lo, hi) = m.ci95?;
    let (r, h) = reference?;
    let h = h.unwrap_or(0.0);
    Some(lo <= r + h && r - h <= hi)
}

/// Builds a point from the scrapes of its window (at least two) and its end-to-end numbers;
/// the references are computed here.
pub fn build_point(
    np: &NetworkPlan,
    lambda: f64,
    scrapes: &[Metrics],
    mut e2e_measured: EndToEnd,
    measured: Option<&MeasuredDistribution>,
    customers: u64,
) -> Result<BuiltPoint, String> {
    let (Some(first), Some(last)) = (scrapes.first(), scrapes.last()) else {
        return Err("no scrapes".into());
    };
    let whole = station_window(&np.net, first, last)?;
    let batches: Vec<Vec<StationWindow>> = scrapes
        .windows(2)
        .filter_map(|w| station_window(&np.net, &w[0], &w[1]).ok())
        .collect();
    let th = theory(&np.net, lambda).map_err(|e| e.to_string())?;
    let (refs, e2e_ref, source, notes, dist) = references(&np.net, lambda, &np.sim, customers);
    let stations = whole
        .iter()
        .enumerate()
        .map(|(j, w)| {
            let of = |f: fn(&StationWindow) -> f64| -> Vec<f64> {
                batches.iter().map(|b| f(&b[j])).collect()
            };
            let w_us = batch_interval(w.w_s * 1e6, &of(|s| s.w_s * 1e6));
            StationPoint {
                name: w.name.clone(),
                rho: th.stations[j].rho,
                visits_theory: th.stations[j].visits,
                utilisation: batch_interval(w.utilisation, &of(|s| s.utilisation)),
                l: batch_interval(w.l, &of(|s| s.l)),
                covered_w: covers(&w_us, refs[j].0),
                w_us,
                visits: batch_interval(w.visits, &of(|s| s.visits)),
                blocked: w.blocked,
                ref_w_us: refs[j].0,
                ref_l: refs[j].1,
            }
        })
        .collect();
    e2e_measured.ref_mean_us = e2e_ref.ref_mean_us;
    e2e_measured.ref_quantiles_us = e2e_ref.ref_quantiles_us;
    e2e_measured.covered = covers(&e2e_measured.net, e2e_measured.ref_mean_us);
    e2e_measured.ks = measured
        .zip(dist.histogram.as_ref())
        .and_then(|(m, (sim, m_eff))| {
            let (d, noise) = crate::analysis::two_sample_ks(&m.histogram, m.n_eff, sim, *m_eff)?;
            Some(EndToEndKs {
                d,
                noise,
                n_eff: m.n_eff,
                m_eff: *m_eff,
            })
        });
    e2e_measured.classes = class_points(scrapes, &dist.class_means_us);
    Ok((
        stations,
        e2e_measured,
        source,
        burke(&np.net, first, last),
        notes,
    ))
}

/// qserve's arguments for the network (besides `--listen`, `--grace`).
fn server_args(sp: &ServerPlan, extra: &[String]) -> Vec<String> {
    let mut a = vec![
        "--seed".to_owned(),
        sp.seed.to_string(),
        "--spin".to_owned(),
        sp.spin.clone(),
        if sp.busy_poll {
            "--busy-poll".to_owned()
        } else {
            "--no-busy-poll".to_owned()
        },
    ];
    a.extend_from_slice(extra);
    a
}

/// Runs qload per `spec` while scraping `metrics` [`SCRAPES`] + 1 times over the measured
/// window; the scrapes that failed are left out (the caller needs at least two).
fn measure_with_scrapes(
    spec: &RunSpec<'_>,
    metrics: &str,
) -> anyhow::Result<(
    crate::record::PointMeasurement,
    queuelab_client::result::RunResult,
    Vec<Metrics>,
)> {
    let start_at = Instant::now() + SCHEDULE_START + spec.warmup;
    let step = spec.duration / SCRAPES as u32;
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let url = metrics.to_owned();
    let scraper = std::thread::Builder::new()
        .name("qlab-net-scrape".into())
        .spawn(move || {
            let mut out = Vec::with_capacity(SCRAPES + 1);
            for k in 0..=SCRAPES {
                let at = start_at + step * k as u32;
                let left = at.saturating_duration_since(Instant::now());
                if !matches!(
                    done_rx.recv_timeout(left),
                    Err(mpsc::RecvTimeoutError::Timeout)
                ) {
                    break;
                }
                if let Ok(text) = fetch(&url, SCRAPE_TIMEOUT) {
                    out.push(Metrics::parse(&text));
                }
            }
            out
        })
        .context("spawning the scrape thread")?;
    let run = measure(spec);
    drop(done_tx);
    let scrapes = scraper.join().unwrap_or_default();
    let (m, r) = run?;
    Ok((m, r, scrapes))
}

/// What [`report`] wrote.
#[derive(Debug, Clone)]
pub struct NetworkOutput {
    /// The table as printed.
    pub table: String,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Runs a network sweep: per point, starts qserve `--network` and the twin, measures, stops
/// them; `results.json` is kept up to date; then the report.
pub fn sweep(
    plan: &SweepPlan,
    np: &NetworkPlan,
    servers: &ServerPlan,
    log: &mut dyn SweepLog,
) -> anyhow::Result<NetworkOutput> {
    crate::sweep::create_fresh_dir(&plan.out)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut file = NetworkResults {
        format: NETWORK_FORMAT.into(),
        created: utc_stamps(now).0,
        network_file: np.path.display().to_string(),
        network: np.text.clone(),
        lambda_max: np.lambda_max,
        rates: np.rates.clone(),
        duration_s: plan.duration.as_secs_f64(),
        seed: plan.seed,
        points: Vec::new(),
    };
    file.write(&plan.out)?;
    let n = np.rates.len();
    for (i, &lambda) in np.rates.iter().enumerate() {
        let p = measure_point(plan, np, servers, i, lambda, log)
            .with_context(|| format!("point {} of {n} (λ = {lambda:.1}/s)", i + 1))?;
        log.line(&point_line(i, n, &p));
        file.points.push(p);
        file.write(&plan.out)?;
        log.point_done();
        if plan.stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    report(&plan.out)
}

fn point_line(i: usize, n: usize, p: &NetPoint) -> String {
    let st: Vec<String> = p
        .stations
        .iter()
        .map(|s| {
            format!(
                "{} ρ {:.3}/{:.3} W {:.1} µs",
                s.name, s.rho, s.utilisation.value, s.w_us.value
            )
        })
        .collect();
    let b: Vec<String> = p
        .burke
        .iter()
        .map(|b| {
            format!(
                "Burke {}: D = {:.4} (noise {:.4})",
                b.station, b.d, b.noise_001
            )
        })
        .collect();
    let ks = p.end_to_end.ks.map_or_else(String::new, |k| {
        format!(", KS {:.4} (noise {:.4})", k.d, k.noise)
    });
    let checks = if p.failed() {
        "; FAILED its checks".to_owned()
    } else if p.attempts > 1 {
        format!("; checks ok at attempt {}", p.attempts)
    } else {
        String::new()
    };
    format!(
        "[{}/{n}] λ = {:.1}/s: {}; end to end {:.1} µs net ({}){ks}{}{}{checks}",
        i + 1,
        p.lambda,
        st.join(", "),
        p.end_to_end.net.value,
        p.reference,
        if b.is_empty() { "" } else { "; " },
        b.join("; ")
    )
}

/// One attempt at a network point: qserve `--network` and its twin started fresh, the run with
/// its scrapes, the twin's run.
struct NetAttempt {
    measured: crate::record::PointMeasurement,
    raw: queuelab_client::result::RunResult,
    scrapes: Vec<Metrics>,
    overhead: Option<(
        crate::record::PointMeasurement,
        queuelab_client::result::RunResult,
    )>,
    metrics: String,
}

/// The limits of the self-checks of a network point at λ for a run of `duration_s`
/// ([`crate::checks::Limits`]):
///
/// - E\[S\] is the smallest mean service time of the stations (1/μ_j, stations without service
///   time left out): a send lag of a tenth of the fastest station's service moves the arrivals
///   of every station by a few % of its gaps at most, and a departure that fires that late
///   lengthens the shortest services by a tenth at most;
/// - the stall limit s\* = √(2T(1 − ρ_max)εW) is the single queue's with W the end-to-end mean
///   sojourn (the product form's Σ L_j/λ where the network has one; else Σ_j v_j W_j with each
///   W_j the closed form of the station alone at λ_j, the decomposition, which the bound of a
///   1% bias tolerates: s\* moves by the square root of its error) and 1 − ρ_max the backlog
///   factor of the busiest finite-server station, the one whose backlog a burst leaves longest
///   (1 when every station has infinitely many servers; at least 0.05 as for a single queue).
///   Without either W, the M/M/1 form with the smallest E\[S\].
pub fn network_limits(net: &Network, lambda: f64, duration_s: f64) -> crate::checks::Limits {
    use queuelab_common::model::ServiceKind;
    let es_s = net
        .stations
        .iter()
        .filter(|s| s.model.service != ServiceKind::Zero && s.model.mu > 0.0)
        .map(|s| 1.0 / s.model.mu)
        .fold(f64::INFINITY, f64::min);
    let es_s = if es_s.is_finite() { es_s } else { 1e-3 };
    let th = theory(net, lambda).ok();
    let w_s = th.as_ref().and_then(|t| {
        t.mean_s
            .filter(|w| t.product_form && w.is_finite())
            .or_else(|| {
                t.stations
                    .iter()
                    .zip(&net.stations)
                    .map(|(st, s)| {
                        if st.lambda <= 0.0 {
                            return Some(0.0);
                        }
                        let m = crate::analysis::theory_at(&s.model, st.lambda).ok()?;
                        (m.mean_us.is_finite() && m.mean_us >= 0.0)
                            .then_some(st.visits * m.mean_us * 1e-6)
                    })
                    .sum::<Option<f64>>()
                    .filter(|w| *w > 0.0)
            })
    });
    let rho_max = th.as_ref().and_then(|t| {
        t.stations
            .iter()
            .zip(&net.stations)
            .filter(|(_, s)| s.model.servers != Servers::Infinite)
            .map(|(st, _)| st.rho)
            .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))))
    });
    let factor = rho_max.map_or(1.0, |r| (1.0 - r).max(0.05));
    let wf = w_s.map_or(es_s, |w| w * factor);
    crate::checks::Limits {
        service_us: es_s * 1e6,
        stall_us: crate::checks::stall_limit_for_us(wf, duration_s),
    }
}

/// One attempt: starts the servers, runs qload with the scrapes and the twin's run, stops them.
fn measure_attempt(
    plan: &SweepPlan,
    np: &NetworkPlan,
    servers: &ServerPlan,
    lambda: f64,
    seed: u64,
    overhead_seed: u64,
) -> anyhow::Result<NetAttempt> {
    if !servers.cpus.is_empty() {
        queuelab_os::affinity::set_current(&servers.cpus).context("pinning the servers")?;
    }
    let path = np.path.display().to_string();
    let queue = LocalServer::start(
        &servers.qserve,
        &server_args(servers, &["--network".to_owned(), path]),
        "qserve --network",
    )?;
    let twin = if plan.overhead_url.is_some() {
        Some(LocalServer::start(
            &servers.qserve,
            &server_args(servers, &["--service".to_owned(), "zero".to_owned()]),
            "the zero-service twin",
        )?)
    } else {
        None
    };
    if !plan.client_cpus.is_empty() {
        queuelab_os::affinity::set_current(&plan.client_cpus).context("pinning the client")?;
    }
    let url = queue.url();
    let metrics = metrics_url(&url).context("the metrics URL")?;
    let spec = RunSpec {
        url: &url,
        rate: lambda,
        duration: plan.duration,
        warmup: warmup_for(plan, np, lambda),
        seed,
        model: None,
        opts: &plan.opts,
        stop: &plan.stop,
    };
    let (measured, raw, scrapes) = measure_with_scrapes(&spec, &metrics)?;
    let overhead = match &twin {
        Some(t) => {
            let turl = t.url();
            let ospec = RunSpec {
                url: &turl,
                duration: plan.overhead_duration,
                warmup: plan.overhead_warmup,
                seed: overhead_seed,
                ..spec.clone()
            };
            Some(measure(&ospec)?)
        }
        None => None,
    };
    drop(twin);
    drop(queue);
    Ok(NetAttempt {
        measured,
        raw,
        scrapes,
        overhead,
        metrics,
    })
}

fn measure_point(
    plan: &SweepPlan,
    np: &NetworkPlan,
    servers: &ServerPlan,
    i: usize,
    lambda: f64,
    log: &mut dyn SweepLog,
) -> anyhow::Result<NetPoint> {
    let n = np.rates.len();
    let rho = lambda / np.lambda_max;
    let seed = crate::sweep::run_seed(plan.seed, i, false);
    let overhead_seed = crate::sweep::run_seed(plan.seed, i, true);
    let kept = crate::sweep::with_retries(
        plan.attempts,
        seed,
        &format!("[{}/{n}] λ = {lambda:.1}/s:", i + 1),
        |number, s, log| {
            log.start(i, rho, number);
            if number > 1 {
                log.line(&format!(
                    "[{}/{n}] λ = {lambda:.1}/s: attempt {number} of {}",
                    i + 1,
                    plan.attempts
                ));
            }
            measure_attempt(
                plan,
                np,
                servers,
                lambda,
                s,
                crate::sweep::attempt_seed(overhead_seed, number),
            )
        },
        |a| {
            let limits = network_limits(&np.net, lambda, a.raw.duration_s);
            crate::checks::check_point_with(
                &limits,
                lambda,
                &a.raw,
                a.overhead.as_ref().map(|o| &o.1),
            )
        },
        || plan.stop.load(std::sync::atomic::Ordering::Relaxed),
        log,
    )?;
    let verdict = kept.verdict();
    let a = kept.attempt;
    if a.scrapes.len() < 2 {
        bail!(
            "fewer than two scrapes of {} succeeded in the measured window",
            a.metrics
        );
    }
    let m = &a.measured;
    let lat = &m.latency_us;
    let raw_m = Measured {
        value: lat.mean,
        ci95: lat.ci95_low.zip(lat.ci95_high),
    };
    let overhead = a.overhead.as_ref().map(|o| o.0.latency_us.mean);
    let o = overhead.unwrap_or(0.0);
    let e2e = EndToEnd {
        raw: raw_m,
        overhead_mean_us: overhead,
        net: Measured {
            value: raw_m.value - o,
            ci95: raw_m.ci95.map(|(l, h)| (l - o, h - o)),
        },
        server_p50_p90_p99: a
            .raw
            .server_us
            .as_ref()
            .filter(|s| s.count > 0)
            .map(|s| [s.p50, s.p90, s.p99]),
        ref_mean_us: None,
        ref_quantiles_us: None,
        covered: None,
        ks: None,
        classes: Vec::new(),
    };
    let measured_dist = measured_distribution(&a.raw);
    let (stations, end_to_end, reference, burke, notes) = build_point(
        np,
        lambda,
        &a.scrapes,
        e2e,
        measured_dist.as_ref(),
        20 * m.completed,
    )
    .map_err(anyhow::Error::msg)?;
    Ok(NetPoint {
        lambda,
        rho,
        achieved_rate: m.achieved_rate,
        sent: m.sent,
        completed: m.completed,
        errors: m.errors,
        blocked: m.blocked,
        reference,
        stations,
        end_to_end,
        burke,
        notes,
        seed: Some(kept.seed),
        attempts: kept.number,
        verdict: Some(verdict),
        checks: kept.checks,
        rejected: kept.rejected,
    })
}

fn f1(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "–".into()
    }
}

fn ci(c: Option<(f64, f64)>, digits: usize) -> String {
    c.map_or_else(
        || "–".into(),
        |(l, h)| format!("[{l:.digits$}, {h:.digits$}]"),
    )
}

fn reference_text(r: Option<(f64, Option<f64>)>, digits: usize) -> String {
    match r {
        Some((v, Some(h))) => format!("{v:.digits$} ± {h:.digits$}"),
        Some((v, None)) => format!("{v:.digits$}"),
        None => "–".into(),
    }
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "–",
    }
}

/// The text table of a network sweep.
pub fn table(r: &NetworkResults) -> String {
    let mut s = format!(
        "network sweep of {} ({} stations), λ_max = {:.2}/s, {} s per point\n",
        r.network_file,
        r.points.first().map_or(0, |p| p.stations.len()),
        r.lambda_max,
        r.duration_s
    );
    if r.points.len() < r.rates.len() {
        s.push_str(&format!(
            "incomplete: {} of {} points measured\n",
            r.points.len(),
            r.rates.len()
        ));
    }
    for p in &r.points {
        s.push_str(&format!(
            "\nλ = {:.1}/s (ρ = {:.2} of λ_max, achieved {:.1}/s), reference {}, checks {}\n",
            p.lambda,
            p.rho,
            p.achieved_rate,
            p.reference,
            verdict_text(p)
        ));
        s.push_str(&format!(
            "  {:<10} {:>6} {:>7} {:>18} {:>7} {:>9} {:>20} {:>16} {:>5} {:>6} {:>6}\n",
            "station",
            "ρ",
            "util",
            "util 95% CI",
            "L",
            "W µs",
            "W 95% CI",
            "W ref",
            "in",
            "v",
            "v ref"
        ));
        for st in &p.stations {
            s.push_str(&format!(
                "  {:<10} {:>6.3} {:>7.3} {:>18} {:>7.3} {:>9} {:>20} {:>16} {:>5} {:>6.3} {:>6.3}\n",
                st.name,
                st.rho,
                st.utilisation.value,
                ci(st.utilisation.ci95, 3),
                st.l.value,
                f1(st.w_us.value),
                ci(st.w_us.ci95, 1),
                reference_text(st.ref_w_us, 1),
                yes_no(st.covered_w),
                st.visits.value,
                st.visits_theory
            ));
        }
        let e = &p.end_to_end;
        let err = e
            .ref_mean_us
            .map(|(r, _)| format!("{:+.2}%", 100.0 * (e.net.value / r - 1.0)))
            .unwrap_or_else(|| "–".into());
        s.push_str(&format!(
            "  end to end: mean {} µs net {} (raw {}, path {}), reference {}, err {err}, in: {}\n",
            f1(e.net.value),
            ci(e.net.ci95, 1),
            f1(e.raw.value),
            e.overhead_mean_us.map_or_else(|| "–".into(), f1),
            reference_text(e.ref_mean_us, 1),
            yes_no(e.covered)
        ));
        if let Some([a, b, c]) = e.server_p50_p90_p99 {
            let refs = e.ref_quantiles_us.map_or_else(
                || "–".to_owned(),
                |q| {
                    q.iter()
                        .map(|(v, h)| format!("{v:.1} ± {h:.1}"))
                        .collect::<Vec<_>>()
                        .join(" / ")
                },
            );
            s.push_str(&format!(
                "  server time p50/p90/p99 {a:.1} / {b:.1} / {c:.1} µs, simulated {refs}\n"
            ));
        }
        if let Some(k) = &e.ks {
            s.push_str(&format!(
                "  end to end KS against the simulation: D = {:.4}, noise {:.4} (n_eff {:.0}, \
                 m_eff {:.0}): {}\n",
                k.d,
                k.noise,
                k.n_eff,
                k.m_eff,
                if k.within_noise() {
                    "within noise"
                } else {
                    "BEYOND noise"
                }
            ));
        }
        for c in &e.classes {
            let err = c
                .ref_mean_us
                .map(|(r, _)| format!("{:+.2}%", 100.0 * (c.mean_us.value / r - 1.0)))
                .unwrap_or_else(|| "–".into());
            s.push_str(&format!(
                "  class {}: {:.0} requests, mean {} µs {}, simulated {}, err {err}, in: {}\n",
                c.class,
                c.requests,
                f1(c.mean_us.value),
                ci(c.mean_us.ci95, 1),
                reference_text(c.ref_mean_us, 1),
                yes_no(c.covered)
            ));
        }
        for b in &p.burke {
            s.push_str(&format!(
                "  Burke {}: n = {} gaps, λ̂ = {:.1}/s, D = {:.4} (over bucket edges: a lower \
                 bound), noise {:.4} (p 0.05) / {:.4} (p 0.001), p ≤ {:.3}: {}\n",
                b.station,
                b.n,
                b.rate,
                b.d,
                b.noise_05,
                b.noise_001,
                b.p_value,
                match (b.within_noise(), b.expected_poisson) {
                    (true, true) => "within noise, as Burke says",
                    (false, true) => "BEYOND noise (Burke says Poisson)",
                    (true, false) => "within noise (Burke does not apply here)",
                    (false, false) => "beyond noise (Burke does not apply here: expected)",
                }
            ));
        }
        for n in &p.notes {
            s.push_str(&format!("  note: {n}\n"));
        }
    }
    // Points that failed their checks are left out of the counts, and counted as failed.
    let kept = || r.points.iter().filter(|p| !p.failed());
    let w: Vec<bool> = kept()
        .flat_map(|p| p.stations.iter().filter_map(|s| s.covered_w))
        .collect();
    let e: Vec<bool> = kept().filter_map(|p| p.end_to_end.covered).collect();
    let ks: Vec<bool> = kept()
        .filter_map(|p| p.end_to_end.ks.map(|k| k.within_noise()))
        .collect();
    let count = |v: &[bool]| v.iter().filter(|&&c| c).count();
    s.push_str(&format!(
        "\nSummary: W_j covered at {} of {} station-points, the end-to-end mean at {} of {} points",
        count(&w),
        w.len(),
        count(&e),
        e.len()
    ));
    if !ks.is_empty() {
        s.push_str(&format!(
            ", end-to-end KS within noise at {} of {}",
            count(&ks),
            ks.len()
        ));
    }
    let failed = r.points.iter().filter(|p| p.failed()).count();
    if failed > 0 {
        s.push_str(&format!(
            "; {failed} point{} FAILED its checks (left out)",
            if failed == 1 { "" } else { "s" }
        ));
    }
    s.push('\n');
    s.push_str(&rerun_lines(r));
    s
}

/// The checks column of a point: `ok`, `ok (2)` (kept at its second attempt), `FAILED`, or `–`
/// for a point recorded before the checks.
pub fn verdict_text(p: &NetPoint) -> String {
    match p.verdict {
        None => "–".into(),
        Some(Verdict::Failed) => "FAILED".into(),
        Some(Verdict::Ok) if p.attempts > 1 => format!("ok ({})", p.attempts),
        Some(Verdict::Ok) => "ok".into(),
    }
}

fn describe_all(cs: &[Check]) -> String {
    cs.iter()
        .map(crate::checks::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lines under the table: each attempt measured again and why, each failed point.
pub fn rerun_lines(r: &NetworkResults) -> String {
    let mut o = String::new();
    for p in &r.points {
        for a in &p.rejected {
            o.push_str(&format!(
                "re-run λ = {:.1}/s: attempt {} failed {}\n",
                p.lambda,
                a.attempt,
                describe_all(&a.failed)
            ));
        }
        if p.failed() {
            o.push_str(&format!(
                "FAILED λ = {:.1}/s: attempt {} (kept) failed {}; left out of the summary\n",
                p.lambda,
                p.attempts,
                describe_all(&p.failed_checks())
            ));
        }
    }
    o
}

fn verdict_csv(p: &NetPoint) -> String {
    match p.verdict {
        Some(Verdict::Ok) => "ok".into(),
        Some(Verdict::Failed) => "failed".into(),
        None => String::new(),
    }
}

fn failed_csv(p: &NetPoint) -> String {
    p.failed_checks()
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A number for the CSV, empty when there is none (or it is not finite).
fn csv_num(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(String::new, |v| v.to_string())
}

/// The CSV row of a mean over the whole network (`end-to-end`, `class-k`): the station
/// columns stay empty, `ks` is the end-to-end KS distance and its noise where there is one.
fn mean_row(
    p: &NetPoint,
    label: &str,
    mean: &Measured,
    reference: Option<(f64, Option<f64>)>,
    covered: Option<bool>,
    ks: Option<(f64, f64)>,
) -> [String; 25] {
    [
        p.lambda.to_string(),
        p.rho.to_string(),
        p.reference.clone(),
        label.to_string(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        csv_num(Some(mean.value)),
        csv_num(mean.ci95.map(|c| c.0)),
        csv_num(mean.ci95.map(|c| c.1)),
        csv_num(reference.map(|c| c.0)),
        csv_num(reference.and_then(|c| c.1)),
        covered.map_or_else(String::new, |c| c.to_string()),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        csv_num(ks.map(|k| k.0)),
        csv_num(ks.map(|k| k.1)),
        verdict_csv(p),
        p.attempts.to_string(),
        failed_csv(p),
    ]
}

/// `results.csv`: one row per point and station, an `end-to-end` row per point, and a
/// `class-k` row per class when the network has several.
pub fn csv(r: &NetworkResults) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "lambda",
        "rho_of_max",
        "reference",
        "station",
        "rho",
        "utilisation",
        "util_ci_low",
        "util_ci_high",
        "l",
        "w_us",
        "w_ci_low_us",
        "w_ci_high_us",
        "ref_w_us",
        "ref_w_half_us",
        "covered",
        "visits",
        "visits_theory",
        "burke_d",
        "burke_noise_001",
        "burke_applies",
        "ks",
        "ks_noise",
        "verdict",
        "attempts",
        "failed_checks",
    ])?;
    for p in &r.points {
        for s in &p.stations {
            let b = p.burke.iter().find(|b| b.station == s.name);
            w.write_record([
                p.lambda.to_string(),
                p.rho.to_string(),
                p.reference.clone(),
                s.name.clone(),
                s.rho.to_string(),
                csv_num(Some(s.utilisation.value)),
                csv_num(s.utilisation.ci95.map(|c| c.0)),
                csv_num(s.utilisation.ci95.map(|c| c.1)),
                csv_num(Some(s.l.value)),
                csv_num(Some(s.w_us.value)),
                csv_num(s.w_us.ci95.map(|c| c.0)),
                csv_num(s.w_us.ci95.map(|c| c.1)),
                csv_num(s.ref_w_us.map(|c| c.0)),
                csv_num(s.ref_w_us.and_then(|c| c.1)),
                s.covered_w.map_or_else(String::new, |c| c.to_string()),
                csv_num(Some(s.visits.value)),
                s.visits_theory.to_string(),
                csv_num(b.map(|b| b.d)),
                csv_num(b.map(|b| b.noise_001)),
                b.map_or_else(String::new, |b| b.expected_poisson.to_string()),
                String::new(),
                String::new(),
                verdict_csv(p),
                p.attempts.to_string(),
                failed_csv(p),
            ])?;
        }
        let e = &p.end_to_end;
        let ks = e.ks.map(|k| (k.d, k.noise));
        w.write_record(mean_row(
            p,
            "end-to-end",
            &e.net,
            e.ref_mean_us,
            e.covered,
            ks,
        ))?;
        for c in &e.classes {
            let label = format!("class-{}", c.class);
            w.write_record(mean_row(
                p,
                &label,
                &c.mean_us,
                c.ref_mean_us,
                c.covered,
                None,
            ))?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn measured_series(id: &str, label: &str, color: usize, pts: Vec<Point>) -> Series {
    Series {
        id: id.into(),
        label: label.into(),
        color: PALETTE[color % PALETTE.len()].into(),
        style: Style::Markers(Marker::Circle),
        points: pts,
    }
}

fn chart(id: &str, title: String, y: &str, series: Vec<Series>, notes: Vec<String>) -> String {
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .flat_map(|p| [Some(p.y), p.err.map(|e| e.1)])
        })
        .flatten()
        .filter(|v| v.is_finite())
        .collect();
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.x))
        .filter(|v| v.is_finite())
        .collect();
    let hi = ys.iter().copied().fold(0.0, f64::max).max(1e-9);
    let xhi = xs.iter().copied().fold(0.0, f64::max).max(1e-9);
    Chart {
        id: id.into(),
        title,
        subtitle: String::new(),
        x: Axis::auto("external arrival rate λ (1/s)", 0.0, xhi * 1.05, true),
        y: Axis::auto(y, 0.0, hi * 1.1, true),
        series,
        notes,
    }
    .render()
}

/// The plots of a network sweep: (file name, document).
pub fn plots(r: &NetworkResults) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let net = Network::parse(&r.network).ok();
    let lmax = r.lambda_max;
    let grid: Vec<f64> = match r
        .rates
        .iter()
        .copied()
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
    {
        Some(top) => (1..=60).map(|k| top * f64::from(k) / 60.0).collect(),
        None => Vec::new(),
    };
    let names: Vec<String> = r
        .points
        .first()
        .map(|p| p.stations.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    for (j, name) in names.iter().enumerate() {
        let at = |p: &NetPoint| p.stations.get(j).cloned();
        let mut series = Vec::new();
        if let Some(net) = &net
            && r.points.iter().all(|p| p.reference == "theory")
        {
            let line: Vec<Point> = grid
                .iter()
                .filter(|&&l| l < lmax)
                .filter_map(|&l| {
                    let t = theory(net, l).ok()?;
                    Some(Point::new(l, t.stations.get(j)?.w_s? * 1e6))
                })
                .collect();
            series.push(Series {
                id: "theory".into(),
                label: "product form W_j".into(),
                color: PALETTE[0].into(),
                style: Style::Line { dashed: true },
                points: line,
            });
        } else {
            let pts = r
                .points
                .iter()
                .filter_map(|p| {
                    let (v, h) = at(p)?.ref_w_us?;
                    let h = h.unwrap_or(0.0);
                    Some(Point {
                        x: p.lambda,
                        y: v,
                        err: Some((v - h, v + h)),
                    })
                })
                .collect();
            series.push(Series {
                id: "reference".into(),
                label: "simulated W_j, 95% CI".into(),
                color: PALETTE[0].into(),
                style: Style::Markers(Marker::Diamond),
                points: pts,
            });
        }
        series.push(measured_series(
            "measured",
            "measured W_j, 95% CI",
            1,
            r.points
                .iter()
                .filter_map(|p| {
                    let s = at(p)?;
                    Some(Point {
                        x: p.lambda,
                        y: s.w_us.value,
                        err: s.w_us.ci95,
                    })
                })
                .collect(),
        ));
        out.push((
            format!("station-{name}-w.svg"),
            chart(
                &format!("station-{name}-w"),
                format!("station {name}: mean sojourn per visit W against λ"),
                "W (µs)",
                series,
                vec![format!("λ_max = {lmax:.1}/s")],
            ),
        ));
        let mut series = Vec::new();
        if let Some(net) = &net {
            let line: Vec<Point> = grid
                .iter()
                .filter(|&&l| l < lmax)
                .filter_map(|&l| Some(Point::new(l, theory(net, l).ok()?.stations.get(j)?.rho)))
                .collect();
            series.push(Series {
                id: "theory".into(),
                label: "ρ_j = λ v_j / (c_j μ_j)".into(),
                color: PALETTE[0].into(),
                style: Style::Line { dashed: true },
                points: line,
            });
        }
        series.push(measured_series(
            "measured",
            "measured utilisation, 95% CI",
            1,
            r.points
                .iter()
                .filter_map(|p| {
                    let s = at(p)?;
                    Some(Point {
                        x: p.lambda,
                        y: s.utilisation.value,
                        err: s.utilisation.ci95,
                    })
                })
                .collect(),
        ));
        out.push((
            format!("station-{name}-rho.svg"),
            chart(
                &format!("station-{name}-rho"),
                format!("station {name}: utilisation against λ"),
                "ρ_j",
                series,
                Vec::new(),
            ),
        ));
    }
    // End to end.
    let mut series = Vec::new();
    let refs: Vec<Point> = r
        .points
        .iter()
        .filter_map(|p| {
            let (v, h) = p.end_to_end.ref_mean_us?;
            Some(Point {
                x: p.lambda,
                y: v,
                err: h.map(|h| (v - h, v + h)),
            })
        })
        .collect();
    if let Some(net) = &net
        && r.points.iter().all(|p| p.reference == "theory")
    {
        series.push(Series {
            id: "theory".into(),
            label: "product form Σ L_j / λ".into(),
            color: PALETTE[0].into(),
            style: Style::Line { dashed: true },
            points: grid
                .iter()
                .filter(|&&l| l < lmax)
                .filter_map(|&l| Some(Point::new(l, theory(net, l).ok()?.mean_s? * 1e6)))
                .collect(),
        });
    } else {
        series.push(Series {
            id: "reference".into(),
            label: "simulated mean, 95% CI".into(),
            color: PALETTE[0].into(),
            style: Style::Markers(Marker::Diamond),
            points: refs,
        });
    }
    series.push(measured_series(
        "measured",
        "measured mean (net of the path), 95% CI",
        1,
        r.points
            .iter()
            .map(|p| Point {
                x: p.lambda,
                y: p.end_to_end.net.value,
                err: p.end_to_end.net.ci95,
            })
            .collect(),
    ));
    out.push((
        END_TO_END_SVG.to_owned(),
        chart(
            "end-to-end",
            "end-to-end mean response time against λ".into(),
            "mean (µs)",
            series,
            Vec::new(),
        ),
    ));
    // The end-to-end distribution against the simulation's.
    let ks: Vec<(f64, EndToEndKs)> = r
        .points
        .iter()
        .filter_map(|p| Some((p.lambda, p.end_to_end.ks?)))
        .collect();
    if !ks.is_empty() {
        let hi = ks
            .iter()
            .flat_map(|(_, k)| [k.d, k.noise])
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
            .max(1e-6);
        let xhi = ks.iter().map(|(x, _)| *x).fold(0.0, f64::max).max(1e-9);
        out.push((
            END_TO_END_KS_SVG.to_owned(),
            Chart {
                id: "end-to-end-ks".into(),
                title: "end-to-end distribution: KS distance to the simulated sojourns".into(),
                subtitle: String::new(),
                x: Axis::auto("external arrival rate λ (1/s)", 0.0, xhi * 1.05, true),
                y: Axis::auto("D", 0.0, hi * 1.2, true),
                series: vec![
                    Series {
                        id: "noise".into(),
                        label: "noise level 1.358·√(1/n_eff + 1/m_eff)".into(),
                        color: PALETTE[0].into(),
                        style: Style::Line { dashed: true },
                        points: ks.iter().map(|(x, k)| Point::new(*x, k.noise)).collect(),
                    },
                    measured_series(
                        "d",
                        "two-sample D, server's own time against the simulator",
                        1,
                        ks.iter().map(|(x, k)| Point::new(*x, k.d)).collect(),
                    ),
                ],
                notes: Vec::new(),
            }
            .render(),
        ));
    }
    // Burke.
    let stations: Vec<String> = r
        .points
        .iter()
        .flat_map(|p| p.burke.iter().map(|b| b.station.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !stations.is_empty() {
        let mut series = Vec::new();
        for (k, name) in stations.iter().enumerate() {
            let pts: Vec<(f64, BurkeCheck)> = r
                .points
                .iter()
                .filter_map(|p| {
                    let b = p.burke.iter().find(|b| &b.station == name)?;
                    let rho = p.stations.iter().find(|s| &s.name == name)?.rho;
                    Some((rho, b.clone()))
                })
                .collect();
            series.push(Series {
                id: format!("noise-{name}"),
                label: format!("{name}: noise level (DKW, p = 0.001)"),
                color: PALETTE[(2 * k) % PALETTE.len()].into(),
                style: Style::Line { dashed: true },
                points: pts
                    .iter()
                    .map(|(x, b)| Point::new(*x, b.noise_001))
                    .collect(),
            });
            series.push(Series {
                id: format!("d-{name}"),
                label: format!("{name}: D over the bucket edges"),
                color: PALETTE[(2 * k + 1) % PALETTE.len()].into(),
                style: Style::Markers(Marker::Circle),
                points: pts
                    .iter()
                    .map(|(x, b)| Point {
                        x: *x,
                        y: b.d,
                        err: Some((0.0, b.noise_05)),
                    })
                    .collect(),
            });
        }
        let ys: Vec<f64> = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.y))
            .collect();
        let hi = ys.iter().copied().fold(0.0, f64::max).max(1e-6);
        out.push((
            BURKE_SVG.to_owned(),
            Chart {
                id: "burke".into(),
                title: "Burke's check: departure gaps against Exp(λ̂), KS distance".into(),
                subtitle: String::new(),
                x: Axis::auto("the station's load ρ", 0.0, 1.0, true),
                y: Axis::auto("D", 0.0, hi * 1.2, true),
                series,
                notes: vec!["bars: 0 to the p = 0.05 noise level".into()],
            }
            .render(),
        ));
    }
    out
}

/// `index.html`: the table and every plot on one self-contained page.
pub fn html(r: &NetworkResults, table: &str, plots: &[(String, String)]) -> String {
    let mut o = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>qlab network sweep</title>\
         <style>body{font-family:sans-serif;max-width:1100px;margin:auto}\
         pre{font-size:12px;overflow-x:auto}</style></head><body>\n",
    );
    o.push_str(&format!(
        "<h1>Network sweep: {}</h1>\n<p>started {}, λ_max = {:.2}/s, {} s per point, seed {}</p>\n",
        escape(&r.network_file),
        escape(&r.created),
        r.lambda_max,
        r.duration_s,
        r.seed
    ));
    o.push_str(&format!(
        "<h2>The network</h2>\n<pre>{}</pre>\n<h2>Points</h2>\n<pre>{}</pre>\n<h2>Plots</h2>\n",
        escape(&r.network),
        escape(table)
    ));
    for (name, doc) in plots {
        let body = doc.find("<svg").map_or(doc.as_str(), |i| &doc[i..]);
        o.push_str(&format!(
            "<figure id=\"{}\">{body}<figcaption>{}</figcaption></figure>\n",
            escape(name),
            escape(name)
        ));
    }
    if r.points.iter().any(|p| p.verdict.is_some()) {
        o.push_str("<h2>Checks</h2>\n");
        for (i, p) in r.points.iter().enumerate() {
            o.push_str(&format!(
                "<h3 id=\"checks-{}\">λ = {:.1}/s: {}, attempt {} kept</h3>\n<table>\
                 <tr><th>check</th><th>value</th><th>limit</th><th>unit</th><th>passed</th></tr>\n",
                i + 1,
                p.lambda,
                escape(&verdict_text(p)),
                p.attempts
            ));
            for c in &p.checks {
                o.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    escape(&c.name),
                    c.value,
                    c.limit,
                    escape(&c.unit),
                    if c.passed { "yes" } else { "NO" }
                ));
            }
            o.push_str("</table>\n");
            for a in &p.rejected {
                o.push_str(&format!(
                    "<p>attempt {} measured again: failed {}</p>\n",
                    a.attempt,
                    escape(&describe_all(&a.failed))
                ));
            }
        }
    }
    o.push_str("</body></html>\n");
    o
}

/// Redraws a network sweep from `dir/results.json`.
pub fn report(dir: &Path) -> anyhow::Result<NetworkOutput> {
    let r = NetworkResults::read(dir)?;
    let t = table(&r);
    let plots = plots(&r);
    let mut files = Vec::new();
    let mut put = |name: &str, text: &str| -> anyhow::Result<()> {
        let p = dir.join(name);
        write_atomic(&p, text.as_bytes())?;
        files.push(p);
        Ok(())
    };
    put(TABLE_TXT, &t)?;
    put(RESULTS_CSV, &csv(&r)?)?;
    for (name, doc) in &plots {
        put(name, doc)?;
    }
    put(INDEX_HTML, &html(&r, &t, &plots))?;
    files.insert(0, dir.join("results.json"));
    Ok(NetworkOutput { table: t, files })
}
