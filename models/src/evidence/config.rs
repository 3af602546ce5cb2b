//! What one training of an evidence head is.

use serde::{Deserialize, Serialize};

/// `configs/judge-evidence-*.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadTrainConfig {
    pub name: String,
    /// A bank whose verdicts are the annotator's (`evalcot bank … --detector ANNOTATOR`): the
    /// labels. A bank judged by the evaluation detector is refused.
    pub bank: String,
    /// The annotator whose evidence the head reads (the same one that labelled the bank).
    pub annotator: String,
    pub seed: u64,
    /// Share of the bank's prompts held out (by a seeded hash of the prompt text) to report
    /// on and to choose nothing with but the stopping iteration.
    pub val_share: f64,
    /// Full-batch optimisation steps (Adam).
    pub iterations: usize,
    pub lr: f64,
    /// Weight of the pairwise loss over (right, wrong) samples of one image.
    pub rank_weight: f64,
    /// Weight of the binary cross-entropy of P(yes) against the labels (calibration).
    pub calibration_weight: f64,
    /// L2 penalty on the per-tag weights (they are offsets from the shared ones).
    pub tag_l2: f64,
}

impl HeadTrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.val_share >= 0.0 && self.val_share < 1.0) {
            return Err(format!("val_share: {} is not in [0, 1)", self.val_share));
        }
        if self.iterations == 0 {
            return Err("iterations: must be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("lr: {} must be positive", self.lr));
        }
        for (name, w) in [
            ("rank_weight", self.rank_weight),
            ("calibration_weight", self.calibration_weight),
            ("tag_l2", self.tag_l2),
        ] {
            if !(w >= 0.0 && w.is_finite()) {
                return Err(format!("{name}: {w} must be ≥ 0"));
            }
        }
        if self.rank_weight + self.calibration_weight == 0.0 {
            return Err("rank_weight and calibration_weight: one must be positive".into());
        }
        Ok(())
    }
}
