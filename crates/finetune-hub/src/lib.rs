//! `finetune-hub`: turns what a user names — a Hub id (`bert-base-uncased`,
//! `sentence-transformers/all-MiniLM-L6-v2`, `timm/resnet50.a1_in1k@<revision>`, a dataset
//! `org/name`), a local folder or a file — into local files: an existing path as is, else the
//! Hugging Face cache (same layout and environment variables as Python's `huggingface_hub`),
//! else a download through the `hf-hub` crate, with progress bars, offline mode, checksums and
//! refusal of file names that would escape the cache. The other way, [`upload`] pushes a model
//! folder to a Hub repository in one commit through the Hub's HTTP API, as `huggingface_hub`'s
//! `upload_folder` does.
//!
//! It knows which files make a model or a dataset split, never what is in them: no model, no
//! tokenizer, no trainer, no data format.
//!
//! # Example
//!
//! What the user typed decides where the files come from: an existing path is used as it is;
//! anything else must be a Hub id.
//!
//! ```
//! use finetune_hub::{resolve_model, HubConfig, ModelOptions, Origin, RepoKind, Spec};
//!
//! // A Hub id: `name`, `org/name` or `org/name@revision` (`main` when none is given).
//! let Spec::Hub(repo) = Spec::parse("timm/resnet50.a1_in1k@v1.0", RepoKind::Model)? else {
//!     unreachable!("no such folder here");
//! };
//! assert_eq!((repo.name.as_str(), repo.revision.as_str()), ("timm/resnet50.a1_in1k", "v1.0"));
//! assert_eq!(repo.folder_name(), "models--timm--resnet50.a1_in1k");
//! let Spec::Hub(repo) = Spec::parse("bert-base-uncased", RepoKind::Model)? else {
//!     unreachable!("no such folder here");
//! };
//! assert_eq!(repo.revision, "main");
//! // Text that looks like a path but names none is refused, not sent to the Hub.
//! assert!(Spec::parse("./no/such/folder", RepoKind::Model).is_err());
//!
//! // A local folder: its files are picked out, with no cache and no network involved.
//! let dir = std::env::temp_dir().join(format!("finetune-hub-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! std::fs::write(dir.join("config.json"), "{}")?;
//! std::fs::write(dir.join("model.safetensors"), b"")?;
//! std::fs::write(dir.join("vocab.txt"), "[PAD]\n")?;
//! let cfg = HubConfig::new(dir.join("cache"));
//! let files = resolve_model(dir.to_str().unwrap(), &cfg, &ModelOptions::default())?;
//! assert_eq!(files.origin, Origin::Local);
//! assert_eq!(files.weights.files, [dir.join("model.safetensors")]);
//! assert_eq!(files.tokenizer, [dir.join("vocab.txt")]);
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A Hub id goes through the cache and, when a file is missing there, the network
//! (`HF_HUB_OFFLINE=1` forbids that):
//!
//! ```no_run
//! use finetune_hub::{resolve_model, HubConfig, ModelOptions};
//!
//! let cfg = HubConfig::from_env();
//! let files = resolve_model(
//!     "sentence-transformers/all-MiniLM-L6-v2",
//!     &cfg,
//!     &ModelOptions::default(),
//! )?;
//! println!("{} from {:?}", files.dir.display(), files.origin);
//! # Ok::<(), finetune_hub::Error>(())
//! ```

#![warn(missing_docs)]

mod blob_lock;
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
pub mod upload;

pub use config::{HubConfig, Token};
pub use dataset::{DatasetFiles, DatasetOptions};
pub use error::{Error, Result};
pub use files::{ModelFiles, Weights};
pub use resolve::{
    resolve_dataset, resolve_hub_dataset, resolve_hub_model, resolve_model, ModelOptions, Origin,
};
pub use spec::{RepoId, RepoKind, Spec};
