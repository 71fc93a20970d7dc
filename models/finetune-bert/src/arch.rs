//! What a family built on this crate declares so that [`crate::SequenceClassifier`] can load,
//! run, train and export it: its config ([`EncoderConfig`]: names, sizes, labels, export) and
//! its modules ([`Architecture`]: the backbone up to the first token's features, the head).

use crate::backbone::{Backbone, DenseHead, HeadNames};
use crate::classifier::BertBatch;
use crate::embeddings::EmbeddingSpec;
use crate::encoder::{EncoderSpec, LayerNames};
use crate::head_config::ClassifierConfig;
use crate::naming::Naming;
use crate::pass::Pass;
use candle_core::Tensor;
use finetune_core::{ParamLayout, ParamStore, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// Where a tensor comes from on load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Embeddings and encoder: must be in the checkpoint.
    Encoder,
    /// Pooler: initialised (and reported) when absent, as transformers does.
    Pooler,
    /// Classifier head: loaded when present with the right shape, else initialised.
    Head,
}

/// A tensor the model expects: its name, shape and [`Role`].
pub type Expected = (String, Vec<usize>, Role);

/// A family's `config.json` and the facts about the model that follow from it.
pub trait EncoderConfig:
    Clone + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The family's name in messages (`BERT`).
    const FAMILY: &'static str;
    /// How the family names its tensors (prefix, bare naming, head, layers).
    const NAMING: Naming;
    /// The modules of one encoder layer, relative to `{prefix}.{layers}.N`.
    const LAYER: LayerNames;
    /// The head's two dense layers.
    const HEAD: HeadNames;
    /// The tokenizer files an export copies from the source folder (default: BERT's).
    const TOKENIZER_FILES: &'static [&'static str] = &crate::bert::TOKENIZER_FILES;

    /// Refuses a config the model cannot be built from; errors name the key.
    fn validate(&self) -> Result<()>;
    /// The labels and problem type.
    fn classifier(&self) -> &ClassifierConfig;
    /// The labels and problem type, to change.
    fn classifier_mut(&mut self) -> &mut ClassifierConfig;
    /// Replaces the backbone's dropout probabilities (transformers' meaning of overriding
    /// "dropout"); the head keeps its own when the config sets one.
    fn set_dropout(&mut self, p: f64);
    /// The embedding block's sizes and dropout.
    fn embedding_spec(&self) -> EmbeddingSpec;
    /// The encoder's sizes, activation and dropouts.
    fn encoder_spec(&self) -> EncoderSpec;
    /// Standard deviation of the normal initialisation of fresh weights.
    fn initializer_range(&self) -> f64;
    /// The `config.json` of the exported sequence classifier (`architectures` set).
    fn to_export_json(&self) -> serde_json::Value;
    /// Dropout before a token classifier's `classifier` (transformers' `…ForTokenClassification`:
    /// BERT's and RoBERTa's `classifier_dropout`, else `hidden_dropout_prob`; DistilBERT's
    /// `dropout`).
    fn token_dropout(&self) -> f64;
    /// The `config.json` of the exported token classifier (`architectures`:
    /// `BertForTokenClassification` and so on).
    fn to_token_export_json(&self) -> serde_json::Value;

    /// The model's tensors, in module order, with shapes and roles: the backbone's, then the
    /// head's.
    fn expected_tensors(&self) -> Vec<Expected> {
        let mut out = Backbone::tensors(self);
        let h = self.encoder_spec().hidden;
        out.extend(DenseHead::tensors(&Self::HEAD, h, self.num_labels()));
        out
    }
    /// Reads and validates a `config.json`; errors name the file.
    fn from_file(path: &Path) -> Result<Self> {
        crate::config_file::read_config(path, Self::FAMILY, Self::validate)
    }
    /// The model name a checkpoint tensor maps to (either naming), `None` for tensors the
    /// classifier does not use.
    fn canonical_name(name: &str) -> Option<String> {
        Self::NAMING.canonical(name)
    }
    /// The head's patterns, every parameter's depth and the bare naming as an alias.
    fn layout() -> ParamLayout {
        Self::NAMING.layout()
    }
    /// Rows of the word embedding: every token id must be below it.
    fn vocab_size(&self) -> usize {
        self.embedding_spec().vocab
    }
    /// The longest input, in tokens, special tokens included (default: one per position
    /// embedding).
    fn max_length(&self) -> usize {
        self.embedding_spec().positions
    }
    /// Why the backbone's output is not a fixed function of its input in training (its
    /// dropout); `None`: it is.
    fn backbone_randomness(&self) -> Option<String> {
        let (e, s) = (self.embedding_spec(), self.encoder_spec());
        let hidden = e.dropout.max(s.hidden_dropout);
        (hidden > 0.0 || s.attention_dropout > 0.0).then(|| {
            format!(
                "the encoder's dropout is live in training (hidden {hidden}, attention {}; \
                 --dropout 0 turns it off)",
                s.attention_dropout
            )
        })
    }
    /// Number of classifier outputs.
    fn num_labels(&self) -> usize {
        self.classifier().num_labels()
    }
    /// Label names in class order.
    fn labels(&self) -> Vec<String> {
        self.classifier().labels()
    }
}

/// A family's encoder alone — embeddings and layers, fed as the family feeds them (its
/// position ids, its token types) — which every task head sits on.
pub trait Encoder: Sized + Send + Sync + 'static {
    /// Its config.
    type Config: EncoderConfig;
    /// The encoder over a store holding the backbone's tensors ([`Backbone::tensors`]).
    fn build(store: &ParamStore, config: &Self::Config) -> Result<Self>;
    /// The last hidden states `[B, T, H]`; `mask`: the additive key mask `[B, T]`.
    fn encode(&self, b: &BertBatch, mask: Option<&Tensor>, pass: &Pass) -> Result<Tensor>;
}

/// A family's modules over a [`ParamStore`].
pub trait Architecture: Sized + Send + Sync + 'static {
    /// Its config.
    type Config: EncoderConfig;
    /// Its encoder without the sequence head, for heads on every token.
    type Encoder: Encoder<Config = Self::Config>;
    /// The modules over a store holding every tensor of
    /// [`EncoderConfig::expected_tensors`]; shapes are checked.
    fn build(store: &ParamStore, config: &Self::Config) -> Result<Self>;
    /// The last hidden states `[B, T, H]`; `mask`: the additive key mask `[B, T]`.
    fn encode(&self, b: &BertBatch, mask: Option<&Tensor>, pass: &Pass) -> Result<Tensor>;
    /// The first token's hidden state `[B, H]` → the features the head takes (BERT: its
    /// pooler; the identity where the head starts on the token itself).
    fn pool(&self, first: &Tensor, _pass: &Pass) -> Result<Tensor> {
        Ok(first.clone())
    }
    /// The head on the features: logits `[B, num_labels]`.
    fn head(&self, features: &Tensor, pass: &Pass) -> Result<Tensor>;
}
