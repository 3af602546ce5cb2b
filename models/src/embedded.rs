//! Trained weights shipped inside the binary, so that `evalcot score DIR` and the strategies run
//! on a fresh machine without any download.

use crate::detector::{BurnDetector, DetectorMeta};
use crate::judge::{BurnJudge, JudgeMeta};
use crate::maskgit::{BurnGenerator, GeneratorMeta};
use crate::store::ModelError;
use crate::vq::{VqMeta, VqTokenizer};
use burn::prelude::Backend;

const EVALUATOR_META: &str = include_str!("../weights/detector/detector.json");
const EVALUATOR_WEIGHTS: &[u8] = include_bytes!("../weights/detector/detector.bpk");
const EVALUATOR_RESCORER: &[u8] = include_bytes!("../weights/detector/rescorer.bpk");

/// `--detector first-stage`: the evaluation detector without its second stage (the
/// evaluator-v2 that scored every report before the second stage was added).
pub const FIRST_STAGE: &str = "first-stage";

/// The evaluation detector (the one that scores every run).
pub fn evaluation_detector<B: Backend>(device: &B::Device) -> Result<BurnDetector<B>, ModelError> {
    let what = "embedded models/weights/detector";
    let meta: DetectorMeta = parse_meta(EVALUATOR_META, what)?;
    let rescorer = "embedded models/weights/detector/rescorer.bpk";
    let second = meta
        .rescorer
        .as_ref()
        .map(|_| (EVALUATOR_RESCORER.to_vec(), rescorer));
    BurnDetector::from_parts(meta, EVALUATOR_WEIGHTS.to_vec(), second, what, device)
}

/// Tokenizers shipped in the binary: `(name in tokenizer.json, tokenizer.json, tokenizer.bpk)`;
/// the first is the default.
const TOKENIZERS: &[(&str, &str, &[u8])] = &[
    (
        "vq8x8-smooth",
        include_str!("../weights/tokenizer/tokenizer.json"),
        include_bytes!("../weights/tokenizer/tokenizer.bpk"),
    ),
    (
        "vq8x8-canonical-8k",
        include_str!("../weights/tokenizer-canonical-8k/tokenizer.json"),
        include_bytes!("../weights/tokenizer-canonical-8k/tokenizer.bpk"),
    ),
    #[cfg(feature = "embed-variants")]
    (
        "vq8x8-canonical",
        include_str!("../weights/tokenizer-canonical/tokenizer.json"),
        include_bytes!("../weights/tokenizer-canonical/tokenizer.bpk"),
    ),
    #[cfg(feature = "embed-variants")]
    (
        "vq16x16",
        include_str!("../weights/tokenizer-16x16/tokenizer.json"),
        include_bytes!("../weights/tokenizer-16x16/tokenizer.bpk"),
    ),
];

/// Shipped models that only builds with the `embed-variants` feature carry inside: `(kind, name,
/// folder)`. A build without it names the folder to give instead.
const VARIANT_FOLDERS: &[(&str, &str, &str)] = &[
    (
        "tokenizer",
        "vq8x8-canonical",
        "models/weights/tokenizer-canonical",
    ),
    ("tokenizer", "vq16x16", "models/weights/tokenizer-16x16"),
    ("generator", "dpo", "models/weights/dpo"),
    ("generator", "dpo-iter", "models/weights/dpo-iter"),
    (
        "generator",
        "dpo-iter-guided",
        "models/weights/dpo-iter-guided",
    ),
    ("generator", "ar", "models/weights/generator-ar"),
];

/// The repository folder an embedded tokenizer was built from (its training config and loss
/// curve live there), for reports that cite them.
pub fn tokenizer_folder(name: &str) -> Option<&'static str> {
    match name {
        "vq8x8-smooth" => Some("models/weights/tokenizer"),
        "vq8x8-canonical-8k" => Some("models/weights/tokenizer-canonical-8k"),
        _ => VARIANT_FOLDERS
            .iter()
            .find(|v| v.0 == "tokenizer" && v.1 == name)
            .map(|v| v.2),
    }
}

/// The default shipped tokenizer (`vq8x8-smooth`, 512 codes: what the unit tests' tiny networks
/// predict, small enough to keep them fast; the others are found by name).
pub fn tokenizer<B: Backend>(device: &B::Device) -> Result<VqTokenizer<B>, ModelError> {
    tokenizer_named(TOKENIZERS[0].0, device)
}

/// The tokenizer the shipped `base` generator predicts (`vq8x8-canonical-8k`).
pub fn base_tokenizer<B: Backend>(device: &B::Device) -> Result<VqTokenizer<B>, ModelError> {
    let (meta, _, what) = lookup(GENERATORS, "generator", "base")?;
    let meta: GeneratorMeta = parse_meta(meta, &what)?;
    tokenizer_named(&meta.tokenizer, device)
}

/// A shipped tokenizer by the name its metadata (and a generator's `tokenizer` field) gives.
pub fn tokenizer_named<B: Backend>(
    name: &str,
    device: &B::Device,
) -> Result<VqTokenizer<B>, ModelError> {
    let (meta, weights, what) = lookup(TOKENIZERS, "tokenizer", name)?;
    let meta: VqMeta = parse_meta(meta, &what)?;
    VqTokenizer::from_parts(meta, weights.to_vec(), &what, device)
}

/// Generators shipped in the binary: `(name, generator.json, generator.bpk)`.
const GENERATORS: &[(&str, &str, &[u8])] = &[
    (
        "base",
        include_str!("../weights/generator/generator.json"),
        include_bytes!("../weights/generator/generator.bpk"),
    ),
    #[cfg(feature = "embed-variants")]
    (
        "dpo",
        include_str!("../weights/dpo/generator.json"),
        include_bytes!("../weights/dpo/generator.bpk"),
    ),
    #[cfg(feature = "embed-variants")]
    (
        "dpo-iter",
        include_str!("../weights/dpo-iter/generator.json"),
        include_bytes!("../weights/dpo-iter/generator.bpk"),
    ),
    #[cfg(feature = "embed-variants")]
    (
        "dpo-iter-guided",
        include_str!("../weights/dpo-iter-guided/generator.json"),
        include_bytes!("../weights/dpo-iter-guided/generator.bpk"),
    ),
];

/// Autoregressive generators shipped in the binary: `(name, generator.json, generator.bpk)`.
const AR_GENERATORS: &[(&str, &str, &[u8])] = &[
    #[cfg(feature = "embed-variants")]
    (
        "ar",
        include_str!("../weights/generator-ar/generator.json"),
        include_bytes!("../weights/generator-ar/generator.bpk"),
    ),
];

/// A shipped autoregressive generator by name, or `None` when no AR generator has that name.
pub fn ar_generator<B: Backend>(
    name: &str,
    device: &B::Device,
) -> Result<Option<crate::ar::ArGenerator<B>>, ModelError> {
    let Some((_, meta, weights)) = AR_GENERATORS.iter().find(|g| g.0 == name) else {
        return Ok(None);
    };
    let what = format!("embedded generator {name}");
    let meta: crate::ar::ArMeta = parse_meta(meta, &what)?;
    let tokenizer = tokenizer_named(&meta.tokenizer, device)?;
    Ok(Some(crate::ar::ArGenerator::from_parts(
        meta,
        weights.to_vec(),
        tokenizer,
        &what,
        device,
    )?))
}

/// Names of the shipped generators.
pub fn generator_names() -> Vec<&'static str> {
    GENERATORS.iter().map(|g| g.0).collect()
}

/// A shipped generator by name, with the shipped tokenizer it was trained on.
pub fn generator<B: Backend>(
    name: &str,
    device: &B::Device,
) -> Result<BurnGenerator<B>, ModelError> {
    let (meta, weights, what) = lookup(GENERATORS, "generator", name)?;
    let meta: GeneratorMeta = parse_meta(meta, &what)?;
    let tokenizer = tokenizer_named(&meta.tokenizer, device)?;
    BurnGenerator::from_parts(meta, weights.to_vec(), tokenizer, &what, device)
}

/// A shipped model's metadata text, weights and display name from a `(name, json, bpk)` table.
fn lookup(
    table: &'static [(&'static str, &'static str, &'static [u8])],
    kind: &str,
    name: &str,
) -> Result<(&'static str, &'static [u8], String), ModelError> {
    let (_, meta, weights) = table.iter().find(|g| g.0 == name).ok_or_else(|| {
        if let Some((_, _, folder)) = VARIANT_FOLDERS.iter().find(|v| v.0 == kind && v.1 == name) {
            return ModelError::config(
                format!("{kind} {name:?}"),
                format!(
                    "is not inside this build (built without the `embed-variants` feature); \
                     give its folder instead: {folder}"
                ),
            );
        }
        let known: Vec<&str> = table.iter().map(|g| g.0).collect();
        ModelError::config(
            format!("{kind} {name:?}"),
            format!(
                "is not shipped; known: [{}] (or give a folder holding {kind}.json)",
                known.join(", ")
            ),
        )
    })?;
    Ok((meta, weights, format!("embedded {kind} {name}")))
}

fn parse_meta<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, ModelError> {
    serde_json::from_str(text).map_err(|e| ModelError::Config {
        what: what.into(),
        message: e.to_string(),
    })
}

/// Judges shipped in the binary: `(name, judge.json, judge.bpk)`.
const JUDGES: &[(&str, &str, &[u8])] = &[
    (
        "zero-shot",
        include_str!("../weights/judge-zero-shot/judge.json"),
        include_bytes!("../weights/judge-zero-shot/judge.bpk"),
    ),
    (
        "fine-tuned",
        include_str!("../weights/judge-fine-tuned/judge.json"),
        include_bytes!("../weights/judge-fine-tuned/judge.bpk"),
    ),
];

/// Names of the shipped judges.
pub fn judge_names() -> Vec<&'static str> {
    JUDGES.iter().map(|g| g.0).collect()
}

/// A shipped judge by name.
pub fn judge<B: Backend>(name: &str, device: &B::Device) -> Result<BurnJudge<B>, ModelError> {
    let (meta, weights, what) = lookup(JUDGES, "judge", name)?;
    let meta: JudgeMeta = parse_meta(meta, &what)?;
    BurnJudge::from_parts(meta, weights.to_vec(), &what, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every embedded tokenizer names the folder it came from, and that folder holds the same
    /// metadata the binary embeds (so reports cite the right training config).
    #[test]
    fn each_embedded_tokenizer_cites_its_own_folder() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (name, meta, _) in TOKENIZERS {
            let folder = tokenizer_folder(name).unwrap_or_else(|| panic!("{name}: no folder"));
            let on_disk = std::fs::read_to_string(root.join(folder).join("tokenizer.json"))
                .unwrap_or_else(|e| panic!("{folder}: {e}"));
            assert_eq!(&on_disk, meta, "{name} is not the tokenizer in {folder}");
        }
        assert_eq!(tokenizer_folder("unknown"), None);
    }

    /// Each model a slim build leaves out is named with the folder that holds the same files the
    /// full build embeds, so the folder a slim build's error names is a working substitute.
    #[test]
    #[cfg(feature = "embed-variants")]
    fn each_variant_left_out_of_slim_builds_names_its_folder() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (kind, name, folder) in VARIANT_FOLDERS {
            let table: Vec<_> = match *kind {
                "tokenizer" => TOKENIZERS.to_vec(),
                "generator" => GENERATORS.iter().chain(AR_GENERATORS).copied().collect(),
                other => panic!("{other}"),
            };
            let (_, meta, weights) = table
                .iter()
                .find(|t| t.0 == *name)
                .unwrap_or_else(|| panic!("{kind} {name} is not embedded"));
            let dir = root.join(folder);
            assert_eq!(
                &std::fs::read_to_string(dir.join(format!("{kind}.json"))).unwrap(),
                meta
            );
            assert_eq!(
                &std::fs::read(dir.join(format!("{kind}.bpk"))).unwrap(),
                weights
            );
        }
    }
}
