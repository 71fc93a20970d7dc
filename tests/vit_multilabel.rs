//! The tiny ViT fixture loaded as a multi-label classifier (`LoadOptions::problem_type`): its
//! loss is PyTorch's `BCEWithLogitsLoss` over multi-hot targets, backward through the whole
//! model matches finite differences, and an export keeps `problem_type`.

use candle_core::{DType, Device, Tensor};
use finetune_core::{Grads, Problem, ProblemType, TrainModel};
use finetune_vit::{LoadOptions, ViT};
use std::path::{Path, PathBuf};

type R = Result<(), Box<dyn std::error::Error>>;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vit")
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn multi_label() -> ViT {
    let opts = LoadOptions {
        dtype: DType::F64,
        problem_type: Some(ProblemType::MultiLabelClassification),
        ..LoadOptions::default()
    };
    ViT::from_pretrained(&fixture(), &opts).unwrap().0
}

#[test]
fn loss_is_bce_and_gradients_match_finite_differences() -> R {
    let m = multi_label();
    assert!(matches!(m.problem(), Problem::MultiLabel { .. }));
    let mut rng = finetune_core::Rng::seed_from_u64(3);
    let px: Vec<f64> = (0..2 * 3 * 20 * 20).map(|_| rng.normal()).collect();
    let x = Tensor::from_vec(px, (2, 3, 20, 20), &Device::Cpu)?;
    let hot = vec![vec![1.0f64, 0.0, 1.0], vec![0.0, 0.0, 1.0]];
    let targets = Tensor::new(hot.clone(), &Device::Cpu)?;
    let logits: Vec<Vec<f64>> = m.forward_t(&x, false)?.to_vec2()?;
    let mut want = 0.0;
    for (xs, ts) in logits.iter().zip(&hot) {
        for (x, t) in xs.iter().zip(ts) {
            want -= t * sigmoid(*x).ln() + (1.0 - t) * (1.0 - sigmoid(*x)).ln();
        }
    }
    want /= 6.0;
    let loss_of = |m: &ViT| -> Result<Tensor, Box<dyn std::error::Error>> {
        Ok(m.loss(&m.forward_t(&x, false)?, &targets, 0.0)?)
    };
    let loss = loss_of(&m)?;
    assert!((loss.to_scalar::<f64>()? - want).abs() < 1e-12);
    let grads = Grads::from_backward(m.store(), &loss.backward()?);
    let h = 1e-5;
    for p in [
        "vit.embeddings.patch_embeddings.projection.weight",
        "vit.encoder.layer.1.intermediate.dense.weight",
        "classifier.weight",
    ] {
        let g = grads.get(p).unwrap().flatten_all()?.to_vec1::<f64>()?;
        let idx = (0..g.len())
            .max_by(|&i, &j| g[i].abs().total_cmp(&g[j].abs()))
            .unwrap();
        let orig = m.store().get(p)?;
        let mut v = orig.flatten_all()?.to_vec1::<f64>()?;
        let x0 = v[idx];
        let mut at = |delta: f64| -> Result<f64, Box<dyn std::error::Error>> {
            v[idx] = x0 + delta;
            let t = Tensor::from_vec(v.clone(), orig.dims(), &Device::Cpu)?;
            m.store().set(p, &t)?;
            Ok(loss_of(&m)?.to_scalar::<f64>()?)
        };
        let numeric = (at(h)? - at(-h)?) / (2.0 * h);
        at(0.0)?;
        assert!(
            (g[idx] - numeric).abs() <= 1e-6 + 1e-4 * numeric.abs(),
            "{p}[{idx}]: backward {} vs finite difference {numeric}",
            g[idx]
        );
        assert!(g[idx] != 0.0, "{p}[{idx}]: a zero gradient checks nothing");
    }
    Ok(())
}

#[test]
fn an_export_keeps_the_problem_type() -> R {
    let dir = std::env::temp_dir().join(format!("ft-vit-multi-{}", std::process::id()));
    multi_label().export_as(&dir, None)?;
    let text = std::fs::read_to_string(dir.join("config.json"))?;
    let config: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(config["problem_type"], "multi_label_classification");
    let (back, _, _) = ViT::from_pretrained(&dir, &LoadOptions::default())?;
    assert!(matches!(back.problem(), Problem::MultiLabel { .. }));
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
