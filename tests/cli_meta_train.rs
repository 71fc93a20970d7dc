//! `finetune meta-train` end to end on a tiny ResNet and a small ImageFolder of shapes: a
//! meta-trained folder that `finetune train --model` fine-tunes on held-out classes, the same
//! bits from the same seed, the few-shot accuracies reported, and each bad value refused with
//! one line before any work (no output folder written).

mod common;
#[path = "common/images.rs"]
mod images;

use common::*;
use images::{write_shapes, write_tiny_resnet};
use std::path::{Path, PathBuf};

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

const CLASSES: [&str; 5] = ["a", "b", "c", "d", "e"];

/// A tiny ResNet and 6 images of each of five classes (16×16).
fn setup(tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = tmpdir(tag);
    let (base, data) = (dir.join("base"), dir.join("data"));
    write_tiny_resnet(&base, 2, None);
    write_shapes(&data, &CLASSES, 6, 16, 3);
    (dir, base, data)
}

fn meta_args(base: &Path, data: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "meta-train",
        "--model",
        &s(base),
        "--train",
        &s(data),
        "--output",
        &s(out),
        "--classes",
        "a,b,c",
        "--ways",
        "2",
        "--shots",
        "2",
        "--query-shots",
        "2",
        "--meta-steps",
        "3",
        "--meta-batch",
        "2",
        "--inner-steps",
        "2",
        "--inner-lr",
        "0.01",
        "--device",
        "cpu",
    ]
    .map(String::from)
    .into();
    // A flag given in `extra` replaces its value here.
    let mut rest = extra.iter();
    while let Some(flag) = rest.next() {
        match a.iter().position(|x| x == flag) {
            Some(i) if flag.starts_with("--") => a[i + 1] = rest.next().unwrap().to_string(),
            _ => a.push(flag.to_string()),
        }
    }
    a
}

#[test]
fn a_meta_trained_folder_fine_tunes_on_new_classes() {
    let (dir, base, data) = setup("meta-train");
    let out = dir.join("meta");
    let eval = ["--eval-classes", "d,e", "--eval-episodes", "3", "--json"];
    let json = finetune_ok(&meta_args(&base, &data, &out, &eval));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["summary"]["meta_steps"], 3);
    assert_eq!(report["summary"]["tasks"], 6);
    for k in ["before", "after"] {
        let acc = &report[k];
        assert_eq!(acc["episodes"], 3, "{report}");
        let mean = acc["mean"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&mean), "{report}");
    }
    for f in ["model.safetensors", "config.json", "meta_config.json"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // The body moved from the starting weights; the 2-way head is zero.
    let (start, meta) = (
        load_tensors(&base.join("model.safetensors")),
        load_tensors(&out.join("model.safetensors")),
    );
    assert!(meta
        .iter()
        .any(|(n, t)| !n.starts_with("fc.") && !same_bits(t, &start[n])));
    let fc = meta["fc.weight"]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(fc.len(), 2 * 8);
    assert!(fc.iter().all(|v| *v == 0.0));
    // The same seed gives the same bits.
    let again = dir.join("meta-again");
    finetune_ok(&meta_args(&base, &data, &again, &[]));
    assert_same_tensors(
        &out.join("model.safetensors"),
        &again.join("model.safetensors"),
    );
    // `finetune train` fine-tunes it on the held-out classes (a new head for them).
    let held_out = dir.join("held-out");
    for c in ["d", "e"] {
        copy_dir(&data.join(c), &held_out.join(c));
    }
    let tuned = dir.join("tuned");
    finetune_ok(&[
        "train",
        "--task",
        "image-classification",
        "--model",
        &s(&out),
        "--train",
        &s(&held_out),
        "--output",
        &s(&tuned),
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--no-progress",
    ]);
    let cfg = read_json(&tuned.join("config.json"));
    assert_eq!(cfg["label_names"], serde_json::json!(["d", "e"]), "{cfg}");
}

#[test]
fn bad_values_are_one_line_each_before_any_work() {
    let (dir, base, data) = setup("meta-train-bad");
    let out = dir.join("meta");
    let cases: [(&[&str], &str); 10] = [
        (&["--ways", "1"], "--ways must be at least 2"),
        (&["--shots", "0"], "--shots must be at least 1"),
        (&["--ways", "4"], "only 3 classes"),
        (&["--meta-lr", "0"], "--meta-lr must be in (0, 1]"),
        (&["--meta-lr=-1"], "--meta-lr must be in (0, 1]"),
        (&["--meta-batch", "0"], "--meta-batch must be at least 1"),
        (&["--inner-lr", "0"], "--inner-lr must be a positive number"),
        (
            &["--shots", "4", "--query-shots", "3"],
            "class \"a\" has 6 examples",
        ),
        (&["--classes", "a,z"], "\"z\" is not a class of --train"),
        (&["--eval-classes", "c,d"], "class \"c\" is in both"),
    ];
    for (extra, want) in cases {
        let r = finetune(&meta_args(&base, &data, &out, extra));
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{extra:?} succeeded");
        assert!(err.contains(want), "{extra:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "{extra:?} wrote {}", out.display());
    }
    // A usage error (no data needed to tell) exits with status 2.
    let r = finetune(&meta_args(&base, &data, &out, &["--ways", "1"]));
    assert_eq!(r.status.code(), Some(2));
    // A non-empty output is refused without --overwrite.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "x").unwrap();
    let r = finetune(&meta_args(&base, &data, &out, &[]));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--overwrite"));
    assert!(out.join("keep.txt").is_file());
}
