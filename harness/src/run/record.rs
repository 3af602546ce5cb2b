//! The run folder's records: one typed schema for what produced each image and what it cost
//! (`generation.jsonl`) and how long it took (`timing.jsonl`). The run loop writes them, shards
//! merge them and reports read them.

use crate::error::{Error, Location};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The run folder's generation file: one [`GenerationRecord`] per image, appended as it is made.
pub const GENERATION_FILE: &str = "generation.jsonl";

/// One line of `generation.jsonl`: what produced an image and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationRecord {
    pub prompt_index: usize,
    pub image_index: usize,
    pub strategy: String,
    pub generator: String,
    pub forwards: u64,
    pub judge_calls: u64,
    pub candidates: u64,
    pub truncated: u64,
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
    pub batch: usize,
    /// Batches that ran at once.
    pub threads: usize,
}

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
    for (i, line) in complete.lines().enumerate() {
        let rec: GenerationRecord = serde_json::from_str(line).map_err(|e| {
            Error::invalid(
                Location::line(path.display().to_string(), i + 1),
                format!("not a generation record: {e}"),
            )
        })?;
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
            forwards: 36,
            judge_calls: 0,
            candidates: 1,
            truncated: 0,
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
