//! One writer per folder, with real processes: a run holds its output folder's lock, every
//! other writer (a second `train`, `--resume`, `--overwrite`, `export`) is refused at once with
//! one line naming the holder, and the holder's results are those of an undisturbed run; a
//! SIGKILLed holder leaves no lock behind.

use crate::common::*;
use crate::support::*;
use std::path::Path;
use std::process::Stdio;

const FLAGS: [&str; 8] = [
    "--max-steps",
    "6",
    "--save-steps",
    "2",
    "--logging-steps",
    "1",
    "--seed",
    "7",
];

/// Pauses the run into `out` while it writes its first checkpoint.
const PAUSE: &str = ".checkpoint-2.tmp-&trainer_state.json";

fn refused_as_in_use(run: &std::process::Output, out: &Path, pid: u32) {
    let holder = format!("pid {pid}, started ");
    let line = assert_clean_failure(
        run,
        &[s(out), "is in use by another finetune run", &holder, "UTC"],
    );
    assert_eq!(run.status.code(), Some(1), "{line}");
}

fn same_bytes(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(x == y, "{} and {} differ", a.display(), b.display());
}

#[test]
fn a_second_writer_is_refused_and_the_holder_finishes_as_if_alone() {
    let f = Fixture::new("lock-held");
    let reference = f.dir.join("reference");
    finetune_ok(&f.train_args(&reference, &FLAGS));

    let out = f.out();
    let go_on = f.dir.join("go-on");
    let (mut holder, _) = spawn_paused(&f.train_args(&out, &FLAGS), PAUSE, Some(&go_on));
    let pid = holder.id();
    let attempts: [&[&str]; 4] = [&[], &["--resume"], &["--overwrite"], &["--seed", "9"]];
    for extra in attempts {
        let run = finetune(&f.train_args(&out, extra));
        refused_as_in_use(&run, &out, pid);
        let line = String::from_utf8_lossy(&run.stderr).into_owned();
        assert!(line.contains("choose another --output"), "{line}");
    }
    let run = finetune(&["export", "--checkpoint", s(&reference), "--output", s(&out)]);
    refused_as_in_use(&run, &out, pid);

    std::fs::write(&go_on, "").unwrap();
    assert!(holder.wait().unwrap().success());
    same_bytes(
        &out.join("model.safetensors"),
        &reference.join("model.safetensors"),
    );
    for step in [2, 4, 6] {
        let ckpt = format!("checkpoint-{step}/model.safetensors");
        same_bytes(&out.join(&ckpt), &reference.join(&ckpt));
    }
    let log = |dir: &Path| {
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("samples_per_s");
                v
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(log(&out), log(&reference));
    assert!(
        !out.join(finetune_core::folder_lock::LOCK_FILE).exists(),
        "the finished run left its lock file"
    );
}

#[test]
fn a_sigkilled_holder_leaves_no_lock_and_resume_proceeds() {
    let f = Fixture::new("lock-killed");
    let out = f.out();
    // Killed while writing its second checkpoint, so that there is one to resume from.
    let second = ".checkpoint-4.tmp-&trainer_state.json";
    let (mut holder, _) = spawn_paused(&f.train_args(&out, &FLAGS), second, None);
    holder.kill().unwrap();
    assert!(!holder.wait().unwrap().success());
    // The file stays (nobody removed it); its lock went with the process.
    assert!(out.join(finetune_core::folder_lock::LOCK_FILE).exists());
    let resumed = finetune(&f.train_args(&out, &[&FLAGS[..], &["--resume"]].concat()));
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(read_json(&out.join("train_summary.json"))["global_step"], 6);
}

#[test]
fn two_identical_runs_started_together_never_share_the_folder() {
    let f = Fixture::new("lock-race");
    let out = f.out();
    let args = f.train_args(&out, &FLAGS);
    for round in 0..3 {
        let _ = std::fs::remove_dir_all(&out);
        let spawn = || {
            finetune_cmd()
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let runs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let ok = runs.iter().filter(|r| r.status.success()).count();
        assert_eq!(ok, 1, "round {round}: {} runs succeeded", ok);
        let failed = runs.iter().find(|r| !r.status.success()).unwrap();
        // Refused by the lock, or (when the other had already finished) by its results.
        let line = assert_clean_failure(failed, &[s(&out)]);
        assert!(
            line.contains("is in use by another finetune run") || line.contains("not empty"),
            "round {round}: {line}"
        );
        assert_eq!(read_json(&out.join("train_summary.json"))["global_step"], 6);
        assert_nothing_half_written(&out);
    }
}
