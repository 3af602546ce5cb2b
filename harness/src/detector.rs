//! The `Detector` trait: what GenEval's Mask2Former + CLIP pair provides — per image, objects
//! with class, score, box and colour probabilities — so that any detector (evalcot's burn model,
//! an external process, the official models behind an adapter) feeds the same rules.

use crate::error::ModelFault;
use crate::rules::Detection;
use crate::vocab::{ClassId, Color};
use image::RgbImage;

/// A binary object mask at the image's resolution, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    pub bits: Vec<bool>,
}

/// One detected object.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedObject {
    pub class: ClassId,
    /// Probability that the object is there (the official thresholds 0.3 and 0.9 apply to it).
    pub score: f32,
    /// `[x1, y1, x2, y2]` in pixels of the image passed to `detect`.
    pub bbox: [f32; 4],
    /// Colour probabilities in `Color::ALL` order.
    pub color_probs: [f32; 10],
    pub mask: Option<Mask>,
}

impl DetectedObject {
    /// The object as the rules see it: colour = argmax of the probabilities (first on a tie).
    /// A non-finite score, box or colour probability is an error, never a verdict.
    pub fn to_detection(&self) -> Result<Detection, String> {
        if !self.score.is_finite() || self.bbox.iter().any(|v| !v.is_finite()) {
            return Err(format!(
                "non-finite output for a {} detection (score {}, box {:?})",
                self.class, self.score, self.bbox
            ));
        }
        let color = Color::argmax(&self.color_probs)
            .filter(|_| self.color_probs.iter().all(|p| p.is_finite()))
            .ok_or_else(|| {
                format!(
                    "non-finite colour probabilities for a {} detection: {:?}",
                    self.class, self.color_probs
                )
            })?;
        Ok(Detection {
            class: self.class,
            score: self.score as f64,
            bbox: self.bbox.map(|v| v as f64),
            color: Some(color),
        })
    }

    /// Scales the box (and drops the mask) after detecting on a resized copy of an image.
    pub fn rescaled(mut self, sx: f32, sy: f32) -> Self {
        self.bbox = [
            self.bbox[0] * sx,
            self.bbox[1] * sy,
            self.bbox[2] * sx,
            self.bbox[3] * sy,
        ];
        if sx != 1.0 || sy != 1.0 {
            self.mask = None;
        }
        self
    }
}

/// An object detector with a colour classifier.
/// A detector's model name without the file it was loaded from: `annotator-v2` for
/// "annotator-v2 (models/weights/annotator/detector.bpk)", so that the same weights reached by
/// another path are the same detector.
pub fn model_name(label: &str) -> &str {
    label.split(" (").next().unwrap_or(label).trim()
}

/// Whether a detector label (as banks and summaries record it) names the evaluation detector
/// `evaluator` (its label) or a part of it: the same model, or its first stage alone.
pub fn is_evaluation_detector(label: &str, evaluator: &str) -> bool {
    let eval = model_name(evaluator);
    model_name(label) == eval || label.contains(&format!("first stage of {eval}"))
}

pub trait Detector: Send + Sync {
    /// A short name for messages and run records.
    fn name(&self) -> &str;

    /// The square input size the model was trained on; callers resize images to it.
    fn input_size(&self) -> u32;

    /// Detects objects in a batch of images of `input_size()` pixels.
    fn detect(&self, images: &[RgbImage]) -> Result<Vec<Vec<DetectedObject>>, ModelFault>;
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_evaluation_detector_is_known_by_its_model_whatever_its_path() {
        let eval = "evaluator-v2-rescored (embedded models/weights/detector)";
        for label in [
            eval,
            "evaluator-v2-rescored (models/weights/detector/detector.bpk)",
            "evaluator-v2 (first stage of evaluator-v2-rescored (embedded models/weights/detector))",
        ] {
            assert!(super::is_evaluation_detector(label, eval), "{label}");
        }
        assert!(!super::is_evaluation_detector(
            "annotator-v2 (./models/weights/annotator/detector.bpk)",
            eval
        ));
        assert_eq!(
            super::model_name("annotator-v2 (models/weights/annotator/detector.bpk)"),
            "annotator-v2"
        );
    }

    use super::*;

    fn obj(score: f32, probs: [f32; 10]) -> DetectedObject {
        DetectedObject {
            class: ClassId::from_name("dog").unwrap(),
            score,
            bbox: [1.0, 2.0, 3.0, 4.0],
            color_probs: probs,
            mask: None,
        }
    }

    #[test]
    fn colour_is_the_argmax_and_non_finite_outputs_are_errors() {
        let mut p = [0.0; 10];
        p[4] = 0.7;
        assert_eq!(obj(0.5, p).to_detection().unwrap().color, Some(Color::Blue));
        assert!(obj(f32::NAN, p)
            .to_detection()
            .unwrap_err()
            .contains("non-finite"));
        p[2] = f32::INFINITY;
        assert!(obj(0.5, p).to_detection().unwrap_err().contains("colour"));
        let r = obj(0.5, [0.1; 10]).rescaled(8.0, 4.0);
        assert_eq!(r.bbox, [8.0, 8.0, 24.0, 16.0]);
    }
}
