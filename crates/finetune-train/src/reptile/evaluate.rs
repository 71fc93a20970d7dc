//! Few-shot accuracy of a starting point: on each of many episodes, the inner loop adapts the
//! model from its starting weights (a zeroed head) to the support set, then the query set is
//! classified in eval mode; the mean accuracy over episodes with a 95% confidence interval.

use super::inner::{head_patterns, zero_head, InnerLoop};
use super::update::Weights;
use super::{task_batch, EpisodeSampler};
use crate::BatchSource;
use candle_core::Tensor;
use finetune_core::{Result, Rng, TrainModel};
use serde::Serialize;

/// Few-shot accuracy over episodes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FewShotAccuracy {
    /// Episodes measured.
    pub episodes: usize,
    /// The mean query accuracy over episodes (0–1).
    pub mean: f64,
    /// Half the width of the 95% confidence interval of the mean (1.96 standard errors).
    pub ci95: f64,
    /// Each episode's query accuracy.
    pub per_episode: Vec<f64>,
}

impl FewShotAccuracy {
    /// The mean and its interval of per-episode accuracies.
    pub fn of(per_episode: Vec<f64>) -> Self {
        let n = per_episode.len();
        let mean = per_episode.iter().sum::<f64>() / n.max(1) as f64;
        let var = if n > 1 {
            per_episode.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Self {
            episodes: n,
            mean,
            ci95: 1.96 * (var / n.max(1) as f64).sqrt(),
            per_episode,
        }
    }
}

/// The few-shot accuracy of `model`'s current weights on `episodes` episodes of `sampler`
/// (drawn from `seed`: the same episodes for every model), each adapted by `inner`. The
/// model's weights are restored afterwards.
pub fn few_shot_accuracy<M: TrainModel<Inputs = Tensor> + ?Sized>(
    model: &M,
    data: &dyn BatchSource<Tensor>,
    sampler: &EpisodeSampler,
    inner: &InnerLoop,
    episodes: usize,
    seed: u64,
) -> Result<FewShotAccuracy> {
    let store = model.store();
    let start = Weights::capture(store, &|_| true)?;
    let head = head_patterns(model)?;
    let mut rng = Rng::seed_from_u64(seed);
    let mut accuracies = Vec::with_capacity(episodes);
    for _ in 0..episodes {
        let episode = sampler.sample(&mut rng);
        start.restore(store)?;
        zero_head(store, &head)?;
        let (idx, labels) = episode.support_parts();
        let (inputs, targets) = task_batch(data, &idx, &labels)?;
        inner.adapt(model, &inputs, &targets)?;
        let (idx, labels) = episode.query_parts();
        let (inputs, _) = task_batch(data, &idx, &labels)?;
        let predicted = model
            .forward_t(&inputs, false)?
            .argmax(1)?
            .to_dtype(candle_core::DType::U32)?
            .to_vec1::<u32>()?;
        let right = predicted
            .iter()
            .zip(&labels)
            .filter(|(p, l)| p == l)
            .count();
        accuracies.push(right as f64 / labels.len() as f64);
    }
    start.restore(store)?;
    Ok(FewShotAccuracy::of(accuracies))
}
