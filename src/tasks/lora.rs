//! LoRA in a training run: fresh adapters as `--lora` says, or the adapter `--adapter` carries
//! on, with one line saying what trains.

use crate::families::ModelSource;
use crate::settings::{RunSettings, Task};
use anyhow::{Context, Result};
use finetune_core::lora::{add_adapters, select_modules, LoraSettings};
use finetune_core::{Rng, TrainModel};
use finetune_hub::Origin;

/// Gives `model` its LoRA adapters for this run: none without `--lora` or `--adapter`; the
/// adapter's own when one was applied at load (training goes on from it); else new ones on
/// the targeted layers (the family's defaults unless `--lora-target`), seeded by the run's
/// seed so a resumed run rebuilds them before its checkpoint overwrites them.
pub fn prepare<M: TrainModel + ?Sized>(
    s: &RunSettings,
    source: &ModelSource,
    task: Task,
    model: &M,
) -> Result<()> {
    let store = model.store();
    if let Some(lora) = store.lora() {
        eprintln!(
            "LoRA: training the adapter {} further (r={}, {} layers)",
            source
                .adapter
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display(),
            lora.config.r,
            lora.modules.len()
        );
        return Ok(());
    }
    if !s.lora.lora {
        return Ok(());
    }
    let layout = model.layout();
    let targets: Vec<&str> = layout.lora_targets.iter().map(String::as_str).collect();
    let config = s.lora.config(&targets);
    config.validate()?;
    let modules =
        select_modules(&config.target, &store.modules(), &layout).context("--lora-target")?;
    let (base_model, revision) = base_of(source);
    let settings = LoraSettings {
        config,
        modules,
        modules_to_save: layout.head_modules(),
        base_model,
        revision,
        task_type: task.peft_task_type().map(String::from),
    };
    let line = describe(&settings);
    let mut rng = Rng::seed_from_u64(s.train.seed ^ 0x4c6f_5241);
    add_adapters(store, settings, &mut rng)?;
    eprintln!("{line}");
    Ok(())
}

/// `base_model_name_or_path` and `revision`: the Hub id and commit, or the local folder.
fn base_of(source: &ModelSource) -> (String, Option<String>) {
    match source.files.as_ref().map(|f| (&f.origin, &f.dir)) {
        Some((Origin::Cache { repo, commit } | Origin::Downloaded { repo, commit, .. }, _)) => {
            (repo.name.clone(), Some(commit.clone()))
        }
        Some((Origin::Local, dir)) => (
            std::fs::canonicalize(dir)
                .unwrap_or_else(|_| dir.clone())
                .display()
                .to_string(),
            None,
        ),
        None => (source.name.clone(), None),
    }
}

/// `LoRA: r=8, alpha=16 (scale 2) on 12 layers (query, value); classifier trains whole`.
fn describe(s: &LoraSettings) -> String {
    let c = &s.config;
    format!(
        "LoRA: r={}, alpha={} (scale {}{}) on {} layers ({}); {} trains whole",
        c.r,
        c.alpha,
        c.scale(),
        if c.use_rslora { ", rsLoRA" } else { "" },
        s.modules.len(),
        c.target.join(", "),
        s.modules_to_save.join(", ")
    )
}
