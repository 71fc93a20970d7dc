//! Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"):
//! `θ ← θ(1 − γλ)`; `θ ← θ − γ·sign(β₁m + (1−β₁)g)`; `m ← β₂m + (1−β₂)g`.

use super::driver::{StepHyper, UpdateRule};
use crate::error::{Error, Result};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// The hyper-parameters of Lion (Chen et al. 2023, "Symbolic Discovery of Optimization
/// Algorithms"): decoupled weight decay `θ ← θ(1 − γλ)`, then `θ ← θ − γ·sign(β₁m + (1−β₁)g)`
/// and `m ← β₂m + (1−β₂)g`. Every element moves by exactly γ, so Lion usually wants a
/// learning rate 3–10× smaller than AdamW's (the paper's advice). State slot: `exp_avg`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lion {
    /// `(β₁, β₂)`: β₁ mixes the momentum and the gradient inside the sign, β₂ is the
    /// momentum's decay rate; each in `[0, 1)` (default `(0.9, 0.99)`).
    pub betas: (f64, f64),
}

impl Default for Lion {
    fn default() -> Self {
        Self { betas: (0.9, 0.99) }
    }
}

fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl UpdateRule for Lion {
    const NAME: &'static str = "lion";

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["exp_avg"]
    }

    fn validate(&self) -> Result<()> {
        let (b1, b2) = self.betas;
        if !(0.0..1.0).contains(&b1) || !(0.0..1.0).contains(&b2) {
            return Err(Error::config(format!(
                "lion: betas must be in [0, 1), got ({b1}, {b2})"
            )));
        }
        Ok(())
    }

    #[inline(always)]
    fn update(&self, h: &StepHyper, p: &mut [f32], g: &[f32], slots: &mut [&mut [f32]]) {
        let lr = h.lr as f32;
        let decay = (1.0 - h.lr * h.weight_decay) as f32;
        let (b1, b2) = (self.betas.0 as f32, self.betas.1 as f32);
        // Slices cut to the parameter's length: the loop carries no bounds checks.
        let n = p.len();
        let (g, m) = (&g[..n], &mut slots[0][..n]);
        for ((p, &g), m) in p.iter_mut().zip(g).zip(m.iter_mut()) {
            *p *= decay;
            let c = b1 * *m + (1.0 - b1) * g;
            *p += -lr * sign(c);
            *m = b2 * *m + (1.0 - b2) * g;
        }
    }

    fn update_tensors(
        &self,
        h: &StepHyper,
        p: &Tensor,
        g: &Tensor,
        slots: &[Tensor],
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let (b1, b2) = self.betas;
        let p = p.affine(1.0 - h.lr * h.weight_decay, 0.0)?;
        let c = (slots[0].affine(b1, 0.0)? + g.affine(1.0 - b1, 0.0)?)?;
        let p = (p - c.sign()?.affine(h.lr, 0.0)?)?;
        let m = (slots[0].affine(b2, 0.0)? + g.affine(1.0 - b2, 0.0)?)?;
        Ok((p, vec![m]))
    }
}
