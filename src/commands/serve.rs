use crate::cli::{ServeArgs, ServeRole};
use models::open::{cpu_detector, cpu_generator, cpu_judge};
use std::path::Path;

/// `evalcot serve generator|judge|detector [--model NAME|DIR]`: until standard input closes.
pub fn run(args: &ServeArgs) -> anyhow::Result<i32> {
    let (input, output) = (std::io::stdin().lock(), std::io::stdout().lock());
    match args.role {
        ServeRole::Generator => {
            let mut g = cpu_generator(args.model.as_deref().unwrap_or("base"))?;
            let default = g.sampling.cfg_scale;
            external::serve::serve_generator(
                &mut g,
                Some(default),
                &|g, s| g.sampling.cfg_scale = s,
                input,
                output,
            )?;
        }
        ServeRole::Judge => {
            let j = cpu_judge(args.model.as_deref().unwrap_or("zero-shot"))?;
            external::serve::serve_judge(&j, input, output)?;
        }
        ServeRole::Detector => {
            let d = cpu_detector(args.model.as_deref().map(Path::new))?;
            external::serve::serve_detector(&d, input, output)?;
        }
    }
    Ok(0)
}
