//! A library program's output is its own: `Learner::quiet` trains without writing anything on
//! stderr (no bar, plan, evaluation or log lines), while `metrics.jsonl` still gets every
//! record. Checked in a child process (this test binary run again), whose stderr is captured.

mod common;

use common::*;
use finetune_train::{Learner, TrainConfig};
use std::process::Command;

const CHILD: &str = "FINETUNE_QUIET_TEST_OUTPUT";

fn train(out: &std::path::Path, quiet: bool) {
    let model = Mlp::new(4, 0.0);
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 8,
        eval_steps: Some(2),
        progress: false,
        ..config()
    };
    let mut learner = Learner::new(&model, cfg, out).unwrap();
    if quiet {
        learner = learner.quiet();
    }
    let data = Blobs::new(32, 3);
    learner.fit(&data, Some(&data), None).unwrap();
}

#[test]
fn a_quiet_learner_writes_nothing_on_stderr() {
    if let Some(out) = std::env::var_os(CHILD) {
        let quiet = std::env::var("FINETUNE_QUIET_TEST_QUIET").is_ok();
        train(std::path::Path::new(&out), quiet);
        return;
    }
    let stderr_of = |quiet: bool| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "a_quiet_learner_writes_nothing_on_stderr",
            "--nocapture",
        ])
        .env(CHILD, &out);
        if quiet {
            cmd.env("FINETUNE_QUIET_TEST_QUIET", "1");
        }
        let run = cmd.output().unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(
            metrics_lines(&out).len(),
            8 + 4,
            "8 steps and 4 evaluations logged"
        );
        String::from_utf8_lossy(&run.stderr).into_owned()
    };
    let loud = stderr_of(false);
    assert!(
        loud.contains("{'loss': "),
        "the default prints log lines:\n{loud}"
    );
    let quiet = stderr_of(true);
    assert!(quiet.trim().is_empty(), "a quiet learner printed:\n{quiet}");
}
