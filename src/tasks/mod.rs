//! Tasks: the wiring of a model crate, the data crate, the hub and the learner into one job,
//! shared by the `finetune` CLI and the examples (which only parse arguments and print).
//!
//! What both tasks share lives here: the prediction schema, the run report, the fit → test
//! sequence around the [`Learner`], and the crash-safe writing of model folders.

pub mod augment;
pub mod image;
pub mod text;

use anyhow::{bail, Context, Result};
use finetune_train::learner::describe;
use finetune_train::{
    BatchSource, EvalMetrics, Learner, Outcome, TrainConfig, TrainModel, TrainSummary,
};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One input's prediction (the `predict --json` schema).
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub label: String,
    pub score: f64,
    /// The top-k labels' probabilities.
    pub scores: serde_json::Map<String, serde_json::Value>,
    pub logits: Vec<f64>,
}

impl Prediction {
    pub fn from_logits(labels: &[String], logits: Vec<f64>, top_k: usize) -> Self {
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
        let z: f64 = exp.iter().sum();
        let mut ranked: Vec<(usize, f64)> = exp.iter().map(|e| e / z).enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let name = |i: usize| {
            labels
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("LABEL_{i}"))
        };
        Self {
            label: name(ranked[0].0),
            score: ranked[0].1,
            scores: ranked
                .iter()
                .take(top_k.max(1))
                .map(|&(i, p)| (name(i), serde_json::json!(p)))
                .collect(),
            logits,
        }
    }
}

/// What a training run produced (either task).
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub outcome: String,
    pub summary: TrainSummary,
    pub test: Option<EvalMetrics>,
    pub labels: Vec<String>,
    pub output: PathBuf,
    /// Parameters that did not train (at the end of the run).
    pub frozen: Vec<String>,
    /// Bad samples skipped under `--skip-bad-samples`, over all splits.
    pub skipped_samples: usize,
}

/// Files a training run writes at the top of its output folder (`--overwrite` removes them,
/// with the `checkpoint-STEP` folders and left-over temporary files).
pub const RUN_OUTPUT_FILES: &[&str] = &[
    "run_config.json",
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

/// A model-loading error, naming the file it concerns when its message names none: a tensor's
/// shape or dtype → the weights file (shapes: and the `config.json` they were checked against),
/// anything else → the model folder.
pub(crate) fn in_model_files(
    e: finetune_core::Error,
    files: &finetune_hub::ModelFiles,
) -> anyhow::Error {
    let msg = e.to_string();
    let dir = files.dir.display().to_string();
    if msg.contains(&dir) {
        return e.into();
    }
    let weights = files
        .weights
        .index
        .clone()
        .or_else(|| files.weights.files.first().cloned())
        .unwrap_or_else(|| files.dir.clone());
    let config = files
        .config
        .clone()
        .unwrap_or_else(|| files.dir.join("config.json"));
    match e {
        finetune_core::Error::Shape { .. } => anyhow::anyhow!(
            "{} does not match {}: {msg}",
            weights.display(),
            config.display()
        ),
        _ if msg.contains("lacks tensor") => anyhow::anyhow!(
            "{} does not match {}: {msg}",
            weights.display(),
            config.display()
        ),
        _ if msg.contains("tensor") => anyhow::anyhow!("{}: {msg}", weights.display()),
        _ => anyhow::anyhow!("{dir}: {msg}"),
    }
}

/// Creates `output` and writes the resolved job into `output/run_config.json`.
fn write_run_config(output: &Path, job: &serde_json::Value) -> Result<()> {
    std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
    let bytes = serde_json::to_vec_pretty(job)?;
    finetune_core::fsutil::write_bytes_atomically(&output.join("run_config.json"), &bytes)?;
    Ok(())
}

/// Trains `model` with a [`Learner`] (resuming from `resume`: a checkpoint folder or `latest`),
/// then evaluates on `test` when the run was not interrupted. `run_config` (the resolved job)
/// is written once the learner accepted the settings (freeze patterns included), so a refused
/// run leaves no output. Fills a [`RunReport`] but for `labels` and `skipped_samples`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_and_test<M: TrainModel>(
    model: &M,
    config: &TrainConfig,
    output: &Path,
    run_config: &serde_json::Value,
    resume: Option<&str>,
    train: &dyn BatchSource<M::Inputs>,
    eval: Option<&dyn BatchSource<M::Inputs>>,
    test: Option<&dyn BatchSource<M::Inputs>>,
) -> Result<RunReport> {
    let learner = Learner::new(model, config.clone(), output)?;
    learner.stop_on_ctrl_c().ok();
    let resume = match resume {
        Some(w) => Some(finetune_train::checkpoint::resolve(output, w)?),
        None => None,
    };
    write_run_config(output, run_config)?;
    let (outcome, summary) = learner.fit(train, eval, resume.as_deref())?;
    let frozen = model
        .store()
        .infos()
        .into_iter()
        .filter(|i| i.kind == finetune_core::TensorKind::Parameter && !i.trainable)
        .map(|i| i.name)
        .collect();
    let test = match (test, outcome) {
        (Some(t), Outcome::Completed | Outcome::StoppedEarly) => {
            let m = learner.evaluate(t)?;
            eprintln!("test: {}", describe(&m));
            Some(m)
        }
        _ => None,
    };
    Ok(RunReport {
        outcome: format!("{outcome:?}").to_lowercase(),
        summary,
        test,
        labels: Vec::new(),
        output: output.to_path_buf(),
        frozen,
        skipped_samples: 0,
    })
}

/// Writes a model folder through `write` (which receives a temporary sibling folder), then
/// renames it over `output`: a failed export leaves no half folder and the old one intact.
pub(crate) fn write_folder_atomically(
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

/// The files of each split: the given ones, completed from a Hub dataset (or a local snapshot
/// folder) when one is named. Training files are required.
pub(crate) type SplitFiles = (Vec<PathBuf>, Vec<PathBuf>, Vec<PathBuf>);

pub(crate) fn split_files(
    dataset: Option<&str>,
    train: &[PathBuf],
    eval: &[PathBuf],
    test: &[PathBuf],
) -> Result<SplitFiles> {
    let (mut train, mut eval, mut test) = (train.to_vec(), eval.to_vec(), test.to_vec());
    if let Some(ds) = dataset {
        let files = finetune_hub::resolve_dataset(
            ds,
            &finetune_hub::HubConfig::from_env(),
            &finetune_hub::DatasetOptions::default(),
        )?;
        let take = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| files.splits.get(*n).cloned())
                .unwrap_or_default()
        };
        if train.is_empty() {
            train = take(&["train"]);
        }
        if eval.is_empty() {
            eval = take(&["validation", "valid", "dev"]);
        }
        if test.is_empty() {
            test = take(&["test"]);
        }
    }
    if train.is_empty() {
        anyhow::bail!("no training data: give --train FILE or --dataset ID");
    }
    Ok((train, eval, test))
}

/// A seeded sample of at most `max` of `n` indices, in increasing order (`None`: keep all).
pub(crate) fn sample_indices(n: usize, max: Option<usize>, seed: u64) -> Option<Vec<usize>> {
    let max = max.filter(|&m| m < n)?;
    let mut idx: Vec<usize> = (0..n).collect();
    finetune_core::Rng::seed_from_u64(seed ^ 0x7a11).shuffle(&mut idx);
    idx.truncate(max);
    idx.sort_unstable();
    Some(idx)
}
