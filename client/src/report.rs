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
    let per_s = |n: u64| {
        if iv.duration_s > 0.0 {
            n as f64 / iv.duration_s
        } else {
            0.0
        }
    };
    format!(
        "[{:>6.1}s] sent {:>9.0}/s  done {:>9.0}/s  errors {:>6}  p50 {:>9}  p99 {:>9}  lag p99 {:>9}",
        iv.t_s + iv.duration_s,
        per_s(iv.sent),
        per_s(iv.completed),
        iv.errors,
        fmt_opt_us(iv.p50_us),
        fmt_opt_us(iv.p99_us),
        fmt_opt_us(iv.send_lag_p99_us),
    )
}

fn latency_line(out: &mut String, label: &str, l: &Latency) {
    let _ = write!(out, "  {label:<11} mean {}", fmt_us(l.mean));
    if let (Some(lo), Some(hi)) = (l.ci95_low, l.ci95_high) {
        let _ = write!(out, " (95% CI {} .. {})", fmt_us(lo), fmt_us(hi));
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

/// The readable summary printed by default.
pub fn text(r: &RunResult) -> String {
    let mut o = String::new();
    let c = &r.config;
    let what = match r.mode.as_str() {
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
    }
    if q.retries > 0 {
        let _ = writeln!(
            o,
            "  retries     {} (sent again on a fresh connection: the server had closed the kept-alive one)",
            q.retries
        );
    }
    latency_line(&mut o, "latency", &r.latency_us);
    latency_line(&mut o, "uncorrected", &r.latency_uncorrected_us);
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
pub const CSV_COLUMNS: [&str; 16] = [
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
            "1.000,1.000000,10,9,1,10.000,9.000,100.000,95.000,,90.000,3.000,4.000,,,"
        );
        // With Server-Timing, the three path columns are filled.
        r.intervals[1].path_mean_us = Some(20.5);
        r.intervals[1].path_p50_us = Some(19.0);
        r.intervals[1].server_mean_us = Some(79.5);
        let mut out = Vec::new();
        write_csv(&r, &mut out).expect("writing to memory");
        let timed = String::from_utf8(out).expect("utf-8");
        assert!(
            timed
                .lines()
                .nth(2)
                .is_some_and(|l| l.ends_with(",4.000,20.500,19.000,79.500")),
            "{timed}"
        );
        // Rows end in a bare newline, as before the csv crate wrote them.
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert!(
            text.ends_with(",4.000,,,\n") && !text.contains('\r'),
            "{text:?}"
        );
    }
}
