//! GELU activations, fused forward and fused backward with exact derivatives.
//!
//! - [`gelu`]: the exact erf form `0.5·x·(1 + erf(x/√2))` (BERT's `hidden_act: "gelu"`,
//!   `torch.nn.functional.gelu`), derivative `0.5·(1 + erf(x/√2)) + x·φ(x)` with
//!   `φ(x) = exp(-x²/2)/√(2π)`;
//! - [`gelu_new`]: the tanh approximation `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`
//!   (`hidden_act: "gelu_new"`, `approximate="tanh"`), derivative
//!   `0.5·(1 + t) + 0.5·x·(1 - t²)·√(2/π)·(1 + 3·0.044715·x²)`.
//!
//! erf comes from libm through `candle_core::cpu::erf` (accurate to the last bits in f64).
//! candle's own `gelu_erf` / `gelu` backward passes use rounded constants (`0.398942`,
//! `0.0356774`, ...), good to about 1e-6 relative only; these kernels use exact ones.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor,
};
use rayon::prelude::*;

use super::kernel::{self, Real};
use crate::Result;

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4; // √(2/π)
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7; // 1/√(2π)
const TANH_COEF: f64 = 0.044_715;

/// GELU, exact erf form. Differentiable; fused on CPU, composed elsewhere.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    apply(x, Kind::Erf)
}

/// GELU, tanh approximation (`gelu_new`). Differentiable; fused on CPU, composed elsewhere.
pub fn gelu_new(x: &Tensor) -> Result<Tensor> {
    apply(x, Kind::Tanh)
}

/// [`gelu`] as a composition of differentiable candle ops (any device).
pub fn gelu_composed(x: &Tensor) -> Result<Tensor> {
    let dtype = x.dtype();
    let x = x.to_dtype(kernel::compute_dtype(dtype, "gelu")?)?;
    let cdf = ((x.affine(std::f64::consts::FRAC_1_SQRT_2, 0.0)?.erf()? + 1.0)? * 0.5)?;
    Ok((x * cdf)?.to_dtype(dtype)?)
}

/// [`gelu_new`] as a composition of differentiable candle ops (any device).
pub fn gelu_new_composed(x: &Tensor) -> Result<Tensor> {
    let dtype = x.dtype();
    let x = x.to_dtype(kernel::compute_dtype(dtype, "gelu_new")?)?;
    let cube = x.sqr()?.mul(&x)?;
    let inner = ((cube * TANH_COEF)? + &x)?.affine(SQRT_2_OVER_PI, 0.0)?;
    let y = (x * ((inner.tanh()? + 1.0)? * 0.5)?)?;
    Ok(y.to_dtype(dtype)?)
}

#[derive(Clone, Copy)]
enum Kind {
    Erf,
    Tanh,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Erf => "gelu",
            Kind::Tanh => "gelu_new",
        }
    }

    #[inline(always)]
    fn value<T: Real>(self, x: T) -> T {
        match self {
            Kind::Erf => T::HALF * x * (T::ONE + (x * T::c(std::f64::consts::FRAC_1_SQRT_2)).erf()),
            Kind::Tanh => {
                let u = T::c(SQRT_2_OVER_PI) * (x + T::c(TANH_COEF) * x * x * x);
                T::HALF * x * (T::ONE + u.tanh())
            }
        }
    }

    #[inline(always)]
    fn derivative<T: Real>(self, x: T) -> T {
        match self {
            Kind::Erf => {
                let cdf = T::HALF * (T::ONE + (x * T::c(std::f64::consts::FRAC_1_SQRT_2)).erf());
                let pdf = T::c(INV_SQRT_2PI) * (T::c(-0.5) * x * x).exp();
                cdf + x * pdf
            }
            Kind::Tanh => {
                let k = T::c(SQRT_2_OVER_PI);
                let c = T::c(TANH_COEF);
                let x2 = x * x;
                let t = (k * (x + c * x2 * x)).tanh();
                T::HALF * (T::ONE + t)
                    + T::HALF * x * (T::ONE - t * t) * k * (T::ONE + T::c(3.0) * c * x2)
            }
        }
    }
}

fn apply(x: &Tensor, kind: Kind) -> Result<Tensor> {
    if !kernel::fused_on(x) {
        return match kind {
            Kind::Erf => gelu_composed(x),
            Kind::Tanh => gelu_new_composed(x),
        };
    }
    let dtype = x.dtype();
    let xs = kernel::kernel_input(x, kernel::compute_dtype(dtype, kind.name())?)?;
    let y = xs.apply_op1(GeluOp(kind))?;
    Ok(y.to_dtype(dtype)?)
}

struct GeluOp(Kind);

impl GeluOp {
    fn fwd<T: Real>(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = kernel::slice::<T>(s, l, self.0.name())?;
        let mut y = vec![T::ZERO; x.len()];
        let kind = self.0;
        y.par_chunks_mut(kernel::ELEMWISE_CHUNK)
            .zip(x.par_chunks(kernel::ELEMWISE_CHUNK))
            .for_each(|(yc, xc)| {
                for (y, &x) in yc.iter_mut().zip(xc) {
                    *y = kind.value(x);
                }
            });
        Ok((T::to_cpu_storage_owned(y), l.shape().clone()))
    }
}

impl CustomOp1 for GeluOp {
    fn name(&self) -> &'static str {
        match self.0 {
            Kind::Erf => "finetune-gelu",
            Kind::Tanh => "finetune-gelu-new",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        match s.dtype() {
            DType::F32 => self.fwd::<f32>(s, l),
            DType::F64 => self.fwd::<f64>(s, l),
            dt => candle_core::bail!("{}: unsupported dtype {dt:?}", self.0.name()),
        }
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        Ok(Some(x.apply_op2_no_bwd(&grad, &GeluBwd(self.0))?))
    }
}

/// Backward kernel: inputs `x` and `dy`, output `dx = dy · gelu'(x)`.
struct GeluBwd(Kind);

impl GeluBwd {
    fn bwd<T: Real>(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = kernel::slice::<T>(s1, l1, self.0.name())?;
        let dy = kernel::slice::<T>(s2, l2, self.0.name())?;
        if x.len() != dy.len() {
            candle_core::bail!("{} backward: gradient size mismatch", self.0.name());
        }
        let mut dx = vec![T::ZERO; x.len()];
        let kind = self.0;
        dx.par_chunks_mut(kernel::ELEMWISE_CHUNK)
            .zip(x.par_chunks(kernel::ELEMWISE_CHUNK))
            .zip(dy.par_chunks(kernel::ELEMWISE_CHUNK))
            .for_each(|((dxc, xc), dyc)| {
                for ((dx, &x), &dy) in dxc.iter_mut().zip(xc).zip(dyc) {
                    *dx = dy * kind.derivative(x);
                }
            });
        Ok((T::to_cpu_storage_owned(dx), l1.shape().clone()))
    }
}

impl CustomOp2 for GeluBwd {
    fn name(&self) -> &'static str {
        match self.0 {
            Kind::Erf => "finetune-gelu-bwd",
            Kind::Tanh => "finetune-gelu-new-bwd",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        match s1.dtype() {
            DType::F32 => self.bwd::<f32>(s1, l1, s2, l2),
            DType::F64 => self.bwd::<f64>(s1, l1, s2, l2),
            dt => candle_core::bail!("{} backward: unsupported dtype {dt:?}", self.0.name()),
        }
    }
}
