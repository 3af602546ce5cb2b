//! `evalcot world …`: the procedural world (renders, datasets, the ground-truth suite and the
//! contact sheet). The work is done by the `world` crate; this file only parses and reports.

use crate::cli::{KindArg, PromptsArgs, RenderArgs, SplitArg, WorldArgs, WorldCommand};
use anyhow::{bail, Context};
use std::path::Path;
use world::dataset::{self, DatasetKind};
use world::{nearmiss, SceneOptions};

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
