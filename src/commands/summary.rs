use crate::cli::SummaryArgs;
use anyhow::Context;
use harness::results::read_result_rows;
use reports::Summary;

/// `evalcot summary RESULTS`.
pub fn run(args: &SummaryArgs) -> anyhow::Result<i32> {
    let rows = read_result_rows(&args.results)?;
    let summary = Summary::from_rows(&rows).context("no results")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary.to_json())?);
    } else {
        print!("{}", summary.render_official());
    }
    Ok(0)
}
