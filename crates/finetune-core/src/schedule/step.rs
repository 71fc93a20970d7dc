//! `step`: PyTorch's `StepLR` — the lr is multiplied by `gamma` every `step_size` steps:
//! `base_lr * gamma^(step / step_size)` (integer division).
//!
//! With a linear warm-up the decay counts from the end of warm-up: after `warmup_steps` the
//! schedule is evaluated at `step - warmup_steps`, so the base lr holds for `step_size` steps
//! once warm-up ends.

use super::warmup::warmup_factor;
use super::Schedule;
use crate::error::{Error, Result};

/// Step decay, optionally after a linear warm-up.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLr {
    warmup_steps: u64,
    step_size: u64,
    gamma: f64,
}

impl StepLr {
    /// PyTorch's default `gamma`.
    pub const DEFAULT_GAMMA: f64 = 0.1;

    /// Warm-up over `warmup_steps`, then the base lr times `gamma` every `step_size` steps.
    /// Fails if `step_size` is 0 or `gamma` is not a finite number > 0.
    pub fn new(warmup_steps: u64, step_size: u64, gamma: f64) -> Result<Self> {
        if step_size == 0 {
            return Err(Error::config("`step_size` must be at least 1"));
        }
        check_gamma(gamma)?;
        Ok(Self {
            warmup_steps,
            step_size,
            gamma,
        })
    }
}

impl Schedule for StepLr {
    fn lr(&self, step: u64, base_lr: f64) -> f64 {
        if let Some(w) = warmup_factor(step, self.warmup_steps) {
            return base_lr * w;
        }
        let decays = (step - self.warmup_steps) / self.step_size;
        base_lr * self.gamma.powf(decays as f64)
    }
}

/// `gamma` of the PyTorch-style decays: a finite positive multiplier.
pub(crate) fn check_gamma(gamma: f64) -> Result<()> {
    if gamma.is_finite() && gamma > 0.0 {
        Ok(())
    } else {
        Err(Error::config(format!(
            "`gamma` must be a finite number > 0, got {gamma}"
        )))
    }
}
