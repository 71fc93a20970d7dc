//! `finetune-train`: the training loop and its settings. A [`Learner`] runs the loop as a few
//! named steps ([`learner`]: set-up and resume, the training step, what follows each step, the
//! end) — micro-batches, gradient accumulation and clipping, the optimizer and LR schedule,
//! gradual unfreezing, evaluation, early stopping, checkpoints with exact resume, metrics logs
//! and the run summary. [`TrainConfig`] is the training settings' one schema (flags and file
//! keys, [`settings`]).
//!
//! It knows no concrete model and no file format: a model implements [`TrainModel`] (and
//! declares its head and layer depths there), data arrives through a [`BatchSource`] in the
//! order of the step plan ([`order`]), and exporting is the model's business.

pub mod checkpoint;
pub mod config;
pub mod early_stop;
pub mod evaluate;
pub mod feature_cache;
pub mod learner;
pub mod log;
pub mod metrics;
pub mod order;
pub mod plot;
mod prefetch;
pub mod settings;
pub mod source;
pub mod summary;
pub mod unfreeze;

pub use config::{OnNan, TrainConfig};
pub use feature_cache::FeatureCacheReport;
pub use finetune_core::model::{self, HeadSplit, Output, ParamLayout, Problem, TrainModel};
pub use learner::{Learner, Outcome};
pub use metrics::{
    ClassificationMetrics, EvalMetrics, Metric, MultiLabelMetrics, RegressionMetrics,
};
pub use source::{Batch, BatchSource};
pub use summary::TrainSummary;
pub use unfreeze::UnfreezeSchedule;
