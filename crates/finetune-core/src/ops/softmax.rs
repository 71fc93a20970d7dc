//! Softmax and log-softmax over the last dimension, fused forward and fused backward.
//!
//! candle's fused `candle_nn::ops::softmax_last_dim` has no backward; its composed `softmax` /
//! `log_softmax` are differentiable but run several passes and allocations. Here:
//!
//! - softmax: `y = exp(x - max) / Σ exp(x - max)`, backward `dx = y · (dy - Σ dy·y)`;
//! - log-softmax: `y = x - max - ln Σ exp(x - max)`, backward `dx = dy - exp(y) · Σ dy`.
//!
//! Both backward passes only need the op's output `y`, never `x`.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor, D,
};
use rayon::prelude::*;

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
    let y = xs.apply_op1(SoftmaxOp(kind))?;
    Ok(y.to_dtype(dtype)?)
}

/// Last-dimension size of a layout (1 for scalars, never used: the wrappers need rank >= 1).
fn last_dim(l: &Layout) -> usize {
    l.dims().last().copied().unwrap_or(1)
}

struct SoftmaxOp(Kind);

impl SoftmaxOp {
    fn fwd<T: Real>(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = kernel::slice::<T>(s, l, self.0.name())?;
        let d = last_dim(l);
        let mut y = vec![T::ZERO; x.len()];
        if d > 0 {
            let kind = self.0;
            y.par_chunks_mut(d)
                .zip(x.par_chunks(d))
                .with_min_len(kernel::min_rows_per_task(d))
                .for_each(|(yr, xr)| {
                    let m = kernel::max(xr);
                    let mut s = T::ZERO;
                    for (y, &x) in yr.iter_mut().zip(xr) {
                        let e = (x - m).exp();
                        *y = e;
                        s += e;
                    }
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
                });
        }
        Ok((T::to_cpu_storage_owned(y), l.shape().clone()))
    }
}

impl CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        match self.0 {
            Kind::Softmax => "finetune-softmax",
            Kind::LogSoftmax => "finetune-log-softmax",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        match s.dtype() {
            DType::F32 => self.fwd::<f32>(s, l),
            DType::F64 => self.fwd::<f64>(s, l),
            dt => candle_core::bail!("{}: unsupported dtype {dt:?}", self.0.name()),
        }
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        Ok(Some(y.apply_op2_no_bwd(&grad, &SoftmaxBwd(self.0))?))
    }
}

/// Backward kernel: inputs the forward output `y` and `dy`, output `dx`.
struct SoftmaxBwd(Kind);

impl SoftmaxBwd {
    fn bwd<T: Real>(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = kernel::slice::<T>(s1, l1, self.0.name())?;
        let dy = kernel::slice::<T>(s2, l2, self.0.name())?;
        if y.len() != dy.len() {
            candle_core::bail!("{} backward: gradient size mismatch", self.0.name());
        }
        let d = last_dim(l1);
        let mut dx = vec![T::ZERO; y.len()];
        if d > 0 {
            let kind = self.0;
            dx.par_chunks_mut(d)
                .zip(y.par_chunks(d).zip(dy.par_chunks(d)))
                .with_min_len(kernel::min_rows_per_task(d))
                .for_each(|(dxr, (yr, dyr))| match kind {
                    Kind::Softmax => {
                        let s = kernel::dot(yr, dyr);
                        for ((dx, &y), &dy) in dxr.iter_mut().zip(yr).zip(dyr) {
                            *dx = y * (dy - s);
                        }
                    }
                    Kind::LogSoftmax => {
                        let s = kernel::sum(dyr);
                        for ((dx, &y), &dy) in dxr.iter_mut().zip(yr).zip(dyr) {
                            *dx = dy - y.exp() * s;
                        }
                    }
                });
        }
        Ok((T::to_cpu_storage_owned(dx), l1.shape().clone()))
    }
}

impl CustomOp2 for SoftmaxBwd {
    fn name(&self) -> &'static str {
        match self.0 {
            Kind::Softmax => "finetune-softmax-bwd",
            Kind::LogSoftmax => "finetune-log-softmax-bwd",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        match s1.dtype() {
            DType::F32 => self.bwd::<f32>(s1, l1, s2, l2),
            DType::F64 => self.bwd::<f64>(s1, l1, s2, l2),
            dt => candle_core::bail!("{} backward: unsupported dtype {dt:?}", self.0.name()),
        }
    }
}
