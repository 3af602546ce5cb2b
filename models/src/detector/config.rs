//! The detector's training configuration, beside the model so that inference (which records it
//! with the weights) never imports training.

use super::data::AugmentConfig;
use super::model::DetectorNetConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Everything that determines a trained detector (the YAML given to `evalcot train detector`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorTrainConfig {
    /// Name recorded with the weights (e.g. "evaluator", "annotator").
    pub name: String,
    pub seed: u64,
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    /// Fraction of scenes drawn from training prompts; the rest are random 0–5 object scenes.
    pub prompt_fraction: f64,
    pub net: DetectorNetConfig,
    pub augment: AugmentConfig,
    pub checkpoint_every: usize,
    pub log_every: usize,
    /// Held-out renders used to fit the score calibration.
    pub calibration_images: usize,
    /// Start from this trained detector (a folder with detector.json/.bpk of the same
    /// architecture) instead of random weights: fine-tuning. Relative to the working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
}

impl Default for DetectorTrainConfig {
    fn default() -> Self {
        DetectorTrainConfig {
            name: "evaluator".into(),
            seed: 1,
            steps: 4000,
            batch_size: 32,
            lr: 2e-3,
            warmup_steps: 200,
            weight_decay: 1e-4,
            prompt_fraction: 0.5,
            net: DetectorNetConfig::default(),
            augment: AugmentConfig::default(),
            checkpoint_every: 250,
            log_every: 25,
            calibration_images: 2000,
            init_from: None,
        }
    }
}

/// The checks every detector-family training config shares: a non-empty schedule (`batch`
/// names the config's batch field), a prompt fraction in [0, 1] and a positive learning rate.
pub(crate) fn check_schedule(
    steps: usize,
    (batch, batch_field): (usize, &str),
    prompt_fraction: f64,
    lr: f64,
) -> Result<(), String> {
    if steps == 0 || batch == 0 {
        return Err(format!("steps and {batch_field} must be at least 1"));
    }
    if !(0.0..=1.0).contains(&prompt_fraction) {
        return Err(format!(
            "prompt_fraction must be in [0, 1], got {prompt_fraction}"
        ));
    }
    if !(lr > 0.0 && lr.is_finite()) {
        return Err(format!("lr must be a positive number, got {lr}"));
    }
    Ok(())
}

impl DetectorTrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_schedule(
            self.steps,
            (self.batch_size, "batch_size"),
            self.prompt_fraction,
            self.lr,
        )?;
        if self.net.image_size != 64 {
            return Err(format!(
                "net.image_size must be 64 (the world's size), got {}",
                self.net.image_size
            ));
        }
        Ok(())
    }
}
