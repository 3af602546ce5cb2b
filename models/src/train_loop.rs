//! The training loop shared by the tokenizer and the generator: resume from the output folder's
//! checkpoint, refuse a checkpoint of another config, warm-up + cosine learning rate, a NaN
//! guard, periodic atomic checkpoints and a loss CSV. Batches depend on the step index only, so
//! an interrupted run resumes exactly.

use crate::checkpoint;
use crate::store::ModelError;
use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What the loop needs to know about a run.
pub struct LoopSpec<'a> {
    /// Model name for messages (`tokenizer`, `generator`).
    pub what: &'a str,
    /// The full training config; a checkpoint written under another one is refused.
    pub config: serde_json::Value,
    pub steps: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub checkpoint_every: usize,
    pub log_every: usize,
    /// Names of the loss parts returned by the step function (CSV columns after step, lr, total).
    pub columns: &'a [&'a str],
}

#[derive(Serialize, Deserialize)]
struct LoopState {
    config: serde_json::Value,
    step: usize,
    rows: Vec<Vec<f64>>,
}

/// Linear warm-up, then cosine decay to 5% of the peak rate.
pub fn lr_at(peak: f64, warmup: usize, steps: usize, step: usize) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let t = (step - warmup) as f64 / (steps.saturating_sub(warmup)).max(1) as f64;
    peak * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos()))
}

/// One step's losses: the total to minimise and its named parts (for the CSV).
pub struct StepLoss<B: Backend> {
    pub total: Tensor<B, 1>,
    pub parts: Vec<Tensor<B, 1>>,
    /// The step's gradients when the step computed them itself ([`micro_batch_step`]); `None`
    /// lets the loop differentiate `total`.
    pub grads: Option<GradientsParams>,
}

/// A step whose batch is cut into `slices` micro-batches, each differentiated on its own copy
/// of the model (its own autodiff graph, same parameter ids) on the CPU's worker threads, the
/// gradients summed in slice order. `loss(model, slice)` must return losses already normalised
/// by the whole batch (sums over the slice divided by the batch's count), so that the slices'
/// totals, parts and gradients add up to the whole batch's. The numbers depend on `slices`
/// only, never on the thread count: every slice is computed alone and the sum's order is fixed.
///
/// Why: one graph keeps a 2-core CPU about 60% busy (softmax, GELU and copies run on one
/// core); two graphs at once keep both cores busy.
pub fn micro_batch_step<B, M, F>(
    model: &M,
    slices: usize,
    device: &B::Device,
    loss: F,
) -> Result<StepLoss<B>, ModelError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    M::InnerModule: Send,
    F: Fn(&M, usize) -> Result<StepLoss<B>, ModelError> + Sync,
{
    let copies: Vec<M::InnerModule> = (0..slices).map(|_| model.valid()).collect();
    let results: Vec<Result<(GradientsParams, Vec<f64>), ModelError>> = copies
        .into_par_iter()
        .enumerate()
        .map(|(slice, inner)| {
            let local = M::from_inner(inner);
            let out = loss(&local, slice)?;
            let mut values = vec![scalar(out.total.clone())];
            values.extend(out.parts.into_iter().map(scalar));
            let grads = match out.grads {
                Some(g) => g,
                None => GradientsParams::from_grads(out.total.backward(), &local),
            };
            Ok((grads, values))
        })
        .collect();
    let mut sum = GradientsAccumulator::<M>::new();
    let mut values: Vec<f64> = Vec::new();
    for r in results {
        let (grads, v) = r?;
        sum.accumulate(model, grads);
        values.resize(v.len(), 0.0);
        values.iter_mut().zip(&v).for_each(|(a, b)| *a += b);
    }
    let value = |v: f64| Tensor::<B, 1>::from_data(TensorData::new(vec![v as f32], [1]), device);
    Ok(StepLoss {
        total: value(values.first().copied().unwrap_or(0.0)),
        parts: values.iter().skip(1).map(|&v| value(v)).collect(),
        grads: Some(sum.grads()),
    })
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_scalar().elem::<f32>() as f64
}

/// Builds the loss of a step from the current model.
pub type StepFn<'a, B, M> = dyn FnMut(&M, usize) -> Result<StepLoss<B>, ModelError> + 'a;

/// Runs (or resumes) training. `step_fn(model, step)` builds the loss for `step`; `after_step`
/// may edit the model between steps (codebook restarts). `progress(step, total, row)` sees every
/// step. Returns the trained model.
#[allow(clippy::too_many_arguments)]
pub fn run<B, M, O>(
    spec: &LoopSpec<'_>,
    out: &Path,
    mut model: M,
    mut optim: O,
    device: &B::Device,
    step_fn: &mut StepFn<'_, B, M>,
    after_step: &mut dyn FnMut(M, usize) -> Result<M, ModelError>,
    progress: &mut dyn FnMut(usize, usize, &[f64]),
) -> Result<M, ModelError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let ckpt = out.join("checkpoint.bin");
    let mut state = LoopState {
        config: spec.config.clone(),
        step: 0,
        rows: Vec::new(),
    };
    if ckpt.exists() {
        let (s, m, o): (LoopState, _, _) = checkpoint::load(&ckpt, model, optim, device)?;
        if s.config != spec.config {
            return Err(ModelError::Config {
                what: ckpt.display().to_string(),
                message: "was written by a different training config; remove it or use another output folder".into(),
            });
        }
        state = s;
        model = m;
        optim = o;
    }
    let csv = out.join("losses.csv");
    while state.step < spec.steps {
        let step = state.step;
        let mut loss = step_fn(&model, step)?;
        let lr = lr_at(spec.lr, spec.warmup_steps, spec.steps, step);
        let mut row = vec![step as f64, lr, scalar(loss.total.clone())];
        row.extend(loss.parts.into_iter().map(scalar));
        if !row[2].is_finite() {
            return Err(ModelError::Config {
                what: format!("{} training", spec.what),
                message: format!("loss became {} at step {step}; lower lr", row[2]),
            });
        }
        let grads = match loss.grads.take() {
            Some(grads) => grads,
            None => GradientsParams::from_grads(loss.total.backward(), &model),
        };
        model = optim.step(lr, model, grads);
        model = after_step(model, step)?;
        state.step += 1;
        if step.is_multiple_of(spec.log_every.max(1)) || state.step == spec.steps {
            state.rows.push(row.clone());
        }
        progress(state.step, spec.steps, &row);
        if state.step.is_multiple_of(spec.checkpoint_every.max(1)) || state.step == spec.steps {
            checkpoint::save(&ckpt, &state, &model, &optim)?;
            write_csv(&csv, spec.columns, &state.rows)?;
        }
    }
    write_csv(&csv, spec.columns, &state.rows)?;
    Ok(model)
}

fn write_csv(path: &Path, columns: &[&str], rows: &[Vec<f64>]) -> Result<(), ModelError> {
    let mut s = String::from("step,lr,total");
    for c in columns {
        s.push(',');
        s.push_str(c);
    }
    s.push('\n');
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, v)| match i {
                0 => format!("{}", *v as usize),
                1 => format!("{v:.6e}"),
                _ => format!("{v}"),
            })
            .collect();
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    harness::fsutil::write_atomic(path, s.as_bytes())?;
    Ok(())
}

/// Writes `value` as pretty JSON atomically (model metadata beside weights).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ModelError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| ModelError::Config {
        what: path.display().to_string(),
        message: e.to_string(),
    })? + "\n";
    harness::fsutil::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Reads model metadata JSON, naming the file on error.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|e| harness::Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| ModelError::Config {
        what: path.display().to_string(),
        message: format!("is not valid model metadata: {e}"),
    })
}
