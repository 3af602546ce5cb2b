//! Training an AR generator: next-token prediction on the world's renders, warm-started from a
//! masked-token generator's weights.

use super::config::*;
use super::data::push_raster;
use super::model::*;
use crate::maskgit::data::{to_device, HostBatch};
use crate::maskgit::generator::{GeneratorMeta, GENERATOR_FORMAT};
use crate::maskgit::{MaskGit, MaskGitConfig};
use crate::store::{module_from_bytes, save_module, ModelError};
use crate::train_loop::{self, LoopSpec, StepLoss};
use burn::module::AutodiffModule;
use burn::optim::AdamWConfig;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use std::path::Path;

/// Trains (or resumes) an AR generator into `out`.
pub fn train<B: AutodiffBackend>(
    cfg: &ArTrainConfig,
    out: &Path,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize, &[f64]),
) -> Result<ArMeta, ModelError> {
    cfg.validate()
        .map_err(|m| ModelError::config("AR generator training", m))?;
    let tokenizer = crate::maskgit::training::training_tokenizer::<B::InnerBackend>(
        &cfg.tokenizer,
        &cfg.net,
        "AR generator training",
        device,
    )?;
    let model: MaskGit<B> = match &cfg.init {
        Some(dir) => warm_start(dir, &cfg.net, &tokenizer.meta.name, device)?,
        None => crate::seeded_init::<B, _>(device, cfg.seed, || {
            cfg.net.init_materialized_family::<B>(true, device)
        }),
    };
    let source = world::dataset::SampleSource::styled(
        world::dataset::DatasetKind::Prompts,
        cfg.seed,
        tokenizer.meta.train.style,
    );
    let spec = LoopSpec {
        what: "AR generator",
        config: serde_json::to_value(cfg).map_err(|e| ModelError::config("AR", e.to_string()))?,
        steps: cfg.steps,
        lr: cfg.lr,
        warmup_steps: cfg.warmup_steps,
        checkpoint_every: cfg.checkpoint_every,
        log_every: cfg.log_every,
        columns: &["token_accuracy"],
    };
    let n = cfg.net.image_tokens;
    let mut step_fn = |model: &MaskGit<B>, step: usize| -> Result<StepLoss<B>, ModelError> {
        let samples = crate::maskgit::data::tokenized_samples(
            cfg.seed,
            cfg.uncond_prob,
            cfg.batch_size,
            &source,
            &tokenizer,
            step,
        )?;
        let mut host = HostBatch::default();
        for (ids, grid, _) in &samples {
            push_raster(&mut host, ids, grid, &cfg.net);
        }
        let b = samples.len();
        let (text, input, targets, _) = to_device::<B>(host, cfg.net.text_len, device);
        let logp = log_softmax(model.forward(text, input), 2);
        let picked = logp
            .clone()
            .gather(2, targets.clone().reshape([b, n, 1]))
            .reshape([b, n]);
        let loss = -picked.mean();
        let acc = logp
            .detach()
            .argmax(2)
            .reshape([b, n])
            .equal(targets)
            .float()
            .mean();
        Ok(StepLoss {
            total: loss,
            parts: vec![acc],
            grads: None,
        })
    };
    let model = run_loop(
        &spec,
        out,
        model,
        device,
        cfg.weight_decay,
        &mut step_fn,
        progress,
    )?;
    let meta = ArMeta {
        format: AR_FORMAT.into(),
        name: cfg.name.clone(),
        net: cfg.net,
        tokenizer: tokenizer.meta.name.clone(),
        sampling: cfg.sampling,
        train: serde_json::to_value(cfg).map_err(|e| ModelError::config("AR", e.to_string()))?,
    };
    write_ar(&model.valid(), &meta, out)?;
    Ok(meta)
}

/// The shared training loop with AdamW on a causal network (no edits between steps).
pub(super) fn run_loop<B: AutodiffBackend>(
    spec: &LoopSpec<'_>,
    out: &Path,
    model: MaskGit<B>,
    device: &B::Device,
    weight_decay: f64,
    step_fn: &mut train_loop::StepFn<'_, B, MaskGit<B>>,
    progress: &mut dyn FnMut(usize, usize, &[f64]),
) -> Result<MaskGit<B>, ModelError> {
    let optim = AdamWConfig::new()
        .with_weight_decay(weight_decay as f32)
        .init::<B, MaskGit<B>>();
    train_loop::run(
        spec,
        out,
        model,
        optim,
        device,
        step_fn,
        &mut |m, _| Ok(m),
        progress,
    )
}

/// An AR generator folder: half-precision weights and their metadata.
pub(super) fn write_ar<B: Backend>(
    net: &MaskGit<B>,
    meta: &ArMeta,
    dir: &Path,
) -> Result<(), ModelError> {
    save_module(net, &dir.join("generator.bpk"), true)?;
    train_loop::write_json(&dir.join("generator.json"), meta)
}

/// The causal network with a masked-token generator's weights (`ArTrainConfig::init`).
pub(super) fn warm_start<B: Backend>(
    dir: &Path,
    net: &MaskGitConfig,
    tokenizer: &str,
    device: &B::Device,
) -> Result<MaskGit<B>, ModelError> {
    let json = dir.join("generator.json");
    let what = json.display().to_string();
    // The format first: another family's metadata would fail field by field, naming neither
    // `init` nor the family.
    let value: serde_json::Value = train_loop::read_json(&json)?;
    let format = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if format != GENERATOR_FORMAT {
        return Err(ModelError::config(
            what,
            format!("init: format {format:?}, expected a masked-token generator folder ({GENERATOR_FORMAT:?})"),
        ));
    }
    let meta: GeneratorMeta = serde_json::from_value(value)
        .map_err(|e| ModelError::config(what.clone(), format!("init: {e}")))?;
    if meta.net != *net || meta.tokenizer != tokenizer {
        return Err(ModelError::config(
            what,
            format!(
                "init: network {:?} over tokenizer {:?}, the config asks for {net:?} over {tokenizer:?}",
                meta.net, meta.tokenizer
            ),
        ));
    }
    let path = dir.join("generator.bpk");
    let bytes = std::fs::read(&path).map_err(|e| harness::Error::io(&path, e))?;
    module_from_bytes(
        net.init_family::<B>(true, device),
        bytes,
        &path.display().to_string(),
    )
}
