//! Stride-1 convolutions over wider maps (ResNet's 56×56 stage) as shifted GEMMs: over the
//! zero-padded images laid out row after row, each kernel tap is one GEMM of `C` rows reading
//! the padded input at the tap's offset, and the taps accumulate. The padded copy is about the
//! input's size where im2col's `col` is `kh·kw` times larger; the price is computing the few
//! columns that fall in the padding (7 % at 56×56), dropped afterwards.

use rayon::prelude::*;

use super::plan::{matmul, sum_partials, Plan};
use super::Geometry;
use crate::ops::kernel::{self, Real};
use crate::ops::scratch::Scratch;

/// The least share of useful columns (`OH·OW / (Hp·Wp)`) for which a stride-1 convolution too
/// wide for the tap GEMMs runs as shifted GEMMs: 0.93 at ResNet's 56×56, 0.89 at 32 wide
/// without padding.
pub(super) const SHIFTED_MIN_USEFUL: f64 = 0.85;

impl Geometry {
    /// Whether the forward runs as shifted GEMMs over the padded input instead of im2col
    /// ([`forward_into`]): stride 1, a real kernel (a pointwise conv needs neither), and
    /// few wasted columns (each image computes `Hp·Wp` columns for its `OH·OW` outputs).
    pub(super) fn shifted(&self) -> bool {
        let (hp, wp) = self.padded();
        self.stride == 1
            && !self.pointwise()
            && (self.p() as f64) >= SHIFTED_MIN_USEFUL * (hp * wp) as f64
    }

    /// Copies `k` images `[C, H, W]` into `dst` as `[C][k][Hp][Wp]` with zero borders.
    pub(super) fn pad_images<T: Real>(&self, xs: &[T], k: usize, dst: &mut [T]) {
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
    /// `[C_out][k][Hp][Wp]` (the column layout of [`forward_into`]), zero in the columns
    /// that hold no output.
    pub(super) fn grid_grads<T: Real>(&self, dy: &[T], k: usize, dst: &mut [T]) {
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
    pub(super) fn shifted_cols(&self, k: usize) -> usize {
        let (hp, wp) = self.padded();
        (k - 1) * hp * wp + (self.oh - 1) * wp + self.ow
    }

    /// The kernel taps `(ky, kx)` in weight order, each as `(ky·kw + kx, offset)`: its index in
    /// a weight's `kh·kw` block and its offset in the padded layout of [`forward_into`].
    pub(super) fn taps(&self) -> impl Iterator<Item = (usize, usize)> {
        let (kw, dil, wp) = (self.kw, self.dil, self.padded().1);
        (0..self.kh * kw).map(move |t| (t, (t / kw) * dil * wp + (t % kw) * dil))
    }
}

/// `y = conv(x, w)` through [`forward_into`].
pub(super) fn forward<T: Real>(g: &Geometry, x: &[T], w: &[T]) -> Vec<T> {
    let len = g.n * g.plane_out();
    let mut y = Vec::with_capacity(len);
    forward_into(g, x, w, &mut y);
    // SAFETY: forward_into initialised all `len` elements (its contract).
    unsafe { y.set_len(len) };
    y
}

/// `dx` through [`backward_input_into`].
pub(super) fn backward_input<T: Real>(g: &Geometry, w: &[T], dy: &[T]) -> Vec<T> {
    let len = g.n * g.plane_in();
    let mut dx = Vec::with_capacity(len);
    backward_input_into(g, w, dy, &mut dx);
    // SAFETY: backward_input_into initialised all `len` elements (its contract).
    unsafe { dx.set_len(len) };
    dx
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
fn forward_into<T: Real>(g: &Geometry, x: &[T], w: &[T], y: &mut Vec<T>) {
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

/// `dx` of a stride-1 conv without col2im, into the spare capacity of `dx` (which must hold
/// `N·C·H·W` elements; all of them are written): the adjoint of [`forward_into`]. With the
/// output gradients in the padded column layout (zero where no output is), each kernel tap
/// adds `W[:, :, ky, kx]ᵀ · dy` to the padded input gradient at the tap's offset; the
/// interior is then copied out.
fn backward_input_into<T: Real>(g: &Geometry, w: &[T], dy: &[T], dx: &mut Vec<T>) {
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
/// over the padded column layout of [`forward_into`] (the gradient's zero columns drop
/// the columns that hold no output); per range of images a partial sum, then their sum.
pub(super) fn backward_weight<T: Real>(g: &Geometry, x: &[T], dy: &[T]) -> Vec<T> {
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
