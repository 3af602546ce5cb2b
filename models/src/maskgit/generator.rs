//! The trained masked-token generator behind `harness::generator::Generator`: Show-o's sampling
//! loop, one step at a time, batched over candidates with the CFG pair in one forward.

use super::model::{MaskGit, MaskGitConfig};
use super::training::{cosine_mask_for, prompt_ids};
use crate::store::{module_from_bytes, ModelError};
use crate::train_loop::read_json;
use crate::vq::VqTokenizer;
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use harness::generator::{cosine_mask_len, remask_temperature, Draws, Generator, Trajectory, MASK};
use harness::profile::{self, Phase};
use harness::rng::Rng;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version tag of `generator.json`.
pub const GENERATOR_FORMAT: &str = "evalcot-maskgit-1";

/// Sampling settings (the paper's defaults: T = 18, s = 1.75).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Steps T of a full schedule.
    pub steps: usize,
    /// Classifier-free guidance scale s in `(1+s)·cond − s·uncond`.
    pub cfg_scale: f64,
    /// Initial re-masking temperature τ0 (annealed per step, reset per candidate).
    pub tau0: f64,
    /// Temperature of the token draws: Show-o draws from the guided distribution as it is (1);
    /// below 1 sharpens it (0 takes the most likely code). Confidences stay the model's log p.
    #[serde(skip_serializing_if = "is_one")]
    pub temperature: f64,
}

fn is_one(v: &f64) -> bool {
    *v == 1.0
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            steps: 18,
            cfg_scale: 1.75,
            tau0: 1.0,
            temperature: 1.0,
        }
    }
}

impl SamplingConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.steps == 0
            || !self.cfg_scale.is_finite()
            || self.tau0.is_nan()
            || self.tau0 < 0.0
            || self.temperature.is_nan()
            || self.temperature < 0.0
        {
            return Err(
                "sampling.steps ≥ 1, finite sampling.cfg_scale, sampling.tau0 ≥ 0, \
                 sampling.temperature ≥ 0"
                    .into(),
            );
        }
        Ok(())
    }
}

/// What `generator.json` holds beside `generator.bpk`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorMeta {
    pub format: String,
    pub name: String,
    pub net: MaskGitConfig,
    /// Name of the tokenizer whose codes this generator predicts.
    pub tokenizer: String,
    pub sampling: SamplingConfig,
    /// The exact training configuration (generator or DPO) that produced the weights.
    pub train: serde_json::Value,
}

/// A trained generator with its tokenizer.
pub struct BurnGenerator<B: Backend> {
    pub net: MaskGit<B>,
    pub tokenizer: VqTokenizer<B>,
    pub meta: GeneratorMeta,
    pub sampling: SamplingConfig,
    /// How a step groups its work; changes no number, only speed and memory.
    pub batching: Batching,
    /// Where tokens are drawn (see [`Draws`]).
    pub draws: Draws,
    device: B::Device,
}

/// How a sampling step groups its work. Every trajectory's step depends on itself only, so no
/// setting changes a number (`batched_steps_equal_single_steps`); they trade memory for fewer,
/// larger kernels and fewer waits for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Trajectories per forward pass (each a CFG pair of rows).
    pub trajectories_per_forward: usize,
    /// Masked tokens whose logits are computed at once.
    pub rows_per_slice: usize,
}

impl Batching {
    /// For the CPU: forwards of 32 trajectories bound a step's memory (PARM batches 160
    /// candidates: peak 0.53 → 0.31 GB at the same speed); 256 rows of the CFG pair over 8,192
    /// codes is a 16 MiB buffer, small enough for the allocator to reuse.
    pub const CPU: Batching = Batching {
        trajectories_per_forward: 32,
        rows_per_slice: 256,
    };

    /// For a GPU: PARM at 553 × 4 on an H200 with device draws took 181 s at 512 trajectories
    /// per forward against 222 s (host draws) at the CPU's 32; wider slices (32,768 rows) and
    /// 2–16 worker threads changed little (reports/performance.md, session 16).
    pub const GPU: Batching = Batching {
        trajectories_per_forward: 512,
        rows_per_slice: 4096,
    };

    /// The batching for a device, with a run's choices applied: a forward width without a slice
    /// size keeps 8 rows per trajectory.
    pub fn resolve(gpu: bool, choice: BatchingChoice) -> Batching {
        let base = if gpu { Batching::GPU } else { Batching::CPU };
        let Some(t) = choice.forward_batch else {
            return Batching {
                rows_per_slice: choice.slice_rows.unwrap_or(base.rows_per_slice),
                ..base
            };
        };
        let t = t.max(1);
        Batching {
            trajectories_per_forward: t,
            rows_per_slice: choice.slice_rows.unwrap_or(t.saturating_mul(8)),
        }
    }
}

/// A run's batching choices (`run --forward-batch`, `--slice-rows`); absent ones take the
/// device's [`Batching`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchingChoice {
    pub forward_batch: Option<usize>,
    pub slice_rows: Option<usize>,
}

impl BatchingChoice {
    /// Whether any choice was made.
    pub fn is_set(&self) -> bool {
        self.forward_batch.is_some() || self.slice_rows.is_some()
    }
}

impl Default for Batching {
    fn default() -> Self {
        Batching::CPU
    }
}

impl<B: Backend> BurnGenerator<B> {
    pub fn from_parts(
        meta: GeneratorMeta,
        weights: Vec<u8>,
        tokenizer: VqTokenizer<B>,
        what: &str,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        let bad = |message: String| ModelError::Config {
            what: what.into(),
            message,
        };
        if meta.format != GENERATOR_FORMAT {
            return Err(bad(format!(
                "format {:?}, expected {GENERATOR_FORMAT:?}",
                meta.format
            )));
        }
        meta.net.validate().map_err(bad)?;
        if meta.tokenizer != tokenizer.meta.name
            || meta.net.codebook != tokenizer.meta.net.codebook
            || meta.net.image_tokens != tokenizer.meta.net.tokens()
        {
            return Err(bad(format!(
                "was trained on tokenizer {:?} ({} codes, {} tokens), given {:?} ({} codes, {} tokens)",
                meta.tokenizer,
                meta.net.codebook,
                meta.net.image_tokens,
                tokenizer.meta.name,
                tokenizer.meta.net.codebook,
                tokenizer.meta.net.tokens()
            )));
        }
        let net = module_from_bytes(meta.net.init::<B>(device), weights, what)?;
        Ok(BurnGenerator {
            net,
            tokenizer,
            sampling: meta.sampling,
            meta,
            batching: Batching::default(),
            draws: Draws::default(),
            device: device.clone(),
        })
    }

    /// From a generator folder (`generator.json`, `generator.bpk`) and a tokenizer folder.
    pub fn load_dir(dir: &Path, tokenizer: &Path, device: &B::Device) -> Result<Self, ModelError> {
        let meta: GeneratorMeta = read_json(&dir.join("generator.json"))?;
        let path = dir.join("generator.bpk");
        let bytes = std::fs::read(&path).map_err(|e| harness::Error::io(&path, e))?;
        let tok = VqTokenizer::load_dir(tokenizer, device)?;
        Self::from_parts(meta, bytes, tok, &path.display().to_string(), device)
    }

    pub fn config(&self) -> &MaskGitConfig {
        &self.meta.net
    }

    pub fn device(&self) -> B::Device {
        self.device.clone()
    }

    /// The same generator (tokenizer, metadata, sampling) with other weights: DPO samples with
    /// the policy it is training.
    pub fn with_net(&self, net: MaskGit<B>) -> BurnGenerator<B> {
        BurnGenerator {
            net,
            tokenizer: self.tokenizer.clone(),
            meta: self.meta.clone(),
            sampling: self.sampling,
            batching: self.batching,
            draws: self.draws,
            device: self.device.clone(),
        }
    }

    fn text_ids(&self, prompt: &str) -> Result<Vec<i64>, String> {
        prompt_ids(prompt).map_err(|e| format!("generator {}: {e}", self.meta.name))
    }

    /// One sampling step of trajectories `batch` (none finished): one batched forward of the
    /// CFG pairs, then the head, guidance and draws over slices of about `batching.rows_per_slice`
    /// masked tokens, trajectory by trajectory.
    fn step_live(&self, batch: &mut [&mut Trajectory]) -> Result<(), String> {
        let cfg = &self.meta.net;
        let n = batch.len();
        // Inputs and the network (all of it on the CPU, where burn computes eagerly).
        let forward = profile::span(Phase::Forward);
        let uncond = self.text_ids("")?;
        let mut text = Vec::with_capacity(2 * n * cfg.text_len);
        let mut image = Vec::with_capacity(2 * n * cfg.image_tokens);
        for t in batch.iter() {
            text.extend(self.text_ids(&t.prompt)?);
        }
        for _ in 0..n {
            text.extend_from_slice(&uncond);
        }
        for _ in 0..2 {
            for t in batch.iter() {
                if t.tokens.len() != cfg.image_tokens {
                    return Err(format!(
                        "trajectory of {} tokens, generator expects {}",
                        t.tokens.len(),
                        cfg.image_tokens
                    ));
                }
                image.extend(t.tokens.iter().map(|&v| {
                    if v == MASK {
                        cfg.mask_id() as i64
                    } else {
                        v as i64
                    }
                }));
            }
        }
        let d = &self.device;
        let text = Tensor::<B, 2, Int>::from_data(TensorData::new(text, [2 * n, cfg.text_len]), d);
        let image =
            Tensor::<B, 2, Int>::from_data(TensorData::new(image, [2 * n, cfg.image_tokens]), d);
        // Rows: every masked position, conditional half first, then the same positions in the
        // unconditional half.
        let per = cfg.image_tokens;
        let masked: Vec<i64> = batch
            .iter()
            .enumerate()
            .flat_map(|(j, t)| {
                t.tokens
                    .iter()
                    .enumerate()
                    .filter(|(_, &v)| v == MASK)
                    .map(move |(p, _)| (j * per + p) as i64)
            })
            .collect();
        let m = masked.len();
        let rows: Vec<i64> = masked
            .iter()
            .copied()
            .chain(masked.iter().map(|&r| r + (n * per) as i64))
            .collect();
        let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [2 * m]), d);
        let logits = self.net.row_logits(text, image, rows);
        drop(forward);
        let k = cfg.codebook;
        let group_of = (cfg.group > 1).then(|| cfg.group_of());
        let sampling = (self.sampling.tau0, self.sampling.temperature);
        let (mut first, mut at) = (0, 0);
        while first < n {
            // Whole trajectories per slice, at least one.
            let (mut last, mut len) = (first, 0);
            while last < n
                && (last == first || len + batch[last].masked() <= self.batching.rows_per_slice)
            {
                len += batch[last].masked();
                last += 1;
            }
            // Nothing masked happens when a schedule has committed every token.
            let pair = || Tensor::cat(vec![logits.slice(at, len), logits.slice(m + at, len)], 0);
            let slice = &mut batch[first..last];
            match self.draws {
                Draws::Host => {
                    let logp = if len == 0 {
                        Vec::new()
                    } else {
                        // On a GPU the forward runs lazily: its time lands here, where the host
                        // waits for the log-probabilities.
                        let _t = profile::span(Phase::Forward);
                        guided_log_probs(pair(), len, self.sampling.cfg_scale, &self.meta.name)?
                    };
                    let _t = profile::span(Phase::Draw);
                    let mut from = 0;
                    for t in slice.iter_mut() {
                        let rows = t.masked() * k;
                        sample_step(
                            t,
                            &logp[from..from + rows],
                            k,
                            sampling,
                            group_of.as_deref(),
                        );
                        from += rows;
                    }
                }
                Draws::Device => {
                    let noise: Vec<Vec<(f64, f64)>> = slice.iter().map(|t| step_noise(t)).collect();
                    let picks = if len == 0 {
                        Vec::new()
                    } else {
                        let _t = profile::span(Phase::Forward);
                        let u: Vec<f32> = noise.iter().flatten().map(|&(u, _)| u as f32).collect();
                        device_draws(pair(), &u, self.sampling, &self.meta.name)?
                    };
                    let _t = profile::span(Phase::Draw);
                    let mut from = 0;
                    for (t, noise) in slice.iter_mut().zip(&noise) {
                        let to = from + t.masked();
                        commit_step(t, &picks[from..to], noise, sampling.0, group_of.as_deref());
                        from = to;
                    }
                }
            }
            (first, at) = (last, at + len);
        }
        Ok(())
    }
}

/// Classifier-free guidance on the host: `logits` holds `n` conditional rows then `n`
/// unconditional ones; returns `log_softmax((1+s)·cond − s·uncond)` over the last dimension,
/// row-major. A NaN or +∞ is an error naming the generator (−∞ is a legitimate log 0).
pub fn guided_log_probs<B: Backend, const D: usize>(
    logits: Tensor<B, D>,
    n: usize,
    s: f64,
    name: &str,
) -> Result<Vec<f32>, String> {
    let cond = logits.clone().narrow(0, 0, n);
    let unc = logits.narrow(0, n, n);
    let guided = cond.mul_scalar(1.0 + s) - unc.mul_scalar(s);
    let out: Vec<f32> = log_softmax(guided, D - 1)
        .into_data()
        .convert::<f32>()
        .to_vec()
        .map_err(|e| format!("generator output: {e:?}"))?;
    if let Some(bad) = out
        .iter()
        .find(|v| !v.is_finite() && **v != f32::NEG_INFINITY)
    {
        return Err(format!(
            "generator {name} produced a non-finite log-probability ({bad})"
        ));
    }
    Ok(out)
}

/// Guidance and token draws where `logits` live (see [`Draws::Device`]): `logits` holds `n`
/// conditional rows then `n` unconditional ones, `u` one uniform per row. Returns per row the
/// drawn code and its guided log-probability — the only numbers that come back.
pub fn device_draws<B: Backend>(
    logits: Tensor<B, 2>,
    u: &[f32],
    sampling: SamplingConfig,
    name: &str,
) -> Result<Vec<(u32, f32)>, String> {
    let n = u.len();
    let [rows, k] = logits.dims();
    if rows != 2 * n {
        return Err(format!(
            "{rows} logit rows for {n} uniforms, expected {}",
            2 * n
        ));
    }
    if k > 1 << 24 {
        return Err(format!(
            "{k} codes: device draws return codes as f32, exact only up to 2^24"
        ));
    }
    let s = sampling.cfg_scale;
    let cond = logits.clone().narrow(0, 0, n);
    let unc = logits.narrow(0, n, n);
    let logp = log_softmax(cond.mul_scalar(1.0 + s) - unc.mul_scalar(s), 1);
    let picks: Tensor<B, 2, Int> = if sampling.temperature == 0.0 {
        logp.clone().argmax(1)
    } else {
        // The host's inverse CDF: the first code whose cumulative weight exceeds u × the row's
        // total is the number of codes whose cumulative weight does not. Scaling u by the f32
        // total (not assuming 1) keeps the last code from taking the rounding gap at the top.
        let p = if sampling.temperature == 1.0 {
            logp.clone().exp()
        } else {
            softmax(logp.clone().div_scalar(sampling.temperature), 1)
        };
        let cum = p.cumsum(1);
        let total = cum.clone().narrow(1, k - 1, 1);
        let u = Tensor::<B, 1>::from_data(TensorData::new(u.to_vec(), [n]), &logp.device())
            .reshape([n, 1]);
        cum.lower_equal((u * total).expand([n, k]))
            .int()
            .sum_dim(1)
            .clamp_max(k as i64 - 1)
    };
    // One read-back, one wait: each row's code (exact as a float below 2^24) beside its
    // log-probability.
    let lp = logp.gather(1, picks.clone());
    let both: Vec<f32> = Tensor::cat(vec![picks.float(), lp], 1)
        .into_data()
        .convert::<f32>()
        .to_vec()
        .map_err(|e| format!("generator output: {e:?}"))?;
    let mut out = Vec::with_capacity(n);
    for pair in both.chunks_exact(2) {
        let (code, lp) = (pair[0], pair[1]);
        // A NaN or +∞ anywhere in a row makes its log-softmax NaN, and so the drawn code's.
        if lp.is_nan() || lp == f32::INFINITY {
            return Err(format!(
                "generator {name} produced a non-finite log-probability ({lp})"
            ));
        }
        out.push((code as u32, lp));
    }
    Ok(out)
}

/// Decodes each trajectory's full current prediction (both generator families). Before its first
/// step a trajectory has no prediction; masked positions decode as code 0 then (nothing looks
/// at such an image but previews).
pub fn decode_predictions<B: Backend>(
    tokenizer: &VqTokenizer<B>,
    batch: &[Trajectory],
) -> Result<Vec<RgbImage>, String> {
    let grids: Vec<Vec<u32>> = batch
        .iter()
        .map(|t| {
            if t.prediction.len() == t.tokens.len() {
                t.prediction.clone()
            } else {
                t.tokens
                    .iter()
                    .map(|&v| if v == MASK { 0 } else { v })
                    .collect()
            }
        })
        .collect();
    let refs: Vec<&[u32]> = grids.iter().map(Vec::as_slice).collect();
    tokenizer.decode(&refs)
}

/// The code whose cumulative probability first exceeds `u` under `logp` at `temperature`
/// (1: as given; 0: the most likely code).
fn draw(logp: &[f32], u: f64, temperature: f64) -> usize {
    let last = logp.len() - 1;
    if temperature == 1.0 {
        let mut acc = 0.0f64;
        for (k, &lp) in logp.iter().enumerate() {
            acc += (lp as f64).exp();
            if u < acc {
                return k;
            }
        }
        return last;
    }
    let best = (0..logp.len()).fold(0, |b, k| if logp[k] > logp[b] { k } else { b });
    if temperature == 0.0 {
        return best;
    }
    let top = logp[best] as f64;
    // Two passes that recompute the weights rather than store them: no allocation per token,
    // and the same bits (the same `exp` of the same operands, summed in the same order).
    let weight = |lp: f32| ((lp as f64 - top) / temperature).exp();
    let target = u * logp.iter().map(|&lp| weight(lp)).sum::<f64>();
    let mut acc = 0.0;
    for (k, &lp) in logp.iter().enumerate() {
        acc += weight(lp);
        if target < acc {
            return k;
        }
    }
    last
}

/// The random numbers of one step of `t`: per masked position (in position order) the uniform
/// of its token draw and the Gumbel noise of its confidence, drawn in that order from the step's
/// own stream, so that the stream does not depend on which positions the model is sure about
/// nor on where the draw is made (host or device).
pub fn step_noise(t: &Trajectory) -> Vec<(f64, f64)> {
    let mut rng = Rng::new(t.step_seed());
    (0..t.masked()).map(|_| (rng.f64(), rng.gumbel())).collect()
}

/// One sampling step of one trajectory given its guided log-probabilities at its masked
/// positions (`[masked·codebook]`, in position order):
/// draw every masked token, score it `log p + τ·Gumbel`, keep the most confident and re-mask the
/// `mask_len` least confident (Show-o's loop). With `group_of` (the group of each token, for a
/// grouped network) whole groups are re-masked.
pub fn sample_step(
    t: &mut Trajectory,
    logp: &[f32],
    codebook: usize,
    (tau0, temperature): (f64, f64),
    group_of: Option<&[usize]>,
) {
    // The caller computed one row per masked token; another count is a bug, not bad input.
    assert_eq!(
        logp.len(),
        t.masked() * codebook,
        "sample_step: one log-probability row per masked token"
    );
    let noise = step_noise(t);
    // Multinomial draw by inverse CDF, made for every masked position.
    let picks: Vec<(u32, f32)> = noise
        .iter()
        .zip(logp.chunks_exact(codebook))
        .map(|(&(u, _), row)| {
            let pick = draw(row, u, temperature);
            (pick as u32, row[pick])
        })
        .collect();
    commit_step(t, &picks, &noise, tau0, group_of);
}

/// The rest of a step once every masked position has its drawn code and that code's guided
/// log-probability (`picks`, in position order): confidences, re-masking, the new prediction.
pub fn commit_step(
    t: &mut Trajectory,
    picks: &[(u32, f32)],
    noise: &[(f64, f64)],
    tau0: f64,
    group_of: Option<&[usize]>,
) {
    // One draw and one noise pair per masked token; anything else is a caller's bug.
    assert_eq!(
        picks.len(),
        t.masked(),
        "commit_step: one draw per masked token"
    );
    assert_eq!(
        noise.len(),
        t.masked(),
        "commit_step: one noise pair per masked token"
    );
    let tau = remask_temperature(tau0, t.step, t.steps);
    let n = t.tokens.len();
    let mut prediction = Vec::with_capacity(n);
    let mut confidence = Vec::with_capacity(n);
    let mut drawn = picks.iter().zip(noise);
    for &tok in &t.tokens {
        if tok != MASK {
            prediction.push(tok);
            confidence.push(f64::INFINITY);
            continue;
        }
        let Some((&(pick, lp), &(_, gumbel))) = drawn.next() else {
            unreachable!("lengths checked above");
        };
        prediction.push(pick);
        confidence.push(lp as f64 + tau * gumbel);
    }
    let unknown = t.masked();
    let keep_masked = cosine_mask_len(t.schedule_masked, t.step, t.steps, unknown);
    let remasked: std::collections::HashSet<usize> = match group_of {
        None => {
            // Positions re-masked: the `keep_masked` lowest confidences (ties by position).
            let mut order: Vec<usize> = (0..n).filter(|&p| t.tokens[p] == MASK).collect();
            order.sort_by(|&a, &b| confidence[a].total_cmp(&confidence[b]).then(a.cmp(&b)));
            order.into_iter().take(keep_masked).collect()
        }
        Some(group_of) => {
            // Whole groups, least confident first (a group's confidence is the sum over its
            // masked tokens: the joint log-probability plus noise), while they fit in
            // `keep_masked` (rounding down, so that every step commits at least one group).
            let groups = group_of.iter().copied().max().map_or(0, |g| g + 1);
            let mut conf = vec![0.0f64; groups];
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
            for p in (0..n).filter(|&p| t.tokens[p] == MASK) {
                conf[group_of[p]] += confidence[p];
                members[group_of[p]].push(p);
            }
            let mut order: Vec<usize> = (0..groups).filter(|&g| !members[g].is_empty()).collect();
            order.sort_by(|&a, &b| conf[a].total_cmp(&conf[b]).then(a.cmp(&b)));
            let mut set = std::collections::HashSet::new();
            for g in order {
                if set.len() + members[g].len() > keep_masked {
                    break;
                }
                set.extend(members[g].iter().copied());
            }
            set
        }
    };
    for (p, (tok, &pred)) in t.tokens.iter_mut().zip(&prediction).enumerate() {
        if *tok == MASK && !remasked.contains(&p) {
            *tok = pred;
        }
    }
    t.prediction = prediction;
    t.step += 1;
    t.forwards += 2;
}

impl<B: Backend> Generator for BurnGenerator<B>
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
        let mut live: Vec<&mut Trajectory> = batch.iter_mut().filter(|t| !t.done()).collect();
        for chunk in live.chunks_mut(self.batching.trajectories_per_forward.max(1)) {
            self.step_live(chunk)?;
        }
        Ok(())
    }

    fn decode(&self, batch: &[Trajectory]) -> Result<Vec<RgbImage>, String> {
        decode_predictions(&self.tokenizer, batch)
    }

    fn log_prob(&self, prompt: &str, tokens: &[u32], seed: u64) -> Result<f64, String> {
        let cfg = &self.meta.net;
        if tokens.len() != cfg.image_tokens {
            return Err(format!(
                "{} tokens given, generator expects {}",
                tokens.len(),
                cfg.image_tokens
            ));
        }
        let mask = cosine_mask_for(cfg, &mut Rng::new(seed));
        let mut h = super::training::HostBatch {
            text: Vec::new(),
            input: Vec::new(),
            targets: Vec::new(),
            masked: Vec::new(),
        };
        super::training::push_masked(
            &mut h,
            &self.text_ids(prompt)?,
            tokens,
            &mask,
            cfg.mask_id(),
        );
        let (text, input, targets, masked) =
            super::training::to_device::<B>(h, cfg.text_len, &self.device);
        let v = self
            .net
            .masked_log_prob(text, input, targets, masked)
            .into_scalar()
            .elem::<f64>();
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batching_takes_the_device_default_and_the_runs_choices() {
        let none = BatchingChoice::default();
        assert!(!none.is_set());
        assert_eq!(Batching::resolve(false, none), Batching::CPU);
        assert_eq!(Batching::resolve(true, none), Batching::GPU);
        let rows = BatchingChoice {
            slice_rows: Some(100),
            ..none
        };
        assert_eq!(Batching::resolve(true, rows).trajectories_per_forward, 512);
        assert_eq!(Batching::resolve(true, rows).rows_per_slice, 100);
        let wide = BatchingChoice {
            forward_batch: Some(64),
            ..none
        };
        assert!(wide.is_set());
        let b = Batching::resolve(false, wide);
        assert_eq!((b.trajectories_per_forward, b.rows_per_slice), (64, 512));
    }
    use crate::Cpu;

    /// A tiny grouped generator (2×2 groups over the shipped 8×8 tokenizer), random weights.
    fn tiny_grouped() -> BurnGenerator<Cpu> {
        crate::testutil::tiny_generator("tiny-g2", 2, 6)
    }

    /// A step over a large mixed batch (several forwards, many slices of masked rows,
    /// trajectories at different steps, one finished) leaves every trajectory as stepping it
    /// alone does, under each batching.
    #[test]
    fn batched_steps_equal_single_steps() {
        let narrow = Batching {
            trajectories_per_forward: 4,
            rows_per_slice: 16,
        };
        for batching in [Batching::CPU, narrow] {
            for mut g in [
                crate::testutil::tiny_generator("tiny", 1, 6),
                tiny_grouped(),
            ] {
                g.batching = batching;
                batched_step_equals_single_steps(&g);
            }
        }
    }

    fn batched_step_equals_single_steps(g: &BurnGenerator<Cpu>) {
        let prompts = ["a photo of a red dog", "a photo of two cups", ""];
        let mut batch: Vec<Trajectory> = (0..45)
            .map(|i| g.start(prompts[i % 3], 100 + i as u64, 6))
            .collect();
        // Different steps (so different masked counts), and one trajectory finished.
        for (i, t) in batch.iter_mut().enumerate() {
            for _ in 0..(i % 3) {
                g.step(std::slice::from_mut(t)).unwrap();
            }
        }
        while !batch[7].done() {
            g.step(std::slice::from_mut(&mut batch[7])).unwrap();
        }
        let mut alone = batch.clone();
        g.step(&mut batch).unwrap();
        for t in alone.iter_mut() {
            g.step(std::slice::from_mut(t)).unwrap();
        }
        for (a, b) in batch.iter().zip(&alone) {
            assert_eq!(a.tokens, b.tokens);
            assert_eq!(a.prediction, b.prediction);
            assert_eq!(a.step, b.step);
        }
    }

    /// The device's draw is the host's inverse CDF: on rows with known probabilities and
    /// uniforms away from the bin edges, every temperature picks the host's code, with the same
    /// guided log-probability.
    #[test]
    fn device_draws_pick_the_hosts_codes() {
        let device = Default::default();
        let k = 8;
        let cond: Vec<f32> = (0..3 * k)
            .map(|i| ((i * 7) % 11) as f32 * 0.4 - 1.0)
            .collect();
        let unc: Vec<f32> = (0..3 * k).map(|i| ((i * 5) % 7) as f32 * 0.3).collect();
        let logits =
            Tensor::<Cpu, 2>::from_data(TensorData::new([cond, unc].concat(), [6, k]), &device);
        for temperature in [1.0, 0.6, 0.0] {
            let mut checked = 0;
            let sampling = SamplingConfig {
                temperature,
                ..SamplingConfig::default()
            };
            let host = guided_log_probs(logits.clone(), 3, sampling.cfg_scale, "t").unwrap();
            for u in [0.03f64, 0.31, 0.52, 0.77, 0.96] {
                // Skip a uniform that lands within 1e-4 of an edge of its row's CDF.
                let near_edge = host.chunks(k).any(|row| {
                    let top = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
                    let t = if temperature == 0.0 { 1.0 } else { temperature };
                    let w: Vec<f64> = row.iter().map(|&l| ((l as f64 - top) / t).exp()).collect();
                    let total: f64 = w.iter().sum();
                    let mut acc = 0.0;
                    w.iter().any(|x| {
                        acc += x / total;
                        (acc - u).abs() < 1e-4
                    })
                });
                if near_edge && temperature != 0.0 {
                    continue;
                }
                let picks = device_draws(logits.clone(), &[u as f32; 3], sampling, "t").unwrap();
                for (row, (code, lp)) in host.chunks(k).zip(picks) {
                    let want = draw(row, u, temperature);
                    assert_eq!(code as usize, want, "temperature {temperature}, u {u}");
                    assert!((lp - row[want]).abs() < 1e-6);
                    checked += 1;
                }
            }
            assert!(
                checked >= 9,
                "temperature {temperature}: {checked} draws checked"
            );
        }
    }

    /// A NaN or +∞ logit is an error naming the generator, on the device as on the host.
    #[test]
    fn device_draws_refuse_non_finite_logits() {
        let device = Default::default();
        for bad in [f32::NAN, f32::INFINITY] {
            let mut v = vec![0.5f32; 2 * 4];
            v[1] = bad;
            let logits = Tensor::<Cpu, 2>::from_data(TensorData::new(v, [2, 4]), &device);
            for temperature in [1.0, 0.5, 0.0] {
                let sampling = SamplingConfig {
                    temperature,
                    ..SamplingConfig::default()
                };
                let e = device_draws(logits.clone(), &[0.3], sampling, "g7").unwrap_err();
                assert!(e.contains("generator g7 produced a non-finite"), "{e}");
            }
        }
    }

    /// Whole generations with device draws follow the host's: the same streams of uniforms and
    /// noise, codes that differ only where an f32 and an f64 cumulative sum disagree.
    #[test]
    fn device_draws_follow_the_host_draws() {
        device_draws_follow_host(crate::testutil::tiny_generator("tiny", 1, 6));
        device_draws_follow_host(tiny_grouped());
    }

    fn device_draws_follow_host(mut g: BurnGenerator<Cpu>) {
        let prompts = ["a photo of a red dog", "a photo of two cups", ""];
        let start = |g: &BurnGenerator<Cpu>| -> Vec<Trajectory> {
            (0..24)
                .map(|i| g.start(prompts[i % 3], 300 + i as u64, 6))
                .collect()
        };
        let mut host = start(&g);
        g.run_to_end(&mut host).unwrap();
        g.draws = Draws::Device;
        let mut device = start(&g);
        g.run_to_end(&mut device).unwrap();
        let (mut same, mut all) = (0, 0);
        for (a, b) in host.iter().zip(&device) {
            assert!(a.done() && b.done());
            assert!(b
                .tokens
                .iter()
                .all(|&v| v != MASK && (v as usize) < g.config().codebook));
            all += a.tokens.len();
            same += a
                .tokens
                .iter()
                .zip(&b.tokens)
                .filter(|(x, y)| x == y)
                .count();
        }
        assert!(same * 100 >= all * 95, "{same} of {all} tokens agree");
    }

    /// The host draws are the reference every recorded run used: a fixed generation of the tiny
    /// test network, pinned token by token, catches any change to the sampling loop's numbers
    /// (the random stream, the draw, the confidences, the re-masking order).
    #[test]
    fn host_draws_reproduce_the_recorded_tokens() {
        let g = crate::testutil::tiny_generator("tiny", 1, 6);
        let mut t = vec![g.start("a photo of two cups", 2024, 6)];
        g.run_to_end(&mut t).unwrap();
        let sum: u64 = t[0]
            .tokens
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as u64 + 1) * v as u64)
            .sum();
        assert_eq!((&t[0].tokens[..8], sum), GOLDEN, "{:?}", t[0].tokens);
    }

    // Recorded with session 14's host draws, whose base-generator images were byte-identical to
    // session 13's build (all 192 PNGs of a 48-prompt baseline sample).
    const GOLDEN: (&[u32], u64) = (&[457, 266, 491, 131, 400, 303, 420, 132], 593_691);

    #[test]
    fn grouped_generation_commits_and_remasks_whole_groups() {
        let g = tiny_grouped();
        let group_of = g.config().group_of();
        let run = || {
            let mut batch: Vec<Trajectory> = (0..3)
                .map(|i| g.start("a photo of a red dog", 10 + i, 6))
                .collect();
            let mut masked_counts = Vec::new();
            while !batch[0].done() {
                g.step(&mut batch).unwrap();
                for t in &batch {
                    // Every group is either wholly masked or wholly committed.
                    for grp in 0..16 {
                        let states: Vec<bool> = (0..64)
                            .filter(|&p| group_of[p] == grp)
                            .map(|p| t.tokens[p] == MASK)
                            .collect();
                        assert!(states.iter().all(|&m| m == states[0]), "group {grp} split");
                    }
                }
                masked_counts.push(batch[0].masked());
            }
            (batch, masked_counts)
        };
        let (a, counts) = run();
        assert_eq!(*counts.last().unwrap(), 0);
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
        assert!(counts[0] > 0 && counts[0] < 64, "{counts:?}");
        let (b, _) = run();
        assert_eq!(
            a.iter().map(|t| &t.tokens).collect::<Vec<_>>(),
            b.iter().map(|t| &t.tokens).collect::<Vec<_>>()
        );
        // Batching is only for speed.
        let mut alone = vec![g.start("a photo of a red dog", 11, 6)];
        while !alone[0].done() {
            g.step(&mut alone).unwrap();
        }
        assert_eq!(alone[0].tokens, a[1].tokens);
        let lp = g.log_prob("a photo of a red dog", &a[0].tokens, 5).unwrap();
        assert!(lp.is_finite() && lp < 0.0, "{lp}");
        assert_eq!(g.decode(&a).unwrap().len(), 3);
    }

    #[test]
    fn token_draws_follow_the_temperature() {
        let logp: Vec<f32> = [0.1f64, 0.6, 0.3].iter().map(|p| p.ln() as f32).collect();
        // Temperature 1: inverse CDF of the distribution as given.
        assert_eq!(draw(&logp, 0.05, 1.0), 0);
        assert_eq!(draw(&logp, 0.5, 1.0), 1);
        assert_eq!(draw(&logp, 0.95, 1.0), 2);
        // Temperature 0: the most likely code whatever u.
        assert!([0.0, 0.5, 0.99].iter().all(|&u| draw(&logp, u, 0.0) == 1));
        // Temperature ½ squares the odds: p ∝ (0.01, 0.36, 0.09) = (0.0217, 0.7826, 0.1957).
        assert_eq!(draw(&logp, 0.03, 0.5), 1);
        assert_eq!(draw(&logp, 0.80, 0.5), 1);
        assert_eq!(draw(&logp, 0.81, 0.5), 2);
    }

    #[test]
    fn grouped_training_masks_cover_whole_groups() {
        let net = MaskGitConfig {
            group: 2,
            ..MaskGitConfig::default()
        };
        let of = net.group_of();
        for seed in 0..20 {
            let m = cosine_mask_for(&net, &mut Rng::new(seed));
            assert!(m.iter().any(|&x| x));
            for p in 0..64 {
                for q in 0..64 {
                    if of[p] == of[q] {
                        assert_eq!(m[p], m[q]);
                    }
                }
            }
        }
        // With groups of one it is the plain cosine mask, draw for draw.
        let plain = MaskGitConfig::default();
        assert_eq!(
            cosine_mask_for(&plain, &mut Rng::new(3)),
            super::super::training::cosine_mask(&mut Rng::new(3), 64)
        );
    }
}
