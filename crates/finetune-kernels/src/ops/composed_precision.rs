//! The precision of the composed ops' matrix products and convolutions: what `--bf16` (and
//! `--fp16`, the same with f16, whose loss scaling is the learner's) means off the CPU's
//! fused kernels — on CUDA and Metal, and on the CPU's generic path that stands
//! for them (`FINETUNE_OPS=generic`). Switched on, each product casts its two f32 operands to
//! bf16, multiplies them there (tensor cores on a GPU) and casts the bf16 result back to f32,
//! as PyTorch's autocast does for `matmul`, `linear` and `conv2d`; the backward runs through
//! the same casts, so the gradients' products are bf16 too. Everything else — weights,
//! layer norm, softmax, the losses, gradients, the optimizer and its state — stays f32.
//! Convolutions take bf16 on a GPU only: candle's CPU convolution has no bf16 kernel, so on
//! the CPU's generic path they stay f32.
//!
//! The CPU's fused kernels have their own switch ([`super::set_matmul_precision`]): their
//! products keep f32 results and need AMX-BF16 or AVX512-BF16.

use super::MatmulPrecision;
use crate::Result;
use candle_core::{DType, Tensor};
use std::sync::atomic::{AtomicU8, Ordering};

/// 0: f32, 1: bf16, 2: f16.
static PRECISION: AtomicU8 = AtomicU8::new(0);

/// Sets the composed products' precision for the whole process (any device takes bf16 and
/// f16).
pub fn set_composed_precision(precision: MatmulPrecision) {
    let code = match precision {
        MatmulPrecision::F32 => 0,
        MatmulPrecision::Bf16 => 1,
        MatmulPrecision::F16 => 2,
    };
    PRECISION.store(code, Ordering::Relaxed);
}

/// The composed products' precision in effect (f32 unless switched).
pub fn composed_precision() -> MatmulPrecision {
    match PRECISION.load(Ordering::Relaxed) {
        1 => MatmulPrecision::Bf16,
        2 => MatmulPrecision::F16,
        _ => MatmulPrecision::F32,
    }
}

/// The dtype the products of f32 operands run in now (`None`: as they are).
fn product_dtype(a: &Tensor) -> Option<DType> {
    let half = match composed_precision() {
        MatmulPrecision::F32 => return None,
        MatmulPrecision::Bf16 => DType::BF16,
        MatmulPrecision::F16 => DType::F16,
    };
    (a.dtype() == DType::F32).then_some(half)
}

/// `a.matmul(b)` at the composed precision; the result has `a`'s dtype.
pub fn composed_matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(match product_dtype(a) {
        Some(h) => a
            .to_dtype(h)?
            .matmul(&b.to_dtype(h)?)?
            .to_dtype(a.dtype())?,
        None => a.matmul(b)?,
    })
}

/// candle's `conv2d` (one group) at the composed precision off the CPU (f32 on it: see the
/// module doc); the result has `x`'s dtype.
pub fn composed_conv2d(
    x: &Tensor,
    w: &Tensor,
    padding: usize,
    stride: usize,
    dilation: usize,
) -> Result<Tensor> {
    Ok(match product_dtype(x).filter(|_| !x.device().is_cpu()) {
        Some(h) => x
            .to_dtype(h)?
            .conv2d(&w.to_dtype(h)?, padding, stride, dilation, 1)?
            .to_dtype(x.dtype())?,
        None => x.conv2d(w, padding, stride, dilation, 1)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Switched on, a product equals the bf16 product of the bf16-rounded operands, read back
    /// as f32, and stays within bf16's rounding of the f32 product; switched off, it is the
    /// f32 product itself. A convolution on the CPU stays f32 either way.
    #[test]
    fn bf16_products_are_the_products_of_rounded_operands() -> Result<()> {
        let dev = Device::Cpu;
        let a = Tensor::randn(0f32, 1.0, (7, 33), &dev)?;
        let b = Tensor::randn(0f32, 1.0, (33, 5), &dev)?;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &dev)?;
        let w = Tensor::randn(0f32, 1.0, (4, 3, 3, 3), &dev)?;
        let exact = a.matmul(&b)?;
        let exact_conv = x.conv2d(&w, 1, 2, 1, 1)?;
        set_composed_precision(MatmulPrecision::Bf16);
        let (got, got_conv) = (composed_matmul(&a, &b), composed_conv2d(&x, &w, 1, 2, 1));
        set_composed_precision(MatmulPrecision::F32);
        let (got, got_conv) = (got?, got_conv?);
        let h = DType::BF16;
        let want = a
            .to_dtype(h)?
            .matmul(&b.to_dtype(h)?)?
            .to_dtype(DType::F32)?;
        assert_eq!(got.dtype(), DType::F32);
        assert_eq!(got.to_vec2::<f32>()?, want.to_vec2::<f32>()?);
        let err = (&got - &exact)?.abs()?.max_all()?.to_scalar::<f32>()?;
        let scale = exact.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(err > 0.0 && err < 0.05 * scale, "{err} vs {scale}");
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        assert_eq!(flat(&got_conv)?, flat(&exact_conv)?);
        assert_eq!(
            composed_matmul(&a, &b)?.to_vec2::<f32>()?,
            exact.to_vec2::<f32>()?
        );
        Ok(())
    }
}
