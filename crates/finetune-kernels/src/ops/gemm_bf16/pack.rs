//! bf16 packing: the two operands of a product rounded to bfloat16 (round to nearest, ties to
//! even, as PyTorch's `tensor.to(torch.bfloat16)`) and laid out in the 16 × 32 tiles the
//! micro-kernels load with one 64-byte stride.
//!
//! - `lhs` (`[m, k]`): row panels of 16 rows; panel `p`, k-block `b` is a tile of 16 rows ×
//!   32 consecutive k, row-major: `A[p·16 + r][b·32 + c]` at `((p·KB + b)·16 + r)·32 + c`.
//! - `rhs` (`[k, n]`): column panels of 16 columns in the pair-interleaved ("VNNI") order
//!   AMX's `tdpbf16ps` and AVX512-BF16's `vdpbf16ps` read: `B[b·32 + 2q + e][p·16 + c]` at
//!   `((p·KB + b)·16 + q)·32 + 2c + e`.
//!
//! Rows, columns and k beyond the matrix are zeros, so every tile is whole; panel counts are
//! rounded up to even numbers (the kernels work on pairs of panels).

use super::super::gemm::{Mat, SendPtr};
use rayon::prelude::*;

/// Elements of one packed 16 × 32 tile.
pub const TILE: usize = 16 * 32;

/// `x` rounded to the nearest bfloat16 (ties to even); NaN stays a (quiet) NaN.
#[inline(always)]
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    let rounded = (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16;
    // A select rather than a branch, so that loops over it vectorise.
    if x.is_nan() {
        ((b >> 16) | 0x40) as u16
    } else {
        rounded
    }
}

/// The f32 a bfloat16 stands for.
#[cfg(test)]
#[inline(always)]
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Panels of 16 for `len` rows or columns, rounded up to an even count.
pub fn panels(len: usize) -> usize {
    len.div_ceil(32) * 2
}

/// k-blocks of 32 for a depth `k`.
pub fn k_blocks(k: usize) -> usize {
    k.div_ceil(32)
}

/// Converts `src` into `dst` element by element (equal lengths; vectorises).
#[inline(always)]
fn convert(dst: &mut [u16], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = to_bf16(s);
    }
}

/// Runs `job` on each `(index, panel)` of `out` cut into panels of `len` elements, over
/// rayon's pool when `parallel`.
fn each_panel(
    out: &mut [u16],
    len: usize,
    parallel: bool,
    job: impl Fn((usize, &mut [u16])) + Send + Sync,
) {
    if parallel {
        out.par_chunks_mut(len).enumerate().for_each(job);
    } else {
        out.chunks_mut(len).enumerate().for_each(job);
    }
}

/// Packs `lhs` (`[m, k]`) into `out` (`panels(m) · k_blocks(k) · TILE` elements).
///
/// # Safety
/// `lhs` must address valid f32 elements over `[m, k]`.
pub unsafe fn pack_lhs(m: usize, k: usize, lhs: Mat<f32>, out: &mut [u16], parallel: bool) {
    let kb = k_blocks(k);
    debug_assert_eq!(out.len(), panels(m) * kb * TILE);
    if lhs.rs == 1 && lhs.cs != 1 {
        return pack_lhs_transposed(m, k, lhs, out, parallel);
    }
    let src = SendPtr(lhs.ptr as *mut f32);
    let job = |(p, panel): (usize, &mut [u16])| {
        let rows = m.saturating_sub(p * 16).min(16);
        if rows < 16 || !k.is_multiple_of(32) {
            panel.fill(0);
        }
        let at = |i: usize, q: usize| src.get().offset(i as isize * lhs.rs + q as isize * lhs.cs);
        super::super::simd::wide(
            #[inline(always)]
            || {
                for r in 0..rows {
                    let i = p * 16 + r;
                    for b in 0..kb {
                        let len = (k - b * 32).min(32);
                        let row = &mut panel[(b * 16 + r) * 32..][..len];
                        if lhs.cs == 1 {
                            // SAFETY: the run lies inside the caller's [m, k] view.
                            convert(row, unsafe {
                                std::slice::from_raw_parts(at(i, b * 32), len)
                            });
                        } else {
                            for (c, v) in row.iter_mut().enumerate() {
                                // SAFETY: (i, b·32 + c) lies inside the caller's view.
                                *v = to_bf16(unsafe { *at(i, b * 32 + c) });
                            }
                        }
                    }
                }
            },
        );
    };
    each_panel(out, kb * TILE, parallel, job);
}

/// [`pack_lhs`] for an `lhs` stored transposed (each k's m rows contiguous, as `dYᵀ` in a
/// weight gradient): read k by k, each whole run at once, one k-block per task, so that the
/// reads stream through memory and the writes stay within the block's tiles.
///
/// # Safety
/// As [`pack_lhs`], with `lhs.rs == 1`.
unsafe fn pack_lhs_transposed(m: usize, k: usize, lhs: Mat<f32>, out: &mut [u16], parallel: bool) {
    let kb = k_blocks(k);
    let (src, dst) = (SendPtr(lhs.ptr as *mut f32), SendPtr(out.as_mut_ptr()));
    let job = |b: usize| {
        let tile = |p: usize| ((p * kb + b) * TILE) as isize;
        super::super::simd::wide(
            #[inline(always)]
            || {
                for c in 0..32 {
                    let q = b * 32 + c;
                    // SAFETY: (i, q) lies inside the caller's [m, k] view for i < m and
                    // q < k; every written element lies in tiles of k-block `b`, which no
                    // other task writes.
                    let run = (q < k).then(|| unsafe {
                        std::slice::from_raw_parts(src.get().offset(q as isize * lhs.cs), m)
                    });
                    for p in 0..panels(m) {
                        for r in 0..16 {
                            let i = p * 16 + r;
                            let v = match run {
                                Some(run) if i < m => to_bf16(run[i]),
                                _ => 0,
                            };
                            unsafe { *dst.get().offset(tile(p) + (r * 32 + c) as isize) = v };
                        }
                    }
                }
            },
        );
    };
    if parallel {
        (0..kb).into_par_iter().for_each(job);
    } else {
        (0..kb).for_each(job);
    }
}

/// Packs `rhs` (`[k, n]`) into `out` (`panels(n) · k_blocks(k) · TILE` elements).
///
/// # Safety
/// `rhs` must address valid f32 elements over `[k, n]`.
pub unsafe fn pack_rhs(k: usize, n: usize, rhs: Mat<f32>, out: &mut [u16], parallel: bool) {
    let kb = k_blocks(k);
    debug_assert_eq!(out.len(), panels(n) * kb * TILE);
    let src = SendPtr(rhs.ptr as *mut f32);
    let job = |(p, panel): (usize, &mut [u16])| {
        let cols = n.saturating_sub(p * 16).min(16);
        if cols < 16 || !k.is_multiple_of(32) {
            panel.fill(0);
        }
        let at = |q: usize, j: usize| src.get().offset(q as isize * rhs.rs + j as isize * rhs.cs);
        super::super::simd::wide(
            #[inline(always)]
            || {
                let mut run = [0u16; 32];
                for b in 0..kb {
                    let tile = &mut panel[b * TILE..][..TILE];
                    let len = (k - b * 32).min(32);
                    if rhs.rs == 1 {
                        // Each column's k-run is contiguous: convert it, then lay its pairs
                        // 64 bytes apart.
                        for c in 0..cols {
                            // SAFETY: the run lies inside the caller's [k, n] view.
                            let s =
                                unsafe { std::slice::from_raw_parts(at(b * 32, p * 16 + c), len) };
                            run.fill(0);
                            convert(&mut run[..len], s);
                            for pair in 0..len.div_ceil(2) {
                                tile[pair * 32 + 2 * c] = run[2 * pair];
                                tile[pair * 32 + 2 * c + 1] = run[2 * pair + 1];
                            }
                        }
                    } else if rhs.cs == 1 {
                        // Rows are contiguous: interleave each pair of rows.
                        for pair in 0..len.div_ceil(2) {
                            let q = b * 32 + 2 * pair;
                            // SAFETY: the runs lie inside the caller's [k, n] view (a
                            // missing second row of an odd k reads as zeros).
                            let lo = unsafe { std::slice::from_raw_parts(at(q, p * 16), cols) };
                            let hi = (q + 1 < k).then(|| unsafe {
                                std::slice::from_raw_parts(at(q + 1, p * 16), cols)
                            });
                            let dst = &mut tile[pair * 32..][..2 * cols];
                            match hi {
                                Some(hi) => {
                                    for ((d, &l), &h) in dst.chunks_exact_mut(2).zip(lo).zip(hi) {
                                        d[0] = to_bf16(l);
                                        d[1] = to_bf16(h);
                                    }
                                }
                                None => {
                                    for (d, &l) in dst.chunks_exact_mut(2).zip(lo) {
                                        d[0] = to_bf16(l);
                                    }
                                }
                            }
                        }
                    } else {
                        for kk in 0..len {
                            for c in 0..cols {
                                // SAFETY: (b·32 + kk, p·16 + c) lies inside the caller's view.
                                let v = unsafe { *at(b * 32 + kk, p * 16 + c) };
                                tile[(kk / 2) * 32 + 2 * c + kk % 2] = to_bf16(v);
                            }
                        }
                    }
                }
            },
        );
    };
    each_panel(out, kb * TILE, parallel, job);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_even() {
        // 1 + 2⁻⁸ lies halfway between bf16's 1 and 1 + 2⁻⁷: ties go to the even one (1).
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        // 1 + 3·2⁻⁸ lies halfway between 1 + 2⁻⁷ and 1 + 2⁻⁶: the even one is 1 + 2⁻⁶.
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 1.0 / 64.0);
        // Just above a half rounds up, just below down.
        assert_eq!(
            from_bf16(to_bf16(1.0 + 1.0 / 256.0 + 1e-6)),
            1.0 + 1.0 / 128.0
        );
        assert_eq!(from_bf16(to_bf16(-(1.0 + 1.0 / 256.0 - 1e-6))), -1.0);
        assert_eq!(from_bf16(to_bf16(f32::MAX)), f32::INFINITY);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        // Signalling NaNs with only low mantissa bits would round to ±inf without the select.
        for bits in [0x7f80_0001u32, 0xff80_0001] {
            assert!(
                from_bf16(to_bf16(f32::from_bits(bits))).is_nan(),
                "{bits:#x}"
            );
        }
        assert_eq!(from_bf16(to_bf16(f32::NEG_INFINITY)), f32::NEG_INFINITY);
        // Exact bf16 values survive unchanged.
        for x in [
            0.0f32,
            -0.0,
            1.5,
            -3.25,
            65280.0,
            f32::from_bits(0x0d00_0000),
        ] {
            assert_eq!(from_bf16(to_bf16(x)).to_bits(), x.to_bits(), "{x}");
        }
    }

    #[test]
    fn views_with_no_unit_stride_pack_like_contiguous_ones() {
        // Every other element of a larger buffer: neither stride is 1.
        let (m, n, k) = (21, 19, 35);
        let big: Vec<f32> = (0..4 * m * k.max(n))
            .map(|v| v as f32 * 0.25 - 7.0)
            .collect();
        let strided = Mat {
            ptr: big.as_ptr(),
            rs: 2 * k as isize,
            cs: 2,
        };
        let dense: Vec<f32> = (0..m * k)
            .map(|v| big[(v / k) * 2 * k + 2 * (v % k)])
            .collect();
        let kb = k_blocks(k);
        let (mut a, mut b) = (
            vec![1u16; panels(m) * kb * TILE],
            vec![2u16; panels(m) * kb * TILE],
        );
        // SAFETY: both views stay inside their buffers for [m, k].
        unsafe {
            pack_lhs(m, k, strided, &mut a, false);
            pack_lhs(m, k, Mat::rows(dense.as_ptr(), k), &mut b, false);
        }
        assert_eq!(a, b, "lhs");
        let strided = Mat {
            ptr: big.as_ptr(),
            rs: 2 * n as isize,
            cs: 2,
        };
        let dense: Vec<f32> = (0..k * n)
            .map(|v| big[(v / n) * 2 * n + 2 * (v % n)])
            .collect();
        let (mut a, mut b) = (
            vec![1u16; panels(n) * kb * TILE],
            vec![2u16; panels(n) * kb * TILE],
        );
        // SAFETY: as above, for [k, n].
        unsafe {
            pack_rhs(k, n, strided, &mut a, false);
            pack_rhs(k, n, Mat::rows(dense.as_ptr(), n), &mut b, false);
        }
        assert_eq!(a, b, "rhs");
    }

    #[test]
    fn packed_tiles_hold_the_elements_where_the_kernels_read_them() {
        let (m, n, k) = (19, 21, 37);
        let a: Vec<f32> = (0..m * k).map(|v| v as f32).collect();
        let b: Vec<f32> = (0..k * n).map(|v| v as f32 * 0.5).collect();
        let mut pa = vec![7u16; panels(m) * k_blocks(k) * TILE];
        let mut pb = vec![7u16; panels(n) * k_blocks(k) * TILE];
        // SAFETY: row-major views over exactly these buffers.
        unsafe {
            pack_lhs(m, k, Mat::rows(a.as_ptr(), k), &mut pa, false);
            // rhs given transposed (stored [n, k]) to exercise the strides.
            let bt: Vec<f32> = (0..n * k).map(|v| b[(v % k) * n + v / k]).collect();
            pack_rhs(k, n, Mat::rows_t(bt.as_ptr(), k), &mut pb, true);
        }
        let kb = k_blocks(k);
        for i in 0..32 {
            for q in 0..kb * 32 {
                let got = from_bf16(pa[(((i / 16) * kb + q / 32) * 16 + i % 16) * 32 + q % 32]);
                let want = if i < m && q < k {
                    from_bf16(to_bf16(a[i * k + q]))
                } else {
                    0.0
                };
                assert_eq!(got, want, "lhs ({i}, {q})");
            }
        }
        for q in 0..kb * 32 {
            for j in 0..32 {
                let at = (((j / 16) * kb + q / 32) * 16 + (q % 32) / 2) * 32 + 2 * (j % 16) + q % 2;
                let want = if q < k && j < n {
                    from_bf16(to_bf16(b[q * n + j]))
                } else {
                    0.0
                };
                assert_eq!(from_bf16(pb[at]), want, "rhs ({q}, {j})");
            }
        }
    }
}
