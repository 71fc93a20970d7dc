//! What every robustness test shares: a folder with a tiny BERT and toy data, the `finetune
//! train` command line for it, and the failure contract.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

/// A test's folder: a tiny BERT (`model/`) and `train.csv`. Removed on drop unless the test
/// failed (then it is kept for a look).
pub struct Fixture {
    pub dir: PathBuf,
    pub model: PathBuf,
    pub train: PathBuf,
}

impl Fixture {
    pub fn new(tag: &str) -> Self {
        Self::with_rows(tag, 48)
    }

    pub fn with_rows(tag: &str, train_rows: usize) -> Self {
        let dir = tmpdir(&format!("robust-{tag}"));
        let model = dir.join("model");
        write_tiny_bert(&model, 11);
        let train = dir.join("train.csv");
        write_sentiment_csv(&train, train_rows, 1);
        Self { dir, model, train }
    }

    /// The default output folder of this fixture.
    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// `finetune train` on this fixture's model and data into `output`, two quick steps, then
    /// `extra` (later flags win where clap allows repeats; tests pass distinct ones).
    pub fn train_args(&self, output: &Path, extra: &[&str]) -> Vec<String> {
        self.train_args_with(&self.model, &self.train, output, extra)
    }

    /// As [`Self::train_args`] with another model folder and training file.
    pub fn train_args_with(
        &self,
        model: &Path,
        train: &Path,
        output: &Path,
        extra: &[&str],
    ) -> Vec<String> {
        let mut a: Vec<String> = [
            "train",
            "--task",
            "text-classification",
            "--model",
            s(model),
            "--train",
            s(train),
            "--output",
            s(output),
            "--batch-size",
            "8",
            "--max-length",
            "16",
            "--no-progress",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        if !extra
            .iter()
            .any(|f| *f == "--max-steps" || *f == "--epochs")
        {
            a.extend(["--max-steps".to_string(), "2".to_string()]);
        }
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Spawns `finetune ARGS` with the pause hook set to `pause` (see
/// `finetune_core::fsutil::PAUSE_ENV`) and returns once it has paused. It goes on when the file
/// `go_on` exists (given), else it waits to be killed. Its stderr is drained in the background;
/// the lines after the pause come through the returned receiver.
pub fn spawn_paused(
    args: &[String],
    pause: &str,
    go_on: Option<&Path>,
) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut cmd = finetune_cmd();
    cmd.args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env(finetune_core::fsutil::PAUSE_ENV, pause);
    if let Some(f) = go_on {
        cmd.env(finetune_core::fsutil::CONTINUE_ENV, f);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    let mut seen = String::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) if line.starts_with("paused before renaming") => return (child, rx),
            Ok(line) => {
                seen += &line;
                seen.push('\n');
            }
            Err(_) => {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("the run ended ({status}) before pausing at `{pause}`:\n{seen}");
                }
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "no pause at `{pause}` within two minutes"
                );
            }
        }
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test path")
}

/// The failure contract of bad input: the process exited (no signal) with status 1 (2 for a
/// usage error); stderr holds no panic and exactly one `error:` line, which contains every one of
/// `needles` (the file and what is wrong). Returns that line.
pub fn assert_clean_failure(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code();
    assert!(
        matches!(code, Some(1) | Some(2)),
        "expected exit status 1 or 2, got {:?}; stderr:\n{stderr}",
        out.status
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "a panic:\n{stderr}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one `error:` line expected:\n{stderr}");
    let line = errors[0];
    for n in needles {
        assert!(line.contains(n), "the error line lacks `{n}`:\n{line}");
    }
    line.to_string()
}

/// Nothing half written under `dir` (recursively): no temporary `*.tmp-*` entry, and every
/// `model.safetensors` and JSON file parses completely.
pub fn assert_nothing_half_written(dir: &Path) {
    if !dir.exists() {
        return;
    }
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            !name.contains(".tmp-"),
            "{} is a left-over temporary entry",
            p.display()
        );
        if p.is_dir() {
            assert_nothing_half_written(&p);
        } else if name.ends_with(".safetensors") {
            let bytes = std::fs::read(&p).unwrap();
            safetensors::SafeTensors::deserialize(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        } else if name.ends_with(".json") {
            let text = std::fs::read_to_string(&p).unwrap();
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
}

/// A failed training run wrote no model: no `model.safetensors` and no checkpoint in `out`, and
/// nothing half written.
pub fn assert_no_model_written(out: &Path) {
    assert!(
        !out.join("model.safetensors").exists(),
        "{} holds an exported model after a failed run",
        out.display()
    );
    if out.exists() {
        for e in std::fs::read_dir(out).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with("checkpoint-"),
                "{} holds {name} after a failed run",
                out.display()
            );
        }
    }
    assert_nothing_half_written(out);
}

/// Runs `finetune train ARGS`, which must fail cleanly naming `needles`, leaving no model in
/// `out`. Returns the error line.
pub fn train_fails(args: &[String], out: &Path, needles: &[&str]) -> String {
    let run = finetune(args);
    let line = assert_clean_failure(&run, needles);
    assert_no_model_written(out);
    line
}
