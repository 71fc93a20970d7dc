//! The run's settings. Field names are the CLI's flag names with `_` for `-`; the names of
//! transformers' `TrainingArguments` are accepted as aliases (`learning_rate`,
//! `num_train_epochs`, `per_device_train_batch_size`, ...), so a TOML file written for either
//! reads the same.

use finetune_core::schedule::ScheduleConfig;
use finetune_core::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// A whole number; `3.0` (how `TrainingArguments` writes `num_train_epochs`) reads as 3.
    #[serde(alias = "num_train_epochs", deserialize_with = "whole_number")]
    pub epochs: u64,
    /// Optimizer steps; overrides `epochs` when set.
    pub max_steps: Option<u64>,
    #[serde(alias = "per_device_train_batch_size")]
    pub batch_size: usize,
    #[serde(alias = "per_device_eval_batch_size")]
    pub eval_batch_size: usize,
    #[serde(alias = "gradient_accumulation_steps")]
    pub grad_accum: usize,
    #[serde(alias = "learning_rate")]
    pub lr: f64,
    #[serde(alias = "optim")]
    pub optimizer: String,
    pub momentum: Option<f64>,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub betas: Option<[f64; 2]>,
    #[serde(alias = "adam_epsilon")]
    pub eps: Option<f64>,
    #[serde(alias = "lr_scheduler_type")]
    pub schedule: String,
    pub warmup_steps: Option<u64>,
    pub warmup_ratio: Option<f64>,
    pub min_lr: Option<f64>,
    pub num_cycles: Option<f64>,
    /// Clip the global L2 norm of the gradients; 0 or absent: no clipping.
    pub max_grad_norm: Option<f64>,
    #[serde(alias = "label_smoothing_factor")]
    pub label_smoothing: f64,
    /// Freeze patterns applied at the start (see `finetune inspect`).
    pub freeze: Vec<String>,
    pub unfreeze: Vec<String>,
    /// Gradual unfreezing: `"EPOCH:PATTERN,..."` (see [`crate::UnfreezeSchedule`]).
    pub unfreeze_schedule: Option<String>,
    /// Gradual unfreezing one layer every N epochs, top layer first (see
    /// [`crate::UnfreezeSchedule::by_layer`]).
    pub unfreeze_every: Option<u64>,
    /// Keep batch norm in eval mode for frozen parameters.
    pub freeze_bn: bool,
    /// Layer-wise lr decay factor in (0, 1].
    pub layer_lr_decay: Option<f64>,
    /// Lr for the head (`classifier.*`, `fc.*`), when different from `lr`.
    pub head_lr: Option<f64>,
    pub l1: f64,
    pub l2: f64,
    /// Evaluate every N optimizer steps (also at the end of each epoch).
    pub eval_steps: Option<u64>,
    /// Save a checkpoint every N optimizer steps (also at the end).
    pub save_steps: Option<u64>,
    pub save_total_limit: Option<usize>,
    /// Log the training loss every N optimizer steps.
    pub logging_steps: u64,
    pub early_stopping_patience: Option<usize>,
    /// `loss`, `accuracy`, `f1`, `precision`, `recall`, `mse`, `pearson` (eval metrics).
    #[serde(alias = "metric_for_best_model")]
    pub metric: String,
    #[serde(alias = "load_best_model_at_end")]
    pub load_best_at_end: bool,
    pub seed: u64,
    /// Drop the last incomplete training batch of each epoch.
    #[serde(alias = "dataloader_drop_last")]
    pub drop_last: bool,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// What a non-finite (NaN/Inf) training loss or gradient does: stop the run (naming the
    /// last good checkpoint) or skip that optimizer step.
    pub on_nan: OnNan,
    /// Compute a frozen backbone's features once and train the head on them, when that gives
    /// the same run (see [`crate::feature_cache`]); `false`: always the full forward.
    pub feature_cache: bool,
}

/// What the learner does with a step whose loss or gradients are not finite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnNan {
    /// Stop the run with an error naming the step and the last good checkpoint.
    #[default]
    Stop,
    /// Leave the weights and the optimizer state as they are for that step, say so on stderr
    /// and in `metrics.jsonl` (`{"step", "skipped": true, "reason"}`), and go on.
    Skip,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 3,
            max_steps: None,
            batch_size: 16,
            eval_batch_size: 64,
            grad_accum: 1,
            lr: 5e-5,
            optimizer: "adamw".into(),
            momentum: None,
            nesterov: false,
            weight_decay: 0.0,
            betas: None,
            eps: None,
            schedule: "linear".into(),
            warmup_steps: None,
            warmup_ratio: None,
            min_lr: None,
            num_cycles: None,
            max_grad_norm: Some(1.0),
            label_smoothing: 0.0,
            freeze: Vec::new(),
            unfreeze: Vec::new(),
            unfreeze_schedule: None,
            unfreeze_every: None,
            freeze_bn: false,
            layer_lr_decay: None,
            head_lr: None,
            l1: 0.0,
            l2: 0.0,
            eval_steps: None,
            save_steps: None,
            save_total_limit: None,
            logging_steps: 10,
            early_stopping_patience: None,
            metric: "loss".into(),
            load_best_at_end: false,
            seed: 42,
            drop_last: false,
            progress: true,
            on_nan: OnNan::Stop,
            feature_cache: true,
        }
    }
}

impl TrainConfig {
    /// Reads a TOML file of these keys (or their aliases).
    pub fn from_toml(path: &std::path::Path, text: &str) -> Result<Self> {
        toml_like(path, text)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::config(m));
        if self.batch_size == 0 || self.eval_batch_size == 0 || self.grad_accum == 0 {
            return bad("batch sizes and --grad-accum must be at least 1".into());
        }
        if self.max_steps.is_none() && self.epochs == 0 {
            return bad("--epochs must be at least 1 (or give --max-steps)".into());
        }
        if self.max_steps == Some(0) {
            return bad("--max-steps must be at least 1".into());
        }
        if !(finetune_core::error::positive(self.lr) && self.lr.is_finite()) {
            return bad(format!("--lr must be > 0, got {}", self.lr));
        }
        if !finetune_core::error::non_negative(self.weight_decay) {
            return bad(format!(
                "--weight-decay must be >= 0, got {}",
                self.weight_decay
            ));
        }
        if let Some(h) = self.head_lr {
            if !(finetune_core::error::positive(h) && h.is_finite()) {
                return bad(format!("--head-lr must be > 0, got {h}"));
            }
        }
        if let Some(d) = self.layer_lr_decay {
            if !(d > 0.0 && d <= 1.0) {
                return bad(format!("--layer-lr-decay must be in (0, 1], got {d}"));
            }
        }
        if let Some(r) = self.warmup_ratio {
            if !(0.0..=1.0).contains(&r) {
                return bad(format!("--warmup-ratio must lie in [0, 1], got {r}"));
            }
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!(
                "--label-smoothing must be in [0, 1), got {}",
                self.label_smoothing
            ));
        }
        for (k, v) in [("--l1", self.l1), ("--l2", self.l2)] {
            if !finetune_core::error::non_negative(v) {
                return bad(format!("{k} must be >= 0, got {v}"));
            }
        }
        if let Some(n) = self.max_grad_norm {
            if !finetune_core::error::non_negative(n) {
                return bad(format!("--max-grad-norm must be >= 0, got {n}"));
            }
        }
        if self.warmup_steps.is_some() && self.warmup_ratio.is_some() {
            return bad("give --warmup-steps or --warmup-ratio, not both".into());
        }
        for (k, v) in [
            ("--eval-steps", self.eval_steps),
            ("--save-steps", self.save_steps),
        ] {
            if v == Some(0) {
                return bad(format!("{k} must be at least 1"));
            }
        }
        if self.save_total_limit == Some(0) {
            return bad("--save-total-limit must be at least 1".into());
        }
        crate::metrics::check_metric_name(&self.metric)?;
        // Names checked up front, not when the first step needs them.
        finetune_core::OptimizerConfig::default_for(&self.optimizer)?;
        ScheduleConfig::new(self.schedule.clone(), 1).kind()?;
        if self.unfreeze_schedule.is_some() && self.unfreeze_every.is_some() {
            return bad("give --unfreeze-schedule or --unfreeze-every, not both".into());
        }
        if self.unfreeze_every == Some(0) {
            return bad("--unfreeze-every must be at least 1".into());
        }
        if let Some(s) = &self.unfreeze_schedule {
            crate::UnfreezeSchedule::parse(s)?;
        }
        Ok(())
    }

    /// The LR schedule for a run of `total_steps` optimizer steps.
    pub fn schedule_config(&self, total_steps: u64) -> Result<ScheduleConfig> {
        let mut c = ScheduleConfig::new(self.schedule.clone(), total_steps);
        c.warmup_steps = match (self.warmup_steps, self.warmup_ratio) {
            (Some(w), _) => w,
            (None, Some(r)) => finetune_core::schedule::warmup_from_ratio(r, total_steps)?,
            (None, None) => 0,
        };
        c.min_lr = self.min_lr;
        c.num_cycles = self.num_cycles;
        c.validate()?;
        Ok(c)
    }

    /// Whether a larger value of the chosen metric is better.
    pub fn greater_is_better(&self) -> bool {
        !matches!(self.metric.as_str(), "loss" | "mse")
    }
}

/// A `u64` written as an integer or as a float with no fractional part.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Int(u64),
        Float(f64),
    }
    match Number::deserialize(d) {
        Ok(Number::Int(n)) => Ok(n),
        Ok(Number::Float(x)) if x >= 0.0 && x.fract() == 0.0 && x < 2f64.powi(53) => Ok(x as u64),
        Ok(Number::Float(x)) => Err(serde::de::Error::custom(format!(
            "expected a whole number of epochs >= 0, got {x}"
        ))),
        Err(_) => Err(serde::de::Error::custom(
            "expected a whole number of epochs >= 0",
        )),
    }
}

fn toml_like(path: &std::path::Path, text: &str) -> Result<TrainConfig> {
    // A document (a table of keys), not a single TOML value.
    text.parse::<toml::Table>()
        .map_err(|e: toml::de::Error| Error::Record {
            path: path.to_path_buf(),
            msg: format!("not valid TOML: {e}"),
        })?;
    // Deserialised by toml itself, so an error points at the offending key and line.
    toml::from_str(text).map_err(|e| Error::Record {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}
