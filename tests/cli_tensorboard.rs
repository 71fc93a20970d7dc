//! `finetune train` writes TensorBoard event files by default (`--report-to`, transformers'
//! `report_to`, also as a settings-file key), and none with `--report-to none`.

mod common;

use candle_finetune::train::tensorboard::{self, proto::What};
use common::*;

#[test]
fn train_reports_to_tensorboard_unless_told_not_to() {
    let dir = tmpdir("tensorboard");
    let model = dir.join("model");
    write_tiny_bert(&model, 2);
    let data = dir.join("train.csv");
    write_sentiment_csv(&data, 16, 1);
    let run = |out: &str, extra: &[&str]| {
        let out = dir.join(out);
        let mut args = text_train_args(&model, &data, &out);
        args.extend(["--max-steps", "2", "--logging-steps", "1"].map(String::from));
        args.extend(extra.iter().map(|a| a.to_string()));
        finetune_ok(&args);
        out
    };
    let default = run("default", &[]);
    let files: Vec<_> = std::fs::read_dir(default.join("runs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(files.len(), 1);
    let events = tensorboard::read(&files[0].path()).unwrap();
    let losses: Vec<i64> = events
        .iter()
        .filter_map(|e| match &e.what {
            Some(What::Summary(s)) if s.value.iter().any(|v| v.tag == "train/loss") => Some(e.step),
            _ => None,
        })
        .collect();
    assert_eq!(losses, [1, 2]);

    let none = run("none", &["--report-to", "none"]);
    assert!(!none.join("runs").exists());
    assert!(none.join("metrics.jsonl").is_file());

    let toml = dir.join("run.toml");
    std::fs::write(&toml, "report_to = \"none\"\n").unwrap();
    let from_file = run("file", &["--config", toml.to_str().unwrap()]);
    assert!(
        !from_file.join("runs").exists(),
        "transformers' key in a settings file"
    );
    std::fs::remove_dir_all(&dir).ok();
}
