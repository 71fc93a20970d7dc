//! The error type of `finetune-hub`. Every message names the repository (with its revision), the
//! file, and where it looked; none ever contains the access token.

use crate::spec::{RepoId, RepoKind};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{spec}` is neither an existing file or folder nor a Hub id ({why}); Hub ids look like `name`, `org/name` or `org/name@revision`")]
    BadSpec { spec: String, why: String },

    #[error("{repo}: no such repository or revision on the Hub ({endpoint}){hint}")]
    RepoNotFound {
        repo: String,
        endpoint: String,
        hint: &'static str,
    },

    #[error("{repo}: file `{file}` not found on the Hub ({url})")]
    FileNotFound {
        repo: String,
        file: String,
        url: String,
    },

    #[error("{repo}: the Hub refused access (HTTP {status}): the repository is private or gated; {hint}")]
    AccessDenied {
        repo: String,
        status: u16,
        hint: &'static str,
    },

    #[error("{repo}: `{file}`: the Hub answered HTTP {status} ({url}); nothing was added to the cache, try again later")]
    Server {
        repo: String,
        file: String,
        status: u16,
        url: String,
    },

    #[error("{repo}: downloading `{file}` failed: {msg}; no complete file was added to the cache ({cache}); running again resumes the download")]
    Transfer {
        repo: String,
        file: String,
        msg: String,
        cache: PathBuf,
    },

    /// Boxed: the largest variant, kept off every `Result`'s size.
    #[error("{0}")]
    NotCached(Box<NotCached>),

    #[error(
        "{repo}: refusing file name `{name}` from {origin}: it would escape the snapshot folder"
    )]
    UnsafePath {
        repo: String,
        name: String,
        origin: String,
    },

    #[error("{repo}: {msg}")]
    Repo { repo: String, msg: String },

    /// The cause is part of the message (not a `source`), so a printed chain says it once.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
}

/// A file needed but neither in the cache nor obtainable from the Hub.
#[derive(Debug)]
pub struct NotCached {
    pub repo: RepoId,
    pub file: String,
    /// The cache folder looked in (and what was missing there).
    pub searched: String,
    /// Why the Hub was not asked: offline mode, or the failure that stopped it.
    pub reason: String,
}

impl std::fmt::Display for NotCached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.repo;
        let cli = match r.kind {
            RepoKind::Model => "",
            RepoKind::Dataset => " --repo-type dataset",
        };
        write!(
            f,
            "{r}: `{}` is not in the Hugging Face cache (searched {}) and {}. To provide it: run once with network access (or `huggingface-cli download {} --revision {}{cli}` in Python), or pass a local folder holding the files instead of the Hub id",
            self.file, self.searched, self.reason, r.name, r.revision
        )
    }
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            err,
        }
    }

    pub(crate) fn repo(repo: impl ToString, msg: impl Into<String>) -> Self {
        Error::Repo {
            repo: repo.to_string(),
            msg: msg.into(),
        }
    }
}
