//! Adam with coupled (L2) weight decay and optional AMSGrad, as `torch.optim.Adam`:
//! `g ← g + λθ`; `m ← m + (1−β₁)(g − m)`; `v ← β₂v + (1−β₂)g²`; with AMSGrad `v̂ ← max(v̂, v)`;
//! `θ ← θ − (γ / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)` (eps outside the square root).

use super::driver::{StepHyper, UpdateRule};
use crate::error::{Error, Result};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// The hyper-parameters of `torch.optim.Adam`, with its defaults: coupled (L2) weight decay
/// `g ← g + λθ`, then `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²` and
/// `θ ← θ − (γ / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)`. The lr γ and weight decay λ come from
/// the param groups. State slots: `exp_avg`, `exp_avg_sq` (and `max_exp_avg_sq`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Adam {
    /// `(β₁, β₂)`: decay rates of the running means of the gradient and of its square, each in
    /// `[0, 1)` (default `(0.9, 0.999)`).
    pub betas: (f64, f64),
    /// ε, added to the denominator outside the square root; `>= 0` (default 1e-8).
    pub eps: f64,
    /// AMSGrad (Reddi et al. 2018): divide by the largest second moment seen so far instead of
    /// the current one, kept in the extra slot `max_exp_avg_sq` (default false).
    pub amsgrad: bool,
}

impl Default for Adam {
    fn default() -> Self {
        Self {
            betas: (0.9, 0.999),
            eps: 1e-8,
            amsgrad: false,
        }
    }
}

impl Adam {
    pub(super) fn check(&self, name: &str) -> Result<()> {
        let (b1, b2) = self.betas;
        if !(0.0..1.0).contains(&b1) || !(0.0..1.0).contains(&b2) {
            return Err(Error::config(format!(
                "{name}: betas must be in [0, 1), got ({b1}, {b2})"
            )));
        }
        if !crate::error::non_negative(self.eps) {
            return Err(Error::config(format!(
                "{name}: eps must be >= 0, got {}",
                self.eps
            )));
        }
        Ok(())
    }

    pub(super) fn slots(&self) -> Vec<&'static str> {
        let mut s = vec!["exp_avg", "exp_avg_sq"];
        if self.amsgrad {
            s.push("max_exp_avg_sq");
        }
        s
    }

    /// The shared Adam/AdamW update; `decoupled` selects AdamW's decay.
    #[inline(always)]
    pub(super) fn run(
        &self,
        decoupled: bool,
        h: &StepHyper,
        p: &mut [f32],
        g: &[f32],
        slots: &mut [&mut [f32]],
    ) {
        let (b1, b2) = self.betas;
        let t = h.step as i32;
        let bc1 = 1.0 - b1.powi(t);
        let bc2_sqrt = (1.0 - b2.powi(t)).sqrt() as f32;
        let step_size = (h.lr / bc1) as f32;
        let wd = h.weight_decay as f32;
        let decay = (1.0 - h.lr * h.weight_decay) as f32;
        let (w1, b2f, w2, eps) = (
            (1.0 - b1) as f32,
            b2 as f32,
            (1.0 - b2) as f32,
            self.eps as f32,
        );
        let (m, rest) = slots.split_at_mut(1);
        let (v, vmax) = rest.split_at_mut(1);
        // Every slice re-cut to the parameter's length, so the loops below carry no bounds
        // checks and vectorise; the flags are hoisted out of them (one loop per case). The
        // per-element arithmetic is the same in every case.
        let n = p.len();
        let (g, m, v) = (&g[..n], &mut m[0][..n], &mut v[0][..n]);
        let update = |p: &mut f32, grad: f32, m: &mut f32, v: &mut f32, vmax: Option<&mut f32>| {
            let mut d = grad;
            if decoupled {
                *p *= decay;
            } else if wd != 0.0 {
                d += wd * *p;
            }
            *m += w1 * (d - *m);
            *v = b2f * *v + w2 * d * d;
            let second = match vmax {
                Some(vm) => {
                    *vm = vm.max(*v);
                    *vm
                }
                None => *v,
            };
            let denom = second.sqrt() / bc2_sqrt + eps;
            *p += -step_size * (*m / denom);
        };
        let elems = p.iter_mut().zip(g).zip(m.iter_mut().zip(v.iter_mut()));
        // The two identical loops are deliberate: inside each, `decoupled` is a known constant
        // once `update` is inlined, so the weight-decay branch leaves the vectorised loop.
        #[allow(clippy::if_same_then_else)]
        if self.amsgrad {
            let vmax = &mut vmax[0][..n];
            for (((p, &g), (m, v)), vm) in elems.zip(vmax.iter_mut()) {
                update(p, g, m, v, Some(vm));
            }
        } else if decoupled {
            for ((p, &g), (m, v)) in elems {
                update(p, g, m, v, None);
            }
        } else {
            for ((p, &g), (m, v)) in elems {
                update(p, g, m, v, None);
            }
        }
    }
}

impl Adam {
    /// [`Adam::run`] on device tensors (candle ops): the new parameter and slots.
    pub(super) fn run_tensors(
        &self,
        decoupled: bool,
        h: &StepHyper,
        p: &Tensor,
        g: &Tensor,
        slots: &[Tensor],
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let (b1, b2) = self.betas;
        let t = h.step as i32;
        let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
        let step_size = h.lr / (1.0 - b1.powi(t));
        let (p, d) = if decoupled {
            (p.affine(1.0 - h.lr * h.weight_decay, 0.0)?, g.clone())
        } else if h.weight_decay != 0.0 {
            (p.clone(), (g + p.affine(h.weight_decay, 0.0)?)?)
        } else {
            (p.clone(), g.clone())
        };
        let m = (&slots[0] + (&d - &slots[0])?.affine(1.0 - b1, 0.0)?)?;
        let v = (slots[1].affine(b2, 0.0)? + d.sqr()?.affine(1.0 - b2, 0.0)?)?;
        let mut out = vec![m.clone(), v.clone()];
        let second = if self.amsgrad {
            let vmax = slots[2].maximum(&v)?;
            out.push(vmax.clone());
            vmax
        } else {
            v
        };
        let denom = second.sqrt()?.affine(1.0 / bc2_sqrt, self.eps)?;
        let p = (p - (m / denom)?.affine(step_size, 0.0)?)?;
        Ok((p, out))
    }
}

impl UpdateRule for Adam {
    const NAME: &'static str = "adam";

    fn slot_names(&self) -> Vec<&'static str> {
        self.slots()
    }

    fn validate(&self) -> Result<()> {
        self.check(Self::NAME)
    }

    #[inline(always)]
    fn update(&self, h: &StepHyper, p: &mut [f32], g: &[f32], slots: &mut [&mut [f32]]) {
        self.run(false, h, p, g, slots)
    }

    fn update_tensors(
        &self,
        h: &StepHyper,
        p: &Tensor,
        g: &Tensor,
        slots: &[Tensor],
    ) -> Result<(Tensor, Vec<Tensor>)> {
        self.run_tensors(false, h, p, g, slots)
    }
}
