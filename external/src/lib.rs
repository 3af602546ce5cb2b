//! External models for evalcot: generators, judges and detectors that run as separate processes
//! ("workers") and speak evalcot-ext/1 (or /2), JSON lines over standard input and output (the protocol
//! is specified in `external/PROTOCOL.md`). [`ExtGenerator`], [`ExtJudge`] and [`ExtDetector`]
//! implement the harness traits over a worker, so every strategy and the scorer run on real
//! models unchanged; [`serve`] is the worker side for any in-process model.
//!
//! A crate of its own so that the harness stays free of process handling and the protocol can
//! evolve without touching the models.

pub mod detector;
pub mod generator;
pub mod judge;
pub mod serve;
pub mod wire;
pub mod worker;

pub use detector::ExtDetector;
pub use generator::ExtGenerator;
pub use judge::ExtJudge;
pub use worker::{set_workers, timeout_from_env, workers, PROTOCOL, PROTOCOL_2};

/// The command of an `ext:CMD` model spec, or `None` for any other spec (a name or folder).
pub fn command_of(spec: &str) -> Option<&str> {
    spec.strip_prefix("ext:")
}
