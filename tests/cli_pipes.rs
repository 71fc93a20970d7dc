//! A reader that goes away (`finetune predict … | head`): every command ends quietly — status
//! 0, or killed by SIGPIPE as other Unix tools are (141 in a shell) — never with a panic.

mod common;

use common::*;
use std::io::Read;
use std::path::Path;
use std::process::{ExitStatus, Stdio};

/// Runs `finetune ARGS` with stdout and stderr piped, reads `keep` bytes of stdout (0: closes
/// it at once) and drops the reader; returns the status and stderr.
fn with_closed_stdout(args: &[&str], keep: usize) -> (ExitStatus, String) {
    let mut child = finetune_cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn finetune");
    let mut stdout = child.stdout.take().unwrap();
    if keep > 0 {
        let mut head = vec![0u8; keep];
        stdout
            .read_exact(&mut head)
            .expect("the first bytes of stdout");
    }
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap(), stderr)
}

fn assert_quiet_end(what: &str, status: ExitStatus, stderr: &str) {
    use std::os::unix::process::ExitStatusExt;
    let by_sigpipe = status.signal() == Some(libc::SIGPIPE);
    assert!(
        status.success() || by_sigpipe || status.code() == Some(141),
        "{what}: {status:?}\n{stderr}"
    );
    for bad in ["panicked", "Broken pipe", "error:"] {
        assert!(
            !stderr.contains(bad),
            "{what}: `{bad}` in stderr:\n{stderr}"
        );
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_command_ends_quietly_when_stdout_closes() {
    let dir = tmpdir("pipes");
    let base = dir.join("tiny-bert");
    write_tiny_bert(&base, 5);
    let train = dir.join("train.csv");
    write_sentiment_csv(&train, 16, 1);
    let model = dir.join("model");
    let train_args = [
        "train",
        "--task",
        "text-classification",
        "--model",
        s(&base),
        "--train",
        s(&train),
        "--max-length",
        "16",
        "--max-steps",
        "1",
        "--no-progress",
    ];
    let mut first = train_args.to_vec();
    first.extend(["--output", s(&model)]);
    finetune_ok(&first);
    // Far more predictions than a pipe holds (64 KiB), read one line's worth.
    let inputs = dir.join("inputs.txt");
    let line = "the acting was good and the plot was very dull\n";
    std::fs::write(&inputs, line.repeat(4000)).unwrap();
    let (status, stderr) = with_closed_stdout(
        &["predict", "--model", s(&model), "--input", s(&inputs)],
        16,
    );
    assert_quiet_end("predict | head", status, &stderr);

    let again = dir.join("again");
    let exported = dir.join("exported");
    let mut train_json = train_args.to_vec();
    train_json.extend(["--output", s(&again), "--json"]);
    let mut dry_run = train_args.to_vec();
    dry_run.extend(["--output", s(&again), "--dry-run"]);
    let commands: Vec<Vec<&str>> = vec![
        vec!["predict", "--model", s(&model), "--text", "good", "--json"],
        vec!["eval", "--model", s(&model), "--data", s(&train), "--json"],
        vec!["inspect", s(&model)],
        vec![
            "lr-schedule",
            "--schedule",
            "cosine",
            "--lr",
            "1e-3",
            "--steps",
            "100000",
        ],
        vec![
            "export",
            "--checkpoint",
            s(&model),
            "--output",
            s(&exported),
        ],
        dry_run,
        train_json,
        vec!["--help"],
    ];
    for args in commands {
        let (status, stderr) = with_closed_stdout(&args, 0);
        assert_quiet_end(&args.join(" "), status, &stderr);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
