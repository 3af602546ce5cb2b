//! The trained masked-token generator behind `harness::generator::Generator`: Show-o's sampling
//! loop, one step at a time, batched over candidates with the CFG pair in one forward.

pub mod batching;
pub mod inference;
pub mod meta;
pub mod sampling;
#[cfg(test)]
mod tests;

pub use batching::{Batching, BatchingChoice};
pub use inference::BurnGenerator;
pub use meta::{GeneratorMeta, SamplingConfig, GENERATOR_FORMAT};
pub use sampling::{
    commit_step, decode_predictions, device_draws, guided_log_probs, sample_step, step_noise,
};
