//! A run remembers itself: `run_config.json` (in the output folder and every checkpoint) gives
//! `eval` and `predict` their data columns and max length, and a `--resume` its settings, so
//! no training flag has to be repeated; a resumed run refuses a setting that differs from the
//! run's, naming it with both values, and allows and reports a safe change.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

struct Run {
    dir: PathBuf,
    out: PathBuf,
    data: PathBuf,
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A tiny BERT trained 4 steps on `message,sentiment` data at max length 6.
fn trained(tag: &str) -> Run {
    let dir = tmpdir(tag);
    let model = dir.join("model");
    write_tiny_bert(&model, 3);
    let data = dir.join("train.csv");
    write_sentiment_csv(&data, 40, 1);
    let body = std::fs::read_to_string(&data).unwrap();
    std::fs::write(&data, body.replacen("text,label", "message,sentiment", 1)).unwrap();
    let out = dir.join("out");
    finetune_ok(&[
        "train",
        "--task",
        "text-classification",
        "--model",
        s(&model),
        "--train",
        s(&data),
        "--output",
        s(&out),
        "--text-column",
        "message",
        "--label-column",
        "sentiment",
        "--max-length",
        "6",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--max-steps",
        "4",
        "--save-steps",
        "2",
        // How this invocation runs, not what the run is: a resume does not inherit it.
        "--overwrite",
    ]);
    Run { dir, out, data }
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn logits_of(model: &Path, extra: &[&str]) -> Vec<Value> {
    let text = "the movie was really wonderful and the acting was good";
    let mut args = vec!["predict", "--model", s(model), "--json", "--text", text];
    args.extend(extra);
    finetune_ok(&args)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["logits"].clone())
        .collect()
}

#[test]
fn eval_and_predict_default_to_the_runs_columns_and_max_length() {
    let run = trained("record-eval");
    for model in [run.out.clone(), run.out.join("checkpoint-2")] {
        assert!(
            model.join("run_config.json").is_file(),
            "{}",
            model.display()
        );
        let out = finetune(&[
            "eval",
            "--model",
            s(&model),
            "--data",
            s(&run.data),
            "--json",
        ]);
        let err = stderr_of(&out);
        assert!(out.status.success(), "{err}");
        for part in [
            "as the model was trained",
            "--text-column message",
            "--label-column sentiment",
            "--max-length 6",
        ] {
            assert!(err.contains(part), "missing {part:?}: {err}");
        }
        let metrics: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(metrics["samples"], 40);
    }
    // predict truncates as training did; a flag given still wins.
    let default = logits_of(&run.out, &[]);
    assert_eq!(default, logits_of(&run.out, &["--max-length", "6"]));
    assert_ne!(default, logits_of(&run.out, &["--max-length", "32"]));
    // A model folder without a record keeps the flags' defaults.
    std::fs::remove_file(run.out.join("run_config.json")).unwrap();
    let out = finetune(&["eval", "--model", s(&run.out), "--data", s(&run.data)]);
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("text"), "{}", stderr_of(&out));
    std::fs::remove_dir_all(&run.dir).ok();
}

#[test]
fn resume_takes_the_runs_settings_and_names_every_difference() {
    let run = trained("record-resume");
    let out = s(&run.out);
    // Settings that differ from the run's: refused, each named with both values.
    let refused = finetune(&[
        "train",
        "--output",
        out,
        "--resume",
        "--lr",
        "5e-3",
        "--batch-size",
        "4",
    ]);
    assert!(!refused.status.success());
    let err = stderr_of(&refused);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    for part in [
        "run_config.json",
        "--lr 0.001 (run) vs 0.005 (now)",
        "--batch-size 8 (run) vs 4 (now)",
    ] {
        assert!(err.contains(part), "missing {part:?}: {err}");
    }
    // A shorter run than the checkpoint reached is refused by the checkpoint, and the record
    // stays as it was.
    let short = finetune(&["train", "--output", out, "--resume", "--max-steps", "3"]);
    assert!(!short.status.success());
    assert!(
        stderr_of(&short).contains("at step 4"),
        "{}",
        stderr_of(&short)
    );
    assert_eq!(read_json(&run.out.join("run_config.json"))["max_steps"], 4);
    // A checkpoint resumed into another folder brings its own record.
    let other = run.dir.join("other");
    let ckpt = run.out.join("checkpoint-4");
    let moved = finetune(&[
        "train",
        "--output",
        s(&other),
        "--resume",
        s(&ckpt),
        "--max-steps",
        "5",
    ]);
    assert!(moved.status.success(), "{}", stderr_of(&moved));
    assert_eq!(
        read_json(&other.join("train_summary.json"))["global_step"],
        5
    );
    assert_eq!(
        read_json(&other.join("run_config.json"))["text_column"],
        "message"
    );
    // The run's own values given again are no difference; a longer run is a safe change,
    // allowed and said. No other flag is needed (the run was started with --overwrite).
    let resumed = finetune(&[
        "train",
        "--output",
        out,
        "--resume",
        "--lr",
        "0.001",
        "--max-steps",
        "6",
    ]);
    let err = stderr_of(&resumed);
    assert!(resumed.status.success(), "{err}");
    assert!(
        err.contains("resuming with changed settings: --max-steps 4 (run) vs 6 (now)"),
        "{err}"
    );
    let summary = read_json(&run.out.join("train_summary.json"));
    assert_eq!(summary["global_step"], 6);
    let record = read_json(&run.out.join("run_config.json"));
    assert_eq!(record["text_column"], "message");
    assert_eq!(record["max_steps"], 6);
    std::fs::remove_dir_all(&run.dir).ok();
}
