//! DPO's configuration (`evalcot train dpo --config FILE`): pairs, rounds and the reward term.

use harness::judge::JudgeTask;
use serde::{Deserialize, Serialize};

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
    /// Take the samples and their labels from this bank instead of sampling and judging: the
    /// first `prompts` prompts, the first `samples_per_prompt` candidates of each, P(yes) 1 for
    /// a candidate its detector and the GenEval rules find right and 0 otherwise. The bank's
    /// generator must be the sampler, its detector an annotator (never the evaluation
    /// detector), and `judge` then reads `bank`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank: Option<String>,
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

pub(super) fn one() -> usize {
    1
}

pub(super) fn default_task() -> JudgeTask {
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
