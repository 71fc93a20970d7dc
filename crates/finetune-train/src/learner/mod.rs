//! The training loop, as a short sequence of named steps, each in a file of its own:
//! - `run.rs`: set-up — the data's step plan, the freeze mask, optimizer and schedule, a resumed
//!   checkpoint, the (cached) feeds, the metrics log;
//! - `mask.rs`: the freeze rules in force in an epoch (gradual unfreezing);
//! - `step.rs`: one optimizer step — micro-batches, backward, accumulation, penalties, the NaN
//!   policy, clipping, the optimizer and the schedule;
//! - `events.rs`: what follows a step — the log, evaluation, early stopping, checkpoints and
//!   their rotation;
//! - `finish.rs`: the end — the best checkpoint loaded back, export, plot and summary.
//!
//! Order and resume: everything a step needs — the epoch and batch indices
//! ([`StepOrder`](crate::order::StepOrder)), the trainable mask under gradual unfreezing — is a
//! function of the global step, so a checkpoint only stores the step, the optimizer, the
//! schedule, the model's dropout RNG, the weights and the log (with the train loss not yet
//! logged), and a resumed run repeats the uninterrupted one exactly, `metrics.jsonl` included.
//!
//! Accumulation: each micro-batch's mean loss is weighted by its share of the step's samples, so
//! the accumulated gradient is the gradient of the mean loss over the whole step.

mod events;
mod finish;
mod mask;
mod optimizer;
mod progress;
mod ranks;
mod run;
mod step;

pub use crate::evaluate::{describe, evaluate};

use crate::distributed::{Collective, Solo};
use crate::evaluate::evaluate_feed;
use crate::output_dir::{OutputDir, OutputMode};
use crate::source::BatchSource;
use crate::summary::TrainSummary;
use crate::{TrainConfig, UnfreezeSchedule};
use finetune_core::{Error, FreezeSpec, ParamLayout, Result, TrainModel};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every planned optimizer step ran (`--max-steps`, or the epochs' steps).
    Completed,
    /// Early stopping ended the run: `--early-stopping-patience` evaluations in a row without
    /// a better `--metric` (transformers' `EarlyStoppingCallback`).
    StoppedEarly,
    /// Stopped by the interrupt flag (Ctrl-C) after saving a checkpoint.
    Interrupted,
}

/// The training loop over a [`TrainModel`] (transformers' `Trainer`): built from the model,
/// its [`TrainConfig`] and an output folder, it trains with [`Learner::fit`], writing
/// checkpoints (`checkpoint-STEP/`), `metrics.jsonl`, `loss.png`, `train_summary.json` and
/// the model's export into that folder. It borrows the model and changes its weights and
/// trainable mask in place.
///
/// The output folder is locked for the learner's lifetime (a second writer is refused), and a
/// fresh run refuses a folder holding an earlier run's results ([`OutputDir`]).
pub struct Learner<'m, M: TrainModel + ?Sized> {
    model: &'m M,
    config: TrainConfig,
    output: PathBuf,
    dir: OutputDir,
    run_files: Vec<(String, Vec<u8>)>,
    layout: ParamLayout,
    base_freeze: FreezeSpec,
    unfreeze: Option<UnfreezeSchedule>,
    interrupt: Arc<AtomicBool>,
    title: String,
    quiet: bool,
    teacher: Option<&'m dyn crate::Teacher<M::Inputs>>,
    collective: Rc<dyn Collective>,
}

impl<'m, M: TrainModel + ?Sized> Learner<'m, M> {
    /// A learner writing into `output` (created if needed and locked; a folder holding an
    /// earlier run's results is refused when [`Learner::fit`] starts, unless it resumes).
    /// Applies nothing to the model yet.
    pub fn new(model: &'m M, config: TrainConfig, output: &Path) -> Result<Self> {
        Self::with_output(model, config, OutputDir::lock(output)?)
    }

    /// A learner writing into an output folder already locked (and perhaps prepared, e.g.
    /// with [`OutputMode::Overwrite`]) by the caller.
    pub fn with_output(model: &'m M, config: TrainConfig, dir: OutputDir) -> Result<Self> {
        config.validate()?;
        let layout = model.layout();
        let (base_freeze, unfreeze) = mask::rules(&config, &layout, model.store())?;
        Ok(Self {
            model,
            config,
            output: dir.path().to_path_buf(),
            dir,
            run_files: Vec::new(),
            layout,
            base_freeze,
            unfreeze,
            interrupt: Arc::new(AtomicBool::new(false)),
            title: "training curves".into(),
            quiet: false,
            teacher: None,
            collective: Rc::new(Solo),
        })
    }

    /// Replaces the gradual-unfreezing schedule (e.g. one built with
    /// [`UnfreezeSchedule::every`]).
    pub fn with_unfreeze_schedule(mut self, schedule: UnfreezeSchedule) -> Self {
        self.unfreeze = Some(schedule);
        self
    }

    /// Distils from `teacher` ([`crate::distill`]): the training loss takes its logits as
    /// soft targets, weighted by the config's `distill_alpha` at `distill_temperature`. The
    /// config's `teacher` names it in the summary.
    pub fn with_teacher(mut self, teacher: &'m dyn crate::Teacher<M::Inputs>) -> Self {
        self.teacher = Some(teacher);
        self
    }

    /// Trains data-parallel with the other ranks of `collective` ([`crate::distributed`]):
    /// the config's `batch_size` is each rank's, the step plan's is `world_size` times it.
    /// The evaluation during training is shared between the ranks; only rank 0 logs and writes
    /// checkpoints and the export into the output folder: give the other ranks a folder of
    /// their own (a scratch one).
    pub fn with_collective(mut self, collective: Rc<dyn Collective>) -> Self {
        self.collective = collective;
        self
    }

    /// Whether this process writes the run's results (always, but for ranks other than 0 of
    /// a distributed run).
    fn writes(&self) -> bool {
        self.collective.is_writer()
    }

    /// A file describing the run (e.g. the application's resolved settings), written into the
    /// output folder when [`Learner::fit`] starts and into every checkpoint, as transformers
    /// keeps `training_args.bin` beside each checkpoint: a checkpoint copied elsewhere still
    /// says how it was made.
    pub fn with_run_file(mut self, name: &str, bytes: Vec<u8>) -> Self {
        self.run_files.push((name.to_string(), bytes));
        self
    }

    /// The run's settings as text (TensorBoard's `args`): the first run file (the
    /// application's resolved settings) when there is one, else the training settings.
    fn settings_text(&self) -> String {
        match self.run_files.first() {
            Some((_, bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            None => serde_json::to_string_pretty(&self.config).unwrap_or_default(),
        }
    }

    /// Writes the run files into `dir` (atomically, each).
    fn write_run_files(&self, dir: &Path) -> Result<()> {
        for (name, bytes) in &self.run_files {
            finetune_core::fsutil::write_bytes_atomically(&dir.join(name), bytes)?;
        }
        Ok(())
    }

    /// Prints nothing on stderr while training (no bar, no plan, evaluation or log lines;
    /// warnings aside): for programs with their own output. Everything still goes to
    /// `metrics.jsonl` and the summary.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Sets the title of `loss.png` (the model and task, say); default `training curves`.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// The flag that stops the run (after a checkpoint) at the next optimizer step.
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        self.interrupt.clone()
    }

    /// Sets the interrupt flag on Ctrl-C (SIGINT/SIGTERM). Once per process.
    pub fn stop_on_ctrl_c(&self) -> Result<()> {
        let flag = self.interrupt.clone();
        ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
            .map_err(|e| Error::config(format!("cannot install the Ctrl-C handler: {e}")))
    }

    /// The settings the learner runs with (validated by [`Learner::new`]).
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Mean loss and metrics over `data`, in order, in eval mode.
    /// A [`SampleBar`](crate::SampleBar) shows its progress on a terminal, unless
    /// `--no-progress`.
    pub fn evaluate(&self, data: &dyn BatchSource<M::Inputs>) -> Result<crate::EvalMetrics> {
        if !self.config.progress || self.quiet {
            let feed = crate::feature_cache::Feed::direct(data);
            return evaluate_feed(self.model, &feed, self.config.eval_batch_size, &|_, _| {});
        }
        evaluate(self.model, data, self.config.eval_batch_size)
    }

    /// Trains on `train`, evaluating on `eval` when given; resumes from a checkpoint folder.
    pub fn fit(
        &self,
        train: &dyn BatchSource<M::Inputs>,
        eval: Option<&dyn BatchSource<M::Inputs>>,
        resume: Option<&Path>,
    ) -> Result<(Outcome, TrainSummary)> {
        self.dir.prepare(match resume {
            Some(_) => OutputMode::Resume,
            None => OutputMode::Fresh,
        })?;
        let (mut run, feeds) = self.start(train, eval, resume)?;
        // Once the run is under way: a resume refused by the checkpoint leaves the record as
        // it was.
        self.write_run_files(&self.output)?;
        std::thread::scope(|scope| -> Result<()> {
            let shard = (self.collective.rank(), self.collective.world_size());
            let batches =
                crate::prefetch::spawn(scope, &feeds.train, run.order, run.steps_left(), shard);
            while !run.done() {
                let step = batches.next()?;
                self.enter_epoch(&mut run, step.epoch)?;
                let step = self.train_step(&mut run, &step)?;
                self.after_step(&mut run, &step, feeds.eval.as_ref())?;
                if run.outcome != Outcome::Completed {
                    break;
                }
            }
            Ok(())
        })?;
        run.progress.finish();
        self.finish(run, feeds.eval.as_ref())
    }

    /// [`Learner::evaluate_feed`] shared by every rank of a distributed run, each evaluating
    /// its share of the batches; every rank gets the metrics of the whole set.
    fn evaluate_feed_together(
        &self,
        data: &crate::feature_cache::Feed<'_, M::Inputs>,
        progress: &dyn Fn(usize, usize),
    ) -> Result<crate::EvalMetrics> {
        crate::evaluate::evaluate_feed_on(
            self.model,
            data,
            self.config.eval_batch_size,
            progress,
            self.collective.as_ref(),
        )
    }

    /// The mean loss and metrics of a (possibly cached) data set, in eval mode;
    /// `progress(done, total)` after each batch.
    fn evaluate_feed(
        &self,
        data: &crate::feature_cache::Feed<'_, M::Inputs>,
        progress: &dyn Fn(usize, usize),
    ) -> Result<crate::EvalMetrics> {
        evaluate_feed(self.model, data, self.config.eval_batch_size, progress)
    }
}
