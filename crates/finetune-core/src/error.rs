//! The error type of `finetune-core`: every message names what was wrong and where.

use std::path::PathBuf;

/// Everything that can go wrong in `finetune-core`. Messages are one line and name the file,
/// parameter, pattern or argument at fault wherever there is one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A candle operation failed (a shape or dtype mismatch inside an op, a device error);
    /// displayed as candle's own message.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A file or folder could not be read or written.
    ///
    /// The cause is part of the message (not a `source`), so a printed chain says it once.
    #[error("{path}: {err}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// What the operating system reported.
        err: std::io::Error,
    },

    /// A file that is not valid safetensors, or a tensor in it that cannot be loaded (missing,
    /// or of an unsupported dtype).
    #[error("{path}: not a valid safetensors file: {msg}")]
    Safetensors {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },

    /// A name pattern that does not parse, or (freezing, param groups) one that matches no
    /// parameter.
    #[error("invalid name pattern `{pattern}`: {msg}")]
    Pattern {
        /// The pattern as written (a param group's patterns joined by `, `).
        pattern: String,
        /// What is wrong with it.
        msg: String,
    },

    /// A tensor name that the store or checkpoint does not hold.
    #[error("unknown parameter `{0}`")]
    UnknownParam(String),

    /// A tensor whose shape is not the one expected under its name (a layer's tensor, a value
    /// set in place, a gradient, an optimizer's state).
    #[error("parameter `{name}`: expected shape {expected:?}, got {got:?}")]
    Shape {
        /// The tensor: a parameter name, or `gradient of …` / `optimizer state of …`.
        name: String,
        /// The shape the store, layer or optimizer holds.
        expected: Vec<usize>,
        /// The shape that was given.
        got: Vec<usize>,
    },

    /// An invalid argument, setting or combination of them; the message names it.
    #[error("{0}")]
    Config(String),

    /// A folder another process is writing into (it holds the folder's lock).
    #[error(
        "{} is in use by another finetune run{}; wait for it or choose another `output`",
        path.display(),
        holder.as_deref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    InUse {
        /// The folder.
        path: PathBuf,
        /// Who holds it: `pid N, started HH:MM:SS UTC`, when its lock file says.
        holder: Option<String>,
    },

    /// A record file (optimizer state, sharded-checkpoint index, an output being written) that
    /// cannot be parsed or written.
    #[error("{path}: {msg}")]
    Record {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },
}

/// `std::result::Result` with this crate's [`Error`].
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
    /// An [`Error::Io`] about `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            err: source,
        }
    }

    /// An [`Error::Config`] with this message.
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
