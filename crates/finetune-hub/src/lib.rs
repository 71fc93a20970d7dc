//! `finetune-hub`: turns what a user names — a Hub id (`bert-base-uncased`,
//! `sentence-transformers/all-MiniLM-L6-v2`, `timm/resnet50.a1_in1k@<revision>`, a dataset
//! `org/name`), a local folder or a file — into local files: an existing path as is, else the
//! Hugging Face cache (same layout and environment variables as Python's `huggingface_hub`),
//! else a download through the `hf-hub` crate, with progress bars, offline mode, checksums and
//! refusal of file names that would escape the cache.
//!
//! It knows which files make a model or a dataset split, never what is in them: no model, no
//! tokenizer, no trainer, no data format.

pub mod cache;
pub mod config;
pub mod dataset;
mod download;
pub mod error;
pub mod files;
mod integrity;
pub mod progress;
pub mod resolve;
pub mod safe_name;
pub mod spec;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{HubConfig, Token};
pub use dataset::{DatasetFiles, DatasetOptions};
pub use error::{Error, Result};
pub use files::{ModelFiles, Weights};
pub use resolve::{
    resolve_dataset, resolve_hub_dataset, resolve_hub_model, resolve_model, ModelOptions, Origin,
};
pub use spec::{RepoId, RepoKind, Spec};
