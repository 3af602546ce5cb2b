//! Trained weights shipped inside the binary, so that `evalcot score DIR` and the strategies run
//! on a fresh machine without any download.

use crate::detector::{BurnDetector, DetectorMeta};
use crate::store::ModelError;
use burn::prelude::Backend;

const EVALUATOR_META: &str = include_str!("../weights/detector/detector.json");
const EVALUATOR_WEIGHTS: &[u8] = include_bytes!("../weights/detector/detector.bpk");

/// The evaluation detector (the one that scores every run).
pub fn evaluation_detector<B: Backend>(device: &B::Device) -> Result<BurnDetector<B>, ModelError> {
    let what = "embedded models/weights/detector";
    let meta: DetectorMeta =
        serde_json::from_str(EVALUATOR_META).map_err(|e| ModelError::Config {
            what: what.into(),
            message: e.to_string(),
        })?;
    BurnDetector::from_parts(meta, EVALUATOR_WEIGHTS.to_vec(), what, device)
}
