//! DistilBERT's modules ([`DistilBert`]: embeddings → encoder → first token → `pre_classifier`
//! and ReLU → dropout → `classifier`) and what its config declares to the shared classifier
//! ([`EncoderConfig`] for [`DistilBertConfig`]).

use crate::config::{DistilBertConfig, LAYER_NORM_EPS};
use crate::naming;
use candle_core::Tensor;
use finetune_bert::embeddings::EmbeddingSpec;
use finetune_bert::encoder::{EncoderSpec, LayerNames};
use finetune_bert::naming::Naming;
use finetune_bert::{
    Architecture, Backbone, BertBatch, ClassifierConfig, DenseHead, Encoder, EncoderConfig,
    HeadNames, Pass, SequenceClassifier,
};
use finetune_core::{ParamStore, Result};

/// transformers' `DistilBertForSequenceClassification`, trainable (see
/// [`SequenceClassifier`]).
pub type DistilBertForSequenceClassification = SequenceClassifier<DistilBert>;

/// transformers' `DistilBertForTokenClassification`, trainable (see
/// [`finetune_bert::TokenClassifier`]).
pub type DistilBertForTokenClassification = finetune_bert::TokenClassifier<DistilBert>;

impl EncoderConfig for DistilBertConfig {
    const FAMILY: &'static str = "DistilBERT";
    const NAMING: Naming = naming::DISTILBERT;
    const LAYER: LayerNames = naming::LAYER;
    const HEAD: HeadNames = naming::HEAD;

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
    /// No token types.
    fn embedding_spec(&self) -> EmbeddingSpec {
        EmbeddingSpec {
            vocab: self.vocab_size,
            positions: self.max_position_embeddings,
            token_types: None,
            hidden: self.dim,
            eps: LAYER_NORM_EPS,
            dropout: self.dropout,
        }
    }
    /// No dropout after the attention's output projection, as transformers' DistilBERT.
    fn encoder_spec(&self) -> EncoderSpec {
        EncoderSpec {
            hidden: self.dim,
            intermediate: self.hidden_dim,
            heads: self.n_heads,
            layers: self.n_layers,
            eps: LAYER_NORM_EPS,
            act: self.activation,
            hidden_dropout: self.dropout,
            attention_dropout: self.attention_dropout,
            attention_output_dropout: 0.0,
        }
    }
    fn initializer_range(&self) -> f64 {
        self.initializer_range
    }
    fn to_export_json(&self) -> serde_json::Value {
        DistilBertConfig::to_export_json(self)
    }
    /// `dropout`, as transformers' `DistilBertForTokenClassification`.
    fn token_dropout(&self) -> f64 {
        self.dropout
    }
    fn to_token_export_json(&self) -> serde_json::Value {
        DistilBertConfig::to_token_export_json(self)
    }
}

/// DistilBERT's encoder (`distilbert.embeddings`, `distilbert.transformer`); token types are
/// not an input: `token_type_ids` is ignored.
pub struct DistilBertEncoder(Backbone);

impl Encoder for DistilBertEncoder {
    type Config = DistilBertConfig;

    fn build(store: &ParamStore, c: &DistilBertConfig) -> Result<Self> {
        Ok(Self(Backbone::new(store, c)?))
    }

    fn encode(&self, b: &BertBatch, mask: Option<&Tensor>, pass: &Pass) -> Result<Tensor> {
        self.0.forward(&b.input_ids, None, None, mask, pass)
    }
}

/// DistilBERT's modules.
pub struct DistilBert {
    transformer: DistilBertEncoder,
    head: DenseHead,
    dropout: f64,
}

impl Architecture for DistilBert {
    type Config = DistilBertConfig;
    type Encoder = DistilBertEncoder;

    fn build(store: &ParamStore, c: &DistilBertConfig) -> Result<Self> {
        Ok(Self {
            transformer: DistilBertEncoder::build(store, c)?,
            head: DenseHead::new(store, c)?,
            dropout: c.seq_classif_dropout,
        })
    }

    /// Token types are not an input of DistilBERT: `token_type_ids` is ignored.
    fn encode(&self, b: &BertBatch, mask: Option<&Tensor>, pass: &Pass) -> Result<Tensor> {
        self.transformer.encode(b, mask, pass)
    }

    /// `pre_classifier` + ReLU, dropout (`seq_classif_dropout`), `classifier`.
    fn head(&self, first: &Tensor, pass: &Pass) -> Result<Tensor> {
        let x = self.head.hidden(first, pass)?.relu()?;
        self.head.out(&pass.dropout(&x, self.dropout)?, pass)
    }
}
