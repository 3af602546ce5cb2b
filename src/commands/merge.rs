use crate::cli::MergeArgs;
use reports::Summary;

/// `evalcot merge SHARD_DIR… --out RUN` (or the shards of a bank into a bank).
pub fn run(args: &MergeArgs) -> anyhow::Result<i32> {
    if args.shards.iter().any(|s| super::bank::is_bank(s)) {
        let m = harness::bank::merge(&args.shards, &args.out)?;
        eprintln!(
            "merged {} bank shards ({} prompts × {} images × {} candidates) into {}",
            args.shards.len(),
            m.prompts,
            m.config.images_per_prompt,
            m.config.n,
            args.out.display()
        );
        return Ok(0);
    }
    // The shards come from one build and one resolved config, so one scoring detector.
    let scored_by = args.shards.first().and_then(|s| reports::run::scored_by(s));
    let summary_of = |staging: &std::path::Path, records: &[harness::results::ResultRecord]| {
        Summary::of_records(records, &args.out)?
            .write(&staging.join("summary.json"), scored_by.as_deref())
    };
    let records = harness::run::merge::merge(&args.shards, &args.out, &summary_of)?;
    let summary = Summary::of_records(&records, &args.out)?;
    print!("{}", summary.render_official());
    eprintln!(
        "merged {} shards ({} images) into {}",
        args.shards.len(),
        records.len(),
        args.out.display()
    );
    Ok(0)
}
