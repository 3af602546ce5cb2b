//! The `score --detections` input: detections made elsewhere (for example by the official
//! Mask2Former + CLIP), one image per JSON line:
//!
//! ```json
//! {"folder": "00012", "image": "0003.png", "metadata": {…}, "detections": [{"class": "dog", "score": 0.93, "box": [x1, y1, x2, y2], "color": "red"}]}
//! ```

use crate::error::{Error, FieldError, Location, Result};
use crate::metadata::Metadata;
use crate::results::ResultRecord;
use crate::rules::{self, Detection, RuleConfig};
use crate::vocab::{ClassId, Color};
use serde_json::{Map, Value};
use std::path::Path;

/// One line of a detections file.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionLine {
    /// 1-based line number, for messages.
    pub line: usize,
    pub folder: String,
    pub image: String,
    pub metadata: Metadata,
    pub detections: Vec<Detection>,
}

impl DetectionLine {
    /// The official `filename` of this image: `<folder>/samples/<image>`.
    pub fn filename(&self) -> String {
        format!("{}/samples/{}", self.folder, self.image)
    }
}

/// Reads and validates a detections JSONL file.
pub fn read_detections(path: &Path) -> Result<Vec<DetectionLine>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_detections(&text, &path.display().to_string())
}

/// Parses detections JSONL text; errors name `source:line` and the field.
pub fn parse_detections(text: &str, source: &str) -> Result<Vec<DetectionLine>> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    let mut out = Vec::with_capacity(end);
    for (i, line) in lines[..end].iter().enumerate() {
        out.push(parse_line(line, i + 1).map_err(|e| e.at(source, i + 1))?);
    }
    if out.is_empty() {
        return Err(Error::invalid(
            Location::file(source),
            "no images: expected one JSON object per line",
        ));
    }
    Ok(out)
}

fn parse_line(text: &str, line: usize) -> Result<DetectionLine, FieldError> {
    if text.trim().is_empty() {
        return Err(FieldError::new("", "blank line inside the file"));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| FieldError::new("", format!("malformed JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| FieldError::new("", "expected a JSON object"))?;
    for key in obj.keys() {
        if !["folder", "image", "metadata", "detections"].contains(&key.as_str()) {
            return Err(FieldError::new(
                key.as_str(),
                "unknown key; expected folder, image, metadata, detections",
            ));
        }
    }
    let folder = name_field(obj, "folder")?;
    let image = name_field(obj, "image")?;
    let metadata = Metadata::from_value(
        obj.get("metadata")
            .ok_or_else(|| FieldError::new("metadata", "missing"))?,
    )
    .map_err(|e| e.within("metadata"))?;
    let dets = obj
        .get("detections")
        .and_then(Value::as_array)
        .ok_or_else(|| FieldError::new("detections", "expected a list (possibly empty)"))?;
    let detections = dets
        .iter()
        .enumerate()
        .map(|(i, d)| parse_detection(d).map_err(|e| e.within(&format!("detections[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DetectionLine {
        line,
        folder,
        image,
        metadata,
        detections,
    })
}

fn name_field(obj: &Map<String, Value>, key: &str) -> Result<String, FieldError> {
    let s = obj
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new(key, "expected a string"))?;
    if s.is_empty() || s.contains('/') || s.contains('\\') {
        return Err(FieldError::new(
            key,
            format!("expected a plain file name, got \"{s}\""),
        ));
    }
    Ok(s.to_string())
}

fn parse_detection(value: &Value) -> Result<Detection, FieldError> {
    let obj = value
        .as_object()
        .ok_or_else(|| FieldError::new("", "expected a JSON object"))?;
    for key in obj.keys() {
        if !["class", "score", "box", "color"].contains(&key.as_str()) {
            return Err(FieldError::new(
                key.as_str(),
                "unknown key; expected class, score, box, color",
            ));
        }
    }
    let name = obj
        .get("class")
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new("class", "expected a class name"))?;
    let class = ClassId::from_name(name).ok_or_else(|| {
        FieldError::new(
            "class",
            format!("unknown class \"{name}\"; expected one of the 80 GenEval classes"),
        )
    })?;
    let score = finite(obj.get("score"), "score")?;
    if !(0.0..=1.0).contains(&score) {
        return Err(FieldError::new(
            "score",
            format!("{score} is not a probability; expected a number in [0, 1]"),
        ));
    }
    let bbox = obj
        .get("box")
        .and_then(Value::as_array)
        .filter(|a| a.len() == 4)
        .ok_or_else(|| FieldError::new("box", "expected [x1, y1, x2, y2]"))?;
    let mut b = [0.0; 4];
    for (k, v) in bbox.iter().enumerate() {
        b[k] = finite(Some(v), &format!("box[{k}]"))?;
    }
    if let Some(why) = inverted(&b) {
        return Err(FieldError::new("box", why));
    }
    let color = match obj.get("color") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let t = v
                .as_str()
                .ok_or_else(|| FieldError::new("color", "expected a colour name"))?;
            Some(Color::parse(t).ok_or_else(|| {
                FieldError::new(
                    "color",
                    format!(
                        "unknown colour \"{t}\"; expected one of {}",
                        Color::expected()
                    ),
                )
            })?)
        }
    };
    Ok(Detection {
        class,
        score,
        bbox: b,
        color,
    })
}

/// Why a finite box `[x1, y1, x2, y2]` is inverted (x2 < x1 or y2 < y1), if it is: such a box
/// comes from another corner convention (x, y, w, h) or a bug, and GenEval's overlap tests on it
/// would silently be wrong. A degenerate box (x1 = x2) is accepted, as the official code does.
pub fn inverted(b: &[f64; 4]) -> Option<String> {
    (b[2] < b[0] || b[3] < b[1]).then(|| {
        format!(
            "[{}, {}, {}, {}] is inverted; expected [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2",
            b[0], b[1], b[2], b[3]
        )
    })
}

fn finite(v: Option<&Value>, field: &str) -> Result<f64, FieldError> {
    v.and_then(Value::as_f64)
        .filter(|x| x.is_finite())
        .ok_or_else(|| FieldError::new(field, "expected a finite number"))
}

/// Scores one detections line with the GenEval rules into a result record.
pub fn score_line(line: &DetectionLine, cfg: &RuleConfig, source: &str) -> Result<ResultRecord> {
    let j = rules::judge(&line.metadata, &line.detections, cfg).map_err(|e| {
        let want = line.metadata.include[e.clause]
            .color
            .map_or(String::new(), |c| format!(" ({c})"));
        FieldError::new(
            format!("detections[{}].color", e.detection),
            format!(
                "missing, but include clause {}{want} tests the colour of this {} detection",
                e.clause, e.class
            ),
        )
        .at(source, line.line)
    })?;
    Ok(ResultRecord {
        filename: line.filename(),
        tag: line.metadata.tag.as_str().to_string(),
        prompt: line.metadata.prompt.clone(),
        correct: j.correct,
        reason: j.reason.clone(),
        metadata: line.metadata.to_json_string(),
        details: j.details_json(&line.detections),
        extra: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#"{"tag": "colors", "include": [{"class": "dog", "count": 1, "color": "red"}], "prompt": "a photo of a red dog"}"#;

    fn line(dets: &str) -> String {
        format!(
            r#"{{"folder": "00012", "image": "0003.png", "metadata": {META}, "detections": {dets}}}"#
        )
    }

    #[test]
    fn scores_a_line_in_the_official_shape() {
        let text =
            line(r#"[{"class": "dog", "score": 0.93, "box": [1, 2, 30, 40], "color": "red"}]"#);
        let lines = parse_detections(&text, "d.jsonl").unwrap();
        let r = score_line(&lines[0], &RuleConfig::default(), "d.jsonl").unwrap();
        assert!(r.correct);
        assert_eq!(r.filename, "00012/samples/0003.png");
        assert_eq!(r.metadata, META);
        assert_eq!(r.details, r#"{"dog": [[1.0, 2.0, 30.0, 40.0, 0.93]]}"#);
    }

    #[test]
    fn missing_colour_that_a_clause_needs_is_an_error_naming_the_line() {
        let ok = line(r#"[]"#);
        let bad = line(
            r#"[{"class": "cat", "score": 0.9, "box": [0, 0, 1, 1]}, {"class": "dog", "score": 0.93, "box": [1, 2, 30, 40]}]"#,
        );
        let lines = parse_detections(&format!("{ok}\n{bad}\n"), "d.jsonl").unwrap();
        // The cat's colour is never looked at, so its absence is fine.
        let err = score_line(&lines[1], &RuleConfig::default(), "d.jsonl")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("d.jsonl:2: field `detections[1].color`: missing"),
            "{err}"
        );
    }

    #[test]
    fn bad_detection_fields_are_named() {
        let cases = [
            (
                line(r#"[{"class": "dogg", "score": 0.9, "box": [0, 0, 1, 1]}]"#),
                "detections[0].class",
            ),
            (
                line(r#"[{"class": "dog", "score": "high", "box": [0, 0, 1, 1]}]"#),
                "detections[0].score",
            ),
            (
                line(r#"[{"class": "dog", "score": 0.9, "box": [0, 0, 1]}]"#),
                "detections[0].box",
            ),
            (
                line(r#"[{"class": "dog", "score": 0.9, "box": [0, 0, 1, "x"]}]"#),
                "detections[0].box[3]",
            ),
            (
                line(r#"[{"class": "dog", "score": 0.9, "box": [0, 0, 1, 1], "color": "teal"}]"#),
                "detections[0].color",
            ),
            (
                line(r#"[{"class": "dog", "score": 0.9, "box": [0, 0, 1, 1], "mask": 1}]"#),
                "detections[0].mask",
            ),
            (
                line(r#"[{"class": "dog", "score": 1.5, "box": [0, 0, 1, 1]}]"#),
                "detections[0].score",
            ),
            (
                line(r#"[{"class": "dog", "score": -0.1, "box": [0, 0, 1, 1]}]"#),
                "detections[0].score",
            ),
            (
                line(r#"[{"class": "dog", "score": 0.9, "box": [10, 0, 1, 1]}]"#),
                "detections[0].box",
            ),
            (
                line(
                    r#"[{"class": "dog", "score": 0.9, "box": [0, 0, 1, 1]}, {"class": "dog", "score": 0.9, "box": [0, 5, 1, 1]}]"#,
                ),
                "detections[1].box",
            ),
            (line(r#"{}"#), "detections"),
        ];
        for (text, field) in cases {
            let err = parse_detections(&text, "d.jsonl").unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("d.jsonl:1: field `{field}`")),
                "{err}"
            );
        }
        let err = parse_detections("{\"folder\": ", "d.jsonl")
            .unwrap_err()
            .to_string();
        assert!(err.contains("malformed JSON"), "{err}");
        let err = parse_detections("", "d.jsonl").unwrap_err().to_string();
        assert!(err.contains("no images"), "{err}");
    }
}
