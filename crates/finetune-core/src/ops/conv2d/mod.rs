//! 2-D convolution of NCHW images with OIHW weights (one group, no bias), forward and
//! backward as im2col + GEMM.
//!
//! candle 0.11.1's CPU `conv2d` is several times slower than a GEMM-based convolution in its
//! forward, and its backward computes the input gradient with a transposed convolution that
//! runs as a plain loop. Here, per image `n`:
//! - forward: `col = im2col(x[n])` (`[C·kh·kw, OH·OW]`), `y[n] = W · col` (`W` as
//!   `[C_out, C·kh·kw]`);
//! - input gradient: `dcol = Wᵀ · dy[n]`, `dx[n] = col2im(dcol)` (a scatter-add);
//! - weight gradient: `dW = Σ_n dy[n] · colᵀ`, `col` recomputed from `x` (nothing is stored
//!   between forward and backward but what autograd keeps anyway: `x` and `W`).
//!
//! The `col` and gathered-`dy` temporaries are per-thread scratch buffers (`ops/scratch.rs`),
//! reused across layers and steps rather than allocated and zeroed per call.
//!
//! A 1×1 convolution with stride 1 and no padding needs no im2col: `x[n]` is its own `col`.
//! Other stride-1 convolutions skip im2col and col2im too. Up to 28-wide output maps they run
//! as GEMMs per kernel tap and output row on a pixel-major copy of the images, which also skips
//! the multiply-adds with the padding ([`taps`]). On wider maps (ResNet's 56×56 stage), where
//! enough of the padded grid is output: over the zero-padded images laid out row after row, each
//! kernel tap is one GEMM of `C` rows reading the padded input at the tap's offset, and the
//! taps accumulate (`forward_shifted` and its two adjoints). The padded copy is about the
//! input's size where `col` is `kh·kw` times larger; the price is computing the few columns
//! that fall in the padding (7 % at 56×56), dropped afterwards.
//! GEMMs run through the `gemm` crate (candle's own matmul kernel). Images are split into one
//! contiguous range per rayon thread, each thread with its own `col` buffer and a
//! single-threaded GEMM; with fewer images than threads, images run one after the other with
//! a multithreaded GEMM. Small feature maps (a strided conv into ResNet's 7×7 stage: 49
//! columns per image) would make thin, inefficient GEMMs, so images are grouped until a GEMM
//! has about 1024 columns: their `col`s (and `dy`s) side by side. The weight gradient's
//! summation order across ranges and groups depends on the thread count (rounding only).
//!
//! im2col and col2im copy whole output rows; where rows are short (the strided convolutions
//! into ResNet's 7×7 and smaller maps) they go through a per-geometry gather table instead,
//! one indexed load or add per element ([`ColRows`]). Kernel taps that read only zero padding
//! for every output (all but the centre of a 3×3 kernel over a 1×1 map) get no `col` rows and
//! no GEMM work.
//!
//! Each gradient is computed only for an input that needs one (a variable, or the result of a
//! tracked op): no input gradient for the images fed to the stem, no weight gradient for a
//! frozen layer.
//!
//! Semantics are `torch.nn.functional.conv2d` with `groups = 1` and symmetric stride, padding
//! and dilation: output size `(H + 2·pad − dil·(k − 1) − 1) / stride + 1`, zero padding.

use std::any::Any;
use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::sync::{Arc, OnceLock};

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp2, Layout, Shape, Tensor, WithDType,
};
use rayon::prelude::*;

use super::gemm::{self, Mat, MatMut, Threads};
use super::kernel::{self, with_real, Real};
use super::scratch::Scratch;
use super::simd::multiversion;
use crate::{Error, Result};

mod taps;

const NAME: &str = "conv2d";

/// `conv2d` of `x` `[N, C, H, W]` with weights `w` `[C_out, C, kh, kw]`, as
/// `torch.nn.functional.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)`.
///
/// Differentiable in both arguments. Fused (im2col + GEMM) on CPU; on other devices it is
/// candle's own [`Tensor::conv2d`] ([`conv2d_candle`]). `f16`/`bf16` compute in `f32`.
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Result<Tensor> {
    let g = Geometry::new(x, w, stride, padding, dilation)?;
    if !kernel::fused_on(x) || !kernel::fused_on(w) {
        return conv2d_candle(x, w, stride, padding, dilation);
    }
    let dtype = x.dtype();
    let cd = kernel::compute_dtype(dtype, NAME)?;
    let xs = kernel::kernel_input(x, cd)?;
    let ws = kernel::kernel_input(w, cd)?;
    let y = crate::tape::apply_op2(&xs, &ws, Conv(g, LiveWeights::default()))?;
    Ok(y.to_dtype(dtype)?)
}

/// candle's own convolution with the same arguments (the baseline, and the fallback off CPU).
pub fn conv2d_candle(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Result<Tensor> {
    Geometry::new(x, w, stride, padding, dilation)?;
    Ok(x.conv2d(w, padding, stride, dilation, 1)?)
}

/// The shapes of one convolution.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    co: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    fn new(x: &Tensor, w: &Tensor, stride: usize, pad: usize, dil: usize) -> Result<Self> {
        let bad = |m: String| Err(Error::config(format!("{NAME}: {m}")));
        let Ok((n, c, h, wd)) = x.dims4() else {
            return bad(format!(
                "expected an [N, C, H, W] input, got {:?}",
                x.dims()
            ));
        };
        let Ok((co, ci, kh, kw)) = w.dims4() else {
            return bad(format!(
                "expected [C_out, C_in, kh, kw] weights, got {:?}",
                w.dims()
            ));
        };
        if ci != c {
            return bad(format!(
                "the input has {c} channels, the weights {ci} (groups are not supported)"
            ));
        }
        if x.dtype() != w.dtype() {
            return bad(format!(
                "input {:?} and weights {:?} differ in dtype",
                x.dtype(),
                w.dtype()
            ));
        }
        if h == 0 || wd == 0 || c == 0 {
            return bad(format!(
                "the input {:?} has an empty channel, height or width dimension",
                x.dims()
            ));
        }
        if stride == 0 || dil == 0 || kh == 0 || kw == 0 || co == 0 {
            return bad(format!(
                "stride {stride}, dilation {dil} and kernel {:?} must be positive",
                (co, kh, kw)
            ));
        }
        let (eh, ew) = (dil * (kh - 1) + 1, dil * (kw - 1) + 1);
        if h + 2 * pad < eh || wd + 2 * pad < ew {
            return bad(format!(
                "kernel {:?} (dilated) larger than the padded input {:?}",
                (eh, ew),
                (h + 2 * pad, wd + 2 * pad)
            ));
        }
        Ok(Self {
            n,
            c,
            h,
            w: wd,
            co,
            kh,
            kw,
            stride,
            pad,
            dil,
            oh: (h + 2 * pad - eh) / stride + 1,
            ow: (wd + 2 * pad - ew) / stride + 1,
        })
    }

    /// Rows of `col`: `C·kh·kw`.
    fn ck(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output pixels per image: `OH·OW`.
    fn p(&self) -> usize {
        self.oh * self.ow
    }

    fn plane_in(&self) -> usize {
        self.c * self.h * self.w
    }

    fn plane_out(&self) -> usize {
        self.co * self.p()
    }

    /// 1×1, stride 1, no padding: `col` is the image itself.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }

    /// Padded input height and width.
    fn padded(&self) -> (usize, usize) {
        (self.h + 2 * self.pad, self.w + 2 * self.pad)
    }

    /// Whether the forward runs as shifted GEMMs over the padded input instead of im2col
    /// ([`forward_shifted`]): stride 1, a real kernel (a pointwise conv needs neither), and
    /// few wasted columns (each image computes `Hp·Wp` columns for its `OH·OW` outputs).
    fn shifted(&self) -> bool {
        let (hp, wp) = self.padded();
        self.stride == 1
            && !self.pointwise()
            && (self.p() as f64) >= SHIFTED_MIN_USEFUL * (hp * wp) as f64
    }

    /// Copies `k` images `[C, H, W]` into `dst` as `[C][k][Hp][Wp]` with zero borders.
    fn pad_images<T: Real>(&self, xs: &[T], k: usize, dst: &mut [T]) {
        let (hp, wp) = self.padded();
        let (h, w, pad) = (self.h, self.w, self.pad);
        let seg = k * hp * wp;
        for c in 0..self.c {
            for i in 0..k {
                let plane = &xs[i * self.plane_in() + c * h * w..][..h * w];
                let d = &mut dst[c * seg + i * hp * wp..][..hp * wp];
                d[..pad * wp].fill(T::ZERO);
                d[(pad + h) * wp..].fill(T::ZERO);
                for (y, src) in plane.chunks_exact(w).enumerate() {
                    let row = &mut d[(pad + y) * wp..][..wp];
                    row[..pad].fill(T::ZERO);
                    row[pad..pad + w].copy_from_slice(src);
                    row[pad + w..].fill(T::ZERO);
                }
            }
        }
    }

    /// Lays the output gradients `[C_out, OH, OW]` of `k` images into `dst` as
    /// `[C_out][k][Hp][Wp]` (the column layout of [`forward_shifted`]), zero in the columns
    /// that hold no output.
    fn grid_grads<T: Real>(&self, dy: &[T], k: usize, dst: &mut [T]) {
        let (hp, wp) = self.padded();
        let seg = k * hp * wp;
        for o in 0..self.co {
            for i in 0..k {
                let plane = &dy[i * self.plane_out() + o * self.p()..][..self.p()];
                let d = &mut dst[o * seg + i * hp * wp..][..hp * wp];
                for (oy, src) in plane.chunks_exact(self.ow).enumerate() {
                    let row = &mut d[oy * wp..][..wp];
                    row[..self.ow].copy_from_slice(src);
                    row[self.ow..].fill(T::ZERO);
                }
                d[self.oh * wp..].fill(T::ZERO);
            }
        }
    }

    /// Columns the shifted GEMMs of `k` images compute: up to the last image's last output.
    fn shifted_cols(&self, k: usize) -> usize {
        let (hp, wp) = self.padded();
        (k - 1) * hp * wp + (self.oh - 1) * wp + self.ow
    }

    /// The kernel taps `(ky, kx)` in weight order, each as `(ky·kw + kx, offset)`: its index in
    /// a weight's `kh·kw` block and its offset in the padded layout of [`forward_shifted`].
    fn taps(&self) -> impl Iterator<Item = (usize, usize)> {
        let (kw, dil, wp) = (self.kw, self.dil, self.padded().1);
        (0..self.kh * kw).map(move |t| (t, (t / kw) * dil * wp + (t % kw) * dil))
    }

    /// The output columns `ox` whose input column `ox·stride + off` lies in `0..len`, as a
    /// range `lo..hi` within `0..out`.
    fn valid(off: isize, stride: usize, len: usize, out: usize) -> (usize, usize) {
        let s = stride as isize;
        let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
        let hi = if len as isize - off <= 0 {
            0
        } else {
            (len as isize - off + s - 1) / s
        };
        let hi = (hi as usize).min(out);
        ((lo as usize).min(hi), hi)
    }

    /// `col[(c·kh + ky)·kw + kx][oy·OW + ox] = x[c][oy·s − pad + ky·dil][ox·s − pad + kx·dil]`
    /// (zero outside the image), for one image `x` `[C, H, W]`.
    ///
    /// Row `r` of `col` starts at `r·ld + off` (`ld ≥ OH·OW`: several images side by side).
    /// Callers go through [`im2col_wide`], compiled per vector level.
    #[inline(always)]
    fn im2col<T: Real>(&self, x: &[T], col: &mut [T], ld: usize, off: usize) {
        let (p, hw, s, w) = (self.p(), self.h * self.w, self.stride, self.w);
        // With a stride, each row is first split into its phases (`row[q], row[q + s], …` for
        // q = 0..s, one after the other), so that every tap copies a contiguous run instead of
        // gathering with the stride: one scalar pass over the plane instead of kh·kw.
        let mut phased: Vec<T> = Vec::with_capacity(if s > 1 { hw } else { 0 });
        for c in 0..self.c {
            let plane = &x[c * hw..(c + 1) * hw];
            if s > 1 {
                phased.clear();
                for row in plane.chunks_exact(w) {
                    kernel::split_phases(row, s, &mut phased);
                }
            }
            for ky in 0..self.kh {
                let y_off = (ky * self.dil) as isize - self.pad as isize;
                for kx in 0..self.kw {
                    let x_off = (kx * self.dil) as isize - self.pad as isize;
                    let (lo, hi) = Self::valid(x_off, self.stride, self.w, self.ow);
                    let r = (c * self.kh + ky) * self.kw + kx;
                    let row = &mut col[r * ld + off..r * ld + off + p];
                    for (oy, out) in row.chunks_exact_mut(self.ow).enumerate() {
                        let iy = (oy * self.stride) as isize + y_off;
                        if iy < 0 || iy >= self.h as isize {
                            out.fill(T::ZERO);
                            continue;
                        }
                        let src = &plane[iy as usize * self.w..(iy as usize + 1) * self.w];
                        out[..lo].fill(T::ZERO);
                        out[hi..].fill(T::ZERO);
                        let first = (lo * self.stride) as isize + x_off;
                        if self.stride == 1 {
                            let first = first as usize;
                            out[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
                        } else {
                            let first = first as usize;
                            let at = self.phased_at(iy as usize, first);
                            out[lo..hi].copy_from_slice(&phased[at..at + hi - lo]);
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Self::im2col`]: `dx` (one image, zeroed by the caller) accumulates
    /// every `col` entry at the input position it was read from (rows laid out as there).
    /// Callers go through [`col2im_wide`].
    #[inline(always)]
    fn col2im<T: Real>(&self, col: &[T], ld: usize, off: usize, dx: &mut [T]) {
        let (p, hw, s, w) = (self.p(), self.h * self.w, self.stride, self.w);
        // With a stride, each channel accumulates into its phase-split plane (see im2col), with
        // contiguous adds, and is merged back into `dx` once at the end.
        let mut phased: Vec<T> = Vec::with_capacity(if s > 1 { hw } else { 0 });
        for c in 0..self.c {
            let plane = &mut dx[c * hw..(c + 1) * hw];
            if s > 1 {
                phased.clear();
                phased.resize(hw, T::ZERO);
            }
            for ky in 0..self.kh {
                let y_off = (ky * self.dil) as isize - self.pad as isize;
                for kx in 0..self.kw {
                    let x_off = (kx * self.dil) as isize - self.pad as isize;
                    let (lo, hi) = Self::valid(x_off, self.stride, self.w, self.ow);
                    let r = (c * self.kh + ky) * self.kw + kx;
                    let row = &col[r * ld + off..r * ld + off + p];
                    for (oy, src) in row.chunks_exact(self.ow).enumerate() {
                        let iy = (oy * self.stride) as isize + y_off;
                        if iy < 0 || iy >= self.h as isize {
                            continue;
                        }
                        let dst = &mut plane[iy as usize * self.w..(iy as usize + 1) * self.w];
                        let first = ((lo * self.stride) as isize + x_off) as usize;
                        if self.stride == 1 {
                            for (d, &s) in dst[first..first + hi - lo].iter_mut().zip(&src[lo..hi])
                            {
                                *d += s;
                            }
                        } else {
                            let at = self.phased_at(iy as usize, first);
                            for (d, &v) in phased[at..at + hi - lo].iter_mut().zip(&src[lo..hi]) {
                                *d += v;
                            }
                        }
                    }
                }
            }
            if s > 1 {
                for (out, split) in plane.chunks_exact_mut(w).zip(phased.chunks_exact(w)) {
                    kernel::add_phases(split, s, out);
                }
            }
        }
    }

    /// Whether kernel tap `(ky, kx)` reads the image for at least one output (else it reads
    /// only zero padding: the outer taps of a 3×3 kernel over a 1×1 map).
    fn tap_live(&self, ky: usize, kx: usize) -> bool {
        let off = |k: usize| (k * self.dil) as isize - self.pad as isize;
        let (y0, y1) = Self::valid(off(ky), self.stride, self.h, self.oh);
        let (x0, x1) = Self::valid(off(kx), self.stride, self.w, self.ow);
        y0 < y1 && x0 < x1
    }

    /// [`Self::im2col`] through a [`ColRows`] gather table: one indexed load per `col` entry,
    /// `C·L` rows for the table's `L` taps.
    #[inline(always)]
    fn im2col_table<T: Real>(&self, table: &[u32], x: &[T], col: &mut [T], ld: usize, off: usize) {
        let (p, hw) = (self.p(), self.h * self.w);
        let taps = table.len() / p;
        for (c, plane) in x.chunks_exact(hw).enumerate() {
            for (t, index) in table.chunks_exact(p).enumerate() {
                let r = c * taps + t;
                for (out, &i) in col[r * ld + off..r * ld + off + p].iter_mut().zip(index) {
                    *out = plane.get(i as usize).copied().unwrap_or(T::ZERO);
                }
            }
        }
    }

    /// [`Self::col2im`] through a [`ColRows`] gather table: one indexed add per `col` entry.
    #[inline(always)]
    fn col2im_table<T: Real>(&self, table: &[u32], col: &[T], ld: usize, off: usize, dx: &mut [T]) {
        let (p, hw) = (self.p(), self.h * self.w);
        let taps = table.len() / p;
        for (c, plane) in dx.chunks_exact_mut(hw).enumerate() {
            for (t, index) in table.chunks_exact(p).enumerate() {
                let r = c * taps + t;
                for (&v, &i) in col[r * ld + off..r * ld + off + p].iter().zip(index) {
                    if let Some(d) = plane.get_mut(i as usize) {
                        *d += v;
                    }
                }
            }
        }
    }

    /// Where input element `(iy, ix)` sits in a plane whose rows are split into their `stride`
    /// phases (`row[q], row[q + s], …` for `q = 0..s`, one after the other).
    fn phased_at(&self, iy: usize, ix: usize) -> usize {
        let s = self.stride;
        let start: usize = (0..ix % s).map(|q| (self.w - q).div_ceil(s)).sum();
        iy * self.w + start + ix / s
    }

    fn out_shape(&self) -> Shape {
        Shape::from((self.n, self.co, self.oh, self.ow))
    }
}

/// The rows of one convolution's `col` matrix: which kernel taps it holds, and how they are
/// gathered from an image.
///
/// A tap that reads only zero padding for every output adds nothing, so its rows are dropped:
/// `col` holds `C·L` rows for the `L` live taps, and the GEMMs use those taps' weights only
/// ([`Self::weights`]). A 3×3 kernel over a 1×1 map (ResNet's last stage on 32×32 images)
/// keeps its centre tap: 9× fewer FLOPs.
///
/// Short output rows (`OW ≤ GATHER_MAX_OW`), where a row copy of [`Geometry::im2col`] moves
/// only a few elements, go through a gather table instead: for every live tap and output
/// pixel, the input pixel it reads within a channel plane (`iy·W + ix`), or [`PADDING`] where
/// it falls in the zero padding; `L` rows of `OH·OW`, in weight order. Dropped taps always
/// go through the table.
struct ColRows {
    /// The live taps (`ky·kw + kx`), ascending.
    live: Vec<usize>,
    table: Option<Vec<u32>>,
}

impl ColRows {
    fn new(g: &Geometry) -> Self {
        let mut live: Vec<usize> = (0..g.kh * g.kw)
            .filter(|&t| g.tap_live(t / g.kw, t % g.kw))
            .collect();
        if live.is_empty() {
            // Every output reads padding only (a stride that skips the whole image): one tap
            // of zero rows keeps the GEMMs well-formed and gives zero outputs and gradients.
            live.push(0);
        }
        let gather = g.ow <= GATHER_MAX_OW || live.len() < g.kh * g.kw;
        let table = (gather && g.h * g.w < PADDING as usize).then(|| {
            let mut table = Vec::with_capacity(live.len() * g.p());
            for &t in &live {
                let (ky, kx) = (t / g.kw, t % g.kw);
                for oy in 0..g.oh {
                    let iy = (oy * g.stride + ky * g.dil).checked_sub(g.pad);
                    for ox in 0..g.ow {
                        let ix = (ox * g.stride + kx * g.dil).checked_sub(g.pad);
                        table.push(match (iy, ix) {
                            (Some(iy), Some(ix)) if iy < g.h && ix < g.w => (iy * g.w + ix) as u32,
                            _ => PADDING,
                        });
                    }
                }
            }
            table
        });
        // Without a table (a plane too large for u32 indices) im2col copies every tap.
        let live = if table.is_some() {
            live
        } else {
            (0..g.kh * g.kw).collect()
        };
        ColRows { live, table }
    }

    /// Whether every tap has its rows.
    fn all(&self, g: &Geometry) -> bool {
        self.live.len() == g.kh * g.kw
    }

    /// Rows of `col`: `C·L`.
    fn count(&self, g: &Geometry) -> usize {
        g.c * self.live.len()
    }

    /// The weights as a `[C_out, C·L]` matrix: `w` itself when every tap is live, else the
    /// live taps' weights, gathered once per forward and kept in `cache` for the backward's
    /// input gradient (the weights do not change between the two).
    fn weights<'a, T: Real>(
        &self,
        g: &Geometry,
        w: &'a [T],
        cache: &'a LiveWeights,
    ) -> Cow<'a, [T]> {
        if self.all(g) {
            return Cow::Borrowed(w);
        }
        let kept = cache.0.get_or_init(|| Box::new(self.gather_weights(g, w)));
        match kept.downcast_ref::<Vec<T>>() {
            Some(v) if v.len() == g.co * self.count(g) => Cow::Borrowed(v),
            // Not this dtype or geometry: the cache belongs to another call.
            _ => Cow::Owned(self.gather_weights(g, w)),
        }
    }

    /// The live taps' weights, `[C_out, C·L]`, each element written once.
    fn gather_weights<T: Real>(&self, g: &Geometry, w: &[T]) -> Vec<T> {
        let mut out = Vec::with_capacity(g.co * self.count(g));
        for block in w.chunks_exact(g.kh * g.kw) {
            out.extend(self.live.iter().map(|&t| block[t]));
        }
        out
    }

    /// A weight gradient over `col`'s rows (`[C_out, C·L]`) as one over every tap, zero for
    /// the dropped ones (each element written once).
    fn full_weight_grad<T: Real>(&self, g: &Geometry, dw: Vec<T>) -> Vec<T> {
        if self.all(g) {
            return dw;
        }
        // For each tap, its place among the live ones.
        let mut slot = vec![None; g.kh * g.kw];
        for (k, &t) in self.live.iter().enumerate() {
            slot[t] = Some(k);
        }
        let mut out = Vec::with_capacity(g.co * g.ck());
        for part in dw.chunks_exact(self.live.len()) {
            out.extend(slot.iter().map(|k| k.map_or(T::ZERO, |k| part[k])));
        }
        out
    }
}

/// The live taps' weights of one forward (see [`ColRows::weights`]), shared by the forward op
/// and its input-gradient op. Empty until a forward drops a tap.
#[derive(Clone, Default)]
struct LiveWeights(Arc<OnceLock<Box<dyn Any + Send + Sync>>>);

multiversion! {
    /// [`Geometry::im2col`], compiled per vector level as a function of its own (its slices
    /// keep their no-alias guarantees, so its loops need no run-time overlap checks).
    fn im2col_wide<T: Real>(
        g: &Geometry,
        rows: &ColRows,
        x: &[T],
        col: &mut [T],
        ld: usize,
        off: usize,
    ) {
        match rows.table.as_deref() {
            Some(table) => g.im2col_table(table, x, col, ld, off),
            None => g.im2col(x, col, ld, off),
        }
    }
}

multiversion! {
    /// [`Geometry::col2im`], compiled per vector level like [`im2col_wide`].
    fn col2im_wide<T: Real>(
        g: &Geometry,
        rows: &ColRows,
        col: &[T],
        ld: usize,
        off: usize,
        dx: &mut [T],
    ) {
        match rows.table.as_deref() {
            Some(table) => g.col2im_table(table, col, ld, off, dx),
            None => g.col2im(col, ld, off, dx),
        }
    }
}

/// `dst (m×n) = [dst +] lhs (m×k) · rhs (k×n)`, every matrix given by its pointer and
/// (row stride, column stride) in elements.
///
/// # Safety
/// Each pointer must address a buffer holding every element its strides reach for these
/// sizes; `dst` must not overlap `lhs` or `rhs`.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul<T: Real>(
    (m, n, k): (usize, usize, usize),
    dst: (*mut T, isize, isize),
    accumulate: bool,
    lhs: (*const T, isize, isize),
    rhs: (*const T, isize, isize),
    threads: usize,
) {
    let threads = if threads > 1 {
        Threads::Pool
    } else {
        Threads::One
    };
    gemm::gemm(
        m,
        n,
        k,
        MatMut {
            ptr: dst.0,
            rs: dst.1,
            cs: dst.2,
        },
        accumulate,
        Mat {
            ptr: lhs.0,
            rs: lhs.1,
            cs: lhs.2,
        },
        Mat {
            ptr: rhs.0,
            rs: rhs.1,
            cs: rhs.2,
        },
        T::ONE,
        threads,
    )
}

/// How images are spread over threads: contiguous ranges of `per` images, each run by one
/// rayon task with `gemm_threads` threads in its GEMMs, in groups of `group` images whose
/// columns sit side by side in one GEMM (small feature maps make thin GEMMs otherwise).
struct Plan {
    per: usize,
    group: usize,
    gemm_threads: usize,
}

/// The widest output rows that im2col and col2im move through a [`ColRows`] gather table
/// rather than row by row.
const GATHER_MAX_OW: usize = 8;

/// A [`ColRows`] gather-table entry that reads the zero padding.
const PADDING: u32 = u32::MAX;

/// Columns one GEMM should have at least, when images can be grouped to reach it.
const MIN_GEMM_COLUMNS: usize = 1024;

/// The least share of useful columns (`OH·OW / (Hp·Wp)`) for which a stride-1 convolution too
/// wide for the tap GEMMs runs as shifted GEMMs: 0.93 at ResNet's 56×56, 0.89 at 32 wide
/// without padding.
const SHIFTED_MIN_USEFUL: f64 = 0.85;

impl Plan {
    fn new(g: &Geometry) -> Self {
        Self::new_for_columns(g, g.p())
    }

    /// The plan for GEMMs of `cols` columns per image.
    fn new_for_columns(g: &Geometry, cols: usize) -> Self {
        let n = g.n.max(1);
        let threads = rayon::current_num_threads().max(1);
        let (per, gemm_threads) = if n >= threads {
            (n.div_ceil(threads), 1)
        } else {
            (n, threads)
        };
        let group = MIN_GEMM_COLUMNS.div_ceil(cols.max(1)).clamp(1, per);
        Plan {
            per,
            group,
            gemm_threads,
        }
    }

    /// Whether `col` is the image itself (a pointwise conv, one image per GEMM).
    fn direct(&self, g: &Geometry) -> bool {
        g.pointwise() && self.group == 1
    }
}

/// `y = conv(x, w)`.
///
/// `y` is not zero-filled first: every element is written once, by the GEMM itself where one
/// image makes one GEMM, else copied out of the GEMM's scratch output.
fn forward<T: Real>(g: &Geometry, x: &[T], w: &[T], cache: &LiveWeights) -> Vec<T> {
    let (p, plane_in, plane_out) = (g.p(), g.plane_in(), g.plane_out());
    let len = g.n * plane_out;
    let mut y: Vec<T> = Vec::with_capacity(len);
    if len == 0 {
        return y;
    }
    if g.tapped() {
        return taps::forward(g, x, w);
    }
    if g.shifted() {
        forward_shifted(g, x, w, &mut y);
        // SAFETY: forward_shifted initialised all `len` elements (its contract).
        unsafe { y.set_len(len) };
        return y;
    }
    let plan = Plan::new(g);
    let rows = ColRows::new(g);
    let (ck, w) = (rows.count(g), rows.weights(g, w, cache));
    let direct = plan.direct(g);
    y.spare_capacity_mut()
        .par_chunks_mut(plan.per * plane_out)
        .zip(x.par_chunks(plan.per * plane_in))
        .for_each(|(ys, xs)| {
            let cols = plan.group * p;
            let grouped = !direct && plan.group > 1;
            let mut col = Scratch::new(if direct { 0 } else { ck * cols });
            let mut out = Scratch::new(if grouped { g.co * cols } else { 0 });
            for (yg, xg) in ys
                .chunks_mut(plan.group * plane_out)
                .zip(xs.chunks(plan.group * plane_in))
            {
                let k = xg.len() / plane_in;
                let ld = k * p;
                let (rhs, dst) = if direct {
                    (xg.as_ptr(), yg.as_mut_ptr().cast::<T>())
                } else {
                    for (i, xn) in xg.chunks_exact(plane_in).enumerate() {
                        im2col_wide(g, &rows, xn, &mut col, ld, i * p);
                    }
                    // One image: its output block is the GEMM's destination itself.
                    let dst = if k == 1 {
                        yg.as_mut_ptr().cast::<T>()
                    } else {
                        out.as_mut_ptr()
                    };
                    (col.as_ptr(), dst)
                };
                // SAFETY: dst is co×ld (y[n] itself when k = 1, else the scratch output), w
                // co×ck, rhs ck×ld (x[n] = c×h·w for a direct conv), all row-major within
                // their buffers. The GEMM overwrites dst without reading it.
                unsafe {
                    matmul(
                        (g.co, ld, ck),
                        (dst, ld as isize, 1),
                        false,
                        (w.as_ptr(), ck as isize, 1),
                        (rhs, ld as isize, 1),
                        plan.gemm_threads,
                    )
                }
                if k > 1 {
                    for (i, yn) in yg.chunks_exact_mut(plane_out).enumerate() {
                        for (o, yrow) in yn.chunks_exact_mut(p).enumerate() {
                            kernel::map_init(yrow, &out[o * ld + i * p..o * ld + i * p + p], |v| v);
                        }
                    }
                }
            }
        });
    // SAFETY: the chunks cover all `len` elements, and each was written above: by a GEMM
    // (`k = 1` or a direct conv: the whole co×p block of its image) or by the copy out of the
    // grouped output (every row of every image of the group).
    unsafe { y.set_len(len) };
    y
}

/// `y = conv(x, w)` for a stride-1 conv without im2col, into the spare capacity of `y`
/// (which must hold `N·C_out·OH·OW` elements; all of them are written).
///
/// With the padded input laid out as `[C][k images][Hp][Wp]`, output column
/// `j = i·Hp·Wp + oy·Wp + ox` of kernel tap `(ky, kx)` reads input column `j + ky·dil·Wp +
/// kx·dil` of every channel: a plain strided matrix. So `out = Σ_(ky,kx) W[:, :, ky, kx] ·
/// xpad[:, off + j]` is `kh·kw` accumulating GEMMs over `C` rows each, reading the padded
/// images (about the input's size) instead of an im2col matrix `kh·kw` times larger.
/// Columns with `ox ≥ OW` or `oy ≥ OH` are computed and dropped when the valid ones are copied
/// out.
fn forward_shifted<T: Real>(g: &Geometry, x: &[T], w: &[T], y: &mut Vec<T>) {
    let (p, plane_in, plane_out) = (g.p(), g.plane_in(), g.plane_out());
    let (hp, wp) = g.padded();
    let taps = g.kh * g.kw;
    let plan = Plan::new_for_columns(g, hp * wp);
    y.spare_capacity_mut()[..g.n * plane_out]
        .par_chunks_mut(plan.per * plane_out)
        .zip(x.par_chunks(plan.per * plane_in))
        .for_each(|(ys, xs)| {
            let seg_max = plan.group * hp * wp;
            let mut xpad = Scratch::new(g.c * seg_max);
            let mut out = Scratch::new(g.co * seg_max);
            for (yg, xg) in ys
                .chunks_mut(plan.group * plane_out)
                .zip(xs.chunks(plan.group * plane_in))
            {
                let k = xg.len() / plane_in;
                let seg = k * hp * wp;
                g.pad_images(xg, k, &mut xpad);
                let cols = g.shifted_cols(k);
                for (tap, off) in g.taps() {
                    // SAFETY: out is co×seg (cols ≤ seg); the tap's weights W[:, :, ky, kx]
                    // are co×c with strides (ck, kh·kw) inside w; the rhs is c×cols with
                    // row stride seg from `off`. Row r's last element is r·seg + off +
                    // cols − 1 ≤ r·seg + k·Hp·Wp − 1 (stride 1: OH + (kh − 1)·dil = Hp,
                    // OW + (kw − 1)·dil = Wp), inside that channel's block of xpad.
                    unsafe {
                        matmul(
                            (g.co, cols, g.c),
                            (out.as_mut_ptr(), seg as isize, 1),
                            tap > 0,
                            (w.as_ptr().add(tap), g.ck() as isize, taps as isize),
                            (xpad.as_ptr().add(off), seg as isize, 1),
                            plan.gemm_threads,
                        )
                    }
                }
                for (i, yn) in yg.chunks_exact_mut(plane_out).enumerate() {
                    for (o, yplane) in yn.chunks_exact_mut(p).enumerate() {
                        let src = &out[o * seg + i * hp * wp..];
                        for (oy, yrow) in yplane.chunks_exact_mut(g.ow).enumerate() {
                            kernel::map_init(yrow, &src[oy * wp..oy * wp + g.ow], |v| v);
                        }
                    }
                }
            }
        });
}

/// Copies `dy` of `k` images (each co×p) side by side into `dst` (co×k·p).
fn gather_dy<T: Real>(g: &Geometry, dy: &[T], dst: &mut [T]) {
    let (p, plane_out) = (g.p(), g.plane_out());
    let k = dy.len() / plane_out;
    let ld = k * p;
    for (i, dn) in dy.chunks_exact(plane_out).enumerate() {
        for (o, row) in dn.chunks_exact(p).enumerate() {
            dst[o * ld + i * p..o * ld + i * p + p].copy_from_slice(row);
        }
    }
}

/// `dx` from the weights and `dy`.
///
/// `dx` is not zero-filled up front: a direct conv's GEMM writes each image's block whole,
/// and otherwise each thread zeroes its own images just before `col2im` accumulates into them.
fn backward_input<T: Real>(g: &Geometry, w: &[T], dy: &[T], cache: &LiveWeights) -> Vec<T> {
    let (p, plane_in, plane_out) = (g.p(), g.plane_in(), g.plane_out());
    let len = g.n * plane_in;
    let mut dx: Vec<T> = Vec::with_capacity(len);
    if len == 0 {
        return dx;
    }
    if g.tapped() {
        return taps::backward_input(g, w, dy);
    }
    if g.shifted() {
        backward_input_shifted(g, w, dy, &mut dx);
        // SAFETY: backward_input_shifted initialised all `len` elements (its contract).
        unsafe { dx.set_len(len) };
        return dx;
    }
    let plan = Plan::new(g);
    let rows = ColRows::new(g);
    let (ck, w) = (rows.count(g), rows.weights(g, w, cache));
    let direct = plan.direct(g);
    dx.spare_capacity_mut()
        .par_chunks_mut(plan.per * plane_in)
        .zip(dy.par_chunks(plan.per * plane_out))
        .for_each(|(dxs, dys)| {
            let cols = plan.group * p;
            let (mut dcol, mut dyg) = if direct {
                (Scratch::new(0), Scratch::new(0))
            } else {
                (Scratch::new(ck * cols), Scratch::new(g.co * cols))
            };
            for (dxg, dyc) in dxs
                .chunks_mut(plan.group * plane_in)
                .zip(dys.chunks(plan.group * plane_out))
            {
                if direct {
                    // SAFETY: dx[n] is c×h·w = ck×p for a pointwise conv; wᵀ (ck×co) is read
                    // from w (co×ck row-major); dy[n] is co×p. The GEMM overwrites dx[n]
                    // without reading it.
                    unsafe {
                        matmul(
                            (ck, p, g.co),
                            (dxg.as_mut_ptr().cast::<T>(), p as isize, 1),
                            false,
                            (w.as_ptr(), 1, ck as isize),
                            (dyc.as_ptr(), p as isize, 1),
                            plan.gemm_threads,
                        )
                    }
                    continue;
                }
                let k = dyc.len() / plane_out;
                let ld = k * p;
                let src = if k == 1 {
                    dyc
                } else {
                    gather_dy(g, dyc, &mut dyg);
                    &dyg[..g.co * ld]
                };
                // SAFETY: dcol is ck×ld; wᵀ is ck×co; src is co×ld, all within their buffers.
                unsafe {
                    matmul(
                        (ck, ld, g.co),
                        (dcol.as_mut_ptr(), ld as isize, 1),
                        false,
                        (w.as_ptr(), 1, ck as isize),
                        (src.as_ptr(), ld as isize, 1),
                        plan.gemm_threads,
                    )
                }
                let dxg = kernel::fill_init(dxg, T::ZERO);
                for (i, dxn) in dxg.chunks_exact_mut(plane_in).enumerate() {
                    col2im_wide(g, &rows, &dcol, ld, i * p, dxn);
                }
            }
        });
    // SAFETY: the chunks cover all `len` elements and each was initialised above: by a direct
    // conv's GEMM (the whole ck×p block of its image) or by `fill_init` before `col2im`.
    unsafe { dx.set_len(len) };
    dx
}

/// `dW` from the input and `dy`: per range of images a partial sum, then their sum.
fn backward_weight<T: Real>(g: &Geometry, x: &[T], dy: &[T]) -> Vec<T> {
    let (ck, p, plane_in, plane_out) = (g.ck(), g.p(), g.plane_in(), g.plane_out());
    if g.n == 0 || p == 0 {
        return vec![T::ZERO; g.co * ck];
    }
    if g.tapped() {
        return taps::backward_weight(g, x, dy);
    }
    if g.shifted() {
        return backward_weight_shifted(g, x, dy);
    }
    let plan = Plan::new(g);
    let rows = ColRows::new(g);
    let ck = rows.count(g);
    let direct = plan.direct(g);
    // The micro-kernels want a column-oriented product, so a row-major `dW` would have gemm
    // transpose the problem and pack `col` (ck×ld) into panels read down its columns: a
    // strided gather of the largest operand. Written as `dWᵀ` (`[ck][co]`), it packs `dy`
    // (co×ld) instead; that pays where the groups have more columns than `dW` has rows (it
    // made the weight gradient of ResNet-18's 8×8 maps at 32×32², 32 images, about 2× faster
    // when those still ran through im2col), and `dW` is transposed back once.
    let transposed = plan.group * p > g.co;
    let (dst_rs, dst_cs) = if transposed { (1, g.co) } else { (ck, 1) };
    let partials: Vec<Vec<T>> = x
        .par_chunks(plan.per * plane_in)
        .zip(dy.par_chunks(plan.per * plane_out))
        .map(|(xs, dys)| {
            // Not zero-filled: the first group's GEMM overwrites all of it (see below).
            let mut dw: Vec<T> = Vec::with_capacity(g.co * ck);
            let cols = plan.group * p;
            let (mut col, mut dyg) = if direct {
                (Scratch::new(0), Scratch::new(0))
            } else {
                (Scratch::new(ck * cols), Scratch::new(g.co * cols))
            };
            for (j, (xg, dyc)) in xs
                .chunks(plan.group * plane_in)
                .zip(dys.chunks(plan.group * plane_out))
                .enumerate()
            {
                let k = xg.len() / plane_in;
                let ld = k * p;
                let (src, dsrc) = if direct {
                    (xg, dyc)
                } else {
                    for (i, xn) in xg.chunks_exact(plane_in).enumerate() {
                        im2col_wide(g, &rows, xn, &mut col, ld, i * p);
                    }
                    let dsrc = if k == 1 {
                        dyc
                    } else {
                        gather_dy(g, dyc, &mut dyg);
                        &dyg[..g.co * ld]
                    };
                    (&col[..ck * ld], dsrc)
                };
                // SAFETY: dw is co×ck (row- or column-major, both within its co·ck elements);
                // dsrc is co×ld; colᵀ (ld×ck) is read from src (ck×ld).
                unsafe {
                    matmul(
                        (g.co, ck, ld),
                        (dw.as_mut_ptr(), dst_rs as isize, dst_cs as isize),
                        j > 0,
                        (dsrc.as_ptr(), ld as isize, 1),
                        (src.as_ptr(), 1, ld as isize),
                        plan.gemm_threads,
                    )
                }
            }
            // SAFETY: the chunk holds at least one group, and the first group's GEMM
            // (accumulate = false) wrote every one of the co·ck elements of `dw`'s capacity
            // (co×ck in either layout); later groups read and add to them.
            unsafe { dw.set_len(g.co * ck) };
            dw
        })
        .collect();
    let dw = sum_partials(partials, g.co * ck);
    let dw = if transposed {
        transpose(&dw, ck, g.co)
    } else {
        dw
    };
    rows.full_weight_grad(g, dw)
}

/// `a` (`rows×cols`, row-major) transposed.
fn transpose<T: Real>(a: &[T], rows: usize, cols: usize) -> Vec<T> {
    let len = rows * cols;
    let mut out: Vec<T> = Vec::with_capacity(len);
    transpose_into(
        a,
        cols,
        rows,
        cols,
        &mut out.spare_capacity_mut()[..len],
        rows,
    );
    // SAFETY: transpose_into wrote element j·rows + i for every i < rows, j < cols: all `len`.
    unsafe { out.set_len(len) };
    out
}

/// Tile side of [`transpose_into`].
const TILE: usize = 16;

multiversion! {
    /// `dst[j·dst_ld + i] = src[i·src_ld + j]` for `i < rows`, `j < cols`, tile by tile so that
    /// both sides are read and written a cache line at a time.
    ///
    /// Panics if either slice is too short for these extents (checked once, up front).
    fn transpose_into<T: Real>(
        src: &[T],
        src_ld: usize,
        rows: usize,
        cols: usize,
        dst: &mut [MaybeUninit<T>],
        dst_ld: usize,
    ) {
        if rows == 0 || cols == 0 {
            return;
        }
        assert!((rows - 1) * src_ld + cols <= src.len(), "transpose: source too short");
        assert!((cols - 1) * dst_ld + rows <= dst.len(), "transpose: destination too short");
        for i0 in (0..rows).step_by(TILE) {
            for j0 in (0..cols).step_by(TILE) {
                for j in j0..(j0 + TILE).min(cols) {
                    for i in i0..(i0 + TILE).min(rows) {
                        // SAFETY: i < rows and j < cols, so both indices are within the
                        // extents checked above.
                        unsafe {
                            dst.get_unchecked_mut(j * dst_ld + i)
                                .write(*src.get_unchecked(i * src_ld + j));
                        }
                    }
                }
            }
        }
    }
}

/// The element-wise sum of per-range weight gradients of `len` elements.
fn sum_partials<T: Real>(partials: Vec<Vec<T>>, len: usize) -> Vec<T> {
    let mut parts = partials.into_iter();
    let mut dw = parts.next().unwrap_or_else(|| vec![T::ZERO; len]);
    for part in parts {
        for (a, b) in dw.iter_mut().zip(part) {
            *a += b;
        }
    }
    dw
}

/// `dx` of a stride-1 conv without col2im, into the spare capacity of `dx` (which must hold
/// `N·C·H·W` elements; all of them are written): the adjoint of [`forward_shifted`]. With the
/// output gradients in the padded column layout (zero where no output is), each kernel tap
/// adds `W[:, :, ky, kx]ᵀ · dy` to the padded input gradient at the tap's offset; the
/// interior is then copied out.
fn backward_input_shifted<T: Real>(g: &Geometry, w: &[T], dy: &[T], dx: &mut Vec<T>) {
    let (plane_in, plane_out) = (g.plane_in(), g.plane_out());
    let (hp, wp) = g.padded();
    let taps = g.kh * g.kw;
    let plan = Plan::new_for_columns(g, hp * wp);
    dx.spare_capacity_mut()[..g.n * plane_in]
        .par_chunks_mut(plan.per * plane_in)
        .zip(dy.par_chunks(plan.per * plane_out))
        .for_each(|(dxs, dys)| {
            let seg_max = plan.group * hp * wp;
            let mut dgrid = Scratch::new(g.co * seg_max);
            let mut dxpad = Scratch::new(g.c * seg_max);
            for (dxg, dyg) in dxs
                .chunks_mut(plan.group * plane_in)
                .zip(dys.chunks(plan.group * plane_out))
            {
                let k = dyg.len() / plane_out;
                let seg = k * hp * wp;
                g.grid_grads(dyg, k, &mut dgrid);
                dxpad[..g.c * seg].fill(T::ZERO);
                let cols = g.shifted_cols(k);
                for (tap, off) in g.taps() {
                    // SAFETY: the destination is c×cols with row stride seg from the tap's
                    // offset, inside dxpad (c·seg; the bound of forward_shifted's rhs);
                    // W[:, :, ky, kx]ᵀ is c×co with strides (kh·kw, ck) inside w; dgrid is
                    // co×cols with row stride seg. The taps run one after the other.
                    unsafe {
                        matmul(
                            (g.c, cols, g.co),
                            (dxpad.as_mut_ptr().add(off), seg as isize, 1),
                            true,
                            (w.as_ptr().add(tap), taps as isize, g.ck() as isize),
                            (dgrid.as_ptr(), seg as isize, 1),
                            plan.gemm_threads,
                        )
                    }
                }
                for (i, dxn) in dxg.chunks_exact_mut(plane_in).enumerate() {
                    for (c, dplane) in dxn.chunks_exact_mut(g.h * g.w).enumerate() {
                        let src = &dxpad[c * seg + i * hp * wp..];
                        for (y, drow) in dplane.chunks_exact_mut(g.w).enumerate() {
                            let start = (y + g.pad) * wp + g.pad;
                            kernel::map_init(drow, &src[start..start + g.w], |v| v);
                        }
                    }
                }
            }
        });
}

/// `dW` of a stride-1 conv without im2col: per kernel tap, `dW[:, :, ky, kx] = dy · xpadᵀ`
/// over the padded column layout of [`forward_shifted`] (the gradient's zero columns drop
/// the columns that hold no output); per range of images a partial sum, then their sum.
fn backward_weight_shifted<T: Real>(g: &Geometry, x: &[T], dy: &[T]) -> Vec<T> {
    let (ck, plane_in, plane_out) = (g.ck(), g.plane_in(), g.plane_out());
    let (hp, wp) = g.padded();
    let taps = g.kh * g.kw;
    let plan = Plan::new_for_columns(g, hp * wp);
    let partials: Vec<Vec<T>> = x
        .par_chunks(plan.per * plane_in)
        .zip(dy.par_chunks(plan.per * plane_out))
        .map(|(xs, dys)| {
            // Not zero-filled: the first group's GEMMs overwrite all of it, a tap each.
            let mut dw: Vec<T> = Vec::with_capacity(g.co * ck);
            let seg_max = plan.group * hp * wp;
            let mut xpad = Scratch::new(g.c * seg_max);
            let mut dgrid = Scratch::new(g.co * seg_max);
            for (j, (xg, dyg)) in xs
                .chunks(plan.group * plane_in)
                .zip(dys.chunks(plan.group * plane_out))
                .enumerate()
            {
                let k = xg.len() / plane_in;
                let seg = k * hp * wp;
                g.pad_images(xg, k, &mut xpad);
                g.grid_grads(dyg, k, &mut dgrid);
                let cols = g.shifted_cols(k);
                for (tap, off) in g.taps() {
                    // SAFETY: dW[:, :, ky, kx] is co×c with strides (ck, kh·kw) inside dw;
                    // dgrid is co×cols (row stride seg); the rhs is cols×c read from xpad
                    // at the tap's offset with strides (1, seg), inside xpad (the bound of
                    // forward_shifted's rhs).
                    unsafe {
                        matmul(
                            (g.co, g.c, cols),
                            (dw.as_mut_ptr().add(tap), ck as isize, taps as isize),
                            j > 0,
                            (dgrid.as_ptr(), seg as isize, 1),
                            (xpad.as_ptr().add(off), 1, seg as isize),
                            plan.gemm_threads,
                        )
                    }
                }
            }
            // SAFETY: the chunk holds at least one group, and the first group's GEMMs
            // (accumulate = false) wrote every tap's co×c block, together all co·ck elements
            // of `dw`'s capacity; later groups read and add to them.
            unsafe { dw.set_len(g.co * ck) };
            dw
        })
        .collect();
    sum_partials(partials, g.co * ck)
}

/// Whether autograd wants a gradient for `t`.
fn needs_grad(t: &Tensor) -> bool {
    t.track_op()
}

/// The forward op: inputs `x`, `w`.
#[derive(Clone)]
struct Conv(Geometry, LiveWeights);

impl CustomOp2 for Conv {
    fn name(&self) -> &'static str {
        "finetune-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        with_real!(s1.dtype(), self.name(), T => {
            let [x, w] = kernel::slices::<T, 2>([(s1, l1), (s2, l2)], self.name())?;
            Ok((T::to_cpu_storage_owned(forward(&self.0, x, w, &self.1)), self.0.out_shape()))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = if needs_grad(x) {
            Some(w.apply_op2_no_bwd(&dy, &BwdInput(self.0, self.1.clone()))?)
        } else {
            None
        };
        let dw = if needs_grad(w) {
            Some(x.apply_op2_no_bwd(&dy, &BwdWeight(self.0))?)
        } else {
            None
        };
        Ok((dx, dw))
    }
}

/// Inputs `w`, `dy`; output `dx`.
struct BwdInput(Geometry, LiveWeights);

impl CustomOp2 for BwdInput {
    fn name(&self) -> &'static str {
        "finetune-conv2d-bwd-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.0;
        with_real!(s1.dtype(), self.name(), T => {
            let [w, dy] = kernel::slices::<T, 2>([(s1, l1), (s2, l2)], self.name())?;
            check_len(dy.len(), g.n * g.plane_out(), self.name())?;
            let dx = backward_input(&g, w, dy, &self.1);
            Ok((T::to_cpu_storage_owned(dx), Shape::from((g.n, g.c, g.h, g.w))))
        })
    }
}

/// Inputs `x`, `dy`; output `dW`.
struct BwdWeight(Geometry);

impl CustomOp2 for BwdWeight {
    fn name(&self) -> &'static str {
        "finetune-conv2d-bwd-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.0;
        with_real!(s1.dtype(), self.name(), T => {
            let [x, dy] = kernel::slices::<T, 2>([(s1, l1), (s2, l2)], self.name())?;
            check_len(dy.len(), g.n * g.plane_out(), self.name())?;
            let dw = backward_weight(&g, x, dy);
            Ok((T::to_cpu_storage_owned(dw), Shape::from((g.co, g.c, g.kh, g.kw))))
        })
    }
}

fn check_len(got: usize, want: usize, op: &str) -> candle_core::Result<()> {
    if got != want {
        candle_core::bail!("{op}: gradient has {got} elements, expected {want}");
    }
    Ok(())
}
