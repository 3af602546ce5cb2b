//! A loaded masked-token generator: Show-o's sampling loop one step at a time, batched over
//! candidates with the CFG pair in one forward.

use super::batching::*;
use super::meta::*;
use super::sampling::*;
use crate::maskgit::data::{cosine_mask_for, prompt_ids};
use crate::maskgit::model::{MaskGit, MaskGitConfig};
use crate::store::{module_from_bytes, ModelError};
use crate::train_loop::read_json;
use crate::vq::VqTokenizer;
use burn::prelude::*;
use harness::error::ModelFault;
use harness::generator::{Draws, Generator, Trajectory, MASK};
use harness::profile::{self, Phase};
use harness::rng::Rng;
use image::RgbImage;
use std::path::Path;

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
    fn step_live(&self, batch: &mut [&mut Trajectory]) -> Result<(), ModelFault> {
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
                    )
                    .into());
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

    fn step(&self, batch: &mut [Trajectory]) -> Result<(), ModelFault> {
        let mut live: Vec<&mut Trajectory> = batch.iter_mut().filter(|t| !t.done()).collect();
        for chunk in live.chunks_mut(self.batching.trajectories_per_forward.max(1)) {
            self.step_live(chunk)?;
        }
        Ok(())
    }

    fn decode(&self, batch: &[Trajectory]) -> Result<Vec<RgbImage>, ModelFault> {
        decode_predictions(&self.tokenizer, batch)
    }

    fn log_prob(&self, prompt: &str, tokens: &[u32], seed: u64) -> Result<f64, ModelFault> {
        let cfg = &self.meta.net;
        if tokens.len() != cfg.image_tokens {
            return Err(format!(
                "{} tokens given, generator expects {}",
                tokens.len(),
                cfg.image_tokens
            )
            .into());
        }
        let mask = cosine_mask_for(cfg, &mut Rng::new(seed));
        let mut h = crate::maskgit::data::HostBatch {
            text: Vec::new(),
            input: Vec::new(),
            targets: Vec::new(),
            masked: Vec::new(),
        };
        crate::maskgit::data::push_masked(
            &mut h,
            &self.text_ids(prompt)?,
            tokens,
            &mask,
            cfg.mask_id(),
        );
        let (text, input, targets, masked) =
            crate::maskgit::data::to_device::<B>(h, cfg.text_len, &self.device);
        let v = self
            .net
            .masked_log_prob(text, input, targets, masked)
            .into_scalar()
            .elem::<f64>();
        Ok(v)
    }
}
