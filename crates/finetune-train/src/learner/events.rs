//! What follows each optimizer step: the progress line, the train-loss record every
//! `--logging-steps`, evaluation (on the `--eval-strategy` schedule and at the last step) with
//! the best-metric tracker, the plateau schedule and early stopping, and the checkpoint (every
//! `--save-steps`, at the end, at a new best under `--load-best-at-end`, on early stopping or an
//! interrupt) with the rotation of old ones.

use super::run::Run;
use super::step::{last_good_checkpoint, StepResult};
use super::{Learner, Outcome};
use crate::checkpoint;
use crate::ema::ModelEma;
use crate::evaluate::{describe, flatten_eval};
use crate::feature_cache::Feed;
use crate::hf_log::{python_dict, round_to};
use crate::metrics::{EvalMetrics, Metric};
use candle_core::DType;
use finetune_core::{Error, ParamStore, Result, TrainModel};
use serde_json::json;
use std::sync::atomic::Ordering;

impl<M: TrainModel + ?Sized> Learner<'_, M> {
    /// Logs, evaluates and checkpoints after `step` as the settings ask; sets `run.outcome`
    /// when the run should stop.
    pub(super) fn after_step(
        &self,
        run: &mut Run,
        step: &StepResult,
        eval: Option<&Feed<'_, M::Inputs>>,
    ) -> Result<()> {
        let done = run.state.global_step;
        let elapsed = run.started.elapsed().as_secs_f64().max(1e-9);
        let sps = (run.state.samples_seen - run.start_samples) as f64 / elapsed;
        run.progress.step(
            done,
            format!(
                "loss {:.4} lr {:.2e} {sps:.1} samples/s",
                step.loss, step.lr
            ),
        );
        self.log_train_loss(run, step, sps)?;
        let mut save = self
            .config
            .save_steps
            .is_some_and(|s| done.is_multiple_of(s))
            || done == run.state.total_steps;
        if let Some(eval) = eval {
            save |= self.evaluate_if_due(run, eval)?;
        }
        if self.any_interrupted(self.interrupt.load(Ordering::SeqCst))? {
            run.outcome = Outcome::Interrupted;
            save = true;
        }
        if save {
            self.save_checkpoint(run)?;
        }
        Ok(())
    }

    /// The mean train loss since the last record, every `--logging-steps` and at the end,
    /// with the step's gradient norm (before clipping) and learning rate — every group's when
    /// they differ — as transformers logs them.
    fn log_train_loss(&self, run: &mut Run, step: &StepResult, samples_per_s: f64) -> Result<()> {
        let lr = step.lr;
        let s = &mut run.state;
        let done = s.global_step;
        let due = done.is_multiple_of(self.config.logging_steps.max(1)) || done == s.total_steps;
        if !due || s.pending_samples == 0 {
            return Ok(());
        }
        let (epoch, loss) = (
            done as f64 / s.steps_per_epoch as f64,
            s.pending_loss / s.pending_samples.max(1) as f64,
        );
        let mut rec = json!({
            "step": done, "epoch": epoch, "loss": loss, "lr": lr, "samples_per_s": samples_per_s,
        });
        let mut line = vec![("loss", round_to(loss, 4))];
        if let Some(norm) = step.grad_norm {
            rec["grad_norm"] = json!(norm);
            line.push(("grad_norm", norm));
        }
        if let Some(groups) = &step.group_lrs {
            let by_name: serde_json::Map<String, serde_json::Value> = groups
                .iter()
                .map(|(n, lr)| (n.clone(), json!(lr)))
                .collect();
            rec["learning_rates"] = json!(by_name);
        }
        run.log.write(&rec)?;
        line.extend([("learning_rate", lr), ("epoch", round_to(epoch, 2))]);
        run.progress.log(python_dict(&line));
        s.log_history.push(rec);
        (s.pending_loss, s.pending_samples) = (0.0, 0);
        Ok(())
    }

    /// Evaluates when `--eval-strategy` says so (and at the last step) — every rank of a
    /// distributed run its share, all getting the same metrics — and feeds the metric to the
    /// best-checkpoint tracker, the plateau schedule and early stopping. Returns whether a
    /// checkpoint is wanted (a new best under `--load-best-at-end`, early stopping).
    fn evaluate_if_due(&self, run: &mut Run, eval: &Feed<'_, M::Inputs>) -> Result<bool> {
        let c = &self.config;
        let done = run.state.global_step;
        if !c.eval_due(done, run.state.steps_per_epoch, run.state.total_steps) {
            return Ok(false);
        }
        let value = self.evaluate_and_log(run, eval)?;
        let mut save = run.state.best.observe(value, done) && c.load_best_at_end;
        run.scheduler.observe_metric(value);
        if run.state.best.should_stop(c.early_stopping_patience) {
            run.progress.say(format!(
                "early stopping: no better {} in {} evaluations",
                c.metric, run.state.best.bad_evals
            ));
            run.outcome = Outcome::StoppedEarly;
            save = true;
        }
        Ok(save)
    }

    /// Evaluates the model (and its moving average), logs and prints the results, and gives
    /// the value of `--metric`.
    fn evaluate_and_log(&self, run: &mut Run, eval: &Feed<'_, M::Inputs>) -> Result<f64> {
        let c = &self.config;
        let done = run.state.global_step;
        let epoch = done as f64 / run.state.steps_per_epoch as f64;
        let progress = &run.progress;
        let m = self.evaluate_feed_together(eval, &|at, n| {
            progress.message(format!("evaluating {at}/{n} samples"))
        })?;
        let mut rec = json!({"step": done, "epoch": epoch});
        flatten_eval(&mut rec, &m, "eval");
        let ema = self.evaluate_ema(run, eval)?;
        if let Some(e) = &ema {
            flatten_eval(&mut rec, e, "eval_ema");
        }
        run.log.write(&rec)?;
        run.progress.log(eval_line(&m, "eval", epoch));
        if let Some(e) = &ema {
            run.progress.log(eval_line(e, "eval_ema", epoch));
        }
        run.state.log_history.push(rec);
        let value = m.get(c.metric).ok_or_else(|| {
            Error::config(format!(
                "--metric {} does not apply to this problem ({:?})",
                c.metric,
                self.model.problem()
            ))
        })?;
        run.progress
            .say(format!("step {done} (epoch {epoch:.2}): {}", describe(&m)));
        if let Some(e) = &ema {
            run.progress.say(format!(
                "step {done} (epoch {epoch:.2}) EMA: {}",
                describe(e)
            ));
        }
        run.final_eval = Some(m);
        Ok(value)
    }

    /// The evaluation of the moving average (`--model-ema`), swapped into the model for it
    /// and the live weights put back after.
    fn evaluate_ema(&self, run: &Run, eval: &Feed<'_, M::Inputs>) -> Result<Option<EvalMetrics>> {
        let Some(ema) = &run.ema else {
            return Ok(None);
        };
        let store = self.model.store();
        let live = ema.swap_in(store)?;
        let progress = &run.progress;
        let m = self.evaluate_feed_together(eval, &|at, n| {
            progress.message(format!("evaluating the EMA {at}/{n} samples"))
        });
        ModelEma::restore(store, &live)?;
        Ok(Some(m?))
    }

    /// A checkpoint of the step just done (weights must be finite), then the rotation: rank 0
    /// writes it, every rank hands over its dropout stream.
    fn save_checkpoint(&self, run: &mut Run) -> Result<()> {
        self.record_rngs(&mut run.state)?;
        if !self.writes() {
            return Ok(());
        }
        let store = self.model.store();
        let done = run.state.global_step;
        let bad = non_finite_tensors(store)?;
        if !bad.is_empty() {
            return Err(Error::config(format!(
                "the weights became non-finite at step {done} ({}); stopping without saving \
                 them. {}",
                bad.join(", "),
                last_good_checkpoint(&self.output)
            )));
        }
        let dir = checkpoint::save(
            &self.output,
            &|d| {
                // A LoRA run's checkpoint is its adapter (PEFT's folder), not the whole model.
                match store.lora() {
                    Some(_) => finetune_core::lora::peft::save(store, d, None)?,
                    None => self.model.export(d)?,
                }
                if let Some(ema) = &run.ema {
                    ema.save(d)?;
                }
                self.write_run_files(d)
            },
            store,
            &run.optimizer.state()?,
            &run.scheduler.state(),
            &run.state,
        )?;
        checkpoint::rotate(
            &self.output,
            self.config.save_total_limit,
            run.state.best.best_step,
        )?;
        if run.outcome == Outcome::Interrupted {
            run.progress
                .say(format!("interrupted: saved {}", dir.display()));
        }
        Ok(())
    }
}

/// transformers' line for an evaluation: `{'eval_loss': …, 'eval_accuracy': …, 'epoch': …}`
/// (`prefix` `eval`; `eval_ema` for the moving average's),
/// every metric `--metric` can name that the evaluation has.
fn eval_line(m: &EvalMetrics, prefix: &str, epoch: f64) -> String {
    let names: Vec<String> = Metric::ALL
        .iter()
        .map(|k| format!("{prefix}_{k}"))
        .collect();
    let mut pairs: Vec<(&str, f64)> = Metric::ALL
        .iter()
        .zip(&names)
        .filter_map(|(k, name)| Some((name.as_str(), m.get(*k)?)))
        .collect();
    pairs.push(("epoch", round_to(epoch, 2)));
    python_dict(&pairs)
}

/// Names of the store's floating-point tensors holding a NaN or an infinity.
fn non_finite_tensors(store: &ParamStore) -> Result<Vec<String>> {
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
