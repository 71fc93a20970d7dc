//! ViT as the trainer sees it ([`TrainModel`]): the problem from its config's labels, the
//! head and layer depths from [`crate::naming`], the class token's final state as the
//! backbone/head cut, transformers' export.

use crate::model::ViT;
use candle_core::Tensor;
use finetune_core::{HeadSplit, ParamLayout, ParamStore, Problem, Result, Rng, TrainModel};
use std::path::Path;

impl TrainModel for ViT {
    type Inputs = Tensor;

    fn store(&self) -> &ParamStore {
        ViT::store(self)
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        ViT::forward_t(self, images, train)
    }

    fn loss(&self, logits: &Tensor, targets: &Tensor, ls: f64) -> Result<Tensor> {
        ViT::loss(self, logits, targets, ls)
    }

    /// Class weights for single-label heads, `pos_weight` for multi-label ones.
    fn weighted_loss(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        ls: f64,
        w: &[f64],
    ) -> Result<Tensor> {
        self.problem_type().weighted_loss(logits, targets, ls, w)
    }

    fn problem(&self) -> Problem {
        self.config().classifier.train_problem()
    }

    fn layout(&self) -> ParamLayout {
        crate::naming::layout()
    }

    fn rng_state(&self) -> Option<Rng> {
        Some(ViT::rng_state(self))
    }

    fn set_rng_state(&self, rng: Rng) {
        ViT::set_rng_state(self, rng)
    }

    fn export(&self, dir: &Path) -> Result<()> {
        self.export_as(dir, None)
    }

    fn head_split(&self) -> Option<HeadSplit> {
        Some(HeadSplit {
            backbone_randomness: self.features_randomness(),
        })
    }

    fn features(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        ViT::features(self, images, train)
    }

    fn head_forward(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_head(features, train)
    }
}
