//! What a run counts, as one type that adds up.
//!
//! [`Counts`] holds every event count of qload: requests issued, sent and completed, failures by
//! kind, answers by status class, backlog waits, retries, connections opened. The same type is
//! counted by a worker for each interval of the time series, summed into the worker's totals,
//! summed over the workers by the coordinator, and summed over the parts of a `qload merge`:
//! counts of things that happened side by side or one after the other simply add
//! ([`AddAssign`]). Levels such as the peak of open connections are not counts (they add over
//! threads and parts but not over time) and are kept apart.
//!
//! The JSON result spells the counts out in [`Requests`] and [`Connections::opened`];
//! [`Counts::of`] and [`Counts::requests`] convert, here and nowhere else.
use std::ops::AddAssign;

use crate::result::{
    Connections, ErrorKind, ErrorsByKind, Requests, RunResult, StatusCounts, TlsErrors,
};

/// Event counts of an interval, a thread, a run or several merged runs (see the module docs).
///
/// All but `warmup` count measured requests only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Measured requests the schedule issued.
    pub issued: u64,
    /// Measured requests written to a connection (first write; a retry is not sent again).
    pub sent: u64,
    /// Measured requests sent while the schedule ran.
    pub sent_in_window: u64,
    /// Measured requests answered completely (any status).
    pub completed: u64,
    /// Requests sent during the warmup (not measured).
    pub warmup: u64,
    /// Measured requests that waited in the backlog for a connection.
    pub backlog_waits: u64,
    /// Measured requests retried on a fresh connection after a stale keep-alive one failed.
    pub retries: u64,
    /// Failed measured requests by kind.
    pub errors: ErrorsByKind,
    /// The `tls` ones among them by what went wrong.
    pub tls: TlsErrors,
    /// Completed measured requests by status class.
    pub status: StatusCounts,
    /// Connections opened (connect attempts that got a socket, reconnects included).
    pub opened: u64,
}

impl AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        // Destructured so that a new field cannot be forgotten here.
        let Counts {
            issued,
            sent,
            sent_in_window,
            completed,
            warmup,
            backlog_waits,
            retries,
            errors,
            tls,
            status,
            opened,
        } = o;
        self.issued += issued;
        self.sent += sent;
        self.sent_in_window += sent_in_window;
        self.completed += completed;
        self.warmup += warmup;
        self.backlog_waits += backlog_waits;
        self.retries += retries;
        self.errors += errors;
        self.tls += tls;
        self.status += status;
        self.opened += opened;
    }
}

impl Counts {
    /// Counts one failed request of `kind` (and, for a `tls` one, what went wrong).
    pub fn failed(&mut self, kind: ErrorKind) {
        self.errors.add(kind, 1);
        if let ErrorKind::Tls(what) = kind {
            self.tls.add(what, 1);
        }
    }

    /// The counts of a result (its `requests` and `connections.opened`).
    pub fn of(r: &RunResult) -> Self {
        let q = &r.requests;
        Self {
            issued: q.issued,
            sent: q.sent,
            sent_in_window: q.sent_in_window,
            completed: q.completed,
            warmup: q.warmup,
            backlog_waits: q.backlog_waits,
            retries: q.retries,
            errors: q.errors_by_kind,
            tls: q.tls_errors,
            status: q.status,
            opened: r.connections.opened,
        }
    }

    /// The `requests` object of a result; `errors` is the sum over the kinds (and
    /// `tls_first_error` is left `None`: it is no count).
    pub fn requests(&self) -> Requests {
        Requests {
            issued: self.issued,
            sent: self.sent,
            sent_in_window: self.sent_in_window,
            completed: self.completed,
            errors: self.errors.total(),
            errors_by_kind: self.errors,
            status: self.status,
            backlog_waits: self.backlog_waits,
            retries: self.retries,
            warmup: self.warmup,
            tls_errors: self.tls,
            tls_first_error: None,
        }
    }

    /// The `connections` object of a result, given the levels that are not counts.
    pub fn connections(&self, peak: u64, cap: u64) -> Connections {
        Connections {
            opened: self.opened,
            peak,
            cap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::TlsErrorKind;

    /// Counts with every field distinct and non-zero, derived from `base`.
    fn sample(base: u64) -> Counts {
        let mut errors = ErrorsByKind::default();
        for (i, kind) in [
            ErrorKind::Connect,
            ErrorKind::Timeout,
            ErrorKind::Read,
            ErrorKind::Write,
            ErrorKind::Parse,
            ErrorKind::Closed,
            ErrorKind::Backlog,
            ErrorKind::Unfinished,
        ]
        .into_iter()
        .enumerate()
        {
            errors.add(kind, base * 100 + i as u64 + 1);
        }
        let mut tls = TlsErrors::default();
        for (i, what) in [
            TlsErrorKind::Certificate,
            TlsErrorKind::Alert,
            TlsErrorKind::HandshakeTimeout,
            TlsErrorKind::NotTls,
            TlsErrorKind::Closed,
            TlsErrorKind::Other,
        ]
        .into_iter()
        .enumerate()
        {
            errors.add(ErrorKind::Tls(what), base * 10 + i as u64 + 1);
            tls.add(what, base * 10 + i as u64 + 1);
        }
        let mut status = StatusCounts::default();
        for (code, n) in [(200, 3), (302, 1), (404, 2), (500, 1), (503, 4), (99, 1)] {
            for _ in 0..n * base {
                status.add(code);
            }
        }
        Counts {
            issued: base * 1000 + 1,
            sent: base * 1000 + 2,
            sent_in_window: base * 1000 + 3,
            completed: base * 1000 + 4,
            warmup: base * 1000 + 5,
            backlog_waits: base * 1000 + 6,
            retries: base * 1000 + 7,
            errors,
            tls,
            status,
            opened: base * 1000 + 8,
        }
    }

    #[test]
    fn add_assign_adds_every_field() {
        let (a, b) = (sample(1), sample(2));
        let mut sum = a;
        sum += b;
        assert_eq!(sum.issued, 3002);
        assert_eq!(sum.issued, a.issued + b.issued);
        assert_eq!(sum.sent, a.sent + b.sent);
        assert_eq!(sum.sent_in_window, a.sent_in_window + b.sent_in_window);
        assert_eq!(sum.completed, a.completed + b.completed);
        assert_eq!(sum.warmup, a.warmup + b.warmup);
        assert_eq!(sum.backlog_waits, a.backlog_waits + b.backlog_waits);
        assert_eq!(sum.retries, a.retries + b.retries);
        assert_eq!(sum.opened, a.opened + b.opened);
        // Every kind of error and every status class, each checked by name.
        let (e, ea, eb) = (sum.errors, a.errors, b.errors);
        assert_eq!(e.connect, ea.connect + eb.connect);
        assert_eq!(e.timeout, ea.timeout + eb.timeout);
        assert_eq!(e.read, ea.read + eb.read);
        assert_eq!(e.write, ea.write + eb.write);
        assert_eq!(e.parse, ea.parse + eb.parse);
        assert_eq!(e.closed, ea.closed + eb.closed);
        assert_eq!(e.backlog, ea.backlog + eb.backlog);
        assert_eq!(e.unfinished, ea.unfinished + eb.unfinished);
        assert_eq!(e.tls, ea.tls + eb.tls);
        assert_eq!(e.total(), ea.total() + eb.total());
        let (t, ta, tb) = (sum.tls, a.tls, b.tls);
        assert_eq!(t.certificate, ta.certificate + tb.certificate);
        assert_eq!(t.alert, ta.alert + tb.alert);
        assert_eq!(
            t.handshake_timeout,
            ta.handshake_timeout + tb.handshake_timeout
        );
        assert_eq!(t.not_tls, ta.not_tls + tb.not_tls);
        assert_eq!(t.closed, ta.closed + tb.closed);
        assert_eq!(t.other, ta.other + tb.other);
        assert_eq!(t.total(), e.tls, "the breakdown adds up to the tls errors");
        let (s, sa, sb) = (sum.status, a.status, b.status);
        assert_eq!(s.s2xx, sa.s2xx + sb.s2xx);
        assert_eq!(s.s3xx, sa.s3xx + sb.s3xx);
        assert_eq!(s.s4xx, sa.s4xx + sb.s4xx);
        assert_eq!(s.s5xx, sa.s5xx + sb.s5xx);
        assert_eq!(s.s503, sa.s503 + sb.s503);
        assert_eq!(s.other, sa.other + sb.other);
        assert_eq!((s.s2xx, s.s5xx, s.s503), (9, 15, 12));
    }

    #[test]
    fn default_is_the_identity_and_the_sum_does_not_depend_on_the_order() {
        let parts = [sample(1), sample(2), sample(5)];
        let mut zero = Counts::default();
        zero += Counts::default();
        assert_eq!(zero, Counts::default());
        let mut same = parts[0];
        same += Counts::default();
        assert_eq!(same, parts[0]);
        let mut forward = Counts::default();
        for p in parts {
            forward += p;
        }
        let mut backward = Counts::default();
        for p in parts.into_iter().rev() {
            backward += p;
        }
        assert_eq!(forward, backward);
        assert_eq!(forward.completed, 8 * 1000 + 3 * 4);
    }

    #[test]
    fn counts_round_trip_through_the_json_types() {
        let c = sample(3);
        let mut r = crate::merge::tests::sample_result();
        r.requests = c.requests();
        r.connections = c.connections(17, 40);
        assert_eq!(r.requests.errors, c.errors.total());
        assert_eq!(r.requests.errors_by_kind, c.errors);
        assert_eq!(r.requests.tls_errors, c.tls);
        assert_eq!(r.connections.opened, c.opened);
        assert_eq!((r.connections.peak, r.connections.cap), (17, 40));
        assert_eq!(Counts::of(&r), c);
        // Through the JSON text too: every count has its key.
        let text = serde_json::to_string(&r).expect("serialize");
        let back: RunResult = serde_json::from_str(&text).expect("parse");
        assert_eq!(Counts::of(&back), c);
    }
}
