//! timm's ViTs: the architecture names (`vit_base_patch16_224`, …) and their shapes, and a timm
//! `config.json` (`architecture`, `num_classes`, `label_names`, `model_args`,
//! `pretrained_cfg`) read into a [`ViTConfig`] and the checkpoint's [`Preprocessing`]. Only
//! the plain ViT (a class token, token pooling, no register tokens or layer scale) is
//! accepted; any other `model_args` key is refused by name.

use crate::config::ViTConfig;
use finetune_core::preprocess::Preprocessing;
use finetune_core::{Error, Result};
use serde_json::{Map, Value};

/// A timm ViT architecture: `(name, embed_dim, depth, num_heads, patch_size, img_size)`.
type Shape = (&'static str, usize, usize, usize, usize, usize);

const SHAPES: [Shape; 15] = [
    ("vit_tiny_patch16_224", 192, 12, 3, 16, 224),
    ("vit_tiny_patch16_384", 192, 12, 3, 16, 384),
    ("vit_small_patch16_224", 384, 12, 6, 16, 224),
    ("vit_small_patch16_384", 384, 12, 6, 16, 384),
    ("vit_small_patch32_224", 384, 12, 6, 32, 224),
    ("vit_small_patch32_384", 384, 12, 6, 32, 384),
    ("vit_base_patch8_224", 768, 12, 12, 8, 224),
    ("vit_base_patch16_224", 768, 12, 12, 16, 224),
    ("vit_base_patch16_384", 768, 12, 12, 16, 384),
    ("vit_base_patch32_224", 768, 12, 12, 32, 224),
    ("vit_base_patch32_384", 768, 12, 12, 32, 384),
    ("vit_large_patch16_224", 1024, 24, 16, 16, 224),
    ("vit_large_patch16_384", 1024, 24, 16, 16, 384),
    ("vit_large_patch32_384", 1024, 24, 16, 32, 384),
    ("vit_huge_patch14_224", 1280, 32, 16, 14, 224),
];

/// Every timm architecture name this crate builds (a config's `architecture`, or a fresh
/// network's name).
pub const ARCHITECTURE_NAMES: [&str; 15] = {
    let mut names = [""; 15];
    let mut i = 0;
    while i < SHAPES.len() {
        names[i] = SHAPES[i].0;
        i += 1;
    }
    names
};

/// The `model_args` keys this crate understands (others change the network and are refused).
const MODEL_ARGS: [&str; 11] = [
    "img_size",
    "patch_size",
    "embed_dim",
    "depth",
    "num_heads",
    "mlp_ratio",
    "qkv_bias",
    "in_chans",
    "num_classes",
    "global_pool",
    "class_token",
];

/// The config of timm architecture `name` (a `.tag` suffix is ignored) with `num_classes`
/// outputs, in transformers' keys: timm's LayerNorm epsilon (1e-6), 4× MLP, no dropout.
pub fn config_of(name: &str, num_classes: usize) -> Result<ViTConfig> {
    let base = name.split('.').next().unwrap_or_default();
    let &(_, dim, depth, heads, patch, img) =
        SHAPES.iter().find(|s| s.0 == base).ok_or_else(|| {
            Error::config(format!(
                "unknown ViT architecture `{name}` (known: {})",
                ARCHITECTURE_NAMES.join(", ")
            ))
        })?;
    let mut c = ViTConfig {
        hidden_size: dim,
        num_hidden_layers: depth,
        num_attention_heads: heads,
        intermediate_size: 4 * dim,
        layer_norm_eps: 1e-6,
        image_size: img,
        patch_size: patch,
        ..ViTConfig::default()
    };
    c.classifier.num_labels = Some(num_classes);
    Ok(c)
}

fn usize_arg(args: &Map<String, Value>, k: &str) -> Result<Option<usize>> {
    args.get(k)
        .map(|v| {
            v.as_u64().map(|n| n as usize).ok_or_else(|| {
                Error::config(format!("model_args.{k} must be a whole number, got {v}"))
            })
        })
        .transpose()
}

/// A square `img_size` (a number or `[h, w]` with `h == w`).
fn image_size(v: &Value) -> Result<usize> {
    let sides: Vec<u64> = match v {
        Value::Array(a) => a.iter().filter_map(Value::as_u64).collect(),
        other => other.as_u64().into_iter().collect(),
    };
    match sides.as_slice() {
        [s] => Ok(*s as usize),
        [h, w] if h == w => Ok(*h as usize),
        _ => Err(Error::config(format!(
            "model_args.img_size must be one side or a square [h, w], got {v}"
        ))),
    }
}

/// Applies `model_args` over the architecture's shape, refusing keys that change the network
/// in ways this crate does not build.
fn apply_model_args(c: &mut ViTConfig, args: &Map<String, Value>) -> Result<()> {
    if let Some(k) = args.keys().find(|k| !MODEL_ARGS.contains(&k.as_str())) {
        return Err(Error::config(format!(
            "model_args.{k} is not supported (a plain ViT takes {})",
            MODEL_ARGS.join(", ")
        )));
    }
    match args.get("global_pool").and_then(Value::as_str) {
        None | Some("token") => {}
        Some(p) => {
            return Err(Error::config(format!(
                "model_args.global_pool `{p}` is not supported (only `token`)"
            )))
        }
    }
    if args.get("class_token").and_then(Value::as_bool) == Some(false) {
        return Err(Error::config(
            "model_args.class_token false is not supported",
        ));
    }
    if let Some(v) = args.get("img_size") {
        c.image_size = image_size(v)?;
    }
    for (k, slot) in [
        ("patch_size", &mut c.patch_size),
        ("embed_dim", &mut c.hidden_size),
        ("depth", &mut c.num_hidden_layers),
        ("num_heads", &mut c.num_attention_heads),
        ("in_chans", &mut c.num_channels),
    ] {
        if let Some(n) = usize_arg(args, k)? {
            *slot = n;
        }
    }
    let ratio = match args.get("mlp_ratio") {
        Some(v) => v.as_f64().ok_or_else(|| {
            Error::config(format!("model_args.mlp_ratio must be a number, got {v}"))
        })?,
        None => 4.0,
    };
    // timm's Mlp: int(embed_dim * mlp_ratio) hidden features.
    c.intermediate_size = (c.hidden_size as f64 * ratio) as usize;
    if let Some(b) = args.get("qkv_bias").and_then(Value::as_bool) {
        c.qkv_bias = b;
    }
    Ok(())
}

/// A timm `config.json`'s object as a [`ViTConfig`] and the checkpoint's preprocessing (from
/// `pretrained_cfg`). Labels come from `label_names` when given, else `num_classes`.
pub fn read(json: &Map<String, Value>) -> Result<(ViTConfig, Preprocessing)> {
    let arch = json
        .get("architecture")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::config("a timm config needs `architecture`"))?;
    let num_classes = match json.get("num_classes") {
        Some(v) => v
            .as_u64()
            .ok_or_else(|| Error::config(format!("num_classes must be a whole number, got {v}")))?
            as usize,
        None => 1000,
    };
    let mut c = config_of(arch, num_classes)?;
    if let Some(args) = json.get("model_args") {
        let args = args
            .as_object()
            .ok_or_else(|| Error::config("model_args must be an object"))?;
        apply_model_args(&mut c, args)?;
    }
    if let Some(names) = json.get("label_names").and_then(Value::as_array) {
        let names: Vec<String> = names
            .iter()
            .map(|n| n.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| Error::config("label_names must be a list of strings"))?;
        if names.len() != num_classes {
            return Err(Error::config(format!(
                "label_names has {} names for num_classes {num_classes}",
                names.len()
            )));
        }
        c.classifier.set_labels(&names);
    }
    let empty = Map::new();
    let pcfg = json
        .get("pretrained_cfg")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut pre = Preprocessing::from_pretrained_cfg(pcfg, c.num_channels)?;
    pre.input_size = [c.num_channels, c.image_size, c.image_size];
    c.validate()?;
    Ok((c, pre))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_shapes_and_model_args() -> Result<()> {
        let c = config_of("vit_base_patch16_224.augreg_in21k", 10)?;
        assert_eq!(
            (c.hidden_size, c.num_hidden_layers, c.patch_size),
            (768, 12, 16)
        );
        assert_eq!((c.intermediate_size, c.layer_norm_eps), (3072, 1e-6));
        let v = json!({"architecture": "vit_tiny_patch16_224", "num_classes": 2,
            "label_names": ["a", "b"],
            "model_args": {"img_size": [32, 32], "patch_size": 8, "embed_dim": 36,
                           "num_heads": 3, "depth": 2, "mlp_ratio": 1.5}});
        let (c, pre) = read(v.as_object().unwrap())?;
        assert_eq!((c.image_size, c.grid(), c.intermediate_size), (32, 4, 54));
        assert_eq!(c.classifier.labels(), ["a", "b"]);
        assert_eq!(pre.input_size, [3, 32, 32]);
        Ok(())
    }

    #[test]
    fn other_vits_are_refused_by_key() {
        for (v, needle) in [
            (
                json!({"architecture": "vit_base_patch16_224", "model_args": {"reg_tokens": 4}}),
                "reg_tokens",
            ),
            (
                json!({"architecture": "vit_base_patch16_224", "model_args": {"global_pool": "avg"}}),
                "avg",
            ),
            (
                json!({"architecture": "deit_tiny_patch16_224"}),
                "unknown ViT architecture",
            ),
            (
                json!({"architecture": "vit_base_patch16_224", "num_classes": 3, "label_names": ["a"]}),
                "label_names",
            ),
        ] {
            let e = read(v.as_object().unwrap()).unwrap_err().to_string();
            assert!(e.contains(needle), "{v}: {e}");
        }
    }
}
