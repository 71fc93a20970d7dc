//! An image classifier: a model of any image family, its preprocessing and the batches it is
//! fed.

use super::source::ImageBatches;
use crate::families::{Loader, ModelSource};
use crate::tasks::augment::{eval_pipeline, Augment};
use crate::tasks::Prediction;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use finetune_core::preprocess::Preprocessing;
use finetune_core::Rng;
use finetune_data::image::{collate, decode::decode, ColorMode, ImageClassification, ImageDataset};
use finetune_data::transforms::RandAugment;
use finetune_data::{OnBadSample, SkipLog};
use finetune_train::{SampleBar, TrainModel};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What the image task needs of a model besides training it.
pub trait ImageModel: TrainModel<Inputs = Tensor> {
    /// Class names in id order.
    fn labels(&self) -> Vec<String>;
    /// The input size, normalisation and crop the model expects.
    fn preprocessing(&self) -> &Preprocessing;
    /// Input channels: 1 (gray) or 3 (RGB).
    fn in_chans(&self) -> usize;
    /// Writes the model for its ecosystem into `dir`, floating tensors in `dtype` when given.
    fn export_as(&self, dir: &Path, dtype: Option<DType>) -> finetune_core::Result<()>;
}

/// How [`ImageClassifier::load`] sets the model up.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageModelOptions {
    /// Class names in id order; `None`: the checkpoint's (required for a fresh network).
    pub labels: Option<Vec<String>>,
    /// Initialise a new head even when the checkpoint's has as many classes.
    pub new_head: bool,
    /// Replaces the checkpoint's `problem_type` (single- or multi-label; the loss and the
    /// metrics follow); `None`: the checkpoint's, single-label for a fresh network.
    pub problem_type: Option<finetune_core::ProblemType>,
    /// Square input size replacing the checkpoint's (a fresh network: 224 otherwise).
    pub image_size: Option<usize>,
    /// Input channels of a fresh network (1: grayscale, 3: RGB, the default).
    pub channels: Option<usize>,
    /// Dropout before the head, replacing the checkpoint's.
    pub drop_rate: Option<f64>,
    /// Seeds a new head's (or a fresh network's) initialisation and the dropout stream.
    pub seed: u64,
}

impl crate::families::HeadLabels for ImageModelOptions {
    fn labels_mut(&mut self) -> &mut Option<Vec<String>> {
        &mut self.labels
    }
}

/// An image model on a device. Its preprocessing (input size, normalisation, crop) is the
/// model config's.
pub struct ImageClassifier {
    model: Box<dyn ImageModel>,
    device: Device,
}

impl ImageClassifier {
    /// A classifier of `model` on `device` (where its weights must already be).
    pub fn new(model: Box<dyn ImageModel>, device: &Device) -> Self {
        Self {
            model,
            device: device.clone(),
        }
    }

    /// Loads a checkpoint (a folder or a Hub id), or initialises a fresh network when `model`
    /// is an architecture name (`resnet18`).
    pub fn load(model: &str, opts: &ImageModelOptions, device: &Device) -> Result<Self> {
        Self::from_source(&crate::tasks::open(model)?, opts, device)
    }

    /// Loads a resolved model through its family.
    pub fn from_source(
        src: &ModelSource,
        opts: &ImageModelOptions,
        device: &Device,
    ) -> Result<Self> {
        let Loader::Image(load) = src.family.loader else {
            bail!("{} is a text model, not an image model", src.name)
        };
        let store = |clf: &Self| clf.model().store().clone();
        crate::families::load_with_adapter(src, opts, |o| load(src, o, device), store)
    }

    /// The model, as the learner trains it.
    pub fn model(&self) -> &dyn ImageModel {
        self.model.as_ref()
    }

    /// The input size, normalisation and crop the model expects.
    pub fn preprocessing(&self) -> &Preprocessing {
        self.model.preprocessing()
    }

    /// Class names in id order.
    pub fn labels(&self) -> Vec<String> {
        self.model.labels()
    }

    /// Gray for a one-channel model, else RGB (gray images are repeated into three channels).
    pub fn color(&self) -> ColorMode {
        match self.model.in_chans() {
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
        self.batches_with(data, augment, None, seed, on_bad, skipped)
    }

    /// [`Self::batches`] with RandAugment (`--aa`) in the training pipeline.
    pub fn batches_with(
        &self,
        data: &ImageDataset,
        augment: &Augment,
        rand_augment: Option<RandAugment>,
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
            train: pipeline(
                augment.train_pipeline_with(self.preprocessing(), rand_augment.clone())?,
            ),
            eval: pipeline(eval_pipeline(self.preprocessing())?),
            random_train: augment.is_random() || rand_augment.is_some(),
            seed,
            device: self.device.clone(),
            on_bad,
            skipped: skipped.clone(),
            mixup: None,
        })
    }

    /// Class probabilities for image files, in eval mode; a progress bar on a terminal.
    pub fn predict(&self, paths: &[PathBuf], top_k: usize) -> Result<Vec<Prediction>> {
        self.predict_with(paths, top_k, crate::tasks::prediction::DEFAULT_THRESHOLD)
    }

    /// [`Self::predict`]; a multi-label model lists every label whose probability reaches
    /// `threshold`.
    pub fn predict_with(
        &self,
        paths: &[PathBuf],
        top_k: usize,
        threshold: f64,
    ) -> Result<Vec<Prediction>> {
        let pipeline = eval_pipeline(self.preprocessing())?;
        let problem = self.model.problem();
        let mut out = Vec::with_capacity(paths.len());
        let bar = SampleBar::new("predicting", paths.len());
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
            out.extend(Prediction::batch(&problem, &logits, top_k, threshold)?);
            bar.set(out.len());
        }
        Ok(out)
    }
}
