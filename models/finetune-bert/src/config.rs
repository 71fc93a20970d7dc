//! `BertConfig`: the fields of a transformers `config.json` for BERT, with transformers'
//! defaults, validated up front. Keys this crate does not interpret are kept and written back on
//! export.

use crate::config_file::{
    check_heads, check_model_type, check_probabilities, check_sizes, MAX_DIM, MAX_LAYERS, MAX_VOCAB,
};
pub use crate::head_config::{ClassifierConfig, ProblemType};
use finetune_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The activation of the feed-forward block (`hidden_act`); other values transformers knows
/// (`swish`, `silu`, …) are refused when the config is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HiddenAct {
    /// The erf form (`hidden_act: "gelu"`).
    #[serde(rename = "gelu")]
    Gelu,
    /// The tanh approximation (`gelu_new`, also spelled `gelu_pytorch_tanh`).
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh")]
    GeluNew,
    /// `max(0, x)` (`hidden_act: "relu"`).
    #[serde(rename = "relu")]
    Relu,
}

fn d_vocab() -> usize {
    30522
}
fn d_hidden() -> usize {
    768
}
fn d_layers() -> usize {
    12
}
fn d_heads() -> usize {
    12
}
fn d_inter() -> usize {
    3072
}
fn d_act() -> HiddenAct {
    HiddenAct::Gelu
}
fn d_drop() -> f64 {
    0.1
}
fn d_maxpos() -> usize {
    512
}
fn d_types() -> usize {
    2
}
fn d_init() -> f64 {
    0.02
}
fn d_eps() -> f64 {
    1e-12
}
fn d_pos() -> String {
    "absolute".into()
}

/// transformers' `BertConfig`: a `config.json` deserialises into it with transformers'
/// defaults (those of `bert-base-uncased`) for missing keys; `{}` is BERT-base with two labels.
/// Deserialising does not validate: [`BertConfig::from_file`] does, and so does every
/// constructor of the model ([`BertConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Rows of the word embedding; every token id must be below it (default 30522).
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    /// Width `H` of every hidden state (default 768); a multiple of `num_attention_heads`.
    #[serde(default = "d_hidden")]
    pub hidden_size: usize,
    /// Number of encoder layers (default 12).
    #[serde(default = "d_layers")]
    pub num_hidden_layers: usize,
    /// Attention heads per layer (default 12); each is [`BertConfig::head_dim`] wide.
    #[serde(default = "d_heads")]
    pub num_attention_heads: usize,
    /// Width of the feed-forward block's inner layer (default 3072).
    #[serde(default = "d_inter")]
    pub intermediate_size: usize,
    /// Activation of the feed-forward block (default erf GELU).
    #[serde(default = "d_act")]
    pub hidden_act: HiddenAct,
    /// Dropout on the embeddings and on each sublayer's output, in training (default 0.1).
    #[serde(default = "d_drop")]
    pub hidden_dropout_prob: f64,
    /// Dropout on the attention probabilities, in training (default 0.1).
    #[serde(default = "d_drop")]
    pub attention_probs_dropout_prob: f64,
    /// Rows of the position embedding: the longest sequence the model takes (default 512).
    #[serde(default = "d_maxpos")]
    pub max_position_embeddings: usize,
    /// Rows of the token type (segment) embedding (default 2).
    #[serde(default = "d_types")]
    pub type_vocab_size: usize,
    /// Standard deviation of the normal initialisation of fresh weights (default 0.02).
    #[serde(default = "d_init")]
    pub initializer_range: f64,
    /// Epsilon of every LayerNorm (default 1e-12).
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    /// Id of the padding token (default 0); must be inside the vocabulary.
    #[serde(default)]
    pub pad_token_id: usize,
    /// Only `absolute` (the default) is supported; the relative kinds are refused.
    #[serde(default = "d_pos")]
    pub position_embedding_type: String,
    /// Dropout before the classifier; `None` means `hidden_dropout_prob`
    /// (see [`BertConfig::classifier_dropout_prob`]).
    #[serde(default)]
    pub classifier_dropout: Option<f64>,
    /// The labels and `problem_type`.
    #[serde(flatten)]
    pub classifier: ClassifierConfig,
    /// Every other key, written back unchanged on export.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Default for BertConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("all fields have defaults")
    }
}

impl BertConfig {
    /// Reads and validates `config.json`; errors name the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        <Self as crate::arch::EncoderConfig>::from_file(path)
    }

    /// Refuses a config the model cannot be built from: a `model_type` other than `bert`, a
    /// size of 0 or absurdly large, `hidden_size` not divisible by `num_attention_heads`, a
    /// position embedding other than `absolute`, a dropout outside `[0, 1)`,
    /// `layer_norm_eps <= 0` or `initializer_range < 0`, `pad_token_id` outside the
    /// vocabulary, `id2label` keys other than `0..n`, `num_labels` disagreeing with
    /// `id2label`. Errors are [`Error::Config`] naming the key.
    pub fn validate(&self) -> Result<()> {
        self.validate_as(&["bert"])
    }

    /// [`Self::validate`] for a family reading the same keys under other `model_type`s.
    pub fn validate_as(&self, model_types: &[&str]) -> Result<()> {
        let bad = |m: String| Err(Error::config(m));
        check_model_type(&self.extra, model_types)?;
        check_sizes(&[
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, MAX_DIM),
            ("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS),
            ("num_attention_heads", self.num_attention_heads, MAX_DIM),
            ("intermediate_size", self.intermediate_size, 4 * MAX_DIM),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                MAX_DIM,
            ),
            ("type_vocab_size", self.type_vocab_size, MAX_DIM),
        ])?;
        check_heads(
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
        )?;
        if self.position_embedding_type != "absolute" {
            return bad(format!(
                "position_embedding_type `{}` is not supported (only `absolute`)",
                self.position_embedding_type
            ));
        }
        check_probabilities(&[
            ("hidden_dropout_prob", Some(self.hidden_dropout_prob)),
            (
                "attention_probs_dropout_prob",
                Some(self.attention_probs_dropout_prob),
            ),
            ("classifier_dropout", self.classifier_dropout),
        ])?;
        if !finetune_core::error::positive(self.layer_norm_eps)
            || !finetune_core::error::non_negative(self.initializer_range)
        {
            return bad("`layer_norm_eps` must be > 0 and `initializer_range` >= 0".into());
        }
        if self.pad_token_id >= self.vocab_size {
            return bad(format!(
                "`pad_token_id` {} is outside the vocabulary",
                self.pad_token_id
            ));
        }
        self.classifier.validate()
    }

    /// The loss family (see [`ClassifierConfig::problem`]).
    pub fn problem(&self) -> ProblemType {
        self.classifier.problem()
    }

    /// Sets the classification labels (names in class order).
    pub fn set_labels<S: AsRef<str>>(&mut self, labels: &[S]) {
        self.classifier.set_labels(labels)
    }

    /// Width of one attention head: `hidden_size / num_attention_heads`.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Dropout before the classifier: `classifier_dropout`, else `hidden_dropout_prob`.
    pub fn classifier_dropout_prob(&self) -> f64 {
        self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)
    }

    /// The `config.json` of an exported `architecture` of `model_type`: every key, the
    /// labels written out and the problem type explicit.
    pub fn export_json_as(&self, architecture: &str, model_type: &str) -> serde_json::Value {
        let mut c = self.clone();
        c.classifier = c.classifier.for_export();
        crate::config_file::export_json(&c, architecture, model_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::EncoderConfig;

    fn parse(json: &str) -> Result<BertConfig> {
        let c: BertConfig = serde_json::from_str(json).map_err(|e| Error::config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_and_labels() -> Result<()> {
        let c = parse(
            r#"{"hidden_size": 384, "num_attention_heads": 12, "hidden_act": "gelu_pytorch_tanh"}"#,
        )?;
        assert_eq!(c.vocab_size, 30522);
        assert_eq!(c.hidden_act, HiddenAct::GeluNew);
        assert_eq!(c.num_labels(), 2);
        assert_eq!(c.labels(), vec!["LABEL_0", "LABEL_1"]);
        assert_eq!(c.problem(), ProblemType::SingleLabelClassification);
        let c = parse(
            r#"{"id2label": {"0": "neg", "1": "neu", "2": "pos"}, "classifier_dropout": 0.3}"#,
        )?;
        assert_eq!(c.extra.get("id2label"), None);
        assert_eq!(c.labels(), vec!["neg", "neu", "pos"]);
        assert_eq!(c.classifier_dropout_prob(), 0.3);
        assert_eq!(
            parse(r#"{"num_labels": 1}"#)?.problem(),
            ProblemType::Regression
        );
        Ok(())
    }

    #[test]
    fn absurd_or_unsupported_values_are_clear_errors() {
        for (json, needle) in [
            (
                r#"{"hidden_size": 100, "num_attention_heads": 12}"#,
                "not divisible",
            ),
            (r#"{"num_hidden_layers": 100000}"#, "num_hidden_layers"),
            (r#"{"hidden_act": "swish"}"#, "swish"),
            (
                r#"{"position_embedding_type": "relative_key"}"#,
                "relative_key",
            ),
            (r#"{"hidden_dropout_prob": 1.5}"#, "hidden_dropout_prob"),
            (r#"{"model_type": "roberta"}"#, "roberta"),
            (r#"{"id2label": {"0": "a", "5": "b"}}"#, "id2label"),
            (r#"{"vocab_size": 0}"#, "vocab_size"),
        ] {
            let e = parse(json).unwrap_err().to_string();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }

    #[test]
    fn export_json_is_a_sequence_classifier_and_keeps_extras() -> Result<()> {
        let mut c = parse(r#"{"architectures": ["BertModel"], "transformers_version": "4.8.2"}"#)?;
        c.set_labels(&["negative", "positive"]);
        let v = c.to_export_json();
        assert_eq!(v.get("classifier"), None);
        assert_eq!(
            v["architectures"],
            serde_json::json!(["BertForSequenceClassification"])
        );
        assert_eq!(v["model_type"], "bert");
        assert_eq!(v["id2label"]["1"], "positive");
        assert_eq!(v["label2id"]["negative"], 0);
        assert_eq!(v["problem_type"], "single_label_classification");
        assert_eq!(v["transformers_version"], "4.8.2");
        assert_eq!(v["hidden_act"], "gelu");
        let back: BertConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back.labels(), vec!["negative", "positive"]);
        Ok(())
    }
}
