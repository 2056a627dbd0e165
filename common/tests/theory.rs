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

// ---------------------------------------------------------------------------------------------
// Pollaczek–Khinchine for every service law, the disciplines, priority classes, closed systems.
//
// Every check below compares two deterministic computations in floating point (no sampling), so
// the tolerances only cover rounding: a few operations of relative error 2⁻⁵³ each, hence 1e-12
// where both sides are short formulas, and 1e-9 where a recursion runs over up to 64 (or 10⁴)
// steps whose errors do not grow (each step multiplies earlier errors by at most 1).
// ---------------------------------------------------------------------------------------------

use queuelab_common::model::{Classes, Discipline};
use queuelab_common::theory::{ClosedTheory, closed, closed_birth_death, mva};

/// One server, no capacity, service `kind`, discipline `d`, classes `p`.
fn one(lambda: f64, mu: f64, kind: ServiceKind, d: Discipline, p: &[f64]) -> Q {
    let mut q = spec(lambda, mu, Servers::Finite(1), None, kind);
    q.model = q
        .model
        .with_discipline(d)
        .with_classes(Classes::new(p).expect("valid classes"));
    q
}

fn with(q: Q, d: Discipline, p: &[f64]) -> Q {
    Q {
        model: q
            .model
            .with_discipline(d)
            .with_classes(Classes::new(p).expect("valid classes")),
        ..q
    }
}

/// The kinds whose C² is known in closed form, with it (computed here, not by the crate).
fn kinds_with_cv2() -> Vec<(ServiceKind, f64)> {
    vec![
        (ServiceKind::Exp, 1.0),
        (ServiceKind::Const, 0.0),
        (ServiceKind::Uniform, 1.0 / 3.0),
        (ServiceKind::Erlang(1), 1.0),
        (ServiceKind::Erlang(4), 0.25),
        (ServiceKind::Erlang(10), 0.1),
        (ServiceKind::H2 { cv2: 4.0 }, 4.0),
        (ServiceKind::H2 { cv2: 20.0 }, 20.0),
        (ServiceKind::Lognormal { cv2: 0.5 }, 0.5),
        (ServiceKind::Lognormal { cv2: 10.0 }, 10.0),
    ]
}

/// P–K by hand. M/E4/1 at μ = 1, λ = 0.5: C² = 1/4, E[S²] = (1 + C²)/μ² = 5/4, so
/// Wq = λE[S²]/(2(1 − ρ)) = 0.5·1.25/1 = 0.625, W = 1.625. M/H2/1 with C² = 4 at μ = 1, λ = 0.8:
/// E[S²] = 5, Wq = 0.8·5/0.4 = 10, W = 11. M/LN/1 with C² = 10 at μ = 2, λ = 1: E[S²] = 11/4,
/// Wq = 2.75/1 = 2.75, W = 3.25. M/E1/1 is M/M/1: W = 1/(μ − λ).
#[test]
fn pollaczek_khinchine_hand_values() {
    let fcfs = Discipline::Fcfs;
    let cases = [
        (0.5, 1.0, ServiceKind::Erlang(4), 0.625, 1.625),
        (0.8, 1.0, ServiceKind::H2 { cv2: 4.0 }, 10.0, 11.0),
        (1.0, 2.0, ServiceKind::Lognormal { cv2: 10.0 }, 2.75, 3.25),
        (0.5, 1.0, ServiceKind::Erlang(1), 1.0, 2.0),
    ];
    for (lambda, mu, kind, wq, w) in cases {
        let s = one(lambda, mu, kind, fcfs, &[1.0]);
        let t = s.theory().expect("stable");
        assert!(rel_close(t.mean_wait_s, wq, 1e-12), "{kind}: {t:?}");
        assert!(rel_close(t.mean_s, w, 1e-12), "{kind}: {t:?}");
        assert!(rel_close(t.mean_in_system, lambda * w, 1e-12), "{kind}");
        assert_eq!((t.blocking, t.throughput), (0.0, lambda));
        // No closed form for the distribution: the simulator gives the percentiles.
        assert_eq!((t.p50_s, t.p90_s, t.p99_s), (None, None, None), "{kind}");
        assert!(s.sojourn_cdf_fn().is_none(), "{kind}");
        assert!(t.classes.is_empty());
        assert_eq!(t.model, s.model_name());
    }
    assert_eq!(
        one(0.5, 1.0, ServiceKind::Erlang(4), fcfs, &[1.0])
            .theory()
            .expect("stable")
            .model,
        "M/E4/1"
    );
}

/// Harchol-Balter, Performance Modeling and Design of Computer Systems (2013), ch. 23: the P–K
/// formula as E[T_Q] = ρ/(1 − ρ)·(1 + C²)/2·E[S], i.e. the M/G/1 wait is the M/M/1 wait times
/// (1 + C²)/2; and Kleinrock, Queueing Systems vol. 1 (1975), ch. 5: M/D/1 waits half as long as
/// M/M/1. Across every kind and loads from light to heavy.
#[test]
fn pollaczek_khinchine_is_mm1_times_half_one_plus_cv2() {
    for mu in [1.0, 1000.0] {
        for rho in [0.05, 0.3, 0.5, 0.8, 0.95, 0.999] {
            let lambda = rho * mu;
            let mm1 = mm(lambda, mu, 1, None).theory().expect("stable");
            for (kind, cv2) in kinds_with_cv2() {
                let t = one(lambda, mu, kind, Discipline::Fcfs, &[1.0])
                    .theory()
                    .expect("stable");
                let want = mm1.mean_wait_s * (1.0 + cv2) / 2.0;
                assert!(
                    rel_close(t.mean_wait_s, want, 1e-12),
                    "{kind} ρ {rho}: {} vs {want}",
                    t.mean_wait_s
                );
                assert!(rel_close(t.mean_s, want + 1.0 / mu, 1e-12), "{kind}");
            }
            let d = md1(lambda, mu).theory().expect("stable");
            assert!(rel_close(d.mean_wait_s, mm1.mean_wait_s / 2.0, 1e-12));
            assert!(d.p99_s.is_some(), "M/D/1 keeps its distribution");
        }
    }
    // Unstable at ρ ≥ 1 for every kind, as M/M/1.
    for (kind, _) in kinds_with_cv2() {
        assert!(matches!(
            one(1.0, 1.0, kind, Discipline::Fcfs, &[1.0]).theory(),
            Err(TheoryError::Unstable { .. })
        ));
    }
}

/// Bounded Pareto on [m, r·m] with shape α: E[Sʲ] = α·mᵅ/(1 − r^{−α})·((rm)^{j−α} − m^{j−α})/(j − α)
/// (Harchol-Balter 2013, ch. 20), m chosen for the mean 1/μ. Until the sampler knows its C², the
/// theory must refuse rather than print NaN; once it does, P–K must use the right E[S²].
#[test]
fn pollaczek_khinchine_bounded_pareto() {
    let (mu, lambda) = (1000.0, 500.0);
    for (alpha, ratio) in [(1.5, 1000.0), (1.1, 100.0), (2.5, 50.0)] {
        let kind = ServiceKind::Pareto { alpha, ratio };
        let moment = |m: f64, j: f64| {
            alpha * m.powf(alpha) / (1.0 - ratio.powf(-alpha))
                * ((ratio * m).powf(j - alpha) - m.powf(j - alpha))
                / (j - alpha)
        };
        // E[S] is proportional to m: scale m = 1 to the mean 1/μ.
        let m = 1.0 / (mu * moment(1.0, 1.0));
        let es2 = moment(m, 2.0);
        let got = one(lambda, mu, kind, Discipline::Fcfs, &[1.0]).theory();
        if kind.cv2().is_finite() {
            let t = got.expect("a finite second moment");
            let wq = lambda * es2 / (2.0 * (1.0 - lambda / mu));
            assert!(rel_close(t.mean_wait_s, wq, 1e-9), "{kind}: {t:?} vs {wq}");
        } else {
            assert!(
                matches!(got, Err(TheoryError::Unsupported(_))),
                "{kind}: {got:?}"
            );
        }
    }
}

/// LCFS (non-preemptive) serves in an order that does not depend on the sizes, so the number in
/// system and the mean are FCFS's (Kleinrock, Queueing Systems vol. 2 (1976), §3.5;
/// Harchol-Balter 2013, ch. 29): M/G/1 for every kind, M/M/c, and M/M/c/K (same birth–death chain). No percentiles.
#[test]
fn lcfs_has_the_fcfs_mean() {
    for (kind, _) in kinds_with_cv2() {
        let f = one(0.7, 1.0, kind, Discipline::Fcfs, &[1.0]);
        let l = with(f, Discipline::Lcfs, &[1.0]);
        let (tf, tl) = (f.theory().expect("ok"), l.theory().expect("ok"));
        assert_eq!(tl.mean_s, tf.mean_s, "{kind}");
        assert_eq!(tl.mean_wait_s, tf.mean_wait_s, "{kind}");
        assert_eq!(tl.mean_in_system, tf.mean_in_system, "{kind}");
        assert_eq!((tl.p50_s, tl.p90_s, tl.p99_s), (None, None, None), "{kind}");
        assert!(l.sojourn_cdf_fn().is_none());
        assert!(tl.classes.is_empty());
        assert!(tl.model.ends_with("-LCFS"), "{}", tl.model);
    }
    for (lambda, c, k) in [
        (1.5, 2, None),
        (7.0, 8, None),
        (1.5, 2, Some(10)),
        (3.0, 2, Some(5)),
    ] {
        let f = mm(lambda, 1.0, c, k);
        let (tf, tl) = (
            f.theory().expect("ok"),
            with(f, Discipline::Lcfs, &[1.0]).theory().expect("ok"),
        );
        assert_eq!(
            (tl.mean_s, tl.blocking, tl.mean_in_system, tl.throughput),
            (tf.mean_s, tf.blocking, tf.mean_in_system, tf.throughput)
        );
        assert_eq!(tl.p99_s, None);
    }
    // M/G/c FCFS has no closed form, so neither has its LCFS twin.
    assert!(matches!(
        with(
            spec(1.0, 1.0, Servers::Finite(2), None, ServiceKind::Uniform),
            Discipline::Lcfs,
            &[1.0]
        )
        .theory(),
        Err(TheoryError::Unsupported(_))
    ));
}

/// Processor sharing is insensitive (Kleinrock vol. 2 (1976), ch. 4; Harchol-Balter 2013,
/// ch. 30): M/G/1-PS has W = 1/(μ − λ) and L = ρ/(1 − ρ) whatever the service law; M/G/c-PS has
/// the number in system of M/M/c (a symmetric queue, Kelly 1979), so W of M/M/c.
#[test]
fn ps_is_insensitive() {
    for (kind, _) in kinds_with_cv2() {
        for (lambda, mu) in [(0.5, 1.0), (950.0, 1000.0), (0.01, 1.0)] {
            let s = one(lambda, mu, kind, Discipline::Ps, &[1.0]);
            let t = s.theory().expect("stable");
            let rho: f64 = lambda / mu;
            assert!(
                rel_close(t.mean_s, 1.0 / (mu - lambda), 1e-12),
                "{kind}: {t:?}"
            );
            assert!(
                rel_close(t.mean_in_system, rho / (1.0 - rho), 1e-12),
                "{kind}"
            );
            assert!(
                rel_close(t.mean_wait_s, 1.0 / (mu - lambda) - 1.0 / mu, 1e-9),
                "{kind}: {t:?}"
            );
            assert_eq!((t.p50_s, t.p90_s, t.p99_s), (None, None, None));
            assert!(t.model.ends_with("/1-PS"), "{}", t.model);
        }
        for (lambda, c) in [(1.5, 2), (2.7, 3), (15.0, 16)] {
            let t = with(
                spec(lambda, 1.0, Servers::Finite(c), None, kind),
                Discipline::Ps,
                &[1.0],
            )
            .theory()
            .expect("stable");
            let m = mm(lambda, 1.0, c, None).theory().expect("stable");
            assert_eq!(
                (t.mean_s, t.mean_in_system),
                (m.mean_s, m.mean_in_system),
                "{kind}"
            );
            assert_eq!(t.p99_s, None);
        }
        assert!(matches!(
            one(1.0, 1.0, kind, Discipline::Ps, &[1.0]).theory(),
            Err(TheoryError::Unstable { .. })
        ));
    }
    // M/M/c/K-PS: the same birth–death chain as FCFS (blocking, L, W by Little).
    let f = mm(3.0, 1.0, 2, Some(6));
    let (tf, tp) = (
        f.theory().expect("ok"),
        with(f, Discipline::Ps, &[1.0]).theory().expect("ok"),
    );
    assert_eq!(
        (tp.blocking, tp.mean_in_system, tp.mean_s),
        (tf.blocking, tf.mean_in_system, tf.mean_s)
    );
    assert_eq!(tp.p50_s, None);
    // With a capacity and another service law there is no closed form here.
    assert!(matches!(
        with(
            spec(1.0, 1.0, Servers::Finite(1), Some(5), ServiceKind::Uniform),
            Discipline::Ps,
            &[1.0]
        )
        .theory(),
        Err(TheoryError::Unsupported(_))
    ));
}

/// Cobham (1954), in Kleinrock vol. 2 (1976) §3.6 and Harchol-Balter 2013 ch. 31, worked by
/// hand. M/M/1, μ = 1, λ = 0.8, classes (0.25, 0.75): λ₀ = 0.2, λ₁ = 0.6, σ₀ = 0.2, σ₁ = 0.8,
/// W₀ = λE[S²]/2 = 0.8·2/2 = 0.8; Wq,₀ = 0.8/(1·0.8) = 1, Wq,₁ = 0.8/(0.8·0.2) = 5; the
/// λ-weighted mean 0.25 + 3.75 = 4 = ρ/(μ − λ), FCFS's.
/// Preemptive resume (Harchol-Balter ch. 32): T₀ = 1/(1 − 0) + (0.2·1)/(1·0.8) = 1.25 (class 0
/// alone, M/M/1 at λ₀: 1/(1 − 0.2)), T₁ = 1/0.8 + (0.8·1)/(0.8·0.2) = 6.25; mean 5 = 1/(μ − λ).
/// M/M/2 non-preemptive, μ = 1, λ = 1.5, classes (0.5, 0.5): Erlang C(2, 1.5) = 9/14,
/// W₀ = C/(cμ) = 9/28, σ₀ = 0.375, σ₁ = 0.75: Wq,₀ = (9/28)/0.625 = 18/35,
/// Wq,₁ = (9/28)/(0.625·0.25) = 72/35; mean 9/7 = C/(cμ − λ), FCFS's.
#[test]
fn priority_worked_examples() {
    let p = [0.25, 0.75];
    let np = one(0.8, 1.0, ServiceKind::Exp, Discipline::Priority, &p)
        .theory()
        .expect("stable");
    assert_eq!(np.model, "M/M/1-NP");
    assert_eq!(np.classes.len(), 2);
    let want = [(0.2, 1.0, 2.0), (0.6, 5.0, 6.0)];
    for (c, (lambda, wq, t)) in np.classes.iter().zip(want) {
        assert!(rel_close(c.lambda, lambda, 1e-12), "{np:?}");
        assert!(rel_close(c.mean_wait_s, wq, 1e-12), "{np:?}");
        assert!(rel_close(c.mean_s, t, 1e-12), "{np:?}");
    }
    assert!(rel_close(np.mean_wait_s, 4.0, 1e-12));
    assert!(rel_close(np.mean_s, 5.0, 1e-12));
    assert!(rel_close(np.mean_in_system, 4.0, 1e-12));
    assert_eq!((np.p50_s, np.p99_s), (None, None));

    let pr = one(
        0.8,
        1.0,
        ServiceKind::Exp,
        Discipline::PriorityPreemptive,
        &p,
    )
    .theory()
    .expect("stable");
    assert_eq!(pr.model, "M/M/1-PR");
    let want = [1.25, 6.25];
    for (c, t) in pr.classes.iter().zip(want) {
        assert!(rel_close(c.mean_s, t, 1e-12), "{pr:?}");
        assert!(rel_close(c.mean_wait_s, t - 1.0, 1e-12), "{pr:?}");
    }
    assert!(rel_close(pr.mean_s, 5.0, 1e-12));

    let q = with(mm(1.5, 1.0, 2, None), Discipline::Priority, &[0.5, 0.5]);
    let t = q.theory().expect("stable");
    let want = [18.0 / 35.0, 72.0 / 35.0];
    for (c, wq) in t.classes.iter().zip(want) {
        assert!(rel_close(c.mean_wait_s, wq, 1e-12), "{t:?}");
        assert!(rel_close(c.mean_s, wq + 1.0, 1e-12), "{t:?}");
    }
    assert!(rel_close(t.mean_wait_s, 9.0 / 7.0, 1e-12));
}

/// Kleinrock's conservation law (vol. 2, §3.4): for any work-conserving non-preemptive order
/// with the same service law for every class, Σ ρₖWq,ₖ = ρ·Wq(FCFS), so the λ-weighted wait is
/// FCFS's, for M/G/1 with any law and M/M/c. With exponential service, preemptive resume is also
/// work conserving and memoryless, so the number in system is M/M/1's: L = ρ/(1 − ρ). The highest
/// class under preemption sees an M/G/1 of its own: T₀ = E[S] + λ₀E[S²]/(2(1 − ρ₀)).
#[test]
fn priority_conservation() {
    let splits: [&[f64]; 5] = [
        &[0.5, 0.5],
        &[0.1, 0.9],
        &[0.9, 0.1],
        &[0.2, 0.3, 0.5],
        &[0.05, 0.1, 0.1, 0.15, 0.1, 0.2, 0.2, 0.1],
    ];
    for p in splits {
        for rho in [0.1, 0.5, 0.9, 0.99] {
            for (kind, cv2) in kinds_with_cv2() {
                let mu = 1000.0;
                let lambda = rho * mu;
                let f = one(lambda, mu, kind, Discipline::Fcfs, &[1.0])
                    .theory()
                    .expect("ok");
                let t = one(lambda, mu, kind, Discipline::Priority, p)
                    .theory()
                    .expect("ok");
                assert_eq!(t.classes.len(), p.len());
                let weighted: f64 = t.classes.iter().map(|c| c.lambda * c.mean_wait_s).sum();
                assert!(
                    rel_close(weighted / lambda, f.mean_wait_s, 1e-12),
                    "{kind} {p:?} ρ {rho}: {} vs {}",
                    weighted / lambda,
                    f.mean_wait_s
                );
                assert!(rel_close(t.mean_wait_s, f.mean_wait_s, 1e-12));
                assert!(rel_close(t.mean_s, f.mean_s, 1e-12));
                // Higher classes wait less.
                for w in t.classes.windows(2) {
                    assert!(w[0].mean_wait_s <= w[1].mean_wait_s * (1.0 + 1e-12));
                }
                let pr = one(lambda, mu, kind, Discipline::PriorityPreemptive, p)
                    .theory()
                    .expect("ok");
                let es2 = (1.0 + cv2) / (mu * mu);
                let l0 = p[0] * lambda;
                let t0 = 1.0 / mu + l0 * es2 / (2.0 * (1.0 - l0 / mu));
                assert!(rel_close(pr.classes[0].mean_s, t0, 1e-12), "{kind} {p:?}");
                if kind == ServiceKind::Exp {
                    assert!(
                        rel_close(pr.mean_in_system, rho / (1.0 - rho), 1e-12),
                        "{p:?} ρ {rho}: {pr:?}"
                    );
                    assert!(rel_close(pr.mean_s, 1.0 / (mu - lambda), 1e-12));
                }
            }
            // M/M/c non-preemptive against M/M/c FCFS.
            for c in [2u32, 3, 16] {
                let lambda = rho * f64::from(c);
                let f = mm(lambda, 1.0, c, None).theory().expect("ok");
                let t = with(mm(lambda, 1.0, c, None), Discipline::Priority, p)
                    .theory()
                    .expect("ok");
                assert!(
                    rel_close(t.mean_wait_s, f.mean_wait_s, 1e-12),
                    "M/M/{c} {p:?} ρ {rho}: {} vs {}",
                    t.mean_wait_s,
                    f.mean_wait_s
                );
                let weighted: f64 = t.classes.iter().map(|c| c.lambda * c.mean_s).sum();
                assert!(rel_close(weighted / lambda, f.mean_s, 1e-12));
            }
        }
    }
}

/// What the priority disciplines refuse or reduce to FCFS.
#[test]
fn priority_limits() {
    let unsupported = |q: Q| matches!(q.theory(), Err(TheoryError::Unsupported(_)));
    let two = [0.4, 0.6];
    // Preemptive with several servers; non-preemptive M/G/c; priority with a capacity.
    assert!(unsupported(with(
        mm(1.0, 1.0, 2, None),
        Discipline::PriorityPreemptive,
        &two
    )));
    assert!(unsupported(with(
        spec(1.0, 1.0, Servers::Finite(2), None, ServiceKind::Erlang(2)),
        Discipline::Priority,
        &two
    )));
    assert!(unsupported(with(
        mm(0.5, 1.0, 1, Some(5)),
        Discipline::Priority,
        &two
    )));
    assert!(unsupported(with(
        mm(0.5, 1.0, 1, Some(5)),
        Discipline::PriorityPreemptive,
        &two
    )));
    assert!(matches!(
        one(1.2, 1.0, ServiceKind::Exp, Discipline::Priority, &two).theory(),
        Err(TheoryError::Unstable { .. })
    ));
    // One class: nobody outranks anybody, so both are FCFS, percentiles and capacity included.
    for d in [Discipline::Priority, Discipline::PriorityPreemptive] {
        for f in [
            mm(0.5, 1.0, 1, None),
            mm(1.5, 1.0, 2, None),
            mm(0.9, 1.0, 1, Some(5)),
            md1(0.5, 1.0),
        ] {
            let (tf, tp) = (
                f.theory().expect("ok"),
                with(f, d, &[1.0]).theory().expect("ok"),
            );
            assert_eq!(
                (tp.mean_s, tp.p50_s, tp.p99_s, tp.blocking),
                (tf.mean_s, tf.p50_s, tf.p99_s, tf.blocking)
            );
            assert_eq!(tp.classes.len(), 1);
            assert_eq!(tp.classes[0].mean_s, tf.mean_s);
            assert_eq!(tp.classes[0].lambda, f.lambda);
        }
    }
    // Nobody waits (∞ servers, loss systems, zero service): every class sees the totals.
    for q in [
        spec(3.0, 1.0, Servers::Infinite, None, ServiceKind::Exp),
        spec(3.0, 1.0, Servers::Finite(2), Some(2), ServiceKind::Uniform),
        spec(3.0, 1.0, Servers::Finite(1), None, ServiceKind::Zero),
    ] {
        let t = with(q, Discipline::PriorityPreemptive, &[0.3, 0.7])
            .theory()
            .expect("ok");
        assert_eq!(t.classes.len(), 2, "{t:?}");
        for (c, p) in t.classes.iter().zip([0.3, 0.7]) {
            assert_eq!((c.mean_s, c.mean_wait_s), (t.mean_s, 0.0));
            assert!(rel_close(c.lambda, p * 3.0, 1e-15));
        }
    }
    // FCFS, LCFS and PS have no classes in the prediction, even with several configured.
    for d in [Discipline::Fcfs, Discipline::Lcfs, Discipline::Ps] {
        let t = with(mm(0.5, 1.0, 1, None), d, &two).theory().expect("ok");
        assert!(t.classes.is_empty(), "{d}");
    }
}

/// MVA against the birth–death chain of M/M/c//N (two independent exact methods), c = 1 and 2
/// (and more), N = 1..64, think times from 0 to 100 service times.
#[test]
fn mva_matches_birth_death() {
    let mu = 1000.0;
    for c in [1u32, 2, 3, 4, 8] {
        for z_in_d in [0.0, 0.1, 1.0, 5.0, 30.0, 100.0] {
            let z = z_in_d / mu;
            let all = mva(mu, c, z, 64);
            assert_eq!(all.len(), 64);
            for (i, m) in all.iter().enumerate() {
                let n = i as u32 + 1;
                let b = closed_birth_death(mu, c, z, n);
                let what = format!("c {c} Z {z} N {n}: {m:?} vs {b:?}");
                assert_eq!((m.users, m.think_s), (n, z), "{what}");
                assert!(rel_close(m.throughput, b.throughput, 1e-9), "{what}");
                assert!(rel_close(m.response_s, b.response_s, 1e-9), "{what}");
                assert!(
                    rel_close(m.mean_in_system, b.mean_in_system, 1e-9),
                    "{what}"
                );
                assert!(rel_close(m.utilization, b.utilization, 1e-9), "{what}");
                assert_eq!(
                    (m.bound_throughput, m.bound_response_s, m.n_star),
                    (b.bound_throughput, b.bound_response_s, b.n_star)
                );
            }
        }
    }
}

/// Asymptotic bounds (Lazowska et al., Quantitative System Performance (1984), ch. 5):
/// X(N) ≤ min(N/(D + Z), c/D), R(N) ≥ max(D, N·D/c − Z); at N = 1 the user finds the queue
/// empty, R = D exactly; far beyond N* the queue never empties and X → c/D.
#[test]
fn mva_bounds_and_limits() {
    let mu = 1000.0;
    let d = 1.0 / mu;
    for c in 1u32..=8 {
        for z in [0.0, 0.001, 0.05, 1.0] {
            let all = mva(mu, c, z, 200);
            assert_eq!(all[0].response_s, d, "c {c} Z {z}: R(1) = D exactly");
            assert!(rel_close(all[0].throughput, 1.0 / (d + z), 1e-15));
            for m in &all {
                assert!(m.throughput <= m.bound_throughput * (1.0 + 1e-12), "{m:?}");
                assert!(m.response_s >= m.bound_response_s * (1.0 - 1e-12), "{m:?}");
                assert!(m.utilization <= 1.0 + 1e-12, "{m:?}");
            }
            // Throughput grows with N and the response time too.
            for w in all.windows(2) {
                assert!(w[1].throughput >= w[0].throughput * (1.0 - 1e-12));
                assert!(w[1].response_s >= w[0].response_s * (1.0 - 1e-12));
            }
        }
        // Z = 1 s, D = 1 ms: N* = c·1001; at N = 10⁴ (c ≤ 8: N ≥ 1.2·N*) the queue is idle
        // with a probability that is exponentially small in N − N*, so X = c/D within 1e-9.
        let last = mva(mu, c, 1.0, 10_000).pop().expect("10⁴ entries");
        let cap = f64::from(c) * mu;
        assert!(rel_close(last.throughput, cap, 1e-9), "c {c}: {last:?}");
        assert!(
            rel_close(last.response_s, 10_000.0 / cap - 1.0, 1e-6),
            "c {c}: {last:?}"
        );
    }
    // By hand, c = 1, μ = 1, Z = 1: R(1) = 1, X(1) = 1/2, Q(1) = 1/2; R(2) = 1.5, X(2) = 0.8,
    // Q(2) = 1.2 (the birth–death chain: π ∝ (1, 2, 2), X = 4/5, Q = 6/5).
    let two = mva(1.0, 1, 1.0, 2);
    assert_eq!((two[0].response_s, two[0].throughput), (1.0, 0.5));
    assert!(rel_close(two[1].response_s, 1.5, 1e-15));
    assert!(rel_close(two[1].throughput, 0.8, 1e-15));
    assert!(rel_close(two[1].mean_in_system, 1.2, 1e-15));
    assert!(mva(1.0, 1, 1.0, 0).is_empty());
    assert!(mva(1.0, 0, 1.0, 5).is_empty());
}

/// `closed` is MVA for one server (any service under PS: insensitive) and the birth–death chain
/// for several; no product form is Unsupported.
#[test]
fn closed_uses_mva_and_refuses_what_it_cannot() {
    let mu = 500.0;
    let m1 = Model::new(mu, Servers::Finite(1));
    for n in [1u32, 7, 64, 1000] {
        let want: ClosedTheory = *mva(mu, 1, 0.02, n).last().expect("n ≥ 1");
        assert_eq!(closed(&m1, n, 0.02).expect("product form"), want);
        let ps = m1
            .with_service(ServiceKind::H2 { cv2: 9.0 })
            .with_discipline(Discipline::Ps);
        assert_eq!(closed(&ps, n, 0.02).expect("PS is insensitive"), want);
        let m3 = Model::new(mu, Servers::Finite(3));
        assert_eq!(
            closed(&m3, n, 0.02).expect("product form"),
            closed_birth_death(mu, 3, 0.02, n)
        );
    }
    let unsupported = |m: Model| matches!(closed(&m, 5, 0.1), Err(TheoryError::Unsupported(_)));
    assert!(unsupported(m1.with_service(ServiceKind::Const)));
    assert!(unsupported(m1.with_service(ServiceKind::Erlang(3))));
    assert!(unsupported(m1.with_capacity(Some(3))));
    assert!(unsupported(Model::new(mu, Servers::Infinite)));
    assert!(matches!(closed(&m1, 0, 0.1), Err(TheoryError::Invalid(_))));
    assert!(matches!(closed(&m1, 3, -1.0), Err(TheoryError::Invalid(_))));
    assert!(matches!(
        closed(&m1, 3, f64::NAN),
        Err(TheoryError::Invalid(_))
    ));
}
