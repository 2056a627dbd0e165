//! The result of a run: what `--json` prints, what `qload merge` reads and writes, what the lab
//! consumes. The JSON keys are a contract: `schema/result.schema.json` is generated from these
//! types ([`json_schema`]), and tests hold real output and the checked-in file to it.
//!
//! Units are in the key names: `_us` microseconds, `_s` seconds, rates per second. Latency is
//! measured from the *intended* send time (`latency_us`, free of coordinated omission) and from
//! the actual write (`latency_uncorrected_us`); `send_lag_us` is their difference, actual write
//! minus intended time. The three histograms are serialized HDR histograms of nanoseconds
//! (`queuelab_common::stats::histogram_to_string`), so results merge exactly.
use std::collections::BTreeMap;
use std::ops::AddAssign;

use hdrhistogram::Histogram;
use queuelab_common::stats::{self, MeanCi, Summary};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Version of the result format.
pub const FORMAT_VERSION: u32 = 1;

/// The result of one run (or of several merged).
// The default is an empty result (format 0, no requests), a base for tests to fill in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RunResult {
    /// Version of this format ([`FORMAT_VERSION`]).
    #[schemars(extend("const" = FORMAT_VERSION))]
    pub format: u32,
    /// `open`, `closed` or `max` (`mixed` for a merge of results of different modes).
    #[schemars(extend("enum" = ["open", "closed", "max", "mixed"]))]
    pub mode: String,
    /// The URL requested.
    pub url: String,
    /// Configured aggregate arrival rate (open loop), else `null`; with a rate profile, its mean
    /// over the measurement (`duration_s`).
    pub target_rate: Option<f64>,
    /// Measured requests sent while the schedule ran, per second of `duration_s`.
    pub achieved_rate: f64,
    /// Measured requests completed per second of `duration_s`.
    pub throughput: f64,
    /// Length of the measurement (after the warmup, until the schedule stopped), seconds.
    pub duration_s: f64,
    /// Wall time of the whole run (warmup and drain included), seconds.
    pub elapsed_s: f64,
    /// Number of results merged into this one (1 for a run).
    #[schemars(range(min = 1))]
    pub parts: u64,
    /// Counts of requests.
    pub requests: Requests,
    /// Latency from the intended send time to the complete response, µs.
    pub latency_us: Latency,
    /// Latency from the actual write to the complete response, µs.
    pub latency_uncorrected_us: Latency,
    /// Actual write time minus intended time, µs.
    pub send_lag_us: SendLag,
    /// The check of the arrival process actually produced.
    pub arrivals: Arrivals,
    /// The queue's theory beside the measurement (`--mu`), else `null`.
    pub theory: Option<TheoryResult>,
    /// Connection counts.
    pub connections: Connections,
    /// The configuration that produced this result.
    pub config: ConfigEcho,
    /// Things that make the measurement doubtful (schedule not kept, errors, …).
    pub warnings: Vec<String>,
    /// Per-interval time series (also written by `--csv`).
    pub intervals: Vec<Interval>,
    /// Serialized HDR histogram of `latency_us`, in ns.
    pub histogram: String,
    /// Serialized HDR histogram of `latency_uncorrected_us`, in ns.
    pub histogram_uncorrected: String,
    /// Serialized HDR histogram of `send_lag_us`, in ns.
    pub histogram_send_lag: String,
    /// The answers' `Server-Timing` durations by metric name, µs, each over the measured answers
    /// that named it with a `dur` (at most [`MAX_TIMING_NAMES`] names; empty when no answer
    /// carried the header). Absent in results of older versions.
    #[serde(default)]
    pub server_timing: BTreeMap<String, DurationSummary>,
    /// The path: each answer's latency minus the sum of its `Server-Timing` durations, µs, over
    /// the measured answers that carried the header (`null` when none did). What the network,
    /// both kernels and both programs added to the server's own time.
    #[serde(default)]
    pub path_us: Option<DurationSummary>,
    /// The server's own time: the sum of each answer's `Server-Timing` durations, µs, over the
    /// same answers as `path_us` (`null` when none carried the header).
    #[serde(default)]
    pub server_us: Option<DurationSummary>,
    /// How the `Server-Timing` headers of the measured answers read.
    #[serde(default)]
    pub server_timing_headers: ServerTimingCounts,
    /// Start of the measured window (after the warmup), UTC, RFC 3339 with microseconds: the
    /// system clock read once when the run started, carried by the monotonic clock. After a
    /// merge, the earliest start (`null` when a part lacks it). Absent in results of older
    /// versions.
    #[serde(default)]
    pub start_utc: Option<String>,
    /// End of the measured window (when the schedule stopped; `duration_s` after the start),
    /// likewise. After a merge, the latest end.
    #[serde(default)]
    pub end_utc: Option<String>,
    /// The batches of the 95% interval of the mean latency, by completion time from the start
    /// of the window (see [`crate::batches`]), so that merges can recompute the interval.
    /// `null` after merging results of older versions, absent in them.
    #[serde(default)]
    pub batches: Option<crate::batches::Batches>,
    /// How long opening connections took, phase by phase. Absent in results of older versions.
    #[serde(default)]
    pub phases: Phases,
}

/// The phases of opening a connection, each a distribution over the connections whose phase
/// ended (connections that failed in a phase are not in it), µs. Every connection of the run
/// counts, warmup included, as in `connections.opened`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Phases {
    /// From the start of the connect to the TCP connection established (`null` when no
    /// connection was established).
    pub connect_us: Option<DurationSummary>,
    /// From the TCP connection established to the end of the TLS handshake (https only; `null`
    /// for plain http or when no handshake ended).
    pub tls_us: Option<DurationSummary>,
}

/// Most distinct `Server-Timing` metric names a run keeps (the rest are counted as dropped).
pub const MAX_TIMING_NAMES: usize = 8;

/// A distribution of durations in microseconds, with its histogram so that merges are exact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DurationSummary {
    /// Number of values.
    pub count: u64,
    /// Mean (from the exact sum, not the histogram).
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
    /// Serialized HDR histogram of the values, in ns.
    pub histogram: String,
}

impl DurationSummary {
    /// From a nanosecond histogram and the exact sum of the values it holds (µs): the mean
    /// comes from the sum, the percentiles from the histogram (within 0.1%).
    pub fn from_histogram(h: &Histogram<u64>, sum_us: f64) -> Self {
        let s: Summary = stats::summarize(h);
        Self {
            count: s.count,
            mean: if s.count > 0 {
                sum_us / s.count as f64
            } else {
                0.0
            },
            p50: s.p50,
            p90: s.p90,
            p99: s.p99,
            max: s.max,
            histogram: stats::histogram_to_string(h),
        }
    }
}

/// Counts of the `Server-Timing` headers of measured answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServerTimingCounts {
    /// Completed answers whose header gave at least one duration (the basis of `path_us`).
    pub carried: u64,
    /// Answers whose header could not be read (counted, otherwise ignored).
    pub malformed: u64,
    /// Durations not kept: their metric's name came after [`MAX_TIMING_NAMES`] names were
    /// already kept, or they came after the 16 durations one answer may carry (such a duration
    /// still counts in `server_us` and `path_us` in the first case, not in the second).
    pub dropped_names: u64,
    /// Answers whose durations added up to more than their latency (path recorded as 0).
    pub negative_path: u64,
}

/// Request counts. Every measured request issued ends as completed or as exactly one error:
/// `issued = completed + errors`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Requests {
    /// Measured requests the schedule issued.
    pub issued: u64,
    /// Measured requests written to a connection.
    pub sent: u64,
    /// Measured requests sent while the schedule ran (the basis of `achieved_rate`).
    pub sent_in_window: u64,
    /// Measured requests answered completely (any status).
    pub completed: u64,
    /// Measured requests that failed (sum of `errors_by_kind`).
    pub errors: u64,
    /// Failures by kind.
    pub errors_by_kind: ErrorsByKind,
    /// Completed requests by status class.
    pub status: StatusCounts,
    /// Measured requests that waited in the backlog for a connection.
    pub backlog_waits: u64,
    /// Measured requests sent a second time, on a fresh connection, because the kept-alive
    /// connection they were written on failed before any byte of the answer (the server had
    /// closed it). Each is still one request: it ends once, as completed or as an error. Absent
    /// in results of older versions (read as 0).
    #[serde(default)]
    pub retries: u64,
    /// Requests sent during the warmup (not measured).
    pub warmup: u64,
    /// The `tls` errors of `errors_by_kind` by what went wrong (they add up to it). Absent in
    /// results of older versions.
    #[serde(default)]
    pub tls_errors: TlsErrors,
    /// The text of the first TLS error a worker met (any request, warmup included; the
    /// first of the first worker that met one), else `null`. Absent in results of older
    /// versions.
    #[serde(default)]
    pub tls_first_error: Option<String>,
}

/// Failures by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ErrorsByKind {
    /// The connection could not be established (refused, unreachable, or not within the timeout).
    pub connect: u64,
    /// No complete answer within the timeout after the write.
    pub timeout: u64,
    /// Reading failed (e.g. reset by the peer).
    pub read: u64,
    /// Writing failed.
    pub write: u64,
    /// The answer was not valid HTTP/1.x, or too large.
    pub parse: u64,
    /// The server closed the connection before the answer was complete.
    pub closed: u64,
    /// The backlog of requests waiting for a connection was full.
    pub backlog: u64,
    /// Still in flight or waiting when the run ended (after the final timeout).
    pub unfinished: u64,
    /// The TLS handshake or the TLS records failed (https only; `tls_errors` says how).
    /// Absent in results of older versions.
    #[serde(default)]
    pub tls: u64,
}

/// One kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// See [`ErrorsByKind::connect`].
    Connect,
    /// See [`ErrorsByKind::timeout`].
    Timeout,
    /// See [`ErrorsByKind::read`].
    Read,
    /// See [`ErrorsByKind::write`].
    Write,
    /// See [`ErrorsByKind::parse`].
    Parse,
    /// See [`ErrorsByKind::closed`].
    Closed,
    /// See [`ErrorsByKind::backlog`].
    Backlog,
    /// See [`ErrorsByKind::unfinished`].
    Unfinished,
    /// See [`ErrorsByKind::tls`], with what went wrong.
    Tls(TlsErrorKind),
}

/// What went wrong in a `tls` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsErrorKind {
    /// See [`TlsErrors::certificate`].
    Certificate,
    /// See [`TlsErrors::alert`].
    Alert,
    /// See [`TlsErrors::handshake_timeout`].
    HandshakeTimeout,
    /// See [`TlsErrors::not_tls`].
    NotTls,
    /// See [`TlsErrors::closed`].
    Closed,
    /// See [`TlsErrors::other`].
    Other,
}

/// The `tls` errors by what went wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TlsErrors {
    /// The server's certificate was refused: an unknown issuer, expired or not yet valid, not
    /// for the host, or malformed.
    pub certificate: u64,
    /// The server sent a fatal TLS alert (e.g. `handshake_failure`, `no_application_protocol`,
    /// `certificate_required`).
    pub alert: u64,
    /// The handshake did not end within the timeout (counted from the start of the connect).
    pub handshake_timeout: u64,
    /// The server answered with bytes that are not TLS (e.g. a plain-HTTP server's `400`).
    pub not_tls: u64,
    /// The server closed or reset the connection during the handshake.
    pub closed: u64,
    /// Anything else: a TLS protocol error (a malformed or undecryptable record, an unexpected
    /// message), a handshake message too large for the connection's buffer.
    pub other: u64,
}

impl TlsErrors {
    /// Counts `n` errors of `kind`.
    pub fn add(&mut self, kind: TlsErrorKind, n: u64) {
        let slot = match kind {
            TlsErrorKind::Certificate => &mut self.certificate,
            TlsErrorKind::Alert => &mut self.alert,
            TlsErrorKind::HandshakeTimeout => &mut self.handshake_timeout,
            TlsErrorKind::NotTls => &mut self.not_tls,
            TlsErrorKind::Closed => &mut self.closed,
            TlsErrorKind::Other => &mut self.other,
        };
        *slot += n;
    }

    /// The sum over all kinds.
    pub fn total(&self) -> u64 {
        self.pairs().iter().map(|(_, n)| n).sum()
    }

    /// `(name, count)` pairs in a fixed order (the names are the JSON keys).
    pub fn pairs(&self) -> [(&'static str, u64); 6] {
        [
            ("certificate", self.certificate),
            ("alert", self.alert),
            ("handshake_timeout", self.handshake_timeout),
            ("not_tls", self.not_tls),
            ("closed", self.closed),
            ("other", self.other),
        ]
    }
}

/// Adds the counts of another interval, thread or part.
impl AddAssign for TlsErrors {
    fn add_assign(&mut self, o: Self) {
        // Destructured so that a new kind cannot be forgotten here.
        let Self {
            certificate,
            alert,
            handshake_timeout,
            not_tls,
            closed,
            other,
        } = o;
        self.certificate += certificate;
        self.alert += alert;
        self.handshake_timeout += handshake_timeout;
        self.not_tls += not_tls;
        self.closed += closed;
        self.other += other;
    }
}

impl ErrorsByKind {
    /// Counts one failure.
    pub fn add(&mut self, kind: ErrorKind, n: u64) {
        let slot = match kind {
            ErrorKind::Connect => &mut self.connect,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Read => &mut self.read,
            ErrorKind::Write => &mut self.write,
            ErrorKind::Parse => &mut self.parse,
            ErrorKind::Closed => &mut self.closed,
            ErrorKind::Backlog => &mut self.backlog,
            ErrorKind::Unfinished => &mut self.unfinished,
            ErrorKind::Tls(_) => &mut self.tls,
        };
        *slot += n;
    }

    /// The sum over all kinds.
    pub fn total(&self) -> u64 {
        self.connect
            + self.timeout
            + self.read
            + self.write
            + self.parse
            + self.closed
            + self.backlog
            + self.unfinished
            + self.tls
    }

    /// `(name, count)` pairs in a fixed order.
    pub fn pairs(&self) -> [(&'static str, u64); 9] {
        [
            ("connect", self.connect),
            ("timeout", self.timeout),
            ("read", self.read),
            ("write", self.write),
            ("parse", self.parse),
            ("closed", self.closed),
            ("backlog", self.backlog),
            ("unfinished", self.unfinished),
            ("tls", self.tls),
        ]
    }
}

/// Adds the counts of another interval, thread or part.
impl AddAssign for ErrorsByKind {
    fn add_assign(&mut self, o: Self) {
        // Destructured so that a new kind cannot be forgotten here.
        let Self {
            connect,
            timeout,
            read,
            write,
            parse,
            closed,
            backlog,
            unfinished,
            tls,
        } = o;
        self.connect += connect;
        self.timeout += timeout;
        self.read += read;
        self.write += write;
        self.parse += parse;
        self.closed += closed;
        self.backlog += backlog;
        self.unfinished += unfinished;
        self.tls += tls;
    }
}

/// Completed requests by status class; `503` is also counted in `5xx`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct StatusCounts {
    /// 200–299.
    #[serde(rename = "2xx")]
    pub s2xx: u64,
    /// 300–399.
    #[serde(rename = "3xx")]
    pub s3xx: u64,
    /// 400–499.
    #[serde(rename = "4xx")]
    pub s4xx: u64,
    /// 500–599.
    #[serde(rename = "5xx")]
    pub s5xx: u64,
    /// 503 Service Unavailable (the lab's "blocked"), a subset of `5xx`.
    #[serde(rename = "503")]
    pub s503: u64,
    /// Any other final status.
    pub other: u64,
}

impl StatusCounts {
    /// Counts one status code.
    pub fn add(&mut self, status: u16) {
        use crate::http::StatusClass as C;
        match C::of(status) {
            C::Success => self.s2xx += 1,
            C::Redirect => self.s3xx += 1,
            C::ClientError => self.s4xx += 1,
            C::ServerError => self.s5xx += 1,
            C::Other => self.other += 1,
        }
        if status == 503 {
            self.s503 += 1;
        }
    }
}

/// Adds the counts of another interval, thread or part.
impl AddAssign for StatusCounts {
    fn add_assign(&mut self, o: Self) {
        // Destructured so that a new class cannot be forgotten here.
        let Self {
            s2xx,
            s3xx,
            s4xx,
            s5xx,
            s503,
            other,
        } = o;
        self.s2xx += s2xx;
        self.s3xx += s3xx;
        self.s4xx += s4xx;
        self.s5xx += s5xx;
        self.s503 += s503;
        self.other += other;
    }
}

/// A latency distribution in microseconds, with a 95% confidence interval of the mean by batch
/// means (see [`crate::batches`]; `null` with fewer than ten non-empty batches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Latency {
    /// Number of values.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stdev: f64,
    /// Minimum.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
    /// Lower bound of the 95% CI of the mean (never below `min`, so never negative).
    pub ci95_low: Option<f64>,
    /// Upper bound of the 95% CI of the mean (never above `max`).
    pub ci95_high: Option<f64>,
}

impl Latency {
    /// From a nanosecond histogram and an optional interval of the mean (µs).
    pub fn from_histogram(h: &Histogram<u64>, ci: Option<MeanCi>) -> Self {
        let s: Summary = stats::summarize(h);
        Self {
            count: s.count,
            mean: s.mean,
            stdev: s.stdev,
            min: s.min,
            p50: s.p50,
            p90: s.p90,
            p99: s.p99,
            p999: s.p999,
            max: s.max,
            ci95_low: ci.map(|c| c.low),
            ci95_high: ci.map(|c| c.high),
        }
    }
}

/// Send lag (actual write − intended time), µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SendLag {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

impl SendLag {
    /// From a nanosecond histogram.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        let s = stats::summarize(h);
        Self {
            mean: s.mean,
            p50: s.p50,
            p99: s.p99,
            max: s.max,
        }
    }
}

/// The arrival check: the gaps between a thread's consecutive sends, each divided by that thread's
/// mean gap (its configured rate in open loop), are Exp(1) for a Poisson schedule that was kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Arrivals {
    /// Gaps in the sample behind the statistics.
    pub samples: u64,
    /// Mean gap between consecutive sends of the whole process (all threads), µs.
    pub gap_mean_us: Option<f64>,
    /// Mean of the normalized gaps (1 when the rate was kept).
    pub gap_mean_norm: Option<f64>,
    /// Coefficient of variation of the gaps (1 for Poisson, 0 for constant).
    pub gap_cv: Option<f64>,
    /// Kolmogorov–Smirnov distance of the normalized gaps from Exp(1).
    pub ks_d: Option<f64>,
    /// Its p-value (meaningful for Poisson arrivals).
    pub ks_p: Option<f64>,
}

/// What queueing theory predicts for the configured queue at the offered rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TheoryResult {
    /// Kendall notation (`M/M/1`, `M/M/2/10`, …).
    pub model: String,
    /// Arrival rate λ used (target rate in open loop, else the achieved rate), 1/s.
    pub lambda: f64,
    /// Service rate μ per server, 1/s.
    pub mu: f64,
    /// `c` or `inf`.
    pub servers: String,
    /// Capacity K, if any.
    pub capacity: Option<u32>,
    /// Service distribution (`exp`, `const`, `uniform`, `zero`).
    #[schemars(extend("enum" = ["exp", "const", "uniform", "zero"]))]
    pub service: String,
    /// Offered load per server.
    pub rho: f64,
    /// Mean response time, µs.
    pub mean_us: f64,
    /// Median response time, µs (where known).
    pub p50_us: Option<f64>,
    /// 90th percentile, µs (where known).
    pub p90_us: Option<f64>,
    /// 99th percentile, µs (where known).
    pub p99_us: Option<f64>,
    /// Blocking probability (M/M/c/K), else 0.
    pub blocking: f64,
    /// Measured fraction of completed requests answered 503.
    pub blocking_measured: f64,
    /// (measured − theory) / theory of the mean.
    pub rel_err_mean: f64,
    /// Same for the median.
    pub rel_err_p50: Option<f64>,
    /// Same for the 99th percentile.
    pub rel_err_p99: Option<f64>,
    /// Whether the theoretical mean lies in the measured mean's 95% CI.
    pub mean_in_ci: Option<bool>,
}

/// Connection counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Connections {
    /// Connections opened (connect attempts, reconnects included).
    pub opened: u64,
    /// Most connections open at once (summed over threads).
    pub peak: u64,
    /// The cap on open connections (all threads).
    pub cap: u64,
}

/// The configuration echoed in the result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ConfigEcho {
    /// HTTP method.
    pub method: String,
    /// `poisson`, `constant` or `uniform` (open loop), else `null`.
    #[schemars(extend("enum" = ["poisson", "constant", "uniform", null]))]
    pub arrival: Option<String>,
    /// Worker threads.
    pub threads: u64,
    /// Users (closed loop and max mode), else `null`.
    pub users: Option<u64>,
    /// Mean think time (closed loop), seconds.
    pub think_s: Option<f64>,
    /// Configured measured duration, seconds.
    pub duration_s: Option<f64>,
    /// Configured number of measured requests.
    pub requests: Option<u64>,
    /// Warmup, seconds.
    pub warmup_s: f64,
    /// Per-request timeout, seconds.
    pub timeout_s: f64,
    /// Seed.
    pub seed: u64,
    /// Busy-poll margin before each send, µs.
    pub spin_us: f64,
    /// Whether the threads polled without sleeping while requests were in flight (`--busy-poll`;
    /// absent from results written before the flag existed).
    #[serde(default)]
    pub busy_poll: bool,
    /// Whether threads were pinned to cores.
    pub pin: bool,
    /// Interval of the time series, seconds.
    pub interval_s: f64,
    /// The rate profile the open loop followed (`--rate 200:30s,100..5k:60s`), in the form that
    /// parses back to it; `null` for a constant rate (and in results of older versions).
    #[serde(default)]
    pub profile: Option<String>,
}

/// One interval of the time series (by completion time for latency, by write time for sends).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Interval {
    /// Start, seconds since the measurement began.
    pub t_s: f64,
    /// Length, seconds (the last one may be shorter).
    pub duration_s: f64,
    /// Measured requests written.
    pub sent: u64,
    /// Measured requests completed.
    pub completed: u64,
    /// Measured requests failed.
    pub errors: u64,
    /// Mean latency of the completions, µs (0 when none).
    pub mean_us: f64,
    /// Mean uncorrected latency, µs (0 when none).
    pub mean_uncorrected_us: f64,
    /// Median latency, µs (`null` when none, or after a merge).
    pub p50_us: Option<f64>,
    /// 99th percentile latency, µs (`null` when none, or after a merge).
    pub p99_us: Option<f64>,
    /// 90th percentile latency, µs (`null` when none, or after a merge). Absent in results of
    /// older versions.
    #[serde(default)]
    pub p90_us: Option<f64>,
    /// 99.9th percentile latency, µs (`null` when none, or after a merge). Absent in results of
    /// older versions.
    #[serde(default)]
    pub p999_us: Option<f64>,
    /// 99th percentile send lag, µs (`null` when no sends, or after a merge).
    pub send_lag_p99_us: Option<f64>,
    /// Largest send lag, µs.
    pub send_lag_max_us: f64,
    /// Mean path (latency minus the `Server-Timing` durations) of the completions that carried
    /// the header, µs (`null` when none did). Absent in results of older versions.
    #[serde(default)]
    pub path_mean_us: Option<f64>,
    /// Median path, µs (`null` when no completion carried the header, or after a merge).
    #[serde(default)]
    pub path_p50_us: Option<f64>,
    /// Mean of the summed `Server-Timing` durations, µs (`null` when none carried the header).
    #[serde(default)]
    pub server_mean_us: Option<f64>,
    /// The target rate of the interval: the mean intensity over it (the constant rate, or the
    /// mean of the rate profile over the interval), 0 where the schedule had stopped; summed
    /// over the parts of a merge. `null` in closed loop and `--max` (and in results of older
    /// versions).
    #[serde(default)]
    pub target_rate: Option<f64>,
}

/// The batch-means interval of the mean latency over `intervals` (`uncorrected`: from the write).
///
/// A run's own interval comes from batches whose length adapts to the run ([`crate::batches`]);
/// this one, over the time series, is the lab's (which sizes the intervals to its runs) and what
/// `qload merge` falls back on for results without batches (with at least
/// [`MIN_BATCHES`](crate::batches::MIN_BATCHES) of them, [`crate::batches::interval_ci`]).
///
/// Each interval is a batch, except that an interval shorter than half the longest one (the
/// stub after the schedule ends, which holds the last answers of the run) is added to the batch
/// before it. As a batch of its own, a handful of answers would weigh as much as a full interval
/// and widen the interval for nothing (at 800/s, two answers in a 3 ms stub made the half-width
/// 335 µs where the full batches alone give about 12).
pub fn batch_ci(intervals: &[Interval], uncorrected: bool) -> Option<MeanCi> {
    stats::batch_means_ci(&batches(intervals, uncorrected))
}

/// The number of batches [`batch_ci`] makes of `intervals`: the non-empty intervals, a short one
/// counted with the batch before it. Fewer than the intervals planned when a run was short, or
/// when intervals got no answer; the interval of the mean needs at least two.
pub fn batch_count(intervals: &[Interval]) -> usize {
    batches(intervals, false).len()
}

/// The (sum, count) batches of [`batch_ci`], in time order.
fn batches(intervals: &[Interval], uncorrected: bool) -> Vec<(f64, u64)> {
    batches_of(intervals, |i| {
        Some(if uncorrected {
            i.mean_uncorrected_us
        } else {
            i.mean_us
        })
    })
}

/// The batches of [`batch_ci`] for another per-interval mean: `mean` of an interval (`None`:
/// the interval has no such value and is skipped, like an empty one), weighted by its
/// completions, a short interval counted with the batch before it. Returns (sum, count) per
/// batch in time order, for [`stats::batch_means_ci`] or for a look at the batch means
/// themselves (`sum / count`), as the lab's stationarity check does with the latency
/// (`|i| Some(i.mean_us)`: the very batches of [`batch_ci`]).
pub fn batches_of(
    intervals: &[Interval],
    mean: impl Fn(&Interval) -> Option<f64>,
) -> Vec<(f64, u64)> {
    let full = intervals.iter().map(|i| i.duration_s).fold(0.0, f64::max);
    let mut batches: Vec<(f64, u64)> = Vec::with_capacity(intervals.len());
    for (i, mean) in intervals
        .iter()
        .filter(|i| i.completed > 0)
        .filter_map(|i| mean(i).map(|m| (i, m)))
    {
        let sum = mean * i.completed as f64;
        match batches.last_mut() {
            Some(last) if i.duration_s < 0.5 * full => {
                last.0 += sum;
                last.1 += i.completed;
            }
            _ => batches.push((sum, i.completed)),
        }
    }
    batches
}

/// The JSON Schema of [`RunResult`], generated from these types (their doc comments are the
/// descriptions); `schema/result.schema.json` is this, pretty-printed, and a test holds the two
/// together.
///
/// It describes what qload writes: every key is required, `null` where the type is optional,
/// except keys that state a `default` (`#[serde(default)]`): results written before they existed
/// lack them, and qload still reads those as the default. Unknown keys are refused, so the schema
/// catches a key renamed or left out on either side.
pub fn json_schema() -> schemars::Schema {
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .with_transform(DefaultsAreOptional)
        .into_generator()
        .into_root_schema_for::<RunResult>();
    schema.insert(
        "$id".into(),
        "https://example.invalid/queuelab/qload/result.schema.json".into(),
    );
    schema.insert("title".into(), "qload result".into());
    schema
}

/// Takes keys whose schema has a `default` out of `required` (see [`json_schema`]).
#[derive(Debug, Clone, Copy)]
struct DefaultsAreOptional;

impl schemars::transform::Transform for DefaultsAreOptional {
    fn transform(&mut self, schema: &mut schemars::Schema) {
        let defaulted: Vec<String> = schema
            .get("properties")
            .and_then(serde_json::Value::as_object)
            .map(|p| {
                p.iter()
                    .filter(|(_, s)| s.get("default").is_some())
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(required) = schema
            .get_mut("required")
            .and_then(serde_json::Value::as_array_mut)
        {
            required.retain(|k| !k.as_str().is_some_and(|k| defaulted.iter().any(|d| d == k)));
        }
        schemars::transform::transform_subschemas(self, schema);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(duration_s: f64, completed: u64, mean_us: f64) -> Interval {
        Interval {
            duration_s,
            completed,
            mean_us,
            mean_uncorrected_us: mean_us / 2.0,
            ..Interval::default()
        }
    }

    #[test]
    fn a_short_last_interval_joins_the_batch_before_it() {
        let full = [iv(1.0, 100, 10.0), iv(1.0, 100, 12.0), iv(1.0, 100, 14.0)];
        let plain = batch_ci(&full, false).expect("three batches");
        // Batch means 10, 12, 14: s = 2, half-width t(2)·2/√3.
        let half = stats::student_t_975(2) * 2.0 / 3f64.sqrt();
        assert!((plain.mean - 12.0).abs() < 1e-12);
        assert!((plain.high - plain.mean - half).abs() < 1e-9);

        // A 3 ms stub with two slow answers: folded into the last batch (14·100 + 100·2)/102,
        // still three batches, nearly the same interval; not a fourth batch of mean 100.
        let mut with_stub = full.to_vec();
        with_stub.push(iv(0.003, 2, 100.0));
        let ci = batch_ci(&with_stub, false).expect("three batches");
        let last = (14.0 * 100.0 + 100.0 * 2.0) / 102.0;
        let means = [10.0, 12.0, last];
        let m = means.iter().sum::<f64>() / 3.0;
        let s = (means.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 2.0).sqrt();
        let want = stats::student_t_975(2) * s / 3f64.sqrt();
        assert!((ci.high - ci.mean - want).abs() < 1e-9, "{ci:?}");
        assert!((ci.mean - (1000.0 + 1200.0 + 1400.0 + 200.0) / 302.0).abs() < 1e-12);
        // The uncorrected means take the same batches.
        let u = batch_ci(&with_stub, true).expect("three batches");
        assert!((u.mean - ci.mean / 2.0).abs() < 1e-12);

        // Half an interval or more is a batch of its own; empty intervals are skipped.
        let mut halves = full.to_vec();
        halves.push(iv(0.5, 50, 12.0));
        halves.push(iv(1.0, 0, 0.0));
        let ci = batch_ci(&halves, false).expect("four batches");
        let means = [10.0, 12.0, 14.0, 12.0];
        let s = (means.iter().map(|x| (x - 12.0f64).powi(2)).sum::<f64>() / 3.0).sqrt();
        let want = stats::student_t_975(3) * s / 2.0;
        assert!((ci.high - ci.mean - want).abs() < 1e-9, "{ci:?}");
        // A stub with nothing before it is the first batch.
        assert_eq!(batch_ci(&[iv(0.001, 3, 5.0)], false), None);

        // The batches counted are the ones the interval was made of.
        assert_eq!(batch_count(&full), 3);
        assert_eq!(batch_count(&with_stub), 3);
        assert_eq!(batch_count(&halves), 4);
        assert_eq!(batch_count(&[iv(0.001, 3, 5.0)]), 1);
        assert_eq!(batch_count(&[]), 0);

        // Another mean takes the same rule; intervals without it are skipped.
        assert_eq!(
            batches_of(&with_stub, |i| Some(i.mean_us)),
            batches(&with_stub, false)
        );
        let mut some = with_stub.clone();
        some[1].server_mean_us = Some(7.0);
        some[3].server_mean_us = Some(9.0);
        assert_eq!(
            batches_of(&some, |i| i.server_mean_us),
            vec![(700.0 + 18.0, 102)]
        );
    }
}
