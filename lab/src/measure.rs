//! One measured run of the sweep: the only place where the lab meets qload's engine.
//!
//! [`measure`] builds a [`Config`] for an open-loop Poisson run (rate, duration, warm-up, seed),
//! calls [`queuelab_client::run`], and converts the result with [`measurement_from_json`]. The conversion
//! reads the result through its JSON form, whose keys are the published contract of `qload --json`
//! (DESIGN.md), so the lab depends on those names and not on the Rust layout of the result type.
//!
//! Batches: the measured duration is cut into [`BATCHES`] batches for the batch-means interval of
//! the mean. Law and Kelton advise 10 to 30 batches; fewer, longer batches keep the batch means
//! nearly independent at high load, where successive sojourn times are correlated over seconds.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context as _, bail};
use queuelab_common::model::Model;
use queuelab_common::samplers::ArrivalKind;
use serde_json::Value;

use crate::record::{Lag, Latency, PointMeasurement, PointRecord};
use queuelab_client::config::{Config, Mode, Target};
use queuelab_client::result::Interval;
use serde::Deserialize as _;

/// Number of batches of the batch-means confidence interval.
pub const BATCHES: u32 = 16;

/// Engine knobs passed through to every run of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// Worker threads (`None`: one per core the process may use).
    pub threads: Option<usize>,
    /// Pin worker threads to cores.
    pub pin: bool,
    /// Busy-poll margin before each intended send (`None`: qload's default).
    pub spin: Option<Duration>,
    /// Poll without sleeping while requests are in flight (`--busy-poll`).
    pub busy_poll: bool,
    /// Per-request timeout (`None`: qload's default).
    pub timeout: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: None,
            pin: true,
            spin: None,
            busy_poll: false,
            timeout: None,
        }
    }
}

/// One open-loop run to make.
#[derive(Debug, Clone)]
pub struct RunSpec<'a> {
    /// Target URL.
    pub url: &'a str,
    /// Arrival rate λ (1/s).
    pub rate: f64,
    /// Measured duration.
    pub duration: Duration,
    /// Warm-up before measuring.
    pub warmup: Duration,
    /// Seed of the arrival schedule.
    pub seed: u64,
    /// The queue behind the URL (recorded in qload's own result as its theory), if any.
    pub model: Option<&'a Model>,
    /// Engine knobs.
    pub opts: &'a RunOptions,
    /// Ends the run early when set (SIGINT): what was in flight drains for at most one timeout.
    pub stop: &'a Arc<AtomicBool>,
}

/// The qload configuration for `spec`.
pub fn config_for(spec: &RunSpec<'_>) -> anyhow::Result<Config> {
    let target =
        Target::new(spec.url, "GET", &[], None).with_context(|| format!("target {}", spec.url))?;
    let mut c = Config::new(
        target,
        Mode::Open {
            rate: spec.rate,
            arrival: ArrivalKind::Poisson,
        },
    );
    c.duration = Some(spec.duration);
    c.warmup = spec.warmup;
    c.seed = spec.seed;
    c.threads = spec.opts.threads;
    c.pin = spec.opts.pin;
    if let Some(s) = spec.opts.spin {
        c.spin = s;
    }
    c.busy_poll = spec.opts.busy_poll;
    if let Some(t) = spec.opts.timeout {
        c.timeout = t;
    }
    c.interval = (spec.duration / BATCHES).max(Duration::from_millis(10));
    c.theory = spec.model.copied();
    c.live = false;
    Ok(c)
}

/// Runs `spec` and returns the lab's measurement with qload's whole result as JSON.
pub fn measure(spec: &RunSpec<'_>) -> anyhow::Result<(PointMeasurement, Value)> {
    let config = config_for(spec)?;
    let result =
        queuelab_client::run_with_stop(config, Arc::clone(spec.stop)).with_context(|| {
            format!(
                "qload run against {} at {:.1} requests/s",
                spec.url, spec.rate
            )
        })?;
    let json = serde_json::to_value(&result).context("encoding qload's result")?;
    let m = measurement_from_json(&json)?;
    Ok((m, json))
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn num(v: &Value, path: &[&str]) -> anyhow::Result<f64> {
    get(v, path)
        .and_then(Value::as_f64)
        .with_context(|| format!("qload result: `{}` missing or not a number", path.join(".")))
}

fn opt_num(v: &Value, path: &[&str]) -> Option<f64> {
    get(v, path).and_then(Value::as_f64)
}

fn count(v: &Value, path: &[&str]) -> anyhow::Result<u64> {
    get(v, path)
        .and_then(Value::as_u64)
        .with_context(|| format!("qload result: `{}` missing or not a count", path.join(".")))
}

fn counts(v: &Value, path: &[&str]) -> BTreeMap<String, u64> {
    get(v, path)
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, n)| n.as_u64().map(|n| (k.clone(), n)))
                .collect()
        })
        .unwrap_or_default()
}

/// The batch-means interval of the mean, recomputed from the result's time series (`intervals`)
/// with this qload's rule ([`queuelab_client::result::batch_ci`]), so that results written before a change
/// of that rule are redrawn with it. `None` when the result has no usable series.
fn interval_from_series(v: &Value) -> Option<(f64, f64)> {
    let series = Vec::<Interval>::deserialize(get(v, &["intervals"])?).ok()?;
    queuelab_client::result::batch_ci(&series, false).map(|c| (c.low, c.high))
}

/// Recomputes the intervals of a recorded point (and of its overhead run) from the raw qload
/// results it keeps; what `qlab report` does before drawing.
pub fn refresh_intervals(rec: &mut PointRecord) {
    if let Some((lo, hi)) = interval_from_series(&rec.raw) {
        rec.measured.latency_us.ci95_low = Some(lo);
        rec.measured.latency_us.ci95_high = Some(hi);
    }
    if let (Some(o), Some(raw)) = (rec.overhead.as_mut(), rec.overhead_raw.as_ref()) {
        if let Some((lo, hi)) = interval_from_series(raw) {
            o.latency_us.ci95_low = Some(lo);
            o.latency_us.ci95_high = Some(hi);
        }
    }
}

/// The adapter: qload's JSON result (the `--json` contract) as a [`PointMeasurement`].
///
/// The interval of the mean is recomputed from `intervals` when the result has them (see
/// [`queuelab_client::result::batch_ci`]), else taken from `latency_us.ci95_low`/`ci95_high`.
///
/// Blocked requests are the `503` entry of `requests.status` when statuses are reported by code,
/// else the `5xx` entry (qserve answers no other 5xx status to qload's requests).
pub fn measurement_from_json(v: &Value) -> anyhow::Result<PointMeasurement> {
    if !v.is_object() {
        bail!("qload result is not a JSON object");
    }
    let status = counts(v, &["requests", "status"]);
    let blocked = status
        .get("503")
        .or_else(|| status.get("5xx"))
        .copied()
        .unwrap_or(0);
    let lat = |k: &str| num(v, &["latency_us", k]);
    let ci = interval_from_series(v).or_else(|| {
        opt_num(v, &["latency_us", "ci95_low"]).zip(opt_num(v, &["latency_us", "ci95_high"]))
    });
    Ok(PointMeasurement {
        target_rate: num(v, &["target_rate"])?,
        achieved_rate: num(v, &["achieved_rate"])?,
        duration_s: num(v, &["duration_s"])?,
        sent: count(v, &["requests", "sent"])?,
        completed: count(v, &["requests", "completed"])?,
        errors: count(v, &["requests", "errors"])?,
        errors_by_kind: counts(v, &["requests", "errors_by_kind"]),
        status,
        blocked,
        latency_us: Latency {
            mean: lat("mean")?,
            stdev: lat("stdev")?,
            p50: lat("p50")?,
            p90: lat("p90")?,
            p99: lat("p99")?,
            p999: lat("p999")?,
            max: lat("max")?,
            ci95_low: ci.map(|c| c.0),
            ci95_high: ci.map(|c| c.1),
        },
        send_lag_us: Lag {
            p50: num(v, &["send_lag_us", "p50"])?,
            p99: num(v, &["send_lag_us", "p99"])?,
            max: num(v, &["send_lag_us", "max"])?,
        },
        gap_cv: opt_num(v, &["arrivals", "gap_cv"]),
        arrivals_ks_p: opt_num(v, &["arrivals", "ks_p"]),
        histogram: get(v, &["histogram"])
            .and_then(Value::as_str)
            .context("qload result: `histogram` missing or not a string")?
            .to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        serde_json::json!({
            "target_rate": 500.0,
            "achieved_rate": 498.5,
            "duration_s": 2.0,
            "requests": {
                "sent": 997, "completed": 990, "errors": 7,
                "errors_by_kind": {"timeout": 7, "connect": 0},
                "status": {"200": 900, "503": 90}
            },
            "latency_us": {"mean": 2000.5, "stdev": 1900.0, "p50": 1400.0, "p90": 4600.0,
                           "p99": 9200.0, "p999": 13800.0, "max": 20000.0,
                           "ci95_low": 1900.0, "ci95_high": 2101.0},
            "latency_uncorrected_us": {"mean": 1990.0},
            "send_lag_us": {"p50": 3.0, "p99": 12.0, "max": 80.0},
            "arrivals": {"gap_mean_us": 2006.0, "gap_cv": 1.01, "ks_d": 0.02, "ks_p": 0.4},
            "theory": null,
            "histogram": "HISTFAAAA"
        })
    }

    #[test]
    fn adapter_reads_the_json_contract() {
        let m = measurement_from_json(&sample()).expect("valid result");
        assert_eq!(
            (m.sent, m.completed, m.errors, m.blocked),
            (997, 990, 7, 90)
        );
        assert_eq!(m.latency_us.mean, 2000.5);
        assert_eq!(m.latency_us.ci95_low, Some(1900.0));
        assert_eq!(m.send_lag_us.p99, 12.0);
        assert_eq!(m.gap_cv, Some(1.01));
        assert_eq!(m.errors_by_kind.get("timeout"), Some(&7));
        assert_eq!(m.histogram, "HISTFAAAA");
    }

    #[test]
    fn adapter_recomputes_the_interval_from_the_time_series() {
        let mut v = sample();
        let iv = |t: f64, d: f64, n: u64, mean: f64| {
            serde_json::json!({"t_s": t, "duration_s": d, "sent": n, "completed": n,
                "errors": 0, "mean_us": mean, "mean_uncorrected_us": mean, "p50_us": null,
                "p99_us": null, "send_lag_p99_us": null, "send_lag_max_us": 0.0})
        };
        v["intervals"] = serde_json::json!([
            iv(0.0, 1.0, 400, 1990.0),
            iv(1.0, 1.0, 400, 2010.0),
            iv(2.0, 0.002, 2, 9000.0)
        ]);
        let m = measurement_from_json(&v).expect("valid result");
        let series: Vec<Interval> =
            serde_json::from_value(v["intervals"].clone()).expect("intervals");
        let ci = queuelab_client::result::batch_ci(&series, false).expect("two batches");
        assert_eq!(m.latency_us.ci95_low, Some(ci.low));
        assert_eq!(m.latency_us.ci95_high, Some(ci.high));
        assert_ne!(m.latency_us.ci95_low, Some(1900.0));

        // What `qlab report` does to a point recorded with the stored interval.
        let mut rec = PointRecord {
            index: 0,
            rho: 0.5,
            lambda: 500.0,
            warmup_s: 1.0,
            seed: 1,
            measured: measurement_from_json(&sample()).expect("valid result"),
            overhead: Some(measurement_from_json(&sample()).expect("valid result")),
            raw: v.clone(),
            overhead_raw: Some(v),
        };
        assert_eq!(rec.measured.latency_us.ci95_low, Some(1900.0));
        refresh_intervals(&mut rec);
        assert_eq!(rec.measured.latency_us.ci95_high, Some(ci.high));
        let o = rec.overhead.expect("overhead");
        assert_eq!(o.latency_us.ci95_low, Some(ci.low));
    }

    #[test]
    fn adapter_takes_5xx_when_statuses_are_classes_and_null_intervals() {
        let mut v = sample();
        v["requests"]["status"] = serde_json::json!({"2xx": 900, "5xx": 90});
        v["latency_us"]["ci95_low"] = Value::Null;
        let m = measurement_from_json(&v).expect("valid result");
        assert_eq!(m.blocked, 90);
        assert_eq!(m.latency_us.ci95_low, None);
    }

    #[test]
    fn adapter_names_the_missing_key() {
        let mut v = sample();
        v["latency_us"]
            .as_object_mut()
            .expect("object")
            .remove("p99");
        let e = measurement_from_json(&v).expect_err("p99 is required");
        assert!(format!("{e:#}").contains("latency_us.p99"), "{e:#}");
        assert!(measurement_from_json(&Value::Null).is_err());
    }
}
