//! evalcot's core: the GenEval suite, its exact scoring rules, the official folder layout and
//! result records. Every other evalcot crate depends on this one and on nothing above it.
//!
//! Flow: suite → strategy → images → detector → [`rules`] → [`results`] → reports.

pub mod alloc;
pub mod bank;
pub mod config;
pub mod detections_file;
pub mod detector;
pub mod error;
pub mod evidence;
pub mod fsutil;
pub mod generator;
pub mod judge;
pub mod layout;
pub mod metadata;
pub mod metrics;
pub mod npsort;
pub mod profile;
pub mod pyjson;
pub mod results;
pub mod rng;
pub mod rules;
pub mod run;
pub mod scoring;
pub mod suite;
pub mod summary;
pub mod testkit;
pub mod vocab;
pub mod waves;

pub use error::{Error, Result};
pub use metadata::{Exclude, Include, Metadata, Position};
pub use rules::{Detection, Judgement, RuleConfig};
pub use suite::{PromptEntry, Selection, Suite};
pub use vocab::{ClassId, Color, Relation, Tag};
