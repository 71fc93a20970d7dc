//! The input size of an image run, through real `finetune train` processes: an architecture
//! name trains at the training images' size (the most common one when they differ), a
//! checkpoint keeps its configured size unless `--image-size` says otherwise; the run prints
//! the size and why, and records it in `run_config.json`.

mod common;
#[path = "common/images.rs"]
mod images;

use common::*;
use std::path::Path;

/// `finetune train` for images on `model` and `train` into `out`: one step of 4 images, no
/// augmentation, then `extra`. Returns stderr; the run must succeed.
fn train(model: &str, train: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--task",
        "image-classification",
        "--model",
        model,
        "--train",
        train.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--batch-size",
        "4",
        "--max-steps",
        "1",
        "--augment",
        "none",
        "--no-progress",
    ];
    args.extend(extra);
    let run = finetune(&args);
    let err = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "finetune {args:?} failed:\n{err}");
    err
}

/// The `input:` line of a run's stderr.
fn input_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("input: "))
        .collect();
    assert_eq!(lines.len(), 1, "one input line expected:\n{stderr}");
    lines[0]
}

fn recorded_size(out: &Path) -> serde_json::Value {
    read_json(&out.join("run_config.json"))["image_size"].clone()
}

#[test]
fn an_architecture_name_trains_at_the_training_images_size() {
    let dir = tmpdir("size-fresh");
    let (data, out) = (dir.join("train"), dir.join("out"));
    images::write_shapes(&data, &["circles", "squares"], 4, 32, 1);
    let err = train("resnet18", &data, &out, &[]);
    assert_eq!(
        input_line(&err),
        "input: 3×32×32 (the training images' size)"
    );
    assert_eq!(recorded_size(&out), 32);
    let config = read_json(&out.join("config.json"));
    assert_eq!(
        config["pretrained_cfg"]["input_size"],
        serde_json::json!([3, 32, 32])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn images_of_several_sizes_train_at_the_most_common_one() {
    let dir = tmpdir("size-mixed");
    let (data, out) = (dir.join("train"), dir.join("out"));
    images::write_shapes(&data, &["a"], 5, 24, 1);
    images::write_shapes(&data, &["b"], 3, 32, 2);
    let err = train("resnet18", &data, &out, &[]);
    let line = input_line(&err);
    assert!(
        line.starts_with("input: 3×24×24 (the most common size") && line.contains("5 of 8"),
        "{line}"
    );
    assert_eq!(recorded_size(&out), 24);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_checkpoint_keeps_its_size_unless_image_size_is_given() {
    let dir = tmpdir("size-checkpoint");
    let (model, data) = (dir.join("model"), dir.join("train"));
    images::write_tiny_resnet(&model, 2, None);
    images::write_shapes(&data, &["circles", "squares"], 4, 32, 1);
    let own = dir.join("own");
    let err = train(model.to_str().unwrap(), &data, &own, &[]);
    assert_eq!(
        input_line(&err),
        "input: 3×16×16 (the checkpoint's configuration)"
    );
    assert_eq!(recorded_size(&own), 16);
    let given = dir.join("given");
    let err = train(
        model.to_str().unwrap(),
        &data,
        &given,
        &["--image-size", "24"],
    );
    assert_eq!(input_line(&err), "input: 3×24×24 (--image-size)");
    assert_eq!(recorded_size(&given), 24);
    let _ = std::fs::remove_dir_all(&dir);
}
