//! Preference alignment of the masked-token generator (paper §2): DPO on (chosen, rejected)
//! pairs that a judge labels among the generator's own samples of *training* prompts, iterative
//! DPO (the same from an aligned model), and reward-guided DPO — an online term in which the
//! judge's verdict on freshly generated images moves the gradient.
//!
//! The paper's released reward term is built with `torch.tensor` from a number and carries no
//! gradient; here it is a REINFORCE term: `−w · (R − b) · mean log πθ(tokens)` over a random
//! cosine mask of the freshly sampled tokens, `R` the judge's P(yes), `b` the mean reward of the
//! step's other samples (leave-one-out, so no state and no bias), `w` 0.1 by default.

use super::generator::{BurnGenerator, GeneratorMeta, GENERATOR_FORMAT};
use super::model::MaskGit;
use super::training::{
    cosine_mask_for, prompt_ids, push_masked, to_device, write_generator, HostBatch,
};
use crate::store::{module_from_bytes, module_to_bytes, ModelError};
use crate::train_loop::{self, LoopSpec, StepLoss};
use burn::module::AutodiffModule;
use burn::optim::AdamWConfig;
use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;
use burn::tensor::backend::AutodiffBackend;
use harness::generator::{Generator, Trajectory};
use harness::judge::{Judge, JudgeRequest, JudgeTask};
use harness::rng::{derive_seed, Rng};
use harness::Metadata;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `evalcot train dpo --config FILE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpoTrainConfig {
    /// Name of the aligned generator (`dpo`, `dpo-iter`, `dpo-iter-guided`).
    pub name: String,
    pub seed: u64,
    /// The generator the policy starts from: a shipped name or a folder.
    pub init: String,
    /// The frozen reference; `init` when absent.
    #[serde(default)]
    pub reference: Option<String>,
    pub pairs: PairsConfig,
    /// Passes over the pairs (the paper: 1).
    pub epochs: usize,
    /// Pairs per step (the paper: 10).
    pub batch_size: usize,
    pub lr: f64,
    /// Warm-up as a fraction of all steps (the paper: 0.1, then cosine decay).
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    /// DPO's β (the paper: 0.1).
    pub beta: f64,
    /// The online reward term; none for plain (iterative) DPO.
    #[serde(default)]
    pub reward: Option<RewardConfig>,
    pub checkpoint_every: usize,
    pub log_every: usize,
}

/// How preference pairs are made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairsConfig {
    /// The generator that samples candidates: `init` when absent (iterative DPO samples with
    /// the aligned model it starts from).
    #[serde(default)]
    pub sampler: Option<String>,
    /// The judge that labels them (its `final` verdict, P(yes) ≥ 0.5 is "yes"): a shipped name,
    /// a folder or `ext:CMD`.
    pub judge: String,
    /// Training prompts drawn (never the GenEval ones).
    pub prompts: usize,
    /// Samples per prompt, K.
    pub samples_per_prompt: usize,
    /// Generation steps (the sampler's default when absent).
    #[serde(default)]
    pub steps: Option<usize>,
    pub seed: u64,
    /// How a prompt's judged samples become a pair (the paper's `verdict` by default).
    #[serde(default)]
    pub rule: PairRule,
    /// `ranked` only: the least P(yes) gap between chosen and rejected.
    #[serde(default)]
    pub min_gap: f64,
}

/// How a prompt's K judged samples become a (chosen, rejected) pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PairRule {
    /// The paper's: P(yes) ≥ 0.5 is "yes"; one random yes and one random no; prompts whose
    /// samples all agree are dropped. Needs a judge calibrated so that verdicts vary within a
    /// prompt.
    #[default]
    Verdict,
    /// The sample the judge ranks highest against the one it ranks lowest, kept when their
    /// P(yes) differ by at least `min_gap`: the same preference without the 0.5 threshold, for
    /// a judge whose verdicts are mostly decided by the prompt (every sample "no").
    Ranked,
}

impl PairsConfig {
    /// The part of the config that decides the samples and their verdicts (not how pairs are
    /// picked from them): the key of the sample cache.
    pub fn sampling_key(&self) -> PairsConfig {
        PairsConfig {
            rule: PairRule::Verdict,
            min_gap: 0.0,
            ..self.clone()
        }
    }
}

/// The online reward term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardConfig {
    /// The rewarding judge (a name, folder or `ext:CMD`); its P(yes) on `task` is the reward.
    pub judge: String,
    #[serde(default = "default_task")]
    pub task: JudgeTask,
    /// Weight of the term (0 turns it off but still logs it: the ablation).
    pub weight: f64,
    /// Images generated with the current policy per step (≥ 2: the baseline leaves one out).
    pub samples_per_step: usize,
    /// Samples of each prompt within a step (dividing `samples_per_step`). Above 1, a sample's
    /// baseline is the mean reward of the *other samples of its prompt* (RLOO), so the advantage
    /// says which sample is better rather than which prompt is easier — with a judge whose P(yes)
    /// is set mostly by the prompt, the batch-wide baseline of 1 rewards easy prompts.
    #[serde(default = "one")]
    pub samples_per_prompt: usize,
    /// Divide each group's advantages by the standard deviation of its rewards (as GRPO), so the
    /// term's size does not depend on how far apart the judge's scores of one prompt lie.
    #[serde(default)]
    pub normalize: bool,
    /// Generation steps (the policy's default when absent).
    #[serde(default)]
    pub steps: Option<usize>,
}

fn one() -> usize {
    1
}

fn default_task() -> JudgeTask {
    JudgeTask::Final
}

impl DpoTrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.epochs == 0 || self.batch_size == 0 || self.lr <= 0.0 || self.beta <= 0.0 {
            return Err("epochs ≥ 1, batch_size ≥ 1, lr > 0 and beta > 0 are required".into());
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return Err(format!(
                "warmup_ratio {} must be in [0, 1)",
                self.warmup_ratio
            ));
        }
        if self.pairs.prompts == 0 || self.pairs.samples_per_prompt < 2 {
            return Err("pairs: prompts ≥ 1 and samples_per_prompt ≥ 2 are required".into());
        }
        if !(0.0..1.0).contains(&self.pairs.min_gap) {
            return Err(format!(
                "pairs.min_gap {} must be in [0, 1)",
                self.pairs.min_gap
            ));
        }
        if let Some(r) = &self.reward {
            if !r.weight.is_finite() || r.weight < 0.0 {
                return Err(format!("reward.weight {} must be ≥ 0", r.weight));
            }
            if r.samples_per_step < 2 {
                return Err("reward.samples_per_step must be ≥ 2 (leave-one-out baseline)".into());
            }
            let k = r.samples_per_prompt;
            if k == 0 || !r.samples_per_step.is_multiple_of(k) {
                return Err(format!(
                    "reward.samples_per_prompt {k} must divide samples_per_step {}",
                    r.samples_per_step
                ));
            }
        }
        Ok(())
    }
}

/// One preference pair: image tokens of a "yes" and a "no" sample of the same prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub prompt: String,
    pub chosen: Vec<u32>,
    pub rejected: Vec<u32>,
    pub p_chosen: f64,
    pub p_rejected: f64,
}

/// What pair building saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairStats {
    pub prompts: usize,
    pub all_yes: usize,
    pub all_no: usize,
    /// `ranked`: prompts dropped because their best and worst P(yes) were closer than `min_gap`.
    #[serde(default)]
    pub too_close: usize,
    pub pairs: usize,
}

/// A training prompt's K samples (image tokens) and the labelling judge's P(yes) for each: what
/// pairs are picked from, cached so that a new rule does not resample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgedPrompt {
    pub prompt: String,
    pub tokens: Vec<Vec<u32>>,
    pub p_yes: Vec<f64>,
}

fn err(message: impl Into<String>) -> ModelError {
    ModelError::config("DPO", message)
}

/// Samples K images per training prompt with `sampler`, labels them with `labeller`'s `final`
/// verdict and picks pairs by `cfg.rule` ([`judge_samples`] then [`select_pairs`]).
pub fn build_pairs(
    cfg: &PairsConfig,
    sampler: &dyn Generator,
    labeller: &dyn Judge,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<Pair>, PairStats), ModelError> {
    let judged = judge_samples(cfg, sampler, labeller, progress)?;
    Ok(select_pairs(cfg, &judged))
}

/// K samples per training prompt and their `final` P(yes). Every draw comes from
/// `(cfg.seed, prompt, sample)`, so chunks run one per core (when both models allow it) and the
/// result does not depend on the thread count.
pub fn judge_samples(
    cfg: &PairsConfig,
    sampler: &dyn Generator,
    labeller: &dyn Judge,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<JudgedPrompt>, ModelError> {
    let prompts = world::prompts::training_prompts(cfg.prompts, cfg.seed);
    const CHUNK: usize = 8;
    let chunks: Vec<(usize, &[Metadata])> = prompts
        .chunks(CHUNK)
        .enumerate()
        .map(|(c, chunk)| (c * CHUNK, chunk))
        .collect();
    let width = if sampler.concurrent() && labeller.concurrent() {
        rayon::current_num_threads()
    } else {
        1
    };
    let mut out = Vec::with_capacity(prompts.len());
    harness::waves::in_order(
        &chunks,
        width,
        |&(first, chunk)| judge_chunk(cfg, sampler, labeller, first, chunk),
        |_, part| {
            out.extend(part?);
            progress(out.len(), prompts.len());
            Ok::<(), ModelError>(())
        },
    )?;
    Ok(out)
}

/// The judged samples of the prompts `first..first + chunk.len()`.
fn judge_chunk(
    cfg: &PairsConfig,
    sampler: &dyn Generator,
    labeller: &dyn Judge,
    first: usize,
    chunk: &[Metadata],
) -> Result<Vec<JudgedPrompt>, ModelError> {
    let steps = cfg.steps.unwrap_or_else(|| sampler.default_steps());
    let k = cfg.samples_per_prompt;
    let mut batch: Vec<Trajectory> = Vec::with_capacity(chunk.len() * k);
    for (j, m) in chunk.iter().enumerate() {
        for s in 0..k {
            batch.push(sampler.start(
                &m.prompt,
                derive_seed(cfg.seed, &[(first + j) as u64, s as u64]),
                steps,
            ));
        }
    }
    sampler.run_to_end(&mut batch).map_err(err)?;
    let images = sampler.decode(&batch).map_err(err)?;
    let requests: Vec<JudgeRequest<'_>> = images
        .iter()
        .enumerate()
        .map(|(b, image)| JudgeRequest {
            task: JudgeTask::Final,
            image,
            metadata: &chunk[b / k],
            step: None,
        })
        .collect();
    let verdicts = labeller.judge(&requests).map_err(err)?;
    Ok(chunk
        .iter()
        .enumerate()
        .map(|(j, m)| JudgedPrompt {
            prompt: m.prompt.clone(),
            tokens: (0..k)
                .map(|s| batch[j * k + s].prediction.clone())
                .collect(),
            p_yes: (0..k).map(|s| verdicts[j * k + s].p_yes).collect(),
        })
        .collect())
}

/// One pair per judged prompt by `cfg.rule`, or the reason it has none (counted in the stats).
/// Draws come from `(cfg.seed, prompt)`.
pub fn select_pairs(cfg: &PairsConfig, judged: &[JudgedPrompt]) -> (Vec<Pair>, PairStats) {
    let mut stats = PairStats {
        prompts: judged.len(),
        ..PairStats::default()
    };
    let mut pairs = Vec::new();
    for (i, jp) in judged.iter().enumerate() {
        let k = jp.p_yes.len();
        let (c_s, r_s) = match cfg.rule {
            PairRule::Verdict => {
                let yes: Vec<usize> = (0..k).filter(|&s| jp.p_yes[s] >= 0.5).collect();
                let no: Vec<usize> = (0..k).filter(|&s| jp.p_yes[s] < 0.5).collect();
                if no.is_empty() {
                    stats.all_yes += 1;
                    continue;
                }
                if yes.is_empty() {
                    stats.all_no += 1;
                    continue;
                }
                let mut rng = Rng::derived(cfg.seed, &[i as u64, u64::MAX]);
                (yes[rng.index(yes.len())], no[rng.index(no.len())])
            }
            PairRule::Ranked => {
                // Ties keep the first sample, so the pick is a function of the scores alone.
                let by = |better: fn(f64, f64) -> bool| {
                    (1..k).fold(0, |b, s| {
                        if better(jp.p_yes[s], jp.p_yes[b]) {
                            s
                        } else {
                            b
                        }
                    })
                };
                let (hi, lo) = (by(|a, b| a > b), by(|a, b| a < b));
                if jp.p_yes[hi] - jp.p_yes[lo] < cfg.min_gap.max(f64::MIN_POSITIVE) {
                    stats.too_close += 1;
                    continue;
                }
                (hi, lo)
            }
        };
        pairs.push(Pair {
            prompt: jp.prompt.clone(),
            chosen: jp.tokens[c_s].clone(),
            rejected: jp.tokens[r_s].clone(),
            p_chosen: jp.p_yes[c_s],
            p_rejected: jp.p_yes[r_s],
        });
    }
    stats.pairs = pairs.len();
    (pairs, stats)
}

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
fn reward_prompts(cfg: &DpoTrainConfig, steps: usize) -> (usize, Vec<Metadata>) {
    let per_step = cfg
        .reward
        .as_ref()
        .map_or(0, |r| r.samples_per_step / r.samples_per_prompt.max(1));
    let pool = world::prompts::training_prompts(steps * per_step, derive_seed(cfg.seed, &[7]));
    (per_step, pool)
}

/// Leave-one-out advantages `R_i − mean_{j≠i} R_j` of one group of rewards (at least 2), divided
/// by the group's standard deviation when `normalize` (0 where every reward is equal).
fn advantages(rewards: &[f64], normalize: bool) -> Vec<f64> {
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
fn reward_term<B: AutodiffBackend>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cpu, CpuTrain};
    use harness::judge::Verdict;

    #[test]
    fn advantages_leave_one_out_within_a_group_and_normalize_by_its_spread() {
        let a = advantages(&[1.0, 0.0, 0.5], false);
        assert_eq!(a, vec![0.75, -0.75, 0.0]);
        // Normalised: the same order, scaled by the group's standard deviation; a flat group
        // carries no signal.
        let sd = (((0.5f64).powi(2) * 2.0) / 3.0).sqrt();
        let b = advantages(&[1.0, 0.0, 0.5], true);
        for (x, y) in a.iter().zip(&b) {
            assert!((x / sd - y).abs() < 1e-12, "{a:?} {b:?}");
        }
        assert_eq!(advantages(&[0.3, 0.3], true), vec![0.0, 0.0]);
        // Scale-free: tiny gaps of one prompt weigh as much as large ones.
        let small = advantages(&[0.101, 0.100], true);
        let large = advantages(&[0.9, 0.1], true);
        assert!((small[0] - large[0]).abs() < 1e-6, "{small:?} {large:?}");
    }

    #[test]
    fn reward_prompts_cover_every_tag_over_a_run() {
        let mut c = config(Some(0.1));
        c.reward.as_mut().unwrap().samples_per_step = 8;
        c.reward.as_mut().unwrap().samples_per_prompt = 4;
        let (per_step, pool) = reward_prompts(&c, 27);
        assert_eq!((per_step, pool.len()), (2, 54));
        let tags: std::collections::BTreeSet<_> = pool.iter().map(|m| m.tag).collect();
        assert_eq!(tags.len(), 5, "{tags:?}");
        // Consecutive steps do not repeat one tag pattern.
        let first: Vec<_> = pool[..2].iter().map(|m| m.tag).collect();
        assert!(pool
            .chunks(2)
            .any(|s| s.iter().map(|m| m.tag).collect::<Vec<_>>() != first));
    }

    #[test]
    fn reward_groups_must_divide_the_step() {
        let mut c = config(Some(0.1));
        c.reward.as_mut().unwrap().samples_per_prompt = 3;
        assert!(c.validate().unwrap_err().contains("samples_per_prompt 3"));
        c.reward.as_mut().unwrap().samples_per_prompt = 4;
        assert!(c.validate().is_ok());
    }

    /// A tiny generator over the shipped tokenizer's codes, random weights from a seed.
    fn tiny() -> BurnGenerator<Cpu> {
        crate::testutil::tiny_generator("tiny", 1, super::super::SamplingConfig::default().steps)
    }

    /// P(yes) = the image's mean red level: cheap, deterministic, and it varies between samples.
    struct RedJudge;
    impl Judge for RedJudge {
        fn name(&self) -> &str {
            "red"
        }
        fn judge(&self, requests: &[JudgeRequest<'_>]) -> Result<Vec<Verdict>, String> {
            Ok(requests
                .iter()
                .map(|r| {
                    let px = r.image.pixels().map(|p| p.0[0] as f64).sum::<f64>();
                    let mean = px / (255.0 * r.image.pixels().len() as f64);
                    Verdict {
                        p_yes: (mean * 4.0 - 1.5).clamp(0.0, 1.0),
                        clauses: vec![],
                    }
                })
                .collect())
        }
    }

    fn config(reward: Option<f64>) -> DpoTrainConfig {
        DpoTrainConfig {
            name: "dpo-test".into(),
            seed: 1,
            init: "tiny".into(),
            reference: None,
            pairs: PairsConfig {
                sampler: None,
                judge: "red".into(),
                prompts: 8,
                samples_per_prompt: 4,
                steps: Some(3),
                seed: 2,
                rule: PairRule::Verdict,
                min_gap: 0.0,
            },
            epochs: 3,
            batch_size: 2,
            lr: 3e-3,
            warmup_ratio: 0.0,
            weight_decay: 0.0,
            beta: 0.1,
            reward: reward.map(|weight| RewardConfig {
                judge: "red".into(),
                task: JudgeTask::Final,
                weight,
                samples_per_step: 4,
                samples_per_prompt: 2,
                normalize: true,
                steps: Some(2),
            }),
            checkpoint_every: 100,
            log_every: 1,
        }
    }

    fn pairs(g: &BurnGenerator<Cpu>) -> Vec<Pair> {
        let cfg = config(None);
        let (pairs, stats) = build_pairs(&cfg.pairs, g, &RedJudge, &mut |_, _| {}).unwrap();
        assert_eq!(stats.prompts, 8);
        assert_eq!(stats.pairs + stats.all_yes + stats.all_no, 8);
        assert_eq!(stats.pairs, pairs.len());
        for p in &pairs {
            assert!(p.p_chosen >= 0.5 && p.p_rejected < 0.5, "{p:?}");
            assert_eq!((p.chosen.len(), p.rejected.len()), (64, 64));
        }
        pairs
    }

    #[test]
    fn the_ranked_rule_pairs_best_with_worst_and_drops_close_calls() {
        let jp = |p_yes: Vec<f64>| JudgedPrompt {
            prompt: "a photo of a cat".into(),
            tokens: (0..p_yes.len() as u32).map(|s| vec![s; 4]).collect(),
            p_yes,
        };
        let judged = vec![
            jp(vec![0.1, 0.3, 0.05, 0.3]), // all "no" to the paper's rule; ranked: 1 over 2
            jp(vec![0.9, 0.2, 0.6, 0.7]),  // both rules pair it
            jp(vec![0.2, 0.21, 0.2, 0.2]), // closer than min_gap
        ];
        let mut cfg = config(None).pairs;
        let (pairs, stats) = select_pairs(&cfg, &judged);
        assert_eq!((stats.all_no, stats.pairs, stats.all_yes), (2, 1, 0));
        assert_eq!(pairs[0].rejected, vec![1; 4]);
        cfg.rule = PairRule::Ranked;
        cfg.min_gap = 0.1;
        let (pairs, stats) = select_pairs(&cfg, &judged);
        assert_eq!((stats.pairs, stats.too_close), (2, 1));
        assert_eq!(
            (pairs[0].chosen[0], pairs[0].rejected[0]),
            (1, 2),
            "ties keep the first"
        );
        assert_eq!((pairs[1].chosen[0], pairs[1].rejected[0]), (0, 1));
        assert_eq!(pairs[1].p_chosen - pairs[1].p_rejected, 0.9 - 0.2);
    }

    #[test]
    fn pairs_do_not_depend_on_the_thread_count() {
        let g = tiny();
        let mut cfg = config(None).pairs;
        cfg.prompts = 20; // three chunks, so two really run in parallel
        let build = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| build_pairs(&cfg, &g, &RedJudge, &mut |_, _| {}).unwrap())
        };
        let (one, stats) = build(1);
        assert_eq!(stats.prompts, 20);
        assert_eq!(stats.pairs + stats.all_yes + stats.all_no, 20);
        assert_eq!((one, stats), build(3));
    }

    /// Trains and returns a fingerprint of the weights (log-probabilities of the pairs' tokens:
    /// weight files also hold random parameter ids, so their bytes differ for equal weights) and
    /// the loss curve.
    fn train_once(
        cfg: &DpoTrainConfig,
        pairs: &[Pair],
        g: &BurnGenerator<Cpu>,
    ) -> (Vec<f64>, String) {
        let dir = tempfile::tempdir().unwrap();
        let models = DpoModels {
            init: g,
            reference: g,
            reward_judge: cfg.reward.as_ref().map(|_| &RedJudge as &dyn Judge),
        };
        train::<CpuTrain>(
            cfg,
            pairs,
            &models,
            dir.path(),
            &Default::default(),
            &mut |_, _, _| {},
        )
        .unwrap();
        let meta = crate::train_loop::read_json(&dir.path().join("generator.json")).unwrap();
        let bytes = std::fs::read(dir.path().join("generator.bpk")).unwrap();
        let trained = BurnGenerator::<Cpu>::from_parts(
            meta,
            bytes,
            g.tokenizer.clone(),
            "trained",
            &Default::default(),
        )
        .unwrap();
        let fingerprint = pairs
            .iter()
            .map(|p| trained.log_prob(&p.prompt, &p.chosen, 9).unwrap())
            .collect();
        (
            fingerprint,
            std::fs::read_to_string(dir.path().join("losses.csv")).unwrap(),
        )
    }

    fn column(csv: &str, name: &str) -> Vec<f64> {
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let i = header.iter().position(|h| *h == name).unwrap();
        csv.lines()
            .skip(1)
            .map(|l| l.split(',').nth(i).unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn dpo_starts_at_ln2_raises_the_margin_and_repeats_exactly() {
        let g = tiny();
        let pairs = pairs(&g);
        assert!(!pairs.is_empty());
        assert_eq!(
            pairs,
            super::tests::pairs(&g),
            "pairs depend only on the seeds"
        );
        let cfg = config(None);
        let (w1, csv1) = train_once(&cfg, &pairs, &g);
        let dpo = column(&csv1, "dpo");
        assert!((dpo[0] - std::f64::consts::LN_2).abs() < 1e-4, "{dpo:?}");
        let margins = column(&csv1, "margin");
        let late = margins[margins.len() - 3..].iter().sum::<f64>() / 3.0;
        assert!(
            late > 0.0,
            "the policy should prefer the chosen samples: {margins:?}"
        );
        let (w2, csv2) = train_once(&cfg, &pairs, &g);
        assert_eq!(csv1, csv2);
        assert_eq!(w1, w2, "the same config must give the same weights");
        let before: Vec<f64> = pairs
            .iter()
            .map(|p| g.log_prob(&p.prompt, &p.chosen, 9).unwrap())
            .collect();
        let gained = w1.iter().zip(&before).filter(|(a, b)| a > b).count();
        assert!(
            2 * gained > pairs.len(),
            "chosen samples became likelier: {w1:?} vs {before:?}"
        );
    }

    #[test]
    fn the_reward_term_moves_the_weights_and_weight_zero_is_plain_dpo() {
        let g = tiny();
        let pairs = pairs(&g);
        let (plain, _) = train_once(&config(None), &pairs, &g);
        let (zero, csv_zero) = train_once(&config(Some(0.0)), &pairs, &g);
        let (guided, csv_guided) = train_once(&config(Some(0.1)), &pairs, &g);
        assert_eq!(plain, zero, "weight 0 must leave training unchanged");
        assert_ne!(zero, guided, "a working reward term changes training");
        assert!(column(&csv_zero, "reward_term").iter().all(|&x| x == 0.0));
        assert!(column(&csv_guided, "reward_term").iter().any(|&x| x != 0.0));
        assert!(column(&csv_guided, "reward")
            .iter()
            .all(|&x| (0.0..=1.0).contains(&x)));
    }
}
