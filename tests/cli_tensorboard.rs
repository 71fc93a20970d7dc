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

    // The gradient norm and, with groups at different rates, each group's learning rate.
    let grouped = run("grouped", &["--head-lr", "1e-2"]);
    let file = std::fs::read_dir(grouped.join("runs"))
        .unwrap()
        .flatten()
        .next()
        .unwrap();
    let scalars: Vec<(String, f32)> = tensorboard::read(&file.path())
        .unwrap()
        .into_iter()
        .filter(|e| e.step == 2)
        .filter_map(|e| match e.what {
            Some(What::Summary(s)) => Some(s.value),
            _ => None,
        })
        .flatten()
        .filter_map(|v| Some((v.tag, v.simple_value?)))
        .collect();
    let record: serde_json::Value = std::fs::read_to_string(grouped.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["step"] == 2 && r.get("loss").is_some())
        .unwrap();
    let norm = record["grad_norm"].as_f64().unwrap() as f32;
    assert!(
        scalars.contains(&("train/grad_norm".into(), norm)),
        "{scalars:?}"
    );
    let groups = record["learning_rates"]
        .as_object()
        .expect("every group's rate");
    let head = groups
        .values()
        .filter(|lr| lr.as_f64() > record["lr"].as_f64())
        .count();
    assert!(groups.len() >= 2 && head >= 1, "{record}");
    for (name, lr) in groups {
        let tag = format!("train/learning_rate/{name}");
        assert!(
            scalars.contains(&(tag, lr.as_f64().unwrap() as f32)),
            "{scalars:?}"
        );
    }

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
