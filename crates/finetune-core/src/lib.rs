//! `finetune-core`: the training primitives every fine-tuning run stands on — the parameter
//! store and its freezing mask, name patterns, param groups, optimizers, learning-rate
//! schedules, regularisation and gradient handling, layers over the store (`nn`), safetensors
//! I/O and what model families share when they load and export ([`model_io`]), devices,
//! crash-safe file writing, and the seam between a model and its trainer ([`model`]:
//! [`TrainModel`], through which a model declares its head, layer depths and outputs).
//!
//! It knows no concrete model, no dataset file format, nothing of the Hub and no training
//! loop: models hand it named tensors, and it hands back gradients, updates and schedules. The
//! fused ops the layers run on are `finetune-kernels`' ([`Rng`] too, re-exported here).

pub mod device;
pub mod error;
pub mod freeze;
pub mod fsutil;
pub mod grads;
pub mod groups;
pub mod model;
pub mod model_io;
pub mod names;
pub mod nn;
pub mod optim;
pub mod params;
pub mod pattern;
pub mod regularize;
pub mod safetensors_io;
pub mod schedule;

pub use device::{select_device, DeviceSpec};
pub use error::{Error, Result};
pub use finetune_kernels::rng::{self, Rng};
pub use freeze::FreezeSpec;
pub use grads::{GradAccumulator, Grads};
pub use groups::{GroupBuilder, GroupSpec, LrSpec, ParamGroup};
pub use model::{HeadSplit, Output, ParamLayout, Problem, TrainModel};
pub use optim::{Optimizer, OptimizerConfig, OptimizerKind, OptimizerState};
pub use params::{Param, ParamCounts, ParamInfo, ParamStore, TensorKind};
pub use pattern::{NamePattern, PatternSet};
pub use schedule::{
    LrScheduler, PlateauConfig, ReduceLrOnPlateau, Schedule, ScheduleConfig, ScheduleKind,
    SchedulerState,
};
#[doc(hidden)]
pub use serde as __serde;
