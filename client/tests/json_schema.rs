//! Real results, of every mode and of a merge, hold to the checked-in JSON Schema; the schema is
//! strict enough to reject a result with a key missing or one it does not know.
mod support;

use std::time::Duration;

use queuelab_client::result::RunResult;
use queuelab_client::{Mode, merge, run};
use queuelab_common::model::{Model, Servers};
use queuelab_common::samplers::ArrivalKind;
use serde_json::Value;
use support::{Behavior, TestServer, config, refusing_addr};

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/result.schema.json"
    ))
    .expect("the schema is checked in");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

fn assert_valid(v: &jsonschema::Validator, r: &RunResult, what: &str) {
    let json = serde_json::to_value(r).expect("serializes");
    let errors: Vec<String> = v
        .iter_errors(&json)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
    // And it reads back to the same value.
    let back: RunResult = serde_json::from_value(json).expect("deserializes");
    assert_eq!(&back, r, "{what}: round trip");
}

fn open_run(addr: std::net::SocketAddr, n: u64) -> RunResult {
    let mut c = config(
        addr,
        Mode::Open {
            rate: 400.0,
            arrival: ArrivalKind::Poisson,
        },
    );
    c.requests = Some(n);
    c.duration = None;
    c.timeout = Duration::from_secs(2);
    c.theory = Some(Model::new(1000.0, Servers::Finite(1)));
    run(c).expect("the run completes")
}

#[test]
fn results_of_every_kind_match_the_schema() {
    let v = schema();
    let server = TestServer::start(Behavior::Length);

    let open = open_run(server.addr(), 300);
    assert!(open.theory.is_some(), "theory requested");
    assert!(!open.intervals.is_empty());
    assert_valid(&v, &open, "open loop with theory");

    let mut c = config(
        server.addr(),
        Mode::Closed {
            users: 3,
            think: Duration::from_millis(1),
        },
    );
    c.requests = Some(100);
    c.duration = None;
    assert_valid(&v, &run(c).expect("closed run"), "closed loop");

    let mut c = config(server.addr(), Mode::Max { connections: 4 });
    c.requests = Some(500);
    c.duration = None;
    assert_valid(&v, &run(c).expect("max run"), "max");

    // Nothing completes: empty histograms, null statistics, warnings.
    let mut c = config(
        refusing_addr(),
        Mode::Open {
            rate: 200.0,
            arrival: ArrivalKind::Uniform,
        },
    );
    c.requests = Some(20);
    c.duration = None;
    let failed = run(c).expect("the run completes");
    assert_eq!(failed.requests.completed, 0);
    assert!(!failed.warnings.is_empty());
    assert_valid(&v, &failed, "all connects refused");

    // An unstable queue: no theory, a warning.
    let mut c = config(
        server.addr(),
        Mode::Open {
            rate: 300.0,
            arrival: ArrivalKind::Constant,
        },
    );
    c.requests = Some(30);
    c.duration = None;
    c.theory = Some(Model::new(100.0, Servers::Finite(1)));
    let unstable = run(c).expect("the run completes");
    assert!(unstable.theory.is_none());
    assert!(unstable.warnings.iter().any(|w| w.contains("no theory")));
    assert_valid(&v, &unstable, "unstable queue");

    let merged = merge::merge(&[open.clone(), open_run(server.addr(), 200)]).expect("merge");
    assert_eq!(merged.parts, 2);
    assert!(merged.theory.is_some());
    assert_valid(&v, &merged, "merged");
}

#[test]
fn the_design_keys_are_present() {
    let server = TestServer::start(Behavior::Length);
    let json = serde_json::to_value(open_run(server.addr(), 100)).expect("serializes");
    for key in [
        "target_rate",
        "achieved_rate",
        "duration_s",
        "requests",
        "latency_us",
        "latency_uncorrected_us",
        "send_lag_us",
        "arrivals",
        "theory",
        "histogram",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    for key in ["sent", "completed", "errors", "errors_by_kind", "status"] {
        assert!(
            json["requests"].get(key).is_some(),
            "missing requests.{key}"
        );
    }
    for key in [
        "mean",
        "stdev",
        "p50",
        "p90",
        "p99",
        "p999",
        "max",
        "ci95_low",
        "ci95_high",
    ] {
        assert!(json["latency_us"].get(key).is_some(), "latency_us.{key}");
        assert!(
            json["latency_uncorrected_us"].get(key).is_some(),
            "latency_uncorrected_us.{key}"
        );
    }
    for key in ["p50", "p99", "max"] {
        assert!(json["send_lag_us"].get(key).is_some(), "send_lag_us.{key}");
    }
    for key in ["gap_mean_us", "gap_cv", "ks_d", "ks_p"] {
        assert!(json["arrivals"].get(key).is_some(), "arrivals.{key}");
    }
    for key in ["model", "rho", "mean_us", "p50_us", "p99_us"] {
        assert!(json["theory"].get(key).is_some(), "theory.{key}");
    }
    for key in [
        "connect",
        "timeout",
        "read",
        "write",
        "parse",
        "closed",
        "backlog",
        "unfinished",
    ] {
        assert!(
            json["requests"]["errors_by_kind"].get(key).is_some(),
            "errors_by_kind.{key}"
        );
    }
    for key in ["2xx", "3xx", "4xx", "5xx", "503"] {
        assert!(
            json["requests"]["status"].get(key).is_some(),
            "status.{key}"
        );
    }
}

#[test]
fn the_schema_rejects_missing_and_unknown_keys() {
    let v = schema();
    let server = TestServer::start(Behavior::Length);
    let json = serde_json::to_value(open_run(server.addr(), 50)).expect("serializes");
    assert!(v.is_valid(&json));

    let mut missing = json.clone();
    missing
        .as_object_mut()
        .expect("an object")
        .remove("achieved_rate");
    assert!(!v.is_valid(&missing));

    let mut unknown = json.clone();
    unknown["latency_us"]["p75"] = Value::from(1.0);
    assert!(!v.is_valid(&unknown));

    let mut wrong_type = json;
    wrong_type["requests"]["sent"] = Value::from("many");
    assert!(!v.is_valid(&wrong_type));
}
