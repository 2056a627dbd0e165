//! The queueing lab: sweep the load over a queue server, compare every point with theory, and
//! draw it (`qlab sweep`, `qlab report`).
//!
//! The model: `qserve` emulates a FIFO queue with `c` servers, service rate μ per server, an
//! optional capacity K and a service distribution; qload sends a Poisson stream at rate λ. The
//! response time qload measures from each request's intended send time is then the sojourn time
//! of that queue, plus the fixed cost of the path. At each load ρ = λ/(cμ) the lab measures both
//! (a run against the queue, and one at the same rate against a zero-service endpoint) and
//! compares the difference with the closed forms of `queuelab_common::theory`: mean, percentiles,
//! the whole distribution (Kolmogorov–Smirnov distance) and, with a capacity, blocking.
//!
//! - [`cli`]: flags and the two commands ([`sweep_main`], [`report_main`]).
//! - [`sweep`]: the plan (loads, durations, warm-ups) and the measuring loop.
//! - [`measure`]: one qload run, and the adapter from qload's result to [`record::PointMeasurement`].
//! - [`record`]: the layout of `results.json`.
//! - [`analysis`]: measured against predicted, the overhead correction.
//! - [`checks`]: the self-checks of a point (arrivals, lags, stalls, stationarity, errors).
//! - [`table`], [`plots`], [`svg`]: the outputs (CSV and text table, SVG charts).
//! - [`html`]: `index.html`, the self-contained page of a sweep (setup, summary, points,
//!   plots, checks).
//! - [`scrape`]: qserve's `/metrics` around a run (Little's law, the classes).
//! - [`report`]: everything derived from `results.json`; the sweep ends by calling it.
//! - [`progress`]: the sweep's progress on stderr (a bar on a terminal, plain lines elsewhere).
//! - [`closed`]: closed sweeps over the number of users (`--users`, `--think`): X(N), R(N)
//!   against MVA or the simulator, with the asymptotic bounds.
//! - [`variability`]: sweeps of the service's C² at one load (`--cv2`), against
//!   Pollaczek–Khinchine and simulated tails.
//! - [`netsweep`]: sweeps of an open network of stations (`--network FILE`) over the arrival
//!   rate, per station against the product form or the simulator, with Burke's check.
//! - [`servers`]: the qserve and zero-service twin a sweep starts for itself, and the CPU split.

pub mod analysis;
pub mod checks;
pub mod cli;
pub mod closed;
pub mod html;
pub mod measure;
pub mod netsweep;
pub mod plots;
pub mod progress;
pub mod record;
pub mod report;
pub mod scrape;
pub mod servers;
pub mod svg;
pub mod sweep;
pub mod table;
pub mod variability;

pub use cli::{ReportArgs, SweepArgs, report_main, sweep_main};
