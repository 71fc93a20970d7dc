//! Each task evaluated on its own data once training ends, with its own head: the numbers go
//! to `metrics.jsonl` (one record, `eval/<task>/<metric>`), `train_summary.json` and the run
//! report (`tasks`, by task name), and a line per task on stderr.

use super::model::MultiTaskModel;
use super::prepare::TaskData;
use anyhow::Result;
use finetune_core::ProblemType;
use finetune_data::text::TextRecord;
use finetune_train::learner::{describe, evaluate};
use finetune_train::{EvalMetrics, TrainSummary};
use serde::Serialize;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::Path;

/// One task of a multi-task run, as the run report and `train_summary.json` list it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    /// The task's name (its folder in the output).
    pub name: String,
    /// The problem its head solves.
    pub problem_type: ProblemType,
    /// Its class names in id order.
    pub labels: Vec<String>,
    /// The factor of its loss.
    pub weight: f64,
    /// Its training rows.
    pub train_rows: usize,
    /// The probability of a batch being this task's.
    pub probability: f64,
    /// Its evaluation split's metrics; `None` without one.
    pub eval: Option<EvalMetrics>,
    /// Its test split's metrics; `None` without one.
    pub test: Option<EvalMetrics>,
}

/// Evaluates every task on its evaluation and test splits and records the results in
/// `output` (see the module doc).
pub(super) fn evaluate_tasks(
    model: &MultiTaskModel,
    tasks: &[TaskData],
    probs: &[f64],
    batch_size: usize,
    summary: &TrainSummary,
    output: &Path,
) -> Result<Vec<TaskReport>> {
    let mut out = Vec::new();
    let mut record = Map::new();
    record.insert("step".into(), summary.global_step.into());
    record.insert("epoch".into(), summary.epochs_completed.into());
    for ((head, t), p) in model.heads().iter().zip(tasks).zip(probs) {
        let run = |records: Option<&Vec<TextRecord>>| -> Result<Option<EvalMetrics>> {
            let Some(r) = records.filter(|r| !r.is_empty()) else {
                return Ok(None);
            };
            Ok(Some(evaluate(
                head.clf.model(),
                &head.clf.batches(r),
                batch_size,
            )?))
        };
        let (eval, test) = (run(t.data.eval.as_ref())?, run(t.data.test.as_ref())?);
        for (split, m) in [("eval", &eval), ("test", &test)] {
            if let Some(m) = m {
                eprintln!("{split}/{}: {}", head.name, describe(m));
            }
        }
        if let Some(m) = &eval {
            flatten(&mut record, m, &format!("eval/{}", head.name))?;
        }
        out.push(TaskReport {
            name: head.name.clone(),
            problem_type: t.problem,
            labels: head.clf.labels(),
            weight: head.weight,
            train_rows: t.data.train.len(),
            probability: *p,
            eval,
            test,
        });
    }
    if out.iter().any(|t| t.eval.is_some()) {
        append_record(&output.join("metrics.jsonl"), &Value::Object(record))?;
    }
    add_to_summary(&output.join("train_summary.json"), &out)?;
    Ok(out)
}

/// `m`'s numbers as `<prefix>/<metric>` keys.
fn flatten(record: &mut Map<String, Value>, m: &EvalMetrics, prefix: &str) -> Result<()> {
    if let Value::Object(fields) = serde_json::to_value(m)? {
        for (k, v) in fields.into_iter().filter(|(_, v)| v.is_number()) {
            record.insert(format!("{prefix}/{k}"), v);
        }
    }
    Ok(())
}

fn append_record(path: &Path, record: &Value) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(f, "{}", serde_json::to_string(record)?)?;
    Ok(())
}

/// `train_summary.json` with the tasks' reports under `tasks`.
fn add_to_summary(path: &Path, tasks: &[TaskReport]) -> Result<()> {
    let mut summary: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    if let Some(obj) = summary.as_object_mut() {
        obj.insert("tasks".into(), serde_json::to_value(tasks)?);
    }
    let bytes = serde_json::to_vec_pretty(&summary)?;
    finetune_core::fsutil::write_bytes_atomically(path, &bytes)?;
    Ok(())
}
