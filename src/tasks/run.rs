//! The end every task's run shares: the resolved settings recorded as `run_config.json` (in the
//! output folder and every checkpoint), the learner's fit (resuming when asked), the test split evaluated, and the [`RunReport`].

use crate::families::ModelSource;
use crate::settings::{RunSettings, Task, RUN_CONFIG};
use crate::tasks::launch::RunOutput;
use crate::tasks::model_card::{self, CardFacts};
use anyhow::Result;
use finetune_train::learner::describe;
use finetune_train::{
    BatchSource, EvalMetrics, Learner, Outcome, Teacher, TrainModel, TrainSummary,
};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What a training run produced (either task): the `train --json` report.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// How the run ended: `completed`, `stoppedearly` or `interrupted`.
    pub outcome: String,
    /// The learner's summary, as `train_summary.json` holds it.
    pub summary: TrainSummary,
    /// Metrics on the test split; `None` without one, or after an interrupt.
    pub test: Option<EvalMetrics>,
    /// Class names in id order.
    pub labels: Vec<String>,
    /// The output folder: checkpoints, logs and the exported model.
    pub output: PathBuf,
    /// Parameters that did not train (at the end of the run).
    pub frozen: Vec<String>,
    /// Bad samples skipped under `--skip-bad-samples`, over all splits.
    pub skipped_samples: usize,
    /// The push to the Hub after training (`--push-to-hub`), made by the caller
    /// ([`crate::tasks::push`]); absent when there was none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub: Option<finetune_hub::upload::PushReport>,
    /// A multi-task run's tasks (`--task-config`), each with its own metrics; absent for a
    /// single task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<crate::tasks::text::multitask::TaskReport>>,
    /// This process's rank in a distributed run (0 alone): only rank 0 reports.
    #[serde(skip)]
    pub rank: usize,
}

/// A task's model and the batch sources of its splits.
pub struct Prepared<'a, M: TrainModel + ?Sized> {
    /// The model to train.
    pub model: &'a M,
    /// The training split.
    pub train: &'a dyn BatchSource<M::Inputs>,
    /// The evaluation split, evaluated during training.
    pub eval: Option<&'a dyn BatchSource<M::Inputs>>,
    /// The test split, evaluated once after training.
    pub test: Option<&'a dyn BatchSource<M::Inputs>>,
    /// Class names in id order.
    pub labels: Vec<String>,
    /// Bad samples skipped so far (while reading the splits).
    pub skipped_samples: usize,
    /// Where the model came from (for the model card).
    pub source: &'a ModelSource,
    /// The model to distil from (`--teacher`), loaded and checked by the task.
    pub teacher: Option<&'a dyn Teacher<M::Inputs>>,
}

/// Trains `run.model` as `settings` (resolved: what the run really used) say, then evaluates
/// on the test split when the run was not interrupted. `run_config.json` is written once the
/// learner accepted the settings (freeze patterns included), so a refused run leaves no output.
pub fn fit_and_test<M: TrainModel + ?Sized>(
    settings: &RunSettings,
    task: Task,
    out: RunOutput,
    run: Prepared<'_, M>,
) -> Result<RunReport> {
    let RunOutput {
        dir,
        path: output,
        world,
        scratch: _scratch,
    } = out;
    let (_, model, _) = settings.required()?;
    let record = serde_json::to_vec_pretty(&settings.resolved_json(task)?)?;
    let (writer, rank) = (world.is_writer(), world.rank());
    let mut learner = Learner::with_output(run.model, settings.train.clone(), dir)?
        .with_run_file(RUN_CONFIG, record)
        .with_title(format!("{model} ({})", task.describe()))
        .with_collective(world);
    if let Some(teacher) = run.teacher {
        learner = learner.with_teacher(teacher);
    }
    if !writer {
        learner = learner.quiet();
    }
    learner.stop_on_ctrl_c().ok();
    let resume = match &settings.job.resume {
        Some(w) => Some(finetune_train::checkpoint::resolve(&output, w)?),
        None => None,
    };
    let (outcome, summary) = learner.fit(run.train, run.eval, resume.as_deref())?;
    let frozen = run
        .model
        .store()
        .infos()
        .into_iter()
        .filter(|i| i.kind == finetune_core::TensorKind::Parameter && !i.trainable)
        .map(|i| i.name)
        .collect();
    let test = match (run.test, outcome) {
        (Some(t), Outcome::Completed | Outcome::StoppedEarly) if writer => {
            let m = learner.evaluate(t)?;
            eprintln!("test: {}", describe(&m));
            Some(m)
        }
        _ => None,
    };
    if outcome != Outcome::Interrupted && writer {
        write_card(&output, settings, task, run.source, test.as_ref())?;
    }
    Ok(RunReport {
        outcome: format!("{outcome:?}").to_lowercase(),
        summary,
        test,
        labels: run.labels,
        output,
        frozen,
        skipped_samples: run.skipped_samples,
        hub: None,
        tasks: None,
        rank,
    })
}

/// The model card beside the export: the test results, else the last evaluation's.
/// The rows of the run's `metrics.jsonl` in `output` (none when it is missing), for the model
/// card's training results.
pub(crate) fn metrics_history(output: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(output.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn write_card(
    output: &Path,
    settings: &RunSettings,
    task: Task,
    source: &ModelSource,
    test: Option<&EvalMetrics>,
) -> Result<()> {
    let history = metrics_history(output);
    let results = match test {
        Some(m) => Some(serde_json::to_value(m)?),
        None => history
            .iter()
            .rev()
            .find(|r| r.get("eval_loss").is_some())
            .cloned(),
    };
    let facts = CardFacts {
        settings,
        task,
        source,
        results,
        history: &history,
    };
    model_card::write(output, &facts)
}
