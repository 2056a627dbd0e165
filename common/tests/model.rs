//! The model type: Kendall names both ways, validation, loads, the shared flags, and the
//! comparison of a measurement with theory.
use clap::Parser;
use queuelab_common::model::{Kendall, Load, Model, ModelArgs, ModelError, Servers, ServiceKind};
use queuelab_common::theory::{self, MeasuredSummary, TheoryError};

fn model(servers: Servers, capacity: Option<u32>, service: ServiceKind) -> Model {
    Model::new(1000.0, servers)
        .with_capacity(capacity)
        .with_service(service)
}

/// Every shape the programs name, and its name: the name parses back to the same shape.
#[test]
fn names_round_trip() {
    use ServiceKind::{Const, Exp, Uniform, Zero};
    let (one, two, inf) = (Servers::Finite(1), Servers::Finite(2), Servers::Infinite);
    for (m, name) in [
        (model(one, None, Exp), "M/M/1"),
        (model(two, None, Exp), "M/M/2"),
        (model(Servers::Finite(16), None, Exp), "M/M/16"),
        (model(one, Some(10), Exp), "M/M/1/10"),
        (model(two, Some(10), Exp), "M/M/2/10"),
        (model(two, Some(2), Exp), "M/M/2/2"),
        (model(one, None, Const), "M/D/1"),
        (model(one, Some(1), Const), "M/D/1/1"),
        (model(one, None, Uniform), "M/G/1"),
        (model(inf, None, Exp), "M/M/inf"),
        (model(inf, None, Const), "M/D/inf"),
        (model(inf, None, Uniform), "M/G/inf"),
        (model(inf, Some(10), Exp), "M/M/inf/10"),
        (model(one, None, Zero), "M/0"),
        (model(one, None, ServiceKind::Erlang(4)), "M/E4/1"),
        (model(two, Some(5), ServiceKind::Erlang(1)), "M/E1/2/5"),
        (model(inf, None, ServiceKind::Erlang(1000)), "M/E1000/inf"),
        (
            model(one, None, ServiceKind::Erlang(u32::MAX)),
            "M/E4294967295/1",
        ),
        (
            model(Servers::Finite(u32::MAX), Some(u32::MAX), Exp),
            "M/M/4294967295/4294967295",
        ),
    ] {
        assert_eq!(m.name(), name);
        assert_eq!(m.kendall().to_string(), name);
        assert_eq!(name.parse::<Kendall>(), Ok(m.kendall()), "{name}");
        assert_eq!(Model::parse(name, 1000.0), Ok(m), "{name}");
        // The theory names its model the same way.
        if let Ok(t) = theory::predict(&m, 100.0) {
            assert_eq!(t.model, name);
        }
    }
    // Zero service is M/0 whatever the servers and capacity (it has no queue).
    assert_eq!(model(Servers::Finite(3), Some(7), Zero).name(), "M/0");
    // The kinds whose parameter the name cannot hold are named, but the name does not parse
    // back: it says which --service to give instead.
    let trace: &'static _ = Box::leak(Box::new(
        queuelab_common::samplers::Trace::parse("t.txt", "1\n2\n").expect("a trace"),
    ));
    for (service, name, flag) in [
        (ServiceKind::H2 { cv2: 4.0 }, "M/H2/1", "--service h2:CV2"),
        (
            ServiceKind::Lognormal { cv2: 0.5 },
            "M/LN/1",
            "--service lognormal:CV2",
        ),
        (
            ServiceKind::Pareto {
                alpha: 1.5,
                ratio: 1000.0,
            },
            "M/BP/1",
            "--service pareto:ALPHA[:RATIO]",
        ),
        (ServiceKind::Trace(trace), "M/T/1", "--service trace:FILE"),
    ] {
        let m = model(one, None, service);
        assert_eq!(m.name(), name);
        let msg = name.parse::<Kendall>().expect_err(name).to_string();
        assert!(
            msg.contains(flag) && msg.contains("--model"),
            "{name}: {msg}"
        );
        assert_eq!(
            model(two, Some(4), service).name(),
            format!("{}/2/4", &name[..name.len() - 2])
        );
    }
}

#[test]
fn names_are_read_leniently() {
    for (name, canonical) in [
        ("m/m/1", "M/M/1"),
        (" M / M / 2 / 10 ", "M/M/2/10"),
        ("M/M/∞", "M/M/inf"),
        ("M/D/INF", "M/D/inf"),
        ("M/M/infinity/4", "M/M/inf/4"),
        ("m/0", "M/0"),
        ("m/e4/1", "M/E4/1"),
        (" M / E12 / 2 / 20 ", "M/E12/2/20"),
        ("M/E007/1", "M/E7/1"),
    ] {
        let k: Kendall = name.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(k.to_string(), canonical);
    }
}

#[test]
fn bad_names_say_why() {
    for (name, why) in [
        ("", "arrivals must be M"),
        ("D/M/1", "arrivals must be M"),
        ("M", "the service must be"),
        ("M/X/1", "the service must be"),
        ("M/M", "number of servers is missing"),
        ("M/M/", "number of servers must be"),
        ("M/M/0", "number of servers must be"),
        ("M/M/-1", "number of servers must be"),
        ("M/M/1.5", "number of servers must be"),
        ("M/M/4294967296", "number of servers must be"),
        ("M/M/1/", "capacity must be a positive integer"),
        ("M/M/1/x", "capacity must be a positive integer"),
        ("M/M/1/-3", "capacity must be a positive integer"),
        ("M/M/1/4294967296", "capacity is too large"),
        ("M/M/1/10/5", "too many parts"),
        ("M/0/1", "zero service is named M/0"),
        ("M/E/1", "needs its number of phases"),
        ("M/E0/1", "must be at least 1"),
        ("M/E1.5/1", "must be a whole number"),
        ("M/E-2/1", "must be a whole number"),
        ("M/Ex/1", "must be a whole number"),
        ("M/E 4/1", "must be a whole number"),
        ("M/E4294967296/1", "too many"),
        ("M/E4", "number of servers is missing"),
        ("M/h2/1", "--service h2:CV2"),
        ("M/ln/2/4", "--service lognormal:CV2"),
        ("M/BP/1", "--service pareto:ALPHA"),
        ("M/t/inf", "--service trace:FILE"),
        ("M/H3/1", "the service must be"),
    ] {
        match name.parse::<Kendall>() {
            Err(e @ ModelError::Name { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(why), "{name:?}: {msg}");
                assert!(msg.contains(&format!("{name:?}")), "{name:?}: {msg}");
            }
            other => panic!("{name:?}: {other:?}"),
        }
    }
    // Well formed, but not a queue.
    assert_eq!("M/M/1/0".parse::<Kendall>(), Err(ModelError::NoCapacity));
    assert_eq!(
        "M/M/3/2".parse::<Kendall>(),
        Err(ModelError::CapacityBelowServers {
            capacity: 2,
            servers: 3
        })
    );
}

#[test]
fn validation_table() {
    let ok = Model::default();
    assert_eq!(ok.validate(), Ok(()));
    assert_eq!(ok.name(), "M/M/1");
    assert_eq!(ok.mu, 1000.0);
    let with = |f: &dyn Fn(&mut Model)| {
        let mut m = Model::default();
        f(&mut m);
        m.validate()
    };
    type Change<'a> = &'a dyn Fn(&mut Model);
    let cases: &[(&str, Change<'_>, Result<(), ModelError>)] = &[
        ("mu 0", &|m| m.mu = 0.0, Err(ModelError::Mu(0.0))),
        ("mu < 0", &|m| m.mu = -1.0, Err(ModelError::Mu(-1.0))),
        (
            "mu inf",
            &|m| m.mu = f64::INFINITY,
            Err(ModelError::Mu(f64::INFINITY)),
        ),
        (
            "zero service ignores mu",
            &|m| {
                m.mu = f64::NAN;
                m.service = ServiceKind::Zero;
            },
            Ok(()),
        ),
        (
            "no servers",
            &|m| m.servers = Servers::Finite(0),
            Err(ModelError::NoServers),
        ),
        (
            "no capacity",
            &|m| m.capacity = Some(0),
            Err(ModelError::NoCapacity),
        ),
        (
            "K below c",
            &|m| {
                m.servers = Servers::Finite(4);
                m.capacity = Some(3);
            },
            Err(ModelError::CapacityBelowServers {
                capacity: 3,
                servers: 4,
            }),
        ),
        (
            "K = c",
            &|m| {
                m.servers = Servers::Finite(4);
                m.capacity = Some(4);
            },
            Ok(()),
        ),
        (
            "infinite servers with K",
            &|m| {
                m.servers = Servers::Infinite;
                m.capacity = Some(1);
            },
            Ok(()),
        ),
    ];
    for (name, change, want) in cases {
        assert_eq!(&with(change), want, "{name}");
    }
    // NaN is rejected too (NaN ≠ NaN, so by the message).
    let mut m = Model::default();
    m.mu = f64::NAN;
    let e = m.validate().expect_err("NaN mu");
    assert_eq!(e.to_string(), "--mu must be a positive rate, got NaN");
    assert!(Model::parse("M/M/1", 0.0).is_err());
    assert_eq!(
        ModelError::CapacityBelowServers {
            capacity: 1,
            servers: 2
        }
        .to_string(),
        "--capacity 1 is below --servers 2: K counts the requests in service too"
    );
}

#[test]
fn loads_convert_both_ways() {
    let m = Model::new(1000.0, Servers::Finite(2));
    assert_eq!(m.lambda(Load::Rho(0.5)), 1000.0);
    assert_eq!(m.lambda(Load::Rate(123.0)), 123.0);
    assert_eq!(m.rho(1000.0), 0.5);
    let inf = Model::new(1000.0, Servers::Infinite);
    assert_eq!(inf.lambda(Load::Rho(0.5)), 500.0);
    assert_eq!(inf.rho(3000.0), 3.0);
    for rho in [0.1, 0.5, 0.95, 1.5] {
        for m in [m, inf, Model::default()] {
            let back = m.rho(m.lambda(Load::Rho(rho)));
            assert!((back - rho).abs() <= 1e-15 * rho, "{m:?} {rho}: {back}");
        }
    }
    assert_eq!(
        Model::default().with_service(ServiceKind::Zero).rho(1e6),
        0.0
    );
    // The theory reports the same ρ.
    let t = theory::predict(&m, 1500.0).expect("stable");
    assert_eq!(t.rho, m.rho(1500.0));
}

/// The shared flags in a command of their own, as the programs flatten them.
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    model: ModelArgs,
}

fn parse(args: &[&str]) -> Result<ModelArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("prog").chain(args.iter().copied())).map(|c| c.model)
}

#[test]
fn flags_give_the_model() {
    let none = parse(&[]).expect("no flags");
    assert_eq!(none, ModelArgs::default());
    assert_eq!(none.model_or(1000.0), Model::default());
    assert_eq!(none.given_model(), None);
    assert!(!none.describes_queue());
    for (args, mu, name) in [
        (&["--mu", "2k"][..], 2000.0, "M/M/1"),
        (&["--servers", "4"][..], 1000.0, "M/M/4"),
        (
            &["--servers", "inf", "--capacity", "10"][..],
            1000.0,
            "M/M/inf/10",
        ),
        (
            &["--capacity", "1k", "--servers", "2"][..],
            1000.0,
            "M/M/2/1000",
        ),
        (&["--service", "const"][..], 1000.0, "M/D/1"),
        (&["--service", "uniform", "--mu", "500"][..], 500.0, "M/G/1"),
        (&["--service", "zero"][..], 1000.0, "M/0"),
        (&["--model", "M/M/2/10"][..], 1000.0, "M/M/2/10"),
        (
            &["--model", "M/D/inf", "--mu", "20k"][..],
            20_000.0,
            "M/D/inf",
        ),
        (&["--model=M/0"][..], 1000.0, "M/0"),
        (&["--model", "M/E4/2"][..], 1000.0, "M/E4/2"),
        (&["--service", "erlang:4"][..], 1000.0, "M/E4/1"),
        (
            &["--service", "h2:4", "--servers", "2"][..],
            1000.0,
            "M/H2/2",
        ),
        (&["--service", "lognormal:10"][..], 1000.0, "M/LN/1"),
        (
            &["--service", "pareto:1.5", "--capacity", "8"][..],
            1000.0,
            "M/BP/1/8",
        ),
    ] {
        let a = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let m = a.model_or(1000.0);
        assert_eq!((m.mu, m.name().as_str()), (mu, name), "{args:?}");
        assert_eq!(a.describes_queue(), args[0] != "--mu", "{args:?}");
        assert_eq!(
            a.given_model().is_some(),
            args.contains(&"--mu"),
            "{args:?}"
        );
    }
    let m = parse(&["--model", "M/M/3/9", "--mu", "10"])
        .expect("flags")
        .given_model()
        .expect("--mu given");
    assert_eq!(
        (m.mu, m.servers, m.capacity, m.service),
        (10.0, Servers::Finite(3), Some(9), ServiceKind::Exp)
    );
}

#[test]
fn bad_flags_are_refused_by_clap() {
    for (args, why) in [
        (&["--mu", "fast"][..], "invalid rate"),
        (&["--mu", "0"][..], "rate"),
        (&["--servers", "0"][..], "must be at least 1"),
        (&["--servers", "two"][..], "positive integer or inf"),
        (&["--capacity", "5G"][..], "too large"),
        (
            &["--service", "gamma"][..],
            "expected exp, const, uniform, zero, erlang:K",
        ),
        (&["--model", "M/M"][..], "number of servers is missing"),
        (&["--model", "M/H2/1"][..], "--service h2:CV2"),
        (&["--service", "h2:0.5"][..], "must be above 1"),
        (&["--service", "erlang:0"][..], "at least 1"),
        (&["--service", "pareto:1.5:1"][..], "must be above 1"),
        (
            &["--model", "M/M/1", "--servers", "2"][..],
            "cannot be used",
        ),
        (
            &["--model", "M/M/1", "--capacity", "2"][..],
            "cannot be used",
        ),
        (
            &["--model", "M/M/1", "--service", "exp"][..],
            "cannot be used",
        ),
    ] {
        let e = parse(args).expect_err("refused");
        let msg = e.to_string();
        assert!(msg.contains(why), "{args:?}: {msg}");
    }
}

/// λ = 500, μ = 1000 (M/M/1): W = 1/(μ − λ) = 2000 µs, median ln 2·2000 µs, p99 ln 100·2000 µs.
#[test]
fn compare_holds_a_measurement_against_theory() {
    let m = Model::default();
    let w = 2000.0;
    let measured = MeasuredSummary {
        mean_us: Some(2100.0),
        ci95_us: Some((1950.0, 2250.0)),
        p50_us: Some(w * 2f64.ln() * 0.9),
        p99_us: Some(w * 100f64.ln() * 1.2),
    };
    let c = theory::compare(&m, 500.0, &measured).expect("stable");
    assert_eq!(c.theory.model, "M/M/1");
    assert_eq!(c.lambda, 500.0);
    assert!((c.mean_us - w).abs() < 1e-9, "{c:?}");
    let rel = |x: Option<f64>| x.expect("compared");
    assert!((rel(c.rel_err_mean) - 0.05).abs() < 1e-12, "{c:?}");
    assert!((rel(c.rel_err_p50) + 0.1).abs() < 1e-9, "{c:?}");
    assert!((rel(c.rel_err_p99) - 0.2).abs() < 1e-9, "{c:?}");
    assert_eq!(c.mean_in_ci, Some(true));
    let outside = MeasuredSummary {
        ci95_us: Some((2050.0, 2150.0)),
        ..measured
    };
    assert_eq!(
        theory::compare(&m, 500.0, &outside)
            .expect("stable")
            .mean_in_ci,
        Some(false)
    );
    // Nothing measured: the prediction alone.
    let c = theory::compare(&m, 500.0, &MeasuredSummary::default()).expect("stable");
    assert_eq!(
        (c.rel_err_mean, c.rel_err_p50, c.rel_err_p99, c.mean_in_ci),
        (None, None, None, None)
    );
    assert!(c.p50_us.is_some() && c.p90_us.is_some() && c.p99_us.is_some());
    // Zero service predicts 0: no relative error, but the interval still says whether 0 is in it.
    let zero = Model::default().with_service(ServiceKind::Zero);
    let c = theory::compare(&zero, 500.0, &measured).expect("always");
    assert_eq!(
        (c.mean_us, c.rel_err_mean, c.rel_err_p50),
        (0.0, None, None)
    );
    assert_eq!(c.mean_in_ci, Some(false));
    // M/G/1: a mean, no percentiles.
    let mg1 = Model::default().with_service(ServiceKind::Uniform);
    let c = theory::compare(&mg1, 500.0, &measured).expect("stable");
    assert!(c.rel_err_mean.is_some() && c.rel_err_p50.is_none() && c.p99_us.is_none());
    // No theory: why.
    assert!(matches!(
        theory::compare(&m, 1000.0, &measured),
        Err(TheoryError::Unstable { .. })
    ));
    assert!(matches!(
        theory::compare(&Model::new(0.0, Servers::Finite(1)), 1.0, &measured),
        Err(TheoryError::Model(ModelError::Mu(_)))
    ));
}

/// The help of `--service` and `--model` names every kind they take.
#[test]
fn help_lists_every_service_kind() {
    use clap::CommandFactory;
    let help = Cli::command().render_long_help().to_string();
    for kind in [
        "`exp`",
        "`const`",
        "`uniform`",
        "`erlang:K`",
        "`h2:CV2`",
        "`lognormal:CV2`",
        "`pareto:ALPHA[:RATIO]`",
        "`trace:FILE`",
        "`zero`",
        "M/E4/1",
        "Ek",
    ] {
        assert!(help.contains(kind), "{kind} missing from:\n{help}");
    }
}
