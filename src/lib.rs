//! `candle-finetune`: fine-tune pretrained Hugging Face Hub models with candle — what
//! `transformers.Trainer` and timm's train script are to PyTorch. This crate is the front door:
//! the run settings ([`settings`]), the model families ([`families`]), the tasks that turn
//! settings into a fine-tuned, evaluated, exported model ([`tasks`]), benchmarks ([`mod@bench`]),
//! the `finetune` binary, and re-exports of the workspace's crates.
//!
//! Fine-tuning a text classifier from Rust (the `finetune train` flags are the same fields):
//!
//! ```no_run
//! use candle_finetune::core::{OptimizerKind, ScheduleKind};
//! use candle_finetune::settings::{RunSettings, Task};
//! use candle_finetune::tasks::{self, text::TextClassifier};
//! use std::path::Path;
//!
//! fn main() -> anyhow::Result<()> {
//!     candle_finetune::init(); // process tuning, first thing in main
//!     let mut s = RunSettings::new(
//!         Task::TextClassification,
//!         "sentence-transformers/all-MiniLM-L6-v2", // a Hub id or a local folder
//!         "runs/reviews",
//!     );
//!     s.data.train = vec!["assets/rotten_tomatoes/train.csv".into()];
//!     s.data.test = vec!["assets/rotten_tomatoes/test.csv".into()];
//!     s.text.max_length = Some(64);
//!     s.train.freeze = vec!["bert.embeddings.word_embeddings.*".into()];
//!     (s.train.optimizer, s.train.schedule) = (OptimizerKind::AdamW, ScheduleKind::Cosine);
//!     (s.train.lr, s.train.warmup_ratio, s.train.epochs) = (5e-5, Some(0.1), 1);
//!     let report = tasks::train(&s)?; // checkpoints, logs and the export in runs/reviews
//!     println!("test: {:?}", report.test.and_then(|m| m.classification));
//!     let clf = TextClassifier::load("runs/reviews", &Default::default(), &candle_core::Device::Cpu)?;
//!     println!("{:?}", clf.predict(&["A joy from start to finish."], 2)?);
//!     tasks::export(Path::new("runs/reviews"), Path::new("runs/reviews-f16"), Some(candle_core::DType::F16))?;
//!     Ok(())
//! }
//! ```
//!
//! **Process tuning.** [`init`] makes two process-wide settings a library must not make on its
//! own: it keeps freed memory mapped between training steps (glibc's allocator would otherwise
//! return it to the system and fault it in again every step) and makes candle's idle worker
//! threads hand their cores back to rayon sooner. Call it first thing in `main`, before any
//! thread or candle op exists; training is correct without it, only slower (the `finetune`
//! binary and the examples call it). `FINETUNE_MALLOC=default` keeps the allocator's defaults.

#![warn(missing_docs)]

pub mod bench;
pub mod families;
pub mod resume;
pub mod settings;
pub mod tasks;
pub mod usage;

pub use finetune_bert as bert;
pub use finetune_core as core;
pub use finetune_data as data;
pub use finetune_distilbert as distilbert;
pub use finetune_hub as hub;
pub use finetune_kernels as kernels;
pub use finetune_resnet as resnet;
pub use finetune_roberta as roberta;
pub use finetune_train as train;
pub use finetune_vit as vit;

/// Tunes the process for training: the allocator keeps freed memory for the next step, and
/// candle's idle worker threads soon hand their cores back to rayon's (see
/// [`finetune_kernels::runtime`]). Call it once, first thing in `main`, before any thread or
/// candle op exists; the `finetune` binary and the examples do. Training works without it,
/// only slower. `FINETUNE_MALLOC=default` and a `CANDLE_BARRIER_POOL_SPIN_LIMIT` already in
/// the environment are respected.
pub fn init() -> finetune_kernels::runtime::Tuning {
    finetune_kernels::runtime::init()
}
