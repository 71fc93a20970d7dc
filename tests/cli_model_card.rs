//! Every training export gets a model card (`README.md`) whose front matter the Hub reads:
//! library, pipeline tag, tags, metrics and a `model-index` holding the run's test results;
//! `finetune export` carries it over. (Checked with `huggingface_hub`'s `ModelCard` as well,
//! outside the tests: see the changelog.)

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The front matter's keys and values (each value is written as JSON, which YAML reads).
fn front_matter(card: &Path) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(card).unwrap();
    let front = text
        .strip_prefix("---\n")
        .unwrap()
        .split("\n---\n")
        .next()
        .unwrap();
    front
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap();
            (
                k.to_string(),
                serde_json::from_str(v).unwrap_or_else(|e| panic!("{l}: {e}")),
            )
        })
        .collect()
}

#[test]
fn a_run_writes_a_card_with_its_test_results_and_export_keeps_it() {
    let dir = tmpdir("model-card");
    let model = dir.join("model");
    write_tiny_bert(&model, 2);
    let (train, test) = (dir.join("train.csv"), dir.join("test.csv"));
    write_sentiment_csv(&train, 24, 1);
    write_sentiment_csv(&test, 12, 2);
    let out = dir.join("run");
    let mut args = text_train_args(&model, &train, &out);
    let test_s = test.to_str().unwrap();
    args.extend(
        [
            "--test",
            test_s,
            "--max-steps",
            "2",
            "--freeze",
            "bert.embeddings.*",
        ]
        .map(String::from),
    );
    args.push("--json".into());
    let report = finetune_ok(&args);
    let report: Value = serde_json::from_str(&report).unwrap();
    let card = out.join("README.md");
    let front = front_matter(&card);
    assert_eq!(front["library_name"], "transformers");
    assert_eq!(front["pipeline_tag"], "text-classification");
    assert!(front["tags"]
        .as_array()
        .unwrap()
        .contains(&"candle-finetune".into()));
    let results = &front["model-index"][0]["results"][0];
    assert_eq!(results["task"]["type"], "text-classification");
    let accuracy = results["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == "accuracy")
        .unwrap();
    assert_eq!(accuracy["value"], report["test"]["accuracy"]);
    let text = std::fs::read_to_string(&card).unwrap();
    for part in [
        "## Training hyperparameters",
        "- learning_rate: ",
        "frozen: `bert.embeddings.*`",
    ] {
        assert!(text.contains(part), "missing {part:?}:\n{text}");
    }

    let exported = dir.join("exported");
    finetune_ok(&[
        "export",
        "--checkpoint",
        out.to_str().unwrap(),
        "--output",
        exported.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(exported.join("README.md")).unwrap(),
        text
    );
    std::fs::remove_dir_all(&dir).ok();
}
