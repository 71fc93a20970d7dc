//! `Linear`: `y = x Wᵀ + b` with PyTorch's `[out, in]` weight layout, plus the module's LoRA
//! adapter when the store gives it one.

use super::{join, param};
use crate::error::Result;
use crate::lora::ModuleKind;
use crate::params::{Param, ParamStore};
use crate::Rng;
use candle_core::{Module, Tensor};
use finetune_kernels::ops::OpSet;

/// A fully connected layer, as `torch.nn.Linear`: `y = x Wᵀ + b` over the last dimension of
/// `x` (`[.., in]` → `[.., out]`, through [`Module::forward`] or [`Linear::forward_with`]).
#[derive(Debug, Clone)]
pub struct Linear {
    name: String,
    weight: Param,
    bias: Option<Param>,
}

/// The `Linear` whose tensors are `{prefix}.weight` `[out, in]` and, if `bias`, `{prefix}.bias`;
/// registered with the store as module `prefix` (what LoRA targets).
pub fn linear(
    store: &ParamStore,
    prefix: &str,
    in_dim: usize,
    out_dim: usize,
    bias: bool,
) -> Result<Linear> {
    let weight = param(store, &join(prefix, "weight"), &[out_dim, in_dim])?;
    store.register_module(
        prefix,
        ModuleKind::Linear {
            in_features: in_dim,
            out_features: out_dim,
        },
    );
    Ok(Linear {
        name: prefix.to_string(),
        weight,
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

    /// The module's name (`{prefix}`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layer through `ops` (the fused [`finetune_kernels::ops::linear()`] or the stock
    /// composition), with its LoRA adapter if it has one (its dropout off).
    pub fn forward_with(&self, x: &Tensor, ops: OpSet) -> Result<Tensor> {
        self.forward_t(x, ops, None)
    }

    /// [`Self::forward_with`] in training: `rng` (the model's dropout stream) drives the LoRA
    /// adapter's input dropout.
    pub fn forward_t(&self, x: &Tensor, ops: OpSet, rng: Option<&mut Rng>) -> Result<Tensor> {
        let b = self.bias.as_ref().map(Param::tensor);
        let w = self.weight.tensor();
        match self.weight.store().adapter(&self.name) {
            Some(adapter) => adapter.linear(x, &w, b.as_ref(), ops, rng),
            None => Ok(ops.linear(x, &w, b.as_ref())?),
        }
    }

    /// Whether a training forward draws from the dropout stream (a LoRA adapter with
    /// dropout).
    pub fn draws_dropout(&self) -> bool {
        self.weight
            .store()
            .adapter(&self.name)
            .is_some_and(|a| a.dropout > 0.0)
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if self.weight.store().adapter(&self.name).is_some() {
            return self
                .forward_with(x, OpSet::Stock)
                .map_err(|e| candle_core::Error::Msg(e.to_string()));
        }
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
