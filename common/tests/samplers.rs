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
