//! evalcot reports: summaries, tables, plots and the regression gate, computed from result files
//! only. This crate never links a model; it reads what runs wrote.

pub mod font;
pub mod gate;
pub mod html;
pub mod paper;
pub mod plots;
pub mod report;
pub mod run;
pub mod scaling;
pub mod stats;
pub mod summary;
pub mod tables;

pub use gate::{BaselineFile, GateOptions, GateReport};

/// The `summary.json` key that names the detector which scored a run.
pub const SCORED_BY_KEY: &str = "detector";
pub use report::{write_report, Written};
pub use run::Run;
pub use scaling::Scaling;
pub use summary::{Summary, TagCount};
pub use tables::{BootstrapOptions, Tables};
