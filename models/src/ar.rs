//! The second generator family (issue 12): an autoregressive transformer over the same image
//! tokens in raster order (LlamaGen-style) — causal attention with a key/value cache, classifier-
//! free guidance with the empty prompt, temperature and top-k sampling — behind the same
//! `Generator` trait as the masked-token generator.
//!
//! Steps: a schedule of T steps generates the raster in T groups of rows (64 tokens, T = 8: one
//! row a step). The judged image after a step is the committed prefix with the rest filled by
//! the model's greedy continuation (the most likely completion given the prefix — what the image
//! "is becoming"), computed in the same cached pass and counted in the step's forwards.
//!
//! Draws: one per token position (`derive_seed(seed, [POSITION_DRAW, position])`), not one per
//! step, so an image does not depend on how the raster is cut into steps and `run_to_end`
//! (everything left in one pass, no previews) equals stepping.

use crate::maskgit::dpo::{dpo_loss, total_steps, DpoTrainConfig, Pair};
use crate::maskgit::generator::{GeneratorMeta, GENERATOR_FORMAT};
use crate::maskgit::training::{prompt_ids, to_device, HostBatch};
use crate::maskgit::{MaskGit, MaskGitConfig};
use crate::store::{module_from_bytes, save_module, ModelError};
use crate::train_loop::{self, LoopSpec, StepLoss};
use crate::vq::VqTokenizer;
use burn::module::AutodiffModule;
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::transformer::TransformerEncoderInput;
use burn::optim::AdamWConfig;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use harness::generator::{Generator, Trajectory, MASK};
use harness::rng::{derive_seed, Rng};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version tag of an AR generator's `generator.json`.
/// Raster-order decoding predicts one token per position; token groups are for the
/// masked-token family only.
const NO_GROUPS: &str =
    "net.group must be 1 for the autoregressive family (one token per position)";

pub const AR_FORMAT: &str = "evalcot-ar-1";

/// Key of a sampled position's draw: `derive_seed(trajectory seed, [POSITION_DRAW, position])`.
const POSITION_DRAW: u64 = u64::MAX - 1;

/// Sampling settings of the AR generator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArSampling {
    /// Steps T of a schedule (groups of rows).
    pub steps: usize,
    pub cfg_scale: f64,
    pub temperature: f64,
    /// Sample among the k most likely codes (0: all).
    pub top_k: usize,
}

impl Default for ArSampling {
    fn default() -> Self {
        ArSampling {
            steps: 8,
            cfg_scale: 1.75,
            temperature: 1.0,
            top_k: 0,
        }
    }
}

/// The BOS id in the image vocabulary (after the codes; the masked-token family's mask id).
fn bos(cfg: &MaskGitConfig) -> usize {
    cfg.codebook
}

/// What an AR generator's `generator.json` holds (the masked-token generator's metadata with
/// its own format tag and sampling).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArMeta {
    pub format: String,
    pub name: String,
    pub net: MaskGitConfig,
    pub tokenizer: String,
    pub sampling: ArSampling,
    pub train: serde_json::Value,
}

/// A trained AR generator with its tokenizer.
pub struct ArGenerator<B: Backend> {
    pub net: MaskGit<B>,
    pub tokenizer: VqTokenizer<B>,
    pub meta: ArMeta,
    pub sampling: ArSampling,
    device: B::Device,
}

impl<B: Backend> ArGenerator<B> {
    pub fn from_parts(
        meta: ArMeta,
        weights: Vec<u8>,
        tokenizer: VqTokenizer<B>,
        what: &str,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        let bad = |message: String| ModelError::config(what, message);
        if meta.format != AR_FORMAT {
            return Err(bad(format!(
                "format {:?}, expected {AR_FORMAT:?}",
                meta.format
            )));
        }
        meta.net.validate().map_err(bad)?;
        if meta.net.group != 1 {
            return Err(bad(NO_GROUPS.into()));
        }
        if meta.net.codebook != tokenizer.meta.net.codebook
            || meta.net.image_tokens != tokenizer.meta.net.tokens()
        {
            return Err(bad(format!(
                "was trained on tokenizer {:?}, given {:?} ({} codes, {} tokens)",
                meta.tokenizer,
                tokenizer.meta.name,
                tokenizer.meta.net.codebook,
                tokenizer.meta.net.tokens()
            )));
        }
        let net = module_from_bytes(meta.net.init_family::<B>(true, device), weights, what)?;
        Ok(ArGenerator {
            net,
            tokenizer,
            sampling: meta.sampling,
            meta,
            device: device.clone(),
        })
    }

    /// Tokens to commit at step `t` of `steps` with `done` of `n` committed: an even share of
    /// what is left, so the last step finishes the raster.
    fn share(n: usize, done: usize, t: usize, steps: usize) -> usize {
        let left_steps = steps.saturating_sub(t).max(1);
        (n - done).div_ceil(left_steps)
    }

    /// Guided log-probabilities at the last position for `rows` (cond rows then uncond rows in
    /// the cache), `[b, codebook]` on the host.
    fn last_log_probs(&self, h: Tensor<B, 3>, b: usize) -> Result<Vec<f32>, String> {
        let [rows, len, d] = h.dims();
        let last = h.slice([0..rows, len - 1..len, 0..d]);
        let logits = self
            .net
            .head
            .forward(self.net.norm.forward(last))
            .reshape([rows, self.meta.net.codebook]);
        crate::maskgit::generator::guided_log_probs(
            logits,
            b,
            self.sampling.cfg_scale,
            &self.meta.name,
        )
    }

    /// Steps a group of trajectories with the same committed prefix length; `to_end` commits
    /// the whole rest of the raster in this one call (and skips the previews nobody reads).
    fn step_group(&self, group: &mut [&mut Trajectory], to_end: bool) -> Result<(), String> {
        let cfg = self.meta.net;
        let (n, b) = (cfg.image_tokens, group.len());
        let done = group[0].tokens.iter().take_while(|&&t| t != MASK).count();
        let mut text = Vec::with_capacity(2 * b * cfg.text_len);
        for t in group.iter() {
            text.extend(
                prompt_ids(&t.prompt).map_err(|e| format!("generator {}: {e}", self.meta.name))?,
            );
        }
        let empty = prompt_ids("")?;
        for _ in 0..b {
            text.extend_from_slice(&empty);
        }
        // Per row: BOS then the committed prefix; the cond and uncond rows share the codes.
        let mut seqs: Vec<Vec<i64>> = group
            .iter()
            .map(|t| {
                std::iter::once(bos(&cfg) as i64)
                    .chain(t.tokens[..done].iter().map(|&v| v as i64))
                    .collect()
            })
            .collect();
        let d = &self.device;
        let text = Tensor::<B, 2, Int>::from_data(TensorData::new(text, [2 * b, cfg.text_len]), d);
        let text_emb = self.net.text_emb.forward(text);
        let mut cache = self.net.encoder.new_autoregressive_cache();
        let share = if to_end {
            n - done
        } else {
            Self::share(n, done, group[0].step, group[0].steps)
        };
        let mut passes = 0u64;
        // Generate to the end of the raster: the first `share` tokens sampled (committed), the
        // rest greedy (the preview).
        for pos in done..n {
            let len = seqs[0].len();
            let ids: Vec<i64> = (0..2)
                .flat_map(|_| seqs.iter().flatten().copied())
                .collect();
            let image = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [2 * b, len]), d);
            let x = Tensor::cat(vec![text_emb.clone(), self.net.image_emb.forward(image)], 1);
            let [rows, full, dm] = x.dims();
            let x = x + self
                .net
                .pos
                .val()
                .narrow(0, 0, full)
                .reshape([1, full, dm])
                .expand([rows, full, dm]);
            let mask = generate_autoregressive_mask::<B>(rows, full, d);
            let h = self.net.encoder.forward_autoregressive_inference(
                TransformerEncoderInput::new(x).mask_attn(mask),
                &mut cache,
            );
            passes += 1;
            let logp = self.last_log_probs(h, b)?;
            let k = cfg.codebook;
            let sampled = pos < done + share;
            for (j, seq) in seqs.iter_mut().enumerate() {
                let row = &logp[j * k..(j + 1) * k];
                let code = if sampled {
                    // One draw per position, not per step: the image does not depend on how
                    // the raster is cut into steps (`run_to_end` equals stepping).
                    let mut rng =
                        Rng::new(derive_seed(group[j].seed, &[POSITION_DRAW, pos as u64]));
                    sample(
                        row,
                        self.sampling.temperature,
                        self.sampling.top_k,
                        &mut rng,
                    )
                } else {
                    argmax(row)
                };
                seq.push(code as i64);
            }
            if pos + 1 == n {
                break;
            }
        }
        for (t, seq) in group.iter_mut().zip(&seqs) {
            let codes: Vec<u32> = seq[1..].iter().map(|&v| v as u32).collect();
            for (p, tok) in t.tokens.iter_mut().enumerate() {
                if p >= done && p < done + share {
                    *tok = codes[p];
                }
            }
            t.prediction = codes;
            t.prediction.resize(n, 0);
            t.step = if to_end { t.steps } else { t.step + 1 };
            t.forwards += 2 * passes;
        }
        Ok(())
    }

    /// One step (or, `to_end`, the rest of the schedule) of every unfinished trajectory.
    fn advance(&self, batch: &mut [Trajectory], to_end: bool) -> Result<(), String> {
        let n = self.meta.net.image_tokens;
        for t in batch.iter() {
            if t.tokens.len() != n {
                return Err(format!(
                    "trajectory of {} tokens, generator expects {n}",
                    t.tokens.len()
                ));
            }
            let done = t.tokens.iter().take_while(|&&x| x != MASK).count();
            if t.tokens[done..].iter().any(|&x| x != MASK) {
                return Err(format!(
                    "generator {} writes in raster order and cannot fill a re-opened region \
                     (self-correction by re-masking needs the masked-token generator)",
                    self.meta.name
                ));
            }
        }
        // Trajectories step together when their prefixes are equally long and they are at the
        // same point of the same schedule (one cache and one share per group).
        let mut groups: std::collections::BTreeMap<(usize, usize, usize), Vec<&mut Trajectory>> =
            Default::default();
        for t in batch.iter_mut().filter(|t| !t.done()) {
            let done = t.tokens.iter().take_while(|&&x| x != MASK).count();
            groups.entry((done, t.step, t.steps)).or_default().push(t);
        }
        for group in groups.values_mut() {
            self.step_group(group, to_end)?;
        }
        Ok(())
    }
}

/// A draw from `exp(row / temperature)` among the `top_k` most likely codes (all when 0).
fn sample(row: &[f32], temperature: f64, top_k: usize, rng: &mut Rng) -> usize {
    if temperature <= 0.0 {
        return argmax(row);
    }
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    if top_k > 0 {
        order.truncate(top_k);
    }
    let max = row[order[0]] as f64;
    let weights: Vec<f64> = order
        .iter()
        .map(|&i| ((row[i] as f64 - max) / temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut u = rng.f64() * total;
    for (&i, w) in order.iter().zip(&weights) {
        if u < *w {
            return i;
        }
        u -= w;
    }
    order[order.len() - 1]
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best })
}

impl<B: Backend> Generator for ArGenerator<B>
where
    B::Device: Send + Sync,
    MaskGit<B>: Send + Sync,
    VqTokenizer<B>: Send + Sync,
{
    fn name(&self) -> &str {
        &self.meta.name
    }

    fn grid(&self) -> (usize, usize) {
        let g = self.tokenizer.meta.net.grid;
        (g, g)
    }

    fn default_steps(&self) -> usize {
        self.sampling.steps
    }

    fn step(&self, batch: &mut [Trajectory]) -> Result<(), String> {
        self.advance(batch, false)
    }

    /// The rest of every trajectory in one cached pass per position: the same images as
    /// stepping (draws are per position), without the previews of the intermediate steps.
    fn run_to_end(&self, batch: &mut [Trajectory]) -> Result<(), String> {
        self.advance(batch, true)
    }

    fn decode(&self, batch: &[Trajectory]) -> Result<Vec<RgbImage>, String> {
        crate::maskgit::generator::decode_predictions(&self.tokenizer, batch)
    }

    /// The conditional log-probability of all tokens (teacher forcing); an AR model scores the
    /// whole sequence, so `seed` is not used.
    fn log_prob(&self, prompt: &str, tokens: &[u32], _seed: u64) -> Result<f64, String> {
        let cfg = self.meta.net;
        if tokens.len() != cfg.image_tokens {
            return Err(format!(
                "{} tokens given, generator expects {}",
                tokens.len(),
                cfg.image_tokens
            ));
        }
        let mut host = HostBatch::default();
        push_raster(&mut host, &prompt_ids(prompt)?, tokens, &cfg);
        let (text, image, targets, all) = to_device::<B>(host, cfg.text_len, &self.device);
        let lp = self.net.masked_log_prob(text, image, targets, all);
        Ok(lp.into_scalar().elem::<f64>())
    }
}

/// `evalcot train ar --config FILE`: next-token prediction on the same world data as the
/// masked-token generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArTrainConfig {
    pub name: String,
    pub seed: u64,
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    pub uncond_prob: f64,
    pub tokenizer: PathBuf,
    pub checkpoint_every: usize,
    pub log_every: usize,
    pub net: MaskGitConfig,
    #[serde(default)]
    pub sampling: ArSampling,
    /// A masked-token generator folder (same `net`, same tokenizer) whose weights start the
    /// causal network: its code embeddings, output layer and text encoder carry over, and its
    /// [MASK] embedding becomes the BOS token (both are id `codebook`). Absent: random start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
}

impl ArTrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        crate::maskgit::training::validate_common(
            &self.net,
            self.steps,
            self.batch_size,
            self.lr,
            self.uncond_prob,
        )?;
        if self.net.group != 1 {
            return Err(NO_GROUPS.into());
        }
        if self.sampling.steps == 0 || self.sampling.steps > self.net.image_tokens {
            return Err("sampling.steps must be between 1 and the number of image tokens".into());
        }
        Ok(())
    }
}

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
        let samples = crate::maskgit::training::tokenized_samples(
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
fn run_loop<B: AutodiffBackend>(
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
fn write_ar<B: Backend>(net: &MaskGit<B>, meta: &ArMeta, dir: &Path) -> Result<(), ModelError> {
    save_module(net, &dir.join("generator.bpk"), true)?;
    train_loop::write_json(&dir.join("generator.json"), meta)
}

/// One teacher-forced row: the input is BOS then the grid shifted by one, every position a
/// target (`masked` all ones, so `MaskGit::masked_log_prob` is the sequence log-probability).
fn push_raster(host: &mut HostBatch, text: &[i64], grid: &[u32], net: &MaskGitConfig) {
    let n = net.image_tokens;
    host.text.extend_from_slice(text);
    host.input.push(bos(net) as i64);
    host.input.extend(grid[..n - 1].iter().map(|&v| v as i64));
    host.targets.extend(grid.iter().map(|&v| v as i64));
    host.masked.extend(std::iter::repeat_n(1.0, n));
}

/// DPO of an AR generator (`evalcot train dpo` with an AR `init`): the paper's loss over
/// sequence log-probabilities log π(image tokens | prompt) under teacher forcing, the conditional
/// model without guidance (as DPO for language models). Pairs come from the same judged samples
/// as the masked-token family's (`dpo::judge_samples`, `dpo::select_pairs`). The online reward
/// term is implemented for the masked-token family only and is refused here.
pub fn train_dpo<B: AutodiffBackend>(
    cfg: &DpoTrainConfig,
    pairs: &[Pair],
    init: &ArGenerator<B::InnerBackend>,
    reference: &ArGenerator<B::InnerBackend>,
    out: &Path,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize, &[f64]),
) -> Result<ArMeta, ModelError> {
    let err = |m: String| ModelError::config("AR DPO", m);
    cfg.validate().map_err(err)?;
    if cfg.reward.is_some() {
        return Err(err(
            "reward: the online reward term is implemented for the masked-token family only".into(),
        ));
    }
    if pairs.is_empty() {
        return Err(err(
            "no preference pairs: every prompt's samples got the same verdict".into(),
        ));
    }
    let net_cfg = init.meta.net;
    if reference.meta.net != net_cfg {
        return Err(err(
            "the reference generator has another architecture than init".into(),
        ));
    }
    let what = format!("AR DPO init {}", init.meta.name);
    let bytes = crate::store::module_to_bytes(&init.net, true, &what)?;
    let policy: MaskGit<B> =
        module_from_bytes(net_cfg.init_family::<B>(true, device), bytes, &what)?;
    let steps = total_steps(cfg, pairs.len());
    let config = serde_json::to_value(cfg).map_err(|e| err(e.to_string()))?;
    let spec = LoopSpec {
        what: "AR DPO",
        config: config.clone(),
        steps,
        lr: cfg.lr,
        warmup_steps: (cfg.warmup_ratio * steps as f64).round() as usize,
        checkpoint_every: cfg.checkpoint_every,
        log_every: cfg.log_every,
        columns: &["dpo", "accuracy", "margin"],
    };
    let inner = reference.device.clone();
    let mut step_fn = |model: &MaskGit<B>, step: usize| -> Result<StepLoss<B>, ModelError> {
        // Rows 0..b are the chosen images, b..2b the rejected ones.
        let b = cfg.batch_size.min(pairs.len());
        let mut host = HostBatch::default();
        for side in 0..2 {
            for j in 0..b {
                let p = &pairs[(step * cfg.batch_size + j) % pairs.len()];
                let grid = if side == 0 { &p.chosen } else { &p.rejected };
                let text = prompt_ids(&p.prompt).map_err(err)?;
                push_raster(&mut host, &text, grid, &net_cfg);
            }
        }
        let (rt, ri, rg, rm) = to_device::<B::InnerBackend>(host.clone(), net_cfg.text_len, &inner);
        let ref_lp = reference.net.masked_log_prob(rt, ri, rg, rm);
        let ref_lp = Tensor::<B, 1>::from_data(ref_lp.into_data(), device);
        let (text, input, targets, all) = to_device::<B>(host, net_cfg.text_len, device);
        let delta = model.masked_log_prob(text, input, targets, all) - ref_lp;
        let (dpo, accuracy, margin) = dpo_loss(delta, b, cfg.beta);
        Ok(StepLoss {
            total: dpo.clone(),
            parts: vec![dpo.detach(), accuracy, margin],
            grads: None,
        })
    };
    let model = run_loop(
        &spec,
        out,
        policy,
        device,
        cfg.weight_decay,
        &mut step_fn,
        progress,
    )?;
    let meta = ArMeta {
        format: AR_FORMAT.into(),
        name: cfg.name.clone(),
        net: net_cfg,
        tokenizer: init.meta.tokenizer.clone(),
        sampling: init.sampling,
        train: config,
    };
    write_ar(&model.valid(), &meta, out)?;
    Ok(meta)
}

/// The causal network with a masked-token generator's weights (`ArTrainConfig::init`).
fn warm_start<B: Backend>(
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

/// Reads an AR generator folder's metadata, or `None` when the folder holds another family.
pub fn read_meta(dir: &Path) -> Result<Option<ArMeta>, ModelError> {
    let v: serde_json::Value = train_loop::read_json(&dir.join("generator.json"))?;
    if v.get("format").and_then(|f| f.as_str()) != Some(AR_FORMAT) {
        return Ok(None);
    }
    Ok(Some(serde_json::from_value(v).map_err(|e| {
        ModelError::config(dir.display().to_string(), e.to_string())
    })?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cpu;

    fn tiny() -> ArGenerator<Cpu> {
        let (net, bytes, tokenizer) = crate::testutil::tiny_net(true, 2, 5, 1);
        let meta = ArMeta {
            format: AR_FORMAT.into(),
            name: "ar-tiny".into(),
            net,
            tokenizer: tokenizer.meta.name.clone(),
            sampling: ArSampling {
                top_k: 50,
                ..ArSampling::default()
            },
            train: serde_json::Value::Null,
        };
        ArGenerator::from_parts(meta, bytes, tokenizer, "ar", &Default::default()).unwrap()
    }

    #[test]
    fn cached_decoding_matches_the_full_forward() {
        // Greedy continuation through the cache must pick what the teacher-forced forward
        // ranks first at every position.
        let g = ArGenerator {
            sampling: ArSampling {
                temperature: 0.0,
                cfg_scale: 0.0,
                ..ArSampling::default()
            },
            ..tiny()
        };
        let mut t = vec![g.start("a photo of a dog", 1, 8)];
        g.run_to_end(&mut t).unwrap();
        let cfg = g.meta.net;
        let d = Default::default();
        let text = Tensor::<Cpu, 2, Int>::from_data(
            TensorData::new(prompt_ids("a photo of a dog").unwrap(), [1, cfg.text_len]),
            &d,
        );
        let input: Vec<i64> = std::iter::once(bos(&cfg) as i64)
            .chain(t[0].tokens[..63].iter().map(|&v| v as i64))
            .collect();
        let image = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(input, [1, 64]), &d);
        let full: Vec<i64> = g
            .net
            .forward(text, image)
            .argmax(2)
            .into_data()
            .convert::<i64>()
            .to_vec()
            .unwrap();
        let got: Vec<i64> = t[0].tokens.iter().map(|&v| v as i64).collect();
        assert_eq!(got, full);
    }

    #[test]
    fn steps_commit_rows_preview_the_rest_and_repeat_per_seed() {
        let g = tiny();
        let mut a = vec![
            g.start("a photo of a red cat", 3, 8),
            g.start("a photo of a cake", 4, 8),
        ];
        g.step(&mut a).unwrap();
        assert_eq!(
            a[0].tokens.iter().filter(|&&t| t != MASK).count(),
            8,
            "one row a step"
        );
        assert_eq!(a[0].prediction.len(), 64);
        assert_eq!(&a[0].prediction[..8], &a[0].tokens[..8]);
        assert!(
            a[0].forwards > 2,
            "the preview costs forwards: {}",
            a[0].forwards
        );
        g.run_to_end(&mut a).unwrap();
        assert!(a
            .iter()
            .all(|t| t.done() && !t.tokens.contains(&MASK) && t.tokens == t.prediction));
        // Alone or in a batch, the same seed gives the same image, and so does `run_to_end`
        // (one pass, no previews) against stepping: draws are per position, not per step.
        let mut alone = vec![g.start("a photo of a cake", 4, 8)];
        g.run_to_end(&mut alone).unwrap();
        assert_eq!(alone[0].tokens, a[1].tokens);
        assert!(alone[0].done() && alone[0].forwards < a[1].forwards);
        let mut stepped = vec![g.start("a photo of a cake", 4, 8)];
        while !stepped[0].done() {
            g.step(&mut stepped).unwrap();
        }
        assert_eq!(stepped[0].tokens, alone[0].tokens);
        assert_ne!(a[0].tokens, a[1].tokens);
        assert_eq!(g.decode(&a).unwrap()[0].dimensions(), (64, 64));
        let lp = g.log_prob("a photo of a cake", &a[1].tokens, 0).unwrap();
        assert!(lp.is_finite() && lp < 0.0);
        // Re-opened regions are refused with a reason.
        let r = a[0].remask(&[3], 2, 9).unwrap();
        assert!(g.step(&mut [r]).unwrap_err().contains("raster order"));
    }

    /// Unguided sequence log-probabilities of `grids` under `net` (what AR DPO compares).
    fn sequence_lp(net: &MaskGit<Cpu>, cfg: &MaskGitConfig, rows: &[(&str, &[u32])]) -> Vec<f32> {
        let mut host = HostBatch::default();
        for (prompt, grid) in rows {
            push_raster(&mut host, &prompt_ids(prompt).unwrap(), grid, cfg);
        }
        let (t, i, g, m) = to_device::<Cpu>(host, cfg.text_len, &Default::default());
        net.masked_log_prob(t, i, g, m)
            .into_data()
            .to_vec()
            .unwrap()
    }

    fn dpo_config(reward: bool) -> DpoTrainConfig {
        use crate::maskgit::dpo::{PairRule, PairsConfig, RewardConfig};
        DpoTrainConfig {
            name: "ar-dpo-test".into(),
            seed: 1,
            init: "ar-tiny".into(),
            reference: None,
            pairs: PairsConfig {
                sampler: None,
                judge: "none".into(),
                prompts: 2,
                samples_per_prompt: 2,
                steps: None,
                seed: 2,
                rule: PairRule::Ranked,
                min_gap: 0.0,
            },
            epochs: 8,
            batch_size: 2,
            lr: 3e-3,
            warmup_ratio: 0.0,
            weight_decay: 0.0,
            beta: 0.1,
            reward: reward.then(|| RewardConfig {
                judge: "none".into(),
                task: harness::judge::JudgeTask::Final,
                weight: 0.1,
                samples_per_step: 2,
                samples_per_prompt: 2,
                normalize: true,
                steps: None,
            }),
            checkpoint_every: 100,
            log_every: 1,
        }
    }

    #[test]
    fn dpo_starts_at_ln2_and_shifts_probability_to_the_chosen_sequences() {
        let g = tiny();
        let prompts = ["a photo of a red cat", "a photo of a cake"];
        let mut t: Vec<Trajectory> = (0..4)
            .map(|k| g.start(prompts[k / 2], 10 + k as u64, 8))
            .collect();
        g.run_to_end(&mut t).unwrap();
        let pairs: Vec<Pair> = (0..2)
            .map(|j| Pair {
                prompt: prompts[j].into(),
                chosen: t[2 * j].tokens.clone(),
                rejected: t[2 * j + 1].tokens.clone(),
                p_chosen: 0.9,
                p_rejected: 0.1,
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let d = Default::default();
        let refused = train_dpo::<crate::CpuTrain>(
            &dpo_config(true),
            &pairs,
            &g,
            &g,
            dir.path(),
            &d,
            &mut |_, _, _| {},
        );
        assert!(refused
            .unwrap_err()
            .to_string()
            .contains("masked-token family only"));
        train_dpo::<crate::CpuTrain>(
            &dpo_config(false),
            &pairs,
            &g,
            &g,
            dir.path(),
            &d,
            &mut |_, _, _| {},
        )
        .unwrap();
        let csv = std::fs::read_to_string(dir.path().join("losses.csv")).unwrap();
        let first: f64 = csv
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .nth(3)
            .unwrap()
            .parse()
            .unwrap();
        assert!((first - std::f64::consts::LN_2).abs() < 1e-4, "{csv}");
        let meta = read_meta(dir.path()).unwrap().expect("an AR folder");
        assert_eq!(meta.name, "ar-dpo-test");
        let bytes = std::fs::read(dir.path().join("generator.bpk")).unwrap();
        let trained =
            ArGenerator::from_parts(meta, bytes, g.tokenizer.clone(), "trained", &d).unwrap();
        let rows: Vec<(&str, &[u32])> = pairs
            .iter()
            .flat_map(|p| {
                [
                    (p.prompt.as_str(), &p.chosen[..]),
                    (p.prompt.as_str(), &p.rejected[..]),
                ]
            })
            .collect();
        let before = sequence_lp(&g.net, &g.meta.net, &rows);
        let after = sequence_lp(&trained.net, &g.meta.net, &rows);
        for j in 0..2 {
            let margin = (after[2 * j] - before[2 * j]) - (after[2 * j + 1] - before[2 * j + 1]);
            assert!(margin > 0.0, "pair {j}: implicit reward margin {margin}");
        }
    }

    #[test]
    fn warm_start_takes_a_masked_generators_weights_and_names_a_mismatch() {
        use crate::maskgit::SamplingConfig;
        let (net, bytes, tokenizer) = crate::testutil::tiny_net(false, 2, 5, 1);
        let dir = tempfile::tempdir().unwrap();
        let meta = GeneratorMeta {
            format: GENERATOR_FORMAT.into(),
            name: "masked".into(),
            net,
            tokenizer: tokenizer.meta.name.clone(),
            sampling: SamplingConfig::default(),
            train: serde_json::Value::Null,
        };
        train_loop::write_json(&dir.path().join("generator.json"), &meta).unwrap();
        std::fs::write(dir.path().join("generator.bpk"), &bytes).unwrap();
        let d = Default::default();
        let mut warm = warm_start::<Cpu>(dir.path(), &net, &tokenizer.meta.name, &d).unwrap();
        assert!(warm.causal);
        // Made bidirectional again, it is the masked-token network exactly.
        warm.causal = false;
        let masked = module_from_bytes(net.init::<Cpu>(&d), bytes, "masked").unwrap();
        let text = Tensor::<Cpu, 2, Int>::from_data(
            TensorData::new(prompt_ids("a photo of a dog").unwrap(), [1, net.text_len]),
            &d,
        );
        let image = Tensor::<Cpu, 2, Int>::from_data(
            TensorData::new((0..64).map(|v| v % 7).collect::<Vec<i64>>(), [1, 64]),
            &d,
        );
        warm.forward(text.clone(), image.clone())
            .into_data()
            .assert_approx_eq::<f32>(&masked.forward(text, image).into_data(), Default::default());
        let other = MaskGitConfig { layers: 1, ..net };
        let e = warm_start::<Cpu>(dir.path(), &other, &tokenizer.meta.name, &d).unwrap_err();
        assert!(e.to_string().contains("init: network"), "{e}");
        let e = warm_start::<Cpu>(dir.path(), &net, "another-tokenizer", &d).unwrap_err();
        assert!(e.to_string().contains("another-tokenizer"), "{e}");
        // Another family's folder is named as such, before its fields are read.
        let mut other_family = serde_json::to_value(&meta).unwrap();
        other_family["format"] = AR_FORMAT.into();
        other_family["sampling"]["top_k"] = 5.into();
        train_loop::write_json(&dir.path().join("generator.json"), &other_family).unwrap();
        let e = warm_start::<Cpu>(dir.path(), &net, &tokenizer.meta.name, &d).unwrap_err();
        assert!(
            e.to_string().contains("init: format \"evalcot-ar-1\""),
            "{e}"
        );
    }
}
