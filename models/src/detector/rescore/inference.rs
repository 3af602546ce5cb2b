//! A loaded second stage: re-scores the first stage's peaks.

use super::super::data::Peak;
use super::config::*;
use super::model::*;
use crate::store::ModelError;
use burn::prelude::*;
use image::RgbImage;
use serde::{Deserialize, Serialize};
/// What `detector.json` records about a second stage (its weights are `rescorer.bpk`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescorerMeta {
    pub net: RescorerNetConfig,
    pub fusion: Fusion,
    pub train: RescorerTrainConfig,
}

/// A loaded second stage.
pub struct Rescorer<B: Backend> {
    net: RescorerNet<B>,
    pub meta: RescorerMeta,
}

impl<B: Backend> Rescorer<B> {
    pub fn from_parts(
        meta: RescorerMeta,
        weights: Vec<u8>,
        what: &str,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        meta.net
            .validate()
            .map_err(|m| ModelError::config(what, m))?;
        let fresh = crate::seeded_init::<B, _>(device, 0, || meta.net.init::<B>(device));
        let net = crate::store::module_from_bytes(fresh, weights, what)?;
        Ok(Rescorer { net, meta })
    }

    /// The crop odds of every peak's class, per image, in one batched pass.
    pub fn odds(
        &self,
        images: &[RgbImage],
        peaks: &[Vec<Peak>],
        device: &B::Device,
    ) -> Vec<Vec<f32>> {
        crop_odds(&self.net, self.meta.net.crop, images, peaks, device)
    }
}

/// Runs `net` on the crops of `peaks` (one list per image) and returns each peak's class odds.
pub(super) fn crop_odds<B: Backend>(
    net: &RescorerNet<B>,
    size: usize,
    images: &[RgbImage],
    peaks: &[Vec<Peak>],
    device: &B::Device,
) -> Vec<Vec<f32>> {
    let jobs: Vec<(usize, &Peak)> = peaks
        .iter()
        .enumerate()
        .flat_map(|(i, ps)| ps.iter().map(move |p| (i, p)))
        .collect();
    let mut flat = Vec::with_capacity(jobs.len());
    // Bounded batches keep memory flat however many peaks a batch of images has.
    for chunk in jobs.chunks(512) {
        let mut data = Vec::with_capacity(chunk.len() * 3 * size * size);
        for (i, p) in chunk {
            crop(&images[*i], p.bbox, size, &mut data);
        }
        let x =
            Tensor::<B, 4>::from_data(TensorData::new(data, [chunk.len(), 3, size, size]), device);
        let logits: Vec<f32> = net
            .forward(x)
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .unwrap_or_default();
        for ((_, p), row) in chunk.iter().zip(logits.chunks(CROP_CLASSES)) {
            flat.push(class_odds(row, p.class));
        }
    }
    let mut it = flat.into_iter();
    peaks
        .iter()
        .map(|ps| it.by_ref().take(ps.len()).collect())
        .collect()
}
