//! BERT's modules ([`Bert`]: embeddings → encoder → pooler (dense + tanh on `[CLS]`) →
//! dropout → `classifier`) and what its config declares ([`EncoderConfig`] for
//! [`BertConfig`]).

use crate::arch::{Architecture, Encoder, EncoderConfig};
use crate::backbone::{Backbone, DenseHead, HeadNames};
use crate::classifier::{BertBatch, SequenceClassifier};
use crate::config::BertConfig;
use crate::embeddings::EmbeddingSpec;
use crate::encoder::{EncoderSpec, LayerNames};
use crate::head_config::ClassifierConfig;
use crate::naming::{self, Naming};
use crate::pass::Pass;
use candle_core::Tensor;
use finetune_core::{ParamStore, Result};

/// transformers' `BertForSequenceClassification`, trainable (see [`SequenceClassifier`]).
pub type BertForSequenceClassification = SequenceClassifier<Bert>;

/// transformers' `BertForTokenClassification`, trainable (see
/// [`crate::TokenClassifier`]).
pub type BertForTokenClassification = crate::TokenClassifier<Bert>;

/// The tokenizer files copied on export, when the source folder has them.
pub const TOKENIZER_FILES: [&str; 4] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
];

impl EncoderConfig for BertConfig {
    const FAMILY: &'static str = "BERT";
    const NAMING: Naming = naming::BERT;
    const LAYER: LayerNames = naming::LAYER;
    const HEAD: HeadNames = naming::HEAD;

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
    fn embedding_spec(&self) -> EmbeddingSpec {
        EmbeddingSpec {
            vocab: self.vocab_size,
            positions: self.max_position_embeddings,
            token_types: Some(self.type_vocab_size),
            hidden: self.hidden_size,
            eps: self.layer_norm_eps,
            dropout: self.hidden_dropout_prob,
        }
    }
    fn encoder_spec(&self) -> EncoderSpec {
        EncoderSpec {
            hidden: self.hidden_size,
            intermediate: self.intermediate_size,
            heads: self.num_attention_heads,
            layers: self.num_hidden_layers,
            eps: self.layer_norm_eps,
            act: self.hidden_act,
            hidden_dropout: self.hidden_dropout_prob,
            attention_dropout: self.attention_probs_dropout_prob,
            attention_output_dropout: self.hidden_dropout_prob,
        }
    }
    fn initializer_range(&self) -> f64 {
        self.initializer_range
    }
    fn to_export_json(&self) -> serde_json::Value {
        self.export_json_as("BertForSequenceClassification", "bert")
    }
    fn token_dropout(&self) -> f64 {
        self.classifier_dropout_prob()
    }
    fn to_token_export_json(&self) -> serde_json::Value {
        self.export_json_as("BertForTokenClassification", "bert")
    }
}

/// BERT's encoder: embeddings (with token types) and layers, no pooler.
pub struct BertEncoder(Backbone);

impl Encoder for BertEncoder {
    type Config = BertConfig;

    fn build(store: &ParamStore, c: &BertConfig) -> Result<Self> {
        Ok(Self(Backbone::new(store, c)?))
    }

    fn encode(&self, b: &BertBatch, mask: Option<&Tensor>, pass: &Pass) -> Result<Tensor> {
        let types = b.token_type_ids.as_ref();
        self.0.forward(&b.input_ids, None, types, mask, pass)
    }
}

/// BERT's modules.
pub struct Bert {
    encoder: BertEncoder,
    head: DenseHead,
    classifier_dropout: f64,
}

impl Architecture for Bert {
    type Config = BertConfig;
    type Encoder = BertEncoder;

    fn build(store: &ParamStore, c: &BertConfig) -> Result<Self> {
        Ok(Self {
            encoder: BertEncoder::build(store, c)?,
            head: DenseHead::new(store, c)?,
            classifier_dropout: c.classifier_dropout_prob(),
        })
    }

    fn encode(&self, b: &BertBatch, mask: Option<&Tensor>, pass: &Pass) -> Result<Tensor> {
        self.encoder.encode(b, mask, pass)
    }

    /// The pooler: dense + tanh on `[CLS]`.
    fn pool(&self, first: &Tensor, pass: &Pass) -> Result<Tensor> {
        Ok(self.head.hidden(first, pass)?.tanh()?)
    }

    /// Dropout, then `classifier`.
    fn head(&self, pooled: &Tensor, pass: &Pass) -> Result<Tensor> {
        self.head
            .out(&pass.dropout(pooled, self.classifier_dropout)?, pass)
    }
}

impl SequenceClassifier<Bert> {
    /// The pooler's output `[B, H]` (dense + tanh on `[CLS]`), before the head's dropout:
    /// [`SequenceClassifier::features`] under BERT's name for it.
    pub fn pooled(&self, b: &BertBatch, train: bool) -> Result<Tensor> {
        self.features(b, train)
    }
}
