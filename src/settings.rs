//! The settings of a fine-tuning run, the one schema behind `finetune train`'s flags, the keys
//! of a `--config` file and `run_config.json`: what to train and where ([`JobSettings`]),
//! which data ([`DataSettings`], with [`TextSettings`], [`ImageSettings`] and
//! [`TokenSettings`] for each task),
//! how ([`TrainConfig`]), and where the result is shared ([`HubSettings`]). Each struct derives clap's `Args` and serde; their field names
//! are the keys, their flag aliases the accepted alternatives (see
//! [`finetune_train::settings`]).

use crate::tasks::augment::Augment;
use crate::tasks::image::ImageRecipes;
pub use crate::tasks::text::multitask::TaskSampling;
use anyhow::{bail, Context, Result};
use clap::{ArgMatches, Args, Command, FromArgMatches, ValueEnum};
use finetune_data::text::TextColumns;
use finetune_train::settings::{self as schema};
use finetune_train::TrainConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What a run fine-tunes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// One label per text or text pair (transformers' sequence classification).
    TextClassification,
    /// One label per image, or a set of labels (multi-label).
    ImageClassification,
    /// One tag per word (named entity recognition; transformers' token classification).
    TokenClassification,
}

impl Task {
    /// The help heading of the settings that only this task takes.
    fn heading(self) -> &'static str {
        match self {
            Task::TextClassification => TEXT_HEADING,
            Task::ImageClassification => IMAGE_HEADING,
            Task::TokenClassification => TOKEN_HEADING,
        }
    }

    /// Whether the setting `id` under help heading `heading` applies to this task: settings
    /// under no task's heading apply to all; token classification also takes the text
    /// task's `max_length`.
    fn takes(self, heading: Option<&str>, id: &str) -> bool {
        let task_headings = [TEXT_HEADING, IMAGE_HEADING, TOKEN_HEADING];
        match heading {
            Some(h) if task_headings.contains(&h) => {
                h == self.heading() || (self == Task::TokenClassification && id == "max_length")
            }
            _ => true,
        }
    }

    /// PEFT's `task_type` for an adapter of this task (`None`: PEFT has none, as for timm's
    /// image models).
    pub fn peft_task_type(self) -> Option<&'static str> {
        match self {
            Task::TextClassification => Some("SEQ_CLS"),
            Task::ImageClassification => None,
            Task::TokenClassification => Some("TOKEN_CLS"),
        }
    }

    /// How messages name the task.
    pub fn describe(self) -> &'static str {
        match self {
            Task::TextClassification => "text classification",
            Task::ImageClassification => "image classification",
            Task::TokenClassification => "token classification",
        }
    }
}

const TEXT_HEADING: &str = "Text data";
/// The help heading of the settings only image classification takes.
pub(crate) const IMAGE_HEADING: &str = "Image data";
const TOKEN_HEADING: &str = "Token data";

/// What to fine-tune, from what, into where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct JobSettings {
    /// What to fine-tune for.
    #[arg(long, value_enum, help_heading = "Run")]
    pub task: Option<Task>,
    /// A Hub id (`org/name[@revision]`), a local folder, or an architecture to train from
    /// scratch (`resnet18`).
    #[arg(long, help_heading = "Model")]
    pub model: Option<String>,
    /// Where checkpoints, logs and the exported model go.
    #[arg(long, visible_alias = "output-dir", help_heading = "Run")]
    pub output: Option<PathBuf>,
    /// Continue from a checkpoint folder, or the newest one under --output (`latest`, the
    /// default when the flag has no value).
    #[arg(long, alias = "resume-from-checkpoint", num_args = 0..=1, default_missing_value = "latest", help_heading = "Run")]
    pub resume: Option<String>,
    /// Train into a non-empty --output, removing an earlier run's outputs (checkpoints, logs,
    /// the exported model) first; without it a non-empty folder is refused unless --resume.
    #[arg(long, visible_alias = "overwrite-output-dir", help_heading = "Run")]
    pub overwrite: bool,
    /// `auto`, `cpu`, `cuda`, `cuda:N` or `metal`.
    #[arg(long, default_value = "auto", help_heading = "Devices")]
    pub device: String,
    /// Train data-parallel with the other processes of an MPI job (`mpirun -np N finetune
    /// train ...`, a build with `--features mpi`): --batch-size is each process's, rank 0
    /// writes the output. Implied when mpirun starts the program.
    #[arg(long, help_heading = "Devices")]
    pub distributed: bool,
    /// Matrix products in bfloat16 (transformers' `bf16`, as PyTorch's autocast): linear
    /// layers (LoRA adapters included) and attention, and on a GPU convolutions too; weights,
    /// gradients and the optimizer stay f32. On CUDA, Metal and CPUs with AMX-BF16 or
    /// AVX512-BF16; refused on other CPUs.
    #[arg(long, help_heading = "Devices")]
    pub bf16: bool,
    /// Matrix products in float16 with dynamic loss scaling (transformers' `fp16`, as
    /// PyTorch's autocast with `GradScaler`): the products of `--bf16` in f16, the loss
    /// scaled from 65536 (halved and the step skipped on an overflow, doubled after 2000
    /// finite steps). On CUDA and Metal (and the CPU's `FINETUNE_OPS=generic` path).
    #[arg(long, help_heading = "Devices", conflicts_with = "bf16")]
    pub fp16: bool,
    /// `bf16`, `fp16` or `no` (Accelerate's name): the same as --bf16 / --fp16 / neither.
    #[arg(long, value_enum, help_heading = "Devices")]
    pub mixed_precision: Option<MixedPrecision>,
    /// Dropout probability replacing the checkpoint's.
    #[arg(long, help_heading = "Model")]
    pub dropout: Option<f64>,
    /// Accept `pytorch_model.bin` weights (read, never executed) when there are no
    /// safetensors.
    #[arg(long, help_heading = "Model")]
    pub allow_pickle: bool,
}

/// Which data, and which labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct DataSettings {
    /// Training files (CSV, TSV, JSONL, Parquet; image folders and files for images).
    #[arg(long, alias = "train-file", num_args = 1.., help_heading = "Data")]
    pub train: Vec<PathBuf>,
    /// Evaluation files, evaluated during training.
    #[arg(long, visible_alias = "validation", alias = "validation-file", num_args = 1.., help_heading = "Data")]
    pub eval: Vec<PathBuf>,
    /// Test files, evaluated once after training.
    #[arg(long, alias = "test-file", num_args = 1.., help_heading = "Data")]
    pub test: Vec<PathBuf>,
    /// A Hub dataset id (or a local snapshot folder) with train/validation/test splits.
    #[arg(long, alias = "dataset-name", help_heading = "Data")]
    pub dataset: Option<String>,
    /// The column holding the labels.
    #[arg(long, default_value = "label", help_heading = "Data")]
    pub label_column: String,
    /// Class names in id order, comma-separated (default: the training data's labels, sorted;
    /// a checkpoint trained for the same labels keeps its head and its order).
    #[arg(long, value_delimiter = ',', help_heading = "Data")]
    pub labels: Option<Vec<String>>,
    /// The number of classes, checked against the training data's labels (integer labels are
    /// the ids `0..N`, some of which the training data may lack).
    #[arg(long, help_heading = "Data")]
    pub num_labels: Option<usize>,
    /// `single_label_classification`, `multi_label_classification` (labels `;`-separated in
    /// the label column, or --label-columns) or `regression` (a number per row; text only)
    /// [default: told from the labels: `;` → multi-label, numbers with a fraction →
    /// regression].
    #[arg(long, help_heading = "Data")]
    pub problem_type: Option<finetune_core::ProblemType>,
    /// Hold out this fraction of the training rows for evaluation when there is no --eval.
    #[arg(long, help_heading = "Data")]
    pub validation_split: Option<f64>,
    /// Train on at most this many rows (a seeded sample).
    #[arg(long, help_heading = "Data")]
    pub max_train_samples: Option<usize>,
    /// Skip (and count) bad rows instead of stopping at the first.
    #[arg(long, help_heading = "Data")]
    pub skip_bad_samples: bool,
}

impl DataSettings {
    /// What a bad sample does: stop with its file and row, or be skipped and counted.
    pub fn on_bad(&self) -> finetune_data::OnBadSample {
        if self.skip_bad_samples {
            finetune_data::OnBadSample::Skip
        } else {
            finetune_data::OnBadSample::Error
        }
    }
}

/// Settings only text classification takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct TextSettings {
    /// The column holding the text.
    #[arg(long, default_value = "text", help_heading = TEXT_HEADING)]
    pub text_column: String,
    /// The column holding the second text of a pair task.
    #[arg(long, help_heading = TEXT_HEADING)]
    pub text_pair_column: Option<String>,
    /// Rows sharing this column's value stay on one side of --validation-split.
    #[arg(long, help_heading = TEXT_HEADING)]
    pub group_column: Option<String>,
    /// Tokens per text (default: 128, or the model's limit when smaller).
    #[arg(long, visible_alias = "max-seq-length", help_heading = TEXT_HEADING)]
    pub max_length: Option<usize>,
    /// Multi-label data as one 0/1 column per label, comma-separated (the column names are
    /// the labels, in this order); replaces --label-column.
    #[arg(long, value_delimiter = ',', help_heading = TEXT_HEADING)]
    pub label_columns: Vec<String>,
    /// Multi-task fine-tuning: a TOML file of `[[task]]` tables (name, data, labels, problem
    /// type, loss weight), each trained as its own head on one shared encoder; replaces
    /// --train/--eval/--test (see the guide's "Multi-task fine-tuning").
    #[arg(long, help_heading = TEXT_HEADING)]
    pub task_config: Option<PathBuf>,
    /// Multi-task: how each batch's task is drawn: `proportional` to the tasks' training rows,
    /// or `temperature` (probability ∝ rows^(1/T), T = --task-temperature).
    #[arg(long, value_enum, default_value = "proportional", help_heading = TEXT_HEADING)]
    pub task_sampling: TaskSampling,
    /// Multi-task: the temperature T of `--task-sampling temperature` (T = 1 is
    /// proportional; larger T draws small tasks more often) [default: 2].
    #[arg(long, help_heading = TEXT_HEADING)]
    pub task_temperature: Option<f64>,
}

impl TextSettings {
    /// The columns to read, with the label column of `data`.
    pub fn columns(&self, data: &DataSettings) -> TextColumns {
        TextColumns {
            text: self.text_column.clone(),
            pair: self.text_pair_column.clone(),
            label: data.label_column.clone(),
            label_columns: self.label_columns.clone(),
            group: self.group_column.clone(),
        }
    }
}

/// Settings only token classification takes (with the text task's `--max-length`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct TokenSettings {
    /// JSONL and Parquet data: the column holding each sentence's list of words.
    #[arg(long, default_value = "tokens", help_heading = TOKEN_HEADING)]
    pub tokens_column: String,
    /// JSONL and Parquet data: the column holding each sentence's list of tags (strings, or
    /// integer ids naming --labels).
    #[arg(long, default_value = "ner_tags", help_heading = TOKEN_HEADING)]
    pub tags_column: String,
    /// Label every piece of a word with the word's tag (default: only the first piece; the
    /// others are ignored by the loss and the metrics).
    #[arg(long, help_heading = TOKEN_HEADING)]
    pub label_all_tokens: bool,
}

impl TokenSettings {
    /// The columns to read from JSONL and Parquet files.
    pub fn columns(&self) -> finetune_data::tokens::TokenColumns {
        finetune_data::tokens::TokenColumns {
            tokens: self.tokens_column.clone(),
            tags: self.tags_column.clone(),
        }
    }
}

/// Settings only image classification takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct ImageSettings {
    /// Training augmentation: `none`, `light`, `timm` or `strong`, then optional `KEY=VALUE`
    /// overrides (`scale=LO:HI`, `ratio=LO:HI`, `hflip=P`, `rotation=DEG`, `jitter=X`,
    /// `hue=X`), e.g. `light,hflip=0,rotation=10`.
    #[arg(long, default_value = "light", help_heading = IMAGE_HEADING)]
    pub augment: Augment,
    /// Parquet image datasets: the column holding the images.
    #[arg(long, default_value = "image", help_heading = IMAGE_HEADING)]
    pub image_column: String,
    /// Square input size (pixels) (default: the checkpoint's; with an architecture name
    /// (`resnet18`), the training images' size, the most common one when they differ).
    #[arg(long, help_heading = IMAGE_HEADING)]
    pub image_size: Option<usize>,
    /// Input channels of a network trained from scratch: 1 (grayscale) or 3 (RGB).
    #[arg(long, help_heading = IMAGE_HEADING)]
    pub channels: Option<usize>,
    /// Evaluate and test on at most this many images each (a seeded sample).
    #[arg(long, help_heading = IMAGE_HEADING)]
    pub max_eval_samples: Option<usize>,
    /// timm's recipes: mixup, cutmix, random erasing.
    #[command(flatten)]
    #[serde(flatten)]
    pub recipes: ImageRecipes,
}

/// LoRA: train low-rank adapters on a frozen model (PEFT's `LoraConfig` names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct LoraSettings {
    /// Train LoRA adapters instead of the whole model: the base weights freeze, the head
    /// trains whole; the export holds the merged model and `adapter/` in PEFT's format.
    #[arg(long, help_heading = LORA_HEADING)]
    pub lora: bool,
    /// The adapters' rank `r`.
    #[arg(long, default_value_t = 8, help_heading = LORA_HEADING)]
    pub lora_r: usize,
    /// `lora_alpha`: adapters are scaled by alpha / r.
    #[arg(long, default_value_t = 16.0, help_heading = LORA_HEADING)]
    pub lora_alpha: f64,
    /// Dropout on the adapters' input, in training.
    #[arg(long, default_value_t = 0.1, help_heading = LORA_HEADING)]
    pub lora_dropout: f64,
    /// Layers to adapt: names (`query,value`), globs over the layer path (`layer4.*.conv*`)
    /// or `all-linear` (default: the family's, as PEFT's: BERT `query,value`).
    #[arg(long, value_delimiter = ',', alias = "target-modules", help_heading = LORA_HEADING)]
    pub lora_target: Option<Vec<String>>,
    /// rsLoRA: scale by alpha / √r.
    #[arg(long, help_heading = LORA_HEADING)]
    pub use_rslora: bool,
    /// A PEFT LoRA adapter (a folder or a Hub id) to apply to --model and train further.
    #[arg(long, help_heading = LORA_HEADING)]
    pub adapter: Option<PathBuf>,
}

const LORA_HEADING: &str = "LoRA";

impl LoraSettings {
    /// PEFT's `LoraConfig` of these settings, targeting `default_targets` unless
    /// `--lora-target` is given.
    pub fn config(&self, default_targets: &[&str]) -> finetune_core::lora::LoraConfig {
        finetune_core::lora::LoraConfig {
            r: self.lora_r,
            alpha: self.lora_alpha,
            dropout: self.lora_dropout,
            target: match &self.lora_target {
                Some(t) => t.clone(),
                None => default_targets.iter().map(|t| t.to_string()).collect(),
            },
            use_rslora: self.use_rslora,
        }
    }
}

/// Sharing the final model on the Hub: transformers' `push_to_hub` settings. The token is no
/// setting (settings are recorded in `run_config.json`): `finetune train --hub-token`, else
/// `HF_TOKEN` or the token file (see [`crate::tasks::push`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct HubSettings {
    /// Push the exported model (the output folder without its checkpoints) to the Hub when
    /// training ends; not after an interrupt.
    #[arg(long, help_heading = HUB_HEADING)]
    pub push_to_hub: bool,
    /// The repository to push to: `org/name`, or `name` in the token owner's namespace
    /// (default: the --output folder's name); created when missing.
    #[arg(long, help_heading = HUB_HEADING)]
    pub hub_model_id: Option<String>,
    /// Create the repository private (an existing one keeps its visibility).
    #[arg(long, help_heading = HUB_HEADING)]
    pub hub_private_repo: bool,
}

/// The help heading of the Hub settings (and of `--hub-token`).
pub const HUB_HEADING: &str = "Hub";

/// Everything a run is told.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct RunSettings {
    /// What to fine-tune, from what, into where.
    #[command(flatten)]
    #[serde(flatten)]
    pub job: JobSettings,
    /// Which data, and which labels.
    #[command(flatten)]
    #[serde(flatten)]
    pub data: DataSettings,
    /// Settings only text classification takes.
    #[command(flatten)]
    #[serde(flatten)]
    pub text: TextSettings,
    /// Settings only image classification takes.
    #[command(flatten)]
    #[serde(flatten)]
    pub image: ImageSettings,
    /// Settings only token classification takes.
    #[command(flatten)]
    #[serde(flatten)]
    pub token: TokenSettings,
    /// LoRA adapters.
    #[command(flatten)]
    #[serde(flatten)]
    pub lora: LoraSettings,
    /// How to train.
    #[command(flatten)]
    #[serde(flatten)]
    pub train: TrainConfig,
    /// Sharing the final model on the Hub.
    #[command(flatten)]
    #[serde(flatten)]
    pub hub: HubSettings,
}

macro_rules! defaults_from_flags {
    ($($t:ty),+) => {$(
        impl Default for $t {
            /// The flags' defaults.
            fn default() -> Self {
                schema::defaults()
            }
        }
    )+};
}
defaults_from_flags!(
    JobSettings,
    DataSettings,
    TextSettings,
    ImageSettings,
    TokenSettings,
    LoraSettings,
    HubSettings
);

/// The file in a training output folder, and in each of its checkpoints, that records the
/// run's resolved settings ([`RunSettings::resolved_json`]).
pub const RUN_CONFIG: &str = "run_config.json";

/// `--mixed-precision`'s values (Accelerate's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MixedPrecision {
    /// f32 products.
    No,
    /// As `--bf16`.
    Bf16,
    /// As `--fp16`.
    Fp16,
}

/// Why `--fp16` is refused on the CPU's fused kernels.
const FP16_ON_CPU: &str = "--fp16 runs on a GPU (CUDA, Metal): the CPU's fused kernels have no \
     f16 products; on a CPU with AMX-BF16 or AVX512-BF16 use --bf16";

impl JobSettings {
    /// The training device, with `--bf16`'s matrix products switched on (for this process)
    /// when asked for: the CPU's fused bf16 kernels, or off them (a GPU, or the CPU's generic
    /// path) the composed products cast to bf16.
    pub fn open_device(&self) -> Result<candle_core::Device> {
        use finetune_kernels::ops::{self, MatmulPrecision};
        let device = finetune_core::select_device(&self.device)?;
        let (bf16, fp16) = self.half_precision()?;
        if fp16 {
            if device.is_cpu() && !ops::generic_requested() {
                bail!(FP16_ON_CPU);
            }
            ops::set_composed_precision(MatmulPrecision::F16);
        }
        if bf16 {
            if device.is_cpu() && !ops::generic_requested() {
                ops::set_matmul_precision(MatmulPrecision::Bf16)
                    .map_err(|e| anyhow::anyhow!("--bf16: {e}"))?;
            } else {
                ops::set_composed_precision(MatmulPrecision::Bf16);
            }
        }
        Ok(device)
    }

    /// Whether the products run in bf16 and in f16: `--bf16`, `--fp16`, or `--mixed-precision`,
    /// which must agree with them.
    fn half_precision(&self) -> Result<(bool, bool)> {
        if self.bf16 && self.fp16 {
            bail!("--bf16 and --fp16 exclude each other");
        }
        let asked = match (self.bf16, self.fp16) {
            (true, _) => MixedPrecision::Bf16,
            (_, true) => MixedPrecision::Fp16,
            _ => MixedPrecision::No,
        };
        match self.mixed_precision {
            Some(m) if asked != MixedPrecision::No && m != asked => bail!(
                "--mixed-precision {} contradicts --{}",
                m.to_possible_value().expect("a named value").get_name(),
                if self.bf16 { "bf16" } else { "fp16" }
            ),
            Some(MixedPrecision::Bf16) => Ok((true, false)),
            Some(MixedPrecision::Fp16) => Ok((false, true)),
            _ => Ok((self.bf16, self.fp16)),
        }
    }

    /// `--bf16`'s and `--fp16`'s check before any work: on the CPU's fused kernels bf16 needs
    /// AMX-BF16 or AVX512-BF16 and f16 is refused (a GPU, or `auto` in a build that may pick
    /// one, decides when it opens).
    fn check_bf16(&self) -> Result<()> {
        use finetune_core::DeviceSpec;
        let gpu_build =
            candle_core::utils::cuda_is_available() || candle_core::utils::metal_is_available();
        let spec = self.device.parse::<DeviceSpec>()?;
        let (bf16, fp16) = self.half_precision()?;
        let on_cpu = matches!(spec, DeviceSpec::Cpu) || (spec == DeviceSpec::Auto && !gpu_build);
        if fp16 && on_cpu && !finetune_kernels::ops::generic_requested() {
            bail!(FP16_ON_CPU);
        }
        match spec {
            _ if !bf16 || finetune_kernels::ops::generic_requested() => Ok(()),
            DeviceSpec::Cuda(_) | DeviceSpec::Metal(_) => Ok(()),
            DeviceSpec::Auto if gpu_build => Ok(()),
            DeviceSpec::Auto | DeviceSpec::Cpu => {
                finetune_kernels::ops::bf16_kernel().map_err(|e| anyhow::anyhow!("--bf16: {e}"))?;
                Ok(())
            }
        }
    }
}

impl RunSettings {
    /// The settings a training run recorded in `dir` (its output folder or one of its
    /// checkpoints: [`RUN_CONFIG`]); `None` when `dir` holds no record.
    pub fn recorded(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(RUN_CONFIG);
        if !path.is_file() {
            return Ok(None);
        }
        let map = schema::read_file(&path, &Self::command())?;
        Ok(Some(schema::from_map(Some(&path), map)?))
    }

    /// The flags of these settings (`finetune train`'s, but `--config` and `--json`).
    pub fn command() -> Command {
        Self::augment_args(Command::new("train"))
    }

    /// The defaults, for `task` on `model` into `output`.
    pub fn new(task: Task, model: impl Into<String>, output: impl Into<PathBuf>) -> Self {
        let mut s = Self::default();
        s.job.task = Some(task);
        s.job.model = Some(model.into());
        s.job.output = Some(output.into());
        s
    }

    /// The settings of a command line: a `--config` file's keys (`config`), overridden by
    /// every flag `matches` holds from the command line — and, with `--resume`, over the
    /// settings the run recorded ([`crate::resume`]). Also gives the keys the user set (in the
    /// file or as flags, or the record), which [`Self::check_task`] needs.
    pub fn from_matches(
        matches: &ArgMatches,
        config: Option<&Path>,
    ) -> Result<(Self, BTreeSet<String>)> {
        let file = match config {
            Some(path) => schema::read_file(path, &Self::command())?,
            None => Default::default(),
        };
        let cli = Self::from_arg_matches(matches)?;
        let (settings, given) = schema::merge(file, &cli, matches)
            .context("in the training settings (--config file or flags)")?;
        crate::resume::over_record(settings, given)
    }

    /// The task, model and output folder, which every run needs.
    pub fn required(&self) -> Result<(Task, &str, &Path)> {
        let task = self.job.task.context(
            "--task is required (text-classification, image-classification or \
                 token-classification)",
        )?;
        let model = self
            .job
            .model
            .as_deref()
            .context("--model is required (a Hub id or a local folder)")?;
        let output =
            self.job.output.as_deref().context(
                "--output is required (the folder for checkpoints and the exported model)",
            )?;
        Ok((task, model, output))
    }

    /// Every check a command line's settings must pass before any work: the task, model and
    /// output are given, no setting of the other task (`given`: the keys the user set), the
    /// training settings valid, a known `--device`, `--resume` and `--overwrite` not both,
    /// training data named (`--train`, `--dataset`, or a `--task-config` that reads and whose
    /// settings a multi-task run takes), evaluation data for early stopping and
    /// `--load-best-at-end`. Returns the task. Each failure is a usage error.
    pub fn check(&self, given: &BTreeSet<String>) -> Result<Task> {
        let (task, _, _) = self.required()?;
        Self::check_task(task, given)?;
        self.train.validate()?;
        self.image.recipes.validate()?;
        if self.lora.lora || self.lora.adapter.is_some() {
            self.lora
                .config(&[finetune_core::lora::ALL_LINEAR])
                .validate()?;
        }
        self.job.device.parse::<finetune_core::DeviceSpec>()?;
        self.job.check_bf16()?;
        if task == Task::TokenClassification && self.train.teacher.is_some() {
            bail!("--teacher applies to text and image classification");
        }
        if task == Task::ImageClassification && self.train.class_weights.is_some() {
            bail!("--class-weights applies to text and token classification");
        }
        self.check_problem_type(task)?;
        if self.job.resume.is_some() && self.job.overwrite {
            bail!("give --resume or --overwrite, not both");
        }
        crate::tasks::text::multitask::check_settings(self)?;
        let tasks = self.text.task_config.is_some();
        if !tasks && self.data.train.is_empty() && self.data.dataset.is_none() {
            bail!("no training data: give --train FILE or --dataset ID");
        }
        let t = &self.train;
        let no_eval_data = self.data.eval.is_empty()
            && self.data.validation_split.is_none()
            && self.data.dataset.is_none();
        if no_eval_data && (t.early_stopping_patience.is_some() || t.load_best_at_end) {
            bail!(
                "early stopping and --load-best-at-end need evaluation data: give --eval, \
                 --validation-split or a --dataset with a validation split"
            );
        }
        Ok(task)
    }

    /// `--problem-type` and `--pos-weight` where the task has that problem: text
    /// classification all three, images single- or multi-label (no mixup with multi-label),
    /// tokens single-label.
    fn check_problem_type(&self, task: Task) -> Result<()> {
        use finetune_core::ProblemType::*;
        let p = self.data.problem_type;
        match task {
            Task::TextClassification => {}
            Task::ImageClassification => {
                if p == Some(Regression) {
                    bail!(
                        "--problem-type regression applies to text classification; image \
                         classification is single_label_classification or \
                         multi_label_classification"
                    );
                }
                if p == Some(MultiLabelClassification) {
                    self.image.recipes.check_multi_label()?;
                }
            }
            _ => {
                if p.is_some_and(|p| p != SingleLabelClassification) {
                    bail!(
                        "--problem-type {} applies to text and image classification; {} is \
                         single-label",
                        p.unwrap_or(SingleLabelClassification),
                        task.describe()
                    );
                }
                if self.train.pos_weight.is_some() {
                    bail!("--pos-weight applies to multi-label text and image classification");
                }
            }
        }
        Ok(())
    }

    /// Refuses settings the user gave (`given` keys) that belong to the other task.
    pub fn check_task(task: Task, given: &BTreeSet<String>) -> Result<()> {
        let cmd = Self::command();
        for arg in cmd.get_arguments() {
            let other = !task.takes(arg.get_help_heading(), arg.get_id().as_str());
            if other && given.contains(arg.get_id().as_str()) {
                bail!(
                    "--{} does not apply to {}",
                    arg.get_long().unwrap_or_default(),
                    task.describe()
                );
            }
        }
        Ok(())
    }

    /// The resolved settings as `run_config.json` holds them: every key of `task` (those of
    /// the other task left out), readable again with `--config`.
    pub fn resolved_json(&self, task: Task) -> Result<serde_json::Value> {
        let mut json = serde_json::to_value(self)?;
        if let Some(obj) = json.as_object_mut() {
            for arg in Self::command().get_arguments() {
                if !task.takes(arg.get_help_heading(), arg.get_id().as_str()) {
                    obj.remove(arg.get_id().as_str());
                }
            }
        }
        Ok(json)
    }
}
