//! Tensor names: those of transformers' `DistilBertForSequenceClassification` state dict
//! (`distilbert.embeddings.…`, `distilbert.transformer.layer.N.…`, `pre_classifier.…`,
//! `classifier.…`); the bare naming of `DistilBertModel` checkpoints (`embeddings.…`,
//! `transformer.…`) maps onto them.

use crate::config::DistilBertConfig;
use finetune_bert::encoder::LayerNames;
use finetune_bert::naming::Naming;
use finetune_bert::{EncoderConfig, Expected, HeadNames};

/// DistilBERT's naming: the backbone under `distilbert.`, the head `pre_classifier` +
/// `classifier`, layers `distilbert.transformer.layer.N`.
pub const DISTILBERT: Naming = Naming {
    prefix: "distilbert",
    roots: &["embeddings", "transformer"],
    head: &["pre_classifier", "classifier"],
    layers: "transformer.layer",
    lora_targets: &["q_lin", "v_lin"],
};

/// The modules of `distilbert.transformer.layer.N`.
pub const LAYER: LayerNames = LayerNames {
    query: "attention.q_lin",
    key: "attention.k_lin",
    value: "attention.v_lin",
    attention_output: "attention.out_lin",
    attention_norm: "sa_layer_norm",
    ffn_in: "ffn.lin1",
    ffn_out: "ffn.lin2",
    output_norm: "output_layer_norm",
};

/// The head: `pre_classifier` (initialised when absent), then `classifier` (also when its
/// shape differs: another number of labels).
pub const HEAD: HeadNames = HeadNames {
    hidden: "pre_classifier",
    out: "classifier",
};

/// The model's tensors, in module order, with shapes and roles: embeddings and layers must
/// be in the checkpoint, the head is initialised where it lacks it.
pub fn expected_tensors(c: &DistilBertConfig) -> Vec<Expected> {
    c.expected_tensors()
}

/// The model name a checkpoint tensor maps to (either naming), or `None` for tensors the
/// classifier does not use (`vocab_*` pretraining heads, other task heads).
pub fn canonical_name(name: &str) -> Option<String> {
    DISTILBERT.canonical(name)
}

/// The head (`pre_classifier.*`, `classifier.*`), every parameter's depth
/// (`distilbert.embeddings.*` 0, `distilbert.transformer.layer.N.*` N + 1) and the bare
/// naming as an alias.
pub fn layout() -> finetune_core::ParamLayout {
    DISTILBERT.layout()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_namings_map_to_the_model_names_and_depths_follow_the_layers() {
        let m = |s: &str| canonical_name(s);
        let q = "distilbert.transformer.layer.2.attention.q_lin.weight";
        assert_eq!(
            m("transformer.layer.2.attention.q_lin.weight").as_deref(),
            Some(q)
        );
        assert_eq!(m(q).as_deref(), Some(q));
        assert_eq!(
            m("pre_classifier.bias").as_deref(),
            Some("pre_classifier.bias")
        );
        assert_eq!(m("vocab_projector.weight"), None);
        assert_eq!(m("qa_outputs.weight"), None);
        let layout = layout();
        assert_eq!((layout.depth)(q), Some(3));
        assert_eq!(
            (layout.depth)("distilbert.embeddings.LayerNorm.bias"),
            Some(0)
        );
        assert_eq!((layout.depth)("pre_classifier.weight"), None);
        let alias = layout.alias.expect("the bare naming");
        assert_eq!(
            alias(q).as_deref(),
            Some("transformer.layer.2.attention.q_lin.weight")
        );
        assert_eq!(alias("classifier.weight"), None);
        assert_eq!(layout.head, ["pre_classifier.*", "classifier.*"]);
    }

    #[test]
    fn expected_tensors_have_no_token_types_and_the_head_last() {
        let c: DistilBertConfig = serde_json::from_str(
            r#"{"dim": 12, "n_layers": 2, "n_heads": 3, "hidden_dim": 20, "vocab_size": 31}"#,
        )
        .unwrap();
        let t = expected_tensors(&c);
        assert_eq!(t.len(), 4 + 2 * 16 + 4);
        assert!(t.iter().all(|(n, _, _)| !n.contains("token_type")));
        let find = |n: &str| t.iter().find(|x| x.0 == n).unwrap().1.clone();
        assert_eq!(
            find("distilbert.transformer.layer.1.ffn.lin1.weight"),
            [20, 12]
        );
        assert_eq!(
            find("distilbert.transformer.layer.1.sa_layer_norm.weight"),
            [12]
        );
        assert_eq!(find("classifier.weight"), [2, 12]);
    }
}
