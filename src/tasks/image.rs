//! Image classification with ResNet: image folders, CSV lists, IDX, CIFAR, pixel CSVs or a Hub
//! parquet dataset → decoded, augmented, normalised batches → [`finetune_train::Learner`] →
//! the exported timm folder, with test metrics and predictions.
//!
//! The model is a Hub id or folder (timm or transformers naming), or an architecture name
//! (`resnet18` … `resnet152`) for a randomly initialised network trained from scratch.

use super::augment::{eval_pipeline, Augment};
use super::{
    fit_and_test, sample_indices, split_files, write_folder_atomically, Prediction, RunReport,
};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use finetune_core::{ParamStore, Rng};
use finetune_data::image::{
    collate, decode::decode, open, parquet, ColorMode, ImageClassification, ImageDataset,
    ImageOpenOptions,
};
use finetune_data::loader::Dataset;
use finetune_data::seed::sample_rng;
use finetune_data::split::random_split;
use finetune_data::{LabelMap, OnBadSample, SkipLog};
use finetune_hub::{resolve_model, HubConfig, ModelOptions};
use finetune_resnet::config::ARCHITECTURES;
use finetune_resnet::{BnMode, LoadOptions, Preprocessing, ResNet, ResNetConfig};
use finetune_train::{Batch, BatchSource, EvalMetrics, HeadSplit, Problem, TrainModel};
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A ResNet with the device it runs on, as the learner sees it. Its preprocessing (input size,
/// normalisation, crop) is the model config's.
pub struct ImageClassifier {
    pub model: ResNet,
    pub device: Device,
}

impl TrainModel for ImageClassifier {
    type Inputs = Tensor;

    fn store(&self) -> &ParamStore {
        self.model.store()
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> finetune_core::Result<Tensor> {
        self.model.forward_t(images, train)
    }

    fn loss(&self, logits: &Tensor, targets: &Tensor, ls: f64) -> finetune_core::Result<Tensor> {
        self.model.loss(logits, targets, ls)
    }

    fn problem(&self) -> Problem {
        Problem::SingleLabel {
            labels: self.model.config().labels(),
        }
    }

    fn rng_state(&self) -> Option<Rng> {
        Some(self.model.rng_state())
    }

    fn set_rng_state(&self, rng: Rng) {
        self.model.set_rng_state(rng)
    }

    fn set_batch_norm_frozen(&self, frozen: &dyn Fn(&str) -> bool) -> finetune_core::Result<()> {
        for bn in self.model.batch_norms() {
            let [weight, ..] = bn.tensor_names();
            bn.set_mode(if frozen(&weight) {
                BnMode::Frozen
            } else {
                BnMode::Train
            });
        }
        Ok(())
    }

    fn export(&self, dir: &Path) -> finetune_core::Result<()> {
        self.model.export(dir, None)
    }

    fn head_split(&self) -> Option<HeadSplit> {
        Some(HeadSplit {
            head: vec!["fc.*".into()],
            backbone_randomness: self.model.features_randomness(),
        })
    }

    fn features(&self, images: &Tensor, train: bool) -> finetune_core::Result<Tensor> {
        self.model.forward_features(images, train)
    }

    fn head_forward(&self, features: &Tensor, train: bool) -> finetune_core::Result<Tensor> {
        self.model.forward_head(features, train)
    }
}

/// How [`ImageClassifier::load`] sets the model up.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageModelOptions {
    /// Class names in id order; `None`: the checkpoint's (required for a fresh network).
    pub labels: Option<Vec<String>>,
    /// Initialise a new head even when the checkpoint's has as many classes.
    pub new_head: bool,
    /// Square input size replacing the checkpoint's (a fresh network: 224 otherwise).
    pub image_size: Option<usize>,
    /// Input channels of a fresh network (1: grayscale, 3: RGB, the default).
    pub channels: Option<usize>,
    /// Dropout before the head, replacing the checkpoint's.
    pub drop_rate: Option<f64>,
    /// Seeds a new head's (or a fresh network's) initialisation and the dropout stream.
    pub seed: u64,
    pub allow_pickle: bool,
}

/// Whether `model` names an architecture to initialise at random rather than a checkpoint.
pub fn is_architecture(model: &str) -> bool {
    ARCHITECTURES.iter().any(|a| a.0 == model) && !Path::new(model).exists()
}

impl ImageClassifier {
    /// Loads a ResNet checkpoint (a folder or a Hub id), or initialises `resnet18` … `resnet152`
    /// at random when `model` is an architecture name.
    pub fn load(model: &str, opts: &ImageModelOptions, device: &Device) -> Result<Self> {
        let mut net = if is_architecture(model) {
            let labels = opts.labels.as_ref().with_context(|| {
                format!("a fresh {model} needs its classes (labels from the training data)")
            })?;
            let mut config = ResNetConfig::from_name(model, labels.len())?;
            config.set_labels(labels);
            let c = opts.channels.unwrap_or(3);
            config.in_chans = c;
            config.preprocessing = Preprocessing::imagenet(c);
            if let Some(s) = opts.image_size {
                // The given size is the images' own: no resize margin to crop away.
                config.preprocessing.input_size = [c, s, s];
                config.preprocessing.crop_pct = 1.0;
            }
            if let Some(p) = opts.drop_rate {
                config.drop_rate = p;
            }
            ResNet::init(config, DType::F32, device, opts.seed)?
        } else {
            let files = resolve_model(
                model,
                &HubConfig::from_env(),
                &ModelOptions {
                    allow_pickle: opts.allow_pickle,
                },
            )?;
            let load = LoadOptions {
                labels: opts.labels.clone(),
                new_head: opts.new_head,
                drop_rate: opts.drop_rate,
                device: device.clone(),
                seed: opts.seed,
                ..LoadOptions::default()
            };
            let (net, report) = ResNet::from_pretrained(&files.dir, &load)
                .map_err(|e| super::in_model_files(e, &files))?;
            if !report.newly_initialized.is_empty() || !report.resized.is_empty() {
                eprintln!("{report}");
            }
            if let Some(c) = opts.channels.filter(|&c| c != net.config().in_chans) {
                bail!(
                    "{model} takes {} input channels, not {c} (images are converted to the \
                     model's channels)",
                    net.config().in_chans
                );
            }
            net
        };
        if let Some(s) = opts.image_size {
            let mut p = net.config().preprocessing.clone();
            p.input_size = [p.input_size[0], s, s];
            net.set_preprocessing(p)?;
        }
        if !matches!(net.config().in_chans, 1 | 3) {
            bail!(
                "{model}: {} input channels (images are gray or RGB)",
                net.config().in_chans
            );
        }
        Ok(Self {
            model: net,
            device: device.clone(),
        })
    }

    pub fn preprocessing(&self) -> &Preprocessing {
        &self.model.config().preprocessing
    }

    pub fn labels(&self) -> Vec<String> {
        self.model.config().labels()
    }

    /// Gray for a one-channel model, else RGB (gray images are repeated into three channels).
    pub fn color(&self) -> ColorMode {
        match self.model.config().in_chans {
            1 => ColorMode::Gray,
            _ => ColorMode::Rgb,
        }
    }

    /// Batches of `data`: augmented by `augment` in training (each sample's randomness drawn
    /// from (`seed`, epoch, index)), through the eval pipeline otherwise.
    pub fn batches(
        &self,
        data: &ImageDataset,
        augment: &Augment,
        seed: u64,
        on_bad: OnBadSample,
        skipped: &SkipLog,
    ) -> Result<ImageBatches> {
        let pipeline = |transform| ImageClassification {
            data: data.clone(),
            transform,
            color: self.color(),
        };
        Ok(ImageBatches {
            train: pipeline(augment.train_pipeline(self.preprocessing())?),
            eval: pipeline(eval_pipeline(self.preprocessing())?),
            random_train: augment.is_random(),
            seed,
            device: self.device.clone(),
            on_bad,
            skipped: skipped.clone(),
        })
    }

    /// Class probabilities for image files, in eval mode.
    pub fn predict(&self, paths: &[PathBuf], top_k: usize) -> Result<Vec<Prediction>> {
        let pipeline = eval_pipeline(self.preprocessing())?;
        let labels = self.labels();
        let mut out = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(32) {
            let items = chunk
                .iter()
                .map(|p| {
                    let bytes =
                        std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                    let img = decode(&bytes, self.color())
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                    let t = pipeline.run(img, &mut Rng::seed_from_u64(0))?;
                    Ok((t, 0))
                })
                .collect::<Result<Vec<_>>>()?;
            let batch = collate(items, &self.device)?;
            let logits = self.model.forward_t(&batch.images, false)?;
            for row in logits.to_dtype(DType::F64)?.to_vec2::<f64>()? {
                out.push(Prediction::from_logits(&labels, row, top_k));
            }
        }
        Ok(out)
    }
}

/// An image dataset as model batches: decoded and transformed on the rayon pool, each sample
/// with the generator of (seed, epoch, index), so batches do not depend on thread scheduling
/// and a resumed run rebuilds them exactly.
pub struct ImageBatches {
    pub train: ImageClassification,
    pub eval: ImageClassification,
    /// Whether the training pipeline draws at random (augmentation).
    pub random_train: bool,
    pub seed: u64,
    pub device: Device,
    pub on_bad: OnBadSample,
    /// Where bad samples skipped under [`OnBadSample::Skip`] are recorded.
    pub skipped: SkipLog,
}

impl BatchSource<Tensor> for ImageBatches {
    fn len(&self) -> usize {
        self.eval.data.len()
    }

    fn deterministic_train(&self) -> bool {
        !self.random_train
    }

    fn batch(
        &self,
        indices: &[usize],
        epoch: u64,
        train: bool,
    ) -> finetune_core::Result<Batch<Tensor>> {
        let pipeline = if train { &self.train } else { &self.eval };
        let results: Vec<_> = indices
            .par_iter()
            .map(|&i| pipeline.get(i, &mut sample_rng(self.seed, epoch, i as u64)))
            .collect();
        let mut items = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Ok(item) => items.push(item),
                Err(e) => self.skipped.handle(self.on_bad, e)?,
            }
        }
        if items.is_empty() {
            return Err(finetune_core::Error::config(format!(
                "every sample of a batch was bad ({})",
                self.skipped.summary()
            )));
        }
        let b = collate(items, &self.device)?;
        Ok(Batch {
            inputs: b.images,
            targets: b.labels,
        })
    }
}

/// Everything an image-classification run needs.
#[derive(Debug, Clone)]
pub struct ImageJob {
    /// A folder, a Hub id, or an architecture name (`resnet18`: trained from scratch).
    pub model: String,
    pub output: PathBuf,
    /// One dataset per split: a folder (ImageFolder, IDX, CIFAR, parquet), a CSV (`path,label`
    /// or pixels), IDX/CIFAR files, or parquet shards.
    pub train: Vec<PathBuf>,
    pub eval: Vec<PathBuf>,
    pub test: Vec<PathBuf>,
    /// A Hub dataset (or a local snapshot folder) with parquet splits.
    pub dataset: Option<String>,
    pub image_column: String,
    pub label_column: String,
    /// Class names in id order; default: the checkpoint's named classes when the training data's
    /// are among them, else the training data's.
    pub labels: Option<Vec<String>>,
    /// Classes `0..N` (integer labels in the data).
    pub num_labels: Option<usize>,
    pub image_size: Option<usize>,
    pub channels: Option<usize>,
    pub augment: Augment,
    /// Dropout before the head, replacing the checkpoint's.
    pub dropout: Option<f64>,
    pub allow_pickle: bool,
    /// Hold out this fraction of the training images when there is no eval set.
    pub validation_split: Option<f64>,
    /// Train on at most this many images (a seeded sample).
    pub max_train_samples: Option<usize>,
    /// Evaluate and test on at most this many images each (a seeded sample).
    pub max_eval_samples: Option<usize>,
    pub skip_bad_samples: bool,
    pub device: String,
    /// A checkpoint folder, or `latest` (the newest under `output`).
    pub resume: Option<String>,
    /// Train into a non-empty `output`, removing an earlier run's outputs first (see
    /// [`super::prepare_output`]); without it (and without `resume`) such a folder is refused.
    pub overwrite: bool,
    pub config: finetune_train::TrainConfig,
}

impl ImageJob {
    /// A job with the library defaults for `model` → `output`.
    pub fn new(model: impl Into<String>, output: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            output: output.into(),
            train: Vec::new(),
            eval: Vec::new(),
            test: Vec::new(),
            dataset: None,
            image_column: "image".into(),
            label_column: "label".into(),
            labels: None,
            num_labels: None,
            image_size: None,
            channels: None,
            augment: Augment::default(),
            dropout: None,
            allow_pickle: false,
            validation_split: None,
            max_train_samples: None,
            max_eval_samples: None,
            skip_bad_samples: false,
            device: "auto".into(),
            resume: None,
            overwrite: false,
            config: finetune_train::TrainConfig::default(),
        }
    }

    /// The resolved job as JSON (saved as `run_config.json` in the output folder).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "task": "image-classification",
            "model": self.model,
            "output": self.output,
            "train": self.train,
            "eval": self.eval,
            "test": self.test,
            "dataset": self.dataset,
            "image_column": self.image_column,
            "label_column": self.label_column,
            "labels": self.labels,
            "num_labels": self.num_labels,
            "image_size": self.image_size,
            "channels": self.channels,
            "augment": self.augment.to_string(),
            "dropout": self.dropout,
            "allow_pickle": self.allow_pickle,
            "validation_split": self.validation_split,
            "max_train_samples": self.max_train_samples,
            "max_eval_samples": self.max_eval_samples,
            "skip_bad_samples": self.skip_bad_samples,
            "device": self.device,
            "resume": self.resume,
            "overwrite": self.overwrite,
            "train_config": self.config,
        })
    }

    fn on_bad(&self) -> OnBadSample {
        if self.skip_bad_samples {
            OnBadSample::Skip
        } else {
            OnBadSample::Error
        }
    }

    fn open(
        &self,
        paths: &[PathBuf],
        split: &str,
        labels: Option<&LabelMap>,
        skipped: &SkipLog,
    ) -> Result<Option<ImageDataset>> {
        open_split(
            paths,
            &ImageOpenOptions {
                split: split.into(),
                labels: labels.cloned(),
                label_column: self.label_column.clone(),
                image_column: self.image_column.clone(),
                on_bad: self.on_bad(),
                skipped: skipped.clone(),
                ..ImageOpenOptions::default()
            },
        )
    }

    /// The classes, and the training data read with them: `--labels`, else `--num-labels`,
    /// else the checkpoint's named classes when the data's are among them, else the data's.
    fn labels_and_train(
        &self,
        paths: &[PathBuf],
        skipped: &SkipLog,
    ) -> Result<(LabelMap, ImageDataset)> {
        let given = match (&self.labels, self.num_labels) {
            (Some(names), Some(n)) if n != names.len() => bail!(
                "--num-labels {n} disagrees with the {} names of --labels",
                names.len()
            ),
            (Some(names), _) => Some(names.clone()),
            (None, Some(n)) => Some((0..n).map(|i| i.to_string()).collect()),
            (None, None) => None,
        };
        if let Some(names) = given {
            let map = LabelMap::from_names(names)?;
            let train = self.open(paths, "train", Some(&map), skipped)?;
            return Ok((map, train.context("no training data")?));
        }
        let train = self
            .open(paths, "train", None, skipped)?
            .context("no training data")?;
        let data_names = train.class_names().to_vec();
        if let Some(names) = checkpoint_labels(&self.model, self.allow_pickle)? {
            if names != data_names && data_names.iter().all(|n| names.contains(n)) {
                let map = LabelMap::from_names(names)?;
                let train = self.open(paths, "train", Some(&map), skipped)?;
                return Ok((map, train.context("no training data")?));
            }
        }
        Ok((LabelMap::from_names(data_names)?, train))
    }
}

/// Opens one split: a single path (any format), or several parquet shards.
fn open_split(paths: &[PathBuf], o: &ImageOpenOptions) -> Result<Option<ImageDataset>> {
    let ds = match paths {
        [] => return Ok(None),
        [one] => open(one, o)?,
        many if many
            .iter()
            .all(|p| p.extension().is_some_and(|e| e == "parquet")) =>
        {
            parquet::open(
                many,
                &o.image_column,
                &o.label_column,
                o.labels.as_ref(),
                o.on_bad,
                &o.skipped,
            )?
        }
        many => bail!(
            "give one image dataset per split (a folder or a file), or parquet shards; got {}",
            many.len()
        ),
    };
    if ds.is_empty() {
        bail!("{}: no images", paths[0].display());
    }
    Ok(Some(ds))
}

/// The class names a checkpoint was trained for, when its config names them (not for an
/// architecture name, whose network is new).
pub fn checkpoint_labels(model: &str, allow_pickle: bool) -> Result<Option<Vec<String>>> {
    if is_architecture(model) {
        return Ok(None);
    }
    let files = resolve_model(
        model,
        &HubConfig::from_env(),
        &ModelOptions { allow_pickle },
    )?;
    let config = ResNetConfig::from_file(&files.dir.join("config.json"))?;
    Ok(config.label_names)
}

fn subset(ds: ImageDataset, max: Option<usize>, seed: u64) -> ImageDataset {
    match sample_indices(ds.len(), max, seed) {
        Some(idx) => ds.select(&idx),
        None => ds,
    }
}

/// What an image run produced.
pub type ImageRunReport = RunReport;

/// Trains (fine-tunes, or from scratch for an architecture name), evaluates on the test split,
/// exports into `job.output`.
pub fn train_image(job: &ImageJob) -> Result<ImageRunReport> {
    // A training process: keep freed memory mapped for the next step (finetune_kernels::runtime::malloc).
    finetune_kernels::runtime::malloc::retain_freed_memory();
    job.config.validate()?;
    super::prepare_output(&job.output, job.resume.is_some(), job.overwrite)?;
    let seed = job.config.seed;
    let skipped = SkipLog::new();
    let (train_files, eval_files, test_files) =
        split_files(job.dataset.as_deref(), &job.train, &job.eval, &job.test)?;
    let (labels, mut train) = job.labels_and_train(&train_files, &skipped)?;
    let mut eval = job.open(&eval_files, "validation", Some(&labels), &skipped)?;
    let test = job.open(&test_files, "test", Some(&labels), &skipped)?;
    if eval.is_none() {
        if let Some(f) = job.validation_split {
            let (t, v) = random_split(train.len(), f, seed)?;
            eval = Some(train.select(&v));
            train = train.select(&t);
        }
    }
    let train = subset(train, job.max_train_samples, seed);
    let eval = eval.map(|d| subset(d, job.max_eval_samples, seed));
    let test = test.map(|d| subset(d, job.max_eval_samples, seed));

    let device = finetune_core::select_device(&job.device)?;
    let names = labels.names().to_vec();
    let new_head = match checkpoint_labels(&job.model, job.allow_pickle)? {
        Some(ckpt) => ckpt != names,
        None => true,
    };
    let clf = ImageClassifier::load(
        &job.model,
        &ImageModelOptions {
            labels: Some(names.clone()),
            new_head,
            image_size: job.image_size,
            channels: job.channels,
            drop_rate: job.dropout,
            seed,
            allow_pickle: job.allow_pickle,
        },
        &device,
    )?;
    let source = |d: &ImageDataset| clf.batches(d, &job.augment, seed, job.on_bad(), &skipped);
    let train_src = source(&train)?;
    let eval_src = eval.as_ref().map(source).transpose()?;
    let test_src = test.as_ref().map(source).transpose()?;
    let mut report = fit_and_test(
        &clf,
        &job.config,
        &job.output,
        &job.to_json(),
        job.resume.as_deref(),
        &train_src,
        eval_src.as_ref().map(|s| s as &dyn BatchSource<Tensor>),
        test_src.as_ref().map(|s| s as &dyn BatchSource<Tensor>),
    )?;
    report.labels = names;
    report.skipped_samples = skipped
        .messages()
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    Ok(report)
}

/// Where [`evaluate_image`] finds images and labels in tabular data.
#[derive(Debug, Clone)]
pub struct ImageColumns {
    pub image: String,
    pub label: String,
}

impl Default for ImageColumns {
    fn default() -> Self {
        Self {
            image: "image".into(),
            label: "label".into(),
        }
    }
}

/// Evaluates a fine-tuned classifier (a folder or Hub id) on labelled image data (a folder
/// holding several splits gives its test split); the classes are the model's.
pub fn evaluate_image(
    model: &str,
    data: &[PathBuf],
    columns: &ImageColumns,
    batch_size: usize,
    device: &str,
) -> Result<EvalMetrics> {
    let device = finetune_core::select_device(device)?;
    let clf = ImageClassifier::load(model, &ImageModelOptions::default(), &device)?;
    let labels = LabelMap::from_names(clf.labels())?;
    let skipped = SkipLog::new();
    let ds = open_split(
        data,
        &ImageOpenOptions {
            split: "test".into(),
            labels: Some(labels),
            label_column: columns.label.clone(),
            image_column: columns.image.clone(),
            skipped: skipped.clone(),
            ..ImageOpenOptions::default()
        },
    )?
    .with_context(|| "no data to evaluate: give --data".to_string())?;
    let source = clf.batches(
        &ds,
        &Augment::preset("none")?,
        0,
        OnBadSample::Error,
        &skipped,
    )?;
    Ok(finetune_train::learner::evaluate(
        &clf, &source, batch_size,
    )?)
}

/// Re-exports a model folder (a training output or one of its `checkpoint-STEP` folders) for
/// timm and torchvision, converting floating-point tensors to `dtype`.
pub fn export_image(model: &Path, output: &Path, dtype: Option<DType>) -> Result<()> {
    let clf = ImageClassifier::load(
        &model.display().to_string(),
        &ImageModelOptions::default(),
        &Device::Cpu,
    )?;
    write_folder_atomically(output, |tmp| clf.model.export(tmp, dtype))
}
