//! Judge training: binary cross-entropy on "yes", plus, for reflection samples, a per-cell
//! cross-entropy on where the clause's objects are. The sample pool is built once from seeds
//! (zero-shot renders, or the generator's labelled trajectories); batches are drawn from it by
//! `(seed, step)`, so a resumed run continues exactly.

use super::config::{JudgeMode, JudgeTrainConfig};
use super::data::{self, JudgeSample, CELLS};
use super::inference::{question_ids, JudgeMeta, JUDGE_FORMAT};
use super::model::JudgeNet;
use crate::store::{save_module, ModelError};
use crate::train_loop::{self, LoopSpec, StepLoss};
use crate::vq::inference::images_to_tensor;
use burn::module::AutodiffModule;
use burn::optim::AdamWConfig;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use harness::detector::Detector;
use harness::generator::Generator;
use harness::rng::Rng;
use std::path::Path;

/// Builds the sample pool of `cfg` (slow for fine-tuned judges: it runs the generator).
pub fn build_pool(
    cfg: &JudgeTrainConfig,
    generator: Option<&dyn Generator>,
    annotator: Option<&dyn Detector>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<JudgeSample>, String> {
    let source = world::dataset::SampleSource::new(world::dataset::DatasetKind::Prompts, cfg.seed);
    let prompts = source.prompts();
    match cfg.mode {
        JudgeMode::ZeroShot => {
            let mut pool = Vec::new();
            for i in 0..cfg.zero_shot_prompts {
                pool.extend(data::zero_shot(prompts, cfg.seed, i)?);
                if i % 100 == 0 {
                    progress(i, cfg.zero_shot_prompts);
                }
            }
            Ok(pool)
        }
        JudgeMode::FineTuned => {
            let g = generator.ok_or("fine-tuned judges need the generator")?;
            let a = annotator.ok_or("fine-tuned judges need the annotator detector")?;
            data::collect(g, a, prompts, &cfg.collect, cfg.seed, progress)
        }
    }
}

/// Trains (or resumes) a judge on `pool` into `out` (`judge.bpk`, `judge.json`, `losses.csv`).
pub fn train<B: AutodiffBackend>(
    cfg: &JudgeTrainConfig,
    pool: &[JudgeSample],
    out: &Path,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize, &[f64]),
) -> Result<JudgeMeta, ModelError> {
    let bad = |m: String| ModelError::Config {
        what: "judge training".into(),
        message: m,
    };
    cfg.validate().map_err(bad)?;
    if pool.is_empty() {
        return Err(bad("the sample pool is empty".into()));
    }
    let mut model: JudgeNet<B> =
        crate::seeded_init::<B, _>(device, cfg.seed, || cfg.net.init_materialized(device));
    if let Some(dir) = &cfg.backbone {
        let det = crate::detector::BurnDetector::<B>::load_dir(dir, device)?;
        if Some(det.meta.net) != cfg.net.backbone {
            return Err(bad(format!(
                "backbone {}: its architecture {:?} is not net.backbone {:?}",
                dir.display(),
                det.meta.net,
                cfg.net.backbone
            )));
        }
        model.backbone = Some(det.into_net().no_grad());
    }
    let optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay as f32)
        .init::<B, JudgeNet<B>>();
    let spec = LoopSpec {
        what: "judge",
        config: serde_json::to_value(cfg).map_err(|e| bad(e.to_string()))?,
        steps: cfg.steps,
        lr: cfg.lr,
        warmup_steps: cfg.warmup_steps,
        checkpoint_every: cfg.checkpoint_every,
        log_every: cfg.log_every,
        columns: &["yes_bce", "cells_bce", "accuracy"],
    };
    let zero_shot = cfg.mode == JudgeMode::ZeroShot;
    let mut step_fn = |model: &JudgeNet<B>, step: usize| -> Result<StepLoss<B>, ModelError> {
        let mut rng = Rng::derived(cfg.seed, &[0xba7c, step as u64]);
        let batch: Vec<&JudgeSample> = (0..cfg.batch_size)
            .map(|_| &pool[rng.index(pool.len())])
            .collect();
        let b = batch.len();
        let images: Vec<_> = batch.iter().map(|s| s.image.clone()).collect();
        let x = images_to_tensor::<B>(&images, device);
        let mut q = Vec::with_capacity(b * (cfg.net.text_len + 1));
        let mut labels = Vec::with_capacity(b);
        let mut cells = Vec::with_capacity(b * CELLS * CELLS);
        let mut has_cells = Vec::with_capacity(b);
        for s in &batch {
            q.extend(question_ids(s.task, &s.text, zero_shot).map_err(bad)?);
            labels.push(if s.label { 1.0f32 } else { 0.0 });
            match &s.cells {
                Some(c) => {
                    cells.extend_from_slice(c);
                    has_cells.push(1.0f32);
                }
                None => {
                    cells.extend(std::iter::repeat_n(0.0, CELLS * CELLS));
                    has_cells.push(0.0);
                }
            }
        }
        let q =
            Tensor::<B, 2, Int>::from_data(TensorData::new(q, [b, cfg.net.text_len + 1]), device);
        let y = Tensor::<B, 1>::from_data(TensorData::new(labels, [b]), device);
        let cells_t = Tensor::<B, 3>::from_data(TensorData::new(cells, [b, CELLS, CELLS]), device);
        let has = Tensor::<B, 1>::from_data(TensorData::new(has_cells, [b]), device);
        let o = model.forward(x, q);
        let yes_bce = bce_with_logits(o.yes.clone(), y.clone()).mean();
        let per_cell = bce_with_logits(o.where_, cells_t)
            .mean_dim(2)
            .mean_dim(1)
            .reshape([b]);
        let cells_bce = (per_cell * has.clone()).sum() / has.sum().add_scalar(1e-6);
        let acc = o
            .yes
            .detach()
            .greater_elem(0.0)
            .float()
            .equal(y)
            .float()
            .mean();
        Ok(StepLoss {
            total: yes_bce.clone() + cells_bce.clone(),
            parts: vec![yes_bce, cells_bce, acc],
            grads: None,
        })
    };
    let mut keep = |m: JudgeNet<B>, _| Ok(m);
    let model = train_loop::run(
        &spec,
        out,
        model,
        optim,
        device,
        &mut step_fn,
        &mut keep,
        progress,
    )?;
    let meta = JudgeMeta {
        format: JUDGE_FORMAT.into(),
        name: cfg.name.clone(),
        mode: cfg.mode,
        net: cfg.net,
        train: cfg.clone(),
    };
    save_module(&model.valid(), &out.join("judge.bpk"), true)?;
    train_loop::write_json(&out.join("judge.json"), &meta)?;
    Ok(meta)
}

/// Element-wise `BCE(sigmoid(x), y)`, computed stably: `max(x,0) − x·y + log(1 + e^{−|x|})`.
pub fn bce_with_logits<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    y: Tensor<B, D>,
) -> Tensor<B, D> {
    x.clone().clamp_min(0.0) - x.clone() * y + x.abs().neg().exp().add_scalar(1.0).log()
}
