//! A multi-task run's export: each task's classifier in `<output>/<task>/` (the shared
//! encoder with that task's head, config and tokenizer: a folder transformers'
//! `AutoModelForSequenceClassification` loads alone, as `finetune predict` does) and the
//! encoder alone in `<output>/backbone/`. Each folder is written whole or not at all.

use super::model::TaskHead;
use crate::tasks::output::write_folder_atomically;
use anyhow::Result;
use std::path::Path;

/// The folder of the shared encoder.
pub const BACKBONE_DIR: &str = "backbone";

/// Writes every task's folder and the encoder's under `dir`.
pub fn write(heads: &[TaskHead], dir: &Path) -> Result<()> {
    for h in heads {
        write_folder_atomically(&dir.join(&h.name), |tmp| h.clf.model().export_as(tmp, None))?;
    }
    let encoder = heads[0].clf.model();
    write_folder_atomically(&dir.join(BACKBONE_DIR), |tmp| {
        encoder.export_encoder_as(tmp, None)
    })
}
