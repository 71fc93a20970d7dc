//! The settings of Reptile meta-training: the episodes' shape, the inner loop and the outer
//! (meta) update. One schema for flags and settings files, as [`crate::TrainConfig`].

use finetune_core::{Error, OptimizerKind, Result};
use serde::{Deserialize, Serialize};

const HEADING: &str = "Meta-learning (Reptile)";

/// How the meta step size ε moves over the meta steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MetaLrSchedule {
    /// ε decays linearly from `meta_lr` to 0 over the meta steps (the paper's).
    Linear,
    /// ε stays `meta_lr`.
    Constant,
}

/// Reptile's settings (Nichol et al. 2018, "On First-Order Meta-Learning Algorithms").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct ReptileConfig {
    /// Classes per task (N-way).
    #[arg(long, default_value_t = 5, help_heading = HEADING)]
    pub ways: usize,
    /// Support examples per class the inner loop trains on (K-shot).
    #[arg(long, default_value_t = 5, help_heading = HEADING)]
    pub shots: usize,
    /// Query examples per class an adapted model is measured on (few-shot evaluation).
    #[arg(long, default_value_t = 15, help_heading = HEADING)]
    pub query_shots: usize,
    /// Optimizer steps on each task's support set (the whole support set each step).
    #[arg(long, default_value_t = 5, help_heading = HEADING)]
    pub inner_steps: usize,
    /// The inner loop's learning rate.
    #[arg(long, default_value_t = 1e-3, help_heading = HEADING)]
    pub inner_lr: f64,
    /// The inner loop's optimizer, with PyTorch's defaults; Adam's β₁ is 0 (the paper's:
    /// no momentum carried over so few steps).
    #[arg(long, default_value_t = OptimizerKind::Adam, help_heading = HEADING)]
    pub inner_optimizer: OptimizerKind,
    /// Meta iterations (outer updates).
    #[arg(long, default_value_t = 100, help_heading = HEADING)]
    pub meta_steps: usize,
    /// The meta step size ε: φ ← φ + ε · mean over the meta-batch of (W − φ).
    #[arg(long, default_value_t = 1.0, help_heading = HEADING)]
    pub meta_lr: f64,
    /// `linear` (ε decays to 0 over the meta steps, as in the paper) or `constant`.
    #[arg(long, value_enum, default_value_t = MetaLrSchedule::Linear, help_heading = HEADING)]
    pub meta_lr_schedule: MetaLrSchedule,
    /// Tasks per meta iteration.
    #[arg(long, default_value_t = 5, help_heading = HEADING)]
    pub meta_batch: usize,
    /// Print the mean support loss every N meta steps.
    #[arg(long, default_value_t = 10, help_heading = HEADING)]
    pub logging_steps: usize,
    /// Seeds the episodes (and a fresh network's initialisation).
    #[arg(long, default_value_t = 42, help_heading = HEADING)]
    pub seed: u64,
}

impl Default for ReptileConfig {
    /// The flags' defaults.
    fn default() -> Self {
        crate::settings::defaults()
    }
}

impl ReptileConfig {
    /// The checks that need no data, each failure one line naming its setting: at least 2
    /// ways, 1 shot, 1 query shot, 1 inner step, 1 meta step, 1 task per meta-batch; a
    /// positive finite inner lr and meta lr (at most 1: beyond φ's move to the tasks' mean).
    pub fn validate(&self) -> Result<()> {
        crate::reptile::episode::check_shape(self.ways, self.shots, usize::MAX)?;
        for (key, v) in [
            ("query_shots", self.query_shots),
            ("inner_steps", self.inner_steps),
            ("meta_steps", self.meta_steps),
            ("meta_batch", self.meta_batch),
            ("logging_steps", self.logging_steps),
        ] {
            if v == 0 {
                return Err(Error::config(format!("`{key}` must be at least 1 (got 0)")));
            }
        }
        if !(self.inner_lr.is_finite() && self.inner_lr > 0.0) {
            return Err(Error::config(format!(
                "`inner_lr` must be a positive number (got {})",
                self.inner_lr
            )));
        }
        if !(self.meta_lr.is_finite() && self.meta_lr > 0.0 && self.meta_lr <= 1.0) {
            return Err(Error::config(format!(
                "`meta_lr` must be in (0, 1] (got {})",
                self.meta_lr
            )));
        }
        Ok(())
    }

    /// ε at meta step `step` (0-based) of [`Self::meta_steps`].
    pub fn meta_lr_at(&self, step: usize) -> f64 {
        match self.meta_lr_schedule {
            MetaLrSchedule::Constant => self.meta_lr,
            MetaLrSchedule::Linear => {
                self.meta_lr * (1.0 - step as f64 / self.meta_steps.max(1) as f64)
            }
        }
    }
}
