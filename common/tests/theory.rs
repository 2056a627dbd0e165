//! Closed forms against exact values, independent formulas and a seeded simulation.
use queuelab_common::model::{Model, ModelError, Servers};
use queuelab_common::samplers::{ServiceKind, rng};
use queuelab_common::stats::ks_statistic;
use queuelab_common::theory::{self, Theory, TheoryError, erlang_b, erlang_c};
use rand_distr::{Distribution, Exp1};

/// A model at an arrival rate λ, with the theory module's functions as methods.
#[derive(Debug, Clone, Copy)]
struct Q {
    model: Model,
    lambda: f64,
}

impl Q {
    fn theory(&self) -> Result<Theory, TheoryError> {
        theory::predict(&self.model, self.lambda)
    }

    fn sojourn_cdf(&self, t: f64) -> Option<f64> {
        theory::sojourn_cdf(&self.model, self.lambda, t)
    }

    fn sojourn_quantile(&self, q: f64) -> Option<f64> {
        theory::sojourn_quantile(&self.model, self.lambda, q)
    }

    fn sojourn_cdf_fn(&self) -> Option<impl Fn(f64) -> f64 + use<>> {
        theory::sojourn_cdf_fn(&self.model, self.lambda)
    }

    fn model_name(&self) -> String {
        self.model.name()
    }
}

fn spec(lambda: f64, mu: f64, servers: Servers, capacity: Option<u32>, service: ServiceKind) -> Q {
    Q {
        model: Model::new(mu, servers)
            .with_capacity(capacity)
            .with_service(service),
        lambda,
    }
}

fn mm(lambda: f64, mu: f64, c: u32, k: Option<u32>) -> Q {
    spec(lambda, mu, Servers::Finite(c), k, ServiceKind::Exp)
}

fn md1(lambda: f64, mu: f64) -> Q {
    spec(lambda, mu, Servers::Finite(1), None, ServiceKind::Const)
}

fn rel_close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs()
}

#[test]
fn servers_parse_and_display() {
    for (s, want) in [
        ("1", Servers::Finite(1)),
        ("16", Servers::Finite(16)),
        ("inf", Servers::Infinite),
        ("INF", Servers::Infinite),
        ("infinity", Servers::Infinite),
        (" 4 ", Servers::Finite(4)),
    ] {
        assert_eq!(s.parse::<Servers>(), Ok(want), "{s}");
    }
    for bad in ["", "0", "-1", "1.5", "abc", "4294967296", "2k"] {
        assert!(bad.parse::<Servers>().is_err(), "{bad}");
    }
    assert_eq!(Servers::Finite(3).to_string(), "3");
    assert_eq!(Servers::Infinite.to_string(), "inf");
    assert_eq!(
        "inf".parse::<Servers>().map(|s| s.to_string()),
        Ok("inf".to_owned())
    );
}

#[test]
fn model_names() {
    let inf = Servers::Infinite;
    let one = Servers::Finite(1);
    for (s, name) in [
        (mm(1.0, 2.0, 1, None), "M/M/1"),
        (mm(1.0, 2.0, 2, None), "M/M/2"),
        (mm(1.0, 2.0, 1, Some(10)), "M/M/1/10"),
        (md1(1.0, 2.0), "M/D/1"),
        (spec(1.0, 2.0, one, None, ServiceKind::Uniform), "M/G/1"),
        (spec(1.0, 2.0, inf, None, ServiceKind::Exp), "M/M/inf"),
        (spec(1.0, 2.0, inf, None, ServiceKind::Const), "M/D/inf"),
        (spec(1.0, 2.0, inf, None, ServiceKind::Uniform), "M/G/inf"),
        (
            spec(1.0, 2.0, inf, Some(10), ServiceKind::Exp),
            "M/M/inf/10",
        ),
        (spec(1.0, 2.0, one, None, ServiceKind::Zero), "M/0"),
    ] {
        assert_eq!(s.model_name(), name);
        if let Ok(t) = s.theory() {
            assert_eq!(t.model, name);
        }
    }
}

/// M/M/1 with λ = 0.5, μ = 1: ρ = 0.5, W = 1/(μ − λ) = 2, Wq = 1, L = 1, T ~ Exp(0.5) so the
/// q-quantile is −ln(1 − q)/0.5.
#[test]
fn mm1_exact_values() {
    let t = mm(0.5, 1.0, 1, None).theory().expect("stable");
    assert_eq!(t.model, "M/M/1");
    assert!(rel_close(t.rho, 0.5, 1e-15));
    assert!(rel_close(t.mean_s, 2.0, 1e-14), "{t:?}");
    assert!(rel_close(t.mean_wait_s, 1.0, 1e-14), "{t:?}");
    assert!(rel_close(t.mean_in_system, 1.0, 1e-14), "{t:?}");
    assert_eq!((t.blocking, t.throughput), (0.0, 0.5));
    let p = |x: Option<f64>| x.expect("known");
    assert!(rel_close(p(t.p50_s), 2f64.ln() / 0.5, 1e-14));
    assert!(rel_close(p(t.p90_s), 10f64.ln() / 0.5, 1e-14));
    assert!(rel_close(p(t.p99_s), 100f64.ln() / 0.5, 1e-14));
    let s = mm(0.5, 1.0, 1, None);
    assert!(rel_close(
        s.sojourn_cdf(2.0).expect("known"),
        1.0 - (-1.0f64).exp(),
        1e-14
    ));
}

/// Erlang C against exact rationals and against its definition summed directly:
/// C = (aᶜ/c!)·c/(c − a) / (Σ_{k<c} aᵏ/k! + (aᶜ/c!)·c/(c − a)).
#[test]
fn erlang_c_known_values() {
    assert!(rel_close(erlang_c(2, 1.0), 1.0 / 3.0, 1e-14));
    assert!(rel_close(erlang_c(3, 2.0), 4.0 / 9.0, 1e-14));
    assert!(rel_close(erlang_c(1, 0.7), 0.7, 1e-14));
    assert!(rel_close(erlang_b(1, 0.7), 0.7 / 1.7, 1e-14));
    assert!(rel_close(erlang_b(2, 1.0), 0.2, 1e-14));
    for c in 1..=60u32 {
        for frac in [0.05, 0.3, 0.6, 0.9, 0.99] {
            let a = frac * c as f64;
            let (mut sum, mut term) = (0.0f64, 1.0f64);
            for k in 0..c {
                sum += term;
                term *= a / (k + 1) as f64;
            }
            // term = aᶜ/c! now.
            let tail = term * c as f64 / (c as f64 - a);
            let want_c = tail / (sum + tail);
            let want_b = term / (sum + term);
            assert!(rel_close(erlang_c(c, a), want_c, 1e-11), "C({c}, {a})");
            assert!(rel_close(erlang_b(c, a), want_b, 1e-11), "B({c}, {a})");
        }
    }
    assert_eq!(erlang_b(u32::MAX, 10.0), 0.0);
    let t = spec(
        5.0,
        1.0,
        Servers::Infinite,
        Some(u32::MAX),
        ServiceKind::Exp,
    )
    .theory()
    .expect("loss system");
    assert_eq!((t.blocking, t.mean_in_system), (0.0, 5.0));
    assert_eq!(erlang_c(3, 3.0), 1.0);
    assert_eq!(erlang_c(3, 0.0), 0.0);
    // Large c stays finite and in (0, 1).
    let big = erlang_c(100_000, 99_000.0);
    assert!(big > 0.0 && big < 1.0, "{big}");
}

/// Textbook M/M/2 with λ = μ = 1 (a = 1, ρ = 1/2): C = 1/3, Wq = C/(2μ − λ) = 1/3, W = 4/3,
/// L = 4/3, and since cμ − λ = μ the tail is the limit P(T > t) = e^{−t}(1 + t/3).
#[test]
fn mmc_textbook_example_and_limit_case() {
    let s = mm(1.0, 1.0, 2, None);
    let t = s.theory().expect("stable");
    assert!(rel_close(t.mean_wait_s, 1.0 / 3.0, 1e-14), "{t:?}");
    assert!(rel_close(t.mean_s, 4.0 / 3.0, 1e-14), "{t:?}");
    assert!(rel_close(t.mean_in_system, 4.0 / 3.0, 1e-14), "{t:?}");
    for x in [0.1f64, 0.5, 1.0, 2.0, 5.0, 20.0] {
        let want = 1.0 - (-x).exp() * (1.0 + x / 3.0);
        assert!(
            (s.sojourn_cdf(x).expect("known") - want).abs() < 1e-14,
            "t = {x}"
        );
        // Just either side of the limit the general formula agrees.
        for lambda in [1.0 - 1e-9, 1.0 + 1e-9] {
            let near = mm(lambda, 1.0, 2, None).sojourn_cdf(x).expect("known");
            assert!((near - want).abs() < 1e-8, "λ = {lambda}, t = {x}");
        }
    }
}

/// ∫₀^∞ P(T > t) dt = E[T]: the CDF and the mean formula agree (composite Simpson, n panels
/// on [0, t_max], where the tail beyond t_max is below 10⁻¹³).
fn integrate_survival(cdf: &dyn Fn(f64) -> f64, t_max: f64, panels: usize) -> f64 {
    let h = t_max / panels as f64;
    let mut s = 0.0;
    for i in 0..=panels {
        let w = if i == 0 || i == panels {
            1.0
        } else if i % 2 == 1 {
            4.0
        } else {
            2.0
        };
        s += w * (1.0 - cdf(i as f64 * h));
    }
    s * h / 3.0
}

fn t_max_for(cdf: &dyn Fn(f64) -> f64, scale: f64) -> f64 {
    let mut t = scale;
    while 1.0 - cdf(t) > 1e-14 {
        t *= 1.5;
    }
    t
}

#[test]
fn exponential_family_cdfs_integrate_to_their_means() {
    for s in [
        mm(0.5, 1.0, 1, None),
        mm(1.5, 1.0, 2, None), // cμ − λ < μ
        mm(1.0, 1.0, 4, None), // cμ − λ > μ
        mm(9.0, 1.0, 10, None),
        mm(0.5, 1.0, 1, Some(5)),
        mm(3.0, 1.0, 1, Some(8)), // ρ = 3
        mm(1.5, 1.0, 2, Some(10)),
        mm(7.0, 2.0, 3, Some(20)), // ρ > 1
        mm(2.0, 1.0, 2, Some(40)), // ρ = 1
        spec(3.0, 1.0, Servers::Infinite, None, ServiceKind::Exp),
    ] {
        let mean = s.theory().expect("prediction").mean_s;
        let cdf = s.sojourn_cdf_fn().expect("known distribution");
        let t_max = t_max_for(&cdf, mean);
        let integral = integrate_survival(&cdf, t_max, 20_000);
        assert!(
            rel_close(integral, mean, 1e-8),
            "{}: ∫ = {integral}, W = {mean}",
            s.model_name()
        );
    }
}

/// The stationary distribution of M/M/c/K summed directly (small K, plain floating point).
fn mmck_direct(lambda: f64, mu: f64, c: u32, k: u32) -> Vec<f64> {
    let a = lambda / mu;
    let rho = a / c as f64;
    let mut w = vec![1.0f64];
    for n in 1..=k {
        let prev = w[n as usize - 1];
        w.push(if n <= c {
            prev * a / n as f64
        } else {
            prev * rho
        });
    }
    let z: f64 = w.iter().sum();
    w.iter().map(|x| x / z).collect()
}

/// P(Erlang(k, a) ≤ t) = 1 − Σ_{j<k} e^{−at}(at)ʲ/j!.
fn erlang_cdf(k: u32, a: f64, t: f64) -> f64 {
    let x = a * t;
    let (mut term, mut s) = ((-x).exp(), 0.0);
    for j in 0..k {
        s += term;
        term *= x / (j + 1) as f64;
    }
    1.0 - s
}

/// The M/M/c/K sojourn CDF as the plain mixture over what an accepted arrival finds:
/// n < c → Exp(μ); n ≥ c → Erlang(k, cμ) + Exp(μ) with k = n − c + 1, whose CDF is
/// F_Erl(k,a)(t) − e^{−μt}(a/(a−μ))ᵏ·F_Erl(k,a−μ)(t) for a = cμ ≠ μ, and Erlang(k+1, μ) for c = 1.
fn mmck_cdf_direct(lambda: f64, mu: f64, c: u32, k: u32, t: f64) -> f64 {
    let pi = mmck_direct(lambda, mu, c, k);
    let accepted = 1.0 - pi[k as usize];
    let a = c as f64 * mu;
    let mut f = 0.0;
    for n in 0..k {
        let p = pi[n as usize] / accepted;
        f += p * if n < c {
            1.0 - (-mu * t).exp()
        } else {
            let kk = n - c + 1;
            if c == 1 {
                erlang_cdf(kk + 1, mu, t)
            } else {
                erlang_cdf(kk, a, t)
                    - (-mu * t).exp() * (a / (a - mu)).powi(kk as i32) * erlang_cdf(kk, a - mu, t)
            }
        };
    }
    f
}

#[test]
fn mmck_against_direct_sums() {
    for &(lambda, mu, c, k) in &[
        (0.5, 1.0, 1, 2),
        (0.5, 1.0, 1, 10),
        (2.0, 1.0, 1, 6),
        (1.5, 1.0, 2, 3),
        (1.5, 1.0, 2, 10),
        (5.0, 1.0, 2, 10),
        (2.0, 1.0, 3, 12),
        (3.0, 1.0, 3, 12),
        (0.3, 2.0, 4, 9),
    ] {
        let s = mm(lambda, mu, c, Some(k));
        let t = s.theory().expect("M/M/c/K always has a prediction");
        let pi = mmck_direct(lambda, mu, c, k);
        let blocking = pi[k as usize];
        let l: f64 = pi.iter().enumerate().map(|(n, p)| n as f64 * p).sum();
        let thr = lambda * (1.0 - blocking);
        let name = s.model_name();
        assert!(
            rel_close(t.blocking, blocking, 1e-12),
            "{name} λ={lambda}: {t:?}"
        );
        assert!(
            rel_close(t.mean_in_system, l, 1e-12),
            "{name} λ={lambda}: {t:?}"
        );
        assert!(
            rel_close(t.throughput, thr, 1e-12),
            "{name} λ={lambda}: {t:?}"
        );
        assert!(
            rel_close(t.mean_s, l / thr, 1e-12),
            "{name} λ={lambda}: {t:?}"
        );
        assert!(
            rel_close(t.mean_wait_s, l / thr - 1.0 / mu, 1e-10),
            "{name} λ={lambda}: {t:?}"
        );
        for i in 1..=40 {
            let x = i as f64 * 0.25 / mu;
            let got = s.sojourn_cdf(x).expect("known");
            let want = mmck_cdf_direct(lambda, mu, c, k, x);
            assert!(
                (got - want).abs() < 1e-10,
                "{name} λ={lambda} t={x}: {got} vs {want}"
            );
        }
    }
}

/// M/M/1/K blocking in closed form: (1 − ρ)ρᴷ/(1 − ρᴷ⁺¹), and 1/(K + 1) at ρ = 1.
#[test]
fn mm1k_blocking_closed_form() {
    for rho in [0.1, 0.5, 0.9, 0.999, 1.0, 1.001, 1.5, 4.0] {
        for k in [1u32, 2, 5, 10, 50, 200] {
            let b = mm(rho, 1.0, 1, Some(k))
                .theory()
                .expect("prediction")
                .blocking;
            let want = if rho == 1.0 {
                1.0 / (k as f64 + 1.0)
            } else {
                (1.0 - rho) * rho.powi(k as i32) / (1.0 - rho.powi(k as i32 + 1))
            };
            assert!(rel_close(b, want, 1e-10), "ρ {rho} K {k}: {b} vs {want}");
        }
    }
}

/// For K large the M/M/c/K answers are those of M/M/c (the truncated mass is below ρᴷ ≈ 10⁻⁹⁰).
#[test]
fn mmck_with_large_k_is_mmc() {
    for &(lambda, mu, c) in &[(0.5, 1.0, 1), (1.5, 1.0, 2), (1.0, 1.0, 2), (8.0, 1.0, 10)] {
        let big = mm(lambda, mu, c, Some(2_000 + c));
        let inf = mm(lambda, mu, c, None);
        let (tb, ti) = (big.theory().expect("ok"), inf.theory().expect("stable"));
        assert!(tb.blocking < 1e-80, "{tb:?}");
        assert!(rel_close(tb.mean_s, ti.mean_s, 1e-10), "{tb:?} vs {ti:?}");
        assert!(rel_close(tb.mean_in_system, ti.mean_in_system, 1e-10));
        for q in [tb.p50_s, tb.p90_s, tb.p99_s]
            .into_iter()
            .zip([ti.p50_s, ti.p90_s, ti.p99_s])
        {
            let (a, b) = (q.0.expect("known"), q.1.expect("known"));
            assert!(rel_close(a, b, 1e-8), "{a} vs {b}");
        }
        for i in 0..50 {
            let x = i as f64 * 0.2 / mu;
            let (a, b) = (
                big.sojourn_cdf(x).expect("known"),
                inf.sojourn_cdf(x).expect("known"),
            );
            assert!((a - b).abs() < 1e-11, "c {c} t {x}: {a} vs {b}");
        }
    }
}

/// K = 10⁴ at heavy overload and at ρ = 1: nothing overflows, and the answers are the
/// saturated ones (throughput cμ, almost K in system, W ≈ K/(cμ)).
#[test]
fn mmck_huge_capacity_is_finite() {
    let s = mm(10.0, 1.0, 4, Some(10_000)); // ρ = 2.5
    let t = s.theory().expect("prediction");
    assert!(rel_close(t.blocking, 0.6, 1e-9), "{t:?}");
    assert!(rel_close(t.throughput, 4.0, 1e-9), "{t:?}");
    // With ρ = 2.5 the number of free places is about geometric with mean 1/(ρ − 1) = 2/3.
    assert!(
        (t.mean_in_system - (10_000.0 - 2.0 / 3.0)).abs() < 0.01,
        "{t:?}"
    );
    let p50 = t.p50_s.expect("known");
    assert!((p50 - 10_000.0 / 4.0).abs() < 50.0, "{t:?}");
    assert!(t.p99_s.expect("known") >= p50);
    let s = mm(4.0, 1.0, 4, Some(10_000)); // ρ = 1: uniform over states ≥ c
    let t = s.theory().expect("prediction");
    assert!(
        t.mean_in_system.is_finite() && t.mean_in_system > 4_000.0,
        "{t:?}"
    );
    assert!(t.p50_s.expect("known").is_finite());
    let mut last = 0.0;
    for i in 0..100 {
        let f = s.sojourn_cdf(i as f64 * 50.0).expect("known");
        assert!(f >= last && f <= 1.0, "t {}: {f} < {last}", i as f64 * 50.0);
        last = f;
    }
}

/// K = 10⁵ in overload, c = 1 and c = 3: the saturated answers, and cheap enough to compute
/// (the work per CDF evaluation grows with cμt, here about K).
#[test]
fn mmck_very_large_capacity_in_overload() {
    let k = 100_000u32;
    // M/M/1/K at ρ = 1.5: blocking → 1 − 1/ρ, and an accepted arrival finds about K − 2 ahead
    // (free places geometric with mean 1/(ρ − 1) = 2), so T ≈ Erlang(K − 1, μ): median ≈ K − 1.
    let t = mm(1.5, 1.0, 1, Some(k)).theory().expect("prediction");
    assert!(rel_close(t.blocking, 1.0 / 3.0, 1e-9), "{t:?}");
    assert!(
        (t.p50_s.expect("known") - (k as f64 - 1.0)).abs() < 10.0,
        "{t:?}"
    );
    // Erlang(K, 1) has σ = √K ≈ 316: p99 ≈ median + 2.33σ.
    let spread = t.p99_s.expect("known") - t.p50_s.expect("known");
    assert!((spread - 2.326 * (k as f64).sqrt()).abs() < 20.0, "{t:?}");
    let t = mm(6.0, 1.0, 3, Some(k)).theory().expect("prediction");
    assert!(rel_close(t.throughput, 3.0, 1e-9), "{t:?}");
    assert!(
        (t.p50_s.expect("known") - k as f64 / 3.0).abs() < 10.0,
        "{t:?}"
    );
}

/// M/D/1: Pollaczek–Khinchine W = D + ρD/(2(1 − ρ)) (λ = 0.5, μ = 1: W = 1.5, Wq = 0.5).
#[test]
fn md1_mean_by_pollaczek_khinchine() {
    let t = md1(0.5, 1.0).theory().expect("stable");
    assert!(rel_close(t.mean_s, 1.5, 1e-15), "{t:?}");
    assert!(rel_close(t.mean_wait_s, 0.5, 1e-15), "{t:?}");
    assert!(rel_close(t.mean_in_system, 0.75, 1e-15), "{t:?}");
    // P(T = D) = 1 − ρ: the median sits on the atom at D.
    assert!(rel_close(t.p50_s.expect("known"), 1.0, 1e-8), "{t:?}");
    assert!(t.p90_s.expect("known") > 1.0);
}

/// Erlang's formula P(Wq ≤ t) = (1 − ρ)·Σ_{j=0}^{⌊t/D⌋} (λ(jD − t))ʲ/j!·e^{−λ(jD − t)}: exact, and
/// numerically fine for t of a few D (its terms grow like e^{λt}, so it loses about
/// log10(e^{λt}·…) digits; at t ≤ 6D and ρ ≤ 0.9 that leaves > 11 digits).
#[test]
fn md1_cdf_matches_erlang_formula_at_small_t() {
    for &(rho, d) in &[(0.3, 1.0), (0.5, 0.001), (0.9, 2.0)] {
        let s = md1(rho / d, 1.0 / d);
        let lambda = rho / d;
        for i in 0..=120 {
            let t = i as f64 * 0.05 * d;
            let mut sum = 0.0;
            let mut fact = 1.0;
            for j in 0..=((t / d).floor() as i32) {
                if j > 0 {
                    fact *= j as f64;
                }
                let x = lambda * (j as f64 * d - t);
                sum += x.powi(j) / fact * (-x).exp();
            }
            let want = (1.0 - rho) * sum;
            let got = s.sojourn_cdf(t + d).expect("known");
            assert!((got - want).abs() < 1e-11, "ρ {rho} t {t}: {got} vs {want}");
        }
        assert_eq!(s.sojourn_cdf(d * 0.999_999).expect("known"), 0.0);
    }
}

/// The M/D/1 CDF integrates to the P-K mean; integrated piecewise over [kD, (k+1)D] because the
/// CDF jumps at D and has kinks at multiples of D.
#[test]
fn md1_cdf_integrates_to_mean() {
    for rho in [0.1, 0.5, 0.8, 0.95] {
        let s = md1(rho, 1.0);
        let mean = s.theory().expect("stable").mean_s;
        let cdf = s.sojourn_cdf_fn().expect("known");
        let mut integral = 1.0; // [0, D): P(T > t) = 1
        let mut k = 1.0;
        while 1.0 - cdf(k) > 1e-14 {
            let panels = 200;
            let h = 1.0 / panels as f64;
            let mut part = 0.0;
            for i in 0..=panels {
                let w = if i == 0 || i == panels {
                    1.0
                } else if i % 2 == 1 {
                    4.0
                } else {
                    2.0
                };
                // Just inside the piece at its left end, so the jump at D is on the right side.
                let x = if i == 0 { k } else { k + i as f64 * h };
                part += w * (1.0 - cdf(x));
            }
            integral += part * h / 3.0;
            k += 1.0;
        }
        assert!(
            rel_close(integral, mean, 1e-9),
            "ρ {rho}: ∫ = {integral}, W = {mean}"
        );
    }
}

/// M/D/1 against a Lindley-recursion simulation W ← max(0, W + D − A). Each of n = 20 000
/// independent replications (consecutive stretches of one seeded stream) starts empty and keeps
/// the sojourn of its 200th customer. At ρ = 0.5
/// the number served in a busy period is Borel distributed, P(N > m) ≈ (ρe^{1−ρ})^m = 0.824^m,
/// so after 200 customers the start is forgotten except with probability < 10⁻¹⁶ (coupling with
/// a stationary copy): the samples are i.i.d. from the stationary law, and the DKW–Massart bound
/// P(D > ε) ≤ 2e^{−2nε²} gives ε = √(ln(2·10⁶)/(2n)) = 0.0190 at α = 10⁻⁶.
#[test]
fn md1_cdf_matches_lindley_simulation() {
    let (rho, d) = (0.5, 1.0);
    let n = 20_000;
    let mut samples = Vec::with_capacity(n);
    let mut r = rng(2024, 0);
    for _ in 0..n {
        let mut w = 0.0f64;
        let mut sojourn = 0.0;
        for _ in 0..200 {
            sojourn = w + d;
            let gap: f64 = Exp1.sample(&mut r);
            w = (w + d - gap * d / rho).max(0.0);
        }
        samples.push(sojourn);
    }
    let s = md1(rho / d, 1.0 / d);
    let cdf = s.sojourn_cdf_fn().expect("known");
    let eps = ((2.0f64 / 1e-6).ln() / (2.0 * n as f64)).sqrt();
    // The empirical CDF must match at the atom: the KS statistic as defined for continuous laws
    // overstates D at an atom, so compare at points instead of with ks_statistic alone.
    samples.sort_by(f64::total_cmp);
    let mut worst = 0.0f64;
    for i in 0..=400 {
        let t = d + i as f64 * 0.02;
        let emp = samples.partition_point(|&x| x <= t) as f64 / n as f64;
        worst = worst.max((emp - cdf(t)).abs());
    }
    assert!(
        worst < eps,
        "sup over the grid |F_n − F| = {worst}, bound {eps}"
    );
    // Above the atom the law is continuous: KS on the samples that waited, against the
    // conditional CDF, with n' ≈ ρn samples.
    let mut waited: Vec<f64> = samples.iter().copied().filter(|&x| x > d).collect();
    let p_atom = cdf(d);
    let m = waited.len();
    let d_cond = ks_statistic(&mut waited, |x| (cdf(x) - p_atom) / (1.0 - p_atom));
    let eps_cond = ((2.0f64 / 1e-6).ln() / (2.0 * m as f64)).sqrt();
    assert!(
        d_cond < eps_cond,
        "conditional KS D = {d_cond}, bound {eps_cond}"
    );
    // Power: the M/M/1 law with the same load is far off (its P(T ≤ D) is 0.39, not 0.5).
    let mm1 = mm(rho / d, 1.0 / d, 1, None);
    let emp_at_d = samples.partition_point(|&x| x <= d) as f64 / n as f64;
    assert!((emp_at_d - mm1.sojourn_cdf(d).expect("known")).abs() > 3.0 * eps);
}

#[test]
fn mg1_uniform_mean_only() {
    let s = spec(0.5, 1.0, Servers::Finite(1), None, ServiceKind::Uniform);
    let t = s.theory().expect("stable");
    // W = 1/μ + λ·E[S²]/(2(1 − ρ)), E[S²] = 4/(3μ²): 1 + 0.5·(4/3)/1 = 5/3.
    assert!(rel_close(t.mean_s, 5.0 / 3.0, 1e-15), "{t:?}");
    assert!(rel_close(t.mean_wait_s, 2.0 / 3.0, 1e-15), "{t:?}");
    assert_eq!((t.p50_s, t.p90_s, t.p99_s), (None, None, None));
    assert_eq!(s.sojourn_cdf(1.0), None);
    assert_eq!(s.sojourn_quantile(0.5), None);
    assert!(s.sojourn_cdf_fn().is_none());
}

#[test]
fn infinite_servers_serve_at_once() {
    let s = spec(5.0, 1.0, Servers::Infinite, None, ServiceKind::Exp); // ρ = 5 is fine
    let t = s.theory().expect("always stable");
    assert_eq!(
        (t.rho, t.mean_s, t.mean_wait_s, t.mean_in_system),
        (5.0, 1.0, 0.0, 5.0)
    );
    assert!(rel_close(t.p50_s.expect("known"), 2f64.ln(), 1e-14));
    let d = spec(5.0, 4.0, Servers::Infinite, None, ServiceKind::Const)
        .theory()
        .expect("ok");
    assert_eq!((d.p50_s, d.p99_s), (Some(0.25), Some(0.25)));
    let u = spec(5.0, 4.0, Servers::Infinite, None, ServiceKind::Uniform)
        .theory()
        .expect("ok");
    assert!(rel_close(u.p90_s.expect("known"), 0.9 * 0.5, 1e-15));
    // With a capacity: the Erlang loss system M/G/K/K, blocking Erlang B for any service law.
    for kind in [ServiceKind::Exp, ServiceKind::Const, ServiceKind::Uniform] {
        let t = spec(5.0, 1.0, Servers::Infinite, Some(4), kind)
            .theory()
            .expect("ok");
        assert!(rel_close(t.blocking, erlang_b(4, 5.0), 1e-15), "{kind}");
        assert!(rel_close(
            t.throughput,
            5.0 * (1.0 - erlang_b(4, 5.0)),
            1e-15
        ));
        assert_eq!(t.mean_s, 1.0);
        let t2 = spec(5.0, 1.0, Servers::Finite(4), Some(4), kind)
            .theory()
            .expect("ok");
        assert_eq!(t2.blocking, t.blocking);
        assert_eq!(t2.rho, 5.0 / 4.0);
    }
}

#[test]
fn zero_service_answers_at_once() {
    let s = spec(1e6, f64::NAN, Servers::Finite(1), None, ServiceKind::Zero);
    let t = s.theory().expect("always");
    assert_eq!(t.model, "M/0");
    assert_eq!(
        (t.rho, t.mean_s, t.mean_in_system, t.blocking),
        (0.0, 0.0, 0.0, 0.0)
    );
    assert_eq!((t.p50_s, t.p99_s), (Some(0.0), Some(0.0)));
    assert_eq!(s.sojourn_cdf(0.0), Some(1.0));
    assert_eq!(s.sojourn_cdf(-1.0), Some(0.0));
}

#[test]
fn errors() {
    let unstable = |s: Q| matches!(s.theory(), Err(TheoryError::Unstable { .. }));
    assert!(unstable(mm(1.0, 1.0, 1, None)));
    assert!(unstable(mm(2.5, 1.0, 2, None)));
    assert!(unstable(md1(1.0, 1.0)));
    assert!(unstable(spec(
        3.0,
        1.0,
        Servers::Finite(1),
        None,
        ServiceKind::Uniform
    )));
    match mm(3.0, 2.0, 1, None).theory() {
        Err(TheoryError::Unstable { rho }) => assert_eq!(rho, 1.5),
        other => panic!("{other:?}"),
    }
    let invalid = |s: Q| matches!(s.theory(), Err(TheoryError::Invalid(_)));
    assert!(invalid(mm(0.0, 1.0, 1, None)));
    assert!(invalid(mm(-1.0, 1.0, 1, None)));
    assert!(invalid(mm(f64::NAN, 1.0, 1, None)));
    let model_error = |s: Q| match s.theory() {
        Err(TheoryError::Model(e)) => e,
        other => panic!("{:?}: {other:?}", s.model),
    };
    assert_eq!(model_error(mm(1.0, 0.0, 1, None)), ModelError::Mu(0.0));
    assert_eq!(
        model_error(mm(1.0, f64::INFINITY, 1, None)),
        ModelError::Mu(f64::INFINITY)
    );
    assert_eq!(model_error(mm(1.0, 2.0, 0, None)), ModelError::NoServers);
    assert_eq!(
        model_error(mm(1.0, 2.0, 3, Some(2))),
        ModelError::CapacityBelowServers {
            capacity: 2,
            servers: 3
        }
    );
    assert_eq!(
        model_error(spec(1.0, 2.0, Servers::Infinite, Some(0), ServiceKind::Exp)),
        ModelError::NoCapacity
    );
    let unsupported = |s: Q| matches!(s.theory(), Err(TheoryError::Unsupported(_)));
    assert!(unsupported(spec(
        1.0,
        2.0,
        Servers::Finite(2),
        None,
        ServiceKind::Const
    )));
    assert!(unsupported(spec(
        1.0,
        2.0,
        Servers::Finite(1),
        Some(5),
        ServiceKind::Const
    )));
    assert!(unsupported(spec(
        1.0,
        2.0,
        Servers::Finite(2),
        Some(4),
        ServiceKind::Uniform
    )));
    assert!(unsupported(mm(1.0, 2.0, 2_000_000, None)));
    assert_eq!(mm(1.0, 1.0, 1, None).sojourn_cdf(1.0), None);
    assert_eq!(mm(1.0, 1.0, 1, None).sojourn_quantile(0.5), None);
    let msg = mm(1.0, 1.0, 1, None)
        .theory()
        .expect_err("unstable")
        .to_string();
    assert!(msg.contains("rho = 1.000"), "{msg}");
}

/// Every known CDF is 0 below 0, non-decreasing, tends to 1, and its quantile inverts it.
#[test]
fn cdfs_are_monotone_and_quantiles_invert_them() {
    let specs = [
        mm(0.5, 1.0, 1, None),
        mm(0.95, 1.0, 1, None),
        mm(1.5, 1.0, 2, None),
        mm(7.5, 1.0, 8, None),
        mm(0.5, 1.0, 1, Some(10)),
        mm(6.0, 1.0, 3, Some(30)),
        mm(2.0, 1.0, 2, Some(50)),
        md1(0.5, 1.0),
        md1(0.95, 1.0),
        spec(3.0, 1.0, Servers::Infinite, None, ServiceKind::Exp),
        spec(3.0, 1.0, Servers::Infinite, None, ServiceKind::Uniform),
    ];
    for s in specs {
        let name = format!("{} λ={}", s.model_name(), s.lambda);
        let t = s.theory().expect("prediction");
        let cdf = s.sojourn_cdf_fn().expect("known");
        assert_eq!(cdf(-1.0), 0.0, "{name}");
        let t_max = t_max_for(&cdf, t.mean_s);
        let mut last = 0.0;
        for i in 0..=2000 {
            let x = t_max * i as f64 / 2000.0;
            let f = cdf(x);
            assert!(
                f >= last - 1e-15 && f <= 1.0,
                "{name}: F({x}) = {f} after {last}"
            );
            last = last.max(f);
        }
        assert!(cdf(t_max) > 1.0 - 1e-13, "{name}");
        for q in [0.5, 0.9, 0.99] {
            let x = s.sojourn_quantile(q).expect("known");
            let back = cdf(x);
            assert!(back >= q - 1e-12, "{name}: F(q{q}) = {back}");
        }
        for i in 1..50 {
            let x = t_max * i as f64 / 60.0;
            let f = cdf(x);
            if f > 0.01 && f < 0.999 && (cdf(x * (1.0 - 1e-6)) < f) {
                let back = s.sojourn_quantile(f).expect("known");
                assert!(
                    rel_close(back, x, 1e-8),
                    "{name}: quantile(F({x})) = {back}"
                );
            }
        }
        assert_eq!(s.sojourn_quantile(0.0), None);
        assert_eq!(s.sojourn_quantile(1.0), None);
        assert_eq!(s.sojourn_cdf(f64::NAN), None);
    }
}
