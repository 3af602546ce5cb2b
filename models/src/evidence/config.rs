//! What one training of an evidence head is.

use serde::{Deserialize, Serialize};

/// `configs/judge-evidence-*.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadTrainConfig {
    pub name: String,
    /// Fine-tuned: a bank whose verdicts are the annotator's (`evalcot bank … --detector
    /// ANNOTATOR`), the generator's own samples and their labels. A bank judged by the
    /// evaluation detector is refused. Exactly one of `bank` and `world`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank: Option<String>,
    /// Zero-shot: no generator sample, only the world's scenes of training prompts — matching
    /// and near misses, labelled by construction — drawn in the generator's style and passed
    /// through its tokenizer, so that they look as the generator's images do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<WorldData>,
    /// The annotator whose evidence the head reads (the same one that labelled the bank).
    pub annotator: String,
    pub seed: u64,
    /// Share of the prompts held out (by a seeded hash of the prompt text): reported on, and
    /// their loss logged beside the training loss; nothing is chosen with them (the head is the
    /// last iteration's).
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
    /// ε of the head's noise layer, P(yes) = ε + (1 − 2ε)·σ(logit), trained through it: the
    /// labels (and the evidence, read by the same annotator) are wrong at about this rate, so a
    /// head surer than that is over-confident wherever another detector has the last word. Set
    /// to the annotator's measured error on the ground-truth suite (docs/annotator.md). The
    /// layer is monotone: no ranking changes. 0 when absent.
    #[serde(default)]
    pub label_noise: f64,
}

/// The zero-shot head's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldData {
    /// Training prompts drawn (`world::prompts::training_prompts`, never the GenEval ones).
    pub prompts: usize,
    /// Scenes per prompt: the even ones match the prompt, the odd ones are near misses (one
    /// clause broken), so every prompt has both.
    pub per_prompt: usize,
    pub seed: u64,
    /// Prompts in the validation split of this split seed are left out, so that the
    /// development prompts (`evalcot world prompts --seed 21 --split val`) stay held out.
    pub held_out_split: u64,
    /// The tokenizer folder the scenes pass through (the generator's).
    pub tokenizer: String,
}

impl HeadTrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        match (&self.bank, &self.world) {
            (Some(_), None) => {}
            (None, Some(w)) => {
                if w.prompts == 0 || w.per_prompt < 2 {
                    return Err(format!(
                        "world: {} prompts × {} scenes; at least 1 prompt and 2 scenes (one matching, one near miss) are needed",
                        w.prompts, w.per_prompt
                    ));
                }
            }
            _ => return Err("bank, world: exactly one source of data is needed".into()),
        }
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
        if !(0.0..0.5).contains(&self.label_noise) {
            return Err(format!(
                "label_noise: {} is not a rate in [0, 0.5)",
                self.label_noise
            ));
        }
        if self.rank_weight + self.calibration_weight == 0.0 {
            return Err("rank_weight and calibration_weight: one must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_source_of_data() {
        let world = WorldData {
            prompts: 4,
            per_prompt: 2,
            seed: 1,
            held_out_split: 21,
            tokenizer: "t".into(),
        };
        let cfg = HeadTrainConfig {
            name: "h".into(),
            bank: Some("b".into()),
            world: Some(world.clone()),
            annotator: "a".into(),
            seed: 1,
            val_share: 0.2,
            iterations: 10,
            lr: 0.1,
            rank_weight: 1.0,
            calibration_weight: 1.0,
            tag_l2: 0.0,
            label_noise: 0.0,
        };
        assert!(cfg.validate().unwrap_err().contains("exactly one"));
        let noisy = HeadTrainConfig {
            bank: None,
            label_noise: 0.5,
            ..cfg.clone()
        };
        assert!(noisy.validate().unwrap_err().contains("label_noise"));
        let only_world = HeadTrainConfig {
            bank: None,
            ..cfg.clone()
        };
        assert!(only_world.validate().is_ok());
        let neither = HeadTrainConfig {
            world: None,
            ..only_world.clone()
        };
        assert!(neither.validate().is_err());
        let one_scene = HeadTrainConfig {
            world: Some(WorldData {
                per_prompt: 1,
                ..world
            }),
            ..only_world
        };
        assert!(one_scene.validate().unwrap_err().contains("near miss"));
    }
}
