//! Gradient handling: clipping as `clip_grad_norm_` / `clip_grad_value_`, accumulation equal to
//! the full-batch gradient, and L1/L2 penalty gradients.

use candle_core::{DType, Device, Tensor};
use finetune_core::regularize::{l1_penalty, l2_penalty};
use finetune_core::{GradAccumulator, Grads, ParamStore, PatternSet, Result, TensorKind};

fn grads() -> Result<Grads> {
    let dev = Device::Cpu;
    let mut g = Grads::new();
    g.insert("a", Tensor::new(&[3f32, -4.0], &dev)?);
    g.insert("b", Tensor::new(&[[12f32]], &dev)?);
    Ok(g)
}

#[test]
fn clip_norm_returns_pre_clip_norm_and_scales() -> Result<()> {
    let mut g = grads()?;
    // sqrt(9 + 16 + 144) = 13
    assert!((g.global_norm(2.0)? - 13.0).abs() < 1e-9);
    assert!((g.global_norm(1.0)? - 19.0).abs() < 1e-9);
    assert!((g.global_norm(f64::INFINITY)? - 12.0).abs() < 1e-9);
    let norm = g.clip_norm(1.3, 2.0)?;
    assert!((norm - 13.0).abs() < 1e-9);
    let coef = 1.3 / (13.0 + 1e-6);
    let a = g.get("a").unwrap().to_vec1::<f32>()?;
    assert!((a[0] as f64 - 3.0 * coef).abs() < 1e-6 && (a[1] as f64 + 4.0 * coef).abs() < 1e-6);
    assert!((g.global_norm(2.0)? - 1.3).abs() < 1e-5);
    // Below the threshold nothing changes.
    let mut g2 = grads()?;
    g2.clip_norm(100.0, 2.0)?;
    assert_eq!(g2.get("a").unwrap().to_vec1::<f32>()?, vec![3.0, -4.0]);
    Ok(())
}

#[test]
fn clip_value_clamps_each_element() -> Result<()> {
    let mut g = grads()?;
    g.clip_value(3.5)?;
    assert_eq!(g.get("a").unwrap().to_vec1::<f32>()?, vec![3.0, -3.5]);
    assert_eq!(
        g.get("b").unwrap().flatten_all()?.to_vec1::<f32>()?,
        vec![3.5]
    );
    assert!(g.clip_value(0.0).is_err());
    Ok(())
}

#[test]
fn non_finite_gradients_are_named() -> Result<()> {
    let mut g = grads()?;
    assert!(g.non_finite()?.is_empty());
    g.insert("c", Tensor::new(&[f32::NAN, 1.0], &Device::Cpu)?);
    assert_eq!(g.non_finite()?, vec!["c".to_string()]);
    Ok(())
}

/// Linear regression with a mean squared error over a batch of 8.
fn loss_grads(store: &ParamStore, x: &Tensor, y: &Tensor) -> Result<Grads> {
    let pred = x
        .matmul(&store.get("w")?)?
        .broadcast_add(&store.get("b")?)?;
    let loss = (pred - y)?.sqr()?.mean_all()?;
    Ok(Grads::from_backward(store, &loss.backward()?))
}

#[test]
fn accumulated_micro_batches_equal_the_full_batch_gradient() -> Result<()> {
    let dev = Device::Cpu;
    let s = ParamStore::new();
    s.insert(
        "w",
        &Tensor::new(&[[0.3f32], [-0.2], [0.7]], &dev)?,
        TensorKind::Parameter,
    )?;
    s.insert("b", &Tensor::new(&[0.1f32], &dev)?, TensorKind::Parameter)?;
    let x = Tensor::arange(0f32, 24.0, &dev)?
        .reshape((8, 3))?
        .affine(0.1, -1.0)?
        .sin()?;
    let y = Tensor::arange(0f32, 8.0, &dev)?.reshape((8, 1))?.cos()?;
    let full = loss_grads(&s, &x, &y)?;
    let mut acc = GradAccumulator::new();
    // Uneven micro-batches: 3 + 3 + 2, each weighted by its share of the batch.
    for (start, len) in [(0, 3), (3, 3), (6, 2)] {
        let g = loss_grads(&s, &x.narrow(0, start, len)?, &y.narrow(0, start, len)?)?;
        acc.add(&g, len as f64 / 8.0)?;
    }
    assert_eq!(acc.micro_batches(), 3);
    let summed = acc.take();
    for name in ["w", "b"] {
        let a = full.get(name).unwrap().flatten_all()?.to_vec1::<f32>()?;
        let b = summed.get(name).unwrap().flatten_all()?.to_vec1::<f32>()?;
        for (u, v) in a.iter().zip(&b) {
            assert!((u - v).abs() < 1e-6, "{name}: {a:?} vs {b:?}");
        }
        assert!(a.iter().any(|v| v.abs() > 1e-3));
    }
    assert_eq!(acc.micro_batches(), 0);
    assert!(acc.take().is_empty());
    Ok(())
}

#[test]
fn penalty_gradients_are_lambda_sign_and_lambda_w() -> Result<()> {
    let dev = Device::Cpu;
    let s = ParamStore::new();
    s.insert(
        "fc.weight",
        &Tensor::new(&[0.5f32, -2.0, 1.5], &dev)?,
        TensorKind::Parameter,
    )?;
    s.insert(
        "fc.bias",
        &Tensor::new(&[0.25f32], &dev)?,
        TensorKind::Parameter,
    )?;
    s.insert(
        "frozen.weight",
        &Tensor::new(&[9f32], &dev)?,
        TensorKind::Parameter,
    )?;
    s.set_trainable("frozen.weight", false)?;
    let only_weights = PatternSet::new(&["*.weight"])?;
    let l1 = l1_penalty(&s, &only_weights, 0.1)?.unwrap();
    assert!((l1.to_scalar::<f32>()? - 0.1 * 4.0).abs() < 1e-6);
    let g = Grads::from_backward(&s, &l1.backward()?);
    let gw = g.get("fc.weight").unwrap().to_vec1::<f32>()?;
    for (a, b) in gw.iter().zip([0.1f32, -0.1, 0.1]) {
        assert!((a - b).abs() < 1e-7);
    }
    assert!(g.get("fc.bias").is_none() && g.get("frozen.weight").is_none());
    let l2 = l2_penalty(&s, &PatternSet::default(), 0.2)?.unwrap();
    // 0.5 * 0.2 * (0.25 + 4 + 2.25 + 0.0625)
    assert!((l2.to_scalar::<f32>()? - 0.1 * 6.5625).abs() < 1e-6);
    let g = Grads::from_backward(&s, &l2.backward()?);
    let gb = g.get("fc.bias").unwrap().to_vec1::<f32>()?;
    assert!((gb[0] - 0.2 * 0.25).abs() < 1e-7);
    let none = PatternSet::new(&["nothing.*"])?;
    assert!(l2_penalty(&s, &none, 0.2)?.is_none());
    let _ = DType::F32;
    Ok(())
}
