//! `evalcot world …`: the procedural world (renders, datasets, the ground-truth suite and the
//! contact sheet). The work is done by the `world` crate; this file only parses and reports.

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use world::dataset::{self, DatasetKind};
use world::{nearmiss, SceneOptions, Style};

/// `--style`: how scenes are drawn.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StyleArg {
    /// Textured backgrounds and varied glyphs (the detector's and the ground truth's world).
    Natural,
    /// Flat background, one glyph size, grid-aligned (the generator's world).
    Canonical,
}

impl From<StyleArg> for Style {
    fn from(s: StyleArg) -> Style {
        match s {
            StyleArg::Natural => Style::Natural,
            StyleArg::Canonical => Style::Canonical,
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
    pub select: crate::cli::SelectArgs,
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

pub fn run(args: &WorldArgs) -> anyhow::Result<i32> {
    match &args.command {
        WorldCommand::Render(a) => render(a),
        WorldCommand::Dataset(a) => {
            let kind = match a.kind {
                KindArg::Prompts => DatasetKind::Prompts,
                KindArg::Detector => DatasetKind::Detector,
            };
            let start = std::time::Instant::now();
            let n = dataset::write_dataset(&a.out, kind, a.n, a.seed, a.style.into(), true)
                .with_context(|| format!("writing dataset to {}", a.out.display()))?;
            eprintln!(
                "wrote {n} {} images and annotations.jsonl to {} in {:.1}s",
                kind.as_str(),
                a.out.display(),
                start.elapsed().as_secs_f64()
            );
            Ok(0)
        }
        WorldCommand::Suite(a) => {
            if a.images_per_prompt == 0 {
                bail!("--images-per-prompt must be at least 1");
            }
            let selection = a.select.to_selection();
            let r = dataset::write_suite(
                &a.out,
                &selection,
                a.images_per_prompt,
                a.seed,
                a.style.into(),
                true,
            )
            .with_context(|| format!("writing the ground-truth suite to {}", a.out.display()))?;
            eprintln!(
                "wrote {} images of {} prompts to {} and {}",
                r.images,
                r.prompts,
                a.out.display(),
                r.detections.display()
            );
            Ok(0)
        }
        WorldCommand::Prompts(a) => prompts(a),
        WorldCommand::Sheet(a) => {
            let sheet = dataset::contact_sheet(a.seed);
            write_png(&sheet, &a.out)?;
            eprintln!("wrote {}", a.out.display());
            Ok(0)
        }
    }
}

fn prompts(a: &PromptsArgs) -> anyhow::Result<i32> {
    use world::prompts::{split, training_prompts, DEFAULT_COUNT};
    let (train, val) = split(&training_prompts(DEFAULT_COUNT, a.seed), a.seed);
    let pool = match a.split {
        SplitArg::Train => train,
        SplitArg::Val => val,
    };
    // Distinct strings, grouped by tag in the official order (as evaluation_metadata.jsonl).
    let mut seen = std::collections::HashSet::new();
    let mut lines = String::new();
    let mut written = 0;
    for &tag in harness::Tag::ALL {
        let mut kept = 0;
        for m in pool.iter().filter(|m| m.tag == tag) {
            if a.per_tag.is_some_and(|k| kept >= k) {
                break;
            }
            if seen.insert(m.prompt.clone()) {
                lines.push_str(&m.to_json_string());
                lines.push('\n');
                kept += 1;
                written += 1;
            }
        }
    }
    harness::fsutil::write_atomic(&a.out, lines.as_bytes())?;
    eprintln!("wrote {written} prompts to {}", a.out.display());
    Ok(0)
}

fn render(a: &RenderArgs) -> anyhow::Result<i32> {
    let meta = world::parse_prompt(&a.prompt)?;
    let opts = SceneOptions {
        distractors: a.distractors,
        style: a.style.into(),
    };
    let (scene, broken) = if a.near_miss {
        let nm = nearmiss::near_miss(&meta, a.seed, &opts)
            .with_context(|| format!("no near miss for \"{}\"", a.prompt))?;
        (nm.scene, Some(format!("{}: {}", nm.kind, nm.description)))
    } else {
        let scene = world::scene_for_metadata(&meta, a.seed, &opts)
            .with_context(|| format!("rendering \"{}\"", a.prompt))?;
        (scene, None)
    };
    write_png(&scene.image, &a.out)?;
    let mut report = serde_json::json!({
        "prompt": a.prompt,
        "seed": a.seed,
        "metadata": meta.raw(),
        "objects": scene.objects_json(),
    });
    if let Some(b) = broken {
        report["near_miss"] = serde_json::Value::from(b);
    }
    println!("{report}");
    eprintln!("wrote {}", a.out.display());
    Ok(0)
}

fn write_png(image: &world::image::RgbImage, path: &Path) -> anyhow::Result<()> {
    let bytes = dataset::png_bytes(image, path)?;
    harness::fsutil::write_atomic(path, &bytes)?;
    Ok(())
}
