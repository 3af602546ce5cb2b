use crate::cli::MergeArgs;
use crate::commands::score::{summarise, write_summary};

/// `evalcot merge SHARD_DIR… --out RUN`.
pub fn run(args: &MergeArgs) -> anyhow::Result<i32> {
    // The shards come from one build and one resolved config, so one scoring detector.
    let scored_by = args.shards.first().and_then(|s| reports::run::scored_by(s));
    let summary_of = |staging: &std::path::Path, records: &[harness::results::ResultRecord]| {
        let summary = summarise(records).map_err(|e| {
            harness::Error::invalid(
                harness::error::Location::file(args.out.display().to_string()),
                e.to_string(),
            )
        })?;
        write_summary(
            &staging.join("summary.json"),
            &summary,
            scored_by.as_deref(),
        )
        .map_err(|e| {
            harness::Error::invalid(
                harness::error::Location::file(staging.join("summary.json").display().to_string()),
                e.to_string(),
            )
        })
    };
    let records = strategies::shard::merge(&args.shards, &args.out, &summary_of)?;
    let summary = summarise(&records)?;
    print!("{}", summary.render_official());
    eprintln!(
        "merged {} shards ({} images) into {}",
        args.shards.len(),
        records.len(),
        args.out.display()
    );
    Ok(0)
}
