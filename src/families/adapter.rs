//! PEFT LoRA adapters on top of a family's model: an adapter folder named as the model (its
//! base found through `base_model_name_or_path`), `--adapter DIR` beside `--model`, the head
//! size and label names an adapter implies, and applying it once the model is built.

use super::{resolve, ModelSource};
use crate::settings::Task;
use anyhow::{bail, Context, Result};
use finetune_core::lora::peft;
use finetune_core::ParamStore;
use finetune_hub::{resolve_model, HubConfig, ModelOptions};
use std::path::Path;

/// An adapter folder given as the model: its base model resolved, the adapter kept to apply.
pub(super) fn resolve_adapter_folder(
    dir: &Path,
    allow_pickle: bool,
    task: Option<Task>,
) -> Result<ModelSource> {
    let settings = peft::read_config(dir)?;
    let base = settings.base_model.as_str();
    if base.is_empty() {
        bail!(
            "{}: base_model_name_or_path is empty; give the base model with --model and this \
             folder with --adapter",
            dir.join(peft::CONFIG_FILE).display()
        );
    }
    let base = match &settings.revision {
        Some(rev) if !Path::new(base).exists() && !base.contains('@') => format!("{base}@{rev}"),
        _ => base.to_string(),
    };
    let mut source = resolve(&base, allow_pickle, task).with_context(|| {
        format!(
            "{} names its base model {base}",
            dir.join(peft::CONFIG_FILE).display()
        )
    })?;
    source.adapter = Some(dir.to_path_buf());
    Ok(source)
}

/// `source` with the adapter `adapter` to apply on top (`--adapter`): a folder, or a Hub id
/// (found in the cache or downloaded), checked to be a PEFT adapter.
pub fn with_adapter(mut source: ModelSource, adapter: Option<&Path>) -> Result<ModelSource> {
    if let Some(named) = adapter {
        let hub;
        let dir = match named.exists() {
            true => named,
            false => {
                let spec = named.to_string_lossy();
                let opts = ModelOptions {
                    allow_pickle: false,
                };
                hub = resolve_model(&spec, &HubConfig::from_env(), &opts)?.dir;
                hub.as_path()
            }
        };
        if !peft::is_adapter_dir(dir) {
            bail!(
                "--adapter {}: no {} there (a PEFT adapter folder holds it and {})",
                dir.display(),
                peft::CONFIG_FILE,
                peft::WEIGHTS_FILE
            );
        }
        peft::read_config(dir)?;
        source.adapter = Some(dir.to_path_buf());
    }
    Ok(source)
}

/// The classes an adapter's head was trained for, when the source has an adapter: as many as
/// its head's rows, named by the export the adapter sits in (`OUT/adapter` beside
/// `OUT/config.json`), else by the base model when it has as many, else `LABEL_i`.
pub fn adapter_labels(source: &ModelSource) -> Result<Option<Vec<String>>> {
    let Some(dir) = &source.adapter else {
        return Ok(None);
    };
    let head = peft::head_tensors(dir)?;
    let Some(n) = head
        .iter()
        .find(|(n, s)| n.ends_with(".weight") && s.len() == 2)
        .map(|(_, s)| s[0])
    else {
        return Ok(None);
    };
    // The export the adapter sits in, read by the family's own label reader.
    let opts = ModelOptions {
        allow_pickle: false,
    };
    let beside = dir
        .parent()
        .filter(|p| p.join("config.json").is_file())
        .and_then(|p| resolve_model(&p.display().to_string(), &HubConfig::from_env(), &opts).ok())
        .and_then(|files| (source.family.labels)(&files).ok())
        .map(|l| l.names);
    let base = source.labels()?.map(|l| l.names);
    Ok(Some(
        [beside, base]
            .into_iter()
            .flatten()
            .find(|names| names.len() == n)
            .unwrap_or_else(|| (0..n).map(|i| format!("LABEL_{i}")).collect()),
    ))
}

/// A task's load options, as far as an adapter concerns them: the classes of the head.
pub trait HeadLabels: Clone {
    /// The classes the head is built for (`None`: the checkpoint's).
    fn labels_mut(&mut self) -> &mut Option<Vec<String>>;
}

/// Builds a model of `source` through `load` and applies the source's adapter (if any) to it;
/// with an adapter and no classes in `opts`, the head is built for the adapter's classes.
pub fn load_with_adapter<O: HeadLabels, M>(
    source: &ModelSource,
    opts: &O,
    load: impl FnOnce(&O) -> Result<M>,
    store: impl Fn(&M) -> ParamStore,
) -> Result<M> {
    let mut opts = opts.clone();
    if opts.labels_mut().is_none() {
        *opts.labels_mut() = adapter_labels(source)?;
    }
    let model = load(&opts)?;
    if let Some(dir) = &source.adapter {
        peft::load(&store(&model), dir, peft::read_config(dir)?)?;
    }
    Ok(model)
}
