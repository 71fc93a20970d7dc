//! One optimizer step: each micro-batch's forward, loss (with the L1/L2 penalties) and
//! recorded backward, accumulated with the weight of its share of the step's samples; the NaN
//! policy; gradient clipping; the optimizer's update and the schedule's next lr.

use super::run::Run;
use super::Learner;
use crate::config::OnNan;
use crate::feature_cache::{self, Fed};
use crate::prefetch::StepBatches;
use crate::source::Batch;
use candle_core::{DType, Tensor};
use finetune_core::{
    Error, GradAccumulator, Grads, Output, ParamStore, PatternSet, Problem, Result, TrainModel,
};
use finetune_kernels::tape::Recording;
use serde_json::json;

/// What one optimizer step did.
pub(super) struct StepResult {
    /// The mean training loss over the step's samples.
    pub(super) loss: f64,
    /// The lr the step trained with (the first group's).
    pub(super) lr: f64,
    /// Every param group's lr, when they differ (`--head-lr`, layer-wise decay).
    pub(super) group_lrs: Option<Vec<(String, f64)>>,
    /// The gradients' global L2 norm before clipping (`None` for a skipped step).
    pub(super) grad_norm: Option<f64>,
}

/// A step's gradients (none when skipped), mean loss, and the reason for a skip.
type LocalStep = (Option<Grads>, f64, Option<String>);

type Penalty = fn(&ParamStore, &PatternSet, f64) -> finetune_core::Result<Option<Tensor>>;

impl<M: TrainModel + ?Sized> Learner<'_, M> {
    /// Trains on one step's micro-batches (this rank's share of them).
    pub(super) fn train_step(
        &self,
        run: &mut Run,
        planned: &StepBatches<M::Inputs>,
    ) -> Result<StepResult> {
        let step = run.state.global_step;
        let (epoch, samples) = (planned.epoch, planned.samples);
        run.scheduler.apply(run.optimizer.as_mut());
        let scale = run.state.loss_scaler.map(|s| s.scale);
        let local = self.gradients(&planned.batches, samples, step, epoch, scale)?;
        let (mut grads, loss, mut skipped) =
            self.reduce_over_ranks(local, step, scale.is_some())?;
        let mut grad_norm = None;
        if skipped.is_none() {
            (skipped, grad_norm) = self.clip_and_check(grads.as_mut(), step, scale.is_some())?;
        }
        if let Some(scaler) = &mut run.state.loss_scaler {
            scaler.update(skipped.is_some());
        }
        match (&skipped, grads) {
            (None, Some(grads)) => {
                run.optimizer.step(self.model.store(), &grads)?;
                if let Some(ema) = &mut run.ema {
                    ema.update(self.model.store(), step + 1)?;
                }
            }
            (Some(why), _) => {
                let rec = match &run.state.loss_scaler {
                    Some(s) => {
                        run.progress.say(format!(
                            "{why}; skipped this optimizer step (--fp16: loss scale now {})",
                            s.scale
                        ));
                        json!({"step": step + 1, "skipped": true, "reason": why,
                               "loss_scale": s.scale})
                    }
                    None => {
                        run.progress.say(format!(
                            "{why}; skipped this optimizer step (--on-nan skip)"
                        ));
                        json!({"step": step + 1, "skipped": true, "reason": why})
                    }
                };
                run.log.write(&rec)?;
                run.state.log_history.push(rec);
            }
            (None, None) => unreachable!("a step without a skip has gradients"),
        }
        let groups = run.optimizer.groups();
        let lr = groups.first().map(|g| g.lr).unwrap_or(0.0);
        let group_lrs = groups
            .iter()
            .any(|g| g.lr != lr)
            .then(|| groups.iter().map(|g| (g.name.clone(), g.lr)).collect());
        run.scheduler.step();
        run.state.global_step += 1;
        run.state.samples_seen += samples as u64;
        if skipped.is_none() {
            run.state.pending_loss += loss * samples as f64;
            run.state.pending_samples += samples as u64;
            run.session_loss.0 += loss;
            run.session_loss.1 += 1;
        }
        Ok(StepResult {
            loss,
            lr,
            group_lrs,
            grad_norm,
        })
    }

    /// The per-label weights of the loss (`--class-weights` or `--pos-weight`, resolved by
    /// the task: `auto` must be numbers by now).
    fn class_weights(&self) -> Result<Option<Vec<f64>>> {
        use crate::class_weights::ClassWeights;
        let c = &self.config;
        let (key, given) = match (&c.class_weights, &c.pos_weight) {
            (Some(w), _) => ("class_weights", w),
            (None, Some(w)) => ("pos_weight", w),
            (None, None) => return Ok(None),
        };
        match ClassWeights::parse_for(key, given)? {
            ClassWeights::Given(w) => Ok(Some(w)),
            ClassWeights::Auto => Err(finetune_core::Error::config(format!(
                "`{key}` auto must be resolved from the training labels before training"
            ))),
        }
    }

    /// The step's accumulated gradients and mean loss; `None` gradients and a reason when a
    /// micro-batch's loss is not finite under `--on-nan skip` or `--fp16` (an overflow). With
    /// a loss `scale` (`--fp16`), each backward runs from the scaled loss and the gradients
    /// come back divided by it.
    fn gradients(
        &self,
        batches: &[Batch<Fed<M::Inputs>>],
        samples: usize,
        step: u64,
        epoch: u64,
        scale: Option<f64>,
    ) -> Result<LocalStep> {
        let c = &self.config;
        let store = self.model.store();
        let every = PatternSet::new(&["*"])?;
        let mut acc = GradAccumulator::new();
        // Each micro-batch's loss stays where it was computed until the step's end: one read
        // for all of them (on a GPU, one synchronisation a step rather than one a
        // micro-batch). A micro-batch whose loss is not finite still runs its backward; the
        // step is then skipped (or stopped) as a whole, as before.
        let mut losses = Vec::with_capacity(batches.len());
        let class_weights = self.class_weights()?;
        for batch in batches {
            // The teacher runs before the recording starts: none of its ops joins the tape.
            let teacher = self.teacher_logits(batch)?;
            let recording = Recording::start();
            let logits = feature_cache::forward(self.model, &batch.inputs, true)?;
            let mut loss = self.training_loss(&logits, &batch.targets, class_weights.as_deref())?;
            if let Some(t) = &teacher {
                loss = crate::distill::loss(c, &loss, &logits, t)?;
            }
            losses.push(loss.detach());
            for (lambda, penalty) in [
                (c.l1, finetune_core::regularize::l1_penalty as Penalty),
                (c.l2, finetune_core::regularize::l2_penalty as Penalty),
            ] {
                if lambda > 0.0 {
                    if let Some(p) = penalty(store, &every, lambda)? {
                        loss = (loss + p.to_dtype(logits.dtype())?)?;
                    }
                }
            }
            let scaled = match scale {
                Some(s) => (&loss * s)?,
                None => loss,
            };
            let grads = Grads::from_backward(store, &recording.backward(&scaled)?);
            let share = batch.len() as f64 / samples as f64;
            // The accumulator's weighting divides the loss scale out in the same pass.
            acc.add(&grads, share / scale.unwrap_or(1.0))?;
        }
        let mut step_loss = 0.0;
        for (batch, value) in batches.iter().zip(read_losses(&losses)?) {
            if !value.is_finite() {
                let why = format!(
                    "the training loss became {value} at step {} (epoch {epoch})",
                    step + 1
                );
                // In a distributed run the ranks decide together (`reduce_over_ranks`).
                let alone = self.collective.world_size() == 1;
                return match c.on_nan {
                    OnNan::Stop if scale.is_none() && alone => Err(self.stopping(why)),
                    _ => Ok((None, step_loss, Some(why))),
                };
            }
            step_loss += value * batch.len() as f64 / samples as f64;
        }
        Ok((Some(acc.take()), step_loss, None))
    }

    /// A distributed step's gradients and loss summed over the ranks (each rank weighted its
    /// micro-batches by the global step's samples, so the sums are the global means), and the
    /// skip every rank takes when one rank's loss was not finite (`scaled`: an `--fp16`
    /// overflow, always a skip). One process: as it is.
    fn reduce_over_ranks(&self, local: LocalStep, step: u64, scaled: bool) -> Result<LocalStep> {
        let coll = self.collective.as_ref();
        if coll.world_size() == 1 {
            return Ok(local);
        }
        let (grads, loss, skipped) = local;
        let mut head = [loss as f32, f32::from(skipped.is_some())];
        coll.all_reduce_sum(&mut head)?;
        let loss = f64::from(head[0]);
        if head[1] > 0.0 {
            let why = skipped.unwrap_or_else(|| {
                format!(
                    "the training loss became non-finite on another rank at step {}",
                    step + 1
                )
            });
            return match self.config.on_nan {
                OnNan::Stop if !scaled => Err(self.stopping(why)),
                _ => Ok((None, loss, Some(why))),
            };
        }
        let store = self.model.store();
        let summed =
            crate::distributed::reduce::all_reduce_grads(coll, store, &grads.unwrap_or_default())?;
        Ok((Some(summed), loss, None))
    }

    /// The teacher's logits of a training batch when the run distils (`--teacher`).
    fn teacher_logits(&self, batch: &Batch<Fed<M::Inputs>>) -> Result<Option<Tensor>> {
        let Some(teacher) = self.teacher else {
            return Ok(None);
        };
        let inputs = match &batch.inputs {
            Fed::Inputs(i) => Some(i),
            Fed::Features(_) => None,
        };
        crate::distill::batch_logits(teacher, batch.teacher.as_ref(), inputs).map(Some)
    }

    /// The loss a training batch takes: the model's own (with `--label-smoothing`), or, for
    /// a single-label model whose batch carries one distribution over the classes per sample
    /// (`[N, C]` float targets: mixup / cutmix, their smoothing already in them), the
    /// soft-target cross-entropy (timm's `SoftTargetCrossEntropy`); with `--class-weights`, the model's
    /// weighted loss.
    fn training_loss(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        class_weights: Option<&[f64]>,
    ) -> Result<Tensor> {
        let soft = targets.rank() == 2
            && targets.dtype().is_float()
            && self.model.output() == Output::PerSample
            && matches!(self.model.problem(), Problem::SingleLabel { .. });
        if soft {
            return Ok(finetune_kernels::ops::soft_target_cross_entropy(
                logits, targets,
            )?);
        }
        let ls = self.config.label_smoothing;
        match class_weights {
            Some(w) => self.model.weighted_loss(logits, targets, ls, w),
            None => self.model.loss(logits, targets, ls),
        }
    }

    /// Clips the gradients' global norm (`--max-grad-norm`), then checks them: a non-finite
    /// gradient stops the run, or under `--on-nan skip` or `--fp16` (`loss_scaled`: an
    /// overflow) gives the reason to skip the step. Also gives the global L2 norm before
    /// clipping (transformers' logged `grad_norm`).
    fn clip_and_check(
        &self,
        grads: Option<&mut Grads>,
        step: u64,
        loss_scaled: bool,
    ) -> Result<(Option<String>, Option<f64>)> {
        let Some(grads) = grads else {
            return Ok((None, None));
        };
        let norm = match self.config.max_grad_norm.filter(|m| *m > 0.0) {
            Some(max) => grads.clip_norm(max, 2.0)?,
            None => grads.global_norm(2.0)?,
        };
        // The 2-norm is summed in f64, where the square of any finite f32 (or f16, bf16) and
        // their sum stay finite: a finite norm means every gradient is finite, and only a
        // non-finite one needs the second pass that names the tensors.
        if norm.is_finite() {
            return Ok((None, Some(norm)));
        }
        let bad = grads.non_finite()?;
        if bad.is_empty() {
            return Ok((None, Some(norm)));
        }
        let why = format!(
            "non-finite gradient at step {} in {}",
            step + 1,
            bad.join(", ")
        );
        match self.config.on_nan {
            _ if loss_scaled => Ok((Some(why), None)),
            OnNan::Skip => Ok((Some(why), None)),
            OnNan::Stop => Err(self.stopping(why)),
        }
    }

    /// The error that stops a run for `why`, naming the checkpoint to resume from.
    pub(super) fn stopping(&self, why: String) -> Error {
        Error::config(format!(
            "{why}; stopping. {}",
            last_good_checkpoint(&self.output)
        ))
    }
}

/// The sentence of an error that names the checkpoint to resume from.
pub(super) fn last_good_checkpoint(output: &std::path::Path) -> String {
    match crate::checkpoint::list(output).pop() {
        Some((_, p)) => format!("The last good checkpoint is {}", p.display()),
        None => "No checkpoint was saved yet".to_string(),
    }
}

/// The micro-batches' losses (0-d tensors of one dtype, on one device) read back together:
/// f64 losses as they are, any other float through f32 (exact for f32, bf16 and f16; Metal
/// has no f64).
fn read_losses(losses: &[Tensor]) -> Result<Vec<f64>> {
    if losses.is_empty() {
        return Ok(Vec::new());
    }
    let all = Tensor::stack(losses, 0)?;
    Ok(if all.dtype() == DType::F64 {
        all.to_vec1::<f64>()?
    } else {
        let v = all.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        v.into_iter().map(f64::from).collect()
    })
}
