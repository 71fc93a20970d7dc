//! Tensor names. The model's own are those of transformers' `ViTForImageClassification` state
//! dict (`vit.embeddings.…`, `vit.encoder.layer.N.…`, `vit.layernorm.…`, `classifier.…`): what
//! freeze patterns address and what export writes. Checkpoints may also use the bare naming
//! of `ViTModel` (no `vit.` prefix, no head) or timm's (`patch_embed.proj`, `blocks.N.attn.qkv`
//! holding query, key and value stacked, `norm`, `head`); [`source`] finds a model tensor in
//! either, and timm's names are the layout's alias, so freeze patterns may use them too.

use crate::config::ViTConfig;
use std::fmt;

/// The checkpoint's naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// transformers' `ViTForImageClassification` (`vit.…`, `classifier.…`).
    Transformers,
    /// transformers' `ViTModel` (`embeddings.…`, `encoder.…`, `layernorm.…`; no head).
    Bare,
    /// timm's `VisionTransformer` (`patch_embed.…`, `blocks.N.…`, `norm.…`, `head.…`).
    Timm,
}

impl fmt::Display for Naming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Transformers => "transformers",
            Self::Bare => "transformers (ViTModel)",
            Self::Timm => "timm",
        })
    }
}

impl Naming {
    /// The naming of a checkpoint holding tensors `names`.
    pub fn of<'a>(mut names: impl Iterator<Item = &'a str>) -> Self {
        names
            .find_map(|n| {
                let first = n.split('.').next().unwrap_or_default();
                match first {
                    "vit" | "classifier" => Some(Self::Transformers),
                    "embeddings" | "encoder" | "layernorm" => Some(Self::Bare),
                    "blocks" | "patch_embed" | "pos_embed" | "cls_token" => Some(Self::Timm),
                    _ => None,
                }
            })
            .unwrap_or(Self::Transformers)
    }
}

/// Which part of the model a tensor is: the backbone must be in a checkpoint, the head is
/// initialised where it lacks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Embeddings, encoder and final LayerNorm.
    Backbone,
    /// `classifier.*`.
    Head,
}

/// The modules of `vit.encoder.layer.N`, as transformers names them.
pub const LAYER_MODULES: [&str; 8] = [
    "attention.attention.query",
    "attention.attention.key",
    "attention.attention.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
    "layernorm_before",
    "layernorm_after",
];

/// The model's tensors in module order, with shapes and roles.
pub fn expected_tensors(c: &ViTConfig) -> Vec<(String, Vec<usize>, Role)> {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let p = c.patch_size;
    let mut out = vec![
        ("vit.embeddings.cls_token".to_string(), vec![1, 1, h]),
        (
            "vit.embeddings.position_embeddings".to_string(),
            vec![1, c.tokens(), h],
        ),
        (
            "vit.embeddings.patch_embeddings.projection.weight".to_string(),
            vec![h, c.num_channels, p, p],
        ),
        (
            "vit.embeddings.patch_embeddings.projection.bias".to_string(),
            vec![h],
        ),
    ];
    for l in 0..c.num_hidden_layers {
        for (m, w) in LAYER_MODULES.iter().zip([
            vec![h, h],
            vec![h, h],
            vec![h, h],
            vec![h, h],
            vec![i, h],
            vec![h, i],
            vec![h],
            vec![h],
        ]) {
            let prefix = format!("vit.encoder.layer.{l}.{m}");
            let qkv = m.starts_with("attention.attention.");
            out.push((format!("{prefix}.weight"), w.clone()));
            if !qkv || c.qkv_bias {
                out.push((format!("{prefix}.bias"), vec![w[0]]));
            }
        }
    }
    out.push(("vit.layernorm.weight".into(), vec![h]));
    out.push(("vit.layernorm.bias".into(), vec![h]));
    let mut out: Vec<_> = out
        .into_iter()
        .map(|(n, s)| (n, s, Role::Backbone))
        .collect();
    let n = c.classifier.num_labels();
    out.push(("classifier.weight".into(), vec![n, h], Role::Head));
    out.push(("classifier.bias".into(), vec![n], Role::Head));
    out
}

/// Where a checkpoint of `naming` keeps model tensor `name`: the checkpoint's name and, for
/// timm's stacked `qkv`, which third (0 query, 1 key, 2 value) of its rows. `None`: that
/// naming has no such tensor (the bare naming's head).
pub fn source(name: &str, naming: Naming) -> Option<(String, Option<usize>)> {
    match naming {
        Naming::Transformers => Some((name.to_string(), None)),
        Naming::Bare => name.strip_prefix("vit.").map(|n| (n.to_string(), None)),
        Naming::Timm => timm_source(name),
    }
}

/// The timm name of a model tensor (query, key and value share `blocks.N.attn.qkv.*`); the
/// layout's alias.
pub fn timm_name(name: &str) -> Option<String> {
    timm_source(name).map(|(n, _)| n)
}

fn timm_source(name: &str) -> Option<(String, Option<usize>)> {
    let whole = |n: &str| Some((n.to_string(), None));
    match name {
        "vit.embeddings.cls_token" => return whole("cls_token"),
        "vit.embeddings.position_embeddings" => return whole("pos_embed"),
        "vit.layernorm.weight" => return whole("norm.weight"),
        "vit.layernorm.bias" => return whole("norm.bias"),
        "classifier.weight" => return whole("head.weight"),
        "classifier.bias" => return whole("head.bias"),
        _ => {}
    }
    if let Some(leaf) = name.strip_prefix("vit.embeddings.patch_embeddings.projection.") {
        return whole(&format!("patch_embed.proj.{leaf}"));
    }
    let rest = name.strip_prefix("vit.encoder.layer.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (module, leaf) = rest.rsplit_once('.')?;
    let (timm, part) = match module {
        "attention.attention.query" => ("attn.qkv", Some(0)),
        "attention.attention.key" => ("attn.qkv", Some(1)),
        "attention.attention.value" => ("attn.qkv", Some(2)),
        "attention.output.dense" => ("attn.proj", None),
        "intermediate.dense" => ("mlp.fc1", None),
        "output.dense" => ("mlp.fc2", None),
        "layernorm_before" => ("norm1", None),
        "layernorm_after" => ("norm2", None),
        _ => return None,
    };
    Some((format!("blocks.{layer}.{timm}.{leaf}"), part))
}

/// The model name of a checkpoint tensor in any of the three namings (and transformers 5's
/// module paths, which PEFT adapters use), or `None` where there
/// is no single one (timm's stacked `qkv`, which holds three) or the model does not use it
/// (`ViTModel`'s pooler).
pub fn canonical_name(name: &str) -> Option<String> {
    let first = name.split('.').next().unwrap_or_default();
    match first {
        "vit" if name.starts_with("vit.layers.") => from_module_tree(name),
        "vit" => (!name.starts_with("vit.pooler.")).then(|| name.to_string()),
        "classifier" => Some(name.to_string()),
        "embeddings" | "encoder" | "layernorm" => Some(format!("vit.{name}")),
        _ => {
            let fixed = [
                ("cls_token", "vit.embeddings.cls_token"),
                ("pos_embed", "vit.embeddings.position_embeddings"),
            ];
            if let Some((_, ours)) = fixed.iter().find(|(t, _)| *t == name) {
                return Some(ours.to_string());
            }
            let (module, leaf) = name.rsplit_once('.')?;
            let ours = match module {
                "norm" => "vit.layernorm".to_string(),
                "head" => "classifier".to_string(),
                "patch_embed.proj" => "vit.embeddings.patch_embeddings.projection".to_string(),
                _ => {
                    let rest = module.strip_prefix("blocks.")?;
                    let (layer, m) = rest.split_once('.')?;
                    let m = match m {
                        "attn.proj" => "attention.output.dense",
                        "mlp.fc1" => "intermediate.dense",
                        "mlp.fc2" => "output.dense",
                        "norm1" => "layernorm_before",
                        "norm2" => "layernorm_after",
                        _ => return None,
                    };
                    format!("vit.encoder.layer.{layer}.{m}")
                }
            };
            Some(format!("{ours}.{leaf}"))
        }
    }
}

/// A layer module's name in transformers 5's ViT module tree, where it differs from the state
/// dict's (`vit.encoder.layer.N.attention.attention.query` is `vit.layers.N.attention.q_proj`
/// there): the name PEFT gives its adapter tensors and `target_modules`. transformers still
/// saves and loads checkpoints under the state dict's names.
const MODULE_TREE: [(&str, &str); 8] = [
    ("attention.attention.query", "attention.q_proj"),
    ("attention.attention.key", "attention.k_proj"),
    ("attention.attention.value", "attention.v_proj"),
    ("attention.output.dense", "attention.o_proj"),
    ("intermediate.dense", "mlp.fc1"),
    ("output.dense", "mlp.fc2"),
    ("layernorm_before", "layernorm_before"),
    ("layernorm_after", "layernorm_after"),
];

/// Module `name`'s path in transformers 5's module tree (`vit.layers.N.attention.q_proj` for
/// `vit.encoder.layer.N.attention.attention.query`), when it has another one.
pub fn peft_module(name: &str) -> Option<String> {
    let rest = name.strip_prefix("vit.encoder.layer.")?;
    let (layer, module) = rest.split_once('.')?;
    let (_, tree) = MODULE_TREE.iter().find(|(m, _)| *m == module)?;
    Some(format!("vit.layers.{layer}.{tree}"))
}

/// A tensor name under transformers 5's module tree (`vit.layers.N.attention.q_proj.weight`)
/// as the state dict names it.
fn from_module_tree(name: &str) -> Option<String> {
    let rest = name.strip_prefix("vit.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (module, leaf) = rest.rsplit_once('.')?;
    let (saved, _) = MODULE_TREE.iter().find(|(_, t)| *t == module)?;
    Some(format!("vit.encoder.layer.{layer}.{saved}.{leaf}"))
}

/// How deep a parameter sits: the embeddings 0, `vit.encoder.layer.N.*` N + 1, the final
/// LayerNorm and the head `None`.
pub fn depth(name: &str) -> Option<usize> {
    if name.starts_with("vit.embeddings.") {
        return Some(0);
    }
    let rest = name.strip_prefix("vit.encoder.layer.")?;
    rest.split('.').next()?.parse::<usize>().ok().map(|n| n + 1)
}

/// The head (`classifier.*`), every parameter's depth, timm's names as the alias, and LoRA's
/// default targets (`query`, `value`, as PEFT's for ViT).
pub fn layout() -> finetune_core::ParamLayout {
    finetune_core::ParamLayout::new(["classifier.*"], depth)
        .with_alias(timm_name)
        .with_lora_targets(["query", "value"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_tensor_has_a_timm_source_and_a_depth() {
        let c: ViTConfig = serde_json::from_str(
            r#"{"hidden_size": 12, "num_hidden_layers": 2, "num_attention_heads": 3,
                "intermediate_size": 20, "image_size": 8, "patch_size": 4}"#,
        )
        .unwrap();
        let names = expected_tensors(&c);
        assert_eq!(names.len(), 4 + 2 * 16 + 2 + 2);
        for (n, _, role) in &names {
            assert!(timm_name(n).is_some(), "{n}");
            assert_eq!(
                depth(n).is_none(),
                n.starts_with("vit.layernorm") || *role == Role::Head,
                "{n}"
            );
        }
        assert_eq!(
            source(
                "vit.encoder.layer.1.attention.attention.value.bias",
                Naming::Timm
            ),
            Some(("blocks.1.attn.qkv.bias".into(), Some(2)))
        );
        assert_eq!(source("classifier.bias", Naming::Bare), None);
        for (n, _, role) in &names {
            let (timm, part) = source(n, Naming::Timm).unwrap();
            let back = canonical_name(&timm);
            assert_eq!(back.as_deref(), part.is_none().then_some(n.as_str()), "{n}");
            let bare = source(n, Naming::Bare).map(|(b, _)| b);
            assert_eq!(
                bare.and_then(|b| canonical_name(&b)).as_deref(),
                (*role == Role::Backbone).then_some(n.as_str())
            );
        }
        assert_eq!(depth("vit.encoder.layer.1.output.dense.weight"), Some(2));
        let q = "vit.encoder.layer.1.attention.attention.query";
        assert_eq!(
            peft_module(q).as_deref(),
            Some("vit.layers.1.attention.q_proj")
        );
        let back = canonical_name("vit.layers.1.attention.q_proj.weight");
        assert_eq!(back, Some(format!("{q}.weight")));
        assert_eq!(peft_module("classifier"), None);
        assert_eq!(
            Naming::of(["blocks.0.attn.qkv.weight"].into_iter()),
            Naming::Timm
        );
        assert_eq!(
            Naming::of(["encoder.layer.0.output.dense.bias"].into_iter()),
            Naming::Bare
        );
    }
}
