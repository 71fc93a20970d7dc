//! `finetune-data`: everything between files on disk and batches of tensors.
//!
//! - [`text`]: CSV, TSV, JSONL and Parquet readers yielding `(text, optional pair, label id)`
//!   records; [`labels`] maps raw labels to ids; [`split`] makes (grouped) validation splits.
//! - [`image`]: ImageFolder, CSV of `path,label`, IDX (MNIST), CIFAR binaries, pixel CSVs and
//!   Hub parquet image datasets, decoded with the `image` crate.
//! - [`transforms`]: torchvision-semantics augmentations, seeded per sample, and the timm-style
//!   train/eval presets built from a model's `pretrained_cfg`.
//! - [`dataset`]: indexed samples, each drawn from its own generator of (seed, epoch, index)
//!   ([`seed`]), so batches do not depend on which thread builds them. The order of samples,
//!   batching and prefetch are the trainer's (`finetune-train`'s step plan).
//! - [`snapshot`]: which files of a local dataset-repo snapshot belong to which split.
//!
//! Bad samples are errors naming file and row, or — with [`bad::OnBadSample::Skip`] — skipped
//! and counted in a [`bad::SkipLog`]; nothing is dropped silently.
//!
//! It knows no model and no trainer. Tokenisation is the model crate's job: text batches leave
//! this crate as records.

pub mod bad;
pub mod dataset;
pub mod image;
pub mod labels;
pub mod parquet_rows;
pub mod seed;
pub mod snapshot;
pub mod split;
pub mod text;
pub mod transforms;

pub use bad::{OnBadSample, SkipLog};
pub use dataset::Dataset;
pub use labels::LabelMap;
