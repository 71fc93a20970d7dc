//! `finetune-core`: the training primitives every fine-tuning run stands on — the parameter
//! store and its freezing mask, name patterns, optimizers with param groups, learning-rate
//! schedules, regularisation and gradient handling, differentiable fused ops, and a seedable RNG.
//!
//! It knows no concrete model, no dataset file format and nothing of the Hub: models hand it
//! named tensors, and it hands back gradients, updates and schedules.

pub mod candle_pool;
pub mod device;
pub mod error;
pub mod freeze;
pub mod fsutil;
pub mod grads;
pub mod groups;
pub mod malloc;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod params;
pub mod pattern;
pub mod regularize;
pub mod rng;
pub mod safetensors_io;
pub mod schedule;
pub mod tape;

pub use device::{select_device, DeviceSpec};
pub use error::{Error, Result};
pub use freeze::FreezeSpec;
pub use grads::{GradAccumulator, Grads};
pub use groups::{GroupBuilder, GroupSpec, LrSpec, ParamGroup};
pub use optim::{Optimizer, OptimizerConfig, OptimizerState};
pub use params::{Param, ParamCounts, ParamInfo, ParamStore, TensorKind};
pub use pattern::{NamePattern, PatternSet};
pub use rng::Rng;
pub use schedule::{
    LrScheduler, PlateauConfig, ReduceLrOnPlateau, Schedule, ScheduleConfig, SchedulerState,
};
