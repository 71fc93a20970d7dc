//! Stride-1 convolutions over feature maps up to 28 wide (ResNet's 28×28 to 7×7 stages at
//! 224×224 images, all of its stages at 32×32) as GEMMs per kernel tap, on a pixel-major copy
//! of the images.
//!
//! With a range of `k` images laid out `[H·W][k][C]` (pixel, image, channel), the input pixels
//! that kernel tap `(ky, kx)` reads for output row `oy`, columns `x0..x1`, are `(x1 − x0)·k`
//! consecutive rows of `C` channels, and the outputs they feed are as many consecutive rows of
//! the output laid out the same way. Each such run is one GEMM:
//! `y[run] += W[:, :, ky, kx] · x[run shifted by the tap]`. A tap whose columns cover whole rows
//! (the centre column of a "same"-padded kernel) makes one run of all its output rows.
//!
//! Unlike im2col this writes no `kh·kw`-times-larger matrix, and it does no multiply-adds with
//! the zero padding, which on small maps is a large share of im2col's work for a 3×3 kernel
//! (16 % at 8×8, 31 % at 4×4, 56 % at 2×2, 18 % at 7×7, 9 % at 14×14); unlike the shifted
//! GEMMs it computes no output columns that fall in the padding. The price is transposing
//! each image to and from the pixel-major layout (one pass over input and output) and arranging
//! the weights tap by tap once per call. At 56×56 the shifted GEMMs, whose waste is small there,
//! were as fast or faster (docs/performance.md).
//!
//! The weights are arranged so that every GEMM reads its operand with unit stride along the
//! destination's contiguous dimension, which gemm then uses without packing: `[tap][C][C_out]`
//! for the forward, `[tap][C_out][C]` for the input gradient; the weight gradient is summed as
//! `[tap][C_out][C]` and rearranged to `[C_out][C][kh][kw]` at the end. Taps that read only
//! padding (all but the centre of a 3×3 kernel over a 1×1 map) get no runs and no weights.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::plan::{matmul, Plan};
use super::transpose::transpose_into;
use super::Geometry;
use crate::ops::gemm::SendPtr;
use crate::ops::kernel::Real;
use crate::ops::scratch::Scratch;

/// Output maps at most this wide go through the tap GEMMs (stride 1, not pointwise); wider
/// ones through the shifted GEMMs or im2col.
pub(super) const TAPS_MAX_OW: usize = 28;

/// One run of a tap: `len` output pixels from `out` (row-major pixel index) read the `len`
/// input pixels from `inp`; `slot` is the tap's place among the live ones.
#[derive(Clone, Copy)]
struct Run {
    slot: usize,
    out: usize,
    inp: usize,
    len: usize,
}

/// The runs of every tap that reads the image for at least one output (the live taps, in
/// weight order), and which taps those are.
struct Runs {
    runs: Vec<Run>,
    live: Vec<usize>,
}

impl Geometry {
    /// Whether this convolution runs as tap GEMMs.
    pub(super) fn tapped(&self) -> bool {
        self.stride == 1 && !self.pointwise() && self.ow <= TAPS_MAX_OW
    }

    /// The runs of every live tap: one per output row, or a single one for all rows where
    /// the tap's columns span whole rows on both sides (the centre column of a "same"-padded
    /// kernel, whose input and output rows have equal lengths).
    fn runs(&self) -> Runs {
        let off = |k: usize| (k * self.dil) as isize - self.pad as isize;
        let (mut runs, mut live) = (Vec::new(), Vec::new());
        for tap in 0..self.kh * self.kw {
            let (dy, dx) = (off(tap / self.kw), off(tap % self.kw));
            let (y0, y1) = Self::valid(dy, 1, self.h, self.oh);
            let (x0, x1) = Self::valid(dx, 1, self.w, self.ow);
            if y0 >= y1 || x0 >= x1 {
                continue;
            }
            let slot = live.len();
            live.push(tap);
            let inp = |oy: usize, ox: usize| {
                (oy as isize + dy) as usize * self.w + (ox as isize + dx) as usize
            };
            if x0 == 0 && x1 == self.ow && self.w == self.ow {
                runs.push(Run {
                    slot,
                    out: y0 * self.ow,
                    inp: inp(y0, 0),
                    len: (y1 - y0) * self.ow,
                });
            } else {
                runs.extend((y0..y1).map(|oy| Run {
                    slot,
                    out: oy * self.ow + x0,
                    inp: inp(oy, x0),
                    len: x1 - x0,
                }));
            }
        }
        Runs { runs, live }
    }
}

/// Output channels per task when weights are rearranged: each task reads their rows of `w`
/// (`[C_out][C][taps]`) once.
const BLOCK: usize = 16;

/// The live taps' weights of `w` (`[C_out][C][taps]`), as `[live][C][C_out]` (`out_inner`) or
/// `[live][C_out][C]`.
fn by_tap<T: Real>(g: &Geometry, w: &[T], live: &[usize], out_inner: bool) -> Vec<T> {
    let (co, c, taps) = (g.co, g.c, g.kh * g.kw);
    let len = live.len() * co * c;
    let mut out: Vec<T> = Vec::with_capacity(len);
    if len == 0 {
        return out;
    }
    // The blocks below write output channel b·BLOCK + i for row i of block b: only in bounds
    // if `w` holds exactly C_out rows.
    assert_eq!(
        w.len(),
        co * c * taps,
        "conv2d weights of an unexpected length"
    );
    let dst = SendPtr(out.as_mut_ptr());
    w.par_chunks(BLOCK * c * taps)
        .enumerate()
        .for_each(|(b, rows)| {
            let dst = dst.get();
            for (slot, &t) in live.iter().enumerate() {
                if out_inner {
                    // BLOCK consecutive elements of each row `[slot][ci]`.
                    for ci in 0..c {
                        let at = (slot * c + ci) * co + b * BLOCK;
                        for (i, row) in rows.chunks_exact(c * taps).enumerate() {
                            // SAFETY: o = b·BLOCK + i < co, so `at + i` lies in the
                            // `[live][C][C_out]` buffer; each (slot, ci, o) is written by
                            // this block alone.
                            unsafe { dst.add(at + i).write(row[ci * taps + t]) }
                        }
                    }
                } else {
                    // The rows `[slot][o]` of this block, whole.
                    for (i, row) in rows.chunks_exact(c * taps).enumerate() {
                        let at = (slot * co + b * BLOCK + i) * c;
                        for (ci, &v) in row[t..].iter().step_by(taps).enumerate() {
                            // SAFETY: as above, within the row `[slot][o]` of `c` elements.
                            unsafe { dst.add(at + ci).write(v) }
                        }
                    }
                }
            }
        });
    // SAFETY: the blocks cover every output channel, and each wrote all its elements of
    // every live tap: all `len` elements are initialised.
    unsafe { out.set_len(len) };
    out
}

/// `src` (`[k][ch][P]`) as `[P][k][ch]` in `dst`.
fn to_pixel_major<T: Real>(src: &[T], ch: usize, p: usize, dst: &mut [T]) {
    if src.is_empty() {
        return;
    }
    let k = src.len() / (ch * p);
    // SAFETY: `transpose` writes initialised values only, so `dst` stays initialised.
    let dst = unsafe { &mut *(dst as *mut [T] as *mut [MaybeUninit<T>]) };
    for (i, image) in src.chunks_exact(ch * p).enumerate() {
        transpose_into(image, p, ch, p, &mut dst[i * ch..], k * ch);
    }
}

/// `src` (`[P][k][ch]`) as `[k][ch][P]` in `dst`, every element written.
fn from_pixel_major<T: Real>(src: &[T], ch: usize, p: usize, dst: &mut [MaybeUninit<T>]) {
    if dst.is_empty() {
        return;
    }
    let k = dst.len() / (ch * p);
    for (i, image) in dst.chunks_exact_mut(ch * p).enumerate() {
        transpose_into(&src[i * ch..], k * ch, p, ch, image, p);
    }
}

/// `y = conv(x, w)`.
pub(super) fn forward<T: Real>(g: &Geometry, x: &[T], w: &[T]) -> Vec<T> {
    let Runs { runs, live } = g.runs();
    let wt = by_tap(g, w, &live, true);
    through_runs(g, &runs, Direction::Forward, &wt, x)
}

/// `dx`, the adjoint of [`forward`]: each run adds `W[:, :, ky, kx]ᵀ · dy[run]` to the input
/// pixels it read.
pub(super) fn backward_input<T: Real>(g: &Geometry, w: &[T], dy: &[T]) -> Vec<T> {
    let Runs { runs, live } = g.runs();
    let wt = by_tap(g, w, &live, false);
    through_runs(g, &runs, Direction::Adjoint, &wt, dy)
}

/// Which way [`through_runs`] maps: images to outputs, or output gradients to input gradients.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Adjoint,
}

/// `dst = Σ_runs W[slot] · src[run]`, with `wt` the live taps' weights as `[live][src
/// channels][dst channels]`: per range of images, `src` made pixel-major, one GEMM per run
/// adding into the pixel-major destination at the run's other end, and the destination laid
/// out back as `[images][channels][pixels]`.
///
/// The destination is not zero-filled where one run covers all of it (the centre tap of a
/// "same"-padded kernel): that run goes first and overwrites it.
fn through_runs<T: Real>(
    g: &Geometry,
    runs: &[Run],
    dir: Direction,
    wt: &[T],
    src: &[T],
) -> Vec<T> {
    let (hw, p) = (g.h * g.w, g.p());
    let ((src_ch, src_p), (dst_ch, dst_p)) = match dir {
        Direction::Forward => ((g.c, hw), (g.co, p)),
        Direction::Adjoint => ((g.co, p), (g.c, hw)),
    };
    // A run's (destination, source) first pixels.
    let ends = |r: &Run| match dir {
        Direction::Forward => (r.out, r.inp),
        Direction::Adjoint => (r.inp, r.out),
    };
    let cover = runs.iter().position(|r| ends(r).0 == 0 && r.len == dst_p);
    let order: Vec<&Run> = cover
        .map(|i| &runs[i])
        .into_iter()
        .chain(
            runs.iter()
                .enumerate()
                .filter(|&(i, _)| Some(i) != cover)
                .map(|(_, r)| r),
        )
        .collect();
    let len = g.n * dst_ch * dst_p;
    let mut dst: Vec<T> = Vec::with_capacity(len);
    let plan = Plan::new(g);
    dst.spare_capacity_mut()[..len]
        .par_chunks_mut(plan.per * dst_ch * dst_p)
        .zip(src.par_chunks(plan.per * src_ch * src_p))
        .for_each(|(ds, ss)| {
            let k = ss.len() / (src_ch * src_p);
            let mut st = Scratch::new(ss.len());
            let mut dt = Scratch::new(ds.len());
            to_pixel_major(ss, src_ch, src_p, &mut st);
            if cover.is_none() {
                dt.fill(T::ZERO);
            }
            for (i, r) in order.iter().enumerate() {
                let (d, s) = ends(r);
                // SAFETY: the destination run is rows d·k .. (d + r.len)·k of dt (dst_ch
                // each), the source run as many rows of st (src_ch each) from s·k; both lie in
                // their buffers (valid() keeps every pixel of a run in range). The tap's
                // weights are src_ch×dst_ch in wt. Runs execute one after the other; the
                // first overwrites dt only when it covers all of it.
                unsafe {
                    matmul(
                        (dst_ch, r.len * k, src_ch),
                        (dt.as_mut_ptr().add(d * k * dst_ch), 1, dst_ch as isize),
                        i > 0 || cover.is_none(),
                        (
                            wt.as_ptr().add(r.slot * src_ch * dst_ch),
                            1,
                            dst_ch as isize,
                        ),
                        (st.as_ptr().add(s * k * src_ch), 1, src_ch as isize),
                        plan.gemm_threads,
                    )
                }
            }
            from_pixel_major(&dt, dst_ch, dst_p, ds);
        });
    // SAFETY: the ranges cover all `len` elements, and from_pixel_major wrote each one.
    unsafe { dst.set_len(len) };
    dst
}

/// `dW` (`[C_out][C][kh][kw]`): per range of images the sum over every run of
/// `dy[run] · x[shifted run]ᵀ` into its tap's `C_out×C` block, then the ranges' sum.
pub(super) fn backward_weight<T: Real>(g: &Geometry, x: &[T], dy: &[T]) -> Vec<T> {
    let (p, hw) = (g.p(), g.h * g.w);
    let (plane_in, plane_out) = (g.plane_in(), g.plane_out());
    let Runs { runs, live } = g.runs();
    let plan = Plan::new(g);
    let live_len = g.co * g.c * live.len();
    let partials: Vec<Vec<T>> = x
        .par_chunks(plan.per * plane_in)
        .zip(dy.par_chunks(plan.per * plane_out))
        .map(|(xs, dys)| {
            let k = xs.len() / plane_in;
            let mut xt = Scratch::new(xs.len());
            let mut dyt = Scratch::new(dys.len());
            to_pixel_major(xs, g.c, hw, &mut xt);
            to_pixel_major(dys, g.co, p, &mut dyt);
            // [live tap][C_out][C], not zero-filled: each tap's first run overwrites its block.
            let mut dw: Vec<T> = Vec::with_capacity(live_len);
            for (i, r) in runs.iter().enumerate() {
                let first = i == 0 || runs[i - 1].slot != r.slot;
                // SAFETY: the destination is the tap's co×c block of dw (c contiguous); the
                // lhs, c × run rows, reads xt's input run (c per row), the rhs, run rows ×
                // co, dyt's output run (co per row), both inside their buffers (see forward).
                unsafe {
                    matmul(
                        (g.c, g.co, r.len * k),
                        (dw.as_mut_ptr().add(r.slot * g.co * g.c), 1, g.c as isize),
                        !first,
                        (xt.as_ptr().add(r.inp * k * g.c), 1, g.c as isize),
                        (dyt.as_ptr().add(r.out * k * g.co), g.co as isize, 1),
                        plan.gemm_threads,
                    )
                }
            }
            // SAFETY: every live tap has at least one run (a tap without any is not live),
            // and its first run's GEMM (not accumulating) wrote its whole co×c block.
            unsafe { dw.set_len(live_len) };
            dw
        })
        .collect();
    sum_to_oihw(g, &live, &partials)
}

/// The sum of the ranges' weight gradients (`[live][C_out][C]` each) as `[C_out][C][taps]`,
/// zero for the taps that read only padding: one pass, a row of output channel `o` per task.
fn sum_to_oihw<T: Real>(g: &Geometry, live: &[usize], partials: &[Vec<T>]) -> Vec<T> {
    let (co, c, taps) = (g.co, g.c, g.kh * g.kw);
    let len = co * c * taps;
    let mut out: Vec<T> = Vec::with_capacity(len);
    if len == 0 {
        return out;
    }
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(c * taps)
        .enumerate()
        .for_each(|(o, row)| {
            if live.len() < taps {
                row.fill(MaybeUninit::new(T::ZERO));
            }
            for (slot, &t) in live.iter().enumerate() {
                let at = (slot * co + o) * c;
                for ci in 0..c {
                    let sum = partials
                        .iter()
                        .fold(T::ZERO, |acc, part| acc + part[at + ci]);
                    row[ci * taps + t].write(sum);
                }
            }
        });
    // SAFETY: the rows cover all `len` elements; each element of a row was written, by the
    // zero fill or by its live tap.
    unsafe { out.set_len(len) };
    out
}
