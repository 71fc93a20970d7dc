//! ReLU, and the residual join of a ResNet block `relu(a + b)`, fused forward and backward.
//!
//! The gradient is PyTorch's: `dy` where the output is positive, `0` elsewhere (zero at 0, as
//! `threshold_backward`). It reads only the output, so the backward keeps no input alive.
//!
//! candle's composition `(a + b).relu()` fills about nine full-size tensors over the two
//! directions (the sum, the ReLU, a zero tensor and a comparison mask and its float copy and
//! the product for the ReLU's gradient, then a zero tensor and a sum per input when candle
//! accumulates the gradients). [`add_relu`] writes one in each direction, and hands the same
//! gradient tensor to both inputs.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp2, Layout, Shape, Tensor, WithDType,
};

use super::kernel::{self, with_real, Real};
use crate::{Error, Result};

/// `max(x, 0)`. Differentiable; fused on CPU, candle's `relu` elsewhere.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if !kernel::fused_on(x) {
        return Ok(x.relu()?);
    }
    let dtype = x.dtype();
    let xs = kernel::kernel_input(x, kernel::compute_dtype(dtype, "relu")?)?;
    Ok(crate::tape::apply_op1(&xs, kernel::Fused(Relu))?.to_dtype(dtype)?)
}

/// `max(a + b, 0)` of two tensors of one shape (a residual block's branch and shortcut).
/// Differentiable in both; fused on CPU, [`add_relu_composed`] elsewhere.
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.dims() != b.dims() {
        return Err(Error::config(format!(
            "add_relu: the operands differ in shape: {:?} and {:?}",
            a.dims(),
            b.dims()
        )));
    }
    if a.dtype() != b.dtype() {
        return Err(Error::config(format!(
            "add_relu: the operands differ in dtype: {:?} and {:?}",
            a.dtype(),
            b.dtype()
        )));
    }
    if !kernel::fused_on(a) || !kernel::fused_on(b) {
        return add_relu_composed(a, b);
    }
    let dtype = a.dtype();
    let cd = kernel::compute_dtype(dtype, "add_relu")?;
    let (a, b) = (kernel::kernel_input(a, cd)?, kernel::kernel_input(b, cd)?);
    Ok(crate::tape::apply_op2(&a, &b, AddRelu)?.to_dtype(dtype)?)
}

/// [`add_relu`] composed of candle ops (any device).
pub fn add_relu_composed(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok((a + b)?.relu()?)
}

#[derive(Clone, Copy)]
struct Relu;

#[inline(always)]
fn positive<T: Real>(v: T) -> T {
    if v > T::ZERO {
        v
    } else {
        T::ZERO
    }
}

/// `dy` where `y > 0`, else 0, chunk by chunk.
fn mask_grad<T: Real>(y: &[T], dy: &[T]) -> Vec<T> {
    let c = kernel::ELEMWISE_CHUNK;
    kernel::par_build(
        y.len(),
        c,
        1,
        #[inline(always)]
        |i, out| {
            for ((o, &yv), &g) in out.iter_mut().zip(&y[i * c..]).zip(&dy[i * c..]) {
                o.write(if yv > T::ZERO { g } else { T::ZERO });
            }
        },
    )
}

impl kernel::UnaryKernel for Relu {
    fn op_names(&self) -> (&'static str, &'static str) {
        ("finetune-relu", "finetune-relu-bwd")
    }

    fn bwd_reads_input(&self) -> bool {
        false
    }

    fn fwd<T: Real>(&self, x: &[T], l: &Layout) -> candle_core::Result<(Vec<T>, Shape)> {
        let c = kernel::ELEMWISE_CHUNK;
        let y = kernel::par_build(
            x.len(),
            c,
            1,
            #[inline(always)]
            |i, out| {
                for (o, &v) in out.iter_mut().zip(&x[i * c..]) {
                    o.write(positive(v));
                }
            },
        );
        Ok((y, l.shape().clone()))
    }

    fn bwd<T: Real>(&self, y: &[T], _l: &Layout, dy: &[T]) -> candle_core::Result<Vec<T>> {
        if y.len() != dy.len() {
            candle_core::bail!("relu backward: gradient size mismatch");
        }
        Ok(mask_grad(y, dy))
    }
}

#[derive(Clone)]
struct AddRelu;

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "finetune-add-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        with_real!(s1.dtype(), self.name(), T => {
            let [a, b] = kernel::slices::<T, 2>([(s1, l1), (s2, l2)], self.name())?;
            if a.len() != b.len() {
                candle_core::bail!("{}: operand sizes differ", self.name());
            }
            let c = kernel::ELEMWISE_CHUNK;
            let y = kernel::par_build(a.len(), c, 1, #[inline(always)] |i, out| {
                for ((o, &x), &z) in out.iter_mut().zip(&a[i * c..]).zip(&b[i * c..]) {
                    o.write(positive(x + z));
                }
            });
            Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (want_a, want_b) = (a.track_op(), b.track_op());
        if !want_a && !want_b {
            return Ok((None, None));
        }
        let dy = dy.contiguous()?;
        let g = y.apply_op2_no_bwd(&dy, &kernel::FusedBwd(Relu))?;
        Ok((want_a.then(|| g.clone()), want_b.then_some(g)))
    }
}
