//! The `finetune` command on the other text families: training the tiny DistilBERT and RoBERTa
//! checkpoints of `tests/fixtures/` lowers the loss and exports a model transformers loads
//! (`architectures`, labels); with only the head training, the backbone's features are cached
//! and give the uncached run; `inspect` lists their names and takes patterns in either naming;
//! a `model_type` no family reads is one error listing those that are.

mod common;

use common::{finetune, finetune_ok, load_tensors, read_json, tmpdir};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Positive and negative sentences over the fixtures' tokenizer words.
fn write_csv(path: &Path, rows: usize) {
    let pos = ["the movie was great", "i loved every minute", "great music"];
    let neg = ["a terrible film", "the worst boring plot", "weak dialogue"];
    let mut body = String::from("text,label\n");
    for i in 0..rows {
        if i % 2 == 0 {
            body += &format!("{},pos\n", pos[i % 3]);
        } else {
            body += &format!("{},neg\n", neg[i % 3]);
        }
    }
    std::fs::write(path, body).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `finetune train` of `model` on `train` into `out` (text classification), with `extra` flags.
fn train_args(model: &Path, train: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--task",
        "text-classification",
        "--model",
        s(model),
    ]
    .into_iter()
    .chain(["--train", s(train), "--output", s(out), "--no-progress"])
    .map(String::from)
    .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// Trains `family`'s fixture on the toy sentences; the loss logged at the end is below the
/// first, and the export is the family's sequence classifier with the run's labels.
fn training_lowers_the_loss(family: &str, architecture: &str) {
    let dir = tmpdir(&format!("families-train-{family}"));
    let (train, out) = (dir.join("train.csv"), dir.join("out"));
    write_csv(&train, 24);
    let flags = [
        "--epochs",
        "10",
        "--lr",
        "2e-3",
        "--batch-size",
        "8",
        "--max-length",
        "10",
        "--logging-steps",
        "1",
    ];
    finetune_ok(&train_args(&fixture(family), &train, &out, &flags));
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let losses: Vec<f64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).unwrap()["loss"].as_f64())
        .collect();
    assert!(losses.len() >= 30, "{family}: {losses:?}");
    let last: f64 = losses[losses.len() - 3..].iter().sum::<f64>() / 3.0;
    assert!(last < 0.7 * losses[0], "{family}: loss {losses:?}");
    let config = read_json(&out.join("config.json"));
    assert_eq!(config["architectures"][0], architecture);
    assert_eq!(
        config["id2label"],
        serde_json::json!({"0": "neg", "1": "pos"})
    );
    assert!(out.join("tokenizer.json").is_file());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn distilbert_trains_and_exports() {
    training_lowers_the_loss("distilbert", "DistilBertForSequenceClassification");
}

#[test]
fn roberta_trains_and_exports() {
    training_lowers_the_loss("roberta", "RobertaForSequenceClassification");
}

/// `--freeze 'PREFIX.*' --dropout 0`: the backbone's features are cached, and the head comes
/// out as the uncached run's.
fn feature_cache_gives_the_uncached_head(family: &str, backbone: &str) {
    let dir = tmpdir(&format!("families-cache-{family}"));
    let train = dir.join("train.csv");
    write_csv(&train, 16);
    let model = fixture(family);
    let run = |out: &Path, extra: &[&str]| {
        let flags = [
            "--freeze",
            backbone,
            "--dropout",
            "0",
            "--epochs",
            "3",
            "--lr",
            "1e-2",
        ];
        let mut args = train_args(&model, &train, out, &flags);
        args.extend(extra.iter().map(|a| a.to_string()));
        finetune_ok(&args);
        read_json(&out.join("train_summary.json"))
    };
    let (cached, plain) = (dir.join("cached"), dir.join("plain"));
    assert_eq!(run(&cached, &[])["feature_cache"]["used"], true);
    assert_eq!(
        run(&plain, &["--no-feature-cache"])["feature_cache"]["used"],
        false
    );
    let (a, b) = (
        load_tensors(&cached.join("model.safetensors")),
        load_tensors(&plain.join("model.safetensors")),
    );
    let start = load_tensors(&fixture(family).join("model.safetensors"));
    for (name, t) in &a {
        let d = (t - &b[name])
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap();
        let d = d.max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(d <= 1e-5, "{family} {name} differs by {d}");
        let in_backbone = name.starts_with(backbone.trim_end_matches('*'));
        if t.dims() != start[name].dims() {
            // A new head for the data's labels.
            assert!(!in_backbone, "{family} {name} changed shape");
            continue;
        }
        let moved = (t - &start[name]).unwrap().abs().unwrap();
        let moved = moved.flatten_all().unwrap().max(0).unwrap();
        let moved = moved.to_scalar::<f32>().unwrap();
        assert_eq!(
            moved == 0.0,
            in_backbone,
            "{family} {name} moved by {moved}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn only_the_head_training_caches_the_backbone_features() {
    feature_cache_gives_the_uncached_head("distilbert", "distilbert.*");
    feature_cache_gives_the_uncached_head("roberta", "roberta.*");
}

#[test]
fn inspect_lists_the_names_and_reads_patterns_in_the_bare_naming() {
    let out = finetune_ok(&[
        "inspect",
        s(&fixture("distilbert")),
        "--freeze",
        "transformer.layer.0.*",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let tensors = v["tensors"].as_array().unwrap();
    let find = |n: &str| {
        tensors
            .iter()
            .find(|t| t["name"] == n)
            .unwrap_or_else(|| panic!("{n} listed"))
    };
    let q0 = find("distilbert.transformer.layer.0.attention.q_lin.weight");
    assert_eq!(q0["shape"], serde_json::json!([36, 36]));
    assert_eq!(q0["trainable"], false);
    assert_eq!(
        find("distilbert.transformer.layer.1.attention.q_lin.weight")["trainable"],
        true
    );
    assert_eq!(find("pre_classifier.weight")["trainable"], true);
    let out = finetune_ok(&["inspect", s(&fixture("roberta"))]);
    assert!(out.contains("classifier.out_proj.weight"), "{out}");
    assert!(out.contains("roberta.encoder.layer.1.attention.self.query.weight"));
}

#[test]
fn an_unsupported_model_type_lists_the_supported_ones() {
    let dir = tmpdir("families-albert");
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture("distilbert").join(f), dir.join(f)).unwrap();
    }
    let mut config = read_json(&fixture("distilbert").join("config.json"));
    config["model_type"] = "albert".into();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let train = dir.join("train.csv");
    write_csv(&train, 4);
    let run = finetune(&train_args(&dir, &train, &dir.join("out"), &[]));
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("\"albert\""), "{stderr}");
    for t in ["bert", "distilbert", "roberta", "xlm-roberta"] {
        assert!(stderr.contains(t), "{t} in {stderr}");
    }
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
