//! `ops::softmax_last_dim` / `ops::log_softmax_last_dim`: forward against the formula and
//! candle's fused softmax, gradients against finite differences (contiguous and strided),
//! numerical stability, masked (-inf) entries, f32 vs f64, half precision, bad input.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{
    analytic_grads, assert_close, assert_tensors_close, check_f32_matches_f64, gradcheck, normal,
    values, UnaryOp,
};
use finetune_kernels::ops::{
    log_softmax_last_dim, log_softmax_last_dim_composed, softmax_last_dim,
    softmax_last_dim_composed,
};
use finetune_kernels::Result;

/// Softmax and log-softmax of each length-`d` row, by the definition (in f64, shifted by the
/// row max for range only).
fn reference(x: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut sm, mut lsm) = (Vec::new(), Vec::new());
    for row in x.chunks(d) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|v| (v - m).exp()).sum();
        for v in row {
            sm.push((v - m).exp() / z);
            lsm.push(v - m - z.ln());
        }
    }
    (sm, lsm)
}

#[test]
fn forward_matches_formula_in_f64() -> Result<()> {
    for (k, shape) in [vec![4, 9], vec![2, 3, 5, 16], vec![3, 1], vec![130]]
        .into_iter()
        .enumerate()
    {
        let d = *shape.last().unwrap();
        let x = (normal(&shape, k as u64) * 4.0)?;
        let (sm, lsm) = reference(&values(&x), d);
        let y = softmax_last_dim(&x)?;
        let ly = log_softmax_last_dim(&x)?;
        assert_eq!((y.dims(), ly.dims()), (x.dims(), x.dims()));
        assert_close(
            &values(&y),
            &sm,
            1e-15,
            1e-12,
            &format!("softmax {shape:?}"),
        );
        assert_close(
            &values(&ly),
            &lsm,
            1e-12,
            1e-12,
            &format!("log_softmax {shape:?}"),
        );
    }
    Ok(())
}

#[test]
fn forward_matches_candle_fused_softmax_in_f32() -> Result<()> {
    let x = (normal(&[2, 3, 7, 50], 5) * 3.0)?.to_dtype(DType::F32)?;
    let ours = softmax_last_dim(&x)?;
    let candle = candle_nn::ops::softmax_last_dim(&x)?;
    assert_eq!(ours.dtype(), DType::F32);
    assert_tensors_close(&ours, &candle, 1e-6, 1e-5, "softmax vs candle");
    let ours = log_softmax_last_dim(&x)?;
    let candle = candle_nn::ops::log_softmax(&x, 3)?;
    assert_tensors_close(&ours, &candle, 1e-5, 1e-5, "log_softmax vs candle");
    Ok(())
}

#[test]
fn gradients_match_finite_differences() {
    for (k, shape) in [vec![3, 5], vec![2, 3, 4], vec![4, 1], vec![1, 23]]
        .into_iter()
        .enumerate()
    {
        let x = (normal(&shape, 20 + k as u64) * 2.0).unwrap();
        gradcheck(std::slice::from_ref(&x), |t| softmax_last_dim(&t[0]));
        gradcheck(&[x], |t| log_softmax_last_dim(&t[0]));
    }
}

#[test]
fn gradients_match_finite_differences_for_strided_inputs() {
    let x = normal(&[5, 3, 4], 31);
    // Softmax over a transposed axis (stride 12) and over a narrowed last dim.
    gradcheck(std::slice::from_ref(&x), |t| {
        let xt = t[0].transpose(0, 2)?;
        assert!(!xt.is_contiguous());
        softmax_last_dim(&xt)
    });
    gradcheck(std::slice::from_ref(&x), |t| {
        let xt = t[0].transpose(0, 2)?;
        log_softmax_last_dim(&xt)
    });
    gradcheck(std::slice::from_ref(&x), |t| {
        let xn = t[0].narrow(2, 1, 3)?;
        assert!(!xn.is_contiguous());
        softmax_last_dim(&xn)
    });
    gradcheck(&[x], |t| log_softmax_last_dim(&t[0].narrow(2, 1, 3)?));
}

#[test]
fn large_logits_are_stable() -> Result<()> {
    let x = Tensor::new(&[[1000f32, 0.0, -1000.0], [88.0, 89.0, 90.0]], &Device::Cpu)?;
    let y = values(&softmax_last_dim(&x)?);
    let ly = values(&log_softmax_last_dim(&x)?);
    assert!(y.iter().chain(&ly).all(|v| v.is_finite()), "{y:?} {ly:?}");
    assert_close(&y[..3], &[1.0, 0.0, 0.0], 1e-7, 0.0, "saturated row");
    assert_close(
        &ly[..3],
        &[0.0, -1000.0, -2000.0],
        1e-3,
        0.0,
        "saturated log row",
    );
    let (sm, _) = reference(&[88.0, 89.0, 90.0], 3);
    assert_close(&y[3..], &sm, 1e-7, 1e-6, "shifted row");
    Ok(())
}

#[test]
fn masked_entries_get_zero_probability_and_finite_gradients() -> Result<()> {
    // Attention masks put -inf on padded keys.
    let inf = f64::NEG_INFINITY;
    let x = Tensor::new(
        &[[0.5f64, inf, -1.0, 2.0], [inf, 1.0, inf, 1.0]],
        &Device::Cpu,
    )?;
    let y = values(&softmax_last_dim(&x)?);
    assert_eq!((y[1], y[4], y[6]), (0.0, 0.0, 0.0));
    assert_close(
        &y[4..],
        &[0.0, 0.5, 0.0, 0.5],
        1e-15,
        0.0,
        "half-masked row",
    );
    for f in [softmax_last_dim, log_softmax_last_dim] {
        let g = analytic_grads(std::slice::from_ref(&x), &|t: &[Tensor]| f(&t[0]))?;
        assert!(values(&g[0]).iter().all(|v| v.is_finite()));
    }
    // Masked entries receive no softmax gradient.
    let g = analytic_grads(std::slice::from_ref(&x), &|t: &[Tensor]| {
        softmax_last_dim(&t[0])
    })?;
    let g = values(&g[0]);
    assert_eq!((g[1], g[4], g[6]), (0.0, 0.0, 0.0));
    Ok(())
}

#[test]
fn fused_and_composed_agree_in_value_and_gradient() -> Result<()> {
    let x = (normal(&[3, 4, 17], 41) * 3.0)?;
    let pairs: [(UnaryOp, UnaryOp); 2] = [
        (softmax_last_dim, softmax_last_dim_composed),
        (log_softmax_last_dim, log_softmax_last_dim_composed),
    ];
    for (fused, composed) in pairs {
        let inputs = [x.clone()];
        assert_tensors_close(&fused(&x)?, &composed(&x)?, 1e-14, 1e-12, "forward");
        let a = analytic_grads(&inputs, &|t: &[Tensor]| fused(&t[0]))?;
        let b = analytic_grads(&inputs, &|t: &[Tensor]| composed(&t[0]))?;
        assert_tensors_close(&a[0], &b[0], 1e-14, 1e-10, "gradient");
    }
    Ok(())
}

#[test]
fn f32_path_matches_f64_path() {
    let x = (normal(&[6, 40], 51) * 3.0).unwrap();
    check_f32_matches_f64(std::slice::from_ref(&x), 1e-5, |t| softmax_last_dim(&t[0]));
    check_f32_matches_f64(&[x], 1e-5, |t| log_softmax_last_dim(&t[0]));
}

#[test]
fn half_precision_inputs_are_accepted_and_differentiable() -> Result<()> {
    let x = (normal(&[3, 24], 61) * 2.0)?;
    for dt in [DType::F16, DType::BF16] {
        let xh = x.to_dtype(dt)?;
        let (sm, lsm) = reference(&values(&xh), 24);
        let y = softmax_last_dim(&xh)?;
        let ly = log_softmax_last_dim(&xh)?;
        assert_eq!((y.dtype(), ly.dtype()), (dt, dt));
        assert_close(&values(&y), &sm, 1e-3, 1e-2, &format!("{dt:?} softmax"));
        assert_close(
            &values(&ly),
            &lsm,
            2e-2,
            1e-2,
            &format!("{dt:?} log_softmax"),
        );
        let got = analytic_grads(std::slice::from_ref(&xh), &|t: &[Tensor]| {
            softmax_last_dim(&t[0])
        })?;
        let want = analytic_grads(&[xh.to_dtype(DType::F64)?], &|t: &[Tensor]| {
            softmax_last_dim(&t[0])
        })?;
        assert_close(&values(&got[0]), &values(&want[0]), 1e-2, 0.0, "gradient");
    }
    Ok(())
}

#[test]
fn bad_input_is_an_error() -> Result<()> {
    let dev = Device::Cpu;
    let scalar = Tensor::new(1f32, &dev)?;
    let ints = Tensor::new(&[1u32, 2], &dev)?;
    for r in [
        softmax_last_dim(&scalar),
        log_softmax_last_dim(&scalar),
        softmax_last_dim(&ints),
        log_softmax_last_dim(&ints),
        softmax_last_dim_composed(&ints),
    ] {
        assert!(r.is_err());
    }
    Ok(())
}
