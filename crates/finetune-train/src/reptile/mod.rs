//! Reptile, first-order meta-learning (Nichol, Achiam and Schulman 2018, "On First-Order
//! Meta-Learning Algorithms"): an initialisation from which a few optimizer steps on a few
//! examples of new classes learn them.
//!
//! Each meta step draws [`ReptileConfig::meta_batch`] N-way K-shot tasks ([`episode`]); from
//! the meta weights φ the inner loop ([`inner`]) trains on each task's support set, reaching
//! `Wᵢ`; then `φ ← φ + ε · mean_i (Wᵢ − φ)` ([`update`]), ε annealed linearly to 0 as in the
//! paper unless asked otherwise ([`config`]). The head is not meta-learned: every task starts
//! from a zeroed N-way head, the way a fine-tune on new classes starts from a new one.
//! [`evaluate`] measures few-shot accuracy: the same adaptation on episodes of held-out
//! classes, accuracy on their query sets.

pub mod config;
pub mod episode;
pub mod evaluate;
pub mod inner;
pub mod update;

pub use config::{MetaLrSchedule, ReptileConfig};
pub use episode::{Episode, EpisodeSampler};
pub use evaluate::{few_shot_accuracy, FewShotAccuracy};
pub use inner::InnerLoop;
pub use update::{TaskAverage, Weights};

use crate::BatchSource;
use candle_core::Tensor;
use finetune_core::{Result, Rng, TrainModel};
use serde::Serialize;

/// What a meta-training run did.
#[derive(Debug, Clone, Serialize)]
pub struct MetaSummary {
    /// Meta steps taken.
    pub meta_steps: usize,
    /// Tasks adapted to (meta steps × meta-batch).
    pub tasks: usize,
    /// The mean support loss at the last inner step, per logging window: `(meta step, loss)`.
    pub support_loss: Vec<(usize, f64)>,
}

/// The inputs of `indices` of `data` (its eval pipeline: no augmentation) and their task
/// labels as a u32 tensor on the same device.
pub fn task_batch(
    data: &dyn BatchSource<Tensor>,
    indices: &[usize],
    labels: &[u32],
) -> Result<(Tensor, Tensor)> {
    let inputs = data.batch(indices, 0, false)?.inputs;
    let targets = Tensor::new(labels, inputs.device())?;
    Ok((inputs, targets))
}

/// Meta-trains `model` in place with Reptile on episodes of `sampler` over `data` (whose
/// indices the sampler draws); `say` gets a progress line every
/// [`ReptileConfig::logging_steps`] meta steps. The model ends with the meta weights φ and a
/// zeroed head.
pub fn meta_train<M: TrainModel<Inputs = Tensor> + ?Sized>(
    model: &M,
    data: &dyn BatchSource<Tensor>,
    sampler: &EpisodeSampler,
    c: &ReptileConfig,
    say: &mut dyn FnMut(String),
) -> Result<MetaSummary> {
    c.validate()?;
    let store = model.store();
    let head = inner::head_patterns(model)?;
    let body = |n: &str| !head.matches(n);
    let inner = InnerLoop::of(c);
    let mut rng = Rng::seed_from_u64(c.seed);
    let mut phi = Weights::capture(store, &body)?;
    let mut summary = MetaSummary {
        meta_steps: 0,
        tasks: 0,
        support_loss: Vec::new(),
    };
    let mut window = (0.0, 0usize);
    for step in 0..c.meta_steps {
        let mut average = TaskAverage::new();
        for _ in 0..c.meta_batch {
            let episode = sampler.sample(&mut rng);
            phi.restore(store)?;
            inner::zero_head(store, &head)?;
            let (idx, labels) = episode.support_parts();
            let (inputs, targets) = task_batch(data, &idx, &labels)?;
            let losses = inner.adapt(model, &inputs, &targets)?;
            window.0 += losses.last().copied().unwrap_or(f64::NAN);
            window.1 += 1;
            average.add(&Weights::capture(store, &body)?)?;
        }
        let eps = c.meta_lr_at(step);
        phi = average.step(&phi, eps)?;
        summary.meta_steps = step + 1;
        summary.tasks += average.tasks();
        if (step + 1) % c.logging_steps == 0 || step + 1 == c.meta_steps {
            let loss = window.0 / window.1.max(1) as f64;
            summary.support_loss.push((step + 1, loss));
            say(format!(
                "meta step {}/{}: support loss {loss:.4} (last inner step), meta lr {eps:.4}",
                step + 1,
                c.meta_steps
            ));
            window = (0.0, 0);
        }
    }
    phi.restore(store)?;
    inner::zero_head(store, &head)?;
    Ok(summary)
}
