//! `ops::batch_norm_train`: output, batch statistics and the three gradients against the
//! composed twin (with and without the fused ReLU), finite differences in f64, strided and
//! half-precision inputs, and bad input.

mod common;

use candle_core::{DType, Tensor};
use common::{
    analytic_grads, assert_tensors_close, check_f32_matches_f64, gradcheck, normal, values,
};
use finetune_kernels::ops::{batch_norm_train, batch_norm_train_composed};
use finetune_kernels::Result;

const EPS: f64 = 1e-5;

/// x `[n, c, h, w]` (shifted and scaled per channel, so the statistics are not 0 and 1), with
/// weight and bias `[c]`.
fn inputs(shape: [usize; 4], seed: u64) -> Result<[Tensor; 3]> {
    let c = shape[1];
    let shift = normal(&[1, c, 1, 1], seed + 1);
    let x = normal(&shape, seed)
        .broadcast_mul(&(normal(&[1, c, 1, 1], seed + 2).abs()? + 0.5)?)?
        .broadcast_add(&shift)?;
    Ok([x, normal(&[c], seed + 3), normal(&[c], seed + 4)])
}

#[test]
fn fused_matches_composed_with_and_without_relu() -> Result<()> {
    // The last two span several chunks of whole planes with a partial last one (1×1 and 2×2
    // maps: 16 384 and 4 096 planes per chunk).
    for (i, shape) in [
        [4, 3, 5, 6],
        [2, 8, 7, 7],
        [3, 2, 1, 1],
        [41, 500, 1, 1],
        [3, 1500, 2, 2],
    ]
    .into_iter()
    .enumerate()
    {
        let t = inputs(shape, 10 * i as u64)?;
        for relu in [false, true] {
            let fused = batch_norm_train(&t[0], &t[1], &t[2], EPS, relu)?;
            let composed = batch_norm_train_composed(&t[0], &t[1], &t[2], EPS, relu)?;
            let what = format!("{shape:?} relu {relu}");
            assert_tensors_close(&fused.y, &composed.y, 1e-12, 1e-12, &what);
            assert_tensors_close(&fused.mean, &composed.mean, 1e-12, 1e-12, &what);
            assert_tensors_close(&fused.var, &composed.var, 1e-12, 1e-12, &what);
            let f = |ts: &[Tensor]| Ok(batch_norm_train(&ts[0], &ts[1], &ts[2], EPS, relu)?.y);
            let c =
                |ts: &[Tensor]| Ok(batch_norm_train_composed(&ts[0], &ts[1], &ts[2], EPS, relu)?.y);
            let (gf, gc) = (analytic_grads(&t, &f)?, analytic_grads(&t, &c)?);
            for (k, name) in ["dx", "dw", "db"].iter().enumerate() {
                assert_tensors_close(&gf[k], &gc[k], 1e-10, 1e-10, &format!("{what}: {name}"));
            }
        }
    }
    Ok(())
}

#[test]
fn statistics_are_the_biased_batch_moments() -> Result<()> {
    let t = inputs([3, 2, 4, 5], 31)?;
    let out = batch_norm_train(&t[0], &t[1], &t[2], EPS, false)?;
    let x = values(&t[0]);
    for c in 0..2 {
        let vals: Vec<f64> = (0..3)
            .flat_map(|n| x[(n * 2 + c) * 20..(n * 2 + c + 1) * 20].to_vec())
            .collect();
        let m = vals.iter().sum::<f64>() / 60.0;
        let v = vals.iter().map(|a| (a - m).powi(2)).sum::<f64>() / 60.0;
        assert!((values(&out.mean)[c] - m).abs() < 1e-12);
        assert!((values(&out.var)[c] - v).abs() < 1e-12);
    }
    Ok(())
}

#[test]
fn f32_statistics_stay_accurate_far_from_zero() -> Result<()> {
    // A large offset, and a first image whose values sit apart from the others': the one-pass
    // statistics are shifted by an estimate taken from the first image's plane only.
    let (n, c, hw) = (4, 3, 50);
    let apart =
        Tensor::new(&[0f64, 5.0, 5.0, 5.0], &candle_core::Device::Cpu)?.reshape((n, 1, 1, 1))?;
    let x = ((normal(&[n, c, 5, 10], 41) + 1000.0)?.broadcast_add(&apart)?).to_dtype(DType::F32)?;
    let ones = Tensor::ones(c, DType::F32, x.device())?;
    let out = batch_norm_train(&x, &ones, &ones.zeros_like()?, EPS, false)?;
    let xv = values(&x);
    for ch in 0..c {
        let vals: Vec<f64> = (0..n)
            .flat_map(|i| xv[(i * c + ch) * hw..(i * c + ch + 1) * hw].to_vec())
            .collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        let v = vals.iter().map(|a| (a - m).powi(2)).sum::<f64>() / vals.len() as f64;
        let (got_m, got_v) = (values(&out.mean)[ch], values(&out.var)[ch]);
        assert!(
            (got_m - m).abs() < 1e-4,
            "channel {ch}: mean {got_m} vs {m}"
        );
        assert!(
            (got_v - v).abs() < 1e-4 * v,
            "channel {ch}: variance {got_v} vs {v}"
        );
    }
    Ok(())
}

#[test]
fn gradients_match_finite_differences() {
    for relu in [false, true] {
        let t = inputs([3, 2, 3, 4], 41).unwrap();
        gradcheck(&t, |ts| {
            Ok(batch_norm_train(&ts[0], &ts[1], &ts[2], EPS, relu)?.y)
        });
    }
}

#[test]
fn strided_inputs_are_differentiable() {
    let t = inputs([2, 3, 4, 5], 51).unwrap();
    gradcheck(&t, |ts| {
        let xt = ts[0].transpose(2, 3)?;
        assert!(!xt.is_contiguous());
        Ok(batch_norm_train(&xt, &ts[1], &ts[2], EPS, true)?.y)
    });
}

#[test]
fn f32_path_matches_f64_path() {
    let t = inputs([4, 3, 6, 6], 61).unwrap();
    check_f32_matches_f64(&t, 1e-4, |ts| {
        Ok(batch_norm_train(&ts[0], &ts[1], &ts[2], EPS, true)?.y)
    });
}

#[test]
fn half_precision_inputs_keep_their_dtype() -> Result<()> {
    let t = inputs([2, 3, 4, 4], 71)?;
    for dt in [DType::F16, DType::BF16] {
        let th: Vec<Tensor> = t
            .iter()
            .map(|x| x.to_dtype(dt))
            .collect::<candle_core::Result<_>>()?;
        let out = batch_norm_train(&th[0], &th[1], &th[2], EPS, false)?;
        assert_eq!((out.y.dtype(), out.mean.dtype()), (dt, dt));
        let want = batch_norm_train_composed(&t[0], &t[1], &t[2], EPS, false)?;
        assert_tensors_close(&out.y, &want.y, 0.1, 0.05, &format!("{dt:?}"));
    }
    Ok(())
}

#[test]
fn bad_input_is_an_error() -> Result<()> {
    let t = inputs([2, 3, 2, 2], 81)?;
    let one = Tensor::ones((1, 3, 1, 1), DType::F64, &candle_core::Device::Cpu)?;
    for (what, r) in [
        (
            "rank 3",
            batch_norm_train(&t[0].flatten_from(2)?, &t[1], &t[2], EPS, false),
        ),
        (
            "weight size",
            batch_norm_train(&t[0], &t[1].narrow(0, 0, 2)?, &t[2], EPS, false),
        ),
        (
            "one value per channel",
            batch_norm_train(&one, &t[1], &t[2], EPS, false),
        ),
    ] {
        assert!(r.is_err(), "{what}: expected an error");
    }
    Ok(())
}
