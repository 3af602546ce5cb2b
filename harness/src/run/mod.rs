//! The run: suite → strategy (generator + judges) → images (official layout) → detector →
//! GenEval rules → results. Here live what every strategy works with ([`Context`], [`Job`],
//! [`Outcome`], [`Compute`]), the run's configuration, its records, the append-only run loop
//! ([`runner`]), sharding ([`shard`]) and merging shards ([`merge`]). The strategies themselves live in the `strategies`
//! crate, one file each.

pub mod candidates;
pub mod config;
mod context;
pub mod merge;
pub mod record;
pub mod runner;
pub mod shard;

pub use config::{Decision, Device, RunConfig, StrategyKind};
pub use context::{argmax, Compute, Context, Job, Outcome, Strategy};
