//! Preference alignment of the masked-token generator (paper §2): DPO on (chosen, rejected)
//! pairs that a judge labels among the generator's own samples of *training* prompts, iterative
//! DPO (the same from an aligned model), and reward-guided DPO — an online term in which the
//! judge's verdict on freshly generated images moves the gradient.
//!
//! The paper's released reward term is built with `torch.tensor` from a number and carries no
//! gradient; here it is a REINFORCE term: `−w · (R − b) · mean log πθ(tokens)` over a random
//! cosine mask of the freshly sampled tokens, `R` the judge's P(yes), `b` the mean reward of the
//! step's other samples (leave-one-out, so no state and no bias), `w` 0.1 by default.

pub mod config;
pub mod pairs;
#[cfg(test)]
mod tests;
pub mod training;

pub use config::{DpoTrainConfig, PairRule, PairsConfig, RewardConfig};
pub use pairs::{
    bank_samples, build_pairs, cached_samples, judge_samples, select_pairs, write_pairs,
    JudgedPrompt, Pair, PairStats,
};
pub use training::{dpo_loss, total_steps, train, DpoModels};
