//! The device-generic path (`FINETUNE_OPS=generic`): candle's composed ops and the
//! optimizers' tensor-op updates, as every step runs on a GPU. Short text and image runs on it
//! follow the fused CPU path's falling losses and end at the same weights, within the
//! rounding differences of the two op sets (stated per test), and their exports predict the
//! same logits there and on the CPU's fused path, so the GPU's code path runs in every test run.
//!
//! The generic runs train on `FINETUNE_TEST_DEVICE` (`cpu` by default; `cuda`, `cuda:N` or
//! `metal` in a build with that feature: `scripts/gpu-check.sh`).

mod common;
#[path = "common/images.rs"]
mod images;

use common::{
    assert_same_tensors, copy_dir, finetune_cmd, json_logits, load_tensors, read_json,
    text_train_args, tmpdir, write_sentiment_csv, write_tiny_bert,
};
use images::{write_shapes, write_tiny_resnet};
use serde_json::Value;
use std::path::Path;

/// The device the generic runs train on, from `FINETUNE_TEST_DEVICE`.
fn device() -> String {
    std::env::var("FINETUNE_TEST_DEVICE").unwrap_or_else(|_| "cpu".into())
}

/// `args` for the generic run: on the test device.
fn on_device(mut args: Vec<String>) -> Vec<String> {
    args.extend(["--device".to_string(), device()]);
    args
}

/// Runs `finetune ARGS` with `FINETUNE_OPS` set to `ops` (`None`: unset), which must succeed;
/// returns its stdout.
fn run(args: &[String], ops: Option<&str>) -> String {
    let mut cmd = finetune_cmd();
    cmd.args(args).env_remove("FINETUNE_OPS");
    if let Some(o) = ops {
        cmd.env("FINETUNE_OPS", o);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `predict --json` on the generic run's export, `input` its input flags: the logits on the
/// test device (generic path) equal those of the CPU's fused path, to `tol` (absolute).
fn same_predictions(model: &Path, input: &[&str], tol: f64) {
    let args = |dev: &str| -> Vec<String> {
        let mut a = vec![
            "predict".to_string(),
            "--model".into(),
            model.display().to_string(),
        ];
        a.extend(input.iter().map(|s| s.to_string()));
        a.extend(["--json".into(), "--device".into(), dev.into()]);
        a
    };
    let logits = |out: String| -> Vec<f64> {
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        json_logits(if v.is_array() { &v[0] } else { &v })
    };
    let on_dev = logits(run(&args(&device()), Some("generic")));
    let on_cpu = logits(run(&args("cpu"), None));
    assert_eq!(on_dev.len(), on_cpu.len());
    for (a, b) in on_dev.iter().zip(&on_cpu) {
        assert!((a - b).abs() <= tol, "logits {on_dev:?} vs {on_cpu:?}");
    }
}

fn losses(out: &Path) -> Vec<f64> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).unwrap()["loss"].as_f64())
        .collect()
}

/// The two runs' losses agree to `tol` (relative) step by step, and every exported tensor to
/// `tol` of its largest magnitude.
fn same_run(a: &Path, b: &Path, tol: f64) {
    same_losses(a, b, tol);
    same_weights(a, b, tol);
}

/// The two runs' losses agree to `tol` (relative) step by step, and the second run's fall.
fn same_losses(a: &Path, b: &Path, tol: f64) {
    let (la, lb) = (losses(a), losses(b));
    assert!(la.len() >= 4 && la.len() == lb.len(), "{la:?} vs {lb:?}");
    for (x, y) in la.iter().zip(&lb) {
        assert!(
            (x - y).abs() <= tol * x.abs().max(1.0),
            "losses {la:?} vs {lb:?}"
        );
    }
    let third = la.len() / 3;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&lb[la.len() - third..]) < mean(&lb[..third]),
        "the loss did not fall: {lb:?}"
    );
}

/// Every exported tensor of the two runs agrees to `tol` of its largest magnitude, and some
/// differ (bit-identical weights would mean the second run took the first one's path).
fn same_weights(a: &Path, b: &Path, tol: f64) {
    let (ta, tb) = (
        load_tensors(&a.join("model.safetensors")),
        load_tensors(&b.join("model.safetensors")),
    );
    assert_eq!(ta.len(), tb.len());
    let mut differs = false;
    for (name, x) in &ta {
        let y = &tb[name];
        if !x.dtype().is_float() {
            continue;
        }
        let x = x
            .flatten_all()
            .unwrap()
            .to_dtype(candle_core::DType::F64)
            .unwrap();
        let y = y
            .flatten_all()
            .unwrap()
            .to_dtype(candle_core::DType::F64)
            .unwrap();
        let scale = x
            .abs()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
            .max(1e-6);
        let diff = (x - y)
            .unwrap()
            .abs()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(
            diff <= tol * scale,
            "{name}: weights differ by {diff} (scale {scale})"
        );
        differs |= diff > 0.0;
    }
    assert!(
        differs,
        "the two runs ended at bit-identical weights: the second path never ran"
    );
}

/// The text runs' flags after the model, data and output: 36 AdamW steps, each logged.
const TEXT_RUN: [&str; 13] = [
    "--epochs",
    "6",
    "--batch-size",
    "8",
    "--lr",
    "3e-3",
    "--logging-steps",
    "1",
    "--optimizer",
    "adamw",
    "--no-progress",
    "--report-to",
    "none",
];

#[test]
fn a_text_run_on_the_generic_path_matches_the_fused_path() {
    let dir = tmpdir("generic-text");
    let (model, data) = (dir.join("model"), dir.join("train.csv"));
    write_tiny_bert(&model, 3);
    write_sentiment_csv(&data, 48, 5);
    let args = |out: &Path| {
        let mut a = text_train_args(&model, &data, out);
        a.extend(TEXT_RUN.iter().map(|s| s.to_string()));
        a
    };
    run(&args(&dir.join("fused")), None);
    run(&on_device(args(&dir.join("generic"))), Some("generic"));
    // Composed layer norm, softmax and GELU round differently from the fused kernels.
    same_run(&dir.join("fused"), &dir.join("generic"), 1e-3);
    same_predictions(&dir.join("generic"), &["--text", "good fun film"], 1e-4);
    std::fs::remove_dir_all(&dir).ok();
}

/// The first layer's query weights of two runs' exports differ (the half-precision products
/// really ran).
fn assert_query_differs(a: &Path, b: &Path) {
    let name = "bert.encoder.layer.0.attention.self.query.weight";
    let (ta, tb) = (
        load_tensors(&a.join("model.safetensors")),
        load_tensors(&b.join("model.safetensors")),
    );
    let diff = (&ta[name] - &tb[name]).unwrap().abs().unwrap();
    let diff = diff.max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(
        diff > 0.0,
        "{} and {} trained the same weights",
        a.display(),
        b.display()
    );
}

/// Writes a tiny BERT and 48 sentiment rows into `dir`; gives the arguments of a generic-path
/// text run on the test device into an output folder, with extra flags.
fn device_text_run(dir: &Path) -> impl Fn(&Path, &[&str]) -> Vec<String> {
    let (model, data) = (dir.join("model"), dir.join("train.csv"));
    write_tiny_bert(&model, 3);
    write_sentiment_csv(&data, 48, 5);
    move |out: &Path, extra: &[&str]| {
        let mut a = on_device(text_train_args(&model, &data, out));
        a.extend(TEXT_RUN.iter().chain(extra).map(|s| s.to_string()));
        a
    }
}

/// `--bf16` (here as `--mixed-precision bf16`) off the fused kernels: the composed products
/// cast to bf16 (what a GPU runs). A short run follows the f32 run's falling losses to
/// bf16's rounding. (Its weights are not compared tensor by tensor: a key bias, whose exact
/// gradient is 0, takes Adam steps of full size on bf16's rounding noise.)
#[test]
fn bf16_on_the_generic_path_follows_the_f32_run() {
    let dir = tmpdir("generic-bf16");
    let args = device_text_run(&dir);
    run(&args(&dir.join("f32"), &[]), Some("generic"));
    // Accelerate's spelling, `--mixed-precision bf16`, is `--bf16`.
    let bf16 = ["--mixed-precision", "bf16"];
    run(&args(&dir.join("bf16"), &bf16), Some("generic"));
    let record = read_json(&dir.join("bf16").join("run_config.json"));
    assert_eq!(record["mixed_precision"], "bf16");
    // bf16 keeps 8 bits of mantissa: the losses of 36 steps stay within 5e-2.
    same_losses(&dir.join("f32"), &dir.join("bf16"), 5e-2);
    assert_query_differs(&dir.join("f32"), &dir.join("bf16"));
    std::fs::remove_dir_all(&dir).ok();
}

/// `--fp16`: the composed products in f16 and the loss scaled as PyTorch's `GradScaler`. A
/// short run follows the f32 run's falling losses; its checkpoints hold the scaler (2¹⁶, one
/// finite step counted per step: no overflow here); a run resumed from the first checkpoint
/// ends bit-identical to the uninterrupted one.
#[test]
fn fp16_with_loss_scaling_follows_the_f32_run_and_resumes_exactly() {
    let dir = tmpdir("generic-fp16");
    let args = device_text_run(&dir);
    run(&args(&dir.join("f32"), &[]), Some("generic"));
    let fp16 = ["--fp16", "--save-steps", "18"];
    run(&args(&dir.join("fp16"), &fp16), Some("generic"));
    same_losses(&dir.join("f32"), &dir.join("fp16"), 2e-2);
    assert_query_differs(&dir.join("f32"), &dir.join("fp16"));
    for (step, tracker) in [(18, 18), (36, 36)] {
        let state = read_json(&dir.join(format!("fp16/checkpoint-{step}/trainer_state.json")));
        assert_eq!(state["loss_scaler"]["scale"], 65536.0, "{state}");
        assert_eq!(state["loss_scaler"]["growth_tracker"], tracker);
    }
    let resumed = dir.join("resumed");
    copy_dir(
        &dir.join("fp16/checkpoint-18"),
        &resumed.join("checkpoint-18"),
    );
    let mut again = args(&resumed, &fp16);
    again.extend(["--resume".to_string(), "latest".to_string()]);
    run(&again, Some("generic"));
    assert_same_tensors(
        &dir.join("fp16/model.safetensors"),
        &resumed.join("model.safetensors"),
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_image_run_on_the_generic_path_matches_the_fused_path() {
    let dir = tmpdir("generic-image");
    let (model, data) = (dir.join("model"), dir.join("shapes"));
    write_tiny_resnet(&model, 2, None);
    write_shapes(&data, &["circle", "square"], 8, 16, 3);
    let args = |out: &Path| -> Vec<String> {
        [
            "train",
            "--task",
            "image-classification",
            "--model",
            model.to_str().unwrap(),
            "--train",
            data.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--epochs",
            "6",
            "--batch-size",
            "8",
            "--lr",
            "0.05",
            "--optimizer",
            "sgd",
            "--momentum",
            "0.9",
            "--augment",
            "none",
            "--logging-steps",
            "1",
            "--no-progress",
            "--report-to",
            "none",
        ]
        .map(String::from)
        .to_vec()
    };
    run(&args(&dir.join("fused")), None);
    run(&on_device(args(&dir.join("generic"))), Some("generic"));
    // Composed convolution and batch norm sum in another order than the fused kernels.
    same_run(&dir.join("fused"), &dir.join("generic"), 1e-3);
    let image = std::fs::read_dir(data.join("circle"))
        .unwrap()
        .next()
        .unwrap();
    let image = image.unwrap().path();
    same_predictions(
        &dir.join("generic"),
        &["--image", image.to_str().unwrap()],
        1e-4,
    );
    std::fs::remove_dir_all(&dir).ok();
}
