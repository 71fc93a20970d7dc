//! The output folder as a library user meets it: a second learner on a folder in use is
//! refused, a finished run's folder is refused unless the run resumes or the caller asks for
//! `Overwrite`, and a folder the learner created for a run that never started is removed.

mod common;

use common::*;
use finetune_core::folder_lock::LOCK_FILE;
use finetune_train::{Learner, OutputDir, OutputMode, TrainConfig};

fn quick() -> TrainConfig {
    TrainConfig {
        epochs: 1,
        batch_size: 16,
        save_steps: Some(1),
        ..config()
    }
}

#[test]
fn a_folder_in_use_is_refused_naming_this_process() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let model = Mlp::new(1, 0.0);
    let first = Learner::new(&model, quick(), &out).unwrap();
    let err = Learner::new(&model, quick(), &out)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("is in use by another finetune run"), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    // Export-style writers are refused the same way.
    assert!(OutputDir::lock(&out).is_err());
    drop(first);
    assert!(
        !out.exists(),
        "a folder created for a run that never ran stayed"
    );
    let again = Learner::new(&model, quick(), &out).unwrap();
    again.fit(&Blobs::new(32, 1), None, None).unwrap();
    drop(again);
    assert!(out.join("model.safetensors").is_file());
    assert!(!out.join(LOCK_FILE).exists(), "the lock file stayed");
}

#[test]
fn a_finished_run_is_refused_unless_resumed_or_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let data = Blobs::new(32, 2);
    let model = Mlp::new(2, 0.0);
    Learner::new(&model, quick(), out)
        .unwrap()
        .fit(&data, None, None)
        .unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();

    let err = Learner::new(&model, quick(), out)
        .unwrap()
        .fit(&data, None, None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("not empty") && err.contains("`overwrite`"),
        "{err}"
    );
    assert!(
        out.join("checkpoint-2").is_dir(),
        "the refused run changed the folder"
    );

    // Resuming from the last checkpoint is allowed (and there is nothing left to do).
    let last = out.join("checkpoint-2");
    let (_, summary) = Learner::new(&model, quick(), out)
        .unwrap()
        .fit(&data, None, Some(&last))
        .unwrap();
    assert_eq!(summary.global_step, 2);

    // Overwrite: the earlier run's outputs go, other files stay.
    let cfg = TrainConfig {
        max_steps: Some(1),
        ..quick()
    };
    let dir_lock = OutputDir::open(out, OutputMode::Overwrite).unwrap();
    assert!(!out.join("checkpoint-2").exists());
    let (_, summary) = Learner::with_output(&model, cfg, dir_lock)
        .unwrap()
        .fit(&data, None, None)
        .unwrap();
    assert_eq!(summary.global_step, 1);
    assert!(out.join("checkpoint-1").is_dir() && !out.join("checkpoint-2").exists());
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
}
