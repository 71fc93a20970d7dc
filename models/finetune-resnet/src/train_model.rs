//! ResNet as the trainer sees it ([`TrainModel`]): single- or multi-label classification (its
//! config's `problem_type`) over its `label_names`, its head and stage depths from [`crate::naming`], BatchNorm layers frozen
//! with their weights on request, the pooled features as the backbone/head cut for
//! frozen-feature caching, and timm's export.

use crate::batch_norm::BnMode;
use crate::model::ResNet;
use candle_core::Tensor;
use finetune_core::{
    HeadSplit, ParamLayout, ParamStore, Problem, ProblemType, Result, Rng, TrainModel,
};
use std::path::Path;

impl TrainModel for ResNet {
    type Inputs = Tensor;

    fn store(&self) -> &ParamStore {
        ResNet::store(self)
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        ResNet::forward_t(self, images, train)
    }

    fn loss(&self, logits: &Tensor, targets: &Tensor, ls: f64) -> Result<Tensor> {
        ResNet::loss(self, logits, targets, ls)
    }

    /// Class weights for single-label heads, `pos_weight` for multi-label ones (see
    /// [`ProblemType::weighted_loss`]).
    fn weighted_loss(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        ls: f64,
        w: &[f64],
    ) -> Result<Tensor> {
        let p = self.config().problem_type;
        p.weighted_loss(logits, targets, ls, w)
    }

    fn problem(&self) -> Problem {
        let labels = self.config().labels();
        match self.config().problem_type {
            ProblemType::MultiLabelClassification => Problem::MultiLabel { labels },
            _ => Problem::SingleLabel { labels },
        }
    }

    fn layout(&self) -> ParamLayout {
        crate::naming::layout()
    }

    fn rng_state(&self) -> Option<Rng> {
        Some(ResNet::rng_state(self))
    }

    fn set_rng_state(&self, rng: Rng) {
        ResNet::set_rng_state(self, rng)
    }

    /// A layer is frozen (running statistics fixed) when its weight is.
    fn set_batch_norm_frozen(&self, frozen: &dyn Fn(&str) -> bool) -> Result<()> {
        for bn in self.batch_norms() {
            let [weight, ..] = bn.tensor_names();
            bn.set_mode(if frozen(&weight) {
                BnMode::Frozen
            } else {
                BnMode::Train
            });
        }
        Ok(())
    }

    fn export(&self, dir: &Path) -> Result<()> {
        self.export_as(dir, None)
    }

    /// The pooled features are the cut: dropout and `fc` above them.
    fn head_split(&self) -> Option<HeadSplit> {
        Some(HeadSplit {
            backbone_randomness: self.features_randomness(),
        })
    }

    fn features(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_features(images, train)
    }

    fn head_forward(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_head(features, train)
    }
}
