//! The training settings: one typed struct that is both the `finetune train` flags (clap) and
//! the keys of a settings file (serde), see [`crate::settings`]. Field names are the keys;
//! transformers' `TrainingArguments` names are flag aliases (`--learning-rate`,
//! `--num-train-epochs`, hidden ones such as `--per-device-train-batch-size`), so a file written
//! for either reads the same (`learning_rate = 2e-5`). Defaults are the flags' defaults.

use crate::eval_strategy::EvalStrategy;
use crate::metrics::Metric;
use crate::schedule_args::ScheduleArgs;
use crate::UnfreezeSchedule;
use clap::ArgAction;
use finetune_core::schedule::{ScheduleConfig, ScheduleKind};
use finetune_core::{Error, OptimizerKind, Result};
use serde::{Deserialize, Serialize};

/// How to train: the training settings of a run (transformers' `TrainingArguments`, less what
/// concerns data and the model). Missing keys take the flags' defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct TrainConfig {
    /// Passes over the training data (a whole number; `3.0`, as transformers writes it,
    /// reads as 3).
    #[arg(
        long,
        visible_alias = "num-train-epochs",
        default_value_t = 3,
        help_heading = "Training"
    )]
    #[serde(deserialize_with = "whole_number")]
    pub epochs: u64,
    /// Optimizer steps; overrides --epochs when set.
    #[arg(long, help_heading = "Training")]
    pub max_steps: Option<u64>,
    /// Training samples per micro-batch.
    #[arg(
        long,
        alias = "per-device-train-batch-size",
        default_value_t = 16,
        help_heading = "Training"
    )]
    pub batch_size: usize,
    /// Samples per evaluation batch.
    #[arg(
        long,
        alias = "per-device-eval-batch-size",
        default_value_t = 64,
        help_heading = "Training"
    )]
    pub eval_batch_size: usize,
    /// Micro-batches whose gradients make one optimizer step.
    #[arg(
        long,
        visible_alias = "gradient-accumulation-steps",
        default_value_t = 1,
        help_heading = "Training"
    )]
    pub grad_accum: usize,
    /// Seeds the data order, new heads, dropout and augmentation.
    #[arg(long, default_value_t = 42, help_heading = "Training")]
    pub seed: u64,
    /// Drop the last incomplete training batch of each epoch.
    #[arg(long, alias = "dataloader-drop-last", help_heading = "Training")]
    pub drop_last: bool,
    /// A step whose loss or gradients are NaN/Inf: `stop` the run (the last good checkpoint is
    /// named) or `skip` that optimizer step (logged in metrics.jsonl).
    #[arg(long, value_enum, default_value_t = OnNan::Stop, help_heading = "Training")]
    pub on_nan: OnNan,
    /// Always run the whole model, even when a frozen backbone's features could be cached.
    #[arg(long = "no-feature-cache", action = ArgAction::SetFalse, help_heading = "Training")]
    pub feature_cache: bool,

    /// Peak learning rate.
    #[arg(
        long,
        visible_alias = "learning-rate",
        default_value_t = 5e-5,
        help_heading = "Optimizer and schedule"
    )]
    pub lr: f64,
    /// sgd, adam, adamw, rmsprop or lion.
    #[arg(long, alias = "optim", default_value_t = OptimizerKind::AdamW, help_heading = "Optimizer and schedule")]
    pub optimizer: OptimizerKind,
    /// SGD / RMSprop momentum (default 0).
    #[arg(long, help_heading = "Optimizer and schedule")]
    pub momentum: Option<f64>,
    /// Nesterov momentum (SGD).
    #[arg(long, help_heading = "Optimizer and schedule")]
    pub nesterov: bool,
    /// Weight decay (decoupled for adamw; biases and norm weights excluded).
    #[arg(long, default_value_t = 0.0, help_heading = "Optimizer and schedule")]
    pub weight_decay: f64,
    /// Adam / Lion betas: `0.9,0.999` or `0.9 0.999`.
    #[arg(long, value_delimiter = ',', num_args = 1..=2, help_heading = "Optimizer and schedule")]
    pub betas: Option<Vec<f64>>,
    /// Adam / RMSprop epsilon.
    #[arg(long, alias = "adam-epsilon", help_heading = "Optimizer and schedule")]
    pub eps: Option<f64>,
    /// constant, linear, cosine, cosine-restarts, polynomial, inverse-sqrt, step, multistep,
    /// exponential or one-cycle (see `finetune lr-schedule --help`).
    #[arg(long, visible_alias = "lr-scheduler-type", default_value_t = ScheduleKind::Linear, help_heading = "Optimizer and schedule")]
    pub schedule: ScheduleKind,
    /// Linear warm-up steps.
    #[arg(long, help_heading = "Optimizer and schedule")]
    pub warmup_steps: Option<u64>,
    /// Linear warm-up as a fraction of the run's steps (rounded up).
    #[arg(long, help_heading = "Optimizer and schedule")]
    pub warmup_ratio: Option<f64>,
    /// The schedule's own arguments (`--min-lr`, `--num-cycles`, `--step-size`, `--gamma`,
    /// `--milestones`, ...).
    #[command(flatten, next_help_heading = "Optimizer and schedule")]
    #[serde(flatten)]
    pub schedule_args: ScheduleArgs,
    /// Clip the global L2 norm of the gradients (0: no clipping).
    #[arg(long, default_value = "1.0", help_heading = "Optimizer and schedule")]
    pub max_grad_norm: Option<f64>,

    /// Freeze parameters matching these globs (`bert.encoder.layer.[0-3].*`, `*.bias`; see
    /// `finetune inspect`), applied at the start.
    #[arg(long, num_args = 1.., help_heading = "Freezing and LR groups")]
    pub freeze: Vec<String>,
    /// Unfreeze parameters matching these globs (applied after --freeze).
    #[arg(long, num_args = 1.., help_heading = "Freezing and LR groups")]
    pub unfreeze: Vec<String>,
    /// Gradual unfreezing: `EPOCH:PATTERN,...` (epochs count from 0), e.g. `1:bert.encoder.layer.5.*,2:bert.encoder.layer.4.*`.
    #[arg(long, help_heading = "Freezing and LR groups")]
    pub unfreeze_schedule: Option<String>,
    /// Gradual unfreezing: one more layer, top first, every N epochs.
    #[arg(long, help_heading = "Freezing and LR groups")]
    pub unfreeze_every: Option<u64>,
    /// Keep batch-norm statistics fixed in frozen layers.
    #[arg(long, help_heading = "Freezing and LR groups")]
    pub freeze_bn: bool,
    /// Layer-wise lr decay in (0, 1]: layer k from the top trains at lr · decay^k.
    #[arg(long, help_heading = "Freezing and LR groups")]
    pub layer_lr_decay: Option<f64>,
    /// Learning rate of the model's head, when different from --lr.
    #[arg(long, help_heading = "Freezing and LR groups")]
    pub head_lr: Option<f64>,

    /// Label smoothing of the cross-entropy, in [0, 1).
    #[arg(
        long,
        visible_alias = "smoothing",
        alias = "label-smoothing-factor",
        default_value_t = 0.0,
        help_heading = "Regularisation"
    )]
    pub label_smoothing: f64,
    /// Single-label cross-entropy weighted per class (PyTorch's `weight=`: a weighted mean):
    /// `auto` (inverse class frequency of the training labels, mean 1) or one weight per
    /// class, comma-separated; the run records the weights it used.
    #[arg(long, help_heading = "Regularisation")]
    pub class_weights: Option<String>,
    /// Multi-label binary cross-entropy's weight of each label's positive examples
    /// (PyTorch's `pos_weight=`): `auto` (each label's negatives / positives in the training
    /// data) or one weight per label, comma-separated; the run records the weights it used.
    #[arg(long, help_heading = "Regularisation")]
    pub pos_weight: Option<String>,
    /// L1 penalty on every parameter.
    #[arg(long, default_value_t = 0.0, help_heading = "Regularisation")]
    pub l1: f64,
    /// L2 penalty on every parameter.
    #[arg(long, default_value_t = 0.0, help_heading = "Regularisation")]
    pub l2: f64,

    /// Keep an exponential moving average of the weights (timm's `--model-ema`, its
    /// `ModelEmaV3`): updated after every optimizer step, over every float parameter and
    /// buffer; evaluated beside the live weights (`eval_ema_*`) and saved in checkpoints.
    #[arg(long, help_heading = "Model EMA")]
    pub model_ema: bool,
    /// The EMA's decay, in [0, 1]: `ema = decay·ema + (1 − decay)·weights`.
    #[arg(long, default_value_t = 0.9998, help_heading = "Model EMA")]
    pub model_ema_decay: f64,
    /// Warm the EMA's decay up as timm does: `min(decay, 1 − k^(−2/3))` at update k.
    #[arg(long, help_heading = "Model EMA")]
    pub model_ema_warmup: bool,
    /// Export the EMA weights at the end of the run instead of the live ones (needs
    /// --model-ema); the test set is then evaluated on them too.
    #[arg(long, help_heading = "Model EMA")]
    pub export_ema: bool,

    /// Distil from this teacher (knowledge distillation): a classifier fine-tuned for the
    /// run's labels, given as --model takes it (a Hub id, a local folder, a finetune export).
    /// It runs in eval mode, without gradients; the loss becomes
    /// (1 − α)·CE(student, labels) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)).
    #[arg(long, help_heading = "Distillation")]
    pub teacher: Option<String>,
    /// The weight α of the distillation term, in [0, 1] (1: the teacher's soft labels alone).
    #[arg(
        long,
        default_value_t = 0.5,
        allow_hyphen_values = true,
        help_heading = "Distillation"
    )]
    pub distill_alpha: f64,
    /// The distillation temperature T > 0 that softens both models' probabilities.
    #[arg(
        long,
        default_value_t = 2.0,
        allow_hyphen_values = true,
        help_heading = "Distillation"
    )]
    pub distill_temperature: f64,

    /// When to evaluate during training: `no`, `steps` (every --eval-steps global steps) or
    /// `epoch` (at each epoch's end); either way also at the last step. Default: `steps` when
    /// --eval-steps is given, else `epoch`.
    #[arg(
        long,
        visible_alias = "evaluation-strategy",
        help_heading = "Evaluation and checkpoints"
    )]
    pub eval_strategy: Option<EvalStrategy>,
    /// Evaluate every N optimizer steps, counted over the whole run (implies --eval-strategy
    /// steps; ignored under epoch and no). Under steps the default is --logging-steps.
    #[arg(long, help_heading = "Evaluation and checkpoints")]
    pub eval_steps: Option<u64>,
    /// Save a checkpoint every N optimizer steps (also at the end).
    #[arg(long, help_heading = "Evaluation and checkpoints")]
    pub save_steps: Option<u64>,
    /// Keep only the newest N checkpoints (and the best one).
    #[arg(long, help_heading = "Evaluation and checkpoints")]
    pub save_total_limit: Option<usize>,
    /// Stop after N evaluations without improvement of --metric.
    #[arg(long, help_heading = "Evaluation and checkpoints")]
    pub early_stopping_patience: Option<usize>,
    /// loss, accuracy, f1, precision, recall, mse or pearson.
    #[arg(long, visible_alias = "metric-for-best-model", default_value_t = Metric::Loss, help_heading = "Evaluation and checkpoints")]
    pub metric: Metric,
    /// Load the checkpoint with the best --metric before exporting.
    #[arg(
        long,
        visible_alias = "load-best-model-at-end",
        help_heading = "Evaluation and checkpoints"
    )]
    pub load_best_at_end: bool,

    /// Log the training loss every N optimizer steps (to metrics.jsonl, and as a log line on
    /// stderr when no progress bar is drawn).
    #[arg(long, default_value_t = 10, help_heading = "Logging")]
    pub logging_steps: u64,
    /// No progress bar: transformers' log lines on stderr instead (`{'loss': ...}`), as when
    /// stderr is not a terminal.
    #[arg(long = "no-progress", action = ArgAction::SetFalse, help_heading = "Logging")]
    pub progress: bool,
    /// Where logged scalars go besides metrics.jsonl (always written): `tensorboard`, `jsonl`,
    /// `all` or `none`, comma-separated (transformers' `report_to`).
    #[arg(long, value_enum, value_delimiter = ',', num_args = 1.., default_values_t = [ReportTo::Jsonl, ReportTo::Tensorboard], help_heading = "Logging")]
    pub report_to: Vec<ReportTo>,
    /// TensorBoard's event files go here [default: OUTPUT/runs].
    #[arg(long, help_heading = "Logging")]
    pub logging_dir: Option<std::path::PathBuf>,
}

/// Where a run reports its logged scalars (transformers' `report_to` values this trainer has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReportTo {
    /// `metrics.jsonl` in the output folder (always written: the run's own record).
    Jsonl,
    /// TensorBoard event files (`events.out.tfevents.*`) under `--logging-dir`.
    Tensorboard,
    /// Every destination.
    All,
    /// Nothing besides `metrics.jsonl`.
    None,
}

impl TrainConfig {
    /// Whether scalars also go to TensorBoard event files.
    pub fn reports_to_tensorboard(&self) -> bool {
        let has = |r: ReportTo| self.report_to.contains(&r);
        !has(ReportTo::None) && (has(ReportTo::Tensorboard) || has(ReportTo::All))
    }
}

/// What the learner does with a step whose loss or gradients are not finite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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
    /// The flags' defaults.
    fn default() -> Self {
        crate::settings::defaults()
    }
}

impl TrainConfig {
    /// The flags of these settings, as a clap command (what [`crate::settings`] reads their
    /// keys and aliases from).
    pub fn command() -> clap::Command {
        <Self as clap::Args>::augment_args(clap::Command::new("train"))
    }

    /// Reads a TOML file of these keys (or their aliases).
    pub fn from_toml(path: &std::path::Path, text: &str) -> Result<Self> {
        let map = crate::settings::parse_text(path, text, &Self::command())?;
        crate::settings::from_map(Some(path), map)
    }

    /// Checks the settings on their own, before anything runs: sizes and counts at least 1,
    /// rates and penalties in range, no two settings that exclude each other (`--warmup-steps`
    /// and `--warmup-ratio`, `--unfreeze-schedule` and `--unfreeze-every`, `--nesterov` without
    /// SGD), a parseable unfreeze schedule. The error names the flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::config(m));
        if let Some(w) = &self.class_weights {
            crate::class_weights::ClassWeights::parse(w)?;
        }
        if let Some(w) = &self.pos_weight {
            crate::class_weights::ClassWeights::parse_for("pos_weight", w)?;
        }
        if self.class_weights.is_some() && self.pos_weight.is_some() {
            return bad(
                "give --class-weights (single-label) or --pos-weight (multi-label), \
                        not both"
                    .into(),
            );
        }
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
        crate::ema::check_decay(self.model_ema_decay)?;
        crate::distill::check(self)?;
        if self.export_ema && !self.model_ema {
            return bad("--export-ema needs --model-ema".into());
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
        if let Some(b) = &self.betas {
            if b.len() != 2 || b.iter().any(|x| !(0.0..1.0).contains(x)) {
                return bad(format!(
                    "--betas takes two values in [0, 1) (`0.9,0.999`), got {b:?}"
                ));
            }
        }
        if self.nesterov && self.optimizer != OptimizerKind::Sgd {
            return bad("--nesterov applies to --optimizer sgd only".into());
        }
        if self.unfreeze_schedule.is_some() && self.unfreeze_every.is_some() {
            return bad("give --unfreeze-schedule or --unfreeze-every, not both".into());
        }
        if self.unfreeze_every == Some(0) {
            return bad("--unfreeze-every must be at least 1".into());
        }
        if let Some(s) = &self.unfreeze_schedule {
            UnfreezeSchedule::parse(s)?;
        }
        self.check_evaluation()
    }

    /// Early stopping and `--load-best-at-end` need a run that evaluates. (`--eval-steps`
    /// under `epoch` or `no` is ignored, as transformers does, so a settings file holding one
    /// can be reused with another strategy.)
    fn check_evaluation(&self) -> Result<()> {
        if self.eval_strategy() == EvalStrategy::No
            && (self.early_stopping_patience.is_some() || self.load_best_at_end)
        {
            return Err(Error::config(
                "early stopping and --load-best-at-end need evaluations: not with \
                 --eval-strategy no",
            ));
        }
        Ok(())
    }

    /// The evaluation schedule in force (see [`EvalStrategy::resolve`]).
    pub fn eval_strategy(&self) -> EvalStrategy {
        EvalStrategy::resolve(self.eval_strategy, self.eval_steps)
    }

    /// Whether to evaluate after global step `done` of a run of `total` steps, `per_epoch` an
    /// epoch: the schedule of [`Self::eval_strategy`], every `--eval-steps` (default
    /// `--logging-steps`) under `steps`.
    pub fn eval_due(&self, done: u64, per_epoch: u64, total: u64) -> bool {
        let interval = self.eval_steps.unwrap_or(self.logging_steps);
        self.eval_strategy()
            .is_due(done, interval, per_epoch, total)
    }

    /// The LR schedule for a run of `total_steps` optimizer steps.
    pub fn schedule_config(&self, total_steps: u64) -> Result<ScheduleConfig> {
        let mut c = ScheduleConfig::new(self.schedule.as_str(), total_steps);
        c.warmup_steps = match (self.warmup_steps, self.warmup_ratio) {
            (Some(w), _) => w,
            (None, Some(r)) => finetune_core::schedule::warmup_from_ratio(r, total_steps)?,
            (None, None) => 0,
        };
        self.schedule_args.apply(&mut c)?;
        c.validate()?;
        Ok(c)
    }

    /// Whether a larger value of the chosen metric is better.
    pub fn greater_is_better(&self) -> bool {
        self.metric.greater_is_better()
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
