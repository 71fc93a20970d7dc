//! DistilBERT's modules ([`DistilBert`]: embeddings → encoder → first token → `pre_classifier`
//! + ReLU → dropout → `classifier`) and what its config declares to the shared classifier
//! ([`EncoderConfig`] for [`DistilBertConfig`]).

use crate::config::DistilBertConfig;
use crate::naming::{self, LAYER};
use candle_core::Tensor;
use finetune_bert::embeddings::Embeddings;
use finetune_bert::encoder::Encoder;
use finetune_bert::{
    Architecture, BertBatch, ClassifierConfig, EncoderConfig, Expected, Pass, SequenceClassifier,
};
use finetune_core::nn::{linear, Linear};
use finetune_core::{ParamLayout, ParamStore, Result};
use std::path::Path;

/// transformers' `DistilBertForSequenceClassification`, trainable (see
/// [`SequenceClassifier`]).
pub type DistilBertForSequenceClassification = SequenceClassifier<DistilBert>;

/// The tokenizer files copied on export, when the source folder has them.
pub const TOKENIZER_FILES: [&str; 4] = finetune_bert::TOKENIZER_FILES;

impl EncoderConfig for DistilBertConfig {
    const FAMILY: &'static str = "DistilBERT";
    const PREFIX: &'static str = "distilbert.";
    const TOKENIZER_FILES: &'static [&'static str] = &TOKENIZER_FILES;

    fn from_file(path: &Path) -> Result<Self> {
        DistilBertConfig::from_file(path)
    }
    fn validate(&self) -> Result<()> {
        DistilBertConfig::validate(self)
    }
    fn classifier(&self) -> &ClassifierConfig {
        &self.classifier
    }
    fn classifier_mut(&mut self) -> &mut ClassifierConfig {
        &mut self.classifier
    }
    /// `dropout` and `attention_dropout`; the head keeps `seq_classif_dropout`.
    fn set_dropout(&mut self, p: f64) {
        self.dropout = p;
        self.attention_dropout = p;
    }
    fn expected_tensors(&self) -> Vec<Expected> {
        naming::expected_tensors(self)
    }
    fn canonical_name(name: &str) -> Option<String> {
        naming::canonical_name(name)
    }
    fn layout() -> ParamLayout {
        naming::layout()
    }
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
    fn max_length(&self) -> usize {
        self.max_position_embeddings
    }
    fn initializer_range(&self) -> f64 {
        self.initializer_range
    }
    fn backbone_randomness(&self) -> Option<String> {
        (self.dropout > 0.0 || self.attention_dropout > 0.0).then(|| {
            format!(
                "the transformer's dropout is live in training (dropout {}, attention {}; \
                 --dropout 0 turns it off)",
                self.dropout, self.attention_dropout
            )
        })
    }
    fn to_export_json(&self) -> serde_json::Value {
        DistilBertConfig::to_export_json(self)
    }
}

/// DistilBERT's modules.
pub struct DistilBert {
    embeddings: Embeddings,
    transformer: Encoder,
    pre_classifier: Linear,
    classifier: Linear,
    dropout: f64,
}

impl Architecture for DistilBert {
    type Config = DistilBertConfig;

    fn build(store: &ParamStore, c: &DistilBertConfig) -> Result<Self> {
        let spec = c.encoder_spec();
        let layers = "distilbert.transformer.layer";
        Ok(Self {
            embeddings: Embeddings::new(store, "distilbert.embeddings", &c.embedding_spec())?,
            transformer: Encoder::new(store, &spec, &LAYER, layers)?,
            pre_classifier: linear(store, "pre_classifier", c.dim, c.dim, true)?,
            classifier: linear(store, "classifier", c.dim, c.num_labels(), true)?,
            dropout: c.seq_classif_dropout,
        })
    }

    /// Token types are not an input of DistilBERT: `token_type_ids` is ignored.
    fn encode(&self, b: &BertBatch, mask: Option<&Tensor>, pass: &Pass) -> Result<Tensor> {
        let x = self.embeddings.forward(&b.input_ids, None, None, pass)?;
        self.transformer.forward(&x, mask, pass)
    }

    /// `pre_classifier` + ReLU, dropout (`seq_classif_dropout`), `classifier`.
    fn head(&self, first: &Tensor, pass: &Pass) -> Result<Tensor> {
        let x = self.pre_classifier.forward_with(first, pass.ops)?.relu()?;
        let x = pass.dropout(&x, self.dropout)?;
        self.classifier.forward_with(&x, pass.ops)
    }
}
