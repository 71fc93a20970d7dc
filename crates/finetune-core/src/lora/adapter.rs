//! One module's adapter and its forward: the low-rank update added to the layer's output.

use super::ModuleKind;
use crate::error::Result;
use crate::params::Param;
use crate::Rng;
use candle_core::Tensor;
use finetune_kernels::ops::{self, OpSet};

/// A module's LoRA adapter: `lora_A`, `lora_B`, the scale and the input dropout.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// `lora_A`: `[r, in]` (a conv's: `[r, in, k, k]`).
    pub a: Param,
    /// `lora_B`: `[out, r]` (a conv's: `[out, r, 1, 1]`).
    pub b: Param,
    /// `lora_alpha / r` (or `/ √r`).
    pub scale: f64,
    /// Dropout on the adapter's input in training.
    pub dropout: f64,
    /// The adapted layer.
    pub kind: ModuleKind,
}

impl Adapter {
    /// `B` times the scale, as the second matmul's weight: the scale costs one pass over a
    /// tiny matrix instead of one over the activations.
    fn scaled_b(&self) -> Result<Tensor> {
        let b = self.b.tensor();
        Ok(if self.scale == 1.0 {
            b
        } else {
            (b * self.scale)?
        })
    }

    /// The adapter's input: `x`, through dropout when training (`rng` given) and the adapter
    /// has some.
    fn input(&self, x: &Tensor, ops: OpSet, rng: Option<&mut Rng>) -> Result<Tensor> {
        match rng {
            Some(rng) if self.dropout > 0.0 => Ok(ops.dropout(x, self.dropout, true, rng)?),
            _ => Ok(x.clone()),
        }
    }

    /// The adapted linear layer `x Wᵀ + b + s · B(A(dropout(x)))` (`x` `[.., in]`, `w`
    /// `[out, in]`): with the fused ops one op ([`ops::lora_linear()`], which keeps no
    /// intermediate activation for the backward), else the layer through `ops` and
    /// [`Self::add_linear`]. `rng` (training) drives the adapter's dropout, one draw when it
    /// has some, either way.
    pub fn linear(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        ops: OpSet,
        rng: Option<&mut Rng>,
    ) -> Result<Tensor> {
        if ops != OpSet::Fused {
            let y = ops.linear(x, w, bias)?;
            return self.add_linear(&y, x, ops, rng);
        }
        let (a, b) = (self.a.tensor(), self.b.tensor());
        let lora = ops::LoraArgs {
            a: &a,
            b: &b,
            scale: self.scale,
            p: self.dropout,
        };
        let train = rng.is_some();
        // Outside training the op draws nothing: any stream will do.
        let mut unused = Rng::seed_from_u64(0);
        let rng = rng.unwrap_or(&mut unused);
        Ok(ops::lora_linear(x, w, bias, lora, train, rng)?)
    }

    /// A linear layer's output `y` (for input `x`, `[.., in]`) plus `s · B(A(dropout(x)))`,
    /// every op through `ops` (so a recorded backward covers the adapter too).
    pub fn add_linear(
        &self,
        y: &Tensor,
        x: &Tensor,
        ops: OpSet,
        rng: Option<&mut Rng>,
    ) -> Result<Tensor> {
        let h = ops.linear(&self.input(x, ops, rng)?, &self.a.tensor(), None)?;
        let delta = ops.linear(&h, &self.scaled_b()?, None)?;
        Ok(ops.add(y, &delta)?)
    }

    /// A conv layer's output `y` (for input `x`, `[N, C, H, W]`) plus `s · B(A(dropout(x)))`:
    /// `A` with the layer's kernel, stride and padding, `B` 1×1. `fused` picks this project's
    /// conv kernels over candle's.
    pub fn add_conv(
        &self,
        y: &Tensor,
        x: &Tensor,
        fused: bool,
        rng: Option<&mut Rng>,
    ) -> Result<Tensor> {
        let ModuleKind::Conv2d {
            stride, padding, ..
        } = self.kind
        else {
            return Err(crate::Error::config("a linear adapter applied to a conv"));
        };
        let set = if fused { OpSet::Fused } else { OpSet::Stock };
        let x = self.input(x, set, rng)?;
        let (a, b) = (self.a.tensor(), self.scaled_b()?);
        let delta = if fused {
            let h = ops::conv2d(&x, &a, stride, padding, 1)?;
            ops::conv2d(&h, &b, 1, 0, 1)?
        } else {
            x.conv2d(&a, padding, stride, 1, 1)?
                .conv2d(&b, 0, 1, 1, 1)?
        };
        Ok(set.add(y, &delta)?)
    }
}
