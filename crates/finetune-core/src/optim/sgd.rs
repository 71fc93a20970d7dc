//! SGD with momentum, dampening, Nesterov and coupled weight decay, as `torch.optim.SGD`:
//! `g ← g + λθ`; with momentum `b ← g` on the first step, else `b ← μb + (1−τ)g`;
//! `g ← g + μb` (Nesterov) or `g ← b`; `θ ← θ − γg`.

use super::driver::{StepHyper, UpdateRule};
use crate::error::{Error, Result};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// The hyper-parameters of `torch.optim.SGD`, with its defaults: coupled weight decay
/// `g ← g + λθ`, an optional momentum buffer, then `θ ← θ − γg`. The lr γ and weight decay λ
/// come from the param groups. State slot (with momentum): `momentum_buffer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sgd {
    /// Momentum factor μ: `b ← μb + (1−τ)g` (`b ← g` on a parameter's first step); `>= 0`
    /// (default 0: plain SGD, no state).
    pub momentum: f64,
    /// Dampening τ of the gradient entering the momentum buffer (default 0).
    pub dampening: f64,
    /// Nesterov momentum, stepping along `g + μb` instead of `b`; needs a momentum > 0 and a
    /// dampening of 0 (default false).
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
        let c = Coefs {
            lr: h.lr as f32,
            wd: h.weight_decay as f32,
            mu: self.momentum as f32,
            damp: 1.0 - self.dampening as f32,
        };
        // Slices re-cut to the parameter's length and the flags made constants of one loop per
        // case, so that the loops carry no bounds checks or branches and vectorise (the
        // arithmetic per element is the same in every case).
        let n = p.len();
        let g = &g[..n];
        let wd = c.wd != 0.0;
        if c.mu == 0.0 {
            match wd {
                true => plain::<true>(&c, p, g),
                false => plain::<false>(&c, p, g),
            }
            return;
        }
        let b = &mut slots[0][..n];
        match (wd, h.step == 1, self.nesterov) {
            (true, true, true) => momentum::<true, true, true>(&c, p, g, b),
            (true, true, false) => momentum::<true, true, false>(&c, p, g, b),
            (true, false, true) => momentum::<true, false, true>(&c, p, g, b),
            (true, false, false) => momentum::<true, false, false>(&c, p, g, b),
            (false, true, true) => momentum::<false, true, true>(&c, p, g, b),
            (false, true, false) => momentum::<false, true, false>(&c, p, g, b),
            (false, false, true) => momentum::<false, false, true>(&c, p, g, b),
            (false, false, false) => momentum::<false, false, false>(&c, p, g, b),
        }
    }

    fn update_tensors(
        &self,
        h: &StepHyper,
        p: &Tensor,
        g: &Tensor,
        slots: &[Tensor],
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let d = if h.weight_decay != 0.0 {
            (g + p.affine(h.weight_decay, 0.0)?)?
        } else {
            g.clone()
        };
        if self.momentum == 0.0 {
            return Ok(((p - d.affine(h.lr, 0.0)?)?, Vec::new()));
        }
        let b = if h.step == 1 {
            d.clone()
        } else {
            (slots[0].affine(self.momentum, 0.0)? + d.affine(1.0 - self.dampening, 0.0)?)?
        };
        let step = if self.nesterov {
            (d + b.affine(self.momentum, 0.0)?)?
        } else {
            b.clone()
        };
        Ok(((p - step.affine(h.lr, 0.0)?)?, vec![b]))
    }
}

/// One step's coefficients in f32: learning rate, weight decay, momentum, `1 − dampening`.
struct Coefs {
    lr: f32,
    wd: f32,
    mu: f32,
    damp: f32,
}

/// `g + λθ` (or `g` itself without weight decay: `0·θ` is not 0 for an infinite `θ`).
#[inline(always)]
fn decayed<const WD: bool>(c: &Coefs, p: f32, g: f32) -> f32 {
    if WD {
        g + c.wd * p
    } else {
        g
    }
}

/// Without momentum: `θ ← θ − γ(g + λθ)`.
#[inline(always)]
fn plain<const WD: bool>(c: &Coefs, p: &mut [f32], g: &[f32]) {
    for (p, &g) in p.iter_mut().zip(g) {
        let d = decayed::<WD>(c, *p, g);
        *p += -c.lr * d;
    }
}

/// With momentum buffer `b` (as long as `p` and `g`).
#[inline(always)]
fn momentum<const WD: bool, const FIRST: bool, const NESTEROV: bool>(
    c: &Coefs,
    p: &mut [f32],
    g: &[f32],
    b: &mut [f32],
) {
    for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
        let d = decayed::<WD>(c, *p, g);
        *b = if FIRST { d } else { c.mu * *b + c.damp * d };
        let d = if NESTEROV { d + c.mu * *b } else { *b };
        *p += -c.lr * d;
    }
}
