//! A linear layer with its LoRA adapter in one op: `y = x Wᵀ + b + s · (dropout(x) Aᵀ) Bᵀ`
//! (PEFT's `LoraLayer` for `nn.Linear`: `W` `[out, in]`, `A` `[r, in]`, `B` `[out, r]`).
//!
//! Composed from a linear, a dropout, two adapter products and a sum, the layer keeps for the
//! backward the dropped-out input, the base output and the adapter's output beside the sum —
//! three activations of the layer's size per adapted layer. This op keeps only its inputs (the
//! layer's input is kept anyway) and its output: the backward regenerates the dropout mask
//! from its seed (as [`super::dropout()`] does) and recomputes the rank-`r` intermediate.
//!
//! - forward: `y` = bias rows, `+= x Wᵀ`, `h = dropout(x) Aᵀ` (`[n, r]`), `y += s · h Bᵀ`;
//! - backward: `g = s · dy B` (`[n, r]`), `dx = dy W + mask ∘ (g A)`, `dA = gᵀ dropout(x)`,
//!   `dB = s · dyᵀ h`, `db = Σ_rows dy`, `dW = dyᵀ x` — each only for inputs in the autograd
//!   graph (a frozen `W` gets no `dW`).
//!
//! The op's third argument packs `[b | A | B]` into one vector (an op takes at most three
//! tensors); its gradient comes back the same way and candle's `cat` splits it.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp3, Layout, Shape, Tensor, WithDType, D,
};

use super::dropout::{check_p, masked};
use super::gemm::{self, Mat, MatMut, Threads};
use super::kernel::{self, Real};
use crate::{Error, Result, Rng};

const NAME: &str = "lora_linear";

/// The adapter half of [`lora_linear`]'s arguments.
#[derive(Debug, Clone, Copy)]
pub struct LoraArgs<'a> {
    /// `lora_A`, `[r, in]`.
    pub a: &'a Tensor,
    /// `lora_B`, `[out, r]`.
    pub b: &'a Tensor,
    /// `lora_alpha / r` (or `/ √r`).
    pub scale: f64,
    /// Dropout on the adapter's input, in `[0, 1)`.
    pub p: f64,
}

/// `x Wᵀ + bias + scale · (dropout(x) Aᵀ) Bᵀ` over the last dimension of `x`. In training
/// (`train` and `p > 0`) draws one `u64` from `rng` for the dropout mask, as [`super::dropout()`]
/// does (so both forms see the same mask for the same stream). Differentiable in every input;
/// fused on CPU, [`lora_linear_composed`] elsewhere.
pub fn lora_linear(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    lora: LoraArgs,
    train: bool,
    rng: &mut Rng,
) -> Result<Tensor> {
    let (out_dim, r) = check(x, w, bias, &lora)?;
    if !kernel::fused_on(x) {
        return lora_linear_composed(x, w, bias, lora, train, rng);
    }
    let p = if train { lora.p } else { 0.0 };
    let seed = if p > 0.0 { rng.next_u64() } else { 0 };
    let dtype = x.dtype();
    let cdt = kernel::compute_dtype(dtype, NAME)?;
    let zero;
    let bias = match bias {
        Some(b) => b,
        None => {
            zero = Tensor::zeros(out_dim, dtype, w.device())?;
            &zero
        }
    };
    let packed = Tensor::cat(
        &[
            bias.flatten_all()?,
            lora.a.flatten_all()?,
            lora.b.flatten_all()?,
        ],
        0,
    )?;
    let op = LoraLinearOp {
        out_dim,
        r,
        scale: lora.scale,
        p,
        seed,
    };
    let y = crate::tape::apply_op3(
        &kernel::kernel_input(x, cdt)?,
        &kernel::kernel_input(w, cdt)?,
        &kernel::kernel_input(&packed, cdt)?,
        op,
    )?;
    Ok(y.to_dtype(dtype)?)
}

/// The same layer composed from [`super::linear_composed`], [`super::dropout_composed`] and a
/// sum (any device; the reference the fused op is tested against).
pub fn lora_linear_composed(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    lora: LoraArgs,
    train: bool,
    rng: &mut Rng,
) -> Result<Tensor> {
    check(x, w, bias, &lora)?;
    let y = super::linear_composed(x, w, bias)?;
    let xd = super::dropout_composed(x, lora.p, train, rng)?;
    let h = super::linear_composed(&xd, lora.a, None)?;
    let delta = super::linear_composed(&h, &(lora.b * lora.scale)?, None)?;
    Ok((y + delta)?)
}

/// Checks the shapes; returns `(out, r)`.
fn check(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, lora: &LoraArgs) -> Result<(usize, usize)> {
    check_p(lora.p)?;
    let bad = |what: &str, got: &[usize]| Error::config(format!("{NAME}: {what}, got {got:?}"));
    let (out_dim, in_dim) = w
        .dims2()
        .map_err(|_| bad("weight must be [out, in]", w.dims()))?;
    let (r, a_in) = lora
        .a
        .dims2()
        .map_err(|_| bad("lora_A must be [r, in]", lora.a.dims()))?;
    if a_in != in_dim || r == 0 {
        return Err(bad(
            &format!("lora_A must be [r ≥ 1, {in_dim}]"),
            lora.a.dims(),
        ));
    }
    if lora.b.dims() != [out_dim, r] {
        return Err(bad(
            &format!("lora_B must be [{out_dim}, {r}]"),
            lora.b.dims(),
        ));
    }
    if x.rank() == 0 || x.dim(D::Minus1)? != in_dim {
        return Err(bad(&format!("input must end in {in_dim}"), x.dims()));
    }
    if let Some(b) = bias.filter(|b| b.dims() != [out_dim]) {
        return Err(bad(&format!("bias must be [{out_dim}]"), b.dims()));
    }
    let dtypes = [Some(w), bias, Some(lora.a), Some(lora.b)];
    if dtypes.iter().flatten().any(|t| t.dtype() != x.dtype()) {
        return Err(Error::config(format!(
            "{NAME}: every tensor must have x's dtype {:?}",
            x.dtype()
        )));
    }
    Ok((out_dim, r))
}

#[derive(Clone, Copy)]
struct LoraLinearOp {
    out_dim: usize,
    r: usize,
    scale: f64,
    /// The dropout probability in effect (0 outside training).
    p: f64,
    seed: u64,
}

/// The packed third argument, split: `(bias [out], A [r, in], B [out, r])`.
fn split<T>(packed: &[T], out_dim: usize, r: usize) -> (&[T], &[T], &[T]) {
    let in_dim = (packed.len() - out_dim - out_dim * r) / r;
    let (bias, rest) = packed.split_at(out_dim);
    let (a, b) = rest.split_at(r * in_dim);
    (bias, a, b)
}

/// `dst [+]= scale · lhs · rhs` over whole row-major buffers (see [`gemm::gemm`]).
fn product<T: Real>(
    dims: (usize, usize, usize),
    dst: &mut [T],
    accumulate: bool,
    lhs: Mat<T>,
    rhs: Mat<T>,
    scale: T,
) {
    debug_assert_eq!(dst.len(), dims.0 * dims.1);
    // SAFETY: dst is a distinct [m, n] buffer, the views are the callers' (see `product_at`).
    unsafe { product_at(dims, dst.as_mut_ptr(), accumulate, lhs, rhs, scale) }
}

/// [`product`] into a fresh `[m, n]` buffer (no zeroing pass: the product writes it whole).
fn new_product<T: Real>(dims: (usize, usize, usize), lhs: Mat<T>, rhs: Mat<T>, scale: T) -> Vec<T> {
    // SAFETY: with accumulate off the product writes every element of the fresh [m, n]
    // buffer and reads none.
    unsafe {
        gemm::written_by(dims.0 * dims.1, |dst| {
            product_at(dims, dst, false, lhs, rhs, scale)
        })
    }
}

/// The product behind [`product`] and [`new_product`], into `[m, n]` row-major at `dst`.
///
/// # Safety
/// Every caller passes views that cover exactly its buffers' `[m, k]` and `[k, n]` extents
/// (their layouts are stated there), and `dst` addresses a distinct `[m, n]` buffer.
unsafe fn product_at<T: Real>(
    (m, n, k): (usize, usize, usize),
    dst: *mut T,
    accumulate: bool,
    lhs: Mat<T>,
    rhs: Mat<T>,
    scale: T,
) {
    gemm::gemm(
        m,
        n,
        k,
        MatMut::rows(dst, n),
        accumulate,
        lhs,
        rhs,
        scale,
        Threads::Pool,
    )
}

impl LoraLinearOp {
    /// `x` through the dropout mask (a copy), or `x` itself without dropout.
    fn dropped<'a, T: Real>(&self, x: &'a [T]) -> std::borrow::Cow<'a, [T]> {
        if self.p > 0.0 {
            std::borrow::Cow::Owned(masked(x, self.p, self.seed))
        } else {
            std::borrow::Cow::Borrowed(x)
        }
    }

    /// `h = dropout(x) Aᵀ`, `[n, r]`.
    fn h<T: Real>(&self, xd: &[T], a: &[T], in_dim: usize) -> Vec<T> {
        let n = xd.len() / in_dim.max(1);
        // xd is [n, in]; A [r, in] read transposed (element (k, j) = a[j·in + k]).
        new_product(
            (n, self.r, in_dim),
            Mat::rows(xd.as_ptr(), in_dim),
            Mat::rows_t(a.as_ptr(), in_dim),
            T::ONE,
        )
    }

    fn forward<T: Real>(&self, x: &[T], w: &[T], packed: &[T]) -> Vec<T> {
        let (bias, a, b) = split(packed, self.out_dim, self.r);
        let (out_dim, r) = (self.out_dim, self.r);
        let in_dim = a.len() / r;
        let n = x.len() / in_dim.max(1);
        let mut y = kernel::par_build(
            n * out_dim,
            out_dim.max(1),
            kernel::min_rows_per_task(out_dim),
            |_, row| {
                for (o, &bv) in row.iter_mut().zip(bias) {
                    o.write(bv);
                }
            },
        );
        // x [n, in] times W [out, in] read transposed.
        product(
            (n, out_dim, in_dim),
            &mut y,
            true,
            Mat::rows(x.as_ptr(), in_dim),
            Mat::rows_t(w.as_ptr(), in_dim),
            T::ONE,
        );
        let h = self.h(&self.dropped(x), a, in_dim);
        // h [n, r] times B [out, r] read transposed, scaled.
        product(
            (n, out_dim, r),
            &mut y,
            true,
            Mat::rows(h.as_ptr(), r),
            Mat::rows_t(b.as_ptr(), r),
            T::c(self.scale),
        );
        y
    }

    fn backward<T: Real>(
        &self,
        x: &[T],
        w: &[T],
        packed: &[T],
        dy: &[T],
        want: Wanted,
    ) -> Grads<T> {
        let (_, a, b) = split(packed, self.out_dim, self.r);
        let (out_dim, r) = (self.out_dim, self.r);
        let in_dim = a.len() / r;
        let n = x.len() / in_dim.max(1);
        // g = s · dy B: dy [n, out], B [out, r].
        let g = new_product(
            (n, r, out_dim),
            Mat::rows(dy.as_ptr(), out_dim),
            Mat::rows(b.as_ptr(), r),
            T::c(self.scale),
        );
        let dx = want.x.then(|| self.dx(w, a, dy, &g));
        // dyᵀ x: dy [n, out] read transposed, x [n, in].
        let dw = want.w.then(|| {
            new_product(
                (out_dim, in_dim, n),
                Mat::rows_t(dy.as_ptr(), out_dim),
                Mat::rows(x.as_ptr(), in_dim),
                T::ONE,
            )
        });
        let dpacked = want.packed.then(|| self.dpacked(x, packed, dy, &g));
        (dx, dw, dpacked)
    }

    /// `dx = dy W + mask ∘ (g A)` `[n, in]`.
    fn dx<T: Real>(&self, w: &[T], a: &[T], dy: &[T], g: &[T]) -> Vec<T> {
        let (out_dim, r) = (self.out_dim, self.r);
        let in_dim = a.len() / r;
        let n = dy.len() / out_dim.max(1);
        let (g, a) = (Mat::rows(g.as_ptr(), r), Mat::rows(a.as_ptr(), in_dim));
        let mut dx = new_product(
            (n, in_dim, out_dim),
            Mat::rows(dy.as_ptr(), out_dim),
            Mat::rows(w.as_ptr(), in_dim),
            T::ONE,
        );
        if self.p == 0.0 {
            product((n, in_dim, r), &mut dx, true, g, a, T::ONE);
            return dx;
        }
        let ga = new_product((n, in_dim, r), g, a, T::ONE);
        for (d, m) in dx.iter_mut().zip(masked(&ga, self.p, self.seed)) {
            *d += m;
        }
        dx
    }

    /// The packed gradient `[db | dA | dB]`: `db = Σ_rows dy`, `dA = gᵀ dropout(x)`,
    /// `dB = s · dyᵀ h`.
    fn dpacked<T: Real>(&self, x: &[T], packed: &[T], dy: &[T], g: &[T]) -> Vec<T> {
        let (_, a, _) = split(packed, self.out_dim, self.r);
        let (out_dim, r) = (self.out_dim, self.r);
        let in_dim = a.len() / r;
        let n = x.len() / in_dim.max(1);
        let xd = self.dropped(x);
        let mut grads = vec![T::ZERO; packed.len()];
        let (db, rest) = grads.split_at_mut(out_dim);
        let (da, dbm) = rest.split_at_mut(r * in_dim);
        for row in dy.chunks_exact(out_dim.max(1)) {
            for (acc, &v) in db.iter_mut().zip(row) {
                *acc += v;
            }
        }
        // dA = gᵀ xd: g [n, r] read transposed, xd [n, in].
        product(
            (r, in_dim, n),
            da,
            false,
            Mat::rows_t(g.as_ptr(), r),
            Mat::rows(xd.as_ptr(), in_dim),
            T::ONE,
        );
        // dB = s · dyᵀ h: dy [n, out] read transposed, h [n, r].
        let h = self.h(&xd, a, in_dim);
        product(
            (out_dim, r, n),
            dbm,
            false,
            Mat::rows_t(dy.as_ptr(), out_dim),
            Mat::rows(h.as_ptr(), r),
            T::c(self.scale),
        );
        grads
    }
}

/// Which gradients the backward computes.
#[derive(Clone, Copy)]
struct Wanted {
    x: bool,
    w: bool,
    packed: bool,
}

type Grads<T> = (Option<Vec<T>>, Option<Vec<T>>, Option<Vec<T>>);

impl CustomOp3 for LoraLinearOp {
    fn name(&self) -> &'static str {
        "finetune-lora-linear"
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
        let mut dims = l1.dims().to_vec();
        *dims.last_mut().expect("rank >= 1") = self.out_dim;
        kernel::with_real!(s1.dtype(), self.name(), T => {
            let [x, w, packed] = kernel::slices::<T, 3>([(s1, l1), (s2, l2), (s3, l3)], NAME)?;
            Ok((T::to_cpu_storage_owned(self.forward(x, w, packed)), Shape::from(dims)))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        packed: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let want = Wanted {
            x: x.track_op(),
            w: w.track_op(),
            packed: packed.track_op(),
        };
        let grad = grad.contiguous()?;
        let grads = kernel::with_real!(x.dtype(), NAME, T => {
            let (dx, dw, dp) = kernel::with_cpu_slices::<T, _, 4>(
                [x, w, packed, &grad],
                NAME,
                |[x, w, p, dy]| Ok(self.backward(x, w, p, dy, want)),
            )?;
            let dev = x.device();
            let wrap = |v: Option<Vec<T>>, shape: &Shape| -> candle_core::Result<Option<Tensor>> {
                v.map(|v| Tensor::from_vec(v, shape.clone(), dev)).transpose()
            };
            (wrap(dx, x.shape())?, wrap(dw, w.shape())?, wrap(dp, packed.shape())?)
        });
        Ok(grads)
    }
}
