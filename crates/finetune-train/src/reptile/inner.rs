//! The inner loop: a fresh optimizer over the model's trainable parameters, a few full-batch
//! steps on one task's support set, starting from a zeroed head (the "zeroing trick" of Kao et
//! al. 2022: every task starts from the same all-zero logits, so a head that is relabelled per
//! task carries nothing over from one task to the next).

use super::config::ReptileConfig;
use candle_core::{DType, Tensor};
use finetune_core::optim::{Adam, OptimizerConfig};
use finetune_core::{GroupBuilder, OptimizerKind, ParamStore, PatternSet, Result, TrainModel};
use finetune_kernels::tape::Recording;

/// How one task is learned: the optimizer, its lr and the number of steps.
#[derive(Debug, Clone, PartialEq)]
pub struct InnerLoop {
    /// The optimizer (PyTorch's defaults; Adam with β₁ = 0).
    pub optimizer: OptimizerKind,
    /// Its learning rate.
    pub lr: f64,
    /// Full-batch steps on the support set.
    pub steps: usize,
}

impl InnerLoop {
    /// The inner loop of a meta-training run's settings.
    pub fn of(c: &ReptileConfig) -> Self {
        Self {
            optimizer: c.inner_optimizer,
            lr: c.inner_lr,
            steps: c.inner_steps,
        }
    }

    /// The same loop with `steps` steps (few-shot evaluation often adapts longer).
    pub fn with_steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }

    /// Trains `model` on `(inputs, targets)` (task labels, u32) for [`Self::steps`] steps,
    /// in training mode, from its current weights; gives the loss of each step.
    pub fn adapt<M: TrainModel<Inputs = Tensor> + ?Sized>(
        &self,
        model: &M,
        inputs: &Tensor,
        targets: &Tensor,
    ) -> Result<Vec<f64>> {
        let store = model.store();
        let groups = GroupBuilder::new(self.lr, 0.0).build(store)?;
        let mut optimizer = match self.optimizer {
            OptimizerKind::Adam => OptimizerConfig::Adam(Adam {
                betas: (0.0, Adam::default().betas.1),
                ..Adam::default()
            }),
            kind => OptimizerConfig::defaults(kind),
        }
        .build(groups)?;
        let mut losses = Vec::with_capacity(self.steps);
        for _ in 0..self.steps {
            let recording = Recording::start();
            let logits = model.forward_t(inputs, true)?;
            let loss = model.loss(&logits, targets, 0.0)?;
            losses.push(loss.to_dtype(DType::F64)?.to_scalar::<f64>()?);
            let grads = finetune_core::Grads::from_backward(store, &recording.backward(&loss)?);
            optimizer.step(store, &grads)?;
        }
        Ok(losses)
    }
}

/// The head's tensors (the model's [`finetune_core::ParamLayout::head`] globs).
pub fn head_patterns<M: TrainModel + ?Sized>(model: &M) -> Result<PatternSet> {
    PatternSet::new(&model.layout().head)
}

/// Sets every floating-point tensor of `store` matching `head` to zero.
pub fn zero_head(store: &ParamStore, head: &PatternSet) -> Result<()> {
    for (name, t) in store.tensors() {
        if head.matches(&name) && t.dtype().is_float() {
            store.set(&name, &t.zeros_like()?)?;
        }
    }
    Ok(())
}
