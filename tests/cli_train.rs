//! End to end through the `finetune` binary on a tiny generated BERT and toy sentiment data:
//! kill (SIGKILL) and exact resume, early stopping, gradual unfreezing, predict / export / eval,
//! the config file and bad data.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A test's folder with a tiny model and train / eval CSVs.
struct Setup {
    dir: PathBuf,
    model: PathBuf,
    train: PathBuf,
    eval: PathBuf,
    /// The model's initial (pretrained) tensors.
    initial: std::collections::HashMap<String, candle_core::Tensor>,
}

fn setup(tag: &str, train_rows: usize, eval_rows: usize) -> Setup {
    let dir = tmpdir(tag);
    let model = dir.join("tiny-bert");
    let initial = write_tiny_bert(&model, 11);
    let (train, eval) = (dir.join("train.csv"), dir.join("eval.csv"));
    write_sentiment_csv(&train, train_rows, 1);
    write_sentiment_csv(&eval, eval_rows, 2);
    Setup {
        dir,
        model,
        train,
        eval,
        initial,
    }
}

impl Drop for Setup {
    /// Removes the test's folder, unless the test failed (it is kept for a look).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Setup {
    /// `finetune train` for this setup into `output`, with `extra` flags.
    fn train_args(&self, output: &Path, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = [
            "train",
            "--task",
            "text-classification",
            "--model",
            self.model.to_str().unwrap(),
            "--train",
            self.train.to_str().unwrap(),
            "--eval",
            self.eval.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--batch-size",
            "8",
            "--max-length",
            "16",
            "--no-progress",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The training records of `metrics.jsonl` by step: `(loss, lr)`. A step logged twice (a
/// resumed run re-running the steps after its checkpoint) fails.
fn train_losses(output: &Path) -> BTreeMap<u64, (f64, f64)> {
    let text = std::fs::read_to_string(output.join("metrics.jsonl")).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let rec: Value = serde_json::from_str(line).unwrap();
        if let Some(loss) = rec.get("loss").and_then(Value::as_f64) {
            let step = rec["step"].as_u64().unwrap();
            let lr = rec["lr"].as_f64().unwrap();
            let old = out.insert(step, (loss, lr));
            assert!(
                old.is_none(),
                "{}: step {step} logged twice",
                output.display()
            );
        }
    }
    out
}

const RESUME_STEPS: u64 = 300;

#[test]
fn sigkill_then_resume_matches_an_uninterrupted_run_bit_for_bit() {
    let t = setup("resume", 200, 40);
    let flags = [
        "--max-steps",
        &RESUME_STEPS.to_string(),
        "--save-steps",
        "20",
        "--logging-steps",
        "1",
        "--lr",
        "1e-3",
        "--optimizer",
        "adamw",
        "--schedule",
        "linear",
        "--warmup-steps",
        "5",
        "--seed",
        "7",
    ]
    .map(String::from);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (a, b) = (t.dir.join("A"), t.dir.join("B"));
    finetune_ok(&t.train_args(&a, &flags));
    let final_ckpt = format!("checkpoint-{RESUME_STEPS}");
    assert!(a.join(&final_ckpt).is_dir() && a.join("model.safetensors").is_file());

    // The same run, killed once its first checkpoint is complete.
    let mut child = finetune_cmd()
        .args(t.train_args(&b, &flags))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let killed_after = loop {
        if let Some(&k) = checkpoint_steps(&b).first() {
            child.kill().unwrap();
            break k;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before its first checkpoint was seen");
        }
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("no checkpoint after two minutes");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let status = child.wait().unwrap();
    assert!(!status.success(), "the killed run reported success");
    assert!(killed_after > 0 && killed_after < RESUME_STEPS);
    // The run really was cut short: no final checkpoint, no exported model.
    assert!(
        !b.join(&final_ckpt).exists() && !b.join("model.safetensors").exists(),
        "the run finished before the kill; raise RESUME_STEPS ({:?})",
        checkpoint_steps(&b)
    );
    let left = checkpoint_steps(&b);
    assert!(*left.last().unwrap() < RESUME_STEPS);

    // Resume from an explicit checkpoint folder (in a copy) and from `latest`.
    let c = t.dir.join("C");
    copy_dir(&b, &c);
    let explicit = c.join(format!("checkpoint-{killed_after}"));
    let mut resume_c = t.train_args(&c, &flags);
    resume_c.extend(["--resume".into(), s(&explicit).into()]);
    finetune_ok(&resume_c);
    let mut resume_b = t.train_args(&b, &flags);
    resume_b.extend(["--resume".into(), "latest".into()]);
    finetune_ok(&resume_b);

    let want = train_losses(&a);
    assert_eq!(
        want.keys().copied().collect::<Vec<_>>(),
        (1..=RESUME_STEPS).collect::<Vec<_>>()
    );
    for out in [&b, &c] {
        assert_same_tensors(&a.join("model.safetensors"), &out.join("model.safetensors"));
        assert_same_tensors(
            &a.join(&final_ckpt).join("optimizer.safetensors"),
            &out.join(&final_ckpt).join("optimizer.safetensors"),
        );
        assert_eq!(train_losses(out), want, "loss curve of {}", out.display());
    }
    // The losses moved: the comparison is not between two untrained models.
    let first = want[&1].0;
    let last_mean: f64 = want
        .range(RESUME_STEPS - 20..)
        .map(|(_, l)| l.0)
        .sum::<f64>()
        / 20.0;
    assert!(last_mean < first, "loss {first} -> {last_mean}");
}

#[test]
fn early_stopping_stops_when_accuracy_cannot_improve() {
    let t = setup("early", 64, 32);
    let out = t.dir.join("out");
    let run = finetune(&t.train_args(
        &out,
        &[
            "--max-steps",
            "40",
            "--lr",
            "1e-12",
            "--metric",
            "accuracy",
            "--eval-steps",
            "2",
            "--early-stopping-patience",
            "2",
            "--json",
        ],
    ));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    // The learner's messages reach stderr under --no-progress.
    assert!(
        stderr.contains("early stopping: no better accuracy in 2 evaluations"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["outcome"], "stoppedearly", "{report:#}");
    let summary = read_json(&out.join("train_summary.json"));
    assert_eq!(summary["stopped_early"], true);
    // Evaluations at steps 2 (the best), 4 and 6 (two without improvement): stop at 6.
    assert_eq!(summary["global_step"], 6, "{summary:#}");
    assert_eq!(summary["best_step"], 2);
    assert!(out.join("model.safetensors").is_file());
}

fn tensors_matching<'a>(
    t: &'a std::collections::HashMap<String, candle_core::Tensor>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a candle_core::Tensor)> {
    t.iter().filter(move |(n, _)| n.starts_with(prefix))
}

/// Whether every tensor under `prefix` in `got` equals `want`'s, bit for bit.
fn unchanged(
    got: &std::collections::HashMap<String, candle_core::Tensor>,
    want: &std::collections::HashMap<String, candle_core::Tensor>,
    prefix: &str,
) -> bool {
    let mut n = 0;
    let all = tensors_matching(want, prefix).all(|(name, w)| {
        n += 1;
        same_bits(&got[name], w)
    });
    assert!(n > 0, "no tensor under {prefix}");
    all
}

/// Whether every tensor under `prefix` differs from `want`'s.
fn all_changed(
    got: &std::collections::HashMap<String, candle_core::Tensor>,
    want: &std::collections::HashMap<String, candle_core::Tensor>,
    prefix: &str,
) -> bool {
    let mut n = 0;
    let all = tensors_matching(want, prefix).all(|(name, w)| {
        n += 1;
        !same_bits(&got[name], w)
    });
    assert!(n > 0, "no tensor under {prefix}");
    all
}

const L0: &str = "bert.encoder.layer.0.";
const L1: &str = "bert.encoder.layer.1.";
const EMB: &str = "bert.embeddings.";

#[test]
fn unfreeze_schedule_unfreezes_layer_one_at_epoch_one() {
    // 48 rows in batches of 8: 6 steps an epoch.
    let t = setup("unfreeze-schedule", 48, 16);
    let out = t.dir.join("out");
    finetune_ok(&t.train_args(
        &out,
        &[
            "--epochs",
            "2",
            "--save-steps",
            "3",
            "--lr",
            "1e-2",
            "--freeze",
            "bert.*",
            "--unfreeze-schedule",
            "1:bert.encoder.layer.1.*",
        ],
    ));
    assert_eq!(checkpoint_steps(&out), vec![3, 6, 9, 12]);
    let at = |step: u64| load_tensors(&out.join(format!("checkpoint-{step}/model.safetensors")));
    let (mid, end0, end) = (at(3), at(6), at(12));
    // Epoch 0: only the head trains.
    assert!(unchanged(&end0, &t.initial, L1));
    assert!(unchanged(&end0, &t.initial, "bert."));
    assert!(all_changed(&end0, &mid, "classifier."));
    // Epoch 1: layer 1 too; layer 0, the embeddings and the pooler stay frozen.
    assert!(all_changed(&end, &t.initial, L1));
    assert!(unchanged(&end, &t.initial, L0));
    assert!(unchanged(&end, &t.initial, EMB));
    assert!(unchanged(&end, &t.initial, "bert.pooler."));
    let exported = load_tensors(&out.join("model.safetensors"));
    assert!(unchanged(&exported, &end, "bert.") && unchanged(&exported, &end, "classifier."));
    let report = read_json(&out.join("train_summary.json"));
    assert_eq!(report["global_step"], 12);
}

#[test]
fn unfreeze_every_epoch_unfreezes_the_top_layer_first() {
    let t = setup("unfreeze-every", 48, 16);
    let out = t.dir.join("out");
    let run = finetune(&t.train_args(
        &out,
        &[
            "--epochs",
            "3",
            "--save-steps",
            "6",
            "--lr",
            "1e-2",
            "--freeze",
            "bert.*",
            "--unfreeze-every",
            "1",
        ],
    ));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("epoch 1: gradual unfreezing") && stderr.contains("epoch 2: gradual"),
        "{stderr}"
    );
    let at = |step: u64| load_tensors(&out.join(format!("checkpoint-{step}/model.safetensors")));
    let (e0, e1, e2) = (at(6), at(12), at(18));
    assert!(unchanged(&e0, &t.initial, "bert."));
    // Epoch 1: the top layer.
    assert!(all_changed(&e1, &t.initial, L1));
    assert!(unchanged(&e1, &t.initial, L0) && unchanged(&e1, &t.initial, EMB));
    // Epoch 2: the next one down; the embeddings would come at epoch 3.
    assert!(all_changed(&e2, &e1, L1) && all_changed(&e2, &t.initial, L0));
    assert!(unchanged(&e2, &t.initial, EMB));
}

fn predictions(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn logits(p: &Value) -> Vec<f64> {
    p["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

const TEXTS: [&str; 3] = [
    "the movie was really wonderful",
    "Awful plot and dull acting",
    "this film is quite good but the ending is bad",
];

fn predict(model: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["predict", "--model", s(model), "--json", "--text"];
    args.extend(TEXTS);
    args.extend(extra);
    let p = predictions(&finetune_ok(&args));
    assert_eq!(p.len(), TEXTS.len(), "one JSON object per input");
    p
}

#[test]
fn predict_export_and_eval_agree_with_training() {
    let t = setup("predict", 200, 40);
    let out = t.dir.join("out");
    // Without dropout this tiny model learns the toy task in 100 steps.
    finetune_ok(&t.train_args(
        &out,
        &[
            "--max-steps",
            "100",
            "--save-steps",
            "50",
            "--lr",
            "3e-3",
            "--warmup-steps",
            "5",
            "--dropout",
            "0",
        ],
    ));

    // `predict --json`: the schema.
    for p in predict(&out, &[]) {
        let obj = p.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["label", "logits", "score", "scores"], "{p}");
        let l = logits(&p);
        assert_eq!(l.len(), 2);
        let max = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = l.iter().map(|x| (x - max).exp()).sum();
        let label = p["label"].as_str().unwrap();
        assert!(label == "pos" || label == "neg", "{p}");
        assert!((p["score"].as_f64().unwrap() - 1.0 / z).abs() < 1e-9, "{p}");
        let argmax = if l[0] >= l[1] { "neg" } else { "pos" };
        assert_eq!(label, argmax, "labels in sorted order: neg, pos");
        let scores = p["scores"].as_object().unwrap();
        assert_eq!(scores.len(), 1);
        assert_eq!(scores[label], p["score"]);
    }
    let top2 = predict(&out, &["--top-k", "2"]);
    let scores = top2[0]["scores"].as_object().unwrap();
    assert_eq!(scores.len(), 2);
    let sum: f64 = scores.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-9);

    // The final model is the last checkpoint's, and it learned the toy task.
    let last = out.join("checkpoint-100");
    let final_predictions = predict(&out, &[]);
    let from_output: Vec<Vec<f64>> = final_predictions.iter().map(logits).collect();
    let from_last: Vec<Vec<f64>> = predict(&last, &[]).iter().map(logits).collect();
    assert_eq!(from_output, from_last);
    assert_eq!(final_predictions[0]["label"], "pos");
    assert_eq!(final_predictions[1]["label"], "neg");

    // An exported checkpoint predicts exactly like the checkpoint.
    let ckpt = out.join("checkpoint-50");
    let exported = t.dir.join("exported");
    finetune_ok(&["export", "--checkpoint", s(&ckpt), "--output", s(&exported)]);
    let want: Vec<Vec<f64>> = predict(&ckpt, &[]).iter().map(logits).collect();
    let got: Vec<Vec<f64>> = predict(&exported, &[]).iter().map(logits).collect();
    assert_eq!(got, want);
    assert_ne!(
        want, from_output,
        "checkpoint 50 and the final model differ"
    );
    let config = read_json(&exported.join("config.json"));
    assert_eq!(config["id2label"]["0"], "neg");
    assert_eq!(config["id2label"]["1"], "pos");
    assert!(exported.join("vocab.txt").is_file());

    // f16 export: every tensor is f16, and it still predicts (nearly) the same.
    let half = t.dir.join("exported-f16");
    finetune_ok(&[
        "export",
        "--checkpoint",
        s(&ckpt),
        "--output",
        s(&half),
        "--dtype",
        "f16",
    ]);
    let tensors = load_tensors(&half.join("model.safetensors"));
    assert!(!tensors.is_empty());
    for (n, t) in &tensors {
        assert_eq!(t.dtype(), candle_core::DType::F16, "{n}");
    }
    for (h, w) in predict(&half, &[]).iter().map(logits).zip(&want) {
        for (a, b) in h.iter().zip(w) {
            assert!((a - b).abs() < 0.05, "f16 {h:?} vs f32 {w:?}");
        }
    }

    // `eval` on the eval file gives the accuracy the run ended with.
    let summary = read_json(&out.join("train_summary.json"));
    let want_acc = summary["final_eval"]["accuracy"].as_f64().unwrap();
    let m: Value = serde_json::from_str(&finetune_ok(&[
        "eval",
        "--model",
        s(&out),
        "--data",
        s(&t.eval),
        "--json",
    ]))
    .unwrap();
    assert_eq!(m["samples"], 40);
    assert_eq!(m["accuracy"].as_f64().unwrap(), want_acc, "{m:#}");
    assert!(want_acc >= 0.9, "the model learned: accuracy {want_acc}");
    let want_loss = summary["final_eval"]["loss"].as_f64().unwrap();
    assert!((m["loss"].as_f64().unwrap() - want_loss).abs() < 1e-5);
}

#[test]
fn config_file_with_hf_aliases_and_flag_overrides() {
    // 24 rows in batches of 4: 6 steps for one epoch.
    let t = setup("config", 24, 8);
    let out = t.dir.join("from-file");
    let toml = t.dir.join("run.toml");
    std::fs::write(
        &toml,
        format!(
            "task = \"text-classification\"\nmodel = {:?}\noutput_dir = {:?}\n\
             train_file = {:?}\nvalidation_file = {:?}\nmax_seq_length = 16\n\
             learning_rate = 0.003\nnum_train_epochs = 1\nper_device_train_batch_size = 4\n\
             warmup_ratio = 0.25\nweight_decay = 0.01\nlr_scheduler_type = \"cosine\"\n\
             seed = 5\nprogress = false\n",
            s(&t.model),
            s(&out),
            s(&t.train),
            s(&t.eval)
        ),
    )
    .unwrap();
    finetune_ok(&["train", "--config", s(&toml)]);
    // One file holds the resolved settings, under the flags' names.
    assert!(!out.join("train_config.json").exists());
    let c = read_json(&out.join("run_config.json"));
    assert_eq!(c["lr"], 0.003);
    assert_eq!(c["epochs"], 1);
    assert_eq!(c["batch_size"], 4);
    assert_eq!(c["warmup_ratio"], 0.25);
    assert_eq!(c["weight_decay"], 0.01);
    assert_eq!(c["schedule"], "cosine");
    assert_eq!(c["seed"], 5);
    assert_eq!(read_json(&out.join("train_summary.json"))["global_step"], 6);
    assert_eq!(c["max_length"], 16);
    assert_eq!(c["task"], "text-classification");
    assert!(c.get("augment").is_none(), "image settings stay out: {c}");

    // Flags override the file.
    let out2 = t.dir.join("overridden");
    finetune_ok(&[
        "train",
        "--config",
        s(&toml),
        "--output",
        s(&out2),
        "--lr",
        "0.005",
        "--batch-size",
        "8",
    ]);
    let c = read_json(&out2.join("run_config.json"));
    assert_eq!(c["lr"], 0.005);
    assert_eq!(c["batch_size"], 8);
    assert_eq!(c["seed"], 5, "the rest still comes from the file");
    assert_eq!(
        read_json(&out2.join("train_summary.json"))["global_step"],
        3
    );

    // The resolved settings read back as a settings file give the same run.
    let out3 = t.dir.join("again");
    let resolved = out2.join("run_config.json");
    finetune_ok(&["train", "--config", s(&resolved), "--output", s(&out3)]);
    let mut want = c.clone();
    want["output"] = serde_json::json!(s(&out3));
    assert_eq!(read_json(&out3.join("run_config.json")), want);
    assert_same_tensors(
        &out2.join("model.safetensors"),
        &out3.join("model.safetensors"),
    );

    // `--betas` takes `B1,B2` as well as `B1 B2`.
    for (tag, betas) in [("comma", &["0.8,0.95"][..]), ("space", &["0.8", "0.95"])] {
        let out = t.dir.join(format!("betas-{tag}"));
        let mut args = vec!["train", "--config", s(&toml), "--output", s(&out)];
        args.extend(["--max-steps", "1", "--betas"]);
        args.extend(betas);
        finetune_ok(&args);
        assert_eq!(
            read_json(&out.join("run_config.json"))["betas"],
            serde_json::json!([0.8, 0.95])
        );
    }

    // An unknown key: a usage error (exit status 2), naming the key and the file.
    let bad = t.dir.join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "model = {:?}\nlearning_rate = 0.1\nlearnig_rate_decay = 0.5\n",
            s(&t.model)
        ),
    )
    .unwrap();
    let run = finetune(&[
        "train",
        "--config",
        s(&bad),
        "--task",
        "text-classification",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("learnig_rate_decay") && stderr.contains(s(&bad)),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn missing_model_flag_fails_clearly() {
    let t = setup("missing-model", 16, 8);
    let run = finetune(&[
        "train",
        "--task",
        "text-classification",
        "--train",
        s(&t.train),
        "--output",
        s(&t.dir.join("out")),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--model is required"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!t.dir.join("out").exists());
}

#[test]
fn a_bad_row_names_its_file_and_line_or_is_skipped_and_counted() {
    let t = setup("bad-row", 40, 8);
    // Data row 5 (line 6, after the header) has no text.
    let text = std::fs::read_to_string(&t.train).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[5] = ",pos";
    std::fs::write(&t.train, lines.join("\n") + "\n").unwrap();
    let out = t.dir.join("out");
    let run = finetune(&t.train_args(&out, &["--max-steps", "2"]));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(s(&t.train)) && stderr.contains("line 6"),
        "{stderr}"
    );
    assert!(!out.join("model.safetensors").exists());

    let stdout =
        finetune_ok(&t.train_args(&out, &["--max-steps", "2", "--skip-bad-samples", "--json"]));
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(report["skipped_samples"], 1, "{report:#}");
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["summary"]["global_step"], 2);
    assert_eq!(report["labels"], serde_json::json!(["neg", "pos"]));
}

/// The tiny BERT with dropout before the classifier (`classifier_dropout`), so the head's
/// dropout acts on cached features.
fn with_classifier_dropout(model: &Path, p: f64) {
    let path = model.join("config.json");
    let mut cfg = read_json(&path);
    cfg["classifier_dropout"] = p.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
}

#[test]
fn frozen_feature_cache_gives_the_uncached_run_and_says_so() {
    let t = setup("feature-cache", 64, 24);
    with_classifier_dropout(&t.model, 0.3);
    let flags = [
        "--freeze",
        "bert.*",
        "--dropout",
        "0",
        "--epochs",
        "3",
        "--lr",
        "5e-2",
        "--seed",
        "3",
    ];
    let (cached, plain) = (t.dir.join("cached"), t.dir.join("plain"));
    let out = finetune(&t.train_args(&cached, &flags));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("feature cache: backbone frozen"),
        "{stderr}"
    );
    let mut no_cache = flags.to_vec();
    no_cache.push("--no-feature-cache");
    finetune_ok(&t.train_args(&plain, &no_cache));

    let (sa, sb) = (
        read_json(&cached.join("train_summary.json")),
        read_json(&plain.join("train_summary.json")),
    );
    assert_eq!(sa["feature_cache"]["used"], true, "{sa}");
    assert_eq!(sa["feature_cache"]["samples"], 64 + 24);
    assert_eq!(sb["feature_cache"]["used"], false, "{sb}");
    let (ea, eb) = (&sa["final_eval"], &sb["final_eval"]);
    assert!((ea["loss"].as_f64().unwrap() - eb["loss"].as_f64().unwrap()).abs() < 1e-5);
    assert!(ea["accuracy"].is_number());
    assert_eq!(ea["accuracy"], eb["accuracy"]);
    let (wa, wb) = (
        load_tensors(&cached.join("model.safetensors")),
        load_tensors(&plain.join("model.safetensors")),
    );
    for (name, a) in &wa {
        let d = (a - &wb[name])
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d <= 1e-5, "{name} differs by {d}");
    }
    // The backbone did not train.
    assert!(unchanged(&wa, &t.initial, "bert."));

    // Dropout below the head (the checkpoint's 0.1) refuses the cache, naming why.
    let refused = t.dir.join("refused");
    let out = finetune(&t.train_args(&refused, &["--freeze", "bert.*", "--max-steps", "2"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = read_json(&refused.join("train_summary.json"));
    assert_eq!(summary["feature_cache"]["used"], false);
    let reason = summary["feature_cache"]["reason"].as_str().unwrap();
    assert!(reason.contains("dropout"), "{reason}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("feature cache: not used"));
    // A trainable backbone parameter refuses it too.
    finetune_ok(&t.train_args(
        &t.dir.join("backbone"),
        &[
            "--freeze",
            "bert.embeddings.*",
            "--dropout",
            "0",
            "--max-steps",
            "2",
        ],
    ));
    let summary = read_json(&t.dir.join("backbone/train_summary.json"));
    let reason = summary["feature_cache"]["reason"].as_str().unwrap();
    assert!(reason.contains("backbone parameters train"), "{reason}");
}
