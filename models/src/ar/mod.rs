//! The second generator family (issue 12): an autoregressive transformer over the same image
//! tokens in raster order (LlamaGen-style) — causal attention with a key/value cache, classifier-
//! free guidance with the empty prompt, temperature and top-k sampling — behind the same
//! `Generator` trait as the masked-token generator.
//!
//! Steps: a schedule of T steps generates the raster in T groups of rows (64 tokens, T = 8: one
//! row a step). The judged image after a step is the committed prefix with the rest filled by
//! the model's greedy continuation (the most likely completion given the prefix — what the image
//! "is becoming"), computed in the same cached pass and counted in the step's forwards.
//!
//! Draws: one per token position (`derive_seed(seed, [POSITION_DRAW, position])`), not one per
//! step, so an image does not depend on how the raster is cut into steps and `run_to_end`
//! (everything left in one pass, no previews) equals stepping.

pub mod config;
pub mod data;
pub mod dpo;
pub mod inference;
pub mod model;
#[cfg(test)]
mod tests;
pub mod training;

pub use config::ArTrainConfig;
pub use dpo::train_dpo;
pub use inference::ArGenerator;
pub use model::{read_meta, ArMeta, ArSampling, AR_FORMAT};
pub use training::train;
