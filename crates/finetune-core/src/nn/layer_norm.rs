//! `LayerNorm` over the last dimension, through the fused differentiable
//! [`ops::layer_norm`](finetune_kernels::ops::layer_norm) (candle-nn's has no gradient).

use super::{join, param};
use crate::error::Result;
use crate::params::{Param, ParamStore};
use candle_core::Tensor;

/// Layer normalisation over the last dimension with a learned scale and shift, as
/// `torch.nn.LayerNorm(dim, eps)`.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Param,
    bias: Param,
    eps: f64,
}

/// The `LayerNorm` whose tensors are `{prefix}.weight` and `{prefix}.bias`, both `[dim]`.
pub fn layer_norm(store: &ParamStore, prefix: &str, dim: usize, eps: f64) -> Result<LayerNorm> {
    Ok(LayerNorm {
        weight: param(store, &join(prefix, "weight"), &[dim])?,
        bias: param(store, &join(prefix, "bias"), &[dim])?,
        eps,
    })
}

impl LayerNorm {
    /// `(x − mean) / √(var + eps) · weight + bias` over the last dimension of `x` (biased
    /// variance, as PyTorch), through `finetune-kernels`' differentiable `layer_norm` (fused
    /// where a kernel exists).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(finetune_kernels::ops::layer_norm(
            x,
            &self.weight.tensor(),
            &self.bias.tensor(),
            self.eps,
        )?)
    }

    /// The layer through `ops` (fused, or candle_nn's composed `layer_norm_slow`).
    pub fn forward_with(&self, x: &Tensor, ops: finetune_kernels::ops::OpSet) -> Result<Tensor> {
        Ok(ops.layer_norm(x, &self.weight.tensor(), &self.bias.tensor(), self.eps)?)
    }
}
