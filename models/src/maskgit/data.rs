//! The generator's data: masks, prompt ids and host batches, shared by training (masked-token
//! prediction) and inference (DPO's log-likelihoods) so that neither imports the other.

use super::model::MaskGitConfig;
use crate::store::ModelError;
use crate::vq::VqTokenizer;
use burn::prelude::*;
use harness::rng::Rng;
use rayon::prelude::*;
use world::dataset::SampleSource;

/// Positions hidden by a cosine-schedule mask over `n` tokens: ratio `cos(π/2·u)`, `u ~ U(0,1)`,
/// at least one position (Show-o's and MaskGIT's training mask; DPO scores under it too).
pub fn cosine_mask(rng: &mut Rng, n: usize) -> Vec<bool> {
    let ratio = (std::f64::consts::FRAC_PI_2 * rng.f64()).cos();
    let k = ((ratio * n as f64).ceil() as usize).clamp(1, n);
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let mut mask = vec![false; n];
    order[..k].iter().for_each(|&i| mask[i] = true);
    mask
}

/// [`cosine_mask`] over the network's positions: whole token groups are masked together when
/// `net.group` > 1 (with groups of one it is `cosine_mask` over the tokens, draw for draw).
pub fn cosine_mask_for(net: &MaskGitConfig, rng: &mut Rng) -> Vec<bool> {
    if net.group <= 1 {
        return cosine_mask(rng, net.image_tokens);
    }
    let groups = cosine_mask(rng, net.positions());
    net.group_of().iter().map(|&g| groups[g]).collect()
}

/// One training batch on the host.
#[derive(Debug, Clone, Default)]
pub struct HostBatch {
    pub text: Vec<i64>,
    pub input: Vec<i64>,
    pub targets: Vec<i64>,
    pub masked: Vec<f32>,
}

/// Prompt token ids of `prompt` (the empty prompt gives the unconditional input).
pub fn prompt_ids(prompt: &str) -> Result<Vec<i64>, String> {
    world::words::encode_padded(prompt)
        .map(|ids| ids.iter().map(|&i| i as i64).collect())
        .map_err(|e| format!("prompt {prompt:?}: {e}"))
}

/// Masks `targets` for one sample and appends it to `batch`.
pub fn push_masked(
    batch: &mut HostBatch,
    text: &[i64],
    targets: &[u32],
    mask: &[bool],
    mask_id: usize,
) {
    batch.text.extend_from_slice(text);
    for (&t, &m) in targets.iter().zip(mask) {
        batch.input.push(if m { mask_id as i64 } else { t as i64 });
        batch.targets.push(t as i64);
        batch.masked.push(if m { 1.0 } else { 0.0 });
    }
}

pub(crate) fn data_err(message: impl Into<String>) -> ModelError {
    ModelError::Config {
        what: "generator training data".into(),
        message: message.into(),
    }
}

/// Step `step`'s samples: renders of training prompts, tokenised, each with its prompt's ids
/// (the empty prompt for a share `uncond_prob`, for classifier-free guidance) and the RNG the
/// caller draws masks from — every draw from `(seed, step, slot)`. Both generator families
/// train on these.
#[allow(clippy::type_complexity)]
pub fn tokenized_samples<B: Backend>(
    seed: u64,
    uncond_prob: f64,
    batch_size: usize,
    source: &SampleSource,
    tokenizer: &VqTokenizer<B>,
    step: usize,
) -> Result<Vec<(Vec<i64>, Vec<u32>, Rng)>, ModelError> {
    let samples: Vec<_> = (0..batch_size)
        .into_par_iter()
        .map(|i| source.sample(step * batch_size + i))
        .collect::<Result<_, _>>()
        .map_err(|e| data_err(e.to_string()))?;
    let images: Vec<_> = samples.iter().map(|s| s.scene.image.clone()).collect();
    let grids = tokenizer.encode(&images);
    samples
        .iter()
        .zip(grids)
        .enumerate()
        .map(|(i, (s, grid))| {
            let mut rng = Rng::derived(seed, &[step as u64, i as u64]);
            let prompt = match (&s.metadata, rng.chance(uncond_prob)) {
                (Some(m), false) => m.prompt.as_str(),
                _ => "",
            };
            Ok((prompt_ids(prompt).map_err(data_err)?, grid, rng))
        })
        .collect()
}

/// Device tensors of a host batch: `(text, input, targets, masked)`.
#[allow(clippy::type_complexity)]
pub fn to_device<B: Backend>(
    h: HostBatch,
    text_len: usize,
    device: &B::Device,
) -> (
    Tensor<B, 2, Int>,
    Tensor<B, 2, Int>,
    Tensor<B, 2, Int>,
    Tensor<B, 2>,
) {
    let b = h.text.len() / text_len;
    let n = h.targets.len() / b.max(1);
    (
        Tensor::from_data(TensorData::new(h.text, [b, text_len]), device),
        Tensor::from_data(TensorData::new(h.input, [b, n]), device),
        Tensor::from_data(TensorData::new(h.targets, [b, n]), device),
        Tensor::from_data(TensorData::new(h.masked, [b, n]), device),
    )
}
