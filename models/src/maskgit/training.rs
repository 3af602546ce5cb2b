//! Generator training: masked-token prediction on fresh world renders of the *training* prompts
//! (never the 553 GenEval prompts), tokenised by a frozen tokenizer. The mask ratio follows the
//! cosine schedule (MaskGIT / Show-o); one prompt in ten is replaced by the empty prompt so that
//! classifier-free guidance has an unconditional model to push against.

use super::data::{cosine_mask_for, data_err, push_masked, tokenized_samples, HostBatch};
use super::generator::{GeneratorMeta, SamplingConfig, GENERATOR_FORMAT};
use super::model::{MaskGit, MaskGitConfig};
use crate::store::{save_module, ModelError};
use crate::train_loop::{self, LoopSpec, StepLoss};
use crate::vq::VqTokenizer;
use burn::module::AutodiffModule;
use burn::optim::AdamWConfig;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use world::dataset::{DatasetKind, SampleSource};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorTrainConfig {
    pub name: String,
    pub seed: u64,
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    /// Fraction of samples trained with the empty prompt (for classifier-free guidance).
    pub uncond_prob: f64,
    /// Folder of the tokenizer whose codes the generator predicts.
    pub tokenizer: PathBuf,
    pub checkpoint_every: usize,
    pub log_every: usize,
    /// Every this many steps (0: never) the weights are also exported to
    /// `OUT/snapshots/step-N/`, so that the training budget can be chosen afterwards.
    #[serde(default)]
    pub snapshot_every: usize,
    pub net: MaskGitConfig,
    /// Micro-batches a step's batch is cut into, differentiated at once on the CPU's cores and
    /// summed (`train_loop::micro_batch_step`); 1 keeps one graph. Results depend on this
    /// number, not on the thread count; any value trains the same model up to float rounding.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub micro_batches: usize,
    /// Sampling defaults recorded with the weights.
    #[serde(default)]
    pub sampling: SamplingConfig,
}

fn one() -> usize {
    1
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

impl GeneratorTrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        validate_common(
            &self.net,
            self.steps,
            self.batch_size,
            self.lr,
            self.uncond_prob,
        )?;
        if self.micro_batches == 0 || self.micro_batches > self.batch_size {
            return Err(format!(
                "micro_batches ({}) must be between 1 and batch_size ({})",
                self.micro_batches, self.batch_size
            ));
        }
        self.sampling.validate()
    }
}

/// Checks shared by both generator families' training configs.
pub(crate) fn validate_common(
    net: &MaskGitConfig,
    steps: usize,
    batch_size: usize,
    lr: f64,
    uncond_prob: f64,
) -> Result<(), String> {
    net.validate()?;
    if steps == 0 || batch_size == 0 || lr <= 0.0 {
        return Err("steps ≥ 1, batch_size ≥ 1 and lr > 0 are required".into());
    }
    if !(0.0..1.0).contains(&uncond_prob) {
        return Err(format!("uncond_prob {uncond_prob} must be in [0, 1)"));
    }
    Ok(())
}

/// The tokenizer a generator trains on (`path` from its config), checked against `net`.
pub(crate) fn training_tokenizer<B: Backend>(
    path: &Path,
    net: &MaskGitConfig,
    what: &str,
    device: &B::Device,
) -> Result<VqTokenizer<B>, ModelError> {
    let tokenizer = VqTokenizer::<B>::load_dir(path, device)?;
    if tokenizer.meta.net.codebook != net.codebook
        || tokenizer.meta.net.tokens() != net.image_tokens
    {
        return Err(ModelError::Config {
            what: what.into(),
            message: format!(
                "net.codebook/net.image_tokens ({}/{}) do not match the tokenizer in {} ({}/{})",
                net.codebook,
                net.image_tokens,
                path.display(),
                tokenizer.meta.net.codebook,
                tokenizer.meta.net.tokens()
            ),
        });
    }
    Ok(tokenizer)
}

/// Step `step`'s batch: [`tokenized_samples`], each masked by a cosine-schedule mask.
pub fn batch<B: Backend>(
    cfg: &GeneratorTrainConfig,
    source: &SampleSource,
    tokenizer: &VqTokenizer<B>,
    step: usize,
) -> Result<HostBatch, ModelError> {
    let mut out = HostBatch::default();
    for (text, grid, mut rng) in tokenized_samples(
        cfg.seed,
        cfg.uncond_prob,
        cfg.batch_size,
        source,
        tokenizer,
        step,
    )? {
        let mask = cosine_mask_for(&cfg.net, &mut rng);
        push_masked(&mut out, &text, &grid, &mask, cfg.net.mask_id());
    }
    Ok(out)
}

/// Trains (or resumes) a generator into `out` (`generator.bpk`, `generator.json`, `losses.csv`).
pub fn train<B: AutodiffBackend>(
    cfg: &GeneratorTrainConfig,
    out: &Path,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize, &[f64]),
) -> Result<GeneratorMeta, ModelError> {
    cfg.validate()
        .map_err(|m| ModelError::config("generator training", m))?;
    let tokenizer = training_tokenizer::<B::InnerBackend>(
        &cfg.tokenizer,
        &cfg.net,
        "generator training",
        device,
    )?;
    let model: MaskGit<B> =
        crate::seeded_init::<B, _>(device, cfg.seed, || cfg.net.init_materialized(device));
    let optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay as f32)
        .init::<B, MaskGit<B>>();
    // Scenes in the world style the tokenizer was trained for: it represents only that style
    // faithfully.
    let source = SampleSource::styled(DatasetKind::Prompts, cfg.seed, tokenizer.meta.train.style);
    let spec = LoopSpec {
        what: "generator",
        config: serde_json::to_value(cfg).map_err(|e| data_err(e.to_string()))?,
        steps: cfg.steps,
        lr: cfg.lr,
        warmup_steps: cfg.warmup_steps,
        checkpoint_every: cfg.checkpoint_every,
        log_every: cfg.log_every,
        columns: &["token_accuracy"],
    };
    let mut step_fn = |model: &MaskGit<B>, step: usize| -> Result<StepLoss<B>, ModelError> {
        let host = batch(cfg, &source, &tokenizer, step)?;
        if cfg.micro_batches == 1 {
            return Ok(masked_token_loss(
                model,
                &host,
                None,
                cfg.net.text_len,
                device,
            ));
        }
        let masked = host.masked.iter().filter(|&&m| m > 0.0).count();
        let slices = split_batch(&host, cfg.micro_batches, cfg.net.text_len);
        train_loop::micro_batch_step(model, slices.len(), device, |local, i| {
            Ok(masked_token_loss(
                local,
                &slices[i],
                Some(masked),
                cfg.net.text_len,
                device,
            ))
        })
    };
    let mut snapshot = |m: MaskGit<B>, step: usize| -> Result<MaskGit<B>, ModelError> {
        if cfg.snapshot_every > 0 && (step + 1).is_multiple_of(cfg.snapshot_every) {
            let dir = out.join("snapshots").join(format!("step-{}", step + 1));
            std::fs::create_dir_all(&dir).map_err(|e| harness::Error::io(&dir, e))?;
            write_generator(&m.valid(), &meta_of(cfg, &tokenizer.meta.name)?, &dir)?;
        }
        Ok(m)
    };
    let model = train_loop::run(
        &spec,
        out,
        model,
        optim,
        device,
        &mut step_fn,
        &mut snapshot,
        progress,
    )?;
    let meta = meta_of(cfg, &tokenizer.meta.name)?;
    write_generator(&model.valid(), &meta, out)?;
    Ok(meta)
}

/// The masked-token cross-entropy of `host` and its token accuracy. With `whole` the loss is a
/// sum over `host`'s masked tokens divided by `whole` (a micro-batch of a batch with that many);
/// without, the mean over them.
fn masked_token_loss<B: AutodiffBackend>(
    model: &MaskGit<B>,
    host: &HostBatch,
    whole: Option<usize>,
    text_len: usize,
    device: &B::Device,
) -> StepLoss<B> {
    // The loss reads only the masked positions: the head (a third of the work) runs there
    // only, as in sampling (`MaskGit::row_logits`). Every sample has one at least.
    let (rows, wanted): (Vec<i64>, Vec<i64>) = host
        .masked
        .iter()
        .zip(&host.targets)
        .enumerate()
        .filter(|(_, (&m, _))| m > 0.0)
        .map(|(i, (_, &t))| (i as i64, t))
        .unzip();
    let m = rows.len();
    // Only the prompt and the masked input go to the device: targets were gathered above.
    let b = host.text.len() / text_len;
    let n = host.input.len() / b.max(1);
    let text =
        Tensor::<B, 2, Int>::from_data(TensorData::new(host.text.clone(), [b, text_len]), device);
    let input = Tensor::<B, 2, Int>::from_data(TensorData::new(host.input.clone(), [b, n]), device);
    let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [m]), device);
    let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(wanted, [m]), device);
    let logits = model.row_logits(text, input, rows).slice(0, m);
    let logp = burn::tensor::activation::log_softmax(logits, 1);
    let picked = logp.clone().gather(1, targets.clone().reshape([m, 1]));
    let right = logp.detach().argmax(1).reshape([m]).equal(targets).float();
    let (loss, acc) = match whole {
        None => (-picked.mean(), right.mean()),
        Some(n) => (-picked.sum() / n as f64, right.sum() / n as f64),
    };
    StepLoss {
        total: loss,
        parts: vec![acc],
        grads: None,
    }
}

/// `host` cut into `slices` runs of whole samples, as even as possible (never empty).
fn split_batch(host: &HostBatch, slices: usize, text_len: usize) -> Vec<HostBatch> {
    let b = host.text.len() / text_len;
    let n = host.targets.len() / b.max(1);
    let slices = slices.clamp(1, b.max(1));
    (0..slices)
        .map(|i| {
            let (lo, hi) = (i * b / slices, (i + 1) * b / slices);
            HostBatch {
                text: host.text[lo * text_len..hi * text_len].to_vec(),
                input: host.input[lo * n..hi * n].to_vec(),
                targets: host.targets[lo * n..hi * n].to_vec(),
                masked: host.masked[lo * n..hi * n].to_vec(),
            }
        })
        .collect()
}

fn meta_of(cfg: &GeneratorTrainConfig, tokenizer: &str) -> Result<GeneratorMeta, ModelError> {
    Ok(GeneratorMeta {
        format: GENERATOR_FORMAT.into(),
        name: cfg.name.clone(),
        net: cfg.net,
        tokenizer: tokenizer.to_string(),
        sampling: cfg.sampling,
        train: serde_json::to_value(cfg).map_err(|e| data_err(e.to_string()))?,
    })
}

/// Writes `generator.bpk` (half precision) and `generator.json` into `dir`.
pub fn write_generator<B: Backend>(
    net: &MaskGit<B>,
    meta: &GeneratorMeta,
    dir: &Path,
) -> Result<(), ModelError> {
    save_module(net, &dir.join("generator.bpk"), true)?;
    train_loop::write_json(&dir.join("generator.json"), meta)
}
