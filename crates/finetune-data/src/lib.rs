//! `finetune-data`: everything between files on disk and batches of tensors.
//!
//! - [`text`]: CSV, TSV, JSONL and Parquet readers yielding `(text, optional pair, label id)`
//!   records; [`labels`] maps raw labels to ids; [`split`] makes (grouped) validation splits;
//!   [`bucket`] plans length-bucketed batches from token lengths and reports padding waste.
//! - [`image`]: ImageFolder, CSV of `path,label`, IDX (MNIST), CIFAR binaries, pixel CSVs and
//!   Hub parquet image datasets, decoded with the `image` crate.
//! - [`transforms`]: torchvision-semantics augmentations, seeded per sample, and the timm-style
//!   train/eval presets built from a model's `pretrained_cfg`.
//! - [`loader`]: seeded shuffling, epochs, `drop_last`, decoding and augmentation on a thread
//!   pool with prefetch; every sample's RNG comes from (seed, epoch, index) ([`seed`]) so batches
//!   do not depend on the thread count.
//! - [`snapshot`]: which files of a local dataset-repo snapshot belong to which split.
//!
//! It knows no model and no trainer. Tokenisation is the model crate's job: text batches leave
//! this crate as records, and bucketing takes token lengths (or a closure that computes them).
//! Bad samples are errors naming file and row, or — with [`bad::OnBadSample::Skip`] — skipped
//! and counted in a [`bad::SkipLog`]; nothing is dropped silently.

pub mod bad;
pub mod bucket;
pub mod image;
pub mod labels;
pub mod loader;
pub mod parquet_rows;
pub mod seed;
pub mod snapshot;
pub mod split;
pub mod text;
pub mod transforms;

pub use bad::{OnBadSample, SkipLog};
pub use labels::LabelMap;
pub use loader::{BatchSampler, Dataset, Loader, LoaderConfig, Sampler};
