//! Tensor names. The model's own names are those of transformers'
//! `BertForSequenceClassification` state dict (`bert.embeddings.…`, `bert.encoder.layer.N.…`,
//! `bert.pooler.…`, `classifier.…`): what freeze patterns address and what export writes.
//! Checkpoints may use the bare naming of `BertModel` (sentence-transformers, MiniLM) and the
//! legacy `gamma`/`beta` LayerNorm names; [`canonical_name`] maps both.

use crate::config::BertConfig;

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

/// The model's tensors, in module order, with shapes and roles.
pub fn expected_tensors(c: &BertConfig) -> Vec<(String, Vec<usize>, Role)> {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let mut out = Vec::new();
    let mut push = |n: String, s: Vec<usize>, r| out.push((n, s, r));
    let e = "bert.embeddings";
    push(
        format!("{e}.word_embeddings.weight"),
        vec![c.vocab_size, h],
        Role::Encoder,
    );
    push(
        format!("{e}.position_embeddings.weight"),
        vec![c.max_position_embeddings, h],
        Role::Encoder,
    );
    push(
        format!("{e}.token_type_embeddings.weight"),
        vec![c.type_vocab_size, h],
        Role::Encoder,
    );
    push(format!("{e}.LayerNorm.weight"), vec![h], Role::Encoder);
    push(format!("{e}.LayerNorm.bias"), vec![h], Role::Encoder);
    for l in 0..c.num_hidden_layers {
        let p = format!("bert.encoder.layer.{l}");
        let mut dense = |name: String, out_d: usize, in_d: usize| {
            push(format!("{name}.weight"), vec![out_d, in_d], Role::Encoder);
            push(format!("{name}.bias"), vec![out_d], Role::Encoder);
        };
        for qkv in ["query", "key", "value"] {
            dense(format!("{p}.attention.self.{qkv}"), h, h);
        }
        dense(format!("{p}.attention.output.dense"), h, h);
        dense(format!("{p}.attention.output.LayerNorm"), h, usize::MAX);
        dense(format!("{p}.intermediate.dense"), i, h);
        dense(format!("{p}.output.dense"), h, i);
        dense(format!("{p}.output.LayerNorm"), h, usize::MAX);
    }
    // LayerNorm weights are 1-D: fix the placeholder shapes set above.
    for (n, s, _) in out.iter_mut() {
        if n.contains("LayerNorm") {
            *s = vec![h];
        }
    }
    out.push(("bert.pooler.dense.weight".into(), vec![h, h], Role::Pooler));
    out.push(("bert.pooler.dense.bias".into(), vec![h], Role::Pooler));
    out.push((
        "classifier.weight".into(),
        vec![c.num_labels(), h],
        Role::Head,
    ));
    out.push(("classifier.bias".into(), vec![c.num_labels()], Role::Head));
    out
}

/// The model name a checkpoint tensor maps to, or `None` for tensors the classifier does not use
/// (`cls.*` pretraining heads, `position_ids` buffers, other task heads).
pub fn canonical_name(name: &str) -> Option<String> {
    let body = if let Some(rest) = name.strip_prefix("bert.") {
        rest
    } else if name.starts_with("classifier.") {
        return Some(name.to_string());
    } else if ["embeddings.", "encoder.", "pooler."]
        .iter()
        .any(|p| name.starts_with(p))
    {
        name
    } else {
        return None;
    };
    if body.ends_with("position_ids") {
        return None;
    }
    let mut n = format!("bert.{body}");
    if n.contains("LayerNorm") {
        if let Some(stem) = n.strip_suffix(".gamma") {
            n = format!("{stem}.weight");
        } else if let Some(stem) = n.strip_suffix(".beta") {
            n = format!("{stem}.bias");
        }
    }
    Some(n)
}

/// The head's parameters: `classifier.*` (the pooler belongs to the backbone, as in
/// transformers, where `BertModel` holds it).
pub const HEAD: [&str; 1] = ["classifier.*"];

/// How deep a parameter sits, for layer-wise LR decay and gradual unfreezing:
/// `bert.embeddings.*` 0, `bert.encoder.layer.N.*` N + 1, the pooler and the head `None`.
pub fn layer_depth(name: &str) -> Option<usize> {
    if name.starts_with("bert.embeddings.") {
        return Some(0);
    }
    let rest = name.strip_prefix("bert.encoder.layer.")?;
    rest.split('.').next()?.parse::<usize>().ok().map(|n| n + 1)
}

/// The head and every parameter's depth ([`HEAD`], [`layer_depth`]).
pub fn layout() -> finetune_core::ParamLayout {
    finetune_core::ParamLayout::new(HEAD, layer_depth)
        .with_alias(bare_name)
        .with_lora_targets(LORA_TARGETS)
}

/// The layers LoRA adapts by default: the attention's query and value projections, PEFT's
/// default for BERT.
pub const LORA_TARGETS: [&str; 2] = ["query", "value"];

/// A parameter's name in the bare naming of sentence-transformers checkpoints (`encoder.…`
/// for `bert.encoder.…`); the head has none.
pub fn bare_name(name: &str) -> Option<String> {
    name.strip_prefix("bert.").map(str::to_string)
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
