//! `Linear`: `y = x Wᵀ + b` with PyTorch's `[out, in]` weight layout.

use super::{join, param};
use crate::error::Result;
use crate::params::{Param, ParamStore};
use candle_core::{Module, Tensor};
use finetune_kernels::ops::OpSet;

/// A fully connected layer, as `torch.nn.Linear`: `y = x Wᵀ + b` over the last dimension of
/// `x` (`[.., in]` → `[.., out]`, through [`Module::forward`] or [`Linear::forward_with`]).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Param,
    bias: Option<Param>,
}

/// The `Linear` whose tensors are `{prefix}.weight` `[out, in]` and, if `bias`, `{prefix}.bias`.
pub fn linear(
    store: &ParamStore,
    prefix: &str,
    in_dim: usize,
    out_dim: usize,
    bias: bool,
) -> Result<Linear> {
    Ok(Linear {
        weight: param(store, &join(prefix, "weight"), &[out_dim, in_dim])?,
        bias: if bias {
            Some(param(store, &join(prefix, "bias"), &[out_dim])?)
        } else {
            None
        },
    })
}

impl Linear {
    /// The weight, `{prefix}.weight` `[out, in]`.
    pub fn weight(&self) -> &Param {
        &self.weight
    }

    /// The bias, `{prefix}.bias` `[out]`, when the layer has one.
    pub fn bias(&self) -> Option<&Param> {
        self.bias.as_ref()
    }

    /// The layer through `ops` (the fused [`finetune_kernels::ops::linear()`] or the stock composition
    /// [`Module::forward`] also uses).
    pub fn forward_with(&self, x: &Tensor, ops: OpSet) -> Result<Tensor> {
        let b = self.bias.as_ref().map(Param::tensor);
        Ok(ops.linear(x, &self.weight.tensor(), b.as_ref())?)
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let w = self.weight.tensor();
        let dims = x.dims();
        // Fold leading dims into one matmul: [.., in] → [n, in] × [in, out].
        let in_dim = *dims.last().unwrap_or(&0);
        let n: usize = dims[..dims.len().saturating_sub(1)].iter().product();
        let y = x.reshape((n, in_dim))?.matmul(&w.t()?)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(&b.tensor())?,
            None => y,
        };
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = w.dim(0)?;
        }
        y.reshape(out_dims)
    }
}
