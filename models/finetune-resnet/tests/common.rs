//! Helpers shared by the ResNet tests: tiny random ResNets written in either naming.

#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use finetune_core::nn::init;
use finetune_core::Rng;
use finetune_resnet::naming::{expected_tensors, transformers_name};
use finetune_resnet::{BlockKind, Naming, ResNetConfig};
use serde_json::json;
use std::path::{Path, PathBuf};

/// A small ResNet of the given block kind: stages of 1, 2, 1, 1 blocks, widths 4-8, 32×32
/// inputs, three labelled classes.
pub fn tiny_config(block: BlockKind) -> ResNetConfig {
    let arch = match block {
        BlockKind::Basic => "resnet18",
        BlockKind::Bottleneck => "resnet50",
    };
    let v = json!({
        "architecture": arch, "num_classes": 3, "label_names": ["ant", "bee", "cat"],
        "model_args": {"layers": [1, 2, 1, 1], "channels": [4, 8, 8, 8]}, "stem_channels": 4,
        "pretrained_cfg": {"input_size": [3, 32, 32], "interpolation": "bicubic", "crop_pct": 0.9}
    });
    ResNetConfig::from_timm_json(v.as_object().unwrap()).unwrap()
}

pub fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ft-resnet-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Random weights under torchvision names, scaled so activations stay O(1) through deep
/// stacks: convs N(0, 2/fan_in), BatchNorm weights U(0.5, 1.5) except the last of each residual
/// branch, U(0.1, 0.4) (so residual sums do not blow up), biases and running means N(0, 0.1),
/// running variances U(0.5, 1.5), `num_batches_tracked` 7, `fc` N(0, 0.1).
pub fn random_weights(cfg: &ResNetConfig, seed: u64) -> Vec<(String, Tensor)> {
    let mut rng = Rng::seed_from_u64(seed);
    let dev = Device::Cpu;
    let last_bn = match cfg.block {
        BlockKind::Basic => ".bn2.weight",
        BlockKind::Bottleneck => ".bn3.weight",
    };
    expected_tensors(cfg)
        .into_iter()
        .map(|e| {
            let s = e.shape.as_slice();
            let leaf = e.name.rsplit('.').next().unwrap();
            let t = match leaf {
                "num_batches_tracked" => Ok(Tensor::new(7i64, &dev).unwrap()),
                "running_var" => init::uniform(s, 0.5, 1.5, &mut rng, DType::F32, &dev),
                "weight" if s.len() == 4 => {
                    let fan_in = (s[1] * s[2] * s[3]) as f64;
                    init::normal(s, 0.0, (2.0 / fan_in).sqrt(), &mut rng, DType::F32, &dev)
                }
                "weight" if e.name.starts_with("layer") && e.name.ends_with(last_bn) => {
                    init::uniform(s, 0.1, 0.4, &mut rng, DType::F32, &dev)
                }
                "weight" if !e.name.starts_with("fc.") => {
                    init::uniform(s, 0.5, 1.5, &mut rng, DType::F32, &dev)
                }
                _ => init::normal(s, 0.0, 0.1, &mut rng, DType::F32, &dev),
            }
            .unwrap();
            (e.name, t)
        })
        .collect()
}

/// Writes `model.safetensors` for `weights` in `naming`, with the matching `config.json`: timm's
/// for torchvision names, transformers' `ResNetConfig` (+ `preprocessor_config.json`) for
/// transformers names.
pub fn write_checkpoint(
    dir: &Path,
    cfg: &ResNetConfig,
    weights: &[(String, Tensor)],
    naming: Naming,
) {
    let out: Vec<(String, Tensor)> = weights
        .iter()
        .map(|(n, t)| {
            let name = match naming {
                Naming::Torchvision => n.clone(),
                Naming::Transformers => transformers_name(n).unwrap(),
            };
            (name, t.clone())
        })
        .collect();
    finetune_core::safetensors_io::save_tensors(&dir.join("model.safetensors"), &out).unwrap();
    let config = match naming {
        Naming::Torchvision => cfg.to_timm_json(),
        Naming::Transformers => {
            let e = cfg.block.expansion();
            let labels = cfg.labels();
            let id2label: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| (i.to_string(), json!(l)))
                .collect();
            std::fs::write(
                dir.join("preprocessor_config.json"),
                serde_json::to_vec_pretty(&json!({
                    "crop_pct": cfg.preprocessing.crop_pct, "do_normalize": true,
                    "do_resize": true, "image_mean": cfg.preprocessing.mean,
                    "image_std": cfg.preprocessing.std, "resample": 3,
                    "size": cfg.preprocessing.input_size[1]
                }))
                .unwrap(),
            )
            .unwrap();
            json!({
                "architectures": ["ResNetForImageClassification"], "model_type": "resnet",
                "layer_type": match cfg.block { BlockKind::Basic => "basic", _ => "bottleneck" },
                "depths": cfg.layers, "embedding_size": cfg.stem_width,
                "hidden_sizes": cfg.channels.map(|c| c * e), "num_channels": cfg.in_chans,
                "hidden_act": "relu", "downsample_in_first_stage": false,
                "downsample_in_bottleneck": false, "id2label": id2label
            })
        }
    };
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
}

/// Deterministic N(0, 1) images `[n, c, h, w]`.
pub fn images(n: usize, c: usize, h: usize, w: usize, seed: u64, dtype: DType) -> Tensor {
    let mut rng = Rng::seed_from_u64(seed);
    init::normal(&[n, c, h, w], 0.0, 1.0, &mut rng, dtype, &Device::Cpu).unwrap()
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// Every tensor of a store as host f64 values (the counters too), by name.
pub fn snapshot(store: &finetune_core::ParamStore) -> Vec<(String, Vec<f64>)> {
    store
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            let v = t
                .to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            (n, v)
        })
        .collect()
}
