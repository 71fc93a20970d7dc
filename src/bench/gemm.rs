//! `finetune bench gemm`: candle's f32 matrix product (`Tensor::matmul`, the `gemm` crate on
//! CPU) at a given size, in GFLOP/s — the ceiling every linear layer of a training step runs
//! into.

use candle_core::{Device, Tensor};
use finetune_core::Result;
use std::time::Instant;

/// Median GFLOP/s (`2·m·n·k` per product) of `reps` products `[m, k] × [k, n]` after one
/// untimed product, and the median seconds.
pub fn matmul_gflops(m: usize, n: usize, k: usize, reps: usize) -> Result<(f64, f64)> {
    let a = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu)?;
    let b = Tensor::randn(0f32, 1.0, (k, n), &Device::Cpu)?;
    drop(a.matmul(&b)?);
    let mut t = Vec::with_capacity(reps.max(1));
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let c = a.matmul(&b)?;
        t.push(start.elapsed().as_secs_f64());
        drop(c);
    }
    let s = super::median(&t);
    Ok((2.0 * (m * n * k) as f64 / s / 1e9, s))
}
