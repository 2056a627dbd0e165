//! Variability sweeps: the C² → service mapping, the flags, the Pollaczek–Khinchine line, the
//! plot, and (ignored: timing-dependent) a two-point sweep that restarts the qserve binary.
use std::fs;

use queuelab_client::result::{Latency, RunResult};
use queuelab_common::model::{Load, Model, Servers, ServiceKind};
use queuelab_common::stats;
use queuelab_lab::record::{
    OpenReference, PointMeasurement, PointRecord, ResultsFile, VariabilityPoint, VariabilitySweep,
};
use queuelab_lab::sweep::SweepKind;
use queuelab_lab::variability::{self, Cv2Axis, Family, service_for};

mod support;
use support::{parse, plan, qserve};

#[test]
fn each_cv2_maps_to_the_family_member_that_has_it() {
    for (c, want) in [
        (0.0, ServiceKind::Const),
        (0.5, ServiceKind::Erlang(2)),
        (0.25, ServiceKind::Erlang(4)),
        (0.333_333, ServiceKind::Erlang(3)),
        (1.0, ServiceKind::Exp),
        (4.0, ServiceKind::H2 { cv2: 4.0 }),
        (16.0, ServiceKind::H2 { cv2: 16.0 }),
    ] {
        assert_eq!(service_for(Family::H2, c), Ok(want), "C² = {c}");
    }
    for c in [0.3, 0.7, -1.0, f64::NAN, f64::INFINITY] {
        let e = service_for(Family::H2, c).expect_err("no member");
        assert!(e.contains(&format!("{c}")), "{e}");
    }
    for c in [0.25, 1.0, 16.0] {
        assert_eq!(
            service_for(Family::Lognormal, c),
            Ok(ServiceKind::Lognormal { cv2: c })
        );
    }
    assert!(service_for(Family::Lognormal, 0.0).is_err());
    // The family of --service: the ladder's members are h2's; others have no C² to vary.
    assert_eq!(Family::of_service(None), Ok(Family::H2));
    assert_eq!(Family::of_service(Some(ServiceKind::Exp)), Ok(Family::H2));
    assert_eq!(
        Family::of_service(Some(ServiceKind::Lognormal { cv2: 2.0 })),
        Ok(Family::Lognormal)
    );
    assert!(Family::of_service(Some(ServiceKind::Uniform)).is_err());
}

#[test]
fn cv2_flags_make_a_variability_plan_and_refuse_what_the_family_cannot_make() {
    let p = plan(&["--cv2", "0,0.25,1,4,16", "--rho", "0.7"]).expect("valid");
    let SweepKind::Variability(vp) = &p.kind else {
        panic!("not a variability sweep: {:?}", p.kind);
    };
    assert_eq!(vp.rho, 0.7);
    assert_eq!(vp.family, Family::H2);
    assert_eq!(
        vp.services,
        [
            ServiceKind::Const,
            ServiceKind::Erlang(4),
            ServiceKind::Exp,
            ServiceKind::H2 { cv2: 4.0 },
            ServiceKind::H2 { cv2: 16.0 }
        ]
    );
    // qlab starts the servers itself (a URL conflicts), so there is a server plan.
    assert!(p.servers.is_some());
    // The default load, and the lognormal family by its bare name.
    let p = plan(&["--cv2", "0.5,2", "--service", "lognormal"]).expect("valid");
    let SweepKind::Variability(vp) = &p.kind else {
        panic!("not a variability sweep");
    };
    assert_eq!((vp.rho, vp.family), (0.7, Family::Lognormal));
    for (words, says) in [
        (&["--cv2", "0,0.3,1", "--rho", "0.7"][..], "0.3"),
        (&["--cv2", "0,1", "--service", "lognormal"][..], "C² = 0"),
        (&["--cv2", "1", "--service", "uniform"][..], "uniform"),
        (&["--cv2", "1", "--rho", "1.2"][..], "--rho"),
        (&["--cv2", "1", "--capacity", "5"][..], "--capacity"),
        (&["--service", "h2"][..], "--service h2"),
    ] {
        let e = plan(words).expect_err("refused");
        assert!(format!("{e:#}").contains(says), "{words:?}: {e:#}");
    }
    for words in [
        &["--cv2", "1", "--rhos", "0.5"][..],
        &["--cv2", "1", "http://127.0.0.1:9/"][..],
        &["--cv2", "1", "--quick"][..],
        &["--rho", "0.5"][..],
        &["--cv2", "x"][..],
    ] {
        assert!(parse(words).is_err(), "{words:?} parsed");
    }
}

#[test]
fn the_pollaczek_khinchine_line_is_mm1_at_one_and_md1_at_zero() {
    let m = Model::new(1000.0, Servers::Finite(1));
    let lambda = 700.0;
    let (w1, exact) = variability::pk_mean_s(&m, lambda, 1.0).expect("stable");
    assert!(exact);
    assert!((w1 - 1.0 / 300.0).abs() < 1e-15, "{w1}");
    // M/D/1: W = 1/μ + ρ/(2μ(1 − ρ)).
    let (w0, _) = variability::pk_mean_s(&m, lambda, 0.0).expect("stable");
    assert!((w0 - (0.001 + 0.7 / (2.0 * 1000.0 * 0.3))).abs() < 1e-15);
    // Linear in C².
    let (w16, _) = variability::pk_mean_s(&m, lambda, 16.0).expect("stable");
    assert!((w16 - w0 - 16.0 * (w1 - w0)).abs() < 1e-12);
    // c = 2: the approximation, exact at C² = 1 (M/M/2: W = 1/μ + C(2, a)/(2μ − λ)).
    let m2 = Model::new(1000.0, Servers::Finite(2));
    let (w, exact) = variability::pk_mean_s(&m2, 1400.0, 1.0).expect("stable");
    assert!(!exact);
    let a: f64 = 1.4;
    let rho = 0.7;
    let erlang_c = (a * a / 2.0 / (1.0 - rho)) / (1.0 + a + a * a / 2.0 / (1.0 - rho));
    assert!((w - (0.001 + erlang_c / 600.0)).abs() < 1e-12, "{w}");
    assert!(variability::pk_mean_s(&m, 1000.0, 1.0).is_none());
}

#[test]
fn zero_is_set_apart_a_decade_below_on_a_log_axis() {
    let x = Cv2Axis::for_values(&[0.0, 0.25, 1.0, 4.0, 16.0]);
    assert!(x.log);
    assert!((x.at(16.0) - 16f64.log10()).abs() < 1e-12);
    assert!((x.at(0.0) - (0.25f64.log10() - 1.0)).abs() < 1e-12);
    // Less than a decade: linear, 0 at 0.
    let x = Cv2Axis::for_values(&[0.0, 0.5, 1.0]);
    assert!(!x.log);
    assert_eq!((x.at(0.0), x.at(0.5)), (0.0, 0.5));
}

/// An open point of M/G/1 at λ: response times spread around `mean_us`, with its interval
/// ±2%, and a p99 of 4.6 means; no overhead run.
fn point(lambda: f64, mean_us: f64) -> PointRecord {
    let mut h = stats::new_histogram();
    let n: u32 = 2000;
    let values: Vec<f64> = (0..n)
        .map(|i| -mean_us * (1.0 - (f64::from(i) + 0.5) / f64::from(n)).ln())
        .collect();
    for &v in &values {
        stats::record_ns(&mut h, (v * 1e3).round() as u64);
    }
    let q = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
    PointRecord {
        index: 0,
        rho: 0.7,
        lambda,
        warmup_s: 1.0,
        seed: 1,
        measured: PointMeasurement {
            target_rate: lambda,
            achieved_rate: lambda,
            duration_s: 2.0,
            sent: u64::from(n),
            completed: u64::from(n),
            latency_us: Latency {
                count: u64::from(n),
                mean: mean_us,
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
                p999: q(0.999),
                ci95_low: Some(mean_us * 0.98),
                ci95_high: Some(mean_us * 1.02),
                ..Latency::default()
            },
            histogram: stats::histogram_to_string(&h),
            ..PointMeasurement::default()
        },
        overhead: None,
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

fn sweep_file() -> ResultsFile {
    let mut f: ResultsFile =
        serde_json::from_str(include_str!("data/lab-v1/results.json")).expect("fixture");
    f.points.clear();
    f.analysis.clear();
    f.config.mu = 1000.0;
    f.config.capacity = None;
    f.config.service = "const".into();
    f.config.rhos = vec![0.7];
    let base = f.config.model().expect("a model");
    let lambda = base.lambda(Load::Rho(0.7));
    let cv2 = vec![0.0, 0.25, 1.0, 4.0, 16.0];
    let points = cv2
        .iter()
        .map(|&c| {
            let s = service_for(Family::H2, c).expect("a member");
            let m = base.with_service(s);
            let (w, _) = variability::pk_mean_s(&m, lambda, c).expect("stable");
            VariabilityPoint {
                cv2: c,
                service: s.to_string(),
                model: m.name(),
                point: point(lambda, w * 1e6),
                reference: Some(OpenReference {
                    source: "simulation, 10 replications".into(),
                    mean_s: w,
                    mean_half_s: w * 0.01,
                    p99_s: w * 4.6,
                    p99_half_s: w * 0.1,
                }),
            }
        })
        .collect();
    f.variability = Some(VariabilitySweep {
        rho: 0.7,
        family: "h2".into(),
        cv2,
        points,
    });
    f
}

#[test]
fn the_plot_renders_with_measured_pk_and_reference_series() {
    let f = sweep_file();
    let (table, svg) = variability::render(&f).expect("renders");
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let ids: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute("id"))
        .filter_map(|id| id.strip_prefix("series-"))
        .collect();
    for want in [
        "pk",
        "pk-zero",
        "measured-mean",
        "measured-p99",
        "reference-p99",
    ] {
        assert!(ids.contains(&want), "{want} in {ids:?}");
    }
    // Five markers of each measured series, and the reference's bars.
    let series = |id: &str| {
        doc.descendants()
            .find(|n| n.attribute("id") == Some(id))
            .expect("series")
    };
    let circles = series("series-measured-mean")
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .count();
    assert_eq!(circles, 5);
    // The C² ticks are the swept values, 0 among them.
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    for t in ["0", "0.25", "1", "4", "16"] {
        assert!(texts.contains(&t), "tick {t} in {texts:?}");
    }
    // The table: each point's service, and PK within every interval (the means are PK's).
    for s in ["const", "erlang:4", "exp", "h2:4", "h2:16"] {
        assert!(table.contains(s), "{s} in {table}");
    }
    assert!(
        table.contains("Pollaczek–Khinchine mean at 5 of 5 points"),
        "{table}"
    );
}

#[test]
fn a_variability_record_reads_back_and_is_redrawn() {
    let dir = std::env::temp_dir().join(format!("qlab-cv2-record-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("dir");
    let f = sweep_file();
    f.write(&dir).expect("written");
    let back = ResultsFile::read(&dir).expect("reads");
    let v = back.variability.as_ref().expect("section");
    assert_eq!(v.cv2, [0.0, 0.25, 1.0, 4.0, 16.0]);
    let services: Vec<&str> = v.points.iter().map(|p| p.service.as_str()).collect();
    assert_eq!(services, ["const", "erlang:4", "exp", "h2:4", "h2:16"]);
    let out = variability::report(&dir).expect("report");
    assert!(dir.join(variability::CV2_SVG).is_file());
    assert!(out.table.contains("h2:16"));
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
#[ignore = "timing-dependent end to end; scripts/test.sh runs it"]
fn a_variability_sweep_of_two_points_restarts_qserve() {
    let dir = std::env::temp_dir().join(format!("qlab-cv2-sweep-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let out = dir.display().to_string();
    let qs = qserve().display().to_string();
    let p = plan(&[
        "--cv2",
        "0,1",
        "--rho",
        "0.5",
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--attempts",
        "1",
        "--qserve",
        &qs,
        "--out",
        &out,
    ])
    .expect("valid");
    let SweepKind::Variability(vp) = p.kind.clone() else {
        panic!("variability");
    };
    let sp = p.servers.clone().expect("local servers");
    let mut plan = p;
    plan.servers = None;
    let o = variability::sweep(&plan, &vp, &sp, &mut std::io::sink()).expect("the sweep runs");
    let file = ResultsFile::read(&dir).expect("results.json");
    let v = file.variability.as_ref().expect("a variability section");
    assert_eq!(v.points.len(), 2);
    assert_eq!(
        (v.points[0].model.as_str(), v.points[1].model.as_str()),
        ("M/D/1", "M/M/1")
    );
    for pt in &v.points {
        // About λ·T = 500 requests each, all answered.
        assert!(pt.point.measured.completed > 250, "{:?}", pt.point.measured);
        assert_eq!(pt.point.measured.errors, 0);
        // The server that answered ran the point's service: its banner is not checked here, but
        // the Server-Timing of an M/D/1 answer has a service of exactly 1/μ = 1 ms.
        assert!(pt.point.raw.server_us.is_some());
    }
    let d = v.points[0]
        .point
        .raw
        .server_timing
        .get("service")
        .expect("service durations");
    assert!(
        (d.p50 - 1000.0).abs() < 20.0 && (d.p99 - 1000.0).abs() < 20.0,
        "{d:?}"
    );
    assert!(o.table.contains("const") && o.table.contains("exp"));
    assert!(dir.join(variability::CV2_SVG).is_file());
    fs::remove_dir_all(&dir).expect("cleanup");
}
