//! The learner end to end on a toy MLP (tests/common): learning, gradient accumulation, exact
//! resume, checkpoint rotation, early stopping with best-model restore, gradual unfreezing,
//! non-finite losses and gradient clipping.

mod common;

use common::*;
use finetune_core::Result;
use finetune_train::checkpoint::{self, MODEL_FILE, SCHEDULER_FILE, STATE_FILE};
use finetune_train::order::StepOrder;
use finetune_train::{Learner, Outcome, TrainConfig, TrainModel};
use std::path::Path;

fn trainer_state(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(STATE_FILE)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn log_history(output: &Path, step: u64) -> Vec<serde_json::Value> {
    let state = trainer_state(&checkpoint::dir_for(output, step));
    let history = state["log_history"].as_array().unwrap().clone();
    history.into_iter().map(without_timing).collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Every file a checkpoint must hold.
const CHECKPOINT_FILES: [&str; 5] = [
    MODEL_FILE,
    "optimizer.json",
    "optimizer.safetensors",
    SCHEDULER_FILE,
    STATE_FILE,
];

fn assert_complete_checkpoint(dir: &Path, step: u64) {
    for f in CHECKPOINT_FILES {
        assert!(dir.join(f).is_file(), "{} lacks {f}", dir.display());
    }
    assert_eq!(trainer_state(dir)["global_step"], step, "{}", dir.display());
    // Loadable into a fresh model.
    let fresh = Mlp::new(1234, 0.0);
    checkpoint::load(dir, fresh.store()).unwrap();
    finetune_core::OptimizerState::load(dir).unwrap();
}

fn assert_no_temp_entries(output: &Path) {
    let stray: Vec<String> = entries(output)
        .into_iter()
        .filter(|n| n.starts_with('.') || n.contains("tmp"))
        .collect();
    assert!(stray.is_empty(), "temporary entries left: {stray:?}");
}

fn checkpoint_steps(output: &Path) -> Vec<u64> {
    checkpoint::list(output)
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

#[test]
fn learns_separable_data_and_writes_logs_summary_and_plot() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let model = Mlp::new(1, 0.1);
    let (train, eval) = (Blobs::new(96, 10), Blobs::new(48, 11));
    let cfg = TrainConfig {
        epochs: 4,
        batch_size: 16,
        lr: 5e-2,
        eval_steps: Some(4),
        metric: "accuracy".parse().unwrap(),
        ..config()
    };
    let learner = Learner::new(&model, cfg.clone(), out)?;
    let before = learner.evaluate(&eval)?;
    let (outcome, summary) = learner.fit(&train, Some(&eval), None)?;
    assert_eq!(outcome, Outcome::Completed);
    assert_eq!(summary.global_step, 24, "6 steps per epoch x 4 epochs");
    assert_eq!(summary.epochs_completed, 4.0);

    let records = metrics_lines(out);
    let train_losses: Vec<f64> = records
        .iter()
        .filter(|r| r.get("eval_loss").is_none())
        .map(|r| r["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(train_losses.len(), 24, "a train record per step");
    let head = train_losses[..3].iter().sum::<f64>() / 3.0;
    let tail = train_losses[21..].iter().sum::<f64>() / 3.0;
    assert!(tail < 0.3 * head, "train loss {head} -> {tail}");

    let evals: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r.get("eval_loss").is_some())
        .collect();
    let eval_steps: Vec<u64> = evals.iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(
        eval_steps,
        [4, 8, 12, 16, 20, 24],
        "every 4 global steps, not at the ends of the 6-step epochs"
    );
    for r in &evals {
        let confusion: Vec<Vec<u64>> = serde_json::from_value(r["eval_confusion"].clone()).unwrap();
        assert_eq!(confusion.len(), CLASSES);
        assert_eq!(confusion.iter().flatten().sum::<u64>(), 48);
        assert_eq!(r["eval_samples"], 48);
        for k in ["eval_accuracy", "eval_precision", "eval_recall", "eval_f1"] {
            assert!(r[k].as_f64().is_some(), "{k} missing in {r}");
        }
        assert_eq!(r["eval_per_class_f1"].as_array().unwrap().len(), CLASSES);
    }

    let final_eval = summary.final_eval.as_ref().unwrap();
    assert_eq!(
        &learner.evaluate(&eval)?,
        final_eval,
        "evaluation runs without dropout: the same weights give the same metrics"
    );
    let accuracy = final_eval.classification.as_ref().unwrap().accuracy;
    assert!(accuracy >= 0.95, "final eval accuracy {accuracy}");
    assert!(
        final_eval.loss < 0.5 * before.loss,
        "{} -> {}",
        before.loss,
        final_eval.loss
    );
    assert_eq!(
        summary.best_metric,
        Some(accuracy.max(summary.best_metric.unwrap()))
    );

    // train_summary.json: the fields the issue lists.
    let text = std::fs::read_to_string(out.join("train_summary.json")).unwrap();
    let s: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(s["global_step"], 24);
    assert_eq!(s["final_eval"]["accuracy"], accuracy);
    // The mean over the run's steps (one record per step here), not the last step's loss.
    let mean = train_losses.iter().sum::<f64>() / train_losses.len() as f64;
    let train_loss = s["train_loss"].as_f64().unwrap();
    assert!((train_loss - mean).abs() < 1e-9, "{train_loss} vs {mean}");
    assert!(train_loss < head);
    assert!(s["runtime_s"].as_f64().unwrap() > 0.0);
    assert!(s["train_samples_per_s"].as_f64().unwrap() > 0.0);
    assert!(s["peak_memory_bytes"].as_u64().unwrap() > 1 << 20);
    assert_eq!(s["trainable_params"], Mlp::param_count());
    assert_eq!(s["total_params"], Mlp::param_count());
    assert_eq!(s["stopped_early"], false);
    assert_eq!(s["interrupted"], false);
    assert_eq!(s["best_step"], summary.best_step.unwrap());

    // The settings (in every checkpoint's state), the export and the final checkpoint.
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(checkpoint::dir_for(out, 24).join("trainer_state.json")).unwrap(),
    )
    .unwrap();
    let saved: TrainConfig = serde_json::from_value(state["config"].clone()).unwrap();
    assert_eq!(saved, cfg);
    assert_bits_eq(
        &file_weights(&out.join(MODEL_FILE)),
        &weights(model.store()),
        "export",
    );
    assert_complete_checkpoint(&checkpoint::dir_for(out, 24), 24);

    // loss.png: a PNG of the plot's size.
    let png = std::fs::read(out.join("loss.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    assert_eq!(
        (be(&png[16..20]), be(&png[20..24])),
        finetune_train::plot::SIZE
    );
    assert!(
        png.len() > 2000,
        "an almost empty image: {} bytes",
        png.len()
    );
    drop(learner); // releases the output folder's lock (and removes its file)
    assert_no_temp_entries(out);
    Ok(())
}

/// Final weights after two epochs of plain SGD on 60 samples (the last step of each epoch is a
/// short one: 12 samples).
fn sgd_weights(batch_size: usize, grad_accum: usize) -> Weights {
    let dir = tempfile::tempdir().unwrap();
    let model = Mlp::new(2, 0.0);
    let cfg = TrainConfig {
        epochs: 2,
        batch_size,
        grad_accum,
        optimizer: "sgd".parse().unwrap(),
        lr: 0.2,
        schedule: "constant".parse().unwrap(),
        max_grad_norm: None,
        ..config()
    };
    let learner = Learner::new(&model, cfg, dir.path()).unwrap();
    let (_, summary) = learner.fit(&Blobs::new(60, 3), None, None).unwrap();
    assert_eq!(
        summary.global_step,
        2 * (60usize.div_ceil(batch_size * grad_accum)) as u64
    );
    weights(model.store())
}

#[test]
fn gradient_accumulation_matches_the_large_batch() {
    let accumulated = sgd_weights(8, 2);
    let large = sgd_weights(16, 1);
    let small = sgd_weights(8, 1);
    let initial = weights(Mlp::new(2, 0.0).store());
    for (name, w) in &large {
        let diff = max_abs_diff(w, &accumulated[name]);
        assert!(diff <= 1e-5, "`{name}`: 8 x 2 vs 16 x 1 differ by {diff}");
        // The comparison has teeth: training moved the weights, and differently for 8 x 1.
        assert!(
            max_abs_diff(w, &initial[name]) > 1e-3,
            "`{name}` did not train"
        );
    }
    let apart = large
        .iter()
        .map(|(n, w)| max_abs_diff(w, &small[n]))
        .fold(0.0, f32::max);
    assert!(
        apart > 1e-3,
        "batch 8 x 1 should differ from 16 x 1, by {apart}"
    );
}

/// AdamW with warmup + linear decay, dropout, accumulation, per-epoch evaluation, a train
/// record every 3 steps and a checkpoint every 5: 12 steps over 3 epochs.
fn resume_config() -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 8,
        grad_accum: 2,
        optimizer: "adamw".parse().unwrap(),
        lr: 3e-2,
        weight_decay: 0.01,
        schedule: "linear".parse().unwrap(),
        warmup_ratio: Some(0.25),
        logging_steps: 3,
        save_steps: Some(5),
        ..config()
    }
}

#[test]
fn resume_is_exact_with_dropout_adamw_and_warmup() -> Result<()> {
    let (train, eval) = (Blobs::new(60, 20), Blobs::new(30, 21));
    let dropout = 0.3;

    // A: uninterrupted.
    let a = tempfile::tempdir().unwrap();
    let model_a = Mlp::new(7, dropout);
    let (outcome, summary) =
        Learner::new(&model_a, resume_config(), a.path())?.fit(&train, Some(&eval), None)?;
    assert_eq!((outcome, summary.global_step), (Outcome::Completed, 12));
    assert_eq!(checkpoint_steps(a.path()), [5, 10, 12]);

    // B: stopped by the interrupt flag after step 7 (the 14th micro-batch), then its newest
    // checkpoint deleted, as if the process had been killed after logging step 7 but before
    // saving it; resumed from `latest` (step 5) by a differently initialised model.
    let b = tempfile::tempdir().unwrap();
    let model_b = Mlp::new(7, dropout);
    let learner = Learner::new(&model_b, resume_config(), b.path())?;
    model_b.interrupt_at(14, learner.interrupt_flag());
    let (outcome, summary) = learner.fit(&train, Some(&eval), None)?;
    assert_eq!((outcome, summary.global_step), (Outcome::Interrupted, 7));
    assert!(summary.interrupted);
    assert_eq!(checkpoint_steps(b.path()), [5, 7]);
    std::fs::remove_dir_all(checkpoint::dir_for(b.path(), 7)).unwrap();
    drop(learner); // the folder is free for the resumed run

    let model_b2 = Mlp::new(99, dropout);
    let latest = checkpoint::resolve(b.path(), "latest")?;
    assert_eq!(latest, checkpoint::dir_for(b.path(), 5));
    let (outcome, summary) = Learner::new(&model_b2, resume_config(), b.path())?.fit(
        &train,
        Some(&eval),
        Some(&latest),
    )?;
    assert_eq!((outcome, summary.global_step), (Outcome::Completed, 12));
    assert_eq!(
        model_b2
            .train_forwards
            .load(std::sync::atomic::Ordering::SeqCst),
        14,
        "the resumed run trains steps 6..=12 only"
    );

    assert_bits_eq(
        &weights(model_a.store()),
        &weights(model_b2.store()),
        "resumed weights",
    );
    assert_eq!(
        log_history(a.path(), 12),
        log_history(b.path(), 12),
        "trainer_state log history"
    );
    let lines = |p: &Path| -> Vec<_> { metrics_lines(p).into_iter().map(without_timing).collect() };
    assert_eq!(lines(a.path()), lines(b.path()), "metrics.jsonl");
    assert_eq!(lines(a.path()), log_history(a.path(), 12));
    assert_bits_eq(
        &file_weights(&a.path().join(MODEL_FILE)),
        &file_weights(&b.path().join(MODEL_FILE)),
        "exports",
    );

    // C: a mid-run checkpoint of A copied into a fresh folder and resumed there.
    let c = tempfile::tempdir().unwrap();
    let ckpt = c.path().join("checkpoint-10");
    copy_dir(&checkpoint::dir_for(a.path(), 10), &ckpt);
    let model_c = Mlp::new(5, dropout);
    Learner::new(&model_c, resume_config(), c.path())?.fit(&train, Some(&eval), Some(&ckpt))?;
    assert_bits_eq(
        &weights(model_a.store()),
        &weights(model_c.store()),
        "resumed from 10",
    );
    assert_eq!(log_history(a.path(), 12), log_history(c.path(), 12));

    // A checkpoint of a run with other steps per epoch is refused.
    let other = TrainConfig {
        batch_size: 4,
        ..resume_config()
    };
    let err = Learner::new(&Mlp::new(5, dropout), other, c.path())?
        .fit(&train, Some(&eval), Some(&ckpt))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("belongs to a run of 12 steps (4 per epoch), at step 10"),
        "{err}"
    );
    // A longer run goes on from step 10 to 16, its schedule recomputed for the new end.
    let longer = TrainConfig {
        epochs: 4,
        ..resume_config()
    };
    let d = tempfile::tempdir().unwrap();
    let (_, summary) = Learner::new(&Mlp::new(5, dropout), longer, d.path())?.fit(
        &train,
        Some(&eval),
        Some(&ckpt),
    )?;
    assert_eq!(summary.global_step, 16);
    let last = checkpoint::dir_for(d.path(), 16);
    let sched: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(last.join(SCHEDULER_FILE)).unwrap()).unwrap();
    assert_eq!(sched["config"]["total_steps"], 16);
    assert_eq!(sched["config"]["warmup_steps"], 4, "25 % of the new length");
    assert_eq!(trainer_state(&last)["total_steps"], 16);
    Ok(())
}

#[test]
fn rotation_keeps_the_last_complete_checkpoints() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let model = Mlp::new(3, 0.1);
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 8,
        optimizer: "sgd".parse().unwrap(),
        momentum: Some(0.9),
        lr: 0.05,
        save_steps: Some(1),
        save_total_limit: Some(2),
        ..config()
    };
    // Leftovers of an earlier run in the folder: its log does not carry over.
    std::fs::write(out.join("metrics.jsonl"), "not json\n").unwrap();
    Learner::new(&model, cfg, out)?.fit(&Blobs::new(48, 4), None, None)?;
    assert_eq!(
        metrics_lines(out).len(),
        6,
        "a record per step, nothing else"
    );
    assert_eq!(checkpoint_steps(out), [5, 6]);
    for step in [5, 6] {
        let dir = checkpoint::dir_for(out, step);
        assert_complete_checkpoint(&dir, step);
        let opt = finetune_core::OptimizerState::load(&dir)?;
        assert_eq!(opt.optimizer, "sgd");
        assert!(!opt.slots.is_empty(), "momentum buffers are saved");
    }
    assert_bits_eq(
        &checkpoint_weights(out, 6),
        &weights(model.store()),
        "last checkpoint",
    );
    // No other checkpoint folder, not even an incomplete one (`list` skips those).
    let folders: Vec<String> = entries(out)
        .into_iter()
        .filter(|n| n.contains("checkpoint"))
        .collect();
    assert_eq!(folders, ["checkpoint-5", "checkpoint-6"]);
    assert_no_temp_entries(out);
    Ok(())
}

#[test]
fn rotation_keeps_the_best_and_the_newest_checkpoint() -> Result<()> {
    // The eval set's labels are shifted, so learning the train set makes every evaluation
    // worse than the first: the best checkpoint is the oldest.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let model = Mlp::new(4, 0.0);
    let train = Blobs::new(32, 5);
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 8,
        optimizer: "sgd".parse().unwrap(),
        lr: 0.1,
        eval_steps: Some(1),
        save_steps: Some(1),
        save_total_limit: Some(1),
        load_best_at_end: true,
        ..config()
    };
    let (_, summary) =
        Learner::new(&model, cfg, out)?.fit(&train, Some(&train.relabelled()), None)?;
    assert_eq!(summary.best_step, Some(1));
    assert_eq!(
        checkpoint_steps(out),
        [1, 4],
        "the best (1) and the newest (4), as transformers keeps them"
    );
    assert_eq!(
        checkpoint::resolve(out, "latest")?,
        checkpoint::dir_for(out, 4)
    );
    Ok(())
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let model = Mlp::new(6, 0.0);
    let train = Blobs::new(48, 7);
    let eval = train.relabelled();
    let patience = 2;
    let cfg = TrainConfig {
        epochs: 5,
        batch_size: 8,
        optimizer: "sgd".parse().unwrap(),
        lr: 0.05,
        eval_steps: Some(1),
        early_stopping_patience: Some(patience),
        metric: "loss".parse().unwrap(),
        load_best_at_end: true,
        ..config()
    };
    let (outcome, summary) = Learner::new(&model, cfg, out)?.fit(&train, Some(&eval), None)?;
    assert_eq!(outcome, Outcome::StoppedEarly);
    assert!(summary.stopped_early);
    let best_step = summary.best_step.unwrap();
    assert!(
        summary.global_step < 30,
        "stopped at {}",
        summary.global_step
    );
    assert_eq!(summary.global_step, best_step + patience as u64);

    // The evaluations after the best one were no better.
    let evals: Vec<(u64, f64)> = metrics_lines(out)
        .iter()
        .filter_map(|r| Some((r["step"].as_u64()?, r.get("eval_loss")?.as_f64()?)))
        .collect();
    assert_eq!(evals.len() as u64, summary.global_step);
    let best = summary.best_metric.unwrap();
    assert_eq!(evals[best_step as usize - 1].1, best);
    assert!(evals.iter().all(|&(_, l)| l >= best));

    // The model holds the best checkpoint's weights, exported as such, and evaluates to the
    // best metric.
    let best_weights = checkpoint_weights(out, best_step);
    assert_bits_eq(&weights(model.store()), &best_weights, "restored best");
    assert_bits_eq(
        &file_weights(&out.join(MODEL_FILE)),
        &best_weights,
        "export",
    );
    assert_eq!(summary.final_eval.as_ref().unwrap().loss, best);
    // ...which is not what the last step left.
    let last = checkpoint_weights(out, summary.global_step);
    let moved = last
        .iter()
        .map(|(n, w)| max_abs_diff(w, &best_weights[n]))
        .fold(0.0, f32::max);
    assert!(moved > 1e-4, "{moved}");
    Ok(())
}

#[test]
fn gradual_unfreezing_trains_a_layer_from_its_epoch_on() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let model = Mlp::new(8, 0.1);
    let initial = weights(model.store());
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 8,
        optimizer: "adamw".parse().unwrap(),
        weight_decay: 0.1,
        lr: 1e-2,
        freeze: vec!["encoder.layer.1.*".into()],
        unfreeze_schedule: Some("1:encoder.layer.1.*".into()),
        save_steps: Some(4),
        ..config()
    };
    let (_, summary) = Learner::new(&model, cfg, out)?.fit(&Blobs::new(32, 9), None, None)?;
    assert_eq!(summary.global_step, 8);
    let frozen_params = HIDDEN * HIDDEN + HIDDEN;
    assert_eq!(summary.trainable_params, Mlp::param_count() - frozen_params);

    let after_epoch_0 = checkpoint_weights(out, 4);
    let end = weights(model.store());
    for name in ["encoder.layer.1.weight", "encoder.layer.1.bias"] {
        assert!(
            after_epoch_0[name]
                .iter()
                .zip(&initial[name])
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "`{name}` changed while frozen (epoch 0)"
        );
        assert!(
            max_abs_diff(&end[name], &after_epoch_0[name]) > 1e-4,
            "`{name}` never trained"
        );
    }
    for name in ["encoder.layer.0.weight", "classifier.weight"] {
        assert!(
            max_abs_diff(&after_epoch_0[name], &initial[name]) > 1e-4,
            "`{name}`"
        );
    }

    // Frozen parameters are handed to the forward detached, not as graph variables.
    let vars = model.graph_vars.lock().unwrap();
    assert_eq!(vars.len(), 8);
    for (i, v) in vars.iter().enumerate() {
        let layer1 = v.iter().any(|n| n.starts_with("encoder.layer.1."));
        assert_eq!(layer1, i >= 4, "forward {i}: variables {v:?}");
        assert!(v.contains(&"encoder.layer.0.weight".to_string()));
        assert!(v.contains(&"classifier.bias".to_string()));
    }
    Ok(())
}

/// Final weights after an epoch of SGD under `cfg` (on top of the quiet defaults).
fn sgd_run(cfg: TrainConfig) -> Weights {
    let dir = tempfile::tempdir().unwrap();
    let model = Mlp::new(15, 0.0);
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 8,
        optimizer: "sgd".parse().unwrap(),
        ..cfg
    };
    Learner::new(&model, cfg, dir.path())
        .unwrap()
        .fit(&Blobs::new(32, 16), None, None)
        .unwrap();
    weights(model.store())
}

#[test]
fn freeze_patterns_and_the_head_lr_pick_what_moves() -> Result<()> {
    let initial = weights(Mlp::new(15, 0.0).store());
    let end = sgd_run(TrainConfig {
        lr: 0.1,
        freeze: vec!["encoder.layer.{0..1}.*".into()],
        unfreeze: vec!["encoder.layer.1.bias".into()],
        ..config()
    });
    for (name, w) in &end {
        let moved = max_abs_diff(w, &initial[name]) > 0.0;
        let trains = name == "encoder.layer.1.bias" || name.starts_with("classifier.");
        assert_eq!(moved, trains, "`{name}`");
    }

    // Training only the head: `head_lr` 0.2 over `lr` 0.1 is the same run as `lr` 0.2.
    let head_only = |lr: f64, head_lr: Option<f64>| {
        sgd_run(TrainConfig {
            lr,
            head_lr,
            freeze: vec!["encoder.*".into()],
            ..config()
        })
    };
    let with_head_lr = head_only(0.1, Some(0.2));
    assert_bits_eq(&with_head_lr, &head_only(0.2, None), "head lr");
    let plain = head_only(0.1, None);
    assert!(
        max_abs_diff(
            &with_head_lr["classifier.weight"],
            &plain["classifier.weight"]
        ) > 1e-4
    );

    // A freeze pattern that matches nothing is refused up front.
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        freeze: vec!["bert.encoder.*".into()],
        ..config()
    };
    let err = Learner::new(&Mlp::new(15, 0.0), cfg, dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("bert.encoder.*"), "{err}");
    Ok(())
}

#[test]
fn an_unfreeze_schedule_matching_nothing_fails_before_training() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let model = Mlp::new(8, 0.0);
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 8,
        freeze: vec!["encoder.*".into()],
        unfreeze_schedule: Some("1:encoder.layer.7.*".into()),
        ..config()
    };
    let err = Learner::new(&model, cfg, dir.path())
        .and_then(|l| l.fit(&Blobs::new(32, 9), None, None))
        .expect_err("a schedule pattern matching no parameter is an error")
        .to_string();
    assert!(err.contains("encoder.layer.7.*"), "{err}");
    assert_eq!(
        model
            .train_forwards
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the error came after training had started"
    );
    Ok(())
}

#[test]
fn a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint() -> Result<()> {
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 8,
        optimizer: "sgd".parse().unwrap(),
        lr: 0.05,
        save_steps: Some(2),
        ..config()
    };
    let data = Blobs::new(48, 12);
    let clean = tempfile::tempdir().unwrap();
    Learner::new(&Mlp::new(9, 0.0), cfg.clone(), clean.path())?.fit(&data, None, None)?;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let mut model = Mlp::new(9, 0.0);
    model.nan_at_forward = Some(6);
    let err = Learner::new(&model, cfg, out)?
        .fit(&data, None, None)
        .unwrap_err()
        .to_string();
    let good = checkpoint::dir_for(out, 4);
    assert!(err.contains("NaN") && err.contains("step 6"), "{err}");
    assert!(err.contains(&good.display().to_string()), "{err}");
    assert_eq!(checkpoint_steps(out), [2, 4]);
    assert_complete_checkpoint(&good, 4);
    assert_bits_eq(
        &checkpoint_weights(out, 4),
        &checkpoint_weights(clean.path(), 4),
        "the kept checkpoint",
    );
    assert!(!out.join("train_summary.json").exists());
    assert_no_temp_entries(out);
    Ok(())
}

#[test]
fn a_diverging_run_stops_and_names_a_checkpoint_with_finite_weights() -> Result<()> {
    // 1e30 makes the weights huge but finite, so the next losses overflow; 1e39 overflows f32
    // in the update itself, leaving infinite weights after a step with a finite loss.
    for lr in [1e30, 1e39] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let cfg = TrainConfig {
            epochs: 2,
            batch_size: 8,
            optimizer: "sgd".parse().unwrap(),
            lr,
            schedule: "constant".parse().unwrap(),
            max_grad_norm: None,
            save_steps: Some(1),
            ..config()
        };
        let model = Mlp::new(10, 0.0);
        let err = Learner::new(&model, cfg, out)?
            .fit(&Blobs::new(48, 13), None, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("non-finite") || err.contains("NaN") || err.contains("inf"),
            "lr {lr}: {err}"
        );
        for (step, dir) in checkpoint::list(out) {
            let w = checkpoint_weights(out, step);
            assert!(
                w.values().flatten().all(|x| x.is_finite()),
                "lr {lr}: {} holds non-finite weights; error: {err}",
                dir.display()
            );
        }
        match checkpoint::list(out).pop() {
            Some((_, last)) => assert!(err.contains(&last.display().to_string()), "{err}"),
            None => assert!(err.contains("No checkpoint"), "{err}"),
        }
        assert_no_temp_entries(out);
    }
    Ok(())
}

#[test]
fn clipping_scales_the_first_update_to_lr_times_max_norm() -> Result<()> {
    let (lr, max_norm) = (1.0, 1e-2);
    let data = Blobs::new(32, 14);
    let cfg = TrainConfig {
        max_steps: Some(1),
        batch_size: 16,
        optimizer: "sgd".parse().unwrap(),
        lr,
        schedule: "constant".parse().unwrap(),
        max_grad_norm: Some(max_norm),
        ..config()
    };
    // The gradient of the first step's batch, computed here on a twin of the model.
    let twin = Mlp::new(11, 0.0);
    let order = StepOrder {
        samples: 32,
        batch_size: 16,
        grad_accum: 1,
        drop_last: false,
        seed: cfg.seed,
    };
    let plan = order.plan(0);
    let batch = finetune_train::BatchSource::batch(&data, &plan.batches[0], 0, true)?;
    let logits = twin.forward_t(&batch.inputs, true)?;
    let loss = twin.loss(&logits, &batch.targets, 0.0)?;
    let grads = finetune_core::Grads::from_backward(twin.store(), &loss.backward()?);
    let norm = grads.global_norm(2.0)?;
    assert!(
        norm > 10.0 * max_norm,
        "clipping must engage: gradient norm {norm}"
    );

    let dir = tempfile::tempdir().unwrap();
    let model = Mlp::new(11, 0.0);
    let before = weights(model.store());
    Learner::new(&model, cfg, dir.path())?.fit(&data, None, None)?;
    let after = weights(model.store());

    // torch.nn.utils.clip_grad_norm_: g * max_norm / (norm + 1e-6), then SGD: -lr * g.
    let coef = max_norm / (norm + 1e-6);
    let mut update_sq = 0.0f64;
    for (name, w0) in &before {
        let g: Vec<f32> = grads.get(name).unwrap().flatten_all()?.to_vec1::<f32>()?;
        for ((a, b), g) in after[name].iter().zip(w0).zip(&g) {
            let delta = (*a as f64) - (*b as f64);
            let want = -lr * coef * *g as f64;
            assert!(
                (delta - want).abs() < 1e-6,
                "`{name}`: update {delta}, expected {want}"
            );
            update_sq += delta * delta;
        }
    }
    let update_norm = update_sq.sqrt();
    assert!(
        (update_norm - lr * max_norm).abs() < 1e-3 * lr * max_norm,
        "update norm {update_norm}, expected {}",
        lr * max_norm
    );
    Ok(())
}
