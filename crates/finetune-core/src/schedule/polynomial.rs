//! `polynomial`: transformers' `get_polynomial_decay_schedule_with_warmup` — linear warm-up,
//! then `(lr - lr_end) * (1 - progress)^power + lr_end`, reaching `lr_end` at `total_steps`
//! and staying there.
//!
//! transformers computes the curve from the optimizer's default lr and scales it to each group;
//! here each group's own base lr plays that role (the same for a single group). As in
//! transformers, `lr_end` must be smaller than the lr ([`Schedule::check_base_lr`]).

use super::linear::check_warmup_within_total;
use super::warmup::warmup_factor;
use super::Schedule;
use crate::error::{Error, Result};

/// Linear warm-up, then polynomial decay to `lr_end`.
#[derive(Debug, Clone, PartialEq)]
pub struct PolynomialDecay {
    warmup_steps: u64,
    total_steps: u64,
    lr_end: f64,
    power: f64,
}

impl PolynomialDecay {
    /// transformers' default `lr_end`.
    pub const DEFAULT_LR_END: f64 = 1e-7;
    /// transformers' default `power` (1: linear decay to `lr_end`).
    pub const DEFAULT_POWER: f64 = 1.0;

    /// Warm-up over `warmup_steps`, then decay from the base lr to `lr_end` (absolute, the
    /// same in every group) along `(1 − progress)^power`. Fails if the warm-up is not shorter
    /// than the run, `lr_end` is not a finite number >= 0 or `power` is not a finite number > 0.
    pub fn new(warmup_steps: u64, total_steps: u64, lr_end: f64, power: f64) -> Result<Self> {
        check_warmup_within_total(warmup_steps, total_steps)?;
        if warmup_steps == total_steps {
            // transformers divides by `total - warmup` (ZeroDivisionError at the last step).
            return Err(Error::config(format!(
                "polynomial needs warm-up shorter than the run (both are {total_steps} steps)"
            )));
        }
        if !(lr_end.is_finite() && lr_end >= 0.0) {
            return Err(Error::config(format!(
                "`lr_end` must be a finite number >= 0, got {lr_end}"
            )));
        }
        if !(power.is_finite() && power > 0.0) {
            return Err(Error::config(format!(
                "`power` must be a finite number > 0, got {power}"
            )));
        }
        Ok(Self {
            warmup_steps,
            total_steps,
            lr_end,
            power,
        })
    }
}

impl Schedule for PolynomialDecay {
    fn lr(&self, step: u64, base_lr: f64) -> f64 {
        if let Some(w) = warmup_factor(step, self.warmup_steps) {
            return base_lr * w;
        }
        let lr_init = base_lr;
        let factor = if step > self.total_steps {
            self.lr_end / lr_init
        } else {
            let lr_range = lr_init - self.lr_end;
            let decay_steps = (self.total_steps - self.warmup_steps) as f64;
            let pct_remaining = 1.0 - (step - self.warmup_steps) as f64 / decay_steps;
            (lr_range * pct_remaining.powf(self.power) + self.lr_end) / lr_init
        };
        base_lr * factor
    }

    fn check_base_lr(&self, base_lr: f64) -> Result<()> {
        super::check_positive_lr(base_lr)?;
        if base_lr > self.lr_end {
            Ok(())
        } else {
            Err(Error::config(format!(
                "`lr_end` ({}) must be smaller than the learning rate ({base_lr})",
                self.lr_end
            )))
        }
    }
}
