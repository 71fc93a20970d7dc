//! One writer per folder: an exclusive advisory lock (`flock`) on `FOLDER/.finetune.lock`,
//! taken before a run or an export looks at or changes the folder, and released by the
//! operating system when the process ends in any way (a SIGKILLed run leaves no stale lock).
//!
//! The lock file holds the holder's pid and start time, so a refused writer can say who holds
//! the folder. The holder removes the file when it is done; a file left by a killed process is
//! harmless (nobody holds its lock) and is reused. A filesystem without lock support gets a
//! warning, never a wait.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The lock file's name inside the locked folder.
pub const LOCK_FILE: &str = ".finetune.lock";

/// The held lock of a folder; dropping it removes the lock file and releases the lock.
#[derive(Debug)]
pub struct FolderLock {
    file: File,
    path: PathBuf,
}

/// What [`FolderLock::acquire`] got.
#[derive(Debug)]
pub enum Locked {
    /// The folder is this process's until the lock is dropped.
    Held(FolderLock),
    /// The filesystem cannot lock (some network filesystems): the folder is used unlocked; the
    /// text says why, for a warning.
    Unsupported(String),
}

impl FolderLock {
    /// Creates `dir` if needed and takes its lock without waiting. Another holder →
    /// `Error::InUse` naming its pid and start time.
    pub fn acquire(dir: &Path) -> Result<Locked> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        // A holder that is just releasing removes the file; the file we locked must still be the
        // one at `path`, else we lock again.
        for _ in 0..20 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::InUse {
                        path: dir.to_path_buf(),
                        holder: read_holder(&path),
                    })
                }
                Err(TryLockError::Error(e)) if lock_unsupported(&e) => {
                    return Ok(Locked::Unsupported(format!(
                        "{}: the filesystem does not support file locks ({e}); another run \
                         writing into this folder at the same time would not be detected",
                        dir.display()
                    )))
                }
                Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            if same_file(&file, &path) {
                let mut lock = FolderLock { file, path };
                lock.write_holder()?;
                return Ok(Locked::Held(lock));
            }
        }
        Err(Error::io(
            &path,
            std::io::Error::other("the lock file keeps being replaced"),
        ))
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_holder(&mut self) -> Result<()> {
        let text = format!(
            "pid {}, started {}\n",
            std::process::id(),
            clock_utc(SystemTime::now())
        );
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.write_all(text.as_bytes())?;
            f.flush()
        };
        write(&mut self.file).map_err(|e| Error::io(&self.path, e))
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Removed while still locked, and only if it is still ours (an export replaces the
        // folder it locked); the lock itself goes with the file handle.
        if same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether `path` names the file `file` is open on.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// `flock` failures that mean "this filesystem has no locks" rather than a real error.
pub fn lock_unsupported(e: &std::io::Error) -> bool {
    const ENOLCK: i32 = 37;
    const ENOSYS: i32 = 38;
    const EOPNOTSUPP: i32 = 95;
    e.kind() == std::io::ErrorKind::Unsupported
        || matches!(e.raw_os_error(), Some(ENOLCK | ENOSYS | EOPNOTSUPP))
}

/// The holder's line of a lock file (`pid N, started HH:MM:SS UTC`), waiting briefly for a
/// holder that has locked but not yet written it.
fn read_holder(path: &Path) -> Option<String> {
    for _ in 0..10 {
        let mut text = String::new();
        if let Ok(mut f) = File::open(path) {
            let _ = f.read_to_string(&mut text);
        }
        let line = text.lines().next().unwrap_or("").trim().to_string();
        if !line.is_empty() {
            return Some(line);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// `HH:MM:SS UTC` of a moment (the day is rarely in doubt for a run another one waits on).
fn clock_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("folder-lock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn held(dir: &Path) -> FolderLock {
        match FolderLock::acquire(dir).unwrap() {
            Locked::Held(l) => l,
            Locked::Unsupported(w) => panic!("{w}"),
        }
    }

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tmp("second");
        let first = held(&dir);
        let text = std::fs::read_to_string(first.path()).unwrap();
        assert!(text.starts_with(&format!("pid {}, started ", std::process::id())));
        // flock locks belong to the open file: a second open in this process conflicts too.
        let err = FolderLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("is in use by another finetune run"), "{err}");
        assert!(err.contains(&dir.display().to_string()), "{err}");
        drop(first);
        assert!(!dir.join(LOCK_FILE).exists(), "the lock file stayed");
        drop(held(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_left_over_lock_file_nobody_holds_is_taken() {
        let dir = tmp("stale");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(LOCK_FILE), "pid 1, started 00:00:00 UTC\n").unwrap();
        let lock = held(&dir);
        let text = std::fs::read_to_string(lock.path()).unwrap();
        assert!(
            text.starts_with(&format!("pid {},", std::process::id())),
            "{text}"
        );
        drop(lock);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_replaced_lock_file_is_not_removed_by_the_old_holder() {
        let dir = tmp("replaced");
        let lock = held(&dir);
        std::fs::remove_file(lock.path()).unwrap();
        std::fs::write(dir.join(LOCK_FILE), "someone else's").unwrap();
        drop(lock);
        assert_eq!(
            std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap(),
            "someone else's"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn filesystems_without_locks_are_told_apart_from_other_errors() {
        for code in [37, 38, 95] {
            assert!(lock_unsupported(&std::io::Error::from_raw_os_error(code)));
        }
        assert!(lock_unsupported(&std::io::Error::from(
            std::io::ErrorKind::Unsupported
        )));
        for code in [5, 13, 28] {
            assert!(!lock_unsupported(&std::io::Error::from_raw_os_error(code)));
        }
    }

    #[test]
    fn clock_is_utc_hours_minutes_seconds() {
        let t = UNIX_EPOCH + Duration::from_secs(3 * 86_400 + 12 * 3600 + 3 * 60 + 11);
        assert_eq!(clock_utc(t), "12:03:11 UTC");
    }
}
