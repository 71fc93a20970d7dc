//! A text classifier: a model of any text family with its tokenizer.

use super::source::TextBatches;
use crate::families::{Loader, ModelSource};
use crate::tasks::Prediction;
use anyhow::{bail, Result};
use candle_core::{DType, Device};
use finetune_bert::{BertBatch, BertTokenizer};
use finetune_data::text::TextRecord;
use finetune_train::{SampleBar, TrainModel};
use serde::Serialize;
use std::path::Path;

/// What the text task needs of a model besides training it.
pub trait TextModel: TrainModel<Inputs = BertBatch> {
    /// Class names in id order.
    fn labels(&self) -> Vec<String>;
    /// Writes the model, and the tokenizer files it came with, for transformers into `dir`;
    /// floating tensors in `dtype` when given.
    fn export_as(&self, dir: &Path, dtype: Option<DType>) -> finetune_core::Result<()>;
    /// Writes the encoder alone, without the head, as the family's base model for
    /// transformers (`BertModel` for BERT), with the tokenizer files.
    fn export_encoder_as(&self, dir: &Path, dtype: Option<DType>) -> finetune_core::Result<()>;
}

/// Tokens per input when nothing says otherwise.
pub const DEFAULT_MAX_LENGTH: usize = 128;

/// How [`TextClassifier::load`] sets the model up.
#[derive(Debug, Clone, Serialize)]
pub struct TextModelOptions {
    /// Class names in id order; `None`: the checkpoint's.
    pub labels: Option<Vec<String>>,
    /// Initialise a new head even when the checkpoint's has as many classes.
    pub new_head: bool,
    /// Replaces the checkpoint's `problem_type` (and so the loss and the metrics).
    pub problem_type: Option<finetune_core::ProblemType>,
    /// Tokens per input (longer inputs are truncated); `None`: [`DEFAULT_MAX_LENGTH`], or the
    /// model's limit when that is smaller.
    pub max_length: Option<usize>,
    /// Overrides the checkpoint's dropout probabilities.
    pub dropout: Option<f64>,
    /// Seeds a new head's initialisation and the dropout stream.
    pub seed: u64,
}

impl crate::families::HeadLabels for TextModelOptions {
    fn labels_mut(&mut self) -> &mut Option<Vec<String>> {
        &mut self.labels
    }
}

impl Default for TextModelOptions {
    fn default() -> Self {
        Self {
            labels: None,
            new_head: false,
            problem_type: None,
            max_length: None,
            dropout: None,
            seed: 42,
        }
    }
}

/// A text model with its tokenizer, on a device.
pub struct TextClassifier {
    model: Box<dyn TextModel>,
    tokenizer: BertTokenizer,
    device: Device,
}

impl TextClassifier {
    /// A classifier of `model` with `tokenizer`, on `device` (where its weights must already
    /// be).
    pub fn new(model: Box<dyn TextModel>, tokenizer: BertTokenizer, device: &Device) -> Self {
        Self {
            model,
            tokenizer,
            device: device.clone(),
        }
    }

    /// Loads a fine-tuned or pretrained text model (a folder or a Hub id).
    pub fn load(model: &str, opts: &TextModelOptions, device: &Device) -> Result<Self> {
        Self::from_source(&crate::tasks::open(model)?, opts, device)
    }

    /// Loads a resolved model through its family.
    pub fn from_source(
        src: &ModelSource,
        opts: &TextModelOptions,
        device: &Device,
    ) -> Result<Self> {
        let Loader::Text(load) = src.family.loader else {
            bail!("{} is an image model, not a text model", src.name)
        };
        let store = |clf: &Self| clf.model().store().clone();
        crate::families::load_with_adapter(src, opts, |o| load(src, o, device), store)
    }

    /// The model, as the learner trains it.
    pub fn model(&self) -> &dyn TextModel {
        self.model.as_ref()
    }

    /// Class names in id order.
    pub fn labels(&self) -> Vec<String> {
        self.model.labels()
    }

    /// The tokenizer its batches are made with.
    pub fn tokenizer(&self) -> &BertTokenizer {
        &self.tokenizer
    }

    /// Tokens per input.
    pub fn max_length(&self) -> usize {
        self.tokenizer.max_length()
    }

    /// Batches of `records`, tokenised on demand by this classifier's tokenizer.
    pub fn batches<'a>(&'a self, records: &'a [TextRecord]) -> TextBatches<'a> {
        TextBatches {
            records,
            tokenizer: &self.tokenizer,
            outputs: self.model.labels().len(),
            device: self.device.clone(),
        }
    }

    /// Class probabilities for `texts`, in eval mode; a progress bar on a terminal.
    pub fn predict(&self, texts: &[&str], top_k: usize) -> Result<Vec<Prediction>> {
        self.predict_with(texts, top_k, crate::tasks::prediction::DEFAULT_THRESHOLD)
    }

    /// [`Self::predict`]; a multi-label model lists every label whose probability reaches
    /// `threshold`.
    pub fn predict_with(
        &self,
        texts: &[&str],
        top_k: usize,
        threshold: f64,
    ) -> Result<Vec<Prediction>> {
        let problem = self.model.problem();
        let mut out = Vec::with_capacity(texts.len());
        let bar = SampleBar::new("predicting", texts.len());
        for chunk in texts.chunks(64) {
            let batch = self.tokenizer.batch(chunk, None, &self.device)?;
            let logits = self.model.forward_t(&batch, false)?;
            out.extend(Prediction::batch(&problem, &logits, top_k, threshold)?);
            bar.set(out.len());
        }
        Ok(out)
    }
}
