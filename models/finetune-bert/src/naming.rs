//! Tensor names. The model's own names are those of transformers'
//! `BertForSequenceClassification` state dict (`bert.embeddings.…`, `bert.encoder.layer.N.…`,
//! `bert.pooler.…`, `classifier.…`): what freeze patterns address and what export writes.
//! Checkpoints may use the bare naming of `BertModel` (sentence-transformers, MiniLM) and the
//! legacy `gamma`/`beta` LayerNorm names; [`canonical_name`] maps both.

pub use crate::arch::Role;
use crate::arch::{EncoderConfig, Expected};
use crate::backbone::HeadNames;
use crate::config::BertConfig;
use crate::encoder::LayerNames;

/// The modules of `bert.encoder.layer.N`.
pub const LAYER: LayerNames = LayerNames {
    query: "attention.self.query",
    key: "attention.self.key",
    value: "attention.self.value",
    attention_output: "attention.output.dense",
    attention_norm: "attention.output.LayerNorm",
    ffn_in: "intermediate.dense",
    ffn_out: "output.dense",
    output_norm: "output.LayerNorm",
};

/// BERT's head: the pooler, then `classifier`.
pub const HEAD: HeadNames = HeadNames {
    hidden: "bert.pooler.dense",
    out: "classifier",
};

/// The model's tensors, in module order, with shapes and roles.
pub fn expected_tensors(c: &BertConfig) -> Vec<Expected> {
    c.expected_tensors()
}

/// How a family of BERT's kind names its tensors: the backbone under `{prefix}.` in the
/// prefixed naming (the task model's state dict) and without it in the bare one (the base
/// model's), the head's modules at the top level, the layers under `{prefix}.{layers}.N`.
#[derive(Debug, Clone, Copy)]
pub struct Naming {
    /// The backbone's prefix, without the dot (`bert`).
    pub prefix: &'static str,
    /// The backbone's first path components (`embeddings`, `encoder`, `pooler`).
    pub roots: &'static [&'static str],
    /// The head's modules (`classifier`).
    pub head: &'static [&'static str],
    /// The path of the numbered layers inside the backbone (`encoder.layer`).
    pub layers: &'static str,
    /// The layers LoRA adapts when the user names none: PEFT's default for the architecture
    /// (BERT's and RoBERTa's `query`, `value`; DistilBERT's `q_lin`, `v_lin`).
    pub lora_targets: &'static [&'static str],
}

/// BERT's naming.
pub const BERT: Naming = Naming {
    prefix: "bert",
    roots: &["embeddings", "encoder", "pooler"],
    head: &["classifier"],
    layers: "encoder.layer",
    lora_targets: &["query", "value"],
};

impl Naming {
    /// The model name a checkpoint tensor maps to, or `None` for tensors the classifier does
    /// not use (pretraining heads, `position_ids` buffers, other task heads). Legacy
    /// `gamma`/`beta` LayerNorm names map to `weight`/`bias`.
    pub fn canonical(&self, name: &str) -> Option<String> {
        let first = name.split('.').next().unwrap_or_default();
        let body = if let Some(rest) = name
            .strip_prefix(self.prefix)
            .and_then(|r| r.strip_prefix('.'))
        {
            rest
        } else if self.head.contains(&first) {
            return Some(name.to_string());
        } else if self.roots.contains(&first) {
            name
        } else {
            return None;
        };
        if body.ends_with("position_ids") {
            return None;
        }
        let mut n = format!("{}.{body}", self.prefix);
        if n.contains("LayerNorm") || n.contains("layer_norm") {
            if let Some(stem) = n.strip_suffix(".gamma") {
                n = format!("{stem}.weight");
            } else if let Some(stem) = n.strip_suffix(".beta") {
                n = format!("{stem}.bias");
            }
        }
        Some(n)
    }

    /// How deep a parameter sits, for layer-wise LR decay and gradual unfreezing:
    /// `{prefix}.embeddings.*` 0, `{prefix}.{layers}.N.*` N + 1, anything else (pooler, head)
    /// `None`.
    pub fn depth(&self, name: &str) -> Option<usize> {
        let body = name.strip_prefix(self.prefix)?.strip_prefix('.')?;
        if body.starts_with("embeddings.") {
            return Some(0);
        }
        let rest = body.strip_prefix(self.layers)?.strip_prefix('.')?;
        rest.split('.').next()?.parse::<usize>().ok().map(|n| n + 1)
    }

    /// A parameter's name in the bare naming (`encoder.…` for `bert.encoder.…`); the head has
    /// none.
    pub fn bare(&self, name: &str) -> Option<String> {
        name.strip_prefix(self.prefix)?
            .strip_prefix('.')
            .map(str::to_string)
    }

    /// The head's globs (`classifier.*`).
    pub fn head_patterns(&self) -> Vec<String> {
        self.head.iter().map(|h| format!("{h}.*")).collect()
    }

    /// The head and every parameter's depth, with the bare naming as an alias and the
    /// default LoRA targets.
    pub fn layout(self) -> finetune_core::ParamLayout {
        finetune_core::ParamLayout::new(self.head_patterns(), move |n: &str| self.depth(n))
            .with_alias(move |n: &str| self.bare(n))
            .with_lora_targets(self.lora_targets.iter().copied())
    }
}

/// The model name a checkpoint tensor maps to (see [`Naming::canonical`]).
pub fn canonical_name(name: &str) -> Option<String> {
    BERT.canonical(name)
}

/// How deep a parameter sits: `bert.embeddings.*` 0, `bert.encoder.layer.N.*` N + 1, the
/// pooler and the head (`classifier.*`; the pooler belongs to the backbone, as in
/// transformers, where `BertModel` holds it) `None`.
pub fn layer_depth(name: &str) -> Option<usize> {
    BERT.depth(name)
}

/// The head and every parameter's depth (see [`Naming::layout`]).
pub fn layout() -> finetune_core::ParamLayout {
    BERT.layout()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_namings_and_legacy_layer_norm_map_to_the_model_names() {
        let m = |s: &str| canonical_name(s);
        assert_eq!(
            m("encoder.layer.3.attention.self.query.weight").as_deref(),
            Some("bert.encoder.layer.3.attention.self.query.weight")
        );
        assert_eq!(
            m("bert.encoder.layer.3.attention.self.query.weight").as_deref(),
            Some("bert.encoder.layer.3.attention.self.query.weight")
        );
        assert_eq!(
            m("bert.embeddings.LayerNorm.gamma").as_deref(),
            Some("bert.embeddings.LayerNorm.weight")
        );
        assert_eq!(
            m("encoder.layer.0.output.LayerNorm.beta").as_deref(),
            Some("bert.encoder.layer.0.output.LayerNorm.bias")
        );
        assert_eq!(m("classifier.bias").as_deref(), Some("classifier.bias"));
        assert_eq!(m("cls.predictions.bias"), None);
        assert_eq!(m("bert.embeddings.position_ids"), None);
        assert_eq!(m("embeddings.position_ids"), None);
        assert_eq!(m("qa_outputs.weight"), None);
    }

    #[test]
    fn expected_tensor_count_and_shapes() {
        let c = BertConfig {
            num_hidden_layers: 2,
            hidden_size: 8,
            intermediate_size: 16,
            num_attention_heads: 2,
            ..BertConfig::default()
        };
        let t = expected_tensors(&c);
        assert_eq!(t.len(), 5 + 2 * 16 + 2 + 2);
        let find = |n: &str| t.iter().find(|x| x.0 == n).unwrap().1.clone();
        assert_eq!(
            find("bert.encoder.layer.1.intermediate.dense.weight"),
            vec![16, 8]
        );
        assert_eq!(
            find("bert.encoder.layer.1.output.dense.weight"),
            vec![8, 16]
        );
        assert_eq!(
            find("bert.encoder.layer.0.attention.output.LayerNorm.weight"),
            vec![8]
        );
        assert_eq!(find("classifier.weight"), vec![2, 8]);
    }
}
