//! Exit status by class: 2 for a usage error (an unknown flag or value, a missing or
//! conflicting flag, a settings file that does not read), 1 for an error met while working (a
//! missing data file, a model that is not there); each with one `error:` line on stderr and no
//! panic, and a usage error before anything is written.

mod common;

use common::*;
use std::path::Path;
use std::process::Output;

/// The one `error:` line of a failed run, checked for its status.
fn fails_with(run: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(code), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(needle), "`{needle}` missing:\n{stderr}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn usage_errors_exit_2_and_write_nothing() {
    let dir = tmpdir("exit-usage");
    let model = dir.join("tiny-bert");
    write_tiny_bert(&model, 4);
    let train = dir.join("train.csv");
    write_sentiment_csv(&train, 16, 1);
    let out = dir.join("out");
    let unknown_key = dir.join("unknown-key.toml");
    std::fs::write(&unknown_key, "learnig_rate = 0.1\n").unwrap();
    let not_toml = dir.join("not-toml.toml");
    std::fs::write(&not_toml, "lr = = 1\n").unwrap();
    let base = [
        "train",
        "--task",
        "text-classification",
        "--model",
        s(&model),
        "--output",
        s(&out),
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // An unknown value, a value out of range.
        (
            vec!["--train", s(&train), "--eval-strategy", "sometimes"],
            "sometimes",
        ),
        (vec!["--train", s(&train), "--lr=-1"], "--lr"),
        (vec!["--train", s(&train), "--device", "tpu"], "tpu"),
        // Missing: the training data.
        (vec![], "--train"),
        // Conflicting flags, or a flag of the other task.
        (
            vec!["--train", s(&train), "--resume", "--overwrite"],
            "--overwrite",
        ),
        (vec!["--train", s(&train), "--augment", "none"], "--augment"),
        (
            vec![
                "--train",
                s(&train),
                "--eval-strategy",
                "no",
                "--load-best-at-end",
            ],
            "--load-best-at-end",
        ),
        (
            vec!["--train", s(&train), "--load-best-at-end"],
            "--load-best-at-end",
        ),
        // Settings files: an unknown key, a file that does not parse, one that is not there.
        (
            vec!["--train", s(&train), "--config", s(&unknown_key)],
            "learnig_rate",
        ),
        (
            vec!["--train", s(&train), "--config", s(&not_toml)],
            "not-toml.toml",
        ),
        (
            vec!["--train", s(&train), "--config", "no/such.toml"],
            "no/such.toml",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = base.to_vec();
        args.extend(&extra);
        fails_with(&finetune(&args), 2, needle);
        assert!(!out.exists(), "{extra:?} wrote {}", out.display());
    }
    // A missing required flag, and a flag clap refuses.
    fails_with(
        &finetune(&["train", "--task", "text-classification"]),
        2,
        "--model",
    );
    fails_with(&finetune(&["train", "--no-such-flag"]), 2, "--no-such-flag");
    // Other commands.
    fails_with(
        &finetune(&["predict", "--model", s(&model), "--image", "x.png"]),
        2,
        "--image",
    );
    fails_with(
        &finetune(&[
            "eval",
            "--model",
            s(&model),
            "--data",
            s(&train),
            "--device",
            "gpu",
        ]),
        2,
        "gpu",
    );
    fails_with(
        &finetune(&[
            "lr-schedule",
            "--schedule",
            "linear",
            "--lr",
            "1e-3",
            "--steps",
            "10",
            "--warmup-ratio",
            "2",
        ]),
        2,
        "warmup",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn errors_met_while_working_exit_1() {
    let dir = tmpdir("exit-runtime");
    let model = dir.join("tiny-bert");
    write_tiny_bert(&model, 4);
    let out = dir.join("out");
    let missing = dir.join("missing.csv");
    let run = finetune(&[
        "train",
        "--task",
        "text-classification",
        "--model",
        s(&model),
        "--output",
        s(&out),
        "--train",
        s(&missing),
        "--no-progress",
    ]);
    fails_with(&run, 1, "missing.csv");
    let run = finetune(&[
        "predict",
        "--model",
        s(&dir.join("no-model")),
        "--text",
        "good",
    ]);
    fails_with(&run, 1, "no-model");
    let _ = std::fs::remove_dir_all(&dir);
}
