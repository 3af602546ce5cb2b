use crate::cli::ReproduceArgs;
use crate::commands::run::{execute, execute_with};
use anyhow::{anyhow, Context};
use harness::bank::BankManifest;
use harness::run::{RunConfig, StrategyKind};
use reports::paper::{Matrix, Outcome, Provenance, ScaleOverrides};
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
    if let Some(unknown) = args
        .only
        .iter()
        .find(|id| !matrix.rows().any(|r| &r.id == *id))
    {
        let known: Vec<&str> = matrix.rows().map(|r| r.id.as_str()).collect();
        anyhow::bail!(
            "--only {unknown}: {} has no row of that id; its rows: {}",
            args.matrix.display(),
            known.join(", ")
        );
    }
    let selected = |id: &str| args.only.is_empty() || args.only.iter().any(|o| o == id);
    // One run per configuration file, in the matrix's order.
    let mut configs: Vec<String> = Vec::new();
    for r in matrix.rows().filter(|r| selected(&r.id)) {
        if let Some(c) = &r.config {
            if !configs.contains(c) {
                configs.push(c.clone());
            }
        }
    }
    let banks = args
        .bank
        .iter()
        .map(|b| Ok((b.clone(), super::bank::read(b)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut done: BTreeMap<String, Result<PathBuf, String>> = BTreeMap::new();
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for (i, file) in configs.iter().enumerate() {
        let path = base.join(file);
        let mut cfg: RunConfig = harness::config::load_yaml(&path)?;
        apply(&mut cfg, overrides);
        // Rows no bank can serve may run smaller (the matrix says so; the header shows it).
        if let (Some(live), Ok(kind)) = (&overrides.live, cfg.strategy_kind()) {
            if !bankable(kind) {
                apply(&mut cfg, live);
            }
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
        let bank = match banks.is_empty() {
            true => None,
            false => {
                let resolved = resolve(&cfg)?;
                banks.iter().find(|(_, m)| serves(m, &resolved))
            }
        };
        let out = match bank {
            Some((dir, m)) => {
                eprintln!("  replayed from {}", dir.display());
                execute_with(
                    cfg,
                    &runs_dir.join(stem),
                    None,
                    Some((dir, m, args.any_build)),
                )
            }
            None => execute(cfg, &runs_dir.join(stem), None),
        }
        .with_context(|| format!("{}", path.display()))?;
        sources.insert(
            file.clone(),
            bank.map_or("live".into(), |(d, _)| format!("bank `{}`", d.display())),
        );
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
                    provenance: Provenance {
                        seed: loaded[*i].meta.seed,
                        detector: loaded[*i]
                            .scored_by
                            .clone()
                            .unwrap_or_else(|| "not recorded".into()),
                        candidates: sources.get(c).cloned().unwrap_or_default(),
                    },
                },
                (None, Some(Err(why))) => Outcome::NotRun(why.clone()),
                _ if !selected(&r.id) => Outcome::NotRun("not selected (`--only`)".into()),
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
    for b in &args.bank {
        command += &format!(" --bank {}", b.display());
    }
    if args.any_build {
        command += " --any-build";
    }
    if !args.only.is_empty() {
        command += &format!(" --only {}", args.only.join(","));
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

/// A scale's overrides on a configuration.
fn apply(cfg: &mut RunConfig, o: &ScaleOverrides) {
    if o.per_tag.is_some() {
        cfg.per_tag = o.per_tag;
    }
    if let Some(k) = o.images_per_prompt {
        cfg.images_per_prompt = k;
    }
    if let Some(n) = o.n {
        cfg.n = n;
    }
    if o.steps.is_some() {
        cfg.steps = o.steps;
    }
}

/// Strategies a bank can serve: those that only stop or pick among independent candidates.
fn bankable(kind: StrategyKind) -> bool {
    matches!(
        kind,
        StrategyKind::Baseline | StrategyKind::Orm | StrategyKind::Parm | StrategyKind::Oracle
    )
}

/// `cfg` with the steps and guidance its generator would fill in (as `run` resolves them), so
/// that it compares with a bank's resolved settings.
fn resolve(cfg: &RunConfig) -> anyhow::Result<RunConfig> {
    let mut r = cfg.clone();
    let device = r.device.unwrap_or(harness::run::Device::Cpu);
    let (g, scale) = crate::open::generator(
        &r.generator,
        models::open::SamplingOptions::of(&r),
        &r.options,
        device,
    )?;
    r.cfg_scale = scale;
    r.steps.get_or_insert(g.default_steps());
    Ok(r)
}

/// Whether `bank` (a whole bank, not a shard) holds the candidates the resolved row `cfg` would
/// draw: the bank's settings with this row's strategy, judge, N and decision — and its
/// speed-only batching, which changes no number — are `cfg`'s, N at most the bank's. The device
/// counts (verdicts agree across devices only within a tolerance). `replay`'s checks still run.
fn serves(bank: &BankManifest, cfg: &RunConfig) -> bool {
    let Ok(kind) = cfg.strategy_kind() else {
        return false;
    };
    let mut want = bank.config.clone();
    want.strategy = cfg.strategy.clone();
    want.judge = cfg.judge.clone();
    want.n = cfg.n;
    want.decision = cfg.decision;
    want.keep_best = cfg.keep_best;
    want.batch_prompts = cfg.batch_prompts;
    want.forward_batch = cfg.forward_batch;
    want.slice_rows = cfg.slice_rows;
    bankable(kind) && bank.shard.is_none() && cfg.n <= bank.config.n && want == *cfg
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
