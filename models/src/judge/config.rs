//! The judge's training configuration, beside the model so that inference (which records it
//! with the weights) never imports training.

use super::data::CollectConfig;
use super::model::JudgeNetConfig;
use serde::{Deserialize, Serialize};

/// Which data the judge learns from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JudgeMode {
    /// Clean renders only (matching and near-miss prompts); never generator outputs.
    ZeroShot,
    /// The generator's trajectories, labelled by the annotator detector.
    FineTuned,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeTrainConfig {
    pub name: String,
    pub mode: JudgeMode,
    pub seed: u64,
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    /// Zero-shot: rendered prompts in the pool (each gives a final question and reflections).
    pub zero_shot_prompts: usize,
    /// Fine-tuned: how generator trajectories are collected.
    #[serde(default)]
    pub collect: CollectConfig,
    /// Fine-tuned: generator name or folder; the annotator detector folder.
    pub generator: String,
    pub annotator: std::path::PathBuf,
    /// Detector folder whose weights fill `net.backbone` (the annotator: the evaluation
    /// detector must never shape a judge).
    #[serde(default)]
    pub backbone: Option<std::path::PathBuf>,
    pub checkpoint_every: usize,
    pub log_every: usize,
    pub net: JudgeNetConfig,
}

impl JudgeTrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.net.validate()?;
        if self.net.backbone.is_some() != self.backbone.is_some() {
            return Err(
                "net.backbone (architecture) and backbone (weights folder) go together".into(),
            );
        }
        if self.steps == 0 || self.batch_size == 0 || self.lr <= 0.0 {
            return Err("steps ≥ 1, batch_size ≥ 1 and lr > 0 are required".into());
        }
        Ok(())
    }
}
