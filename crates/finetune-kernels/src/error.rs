//! The kernels' error type: a candle error, or a message naming the op and what was wrong with
//! its arguments. `finetune_kernels::Error` takes both over unchanged (`From`).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// Bad arguments to an op: the message names the op, the argument and what was expected.
    #[error("{0}")]
    Config(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }
}
