//! A small SVG writer and an x–y chart drawn with it: axes with "nice" ticks and units, a grid,
//! line and marker series with optional vertical error bars, a legend and a title.
//!
//! The plots are written by hand rather than through a plotting crate for two reasons: text is
//! emitted as plain `<text>` elements with a generic `sans-serif` family (no font files are read
//! at build or run time, so the lab needs nothing beyond the toolchain), and every series is one
//! `<g id="series-ID" class="series …">` group, so tests and scripts can find each series again.
//!
//! Coordinates: the data are mapped linearly into the plot area; series are clipped to it.
//! Non-finite values are skipped (a line is broken at them).

use std::fmt::Write as _;

/// Width of every chart, in SVG user units (pixels).
pub const WIDTH: f64 = 1000.0;
/// Height of every chart.
pub const HEIGHT: f64 = 560.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 290.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 64.0;

/// A colour-blind-safe palette (Okabe and Ito), in series order.
pub const PALETTE: [&str; 7] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
];

/// Escapes `s` for use in text content and in double-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters and the two non-characters U+FFFE and U+FFFF are not allowed
            // in XML 1.0 at all: drop them.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            '\u{fffe}' | '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with two decimals at most (trailing zeros trimmed): small files, exact enough.
pub fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s.as_str()
    };
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// Writes SVG elements into a string, keeping tags balanced: every [`SvgWriter::open`] is matched
/// by a [`SvgWriter::close`], and [`SvgWriter::finish`] closes whatever is still open.
#[derive(Debug)]
pub struct SvgWriter {
    out: String,
    stack: Vec<&'static str>,
}

impl SvgWriter {
    /// A document of `width` × `height` with `title` (shown as a tooltip and read by screen readers).
    pub fn new(width: f64, height: f64, title: &str) -> Self {
        let mut w = SvgWriter {
            out: String::with_capacity(32 * 1024),
            stack: Vec::new(),
        };
        w.out
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        w.open(
            "svg",
            &[
                ("xmlns", "http://www.w3.org/2000/svg".into()),
                ("width", num(width)),
                ("height", num(height)),
                ("viewBox", format!("0 0 {} {}", num(width), num(height))),
                ("font-family", "sans-serif".into()),
                ("font-size", "13".into()),
            ],
        );
        w.text_element("title", &[], title);
        w
    }

    fn start_tag(&mut self, tag: &str, attrs: &[(&str, String)]) {
        for _ in 0..self.stack.len() {
            self.out.push_str("  ");
        }
        self.out.push('<');
        self.out.push_str(tag);
        for (k, v) in attrs {
            // Attribute names are literals in this crate; values are escaped.
            let _ = write!(self.out, " {k}=\"{}\"", escape(v));
        }
    }

    /// Opens `<tag attrs…>`; close it with [`SvgWriter::close`].
    pub fn open(&mut self, tag: &'static str, attrs: &[(&str, String)]) {
        self.start_tag(tag, attrs);
        self.out.push_str(">\n");
        self.stack.push(tag);
    }

    /// Closes the innermost open element.
    pub fn close(&mut self) {
        if let Some(tag) = self.stack.pop() {
            for _ in 0..self.stack.len() {
                self.out.push_str("  ");
            }
            let _ = writeln!(self.out, "</{tag}>");
        }
    }

    /// An empty element `<tag attrs…/>`.
    pub fn empty(&mut self, tag: &str, attrs: &[(&str, String)]) {
        self.start_tag(tag, attrs);
        self.out.push_str("/>\n");
    }

    /// An element holding only (escaped) text.
    pub fn text_element(&mut self, tag: &str, attrs: &[(&str, String)], text: &str) {
        self.start_tag(tag, attrs);
        let _ = writeln!(self.out, ">{}</{tag}>", escape(text));
    }

    /// Closes every open element and returns the document.
    pub fn finish(mut self) -> String {
        while !self.stack.is_empty() {
            self.close();
        }
        self.out
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    /// A polyline through the points, optionally dashed.
    Line {
        /// Dashed (theory) or solid (measurement).
        dashed: bool,
    },
    /// A marker at each point, with the point's error bar if it has one.
    Markers(Marker),
}

/// Marker shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A filled circle.
    Circle,
    /// An open square.
    Square,
    /// A filled diamond.
    Diamond,
}

/// A data point, with an optional vertical interval (e.g. a 95% confidence interval).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Abscissa.
    pub x: f64,
    /// Ordinate.
    pub y: f64,
    /// Lower and upper ends of the error bar.
    pub err: Option<(f64, f64)>,
}

impl Point {
    /// A point without an error bar.
    pub fn new(x: f64, y: f64) -> Self {
        Point { x, y, err: None }
    }
}

/// One series: drawn as one `<g id="series-{id}" class="series {kind}">` group.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Identifier (letters, digits, `-`, `_`); the group's id is `series-{id}`.
    pub id: String,
    /// Legend text.
    pub label: String,
    /// Stroke and fill colour.
    pub color: String,
    /// Line or markers.
    pub style: Style,
    /// The data.
    pub points: Vec<Point>,
}

/// An axis: a label (with its unit) and a data range.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Label, units included, e.g. `mean response time (ms)`.
    pub label: String,
    /// Lowest value shown.
    pub min: f64,
    /// Highest value shown.
    pub max: f64,
}

impl Axis {
    /// An axis covering `[lo, hi]` (widened to nice tick multiples; `include_zero` extends it
    /// down or up to 0).
    pub fn auto(label: impl Into<String>, lo: f64, hi: f64, include_zero: bool) -> Self {
        let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() && lo <= hi {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        if include_zero {
            lo = lo.min(0.0);
            hi = hi.max(0.0);
        }
        if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
            // A single value: pad it by 10% (or by 1 around zero), never below 0 when the data
            // are not negative and zero is to be shown.
            let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
            let nonnegative = lo >= 0.0;
            lo -= pad;
            hi += pad;
            if include_zero && nonnegative {
                lo = lo.max(0.0);
            }
        }
        let step = nice_step((hi - lo) / 6.0);
        Axis {
            label: label.into(),
            min: (lo / step).floor() * step,
            max: (hi / step).ceil() * step,
        }
    }

    /// An axis with exactly the range `[min, max]`.
    pub fn fixed(label: impl Into<String>, min: f64, max: f64) -> Self {
        Axis {
            label: label.into(),
            min,
            max,
        }
    }

    /// Tick positions (about six, at 1, 2 or 5 times a power of ten).
    pub fn ticks(&self) -> Vec<f64> {
        nice_ticks(self.min, self.max, 6)
    }
}

/// The "nice" step (1, 2 or 5 × 10^k) nearest above `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// About `target` ticks covering `[min, max]` at multiples of a nice step.
pub fn nice_ticks(min: f64, max: f64, target: usize) -> Vec<f64> {
    if !(min.is_finite() && max.is_finite() && max > min) {
        return vec![min];
    }
    let step = nice_step((max - min) / target.max(1) as f64);
    let first = (min / step - 1e-9).ceil() as i64;
    let last = (max / step + 1e-9).floor() as i64;
    (first..=last)
        .map(|k| {
            let v = k as f64 * step;
            // Snap rounding noise (0.30000000000000004) to the step's decimals.
            let d = decimals(step) as i32;
            let p = 10f64.powi(d);
            (v * p).round() / p
        })
        .collect()
}

/// Decimals needed to print multiples of `step` exactly.
fn decimals(step: f64) -> usize {
    if !(step.is_finite() && step > 0.0) {
        return 0;
    }
    let d = -step.log10().floor();
    let mut d = if d > 0.0 { d as usize } else { 0 };
    // A step like 0.25 or 2.5 needs one more decimal than its magnitude says.
    let p = 10f64.powi(d as i32);
    if ((step * p).round() - step * p).abs() > 1e-9 * step * p {
        d += 1;
    }
    d.min(9)
}

/// An x–y chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Used for the root element's id and the clip path (letters, digits, `-`).
    pub id: String,
    /// Title at the top.
    pub title: String,
    /// A smaller second line under the title (run details).
    pub subtitle: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// Series, drawn in order (later ones on top) and listed in the legend.
    pub series: Vec<Series>,
    /// Lines of text added below the legend (notes such as the overhead correction).
    pub notes: Vec<String>,
}

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

impl Frame {
    fn sx(&self, x: f64) -> f64 {
        self.left + (x - self.x0) / (self.x1 - self.x0) * self.width
    }
    fn sy(&self, y: f64) -> f64 {
        self.top + self.height - (y - self.y0) / (self.y1 - self.y0) * self.height
    }
}

fn label_text(v: f64, step: f64) -> String {
    format!("{v:.*}", decimals(step))
}

impl Chart {
    /// Renders the chart as a complete SVG document.
    pub fn render(&self) -> String {
        self.render_with_ticks(None, None)
    }

    /// Renders the chart with the tick marks and labels given for an axis (`None`: the nice
    /// ticks of [`Chart::render`]). For axes whose data are a transform of the quantity shown
    /// (a logarithm, or a value placed apart such as C² = 0 on a log axis): the ticks are at data
    /// positions and carry the labels of the quantity. Ticks outside the axis are not drawn.
    pub fn render_with_ticks(
        &self,
        x_ticks: Option<&[(f64, String)]>,
        y_ticks: Option<&[(f64, String)]>,
    ) -> String {
        let mut w = SvgWriter::new(WIDTH, HEIGHT, &self.title);
        let (x0, x1) = widen(self.x.min, self.x.max);
        let (y0, y1) = widen(self.y.min, self.y.max);
        let f = Frame {
            x0,
            x1,
            y0,
            y1,
            left: LEFT,
            top: TOP,
            width: WIDTH - LEFT - RIGHT,
            height: HEIGHT - TOP - BOTTOM,
        };
        let clip = format!("{}-plot-area", self.id);
        w.open("defs", &[]);
        w.open("clipPath", &[("id", clip.clone())]);
        w.empty(
            "rect",
            &[
                ("x", num(f.left)),
                ("y", num(f.top)),
                ("width", num(f.width)),
                ("height", num(f.height)),
            ],
        );
        w.close();
        w.close();
        w.empty(
            "rect",
            &[
                ("class", "background".into()),
                ("width", num(WIDTH)),
                ("height", num(HEIGHT)),
                ("fill", "white".into()),
            ],
        );
        w.text_element(
            "text",
            &[
                ("class", "title".into()),
                ("x", num(WIDTH / 2.0)),
                ("y", "26".into()),
                ("text-anchor", "middle".into()),
                ("font-size", "18".into()),
                ("font-weight", "bold".into()),
            ],
            &self.title,
        );
        if !self.subtitle.is_empty() {
            w.text_element(
                "text",
                &[
                    ("class", "subtitle".into()),
                    ("x", num(WIDTH / 2.0)),
                    ("y", "48".into()),
                    ("text-anchor", "middle".into()),
                    ("font-size", "12".into()),
                    ("fill", "#444".into()),
                ],
                &self.subtitle,
            );
        }
        self.axes(&mut w, &f, x_ticks, y_ticks);
        w.open(
            "g",
            &[
                ("class", "plot".into()),
                ("clip-path", format!("url(#{clip})")),
            ],
        );
        for s in &self.series {
            draw_series(&mut w, &f, s);
        }
        w.close();
        self.legend(&mut w, &f);
        w.finish()
    }

    fn axes(
        &self,
        w: &mut SvgWriter,
        f: &Frame,
        x_ticks: Option<&[(f64, String)]>,
        y_ticks: Option<&[(f64, String)]>,
    ) {
        let xt = ticks_of(f.x0, f.x1, x_ticks);
        let yt = ticks_of(f.y0, f.y1, y_ticks);
        let bottom = f.top + f.height;
        let right = f.left + f.width;
        w.open(
            "g",
            &[
                ("class", "grid".into()),
                ("stroke", "#e3e3e3".into()),
                ("stroke-width", "1".into()),
            ],
        );
        for &(t, _) in &xt {
            let x = num(f.sx(t));
            w.empty(
                "line",
                &[
                    ("x1", x.clone()),
                    ("y1", num(f.top)),
                    ("x2", x),
                    ("y2", num(bottom)),
                ],
            );
        }
        for &(t, _) in &yt {
            let y = num(f.sy(t));
            w.empty(
                "line",
                &[
                    ("x1", num(f.left)),
                    ("y1", y.clone()),
                    ("x2", num(right)),
                    ("y2", y),
                ],
            );
        }
        w.close();
        w.open("g", &[("class", "axes".into())]);
        w.empty(
            "rect",
            &[
                ("x", num(f.left)),
                ("y", num(f.top)),
                ("width", num(f.width)),
                ("height", num(f.height)),
                ("fill", "none".into()),
                ("stroke", "#333".into()),
            ],
        );
        w.open(
            "g",
            &[("class", "x-axis".into()), ("text-anchor", "middle".into())],
        );
        for (t, label) in &xt {
            let x = f.sx(*t);
            w.empty(
                "line",
                &[
                    ("x1", num(x)),
                    ("y1", num(bottom)),
                    ("x2", num(x)),
                    ("y2", num(bottom + 5.0)),
                    ("stroke", "#333".into()),
                ],
            );
            w.text_element("text", &[("x", num(x)), ("y", num(bottom + 19.0))], label);
        }
        w.text_element(
            "text",
            &[
                ("class", "axis-label".into()),
                ("x", num(f.left + f.width / 2.0)),
                ("y", num(bottom + 44.0)),
                ("font-size", "14".into()),
            ],
            &self.x.label,
        );
        w.close();
        w.open(
            "g",
            &[("class", "y-axis".into()), ("text-anchor", "end".into())],
        );
        for (t, label) in &yt {
            let y = f.sy(*t);
            w.empty(
                "line",
                &[
                    ("x1", num(f.left - 5.0)),
                    ("y1", num(y)),
                    ("x2", num(f.left)),
                    ("y2", num(y)),
                    ("stroke", "#333".into()),
                ],
            );
            w.text_element(
                "text",
                &[("x", num(f.left - 8.0)), ("y", num(y + 4.0))],
                label,
            );
        }
        let (lx, ly) = (22.0, f.top + f.height / 2.0);
        w.text_element(
            "text",
            &[
                ("class", "axis-label".into()),
                ("x", num(lx)),
                ("y", num(ly)),
                ("font-size", "14".into()),
                ("text-anchor", "middle".into()),
                ("transform", format!("rotate(-90 {} {})", num(lx), num(ly))),
            ],
            &self.y.label,
        );
        w.close();
        w.close();
    }

    fn legend(&self, w: &mut SvgWriter, f: &Frame) {
        let x = f.left + f.width + 18.0;
        let mut y = f.top + 8.0;
        w.open("g", &[("class", "legend".into())]);
        for s in &self.series {
            w.open(
                "g",
                &[
                    ("class", "legend-entry".into()),
                    ("data-series", s.id.clone()),
                ],
            );
            match s.style {
                Style::Line { dashed } => {
                    let mut a = vec![
                        ("x1", num(x)),
                        ("y1", num(y)),
                        ("x2", num(x + 28.0)),
                        ("y2", num(y)),
                        ("stroke", s.color.clone()),
                        ("stroke-width", "2".into()),
                    ];
                    if dashed {
                        a.push(("stroke-dasharray", "6 4".into()));
                    }
                    w.empty("line", &a);
                }
                Style::Markers(m) => {
                    if s.points.iter().any(|p| p.err.is_some()) {
                        w.empty(
                            "line",
                            &[
                                ("x1", num(x + 14.0)),
                                ("y1", num(y - 7.0)),
                                ("x2", num(x + 14.0)),
                                ("y2", num(y + 7.0)),
                                ("stroke", s.color.clone()),
                            ],
                        );
                    }
                    marker(w, m, x + 14.0, y, &s.color);
                }
            }
            w.text_element(
                "text",
                &[("x", num(x + 36.0)), ("y", num(y + 4.0))],
                &s.label,
            );
            w.close();
            y += 22.0;
        }
        y += 8.0;
        for n in &self.notes {
            w.text_element(
                "text",
                &[
                    ("class", "note".into()),
                    ("x", num(x)),
                    ("y", num(y + 4.0)),
                    ("font-size", "11".into()),
                    ("fill", "#444".into()),
                ],
                n,
            );
            y += 16.0;
        }
        w.close();
    }
}

/// The ticks of an axis over `[lo, hi]` with their labels: `given` (those within the range), else
/// about six nice ones labelled with the decimals their step needs.
fn ticks_of(lo: f64, hi: f64, given: Option<&[(f64, String)]>) -> Vec<(f64, String)> {
    match given {
        Some(t) => {
            let eps = 1e-9 * (hi - lo).abs();
            t.iter()
                .filter(|(v, _)| v.is_finite() && *v >= lo - eps && *v <= hi + eps)
                .cloned()
                .collect()
        }
        None => {
            let t = nice_ticks(lo, hi, 6);
            let step = t.get(1).zip(t.first()).map_or(1.0, |(b, a)| b - a);
            t.into_iter().map(|v| (v, label_text(v, step))).collect()
        }
    }
}

/// A non-empty range (a degenerate one is widened by one unit).
fn widen(lo: f64, hi: f64) -> (f64, f64) {
    if lo.is_finite() && hi.is_finite() && hi > lo {
        (lo, hi)
    } else if lo.is_finite() {
        (lo - 0.5, lo + 0.5)
    } else {
        (0.0, 1.0)
    }
}

fn marker(w: &mut SvgWriter, m: Marker, x: f64, y: f64, color: &str) {
    match m {
        Marker::Circle => w.empty(
            "circle",
            &[
                ("cx", num(x)),
                ("cy", num(y)),
                ("r", "4".into()),
                ("fill", color.into()),
            ],
        ),
        Marker::Square => w.empty(
            "rect",
            &[
                ("x", num(x - 4.0)),
                ("y", num(y - 4.0)),
                ("width", "8".into()),
                ("height", "8".into()),
                ("fill", "white".into()),
                ("stroke", color.into()),
                ("stroke-width", "1.5".into()),
            ],
        ),
        Marker::Diamond => w.empty(
            "polygon",
            &[
                (
                    "points",
                    format!(
                        "{},{} {},{} {},{} {},{}",
                        num(x),
                        num(y - 5.0),
                        num(x + 5.0),
                        num(y),
                        num(x),
                        num(y + 5.0),
                        num(x - 5.0),
                        num(y)
                    ),
                ),
                ("fill", color.into()),
            ],
        ),
    }
}

fn draw_series(w: &mut SvgWriter, f: &Frame, s: &Series) {
    let kind = match s.style {
        Style::Line { .. } => "line",
        Style::Markers(_) => "markers",
    };
    w.open(
        "g",
        &[
            ("id", format!("series-{}", s.id)),
            ("class", format!("series {kind}")),
            ("data-label", s.label.clone()),
        ],
    );
    match s.style {
        Style::Line { dashed } => {
            // Break the line wherever a value is missing.
            let mut run = String::new();
            let flush = |w: &mut SvgWriter, run: &mut String| {
                if run.contains(' ') {
                    let mut a = vec![
                        ("points", run.trim_end().to_owned()),
                        ("fill", "none".into()),
                        ("stroke", s.color.clone()),
                        ("stroke-width", "2".into()),
                        ("stroke-linejoin", "round".into()),
                    ];
                    if dashed {
                        a.push(("stroke-dasharray", "6 4".into()));
                    }
                    w.empty("polyline", &a);
                }
                run.clear();
            };
            for p in &s.points {
                if p.x.is_finite() && p.y.is_finite() {
                    let _ = write!(run, "{},{} ", num(f.sx(p.x)), num(f.sy(p.y)));
                } else {
                    flush(w, &mut run);
                }
            }
            flush(w, &mut run);
        }
        Style::Markers(m) => {
            let bars: Vec<_> = s
                .points
                .iter()
                .filter_map(|p| p.err.map(|e| (p.x, e)))
                .filter(|(x, (lo, hi))| x.is_finite() && lo.is_finite() && hi.is_finite())
                .collect();
            if !bars.is_empty() {
                w.open(
                    "g",
                    &[
                        ("class", "error-bars".into()),
                        ("stroke", s.color.clone()),
                        ("stroke-width", "1.5".into()),
                    ],
                );
                for (x, (lo, hi)) in bars {
                    let (sx, slo, shi) = (f.sx(x), f.sy(lo), f.sy(hi));
                    w.empty(
                        "line",
                        &[
                            ("x1", num(sx)),
                            ("y1", num(slo)),
                            ("x2", num(sx)),
                            ("y2", num(shi)),
                        ],
                    );
                    for y in [slo, shi] {
                        w.empty(
                            "line",
                            &[
                                ("x1", num(sx - 4.0)),
                                ("y1", num(y)),
                                ("x2", num(sx + 4.0)),
                                ("y2", num(y)),
                            ],
                        );
                    }
                }
                w.close();
            }
            for p in s
                .points
                .iter()
                .filter(|p| p.x.is_finite() && p.y.is_finite())
            {
                marker(w, m, f.sx(p.x), f.sy(p.y), &s.color);
            }
        }
    }
    w.close();
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `svg` parsed by an XML parser: a panic if it is not well-formed.
    pub(crate) fn parse(svg: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed: {e}\n{svg}"))
    }

    /// The element whose `id` is `id`.
    pub(crate) fn by_id<'a, 'i>(
        doc: &'a roxmltree::Document<'i>,
        id: &str,
    ) -> Option<roxmltree::Node<'a, 'i>> {
        doc.descendants().find(|n| n.attribute("id") == Some(id))
    }

    /// Whether the whitespace-separated `class` attribute of `n` contains `class`.
    pub(crate) fn has_class(n: roxmltree::Node<'_, '_>, class: &str) -> bool {
        n.attribute("class")
            .is_some_and(|c| c.split_ascii_whitespace().any(|c| c == class))
    }

    /// The elements named `name` among `n` and its descendants.
    pub(crate) fn named<'a, 'i>(
        n: roxmltree::Node<'a, 'i>,
        name: &'a str,
    ) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
        n.descendants()
            .filter(move |e| e.is_element() && e.tag_name().name() == name)
    }

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(escape("a<b>&\"'\u{1}c"), "a&lt;b&gt;&amp;&quot;&apos;c");
        assert_eq!(escape("a\u{fffe}b\u{ffff}\u{fffd}"), "ab\u{fffd}");
        assert_eq!(escape("ρ = 0.5 µs"), "ρ = 0.5 µs");
    }

    #[test]
    fn numbers_are_short_and_never_negative_zero() {
        for (v, s) in [
            (1.0, "1"),
            (1.5, "1.5"),
            (1.234, "1.23"),
            (-0.001, "0"),
            (100.0, "100"),
            (-2.5, "-2.5"),
        ] {
            assert_eq!(num(v), s, "{v}");
        }
    }

    #[test]
    fn nice_steps_and_ticks() {
        for (raw, step) in [
            (0.13, 0.2),
            (0.1, 0.1),
            (3.0, 5.0),
            (7.0, 10.0),
            (1500.0, 2000.0),
        ] {
            assert!((nice_step(raw) - step).abs() < 1e-12, "{raw}");
        }
        assert_eq!(nice_ticks(0.0, 1.0, 5), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(nice_ticks(0.05, 0.95, 6), vec![0.2, 0.4, 0.6, 0.8]);
        assert_eq!(decimals(0.25), 2);
        assert_eq!(decimals(5.0), 0);
        assert_eq!(decimals(0.1), 1);
        let a = Axis::auto("y", 1.1, 19.7, true);
        assert_eq!((a.min, a.max), (0.0, 20.0));
        let a = Axis::auto("y", 3.0, 3.0, false);
        assert!(a.min < 3.0 && a.max > 3.0, "{a:?}");
        let a = Axis::auto("y", 0.0, 0.0, true);
        assert_eq!((a.min, a.max), (0.0, 1.0));
        let a = Axis::auto("y", f64::NAN, 1.0, false);
        assert_eq!((a.min, a.max), (0.0, 1.0));
    }

    fn sample_chart() -> Chart {
        Chart {
            id: "t".into(),
            title: "M/M/1 <test> & more".into(),
            subtitle: "μ = 1000/s".into(),
            x: Axis::fixed("load ρ", 0.0, 1.0),
            y: Axis::auto("time (ms)", 0.0, 10.0, true),
            series: vec![
                Series {
                    id: "theory".into(),
                    label: "theory".into(),
                    color: PALETTE[0].into(),
                    style: Style::Line { dashed: true },
                    points: vec![
                        Point::new(0.1, 1.0),
                        Point::new(0.5, 2.0),
                        Point::new(0.7, f64::NAN),
                        Point::new(0.8, 5.0),
                        Point::new(0.9, 10.0),
                    ],
                },
                Series {
                    id: "measured".into(),
                    label: "measured, 95% CI".into(),
                    color: PALETTE[1].into(),
                    style: Style::Markers(Marker::Circle),
                    points: vec![Point {
                        x: 0.5,
                        y: 2.1,
                        err: Some((1.9, 2.3)),
                    }],
                },
            ],
            notes: vec!["net = measured − overhead".into()],
        }
    }

    #[test]
    fn chart_is_well_formed_with_one_group_per_series() {
        let svg = sample_chart().render();
        let doc = parse(&svg);
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let theory = by_id(&doc, "series-theory").expect("theory group");
        assert!(has_class(theory, "series") && has_class(theory, "line"));
        // The NaN splits the line in two.
        assert_eq!(named(theory, "polyline").count(), 2);
        let m = by_id(&doc, "series-measured").expect("measured group");
        assert_eq!(named(m, "circle").count(), 1);
        assert!(m.descendants().any(|e| has_class(e, "error-bars")));
        // Title text survives escaping; legend lists both series.
        let root = doc.root();
        assert!(named(root, "text").any(|e| e.text() == Some("M/M/1 <test> & more")));
        assert_eq!(
            doc.descendants()
                .filter(|e| has_class(*e, "legend-entry"))
                .count(),
            2
        );
        assert!(named(root, "text").any(|e| e.text() == Some("load ρ")));
    }

    #[test]
    fn writer_closes_what_is_left_open() {
        let mut w = SvgWriter::new(10.0, 10.0, "t");
        w.open("g", &[("id", "a\"b".into())]);
        w.open("g", &[]);
        let doc = w.finish();
        let d = parse(&doc);
        assert_eq!(named(d.root(), "g").count(), 2);
        assert!(by_id(&d, "a\"b").is_some());
    }

    #[test]
    fn what_an_xml_parser_refuses_is_never_written() {
        // Markup, quotes and control characters in every place text reaches the document.
        let nasty = "<a href=\"x\">&amp; ' \u{1}\u{7}]]> --> \u{fffe}";
        let mut c = sample_chart();
        c.title = nasty.into();
        c.subtitle = nasty.into();
        c.x.label = nasty.into();
        c.y.label = nasty.into();
        c.notes = vec![nasty.into()];
        c.series[0].label = nasty.into();
        let svg = c.render();
        let doc = parse(&svg);
        let texts: Vec<&str> = named(doc.root(), "text").filter_map(|e| e.text()).collect();
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("<a href=\"x\">&amp; ' ]]> -->")),
            "{texts:?}"
        );
    }
}
