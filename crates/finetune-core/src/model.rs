//! The seam between a model and the code that trains it: everything a trainer needs to know
//! about a model is declared here by the model itself — its parameters (a [`ParamStore`] under
//! the Hub's names), its forward pass and loss, what it predicts ([`Problem`], [`Output`]),
//! which parameters make the head and how deep each one sits ([`ParamLayout`]), where its
//! backbone ends ([`HeadSplit`]) and how it exports. Training code never matches on parameter
//! names; model crates implement [`TrainModel`] next to the names they define.

use crate::groups::DepthFn;
use crate::{ParamStore, Result, Rng};
use candle_core::Tensor;
use std::path::Path;
use std::sync::Arc;

/// The kind of prediction a model makes, which decides the loss and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// One class out of `labels` (argmax; accuracy, precision/recall/F1, confusion matrix).
    SingleLabel {
        /// The class names, in logit order (transformers' `id2label`).
        labels: Vec<String>,
    },
    /// Independent yes/no per label (sigmoid > 0.5; accuracy is exact-match).
    MultiLabel {
        /// The label names, in logit order.
        labels: Vec<String>,
    },
    /// One real value (MSE, Pearson).
    Regression,
}

/// What one input gets from the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// One row of logits per sample: `[N, L]` (sequence and image classification).
    #[default]
    PerSample,
    /// One row of logits per token: `[N, S, L]`, with targets `[N, S]` where
    /// [`IGNORE_INDEX`] marks tokens that carry no label (token classification).
    PerToken,
}

/// The target of a token that carries no label (padding, special tokens, the second piece of a
/// word), as PyTorch's `ignore_index` and transformers' `-100`.
pub const IGNORE_INDEX: i64 = -100;

/// Which parameters make the head, and how deep each of the others sits: what layer-wise LR
/// decay, gradual unfreezing, the head's own learning rate and feature caching work from.
#[derive(Clone)]
pub struct ParamLayout {
    /// Globs of the head's parameters (`classifier.*`): they train at `--head-lr`, and they are
    /// what runs on cached features.
    pub head: Vec<String>,
    /// Depth of a parameter: 0 for the embeddings or stem, `1..=L` for the numbered layers
    /// (bottom to top); `None` for the head and anything above the last layer.
    pub depth: DepthFn,
    /// A parameter's name in the family's other Hub naming, when it has one (BERT's bare
    /// `encoder.layer.0.…` for `bert.encoder.layer.0.…`): user patterns match either.
    pub alias: Option<AliasFn>,
    /// The layers LoRA adapts when the user names none (PEFT's defaults per architecture,
    /// e.g. BERT's `query`, `value`); see [`crate::lora::select_modules`].
    pub lora_targets: Vec<String>,
}

/// A parameter's name in another naming (see [`ParamLayout::alias`]).
pub type AliasFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl ParamLayout {
    /// A layout from the head's globs and a depth function (see [`ParamLayout::depth`]).
    pub fn new<S: Into<String>>(
        head: impl IntoIterator<Item = S>,
        depth: impl Fn(&str) -> Option<usize> + Send + Sync + 'static,
    ) -> Self {
        Self {
            head: head.into_iter().map(Into::into).collect(),
            depth: Arc::new(depth),
            alias: None,
            lora_targets: vec![crate::lora::ALL_LINEAR.to_string()],
        }
    }

    /// The layout with these default LoRA targets (see [`ParamLayout::lora_targets`]).
    pub fn with_lora_targets<S: Into<String>>(
        mut self,
        targets: impl IntoIterator<Item = S>,
    ) -> Self {
        self.lora_targets = targets.into_iter().map(Into::into).collect();
        self
    }

    /// The head's modules (`classifier` for `classifier.*`): what a LoRA run trains whole
    /// (PEFT's `modules_to_save`).
    pub fn head_modules(&self) -> Vec<String> {
        self.head
            .iter()
            .map(|g| g.strip_suffix(".*").unwrap_or(g).to_string())
            .collect()
    }

    /// The layout with the family's other naming (see [`ParamLayout::alias`]).
    pub fn with_alias(
        mut self,
        alias: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.alias = Some(Arc::new(alias));
        self
    }

    /// A user's name pattern as patterns over `names` (the model's own names): the pattern
    /// itself, plus every name whose alias matches it where the name does not — so a pattern
    /// written in either naming selects the same parameters. A pattern matching nothing in
    /// either naming comes back alone (and is refused, naming it, where patterns are checked).
    pub fn patterns_for(&self, pattern: &str, names: &[String]) -> Result<Vec<String>> {
        let Some(alias) = self.alias.as_ref().filter(|_| !pattern.starts_with('!')) else {
            return Ok(vec![pattern.to_string()]);
        };
        let p = crate::NamePattern::new(pattern)?;
        let direct = names.iter().any(|n| p.matches(n));
        let by_alias = names
            .iter()
            .filter(|n| !p.matches(n) && alias(n).is_some_and(|a| p.matches(&a)))
            .cloned();
        Ok(direct
            .then(|| pattern.to_string())
            .into_iter()
            .chain(by_alias)
            .collect::<Vec<_>>())
        .map(|v| {
            if v.is_empty() {
                vec![pattern.to_string()]
            } else {
                v
            }
        })
    }

    /// The deepest numbered layer among `names` (0 when none is).
    pub fn layers(&self, names: &[String]) -> usize {
        names
            .iter()
            .filter_map(|n| (self.depth)(n))
            .max()
            .unwrap_or(0)
    }
}

impl std::fmt::Debug for ParamLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParamLayout")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

/// A model a trainer can train. Its parameters live in a [`ParamStore`] under the names that
/// export and freeze patterns use.
pub trait TrainModel {
    /// The model's inputs for one batch (token ids and masks, an image tensor, ...).
    type Inputs: Send;

    /// The model's parameters and buffers, under the names export and freeze patterns use.
    fn store(&self) -> &ParamStore;

    /// Logits (see [`Self::output`]; predictions `[N, 1]` for regression); dropout and
    /// batch-norm statistics are live when `train` is true.
    fn forward_t(&self, inputs: &Self::Inputs, train: bool) -> Result<Tensor>;

    /// Mean loss of `logits` against `targets`, as the problem type requires.
    fn loss(&self, logits: &Tensor, targets: &Tensor, label_smoothing: f64) -> Result<Tensor>;

    /// [`Self::loss`] with a weight per class (`--class-weights`; PyTorch's
    /// `CrossEntropyLoss(weight=…)`, a weighted mean). Models without a single-label
    /// cross-entropy refuse it (the default).
    fn weighted_loss(
        &self,
        _logits: &Tensor,
        _targets: &Tensor,
        _label_smoothing: f64,
        _weights: &[f64],
    ) -> Result<Tensor> {
        Err(crate::Error::config(
            "class weights need a single-label classifier (cross-entropy)",
        ))
    }

    /// What the model predicts, which decides the loss and the metrics.
    fn problem(&self) -> Problem;

    /// Whether the logits come per sample or per token.
    fn output(&self) -> Output {
        Output::PerSample
    }

    /// The head's parameters and every parameter's depth.
    fn layout(&self) -> ParamLayout;

    /// The state of the model's own randomness (dropout), saved in checkpoints so a resumed run
    /// draws the same masks. `None` when the model has none.
    fn rng_state(&self) -> Option<Rng> {
        None
    }

    /// Restores what [`Self::rng_state`] returned (on resume). Models without randomness ignore
    /// it.
    fn set_rng_state(&self, _rng: Rng) {}

    /// Keeps batch-norm layers whose parameters match `frozen(name)` in eval mode (running
    /// statistics fixed). Models without batch norm ignore it.
    fn set_batch_norm_frozen(&self, _frozen: &dyn Fn(&str) -> bool) -> Result<()> {
        Ok(())
    }

    /// Writes the model in its ecosystem's format (transformers / timm) into `dir`.
    fn export(&self, dir: &Path) -> Result<()>;

    /// Whether the model splits into a backbone and the head of [`Self::layout`], for
    /// frozen-feature caching: the model then promises `forward_t(x, train) ==
    /// head_forward(features(x, train), train)`, drawing from its own randomness in the same
    /// order. `None` (the default): no split; the trainer always runs `forward_t`.
    fn head_split(&self) -> Option<HeadSplit> {
        None
    }

    /// The backbone's output for `inputs` (what the head takes), outside the autograd graph
    /// of anything but trainable backbone parameters. Only called when [`Self::head_split`]
    /// is `Some`.
    fn features(&self, _inputs: &Self::Inputs, _train: bool) -> Result<Tensor> {
        Err(crate::Error::config("this model has no head split"))
    }

    /// Logits from [`Self::features`]' output: the head alone (its dropout live when
    /// `train`). Only called when [`Self::head_split`] is `Some`.
    fn head_forward(&self, _features: &Tensor, _train: bool) -> Result<Tensor> {
        Err(crate::Error::config("this model has no head split"))
    }
}

/// A model's backbone/head split, as it stands now (modes depend on the trainable mask).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadSplit {
    /// Why the backbone's training forward is not a fixed function of its inputs right now
    /// (dropout below the head, batch-norm layers using batch statistics), so its outputs
    /// cannot be cached; `None` when it is.
    pub backbone_randomness: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        [
            "bert.encoder.layer.0.w",
            "bert.encoder.layer.1.w",
            "classifier.weight",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn a_pattern_in_the_other_naming_selects_the_same_parameters() {
        let bare = |n: &str| n.strip_prefix("bert.").map(str::to_string);
        let layout = ParamLayout::new(["classifier.*"], |_| None).with_alias(bare);
        let n = names();
        // The model's own naming: the pattern as it is.
        assert_eq!(
            layout.patterns_for("bert.encoder.layer.0.*", &n).unwrap(),
            ["bert.encoder.layer.0.*"]
        );
        // The other naming: the names it selects through their aliases.
        assert_eq!(
            layout.patterns_for("encoder.layer.0.*", &n).unwrap(),
            ["bert.encoder.layer.0.w"]
        );
        // Both: the pattern, plus what only the aliases match.
        assert_eq!(
            layout.patterns_for("*layer.1.w", &n).unwrap(),
            ["*layer.1.w"],
            "matched directly, nothing more"
        );
        assert_eq!(
            layout
                .patterns_for("{classifier.weight,encoder.layer.1.w}", &n)
                .unwrap(),
            [
                "{classifier.weight,encoder.layer.1.w}",
                "bert.encoder.layer.1.w"
            ]
        );
        // Neither, negated, or no other naming: unchanged (checked and refused elsewhere).
        assert_eq!(layout.patterns_for("typo.*", &n).unwrap(), ["typo.*"]);
        assert_eq!(
            layout.patterns_for("!encoder.*", &n).unwrap(),
            ["!encoder.*"]
        );
        let plain = ParamLayout::new(["classifier.*"], |_| None);
        assert_eq!(
            plain.patterns_for("encoder.layer.0.*", &n).unwrap(),
            ["encoder.layer.0.*"]
        );
    }
}
