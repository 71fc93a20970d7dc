//! What the fused CPU kernels share: the float trait they are generic over (`f32`, `f64`),
//! access to contiguous storage, dtype promotion of their inputs, and the lane-split
//! reductions that let the compiler vectorise row sums.
//!
//! Every fused op takes its inputs contiguous and in `f32`/`f64`: the public wrappers make
//! strided inputs contiguous and promote `f16`/`bf16` to `f32` (and the result back) with
//! ordinary differentiable candle ops, so the kernels themselves only ever read one
//! contiguous slice per input.

use std::mem::MaybeUninit;

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor,
    WithDType,
};
use rayon::prelude::*;

/// The float types the fused kernels run on.
pub(crate) trait Real: WithDType + std::iter::Sum {
    const ZERO: Self;
    const ONE: Self;
    const HALF: Self;
    const NEG_INFINITY: Self;
    /// `exp` for arguments `<= 88` that vectorises: f32 uses [`super::fast_math::exp_f32`]
    /// (a few ulp), f64 keeps libm's (the f64 path is the precise one).
    fn fast_exp(self) -> Self;
    /// `tanh`, vectorisable in f32 ([`super::fast_math::tanh_f32`], ~1e-7 absolute); libm's
    /// in f64.
    fn fast_tanh(self) -> Self;
    /// `erf`, vectorisable in f32 ([`super::fast_math::erf_f32`], 4e-7 absolute); libm's in
    /// f64.
    fn fast_erf(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn is_nan(self) -> bool;
    fn c(v: f64) -> Self;
}

macro_rules! real {
    ($t:ty, $fast_exp:path, $fast_tanh:path, $fast_erf:path) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const HALF: Self = 0.5;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            #[inline(always)]
            fn fast_exp(self) -> Self {
                $fast_exp(self)
            }
            #[inline(always)]
            fn fast_tanh(self) -> Self {
                $fast_tanh(self)
            }
            #[inline(always)]
            fn fast_erf(self) -> Self {
                $fast_erf(self)
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
real!(
    f32,
    super::fast_math::exp_f32,
    super::fast_math::tanh_f32,
    super::fast_math::erf_f32
);
real!(f64, f64::exp, f64::tanh, candle_core::cpu::erf::erf_f64);

/// Evaluates `$body` with the type alias `$t` naming the Rust type of `$dtype` (`f32` or
/// `f64`, the dtypes the kernels run on); any other dtype is an error naming `$op`. The
/// dispatch every custom op's `cpu_fwd` does.
macro_rules! with_real {
    ($dtype:expr, $op:expr, $t:ident => $body:expr) => {
        match $dtype {
            candle_core::DType::F32 => {
                type $t = f32;
                $body
            }
            candle_core::DType::F64 => {
                type $t = f64;
                $body
            }
            dt => candle_core::bail!("{}: unsupported dtype {dt:?}", $op),
        }
    };
}
pub(crate) use with_real;

/// A fused op of one tensor whose backward is again one fused kernel, of the output gradient
/// and one tensor of the forward pass (its input or its output). [`Fused`] turns it into a
/// differentiable candle custom op.
pub(crate) trait UnaryKernel: Copy + Send + Sync + 'static {
    /// The names candle reports for the forward and the backward custom op.
    fn op_names(&self) -> (&'static str, &'static str);
    /// Whether the backward reads the forward's input (`true`) or its output.
    fn bwd_reads_input(&self) -> bool;
    /// The output and its shape, from the contiguous input `x` of layout `l`.
    fn fwd<T: Real>(&self, x: &[T], l: &Layout) -> candle_core::Result<(Vec<T>, Shape)>;
    /// The input's gradient, shaped like `saved` (the forward's input or output, per
    /// [`Self::bwd_reads_input`]; layout `l`), from the output gradient `dy`.
    fn bwd<T: Real>(&self, saved: &[T], l: &Layout, dy: &[T]) -> candle_core::Result<Vec<T>>;
}

/// The forward custom op of a [`UnaryKernel`] (apply it with `Tensor::apply_op1`).
#[derive(Clone)]
pub(crate) struct Fused<K>(pub K);

/// The backward custom op of a [`UnaryKernel`]: inputs `saved` and `dy`, output `dx`.
pub(crate) struct FusedBwd<K>(pub K);

impl<K: UnaryKernel> CustomOp1 for Fused<K> {
    fn name(&self) -> &'static str {
        self.0.op_names().0
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        with_real!(s.dtype(), self.name(), T => {
            let (y, shape) = self.0.fwd(slice::<T>(s, l, self.name())?, l)?;
            Ok((T::to_cpu_storage_owned(y), shape))
        })
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let saved = if self.0.bwd_reads_input() { x } else { y };
        let grad = grad.contiguous()?;
        Ok(Some(saved.apply_op2_no_bwd(&grad, &FusedBwd(self.0))?))
    }
}

impl<K: UnaryKernel> CustomOp2 for FusedBwd<K> {
    fn name(&self) -> &'static str {
        self.0.op_names().1
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        with_real!(s1.dtype(), self.name(), T => {
            let saved = slice::<T>(s1, l1, self.name())?;
            let dx = self.0.bwd(saved, l1, slice::<T>(s2, l2, self.name())?)?;
            Ok((T::to_cpu_storage_owned(dx), l1.shape().clone()))
        })
    }
}

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

/// [`slice`] of each `(storage, layout)` pair.
pub(crate) fn slices<'a, T: WithDType, const N: usize>(
    inputs: [(&'a CpuStorage, &Layout); N],
    op: &str,
) -> candle_core::Result<[&'a [T]; N]> {
    let mut out = [&[][..]; N];
    for (o, (s, l)) in out.iter_mut().zip(inputs) {
        *o = slice(s, l, op)?;
    }
    Ok(out)
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

/// A vector of `len` elements computed in parallel, `chunk` elements at a time (the last chunk
/// may be shorter), by `fill(chunk_index, out)`, which must initialise every element of `out`
/// (with `MaybeUninit::write`). Chunks go to rayon in groups of `min_chunks`, and each group runs
/// at the CPU's vector level ([`super::simd::wide`]) with one dispatch, so that short chunks
/// (a row, a 1×1 plane) do not each pay a task step and a dispatch: mark `fill`
/// `#[inline(always)]` so that its loops are compiled there.
///
/// The buffer is not zero-filled first: for the large outputs of these kernels that memset
/// costs about as much as a pass of the kernel itself.
pub(crate) fn par_build<T, F>(len: usize, chunk: usize, min_chunks: usize, fill: F) -> Vec<T>
where
    T: Copy + Send + Sync,
    F: Fn(usize, &mut [MaybeUninit<T>]) + Send + Sync,
{
    let mut v = Vec::with_capacity(len);
    par_append(&mut v, len, chunk, min_chunks, fill);
    v
}

/// [`par_build`] appending to `v` (reserving room if needed: reserve it beforehand to also
/// leave space for what follows).
pub(crate) fn par_append<T, F>(v: &mut Vec<T>, len: usize, chunk: usize, min_chunks: usize, fill: F)
where
    T: Copy + Send + Sync,
    F: Fn(usize, &mut [MaybeUninit<T>]) + Send + Sync,
{
    v.reserve(len);
    let start = v.len();
    let (chunk, group) = (chunk.max(1), min_chunks.max(1));
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk * group)
        .enumerate()
        .for_each(|(i, outs)| {
            super::simd::wide(
                #[inline(always)]
                || {
                    for (j, out) in outs.chunks_mut(chunk).enumerate() {
                        fill(i * group + j, out);
                    }
                },
            )
        });
    // SAFETY: the chunks cover the `len` elements after `start`, and `fill` initialised every
    // element of each (the contract above; every caller writes its chunk through one zipped
    // loop over all of it). If `fill` panicked we never get here, and `v` keeps its old length.
    unsafe { v.set_len(start + len) };
}

/// Writes `f(x_i)` into every element of `out` (as long as `xs`) and returns it, now
/// initialised, for further in-place passes.
#[inline(always)]
pub(crate) fn map_init<'a, T: Copy>(
    out: &'a mut [MaybeUninit<T>],
    xs: &[T],
    f: impl Fn(T) -> T,
) -> &'a mut [T] {
    assert_eq!(out.len(), xs.len(), "map_init: length mismatch");
    for (o, &x) in out.iter_mut().zip(xs) {
        o.write(f(x));
    }
    // SAFETY: every element of `out` was just written (the lengths are equal), and
    // `MaybeUninit<T>` has the layout of `T`.
    unsafe { &mut *(out as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// Appends the phases of `row` under stride `s` to `out`: `row[0], row[s], …`, then `row[1],
/// row[1 + s], …`, up to phase `s − 1` (strided kernels then read each phase contiguously).
/// Stride 2, ResNet's only one, de-interleaves pairs, which LLVM vectorises; a `step_by` gather
/// does not.
#[inline(always)]
pub(crate) fn split_phases<T: Copy>(row: &[T], s: usize, out: &mut Vec<T>) {
    if s == 2 {
        let pairs = row.chunks_exact(2);
        let tail = pairs.remainder();
        out.reserve(row.len());
        out.extend(pairs.clone().map(|pair| pair[0]));
        out.extend_from_slice(tail);
        out.extend(pairs.map(|pair| pair[1]));
        return;
    }
    for q in 0..s.min(row.len()) {
        out.extend(row[q..].iter().step_by(s));
    }
}

/// The adjoint of [`split_phases`] for one row: adds each phase of `split` back onto the
/// elements of `row` it came from.
#[inline(always)]
pub(crate) fn add_phases<T: Real>(split: &[T], s: usize, row: &mut [T]) {
    if s == 2 {
        let (even, odd) = split.split_at(row.len().div_ceil(2));
        for (pair, (&e, &o)) in row.chunks_exact_mut(2).zip(even.iter().zip(odd)) {
            pair[0] += e;
            pair[1] += o;
        }
        if row.len() % 2 == 1 {
            row[row.len() - 1] += even[even.len() - 1];
        }
        return;
    }
    let mut vals = split.iter();
    for q in 0..s.min(row.len()) {
        for (o, &v) in row[q..].iter_mut().step_by(s).zip(&mut vals) {
            *o += v;
        }
    }
}

/// Writes `v` into every element of `out` and returns it, now initialised.
#[inline]
pub(crate) fn fill_init<T: Copy>(out: &mut [MaybeUninit<T>], v: T) -> &mut [T] {
    out.fill(MaybeUninit::new(v));
    // SAFETY: every element of `out` was just written, and `MaybeUninit<T>` has the layout of
    // `T`.
    unsafe { &mut *(out as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// Sum of `xs`, accumulated in eight independent lanes (vectorisable, and more accurate than
/// one running sum).
#[inline]
pub(crate) fn sum<T: Real>(xs: &[T]) -> T {
    sum_by(xs, |x| x)
}

/// `Σ f(x_i)`, lane-split like [`sum`] (fixed-size chunks: the compiler sees eight
/// independent lanes). Meant for plain arithmetic `f`; one with selects may stay scalar.
#[inline(always)]
pub(crate) fn sum_by<T: Real>(xs: &[T], f: impl Fn(T) -> T) -> T {
    super::simd::wide(
        #[inline(always)]
        || {
            let mut acc = [T::ZERO; LANES];
            let (chunks, rest) = xs.as_chunks::<LANES>();
            for c in chunks {
                for i in 0..LANES {
                    acc[i] += f(c[i]);
                }
            }
            acc.into_iter().sum::<T>() + rest.iter().map(|&x| f(x)).sum::<T>()
        },
    )
}

/// `Σ (x_i - mean)²`, lane-split like [`sum`].
#[inline]
pub(crate) fn sum_sq_dev<T: Real>(xs: &[T], mean: T) -> T {
    sum_by(xs, |x| (x - mean) * (x - mean))
}

/// `(Σ (x_i − k), Σ (x_i − k)²)` in one pass, lane-split like [`sum`], at the level of the
/// caller: call it inside [`super::simd::wide`] (once around a loop over many short slices,
/// rather than a dispatch per slice).
#[inline(always)]
pub(crate) fn shifted_sums<T: Real>(xs: &[T], k: T) -> (T, T) {
    let (mut a, mut b) = ([T::ZERO; LANES], [T::ZERO; LANES]);
    let (chunks, rest) = xs.as_chunks::<LANES>();
    for c in chunks {
        for i in 0..LANES {
            let d = c[i] - k;
            a[i] += d;
            b[i] += d * d;
        }
    }
    let (mut sa, mut sb) = (a.into_iter().sum::<T>(), b.into_iter().sum::<T>());
    for &x in rest {
        let d = x - k;
        sa += d;
        sb += d * d;
    }
    (sa, sb)
}

/// `Σ a_i b_i`, lane-split like [`sum`].
#[inline]
pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    super::simd::wide(
        #[inline(always)]
        || {
            debug_assert_eq!(a.len(), b.len());
            let n = a.len().min(b.len());
            let (ca, ra) = a[..n].as_chunks::<LANES>();
            let (cb, rb) = b[..n].as_chunks::<LANES>();
            let mut acc = [T::ZERO; LANES];
            for (xa, xb) in ca.iter().zip(cb) {
                for i in 0..LANES {
                    acc[i] += xa[i] * xb[i];
                }
            }
            acc.into_iter().sum::<T>() + ra.iter().zip(rb).map(|(&x, &y)| x * y).sum::<T>()
        },
    )
}

/// Largest element of a non-empty slice (NaN-propagating is not needed here: a NaN row gives
/// NaN outputs through the arithmetic anyway).
#[inline]
pub(crate) fn max<T: Real>(xs: &[T]) -> T {
    super::simd::wide(
        #[inline(always)]
        || {
            let mut acc = [T::NEG_INFINITY; LANES];
            let (chunks, rest) = xs.as_chunks::<LANES>();
            for c in chunks {
                for i in 0..LANES {
                    if c[i] > acc[i] {
                        acc[i] = c[i];
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
        },
    )
}

/// Runs `f` on the contiguous CPU slices of `tensors` (as `T`): what a backward that reads
/// more tensors than a custom op takes as inputs (the forward's inputs and the output
/// gradient) uses. Each tensor's storage stays read-locked during `f`.
pub(crate) fn with_cpu_slices<T: WithDType, R, const N: usize>(
    tensors: [&Tensor; N],
    op: &str,
    f: impl FnOnce([&[T]; N]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let mut out = [&[][..]; N];
    for (o, (storage, layout)) in out.iter_mut().zip(&guards) {
        match &**storage {
            candle_core::Storage::Cpu(s) => *o = slice(s, layout, op)?,
            _ => candle_core::bail!("{op}: the fused kernel runs on CPU tensors only"),
        }
    }
    f(out)
}
