//! timm's recipes through `finetune train`: mixup + cutmix + random erasing + RandAugment +
//! model EMA on a
//! tiny ResNet, recorded in `run_config.json`, evaluated as `eval_ema_*`, resumed from a
//! mid-run checkpoint to the same bits; bad values refused with one line naming the flag; the
//! image recipes refused for text.

mod common;
#[path = "common/images.rs"]
mod images;

use common::*;
use images::{write_shapes, write_tiny_resnet};
use std::path::Path;

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// The one `error:` line of a usage error (exit 2), which must contain `needle`.
fn usage_error(args: &[String], needle: &str) {
    let run = finetune(args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{needle}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(lines.len(), 1, "one line expected:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(needle), "`{needle}` missing:\n{stderr}");
}

fn recipe_args(model: &Path, train: &Path, eval: &Path, out: &Path) -> Vec<String> {
    [
        "train",
        "--task",
        "image-classification",
        "--model",
        &s(model),
        "--train",
        &s(train),
        "--eval",
        &s(eval),
        "--output",
        &s(out),
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--lr",
        "0.05",
        "--optimizer",
        "sgd",
        "--momentum",
        "0.9",
        "--mixup",
        "0.8",
        "--cutmix",
        "1.0",
        "--mixup-mode",
        "elem",
        "--mixup-switch-prob",
        "0.5",
        "--mixup-off-epoch",
        "1",
        "--smoothing",
        "0.1",
        "--reprob",
        "0.5",
        "--remode",
        "pixel",
        "--recount",
        "2",
        "--aa",
        "rand-m9-mstd0.5-inc1",
        "--model-ema",
        "--model-ema-decay",
        "0.9",
        "--model-ema-warmup",
        "--save-steps",
        "3",
        "--device",
        "cpu",
        "--no-progress",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

#[test]
fn image_recipes_train_record_and_resume_exactly() {
    let dir = tmpdir("recipes-run");
    let (model, train, eval) = (dir.join("tiny"), dir.join("train"), dir.join("eval"));
    write_tiny_resnet(&model, 2, Some(&["circle", "square"]));
    write_shapes(&train, &["circle", "square"], 6, 16, 1);
    write_shapes(&eval, &["circle", "square"], 3, 16, 2);
    let full = dir.join("full");
    finetune_ok(&recipe_args(&model, &train, &eval, &full));

    let rc = read_json(&full.join("run_config.json"));
    for (key, want) in [
        ("mixup", serde_json::json!(0.8)),
        ("cutmix", serde_json::json!(1.0)),
        ("mixup_mode", serde_json::json!("elem")),
        ("mixup_prob", serde_json::json!(1.0)),
        ("mixup_switch_prob", serde_json::json!(0.5)),
        ("mixup_off_epoch", serde_json::json!(1)),
        ("cutmix_minmax", serde_json::Value::Null),
        ("label_smoothing", serde_json::json!(0.1)),
        ("reprob", serde_json::json!(0.5)),
        ("remode", serde_json::json!("pixel")),
        ("recount", serde_json::json!(2)),
        ("aa", serde_json::json!("rand-m9-mstd0.5-inc1")),
        ("model_ema", serde_json::json!(true)),
        ("model_ema_decay", serde_json::json!(0.9)),
        ("model_ema_warmup", serde_json::json!(true)),
        ("export_ema", serde_json::json!(false)),
    ] {
        assert_eq!(rc[key], want, "run_config.json `{key}`");
    }
    let evals: Vec<serde_json::Value> = std::fs::read_to_string(full.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r.get("eval_loss").is_some())
        .collect();
    assert_eq!(evals.len(), 2);
    for r in &evals {
        assert!(r["eval_ema_accuracy"].is_number(), "{r}");
        assert!(r["eval_ema_loss"].as_f64().unwrap().is_finite(), "{r}");
    }
    assert_eq!(checkpoint_steps(&full), [3, 6]);
    assert!(full.join("checkpoint-3/ema.safetensors").is_file());

    // The step-3 checkpoint resumed in another folder: same weights and EMA, bit for bit.
    let resumed = dir.join("resumed");
    std::fs::create_dir_all(&resumed).unwrap();
    copy_dir(&full.join("checkpoint-3"), &resumed.join("checkpoint-3"));
    let mut args = recipe_args(&model, &train, &eval, &resumed);
    args.extend(["--resume".to_string(), "latest".to_string()]);
    finetune_ok(&args);
    assert_same_tensors(
        &full.join("model.safetensors"),
        &resumed.join("model.safetensors"),
    );
    assert_same_tensors(
        &full.join("checkpoint-6/ema.safetensors"),
        &resumed.join("checkpoint-6/ema.safetensors"),
    );

    // The recipes are part of the run: without them the weights differ.
    let plain = dir.join("plain");
    let args: Vec<String> = recipe_args(&model, &train, &eval, &plain)
        .into_iter()
        .take(21)
        .chain(["--device", "cpu", "--no-progress"].map(String::from))
        .collect();
    finetune_ok(&args);
    let a = load_tensors(&full.join("model.safetensors"));
    let b = load_tensors(&plain.join("model.safetensors"));
    assert!(
        a.iter().any(|(n, t)| !same_bits(t, &b[n])),
        "recipes changed nothing"
    );

    // --export-ema: the export is the last checkpoint's average.
    let exported = dir.join("exported");
    let mut args = recipe_args(&model, &train, &eval, &exported);
    args.push("--export-ema".into());
    finetune_ok(&args);
    let ema = load_tensors(&exported.join("checkpoint-6/ema.safetensors"));
    let export = load_tensors(&exported.join("model.safetensors"));
    for (name, t) in &ema {
        if let Some(e) = export.get(name) {
            let diff = (t.to_dtype(candle_core::DType::F64).unwrap()
                - e.to_dtype(candle_core::DType::F64).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
            assert_eq!(diff, 0.0, "`{name}` exported is not the EMA");
        }
    }
    assert!(ema.keys().filter(|n| export.contains_key(*n)).count() > 10);
}

#[test]
fn bad_recipe_values_are_one_line_naming_the_flag() {
    let dir = tmpdir("recipes-bad");
    let (model, train) = (dir.join("tiny"), dir.join("train"));
    write_tiny_resnet(&model, 2, Some(&["circle", "square"]));
    write_shapes(&train, &["circle", "square"], 2, 16, 1);
    let out = dir.join("out");
    let base: Vec<String> = [
        "train",
        "--task",
        "image-classification",
        "--model",
        &s(&model),
        "--train",
        &s(&train),
        "--output",
        &s(&out),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let cases: [(&[&str], &str); 13] = [
        (&["--aa", "rand-q3"], "--aa rand-q3: unknown section `q3`"),
        (&["--mixup=-1"], "--mixup must be >= 0, got -1"),
        (&["--cutmix=-0.5"], "--cutmix must be >= 0, got -0.5"),
        (
            &["--mixup-prob", "1.5"],
            "--mixup-prob must be in [0, 1], got 1.5",
        ),
        (
            &["--mixup-switch-prob", "2"],
            "--mixup-switch-prob must be in [0, 1]",
        ),
        (&["--reprob", "1.2"], "--reprob must be in [0, 1], got 1.2"),
        (&["--mixup-mode", "wild"], "--mixup-mode"),
        (&["--remode", "wild"], "--remode"),
        (
            &["--cutmix-minmax", "0.8,0.2"],
            "--cutmix-minmax takes LO,HI",
        ),
        (&["--recount", "0"], "--recount must be at least 1"),
        (
            &["--mixup-off-epoch", "2"],
            "--mixup-off-epoch needs --mixup, --cutmix or --cutmix-minmax",
        ),
        (
            &["--model-ema-decay", "1.5"],
            "--model-ema-decay must be in [0, 1], got 1.5",
        ),
        (&["--export-ema"], "--export-ema needs --model-ema"),
    ];
    for (extra, needle) in cases {
        let mut args = base.clone();
        args.extend(extra.iter().map(|a| a.to_string()));
        usage_error(&args, needle);
        assert!(!out.exists(), "{extra:?}: nothing may be written");
    }
}

#[test]
fn text_runs_refuse_the_image_recipes() {
    let dir = tmpdir("recipes-text");
    let model = dir.join("tiny-bert");
    write_tiny_bert(&model, 4);
    let train = dir.join("train.csv");
    write_sentiment_csv(&train, 16, 1);
    let out = dir.join("out");
    for flag in [
        ["--mixup", "0.2"],
        ["--reprob", "0.25"],
        ["--mixup-mode", "pair"],
    ] {
        let mut args = text_train_args(&model, &train, &out);
        args.extend(flag.map(String::from));
        usage_error(
            &args,
            &format!("{} does not apply to text classification", flag[0]),
        );
    }
}
