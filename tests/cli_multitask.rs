//! Multi-task fine-tuning (`--task-config`): two text tasks on the real all-MiniLM-L6-v2
//! (`assets/minilm`) — the film reviews' sentiment, and a second labelling of the same kind of
//! text (long or short review) from a small CSV with other column names — trained as one
//! encoder with two heads. The export holds a transformers folder per task (each with its own
//! labels, loading alone in `finetune predict` and `finetune eval`) whose encoder is exactly
//! the shared one in `backbone/`; bad task files are one line each.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Complete rows (no quoted line break, not blank) of a review CSV, without its header.
fn review_rows(file: &Path, skip: usize, take: usize) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && l.matches('"').count() % 2 == 0)
        .skip(skip)
        .take(take)
        .map(String::from)
        .collect()
}

/// The review text of a `text,label,movie_name` row.
fn review_text(row: &str) -> String {
    if let Some(rest) = row.strip_prefix('"') {
        let end = rest.rfind("\",").unwrap();
        rest[..end].replace("\"\"", "\"")
    } else {
        row.split(',').next().unwrap().to_string()
    }
}

/// The sentiment task's CSV (the asset's columns) and the length task's (`review,kind`).
fn write_tasks(dir: &Path) -> PathBuf {
    let reviews = asset("rotten_tomatoes/train.csv");
    let header = "text,label,movie_name\n";
    for (name, skip, take) in [("sent-train.csv", 0, 48), ("sent-eval.csv", 48, 16)] {
        let body = review_rows(&reviews, skip, take).join("\n");
        std::fs::write(dir.join(name), format!("{header}{body}\n")).unwrap();
    }
    for (name, skip, take) in [("len-train.csv", 100, 40), ("len-test.csv", 140, 16)] {
        let mut body = String::from("review,kind\n");
        for row in review_rows(&reviews, skip, take) {
            let text = review_text(&row);
            let kind = if text.len() > 110 { "long" } else { "short" };
            body += &format!("\"{}\",{kind}\n", text.replace('"', "\"\""));
        }
        std::fs::write(dir.join(name), body).unwrap();
    }
    let file = dir.join("tasks.toml");
    std::fs::write(
        &file,
        r#"[[task]]
name = "sentiment"
train = "sent-train.csv"
eval = "sent-eval.csv"

[[task]]
name = "length"
train = "len-train.csv"
test = "len-test.csv"
text_column = "review"
label_column = "kind"
problem_type = "single_label_classification"
weight = 0.5
"#,
    )
    .unwrap();
    file
}

fn names(t: &std::collections::HashMap<String, candle_core::Tensor>) -> BTreeSet<String> {
    t.keys().cloned().collect()
}

#[test]
fn two_text_tasks_train_one_minilm_and_export_a_folder_per_head() {
    let model = asset("minilm");
    let dir = tmpdir("multitask-minilm");
    let tasks = write_tasks(&dir);
    let out = dir.join("out");
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let report = finetune_ok(&[
        "train",
        "--task",
        "text-classification",
        "--task-config",
        &p(&tasks),
        "--model",
        &p(&model),
        "--output",
        &p(&out),
        "--max-steps",
        "6",
        "--batch-size",
        "8",
        "--max-length",
        "48",
        "--lr",
        "1e-4",
        "--task-sampling",
        "temperature",
        "--task-temperature",
        "3",
        "--no-progress",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let listed = report["tasks"].as_array().expect("a tasks list");
    assert_eq!(listed.len(), 2, "{report}");
    assert_eq!(listed[0]["name"], "sentiment");
    assert_eq!(listed[0]["labels"], serde_json::json!(["fresh", "rotten"]));
    assert_eq!(listed[1]["name"], "length");
    assert_eq!(listed[1]["labels"], serde_json::json!(["long", "short"]));
    assert_eq!(listed[1]["weight"], 0.5);
    // Temperature 3 over 48 and 40 rows.
    let (a, b) = (48f64.powf(1.0 / 3.0), 40f64.powf(1.0 / 3.0));
    let p0 = listed[0]["probability"].as_f64().unwrap();
    assert!((p0 - a / (a + b)).abs() < 1e-9, "{p0}");
    assert_eq!(
        listed[0]["eval"]["samples"], 16,
        "sentiment evaluated on its eval file"
    );
    assert!(listed[0]["eval"]["accuracy"].is_number());
    assert!(listed[0]["test"].is_null());
    assert_eq!(
        listed[1]["test"]["samples"], 16,
        "length tested on its test file"
    );
    let summary = read_json(&out.join("train_summary.json"));
    assert_eq!(summary["global_step"], 6);
    assert_eq!(summary["tasks"][1]["test"], listed[1]["test"]);
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("\"eval/sentiment/accuracy\"")),
        "{metrics}"
    );

    // A folder per task: the shared encoder, its own head and labels.
    let sent = load_tensors(&out.join("sentiment/model.safetensors"));
    let len = load_tensors(&out.join("length/model.safetensors"));
    let backbone = load_tensors(&out.join("backbone/model.safetensors"));
    assert_eq!(names(&sent), names(&len));
    let head = ["classifier.weight", "classifier.bias"];
    for h in head {
        assert!(sent.contains_key(h), "{h}");
    }
    assert!(
        !same_bits(&sent["classifier.weight"], &len["classifier.weight"]),
        "each task has its own head"
    );
    let encoder: BTreeSet<String> = names(&sent)
        .into_iter()
        .filter(|n| !head.contains(&n.as_str()))
        .map(|n| n.strip_prefix("bert.").unwrap().to_string())
        .collect();
    assert_eq!(
        names(&backbone),
        encoder,
        "backbone/ holds the encoder, and only it"
    );
    for n in &encoder {
        let prefixed = format!("bert.{n}");
        assert!(same_bits(&sent[&prefixed], &backbone[n]), "{n} (sentiment)");
        assert!(same_bits(&len[&prefixed], &backbone[n]), "{n} (length)");
    }
    let pretrained = load_tensors(&model.join("model.safetensors"));
    let w = "encoder.layer.5.output.dense.weight";
    assert!(
        !same_bits(&pretrained[w], &backbone[w]),
        "the encoder trained"
    );

    for (task, labels) in [
        ("sentiment", ["fresh", "rotten"]),
        ("length", ["long", "short"]),
    ] {
        let c = read_json(&out.join(task).join("config.json"));
        assert_eq!(c["architectures"][0], "BertForSequenceClassification");
        assert_eq!(c["id2label"]["0"], labels[0], "{task}");
        assert_eq!(c["id2label"]["1"], labels[1], "{task}");
        assert_eq!(c["problem_type"], "single_label_classification");
        for f in ["vocab.txt", "run_config.json", "README.md"] {
            assert!(out.join(task).join(f).is_file(), "{task}/{f}");
        }
        let card = std::fs::read_to_string(out.join(task).join("README.md")).unwrap();
        // Its card is its own: its name, its results (the test split's, else the eval's).
        let result = if task == "sentiment" {
            &listed[0]["eval"]
        } else {
            &listed[1]["test"]
        };
        let acc = format!("- accuracy: {:.4}", result["accuracy"].as_f64().unwrap());
        assert!(
            card.contains(&format!("# {task}\n")) && card.contains(&acc),
            "{card}"
        );
    }
    let c = read_json(&out.join("backbone/config.json"));
    assert_eq!(c["architectures"][0], "BertModel");
    assert!(c.get("id2label").is_none(), "{c}");

    // Each task's folder works alone.
    let pred = finetune_ok(&[
        "predict",
        "--model",
        &p(&out.join("length")),
        "--text",
        "A quiet, patient film.",
        "--json",
    ]);
    assert!(
        pred.contains("\"long\"") || pred.contains("\"short\""),
        "{pred}"
    );
    // `eval` reads each folder's recorded columns and length: the length task's file has
    // its own column names.
    for (task, data, split, i) in [
        ("sentiment", "sent-eval.csv", "eval", 0),
        ("length", "len-test.csv", "test", 1),
    ] {
        let eval = finetune_ok(&[
            "eval",
            "--model",
            &p(&out.join(task)),
            "--data",
            &p(&dir.join(data)),
            "--json",
        ]);
        let eval: serde_json::Value = serde_json::from_str(&eval).unwrap();
        assert_eq!(eval["samples"], 16, "{task}: {eval}");
        let acc = eval["accuracy"].as_f64().unwrap();
        let during = listed[i][split]["accuracy"].as_f64().unwrap();
        assert!(
            (acc - during).abs() < 1e-9,
            "{task}: eval {acc} vs the run's {during}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `train` over a task file holding `text` (beside a valid `a.csv`), which must fail with one
/// line containing every needle.
fn refused(tag: &str, text: &str, extra: &[&str], needles: &[&str]) {
    let dir = tmpdir(tag);
    let model = dir.join("tiny-bert");
    write_tiny_bert(&model, 4);
    write_sentiment_csv(&dir.join("a.csv"), 16, 1);
    let file = dir.join("tasks.toml");
    std::fs::write(&file, text).unwrap();
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let mut args: Vec<String> = ["train", "--task", "text-classification", "--task-config"]
        .map(String::from)
        .into();
    args.extend([p(&file), "--model".into(), p(&model), "--output".into()]);
    args.push(p(&dir.join("out")));
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = finetune(&args);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{tag}: accepted");
    assert_eq!(err.trim_end().lines().count(), 1, "{tag}: {err}");
    for n in needles {
        assert!(err.contains(n), "{tag}: missing {n:?}: {err}");
    }
    assert!(
        !dir.join("out").exists(),
        "{tag}: refused before any output"
    );
    std::fs::remove_dir_all(&dir).ok();
}

const GOOD: &str = "[[task]]\nname = \"a\"\ntrain = \"a.csv\"\n";

#[test]
fn bad_task_files_and_unsupported_flags_are_one_line_each() {
    refused(
        "mt-noname",
        "[[task]]\ntrain = \"a.csv\"\n",
        &[],
        &["tasks.toml", "task #1 has no \"name\""],
    );
    refused(
        "mt-dup",
        &format!("{GOOD}{GOOD}"),
        &[],
        &["tasks.toml", "two tasks are named \"a\""],
    );
    refused(
        "mt-unknown",
        &format!("{GOOD}lables = [\"x\"]\n"),
        &[],
        &[
            "tasks.toml",
            "task \"a\"",
            "unknown key \"lables\"",
            "did you mean \"labels\"",
        ],
    );
    refused(
        "mt-weight",
        &format!("{GOOD}weight = -1\n"),
        &[],
        &["tasks.toml", "task \"a\"", "\"weight\" must be"],
    );
    refused(
        "mt-missing",
        "[[task]]\nname = \"a\"\ntrain = \"nowhere.csv\"\n",
        &[],
        &["tasks.toml", "task \"a\"", "nowhere.csv", "does not exist"],
    );
    refused("mt-lora", GOOD, &["--lora"], &["--lora", "--task-config"]);
    refused(
        "mt-teacher",
        GOOD,
        &["--teacher", "x"],
        &["--teacher", "--task-config"],
    );
    refused(
        "mt-resume",
        GOOD,
        &["--resume"],
        &["--resume", "--task-config"],
    );
    refused(
        "mt-train",
        GOOD,
        &["--train", "x.csv"],
        &["--task-config", "--train"],
    );
    refused(
        "mt-temp",
        GOOD,
        &["--task-temperature", "2"],
        &["--task-temperature applies to --task-sampling temperature"],
    );
    refused(
        "mt-temp0",
        GOOD,
        &["--task-sampling", "temperature", "--task-temperature", "0"],
        &["--task-temperature must be a number above 0"],
    );
}

/// A tiny BERT and two toy tasks (sentiment, and a regression on the text's word count),
/// with their task file; returns the model and the task file.
fn tiny_tasks(dir: &Path) -> (PathBuf, PathBuf) {
    let model = dir.join("tiny-bert");
    write_tiny_bert(&model, 4);
    write_sentiment_csv(&dir.join("a.csv"), 24, 1);
    let mut body = String::from("text,words\n");
    for (text, _) in sentiment_rows(20, 2) {
        body += &format!("{text},{:.1}\n", text.split(' ').count() as f64 / 10.0);
    }
    std::fs::write(dir.join("b.csv"), body).unwrap();
    let file = dir.join("tasks.toml");
    std::fs::write(
        &file,
        "[[task]]\nname = \"a\"\ntrain = \"a.csv\"\n\n[[task]]\nname = \"b\"\n\
         train = \"b.csv\"\nlabel_column = \"words\"\nweight = 2\n",
    )
    .unwrap();
    (model, file)
}

fn tiny_run(model: &Path, tasks: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let mut args: Vec<String> = ["train", "--task", "text-classification", "--task-config"]
        .map(String::from)
        .into();
    args.extend([
        p(tasks),
        "--model".into(),
        p(model),
        "--output".into(),
        p(out),
    ]);
    for a in [
        "--max-steps",
        "4",
        "--batch-size",
        "4",
        "--lr",
        "1e-3",
        "--json",
    ] {
        args.push(a.into());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    serde_json::from_str(&finetune_ok(&args)).unwrap()
}

#[test]
fn a_seed_repeats_a_run_and_freezing_names_the_shared_encoder() {
    let dir = tmpdir("multitask-tiny");
    let (model, tasks) = tiny_tasks(&dir);
    let sampling = ["--task-sampling", "temperature", "--seed", "5"];
    let report = tiny_run(&model, &tasks, &dir.join("one"), &sampling);
    assert_eq!(report["tasks"][1]["problem_type"], "regression", "{report}");
    assert_eq!(report["tasks"][1]["weight"], 2.0);
    tiny_run(&model, &tasks, &dir.join("two"), &sampling);
    for f in ["a", "b", "backbone"] {
        let f = format!("{f}/model.safetensors");
        assert_same_tensors(&dir.join("one").join(&f), &dir.join("two").join(&f));
    }
    let other = tiny_run(&model, &tasks, &dir.join("other"), &["--seed", "6"]);
    assert_eq!(
        other["tasks"][0]["probability"].as_f64().unwrap(),
        24.0 / 44.0
    );
    let (x, y) = (
        load_tensors(&dir.join("one/a/model.safetensors")),
        load_tensors(&dir.join("other/a/model.safetensors")),
    );
    assert!(!same_bits(&x["classifier.weight"], &y["classifier.weight"]));

    // The encoder frozen by its own names: exported as loaded, while both heads train.
    let frozen = dir.join("frozen");
    let report = tiny_run(&model, &tasks, &frozen, &["--freeze", "bert.*"]);
    let frozen_names = report["frozen"].as_array().unwrap();
    assert!(!frozen_names.is_empty(), "{report}");
    assert!(frozen_names
        .iter()
        .all(|n| n.as_str().unwrap().starts_with("bert.")));
    let pretrained = load_tensors(&model.join("model.safetensors"));
    let backbone = load_tensors(&frozen.join("backbone/model.safetensors"));
    for (n, t) in &backbone {
        assert!(same_bits(&pretrained[&format!("bert.{n}")], t), "{n} moved");
    }
    let a = load_tensors(&frozen.join("a/model.safetensors"));
    assert!(!same_bits(
        &a["bert.pooler.dense.weight"],
        &x["bert.pooler.dense.weight"]
    ));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_settings_file_takes_the_multi_task_keys() {
    let dir = tmpdir("multitask-keys");
    let (model, tasks) = tiny_tasks(&dir);
    let run = dir.join("run.toml");
    let toml = format!(
        "task_config = {:?}\ntask_sampling = \"temperature\"\ntask_temperature = 4.0\n",
        tasks.to_str().unwrap()
    );
    std::fs::write(&run, toml).unwrap();
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let out = finetune_ok(&[
        "train",
        "--task",
        "text-classification",
        "--config",
        &p(&run),
        "--model",
        &p(&model),
        "--output",
        &p(&dir.join("out")),
        "--dry-run",
    ]);
    let resolved: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(resolved["task_config"], p(&tasks));
    assert_eq!(resolved["task_sampling"], "temperature");
    assert_eq!(resolved["task_temperature"], 4.0);
    std::fs::remove_dir_all(&dir).ok();
}

/// Two tasks on `family`'s test fixture: the export's per-task folders and `backbone/` follow
/// the family's own naming (its prefix, its head, its base model).
fn other_family_exports_its_base_model(family: &str, prefix: &str, base: &str) {
    let dir = tmpdir(&format!("multitask-{family}"));
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(family);
    let texts = [
        "the movie was great",
        "a terrible film",
        "great music",
        "weak dialogue",
    ];
    let (mut a, mut b) = (String::from("text,label\n"), String::from("text,label\n"));
    for i in 0..16 {
        let t = texts[i % 4];
        a += &format!("{t},{}\n", if i % 2 == 0 { "pos" } else { "neg" });
        b += &format!(
            "{t},{}\n",
            if t.split(' ').count() > 2 {
                "long"
            } else {
                "short"
            }
        );
    }
    std::fs::write(dir.join("a.csv"), a).unwrap();
    std::fs::write(dir.join("b.csv"), b).unwrap();
    let tasks = dir.join("tasks.toml");
    let toml =
        "[[task]]\nname = \"a\"\ntrain = \"a.csv\"\n[[task]]\nname = \"b\"\ntrain = \"b.csv\"\n";
    std::fs::write(&tasks, toml).unwrap();
    let out = dir.join("out");
    tiny_run(&model, &tasks, &out, &["--no-progress"]);
    let backbone = load_tensors(&out.join("backbone/model.safetensors"));
    assert_eq!(
        read_json(&out.join("backbone/config.json"))["architectures"][0],
        base
    );
    for task in ["a", "b"] {
        let t = load_tensors(&out.join(task).join("model.safetensors"));
        let encoder: BTreeSet<String> = names(&t)
            .iter()
            .filter_map(|n| n.strip_prefix(prefix).map(String::from))
            .collect();
        assert!(encoder.len() < t.len(), "{task}: a head beside the encoder");
        assert_eq!(names(&backbone), encoder, "{family} {task}");
        for n in &encoder {
            assert!(same_bits(&t[&format!("{prefix}{n}")], &backbone[n]), "{n}");
        }
        let labels = read_json(&out.join(task).join("config.json"))["id2label"].clone();
        let want = if task == "a" {
            ["neg", "pos"]
        } else {
            ["long", "short"]
        };
        assert_eq!(
            (labels["0"].clone(), labels["1"].clone()),
            (want[0].into(), want[1].into())
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn distilbert_and_roberta_share_their_encoder_too() {
    other_family_exports_its_base_model("distilbert", "distilbert.", "DistilBertModel");
    other_family_exports_its_base_model("roberta", "roberta.", "RobertaModel");
}
