//! Tensor names: those of transformers' `RobertaForSequenceClassification` state dict
//! (`roberta.embeddings.…`, `roberta.encoder.layer.N.…` as BERT's, no pooler,
//! `classifier.dense.…`, `classifier.out_proj.…`); the bare naming of `RobertaModel`
//! checkpoints (`embeddings.…`, `encoder.…`) maps onto them. XLM-RoBERTa names them alike.

use crate::config::RobertaConfig;
use finetune_bert::naming::Naming;
use finetune_bert::{EncoderConfig, Expected, HeadNames};

/// RoBERTa's naming: BERT's layers under `roberta.`, the head `classifier.{dense,out_proj}`.
pub const ROBERTA: Naming = Naming {
    prefix: "roberta",
    roots: &["embeddings", "encoder", "pooler"],
    head: &["classifier"],
    layers: "encoder.layer",
    lora_targets: &["query", "value"],
};

/// The head: `classifier.dense` (initialised when absent), then `classifier.out_proj` (also
/// when its shape differs: another number of labels). A base model's pooler is unused.
pub const HEAD: HeadNames = HeadNames {
    hidden: "classifier.dense",
    out: "classifier.out_proj",
};

/// The model's tensors, in module order, with shapes and roles.
pub fn expected_tensors(c: &RobertaConfig) -> Vec<Expected> {
    c.expected_tensors()
}

/// The model name a checkpoint tensor maps to (either naming), or `None` for tensors the
/// classifier does not use (`lm_head.*`, `position_ids`, other task heads).
pub fn canonical_name(name: &str) -> Option<String> {
    ROBERTA.canonical(name)
}

/// The head (`classifier.*`), every parameter's depth (`roberta.embeddings.*` 0,
/// `roberta.encoder.layer.N.*` N + 1) and the bare naming as an alias.
pub fn layout() -> finetune_core::ParamLayout {
    ROBERTA.layout()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_namings_map_to_the_model_names_and_depths_follow_the_layers() {
        let q = "roberta.encoder.layer.1.attention.self.query.weight";
        assert_eq!(
            canonical_name("encoder.layer.1.attention.self.query.weight").as_deref(),
            Some(q)
        );
        assert_eq!(canonical_name(q).as_deref(), Some(q));
        assert_eq!(
            canonical_name("classifier.out_proj.bias").as_deref(),
            Some("classifier.out_proj.bias")
        );
        assert_eq!(canonical_name("lm_head.dense.weight"), None);
        assert_eq!(canonical_name("roberta.embeddings.position_ids"), None);
        let layout = layout();
        assert_eq!((layout.depth)(q), Some(2));
        assert_eq!((layout.depth)("classifier.dense.weight"), None);
        let alias = layout.alias.expect("the bare naming");
        assert_eq!(
            alias(q).as_deref(),
            Some("encoder.layer.1.attention.self.query.weight")
        );
        assert_eq!(layout.head, ["classifier.*"]);
    }
}
