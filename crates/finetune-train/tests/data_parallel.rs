//! Data-parallel training with ranks as threads of this process
//! (`finetune_train::distributed::threads`): the same learner code an MPI job runs, checked
//! against one process training on the global batch, for exact resume, for the decisions the
//! ranks take together, and for the settings check.

mod common;

use common::*;
use finetune_core::Result;
use finetune_train::checkpoint;
use finetune_train::distributed::threads::{thread_world, ThreadRank};
use finetune_train::distributed::Collective;
use finetune_train::{Learner, OnNan, Outcome, TrainConfig, TrainModel, TrainSummary};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// `f(rank)` on a thread per rank of a world of `size`; the results in rank order.
fn on_ranks<T: Send>(size: usize, f: impl Fn(ThreadRank) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let handles: Vec<_> = thread_world(size)
            .into_iter()
            .map(|rank| s.spawn(|| f(rank)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// AdamW with clipping and a linear schedule, two epochs, no dropout.
fn adamw(batch_size: usize, grad_accum: usize) -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size,
        grad_accum,
        optimizer: "adamw".parse().unwrap(),
        lr: 3e-2,
        weight_decay: 0.01,
        max_grad_norm: Some(0.5),
        ..config()
    }
}

/// Each rank's output folder: rank 0 writes `root/out`, the others a folder of their own.
fn out_dir(root: &Path, rank: usize) -> PathBuf {
    match rank {
        0 => root.join("out"),
        r => root.join(format!("scratch-{r}")),
    }
}

/// Trains a fresh model (seeded per rank: rank 0's weights must reach the others) on `train`
/// in every rank; gives each rank's weights and summary.
fn train_ranks(
    size: usize,
    cfg: &TrainConfig,
    samples: usize,
    root: &Path,
) -> Vec<(Weights, TrainSummary)> {
    on_ranks(size, |rank| {
        let r = rank.rank();
        let model = Mlp::new(2 + r as u64, 0.0);
        let learner = Learner::new(&model, cfg.clone(), &out_dir(root, r))
            .unwrap()
            .with_collective(Rc::new(rank));
        let (_, summary) = learner.fit(&Blobs::new(samples, 3), None, None).unwrap();
        (weights(model.store()), summary)
    })
}

fn one_process(cfg: TrainConfig, samples: usize) -> Weights {
    let dir = tempfile::tempdir().unwrap();
    let model = Mlp::new(2, 0.0);
    Learner::new(&model, cfg, dir.path())
        .unwrap()
        .fit(&Blobs::new(samples, 3), None, None)
        .unwrap();
    weights(model.store())
}

fn assert_close(a: &Weights, b: &Weights, tol: f32, what: &str) {
    for (name, w) in a {
        let d = max_abs_diff(w, &b[name]);
        assert!(d <= tol, "{what}: `{name}` differs by {d}");
    }
}

#[test]
fn ranks_on_a_shard_each_match_one_process_on_the_global_batch() {
    // 2 ranks x 8 = 16 a micro-batch, accumulated twice; 3 ranks x 8 over 50 samples leaves
    // the last micro-batch 2 samples: ranks 0 and 1 take one each, rank 2 none.
    for (size, batch, accum, samples) in [(2, 8, 2, 60), (3, 8, 1, 50)] {
        let root = tempfile::tempdir().unwrap();
        let ranks = train_ranks(size, &adamw(batch, accum), samples, root.path());
        let alone = one_process(adamw(batch * size, accum), samples);
        let initial = weights(Mlp::new(2, 0.0).store());
        for (r, (w, summary)) in ranks.iter().enumerate() {
            assert_bits_eq(w, &ranks[0].0, &format!("rank {r} vs rank 0"));
            assert_close(w, &alone, 2e-6, &format!("{size} ranks vs one process"));
            let d = summary.distributed.as_ref().expect("a distributed summary");
            assert_eq!((d.world_size, d.global_batch_size), (size, batch * size));
        }
        let moved = initial
            .iter()
            .map(|(n, w)| max_abs_diff(w, &ranks[0].0[n]))
            .fold(0.0, f32::max);
        assert!(moved > 1e-2, "training moved the weights by {moved} only");
        // The per-device batch alone trains differently: the comparison has teeth.
        let small = one_process(adamw(batch, accum), samples);
        let apart = small
            .iter()
            .map(|(n, w)| max_abs_diff(w, &alone[n]))
            .fold(0.0, f32::max);
        assert!(apart > 1e-3, "batch {batch} vs {}: {apart}", batch * size);
    }
}

#[test]
fn rank_zero_alone_writes_checkpoints_and_the_export() {
    let root = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        save_steps: Some(4),
        ..adamw(8, 1)
    };
    train_ranks(2, &cfg, 60, root.path());
    let out = out_dir(root.path(), 0);
    assert!(out.join(checkpoint::MODEL_FILE).is_file());
    assert!(checkpoint::dir_for(&out, 4).is_dir());
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(checkpoint::dir_for(&out, 4).join("trainer_state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["world_size"], 2);
    assert_eq!(state["rank_rngs"].as_array().map(Vec::len), Some(2));
    let scratch = out_dir(root.path(), 1);
    assert!(!scratch.join(checkpoint::MODEL_FILE).exists());
    assert!(
        checkpoint::list(&scratch).is_empty(),
        "rank 1 saved checkpoints"
    );
}

/// Dropout on (a stream per rank), AdamW with warmup, a checkpoint every 5 steps.
fn dropout_config() -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 4,
        grad_accum: 2,
        optimizer: "adamw".parse().unwrap(),
        lr: 3e-2,
        schedule: "linear".parse().unwrap(),
        warmup_ratio: Some(0.25),
        save_steps: Some(5),
        ..config()
    }
}

/// Two ranks with dropout 0.3 from `resume` (or fresh); rank 1 sets the interrupt flag at its
/// `interrupt_at`-th training forward. Gives each rank's outcome, steps and weights.
fn dropout_ranks(
    root: &Path,
    resume: Option<&Path>,
    interrupt_at: Option<u64>,
) -> Vec<(Outcome, u64, Weights)> {
    let (train, eval) = (Blobs::new(60, 20), Blobs::new(30, 21));
    on_ranks(2, |rank| {
        let r = rank.rank();
        let model = Mlp::new(7 + r as u64, 0.3);
        let learner = Learner::new(&model, dropout_config(), &out_dir(root, r))
            .unwrap()
            .with_collective(Rc::new(rank));
        if let (Some(at), 1) = (interrupt_at, r) {
            model.interrupt_at(at, learner.interrupt_flag());
        }
        let (outcome, s) = learner.fit(&train, Some(&eval), resume).unwrap();
        (outcome, s.global_step, weights(model.store()))
    })
}

#[test]
fn a_distributed_resume_is_exact_and_needs_the_same_ranks() -> Result<()> {
    let a = tempfile::tempdir().unwrap();
    let full = dropout_ranks(a.path(), None, None);
    assert_eq!((full[0].0, full[0].1), (Outcome::Completed, 12));
    // Rank 1 alone is interrupted (its 14th forward: step 7); both ranks stop there.
    let b = tempfile::tempdir().unwrap();
    let cut = dropout_ranks(b.path(), None, Some(14));
    for (outcome, steps, _) in &cut {
        assert_eq!((*outcome, *steps), (Outcome::Interrupted, 7));
    }
    let ckpt = checkpoint::dir_for(&out_dir(b.path(), 0), 7);
    let resumed = dropout_ranks(b.path(), Some(&ckpt), None);
    for (r, (_, steps, w)) in resumed.iter().enumerate() {
        assert_eq!(*steps, 12);
        assert_bits_eq(w, &full[r].2, &format!("rank {r} resumed"));
    }
    assert!(moved(&full[0].2), "the run must have trained");
    // One process cannot resume a 2-rank checkpoint.
    let c = tempfile::tempdir().unwrap();
    let err = Learner::new(&Mlp::new(7, 0.3), dropout_config(), c.path())?
        .fit(&Blobs::new(60, 20), None, Some(&ckpt))
        .unwrap_err()
        .to_string();
    assert!(err.contains("written by a run of 2 rank(s)"), "{err}");
    Ok(())
}

/// Whether the weights moved away from their start (the resume comparison has teeth).
fn moved(trained: &Weights) -> bool {
    let initial = weights(Mlp::new(7, 0.3).store());
    initial
        .iter()
        .any(|(n, w)| max_abs_diff(w, &trained[n]) > 1e-3)
}

#[test]
fn early_stopping_on_rank_zero_stops_every_rank_at_the_same_step() {
    let cfg = TrainConfig {
        epochs: 6,
        eval_strategy: Some("steps".parse().unwrap()),
        eval_steps: Some(2),
        early_stopping_patience: Some(1),
        ..adamw(8, 1)
    };
    let root = tempfile::tempdir().unwrap();
    let (train, eval) = (Blobs::new(60, 3), Blobs::new(30, 3).relabelled());
    let out: Vec<(Outcome, u64)> = on_ranks(2, |rank| {
        let r = rank.rank();
        let model = Mlp::new(2, 0.0);
        let learner = Learner::new(&model, cfg.clone(), &out_dir(root.path(), r))
            .unwrap()
            .with_collective(Rc::new(rank));
        let (o, s) = learner.fit(&train, Some(&eval), None).unwrap();
        (o, s.global_step)
    });
    assert_eq!(out[0].0, Outcome::StoppedEarly);
    assert_eq!(out[0], out[1]);
    assert!(out[0].1 < 6 * 4, "stopped at {}", out[0].1);
}

#[test]
fn ranks_with_different_settings_refuse_to_train() {
    let root = tempfile::tempdir().unwrap();
    let errors: Vec<String> = on_ranks(2, |rank| {
        let r = rank.rank();
        let cfg = TrainConfig {
            lr: if r == 0 { 1e-2 } else { 2e-2 },
            ..adamw(8, 1)
        };
        let model = Mlp::new(2, 0.0);
        let learner = Learner::new(&model, cfg, &out_dir(root.path(), r))
            .unwrap()
            .with_collective(Rc::new(rank));
        let err = learner.fit(&Blobs::new(60, 3), None, None).unwrap_err();
        assert!(
            model
                .train_forwards
                .load(std::sync::atomic::Ordering::SeqCst)
                == 0
        );
        err.to_string()
    });
    for e in errors {
        assert!(e.contains("rank 1 (lr)"), "{e}");
    }
}

/// Two ranks where rank 1's third training forward gives NaN logits, under `on_nan`: each
/// rank's outcome (or error) and weights.
fn nan_on_rank_one(on_nan: OnNan) -> Vec<std::result::Result<(u64, Weights), String>> {
    let root = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        on_nan,
        ..adamw(8, 1)
    };
    on_ranks(2, |rank| {
        let r = rank.rank();
        let mut model = Mlp::new(2, 0.0);
        if r == 1 {
            model.nan_at_forward = Some(3);
        }
        let learner = Learner::new(&model, cfg.clone(), &out_dir(root.path(), r))
            .unwrap()
            .with_collective(Rc::new(rank));
        match learner.fit(&Blobs::new(60, 3), None, None) {
            Ok((_, s)) => Ok((s.global_step, weights(model.store()))),
            Err(e) => Err(e.to_string()),
        }
    })
}

#[test]
fn a_nan_loss_on_one_rank_is_every_ranks_decision() {
    // Skip: both ranks skip step 3 and stay equal.
    let skipped = nan_on_rank_one(OnNan::Skip);
    let (a, b) = (skipped[0].as_ref().unwrap(), skipped[1].as_ref().unwrap());
    assert_eq!((a.0, b.0), (8, 8));
    assert_bits_eq(&a.1, &b.1, "ranks after a skipped step");
    // Stop: both ranks stop at step 3, rank 0 naming the other rank.
    let stopped = nan_on_rank_one(OnNan::Stop);
    let (e0, e1) = (
        stopped[0].as_ref().unwrap_err(),
        stopped[1].as_ref().unwrap_err(),
    );
    assert!(e0.contains("non-finite on another rank at step 3"), "{e0}");
    assert!(
        e1.contains("the training loss became NaN at step 3"),
        "{e1}"
    );
}

#[test]
fn ranks_share_the_evaluation_and_get_one_processs_metrics() {
    let cfg = TrainConfig {
        eval_strategy: Some("steps".parse().unwrap()),
        eval_steps: Some(2),
        eval_batch_size: 4,
        ..adamw(8, 1)
    };
    let root = tempfile::tempdir().unwrap();
    // 30 samples in batches of 4: 8 batches, shared 3 + 3 + 2 by three ranks.
    let (train, eval) = (Blobs::new(60, 3), Blobs::new(30, 4));
    let out = on_ranks(3, |rank| {
        let r = rank.rank();
        let model = Mlp::new(2, 0.0);
        let learner = Learner::new(&model, cfg.clone(), &out_dir(root.path(), r))
            .unwrap()
            .with_collective(Rc::new(rank));
        let (_, summary) = learner.fit(&train, Some(&eval), None).unwrap();
        // One process's evaluation of the same weights, on each rank.
        let alone = learner.evaluate(&eval).unwrap();
        (summary.final_eval.unwrap(), alone)
    });
    for (shared, alone) in &out {
        assert_eq!(shared.samples, 30);
        assert!(
            (shared.loss - alone.loss).abs() < 1e-12,
            "{} vs {}",
            shared.loss,
            alone.loss
        );
        let acc = |m: &finetune_train::EvalMetrics| m.classification.as_ref().unwrap().accuracy;
        assert_eq!(acc(shared), acc(alone));
        assert_eq!(
            shared.loss.to_bits(),
            out[0].0.loss.to_bits(),
            "every rank the same"
        );
    }
}
