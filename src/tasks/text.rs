//! Text classification with BERT: files or a Hub dataset → records → tokenised batches →
//! [`finetune_train::Learner`] → the exported folder, with test metrics and predictions.

pub use super::Prediction;
use super::{fit_and_test, sample_indices, split_files, write_folder_atomically, RunReport};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use finetune_bert::{BertBatch, BertForSequenceClassification, BertTokenizer, LoadOptions};
use finetune_core::{ParamStore, Rng};
use finetune_data::split::{grouped_split, random_split};
use finetune_data::text::{read_tables, RawTable, TextColumns, TextReadOptions, TextRecord};
use finetune_data::{LabelMap, OnBadSample};
use finetune_hub::{resolve_model, HubConfig, ModelOptions};
use finetune_train::{
    Batch, BatchSource, EvalMetrics, HeadSplit, Problem, TrainConfig, TrainModel,
};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A BERT classifier with its tokenizer, as the learner sees it.
pub struct TextClassifier {
    pub model: BertForSequenceClassification,
    pub tokenizer: BertTokenizer,
    /// Where the tokenizer files come from (copied on export).
    pub tokenizer_dir: PathBuf,
    pub device: Device,
}

impl TrainModel for TextClassifier {
    type Inputs = BertBatch;

    fn store(&self) -> &ParamStore {
        self.model.store()
    }

    fn forward_t(&self, inputs: &BertBatch, train: bool) -> finetune_core::Result<Tensor> {
        self.model.forward_t(inputs, train)
    }

    fn loss(&self, logits: &Tensor, targets: &Tensor, ls: f64) -> finetune_core::Result<Tensor> {
        self.model.loss(logits, targets, ls)
    }

    fn problem(&self) -> Problem {
        let labels = self.model.config().labels();
        match self.model.config().problem() {
            finetune_bert::ProblemType::Regression => Problem::Regression,
            finetune_bert::ProblemType::MultiLabelClassification => Problem::MultiLabel { labels },
            finetune_bert::ProblemType::SingleLabelClassification => {
                Problem::SingleLabel { labels }
            }
        }
    }

    fn rng_state(&self) -> Option<Rng> {
        Some(self.model.rng_state())
    }

    fn set_rng_state(&self, rng: Rng) {
        self.model.set_rng_state(rng)
    }

    fn export(&self, dir: &Path) -> finetune_core::Result<()> {
        self.model.export(dir, None, Some(&self.tokenizer_dir))
    }

    fn head_split(&self) -> Option<HeadSplit> {
        Some(HeadSplit {
            head: vec!["classifier.*".into()],
            backbone_randomness: self.model.pooled_randomness(),
        })
    }

    fn features(&self, inputs: &BertBatch, train: bool) -> finetune_core::Result<Tensor> {
        self.model.pooled(inputs, train)
    }

    fn head_forward(&self, pooled: &Tensor, train: bool) -> finetune_core::Result<Tensor> {
        self.model.forward_head(pooled, train)
    }
}

impl TextClassifier {
    /// Loads a BERT checkpoint (a folder or a Hub id) for classification.
    pub fn load(model: &str, opts: &TextModelOptions, device: &Device) -> Result<Self> {
        let files = resolve_model(
            model,
            &HubConfig::from_env(),
            &ModelOptions {
                allow_pickle: opts.allow_pickle,
            },
        )?;
        let load = LoadOptions {
            labels: opts.labels.clone(),
            dropout: opts.dropout,
            device: device.clone(),
            seed: opts.seed,
            ..LoadOptions::default()
        };
        let (model, report) = BertForSequenceClassification::from_pretrained(&files.dir, &load)
            .map_err(|e| super::in_model_files(e, &files))?;
        if !report.newly_initialized.is_empty() {
            eprintln!("{report}");
        }
        let max_pos = model.config().max_position_embeddings;
        let max_length = match opts.max_length {
            Some(m) => m,
            None => DEFAULT_MAX_LENGTH.min(BertTokenizer::max_length_limit(&files.dir, max_pos)?),
        };
        let tokenizer = BertTokenizer::from_dir(&files.dir, max_length, max_pos)?;
        tokenizer.check_vocab_fits(model.config().vocab_size)?;
        Ok(Self {
            model,
            tokenizer,
            tokenizer_dir: files.dir,
            device: device.clone(),
        })
    }

    /// Class probabilities for `texts`, in eval mode.
    pub fn predict(&self, texts: &[&str], top_k: usize) -> Result<Vec<Prediction>> {
        let labels = self.model.config().labels();
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(64) {
            let batch = self.tokenizer.batch(chunk, None, self.device())?;
            let logits = self.model.forward_t(&batch, false)?;
            for row in logits.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()? {
                out.push(Prediction::from_logits(&labels, row, top_k));
            }
        }
        Ok(out)
    }

    fn device(&self) -> &Device {
        &self.device
    }
}

/// Tokens per input when nothing says otherwise.
pub const DEFAULT_MAX_LENGTH: usize = 128;

/// How [`TextClassifier::load`] sets the model up.
#[derive(Debug, Clone, Serialize)]
pub struct TextModelOptions {
    /// Class names in id order; `None`: the checkpoint's.
    pub labels: Option<Vec<String>>,
    /// Tokens per input (longer inputs are truncated); `None`: [`DEFAULT_MAX_LENGTH`], or the
    /// model's limit when that is smaller.
    pub max_length: Option<usize>,
    /// Overrides the checkpoint's dropout probabilities.
    pub dropout: Option<f64>,
    /// Seeds a new head's initialisation and the dropout stream.
    pub seed: u64,
    pub allow_pickle: bool,
}

impl Default for TextModelOptions {
    fn default() -> Self {
        Self {
            labels: None,
            max_length: None,
            dropout: None,
            seed: 42,
            allow_pickle: false,
        }
    }
}

/// The labels a checkpoint was fine-tuned for, when its config names them (not transformers'
/// placeholder `LABEL_i`).
pub fn checkpoint_labels(model: &str, allow_pickle: bool) -> Result<Option<Vec<String>>> {
    let files = resolve_model(
        model,
        &HubConfig::from_env(),
        &ModelOptions { allow_pickle },
    )?;
    let config = finetune_bert::BertConfig::from_file(&files.dir.join("config.json"))?;
    let labels = config.labels();
    let placeholder = labels
        .iter()
        .enumerate()
        .all(|(i, l)| *l == format!("LABEL_{i}"));
    Ok((!placeholder).then_some(labels))
}

/// Text records tokenised on demand into [`BertBatch`]es.
impl TextClassifier {
    /// Batches of `records`, tokenised on demand by this classifier's tokenizer.
    pub fn batches<'a>(&'a self, records: &'a [TextRecord]) -> TextBatches<'a> {
        TextBatches {
            records,
            tokenizer: &self.tokenizer,
            device: self.device.clone(),
        }
    }
}

pub struct TextBatches<'a> {
    pub records: &'a [TextRecord],
    pub tokenizer: &'a BertTokenizer,
    pub device: Device,
}

impl BatchSource<BertBatch> for TextBatches<'_> {
    fn len(&self) -> usize {
        self.records.len()
    }

    /// Tokenisation does not depend on the epoch; a text's ids only gain padding in a batch.
    fn deterministic_train(&self) -> bool {
        true
    }

    fn batch(
        &self,
        indices: &[usize],
        _epoch: u64,
        _train: bool,
    ) -> finetune_core::Result<Batch<BertBatch>> {
        let rows: Vec<&TextRecord> = indices.iter().map(|&i| &self.records[i]).collect();
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        let pairs: Option<Vec<&str>> = rows.iter().map(|r| r.pair.as_deref()).collect();
        let inputs = self
            .tokenizer
            .batch(&texts, pairs.as_deref(), &self.device)?;
        let labels: Vec<u32> = rows.iter().map(|r| r.label as u32).collect();
        Ok(Batch {
            inputs,
            targets: Tensor::new(labels, &self.device)?,
        })
    }
}

/// Everything a text-classification run needs.
#[derive(Debug, Clone)]
pub struct TextJob {
    /// A folder or a Hub id.
    pub model: String,
    pub output: PathBuf,
    pub train: Vec<PathBuf>,
    pub eval: Vec<PathBuf>,
    pub test: Vec<PathBuf>,
    /// A Hub dataset (or a local snapshot folder) with train/validation/test files.
    pub dataset: Option<String>,
    pub columns: TextColumns,
    /// Tokens per text; `None`: [`DEFAULT_MAX_LENGTH`], or the model's limit when smaller.
    pub max_length: Option<usize>,
    /// Class names in id order; default: the checkpoint's named labels, else the sorted
    /// training labels.
    pub labels: Option<Vec<String>>,
    /// Classes `0..N` (integer labels in the data).
    pub num_labels: Option<usize>,
    pub dropout: Option<f64>,
    pub allow_pickle: bool,
    /// Hold out this fraction of the training rows when there is no eval set.
    pub validation_split: Option<f64>,
    /// Train on at most this many rows (a seeded sample).
    pub max_train_samples: Option<usize>,
    pub skip_bad_samples: bool,
    pub device: String,
    /// A checkpoint folder, or `latest` (the newest under `output`).
    pub resume: Option<String>,
    /// Train into a non-empty `output`, removing an earlier run's outputs first (see
    /// [`super::prepare_output`]); without it (and without `resume`) such a folder is refused.
    pub overwrite: bool,
    pub config: TrainConfig,
}

impl TextJob {
    /// A job with the library defaults for `model` → `output`.
    pub fn new(model: impl Into<String>, output: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            output: output.into(),
            train: Vec::new(),
            eval: Vec::new(),
            test: Vec::new(),
            dataset: None,
            columns: TextColumns::default(),
            max_length: None,
            labels: None,
            num_labels: None,
            dropout: None,
            allow_pickle: false,
            validation_split: None,
            max_train_samples: None,
            skip_bad_samples: false,
            device: "auto".into(),
            resume: None,
            overwrite: false,
            config: TrainConfig::default(),
        }
    }

    /// The resolved job as JSON (saved as `run_config.json` in the output folder).
    pub fn to_json(&self) -> serde_json::Value {
        let c = &self.columns;
        serde_json::json!({
            "task": "text-classification",
            "model": self.model,
            "output": self.output,
            "train": self.train,
            "eval": self.eval,
            "test": self.test,
            "dataset": self.dataset,
            "text_column": c.text,
            "text_pair_column": c.pair,
            "label_column": c.label,
            "group_column": c.group,
            "max_length": self.max_length,
            "labels": self.labels,
            "num_labels": self.num_labels,
            "dropout": self.dropout,
            "allow_pickle": self.allow_pickle,
            "validation_split": self.validation_split,
            "max_train_samples": self.max_train_samples,
            "skip_bad_samples": self.skip_bad_samples,
            "device": self.device,
            "resume": self.resume,
            "overwrite": self.overwrite,
            "train_config": self.config,
        })
    }

    /// The label map: `--labels`, else `--num-labels`, else the checkpoint's named labels,
    /// else the training labels in sorted order.
    fn label_map(&self, train: &RawTable) -> Result<LabelMap> {
        if let Some(names) = &self.labels {
            if self.num_labels.is_some_and(|n| n != names.len()) {
                bail!(
                    "--num-labels {} disagrees with the {} names of --labels",
                    self.num_labels.unwrap_or_default(),
                    names.len()
                );
            }
            return Ok(LabelMap::from_names(names.clone())?);
        }
        if let Some(n) = self.num_labels {
            return Ok(LabelMap::from_names(
                (0..n).map(|i| i.to_string()).collect(),
            )?);
        }
        if let Some(names) = checkpoint_labels(&self.model, self.allow_pickle)? {
            return Ok(LabelMap::from_names(names)?);
        }
        Ok(train.fit_labels()?)
    }
}

/// What a text run produced.
pub type TextRunReport = RunReport;

struct Splits {
    train: RawTable,
    eval: Option<RawTable>,
    test: Option<RawTable>,
}

fn read_splits(job: &TextJob) -> Result<Splits> {
    let opts = TextReadOptions {
        columns: job.columns.clone(),
        format: None,
        on_bad: if job.skip_bad_samples {
            OnBadSample::Skip
        } else {
            OnBadSample::Error
        },
    };
    let (train, eval, test) =
        split_files(job.dataset.as_deref(), &job.train, &job.eval, &job.test)?;
    let read = |paths: &[PathBuf]| -> Result<Option<RawTable>> {
        if paths.is_empty() {
            return Ok(None);
        }
        Ok(Some(read_tables(paths, &opts)?))
    };
    let mut train = read(&train)?.context("no training rows")?;
    let mut eval = read(&eval)?;
    if eval.is_none() {
        if let Some(f) = job.validation_split {
            let (t, v) = match &job.columns.group {
                Some(_) => {
                    let groups: Vec<String> = train
                        .rows
                        .iter()
                        .map(|r| r.group.clone().unwrap_or_default())
                        .collect();
                    grouped_split(&groups, f, job.config.seed)?
                }
                None => random_split(train.len(), f, job.config.seed)?,
            };
            eval = Some(train.select(&v));
            train = train.select(&t);
        }
    }
    if let Some(idx) = sample_indices(train.len(), job.max_train_samples, job.config.seed) {
        train = train.select(&idx);
    }
    Ok(Splits {
        train,
        eval,
        test: read(&test)?,
    })
}

/// Fine-tunes, evaluates on the test split, exports into `job.output`.
pub fn train_text(job: &TextJob) -> Result<TextRunReport> {
    // A training process: keep freed memory mapped for the next step (finetune_kernels::runtime::malloc).
    finetune_kernels::runtime::malloc::retain_freed_memory();
    job.config.validate()?;
    super::prepare_output(&job.output, job.resume.is_some(), job.overwrite)?;
    let splits = read_splits(job)?;
    let labels = job.label_map(&splits.train)?;
    let skipped_samples = [
        Some(&splits.train),
        splits.eval.as_ref(),
        splits.test.as_ref(),
    ]
    .into_iter()
    .flatten()
    // Split tables share one log: count distinct messages (each names its file and row).
    .flat_map(|t| t.skipped.messages())
    .collect::<std::collections::BTreeSet<_>>()
    .len();
    let encode = |t: &Option<RawTable>| -> Result<Option<Vec<TextRecord>>> {
        Ok(match t {
            Some(t) => Some(t.encode(&labels)?.records),
            None => None,
        })
    };
    let train = splits.train.encode(&labels)?.records;
    let eval = encode(&splits.eval)?;
    let test = encode(&splits.test)?;
    let device = finetune_core::select_device(&job.device)?;
    let clf = TextClassifier::load(
        &job.model,
        &TextModelOptions {
            labels: Some(labels.names().to_vec()),
            max_length: job.max_length,
            dropout: job.dropout,
            seed: job.config.seed,
            allow_pickle: job.allow_pickle,
        },
        &device,
    )?;
    // Record the length actually used, so `eval`/`predict` can repeat it.
    let mut resolved = job.to_json();
    resolved["max_length"] = clf.tokenizer.max_length().into();

    let source = |records| clf.batches(records);
    let train_src = source(&train);
    let eval_src = eval.as_deref().map(source);
    let test_src = test.as_deref().map(source);
    let mut report = fit_and_test(
        &clf,
        &job.config,
        &job.output,
        &resolved,
        job.resume.as_deref(),
        &train_src,
        eval_src.as_ref().map(|s| s as &dyn BatchSource<BertBatch>),
        test_src.as_ref().map(|s| s as &dyn BatchSource<BertBatch>),
    )?;
    report.labels = labels.names().to_vec();
    report.skipped_samples = skipped_samples;
    Ok(report)
}

/// Evaluates a fine-tuned classifier (a folder or Hub id) on labelled files; the labels are
/// the model's.
pub fn evaluate_text(
    model: &str,
    files: &[PathBuf],
    columns: &TextColumns,
    opts: &TextModelOptions,
    batch_size: usize,
    device: &str,
) -> Result<EvalMetrics> {
    let device = finetune_core::select_device(device)?;
    let clf = TextClassifier::load(model, opts, &device)?;
    let labels = LabelMap::from_names(clf.model.config().labels())?;
    let read = TextReadOptions {
        columns: columns.clone(),
        format: None,
        on_bad: OnBadSample::Error,
    };
    let records = read_tables(files, &read)?.encode(&labels)?.records;
    if records.is_empty() {
        bail!("no rows to evaluate in {files:?}");
    }
    Ok(finetune_train::learner::evaluate(
        &clf,
        &clf.batches(&records),
        batch_size,
    )?)
}

/// Re-exports a model folder (a training output or one of its `checkpoint-STEP` folders) for
/// transformers, converting floating-point tensors to `dtype`.
pub fn export_text(model: &Path, output: &Path, dtype: Option<candle_core::DType>) -> Result<()> {
    let clf = TextClassifier::load(
        &model.display().to_string(),
        &TextModelOptions::default(),
        &Device::Cpu,
    )?;
    write_folder_atomically(output, |tmp| {
        clf.model.export(tmp, dtype, Some(&clf.tokenizer_dir))
    })
}
