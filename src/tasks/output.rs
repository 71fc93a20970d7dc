//! The output folder of a run: refused when it holds another run's results (unless
//! `--overwrite` removes them or `--resume` continues them), and model folders written whole
//! or not at all.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// Files a training run writes at the top of its output folder (`--overwrite` removes them,
/// with the `checkpoint-STEP` folders and left-over temporary files).
pub const RUN_OUTPUT_FILES: &[&str] = &[
    "run_config.json",
    // Written by earlier versions, removed by --overwrite all the same.
    "train_config.json",
    "metrics.jsonl",
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
];

/// The files a run writes before its first checkpoint.
const LEFT_BEFORE_A_CHECKPOINT: &[&str] =
    &["run_config.json", "train_config.json", "metrics.jsonl"];

/// Checks the output folder before any work is done: it must be creatable (no file in the way)
/// and, unless the run resumes or `overwrite` is set, empty or absent — so a finished run's
/// model and checkpoints are never silently mixed with or replaced by another run's. A folder
/// holding only what a run leaves before its first checkpoint (settings, log, temporary files)
/// counts as empty. With
/// `overwrite`, the earlier run's outputs ([`RUN_OUTPUT_FILES`], `checkpoint-*` folders,
/// temporary files) are removed; other files are left alone.
pub fn prepare_output(output: &Path, resume: bool, overwrite: bool) -> Result<()> {
    if resume && overwrite {
        bail!("give --resume or --overwrite, not both");
    }
    if output.exists() && !output.is_dir() {
        bail!(
            "{}: the output path exists and is not a folder",
            output.display()
        );
    }
    if !output.exists() {
        // The nearest existing ancestor must be a folder we can create the output in.
        let mut up = output.parent();
        while let Some(p) = up.filter(|p| !p.as_os_str().is_empty()) {
            if p.exists() {
                if !p.is_dir() {
                    bail!(
                        "{}: cannot create the output folder: {} is not a folder",
                        output.display(),
                        p.display()
                    );
                }
                break;
            }
            up = p.parent();
        }
        return Ok(());
    }
    let entries: Vec<std::fs::DirEntry> = std::fs::read_dir(output)
        .with_context(|| format!("{}: cannot read the output folder", output.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("{}: cannot read the output folder", output.display()))?;
    // What a run that failed or was killed before its first checkpoint leaves is no result to
    // protect: its settings, its log, temporary files.
    let worth_keeping = |e: &std::fs::DirEntry| {
        let name = e.file_name().to_string_lossy().into_owned();
        !(LEFT_BEFORE_A_CHECKPOINT.contains(&name.as_str())
            || (name.starts_with('.') && name.contains(".tmp-")))
    };
    if resume || !entries.iter().any(worth_keeping) {
        return Ok(());
    }
    if !overwrite {
        let mut names: Vec<String> = entries
            .iter()
            .filter(|e| worth_keeping(e))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        let more = names.len().saturating_sub(3);
        bail!(
            "{}: the output folder exists and is not empty ({shown}{}); pass --overwrite to \
             replace an earlier run's outputs, or --resume to continue it",
            output.display(),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let is_checkpoint = name
            .strip_prefix("checkpoint-")
            .is_some_and(|n| n.parse::<u64>().is_ok());
        let is_temp = name.starts_with('.') && name.contains(".tmp-");
        if !(is_checkpoint || is_temp || RUN_OUTPUT_FILES.contains(&name.as_str())) {
            continue;
        }
        let p = e.path();
        let gone = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        gone.with_context(|| format!("--overwrite: cannot remove {}", p.display()))?;
    }
    Ok(())
}

/// Writes a model folder through `write` (which receives a temporary sibling folder), then
/// renames it over `output`: a failed export leaves no half folder and the old one intact.
pub fn write_folder_atomically(
    output: &Path,
    write: impl FnOnce(&Path) -> finetune_core::Result<()>,
) -> Result<()> {
    let tmp = finetune_core::fsutil::temp_sibling(output);
    let _ = std::fs::remove_dir_all(&tmp);
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.into());
    }
    if output.exists() {
        std::fs::remove_dir_all(output)
            .with_context(|| format!("replacing {}", output.display()))?;
    }
    std::fs::rename(&tmp, output).with_context(|| format!("writing {}", output.display()))?;
    Ok(())
}
