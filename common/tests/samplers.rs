//! Seeded statistical tests of the samplers and schedules.
//!
//! Tolerances are derived so that a correct implementation fails less than once in a million
//! runs (the seeds are fixed, so in practice the outcome is deterministic; the derivation says the
//! seed was not picked to pass):
//!
//! - Means: the mean of n i.i.d. samples with standard deviation σ has standard deviation σ/√n.
//!   With n = 10⁵ the sum is a Gamma (exponential case) or Irwin–Hall (uniform case) variable whose
//!   skewness is at most 2/√n ≈ 0.006, so the normal tail holds to a few percent out to 6σ:
//!   P(|Z| > 6) ≈ 2·10⁻⁹ (bound used: 6σ).
//! - Shape: Kolmogorov–Smirnov with the Dvoretzky–Kiefer–Wolfowitz–Massart inequality, which holds
//!   for every n: P(D > ε) ≤ 2·e^{−2nε²}. At α = 10⁻⁶: ε = √(ln(2/α)/(2n)) = 0.00852 for
//!   n = 10⁵. Rounding samples to whole nanoseconds moves the CDF by at most density × 0.5 ns,
//!   below 10⁻⁶ for every distribution here.
use queuelab_common::samplers::{
    ArrivalKind, Rng, SERVICE_STREAM, Schedule, ServiceKind, ServiceSampler, exp_sample, rng,
};
use queuelab_common::stats::ks_statistic;
use rand_distr::{Distribution, Exp1};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng as _, SeedableRng};

const N: usize = 100_000;

/// DKW–Massart ε at α = 10⁻⁶ for n samples.
fn ks_bound(n: usize) -> f64 {
    ((2.0f64 / 1e-6).ln() / (2.0 * n as f64)).sqrt()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn service_samples_s(kind: ServiceKind, mu: f64, r: &mut Rng) -> Vec<f64> {
    let s = ServiceSampler::new(kind, mu);
    (0..N).map(|_| s.sample_ns(r) as f64 * 1e-9).collect()
}

#[test]
fn rng_streams_are_long_jumps_apart() {
    for seed in [0u64, 1, 42, u64::MAX] {
        let mut expected = Xoshiro256PlusPlus::seed_from_u64(seed);
        for stream in 0..6u64 {
            let mut a = rng(seed, stream);
            let mut b = expected.clone();
            for _ in 0..8 {
                assert_eq!(a.next_u64(), b.next_u64(), "seed {seed} stream {stream}");
            }
            expected.long_jump();
        }
    }
    // Reproducible, and different streams and seeds differ.
    let first = |seed, stream| rng(seed, stream).next_u64();
    assert_eq!(first(7, 3), first(7, 3));
    assert_ne!(first(7, 3), first(7, 4));
    assert_ne!(first(7, 3), first(8, 3));
    // Past the loop threshold the single general jump lands on the same stream.
    let mut looped = Xoshiro256PlusPlus::seed_from_u64(11);
    for _ in 0..1100 {
        looped.long_jump();
    }
    assert_eq!(rng(11, 1100).next_u64(), looped.next_u64());
    // Huge stream indices work.
    assert_ne!(first(7, u64::MAX), first(7, u64::MAX - 1));
}

#[test]
fn service_kind_parse_and_display() {
    for (s, k) in [
        ("exp", ServiceKind::Exp),
        ("exponential", ServiceKind::Exp),
        ("const", ServiceKind::Const),
        ("deterministic", ServiceKind::Const),
        ("uniform", ServiceKind::Uniform),
        ("zero", ServiceKind::Zero),
        ("EXP", ServiceKind::Exp),
    ] {
        assert_eq!(s.parse::<ServiceKind>(), Ok(k), "{s}");
    }
    for k in [
        ServiceKind::Exp,
        ServiceKind::Const,
        ServiceKind::Uniform,
        ServiceKind::Zero,
    ] {
        assert_eq!(k.to_string().parse::<ServiceKind>(), Ok(k));
    }
    assert_eq!(ServiceKind::Const.to_string(), "const");
    assert_eq!(" exp ".parse::<ServiceKind>(), Ok(ServiceKind::Exp));
    for bad in ["", "gamma", "poisson", "ex p"] {
        let e = bad.parse::<ServiceKind>().expect_err(bad);
        assert!(e.to_string().contains("expected exp, const"), "{e}");
    }
}

#[test]
fn arrival_kind_parse_and_display() {
    for (s, k) in [
        ("poisson", ArrivalKind::Poisson),
        ("exp", ArrivalKind::Poisson),
        ("constant", ArrivalKind::Constant),
        ("const", ArrivalKind::Constant),
        ("uniform", ArrivalKind::Uniform),
    ] {
        assert_eq!(s.parse::<ArrivalKind>(), Ok(k), "{s}");
        assert_eq!(k.to_string().parse::<ArrivalKind>(), Ok(k));
    }
    assert_eq!(ArrivalKind::Poisson.to_string(), "poisson");
    assert!("burst".parse::<ArrivalKind>().is_err());
    assert!("".parse::<ArrivalKind>().is_err());
}

#[test]
fn service_sampler_rejects_bad_rates() {
    for mu in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(
            ServiceSampler::try_new(ServiceKind::Exp, mu).is_none(),
            "{mu}"
        );
        assert!(
            ServiceSampler::try_new(ServiceKind::Const, mu).is_none(),
            "{mu}"
        );
    }
    assert!(ServiceSampler::try_new(ServiceKind::Zero, f64::NAN).is_some());
    assert!(Schedule::try_new(ArrivalKind::Poisson, 0.0).is_none());
    assert!(Schedule::try_new(ArrivalKind::Constant, f64::INFINITY).is_none());
}

#[test]
fn exponential_service_mean_and_shape() {
    let mu = 1_000.0;
    let mut r = rng(1, 0);
    let mut xs = service_samples_s(ServiceKind::Exp, mu, &mut r);
    let m = mean(&xs);
    let sigma = (1.0 / mu) / (N as f64).sqrt();
    assert!((m - 1.0 / mu).abs() < 6.0 * sigma, "mean {m}");
    assert_eq!(ServiceSampler::new(ServiceKind::Exp, mu).mean_s(), 1.0 / mu);

    let d = ks_statistic(&mut xs, |x| 1.0 - (-mu * x).exp());
    assert!(d < ks_bound(N), "KS D = {d}");
    // Power: the same samples against a 10% larger mean are rejected (sup of
    // |e^{-x} − e^{-x/1.1}| is 0.035, four times the bound).
    let d_wrong = ks_statistic(&mut xs, |x| 1.0 - (-mu / 1.1 * x).exp());
    assert!(
        d_wrong > ks_bound(N),
        "KS against a wrong mean: D = {d_wrong}"
    );
}

#[test]
fn uniform_service_mean_and_shape() {
    let mu = 2_000.0;
    let mut r = rng(2, 5);
    let mut xs = service_samples_s(ServiceKind::Uniform, mu, &mut r);
    let width = 2.0 / mu;
    let m = mean(&xs);
    // Uniform on [0, w]: σ = w/√12.
    let sigma = width / 12f64.sqrt() / (N as f64).sqrt();
    assert!((m - 1.0 / mu).abs() < 6.0 * sigma, "mean {m}");
    assert!(xs.iter().all(|&x| (0.0..=width).contains(&x)));
    let d = ks_statistic(&mut xs, |x| (x / width).clamp(0.0, 1.0));
    assert!(d < ks_bound(N), "KS D = {d}");
}

#[test]
fn constant_and_zero_service_are_exact() {
    let mut r = rng(3, 0);
    let c = ServiceSampler::new(ServiceKind::Const, 3_000.0);
    for _ in 0..1000 {
        assert_eq!(c.sample_ns(&mut r), 333_333);
    }
    let c = ServiceSampler::new(ServiceKind::Const, 1_000.0);
    assert_eq!(c.sample_ns(&mut r), 1_000_000);
    let z = ServiceSampler::new(ServiceKind::Zero, 0.0);
    assert_eq!(z.sample_ns(&mut r), 0);
    assert_eq!(z.mean_s(), 0.0);
}

#[test]
fn exp_sample_mean_and_shape() {
    let mut r = rng(4, 1);
    let mean_s = 0.25;
    let mut xs: Vec<f64> = (0..N).map(|_| exp_sample(mean_s, &mut r)).collect();
    let m = mean(&xs);
    assert!(
        (m - mean_s).abs() < 6.0 * mean_s / (N as f64).sqrt(),
        "mean {m}"
    );
    let d = ks_statistic(&mut xs, |x| 1.0 - (-x / mean_s).exp());
    assert!(d < ks_bound(N), "KS D = {d}");
}

/// The n-th time of a Poisson schedule is the exact sum of its gaps: the same gaps summed here in
/// 96-bit fixed point (error below 2⁻³² ns per gap) agree with it to within the one nanosecond that
/// rounding down allows, over 10⁶ arrivals (no drift), and the rate is λ.
#[test]
fn poisson_schedule_tracks_exact_sum_without_drift() {
    let rate = 100_000.0;
    let n = 1_000_000u64;
    let mut sched = Schedule::new(ArrivalKind::Poisson, rate);
    let mut r = rng(5, 0);
    let mut replay = rng(5, 0);
    let gap_ns = 1e9 / rate;
    let mut exact: u128 = 0; // nanoseconds · 2^32
    let mut prev = 0u64;
    let mut gaps = Vec::with_capacity(N);
    for i in 0..n {
        let t = sched.next_ns(&mut r);
        let g: f64 = Exp1.sample(&mut replay);
        exact += (g * gap_ns * 4_294_967_296.0).round() as u128;
        let exact_ns = (exact >> 32) as i128;
        let diff = t as i128 - exact_ns;
        assert!(
            diff.abs() <= 1,
            "arrival {i}: schedule {t} ns, exact sum {exact_ns} ns"
        );
        assert!(t >= prev, "not monotone at {i}");
        if (i as usize) < N {
            gaps.push((t - prev) as f64 * 1e-9);
        }
        prev = t;
    }
    assert_eq!(sched.count(), n);
    assert_eq!(sched.rate(), rate);
    // T_n is Gamma(n, λ): mean n/λ, σ = √n/λ; bound 6σ.
    let expected = n as f64 / rate;
    let sigma = (n as f64).sqrt() / rate;
    let total = prev as f64 * 1e-9;
    assert!(
        (total - expected).abs() < 6.0 * sigma,
        "T_n = {total} s, expected {expected}"
    );
    // The first 10⁵ gaps are exponential (rounding each time down moves a gap by < 1 ns,
    // a CDF shift below λ·1 ns = 10⁻⁴, added to the bound).
    let d = ks_statistic(&mut gaps, |x| 1.0 - (-rate * x).exp());
    assert!(d < ks_bound(N) + 1e-4, "KS D of gaps = {d}");
}

/// A constant schedule's n-th time is n/λ rounded to the nearest nanosecond, exactly, for 10⁶
/// arrivals at a rate whose gap is not a whole number of nanoseconds.
#[test]
fn constant_schedule_is_exact() {
    let mut r = rng(6, 0);
    let mut sched = Schedule::new(ArrivalKind::Constant, 3.0);
    for n in 1..=1_000_000u64 {
        // round(n·10⁹/3): the fraction is 0, 1/3 or 2/3, never a tie.
        let want = (2 * n * 1_000_000_000 + 3) / 6;
        assert_eq!(sched.next_ns(&mut r), want, "arrival {n}");
    }
    let mut sched = Schedule::new(ArrivalKind::Constant, 7_000.0);
    for n in 1..=1_000_000u64 {
        let want = (2 * n * 1_000_000 + 7) / 14;
        assert_eq!(sched.next_ns(&mut r), want, "arrival {n}");
    }
}

#[test]
fn uniform_schedule_rate_and_shape() {
    let rate = 50_000.0;
    let mut r = rng(7, 2);
    let mut sched = Schedule::new(ArrivalKind::Uniform, rate);
    let mut prev = 0u64;
    let mut gaps = Vec::with_capacity(N);
    for _ in 0..N {
        let t = sched.next_ns(&mut r);
        gaps.push((t - prev) as f64 * 1e-9);
        prev = t;
    }
    // Sum of n U[0, 2/λ] gaps: mean n/λ, σ = √n·(2/λ)/√12; bound 6σ.
    let expected = N as f64 / rate;
    let sigma = (N as f64).sqrt() * (2.0 / rate) / 12f64.sqrt();
    let total = prev as f64 * 1e-9;
    assert!((total - expected).abs() < 6.0 * sigma, "T_n = {total}");
    // Each gap is moved by < 1 ns by rounding: CDF shift ≤ density·1 ns = λ/2 · 10⁻⁹.
    let w = 2.0 / rate;
    let d = ks_statistic(&mut gaps, |x| (x / w).clamp(0.0, 1.0));
    assert!(d < ks_bound(N) + rate / 2.0 * 1e-9, "KS D = {d}");
}

/// A server and a client run with the same `--seed` must not draw the same sequence: if qserve's
/// service times came from qload's arrival stream, each service would be proportional to the gap
/// before it and the queue would hardly wait. Independence is checked by the sample correlation of
/// the paired draws: for independent pairs it is ≈ N(0, 1/n), so with n = 10⁵ a bound of 6/√n =
/// 0.019 fails with probability ≈ 2·10⁻⁹, while a shared stream gives exactly 1.
#[test]
fn service_stream_is_independent_of_arrival_streams() {
    let sampler = ServiceSampler::new(ServiceKind::Exp, 1.0);
    for seed in [0, 1, 42] {
        let mut service = rng(seed, SERVICE_STREAM);
        for thread in 0..4 {
            let mut arrivals = rng(seed, thread);
            let pairs: Vec<(f64, f64)> = (0..N)
                .map(|_| {
                    let s = sampler.sample_ns(&mut service) as f64;
                    let a = sampler.sample_ns(&mut arrivals) as f64;
                    (s, a)
                })
                .collect();
            let n = pairs.len() as f64;
            let (ms, ma) = pairs
                .iter()
                .fold((0.0, 0.0), |(x, y), (s, a)| (x + s / n, y + a / n));
            let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
            for (s, a) in &pairs {
                sxy += (s - ms) * (a - ma);
                sxx += (s - ms) * (s - ms);
                syy += (a - ma) * (a - ma);
            }
            let r = sxy / (sxx * syy).sqrt();
            assert!(
                r.abs() < 6.0 / n.sqrt(),
                "seed {seed}, thread {thread}: correlation {r} between service and arrival draws"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The general service-time distributions.
//
// Every statistical check below fails a correct program with probability at most DELTA = 10⁻⁸,
// and there are fewer than 100 of them, so the whole set fails with probability below 10⁻⁶:
//
// - Means and second moments, light tails (Erlang, H2: exponential tails): the normal bound at
//   z = 6 (two-sided 2·10⁻⁹). The sums are skewed (at most γ ≈ 28 for S² of h2:10, γ/√n ≈ 0.03
//   at n = 10⁶), and the Edgeworth correction to the tail at z = 6 is γ(z² − 1)/(6√n) ≈ 16%, well
//   inside the factor 5 between 2·10⁻⁹ and DELTA; no single draw can move the mean that far (the
//   largest of 10⁶ draws of h2:10 is below 300 mean service times with probability 1 − 10⁻¹²).
// - Bounded support (bounded Pareto, trace): Bernstein's inequality, which holds for every n:
//   P(|X̄ − EX| ≥ t) ≤ 2·exp(−nt²/(2σ² + 2bt/3)) for |X − EX| ≤ b, solved for t.
// - Lognormal (unbounded, heavy): ln S is exactly normal, so its sample mean is checked at the
//   exact normal z for DELTA and its sample variance by the Laurent–Massart bounds of the χ²
//   distribution (P(χ²ₖ ≥ k + 2√(kx) + 2x) ≤ e^{−x}, P(χ²ₖ ≤ k − 2√(kx)) ≤ e^{−x}), which pins C² =
//   e^{σ²} − 1. The mean of S itself is checked by truncation: no draw exceeds T with probability
//   1 − DELTA/2 (T from the exact normal tail), and below T Bernstein applies with b = T
//   (truncation is 1-Lipschitz, so it does not raise the variance); the mean lost above T,
//   E[S; S > T] = m·Φ̄(z_T − σ), is added. The bound is loose for C² = 10 (the tail is that
//   heavy); the log checks are the tight ones.
// - Shape: the DKW–Massart inequality P(sup|Fₙ − F| > ε) ≤ 2e^{−2nε²}, for every n and every F
//   (a discrete F only makes the sup smaller). Rounding a draw to the nearest nanosecond moves
//   the CDF by at most f_max·0.5 ns; every density here is below 20/m = 2·10⁴/s (the largest
//   are erlang:1000's at its mode, ≈ 1/(√(2π)·m/√1000) = 12.6/m, and the bounded Pareto's
//   α/(L(1 − RATIO^{−α})) at its lower bound L, 6.1/m for pareto:1.1:1000), so
//   2·10⁴/s · 1 ns = 2·10⁻⁵ is added.
// - Rounding to a nanosecond moves each draw by at most 0.5 ns, which is added to the tolerance
//   of the mean (and 2·0.5 ns·H + (0.5 ns)² to that of the second moment).
// ---------------------------------------------------------------------------------------------

use queuelab_common::samplers::{DEFAULT_PARETO_RATIO, Trace};
use statrs::distribution::{ContinuousCDF, Normal};

/// Failure probability of one statistical check.
const DELTA: f64 = 1e-8;
/// The normal z of the light-tailed checks (two-sided 2·10⁻⁹, see above).
const Z_LIGHT: f64 = 6.0;
/// The service rate of the checks, and its mean.
const MU: f64 = 1000.0;
const M: f64 = 1.0 / MU;
/// Half a nanosecond, in seconds: the largest move of rounding a draw.
const HALF_NS: f64 = 0.5e-9;
/// The CDF shift of rounding (see above).
const ROUND_CDF: f64 = 2e-5;

/// A file in the temporary directory whose name no other test run uses.
fn temp_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "queuelab-samplers-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write temp file");
    path.to_str().expect("utf-8 temp path").to_owned()
}

/// The trace of the statistical checks: a few times in µs, one repeated (an atom of 2/7).
const SMALL_TRACE: &str =
    "# service times, µs\n100\n250\n250\n\n400 # a comment\n900\r\n1500\n3000\n";

fn small_trace_kind() -> ServiceKind {
    let path = temp_file("small.trace", SMALL_TRACE);
    format!("trace:{path}").parse().expect("the small trace")
}

/// ∫₀^ℓ e^{−by} dy, written out again here so the checks do not lean on the library's.
fn h(b: f64, ell: f64) -> f64 {
    if b == 0.0 {
        ell
    } else {
        (1.0 - (-b * ell).exp()) / b
    }
}

/// The lower bound L of a bounded Pareto of mean M: E[S]/L = h(α−1)/h(α).
fn pareto_low(alpha: f64, ratio: f64) -> f64 {
    M * h(alpha, ratio.ln()) / h(alpha - 1.0, ratio.ln())
}

/// E[S^j] of each kind at μ = MU, from its textbook formula.
fn moment(kind: ServiceKind, j: i32) -> f64 {
    let jf = f64::from(j);
    match kind {
        ServiceKind::Erlang(k) => {
            // Gamma(k, θ = M/k): θ^j·k(k+1)…(k+j−1).
            let k = f64::from(k);
            (0..j).map(|i| k + f64::from(i)).product::<f64>() * (M / k).powi(j)
        }
        ServiceKind::H2 { cv2 } => {
            // j!·Σ pᵢ·(mean of branch i)^j, branch i of mean M/(2pᵢ).
            let r = ((cv2 - 1.0) / (cv2 + 1.0)).sqrt();
            let (p1, p2) = (0.5 * (1.0 + r), 0.5 * (1.0 - r));
            let fact: f64 = (1..=j).map(f64::from).product();
            fact * (p1 * (M / (2.0 * p1)).powi(j) + p2 * (M / (2.0 * p2)).powi(j))
        }
        ServiceKind::Lognormal { cv2 } => {
            // E[e^{jX}] for X ~ N(ln M − σ²/2, σ²).
            let s2 = (1.0 + cv2).ln();
            M.powi(j) * (0.5 * s2 * jf * (jf - 1.0)).exp()
        }
        ServiceKind::Pareto { alpha, ratio } => {
            let ell = ratio.ln();
            pareto_low(alpha, ratio).powi(j) * h(alpha - jf, ell) / h(alpha, ell)
        }
        ServiceKind::Trace(t) => {
            let scale = M / t.mean_s();
            t.times_s.iter().map(|x| (x * scale).powi(j)).sum::<f64>() / t.times_s.len() as f64
        }
        other => panic!("no moments written for {other}"),
    }
}

/// The largest value, for the kinds of bounded support.
fn upper_bound(kind: ServiceKind) -> Option<f64> {
    match kind {
        ServiceKind::Pareto { alpha, ratio } => Some(pareto_low(alpha, ratio) * ratio),
        ServiceKind::Trace(t) => {
            let max = t.times_s.iter().copied().fold(0.0, f64::max);
            Some(max * M / t.mean_s())
        }
        _ => None,
    }
}

/// Bernstein: the t with 2·exp(−nt²/(2σ² + 2bt/3)) = δ.
fn bernstein(n: usize, var: f64, b: f64, delta: f64) -> f64 {
    let l = (2.0 / delta).ln();
    let n = n as f64;
    let a = b * l / (3.0 * n);
    a + (a * a + 2.0 * var * l / n).sqrt()
}

/// The normal quantile with upper tail p.
fn z_upper(p: f64) -> f64 {
    -Normal::standard().inverse_cdf(p)
}

/// The DKW–Massart ε at DELTA.
fn dkw(n: usize) -> f64 {
    ((2.0 / DELTA).ln() / (2.0 * n as f64)).sqrt()
}

fn draws_s(kind: ServiceKind, n: usize, seed: u64) -> Vec<f64> {
    let s = ServiceSampler::new(kind, MU);
    let mut r = rng(seed, SERVICE_STREAM);
    (0..n).map(|_| s.sample_ns(&mut r) as f64 * 1e-9).collect()
}

/// The sample mean and C² of `kind` are checked against 1/μ and `cv2()` with the bounds derived
/// at the top of this section, and the draws against `cdf` by Kolmogorov–Smirnov.
fn check_distribution(kind: ServiceKind, n: usize, seed: u64) {
    let sampler = ServiceSampler::new(kind, MU);
    assert_eq!(sampler.mean_s(), M, "{kind}");
    let mut xs = draws_s(kind, n, seed);
    let nf = n as f64;
    let m1 = xs.iter().sum::<f64>() / nf;
    let m2 = xs.iter().map(|x| x * x).sum::<f64>() / nf;
    let cv2 = kind.cv2();
    let e2 = (1.0 + cv2) * M * M;
    let sample_cv2 = m2 / (m1 * m1) - 1.0;

    if let ServiceKind::Lognormal { .. } = kind {
        let s2 = cv2.ln_1p();
        let sigma = s2.sqrt();
        // ln S: exact normal mean and χ² variance. The rounding of a draw S̃ moves ln S by at
        // most 0.5 ns/(S̃ − 0.5 ns) (every draw here is ≥ 1 ns: P(S < 1 ns) < 10⁻¹⁷ per draw);
        // its mean and root mean square bound the move of the sample mean and deviation.
        let ys: Vec<f64> = xs.iter().map(|x| x.ln()).collect();
        let slack: Vec<f64> = xs.iter().map(|x| HALF_NS / (x - HALF_NS)).collect();
        let slack_mean = slack.iter().sum::<f64>() / nf;
        let slack_rms = (slack.iter().map(|d| d * d).sum::<f64>() / nf).sqrt();
        let y_mean = ys.iter().sum::<f64>() / nf;
        let y_var = ys.iter().map(|y| (y - y_mean) * (y - y_mean)).sum::<f64>() / (nf - 1.0);
        let tol = z_upper(DELTA / 2.0) * sigma / nf.sqrt() + slack_mean;
        let want = M.ln() - 0.5 * s2;
        assert!(
            (y_mean - want).abs() < tol,
            "{kind}: mean of ln S {y_mean}, want {want} ± {tol}"
        );
        let k = nf - 1.0;
        let x = (2.0 / DELTA).ln();
        let (lo, hi) = (
            1.0 - 2.0 * (x / k).sqrt(),
            1.0 + 2.0 * (x / k).sqrt() + 2.0 * x / k,
        );
        // var(Y + Δ) − var(Y) = 2cov(Y, Δ) + var(Δ): at most 2·sd(Y)·rms(Δ) + rms(Δ)².
        let dv = 2.0 * y_var.sqrt() * slack_rms + slack_rms * slack_rms;
        assert!(
            y_var > s2 * lo - dv && y_var < s2 * hi + dv,
            "{kind}: variance of ln S {y_var}, σ² = {s2}, bounds [{}, {}]",
            s2 * lo - dv,
            s2 * hi + dv
        );
        // So C² = e^{σ²} − 1 is within:
        let est_cv2 = y_var.exp_m1();
        assert!(
            est_cv2 > (s2 * lo - dv).exp_m1() && est_cv2 < (s2 * hi + dv).exp_m1(),
            "{kind}: C² from ln S {est_cv2}, cv2() {cv2}"
        );
        // The mean of S, by truncation at T.
        let z_t = z_upper(DELTA / 2.0 / nf);
        let t_cut = M * (sigma * z_t - 0.5 * s2).exp();
        let above = M * Normal::standard().sf(z_t - sigma);
        let tol = bernstein(n, cv2 * M * M, t_cut, DELTA / 2.0) + above + HALF_NS;
        assert!((m1 - M).abs() < tol, "{kind}: mean {m1}, want {M} ± {tol}");
    } else {
        let (t1, t2) = match upper_bound(kind) {
            Some(hi) => (
                bernstein(n, cv2 * M * M, hi, DELTA) + HALF_NS,
                bernstein(n, moment(kind, 4) - e2 * e2, hi * hi, DELTA)
                    + 2.0 * HALF_NS * hi
                    + HALF_NS * HALF_NS,
            ),
            None => (
                Z_LIGHT * (cv2 * M * M / nf).sqrt() + HALF_NS,
                // Rounding: the largest draw is below 300 M (see above).
                Z_LIGHT * ((moment(kind, 4) - e2 * e2) / nf).sqrt() + 2.0 * HALF_NS * 300.0 * M,
            ),
        };
        assert!((m1 - M).abs() < t1, "{kind}: mean {m1}, want {M} ± {t1}");
        assert!((m2 - e2).abs() < t2, "{kind}: E[S²] {m2}, want {e2} ± {t2}");
        // The two together bound the sample C² = M₂/M₁² − 1.
        let (lo, hi) = (
            (e2 - t2) / ((M + t1) * (M + t1)) - 1.0,
            (e2 + t2) / ((M - t1) * (M - t1)) - 1.0,
        );
        assert!(
            sample_cv2 > lo && sample_cv2 < hi,
            "{kind}: sample C² {sample_cv2}, cv2() {cv2}, bounds [{lo}, {hi}]"
        );
    }
    if let Some(hi) = upper_bound(kind) {
        let lo = match kind {
            ServiceKind::Pareto { alpha, ratio } => pareto_low(alpha, ratio),
            _ => 0.0,
        };
        let (min, max) = xs
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(
            min >= lo - HALF_NS && max <= hi + HALF_NS,
            "{kind}: draws in [{min}, {max}]"
        );
    }

    let cdf = |t: f64| sampler.cdf(t).expect("a closed-form CDF");
    let d = match kind {
        ServiceKind::Trace(_) => discrete_ks(&mut xs, &sampler),
        _ => ks_statistic(&mut xs, cdf),
    };
    let eps = dkw(n) + ROUND_CDF;
    assert!(d < eps, "{kind}: KS D = {d} ≥ {eps}");
}

/// sup |Fₙ − F| for a trace: both are step functions jumping at the (scaled) times only, so the
/// sup is reached at those times. A draw is the scaled time rounded to a nanosecond, and the
/// times are far more than a nanosecond apart, so the draws at most a rounded time are those of
/// the times at most it.
fn discrete_ks(xs: &mut [f64], sampler: &ServiceSampler) -> f64 {
    let ServiceKind::Trace(t) = sampler.kind else {
        unreachable!("a trace")
    };
    xs.sort_unstable_by(f64::total_cmp);
    let scale = M / t.mean_s();
    let n = xs.len() as f64;
    let mut d = 0.0f64;
    for &x in &t.times_s {
        let v = x * scale;
        let rounded = (v * 1e9).round() * 1e-9;
        let emp = xs.partition_point(|&s| s <= rounded + 1e-12) as f64 / n;
        let f = sampler.cdf(v).expect("a step CDF");
        d = d.max((emp - f).abs());
    }
    d
}

#[test]
fn erlang_draws_match_mean_cv2_and_cdf() {
    // erlang:4 sums exponentials; erlang:12 and erlang:1000 take the Gamma method.
    check_distribution(ServiceKind::Erlang(4), 1_000_000, 11);
    check_distribution(ServiceKind::Erlang(12), 1_000_000, 12);
    check_distribution(ServiceKind::Erlang(1000), 200_000, 13);
}

#[test]
fn h2_draws_match_mean_cv2_and_cdf() {
    check_distribution(ServiceKind::H2 { cv2: 4.0 }, 1_000_000, 21);
    check_distribution(ServiceKind::H2 { cv2: 10.0 }, 1_000_000, 22);
}

#[test]
fn lognormal_draws_match_mean_cv2_and_cdf() {
    check_distribution(ServiceKind::Lognormal { cv2: 10.0 }, 2_000_000, 31);
    check_distribution(ServiceKind::Lognormal { cv2: 0.5 }, 1_000_000, 32);
}

#[test]
fn pareto_draws_match_mean_cv2_and_cdf() {
    for (i, (alpha, ratio)) in [
        (1.5, DEFAULT_PARETO_RATIO),
        (1.1, 1000.0),
        (2.5, 100.0),
        (1.0, 50.0),
    ]
    .into_iter()
    .enumerate()
    {
        check_distribution(
            ServiceKind::Pareto { alpha, ratio },
            1_000_000,
            41 + i as u64,
        );
    }
}

#[test]
fn trace_draws_match_mean_cv2_and_cdf() {
    check_distribution(small_trace_kind(), 1_000_000, 51);
}

/// The KS check has power: the same draws are refused against a nearby parameter.
#[test]
fn ks_refuses_a_wrong_parameter() {
    // The distances are at least 0.025 (h2:4 against h2:3), over three times the bound here.
    let n = 200_000;
    for (kind, wrong) in [
        (ServiceKind::H2 { cv2: 4.0 }, ServiceKind::H2 { cv2: 3.0 }),
        (
            ServiceKind::Lognormal { cv2: 10.0 },
            ServiceKind::Lognormal { cv2: 8.0 },
        ),
        (
            ServiceKind::Pareto {
                alpha: 1.5,
                ratio: 1000.0,
            },
            ServiceKind::Pareto {
                alpha: 1.4,
                ratio: 1000.0,
            },
        ),
        (ServiceKind::Erlang(4), ServiceKind::Erlang(5)),
    ] {
        let mut xs = draws_s(kind, n, 61);
        let s = ServiceSampler::new(wrong, MU);
        let d = ks_statistic(&mut xs, |t| s.cdf(t).expect("closed form"));
        assert!(d > dkw(n) + ROUND_CDF, "{kind} against {wrong}: D = {d}");
    }
}

#[test]
fn new_kinds_parse_and_display_round_trip() {
    let trace = small_trace_kind();
    for (s, k) in [
        ("erlang:4", ServiceKind::Erlang(4)),
        ("Erlang:1", ServiceKind::Erlang(1)),
        (" ERLANG : 12 ", ServiceKind::Erlang(12)),
        ("erlang:4294967295", ServiceKind::Erlang(u32::MAX)),
        ("h2:4", ServiceKind::H2 { cv2: 4.0 }),
        ("H2:1.5", ServiceKind::H2 { cv2: 1.5 }),
        ("h2:1e3", ServiceKind::H2 { cv2: 1000.0 }),
        ("lognormal:10", ServiceKind::Lognormal { cv2: 10.0 }),
        ("lognormal: 0.5", ServiceKind::Lognormal { cv2: 0.5 }),
        (
            "pareto:1.5",
            ServiceKind::Pareto {
                alpha: 1.5,
                ratio: DEFAULT_PARETO_RATIO,
            },
        ),
        (
            "pareto:1.1:1000",
            ServiceKind::Pareto {
                alpha: 1.1,
                ratio: 1000.0,
            },
        ),
        (
            "Pareto:2.5:100",
            ServiceKind::Pareto {
                alpha: 2.5,
                ratio: 100.0,
            },
        ),
        (
            "pareto:1:1.0001",
            ServiceKind::Pareto {
                alpha: 1.0,
                ratio: 1.0001,
            },
        ),
    ] {
        assert_eq!(s.parse::<ServiceKind>(), Ok(k), "{s}");
    }
    // Display parses back to the same kind, awkward decimals included.
    for k in [
        ServiceKind::Erlang(1),
        ServiceKind::Erlang(7),
        ServiceKind::H2 { cv2: 4.0 },
        ServiceKind::H2 { cv2: 1.0 + 1e-12 },
        ServiceKind::H2 {
            cv2: 0.1 + 0.2 + 1.0,
        },
        ServiceKind::Lognormal { cv2: 1.0 / 3.0 },
        ServiceKind::Lognormal { cv2: 1e-300 },
        ServiceKind::Pareto {
            alpha: 1.5,
            ratio: DEFAULT_PARETO_RATIO,
        },
        ServiceKind::Pareto {
            alpha: 2.0 / 3.0,
            ratio: 1e9 + 0.5,
        },
        trace,
    ] {
        let shown = k.to_string();
        assert_eq!(shown.parse::<ServiceKind>(), Ok(k), "{shown}");
    }
    assert_eq!(ServiceKind::Erlang(4).to_string(), "erlang:4");
    assert_eq!(ServiceKind::H2 { cv2: 4.0 }.to_string(), "h2:4");
    assert_eq!(
        ServiceKind::Pareto {
            alpha: 1.5,
            ratio: 1000.0
        }
        .to_string(),
        "pareto:1.5:1000"
    );
    let ServiceKind::Trace(t) = trace else {
        unreachable!("a trace")
    };
    assert!(trace.to_string().starts_with("trace:") && trace.to_string().ends_with("small.trace"));
    assert_eq!(t.times_s.len(), 7);
}

#[test]
fn bad_service_kinds_say_why() {
    for (s, why) in [
        ("erlang", "erlang needs its number of phases"),
        ("erlang:", "must be a whole number"),
        ("erlang:0", "must be at least 1"),
        ("erlang:1.5", "must be a whole number"),
        ("erlang:-2", "must be a whole number"),
        ("erlang:four", "must be a whole number"),
        ("erlang:4294967296", "too many"),
        ("h2", "h2 needs its squared coefficient of variation"),
        ("h2:", "must be a number > 1"),
        ("h2:x", "must be a number > 1"),
        ("h2:nan", "must be a number > 1"),
        ("h2:inf", "must be a number > 1"),
        ("h2:1", "must be above 1"),
        ("h2:0.5", "must be above 1"),
        (
            "lognormal",
            "lognormal needs its squared coefficient of variation",
        ),
        ("lognormal:0", "must be above 0"),
        ("lognormal:-1", "must be above 0"),
        ("lognormal:1e999", "must be a number > 0"),
        ("pareto", "pareto needs its shape"),
        ("pareto:", "ALPHA"),
        ("pareto:0", "must be above 0"),
        ("pareto:-1.5", "must be above 0"),
        ("pareto:1.5:1", "RATIO"),
        ("pareto:1.5:0.5", "must be above 1"),
        ("pareto:1.5:", "must be a number > 1"),
        ("pareto:1.5:100:3", "too many parameters"),
        ("pareto:0.1:1e300", "second moment overflows"),
        ("exp:1", "take no parameter"),
        ("zero:", "take no parameter"),
        ("trace", "trace needs its file"),
        ("trace:", "trace needs its file"),
        ("gamma:2", "expected exp, const"),
        (":4", "expected exp, const"),
    ] {
        let e = s.parse::<ServiceKind>().expect_err(s);
        let msg = e.to_string();
        assert!(msg.contains(why), "{s:?}: {msg}");
        assert!(msg.contains(&format!("{s:?}")), "{s:?} not named: {msg}");
    }
    // A missing file is named with the reason.
    let missing = std::env::temp_dir().join("queuelab-no-such-dir/none.trace");
    let spec = format!("trace:{}", missing.display());
    let msg = spec
        .parse::<ServiceKind>()
        .expect_err("missing")
        .to_string();
    assert!(
        msg.contains(&format!("trace {}: ", missing.display())),
        "{msg}"
    );
}

#[test]
fn trace_files_parse_and_bad_lines_are_named() {
    // Microseconds to seconds, comments and blank lines skipped, CRLF accepted, order kept.
    let t = Trace::parse("f", "# head\n\n  12.5  \r\n0\n# 99\n1e3 # one ms\n7\n").expect("good");
    assert_eq!(t.path, "f");
    assert_eq!(t.times_s, vec![12.5e-6, 0.0, 1e-3, 7e-6]);
    assert!((t.mean_s() - (12.5e-6 + 1e-3 + 7e-6) / 4.0).abs() < 1e-18);
    // One time is a constant: C² = 0, and every draw is 1/μ.
    let one = Trace::parse("one", "250\n").expect("one time");
    assert_eq!(one.cv2(), 0.0);
    let one: &'static Trace = Box::leak(Box::new(one));
    let s = ServiceSampler::new(ServiceKind::Trace(one), 4000.0);
    let mut r = rng(9, 0);
    assert!((0..100).all(|_| s.sample_ns(&mut r) == 250_000));
    assert_eq!(ServiceKind::Trace(one).cv2(), 0.0);

    for (text, why) in [
        (
            "100\n200\n300\n# fine\n\n400\nabc\n",
            "trace bad.trace line 7: \"abc\" is not a number of microseconds",
        ),
        ("1\n-5\n", "trace bad.trace line 2: \"-5\" is negative"),
        (
            "1\ninf\n",
            "trace bad.trace line 2: \"inf\" is not a finite number",
        ),
        (
            "NaN\n",
            "trace bad.trace line 1: \"NaN\" is not a finite number",
        ),
        ("1 2\n", "trace bad.trace line 1: \"1 2\" is not a number"),
        ("12us\n", "line 1: \"12us\" is not a number of microseconds"),
        ("", "trace bad.trace: no service times"),
        ("# only\n\n  \n", "trace bad.trace: no service times"),
        ("0\n0\n", "cannot be scaled to mean 1/μ"),
    ] {
        let e = Trace::parse("bad.trace", text).expect_err(text);
        assert!(e.contains(why), "{text:?}: {e}");
    }
    // Through the flag, the file and its line are named.
    let path = temp_file("bad.trace", "10\n20\nabc\n");
    let msg = format!("trace:{path}")
        .parse::<ServiceKind>()
        .expect_err("bad")
        .to_string();
    assert!(
        msg.contains(&format!("trace {path} line 3: \"abc\"")),
        "{msg}"
    );
    // Trace::new checks the same.
    assert!(Trace::new("v", vec![]).is_err());
    assert!(Trace::new("v", vec![1.0, f64::NAN]).is_err());
    assert!(Trace::new("v", vec![1.0, -1.0]).is_err());
    let e = Trace::new("v", vec![1e308, 1e308]).expect_err("the sum overflows");
    assert!(e.contains("cannot be scaled to mean 1/μ"), "{e}");
    assert_eq!(Trace::new("v", vec![1.0, 3.0]).expect("good").mean_s(), 2.0);
}

/// The kinds of the checks, and a few more at the edges of their parameters.
fn general_kinds() -> Vec<ServiceKind> {
    let mut v = vec![
        ServiceKind::Erlang(1),
        ServiceKind::Erlang(4),
        ServiceKind::Erlang(12),
        ServiceKind::Erlang(1000),
        ServiceKind::H2 { cv2: 1.01 },
        ServiceKind::H2 { cv2: 4.0 },
        ServiceKind::H2 { cv2: 10.0 },
        ServiceKind::H2 { cv2: 1e4 },
        ServiceKind::Lognormal { cv2: 10.0 },
        ServiceKind::Lognormal { cv2: 0.5 },
    ];
    for (alpha, ratio) in [
        (1.5, 1000.0),
        (1.1, 1000.0),
        (2.5, 100.0),
        (1.0, 50.0),
        (2.0, 50.0),
        (0.5, 1e4),
        (4.0, 10.0),
    ] {
        v.push(ServiceKind::Pareto { alpha, ratio });
    }
    v.push(small_trace_kind());
    v
}

/// `cv2()` and `second_moment_s2()` agree with the textbook moments of every kind (the Pareto's
/// through the test's own h, the trace's from its times).
#[test]
fn second_moments_are_exact() {
    for kind in general_kinds() {
        let s = ServiceSampler::new(kind, MU);
        let want = moment(kind, 2);
        let got = s.second_moment_s2();
        assert!(
            (got - want).abs() <= 1e-12 * want,
            "{kind}: E[S²] {got}, want {want}"
        );
        let cv2 = want / (M * M) - 1.0;
        assert!(
            (kind.cv2() - cv2).abs() <= 1e-9 * cv2.max(1e-3),
            "{kind}: C² {} vs {cv2}",
            kind.cv2()
        );
        assert!(
            (moment(kind, 1) - M).abs() <= 1e-12 * M,
            "{kind}: the test's own mean"
        );
    }
    assert_eq!(ServiceKind::Erlang(4).cv2(), 0.25);
    assert_eq!(ServiceKind::H2 { cv2: 4.0 }.cv2(), 4.0);
    assert_eq!(ServiceKind::Lognormal { cv2: 0.5 }.cv2(), 0.5);
    assert!(
        ServiceKind::Pareto {
            alpha: 0.0,
            ratio: 10.0
        }
        .cv2()
        .is_nan()
    );
    assert!(
        ServiceKind::Pareto {
            alpha: 1.0,
            ratio: 1.0
        }
        .cv2()
        .is_nan()
    );
}

/// Bounded Pareto at α = 1 and α = 2, where the general formula has a 0/0: E[S]/L = r·ln r/(r−1)
/// and E[S²]/L² = r at α = 1; E[S]/L = 2r/(r+1) and E[S²]/L² = 2r²·ln r/(r²−1) at α = 2. So
/// C² = (r−1)²/(r·ln²r) − 1 and (r+1)·ln r/(2(r−1)) − 1, and a shape a hair away gives nearly the same.
#[test]
fn pareto_cv2_at_alpha_one_and_two() {
    for r in [1.5, 10.0, 50.0, 1000.0, 1e6] {
        let l = f64::ln(r);
        let at1 = (r - 1.0) * (r - 1.0) / (r * l * l) - 1.0;
        let at2 = (r + 1.0) * l / (2.0 * (r - 1.0)) - 1.0;
        for (alpha, want) in [(1.0, at1), (2.0, at2)] {
            let cv2 = |a: f64| ServiceKind::Pareto { alpha: a, ratio: r }.cv2();
            assert!(
                (cv2(alpha) - want).abs() <= 1e-12 * want,
                "α = {alpha}, r = {r}: {} vs {want}",
                cv2(alpha)
            );
            for d in [1e-12, 1e-9, 1e-6] {
                for a in [alpha - d, alpha + d] {
                    // dC²/dα is of order C²·ln r, so a step d moves C² by about d·C²·ln r.
                    let tol = want * (1e-10 + 10.0 * d * l);
                    assert!(
                        (cv2(a) - want).abs() <= tol,
                        "α = {a}, r = {r}: {} vs {want}",
                        cv2(a)
                    );
                }
            }
            // The sampler's mean at these shapes is 1/μ: L·E[S]/L.
            let s = ServiceSampler::new(ServiceKind::Pareto { alpha, ratio: r }, MU);
            assert!(s.cdf(0.999 * pareto_low(alpha, r)) == Some(0.0));
        }
    }
}

/// Simpson's rule on n (even) intervals of [a, b].
fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let h = (b - a) / n as f64;
    let mut sum = f(a) + f(b);
    for i in 1..n {
        let w = if i % 2 == 1 { 4.0 } else { 2.0 };
        sum += w * f(a + h * i as f64);
    }
    sum * h / 3.0
}

/// The CDF carries the same law as the moments: E[S] = ∫(1 − F) dt and E[S²] = ∫2t(1 − F) dt,
/// integrated on a logarithmic grid t = eᵘ (smooth in u; the bounded Pareto is integrated
/// between its bounds, where it is smooth, plus ∫₀^L = L, resp. L²).
#[test]
fn cdf_integrates_to_the_moments() {
    for kind in general_kinds() {
        if let ServiceKind::Trace(_) = kind {
            continue;
        }
        let s = ServiceSampler::new(kind, MU);
        let sf = |t: f64| 1.0 - s.cdf(t).expect("closed form");
        let (lo, hi, base1, base2) = match kind {
            ServiceKind::Pareto { alpha, ratio } => {
                let low = pareto_low(alpha, ratio);
                (low, low * ratio, low, low * low)
            }
            // Below 10⁻¹² m the integrands are below 10⁻¹² m and 10⁻²⁴ m²; above 10⁶ m every
            // survival function here is below 10⁻²⁰.
            _ => (1e-12 * M, 1e6 * M, 1e-12 * M, 0.0),
        };
        let (a, b) = (lo.ln(), hi.ln());
        let n = 200_000;
        let e1 = base1 + simpson(|u| sf(u.exp()) * u.exp(), a, b, n);
        let e2 = base2 + simpson(|u| 2.0 * u.exp() * sf(u.exp()) * u.exp(), a, b, n);
        assert!(
            (e1 - M).abs() < 1e-6 * M,
            "{kind}: ∫(1 − F) = {e1}, want {M}"
        );
        let want2 = s.second_moment_s2();
        assert!(
            (e2 - want2).abs() < 1e-6 * want2,
            "{kind}: ∫2t(1 − F) = {e2}, want {want2}"
        );
    }
}

#[test]
fn cdf_values() {
    let cdf = |kind, t: f64| ServiceSampler::new(kind, MU).cdf(t).expect("closed form");
    for kind in general_kinds().into_iter().chain([
        ServiceKind::Exp,
        ServiceKind::Const,
        ServiceKind::Uniform,
    ]) {
        assert_eq!(cdf(kind, -1.0), 0.0, "{kind}");
        assert_eq!(cdf(kind, 0.0), 0.0, "{kind}");
        assert_eq!(cdf(kind, f64::INFINITY), 1.0, "{kind}");
        let mut prev = 0.0;
        for i in 1..=2000 {
            let t = M * 1e-3 * 1.01f64.powi(i);
            let p = cdf(kind, t);
            assert!(
                (prev..=1.0).contains(&p),
                "{kind}: F({t}) = {p} after {prev}"
            );
            prev = p;
        }
    }
    // Zero and constant are steps; uniform a ramp; exp and erlang:1 the same.
    let zero = ServiceSampler::new(ServiceKind::Zero, 0.0);
    assert_eq!((zero.cdf(-1e-9), zero.cdf(0.0)), (Some(0.0), Some(1.0)));
    assert_eq!(
        (
            cdf(ServiceKind::Const, 0.999 * M),
            cdf(ServiceKind::Const, M)
        ),
        (0.0, 1.0)
    );
    assert_eq!(cdf(ServiceKind::Uniform, 0.5 * M), 0.25);
    assert_eq!(cdf(ServiceKind::Uniform, 3.0 * M), 1.0);
    for t in [0.1, 1.0, 3.0, 20.0].map(|x| x * M) {
        let e = 1.0 - (-MU * t).exp();
        assert!((cdf(ServiceKind::Exp, t) - e).abs() < 1e-15);
        assert!((cdf(ServiceKind::Erlang(1), t) - e).abs() < 1e-12);
        // Erlang 4 at rate 4μ: 1 − e^{−x}(1 + x + x²/2 + x³/6), x = 4μt.
        let x = 4.0 * MU * t;
        let e4 = 1.0 - (-x).exp() * (1.0 + x + x * x / 2.0 + x * x * x / 6.0);
        assert!((cdf(ServiceKind::Erlang(4), t) - e4).abs() < 1e-12, "{t}");
        // H2 at C² = 4: p₁ = ½(1 + √(3/5)), branches of rate 2pᵢμ.
        let p1 = 0.5 * (1.0 + 0.6f64.sqrt());
        let p2 = 1.0 - p1;
        let h = 1.0 - p1 * (-2.0 * p1 * MU * t).exp() - p2 * (-2.0 * p2 * MU * t).exp();
        assert!(
            (cdf(ServiceKind::H2 { cv2: 4.0 }, t) - h).abs() < 1e-12,
            "{t}"
        );
    }
    // The lognormal's median is m·e^{−σ²/2}; one σ above, Φ(1).
    let ln = ServiceKind::Lognormal { cv2: 10.0 };
    let s2 = 11f64.ln();
    assert!((cdf(ln, M * (-0.5 * s2).exp()) - 0.5).abs() < 1e-12);
    // (statrs's erfc is accurate to about 10⁻¹⁰ relative, 1.4·10⁻¹¹ here.)
    let at = cdf(ln, M * (s2.sqrt() - 0.5 * s2).exp());
    assert!((at - 0.841_344_746_068_542_9).abs() < 1e-10, "Φ(1) = {at}");
    // The bounded Pareto from L to H, with (1 − (L/t)^α)/(1 − r^{−α}) between.
    let (alpha, ratio) = (1.5, 1000.0);
    let bp = ServiceKind::Pareto { alpha, ratio };
    let low = pareto_low(alpha, ratio);
    assert_eq!(cdf(bp, low), 0.0);
    assert_eq!(cdf(bp, low * ratio), 1.0);
    let t = 10.0 * low;
    let want = (1.0 - 10f64.powf(-alpha)) / (1.0 - ratio.powf(-alpha));
    assert!((cdf(bp, t) - want).abs() < 1e-12);
    // A trace: the fraction of the scaled times at most t (100 250 250 400 900 1500 3000 µs,
    // mean 6400/7 µs, scaled by M over that mean).
    let tr = small_trace_kind();
    let ServiceKind::Trace(t) = tr else {
        unreachable!("a trace")
    };
    assert!((t.mean_s() - 6400e-6 / 7.0).abs() < 1e-18);
    let scale = M / t.mean_s();
    for (us, want) in [
        (99.0, 0.0),
        (100.0, 1.0),
        (250.0, 3.0),
        (899.0, 4.0),
        (900.0, 5.0),
        (2999.0, 6.0),
        (3000.0, 7.0),
    ] {
        assert_eq!(cdf(tr, us / 1e6 * scale), want / 7.0, "{us} µs");
    }
}

/// H2 with a large C² keeps both branches right: p₂ is computed without cancellation, so the
/// rare long branch still carries half the mean (checked through the exact moments above) and
/// draws stay finite.
#[test]
fn extreme_parameters_draw_finite_times() {
    let mut r = rng(71, 0);
    for kind in [
        ServiceKind::H2 { cv2: 1e12 },
        ServiceKind::Lognormal { cv2: 1e-12 },
        ServiceKind::Pareto {
            alpha: 1e-3,
            ratio: 1e6,
        },
        ServiceKind::Pareto {
            alpha: 50.0,
            ratio: 1.0001,
        },
        ServiceKind::Erlang(u32::MAX),
    ] {
        let s = ServiceSampler::new(kind, MU);
        for _ in 0..1000 {
            let x = s.sample_ns(&mut r);
            assert!(x < u64::MAX, "{kind}: {x}");
        }
        let m2 = s.second_moment_s2();
        assert!(
            m2.is_finite() && m2 >= M * M * (1.0 - 1e-9),
            "{kind}: E[S²] = {m2}"
        );
    }
    // The branch probabilities at C² = 10¹²: p₂ = 1/((C²+1)(1+r)) ≈ 5·10⁻¹³, and E[S²] = (1 + C²)m².
    let s = ServiceSampler::new(ServiceKind::H2 { cv2: 1e12 }, MU);
    assert!((s.second_moment_s2() / (M * M) - (1.0 + 1e12)).abs() < 1e-3);
    // A lognormal with a tiny C² is nearly constant: σ = 10⁻⁶, so m·σ = 1 ns, and 100 draws
    // stay within 6σ (P(|Z| > 6) = 2·10⁻⁹ each) plus the rounding.
    let s = ServiceSampler::new(ServiceKind::Lognormal { cv2: 1e-12 }, MU);
    assert!((0..100).all(|_| s.sample_ns(&mut r).abs_diff(1_000_000) <= 7));
}
