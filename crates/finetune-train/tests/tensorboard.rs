//! TensorBoard event files, read back with the crate's reader (framing and both CRCs of every
//! record checked): the same scalars at the same steps as `metrics.jsonl`, under transformers'
//! tags; the run's settings as a text summary; a new file per start, a resumed run's steps
//! continuing; `report_to` none writes none.

mod common;

use common::*;
use finetune_train::tensorboard::{self, proto::What};
use finetune_train::{Learner, ReportTo, TrainConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn cfg() -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 8,
        eval_steps: Some(2),
        save_steps: Some(4),
        ..config()
    }
}

fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// `(step, tag) → value` of every scalar in `file`, and the text summaries' tags.
fn scalars(file: &Path) -> (BTreeMap<(i64, String), f32>, Vec<String>) {
    let events = tensorboard::read(file).unwrap();
    assert_eq!(
        events[0].what,
        Some(What::FileVersion("brain.Event:2".into())),
        "the first record is the file version"
    );
    let (mut values, mut texts) = (BTreeMap::new(), Vec::new());
    for e in &events[1..] {
        let Some(What::Summary(s)) = &e.what else {
            panic!("a record that is no summary: {e:?}");
        };
        for v in &s.value {
            match v.simple_value {
                Some(x) => {
                    values.insert((e.step, v.tag.clone()), x);
                }
                None => texts.push(v.tag.clone()),
            }
        }
    }
    (values, texts)
}

#[test]
fn every_logged_scalar_is_in_the_event_file_at_its_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let data = Blobs::new(32, 5);
    Learner::new(&Mlp::new(3, 0.0), cfg(), out)
        .unwrap()
        .fit(&data, Some(&data), None)
        .unwrap();
    let files = event_files(&out.join("runs"));
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    let (values, texts) = scalars(&files[0]);
    assert_eq!(texts, ["args"]);
    let mut expected = std::collections::BTreeSet::new();
    for record in metrics_lines(out) {
        let step = record["step"].as_i64().unwrap();
        for (k, v) in record.as_object().unwrap() {
            let tag = match (k.as_str(), k.strip_prefix("eval_")) {
                ("step", _) => continue,
                (_, Some(rest)) => format!("eval/{rest}"),
                ("lr", None) => "train/learning_rate".to_string(),
                (k, None) => format!("train/{k}"),
            };
            let Some(v) = v.as_f64() else { continue };
            assert_eq!(
                values.get(&(step, tag.clone())),
                Some(&(v as f32)),
                "{tag} at {step}"
            );
            expected.insert((step, tag));
        }
    }
    assert!(values.contains_key(&(2, "eval/loss".into())), "{values:?}");
    assert!(values.contains_key(&(1, "train/loss".into())), "{values:?}");
    assert_eq!(
        values.len(),
        expected.len(),
        "nothing but the logged scalars"
    );
}

#[test]
fn a_resumed_run_writes_a_new_file_whose_steps_continue() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let data = Blobs::new(32, 5);
    Learner::new(&Mlp::new(3, 0.0), cfg(), out)
        .unwrap()
        .fit(&data, Some(&data), None)
        .unwrap();
    let ckpt = finetune_train::checkpoint::dir_for(out, 4);
    Learner::new(&Mlp::new(9, 0.0), cfg(), out)
        .unwrap()
        .fit(&data, Some(&data), Some(&ckpt))
        .unwrap();
    let files = event_files(&out.join("runs"));
    assert_eq!(files.len(), 2, "{files:?}");
    let (second, _) = scalars(&files[1]);
    let steps: Vec<i64> = second.keys().map(|(s, _)| *s).collect();
    assert_eq!(
        steps.first(),
        Some(&5),
        "the resumed file starts after the checkpoint"
    );
    assert_eq!(steps.last(), Some(&8));
}

#[test]
fn report_to_none_writes_no_event_file_and_logging_dir_moves_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = Blobs::new(16, 2);
    let none = TrainConfig {
        report_to: vec![ReportTo::None],
        ..cfg()
    };
    let a = dir.path().join("a");
    Learner::new(&Mlp::new(3, 0.0), none, &a)
        .unwrap()
        .fit(&data, None, None)
        .unwrap();
    assert!(!a.join("runs").exists());
    assert!(
        a.join("metrics.jsonl").is_file(),
        "metrics.jsonl is always written"
    );
    let elsewhere = dir.path().join("tb");
    let moved = TrainConfig {
        report_to: vec![ReportTo::Tensorboard],
        logging_dir: Some(elsewhere.clone()),
        ..cfg()
    };
    let b = dir.path().join("b");
    Learner::new(&Mlp::new(3, 0.0), moved, &b)
        .unwrap()
        .fit(&data, None, None)
        .unwrap();
    assert_eq!(event_files(&elsewhere).len(), 1);
    assert!(!b.join("runs").exists());
}
