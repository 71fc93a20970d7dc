//! `finetune inspect`: listing, freeze patterns, JSON schema and error handling, on checkpoints
//! written by the test itself.

use candle_core::{DType, Device, Tensor};
use finetune_core::{ParamStore, TensorKind};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ft-inspect-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tiny_checkpoint(dir: &Path) {
    let dev = Device::Cpu;
    let s = ParamStore::new();
    let add = |name: &str, shape: &[usize], kind| {
        let t = Tensor::zeros(shape, DType::F32, &dev).unwrap();
        s.insert(name, &t, kind).unwrap();
    };
    add(
        "bert.embeddings.word_embeddings.weight",
        &[30, 8],
        TensorKind::Parameter,
    );
    for l in 0..3 {
        add(
            &format!("bert.encoder.layer.{l}.output.dense.weight"),
            &[8, 8],
            TensorKind::Parameter,
        );
        add(
            &format!("bert.encoder.layer.{l}.output.dense.bias"),
            &[8],
            TensorKind::Parameter,
        );
    }
    add("classifier.weight", &[2, 8], TensorKind::Parameter);
    add("classifier.bias", &[2], TensorKind::Parameter);
    s.insert(
        "bert.embeddings.position_ids",
        &Tensor::zeros((1, 16), DType::I64, &dev).unwrap(),
        TensorKind::Buffer,
    )
    .unwrap();
    s.save(&dir.join("model.safetensors"), |n| Some(n.to_string()))
        .unwrap();
}

fn finetune(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_finetune"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn json_lists_every_tensor_with_trainable_flags_and_totals() {
    let dir = tmpdir("json");
    tiny_checkpoint(&dir);
    let out = finetune(&[
        "inspect",
        dir.to_str().unwrap(),
        "--freeze",
        "bert.encoder.layer.{0..1}.*",
        "--freeze",
        "bert.embeddings.*",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    let tensors = v["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), 10);
    let find = |n: &str| {
        tensors
            .iter()
            .find(|t| t["name"] == n)
            .unwrap_or_else(|| panic!("{n} listed"))
    };
    let l0 = find("bert.encoder.layer.0.output.dense.weight");
    assert_eq!(l0["shape"], serde_json::json!([8, 8]));
    assert_eq!(l0["dtype"], "f32");
    assert_eq!(l0["params"], 64);
    assert_eq!(l0["trainable"], false);
    assert_eq!(
        find("bert.encoder.layer.2.output.dense.weight")["trainable"],
        true
    );
    assert_eq!(find("classifier.bias")["trainable"], true);
    assert_eq!(find("bert.embeddings.position_ids")["trainable"], false);
    // Parameters only: 240 + 3*(64+8) + 16 + 2
    assert_eq!(v["total_params"], 474);
    // Trainable: layer 2 (72) + classifier (18)
    assert_eq!(v["trainable_params"], 90);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn table_output_has_summary_line() {
    let dir = tmpdir("table");
    tiny_checkpoint(&dir);
    let file = dir.join("model.safetensors");
    let out = finetune(&[
        "inspect",
        file.to_str().unwrap(),
        "--freeze",
        "*",
        "--unfreeze",
        "classifier.*",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("trainable params: 18 || all params: 474 || trainable%: 3.7975"),
        "{text}"
    );
    assert!(text
        .lines()
        .any(|l| l.starts_with("classifier.weight") && l.ends_with("trainable")));
    assert!(text
        .lines()
        .any(|l| l.starts_with("bert.embeddings.position_ids") && l.ends_with("buffer")));
    std::fs::remove_dir_all(&dir).ok();
}

fn assert_one_line_error(out: &std::process::Output, needle: &str) {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
}

#[test]
fn errors_are_one_clear_line() {
    let dir = tmpdir("err");
    let missing = dir.join("nope");
    assert_one_line_error(&finetune(&["inspect", missing.to_str().unwrap()]), "nope");
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"this is not a safetensors file at all").unwrap();
    assert_one_line_error(
        &finetune(&["inspect", garbage.to_str().unwrap()]),
        "garbage.safetensors",
    );
    let empty_dir = dir.join("empty");
    std::fs::create_dir_all(&empty_dir).unwrap();
    assert_one_line_error(
        &finetune(&["inspect", empty_dir.to_str().unwrap()]),
        "model.safetensors",
    );
    tiny_checkpoint(&dir);
    assert_one_line_error(
        &finetune(&["inspect", dir.to_str().unwrap(), "--freeze", "layer[0-"]),
        "layer[0-",
    );
    assert_one_line_error(
        &finetune(&["inspect", dir.to_str().unwrap(), "--freeze", "encoder.*"]),
        "matches no parameter",
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sharded_checkpoints_are_read_and_escaping_shards_refused() {
    let dir = tmpdir("shard");
    let dev = Device::Cpu;
    for (i, name) in ["a.weight", "b.weight"].iter().enumerate() {
        let s = ParamStore::new();
        s.insert(
            name,
            &Tensor::ones((2, 3), DType::F32, &dev).unwrap(),
            TensorKind::Parameter,
        )
        .unwrap();
        s.save(
            &dir.join(format!("model-0000{}-of-00002.safetensors", i + 1)),
            |n| Some(n.to_string()),
        )
        .unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": {
        "a.weight": "model-00001-of-00002.safetensors",
        "b.weight": "model-00002-of-00002.safetensors"}});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let out = finetune(&["inspect", dir.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total_params"], 12);

    let evil = serde_json::json!({"weight_map": {"a.weight": "../evil.safetensors"}});
    std::fs::write(dir.join("model.safetensors.index.json"), evil.to_string()).unwrap();
    assert_one_line_error(
        &finetune(&["inspect", dir.to_str().unwrap()]),
        "would leave the checkpoint folder",
    );
    let missing =
        serde_json::json!({"weight_map": {"a.weight": "model-00009-of-00009.safetensors"}});
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        missing.to_string(),
    )
    .unwrap();
    assert_one_line_error(
        &finetune(&["inspect", dir.to_str().unwrap()]),
        "does not exist",
    );
    std::fs::remove_dir_all(&dir).ok();
}
