//! The lab's plots, built from a sweep's analysis with the chart in [`crate::svg`].
//!
//! - `mean_vs_rho.svg`: mean response time against ρ: the theory curve (smooth, computed on a fine
//!   grid of ρ), the measured means (raw) and the means net of the overhead, each with its 95%
//!   interval. Raw and net markers are shifted sideways by a hair so their bars do not overlap.
//! - `error_vs_rho.svg`: the relative error of the mean against ρ (raw and net, with intervals),
//!   around the zero line: the fidelity of the whole path at a glance.
//! - `cdf.svg`: the response-time CDF at up to three loads (lowest, middle and highest of the sweep)
//!   over the theoretical CDF, up to the largest 99th percentile.
//! - `blocking_vs_rho.svg` (capacity K only): the fraction of 503 answers against the blocking
//!   probability of M/M/c/K.
//! - `classes_vs_rho.svg` (priority classes only): the server's mean sojourn per class against ρ
//!   (from `/metrics`), over the reference of each class: a line through the closed form's
//!   means, or the simulated means with their 95% intervals.
//!
//! Where a point's reference is a simulation, the mean plot draws it as its own series
//! (`series-simulation`: the simulated means with their intervals) beside the theory curve (which
//! is then drawn only where the closed form exists), and the CDF plot labels the dashed curve
//! "simulation".
//!
//! Times are shown in ms when they exceed 2 ms, else in µs. Series groups have stable ids
//! (`series-theory`, `series-measured-raw`, `series-measured-net`, `series-cdf-measured-0`,
//! `series-cdf-theory-0`, …, `series-blocking-theory`, `series-blocking-measured`).
use queuelab_common::model::{Load, Model, Servers};
use queuelab_common::theory;

use crate::analysis::{self, PointAnalysis};
use crate::record::{ClassPoint, PointRecord, ReferenceKind};
use crate::svg::{Axis, Chart, Marker, PALETTE, Point, Series, Style};

/// File name of the mean plot.
pub const MEAN_SVG: &str = "mean_vs_rho.svg";
/// File name of the relative-error plot.
pub const ERROR_SVG: &str = "error_vs_rho.svg";
/// File name of the CDF plot.
pub const CDF_SVG: &str = "cdf.svg";
/// File name of the blocking plot.
pub const BLOCKING_SVG: &str = "blocking_vs_rho.svg";
/// File name of the per-class plot.
pub const CLASSES_SVG: &str = "classes_vs_rho.svg";

/// Whether a point's reference mean is simulated.
fn simulated_mean(p: &PointAnalysis) -> bool {
    p.reference
        .as_ref()
        .is_some_and(|r| r.kind == ReferenceKind::Simulation)
}

/// Points of each theory curve.
const CURVE_POINTS: usize = 240;

/// A time unit for an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeUnit {
    Us,
    Ms,
}

impl TimeUnit {
    fn for_max_us(max_us: f64) -> Self {
        if max_us >= 2000.0 {
            TimeUnit::Ms
        } else {
            TimeUnit::Us
        }
    }
    fn scale(self, us: f64) -> f64 {
        match self {
            TimeUnit::Us => us,
            TimeUnit::Ms => us / 1000.0,
        }
    }
    fn name(self) -> &'static str {
        match self {
            TimeUnit::Us => "µs",
            TimeUnit::Ms => "ms",
        }
    }
}

/// What every plot of a sweep shares: the model, and a subtitle describing the run.
#[derive(Debug, Clone)]
pub struct PlotContext<'a> {
    /// The model swept.
    pub model: &'a Model,
    /// Kendall notation.
    pub model_name: String,
    /// One line on the run (μ, c, K, service, durations, overhead).
    pub subtitle: String,
}

/// The ρ axis: [0, 1] for models that need ρ < 1, else up to a nice bound above the sweep.
fn rho_axis(ctx: &PlotContext<'_>, points: &[PointAnalysis]) -> Axis {
    let label = match ctx.model.servers {
        Servers::Finite(_) => "offered load per server ρ = λ/(cμ)",
        Servers::Infinite => "offered load ρ = λ/μ",
    };
    let max = points.iter().map(|p| p.rho).fold(0.0, f64::max);
    if analysis::needs_rho_below_one(ctx.model) || max <= 1.0 {
        Axis::fixed(label, 0.0, 1.0)
    } else {
        Axis::auto(label, 0.0, max * 1.05, true)
    }
}

/// ρ grid for theory curves on `axis`, stopping short of 1 when the model needs it.
fn rho_grid(ctx: &PlotContext<'_>, axis: &Axis) -> Vec<f64> {
    let top = if analysis::needs_rho_below_one(ctx.model) {
        axis.max.min(0.995)
    } else {
        axis.max
    };
    (1..=CURVE_POINTS)
        .map(|i| top * i as f64 / CURVE_POINTS as f64)
        .collect()
}

fn max_finite(xs: impl IntoIterator<Item = f64>) -> Option<f64> {
    xs.into_iter()
        .filter(|x| x.is_finite())
        .fold(None, |m, x| Some(m.map_or(x, |m: f64| m.max(x))))
}

/// Mean response time against ρ.
pub fn mean_chart(ctx: &PlotContext<'_>, points: &[PointAnalysis]) -> Chart {
    let x = rho_axis(ctx, points);
    let grid = rho_grid(ctx, &x);
    let curve: Vec<(f64, f64)> = grid
        .iter()
        .filter_map(|&r| {
            analysis::theory_at(ctx.model, ctx.model.lambda(Load::Rho(r)))
                .ok()
                .map(|t| (r, t.mean_us))
        })
        .collect();
    // The y range holds every measurement and the theory up to the highest ρ swept.
    let rho_top = points.iter().map(|p| p.rho).fold(0.0, f64::max);
    let theory_top = points
        .iter()
        .filter_map(|p| {
            p.theory.as_ref().map(|t| t.mean_us).or_else(|| {
                let r = p.reference.as_ref()?;
                Some(r.mean_us? + r.mean_half_width_us.unwrap_or(0.0))
            })
        })
        .chain(
            curve
                .iter()
                .filter(|(r, _)| *r <= rho_top.max(0.5))
                .map(|c| c.1),
        );
    let meas_top = points.iter().flat_map(|p| {
        [
            p.mean_us,
            p.ci95_us.map(|c| c.1),
            p.net_ci95_us.map(|c| c.1),
        ]
        .into_iter()
        .flatten()
    });
    let top = max_finite(theory_top.chain(meas_top)).unwrap_or(1.0);
    let unit = TimeUnit::for_max_us(top);
    let y = Axis::auto(
        format!("mean response time ({})", unit.name()),
        0.0,
        unit.scale(top) * 1.05,
        true,
    );
    let dx = (x.max - x.min) * 0.004;
    let s = |v: f64| unit.scale(v);
    let mut series = vec![Series {
        id: "theory".into(),
        label: format!("theory {}", ctx.model_name),
        color: PALETTE[6].into(),
        style: Style::Line { dashed: false },
        points: curve.iter().map(|&(r, m)| Point::new(r, s(m))).collect(),
    }];
    if points.iter().any(simulated_mean) {
        series.push(Series {
            id: "simulation".into(),
            label: "simulation, 95% CI".into(),
            color: PALETTE[6].into(),
            style: Style::Markers(Marker::Diamond),
            points: points
                .iter()
                .filter(|p| simulated_mean(p))
                .filter_map(|p| {
                    let r = p.reference.as_ref()?;
                    let (m, h) = (r.mean_us?, r.mean_half_width_us.unwrap_or(0.0));
                    Some(Point {
                        x: p.rho,
                        y: s(m),
                        err: Some((s(m - h), s(m + h))),
                    })
                })
                .collect(),
        });
    }
    series.push(Series {
        id: "measured-raw".into(),
        label: "measured (raw), 95% CI".into(),
        color: PALETTE[1].into(),
        style: Style::Markers(Marker::Square),
        points: points
            .iter()
            .filter_map(|p| {
                p.mean_us.map(|m| Point {
                    x: p.rho - dx,
                    y: s(m),
                    err: p.ci95_us.map(|(lo, hi)| (s(lo), s(hi))),
                })
            })
            .collect(),
    });
    if points.iter().any(|p| p.net_mean_us.is_some()) {
        series.push(Series {
            id: "measured-net".into(),
            label: if points.iter().any(PointAnalysis::timed) {
                "net: server's own time (Server-Timing), 95% CI".into()
            } else {
                "measured − overhead, 95% CI".into()
            },
            color: PALETTE[0].into(),
            style: Style::Markers(Marker::Circle),
            points: points
                .iter()
                .filter_map(|p| {
                    p.net_mean_us.map(|m| Point {
                        x: p.rho + dx,
                        y: s(m),
                        err: p.net_ci95_us.map(|(lo, hi)| (s(lo), s(hi))),
                    })
                })
                .collect(),
        });
    }
    Chart {
        id: "mean".into(),
        title: format!("Mean response time vs load — {}", ctx.model_name),
        subtitle: ctx.subtitle.clone(),
        x,
        y,
        series,
        notes: overhead_notes(points),
    }
}

fn overhead_notes(points: &[PointAnalysis]) -> Vec<String> {
    let sum = analysis::summarize(points);
    let mut notes = vec!["bars: 95% CI of the mean (batch means)".to_owned()];
    let paths: Vec<f64> = points.iter().filter_map(|p| p.path_mean_us).collect();
    if points.iter().any(PointAnalysis::timed) && !paths.is_empty() {
        let lo = paths.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = paths.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        notes.push(format!("path (Server-Timing): {lo:.1}–{hi:.1} µs"));
        notes.push("net = measured − each request's path".to_owned());
    } else if let Some((lo, hi)) = sum.overhead_range_us {
        notes.push(format!("overhead (zero service): {lo:.1}–{hi:.1} µs"));
        notes.push("net = measured − overhead".to_owned());
    } else {
        notes.push("overhead not measured".to_owned());
    }
    notes
}

/// Relative error of the mean against ρ, raw and net, in percent.
pub fn error_chart(ctx: &PlotContext<'_>, points: &[PointAnalysis]) -> Chart {
    let x = rho_axis(ctx, points);
    let rel = |p: &PointAnalysis, v: f64| p.ref_mean_us().map(|w| (v - w) / w * 100.0);
    let raw: Vec<Point> = points
        .iter()
        .filter_map(|p| {
            Some(Point {
                x: p.rho - (x.max - x.min) * 0.004,
                y: p.err_raw? * 100.0,
                err: p.ci95_us.and_then(|(lo, hi)| rel(p, lo).zip(rel(p, hi))),
            })
        })
        .collect();
    let net: Vec<Point> = points
        .iter()
        .filter_map(|p| {
            Some(Point {
                x: p.rho + (x.max - x.min) * 0.004,
                y: p.err_net? * 100.0,
                err: p
                    .net_ci95_us
                    .and_then(|(lo, hi)| rel(p, lo).zip(rel(p, hi))),
            })
        })
        .collect();
    let ys = raw.iter().chain(&net).flat_map(|p| {
        let (lo, hi) = p.err.unwrap_or((p.y, p.y));
        [p.y, lo, hi]
    });
    let (lo, hi) = ys
        .filter(|v| v.is_finite())
        .fold((-1.0f64, 1.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let y = Axis::auto("relative error of the mean (%)", lo * 1.05, hi * 1.05, true);
    let mut series = vec![Series {
        id: "zero".into(),
        label: if points.iter().any(simulated_mean) {
            "reference (0%)".into()
        } else {
            "theory (0%)".into()
        },
        color: PALETTE[6].into(),
        style: Style::Line { dashed: false },
        points: vec![Point::new(x.min, 0.0), Point::new(x.max, 0.0)],
    }];
    series.push(Series {
        id: "error-raw".into(),
        label: "raw, 95% CI".into(),
        color: PALETTE[1].into(),
        style: Style::Markers(Marker::Square),
        points: raw,
    });
    if !net.is_empty() {
        series.push(Series {
            id: "error-net".into(),
            label: if points.iter().any(PointAnalysis::timed) {
                "net (Server-Timing), 95% CI".into()
            } else {
                "net of overhead, 95% CI".into()
            },
            color: PALETTE[0].into(),
            style: Style::Markers(Marker::Circle),
            points: net,
        });
    }
    Chart {
        id: "error".into(),
        title: format!("Relative error of the mean vs load — {}", ctx.model_name),
        subtitle: ctx.subtitle.clone(),
        x,
        y,
        series,
        notes: overhead_notes(points),
    }
}

/// Indices (into `points`) of up to three loads to show: the lowest, a middle and the highest ρ
/// among points that have responses.
pub fn cdf_choice(points: &[PointAnalysis]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..points.len())
        .filter(|&i| points[i].completed > 0)
        .collect();
    idx.sort_by(|&a, &b| points[a].rho.total_cmp(&points[b].rho));
    match idx.len() {
        0..=3 => idx,
        n => vec![idx[0], idx[n / 2], idx[n - 1]],
    }
}

/// Response-time CDFs at up to three loads, measured (solid) over theory (dashed).
pub fn cdf_chart(
    ctx: &PlotContext<'_>,
    records: &[PointRecord],
    points: &[PointAnalysis],
) -> Option<Chart> {
    let chosen = cdf_choice(points);
    if chosen.is_empty() {
        return None;
    }
    // Up to the largest 99th percentile, measured or predicted: the body and most of the tail.
    let top = max_finite(chosen.iter().flat_map(|&i| {
        let p = &points[i];
        [p.p99_us, p.ref_percentiles_us()[2]].into_iter().flatten()
    }))
    .unwrap_or(1.0)
        * 1.1;
    let unit = TimeUnit::for_max_us(top);
    let x = Axis::auto(
        format!("response time t ({})", unit.name()),
        0.0,
        unit.scale(top),
        true,
    );
    let mut series = Vec::new();
    let simulated = |p: &PointAnalysis| {
        p.reference.as_ref().is_some_and(|r| {
            r.kind == ReferenceKind::Simulation || r.percentiles == Some(ReferenceKind::Simulation)
        })
    };
    let mut notes = vec![
        if chosen.iter().any(|&i| simulated(&points[i])) {
            "solid: measured; dashed: theory or simulation"
        } else {
            "solid: measured; dashed: theory"
        }
        .to_owned(),
    ];
    for (k, &i) in chosen.iter().enumerate() {
        let p = &points[i];
        let color = PALETTE[k % PALETTE.len()].to_owned();
        let predicted = records
            .get(i)
            .and_then(|r| analysis::predicted_cdf_us(ctx.model, r, 0.0));
        if let Some(cdf) = predicted {
            // Over the whole axis (its end is rounded up past `top`).
            let end_us = match unit {
                TimeUnit::Us => x.max,
                TimeUnit::Ms => x.max * 1000.0,
            };
            let pts = (0..=CURVE_POINTS)
                .map(|j| {
                    let t = end_us * j as f64 / CURVE_POINTS as f64;
                    Point::new(unit.scale(t), cdf(t))
                })
                .collect();
            let blocked = p.blocking_measured.filter(|b| *b > 0.0);
            let what = if simulated(p) { "simulation" } else { "theory" };
            series.push(Series {
                id: format!("cdf-theory-{k}"),
                label: match blocked {
                    Some(_) => format!("{what} ρ = {:.2} (+ 503s)", p.rho),
                    None => format!("{what} ρ = {:.2}", p.rho),
                },
                color: color.clone(),
                style: Style::Line { dashed: true },
                points: pts,
            });
        }
        if let Some(emp) = records
            .get(i)
            .and_then(|r| analysis::empirical_cdf_us(&r.measured.histogram, 400))
        {
            series.push(Series {
                id: format!("cdf-measured-{k}"),
                label: format!("measured ρ = {:.2}", p.rho),
                color,
                style: Style::Line { dashed: false },
                points: emp
                    .into_iter()
                    .map(|(t, f)| Point::new(unit.scale(t), f))
                    .collect(),
            });
        }
        let noise = p
            .ks_noise
            .map(|z| format!(" (noise {z:.4})"))
            .unwrap_or_default();
        match (p.ks_raw, p.ks_net) {
            (_, Some(n)) => notes.push(format!("KS net, ρ = {:.2}: {n:.4}{noise}", p.rho)),
            (Some(r), None) => notes.push(format!("KS raw, ρ = {:.2}: {r:.4}{noise}", p.rho)),
            _ => {}
        }
    }
    Some(Chart {
        id: "cdf".into(),
        title: format!("Response-time CDF — {}", ctx.model_name),
        subtitle: ctx.subtitle.clone(),
        x,
        y: Axis::fixed("P(response time ≤ t)", 0.0, 1.0),
        series,
        notes,
    })
}

/// The server's mean sojourn per class against ρ, over each class's reference (`None` when no
/// point has classes).
pub fn classes_chart(ctx: &PlotContext<'_>, points: &[PointAnalysis]) -> Option<Chart> {
    let n = points
        .iter()
        .flat_map(|p| p.classes.iter().map(|c| usize::from(c.class) + 1))
        .max()?;
    let x = rho_axis(ctx, points);
    // Closed-form class means on the grid, where theory has them.
    let curves: Vec<Vec<(f64, f64)>> = (0..n)
        .map(|k| {
            rho_grid(ctx, &x)
                .into_iter()
                .filter_map(|r| {
                    let t = theory::predict(ctx.model, ctx.model.lambda(Load::Rho(r))).ok()?;
                    Some((r, t.classes.get(k)?.mean_s * 1e6))
                })
                .collect()
        })
        .collect();
    let rho_top = points.iter().map(|p| p.rho).fold(0.0, f64::max);
    let top = max_finite(
        points
            .iter()
            .flat_map(|p| {
                p.classes.iter().flat_map(|c| {
                    [
                        Some(c.mean_us),
                        c.reference_us
                            .map(|r| r + c.reference_half_width_us.unwrap_or(0.0)),
                    ]
                })
            })
            .flatten()
            .chain(
                curves
                    .iter()
                    .flatten()
                    .filter(|(r, _)| *r <= rho_top.max(0.5))
                    .map(|c| c.1),
            ),
    )
    .unwrap_or(1.0);
    let unit = TimeUnit::for_max_us(top);
    let s = |v: f64| unit.scale(v);
    let y = Axis::auto(
        format!("mean sojourn per class ({})", unit.name()),
        0.0,
        s(top) * 1.05,
        true,
    );
    let dx = (x.max - x.min) * 0.004;
    let mut series = Vec::new();
    for k in 0..n {
        let color = PALETTE[k % PALETTE.len()].to_owned();
        let of_class = |p: &PointAnalysis| class_of(p, k).copied();
        // The reference: the closed form's line, else a line through the recorded references.
        let line: Vec<Point> = if curves[k].is_empty() {
            points
                .iter()
                .filter_map(|p| Some(Point::new(p.rho, s(of_class(p)?.reference_us?))))
                .collect()
        } else {
            curves[k]
                .iter()
                .map(|&(r, m)| Point::new(r, s(m)))
                .collect()
        };
        series.push(Series {
            id: format!("class-reference-{k}"),
            label: format!("reference, class {k}"),
            color: color.clone(),
            style: Style::Line { dashed: true },
            points: line,
        });
        series.push(Series {
            id: format!("class-measured-{k}"),
            label: format!("measured, class {k} (reference's 95% CI)"),
            color,
            style: Style::Markers(Marker::Circle),
            points: points
                .iter()
                .filter_map(|p| {
                    let c = of_class(p)?;
                    Some(Point {
                        x: p.rho + dx * (k as f64 - (n as f64 - 1.0) / 2.0),
                        y: s(c.mean_us),
                        err: c.reference_us.map(|r| {
                            let h = c.reference_half_width_us.unwrap_or(0.0);
                            (s(r - h), s(r + h))
                        }),
                    })
                })
                .collect(),
        });
    }
    Some(Chart {
        id: "classes".into(),
        title: format!("Response time per class vs load — {}", ctx.model_name),
        subtitle: ctx.subtitle.clone(),
        x,
        y,
        series,
        notes: vec![
            "markers: the server's mean sojourn of the class (/metrics)".to_owned(),
            "bars: the reference's 95% CI (none for a closed form)".to_owned(),
            "class 0 is the highest priority".to_owned(),
        ],
    })
}

fn class_of(p: &PointAnalysis, k: usize) -> Option<&ClassPoint> {
    p.classes.iter().find(|c| usize::from(c.class) == k)
}

/// Blocking probability against ρ (capacity K only).
pub fn blocking_chart(ctx: &PlotContext<'_>, points: &[PointAnalysis]) -> Option<Chart> {
    ctx.model.capacity?;
    let x = rho_axis(ctx, points);
    let curve: Vec<Point> = rho_grid(ctx, &x)
        .into_iter()
        .filter_map(|r| {
            analysis::theory_at(ctx.model, ctx.model.lambda(Load::Rho(r)))
                .ok()
                .map(|t| Point::new(r, t.blocking))
        })
        .collect();
    let measured: Vec<Point> = points
        .iter()
        .filter_map(|p| p.blocking_measured.map(|b| Point::new(p.rho, b)))
        .collect();
    let top = max_finite(curve.iter().chain(&measured).map(|p| p.y))
        .unwrap_or(1.0)
        .max(0.01);
    let y = Axis::auto(
        "blocking probability (fraction of 503)",
        0.0,
        top * 1.05,
        true,
    );
    Some(Chart {
        id: "blocking".into(),
        title: format!("Blocking probability vs load — {}", ctx.model_name),
        subtitle: ctx.subtitle.clone(),
        x,
        y,
        series: vec![
            Series {
                id: "blocking-theory".into(),
                label: format!("theory {}", ctx.model_name),
                color: PALETTE[6].into(),
                style: Style::Line { dashed: false },
                points: curve,
            },
            Series {
                id: "blocking-measured".into(),
                label: "measured (503 / responses)".into(),
                color: PALETTE[1].into(),
                style: Style::Markers(Marker::Diamond),
                points: measured,
            },
        ],
        notes: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::PointMeasurement;
    use queuelab_client::result::RunResult;

    fn p(rho: f64) -> PointAnalysis {
        PointAnalysis {
            rho,
            completed: 1,
            ..PointAnalysis::default()
        }
    }

    #[test]
    fn cdf_choice_takes_lowest_middle_highest() {
        let pts: Vec<_> = [0.9, 0.1, 0.5, 0.3, 0.7].into_iter().map(p).collect();
        let c: Vec<f64> = cdf_choice(&pts).iter().map(|&i| pts[i].rho).collect();
        assert_eq!(c, vec![0.1, 0.5, 0.9]);
        let pts: Vec<_> = [0.1, 0.2, 0.3, 0.4].into_iter().map(p).collect();
        let c: Vec<f64> = cdf_choice(&pts).iter().map(|&i| pts[i].rho).collect();
        assert_eq!(c, vec![0.1, 0.3, 0.4]);
        let mut pts: Vec<_> = [0.1, 0.2].into_iter().map(p).collect();
        pts[0].completed = 0;
        assert_eq!(cdf_choice(&pts), vec![1]);
    }

    /// A recorded point of M/M/1/`k` at load `rho` (μ = 1000/s): exponential response times with
    /// mean `mean_us` plus a 25 µs path, a tenth of them blocked, and an overhead run.
    fn recorded(rho: f64, mean_us: f64) -> PointRecord {
        let measurement = |values_us: &[f64], blocked: u64| PointMeasurement {
            target_rate: rho * 1000.0,
            achieved_rate: rho * 1000.0,
            ..PointMeasurement::of_sample(values_us, blocked, |m| (m * 0.95, m * 1.05))
        };
        let n = 2000;
        let values: Vec<f64> = (0..n)
            .map(|i| 25.0 - mean_us * (1.0 - (i as f64 + 0.5) / n as f64).ln())
            .collect();
        PointRecord {
            index: 0,
            rho,
            lambda: rho * 1000.0,
            warmup_s: 0.0,
            seed: 1,
            measured: measurement(&values, n as u64 / 10),
            overhead: Some(measurement(&[25.0; 500], 0)),
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

    #[test]
    fn every_plot_parses_as_xml_with_its_series() {
        let model = Model::new(1000.0, Servers::Finite(1)).with_capacity(Some(3));
        let ctx = PlotContext {
            model: &model,
            model_name: model.name(),
            subtitle: "μ = 1000/s <per server> & \"K\" = 3".into(),
        };
        let records: Vec<PointRecord> = [(0.3, 1400.0), (0.9, 2600.0), (1.5, 3400.0)]
            .into_iter()
            .map(|(rho, m)| recorded(rho, m))
            .collect();
        let points: Vec<PointAnalysis> = records
            .iter()
            .map(|r| analysis::analyze(&model, r))
            .collect();
        let charts = [
            (
                mean_chart(&ctx, &points),
                &["theory", "measured-raw", "measured-net"][..],
            ),
            (error_chart(&ctx, &points), &["error-raw", "error-net"][..]),
            (
                cdf_chart(&ctx, &records, &points).expect("points with histograms"),
                &[
                    "cdf-measured-0",
                    "cdf-theory-0",
                    "cdf-measured-2",
                    "cdf-theory-2",
                ][..],
            ),
            (
                blocking_chart(&ctx, &points).expect("a capacity"),
                &["blocking-theory", "blocking-measured"][..],
            ),
        ];
        for (chart, series) in charts {
            let svg = chart.render();
            let doc = crate::svg::tests::parse(&svg);
            assert_eq!(doc.root_element().tag_name().name(), "svg");
            for id in series {
                let g = crate::svg::tests::by_id(&doc, &format!("series-{id}"))
                    .unwrap_or_else(|| panic!("{}: series {id} missing", chart.id));
                assert!(crate::svg::tests::has_class(g, "series"), "{id}");
                assert!(g.children().any(|c| c.is_element()), "{id} is empty");
            }
            let texts: Vec<&str> = crate::svg::tests::named(doc.root(), "text")
                .filter_map(|t| t.text())
                .collect();
            assert!(
                texts.contains(&"μ = 1000/s <per server> & \"K\" = 3"),
                "{}: subtitle {texts:?}",
                chart.id
            );
        }
    }

    #[test]
    fn time_unit_switches_at_two_milliseconds() {
        assert_eq!(TimeUnit::for_max_us(1999.0), TimeUnit::Us);
        assert_eq!(TimeUnit::for_max_us(2000.0), TimeUnit::Ms);
        assert_eq!(TimeUnit::Ms.scale(1500.0), 1.5);
    }

    fn ctx(model: &Model) -> PlotContext<'_> {
        PlotContext {
            model,
            model_name: model.name(),
            subtitle: "test".into(),
        }
    }

    /// The series ids of a rendered chart, with the number of markers or points of each.
    fn series_of(svg: &str) -> Vec<(String, usize)> {
        let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
        doc.descendants()
            .filter(|n| {
                n.attribute("class")
                    .is_some_and(|c| c.starts_with("series "))
            })
            .map(|n| {
                (
                    n.attribute("id").unwrap_or_default().to_owned(),
                    n.descendants().filter(|d| d.is_element()).count(),
                )
            })
            .collect()
    }

    #[test]
    fn classes_chart_draws_each_class_over_its_reference() {
        use crate::record::ClassPoint;
        use queuelab_common::model::{Classes, Discipline};
        let m = Model::new(1000.0, Servers::Finite(1))
            .with_discipline(Discipline::Priority)
            .with_classes(Classes::new(&[0.3, 0.7]).expect("classes"));
        assert!(
            classes_chart(&ctx(&m), &[p(0.5)]).is_none(),
            "no classes, no chart"
        );
        let with = |rho: f64| PointAnalysis {
            classes: (0..2)
                .map(|k| ClassPoint {
                    class: k,
                    count: 100,
                    mean_us: 1000.0 * rho * f64::from(k + 1),
                    reference_us: Some(1000.0 * rho * f64::from(k + 1) + 10.0),
                    reference_half_width_us: Some(20.0),
                })
                .collect(),
            ..p(rho)
        };
        let chart = classes_chart(&ctx(&m), &[with(0.3), with(0.6), with(0.9)]).expect("a chart");
        let svg = chart.render();
        let series = series_of(&svg);
        let ids: Vec<&str> = series.iter().map(|s| s.0.as_str()).collect();
        for id in [
            "series-class-reference-0",
            "series-class-measured-0",
            "series-class-reference-1",
            "series-class-measured-1",
        ] {
            assert!(ids.contains(&id), "{id} in {ids:?}");
        }
        assert!(svg.contains("Response time per class vs load"));
        // Three measured points per class, each with its reference's bar.
        let measured = series
            .iter()
            .find(|s| s.0 == "series-class-measured-1")
            .expect("class 1");
        assert!(measured.1 >= 3, "{measured:?}");
    }

    #[test]
    fn mean_chart_shows_a_simulated_reference() {
        use crate::record::{Reference, ReferenceKind};
        let m = Model::new(1000.0, Servers::Finite(2))
            .with_service(queuelab_common::model::ServiceKind::H2 { cv2: 4.0 });
        let sim = |rho: f64| PointAnalysis {
            mean_us: Some(1500.0),
            reference: Some(Reference {
                kind: ReferenceKind::Simulation,
                replications: Some(10),
                customers: Some(100_000),
                seed: None,
                mean_us: Some(1400.0 + 1000.0 * rho),
                mean_half_width_us: Some(15.0),
                p50_us: None,
                p90_us: None,
                p99_us: None,
                percentiles: Some(ReferenceKind::Simulation),
                blocking: None,
                class_mean_us: Vec::new(),
                n_eff: None,
                histogram: None,
            }),
            ..p(rho)
        };
        let svg = mean_chart(&ctx(&m), &[sim(0.3), sim(0.6)]).render();
        let series = series_of(&svg);
        let simulated = series
            .iter()
            .find(|s| s.0 == "series-simulation")
            .expect("the simulation's series");
        assert!(simulated.1 >= 2, "{simulated:?}");
        assert!(svg.contains("simulation, 95% CI"));
        // Its errors are against the simulated means.
        let e = error_chart(&ctx(&m), &[sim(0.3)]).render();
        assert!(e.contains("reference (0%)"));
        // A sweep with closed forms only has no such series.
        let plain = mean_chart(&ctx(&Model::default()), &[p(0.5)]).render();
        assert!(!plain.contains("series-simulation"));
    }
}
