//! Model-level gradient check: a small Linear → LayerNorm → GELU → Linear → softmax
//! cross-entropy classifier built from `candle_core::Var`s, where every parameter's gradient
//! from one backward pass must match central finite differences of the loss in f64.

mod common;

use candle_core::{DType, Device, Tensor, D};
use common::{analytic_grads, assert_close, gradcheck, normal, uniform, values};
use finetune_kernels::ops::{
    cross_entropy, gelu, layer_norm, layer_norm_composed, softmax_last_dim,
};
use finetune_kernels::Result;

const N: usize = 6; // batch
const IN: usize = 5;
const HIDDEN: usize = 7;
const CLASSES: usize = 4;

/// Parameters in order: w1 [HIDDEN, IN], b1 [HIDDEN], gamma [HIDDEN], beta [HIDDEN],
/// w2 [CLASSES, HIDDEN], b2 [CLASSES].
fn params() -> Vec<Tensor> {
    vec![
        (normal(&[HIDDEN, IN], 1) * 0.7).unwrap(),
        (normal(&[HIDDEN], 2) * 0.1).unwrap(),
        uniform(&[HIDDEN], 0.5, 1.5, 3),
        uniform(&[HIDDEN], -0.5, 0.5, 4),
        (normal(&[CLASSES, HIDDEN], 5) * 0.7).unwrap(),
        (normal(&[CLASSES], 6) * 0.1).unwrap(),
    ]
}

fn inputs() -> (Tensor, Tensor) {
    let x = normal(&[N, IN], 7);
    // One ignored row, the others spread over the classes.
    let t = Tensor::new(&[2i64, 0, -100, 3, 1, 2], &Device::Cpu).unwrap();
    (x, t)
}

/// `x @ w.t() + b` (the weight enters transposed: a strided operand).
fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(x.matmul(&w.t()?)?.broadcast_add(b)?)
}

/// The logits of the model for the given layer norm.
fn logits(
    p: &[Tensor],
    x: &Tensor,
    ln: fn(&Tensor, &Tensor, &Tensor, f64) -> Result<Tensor>,
) -> Result<Tensor> {
    let h = linear(x, &p[0], &p[1])?;
    let h = gelu(&ln(&h, &p[2], &p[3], 1e-5)?)?;
    linear(&h, &p[4], &p[5])
}

#[test]
fn every_parameter_gets_the_finite_difference_gradient_with_cross_entropy() {
    let (x, t) = inputs();
    gradcheck(&params(), |p| {
        cross_entropy(&logits(p, &x, layer_norm)?, &t, 0.1, Some(-100))
    });
}

#[test]
fn every_parameter_gets_the_finite_difference_gradient_with_explicit_softmax() {
    // Mean of -log softmax(logits)[target]: the softmax op's backward inside a model.
    let (x, _) = inputs();
    let t = Tensor::new(&[[2u32], [0], [1], [3], [1], [2]], &Device::Cpu).unwrap();
    gradcheck(&params(), |p| {
        let probs = softmax_last_dim(&logits(p, &x, layer_norm)?)?;
        Ok(probs.gather(&t, D::Minus1)?.log()?.mean_all()?.neg()?)
    });
}

#[test]
fn gradients_equal_those_of_the_composed_model_and_are_nonzero() -> Result<()> {
    let (x, t) = inputs();
    let fused = analytic_grads(&params(), &|p: &[Tensor]| {
        cross_entropy(&logits(p, &x, layer_norm)?, &t, 0.1, Some(-100))
    })?;
    let composed = analytic_grads(&params(), &|p: &[Tensor]| {
        cross_entropy(&logits(p, &x, layer_norm_composed)?, &t, 0.1, Some(-100))
    })?;
    for (i, (a, b)) in fused.iter().zip(&composed).enumerate() {
        assert_close(
            &values(a),
            &values(b),
            1e-12,
            1e-10,
            &format!("parameter {i}"),
        );
        // Every parameter really trains (the failure mode of candle's fused layer norm).
        let norm: f64 = values(a).iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!(norm > 1e-6, "parameter {i} has a zero gradient");
    }
    Ok(())
}

#[test]
fn a_few_sgd_steps_lower_the_loss_in_f32() -> Result<()> {
    let (x, t) = inputs();
    let x = x.to_dtype(DType::F32)?;
    let vars: Vec<candle_core::Var> = params()
        .iter()
        .map(|p| candle_core::Var::from_tensor(&p.to_dtype(DType::F32)?))
        .collect::<candle_core::Result<_>>()?;
    let loss_of = |vars: &[candle_core::Var]| -> Result<Tensor> {
        let p: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        cross_entropy(&logits(&p, &x, layer_norm)?, &t, 0.0, Some(-100))
    };
    let first = values(&loss_of(&vars)?)[0];
    for _ in 0..20 {
        let grads = loss_of(&vars)?.backward()?;
        for v in &vars {
            let g = grads.get(v.as_tensor()).expect("gradient");
            v.set(&(v.as_tensor() - (g * 0.5)?)?)?;
        }
    }
    let last = values(&loss_of(&vars)?)[0];
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    Ok(())
}
