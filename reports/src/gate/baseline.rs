//! The baseline file (`evalcot-baseline/1`): every image's correctness of a run that passed,
//! with its prompts and per-tag scores, written and read whole.

use crate::run::ImageResult;
use harness::error::{Error, Location, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

pub const BASELINE_FORMAT: &str = "evalcot-baseline/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineTag {
    pub tag: String,
    pub correct: usize,
    pub total: usize,
    pub accuracy: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselinePrompt {
    pub index: usize,
    pub tag: String,
    pub prompt: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineImage {
    pub prompt: usize,
    pub image: usize,
    pub correct: bool,
}

/// A committed baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineFile {
    pub format: String,
    /// The run it was made from (informational).
    pub source: String,
    /// The run's label, e.g. `orm N=20 (zero-shot)` (informational).
    #[serde(default)]
    pub label: String,
    /// Mean over tags of the image accuracy.
    pub overall: f64,
    /// In order of first appearance.
    pub tags: Vec<BaselineTag>,
    pub prompts: Vec<BaselinePrompt>,
    pub images: Vec<BaselineImage>,
}

/// Tags (first-appearance order) with correct and total images.
pub(super) fn tag_counts(images: &[(String, bool)]) -> Vec<BaselineTag> {
    let mut tags: Vec<BaselineTag> = Vec::new();
    for (tag, correct) in images {
        let i = match tags.iter().position(|t| &t.tag == tag) {
            Some(i) => i,
            None => {
                tags.push(BaselineTag {
                    tag: tag.clone(),
                    correct: 0,
                    total: 0,
                    accuracy: 0.0,
                });
                tags.len() - 1
            }
        };
        tags[i].total += 1;
        tags[i].correct += *correct as usize;
    }
    for t in &mut tags {
        t.accuracy = t.correct as f64 / t.total as f64;
    }
    tags
}

pub(super) fn overall_of(tags: &[BaselineTag]) -> f64 {
    tags.iter().map(|t| t.accuracy).sum::<f64>() / tags.len() as f64
}

impl BaselineFile {
    /// The baseline of a run's results (sorted by key, as [`read_results`] returns them).
    pub fn from_results(source: &str, label: &str, images: &[ImageResult]) -> BaselineFile {
        let tags = tag_counts(
            &images
                .iter()
                .map(|i| (i.tag.clone(), i.correct))
                .collect::<Vec<_>>(),
        );
        let mut prompts: Vec<BaselinePrompt> = Vec::new();
        for i in images {
            if prompts.last().is_none_or(|p| p.index != i.prompt_index) {
                prompts.push(BaselinePrompt {
                    index: i.prompt_index,
                    tag: i.tag.clone(),
                    prompt: i.prompt.clone(),
                });
            }
        }
        BaselineFile {
            format: BASELINE_FORMAT.into(),
            source: source.into(),
            label: label.into(),
            overall: overall_of(&tags),
            tags,
            prompts,
            images: images
                .iter()
                .map(|i| BaselineImage {
                    prompt: i.prompt_index,
                    image: i.image_index,
                    correct: i.correct,
                })
                .collect(),
        }
    }

    /// JSON with one tag, prompt or image per line (reviewable diffs).
    pub fn to_json(&self) -> String {
        let list = |items: Vec<String>| {
            if items.is_empty() {
                "[]".to_string()
            } else {
                format!("[\n    {}\n  ]", items.join(",\n    "))
            }
        };
        format!(
            "{{\n  \"format\": {},\n  \"source\": {},\n  \"label\": {},\n  \"overall\": {},\n  \"tags\": {},\n  \"prompts\": {},\n  \"images\": {}\n}}\n",
            j(&self.format),
            j(&self.source),
            j(&self.label),
            j(&self.overall),
            list(self.tags.iter().map(j).collect()),
            list(self.prompts.iter().map(j).collect()),
            list(self.images.iter().map(j).collect()),
        )
    }

    /// Reads and checks a baseline file: its format, unique keys, every image's prompt listed,
    /// and the stored scores equal to those of its images.
    pub fn load(path: &Path) -> Result<BaselineFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let file = path.display().to_string();
        let b: BaselineFile = serde_json::from_str(&text).map_err(|e| {
            let loc = if e.line() > 0 {
                Location::line(&file, e.line())
            } else {
                Location::file(&file)
            };
            Error::invalid(loc, format!("not an {BASELINE_FORMAT} file: {e}"))
        })?;
        let bad = |field: String, msg: String| {
            Error::invalid(Location::file(&file).with_field(field), msg)
        };
        if b.format != BASELINE_FORMAT {
            return Err(bad(
                "format".into(),
                format!("{:?}: expected {BASELINE_FORMAT:?}", b.format),
            ));
        }
        if b.images.is_empty() {
            return Err(bad("images".into(), "no images".into()));
        }
        let mut prompt_tag: HashMap<usize, &str> = HashMap::new();
        for (i, p) in b.prompts.iter().enumerate() {
            if prompt_tag.insert(p.index, &p.tag).is_some() {
                return Err(bad(
                    format!("prompts[{i}].index"),
                    format!("prompt {} listed twice", p.index),
                ));
            }
        }
        let mut keys = BTreeSet::new();
        let mut tagged = Vec::with_capacity(b.images.len());
        for (i, img) in b.images.iter().enumerate() {
            let Some(tag) = prompt_tag.get(&img.prompt) else {
                return Err(bad(
                    format!("images[{i}].prompt"),
                    format!("prompt {} is not in `prompts`", img.prompt),
                ));
            };
            if !keys.insert((img.prompt, img.image)) {
                return Err(bad(
                    format!("images[{i}]"),
                    format!("prompt {} image {} listed twice", img.prompt, img.image),
                ));
            }
            tagged.push((tag.to_string(), img.correct));
        }
        let counted = tag_counts(&tagged);
        let by_name: HashMap<&str, &BaselineTag> =
            counted.iter().map(|t| (t.tag.as_str(), t)).collect();
        if b.tags.len() != counted.len() {
            return Err(bad(
                "tags".into(),
                format!(
                    "lists {} tags but the images have {}",
                    b.tags.len(),
                    counted.len()
                ),
            ));
        }
        for (i, t) in b.tags.iter().enumerate() {
            let ok = by_name.get(t.tag.as_str()).is_some_and(|c| {
                c.correct == t.correct
                    && c.total == t.total
                    && (c.accuracy - t.accuracy).abs() < 1e-9
            });
            if !ok {
                return Err(bad(
                    format!("tags[{i}]"),
                    format!(
                        "{:?} {}/{} does not match its images ({})",
                        t.tag,
                        t.correct,
                        t.total,
                        by_name
                            .get(t.tag.as_str())
                            .map_or("absent".to_string(), |c| format!(
                                "{}/{}",
                                c.correct, c.total
                            ))
                    ),
                ));
            }
        }
        if (overall_of(&counted) - b.overall).abs() > 1e-9 {
            return Err(bad(
                "overall".into(),
                format!(
                    "{} does not match its images ({})",
                    b.overall,
                    overall_of(&counted)
                ),
            ));
        }
        Ok(b)
    }
}

/// Compact JSON of plain data.
pub(super) fn j<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serializes")
}
