//! 2-D max pooling over NCHW with any kernel, stride and (implicit `-inf`) padding, fused
//! forward and backward.
//!
//! candle's `max_pool2d_with_stride` has no padding and its backward fails whenever
//! kernel != stride (the ResNet stem pools 3×3 with stride 2). Semantics here follow
//! `torch.nn.functional.max_pool2d` (no dilation, floor mode): output size
//! `(H + 2·pad - k) / stride + 1`; padding is never selected; within a window the FIRST
//! maximum in row-major order wins, so on ties the whole gradient goes to it; a NaN in a
//! window is selected (propagates), as in PyTorch. The backward recomputes each window's
//! arg-max from the input instead of storing indices, then scatters `dy` to it.
//!
//! Both directions scan a whole output row at once, one kernel tap at a time (a contiguous run
//! of loads with selects, compiled per vector level by [`multiversion!`](super::simd); with a
//! stride, over the input row split into its phases), rather than window by window.

use candle_core::{Layout, Shape, Tensor};
use rayon::prelude::*;

use super::kernel::{self, Real};
use super::simd::multiversion;
use crate::{Error, Result};

const NAME: &str = "max_pool2d";

/// Max pooling of an `[N, C, H, W]` tensor; `kernel`, `stride`, `padding` are `(h, w)` pairs.
///
/// Differentiable. Padding must be at most half the kernel (as PyTorch requires), so every
/// window holds at least one real element. Fused on CPU, composed elsewhere.
pub fn max_pool2d(
    x: &Tensor,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
) -> Result<Tensor> {
    let geom = Geometry::new(x, kernel, stride, padding)?;
    if !kernel::fused_on(x) {
        return max_pool2d_composed(x, kernel, stride, padding);
    }
    let dtype = x.dtype();
    let xs = kernel::kernel_input(x, kernel::compute_dtype(dtype, NAME)?)?;
    let y = crate::tape::apply_op1(&xs, kernel::Fused(geom))?;
    Ok(y.to_dtype(dtype)?)
}

/// [`max_pool2d`] as a composition of differentiable candle ops (any device): pads with
/// `-inf`, gathers the `kh·kw` strided window candidates into a trailing axis, picks the
/// first arg-max and `gather`s it (whose backward scatters to exactly that element).
/// Memory-hungry (`kh·kw` copies of the output) but correct for any kernel/stride.
/// Differs from the fused op only for NaN inputs and for windows whose real elements are all
/// `-inf`.
pub fn max_pool2d_composed(
    x: &Tensor,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
) -> Result<Tensor> {
    let g = Geometry::new(x, kernel, stride, padding)?;
    let (n, c) = (g.n, g.c);
    // Pad so that every strided candidate view `narrow(i, stride·out)` fits.
    let hp = (g.h + 2 * g.ph).max(g.kh - 1 + g.sh * g.oh);
    let wp = (g.w + 2 * g.pw).max(g.kw - 1 + g.sw * g.ow);
    let xp = pad_neg_inf(x, 2, g.ph, hp - g.h - g.ph)?;
    let xp = pad_neg_inf(&xp, 3, g.pw, wp - g.w - g.pw)?;
    let mut candidates = Vec::with_capacity(g.kh * g.kw);
    for i in 0..g.kh {
        let rows = xp
            .narrow(2, i, g.sh * g.oh)?
            .reshape((n, c, g.oh, g.sh, wp))?
            .narrow(3, 0, 1)?
            .squeeze(3)?;
        for j in 0..g.kw {
            let cand = rows
                .narrow(3, j, g.sw * g.ow)?
                .reshape((n, c, g.oh, g.ow, g.sw))?
                .narrow(4, 0, 1)?
                .squeeze(4)?;
            candidates.push(cand);
        }
    }
    // `stack` of a single candidate (a 1×1 kernel) returns it as a strided view, and `gather`
    // needs a contiguous source.
    let stacked = Tensor::stack(&candidates, 4)?.contiguous()?;
    // candle's argmax keeps the first maximum: row-major window order, like PyTorch.
    let idx = stacked.argmax_keepdim(4)?;
    Ok(stacked.gather(&idx, 4)?.squeeze(4)?)
}

fn pad_neg_inf(x: &Tensor, dim: usize, left: usize, right: usize) -> Result<Tensor> {
    if left == 0 && right == 0 {
        return Ok(x.clone());
    }
    let pad = |len: usize| -> Result<Tensor> {
        let mut dims = x.dims().to_vec();
        dims[dim] = len;
        Ok(Tensor::zeros(dims, x.dtype(), x.device())?.affine(1.0, f64::NEG_INFINITY)?)
    };
    let mut parts = Vec::with_capacity(3);
    if left > 0 {
        parts.push(pad(left)?);
    }
    parts.push(x.clone());
    if right > 0 {
        parts.push(pad(right)?);
    }
    Ok(Tensor::cat(&parts, dim)?)
}

/// Shapes of one pooling: input `[n, c, h, w]`, output `[n, c, oh, ow]`.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    fn new(
        x: &Tensor,
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        (ph, pw): (usize, usize),
    ) -> Result<Self> {
        let (n, c, h, w) = x.dims4().map_err(|_| {
            Error::config(format!(
                "{NAME}: expected an [N, C, H, W] input, got {:?}",
                x.dims()
            ))
        })?;
        if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
            return Err(Error::config(format!(
                "{NAME}: kernel {:?} and stride {:?} must be positive",
                (kh, kw),
                (sh, sw)
            )));
        }
        if h == 0 || w == 0 {
            return Err(Error::config(format!(
                "{NAME}: empty spatial input {:?}",
                x.dims()
            )));
        }
        if 2 * ph > kh || 2 * pw > kw {
            return Err(Error::config(format!(
                "{NAME}: padding {:?} must be at most half the kernel {:?}",
                (ph, pw),
                (kh, kw)
            )));
        }
        if h + 2 * ph < kh || w + 2 * pw < kw {
            return Err(Error::config(format!(
                "{NAME}: kernel {:?} larger than the padded input {:?}",
                (kh, kw),
                (h + 2 * ph, w + 2 * pw)
            )));
        }
        // In-plane positions (and the backward's tags, `y·W + kx < (H + 2)·W`) are u32.
        if (h + 2)
            .checked_mul(w)
            .is_none_or(|p| p >= u32::MAX as usize)
        {
            return Err(Error::config(format!(
                "{NAME}: planes of {h}×{w} elements are too large (at most about 2³²)"
            )));
        }
        let oh = (h + 2 * ph - kh) / sh + 1;
        let ow = (w + 2 * pw - kw) / sw + 1;
        Ok(Self {
            n,
            c,
            h,
            w,
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
            oh,
            ow,
        })
    }

    /// Index within an `h·w` plane of the selected element of output window `(oy, ox)`: the
    /// scalar scan, for the windows [`Self::scan_row`] leaves unresolved.
    #[inline]
    fn argmax<T: Real>(&self, plane: &[T], oy: usize, ox: usize) -> usize {
        let y0 = (oy * self.sh) as isize - self.ph as isize;
        let x0 = (ox * self.sw) as isize - self.pw as isize;
        let (ys, ye) = (
            y0.max(0) as usize,
            ((y0 + self.kh as isize) as usize).min(self.h),
        );
        let (xs, xe) = (
            x0.max(0) as usize,
            ((x0 + self.kw as isize) as usize).min(self.w),
        );
        let mut best = ys * self.w + xs;
        let mut best_v = plane[best];
        for y in ys..ye {
            let row = &plane[y * self.w..y * self.w + self.w];
            for (x, &v) in row.iter().enumerate().take(xe).skip(xs) {
                if v > best_v || v.is_nan() {
                    best_v = v;
                    best = y * self.w + x;
                }
            }
        }
        best
    }

    /// The windows of output row `oy` of one plane, all at once: `vals[ox]` gets each
    /// window's maximum and, when `IDX`, `idx[ox]` the tag `y·W + kx` of its selected element
    /// (input row `y`, kernel column `kx`), which sits at in-plane index `idx[ox] + ox·sw − pw`.
    ///
    /// The kernel taps are visited in the window's row-major order, each as one pass over the
    /// output columns that it reaches (contiguous loads that vectorise), a value
    /// replacing the current one when strictly larger or NaN, as in [`Self::argmax`]. A window
    /// whose real elements are all `-inf` keeps `idx = u32::MAX` (its value, `-inf`, is right);
    /// the caller resolves those with [`Self::argmax`].
    ///
    /// With a stride above 1 each input row is first split into its `sw` phases (`phases`,
    /// scratch of the row's length: `row[p], row[p + sw], …` for `p = 0..sw`), so that every
    /// tap reads one phase contiguously: LLVM vectorises the contiguous scan but not a strided
    /// one.
    #[inline(always)]
    fn scan_row<T: Real, const IDX: bool>(
        &self,
        plane: &[T],
        oy: usize,
        phases: &mut Vec<T>,
        vals: &mut [T],
        idx: &mut [u32],
    ) {
        vals.fill(T::NEG_INFINITY);
        if IDX {
            idx.fill(u32::MAX);
        }
        let y0 = (oy * self.sh) as isize - self.ph as isize;
        let rows = y0.max(0) as usize..((y0 + self.kh as isize) as usize).min(self.h);
        let reach = self.w + self.pw;
        let sw = self.sw;
        for y in rows {
            let row = &plane[y * self.w..(y + 1) * self.w];
            if sw > 1 {
                phases.clear();
                kernel::split_phases(row, sw, phases);
            }
            for kx in 0..self.kw.min(reach) {
                // Output columns whose tap `kx` lands in the row: pw ≤ ox·sw + kx < w + pw.
                let lo = self.pw.saturating_sub(kx).div_ceil(self.sw);
                let hi = ((reach - kx - 1) / self.sw + 1).min(self.ow);
                if lo >= hi {
                    continue;
                }
                let first = lo * sw + kx - self.pw;
                let src = if sw == 1 {
                    &row[first..first + hi - lo]
                } else {
                    // Phase `p` starts at `Σ_{q<p} ⌈(w − q)/sw⌉`; `first` is its element
                    // `first / sw`.
                    let p = first % sw;
                    let start: usize = (0..p).map(|q| (self.w - q).div_ceil(sw)).sum();
                    let at = start + first / sw;
                    &phases[at..at + hi - lo]
                };
                if IDX {
                    let tag = (y * self.w + kx) as u32;
                    scan_tap_idx(src, tag, &mut vals[lo..hi], &mut idx[lo..hi]);
                } else {
                    scan_tap(src, &mut vals[lo..hi]);
                }
            }
        }
    }

    fn out_shape(&self) -> Shape {
        Shape::from((self.n, self.c, self.oh, self.ow))
    }
}

multiversion! {
    /// One kernel tap over a run of output columns: `src[j]` competes for output `j`,
    /// replacing `vals[j]` when strictly larger or NaN (a select, which vectorises).
    fn scan_tap<T: Real>(src: &[T], vals: &mut [T]) {
        for (best, &v) in vals.iter_mut().zip(src) {
            *best = if v > *best || v.is_nan() { v } else { *best };
        }
    }
}

multiversion! {
    /// [`scan_tap`] that also sets `idx[j] = tag` where the tap's element replaces the
    /// current one (the caller turns tags back into positions).
    fn scan_tap_idx<T: Real>(src: &[T], tag: u32, vals: &mut [T], idx: &mut [u32]) {
        for ((best, at), &v) in vals.iter_mut().zip(idx.iter_mut()).zip(src) {
            let take = v > *best || v.is_nan();
            *best = if take { v } else { *best };
            *at = if take { tag } else { *at };
        }
    }
}

impl kernel::UnaryKernel for Geometry {
    fn op_names(&self) -> (&'static str, &'static str) {
        ("finetune-max-pool2d", "finetune-max-pool2d-bwd")
    }

    fn bwd_reads_input(&self) -> bool {
        true
    }

    fn fwd<T: Real>(&self, x: &[T], _l: &Layout) -> candle_core::Result<(Vec<T>, Shape)> {
        let g = *self;
        let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
        let mut y = vec![T::ZERO; g.n * g.c * plane_out];
        if plane_out > 0 {
            y.par_chunks_mut(plane_out)
                .zip(x.par_chunks(plane_in))
                .with_min_len(kernel::min_rows_per_task(plane_in))
                // Scratch per task, not per plane: small planes come by the thousand.
                .for_each_init(
                    || Vec::with_capacity(g.w),
                    |phases, (yp, xp)| {
                        for (oy, row) in yp.chunks_exact_mut(g.ow).enumerate() {
                            g.scan_row::<T, false>(xp, oy, phases, row, &mut []);
                        }
                    },
                );
        }
        Ok((y, g.out_shape()))
    }

    /// `dx`: each `dy` added at its window's arg-max in `x`.
    fn bwd<T: Real>(&self, x: &[T], _l: &Layout, dy: &[T]) -> candle_core::Result<Vec<T>> {
        let g = *self;
        let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
        if dy.len() != g.n * g.c * plane_out {
            candle_core::bail!("{NAME} backward: gradient size mismatch");
        }
        if plane_in == 0 || plane_out == 0 {
            return Ok(vec![T::ZERO; x.len()]);
        }
        // Not zeroed up front (one thread clearing the whole input's size): each task zeroes
        // its own planes just before adding into them, while they are in its cache.
        let mut dx: Vec<T> = Vec::with_capacity(x.len());
        dx.spare_capacity_mut()[..x.len()]
            .par_chunks_mut(plane_in)
            .zip(x.par_chunks(plane_in).zip(dy.par_chunks(plane_out)))
            .with_min_len(kernel::min_rows_per_task(plane_in))
            .for_each_init(
                || {
                    (
                        vec![T::ZERO; g.ow],
                        vec![0u32; g.ow],
                        Vec::with_capacity(g.w),
                    )
                },
                |(vals, idx, phases), (dxp, (xp, dyp))| {
                    let dxp = kernel::fill_init(dxp, T::ZERO);
                    for (oy, dyr) in dyp.chunks_exact(g.ow).enumerate() {
                        g.scan_row::<T, true>(xp, oy, phases, vals, idx);
                        for (ox, (&i, &d)) in idx.iter().zip(dyr).enumerate() {
                            let i = if i == u32::MAX {
                                g.argmax(xp, oy, ox)
                            } else {
                                i as usize + ox * g.sw - g.pw
                            };
                            dxp[i] += d;
                        }
                    }
                },
            );
        // SAFETY: the planes cover all `x.len()` elements (`x` is whole planes), and each was
        // initialised by `fill_init` before anything read it.
        unsafe { dx.set_len(x.len()) };
        Ok(dx)
    }
}
