//! The error type of `finetune-core`: every message names what was wrong and where.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// The cause is part of the message (not a `source`), so a printed chain says it once.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },

    #[error("{path}: not a valid safetensors file: {msg}")]
    Safetensors { path: PathBuf, msg: String },

    #[error("invalid name pattern `{pattern}`: {msg}")]
    Pattern { pattern: String, msg: String },

    #[error("unknown parameter `{0}`")]
    UnknownParam(String),

    #[error("parameter `{name}`: expected shape {expected:?}, got {got:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },

    #[error("{0}")]
    Config(String),

    #[error("{path}: {msg}")]
    Record { path: PathBuf, msg: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// `x >= 0` and not NaN: the check behind every "must be >= 0" message.
pub fn non_negative(x: f64) -> bool {
    x >= 0.0
}

/// `x > 0` and not NaN.
pub fn positive(x: f64) -> bool {
    x > 0.0
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            err: source,
        }
    }

    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }
}

/// A kernel's error keeps its message (and a candle error stays one).
impl From<finetune_kernels::Error> for Error {
    fn from(e: finetune_kernels::Error) -> Self {
        match e {
            finetune_kernels::Error::Candle(e) => Error::Candle(e),
            finetune_kernels::Error::Config(m) => Error::Config(m),
        }
    }
}
