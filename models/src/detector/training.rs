//! Training the detector on world renders: a plain AdamW loop with CenterNet losses, data drawn
//! by `(seed, step, item)` so that a resumed run equals an uninterrupted one, checkpoints every
//! few hundred steps, a loss curve in CSV, and Platt calibration of the scores at the end.

use super::config::DetectorTrainConfig;
use super::data::{augment, build_targets, normalise, peaks, AugmentConfig, Calibration, Truth};
use super::inference::{DetectorMeta, DETECTOR_FORMAT};
use super::model::{DetectorNet, BOX, COLORS, HEAT};
use crate::checkpoint;
use crate::store::{save_module, ModelError};
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::tensor::backend::AutodiffBackend;
use harness::rng::{derive_seed, Rng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use world::dataset::{DatasetKind, SampleSource};

/// One row of the loss curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossRow {
    pub step: usize,
    pub lr: f64,
    pub total: f32,
    pub heat: f32,
    pub boxes: f32,
    pub color: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LoopState {
    config: DetectorTrainConfig,
    step: usize,
    losses: Vec<LossRow>,
}

/// One augmented training scene of the detectors' mix: a training-prompt scene with probability
/// `prompt_fraction`, else a random 0–5 object scene; `index` picks the scene, `rng` the rest.
pub(crate) fn mixed_scene(
    [prompts, random]: [&SampleSource; 2],
    prompt_fraction: f64,
    aug: &AugmentConfig,
    index: usize,
    rng: &mut Rng,
) -> Result<(image::RgbImage, Vec<Truth>), ModelError> {
    let source = if rng.chance(prompt_fraction) {
        prompts
    } else {
        random
    };
    let sample = source.sample(index).map_err(|e| ModelError::Config {
        what: "detector training data".into(),
        message: e.to_string(),
    })?;
    let mut img = sample.scene.image;
    augment(&mut img, aug, rng);
    let truths = sample.scene.objects.iter().map(Truth::from).collect();
    Ok((img, truths))
}

/// A training batch on the host.
struct HostBatch {
    images: Vec<f32>,
    heat: Vec<f32>,
    boxes: Vec<f32>,
    mask: Vec<f32>,
    color: Vec<i64>,
    objects: usize,
}

/// Training scenes: item `i` of `step` is a pure function of `(seed, step, i)`.
struct Batcher {
    prompts: SampleSource,
    random: SampleSource,
    cfg: DetectorTrainConfig,
}

impl Batcher {
    fn new(cfg: &DetectorTrainConfig) -> Self {
        Batcher {
            prompts: SampleSource::new(DatasetKind::Prompts, cfg.seed),
            random: SampleSource::new(DatasetKind::Detector, derive_seed(cfg.seed, &[1])),
            cfg: cfg.clone(),
        }
    }

    fn item(&self, step: usize, i: usize) -> Result<(image::RgbImage, Vec<Truth>), ModelError> {
        let mut rng = Rng::derived(self.cfg.seed, &[2, step as u64, i as u64]);
        let (img, truths) = mixed_scene(
            [&self.prompts, &self.random],
            self.cfg.prompt_fraction,
            &self.cfg.augment,
            step * self.cfg.batch_size + i,
            &mut rng,
        )?;
        Ok((img, truths))
    }

    fn batch(&self, step: usize) -> Result<HostBatch, ModelError> {
        let grid = self.cfg.net.image_size / super::model::STRIDE;
        let items: Vec<(image::RgbImage, Vec<Truth>)> = (0..self.cfg.batch_size)
            .into_par_iter()
            .map(|i| self.item(step, i))
            .collect::<Result<_, _>>()?;
        let mut b = HostBatch {
            images: Vec::new(),
            heat: Vec::new(),
            boxes: Vec::new(),
            mask: Vec::new(),
            color: Vec::new(),
            objects: 0,
        };
        for (img, truths) in &items {
            normalise(img, &mut b.images);
            let t = build_targets(truths, grid);
            b.heat.extend(t.heat);
            b.boxes.extend(t.boxes);
            b.mask.extend(t.mask);
            b.color.extend(t.color);
            b.objects += truths.len();
        }
        Ok(b)
    }
}

/// The CenterNet losses: focal loss on the heat-map, L1 on box offsets and log sizes, cross
/// entropy on colour, the last two at object centres only; all normalised by the object count.
pub fn losses<B: Backend>(
    out: Tensor<B, 4>,
    heat_t: Tensor<B, 4>,
    boxes_t: Tensor<B, 4>,
    mask: Tensor<B, 4>,
    color_t: Tensor<B, 4, Int>,
    objects: usize,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let n = objects.max(1) as f64;
    let heat_logits = out.clone().narrow(1, 0, HEAT);
    let box_pred = out.clone().narrow(1, HEAT, BOX);
    let color_logits = out.narrow(1, HEAT + BOX, COLORS);
    // log p and log(1 - p) from logits, stable for large |x|.
    let log_p = log_sigmoid(heat_logits.clone());
    let log_q = log_sigmoid(heat_logits.neg());
    let p = log_p.clone().exp();
    let q = log_q.clone().exp();
    let pos = heat_t.clone().equal_elem(1.0).float();
    let neg_weight =
        (heat_t.neg().add_scalar(1.0)).powi_scalar(4) * pos.clone().neg().add_scalar(1.0);
    let pos_term = log_p * q.powi_scalar(2) * pos;
    let neg_term = log_q * p.powi_scalar(2) * neg_weight;
    let heat = (pos_term.sum() + neg_term.sum()).neg().div_scalar(n);
    let boxes = ((box_pred - boxes_t).abs() * mask.clone())
        .sum()
        .div_scalar(n);
    let color = (log_softmax(color_logits, 1).gather(1, color_t) * mask)
        .sum()
        .neg()
        .div_scalar(n);
    (heat, boxes, color)
}

fn lr_at(cfg: &DetectorTrainConfig, step: usize) -> f64 {
    crate::train_loop::lr_at(cfg.lr, cfg.warmup_steps, cfg.steps, step)
}

/// Files a training run writes into its output folder.
pub struct TrainedPaths {
    pub weights: PathBuf,
    pub meta: PathBuf,
    pub losses: PathBuf,
    pub checkpoint: PathBuf,
}

impl TrainedPaths {
    pub fn new(out: &Path) -> Self {
        TrainedPaths {
            weights: out.join("detector.bpk"),
            meta: out.join("detector.json"),
            losses: out.join("losses.csv"),
            checkpoint: out.join("checkpoint.bin"),
        }
    }
}

/// Trains (or resumes) a detector into `out`. `progress(step, total, last loss)` is called after
/// every step. Returns the metadata written beside the weights.
pub fn train<B: AutodiffBackend>(
    cfg: &DetectorTrainConfig,
    out: &Path,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize, Option<&LossRow>),
) -> Result<DetectorMeta, ModelError> {
    cfg.validate().map_err(|m| ModelError::Config {
        what: "detector training".into(),
        message: m,
    })?;
    let paths = TrainedPaths::new(out);
    let mut model: DetectorNet<B> =
        crate::seeded_init::<B, _>(device, cfg.seed, || cfg.net.init(device));
    if let Some(dir) = &cfg.init_from {
        let start = super::BurnDetector::<B>::load_dir(dir, device)?;
        if start.meta.net != cfg.net {
            return Err(ModelError::Config {
                what: format!("init_from {}", dir.display()),
                message: format!(
                    "architecture {:?} differs from the config's net {:?}",
                    start.meta.net, cfg.net
                ),
            });
        }
        model = start.into_net();
    }
    let adamw = AdamWConfig::new().with_weight_decay(cfg.weight_decay as f32);
    let mut optim = adamw.init::<B, DetectorNet<B>>();
    let mut state = LoopState {
        config: cfg.clone(),
        step: 0,
        losses: Vec::new(),
    };
    if paths.checkpoint.exists() {
        let (s, m, o): (LoopState, _, _) =
            checkpoint::load(&paths.checkpoint, model, optim, device)?;
        if s.config != *cfg {
            return Err(ModelError::Config {
                what: paths.checkpoint.display().to_string(),
                message: "was written by a different training config; remove it or use another output folder".into(),
            });
        }
        state = s;
        model = m;
        optim = o;
    }
    let batcher = Batcher::new(cfg);
    while state.step < cfg.steps {
        let step = state.step;
        let host = batcher.batch(step)?;
        let (b, g) = (cfg.batch_size, cfg.net.image_size / super::model::STRIDE);
        let s = cfg.net.image_size;
        let images = Tensor::<B, 4>::from_data(TensorData::new(host.images, [b, 3, s, s]), device);
        let heat_t = Tensor::<B, 4>::from_data(TensorData::new(host.heat, [b, HEAT, g, g]), device);
        let boxes_t =
            Tensor::<B, 4>::from_data(TensorData::new(host.boxes, [b, BOX, g, g]), device);
        let mask = Tensor::<B, 4>::from_data(TensorData::new(host.mask, [b, 1, g, g]), device);
        let color_t =
            Tensor::<B, 4, Int>::from_data(TensorData::new(host.color, [b, 1, g, g]), device);
        let outputs = model.forward(images);
        let (heat, boxes, color) = losses(outputs, heat_t, boxes_t, mask, color_t, host.objects);
        let total = heat.clone() + boxes.clone() + color.clone();
        let scalar = |t: Tensor<B, 1>| t.into_scalar().elem::<f32>();
        let lr = lr_at(cfg, step);
        let row = LossRow {
            step,
            lr,
            total: scalar(total.clone()),
            heat: scalar(heat),
            boxes: scalar(boxes),
            color: scalar(color),
        };
        if !row.total.is_finite() {
            return Err(ModelError::Config {
                what: "detector training".into(),
                message: format!("loss became {} at step {step}; lower lr", row.total),
            });
        }
        let grads = GradientsParams::from_grads(total.backward(), &model);
        model = optim.step(lr, model, grads);
        state.step += 1;
        if step.is_multiple_of(cfg.log_every) || state.step == cfg.steps {
            state.losses.push(row);
        }
        progress(state.step, cfg.steps, Some(&row));
        if state.step.is_multiple_of(cfg.checkpoint_every) || state.step == cfg.steps {
            checkpoint::save(&paths.checkpoint, &state, &model, &optim)?;
            write_losses(&paths.losses, &state.losses)?;
        }
    }
    let net = model.valid();
    let calibration = fit_calibration(&net, cfg, device);
    let meta = DetectorMeta {
        format: DETECTOR_FORMAT.into(),
        name: cfg.name.clone(),
        net: cfg.net,
        calibration,
        train: cfg.clone(),
        rescorer: None,
    };
    save_module(&net, &paths.weights, true)?;
    let text = serde_json::to_string_pretty(&meta).map_err(|e| ModelError::Config {
        what: paths.meta.display().to_string(),
        message: e.to_string(),
    })? + "\n";
    harness::fsutil::write_atomic(&paths.meta, text.as_bytes())?;
    write_losses(&paths.losses, &state.losses)?;
    Ok(meta)
}

fn write_losses(path: &Path, rows: &[LossRow]) -> Result<(), ModelError> {
    let mut s = String::from("step,lr,total,heat,boxes,color\n");
    for r in rows {
        s.push_str(&format!(
            "{},{:.6e},{},{},{},{}\n",
            r.step, r.lr, r.total, r.heat, r.boxes, r.color
        ));
    }
    harness::fsutil::write_atomic(path, s.as_bytes())?;
    Ok(())
}

/// Fits Platt scaling on held-out renders: each raw peak is labelled 1 when it is the best
/// unmatched peak of an object of its class with IoU ≥ 0.5, else 0.
fn fit_calibration<B: Backend>(
    net: &DetectorNet<B>,
    cfg: &DetectorTrainConfig,
    device: &B::Device,
) -> Calibration {
    let held_out = Batcher::new(&DetectorTrainConfig {
        seed: derive_seed(cfg.seed, &[99]),
        batch_size: 64,
        augment: AugmentConfig::default(),
        ..cfg.clone()
    });
    let grid = cfg.net.image_size / super::model::STRIDE;
    let mut samples: Vec<(f32, bool)> = Vec::new();
    let batches = cfg.calibration_images.div_ceil(64);
    for step in 0..batches {
        let items: Vec<(image::RgbImage, Vec<Truth>)> = (0..64)
            .into_par_iter()
            .filter_map(|i| held_out.item(step, i).ok())
            .collect();
        let images: Vec<image::RgbImage> = items.iter().map(|(i, _)| i.clone()).collect();
        let outs = super::inference::forward_images(net, &images, device);
        for (out, (_, truths)) in outs.iter().zip(&items) {
            let ps = peaks(out, grid, -6.0);
            samples.extend(label_peaks(&ps, truths));
        }
    }
    platt(&samples)
}

/// Labels peaks against truths (greedy by descending logit, same class, IoU ≥ 0.5); the pairs
/// come in descending logit order.
pub fn label_peaks(peaks: &[super::data::Peak], truths: &[Truth]) -> Vec<(f32, bool)> {
    let hits = peak_hits(peaks, truths);
    let mut order: Vec<usize> = (0..peaks.len()).collect();
    order.sort_by(|&a, &b| peaks[b].logit.total_cmp(&peaks[a].logit));
    order
        .into_iter()
        .map(|k| (peaks[k].logit, hits[k]))
        .collect()
}

/// Whether each peak (in the given order) matches a true object: the greedy matching of
/// [`label_peaks`].
pub fn peak_hits(peaks: &[super::data::Peak], truths: &[Truth]) -> Vec<bool> {
    let mut order: Vec<usize> = (0..peaks.len()).collect();
    order.sort_by(|&a, &b| peaks[b].logit.total_cmp(&peaks[a].logit));
    let mut used = vec![false; truths.len()];
    let mut hits = vec![false; peaks.len()];
    for k in order {
        let p = &peaks[k];
        let hit = truths.iter().enumerate().position(|(j, t)| {
            !used[j] && t.class.index() == p.class && iou(&p.bbox, &t.bbox) >= 0.5
        });
        if let Some(j) = hit {
            used[j] = true;
            hits[k] = true;
        }
    }
    hits
}

pub fn iou(a: &[f32; 4], b: &[f64; 4]) -> f64 {
    let a = a.map(|v| v as f64);
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// One-dimensional logistic regression by Newton's method.
pub fn platt(samples: &[(f32, bool)]) -> Calibration {
    platt_with_prior(samples, Calibration::default(), 0.0)
}

/// Platt scaling by Newton's method with a Gaussian prior of weight `lambda` around `prior`
/// (a per-class fit shrunk toward a shared one; `lambda` 0 is plain Platt from `prior`).
pub fn platt_with_prior(samples: &[(f32, bool)], prior: Calibration, lambda: f64) -> Calibration {
    let (mut a, mut b) = (prior.a, prior.b);
    for _ in 0..50 {
        let (mut ga, mut gb) = (lambda * (a - prior.a), lambda * (b - prior.b));
        let (mut haa, mut hab, mut hbb) = (lambda + 1e-6, 0.0, lambda + 1e-6);
        for &(x, y) in samples {
            let x = x as f64;
            let p = 1.0 / (1.0 + (-(a * x + b)).exp());
            let r = p - if y { 1.0 } else { 0.0 };
            ga += r * x;
            gb += r;
            let w = p * (1.0 - p);
            haa += w * x * x;
            hab += w * x;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs() < 1e-9 && db.abs() < 1e-9 {
            break;
        }
    }
    Calibration { a, b }
}
