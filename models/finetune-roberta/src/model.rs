//! RoBERTa's modules ([`Roberta`]: embeddings with RoBERTa's position ids → encoder → `<s>` →
//! dropout, `classifier.dense` + tanh, dropout, `classifier.out_proj`) and what its config
//! declares to the shared classifier ([`EncoderConfig`] for [`RobertaConfig`]).

use crate::config::RobertaConfig;
use crate::naming;
use crate::positions::position_ids;
use candle_core::Tensor;
use finetune_bert::embeddings::EmbeddingSpec;
use finetune_bert::encoder::{EncoderSpec, LayerNames};
use finetune_bert::naming::{Naming, LAYER};
use finetune_bert::{
    Architecture, Backbone, BertBatch, ClassifierConfig, DenseHead, Encoder, EncoderConfig,
    HeadNames, Pass, SequenceClassifier,
};
use finetune_core::{ParamStore, Result};

/// transformers' `RobertaForSequenceClassification` (and XLM-RoBERTa's), trainable (see
/// [`SequenceClassifier`]).
pub type RobertaForSequenceClassification = SequenceClassifier<Roberta>;

/// transformers' `RobertaForTokenClassification` (and XLM-RoBERTa's), trainable (see
/// [`finetune_bert::TokenClassifier`]).
pub type RobertaForTokenClassification = finetune_bert::TokenClassifier<Roberta>;

/// The tokenizer files copied on export, when the source folder has them: byte-level BPE's
/// (`vocab.json`, `merges.txt`) and SentencePiece's (`sentencepiece.bpe.model`) besides
/// `tokenizer.json`.
pub const TOKENIZER_FILES: [&str; 6] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
];

impl EncoderConfig for RobertaConfig {
    const FAMILY: &'static str = "RoBERTa";
    const NAMING: Naming = naming::ROBERTA;
    const LAYER: LayerNames = LAYER;
    const HEAD: HeadNames = naming::HEAD;
    const TOKENIZER_FILES: &'static [&'static str] = &TOKENIZER_FILES;

    fn validate(&self) -> Result<()> {
        RobertaConfig::validate(self)
    }
    fn classifier(&self) -> &ClassifierConfig {
        self.0.classifier()
    }
    fn classifier_mut(&mut self) -> &mut ClassifierConfig {
        self.0.classifier_mut()
    }
    fn set_dropout(&mut self, p: f64) {
        self.0.set_dropout(p)
    }
    fn embedding_spec(&self) -> EmbeddingSpec {
        self.0.embedding_spec()
    }
    fn encoder_spec(&self) -> EncoderSpec {
        self.0.encoder_spec()
    }
    fn initializer_range(&self) -> f64 {
        self.0.initializer_range()
    }
    /// `max_position_embeddings - pad_token_id - 1`: positions start after the padding id.
    fn max_length(&self) -> usize {
        self.max_position_embeddings - self.pad_token_id - 1
    }
    fn to_export_json(&self) -> serde_json::Value {
        RobertaConfig::to_export_json(self)
    }
    fn token_dropout(&self) -> f64 {
        self.classifier_dropout_prob()
    }
    fn to_token_export_json(&self) -> serde_json::Value {
        RobertaConfig::to_token_export_json(self)
    }
}

/// RoBERTa's encoder: embeddings with position ids counted from `padding_idx + 1`, BERT's
/// layers; token types are all 0, as transformers' RoBERTa tokenizers leave them out (a
/// batch's `token_type_ids` are ignored).
pub struct RobertaEncoder {
    backbone: Backbone,
    padding_idx: u32,
}

impl Encoder for RobertaEncoder {
    type Config = RobertaConfig;

    fn build(store: &ParamStore, c: &RobertaConfig) -> Result<Self> {
        Ok(Self {
            backbone: Backbone::new(store, c)?,
            padding_idx: c.pad_token_id as u32,
        })
    }

    fn encode(&self, b: &BertBatch, mask: Option<&Tensor>, pass: &Pass) -> Result<Tensor> {
        let positions = position_ids(&b.input_ids, self.padding_idx)?;
        self.backbone
            .forward(&b.input_ids, Some(&positions), None, mask, pass)
    }
}

/// RoBERTa's modules.
pub struct Roberta {
    encoder: RobertaEncoder,
    head: DenseHead,
    dropout: f64,
}

impl Architecture for Roberta {
    type Config = RobertaConfig;
    type Encoder = RobertaEncoder;

    fn build(store: &ParamStore, c: &RobertaConfig) -> Result<Self> {
        Ok(Self {
            encoder: RobertaEncoder::build(store, c)?,
            head: DenseHead::new(store, c)?,
            dropout: c.classifier_dropout_prob(),
        })
    }

    /// See [`RobertaEncoder`].
    fn encode(&self, b: &BertBatch, mask: Option<&Tensor>, pass: &Pass) -> Result<Tensor> {
        self.encoder.encode(b, mask, pass)
    }

    /// Dropout, `classifier.dense` + tanh, dropout, `classifier.out_proj`.
    fn head(&self, first: &Tensor, pass: &Pass) -> Result<Tensor> {
        let x = self
            .head
            .hidden(&pass.dropout(first, self.dropout)?, pass)?;
        self.head
            .out(&pass.dropout(&x.tanh()?, self.dropout)?, pass)
    }
}
