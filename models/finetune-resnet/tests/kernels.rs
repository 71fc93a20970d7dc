//! The fused kernels (im2col + GEMM convolution, fused training BatchNorm + ReLU) against
//! candle's stock ops inside whole tiny ResNets: the same logits, loss, gradients of every
//! parameter and running-statistics updates, in training and eval mode, for both block kinds.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use finetune_core::Result;
use finetune_resnet::{BlockKind, Kernels, LoadOptions, Naming, ResNet};

/// Named flattened tensors.
type Named = Vec<(String, Vec<f64>)>;

/// Logits, every parameter's gradient and the store after one training forward.
fn run(model: &ResNet, x: &Tensor, train: bool) -> Result<(Vec<f64>, Named, Named)> {
    let store = model.store();
    let targets = Tensor::new(&[2u32, 0, 1], &Device::Cpu)?;
    let logits = model.forward_t(x, train)?;
    let grads = model.loss(&logits, &targets, 0.0)?.backward()?;
    let mut g = Vec::new();
    for name in store.names() {
        if let Some(t) = grads.get(store.var(&name)?.as_tensor()) {
            g.push((name, t.flatten_all()?.to_dtype(DType::F64)?.to_vec1()?));
        }
    }
    let logits = logits.flatten_all()?.to_dtype(DType::F64)?.to_vec1()?;
    Ok((logits, g, snapshot(store)))
}

fn close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what}[{i}]: {x} vs {y}");
    }
}

#[test]
fn fused_and_candle_kernels_give_the_same_training_step() -> Result<()> {
    for (block, dtype, tol) in [
        (BlockKind::Basic, DType::F64, 1e-10),
        (BlockKind::Bottleneck, DType::F64, 1e-10),
        (BlockKind::Basic, DType::F32, 1e-4),
    ] {
        let cfg = tiny_config(block);
        let dir = tmpdir(&format!("kernels-{block:?}-{dtype:?}"));
        write_checkpoint(&dir, &cfg, &random_weights(&cfg, 21), Naming::Torchvision);
        let opts = LoadOptions {
            dtype,
            ..LoadOptions::default()
        };
        let (fused, _) = ResNet::from_pretrained(&dir, &opts)?;
        let (stock, _) = ResNet::from_pretrained(&dir, &opts)?;
        stock.set_kernels(Kernels::Candle);
        assert_eq!(
            (fused.kernels(), stock.kernels()),
            (Kernels::Fused, Kernels::Candle)
        );
        let x = images(3, 3, 32, 32, 22, dtype);
        for train in [true, false] {
            let what = format!("{block:?} {dtype:?} train {train}");
            let (la, ga, sa) = run(&fused, &x, train)?;
            let (lb, gb, sb) = run(&stock, &x, train)?;
            close(&la, &lb, tol, &format!("{what}: logits"));
            assert_eq!(ga.len(), gb.len(), "{what}: parameters with a gradient");
            assert!(ga.len() > 10, "{what}: {} gradients", ga.len());
            for ((na, va), (nb, vb)) in ga.iter().zip(&gb) {
                assert_eq!(na, nb);
                close(va, vb, tol, &format!("{what}: d{na}"));
            }
            // Running statistics (and num_batches_tracked) moved alike.
            for ((na, va), (_, vb)) in sa.iter().zip(&sb) {
                close(va, vb, tol, &format!("{what}: {na}"));
            }
        }
    }
    Ok(())
}
