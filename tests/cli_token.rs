//! Token classification through the CLI on small synthetic sentences (names, places and
//! companies in templates, tagged IOB2) over the tiny `BertForTokenClassification` fixture:
//! train (CoNLL training file, JSONL evaluation file) → `eval --json` (seqeval's metrics,
//! per-type supports counted here) → `predict --json` (entities, tokens, a row of logits per
//! token); bad input is one error line naming the file and what is wrong, with no model
//! written.

mod common;
#[path = "robustness/support.rs"]
#[allow(dead_code)]
mod support;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use support::{assert_clean_failure, assert_no_model_written};

const PER: [&[&str]; 3] = [&["John"], &["Mary", "Smith"], &["Johnson"]];
const LOC: [&[&str]; 3] = [&["Paris"], &["Berlin"], &["New", "York"]];
const ORG: [&[&str]; 1] = [&["Acme", "Corp"]];

/// Sentence `i`: words and IOB2 tags from one of three templates.
fn sentence(i: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn entity(out: &mut Vec<(String, String)>, words: &[&str], ty: &str) {
        for (k, w) in words.iter().enumerate() {
            let tag = if k == 0 { "B" } else { "I" };
            out.push((w.to_string(), format!("{tag}-{ty}")));
        }
    }
    let per = PER[i % 3];
    let loc = LOC[(i / 3) % 3];
    entity(&mut out, per, "PER");
    let rest: Vec<(&str, Option<&[&str]>)> = match i % 4 {
        0 => vec![("lives", None), ("in", None), ("", Some(loc))],
        1 => vec![("works", None), ("at", None), ("", Some(ORG[0]))],
        2 => vec![
            ("visited", None),
            ("", Some(loc)),
            ("and", None),
            ("", Some(LOC[i % 3])),
        ],
        _ => vec![("visited", None), ("the", None), ("city", None)],
    };
    for (w, ent) in rest {
        match ent {
            Some(words) if words == ORG[0] => entity(&mut out, words, "ORG"),
            Some(words) => entity(&mut out, words, "LOC"),
            None => out.push((w.to_string(), "O".into())),
        }
    }
    out.push((".".into(), "O".into()));
    out
}

fn write_conll(path: &Path, range: std::ops::Range<usize>) {
    let mut text = String::from("-DOCSTART- -X- O\n\n");
    for i in range {
        for (w, t) in sentence(i) {
            text += &format!("{w} NNP {t}\n");
        }
        text += "\n";
    }
    std::fs::write(path, text).unwrap();
}

fn write_jsonl(path: &Path, range: std::ops::Range<usize>) {
    let lines: Vec<String> = range
        .map(|i| {
            let (w, t): (Vec<String>, Vec<String>) = sentence(i).into_iter().unzip();
            serde_json::json!({"tokens": w, "ner_tags": t}).to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ner/bert-token")
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn train_args(train: &Path, eval: &Path, out: &Path) -> Vec<String> {
    [
        "train",
        "--task",
        "token-classification",
        "--model",
        &s(&model()),
        "--train",
        &s(train),
        "--eval",
        &s(eval),
        "--output",
        &s(out),
        "--max-length",
        "16",
        "--batch-size",
        "8",
        "--lr",
        "3e-3",
        "--epochs",
        "6",
        "--metric",
        "f1",
        "--load-best-at-end",
        "--seed",
        "3",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn train_eval_predict_token_classification() {
    let dir = tmpdir("token-e2e");
    let (train, eval, out) = (
        dir.join("train.conll"),
        dir.join("eval.jsonl"),
        dir.join("out"),
    );
    write_conll(&train, 0..48);
    write_jsonl(&eval, 48..64);
    finetune_ok(&train_args(&train, &eval, &out));
    let config = read_json(&out.join("config.json"));
    assert_eq!(config["architectures"][0], "BertForTokenClassification");
    let labels: Vec<&str> = (0..7)
        .map(|i| config["id2label"][i.to_string()].as_str().unwrap())
        .collect();
    // The checkpoint was trained for these tags: its head and its order stay.
    assert_eq!(
        labels,
        ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    );
    let run = read_json(&out.join("run_config.json"));
    assert_eq!(run["task"], "token-classification");
    assert_eq!(run["label_all_tokens"], false);
    assert_eq!(run["max_length"], 16);
    assert!(run.get("text_column").is_none() && run.get("augment").is_none());

    // eval --json: seqeval's keys; supports are the evaluation file's entities.
    let metrics: Value = serde_json::from_str(&finetune_ok(&[
        "eval",
        "--model",
        &s(&out),
        "--data",
        &s(&eval),
        "--json",
    ]))
    .unwrap();
    let keys: Vec<&String> = metrics.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["accuracy", "f1", "loss", "per_type", "precision", "recall"]
    );
    let mut support = std::collections::BTreeMap::<String, u64>::new();
    for i in 48..64 {
        for (_, t) in sentence(i) {
            if let Some(ty) = t.strip_prefix("B-") {
                *support.entry(ty.to_string()).or_default() += 1;
            }
        }
    }
    for (ty, n) in &support {
        assert_eq!(
            metrics["per_type"][ty]["support"].as_u64(),
            Some(*n),
            "{ty}"
        );
    }
    let f1 = metrics["f1"].as_f64().unwrap();
    assert!(f1 > 0.8, "entity F1 after training: {metrics}");
    let summary = read_json(&out.join("train_summary.json"));
    let best = summary["best_metric"].as_f64().unwrap();
    assert!((best - f1).abs() < 1e-9, "best f1 {best} vs eval {f1}");

    // predict --json: the entities of a new sentence, a row of logits per token.
    let text = "Mary Smith lives in New York.";
    let line = finetune_ok(&["predict", "--model", &s(&out), "--text", text, "--json"]);
    let p: Value = serde_json::from_str(line.trim()).unwrap();
    let tokens = p["tokens"].as_array().unwrap();
    assert_eq!(tokens.first().unwrap(), "[CLS]");
    let logits = p["logits"].as_array().unwrap();
    assert_eq!(logits.len(), tokens.len());
    assert!(logits.iter().all(|r| r.as_array().unwrap().len() == 7));
    let found: Vec<(String, String)> = p["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let (a, b) = (e["start"].as_u64().unwrap(), e["end"].as_u64().unwrap());
            assert_eq!(e["text"].as_str().unwrap(), &text[a as usize..b as usize]);
            assert!(e["score"].as_f64().unwrap() > 0.0);
            (
                e["label"].as_str().unwrap().into(),
                e["text"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("PER".into(), "Mary Smith".into()),
            ("LOC".into(), "New York".into())
        ]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_conll_line_with_other_columns_is_refused_naming_file_and_line() {
    let dir = tmpdir("token-bad-columns");
    let (train, eval, out) = (
        dir.join("train.conll"),
        dir.join("eval.jsonl"),
        dir.join("out"),
    );
    write_conll(&train, 0..4);
    let mut text = std::fs::read_to_string(&train).unwrap();
    text = text.replacen("lives NNP O", "lives O", 1);
    std::fs::write(&train, text).unwrap();
    write_jsonl(&eval, 4..6);
    let run = finetune(&train_args(&train, &eval, &out));
    assert_clean_failure(
        &run,
        &["train.conll", "line 4", "2 columns", "line 3 has 3"],
    );
    assert_no_model_written(&out);
}

#[test]
fn an_eval_tag_outside_the_training_labels_is_refused_naming_it() {
    let dir = tmpdir("token-bad-tag");
    let (train, eval, out) = (
        dir.join("train.conll"),
        dir.join("eval.jsonl"),
        dir.join("out"),
    );
    write_conll(&train, 0..8);
    std::fs::write(
        &eval,
        "{\"tokens\": [\"John\", \"lives\"], \"ner_tags\": [\"B-PER\", \"O\"]}\n\
         {\"tokens\": [\"Paris\"], \"ner_tags\": [\"B-GPE\"]}\n",
    )
    .unwrap();
    let run = finetune(&train_args(&train, &eval, &out));
    assert_clean_failure(&run, &["eval.jsonl", "row 2", "`B-GPE`"]);
    assert_no_model_written(&out);
}

#[test]
fn tokens_and_tags_of_different_lengths_are_refused_naming_the_row() {
    let dir = tmpdir("token-bad-length");
    let (train, eval, out) = (
        dir.join("train.jsonl"),
        dir.join("eval.jsonl"),
        dir.join("out"),
    );
    write_jsonl(&train, 0..4);
    std::fs::write(
        &eval,
        "{\"tokens\": [\"John\", \"lives\", \"here\"], \"ner_tags\": [\"B-PER\", \"O\"]}\n",
    )
    .unwrap();
    let run = finetune(&train_args(&train, &eval, &out));
    assert_clean_failure(&run, &["eval.jsonl", "row 1", "3 tokens but 2 tags"]);
    assert_no_model_written(&out);
}

/// Integer tags name the classes of `--labels` (as a `datasets` `ClassLabel` sequence does);
/// sentences longer than `--max-length` are cut and counted in one warning.
#[test]
fn integer_tags_with_labels_train() {
    let dir = tmpdir("token-int-tags");
    let (train, out) = (dir.join("train.jsonl"), dir.join("out"));
    let names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"];
    let lines: Vec<String> = (0..8)
        .map(|i| {
            let (w, t): (Vec<String>, Vec<String>) = sentence(i).into_iter().unzip();
            let ids: Vec<usize> = t
                .iter()
                .map(|t| names.iter().position(|n| n == t).unwrap())
                .collect();
            serde_json::json!({"words": w, "tags": ids}).to_string()
        })
        .collect();
    std::fs::write(&train, lines.join("\n")).unwrap();
    // Every sentence has at least 5 words: with [CLS] and [SEP] none fits in 6 tokens.
    let run = finetune(&[
        "train",
        "--max-length",
        "6",
        "--task",
        "token-classification",
        "--model",
        &s(&model()),
        "--train",
        &s(&train),
        "--output",
        &s(&out),
        "--max-steps",
        "2",
        "--batch-size",
        "4",
        "--tokens-column",
        "words",
        "--tags-column",
        "tags",
        "--labels",
        &names.join(","),
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: 8 sentences are longer than --max-length 6 tokens"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["labels"], serde_json::json!(names));
    let run = read_json(&out.join("run_config.json"));
    assert_eq!(
        (run["tokens_column"].as_str(), run["tags_column"].as_str()),
        (Some("words"), Some("tags"))
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `--class-weights auto`: inverse frequency of the training tags (counted here), mean 1,
/// recorded in `run_config.json`; a list of the wrong length is one error line.
#[test]
fn class_weights_auto_are_recorded_and_a_wrong_count_is_refused() {
    let dir = tmpdir("token-class-weights");
    let (train, eval, out) = (
        dir.join("train.conll"),
        dir.join("eval.jsonl"),
        dir.join("out"),
    );
    write_conll(&train, 0..8);
    write_jsonl(&eval, 8..10);
    let names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"];
    let mut counts = [0f64; 7];
    for i in 0..8 {
        for (_, t) in sentence(i) {
            counts[names.iter().position(|n| *n == t).unwrap()] += 1.0;
        }
    }
    let inv: Vec<f64> = counts
        .iter()
        .map(|&n| if n > 0.0 { 1.0 / n } else { 0.0 })
        .collect();
    let mean = inv.iter().sum::<f64>() / 7.0;
    let mut args = train_args(&train, &eval, &out);
    args.extend(["--class-weights", "auto", "--max-steps", "2"].map(String::from));
    finetune_ok(&args);
    let run = read_json(&out.join("run_config.json"));
    let got: Vec<f64> = run["class_weights"]
        .as_str()
        .unwrap()
        .split(',')
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(got.len(), 7);
    for (g, i) in got.iter().zip(&inv) {
        assert!((g - i / mean).abs() < 1e-12, "{got:?}");
    }
    let out2 = dir.join("out2");
    let mut args = train_args(&train, &eval, &out2);
    args.extend(["--class-weights", "1,2,3"].map(String::from));
    let run = finetune(&args);
    assert_clean_failure(&run, &["--class-weights", "3 weights for 7 classes"]);
    assert_no_model_written(&out2);
    std::fs::remove_dir_all(&dir).ok();
}
