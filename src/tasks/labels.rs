//! The classes of a run, decided once for every task (transformers' `run_glue` policy): the
//! training data's labels decide, and a checkpoint's head is kept only when it was trained for
//! those classes.
//!
//! 1. The wanted classes: `--labels` (in its order), else the training data's labels (sorted;
//!    integer labels are the ids `0..=max`). `--num-labels N` only checks the count against
//!    them (integer labels are ids: the classes are `0..N`, which the training data may not
//!    all have, and a label from `N` on is an error naming its file and row).
//! 2. A checkpoint whose labels are the wanted ones, compared case-insensitively, keeps its
//!    head and its order (the names spelled as the data spells them).
//! 3. A checkpoint without names (transformers' `LABEL_0`, `LABEL_1` …, a timm config without
//!    `label_names`) keeps its head when the wanted classes are the ids themselves (`0`, `1`,
//!    … as many as the head has): the head's classes are ids, so they line up.
//! 4. Otherwise the wanted classes get a new head; for a checkpoint with named labels one line
//!    says so, listing the old labels and the new.

use crate::settings::DataSettings;
use anyhow::{bail, Result};
use finetune_data::LabelMap;
use std::collections::HashMap;

/// The classes a checkpoint's head was trained for, as its config gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointLabels {
    /// Class names in id order (placeholders such as `LABEL_0` when the config names none).
    pub names: Vec<String>,
    /// Whether the config names the classes (not placeholders).
    pub named: bool,
}

impl CheckpointLabels {
    /// The classes of a config's names in id order; transformers' placeholders `LABEL_0`,
    /// `LABEL_1` … (which configs also carry when nothing named the classes) name none.
    pub fn from_config(names: Vec<String>) -> Self {
        let placeholders = names
            .iter()
            .enumerate()
            .all(|(i, l)| *l == format!("LABEL_{i}"));
        Self {
            names,
            named: !placeholders,
        }
    }
}

/// The run's classes and what becomes of the checkpoint's head.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The classes in id order, mapping the data's raw labels.
    pub map: LabelMap,
    /// Whether the head is initialised anew (always, for a network trained from scratch).
    pub new_head: bool,
    /// A line for the user about the head (replaced, or kept in another order than asked).
    pub note: Option<String>,
}

impl Resolved {
    /// Prints [`Self::note`], when there is one.
    pub fn announce(&self) {
        if let Some(note) = &self.note {
            eprintln!("{note}");
        }
    }
}

/// The run's classes (see the module doc): `data` gives the training data's label map (only
/// called without `--labels`), `flags` holds `--labels` and `--num-labels`, `checkpoint` the
/// head's classes (`None` for a network trained from scratch).
pub fn resolve(
    data: impl FnOnce() -> Result<LabelMap>,
    flags: &DataSettings,
    checkpoint: Option<&CheckpointLabels>,
) -> Result<Resolved> {
    let wanted = wanted(data, flags)?;
    let Some(ckpt) = checkpoint else {
        return Ok(Resolved {
            map: wanted,
            new_head: true,
            note: None,
        });
    };
    if let Some(order) = same_classes(&ckpt.names, wanted.names()) {
        let note = (order != wanted.names()).then(|| {
            format!(
                "labels: the checkpoint's head keeps its order {}",
                describe(&order)
            )
        });
        return Ok(Resolved {
            map: wanted.reordered(order)?,
            new_head: false,
            note: note.filter(|_| flags.labels.is_some()),
        });
    }
    if !ckpt.named && wanted.are_ids() && wanted.len() == ckpt.names.len() {
        return Ok(Resolved {
            map: wanted,
            new_head: false,
            note: None,
        });
    }
    let note = ckpt.named.then(|| {
        format!(
            "labels: new head for the training data's labels, {} (the checkpoint's) → {}",
            describe(&ckpt.names),
            describe(wanted.names())
        )
    });
    Ok(Resolved {
        map: wanted,
        new_head: true,
        note,
    })
}

/// The classes asked for: `--labels`, else the data's, checked against `--num-labels`.
fn wanted(data: impl FnOnce() -> Result<LabelMap>, flags: &DataSettings) -> Result<LabelMap> {
    if let Some(names) = &flags.labels {
        if let Some(n) = flags.num_labels.filter(|&n| n != names.len()) {
            bail!(
                "--num-labels {n} disagrees with the {} names of --labels",
                names.len()
            );
        }
        return Ok(LabelMap::from_names(names.clone())?);
    }
    let data = data()?;
    match flags.num_labels {
        // Integer labels are ids: the classes are `0..n`, a label from `n` on is the bad row
        // that encoding reports with its file and row.
        Some(n) if data.are_ids() => {
            let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
            Ok(LabelMap::fit(ids.iter().map(String::as_str))?)
        }
        Some(n) if n != data.len() => bail!(
            "--num-labels {n} disagrees with the training data's {} labels {}",
            data.len(),
            data.describe()
        ),
        _ => Ok(data),
    }
}

/// The wanted classes in the checkpoint's order, when they are the checkpoint's classes up to
/// case (spelled as `wanted` spells them).
fn same_classes(checkpoint: &[String], wanted: &[String]) -> Option<Vec<String>> {
    let by_lower: HashMap<String, &String> = wanted.iter().map(|w| (w.to_lowercase(), w)).collect();
    if by_lower.len() != wanted.len() || checkpoint.len() != wanted.len() {
        return None;
    }
    let order: Vec<String> = checkpoint
        .iter()
        .map(|c| by_lower.get(&c.to_lowercase()).map(|w| w.to_string()))
        .collect::<Option<_>>()?;
    let mut distinct = order.clone();
    distinct.sort();
    distinct.dedup();
    (distinct.len() == order.len()).then_some(order)
}

/// Names as messages show them: `[a, b, …]`, at most ten.
fn describe(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(10).map(String::as_str).collect();
    let more = if names.len() > 10 { ", …" } else { "" };
    format!("[{}{more}]", shown.join(", "))
}
