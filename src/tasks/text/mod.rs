//! Text classification: files or a Hub dataset → records → tokenised batches → the learner →
//! the exported folder, with test metrics; evaluation and export of a fine-tuned model; several
//! tasks on one encoder ([`multitask`]).

mod data;
mod model;
pub mod multitask;
mod source;
mod targets;
mod teacher;

pub use model::{TextClassifier, TextModel, TextModelOptions, DEFAULT_MAX_LENGTH};
pub use source::TextBatches;

use crate::families::ModelSource;
use crate::settings::{RunSettings, Task};
use crate::tasks::launch::RunOutput;
use crate::tasks::output::{write_export, ExportMode};
use crate::tasks::run::{fit_and_test, Prepared, RunReport};
use anyhow::{bail, Result};
use candle_core::{DType, Device};
use data::Splits;
use finetune_bert::BertBatch;
use finetune_core::Problem;
use finetune_data::text::{read_tables, Target, TargetSpec, TextColumns, TextReadOptions};
use finetune_data::{LabelMap, OnBadSample};
use finetune_train::{BatchSource, EvalMetrics, Teacher, TeacherModel};
use std::path::{Path, PathBuf};

/// Fine-tunes `source` as `s` says, evaluates on the test split, exports into the output.
pub(crate) fn train(s: &RunSettings, source: &ModelSource, out: RunOutput) -> Result<RunReport> {
    if s.text.task_config.is_some() {
        return multitask::train(s, source, out);
    }
    let mut splits = Splits::read(s)?;
    let problem = targets::problem_type(s, &splits.train);
    splits.require_labels(s, problem)?;
    let (spec, new_head) = targets::resolve(s, problem, &splits.train, source)?;
    let data = splits.encode(&spec)?;
    let device = s.job.open_device()?;
    let opts = TextModelOptions {
        labels: Some(spec.names()),
        new_head,
        problem_type: Some(problem),
        max_length: s.text.max_length,
        dropout: s.job.dropout,
        seed: s.train.seed,
    };
    let teacher_source =
        crate::tasks::distill::resolve(s, Task::TextClassification, problem, &spec.names())?;
    let clf = TextClassifier::from_source(source, &opts, &device)?;
    let teacher = teacher::load(teacher_source.as_ref(), s, &clf, &device)?;
    let teacher = teacher.as_ref().map(|t| TeacherModel(t.model()));
    crate::tasks::lora::prepare(s, source, Task::TextClassification, clf.model())?;
    let train_targets: Vec<Target> = data.train.iter().map(|r| r.target.clone()).collect();
    let mut resolved = crate::tasks::class_weights::for_targets(s, &spec, &train_targets)?;
    // Record what was actually used, so `eval`/`predict` can repeat it.
    resolved.text.max_length = Some(clf.max_length());
    resolved.data.problem_type = Some(problem);
    let train_src = clf.batches(&data.train);
    let eval_src = data.eval.as_deref().map(|r| clf.batches(r));
    let test_src = data.test.as_deref().map(|r| clf.batches(r));
    fit_and_test(
        &resolved,
        Task::TextClassification,
        out,
        Prepared {
            model: clf.model(),
            train: &train_src,
            eval: eval_src.as_ref().map(|b| b as &dyn BatchSource<BertBatch>),
            test: test_src.as_ref().map(|b| b as &dyn BatchSource<BertBatch>),
            labels: spec.names(),
            skipped_samples: splits.skipped(),
            source,
            teacher: teacher.as_ref().map(|t| t as &dyn Teacher<BertBatch>),
        },
    )
}

/// Evaluates a fine-tuned classifier on labelled files; the labels are the model's.
pub fn evaluate(
    source: &ModelSource,
    files: &[PathBuf],
    columns: &TextColumns,
    opts: &TextModelOptions,
    batch_size: usize,
    device: &str,
) -> Result<EvalMetrics> {
    let device = finetune_core::select_device(device)?;
    let clf = TextClassifier::from_source(source, opts, &device)?;
    let labels = LabelMap::from_names(clf.labels())?;
    let spec = match clf.model().problem() {
        Problem::SingleLabel { .. } => TargetSpec::Single(labels),
        Problem::MultiLabel { .. } => TargetSpec::Multi(labels),
        Problem::Regression => TargetSpec::Regression,
    };
    let read = TextReadOptions {
        columns: columns.clone(),
        format: None,
        on_bad: OnBadSample::Error,
        empty_labels: matches!(spec, TargetSpec::Multi(_)),
    };
    let records = read_tables(files, &read)?.encode_targets(&spec)?.records;
    if records.is_empty() {
        bail!("no rows to evaluate in {files:?}");
    }
    Ok(finetune_train::learner::evaluate(
        clf.model(),
        &clf.batches(&records),
        batch_size,
    )?)
}

/// Writes `source` again for transformers, floating-point tensors in `dtype`.
pub(crate) fn export(
    source: &ModelSource,
    output: &Path,
    dtype: Option<DType>,
    mode: ExportMode,
) -> Result<()> {
    let clf = TextClassifier::from_source(source, &TextModelOptions::default(), &Device::Cpu)?;
    let model = clf.model();
    write_export(source, model.store(), output, dtype, mode, |tmp| {
        model.export_as(tmp, dtype)
    })
}
