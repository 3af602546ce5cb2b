use crate::cli::{TrainArgs, TrainModel};
use burn::tensor::backend::AutodiffBackend;
use harness::run::Device;
use indicatif::{ProgressBar, ProgressStyle};
use models::detector::rescore::RescorerTrainConfig;
use models::detector::DetectorTrainConfig;
use models::judge::{JudgeMode, JudgeTrainConfig};
use models::maskgit::GeneratorTrainConfig;
use models::vq::VqTrainConfig;
use std::path::Path;

/// `evalcot train MODEL --config FILE --out DIR [--device cpu|cuda]`.
pub fn run(args: &TrainArgs) -> anyhow::Result<i32> {
    match args.device {
        Device::Cpu => train_on::<models::CpuTrain>(args, &Default::default()),
        #[cfg(feature = "cuda")]
        Device::Cuda => {
            models::open::check_device(Device::Cuda)?;
            train_on::<models::GpuTrain>(args, &Default::default())
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda => anyhow::bail!(
            "--device cuda: this evalcot was built without the `cuda` feature \
             (build with `cargo build --release --features cuda`)"
        ),
        half @ (Device::CudaF16 | Device::CudaBf16) => anyhow::bail!(
            "--device {half}: training runs in f32 (half precision is for `run` and `score`); \
             use --device cuda"
        ),
    }
}

fn bar(steps: usize) -> ProgressBar {
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} steps, {elapsed} elapsed, eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// `evalcot train evidence-head --config FILE --out DIR`: features of the bank's candidates by
/// the annotator, then the head; writes DIR/head.json, DIR/losses.csv and DIR/report.md.
fn train_head(args: &TrainArgs) -> anyhow::Result<()> {
    let cfg: models::evidence::HeadTrainConfig =
        prepare(args, models::evidence::HeadTrainConfig::validate)?;
    let started = std::time::Instant::now();
    let annotator = models::open::detector(Some(Path::new(&cfg.annotator)), Device::Cpu)?;
    let evaluator = models::open::detector(None, Device::Cpu)?;
    if harness::detector::is_evaluation_detector(annotator.name(), evaluator.name()) {
        anyhow::bail!(
            "{}: annotator {}: that is the evaluation detector ({}); a judge learns from an annotator trained apart from it",
            args.config.display(),
            cfg.annotator,
            evaluator.name()
        );
    }
    let reading = ProgressBar::new(0);
    reading.set_style(
        ProgressStyle::with_template(
            "evidence of the data {bar:40} {pos}/{len} images, {elapsed}, eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut shown = |done: usize, total: usize| {
        reading.set_length(total as u64);
        reading.set_position(done as u64);
    };
    // Where the labels come from, for the report and head.json.
    let (data, source) = match (&cfg.bank, &cfg.world) {
        (Some(bank), _) => {
            let bank = Path::new(bank);
            let manifest = harness::bank::read_manifest(bank)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: bank {}: no bank.json",
                    args.config.display(),
                    bank.display()
                )
            })?;
            let generator = models::open::cpu_generator(&manifest.config.generator)?;
            let data =
                models::evidence::features_from_bank(bank, &generator, annotator, &mut shown)?;
            let source = format!(
                "bank `{}` ({} images of generator `{}`, labels by {}, prompts digest {})",
                bank.display(),
                data.len(),
                manifest.generator,
                manifest.detector,
                manifest.suite_digest
            );
            (data, source)
        }
        (None, Some(w)) => {
            let tokenizer = models::vq::VqTokenizer::<models::Cpu>::load_dir(
                Path::new(&w.tokenizer),
                &Default::default(),
            )?;
            let data = models::evidence::features_from_world(w, &tokenizer, annotator, &mut shown)?;
            let source = format!(
                "the world: {} training prompts (seed {}) × {} scenes, matching and near misses alternately, labels by construction, through tokenizer `{}`; no generator sample",
                w.prompts, w.seed, w.per_prompt, w.tokenizer
            );
            (data, source)
        }
        (None, None) => anyhow::bail!("{}: bank, world: no source of data", args.config.display()),
    };
    reading.finish_and_clear();
    let bar = bar(cfg.iterations);
    let mut trained = models::evidence::train(&cfg, &data, &mut |it, _, loss| {
        bar.set_position(it as u64);
        bar.set_message(format!("loss {loss:.4}"));
    });
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    trained.head.detector = cfg.annotator.clone();
    let command = format!(
        "evalcot train evidence-head --config {} --out {}",
        args.config.display(),
        args.out.display()
    );
    trained.head.made_by = serde_json::json!({
        "config": cfg,
        "data": source,
        "command": command,
        "seconds": seconds,
    });
    let mut losses = String::from("iteration,train_loss,val_loss\n");
    for (it, tr, va) in &trained.losses {
        losses.push_str(&format!("{it},{tr},{va}\n"));
    }
    let (h, p) = (trained.val_head, trained.val_product);
    let report = format!(
        "# Evidence head `{}`\n\nTrained by `{command}` in {seconds:.0} s on {source}: {} training and {} held-out images (prompts split by a seeded hash, seed {}).\n\n| on the held-out prompts | within-image AUROC | pairs | pooled AUROC | ECE |\n|---|---:|---:|---:|---:|\n| head | {:.3} | {} | {:.3} | {:.3} |\n| evidence product, factors floored (untrained) | {:.3} | {} | {:.3} | {:.3} |\n\nWeights: bias {:.3}; shared {:?} over ({}); per tag {:?}.\n",
        cfg.name,
        trained.train_images,
        trained.val_images,
        cfg.seed,
        h.0, h.1, h.2, h.3,
        p.0, p.1, p.2, p.3,
        trained.head.bias,
        trained.head.weights,
        harness::evidence::FEATURES.join(", "),
        trained.head.tag_weights,
    );
    harness::fsutil::write_atomic(
        &args.out.join(models::open::HEAD_FILE),
        serde_json::to_string_pretty(&trained.head)?.as_bytes(),
    )?;
    harness::fsutil::write_atomic(&args.out.join("losses.csv"), losses.as_bytes())?;
    harness::fsutil::write_atomic(&args.out.join("report.md"), report.as_bytes())?;
    print!("{report}");
    Ok(())
}

/// Loads and validates a YAML training config, creates the output folder and records the
/// resolved config there.
fn prepare<C: serde::de::DeserializeOwned + serde::Serialize>(
    args: &TrainArgs,
    validate: impl Fn(&C) -> Result<(), String>,
) -> anyhow::Result<C> {
    let cfg: C = harness::config::load_yaml(&args.config)?;
    validate(&cfg).map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
    std::fs::create_dir_all(&args.out).map_err(|e| harness::Error::io(&args.out, e))?;
    harness::config::write_yaml(&args.out.join("train.yaml"), &cfg)?;
    Ok(cfg)
}

/// Progress callback showing the named loss columns of the shared training loop.
fn loop_progress<'a>(
    bar: &'a ProgressBar,
    columns: &'a [&'a str],
) -> impl FnMut(usize, usize, &[f64]) + 'a {
    move |step, _, row| {
        bar.set_position(step as u64);
        let parts: Vec<String> = columns
            .iter()
            .zip(row.iter().skip(3))
            .map(|(c, v)| format!("{c} {v:.4}"))
            .collect();
        bar.set_message(format!("loss {:.4} ({})", row[2], parts.join(" ")));
    }
}

fn train_on<B: AutodiffBackend>(args: &TrainArgs, device: &B::Device) -> anyhow::Result<i32> {
    match args.model {
        TrainModel::Detector => {
            let cfg: DetectorTrainConfig = prepare(args, DetectorTrainConfig::validate)?;
            let bar = bar(cfg.steps);
            let meta =
                models::detector::train::<B>(&cfg, &args.out, device, &mut |step, _, row| {
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
        }
        TrainModel::Rescorer => {
            let cfg: RescorerTrainConfig = prepare(args, RescorerTrainConfig::validate)?;
            let bar = bar(cfg.steps);
            let cols = ["cross_entropy", "accuracy"];
            let meta = models::detector::rescore::train::<B>(
                &cfg,
                &args.out,
                device,
                &mut loop_progress(&bar, &cols),
            )?;
            bar.finish();
            if let Some(r) = meta.rescorer {
                eprintln!(
                    "wrote {} (fusion bias={:.4} peak={:.4} crop={:.4})",
                    args.out.display(),
                    r.fusion.bias,
                    r.fusion.peak,
                    r.fusion.crop
                );
            }
        }
        TrainModel::Tokenizer => {
            let cfg: VqTrainConfig = prepare(args, VqTrainConfig::validate)?;
            let bar = bar(cfg.steps);
            let cols = ["recon", "commit", "codebook", "psnr", "codes"];
            models::vq::train::<B>(&cfg, &args.out, device, &mut loop_progress(&bar, &cols))?;
            bar.finish();
            eprintln!("wrote {}", args.out.display());
        }
        TrainModel::Generator => {
            let cfg: GeneratorTrainConfig = prepare(args, GeneratorTrainConfig::validate)?;
            let bar = bar(cfg.steps);
            let cols = ["token_acc"];
            models::maskgit::train::<B>(&cfg, &args.out, device, &mut loop_progress(&bar, &cols))?;
            bar.finish();
            eprintln!("wrote {}", args.out.display());
        }
        TrainModel::Judge => {
            let cfg: JudgeTrainConfig = prepare(args, JudgeTrainConfig::validate)?;
            let (generator, annotator) = match cfg.mode {
                JudgeMode::ZeroShot => (None, None),
                JudgeMode::FineTuned => (
                    Some(models::open::cpu_generator(&cfg.generator)?),
                    Some(models::detector::BurnDetector::<models::Cpu>::load_dir(
                        &cfg.annotator,
                        &Default::default(),
                    )?),
                ),
            };
            let collecting = ProgressBar::new(0);
            collecting.set_style(
                ProgressStyle::with_template("building judge data {bar:40} {pos}/{len}, {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let pool = models::judge::build_pool(
                &cfg,
                generator
                    .as_ref()
                    .map(|g| g as &dyn harness::generator::Generator),
                annotator
                    .as_ref()
                    .map(|a| a as &dyn harness::detector::Detector),
                &mut |done, total| {
                    collecting.set_length(total as u64);
                    collecting.set_position(done as u64);
                },
            )
            .map_err(|e| anyhow::anyhow!("{}: building judge data: {e}", args.config.display()))?;
            collecting.finish_and_clear();
            eprintln!("{} judge samples", pool.len());
            let bar = bar(cfg.steps);
            let cols = ["yes_bce", "cells_bce", "acc"];
            models::judge::train::<B>(
                &cfg,
                &pool,
                &args.out,
                device,
                &mut loop_progress(&bar, &cols),
            )?;
            bar.finish();
            eprintln!("wrote {}", args.out.display());
        }
        TrainModel::EvidenceHead => train_head(args)?,
        TrainModel::Dpo => train_dpo::<B>(args, device)?,
        TrainModel::Ar => {
            let cfg: models::ar::ArTrainConfig =
                prepare(args, models::ar::ArTrainConfig::validate)?;
            let bar = bar(cfg.steps);
            let cols = ["token_acc"];
            models::ar::train::<B>(&cfg, &args.out, device, &mut loop_progress(&bar, &cols))?;
            bar.finish();
            eprintln!(
                "wrote {} (use it with --generator {})",
                args.out.display(),
                args.out.display()
            );
        }
    }
    Ok(0)
}

/// `evalcot train dpo`: judged samples (cached in OUT/samples.jsonl under the sampling part of
/// the pairs config, so that a resumed run or a new pair rule does not resample), the pairs
/// picked from them (OUT/pairs.jsonl, OUT/pairs.json), then the DPO loop.
fn train_dpo<B: AutodiffBackend>(args: &TrainArgs, device: &B::Device) -> anyhow::Result<()> {
    use crate::open::judge as open_judge;
    use models::maskgit::dpo::{self, DpoTrainConfig, JudgedPrompt};
    use models::open::{ar_generator_on, generator_on, SamplingOptions};
    let cfg: DpoTrainConfig = prepare(args, DpoTrainConfig::validate)?;
    let inner = Default::default();
    let ar_init = ar_generator_on::<B::InnerBackend>(&cfg.init, &inner)?;
    if ar_init.is_some() && cfg.reward.is_some() {
        // Refused before sampling pairs, which is most of a run's time.
        anyhow::bail!(
            "{}: reward: the online reward term is implemented for the masked-token family only (init {:?} is autoregressive)",
            args.config.display(),
            cfg.init
        );
    }
    let judged: Vec<JudgedPrompt> = dpo::cached_samples(&args.out, &cfg.pairs, || {
        let sampler_spec = cfg.pairs.sampler.as_deref().unwrap_or(&cfg.init);
        // Pairs are sampled and judged on the CPU on every training device, so that a cached
        // sample file means the same thing wherever it was made.
        let (sampler, _) = crate::open::generator(
            sampler_spec,
            SamplingOptions::default(),
            &Default::default(),
            Device::Cpu,
        )?;
        if cfg.pairs.bank.is_some() {
            let evaluator = models::open::detector(None, Device::Cpu)?;
            return anyhow::Ok(dpo::bank_samples(
                &cfg.pairs,
                sampler.name(),
                evaluator.name(),
            )?);
        }
        let labeller = open_judge(&cfg.pairs.judge, Device::Cpu)?;
        let making = ProgressBar::new(cfg.pairs.prompts as u64);
        making.set_style(
            ProgressStyle::with_template(
                "sampling and judging pairs {bar:40} {pos}/{len} prompts, {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let judged = dpo::judge_samples(
            &cfg.pairs,
            sampler.as_ref(),
            labeller.as_ref(),
            &mut |done, _| making.set_position(done as u64),
        )?;
        making.finish_and_clear();
        anyhow::Ok(judged)
    })?;
    let (pairs, stats) = dpo::select_pairs(&cfg.pairs, &judged);
    dpo::write_pairs(&args.out, &cfg.pairs, &pairs, &stats)?;
    eprintln!(
        "{} pairs from {} prompts by rule {:?} (dropped: {} all yes, {} all no, {} closer than min_gap)",
        stats.pairs, stats.prompts, cfg.pairs.rule, stats.all_yes, stats.all_no, stats.too_close
    );
    let bar = bar(dpo::total_steps(&cfg, pairs.len()));
    if let Some(init) = ar_init {
        let reference_spec = cfg.reference.as_deref().unwrap_or(&cfg.init);
        let reference = ar_generator_on::<B::InnerBackend>(reference_spec, &inner)?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: reference {reference_spec:?} is not an autoregressive generator, init {:?} is",
                    args.config.display(),
                    cfg.init
                )
            })?;
        let cols = ["dpo", "acc", "margin"];
        models::ar::train_dpo::<B>(
            &cfg,
            &pairs,
            &init,
            &reference,
            &args.out,
            device,
            &mut loop_progress(&bar, &cols),
        )?;
        bar.finish();
        return finish_dpo_folder(&cfg.init, &args.out);
    }
    let init = generator_on::<B::InnerBackend>(&cfg.init, &inner)?;
    let reference = match &cfg.reference {
        Some(r) => generator_on::<B::InnerBackend>(r, &inner)?,
        None => generator_on::<B::InnerBackend>(&cfg.init, &inner)?,
    };
    let reward_judge = cfg
        .reward
        .as_ref()
        .map(|r| open_judge(&r.judge, Device::Cpu))
        .transpose()?;
    let models = dpo::DpoModels {
        init: &init,
        reference: &reference,
        reward_judge: reward_judge.as_deref(),
    };
    let cols = ["dpo", "acc", "margin", "reward", "reward_term"];
    dpo::train::<B>(
        &cfg,
        &pairs,
        &models,
        &args.out,
        device,
        &mut loop_progress(&bar, &cols),
    )?;
    bar.finish();
    finish_dpo_folder(&cfg.init, &args.out)
}

/// The end of a DPO run of either family: a generator folder carries its tokenizer when its
/// init did (a tokenizer that is not shipped would otherwise be lost), and the user is told how
/// to use it.
fn finish_dpo_folder(init: &str, out: &Path) -> anyhow::Result<()> {
    let tok = Path::new(init).join("tokenizer");
    if tok.join("tokenizer.json").exists() {
        let dst = out.join("tokenizer");
        std::fs::create_dir_all(&dst).map_err(|e| harness::Error::io(&dst, e))?;
        for f in ["tokenizer.json", "tokenizer.bpk"] {
            std::fs::copy(tok.join(f), dst.join(f))
                .map_err(|e| harness::Error::io(&dst.join(f), e))?;
        }
    }
    eprintln!(
        "wrote {} (use it with --generator {})",
        out.display(),
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped training configuration still loads into its model's configuration (no
    /// unknown or renamed field) and passes its checks, so that each "Reproduce:" line in the
    /// configs and the weights' train.yaml stays runnable. A new family must be added here.
    #[test]
    fn every_shipped_training_config_loads_and_validates() {
        fn check<C: serde::de::DeserializeOwned>(
            path: &Path,
            validate: impl Fn(&C) -> Result<(), String>,
        ) -> Result<(), String> {
            let cfg: C = harness::config::load_yaml(path).map_err(|e| e.to_string())?;
            validate(&cfg)
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".yaml") {
                continue;
            }
            let result = if name.starts_with("rescorer") {
                check(&path, RescorerTrainConfig::validate)
            } else if name.starts_with("detector") {
                check(&path, DetectorTrainConfig::validate)
            } else if name.starts_with("tokenizer") {
                check(&path, VqTrainConfig::validate)
            } else if name.starts_with("generator-ar") {
                check(&path, models::ar::ArTrainConfig::validate)
            } else if name.starts_with("generator") {
                check(&path, GeneratorTrainConfig::validate)
            } else if name.starts_with("evidence-head") {
                check(&path, models::evidence::HeadTrainConfig::validate)
            } else if name.starts_with("judge") {
                check(&path, JudgeTrainConfig::validate)
            } else if name.starts_with("dpo") {
                check(&path, models::maskgit::dpo::DpoTrainConfig::validate)
            } else {
                Err("no model family for this file name".into())
            };
            assert!(result.is_ok(), "{name}: {}", result.unwrap_err());
            seen += 1;
        }
        assert!(
            seen >= 20,
            "only {seen} configurations found in {}",
            dir.display()
        );
    }
}
