//! A run followed through pipes (`nohup`, CI): with no terminal for the progress bar, `finetune
//! train` writes transformers' log lines on stderr — `{'loss': …, 'grad_norm': …,
//! 'learning_rate': …, 'epoch': …}` every logging step, `{'eval_loss': …, 'eval_accuracy': …, 'epoch': …}` per
//! evaluation, `{'train_runtime': …, 'train_loss': …, 'epoch': …}` at the end — and evaluates on
//! the `--eval-strategy` schedule it was given.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A tiny BERT, 32 training rows (2 steps of 16 an epoch) and 8 evaluation rows.
struct Setup {
    dir: PathBuf,
}

impl Setup {
    fn new(tag: &str) -> Self {
        let dir = tmpdir(tag);
        write_tiny_bert(&dir.join("tiny-bert"), 3);
        write_sentiment_csv(&dir.join("train.csv"), 32, 1);
        write_sentiment_csv(&dir.join("eval.csv"), 8, 2);
        Self { dir }
    }

    /// `finetune train` over 4 epochs (8 steps) into `out`, with `extra` flags; stdout and
    /// stderr are pipes. Returns (stdout, stderr).
    fn train(&self, out: &Path, extra: &[&str]) -> (String, String) {
        let p = |name: &str| self.dir.join(name).to_str().unwrap().to_string();
        let mut args: Vec<String> = [
            "train",
            "--task",
            "text-classification",
            "--model",
            &p("tiny-bert"),
            "--train",
            &p("train.csv"),
            "--eval",
            &p("eval.csv"),
            "--output",
            out.to_str().unwrap(),
            "--batch-size",
            "16",
            "--max-length",
            "16",
            "--epochs",
            "4",
            "--metric",
            "accuracy",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let run = finetune(&args);
        let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
        assert!(run.status.success(), "{args:?}\n{stderr}");
        (stdout, stderr)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The lines of `stderr` that are Python dicts whose first key is `first`, as (key, number)
/// pairs in order.
fn dict_lines(stderr: &str, first: &str) -> Vec<Vec<(String, f64)>> {
    stderr
        .lines()
        .filter(|l| l.starts_with(&format!("{{'{first}': ")))
        .map(|l| {
            let body = l.strip_prefix('{').and_then(|l| l.strip_suffix('}'));
            let body = body.unwrap_or_else(|| panic!("not a dict: {l}"));
            body.split(", ")
                .map(|field| {
                    let (k, v) = field.split_once(": ").unwrap_or_else(|| panic!("{l}"));
                    let key = k.strip_prefix('\'').and_then(|k| k.strip_suffix('\''));
                    let value = v.parse::<f64>().unwrap_or_else(|e| panic!("{e}: {l}"));
                    (key.unwrap_or_else(|| panic!("{l}")).to_string(), value)
                })
                .collect()
        })
        .collect()
}

fn keys(line: &[(String, f64)]) -> Vec<&str> {
    line.iter().map(|(k, _)| k.as_str()).collect()
}

fn records(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn eval_steps(out: &Path) -> Vec<u64> {
    records(out)
        .iter()
        .filter(|r| r.get("eval_loss").is_some())
        .map(|r| r["step"].as_u64().unwrap())
        .collect()
}

#[test]
fn piped_run_writes_transformers_log_lines() {
    let t = Setup::new("log-lines");
    let out = t.dir.join("out");
    let (stdout, stderr) = t.train(
        &out,
        &["--logging-steps", "1", "--eval-steps", "4", "--json"],
    );
    // stdout holds the report alone; no bar was drawn on the pipe.
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(
        !stderr.contains('\u{1b}'),
        "terminal control codes on a pipe:\n{stderr}"
    );

    let train = dict_lines(&stderr, "loss");
    assert_eq!(train.len(), 8, "a line per logging step:\n{stderr}");
    let trained: Vec<Value> = records(&out)
        .into_iter()
        .filter(|r| r.get("loss").is_some())
        .collect();
    let logged: Vec<f64> = trained
        .iter()
        .map(|r| r["loss"].as_f64().unwrap())
        .collect();
    for (i, line) in train.iter().enumerate() {
        assert_eq!(
            keys(line),
            ["loss", "grad_norm", "learning_rate", "epoch"],
            "{stderr}"
        );
        let want = (logged[i] * 1e4).round() / 1e4;
        assert!((line[0].1 - want).abs() < 1e-12, "{} vs {want}", line[0].1);
        // The gradient's norm before clipping, as metrics.jsonl records it.
        let norm = trained[i]["grad_norm"].as_f64().unwrap();
        assert!(
            norm > 0.0 && (line[1].1 - norm).abs() <= 1e-12 * norm,
            "{stderr}"
        );
        assert!(line[2].1 > 0.0 && line[2].1 <= 5e-5, "{stderr}");
        assert_eq!(
            line[3].1,
            (i + 1) as f64 / 2.0,
            "the epoch of step {}",
            i + 1
        );
    }

    let evals = dict_lines(&stderr, "eval_loss");
    let epochs: Vec<f64> = evals.iter().map(|l| l.last().unwrap().1).collect();
    assert_eq!(epochs, [2.0, 4.0], "{stderr}");
    for line in &evals {
        assert_eq!(
            keys(line),
            [
                "eval_loss",
                "eval_accuracy",
                "eval_f1",
                "eval_precision",
                "eval_recall",
                "epoch"
            ]
        );
    }

    // The closing line and the summary: the mean loss over the run's 8 steps.
    let end = dict_lines(&stderr, "train_runtime");
    assert_eq!(end.len(), 1, "{stderr}");
    assert_eq!(
        keys(&end[0]),
        [
            "train_runtime",
            "train_samples_per_second",
            "train_loss",
            "epoch"
        ]
    );
    let summary = read_json(&out.join("train_summary.json"));
    let mean = logged.iter().sum::<f64>() / logged.len() as f64;
    let train_loss = summary["train_loss"].as_f64().unwrap();
    assert!(
        (train_loss - mean).abs() < 1e-9,
        "{train_loss} vs mean {mean}"
    );
    assert_ne!(
        train_loss,
        *logged.last().unwrap(),
        "not the last step's loss"
    );
    assert_eq!(end[0][2].1, train_loss);
    assert_eq!(report["summary"]["train_loss"], summary["train_loss"]);
}

#[test]
fn evaluation_follows_the_requested_strategy() {
    let t = Setup::new("eval-strategy");
    let cases: [(&str, &[&str], &[u64]); 5] = [
        // 2-step epochs, every 4 steps: not at the epoch ends 2 and 6.
        ("steps", &["--eval-steps", "4"], &[4, 8]),
        ("default", &[], &[2, 4, 6, 8]),
        ("epoch", &["--evaluation-strategy", "epoch"], &[2, 4, 6, 8]),
        // An interval is ignored under `epoch`, as in transformers.
        (
            "epoch-steps",
            &["--eval-strategy", "epoch", "--eval-steps", "3"],
            &[2, 4, 6, 8],
        ),
        ("no", &["--eval-strategy", "no"], &[]),
    ];
    for (tag, flags, want) in cases {
        let out = t.dir.join(tag);
        let (_, stderr) = t.train(&out, flags);
        assert_eq!(eval_steps(&out), want, "{tag}\n{stderr}");
        assert_eq!(dict_lines(&stderr, "eval_loss").len(), want.len(), "{tag}");
        let summary = read_json(&out.join("train_summary.json"));
        assert_eq!(summary["final_eval"].is_null(), want.is_empty(), "{tag}");
    }
    // `steps` without an interval takes --logging-steps' (here 3), and the last step.
    let out = t.dir.join("steps-logging");
    t.train(&out, &["--eval-strategy", "steps", "--logging-steps", "3"]);
    assert_eq!(eval_steps(&out), [3, 6, 8]);
}
