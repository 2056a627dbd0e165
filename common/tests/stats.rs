//! Tests of the statistics helpers against exact values.
use queuelab_common::samplers::{ServiceKind, ServiceSampler, rng};
use queuelab_common::stats::{
    HIST_MAX_NS, HIST_SIGFIG, MeanCi, StatsError, Summary, batch_means_ci, histogram_from_string,
    histogram_to_string, kolmogorov_q, ks_histogram, ks_pvalue, ks_statistic, mean_cv,
    merge_histogram, new_histogram, record_n_ns, record_ns, student_t_975, summarize,
};

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-300)
}

#[test]
fn new_histogram_has_fixed_bounds() {
    let h = new_histogram();
    assert_eq!(h.low(), 1);
    assert_eq!(h.high(), HIST_MAX_NS);
    assert_eq!(h.sigfig(), HIST_SIGFIG);
    assert!(!h.is_auto_resize());
}

#[test]
fn record_ns_clamps() {
    let mut h = new_histogram();
    record_ns(&mut h, 0);
    record_ns(&mut h, u64::MAX);
    record_ns(&mut h, HIST_MAX_NS + 1);
    assert_eq!(h.len(), 3);
    assert_eq!(h.min(), 1);
    assert!(h.equivalent(h.max(), HIST_MAX_NS), "max {}", h.max());
    record_n_ns(&mut h, 5_000, 7);
    assert_eq!(h.count_at(5_000), 7);
}

/// 1, 2, …, 10 000 µs: mean 5000.5, population σ = √((N²−1)/12) = 2886.75, p50 = 5000, p90 = 9000,
/// p99 = 9900, p99.9 = 9990 (the value at rank ⌈qN⌉); the histogram holds each within its
/// resolution of 2⁻¹⁰ relative (three significant digits: 2048 sub-buckets per power of two).
#[test]
fn summarize_matches_exact_values() {
    let mut h = new_histogram();
    for k in 1..=10_000u64 {
        record_ns(&mut h, k * 1_000);
    }
    let s = summarize(&h);
    let tol = 1.0 / 1024.0;
    let n = 10_000f64;
    assert_eq!(s.count, 10_000);
    assert!(close(s.mean, 5_000.5, tol), "{s:?}");
    assert!(close(s.stdev, ((n * n - 1.0) / 12.0).sqrt(), tol), "{s:?}");
    assert!(close(s.min, 1.0, tol), "{s:?}");
    assert!(close(s.p50, 5_000.0, tol), "{s:?}");
    assert!(close(s.p90, 9_000.0, tol), "{s:?}");
    assert!(close(s.p99, 9_900.0, tol), "{s:?}");
    assert!(close(s.p999, 9_990.0, tol), "{s:?}");
    assert!(close(s.max, 10_000.0, tol), "{s:?}");
    assert_eq!(summarize(&new_histogram()), Summary::default());
}

fn sample_histogram(seed: u64, n: usize) -> hdrhistogram::Histogram<u64> {
    let mut h = new_histogram();
    let mut r = rng(seed, 0);
    let s = ServiceSampler::new(ServiceKind::Exp, 5_000.0);
    for _ in 0..n {
        record_ns(&mut h, s.sample_ns(&mut r));
    }
    h
}

#[test]
fn serialization_round_trips() {
    for h in [new_histogram(), sample_histogram(1, 10_000)] {
        let s = histogram_to_string(&h);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        );
        let back = histogram_from_string(&s).expect("round trip");
        assert_eq!(back, h);
        assert_eq!(back.high(), HIST_MAX_NS);
        assert_eq!(back.len(), h.len());
        assert_eq!(summarize(&back), summarize(&h));
    }
}

/// A histogram with other bounds decodes into the fixed bounds; values beyond one hour are clamped.
#[test]
fn deserialized_histogram_gets_fixed_bounds() {
    let mut other = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 100_000_000_000_000, 2)
        .expect("valid bounds");
    other.record_n(1_000, 3).expect("in range");
    other.record(10 * HIST_MAX_NS).expect("in range");
    let s = histogram_to_string(&other);
    let h = histogram_from_string(&s).expect("decodes");
    assert_eq!(
        (h.low(), h.high(), h.sigfig()),
        (1, HIST_MAX_NS, HIST_SIGFIG)
    );
    assert_eq!(h.len(), 4);
    assert_eq!(h.count_between(990, 1_010), 3);
    assert!(h.equivalent(h.max(), HIST_MAX_NS));
}

#[test]
fn bad_serialized_histograms_are_errors() {
    for bad in [
        "",
        "!!!!",
        "AAAA",
        "aGVsbG8gd29ybGQ=",
        "HISTFAAAACB4nJNpmSzMwMDAxAABzFCaEUoz",
    ] {
        match histogram_from_string(bad) {
            Err(StatsError::BadHistogram(msg)) => assert!(!msg.is_empty()),
            Ok(h) => panic!("{bad:?} decoded to {} values", h.len()),
        }
    }
    // A valid string cut short.
    let s = histogram_to_string(&sample_histogram(2, 1000));
    assert!(histogram_from_string(&s[..s.len() / 2]).is_err());
    let huge = "A".repeat(9 * 1024 * 1024);
    assert!(histogram_from_string(&huge).is_err());
}

#[test]
fn merging_equals_recording_everything_in_one() {
    let a = sample_histogram(3, 5_000);
    let b = sample_histogram(4, 7_000);
    let mut merged = histogram_from_string(&histogram_to_string(&a)).expect("decodes");
    merge_histogram(
        &mut merged,
        &histogram_from_string(&histogram_to_string(&b)).expect("decodes"),
    );
    let mut direct = new_histogram();
    for h in [&a, &b] {
        for v in h.iter_recorded() {
            record_n_ns(&mut direct, v.value_iterated_to(), v.count_at_value());
        }
    }
    assert_eq!(merged.len(), 12_000);
    assert_eq!(merged, direct);
}

/// t_{0.975,ν} against the closed-form two-sided t distribution for integer ν
/// (Abramowitz and Stegun 26.7.3–26.7.4): A(t|ν) = P(|T| ≤ t) must be 0.95.
fn t_two_sided(t: f64, nu: u64) -> f64 {
    let theta = (t / (nu as f64).sqrt()).atan();
    let (s, c) = theta.sin_cos();
    let c2 = c * c;
    if nu % 2 == 1 {
        let mut sum = 0.0;
        if nu > 1 {
            let mut term = c;
            sum = term;
            let mut k = 2u64;
            while k < nu - 1 {
                term *= k as f64 / (k + 1) as f64 * c2;
                sum += term;
                k += 2;
            }
        }
        2.0 / std::f64::consts::PI * (theta + s * sum)
    } else {
        let mut term = 1.0;
        let mut sum = 1.0;
        let mut k = 1u64;
        while k < nu - 1 {
            term *= k as f64 / (k + 1) as f64 * c2;
            sum += term;
            k += 2;
        }
        s * sum
    }
}

#[test]
fn student_t_975_values() {
    // Published table values (3 decimals).
    for (dof, want) in [
        (1, 12.706),
        (2, 4.303),
        (5, 2.571),
        (10, 2.228),
        (30, 2.042),
        (60, 2.000),
        (120, 1.980),
        (1_000_000, 1.960),
    ] {
        assert!((student_t_975(dof) - want).abs() < 1e-3, "dof {dof}");
    }
    // Every tabulated value and the expansion at ν = 31..=400 solve A(t|ν) = 0.95. The density of
    // |T| near t is below 0.12 for these ν, so the table's 15 digits move A by < 10⁻¹³ and the
    // expansion's error (< 3·10⁻⁸ in t) moves it by < 4·10⁻⁹: check A to 10⁻⁹ and 10⁻⁸.
    for dof in 1..=30 {
        let a = t_two_sided(student_t_975(dof), dof);
        assert!((a - 0.95).abs() < 1e-9, "dof {dof}: A = {a}");
    }
    for dof in 31..=400 {
        let a = t_two_sided(student_t_975(dof), dof);
        assert!((a - 0.95).abs() < 1e-8, "dof {dof}: A = {a}");
    }
    assert!(student_t_975(0).is_infinite());
    // Decreasing in ν towards z = 1.959964.
    for dof in 1..2_000 {
        assert!(student_t_975(dof + 1) < student_t_975(dof), "dof {dof}");
    }
    assert!((student_t_975(u64::MAX) - 1.959_963_984_540_054).abs() < 1e-12);
}

#[test]
fn batch_means_ci_known_data() {
    // Batch means 1..=5 (10 values each): mean 3, s = √2.5, t_{0.975,4} = 2.776445.
    let batches: Vec<(f64, u64)> = (1..=5).map(|m| (10.0 * m as f64, 10)).collect();
    let ci = batch_means_ci(&batches).expect("five batches");
    let half = 2.776_445_105_197_79 * 2.5f64.sqrt() / 5f64.sqrt();
    assert!((ci.mean - 3.0).abs() < 1e-12, "{ci:?}");
    assert!((ci.low - (3.0 - half)).abs() < 1e-9, "{ci:?}");
    assert!((ci.high - (3.0 + half)).abs() < 1e-9, "{ci:?}");
    // Empty batches are skipped; the point estimate weights values, the interval batches.
    let ci = batch_means_ci(&[(2.0, 1), (0.0, 0), (12.0, 3)]).expect("two batches");
    // Means 2 and 4: s = √2, t_{0.975,1} = 12.7062, overall mean 14/4 = 3.5.
    let half = 12.706_204_736_174_7 * 2f64.sqrt() / 2f64.sqrt();
    assert_eq!(
        ci,
        MeanCi {
            mean: 3.5,
            low: 3.5 - half,
            high: 3.5 + half
        }
    );
    // Identical batches: zero width.
    let ci = batch_means_ci(&[(5.0, 5), (5.0, 5), (5.0, 5)]).expect("three batches");
    assert_eq!((ci.low, ci.mean, ci.high), (1.0, 1.0, 1.0));
    assert_eq!(batch_means_ci(&[]), None);
    assert_eq!(batch_means_ci(&[(1.0, 1)]), None);
    assert_eq!(batch_means_ci(&[(1.0, 1), (0.0, 0)]), None);
}

#[test]
fn ks_statistic_known_value() {
    let mut xs = [0.9, 0.1, 0.5];
    let d = ks_statistic(&mut xs, |x| x.clamp(0.0, 1.0));
    assert!(
        (d - (2.0 / 3.0 - 0.5f64).max(1.0 / 3.0 - 0.1)).abs() < 1e-15,
        "{d}"
    );
    assert_eq!(xs, [0.1, 0.5, 0.9]);
    assert_eq!(ks_statistic(&mut [], |x| x), 0.0);
    // One sample at the median: D = 1/2.
    assert!((ks_statistic(&mut [0.5], |x| x) - 0.5).abs() < 1e-15);
}

/// Q(λ) = 2 Σ (−1)^{k−1} e^{−2k²λ²} evaluated to 15 digits in 30-digit arithmetic, and the
/// published asymptotic critical values K_{0.90} = 1.2238, K_{0.95} = 1.3581, K_{0.99} = 1.6276.
#[test]
fn ks_pvalue_known_values() {
    for (lambda, q) in [
        (0.2, 0.999_999_999_999_495),
        (0.3, 0.999_990_694_198_665),
        (0.5, 0.963_945_243_664_875),
        (1.0, 0.269_999_671_677_355),
        (1.2238, 0.100_023_427_835_678),
        (1.3581, 0.049_999_630_431_667_4),
        (1.6276, 0.010_001_537_333_060_8),
    ] {
        let got = kolmogorov_q(lambda);
        assert!((got - q).abs() < 1e-13, "Q({lambda}) = {got}, want {q}");
    }
    // d = 0.05, n = 1000: λ = (√1000 + 0.12 + 0.11/√1000)·0.05 = 1.58731, p = 0.0129588.
    let p = ks_pvalue(0.05, 1000);
    assert!((p - 0.012_958_845_703_741_7).abs() < 1e-12, "{p}");
    // The two series agree where they switch (|Q'| < 1.5 there, so 2·10⁻¹² apart moves Q < 3·10⁻¹²).
    assert!((kolmogorov_q(1.18 - 1e-12) - kolmogorov_q(1.18 + 1e-12)).abs() < 1e-11);
    assert_eq!(kolmogorov_q(0.0), 1.0);
    assert_eq!(ks_pvalue(0.5, 0), 1.0);
    assert!(ks_pvalue(1.0, 100) < 1e-30);
    // Monotone decreasing in d.
    let mut last = 1.0;
    for i in 0..=1000 {
        let p = ks_pvalue(i as f64 * 1e-4, 10_000);
        assert!(
            p <= last && (0.0..=1.0).contains(&p),
            "d = {}",
            i as f64 * 1e-4
        );
        last = p;
    }
}

/// Binned KS: the histogram's buckets are at most 2⁻¹⁰ wide relative to their values, so for
/// an exponential of rate μ the CDF moves within a bucket by at most max_x μx·e^{−μx}/1024 =
/// e^{−1}/1024 < 3.6·10⁻⁴ (plus μ·1 ns for rounding); the binned D therefore differs from the
/// exact D of the same samples by less than 4·10⁻⁴.
#[test]
fn ks_histogram_matches_exact_ks() {
    let mu = 5_000.0;
    let n = 20_000;
    let mut r = rng(9, 0);
    let s = ServiceSampler::new(ServiceKind::Exp, mu);
    let mut h = new_histogram();
    let mut xs = Vec::with_capacity(n);
    for _ in 0..n {
        let ns = s.sample_ns(&mut r);
        record_ns(&mut h, ns);
        xs.push(ns as f64 * 1e-9);
    }
    let cdf = |x: f64| 1.0 - (-mu * x).exp();
    let d_hist = ks_histogram(&h, cdf);
    let d_exact = ks_statistic(&mut xs, cdf);
    assert!(
        (d_hist - d_exact).abs() < 4e-4,
        "binned {d_hist}, exact {d_exact}"
    );
    // And it detects a wrong distribution (mean off by 20%: sup gap 0.067).
    let d_wrong = ks_histogram(&h, |x: f64| 1.0 - (-mu / 1.2 * x).exp());
    assert!(d_wrong > 0.05, "{d_wrong}");
    assert_eq!(ks_histogram(&new_histogram(), cdf), 0.0);
}

/// A constant value recorded many times against the step CDF at that value: D = 0.
#[test]
fn ks_histogram_handles_atoms() {
    let mut h = new_histogram();
    record_n_ns(&mut h, 1_000_000, 1000);
    let lo = h.lowest_equivalent(1_000_000) as f64 * 1e-9;
    let d = ks_histogram(&h, |x| if x < lo { 0.0 } else { 1.0 });
    assert_eq!(d, 0.0);
    // Against a CDF with half its mass above: D = 1/2.
    let d = ks_histogram(&h, |x| {
        if x < lo {
            0.0
        } else if x < 0.5 {
            0.5
        } else {
            1.0
        }
    });
    assert!((d - 0.5).abs() < 1e-15);
}

#[test]
fn mean_cv_known_values() {
    let (m, cv) = mean_cv(&[1.0, 2.0, 3.0, 4.0]).expect("non-empty");
    assert_eq!(m, 2.5);
    assert!((cv - (5.0f64 / 3.0).sqrt() / 2.5).abs() < 1e-15);
    assert_eq!(mean_cv(&[3.0]), Some((3.0, 0.0)));
    assert_eq!(mean_cv(&[]), None);
    assert_eq!(mean_cv(&[-1.0, 1.0]), None);
}
