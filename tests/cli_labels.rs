//! The classes of a run, through real `finetune train` processes on tiny checkpoints: the
//! training data's labels decide; a checkpoint trained for other labels gets a new head (one
//! line lists old → new), one trained for the same labels (any case, any order) keeps its head
//! and its order, `--num-labels` only checks the count — for text and images alike.

mod common;
#[path = "common/images.rs"]
mod images;

use candle_core::{DType, Device, Tensor};
use common::*;
use finetune_core::nn::init;
use finetune_core::Rng;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A tiny BERT classifier checkpoint for the classes `names` (`id2label`): the base weights of
/// [`write_tiny_bert`] and a random classifier. Returns the classifier's weight.
fn write_named_bert(dir: &Path, names: &[&str]) -> Tensor {
    let mut weights: Vec<(String, Tensor)> = write_tiny_bert(dir, 11).into_iter().collect();
    let mut rng = Rng::seed_from_u64(5);
    let n = names.len();
    let w = init::normal(&[n, 16], 0.0, 0.5, &mut rng, DType::F32, &Device::Cpu).unwrap();
    let b = init::normal(&[n], 0.0, 0.5, &mut rng, DType::F32, &Device::Cpu).unwrap();
    weights.push(("classifier.weight".into(), w.clone()));
    weights.push(("classifier.bias".into(), b));
    finetune_core::safetensors_io::save_tensors(&dir.join("model.safetensors"), &weights).unwrap();
    let mut config = read_json(&dir.join("config.json"));
    config["id2label"] = names
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), serde_json::json!(l)))
        .collect();
    config["label2id"] = names
        .iter()
        .enumerate()
        .map(|(i, l)| (l.to_string(), serde_json::json!(i)))
        .collect();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    w
}

struct Text {
    dir: PathBuf,
    model: PathBuf,
    train: PathBuf,
}

/// A folder with a named BERT checkpoint for `names` and toy `neg`/`pos` training data.
fn text_fixture(tag: &str, names: &[&str]) -> (Text, Tensor) {
    let dir = tmpdir(tag);
    let (model, train) = (dir.join("model"), dir.join("train.csv"));
    let head = write_named_bert(&model, names);
    write_sentiment_csv(&train, 24, 1);
    (Text { dir, model, train }, head)
}

fn text_train(f: &Text, extra: &[&str]) -> Output {
    let out = f.dir.join("out");
    let mut args = vec![
        "train",
        "--task",
        "text-classification",
        "--model",
        f.model.to_str().unwrap(),
        "--train",
        f.train.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--batch-size",
        "8",
        "--max-length",
        "16",
        "--max-steps",
        "1",
        "--no-progress",
    ];
    args.extend(extra);
    finetune(&args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output) -> String {
    let err = stderr(out);
    assert!(out.status.success(), "finetune failed:\n{err}");
    err
}

#[test]
fn named_checkpoint_with_other_labels_gets_a_new_head_for_the_data() {
    let (f, _) = text_fixture("labels-new-head", &["adult", "animals", "art"]);
    let err = assert_ok(&text_train(&f, &[]));
    let line: Vec<&str> = err.lines().filter(|l| l.starts_with("labels:")).collect();
    assert_eq!(line.len(), 1, "one line about the head:\n{err}");
    assert!(
        line[0].contains("new head")
            && line[0].contains("[adult, animals, art]")
            && line[0].contains("→ [neg, pos]"),
        "the line lists old → new: {}",
        line[0]
    );
    let out = f.dir.join("out");
    let config = read_json(&out.join("config.json"));
    assert_eq!(
        config["id2label"],
        serde_json::json!({"0": "neg", "1": "pos"})
    );
    let weights = load_tensors(&out.join("model.safetensors"));
    assert_eq!(weights["classifier.weight"].dims(), &[2, 16]);
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[test]
fn the_checkpoints_labels_in_another_case_and_order_keep_the_head_and_its_order() {
    let (f, head) = text_fixture("labels-keep-head", &["POS", "Neg"]);
    // The head does not train, so the exported one is the checkpoint's, row for row.
    let err = assert_ok(&text_train(&f, &["--freeze", "classifier.*"]));
    assert!(!err.contains("new head"), "{err}");
    let out = f.dir.join("out");
    let config = read_json(&out.join("config.json"));
    assert_eq!(
        config["id2label"],
        serde_json::json!({"0": "pos", "1": "neg"})
    );
    let weights = load_tensors(&out.join("model.safetensors"));
    assert!(
        same_bits(&weights["classifier.weight"], &head),
        "the exported head is not the checkpoint's in its order"
    );
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[test]
fn num_labels_disagreeing_with_the_data_names_both_counts() {
    let (f, _) = text_fixture("labels-num-mismatch", &["neg", "pos"]);
    let out = text_train(&f, &["--num-labels", "3"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("--num-labels 3") && errors[0].contains("2 labels [neg, pos]"),
        "{}",
        errors[0]
    );
    // The same count is accepted: the data's labels decide, and they are the checkpoint's.
    let err = assert_ok(&text_train(&f, &["--num-labels", "2", "--overwrite"]));
    assert!(!err.contains("new head"), "{err}");
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[test]
fn image_folder_of_named_classes_trains_with_num_labels_on_a_checkpoint_of_other_classes() {
    let dir = tmpdir("labels-image");
    let (model, train, out) = (dir.join("model"), dir.join("train"), dir.join("out"));
    images::write_tiny_resnet(&model, 2, Some(&["cat", "dog"]));
    images::write_shapes(&train, &["circles", "squares"], 4, 16, 1);
    let err = assert_ok(&image_train(&model, &train, &out, &["--num-labels", "2"]));
    let line: Vec<&str> = err.lines().filter(|l| l.starts_with("labels:")).collect();
    assert_eq!(line.len(), 1, "one line about the head:\n{err}");
    assert!(
        line[0].contains("new head")
            && line[0].contains("[cat, dog]")
            && line[0].contains("→ [circles, squares]"),
        "{}",
        line[0]
    );
    let config = read_json(&out.join("config.json"));
    assert_eq!(
        config["label_names"],
        serde_json::json!(["circles", "squares"])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn image_checkpoint_of_the_same_classes_keeps_its_head_and_its_order() {
    let dir = tmpdir("labels-image-keep");
    let (model, train, out) = (dir.join("model"), dir.join("train"), dir.join("out"));
    images::write_tiny_resnet(&model, 2, Some(&["Squares", "circles"]));
    images::write_shapes(&train, &["circles", "squares"], 4, 16, 1);
    let eval = train.to_str().unwrap();
    let extra = ["--eval", eval, "--freeze", "fc.*"];
    let err = assert_ok(&image_train(&model, &train, &out, &extra));
    assert!(!err.contains("new head"), "{err}");
    let config = read_json(&out.join("config.json"));
    assert_eq!(
        config["label_names"],
        serde_json::json!(["squares", "circles"])
    );
    let (before, after) = (
        load_tensors(&model.join("model.safetensors")),
        load_tensors(&out.join("model.safetensors")),
    );
    assert!(same_bits(&before["fc.weight"], &after["fc.weight"]));
    let _ = std::fs::remove_dir_all(&dir);
}

/// One quick image run of `model` on the folder `train` into `out`, then `extra`.
fn image_train(model: &Path, train: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--task",
        "image-classification",
        "--model",
        model.to_str().unwrap(),
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
    finetune(&args)
}
