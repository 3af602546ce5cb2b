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
/// non-finite log-probability", "detector … non-finite output …"), so that messages read alike.
/// The run loop decides by [`ModelFault`]'s variant, never by this text.
pub const NON_FINITE: &str = "non-finite";

/// How a model call (a generator step, a decode, a judge's or a detector's batch) failed. The
/// run loop fails only the image at hand on [`ModelFault::NonFinite`] and stops the run on
/// [`ModelFault::Failed`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelFault {
    /// The model produced a NaN or an infinity for this input.
    #[error("{0}")]
    NonFinite(String),
    /// Anything else: a worker that broke the protocol, weights that do not load, bad input.
    #[error("{0}")]
    Failed(String),
}

impl ModelFault {
    /// A NaN or an infinity, described by `message`.
    pub fn non_finite(message: impl Into<String>) -> Self {
        ModelFault::NonFinite(message.into())
    }

    pub fn is_non_finite(&self) -> bool {
        matches!(self, ModelFault::NonFinite(_))
    }

    pub fn message(&self) -> &str {
        match self {
            ModelFault::NonFinite(m) | ModelFault::Failed(m) => m,
        }
    }

    /// The same fault, its message prefixed with `context` (`"{context}: {message}"`).
    pub fn context(self, context: impl fmt::Display) -> Self {
        match self {
            ModelFault::NonFinite(m) => ModelFault::NonFinite(format!("{context}: {m}")),
            ModelFault::Failed(m) => ModelFault::Failed(format!("{context}: {m}")),
        }
    }
}

impl From<String> for ModelFault {
    fn from(message: String) -> Self {
        ModelFault::Failed(message)
    }
}

impl From<&str> for ModelFault {
    fn from(message: &str) -> Self {
        ModelFault::Failed(message.to_string())
    }
}

/// The message alone, for text-only channels (a worker's error reply, a failed image's reason).
impl From<ModelFault> for String {
    fn from(fault: ModelFault) -> Self {
        match fault {
            ModelFault::NonFinite(m) | ModelFault::Failed(m) => m,
        }
    }
}

impl From<Error> for ModelFault {
    fn from(e: Error) -> Self {
        ModelFault::Failed(e.to_string())
    }
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
