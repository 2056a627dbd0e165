//! Rendering a [`RunResult`]: the readable summary, the CSV time series (written with the `csv`
//! crate, which quotes a field only where it must) and the live line.
//!
//! Times are printed with a unit that keeps three or four significant digits (`850us`, `12.3ms`,
//! `1.25s`); the JSON and the CSV keep plain microseconds.
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::result::{Interval, Latency, RunResult};

/// A duration given in microseconds, with a readable unit.
pub fn fmt_us(us: f64) -> String {
    if !us.is_finite() {
        return "-".to_owned();
    }
    let a = us.abs();
    if a < 1.0 {
        format!("{:.0}ns", us * 1e3)
    } else if a < 1e3 {
        format!("{us:.1}us")
    } else if a < 1e6 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.3}s", us / 1e6)
    }
}

fn fmt_opt_us(us: Option<f64>) -> String {
    us.map_or_else(|| "-".to_owned(), fmt_us)
}

fn pct(x: f64) -> String {
    format!("{:+.1}%", 100.0 * x)
}

/// The line printed on stderr for each interval while running (when stderr is a terminal).
pub fn live_line(iv: &Interval) -> String {
    live(iv, false)
}

/// The live line of a run that follows a rate profile: the interval's target rate after its
/// sent rate (`sent 412/s of 400/s`).
pub fn live_line_with_target(iv: &Interval) -> String {
    live(iv, true)
}

fn live(iv: &Interval, with_target: bool) -> String {
    let per_s = |n: u64| {
        if iv.duration_s > 0.0 {
            n as f64 / iv.duration_s
        } else {
            0.0
        }
    };
    let target = match iv.target_rate {
        Some(t) if with_target => format!(" of {t:>9.0}/s"),
        _ => String::new(),
    };
    format!(
        "[{:>6.1}s] sent {:>9.0}/s{target}  done {:>9.0}/s  errors {:>6}  p50 {:>9}  p99 {:>9}  lag p99 {:>9}",
        iv.t_s + iv.duration_s,
        per_s(iv.sent),
        per_s(iv.completed),
        iv.errors,
        fmt_opt_us(iv.p50_us),
        fmt_opt_us(iv.p99_us),
        fmt_opt_us(iv.send_lag_p99_us),
    )
}

fn latency_line(out: &mut String, label: &str, l: &Latency, r: &RunResult) {
    let _ = write!(out, "  {label:<11} mean {}", fmt_us(l.mean));
    if let (Some(lo), Some(hi)) = (l.ci95_low, l.ci95_high) {
        let _ = write!(out, " (95% CI {} .. {})", fmt_us(lo), fmt_us(hi));
    } else if l.count > 0 {
        let _ = write!(out, " ({})", ci_left_out(r));
    }
    let _ = writeln!(out, "  stdev {}  min {}", fmt_us(l.stdev), fmt_us(l.min));
    let _ = writeln!(
        out,
        "  {:<11} p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        "",
        fmt_us(l.p50),
        fmt_us(l.p90),
        fmt_us(l.p99),
        fmt_us(l.p999),
        fmt_us(l.max)
    );
}

/// Why a result has no interval of the mean: too few non-empty batches (those of its
/// `batches`, else, in a merge of older results, its non-empty intervals).
pub fn ci_left_out(r: &RunResult) -> String {
    let n = match &r.batches {
        Some(b) => b.nonempty(),
        None => crate::result::batch_count(&r.intervals),
    };
    format!(
        "CI left out: {n} batch{}, need {}",
        if n == 1 { "" } else { "es" },
        crate::batches::MIN_BATCHES
    )
}

/// The readable summary printed by default.
pub fn text(r: &RunResult) -> String {
    let mut o = String::new();
    let c = &r.config;
    let what = match r.mode.as_str() {
        "open" if c.profile.is_some() => format!(
            "open loop, {} arrivals on the profile {} (mean {:.0} req/s)",
            c.arrival.as_deref().unwrap_or("poisson"),
            c.profile.as_deref().unwrap_or(""),
            r.target_rate.unwrap_or(0.0)
        ),
        "open" => format!(
            "open loop, {} arrivals at {:.0} req/s",
            c.arrival.as_deref().unwrap_or("poisson"),
            r.target_rate.unwrap_or(0.0)
        ),
        "closed" => format!(
            "closed loop, {} users, think {}",
            c.users.unwrap_or(0),
            fmt_us(c.think_s.unwrap_or(0.0) * 1e6)
        ),
        _ => format!("max throughput, {} connections", c.users.unwrap_or(0)),
    };
    let _ = writeln!(o, "qload {} {}", c.method, r.url);
    let _ = writeln!(
        o,
        "  {what}; {:.2}s measured, {} thread{}{}",
        r.duration_s,
        c.threads,
        if c.threads == 1 { "" } else { "s" },
        if r.parts > 1 {
            format!(", {} results merged", r.parts)
        } else {
            String::new()
        }
    );
    if let (Some(start), Some(end)) = (&r.start_utc, &r.end_utc) {
        let _ = writeln!(o, "  window      {start} .. {end} (UTC)");
    }
    let q = &r.requests;
    let _ = writeln!(
        o,
        "  requests    issued {}  sent {}  completed {}  errors {}   achieved {:.1} req/s, throughput {:.1} req/s",
        q.issued, q.sent, q.completed, q.errors, r.achieved_rate, r.throughput
    );
    let s = &q.status;
    let _ = writeln!(
        o,
        "  status      2xx {}  3xx {}  4xx {}  5xx {} (503: {})  other {}",
        s.s2xx, s.s3xx, s.s4xx, s.s5xx, s.s503, s.other
    );
    if q.errors > 0 {
        let kinds: Vec<String> = q
            .errors_by_kind
            .pairs()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(o, "  errors      {}", kinds.join("  "));
        if let Some(line) = tls_errors_line(q) {
            let _ = writeln!(o, "              {line}");
        }
    }
    if q.retries > 0 {
        let _ = writeln!(
            o,
            "  retries     {} (sent again on a fresh connection: the server had closed the kept-alive one)",
            q.retries
        );
    }
    shape_block(&mut o, r);
    latency_line(&mut o, "latency", &r.latency_us, r);
    latency_line(&mut o, "uncorrected", &r.latency_uncorrected_us, r);
    let l = &r.send_lag_us;
    let _ = writeln!(
        o,
        "  send lag    mean {}  p50 {}  p99 {}  max {}",
        fmt_us(l.mean),
        fmt_us(l.p50),
        fmt_us(l.p99),
        fmt_us(l.max)
    );
    let a = &r.arrivals;
    let _ = writeln!(
        o,
        "  arrivals    gap mean {}  cv {}  KS D {}  p {}  ({} gaps)",
        fmt_opt_us(a.gap_mean_us),
        a.gap_cv.map_or("-".to_owned(), |x| format!("{x:.3}")),
        a.ks_d.map_or("-".to_owned(), |x| format!("{x:.4}")),
        a.ks_p.map_or("-".to_owned(), |x| format!("{x:.3}")),
        a.samples
    );
    let _ = writeln!(
        o,
        "  connections opened {}  peak {}  cap {}",
        r.connections.opened, r.connections.peak, r.connections.cap
    );
    for (label, d) in [("connect", &r.phases.connect_us), ("tls", &r.phases.tls_us)] {
        if let Some(d) = d {
            let _ = writeln!(
                o,
                "    {label:<11} mean {}  p50 {}  p99 {}  max {}  ({} connections)",
                fmt_us(d.mean),
                fmt_us(d.p50),
                fmt_us(d.p99),
                fmt_us(d.max),
                d.count
            );
        }
    }
    if let Some(t) = &r.theory {
        let _ = writeln!(
            o,
            "  theory      {} at lambda {:.1}/s, mu {:.1}/s: rho {:.3}",
            t.model, t.lambda, t.mu, t.rho
        );
        let ci = match t.mean_in_ci {
            Some(true) => ", inside the 95% CI",
            Some(false) => ", outside the 95% CI",
            None => "",
        };
        let _ = writeln!(
            o,
            "              mean {} (measured {}{ci})",
            fmt_us(t.mean_us),
            pct(t.rel_err_mean)
        );
        let _ = writeln!(
            o,
            "              p50 {} (measured {})  p99 {} (measured {})",
            fmt_opt_us(t.p50_us),
            t.rel_err_p50.map_or("-".to_owned(), pct),
            fmt_opt_us(t.p99_us),
            t.rel_err_p99.map_or("-".to_owned(), pct),
        );
        if t.blocking > 0.0 || t.blocking_measured > 0.0 {
            let _ = writeln!(
                o,
                "              blocking {:.4} (measured {:.4})",
                t.blocking, t.blocking_measured
            );
        }
    }
    server_timing_block(&mut o, r);
    for w in &r.warnings {
        let _ = writeln!(o, "  warning: {w}");
    }
    o
}

/// What the `tls` errors were, e.g. `tls: 12 (certificate 12; first: invalid peer certificate:
/// UnknownIssuer)`; `None` without any.
fn tls_errors_line(q: &crate::result::Requests) -> Option<String> {
    let n = q.errors_by_kind.tls;
    if n == 0 {
        return None;
    }
    let kinds: Vec<String> = q
        .tls_errors
        .pairs()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let mut line = format!("tls: {n} ({}", kinds.join(", "));
    if let Some(first) = &q.tls_first_error {
        let _ = write!(line, "; first: {first}");
    }
    line.push(')');
    Some(line)
}

/// Most entries of a profile the text summary lists one by one.
const SHAPE_LINES: usize = 12;

/// The profile entry by entry: its target rate against the rate sent, over the intervals whose
/// middle falls in the entry (both over the same intervals, so they compare even where an
/// interval straddles two entries). Nothing without a profile.
fn shape_block(o: &mut String, r: &RunResult) {
    let Some(profile) = r
        .config
        .profile
        .as_deref()
        .and_then(|p| queuelab_common::profile::Profile::parse(p).ok())
    else {
        return;
    };
    let n = profile.segments().len();
    for (i, seg) in profile.segments().enumerate().take(SHAPE_LINES) {
        let start = profile.segment_start(i).unwrap_or_default().as_secs_f64();
        let end = start + seg.duration.as_secs_f64();
        let (mut target, mut sent, mut span) = (0.0, 0u64, 0.0);
        for iv in &r.intervals {
            let mid = iv.t_s + 0.5 * iv.duration_s;
            if (start..end).contains(&mid) {
                target += iv.target_rate.unwrap_or(0.0) * iv.duration_s;
                sent += iv.sent;
                span += iv.duration_s;
            }
        }
        let entry = if seg.is_ramp() {
            format!("{:.0}..{:.0}/s", seg.from, seg.to)
        } else {
            format!("{:.0}/s", seg.from)
        };
        let rates = if span > 0.0 {
            format!(
                "target {:.1} req/s  sent {:.1} req/s",
                target / span,
                sent as f64 / span
            )
        } else {
            "not reached".to_owned()
        };
        let _ = writeln!(
            o,
            "  {:<11} {:>8.2}s +{:<8} {entry:<18} {rates}",
            if i == 0 { "profile" } else { "" },
            start,
            queuelab_common::units::format_duration(seg.duration),
        );
    }
    if n > SHAPE_LINES {
        let _ = writeln!(o, "  {:<11} … {} more entries", "", n - SHAPE_LINES);
    }
}

/// The `Server-Timing` block: each metric, the path, and with a theory the net mean (latency
/// minus the mean path) against the theory's mean beside the raw one. Nothing when no answer
/// carried a duration.
fn server_timing_block(o: &mut String, r: &RunResult) {
    let h = &r.server_timing_headers;
    let Some(path) = &r.path_us else {
        if h.malformed > 0 {
            let _ = writeln!(
                o,
                "  server-timing {} malformed headers, no duration read",
                h.malformed
            );
        }
        return;
    };
    let _ = writeln!(
        o,
        "  server-timing carried by {} of {} answers  (malformed {}, dropped {}, durations above the latency {})",
        h.carried, r.requests.completed, h.malformed, h.dropped_names, h.negative_path
    );
    for (name, d) in &r.server_timing {
        let _ = writeln!(
            o,
            "    {name:<11} mean {}  p50 {}  p99 {}",
            fmt_us(d.mean),
            fmt_us(d.p50),
            fmt_us(d.p99)
        );
    }
    let _ = writeln!(
        o,
        "    {:<11} mean {}  p50 {}  p99 {}  max {}",
        "path",
        fmt_us(path.mean),
        fmt_us(path.p50),
        fmt_us(path.p99),
        fmt_us(path.max)
    );
    if let Some(t) = &r.theory {
        // Latency minus the path: what the server's queue alone took, as theory models it.
        let net = r.latency_us.mean - path.mean;
        let rel = |x: f64| {
            if t.mean_us > 0.0 {
                pct((x - t.mean_us) / t.mean_us)
            } else {
                "-".to_owned()
            }
        };
        let _ = writeln!(
            o,
            "    {:<11} mean {} ({} against theory {}; raw {} {})",
            "net",
            fmt_us(net),
            rel(net),
            fmt_us(t.mean_us),
            fmt_us(r.latency_us.mean),
            rel(r.latency_us.mean)
        );
    }
}

/// The columns of `--csv`, in order.
pub const CSV_COLUMNS: [&str; 17] = [
    "t_s",
    "duration_s",
    "sent",
    "completed",
    "errors",
    "sent_per_s",
    "completed_per_s",
    "mean_us",
    "p50_us",
    "p99_us",
    "mean_uncorrected_us",
    "send_lag_p99_us",
    "send_lag_max_us",
    "path_mean_us",
    "path_p50_us",
    "server_mean_us",
    "target_rate",
];

/// Writes the time series as CSV (a header, then a row per interval; empty cells for unknown).
pub fn write_csv(r: &RunResult, w: impl Write) -> io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(CSV_COLUMNS)?;
    let opt = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.3}"));
    for iv in &r.intervals {
        let per_s = |n: u64| {
            if iv.duration_s > 0.0 {
                n as f64 / iv.duration_s
            } else {
                0.0
            }
        };
        out.write_record([
            format!("{:.3}", iv.t_s),
            format!("{:.6}", iv.duration_s),
            iv.sent.to_string(),
            iv.completed.to_string(),
            iv.errors.to_string(),
            format!("{:.3}", per_s(iv.sent)),
            format!("{:.3}", per_s(iv.completed)),
            format!("{:.3}", iv.mean_us),
            opt(iv.p50_us),
            opt(iv.p99_us),
            format!("{:.3}", iv.mean_uncorrected_us),
            opt(iv.send_lag_p99_us),
            format!("{:.3}", iv.send_lag_max_us),
            opt(iv.path_mean_us),
            opt(iv.path_p50_us),
            opt(iv.server_mean_us),
            opt(iv.target_rate),
        ])?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(fmt_us(0.25), "250ns");
        assert_eq!(fmt_us(12.34), "12.3us");
        assert_eq!(fmt_us(1234.0), "1.23ms");
        assert_eq!(fmt_us(2_500_000.0), "2.500s");
        assert_eq!(fmt_us(f64::NAN), "-");
    }

    #[test]
    fn the_text_shows_server_timing_and_the_net_mean() {
        let mut r = crate::merge::tests::sample_result();
        r.requests.completed = 10;
        assert!(
            !text(&r).contains("server-timing"),
            "no block without the header"
        );
        r.server_timing_headers.malformed = 2;
        assert!(text(&r).contains("server-timing 2 malformed headers"));
        let d = |mean: f64| crate::result::DurationSummary {
            count: 10,
            mean,
            p50: mean,
            p90: mean,
            p99: mean,
            max: mean,
            histogram: String::new(),
        };
        r.server_timing.insert("wait".into(), d(400.0));
        r.server_timing.insert("service".into(), d(1500.0));
        r.path_us = Some(d(50.0));
        r.server_timing_headers.carried = 10;
        r.latency_us.mean = 2050.0;
        let t = text(&r);
        assert!(t.contains("carried by 10 of 10 answers"), "{t}");
        assert!(t.contains("    wait        mean 400.0us"), "{t}");
        assert!(t.contains("    path        mean 50.0us"), "{t}");
        assert!(!t.contains("net"), "no theory, no net mean: {t}");
        r.theory = Some(crate::result::TheoryResult {
            model: "M/M/1".into(),
            lambda: 500.0,
            mu: 1000.0,
            servers: "1".into(),
            capacity: None,
            service: "exp".into(),
            rho: 0.5,
            mean_us: 2000.0,
            p50_us: None,
            p90_us: None,
            p99_us: None,
            blocking: 0.0,
            blocking_measured: 0.0,
            rel_err_mean: 0.025,
            rel_err_p50: None,
            rel_err_p99: None,
            mean_in_ci: None,
        });
        let t = text(&r);
        // Net 2050 − 50 = 2000: on the theory; the raw mean 2.5% above it.
        assert!(
            t.contains("net         mean 2.00ms (+0.0% against theory 2.00ms; raw 2.05ms +2.5%)"),
            "{t}"
        );
    }

    #[test]
    fn the_text_shows_the_window_and_why_an_interval_is_missing() {
        let mut r = crate::merge::tests::sample_result();
        r.latency_us.count = 5;
        r.latency_us.mean = 107.0;
        r.batches = Some(crate::batches::Batches {
            length_s: 0.001,
            sum_us: vec![100.0, 0.0, 200.0, 110.0, 120.0],
            sum_uncorrected_us: vec![50.0; 5],
            count: vec![1, 0, 2, 1, 1],
        });
        let t = text(&r);
        assert!(
            t.contains("latency     mean 107.0us (CI left out: 4 batches, need 10)"),
            "{t}"
        );
        assert!(!t.contains("window"), "no window without UTC times: {t}");
        r.start_utc = Some("2025-06-15T14:40:00.000001Z".into());
        r.end_utc = Some("2025-06-15T14:40:02.000001Z".into());
        r.latency_us.ci95_low = Some(100.0);
        r.latency_us.ci95_high = Some(114.0);
        let t = text(&r);
        assert!(
            t.contains(
                "window      2025-06-15T14:40:00.000001Z .. 2025-06-15T14:40:02.000001Z (UTC)"
            ),
            "{t}"
        );
        assert!(
            t.contains("mean 107.0us (95% CI 100.0us .. 114.0us)"),
            "{t}"
        );
        // Without batches (a merge of older results): the non-empty intervals count.
        r.batches = None;
        r.latency_uncorrected_us.count = 5;
        r.intervals = vec![Interval {
            duration_s: 1.0,
            completed: 5,
            ..Interval::default()
        }];
        assert!(text(&r).contains("(CI left out: 1 batch, need 10)"));
    }

    #[test]
    fn the_text_says_which_tls_errors_and_the_phases() {
        let mut r = crate::merge::tests::sample_result();
        r.requests.issued = 14;
        r.requests.errors = 14;
        r.requests.errors_by_kind.tls = 12;
        r.requests.errors_by_kind.timeout = 2;
        r.requests.tls_errors.certificate = 10;
        r.requests.tls_errors.handshake_timeout = 2;
        r.requests.tls_first_error = Some("invalid peer certificate: UnknownIssuer".to_owned());
        let t = text(&r);
        assert!(t.contains("  errors      timeout 2  tls 12\n"), "{t}");
        assert!(
            t.contains(
                "tls: 12 (certificate 10, handshake_timeout 2; first: invalid peer certificate: UnknownIssuer)"
            ),
            "{t}"
        );
        assert!(!t.contains("    tls "), "no phase without a handshake: {t}");
        let d = |mean: f64, count: u64| crate::result::DurationSummary {
            count,
            mean,
            p50: mean,
            p90: mean,
            p99: mean,
            max: mean,
            histogram: String::new(),
        };
        r.phases.connect_us = Some(d(80.0, 7));
        r.phases.tls_us = Some(d(1500.0, 5));
        let t = text(&r);
        assert!(
            t.contains(
                "    connect     mean 80.0us  p50 80.0us  p99 80.0us  max 80.0us  (7 connections)"
            ),
            "{t}"
        );
        assert!(t.contains("    tls         mean 1.50ms"), "{t}");
    }

    #[test]
    fn a_profile_shows_its_target_rates() {
        let iv = |t_s: f64, sent: u64, target: f64| Interval {
            t_s,
            duration_s: 1.0,
            sent,
            target_rate: Some(target),
            ..Interval::default()
        };
        // The live line names the target only with a profile.
        let line = live_line_with_target(&iv(0.0, 98, 100.0));
        assert!(line.contains("sent        98/s of       100/s"), "{line}");
        assert!(!live_line(&iv(0.0, 98, 100.0)).contains(" of "));
        let mut r = crate::merge::tests::sample_result();
        r.config.profile = Some("100:2s,200..400:2s".into());
        r.target_rate = Some(200.0);
        r.intervals = vec![
            iv(0.0, 98, 100.0),
            iv(1.0, 104, 100.0),
            iv(2.0, 251, 250.0),
            iv(3.0, 349, 350.0),
        ];
        let t = text(&r);
        assert!(
            t.contains("poisson arrivals on the profile 100:2s,200..400:2s (mean 200 req/s)"),
            "{t}"
        );
        assert!(
            t.contains("profile         0.00s +2s       100/s              target 100.0 req/s  sent 101.0 req/s"),
            "{t}"
        );
        assert!(
            t.contains("2.00s +2s       200..400/s         target 300.0 req/s  sent 300.0 req/s"),
            "{t}"
        );
        // An entry the run did not reach.
        r.intervals.truncate(2);
        assert!(text(&r).contains("200..400/s         not reached"));
        r.config.profile = None;
        assert!(!text(&r).contains("profile"));
    }

    #[test]
    fn csv_has_a_row_per_interval() {
        let iv = Interval {
            t_s: 1.0,
            duration_s: 1.0,
            sent: 10,
            completed: 9,
            errors: 1,
            mean_us: 100.0,
            mean_uncorrected_us: 90.0,
            p50_us: Some(95.0),
            p99_us: None,
            p90_us: None,
            p999_us: None,
            send_lag_p99_us: Some(3.0),
            send_lag_max_us: 4.0,
            path_mean_us: None,
            path_p50_us: None,
            server_mean_us: None,
            target_rate: None,
        };
        let mut r = crate::merge::tests::sample_result();
        r.intervals = vec![iv, iv];
        let mut out = Vec::new();
        write_csv(&r, &mut out).expect("writing to memory");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].split(',').count(), CSV_COLUMNS.len());
        assert_eq!(
            lines[1],
            "1.000,1.000000,10,9,1,10.000,9.000,100.000,95.000,,90.000,3.000,4.000,,,,"
        );
        // With Server-Timing, the three path columns are filled.
        r.intervals[1].path_mean_us = Some(20.5);
        r.intervals[1].path_p50_us = Some(19.0);
        r.intervals[1].server_mean_us = Some(79.5);
        r.intervals[1].target_rate = Some(12.5);
        let mut out = Vec::new();
        write_csv(&r, &mut out).expect("writing to memory");
        let timed = String::from_utf8(out).expect("utf-8");
        assert!(
            timed
                .lines()
                .nth(2)
                .is_some_and(|l| l.ends_with(",4.000,20.500,19.000,79.500,12.500")),
            "{timed}"
        );
        // Rows end in a bare newline, as before the csv crate wrote them.
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert!(
            text.ends_with(",4.000,,,,\n") && !text.contains('\r'),
            "{text:?}"
        );
    }
}
