//! `DistilBertConfig`: the keys of a transformers `config.json` for DistilBERT (`dim`,
//! `n_layers`, `n_heads`, `hidden_dim`, …) with transformers' defaults, validated up front.
//! Keys this crate does not interpret are kept and written back on export.

use finetune_bert::config_file::{
    check_heads, check_model_type, check_probabilities, check_sizes, export_json, MAX_DIM,
    MAX_LAYERS, MAX_VOCAB,
};
use finetune_bert::{ClassifierConfig, HiddenAct};
use finetune_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The epsilon of every DistilBERT LayerNorm (fixed in transformers, not a config key).
pub const LAYER_NORM_EPS: f64 = 1e-12;

fn d_vocab() -> usize {
    30522
}
fn d_maxpos() -> usize {
    512
}
fn d_layers() -> usize {
    6
}
fn d_heads() -> usize {
    12
}
fn d_dim() -> usize {
    768
}
fn d_hidden() -> usize {
    3072
}
fn d_drop() -> f64 {
    0.1
}
fn d_act() -> HiddenAct {
    HiddenAct::Gelu
}
fn d_init() -> f64 {
    0.02
}
fn d_classif_drop() -> f64 {
    0.2
}

/// transformers' `DistilBertConfig`; `{}` is `distilbert-base-uncased` with two labels.
/// Deserialising does not validate: `EncoderConfig::from_file` does, and so does every
/// constructor of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistilBertConfig {
    /// Rows of the word embedding (default 30522).
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    /// Rows of the position embedding: the longest input (default 512).
    #[serde(default = "d_maxpos")]
    pub max_position_embeddings: usize,
    /// Fixed sinusoidal position embeddings; only `false` (the default, and every published
    /// checkpoint's) is supported.
    #[serde(default)]
    pub sinusoidal_pos_embds: bool,
    /// Number of layers (default 6).
    #[serde(default = "d_layers")]
    pub n_layers: usize,
    /// Attention heads per layer (default 12).
    #[serde(default = "d_heads")]
    pub n_heads: usize,
    /// Width of every hidden state (default 768); a multiple of `n_heads`.
    #[serde(default = "d_dim")]
    pub dim: usize,
    /// Width of the feed-forward block's inner layer (default 3072).
    #[serde(default = "d_hidden")]
    pub hidden_dim: usize,
    /// Dropout on the embeddings and the feed-forward output, in training (default 0.1).
    #[serde(default = "d_drop")]
    pub dropout: f64,
    /// Dropout on the attention probabilities, in training (default 0.1).
    #[serde(default = "d_drop")]
    pub attention_dropout: f64,
    /// Activation of the feed-forward block: `gelu` (default) or `relu`.
    #[serde(default = "d_act")]
    pub activation: HiddenAct,
    /// Standard deviation of the normal initialisation of fresh weights (default 0.02).
    #[serde(default = "d_init")]
    pub initializer_range: f64,
    /// Dropout before `classifier`, in training (default 0.2).
    #[serde(default = "d_classif_drop")]
    pub seq_classif_dropout: f64,
    /// Id of the padding token (default 0).
    #[serde(default)]
    pub pad_token_id: usize,
    /// The labels and `problem_type`.
    #[serde(flatten)]
    pub classifier: ClassifierConfig,
    /// Every other key, written back unchanged on export.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Default for DistilBertConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("all fields have defaults")
    }
}

impl DistilBertConfig {
    /// Refuses a config the model cannot be built from: a `model_type` other than
    /// `distilbert`, a size of 0 or absurdly large, `dim` not divisible by `n_heads`,
    /// sinusoidal position embeddings, a dropout outside `[0, 1)`, `pad_token_id` outside the
    /// vocabulary, labels that disagree. Errors are [`Error::Config`] naming the key.
    pub fn validate(&self) -> Result<()> {
        check_model_type(&self.extra, &["distilbert"])?;
        check_sizes(&[
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("dim", self.dim, MAX_DIM),
            ("n_layers", self.n_layers, MAX_LAYERS),
            ("n_heads", self.n_heads, MAX_DIM),
            ("hidden_dim", self.hidden_dim, 4 * MAX_DIM),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                MAX_DIM,
            ),
        ])?;
        check_heads(("dim", self.dim), ("n_heads", self.n_heads))?;
        if self.sinusoidal_pos_embds {
            return Err(Error::config(
                "sinusoidal_pos_embds true is not supported (only learned position embeddings)",
            ));
        }
        check_probabilities(&[
            ("dropout", Some(self.dropout)),
            ("attention_dropout", Some(self.attention_dropout)),
            ("seq_classif_dropout", Some(self.seq_classif_dropout)),
        ])?;
        if !finetune_core::error::non_negative(self.initializer_range) {
            return Err(Error::config("`initializer_range` must be >= 0"));
        }
        if self.pad_token_id >= self.vocab_size {
            return Err(Error::config(format!(
                "`pad_token_id` {} is outside the vocabulary",
                self.pad_token_id
            )));
        }
        self.classifier.validate()
    }

    /// The `config.json` of an exported `DistilBertForSequenceClassification`.
    pub fn to_export_json(&self) -> serde_json::Value {
        let mut c = self.clone();
        c.classifier = c.classifier.for_export();
        export_json(&c, "DistilBertForSequenceClassification", "distilbert")
    }

    /// The `config.json` of an exported `DistilBertForTokenClassification`.
    pub fn to_token_export_json(&self) -> serde_json::Value {
        let mut c = self.clone();
        c.classifier = c.classifier.for_export();
        export_json(&c, "DistilBertForTokenClassification", "distilbert")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<DistilBertConfig> {
        let c: DistilBertConfig =
            serde_json::from_str(json).map_err(|e| Error::config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_are_distilbert_base_and_labels_round_trip() -> Result<()> {
        let c = parse(r#"{"id2label": {"0": "neg", "1": "pos"}, "model_type": "distilbert"}"#)?;
        assert_eq!(
            (c.dim, c.n_layers, c.n_heads, c.hidden_dim),
            (768, 6, 12, 3072)
        );
        assert_eq!(c.seq_classif_dropout, 0.2);
        assert_eq!(c.classifier.labels(), ["neg", "pos"]);
        let v = c.to_export_json();
        assert_eq!(
            v["architectures"],
            serde_json::json!(["DistilBertForSequenceClassification"])
        );
        assert_eq!(v["model_type"], "distilbert");
        assert_eq!(v["label2id"]["pos"], 1);
        assert_eq!(v["dim"], 768);
        assert_eq!(v["problem_type"], "single_label_classification");
        assert_eq!(v.get("classifier"), None);
        let back: DistilBertConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back.classifier.labels(), ["neg", "pos"]);
        Ok(())
    }

    #[test]
    fn unsupported_values_are_clear_errors() {
        for (json, needle) in [
            (r#"{"dim": 100, "n_heads": 12}"#, "not divisible"),
            (r#"{"sinusoidal_pos_embds": true}"#, "sinusoidal_pos_embds"),
            (r#"{"activation": "swish"}"#, "swish"),
            (r#"{"dropout": 1.0}"#, "dropout"),
            (r#"{"model_type": "bert"}"#, "`distilbert`"),
            (r#"{"n_layers": 0}"#, "n_layers"),
        ] {
            let e = parse(json).unwrap_err().to_string();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }
}
