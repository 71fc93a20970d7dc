//! The AVX512-BF16 micro-kernel (`vdpbf16ps`: each f32 lane adds the products of one pair of
//! bf16 values), for CPUs with AVX512-BF16 but no AMX (AMD Zen 4, Intel Cooper Lake).
//!
//! It computes the same 32 × 32 block from the same packed panels as the AMX kernel (`amx.rs`),
//! eight rows at a time: sixteen accumulators (eight rows × two 16-column panels), the two rhs
//! rows of a k-pair loaded once and each lhs pair broadcast.

use super::pack::TILE;
use std::arch::x86_64::*;

/// Whether the CPU has AVX512-BF16 (and AVX-512F).
pub fn available() -> bool {
    is_x86_feature_detected!("avx512bf16") && is_x86_feature_detected!("avx512f")
}

/// As [`super::amx::block`]: the 32 × 32 block `Σ_b A(p, b)·B(q, b)` over `kb` k-blocks into
/// `out`, from two lhs panels at `a` and two rhs panels at `b`.
///
/// # Safety
/// [`available`] must have returned true; `a` and `b` must each hold `2·kb·TILE` elements.
#[target_feature(enable = "avx512bf16,avx512f")]
pub unsafe fn block(kb: usize, a: *const u16, b: *const u16, out: &mut [f32; 4 * 256]) {
    for rows in 0..4 {
        // Rows 8·rows … 8·rows + 7 of the block: lhs panel `rows / 2`, its rows from
        // 8·(rows % 2).
        let panel = a.add((rows / 2) * kb * TILE);
        let r0 = 8 * (rows % 2);
        let mut acc = [[_mm512_setzero_ps(); 2]; 8];
        for blk in 0..kb {
            let (lhs, rhs0) = (panel.add(blk * TILE), b.add(blk * TILE));
            let rhs1 = rhs0.add(kb * TILE);
            for pair in 0..16 {
                let b0: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(rhs0.add(pair * 32).cast()));
                let b1: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(rhs1.add(pair * 32).cast()));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let word = lhs
                        .add((r0 + r) * 32 + 2 * pair)
                        .cast::<i32>()
                        .read_unaligned();
                    let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(word));
                    acc[0] = _mm512_dpbf16_ps(acc[0], av, b0);
                    acc[1] = _mm512_dpbf16_ps(acc[1], av, b1);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let row = r0 + r;
            for (col, v) in acc.iter().enumerate() {
                let tile = (rows / 2) * 2 + col;
                _mm512_storeu_ps(out.as_mut_ptr().add(tile * 256 + row * 16), *v);
            }
        }
    }
}
