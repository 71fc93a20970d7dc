//! What the fused CPU kernels share: the float trait they are generic over (`f32`, `f64`),
//! access to contiguous storage, dtype promotion of their inputs, and the lane-split
//! reductions that let the compiler vectorise row sums.
//!
//! Every fused op takes its inputs contiguous and in `f32`/`f64`: the public wrappers make
//! strided inputs contiguous and promote `f16`/`bf16` to `f32` (and the result back) with
//! ordinary differentiable candle ops, so the kernels themselves only ever read one
//! contiguous slice per input.

use candle_core::{CpuStorage, DType, Layout, Tensor, WithDType};

/// The float types the fused kernels run on.
pub(crate) trait Real: WithDType + std::iter::Sum {
    const ZERO: Self;
    const ONE: Self;
    const HALF: Self;
    const NEG_INFINITY: Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn erf(self) -> Self;
    fn is_nan(self) -> bool;
    fn c(v: f64) -> Self;
}

macro_rules! real {
    ($t:ty, $erf:path) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const HALF: Self = 0.5;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline(always)]
            fn c(v: f64) -> Self {
                v as $t
            }
        }
    };
}
real!(f32, candle_core::cpu::erf::erf_f32);
real!(f64, candle_core::cpu::erf::erf_f64);

/// The contiguous slice of `storage` that `layout` describes, as `T`.
pub(crate) fn slice<'a, T: WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [T]> {
    let data = storage.as_slice::<T>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: the fused kernel needs a contiguous input"),
    }
}

/// The dtype a fused kernel computes in for inputs of dtype `dtype`.
pub(crate) fn compute_dtype(dtype: DType, op: &str) -> candle_core::Result<DType> {
    match dtype {
        DType::F32 | DType::F64 => Ok(dtype),
        DType::F16 | DType::BF16 => Ok(DType::F32),
        other => candle_core::bail!("{op}: expected a float tensor, got {other:?}"),
    }
}

/// `t` as the fused kernels take it: contiguous, in `dtype`. Both steps are differentiable
/// candle ops, so gradients flow back to the original strided / half-precision tensor.
pub(crate) fn kernel_input(t: &Tensor, dtype: DType) -> candle_core::Result<Tensor> {
    t.to_dtype(dtype)?.contiguous()
}

/// Whether tensors on this device run the fused CPU kernels (otherwise: composed fallback).
pub(crate) fn fused_on(t: &Tensor) -> bool {
    t.device().is_cpu()
}

/// How many rows of length `d` one rayon task should take at least, so that tiny rows do not
/// drown in scheduling overhead. Independent of the thread count.
pub(crate) fn min_rows_per_task(d: usize) -> usize {
    (16_384 / d.max(1)).max(1)
}

/// Elements per rayon task for element-wise kernels.
pub(crate) const ELEMWISE_CHUNK: usize = 16_384;

const LANES: usize = 8;

/// Sum of `xs`, accumulated in eight independent lanes (vectorisable, and more accurate than
/// one running sum).
#[inline]
pub(crate) fn sum<T: Real>(xs: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.into_iter().sum::<T>() + rest.iter().copied().sum::<T>()
}

/// `Σ (x_i - mean)²`, lane-split like [`sum`].
#[inline]
pub(crate) fn sum_sq_dev<T: Real>(xs: &[T], mean: T) -> T {
    let mut acc = [T::ZERO; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            let d = x - mean;
            *a += d * d;
        }
    }
    acc.into_iter().sum::<T>() + rest.iter().map(|&x| (x - mean) * (x - mean)).sum::<T>()
}

/// `Σ a_i b_i`, lane-split like [`sum`].
#[inline]
pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [T::ZERO; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let rest = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| x * y)
        .sum::<T>();
    for (xa, xb) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += xa[i] * xb[i];
        }
    }
    acc.into_iter().sum::<T>() + rest
}

/// Largest element of a non-empty slice (NaN-propagating is not needed here: a NaN row gives
/// NaN outputs through the arithmetic anyway).
#[inline]
pub(crate) fn max<T: Real>(xs: &[T]) -> T {
    let mut acc = [T::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            if x > *a {
                *a = x;
            }
        }
    }
    let mut m = T::NEG_INFINITY;
    for &x in acc.iter().chain(rest) {
        if x > m {
            m = x;
        }
    }
    m
}
