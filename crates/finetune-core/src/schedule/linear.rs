//! `linear`: transformers' `get_linear_schedule_with_warmup` — linear warm-up from 0 to the base
//! lr over `warmup_steps`, then linear decay to 0 at `total_steps` (and 0 after).

use super::warmup::warmup_factor;
use super::Schedule;
use crate::error::{Error, Result};

/// Linear warm-up, then linear decay to 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    warmup_steps: u64,
    total_steps: u64,
}

impl Linear {
    /// Warm-up over `warmup_steps`, then linear decay to 0 at `total_steps`. Fails if the
    /// warm-up outlasts the run.
    pub fn new(warmup_steps: u64, total_steps: u64) -> Result<Self> {
        check_warmup_within_total(warmup_steps, total_steps)?;
        Ok(Self {
            warmup_steps,
            total_steps,
        })
    }
}

impl Schedule for Linear {
    fn lr(&self, step: u64, base_lr: f64) -> f64 {
        let factor = warmup_factor(step, self.warmup_steps).unwrap_or_else(|| {
            let remaining = self.total_steps as f64 - step as f64;
            let decay_steps = (self.total_steps - self.warmup_steps).max(1) as f64;
            (remaining / decay_steps).max(0.0)
        });
        base_lr * factor
    }
}

/// Shared check of the transformers-style schedules: warm-up cannot outlast the run.
pub(crate) fn check_warmup_within_total(warmup_steps: u64, total_steps: u64) -> Result<()> {
    if warmup_steps > total_steps {
        return Err(Error::config(format!(
            "warm-up ({warmup_steps} steps) is longer than the run ({total_steps} steps)"
        )));
    }
    Ok(())
}
