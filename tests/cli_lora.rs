//! LoRA through the CLI: `train --lora` trains the adapters and the head only (counted as
//! PEFT counts them), checkpoints hold just those, a resumed run ends bit-identical to an
//! uninterrupted one, the export holds the merged model and `adapter/` in PEFT's format, the
//! adapter folder predicts like the merged model (alone, or with `--adapter` on its base),
//! `export --merge | --adapter-only` write what they say, and bad settings or adapters are
//! one error line with nothing written.

mod common;
#[path = "common/images.rs"]
mod images;

use common::*;
use std::path::{Path, PathBuf};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Setup {
    dir: PathBuf,
    model: PathBuf,
    data: PathBuf,
}

fn setup(tag: &str) -> Setup {
    let dir = tmpdir(tag);
    let model = dir.join("base");
    write_tiny_bert(&model, 3);
    let data = dir.join("train.csv");
    write_sentiment_csv(&data, 48, 1);
    Setup { dir, model, data }
}

fn train_args<'a>(st: &'a Setup, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "train",
        "--task",
        "text-classification",
        "--model",
        s(&st.model),
        "--train",
        s(&st.data),
        "--output",
        s(out),
        "--max-length",
        "12",
        "--batch-size",
        "8",
        "--lr",
        "5e-3",
        "--max-steps",
        "6",
        "--save-steps",
        "3",
        "--lora",
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn lora_trains_adapters_and_head_and_exports_merged_plus_peft() {
    let st = setup("lora-train");
    let out = st.dir.join("out");
    let run = finetune(&train_args(&st, &out, &[]));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(
        err.contains(
            "LoRA: r=8, alpha=16 (scale 2) on 4 layers (query, value); classifier trains whole"
        ),
        "{err}"
    );
    // PEFT's count: adapters (2 layers × query, value × (8×16 + 16×8)) + the head (16×2 + 2);
    // the total counts the head twice, as PEFT keeps the original beside the trained copy.
    let summary = read_json(&out.join("train_summary.json"));
    let base_total: usize = load_tensors(&st.model.join("model.safetensors"))
        .iter()
        .filter(|(n, _)| !n.ends_with("position_ids"))
        .map(|(_, t)| t.elem_count())
        .sum();
    assert_eq!(summary["trainable_params"], 1024 + 34);
    assert_eq!(summary["total_params"], base_total + 34 + 1024 + 34);

    // The merged model: frozen weights untouched, adapted ones merged, no adapter tensor.
    let base = load_tensors(&st.model.join("model.safetensors"));
    let merged = load_tensors(&out.join("model.safetensors"));
    assert!(merged.keys().all(|n| !n.contains("lora_")));
    let key = "bert.encoder.layer.0.attention.self.key.weight";
    assert!(
        same_bits(&merged[key], &base[key]),
        "a frozen weight changed"
    );
    let query = "bert.encoder.layer.0.attention.self.query.weight";
    assert!(
        !same_bits(&merged[query], &base[query]),
        "the adapter was not merged"
    );

    // adapter/: PEFT's config keys and tensor names.
    let config = read_json(&out.join("adapter/adapter_config.json"));
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["task_type"], "SEQ_CLS");
    assert_eq!(config["r"], 8);
    assert_eq!(
        config["target_modules"],
        serde_json::json!(["query", "value"])
    );
    assert_eq!(config["modules_to_save"], serde_json::json!(["classifier"]));
    assert_eq!(
        config["base_model_name_or_path"],
        s(&std::fs::canonicalize(&st.model).unwrap())
    );
    let adapter = load_tensors(&out.join("adapter/adapter_model.safetensors"));
    let mut names: Vec<&String> = adapter.keys().collect();
    names.sort();
    assert_eq!(names.len(), 2 * 2 * 2 + 2);
    assert!(adapter
        .contains_key("base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight"));
    assert!(adapter.contains_key("base_model.model.classifier.bias"));

    // adapter/ has its own card, for PEFT; the top card says how the run was trained.
    let card = std::fs::read_to_string(out.join("adapter/README.md")).unwrap();
    assert!(card.contains("library_name: \"peft\""), "{card}");
    let top = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(
        top.contains("library_name: \"transformers\"") && top.contains("\"lora\""),
        "{top}"
    );
    assert!(top.contains("- LoRA: r 8, alpha 16, dropout 0.1"), "{top}");

    // A checkpoint holds the adapter and the head only, in PEFT's folder and for resuming.
    let ckpt = out.join("checkpoint-3");
    assert!(ckpt.join("adapter_config.json").is_file());
    assert!(!ckpt.join("config.json").exists());
    let held = load_tensors(&ckpt.join("model.safetensors"));
    assert_eq!(held.len(), 2 * 2 * 2 + 2, "{:?}", held.keys());

    // Predictions: the merged model, the adapter folder alone, and --adapter on the base.
    let predict = |extra: &[&str]| -> serde_json::Value {
        let mut a = vec!["predict", "--text", "good fun movie", "--json"];
        a.extend_from_slice(extra);
        serde_json::from_str(finetune_ok(&a).trim()).unwrap()
    };
    let merged = predict(&["--model", s(&out)]);
    let alone = predict(&["--model", s(&out.join("adapter"))]);
    let on_base = predict(&[
        "--model",
        s(&st.model),
        "--adapter",
        s(&out.join("adapter")),
    ]);
    let logits = |v: &serde_json::Value| -> Vec<f64> {
        serde_json::from_value(v["logits"].clone()).unwrap()
    };
    for other in [&alone, &on_base] {
        for (a, b) in logits(&merged).iter().zip(logits(other)) {
            assert!((a - b).abs() < 1e-4, "{merged} vs {other}");
        }
    }
    assert_eq!(
        alone["label"], merged["label"],
        "the adapter's labels come from its export"
    );

    // The adapter as a Hub repository (the loopback Hub): as the model, or as --adapter.
    let root = st.dir.join("hub");
    for f in ["adapter_config.json", "adapter_model.safetensors"] {
        let bytes = std::fs::read(out.join("adapter").join(f)).unwrap();
        finetune_hub::testing::put(&root, "org/tiny-lora", "main", f, &bytes);
    }
    let server = finetune_hub::testing::HubServer::start(&root);
    let (endpoint, home) = (server.endpoint(), st.dir.join("home"));
    let env = [("HF_ENDPOINT", endpoint.as_str()), ("HF_HOME", s(&home))];
    let base = s(&st.model);
    for how in [
        vec!["--model", "org/tiny-lora"],
        vec!["--model", base, "--adapter", "org/tiny-lora"],
    ] {
        let mut a = vec!["predict", "--text", "good fun movie", "--json"];
        a.extend(how);
        let run = finetune_with_hub_env(&a, &env);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        for (a, b) in logits(&merged).iter().zip(logits(&v)) {
            assert!((a - b).abs() < 1e-4, "{merged} vs {v}");
        }
    }

    // export: a LoRA checkpoint (an adapter folder) as merged only, or the adapter only.
    let m = st.dir.join("merged");
    finetune_ok(&[
        "export",
        "--checkpoint",
        s(&ckpt),
        "--output",
        s(&m),
        "--merge",
    ]);
    assert!(m.join("model.safetensors").is_file() && !m.join("adapter").exists());
    let a = st.dir.join("adapter-only");
    finetune_ok(&[
        "export",
        "--checkpoint",
        s(&ckpt),
        "--output",
        s(&a),
        "--adapter-only",
    ]);
    assert!(a.join("adapter_model.safetensors").is_file() && !a.join("model.safetensors").exists());
    let refused = finetune(&[
        "export",
        "--checkpoint",
        s(&st.model),
        "--output",
        s(&st.dir.join("x")),
        "--merge",
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("carries none"));
    std::fs::remove_dir_all(&st.dir).ok();
}

#[test]
fn a_resumed_lora_run_ends_bit_identical() {
    let st = setup("lora-resume");
    let whole = st.dir.join("whole");
    finetune_ok(&train_args(
        &st,
        &whole,
        &["--lora-target", "all-linear", "--lora-dropout", "0.2"],
    ));
    // The same run, resumed from its checkpoint at step 3 (the steps after it undone).
    let part = st.dir.join("part");
    copy_dir(&whole, &part);
    std::fs::remove_dir_all(part.join("checkpoint-6")).unwrap();
    std::fs::remove_file(part.join("model.safetensors")).unwrap();
    let ckpt = part.join("checkpoint-3");
    finetune_ok(&["train", "--output", s(&part), "--resume", s(&ckpt)]);
    assert_same_tensors(
        &whole.join("model.safetensors"),
        &part.join("model.safetensors"),
    );
    assert_same_tensors(
        &whole.join("adapter/adapter_model.safetensors"),
        &part.join("adapter/adapter_model.safetensors"),
    );
    std::fs::remove_dir_all(&st.dir).ok();
}

#[test]
fn bad_lora_settings_and_adapters_are_one_error_with_nothing_written() {
    let st = setup("lora-bad");
    let out = st.dir.join("out");
    let fails = |extra: &[&str], want: &str, code: i32| {
        let run = finetune(&train_args(&st, &out, extra));
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(code), "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: {err}");
        assert_eq!(
            err.trim()
                .lines()
                .filter(|l| l.starts_with("error"))
                .count(),
            1,
            "{err}"
        );
        assert!(!out.exists(), "{extra:?} left {}", out.display());
    };
    fails(&["--lora-r", "0"], "--lora-r must be at least 1", 2);
    fails(
        &["--lora-dropout", "1.5"],
        "--lora-dropout must be in [0, 1)",
        2,
    );
    fails(
        &["--lora-target", "qkv"],
        "LoRA target `qkv` matches no linear or conv layer",
        1,
    );
    let adapter = st.dir.join("ia3");
    std::fs::create_dir_all(&adapter).unwrap();
    std::fs::write(
        adapter.join("adapter_config.json"),
        r#"{"peft_type": "IA3"}"#,
    )
    .unwrap();
    fails(
        &["--adapter", s(&adapter)],
        "peft_type IA3 is not supported",
        1,
    );
    std::fs::write(
        adapter.join("adapter_config.json"),
        r#"{"peft_type": "LORA", "r": 8, "use_dora": true}"#,
    )
    .unwrap();
    fails(
        &["--adapter", s(&adapter)],
        "DoRA adapters are not supported",
        1,
    );
    fails(
        &["--adapter", s(&st.dir)],
        "no adapter_config.json there",
        1,
    );
    std::fs::remove_dir_all(&st.dir).ok();
}

#[test]
fn lora_on_a_resnet_adapts_the_last_stage_convs_and_inspect_shows_what_they_change() {
    let dir = tmpdir("lora-resnet");
    let model = dir.join("base");
    images::write_tiny_resnet(&model, 2, Some(&["circles", "squares"]));
    let data = dir.join("data");
    images::write_shapes(&data, &["circles", "squares"], 4, 16, 1);
    let out = dir.join("out");
    let run = finetune(&[
        "train",
        "--task",
        "image-classification",
        "--model",
        s(&model),
        "--train",
        s(&data),
        "--output",
        s(&out),
        "--batch-size",
        "4",
        "--max-steps",
        "3",
        "--augment",
        "none",
        "--lr",
        "0.05",
        "--lora",
        "--lora-r",
        "2",
    ]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(
        err.contains("on 2 layers (layer4.*.conv*); fc trains whole"),
        "{err}"
    );
    let config = read_json(&out.join("adapter/adapter_config.json"));
    // A glob is written as the layers it selected, which PEFT matches the same way.
    assert_eq!(
        config["target_modules"],
        serde_json::json!(["layer4.0.conv1", "layer4.0.conv2"])
    );
    assert_eq!(config["task_type"], serde_json::Value::Null);
    assert_eq!(config["modules_to_save"], serde_json::json!(["fc"]));
    let adapter = load_tensors(&out.join("adapter/adapter_model.safetensors"));
    let a = &adapter["base_model.model.layer4.0.conv1.lora_A.weight"];
    let b = &adapter["base_model.model.layer4.0.conv1.lora_B.weight"];
    assert_eq!((a.dims(), b.dims()), (&[2, 8, 3, 3][..], &[8, 2, 1, 1][..]));
    let image = std::fs::read_dir(data.join("circles"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let predict = |m: &Path| -> serde_json::Value {
        let out = finetune_ok(&["predict", "--model", s(m), "--image", s(&image), "--json"]);
        serde_json::from_str(out.trim()).unwrap()
    };
    let (merged, adapter) = (predict(&out), predict(&out.join("adapter")));
    let logits = |v: &serde_json::Value| -> Vec<f64> {
        serde_json::from_value(v["logits"].clone()).unwrap()
    };
    for (x, y) in logits(&merged).iter().zip(logits(&adapter)) {
        assert!((x - y).abs() < 1e-4, "merged {x} vs adapter {y}");
    }
    // The adapter's class names come from the timm export it sits in.
    assert_eq!(adapter["label"], merged["label"]);
    assert!(["circles", "squares"].contains(&adapter["label"].as_str().unwrap()));

    let shown = finetune_ok(&["inspect", s(&out.join("adapter")), "--json"]);
    let rows: serde_json::Value = serde_json::from_str(shown.trim()).unwrap();
    let row = rows["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "base_model.model.layer4.0.conv2.lora_B.weight")
        .unwrap();
    assert_eq!(row["training_name"], "layer4.0.conv2.lora_B.weight");
    assert_eq!(row["modifies"], "layer4.0.conv2.weight");
    std::fs::remove_dir_all(&dir).ok();
}
