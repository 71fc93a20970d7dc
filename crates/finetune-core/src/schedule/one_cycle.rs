//! `one-cycle`: PyTorch's `OneCycleLR` (the lr part) with `max_lr` = the group's base lr.
//!
//! The lr starts at `max_lr / div_factor`, anneals up to `max_lr` by step
//! `pct_start * total_steps - 1`, then down to `initial_lr / final_div_factor` at step
//! `total_steps - 1`. With `three_phase` it first anneals back down to the initial lr at step
//! `2 * pct_start * total_steps - 2` and only then to the minimum. The phase ends are PyTorch's
//! exactly (fractional ends included), as is the annealing (`cos` or `linear`).
//!
//! Differences from PyTorch:
//! - momentum cycling (`cycle_momentum`, `base_momentum`, `max_momentum`) is **not**
//!   implemented: the schedule only sets the lr;
//! - the lr holds its final value after step `total_steps - 1` (PyTorch extrapolates one more
//!   step, then raises);
//! - there is no separate warm-up: the first phase is the warm-up (`pct_start`).

use std::f64::consts::PI;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Schedule;
use crate::error::{Error, Result};

/// How a phase moves from its start lr to its end lr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Anneal {
    /// Half a cosine wave (PyTorch's default `anneal_strategy='cos'`).
    #[default]
    Cos,
    /// A straight line (`anneal_strategy='linear'`).
    Linear,
}

impl Anneal {
    /// PyTorch's `_annealing_cos` / `_annealing_linear` at fraction `pct` of the phase.
    pub fn interpolate(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            Anneal::Linear => (end - start) * pct + start,
        }
    }

    /// `cos` or `linear`, the name configs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Anneal::Cos => "cos",
            Anneal::Linear => "linear",
        }
    }
}

impl FromStr for Anneal {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cos" => Ok(Anneal::Cos),
            "linear" => Ok(Anneal::Linear),
            _ => Err(Error::config(format!(
                "unknown `anneal` `{s}`: expected `cos` or `linear`"
            ))),
        }
    }
}

/// Which lr a phase starts or ends at, relative to `max_lr`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Level {
    Initial,
    Max,
    Min,
}

#[derive(Debug, Clone, PartialEq)]
struct Phase {
    end_step: f64,
    start: Level,
    end: Level,
}

/// PyTorch's one-cycle policy.
#[derive(Debug, Clone, PartialEq)]
pub struct OneCycleLr {
    total_steps: u64,
    div_factor: f64,
    final_div_factor: f64,
    anneal: Anneal,
    phases: Vec<Phase>,
}

impl OneCycleLr {
    /// PyTorch's default `pct_start`: 30% of the run rising.
    pub const DEFAULT_PCT_START: f64 = 0.3;
    /// PyTorch's default `div_factor`: the lr starts at `max_lr / 25`.
    pub const DEFAULT_DIV_FACTOR: f64 = 25.0;
    /// PyTorch's default `final_div_factor`: the lr ends at the start lr `/ 1e4`.
    pub const DEFAULT_FINAL_DIV_FACTOR: f64 = 1e4;

    /// The policy over `total_steps` (> 0): `pct_start` (in `[0, 1]`) is the fraction of the
    /// run spent rising, the lr starts at `max_lr / div_factor` and ends at that start lr
    /// `/ final_div_factor` (both factors finite and > 0). A `pct_start` that makes the rising
    /// phase end at step 0 (`pct_start × total_steps = 1`) is refused, as PyTorch fails there.
    pub fn new(
        total_steps: u64,
        pct_start: f64,
        div_factor: f64,
        final_div_factor: f64,
        anneal: Anneal,
        three_phase: bool,
    ) -> Result<Self> {
        if total_steps == 0 {
            return Err(Error::config("one-cycle needs at least 1 step"));
        }
        if !(0.0..=1.0).contains(&pct_start) {
            return Err(Error::config(format!(
                "`pct_start` must lie in [0, 1], got {pct_start}"
            )));
        }
        for (flag, v) in [
            ("`div_factor`", div_factor),
            ("`final_div_factor`", final_div_factor),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::config(format!(
                    "{flag} must be a finite number > 0, got {v}"
                )));
            }
        }
        let total = total_steps as f64;
        let warm_end = pct_start * total - 1.0;
        if warm_end == 0.0 {
            // PyTorch divides 0 by 0 at step 0 here (ZeroDivisionError).
            return Err(Error::config(format!(
                "one-cycle: `pct_start` {pct_start} × {total_steps} steps gives a 1-step warm-up \
                 phase, which PyTorch cannot evaluate (0/0); choose another `pct_start`"
            )));
        }
        let phases = if three_phase {
            vec![
                Phase {
                    end_step: warm_end,
                    start: Level::Initial,
                    end: Level::Max,
                },
                Phase {
                    end_step: 2.0 * pct_start * total - 2.0,
                    start: Level::Max,
                    end: Level::Initial,
                },
                Phase {
                    end_step: total - 1.0,
                    start: Level::Initial,
                    end: Level::Min,
                },
            ]
        } else {
            vec![
                Phase {
                    end_step: warm_end,
                    start: Level::Initial,
                    end: Level::Max,
                },
                Phase {
                    end_step: total - 1.0,
                    start: Level::Max,
                    end: Level::Min,
                },
            ]
        };
        Ok(Self {
            total_steps,
            div_factor,
            final_div_factor,
            anneal,
            phases,
        })
    }

    /// The steps at which the phases end (PyTorch's `end_step`s, possibly fractional).
    pub fn phase_ends(&self) -> Vec<f64> {
        self.phases.iter().map(|p| p.end_step).collect()
    }
}

impl Schedule for OneCycleLr {
    fn lr(&self, step: u64, base_lr: f64) -> f64 {
        let max_lr = base_lr;
        let initial_lr = max_lr / self.div_factor;
        let min_lr = initial_lr / self.final_div_factor;
        let level = |l: Level| match l {
            Level::Initial => initial_lr,
            Level::Max => max_lr,
            Level::Min => min_lr,
        };
        let t = step.min(self.total_steps - 1) as f64;
        // PyTorch's walk: the first phase whose end is not passed, else the last one.
        let last = self.phases.len() - 1;
        let mut start_step = 0.0;
        let mut current = &self.phases[last];
        for phase in &self.phases[..last] {
            if t <= phase.end_step {
                current = phase;
                break;
            }
            start_step = phase.end_step;
        }
        let pct = (t - start_step) / (current.end_step - start_step);
        self.anneal
            .interpolate(level(current.start), level(current.end), pct)
    }
}
