//! [`Pass`]: what every layer of one forward pass shares — training or evaluation, the
//! dropout stream, and the op implementations ([`OpSet`]) the model runs on.

use crate::dropout::DropoutRng;
use candle_core::Tensor;
use finetune_core::nn::Linear;
use finetune_core::Result;
use finetune_kernels::ops::OpSet;

/// One forward pass's shared state.
#[derive(Clone, Copy)]
pub struct Pass<'a> {
    /// Training (dropout live) or evaluation.
    pub train: bool,
    /// The model's dropout stream.
    pub rng: &'a DropoutRng,
    /// The op implementations.
    pub ops: OpSet,
}

impl Pass<'_> {
    /// Dropout with probability `p` in training, the identity otherwise.
    pub fn dropout(&self, x: &Tensor, p: f64) -> Result<Tensor> {
        self.rng.dropout(x, p, self.train, self.ops)
    }

    /// A linear layer (with its LoRA adapter, whose dropout draws from the stream in
    /// training).
    pub fn linear(&self, l: &Linear, x: &Tensor) -> Result<Tensor> {
        if self.train && l.draws_dropout() {
            self.rng.with(|rng| l.forward_t(x, self.ops, Some(rng)))
        } else {
            l.forward_with(x, self.ops)
        }
    }
}
