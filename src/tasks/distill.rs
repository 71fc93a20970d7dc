//! `--teacher`: the classifier a run distils from (the loss and the teacher's cache are
//! `finetune_train::distill`'s). Resolved as `--model` is (a folder, a Hub id, the Hugging
//! Face cache, a finetune export), checked against the run before its weights are read (a
//! trained checkpoint of the run's task whose `id2label` names the run's labels, in the same
//! order), then loaded by the task with every tensor frozen: its forward uses plain tensors,
//! never a `Var`, and runs in eval mode (no dropout).

use crate::families::{self, ModelSource};
use crate::settings::{RunSettings, Task};
use anyhow::{bail, Context, Result};
use finetune_core::{ParamStore, ProblemType};

/// The teacher `s` names, resolved and checked against the run's `problem` and `labels`
/// (class names in id order) before any weights are read; `None` without `--teacher`.
pub(crate) fn resolve(
    s: &RunSettings,
    task: Task,
    problem: ProblemType,
    labels: &[String],
) -> Result<Option<ModelSource>> {
    let Some(name) = s.train.teacher.as_deref() else {
        return Ok(None);
    };
    if problem != ProblemType::SingleLabelClassification {
        bail!(finetune_train::distill::SINGLE_LABEL_ONLY);
    }
    let source = families::resolve(name, s.job.allow_pickle, Some(task))
        .with_context(|| format!("--teacher {name}"))?;
    if source.files.is_none() {
        bail!(
            "--teacher {name} names an architecture, not a trained checkpoint: a teacher must \
             be a classifier fine-tuned for this run's labels"
        );
    }
    source.check_task(task).with_context(|| "--teacher")?;
    let theirs =
        (source.family.labels)(source.files()?).with_context(|| format!("--teacher {name}"))?;
    check_labels(name, &theirs.names, labels)?;
    Ok(Some(source))
}

/// Refuses a teacher whose classes (its `id2label`, in id order) are not the run's.
pub(crate) fn check_labels(name: &str, teacher: &[String], run: &[String]) -> Result<()> {
    if teacher == run {
        return Ok(());
    }
    bail!(
        "--teacher {name} classifies into [{}] but this run's labels are [{}]: a teacher must \
         be fine-tuned for the same labels, in the same order",
        teacher.join(", "),
        run.join(", ")
    )
}

/// Freezes every tensor of a teacher's `store`: the model then hands its layers plain
/// tensors, so its forward builds no autograd graph.
pub(crate) fn freeze(store: &ParamStore) -> Result<()> {
    for name in store.names() {
        store.set_trainable(&name, false)?;
    }
    Ok(())
}
