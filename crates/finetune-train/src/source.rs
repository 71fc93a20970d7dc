//! Where batches come from. A source is indexable, so the learner decides the order (a seeded
//! permutation per epoch) and a resumed run rebuilds exactly the batches it would have seen.

use candle_core::Tensor;
use finetune_core::Result;

/// A model's inputs with their targets.
pub struct Batch<I> {
    /// The model's inputs (token ids and masks, an image tensor, ...), one row per sample.
    pub inputs: I,
    /// Class ids `[N]` (u32), multi-hot `[N, L]` or values `[N, 1]` (f32).
    pub targets: Tensor,
    /// The teacher's logits `[N, C]` of these samples when a run distils from a cached
    /// teacher ([`crate::distill`]); the learner sets it, sources leave it `None`.
    pub teacher: Option<Tensor>,
}

impl<I> Batch<I> {
    /// A batch of `inputs` and their `targets`, without teacher logits.
    pub fn new(inputs: I, targets: Tensor) -> Self {
        Self {
            inputs,
            targets,
            teacher: None,
        }
    }

    /// Samples in the batch: the targets' first dimension.
    pub fn len(&self) -> usize {
        self.targets.dims().first().copied().unwrap_or(0)
    }

    /// Whether the batch holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An indexable dataset turned into model batches.
pub trait BatchSource<I>: Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether the data set has no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batch of samples `indices`, in that order. `epoch` seeds per-sample augmentation
    /// (together with each sample's index) when `train` is true.
    fn batch(&self, indices: &[usize], epoch: u64, train: bool) -> Result<Batch<I>>;

    /// Whether training batches are a fixed function of their samples: the same for every
    /// epoch, each sample's part independent of the others in its batch up to padding (no
    /// augmentation). What frozen-feature caching needs; `false` unless a source says so.
    fn deterministic_train(&self) -> bool {
        false
    }
}
