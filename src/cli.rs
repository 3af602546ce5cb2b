//! Command-line definitions (clap). Only parsing and light validation live here.

use clap::{Args, Parser, Subcommand};
use harness::{RuleConfig, Selection, Tag};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "evalcot",
    version,
    about = "Benchmark harness for reasoning strategies in step-wise image generation (GenEval)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score detections made elsewhere with the exact GenEval rules.
    Score(ScoreArgs),
    /// Print the GenEval summary of any results.jsonl (ours or the official evaluator's).
    Summary(SummaryArgs),
    /// Validate a GenEval metadata file and list the selected prompts.
    Suite(SuiteArgs),
    /// The procedural world: renders, datasets, the ground-truth suite, the contact sheet.
    World(crate::commands::world::WorldArgs),
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Detections JSONL, one image per line: {"folder", "image", "metadata", "detections": [{"class", "score", "box", "color"}]}.
    #[arg(long, value_name = "FILE")]
    pub detections: PathBuf,
    /// Where to write results: a `.jsonl` file (summary.json goes beside it) or a folder
    /// (results.jsonl and summary.json go inside).
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    #[command(flatten)]
    pub rules: RuleArgs,
}

/// The official evaluator's five `--options`.
#[derive(Debug, Args, Clone)]
pub struct RuleArgs {
    /// Keep detections with score strictly above this.
    #[arg(long, default_value_t = 0.3)]
    pub threshold: f64,
    /// The same, for every class of counting prompts.
    #[arg(long, default_value_t = 0.9)]
    pub counting_threshold: f64,
    /// At most this many detections per class.
    #[arg(long, default_value_t = 16)]
    pub max_objects: usize,
    /// Greedy NMS IoU threshold; 1.0 disables NMS.
    #[arg(long, default_value_t = 1.0)]
    pub max_overlap: f64,
    /// Position margin as a fraction of the summed box sizes.
    #[arg(long, default_value_t = 0.1)]
    pub position_threshold: f64,
}

impl RuleArgs {
    pub fn to_config(&self) -> Result<RuleConfig, String> {
        let cfg = RuleConfig {
            threshold: self.threshold,
            counting_threshold: self.counting_threshold,
            max_objects: self.max_objects,
            max_overlap: self.max_overlap,
            position_threshold: self.position_threshold,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// A results.jsonl file.
    pub results: PathBuf,
    /// Print summary.json instead of the official text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// Metadata JSONL; the official 553 prompts when omitted.
    #[arg(long, value_name = "FILE")]
    pub metadata: Option<PathBuf>,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Print one metadata JSON line per prompt instead of a table.
    #[arg(long)]
    pub jsonl: bool,
}

/// Which prompts to use.
#[derive(Debug, Args, Clone, Default)]
pub struct SelectArgs {
    /// Comma-separated tags, e.g. `counting,position`.
    #[arg(long, value_parser = parse_tags)]
    pub tags: Option<TagList>,
    /// Prompt indices (0-based, inclusive ranges), e.g. `0-9,20`.
    #[arg(long, value_parser = parse_indices)]
    pub indices: Option<IndexRanges>,
    /// At most this many prompts of each tag.
    #[arg(long)]
    pub per_tag: Option<usize>,
    /// At most this many prompts in all.
    #[arg(long)]
    pub limit: Option<usize>,
}

impl SelectArgs {
    pub fn to_selection(&self) -> Selection {
        Selection {
            tags: self.tags.clone().map(|t| t.0).unwrap_or_default(),
            indices: self.indices.clone().map(|i| i.0).unwrap_or_default(),
            per_tag: self.per_tag,
            limit: self.limit,
        }
    }
}

/// A comma-separated tag list as one argument value (clap would read `Vec<T>` as many values).
#[derive(Debug, Clone)]
pub struct TagList(pub Vec<Tag>);

/// Index ranges as one argument value.
#[derive(Debug, Clone)]
pub struct IndexRanges(pub Vec<std::ops::RangeInclusive<usize>>);

fn parse_tags(s: &str) -> Result<TagList, String> {
    Selection::parse_tags(s).map(TagList)
}

fn parse_indices(s: &str) -> Result<IndexRanges, String> {
    Selection::parse_indices(s).map(IndexRanges)
}
