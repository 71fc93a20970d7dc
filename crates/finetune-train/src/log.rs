//! `output/metrics.jsonl`: one JSON object per logged event, appended and flushed as it happens
//! (and, when asked, the same scalars to a TensorBoard event file).

use finetune_core::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A run's `metrics.jsonl`, open for appending: the file form of transformers'
/// `state.log_history` (train-loss records, evaluations, skipped steps).
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
    tensorboard: Option<crate::tensorboard::EventWriter>,
}

impl MetricsLog {
    /// Starts the log of a run over `history`, the records it already has (none for a fresh
    /// run, the checkpoint's for a resumed one): the file is rewritten to hold exactly those,
    /// so records of an earlier run, or of steps after the checkpoint that a killed run had
    /// logged, do not stay in it.
    pub fn start(output: &Path, history: &[serde_json::Value]) -> Result<Self> {
        let path = output.join("metrics.jsonl");
        let mut text = String::new();
        for record in history {
            text.push_str(&record.to_string());
            text.push('\n');
        }
        finetune_core::fsutil::write_bytes_atomically(&path, text.as_bytes())?;
        Self::open(output)
    }

    /// Opens the log for appending.
    pub fn open(output: &Path) -> Result<Self> {
        let path = output.join("metrics.jsonl");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            path,
            file,
            tensorboard: None,
        })
    }

    /// Every record from here on also goes to a new TensorBoard event file in `dir`, which
    /// starts with the run's settings (`settings`, as text) at `step`.
    pub fn with_tensorboard(mut self, dir: &Path, step: u64, settings: &str) -> Result<Self> {
        let mut writer = crate::tensorboard::EventWriter::create(dir)?;
        writer.text(step, "args", settings)?;
        self.tensorboard = Some(writer);
        Ok(self)
    }

    /// Appends `record` as one line and flushes it, so that the file holds every record up to
    /// the last even when the process is killed.
    pub fn write(&mut self, record: &serde_json::Value) -> Result<()> {
        let mut line = record.to_string();
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| Error::io(&self.path, e))?;
        match (&mut self.tensorboard, crate::tensorboard::tags_of(record)) {
            (Some(tb), Some((step, values))) if !values.is_empty() => tb.scalars(step, &values),
            _ => Ok(()),
        }
    }
}
