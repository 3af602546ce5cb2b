//! Opening evalcot's own models by name (shipped in the binary) or folder, on the device a run
//! names: the one place that knows which backend computes for a [`Device`] and how a generator,
//! judge or detector folder is recognised. Worker commands (`ext:CMD`) are the `external` crate's;
//! the binary wires the two.

use crate::maskgit::{Batching, BatchingChoice, BurnGenerator, GeneratorMeta};
use crate::store::ModelError;
use crate::Cpu;
use burn::prelude::Backend;
use harness::detector::Detector;
use harness::generator::{Draws, Generator};
use harness::judge::Judge;
pub use harness::run::Device;
use std::path::Path;

/// Evaluates `$body` with the type `$b` bound to the burn backend of `$device` and `$dev` to its
/// default device handle. The GPU arms exist only in builds with the `cuda` feature; without it
/// a GPU device is a [`ModelError::Device`].
#[macro_export]
macro_rules! on_backend {
    ($device:expr, $b:ident, $dev:ident => $body:expr) => {
        match $device {
            $crate::open::Device::Cpu => $crate::on_backend!(@on $crate::Cpu, $b, $dev => $body),
            #[cfg(feature = "cuda")]
            $crate::open::Device::Cuda => $crate::on_backend!(@on $crate::Gpu, $b, $dev => $body),
            #[cfg(feature = "cuda")]
            $crate::open::Device::CudaF16 => {
                $crate::on_backend!(@on $crate::GpuF16, $b, $dev => $body)
            }
            #[cfg(feature = "cuda")]
            $crate::open::Device::CudaBf16 => {
                $crate::on_backend!(@on $crate::GpuBf16, $b, $dev => $body)
            }
            #[cfg(not(feature = "cuda"))]
            other => Err($crate::open::not_built(other).into()),
        }
    };
    (@on $backend:ty, $b:ident, $dev:ident => $body:expr) => {{
        type $b = $backend;
        let $dev: burn::tensor::Device<$b> = Default::default();
        $body
    }};
}

/// The error for a GPU device in a build without the `cuda` feature.
pub fn not_built(device: Device) -> ModelError {
    ModelError::Device {
        device: device.to_string(),
        message: "this evalcot was built without the `cuda` feature (build with \
                  `cargo build --release --features cuda`, README \"GPU\")"
            .into(),
    }
}

/// Starts `device`'s backend with one tiny tensor, so that a machine where it cannot run (no
/// driver, no GPU) gets one named error instead of a panic from deep inside the backend.
pub fn check_device(device: Device) -> Result<(), ModelError> {
    on_backend!(device, B, dev => probe::<B>(&dev, device))
}

fn probe<B: Backend>(dev: &B::Device, device: Device) -> Result<(), ModelError> {
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
            Err(ModelError::Device {
                device: device.to_string(),
                message: format!("the backend could not start on this machine: {cause}"),
            })
        }
    }
}

/// How a run samples from a generator: each `None` keeps the generator's own default.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SamplingOptions {
    pub cfg_scale: Option<f64>,
    pub temperature: Option<f64>,
    pub draws: Draws,
    pub batching: BatchingChoice,
}

impl SamplingOptions {
    /// The sampling choices of a run's configuration.
    pub fn of(cfg: &harness::run::RunConfig) -> Self {
        SamplingOptions {
            cfg_scale: cfg.cfg_scale,
            temperature: cfg.temperature,
            draws: cfg.draws.unwrap_or_default(),
            batching: BatchingChoice {
                forward_batch: cfg.forward_batch,
                slice_rows: cfg.slice_rows,
            },
        }
    }
}

/// Why a generator other than the masked-token family refuses batching choices.
pub const BATCHING_ONLY: &str = "only evalcot's masked-token generators batch their steps this way";

/// A generator by name (shipped in the binary) or folder, its burn models on `device`, with the
/// guidance scale in use (`cfg_scale` when given, else the generator's default).
pub fn generator(
    spec: &str,
    options: SamplingOptions,
    device: Device,
) -> Result<(Box<dyn Generator>, Option<f64>), ModelError> {
    let gpu = device != Device::Cpu;
    on_backend!(device, B, dev => burn_generator::<B>(spec, options, gpu, &dev))
}

/// The burn half of [`generator`]: an AR generator, else a masked-token one.
fn burn_generator<B: Backend>(
    spec: &str,
    options: SamplingOptions,
    gpu: bool,
    device: &B::Device,
) -> Result<(Box<dyn Generator>, Option<f64>), ModelError> {
    let refuse = |field: &str, message: String| ModelError::Refused {
        field: field.into(),
        message,
    };
    if let Some(mut g) = ar_generator_on::<B>(spec, device)? {
        if options.batching.is_set() {
            return Err(refuse(
                "forward_batch, slice_rows",
                format!("{BATCHING_ONLY} ({spec} is autoregressive)"),
            ));
        }
        if options.draws != Draws::Host {
            return Err(refuse(
                "draws",
                format!(
                    "the autoregressive generator {spec} draws on the host only (top-k \
                     sampling); `device` draws are for the masked-token generators"
                ),
            ));
        }
        if let Some(s) = options.cfg_scale {
            g.sampling.cfg_scale = s;
        }
        if let Some(t) = options.temperature {
            g.sampling.temperature = t;
        }
        let scale = g.sampling.cfg_scale;
        return Ok((Box::new(g), Some(scale)));
    }
    let mut g = generator_on::<B>(spec, device)?;
    if let Some(s) = options.cfg_scale {
        g.sampling.cfg_scale = s;
    }
    if let Some(t) = options.temperature {
        g.sampling.temperature = t;
    }
    g.draws = options.draws;
    // Speed only (no number changes with batching): wide steps on a GPU.
    g.batching = Batching::resolve(gpu, options.batching);
    let scale = g.sampling.cfg_scale;
    Ok((Box::new(g), Some(scale)))
}

/// A masked-token generator by name or folder, on the CPU.
pub fn cpu_generator(name: &str) -> Result<BurnGenerator<Cpu>, ModelError> {
    generator_on::<Cpu>(name, &Default::default())
}

/// A masked-token generator by name or folder on any backend (DPO trains next to a reference on
/// its device).
pub fn generator_on<B: Backend>(
    name: &str,
    device: &B::Device,
) -> Result<BurnGenerator<B>, ModelError> {
    let dir = Path::new(name);
    if dir.join("generator.json").exists() {
        let meta: GeneratorMeta = crate::train_loop::read_json(&dir.join("generator.json"))?;
        let tokenizer = generator_tokenizer(dir, &meta.tokenizer, &meta.train, device)?;
        let path = dir.join("generator.bpk");
        let bytes = std::fs::read(&path).map_err(|e| harness::Error::io(&path, e))?;
        return BurnGenerator::from_parts(
            meta,
            bytes,
            tokenizer,
            &path.display().to_string(),
            device,
        );
    }
    crate::embedded::generator(name, device)
}

/// The tokenizer of a generator folder: DIR/tokenizer, else the folder its training config
/// names (a fresh training output holds none), else the shipped tokenizer of that name; a
/// mismatch with the generator is named when it loads.
fn generator_tokenizer<B: Backend>(
    dir: &Path,
    name: &str,
    train: &serde_json::Value,
    device: &B::Device,
) -> Result<crate::vq::VqTokenizer<B>, ModelError> {
    let trained_on = train
        .get("tokenizer")
        .and_then(|v| v.as_str())
        .map(std::path::PathBuf::from);
    let found = [Some(dir.join("tokenizer")), trained_on]
        .into_iter()
        .flatten()
        .find(|t| t.join("tokenizer.json").exists());
    match found {
        Some(t) => crate::vq::VqTokenizer::load_dir(&t, device),
        None => crate::embedded::tokenizer_named(name, device),
    }
}

/// An autoregressive generator on any backend: a shipped AR name or a folder whose
/// generator.json is of the AR family; `None` for anything else.
pub fn ar_generator_on<B: Backend>(
    spec: &str,
    device: &B::Device,
) -> Result<Option<crate::ar::ArGenerator<B>>, ModelError> {
    let dir = Path::new(spec);
    if dir.join("generator.json").exists() {
        let Some(meta) = crate::ar::read_meta(dir)? else {
            return Ok(None);
        };
        let tokenizer = generator_tokenizer(dir, &meta.tokenizer, &meta.train, device)?;
        let path = dir.join("generator.bpk");
        let bytes = std::fs::read(&path).map_err(|e| harness::Error::io(&path, e))?;
        let what = path.display().to_string();
        return crate::ar::ArGenerator::from_parts(meta, bytes, tokenizer, &what, device).map(Some);
    }
    crate::embedded::ar_generator(spec, device)
}

/// A judge by name (`zero-shot`, `fine-tuned`) or folder, on `device`.
pub fn judge(spec: &str, device: Device) -> Result<Box<dyn Judge>, ModelError> {
    if let Some((dir, clarity)) = evidence_spec(spec)? {
        let judge = harness::evidence::EvidenceJudge::new(detector(Some(&dir), device)?);
        return Ok(Box::new(match clarity {
            Some(c) => judge.with_clarity_from(c),
            None => judge,
        }));
    }
    if let Some((dir, clarity)) = head_spec(spec) {
        let head = harness::evidence::Head::load(&dir.join(HEAD_FILE))?;
        let annotator = detector(Some(Path::new(&head.detector)), device)?;
        let name = dir
            .file_name()
            .map_or("evidence-head".into(), |n| n.to_string_lossy().into_owned());
        let judge = harness::evidence::EvidenceJudge::new(annotator).with_head(head, &name);
        return Ok(Box::new(match clarity {
            Some(c) => judge.with_clarity_from(c),
            None => judge,
        }));
    }
    on_backend!(device, B, dev => Ok(Box::new(judge_on::<B>(spec, &dev)?)))
}

/// The file of a trained evidence head (`evalcot train evidence-head`).
pub const HEAD_FILE: &str = "head.json";

/// `DIR[@SHARE]` where DIR holds an evidence head (`evidence-zero-shot` and
/// `evidence-fine-tuned` name the shipped ones): the folder and the clarity share. A share
/// that does not parse leaves the spec to the other judge kinds (and their errors).
fn head_spec(spec: &str) -> Option<(std::path::PathBuf, Option<f64>)> {
    let (dir, clarity) = match spec.rsplit_once('@') {
        Some((d, c)) => (
            d,
            Some(c.parse::<f64>().ok().filter(|v| (0.0..=1.0).contains(v))?),
        ),
        None => (spec, None),
    };
    // A shipped name is a head even when its folder is missing here (run from elsewhere than
    // the repository root): loading then names the file it looked for.
    let (dir, named) = match dir {
        "evidence-zero-shot" => ("models/weights/judge-evidence-zero-shot", true),
        "evidence-fine-tuned" => ("models/weights/judge-evidence-fine-tuned", true),
        other => (other, false),
    };
    let dir = std::path::PathBuf::from(dir);
    (named || dir.join(HEAD_FILE).is_file()).then_some((dir, clarity))
}

/// The annotator, whose verdicts the judges are trained on, and the default detector of the
/// `evidence` judge.
pub const ANNOTATOR: &str = "models/weights/annotator";

/// `evidence[:DIR][@SHARE]`: the soft GenEval rules over the annotator (or the detector in
/// DIR), clear from SHARE of the schedule on (the judge's default when absent). `None` for
/// other judge names.
pub fn evidence_spec(spec: &str) -> Result<Option<(std::path::PathBuf, Option<f64>)>, ModelError> {
    let Some(rest) = spec.strip_prefix("evidence") else {
        return Ok(None);
    };
    let (rest, clarity) = match rest.rsplit_once('@') {
        Some((r, c)) => {
            let share: f64 = c.parse().ok().filter(|v: &f64| (0.0..=1.0).contains(v)).ok_or_else(|| {
                ModelError::config(
                    format!("judge {spec}"),
                    format!("@{c}: expected the share of the schedule (0 to 1) from which previews are clear"),
                )
            })?;
            (r, Some(share))
        }
        None => (rest, None),
    };
    Ok(match rest {
        "" => Some((ANNOTATOR.into(), clarity)),
        r => r.strip_prefix(':').map(|d| (d.into(), clarity)),
    })
}

/// A judge by name or folder, on the CPU.
pub fn cpu_judge(name: &str) -> Result<crate::judge::BurnJudge<Cpu>, ModelError> {
    judge_on::<Cpu>(name, &Default::default())
}

fn judge_on<B: Backend>(
    name: &str,
    device: &B::Device,
) -> Result<crate::judge::BurnJudge<B>, ModelError> {
    let dir = Path::new(name);
    if dir.join("judge.json").exists() {
        return crate::judge::BurnJudge::load_dir(dir, device);
    }
    crate::embedded::judge(name, device)
}

/// A detector folder, or the embedded evaluation detector when `None`, on `device`.
pub fn detector(dir: Option<&Path>, device: Device) -> Result<Box<dyn Detector>, ModelError> {
    on_backend!(device, B, dev => Ok(Box::new(detector_on::<B>(dir, &dev)?)))
}

/// The detector in `dir`, the embedded evaluation detector's first stage alone when `dir` is
/// [`crate::embedded::FIRST_STAGE`], or the embedded evaluation detector, on the CPU.
pub fn cpu_detector(dir: Option<&Path>) -> Result<crate::detector::BurnDetector<Cpu>, ModelError> {
    detector_on::<Cpu>(dir, &Default::default())
}

fn detector_on<B: Backend>(
    dir: Option<&Path>,
    device: &B::Device,
) -> Result<crate::detector::BurnDetector<B>, ModelError> {
    Ok(match dir {
        // The name is a folder only when no such folder exists: a folder always wins.
        Some(d) if d == Path::new(crate::embedded::FIRST_STAGE) && !d.exists() => {
            crate::embedded::evaluation_detector(device)?.first_stage()
        }
        Some(d) => crate::detector::BurnDetector::<B>::load_dir(d, device)?,
        None => crate::embedded::evaluation_detector(device)?,
    })
}
