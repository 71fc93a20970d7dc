//! Helpers shared by the BERT tests: tiny random checkpoints written in either naming.

#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use finetune_bert::naming::expected_tensors;
use finetune_bert::BertConfig;
use finetune_core::nn::init;
use finetune_core::Rng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub fn tiny_config() -> BertConfig {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 32, "max_position_embeddings": 32, "type_vocab_size": 2,
        "hidden_act": "gelu", "layer_norm_eps": 1e-12, "model_type": "bert",
        "architectures": ["BertModel"]
    }))
    .unwrap()
}

pub fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ft-bert-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[derive(Clone, Copy, PartialEq)]
pub enum Naming {
    /// `embeddings.*`, `encoder.*`, `pooler.*`, LayerNorm as `gamma`/`beta`, plus `cls.*` and
    /// `position_ids` that must be ignored; no classifier.
    BareLegacy,
    /// `bert.*` + `classifier.*`, LayerNorm `weight`/`bias`.
    Prefixed,
}

/// Random weights for `cfg` under the model's names (LayerNorm weights near 1).
pub fn random_weights(cfg: &BertConfig, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = Rng::seed_from_u64(seed);
    expected_tensors(cfg)
        .into_iter()
        .map(|(n, shape, _)| {
            let mean = if n.contains("LayerNorm.weight") {
                1.0
            } else {
                0.0
            };
            let t = init::normal(&shape, mean, 0.2, &mut rng, DType::F32, &Device::Cpu).unwrap();
            (n, t)
        })
        .collect()
}

/// Writes `config.json` and `model.safetensors` for `weights` in the given naming.
pub fn write_checkpoint(
    dir: &Path,
    cfg: &BertConfig,
    weights: &HashMap<String, Tensor>,
    naming: Naming,
) {
    let mut out: Vec<(String, Tensor)> = Vec::new();
    for (n, t) in weights {
        let name = match naming {
            Naming::Prefixed => n.clone(),
            Naming::BareLegacy => {
                if n.starts_with("classifier.") {
                    continue;
                }
                let bare = n.trim_start_matches("bert.").to_string();
                if bare.contains("LayerNorm") {
                    bare.replace("LayerNorm.weight", "LayerNorm.gamma")
                        .replace("LayerNorm.bias", "LayerNorm.beta")
                } else {
                    bare
                }
            }
        };
        out.push((name, t.clone()));
    }
    if naming == Naming::BareLegacy {
        let dev = Device::Cpu;
        out.push((
            "embeddings.position_ids".into(),
            Tensor::arange(0i64, 32, &dev)
                .unwrap()
                .reshape((1, 32))
                .unwrap(),
        ));
        out.push((
            "cls.predictions.bias".into(),
            Tensor::zeros(cfg.vocab_size, DType::F32, &dev).unwrap(),
        ));
    }
    finetune_core::safetensors_io::save_tensors(&dir.join("model.safetensors"), &out).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(cfg).unwrap(),
    )
    .unwrap();
}

/// A deterministic batch of 3 sequences of length 7, the last two padded.
pub fn batch(dev: &Device) -> finetune_bert::BertBatch {
    let ids: Vec<u32> = vec![
        1, 5, 9, 13, 17, 21, 2, //
        1, 7, 11, 2, 0, 0, 0, //
        1, 30, 2, 40, 41, 2, 0,
    ];
    let types: Vec<u32> = vec![
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0,
    ];
    let mask: Vec<u32> = vec![
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0,
    ];
    finetune_bert::BertBatch {
        input_ids: Tensor::from_vec(ids, (3, 7), dev).unwrap(),
        token_type_ids: Some(Tensor::from_vec(types, (3, 7), dev).unwrap()),
        attention_mask: Some(Tensor::from_vec(mask, (3, 7), dev).unwrap()),
    }
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// The fetched all-MiniLM-L6-v2 folder; fails (never skips) when it is missing.
pub fn minilm_dir() -> PathBuf {
    let root = std::env::var_os("CANDLE_FINETUNE_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets"));
    let dir = root.join("minilm");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing: run `scripts/fetch-assets.sh minilm` first",
        dir.display()
    );
    dir
}
