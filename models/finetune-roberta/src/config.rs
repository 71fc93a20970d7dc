//! `RobertaConfig`: a RoBERTa or XLM-RoBERTa `config.json`. Its keys are BERT's
//! ([`BertConfig`]); what differs is the accepted `model_type` (`roberta`, `xlm-roberta`),
//! transformers' defaults for a missing `pad_token_id` (1) and `vocab_size` (50265), and the
//! longest input: position ids start after `pad_token_id`, so `max_position_embeddings -
//! pad_token_id - 1` tokens fit.

use finetune_bert::BertConfig;
use finetune_core::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize};
use std::ops::{Deref, DerefMut};

/// The `model_type`s this crate reads.
pub const MODEL_TYPES: [&str; 2] = ["roberta", "xlm-roberta"];

/// transformers' `RobertaConfig` / `XLMRobertaConfig`: BERT's keys (reached through
/// [`Deref`]) with RoBERTa's defaults. Deserialising does not validate:
/// `EncoderConfig::from_file` does, and so does every constructor of the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct RobertaConfig(pub BertConfig);

impl<'de> Deserialize<'de> for RobertaConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        map.entry("pad_token_id").or_insert(1.into());
        map.entry("vocab_size").or_insert(50265.into());
        BertConfig::deserialize(serde_json::Value::Object(map))
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

impl Deref for RobertaConfig {
    type Target = BertConfig;
    fn deref(&self) -> &BertConfig {
        &self.0
    }
}

impl DerefMut for RobertaConfig {
    fn deref_mut(&mut self) -> &mut BertConfig {
        &mut self.0
    }
}

impl RobertaConfig {
    /// BERT's checks ([`BertConfig::validate_as`]) for RoBERTa's `model_type`s, and room for
    /// at least one token after the padding positions.
    pub fn validate(&self) -> Result<()> {
        self.0.validate_as(&MODEL_TYPES)?;
        if self.max_position_embeddings <= self.pad_token_id + 1 {
            return Err(Error::config(format!(
                "`max_position_embeddings` {} leaves no position after `pad_token_id` {} \
                 (positions start at pad_token_id + 1)",
                self.max_position_embeddings, self.pad_token_id
            )));
        }
        Ok(())
    }

    /// The checkpoint's `model_type` (`roberta` when absent).
    pub fn model_type(&self) -> &str {
        self.extra
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or(MODEL_TYPES[0])
    }

    /// The `config.json` of the exported `RobertaForSequenceClassification` (or
    /// `XLMRobertaForSequenceClassification`), `model_type` kept.
    pub fn to_export_json(&self) -> serde_json::Value {
        let arch = match self.model_type() {
            "xlm-roberta" => "XLMRobertaForSequenceClassification",
            _ => "RobertaForSequenceClassification",
        };
        self.export_json_as(arch, self.model_type())
    }

    /// The `config.json` of the exported `RobertaForTokenClassification` (or
    /// `XLMRobertaForTokenClassification`), `model_type` kept.
    pub fn to_token_export_json(&self) -> serde_json::Value {
        let arch = match self.model_type() {
            "xlm-roberta" => "XLMRobertaForTokenClassification",
            _ => "RobertaForTokenClassification",
        };
        self.export_json_as(arch, self.model_type())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use finetune_bert::EncoderConfig;

    fn parse(json: &str) -> Result<RobertaConfig> {
        let c: RobertaConfig =
            serde_json::from_str(json).map_err(|e| Error::config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_limits_and_export_follow_the_model_type() -> Result<()> {
        let c = parse(r#"{"model_type": "roberta", "max_position_embeddings": 514}"#)?;
        assert_eq!(
            (c.pad_token_id, c.vocab_size, c.max_length()),
            (1, 50265, 512)
        );
        let v = c.to_export_json();
        assert_eq!(
            v["architectures"],
            serde_json::json!(["RobertaForSequenceClassification"])
        );
        assert_eq!(v["model_type"], "roberta");
        assert_eq!(v["pad_token_id"], 1);
        let c = parse(r#"{"model_type": "xlm-roberta", "vocab_size": 250002}"#)?;
        let v = c.to_export_json();
        assert_eq!(
            v["architectures"],
            serde_json::json!(["XLMRobertaForSequenceClassification"])
        );
        assert_eq!(v["model_type"], "xlm-roberta");
        let back: RobertaConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back.vocab_size, 250002);
        Ok(())
    }

    #[test]
    fn unsupported_values_are_clear_errors() {
        for (json, needle) in [
            (r#"{"model_type": "bert"}"#, "`roberta` or `xlm-roberta`"),
            (
                r#"{"max_position_embeddings": 2}"#,
                "max_position_embeddings",
            ),
            (
                r#"{"hidden_size": 100, "num_attention_heads": 12}"#,
                "not divisible",
            ),
        ] {
            let e = parse(json).unwrap_err().to_string();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }
}
