//! Multi-label image classification through the CLI: a `path,labels` CSV of generated images
//! whose `;`-separated labels are learnable (`red` from the colour, `circle` / `square` from
//! the shape) trains a tiny ResNet and the tiny ViT fixture with BCE-with-logits (told from
//! the labels); `config.json` holds `problem_type`, `eval --json` gives the multi-label
//! metrics and a loss equal to PyTorch's BCE over the logits `predict --json` prints, predict
//! lists the labels reaching `--threshold`, `--pos-weight auto` is recorded; an unknown eval
//! label, mixup, regression and an ImageFolder asked for multi-label are one error line each,
//! no model written.

mod common;
#[path = "common/images.rs"]
mod images;
#[path = "robustness/support.rs"]
#[allow(dead_code)]
mod support;

use common::*;
use images::write_tiny_resnet;
use serde_json::Value;
use std::path::{Path, PathBuf};
use support::{assert_clean_failure, assert_no_model_written};

/// The labels a generated image can have, sorted (the run's label order).
const LABELS: [&str; 3] = ["circle", "red", "square"];

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// `n` `size`×`size` PNGs under `dir/img/` and `dir/{name}` listing them as `path,labels`: a
/// red or gray circle or square over dark noise, labelled `red` when red and with its shape.
/// Returns each image's path and labels.
fn write_list(
    dir: &Path,
    name: &str,
    n: usize,
    size: u32,
    seed: u64,
) -> Vec<(PathBuf, Vec<&'static str>)> {
    let mut rng = finetune_core::Rng::seed_from_u64(seed);
    std::fs::create_dir_all(dir.join("img")).unwrap();
    let mut rows = Vec::new();
    for i in 0..n {
        let (red, circle) = (rng.below(2) == 0, rng.below(2) == 0);
        let r = size / 4;
        let cx = r + rng.below(u64::from(size - 2 * r) + 1) as u32;
        let cy = r + rng.below(u64::from(size - 2 * r) + 1) as u32;
        let noise: Vec<u8> = (0..size * size).map(|_| rng.below(50) as u8).collect();
        let img = image::RgbImage::from_fn(size, size, |x, y| {
            let (dx, dy) = (x.abs_diff(cx), y.abs_diff(cy));
            let on = if circle {
                dx * dx + dy * dy <= r * r
            } else {
                dx <= r && dy <= r
            };
            let v = noise[(y * size + x) as usize];
            match (on, red) {
                (true, true) => image::Rgb([230, 30, 30]),
                (true, false) => image::Rgb([150, 150, 150]),
                _ => image::Rgb([v, v, v]),
            }
        });
        let path = dir.join(format!("img/{name}-{i:03}.png"));
        img.save(&path).unwrap();
        let mut labels = vec![if circle { "circle" } else { "square" }];
        if red {
            labels.push("red");
        }
        rows.push((path, labels));
    }
    let body: String = rows
        .iter()
        .map(|(p, l)| {
            format!(
                "img/{},{}\n",
                p.file_name().unwrap().to_str().unwrap(),
                l.join(";")
            )
        })
        .collect();
    std::fs::write(dir.join(name), format!("path,labels\n{body}")).unwrap();
    rows
}

/// `finetune train` of `model` on `train` (evaluated on `eval`) into `out`, then `extra`.
fn train_args(model: &Path, train: &Path, eval: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
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
        "--label-column",
        "labels",
        "--augment",
        "none",
        "--batch-size",
        "8",
        "--no-progress",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

fn eval_json(out: &Path, data: &Path) -> Value {
    let a = ["eval", "--model", &s(out), "--data", &s(data), "--json"];
    serde_json::from_str(&finetune_ok(&a)).unwrap()
}

/// `predict --json` of `images`: one object per image.
fn predict(out: &Path, images: &[PathBuf], extra: &[&str]) -> Vec<Value> {
    let mut a = vec![
        "predict".to_string(),
        "--model".into(),
        s(out),
        "--json".into(),
    ];
    a.push("--image".into());
    a.extend(images.iter().map(|p| s(p)));
    a.extend(extra.iter().map(|x| x.to_string()));
    finetune_ok(&a)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// PyTorch's `BCEWithLogitsLoss()` (mean over images and labels) of `preds` against `truth`.
fn bce(truth: &[(PathBuf, Vec<&str>)], preds: &[Value]) -> f64 {
    let mut sum = 0.0;
    for ((_, labels), p) in truth.iter().zip(preds) {
        for (i, x) in json_logits(p).into_iter().enumerate() {
            let t = f64::from(u8::from(labels.contains(&LABELS[i])));
            sum -= t * sigmoid(x).ln() + (1.0 - t) * (1.0 - sigmoid(x)).ln();
        }
    }
    sum / (truth.len() * LABELS.len()) as f64
}

/// The metrics a multi-label eval gives, and the loss: BCE of predict's logits.
fn check_eval(out: &Path, eval: &Path, truth: &[(PathBuf, Vec<&str>)]) -> Value {
    let metrics = eval_json(out, eval);
    for key in [
        "exact_match",
        "micro_f1",
        "macro_f1",
        "micro_precision",
        "micro_recall",
    ] {
        assert!(metrics[key].is_f64(), "{key} missing: {metrics}");
    }
    assert!(metrics.get("accuracy").is_none(), "{metrics}");
    let per_label: Vec<&str> = metrics["per_label_f1"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    assert_eq!(per_label, LABELS);
    let images: Vec<PathBuf> = truth.iter().map(|(p, _)| p.clone()).collect();
    let preds = predict(out, &images, &[]);
    let (loss, want) = (metrics["loss"].as_f64().unwrap(), bce(truth, &preds));
    assert!(
        (loss - want).abs() < 1e-4,
        "eval loss {loss} vs BCE of the logits {want}"
    );
    for p in &preds {
        assert_threshold_labels(p, &LABELS, 0.5);
    }
    metrics
}

#[test]
fn a_resnet_learns_labels_from_a_list_csv() {
    let dir = tmpdir("image-multilabel");
    let model = dir.join("resnet");
    write_tiny_resnet(&model, 2, None);
    let train = write_list(&dir, "train.csv", 96, 16, 1);
    let truth = write_list(&dir, "eval.csv", 24, 16, 2);
    let (train_csv, eval_csv, out) = (dir.join("train.csv"), dir.join("eval.csv"), dir.join("out"));
    let extra = ["--epochs", "12", "--lr", "1e-2", "--pos-weight", "auto"];
    finetune_ok(&train_args(&model, &train_csv, &eval_csv, &out, &extra));

    // timm's config.json with transformers' `problem_type` (timm ignores it); the labels sorted.
    let config = read_json(&out.join("config.json"));
    assert_eq!(config["problem_type"], "multi_label_classification");
    assert_eq!(config["label_names"], serde_json::json!(LABELS));
    // The run records the problem it told from the labels, and auto's negatives / positives.
    let run = read_json(&out.join("run_config.json"));
    assert_eq!(run["problem_type"], "multi_label_classification");
    let got: Vec<f64> = run["pos_weight"]
        .as_str()
        .unwrap()
        .split(',')
        .map(|w| w.parse().unwrap())
        .collect();
    for (g, label) in got.iter().zip(LABELS) {
        let p = train.iter().filter(|(_, l)| l.contains(&label)).count();
        let want = (train.len() - p) as f64 / p as f64;
        assert!((g - want).abs() < 1e-12, "{label}: {g} vs {want}");
    }

    // The export loads back multi-label: eval's loss is BCE over predict's logits.
    let metrics = check_eval(&out, &eval_csv, &truth);
    // Colour and shape are learned: every label's F1 is high, the loss far below an untrained
    // head's ln 2 ≈ 0.69.
    for label in metrics["per_label_f1"].as_array().unwrap() {
        assert!(label[1].as_f64().unwrap() >= 0.8, "{metrics}");
    }
    assert!(metrics["loss"].as_f64().unwrap() < 0.45, "{metrics}");
    let images: Vec<PathBuf> = truth.iter().take(4).map(|(p, _)| p.clone()).collect();
    for threshold in ["0", "0.3", "0.9", "1"] {
        for p in predict(&out, &images, &["--threshold", threshold]) {
            assert_threshold_labels(&p, &LABELS, threshold.parse().unwrap());
        }
    }
    assert_eq!(
        predict(&out, &images[..1], &["--threshold", "0"])[0]["labels"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_vit_fixture_trains_multi_label_and_loads_back() {
    let dir = tmpdir("image-multilabel-vit");
    let vit = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vit");
    write_list(&dir, "train.csv", 32, 20, 3);
    let truth = write_list(&dir, "eval.csv", 8, 20, 4);
    let (train_csv, eval_csv, out) = (dir.join("train.csv"), dir.join("eval.csv"), dir.join("out"));
    let extra = [
        "--epochs",
        "2",
        "--problem-type",
        "multi_label_classification",
    ];
    finetune_ok(&train_args(&vit, &train_csv, &eval_csv, &out, &extra));
    let config = read_json(&out.join("config.json"));
    assert_eq!(config["problem_type"], "multi_label_classification");
    assert_eq!(config["id2label"]["2"], "square");
    check_eval(&out, &eval_csv, &truth);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_labels_and_single_label_recipes_are_refused() {
    let dir = tmpdir("image-multilabel-refused");
    let model = dir.join("resnet");
    write_tiny_resnet(&model, 2, None);
    write_list(&dir, "train.csv", 16, 16, 5);
    let (train, eval, out) = (dir.join("train.csv"), dir.join("eval.csv"), dir.join("out"));
    let refused = |train: &Path, extra: &[&str], needles: &[&str]| {
        let run = finetune(&train_args(&model, train, &eval, &out, extra));
        assert_clean_failure(&run, needles);
        assert_no_model_written(&out);
    };
    // An eval label the training data lacks names the file and the row.
    let img = "img/train.csv-000.png";
    std::fs::write(&eval, format!("path,labels\n{img},red\n{img},red;green\n")).unwrap();
    let unknown = [
        "eval.csv",
        "row 2",
        "`green`",
        "not one of the training labels",
    ];
    refused(&train, &["--epochs", "1"], &unknown);
    // Mixup blends single-label targets: refused whether multi-label is told or given.
    std::fs::write(&eval, format!("path,labels\n{img},red\n")).unwrap();
    refused(
        &train,
        &["--mixup", "0.2"],
        &["--mixup", "multi_label_classification"],
    );
    let given = [
        "--cutmix",
        "1",
        "--problem-type",
        "multi_label_classification",
    ];
    refused(&train, &given, &["--cutmix", "multi_label_classification"]);
    let regression = ["--problem-type", "regression"];
    refused(&train, &regression, &["regression", "image classification"]);
    // Other image formats are single-label.
    let folder = dir.join("folder");
    images::write_shapes(&folder, &["circle", "square"], 2, 16, 6);
    let multi = ["--problem-type", "multi_label_classification"];
    refused(&folder, &multi, &["multi-label", "CSV list"]);
    std::fs::remove_dir_all(&dir).ok();
}
