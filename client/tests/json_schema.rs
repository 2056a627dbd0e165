//! Real results, of every mode and of a merge, hold to the checked-in JSON Schema; the schema is
//! strict enough to reject a result with a key missing or one it does not know.
//!
//! The schema is generated from the Rust types (`queuelab_client::result::json_schema`); the
//! checked-in file must be that, byte for byte. After a change to the result types, rewrite it
//! with `UPDATE_SCHEMA=1 cargo test -p queuelab-client --test json_schema` and review the diff.
//! The generated schema keeps every key of format 1 as the hand-written schema had it
//! (`schema_v1_keys.txt`), required where it was required.
mod support;
mod tls_server;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use queuelab_client::result::RunResult;
use queuelab_client::{Mode, merge, run};
use queuelab_common::model::{Model, Servers};
use queuelab_common::samplers::ArrivalKind;
use serde_json::Value;
use support::{Behavior, TestServer, config, refusing_addr};

const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/result.schema.json");

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(SCHEMA_FILE).expect("the schema is checked in");
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

    // A rate profile: the profile echoed, a target rate per interval.
    let mut c = config(
        server.addr(),
        Mode::Open {
            rate: 1.0,
            arrival: ArrivalKind::Poisson,
        },
    );
    c.profile =
        Some(queuelab_common::profile::Profile::parse("200:200ms,0..400:200ms").expect("valid"));
    c.duration = None;
    c.interval = Duration::from_millis(100);
    let shaped = run(c).expect("shaped run");
    assert_eq!(
        shaped.config.profile.as_deref(),
        Some("200:200ms,0..400:200ms")
    );
    assert!(shaped.intervals.iter().all(|i| i.target_rate.is_some()));
    assert_valid(&v, &shaped, "rate profile");

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

    // HTTPS: the TLS phase, and TLS errors with their breakdown and first text.
    let pki = tls_server::Pki::new(false);
    let tls = tls_server::TlsServer::start(tls_server::Behavior::Serve(pki.http11()));
    let https = |verify| {
        let mut c = config(tls.addr(), Mode::Max { connections: 2 });
        c.target = queuelab_client::Target::https(tls.addr(), "localhost", verify)
            .expect("an https target");
        c.requests = Some(50);
        c.duration = None;
        run(c).expect("the run completes")
    };
    let ok = https(queuelab_client::tls::Verify::Insecure);
    assert!(ok.phases.tls_us.is_some() && ok.requests.completed == 50);
    assert_valid(&v, &ok, "https");
    let empty =
        queuelab_client::tls::Verify::Roots(std::sync::Arc::new(rustls::RootCertStore::empty()));
    let refused = https(empty);
    assert!(
        refused.requests.tls_errors.certificate > 0 && refused.requests.tls_first_error.is_some()
    );
    assert_valid(&v, &refused, "https, untrusted");
    let merged = merge::merge(&[ok.clone(), refused.clone(), open.clone()]).expect("merge");
    assert_eq!(
        merged.phases.tls_us.as_ref().map(|d| d.count),
        ok.phases.tls_us.as_ref().map(|d| d.count)
    );
    assert_eq!(
        merged.requests.tls_errors.certificate,
        refused.requests.tls_errors.certificate
    );
    assert_eq!(
        merged.requests.tls_first_error,
        refused.requests.tls_first_error
    );
    assert_valid(&v, &merged, "merged with https");
}

/// The JSON type a design key must have in a real run; `null` is never accepted.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Number,
    Count,
    Text,
    Object,
}

/// `v[path]`, checked to be present, not `null`, and of `kind`.
fn design_key<'a>(v: &'a Value, path: &str, kind: Kind) -> &'a Value {
    let got = path
        .split('.')
        .try_fold(v, |v, k| v.get(k))
        .unwrap_or_else(|| panic!("missing {path}"));
    let ok = match kind {
        Kind::Number => got.is_number(),
        Kind::Count => got.is_u64(),
        Kind::Text => got.is_string(),
        Kind::Object => got.is_object(),
    };
    assert!(ok, "{path} should be {kind:?}, is {got}");
    got
}

#[test]
fn the_design_keys_are_present() {
    let server = TestServer::start(Behavior::Length);
    // 200 requests at 400/s: 0.5 s, 16 to 32 batches, so the batch-means interval (ten
    // non-empty batches needed) and the arrival statistics exist; --mu 1000 gives theory.
    let json = serde_json::to_value(open_run(server.addr(), 200)).expect("serializes");
    use Kind::{Count, Number, Object, Text};
    for (key, kind) in [
        ("target_rate", Number),
        ("achieved_rate", Number),
        ("duration_s", Number),
        ("requests", Object),
        ("requests.sent", Count),
        ("requests.completed", Count),
        ("requests.errors", Count),
        ("requests.errors_by_kind", Object),
        ("requests.status", Object),
        ("send_lag_us", Object),
        ("send_lag_us.p50", Number),
        ("send_lag_us.p99", Number),
        ("send_lag_us.max", Number),
        ("arrivals", Object),
        ("arrivals.gap_mean_us", Number),
        ("arrivals.gap_cv", Number),
        ("arrivals.ks_d", Number),
        ("arrivals.ks_p", Number),
        ("theory", Object),
        ("theory.model", Text),
        ("theory.rho", Number),
        ("theory.mean_us", Number),
        ("theory.p50_us", Number),
        ("theory.p99_us", Number),
        ("histogram", Text),
    ] {
        design_key(&json, key, kind);
    }
    for latency in ["latency_us", "latency_uncorrected_us"] {
        design_key(&json, latency, Object);
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
            design_key(&json, &format!("{latency}.{key}"), Number);
        }
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
        design_key(&json, &format!("requests.errors_by_kind.{key}"), Count);
    }
    for key in ["2xx", "3xx", "4xx", "5xx", "503"] {
        design_key(&json, &format!("requests.status.{key}"), Count);
    }
    assert!(
        design_key(&json, "histogram", Text)
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "an empty histogram"
    );
    assert_eq!(json["theory"]["model"], "M/M/1");
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

/// The generated schema, as the file holds it: pretty-printed, with a final newline.
fn generated_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&queuelab_client::result::json_schema())
        .expect("the schema serializes");
    text.push('\n');
    text
}

#[test]
fn the_schema_file_is_generated_from_the_types() {
    let want = generated_schema_text();
    if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(SCHEMA_FILE, &want).expect("rewriting the schema");
        return;
    }
    let have = std::fs::read_to_string(SCHEMA_FILE).expect("the schema is checked in");
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
        panic!(
            "{SCHEMA_FILE} is not the schema the result types generate (first difference at \
             line {}: file {:?}, generated {:?}).\nIf the types changed on purpose, rewrite it with \
             `UPDATE_SCHEMA=1 cargo test -p queuelab-client --test json_schema` and review the diff.",
            line + 1,
            have.lines().nth(line).unwrap_or("<end>"),
            want.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

/// Every key path of `schema` (`a.b`, `a[].b` for the items of an array), with whether its object
/// requires it; `$ref`s into `$defs` and the branches of `anyOf`/`oneOf`/`allOf` are followed.
fn key_paths(schema: &Value) -> BTreeMap<String, bool> {
    fn walk(root: &Value, node: &Value, path: &str, out: &mut BTreeMap<String, bool>) {
        if let Some(r) = node.get("$ref").and_then(Value::as_str) {
            let name = r
                .strip_prefix("#/$defs/")
                .unwrap_or_else(|| panic!("unexpected $ref {r}"));
            walk(root, &root["$defs"][name], path, out);
        }
        for branches in ["anyOf", "oneOf", "allOf"] {
            for b in node
                .get(branches)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                walk(root, b, path, out);
            }
        }
        let required: Vec<&str> = node
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (k, sub) in node
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            out.insert(p.clone(), required.contains(&k.as_str()));
            walk(root, sub, &p, out);
        }
        if let Some(items) = node.get("items") {
            walk(root, items, &format!("{path}[]"), out);
        }
    }
    let mut out = BTreeMap::new();
    walk(schema, schema, "", &mut out);
    out
}

#[test]
fn the_schema_keeps_every_key_of_format_1() {
    let v1 = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schema_v1_keys.txt"),
    )
    .expect("the format 1 key list is checked in");
    let now =
        key_paths(&serde_json::to_value(queuelab_client::result::json_schema()).expect("JSON"));
    let mut checked = 0;
    for line in v1
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (path, req) = line.split_once(' ').expect("`path required|optional`");
        let was_required = match req {
            "required" => true,
            "optional" => false,
            other => panic!("{line}: {other:?} is neither required nor optional"),
        };
        match now.get(path) {
            None => panic!("{path} is gone from the schema"),
            Some(&r) => assert_eq!(r, was_required, "{path} changed its requiredness"),
        }
        checked += 1;
    }
    // The list is the whole hand-written schema, not a few lines of it.
    assert_eq!(checked, 123);
    // And the walk sees nested keys behind references (a check of the walk itself).
    assert_eq!(now.get("latency_uncorrected_us.ci95_high"), Some(&true));
    assert_eq!(now.get("intervals[].p99_us"), Some(&true));
    assert_eq!(now.get("theory.mean_in_ci"), Some(&true));
}
