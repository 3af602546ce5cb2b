//! The AR generator's training configuration (`evalcot train ar --config FILE`).

use super::model::{ArSampling, NO_GROUPS};
use crate::maskgit::MaskGitConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `evalcot train ar --config FILE`: next-token prediction on the same world data as the
/// masked-token generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArTrainConfig {
    pub name: String,
    pub seed: u64,
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    pub uncond_prob: f64,
    pub tokenizer: PathBuf,
    pub checkpoint_every: usize,
    pub log_every: usize,
    pub net: MaskGitConfig,
    #[serde(default)]
    pub sampling: ArSampling,
    /// A masked-token generator folder (same `net`, same tokenizer) whose weights start the
    /// causal network: its code embeddings, output layer and text encoder carry over, and its
    /// [MASK] embedding becomes the BOS token (both are id `codebook`). Absent: random start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
}

impl ArTrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        crate::maskgit::training::validate_common(
            &self.net,
            self.steps,
            self.batch_size,
            self.lr,
            self.uncond_prob,
        )?;
        if self.net.group != 1 {
            return Err(NO_GROUPS.into());
        }
        if self.sampling.steps == 0 || self.sampling.steps > self.net.image_tokens {
            return Err("sampling.steps must be between 1 and the number of image tokens".into());
        }
        Ok(())
    }
}
