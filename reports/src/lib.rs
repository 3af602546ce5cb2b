//! evalcot reports: summaries, tables, plots and the regression gate, computed from result files
//! only. This crate never links a model; it reads what runs wrote.

pub mod font;
pub mod gate;
pub mod html;
pub mod paired;
pub mod paper;
pub mod plots;
pub mod report;
pub mod run;
pub mod scaling;
pub mod stats;
/// The official GenEval summary (`harness::summary`), here too for readers of reports.
pub use harness::summary;
pub mod tables;
pub mod verifier;

pub use gate::{BaselineFile, GateOptions, GateReport};

pub use harness::summary::SCORED_BY_KEY;
pub use report::{write_report, Written};
pub use run::Run;
pub use scaling::Scaling;
pub use summary::{Summary, TagCount};
pub use tables::{BootstrapOptions, Tables};
