//! The end of a run: an interrupted run only reports; otherwise the best checkpoint is loaded
//! back (`--load-best-at-end`, evaluated again; its moving average too), the moving average
//! swapped in under `--export-ema`, the model exported at the top of the output
//! folder, the loss curves plotted, and `train_summary.json` written.

use super::run::Run;
use super::{Learner, Outcome};
use crate::checkpoint;
use crate::feature_cache::Feed;
use crate::hf_log::{python_dict, round_to};
use crate::summary::{peak_memory_bytes, TrainSummary};
use finetune_core::{Error, Result, TrainModel};

impl<M: TrainModel + ?Sized> Learner<'_, M> {
    pub(super) fn finish(
        &self,
        mut run: Run,
        eval: Option<&Feed<'_, M::Inputs>>,
    ) -> Result<(Outcome, TrainSummary)> {
        // A distributed run's other ranks leave the end's files to rank 0.
        if run.outcome != Outcome::Interrupted && self.writes() {
            if self.config.load_best_at_end {
                self.load_best(&mut run, eval)?;
            }
            if self.config.export_ema {
                self.swap_in_ema(&mut run, eval)?;
            }
            self.model.export(&self.output)?;
            // The plot is a view of metrics.jsonl: failing to draw it does not fail the run.
            if let Err(e) = crate::plot::plot_history(
                &self.output.join("loss.png"),
                &run.state.log_history,
                self.config.metric.as_str(),
                &self.title,
            ) {
                run.progress.say(format!("warning: {e}"));
            }
        }
        let summary = self.summary(&run)?;
        run.progress.log(summary_line(&summary));
        Ok((run.outcome, summary))
    }

    /// The best checkpoint's weights back in the model, and its evaluation.
    fn load_best(&self, run: &mut Run, eval: Option<&Feed<'_, M::Inputs>>) -> Result<()> {
        let Some(best) = run.state.best.best_step else {
            return Ok(());
        };
        let dir = checkpoint::dir_for(&self.output, best);
        checkpoint::load(&dir, self.model.store())?;
        if let Some(ema) = &mut run.ema {
            ema.load(&dir)?;
        }
        run.progress
            .say(format!("loaded the best checkpoint ({})", dir.display()));
        if let Some(eval) = eval {
            let progress = &run.progress;
            run.final_eval = Some(self.evaluate_feed(eval, &|at, n| {
                progress.message(format!("evaluating {at}/{n} samples"))
            })?);
        }
        Ok(())
    }

    /// `--export-ema`: the average replaces the live weights for good, so the export, the
    /// run's final evaluation (evaluated again on it) and whatever the caller evaluates next
    /// (the test set) are the average's.
    fn swap_in_ema(&self, run: &mut Run, eval: Option<&Feed<'_, M::Inputs>>) -> Result<()> {
        let Some(ema) = &run.ema else {
            return Ok(());
        };
        ema.swap_in(self.model.store())?;
        run.progress
            .say("exporting the EMA weights (--export-ema)".to_string());
        if let (Some(eval), Some(_)) = (eval, &run.final_eval) {
            let progress = &run.progress;
            run.final_eval = Some(self.evaluate_feed(eval, &|at, n| {
                progress.message(format!("evaluating the EMA {at}/{n} samples"))
            })?);
        }
        Ok(())
    }

    /// The run's summary, also written to `train_summary.json`.
    fn summary(&self, run: &Run) -> Result<TrainSummary> {
        let s = &run.state;
        let runtime = run.started.elapsed().as_secs_f64();
        let trained_steps = s.global_step - run.start_step;
        let per_step = s.samples_seen as f64 / s.global_step.max(1) as f64;
        let summary = TrainSummary {
            global_step: s.global_step,
            epochs_completed: s.global_step as f64 / s.steps_per_epoch as f64,
            train_loss: match run.session_loss {
                (_, 0) => None,
                (sum, steps) => Some(sum / steps as f64),
            },
            // An interrupted run's last evaluation may predate its last steps.
            final_eval: match run.outcome {
                Outcome::Interrupted => None,
                _ => run.final_eval.clone(),
            },
            best_metric: s.best.best,
            best_step: s.best.best_step,
            stopped_early: run.outcome == Outcome::StoppedEarly,
            interrupted: run.outcome == Outcome::Interrupted,
            runtime_s: runtime,
            train_samples_per_s: trained_steps as f64 * per_step / runtime.max(1e-9),
            peak_memory_bytes: peak_memory_bytes(),
            trainable_params: run.counts.trainable,
            total_params: run.counts.total,
            feature_cache: Some(run.cache_report.clone()),
            distillation: run.distill.clone(),
            distributed: (self.collective.world_size() > 1).then(|| {
                crate::summary::DistributedReport {
                    backend: self.collective.backend().to_string(),
                    world_size: self.collective.world_size(),
                    global_batch_size: run.order.batch_size,
                }
            }),
        };
        let json = serde_json::to_vec_pretty(&summary).map_err(|e| Error::config(e.to_string()))?;
        finetune_core::fsutil::write_bytes_atomically(
            &self.output.join("train_summary.json"),
            &json,
        )?;
        Ok(summary)
    }
}

/// transformers' closing line: `{'train_runtime': …, 'train_samples_per_second': …,
/// 'train_loss': …, 'epoch': …}` (without a `train_loss` when no step trained).
fn summary_line(s: &TrainSummary) -> String {
    let mut pairs = vec![
        ("train_runtime", round_to(s.runtime_s, 4)),
        (
            "train_samples_per_second",
            round_to(s.train_samples_per_s, 3),
        ),
    ];
    if let Some(loss) = s.train_loss {
        pairs.push(("train_loss", loss));
    }
    pairs.push(("epoch", round_to(s.epochs_completed, 2)));
    python_dict(&pairs)
}
