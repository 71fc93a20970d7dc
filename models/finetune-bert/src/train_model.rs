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

    /// Single-label classifiers only: cross-entropy weighted per class.
    fn weighted_loss(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        ls: f64,
        w: &[f64],
    ) -> Result<Tensor> {
        match self.config().classifier().problem() {
            crate::ProblemType::SingleLabelClassification => Ok(
                finetune_kernels::ops::weighted_cross_entropy(logits, targets, ls, None, w)?,
            ),
            other => Err(finetune_core::Error::config(format!(
                "class weights need single-label classification, not {other:?}"
            ))),
        }
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
