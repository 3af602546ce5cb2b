//! The GenEval summary, computed and printed exactly as the official `summary_scores.py`:
//! image accuracy per tag (tags in order of first appearance), and the overall score as the
//! unweighted mean of the per-tag accuracies.

use crate::error::{Error, Location};
use crate::results::{ResultRecord, ResultRow};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::path::Path;

/// The `summary.json` key that names the detector which scored a run.
pub const SCORED_BY_KEY: &str = "detector";

/// Correct and total images of one tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagCount {
    pub tag: String,
    pub correct: usize,
    pub total: usize,
}

impl TagCount {
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.total as f64
    }
}

/// Everything `summary_scores.py` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub total_images: usize,
    pub total_prompts: usize,
    pub correct_images: usize,
    /// Prompts with at least one correct image.
    pub correct_prompts: usize,
    /// In order of first appearance.
    pub tags: Vec<TagCount>,
}

impl Summary {
    /// Summarises result rows; `None` when there are none.
    pub fn from_rows(rows: &[ResultRow]) -> Option<Summary> {
        if rows.is_empty() {
            return None;
        }
        let mut tags: Vec<TagCount> = Vec::new();
        let mut tag_pos: HashMap<&str, usize> = HashMap::new();
        let mut prompts: HashMap<&str, bool> = HashMap::new();
        for r in rows {
            let i = *tag_pos.entry(&r.tag).or_insert_with(|| {
                tags.push(TagCount {
                    tag: r.tag.clone(),
                    correct: 0,
                    total: 0,
                });
                tags.len() - 1
            });
            tags[i].total += 1;
            tags[i].correct += r.correct as usize;
            *prompts.entry(&r.metadata).or_insert(false) |= r.correct;
        }
        let distinct: HashSet<&str> = rows.iter().map(|r| r.metadata.as_str()).collect();
        Some(Summary {
            total_images: rows.len(),
            total_prompts: distinct.len(),
            correct_images: rows.iter().filter(|r| r.correct).count(),
            correct_prompts: prompts.values().filter(|c| **c).count(),
            tags,
        })
    }

    /// Unweighted mean over tags of the per-tag image accuracy (`np.mean(task_scores)`).
    pub fn overall(&self) -> f64 {
        let sum = self.tags.iter().fold(0.0, |acc, t| acc + t.accuracy());
        sum / self.tags.len() as f64
    }

    pub fn image_accuracy(&self) -> f64 {
        self.correct_images as f64 / self.total_images as f64
    }

    pub fn prompt_accuracy(&self) -> f64 {
        self.correct_prompts as f64 / self.total_prompts as f64
    }

    /// The text `summary_scores.py` prints, byte for byte.
    pub fn render_official(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Summary");
        let _ = writeln!(s, "=======");
        let _ = writeln!(s, "Total images: {}", self.total_images);
        let _ = writeln!(s, "Total prompts: {}", self.total_prompts);
        let _ = writeln!(s, "% correct images: {}", py_percent(self.image_accuracy()));
        let _ = writeln!(
            s,
            "% correct prompts: {}",
            py_percent(self.prompt_accuracy())
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "Task breakdown");
        let _ = writeln!(s, "==============");
        for t in &self.tags {
            let _ = writeln!(
                s,
                "{:<16} = {} ({} / {})",
                t.tag,
                py_percent(t.accuracy()),
                t.correct,
                t.total
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "Overall score (avg. over tasks): {:.5}", self.overall());
        s
    }

    /// The machine-readable `summary.json`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut tags = serde_json::Map::new();
        for t in &self.tags {
            tags.insert(
                t.tag.clone(),
                serde_json::json!({"correct": t.correct, "total": t.total, "accuracy": t.accuracy()}),
            );
        }
        serde_json::json!({
            "total_images": self.total_images,
            "total_prompts": self.total_prompts,
            "correct_images": self.correct_images,
            "correct_prompts": self.correct_prompts,
            "image_accuracy": self.image_accuracy(),
            "prompt_accuracy": self.prompt_accuracy(),
            "tags": tags,
            "overall": self.overall(),
        })
    }
}

/// Python's `f"{x:.2%}"`: multiply by 100 in floating point, then round to two decimals.
fn py_percent(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

impl Summary {
    /// The summary of scored records; an error naming `source` when there are none.
    pub fn of_records(records: &[ResultRecord], source: &Path) -> crate::Result<Summary> {
        let rows: Vec<ResultRow> = records
            .iter()
            .map(|r| ResultRow {
                tag: r.tag.clone(),
                correct: r.correct,
                metadata: r.metadata.clone(),
            })
            .collect();
        Summary::from_rows(&rows).ok_or_else(|| {
            Error::invalid(
                Location::file(source.display().to_string()),
                "no images to summarise",
            )
        })
    }

    /// Writes `summary.json` (atomically), with the name of the detector that scored the images
    /// when known (key [`SCORED_BY_KEY`]): scores of different detectors must not be
    /// compared.
    pub fn write(&self, path: &Path, scored_by: Option<&str>) -> crate::Result<()> {
        let mut json = self.to_json();
        if let (Some(name), Some(map)) = (scored_by, json.as_object_mut()) {
            map.insert(SCORED_BY_KEY.into(), name.into());
        }
        let text = serde_json::to_string_pretty(&json).map_err(|e| {
            Error::invalid(Location::file(path.display().to_string()), e.to_string())
        })? + "\n";
        crate::fsutil::write_atomic(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tag: &str, meta: &str, correct: bool) -> ResultRow {
        ResultRow {
            tag: tag.into(),
            correct,
            metadata: meta.into(),
        }
    }

    #[test]
    fn macro_mean_over_tags_with_unequal_images_per_prompt() {
        // Tag a: prompt p1 has 3 images (1 correct), p2 has 1 (correct) -> 2/4 = 0.5 by images,
        // although the mean over prompts would be (1/3 + 1)/2 = 0.667.
        // Tag b: one prompt, 2 images, none correct -> 0.0. Overall = (0.5 + 0.0) / 2.
        let rows = vec![
            row("b", "q1", false),
            row("a", "p1", true),
            row("a", "p1", false),
            row("a", "p1", false),
            row("a", "p2", true),
            row("b", "q1", false),
        ];
        let s = Summary::from_rows(&rows).unwrap();
        assert_eq!(s.total_images, 6);
        assert_eq!(s.total_prompts, 3);
        assert_eq!(s.correct_prompts, 2);
        assert_eq!(s.tags[0].tag, "b", "tags keep first-appearance order");
        assert_eq!(s.overall(), 0.25);
        assert_eq!(
            s.render_official(),
            "Summary\n=======\nTotal images: 6\nTotal prompts: 3\n% correct images: 33.33%\n% correct prompts: 66.67%\n\nTask breakdown\n==============\nb                = 0.00% (0 / 2)\na                = 50.00% (2 / 4)\n\nOverall score (avg. over tasks): 0.25000\n"
        );
    }

    #[test]
    fn percent_rounds_like_python() {
        // 1/8 = 12.5% exactly; 0.125 * 100 formats as 12.50%.
        assert_eq!(py_percent(0.125), "12.50%");
        assert_eq!(py_percent(2.0 / 3.0), "66.67%");
        assert_eq!(py_percent(1.0), "100.00%");
        // Python: f"{0.000125:.2%}" == "0.01%" (0.0125 rounds half-even on its binary value).
        assert_eq!(py_percent(0.000125), "0.01%");
    }

    #[test]
    fn empty_rows_give_no_summary() {
        assert!(Summary::from_rows(&[]).is_none());
    }
}
