use crate::cli::ReproduceArgs;
use crate::commands::run::execute;
use anyhow::{anyhow, Context};
use harness::run::RunConfig;
use reports::paper::{Matrix, Outcome};
use reports::{BootstrapOptions, Run, Tables};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `evalcot reproduce paper [--scale small|full]`: every configuration of the matrix, resumed
/// where its run folder already holds images, then `docs/strategies.md`.
pub fn run(args: &ReproduceArgs) -> anyhow::Result<i32> {
    let matrix = Matrix::load(&args.matrix)?;
    let overrides = matrix.scales.get(&args.scale).ok_or_else(|| {
        anyhow!(
            "--scale {}: {} defines {}",
            args.scale,
            args.matrix.display(),
            matrix.scales.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let base = args.matrix.parent().unwrap_or(Path::new("."));
    let runs_dir = args
        .runs
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("paper-{}", args.scale)));
    // One run per configuration file, in the matrix's order.
    let mut configs: Vec<String> = Vec::new();
    for r in matrix.rows() {
        if let Some(c) = &r.config {
            if !configs.contains(c) {
                configs.push(c.clone());
            }
        }
    }
    let mut done: BTreeMap<String, Result<PathBuf, String>> = BTreeMap::new();
    for (i, file) in configs.iter().enumerate() {
        let path = base.join(file);
        let mut cfg: RunConfig = harness::config::load_yaml(&path)?;
        if overrides.per_tag.is_some() {
            cfg.per_tag = overrides.per_tag;
        }
        if let Some(k) = overrides.images_per_prompt {
            cfg.images_per_prompt = k;
        }
        if let Some(n) = overrides.n {
            cfg.n = n;
        }
        if overrides.steps.is_some() {
            cfg.steps = overrides.steps;
        }
        if args.device.is_some() {
            cfg.device = args.device;
        }
        cfg.normalise();
        cfg.validate()
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        eprintln!("[{}/{}] {file}", i + 1, configs.len());
        if let Some(missing) = unavailable(&cfg)? {
            eprintln!("  not run: {missing}");
            done.insert(file.clone(), Err(missing));
            continue;
        }
        let stem = Path::new(file)
            .file_stem()
            .map_or_else(|| file.clone(), |s| s.to_string_lossy().into_owned());
        let out = execute(cfg, &runs_dir.join(stem), None)
            .with_context(|| format!("{}", path.display()))?;
        done.insert(file.clone(), Ok(out));
    }
    let ran: Vec<(String, PathBuf)> = done
        .iter()
        .filter_map(|(f, r)| r.as_ref().ok().map(|d| (f.clone(), d.clone())))
        .collect();
    let loaded = ran
        .iter()
        .map(|(_, d)| Run::load(d))
        .collect::<harness::Result<Vec<_>>>()?;
    let options = BootstrapOptions {
        resamples: args.resamples,
        seed: 0,
        level: 0.95,
    };
    let tables = Tables::compute(&loaded, options);
    let by_config: BTreeMap<&str, (usize, &PathBuf)> = ran
        .iter()
        .enumerate()
        .map(|(i, (f, d))| (f.as_str(), (i, d)))
        .collect();
    let mut outcomes = BTreeMap::new();
    for r in matrix.rows() {
        let outcome = match r.config.as_deref() {
            None => Outcome::NotRun("no evalcot equivalent (see the note)".into()),
            Some(c) => match (by_config.get(c), done.get(c)) {
                (Some((i, dir)), _) => Outcome::Ran {
                    stats: Box::new(tables.runs[*i].clone()),
                    dir: dir.display().to_string(),
                    config: base.join(c).display().to_string(),
                    images: loaded[*i].images.clone(),
                },
                (None, Some(Err(why))) => Outcome::NotRun(why.clone()),
                _ => Outcome::NotRun("not run".into()),
            },
        };
        outcomes.insert(r.id.clone(), outcome);
    }
    let mut command = format!("evalcot reproduce paper --scale {}", args.scale);
    if args.matrix != Path::new(crate::cli::DEFAULT_MATRIX) {
        command += &format!(" --matrix {}", args.matrix.display());
    }
    if let Some(runs) = &args.runs {
        command += &format!(" --runs {}", runs.display());
    }
    if args.resamples != crate::cli::DEFAULT_RESAMPLES {
        command += &format!(" --resamples {}", args.resamples);
    }
    if let Some(device) = args.device.filter(|d| *d != harness::run::Device::Cpu) {
        command += &format!(" --device {device}");
    }
    command += &format!(" --out {}", args.out.display());
    let text = reports::paper::render(&matrix, &outcomes, &args.scale, &command);
    harness::fsutil::write_atomic(&args.out, text.as_bytes())?;
    eprintln!(
        "{} of {} configurations ran; wrote {}",
        ran.len(),
        configs.len(),
        args.out.display()
    );
    Ok(0)
}

/// Why a configuration cannot run here: a model it names is not available. Other errors (a
/// broken file, a bad config) are errors.
fn unavailable(cfg: &RunConfig) -> anyhow::Result<Option<String>> {
    let missing = |e: anyhow::Error| -> anyhow::Result<Option<String>> {
        let msg = format!("{e:#}");
        if msg.contains("is not shipped") || msg.contains("is not inside this build") {
            Ok(Some(msg))
        } else {
            Err(e)
        }
    };
    let device = cfg.device.unwrap_or(harness::run::Device::Cpu);
    let options = models::open::SamplingOptions {
        cfg_scale: None,
        temperature: None,
        ..models::open::SamplingOptions::of(cfg)
    };
    if let Err(e) = crate::open::generator(&cfg.generator, options, &cfg.options, device) {
        return missing(e);
    }
    if cfg.strategy_kind().map_or(true, |k| k.needs_judge()) {
        if let Err(e) = crate::open::judge(&cfg.judge, device) {
            return missing(e);
        }
    }
    Ok(None)
}
