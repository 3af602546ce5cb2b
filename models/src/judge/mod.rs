//! Judges (ORM, PRM, PARM, reflection): one burn network for every question, trained zero-shot
//! on clean renders or fine-tuned on the generator's labelled trajectories.

pub mod config;
pub mod data;
pub mod eval;
pub mod inference;
pub mod model;
pub mod training;

pub use config::{JudgeMode, JudgeTrainConfig};
pub use inference::{BurnJudge, JudgeMeta, JUDGE_FORMAT};
pub use model::{JudgeNet, JudgeNetConfig};
pub use training::{build_pool, train};
