//! `ops::linear`: forward against candle's matmul composition, gradients of x, W and b against
//! finite differences (3-D and strided input), f32 vs f64, and that inputs outside the
//! autograd graph (a frozen weight, a detached input) get no gradient computed.

mod common;

use candle_core::{DType, Var};
use common::{assert_tensors_close, check_f32_matches_f64, gradcheck, normal, uniform};
use finetune_kernels::ops::{linear, linear_composed};
use finetune_kernels::Result;

#[test]
fn forward_matches_the_composition() -> Result<()> {
    for (shape, out) in [(vec![5, 7], 3), (vec![2, 4, 16], 9), (vec![1, 1], 1)] {
        let inp = *shape.last().unwrap();
        let x = normal(&shape, 1);
        let w = normal(&[out, inp], 2);
        let b = uniform(&[out], -1.0, 1.0, 3);
        let y = linear(&x, &w, Some(&b))?;
        let mut want_dims = shape.clone();
        *want_dims.last_mut().unwrap() = out;
        assert_eq!(y.dims(), want_dims.as_slice());
        let want = linear_composed(&x, &w, Some(&b))?;
        assert_tensors_close(&y, &want, 1e-12, 1e-12, &format!("{shape:?} -> {out}"));
        // In f32 too (the gemm kernels differ per dtype).
        let (x32, w32, b32) = (
            x.to_dtype(DType::F32)?,
            w.to_dtype(DType::F32)?,
            b.to_dtype(DType::F32)?,
        );
        let y32 = linear(&x32, &w32, Some(&b32))?;
        assert_eq!(y32.dtype(), DType::F32);
        assert_tensors_close(&y32, &want, 1e-4, 1e-4, "f32");
    }
    Ok(())
}

#[test]
fn gradients_match_finite_differences() {
    let x = normal(&[2, 3, 6], 4);
    let w = normal(&[5, 6], 5);
    let b = uniform(&[5], -1.0, 1.0, 6);
    gradcheck(&[x, w, b], |t| linear(&t[0], &t[1], Some(&t[2])));
}

#[test]
fn gradients_through_a_strided_input_and_weight() {
    // x is read transposed and W through a transpose: the op makes them contiguous and the
    // gradients flow back through candle's transposes.
    let x = normal(&[6, 4], 7);
    let w = normal(&[6, 3], 8);
    let b = uniform(&[3], -1.0, 1.0, 9);
    gradcheck(&[x, w, b], |t| linear(&t[0].t()?, &t[1].t()?, Some(&t[2])));
}

#[test]
fn f32_matches_f64() {
    let x = normal(&[3, 33], 10);
    let w = normal(&[17, 33], 11);
    let b = normal(&[17], 12);
    check_f32_matches_f64(&[x, w, b], 1e-4, |t| linear(&t[0], &t[1], Some(&t[2])));
}

#[test]
fn frozen_weight_and_detached_input_get_no_gradient() -> Result<()> {
    let x = Var::from_tensor(&normal(&[4, 6], 13).to_dtype(DType::F32)?)?;
    let w = Var::from_tensor(&normal(&[3, 6], 14).to_dtype(DType::F32)?)?;
    let b = Var::from_tensor(&normal(&[3], 15).to_dtype(DType::F32)?)?;
    // Frozen weight and bias: handed out detached, as the ParamStore does.
    let y = linear(
        x.as_tensor(),
        &w.as_detached_tensor(),
        Some(&b.as_detached_tensor()),
    )?;
    let grads = y.sqr()?.sum_all()?.backward()?;
    assert!(grads.get(x.as_tensor()).is_some(), "x trains");
    assert!(grads.get(w.as_tensor()).is_none() && grads.get(b.as_tensor()).is_none());
    // A detached input below a trainable layer: only the weight and bias get gradients.
    let y = linear(&x.as_detached_tensor(), w.as_tensor(), Some(b.as_tensor()))?;
    let grads = y.sqr()?.sum_all()?.backward()?;
    assert!(grads.get(x.as_tensor()).is_none());
    let (gw, gb) = (
        grads.get(w.as_tensor()).unwrap(),
        grads.get(b.as_tensor()).unwrap(),
    );
    // Against the composition's gradients.
    let y = linear_composed(&x.as_detached_tensor(), w.as_tensor(), Some(b.as_tensor()))?;
    let want = y.sqr()?.sum_all()?.backward()?;
    assert_tensors_close(gw, want.get(w.as_tensor()).unwrap(), 1e-4, 1e-5, "dW");
    assert_tensors_close(gb, want.get(b.as_tensor()).unwrap(), 1e-4, 1e-5, "db");
    Ok(())
}

#[test]
fn bad_shapes_are_errors() {
    let x = normal(&[2, 5], 16);
    let w = normal(&[3, 4], 17);
    let b = normal(&[3], 18);
    let err = linear(&x, &w, Some(&b)).unwrap_err().to_string();
    assert!(err.contains("in-dimension"), "{err}");
    let w = normal(&[3, 5], 19);
    let err = linear(&x, &w, Some(&normal(&[4], 20)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("bias"), "{err}");
}
