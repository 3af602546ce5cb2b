use crate::cli::ScoreArgs;
use anyhow::{anyhow, Context};
use harness::detections_file::{read_detections, score_line};
use harness::results::{write_results, ResultRow};
use harness::{fsutil, results::ResultRecord};
use reports::Summary;
use std::path::{Path, PathBuf};

/// `evalcot score --detections FILE --out PATH`.
pub fn run(args: &ScoreArgs) -> anyhow::Result<i32> {
    let cfg = args.rules.to_config().map_err(|e| anyhow!(e))?;
    let lines = read_detections(&args.detections)?;
    let source = args.detections.display().to_string();
    let records = lines
        .iter()
        .map(|l| score_line(l, &cfg, &source))
        .collect::<Result<Vec<_>, _>>()?;
    let (results_path, summary_path) = output_paths(&args.out);
    write_results(&results_path, &records)?;
    let summary = summarise(&records)?;
    write_summary(&summary_path, &summary)?;
    print!("{}", summary.render_official());
    eprintln!(
        "wrote {} and {}",
        results_path.display(),
        summary_path.display()
    );
    Ok(0)
}

/// `--out x.jsonl` writes x.jsonl and summary.json beside it; any other path is a folder.
pub fn output_paths(out: &Path) -> (PathBuf, PathBuf) {
    if out.extension().is_some_and(|e| e == "jsonl") {
        (out.to_path_buf(), out.with_file_name("summary.json"))
    } else {
        (out.join("results.jsonl"), out.join("summary.json"))
    }
}

pub fn summarise(records: &[ResultRecord]) -> anyhow::Result<Summary> {
    let rows: Vec<ResultRow> = records
        .iter()
        .map(|r| ResultRow {
            tag: r.tag.clone(),
            correct: r.correct,
            metadata: r.metadata.clone(),
        })
        .collect();
    Summary::from_rows(&rows).context("no images to summarise")
}

pub fn write_summary(path: &Path, summary: &Summary) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(&summary.to_json())? + "\n";
    fsutil::write_atomic(path, text.as_bytes())?;
    Ok(())
}
