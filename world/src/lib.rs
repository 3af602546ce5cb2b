//! evalcot's procedural world: a small 64×64 universe in which every GenEval prompt means
//! something, so the whole pipeline (generator, detector, rules) can be trained and checked
//! without downloading a model or an image.
//!
//! - [`glyphs`], [`raster`], [`palette`]: one distinct glyph per class, 10 colours, textured
//!   backgrounds, rasterised into exact binary masks.
//! - [`scene`]: scenes from GenEval metadata that the official rules accept, and random scenes.
//! - [`nearmiss`]: scenes that break exactly one clause of a prompt (negatives).
//! - [`prompts`]: training prompts over GenEval's templates, disjoint from the 553 official ones.
//! - [`words`]: prompt words — a word-level prompt tokenizer and a parser from prompt text to
//!   metadata (not the image tokenizer, `models::vq`).
//! - [`dataset`]: the ground-truth suite, training datasets on disk and the contact sheet.
//!
//! All randomness comes from `harness::rng` streams derived from `(seed, index, …)`, so every
//! output depends on its seed only, never on thread scheduling.

pub mod dataset;
pub mod glyphs;
pub mod nearmiss;
pub mod palette;
pub mod prompts;
pub mod raster;
pub mod scene;
pub mod words;

/// The `image` crate this world renders with, for callers that handle its images.
pub use image;
pub use nearmiss::{near_miss, NearMiss, NearMissKind};
pub use scene::{
    random_scene, random_scene_styled, scene_for_metadata, ObjectInstance, Scene, SceneOptions,
    Style,
};
pub use words::{parse_prompt, ParseError, TokenizeError};

use std::fmt;

/// Errors of the world crate.
#[derive(Debug)]
pub enum WorldError {
    /// No scene satisfying the request was found (or the request can never be satisfied).
    Unsatisfiable(String),
    /// A prompt could not be tokenized.
    Tokenize(TokenizeError),
    /// A prompt does not follow the GenEval templates.
    Parse(ParseError),
    /// Writing output failed (the harness error names the file).
    Harness(harness::Error),
    /// Encoding an image failed.
    Image { path: String, message: String },
}

impl fmt::Display for WorldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorldError::Unsatisfiable(why) => write!(f, "cannot build the scene: {why}"),
            WorldError::Tokenize(e) => write!(f, "{e}"),
            WorldError::Parse(e) => write!(f, "{e}"),
            WorldError::Harness(e) => write!(f, "{e}"),
            WorldError::Image { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

// No `source()`: Display already includes the wrapped error, and anyhow's `{:#}` would
// print it twice.
impl std::error::Error for WorldError {}

impl From<harness::Error> for WorldError {
    fn from(e: harness::Error) -> Self {
        WorldError::Harness(e)
    }
}

impl From<TokenizeError> for WorldError {
    fn from(e: TokenizeError) -> Self {
        WorldError::Tokenize(e)
    }
}

impl From<ParseError> for WorldError {
    fn from(e: ParseError) -> Self {
        WorldError::Parse(e)
    }
}
