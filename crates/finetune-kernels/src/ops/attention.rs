//! Multi-head scaled dot-product attention, forward and backward each one fused kernel:
//! `ctx = dropout(softmax(q kᵀ / √d + mask)) v` per head, on `[B, T, H]` activations.
//!
//! The composed form (split heads with contiguous copies, `q kᵀ`, scale, mask add, softmax,
//! dropout, `· v`, merge heads) materialises five `[B, heads, T, T]` tensors in the forward
//! and as many again, plus candle's gradient-accumulation copies, in the backward. Here each
//! (batch, head) pair is one rayon task that reads its head's columns of `q`, `k`, `v` in
//! place through strides, keeps its `T × T` scores in a task-local buffer and writes its
//! columns of the output; nothing but the output survives the forward.
//!
//! The backward recomputes the probabilities from `q` and `k` (one extra `T × T × d`
//! product per head, as flash attention does) instead of storing them, then
//! `dv = P̃ᵀ dctx`, `dP̃ = dctx vᵀ`, `dP = dP̃ ⊙ M`, `dS = P ⊙ (dP − Σ_row dP ⊙ P)`,
//! `dq = dS k / √d`, `dk = dSᵀ q / √d`, where `P̃ = P ⊙ M` and `M` is the dropout mask
//! (scaled by `1/(1-p)`), regenerated from its seed.
//!
//! The outputs are not zeroed before the products that write them whole.
//!
//! Dropout on the probabilities draws its seed from the [`Rng`] exactly as
//! [`super::dropout()`] would on the `[B, heads, T, T]` probability tensor (one `u64` per
//! training call with `p > 0`) and keeps the same elements, so a model switching between
//! this op and [`attention_composed`] sees the same random stream and masks.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp3, Layout, Shape, Tensor, WithDType,
};
use rayon::prelude::*;

use super::dropout::{check_p, keep, threshold};
use super::gemm::{self, Mat, MatMut, SendPtr, Threads};
use super::kernel::{self, Real};
use crate::{Error, Result, Rng};

const NAME: &str = "attention";

/// Self-attention over `heads` heads of `q`, `k`, `v` (`[B, T, H]`, `H = heads · d`),
/// scaled by `1/√d`, with an optional additive key mask `[B, T]` (0 to attend, a large
/// negative number to skip) and dropout `p` on the probabilities in training. Returns the
/// merged context `[B, T, H]`. Differentiable in `q`, `k`, `v` (not in the mask).
///
/// Fused on CPU (f32/f64; f16/bf16 through f32), [`attention_composed`] elsewhere.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    mask: Option<&Tensor>,
    p: f64,
    train: bool,
    rng: &mut Rng,
) -> Result<Tensor> {
    check(q, k, v, heads, mask)?;
    check_p(p)?;
    if !kernel::fused_on(q) {
        return attention_composed(q, k, v, heads, mask, p, train, rng);
    }
    let seed = (train && p > 0.0).then(|| rng.next_u64());
    let dtype = q.dtype();
    let cdt = kernel::compute_dtype(dtype, NAME)?;
    let (qs, ks, vs) = (
        kernel::kernel_input(q, cdt)?,
        kernel::kernel_input(k, cdt)?,
        kernel::kernel_input(v, cdt)?,
    );
    let mask = mask
        .map(|m| kernel::kernel_input(&m.detach(), cdt))
        .transpose()?;
    let (_, _, h) = q.dims3()?;
    let op = AttentionOp {
        heads,
        scale: 1.0 / ((h / heads) as f64).sqrt(),
        mask,
        dropout: seed.map(|seed| (p, seed)),
    };
    Ok(crate::tape::apply_op3(&qs, &ks, &vs, op)?.to_dtype(dtype)?)
}

/// The same attention composed from differentiable candle ops and this crate's softmax and
/// dropout (any device; the reference the fused kernels are tested against).
#[allow(clippy::too_many_arguments)]
pub fn attention_composed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    mask: Option<&Tensor>,
    p: f64,
    train: bool,
    rng: &mut Rng,
) -> Result<Tensor> {
    check(q, k, v, heads, mask)?;
    let (b, t, h) = q.dims3()?;
    let d = h / heads;
    let split = |x: &Tensor| -> Result<Tensor> {
        Ok(x.reshape((b, t, heads, d))?.transpose(1, 2)?.contiguous()?)
    };
    let (q, k, v) = (split(q)?, split(k)?, split(v)?);
    let mut scores = (super::composed_matmul(&q, &k.t()?)? * (1.0 / (d as f64).sqrt()))?;
    if let Some(m) = mask {
        scores = scores.broadcast_add(&m.reshape((b, 1, 1, t))?)?;
    }
    let probs = super::softmax_last_dim(&scores)?;
    let probs = super::dropout(&probs, p, train, rng)?;
    Ok(super::composed_matmul(&probs, &v)?
        .transpose(1, 2)?
        .reshape((b, t, h))?)
}

fn check(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, mask: Option<&Tensor>) -> Result<()> {
    let dims = q
        .dims3()
        .map_err(|_| Error::config(format!("{NAME}: q must be [B, T, H], got {:?}", q.dims())))?;
    if k.dims() != q.dims() || v.dims() != q.dims() {
        return Err(Error::config(format!(
            "{NAME}: q {:?}, k {:?} and v {:?} must have one shape",
            q.dims(),
            k.dims(),
            v.dims()
        )));
    }
    let (b, t, h) = dims;
    if heads == 0 || h % heads != 0 {
        return Err(Error::config(format!(
            "{NAME}: hidden size {h} is not a multiple of {heads} heads"
        )));
    }
    if let Some(m) = mask {
        if m.dims() != [b, t] {
            return Err(Error::config(format!(
                "{NAME}: the key mask must be [{b}, {t}], got {:?}",
                m.dims()
            )));
        }
    }
    if k.dtype() != q.dtype()
        || v.dtype() != q.dtype()
        || mask.is_some_and(|m| m.dtype() != q.dtype())
    {
        return Err(Error::config(format!(
            "{NAME}: q, k, v and the mask must share a dtype"
        )));
    }
    Ok(())
}

#[derive(Clone)]
struct AttentionOp {
    heads: usize,
    scale: f64,
    /// Additive key mask `[B, T]`, contiguous, in the compute dtype.
    mask: Option<Tensor>,
    /// `(p, seed)` of the dropout on the probabilities.
    dropout: Option<(f64, u64)>,
}

/// The geometry of one call: `b` sequences of `t` tokens, `heads` heads of width `d`.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    t: usize,
    heads: usize,
    d: usize,
}

impl Dims {
    fn h(self) -> usize {
        self.heads * self.d
    }

    /// Offset of head `bh`'s first element (batch `bh / heads`, column block `bh % heads`).
    fn base(self, bh: usize) -> usize {
        (bh / self.heads) * self.t * self.h() + (bh % self.heads) * self.d
    }
}

/// The dropout of one call, in kernel form.
#[derive(Clone, Copy)]
struct DropMask<T> {
    seed: u64,
    threshold: u64,
    scale: T,
}

impl<T: Real> DropMask<T> {
    fn new(dropout: Option<(f64, u64)>) -> Option<Self> {
        dropout.map(|(p, seed)| Self {
            seed,
            threshold: threshold(p),
            scale: T::c(1.0 / (1.0 - p)),
        })
    }

    /// `row ⊙ M` for the probability row starting at flat index `first` of `[B, heads, T, T]`.
    #[inline]
    fn apply(&self, first: usize, row: &mut [T]) {
        for (j, x) in row.iter_mut().enumerate() {
            let kept = keep(self.seed, (first + j) as u64, self.threshold);
            *x = if kept { *x * self.scale } else { T::ZERO };
        }
    }
}

/// Writes the probabilities `softmax(scale · q kᵀ + mask)` of head `bh` into `p` (`T × T`).
fn probabilities<T: Real>(
    dims: Dims,
    bh: usize,
    q: &[T],
    k: &[T],
    mask: Option<&[T]>,
    scale: T,
    p: &mut [T],
) {
    super::simd::wide(
        #[inline(always)]
        || {
            let (t, h, base) = (dims.t, dims.h(), dims.base(bh));
            // SAFETY: head bh's q and k blocks are [t, d] with row stride h inside the [B, T, H]
            // inputs (k read transposed); p is a task-local t × t buffer.
            unsafe {
                gemm::gemm(
                    t,
                    t,
                    dims.d,
                    MatMut::rows(p.as_mut_ptr(), t),
                    false,
                    Mat::rows(q[base..].as_ptr(), h),
                    Mat::rows_t(k[base..].as_ptr(), h),
                    scale,
                    Threads::One,
                )
            };
            let key_mask = mask.map(|m| &m[(bh / dims.heads) * t..][..t]);
            for row in p.chunks_exact_mut(t) {
                if let Some(m) = key_mask {
                    for (x, &mv) in row.iter_mut().zip(m) {
                        *x += mv;
                    }
                }
                let mx = kernel::max(row);
                for x in row.iter_mut() {
                    *x = (*x - mx).fast_exp();
                }
                let inv = T::ONE / kernel::sum(row);
                for x in row.iter_mut() {
                    *x *= inv;
                }
            }
        },
    )
}

impl AttentionOp {
    fn dims(&self, shape: &Shape) -> candle_core::Result<Dims> {
        let (b, t, h) = shape.dims3()?;
        Ok(Dims {
            b,
            t,
            heads: self.heads,
            d: h / self.heads,
        })
    }

    fn forward<T: Real>(
        &self,
        dims: Dims,
        q: &[T],
        k: &[T],
        v: &[T],
        mask: Option<&[T]>,
    ) -> Vec<T> {
        let (t, h) = (dims.t, dims.h());
        let drop = DropMask::<T>::new(self.dropout);
        let scale = T::c(self.scale);
        let head = |out: SendPtr<T>, bh: usize| {
            let mut p = vec![T::ZERO; t * t];
            probabilities(dims, bh, q, k, mask, scale, &mut p);
            if let Some(drop) = drop {
                for (i, row) in p.chunks_exact_mut(t).enumerate() {
                    drop.apply((bh * t + i) * t, row);
                }
            }
            let base = dims.base(bh);
            // SAFETY: task bh alone writes head bh's [t, d] block of `out` (row stride h);
            // v's block is read in place; p is task-local.
            unsafe {
                gemm::gemm(
                    t,
                    dims.d,
                    t,
                    MatMut::rows(out.get().add(base), h),
                    false,
                    Mat::rows(p.as_ptr(), t),
                    Mat::rows(v[base..].as_ptr(), h),
                    T::ONE,
                    Threads::One,
                )
            };
        };
        // SAFETY: the heads' [t, d] blocks tile the whole [b, t, h] output, and each task's
        // product writes its block in full (accumulate off).
        unsafe {
            gemm::written_by(q.len(), |out| {
                let out = SendPtr(out);
                (0..dims.b * dims.heads)
                    .into_par_iter()
                    .for_each(|bh| head(out, bh));
            })
        }
    }

    /// `[dq, dk, dv]`, each shaped like `q`.
    #[allow(clippy::too_many_arguments)]
    fn backward<T: Real>(
        &self,
        dims: Dims,
        q: &[T],
        k: &[T],
        v: &[T],
        mask: Option<&[T]>,
        dctx: &[T],
    ) -> [Vec<T>; 3] {
        let (t, h) = (dims.t, dims.h());
        // Written before they are read: every (batch, head) task writes its [t, d] block of
        // each in full (the products below run with accumulate off), and the blocks tile
        // the buffers; their lengths are set once all tasks are done.
        let mut grads: [Vec<T>; 3] = std::array::from_fn(|_| Vec::with_capacity(q.len()));
        let [dq, dk, dv] = grads.each_mut().map(|g| SendPtr(g.as_mut_ptr()));
        let drop = DropMask::<T>::new(self.dropout);
        let scale = T::c(self.scale);
        (0..dims.b * dims.heads).into_par_iter().for_each(|bh| {
            let base = dims.base(bh);
            let mut p = vec![T::ZERO; t * t];
            let mut g = vec![T::ZERO; t * t];
            probabilities(dims, bh, q, k, mask, scale, &mut p);
            // P̃ = P ⊙ M, in g for now.
            let pd: &[T] = match drop {
                Some(drop) => {
                    g.copy_from_slice(&p);
                    for (i, row) in g.chunks_exact_mut(t).enumerate() {
                        drop.apply((bh * t + i) * t, row);
                    }
                    &g
                }
                None => &p,
            };
            // SAFETY (all four products): task bh alone writes head bh's [t, d] blocks of
            // dq, dk, dv (row stride h); q, k, v, dctx blocks are read in place; p and g
            // are task-local t × t buffers, and no product writes a buffer it reads.
            unsafe {
                // dv = P̃ᵀ dctx
                gemm::gemm(
                    t,
                    dims.d,
                    t,
                    MatMut::rows(dv.get().add(base), h),
                    false,
                    Mat::rows_t(pd.as_ptr(), t),
                    Mat::rows(dctx[base..].as_ptr(), h),
                    T::ONE,
                    Threads::One,
                );
                // dP̃ = dctx vᵀ
                gemm::gemm(
                    t,
                    t,
                    dims.d,
                    MatMut::rows(g.as_mut_ptr(), t),
                    false,
                    Mat::rows(dctx[base..].as_ptr(), h),
                    Mat::rows_t(v[base..].as_ptr(), h),
                    T::ONE,
                    Threads::One,
                );
            }
            // dS = P ⊙ (dP − Σ dP ⊙ P) with dP = dP̃ ⊙ M, in place in g.
            for (i, (grow, prow)) in g.chunks_exact_mut(t).zip(p.chunks_exact(t)).enumerate() {
                if let Some(drop) = drop {
                    drop.apply((bh * t + i) * t, grow);
                }
                let s = kernel::dot(grow, prow);
                for (x, &pv) in grow.iter_mut().zip(prow) {
                    *x = pv * (*x - s);
                }
            }
            unsafe {
                // dq = scale · dS k
                gemm::gemm(
                    t,
                    dims.d,
                    t,
                    MatMut::rows(dq.get().add(base), h),
                    false,
                    Mat::rows(g.as_ptr(), t),
                    Mat::rows(k[base..].as_ptr(), h),
                    scale,
                    Threads::One,
                );
                // dk = scale · dSᵀ q
                gemm::gemm(
                    t,
                    dims.d,
                    t,
                    MatMut::rows(dk.get().add(base), h),
                    false,
                    Mat::rows_t(g.as_ptr(), t),
                    Mat::rows(q[base..].as_ptr(), h),
                    scale,
                    Threads::One,
                );
            }
        });
        for g in &mut grads {
            // SAFETY: the tasks above initialised every element (see where they were made).
            unsafe { g.set_len(q.len()) };
        }
        grads
    }
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "finetune-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = self.dims(l1.shape())?;
        kernel::with_real!(s1.dtype(), self.name(), T => {
            let [q, k, v] = kernel::slices::<T, 3>([(s1, l1), (s2, l2), (s3, l3)], NAME)?;
            let out = match &self.mask {
                Some(m) => kernel::with_cpu_slices::<T, _, 1>([m], NAME, |[m]| {
                    Ok(self.forward(dims, q, k, v, Some(m)))
                })?,
                None => self.forward(dims, q, k, v, None),
            };
            Ok((T::to_cpu_storage_owned(out), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _ctx: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dims = self.dims(q.shape())?;
        let [dq, dk, dv] = kernel::with_real!(q.dtype(), NAME, T => {
            let grads = match &self.mask {
                Some(m) => kernel::with_cpu_slices::<T, _, 5>([q, k, v, &grad, m], NAME, |[q, k, v, dy, m]| {
                    Ok(self.backward(dims, q, k, v, Some(m), dy))
                })?,
                None => kernel::with_cpu_slices::<T, _, 4>([q, k, v, &grad], NAME, |[q, k, v, dy]| {
                    Ok(self.backward(dims, q, k, v, None, dy))
                })?,
            };
            grads.map(|g| Tensor::from_vec(g, q.shape().clone(), q.device()))
        });
        let keep =
            |t: &Tensor, g: candle_core::Result<Tensor>| -> candle_core::Result<Option<Tensor>> {
                Ok(if t.track_op() { Some(g?) } else { None })
            };
        Ok((keep(q, dq)?, keep(k, dk)?, keep(v, dv)?))
    }
}
