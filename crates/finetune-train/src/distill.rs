//! Knowledge distillation (Hinton et al., 2015): a teacher's softened probabilities as a second
//! target for the student. With `--teacher`, a single-label classifier trains on
//!
//! `loss = (1 − α)·CE(student, labels) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T))`
//!
//! where CE is the run's own loss (label smoothing, class weights and mixup / cutmix targets
//! included: they shape the hard-label term only) and the KL term is PyTorch's
//! `F.kl_div(log_softmax(s/T), softmax(t/T), reduction='batchmean') · T²`
//! ([`finetune_kernels::ops::distillation_kl`]).
//!
//! The teacher is a [`Teacher`]: any model whose eval-mode logits a batch of the student's
//! inputs gives (no dropout, no gradient: its logits are detached). When the training batches
//! are a fixed function of their samples ([`BatchSource::deterministic_train`]: no
//! augmentation), every sample's teacher logits are computed once before the first step, in
//! index order and fixed chunks, so a fresh and a resumed run read the very same values;
//! otherwise the teacher runs on each training batch as it is (augmented), a function of the
//! step too, so resuming stays exact either way.

use crate::source::BatchSource;
use crate::TrainConfig;
use candle_core::Tensor;
use finetune_core::{Error, Output, Problem, Result, TrainModel};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// A model distilled from: its eval-mode logits `[N, C]` of a batch of the student's inputs,
/// outside the autograd graph.
pub trait Teacher<I> {
    /// The logits of `inputs`, detached.
    fn logits(&self, inputs: &I) -> Result<Tensor>;
}

/// A [`TrainModel`] as a teacher: its eval-mode forward (no dropout, batch statistics
/// frozen), detached. Freeze the teacher's store too, so no `Var` takes part at all.
pub struct TeacherModel<'a, M: ?Sized>(pub &'a M);

impl<M: TrainModel + ?Sized> Teacher<M::Inputs> for TeacherModel<'_, M> {
    fn logits(&self, inputs: &M::Inputs) -> Result<Tensor> {
        Ok(self.0.forward_t(inputs, false)?.detach())
    }
}

/// What `train_summary.json` says about distillation (its `distillation` entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistillReport {
    /// The teacher, as `--teacher` named it.
    pub teacher: String,
    /// The weight α of the distillation term.
    pub alpha: f64,
    /// The temperature T.
    pub temperature: f64,
    /// Whether every training sample's teacher logits were computed once (no augmentation)
    /// rather than on every batch.
    pub cached: bool,
    /// Samples whose logits were cached.
    pub cached_samples: usize,
    /// Seconds spent computing them.
    pub cache_seconds: f64,
}

/// The defaults of `distill_alpha` and `distill_temperature` (the flags').
const DEFAULT_ALPHA: f64 = 0.5;
const DEFAULT_TEMPERATURE: f64 = 2.0;

/// The distillation settings' checks: α in [0, 1], T > 0 and finite, and neither changed
/// without a teacher.
pub(crate) fn check(c: &TrainConfig) -> Result<()> {
    let bad = |m: String| Err(Error::config(m));
    if !(0.0..=1.0).contains(&c.distill_alpha) {
        return bad(format!(
            "--distill-alpha must be in [0, 1], got {}",
            c.distill_alpha
        ));
    }
    let t = c.distill_temperature;
    if !(t > 0.0 && t.is_finite()) {
        return bad(format!("--distill-temperature must be > 0, got {t}"));
    }
    if c.teacher.is_none() && (c.distill_alpha != DEFAULT_ALPHA || t != DEFAULT_TEMPERATURE) {
        return bad("--distill-alpha and --distill-temperature need --teacher".into());
    }
    Ok(())
}

/// Refuses a student that distillation does not apply to: one set of logits per sample over
/// single-label classes.
pub fn check_student<M: TrainModel + ?Sized>(model: &M) -> Result<()> {
    let single = matches!(model.problem(), Problem::SingleLabel { .. });
    if single && model.output() == Output::PerSample {
        return Ok(());
    }
    Err(Error::config(SINGLE_LABEL_ONLY))
}

/// Why a run that is not single-label classification of whole samples cannot distil.
pub const SINGLE_LABEL_ONLY: &str = "distillation (--teacher) applies to single-label \
     classification of whole samples (one label per text or image)";

/// `(1 − α)·hard + α·T²·KL(teacher ‖ student)`, the KL term from the student's `logits` and
/// the `teacher`'s; `hard` is the run's own loss of the labels.
pub(crate) fn loss(
    c: &TrainConfig,
    hard: &Tensor,
    logits: &Tensor,
    teacher: &Tensor,
) -> Result<Tensor> {
    let (alpha, t) = (c.distill_alpha, c.distill_temperature);
    let soft =
        finetune_kernels::ops::distillation_kl(logits, &teacher.to_dtype(logits.dtype())?, t)?;
    if alpha == 1.0 {
        return Ok(soft);
    }
    Ok((hard.affine(1.0 - alpha, 0.0)? + soft.affine(alpha, 0.0)?)?)
}

/// Every sample's teacher logits `[N, C]`, in index order, `chunk` samples at a time (the
/// training inputs, whose batches must be deterministic); with the seconds it took.
pub(crate) fn cache<I>(
    teacher: &dyn Teacher<I>,
    source: &dyn BatchSource<I>,
    chunk: usize,
) -> Result<(Tensor, f64)> {
    let started = Instant::now();
    let n = source.len();
    let mut rows = Vec::new();
    for start in (0..n).step_by(chunk.max(1)) {
        let idx: Vec<usize> = (start..(start + chunk).min(n)).collect();
        let b = source.batch(&idx, 0, true)?;
        let logits = teacher.logits(&b.inputs)?;
        if logits.dims().first() != Some(&idx.len()) {
            return Err(Error::config(format!(
                "the teacher gave logits {:?} for a batch of {} samples",
                logits.dims(),
                idx.len()
            )));
        }
        rows.push(logits);
    }
    Ok((Tensor::cat(&rows, 0)?, started.elapsed().as_secs_f64()))
}

/// Sets distillation up before the first step: checks the student, caches the teacher's
/// logits of every training sample into `feed` when the training batches are deterministic,
/// and gives the summary's report and the line to print (`None` without a teacher).
pub(crate) fn start<M: TrainModel + ?Sized>(
    model: &M,
    config: &TrainConfig,
    teacher: Option<&dyn Teacher<M::Inputs>>,
    train: &dyn BatchSource<M::Inputs>,
    feed: &mut crate::feature_cache::Feed<'_, M::Inputs>,
) -> Result<Option<(DistillReport, String)>> {
    let Some(teacher) = teacher else {
        return match &config.teacher {
            Some(t) => Err(Error::config(format!(
                "`teacher` is {t}, but no teacher model was given to the learner"
            ))),
            None => Ok(None),
        };
    };
    check_student(model)?;
    let mut report = DistillReport {
        teacher: config
            .teacher
            .clone()
            .unwrap_or_else(|| "a teacher model".into()),
        alpha: config.distill_alpha,
        temperature: config.distill_temperature,
        cached: false,
        cached_samples: 0,
        cache_seconds: 0.0,
    };
    let how = if train.deterministic_train() {
        let (logits, seconds) = cache(teacher, train, config.eval_batch_size)?;
        (report.cached, report.cached_samples, report.cache_seconds) = (true, train.len(), seconds);
        feed.teacher = Some(logits);
        format!(
            "teacher logits of {} samples computed once in {seconds:.2} s",
            train.len()
        )
    } else {
        "the teacher runs on every training batch (they are random: augmentation)".to_string()
    };
    let line = format!(
        "distillation: from {} (alpha {}, temperature {}); {how}",
        report.teacher, report.alpha, report.temperature
    );
    Ok(Some((report, line)))
}

/// The teacher's logits of a training batch: the cached rows the feed attached, else the
/// teacher run on the batch's inputs.
pub(crate) fn batch_logits<I>(
    teacher: &dyn Teacher<I>,
    cached: Option<&Tensor>,
    inputs: Option<&I>,
) -> Result<Tensor> {
    match (cached, inputs) {
        (Some(t), _) => Ok(t.clone()),
        (None, Some(i)) => teacher.logits(i),
        (None, None) => Err(Error::config(
            "distillation: a batch of cached features came without the teacher's logits",
        )),
    }
}
