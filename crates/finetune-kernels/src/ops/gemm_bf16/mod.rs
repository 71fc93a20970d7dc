//! Matrix products in bfloat16 with f32 accumulation, on CPUs that have them (AMX-BF16, or
//! AVX512-BF16): what `--bf16` means on the CPU, as PyTorch's CPU autocast does for linear
//! layers and matrix products.
//!
//! [`set_matmul_precision`] switches the f32 products of the fused linear layers (LoRA
//! adapters included) and attention for the whole process — convolutions stay f32 (their
//! many small per-tap products made bf16 slower than f32 on ResNet-50); everything else — weights, activations,
//! gradients, the optimizer — stays f32. A product rounds both operands to bf16 (nearest,
//! ties to even) while packing them (`pack.rs`), multiplies exactly (a bf16 product is exact
//! in f32) and accumulates in f32, then applies the caller's scale and accumulation as the
//! f32 path does. Results differ from f32 products by the operands' rounding (a relative
//! 2⁻⁹ each), which is the precision training in bf16 accepts.
//!
//! `FINETUNE_SIMD=avx2` (an AVX2-only CPU, emulated) makes bf16 unavailable, like the CPUs it
//! stands for.

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod pack;

use super::gemm::{Mat, MatMut, SendPtr, Threads};
use super::simd::{simd_level, SimdLevel};
use crate::{Error, Result};
use pack::{k_blocks, pack_lhs, pack_rhs, panels, TILE};
use rayon::prelude::*;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, Ordering};

/// What the fused kernels' f32 matrix products compute in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatmulPrecision {
    /// f32 operands (the default).
    F32,
    /// bf16 operands, f32 accumulation (`--bf16`).
    Bf16,
}

/// The bf16 micro-kernel a CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bf16Kernel {
    /// AMX tiles (`tdpbf16ps`).
    Amx,
    /// AVX512-BF16 vectors (`vdpbf16ps`).
    Avx512Bf16,
}

impl Bf16Kernel {
    /// `amx` or `avx512-bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Amx => "amx",
            Self::Avx512Bf16 => "avx512-bf16",
        }
    }
}

static PRECISION: AtomicU8 = AtomicU8::new(0);

/// The precision in effect (f32 unless [`set_matmul_precision`] chose bf16).
pub fn matmul_precision() -> MatmulPrecision {
    match PRECISION.load(Ordering::Relaxed) {
        1 => MatmulPrecision::Bf16,
        _ => MatmulPrecision::F32,
    }
}

/// Sets the fused kernels' product precision for the whole process; bf16 is refused (with a
/// one-line reason) on a CPU without AMX-BF16 or AVX512-BF16.
pub fn set_matmul_precision(precision: MatmulPrecision) -> Result<()> {
    if precision == MatmulPrecision::Bf16 {
        bf16_kernel()?;
    }
    PRECISION.store(
        (precision == MatmulPrecision::Bf16) as u8,
        Ordering::Relaxed,
    );
    Ok(())
}

/// The bf16 kernel this CPU runs (AMX preferred), or why there is none.
pub fn bf16_kernel() -> Result<Bf16Kernel> {
    #[cfg(target_arch = "x86_64")]
    if simd_level() == SimdLevel::Avx512 {
        if amx::available() {
            return Ok(Bf16Kernel::Amx);
        }
        if avx512::available() {
            return Ok(Bf16Kernel::Avx512Bf16);
        }
    }
    Err(Error::config(format!(
        "bf16 matrix products need a CPU with AMX-BF16 or AVX512-BF16; this one has neither{} \
         (train in f32 here, or with --bf16 on a CPU that has them)",
        if simd_level() < super::simd::detected_simd_level() {
            " at the level FINETUNE_SIMD allows"
        } else {
            ""
        }
    )))
}

/// Whether [`gemm`] should take the f32 product at hand.
pub(crate) fn active() -> bool {
    matmul_precision() == MatmulPrecision::Bf16
}

thread_local! {
    /// Packed operands, kept between products on the calling thread.
    static PACKS: RefCell<(Vec<u16>, Vec<u16>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `dst ← scale · lhs · rhs` (or `dst + …` when `accumulate`), as [`super::gemm::gemm`], with
/// both operands rounded to bf16 and the sums kept in f32.
///
/// # Safety
/// As [`super::gemm::gemm`]; [`bf16_kernel`] must have succeeded (as
/// [`set_matmul_precision`] ensures before [`active`] turns true).
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
    let kernel = bf16_kernel().expect("bf16 products enabled on a CPU without them");
    gemm_with(kernel, m, n, k, dst, accumulate, lhs, rhs, scale, threads)
}

/// [`gemm`] with the given micro-kernel.
///
/// # Safety
/// As [`gemm`]; the CPU must run `kernel`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_with(
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
    PACKS.with_borrow_mut(|(pa, pb)| {
        let (la, lb) = (panels(m) * kb * TILE, panels(n) * kb * TILE);
        resize(pa, la);
        resize(pb, lb);
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
    });
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
    use super::pack::{from_bf16, to_bf16};
    use super::*;
    use crate::ops::gemm::tests::Case;

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
            // Scale 1 with whole blocks: AMX's tiles go straight to the destination.
            for acc in [false, true] {
                check_scaled(kernel, 96, 64, 70, false, true, acc, Threads::Pool, 1.0);
                check_scaled(kernel, 100, 70, 33, true, false, acc, Threads::One, 1.0);
            }
        }
    }
}
