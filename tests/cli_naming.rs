//! One naming for the user: `inspect` shows the names training, `--freeze` and exports use,
//! with the file's own name beside them where it differs, and a freeze pattern written in
//! either naming selects the same parameters, in `inspect` and in `train`.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A copy of the tiny BERT in the bare naming of sentence-transformers checkpoints.
fn bare_copy(from: &Path, to: &Path) {
    copy_dir(from, to);
    let tensors: std::collections::HashMap<String, candle_core::Tensor> =
        load_tensors(&from.join("model.safetensors"))
            .into_iter()
            .map(|(n, t)| (n.strip_prefix("bert.").unwrap_or(&n).to_string(), t))
            .collect();
    candle_core::safetensors::save(&tensors, to.join("model.safetensors")).unwrap();
}

fn trainable_params(model: &Path, freeze: &[&str]) -> u64 {
    let mut args = vec!["inspect", s(model), "--json"];
    args.extend(freeze);
    let out = finetune_ok(&args);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["trainable_params"].as_u64().unwrap()
}

#[test]
fn inspect_shows_training_names_and_patterns_match_either_naming() {
    let dir = tmpdir("naming-inspect");
    let prefixed = dir.join("prefixed");
    write_tiny_bert(&prefixed, 2);
    let bare = dir.join("bare");
    bare_copy(&prefixed, &bare);

    let table = finetune_ok(&["inspect", s(&bare)]);
    assert!(
        table.lines().next().unwrap().contains("name in the file"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("bert.encoder.layer.0.attention.self.query.weight "))
        .unwrap_or_else(|| panic!("no training name:\n{table}"));
    assert!(
        row.trim_end()
            .ends_with(" encoder.layer.0.attention.self.query.weight"),
        "{row}"
    );
    let json: Value = serde_json::from_str(&finetune_ok(&["inspect", s(&bare), "--json"])).unwrap();
    let t = &json["tensors"].as_array().unwrap()[1];
    assert_eq!(
        t["training_name"].as_str().unwrap(),
        format!("bert.{}", t["name"].as_str().unwrap())
    );

    let total = trainable_params(&bare, &[]);
    let mut counts = Vec::new();
    for model in [&bare, &prefixed] {
        for pattern in ["encoder.layer.0.*", "bert.encoder.layer.0.*"] {
            counts.push(trainable_params(model, &["--freeze", pattern]));
        }
    }
    assert!(counts.iter().all(|&c| c == counts[0]), "{counts:?}");
    assert!(counts[0] < total, "layer 0 frozen: {counts:?} of {total}");
    let typo = finetune(&["inspect", s(&bare), "--freeze", "encoder.layr.0.*"]);
    assert!(
        !typo.status.success(),
        "a pattern matching nothing is refused"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn train_freezes_the_same_parameters_whichever_naming_the_pattern_uses() {
    let dir = tmpdir("naming-train");
    let model = dir.join("model");
    write_tiny_bert(&model, 2);
    let data = dir.join("train.csv");
    write_sentiment_csv(&data, 16, 1);
    let frozen = |pattern: &str, out: &str| -> Vec<Value> {
        let report = finetune_ok(&[
            "train",
            "--task",
            "text-classification",
            "--model",
            s(&model),
            "--train",
            s(&data),
            "--output",
            s(&dir.join(out)),
            "--max-steps",
            "1",
            "--freeze",
            pattern,
            "--json",
        ]);
        let v: Value = serde_json::from_str(&report).unwrap();
        v["frozen"].as_array().unwrap().clone()
    };
    let training = frozen("bert.encoder.layer.0.*", "a");
    let bare = frozen("encoder.layer.0.*", "b");
    assert!(!training.is_empty());
    assert_eq!(training, bare);
    assert!(training
        .iter()
        .all(|n| n.as_str().unwrap().starts_with("bert.encoder.layer.0.")));
    std::fs::remove_dir_all(&dir).ok();
}
