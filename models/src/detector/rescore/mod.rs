//! The detector's second stage: a crop classifier that re-scores every peak of the first stage.
//!
//! Why: at 64×64 a 12–14 px glyph covers three cells of the first stage's grid, and that stage is
//! unsure which of several look-alike classes it is (zebra, horse and giraffe share a
//! silhouette; docs/detector.md). A window around the peak's box, resampled to 32×32, shows
//! a dedicated network the glyph at twice the size. Its evidence for the peak's class is fused
//! with the peak's logit by a logistic regression fitted on held-out renders, so the fused score
//! is still a calibrated probability. The stage never adds, removes or moves peaks before the
//! score threshold: it only re-scores them (an R-CNN-style second stage).

pub mod config;
pub mod inference;
pub mod model;
pub mod training;

pub use config::RescorerTrainConfig;
pub use inference::{Rescorer, RescorerMeta};
pub use model::{
    Fusion, RescorerNet, RescorerNetConfig, BACKGROUND, CROP_CLASSES, PROPOSAL_MIN_SCORE,
};
pub use training::{fusion_samples, train};
