//! The DPO loop: the loss on pairs against a frozen reference, and the online reward term.

use super::config::*;
use super::pairs::*;
use crate::maskgit::data::{cosine_mask_for, prompt_ids, push_masked, to_device, HostBatch};
use crate::maskgit::generator::{BurnGenerator, GeneratorMeta, GENERATOR_FORMAT};
use crate::maskgit::model::MaskGit;
use crate::maskgit::training::write_generator;
use crate::store::{module_from_bytes, module_to_bytes, ModelError};
use crate::train_loop::{self, LoopSpec, StepLoss};
use burn::module::AutodiffModule;
use burn::optim::AdamWConfig;
use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;
use burn::tensor::backend::AutodiffBackend;
use harness::generator::{Generator, Trajectory};
use harness::judge::{Judge, JudgeRequest};
use harness::rng::{derive_seed, Rng};
use harness::Metadata;
use std::path::Path;

/// The models DPO needs besides its config, loaded by the caller.
pub struct DpoModels<'a, B: Backend> {
    /// The generator the policy starts from.
    pub init: &'a BurnGenerator<B>,
    /// The frozen reference.
    pub reference: &'a BurnGenerator<B>,
    /// The rewarding judge, when the config has a reward term.
    pub reward_judge: Option<&'a dyn Judge>,
}

/// Steps of a DPO run over `pairs`.
pub fn total_steps(cfg: &DpoTrainConfig, pairs: usize) -> usize {
    cfg.epochs * pairs.div_ceil(cfg.batch_size)
}

/// Trains (or resumes) the policy on `pairs` into `out` (`generator.bpk`, `generator.json`,
/// `losses.csv`): columns `dpo` (the DPO loss), `accuracy` (pairs whose implicit reward margin is
/// positive), `margin` (mean of it, in nats), `reward` (mean P(yes) of the fresh samples) and
/// `reward_term`.
pub fn train<B: AutodiffBackend>(
    cfg: &DpoTrainConfig,
    pairs: &[Pair],
    models: &DpoModels<'_, B::InnerBackend>,
    out: &Path,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize, &[f64]),
) -> Result<GeneratorMeta, ModelError> {
    cfg.validate().map_err(err)?;
    if pairs.is_empty() {
        return Err(err(
            "no preference pairs: every prompt's samples got the same verdict",
        ));
    }
    let net_cfg = models.init.meta.net;
    if models.reference.meta.net != net_cfg {
        return Err(err(
            "the reference generator has another architecture than init",
        ));
    }
    let what = format!("DPO init {}", models.init.meta.name);
    // Half precision: the shipped weights are stored so, and the adapter restores one dtype on load.
    let bytes = module_to_bytes(&models.init.net, true, &what)?;
    let policy: MaskGit<B> = module_from_bytes(net_cfg.init::<B>(device), bytes, &what)?;
    let reference = &models.reference.net;
    let steps = total_steps(cfg, pairs.len());
    let optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay as f32)
        .init::<B, MaskGit<B>>();
    let spec = LoopSpec {
        what: "DPO",
        config: serde_json::to_value(cfg).map_err(|e| err(e.to_string()))?,
        steps,
        lr: cfg.lr,
        warmup_steps: (cfg.warmup_ratio * steps as f64).round() as usize,
        checkpoint_every: cfg.checkpoint_every,
        log_every: cfg.log_every,
        columns: &["dpo", "accuracy", "margin", "reward", "reward_term"],
    };
    let mask_id = net_cfg.mask_id();
    let text_len = net_cfg.text_len;
    let inner = models.init.device();
    let (per_step, reward_pool) = reward_prompts(cfg, steps);
    let mut step_fn = |model: &MaskGit<B>, step: usize| -> Result<StepLoss<B>, ModelError> {
        // Rows 0..b are the chosen images, b..2b the rejected ones; each image gets its own
        // cosine mask, as the paper's code draws one ratio per image.
        let b = cfg.batch_size.min(pairs.len());
        let mut host = HostBatch::default();
        for side in 0..2u64 {
            for j in 0..b {
                let p = &pairs[(step * cfg.batch_size + j) % pairs.len()];
                let tokens = if side == 0 { &p.chosen } else { &p.rejected };
                let mut rng = Rng::derived(cfg.seed, &[step as u64, j as u64, side]);
                let mask = cosine_mask_for(&net_cfg, &mut rng);
                push_masked(
                    &mut host,
                    &prompt_ids(&p.prompt).map_err(err)?,
                    tokens,
                    &mask,
                    mask_id,
                );
            }
        }
        let (rt, ri, rg, rm) = to_device::<B::InnerBackend>(host.clone(), text_len, &inner);
        let ref_lp = reference.masked_log_prob(rt, ri, rg, rm);
        let ref_lp = Tensor::<B, 1>::from_data(ref_lp.into_data(), device);
        let (text, input, targets, masked) = to_device::<B>(host, text_len, device);
        let lp = model.masked_log_prob(text, input, targets, masked);
        let (dpo, accuracy, margin_mean) = dpo_loss(lp - ref_lp, b, cfg.beta);
        let (reward, reward_term) = match (&cfg.reward, models.reward_judge) {
            (Some(r), Some(judge)) => {
                let prompts = &reward_pool[step * per_step..(step + 1) * per_step];
                reward_term::<B>(cfg, r, judge, model, models.init, (step, prompts), device)?
            }
            _ => (
                Tensor::<B, 1>::zeros([1], device),
                Tensor::<B, 1>::zeros([1], device),
            ),
        };
        Ok(StepLoss {
            total: dpo.clone() + reward_term.clone(),
            parts: vec![
                dpo.detach(),
                accuracy,
                margin_mean,
                reward,
                reward_term.detach(),
            ],
            grads: None,
        })
    };
    let model = train_loop::run(
        &spec,
        out,
        policy,
        optim,
        device,
        &mut step_fn,
        &mut |m, _| Ok(m),
        progress,
    )?;
    let meta = GeneratorMeta {
        format: GENERATOR_FORMAT.into(),
        name: cfg.name.clone(),
        net: net_cfg,
        tokenizer: models.init.meta.tokenizer.clone(),
        sampling: models.init.meta.sampling,
        train: serde_json::to_value(cfg).map_err(|e| err(e.to_string()))?,
    };
    write_generator(&model.valid(), &meta, out)?;
    Ok(meta)
}

/// The DPO loss of the log-ratios `delta = log πθ − log π_ref` of `b` chosen rows followed by
/// their `b` rejected rows: `(loss, share of pairs with a positive implicit reward margin, mean
/// margin in nats)`, the last two detached. Shared by both generator families.
pub fn dpo_loss<B: Backend>(
    delta: Tensor<B, 1>,
    b: usize,
    beta: f64,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let margin = delta.clone().narrow(0, 0, b) - delta.narrow(0, b, b);
    let logits = margin.clone().mul_scalar(beta);
    let loss = -log_sigmoid(logits.clone()).mean();
    let accuracy = logits.detach().greater_elem(0.0).float().mean();
    (loss, accuracy, margin.detach().mean())
}

/// The reward term's prompts per step and their pool for a run of `steps`: one pool, sliced per
/// step. The pool is shuffled across tags; drawing a few prompts per step from a per-step seed
/// would always take the tags with the largest quota remainders (position and colour
/// attribution).
pub(super) fn reward_prompts(cfg: &DpoTrainConfig, steps: usize) -> (usize, Vec<Metadata>) {
    let per_step = cfg
        .reward
        .as_ref()
        .map_or(0, |r| r.samples_per_step / r.samples_per_prompt.max(1));
    let pool = world::prompts::training_prompts(steps * per_step, derive_seed(cfg.seed, &[7]));
    (per_step, pool)
}

/// Leave-one-out advantages `R_i − mean_{j≠i} R_j` of one group of rewards (at least 2), divided
/// by the group's standard deviation when `normalize` (0 where every reward is equal).
pub(super) fn advantages(rewards: &[f64], normalize: bool) -> Vec<f64> {
    let n = rewards.len() as f64;
    let total: f64 = rewards.iter().sum();
    let raw = rewards.iter().map(|&x| x - (total - x) / (n - 1.0));
    if !normalize {
        return raw.collect();
    }
    let mean = total / n;
    let sd = (rewards.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    raw.map(|a| if sd > 0.0 { a / sd } else { 0.0 }).collect()
}

/// The REINFORCE term of one step: the current policy samples `samples_per_step` images of the
/// step's prompts `step_prompts` (`samples_per_prompt` each; no gradient), the judge scores them, and each
/// sample's mean log-probability over a random cosine mask is weighted by its advantage `R − b`
/// (leave-one-out baseline within its prompt, see [`advantages`]).
/// Returns (mean reward, weighted term).
pub(super) fn reward_term<B: AutodiffBackend>(
    cfg: &DpoTrainConfig,
    r: &RewardConfig,
    judge: &dyn Judge,
    model: &MaskGit<B>,
    init: &BurnGenerator<B::InnerBackend>,
    (step, step_prompts): (usize, &[Metadata]),
    device: &B::Device,
) -> Result<(Tensor<B, 1>, Tensor<B, 1>), ModelError> {
    let k = r.samples_per_prompt.max(1);
    let prompts: Vec<Metadata> = step_prompts
        .iter()
        .flat_map(|m| std::iter::repeat_n(m.clone(), k))
        .collect();
    let current = init.with_net(model.valid());
    let steps = r.steps.unwrap_or(current.sampling.steps);
    let mut batch: Vec<Trajectory> = prompts
        .iter()
        .enumerate()
        .map(|(j, m)| {
            current.start(
                &m.prompt,
                derive_seed(cfg.seed, &[step as u64, j as u64, 2]),
                steps,
            )
        })
        .collect();
    current.run_to_end(&mut batch).map_err(err)?;
    let images = current.decode(&batch).map_err(err)?;
    let requests: Vec<JudgeRequest<'_>> = images
        .iter()
        .zip(&prompts)
        .map(|(image, metadata): (_, &Metadata)| JudgeRequest {
            task: r.task,
            image,
            metadata,
            step: None,
        })
        .collect();
    let rewards: Vec<f64> = judge
        .judge(&requests)
        .map_err(err)?
        .iter()
        .map(|v| v.p_yes)
        .collect();
    let n = rewards.len();
    let total: f64 = rewards.iter().sum();
    // The baseline group: a prompt's samples, or the whole step when each prompt has one.
    let group = if k > 1 { k } else { n };
    let advantages: Vec<f32> = rewards
        .chunks(group)
        .flat_map(|g| advantages(g, r.normalize))
        .map(|a| a as f32)
        .collect();
    let mut host = HostBatch::default();
    let mut counts = Vec::with_capacity(n);
    for (j, (t, m)) in batch.iter().zip(&prompts).enumerate() {
        let mut rng = Rng::derived(cfg.seed, &[step as u64, j as u64, 3]);
        let mask = cosine_mask_for(&init.meta.net, &mut rng);
        counts.push(mask.iter().filter(|&&x| x).count() as f32);
        push_masked(
            &mut host,
            &prompt_ids(&m.prompt).map_err(err)?,
            &t.prediction,
            &mask,
            init.meta.net.mask_id(),
        );
    }
    let (text, input, targets, masked) = to_device::<B>(host, init.meta.net.text_len, device);
    let lp = model.masked_log_prob(text, input, targets, masked);
    let per_token = lp / Tensor::<B, 1>::from_floats(counts.as_slice(), device);
    let adv = Tensor::<B, 1>::from_floats(advantages.as_slice(), device);
    let term = -(per_token * adv).mean().mul_scalar(r.weight);
    let reward = Tensor::<B, 1>::from_floats([(total / n as f64) as f32], device);
    Ok((reward, term))
}
