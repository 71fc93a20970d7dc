//! BERT's modules ([`Bert`]: embeddings → encoder → pooler (dense + tanh on `[CLS]`) →
//! dropout → `classifier`) and what its config declares ([`EncoderConfig`] for
//! [`BertConfig`]).

use crate::arch::{Architecture, EncoderConfig, Expected};
use crate::classifier::{BertBatch, SequenceClassifier};
use crate::config::BertConfig;
use crate::embeddings::Embeddings;
use crate::encoder::Encoder;
use crate::head_config::ClassifierConfig;
use crate::naming::{self, LAYER};
use crate::pass::Pass;
use candle_core::Tensor;
use finetune_core::nn::{linear, Linear};
use finetune_core::{ParamLayout, ParamStore, Result};
use std::path::Path;

/// transformers' `BertForSequenceClassification`, trainable (see [`SequenceClassifier`]).
pub type BertForSequenceClassification = SequenceClassifier<Bert>;

/// The tokenizer files copied on export, when the source folder has them.
pub const TOKENIZER_FILES: [&str; 4] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
];

impl EncoderConfig for BertConfig {
    const FAMILY: &'static str = "BERT";
    const PREFIX: &'static str = "bert.";
    const TOKENIZER_FILES: &'static [&'static str] = &TOKENIZER_FILES;

    fn from_file(path: &Path) -> Result<Self> {
        BertConfig::from_file(path)
    }
    fn validate(&self) -> Result<()> {
        BertConfig::validate(self)
    }
    fn classifier(&self) -> &ClassifierConfig {
        &self.classifier
    }
    fn classifier_mut(&mut self) -> &mut ClassifierConfig {
        &mut self.classifier
    }
    fn set_dropout(&mut self, p: f64) {
        self.hidden_dropout_prob = p;
        self.attention_probs_dropout_prob = p;
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
        self.dropout_randomness()
    }
    fn to_export_json(&self) -> serde_json::Value {
        self.export_json_as("BertForSequenceClassification", "bert")
    }
}

/// BERT's modules.
pub struct Bert {
    embeddings: Embeddings,
    encoder: Encoder,
    pooler: Linear,
    classifier: Linear,
    classifier_dropout: f64,
}

impl Architecture for Bert {
    type Config = BertConfig;

    fn build(store: &ParamStore, c: &BertConfig) -> Result<Self> {
        let h = c.hidden_size;
        Ok(Self {
            embeddings: Embeddings::new(store, "bert.embeddings", &c.embedding_spec())?,
            encoder: Encoder::new(store, &c.encoder_spec(), &LAYER, "bert.encoder.layer")?,
            pooler: linear(store, "bert.pooler.dense", h, h, true)?,
            classifier: linear(store, "classifier", h, c.num_labels(), true)?,
            classifier_dropout: c.classifier_dropout_prob(),
        })
    }

    fn encode(&self, b: &BertBatch, mask: Option<&Tensor>, pass: &Pass) -> Result<Tensor> {
        let types = b.token_type_ids.as_ref();
        let x = self.embeddings.forward(&b.input_ids, None, types, pass)?;
        self.encoder.forward(&x, mask, pass)
    }

    /// The pooler: dense + tanh on `[CLS]`.
    fn pool(&self, first: &Tensor, pass: &Pass) -> Result<Tensor> {
        Ok(self.pooler.forward_with(first, pass.ops)?.tanh()?)
    }

    /// Dropout, then `classifier`.
    fn head(&self, pooled: &Tensor, pass: &Pass) -> Result<Tensor> {
        let x = pass.dropout(pooled, self.classifier_dropout)?;
        self.classifier.forward_with(&x, pass.ops)
    }
}

impl SequenceClassifier<Bert> {
    /// The pooler's output `[B, H]` (dense + tanh on `[CLS]`), before the head's dropout:
    /// [`SequenceClassifier::features`] under BERT's name for it.
    pub fn pooled(&self, b: &BertBatch, train: bool) -> Result<Tensor> {
        self.features(b, train)
    }
}
