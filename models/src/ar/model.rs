//! The AR generator's metadata and sampling settings: what `generator.json` holds, beside
//! the network (the masked-token family's, causal).

use crate::maskgit::MaskGitConfig;
use crate::store::ModelError;
use crate::train_loop::{self};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Raster-order decoding predicts one token per position; token groups are for the
/// masked-token family only.
pub(super) const NO_GROUPS: &str =
    "net.group must be 1 for the autoregressive family (one token per position)";

/// Version tag of an AR generator's `generator.json`.
pub const AR_FORMAT: &str = "evalcot-ar-1";

/// Key of a sampled position's draw: `derive_seed(trajectory seed, [POSITION_DRAW, position])`.
pub(super) const POSITION_DRAW: u64 = u64::MAX - 1;

/// Sampling settings of the AR generator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArSampling {
    /// Steps T of a schedule (groups of rows).
    pub steps: usize,
    pub cfg_scale: f64,
    pub temperature: f64,
    /// Sample among the k most likely codes (0: all).
    pub top_k: usize,
}

impl Default for ArSampling {
    fn default() -> Self {
        ArSampling {
            steps: 8,
            cfg_scale: 1.75,
            temperature: 1.0,
            top_k: 0,
        }
    }
}

/// The BOS id in the image vocabulary (after the codes; the masked-token family's mask id).
pub(super) fn bos(cfg: &MaskGitConfig) -> usize {
    cfg.codebook
}

/// What an AR generator's `generator.json` holds (the masked-token generator's metadata with
/// its own format tag and sampling).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArMeta {
    pub format: String,
    pub name: String,
    pub net: MaskGitConfig,
    pub tokenizer: String,
    pub sampling: ArSampling,
    pub train: serde_json::Value,
}

/// Reads an AR generator folder's metadata, or `None` when the folder holds another family.
pub fn read_meta(dir: &Path) -> Result<Option<ArMeta>, ModelError> {
    let v: serde_json::Value = train_loop::read_json(&dir.join("generator.json"))?;
    if v.get("format").and_then(|f| f.as_str()) != Some(AR_FORMAT) {
        return Ok(None);
    }
    Ok(Some(serde_json::from_value(v).map_err(|e| {
        ModelError::config(dir.display().to_string(), e.to_string())
    })?))
}
