//! The Hugging Face cache layout, shared with Python's `huggingface_hub` and `hf-hub`:
//!
//! ```text
//! {cache_dir}/models--org--name/
//!     refs/{revision}               the commit a branch or tag pointed to (no newline)
//!     blobs/{etag}                  file contents, named by sha256 (LFS) or git-sha1
//!     snapshots/{commit}/{file}     symlinks into blobs/
//!     .finetune-listing/{commit}.json   ours: the repo's file list at that commit
//! ```
//!
//! The listing is what lets a second resolution make no request: with it, "every file this run
//! needs is in the snapshot" can be decided offline. Python ignores the extra folder.

use crate::error::{Error, Result};
use crate::spec::{is_commit_hash, RepoId};
use std::path::{Path, PathBuf};

const LISTING_DIR: &str = ".finetune-listing";

/// One repository's folder in the cache.
#[derive(Debug, Clone)]
pub struct RepoCache {
    dir: PathBuf,
}

impl RepoCache {
    /// The folder of `repo` under the cache root `cache_dir` (`$HF_HUB_CACHE`). Touches no
    /// file: the folder need not exist.
    pub fn new(cache_dir: &Path, repo: &RepoId) -> Self {
        RepoCache {
            dir: cache_dir.join(repo.folder_name()),
        }
    }

    /// `{cache_dir}/models--org--name`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `snapshots/{commit}`: the repository's files as they were at `commit`.
    pub fn snapshot(&self, commit: &str) -> PathBuf {
        self.dir.join("snapshots").join(commit)
    }

    /// `blobs/`: file contents named by etag, and `*.part` files of interrupted downloads.
    pub fn blobs(&self) -> PathBuf {
        self.dir.join("blobs")
    }

    /// `refs/{revision}`: the file holding the commit a branch or tag points to (a revision
    /// with `/`, such as `refs/pr/1`, makes subfolders).
    pub fn ref_path(&self, revision: &str) -> PathBuf {
        self.dir.join("refs").join(revision)
    }

    /// The commit the cache knows for `repo.revision`: the revision itself when it is a commit
    /// with a snapshot folder, else the content of `refs/{revision}`.
    pub fn commit_of(&self, repo: &RepoId) -> Option<String> {
        if repo.revision_is_commit() && self.snapshot(&repo.revision).is_dir() {
            return Some(repo.revision.clone());
        }
        let commit = std::fs::read_to_string(self.ref_path(&repo.revision)).ok()?;
        let commit = commit.trim();
        is_commit_hash(commit).then(|| commit.to_string())
    }

    /// Points `refs/{revision}` at `commit` (atomically). Python writes no ref for a revision
    /// that is itself a commit, and neither do we.
    pub fn write_ref(&self, repo: &RepoId, commit: &str) -> Result<()> {
        if repo.revision == commit {
            return Ok(());
        }
        write_atomically(&self.ref_path(&repo.revision), commit.as_bytes())
    }

    /// hf-hub writes `refs/{commit}` when asked for a commit; Python never does. Removes it.
    pub fn drop_commit_ref(&self, repo: &RepoId) {
        if repo.revision_is_commit() {
            let _ = std::fs::remove_file(self.ref_path(&repo.revision));
        }
    }

    /// The file at `name` in snapshot `commit`, if present (a dangling symlink is absent).
    pub fn file(&self, commit: &str, name: &str) -> Option<PathBuf> {
        let p = self.snapshot(commit).join(name);
        p.is_file().then_some(p)
    }

    /// The repository's file list at `commit` as an earlier run stored it
    /// (`.finetune-listing/{commit}.json`); `None` when there is none or it cannot be read.
    pub fn read_listing(&self, commit: &str) -> Option<Vec<String>> {
        let text = std::fs::read_to_string(self.listing_path(commit)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Stores the repository's file list at `commit` (a JSON array of names, written
    /// atomically), so that later runs can resolve without asking the Hub.
    pub fn write_listing(&self, commit: &str, files: &[String]) -> Result<()> {
        let json = serde_json::to_vec(files).expect("a list of strings serialises");
        write_atomically(&self.listing_path(commit), &json)
    }

    fn listing_path(&self, commit: &str) -> PathBuf {
        self.dir.join(LISTING_DIR).join(format!("{commit}.json"))
    }

    /// Every file in snapshot `commit`, as `/`-separated names relative to it: the listing used
    /// when the Hub cannot be asked and we wrote none (a snapshot Python downloaded).
    pub fn snapshot_files(&self, commit: &str) -> Vec<String> {
        list_files(&self.snapshot(commit))
    }

    /// Links `snapshots/{commit}/{name}` to `blobs/{etag}` (a relative symlink, as Python and
    /// hf-hub make it; a copy where symlinks cannot be made) and returns the snapshot path.
    pub fn link_blob(&self, commit: &str, name: &str, etag: &str) -> Result<PathBuf> {
        let link = self.snapshot(commit).join(name);
        let io = |e: std::io::Error| {
            Error::repo(
                self.dir.display().to_string(),
                format!("{}: {e}", link.display()),
            )
        };
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let up = "../".repeat(name.split('/').count() + 1);
        let target = PathBuf::from(format!("{up}blobs/{etag}"));
        // Another process may be reading through the link already (it downloaded the blob and
        // made the link before we got the lock): keep a correct link, and replace any other by
        // a rename, so the path never disappears.
        if std::fs::read_link(&link).is_ok_and(|t| t == target) {
            return Ok(link);
        }
        let leaf = link
            .file_name()
            .map_or("link".into(), |n| n.to_string_lossy().into_owned());
        let tmp = link.with_file_name(format!(".{leaf}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        #[cfg(unix)]
        std::os::unix::fs::symlink(&target, &tmp).map_err(io)?;
        #[cfg(not(unix))]
        std::fs::copy(self.blobs().join(etag), &tmp).map_err(io)?;
        std::fs::rename(&tmp, &link).map_err(io)?;
        Ok(link)
    }

    /// Removes interrupted downloads (`blobs/*.part`), for when hf-hub cannot resume one.
    pub fn remove_partials(&self) {
        if let Ok(entries) = std::fs::read_dir(self.blobs()) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "part") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

/// Files under `root` (following symlinks to files, not into folders), sorted, `/`-separated.
pub(crate) fn list_files(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let is_real_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if is_real_dir {
                walk(&e.path(), &rel, out);
            } else if e.path().is_file() {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, "", &mut out);
    out.sort();
    out
}

/// Writes `bytes` to a temporary sibling, syncs it, then renames it over `path`: readers see the
/// old file or the new one, never half of one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().expect("cache paths have a parent");
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let write = |tmp: &Path| -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write(&tmp).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
