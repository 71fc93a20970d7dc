//! `finetune train`: flags, over an optional `--config FILE.toml`, become a task's job; the
//! library runs it. Flags override the file; the file's keys are the flags' names with `_`
//! (transformers' `TrainingArguments` names are accepted too).

use crate::config_file::{self, FileKeys};
use anyhow::{bail, Context, Result};
use candle_finetune::tasks::image::{train_image, ImageJob};
use candle_finetune::tasks::text::{train_text, TextJob};
use candle_finetune::tasks::RunReport;
use candle_finetune::train::TrainConfig;
use clap::ValueEnum;
use serde_json::{Map, Value};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    TextClassification,
    ImageClassification,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to fine-tune for (may come from --config).
    #[arg(long, value_enum)]
    pub task: Option<Task>,
    /// A Hub id (`org/name[@revision]`) or a local folder.
    #[arg(long)]
    pub model: Option<String>,
    /// Where checkpoints, logs and the exported model go.
    #[arg(long, visible_alias = "output-dir")]
    pub output: Option<PathBuf>,
    /// A TOML file with the same keys as the flags (`learning_rate`-style aliases accepted).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue from a checkpoint folder, or the newest one under --output (`latest`, the
    /// default when the flag has no value).
    #[arg(long, num_args = 0..=1, default_missing_value = "latest")]
    pub resume: Option<String>,
    /// Train into a non-empty --output, removing an earlier run's outputs (checkpoints, logs,
    /// the exported model) first; without it a non-empty folder is refused unless --resume.
    #[arg(long, visible_alias = "overwrite-output-dir")]
    pub overwrite: bool,
    /// Print the run report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataFlags,
    #[command(flatten)]
    pub train: TrainFlags,
}

/// Data and model-setup flags.
#[derive(clap::Args, Debug, Default)]
pub struct DataFlags {
    /// Training files (CSV, TSV, JSONL, Parquet; image folders and files for images).
    #[arg(long, num_args = 1..)]
    pub train: Vec<PathBuf>,
    #[arg(long, num_args = 1.., visible_alias = "validation")]
    pub eval: Vec<PathBuf>,
    #[arg(long, num_args = 1..)]
    pub test: Vec<PathBuf>,
    /// A Hub dataset id (or a local snapshot folder) with train/validation/test splits.
    #[arg(long)]
    pub dataset: Option<String>,
    #[arg(long)]
    pub text_column: Option<String>,
    #[arg(long)]
    pub text_pair_column: Option<String>,
    #[arg(long)]
    pub label_column: Option<String>,
    /// Rows sharing this column's value stay on one side of --validation-split.
    #[arg(long)]
    pub group_column: Option<String>,
    /// Hold out this fraction of the training rows for evaluation when there is no --eval.
    #[arg(long)]
    pub validation_split: Option<f64>,
    #[arg(long)]
    pub max_train_samples: Option<usize>,
    /// Skip (and count) bad rows instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_samples: bool,
    #[arg(long, visible_alias = "max-seq-length")]
    pub max_length: Option<usize>,
    /// Class names in id order, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub labels: Option<Vec<String>>,
    #[arg(long)]
    pub num_labels: Option<usize>,
    /// Dropout probability replacing the checkpoint's.
    #[arg(long)]
    pub dropout: Option<f64>,
    /// Accept `pytorch_model.bin` weights (read, never executed) when there are no safetensors.
    #[arg(long)]
    pub allow_pickle: bool,
    /// `auto`, `cpu`, `cuda`, `cuda:N` or `metal`.
    #[arg(long)]
    pub device: Option<String>,
    /// Image training augmentation: `none`, `light` (default), `timm` or `strong`, then optional
    /// `KEY=VALUE` overrides (`scale=LO:HI`, `ratio=LO:HI`, `hflip=P`, `rotation=DEG`,
    /// `jitter=X`, `hue=X`), e.g. `light,hflip=0,rotation=10`.
    #[arg(long)]
    pub augment: Option<String>,
    /// Parquet image datasets: the column holding the images.
    #[arg(long)]
    pub image_column: Option<String>,
    /// Square input size (pixels) replacing the model's; with an architecture name (`resnet18`)
    /// the images' own size.
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Input channels of a network trained from scratch: 1 (grayscale) or 3 (RGB).
    #[arg(long)]
    pub channels: Option<usize>,
    /// Evaluate and test on at most this many images each (a seeded sample; image tasks).
    #[arg(long)]
    pub max_eval_samples: Option<usize>,
}

/// Training flags: the fields of [`TrainConfig`].
#[derive(clap::Args, Debug, Default)]
pub struct TrainFlags {
    #[arg(long, visible_alias = "num-train-epochs")]
    pub epochs: Option<u64>,
    #[arg(long)]
    pub max_steps: Option<u64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub eval_batch_size: Option<usize>,
    #[arg(long, visible_alias = "gradient-accumulation-steps")]
    pub grad_accum: Option<usize>,
    #[arg(long, visible_alias = "learning-rate")]
    pub lr: Option<f64>,
    /// sgd, adam, adamw, rmsprop or lion.
    #[arg(long)]
    pub optimizer: Option<String>,
    #[arg(long)]
    pub momentum: Option<f64>,
    #[arg(long)]
    pub nesterov: bool,
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Two comma-separated values, e.g. `0.9,0.999`.
    #[arg(long, value_delimiter = ',', num_args = 2)]
    pub betas: Option<Vec<f64>>,
    #[arg(long)]
    pub eps: Option<f64>,
    /// constant, linear, cosine, cosine-restarts, polynomial, step, multistep, exponential,
    /// one-cycle, inverse-sqrt (see `finetune lr-schedule --help`).
    #[arg(long, visible_alias = "lr-scheduler-type")]
    pub schedule: Option<String>,
    #[arg(long)]
    pub warmup_steps: Option<u64>,
    #[arg(long)]
    pub warmup_ratio: Option<f64>,
    #[arg(long)]
    pub min_lr: Option<f64>,
    #[arg(long)]
    pub num_cycles: Option<f64>,
    /// Clip the global gradient L2 norm (0: no clipping).
    #[arg(long)]
    pub max_grad_norm: Option<f64>,
    #[arg(long)]
    pub label_smoothing: Option<f64>,
    /// Freeze parameters matching these globs (`bert.encoder.layer.[0-3].*`, `*.bias`).
    #[arg(long, num_args = 1..)]
    pub freeze: Vec<String>,
    /// Unfreeze parameters matching these globs (applied after --freeze).
    #[arg(long, num_args = 1..)]
    pub unfreeze: Vec<String>,
    /// Gradual unfreezing: `EPOCH:PATTERN,...` (epochs count from 0).
    #[arg(long)]
    pub unfreeze_schedule: Option<String>,
    /// Gradual unfreezing: one more layer, top first, every N epochs.
    #[arg(long)]
    pub unfreeze_every: Option<u64>,
    /// Keep batch norm statistics fixed in frozen layers.
    #[arg(long)]
    pub freeze_bn: bool,
    /// Layer-wise lr decay: layer k from the top trains at lr * decay^k.
    #[arg(long)]
    pub layer_lr_decay: Option<f64>,
    /// Lr of the classification head.
    #[arg(long)]
    pub head_lr: Option<f64>,
    #[arg(long)]
    pub l1: Option<f64>,
    #[arg(long)]
    pub l2: Option<f64>,
    #[arg(long)]
    pub eval_steps: Option<u64>,
    #[arg(long)]
    pub save_steps: Option<u64>,
    #[arg(long)]
    pub save_total_limit: Option<usize>,
    #[arg(long)]
    pub logging_steps: Option<u64>,
    #[arg(long)]
    pub early_stopping_patience: Option<usize>,
    /// loss, accuracy, f1, precision, recall, mse or pearson.
    #[arg(long, visible_alias = "metric-for-best-model")]
    pub metric: Option<String>,
    #[arg(long, visible_alias = "load-best-model-at-end")]
    pub load_best_at_end: bool,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub drop_last: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// A step whose loss or gradients are NaN/Inf: `stop` the run (default; the last good
    /// checkpoint is named) or `skip` that optimizer step (logged in metrics.jsonl).
    #[arg(long, value_parser = ["skip", "stop"])]
    pub on_nan: Option<String>,
    /// Always run the whole model, even when a frozen backbone's features could be cached.
    #[arg(long)]
    pub no_feature_cache: bool,
}

impl TrainFlags {
    /// The flags given, as [`TrainConfig`] keys.
    fn overrides(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        let j = |v: &dyn erased::ToJson| v.to_json();
        put("epochs", j(&self.epochs));
        put("max_steps", j(&self.max_steps));
        put("batch_size", j(&self.batch_size));
        put("eval_batch_size", j(&self.eval_batch_size));
        put("grad_accum", j(&self.grad_accum));
        put("lr", j(&self.lr));
        put("optimizer", j(&self.optimizer));
        put("momentum", j(&self.momentum));
        put("nesterov", j(&self.nesterov.then_some(true)));
        put("weight_decay", j(&self.weight_decay));
        put("betas", j(&self.betas));
        put("eps", j(&self.eps));
        put("schedule", j(&self.schedule));
        put("warmup_steps", j(&self.warmup_steps));
        put("warmup_ratio", j(&self.warmup_ratio));
        put("min_lr", j(&self.min_lr));
        put("num_cycles", j(&self.num_cycles));
        put("max_grad_norm", j(&self.max_grad_norm));
        put("label_smoothing", j(&self.label_smoothing));
        put(
            "freeze",
            j(&(!self.freeze.is_empty()).then_some(&self.freeze)),
        );
        put(
            "unfreeze",
            j(&(!self.unfreeze.is_empty()).then_some(&self.unfreeze)),
        );
        put("unfreeze_schedule", j(&self.unfreeze_schedule));
        put("unfreeze_every", j(&self.unfreeze_every));
        put("freeze_bn", j(&self.freeze_bn.then_some(true)));
        put("layer_lr_decay", j(&self.layer_lr_decay));
        put("head_lr", j(&self.head_lr));
        put("l1", j(&self.l1));
        put("l2", j(&self.l2));
        put("eval_steps", j(&self.eval_steps));
        put("save_steps", j(&self.save_steps));
        put("save_total_limit", j(&self.save_total_limit));
        put("logging_steps", j(&self.logging_steps));
        put("early_stopping_patience", j(&self.early_stopping_patience));
        put("metric", j(&self.metric));
        put(
            "load_best_at_end",
            j(&self.load_best_at_end.then_some(true)),
        );
        put("seed", j(&self.seed));
        put("drop_last", j(&self.drop_last.then_some(true)));
        put("progress", j(&self.no_progress.then_some(false)));
        put("on_nan", j(&self.on_nan));
        put("feature_cache", j(&self.no_feature_cache.then_some(false)));
        m
    }
}

/// `Option<T>` → `Option<Value>` without naming each `T`.
mod erased {
    use serde_json::Value;
    pub trait ToJson {
        fn to_json(&self) -> Option<Value>;
    }
    impl<T: serde::Serialize> ToJson for Option<T> {
        fn to_json(&self) -> Option<Value> {
            self.as_ref().and_then(|v| serde_json::to_value(v).ok())
        }
    }
}

/// The training configuration: defaults, then the file's keys, then the flags.
pub fn train_config(file: Map<String, Value>, flags: &TrainFlags) -> Result<TrainConfig> {
    // The file's keys go through `TrainConfig` first, so its aliases (`learning_rate`) come
    // back under the flags' names (`lr`): a flag then replaces the file's value instead of
    // clashing with it as a duplicate field.
    let from_file: TrainConfig = serde_json::from_value(Value::Object(file))
        .context("in the training settings of the --config file")?;
    let Value::Object(mut merged) = serde_json::to_value(&from_file)? else {
        unreachable!("TrainConfig serialises to an object")
    };
    merged.extend(flags.overrides());
    let config: TrainConfig = serde_json::from_value(Value::Object(merged))
        .context("in the training settings (--config file or flags)")?;
    config.validate()?;
    Ok(config)
}

pub fn run(args: Args) -> Result<()> {
    let (file, train_keys) = match &args.config {
        Some(path) => config_file::read(path)?,
        None => (FileKeys::default(), Map::new()),
    };
    let config = train_config(train_keys, &args.train)?;
    let task = args
        .task
        .or(file.task)
        .context("--task is required (text-classification or image-classification)")?;
    let model = args
        .model
        .clone()
        .or(file.model.clone())
        .context("--model is required (a Hub id or a local folder)")?;
    let output = args
        .output
        .clone()
        .or(file.output.clone())
        .context("--output is required (the folder for checkpoints and the exported model)")?;
    let report = match task {
        Task::TextClassification => train_text(&text_job(&args, &file, model, output, config)?)?,
        Task::ImageClassification => train_image(&image_job(&args, &file, model, output, config)?)?,
    };
    print_report(&report, args.json)
}

fn print_report(report: &RunReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        eprintln!(
            "{}: model exported to {}",
            report.outcome,
            report.output.display()
        );
    }
    Ok(())
}

/// Picks the flag's paths, else the file's.
fn pick(flag: &[PathBuf], from_file: &[PathBuf]) -> Vec<PathBuf> {
    if flag.is_empty() {
        from_file.to_vec()
    } else {
        flag.to_vec()
    }
}

/// Refuses flags (or config keys) that belong to the other task.
fn refuse(task: &str, given: &[(&str, bool)]) -> Result<()> {
    if let Some((name, _)) = given.iter().find(|(_, g)| *g) {
        bail!("--{name} does not apply to {task}");
    }
    Ok(())
}

/// Sets the job fields both tasks share (same names in `TextJob` and `ImageJob`) from the
/// flags, else the config file.
macro_rules! shared_job_fields {
    ($job:ident, $args:expr, $file:expr, $config:expr) => {{
        let (d, file) = (&$args.data, $file);
        $job.train = pick(&d.train, &file.train);
        $job.eval = pick(&d.eval, &file.eval);
        $job.test = pick(&d.test, &file.test);
        $job.dataset = d.dataset.clone().or(file.dataset.clone());
        $job.validation_split = d.validation_split.or(file.validation_split);
        $job.max_train_samples = d.max_train_samples.or(file.max_train_samples);
        $job.skip_bad_samples = d.skip_bad_samples || file.skip_bad_samples.unwrap_or(false);
        $job.labels = d.labels.clone().or(file.labels.clone());
        $job.num_labels = d.num_labels.or(file.num_labels);
        $job.dropout = d.dropout.or(file.dropout);
        $job.allow_pickle = d.allow_pickle || file.allow_pickle.unwrap_or(false);
        if let Some(device) = d.device.clone().or(file.device.clone()) {
            $job.device = device;
        }
        $job.resume = $args.resume.clone();
        $job.overwrite = $args.overwrite || file.overwrite.unwrap_or(false);
        $job.config = $config;
    }};
}

fn image_job(
    args: &Args,
    file: &FileKeys,
    model: String,
    output: PathBuf,
    config: TrainConfig,
) -> Result<ImageJob> {
    let d = &args.data;
    refuse(
        "image classification",
        &[
            (
                "text-column",
                d.text_column.is_some() || file.text_column.is_some(),
            ),
            (
                "text-pair-column",
                d.text_pair_column.is_some() || file.text_pair_column.is_some(),
            ),
            (
                "group-column",
                d.group_column.is_some() || file.group_column.is_some(),
            ),
            (
                "max-length",
                d.max_length.is_some() || file.max_length.is_some(),
            ),
        ],
    )?;
    let mut job = ImageJob::new(model, output);
    shared_job_fields!(job, args, file, config);
    if let Some(c) = d.image_column.clone().or(file.image_column.clone()) {
        job.image_column = c;
    }
    if let Some(c) = d.label_column.clone().or(file.label_column.clone()) {
        job.label_column = c;
    }
    job.max_eval_samples = d.max_eval_samples.or(file.max_eval_samples);
    job.image_size = d.image_size.or(file.image_size);
    job.channels = d.channels.or(file.channels);
    if let Some(a) = d.augment.as_ref().or(file.augment.as_ref()) {
        job.augment = a.parse()?;
    }
    Ok(job)
}

fn text_job(
    args: &Args,
    file: &FileKeys,
    model: String,
    output: PathBuf,
    config: TrainConfig,
) -> Result<TextJob> {
    let d = &args.data;
    let mut job = TextJob::new(model, output);
    shared_job_fields!(job, args, file, config);
    let column = |flag: &Option<String>, f: &Option<String>| flag.clone().or(f.clone());
    if let Some(c) = column(&d.text_column, &file.text_column) {
        job.columns.text = c;
    }
    if let Some(c) = column(&d.label_column, &file.label_column) {
        job.columns.label = c;
    }
    job.columns.pair = column(&d.text_pair_column, &file.text_pair_column);
    job.columns.group = column(&d.group_column, &file.group_column);
    job.max_length = d.max_length.or(file.max_length);
    refuse(
        "text classification",
        &[
            ("augment", d.augment.is_some() || file.augment.is_some()),
            (
                "image-column",
                d.image_column.is_some() || file.image_column.is_some(),
            ),
            (
                "image-size",
                d.image_size.is_some() || file.image_size.is_some(),
            ),
            ("channels", d.channels.is_some() || file.channels.is_some()),
            (
                "max-eval-samples",
                d.max_eval_samples.is_some() || file.max_eval_samples.is_some(),
            ),
        ],
    )?;
    Ok(job)
}
