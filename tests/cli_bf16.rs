//! `--bf16` through the CLI on the tiny BERT: on a CPU with AMX-BF16 or AVX512-BF16 a run
//! trains with bf16 matrix products (recorded in `run_config.json`; its weights close to an
//! f32 run's but not equal: the rounding is real) and `bench train --bf16` times both
//! precisions; without them — and always under `FINETUNE_SIMD=avx2`, which stands for an
//! AVX2-only CPU — the flag is one error line and nothing is written (as is `--device cuda`
//! in a build without CUDA). bf16 off the fused kernels is `tests/generic_path.rs`'s.

mod common;
#[path = "robustness/support.rs"]
#[allow(dead_code)]
mod support;

use common::*;
use std::path::Path;
use support::{assert_clean_failure, assert_no_model_written};

/// Whether this CPU runs bf16 products.
fn cpu_has_bf16() -> bool {
    finetune_kernels::ops::bf16_kernel().is_ok()
}

fn train_args(model: &Path, data: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = text_train_args(model, data, out);
    a.extend(
        [
            "--max-steps",
            "20",
            "--batch-size",
            "8",
            "--lr",
            "1e-3",
            "--seed",
            "3",
        ]
        .map(String::from),
    );
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn bf16_trains_where_the_cpu_has_it_and_is_refused_elsewhere() {
    let dir = tmpdir("cli-bf16");
    let model = dir.join("model");
    write_tiny_bert(&model, 1);
    let data = dir.join("train.csv");
    write_sentiment_csv(&data, 96, 2);
    let (f32_out, bf16_out) = (dir.join("f32"), dir.join("bf16"));
    finetune_ok(&train_args(&model, &data, &f32_out, &[]));
    let run = finetune(&train_args(&model, &data, &bf16_out, &["--bf16"]));
    if !cpu_has_bf16() {
        assert_clean_failure(&run, &["--bf16", "AMX-BF16 or AVX512-BF16"]);
        assert_no_model_written(&bf16_out);
        return;
    }
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(read_json(&bf16_out.join("run_config.json"))["bf16"], true);
    assert_eq!(read_json(&f32_out.join("run_config.json"))["bf16"], false);
    let (a, b) = (
        load_tensors(&f32_out.join("model.safetensors")),
        load_tensors(&bf16_out.join("model.safetensors")),
    );
    let (mut differ, mut worst) = (false, 0f64);
    for (name, ta) in &a {
        let tb = &b[name];
        differ |= !same_bits(ta, tb);
        let d = (ta - tb)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap();
        worst = worst.max(
            d.to_dtype(candle_core::DType::F64)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap(),
        );
    }
    assert!(
        differ,
        "the bf16 run's weights equal the f32 run's bit for bit"
    );
    // 20 AdamW steps at lr 1e-3 move a weight by at most ~0.02; the two runs stay within that.
    assert!(
        worst < 0.02,
        "the bf16 run drifted {worst} from the f32 run"
    );
}

#[test]
fn an_avx2_only_cpu_or_a_gpu_refuses_bf16_before_any_work() {
    let dir = tmpdir("cli-bf16-refused");
    let model = dir.join("model");
    write_tiny_bert(&model, 1);
    let data = dir.join("train.csv");
    write_sentiment_csv(&data, 16, 2);
    let out = dir.join("out");
    let run = finetune_cmd()
        .args(train_args(&model, &data, &out, &["--bf16"]))
        .env("FINETUNE_SIMD", "avx2")
        .output()
        .unwrap();
    let line = assert_clean_failure(
        &run,
        &["--bf16", "AMX-BF16 or AVX512-BF16", "FINETUNE_SIMD"],
    );
    assert!(!out.exists(), "{line}: {} was created", out.display());
    let run = finetune(&train_args(
        &model,
        &data,
        &out,
        &["--bf16", "--device", "cuda"],
    ));
    assert_clean_failure(&run, &["--features cuda"]);
    assert!(!out.exists());
    // --fp16 runs off the CPU's fused kernels only, and never with --bf16.
    let run = finetune(&train_args(
        &model,
        &data,
        &out,
        &["--fp16", "--device", "cpu"],
    ));
    assert_clean_failure(&run, &["--fp16", "GPU", "--bf16"]);
    let run = finetune(&train_args(&model, &data, &out, &["--fp16", "--bf16"]));
    assert_clean_failure(&run, &["--fp16", "--bf16"]);
    let mp = ["--mixed-precision", "fp16", "--device", "cpu"];
    let run = finetune(&train_args(&model, &data, &out, &mp));
    assert_clean_failure(&run, &["--fp16", "GPU"]);
    let run = finetune(&train_args(
        &model,
        &data,
        &out,
        &["--mixed-precision", "fp16", "--bf16"],
    ));
    assert_clean_failure(&run, &["--mixed-precision fp16 contradicts --bf16"]);
    assert!(!out.exists());
}

#[test]
fn bench_train_times_bf16_beside_f32() {
    let args = [
        "bench",
        "train",
        "--model-config",
        "minilm",
        "--tiny",
        "--batch",
        "2",
        "--seq",
        "8",
        "--steps",
        "2",
        "--json",
        "--bf16",
    ];
    let out = finetune(&args);
    if !cpu_has_bf16() {
        assert_clean_failure(&out, &["--bf16", "AMX-BF16 or AVX512-BF16"]);
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["bf16"], true);
    assert!(r["bf16_kernel"].is_string(), "{r}");
    for key in ["median_s", "f32_median_s"] {
        assert!(r[key].as_f64().is_some_and(|s| s > 0.0), "{key}: {r}");
    }
}
