//! `multistep`: PyTorch's `MultiStepLR` — the lr is multiplied by `gamma` at each milestone:
//! `base_lr * gamma^k` where `k` counts the milestones `<= step` (Python's `bisect_right`).
//! Milestones may come in any order; a repeated milestone decays twice, as PyTorch's `Counter`
//! does.
//!
//! With a linear warm-up the decay counts from the end of warm-up: after `warmup_steps` the
//! schedule is evaluated at `step - warmup_steps` (milestones are relative to the end of warm-up).

use super::step::check_gamma;
use super::warmup::warmup_factor;
use super::Schedule;
use crate::error::{Error, Result};

/// Decay by `gamma` at each milestone, optionally after a linear warm-up.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiStepLr {
    warmup_steps: u64,
    /// Sorted, duplicates kept.
    milestones: Vec<u64>,
    gamma: f64,
}

impl MultiStepLr {
    /// PyTorch's default `gamma`.
    pub const DEFAULT_GAMMA: f64 = 0.1;

    /// Warm-up over `warmup_steps`, then the base lr times `gamma` at each of `milestones`
    /// (counted from the end of warm-up, any order, repeats allowed). Fails with no milestone
    /// or a `gamma` that is not a finite number > 0.
    pub fn new(warmup_steps: u64, milestones: &[u64], gamma: f64) -> Result<Self> {
        if milestones.is_empty() {
            return Err(Error::config("`milestones` needs at least one step"));
        }
        check_gamma(gamma)?;
        let mut milestones = milestones.to_vec();
        milestones.sort_unstable();
        Ok(Self {
            warmup_steps,
            milestones,
            gamma,
        })
    }

    /// The milestones, sorted ascending (duplicates kept).
    pub fn milestones(&self) -> &[u64] {
        &self.milestones
    }
}

impl Schedule for MultiStepLr {
    fn lr(&self, step: u64, base_lr: f64) -> f64 {
        if let Some(w) = warmup_factor(step, self.warmup_steps) {
            return base_lr * w;
        }
        let t = step - self.warmup_steps;
        // bisect_right: how many milestones are <= t.
        let passed = self.milestones.partition_point(|&m| m <= t);
        base_lr * self.gamma.powf(passed as f64)
    }
}
