use crate::cli::{ServeArgs, ServeRole, ServeStateArg};
use external::serve::{Configure, ServeState};
use models::open::{cpu_detector, cpu_generator, cpu_judge};
use std::path::Path;

/// `evalcot serve generator|judge|detector [--model NAME|DIR]`: until standard input closes.
pub fn run(args: &ServeArgs) -> anyhow::Result<i32> {
    let (input, output) = (std::io::stdin().lock(), std::io::stdout().lock());
    match args.role {
        ServeRole::Generator => {
            let mut g = cpu_generator(args.model.as_deref().unwrap_or("base"))?;
            let default = g.sampling.cfg_scale;
            let state = match args.state {
                ServeStateArg::Tokens => ServeState::Tokens,
                ServeStateArg::Opaque => ServeState::Opaque,
                ServeStateArg::Whole => ServeState::Whole,
            };
            type G = models::maskgit::generator::inference::BurnGenerator<models::Cpu>;
            let configure = Configure {
                cfg: &|g: &mut G, s| g.sampling.cfg_scale = s,
                option: &|g: &mut G, k, v| match (k, v.as_f64()) {
                    ("temperature", Some(t)) if t.is_finite() && t >= 0.0 => {
                        g.sampling.temperature = t;
                        Ok(())
                    }
                    _ => Err(format!(
                        "option {k}: {v}: this worker reads only \"temperature\" (a number ≥ 0)"
                    )),
                },
            };
            external::serve::serve_generator(
                &mut g,
                Some(default),
                configure,
                state,
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
