//! Setting a run up: the step plan of the training data, the freeze mask of the first epoch,
//! optimizer and schedule, the state of a resumed checkpoint, the feeds (frozen-feature cache
//! or the sources), the metrics log, and the first lines a run prints.

use super::progress::Progress;
use super::{optimizer, Learner, Outcome};
use crate::checkpoint::{self, TrainerState};
use crate::early_stop::BestTracker;
use crate::ema::ModelEma;
use crate::feature_cache::{self, FeatureCacheReport, Feed};
use crate::log::MetricsLog;
use crate::metrics::EvalMetrics;
use crate::order::StepOrder;
use crate::source::BatchSource;
use finetune_core::optim::Optimizer;
use finetune_core::schedule::LrScheduler;
use finetune_core::{Error, ParamCounts, Result, Rng, TrainModel};
use std::path::Path;
use std::time::Instant;

/// Where a run's batches come from: the training and evaluation sets, cached or not.
pub(super) struct Feeds<'a, I> {
    pub(super) train: Feed<'a, I>,
    pub(super) eval: Option<Feed<'a, I>>,
}

/// Everything a run changes as it goes.
pub(super) struct Run {
    pub(super) order: StepOrder,
    pub(super) optimizer: Box<dyn Optimizer>,
    pub(super) scheduler: LrScheduler,
    pub(super) state: TrainerState,
    pub(super) log: MetricsLog,
    pub(super) progress: Progress,
    pub(super) counts: ParamCounts,
    pub(super) cache_report: FeatureCacheReport,
    pub(super) started: Instant,
    /// The step and sample count the run started from (a resumed run's checkpoint).
    pub(super) start_step: u64,
    pub(super) start_samples: u64,
    pub(super) outcome: Outcome,
    /// The epoch whose freeze mask is applied.
    pub(super) mask_epoch: Option<u64>,
    /// The sum of the mean losses of the optimizer steps this process trained, and their
    /// count: `train_summary.json`'s `train_loss` is their quotient.
    pub(super) session_loss: (f64, u64),
    pub(super) final_eval: Option<EvalMetrics>,
    /// The moving average of the weights (`--model-ema`).
    pub(super) ema: Option<ModelEma>,
    /// Distillation's settings and teacher cache, for the summary (`--teacher`).
    pub(super) distill: Option<crate::DistillReport>,
}

impl Run {
    pub(super) fn steps_left(&self) -> std::ops::Range<u64> {
        self.state.global_step..self.state.total_steps
    }

    pub(super) fn done(&self) -> bool {
        self.state.global_step >= self.state.total_steps
    }
}

impl<M: TrainModel + ?Sized> Learner<'_, M> {
    /// Everything up to the first step: checks, mask, optimizer, schedule, resume, feeds, log.
    pub(super) fn start<'a>(
        &self,
        train: &'a dyn BatchSource<M::Inputs>,
        eval: Option<&'a dyn BatchSource<M::Inputs>>,
        resume: Option<&Path>,
    ) -> Result<(Run, Feeds<'a, M::Inputs>)> {
        let c = &self.config;
        let order = self.order(train.len(), eval)?;
        let (steps_per_epoch, total_steps) = (order.steps_per_epoch(), self.total_steps(&order));
        let store = self.model.store();
        if let Some(u) = &self.unfreeze {
            u.check_patterns_match(&store.names())?;
        }
        self.apply_mask(0)?;
        self.join_ranks()?;
        let mut optimizer = optimizer::build(c, &self.layout, store)?;
        let mut scheduler = optimizer::scheduler(c, total_steps, optimizer.as_ref())?;
        let mut state = TrainerState {
            global_step: 0,
            total_steps,
            steps_per_epoch,
            samples_seen: 0,
            model_rng: None,
            best: BestTracker::new(c.greater_is_better()),
            log_history: Vec::new(),
            pending_loss: 0.0,
            pending_samples: 0,
            loss_scaler: None,
            world_size: None,
            rank_rngs: Vec::new(),
            config: c.clone(),
        };
        match resume {
            Some(dir) => {
                state = self.resume_from(dir, &mut optimizer, &mut scheduler, &state)?;
            }
            None => self.model.set_rng_state(self.rank_rng(c.seed)),
        }
        // f16 products need the loss scaled (a checkpoint's scale carries on).
        let fp16 = finetune_kernels::ops::composed_precision()
            == finetune_kernels::ops::MatmulPrecision::F16;
        state.loss_scaler = match fp16 {
            true => Some(state.loss_scaler.unwrap_or_default()),
            false => None,
        };
        let (ema, ema_line) = self.start_ema(resume)?;
        checkpoint::remove_stale_temps(&self.output)?;
        let source = train;
        let (mut train, eval, cache_report, cache_line) =
            feature_cache::feeds(self.model, c, self.unfreeze.is_some(), source, eval)?;
        let (distill, distill_line) =
            match crate::distill::start(self.model, c, self.teacher, source, &mut train)? {
                Some((report, line)) => (Some(report), Some(line)),
                None => (None, None),
            };
        let mut log = MetricsLog::start(&self.output, &state.log_history)?;
        if c.reports_to_tensorboard() && self.writes() {
            let dir = c
                .logging_dir
                .clone()
                .unwrap_or_else(|| self.output.join("runs"));
            log = log.with_tensorboard(&dir, state.global_step, &self.settings_text())?;
        }
        let counts = finetune_core::lora::counts(store);
        let progress = Progress::new(c.progress, self.quiet, total_steps, state.global_step);
        let ranks = match self.collective.world_size() {
            1 => String::new(),
            n => format!(" x {n} ranks ({})", self.collective.backend()),
        };
        progress.say(format!(
            "training {total_steps} steps ({steps_per_epoch} per epoch, batch {}{ranks} x \
             accumulation {}); trainable params: {} || all params: {} || trainable%: {:.1}",
            c.batch_size,
            c.grad_accum,
            finetune_core::params::thousands(counts.trainable),
            finetune_core::params::thousands(counts.total),
            counts.trainable_percent()
        ));
        for line in [cache_line, distill_line, ema_line].into_iter().flatten() {
            progress.say(line);
        }
        let (start_step, start_samples) = (state.global_step, state.samples_seen);
        let run = Run {
            order,
            optimizer,
            scheduler,
            state,
            log,
            progress,
            counts,
            cache_report,
            started: Instant::now(),
            start_step,
            start_samples,
            outcome: Outcome::Completed,
            mask_epoch: None,
            session_loss: (0.0, 0),
            final_eval: None,
            ema,
            distill,
        };
        Ok((run, Feeds { train, eval }))
    }

    /// The state of checkpoint `dir`, its weights loaded into the model and its optimizer and
    /// schedule into `optimizer` and `scheduler`; `fresh` is the state a new run would start
    /// with (its plan and settings).
    fn resume_from(
        &self,
        dir: &Path,
        optimizer: &mut Box<dyn Optimizer>,
        scheduler: &mut LrScheduler,
        fresh: &TrainerState,
    ) -> Result<TrainerState> {
        let (total_steps, steps_per_epoch) = (fresh.total_steps, fresh.steps_per_epoch);
        let mut loaded = checkpoint::load(dir, self.model.store())?;
        let rng = self.resumed_rng(dir, &loaded.state)?;
        check_same_plan(dir, &loaded.state, total_steps, steps_per_epoch)?;
        optimizer.load_state(loaded.optimizer)?;
        if loaded.state.total_steps != total_steps {
            // A longer or shorter run (`epochs`, `max_steps` changed): the schedule is
            // recomputed for the new end, from the step reached, as transformers does.
            let c = &mut loaded.scheduler.config;
            c.total_steps = total_steps;
            c.warmup_steps = scheduler.config().warmup_steps;
            loaded.state.total_steps = total_steps;
        }
        scheduler.load_state(loaded.scheduler)?;
        let mut state = loaded.state;
        // Checkpoints from here on record the settings this run goes on with.
        state.config = fresh.config.clone();
        if let Some(r) = rng {
            self.model.set_rng_state(Rng::from_state(r));
        }
        Ok(state)
    }

    /// The moving average of `--model-ema`, from the weights as they are now (a resumed
    /// checkpoint's), continued from the checkpoint's own average when it has one.
    /// Also gives the line to print when a checkpoint without an average is resumed.
    fn start_ema(&self, resume: Option<&Path>) -> Result<(Option<ModelEma>, Option<String>)> {
        let c = &self.config;
        if !c.model_ema {
            return Ok((None, None));
        }
        let mut ema = ModelEma::new(self.model.store(), c.model_ema_decay, c.model_ema_warmup)?;
        let mut line = None;
        if let Some(dir) = resume {
            if !ema.load(dir)? {
                line = Some(format!(
                    "{}: no {} (a run without --model-ema): the average starts from its weights",
                    dir.display(),
                    crate::ema::EMA_FILE
                ));
            }
        }
        Ok((Some(ema), line))
    }

    /// The step plan over `samples` training samples; refuses data sets that make no run.
    fn order<I>(&self, samples: usize, eval: Option<&dyn BatchSource<I>>) -> Result<StepOrder> {
        let c = &self.config;
        let order = StepOrder {
            samples,
            batch_size: c.batch_size * self.collective.world_size(),
            grad_accum: c.grad_accum,
            drop_last: c.drop_last,
            seed: c.seed,
        };
        if order.batches_per_epoch() == 0 {
            return Err(Error::config(format!(
                "the training set has {samples} samples: not one batch of {}",
                order.batch_size
            )));
        }
        if eval.is_some_and(|e| e.is_empty()) {
            return Err(Error::config("the evaluation set is empty"));
        }
        if eval.is_none() && (c.early_stopping_patience.is_some() || c.load_best_at_end) {
            return Err(Error::config(
                "early stopping and --load-best-at-end need an evaluation set",
            ));
        }
        Ok(order)
    }

    fn total_steps(&self, order: &StepOrder) -> u64 {
        let c = &self.config;
        c.max_steps.unwrap_or(c.epochs * order.steps_per_epoch())
    }
}

/// A checkpoint resumes only the run it came from: the same number of steps, per epoch too.
/// A checkpoint resumes a run with the same steps per epoch (same data and batching); the
/// run may end later or earlier than planned, but not before the step the checkpoint reached.
fn check_same_plan(dir: &Path, saved: &TrainerState, total: u64, per_epoch: u64) -> Result<()> {
    if saved.steps_per_epoch == per_epoch && saved.global_step <= total {
        return Ok(());
    }
    Err(Error::config(format!(
        "{}: this checkpoint belongs to a run of {} steps ({} per epoch), at step {}; the \
         current settings give {total} ({per_epoch} per epoch)",
        dir.display(),
        saved.total_steps,
        saved.steps_per_epoch,
        saved.global_step
    )))
}
