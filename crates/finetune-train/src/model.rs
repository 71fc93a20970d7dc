//! What the learner needs of a model.

use candle_core::Tensor;
use finetune_core::{ParamStore, Result, Rng};
use std::path::Path;

/// The kind of prediction a model makes, which decides the loss and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// One class out of `labels` (argmax; accuracy, precision/recall/F1, confusion matrix).
    SingleLabel { labels: Vec<String> },
    /// Independent yes/no per label (sigmoid > 0.5; accuracy is exact-match).
    MultiLabel { labels: Vec<String> },
    /// One real value (MSE, Pearson).
    Regression,
}

/// A model the [`Learner`](crate::Learner) can train. Its parameters live in a
/// [`ParamStore`] under the names that export and freeze patterns use.
pub trait TrainModel {
    /// The model's inputs for one batch (token ids and masks, an image tensor, ...).
    type Inputs: Send;

    fn store(&self) -> &ParamStore;

    /// Logits `[N, num_labels]` (or predictions `[N, 1]` for regression); dropout and
    /// batch-norm statistics are live when `train` is true.
    fn forward_t(&self, inputs: &Self::Inputs, train: bool) -> Result<Tensor>;

    /// Mean loss of `logits` against `targets`, as the problem type requires.
    fn loss(&self, logits: &Tensor, targets: &Tensor, label_smoothing: f64) -> Result<Tensor>;

    fn problem(&self) -> Problem;

    /// The state of the model's own randomness (dropout), saved in checkpoints so a resumed run
    /// draws the same masks. `None` when the model has none.
    fn rng_state(&self) -> Option<Rng> {
        None
    }

    fn set_rng_state(&self, _rng: Rng) {}

    /// Keeps batch-norm layers whose parameters match `frozen(name)` in eval mode (running
    /// statistics fixed). Models without batch norm ignore it.
    fn set_batch_norm_frozen(&self, _frozen: &dyn Fn(&str) -> bool) -> Result<()> {
        Ok(())
    }

    /// Writes the model in its ecosystem's format (transformers / timm) into `dir`.
    fn export(&self, dir: &Path) -> Result<()>;

    /// Where the model splits into a backbone and a head, for frozen-feature caching (see
    /// [`crate::feature_cache`]): the model then promises `forward_t(x, train) ==
    /// head_forward(features(x, train), train)`, drawing from its own randomness in the same
    /// order. `None` (the default): no split; the learner always runs `forward_t`.
    fn head_split(&self) -> Option<HeadSplit> {
        None
    }

    /// The backbone's output for `inputs` (what the head takes), outside the autograd graph
    /// of anything but trainable backbone parameters. Only called when [`Self::head_split`]
    /// is `Some`.
    fn features(&self, _inputs: &Self::Inputs, _train: bool) -> Result<Tensor> {
        Err(finetune_core::Error::config("this model has no head split"))
    }

    /// Logits from [`Self::features`]' output: the head alone (its dropout live when
    /// `train`). Only called when [`Self::head_split`] is `Some`.
    fn head_forward(&self, _features: &Tensor, _train: bool) -> Result<Tensor> {
        Err(finetune_core::Error::config("this model has no head split"))
    }
}

/// A model's backbone/head split, as it stands now (modes depend on the trainable mask).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadSplit {
    /// Freeze-pattern globs of the head's parameters (`classifier.*`, `fc.*`).
    pub head: Vec<String>,
    /// Why the backbone's training forward is not a fixed function of its inputs right now
    /// (dropout below the head, batch-norm layers using batch statistics), so its outputs
    /// cannot be cached; `None` when it is.
    pub backbone_randomness: Option<String>,
}
