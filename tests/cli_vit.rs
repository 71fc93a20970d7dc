//! The `finetune` command on ViT: the tiny transformers and timm checkpoints of
//! `tests/fixtures/` train on an image folder (loss falls), at another input size too (the
//! position embeddings resampled, the export at that size), export a folder transformers'
//! `ViTForImageClassification` and `ViTImageProcessor` read, predict and evaluate from it;
//! frozen-backbone runs cache features; `inspect` shows a timm checkpoint under the model's
//! names and takes timm patterns; LoRA adapts ViT's `query`/`value`.

mod common;
#[path = "common/images.rs"]
mod images;

use common::{finetune, finetune_ok, read_json, tmpdir};
use images::write_shapes;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `finetune train` of `model` on the image folder `data`; its stdout and stderr.
fn train(model: &Path, data: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--task",
        "image-classification",
        "--model",
        s(model),
        "--train",
        s(data),
        "--output",
        s(out),
        "--no-progress",
        "--logging-steps",
        "1",
        "--batch-size",
        "8",
    ];
    args.extend_from_slice(extra);
    let o = finetune(&args);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{args:?}:\n{err}");
    format!("{out}{err}")
}

fn losses(out: &Path) -> Vec<f64> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).unwrap()["loss"].as_f64())
        .collect()
}

#[test]
fn a_vit_trains_exports_for_transformers_and_predicts() {
    let dir = tmpdir("cli-vit-train");
    let (data, out) = (dir.join("shapes"), dir.join("out"));
    write_shapes(&data, &["circle", "square"], 12, 24, 3);
    let log = train(
        &fixture("vit"),
        &data,
        &out,
        &[
            "--epochs",
            "15",
            "--lr",
            "2e-3",
            "--image-size",
            "24",
            "--dropout",
            "0",
        ],
    );
    assert!(log.contains("resampled from 5×5 to 6×6"), "{log}");
    let l = losses(&out);
    let (first, last) = (
        l[..6].iter().sum::<f64>(),
        l[l.len() - 6..].iter().sum::<f64>(),
    );
    assert!(last < 0.8 * first, "loss did not fall: {l:?}");
    let config = read_json(&out.join("config.json"));
    assert_eq!(config["architectures"][0], "ViTForImageClassification");
    assert_eq!(config["model_type"], "vit");
    assert_eq!(config["image_size"], 24);
    assert_eq!(config["id2label"]["1"], "square");
    let pre = read_json(&out.join("preprocessor_config.json"));
    assert_eq!(pre["image_processor_type"], "ViTImageProcessor");
    assert_eq!(
        (pre["size"]["height"].as_u64(), pre["resample"].as_u64()),
        (Some(24), Some(2))
    );
    let eval = finetune_ok(&["eval", "--model", s(&out), "--data", s(&data), "--json"]);
    let eval: Value = serde_json::from_str(eval.trim()).unwrap();
    assert!(eval["accuracy"].as_f64().unwrap() >= 0.66, "{eval}");
    let image = data.join("square/00.png");
    let pred = finetune_ok(&[
        "predict",
        "--model",
        s(&out),
        "--image",
        s(&image),
        "--top-k",
        "2",
        "--json",
    ]);
    assert!(
        pred.contains("\"square\"") && pred.contains("\"circle\""),
        "{pred}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_timm_vit_trains_its_head_on_cached_features_and_inspect_reads_timm_names() {
    let dir = tmpdir("cli-vit-timm");
    let (data, out) = (dir.join("shapes"), dir.join("out"));
    write_shapes(&data, &["circle", "square"], 8, 20, 5);
    let log = train(
        &fixture("vit-timm"),
        &data,
        &out,
        &[
            "--epochs",
            "3",
            "--lr",
            "1e-2",
            "--freeze",
            "*",
            "--unfreeze",
            "classifier.*",
            "--augment",
            "none",
        ],
    );
    let cache = log
        .lines()
        .find(|l| l.starts_with("feature cache:"))
        .unwrap_or_default();
    assert!(!cache.is_empty() && !cache.contains("not used"), "{log}");
    let config = read_json(&out.join("config.json"));
    assert_eq!(config["architectures"][0], "ViTForImageClassification");
    assert_eq!(config["layer_norm_eps"], 1e-6);
    // inspect: timm's tensors under the model's names; a timm pattern freezes by its alias.
    let table = finetune_ok(&["inspect", s(&fixture("vit-timm")), "--freeze", "blocks.0.*"]);
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{table}"))
            .to_string()
    };
    assert!(line("vit.encoder.layer.0.output.dense.weight").contains("frozen"));
    assert!(line("vit.encoder.layer.0.output.dense.weight").contains("blocks.0.mlp.fc2.weight"));
    assert!(line("vit.encoder.layer.1.output.dense.weight").contains("trainable"));
    assert!(line("blocks.0.attn.qkv.weight").contains("frozen"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn lora_on_a_vit_adapts_query_and_value() {
    let dir = tmpdir("cli-vit-lora");
    let (data, out) = (dir.join("shapes"), dir.join("out"));
    write_shapes(&data, &["circle", "square"], 6, 20, 7);
    train(
        &fixture("vit"),
        &data,
        &out,
        &["--epochs", "1", "--lora", "--lora-r", "2"],
    );
    let adapter = read_json(&out.join("adapter/adapter_config.json"));
    let targets: Vec<String> = serde_json::from_value(adapter["target_modules"].clone()).unwrap();
    assert_eq!(targets, ["q_proj", "v_proj"]); // transformers 5's names for ViT's query/value
    assert_eq!(adapter["modules_to_save"][0], "classifier");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_missing_tensor_and_an_unknown_model_type_are_one_line_each() {
    let dir = tmpdir("cli-vit-bad");
    let data = dir.join("shapes");
    write_shapes(&data, &["circle", "square"], 2, 20, 9);
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    let mut config = read_json(&fixture("vit").join("config.json"));
    config["model_type"] = "swin".into();
    std::fs::write(model.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(
        fixture("vit").join("model.safetensors"),
        model.join("model.safetensors"),
    )
    .unwrap();
    let out = dir.join("out");
    let run = |m: &Path| {
        finetune(&[
            "train",
            "--task",
            "image-classification",
            "--model",
            s(m),
            "--train",
            s(&data),
            "--output",
            s(&out),
            "--no-progress",
        ])
    };
    let o = run(&model);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("swin") && err.contains("vit"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!out.exists());
    std::fs::remove_dir_all(&dir).ok();
}
