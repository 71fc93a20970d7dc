//! What happens to a bad sample (undecodable image, empty text, missing label): an error naming
//! the file and row, or — when the user asked to skip them — a skip recorded in a [`SkipLog`]
//! that the run summary reports. Nothing is dropped silently.

use finetune_core::Error;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The policy for a bad sample, chosen once per run and passed to every reader and the loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnBadSample {
    /// Stop with an error naming the file and row (the default).
    #[default]
    Error,
    /// Skip the sample and count it (`--skip-bad-samples`).
    Skip,
}

/// The error for a bad record: `{path}: {location}: {msg}`.
pub fn record_error(
    path: &Path,
    location: impl std::fmt::Display,
    msg: impl std::fmt::Display,
) -> Error {
    Error::Record {
        path: path.to_path_buf(),
        msg: format!("{location}: {msg}"),
    }
}

/// Skipped samples, shared between the readers and the loader's threads. Clones share the log.
#[derive(Debug, Clone, Default)]
pub struct SkipLog(Arc<Mutex<Vec<String>>>);

impl SkipLog {
    /// An empty log. Clone it to share it; every clone records into the same list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one skipped sample, with the error that would otherwise have stopped the run.
    pub fn record(&self, err: &Error) {
        self.0
            .lock()
            .expect("skip log poisoned")
            .push(err.to_string());
    }

    /// How many samples have been skipped so far, across all clones of this log.
    pub fn count(&self) -> usize {
        self.0.lock().expect("skip log poisoned").len()
    }

    /// Every skip's message, in the order they were recorded.
    pub fn messages(&self) -> Vec<String> {
        self.0.lock().expect("skip log poisoned").clone()
    }

    /// One line for the run summary, e.g. `skipped 2 bad samples (first: a.csv: row 3: empty text)`.
    pub fn summary(&self) -> String {
        let log = self.0.lock().expect("skip log poisoned");
        match log.first() {
            None => "skipped no bad samples".to_string(),
            Some(first) => format!(
                "skipped {} bad sample{} (first: {first})",
                log.len(),
                if log.len() == 1 { "" } else { "s" }
            ),
        }
    }

    /// Applies `policy` to a failed sample: returns the error, or records it and returns `Ok`.
    pub fn handle(&self, policy: OnBadSample, err: Error) -> Result<(), Error> {
        match policy {
            OnBadSample::Error => Err(err),
            OnBadSample::Skip => {
                self.record(&err);
                Ok(())
            }
        }
    }
}
