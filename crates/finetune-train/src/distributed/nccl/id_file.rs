//! The rendezvous of NCCL's unique id through a shared file: rank 0 creates the id and writes
//! it (atomically: a temporary sibling renamed into place, so a reader never sees half of it);
//! every other rank polls for the file until it appears, then reads it. Plain file work, no
//! CUDA: the NCCL backend uses it and the tests run it anywhere.

use finetune_core::{Error, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The size of NCCL's unique id (`ncclUniqueId`), in bytes.
pub const NCCL_ID_BYTES: usize = 128;

/// NCCL's unique id as bytes: created by rank 0, the same on every rank of one communicator.
pub type NcclId = [u8; NCCL_ID_BYTES];

/// The environment variable naming the id file.
pub const ID_FILE_ENV: &str = "FINETUNE_NCCL_ID_FILE";

/// How long the other ranks wait for rank 0's id file by default.
pub const DEFAULT_ID_WAIT: Duration = Duration::from_secs(120);

/// A file last written this long before a rank starts waiting is left by an earlier run (the
/// file of a run that got going is removed once every rank has joined): it is not used.
pub const STALE_AFTER: Duration = Duration::from_secs(600);

/// The id file's path from the value of [`ID_FILE_ENV`] (`None`: unset).
pub fn id_file_from(value: Option<OsString>) -> Result<PathBuf> {
    match value {
        Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
        _ => Err(Error::config(format!(
            "{ID_FILE_ENV} is not set: the NCCL backend needs a file path that every rank can \
             reach (a shared filesystem across nodes), fresh for each run, where rank 0 writes \
             NCCL's unique id"
        ))),
    }
}

/// Rank 0's side: writes `id` to `path` atomically, replacing any earlier file.
pub fn write_id(path: &Path, id: &NcclId) -> Result<()> {
    finetune_core::fsutil::write_bytes_atomically(path, id).map_err(|e| {
        Error::config(format!(
            "rank 0: cannot write the NCCL id to {} ({ID_FILE_ENV}): {e}",
            path.display()
        ))
    })
}

/// How a rank other than 0 waits for the id file.
#[derive(Debug, Clone, Copy)]
pub struct IdWait {
    /// Give up after this long.
    pub timeout: Duration,
    /// Look again this often.
    pub poll: Duration,
    /// A file last modified before this instant is an earlier run's, and ignored.
    pub not_before: SystemTime,
}

impl IdWait {
    /// Waits up to `timeout`, polling every 50 ms, ignoring files older than [`STALE_AFTER`].
    pub fn new(timeout: Duration) -> Self {
        let now = SystemTime::now();
        IdWait {
            timeout,
            poll: Duration::from_millis(50),
            not_before: now.checked_sub(STALE_AFTER).unwrap_or(now),
        }
    }
}

/// What one look at the id file found.
enum Look {
    Missing,
    Stale,
    Id(NcclId),
}

/// A rank's side (not 0): polls `path` until it holds a fresh id, then returns it. Errors: the
/// timeout (naming the file, and whether only a stale one was seen), a file that cannot be
/// read, or one that is not [`NCCL_ID_BYTES`] long.
pub fn wait_for_id(path: &Path, rank: usize, wait: &IdWait) -> Result<NcclId> {
    let start = Instant::now();
    let mut saw_stale = false;
    loop {
        match look(path, rank, wait.not_before)? {
            Look::Id(id) => return Ok(id),
            Look::Stale => saw_stale = true,
            Look::Missing => {}
        }
        if start.elapsed() >= wait.timeout {
            let stale = match saw_stale {
                true => " (only a stale file from an earlier run was there)",
                false => "",
            };
            return Err(Error::config(format!(
                "rank {rank}: no NCCL id in {} after {:.0} s{stale}: is rank 0 running, with the \
                 same {ID_FILE_ENV}?",
                path.display(),
                wait.timeout.as_secs_f64()
            )));
        }
        std::thread::sleep(wait.poll);
    }
}

fn look(path: &Path, rank: usize, not_before: SystemTime) -> Result<Look> {
    let cannot = |e: std::io::Error| {
        Error::config(format!(
            "rank {rank}: cannot read the NCCL id file {}: {e}",
            path.display()
        ))
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Look::Missing),
        Err(e) => return Err(cannot(e)),
    };
    if meta.modified().is_ok_and(|t| t < not_before) {
        return Ok(Look::Stale);
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        // Removed between the two calls: rank 0 is replacing it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Look::Missing),
        Err(e) => return Err(cannot(e)),
    };
    let id: NcclId = bytes.as_slice().try_into().map_err(|_| {
        Error::config(format!(
            "rank {rank}: {} holds {} bytes, not the {NCCL_ID_BYTES} of an NCCL id: is {ID_FILE_ENV} \
             another file?",
            path.display(),
            bytes.len()
        ))
    })?;
    Ok(Look::Id(id))
}

/// Rank 0, once every rank has joined the communicator: removes the id file so that a later
/// run with the same path cannot read this one's id. Best effort.
pub fn remove_id(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ft-nccl-id-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn quick(timeout_ms: u64) -> IdWait {
        IdWait {
            timeout: Duration::from_millis(timeout_ms),
            poll: Duration::from_millis(5),
            ..IdWait::new(DEFAULT_ID_WAIT)
        }
    }

    fn some_id() -> NcclId {
        std::array::from_fn(|i| (i * 7 + 3) as u8)
    }

    #[test]
    fn the_path_comes_from_the_variable_and_its_absence_is_explained() {
        let p = id_file_from(Some("/shared/job-7/nccl.id".into())).unwrap();
        assert_eq!(p, Path::new("/shared/job-7/nccl.id"));
        for unset in [None, Some(OsString::new())] {
            let err = id_file_from(unset).unwrap_err().to_string();
            assert!(err.contains("FINETUNE_NCCL_ID_FILE is not set"), "{err}");
        }
    }

    #[test]
    fn a_written_id_is_read_back_whole_and_leaves_no_temporary_file() {
        let dir = tmp("roundtrip");
        let path = dir.join("nccl.id");
        write_id(&path, &some_id()).unwrap();
        assert_eq!(wait_for_id(&path, 1, &quick(1000)).unwrap(), some_id());
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["nccl.id"]);
        remove_id(&path);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_waiting_rank_gets_the_id_written_after_it_started_polling() {
        let dir = tmp("late");
        let path = dir.join("nccl.id");
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150));
                write_id(&path, &some_id()).unwrap();
            })
        };
        let started = Instant::now();
        let id = wait_for_id(&path, 1, &quick(5000)).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert_eq!(id, some_id());
        writer.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_file_times_out_naming_the_file_and_the_rank() {
        let dir = tmp("timeout");
        let path = dir.join("never.id");
        let started = Instant::now();
        let err = wait_for_id(&path, 3, &quick(100)).unwrap_err().to_string();
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(err.starts_with("rank 3: no NCCL id in "), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(!err.contains("stale"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_of_the_wrong_length_is_refused_at_once() {
        let dir = tmp("length");
        let path = dir.join("nccl.id");
        std::fs::write(&path, b"not an id").unwrap();
        let started = Instant::now();
        let err = wait_for_id(&path, 1, &quick(5000)).unwrap_err().to_string();
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "it waited for the timeout"
        );
        assert!(err.contains("holds 9 bytes, not the 128"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_earlier_runs_file_is_ignored_until_rank_0_replaces_it() {
        let dir = tmp("stale");
        let path = dir.join("nccl.id");
        std::fs::write(&path, [9u8; NCCL_ID_BYTES]).unwrap();
        let old = SystemTime::now() - STALE_AFTER - Duration::from_secs(60);
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(old).unwrap();
        drop(f);
        let err = wait_for_id(&path, 2, &quick(100)).unwrap_err().to_string();
        assert!(
            err.contains("only a stale file from an earlier run"),
            "{err}"
        );
        write_id(&path, &some_id()).unwrap();
        assert_eq!(wait_for_id(&path, 2, &quick(1000)).unwrap(), some_id());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
