//! `finetune bench ops`: the JSON schema and the table, at tiny shapes (hidden `--tiny` flag;
//! the real shapes take minutes), and argument errors.

use std::process::Command;

fn finetune(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_finetune"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn json_has_op_shape_fused_s_composed_s_for_every_op() {
    let out = finetune(&["bench", "ops", "--json", "--tiny", "--runs", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let rows = v.as_array().expect("a JSON array");
    assert!(rows.len() >= 8, "{rows:?}");
    for row in rows {
        let obj = row.as_object().expect("objects");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["composed_s", "fused_s", "op", "shape"]);
        assert!(obj["op"].is_string());
        let shape = obj["shape"].as_array().expect("shape is an array");
        assert!(!shape.is_empty() && shape.iter().all(|d| d.as_u64().is_some_and(|d| d > 0)));
        for k in ["fused_s", "composed_s"] {
            let s = obj[k].as_f64().expect("seconds are numbers");
            assert!(s >= 0.0 && s.is_finite(), "{k} = {s}");
        }
    }
    let ops: Vec<&str> = rows.iter().map(|r| r["op"].as_str().unwrap()).collect();
    for name in ["layer_norm", "softmax_last_dim", "gelu", "cross_entropy"] {
        assert!(ops.contains(&name), "{name} missing from {ops:?}");
    }
    for prefix in ["max_pool2d", "conv2d", "batch_norm_train"] {
        assert!(
            ops.iter().any(|o| o.starts_with(prefix)),
            "{prefix}: {ops:?}"
        );
    }
}

#[test]
fn table_names_each_op_and_the_speedup() {
    let out = finetune(&["bench", "ops", "--tiny", "--runs", "1"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("fused (ms)") && text.contains("speedup"),
        "{text}"
    );
    assert!(
        text.contains("layer_norm") && text.contains("cross_entropy"),
        "{text}"
    );
}

#[test]
fn zero_runs_is_a_clear_error() {
    let out = finetune(&["bench", "ops", "--tiny", "--runs", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--runs"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn tiny_flag_is_hidden_from_help() {
    let out = finetune(&["bench", "ops", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--json") && !help.contains("--tiny"),
        "{help}"
    );
}

/// The keys `bench train --json` promises (more may follow).
const TRAIN_KEYS: [&str; 8] = [
    "config",
    "mode",
    "batch",
    "median_s",
    "samples_per_s",
    "gflop_s",
    "peak_rss_mb",
    "baseline_median_s",
];

fn train_json(args: &[&str]) -> serde_json::Map<String, serde_json::Value> {
    let mut all = vec!["bench", "train", "--steps", "1", "--warmup", "0", "--json"];
    all.extend_from_slice(args);
    let out = finetune(&all);
    assert!(
        out.status.success(),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let obj = v.as_object().expect("one JSON object").clone();
    for k in TRAIN_KEYS {
        assert!(obj.contains_key(k), "{k} missing from {obj:?}");
    }
    for k in ["median_s", "samples_per_s", "gflop_s"] {
        let x = obj[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} is a number: {obj:?}"));
        assert!(x > 0.0 && x.is_finite(), "{k} = {x}");
    }
    obj
}

#[test]
fn train_json_for_tiny_text_models_with_baseline() {
    for config in ["minilm", "distilbert", "roberta-base"] {
        let obj = train_json(&[
            "--model-config",
            config,
            "--tiny",
            "--batch",
            "2",
            "--seq",
            "8",
            "--mode",
            "last2",
            "--baseline",
        ]);
        assert_eq!(obj["config"], config);
        assert_eq!(obj["mode"], "last2");
        assert_eq!(obj["device"], "cpu");
        assert_eq!(obj["batch"], 2);
        let base = obj["baseline_median_s"].as_f64().expect("baseline timed");
        assert!(base > 0.0);
        // Each side's peak comes from a process of its own.
        for k in ["peak_rss_mb", "baseline_peak_rss_mb"] {
            let mb = obj[k].as_f64().unwrap_or_else(|| panic!("{k}: {obj:?}"));
            assert!(mb > 1.0, "{config} {k} = {mb}");
        }
    }
}

#[test]
fn train_json_for_a_small_resnet_without_baseline() {
    let obj = train_json(&[
        "--model-config",
        "resnet18",
        "--batch",
        "2",
        "--image",
        "32",
    ]);
    assert_eq!(obj["config"], "resnet18");
    assert_eq!(obj["mode"], "full");
    assert!(obj["baseline_median_s"].is_null(), "{obj:?}");
    assert!(obj["peak_rss_mb"].as_f64().is_some_and(|m| m > 1.0));
}

#[test]
fn train_table_shows_both_sides_and_the_speedup() {
    let out = finetune(&[
        "bench",
        "train",
        "--model-config",
        "bert-base",
        "--tiny",
        "--batch",
        "2",
        "--seq",
        "4",
        "--mode",
        "frozen",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--baseline",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for want in ["this project", "plain candle", "speed-up", "GFLOP", "load"] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
}

#[test]
fn train_argument_errors_are_clear() {
    for (args, want) in [
        (
            vec!["--model-config", "resnet18", "--batch", "2", "--seq", "8"],
            "--image",
        ),
        (
            vec!["--model-config", "minilm", "--batch", "2", "--image", "8"],
            "--seq",
        ),
        (
            vec!["--model-config", "gpt2", "--batch", "2", "--seq", "8"],
            "gpt2",
        ),
        (
            vec![
                "--model-config",
                "minilm",
                "--batch",
                "2",
                "--seq",
                "8",
                "--mode",
                "half",
            ],
            "half",
        ),
        (
            vec!["--model-config", "minilm", "--batch", "0", "--seq", "8"],
            "--batch",
        ),
        (
            vec![
                "--model-config",
                "minilm",
                "--tiny",
                "--batch",
                "2",
                "--seq",
                "8",
                "--device",
                "cuda",
            ],
            "--features cuda",
        ),
        (
            vec![
                "--model-config",
                "minilm",
                "--batch",
                "2",
                "--seq",
                "8",
                "--device",
                "tpu",
            ],
            "tpu",
        ),
    ] {
        let mut all = vec!["bench", "train"];
        all.extend(args.iter().copied());
        let out = finetune(&all);
        assert!(!out.status.success(), "{all:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(want) && !err.contains("panicked"),
            "{all:?}: {err}"
        );
    }
}

#[test]
fn data_json_times_the_training_pipeline_the_loop_and_decoding() {
    let out = finetune(&["bench", "data", "--images", "6", "--batch", "4", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["images"], 6);
    assert_eq!(v["batch"], 4);
    assert!(v["threads"].as_u64().unwrap() >= 1);
    for key in [
        "loop_images_per_s",
        "decode_images_per_s",
        "pipeline_images_per_s",
    ] {
        let rate = v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"));
        assert!(rate.is_finite() && rate > 0.0, "{key}: {rate}");
    }
}
