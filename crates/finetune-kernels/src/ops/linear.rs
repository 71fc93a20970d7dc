//! Linear layer `y = x Wᵀ + b` (PyTorch's `[out, in]` weight), fused forward and backward.
//!
//! The composed form (`x.reshape(n, in).matmul(W.t()).broadcast_add(b).reshape(..)`) costs,
//! on top of its two products: a pass writing `x Wᵀ`, a pass adding the bias into a new
//! tensor, and in the backward a copy per reshape, a transposing copy of `dW` (computed as
//! `(dW)ᵀ` and transposed back through candle's generic strided add) and the bias reduction
//! over a broadcast. Here:
//!
//! - forward: the output is pre-filled with the bias rows and the product accumulated onto
//!   it (one `gemm` call reading `W` through transposed strides, no copy);
//! - backward: `dx = dy W`, `dW = dyᵀ x` (written directly in `[out, in]` layout) and
//!   `db = Σ_rows dy`, each only for inputs that take part in the autograd graph — a frozen
//!   weight (handed out detached by the `ParamStore`) gets no `dW`, and the input of the
//!   first trainable layer gets no `dx` when everything below it is frozen.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp3, Layout, Shape, Tensor, WithDType, D,
};

use super::gemm::{self, Mat, MatMut, Threads};
use super::kernel::{self, Real};
use crate::{Error, Result};

const NAME: &str = "linear";

/// `x Wᵀ + b` over the last dimension of `x` (`[.., in]` → `[.., out]`), `W` `[out, in]`,
/// `b` `[out]`. Differentiable in all three. Fused on CPU (f32/f64, f16/bf16 through f32;
/// without a bias, over a zero bias outside the graph, so that a layer without one, such as
/// a LoRA adapter's, is recorded on the tape too); on other devices it is
/// [`linear_composed`].
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    check(x, w, b)?;
    if !kernel::fused_on(x) {
        return linear_composed(x, w, b);
    }
    let zero;
    let b = match b {
        Some(b) => b,
        None => {
            zero = Tensor::zeros(w.dim(0)?, w.dtype(), w.device())?;
            &zero
        }
    };
    let dtype = x.dtype();
    let cdt = kernel::compute_dtype(dtype, NAME)?;
    let xs = kernel::kernel_input(x, cdt)?;
    let ws = kernel::kernel_input(w, cdt)?;
    let bs = kernel::kernel_input(b, cdt)?;
    let y = crate::tape::apply_op3(&xs, &ws, &bs, LinearOp)?;
    Ok(y.to_dtype(dtype)?)
}

/// The same layer from candle's differentiable `matmul` (at [`super::composed_precision()`])
/// and `broadcast_add` (any device).
pub fn linear_composed(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    check(x, w, b)?;
    let dims = x.dims();
    let (in_dim, out_dim) = (w.dim(1)?, w.dim(0)?);
    let n: usize = dims[..dims.len() - 1].iter().product();
    let y = super::composed_matmul(&x.reshape((n, in_dim))?, &w.t()?)?;
    let y = match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    let mut out_dims = dims.to_vec();
    *out_dims.last_mut().expect("rank >= 1") = out_dim;
    Ok(y.reshape(out_dims)?)
}

fn check(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<()> {
    let (out_dim, in_dim) = w.dims2().map_err(|_| {
        Error::config(format!(
            "{NAME}: weight must be [out, in], got {:?}",
            w.dims()
        ))
    })?;
    if x.rank() == 0 || x.dim(D::Minus1)? != in_dim {
        return Err(Error::config(format!(
            "{NAME}: input {:?} does not end in the weight's in-dimension {in_dim}",
            x.dims()
        )));
    }
    if let Some(b) = b {
        if b.dims() != [out_dim] {
            return Err(Error::config(format!(
                "{NAME}: bias must be [{out_dim}], got {:?}",
                b.dims()
            )));
        }
    }
    if w.dtype() != x.dtype() || b.is_some_and(|b| b.dtype() != x.dtype()) {
        return Err(Error::config(format!(
            "{NAME}: dtype mismatch: x {:?}, weight {:?}, bias {:?}",
            x.dtype(),
            w.dtype(),
            b.map(|b| b.dtype())
        )));
    }
    Ok(())
}

#[derive(Clone)]
struct LinearOp;

/// `[n, out]` = bias rows, then `+= x Wᵀ`.
fn forward<T: Real>(x: &[T], w: &[T], b: &[T]) -> Vec<T> {
    let (out_dim, in_dim) = (b.len(), w.len() / b.len().max(1));
    let n = x.len() / in_dim.max(1);
    let mut y = kernel::par_build(
        n * out_dim,
        out_dim.max(1),
        kernel::min_rows_per_task(out_dim),
        #[inline(always)]
        |_, row| {
            for (o, &bv) in row.iter_mut().zip(b) {
                o.write(bv);
            }
        },
    );
    // SAFETY: x is [n, in], w is [out, in] (read transposed: element (k, j) = w[j·in + k]),
    // y is [n, out]; all three are live, initialised and y overlaps neither input.
    unsafe {
        gemm::gemm(
            n,
            out_dim,
            in_dim,
            MatMut::rows(y.as_mut_ptr(), out_dim),
            true,
            Mat::rows(x.as_ptr(), in_dim),
            Mat::rows_t(w.as_ptr(), in_dim),
            T::ONE,
            Threads::Pool,
        )
    };
    y
}

/// Which gradients the backward computes (inputs outside the autograd graph get none).
#[derive(Clone, Copy)]
struct Wanted {
    x: bool,
    w: bool,
    b: bool,
}

type LinearGrads<T> = (Option<Vec<T>>, Option<Vec<T>>, Option<Vec<T>>);

/// `dx = dy W` `[n, in]`, `dW = dyᵀ x` `[out, in]`, `db = Σ_rows dy` `[out]`.
fn backward<T: Real>(x: &[T], w: &[T], dy: &[T], out_dim: usize, want: Wanted) -> LinearGrads<T> {
    let in_dim = w.len() / out_dim.max(1);
    let n = x.len() / in_dim.max(1);
    // SAFETY (both products): dy is [n, out], w is [out, in], x is [n, in]; each product
    // writes the whole fresh buffer it is given (accumulate off), which overlaps no input.
    let dx = want.x.then(|| unsafe {
        gemm::written_by(n * in_dim, |dx| {
            gemm::gemm(
                n,
                in_dim,
                out_dim,
                MatMut::rows(dx, in_dim),
                false,
                Mat::rows(dy.as_ptr(), out_dim),
                Mat::rows(w.as_ptr(), in_dim),
                T::ONE,
                Threads::Pool,
            )
        })
    });
    // dyᵀ is read transposed from [n, out] (element (o, r) = dy[r·out + o]).
    let dw = want.w.then(|| unsafe {
        gemm::written_by(out_dim * in_dim, |dw| {
            gemm::gemm(
                out_dim,
                in_dim,
                n,
                MatMut::rows(dw, in_dim),
                false,
                Mat::rows_t(dy.as_ptr(), out_dim),
                Mat::rows(x.as_ptr(), in_dim),
                T::ONE,
                Threads::Pool,
            )
        })
    });
    let db = want.b.then(|| {
        // Row after row into one accumulator (vectorises over the columns); fixed order.
        let mut db = vec![T::ZERO; out_dim];
        for row in dy.chunks_exact(out_dim.max(1)) {
            for (a, &g) in db.iter_mut().zip(row) {
                *a += g;
            }
        }
        db
    });
    (dx, dw, db)
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "finetune-linear"
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
        let out_dim = l3.shape().elem_count();
        let mut dims = l1.dims().to_vec();
        *dims.last_mut().expect("rank >= 1") = out_dim;
        kernel::with_real!(s1.dtype(), self.name(), T => {
            let [x, w, b] = kernel::slices::<T, 3>([(s1, l1), (s2, l2), (s3, l3)], NAME)?;
            Ok((T::to_cpu_storage_owned(forward(x, w, b)), Shape::from(dims)))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let want = Wanted {
            x: x.track_op(),
            w: w.track_op(),
            b: b.track_op(),
        };
        let grad = grad.contiguous()?;
        let out_dim = b.elem_count();
        let (dx, dw, db) = kernel::with_real!(x.dtype(), NAME, T => {
            let grads = kernel::with_cpu_slices::<T, _, 3>([x, w, &grad], NAME, |[x, w, dy]| {
                Ok(backward(x, w, dy, out_dim, want))
            })?;
            let dev = x.device();
            let wrap = |v: Option<Vec<T>>, shape: &Shape| -> candle_core::Result<Option<Tensor>> {
                v.map(|v| Tensor::from_vec(v, shape.clone(), dev)).transpose()
            };
            (wrap(grads.0, x.shape())?, wrap(grads.1, w.shape())?, wrap(grads.2, b.shape())?)
        });
        Ok((dx, dw, db))
    }
}
