//! The training loop.
//!
//! Order and resume: everything a step needs — the epoch and batch indices ([`StepOrder`]), the
//! trainable mask under gradual unfreezing — is a function of the global step, so
//! a checkpoint only stores the step, the optimizer, the schedule, the model's dropout RNG, the
//! weights and the log (with the train loss not yet logged), and a resumed run repeats the
//! uninterrupted one exactly, `metrics.jsonl` included.
//!
//! Accumulation: each micro-batch's mean loss is weighted by its share of the step's samples, so
//! the accumulated gradient is the gradient of the mean loss over the whole step.

use crate::checkpoint::{self, TrainerState};
use crate::early_stop::BestTracker;
use crate::feature_cache::{self, Feed};
use crate::log::MetricsLog;
use crate::metrics::{ClassificationMetrics, EvalMetrics, MultiLabelMetrics, RegressionMetrics};
use crate::model::{Problem, TrainModel};
use crate::order::StepOrder;
use crate::source::{Batch, BatchSource};
use crate::summary::{peak_memory_bytes, TrainSummary};
use crate::{OnNan, TrainConfig, UnfreezeSchedule};
use candle_core::{DType, Tensor, D};
use finetune_core::groups::{encoder_depth, GroupSpec, LrSpec};
use finetune_core::optim::{Optimizer, OptimizerConfig};
use finetune_core::schedule::LrScheduler;
use finetune_core::{
    Error, FreezeSpec, GradAccumulator, Grads, GroupBuilder, PatternSet, Result, Rng,
};
use finetune_kernels::tape::Recording;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    StoppedEarly,
    /// Stopped by the interrupt flag (Ctrl-C) after saving a checkpoint.
    Interrupted,
}

/// Patterns of the classification head, for `head_lr`.
pub const HEAD_PATTERNS: [&str; 2] = ["classifier.*", "fc.*"];

/// Depth of a parameter for layer-wise lr decay: transformer encoders (`*embeddings*` 0,
/// `*.layer.N.*` N + 1) and ResNets (`conv1`/`bn1` 0, `layerN.*` N); heads are `None`.
pub fn layer_depth(name: &str) -> Option<usize> {
    if let Some(d) = encoder_depth(name) {
        return Some(d);
    }
    if name.starts_with("conv1.") || name.starts_with("bn1.") {
        return Some(0);
    }
    let first = name.split('.').next()?;
    first.strip_prefix("layer")?.parse().ok()
}

pub struct Learner<'m, M: TrainModel> {
    model: &'m M,
    config: TrainConfig,
    output: PathBuf,
    base_freeze: FreezeSpec,
    unfreeze: Option<UnfreezeSchedule>,
    interrupt: Arc<AtomicBool>,
}

impl<'m, M: TrainModel> Learner<'m, M> {
    /// A learner writing into `output` (created if needed). Applies nothing yet.
    pub fn new(model: &'m M, config: TrainConfig, output: &Path) -> Result<Self> {
        config.validate()?;
        // `--unfreeze-every` starts ULMFiT-style: every numbered layer frozen, then the user's
        // patterns.
        let mut freeze: Vec<String> = match (&config.unfreeze_schedule, config.unfreeze_every) {
            (None, Some(_)) => model
                .store()
                .names()
                .into_iter()
                .filter(|n| layer_depth(n).is_some())
                .collect(),
            _ => Vec::new(),
        };
        freeze.extend(config.freeze.iter().cloned());
        let base_freeze = FreezeSpec::from_patterns(&freeze, &config.unfreeze)?;
        base_freeze.check_patterns_match(&model.store().names())?;
        let unfreeze = match (&config.unfreeze_schedule, config.unfreeze_every) {
            (Some(s), _) => Some(UnfreezeSchedule::parse(s)?),
            (None, Some(k)) => Some(UnfreezeSchedule::by_layer(k, &model.store().names())?),
            (None, None) => None,
        };
        if let Some(u) = &unfreeze {
            u.check_patterns_match(&model.store().names())?;
        }
        std::fs::create_dir_all(output).map_err(|e| Error::io(output, e))?;
        Ok(Self {
            model,
            config,
            output: output.to_path_buf(),
            base_freeze,
            unfreeze,
            interrupt: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Replaces the gradual-unfreezing schedule (e.g. one built with
    /// [`UnfreezeSchedule::every`]).
    pub fn with_unfreeze_schedule(mut self, schedule: UnfreezeSchedule) -> Self {
        self.unfreeze = Some(schedule);
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

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Applies the freeze rules in force during `epoch`; returns the trainable count.
    pub fn apply_mask(&self, epoch: u64) -> Result<usize> {
        let spec = match &self.unfreeze {
            Some(u) => u.spec_at(&self.base_freeze, epoch)?,
            None => self.base_freeze.clone(),
        };
        let n = spec.apply_fresh(self.model.store())?;
        if self.config.freeze_bn {
            let store = self.model.store();
            let frozen = |name: &str| !store.is_trainable(name).unwrap_or(true);
            self.model.set_batch_norm_frozen(&frozen)?;
        }
        Ok(n)
    }

    fn build_optimizer(&self) -> Result<Box<dyn Optimizer>> {
        let c = &self.config;
        let mut builder = GroupBuilder::new(c.lr, c.weight_decay);
        if let Some(head_lr) = c.head_lr {
            builder =
                builder.spec(GroupSpec::new("head", &HEAD_PATTERNS)?.lr(LrSpec::Absolute(head_lr)));
        }
        if let Some(decay) = c.layer_lr_decay {
            let layers = self
                .model
                .store()
                .names()
                .iter()
                .filter_map(|n| layer_depth(n))
                .max()
                .unwrap_or(0);
            builder = builder.layer_decay(decay, layers, Arc::new(layer_depth));
        }
        let groups = builder.build(self.model.store())?;
        let mut oc = OptimizerConfig::default_for(&c.optimizer)?;
        match &mut oc {
            OptimizerConfig::Sgd(s) => {
                s.momentum = c.momentum.unwrap_or(s.momentum);
                s.nesterov = c.nesterov;
            }
            OptimizerConfig::Adam(a) | OptimizerConfig::AdamW(finetune_core::optim::AdamW(a)) => {
                if let Some([b1, b2]) = c.betas {
                    a.betas = (b1, b2);
                }
                a.eps = c.eps.unwrap_or(a.eps);
            }
            OptimizerConfig::RmsProp(r) => {
                r.momentum = c.momentum.unwrap_or(r.momentum);
                r.eps = c.eps.unwrap_or(r.eps);
            }
            OptimizerConfig::Lion(l) => {
                if let Some([b1, b2]) = c.betas {
                    l.betas = (b1, b2);
                }
            }
        }
        if c.nesterov && !matches!(oc, OptimizerConfig::Sgd(_)) {
            return Err(Error::config("--nesterov applies to --optimizer sgd only"));
        }
        oc.build(groups)
    }

    fn order(&self, samples: usize) -> StepOrder {
        StepOrder {
            samples,
            batch_size: self.config.batch_size,
            grad_accum: self.config.grad_accum,
            drop_last: self.config.drop_last,
            seed: self.config.seed,
        }
    }

    /// Mean loss and metrics over `data`, in order, in eval mode.
    pub fn evaluate(&self, data: &dyn BatchSource<M::Inputs>) -> Result<EvalMetrics> {
        evaluate(self.model, data, self.config.eval_batch_size)
    }

    /// Trains on `train`, evaluating on `eval` when given; resumes from a checkpoint folder.
    pub fn fit(
        &self,
        train: &dyn BatchSource<M::Inputs>,
        eval: Option<&dyn BatchSource<M::Inputs>>,
        resume: Option<&Path>,
    ) -> Result<(Outcome, TrainSummary)> {
        let c = &self.config;
        let n = train.len();
        let order = self.order(n);
        if order.batches_per_epoch() == 0 {
            return Err(Error::config(format!(
                "the training set has {n} samples: not one batch of {}",
                c.batch_size
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
        let steps_per_epoch = order.steps_per_epoch();
        let total_steps = c.max_steps.unwrap_or(c.epochs * steps_per_epoch);
        let store = self.model.store();
        if let Some(u) = &self.unfreeze {
            u.check_patterns_match(&store.names())?;
        }
        self.apply_mask(0)?;
        let mut optimizer = self.build_optimizer()?;
        let mut scheduler = LrScheduler::new(c.schedule_config(total_steps)?)?;
        scheduler.check_optimizer(optimizer.as_ref())?;
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
            config: c.clone(),
        };
        if let Some(dir) = resume {
            let loaded = checkpoint::load(dir, store)?;
            if loaded.state.total_steps != total_steps
                || loaded.state.steps_per_epoch != steps_per_epoch
            {
                return Err(Error::config(format!(
                    "{}: this checkpoint belongs to a run of {} steps ({} per epoch); the \
                     current settings give {total_steps} ({steps_per_epoch} per epoch)",
                    dir.display(),
                    loaded.state.total_steps,
                    loaded.state.steps_per_epoch
                )));
            }
            optimizer.load_state(loaded.optimizer)?;
            scheduler.load_state(loaded.scheduler)?;
            state = loaded.state;
            if let Some(r) = state.model_rng {
                self.model.set_rng_state(Rng::from_state(r));
            }
        } else {
            self.model
                .set_rng_state(Rng::seed_from_u64(c.seed.wrapping_add(0x5eed)));
        }
        checkpoint::remove_stale_temps(&self.output)?;
        let (train, eval, cache_report, cache_line) =
            feature_cache::feeds(self.model, c, self.unfreeze.is_some(), train, eval)?;
        let (train, eval) = (&train, eval.as_ref());
        let config_json = serde_json::to_vec_pretty(c).map_err(|e| Error::config(e.to_string()))?;
        finetune_core::fsutil::write_bytes_atomically(
            &self.output.join("train_config.json"),
            &config_json,
        )?;
        let mut log = MetricsLog::start(&self.output, &state.log_history)?;
        let counts = store.counts();
        let l1 = PatternSet::new(&["*"])?;

        let bar = progress_bar(c.progress, total_steps, state.global_step);
        // A hidden bar (`--no-progress`, or stderr not a terminal) drops what it is asked to
        // print: the messages then go straight to stderr.
        let say = |msg: String| {
            if bar.is_hidden() {
                eprintln!("{msg}");
            } else {
                bar.println(msg)
            }
        };
        say(format!(
            "training {} steps ({} per epoch, batch {} x accumulation {}); trainable params: {} || all params: {} || trainable%: {:.1}",
            total_steps,
            steps_per_epoch,
            c.batch_size,
            c.grad_accum,
            finetune_core::params::thousands(counts.trainable),
            finetune_core::params::thousands(counts.total),
            counts.trainable_percent()
        ));

        if let Some(line) = cache_line {
            say(line);
        }
        let started = Instant::now();
        let start_step = state.global_step;
        let start_samples = state.samples_seen;
        let mut outcome = Outcome::Completed;
        let mut mask_epoch = None;
        let mut last_train_loss = None;
        let mut final_eval = None;
        let problem = self.model.problem();

        std::thread::scope(|scope| -> Result<()> {
            // Batches are built one step ahead on another thread, in order.
            type Fed<I> = feature_cache::Fed<I>;
            let (tx, rx) =
                std::sync::mpsc::sync_channel::<Result<(u64, Vec<Batch<Fed<M::Inputs>>>)>>(1);
            let first = state.global_step;
            scope.spawn(move || {
                for step in first..total_steps {
                    let plan = order.plan(step);
                    let built: Result<Vec<_>> = plan
                        .batches
                        .iter()
                        .map(|idx| train.batch(idx, plan.epoch, true))
                        .collect();
                    let failed = built.is_err();
                    if tx.send(built.map(|b| (plan.epoch, b))).is_err() || failed {
                        return;
                    }
                }
            });
            while state.global_step < total_steps {
                let step = state.global_step;
                let (epoch, batches) = rx
                    .recv()
                    .map_err(|_| Error::config("the batch producer stopped"))??;
                if mask_epoch != Some(epoch) {
                    let trainable = self.apply_mask(epoch)?;
                    if mask_epoch.is_some()
                        && self.unfreeze.as_ref().is_some_and(|u| u.changes_at(epoch))
                    {
                        say(format!(
                            "epoch {epoch}: gradual unfreezing, {} trainable tensors",
                            trainable
                        ));
                    }
                    mask_epoch = Some(epoch);
                }
                scheduler.apply(optimizer.as_mut());
                let step_samples: usize = batches.iter().map(|b| b.len()).sum();
                let mut acc = GradAccumulator::new();
                let mut step_loss = 0.0;
                // Why this step's update is dropped (`--on-nan skip`).
                let mut skipped: Option<String> = None;
                for batch in &batches {
                    let recording = Recording::start();
                    let logits = feature_cache::forward(self.model, &batch.inputs, true)?;
                    let mut loss = self
                        .model
                        .loss(&logits, &batch.targets, c.label_smoothing)?;
                    let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
                    if !value.is_finite() {
                        let why = format!(
                            "the training loss became {value} at step {} (epoch {epoch})",
                            step + 1
                        );
                        if c.on_nan == OnNan::Skip {
                            skipped = Some(why);
                            break;
                        }
                        return Err(Error::config(format!(
                            "{why}; stopping. {}",
                            last_good_checkpoint(&self.output)
                        )));
                    }
                    for (lambda, f) in [
                        (c.l1, finetune_core::regularize::l1_penalty as PenaltyFn),
                        (c.l2, finetune_core::regularize::l2_penalty as PenaltyFn),
                    ] {
                        if lambda > 0.0 {
                            if let Some(p) = f(store, &l1, lambda)? {
                                loss = (loss + p.to_dtype(logits.dtype())?)?;
                            }
                        }
                    }
                    let grads = Grads::from_backward(store, &recording.backward(&loss)?);
                    let share = batch.len() as f64 / step_samples as f64;
                    acc.add(&grads, share)?;
                    step_loss += value * share;
                }
                let mut grads = acc.take();
                if skipped.is_none() {
                    if let Some(max) = c.max_grad_norm.filter(|m| *m > 0.0) {
                        grads.clip_norm(max, 2.0)?;
                    }
                    let bad = grads.non_finite()?;
                    if !bad.is_empty() {
                        let why = format!(
                            "non-finite gradient at step {} in {}",
                            step + 1,
                            bad.join(", ")
                        );
                        if c.on_nan == OnNan::Stop {
                            return Err(Error::config(format!(
                                "{why}; stopping. {}",
                                last_good_checkpoint(&self.output)
                            )));
                        }
                        skipped = Some(why);
                    }
                }
                match &skipped {
                    None => optimizer.step(store, &grads)?,
                    Some(why) => {
                        say(format!(
                            "{why}; skipped this optimizer step (--on-nan skip)"
                        ));
                        let rec = json!({"step": step + 1, "skipped": true, "reason": why});
                        log.write(&rec)?;
                        state.log_history.push(rec);
                    }
                }
                let lr = optimizer.groups().first().map(|g| g.lr).unwrap_or(0.0);
                scheduler.step();
                state.global_step += 1;
                state.samples_seen += step_samples as u64;
                if skipped.is_none() {
                    state.pending_loss += step_loss * step_samples as f64;
                    state.pending_samples += step_samples as u64;
                    last_train_loss = Some(step_loss);
                }
                let done = state.global_step;
                let elapsed = started.elapsed().as_secs_f64().max(1e-9);
                let sps = (state.samples_seen - start_samples) as f64 / elapsed;
                bar.set_position(done);
                bar.set_message(format!(
                    "loss {step_loss:.4} lr {lr:.2e} {sps:.1} samples/s"
                ));
                let epoch_f = done as f64 / steps_per_epoch as f64;
                if (done.is_multiple_of(c.logging_steps.max(1)) || done == total_steps)
                    && state.pending_samples > 0
                {
                    let rec = json!({
                        "step": done, "epoch": epoch_f,
                        "loss": state.pending_loss / state.pending_samples.max(1) as f64,
                        "lr": lr, "samples_per_s": sps,
                    });
                    log.write(&rec)?;
                    state.log_history.push(rec);
                    (state.pending_loss, state.pending_samples) = (0.0, 0);
                }
                let end_of_epoch = done.is_multiple_of(steps_per_epoch);
                let last = done == total_steps;
                let mut save = c.save_steps.is_some_and(|s| done.is_multiple_of(s)) || last;
                if let Some(eval) = eval {
                    if c.eval_steps.is_some_and(|s| done.is_multiple_of(s)) || end_of_epoch || last
                    {
                        let m = evaluate_feed(self.model, eval, c.eval_batch_size)?;
                        let mut rec = json!({"step": done, "epoch": epoch_f});
                        flatten_eval(&mut rec, &m);
                        log.write(&rec)?;
                        state.log_history.push(rec);
                        let value = m.get(&c.metric).ok_or_else(|| {
                            Error::config(format!(
                                "--metric {} does not apply to this problem ({problem:?})",
                                c.metric
                            ))
                        })?;
                        say(format!(
                            "step {done} (epoch {epoch_f:.2}): {}",
                            describe(&m)
                        ));
                        if state.best.observe(value, done) && c.load_best_at_end {
                            save = true;
                        }
                        scheduler.observe_metric(value);
                        if state.best.should_stop(c.early_stopping_patience) {
                            say(format!(
                                "early stopping: no better {} in {} evaluations",
                                c.metric, state.best.bad_evals
                            ));
                            outcome = Outcome::StoppedEarly;
                            save = true;
                        }
                        final_eval = Some(m);
                    }
                }
                let interrupted = self.interrupt.load(Ordering::SeqCst);
                if interrupted {
                    outcome = Outcome::Interrupted;
                    save = true;
                }
                if save {
                    let bad = non_finite_tensors(store)?;
                    if !bad.is_empty() {
                        return Err(Error::config(format!(
                            "the weights became non-finite at step {done} ({}); stopping \
                             without saving them. {}",
                            bad.join(", "),
                            last_good_checkpoint(&self.output)
                        )));
                    }
                    state.model_rng = self.model.rng_state().map(|r| r.state());
                    let dir = checkpoint::save(
                        &self.output,
                        &|d| self.model.export(d),
                        store,
                        &optimizer.state(),
                        &scheduler.state(),
                        &state,
                    )?;
                    checkpoint::rotate(&self.output, c.save_total_limit, state.best.best_step)?;
                    if interrupted {
                        say(format!("interrupted: saved {}", dir.display()));
                    }
                }
                if outcome != Outcome::Completed {
                    break;
                }
            }
            drop(rx);
            Ok(())
        })?;
        bar.finish_and_clear();

        if outcome == Outcome::Interrupted {
            let summary = self.summary(
                &state,
                outcome,
                None,
                last_train_loss,
                started,
                start_step,
                counts,
                &cache_report,
            )?;
            return Ok((outcome, summary));
        }
        if c.load_best_at_end {
            if let Some(best) = state.best.best_step {
                let dir = checkpoint::dir_for(&self.output, best);
                checkpoint::load(&dir, store)?;
                say(format!("loaded the best checkpoint ({})", dir.display()));
                if let Some(eval) = eval {
                    final_eval = Some(evaluate_feed(self.model, eval, c.eval_batch_size)?);
                }
            }
        }
        self.model.export(&self.output)?;
        crate::plot::plot_history(&self.output.join("loss.png"), &state.log_history, &c.metric)?;
        let summary = self.summary(
            &state,
            outcome,
            final_eval,
            last_train_loss,
            started,
            start_step,
            counts,
            &cache_report,
        )?;
        Ok((outcome, summary))
    }

    #[allow(clippy::too_many_arguments)]
    fn summary(
        &self,
        state: &TrainerState,
        outcome: Outcome,
        final_eval: Option<EvalMetrics>,
        train_loss: Option<f64>,
        started: Instant,
        start_step: u64,
        counts: finetune_core::ParamCounts,
        feature_cache: &feature_cache::FeatureCacheReport,
    ) -> Result<TrainSummary> {
        let runtime = started.elapsed().as_secs_f64();
        let trained_steps = state.global_step - start_step;
        let per_step = state.samples_seen as f64 / state.global_step.max(1) as f64;
        let summary = TrainSummary {
            global_step: state.global_step,
            epochs_completed: state.global_step as f64 / state.steps_per_epoch as f64,
            train_loss,
            final_eval,
            best_metric: state.best.best,
            best_step: state.best.best_step,
            stopped_early: outcome == Outcome::StoppedEarly,
            interrupted: outcome == Outcome::Interrupted,
            runtime_s: runtime,
            train_samples_per_s: trained_steps as f64 * per_step / runtime.max(1e-9),
            peak_memory_bytes: peak_memory_bytes(),
            trainable_params: counts.trainable,
            total_params: counts.total,
            feature_cache: Some(feature_cache.clone()),
        };
        let json = serde_json::to_vec_pretty(&summary).map_err(|e| Error::config(e.to_string()))?;
        finetune_core::fsutil::write_bytes_atomically(
            &self.output.join("train_summary.json"),
            &json,
        )?;
        Ok(summary)
    }
}

/// The sentence of an error that names the checkpoint to resume from.
fn last_good_checkpoint(output: &Path) -> String {
    match checkpoint::list(output).pop() {
        Some((_, p)) => format!("The last good checkpoint is {}", p.display()),
        None => "No checkpoint was saved yet".to_string(),
    }
}

/// Names of the store's floating-point tensors holding a NaN or an infinity.
fn non_finite_tensors(store: &finetune_core::ParamStore) -> Result<Vec<String>> {
    let mut bad = Vec::new();
    for (name, t) in store.tensors() {
        if t.dtype().is_float() {
            let s = t
                .to_dtype(DType::F64)?
                .abs()?
                .sum_all()?
                .to_scalar::<f64>()?;
            if !s.is_finite() {
                bad.push(name);
            }
        }
    }
    Ok(bad)
}

type PenaltyFn = fn(&finetune_core::ParamStore, &PatternSet, f64) -> Result<Option<Tensor>>;

fn progress_bar(enabled: bool, total: u64, at: u64) -> indicatif::ProgressBar {
    let bar = if enabled {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} steps [{elapsed_precise} < {eta_precise}] {msg}",
    ) {
        bar.set_style(style);
    }
    bar.set_position(at);
    bar
}

/// Evaluation of `model` on `data` in batches of `batch_size`, in order, in eval mode.
pub fn evaluate<M: TrainModel + ?Sized>(
    model: &M,
    data: &dyn BatchSource<M::Inputs>,
    batch_size: usize,
) -> Result<EvalMetrics> {
    evaluate_feed(model, &Feed::direct(data), batch_size)
}

/// [`evaluate`] over a feed (cached features or the source).
fn evaluate_feed<M: TrainModel + ?Sized>(
    model: &M,
    data: &Feed<'_, M::Inputs>,
    batch_size: usize,
) -> Result<EvalMetrics> {
    let n = data.len();
    let problem = model.problem();
    let (mut loss_sum, mut truth, mut pred) = (0.0, Vec::new(), Vec::new());
    let (mut truth_f, mut pred_f) = (Vec::new(), Vec::new());
    let (mut truth_m, mut pred_m) = (Vec::new(), Vec::new());
    for start in (0..n).step_by(batch_size.max(1)) {
        let idx: Vec<usize> = (start..(start + batch_size).min(n)).collect();
        let batch = data.batch(&idx, 0, false)?;
        let logits = feature_cache::forward(model, &batch.inputs, false)?;
        let loss = model.loss(&logits, &batch.targets, 0.0)?;
        loss_sum += loss.to_dtype(DType::F64)?.to_scalar::<f64>()? * idx.len() as f64;
        match &problem {
            Problem::SingleLabel { .. } => {
                truth.extend(batch.targets.to_dtype(DType::U32)?.to_vec1::<u32>()?);
                pred.extend(logits.argmax(D::Minus1)?.to_vec1::<u32>()?);
            }
            Problem::Regression => {
                truth_f.extend(
                    batch
                        .targets
                        .flatten_all()?
                        .to_dtype(DType::F64)?
                        .to_vec1::<f64>()?,
                );
                pred_f.extend(
                    logits
                        .flatten_all()?
                        .to_dtype(DType::F64)?
                        .to_vec1::<f64>()?,
                );
            }
            Problem::MultiLabel { .. } => {
                // A label is predicted when its logit is positive (sigmoid > 0.5).
                let rows = |t: &Tensor| -> Result<Vec<Vec<bool>>> {
                    Ok(t.to_dtype(DType::F64)?
                        .to_vec2::<f64>()?
                        .into_iter()
                        .map(|r| r.into_iter().map(|x| x > 0.0).collect())
                        .collect())
                };
                truth_m.extend(rows(&(batch.targets.to_dtype(DType::F64)? - 0.5)?)?);
                pred_m.extend(rows(&logits)?);
            }
        }
    }
    let as_usize = |v: Vec<u32>| v.into_iter().map(|x| x as usize).collect::<Vec<_>>();
    Ok(EvalMetrics {
        loss: loss_sum / n.max(1) as f64,
        samples: n,
        classification: match &problem {
            Problem::SingleLabel { labels } => Some(ClassificationMetrics::compute(
                labels,
                &as_usize(truth),
                &as_usize(pred),
            )),
            _ => None,
        },
        regression: match &problem {
            Problem::Regression => Some(RegressionMetrics::compute(&truth_f, &pred_f)),
            _ => None,
        },
        multi_label: match &problem {
            Problem::MultiLabel { labels } => {
                Some(MultiLabelMetrics::compute(labels, &truth_m, &pred_m))
            }
            _ => None,
        },
    })
}

fn flatten_eval(rec: &mut serde_json::Value, m: &EvalMetrics) {
    if let (Some(obj), Ok(serde_json::Value::Object(fields))) =
        (rec.as_object_mut(), serde_json::to_value(m))
    {
        for (k, v) in fields {
            obj.insert(format!("eval_{k}"), v);
        }
    }
}

/// A one-line account of an evaluation.
pub fn describe(m: &EvalMetrics) -> String {
    let mut s = format!("eval loss {:.4}", m.loss);
    if let Some(c) = &m.classification {
        s += &format!(
            ", accuracy {:.4}, macro F1 {:.4} (precision {:.4}, recall {:.4})",
            c.accuracy, c.f1, c.precision, c.recall
        );
    }
    if let Some(r) = &m.regression {
        s += &format!(", MSE {:.4}, Pearson {:.4}", r.mse, r.pearson);
    }
    if let Some(ml) = &m.multi_label {
        s += &format!(
            ", exact-match accuracy {:.4}, micro F1 {:.4}, macro F1 {:.4}",
            ml.exact_match, ml.micro_f1, ml.macro_f1
        );
    }
    s
}
