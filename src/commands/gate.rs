use crate::cli::{GateArgs, GateFormatArg};
use anyhow::bail;
use reports::gate::{self, GateOptions};

/// `evalcot gate --baseline FILE --run RUN` (exit 0 pass, 1 a significant drop, 2 bad input), or
/// `evalcot gate --run RUN --write-baseline FILE`.
pub fn run(args: &GateArgs) -> anyhow::Result<i32> {
    if let Some(out) = &args.write_baseline {
        let b = gate::write_baseline(&args.run, out)?;
        eprintln!(
            "wrote {} ({} prompts, {} images, overall {:.4})",
            out.display(),
            b.prompts.len(),
            b.images.len(),
            b.overall
        );
        return Ok(0);
    }
    if !(args.max_drop >= 0.0 && args.max_drop < 1.0) {
        bail!("--max-drop: {} is not in [0, 1)", args.max_drop);
    }
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        bail!("--alpha: {} is not in (0, 1)", args.alpha);
    }
    let Some(baseline) = &args.baseline else {
        bail!("--baseline FILE is required (or --write-baseline FILE to make one)");
    };
    let options = GateOptions {
        max_drop: args.max_drop,
        alpha: args.alpha,
    };
    let format = match args.format {
        GateFormatArg::Text => gate::GateFormat::Text,
        GateFormatArg::Json => gate::GateFormat::Json,
        GateFormatArg::Junit => gate::GateFormat::Junit,
    };
    let (report, text) = gate::gate(baseline, &args.run, options, format)?;
    print!("{text}");
    Ok(gate::exit_code(&report))
}
