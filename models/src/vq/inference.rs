//! The trained tokenizer: images ↔ token grids, batched, on any backend.

use super::config::VqTrainConfig;
use super::model::{VqNet, VqNetConfig};
use crate::store::{module_from_bytes, ModelError};
use crate::train_loop::read_json;
use burn::prelude::*;
use harness::error::ModelFault;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version tag of `tokenizer.json`.
pub const VQ_FORMAT: &str = "evalcot-vq-1";

/// What `tokenizer.json` holds beside `tokenizer.bpk`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VqMeta {
    pub format: String,
    pub name: String,
    pub net: VqNetConfig,
    /// The exact training configuration (reproduce with `evalcot train tokenizer`).
    pub train: VqTrainConfig,
}

/// Images `[b, 3, s, s]` scaled to [-1, 1].
pub fn images_to_tensor<B: Backend>(images: &[RgbImage], device: &B::Device) -> Tensor<B, 4> {
    let s = images.first().map_or(0, |i| i.width() as usize);
    let plane = s * s;
    let mut data = vec![0f32; images.len() * 3 * plane];
    for (n, img) in images.iter().enumerate() {
        for (i, p) in img.pixels().enumerate() {
            for c in 0..3 {
                data[(n * 3 + c) * plane + i] = p.0[c] as f32 / 127.5 - 1.0;
            }
        }
    }
    Tensor::from_data(TensorData::new(data, [images.len(), 3, s, s]), device)
}

/// The inverse of [`images_to_tensor`], clamping to [0, 255].
pub fn tensor_to_images<B: Backend>(x: Tensor<B, 4>) -> Vec<RgbImage> {
    let [b, _, h, w] = x.dims();
    let data: Vec<f32> = x.into_data().convert::<f32>().to_vec().unwrap_or_default();
    let plane = h * w;
    (0..b)
        .map(|n| {
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let i = y as usize * w + x as usize;
                let px = |c: usize| {
                    let v = data[(n * 3 + c) * plane + i];
                    ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
                };
                image::Rgb([px(0), px(1), px(2)])
            })
        })
        .collect()
}

/// A NaN would be clamped to a black pixel by [`tensor_to_images`]: fail the decode instead, by
/// the tokenizer's name.
fn check_finite<B: Backend>(pixels: &Tensor<B, 4>, name: &str) -> Result<(), ModelFault> {
    let bad = pixels.clone().is_nan().any().into_scalar().to_bool()
        || pixels.clone().is_inf().any().into_scalar().to_bool();
    if bad {
        return Err(ModelFault::non_finite(format!(
            "tokenizer {name} decoded {} pixels",
            harness::error::NON_FINITE
        )));
    }
    Ok(())
}

/// A trained tokenizer ready for inference.
#[derive(Clone)]
pub struct VqTokenizer<B: Backend> {
    pub net: VqNet<B>,
    pub meta: VqMeta,
    device: B::Device,
}

impl<B: Backend> VqTokenizer<B> {
    /// From metadata JSON and weight bytes (files or embedded); the architecture is checked.
    pub fn from_parts(
        meta: VqMeta,
        weights: Vec<u8>,
        what: &str,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        if meta.format != VQ_FORMAT {
            return Err(ModelError::Config {
                what: what.into(),
                message: format!("format {:?}, expected {VQ_FORMAT:?}", meta.format),
            });
        }
        meta.net.validate().map_err(|m| ModelError::Config {
            what: what.into(),
            message: m,
        })?;
        let net = module_from_bytes(meta.net.init::<B>(device), weights, what)?;
        Ok(VqTokenizer {
            net,
            meta,
            device: device.clone(),
        })
    }

    /// From a folder holding `tokenizer.json` and `tokenizer.bpk`.
    pub fn load_dir(dir: &Path, device: &B::Device) -> Result<Self, ModelError> {
        let meta: VqMeta = read_json(&dir.join("tokenizer.json"))?;
        let path = dir.join("tokenizer.bpk");
        let bytes = std::fs::read(&path).map_err(|e| harness::Error::io(&path, e))?;
        Self::from_parts(meta, bytes, &path.display().to_string(), device)
    }

    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Token grids of images (row-major, `grid²` per image). Images must be `image_size` square.
    pub fn encode(&self, images: &[RgbImage]) -> Vec<Vec<u32>> {
        if images.is_empty() {
            return Vec::new();
        }
        let q = self
            .net
            .quantize(self.net.encode(images_to_tensor(images, &self.device)));
        let n = self.meta.net.tokens();
        let idx: Vec<i64> = q
            .indices
            .into_data()
            .convert::<i64>()
            .to_vec()
            .unwrap_or_default();
        idx.chunks(n)
            .map(|c| c.iter().map(|&i| i as u32).collect())
            .collect()
    }

    /// Images of token grids; every index must be below the codebook size.
    pub fn decode(&self, grids: &[&[u32]]) -> Result<Vec<RgbImage>, ModelFault> {
        if grids.is_empty() {
            return Ok(Vec::new());
        }
        let n = self.meta.net.tokens();
        let k = self.meta.net.codebook as u32;
        let mut flat = Vec::with_capacity(grids.len() * n);
        for g in grids {
            if g.len() != n {
                return Err(format!("token grid of {} tokens, expected {n}", g.len()).into());
            }
            if let Some(bad) = g.iter().find(|&&t| t >= k) {
                return Err(format!("token {bad} outside the {k}-code codebook").into());
            }
            flat.extend(g.iter().map(|&t| t as i64));
        }
        let idx =
            Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [grids.len(), n]), &self.device);
        let pixels = self.net.decode(self.net.embed(idx));
        check_finite(&pixels, &self.meta.name)?;
        Ok(tensor_to_images(pixels))
    }
}

#[cfg(test)]
mod nan_tests {
    use burn::prelude::*;

    #[test]
    fn non_finite_decoder_pixels_are_a_named_error_not_a_black_patch() {
        let d = Default::default();
        let ok = Tensor::<crate::Cpu, 4>::zeros([1, 3, 4, 4], &d);
        assert!(super::check_finite(&ok, "t").is_ok());
        for bad in [f32::NAN, f32::INFINITY] {
            let x = Tensor::<crate::Cpu, 4>::full([1, 3, 4, 4], bad, &d);
            let e = super::check_finite(&x, "vq-test").unwrap_err();
            assert!(e.is_non_finite() && e.message().contains("vq-test"), "{e}");
        }
    }
}
