//! `evalcot world …`: its command-line definitions.

use super::SelectArgs;
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

/// `--style`: how scenes are drawn.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StyleArg {
    /// Textured backgrounds and varied glyphs (the detector's and the ground truth's world).
    Natural,
    /// Flat background, one glyph size, grid-aligned (the generator's world).
    Canonical,
}

impl From<StyleArg> for world::Style {
    fn from(s: StyleArg) -> world::Style {
        match s {
            StyleArg::Natural => world::Style::Natural,
            StyleArg::Canonical => world::Style::Canonical,
        }
    }
}

#[derive(Debug, Args)]
pub struct WorldArgs {
    #[command(subcommand)]
    pub command: WorldCommand,
}

#[derive(Debug, Subcommand)]
pub enum WorldCommand {
    /// Render one prompt (any of GenEval's six templates) to a PNG; prints the objects as JSON.
    Render(RenderArgs),
    /// Write a training dataset: DIR/images/<07d>.png and DIR/annotations.jsonl.
    Dataset(DatasetArgs),
    /// Write ground-truth renders of the 553 official prompts in the official layout, plus
    /// DIR/detections.jsonl (exact detections for `evalcot score --detections`).
    Suite(WorldSuiteArgs),
    /// Write a contact sheet PNG of all 80 classes in five colours.
    Sheet(SheetArgs),
    /// Write training-distribution prompts (never the official ones) as a metadata JSONL that
    /// `evalcot run FILE` takes: a development suite for choosing settings without the 553.
    Prompts(PromptsArgs),
}

/// `--split`: which side of the train/validation split of the training prompts.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SplitArg {
    /// The prompts models train on.
    Train,
    /// Held out from training (what `eval judge` and development runs use).
    Val,
}

#[derive(Debug, Args)]
pub struct PromptsArgs {
    /// Seed of the training-prompt pool and of its split: the training seed of the model to be
    /// evaluated (the shipped base generator's is 21, `configs/generator-canonical8k-gpu.yaml`).
    /// Prompts drawn elsewhere from other seeds (DPO pairs, judge data) may still overlap.
    #[arg(long)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = SplitArg::Val)]
    pub split: SplitArg,
    /// At most this many distinct prompts of each tag.
    #[arg(long)]
    pub per_tag: Option<usize>,
    /// Output metadata JSONL.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The prompt, e.g. "a photo of a red dog left of a cake".
    #[arg(long)]
    pub prompt: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output PNG.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Extra objects of classes the prompt does not mention.
    #[arg(long, default_value_t = 0)]
    pub distractors: usize,
    /// Render a near miss instead: a scene that breaks exactly one clause of the prompt.
    #[arg(long)]
    pub near_miss: bool,
    #[arg(long, value_enum, default_value_t = StyleArg::Natural)]
    pub style: StyleArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// Scenes of training prompts (prompt → image).
    Prompts,
    /// 0–5 random objects per image (detector training).
    Detector,
}

#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// Number of images.
    #[arg(long)]
    pub n: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = KindArg::Prompts)]
    pub kind: KindArg,
    #[arg(long, value_enum, default_value_t = StyleArg::Natural)]
    pub style: StyleArg,
}

#[derive(Debug, Args)]
pub struct WorldSuiteArgs {
    #[arg(long, default_value_t = 4)]
    pub images_per_prompt: usize,
    /// Only these prompts of the 553 (their renders are the same as in the whole suite).
    #[command(flatten)]
    pub select: SelectArgs,
    #[arg(long, default_value_t = 1234)]
    pub seed: u64,
    /// Output folder (official GenEval layout).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = StyleArg::Natural)]
    pub style: StyleArg,
}

#[derive(Debug, Args)]
pub struct SheetArgs {
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output PNG.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}
