use crate::cli::{TrainArgs, TrainModel};
use indicatif::{ProgressBar, ProgressStyle};
use models::detector::{train, DetectorTrainConfig};

/// `evalcot train MODEL --config FILE --out DIR`.
pub fn run(args: &TrainArgs) -> anyhow::Result<i32> {
    match args.model {
        TrainModel::Detector => {
            let cfg: DetectorTrainConfig = harness::config::load_yaml(&args.config)?;
            cfg.validate()
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
            std::fs::create_dir_all(&args.out).map_err(|e| harness::Error::io(&args.out, e))?;
            harness::config::write_yaml(&args.out.join("train.yaml"), &cfg)?;
            let bar = ProgressBar::new(cfg.steps as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} steps, {elapsed} elapsed, eta {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let device = Default::default();
            let meta = train::<models::CpuTrain>(&cfg, &args.out, &device, &mut |step, _, row| {
                bar.set_position(step as u64);
                if let Some(r) = row {
                    bar.set_message(format!(
                        "loss {:.4} (heat {:.4} box {:.4} colour {:.4})",
                        r.total, r.heat, r.boxes, r.color
                    ));
                }
            })?;
            bar.finish();
            eprintln!(
                "wrote {} (calibration a={:.4} b={:.4})",
                args.out.display(),
                meta.calibration.a,
                meta.calibration.b
            );
            Ok(0)
        }
    }
}
