//! The tokenizer's training configuration, beside the model so that inference (which records it
//! with the weights) never imports training.

use super::model::VqNetConfig;
use serde::{Deserialize, Serialize};
use world::Style;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VqTrainConfig {
    pub name: String,
    pub seed: u64,
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    /// Weight of the commitment loss (encoder pulled toward its code).
    pub commit_beta: f64,
    /// Every this many steps, codes unused since the last restart are moved onto encoder outputs.
    pub restart_every: usize,
    /// Weight of reconstruction error off the objects (objects, grown by one pixel, weigh 1).
    /// Below 1 the codes are spent on what the detector and the prompt care about — object
    /// shapes and colours — rather than on background texture, which also makes background
    /// tokens predictable for the generator.
    #[serde(default = "one")]
    pub background_weight: f64,
    /// When set, the decoder is taught to draw the background smoothed (a box mean of radius
    /// this many pixels over background pixels only) instead of its speckle and stripes: codes
    /// then carry objects, not texture noise, and background tokens become predictable for the
    /// generator. GenEval scores objects, never background texture.
    #[serde(default)]
    pub smooth_background: Option<usize>,
    /// Optional perceptual loss against a frozen detector (VQGAN's LPIPS, with a detector of
    /// this world as the feature network).
    #[serde(default)]
    pub perceptual: Option<PerceptualConfig>,
    /// The world style trained on (the generator's tokenizer: canonical).
    #[serde(default, skip_serializing_if = "Style::is_natural")]
    pub style: Style,
    pub checkpoint_every: usize,
    pub log_every: usize,
    pub net: VqNetConfig,
    /// Start from this trained tokenizer (a folder with tokenizer.json and tokenizer.bpk of the
    /// same `net`) instead of a fresh initialisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<std::path::PathBuf>,
    /// Train the decoder only: the encoder and codebook keep `init`'s weights, so every image
    /// keeps its tokens and generators trained on `init` stay valid. Needs `init` and
    /// `restart_every: 0` (a restart moves codes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decoder_only: bool,
}

/// The perceptual loss: the reconstruction must give the frozen detector the same head features
/// and the same class heat-maps as the original. Use the *annotator*, never the evaluation
/// detector, so that the detector that scores the generator never shaped its tokenizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerceptualConfig {
    /// Directory with `detector.json` + `detector.bpk`.
    pub detector: std::path::PathBuf,
    /// Weight of the feature distance (normalised by the original's feature energy).
    pub feature_weight: f64,
    /// Weight of the heat-map cross-entropy (soft targets: the original's probabilities),
    /// summed over classes, averaged over cells.
    pub heat_weight: f64,
}

impl VqTrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.net.validate()?;
        if self.steps == 0 || self.batch_size < 2 || self.lr <= 0.0 {
            return Err("steps ≥ 1, batch_size ≥ 2 and lr > 0 are required".into());
        }
        if self.decoder_only && self.init.is_none() {
            return Err("decoder_only: needs init, the tokenizer whose codes stay".into());
        }
        if self.decoder_only && self.restart_every != 0 {
            return Err("decoder_only: needs restart_every: 0 (a restart moves codes)".into());
        }
        Ok(())
    }
}

fn one() -> f64 {
    1.0
}
