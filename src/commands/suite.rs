use crate::cli::SuiteArgs;
use harness::Suite;

/// `evalcot suite`: validates a metadata file and lists the selected prompts.
pub fn run(args: &SuiteArgs) -> anyhow::Result<i32> {
    let suite = match &args.metadata {
        Some(p) => Suite::load(p)?,
        None => Suite::official(),
    };
    let chosen = suite.select(&args.select.to_selection())?;
    for p in &chosen {
        if args.jsonl {
            println!("{}", p.metadata.to_json_string());
        } else {
            println!(
                "{:05}  {:<14} {}",
                p.index,
                p.metadata.tag.as_str(),
                p.metadata.prompt
            );
        }
    }
    eprintln!(
        "{} of {} prompts from {}",
        chosen.len(),
        suite.prompts.len(),
        suite.source
    );
    Ok(0)
}
