//! Pinned training runs: two short `finetune train` runs (a tiny BERT on toy sentiment rows, a
//! tiny ResNet on toy images), each touching many settings at once, whose final weights must
//! match figures recorded in `tests/fixtures/pinned_runs.json`. A refactor of the trainer,
//! the settings, the models or the kernels that changes what a run computes fails here.
//!
//! The figures are per tensor (sum, position-weighted sum and sum of squares, in f64) and are
//! compared to 1e-5 relative: the bits of a run depend on the CPU's vector width (gemm's
//! blocking), so an exact hash would pin one machine, while any real change to a run (another
//! seed, order, schedule step, mask or rule) moves these figures by far more.
//!
//! To record new figures after a change that is meant to alter training results, run the test
//! with `FINETUNE_PIN_RECORD=1` and commit the JSON file with the change that explains it.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const PINS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/pinned_runs.json"
);

/// Per-tensor figures of a safetensors file: `[Σx, Σ x·(1 + i mod 7), Σx²]`.
fn figures(path: &Path) -> BTreeMap<String, [f64; 3]> {
    load_tensors(path)
        .into_iter()
        .filter(|(_, t)| t.dtype().is_float())
        .map(|(name, t)| {
            let v: Vec<f64> = t
                .to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let sum = v.iter().sum();
            let weighted = v
                .iter()
                .enumerate()
                .map(|(i, x)| x * (1 + i % 7) as f64)
                .sum();
            let squares = v.iter().map(|x| x * x).sum();
            (name, [sum, weighted, squares])
        })
        .collect()
}

/// Tensors whose exact gradient is zero, so that what training does to them is rounding
/// error, which differs between CPUs (AVX2 and AVX-512 GEMM kernels round differently): an
/// attention key's bias shifts every score of a query by the same amount, which the softmax
/// ignores. They are left out of the comparison.
fn rounding_driven(name: &str) -> bool {
    name.ends_with("attention.self.key.bias")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()) + 1e-9
}

/// Compares `run`'s figures with the pinned ones (or records them).
fn check(run: &str, got: BTreeMap<String, [f64; 3]>, eval_loss: f64) {
    let mut pins: BTreeMap<String, Value> = std::fs::read_to_string(PINS)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if std::env::var_os("FINETUNE_PIN_RECORD").is_some() {
        pins.insert(run.into(), json!({"eval_loss": eval_loss, "tensors": got}));
        std::fs::create_dir_all(Path::new(PINS).parent().unwrap()).unwrap();
        std::fs::write(PINS, serde_json::to_string_pretty(&pins).unwrap() + "\n").unwrap();
        return;
    }
    let pin = pins
        .get(run)
        .unwrap_or_else(|| panic!("{PINS} has no figures for `{run}`"));
    let want: BTreeMap<String, [f64; 3]> = serde_json::from_value(pin["tensors"].clone()).unwrap();
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{run}: the exported tensors changed"
    );
    let moved: Vec<String> = want
        .iter()
        .filter(|(n, _)| !rounding_driven(n))
        .filter(|(n, w)| !w.iter().zip(got[*n].iter()).all(|(a, b)| close(*a, *b)))
        .map(|(n, w)| format!("{n}: pinned {w:?}, got {:?}", got[n]))
        .collect();
    assert!(
        moved.is_empty(),
        "{run}: {} of {} tensors moved:\n{}",
        moved.len(),
        want.len(),
        moved.join("\n")
    );
    let pinned_loss = pin["eval_loss"].as_f64().unwrap();
    assert!(
        close(pinned_loss, eval_loss),
        "{run}: final eval loss {eval_loss}, pinned {pinned_loss}"
    );
}

fn report(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("report JSON: {e}\n{stdout}"))
}

fn final_eval_loss(report: &Value) -> f64 {
    report["summary"]["final_eval"]["loss"]
        .as_f64()
        .unwrap_or_else(|| panic!("no final eval loss in {report}"))
}

#[test]
fn text_run_matches_its_pinned_weights() {
    let dir = tmpdir("pin-text");
    let model = dir.join("tiny");
    write_tiny_bert(&model, 11);
    write_sentiment_csv(&dir.join("train.csv"), 56, 1);
    write_sentiment_csv(&dir.join("eval.csv"), 16, 2);
    let out = dir.join("out");
    let p = |x: &Path| x.to_str().unwrap().to_string();
    let args: Vec<String> = [
        "train",
        "--task",
        "text-classification",
        "--model",
        &p(&model),
        "--train",
        &p(&dir.join("train.csv")),
        "--eval",
        &p(&dir.join("eval.csv")),
        "--output",
        &p(&out),
        "--max-length",
        "16",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--grad-accum",
        "2",
        "--lr",
        "2e-3",
        "--warmup-ratio",
        "0.25",
        "--weight-decay",
        "0.01",
        "--head-lr",
        "5e-3",
        "--label-smoothing",
        "0.1",
        "--max-grad-norm",
        "0.5",
        "--freeze",
        "bert.embeddings.word_embeddings.*",
        "--save-steps",
        "3",
        "--seed",
        "7",
        "--no-progress",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let r = report(&finetune_ok(&args));
    check(
        "text",
        figures(&out.join("model.safetensors")),
        final_eval_loss(&r),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const CLASSES: [&str; 3] = ["across", "down", "spot"];

/// `per_class` 16×16 PNGs per class under `root/<class>/`: a horizontal bar, a vertical bar or
/// a centre spot in a random colour over noise.
fn write_image_folder(root: &Path, per_class: usize, seed: u64) {
    let mut rng = finetune_core::Rng::seed_from_u64(seed);
    for (c, name) in CLASSES.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let at = 4 + rng.below(8) as u32;
            let colour: [u8; 3] = std::array::from_fn(|_| 128 + rng.below(128) as u8);
            let noise: Vec<u8> = (0..16 * 16 * 3).map(|_| rng.below(60) as u8).collect();
            let img = image::RgbImage::from_fn(16, 16, |x, y| {
                let on = match c {
                    0 => y.abs_diff(at) <= 1,
                    1 => x.abs_diff(at) <= 1,
                    _ => x.abs_diff(8) <= 2 && y.abs_diff(8) <= 2,
                };
                let k = ((y * 16 + x) * 3) as usize;
                image::Rgb(std::array::from_fn(|ch| {
                    if on {
                        colour[ch]
                    } else {
                        noise[k + ch]
                    }
                }))
            });
            img.save(dir.join(format!("{i:02}.png"))).unwrap();
        }
    }
}

/// A tiny ResNet-18-layout checkpoint (widths 4-8, one block per stage, 16×16 RGB input) with
/// `num_classes` outputs, written as safetensors the way the exporter lays them out.
fn write_tiny_resnet(dir: &Path, num_classes: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = finetune_core::Rng::seed_from_u64(5);
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    let mut normal = |name: String, shape: &[usize]| {
        let t =
            finetune_core::nn::init::normal(shape, 0.0, 0.3, &mut rng, DType::F32, &Device::Cpu)
                .unwrap();
        tensors.push((name, t));
    };
    let bn = |name: &str, c: usize, out: &mut Vec<(String, Tensor)>| {
        let d = &Device::Cpu;
        out.push((
            format!("{name}.weight"),
            Tensor::ones(c, DType::F32, d).unwrap(),
        ));
        out.push((
            format!("{name}.bias"),
            Tensor::zeros(c, DType::F32, d).unwrap(),
        ));
        out.push((
            format!("{name}.running_mean"),
            Tensor::zeros(c, DType::F32, d).unwrap(),
        ));
        out.push((
            format!("{name}.running_var"),
            Tensor::ones(c, DType::F32, d).unwrap(),
        ));
        out.push((
            format!("{name}.num_batches_tracked"),
            Tensor::zeros((), DType::I64, d).unwrap(),
        ));
    };
    normal("conv1.weight".into(), &[4, 3, 7, 7]);
    let widths = [4, 8, 8, 8];
    let mut plan: Vec<(String, Vec<usize>)> = Vec::new();
    let mut bns: Vec<(String, usize)> = vec![("bn1".into(), 4)];
    let mut c_in = 4;
    for (s, &w) in widths.iter().enumerate() {
        let l = format!("layer{}.0", s + 1);
        plan.push((format!("{l}.conv1.weight"), vec![w, c_in, 3, 3]));
        bns.push((format!("{l}.bn1"), w));
        plan.push((format!("{l}.conv2.weight"), vec![w, w, 3, 3]));
        bns.push((format!("{l}.bn2"), w));
        if s > 0 || c_in != w {
            plan.push((format!("{l}.downsample.0.weight"), vec![w, c_in, 1, 1]));
            bns.push((format!("{l}.downsample.1"), w));
        }
        c_in = w;
    }
    for (n, shape) in plan {
        normal(n, &shape);
    }
    normal("fc.weight".into(), &[num_classes, 8]);
    normal("fc.bias".into(), &[num_classes]);
    for (n, c) in bns {
        bn(&n, c, &mut tensors);
    }
    finetune_core::safetensors_io::save_tensors(&dir.join("model.safetensors"), &tensors).unwrap();
    let config = json!({
        "architecture": "resnet18", "num_classes": num_classes, "num_features": 8,
        "model_args": {"layers": [1, 1, 1, 1], "channels": [4, 8, 8, 8]}, "stem_channels": 4,
        "pretrained_cfg": {"input_size": [3, 16, 16], "crop_pct": 1.0,
                           "interpolation": "bilinear",
                           "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
}

#[test]
fn image_run_matches_its_pinned_weights() {
    let dir = tmpdir("pin-image");
    let (model, train, eval): (PathBuf, PathBuf, PathBuf) =
        (dir.join("tiny"), dir.join("train"), dir.join("eval"));
    write_tiny_resnet(&model, 3);
    write_image_folder(&train, 8, 1);
    write_image_folder(&eval, 4, 2);
    let out = dir.join("out");
    let p = |x: &Path| x.to_str().unwrap().to_string();
    let args: Vec<String> = [
        "train",
        "--task",
        "image-classification",
        "--model",
        &p(&model),
        "--train",
        &p(&train),
        "--eval",
        &p(&eval),
        "--output",
        &p(&out),
        "--epochs",
        "3",
        "--batch-size",
        "6",
        "--eval-batch-size",
        "5",
        "--optimizer",
        "sgd",
        "--momentum",
        "0.9",
        "--nesterov",
        "--lr",
        "2e-2",
        "--schedule",
        "cosine",
        "--warmup-steps",
        "2",
        "--layer-lr-decay",
        "0.7",
        "--weight-decay",
        "1e-4",
        "--augment",
        "light",
        "--dropout",
        "0.2",
        "--seed",
        "3",
        "--no-progress",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let r = report(&finetune_ok(&args));
    check(
        "image",
        figures(&out.join("model.safetensors")),
        final_eval_loss(&r),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
