//! Usage errors: a flag, a flag's value, a settings-file key or a combination of them that the
//! command refuses before doing any work. The `finetune` binary exits with status 2 for them
//! (clap's convention, as for an unknown flag), and 1 for every other error.

use std::fmt;

/// An error in how a command was called, with its one-line message.
#[derive(Debug)]
pub struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `e` (its whole chain, on one line) as a [`UsageError`].
pub fn usage(e: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(UsageError(format!("{:#}", e.into())))
}

/// Whether `e`, or an error it wraps, is a [`UsageError`].
pub fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<UsageError>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_usage_error_is_found_under_context_and_keeps_its_message() {
        let e = usage(anyhow::anyhow!("inner").context("outer"));
        assert_eq!(e.to_string(), "outer: inner");
        let wrapped = Err::<(), _>(e).context("more").unwrap_err();
        assert!(is_usage(&wrapped));
        assert!(!is_usage(&anyhow::anyhow!("a runtime error")));
    }
}
