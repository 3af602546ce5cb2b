//! evalcot reports: summaries and tables computed from result files only. This crate never links
//! a model; it reads what runs wrote.

pub mod summary;

pub use summary::{Summary, TagCount};
