//! Crash-safe file writing: every output goes to a temporary sibling and is renamed into place,
//! so a crash or a full disk never leaves a half-written file under the final name.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary sibling used while `path` is being written.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `path` through `write` (which receives the temporary path), then fsyncs and renames it
/// into place. On error the temporary file is removed and `path` is untouched.
pub fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temp_sibling(path);
    let result = write(&tmp).and_then(|()| {
        let f = std::fs::File::open(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        pause_point(&tmp, path);
        // Some writers (safetensors) create owner-only files; outputs are ordinary files.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let perms = std::fs::Permissions::from_mode(0o644);
            std::fs::set_permissions(&tmp, perms).map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else if let Some(dir) = path.parent() {
        // Make the rename itself durable; not all platforms can open a directory, so best effort.
        if let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) {
            let _ = d.sync_all();
        }
    }
    result
}

/// The environment variable of the crash-test hook: see `pause_point`.
pub const PAUSE_ENV: &str = "FINETUNE_TEST_PAUSE_BEFORE_RENAME";

/// Test hook beside [`PAUSE_ENV`]: a paused process goes on once the file this variable names
/// exists (a test's way to hold a run at a known point while it tries something else).
pub const CONTINUE_ENV: &str = "FINETUNE_TEST_CONTINUE_WHEN";

/// Crash-test hook: when `FINETUNE_TEST_PAUSE_BEFORE_RENAME` is set and `path` contains each of
/// its `&`-separated parts, prints `paused before renaming TMP to PATH` on stderr and waits —
/// forever, so that a test can SIGKILL the process at the worst moment (the temporary file
/// complete, the rename not done), or until the file named by [`CONTINUE_ENV`] exists. Unset
/// (always, outside tests), it costs one cached environment lookup.
fn pause_point(tmp: &Path, path: &Path) {
    static PATTERN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let pattern = PATTERN.get_or_init(|| std::env::var(PAUSE_ENV).ok().filter(|p| !p.is_empty()));
    if let Some(p) = pattern {
        let path_text = path.to_string_lossy();
        if p.split('&').all(|part| path_text.contains(part)) {
            eprintln!(
                "paused before renaming {} to {}",
                tmp.display(),
                path.display()
            );
            let go_on = std::env::var_os(CONTINUE_ENV).map(PathBuf::from);
            while !go_on.as_deref().is_some_and(Path::exists) {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically(path, |tmp| {
        let cannot_write = |e: std::io::Error| Error::Record {
            path: path.to_path_buf(),
            msg: format!("cannot write: {e}"),
        };
        let mut f = std::fs::File::create(tmp).map_err(cannot_write)?;
        f.write_all(bytes).map_err(cannot_write)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_previous_file_and_no_temp() {
        let dir = std::env::temp_dir().join(format!("ft-fsutil-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.json");
        write_bytes_atomically(&p, b"first").unwrap();
        let r = write_atomically(&p, |tmp| {
            std::fs::write(tmp, b"partial").unwrap();
            Err(Error::config("disk full"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        assert!(!temp_sibling(&p).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
