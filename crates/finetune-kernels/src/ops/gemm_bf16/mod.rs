//! Matrix products in bfloat16 with f32 accumulation, on CPUs that have them (AMX-BF16, or
//! AVX512-BF16): what `--bf16` means on the CPU, as PyTorch's CPU autocast does for linear
//! layers and matrix products.
//!
//! [`set_matmul_precision`] switches the f32 products of the fused linear layers (LoRA
//! adapters included) and attention for the whole process. Convolutions stay f32 (their many
//! small per-tap products made bf16 slower than f32 on ResNet-50), and so does everything
//! else: weights, activations, gradients, the optimizer. A product rounds both operands to
//! bf16 (nearest, ties to even) while packing them (`pack.rs`), multiplies them exactly (the
//! product of two bf16 values is exact in f32; both instructions treat subnormal inputs as
//! zero and flush subnormal results, whatever MXCSR says) and accumulates in f32, then applies
//! the caller's scale and accumulation as the f32 path does (`driver.rs`). Results differ from
//! f32 products by the operands' rounding (a relative 2⁻⁹ each), which is the precision
//! training in bf16 accepts.
//!
//! `FINETUNE_SIMD=avx2` (an AVX2-only CPU, emulated) makes bf16 unavailable, like the CPUs it
//! stands for.

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod driver;
#[cfg(target_arch = "x86_64")]
mod pack;

#[cfg(target_arch = "x86_64")]
pub(crate) use driver::gemm;

use super::simd::{simd_level, SimdLevel};
use crate::{Error, Result};
use std::sync::atomic::{AtomicU8, Ordering};

/// What the fused kernels' f32 matrix products compute in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatmulPrecision {
    /// f32 operands (the default).
    F32,
    /// bf16 operands, f32 accumulation (`--bf16`).
    Bf16,
    /// f16 operands (`--fp16`): the composed ops' products only
    /// ([`super::set_composed_precision`]), off the CPU's fused kernels.
    F16,
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

/// The precision in effect: 0 for f32, else the bf16 kernel chosen when it was switched on
/// (1 AMX, 2 AVX512-BF16), so that a later cap of the vector level cannot take it away
/// mid-run.
static PRECISION: AtomicU8 = AtomicU8::new(0);

/// The precision in effect (f32 unless [`set_matmul_precision`] chose bf16).
pub fn matmul_precision() -> MatmulPrecision {
    match PRECISION.load(Ordering::Relaxed) {
        0 => MatmulPrecision::F32,
        _ => MatmulPrecision::Bf16,
    }
}

/// The kernel bf16 products run on, while they are switched on.
pub(crate) fn active_kernel() -> Option<Bf16Kernel> {
    match PRECISION.load(Ordering::Relaxed) {
        1 => Some(Bf16Kernel::Amx),
        2 => Some(Bf16Kernel::Avx512Bf16),
        _ => None,
    }
}

/// Whether the fused kernels' f32 products run in bf16 now.
pub(crate) fn active() -> bool {
    active_kernel().is_some()
}

/// Sets the fused kernels' product precision for the whole process; bf16 is refused (with a
/// one-line reason) on a CPU without AMX-BF16 or AVX512-BF16.
pub fn set_matmul_precision(precision: MatmulPrecision) -> Result<()> {
    let code = match precision {
        MatmulPrecision::F32 => 0,
        MatmulPrecision::F16 => {
            return Err(Error::config(
                "f16 matrix products run off the CPU's fused kernels (on a GPU, or under \
                 FINETUNE_OPS=generic); on the CPU use bf16",
            ))
        }
        MatmulPrecision::Bf16 => match bf16_kernel()? {
            Bf16Kernel::Amx => 1,
            Bf16Kernel::Avx512Bf16 => 2,
        },
    };
    PRECISION.store(code, Ordering::Relaxed);
    Ok(())
}

/// The bf16 kernel this CPU has (AMX preferred) at its detected vector level, whatever
/// `FINETUNE_SIMD` says.
fn cpu_kernel() -> Option<Bf16Kernel> {
    #[cfg(target_arch = "x86_64")]
    if super::simd::detected_simd_level() == SimdLevel::Avx512 {
        if amx::available() {
            return Some(Bf16Kernel::Amx);
        }
        if avx512::available() {
            return Some(Bf16Kernel::Avx512Bf16);
        }
    }
    None
}

/// The bf16 kernel this process may run (AMX preferred), or why there is none: the CPU has
/// neither kind, or `FINETUNE_SIMD` caps the vector level below AVX-512 (an AVX2-only CPU,
/// emulated).
pub fn bf16_kernel() -> Result<Bf16Kernel> {
    match cpu_kernel() {
        Some(k) if simd_level() == SimdLevel::Avx512 => Ok(k),
        Some(_) => Err(Error::config(format!(
            "bf16 matrix products need a CPU with AMX-BF16 or AVX512-BF16; this one has them, \
             but FINETUNE_SIMD={} caps the vector level below AVX-512 (an AVX2-only CPU)",
            simd_level().name()
        ))),
        None => Err(Error::config(
            "bf16 matrix products need a CPU with AMX-BF16 or AVX512-BF16; this one has \
             neither (train in f32 here, or with --bf16 on a CPU that has them)",
        )),
    }
}
