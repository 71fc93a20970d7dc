//! `ReduceLROnPlateau`: PyTorch's metric-driven lr reduction.
//!
//! Each [`ReduceLrOnPlateau::observe`] feeds one metric (usually once per evaluation). A metric
//! that improves on the best so far by more than `threshold` (relative: `best * (1 ∓
//! threshold)`, or absolute: `best ∓ threshold`) resets the count of bad evaluations; once more
//! than `patience` bad ones accumulate, every group's lr becomes `max(lr * factor, min_lr)` —
//! applied only where that lowers it by more than `eps` — and `cooldown` evaluations are
//! ignored. All of this is PyTorch's algorithm, state variables included (`best`,
//! `num_bad_epochs`, `cooldown_counter`).
//!
//! PyTorch reduces all groups at the same moments, and a group's lr after `k` reductions
//! depends only on its starting lr, so the state keeps the number of reductions and
//! [`ReduceLrOnPlateau::lr`] replays them for any group's base lr: several groups with different
//! base lrs get exactly PyTorch's per-group values. One `min_lr` applies to every group.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Whether the metric should go down (`min`, a loss) or up (`max`, an accuracy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PlateauMode {
    /// Lower is better (the default).
    #[default]
    Min,
    /// Higher is better.
    Max,
}

/// Whether `threshold` is relative to the best metric or absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdMode {
    /// An improvement must beat `best * (1 ∓ threshold)` (the default).
    #[default]
    Rel,
    /// An improvement must beat `best ∓ threshold`.
    Abs,
}

/// The arguments of PyTorch's `ReduceLROnPlateau`, with its defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlateauConfig {
    /// Whether the metric should fall or rise (default `min`).
    pub mode: PlateauMode,
    /// The lr multiplier at each reduction, in `(0, 1)` (default 0.1).
    pub factor: f64,
    /// Bad evaluations tolerated: the lrs drop at the `patience + 1`-th in a row (default 10).
    pub patience: u64,
    /// The smallest improvement that counts, relative or absolute (default 1e-4).
    pub threshold: f64,
    /// How `threshold` applies (default `rel`).
    pub threshold_mode: ThresholdMode,
    /// Evaluations after a reduction during which bad ones are not counted (default 0).
    pub cooldown: u64,
    /// The floor of every group's lr, absolute (default 0).
    pub min_lr: f64,
    /// A reduction that would lower an lr by `eps` or less is skipped (default 1e-8).
    pub eps: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        Self {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

impl PlateauConfig {
    /// Checks that `factor` lies in `(0, 1)` and that `threshold`, `min_lr` and `eps` are
    /// finite numbers >= 0.
    pub fn validate(&self) -> Result<()> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::config(format!(
                "plateau factor must lie in (0, 1) (PyTorch: \"Factor should be < 1.0\"), got {}",
                self.factor
            )));
        }
        for (name, v) in [
            ("threshold", self.threshold),
            ("min_lr", self.min_lr),
            ("eps", self.eps),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::config(format!(
                    "plateau {name} must be a finite number >= 0, got {v}"
                )));
            }
        }
        Ok(())
    }
}

/// The mutable part of [`ReduceLrOnPlateau`], for checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    /// Best metric so far (`+inf` / `-inf` before the first one, as PyTorch's `mode_worse`).
    #[serde(with = "super::float_serde")]
    pub best: f64,
    /// Evaluations in a row without improvement since the last reset.
    pub num_bad_epochs: u64,
    /// Evaluations left in the current cooldown.
    pub cooldown_counter: u64,
    /// How many times the lrs were reduced.
    pub num_reductions: u64,
}

impl PlateauState {
    /// The state before any metric (PyTorch's `_reset`).
    pub fn initial(mode: PlateauMode) -> Self {
        Self {
            best: match mode {
                PlateauMode::Min => f64::INFINITY,
                PlateauMode::Max => f64::NEG_INFINITY,
            },
            num_bad_epochs: 0,
            cooldown_counter: 0,
            num_reductions: 0,
        }
    }
}

/// PyTorch's `ReduceLROnPlateau`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReduceLrOnPlateau {
    config: PlateauConfig,
    state: PlateauState,
}

impl ReduceLrOnPlateau {
    /// A plateau with no metric seen yet; fails if the config is invalid
    /// ([`PlateauConfig::validate`]).
    pub fn new(config: PlateauConfig) -> Result<Self> {
        config.validate()?;
        let state = PlateauState::initial(config.mode);
        Ok(Self { config, state })
    }

    /// The arguments it was built with.
    pub fn config(&self) -> &PlateauConfig {
        &self.config
    }

    /// Feeds one metric; returns whether it triggered a reduction.
    pub fn observe(&mut self, metric: f64) -> bool {
        let s = &mut self.state;
        if self.config.is_better(metric, s.best) {
            s.best = metric;
            s.num_bad_epochs = 0;
        } else {
            s.num_bad_epochs += 1;
        }
        if s.cooldown_counter > 0 {
            s.cooldown_counter -= 1;
            s.num_bad_epochs = 0;
        }
        if s.num_bad_epochs > self.config.patience {
            s.num_reductions += 1;
            s.cooldown_counter = self.config.cooldown;
            s.num_bad_epochs = 0;
            true
        } else {
            false
        }
    }

    /// The current lr of a group that started at `base_lr`.
    pub fn lr(&self, base_lr: f64) -> f64 {
        let mut lr = base_lr;
        for _ in 0..self.state.num_reductions {
            let new_lr = (lr * self.config.factor).max(self.config.min_lr);
            if lr - new_lr > self.config.eps {
                lr = new_lr;
            } else {
                // Nothing changes any more: every later reduction would compute the same.
                break;
            }
        }
        lr
    }

    /// Whether a cooldown is running (bad evaluations are not being counted).
    pub fn in_cooldown(&self) -> bool {
        self.state.cooldown_counter > 0
    }

    /// Where it stands, for a checkpoint.
    pub fn state(&self) -> &PlateauState {
        &self.state
    }

    /// Restores a state from [`ReduceLrOnPlateau::state`] (not checked against the config).
    pub fn load_state(&mut self, state: PlateauState) {
        self.state = state;
    }
}

impl PlateauConfig {
    /// PyTorch's `is_better` (false for a NaN metric).
    fn is_better(&self, a: f64, best: f64) -> bool {
        match (self.mode, self.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - self.threshold),
            (PlateauMode::Min, ThresholdMode::Abs) => a < best - self.threshold,
            (PlateauMode::Max, ThresholdMode::Rel) => a > best * (self.threshold + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => a > best + self.threshold,
        }
    }
}
