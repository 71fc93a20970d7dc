//! `cosine`: transformers' `get_cosine_schedule_with_warmup` — linear warm-up, then a cosine
//! from the base lr down over `num_cycles` cosine periods (0.5 by default: one half-wave to 0
//! at `total_steps`).
//!
//! With a floor it is `get_cosine_with_min_lr_schedule_with_warmup`: the cosine factor `f`
//! becomes `f * (1 - rate) + rate`, so the curve ends at `rate * base_lr` instead of 0. A
//! [`CosineFloor::MinLr`] gives every group the same absolute floor (`rate = min_lr /
//! base_lr`, computed per group); transformers divides `min_lr` by the optimizer's *default*
//! lr instead, which is the same thing for a single group or for the group at the default lr.
//! [`CosineFloor::Rate`] is transformers' `min_lr_rate`, a floor relative to each group's lr.
//!
//! Like transformers, the curve is not clamped after `total_steps`: with `num_cycles = 0.5` it
//! rises again.

use super::linear::check_warmup_within_total;
use super::warmup::warmup_factor;
use super::Schedule;
use crate::error::{Error, Result};

/// Where the cosine bottoms out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CosineFloor {
    /// Down to 0 (plain `get_cosine_schedule_with_warmup`).
    Zero,
    /// Down to this absolute lr in every group.
    MinLr(f64),
    /// Down to this fraction of each group's base lr.
    Rate(f64),
}

/// Linear warm-up, then cosine decay.
#[derive(Debug, Clone, PartialEq)]
pub struct Cosine {
    warmup_steps: u64,
    total_steps: u64,
    num_cycles: f64,
    floor: CosineFloor,
}

impl Cosine {
    /// transformers' default `num_cycles`.
    pub const DEFAULT_NUM_CYCLES: f64 = 0.5;

    /// Warm-up over `warmup_steps`, then `num_cycles` cosine periods over the remaining steps
    /// down to `floor`. Fails if the warm-up outlasts the run, `num_cycles` is not a finite
    /// number > 0, `min_lr` is not a finite number >= 0 or `min_lr_rate` lies outside `[0, 1]`.
    pub fn new(
        warmup_steps: u64,
        total_steps: u64,
        num_cycles: f64,
        floor: CosineFloor,
    ) -> Result<Self> {
        check_warmup_within_total(warmup_steps, total_steps)?;
        if !(num_cycles.is_finite() && num_cycles > 0.0) {
            return Err(Error::config(format!(
                "`num_cycles` must be a finite number > 0, got {num_cycles}"
            )));
        }
        match floor {
            CosineFloor::MinLr(m) if !(m.is_finite() && m >= 0.0) => {
                return Err(Error::config(format!(
                    "`min_lr` must be a finite number >= 0, got {m}"
                )))
            }
            CosineFloor::Rate(r) if !(0.0..=1.0).contains(&r) => {
                return Err(Error::config(format!(
                    "`min_lr_rate` must lie in [0, 1], got {r}"
                )))
            }
            _ => {}
        }
        Ok(Self {
            warmup_steps,
            total_steps,
            num_cycles,
            floor,
        })
    }
}

impl Schedule for Cosine {
    fn lr(&self, step: u64, base_lr: f64) -> f64 {
        if let Some(w) = warmup_factor(step, self.warmup_steps) {
            return base_lr * w;
        }
        let progress = (step - self.warmup_steps) as f64
            / (self.total_steps - self.warmup_steps).max(1) as f64;
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * self.num_cycles * 2.0 * progress).cos());
        let factor = match self.floor {
            CosineFloor::Zero => cosine.max(0.0),
            CosineFloor::MinLr(min_lr) => {
                let rate = min_lr / base_lr;
                (cosine * (1.0 - rate) + rate).max(0.0)
            }
            CosineFloor::Rate(rate) => (cosine * (1.0 - rate) + rate).max(0.0),
        };
        base_lr * factor
    }

    fn check_base_lr(&self, base_lr: f64) -> Result<()> {
        super::check_positive_lr(base_lr)?;
        match self.floor {
            CosineFloor::MinLr(min_lr) if min_lr > base_lr => Err(Error::config(format!(
                "`min_lr` ({min_lr}) is above the learning rate ({base_lr})"
            ))),
            _ => Ok(()),
        }
    }
}
