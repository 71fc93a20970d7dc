//! `finetune bench gemm`: candle's f32 matrix product (`Tensor::matmul`, the `gemm` crate on
//! CPU) at a given size, in GFLOP/s — the ceiling every linear layer of a training step runs
//! into; with `--bf16`, the fused linear layer's product in f32 and in bf16 (f32
//! accumulation), alternated in one run.

use candle_core::{Device, Tensor};
use finetune_core::Result;
use finetune_kernels::ops::{linear, set_matmul_precision, MatmulPrecision};
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

/// Median seconds of the fused linear layer's product `[m, k] · [n, k]ᵀ` in f32 and in bf16,
/// `reps` of each alternated after one untimed each. Fails, with the reason, on a CPU without
/// bf16 products; leaves the precision at f32.
pub fn linear_f32_bf16(m: usize, n: usize, k: usize, reps: usize) -> Result<(f64, f64)> {
    let x = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu)?;
    let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu)?;
    let mut times = [Vec::new(), Vec::new()];
    let result = (|| -> Result<()> {
        for rep in 0..=reps.max(1) {
            for (side, p) in [MatmulPrecision::F32, MatmulPrecision::Bf16]
                .into_iter()
                .enumerate()
            {
                set_matmul_precision(p)?;
                let start = Instant::now();
                drop(linear(&x, &w, None)?);
                if rep > 0 {
                    times[side].push(start.elapsed().as_secs_f64());
                }
            }
        }
        Ok(())
    })();
    set_matmul_precision(MatmulPrecision::F32)?;
    result?;
    Ok((super::median(&times[0]), super::median(&times[1])))
}
