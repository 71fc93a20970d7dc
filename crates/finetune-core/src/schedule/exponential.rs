//! `exponential`: PyTorch's `ExponentialLR` — the lr is multiplied by `gamma` every step:
//! `base_lr * gamma^step`.
//!
//! With a linear warm-up the decay counts from the end of warm-up: after `warmup_steps` the
//! schedule is evaluated at `step - warmup_steps`.

use super::step::check_gamma;
use super::warmup::warmup_factor;
use super::Schedule;
use crate::error::Result;

/// Exponential decay, optionally after a linear warm-up.
#[derive(Debug, Clone, PartialEq)]
pub struct ExponentialLr {
    warmup_steps: u64,
    gamma: f64,
}

impl ExponentialLr {
    /// Warm-up over `warmup_steps`, then the base lr times `gamma` per step. Fails unless
    /// `gamma` is a finite number > 0 (above 1 the lr grows, as PyTorch allows).
    pub fn new(warmup_steps: u64, gamma: f64) -> Result<Self> {
        check_gamma(gamma)?;
        Ok(Self {
            warmup_steps,
            gamma,
        })
    }
}

impl Schedule for ExponentialLr {
    fn lr(&self, step: u64, base_lr: f64) -> f64 {
        if let Some(w) = warmup_factor(step, self.warmup_steps) {
            return base_lr * w;
        }
        base_lr * self.gamma.powf((step - self.warmup_steps) as f64)
    }
}
