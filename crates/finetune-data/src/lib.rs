//! `finetune-data`: everything between files on disk and batches of tensors.
//!
//! - [`text`]: CSV, TSV, JSONL and Parquet readers yielding `(text, optional pair, label id)`
//!   records; [`labels`] maps raw labels to ids; [`target`] makes them what a model learns
//!   (a class, `;`-separated labels, a number); [`split`] makes (grouped) validation splits.
//! - [`tokens`]: token classification data: CoNLL files and JSONL/Parquet `tokens` +
//!   `ner_tags` columns as sentences of words with one raw tag each.
//! - [`image`]: ImageFolder, CSV of `path,label` (`;`-separated labels for multi-label), IDX
//!   (MNIST), CIFAR binaries, pixel CSVs and Hub parquet image datasets, decoded with the
//!   `image` crate.
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
//!
//! # Example
//!
//! Reading a small CSV, fitting the label map on it and encoding the rows (eval data would be
//! encoded with the same map, so an unseen label is an error naming its file and row):
//!
//! ```
//! use finetune_data::text::{read_tables, TextReadOptions};
//! use finetune_data::LabelMap;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("finetune-data-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let csv = dir.join("train.csv");
//! let rows = "text,label\n\"A fine film, well acted.\",pos\nDull and far too long.,neg\n";
//! std::fs::write(&csv, rows)?;
//!
//! // Columns `text` and `label`, format from the extension, stop on a bad row.
//! let table = read_tables(&[csv], &TextReadOptions::default())?;
//! let labels = LabelMap::fit(table.rows.iter().map(|r| r.label.as_str()))?;
//! assert_eq!(labels.names(), ["neg", "pos"]); // string labels: sorted, ids 0..n
//!
//! let data = table.encode(&labels)?;
//! for r in &data.records {
//!     let id = r.target.class().unwrap_or(0);
//!     println!("{} -> {id} ({})", r.text, labels.name(id).unwrap_or("?"));
//! }
//! assert_eq!(data.records[0].target.class(), Some(1));
//! assert_eq!(data.skipped.count(), 0);
//! std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! An image pipeline is a [`transforms::Compose`] run with the sample's own generator, so the
//! same (seed, epoch, index) always gives the same augmentation:
//!
//! ```
//! use finetune_data::image::Image;
//! use finetune_data::seed::sample_rng;
//! use finetune_data::transforms::{
//!     CenterCrop, Compose, Interpolation, Normalize, RandomHorizontalFlip, Resize, ResizeTo,
//!     ToTensor,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let img = Image::new(64, 48, 3, (0..64 * 48 * 3).map(|i| (i % 251) as u8).collect());
//! let pipeline = Compose::new()
//!     .then(Resize::new(ResizeTo::Shorter(40), Interpolation::Bilinear)) // 64x48 -> 53x40
//!     .then(CenterCrop::new(32, 32))
//!     .then(RandomHorizontalFlip::new(0.5))
//!     .then(ToTensor)
//!     .then(Normalize::new(vec![0.5; 3], vec![0.5; 3])?);
//!
//! let t = pipeline.run(img.clone(), &mut sample_rng(42, 0, 7))?; // seed, epoch, index
//! assert_eq!((t.channels, t.height, t.width), (3, 32, 32));
//! assert_eq!(pipeline.run(img, &mut sample_rng(42, 0, 7))?, t);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod bad;
pub mod dataset;
pub mod image;
pub mod labels;
pub mod parquet_rows;
pub mod seed;
pub mod snapshot;
pub mod split;
pub mod target;
pub mod text;
pub mod tokens;
pub mod transforms;

pub use bad::{OnBadSample, SkipLog};
pub use dataset::Dataset;
pub use labels::LabelMap;
