//! Reading qserve's `/metrics` around a measured run: the counters behind Little's law and the
//! per-class sojourn times.
//!
//! A scrape is one plain HTTP/1.1 `GET /metrics` over a fresh loopback connection with a
//! timeout ([`fetch`]), answered in well under a millisecond: it is made twice per point, off
//! every hot path, so std's blocking `TcpStream` is all it needs. [`Metrics::parse`] reads the
//! Prometheus text exposition (format 0.0.4): one sample per line, `name{label="value",…} value`,
//! comments and unknown series ignored. [`Snapshot`] keeps the series the lab uses, and
//! [`window`] takes the difference of two snapshots as a [`MetricsWindow`]:
//!
//! - `qserve_uptime_seconds` (gauge): the window's length by the server's clock;
//! - `qserve_in_system_seconds_total` (counter): ∫N dt, the number in system integrated over
//!   time, so that Δ∫N / Δuptime is the time-average number in system L over the window;
//! - `qserve_in_system` (gauge): the number in system at each edge of the window;
//! - `qserve_sojourn_seconds_sum` / `_count` (summary), in total and per class
//!   (`{class="k"}`): the mean sojourn of the requests served in the window.
//!
//! A server without `qserve_uptime_seconds` (not a qserve) gives no window; one without the
//! integral (an older qserve) gives a window without L; one without class labels, no classes.
use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::record::{ClassSojourn, MetricsWindow};

/// Longest a scrape may take, connect and answer together.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest answer read (qserve's is a few kB).
const MAX_BODY: u64 = 4 << 20;

/// `http://host:port/metrics` for a URL `http://host:port/anything` (the same server).
pub fn metrics_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    (scheme == "http" && !authority.is_empty()).then(|| format!("http://{authority}/metrics"))
}

/// The body of a `GET` of `url` (`http://host:port/path`), which must answer 200, within
/// `timeout` for the connect and as much again for the answer.
pub fn fetch(url: &str, timeout: Duration) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: only http:// URLs can be scraped"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("resolving {authority}"))?
        .next()
        .with_context(|| format!("{authority} has no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {authority}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .with_context(|| format!("writing to {authority}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    // Read until the head and Content-Length bytes of body are in (or the peer closes).
    loop {
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(e) => return Err(e).with_context(|| format!("reading from {authority}")),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() as u64 > MAX_BODY {
            bail!("{url}: answer larger than {MAX_BODY} bytes");
        }
        let complete = head_end(&buf)
            .and_then(|h| content_length(&buf[..h]).map(|len| h + len))
            .filter(|&end| buf.len() >= end);
        if let Some(end) = complete {
            buf.truncate(end);
            break;
        }
    }
    let head_len = head_end(&buf).with_context(|| format!("{url}: no complete HTTP answer"))?;
    let head = String::from_utf8_lossy(&buf[..head_len]);
    let status = head
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("{url}: no status line"))?;
    if status != "200" {
        bail!("{url}: status {status}");
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        bail!("{url}: chunked answers are not read");
    }
    Ok(String::from_utf8_lossy(&buf[head_len..]).into_owned())
}

/// The length of the head including its blank line, once it is complete.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The `Content-Length` of a head, if it has a valid one.
fn content_length(head: &[u8]) -> Option<usize> {
    String::from_utf8_lossy(head).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

/// One sample of the text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name.
    pub name: String,
    /// Its labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

/// A parsed `/metrics` answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    /// Every sample that parsed, in order.
    pub samples: Vec<Sample>,
}

impl Metrics {
    /// Parses the Prometheus text format; lines that do not parse (and comments) are skipped.
    pub fn parse(text: &str) -> Metrics {
        Metrics {
            samples: text.lines().filter_map(parse_line).collect(),
        }
    }

    /// The value of `name` with exactly the labels `labels` (in any order).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|s| s.value)
    }

    /// The samples of `name` that have exactly one label, `label`: (its value, the sample's
    /// value), in order.
    pub fn by_label(&self, name: &str, label: &str) -> Vec<(String, f64)> {
        self.samples
            .iter()
            .filter(|s| s.name == name && s.labels.len() == 1 && s.labels[0].0 == label)
            .map(|s| (s.labels[0].1.clone(), s.value))
            .collect()
    }
}

/// `name{a="x",b="y"} value [timestamp]`, or `None`.
fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let (key, r) = rest.split_once('=')?;
            let r = r.trim_start().strip_prefix('"')?;
            // The value, with the exposition's escapes \\, \" and \n.
            let mut value = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.trim().to_owned(), value));
            rest = &r[end + 1..];
        }
    }
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// The series of one scrape that the lab uses (`None`: the server has no such series).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// `qserve_uptime_seconds`.
    pub uptime_s: Option<f64>,
    /// `qserve_in_system_seconds_total`.
    pub in_system_total_s: Option<f64>,
    /// `qserve_in_system`.
    pub in_system: Option<f64>,
    /// `qserve_sojourn_seconds_sum`.
    pub sojourn_sum_s: Option<f64>,
    /// `qserve_sojourn_seconds_count`.
    pub sojourn_count: Option<f64>,
    /// Per class: (class, sum, count), class order.
    pub classes: Vec<(u8, f64, f64)>,
}

impl Snapshot {
    /// The lab's series out of a parsed scrape.
    pub fn of(m: &Metrics) -> Snapshot {
        let sums = m.by_label("qserve_sojourn_seconds_sum", "class");
        let counts = m.by_label("qserve_sojourn_seconds_count", "class");
        let mut classes: Vec<(u8, f64, f64)> = sums
            .iter()
            .filter_map(|(k, sum)| {
                let class: u8 = k.parse().ok()?;
                let count = counts.iter().find(|(c, _)| c == k)?.1;
                Some((class, *sum, count))
            })
            .collect();
        classes.sort_by_key(|c| c.0);
        classes.dedup_by_key(|c| c.0);
        Snapshot {
            uptime_s: m.get("qserve_uptime_seconds", &[]),
            in_system_total_s: m.get("qserve_in_system_seconds_total", &[]),
            in_system: m.get("qserve_in_system", &[]),
            sojourn_sum_s: m.get("qserve_sojourn_seconds_sum", &[]),
            sojourn_count: m.get("qserve_sojourn_seconds_count", &[]),
            classes,
        }
    }

    /// Scrapes `url` (a `/metrics` URL) once.
    pub fn scrape(url: &str) -> anyhow::Result<Snapshot> {
        Ok(Snapshot::of(&Metrics::parse(&fetch(url, SCRAPE_TIMEOUT)?)))
    }
}

/// The differences from `start` to `end`: `None` without an uptime in both, or when the server
/// went back in time (restarted between the scrapes). Counters that went down are dropped.
pub fn window(start: &Snapshot, end: &Snapshot, measured_only: bool) -> Option<MetricsWindow> {
    let uptime_s = end.uptime_s? - start.uptime_s?;
    if !(uptime_s > 0.0 && uptime_s.is_finite()) {
        return None;
    }
    let delta = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b >= a && (b - a).is_finite() => Some(b - a),
        _ => None,
    };
    let classes = end
        .classes
        .iter()
        .filter_map(|&(k, sum, count)| {
            let &(_, s0, c0) = start.classes.iter().find(|c| c.0 == k)?;
            (sum >= s0 && count >= c0).then(|| ClassSojourn {
                class: k,
                sum_s: sum - s0,
                count: (count - c0).round() as u64,
            })
        })
        .collect();
    Some(MetricsWindow {
        uptime_s,
        in_system_s: delta(start.in_system_total_s, end.in_system_total_s),
        in_system_edges: start.in_system.zip(end.in_system),
        sojourn_sum_s: delta(start.sojourn_sum_s, end.sojourn_sum_s),
        sojourn_count: delta(start.sojourn_count, end.sojourn_count).map(|c| c.round() as u64),
        classes,
        measured_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP qserve_requests_total Answers written, by outcome.
# TYPE qserve_requests_total counter
qserve_requests_total{outcome=\"served\"} 7
qserve_requests_total{outcome=\"blocked\"} 0
qserve_in_system 3
qserve_in_system_seconds_total 12.5
qserve_sojourn_seconds{quantile=\"0.5\"} 0.002
qserve_sojourn_seconds_sum 20.25
qserve_sojourn_seconds_count 10000
qserve_sojourn_seconds_sum{class=\"1\"} 15
qserve_sojourn_seconds_count{class=\"1\"} 6000
qserve_sojourn_seconds_sum{class=\"0\"} 5.25
qserve_sojourn_seconds_count{class=\"0\"} 4000
qserve_capacity +Inf
qserve_uptime_seconds 100.5 1700000000000
qserve_info{model=\"M/M/1\",service=\"a \\\"quoted\\\" \\\\ name\"} 1
not a sample line
{orphan=\"1\"} 2
";

    #[test]
    fn parses_names_labels_and_values() {
        let m = Metrics::parse(TEXT);
        assert_eq!(
            m.get("qserve_requests_total", &[("outcome", "served")]),
            Some(7.0)
        );
        assert_eq!(
            m.get("qserve_requests_total", &[]),
            None,
            "labels must match"
        );
        assert_eq!(m.get("qserve_uptime_seconds", &[]), Some(100.5));
        assert_eq!(m.get("qserve_capacity", &[]), Some(f64::INFINITY));
        assert_eq!(m.get("qserve_sojourn_seconds_sum", &[]), Some(20.25));
        assert_eq!(
            m.get("qserve_sojourn_seconds_sum", &[("class", "0")]),
            Some(5.25)
        );
        let info = m
            .samples
            .iter()
            .find(|s| s.name == "qserve_info")
            .expect("info");
        assert_eq!(
            info.labels,
            [
                ("model".to_owned(), "M/M/1".to_owned()),
                ("service".to_owned(), "a \"quoted\" \\ name".to_owned())
            ]
        );
        assert!(m.samples.iter().all(|s| !s.name.is_empty()));
        assert_eq!(m.get("qserve_missing", &[]), None);
    }

    #[test]
    fn snapshot_and_window() {
        let start = Snapshot::of(&Metrics::parse(TEXT));
        assert_eq!(start.uptime_s, Some(100.5));
        assert_eq!(start.classes, [(0, 5.25, 4000.0), (1, 15.0, 6000.0)]);
        let later = TEXT
            .replace("qserve_uptime_seconds 100.5", "qserve_uptime_seconds 110.5")
            .replace("seconds_total 12.5", "seconds_total 32.5")
            .replace("qserve_in_system 3", "qserve_in_system 1")
            .replace("_sum 20.25", "_sum 40.25")
            .replace("_count 10000", "_count 20000")
            .replace("{class=\"0\"} 5.25", "{class=\"0\"} 10.25")
            .replace("{class=\"0\"} 4000", "{class=\"0\"} 8000");
        let end = Snapshot::of(&Metrics::parse(&later));
        let w = window(&start, &end, true).expect("a window");
        assert_eq!(w.uptime_s, 10.0);
        assert_eq!(w.in_system_s, Some(20.0));
        assert_eq!(w.in_system_edges, Some((3.0, 1.0)));
        assert_eq!(
            (w.sojourn_sum_s, w.sojourn_count),
            (Some(20.0), Some(10000))
        );
        assert_eq!(
            w.classes,
            [
                ClassSojourn {
                    class: 0,
                    sum_s: 5.0,
                    count: 4000
                },
                ClassSojourn {
                    class: 1,
                    sum_s: 0.0,
                    count: 0
                }
            ]
        );
        assert!(w.measured_only);
        // Backwards in time (a restart): no window.
        assert_eq!(window(&end, &start, true), None);
    }

    #[test]
    fn missing_series_are_skipped() {
        // A foreign server: no uptime, no window.
        let foreign = Snapshot::of(&Metrics::parse("http_requests_total 5\n"));
        assert_eq!(foreign, Snapshot::default());
        assert_eq!(window(&foreign, &foreign, true), None);
        // An older qserve: uptime and sojourn, no integral and no classes.
        let old = "qserve_uptime_seconds 1\nqserve_sojourn_seconds_sum 1\nqserve_sojourn_seconds_count 10\n";
        let new = "qserve_uptime_seconds 3\nqserve_sojourn_seconds_sum 2\nqserve_sojourn_seconds_count 30\n";
        let w = window(
            &Snapshot::of(&Metrics::parse(old)),
            &Snapshot::of(&Metrics::parse(new)),
            false,
        )
        .expect("a window");
        assert_eq!((w.uptime_s, w.in_system_s), (2.0, None));
        assert_eq!(w.in_system_edges, None);
        assert_eq!(w.sojourn_count, Some(20));
        assert!(w.classes.is_empty() && !w.measured_only);
    }

    #[test]
    fn metrics_url_keeps_the_authority() {
        assert_eq!(
            metrics_url("http://127.0.0.1:8000/work?x=1").as_deref(),
            Some("http://127.0.0.1:8000/metrics")
        );
        assert_eq!(metrics_url("https://h/"), None);
        assert_eq!(metrics_url("no-scheme"), None);
    }

    #[test]
    fn fetch_reads_a_content_length_answer() {
        use std::io::BufRead as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            for status in ["200 OK", "404 Not Found"] {
                let (s, _) = listener.accept().expect("accept");
                let mut r = std::io::BufReader::new(s);
                let mut line = String::new();
                r.read_line(&mut line).expect("request line");
                assert_eq!(line, "GET /metrics HTTP/1.1\r\n");
                while line != "\r\n" {
                    line.clear();
                    r.read_line(&mut line).expect("header");
                }
                let body = "qserve_uptime_seconds 2\n";
                // Keep the connection open: the length ends the answer, not the close.
                write!(
                    r.get_mut(),
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .expect("answer");
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let url = format!("http://{addr}/metrics");
        let body = fetch(&url, SCRAPE_TIMEOUT).expect("fetched");
        assert_eq!(body, "qserve_uptime_seconds 2\n");
        let e = fetch(&url, SCRAPE_TIMEOUT).expect_err("404");
        assert!(e.to_string().contains("404"), "{e}");
        server.join().expect("server");
    }
}
