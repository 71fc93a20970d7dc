//! `inverse-sqrt`: transformers' `get_inverse_sqrt_schedule` — linear warm-up, then
//! `1 / sqrt((step + timescale - warmup_steps) / timescale)`: the base lr at the end of warm-up,
//! decaying as the inverse square root of the step. `timescale` defaults to the warm-up length,
//! or 10 000 without warm-up.

use super::warmup::warmup_factor;
use super::Schedule;
use crate::error::{Error, Result};

/// Linear warm-up, then inverse-square-root decay.
#[derive(Debug, Clone, PartialEq)]
pub struct InverseSqrt {
    warmup_steps: u64,
    timescale: u64,
}

impl InverseSqrt {
    /// transformers' default timescale when there is no warm-up.
    pub const DEFAULT_TIMESCALE: u64 = 10_000;

    /// `timescale: None` takes transformers' default (`warmup_steps or 10_000`).
    pub fn new(warmup_steps: u64, timescale: Option<u64>) -> Result<Self> {
        let timescale = match timescale {
            Some(0) => return Err(Error::config("`timescale` must be at least 1")),
            Some(t) => t,
            None if warmup_steps > 0 => warmup_steps,
            None => Self::DEFAULT_TIMESCALE,
        };
        Ok(Self {
            warmup_steps,
            timescale,
        })
    }

    /// The timescale in use, the default applied.
    pub fn timescale(&self) -> u64 {
        self.timescale
    }
}

impl Schedule for InverseSqrt {
    fn lr(&self, step: u64, base_lr: f64) -> f64 {
        if let Some(w) = warmup_factor(step, self.warmup_steps) {
            return base_lr * w;
        }
        // step + (timescale - warmup) in integers, as Python does (never negative here).
        let shifted = (step - self.warmup_steps + self.timescale) as f64;
        base_lr * (1.0 / (shifted / self.timescale as f64).sqrt())
    }
}
