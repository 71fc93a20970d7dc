//! Multi-label classification and regression through the CLI on the tiny BERT and toy texts:
//! the problem type told from the labels (`;`-separated names; numbers with a fraction) or
//! given, 0/1 label columns, `config.json`'s `problem_type`, the losses checked against
//! PyTorch's formulas over the logits `predict` prints (BCE-with-logits, MSE), their metrics,
//! `--pos-weight` and `--threshold`; bad labels are one error line, no model written.

mod common;
#[path = "robustness/support.rs"]
#[allow(dead_code)]
mod support;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use support::{assert_clean_failure, assert_no_model_written};

/// A toy text and what it holds: five words, a positive one first (probability ½), a negative
/// one fourth (½) and `music` last (⅓), neutral words elsewhere. The places are fixed so the
/// tiny random BERT learns the labels in a few hundred steps.
fn text(rng: &mut finetune_core::Rng) -> (String, usize, usize, bool) {
    let pick = |rng: &mut finetune_core::Rng, pool: &[&'static str]| {
        pool[rng.below(pool.len() as u64) as usize]
    };
    let (pos, neg, music) = (
        rng.below(2) as usize,
        rng.below(2) as usize,
        rng.below(3) == 0,
    );
    let mut words: Vec<&str> = (0..5).map(|_| pick(rng, &NEUTRAL[..15])).collect();
    if pos == 1 {
        words[0] = pick(rng, &POSITIVE);
    }
    if neg == 1 {
        words[3] = pick(rng, &NEGATIVE);
    }
    if music {
        words[4] = "music";
    }
    (words.join(" "), pos, neg, music)
}

/// The label set of a text: `pos`, `neg`, `music` (possibly none).
fn label_set(pos: usize, neg: usize, music: bool) -> Vec<&'static str> {
    [(pos > 0, "pos"), (neg > 0, "neg"), (music, "music")]
        .into_iter()
        .filter_map(|(on, l)| on.then_some(l))
        .collect()
}

/// `rows` multi-label rows as CSV: `text,label` with `;`-separated labels.
fn write_multi_label(path: &Path, rows: usize, seed: u64) -> Vec<(String, Vec<&'static str>)> {
    let mut rng = finetune_core::Rng::seed_from_u64(seed);
    let data: Vec<_> = (0..rows)
        .map(|_| {
            let (t, p, n, m) = text(&mut rng);
            (t, label_set(p, n, m))
        })
        .collect();
    let body: String = data
        .iter()
        .map(|(t, l)| format!("{t},{}\n", l.join(";")))
        .collect();
    std::fs::write(path, format!("text,label\n{body}")).unwrap();
    data
}

/// `rows` regression rows as CSV: `text,score` with score = positives − negatives + 0.5.
fn write_regression(path: &Path, rows: usize, seed: u64) -> Vec<(String, f64)> {
    let mut rng = finetune_core::Rng::seed_from_u64(seed);
    let data: Vec<_> = (0..rows)
        .map(|_| {
            let (t, p, n, _) = text(&mut rng);
            (t, p as f64 - n as f64 + 0.5)
        })
        .collect();
    let body: String = data.iter().map(|(t, v)| format!("{t},{v:.1}\n")).collect();
    std::fs::write(path, format!("text,score\n{body}")).unwrap();
    data
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// A test folder with the tiny BERT.
fn setup(tag: &str) -> (PathBuf, PathBuf) {
    let dir = tmpdir(tag);
    let model = dir.join("tiny-bert");
    write_tiny_bert(&model, 11);
    (dir, model)
}

/// `train` on `train` (evaluated on `eval`) into `out` with the quick settings and `extra`.
fn train_args(model: &Path, train: &Path, eval: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = text_train_args(model, train, out);
    a.extend(["--eval".into(), s(eval)]);
    let quick = [
        "--lr",
        "1e-2",
        "--batch-size",
        "8",
        "--max-length",
        "16",
        "--no-progress",
    ];
    a.extend(quick.iter().chain(extra).map(|x| x.to_string()));
    if !extra.contains(&"--epochs") {
        a.extend(["--epochs".to_string(), "15".to_string()]);
    }
    a
}

/// `predict --json` of `texts`: one object per text.
fn predict(out: &Path, texts: &[&str], extra: &[&str]) -> Vec<Value> {
    let mut a = vec![
        "predict".to_string(),
        "--model".into(),
        s(out),
        "--json".into(),
    ];
    a.push("--text".into());
    a.extend(texts.iter().map(|t| t.to_string()));
    a.extend(extra.iter().map(|x| x.to_string()));
    finetune_ok(&a)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn eval_json(out: &Path, data: &Path) -> Value {
    let a = ["eval", "--model", &s(out), "--data", &s(data), "--json"];
    serde_json::from_str(&finetune_ok(&a)).unwrap()
}

#[test]
fn multi_label_from_separated_labels_trains_evaluates_and_predicts() {
    let (dir, model) = setup("multi-label");
    let (train, eval, out) = (dir.join("train.csv"), dir.join("eval.csv"), dir.join("out"));
    write_multi_label(&train, 160, 1);
    let truth = write_multi_label(&eval, 24, 2);
    finetune_ok(&train_args(
        &model,
        &train,
        &eval,
        &out,
        &["--metric", "f1"],
    ));

    let config = read_json(&out.join("config.json"));
    assert_eq!(config["problem_type"], "multi_label_classification");
    // The labels, sorted; the run records the problem it told from the data.
    let names: Vec<&str> = (0..3)
        .map(|i| config["id2label"][i.to_string()].as_str().unwrap())
        .collect();
    assert_eq!(names, ["music", "neg", "pos"]);
    let run = read_json(&out.join("run_config.json"));
    assert_eq!(run["problem_type"], "multi_label_classification");

    // eval's loss is BCE-with-logits (PyTorch's formula) over the logits predict gives.
    let metrics = eval_json(&out, &eval);
    let texts: Vec<&str> = truth.iter().map(|(t, _)| t.as_str()).collect();
    let preds = predict(&out, &texts, &[]);
    let mut bce = 0.0;
    for ((_, labels), p) in truth.iter().zip(&preds) {
        for (i, x) in json_logits(p).into_iter().enumerate() {
            let t = f64::from(u8::from(labels.contains(&names[i])));
            bce -= t * sigmoid(x).ln() + (1.0 - t) * (1.0 - sigmoid(x)).ln();
        }
    }
    bce /= (truth.len() * 3) as f64;
    let loss = metrics["loss"].as_f64().unwrap();
    assert!(
        (loss - bce).abs() < 1e-4,
        "eval loss {loss} vs BCE of the logits {bce}"
    );
    for key in [
        "exact_match",
        "micro_f1",
        "macro_f1",
        "micro_precision",
        "micro_recall",
    ] {
        assert!(metrics[key].is_f64(), "{key} missing: {metrics}");
    }
    assert!(metrics.get("accuracy").is_none());
    // Training moved the loss well below an untrained head's ln 2 ≈ 0.69 per label, and the
    // label the tiny random BERT learns first (`music`, the last word) is got right. (Which
    // of `pos` / `neg` it learns in a few hundred steps varies: PyTorch's BERT of the same
    // weights does no better.)
    assert!(loss < 0.55, "eval loss after training: {metrics}");
    let music = &metrics["per_label_f1"][0];
    assert_eq!(music[0], "music");
    assert!(music[1].as_f64().unwrap() > 0.9, "{metrics}");

    // predict: sigmoid scores, `labels` = those reaching the threshold.
    for p in &preds {
        assert_threshold_labels(p, &names, 0.5);
        let top = json_logits(p).into_iter().map(sigmoid).fold(0.0, f64::max);
        assert!((p["score"].as_f64().unwrap() - top).abs() < 1e-9);
    }
    let all = predict(&out, &texts[..1], &["--threshold", "0"]);
    assert_eq!(all[0]["labels"].as_array().unwrap().len(), 3);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn label_columns_and_pos_weight() {
    let (dir, model) = setup("label-columns");
    let (train, eval, out) = (dir.join("train.csv"), dir.join("eval.csv"), dir.join("out"));
    // The same data as 0/1 columns, in an order that is not sorted.
    for (path, rows, seed) in [(&train, 80, 3), (&eval, 16, 4)] {
        let data = write_multi_label(path, rows, seed);
        let body: String = data
            .iter()
            .map(|(t, l)| {
                let bit = |n: &str| u8::from(l.contains(&n));
                format!("{t},{},{},{}\n", bit("pos"), bit("neg"), bit("music"))
            })
            .collect();
        std::fs::write(path, format!("text,pos,neg,music\n{body}")).unwrap();
    }
    let data = std::fs::read_to_string(&train).unwrap();
    let positives: Vec<usize> = (1..4)
        .map(|c| {
            data.lines()
                .skip(1)
                .filter(|l| l.split(',').nth(c) == Some("1"))
                .count()
        })
        .collect();
    let extra = [
        "--label-columns",
        "pos,neg,music",
        "--pos-weight",
        "auto",
        "--epochs",
        "1",
    ];
    finetune_ok(&train_args(&model, &train, &eval, &out, &extra));
    let config = read_json(&out.join("config.json"));
    assert_eq!(config["problem_type"], "multi_label_classification");
    let names: Vec<&str> = (0..3)
        .map(|i| config["id2label"][i.to_string()].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pos", "neg", "music"]);
    // auto: negatives / positives of each label, recorded (not in config.json).
    let run = read_json(&out.join("run_config.json"));
    let got: Vec<f64> = run["pos_weight"]
        .as_str()
        .unwrap()
        .split(',')
        .map(|w| w.parse().unwrap())
        .collect();
    for (g, p) in got.iter().zip(&positives) {
        assert!(
            (g - (80 - p) as f64 / *p as f64).abs() < 1e-12,
            "{got:?} vs {positives:?}"
        );
    }
    assert!(config.get("pos_weight").is_none());

    // eval reads the columns the run recorded.
    assert!(eval_json(&out, &eval)["micro_f1"].is_f64());

    let refused = |extra: &[&str], needles: &[&str]| {
        let bad_out = dir.join("refused");
        let run = finetune(&train_args(&model, &train, &eval, &bad_out, extra));
        assert_clean_failure(&run, needles);
        assert_no_model_written(&bad_out);
    };
    refused(
        &["--label-columns", "pos,neg,music", "--pos-weight", "1,2"],
        &["--pos-weight", "2 weights for 3 labels"],
    );
    refused(
        &[
            "--label-columns",
            "pos,neg,music",
            "--class-weights",
            "auto",
        ],
        &["--class-weights", "multi_label_classification"],
    );
    // A cell that is not 0/1 names the file, the row and the column.
    std::fs::write(
        &train,
        "text,pos,neg,music\nthe movie,1,0,0\nthe plot,1,2,0\n",
    )
    .unwrap();
    refused(
        &["--label-columns", "pos,neg,music"],
        &["train.csv", "row 2", "`neg`", "0 or 1", "`2`"],
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn regression_from_fractional_labels_trains_evaluates_and_predicts() {
    let (dir, model) = setup("regression");
    let (train, eval, out) = (dir.join("train.csv"), dir.join("eval.csv"), dir.join("out"));
    write_regression(&train, 160, 5);
    let truth = write_regression(&eval, 24, 6);
    let extra = ["--label-column", "score", "--metric", "mse"];
    finetune_ok(&train_args(&model, &train, &eval, &out, &extra));
    let config = read_json(&out.join("config.json"));
    assert_eq!(config["problem_type"], "regression");
    assert_eq!(config["id2label"]["0"], "LABEL_0");
    assert!(config["id2label"].get("1").is_none());

    // eval's loss is the MSE of the values predict gives; its metrics are theirs.
    let metrics = eval_json(&out, &eval);
    let texts: Vec<&str> = truth.iter().map(|(t, _)| t.as_str()).collect();
    let values: Vec<f64> = predict(&out, &texts, &[])
        .iter()
        .map(|p| {
            let v = p["value"].as_f64().unwrap();
            assert_eq!(p["score"].as_f64(), Some(v));
            assert_eq!(json_logits(p), [v]);
            v
        })
        .collect();
    let n = truth.len() as f64;
    let mse = truth
        .iter()
        .zip(&values)
        .map(|((_, t), v)| (t - v).powi(2))
        .sum::<f64>()
        / n;
    let mae = truth
        .iter()
        .zip(&values)
        .map(|((_, t), v)| (t - v).abs())
        .sum::<f64>()
        / n;
    assert!(
        (metrics["loss"].as_f64().unwrap() - mse).abs() < 1e-4,
        "{metrics} vs {mse}"
    );
    assert!((metrics["mse"].as_f64().unwrap() - mse).abs() < 1e-4);
    assert!((metrics["mae"].as_f64().unwrap() - mae).abs() < 1e-4);
    // The words decide the score: a trained model ranks the texts well.
    let spearman = metrics["spearman"].as_f64().unwrap();
    assert!(
        spearman > 0.8 && metrics["pearson"].as_f64().unwrap() > 0.8,
        "{metrics}"
    );

    // A label that is not a number, when regression is asked for, names its row.
    std::fs::write(&train, "text,score\nthe movie,0.5\nthe plot,high\n").unwrap();
    let bad_out = dir.join("refused");
    let extra = ["--label-column", "score", "--problem-type", "regression"];
    let run = finetune(&train_args(&model, &train, &eval, &bad_out, &extra));
    assert_clean_failure(
        &run,
        &["train.csv", "row 2", "`high`", "not a finite number"],
    );
    assert_no_model_written(&bad_out);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_multi_label_row_naming_an_unknown_label_is_refused() {
    let (dir, model) = setup("multi-label-unknown");
    let (train, eval, out) = (dir.join("train.csv"), dir.join("eval.csv"), dir.join("out"));
    write_multi_label(&train, 40, 7);
    std::fs::write(&eval, "text,label\nthe movie,pos\nthe plot,pos;sports\n").unwrap();
    let run = finetune(&train_args(&model, &train, &eval, &out, &["--epochs", "1"]));
    assert_clean_failure(
        &run,
        &[
            "eval.csv",
            "row 2",
            "`sports`",
            "not one of the training labels",
        ],
    );
    assert_no_model_written(&out);
    // --pos-weight needs multi-label data; --problem-type is text classification's.
    let sentiment = dir.join("sentiment.csv");
    write_sentiment_csv(&sentiment, 20, 1);
    let run = finetune(&train_args(
        &model,
        &sentiment,
        &sentiment,
        &out,
        &["--pos-weight", "auto"],
    ));
    assert_clean_failure(&run, &["--pos-weight", "single_label_classification"]);
    std::fs::remove_dir_all(&dir).ok();
}
