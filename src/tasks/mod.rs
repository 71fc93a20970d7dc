//! Tasks: a run's settings turned into a fine-tuned, evaluated, exported model — the wiring of
//! a model family, the data crate, the hub and the learner, shared by the `finetune` CLI and the
//! examples (which only build settings and print reports).
//!
//! - [`train`]: the entry point; resolves the model once and hands over to its task;
//! - [`text`], [`image`] and [`token`]: each task's model, data and batches;
//! - [`run`]: the fit → test sequence both tasks end in, and the [`RunReport`];
//! - [`launch`]: alone or one rank of a data-parallel job (`--distributed`), and the folder
//!   each process writes into;
//! - [`output`]: the output folder (locked; refusing to mix runs, `--overwrite`) and atomic
//!   exports;
//! - [`class_weights`]: `--class-weights` resolved from the training labels;
//! - [`distill`]: the `--teacher` a run distils from, resolved and checked;
//! - [`labels`]: the run's classes and whether the checkpoint's head stays (both tasks);
//! - [`lora`]: the run's LoRA adapters (new, or carried on from `--adapter`);
//! - [`meta`]: `finetune meta-train`, Reptile meta-learning of a few-shot initialisation;
//! - [`model_card`]: the `README.md` every export gets;
//! - [`push`]: the final export pushed to the Hub (`--push-to-hub`);
//! - [`splits`]: the files of each split, validation splits and seeded samples;
//! - [`prediction`]: the `predict --json` schema;
//! - [`augment`]: the `--augment` presets.

pub mod augment;
pub mod class_weights;
pub mod distill;
pub mod image;
pub mod labels;
pub mod launch;
pub mod lora;
pub mod meta;
pub mod model_card;
pub mod output;
pub mod prediction;
pub mod push;
pub mod run;
pub mod splits;
pub mod text;
pub mod token;

pub use output::ExportMode;
pub use prediction::Prediction;
pub use run::RunReport;

use crate::families::{self, ModelSource};
use crate::settings::{RunSettings, Task};
use anyhow::Result;
use candle_core::DType;
use std::path::Path;

/// Fine-tunes as `settings` say: checks the settings and the output folder, resolves the model
/// once, trains, evaluates on the test split and exports into the output folder. In a
/// distributed run (see [`launch`]) every rank calls it; rank 0 alone writes and reports.
pub fn train(settings: &RunSettings) -> Result<RunReport> {
    let (task, model, output) = settings.required()?;
    settings.train.validate()?;
    let out = launch::open(output, &settings.job)?;
    // Rank 0 downloads what the run reads from the Hub (the model; in a distributed run a
    // teacher and a dataset too) while the others wait, then read it from the cache.
    let distributed = out.world.world_size() > 1;
    let source = launch::rank_zero_first(out.world.as_ref(), || {
        let source = families::resolve(model, settings.job.allow_pickle, Some(task))?;
        if let Some(teacher) = settings.train.teacher.as_ref().filter(|_| distributed) {
            families::resolve(teacher, settings.job.allow_pickle, Some(task))?;
        }
        if let Some(ds) = settings.data.dataset.as_deref().filter(|_| distributed) {
            let d = &settings.data;
            splits::split_files(Some(ds), &d.train, &d.eval, &d.test)?;
        }
        families::with_adapter(source, settings.lora.adapter.as_deref())
    })?;
    source.check_task(task)?;
    match task {
        Task::TextClassification => text::train(settings, &source, out),
        Task::ImageClassification => image::train(settings, &source, out),
        Task::TokenClassification => token::train(settings, &source, out),
    }
}

/// Re-exports a model folder (a training output or one of its `checkpoint-STEP` folders) in
/// its ecosystem's layout, floating-point tensors in `dtype`.
pub fn export(model: &Path, output: &Path, dtype: Option<DType>) -> Result<()> {
    export_with(model, output, dtype, ExportMode::Both)
}

/// [`export`], choosing what a model carrying LoRA adapters exports (a LoRA checkpoint is an
/// adapter folder: its base comes from `adapter_config.json`).
pub fn export_with(
    model: &Path,
    output: &Path,
    dtype: Option<DType>,
    mode: ExportMode,
) -> Result<()> {
    let source = families::resolve(&model.display().to_string(), false, None)?;
    match source.task() {
        Task::TextClassification => text::export(&source, output, dtype, mode),
        Task::ImageClassification => image::export(&source, output, dtype, mode),
        Task::TokenClassification => token::export(&source, output, dtype, mode),
    }
}

/// The source of a fine-tuned model named by the user (for `eval`, `predict`, `export`).
pub fn open(model: &str) -> Result<ModelSource> {
    families::resolve(model, false, None)
}
