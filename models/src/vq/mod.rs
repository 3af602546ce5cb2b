//! The image tokenizer (VQ autoencoder): renders ↔ 8×8 token grids.

pub mod config;
pub mod eval;
pub mod inference;
pub mod model;
pub mod training;

pub use config::VqTrainConfig;
pub use inference::{VqMeta, VqTokenizer, VQ_FORMAT};
pub use model::{VqNet, VqNetConfig};
pub use training::train;
