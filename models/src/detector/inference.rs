//! The trained detector behind `harness::detector::Detector`: weights + metadata (architecture,
//! calibration, the training config that produced them), batched inference on any backend.

use super::config::DetectorTrainConfig;
use super::data::{
    decode, finish, has_nan, nan_detection, normalise, peaks, Calibration, DecodeConfig,
};
use super::model::{DetectorNet, DetectorNetConfig, OUT_CHANNELS};
use super::rescore::{Rescorer, RescorerMeta, PROPOSAL_MIN_SCORE};
use crate::store::{module_from_bytes, ModelError};
use burn::prelude::*;
use harness::detector::{DetectedObject, Detector};
use harness::error::ModelFault;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version tag of `detector.json`.
pub const DETECTOR_FORMAT: &str = "evalcot-detector-1";

/// What `detector.json` holds beside `detector.bpk`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorMeta {
    pub format: String,
    pub name: String,
    pub net: DetectorNetConfig,
    pub calibration: Calibration,
    /// The exact training configuration (reproduce with `evalcot train detector`).
    pub train: DetectorTrainConfig,
    /// The second stage that re-scores the peaks (`rescorer.bpk`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescorer: Option<RescorerMeta>,
}

/// Runs the network on images of the configured size; one `[94·g·g]` vector per image.
pub fn forward_images<B: Backend>(
    net: &DetectorNet<B>,
    images: &[RgbImage],
    device: &B::Device,
) -> Vec<Vec<f32>> {
    if images.is_empty() {
        return Vec::new();
    }
    let s = images[0].width() as usize;
    let mut data = Vec::with_capacity(images.len() * 3 * s * s);
    for img in images {
        normalise(img, &mut data);
    }
    let x = Tensor::<B, 4>::from_data(TensorData::new(data, [images.len(), 3, s, s]), device);
    let out = net.forward(x);
    let per = out.dims()[1..].iter().product::<usize>();
    debug_assert_eq!(out.dims()[1], OUT_CHANNELS);
    let flat: Vec<f32> = out
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default();
    flat.chunks(per).map(<[f32]>::to_vec).collect()
}

/// A trained detector ready for inference.
pub struct BurnDetector<B: Backend> {
    net: DetectorNet<B>,
    pub meta: DetectorMeta,
    device: B::Device,
    decode: DecodeConfig,
    label: String,
    rescorer: Option<Rescorer<B>>,
}

impl<B: Backend> BurnDetector<B> {
    /// Builds the architecture from `meta` and loads `weights` into it (names any mismatch);
    /// `rescorer` holds the second stage's weights when `meta` has one.
    pub fn from_parts(
        meta: DetectorMeta,
        weights: Vec<u8>,
        rescorer: Option<(Vec<u8>, &str)>,
        what: &str,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        if meta.format != DETECTOR_FORMAT {
            return Err(ModelError::Config {
                what: what.into(),
                message: format!("format \"{}\", expected \"{DETECTOR_FORMAT}\"", meta.format),
            });
        }
        // Initialised under the seed lock (the values are overwritten) so that loading never
        // perturbs the draws of a training run in the same process.
        let fresh = crate::seeded_init::<B, _>(device, 0, || meta.net.init::<B>(device));
        let net = module_from_bytes(fresh, weights, what)?;
        // The first stage is checked first: its errors are the likelier and the more basic.
        let rescorer =
            match (&meta.rescorer, rescorer) {
                (Some(m), Some((bytes, path))) => {
                    Some(Rescorer::from_parts(m.clone(), bytes, path, device)?)
                }
                (None, None) => None,
                (Some(_), None) => return Err(ModelError::config(
                    what,
                    "detector.json has a rescorer section but rescorer.bpk is missing beside it",
                )),
                (None, Some((_, path))) => {
                    return Err(ModelError::config(
                        path,
                        "second-stage weights found but detector.json has no rescorer section",
                    ))
                }
            };
        Ok(BurnDetector {
            label: format!("{} ({what})", meta.name),
            net,
            meta,
            device: device.clone(),
            decode: DecodeConfig::default(),
            rescorer,
        })
    }

    /// Loads `DIR/detector.json` and `DIR/detector.bpk` (and `DIR/rescorer.bpk` when the
    /// metadata has a second stage).
    pub fn load_dir(dir: &Path, device: &B::Device) -> Result<Self, ModelError> {
        let meta_path = dir.join("detector.json");
        let text =
            std::fs::read_to_string(&meta_path).map_err(|e| harness::Error::io(&meta_path, e))?;
        let meta: DetectorMeta = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            what: meta_path.display().to_string(),
            message: format!("line {}: {e}", e.line()),
        })?;
        let weights_path = dir.join("detector.bpk");
        let weights =
            std::fs::read(&weights_path).map_err(|e| harness::Error::io(&weights_path, e))?;
        let rescorer_path = dir.join("rescorer.bpk");
        let rescorer_name = rescorer_path.display().to_string();
        // A missing file is reported by `from_parts`, after the first stage's checks.
        let rescorer = match std::fs::read(&rescorer_path) {
            Ok(bytes) => Some((bytes, rescorer_name.as_str())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(harness::Error::io(&rescorer_path, e).into()),
        };
        Self::from_parts(
            meta,
            weights,
            rescorer,
            &weights_path.display().to_string(),
            device,
        )
    }

    /// The first stage alone: the same network and calibration without the second stage,
    /// named as its training config names it.
    pub fn first_stage(mut self) -> Self {
        if self.meta.rescorer.take().is_some() {
            self.rescorer = None;
            self.label = format!("{} (first stage of {})", self.meta.train.name, self.label);
            self.meta.name = self.meta.train.name.clone();
        }
        self
    }

    /// Raw network outputs for a batch (used by evaluation and calibration).
    pub fn raw(&self, images: &[RgbImage]) -> Vec<Vec<f32>> {
        forward_images(&self.net, images, &self.device)
    }

    pub fn grid(&self) -> usize {
        self.meta.net.grid()
    }

    /// The network alone (the tokenizer trains against it as a perceptual loss).
    pub fn into_net(self) -> DetectorNet<B> {
        self.net
    }
}

impl<B: Backend> Detector for BurnDetector<B>
where
    B::Device: Sync,
    DetectorNet<B>: Sync,
{
    fn name(&self) -> &str {
        &self.label
    }

    fn input_size(&self) -> u32 {
        self.meta.net.image_size as u32
    }

    fn detect(&self, images: &[RgbImage]) -> Result<Vec<Vec<DetectedObject>>, ModelFault> {
        let size = self.input_size();
        if let Some(bad) = images.iter().find(|i| i.dimensions() != (size, size)) {
            return Err(
                format!("expected {size}×{size} images, got {:?}", bad.dimensions()).into(),
            );
        }
        let mut all = Vec::with_capacity(images.len());
        let calib = &self.meta.calibration;
        let min_logit = calib.logit_for(PROPOSAL_MIN_SCORE);
        // Bounded batches keep memory flat for any caller batch size.
        for chunk in images.chunks(256) {
            let outs = self.raw(chunk);
            let Some(second) = &self.rescorer else {
                all.extend(
                    outs.iter()
                        .map(|o| decode(o, self.grid(), calib, &self.decode)),
                );
                continue;
            };
            let broken: Vec<bool> = outs.iter().map(|o| has_nan(o)).collect();
            let proposals: Vec<Vec<_>> = outs
                .iter()
                .zip(&broken)
                .map(|(o, &bad)| {
                    if bad {
                        Vec::new()
                    } else {
                        peaks(o, self.grid(), min_logit)
                    }
                })
                .collect();
            let odds = second.odds(chunk, &proposals, &self.device);
            let fusion = second.meta.fusion;
            for ((bad, ps), od) in broken.into_iter().zip(proposals).zip(odds) {
                let scored: Vec<(f32, _)> = ps
                    .into_iter()
                    .zip(od)
                    .map(|(p, c)| (fusion.apply(p.logit, c), p))
                    .collect();
                // A broken second stage must fail the image as loudly as a broken first one.
                if bad || scored.iter().any(|(s, _)| s.is_nan()) {
                    all.push(nan_detection());
                    continue;
                }
                all.push(finish(scored.into_iter(), &self.decode));
            }
        }
        Ok(all)
    }
}
