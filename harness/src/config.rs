//! Configuration files are data: YAML read into plain serde structs that reject unknown keys, with
//! errors naming the file, line and column.

use crate::error::{Error, Location, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads a YAML file into `T`.
pub fn load_yaml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_yaml(&text, &path.display().to_string())
}

/// Parses YAML text into `T`; `source` names it in errors.
pub fn parse_yaml<T: DeserializeOwned>(text: &str, source: &str) -> Result<T> {
    serde_norway::from_str(text).map_err(|e| {
        let location = match e.location() {
            Some(l) => Location::line(source, l.line()),
            None => Location::file(source),
        };
        Error::invalid(location, e.to_string())
    })
}

/// Writes `value` as YAML (atomically), e.g. the resolved config beside a run.
pub fn write_yaml<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_norway::to_string(value)
        .map_err(|e| Error::invalid(Location::file(path.display().to_string()), e.to_string()))?;
    crate::fsutil::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        steps: usize,
        #[serde(default)]
        lr: f64,
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let ok: Cfg = parse_yaml("steps: 3\nlr: 0.5\n", "c.yaml").unwrap();
        assert_eq!(ok, Cfg { steps: 3, lr: 0.5 });
        let err = parse_yaml::<Cfg>("steps: 3\nlearning_rate: 0.5\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.yaml:2: ") && err.contains("unknown field `learning_rate`"),
            "{err}"
        );
        let err = parse_yaml::<Cfg>("steps: many\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.yaml:1: ") && err.contains("invalid type"),
            "{err}"
        );
    }
}
