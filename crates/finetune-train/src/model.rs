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
}
