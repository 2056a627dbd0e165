//! Human units on the command line: rates and counts with SI suffixes (`10k`, `1.5M`),
//! durations with unit suffixes (`250us`, `10ms`, `30s`, `2m`, `1h`; a bare number is seconds).
use std::time::Duration;

/// A value that could not be parsed; the message names the input and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: {reason}")]
pub struct UnitError {
    /// What kind of value was expected ("rate", "duration", "count").
    pub what: &'static str,
    /// The input as given.
    pub input: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

/// Parses a positive finite rate in events per second: `500`, `2.5k`, `1M`, `10k/s`.
pub fn parse_rate(s: &str) -> Result<f64, UnitError> { todo!() }

/// Parses a non-negative integer count with an optional SI suffix: `1000`, `10k`, `2M`.
pub fn parse_count(s: &str) -> Result<u64, UnitError> { todo!() }

/// Parses a duration: `250ns`, `250us` (or `µs`), `10ms`, `30s`, `2m`, `1h`, a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> { todo!() }

/// Formats a duration compactly for humans (`250us`, `1.5ms`, `30s`).
pub fn format_duration(d: Duration) -> String { todo!() }
