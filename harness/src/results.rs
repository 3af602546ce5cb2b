//! Per-image result records in the official `results.jsonl` shape, and reading them back from
//! ours or the official evaluator's files.

use crate::error::{Error, Location, Result};
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One image's result: the official keys in the official order (`filename`, `tag`, `prompt`,
/// `correct`, `reason`, `metadata`, `details`), then any keys evalcot adds (compute, clauses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    pub filename: String,
    pub tag: String,
    pub prompt: String,
    pub correct: bool,
    pub reason: String,
    /// `json.dumps(metadata)`; prompts are told apart by this string.
    pub metadata: String,
    /// `json.dumps({class: [[x1, y1, x2, y2, score], …]})` of the kept detections.
    pub details: String,
    /// evalcot's additions, written after the official keys.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Writes records as JSON lines, atomically.
pub fn write_results(path: &Path, records: &[ResultRecord]) -> Result<()> {
    let mut out = String::new();
    for r in records {
        let line = serde_json::to_string(r).map_err(|e| {
            Error::invalid(Location::file(path.display().to_string()), e.to_string())
        })?;
        out.push_str(&line);
        out.push('\n');
    }
    fsutil::write_atomic(path, out.as_bytes())
}

/// The three fields every summary needs, read from any results.jsonl (the official evaluator's
/// pandas output escapes `/` as `\/`, which JSON parsing undoes).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResultRow {
    pub tag: String,
    pub correct: bool,
    pub metadata: String,
}

/// Reads the rows of a results.jsonl; blank lines at the end are allowed, anything else that is
/// not a result line is an error naming the line.
pub fn read_result_rows(path: &Path) -> Result<Vec<ResultRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let file = path.display().to_string();
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    let mut rows = Vec::with_capacity(end);
    for (i, line) in lines[..end].iter().enumerate() {
        let row: ResultRow = serde_json::from_str(line).map_err(|e| {
            Error::invalid(
                Location::line(&file, i + 1),
                format!("expected a result object with `tag` (string), `correct` (bool) and `metadata` (string): {e}"),
            )
        })?;
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(Error::invalid(Location::file(file), "no results in file"));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_official_key_order_and_read_back() {
        let mut extra = serde_json::Map::new();
        extra.insert("generator_forwards".into(), 18.into());
        let r = ResultRecord {
            filename: "00000/samples/0000.png".into(),
            tag: "single_object".into(),
            prompt: "a photo of a bench".into(),
            correct: true,
            reason: String::new(),
            metadata: "{}".into(),
            details: "{}".into(),
            extra,
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.starts_with(r#"{"filename":"00000/samples/0000.png","tag":"single_object","prompt":"a photo of a bench","correct":true,"reason":"","metadata":"{}","details":"{}","generator_forwards":18}"#), "{line}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.jsonl");
        write_results(&p, &[r.clone(), r]).unwrap();
        assert_eq!(read_result_rows(&p).unwrap().len(), 2);
    }

    #[test]
    fn official_pandas_output_with_escaped_slashes_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.jsonl");
        std::fs::write(&p, "{\"filename\":\"imgs\\/00000\\/samples\\/0000.png\",\"tag\":\"single_object\",\"prompt\":\"a photo of a bench\",\"correct\":false,\"reason\":\"expected bench>=1, found 0\",\"metadata\":\"{\\\"tag\\\": \\\"single_object\\\"}\",\"details\":\"{}\"}\n").unwrap();
        let rows = read_result_rows(&p).unwrap();
        assert_eq!(rows[0].metadata, "{\"tag\": \"single_object\"}");
        assert!(!rows[0].correct);
    }

    #[test]
    fn bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.jsonl");
        std::fs::write(&p, "{\"tag\":\"a\",\"correct\":true,\"metadata\":\"m\"}\n{\"tag\":\"a\",\"correct\":\"yes\",\"metadata\":\"m\"}\n").unwrap();
        let err = read_result_rows(&p).unwrap_err().to_string();
        assert!(err.contains("results.jsonl:2:"), "{err}");
        std::fs::write(&p, "\n").unwrap();
        assert!(read_result_rows(&p)
            .unwrap_err()
            .to_string()
            .contains("no results"));
    }
}
