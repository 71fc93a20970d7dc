//! GELU activations, fused forward and fused backward with exact derivatives.
//!
//! - [`gelu`]: the exact erf form `0.5·x·(1 + erf(x/√2))` (BERT's `hidden_act: "gelu"`,
//!   `torch.nn.functional.gelu`), derivative `0.5·(1 + erf(x/√2)) + x·φ(x)` with
//!   `φ(x) = exp(-x²/2)/√(2π)`;
//! - [`gelu_new`]: the tanh approximation `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`
//!   (`hidden_act: "gelu_new"`, `approximate="tanh"`), derivative
//!   `0.5·(1 + t) + 0.5·x·(1 - t²)·√(2/π)·(1 + 3·0.044715·x²)`.
//!
//! In f64, erf/tanh/exp are libm's (accurate to the last bits); in f32 the vectorisable
//! approximations of `fast_math` (erf/tanh within 4e-7 absolute: a few f32 ulp).
//! candle's own `gelu_erf` / `gelu` backward passes use rounded constants (`0.398942`,
//! `0.0356774`, ...), good to about 1e-6 relative only; these kernels use exact ones.

use candle_core::{Layout, Shape, Tensor};

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
            Kind::Erf => {
                T::HALF * x * (T::ONE + (x * T::c(std::f64::consts::FRAC_1_SQRT_2)).fast_erf())
            }
            Kind::Tanh => {
                let u = T::c(SQRT_2_OVER_PI) * (x + T::c(TANH_COEF) * x * x * x);
                T::HALF * x * (T::ONE + u.fast_tanh())
            }
        }
    }

    #[inline(always)]
    fn derivative<T: Real>(self, x: T) -> T {
        match self {
            Kind::Erf => {
                let cdf =
                    T::HALF * (T::ONE + (x * T::c(std::f64::consts::FRAC_1_SQRT_2)).fast_erf());
                let pdf = T::c(INV_SQRT_2PI) * (T::c(-0.5) * x * x).fast_exp();
                cdf + x * pdf
            }
            Kind::Tanh => {
                let k = T::c(SQRT_2_OVER_PI);
                let c = T::c(TANH_COEF);
                let x2 = x * x;
                let t = (k * (x + c * x2 * x)).fast_tanh();
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
    let y = crate::tape::apply_op1(&xs, kernel::Fused(kind))?;
    Ok(y.to_dtype(dtype)?)
}

impl kernel::UnaryKernel for Kind {
    fn op_names(&self) -> (&'static str, &'static str) {
        match self {
            Kind::Erf => ("finetune-gelu", "finetune-gelu-bwd"),
            Kind::Tanh => ("finetune-gelu-new", "finetune-gelu-new-bwd"),
        }
    }

    fn bwd_reads_input(&self) -> bool {
        true
    }

    fn fwd<T: Real>(&self, x: &[T], l: &Layout) -> candle_core::Result<(Vec<T>, Shape)> {
        let kind = *self;
        let c = kernel::ELEMWISE_CHUNK;
        let y = kernel::par_build(
            x.len(),
            c,
            1,
            #[inline(always)]
            |i, yc| {
                for (y, &x) in yc.iter_mut().zip(&x[i * c..]) {
                    y.write(kind.value(x));
                }
            },
        );
        Ok((y, l.shape().clone()))
    }

    /// `dx = dy · gelu'(x)`.
    fn bwd<T: Real>(&self, x: &[T], _l: &Layout, dy: &[T]) -> candle_core::Result<Vec<T>> {
        if x.len() != dy.len() {
            candle_core::bail!("{} backward: gradient size mismatch", self.name());
        }
        let kind = *self;
        let c = kernel::ELEMWISE_CHUNK;
        Ok(kernel::par_build(
            x.len(),
            c,
            1,
            #[inline(always)]
            |i, dxc| {
                for ((dx, &x), &dy) in dxc.iter_mut().zip(&x[i * c..]).zip(&dy[i * c..]) {
                    dx.write(dy * kind.derivative(x));
                }
            },
        ))
    }
}
