//! What a resumed run takes from its record: with `--resume`, the settings the run recorded in
//! `OUTPUT/run_config.json` are the defaults, so `finetune train --output runs/x --resume`
//! needs no other flag. A setting given again must agree with the record; one that differs is
//! refused (all of them named, each with both values) unless changing it is safe for a resumed
//! run ([`CHANGEABLE_ON_RESUME`]), which is allowed and said.

use crate::settings::{RunSettings, RUN_CONFIG};
use anyhow::{bail, Context, Result};
use clap::Command;
use finetune_train::settings::{self as schema};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Settings a resumed run may change: when and what it saves, logs and evaluates, where it
/// runs, where its result is pushed, and how long it goes on (the lr schedule is then stretched to the new end, as
/// transformers does).
pub const CHANGEABLE_ON_RESUME: &[&str] = &[
    "epochs",
    "max_steps",
    "save_steps",
    "save_total_limit",
    "logging_steps",
    "eval_steps",
    "eval_strategy",
    "eval_batch_size",
    "early_stopping_patience",
    "load_best_at_end",
    "progress",
    "device",
    "max_eval_samples",
    "push_to_hub",
    "hub_model_id",
    "hub_private_repo",
];

/// Keys that say how this invocation runs rather than what the run is.
const NOT_COMPARED: &[&str] = &["resume", "overwrite", "output"];

/// `settings` (the command line over a `--config` file; `given`: the keys either set) over the
/// record of the run being resumed, when there is one. Returns the settings the resumed run
/// uses and the keys set by the user or the record.
pub fn over_record(
    settings: RunSettings,
    given: BTreeSet<String>,
) -> Result<(RunSettings, BTreeSet<String>)> {
    let Some(output) = settings
        .job
        .output
        .clone()
        .filter(|_| settings.job.resume.is_some())
    else {
        return Ok((settings, given));
    };
    // The checkpoint resumed from carries the record of the run that wrote it; the output
    // folder's is the latest invocation's.
    let from = settings
        .job
        .resume
        .as_deref()
        .and_then(|r| finetune_train::checkpoint::resolve(&output, r).ok());
    let path = match from.filter(|d| d.join(RUN_CONFIG).is_file()) {
        Some(dir) => dir.join(RUN_CONFIG),
        None => output.join(RUN_CONFIG),
    };
    if !path.is_file() {
        return Ok((settings, given));
    }
    let cmd = RunSettings::command();
    let mut recorded = schema::read_file(&path, &cmd)?;
    // How this invocation runs is its own: a run started with --overwrite resumes without it.
    for key in NOT_COMPARED {
        recorded.remove(*key);
    }
    let now = as_map(&settings)?;
    let defaults = as_map(&RunSettings::default())?;
    let (mut changed, mut differ) = (Vec::new(), Vec::new());
    for key in given.iter().filter(|k| !NOT_COMPARED.contains(&k.as_str())) {
        let old = recorded
            .get(key)
            .or(defaults.get(key))
            .unwrap_or(&Value::Null);
        let new = now.get(key).unwrap_or(&Value::Null);
        if old == new {
            continue;
        }
        let line = format!(
            "{} {} (run) vs {} (now)",
            flag(&cmd, key),
            show(old),
            show(new)
        );
        if CHANGEABLE_ON_RESUME.contains(&key.as_str()) {
            changed.push(line);
        } else {
            differ.push(line);
        }
    }
    if !differ.is_empty() {
        bail!(
            "--resume: {} differ from the run's ({}): {}; leave them out to use the run's \
             values, or train into another --output",
            if differ.len() == 1 {
                "this setting would"
            } else {
                "these settings would"
            },
            path.display(),
            differ.join("; ")
        );
    }
    if !changed.is_empty() {
        eprintln!("resuming with changed settings: {}", changed.join("; "));
    }
    let mut merged = recorded;
    for key in &given {
        if let Some(v) = now.get(key) {
            merged.insert(key.clone(), v.clone());
        }
    }
    let all_given = given
        .union(&merged.keys().cloned().collect())
        .cloned()
        .collect();
    let resolved = schema::from_map(Some(&path), merged)
        .with_context(|| format!("resuming from {}", path.display()))?;
    Ok((resolved, all_given))
}

fn as_map(settings: &RunSettings) -> Result<Map<String, Value>> {
    match serde_json::to_value(settings)? {
        Value::Object(m) => Ok(m),
        _ => bail!("settings serialise to a table"),
    }
}

/// `--flag` of the setting `key`.
fn flag(cmd: &Command, key: &str) -> String {
    cmd.get_arguments()
        .find(|a| a.get_id() == key)
        .and_then(|a| a.get_long())
        .map_or_else(|| key.to_string(), |l| format!("--{l}"))
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(none)".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}
