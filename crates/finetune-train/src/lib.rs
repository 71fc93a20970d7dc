//! `finetune-train`: the training loop. A [`Learner`] owns the loop — micro-batches, gradient
//! accumulation and clipping, the optimizer and LR schedule, gradual unfreezing, evaluation,
//! early stopping, checkpoints with exact resume, metrics logs and the run summary.
//!
//! It knows no concrete model and no file format: a model implements [`TrainModel`], data
//! arrives through a [`BatchSource`], and exporting is the model's business.

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
