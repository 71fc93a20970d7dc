//! Softmax and log-softmax over the last dimension, fused forward and fused backward.
//!
//! candle's fused `candle_nn::ops::softmax_last_dim` has no backward; its composed `softmax` /
//! `log_softmax` are differentiable but run several passes and allocations. Here:
//!
//! - softmax: `y = exp(x - max) / Σ exp(x - max)`, backward `dx = y · (dy - Σ dy·y)`;
//! - log-softmax: `y = x - max - ln Σ exp(x - max)`, backward `dx = dy - exp(y) · Σ dy`.
//!
//! Both backward passes only need the op's output `y`, never `x`.

use candle_core::{Layout, Shape, Tensor, D};

use super::kernel::{self, Real};
use crate::Result;

/// Softmax over the last dimension. Differentiable; fused on CPU, composed elsewhere.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    apply(x, Kind::Softmax)
}

/// Log-softmax over the last dimension. Differentiable; fused on CPU, composed elsewhere.
pub fn log_softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    apply(x, Kind::LogSoftmax)
}

/// [`softmax_last_dim`] as a composition of differentiable candle ops (any device).
pub fn softmax_last_dim_composed(x: &Tensor) -> Result<Tensor> {
    let dtype = x.dtype();
    let x = x.to_dtype(kernel::compute_dtype(dtype, "softmax")?)?;
    // Softmax is invariant to the shift, so the max needs no gradient path.
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let y = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
    Ok(y.to_dtype(dtype)?)
}

/// [`log_softmax_last_dim`] as a composition of differentiable candle ops (any device).
pub fn log_softmax_last_dim_composed(x: &Tensor) -> Result<Tensor> {
    let dtype = x.dtype();
    let x = x.to_dtype(kernel::compute_dtype(dtype, "log_softmax")?)?;
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let y = shifted.broadcast_sub(&lse)?;
    Ok(y.to_dtype(dtype)?)
}

#[derive(Clone, Copy)]
enum Kind {
    Softmax,
    LogSoftmax,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Softmax => "softmax",
            Kind::LogSoftmax => "log_softmax",
        }
    }
}

fn apply(x: &Tensor, kind: Kind) -> Result<Tensor> {
    x.dim(D::Minus1)?; // rank >= 1
    if !kernel::fused_on(x) {
        return match kind {
            Kind::Softmax => softmax_last_dim_composed(x),
            Kind::LogSoftmax => log_softmax_last_dim_composed(x),
        };
    }
    let dtype = x.dtype();
    let xs = kernel::kernel_input(x, kernel::compute_dtype(dtype, kind.name())?)?;
    let y = crate::tape::apply_op1(&xs, kernel::Fused(kind))?;
    Ok(y.to_dtype(dtype)?)
}

/// Last-dimension size of a layout (1 for scalars, never used: the wrappers need rank >= 1).
fn last_dim(l: &Layout) -> usize {
    l.dims().last().copied().unwrap_or(1)
}

impl kernel::UnaryKernel for Kind {
    fn op_names(&self) -> (&'static str, &'static str) {
        match self {
            Kind::Softmax => ("finetune-softmax", "finetune-softmax-bwd"),
            Kind::LogSoftmax => ("finetune-log-softmax", "finetune-log-softmax-bwd"),
        }
    }

    /// Both backward passes only need the output.
    fn bwd_reads_input(&self) -> bool {
        false
    }

    fn fwd<T: Real>(&self, x: &[T], l: &Layout) -> candle_core::Result<(Vec<T>, Shape)> {
        let d = last_dim(l);
        let kind = *self;
        // One pass for the max, one writing exp(x - max), one summing it, one normalising
        // in place; all of them vectorise.
        let y = kernel::par_build(
            x.len(),
            d,
            kernel::min_rows_per_task(d),
            #[inline(always)]
            |r, yr| {
                let xr = &x[r * d..r * d + yr.len()];
                let m = kernel::max(xr);
                let yr = kernel::map_init(yr, xr, |v| (v - m).fast_exp());
                let s = kernel::sum(yr);
                match kind {
                    Kind::Softmax => {
                        let inv = T::ONE / s;
                        yr.iter_mut().for_each(|y| *y *= inv);
                    }
                    Kind::LogSoftmax => {
                        let lse = m + s.ln();
                        for (y, &x) in yr.iter_mut().zip(xr) {
                            *y = x - lse;
                        }
                    }
                }
            },
        );
        Ok((y, l.shape().clone()))
    }

    /// `y` is the forward output.
    fn bwd<T: Real>(&self, y: &[T], l: &Layout, dy: &[T]) -> candle_core::Result<Vec<T>> {
        if y.len() != dy.len() {
            candle_core::bail!("{} backward: gradient size mismatch", self.name());
        }
        let d = last_dim(l);
        let kind = *self;
        Ok(kernel::par_build(
            y.len(),
            d,
            kernel::min_rows_per_task(d),
            #[inline(always)]
            |r, dxr| {
                let yr = &y[r * d..r * d + dxr.len()];
                let dyr = &dy[r * d..r * d + dxr.len()];
                match kind {
                    Kind::Softmax => {
                        let s = kernel::dot(yr, dyr);
                        for ((dx, &y), &dy) in dxr.iter_mut().zip(yr).zip(dyr) {
                            dx.write(y * (dy - s));
                        }
                    }
                    Kind::LogSoftmax => {
                        let s = kernel::sum(dyr);
                        for ((dx, &y), &dy) in dxr.iter_mut().zip(yr).zip(dyr) {
                            dx.write(dy - y.fast_exp() * s);
                        }
                    }
                }
            },
        ))
    }
}
