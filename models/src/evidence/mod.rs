//! A trained verifier that must find the prompt in the image: a head over the annotator's
//! evidence per clause (harness::evidence: P(count), P(colour), P(position), P(exclude), as
//! logarithms summed by kind), learned from samples labelled by the annotator and the GenEval
//! rules with a loss that compares samples of one prompt (pairwise) plus a calibration term.
//! Inference is [`harness::evidence::Head`] inside the evidence judge; this module builds its
//! data and trains it.
//!
//! Laid out as the other models: `config` (what a run is), `data` (features from a bank),
//! `training` (the optimisation and its report).

pub mod config;
pub mod data;
pub mod training;

pub use config::HeadTrainConfig;
pub use data::{features_from_bank, features_from_world, Labelled};
pub use training::{train, Trained};
