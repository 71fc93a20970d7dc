//! On a terminal: progress bars over the samples of `eval` and `predict`, and a training run
//! whose bar takes the place of the log lines. The terminal is util-linux's `script`.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// Runs `finetune ARGS` under a pseudo-terminal; returns what it showed (stdout and stderr
/// together, as a terminal does).
fn on_a_terminal(args: &[&str]) -> String {
    let bin = env!("CARGO_BIN_EXE_finetune");
    let line = std::iter::once(bin)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("COLUMNS", "120")
        .output()
        .expect("util-linux `script`");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{line}\n{shown}");
    shown
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn bars_on_a_terminal() {
    let dir = tmpdir("terminal");
    let base = dir.join("tiny-bert");
    write_tiny_bert(&base, 6);
    let data = dir.join("data.csv");
    write_sentiment_csv(&data, 64, 1);
    let model = dir.join("model");
    let shown = on_a_terminal(&[
        "train",
        "--task",
        "text-classification",
        "--model",
        s(&base),
        "--train",
        s(&data),
        "--eval",
        s(&data),
        "--max-length",
        "16",
        "--batch-size",
        "16",
        "--max-steps",
        "4",
        "--logging-steps",
        "1",
        "--output",
        s(&model),
    ]);
    assert!(shown.contains("steps ["), "no step bar:\n{shown}");
    assert!(
        !shown.contains("{'loss': "),
        "log lines under the bar:\n{shown}"
    );

    let shown = on_a_terminal(&[
        "eval",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--batch-size",
        "16",
    ]);
    assert!(
        shown.contains("evaluating") && shown.contains("/64 samples"),
        "{shown}"
    );
    let shown = on_a_terminal(&["predict", "--model", s(&model), "--input", s(&data)]);
    assert!(
        shown.contains("predicting") && shown.contains("samples"),
        "{shown}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
