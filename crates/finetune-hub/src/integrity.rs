//! After hf-hub stores a file, its content is checked against the name hf-hub gave the blob: the
//! Hub's etag, which is the sha256 of an LFS file (weights, parquet) and the git blob sha1 of a
//! regular file. hf-hub itself never checks, so a body cut short without a transport error (no
//! `Content-Length`, a misbehaving proxy) would otherwise sit in the cache as complete.

use crate::error::{Error, Result};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

enum Expected {
    Sha256(String),
    GitSha1(String),
}

fn expected(etag: &str) -> Option<Expected> {
    let hex = etag.bytes().all(|b| b.is_ascii_hexdigit());
    match etag.len() {
        64 if hex => Some(Expected::Sha256(etag.to_ascii_lowercase())),
        40 if hex => Some(Expected::GitSha1(etag.to_ascii_lowercase())),
        _ => None,
    }
}

pub(crate) fn hash_file<D: Digest>(mut hasher: D, path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks the snapshot entry `pointer` (a symlink into `blobs/{etag}`). On a mismatch, removes
/// both the blob and the pointer so no later run takes the file for complete.
pub(crate) fn verify(pointer: &Path, repo: &str, file: &str) -> Result<()> {
    let Ok(target) = std::fs::read_link(pointer) else {
        return Ok(()); // not a symlink (hf-hub renames on systems without them): nothing to compare
    };
    let etag = target
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let Some(want) = expected(&etag) else {
        return Ok(()); // a mirror with other etags: nothing to compare against
    };
    let blob = pointer
        .parent()
        .expect("a snapshot entry has a parent")
        .join(&target);
    let got = match &want {
        Expected::Sha256(_) => hash_file(Sha256::new(), &blob),
        Expected::GitSha1(_) => {
            let len = std::fs::metadata(&blob)
                .map_err(|e| Error::io(&blob, e))?
                .len();
            let mut h = Sha1::new();
            h.update(format!("blob {len}\0").as_bytes());
            hash_file(h, &blob)
        }
    }
    .map_err(|e| Error::io(&blob, e))?;
    let (kind, want) = match want {
        Expected::Sha256(w) => ("sha256", w),
        Expected::GitSha1(w) => ("git-sha1", w),
    };
    if got == want {
        return Ok(());
    }
    let _ = std::fs::remove_file(pointer);
    let _ = std::fs::remove_file(&blob);
    Err(Error::repo(
        repo,
        format!("downloaded `{file}` does not match its {kind} {want} (got {got}): the download was incomplete or corrupted and has been removed from the cache; run again"),
    ))
}
