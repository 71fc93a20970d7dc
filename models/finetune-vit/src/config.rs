//! `ViTConfig`: the keys of a transformers `config.json` for ViT (`hidden_size`,
//! `num_hidden_layers`, `image_size`, `patch_size`, …) with transformers' defaults, validated up
//! front; keys this crate does not interpret are kept and written back on export. A timm
//! `config.json` (`architecture: vit_*`) is read into the same type by [`crate::timm`].

use finetune_bert::config_file::{
    check_heads, check_model_type, check_probabilities, check_sizes, export_json, MAX_DIM,
    MAX_LAYERS,
};
use finetune_bert::{ClassifierConfig, HiddenAct};
use finetune_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
fn d_init() -> f64 {
    0.02
}
fn d_eps() -> f64 {
    1e-12
}
fn d_image() -> usize {
    224
}
fn d_patch() -> usize {
    16
}
fn d_channels() -> usize {
    3
}
fn d_true() -> bool {
    true
}

/// The largest input side a config may ask for.
pub const MAX_IMAGE: usize = 1 << 14;

/// transformers' `ViTConfig`; `{}` is `google/vit-base-patch16-224`'s shape with two labels.
/// Deserialising does not validate: [`ViTConfig::validate`] does, and so does every
/// constructor of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViTConfig {
    /// Width of every hidden state (default 768); a multiple of `num_attention_heads`.
    #[serde(default = "d_hidden")]
    pub hidden_size: usize,
    /// Number of encoder layers (default 12).
    #[serde(default = "d_layers")]
    pub num_hidden_layers: usize,
    /// Attention heads per layer (default 12).
    #[serde(default = "d_heads")]
    pub num_attention_heads: usize,
    /// Width of the feed-forward block's inner layer (default 3072).
    #[serde(default = "d_inter")]
    pub intermediate_size: usize,
    /// Activation of the feed-forward block (default `gelu`).
    #[serde(default = "d_act")]
    pub hidden_act: HiddenAct,
    /// Dropout on the embeddings and each block's outputs, in training (default 0).
    #[serde(default)]
    pub hidden_dropout_prob: f64,
    /// Dropout on the attention probabilities, in training (default 0).
    #[serde(default)]
    pub attention_probs_dropout_prob: f64,
    /// Standard deviation of the normal initialisation of fresh weights (default 0.02).
    #[serde(default = "d_init")]
    pub initializer_range: f64,
    /// Epsilon of every LayerNorm (default 1e-12; timm's checkpoints use 1e-6).
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    /// Side of the square input the position embeddings are for (default 224).
    #[serde(default = "d_image")]
    pub image_size: usize,
    /// Side of each square patch (default 16); divides `image_size`.
    #[serde(default = "d_patch")]
    pub patch_size: usize,
    /// Input channels (default 3).
    #[serde(default = "d_channels")]
    pub num_channels: usize,
    /// Whether the query, key and value projections have biases (default true).
    #[serde(default = "d_true")]
    pub qkv_bias: bool,
    /// The labels and `problem_type`.
    #[serde(flatten)]
    pub classifier: ClassifierConfig,
    /// Every other key, written back unchanged on export.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Default for ViTConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("all fields have defaults")
    }
}

impl ViTConfig {
    /// Refuses a config the model cannot be built from: a `model_type` other than `vit`, a
    /// size of 0 or absurdly large, `hidden_size` not divisible by the heads, an `image_size`
    /// the patches do not tile, a dropout outside `[0, 1)`, labels that disagree. Errors are
    /// [`Error::Config`] naming the key.
    pub fn validate(&self) -> Result<()> {
        check_model_type(&self.extra, &["vit"])?;
        check_sizes(&[
            ("hidden_size", self.hidden_size, MAX_DIM),
            ("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS),
            ("num_attention_heads", self.num_attention_heads, MAX_DIM),
            ("intermediate_size", self.intermediate_size, 4 * MAX_DIM),
            ("image_size", self.image_size, MAX_IMAGE),
            ("patch_size", self.patch_size, MAX_IMAGE),
            ("num_channels", self.num_channels, 4),
        ])?;
        check_heads(
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
        )?;
        if !self.image_size.is_multiple_of(self.patch_size) {
            return Err(Error::config(format!(
                "`image_size` {} is not a multiple of `patch_size` {}",
                self.image_size, self.patch_size
            )));
        }
        check_probabilities(&[
            ("hidden_dropout_prob", Some(self.hidden_dropout_prob)),
            (
                "attention_probs_dropout_prob",
                Some(self.attention_probs_dropout_prob),
            ),
        ])?;
        if !finetune_core::error::non_negative(self.initializer_range) {
            return Err(Error::config("`initializer_range` must be >= 0"));
        }
        if !finetune_core::error::positive(self.layer_norm_eps) {
            return Err(Error::config("`layer_norm_eps` must be > 0"));
        }
        self.classifier.validate()
    }

    /// Patches per side of the input: `image_size / patch_size`.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Tokens per image: the patches and the class token.
    pub fn tokens(&self) -> usize {
        self.grid() * self.grid() + 1
    }

    /// Values per flattened patch: `num_channels · patch_size²`.
    pub fn patch_values(&self) -> usize {
        self.num_channels * self.patch_size * self.patch_size
    }

    /// The `config.json` of an exported `ViTForImageClassification`.
    pub fn to_export_json(&self) -> serde_json::Value {
        let mut c = self.clone();
        c.classifier = c.classifier.for_export();
        export_json(&c, "ViTForImageClassification", "vit")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ViTConfig> {
        let c: ViTConfig = serde_json::from_str(json).map_err(|e| Error::config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_are_vit_base_and_export_names_the_architecture() -> Result<()> {
        let c = parse(r#"{"model_type": "vit", "id2label": {"0": "cat", "1": "dog"}}"#)?;
        assert_eq!(
            (c.hidden_size, c.num_hidden_layers, c.grid()),
            (768, 12, 14)
        );
        assert_eq!((c.tokens(), c.patch_values()), (197, 768));
        let v = c.to_export_json();
        assert_eq!(
            v["architectures"],
            serde_json::json!(["ViTForImageClassification"])
        );
        assert_eq!(
            (v["model_type"].as_str(), v["label2id"]["dog"].as_u64()),
            (Some("vit"), Some(1))
        );
        Ok(())
    }

    #[test]
    fn unsupported_values_are_clear_errors() {
        for (json, needle) in [
            (r#"{"hidden_size": 100}"#, "not divisible"),
            (r#"{"image_size": 225}"#, "multiple of `patch_size`"),
            (r#"{"hidden_dropout_prob": 1.0}"#, "hidden_dropout_prob"),
            (r#"{"model_type": "deit"}"#, "`vit`"),
            (r#"{"num_hidden_layers": 0}"#, "num_hidden_layers"),
            (r#"{"hidden_act": "swish"}"#, "swish"),
        ] {
            let e = parse(json).unwrap_err().to_string();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }
}
