//! Faults: a SIGKILL at random points and at the worst points of checkpoint writing and export,
//! then `--resume latest`; a full disk (a size-limited child) while writing a checkpoint or an
//! export; a loss or gradients that turn NaN/Inf, under `--on-nan stop` and `--on-nan skip`.

use crate::common::*;
use crate::support::*;
use candle_core::{DType, Device, Module, Tensor};
use finetune_core::nn::{linear, Linear};
use finetune_core::{ParamStore, Rng, TensorKind};
use finetune_train::{Batch, BatchSource, Learner, OnNan, Problem, TrainConfig, TrainModel};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const STEPS: u64 = 40;

/// The run every crash test repeats: 40 AdamW steps with warm-up, a checkpoint every 5.
fn run_flags() -> Vec<String> {
    [
        "--max-steps",
        &STEPS.to_string(),
        "--save-steps",
        "5",
        "--logging-steps",
        "1",
        "--lr",
        "1e-3",
        "--warmup-steps",
        "3",
        "--seed",
        "7",
    ]
    .map(String::from)
    .to_vec()
}

fn args(f: &Fixture, out: &Path, extra: &[&str]) -> Vec<String> {
    let flags = run_flags();
    let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
    all.extend_from_slice(extra);
    f.train_args(out, &all)
}

/// Every `checkpoint-STEP` under `out` is complete — each file there, parsing in full,
/// `trainer_state.json` at that step — and equal, bit for bit, to the reference run's.
fn verify_checkpoints(out: &Path, reference: &Path) {
    for step in checkpoint_steps(out) {
        let dir = out.join(format!("checkpoint-{step}"));
        for file in [
            "model.safetensors",
            "config.json",
            "vocab.txt",
            "optimizer.json",
            "optimizer.safetensors",
            "scheduler.json",
            "trainer_state.json",
        ] {
            assert!(dir.join(file).is_file(), "{} lacks {file}", dir.display());
        }
        assert_nothing_half_written(&dir);
        assert_eq!(
            read_json(&dir.join("trainer_state.json"))["global_step"],
            step,
            "{}",
            dir.display()
        );
        let want = reference.join(format!("checkpoint-{step}"));
        for file in ["model.safetensors", "optimizer.safetensors"] {
            assert_same_tensors(&want.join(file), &dir.join(file));
        }
    }
}

/// What a killed run may leave besides complete checkpoints: its settings and logs (TensorBoard's
/// in `runs/`), files of its export (each complete), and temporary entries (hidden, never under
/// a final name).
fn assert_only_complete_outputs(out: &Path, reference: &Path) {
    verify_checkpoints(out, reference);
    for e in std::fs::read_dir(out).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("checkpoint-") {
            continue;
        }
        if name.contains(".tmp-") {
            assert!(
                name.starts_with('.'),
                "temporary entry under a visible name: {name}"
            );
            continue;
        }
        let p = e.path();
        if name == "runs" {
            // TensorBoard's event files, appended as the run logs.
            for f in std::fs::read_dir(&p).unwrap().flatten() {
                let n = f.file_name().to_string_lossy().into_owned();
                assert!(
                    n.starts_with("events.out.tfevents."),
                    "unexpected {n} in runs/"
                );
            }
            continue;
        }
        assert!(p.is_file(), "unexpected {}", p.display());
        if name.ends_with(".safetensors") {
            let bytes = std::fs::read(&p).unwrap();
            safetensors::SafeTensors::deserialize(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
        if name.ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
    // A run's end is marked by its summary, written after the export.
    assert!(
        !out.join("train_summary.json").exists(),
        "a killed run wrote its summary"
    );
}

/// Resumes the killed run in `out`, then checks it ended exactly where the reference did.
fn resume_and_compare(f: &Fixture, out: &Path, reference: &Path) {
    let left = checkpoint_steps(out);
    assert!(!left.is_empty(), "no checkpoint to resume from");
    finetune_ok(&args(f, out, &["--resume", "latest"]));
    verify_checkpoints(out, reference);
    assert_same_tensors(
        &reference.join("model.safetensors"),
        &out.join("model.safetensors"),
    );
    assert_nothing_half_written(out);
    assert_eq!(
        read_json(&out.join("train_summary.json"))["global_step"],
        STEPS
    );
}

fn spawn(args: &[String]) -> Child {
    let mut cmd = finetune_cmd();
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

fn sigkill(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success());
}

/// Runs `args` with the pause hook set to `pause`, waits for the pause, SIGKILLs the process.
fn kill_at_pause(args: &[String], pause: &str) {
    let (mut child, _) = spawn_paused(args, pause, None);
    sigkill(&mut child);
}

/// The reference run, uninterrupted; returns its output folder and its wall time.
fn reference(f: &Fixture) -> (PathBuf, Duration) {
    let out = f.dir.join("reference");
    let started = Instant::now();
    finetune_ok(&args(f, &out, &[]));
    let took = started.elapsed();
    assert_eq!(
        checkpoint_steps(&out),
        (1..=STEPS / 5).map(|k| 5 * k).collect::<Vec<_>>()
    );
    (out, took)
}

#[test]
fn sigkill_at_the_worst_points_then_resume_matches_an_uninterrupted_run() {
    let f = Fixture::new("kill-points");
    let (reference, _) = reference(&f);
    let top = |file: &str| {
        let out = f.dir.join("x");
        format!("{}/{file}", out.display())
    };
    // (what is being written when the process dies, the pause pattern)
    let points = [
        (
            "the first file of checkpoint 15",
            ".checkpoint-15.tmp-&model.safetensors".to_string(),
        ),
        (
            "the optimizer state of checkpoint 20",
            ".checkpoint-20.tmp-&optimizer.safetensors".into(),
        ),
        (
            "the last file of checkpoint 35",
            ".checkpoint-35.tmp-&trainer_state.json".into(),
        ),
        (
            "the final checkpoint",
            format!(".checkpoint-{STEPS}.tmp-&scheduler.json"),
        ),
        ("the exported weights", top("model.safetensors")),
        ("the exported config, after the weights", top("config.json")),
        ("the log rewrite of a fresh run", top("metrics.jsonl")),
    ];
    for (what, pause) in points {
        let out = f.dir.join("x");
        let _ = std::fs::remove_dir_all(&out);
        kill_at_pause(&args(&f, &out, &[]), &pause);
        assert_only_complete_outputs(&out, &reference);
        if checkpoint_steps(&out).is_empty() {
            // Killed before its first checkpoint: the folder counts as empty, a plain rerun
            // needs no --overwrite.
            finetune_ok(&args(&f, &out, &[]));
        } else {
            resume_and_compare(&f, &out, &reference);
        }
        assert_same_tensors(
            &reference.join("model.safetensors"),
            &out.join("model.safetensors"),
        );
        eprintln!("killed while writing {what}: resumed exactly");
    }
}

#[test]
fn sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run() {
    let f = Fixture::new("kill-random");
    let (reference, took) = reference(&f);
    // Seeded: a failure names its seed and delay and reproduces.
    let mut rng = Rng::seed_from_u64(0x5eed_0010);
    let mut kills = 0;
    for round in 0..4 {
        let out = f.dir.join(format!("r{round}"));
        let mut child = spawn(&args(&f, &out, &[]));
        // Wait for the first checkpoint (the model is loaded, steps are running), then a
        // random delay within the rest of the run.
        let started = Instant::now();
        while checkpoint_steps(&out).is_empty() {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "no checkpoint"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        let delay = Duration::from_micros(rng.below(took.as_micros() as u64 / 2 + 1));
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_some() {
            eprintln!("round {round}: the run ended before the kill at +{delay:?}");
            continue;
        }
        sigkill(&mut child);
        kills += 1;
        assert_only_complete_outputs(&out, &reference);
        resume_and_compare(&f, &out, &reference);
        eprintln!(
            "round {round}: killed at +{delay:?} after checkpoint {:?}: resumed exactly",
            checkpoint_steps(&out).first()
        );
    }
    assert!(
        kills >= 2,
        "only {kills} of 4 random kills landed before the run ended"
    );
}

// ---- a full disk ---------------------------------------------------------------------------

/// `finetune ARGS` in a child whose files cannot grow past `limit` bytes (RLIMIT_FSIZE, with
/// SIGXFSZ ignored so a write past it fails with EFBIG, as on a full disk).
fn finetune_with_file_limit(args: &[String], limit: u64) -> std::process::Output {
    let mut cmd = finetune_cmd();
    cmd.args(args);
    // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    cmd.output().unwrap()
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn a_full_disk_while_writing_a_checkpoint_keeps_the_previous_one() {
    let f = Fixture::new("disk-checkpoint");
    let (reference, _) = reference(&f);
    let ckpt = reference.join("checkpoint-10");
    let (weights, optimizer) = (
        file_len(&ckpt.join("model.safetensors")),
        file_len(&ckpt.join("optimizer.safetensors")),
    );
    assert!(weights < optimizer, "AdamW's state is twice the weights");
    // The run as it stood after checkpoint 10.
    let out = f.dir.join("full");
    for e in std::fs::read_dir(&reference).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if ["checkpoint-5", "checkpoint-10", "run_config.json"].contains(&name.as_str()) {
            if e.path().is_dir() {
                copy_dir(&e.path(), &out.join(&name));
            } else {
                std::fs::copy(e.path(), out.join(&name)).unwrap();
            }
        }
    }
    let before = snapshot(&out.join("checkpoint-10"));
    // Files may grow to hold the weights but not the optimizer state.
    let limit = (weights + optimizer) / 2;
    let run = finetune_with_file_limit(&args(&f, &out, &["--resume", "latest"]), limit);
    let line = assert_clean_failure(&run, &["optimizer.safetensors", "cannot write"]);
    assert!(
        line.contains("File too large") || line.contains("os error 27"),
        "{line}"
    );
    assert_eq!(checkpoint_steps(&out), [5, 10], "{line}");
    assert_eq!(
        snapshot(&out.join("checkpoint-10")),
        before,
        "checkpoint 10 changed"
    );
    verify_checkpoints(&out, &reference);
    assert_nothing_half_written(&out);
    assert!(!out.join("model.safetensors").exists());

    // With room again, the run resumes from checkpoint 10 and ends as the reference did.
    resume_and_compare(&f, &out, &reference);
}

#[test]
fn a_full_disk_while_exporting_keeps_the_previous_export() {
    let f = Fixture::new("disk-export");
    let out = f.out();
    finetune_ok(&f.train_args(&out, &["--max-steps", "4", "--save-steps", "2"]));
    let exported = f.dir.join("exported");
    let export = |ckpt: &str| -> Vec<String> {
        [
            "export",
            "--checkpoint",
            s(&out.join(ckpt)),
            "--output",
            s(&exported),
        ]
        .map(String::from)
        .to_vec()
    };
    finetune_ok(&export("checkpoint-2"));
    let before = snapshot(&exported);
    let weights = file_len(&exported.join("model.safetensors"));
    let run = finetune_with_file_limit(&export("checkpoint-4"), weights / 2);
    assert_clean_failure(&run, &["model.safetensors", "cannot write"]);
    assert_eq!(snapshot(&exported), before, "the previous export changed");
    for e in std::fs::read_dir(&f.dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "left-over {name}");
    }
    // The same export with room succeeds and replaces it.
    finetune_ok(&export("checkpoint-4"));
    assert_same_tensors(
        &out.join("checkpoint-4/model.safetensors"),
        &exported.join("model.safetensors"),
    );
}

// ---- numerical faults ----------------------------------------------------------------------

#[test]
fn a_huge_lr_stops_the_run_naming_the_step_and_the_last_good_checkpoint() {
    let f = Fixture::new("nan-lr");
    let out = f.out();
    let run = finetune(&f.train_args(
        &out,
        &[
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
            "--save-steps",
            "1",
        ],
    ));
    let line = assert_clean_failure(&run, &["step"]);
    assert!(
        line.contains("NaN") || line.contains("inf") || line.contains("non-finite"),
        "{line}"
    );
    let steps = checkpoint_steps(&out);
    let last = steps.last().copied().expect("step 1 is finite and saved");
    let good = out.join(format!("checkpoint-{last}"));
    assert!(line.contains(s(&good)), "{line}");
    assert_nothing_half_written(&out);
    for t in load_tensors(&good.join("model.safetensors")).values() {
        let v = t
            .to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        assert!(
            v.iter().all(|x| x.is_finite()),
            "the kept checkpoint is not finite"
        );
    }
    assert!(!out.join("model.safetensors").exists());
    assert!(!out.join("train_summary.json").exists());
}

/// A linear classifier whose batches can carry poison: a `Grad` sample makes the gradients NaN
/// while the loss stays finite (`d sqrt(0·w)/dw = 0·∞`); a `Loss` sample makes the loss NaN.
struct Poisonable {
    store: ParamStore,
    head: Linear,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Poison {
    Grad,
    Loss,
}

struct Inputs {
    x: Tensor,
    poison: Option<Poison>,
}

impl Poisonable {
    fn new() -> Self {
        let store = ParamStore::new();
        let mut rng = Rng::seed_from_u64(3);
        let (w, b) =
            finetune_core::nn::init::torch_linear(2, 4, &mut rng, DType::F32, &Device::Cpu)
                .unwrap();
        store
            .insert("head.weight", &w, TensorKind::Parameter)
            .unwrap();
        store
            .insert("head.bias", &b, TensorKind::Parameter)
            .unwrap();
        let head = linear(&store, "head", 4, 2, true).unwrap();
        Self { store, head }
    }
}

impl TrainModel for Poisonable {
    type Inputs = Inputs;

    fn store(&self) -> &ParamStore {
        &self.store
    }

    fn forward_t(&self, inputs: &Inputs, _train: bool) -> finetune_core::Result<Tensor> {
        let logits = self.head.forward(&inputs.x)?;
        Ok(match inputs.poison {
            None => logits,
            Some(Poison::Loss) => (logits * f64::NAN)?,
            Some(Poison::Grad) => {
                let w = self.store.get("head.weight")?;
                // Not `affine(0, 0)`: candle prunes a multiplication by the constant 0 from
                // the graph.
                let zero = w.mul(&w.zeros_like()?)?.sqrt()?.sum_all()?;
                logits.broadcast_add(&zero)?
            }
        })
    }

    fn loss(&self, logits: &Tensor, targets: &Tensor, ls: f64) -> finetune_core::Result<Tensor> {
        Ok(finetune_kernels::ops::cross_entropy(
            logits, targets, ls, None,
        )?)
    }

    fn problem(&self) -> Problem {
        Problem::SingleLabel {
            labels: vec!["a".into(), "b".into()],
        }
    }

    fn layout(&self) -> finetune_core::ParamLayout {
        finetune_core::ParamLayout::new(["head.*"], |_| None)
    }

    fn export(&self, dir: &Path) -> finetune_core::Result<()> {
        self.store
            .save(&dir.join("model.safetensors"), |n| Some(n.to_string()))
    }
}

/// 32 samples; `poisoned` ones poison their batch. Records, per batch built, its poison.
struct PoisonData {
    poisoned: Vec<(usize, Poison)>,
    built: Mutex<Vec<Option<Poison>>>,
}

impl BatchSource<Inputs> for PoisonData {
    fn len(&self) -> usize {
        32
    }

    fn batch(
        &self,
        idx: &[usize],
        _epoch: u64,
        _train: bool,
    ) -> finetune_core::Result<Batch<Inputs>> {
        let x: Vec<f32> = idx
            .iter()
            .flat_map(|&i| {
                let c = (i % 2) as f32 * 2.0 - 1.0;
                [c, -c, 0.5 * c, 1.0]
            })
            .collect();
        let y: Vec<u32> = idx.iter().map(|&i| (i % 2) as u32).collect();
        let poison = self
            .poisoned
            .iter()
            .find(|(p, _)| idx.contains(p))
            .map(|(_, k)| *k);
        self.built.lock().unwrap().push(poison);
        Ok(Batch {
            inputs: Inputs {
                x: Tensor::from_vec(x, (idx.len(), 4), &Device::Cpu)?,
                poison,
            },
            targets: Tensor::new(y.as_slice(), &Device::Cpu)?,
            teacher: None,
        })
    }
}

fn poison_config(on_nan: OnNan) -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 4,
        optimizer: finetune_core::OptimizerKind::Sgd,
        lr: 0.1,
        schedule: finetune_core::ScheduleKind::Constant,
        save_steps: Some(1),
        logging_steps: 1,
        progress: false,
        on_nan,
        ..TrainConfig::default()
    }
}

fn poison_data() -> PoisonData {
    PoisonData {
        poisoned: vec![(5, Poison::Grad), (22, Poison::Loss)],
        built: Mutex::new(Vec::new()),
    }
}

/// The run's `metrics.jsonl` records and the steps they mark skipped, in order.
fn metrics_and_skipped_steps(dir: &Path) -> (Vec<serde_json::Value>, Vec<u64>) {
    let log = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let skipped = records
        .iter()
        .filter(|r| r["skipped"] == true)
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    (records, skipped)
}

#[test]
fn on_nan_stop_stops_at_the_first_bad_step() {
    let dir = tmpdir("robust-on-nan-stop");
    let model = Poisonable::new();
    let data = poison_data();
    let err = Learner::new(&model, poison_config(OnNan::Stop), &dir)
        .unwrap()
        .fit(&data, None, None)
        .unwrap_err()
        .to_string();
    let built = data.built.lock().unwrap().clone();
    let first = built.iter().position(|p| p.is_some()).unwrap() as u64 + 1;
    assert!(err.contains(&format!("at step {first}")), "{err}");
    assert!(
        err.contains("non-finite gradient") || err.contains("NaN"),
        "{err}"
    );
    let steps = checkpoint_steps(&dir);
    assert_eq!(steps.last().copied(), Some(first - 1).filter(|s| *s > 0));
    if first > 1 {
        let good = dir.join(format!("checkpoint-{}", first - 1));
        assert!(err.contains(&good.display().to_string()), "{err}");
    }
    assert_nothing_half_written(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn on_nan_skip_drops_exactly_the_bad_steps_and_logs_them() {
    let dir = tmpdir("robust-on-nan-skip");
    let model = Poisonable::new();
    let data = poison_data();
    let (_, summary) = Learner::new(&model, poison_config(OnNan::Skip), &dir)
        .unwrap()
        .fit(&data, None, None)
        .unwrap();
    assert_eq!(summary.global_step, 16);
    let built = data.built.lock().unwrap().clone();
    let bad: Vec<(u64, Poison)> = built
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i as u64 + 1, p)))
        .collect();
    // Both poisons occur, once per epoch each.
    assert_eq!(bad.len(), 4, "{built:?}");
    assert!(bad.iter().any(|b| b.1 == Poison::Grad) && bad.iter().any(|b| b.1 == Poison::Loss));

    let (records, skipped) = metrics_and_skipped_steps(&dir);
    assert_eq!(skipped, bad.iter().map(|b| b.0).collect::<Vec<_>>());
    for r in records.iter().filter(|r| r["skipped"] == true) {
        let why = r["reason"].as_str().unwrap();
        assert!(
            why.contains("non-finite gradient") || why.contains("NaN"),
            "{r}"
        );
    }
    // Every logged loss is finite.
    for r in &records {
        if let Some(l) = r.get("loss") {
            assert!(l.as_f64().is_some_and(f64::is_finite), "{r}");
        }
    }
    // A skipped step leaves the weights as they were; the others move them.
    let weights =
        |step: u64| load_tensors(&dir.join(format!("checkpoint-{step}/model.safetensors")));
    for step in 2..=16u64 {
        let (before, after) = (weights(step - 1), weights(step));
        let same = before.iter().all(|(n, t)| same_bits(t, &after[n]));
        let was_skipped = skipped.contains(&step);
        assert_eq!(same, was_skipped, "step {step}");
    }
    let final_weights = load_tensors(&dir.join("model.safetensors"));
    for t in final_weights.values() {
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|x| x.is_finite()));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn on_nan_skip_with_accumulation_skips_each_step_holding_a_bad_micro_batch() {
    // The micro-batches' losses are read together at the step's end: a non-finite loss in
    // either micro-batch (the first or the second) still skips exactly its step.
    let dir = tmpdir("robust-on-nan-accum");
    let model = Poisonable::new();
    let data = poison_data();
    let config = TrainConfig {
        grad_accum: 2,
        ..poison_config(OnNan::Skip)
    };
    let (_, summary) = Learner::new(&model, config, &dir)
        .unwrap()
        .fit(&data, None, None)
        .unwrap();
    assert_eq!(summary.global_step, 8);
    let built = data.built.lock().unwrap().clone();
    assert_eq!(built.len(), 16, "{built:?}");
    let bad: Vec<u64> = built
        .chunks(2)
        .enumerate()
        .filter(|(_, pair)| pair.iter().any(Option::is_some))
        .map(|(i, _)| i as u64 + 1)
        .collect();
    assert_eq!(bad.len(), 4, "{built:?}");
    let (records, skipped) = metrics_and_skipped_steps(&dir);
    assert_eq!(skipped, bad);
    for r in &records {
        if let Some(l) = r.get("loss") {
            assert!(l.as_f64().is_some_and(f64::is_finite), "{r}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_interrupted_run_says_it_saved_a_checkpoint_and_exported_nothing() {
    let f = Fixture::new("interrupt");
    let out = f.dir.join("x");
    let go_on = f.dir.join("go-on");
    let pause = ".checkpoint-5.tmp-&trainer_state.json";
    let (mut child, lines) = spawn_paused(&args(&f, &out, &[]), pause, Some(&go_on));
    // SIGINT while it writes its first checkpoint; it stops at the next step.
    let pid = i32::try_from(child.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    std::fs::write(&go_on, "").unwrap();
    let status = child.wait().unwrap();
    let stderr: String = lines.iter().map(|l| l + "\n").collect();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("interrupted: a checkpoint is saved in"),
        "{stderr}"
    );
    assert!(!stderr.contains("model exported"), "{stderr}");
    assert!(
        !out.join("model.safetensors").exists(),
        "an interrupted run exported"
    );
    assert!(
        checkpoint_steps(&out).len() >= 2,
        "{:?}",
        checkpoint_steps(&out)
    );
    finetune_ok(&args(&f, &out, &["--resume"]));
    assert!(out.join("model.safetensors").is_file());
}
