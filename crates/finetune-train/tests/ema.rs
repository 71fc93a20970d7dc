//! Model EMA (`--model-ema`) on the toy MLP: the saved average against the closed-form
//! recursion over the live weights of every step (plain and warmed-up decay), the live
//! training untouched by it, `eval_ema_*` records, `--export-ema`, exact resume, bad decays.

mod common;

use common::*;
use finetune_core::Result;
use finetune_train::checkpoint::{self, MODEL_FILE};
use finetune_train::ema::EMA_FILE;
use finetune_train::{Learner, Outcome, TrainConfig, TrainModel};
use std::path::Path;

/// SGD with momentum over 60 blobs, batch 8: 8 steps an epoch, a checkpoint every step.
fn ema_config(decay: f64, warmup: bool) -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 8,
        optimizer: "sgd".parse().unwrap(),
        momentum: Some(0.9),
        lr: 0.05,
        schedule: "constant".parse().unwrap(),
        save_steps: Some(1),
        model_ema: true,
        model_ema_decay: decay,
        model_ema_warmup: warmup,
        ..config()
    }
}

/// timm's `ModelEmaV3.get_decay(k)` for update `k` (from 1), written out independently.
fn timm_decay(k: u64, decay: f64, warmup: bool) -> f64 {
    if k <= 1 {
        0.0
    } else if warmup {
        let s = (k - 1) as f64;
        (1.0 - (1.0 + s).powf(-2.0 / 3.0)).clamp(0.0, decay)
    } else {
        decay
    }
}

/// Runs `cfg` on the blobs into `out`; returns the initial weights.
fn run(cfg: TrainConfig, out: &Path) -> Result<Weights> {
    let model = Mlp::new(11, 0.0);
    let initial = weights(model.store());
    let (train, eval) = (Blobs::new(60, 3), Blobs::new(30, 4));
    Learner::new(&model, cfg, out)?.fit(&train, Some(&eval), None)?;
    Ok(initial)
}

fn assert_matches_recursion(decay: f64, warmup: bool) -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let initial = run(ema_config(decay, warmup), dir.path())?;
    let steps = checkpoint::list(dir.path()).len() as u64;
    assert_eq!(steps, 16);
    // e_0 = initial weights; e_k = d_k·e_{k−1} + (1 − d_k)·w_k, in f64.
    let mut expected: std::collections::BTreeMap<String, Vec<f64>> = initial
        .iter()
        .map(|(n, w)| (n.clone(), w.iter().map(|&x| x as f64).collect()))
        .collect();
    for k in 1..=steps {
        let live = checkpoint_weights(dir.path(), k);
        let d = timm_decay(k, decay, warmup);
        for (name, e) in expected.iter_mut() {
            for (ei, &wi) in e.iter_mut().zip(&live[name]) {
                *ei = d * *ei + (1.0 - d) * wi as f64;
            }
        }
        let saved = file_weights(&checkpoint::dir_for(dir.path(), k).join(EMA_FILE));
        for (name, e) in &expected {
            let got = &saved[name];
            let diff = e
                .iter()
                .zip(got)
                .map(|(a, &b)| (a - b as f64).abs())
                .fold(0.0, f64::max);
            assert!(diff < 1e-5, "step {k}, `{name}`: EMA off by {diff}");
        }
    }
    // The average lags the live weights: the comparison above has teeth.
    let live = checkpoint_weights(dir.path(), steps);
    let ema = file_weights(&checkpoint::dir_for(dir.path(), steps).join(EMA_FILE));
    let apart = live
        .iter()
        .map(|(n, w)| max_abs_diff(w, &ema[n]))
        .fold(0.0, f32::max);
    assert!(apart > 1e-3, "EMA equals the live weights ({apart})");
    Ok(())
}

#[test]
fn ema_follows_timms_recursion() -> Result<()> {
    assert_matches_recursion(0.8, false)
}

#[test]
fn ema_with_warmup_follows_timms_warmed_up_decay() -> Result<()> {
    // 0.99 is above every warmed-up decay of 16 steps, so the warm-up alone decides.
    assert!(timm_decay(16, 0.99, true) < 0.99);
    assert_matches_recursion(0.99, true)
}

#[test]
fn ema_leaves_training_alone_and_is_evaluated_and_exported() -> Result<()> {
    let (with, without, export) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    run(ema_config(0.8, false), with.path())?;
    let plain = TrainConfig {
        model_ema: false,
        ..ema_config(0.8, false)
    };
    run(plain, without.path())?;
    assert_bits_eq(
        &file_weights(&with.path().join(MODEL_FILE)),
        &file_weights(&without.path().join(MODEL_FILE)),
        "live weights with and without EMA",
    );
    let evals: Vec<_> = metrics_lines(with.path())
        .into_iter()
        .filter(|r| r.get("eval_loss").is_some())
        .collect();
    assert_eq!(evals.len(), 2, "one evaluation an epoch");
    for r in &evals {
        for key in ["eval_ema_loss", "eval_ema_accuracy", "eval_ema_f1"] {
            assert!(r[key].is_number(), "{key} missing in {r}");
        }
        assert_ne!(r["eval_ema_loss"], r["eval_loss"]);
    }
    let exported = TrainConfig {
        export_ema: true,
        ..ema_config(0.8, false)
    };
    run(exported, export.path())?;
    // The summary's final evaluation is the exported average's: the last `eval_ema_*`.
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(export.path().join("train_summary.json")).unwrap(),
    )
    .unwrap();
    let last_ema = metrics_lines(export.path())
        .into_iter()
        .rfind(|r| r.get("eval_ema_loss").is_some())
        .unwrap();
    assert_eq!(summary["final_eval"]["loss"], last_ema["eval_ema_loss"]);
    assert_ne!(last_ema["eval_ema_loss"], last_ema["eval_loss"]);
    let last = checkpoint::dir_for(export.path(), 16);
    assert_bits_eq(
        &file_weights(&export.path().join(MODEL_FILE)),
        &file_weights(&last.join(EMA_FILE)),
        "--export-ema exports the average",
    );
    Ok(())
}

#[test]
fn resume_with_ema_is_exact() -> Result<()> {
    let (train, eval) = (Blobs::new(60, 20), Blobs::new(30, 21));
    let cfg = || TrainConfig {
        save_steps: Some(5),
        ..resume_ema_config()
    };
    let a = tempfile::tempdir().unwrap();
    let model_a = Mlp::new(7, 0.3);
    Learner::new(&model_a, cfg(), a.path())?.fit(&train, Some(&eval), None)?;

    // B: interrupted after step 7, its checkpoint 7 lost, resumed from 5 by another model.
    let b = tempfile::tempdir().unwrap();
    let model_b = Mlp::new(7, 0.3);
    let learner = Learner::new(&model_b, cfg(), b.path())?;
    model_b.interrupt_at(7, learner.interrupt_flag());
    let (outcome, summary) = learner.fit(&train, Some(&eval), None)?;
    assert_eq!((outcome, summary.global_step), (Outcome::Interrupted, 7));
    std::fs::remove_dir_all(checkpoint::dir_for(b.path(), 7)).unwrap();
    drop(learner);
    let model_b2 = Mlp::new(99, 0.3);
    let latest = checkpoint::dir_for(b.path(), 5);
    Learner::new(&model_b2, cfg(), b.path())?.fit(&train, Some(&eval), Some(&latest))?;

    assert_bits_eq(
        &weights(model_a.store()),
        &weights(model_b2.store()),
        "resumed weights",
    );
    let ema = |p: &Path| file_weights(&checkpoint::dir_for(p, 16).join(EMA_FILE));
    assert_bits_eq(&ema(a.path()), &ema(b.path()), "resumed EMA");
    let lines = |p: &Path| -> Vec<_> { metrics_lines(p).into_iter().map(without_timing).collect() };
    assert_eq!(
        lines(a.path()),
        lines(b.path()),
        "metrics.jsonl, eval_ema_* included"
    );
    Ok(())
}

/// [`ema_config`] with a warmed-up decay, whose average differs visibly from the weights.
fn resume_ema_config() -> TrainConfig {
    ema_config(0.7, true)
}

#[test]
fn a_decay_outside_0_1_is_one_clear_error() {
    for bad in [-0.1, 1.5, f64::NAN] {
        let cfg = TrainConfig {
            model_ema_decay: bad,
            ..ema_config(0.5, false)
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("--model-ema-decay must be in [0, 1]"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
    let cfg = TrainConfig {
        model_ema: false,
        export_ema: true,
        ..config()
    };
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("--export-ema needs --model-ema"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        model_ema_decay: 2.0,
        ..ema_config(0.5, false)
    };
    assert!(Learner::new(&Mlp::new(1, 0.0), cfg, dir.path()).is_err());
}

#[test]
fn load_best_at_end_brings_back_the_best_checkpoints_average() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let model = Mlp::new(11, 0.0);
    let (train, eval) = (Blobs::new(60, 3), Blobs::new(30, 4));
    // Evaluated on data whose labels are all moved: the weights of an early step score best.
    let cfg = TrainConfig {
        export_ema: true,
        load_best_at_end: true,
        eval_strategy: Some("steps".parse().unwrap()),
        eval_steps: Some(2),
        ..ema_config(0.5, false)
    };
    let (_, summary) =
        Learner::new(&model, cfg, dir.path())?.fit(&train, Some(&eval.relabelled()), None)?;
    let best = summary.best_step.expect("a best step");
    assert!(best < 16, "the best step is an early one, got {best}");
    assert_bits_eq(
        &file_weights(&dir.path().join(MODEL_FILE)),
        &file_weights(&checkpoint::dir_for(dir.path(), best).join(EMA_FILE)),
        "the export is the best checkpoint's average",
    );
    Ok(())
}
