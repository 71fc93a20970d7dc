//! BERT as the trainer sees it ([`TrainModel`]): its problem from `problem_type`, its head and
//! layer depths from [`crate::naming`], the pooler output as the backbone/head cut for
//! frozen-feature caching, and transformers' export.

use crate::classifier::{BertBatch, BertForSequenceClassification};
use crate::config::ProblemType;
use candle_core::Tensor;
use finetune_core::{HeadSplit, ParamLayout, ParamStore, Problem, Result, Rng, TrainModel};
use std::path::Path;

impl TrainModel for BertForSequenceClassification {
    type Inputs = BertBatch;

    fn store(&self) -> &ParamStore {
        BertForSequenceClassification::store(self)
    }

    fn forward_t(&self, inputs: &BertBatch, train: bool) -> Result<Tensor> {
        BertForSequenceClassification::forward_t(self, inputs, train)
    }

    fn loss(&self, logits: &Tensor, targets: &Tensor, ls: f64) -> Result<Tensor> {
        BertForSequenceClassification::loss(self, logits, targets, ls)
    }

    fn problem(&self) -> Problem {
        let labels = self.config().labels();
        match self.config().problem() {
            ProblemType::Regression => Problem::Regression,
            ProblemType::MultiLabelClassification => Problem::MultiLabel { labels },
            ProblemType::SingleLabelClassification => Problem::SingleLabel { labels },
        }
    }

    fn layout(&self) -> ParamLayout {
        crate::naming::layout()
    }

    fn rng_state(&self) -> Option<Rng> {
        Some(BertForSequenceClassification::rng_state(self))
    }

    fn set_rng_state(&self, rng: Rng) {
        BertForSequenceClassification::set_rng_state(self, rng)
    }

    fn export(&self, dir: &Path) -> Result<()> {
        self.export_as(dir, None)
    }

    /// The pooler's output is the cut: dropout and `classifier` above it.
    fn head_split(&self) -> Option<HeadSplit> {
        Some(HeadSplit {
            backbone_randomness: self.pooled_randomness(),
        })
    }

    fn features(&self, inputs: &BertBatch, train: bool) -> Result<Tensor> {
        self.pooled(inputs, train)
    }

    fn head_forward(&self, pooled: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_head(pooled, train)
    }
}
