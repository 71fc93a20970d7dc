//! Bad command lines: unknown values, contradictions, an occupied or unwritable output folder.
//! Each fails at once (before reading data or loading the model), on one line, writing nothing.

use crate::common::*;
use crate::support::*;

/// `finetune train` on the fixture with `extra`, which must fail naming `needles`.
fn flags_fail(f: &Fixture, extra: &[&str], needles: &[&str]) -> String {
    let out = f.out();
    let line = train_fails(&f.train_args(&out, extra), &out, needles);
    assert!(
        !out.exists(),
        "a refused command line created {}",
        out.display()
    );
    line
}

#[test]
fn unknown_flag_values() {
    let f = Fixture::new("cli-values");
    for (flags, needle) in [
        (&["--optimizer", "adamz"][..], "adamz"),
        (&["--schedule", "zigzag"], "zigzag"),
        (&["--metric", "bleu"], "bleu"),
        (&["--on-nan", "ignore"], "ignore"),
        (&["--device", "tpu"], "tpu"),
    ] {
        flags_fail(&f, flags, &[needle]);
    }
    // A freeze pattern is checked against the model's names: after loading it, before training.
    let out = f.out();
    train_fails(
        &f.train_args(&out, &["--freeze", "no.such.layer.*"]),
        &out,
        &["no.such.layer.*"],
    );
    // A value clap itself checks: a usage error, status 2.
    let run = finetune(&["train", "--task", "summarisation"]);
    assert_clean_failure(&run, &["summarisation"]);
    assert_eq!(run.status.code(), Some(2));
}

#[test]
fn contradictory_or_impossible_flags() {
    let f = Fixture::new("cli-contradictions");
    for (flags, needle) in [
        (
            &["--warmup-steps", "3", "--warmup-ratio", "0.1"][..],
            "not both",
        ),
        (&["--epochs", "0"], "--epochs"),
        (&["--lr=-0.001"], "--lr"),
        (&["--lr", "0"], "--lr"),
        (&["--batch-size", "0"], "batch"),
        (&["--grad-accum", "0"], "--grad-accum"),
        (&["--warmup-ratio", "1.5"], "--warmup-ratio"),
        (&["--resume", "--overwrite"], "not both"),
        (&["--max-steps", "0"], "--max-steps"),
    ] {
        flags_fail(&f, flags, &[needle]);
    }
}

#[test]
fn a_non_empty_output_folder_is_refused_unless_overwrite() {
    let f = Fixture::new("cli-occupied");
    let out = f.out();
    finetune_ok(&f.train_args(&out, &["--save-steps", "1"]));
    let before = load_tensors(&out.join("model.safetensors"));
    assert!(out.join("checkpoint-2").is_dir());

    // The same command again: refused, the earlier run untouched.
    let run = finetune(&f.train_args(&out, &["--seed", "9"]));
    assert_clean_failure(&run, &[s(&out), "not empty", "--overwrite"]);
    let after = load_tensors(&out.join("model.safetensors"));
    for (n, t) in &before {
        assert!(same_bits(t, &after[n]), "{n} changed");
    }

    // A folder holding someone's file is refused too, and the file stays.
    let other = f.dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let run = finetune(&f.train_args(&other, &[]));
    assert_clean_failure(&run, &[s(&other), "notes.txt"]);

    // --overwrite: the earlier run's checkpoints go, the new run's outputs replace its files,
    // other files stay.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    finetune_ok(&f.train_args(&out, &["--overwrite", "--seed", "9", "--max-steps", "1"]));
    assert!(
        !out.join("checkpoint-2").exists(),
        "a stale checkpoint survived"
    );
    assert!(out.join("checkpoint-1").is_dir());
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(read_json(&out.join("train_summary.json"))["global_step"], 1);
    let replaced = load_tensors(&out.join("model.safetensors"));
    assert!(before.iter().any(|(n, t)| !same_bits(t, &replaced[n])));

    // transformers' name, in a config file.
    let toml = f.dir.join("run.toml");
    std::fs::write(&toml, "overwrite_output_dir = true\n").unwrap();
    let mut args = f.train_args(&out, &["--max-steps", "1"]);
    args.extend(["--config".to_string(), s(&toml).to_string()]);
    finetune_ok(&args);
}

#[test]
fn a_refused_freeze_pattern_writes_nothing() {
    // Freeze patterns are checked against the model before any output exists.
    let f = Fixture::new("cli-bad-freeze");
    let out = f.out();
    let run = finetune(&f.train_args(&out, &["--freeze", "typo.*"]));
    assert_clean_failure(&run, &["typo.*"]);
    assert!(!out.exists(), "a refused run created {}", out.display());
}

#[test]
fn a_failed_run_does_not_block_the_next_one() {
    // A run that fails before its first checkpoint (here: the loss turns non-finite) leaves only
    // its settings and log: the retry into the same folder needs no --overwrite.
    let f = Fixture::new("cli-retry");
    let out = f.out();
    let nan = [
        "--lr",
        "1e30",
        "--optimizer",
        "sgd",
        "--schedule",
        "constant",
        "--max-grad-norm",
        "0",
        "--max-steps",
        "20",
    ];
    let run = finetune(&f.train_args(&out, &nan));
    assert_clean_failure(&run, &["step"]);
    assert!(out.join("run_config.json").is_file());
    assert!(checkpoint_steps(&out).is_empty());
    finetune_ok(&f.train_args(&out, &[]));
    assert!(out.join("model.safetensors").is_file());
}

#[test]
fn resume_into_the_same_folder_is_allowed() {
    let f = Fixture::new("cli-resume");
    let out = f.out();
    finetune_ok(&f.train_args(&out, &["--max-steps", "4", "--save-steps", "2"]));
    finetune_ok(&f.train_args(&out, &["--max-steps", "4", "--save-steps", "2", "--resume"]));
    // Resuming a folder with no checkpoint says so.
    let empty = f.dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = finetune(&f.train_args(&empty, &["--resume", "latest"]));
    assert_clean_failure(&run, &[s(&empty), "no checkpoint"]);
}

#[test]
fn an_unwritable_output_folder() {
    let f = Fixture::new("cli-unwritable");
    // Root may write anywhere a folder exists: use a path under a regular file...
    let file = f.dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = file.join("out");
    let run = finetune(&f.train_args(&out, &[]));
    assert_clean_failure(&run, &[s(&out), "not a folder"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    // ...or an output that is itself a file...
    let run = finetune(&f.train_args(&file, &[]));
    assert_clean_failure(&run, &[s(&file), "not a folder"]);
    // ...or a folder of /proc, where nothing can be created.
    let proc_out = std::path::Path::new("/proc/self/finetune-out");
    let run = finetune(&f.train_args(proc_out, &[]));
    assert_clean_failure(&run, &[s(proc_out)]);
}
