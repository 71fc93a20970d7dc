//! `train_summary.json`'s `train_loss`: the mean of the optimizer steps' losses over the steps
//! this process trained (transformers' total loss / steps) — the whole run for a fresh one, the
//! steps after the checkpoint for a resumed one.

mod common;

use common::*;
use finetune_core::Result;
use finetune_train::{checkpoint, Learner, TrainConfig};

/// 8 steps of 16 samples (4 an epoch), a train record per step, a checkpoint every 4.
fn run_config() -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 16,
        lr: 5e-2,
        save_steps: Some(4),
        ..config()
    }
}

/// The `loss` of each train record of `output/metrics.jsonl`, by step.
fn step_losses(output: &std::path::Path) -> Vec<(u64, f64)> {
    metrics_lines(output)
        .iter()
        .filter_map(|r| Some((r["step"].as_u64()?, r.get("loss")?.as_f64()?)))
        .collect()
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn train_loss_is_the_mean_over_the_steps_this_process_trained() -> Result<()> {
    let data = Blobs::new(64, 3);
    let full = tempfile::tempdir().unwrap();
    let (_, summary) =
        Learner::new(&Mlp::new(4, 0.0), run_config(), full.path())?.fit(&data, None, None)?;
    let losses = step_losses(full.path());
    assert_eq!(losses.len(), 8);
    let whole = mean(losses.iter().map(|l| l.1));
    let got = summary.train_loss.unwrap();
    assert!((got - whole).abs() < 1e-9, "{got} vs the mean {whole}");
    assert_ne!(got, losses[7].1, "not the last step's loss");

    // Resumed from step 4 in a folder of its own: the mean of steps 5..=8 alone.
    let resumed = tempfile::tempdir().unwrap();
    let from = checkpoint::dir_for(full.path(), 4);
    let (_, summary) = Learner::new(&Mlp::new(9, 0.0), run_config(), resumed.path())?.fit(
        &data,
        None,
        Some(&from),
    )?;
    let session = mean(losses.iter().filter(|l| l.0 > 4).map(|l| l.1));
    let got = summary.train_loss.unwrap();
    assert!(
        (got - session).abs() < 1e-6,
        "{got} vs the session's mean {session}"
    );
    assert!(
        (got - whole).abs() > 1e-4,
        "the resumed steps only: {got} vs {whole}"
    );
    Ok(())
}
