//! The generator under test: a Show-o-style masked-token transformer with a step API.

pub mod data;
pub mod dpo;
pub mod generator;
pub mod model;
pub mod training;

pub use generator::{
    Batching, BatchingChoice, BurnGenerator, GeneratorMeta, SamplingConfig, GENERATOR_FORMAT,
};
pub use model::{MaskGit, MaskGitConfig};
pub use training::{train, GeneratorTrainConfig};
