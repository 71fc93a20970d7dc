//! [`OpSet`]: which implementation of the differentiable building blocks a model runs — this
//! crate's fused kernels, or candle's stock compositions. A model takes one `OpSet` for its
//! whole forward, so the same network can be timed (`finetune bench train --baseline`) and
//! checked for equal results (the loss-curve tests) both ways.

use candle_core::{Tensor, D};

use crate::{Result, Rng};

/// Whether `FINETUNE_OPS=generic` asks for the device-generic path on the CPU (read once): a
/// model's default [`OpSet`] is then [`OpSet::Stock`] and optimizers update with tensor ops, as
/// every step runs on a GPU — so that path is exercised where no GPU is.
pub fn generic_requested() -> bool {
    static GENERIC: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *GENERIC.get_or_init(|| std::env::var("FINETUNE_OPS").is_ok_and(|v| v == "generic"))
}

/// The implementation of a model's ops; the default is [`OpSet::Fused`], or
/// [`OpSet::Stock`] under `FINETUNE_OPS=generic` (see [`generic_requested`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpSet {
    /// This crate's fused ops (on CPU; each falls back to its composition elsewhere).
    Fused,
    /// candle's stock differentiable compositions, as a plain candle model would use them:
    /// `matmul` + `broadcast_add` linear layers, `candle_nn::ops::layer_norm_slow`,
    /// `candle_nn::ops::softmax`, `Tensor::gelu_erf` / `Tensor::gelu`, and dropout as a mask
    /// multiplication ([`super::dropout_composed`]: the mask is this crate's, so that both
    /// sets draw the same random stream; candle_nn's dropout would use its own generator).
    Stock,
}

impl Default for OpSet {
    fn default() -> Self {
        if generic_requested() {
            Self::Stock
        } else {
            Self::Fused
        }
    }
}

impl OpSet {
    /// `x Wᵀ + b` over the last dimension.
    pub fn linear(self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        match self {
            OpSet::Fused => super::linear(x, w, b),
            OpSet::Stock => super::linear_composed(x, w, b),
        }
    }

    /// `a + b`, same shapes (a residual sum); the fused set records it on the
    /// [`crate::tape`] so that a recorded backward runs through it.
    pub fn add(self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        match self {
            OpSet::Fused => crate::tape::add(a, b),
            OpSet::Stock => Ok((a + b)?),
        }
    }

    /// Layer norm over the last dimension.
    pub fn layer_norm(self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
        match self {
            OpSet::Fused => super::layer_norm(x, gamma, beta, eps),
            OpSet::Stock => Ok(candle_nn::ops::layer_norm_slow(x, gamma, beta, eps as f32)?),
        }
    }

    /// Softmax over the last dimension.
    pub fn softmax_last_dim(self, x: &Tensor) -> Result<Tensor> {
        match self {
            OpSet::Fused => super::softmax_last_dim(x),
            OpSet::Stock => Ok(candle_nn::ops::softmax(x, D::Minus1)?),
        }
    }

    /// GELU, erf form.
    pub fn gelu(self, x: &Tensor) -> Result<Tensor> {
        match self {
            OpSet::Fused => super::gelu(x),
            OpSet::Stock => Ok(x.gelu_erf()?),
        }
    }

    /// GELU, tanh approximation.
    pub fn gelu_new(self, x: &Tensor) -> Result<Tensor> {
        match self {
            OpSet::Fused => super::gelu_new(x),
            OpSet::Stock => Ok(x.gelu()?),
        }
    }

    /// Inverted dropout (same random stream and mask either way).
    pub fn dropout(self, x: &Tensor, p: f64, train: bool, rng: &mut Rng) -> Result<Tensor> {
        match self {
            OpSet::Fused => super::dropout(x, p, train, rng),
            OpSet::Stock => super::dropout_composed(x, p, train, rng),
        }
    }

    /// Multi-head self-attention on `[B, T, H]` (see [`super::attention()`]); the stock set
    /// composes it from candle ops with its own softmax and dropout.
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        mask: Option<&Tensor>,
        p: f64,
        train: bool,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        match self {
            OpSet::Fused => super::attention(q, k, v, heads, mask, p, train, rng),
            OpSet::Stock => {
                let (b, t, h) = q.dims3()?;
                let d = h / heads.max(1);
                let split = |x: &Tensor| -> Result<Tensor> {
                    Ok(x.reshape((b, t, heads, d))?.transpose(1, 2)?.contiguous()?)
                };
                let (q, k, v) = (split(q)?, split(k)?, split(v)?);
                let mut scores =
                    (super::composed_matmul(&q, &k.t()?)? * (1.0 / (d as f64).sqrt()))?;
                if let Some(m) = mask {
                    scores = scores.broadcast_add(&m.reshape((b, 1, 1, t))?)?;
                }
                let probs = self.softmax_last_dim(&scores)?;
                let probs = self.dropout(&probs, p, train, rng)?;
                Ok(super::composed_matmul(&probs, &v)?
                    .transpose(1, 2)?
                    .reshape((b, t, h))?)
            }
        }
    }
}
