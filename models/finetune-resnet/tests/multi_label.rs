//! A multi-label ResNet (`problem_type: multi_label_classification`): its loss is PyTorch's
//! `BCEWithLogitsLoss` over multi-hot targets (with `pos_weight` too), its gradients match
//! finite differences through the whole model, and the problem type survives export and load.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use finetune_core::{Problem, ProblemType, Result, TrainModel};
use finetune_resnet::{BlockKind, LoadOptions, Naming, ResNet};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// PyTorch's `BCEWithLogitsLoss(pos_weight=p)` written out: the mean over rows and labels of
/// `−[p·t·log σ(x) + (1 − t)·log(1 − σ(x))]`.
fn bce(logits: &[Vec<f64>], targets: &[Vec<f64>], pos_weight: &[f64]) -> f64 {
    let mut sum = 0.0;
    for (xs, ts) in logits.iter().zip(targets) {
        for ((x, t), p) in xs.iter().zip(ts).zip(pos_weight) {
            sum -= p * t * sigmoid(*x).ln() + (1.0 - t) * (1.0 - sigmoid(*x)).ln();
        }
    }
    sum / (logits.len() * logits[0].len()) as f64
}

fn multi_label_model(tag: &str) -> Result<(ResNet, std::path::PathBuf)> {
    let mut cfg = tiny_config(BlockKind::Basic);
    cfg.layers = [1, 1, 1, 1];
    cfg.channels = [2, 3, 2, 2];
    cfg.stem_width = 3;
    let dir = tmpdir(tag);
    write_checkpoint(&dir, &cfg, &random_weights(&cfg, 5), Naming::Torchvision);
    let opts = LoadOptions {
        dtype: DType::F64,
        problem_type: Some(ProblemType::MultiLabelClassification),
        ..LoadOptions::default()
    };
    Ok((ResNet::from_pretrained(&dir, &opts)?.0, dir))
}

#[test]
fn loss_is_bce_with_logits_and_gradients_match_finite_differences() -> Result<()> {
    let (model, dir) = multi_label_model("multi-label-grad")?;
    let classes = model.config().num_classes;
    assert!(matches!(model.problem(), Problem::MultiLabel { .. }));
    let x = images(3, 3, 16, 16, 12, DType::F64);
    let hot: Vec<Vec<f64>> = (0..3)
        .map(|r| {
            (0..classes)
                .map(|c| f64::from(u8::from((r + c) % 2 == 0)))
                .collect()
        })
        .collect();
    let targets = Tensor::new(hot.clone(), &Device::Cpu)?;
    let logits = model.forward_t(&x, false)?;
    let rows: Vec<Vec<f64>> = logits.to_vec2()?;
    let loss = model.loss(&logits, &targets, 0.0)?.to_scalar::<f64>()?;
    assert!((loss - bce(&rows, &hot, &vec![1.0; classes])).abs() < 1e-12);
    let w: Vec<f64> = (0..classes).map(|c| 0.5 + c as f64).collect();
    let weighted = TrainModel::weighted_loss(&model, &logits, &targets, 0.0, &w)?;
    assert!((weighted.to_scalar::<f64>()? - bce(&rows, &hot, &w)).abs() < 1e-12);

    let store = model.store();
    let loss_of = || -> Result<f64> {
        let l = model.loss(&model.forward_t(&x, true)?, &targets, 0.0)?;
        Ok(l.to_scalar::<f64>()?)
    };
    let grads = model
        .loss(&model.forward_t(&x, true)?, &targets, 0.0)?
        .backward()?;
    let h = 1e-5;
    for name in [
        "conv1.weight",
        "layer3.0.conv2.weight",
        "fc.weight",
        "fc.bias",
    ] {
        let var = store.var(name)?;
        let g: Vec<f64> = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()?
            .to_vec1()?;
        let base = var.as_tensor().copy()?;
        let n = g.len();
        for i in [0, n / 2, n - 1] {
            let bump = |d: f64| -> Result<f64> {
                let mut v: Vec<f64> = base.flatten_all()?.to_vec1()?;
                v[i] += d;
                store.set(name, &Tensor::from_vec(v, base.shape(), &Device::Cpu)?)?;
                loss_of()
            };
            let num = (bump(h)? - bump(-h)?) / (2.0 * h);
            store.set(name, &base)?;
            assert!(
                (num - g[i]).abs() <= 1e-6 + 1e-4 * num.abs(),
                "{name}[{i}]: analytic {} vs numeric {num}",
                g[i]
            );
        }
    }
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}

#[test]
fn an_export_loads_back_multi_label() -> Result<()> {
    let (model, dir) = multi_label_model("multi-label-export")?;
    let out = dir.join("export");
    model.export_as(&out, None)?;
    let text = std::fs::read_to_string(out.join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(config["problem_type"], "multi_label_classification");
    let (back, _) = ResNet::from_pretrained(&out, &LoadOptions::default())?;
    assert_eq!(
        back.config().problem_type,
        ProblemType::MultiLabelClassification
    );
    assert!(matches!(back.problem(), Problem::MultiLabel { .. }));
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}
