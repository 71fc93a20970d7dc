//! What a text record is trained to predict: the shared [`crate::target`] types (re-exported
//! here, where text data first had them), with the text-only pieces: a row's target from its
//! raw label, and multi-label data given as several 0/1 columns.

pub use crate::target::{
    infer_problem, split_labels, Target, TargetSpec, LABEL_SEPARATOR, REGRESSION_LABEL,
};

use super::{RawRow, RowLoc};
use finetune_core::{Error, Result};

impl TargetSpec {
    /// The target of one row; a label the map does not know, or a regression label that is
    /// not a finite number, is an error naming the row.
    pub fn encode(&self, row: &RawRow) -> Result<Target> {
        self.encode_label(&row.label, |m| row.loc.error(m))
    }
}

/// The labels of several 0/1 columns as one cell: the names of the columns whose value is
/// `1` (also `1.0`, `true`), `;`-joined; anything but 0/1 is an error naming the column.
pub(crate) fn from_columns(
    names: &[String],
    values: &[Option<String>],
    loc: &RowLoc,
) -> Result<String> {
    let mut on = Vec::new();
    for (name, v) in names.iter().zip(values) {
        let v = v.as_deref().map(str::trim).unwrap_or("");
        match v.to_ascii_lowercase().as_str() {
            "1" | "1.0" | "true" => on.push(name.as_str()),
            "0" | "0.0" | "false" => {}
            _ => return Err(loc.error(format!("label column `{name}` must be 0 or 1, got `{v}`"))),
        }
    }
    Ok(on.join(&LABEL_SEPARATOR.to_string()))
}

/// Checks that no label-column name holds the separator (it could not be told apart).
pub(crate) fn check_column_names(names: &[String]) -> Result<()> {
    match names
        .iter()
        .find(|n| n.contains(LABEL_SEPARATOR) || n.trim().is_empty())
    {
        Some(n) => Err(Error::config(format!(
            "label column name `{n}` cannot name a label (empty, or holds `{LABEL_SEPARATOR}`)"
        ))),
        None => Ok(()),
    }
}
