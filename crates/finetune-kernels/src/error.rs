//! The kernels' error type: a candle error, or a message naming the op and what was wrong with
//! its arguments. `finetune_core::Error` takes both over unchanged (`From`).

/// An op's failure: candle's own, or arguments the op refuses before running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error from candle (shapes a candle op rejects, a device or dtype it does not
    /// support, …), passed on unchanged.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// Bad arguments to an op: the message names the op, the argument and what was expected.
    #[error("{0}")]
    Config(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::Config`] with this message.
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }
}
