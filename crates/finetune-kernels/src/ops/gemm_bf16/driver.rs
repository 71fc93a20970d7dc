//! The bf16 product driver: packs both operands (`pack.rs`), then computes the product in
//! 32 × 32 blocks with the chosen micro-kernel (`amx.rs` or `avx512.rs`), over rayon's pool
//! when the caller allows it, and writes them into the destination with the caller's scale
//! and accumulation.

use super::pack::{k_blocks, pack_lhs, pack_rhs, panels, TILE};
use super::{amx, avx512, Bf16Kernel};
use crate::ops::gemm::{Mat, MatMut, SendPtr, Threads};
use rayon::prelude::*;
use std::cell::Cell;

thread_local! {
    /// Packed operands, kept between products on the calling thread.
    static PACKS: Cell<(Vec<u16>, Vec<u16>)> = const { Cell::new((Vec::new(), Vec::new())) };
}

/// `dst ← scale · lhs · rhs` (or `dst + …` when `accumulate`), as [`crate::ops::gemm::gemm`], with
/// both operands rounded to bf16 and the sums kept in f32.
///
/// # Safety
/// As [`crate::ops::gemm::gemm`]; bf16 products must be switched on
/// ([`super::set_matmul_precision`], which checks the CPU runs the kernel it records).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: MatMut<f32>,
    accumulate: bool,
    lhs: Mat<f32>,
    rhs: Mat<f32>,
    scale: f32,
    threads: Threads,
) {
    let kernel = super::active_kernel().expect("bf16 products enabled on a CPU without them");
    gemm_with(kernel, m, n, k, dst, accumulate, lhs, rhs, scale, threads)
}

/// [`gemm`] with the given micro-kernel.
///
/// # Safety
/// As [`gemm`]; the CPU must run `kernel`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_with(
    kernel: Bf16Kernel,
    m: usize,
    n: usize,
    k: usize,
    dst: MatMut<f32>,
    accumulate: bool,
    lhs: Mat<f32>,
    rhs: Mat<f32>,
    scale: f32,
    threads: Threads,
) {
    if k == 0 {
        // An empty sum: dst stays (accumulate) or becomes zero.
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    *dst.ptr.offset(i as isize * dst.rs + j as isize * dst.cs) = 0.0;
                }
            }
        }
        return;
    }
    let parallel = threads == Threads::Pool && rayon::current_num_threads() > 1;
    let kb = k_blocks(k);
    // The buffers leave the thread-local for the product (a product started on this thread
    // while rayon waits, if ever, then finds none and makes its own) and come back after.
    let (mut pa, mut pb) = PACKS.take();
    {
        let (la, lb) = (panels(m) * kb * TILE, panels(n) * kb * TILE);
        resize(&mut pa, la);
        resize(&mut pb, lb);
        let (pa, pb) = (&mut pa[..la], &mut pb[..lb]);
        pack_lhs(m, k, lhs, pa, parallel && m >= 64);
        pack_rhs(k, n, rhs, pb, parallel && n >= 64);
        let out = Output {
            m,
            n,
            dst: SendPtr(dst.ptr),
            rs: dst.rs,
            cs: dst.cs,
            accumulate,
            scale,
        };
        let (mb, nb) = (panels(m) / 2, panels(n) / 2);
        let run = |blocks: std::ops::Range<usize>| {
            run_blocks(kernel, kb, pa, pb, (mb, nb), blocks, &out);
        };
        let total = mb * nb;
        if parallel && total > 1 {
            let chunks = (rayon::current_num_threads() * 4).min(total);
            (0..chunks)
                .into_par_iter()
                .for_each(|c| run(c * total / chunks..(c + 1) * total / chunks));
        } else {
            run(0..total);
        }
    }
    PACKS.set((pa, pb));
}

/// `v` grown to at least `len` elements (the packing writes every one of the first `len`, so
/// a buffer is zeroed only when it grows).
fn resize(v: &mut Vec<u16>, len: usize) {
    if v.len() < len {
        v.resize(len, 0);
    }
}

/// Where and how a product's blocks are written.
struct Output {
    m: usize,
    n: usize,
    dst: SendPtr<f32>,
    rs: isize,
    cs: isize,
    accumulate: bool,
    scale: f32,
}

/// The `t`-th of the `[mb, nb]` 32 × 32 blocks in the order they are computed: the block
/// columns in groups whose packed rhs panels fit in about half a megabyte (a core's L2), and
/// within a group every block row, so that a group's rhs panels are read from cache while the
/// lhs streams past once per group.
fn block_at(t: usize, mb: usize, nb: usize, kb: usize) -> (usize, usize) {
    const GROUP_BYTES: usize = 512 << 10;
    let width = (GROUP_BYTES / (2 * kb * TILE * 2)).clamp(1, nb);
    let group = t / (mb * width);
    let w = width.min(nb - group * width);
    let local = t - group * mb * width;
    (local / w, group * width + local % w)
}

/// Blocks `blocks` (in [`block_at`]'s order over `[mb, nb]` 32 × 32 blocks) of the product of the packed
/// operands, written into `out`.
unsafe fn run_blocks(
    kernel: Bf16Kernel,
    kb: usize,
    pa: &[u16],
    pb: &[u16],
    (mb, nb): (usize, usize),
    blocks: std::ops::Range<usize>,
    out: &Output,
) {
    if blocks.is_empty() {
        return;
    }
    let mut acc = [0f32; 4 * 256];
    if kernel == Bf16Kernel::Amx {
        amx::configure();
    }
    for t in blocks {
        let (bi, bj) = block_at(t, mb, nb, kb);
        let a = pa.as_ptr().add(2 * bi * kb * TILE);
        let b = pb.as_ptr().add(2 * bj * kb * TILE);
        let whole = (bi + 1) * 32 <= out.m && (bj + 1) * 32 <= out.n;
        if kernel == Bf16Kernel::Amx && whole && out.cs == 1 && out.scale == 1.0 {
            // The tiles go straight to (and from) the destination's rows.
            let c = out
                .dst
                .get()
                .offset((bi * 32) as isize * out.rs + (bj * 32) as isize);
            amx::block_into(kb, a, b, c, out.rs as usize, out.accumulate);
            continue;
        }
        match kernel {
            Bf16Kernel::Amx => amx::block(kb, a, b, &mut acc),
            Bf16Kernel::Avx512Bf16 => avx512::block(kb, a, b, &mut acc),
        }
        write_block(out, bi * 32, bj * 32, &acc);
    }
    if kernel == Bf16Kernel::Amx {
        amx::release();
    }
}

/// Writes the part of a 32 × 32 block (four 16 × 16 tiles) at `(i0, j0)` that lies inside
/// the product.
#[inline]
unsafe fn write_block(out: &Output, i0: usize, j0: usize, acc: &[f32; 4 * 256]) {
    for tile in 0..4 {
        let (ti, tj) = (i0 + (tile / 2) * 16, j0 + (tile % 2) * 16);
        let rows = out.m.saturating_sub(ti).min(16);
        let cols = out.n.saturating_sub(tj).min(16);
        for r in 0..rows {
            let src = &acc[tile * 256 + r * 16..][..cols];
            let row = out
                .dst
                .get()
                .offset((ti + r) as isize * out.rs + tj as isize * out.cs);
            for (c, &v) in src.iter().enumerate() {
                let d = row.offset(c as isize * out.cs);
                *d = if out.accumulate {
                    *d + out.scale * v
                } else {
                    out.scale * v
                };
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::pack::{from_bf16, to_bf16};
    use super::*;
    use crate::ops::gemm::tests::Case;
    use crate::ops::gemm_bf16::{matmul_precision, set_matmul_precision, MatmulPrecision};

    /// Every kernel this CPU runs (none on a CPU without bf16 products).
    fn kernels() -> Vec<Bf16Kernel> {
        let mut k = Vec::new();
        if amx::available() {
            k.push(Bf16Kernel::Amx);
        }
        if avx512::available() {
            k.push(Bf16Kernel::Avx512Bf16);
        }
        k
    }

    /// `dst [+]= scale · op(a) · op(b)` through `kernel` against a triple loop in f64 over the
    /// bf16-rounded operands: the products of bf16 values are exact, so only the f32 sums'
    /// rounding separates the two.
    #[allow(clippy::too_many_arguments)]
    fn check(
        kernel: Bf16Kernel,
        m: usize,
        n: usize,
        k: usize,
        a_t: bool,
        b_t: bool,
        acc: bool,
        threads: Threads,
    ) {
        check_scaled(kernel, m, n, k, a_t, b_t, acc, threads, 0.75)
    }

    /// [`check`] with the given scale.
    #[allow(clippy::too_many_arguments)]
    fn check_scaled(
        kernel: Bf16Kernel,
        m: usize,
        n: usize,
        k: usize,
        a_t: bool,
        b_t: bool,
        acc: bool,
        threads: Threads,
        scale: f32,
    ) {
        let case = Case {
            m,
            n,
            k,
            a_t,
            b_t,
            acc,
            scale,
        };
        let round = |x: f32| from_bf16(to_bf16(x)) as f64;
        // SAFETY: the views cover exactly the case's buffers; the CPU runs `kernel`.
        case.check(1e-5, round, |d, a, b| unsafe {
            gemm_with(kernel, m, n, k, d, acc, a, b, scale, threads)
        });
    }

    /// A destination whose rows are longer than the product's (one head's columns of an
    /// activation): whole blocks go straight to it, and nothing beyond the product changes.
    fn into_a_wider_destination(kernel: Bf16Kernel) {
        let (m, n, k, ld) = (64, 64, 48, 75);
        let a = crate::ops::gemm::tests::fill(m * k, 5);
        let b = crate::ops::gemm::tests::fill(k * n, 6);
        for acc in [false, true] {
            let mut d = crate::ops::gemm::tests::fill(m * ld, 7);
            let d0 = d.clone();
            // SAFETY: the views cover their buffers; the CPU runs `kernel`.
            unsafe {
                gemm_with(
                    kernel,
                    m,
                    n,
                    k,
                    MatMut::rows(d.as_mut_ptr(), ld),
                    acc,
                    Mat::rows(a.as_ptr(), k),
                    Mat::rows(b.as_ptr(), n),
                    1.0,
                    Threads::One,
                )
            };
            let r = |x: f32| from_bf16(to_bf16(x)) as f64;
            for i in 0..m {
                for j in 0..ld {
                    let got = d[i * ld + j] as f64;
                    if j >= n {
                        assert_eq!(got, d0[i * ld + j] as f64, "({i},{j}) beyond the product");
                        continue;
                    }
                    let dot: f64 = (0..k).map(|p| r(a[i * k + p]) * r(b[p * n + j])).sum();
                    let want = dot + if acc { d0[i * ld + j] as f64 } else { 0.0 };
                    assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "({i},{j})");
                }
            }
        }
    }

    #[test]
    fn the_block_order_visits_every_block_once() {
        for (mb, nb, kb) in [
            (1, 1, 1),
            (5, 3, 1),
            (7, 40, 12),
            (64, 48, 96),
            (3, 100, 300),
        ] {
            let mut seen = vec![false; mb * nb];
            for t in 0..mb * nb {
                let (i, j) = block_at(t, mb, nb, kb);
                assert!(
                    i < mb && j < nb && !seen[i * nb + j],
                    "{mb}×{nb} (kb {kb}): t {t}"
                );
                seen[i * nb + j] = true;
            }
        }
    }

    #[test]
    fn bf16_products_match_a_triple_loop_over_rounded_operands() {
        let kernels = kernels();
        if kernels.is_empty() {
            // A CPU without bf16 products refuses them, with the reason.
            let err = set_matmul_precision(MatmulPrecision::Bf16)
                .unwrap_err()
                .to_string();
            assert!(err.contains("AMX-BF16 or AVX512-BF16"), "{err}");
            assert_eq!(matmul_precision(), MatmulPrecision::F32);
            return;
        }
        for kernel in kernels {
            for &(m, n, k) in &[
                (1, 1, 1),
                (7, 5, 3),
                (33, 17, 65),
                (64, 96, 40),
                (3, 130, 1),
                (5, 4, 0),
            ] {
                for a_t in [false, true] {
                    for b_t in [false, true] {
                        for acc in [false, true] {
                            check(kernel, m, n, k, a_t, b_t, acc, Threads::One);
                        }
                    }
                }
            }
            check(kernel, 150, 70, 90, true, false, true, Threads::Pool);
            check(kernel, 257, 129, 300, false, true, false, Threads::Pool);
            // k a multiple of 32 (no zero fill) on buffers a larger product left dirty.
            check(kernel, 64, 64, 64, false, false, true, Threads::One);
            check(kernel, 96, 40, 32, true, true, false, Threads::Pool);
            into_a_wider_destination(kernel);
            // Scale 1 with whole blocks: AMX's tiles go straight to the destination.
            for acc in [false, true] {
                check_scaled(kernel, 96, 64, 70, false, true, acc, Threads::Pool, 1.0);
                check_scaled(kernel, 100, 70, 33, true, false, acc, Threads::One, 1.0);
            }
        }
    }
}
