//! Data parallel over MPI through the CLI: `mpirun -np 2 finetune train ...` on the tiny BERT,
//! one thread per rank. Two ranks of per-device batch 4 end where one process with batch 8
//! ends (dropout off; within float reduction order), a resumed 2-rank run repeats the
//! uninterrupted one bit for bit (dropout on), ranks started with different flags refuse to
//! train, and a rank killed mid-run stops the job with the last checkpoint intact.
//!
//! The MPI binary is this test build's when it has the `mpi` feature; otherwise, where
//! `mpirun` exists, the test builds one (`cargo build --features mpi`, target folder `mpi/`
//! beside this one's). Where neither is there, the MPI tests say so and pass: the data-parallel
//! logic itself is also tested with ranks as threads (`finetune-train`'s `data_parallel`).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn has_mpirun() -> bool {
    Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A `finetune` built with the `mpi` feature, or `None` (after saying why) where this build
/// lacks it and no `mpirun` is installed.
fn mpi_finetune() -> Option<&'static Path> {
    static BINARY: OnceLock<Option<PathBuf>> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if cfg!(feature = "mpi") {
                return Some(PathBuf::from(env!("CARGO_BIN_EXE_finetune")));
            }
            if !has_mpirun() {
                eprintln!(
                    "skipped: no mpirun and a build without the `mpi` feature (apt install \
                     openmpi-bin libopenmpi-dev libclang-dev to run the MPI tests)"
                );
                return None;
            }
            Some(build_with_mpi())
        })
        .as_deref()
}

/// `cargo build --features mpi --bin finetune` into `mpi/` beside this build's target folder.
fn build_with_mpi() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_finetune"));
    let profile_dir = exe.parent().unwrap();
    let target = profile_dir.parent().unwrap().join("mpi");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--features", "mpi", "--bin", "finetune"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building finetune with --features mpi failed (needs libopenmpi-dev and \
         libclang-dev):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("debug").join("finetune")
}

/// `mpirun` allowed to run as root, and more ranks than slots on small machines.
fn mpirun_cmd() -> Command {
    let mut cmd = Command::new("mpirun");
    cmd.arg("--oversubscribe")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    cmd
}

/// `mpirun -np N finetune ARGS`, run to its end.
fn mpirun(np: usize, binary: &Path, args: &[String]) -> Output {
    let mut cmd = mpirun_cmd();
    cmd.args(["-np", &np.to_string()]).arg(binary).args(args);
    cmd.output().expect("run mpirun")
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A text run of the tiny BERT: `steps` steps of `batch` (per rank), a checkpoint every 3.
fn args(
    model: &Path,
    data: &Path,
    out: &Path,
    batch: usize,
    steps: usize,
    extra: &[&str],
) -> Vec<String> {
    let mut a = text_train_args(model, data, out);
    let (batch, steps) = (batch.to_string(), steps.to_string());
    let lr = match extra.contains(&"--lr") {
        true => [].as_slice(),
        false => ["--lr", "1e-3"].as_slice(),
    };
    a.extend(lr.iter().map(|s| s.to_string()));
    a.extend(
        [
            "--batch-size",
            &batch,
            "--max-steps",
            &steps,
            "--seed",
            "3",
            "--save-steps",
            "3",
            "--lr-scheduler-type",
            "constant",
            "--no-progress",
        ]
        .map(String::from),
    );
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// A tiny BERT and 96 training rows under a fresh folder.
fn fixture(tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = tmpdir(tag);
    let model = dir.join("model");
    write_tiny_bert(&model, 1);
    let data = dir.join("train.csv");
    write_sentiment_csv(&data, 96, 2);
    (dir, model, data)
}

fn max_diff(a: &Path, b: &Path) -> f64 {
    let (ta, tb) = (load_tensors(a), load_tensors(b));
    assert_eq!(ta.len(), tb.len());
    ta.iter()
        .map(|(name, x)| {
            let d = (x - &tb[name])
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap();
            let d = d.max(0).unwrap().to_dtype(candle_core::DType::F64).unwrap();
            d.to_scalar::<f64>().unwrap()
        })
        .fold(0.0, f64::max)
}

#[test]
fn two_ranks_match_one_process_with_the_global_batch() {
    let Some(bin) = mpi_finetune() else { return };
    let (dir, model, data) = fixture("mpi-match");
    let (ddp, one, small) = (dir.join("ddp"), dir.join("one"), dir.join("small"));
    // Plain SGD: its update is linear in the gradient, so the reduction order shows as
    // float noise only (Adam's normalisation blows up the noise of near-zero gradients).
    // An evaluation set of 41 reviews (batches of 8: 6 batches, 3 for each rank).
    let eval = dir.join("eval.csv");
    write_sentiment_csv(&eval, 41, 5);
    let eval = eval.to_str().unwrap();
    let nodrop = [
        "--eval",
        eval,
        "--eval-strategy",
        "steps",
        "--eval-steps",
        "3",
        "--eval-batch-size",
        "8",
        "--dropout",
        "0",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--logging-steps",
        "1",
        "--json",
    ];
    // The ranks' temp folder, to see rank 1's scratch folder go.
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut cmd = mpirun_cmd();
    cmd.args(["-np", "2"]).arg(bin).env("TMPDIR", &tmp);
    let run = cmd
        .args(args(&model, &data, &ddp, 4, 6, &nodrop))
        .output()
        .unwrap();
    assert_ok(&run, "mpirun -np 2");
    // Rank 0 alone speaks: its plan line once on stderr, one JSON document on stdout.
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(err.matches("training 6 steps").count(), 1, "{err}");
    assert!(err.contains("batch 4 x 2 ranks (mpi)"), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("one report");
    let d = &report["summary"]["distributed"];
    assert_eq!(
        (d["backend"].as_str(), d["world_size"].as_u64()),
        (Some("mpi"), Some(2))
    );
    assert_eq!(d["global_batch_size"], 8);
    finetune_ok(&args(&model, &data, &one, 8, 6, &nodrop));
    finetune_ok(&args(&model, &data, &small, 4, 6, &nodrop));
    let m = |p: &Path| p.join("model.safetensors");
    let diff = max_diff(&m(&ddp), &m(&one));
    assert!(diff < 1e-5, "2 ranks x 4 vs 1 x 8: {diff}");
    // The ranks shared the evaluation; rank 0 reports the whole set's.
    let (ours, alone) = (
        &report["summary"]["final_eval"],
        read_json(&one.join("train_summary.json")),
    );
    assert_eq!(ours["samples"], 41);
    let loss = |v: &serde_json::Value| v["loss"].as_f64().unwrap();
    let gap = (loss(ours) - loss(&alone["final_eval"])).abs();
    assert!(gap < 1e-5, "eval loss {ours} vs {}", alone["final_eval"]);
    // The comparison has teeth: the per-device batch alone ends elsewhere.
    let apart = max_diff(&m(&small), &m(&one));
    assert!(apart > 1e-4, "1 x 4 vs 1 x 8 differ by {apart} only");
    assert_eq!(checkpoint_steps(&ddp), [3, 6]);
    // Rank 0 logs each step once, the global batch's mean loss.
    let losses = |p: &Path| -> Vec<f64> {
        let text = std::fs::read_to_string(p.join("metrics.jsonl")).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter_map(|r| r["loss"].as_f64())
            .collect()
    };
    let (ours, alone) = (losses(&ddp), losses(&one));
    assert_eq!(ours.len(), 6);
    for (a, b) in ours.iter().zip(&alone) {
        assert!((a - b).abs() < 1e-5, "losses {ours:?} vs {alone:?}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("candle-finetune-rank1-")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "rank 1's scratch folder stayed: {leftovers:?}"
    );
}

#[test]
fn a_resumed_two_rank_run_repeats_the_uninterrupted_one() {
    let Some(bin) = mpi_finetune() else { return };
    let (dir, model, data) = fixture("mpi-resume");
    let (full, cut) = (dir.join("full"), dir.join("cut"));
    // Dropout on: each rank draws its own masks, and the checkpoint keeps both streams.
    assert_ok(
        &mpirun(2, bin, &args(&model, &data, &full, 4, 6, &[])),
        "full run",
    );
    assert_ok(
        &mpirun(2, bin, &args(&model, &data, &cut, 4, 3, &[])),
        "3 steps",
    );
    let resume = ["--resume", "latest"];
    assert_ok(
        &mpirun(2, bin, &args(&model, &data, &cut, 4, 6, &resume)),
        "resumed",
    );
    assert_same_tensors(
        &full.join("model.safetensors"),
        &cut.join("model.safetensors"),
    );
    let state = read_json(&cut.join("checkpoint-3").join("trainer_state.json"));
    assert_eq!(state["world_size"], 2);
    // One process cannot take over a 2-rank checkpoint.
    let alone = finetune(&args(&model, &data, &cut, 4, 6, &resume));
    let err = String::from_utf8_lossy(&alone.stderr);
    assert!(!alone.status.success());
    assert!(err.contains("written by a run of 2 rank(s)"), "{err}");
}

#[test]
fn ranks_started_with_different_flags_refuse_to_train() {
    let Some(bin) = mpi_finetune() else { return };
    let (dir, model, data) = fixture("mpi-mismatch");
    let out = dir.join("out");
    let mut cmd = mpirun_cmd();
    for (i, wd) in ["0.01", "0.02"].into_iter().enumerate() {
        if i > 0 {
            cmd.arg(":");
        }
        cmd.args(["-np", "1"]).arg(bin);
        cmd.args(args(&model, &data, &out, 4, 6, &["--weight-decay", wd]));
    }
    let run = cmd.output().expect("run mpirun");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{err}");
    assert!(err.contains("rank 1 (weight_decay)"), "{err}");
    assert!(!out.join("model.safetensors").exists());
    assert!(checkpoint_steps(&out).is_empty());
}

/// The process of rank `rank` whose command line names `out`.
fn rank_pid(rank: usize, out: &Path) -> Option<u32> {
    let want = format!("OMPI_COMM_WORLD_RANK={rank}");
    let out = out.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let environ = std::fs::read(e.path().join("environ")).ok()?;
        let has = |bytes: &[u8], s: &str| bytes.split(|b| *b == 0).any(|w| w == s.as_bytes());
        (has(&cmdline, &out) && has(&environ, &want)).then_some(pid)
    })
}

#[test]
fn a_rank_killed_mid_run_stops_every_rank_and_the_last_checkpoint_resumes() {
    let Some(bin) = mpi_finetune() else { return };
    let (dir, model, data) = fixture("mpi-kill");
    let out = dir.join("out");
    let child = mpirun_cmd()
        .args(["-np", "2"])
        .arg(bin)
        .args(args(&model, &data, &out, 4, 1_000_000, &[]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start mpirun");
    let waited = std::time::Instant::now();
    while !out.join("checkpoint-3").is_dir() {
        assert!(
            waited.elapsed().as_secs() < 120,
            "no checkpoint-3 in 2 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = rank_pid(1, &out).expect("rank 1's process");
    // SAFETY: a plain kill(2) of a process this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let ended = child.wait_with_output().expect("mpirun ends");
    let err = String::from_utf8_lossy(&ended.stderr);
    assert!(!ended.status.success(), "{err}");
    assert!(
        err.contains("process rank 1"),
        "mpirun names the lost rank:\n{err}"
    );
    assert!(
        err.contains("error: rank 0 of 2: the job was ended by its launcher"),
        "rank 0 says why it stopped:\n{err}"
    );
    // Every checkpoint left is whole: the newest resumes, for 3 more steps.
    let last = *checkpoint_steps(&out).last().unwrap();
    for name in [
        "model.safetensors",
        "trainer_state.json",
        "optimizer.safetensors",
    ] {
        assert!(
            out.join(format!("checkpoint-{last}")).join(name).is_file(),
            "{name}"
        );
    }
    let resume = ["--resume", "latest"];
    let more = (last + 3) as usize;
    assert_ok(
        &mpirun(2, bin, &args(&model, &data, &out, 4, more, &resume)),
        "resumed",
    );
    assert_eq!(
        read_json(&out.join("train_summary.json"))["global_step"],
        more
    );
}

#[cfg(not(feature = "mpi"))]
#[test]
fn without_the_mpi_feature_a_distributed_run_is_one_clear_error() {
    let (dir, model, data) = fixture("mpi-absent");
    let out = dir.join("out");
    let flag = finetune(&args(&model, &data, &out, 4, 6, &["--distributed"]));
    let launched = finetune_cmd()
        .args(args(&model, &data, &out, 4, 6, &[]))
        .env("OMPI_COMM_WORLD_RANK", "0")
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    for (run, says) in [(flag, "--distributed was given"), (launched, "rank 0 of 2")] {
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{err}");
        assert!(
            err.contains(says) && err.contains("--features mpi"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!out.join("model.safetensors").exists());
    }
}
