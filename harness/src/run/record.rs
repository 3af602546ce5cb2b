//! The run folder's records: one typed schema for what produced each image and what it cost
//! (`generation.jsonl`) and how long it took (`timing.jsonl`). The run loop writes them, shards
//! merge them and reports read them.

use crate::error::{Error, Location};
use crate::run::Compute;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The run folder's generation file: one [`GenerationRecord`] per image, appended as it is made.
pub const GENERATION_FILE: &str = "generation.jsonl";

/// One line of `generation.jsonl`: what produced an image and what it cost. Readers accept
/// fields they do not know and default the ones older runs lack, so that reports read runs of
/// other versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRecord {
    pub prompt_index: usize,
    pub image_index: usize,
    #[serde(default)]
    pub strategy: String,
    #[serde(default)]
    pub generator: String,
    #[serde(flatten)]
    pub compute: Compute,
    /// The strategy's decisions (scores, chosen candidate, fallbacks).
    #[serde(default)]
    pub trace: serde_json::Value,
    /// Why this image could not be generated (a model's non-finite output); no PNG exists then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The run folder's wall-time file: one [`TimingRecord`] per generated image.
pub const TIMING_FILE: &str = "timing.jsonl";

/// One line of `timing.jsonl`: the wall time of the batch that made an image, shared equally
/// among the batch's images. `threads` batches run at once, one per thread, so the run's wall
/// time per image is `seconds / threads` (what reports show). Kept apart from
/// `generation.jsonl`, whose records are the same on every machine and thread count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingRecord {
    pub prompt_index: usize,
    pub image_index: usize,
    pub seconds: f64,
    /// Images in the batch.
    #[serde(default = "one")]
    pub batch: usize,
    /// Batches that ran at once (absent in runs made before it was recorded: one).
    #[serde(default = "one")]
    pub threads: usize,
}

fn one() -> usize {
    1
}

/// The records of a JSONL text with their 1-based line numbers, blank lines skipped; a line that
/// is not `expected` is an error naming `file:line`. With `complete_only`, a last line without
/// its newline (a run killed while appending) is dropped.
pub fn json_lines<T: DeserializeOwned>(
    text: &str,
    file: &str,
    complete_only: bool,
    expected: &str,
) -> crate::Result<Vec<(usize, T)>> {
    let text = if complete_only {
        text.rfind('\n').map_or("", |i| &text[..=i])
    } else {
        text
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map(|v| (i + 1, v)).map_err(|e| {
                Error::invalid(
                    Location::line(file, i + 1),
                    format!("expected {expected}: {e}"),
                )
            })
        })
        .collect()
}

/// What a generation record must hold, for messages.
pub const GENERATION_EXPECTED: &str =
    "a generation record with `prompt_index`, `image_index`, `forwards`, `judge_calls`";

/// Reads `generation.jsonl`, dropping a final line cut short by a kill (no newline) — the image
/// it described is regenerated. Any other malformed line is an error naming it.
pub fn read_generation(path: &Path) -> crate::Result<BTreeMap<(usize, usize), GenerationRecord>> {
    let mut done = BTreeMap::new();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(Error::io(path, e)),
    };
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    if complete.len() != text.len() {
        // Truncate the torn tail so that the next append starts on a fresh line.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        f.set_len(complete.len() as u64)
            .map_err(|e| Error::io(path, e))?;
    }
    let records: Vec<(usize, GenerationRecord)> = json_lines(
        complete,
        &path.display().to_string(),
        true,
        GENERATION_EXPECTED,
    )?;
    for (_, rec) in records {
        done.insert((rec.prompt_index, rec.image_index), rec);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_last_line_is_dropped_and_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("generation.jsonl");
        let rec = GenerationRecord {
            prompt_index: 3,
            image_index: 1,
            strategy: "baseline".into(),
            generator: "base".into(),
            compute: Compute {
                forwards: 36,
                candidates: 1,
                ..Compute::default()
            },
            trace: serde_json::json!({}),
            error: None,
        };
        let line = serde_json::to_string(&rec).unwrap();
        std::fs::write(&path, format!("{line}\n{{\"prompt_ind")).unwrap();
        let done = read_generation(&path).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[&(3, 1)], rec);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{line}\n"));
        std::fs::write(&path, "{}\n").unwrap();
        let e = read_generation(&path).unwrap_err().to_string();
        assert!(e.contains("generation.jsonl") && e.contains(":1"), "{e}");
    }
}
