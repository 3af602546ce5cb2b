//! The GenEval prompt suite: loading a metadata JSONL with line-level validation, the embedded
//! official 553 prompts, and selection by tag, index range and limit.

use crate::error::{Error, FieldError, Location, Result};
use crate::metadata::Metadata;
use crate::vocab::Tag;
use std::ops::RangeInclusive;
use std::path::Path;

/// The official `evaluation_metadata.jsonl` (553 prompts), shipped in `data/geneval/`.
pub const OFFICIAL_METADATA_JSONL: &str =
    include_str!("../../data/geneval/evaluation_metadata.jsonl");

/// One prompt and its position in the suite file (0-based; the official folder name is this
/// index written with five digits).
#[derive(Debug, Clone, PartialEq)]
pub struct PromptEntry {
    pub index: usize,
    pub metadata: Metadata,
}

/// A list of prompts read from one metadata file.
#[derive(Debug, Clone)]
pub struct Suite {
    /// Where the prompts came from, for messages and run records.
    pub source: String,
    pub prompts: Vec<PromptEntry>,
}

impl Suite {
    /// The 553 official GenEval prompts.
    pub fn official() -> Suite {
        // The embedded file is validated by a unit test, so this cannot fail at run time.
        Suite::parse(
            OFFICIAL_METADATA_JSONL,
            "<embedded evaluation_metadata.jsonl>",
        )
        .unwrap_or_else(|e| panic!("embedded GenEval metadata is invalid: {e}"))
    }

    /// Reads and validates a metadata JSONL file.
    pub fn load(path: &Path) -> Result<Suite> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Suite::parse(&text, &path.display().to_string())
    }

    /// Parses metadata JSONL text: one JSON object per line. Blank lines are allowed only at the
    /// end of the file; every other problem is an error naming `source:line` and the field.
    pub fn parse(text: &str, source: &str) -> Result<Suite> {
        let lines: Vec<&str> = text.lines().collect();
        let last_content = lines.iter().rposition(|l| !l.trim().is_empty());
        let Some(last_content) = last_content else {
            return Err(Error::invalid(
                Location::file(source),
                "no prompts: expected one JSON object per line",
            ));
        };
        let mut prompts = Vec::with_capacity(last_content + 1);
        for (i, line) in lines[..=last_content].iter().enumerate() {
            let lineno = i + 1;
            if line.trim().is_empty() {
                return Err(Error::invalid(
                    Location::line(source, lineno),
                    "blank line inside the file; expected one JSON object per line",
                ));
            }
            let metadata = parse_metadata_line(line).map_err(|e| e.at(source, lineno))?;
            prompts.push(PromptEntry { index: i, metadata });
        }
        Ok(Suite {
            source: source.to_string(),
            prompts,
        })
    }

    /// The prompts chosen by `selection`, in suite order. An empty result is an error.
    pub fn select(&self, selection: &Selection) -> Result<Vec<&PromptEntry>> {
        let mut per_tag_seen = std::collections::HashMap::new();
        let mut chosen = Vec::new();
        for p in &self.prompts {
            if !selection.tags.is_empty() && !selection.tags.contains(&p.metadata.tag) {
                continue;
            }
            if !selection.indices.is_empty()
                && !selection.indices.iter().any(|r| r.contains(&p.index))
            {
                continue;
            }
            if let Some(k) = selection.per_tag {
                let seen = per_tag_seen.entry(p.metadata.tag).or_insert(0usize);
                if *seen >= k {
                    continue;
                }
                *seen += 1;
            }
            chosen.push(p);
            if selection.limit.is_some_and(|l| chosen.len() >= l) {
                break;
            }
        }
        if chosen.is_empty() {
            return Err(Error::invalid(
                Location::file(&self.source),
                format!("the selection {selection} matches no prompt"),
            ));
        }
        Ok(chosen)
    }
}

/// Parses one JSONL line into validated metadata.
pub fn parse_metadata_line(line: &str) -> Result<Metadata, FieldError> {
    let value: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| FieldError::new("", format!("malformed JSON: {e}")))?;
    Metadata::from_value(&value)
}

/// Which prompts of a suite to run: tags, index ranges (0-based, inclusive), at most `per_tag`
/// prompts of each tag, then at most `limit` prompts in all. Empty lists mean "all".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub tags: Vec<Tag>,
    pub indices: Vec<RangeInclusive<usize>>,
    pub per_tag: Option<usize>,
    pub limit: Option<usize>,
}

impl Selection {
    /// Parses a comma-separated tag list such as `counting,position`.
    pub fn parse_tags(text: &str) -> Result<Vec<Tag>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                Tag::parse(t).ok_or_else(|| {
                    format!("unknown tag \"{t}\"; expected one of {}", Tag::expected())
                })
            })
            .collect()
    }

    /// Parses index ranges such as `0-9,20,30-39` (0-based, inclusive).
    pub fn parse_indices(text: &str) -> Result<Vec<RangeInclusive<usize>>, String> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let parse = |s: &str| {
                s.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("bad index \"{s}\" in \"{part}\"; expected N or A-B"))
            };
            let range = match part.split_once('-') {
                Some((a, b)) => parse(a)?..=parse(b)?,
                None => {
                    let n = parse(part)?;
                    n..=n
                }
            };
            if range.start() > range.end() {
                return Err(format!("empty index range \"{part}\": start is after end"));
            }
            out.push(range);
        }
        if out.is_empty() {
            return Err("expected at least one index or range".into());
        }
        Ok(out)
    }
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.tags.is_empty() {
            let tags: Vec<&str> = self.tags.iter().map(|t| t.as_str()).collect();
            parts.push(format!("tags={}", tags.join(",")));
        }
        if !self.indices.is_empty() {
            let r: Vec<String> = self
                .indices
                .iter()
                .map(|r| format!("{}-{}", r.start(), r.end()))
                .collect();
            parts.push(format!("indices={}", r.join(",")));
        }
        if let Some(k) = self.per_tag {
            parts.push(format!("per_tag={k}"));
        }
        if let Some(l) = self.limit {
            parts.push(format!("limit={l}"));
        }
        if parts.is_empty() {
            f.write_str("(all prompts)")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_suite_has_553_prompts_with_official_tag_counts() {
        let s = Suite::official();
        assert_eq!(s.prompts.len(), 553);
        let count = |t| s.prompts.iter().filter(|p| p.metadata.tag == t).count();
        assert_eq!(count(Tag::SingleObject), 80);
        assert_eq!(count(Tag::TwoObject), 99);
        assert_eq!(count(Tag::Counting), 80);
        assert_eq!(count(Tag::Colors), 94);
        assert_eq!(count(Tag::Position), 100);
        assert_eq!(count(Tag::ColorAttr), 100);
        // Every line is exactly Python's json.dumps of its object.
        for (line, p) in OFFICIAL_METADATA_JSONL.lines().zip(&s.prompts) {
            assert_eq!(p.metadata.to_json_string(), line);
        }
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let text = "{\"tag\": \"colors\", \"include\": [{\"class\": \"dog\", \"count\": 1}], \"prompt\": \"p\"}\n{\"tag\": \"colors\", \"include\": [{\"class\": \"dog\", \"count\": 1, \"color\": \"teal\"}], \"prompt\": \"p\"}\n";
        let err = Suite::parse(text, "m.jsonl").unwrap_err().to_string();
        assert!(
            err.starts_with("m.jsonl:2: field `include[0].color`: unknown colour \"teal\""),
            "{err}"
        );
        let err = Suite::parse("{\"tag\": \"colors\", \"incl", "m.jsonl")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("m.jsonl:1: ") && err.contains("malformed JSON"),
            "{err}"
        );
        let ok = "{\"tag\": \"colors\", \"include\": [{\"class\": \"dog\", \"count\": 1}], \"prompt\": \"p\"}";
        let err = Suite::parse(&format!("{ok}\n\n{ok}\n"), "m.jsonl")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("m.jsonl:2: blank line"), "{err}");
        assert_eq!(
            Suite::parse(&format!("{ok}\n\n"), "m.jsonl")
                .unwrap()
                .prompts
                .len(),
            1
        );
        let err = Suite::parse("\n  \n", "m.jsonl").unwrap_err().to_string();
        assert!(err.contains("no prompts"), "{err}");
    }

    #[test]
    fn selection_by_tags_indices_per_tag_and_limit() {
        let s = Suite::official();
        let sel = Selection {
            tags: Selection::parse_tags("counting,position").unwrap(),
            ..Default::default()
        };
        assert_eq!(s.select(&sel).unwrap().len(), 180);
        let sel = Selection {
            indices: Selection::parse_indices("0-9, 552").unwrap(),
            ..Default::default()
        };
        let idx: Vec<usize> = s.select(&sel).unwrap().iter().map(|p| p.index).collect();
        assert_eq!(idx, vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 552]);
        let sel = Selection {
            per_tag: Some(2),
            ..Default::default()
        };
        assert_eq!(s.select(&sel).unwrap().len(), 12);
        let sel = Selection {
            limit: Some(5),
            ..Default::default()
        };
        assert_eq!(s.select(&sel).unwrap().len(), 5);
        let sel = Selection {
            tags: vec![Tag::Counting],
            indices: vec![0..=5],
            ..Default::default()
        };
        assert!(s
            .select(&sel)
            .unwrap_err()
            .to_string()
            .contains("matches no prompt"));
        assert!(Selection::parse_tags("counting,nope").is_err());
        assert!(Selection::parse_indices("5-2").is_err());
        assert!(Selection::parse_indices("a").is_err());
    }
}
