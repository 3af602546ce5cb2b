//! A typed GenEval prompt: the metadata object of one line of `evaluation_metadata.jsonl`.
//!
//! The parsed value keeps the original JSON (with its key order) so that the string written to
//! results is exactly Python's `json.dumps(metadata)`, which is how `summary_scores.py` tells
//! prompts apart.

use crate::error::FieldError;
use crate::pyjson;
use crate::vocab::{ClassId, Color, Relation, Tag};
use serde_json::{Map, Value};

/// The largest count a clause may ask for. GenEval keeps at most 16 detections per class, so
/// anything larger can never be satisfied; we allow headroom for other rule settings but reject
/// absurd values early.
pub const MAX_COUNT: u32 = 1000;

/// `{class, count[, color][, position]}`: at least `count` objects of `class`; the top `count`
/// of them all of `color`; each of them `relation` every object of include clause `group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub class: ClassId,
    pub count: u32,
    pub color: Option<Color>,
    pub position: Option<Position>,
}

/// `[relation, group]` of an include clause; `group` indexes an earlier include clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub relation: Relation,
    pub group: usize,
}

/// `{class, count}`: the image fails when `count` or more objects of `class` are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exclude {
    pub class: ClassId,
    pub count: u32,
}

/// One GenEval prompt with its checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub tag: Tag,
    pub include: Vec<Include>,
    pub exclude: Vec<Exclude>,
    pub prompt: String,
    raw: Value,
}

impl Metadata {
    /// Builds metadata from typed parts, laid out with the official key order
    /// (`tag`, `include`, `exclude` if any, `prompt`; clause keys `class`, `count`, `color`,
    /// `position`).
    pub fn new(
        tag: Tag,
        include: Vec<Include>,
        exclude: Vec<Exclude>,
        prompt: impl Into<String>,
    ) -> Result<Self, FieldError> {
        let prompt = prompt.into();
        let mut obj = Map::new();
        obj.insert("tag".into(), Value::from(tag.as_str()));
        let inc: Vec<Value> = include
            .iter()
            .map(|c| {
                let mut m = Map::new();
                m.insert("class".into(), Value::from(c.class.name()));
                m.insert("count".into(), Value::from(c.count));
                if let Some(color) = c.color {
                    m.insert("color".into(), Value::from(color.as_str()));
                }
                if let Some(p) = c.position {
                    m.insert(
                        "position".into(),
                        Value::Array(vec![
                            Value::from(p.relation.as_str()),
                            Value::from(p.group as u64),
                        ]),
                    );
                }
                Value::Object(m)
            })
            .collect();
        obj.insert("include".into(), Value::Array(inc));
        if !exclude.is_empty() {
            let exc: Vec<Value> = exclude
                .iter()
                .map(|c| {
                    let mut m = Map::new();
                    m.insert("class".into(), Value::from(c.class.name()));
                    m.insert("count".into(), Value::from(c.count));
                    Value::Object(m)
                })
                .collect();
            obj.insert("exclude".into(), Value::Array(exc));
        }
        obj.insert("prompt".into(), Value::from(prompt.as_str()));
        // Round-trip through the validator so that typed construction obeys the same rules.
        Metadata::from_value(&Value::Object(obj))
    }

    /// Parses and validates one metadata object. Errors name the field, e.g. `include[1].count`.
    pub fn from_value(value: &Value) -> Result<Self, FieldError> {
        let obj = value
            .as_object()
            .ok_or_else(|| FieldError::new("", "expected a JSON object"))?;
        check_keys(
            obj,
            &["tag", "include", "exclude", "prompt"],
            &["tag", "include", "prompt"],
        )?;
        let tag_text = str_field(obj, "tag")?;
        let tag = Tag::parse(tag_text).ok_or_else(|| {
            FieldError::new(
                "tag",
                format!(
                    "unknown tag \"{tag_text}\"; expected one of {}",
                    Tag::expected()
                ),
            )
        })?;
        let prompt = str_field(obj, "prompt")?.to_string();
        if prompt.trim().is_empty() {
            return Err(FieldError::new("prompt", "expected a non-empty prompt"));
        }

        let inc_values = array_field(obj, "include")?;
        if inc_values.is_empty() {
            return Err(FieldError::new(
                "include",
                "expected at least one include clause",
            ));
        }
        let mut include = Vec::with_capacity(inc_values.len());
        for (i, v) in inc_values.iter().enumerate() {
            let parent = format!("include[{i}]");
            include.push(parse_include(v, i).map_err(|e| e.within(&parent))?);
        }

        let mut exclude = Vec::new();
        if obj.contains_key("exclude") {
            for (i, v) in array_field(obj, "exclude")?.iter().enumerate() {
                let parent = format!("exclude[{i}]");
                exclude.push(parse_exclude(v).map_err(|e| e.within(&parent))?);
            }
        }
        Ok(Metadata {
            tag,
            include,
            exclude,
            prompt,
            raw: value.clone(),
        })
    }

    /// The metadata as parsed, key order preserved.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// `json.dumps(metadata)` as Python writes it: the official `metadata` field of results.
    pub fn to_json_string(&self) -> String {
        pyjson::dumps(&self.raw)
    }

    /// Whether any include clause tests colour.
    pub fn tests_color(&self) -> bool {
        self.include.iter().any(|c| c.color.is_some())
    }
}

fn parse_include(value: &Value, own_index: usize) -> Result<Include, FieldError> {
    let obj = value
        .as_object()
        .ok_or_else(|| FieldError::new("", "expected a JSON object"))?;
    check_keys(
        obj,
        &["class", "count", "color", "position"],
        &["class", "count"],
    )?;
    let class = class_field(obj)?;
    let count = count_field(obj)?;
    let color = match obj.get("color") {
        None => None,
        Some(v) => {
            let text = v
                .as_str()
                .ok_or_else(|| FieldError::new("color", "expected a string"))?;
            Some(Color::parse(text).ok_or_else(|| {
                FieldError::new(
                    "color",
                    format!(
                        "unknown colour \"{text}\"; expected one of {}",
                        Color::expected()
                    ),
                )
            })?)
        }
    };
    let position = match obj.get("position") {
        None => None,
        Some(v) => Some(parse_position(v, own_index).map_err(|e| e.within("position"))?),
    };
    Ok(Include {
        class,
        count,
        color,
        position,
    })
}

fn parse_position(value: &Value, own_index: usize) -> Result<Position, FieldError> {
    let items = value
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(|| FieldError::new("", "expected [relation, group_index]"))?;
    let rel_text = items[0]
        .as_str()
        .ok_or_else(|| FieldError::new("[0]", "expected a relation string"))?;
    let relation = Relation::parse(rel_text).ok_or_else(|| {
        FieldError::new(
            "[0]",
            format!(
                "unknown relation \"{rel_text}\"; expected one of {}",
                Relation::expected()
            ),
        )
    })?;
    let group = items[1]
        .as_u64()
        .ok_or_else(|| FieldError::new("[1]", "expected a non-negative integer group index"))?
        as usize;
    if group >= own_index {
        return Err(FieldError::new(
            "[1]",
            format!("group index {group} must point to an earlier include clause (0..{own_index})"),
        ));
    }
    Ok(Position { relation, group })
}

fn parse_exclude(value: &Value) -> Result<Exclude, FieldError> {
    let obj = value
        .as_object()
        .ok_or_else(|| FieldError::new("", "expected a JSON object"))?;
    check_keys(obj, &["class", "count"], &["class", "count"])?;
    Ok(Exclude {
        class: class_field(obj)?,
        count: count_field(obj)?,
    })
}

fn check_keys(
    obj: &Map<String, Value>,
    allowed: &[&str],
    required: &[&str],
) -> Result<(), FieldError> {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(FieldError::new(
                key.as_str(),
                format!("unknown key; expected only {}", allowed.join(", ")),
            ));
        }
    }
    for key in required {
        if !obj.contains_key(*key) {
            return Err(FieldError::new(*key, "missing"));
        }
    }
    Ok(())
}

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, FieldError> {
    obj.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new(key, "expected a string"))
}

fn array_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a Vec<Value>, FieldError> {
    obj.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| FieldError::new(key, "expected a list"))
}

fn class_field(obj: &Map<String, Value>) -> Result<ClassId, FieldError> {
    let name = str_field(obj, "class")?;
    ClassId::from_name(name).ok_or_else(|| {
        FieldError::new(
            "class",
            format!("unknown class \"{name}\"; expected one of the 80 names in object_names.txt"),
        )
    })
}

fn count_field(obj: &Map<String, Value>) -> Result<u32, FieldError> {
    let v = obj
        .get("count")
        .ok_or_else(|| FieldError::new("count", "missing"))?;
    match v.as_i64() {
        Some(n) if (1..=MAX_COUNT as i64).contains(&n) => Ok(n as u32),
        Some(n) => Err(FieldError::new(
            "count",
            format!("count {n} is out of range; expected an integer from 1 to {MAX_COUNT}"),
        )),
        None => Err(FieldError::new(
            "count",
            format!("expected an integer, found {v}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Metadata, FieldError> {
        Metadata::from_value(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn parses_every_clause_kind() {
        let m = parse(r#"{"tag": "position", "include": [{"class": "teddy bear", "count": 1}, {"class": "dog", "count": 1, "color": "red", "position": ["right of", 0]}], "prompt": "p"}"#).unwrap();
        assert_eq!(m.tag, Tag::Position);
        assert_eq!(m.include[1].color, Some(Color::Red));
        assert_eq!(
            m.include[1].position,
            Some(Position {
                relation: Relation::RightOf,
                group: 0
            })
        );
        let c = parse(r#"{"tag": "counting", "include": [{"class": "clock", "count": 2}], "exclude": [{"class": "clock", "count": 3}], "prompt": "a photo of two clocks"}"#).unwrap();
        assert_eq!(c.exclude[0].count, 3);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"tag": "nope", "include": [{"class": "dog", "count": 1}], "prompt": "p"}"#,
                "tag",
                "unknown tag",
            ),
            (
                r#"{"tag": "colors", "include": [{"class": "dogg", "count": 1}], "prompt": "p"}"#,
                "include[0].class",
                "unknown class",
            ),
            (
                r#"{"tag": "colors", "include": [{"class": "dog", "count": 1, "color": "teal"}], "prompt": "p"}"#,
                "include[0].color",
                "unknown colour",
            ),
            (
                r#"{"tag": "colors", "include": [{"class": "dog", "count": 0}], "prompt": "p"}"#,
                "include[0].count",
                "out of range",
            ),
            (
                r#"{"tag": "colors", "include": [{"class": "dog", "count": 5000}], "prompt": "p"}"#,
                "include[0].count",
                "out of range",
            ),
            (
                r#"{"tag": "colors", "include": [{"class": "dog", "count": 1.5}], "prompt": "p"}"#,
                "include[0].count",
                "expected an integer",
            ),
            (
                r#"{"tag": "position", "include": [{"class": "dog", "count": 1, "position": ["left of", 0]}], "prompt": "p"}"#,
                "include[0].position[1]",
                "earlier include",
            ),
            (
                r#"{"tag": "position", "include": [{"class": "cat", "count": 1}, {"class": "dog", "count": 1, "position": ["left of", 2]}], "prompt": "p"}"#,
                "include[1].position[1]",
                "earlier include",
            ),
            (
                r#"{"tag": "position", "include": [{"class": "cat", "count": 1}, {"class": "dog", "count": 1, "position": ["beside", 0]}], "prompt": "p"}"#,
                "include[1].position[0]",
                "unknown relation",
            ),
            (
                r#"{"tag": "counting", "include": [{"class": "dog", "count": 2}], "exclude": [{"class": "dog", "count": 0}], "prompt": "p"}"#,
                "exclude[0].count",
                "out of range",
            ),
            (
                r#"{"tag": "colors", "include": [], "prompt": "p"}"#,
                "include",
                "at least one",
            ),
            (
                r#"{"tag": "colors", "include": [{"class": "dog", "count": 1}], "prompt": "p", "extra": 1}"#,
                "extra",
                "unknown key",
            ),
            (
                r#"{"tag": "colors", "include": [{"class": "dog", "count": 1}]}"#,
                "prompt",
                "missing",
            ),
        ];
        for (text, field, msg) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.field, field, "{text}");
            assert!(err.message.contains(msg), "{text}: {}", err.message);
        }
    }

    #[test]
    fn typed_construction_uses_official_key_order() {
        let dog = ClassId::from_name("dog").unwrap();
        let cake = ClassId::from_name("cake").unwrap();
        let m = Metadata::new(
            Tag::Position,
            vec![
                Include {
                    class: cake,
                    count: 1,
                    color: None,
                    position: None,
                },
                Include {
                    class: dog,
                    count: 1,
                    color: None,
                    position: Some(Position {
                        relation: Relation::LeftOf,
                        group: 0,
                    }),
                },
            ],
            vec![],
            "a photo of a dog left of a cake",
        )
        .unwrap();
        assert_eq!(
            m.to_json_string(),
            r#"{"tag": "position", "include": [{"class": "cake", "count": 1}, {"class": "dog", "count": 1, "position": ["left of", 0]}], "prompt": "a photo of a dog left of a cake"}"#
        );
    }
}
