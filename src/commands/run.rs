use crate::cli::RunArgs;
use anyhow::anyhow;
use harness::bank::{BankGenerator, BankManifest};
use harness::detector::Detector;
use harness::generator::Generator;
use harness::judge::Judge;
use harness::profile::{Profile, Timed};
use harness::run::runner::{self, RunPlan};
use harness::run::shard::Shard;
use harness::run::{Context, Device, Job, RunConfig};
use indicatif::{ProgressBar, ProgressStyle};
use models::open::SamplingOptions;
use reports::Summary;
use std::path::{Path, PathBuf};

/// Command-line flags over the YAML config (over the defaults): every flag given replaces the
/// configuration's field of the same name.
pub fn resolve(args: &RunArgs) -> anyhow::Result<RunConfig> {
    let base: RunConfig = match &args.config {
        Some(p) => harness::config::load_yaml(p)?,
        None => RunConfig::default(),
    };
    // Merged as YAML values, which carry every f64 (JSON would turn a NaN into null and so
    // drop it before validation could refuse it).
    let mut merged = serde_norway::to_value(&base)?;
    if let (Some(fields), serde_norway::Value::Mapping(flags)) = (
        merged.as_mapping_mut(),
        serde_norway::to_value(&args.settings)?,
    ) {
        fields.extend(flags);
    }
    let mut cfg: RunConfig = serde_norway::from_value(merged)?;
    for kv in &args.option {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| anyhow!("--option {kv:?}: expected KEY=VALUE"))?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::from(v));
        cfg.options.insert(k.trim().to_string(), value);
    }
    cfg.normalise();
    let source = args
        .config
        .as_ref()
        .map_or("the command line".to_string(), |p| p.display().to_string());
    cfg.validate().map_err(|e| anyhow!("{source}: {e}"))?;
    cfg.selection().map_err(|e| anyhow!("{source}: {e}"))?;
    Ok(cfg)
}

/// `--shard K/N|auto|auto/N`, with `auto` read from the scheduler's environment.
pub fn shard_flag(spec: Option<&str>) -> anyhow::Result<Option<Shard>> {
    spec.map(|spec| Shard::parse(spec, &|k| std::env::var(k).ok()))
        .transpose()
        .map_err(|e| anyhow!(e))
}

pub fn run(args: &RunArgs) -> anyhow::Result<i32> {
    let cfg = resolve(args)?;
    let shard = shard_flag(args.shard.as_deref())?;
    let base_out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&cfg.strategy));
    external::set_workers(args.workers.into());
    if args.profile {
        harness::profile::enable();
    }
    execute(cfg, &base_out, shard)?;
    Ok(0)
}

/// The models and prompts a resolved configuration names, opened; fills in the generator's
/// defaults (steps, guidance) so that the configuration written is the one that ran.
pub struct Opened {
    pub prompts: Vec<harness::PromptEntry>,
    pub generator: Box<dyn Generator>,
    pub detector: Box<dyn Detector>,
    /// The summary's first line when the embedded detector was forced on images it cannot judge.
    pub caveat: Option<String>,
}

pub fn open(cfg: &mut RunConfig) -> anyhow::Result<Opened> {
    let prompts = cfg.prompts()?;
    let device = cfg.device.unwrap_or(Device::Cpu);
    models::open::check_device(device)?;
    // evalcot's own generators draw its world; an external one draws anything. Checked before
    // a worker starts, so a refusal costs nothing.
    let world = (!cfg.generator.starts_with("ext:")).then_some(cfg.generator.as_str());
    let what = format!("the images of the external generator `{}`", cfg.generator);
    let (detector, caveat) =
        crate::open::evaluation_detector(cfg.detector.as_deref(), world, &what, "", device)?;
    let (generator, cfg_scale) = crate::open::generator(
        &cfg.generator,
        SamplingOptions::of(cfg),
        &cfg.options,
        device,
    )?;
    cfg.cfg_scale = cfg_scale;
    cfg.steps.get_or_insert(generator.default_steps());
    Ok(Opened {
        prompts,
        generator,
        detector,
        caveat,
    })
}

/// Runs a resolved configuration into `base_out` (or its shard folder): generation, scoring,
/// `results.jsonl` and `summary.json`. Returns the run folder.
pub fn execute(cfg: RunConfig, base_out: &Path, shard: Option<Shard>) -> anyhow::Result<PathBuf> {
    execute_with(cfg, base_out, shard, None)
}

/// [`execute`], with the candidates drawn from a bank (`dir`, its manifest) when one is given.
pub fn execute_with(
    mut cfg: RunConfig,
    base_out: &Path,
    shard: Option<Shard>,
    bank: Option<(&Path, &BankManifest, bool)>,
) -> anyhow::Result<PathBuf> {
    let Opened {
        prompts,
        generator,
        detector,
        caveat,
    } = open(&mut cfg)?;
    let steps = cfg.steps.unwrap_or(generator.default_steps());
    let device = cfg.device.unwrap_or(Device::Cpu);
    let kind = cfg.strategy_kind().map_err(|e| anyhow!(e))?;
    if kind == harness::run::StrategyKind::ParmPlus && generator.opaque_state() {
        anyhow::bail!(
            "parm++ corrects an image by re-masking token positions; generator {} has no tokens \
             (evalcot-ext/2 opaque state or whole images)",
            generator.name()
        );
    }
    let strategy = strategies::build(kind);
    let judge = if kind.needs_judge() {
        Some(crate::open::judge(&cfg.judge, device)?)
    } else {
        None
    };
    let banked = match bank {
        Some((dir, have, any_build)) => {
            let jobs = Shard::select(shard, Job::all(&prompts, cfg.images_per_prompt, cfg.seed));
            super::bank::verify(
                dir,
                have,
                &prompts,
                generator.as_ref(),
                detector.as_ref(),
                &jobs,
                any_build,
            )?;
            Some(BankGenerator::new(generator.as_ref(), dir, &jobs, cfg.n))
        }
        None => None,
    };
    let cached = banked.as_ref().map(|b| b.detector(detector.as_ref()));
    let generator: &dyn Generator = match &banked {
        Some(b) => b,
        None => generator.as_ref(),
    };
    let detector: &dyn Detector = match &cached {
        Some(d) => d,
        None => detector.as_ref(),
    };
    let out = shard.map_or_else(|| base_out.to_path_buf(), |s| s.folder(base_out));
    let resolved = serde_norway::to_string(&cfg)?;
    // Profiling times every model call through a wrapper (one branch here, none per call).
    let profiling = harness::profile::enabled();
    let timed = (
        Timed(generator),
        Timed(detector),
        judge.as_deref().map(Timed),
    );
    let cx = Context {
        generator: if profiling { &timed.0 } else { generator },
        steps,
        n: cfg.n,
        detector: Some(if profiling { &timed.1 } else { detector }),
        rules: harness::RuleConfig::default(),
        judge: if profiling {
            timed.2.as_ref().map(|j| j as &dyn Judge)
        } else {
            judge.as_deref()
        },
        decision: cfg.decision,
        keep_best: cfg.keep_best,
    };
    let plan = RunPlan {
        out: &out,
        prompts: &prompts,
        images_per_prompt: cfg.images_per_prompt,
        seed: cfg.seed,
        batch_jobs: cfg.batch_prompts * cfg.images_per_prompt,
        resolved_config: &resolved,
        shard,
        code_version: crate::CODE_VERSION,
    };
    let started = std::time::Instant::now();
    let bar = ProgressBar::new((prompts.len() * cfg.images_per_prompt) as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{} {{bar:40}} {{pos}}/{{len}} images, {{elapsed}} elapsed, eta {{eta}}",
            cfg.strategy
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (generated, resumed) = runner::generate(&plan, strategy.as_ref(), &cx, &mut |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    let gen_seconds = started.elapsed().as_secs_f64();
    let scorer = cx.detector.unwrap_or(detector);
    let (records, compute) = runner::score(&out, scorer, &cx.rules, 64, &|_| {})?;
    if profiling {
        let profile = Profile::snapshot(started.elapsed().as_secs_f64(), runner::workers(&cx));
        eprint!("{}", profile.render());
        harness::fsutil::write_atomic(
            &out.join(harness::run::merge::PROFILE_FILE),
            serde_json::to_string_pretty(&profile)?.as_bytes(),
        )?;
    }
    for r in &records {
        if let Some(e) = r.extra.get("error").and_then(|e| e.as_str()) {
            eprintln!("failed: {}: {e}", r.filename);
        }
    }
    let summary = Summary::of_records(&records, &out)?;
    let name = crate::open::scored_by(scorer.name(), caveat.as_ref());
    summary.write(&out.join("summary.json"), Some(&name))?;
    if let Some(c) = &caveat {
        println!("{c}");
    }
    print!("{}", summary.render_official());
    let images = records.len().max(1) as f64;
    eprintln!(
        "{generated} images generated now ({resumed} resumed) in {gen_seconds:.1} s; per image: {:.0} generator forwards, {:.1} judge calls; wrote {}",
        compute.forwards as f64 / images,
        compute.judge_calls as f64 / images,
        out.display()
    );
    if let Some(s) = shard {
        eprintln!(
            "this is shard {s} of the run; once all {} have finished: evalcot merge {}.shard-*-of-{} --out {}",
            s.count,
            base_out.display(),
            s.count,
            base_out.display()
        );
    }
    Ok(out)
}
