//! Shared, I/O-free building blocks of queuelab's `qserve` and `qload`.
//!
//! - [`units`]: parsing of rates (`10k`), counts and durations (`30s`, `250us`).
//! - [`samplers`]: seeded random service times and inter-arrival gaps.
//! - [`theory`]: closed forms for M/M/1, M/M/c, M/M/c/K, M/D/1, M/G/1 and M/M/∞.
//! - [`stats`]: HDR histogram helpers, confidence intervals and goodness of fit.
//! - [`http`]: limits and canned bytes both programs agree on.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod http;
pub mod samplers;
pub mod stats;
pub mod theory;
pub mod units;
