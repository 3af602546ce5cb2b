//! The second stage's training configuration.

use super::super::config::check_schedule;
use super::super::data::AugmentConfig;
use super::model::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
/// Everything that determines a trained second stage (the YAML given to
/// `evalcot train rescorer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RescorerTrainConfig {
    /// Name of the combined detector written to the output folder.
    pub name: String,
    /// The first stage (a trained detector folder); its weights are copied, not changed.
    pub detector: PathBuf,
    pub seed: u64,
    pub steps: usize,
    /// Scenes per step; each gives a crop per object and `negatives` background windows.
    pub batch_scenes: usize,
    pub negatives: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    /// Fraction of scenes drawn from training prompts (the rest are random 0–5 object scenes).
    pub prompt_fraction: f64,
    pub net: RescorerNetConfig,
    pub augment: AugmentConfig,
    pub checkpoint_every: usize,
    pub log_every: usize,
    /// Held-out renders on which the fusion with the first stage's peaks is fitted.
    pub fusion_images: usize,
}

impl Default for RescorerTrainConfig {
    fn default() -> Self {
        RescorerTrainConfig {
            name: "evaluator-rescored".into(),
            detector: PathBuf::from("models/weights/detector"),
            seed: 5,
            steps: 2000,
            batch_scenes: 64,
            negatives: 2,
            lr: 2e-3,
            warmup_steps: 100,
            weight_decay: 1e-4,
            prompt_fraction: 0.5,
            net: RescorerNetConfig::default(),
            augment: AugmentConfig::default(),
            checkpoint_every: 200,
            log_every: 10,
            fusion_images: 4000,
        }
    }
}

impl RescorerTrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_schedule(
            self.steps,
            (self.batch_scenes, "batch_scenes"),
            self.prompt_fraction,
            self.lr,
        )?;
        if self.fusion_images == 0 {
            return Err("fusion_images must be at least 1".into());
        }
        self.net.validate()
    }
}
