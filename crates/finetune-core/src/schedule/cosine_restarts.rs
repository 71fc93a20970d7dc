//! `cosine-restarts`: transformers' `get_cosine_with_hard_restarts_schedule_with_warmup` —
//! linear warm-up, then `num_cycles` cosine half-waves from the base lr to 0, each restarting
//! at the base lr; 0 from `total_steps` on.

use super::linear::check_warmup_within_total;
use super::warmup::warmup_factor;
use super::Schedule;
use crate::error::{Error, Result};

/// Linear warm-up, then cosine decay with hard restarts.
#[derive(Debug, Clone, PartialEq)]
pub struct CosineWithHardRestarts {
    warmup_steps: u64,
    total_steps: u64,
    num_cycles: u64,
}

impl CosineWithHardRestarts {
    /// transformers' default `num_cycles`.
    pub const DEFAULT_NUM_CYCLES: u64 = 1;

    /// Warm-up over `warmup_steps`, then `num_cycles` equal cosine half-waves over the
    /// remaining steps. Fails if the warm-up outlasts the run or `num_cycles` is 0.
    pub fn new(warmup_steps: u64, total_steps: u64, num_cycles: u64) -> Result<Self> {
        check_warmup_within_total(warmup_steps, total_steps)?;
        if num_cycles == 0 {
            return Err(Error::config("`num_cycles` must be at least 1"));
        }
        Ok(Self {
            warmup_steps,
            total_steps,
            num_cycles,
        })
    }
}

impl Schedule for CosineWithHardRestarts {
    fn lr(&self, step: u64, base_lr: f64) -> f64 {
        if let Some(w) = warmup_factor(step, self.warmup_steps) {
            return base_lr * w;
        }
        let progress = (step - self.warmup_steps) as f64
            / (self.total_steps - self.warmup_steps).max(1) as f64;
        if progress >= 1.0 {
            return base_lr * 0.0;
        }
        let phase = (self.num_cycles as f64 * progress) % 1.0;
        base_lr * (0.5 * (1.0 + (std::f64::consts::PI * phase).cos())).max(0.0)
    }
}
