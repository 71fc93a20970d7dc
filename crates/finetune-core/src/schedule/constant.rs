//! `constant`: transformers' `get_constant_schedule_with_warmup` — linear warm-up, then the base
//! lr for ever.

use super::warmup::warmup_factor;
use super::Schedule;

/// Constant lr after an optional linear warm-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Constant {
    /// Steps of linear warm-up from 0 to the base lr (0: none).
    pub warmup_steps: u64,
}

impl Constant {
    /// The base lr after `warmup_steps` of warm-up.
    pub fn new(warmup_steps: u64) -> Self {
        Self { warmup_steps }
    }
}

impl Schedule for Constant {
    fn lr(&self, step: u64, base_lr: f64) -> f64 {
        base_lr * warmup_factor(step, self.warmup_steps).unwrap_or(1.0)
    }
}
