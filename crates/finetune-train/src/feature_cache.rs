//! Frozen-feature caching: when nothing below a model's head trains and the backbone's
//! training forward is a fixed function of fixed inputs, the backbone's outputs ("features")
//! are computed once per data set and every step runs the head alone on them.
//!
//! When it applies (all must hold, checked once before training, after the freeze mask):
//! - `feature_cache` is on in the [`TrainConfig`] (`--no-feature-cache` turns it off);
//! - the model has a [`HeadSplit`] (the head above it is its `ParamLayout`'s) and its
//!   backbone draws no randomness and uses no batch statistics in training
//!   ([`HeadSplit::backbone_randomness`] is `None`);
//! - every trainable parameter matches the head's patterns, and no gradual unfreezing can
//!   change that later;
//! - the training source is deterministic ([`BatchSource::deterministic_train`]: no
//!   augmentation).
//!
//! Then training batches are the cached rows of the step's sample indices (gathered in the
//! step's order) and `head_forward` replaces `forward_t`; the head's own randomness (dropout
//! on the features) is drawn from the model's stream exactly as the full forward draws it, so
//! a cached run equals the uncached one up to float rounding (padding differences in batched
//! text), and resuming a cached run is exact (the cache is rebuilt from the restored weights).
//! The evaluation set is cached too (eval-mode features) while the backbone stays frozen.

use crate::source::{Batch, BatchSource};
use crate::TrainConfig;
use candle_core::{Device, Tensor};
use finetune_core::{HeadSplit, TrainModel};
use finetune_core::{PatternSet, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// What the run summary says about the cache (`train_summary.json`'s `feature_cache`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureCacheReport {
    /// Whether training ran the head alone on cached features.
    pub used: bool,
    /// Samples whose features were computed (training + evaluation sets).
    pub samples: usize,
    /// Seconds spent computing them.
    pub seconds: f64,
    /// Why the cache was not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl FeatureCacheReport {
    fn refused(reason: String) -> Self {
        Self {
            reason: Some(reason),
            ..Self::default()
        }
    }
}

/// Why the cache cannot serve this run (`Err(reason)`), checked in the order of the module
/// doc. `gradual_unfreezing`: whether an unfreeze schedule is in force.
pub fn applicable<M: TrainModel + ?Sized, I>(
    model: &M,
    config: &TrainConfig,
    gradual_unfreezing: bool,
    train: &dyn BatchSource<I>,
) -> std::result::Result<HeadSplit, String> {
    if !config.feature_cache {
        return Err("turned off (--no-feature-cache)".into());
    }
    let split = model
        .head_split()
        .ok_or_else(|| "the model has no backbone/head split".to_string())?;
    if gradual_unfreezing {
        return Err("gradual unfreezing changes what trains".into());
    }
    let head = PatternSet::new(&model.layout().head).map_err(|e| e.to_string())?;
    let store = model.store();
    let backbone: Vec<String> = store
        .infos()
        .into_iter()
        .filter(|i| i.trainable && !head.matches(&i.name))
        .map(|i| i.name)
        .collect();
    if let Some(first) = backbone.first() {
        return Err(format!(
            "{} backbone parameters train (`{first}`, ...)",
            backbone.len()
        ));
    }
    if let Some(why) = &split.backbone_randomness {
        return Err(why.clone());
    }
    if !train.deterministic_train() {
        return Err("the training inputs are random (augmentation)".into());
    }
    Ok(split)
}

/// The features `[N, ...]` and targets of every sample of one data set, in index order.
pub(crate) struct Cached {
    features: Tensor,
    targets: Tensor,
    len: usize,
}

impl Cached {
    /// Features of `source`'s batches (`train`: the training inputs and mode), `chunk`
    /// samples at a time.
    fn build<M: TrainModel + ?Sized>(
        model: &M,
        source: &dyn BatchSource<M::Inputs>,
        train: bool,
        chunk: usize,
    ) -> Result<Self> {
        let n = source.len();
        let (mut feats, mut targets) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(chunk.max(1)) {
            let idx: Vec<usize> = (start..(start + chunk).min(n)).collect();
            let b = source.batch(&idx, 0, train)?;
            if b.len() != idx.len() {
                return Err(finetune_core::Error::config(format!(
                    "feature cache: a batch of {} samples came back with {}",
                    idx.len(),
                    b.len()
                )));
            }
            feats.push(model.features(&b.inputs, train)?.detach());
            targets.push(b.targets);
        }
        Ok(Self {
            features: Tensor::cat(&feats, 0)?,
            targets: Tensor::cat(&targets, 0)?,
            len: n,
        })
    }

    fn rows(&self, indices: &[usize]) -> Result<Batch<Tensor>> {
        Ok(Batch {
            inputs: select_rows(&self.features, indices)?,
            targets: select_rows(&self.targets, indices)?,
            teacher: None,
        })
    }
}

/// Rows `indices` of `all`, in that order.
fn select_rows(all: &Tensor, indices: &[usize]) -> Result<Tensor> {
    let idx: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
    let idx = Tensor::new(idx.as_slice(), &Device::Cpu)?.to_device(all.device())?;
    Ok(all.index_select(&idx, 0)?)
}

/// A batch's model input: the raw inputs, or cached features.
pub(crate) enum Fed<I> {
    Inputs(I),
    Features(Tensor),
}

/// Where a data set's batches come from: its source, or its cache; with every sample's
/// teacher logits when a run distils from a cached teacher ([`crate::distill`]).
pub(crate) struct Feed<'a, I> {
    source: &'a dyn BatchSource<I>,
    cache: Option<Cached>,
    pub(crate) teacher: Option<Tensor>,
}

impl<'a, I> Feed<'a, I> {
    pub(crate) fn direct(source: &'a dyn BatchSource<I>) -> Self {
        Self {
            source,
            cache: None,
            teacher: None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.cache.as_ref().map_or(self.source.len(), |c| c.len)
    }

    pub(crate) fn batch(
        &self,
        indices: &[usize],
        epoch: u64,
        train: bool,
    ) -> Result<Batch<Fed<I>>> {
        let teacher = match &self.teacher {
            Some(all) if train => Some(select_rows(all, indices)?),
            _ => None,
        };
        Ok(match &self.cache {
            Some(c) => {
                let b = c.rows(indices)?;
                Batch {
                    inputs: Fed::Features(b.inputs),
                    targets: b.targets,
                    teacher,
                }
            }
            None => {
                let b = self.source.batch(indices, epoch, train)?;
                Batch {
                    inputs: Fed::Inputs(b.inputs),
                    targets: b.targets,
                    teacher,
                }
            }
        })
    }
}

/// Logits of a fed batch: the head alone on cached features, else the whole model.
pub(crate) fn forward<M: TrainModel + ?Sized>(
    model: &M,
    x: &Fed<M::Inputs>,
    train: bool,
) -> Result<Tensor> {
    match x {
        Fed::Inputs(i) => model.forward_t(i, train),
        Fed::Features(f) => model.head_forward(f, train),
    }
}

/// The training and evaluation feeds of a run, cached when [`applicable`]; with the report
/// for the summary and a line for stderr (`None`: nothing worth saying).
#[allow(clippy::type_complexity)]
pub(crate) fn feeds<'a, M: TrainModel + ?Sized>(
    model: &M,
    config: &TrainConfig,
    gradual_unfreezing: bool,
    train: &'a dyn BatchSource<M::Inputs>,
    eval: Option<&'a dyn BatchSource<M::Inputs>>,
) -> Result<(
    Feed<'a, M::Inputs>,
    Option<Feed<'a, M::Inputs>>,
    FeatureCacheReport,
    Option<String>,
)> {
    let direct = |report, line| Ok((Feed::direct(train), eval.map(Feed::direct), report, line));
    if let Err(reason) = applicable(model, config, gradual_unfreezing, train) {
        // Worth a line only when the user froze the backbone and something else blocks it.
        let line = (model.head_split().is_some()
            && config.feature_cache
            && !reason.contains("backbone parameters train")
            && !reason.contains("gradual unfreezing"))
        .then(|| format!("feature cache: not used ({reason})"));
        return direct(FeatureCacheReport::refused(reason), line);
    }
    let started = Instant::now();
    let chunk = config.eval_batch_size;
    let train_cache = Cached::build(model, train, true, chunk)?;
    let eval_cache = eval
        .map(|e| Cached::build(model, e, false, chunk))
        .transpose()?;
    let seconds = started.elapsed().as_secs_f64();
    let samples = train_cache.len + eval_cache.as_ref().map_or(0, |c| c.len);
    let line = format!(
        "feature cache: backbone frozen, features of {samples} samples computed once in \
         {seconds:.2} s; training runs the head only"
    );
    Ok((
        Feed {
            source: train,
            cache: Some(train_cache),
            teacher: None,
        },
        eval.map(|source| Feed {
            source,
            cache: eval_cache,
            teacher: None,
        }),
        FeatureCacheReport {
            used: true,
            samples,
            seconds,
            reason: None,
        },
        Some(line),
    ))
}
