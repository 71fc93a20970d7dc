//! The cache's per-blob lock, where Python's `huggingface_hub` keeps it:
//! `{cache}/.locks/{models--org--name}/{etag}.lock`, an exclusive `flock` held while the blob
//! is downloaded. Taking the same lock in the same place means that two `finetune` processes,
//! or one of ours and a Python one, never download one file at the same time: the second waits,
//! then finds the blob complete and only links it.
//!
//! hf-hub locks `blobs/{etag}.lock` itself, but gives up after five seconds and downloads again
//! after waiting; this lock is taken first, so hf-hub's is always free when it asks.

use crate::error::{Error, Result};
use crate::spec::RepoId;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// A held blob lock; released when dropped (the file stays, as Python leaves it).
#[derive(Debug)]
pub(crate) struct BlobLock {
    _file: Option<File>,
}

/// `{cache}/.locks/{repo folder}/{etag}.lock`.
pub(crate) fn lock_path(cache_dir: &Path, repo: &RepoId, etag: &str) -> PathBuf {
    cache_dir
        .join(".locks")
        .join(repo.folder_name())
        .join(format!("{etag}.lock"))
}

impl BlobLock {
    /// Takes the lock of blob `etag`, waiting for another holder (calling `on_wait` once
    /// before waiting). A filesystem without locks gives an unlocked pass, as Python's soft
    /// fallback does, after a warning.
    pub(crate) fn acquire(
        cache_dir: &Path,
        repo: &RepoId,
        etag: &str,
        on_wait: impl FnOnce(&Path),
    ) -> Result<BlobLock> {
        let path = lock_path(cache_dir, repo, etag);
        let io =
            |e: std::io::Error| Error::repo(repo.to_string(), format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let unsupported = |e: &std::io::Error| {
            e.kind() == std::io::ErrorKind::Unsupported
                || matches!(e.raw_os_error(), Some(37 | 38 | 95)) // ENOLCK, ENOSYS, EOPNOTSUPP
        };
        let waited = match file.try_lock() {
            Ok(()) => Ok(()),
            Err(TryLockError::WouldBlock) => {
                on_wait(&path);
                file.lock()
            }
            Err(TryLockError::Error(e)) => Err(e),
        };
        match waited {
            Ok(()) => Ok(BlobLock { _file: Some(file) }),
            Err(e) if unsupported(&e) => {
                eprintln!(
                    "warning: {}: the filesystem does not support file locks ({e}); a download \
                     running at the same time in another process would not be detected",
                    path.display()
                );
                Ok(BlobLock { _file: None })
            }
            Err(e) => Err(io(e)),
        }
    }
}
