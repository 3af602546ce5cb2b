//! The object detector + colour classifier that scores images the way GenEval's Mask2Former +
//! CLIP do, trained on the embedded world.

pub mod config;
pub mod data;
pub mod eval;
pub mod inference;
pub mod model;
pub mod rescore;
pub mod training;

pub use config::DetectorTrainConfig;
pub use inference::{BurnDetector, DetectorMeta};
pub use model::{DetectorNet, DetectorNetConfig};
pub use training::train;
