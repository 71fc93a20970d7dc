//! Frozen-feature caching in the learner, on a toy model with a backbone/head split: a cached
//! run and an uncached one reach the same weights and metrics while the cached one runs the
//! backbone once per sample; the summary reports it; resuming a cached run is exact; the cache
//! is refused when the backbone trains, draws dropout, is unfrozen later, or the inputs are
//! augmented.

mod common;

use candle_core::{DType, Device, Module, Tensor};
use common::{assert_bits_eq, config, max_abs_diff, weights, Blobs, CLASSES, HIDDEN, INPUT};
use finetune_core::nn::{init, linear, Linear};
use finetune_core::{ParamStore, Result, Rng, TensorKind};
use finetune_train::checkpoint::{self, MODEL_FILE};
use finetune_train::{
    Batch, BatchSource, HeadSplit, Learner, Outcome, Problem, TrainConfig, TrainModel, TrainSummary,
};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// `encoder.layer.0` (linear + ReLU, optional dropout) → dropout → `classifier`.
struct Split {
    store: ParamStore,
    backbone: Linear,
    head: Linear,
    backbone_dropout: f64,
    head_dropout: f64,
    rng: Mutex<Rng>,
    /// Samples that went through the backbone (any mode).
    backbone_rows: AtomicU64,
}

impl Split {
    fn new(seed: u64, backbone_dropout: f64, head_dropout: f64) -> Self {
        let store = ParamStore::new();
        let mut rng = Rng::seed_from_u64(seed);
        for (prefix, i, o) in [
            ("encoder.layer.0", INPUT, HIDDEN),
            ("classifier", HIDDEN, CLASSES),
        ] {
            let (w, b) = init::torch_linear(o, i, &mut rng, DType::F32, &Device::Cpu).unwrap();
            store
                .insert(&format!("{prefix}.weight"), &w, TensorKind::Parameter)
                .unwrap();
            store
                .insert(&format!("{prefix}.bias"), &b, TensorKind::Parameter)
                .unwrap();
        }
        Self {
            backbone: linear(&store, "encoder.layer.0", INPUT, HIDDEN, true).unwrap(),
            head: linear(&store, "classifier", HIDDEN, CLASSES, true).unwrap(),
            store,
            backbone_dropout,
            head_dropout,
            rng: Mutex::new(Rng::seed_from_u64(seed ^ 0xd0)),
            backbone_rows: AtomicU64::new(0),
        }
    }

    fn rows(&self) -> u64 {
        self.backbone_rows.load(Ordering::SeqCst)
    }
}

impl TrainModel for Split {
    type Inputs = Tensor;

    fn store(&self) -> &ParamStore {
        &self.store
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.head_forward(&self.features(x, train)?, train)
    }

    fn loss(&self, logits: &Tensor, targets: &Tensor, ls: f64) -> Result<Tensor> {
        Ok(finetune_kernels::ops::cross_entropy(
            logits, targets, ls, None,
        )?)
    }

    fn problem(&self) -> Problem {
        Problem::SingleLabel {
            labels: (0..CLASSES).map(|c| format!("class{c}")).collect(),
        }
    }

    fn layout(&self) -> finetune_core::ParamLayout {
        // `encoder.layer.N.*` at depth N + 1, the head `classifier.*`.
        finetune_core::ParamLayout::new(["classifier.*"], |name| {
            let rest = name.strip_prefix("encoder.layer.")?;
            rest.split('.').next()?.parse::<usize>().ok().map(|n| n + 1)
        })
    }

    fn rng_state(&self) -> Option<Rng> {
        Some(self.rng.lock().unwrap().clone())
    }

    fn set_rng_state(&self, rng: Rng) {
        *self.rng.lock().unwrap() = rng;
    }

    fn export(&self, dir: &Path) -> Result<()> {
        self.store
            .save(&dir.join(MODEL_FILE), |n| Some(n.to_string()))
    }

    fn head_split(&self) -> Option<HeadSplit> {
        Some(HeadSplit {
            backbone_randomness: (self.backbone_dropout > 0.0)
                .then(|| "dropout in the backbone".to_string()),
        })
    }

    fn features(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.backbone_rows
            .fetch_add(x.dim(0)? as u64, Ordering::SeqCst);
        let h = self.backbone.forward(x)?.relu()?;
        let mut rng = self.rng.lock().unwrap();
        Ok(finetune_kernels::ops::dropout(
            &h,
            self.backbone_dropout,
            train,
            &mut rng,
        )?)
    }

    fn head_forward(&self, f: &Tensor, train: bool) -> Result<Tensor> {
        let h = {
            let mut rng = self.rng.lock().unwrap();
            finetune_kernels::ops::dropout(f, self.head_dropout, train, &mut rng)?
        };
        Ok(self.head.forward(&h)?)
    }
}

/// [`Blobs`] that say whether their training batches are deterministic.
struct Source {
    blobs: Blobs,
    deterministic: bool,
}

impl BatchSource<Tensor> for Source {
    fn len(&self) -> usize {
        self.blobs.len()
    }

    fn batch(&self, indices: &[usize], epoch: u64, train: bool) -> Result<Batch<Tensor>> {
        self.blobs.batch(indices, epoch, train)
    }

    fn deterministic_train(&self) -> bool {
        self.deterministic
    }
}

fn source(n: usize, seed: u64) -> Source {
    Source {
        blobs: Blobs::new(n, seed),
        deterministic: true,
    }
}

/// Head-only training: the backbone frozen, AdamW, dropout before the head, an eval set.
fn head_config() -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 8,
        eval_batch_size: 16,
        optimizer: "adamw".parse().unwrap(),
        lr: 5e-2,
        weight_decay: 0.01,
        freeze: vec!["encoder.*".into()],
        save_steps: Some(5),
        ..config()
    }
}

fn run(model: &Split, cfg: TrainConfig, out: &Path, resume: Option<&Path>) -> TrainSummary {
    let (train, eval) = (source(50, 1), source(20, 2));
    let (outcome, summary) = Learner::new(model, cfg, out)
        .unwrap()
        .fit(&train, Some(&eval), resume)
        .unwrap();
    assert_eq!(outcome, Outcome::Completed);
    summary
}

fn saved_summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("train_summary.json")).unwrap()).unwrap()
}

#[test]
fn cached_and_uncached_runs_agree_and_the_cache_runs_the_backbone_once() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cached = Split::new(3, 0.0, 0.3);
    let sa = run(&cached, head_config(), a.path(), None);
    let plain = Split::new(3, 0.0, 0.3);
    let cfg = TrainConfig {
        feature_cache: false,
        ..head_config()
    };
    let sb = run(&plain, cfg, b.path(), None);

    let (wa, wb) = (weights(cached.store()), weights(plain.store()));
    for (name, va) in &wa {
        let d = max_abs_diff(va, &wb[name]);
        assert!(d <= 1e-5, "`{name}` differs by {d}");
    }
    // The head moved: the comparison is not between two untouched models.
    let init = weights(Split::new(3, 0.0, 0.3).store());
    assert!(max_abs_diff(&wa["classifier.weight"], &init["classifier.weight"]) > 1e-2);
    assert_eq!(wa["encoder.layer.0.weight"], init["encoder.layer.0.weight"]);

    let (ea, eb) = (sa.final_eval.unwrap(), sb.final_eval.unwrap());
    assert!(
        (ea.loss - eb.loss).abs() < 1e-5,
        "{} vs {}",
        ea.loss,
        eb.loss
    );
    assert_eq!(
        ea.classification.unwrap().accuracy,
        eb.classification.unwrap().accuracy
    );
    assert!((sa.train_loss.unwrap() - sb.train_loss.unwrap()).abs() < 1e-5);

    // 50 training + 20 eval samples once, against every step's batch plus an evaluation per
    // epoch.
    assert_eq!(cached.rows(), 70);
    assert_eq!(plain.rows(), 3 * 50 + 3 * 20);

    let ca = sa.feature_cache.unwrap();
    assert!(ca.used && ca.samples == 70 && ca.seconds >= 0.0 && ca.reason.is_none());
    let cb = sb.feature_cache.unwrap();
    assert!(!cb.used && cb.samples == 0);
    assert!(cb.reason.unwrap().contains("--no-feature-cache"));
    let json = saved_summary(a.path());
    assert_eq!(json["feature_cache"]["used"], true);
    assert_eq!(json["feature_cache"]["samples"], 70);
    assert_eq!(saved_summary(b.path())["feature_cache"]["used"], false);
}

#[test]
fn resuming_a_cached_run_is_exact() {
    let a = tempfile::tempdir().unwrap();
    let full = Split::new(11, 0.0, 0.5);
    run(&full, head_config(), a.path(), None);
    // 50 samples / 8 = 7 steps per epoch, 21 in all: resume from step 10 in a fresh folder.
    let b = tempfile::tempdir().unwrap();
    let ckpt = b.path().join("checkpoint-10");
    std::fs::create_dir_all(&ckpt).unwrap();
    for e in std::fs::read_dir(checkpoint::dir_for(a.path(), 10)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), ckpt.join(e.file_name())).unwrap();
    }
    let resumed = Split::new(99, 0.0, 0.5);
    let summary = run(&resumed, head_config(), b.path(), Some(&ckpt));
    assert!(summary.feature_cache.unwrap().used);
    assert_bits_eq(
        &weights(full.store()),
        &weights(resumed.store()),
        "resumed cached run",
    );
}

/// The cache report of a short run of `model` under `cfg` on `train`.
fn report(model: &Split, cfg: TrainConfig, train: &Source) -> finetune_train::FeatureCacheReport {
    let out = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        max_steps: Some(2),
        save_steps: None,
        ..cfg
    };
    let (_, summary) = Learner::new(model, cfg, out.path())
        .unwrap()
        .fit(train, None, None)
        .unwrap();
    summary.feature_cache.unwrap()
}

#[test]
fn the_cache_is_refused_when_it_would_change_the_run() {
    let train = source(40, 5);
    let refused = |model: &Split, cfg: TrainConfig, train: &Source, why: &str| {
        let before = model.rows();
        let r = report(model, cfg, train);
        assert!(!r.used, "{why}: used");
        let reason = r.reason.unwrap();
        assert!(reason.contains(why), "expected `{why}` in `{reason}`");
        // Every step ran the backbone on its batch (2 steps of 8).
        assert_eq!(model.rows() - before, 16, "{why}");
    };
    // The backbone trains.
    let cfg = TrainConfig {
        freeze: vec![],
        ..head_config()
    };
    refused(
        &Split::new(1, 0.0, 0.1),
        cfg,
        &train,
        "backbone parameters train",
    );
    // Dropout below the head.
    refused(
        &Split::new(1, 0.2, 0.1),
        head_config(),
        &train,
        "dropout in the backbone",
    );
    // Augmented inputs.
    let augmented = Source {
        blobs: Blobs::new(40, 5),
        deterministic: false,
    };
    refused(
        &Split::new(1, 0.0, 0.1),
        head_config(),
        &augmented,
        "augmentation",
    );
    // The backbone is unfrozen at epoch 1.
    let cfg = TrainConfig {
        unfreeze_schedule: Some("1:encoder.*".into()),
        ..head_config()
    };
    refused(&Split::new(1, 0.0, 0.1), cfg, &train, "gradual unfreezing");

    // And the same model under the head-only config does use it.
    let model = Split::new(1, 0.0, 0.1);
    let r = report(&model, head_config(), &train);
    assert!(r.used && r.samples == 40, "{r:?}");
    assert_eq!(model.rows(), 40);
}
