//! One task of a multi-task run made ready as a single-task run would be: the run's settings
//! with the task's keys in place, its splits read, its problem and labels resolved against
//! the checkpoint, its records encoded and its classifier loaded.

use super::config::TaskSpec;
use crate::families::ModelSource;
use crate::settings::RunSettings;
use crate::tasks::text::data::{Encoded, Splits};
use crate::tasks::text::{targets, TextClassifier, TextModelOptions};
use anyhow::{anyhow, Result};
use candle_core::Device;
use finetune_core::ProblemType;

/// A task ready to train.
pub(super) struct TaskData {
    /// The task as the file gives it.
    pub(super) spec: TaskSpec,
    /// The problem its head solves.
    pub(super) problem: ProblemType,
    /// Its splits' records.
    pub(super) data: Encoded,
    /// Bad rows skipped over its splits.
    pub(super) skipped: usize,
}

/// The run's settings with `t`'s data, columns, labels and problem type; what `t` leaves out
/// stays the run's.
pub(super) fn settings_for(s: &RunSettings, t: &TaskSpec) -> RunSettings {
    let mut ts = s.clone();
    ts.text.task_config = None;
    ts.data.train = t.train.clone();
    ts.data.eval = t.eval.clone();
    ts.data.test = t.test.clone();
    ts.data.dataset = None;
    let set = |to: &mut String, from: &Option<String>| {
        if let Some(v) = from {
            to.clone_from(v);
        }
    };
    set(&mut ts.text.text_column, &t.text_column);
    set(&mut ts.data.label_column, &t.label_column);
    if t.text_pair_column.is_some() {
        ts.text.text_pair_column.clone_from(&t.text_pair_column);
    }
    if !t.label_columns.is_empty() {
        ts.text.label_columns.clone_from(&t.label_columns);
    }
    if t.problem_type.is_some() {
        ts.data.problem_type = t.problem_type;
    }
    if t.labels.is_some() {
        ts.data.labels.clone_from(&t.labels);
    }
    ts
}

/// Reads, resolves and loads task `index` (`t`) on `device`: its data, and its classifier
/// (with its own encoder until the multi-task model shares the first one's). Errors name the
/// task.
pub(super) fn load(
    s: &RunSettings,
    t: &TaskSpec,
    index: usize,
    source: &ModelSource,
    device: &Device,
) -> Result<(TaskData, TextClassifier)> {
    let named = |e: anyhow::Error| anyhow!("task \"{}\": {e:#}", t.name);
    let ts = settings_for(s, t);
    let mut splits = Splits::read(&ts).map_err(named)?;
    let problem = targets::problem_type(&ts, &splits.train);
    splits.require_labels(&ts, problem).map_err(named)?;
    let (spec, new_head) = targets::resolve(&ts, problem, &splits.train, source).map_err(named)?;
    let data = splits.encode(&spec).map_err(named)?;
    let opts = TextModelOptions {
        labels: Some(spec.names()),
        new_head,
        problem_type: Some(problem),
        max_length: s.text.max_length,
        dropout: s.job.dropout,
        // Heads of the same shape start apart.
        seed: s.train.seed.wrapping_add(index as u64),
    };
    let clf = TextClassifier::from_source(source, &opts, device).map_err(named)?;
    let task = TaskData {
        spec: t.clone(),
        problem,
        data,
        skipped: splits.skipped(),
    };
    Ok((task, clf))
}
