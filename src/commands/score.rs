use crate::cli::ScoreArgs;
use anyhow::anyhow;
use harness::detections_file::{read_detections, score_line};
use harness::results::write_results;
use harness::{results::ResultRecord, RuleConfig};
use indicatif::{ProgressBar, ProgressStyle};
use reports::Summary;
use std::path::{Path, PathBuf};

/// `evalcot score IMAGEDIR` or `evalcot score --detections FILE`.
pub fn run(args: &ScoreArgs) -> anyhow::Result<i32> {
    let cfg = args.rules.to_config().map_err(|e| anyhow!(e))?;
    // Detections files come from a detector evalcot does not know: nothing to record.
    let (records, scored_by, default_out, caveat) = match (&args.detections, &args.images) {
        (Some(dets), _) => (score_detections(dets, &cfg)?, None, None, None),
        (None, Some(dir)) => {
            let (records, name, caveat) = score_images(dir, args, &cfg)?;
            (records, Some(name), Some(dir.join("results.jsonl")), caveat)
        }
        (None, None) => return Err(anyhow!("give an IMAGEDIR or --detections FILE")),
    };
    let out = args
        .out
        .clone()
        .or(default_out)
        .ok_or_else(|| anyhow!("--out is required with --detections"))?;
    let (results_path, summary_path) = output_paths(&out);
    write_results(&results_path, &records)?;
    let summary = Summary::of_records(&records, &results_path)?;
    summary.write(&summary_path, scored_by.as_deref())?;
    if let Some(c) = caveat {
        println!("{c}");
    }
    print!("{}", summary.render_official());
    eprintln!(
        "wrote {} and {}",
        results_path.display(),
        summary_path.display()
    );
    Ok(0)
}

fn score_detections(path: &Path, cfg: &RuleConfig) -> anyhow::Result<Vec<ResultRecord>> {
    let lines = read_detections(path)?;
    let source = path.display().to_string();
    Ok(lines
        .iter()
        .map(|l| score_line(l, cfg, &source))
        .collect::<Result<Vec<_>, _>>()?)
}

/// The records, the name of the detector that scored them and the caveat to print first.
fn score_images(
    dir: &Path,
    args: &ScoreArgs,
    cfg: &RuleConfig,
) -> anyhow::Result<(Vec<ResultRecord>, String, Option<String>)> {
    models::open::check_device(args.device)?;
    // An external detector scores any images; only evalcot's own need to know where they came from.
    let world = match args.detector.as_deref().and_then(external::command_of) {
        Some(_) => None,
        None => harness::layout::world_source(dir)?,
    };
    let what = format!("the images of {}", dir.display());
    let (detector, caveat) = crate::open::evaluation_detector(
        args.detector.as_deref(),
        world.as_deref(),
        &what,
        &format!(
            " (no {} from `evalcot world suite`, no config.yaml of a run of evalcot's generators)",
            harness::layout::WORLD_MARKER
        ),
        args.device,
    )?;
    let total = harness::layout::read_image_dir(dir)?.samples.len();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "scoring {bar:40} {pos}/{len} images, {elapsed} elapsed, eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let scored =
        harness::scoring::score_image_dir(dir, detector.as_ref(), cfg, args.batch_size, &|n| {
            bar.set_position(n as u64)
        })?;
    bar.finish_and_clear();
    for w in &scored.warnings {
        eprintln!("warning: {w}");
    }
    for f in &scored.failures {
        eprintln!("failed: {f}");
    }
    let name = crate::open::scored_by(detector.name(), caveat.as_ref());
    Ok((scored.records, name, caveat))
}

/// `--out x.jsonl` writes x.jsonl and summary.json beside it; any other path is a folder.
pub fn output_paths(out: &Path) -> (PathBuf, PathBuf) {
    if out.extension().is_some_and(|e| e == "jsonl") {
        (out.to_path_buf(), out.with_file_name("summary.json"))
    } else {
        (out.join("results.jsonl"), out.join("summary.json"))
    }
}
