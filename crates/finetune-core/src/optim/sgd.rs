//! SGD with momentum, dampening, Nesterov and coupled weight decay, as `torch.optim.SGD`:
//! `g ← g + λθ`; with momentum `b ← g` on the first step, else `b ← μb + (1−τ)g`;
//! `g ← g + μb` (Nesterov) or `g ← b`; `θ ← θ − γg`.

use super::driver::{StepHyper, UpdateRule};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sgd {
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
}

impl Default for Sgd {
    fn default() -> Self {
        Self {
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
        }
    }
}

impl UpdateRule for Sgd {
    const NAME: &'static str = "sgd";

    fn slot_names(&self) -> Vec<&'static str> {
        if self.momentum != 0.0 {
            vec!["momentum_buffer"]
        } else {
            vec![]
        }
    }

    fn validate(&self) -> Result<()> {
        if !crate::error::non_negative(self.momentum) {
            return Err(Error::config(format!(
                "sgd: momentum must be >= 0, got {}",
                self.momentum
            )));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::config(
                "sgd: Nesterov momentum requires a momentum and zero dampening",
            ));
        }
        Ok(())
    }

    #[inline(always)]
    fn update(&self, h: &StepHyper, p: &mut [f32], g: &[f32], slots: &mut [&mut [f32]]) {
        let lr = h.lr as f32;
        let wd = h.weight_decay as f32;
        let mu = self.momentum as f32;
        let damp = 1.0 - self.dampening as f32;
        let first = h.step == 1;
        for i in 0..p.len() {
            let mut d = g[i];
            if wd != 0.0 {
                d += wd * p[i];
            }
            if mu != 0.0 {
                let b = &mut slots[0][i];
                *b = if first { d } else { mu * *b + damp * d };
                d = if self.nesterov { d + mu * *b } else { *b };
            }
            p[i] += -lr * d;
        }
    }
}
