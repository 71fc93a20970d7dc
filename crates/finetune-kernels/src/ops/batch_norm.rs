//! BatchNorm over `[N, C, H, W]` in training mode (batch statistics), optionally followed by
//! ReLU, fused forward and backward.
//!
//! Forward, per channel over `M = N·H·W` values: `μ`, `σ²` (biased), `x̂ = (x − μ)/√(σ² + ε)`,
//! `y = x̂·w + b` (then `max(y, 0)`). The statistics are computed once, in one pass over `x`
//! (sums of `x − k` and `(x − k)²` with `k` the mean of the head of the channel's first plane,
//! each plane summed in eight lanes and the planes in f64), and kept by the op for its
//! backward and for the caller's running-statistics update.
//! Backward, with `g = dy` (masked by `y > 0` after a ReLU): `db = Σ g`, `dw = Σ g·x̂`,
//! `dx = w/√(σ² + ε) · (g − db/M − x̂·dw/M)`. The candle composition of the same function
//! materialises about ten full-size intermediates in each direction.

use std::sync::{Arc, OnceLock};

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp3, Layout, Shape, Tensor, WithDType,
};
use rayon::prelude::*;

use super::kernel::{self, with_real, Real};
use crate::{Error, Result};

const NAME: &str = "batch_norm_train";

/// How many leading values of a channel's first plane estimate the shift of its one-pass
/// statistics.
const SHIFT_SAMPLE: usize = 1024;

/// A training-mode batch norm's output and the batch statistics it used.
#[derive(Debug, Clone)]
pub struct BatchNormOutput {
    /// `[N, C, H, W]`.
    pub y: Tensor,
    /// Per-channel batch mean `[C]` (detached).
    pub mean: Tensor,
    /// Per-channel biased batch variance `[C]` (detached).
    pub var: Tensor,
}

/// Training-mode batch norm of `x` `[N, C, H, W]` with affine `weight`, `bias` `[C]`, then ReLU
/// when `relu`. Differentiable in all three; the statistics come back detached (for the
/// running estimates). Fused on CPU, [`batch_norm_train_composed`] elsewhere.
pub fn batch_norm_train(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<BatchNormOutput> {
    let g = Geometry::new(x, weight, bias)?;
    if !kernel::fused_on(x) {
        return batch_norm_train_composed(x, weight, bias, eps, relu);
    }
    let dtype = x.dtype();
    let cd = kernel::compute_dtype(dtype, NAME)?;
    let [xs, ws, bs] = [x, weight, bias].map(|t| kernel::kernel_input(t, cd));
    let stats = Arc::new(OnceLock::new());
    let op = BnTrain {
        g,
        eps,
        relu,
        stats: stats.clone(),
    };
    let y = crate::tape::apply_op3(&xs?, &ws?, &bs?, op)?.to_dtype(dtype)?;
    let Some(st) = stats.get() else {
        return Err(Error::config(format!(
            "{NAME}: the forward kept no statistics"
        )));
    };
    let dev = x.device();
    Ok(BatchNormOutput {
        y,
        mean: Tensor::new(st.mean.as_slice(), dev)?.to_dtype(dtype)?,
        var: Tensor::new(st.var.as_slice(), dev)?.to_dtype(dtype)?,
    })
}

/// [`batch_norm_train`] composed of differentiable candle ops (any device).
pub fn batch_norm_train_composed(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<BatchNormOutput> {
    let g = Geometry::new(x, weight, bias)?;
    let (n, c, hw) = (g.n, g.c, g.hw);
    let bshape = (1, c, 1, 1);
    let count = (n * hw) as f64;
    // Per-channel means as two contiguous reductions (last axis, then batch): several times
    // faster in candle than one reduction over the strided axes (0, 2, 3).
    let channel_mean = |t: &Tensor| -> Result<Tensor> {
        Ok((t
            .reshape((n, c, hw))?
            .sum_keepdim(2)?
            .sum_keepdim(0)?
            .reshape(bshape)?
            / count)?)
    };
    let mean = channel_mean(x)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = channel_mean(&xc.sqr()?)?;
    let scale = (&var + eps)?
        .sqrt()?
        .recip()?
        .broadcast_mul(&weight.reshape(bshape)?)?;
    let mut y = xc
        .broadcast_mul(&scale)?
        .broadcast_add(&bias.reshape(bshape)?)?;
    if relu {
        y = y.relu()?;
    }
    Ok(BatchNormOutput {
        y,
        mean: mean.detach().flatten_all()?,
        var: var.detach().flatten_all()?,
    })
}

#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    c: usize,
    hw: usize,
}

impl Geometry {
    fn new(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Self> {
        let (n, c, h, wd) = x.dims4().map_err(|_| {
            Error::config(format!(
                "{NAME}: expected an [N, C, H, W] input, got {:?}",
                x.dims()
            ))
        })?;
        if w.dims() != [c] || b.dims() != [c] {
            return Err(Error::config(format!(
                "{NAME}: weight {:?} and bias {:?} must be [{c}]",
                w.dims(),
                b.dims()
            )));
        }
        if n * h * wd < 2 {
            return Err(Error::config(format!(
                "{NAME}: expected more than 1 value per channel when training, got input {:?}",
                x.dims()
            )));
        }
        Ok(Self { n, c, hw: h * wd })
    }

    fn count(&self) -> f64 {
        (self.n * self.hw) as f64
    }

    /// Channels per rayon task of the per-channel sums, about as many elements as
    /// [`kernel::min_rows_per_task`] gives a task (small planes come by the thousand).
    fn min_channels_per_task(&self) -> usize {
        kernel::min_rows_per_task(self.n * self.hw)
    }

    /// The planes `x[n][c]` of channel `c`, `n = 0..N`.
    fn planes<'a, T>(&self, x: &'a [T], c: usize) -> impl Iterator<Item = &'a [T]> + 'a {
        let (cs, hw) = (self.c, self.hw);
        (0..self.n).map(move |n| &x[(n * cs + c) * hw..(n * cs + c + 1) * hw])
    }
}

/// Batch statistics of one forward, in f64.
#[derive(Debug)]
struct Stats {
    mean: Vec<f64>,
    /// Biased.
    var: Vec<f64>,
}

#[derive(Clone)]
struct BnTrain {
    g: Geometry,
    eps: f64,
    relu: bool,
    stats: Arc<OnceLock<Stats>>,
}

impl BnTrain {
    fn compute_stats<T: Real>(&self, x: &[T]) -> Stats {
        let g = self.g;
        let (mean, var): (Vec<f64>, Vec<f64>) = (0..g.c)
            .into_par_iter()
            .with_min_len(g.min_channels_per_task())
            .map(|c| {
                // One pass of sums shifted by `k`, an estimate of the mean from the head of the
                // channel's first plane: Σ(x − k) and Σ(x − k)². With `k` near the mean the
                // variance `Σ(x − k)²/M − (Σ(x − k)/M)²` loses almost nothing to cancellation.
                let first = g.planes(x, c).next().unwrap_or(&[]);
                let head = &first[..first.len().min(SHIFT_SAMPLE)];
                let k = if head.is_empty() {
                    T::ZERO
                } else {
                    T::c(kernel::sum(head).to_f64() / head.len() as f64)
                };
                // One vector-level dispatch per channel, not per plane (ResNet's last stages
                // have planes of 1 to 16 elements).
                let (s1, s2) = super::simd::wide(
                    #[inline(always)]
                    || {
                        let (mut s1, mut s2) = (0.0, 0.0);
                        for p in g.planes(x, c) {
                            let (a, b) = kernel::shifted_sums(p, k);
                            s1 += a.to_f64();
                            s2 += b.to_f64();
                        }
                        (s1, s2)
                    },
                );
                let d = s1 / g.count();
                (k.to_f64() + d, (s2 / g.count() - d * d).max(0.0))
            })
            .unzip();
        Stats { mean, var }
    }

    /// Per channel `(inv_std, scale = w·inv_std, shift = b − μ·scale)`.
    fn affine(&self, st: &Stats, w: &[f64], b: &[f64]) -> Vec<(f64, f64, f64)> {
        (0..self.g.c)
            .map(|c| {
                let inv = 1.0 / (st.var[c] + self.eps).sqrt();
                let scale = w[c] * inv;
                (inv, scale, b[c] - st.mean[c] * scale)
            })
            .collect()
    }

    fn fwd<T: Real>(&self, x: &[T], w: &[T], b: &[T]) -> Vec<T> {
        let g = self.g;
        let st = self.stats.get_or_init(|| self.compute_stats(x));
        let w: Vec<f64> = w.iter().map(|v| v.to_f64()).collect();
        let b: Vec<f64> = b.iter().map(|v| v.to_f64()).collect();
        let aff = self.affine(st, &w, &b);
        let relu = self.relu;
        let mut y = Vec::with_capacity(x.len());
        kernel::par_append(
            &mut y,
            x.len(),
            g.hw,
            kernel::min_rows_per_task(g.hw),
            #[inline(always)]
            |plane, out| {
                let (_, scale, shift) = aff[plane % g.c];
                let (scale, shift) = (T::c(scale), T::c(shift));
                let xs = &x[plane * g.hw..(plane + 1) * g.hw];
                // One pass, the ReLU as a select (a branch would not vectorise).
                if relu {
                    kernel::map_init(out, xs, |v| {
                        let y = v * scale + shift;
                        if y < T::ZERO {
                            T::ZERO
                        } else {
                            y
                        }
                    });
                } else {
                    kernel::map_init(out, xs, |v| v * scale + shift);
                }
            },
        );
        y
    }

    /// `(dx, dw, db)`; `dx` only when `want_dx`.
    fn bwd<T: Real>(
        &self,
        x: &[T],
        w: &[T],
        y: &[T],
        dy: &[T],
        want_dx: bool,
    ) -> (Option<Vec<T>>, Vec<T>, Vec<T>) {
        let g = self.g;
        let st = self.stats.get_or_init(|| self.compute_stats(x));
        let relu = self.relu;
        // Per channel Σ g and Σ g·(x − μ), from planes of x, y, dy.
        let sums: Vec<(f64, f64)> = (0..g.c)
            .into_par_iter()
            .with_min_len(g.min_channels_per_task())
            .map(|c| {
                let m = T::c(st.mean[c]);
                super::simd::wide(
                    #[inline(always)]
                    || {
                        let (mut sg, mut sgx) = (0.0, 0.0);
                        let planes = g.planes(x, c).zip(g.planes(y, c)).zip(g.planes(dy, c));
                        for ((xp, yp), dp) in planes {
                            let (a, b) = if relu {
                                grad_sums::<T, true>(xp, yp, dp, m)
                            } else {
                                grad_sums::<T, false>(xp, yp, dp, m)
                            };
                            sg += a.to_f64();
                            sgx += b.to_f64();
                        }
                        (sg, sgx)
                    },
                )
            })
            .collect();
        let mut dw = Vec::with_capacity(g.c);
        let mut db = Vec::with_capacity(g.c);
        // dx = k·(g − db/M − (x − μ)·inv²·dw/M), k = w·inv, dw = inv·Σ g·(x − μ).
        let mut coef = Vec::with_capacity(g.c);
        for (c, &(sg, sgx)) in sums.iter().enumerate() {
            let inv = 1.0 / (st.var[c] + self.eps).sqrt();
            let dwc = sgx * inv;
            dw.push(T::c(dwc));
            db.push(T::c(sg));
            let k = w[c].to_f64() * inv;
            let a = sg / g.count();
            let bcoef = inv * inv * sgx / g.count();
            coef.push((k, a, bcoef, st.mean[c]));
        }
        let dx = want_dx.then(|| {
            let mut dx = Vec::with_capacity(x.len());
            kernel::par_append(
                &mut dx,
                x.len(),
                g.hw,
                kernel::min_rows_per_task(g.hw),
                #[inline(always)]
                |plane, out| {
                    let (k, a, bc, m) = coef[plane % g.c];
                    let (k, a, bc, m) = (T::c(k), T::c(a), T::c(bc), T::c(m));
                    let r = plane * g.hw..(plane + 1) * g.hw;
                    let (xs, ys, ds) = (&x[r.clone()], &y[r.clone()], &dy[r]);
                    for (((o, &xv), &yv), &dv) in out.iter_mut().zip(xs).zip(ys).zip(ds) {
                        let gv = if !relu || yv > T::ZERO { dv } else { T::ZERO };
                        o.write(k * (gv - a - (xv - m) * bc));
                    }
                },
            );
            dx
        });
        (dx, dw, db)
    }
}

/// `(Σ g_i, Σ g_i·(x_i − m))` with `g = d` (masked by `y > 0` when `RELU`), lane-split so
/// that it vectorises.
#[inline(always)]
fn grad_sums<T: Real, const RELU: bool>(x: &[T], y: &[T], d: &[T], m: T) -> (T, T) {
    const L: usize = 8;
    let n = x.len().min(y.len()).min(d.len());
    let (cx, rx) = x[..n].as_chunks::<L>();
    let (cy, ry) = y[..n].as_chunks::<L>();
    let (cd, rd) = d[..n].as_chunks::<L>();
    let gate = |yv: T, dv: T| if !RELU || yv > T::ZERO { dv } else { T::ZERO };
    let (mut a, mut b) = ([T::ZERO; L], [T::ZERO; L]);
    for ((xc, yc), dc) in cx.iter().zip(cy).zip(cd) {
        for i in 0..L {
            let g = gate(yc[i], dc[i]);
            a[i] += g;
            b[i] += g * (xc[i] - m);
        }
    }
    let (mut sa, mut sb) = (a.into_iter().sum::<T>(), b.into_iter().sum::<T>());
    for ((&xv, &yv), &dv) in rx.iter().zip(ry).zip(rd) {
        let g = gate(yv, dv);
        sa += g;
        sb += g * (xv - m);
    }
    (sa, sb)
}

impl CustomOp3 for BnTrain {
    fn name(&self) -> &'static str {
        "finetune-batch-norm-train"
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
        with_real!(s1.dtype(), self.name(), T => {
            let [x, w, b] = kernel::slices::<T, 3>([(s1, l1), (s2, l2), (s3, l3)], self.name())?;
            Ok((T::to_cpu_storage_owned(self.fwd(x, w, b)), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let want_dx = x.track_op();
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (ys, yl) = y.storage_and_layout();
        let (ds, dl) = dy.storage_and_layout();
        let (candle_core::Storage::Cpu(xs), candle_core::Storage::Cpu(ws)) = (&*xs, &*ws) else {
            candle_core::bail!("{}: CPU tensors expected", self.name());
        };
        let (candle_core::Storage::Cpu(ys), candle_core::Storage::Cpu(ds)) = (&*ys, &*ds) else {
            candle_core::bail!("{}: CPU tensors expected", self.name());
        };
        let g = self.g;
        let dev = x.device();
        with_real!(xs.dtype(), self.name(), T => {
            let [xv, wv, yv, dv] = kernel::slices::<T, 4>(
                [(xs, xl), (ws, wl), (ys, yl), (ds, dl)],
                self.name(),
            )?;
            let (dx, dw, db) = self.bwd(xv, wv, yv, dv, want_dx);
            let dx = dx
                .map(|v| Tensor::from_vec(v, (g.n, g.c, g.hw), dev)?.reshape(x.shape()))
                .transpose()?;
            Ok((
                dx,
                Some(Tensor::from_vec(dw, g.c, dev)?),
                Some(Tensor::from_vec(db, g.c, dev)?),
            ))
        })
    }
}
