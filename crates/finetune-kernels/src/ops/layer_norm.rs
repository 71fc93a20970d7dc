//! Layer normalisation over the last dimension, `y = (x - mean) / sqrt(var + eps) * gamma + beta`
//! with the biased variance (as `torch.nn.LayerNorm`), fused forward and fused analytic
//! backward.
//!
//! candle's own `candle_nn::LayerNorm` / `candle_nn::ops::layer_norm` is fused but records no
//! backward at all (gradients silently vanish); its composed `layer_norm_slow` is
//! differentiable but slow. The backward here recomputes the row statistics from `x` (cheap,
//! one pass) instead of keeping them alive in the graph, and produces the gradients of `x`,
//! `gamma` and `beta` in one parallel pass:
//!
//! `dx = rstd · (g - mean(g) - x̂ · mean(g · x̂))` with `g = dy · gamma`, `x̂ = (x - mean) · rstd`;
//! `dgamma = Σ_rows dy · x̂`, `dbeta = Σ_rows dy`.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp3, Layout, Shape, Tensor, WithDType, D,
};

use super::kernel::{self, Real};
use crate::{Error, Result};

const NAME: &str = "layer_norm";

/// Layer norm of `x` over its last dimension with affine `gamma`, `beta` (both `[d]`).
///
/// Differentiable in all three inputs. On CPU this runs the fused kernels (f32/f64 natively,
/// f16/bf16 through f32); on other devices it falls back to [`layer_norm_composed`].
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    check(x, gamma, beta, eps)?;
    if !kernel::fused_on(x) {
        return layer_norm_composed(x, gamma, beta, eps);
    }
    let dtype = x.dtype();
    let cdt = kernel::compute_dtype(dtype, NAME)?;
    let xs = kernel::kernel_input(x, cdt)?;
    let gs = kernel::kernel_input(gamma, cdt)?;
    let bs = kernel::kernel_input(beta, cdt)?;
    let y = crate::tape::apply_op3(&xs, &gs, &bs, LayerNormOp { eps })?;
    Ok(y.to_dtype(dtype)?)
}

/// The same layer norm as a composition of differentiable candle ops (any device; the GPU
/// fallback and the bench's baseline for correctness).
pub fn layer_norm_composed(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    check(x, gamma, beta, eps)?;
    let dtype = x.dtype();
    let cdt = kernel::compute_dtype(dtype, NAME)?;
    let x = x.to_dtype(cdt)?;
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let rstd = (var + eps)?.sqrt()?.recip()?;
    let y = xc
        .broadcast_mul(&rstd)?
        .broadcast_mul(&gamma.to_dtype(cdt)?)?
        .broadcast_add(&beta.to_dtype(cdt)?)?;
    Ok(y.to_dtype(dtype)?)
}

fn check(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<()> {
    let d = x.dim(D::Minus1)?;
    if gamma.dims() != [d] || beta.dims() != [d] {
        return Err(Error::config(format!(
            "layer_norm: gamma {:?} and beta {:?} must both be [{d}] for input {:?}",
            gamma.dims(),
            beta.dims(),
            x.dims()
        )));
    }
    if gamma.dtype() != x.dtype() || beta.dtype() != x.dtype() {
        return Err(Error::config(format!(
            "layer_norm: dtype mismatch: x {:?}, gamma {:?}, beta {:?}",
            x.dtype(),
            gamma.dtype(),
            beta.dtype()
        )));
    }
    if d == 0 {
        return Err(Error::config("layer_norm: the last dimension is empty"));
    }
    if eps.is_nan() || eps < 0.0 {
        return Err(Error::config(format!(
            "layer_norm: eps must be >= 0, got {eps}"
        )));
    }
    Ok(())
}

/// Mean and `1 / sqrt(var + eps)` of one row.
#[inline]
fn row_stats<T: Real>(xr: &[T], inv_d: T, eps: T) -> (T, T) {
    let mean = kernel::sum(xr) * inv_d;
    let var = kernel::sum_sq_dev(xr, mean) * inv_d;
    (mean, T::ONE / (var + eps).sqrt())
}

#[derive(Clone)]
struct LayerNormOp {
    eps: f64,
}

impl LayerNormOp {
    /// `y` from `x` (rows of `gamma.len()`), `gamma`, `beta`.
    fn fwd<T: Real>(&self, x: &[T], g: &[T], b: &[T]) -> Vec<T> {
        let d = g.len();
        let (inv_d, eps) = (T::c(1.0 / d as f64), T::c(self.eps));
        kernel::par_build(
            x.len(),
            d,
            kernel::min_rows_per_task(d),
            #[inline(always)]
            |r, yr| {
                let xr = &x[r * d..(r + 1) * d];
                let (mean, rstd) = row_stats(xr, inv_d, eps);
                for (((y, &x), &g), &b) in yr.iter_mut().zip(xr).zip(g).zip(b) {
                    y.write((x - mean) * rstd * g + b);
                }
            },
        )
    }
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "finetune-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        kernel::with_real!(s1.dtype(), self.name(), T => {
            let [x, g, b] = kernel::slices::<T, 3>([(s1, l1), (s2, l2), (s3, l3)], NAME)?;
            Ok((T::to_cpu_storage_owned(self.fwd(x, g, b)), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let packed = x.apply_op3_no_bwd(gamma, &grad, &LayerNormBwd { eps: self.eps })?;
        let (n, d) = (x.elem_count(), gamma.elem_count());
        let dx = packed.narrow(0, 0, n)?.reshape(x.shape())?;
        let dgamma = packed.narrow(0, n, d)?;
        let dbeta = packed.narrow(0, n + d, d)?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// The backward kernel: inputs `x`, `gamma`, `dy`; output one flat buffer holding `dx`
/// (`x`'s elements), then `dgamma` (`d`), then `dbeta` (`d`).
struct LayerNormBwd {
    eps: f64,
}

impl LayerNormBwd {
    /// `[dx | dgamma | dbeta]` from `x`, `gamma` and `dy`.
    fn bwd<T: Real>(&self, x: &[T], g: &[T], dy: &[T]) -> Vec<T> {
        let (n, d) = (x.len(), g.len());
        let (inv_d, eps) = (T::c(1.0 / d as f64), T::c(self.eps));
        // Rows per task is fixed (not tied to the thread count), so the order in which the
        // per-task partial sums of dgamma/dbeta are added, and hence the result, is the same
        // on every machine. Each task leaves its partial [dgamma | dbeta] in `partials`.
        let rows_per_task = kernel::min_rows_per_task(d);
        let partials = std::sync::Mutex::new(Vec::new());
        let mut out = Vec::with_capacity(n + 2 * d);
        kernel::par_append(
            &mut out,
            n,
            rows_per_task * d,
            1,
            #[inline(always)]
            |task, dxc| {
                let mut acc = vec![T::ZERO; 2 * d];
                let (dg, db) = acc.split_at_mut(d);
                for (i, dxr) in dxc.chunks_mut(d).enumerate() {
                    let r = task * rows_per_task + i;
                    let xr = &x[r * d..(r + 1) * d];
                    let dyr = &dy[r * d..(r + 1) * d];
                    let (mean, rstd) = row_stats(xr, inv_d, eps);
                    // Σ dy·γ and Σ dy·γ·(x - mean), lane-split for vectorisation.
                    let (mut s_g, mut s_gx) = ([T::ZERO; 8], [T::ZERO; 8]);
                    for ((xc, dc), gc) in xr.chunks(8).zip(dyr.chunks(8)).zip(g.chunks(8)) {
                        for j in 0..xc.len() {
                            let gi = dc[j] * gc[j];
                            s_g[j] += gi;
                            s_gx[j] += gi * (xc[j] - mean);
                        }
                    }
                    let mean_g = s_g.into_iter().sum::<T>() * inv_d;
                    let mean_gx = s_gx.into_iter().sum::<T>() * inv_d * rstd;
                    // Zipped iterators (no bounds checks) so this loop vectorises.
                    let sums = dg.iter_mut().zip(db.iter_mut());
                    for ((((dx, &x), &dy), &gj), (dg, db)) in
                        dxr.iter_mut().zip(xr).zip(dyr).zip(g).zip(sums)
                    {
                        let xhat = (x - mean) * rstd;
                        dx.write(rstd * (dy * gj - mean_g - xhat * mean_gx));
                        *dg += dy * xhat;
                        *db += dy;
                    }
                }
                partials
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((task, acc));
            },
        );
        // Add the partials in task order, whatever order the tasks finished in.
        let mut partials = partials.into_inner().unwrap_or_else(|e| e.into_inner());
        partials.sort_unstable_by_key(|&(task, _)| task);
        out.resize(n + 2 * d, T::ZERO); // within capacity: no copy
        let tail = &mut out[n..];
        for (_, p) in partials {
            for (t, v) in tail.iter_mut().zip(p) {
                *t += v;
            }
        }
        out
    }
}

impl CustomOp3 for LayerNormBwd {
    fn name(&self) -> &'static str {
        "finetune-layer-norm-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        kernel::with_real!(s1.dtype(), self.name(), T => {
            let [x, g, dy] = kernel::slices::<T, 3>([(s1, l1), (s2, l2), (s3, l3)], NAME)?;
            let packed = self.bwd(x, g, dy);
            let len = packed.len();
            Ok((T::to_cpu_storage_owned(packed), Shape::from(len)))
        })
    }
}
