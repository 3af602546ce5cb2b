use crate::cli::ReportArgs;
use anyhow::anyhow;
use reports::BootstrapOptions;

/// `evalcot report RUN... --out DIR`.
pub fn run(args: &ReportArgs) -> anyhow::Result<i32> {
    let options = BootstrapOptions {
        resamples: args.resamples,
        seed: args.seed,
        level: args.level,
    };
    options.validate().map_err(|e| anyhow!("--{e}"))?;
    let written = reports::write_report(&args.runs, &args.out, options)?;
    for r in &written.tables.runs {
        let compute = if r.forwards.is_nan() {
            "compute unknown".to_string()
        } else {
            format!("{} forwards/image", r.forwards.round())
        };
        println!(
            "{:<32} overall {:.3} [{:.3}, {:.3}]  {compute}",
            r.label, r.overall.value, r.overall.low, r.overall.high
        );
    }
    for n in &written.notes {
        eprintln!("note: {n}");
    }
    eprintln!(
        "wrote {} files to {} (open index.html)",
        written.files.len(),
        args.out.display()
    );
    Ok(0)
}
