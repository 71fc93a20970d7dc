//! `--config FILE.toml`: one flat table whose keys are the `train` flags' names with `_`.
//! Job keys (task, model, data, model setup) are read here; the rest are training settings,
//! checked by `TrainConfig` (an unknown key is an error naming it).

use crate::train::Task;
use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The job keys a config file may hold (`None`: not given).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileKeys {
    pub task: Option<Task>,
    pub model: Option<String>,
    #[serde(alias = "output_dir")]
    pub output: Option<PathBuf>,
    #[serde(default, alias = "train_file")]
    pub train: Vec<PathBuf>,
    #[serde(default, alias = "validation_file", alias = "validation")]
    pub eval: Vec<PathBuf>,
    #[serde(default, alias = "test_file")]
    pub test: Vec<PathBuf>,
    #[serde(alias = "dataset_name")]
    pub dataset: Option<String>,
    pub text_column: Option<String>,
    pub text_pair_column: Option<String>,
    pub label_column: Option<String>,
    pub group_column: Option<String>,
    pub validation_split: Option<f64>,
    pub max_train_samples: Option<usize>,
    pub skip_bad_samples: Option<bool>,
    #[serde(alias = "max_seq_length")]
    pub max_length: Option<usize>,
    pub labels: Option<Vec<String>>,
    pub num_labels: Option<usize>,
    pub dropout: Option<f64>,
    pub allow_pickle: Option<bool>,
    pub device: Option<String>,
    pub augment: Option<String>,
    pub image_column: Option<String>,
    pub image_size: Option<usize>,
    pub channels: Option<usize>,
    pub max_eval_samples: Option<usize>,
    #[serde(alias = "overwrite_output_dir")]
    pub overwrite: Option<bool>,
}

/// Keys (and aliases) of [`FileKeys`]; everything else goes to the training settings.
const JOB_KEYS: &[&str] = &[
    "task",
    "model",
    "output",
    "output_dir",
    "train",
    "train_file",
    "eval",
    "validation",
    "validation_file",
    "test",
    "test_file",
    "dataset",
    "dataset_name",
    "text_column",
    "text_pair_column",
    "label_column",
    "group_column",
    "validation_split",
    "max_train_samples",
    "skip_bad_samples",
    "max_length",
    "max_seq_length",
    "labels",
    "num_labels",
    "dropout",
    "allow_pickle",
    "device",
    "augment",
    "image_column",
    "image_size",
    "channels",
    "max_eval_samples",
    "overwrite",
    "overwrite_output_dir",
];

/// Reads `path`: the job keys, and the training settings as a JSON object. A single path
/// where a list is expected (`train = "a.csv"`) is taken as a one-element list.
pub fn read(path: &Path) -> Result<(FileKeys, Map<String, Value>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let json = serde_json::to_value(table)?;
    let Value::Object(all) = json else {
        unreachable!("a TOML document is a table")
    };
    let (mut job, mut train) = (Map::new(), Map::new());
    for (k, v) in all {
        if JOB_KEYS.contains(&k.as_str()) {
            let v = match (k.as_str(), v) {
                (
                    "train" | "train_file" | "eval" | "validation" | "validation_file",
                    Value::String(s),
                )
                | ("test" | "test_file", Value::String(s)) => Value::Array(vec![Value::String(s)]),
                (_, v) => v,
            };
            job.insert(k, v);
        } else {
            train.insert(k, v);
        }
    }
    let keys: FileKeys = serde_json::from_value(Value::Object(job))
        .with_context(|| format!("in {}", path.display()))?;
    // Unknown keys surface here with the file's name.
    candle_finetune::train::TrainConfig::deserialize(Value::Object(train.clone()))
        .with_context(|| format!("in {}", path.display()))?;
    Ok((keys, train))
}
