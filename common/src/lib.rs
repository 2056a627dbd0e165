//! Shared, I/O-free building blocks of queuelab's `qserve` and `qload`.
//!
//! - [`model`]: the queue model (μ, servers, capacity, service), its Kendall name and its flags.
//! - [`units`]: parsing of rates (`10k`), counts and durations (`30s`, `250us`).
//! - [`samplers`]: seeded random service times and inter-arrival gaps.
//! - [`profile`]: load shapes, a rate that changes over time (`200:30s,100..5k:60s`): λ(t), Λ(t)
//!   and its inverse.
//! - [`network`]: open networks of queues (stations, routing, the draws of a route).
//! - [`theory`]: closed forms for M/M/1, M/M/c, M/M/c/K, M/D/1, M/G/1 and M/M/∞.
//! - [`stats`]: HDR histogram helpers, confidence intervals and goodness of fit.
//! - [`http`]: limits and canned bytes both programs agree on.
//!
//! ```
//! use queuelab_common::model::{Load, Model};
//! use queuelab_common::samplers::{rng, ServiceKind};
//! use queuelab_common::theory;
//! use queuelab_common::units::{parse_duration, parse_rate};
//!
//! let lambda = parse_rate("500").unwrap();
//! let mu = parse_rate("1k").unwrap();
//! assert_eq!(parse_duration("250us").unwrap().as_nanos(), 250_000);
//! let model = Model::parse("M/M/1", mu).unwrap();
//! assert_eq!(model.lambda(Load::Rho(0.5)), lambda);
//! let theory = theory::predict(&model, lambda).unwrap();
//! assert_eq!(theory.model, "M/M/1");
//! assert!((theory.mean_s - 0.002).abs() < 1e-12); // 1/(μ − λ)
//! let _service = queuelab_common::samplers::ServiceSampler::new(ServiceKind::Exp, mu)
//!     .sample_ns(&mut rng(42, 0));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod http;
pub mod model;
pub mod network;
pub mod profile;
pub mod samplers;
pub mod sim;
pub mod stats;
pub mod theory;
pub mod units;
