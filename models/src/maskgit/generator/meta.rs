//! What a generator folder's `generator.json` holds: the network, the tokenizer's name and the
//! sampling settings.

use crate::maskgit::model::MaskGitConfig;
use serde::{Deserialize, Serialize};

/// Version tag of `generator.json`.
pub const GENERATOR_FORMAT: &str = "evalcot-maskgit-1";

/// Sampling settings (the paper's defaults: T = 18, s = 1.75).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Steps T of a full schedule.
    pub steps: usize,
    /// Classifier-free guidance scale s in `(1+s)·cond − s·uncond`.
    pub cfg_scale: f64,
    /// Initial re-masking temperature τ0 (annealed per step, reset per candidate).
    pub tau0: f64,
    /// Temperature of the token draws: Show-o draws from the guided distribution as it is (1);
    /// below 1 sharpens it (0 takes the most likely code). Confidences stay the model's log p.
    #[serde(skip_serializing_if = "is_one")]
    pub temperature: f64,
}

pub(super) fn is_one(v: &f64) -> bool {
    *v == 1.0
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            steps: 18,
            cfg_scale: 1.75,
            tau0: 1.0,
            temperature: 1.0,
        }
    }
}

impl SamplingConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.steps == 0
            || !self.cfg_scale.is_finite()
            || self.tau0.is_nan()
            || self.tau0 < 0.0
            || self.temperature.is_nan()
            || self.temperature < 0.0
        {
            return Err(
                "sampling.steps ≥ 1, finite sampling.cfg_scale, sampling.tau0 ≥ 0, \
                 sampling.temperature ≥ 0"
                    .into(),
            );
        }
        Ok(())
    }
}

/// What `generator.json` holds beside `generator.bpk`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorMeta {
    pub format: String,
    pub name: String,
    pub net: MaskGitConfig,
    /// Name of the tokenizer whose codes this generator predicts.
    pub tokenizer: String,
    pub sampling: SamplingConfig,
    /// The exact training configuration (generator or DPO) that produced the weights.
    pub train: serde_json::Value,
}
