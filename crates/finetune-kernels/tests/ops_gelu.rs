//! `ops::gelu` (erf form) and `ops::gelu_new` (tanh form): forward against the formulas (erf
//! by its own series) and candle's `gelu_erf` / `gelu`, derivatives against finite differences
//! (contiguous and strided), f32 vs f64, half precision, bad input.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{
    analytic_grads, assert_close, assert_tensors_close, check_f32_matches_f64, erf_series,
    gradcheck, normal, uniform, values, UnaryOp,
};
use finetune_kernels::ops::{gelu, gelu_composed, gelu_new, gelu_new_composed};
use finetune_kernels::Result;

fn gelu_ref(x: f64) -> f64 {
    0.5 * x * (1.0 + erf_series(x / 2f64.sqrt()))
}

fn gelu_new_ref(x: f64) -> f64 {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (k * (x + 0.044715 * x.powi(3))).tanh())
}

/// A grid over [-5.5, 5.5] plus zero.
fn grid() -> Tensor {
    let v: Vec<f64> = (-110..=110).map(|i| i as f64 * 0.05).collect();
    Tensor::from_vec(v, 221, &Device::Cpu).unwrap()
}

#[test]
fn forward_matches_formula_in_f64() -> Result<()> {
    let x = grid();
    let xs = values(&x);
    let want: Vec<f64> = xs.iter().map(|&v| gelu_ref(v)).collect();
    // The tolerance is the reference series' own accuracy at the grid's ends.
    assert_close(&values(&gelu(&x)?), &want, 1e-10, 1e-12, "gelu");
    let want: Vec<f64> = xs.iter().map(|&v| gelu_new_ref(v)).collect();
    assert_close(&values(&gelu_new(&x)?), &want, 1e-14, 1e-14, "gelu_new");
    // Far tails: identity on the right, zero on the left.
    let t = Tensor::new(&[-30f64, 30.0], &Device::Cpu)?;
    assert_close(&values(&gelu(&t)?), &[0.0, 30.0], 1e-12, 0.0, "gelu tails");
    assert_close(
        &values(&gelu_new(&t)?),
        &[0.0, 30.0],
        1e-12,
        0.0,
        "gelu_new tails",
    );
    Ok(())
}

#[test]
fn forward_matches_candle_in_f32() -> Result<()> {
    let x = (normal(&[4, 7, 33], 3) * 2.5)?.to_dtype(DType::F32)?;
    assert_tensors_close(&gelu(&x)?, &x.gelu_erf()?, 1e-5, 1e-5, "gelu vs gelu_erf");
    assert_tensors_close(&gelu_new(&x)?, &x.gelu()?, 1e-5, 1e-5, "gelu_new vs gelu");
    assert_eq!(gelu(&x)?.dtype(), DType::F32);
    Ok(())
}

#[test]
fn derivatives_match_finite_differences() {
    // Elementwise, so the whole grid is cheap; includes 0 and the tails.
    gradcheck(&[grid()], |t| gelu(&t[0]));
    gradcheck(&[grid()], |t| gelu_new(&t[0]));
    let x = normal(&[3, 4, 5], 7);
    gradcheck(std::slice::from_ref(&x), |t| gelu(&t[0]));
    gradcheck(&[x], |t| gelu_new(&t[0]));
}

#[test]
fn derivatives_match_finite_differences_for_strided_inputs() {
    let x = normal(&[4, 6, 3], 11);
    for f in [gelu, gelu_new] {
        gradcheck(std::slice::from_ref(&x), |t| {
            let xt = t[0].transpose(0, 2)?;
            assert!(!xt.is_contiguous());
            f(&xt)
        });
        gradcheck(std::slice::from_ref(&x), |t| f(&t[0].narrow(1, 2, 3)?));
    }
}

#[test]
fn fused_and_composed_agree_in_value_and_gradient() -> Result<()> {
    let x = (normal(&[5, 40], 13) * 3.0)?;
    let pairs: [(UnaryOp, UnaryOp); 2] = [(gelu, gelu_composed), (gelu_new, gelu_new_composed)];
    for (fused, composed) in pairs {
        assert_tensors_close(&fused(&x)?, &composed(&x)?, 1e-14, 1e-12, "forward");
        let inputs = [x.clone()];
        let a = analytic_grads(&inputs, &|t: &[Tensor]| fused(&t[0]))?;
        let b = analytic_grads(&inputs, &|t: &[Tensor]| composed(&t[0]))?;
        assert_tensors_close(&a[0], &b[0], 1e-12, 1e-10, "gradient");
    }
    Ok(())
}

#[test]
fn large_inputs_split_over_tasks_match_small_ones() -> Result<()> {
    // More elements than one rayon chunk: every element must still get its own value.
    let x = uniform(&[50_000], -4.0, 4.0, 17);
    let y = values(&gelu(&x)?);
    let xs = values(&x);
    for i in (0..xs.len()).step_by(997).chain([xs.len() - 1]) {
        assert!((y[i] - gelu_ref(xs[i])).abs() < 1e-12, "element {i}");
    }
    Ok(())
}

#[test]
fn f32_path_matches_f64_path() {
    let x = (normal(&[7, 31], 19) * 3.0).unwrap();
    check_f32_matches_f64(std::slice::from_ref(&x), 1e-5, |t| gelu(&t[0]));
    check_f32_matches_f64(&[x], 1e-5, |t| gelu_new(&t[0]));
}

#[test]
fn half_precision_inputs_are_accepted_and_differentiable() -> Result<()> {
    let x = (normal(&[3, 16], 23) * 2.0)?;
    for dt in [DType::F16, DType::BF16] {
        let xh = x.to_dtype(dt)?;
        for (f, r) in [
            (gelu as UnaryOp, gelu_ref as fn(f64) -> f64),
            (gelu_new, gelu_new_ref),
        ] {
            let y = f(&xh)?;
            assert_eq!(y.dtype(), dt);
            let want: Vec<f64> = values(&xh).iter().map(|&v| r(v)).collect();
            assert_close(&values(&y), &want, 1e-2, 1e-2, &format!("{dt:?} forward"));
            let got = analytic_grads(std::slice::from_ref(&xh), &|t: &[Tensor]| f(&t[0]))?;
            let want = analytic_grads(&[xh.to_dtype(DType::F64)?], &|t: &[Tensor]| f(&t[0]))?;
            assert_close(&values(&got[0]), &values(&want[0]), 2e-2, 2e-2, "gradient");
        }
    }
    Ok(())
}

#[test]
fn non_float_input_is_an_error() -> Result<()> {
    let ints = Tensor::new(&[1u32, 2], &Device::Cpu)?;
    assert!(gelu(&ints).is_err());
    assert!(gelu_new(&ints).is_err());
    assert!(gelu_composed(&ints).is_err());
    Ok(())
}
