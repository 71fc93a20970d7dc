//! The general convolution (strided ones among them) as im2col + GEMM, per image `n`:
//! - forward: `col = im2col(x[n])` (`[C·kh·kw, OH·OW]`), `y[n] = W · col` (`W` as
//!   `[C_out, C·kh·kw]`);
//! - input gradient: `dcol = Wᵀ · dy[n]`, `dx[n] = col2im(dcol)` (a scatter-add);
//! - weight gradient: `dW = Σ_n dy[n] · colᵀ`, `col` recomputed from `x` (nothing is stored
//!   between forward and backward but what autograd keeps anyway: `x` and `W`).
//!
//! A 1×1 convolution with stride 1 and no padding needs no im2col: `x[n]` is its own `col`.
//! im2col and col2im copy whole output rows; where rows are short (the strided convolutions
//! into ResNet's 7×7 and smaller maps) they go through a per-geometry gather table instead,
//! one indexed load or add per element ([`ColRows`]). Kernel taps that read only zero padding
//! for every output (all but the centre of a 3×3 kernel over a 1×1 map) get no `col` rows and
//! no GEMM work.

use std::any::Any;
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

use super::plan::{matmul, sum_partials, Plan};
use super::transpose::transpose;
use super::Geometry;
use crate::ops::kernel::{self, Real};
use crate::ops::scratch::Scratch;
use crate::ops::simd::multiversion;

/// The widest output rows that im2col and col2im move through a [`ColRows`] gather table
/// rather than row by row.
const GATHER_MAX_OW: usize = 8;

/// A [`ColRows`] gather-table entry that reads the zero padding.
const PADDING: u32 = u32::MAX;

impl Geometry {
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
pub(super) struct LiveWeights(Arc<OnceLock<Box<dyn Any + Send + Sync>>>);

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

/// `y = conv(x, w)`.
///
/// `y` is not zero-filled first: every element is written once, by the GEMM itself where one
/// image makes one GEMM, else copied out of the GEMM's scratch output.
pub(super) fn forward<T: Real>(g: &Geometry, x: &[T], w: &[T], cache: &LiveWeights) -> Vec<T> {
    let (p, plane_in, plane_out) = (g.p(), g.plane_in(), g.plane_out());
    let len = g.n * plane_out;
    let mut y: Vec<T> = Vec::with_capacity(len);
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
pub(super) fn backward_input<T: Real>(
    g: &Geometry,
    w: &[T],
    dy: &[T],
    cache: &LiveWeights,
) -> Vec<T> {
    let (p, plane_in, plane_out) = (g.p(), g.plane_in(), g.plane_out());
    let len = g.n * plane_in;
    let mut dx: Vec<T> = Vec::with_capacity(len);
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
pub(super) fn backward_weight<T: Real>(g: &Geometry, x: &[T], dy: &[T]) -> Vec<T> {
    let (p, plane_in, plane_out) = (g.p(), g.plane_in(), g.plane_out());
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
