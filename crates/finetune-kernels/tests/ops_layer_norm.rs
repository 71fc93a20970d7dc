//! `ops::layer_norm`: forward against the formula and candle's fused layer norm, gradients of
//! x, gamma and beta against finite differences (contiguous and strided inputs), f32 vs f64,
//! half precision, and bad input.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{
    assert_close, assert_tensors_close, check_f32_matches_f64, gradcheck, normal, uniform, values,
};
use finetune_kernels::ops::{layer_norm, layer_norm_composed};
use finetune_kernels::Result;

/// The layer norm formula over the last dimension, in f64 loops (biased variance).
fn reference(x: &[f64], d: usize, gamma: &[f64], beta: &[f64], eps: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(d) {
        let mean = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
        for (j, v) in row.iter().enumerate() {
            out.push((v - mean) / (var + eps).sqrt() * gamma[j] + beta[j]);
        }
    }
    out
}

#[test]
fn forward_matches_formula_in_f64() -> Result<()> {
    for (k, shape) in [vec![4, 9], vec![2, 3, 16], vec![5, 1], vec![1, 37]]
        .into_iter()
        .enumerate()
    {
        let d = *shape.last().unwrap();
        let seed = 10 * k as u64;
        // An offset and scale per input make the mean/variance non-trivial.
        let x = (normal(&shape, seed) * 3.0)?.affine(1.0, 2.5)?;
        let g = uniform(&[d], 0.5, 1.5, seed + 1);
        let b = uniform(&[d], -1.0, 1.0, seed + 2);
        for eps in [1e-5, 1e-12, 0.3] {
            let y = layer_norm(&x, &g, &b, eps)?;
            assert_eq!(y.dims(), x.dims());
            let want = reference(&values(&x), d, &values(&g), &values(&b), eps);
            assert_close(
                &values(&y),
                &want,
                1e-12,
                1e-12,
                &format!("{shape:?} eps {eps}"),
            );
        }
    }
    Ok(())
}

#[test]
fn forward_matches_candle_fused_layer_norm_in_f32() -> Result<()> {
    let x = normal(&[3, 5, 64], 1).to_dtype(DType::F32)?;
    let g = uniform(&[64], 0.5, 1.5, 2).to_dtype(DType::F32)?;
    let b = uniform(&[64], -1.0, 1.0, 3).to_dtype(DType::F32)?;
    let ours = layer_norm(&x, &g, &b, 1e-5)?;
    let candle = candle_nn::ops::layer_norm(&x, &g, &b, 1e-5)?;
    assert_eq!(ours.dtype(), DType::F32);
    assert_tensors_close(
        &ours,
        &candle,
        1e-5,
        1e-5,
        "ours vs candle_nn::ops::layer_norm",
    );
    Ok(())
}

#[test]
fn gradients_match_finite_differences() {
    for (k, shape) in [vec![3, 5], vec![2, 3, 7], vec![4, 1], vec![1, 19]]
        .into_iter()
        .enumerate()
    {
        let d = *shape.last().unwrap();
        let seed = 100 + 10 * k as u64;
        let x = normal(&shape, seed);
        let g = uniform(&[d], 0.5, 1.5, seed + 1);
        let b = uniform(&[d], -1.0, 1.0, seed + 2);
        // A large eps keeps the d = 1 case (zero variance) well-conditioned.
        let eps = if d == 1 { 0.5 } else { 1e-5 };
        gradcheck(&[x, g, b], |t| layer_norm(&t[0], &t[1], &t[2], eps));
    }
}

#[test]
fn gradients_match_finite_differences_for_strided_inputs() {
    // x transposed: the normalised dim has stride > 1.
    let x = normal(&[6, 4], 7);
    let g = uniform(&[6], 0.5, 1.5, 8);
    let b = uniform(&[6], -1.0, 1.0, 9);
    gradcheck(&[x, g, b], |t| {
        let xt = t[0].t()?;
        assert!(!xt.is_contiguous());
        layer_norm(&xt, &t[1], &t[2], 1e-5)
    });
    // x narrowed along the last dim, gamma a strided column of a matrix, beta narrowed.
    let x = normal(&[2, 3, 10], 11);
    let g = uniform(&[6, 2], 0.5, 1.5, 12);
    let b = uniform(&[9], -1.0, 1.0, 13);
    gradcheck(&[x, g, b], |t| {
        let xn = t[0].narrow(2, 3, 6)?;
        let gc = t[1].narrow(1, 1, 1)?.squeeze(1)?;
        assert!(!xn.is_contiguous() && !gc.is_contiguous());
        layer_norm(&xn, &gc, &t[2].narrow(0, 2, 6)?, 1e-5)
    });
}

#[test]
fn fused_and_composed_agree_in_value_and_gradient() -> Result<()> {
    let x = normal(&[4, 3, 12], 21);
    let g = uniform(&[12], 0.5, 1.5, 22);
    let b = uniform(&[12], -1.0, 1.0, 23);
    let f = |t: &[Tensor]| layer_norm(&t[0], &t[1], &t[2], 1e-5);
    let c = |t: &[Tensor]| layer_norm_composed(&t[0], &t[1], &t[2], 1e-5);
    let inputs = [x, g, b];
    assert_tensors_close(&f(&inputs)?, &c(&inputs)?, 1e-12, 1e-12, "forward");
    let gf = common::analytic_grads(&inputs, &f)?;
    let gc = common::analytic_grads(&inputs, &c)?;
    for (i, (a, b)) in gf.iter().zip(&gc).enumerate() {
        assert_tensors_close(a, b, 1e-12, 1e-10, &format!("gradient {i}"));
    }
    Ok(())
}

#[test]
fn f32_path_matches_f64_path() {
    let x = normal(&[8, 33], 31);
    let g = uniform(&[33], 0.5, 1.5, 32);
    let b = uniform(&[33], -1.0, 1.0, 33);
    check_f32_matches_f64(&[x, g, b], 1e-5, |t| layer_norm(&t[0], &t[1], &t[2], 1e-5));
}

#[test]
fn gradient_accumulates_over_rows_deterministically_for_many_rows() -> Result<()> {
    // Enough rows that the backward splits them over several rayon tasks.
    let x = normal(&[300, 64], 41);
    let g = uniform(&[64], 0.5, 1.5, 42);
    let b = uniform(&[64], -1.0, 1.0, 43);
    let f = |t: &[Tensor]| layer_norm(&t[0], &t[1], &t[2], 1e-5);
    let c = |t: &[Tensor]| layer_norm_composed(&t[0], &t[1], &t[2], 1e-5);
    let inputs = [x, g, b];
    let g1 = common::analytic_grads(&inputs, &f)?;
    let g2 = common::analytic_grads(&inputs, &f)?;
    let gc = common::analytic_grads(&inputs, &c)?;
    for i in 0..3 {
        assert_eq!(values(&g1[i]), values(&g2[i]), "run-to-run gradient {i}");
        assert_tensors_close(&g1[i], &gc[i], 1e-10, 1e-10, &format!("gradient {i}"));
    }
    Ok(())
}

#[test]
fn half_precision_inputs_are_accepted_and_differentiable() -> Result<()> {
    let x = normal(&[4, 16], 51);
    let g = uniform(&[16], 0.5, 1.5, 52);
    let b = uniform(&[16], -1.0, 1.0, 53);
    for dt in [DType::F16, DType::BF16] {
        let (xh, gh, bh) = (x.to_dtype(dt)?, g.to_dtype(dt)?, b.to_dtype(dt)?);
        let y = layer_norm(&xh, &gh, &bh, 1e-5)?;
        assert_eq!(y.dtype(), dt);
        // Against the f64 formula on the same (rounded) inputs; half precision output.
        let want = reference(&values(&xh), 16, &values(&gh), &values(&bh), 1e-5);
        assert_close(&values(&y), &want, 2e-2, 1e-2, &format!("{dt:?} forward"));

        let f = |t: &[Tensor]| layer_norm(&t[0], &t[1], &t[2], 1e-5);
        let got = common::analytic_grads(&[xh.clone(), gh.clone(), bh.clone()], &f)?;
        // The same gradient in f64 from the same rounded values.
        let inputs64 = [
            xh.to_dtype(DType::F64)?,
            gh.to_dtype(DType::F64)?,
            bh.to_dtype(DType::F64)?,
        ];
        let want = common::analytic_grads(&inputs64, &f)?;
        for (i, gr) in got.iter().enumerate() {
            assert_eq!(gr.dtype(), dt);
            let scale = values(&want[i]).iter().fold(0f64, |m, v| m.max(v.abs()));
            assert_close(
                &values(gr),
                &values(&want[i]),
                5e-2 * scale.max(1.0),
                0.0,
                &format!("{dt:?} gradient {i}"),
            );
        }
    }
    Ok(())
}

#[test]
fn bad_input_is_an_error() -> Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::zeros((2, 4), DType::F32, &dev)?;
    let g = Tensor::ones(4, DType::F32, &dev)?;
    let b = Tensor::zeros(4, DType::F32, &dev)?;
    let g3 = Tensor::ones(3, DType::F32, &dev)?;
    let g2d = Tensor::ones((1, 4), DType::F32, &dev)?;
    assert!(layer_norm(&x, &g, &b, 1e-5).is_ok());
    for (what, r) in [
        ("gamma wrong length", layer_norm(&x, &g3, &b, 1e-5)),
        ("beta wrong length", layer_norm(&x, &g, &g3, 1e-5)),
        ("gamma 2-d", layer_norm(&x, &g2d, &b, 1e-5)),
        (
            "dtype mismatch",
            layer_norm(&x, &g.to_dtype(DType::F64)?, &b, 1e-5),
        ),
        ("negative eps", layer_norm(&x, &g, &b, -1.0)),
        ("NaN eps", layer_norm(&x, &g, &b, f64::NAN)),
        (
            "integer input",
            layer_norm(
                &x.to_dtype(DType::U32)?,
                &g.to_dtype(DType::U32)?,
                &b.to_dtype(DType::U32)?,
                1e-5,
            ),
        ),
        (
            "empty last dim",
            layer_norm(
                &Tensor::zeros((2, 0), DType::F32, &dev)?,
                &Tensor::zeros(0, DType::F32, &dev)?,
                &Tensor::zeros(0, DType::F32, &dev)?,
                1e-5,
            ),
        ),
        (
            "scalar input",
            layer_norm(&Tensor::new(1f32, &dev)?, &g, &b, 1e-5),
        ),
    ] {
        assert!(r.is_err(), "{what}: expected an error");
    }
    // The composed twin validates the same way.
    assert!(layer_norm_composed(&x, &g3, &b, 1e-5).is_err());
    Ok(())
}
