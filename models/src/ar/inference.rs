//! A trained AR generator: cached raster-order decoding with greedy previews, behind the
//! `Generator` trait.

use super::data::push_raster;
use super::model::*;
use crate::maskgit::data::{prompt_ids, to_device, HostBatch};
use crate::maskgit::MaskGit;
use crate::store::{module_from_bytes, ModelError};
use crate::vq::VqTokenizer;
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::transformer::TransformerEncoderInput;
use burn::prelude::*;
use harness::error::ModelFault;
use harness::generator::{Generator, Trajectory, MASK};
use harness::rng::{derive_seed, Rng};
use harness::run::argmax;
use image::RgbImage;

/// A trained AR generator with its tokenizer.
pub struct ArGenerator<B: Backend> {
    pub net: MaskGit<B>,
    pub tokenizer: VqTokenizer<B>,
    pub meta: ArMeta,
    pub sampling: ArSampling,
    pub(crate) device: B::Device,
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
    fn last_log_probs(&self, h: Tensor<B, 3>, b: usize) -> Result<Vec<f32>, ModelFault> {
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
    fn step_group(&self, group: &mut [&mut Trajectory], to_end: bool) -> Result<(), ModelFault> {
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
    fn advance(&self, batch: &mut [Trajectory], to_end: bool) -> Result<(), ModelFault> {
        let n = self.meta.net.image_tokens;
        for t in batch.iter() {
            if t.tokens.len() != n {
                return Err(format!(
                    "trajectory of {} tokens, generator expects {n}",
                    t.tokens.len()
                )
                .into());
            }
            let done = t.tokens.iter().take_while(|&&x| x != MASK).count();
            if t.tokens[done..].iter().any(|&x| x != MASK) {
                return Err(format!(
                    "generator {} writes in raster order and cannot fill a re-opened region \
                     (self-correction by re-masking needs the masked-token generator)",
                    self.meta.name
                )
                .into());
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
pub(super) fn sample(row: &[f32], temperature: f64, top_k: usize, rng: &mut Rng) -> usize {
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

    fn step(&self, batch: &mut [Trajectory]) -> Result<(), ModelFault> {
        self.advance(batch, false)
    }

    /// The rest of every trajectory in one cached pass per position: the same images as
    /// stepping (draws are per position), without the previews of the intermediate steps.
    fn run_to_end(&self, batch: &mut [Trajectory]) -> Result<(), ModelFault> {
        self.advance(batch, true)
    }

    /// One pass instead of one per step: the same image, fewer forwards.
    fn run_to_end_is_stepping(&self) -> bool {
        false
    }

    fn decode(&self, batch: &[Trajectory]) -> Result<Vec<RgbImage>, ModelFault> {
        crate::maskgit::generator::decode_predictions(&self.tokenizer, batch)
    }

    /// The conditional log-probability of all tokens (teacher forcing); an AR model scores the
    /// whole sequence, so `seed` is not used.
    fn log_prob(&self, prompt: &str, tokens: &[u32], _seed: u64) -> Result<f64, ModelFault> {
        let cfg = self.meta.net;
        if tokens.len() != cfg.image_tokens {
            return Err(format!(
                "{} tokens given, generator expects {}",
                tokens.len(),
                cfg.image_tokens
            )
            .into());
        }
        let mut host = HostBatch::default();
        push_raster(&mut host, &prompt_ids(prompt)?, tokens, &cfg);
        let (text, image, targets, all) = to_device::<B>(host, cfg.text_len, &self.device);
        let lp = self.net.masked_log_prob(text, image, targets, all);
        Ok(lp.into_scalar().elem::<f64>())
    }
}
