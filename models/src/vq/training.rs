//! Tokenizer training: reconstruction MSE + VQ losses on fresh world renders (half training-prompt
//! scenes, half random scenes), with dead-code restarts. Deterministic per seed; resumable.

use super::config::{PerceptualConfig, VqTrainConfig};
use super::inference::{images_to_tensor, VqMeta, VqTokenizer, VQ_FORMAT};
use super::model::{Quantized, VqNet, VqNetConfig};
use crate::detector::model::{DetectorNet, HEAT};
use crate::store::{save_module, ModelError};
use crate::train_loop::{self, LoopSpec, StepLoss};
use burn::module::{AutodiffModule, Param};
use burn::optim::AdamWConfig;
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softplus};
use burn::tensor::backend::AutodiffBackend;
use harness::rng::Rng;
use rayon::prelude::*;
use std::path::Path;
use world::dataset::{DatasetKind, SampleSource};

/// Pixels within `offsets` of some object's mask (row-major, true = near an object).
fn near_objects(scene: &world::Scene, offsets: &[(i64, i64)]) -> Vec<bool> {
    let (w, h) = scene.image.dimensions();
    let mut near = vec![false; (w * h) as usize];
    for o in &scene.objects {
        for y in 0..h {
            for x in 0..w {
                if !o.mask.get(x, y) {
                    continue;
                }
                for &(dx, dy) in offsets {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx >= 0 && ny >= 0 && (nx as u32) < w && (ny as u32) < h {
                        near[(ny as u32 * w + nx as u32) as usize] = true;
                    }
                }
            }
        }
    }
    near
}

/// Per-pixel loss weights of a scene: 1 on objects grown by one pixel, `background` elsewhere.
pub fn pixel_weights(scene: &world::Scene, background: f64) -> Vec<f32> {
    near_objects(scene, &[(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)])
        .into_iter()
        .map(|n| if n { 1.0 } else { background as f32 })
        .collect()
}

/// Background pixels: farther than two pixels from every object (outlines included).
fn background_mask(scene: &world::Scene) -> Vec<bool> {
    let square: Vec<(i64, i64)> = (-2..=2)
        .flat_map(|dy| (-2..=2).map(move |dx| (dx, dy)))
        .collect();
    near_objects(scene, &square)
        .into_iter()
        .map(|n| !n)
        .collect()
}

/// The reconstruction target of a scene: the render, with every background pixel replaced by
/// the mean of the background pixels in the `(2r+1)²` box around it (objects untouched).
pub fn smooth_target(scene: &world::Scene, r: usize) -> world::image::RgbImage {
    let img = &scene.image;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let bg = background_mask(scene);
    // Integral images of background values (per channel) and of the background count.
    let mut sum = vec![[0f64; 4]; (w + 1) * (h + 1)];
    for y in 0..h {
        for x in 0..w {
            let mut v = [0f64; 4];
            if bg[y * w + x] {
                let p = img.get_pixel(x as u32, y as u32).0;
                v = [p[0] as f64, p[1] as f64, p[2] as f64, 1.0];
            }
            for c in 0..4 {
                sum[(y + 1) * (w + 1) + x + 1][c] =
                    v[c] + sum[y * (w + 1) + x + 1][c] + sum[(y + 1) * (w + 1) + x][c]
                        - sum[y * (w + 1) + x][c];
            }
        }
    }
    let mut out = img.clone();
    for y in 0..h {
        for x in 0..w {
            if !bg[y * w + x] {
                continue;
            }
            let (x0, y0) = (x.saturating_sub(r), y.saturating_sub(r));
            let (x1, y1) = ((x + r + 1).min(w), (y + r + 1).min(h));
            let at = |yy: usize, xx: usize, c: usize| sum[yy * (w + 1) + xx][c];
            let box_sum = |c| at(y1, x1, c) - at(y0, x1, c) - at(y1, x0, c) + at(y0, x0, c);
            let n = box_sum(3).max(1.0);
            let px = [0, 1, 2].map(|c| (box_sum(c) / n).round().clamp(0.0, 255.0) as u8);
            out.put_pixel(x as u32, y as u32, world::image::Rgb(px));
        }
    }
    out
}

/// Images of step `step`: even slots from training-prompt scenes, odd from random scenes.
pub fn batch_images(
    cfg: &VqTrainConfig,
    prompts: &SampleSource,
    random: &SampleSource,
    step: usize,
) -> Result<Vec<world::image::RgbImage>, ModelError> {
    Ok(batch_scenes(cfg, prompts, random, step)?
        .into_iter()
        .map(|s| s.image)
        .collect())
}

fn batch_scenes(
    cfg: &VqTrainConfig,
    prompts: &SampleSource,
    random: &SampleSource,
    step: usize,
) -> Result<Vec<world::Scene>, ModelError> {
    (0..cfg.batch_size)
        .into_par_iter()
        .map(|i| {
            let index = step * cfg.batch_size + i;
            let src = if i % 2 == 0 { prompts } else { random };
            src.sample(index)
                .map(|s| s.scene)
                .map_err(|e| ModelError::Config {
                    what: "tokenizer training data".into(),
                    message: e.to_string(),
                })
        })
        .collect()
}

/// Probe batches for dead-code restarts are drawn far from the training batches.
const PROBE_OFFSET: usize = 1 << 40;

fn indices_of<B: Backend>(indices: Tensor<B, 2, Int>) -> Vec<usize> {
    indices
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i as usize)
        .collect()
}

/// The perceptual loss of a batch; `x` and `recon` in the tokenizer's [-1, 1] range.
fn perceptual_loss<B: Backend>(
    net: &DetectorNet<B>,
    x: Tensor<B, 4>,
    recon: Tensor<B, 4>,
    p: &PerceptualConfig,
) -> Tensor<B, 1> {
    // The detector's normalisation, (v/255 − 0.5)/0.25, is 2× the tokenizer's range.
    let (f_o, o_o) = net.features(x.mul_scalar(2.0));
    let (f_r, o_r) = net.features(recon.mul_scalar(2.0));
    let (f_o, o_o) = (f_o.detach(), o_o.detach());
    let energy = f_o.clone().powf_scalar(2.0).mean().add_scalar(1e-6);
    let feature = (f_r - f_o).powf_scalar(2.0).mean() / energy;
    let [b, _, g, _] = o_r.dims();
    let l = o_r.slice([0..b, 0..HEAT, 0..g, 0..g]);
    let t = sigmoid(o_o.slice([0..b, 0..HEAT, 0..g, 0..g]));
    // BCE with logits: softplus(l) − t·l, summed over classes.
    let bce = softplus(l.clone(), 1.0) - t * l;
    let heat_loss = bce.sum().div_scalar((b * g * g) as f64);
    feature.mul_scalar(p.feature_weight) + heat_loss.mul_scalar(p.heat_weight)
}

/// Trains (or resumes) a tokenizer into `out` (`tokenizer.bpk`, `tokenizer.json`, `losses.csv`).
pub fn train<B: AutodiffBackend>(
    cfg: &VqTrainConfig,
    out: &Path,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize, &[f64]),
) -> Result<VqMeta, ModelError> {
    cfg.validate()
        .map_err(|m| ModelError::config("tokenizer training", m))?;
    let model: VqNet<B> = match &cfg.init {
        Some(dir) => init_from(dir, cfg.net, device)?,
        None => crate::seeded_init::<B, _>(device, cfg.seed, || cfg.net.init_materialized(device)),
    };
    let optim = AdamWConfig::new()
        .with_weight_decay(0.0)
        .init::<B, VqNet<B>>();
    let prompts = SampleSource::styled(DatasetKind::Prompts, cfg.seed, cfg.style);
    let random = SampleSource::styled(DatasetKind::Detector, cfg.seed ^ 0x5eed, cfg.style);
    let spec = LoopSpec {
        what: "tokenizer",
        config: serde_json::to_value(cfg).map_err(|e| ModelError::Config {
            what: "tokenizer".into(),
            message: e.to_string(),
        })?,
        steps: cfg.steps,
        lr: cfg.lr,
        warmup_steps: cfg.warmup_steps,
        checkpoint_every: cfg.checkpoint_every,
        log_every: cfg.log_every,
        columns: &[
            "recon",
            "commit",
            "codebook",
            "perceptual",
            "psnr",
            "used_codes",
        ],
    };
    let k = cfg.net.codebook;
    let judge_net = match &cfg.perceptual {
        Some(p) => Some(
            crate::detector::BurnDetector::<B>::load_dir(&p.detector, device)?
                .into_net()
                .no_grad(),
        ),
        None => None,
    };
    let mut step_fn = |model: &VqNet<B>, step: usize| -> Result<StepLoss<B>, ModelError> {
        let scenes = batch_scenes(cfg, &prompts, &random, step)?;
        let images: Vec<_> = scenes.iter().map(|s| s.image.clone()).collect();
        let x = images_to_tensor::<B>(&images, device);
        let target = match cfg.smooth_background {
            Some(r) => {
                let t: Vec<_> = scenes.par_iter().map(|s| smooth_target(s, r)).collect();
                images_to_tensor::<B>(&t, device)
            }
            None => x.clone(),
        };
        let s = cfg.net.image_size;
        let weights: Vec<f32> = scenes
            .iter()
            .flat_map(|sc| pixel_weights(sc, cfg.background_weight))
            .collect();
        let w =
            Tensor::<B, 4>::from_data(TensorData::new(weights, [images.len(), 1, s, s]), device);
        // Decoder only: the codes are constants, and the VQ terms (no gradient) go.
        let q = if cfg.decoder_only {
            frozen_codes(model, x.clone())
        } else {
            model.quantize(model.encode(x.clone()))
        };
        let recon = model.decode(q.z_q);
        let err = (recon.clone() - target).powf_scalar(2.0);
        let mse = err.clone().mean();
        let weighted = (err * w.clone()).mean() / w.mean();
        let mut total = if cfg.decoder_only {
            weighted
        } else {
            weighted + q.commit.clone().mul_scalar(cfg.commit_beta) + q.codebook.clone()
        };
        let mut perceptual = Tensor::<B, 1>::zeros([1], device);
        if let (Some(net), Some(p)) = (&judge_net, &cfg.perceptual) {
            let loss = perceptual_loss(net, x, recon, p);
            total = total + loss.clone();
            perceptual = loss;
        }
        let idx = indices_of(q.indices);
        let mut seen = vec![false; k];
        idx.iter().for_each(|&i| seen[i] = true);
        let used = seen.iter().filter(|&&s| s).count() as f32;
        // PSNR of images in [-1, 1]: peak-to-peak 2.
        let mse_v = mse.clone().into_scalar().elem::<f32>();
        let psnr = 10.0 * (4.0 / mse_v.max(1e-12)).log10();
        let scalar = |v: f32| Tensor::<B, 1>::from_floats([v], device);
        Ok(StepLoss {
            total,
            parts: vec![
                mse,
                q.commit,
                q.codebook,
                perceptual.detach(),
                scalar(psnr),
                scalar(used),
            ],
            grads: None,
        })
    };
    // Dead-code restart: usage is measured on probe batches drawn from the step index (not on
    // state carried between steps), so a resumed run restarts exactly the same codes.
    let mut after = |model: VqNet<B>, step: usize| -> Result<VqNet<B>, ModelError> {
        if cfg.restart_every == 0
            || !(step + 1).is_multiple_of(cfg.restart_every)
            || step + 1 >= cfg.steps
        {
            return Ok(model);
        }
        let d = cfg.net.code_dim;
        let mut counts = vec![0u64; k];
        let mut pool: Vec<f32> = Vec::new();
        for probe in 0..4 {
            let images = batch_images(cfg, &prompts, &random, PROBE_OFFSET + 4 * step + probe)?;
            let q = model
                .valid()
                .quantize(model.valid().encode(images_to_tensor(&images, device)));
            indices_of(q.indices).iter().for_each(|&i| counts[i] += 1);
            pool.extend(
                q.z_flat
                    .into_data()
                    .convert::<f32>()
                    .to_vec::<f32>()
                    .unwrap_or_default(),
            );
        }
        let dead: Vec<usize> = (0..k).filter(|&i| counts[i] == 0).collect();
        let n = pool.len() / d;
        if dead.is_empty() || n == 0 {
            return Ok(model);
        }
        let mut book: Vec<f32> = model
            .codebook
            .val()
            .into_data()
            .convert::<f32>()
            .to_vec()
            .unwrap_or_default();
        let mut rng = Rng::derived(cfg.seed, &[0xdead, step as u64]);
        for &code in &dead {
            let src = rng.index(n);
            book[code * d..(code + 1) * d].copy_from_slice(&pool[src * d..(src + 1) * d]);
        }
        let mut model = model;
        let id = model.codebook.id;
        let t = Tensor::<B, 2>::from_data(TensorData::new(book, [k, d]), device).require_grad();
        model.codebook = Param::initialized(id, t);
        Ok(model)
    };
    let model = train_loop::run(
        &spec,
        out,
        model,
        optim,
        device,
        &mut step_fn,
        &mut after,
        progress,
    )?;
    let net = model.valid();
    let meta = VqMeta {
        format: VQ_FORMAT.into(),
        name: cfg.name.clone(),
        net: cfg.net,
        train: cfg.clone(),
    };
    save_module(&net, &out.join("tokenizer.bpk"), true)?;
    train_loop::write_json(&out.join("tokenizer.json"), &meta)?;
    // Loading what was just written checks the files.
    VqTokenizer::<B::InnerBackend>::load_dir(out, device)?;
    Ok(meta)
}

/// Encoding and quantization off the autodiff graph, for decoder-only training: the codes are
/// constants to the decoder. (Detaching after an encoder pass on the graph leaked: burn frees a
/// graph's nodes only when backward reaches them, and memory grew ~25 MB a step.)
fn frozen_codes<B: AutodiffBackend>(model: &VqNet<B>, x: Tensor<B, 4>) -> Quantized<B> {
    let net = model.valid();
    let q = net.quantize(net.encode(x.inner()));
    Quantized {
        z_q: Tensor::from_inner(q.z_q),
        indices: Tensor::from_inner(q.indices),
        commit: Tensor::from_inner(q.commit),
        codebook: Tensor::from_inner(q.codebook),
        z_flat: Tensor::from_inner(q.z_flat),
    }
}

/// The weights of the tokenizer in `dir` as a trainable network; its `net` must be `net`.
fn init_from<B: AutodiffBackend>(
    dir: &Path,
    net: VqNetConfig,
    device: &B::Device,
) -> Result<VqNet<B>, ModelError> {
    let meta: VqMeta = train_loop::read_json(&dir.join("tokenizer.json"))?;
    if meta.net != net {
        return Err(ModelError::config(
            "tokenizer training",
            format!(
                "init: {} has another net than this config's ({:?} against {:?})",
                dir.display(),
                meta.net,
                net
            ),
        ));
    }
    let path = dir.join("tokenizer.bpk");
    let bytes = std::fs::read(&path).map_err(|e| harness::Error::io(&path, e))?;
    crate::store::module_from_bytes(
        net.init_materialized(device),
        bytes,
        &path.display().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_targets_keep_objects_and_flatten_the_background() {
        let src = SampleSource::new(DatasetKind::Prompts, 3);
        let scene = src.sample(0).unwrap().scene;
        let t = smooth_target(&scene, 6);
        let bg = background_mask(&scene);
        let (mut kept, mut obj) = (0, 0);
        // Background roughness: mean absolute difference between horizontal neighbours.
        let (mut rough_in, mut rough_out, mut n) = (0f64, 0f64, 0f64);
        for (i, (a, b)) in scene.image.pixels().zip(t.pixels()).enumerate() {
            if !bg[i] {
                obj += 1;
                kept += usize::from(a == b);
            } else if i % 64 != 63 && bg[i + 1] {
                let a2 = scene.image.get_pixel((i % 64 + 1) as u32, (i / 64) as u32);
                let b2 = t.get_pixel((i % 64 + 1) as u32, (i / 64) as u32);
                rough_in += (a.0[0] as f64 - a2.0[0] as f64).abs();
                rough_out += (b.0[0] as f64 - b2.0[0] as f64).abs();
                n += 1.0;
            }
        }
        assert!(
            obj > 0 && kept == obj,
            "object pixels must stay as rendered"
        );
        assert!(
            rough_out < 0.5 * rough_in,
            "{} vs {}",
            rough_out / n,
            rough_in / n
        );
    }
}
