//! The error type of `finetune-hub`. Every message names the repository (with its revision), the
//! file, and where it looked; none ever contains the access token.

use crate::spec::{RepoId, RepoKind};
use std::path::PathBuf;

/// Everything that can go wrong turning a model or dataset name into local files. The
/// variants sort failures by what the user can do about them; `Display` gives the whole
/// message, ready to print.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text given as a model or dataset is neither an existing path nor a valid Hub id
    /// (or names a path that does not exist).
    #[error("`{spec}` is neither an existing file or folder nor a Hub id ({why}); Hub ids look like `name`, `org/name` or `org/name@revision`")]
    BadSpec {
        /// The text as the user gave it (with `@revision` when one was given).
        spec: String,
        /// Which rule it broke.
        why: String,
    },

    /// The Hub answered 404 for the repository or its revision (a private repository asked
    /// for without a token looks the same).
    #[error("{repo}: no such repository or revision on the Hub ({endpoint}){hint}")]
    RepoNotFound {
        /// The repository as `org/name@revision` (prefixed `dataset ` for datasets).
        repo: String,
        /// The Hub's base URL that was asked (`HF_ENDPOINT`).
        endpoint: String,
        /// What to check, starting with `; ` so it reads on from the message.
        hint: &'static str,
    },

    /// The repository exists but the Hub answered 404 for one of its files.
    #[error("{repo}: file `{file}` not found on the Hub ({url})")]
    FileNotFound {
        /// The repository as `org/name@revision`.
        repo: String,
        /// The file's name relative to the repository root.
        file: String,
        /// The URL that answered 404.
        url: String,
    },

    /// The Hub answered 401 or 403: a private or gated repository, with no token or a token
    /// without access.
    #[error("{repo}: the Hub refused access (HTTP {status}): the repository is private or gated; {hint}")]
    AccessDenied {
        /// The repository as `org/name@revision`.
        repo: String,
        /// The HTTP status: 401 or 403.
        status: u16,
        /// How to get access; differs depending on whether a token was sent.
        hint: &'static str,
    },

    /// Any other HTTP error status: a 5xx while downloading a file (a 5xx to the listing falls
    /// back to the cache instead), or a 4xx other than 401, 403, 404 and 416.
    #[error("{repo}: `{file}`: the Hub answered HTTP {status} ({url}); nothing was added to the cache, try again later")]
    Server {
        /// The repository as `org/name@revision`.
        repo: String,
        /// The file being fetched, or `(file listing)` for the listing request.
        file: String,
        /// The HTTP status the Hub answered.
        status: u16,
        /// The URL that answered it.
        url: String,
    },

    /// A download broke off, the Hub could not be reached while a file was needed, or a
    /// partial download left by an earlier run could not be resumed. At most a
    /// `blobs/*.part` file is left behind, never a snapshot entry.
    #[error("{repo}: downloading `{file}` failed: {msg}; no complete file was added to the cache ({cache}); running again resumes the download")]
    Transfer {
        /// The repository as `org/name@revision`.
        repo: String,
        /// The file being fetched, or `(file listing)`.
        file: String,
        /// What the transport reported.
        msg: String,
        /// The repository's `blobs/` folder, where partial downloads are kept.
        cache: PathBuf,
    },

    /// A needed file is not in the cache and the Hub could not be asked (offline mode, or
    /// unreachable). Boxed: the largest variant, kept off every `Result`'s size.
    #[error("{0}")]
    NotCached(Box<NotCached>),

    /// A file name from the network (a listing, an index's `weight_map`) that is absolute or
    /// climbs out of the snapshot folder; see [`crate::safe_name::is_safe`].
    #[error(
        "{repo}: refusing file name `{name}` from {origin}: it would escape the snapshot folder"
    )]
    UnsafePath {
        /// The repository (or local folder) the name came from.
        repo: String,
        /// The refused name, as given.
        name: String,
        /// Where it was read: the dataset's listing, or the `weight_map` of an index file.
        origin: String,
    },

    /// A repository or folder whose contents do not make what was asked for (no weights, no
    /// `config.json`, a pickle not allowed, no such dataset config or split, a corrupt
    /// download, …), or a Hub client that could not be set up.
    #[error("{repo}: {msg}")]
    Repo {
        /// The repository as `org/name@revision`, or the local path.
        repo: String,
        /// What is wrong, as a sentence that follows the repository's name.
        msg: String,
    },

    /// Pushing a folder to the Hub was refused or broke off (see [`crate::upload`]): the
    /// message says at which step, why, and what to do. Nothing was committed unless the
    /// message says the commit's fate is unknown.
    #[error("{repo}: {msg}")]
    Push {
        /// The repository pushed to (`org/name`), or the local folder when the folder is at
        /// fault.
        repo: String,
        /// What went wrong and what to do, as a sentence that follows the repository's name.
        msg: String,
    },

    /// The cause is part of the message (not a `source`), so a printed chain says it once.
    #[error("{path}: {err}")]
    Io {
        /// The file or folder read or written.
        path: PathBuf,
        /// The operating system's error.
        err: std::io::Error,
    },
}

/// A file needed but neither in the cache nor obtainable from the Hub.
#[derive(Debug)]
pub struct NotCached {
    /// The repository at the revision asked for.
    pub repo: RepoId,
    /// The first file found missing (for a dataset with no snapshot, a description of the data
    /// files wanted).
    pub file: String,
    /// The cache folder looked in (and what was missing there).
    pub searched: String,
    /// Why the Hub was not asked: offline mode, or the failure that stopped it.
    pub reason: String,
    /// Nothing of the repository is in the cache (no folder for it at all).
    pub nothing_cached: bool,
}

impl std::fmt::Display for NotCached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.repo;
        if self.nothing_cached {
            // Most often a mistyped local path: say that first, briefly.
            let shown = match r.revision.as_str() {
                "main" => r.name.clone(),
                _ => r.to_string(),
            };
            return write!(
                f,
                "{shown}: no such local folder, and as a Hub id: {}, and nothing of it is in the \
                 cache ({})",
                self.reason, self.searched
            );
        }
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

/// `Result` with this crate's [`Error`].
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
