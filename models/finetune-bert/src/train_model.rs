//! Every family of this crate as the trainer sees it ([`TrainModel`]): its problem from
//! `problem_type`, its head and layer depths from its naming, the head's input (the first
//! token's features) as the backbone/head cut for frozen-feature caching, and transformers'
//! export.

use crate::arch::{Architecture, EncoderConfig};
use crate::classifier::{BertBatch, SequenceClassifier};
use candle_core::Tensor;
use finetune_core::{HeadSplit, ParamLayout, ParamStore, Problem, Result, Rng, TrainModel};
use std::path::Path;

impl<A: Architecture> TrainModel for SequenceClassifier<A> {
    type Inputs = BertBatch;

    fn store(&self) -> &ParamStore {
        SequenceClassifier::store(self)
    }

    fn forward_t(&self, inputs: &BertBatch, train: bool) -> Result<Tensor> {
        SequenceClassifier::forward_t(self, inputs, train)
    }

    fn loss(&self, logits: &Tensor, targets: &Tensor, ls: f64) -> Result<Tensor> {
        SequenceClassifier::loss(self, logits, targets, ls)
    }

    /// Class weights for single-label classifiers, `pos_weight` for multi-label ones (see
    /// [`crate::ProblemType::weighted_loss`]).
    fn weighted_loss(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        ls: f64,
        w: &[f64],
    ) -> Result<Tensor> {
        self.config()
            .classifier()
            .problem()
            .weighted_loss(logits, targets, ls, w)
    }

    fn problem(&self) -> Problem {
        self.config().classifier().train_problem()
    }

    fn layout(&self) -> ParamLayout {
        A::Config::layout()
    }

    fn rng_state(&self) -> Option<Rng> {
        Some(SequenceClassifier::rng_state(self))
    }

    fn set_rng_state(&self, rng: Rng) {
        SequenceClassifier::set_rng_state(self, rng)
    }

    fn export(&self, dir: &Path) -> Result<()> {
        self.export_as(dir, None)
    }

    /// The head's input is the cut: the head's dropout and layers above it.
    fn head_split(&self) -> Option<HeadSplit> {
        Some(HeadSplit {
            backbone_randomness: self.features_randomness(),
        })
    }

    fn features(&self, inputs: &BertBatch, train: bool) -> Result<Tensor> {
        SequenceClassifier::features(self, inputs, train)
    }

    fn head_forward(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_head(features, train)
    }
}
