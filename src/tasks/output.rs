//! The output folder of a run or an export: locked against other writers, refused when it
//! holds another run's results (unless `--overwrite` removes them or `--resume` continues
//! them), and model folders written whole or not at all.

use crate::settings::JobSettings;
use anyhow::{bail, Context, Result};
use finetune_train::{OutputDir, OutputMode};
use std::path::Path;

/// Locks a training run's output folder before anything in it is looked at, then applies
/// `--resume` / `--overwrite` to what it holds (see [`OutputDir`]).
pub fn open_for_training(output: &Path, job: &JobSettings) -> Result<OutputDir> {
    if job.resume.is_some() && job.overwrite {
        bail!("give --resume or --overwrite, not both");
    }
    let mode = if job.resume.is_some() {
        OutputMode::Resume
    } else if job.overwrite {
        OutputMode::Overwrite
    } else {
        OutputMode::Fresh
    };
    Ok(OutputDir::open(output, mode)?)
}

/// Writes a model folder through `write` (which receives a temporary sibling folder), then
/// swaps it in for `output`: a failed export leaves no half folder and the old one intact.
/// `output` is locked first, so an export never replaces a folder another run is writing; the
/// old folder is moved aside (not deleted) until the new one is in place.
pub fn write_folder_atomically(
    output: &Path,
    write: impl FnOnce(&Path) -> finetune_core::Result<()>,
) -> Result<()> {
    let _locked = OutputDir::lock(output)?;
    let tmp = finetune_core::fsutil::temp_sibling(output);
    let _ = std::fs::remove_dir_all(&tmp);
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.into());
    }
    let name = output
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy());
    let old = output.with_file_name(format!(".{name}.old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&old);
    std::fs::rename(output, &old).with_context(|| format!("replacing {}", output.display()))?;
    if let Err(e) = std::fs::rename(&tmp, output) {
        let _ = std::fs::rename(&old, output);
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e).with_context(|| format!("writing {}", output.display()));
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// What an export of a model carrying LoRA adapters holds (`finetune export`'s `--merge` /
/// `--adapter-only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportMode {
    /// The merged model at the top and the adapter in PEFT's format under `adapter/` (what a
    /// training run exports); a model without adapters is exported as it is.
    #[default]
    Both,
    /// The merged model only.
    Merged,
    /// PEFT's adapter folder only (`adapter_config.json`, `adapter_model.safetensors`).
    AdapterOnly,
}

/// Writes a model into `output` atomically as `mode` says: `export` writes the model in its
/// ecosystem's layout (merged, with `adapter/` when it carries adapters); the card of the
/// folder it came from goes along (not for an adapter on a base: the base's card is not its).
pub(crate) fn write_export(
    source: &crate::families::ModelSource,
    store: &finetune_core::ParamStore,
    output: &Path,
    dtype: Option<candle_core::DType>,
    mode: ExportMode,
    export: impl FnOnce(&Path) -> finetune_core::Result<()>,
) -> Result<()> {
    if mode != ExportMode::Both && store.lora().is_none() {
        bail!(
            "--merge and --adapter-only apply to LoRA adapters; {} carries none",
            source.name
        );
    }
    write_folder_atomically(output, |tmp| {
        if mode == ExportMode::AdapterOnly {
            return finetune_core::lora::peft::save(store, tmp, dtype);
        }
        export(tmp)?;
        if mode == ExportMode::Merged {
            let adapter = tmp.join(finetune_core::model_io::ADAPTER_DIR);
            std::fs::remove_dir_all(&adapter).map_err(|e| finetune_core::Error::io(&adapter, e))?;
        }
        if source.adapter.is_none() {
            crate::tasks::model_card::carry_over(source, tmp)?;
        }
        Ok(())
    })
}
