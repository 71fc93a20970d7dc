//! Which files of a folder a push sends, and what the Hub is told about each (size, sha256, the
//! first 512 bytes). The folder must hold a model as [`crate::resolve_model`] finds one in a
//! local folder (a `config.json` and its weights, every shard present), so a mistyped folder
//! or a run that never exported is refused before any request.
//!
//! Left out, as `huggingface_hub` and transformers' `push_to_hub` leave them out: hidden files
//! and folders (a name starting with `.`: `.git`, lock files, temporary folders) and a training
//! output's `checkpoint-*` folders. Everything else goes, `runs/` (TensorBoard) included.

use crate::error::{Error, Result};
use crate::integrity;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// How many leading bytes the Hub sees to decide between a regular and an LFS file.
const SAMPLE_BYTES: usize = 512;

/// One file to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Its path in the repository, `/`-separated.
    pub path_in_repo: String,
    /// Where it is on disk.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Hex sha256 of its content (the LFS object id).
    pub sha256: String,
    /// Its first 512 bytes.
    pub sample: Vec<u8>,
}

/// Whether a repository path is pushed: no hidden component, not inside a top-level
/// `checkpoint-*` folder.
pub fn is_pushed(path_in_repo: &str) -> bool {
    let mut parts = path_in_repo.split('/');
    let first = parts.next().unwrap_or("");
    let in_checkpoint = first.starts_with("checkpoint-") && path_in_repo.contains('/');
    !in_checkpoint && !path_in_repo.split('/').any(|c| c.starts_with('.'))
}

/// The files of `folder` to push (see the module docs), sorted, each hashed. Errors name the
/// folder: not a folder, not a model, or a file that cannot be read.
pub fn collect(folder: &Path) -> Result<Vec<LocalFile>> {
    let label = folder.display().to_string();
    let refuse = |msg: String| Error::Push {
        repo: label.clone(),
        msg,
    };
    if !folder.is_dir() {
        let what = if folder.exists() {
            "is not a folder"
        } else {
            "no such folder"
        };
        return Err(refuse(format!(
            "{what}; give the folder of a trained or exported model"
        )));
    }
    crate::files::local_model(folder, true).map_err(|e| {
        let why = match e {
            Error::Repo { msg, .. } => msg,
            other => other.to_string(),
        };
        refuse(format!(
            "not a model folder ({why}); push a training output or a `finetune export` folder"
        ))
    })?;
    crate::cache::list_files(folder)
        .into_iter()
        .filter(|f| is_pushed(f))
        .map(|f| describe(folder, f))
        .collect()
}

/// Size, sha256 and sample of `folder/rel`.
fn describe(folder: &Path, rel: String) -> Result<LocalFile> {
    let path = folder.join(&rel);
    let io = |e| Error::io(&path, e);
    let size = std::fs::metadata(&path).map_err(io)?.len();
    let sha256 = integrity::hash_file(Sha256::new(), &path).map_err(io)?;
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    std::fs::File::open(&path)
        .and_then(|f| f.take(SAMPLE_BYTES as u64).read_to_end(&mut sample))
        .map_err(io)?;
    Ok(LocalFile {
        path_in_repo: rel,
        path,
        size,
        sha256,
        sample,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_files_and_checkpoints_stay_home() {
        assert!(is_pushed("model.safetensors"));
        assert!(is_pushed("runs/events.out.tfevents.1.host"));
        assert!(is_pushed("checkpoint-notes.txt"));
        assert!(!is_pushed("checkpoint-200/model.safetensors"));
        assert!(!is_pushed(".lock"));
        assert!(!is_pushed(".git/config"));
        assert!(!is_pushed("runs/.tmp/x"));
    }

    #[test]
    fn a_model_folder_is_listed_hashed_and_anything_else_refused() {
        let dir = std::env::temp_dir().join(format!("ft-push-folder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("checkpoint-1")).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        let e = collect(&dir).unwrap_err().to_string();
        assert!(e.contains("not a model folder"), "{e}");
        assert!(e.starts_with(&dir.display().to_string()), "{e}");
        let weights = vec![7u8; 1000];
        std::fs::write(dir.join("model.safetensors"), &weights).unwrap();
        std::fs::write(dir.join(".lock"), "").unwrap();
        std::fs::write(dir.join("checkpoint-1/model.safetensors"), "x").unwrap();
        let files = collect(&dir).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.path_in_repo.as_str()).collect();
        assert_eq!(names, ["config.json", "model.safetensors"]);
        let w = &files[1];
        assert_eq!(w.size, 1000);
        assert_eq!(w.sample, weights[..512]);
        assert_eq!(w.sha256, integrity::hex(&Sha256::digest(&weights)));
        let e = collect(&dir.join("absent")).unwrap_err().to_string();
        assert!(e.contains("no such folder"), "{e}");
        let e = collect(&dir.join("config.json")).unwrap_err().to_string();
        assert!(e.contains("is not a folder"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
