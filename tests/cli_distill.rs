//! Knowledge distillation through `finetune train --teacher`: a tiny BERT teacher fine-tuned
//! first, then distilled into another tiny BERT with the text recipes on (label smoothing,
//! class weights, gradient accumulation, dropout, model EMA): recorded in `run_config.json`
//! and `train_summary.json`, different from the run without a teacher, resumed from a
//! mid-run checkpoint to the same bits; a frozen-backbone student on cached features and
//! cached teacher logits; an image run with timm's recipes resumed exactly; and bad teachers
//! and values refused with one line, leaving no output folder.

mod common;
#[path = "common/images.rs"]
mod images;

use common::*;
use images::{write_shapes, write_tiny_resnet};
use std::path::{Path, PathBuf};

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

struct Setup {
    dir: PathBuf,
    train: PathBuf,
    eval: PathBuf,
    /// The student's base checkpoint (tiny BERT, seed 12).
    student: PathBuf,
    /// A teacher fine-tuned on the training data from another tiny BERT (seed 11).
    teacher: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn quick_args(model: &Path, data: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = text_train_args(model, data, out);
    a.extend(
        [
            "--batch-size",
            "8",
            "--max-length",
            "16",
            "--device",
            "cpu",
            "--no-progress",
        ]
        .map(String::from),
    );
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

fn setup(tag: &str) -> Setup {
    let dir = tmpdir(tag);
    let (train, eval) = (dir.join("train.csv"), dir.join("eval.csv"));
    write_sentiment_csv(&train, 48, 1);
    write_sentiment_csv(&eval, 16, 2);
    let (base, student) = (dir.join("teacher-base"), dir.join("student-base"));
    write_tiny_bert(&base, 11);
    write_tiny_bert(&student, 12);
    let teacher = dir.join("teacher");
    finetune_ok(&quick_args(
        &base,
        &train,
        &teacher,
        &["--epochs", "3", "--lr", "0.002"],
    ));
    Setup {
        dir,
        train,
        eval,
        student,
        teacher,
    }
}

/// The distillation run's flags: the text recipes, and the teacher when given.
fn student_args(st: &Setup, out: &Path, teacher: Option<&Path>) -> Vec<String> {
    let mut extra = vec![
        "--eval".to_string(),
        s(&st.eval),
        "--epochs".into(),
        "2".into(),
        "--lr".into(),
        "0.002".into(),
        "--grad-accum".into(),
        "2".into(),
        "--label-smoothing".into(),
        "0.1".into(),
        "--class-weights".into(),
        "auto".into(),
        "--dropout".into(),
        "0.1".into(),
        "--model-ema".into(),
        "--model-ema-decay".into(),
        "0.9".into(),
        "--save-steps".into(),
        "2".into(),
        "--logging-steps".into(),
        "1".into(),
    ];
    if let Some(t) = teacher {
        extra.extend([
            "--teacher".to_string(),
            s(t),
            "--distill-alpha".into(),
            "0.7".into(),
            "--distill-temperature".into(),
            "3".into(),
        ]);
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    quick_args(&st.student, &st.train, out, &extra)
}

fn losses(out: &Path) -> Vec<f64> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|r| r.get("loss").and_then(|v| v.as_f64()))
        .collect()
}

#[test]
fn text_distillation_records_itself_changes_the_run_and_resumes_exactly() {
    let st = setup("distill-text");
    let full = st.dir.join("full");
    finetune_ok(&student_args(&st, &full, Some(&st.teacher)));
    let rc = read_json(&full.join("run_config.json"));
    assert_eq!(rc["teacher"], serde_json::json!(s(&st.teacher)));
    assert_eq!(rc["distill_alpha"], serde_json::json!(0.7));
    assert_eq!(rc["distill_temperature"], serde_json::json!(3.0));
    let summary = read_json(&full.join("train_summary.json"));
    let d = &summary["distillation"];
    assert_eq!(d["teacher"], serde_json::json!(s(&st.teacher)), "{summary}");
    assert_eq!(d["alpha"], serde_json::json!(0.7));
    assert_eq!(d["temperature"], serde_json::json!(3.0));
    assert_eq!(d["cached"], serde_json::json!(true));
    assert_eq!(d["cached_samples"], serde_json::json!(48));
    assert_eq!(checkpoint_steps(&full), [2, 4, 6]);
    let card = std::fs::read_to_string(full.join("README.md")).unwrap();
    let line = format!(
        "- distilled from `{}`: alpha 0.7, temperature 3",
        s(&st.teacher)
    );
    assert!(card.contains(&line), "{card}");

    // Without the teacher the losses and the weights differ.
    let plain = st.dir.join("plain");
    finetune_ok(&student_args(&st, &plain, None));
    assert!(read_json(&plain.join("train_summary.json"))
        .get("distillation")
        .is_none());
    let (a, b) = (losses(&full), losses(&plain));
    assert_eq!(a.len(), 6);
    assert_eq!(b.len(), 6);
    assert!(
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() > 1e-6),
        "{a:?} vs {b:?}"
    );
    let (wa, wb) = (
        load_tensors(&full.join("model.safetensors")),
        load_tensors(&plain.join("model.safetensors")),
    );
    assert!(wa.iter().any(|(n, t)| !same_bits(t, &wb[n])));

    // Checkpoint 2 (mid first epoch) resumed in another folder: the same bits, EMA included,
    // and the same losses logged.
    let resumed = st.dir.join("resumed");
    std::fs::create_dir_all(&resumed).unwrap();
    copy_dir(&full.join("checkpoint-2"), &resumed.join("checkpoint-2"));
    // `--class-weights auto` was recorded as the weights it resolved to: the run's own.
    let mut args: Vec<String> = student_args(&st, &resumed, Some(&st.teacher))
        .into_iter()
        .filter(|a| a != "--class-weights" && a != "auto")
        .collect();
    args.extend(["--resume".to_string(), "latest".to_string()]);
    finetune_ok(&args);
    assert_same_tensors(
        &full.join("model.safetensors"),
        &resumed.join("model.safetensors"),
    );
    assert_same_tensors(
        &full.join("checkpoint-6/ema.safetensors"),
        &resumed.join("checkpoint-6/ema.safetensors"),
    );
    assert_eq!(losses(&resumed), a);
}

#[test]
fn a_frozen_backbone_student_distils_on_cached_features() {
    let st = setup("distill-cache");
    let out = st.dir.join("head");
    let teacher = s(&st.teacher);
    let args = quick_args(
        &st.student,
        &st.train,
        &out,
        &[
            "--epochs",
            "2",
            "--lr",
            "0.01",
            "--freeze",
            "*",
            "--unfreeze",
            "classifier.*",
            "--dropout",
            "0",
            "--teacher",
            &teacher,
        ],
    );
    let stderr = String::from_utf8_lossy(&finetune(&args).stderr).into_owned();
    assert!(
        stderr.contains("feature cache: backbone frozen"),
        "{stderr}"
    );
    assert!(
        stderr.contains("teacher logits of 48 samples computed once"),
        "{stderr}"
    );
    let summary = read_json(&out.join("train_summary.json"));
    assert_eq!(summary["feature_cache"]["used"], serde_json::json!(true));
    assert_eq!(summary["distillation"]["cached"], serde_json::json!(true));
    assert_eq!(summary["distillation"]["alpha"], serde_json::json!(0.5));
    assert_eq!(
        summary["distillation"]["temperature"],
        serde_json::json!(2.0)
    );
}

/// The one `error:` line of a failed run, which must contain every needle; no output folder.
fn one_error_line(args: &[String], out: &Path, code: i32, needles: &[&str]) {
    let run = finetune(args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(code), "{needles:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    for n in needles {
        assert!(errors[0].contains(n), "`{n}` missing:\n{stderr}");
    }
    assert!(!out.exists(), "a refused run created {}", out.display());
}

#[test]
fn bad_values_are_one_usage_error_line_each() {
    // Refused before anything is read: the model, data and teacher need not exist.
    let dir = tmpdir("distill-values");
    let out = dir.join("out");
    let teacher = s(&dir.join("teacher"));
    let with = |extra: &[&str]| quick_args(&dir.join("m"), &dir.join("t.csv"), &out, extra);
    for (extra, needle) in [
        (
            vec!["--teacher", &teacher, "--distill-alpha", "1.5"],
            "--distill-alpha must be in [0, 1], got 1.5",
        ),
        (
            vec!["--teacher", &teacher, "--distill-alpha", "-0.1"],
            "--distill-alpha must be in [0, 1], got -0.1",
        ),
        (
            vec!["--teacher", &teacher, "--distill-temperature", "0"],
            "--distill-temperature must be > 0, got 0",
        ),
        (
            vec!["--teacher", &teacher, "--distill-temperature", "-1"],
            "--distill-temperature must be > 0, got -1",
        ),
        (
            vec!["--distill-alpha", "0.9"],
            "--distill-alpha and --distill-temperature need --teacher",
        ),
    ] {
        one_error_line(&with(&extra), &out, 2, &[needle]);
    }
    // Token classification has no teacher.
    let token: Vec<String> = with(&["--teacher", &teacher])
        .into_iter()
        .map(|a| match a.as_str() {
            "text-classification" => "token-classification".to_string(),
            _ => a,
        })
        .collect();
    one_error_line(
        &token,
        &out,
        2,
        &["--teacher applies to text and image classification"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_teachers_are_one_clear_error_line_each() {
    let st = setup("distill-bad");
    let out = st.dir.join("out");
    let teacher = s(&st.teacher);
    let with = |extra: &[&str]| quick_args(&st.student, &st.train, &out, extra);
    // A teacher for the same labels in another order, and a headless base model.
    one_error_line(
        &with(&["--teacher", &teacher, "--labels", "pos,neg"]),
        &out,
        1,
        &[
            "--teacher",
            "classifies into [neg, pos]",
            "this run's labels are [pos, neg]",
        ],
    );
    let base = s(&st.dir.join("teacher-base"));
    one_error_line(
        &with(&["--teacher", &base]),
        &out,
        1,
        &["classifies into [LABEL_0, LABEL_1]", "[neg, pos]"],
    );
    // A teacher whose vocabulary gives other ids.
    let other = st.dir.join("other-vocab");
    copy_dir(&st.teacher, &other);
    let _ = std::fs::remove_file(other.join("tokenizer.json"));
    let mut words = vocab();
    words.swap(5, 6);
    std::fs::write(other.join("vocab.txt"), words.join("\n") + "\n").unwrap();
    one_error_line(
        &with(&["--teacher", &s(&other)]),
        &out,
        1,
        &["tokenizes text differently", "share one tokenizer"],
    );
    // A missing teacher, an image teacher, an architecture name.
    one_error_line(
        &with(&["--teacher", &s(&st.dir.join("nowhere"))]),
        &out,
        1,
        &["--teacher"],
    );
    let resnet = st.dir.join("resnet");
    write_tiny_resnet(&resnet, 2, Some(&["neg", "pos"]));
    one_error_line(
        &with(&["--teacher", &s(&resnet)]),
        &out,
        1,
        &["--teacher", "image classification model"],
    );
    one_error_line(
        &with(&["--teacher", "resnet18"]),
        &out,
        1,
        &["names an architecture"],
    );
    // Regression and multi-label students have no classes to distil.
    one_error_line(
        &with(&[
            "--teacher",
            &teacher,
            "--problem-type",
            "multi_label_classification",
        ]),
        &out,
        1,
        &["distillation (--teacher) applies to single-label classification"],
    );
}

#[test]
fn image_distillation_with_timms_recipes_resumes_exactly() {
    let dir = tmpdir("distill-image");
    let (base, train) = (dir.join("base"), dir.join("train"));
    write_tiny_resnet(&base, 2, Some(&["circle", "square"]));
    write_shapes(&train, &["circle", "square"], 6, 16, 1);
    let teacher = dir.join("teacher");
    let image_args = |model: &Path, out: &Path, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "train",
            "--task",
            "image-classification",
            "--model",
            &s(model),
            "--train",
            &s(&train),
            "--output",
            &s(out),
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--no-progress",
        ]
        .map(String::from)
        .into();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    finetune_ok(&image_args(
        &base,
        &teacher,
        &["--epochs", "2", "--lr", "0.01"],
    ));
    let t = s(&teacher);
    let recipes = [
        "--epochs",
        "2",
        "--lr",
        "0.05",
        "--optimizer",
        "sgd",
        "--momentum",
        "0.9",
        "--mixup",
        "0.8",
        "--cutmix",
        "1.0",
        "--smoothing",
        "0.1",
        "--reprob",
        "0.5",
        "--aa",
        "rand-m9-mstd0.5-inc1",
        "--model-ema",
        "--model-ema-decay",
        "0.9",
        "--save-steps",
        "3",
        "--teacher",
        &t,
        "--distill-alpha",
        "0.4",
    ];
    let full = dir.join("full");
    finetune_ok(&image_args(&base, &full, &recipes));
    let summary = read_json(&full.join("train_summary.json"));
    assert_eq!(summary["distillation"]["cached"], serde_json::json!(false));
    assert_eq!(summary["distillation"]["alpha"], serde_json::json!(0.4));
    let resumed = dir.join("resumed");
    std::fs::create_dir_all(&resumed).unwrap();
    copy_dir(&full.join("checkpoint-3"), &resumed.join("checkpoint-3"));
    let mut args = image_args(&base, &resumed, &recipes);
    args.extend(["--resume".to_string(), "latest".to_string()]);
    finetune_ok(&args);
    assert_same_tensors(
        &full.join("model.safetensors"),
        &resumed.join("model.safetensors"),
    );
    assert_same_tensors(
        &full.join("checkpoint-6/ema.safetensors"),
        &resumed.join("checkpoint-6/ema.safetensors"),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
