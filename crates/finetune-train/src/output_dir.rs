//! A run's output folder: locked for this process before anything in it is looked at
//! ([`finetune_core::folder_lock`]), then checked once — a fresh run refuses a folder holding
//! another run's results, `--resume` continues them, `--overwrite` removes them.

use finetune_core::folder_lock::{FolderLock, Locked, LOCK_FILE};
use finetune_core::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Files a run writes at the top of its output folder: the trainer's own and the model
/// export's Hub files. `Overwrite` removes them, with the `checkpoint-STEP` folders and
/// left-over temporary files; other files stay.
pub const RUN_OUTPUT_FILES: &[&str] = &[
    "run_config.json",
    // Written by earlier versions, removed by --overwrite all the same.
    "train_config.json",
    "metrics.jsonl",
    // TensorBoard's event files (the default --logging-dir).
    "runs",
    "loss.png",
    "train_summary.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "README.md",
];

/// The files a run writes before its first checkpoint: no result to protect.
const LEFT_BEFORE_A_CHECKPOINT: &[&str] = &[
    "run_config.json",
    "train_config.json",
    "metrics.jsonl",
    "runs",
];

/// What a run may do with an output folder that holds an earlier run's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Refuse it (transformers' default): results are never silently mixed or replaced.
    Fresh,
    /// Continue it (`--resume`).
    Resume,
    /// Remove the earlier run's outputs first (`--overwrite`, `overwrite_output_dir`).
    Overwrite,
}

/// A locked output folder. The lock is held until this value is dropped; a folder this value
/// created and nobody wrote into is removed again then.
#[derive(Debug)]
pub struct OutputDir {
    path: PathBuf,
    lock: Option<FolderLock>,
    created: bool,
    prepared: AtomicBool,
}

impl OutputDir {
    /// Creates `path` if needed and locks it (refused at once, naming the holder, when
    /// another process has it). Nothing in it is checked or changed yet: see
    /// [`OutputDir::prepare`].
    pub fn lock(path: &Path) -> Result<Self> {
        check_creatable(path)?;
        let created = !path.exists();
        let lock = match FolderLock::acquire(path)? {
            Locked::Held(l) => Some(l),
            Locked::Unsupported(why) => {
                eprintln!("warning: {why}");
                None
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            lock,
            created,
            prepared: AtomicBool::new(false),
        })
    }

    /// [`OutputDir::lock`], then [`OutputDir::prepare`].
    pub fn open(path: &Path, mode: OutputMode) -> Result<Self> {
        let dir = Self::lock(path)?;
        dir.prepare(mode)?;
        Ok(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies `mode` to what the folder holds, once (later calls do nothing): `Fresh`
    /// refuses earlier results, `Overwrite` removes them. A folder holding only what a run
    /// leaves before its first checkpoint (settings, log, temporary files) counts as empty.
    pub fn prepare(&self, mode: OutputMode) -> Result<()> {
        if self.prepared.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let worth_keeping = list_results(&self.path)?;
        match mode {
            OutputMode::Resume => Ok(()),
            _ if worth_keeping.is_empty() => Ok(()),
            OutputMode::Fresh => Err(not_empty(&self.path, worth_keeping)),
            OutputMode::Overwrite => remove_run_outputs(&self.path),
        }
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        let only_lock = |p: &Path| {
            std::fs::read_dir(p).is_ok_and(|entries| {
                entries
                    .flatten()
                    .all(|e| e.file_name().to_string_lossy() == LOCK_FILE)
            })
        };
        let empty_and_ours = self.created && only_lock(&self.path);
        drop(self.lock.take());
        if empty_and_ours {
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// The nearest existing ancestor must be a folder the output can be created in; an existing
/// output must be a folder.
fn check_creatable(output: &Path) -> Result<()> {
    if output.exists() {
        if !output.is_dir() {
            return Err(Error::config(format!(
                "{}: the output path exists and is not a folder",
                output.display()
            )));
        }
        return Ok(());
    }
    let mut up = output.parent();
    while let Some(p) = up.filter(|p| !p.as_os_str().is_empty()) {
        if p.exists() {
            if !p.is_dir() {
                return Err(Error::config(format!(
                    "{}: cannot create the output folder: {} is not a folder",
                    output.display(),
                    p.display()
                )));
            }
            break;
        }
        up = p.parent();
    }
    Ok(())
}

/// The names in `output` that are an earlier run's results (sorted).
fn list_results(output: &Path) -> Result<Vec<String>> {
    let cannot = |e| Error::io(output, e);
    let mut names = Vec::new();
    for e in std::fs::read_dir(output).map_err(cannot)? {
        let name = e
            .map_err(cannot)?
            .file_name()
            .to_string_lossy()
            .into_owned();
        let left_over = LEFT_BEFORE_A_CHECKPOINT.contains(&name.as_str())
            || name == LOCK_FILE
            || is_temp(&name);
        if !left_over {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn is_temp(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

fn not_empty(output: &Path, names: Vec<String>) -> Error {
    let shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    let more = match names.len().saturating_sub(3) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Error::config(format!(
        "{}: the output folder exists and is not empty ({shown}{more}); pass `overwrite` to \
         replace an earlier run's outputs, or `resume` to continue it",
        output.display()
    ))
}

/// `Overwrite`: the earlier run's outputs ([`RUN_OUTPUT_FILES`], `checkpoint-*` folders,
/// temporary files) go; other files stay.
fn remove_run_outputs(output: &Path) -> Result<()> {
    for e in std::fs::read_dir(output).map_err(|e| Error::io(output, e))? {
        let e = e.map_err(|e| Error::io(output, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let is_checkpoint = name
            .strip_prefix("checkpoint-")
            .is_some_and(|n| n.parse::<u64>().is_ok());
        if !(is_checkpoint || is_temp(&name) || RUN_OUTPUT_FILES.contains(&name.as_str())) {
            continue;
        }
        let p = e.path();
        let gone = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        gone.map_err(|err| Error::io(&p, err))?;
    }
    Ok(())
}
