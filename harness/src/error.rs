//! One error type for the harness: every error names the file, and the line or field, that caused
//! it, and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where bad input was found: a file, optionally a 1-based line, optionally a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: Option<usize>,
    pub field: Option<String>,
}

impl Location {
    pub fn file(file: impl Into<String>) -> Self {
        Location {
            file: file.into(),
            line: None,
            field: None,
        }
    }

    pub fn line(file: impl Into<String>, line: usize) -> Self {
        Location {
            line: Some(line),
            ..Location::file(file)
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that does not meet its specification.
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn invalid(location: Location, message: impl Into<String>) -> Self {
        Error::Invalid {
            location,
            message: message.into(),
        }
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The phrase every model uses when it produced a NaN or an infinity ("generator base produced a
/// non-finite log-probability", "detector … non-finite output …"). The run loop turns errors that
/// contain it into a failed image with that reason instead of aborting the run; any other error
/// still aborts.
pub const NON_FINITE: &str = "non-finite";

/// Whether a model's error message reports a NaN or an infinity (see [`NON_FINITE`]).
pub fn is_non_finite(message: &str) -> bool {
    message.contains(NON_FINITE)
}

/// A problem inside one JSON value, before the file and line are known: the dotted field path
/// and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefixes the field path, e.g. `count` inside `include[1]` becomes `include[1].count`.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_string()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }

    /// Attaches the file and line.
    pub fn at(self, file: &str, line: usize) -> Error {
        let location = Location::line(file, line);
        let location = if self.field.is_empty() {
            location
        } else {
            location.with_field(self.field)
        };
        Error::invalid(location, self.message)
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}
