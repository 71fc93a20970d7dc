//! `finetune-train`: the training loop and its settings. A [`Learner`] runs the loop as a few
//! named steps ([`learner`]: set-up and resume, the training step, what follows each step, the
//! end) — micro-batches, gradient accumulation and clipping, the optimizer and LR schedule,
//! gradual unfreezing, evaluation, early stopping, checkpoints with exact resume, metrics logs
//! and the run summary. [`TrainConfig`] is the training settings' one schema (flags and file
//! keys, [`settings`]).
//!
//! [`reptile`] meta-learns an initialisation for few-shot fine-tuning (Reptile's episodes, inner
//! loop and outer update, and the few-shot accuracy that measures it) over the same
//! [`TrainModel`] and [`BatchSource`].
//!
//! It knows no concrete model and no file format: a model implements [`TrainModel`] (and
//! declares its head and layer depths there), data arrives through a [`BatchSource`] in the
//! order of the step plan ([`order`]), and exporting is the model's business.
//!
//! The output folder is the learner's to guard ([`OutputDir`]): it is locked while the
//! learner lives (a second writer, in this process or another, is refused), and a fresh run
//! refuses a folder holding an earlier run's results unless it resumes
//! ([`OutputMode::Overwrite`] replaces them). [`Learner::quiet`] keeps stderr silent for
//! programs with their own output.
//!
//! Training a one-layer classifier on eight points (what `transformers.Trainer(model, args,
//! train_dataset).train()` is in PyTorch):
//!
//! ```
//! use candle_core::{DType, Device, Module, Tensor};
//! use finetune_core::nn::{init, linear, Linear};
//! use finetune_core::{ParamStore, Result, Rng, TensorKind};
//! use finetune_train::{
//!     Batch, BatchSource, Learner, Outcome, ParamLayout, Problem, TrainConfig, TrainModel,
//! };
//! use std::path::Path;
//!
//! /// Logistic regression: one linear layer, `classifier.{weight,bias}`, from 1 input to 2
//! /// classes.
//! struct Logistic {
//!     store: ParamStore,
//!     classifier: Linear,
//! }
//!
//! impl Logistic {
//!     fn new(seed: u64) -> Result<Self> {
//!         let store = ParamStore::new();
//!         let mut rng = Rng::seed_from_u64(seed);
//!         let (w, b) = init::torch_linear(2, 1, &mut rng, DType::F32, &Device::Cpu)?;
//!         store.insert("classifier.weight", &w, TensorKind::Parameter)?;
//!         store.insert("classifier.bias", &b, TensorKind::Parameter)?;
//!         let classifier = linear(&store, "classifier", 1, 2, true)?;
//!         Ok(Self { store, classifier })
//!     }
//! }
//!
//! impl TrainModel for Logistic {
//!     type Inputs = Tensor;
//!
//!     fn store(&self) -> &ParamStore {
//!         &self.store
//!     }
//!
//!     fn forward_t(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
//!         Ok(self.classifier.forward(x)?)
//!     }
//!
//!     fn loss(&self, logits: &Tensor, targets: &Tensor, label_smoothing: f64) -> Result<Tensor> {
//!         Ok(finetune_kernels::ops::cross_entropy(logits, targets, label_smoothing, None)?)
//!     }
//!
//!     fn problem(&self) -> Problem {
//!         Problem::SingleLabel { labels: vec!["negative".into(), "positive".into()] }
//!     }
//!
//!     fn layout(&self) -> ParamLayout {
//!         // Everything is head; no numbered layers.
//!         ParamLayout::new(["classifier.*"], |_| None)
//!     }
//!
//!     fn export(&self, dir: &Path) -> Result<()> {
//!         self.store.save(&dir.join("model.safetensors"), |n| Some(n.to_string()))
//!     }
//! }
//!
//! /// Eight points on a line: class 1 right of zero.
//! struct Points;
//!
//! impl BatchSource<Tensor> for Points {
//!     fn len(&self) -> usize {
//!         8
//!     }
//!
//!     fn batch(&self, indices: &[usize], _epoch: u64, _train: bool) -> Result<Batch<Tensor>> {
//!         let x: Vec<f32> = indices.iter().map(|&i| i as f32 - 3.5).collect();
//!         let y: Vec<u32> = indices.iter().map(|&i| u32::from(i >= 4)).collect();
//!         Ok(Batch {
//!             inputs: Tensor::from_vec(x, (indices.len(), 1), &Device::Cpu)?,
//!             targets: Tensor::new(y.as_slice(), &Device::Cpu)?,
//!             teacher: None,
//!         })
//!     }
//! }
//!
//! fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
//!     let model = Logistic::new(0)?;
//!     let config = TrainConfig {
//!         epochs: 2,
//!         batch_size: 4,
//!         progress: false,
//!         ..Default::default()
//!     };
//!     let output = tempfile::tempdir()?; // checkpoints, metrics.jsonl, the export
//!     let learner = Learner::new(&model, config, output.path())?;
//!     let (outcome, summary) = learner.fit(&Points, None, None)?;
//!     println!("{outcome:?}: {summary:#?}");
//!     // 8 samples in batches of 4: 2 optimizer steps per epoch.
//!     assert_eq!((outcome, summary.global_step), (Outcome::Completed, 4));
//!     assert!(output.path().join("checkpoint-4").is_dir());
//!     Ok(())
//! }
//! ```

#![warn(missing_docs)]

pub mod checkpoint;
pub mod class_weights;
pub mod config;
pub mod distill;
pub mod distributed;
pub mod early_stop;
pub mod ema;
pub mod entities;
pub mod eval_strategy;
pub mod evaluate;
pub mod feature_cache;
pub mod foreign_keys;
pub mod grad_scaler;
pub mod hf_log;
pub mod learner;
pub mod log;
pub mod metrics;
pub mod order;
pub mod output_dir;
pub mod plot;
mod prefetch;
pub mod reptile;
pub mod sample_bar;
pub mod schedule_args;
pub mod settings;
pub mod source;
pub mod summary;
pub mod tensorboard;
pub mod unfreeze;

pub use config::{OnNan, ReportTo, TrainConfig};
pub use distill::{DistillReport, Teacher, TeacherModel};
pub use entities::{EntityMetrics, TypeScores};
pub use eval_strategy::EvalStrategy;
pub use feature_cache::FeatureCacheReport;
pub use finetune_core::model::{self, HeadSplit, Output, ParamLayout, Problem, TrainModel};
pub use learner::{Learner, Outcome};
pub use metrics::{
    ClassificationMetrics, EvalMetrics, Metric, MultiLabelMetrics, RegressionMetrics,
};
pub use output_dir::{OutputDir, OutputMode};
pub use sample_bar::SampleBar;
pub use schedule_args::ScheduleArgs;
pub use source::{Batch, BatchSource};
pub use summary::TrainSummary;
pub use unfreeze::UnfreezeSchedule;
