//! Multi-task fine-tuning (`--task-config tasks.toml`): one encoder, a head per task, each
//! task with its own data, labels, problem type and loss weight.
//!
//! - [`config`]: the task file, checked key by key;
//! - `prepare`: each task read, resolved and loaded as a single-task run would be;
//! - [`model`]: the heads on one shared encoder, trained as one model;
//! - [`sampler`] and `batches`: each batch one task's, drawn proportionally or with a
//!   temperature, a function of the seed and the epoch;
//! - `report`: each task evaluated with its own head once training ends;
//! - `export`: a transformers folder per task and the encoder alone.
//!
//! Each task's loss is its head's (the family's, for its problem type) times its weight; the
//! optimizer steps the encoder and every head.

mod batches;
pub mod config;
mod export;
pub mod model;
mod prepare;
mod report;
pub mod sampler;

pub use export::BACKBONE_DIR;
pub use model::{MultiTaskModel, TaskInputs};
pub use report::TaskReport;
pub use sampler::{probabilities, TaskSampler, TaskSampling, DEFAULT_TEMPERATURE};

use crate::families::ModelSource;
use crate::settings::{RunSettings, Task, RUN_CONFIG};
use crate::tasks::launch::RunOutput;
use crate::tasks::run::{fit_and_test, Prepared, RunReport};
use anyhow::{bail, Result};
use batches::TaskBatches;

/// Refuses what a multi-task run does not do (yet), and a task file that does not read; also,
/// without `--task-config`, the multi-task flags. One line each.
pub(crate) fn check_settings(s: &RunSettings) -> Result<()> {
    let t = &s.text;
    let Some(path) = &t.task_config else {
        if t.task_sampling != TaskSampling::Proportional || t.task_temperature.is_some() {
            bail!("--task-sampling and --task-temperature apply to --task-config");
        }
        return Ok(());
    };
    let d = &s.data;
    if !d.train.is_empty() || !d.eval.is_empty() || !d.test.is_empty() || d.dataset.is_some() {
        bail!(
            "--task-config names each task's files (train, eval, test in its [[task]] table): \
             give no --train, --eval, --test or --dataset with it"
        );
    }
    let refused = [
        (
            s.lora.lora || s.lora.adapter.is_some(),
            "--lora and --adapter",
        ),
        (s.train.teacher.is_some(), "--teacher"),
        (s.train.class_weights.is_some(), "--class-weights"),
        (s.train.pos_weight.is_some(), "--pos-weight"),
        (s.hub.push_to_hub, "--push-to-hub"),
        (s.job.distributed, "--distributed"),
    ];
    if let Some((_, flag)) = refused.iter().find(|(on, _)| *on) {
        bail!("{flag} is not supported with --task-config yet");
    }
    if s.job.resume.is_some() {
        bail!(
            "--resume is not supported with --task-config yet: each head keeps its own dropout \
             stream, which checkpoints do not hold"
        );
    }
    if s.train.early_stopping_patience.is_some() || s.train.load_best_at_end {
        bail!(
            "early stopping and --load-best-at-end are not supported with --task-config: each \
             task is evaluated once, after training"
        );
    }
    if let Some(temp) = t.task_temperature {
        if t.task_sampling != TaskSampling::Temperature {
            bail!("--task-temperature applies to --task-sampling temperature");
        }
        if !(temp.is_finite() && temp > 0.0) {
            bail!("--task-temperature must be a number above 0, got {temp}");
        }
    }
    config::read(path)?;
    Ok(())
}

/// The temperature batches are drawn at: 1 for proportional sampling.
fn temperature(s: &RunSettings) -> f64 {
    match s.text.task_sampling {
        TaskSampling::Proportional => 1.0,
        TaskSampling::Temperature => s.text.task_temperature.unwrap_or(DEFAULT_TEMPERATURE),
    }
}

/// Fine-tunes `source` on the tasks of `--task-config`, evaluates each task, exports a
/// folder per task and the shared encoder.
pub(crate) fn train(s: &RunSettings, source: &ModelSource, out: RunOutput) -> Result<RunReport> {
    if out.world.world_size() > 1 {
        bail!("--task-config is not supported in a distributed run (mpirun) yet");
    }
    check_settings(s)?;
    let Some(path) = s.text.task_config.as_deref() else {
        bail!("a multi-task run needs --task-config");
    };
    let specs = config::read(path)?;
    let device = s.job.open_device()?;
    let (mut tasks, mut heads) = (Vec::new(), Vec::new());
    for (i, spec) in specs.iter().enumerate() {
        let (task, clf) = prepare::load(s, spec, i, source, &device)?;
        heads.push((spec.name.clone(), clf, spec.weight));
        tasks.push(task);
    }
    let mut resolved = s.clone();
    resolved.text.max_length = Some(heads[0].1.max_length());
    let model = MultiTaskModel::new(heads)?;
    let sizes: Vec<usize> = tasks.iter().map(|t| t.data.train.len()).collect();
    let probs = probabilities(&sizes, temperature(s));
    for ((t, n), p) in specs.iter().zip(&sizes).zip(&probs) {
        eprintln!(
            "task {}: {n} training rows, weight {}, drawn with probability {p:.3}",
            t.name, t.weight
        );
    }
    let sampler = TaskSampler::new(sizes, probs.clone(), s.train.batch_size, s.train.seed);
    let parts = model
        .heads()
        .iter()
        .zip(&tasks)
        .map(|(h, t)| h.clf.batches(&t.data.train))
        .collect();
    let train = TaskBatches::new(parts, sampler, s.train.batch_size, s.train.seed);
    let mut report = fit_and_test(
        &resolved,
        Task::TextClassification,
        out,
        Prepared {
            model: &model,
            train: &train,
            eval: None,
            test: None,
            labels: Vec::new(),
            skipped_samples: tasks.iter().map(|t| t.skipped).sum(),
            source,
            teacher: None,
        },
    )?;
    if report.outcome != "interrupted" {
        let bs = s.train.eval_batch_size;
        let reports =
            report::evaluate_tasks(&model, &tasks, &probs, bs, &report.summary, &report.output)?;
        complete_task_folders(&resolved, &tasks, &reports, source, &report.output)?;
        report.tasks = Some(reports);
    }
    Ok(report)
}

/// Each task's folder gets what a single-task run's export holds besides the model: the
/// settings a run of that task alone would record (its data, columns, problem type), so `eval`
/// and `predict` read its data as it was read, and its model card with its own results.
fn complete_task_folders(
    resolved: &RunSettings,
    tasks: &[prepare::TaskData],
    reports: &[TaskReport],
    source: &ModelSource,
    output: &std::path::Path,
) -> Result<()> {
    let history = crate::tasks::run::metrics_history(output);
    for (t, r) in tasks.iter().zip(reports) {
        let mut ts = prepare::settings_for(resolved, &t.spec);
        ts.data.problem_type = Some(t.problem);
        let json = serde_json::to_vec_pretty(&ts.resolved_json(Task::TextClassification)?)?;
        let dir = output.join(&t.spec.name);
        finetune_core::fsutil::write_bytes_atomically(&dir.join(RUN_CONFIG), &json)?;
        let facts = crate::tasks::model_card::CardFacts {
            settings: &ts,
            task: Task::TextClassification,
            source,
            results: r
                .test
                .as_ref()
                .or(r.eval.as_ref())
                .map(serde_json::to_value)
                .transpose()?,
            history: &history,
        };
        crate::tasks::model_card::write(&dir, &facts)?;
    }
    Ok(())
}
