//! Image classification: image folders, CSV lists, IDX, CIFAR, pixel CSVs or a Hub parquet
//! dataset → decoded, augmented, normalised batches → the learner → the exported folder, with
//! test metrics; evaluation and export of a fine-tuned model. Single-label, or multi-label
//! from a list CSV of `;`-separated labels (BCE-with-logits, `--pos-weight`).
//!
//! The model is a Hub id or folder, or an architecture name (`resnet18` … `resnet152`) for a
//! randomly initialised network trained from scratch.

mod data;
pub(crate) mod input_size;
mod model;
mod recipes;
mod source;
mod teacher;

pub use model::{ImageClassifier, ImageModel, ImageModelOptions};
pub use recipes::ImageRecipes;
pub use source::ImageBatches;

use crate::families::ModelSource;
use crate::settings::{RunSettings, Task};
use crate::tasks::augment::Augment;
use crate::tasks::launch::RunOutput;
use crate::tasks::output::{write_export, ExportMode};
use crate::tasks::run::{fit_and_test, Prepared, RunReport};
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use data::{open_paths, Splits};
use finetune_core::{Problem, ProblemType};
use finetune_data::image::{ImageDataset, ImageOpenOptions};
use finetune_data::target::TargetSpec;
use finetune_data::{LabelMap, OnBadSample, SkipLog};
use finetune_train::{BatchSource, EvalMetrics, Teacher, TeacherModel};
use std::path::{Path, PathBuf};

/// Trains (fine-tunes, or from scratch for an architecture name) as `s` says, evaluates on the
/// test split, exports into the output.
pub(crate) fn train(s: &RunSettings, source: &ModelSource, out: RunOutput) -> Result<RunReport> {
    let skipped = SkipLog::new();
    let splits = Splits::read(s, source, &skipped)?;
    let device = s.job.open_device()?;
    splits.labels.announce();
    let names = splits.labels.map.names().to_vec();
    let problem = splits.problem;
    let spec = match problem {
        ProblemType::MultiLabelClassification => {
            s.image.recipes.check_multi_label()?;
            TargetSpec::Multi(splits.labels.map.clone())
        }
        _ => TargetSpec::Single(splits.labels.map.clone()),
    };
    let seed = s.train.seed;
    let fresh = source.files.is_none();
    let (image_size, mut why) = input_size::choose(s.image.image_size, fresh, &splits.train);
    if s.job.resume.is_some() && s.image.image_size.is_some() {
        // A resumed run's size comes from its record unless given again.
        why = "the run's record, or --image-size".into();
    }
    let opts = ImageModelOptions {
        labels: Some(names.clone()),
        new_head: splits.labels.new_head,
        problem_type: Some(problem),
        image_size,
        channels: s.image.channels,
        drop_rate: s.job.dropout,
        seed,
    };
    let teacher_source =
        crate::tasks::distill::resolve(s, Task::ImageClassification, problem, &names)?;
    let clf = ImageClassifier::from_source(source, &opts, &device)?;
    let teacher = teacher::load(teacher_source.as_ref(), s, &clf, &device)?;
    let teacher = teacher.as_ref().map(|t| TeacherModel(t.model()));
    crate::tasks::lora::prepare(s, source, Task::ImageClassification, clf.model())?;
    let input = clf.preprocessing().input_size;
    eprintln!("{}", input_size::describe(input, &why));
    // Record the size and problem actually used, and the --pos-weight numbers, so the run can
    // be repeated from `run_config.json`.
    let mut resolved = crate::tasks::class_weights::for_targets(s, &spec, &splits.train.targets())?;
    resolved.data.problem_type = Some(problem);
    if input[1] == input[2] {
        resolved.image.image_size = Some(input[1]);
    }
    let on_bad = s.data.on_bad();
    let aa = s.image.recipes.rand_augment()?;
    let batches = |d: &ImageDataset| {
        clf.batches_with(d, &s.image.augment, aa.clone(), seed, on_bad, &skipped)
    };
    let recipes = &s.image.recipes;
    let mixup = recipes.mixup(splits.labels.map.names().len(), s.train.label_smoothing);
    let train_src = batches(&splits.train)?.with_recipes(mixup, recipes.erasing()?);
    let eval_src = splits.eval.as_ref().map(batches).transpose()?;
    let test_src = splits.test.as_ref().map(batches).transpose()?;
    let mut report = fit_and_test(
        &resolved,
        Task::ImageClassification,
        out,
        Prepared {
            model: clf.model(),
            train: &train_src,
            eval: eval_src.as_ref().map(|b| b as &dyn BatchSource<Tensor>),
            test: test_src.as_ref().map(|b| b as &dyn BatchSource<Tensor>),
            labels: names,
            skipped_samples: 0,
            source,
            teacher: teacher.as_ref().map(|t| t as &dyn Teacher<Tensor>),
        },
    )?;
    report.skipped_samples = skipped
        .messages()
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    Ok(report)
}

/// The images of `paths` (one dataset of any image format, or parquet shards), read with `o`.
pub(crate) fn open_image_data(paths: &[PathBuf], o: &ImageOpenOptions) -> Result<ImageDataset> {
    open_paths(paths, o)?.context("no images: give --train")
}

/// Where [`evaluate`] finds images and labels in tabular data.
#[derive(Debug, Clone)]
pub struct ImageColumns {
    /// Parquet data: the column holding the images (`image` by default).
    pub image: String,
    /// CSV lists and Parquet data: the column holding the labels (`label` by default).
    pub label: String,
}

impl Default for ImageColumns {
    fn default() -> Self {
        Self {
            image: "image".into(),
            label: "label".into(),
        }
    }
}

/// Evaluates a fine-tuned classifier on labelled image data (a folder holding several splits
/// gives its test split); the classes are the model's.
pub fn evaluate(
    source: &ModelSource,
    data: &[PathBuf],
    columns: &ImageColumns,
    batch_size: usize,
    device: &str,
) -> Result<EvalMetrics> {
    let device = finetune_core::select_device(device)?;
    let clf = ImageClassifier::from_source(source, &ImageModelOptions::default(), &device)?;
    let labels = LabelMap::from_names(clf.labels())?;
    let multi_label = matches!(clf.model().problem(), Problem::MultiLabel { .. });
    let skipped = SkipLog::new();
    let ds = open_paths(
        data,
        &ImageOpenOptions {
            split: "test".into(),
            labels: Some(labels),
            label_column: columns.label.clone(),
            image_column: columns.image.clone(),
            skipped: skipped.clone(),
            multi_label,
            ..ImageOpenOptions::default()
        },
    )?
    .with_context(|| "no data to evaluate: give --data".to_string())?;
    let none = Augment::preset("none")?;
    let source = clf.batches(&ds, &none, 0, OnBadSample::Error, &skipped)?;
    Ok(finetune_train::learner::evaluate(
        clf.model(),
        &source,
        batch_size,
    )?)
}

/// Writes `source` again for timm and torchvision, floating-point tensors in `dtype`.
pub(crate) fn export(
    source: &ModelSource,
    output: &Path,
    dtype: Option<DType>,
    mode: ExportMode,
) -> Result<()> {
    let clf = ImageClassifier::from_source(source, &ImageModelOptions::default(), &Device::Cpu)?;
    let model = clf.model();
    write_export(source, model.store(), output, dtype, mode, |tmp| {
        model.export_as(tmp, dtype)
    })
}
