use crate::cli::RunArgs;
use crate::commands::score::{summarise, write_summary};
use anyhow::anyhow;
use harness::detector::Detector;
use harness::generator::{Draws, Generator};
use harness::judge::Judge;
use harness::profile::{Profile, Timed};
use harness::Suite;
use indicatif::{ProgressBar, ProgressStyle};
use models::maskgit::{Batching, BatchingChoice, BurnGenerator};
use models::Cpu;
use std::path::{Path, PathBuf};
use strategies::runner::{self, RunPlan};
use strategies::shard::Shard;
use strategies::{Context, Device, RunConfig};

/// Evaluates `$body` with the type `$b` bound to the burn backend of `$device` and `$dev` to its
/// default device handle. The GPU arms exist only in builds with the `cuda` feature.
macro_rules! on_backend {
    ($device:expr, $b:ident, $dev:ident => $body:expr) => {
        match $device {
            Device::Cpu => on_backend!(@on models::Cpu, $b, $dev => $body),
            #[cfg(feature = "cuda")]
            Device::Cuda => on_backend!(@on models::Gpu, $b, $dev => $body),
            #[cfg(feature = "cuda")]
            Device::CudaF16 => on_backend!(@on models::GpuF16, $b, $dev => $body),
            #[cfg(feature = "cuda")]
            Device::CudaBf16 => on_backend!(@on models::GpuBf16, $b, $dev => $body),
            #[cfg(not(feature = "cuda"))]
            other => anyhow::bail!(
                "device {other}: this evalcot was built without the `cuda` feature \
                 (build with `cargo build --release --features cuda`, README \"GPU\")"
            ),
        }
    };
    (@on $backend:ty, $b:ident, $dev:ident => $body:expr) => {{
        type $b = $backend;
        let $dev: burn::tensor::Device<$b> = Default::default();
        $body
    }};
}

/// Starts `device`'s backend with one tiny tensor, so that a machine where it cannot run (no
/// driver, no GPU) gets one named error instead of a panic from deep inside the backend.
pub fn check_device(device: Device) -> anyhow::Result<()> {
    on_backend!(device, B, dev => probe::<B>(&dev, device))
}

fn probe<B: burn::prelude::Backend>(dev: &B::Device, device: Device) -> anyhow::Result<()> {
    use std::sync::{Arc, Mutex, PoisonError};
    // The backend reports a failed start by panicking, first on its own device thread (the
    // message that names the cause), then on this one; keep the first message, print none.
    let first: Arc<Mutex<Option<String>>> = Arc::default();
    let previous = std::panic::take_hook();
    let seen = Arc::clone(&first);
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        seen.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(text);
    }));
    // Nothing outlives a failed start (the command stops with the error), so no state that a
    // panic may have left half-changed is used again.
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        burn::tensor::Tensor::<B, 1>::zeros([1], dev).into_data();
    }));
    std::panic::set_hook(previous);
    match started {
        Ok(()) => Ok(()),
        Err(_) => {
            let cause = first
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_default();
            anyhow::bail!("device {device}: the backend could not start on this machine: {cause}")
        }
    }
}

/// Command-line flags over the YAML config (over the defaults).
pub fn resolve(args: &RunArgs) -> anyhow::Result<RunConfig> {
    let mut cfg: RunConfig = match &args.config {
        Some(p) => harness::config::load_yaml(p)?,
        None => RunConfig::default(),
    };
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = &args.$field { cfg.$field = v.clone(); } )* };
    }
    if let Some(d) = &args.detector {
        cfg.detector = Some(d.clone());
    }
    set!(
        suite,
        strategy,
        n,
        images_per_prompt,
        seed,
        generator,
        batch_prompts,
        judge,
        decision
    );
    macro_rules! set_opt {
        ($($field:ident),*) => { $( if args.$field.is_some() { cfg.$field = args.$field.clone(); } )* };
    }
    set_opt!(
        steps,
        cfg_scale,
        temperature,
        tags,
        indices,
        per_tag,
        limit,
        device,
        draws,
        forward_batch,
        slice_rows
    );
    cfg.normalise();
    let source = args
        .config
        .as_ref()
        .map_or("the command line".to_string(), |p| p.display().to_string());
    cfg.validate().map_err(|e| anyhow!("{source}: {e}"))?;
    cfg.selection().map_err(|e| anyhow!("{source}: {e}"))?;
    Ok(cfg)
}

/// A generator by name or folder. Names: the generators shipped in the binary.
pub fn load_generator(name: &str) -> anyhow::Result<BurnGenerator<Cpu>> {
    load_generator_on::<Cpu>(name, &Default::default())
}

/// [`load_generator`] on any backend (DPO trains next to a reference on its device).
pub fn load_generator_on<B: burn::prelude::Backend>(
    name: &str,
    device: &B::Device,
) -> anyhow::Result<BurnGenerator<B>> {
    let dir = Path::new(name);
    if dir.join("generator.json").exists() {
        let meta: models::maskgit::GeneratorMeta =
            models::train_loop::read_json(&dir.join("generator.json"))?;
        let tokenizer = generator_tokenizer(dir, &meta.tokenizer, &meta.train, device)?;
        let path = dir.join("generator.bpk");
        let bytes = std::fs::read(&path).map_err(|e| harness::Error::io(&path, e))?;
        return Ok(BurnGenerator::from_parts(
            meta,
            bytes,
            tokenizer,
            &path.display().to_string(),
            device,
        )?);
    }
    Ok(models::embedded::generator(name, device)?)
}

/// A generator spec: `ext:CMD` (a worker, see external/PROTOCOL.md), a name or a folder, its burn
/// models on `device`. Returns it with the guidance scale in use (`cfg_scale` when given, else the
/// generator's default); `temperature` overrides the generator's token temperature; `batching` sets
/// how a masked-token generator groups a step's work (the device's way where not chosen).
pub fn open_generator(
    spec: &str,
    cfg_scale: Option<f64>,
    temperature: Option<f64>,
    draws: Draws,
    batching: BatchingChoice,
    device: Device,
) -> anyhow::Result<(Box<dyn Generator>, Option<f64>)> {
    if let Some(cmd) = external::command_of(spec) {
        if batching.is_set() {
            anyhow::bail!("forward_batch, slice_rows: {BATCHING_ONLY} ({spec} is external)");
        }
        if draws != Draws::Host {
            anyhow::bail!(
                "draws: an external generator ({spec}) draws its own tokens; `device` draws are \
                 for evalcot's masked-token generators"
            );
        }
        if temperature.is_some() {
            anyhow::bail!(
                "temperature: an external generator ({spec}) samples its own way; \
                 the evalcot-ext/1 protocol carries no temperature"
            );
        }
        let mut g = external::ExtGenerator::start(
            cmd,
            external::timeout_from_env().map_err(|e| anyhow!(e))?,
        )
        .map_err(|e| anyhow!(e))?;
        if let Some(s) = cfg_scale {
            g.set_cfg_scale(s);
        }
        let scale = g.cfg_scale();
        return Ok((Box::new(g), scale));
    }
    let gpu = device != Device::Cpu;
    on_backend!(device, B, dev => {
        open_burn_generator::<B>(spec, cfg_scale, temperature, draws, batching, gpu, &dev)
    })
}

const BATCHING_ONLY: &str = "only evalcot's masked-token generators batch their steps this way";

/// A run's batching choices.
pub fn batching_of(cfg: &strategies::RunConfig) -> BatchingChoice {
    BatchingChoice {
        forward_batch: cfg.forward_batch,
        slice_rows: cfg.slice_rows,
    }
}

/// The burn half of [`open_generator`]: an AR generator, else a masked-token one.
fn open_burn_generator<B: burn::prelude::Backend>(
    spec: &str,
    cfg_scale: Option<f64>,
    temperature: Option<f64>,
    draws: Draws,
    batching: BatchingChoice,
    gpu: bool,
    device: &B::Device,
) -> anyhow::Result<(Box<dyn Generator>, Option<f64>)> {
    if let Some(mut g) = load_ar_generator_on::<B>(spec, device)? {
        if batching.is_set() {
            anyhow::bail!("forward_batch, slice_rows: {BATCHING_ONLY} ({spec} is autoregressive)");
        }
        if draws != Draws::Host {
            anyhow::bail!(
                "draws: the autoregressive generator {spec} draws on the host only (top-k \
                 sampling); `device` draws are for the masked-token generators"
            );
        }
        if let Some(s) = cfg_scale {
            g.sampling.cfg_scale = s;
        }
        if let Some(t) = temperature {
            g.sampling.temperature = t;
        }
        let scale = g.sampling.cfg_scale;
        return Ok((Box::new(g), Some(scale)));
    }
    let mut g = load_generator_on::<B>(spec, device)?;
    if let Some(s) = cfg_scale {
        g.sampling.cfg_scale = s;
    }
    if let Some(t) = temperature {
        g.sampling.temperature = t;
    }
    g.draws = draws;
    // Speed only (no number changes with batching): wide steps on a GPU.
    g.batching = Batching::resolve(gpu, batching);
    let scale = g.sampling.cfg_scale;
    Ok((Box::new(g), Some(scale)))
}

/// The tokenizer of a generator folder: DIR/tokenizer, else the folder its training config
/// names (a fresh training output holds none), else the shipped tokenizer of that name; a
/// mismatch with the generator is named when it loads.
fn generator_tokenizer<B: burn::prelude::Backend>(
    dir: &Path,
    name: &str,
    train: &serde_json::Value,
    device: &B::Device,
) -> anyhow::Result<models::vq::VqTokenizer<B>> {
    let trained_on = train
        .get("tokenizer")
        .and_then(|v| v.as_str())
        .map(std::path::PathBuf::from);
    let found = [Some(dir.join("tokenizer")), trained_on]
        .into_iter()
        .flatten()
        .find(|t| t.join("tokenizer.json").exists());
    Ok(match found {
        Some(t) => models::vq::VqTokenizer::load_dir(&t, device)?,
        None => models::embedded::tokenizer_named(name, device)?,
    })
}

/// An autoregressive generator on any backend: a shipped AR name or a folder whose
/// generator.json is of the AR family; `None` for anything else.
pub fn load_ar_generator_on<B: burn::prelude::Backend>(
    spec: &str,
    device: &B::Device,
) -> anyhow::Result<Option<models::ar::ArGenerator<B>>> {
    let dir = Path::new(spec);
    if dir.join("generator.json").exists() {
        let Some(meta) = models::ar::read_meta(dir)? else {
            return Ok(None);
        };
        let tokenizer = generator_tokenizer(dir, &meta.tokenizer, &meta.train, device)?;
        let path = dir.join("generator.bpk");
        let bytes = std::fs::read(&path).map_err(|e| harness::Error::io(&path, e))?;
        let what = path.display().to_string();
        return Ok(Some(models::ar::ArGenerator::from_parts(
            meta, bytes, tokenizer, &what, device,
        )?));
    }
    Ok(models::embedded::ar_generator(spec, device)?)
}

/// A judge spec: `ext:CMD`, a name or a folder (on `device`).
pub fn open_judge(spec: &str, device: Device) -> anyhow::Result<Box<dyn Judge>> {
    if let Some(cmd) = external::command_of(spec) {
        let timeout = external::timeout_from_env().map_err(|e| anyhow!(e))?;
        return Ok(Box::new(
            external::ExtJudge::start(cmd, timeout).map_err(|e| anyhow!(e))?,
        ));
    }
    on_backend!(device, B, dev => Ok(Box::new(load_judge_on::<B>(spec, &dev)?)))
}

/// A detector spec: `ext:CMD`, a folder, or the embedded evaluation detector when `None` (on
/// `device`).
pub fn open_detector(spec: Option<&str>, device: Device) -> anyhow::Result<Box<dyn Detector>> {
    if let Some(cmd) = spec.and_then(external::command_of) {
        let timeout = external::timeout_from_env().map_err(|e| anyhow!(e))?;
        return Ok(Box::new(
            external::ExtDetector::start(cmd, timeout).map_err(|e| anyhow!(e))?,
        ));
    }
    let dir = spec.map(Path::new);
    on_backend!(device, B, dev => Ok(Box::new(load_detector_on::<B>(dir, &dev)?)))
}

/// The detector in `dir`, the embedded evaluation detector's first stage alone when `dir` is
/// [`models::embedded::FIRST_STAGE`], or the embedded evaluation detector.
pub fn load_detector(dir: Option<&Path>) -> anyhow::Result<models::detector::BurnDetector<Cpu>> {
    load_detector_on::<Cpu>(dir, &Default::default())
}

/// [`load_detector`] on any backend.
fn load_detector_on<B: burn::prelude::Backend>(
    dir: Option<&Path>,
    device: &B::Device,
) -> anyhow::Result<models::detector::BurnDetector<B>> {
    Ok(match dir {
        // The name is a folder only when no such folder exists: a folder always wins.
        Some(d) if d == Path::new(models::embedded::FIRST_STAGE) && !d.exists() => {
            models::embedded::evaluation_detector(device)?.first_stage()
        }
        Some(d) => models::detector::BurnDetector::<B>::load_dir(d, device)?,
        None => models::embedded::evaluation_detector(device)?,
    })
}

/// A judge by name (`zero-shot`, `fine-tuned`) or folder.
pub fn load_judge(name: &str) -> anyhow::Result<models::judge::BurnJudge<Cpu>> {
    load_judge_on::<Cpu>(name, &Default::default())
}

/// [`load_judge`] on any backend.
fn load_judge_on<B: burn::prelude::Backend>(
    name: &str,
    device: &B::Device,
) -> anyhow::Result<models::judge::BurnJudge<B>> {
    let dir = Path::new(name);
    if dir.join("judge.json").exists() {
        return Ok(models::judge::BurnJudge::load_dir(dir, device)?);
    }
    Ok(models::embedded::judge(name, device)?)
}

pub fn run(args: &RunArgs) -> anyhow::Result<i32> {
    let cfg = resolve(args)?;
    let shard = args
        .shard
        .as_deref()
        .map(|spec| Shard::parse(spec, &|k| std::env::var(k).ok()))
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let base_out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&cfg.strategy));
    if args.profile {
        harness::profile::enable();
    }
    execute(cfg, &base_out, shard)?;
    Ok(0)
}

/// Runs a resolved configuration into `base_out` (or its shard folder): generation, scoring,
/// `results.jsonl` and `summary.json`. Returns the run folder.
pub fn execute(
    mut cfg: RunConfig,
    base_out: &Path,
    shard: Option<Shard>,
) -> anyhow::Result<PathBuf> {
    let suite = match cfg.suite.as_str() {
        "geneval" => Suite::official(),
        path => Suite::load(Path::new(path))?,
    };
    let selection = cfg.selection().map_err(|e| anyhow!(e))?;
    let prompts: Vec<_> = suite.select(&selection)?.into_iter().cloned().collect();
    if prompts.is_empty() {
        anyhow::bail!("the selection matches no prompt of {}", suite.source);
    }
    let device = cfg.device.unwrap_or(Device::Cpu);
    check_device(device)?;
    let (generator, cfg_scale) = open_generator(
        &cfg.generator,
        cfg.cfg_scale,
        cfg.temperature,
        cfg.draws.unwrap_or_default(),
        batching_of(&cfg),
        device,
    )?;
    cfg.cfg_scale = cfg_scale;
    let steps = *cfg.steps.get_or_insert(generator.default_steps());
    let detector = open_detector(cfg.detector.as_deref(), device)?;
    let strategy = strategies::by_name(&cfg.strategy).map_err(|e| anyhow!(e))?;
    let judge = match cfg.strategy.as_str() {
        "baseline" | "oracle" => None,
        _ => Some(open_judge(&cfg.judge, device)?),
    };
    let out = shard.map_or_else(|| base_out.to_path_buf(), |s| s.folder(base_out));
    let resolved = serde_norway::to_string(&cfg)?;
    // Profiling times every model call through a wrapper (one branch here, none per call).
    let profiling = harness::profile::enabled();
    let timed = (
        Timed(generator.as_ref()),
        Timed(detector.as_ref()),
        judge.as_deref().map(Timed),
    );
    let cx = Context {
        generator: if profiling {
            &timed.0
        } else {
            generator.as_ref()
        },
        steps,
        n: cfg.n,
        detector: Some(if profiling {
            &timed.1
        } else {
            detector.as_ref()
        }),
        rules: harness::RuleConfig::default(),
        judge: if profiling {
            timed.2.as_ref().map(|j| j as &dyn Judge)
        } else {
            judge.as_deref()
        },
        decision: cfg.decision,
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
    let scorer = cx.detector.unwrap_or(detector.as_ref());
    let (records, compute) = runner::score(&out, scorer, &cx.rules, 64, &|_| {})?;
    if profiling {
        let profile = Profile::snapshot(started.elapsed().as_secs_f64(), runner::workers(&cx));
        eprint!("{}", profile.render());
        harness::fsutil::write_atomic(
            &out.join(strategies::shard::PROFILE_FILE),
            serde_json::to_string_pretty(&profile)?.as_bytes(),
        )?;
    }
    for r in &records {
        if let Some(e) = r.extra.get("error").and_then(|e| e.as_str()) {
            eprintln!("failed: {}: {e}", r.filename);
        }
    }
    let summary = summarise(&records)?;
    write_summary(&out.join("summary.json"), &summary, Some(scorer.name()))?;
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
