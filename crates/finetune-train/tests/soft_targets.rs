//! Batches whose targets are class distributions (`[N, C]` float, as mixup / cutmix make them)
//! train a single-label model on the soft-target cross-entropy: smoothed one-hot rows give the
//! run that hard labels with the same `--label-smoothing` give.

mod common;

use candle_core::{Device, Tensor};
use common::*;
use finetune_core::Result;
use finetune_train::{Batch, BatchSource, Learner, TrainConfig, TrainModel};

/// [`Blobs`] with each label as a smoothed one-hot row: `ε/C` off, `1 − ε + ε/C` on.
struct SoftBlobs(Blobs, f64);

impl BatchSource<Tensor> for SoftBlobs {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn batch(&self, indices: &[usize], epoch: u64, train: bool) -> Result<Batch<Tensor>> {
        let b = self.0.batch(indices, epoch, train)?;
        let labels: Vec<u32> = b.targets.to_vec1()?;
        let eps = self.1;
        let off = (eps / CLASSES as f64) as f32;
        let on = (1.0 - eps + eps / CLASSES as f64) as f32;
        let rows: Vec<f32> = labels
            .iter()
            .flat_map(|&l| (0..CLASSES).map(move |c| if c as u32 == l { on } else { off }))
            .collect();
        Ok(Batch {
            inputs: b.inputs,
            targets: Tensor::from_vec(rows, (labels.len(), CLASSES), &Device::Cpu)?,
            teacher: None,
        })
    }
}

fn run(train: &dyn BatchSource<Tensor>, smoothing: f64) -> Result<Weights> {
    let dir = tempfile::tempdir().unwrap();
    let model = Mlp::new(3, 0.0);
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 8,
        optimizer: "sgd".parse().unwrap(),
        lr: 0.1,
        schedule: "constant".parse().unwrap(),
        label_smoothing: smoothing,
        ..config()
    };
    Learner::new(&model, cfg, dir.path())?.fit(train, None, None)?;
    Ok(weights(model.store()))
}

#[test]
fn soft_one_hot_targets_train_like_hard_labels_with_the_same_smoothing() -> Result<()> {
    let initial = weights(Mlp::new(3, 0.0).store());
    for eps in [0.0, 0.2] {
        let hard = run(&Blobs::new(40, 8), eps)?;
        // The soft run's own --label-smoothing is ignored: the smoothing is in its targets.
        let soft = run(&SoftBlobs(Blobs::new(40, 8), eps), 0.0)?;
        for (name, w) in &hard {
            let diff = max_abs_diff(w, &soft[name]);
            assert!(
                diff < 1e-5,
                "ε {eps}, `{name}`: soft and hard differ by {diff}"
            );
            assert!(
                max_abs_diff(w, &initial[name]) > 1e-3,
                "`{name}` did not train"
            );
        }
    }
    let hard = run(&Blobs::new(40, 8), 0.0)?;
    let smoothed = run(&SoftBlobs(Blobs::new(40, 8), 0.2), 0.0)?;
    let apart = hard
        .iter()
        .map(|(n, w)| max_abs_diff(w, &smoothed[n]))
        .fold(0.0, f32::max);
    assert!(
        apart > 1e-4,
        "smoothed targets should change the run ({apart})"
    );
    Ok(())
}
