//! `finetune lr-schedule`: `--json` values against transformers' / PyTorch's formulas (written
//! here independently of the library), the table, and one-line errors.

mod common;

use std::f64::consts::PI;
use std::process::{Command, Output};

fn finetune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_finetune"))
        .args(args)
        .output()
        .expect("run finetune")
}

fn lr_schedule(args: &[&str]) -> Output {
    let mut all = vec!["lr-schedule"];
    all.extend_from_slice(args);
    finetune(&all)
}

fn json_curve(args: &[&str]) -> Vec<f64> {
    let out = lr_schedule(&[args, &["--json"]].concat());
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim_end().lines().count(),
        1,
        "one JSON line: {stdout}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (step, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w == 0.0 {
            g.abs() <= 1e-15
        } else {
            ((g - w) / w).abs() <= 1e-9
        };
        assert!(ok, "{what}: step {step}: got {g:e}, want {w:e}");
    }
}

fn warm(step: u64, warmup: u64) -> Option<f64> {
    (step < warmup).then(|| step as f64 / warmup.max(1) as f64)
}

#[test]
fn json_linear_with_warmup_steps() {
    let got = json_curve(&[
        "--schedule",
        "linear",
        "--lr",
        "2e-5",
        "--steps",
        "50",
        "--warmup-steps",
        "5",
    ]);
    // transformers' get_linear_schedule_with_warmup.
    let want: Vec<f64> = (0..50u64)
        .map(|s| 2e-5 * warm(s, 5).unwrap_or((50.0 - s as f64) / 45.0))
        .collect();
    assert_close(&got, &want, "linear");
    assert_eq!(got[0], 0.0);
    assert_eq!(got[5], 2e-5);
}

#[test]
fn json_cosine_with_warmup_ratio_and_cycles() {
    let got = json_curve(&[
        "--schedule",
        "cosine",
        "--lr",
        "1e-3",
        "--steps",
        "40",
        "--warmup-ratio",
        "0.1",
        "--num-cycles",
        "1",
    ]);
    // warm-up = ceil(0.1 × 40) = 4; transformers' get_cosine_schedule_with_warmup.
    let want: Vec<f64> = (0..40u64)
        .map(|s| {
            1e-3 * warm(s, 4).unwrap_or_else(|| {
                let progress = (s - 4) as f64 / 36.0;
                0.0f64.max(0.5 * (1.0 + (PI * 1.0 * 2.0 * progress).cos()))
            })
        })
        .collect();
    assert_close(&got, &want, "cosine");
}

#[test]
fn json_polynomial_and_inverse_sqrt() {
    let got = json_curve(&[
        "--schedule",
        "polynomial",
        "--lr",
        "1e-3",
        "--steps",
        "30",
        "--warmup-steps",
        "3",
        "--power",
        "2",
        "--lr-end",
        "1e-5",
    ]);
    let want: Vec<f64> = (0..30u64)
        .map(|s| match warm(s, 3) {
            Some(w) => 1e-3 * w,
            None => (1e-3 - 1e-5) * (1.0 - (s - 3) as f64 / 27.0).powi(2) + 1e-5,
        })
        .collect();
    assert_close(&got, &want, "polynomial");

    let got = json_curve(&[
        "--schedule",
        "inverse-sqrt",
        "--lr",
        "5e-4",
        "--steps",
        "25",
        "--warmup-steps",
        "8",
    ]);
    // timescale defaults to the warm-up: 1/sqrt((step + 8 - 8) / 8) after warm-up.
    let want: Vec<f64> = (0..25u64)
        .map(|s| 5e-4 * warm(s, 8).unwrap_or_else(|| 1.0 / (s as f64 / 8.0).sqrt()))
        .collect();
    assert_close(&got, &want, "inverse-sqrt");
}

#[test]
fn json_pytorch_style_schedules() {
    // StepLR after warm-up: lr × gamma^((step − w) // step_size).
    let got = json_curve(&[
        "--schedule",
        "step",
        "--lr",
        "0.1",
        "--steps",
        "20",
        "--warmup-steps",
        "2",
        "--step-size",
        "5",
        "--gamma",
        "0.5",
    ]);
    let want: Vec<f64> = (0..20u64)
        .map(|s| 0.1 * warm(s, 2).unwrap_or_else(|| 0.5f64.powi(((s - 2) / 5) as i32)))
        .collect();
    assert_close(&got, &want, "step");

    // MultiStepLR with the default gamma 0.1.
    let got = json_curve(&[
        "--schedule",
        "multistep",
        "--lr",
        "0.1",
        "--steps",
        "12",
        "--milestones",
        "3,7",
    ]);
    let want: Vec<f64> = (0..12u64)
        .map(|s| 0.1 * 0.1f64.powi([3, 7].iter().filter(|&&m| m <= s).count() as i32))
        .collect();
    assert_close(&got, &want, "multistep");

    let got = json_curve(&[
        "--schedule",
        "exponential",
        "--lr",
        "0.1",
        "--steps",
        "15",
        "--gamma",
        "0.9",
    ]);
    let want: Vec<f64> = (0..15).map(|s| 0.1 * 0.9f64.powi(s)).collect();
    assert_close(&got, &want, "exponential");
}

#[test]
fn json_one_cycle() {
    let got = json_curve(&[
        "--schedule",
        "one-cycle",
        "--lr",
        "0.01",
        "--steps",
        "20",
        "--pct-start",
        "0.25",
        "--div-factor",
        "10",
        "--final-div-factor",
        "100",
        "--anneal",
        "linear",
    ]);
    // PyTorch OneCycleLR, two phases: 0.001 → 0.01 by step 0.25 × 20 − 1 = 4, then to
    // 0.001 / 100 at step 19, linearly.
    let (initial, max, min) = (0.001, 0.01, 0.001 / 100.0);
    let want: Vec<f64> = (0..20u64)
        .map(|s| {
            let s = s as f64;
            if s <= 4.0 {
                (max - initial) * (s / 4.0) + initial
            } else {
                (min - max) * ((s - 4.0) / 15.0) + max
            }
        })
        .collect();
    assert_close(&got, &want, "one-cycle linear");

    let got = json_curve(&[
        "--schedule",
        "one-cycle",
        "--lr",
        "0.01",
        "--steps",
        "20",
        "--three-phase",
    ]);
    // Defaults: pct 0.3, div 25, final div 1e4, cos; phases end at 5, 10, 19.
    let (initial, max) = (0.01 / 25.0, 0.01);
    let min = initial / 1e4;
    let cos = |a: f64, b: f64, pct: f64| b + (a - b) / 2.0 * ((PI * pct).cos() + 1.0);
    let want: Vec<f64> = (0..20u64)
        .map(|s| {
            let s = s as f64;
            if s <= 5.0 {
                cos(initial, max, s / 5.0)
            } else if s <= 10.0 {
                cos(max, initial, (s - 5.0) / 5.0)
            } else {
                cos(initial, min, (s - 10.0) / 9.0)
            }
        })
        .collect();
    assert_close(&got, &want, "one-cycle three-phase");
}

#[test]
fn table_lists_every_step() {
    let out = lr_schedule(&[
        "--schedule",
        "constant",
        "--lr",
        "0.5",
        "--steps",
        "12",
        "--warmup-steps",
        "4",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["step", "lr"]);
    let rows: Vec<(u64, f64)> = lines
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cols.len(), 2, "{l}");
            (cols[0].parse().unwrap(), cols[1].parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 12);
    for (i, (step, lr)) in rows.into_iter().enumerate() {
        assert_eq!(step, i as u64);
        let want = 0.5 * warm(step, 4).unwrap_or(1.0);
        assert!(
            (lr - want).abs() <= 1e-9 * want.max(1e-300),
            "{step}: {lr} vs {want}"
        );
    }
}

fn assert_one_line_error(out: &Output, needle: &str) {
    assert!(!out.status.success(), "should fail");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
}

#[test]
fn errors_are_one_clear_line() {
    let base = ["--lr", "1e-3", "--steps", "10"];
    let with = |extra: &[&str]| lr_schedule(&[&base[..], extra].concat());
    assert_one_line_error(&with(&["--schedule", "sine"]), "unknown schedule `sine`");
    assert_one_line_error(&with(&["--schedule", "step"]), "--step-size");
    assert_one_line_error(&with(&["--schedule", "multistep"]), "--milestones");
    assert_one_line_error(&with(&["--schedule", "exponential"]), "--gamma");
    assert_one_line_error(
        &with(&["--schedule", "one-cycle", "--warmup-steps", "2"]),
        "--pct-start",
    );
    assert_one_line_error(
        &with(&["--schedule", "linear", "--warmup-steps", "11"]),
        "--warmup-steps",
    );
    assert_one_line_error(
        &with(&["--schedule", "linear", "--warmup-ratio", "2"]),
        "--warmup-ratio",
    );
    assert_one_line_error(
        &with(&["--schedule", "polynomial", "--lr-end", "0.01"]),
        "--lr-end",
    );
    assert_one_line_error(&with(&["--schedule", "linear", "--power", "2"]), "--power");
    assert_one_line_error(
        &with(&["--schedule", "one-cycle", "--anneal", "sine"]),
        "--anneal",
    );
    assert_one_line_error(
        &with(&["--schedule", "step", "--step-size", "2", "--gamma", "-0.5"]),
        "--gamma",
    );
    assert_one_line_error(
        &lr_schedule(&[
            "--schedule",
            "exponential",
            "--lr",
            "1",
            "--gamma",
            "10",
            "--steps",
            "400",
        ]),
        "overflows",
    );
    assert_one_line_error(
        &lr_schedule(&["--schedule", "constant", "--lr", "-1", "--steps", "3"]),
        "learning rate",
    );
    assert_one_line_error(
        &lr_schedule(&["--schedule", "constant", "--lr", "1", "--steps", "0"]),
        "--steps",
    );
    // Usage errors from the parser, flattened to one line.
    assert_one_line_error(&lr_schedule(&["--lr", "1", "--steps", "3"]), "--schedule");
    assert_one_line_error(
        &lr_schedule(&["--schedule", "constant", "--lr", "abc", "--steps", "3"]),
        "--lr",
    );
    assert_one_line_error(
        &with(&["--schedule", "multistep", "--milestones", "3,x"]),
        "--milestones",
    );
    assert_one_line_error(
        &with(&[
            "--schedule",
            "linear",
            "--warmup-steps",
            "1",
            "--warmup-ratio",
            "0.1",
        ]),
        "cannot be used with",
    );
    assert_one_line_error(&with(&["--schedule", "linear", "--bogus"]), "--bogus");
}

/// `finetune train` takes every schedule argument `lr-schedule` takes (one schema): a `step`
/// schedule (`--step-size 2 --gamma 0.5`) trains at PyTorch's `StepLR` rates, base · γ^⌊t/2⌋,
/// as `metrics.jsonl` records them step by step.
#[test]
fn train_takes_the_schedules_own_arguments() {
    let dir = common::tmpdir("train-step-schedule");
    let model = dir.join("model");
    common::write_tiny_bert(&model, 2);
    let data = dir.join("train.csv");
    common::write_sentiment_csv(&data, 16, 1);
    let out = dir.join("out");
    let mut args = common::text_train_args(&model, &data, &out);
    args.extend(
        [
            "--max-steps",
            "4",
            "--logging-steps",
            "1",
            "--lr",
            "0.01",
            "--schedule",
            "step",
            "--step-size",
            "2",
            "--gamma",
            "0.5",
        ]
        .map(String::from),
    );
    common::finetune_ok(&args);
    let lrs: Vec<f64> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|r| r["lr"].as_f64())
        .collect();
    let want: Vec<f64> = (0..4).map(|t| 0.01 * 0.5f64.powi(t / 2)).collect();
    assert_close(&lrs, &want, "train --schedule step");
    // A schedule's argument the schedule does not take is refused before training.
    let mut wrong = common::text_train_args(&model, &data, &dir.join("wrong"));
    wrong.extend(["--schedule", "linear", "--gamma", "0.5"].map(String::from));
    let run = common::finetune(&wrong);
    assert!(!run.status.success());
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("gamma"),
        "{run:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
