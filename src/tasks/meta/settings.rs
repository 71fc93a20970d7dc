//! The settings of `finetune meta-train`, one schema for its flags and a `--config` file's
//! keys: the model, data and output of the run ([`MetaJob`]) and Reptile's own settings
//! ([`ReptileConfig`]).

use anyhow::{bail, Context, Result};
use clap::Args;
use finetune_train::reptile::ReptileConfig;
use finetune_train::settings as schema;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What to meta-train, on which images, into where, and how the result is measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct MetaJob {
    /// An image checkpoint (a Hub id or a local folder), or an architecture to start from
    /// scratch (`resnet18`).
    #[arg(long, help_heading = "Model")]
    pub model: Option<String>,
    /// The labelled images the tasks are drawn from (any image format `finetune train`
    /// reads: folders, CSV lists, pixel CSVs, IDX, CIFAR, Parquet).
    #[arg(long, alias = "train-file", num_args = 1.., help_heading = "Data")]
    pub train: Vec<PathBuf>,
    /// The classes meta-training draws its tasks from, comma-separated names (default: every
    /// class of --train).
    #[arg(long, value_delimiter = ',', help_heading = "Data")]
    pub classes: Option<Vec<String>>,
    /// Held-out classes to measure few-shot accuracy on, before and after meta-training
    /// (comma-separated names of --train's classes, none of --classes).
    #[arg(long, value_delimiter = ',', help_heading = "Data")]
    pub eval_classes: Option<Vec<String>>,
    /// Episodes of --eval-classes the few-shot accuracy is averaged over.
    #[arg(long, default_value_t = 100, help_heading = "Data")]
    pub eval_episodes: usize,
    /// Inner steps of the few-shot evaluation's adaptation (default: --inner-steps).
    #[arg(long, help_heading = "Data")]
    pub eval_inner_steps: Option<usize>,
    /// The column holding the labels (CSV lists, Parquet).
    #[arg(long, default_value = "label", help_heading = "Data")]
    pub label_column: String,
    /// Parquet image datasets: the column holding the images.
    #[arg(long, default_value = "image", help_heading = "Data")]
    pub image_column: String,
    /// Square input size (pixels) (default: the checkpoint's; with an architecture name, the
    /// images' size).
    #[arg(long, help_heading = "Data")]
    pub image_size: Option<usize>,
    /// Input channels of a network started from scratch: 1 (grayscale) or 3 (RGB).
    #[arg(long, help_heading = "Data")]
    pub channels: Option<usize>,
    /// Where the meta-trained model goes (a model folder `finetune train --model` takes).
    #[arg(long, help_heading = "Run")]
    pub output: Option<PathBuf>,
    /// Replace a non-empty --output.
    #[arg(long, help_heading = "Run")]
    pub overwrite: bool,
    /// `auto`, `cpu`, `cuda`, `cuda:N` or `metal`.
    #[arg(long, default_value = "auto", help_heading = "Run")]
    pub device: String,
}

impl Default for MetaJob {
    /// The flags' defaults.
    fn default() -> Self {
        schema::defaults()
    }
}

/// Everything `finetune meta-train` is told.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct MetaSettings {
    /// The model, data and output.
    #[command(flatten)]
    #[serde(flatten)]
    pub job: MetaJob,
    /// Reptile's settings.
    #[command(flatten)]
    #[serde(flatten)]
    pub reptile: ReptileConfig,
}

/// The file in a meta-trained model folder recording the settings it was trained with.
pub const META_CONFIG: &str = "meta_config.json";

impl MetaSettings {
    /// The flags of these settings.
    pub fn command() -> clap::Command {
        Self::augment_args(clap::Command::new("meta-train"))
    }

    /// The settings of a command line over an optional settings file (TOML, or JSON such as
    /// a run's `meta_config.json`): a flag given on the command line overrides the file.
    pub fn from_matches(matches: &clap::ArgMatches, config: Option<&Path>) -> Result<Self> {
        let file = match config {
            Some(path) => schema::read_file(path, &Self::command())?,
            None => Default::default(),
        };
        let cli = <Self as clap::FromArgMatches>::from_arg_matches(matches)?;
        let (settings, _) = schema::merge(file, &cli, matches)
            .context("in the meta-training settings (--config file or flags)")?;
        Ok(settings)
    }

    /// The model and output, which every run needs, and the checks that need no data: each
    /// failure one line naming its flag.
    pub fn check(&self) -> Result<(&str, &Path)> {
        let j = &self.job;
        let model = j
            .model
            .as_deref()
            .context("--model is required (an image checkpoint or an architecture name)")?;
        let output = j
            .output
            .as_deref()
            .context("--output is required (the folder for the meta-trained model)")?;
        if j.train.is_empty() {
            bail!("no training data: give --train");
        }
        self.reptile.validate()?;
        if j.eval_classes.is_some() && j.eval_episodes == 0 {
            bail!("--eval-episodes must be at least 1 (got 0)");
        }
        if j.eval_inner_steps == Some(0) {
            bail!("--eval-inner-steps must be at least 1 (got 0)");
        }
        if let Some(c) = j.channels.filter(|c| ![1, 3].contains(c)) {
            bail!("--channels must be 1 or 3 (got {c})");
        }
        if j.image_size == Some(0) {
            bail!("--image-size must be at least 1 (got 0)");
        }
        j.device.parse::<finetune_core::DeviceSpec>()?;
        let non_empty = std::fs::read_dir(output).is_ok_and(|mut d| d.next().is_some());
        if non_empty && !j.overwrite {
            bail!(
                "{} is not empty: give --overwrite to replace it, or another --output",
                output.display()
            );
        }
        Ok((model, output))
    }
}
