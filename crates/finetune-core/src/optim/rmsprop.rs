//! RMSprop, as `torch.optim.RMSprop`: `g ← g + λθ`; `v ← αv + (1−α)g²`; centered:
//! `ḡ ← ḡ + (1−α)(g − ḡ)`, `a ← √(v − ḡ²) + ε`, else `a ← √v + ε`; with momentum
//! `b ← μb + g/a`, `θ ← θ − γb`, else `θ ← θ − γg/a`.

use super::driver::{StepHyper, UpdateRule};
use crate::error::{Error, Result};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// The hyper-parameters of `torch.optim.RMSprop`, with its defaults: coupled weight decay
/// `g ← g + λθ`, `v ← αv + (1−α)g²`, then `θ ← θ − γg / (√v + ε)` (or through a momentum
/// buffer). The lr γ and weight decay λ come from the param groups. State slots:
/// `square_avg` (and `grad_avg`, `momentum_buffer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RmsProp {
    /// α, the decay rate of the running mean of squared gradients; `>= 0` (default 0.99).
    pub alpha: f64,
    /// ε, added to the denominator outside the square root; `>= 0` (default 1e-8).
    pub eps: f64,
    /// Momentum factor μ: `b ← μb + g / (√v + ε)`, `θ ← θ − γb`; `>= 0` (default 0, none;
    /// above 0 adds the `momentum_buffer` slot).
    pub momentum: f64,
    /// Divide by an estimate of the gradient's standard deviation, `√(v − ḡ²)` with `ḡ` the
    /// running mean of the gradient (slot `grad_avg`), instead of `√v` (default false).
    pub centered: bool,
}

impl Default for RmsProp {
    fn default() -> Self {
        Self {
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            centered: false,
        }
    }
}

impl UpdateRule for RmsProp {
    const NAME: &'static str = "rmsprop";

    fn slot_names(&self) -> Vec<&'static str> {
        let mut s = vec!["square_avg"];
        if self.centered {
            s.push("grad_avg");
        }
        if self.momentum > 0.0 {
            s.push("momentum_buffer");
        }
        s
    }

    fn validate(&self) -> Result<()> {
        if !crate::error::non_negative(self.alpha)
            || !crate::error::non_negative(self.eps)
            || !crate::error::non_negative(self.momentum)
        {
            return Err(Error::config(format!(
                "rmsprop: alpha, eps and momentum must be >= 0 (got {}, {}, {})",
                self.alpha, self.eps, self.momentum
            )));
        }
        Ok(())
    }

    #[inline(always)]
    fn update(&self, h: &StepHyper, p: &mut [f32], g: &[f32], slots: &mut [&mut [f32]]) {
        let lr = h.lr as f32;
        let wd = h.weight_decay as f32;
        let alpha = self.alpha as f32;
        let w = 1.0 - alpha;
        let eps = self.eps as f32;
        let mu = self.momentum as f32;
        // Every slice cut to the parameter's length: the loop carries no bounds checks.
        let n = p.len();
        let g = &g[..n];
        let (sq, rest) = slots.split_at_mut(1);
        let sq = &mut sq[0][..n];
        let (gavg, buf) = if self.centered {
            let (a, b) = rest.split_at_mut(1);
            (Some(&mut a[0][..n]), b)
        } else {
            (None, rest)
        };
        let mut buf = (mu > 0.0).then(|| &mut buf[0][..n]);
        let mut gavg = gavg;
        for i in 0..n {
            let mut d = g[i];
            if wd != 0.0 {
                d += wd * p[i];
            }
            sq[i] = alpha * sq[i] + w * d * d;
            let avg = match gavg.as_deref_mut() {
                Some(ga) => {
                    ga[i] += w * (d - ga[i]);
                    (sq[i] - ga[i] * ga[i]).sqrt() + eps
                }
                None => sq[i].sqrt() + eps,
            };
            if let Some(buf) = buf.as_deref_mut() {
                let b = &mut buf[i];
                *b = mu * *b + d / avg;
                p[i] += -lr * *b;
            } else {
                p[i] += -lr * (d / avg);
            }
        }
    }

    fn update_tensors(
        &self,
        h: &StepHyper,
        p: &Tensor,
        g: &Tensor,
        slots: &[Tensor],
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let a = self.alpha;
        let d = if h.weight_decay != 0.0 {
            (g + p.affine(h.weight_decay, 0.0)?)?
        } else {
            g.clone()
        };
        let sq = (slots[0].affine(a, 0.0)? + d.sqr()?.affine(1.0 - a, 0.0)?)?;
        let mut out = vec![sq.clone()];
        let avg = if self.centered {
            let ga = (&slots[1] + (&d - &slots[1])?.affine(1.0 - a, 0.0)?)?;
            out.push(ga.clone());
            (sq - ga.sqr()?)?.sqrt()?.affine(1.0, self.eps)?
        } else {
            sq.sqrt()?.affine(1.0, self.eps)?
        };
        let step = if self.momentum > 0.0 {
            let b = (slots[out.len()].affine(self.momentum, 0.0)? + (&d / &avg)?)?;
            out.push(b.clone());
            b
        } else {
            (d / avg)?
        };
        Ok(((p - step.affine(h.lr, 0.0)?)?, out))
    }
}
