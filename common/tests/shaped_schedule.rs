//! A schedule shaped by a rate profile is the non-homogeneous Poisson process of that profile:
//! its counts per window are Poisson with mean ∫λ over the window, and its gaps rescaled by Λ are
//! Exp(1) (the time-rescaling theorem), while the same arrivals judged against the profile's
//! constant mean rate are not exponential. Seeded and deterministic: no clock, no socket.
use std::sync::Arc;

use queuelab_common::profile::Profile;
use queuelab_common::samplers::{ArrivalKind, Rng, Schedule, rng};
use queuelab_common::stats::ks_statistic;
use rand_distr::{Distribution, Exp1};

const PROFILE: &str = "200..2k:5s,2k:2s,500:3s";

/// Every time of `sched` until its profile ends, ns.
fn times(sched: &mut Schedule, r: &mut Rng) -> Vec<u64> {
    let mut out = Vec::new();
    loop {
        let t = sched.next_ns(r);
        if t == Schedule::END {
            // And it stays ended.
            assert_eq!(sched.next_ns(r), Schedule::END);
            return out;
        }
        out.push(t);
    }
}

/// Half-widths (below, above) for a Poisson count of mean `mu` that hold with probability at
/// least 1 − 2·e^{−l} between them. From Bennett's inequality for a Poisson count N:
/// P(N ≥ μ + x) ≤ exp(−x²/(2(μ + x/3))) and P(N ≤ μ − x) ≤ exp(−x²/(2μ)); setting each to
/// e^{−l} gives x_above = l/3 + √(l²/9 + 2lμ) and x_below = √(2lμ).
fn poisson_bounds(mu: f64, l: f64) -> (f64, f64) {
    (
        (2.0 * l * mu).sqrt(),
        l / 3.0 + (l * l / 9.0 + 2.0 * l * mu).sqrt(),
    )
}

/// The windows of 0.5 s whose counts fall outside their bounds, for arrivals `ts` (ns) against
/// the expected counts `mean(a, b)`. Over W windows with both tails at e^{−l} each, the chance
/// that a correct process has any window out is at most 2W·e^{−l} (the union bound; the counts
/// of disjoint windows are independent, but the bound needs no independence). l = ln(2W/10⁻⁶)
/// makes it 10⁻⁶: for W = 20, l = ln(4·10⁷) = 17.5, so a window of mean 145 may read 74..222,
/// while the wrong shape (the constant mean, 550 a window) is far outside.
fn windows_out(ts: &[u64], end_s: f64, mean: impl Fn(f64, f64) -> f64) -> Vec<String> {
    let width = 0.5;
    let w = (end_s / width).round() as usize;
    let l = (2.0 * w as f64 / 1e-6).ln();
    let mut counts = vec![0u64; w];
    for &t in ts {
        let i = ((t as f64 / 1e9) / width) as usize;
        counts[i.min(w - 1)] += 1;
    }
    let mut out = Vec::new();
    for (i, &n) in counts.iter().enumerate() {
        let (a, b) = (i as f64 * width, (i + 1) as f64 * width);
        let mu = mean(a, b);
        let (below, above) = poisson_bounds(mu, l);
        if (n as f64) < mu - below || (n as f64) > mu + above {
            out.push(format!("[{a}, {b}): {n} arrivals, expected {mu:.1}"));
        }
    }
    out
}

/// The DKW bound on the KS distance of n samples from their true CDF, exceeded with probability
/// at most α = 10⁻⁶: P(D > ε) ≤ 2e^{−2nε²}.
fn ks_bound(n: usize) -> f64 {
    ((2.0f64 / 1e-6).ln() / (2.0 * n as f64)).sqrt()
}

#[test]
fn counts_per_window_follow_the_integral_of_the_rate() {
    let profile = Arc::new(Profile::parse(PROFILE).expect("valid"));
    let end_s = profile.duration().as_secs_f64();
    let mut sched =
        Schedule::shaped(ArrivalKind::Poisson, Arc::clone(&profile), 1.0).expect("valid share");
    let ts = times(&mut sched, &mut rng(21, 0));
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "times in order");
    assert!(*ts.last().expect("arrivals") < profile.duration().as_nanos() as u64);
    // Total: Poisson(11 000); the same bound, one window of everything.
    let (below, above) = poisson_bounds(profile.total(), (2.0f64 / 1e-6).ln());
    let n = ts.len() as f64;
    assert!(
        n > profile.total() - below && n < profile.total() + above,
        "{n}"
    );

    let out = windows_out(&ts, end_s, |a, b| {
        profile.cumulative(b) - profile.cumulative(a)
    });
    assert!(
        out.is_empty(),
        "windows out of their Poisson bounds: {out:#?}"
    );

    // The check can fail: a constant schedule at the profile's mean rate (1100/s) is far out
    // in the ramp's first windows and the last segment's.
    let mut flat = Schedule::new(ArrivalKind::Poisson, profile.mean());
    let mut r = rng(21, 0);
    let flat_ts: Vec<u64> = std::iter::from_fn(|| Some(flat.next_ns(&mut r)))
        .take_while(|&t| t < profile.duration().as_nanos() as u64)
        .collect();
    let out = windows_out(&flat_ts, end_s, |a, b| {
        profile.cumulative(b) - profile.cumulative(a)
    });
    assert!(
        out.len() >= 8,
        "a flat schedule passed as the profile: {out:#?}"
    );
}

#[test]
fn rescaled_gaps_are_exponential_and_the_constant_mean_is_not() {
    let profile = Arc::new(Profile::parse(PROFILE).expect("valid"));
    let mut sched =
        Schedule::shaped(ArrivalKind::Poisson, Arc::clone(&profile), 1.0).expect("valid share");
    let ts = times(&mut sched, &mut rng(22, 0));
    let n = ts.len();
    // Time-rescaling: Λ(t_i) − Λ(t_{i−1}) are Exp(1). Each time is rounded to a nanosecond,
    // which moves Λ by at most λ_max·0.5 ns = 10⁻⁶ and a gap by twice that: a CDF shift below
    // 2·10⁻⁶, added to the bound.
    let mut cursor = 0;
    let mut prev = 0.0;
    let mut rescaled: Vec<f64> = ts
        .iter()
        .map(|&t| {
            let u = profile.cumulative_at_ns(t, &mut cursor);
            let g = u - prev;
            prev = u;
            g
        })
        .collect();
    let exp1 = |x: f64| 1.0 - (-x).exp();
    let d = ks_statistic(&mut rescaled, exp1);
    assert!(d < ks_bound(n) + 2e-6, "rescaled gaps: KS D = {d} over {n}");
    // The same gaps in real time, divided by the mean gap of the profile (1/1100 s): a mixture
    // of exponentials of rates 200..2000 over 1100, whose distance from Exp(1) is about 0.075
    // (computed by integrating over the profile), three times the bound (0.026 at n = 11 000).
    let mean = profile.mean();
    let mut last = 0u64;
    let mut flat: Vec<f64> = ts
        .iter()
        .map(|&t| {
            let g = (t - last) as f64 / 1e9 * mean;
            last = t;
            g
        })
        .collect();
    let d_flat = ks_statistic(&mut flat, exp1);
    assert!(
        d_flat > ks_bound(n),
        "gaps against the constant mean rate passed: D = {d_flat}"
    );
}

#[test]
fn the_arrivals_are_the_exponential_draws_through_the_inverse() {
    // Same stream: the n-th time is Λ⁻¹ of the sum of the first n Exp(1) draws over the share,
    // to the nanosecond of rounding each side. The schedule sums the operational time per
    // segment and this test in one run; they differ by rounding, below 10⁻⁹ in Λ, which is
    // below 10⁻¹¹ s where λ ≥ 100 (in the ramp from 0, where λ is smaller, both sums start at
    // 0 and agree exactly): 2 ns in all.
    let profile = Arc::new(Profile::parse("0..2k:5s,0:1s,300:2s,900..100:2s").expect("valid"));
    let share = 0.25;
    let mut sched =
        Schedule::shaped(ArrivalKind::Poisson, Arc::clone(&profile), share).expect("valid");
    let mut r = rng(23, 1);
    let mut replay = rng(23, 1);
    let mut u = 0.0;
    let mut count = 0;
    loop {
        let t = sched.next_ns(&mut r);
        let e: f64 = Exp1.sample(&mut replay);
        u += e / share;
        let Some(want_s) = profile.inverse(u) else {
            assert_eq!(t, Schedule::END, "past the end of the profile");
            break;
        };
        let want = (want_s * 1e9).round();
        assert!(
            (t as f64 - want).abs() <= 2.0,
            "arrival {count}: {t} ns, expected {want}"
        );
        // No arrival in the zero segment [5 s, 6 s).
        assert!(!(5_000_000_000..6_000_000_000).contains(&t), "{t}");
        count += 1;
    }
    assert_eq!(sched.count(), count + 1);
    // A quarter of Λ = 5000 + 600 + 1000 arrivals.
    let mu = profile.total() * share;
    let (below, above) = poisson_bounds(mu, (2.0f64 / 1e-6).ln());
    assert!((count as f64) > mu - below && (count as f64) < mu + above);
    assert!((sched.rate() - profile.mean() * share).abs() < 1e-12);
    assert!(sched.profile().is_some());
    assert!(Schedule::shaped(ArrivalKind::Poisson, Arc::clone(&profile), 0.0).is_none());
    assert!(Schedule::shaped(ArrivalKind::Poisson, profile, f64::NAN).is_none());
}

#[test]
fn constant_and_uniform_are_defined_in_operational_time() {
    let profile = Arc::new(Profile::parse("0..1k:2s,1k:1s,250:2s").expect("valid"));
    // Constant: the n-th arrival at Λ⁻¹(n/share) exactly (to the nanosecond's rounding), so
    // evenly spaced in Λ: 2000 of them at share 1/2 (Λ = 1000 + 1000 + 500 = 2500, 1250 at
    // share 1/2).
    let share = 0.5;
    let mut sched =
        Schedule::shaped(ArrivalKind::Constant, Arc::clone(&profile), share).expect("valid");
    let mut r = rng(24, 0);
    let ts = times(&mut sched, &mut r);
    assert_eq!(ts.len(), 1250);
    let mut cursor = 0;
    for (i, &t) in ts.iter().enumerate() {
        let n = (i + 1) as f64;
        let want = profile.inverse(n / share).expect("within") * 1e9;
        assert!((t as f64 - want).abs() <= 1.0, "arrival {n}: {t} vs {want}");
        // Λ at the rounded time: within λ_max·0.5 ns = 5e-7 of n/share.
        let u = profile.cumulative_at_ns(t, &mut cursor);
        assert!(
            (u * share - n).abs() < 1e-6,
            "arrival {n}: Λ·share = {}",
            u * share
        );
    }
    // Uniform: operational gaps U[0, 2], mean 1, variance 1/3. The count N passes μ + x only
    // if the first μ + x gaps sum to at most μ, a deviation x of a sum of variance (μ + x)/3 and
    // terms within 1 of their mean (and likewise below). With μ = 1250 and x = 6√(μ/3) = 122,
    // Bernstein's inequality bounds each side by exp(−x²/(2((μ + x)/3 + x/3))) < 10⁻⁷.
    let mut sched =
        Schedule::shaped(ArrivalKind::Uniform, Arc::clone(&profile), share).expect("valid");
    let ts = times(&mut sched, &mut r);
    let mu = profile.total() * share;
    assert!(
        ((ts.len() as f64) - mu).abs() < 6.0 * (mu / 3.0).sqrt(),
        "{}",
        ts.len()
    );
    let mut cursor = 0;
    let mut prev = 0.0;
    for &t in &ts {
        let u = profile.cumulative_at_ns(t, &mut cursor) * share;
        let g = u - prev;
        assert!((-1e-6..=2.0 + 1e-6).contains(&g), "operational gap {g}");
        prev = u;
    }
}
