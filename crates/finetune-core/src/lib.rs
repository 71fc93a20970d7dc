//! `finetune-core`: the training primitives every fine-tuning run stands on — the parameter
//! store and its freezing mask, name patterns, param groups, optimizers, learning-rate
//! schedules, regularisation and gradient handling, layers over the store (`nn`), safetensors
//! I/O and what model families share when they load and export ([`model_io`]) and an image
//! model's preprocessing ([`preprocess`]), devices,
//! crash-safe file writing and folder locks, LoRA adapters ([`lora`], in PEFT's format), and the seam between a model and its trainer ([`model`]:
//! [`TrainModel`], through which a model declares its head, layer depths and outputs).
//!
//! It knows no concrete model, no dataset file format, nothing of the Hub and no training
//! loop: models hand it named tensors, and it hands back gradients, updates and schedules. The
//! fused ops the layers run on are `finetune-kernels`' ([`Rng`] too, re-exported here).
//!
//! # Example
//!
//! A two-tensor "model" whose encoder is frozen by pattern: param groups, AdamW and a linear
//! schedule with warm-up, then a few optimizer steps (the loop a trainer runs).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use finetune_core::{
//!     FreezeSpec, GroupBuilder, Grads, LrScheduler, OptimizerConfig, OptimizerKind, ParamStore,
//!     ScheduleConfig, TensorKind,
//! };
//!
//! # fn main() -> finetune_core::Result<()> {
//! let dev = Device::Cpu;
//! let store = ParamStore::new();
//! let ones = |shape: (usize, usize)| Tensor::ones(shape, DType::F32, &dev);
//! let encoder = store.insert("encoder.weight", &ones((2, 2))?, TensorKind::Parameter)?;
//! let head = store.insert("classifier.weight", &ones((1, 2))?, TensorKind::Parameter)?;
//!
//! // Train the head only: 2 of the 6 parameter elements.
//! FreezeSpec::new().freeze("encoder.*")?.apply_fresh(&store)?;
//! assert_eq!(store.counts().trainable, 2);
//!
//! // Peak lr 1e-3, weight decay 0.01 (biases and norms would get none); AdamW with
//! // PyTorch's defaults for everything else.
//! let groups = GroupBuilder::new(1e-3, 0.01).build(&store)?;
//! let mut optimizer = OptimizerConfig::defaults(OptimizerKind::AdamW).build(groups)?;
//!
//! // transformers' linear schedule: 2 warm-up steps, then down to 0 at step 10.
//! let mut config = ScheduleConfig::new("linear", 10);
//! config.warmup_steps = 2;
//! let mut scheduler = LrScheduler::new(config)?;
//! scheduler.check_optimizer(optimizer.as_ref())?;
//!
//! let x = Tensor::new(&[[1f32, 2.0]], &dev)?;
//! let mut lrs = Vec::new();
//! for step in 0..4 {
//!     scheduler.apply(optimizer.as_mut()); // each group's lr for this step
//!     let y = x.matmul(&encoder.tensor())?.matmul(&head.tensor().t()?)?;
//!     let grads = Grads::from_backward(&store, &y.sum_all()?.backward()?);
//!     optimizer.step(&store, &grads)?;
//!     scheduler.step();
//!     let lr = optimizer.groups()[0].lr;
//!     println!("step {step}: lr {lr:.3e}");
//!     lrs.push(lr);
//! }
//! for (lr, want) in lrs.iter().zip([0.0, 5e-4, 1e-3, 8.75e-4]) {
//!     assert!((lr - want).abs() < 1e-12);
//! }
//! // The frozen encoder has not moved; the head has.
//! assert_eq!(store.get("encoder.weight")?.sum_all()?.to_scalar::<f32>()?, 4.0);
//! assert!(store.get("classifier.weight")?.sum_all()?.to_scalar::<f32>()? < 2.0);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod device;
pub mod error;
pub mod folder_lock;
pub mod freeze;
pub mod fsutil;
mod grad_stats;
pub mod grads;
pub mod groups;
pub mod lora;
pub mod model;
pub mod model_io;
pub mod names;
pub mod nn;
pub mod optim;
pub mod params;
pub mod pattern;
pub mod preprocess;
pub mod problem;
pub mod regularize;
pub mod safetensors_io;
pub mod schedule;

pub use device::{select_device, DeviceSpec};
pub use error::{Error, Result};
pub use finetune_kernels::rng::{self, Rng};
pub use freeze::FreezeSpec;
pub use grad_stats::with_host_f32;
pub use grads::{GradAccumulator, Grads};
pub use groups::{GroupBuilder, GroupSpec, LrSpec, ParamGroup};
pub use model::{HeadSplit, Output, ParamLayout, Problem, TrainModel};
pub use optim::{Optimizer, OptimizerConfig, OptimizerKind, OptimizerState};
pub use params::{Param, ParamCounts, ParamInfo, ParamStore, TensorKind};
pub use pattern::{NamePattern, PatternSet};
pub use problem::ProblemType;
pub use schedule::{
    LrScheduler, PlateauConfig, ReduceLrOnPlateau, Schedule, ScheduleConfig, ScheduleKind,
    SchedulerState,
};
#[doc(hidden)]
pub use serde as __serde;
