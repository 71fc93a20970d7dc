//! `ops::dropout`: identity in eval, drop rate ≈ p in training with survivors scaled by
//! 1/(1-p), reproducible from the RNG, gradient = mask·scale (also against finite
//! differences), strided and half-precision input, and bad p.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{analytic_grads, assert_close, gradcheck, normal, uniform, values};
use finetune_kernels::ops::{dropout, dropout_composed};
use finetune_kernels::{Result, Rng};

/// Nonzero inputs, so a zero output can only come from the mask.
fn nonzero(shape: &[usize], seed: u64) -> Tensor {
    uniform(shape, 0.5, 2.0, seed)
}

#[test]
fn eval_mode_and_p_zero_are_the_identity_and_draw_nothing() -> Result<()> {
    let x = normal(&[4, 5], 1);
    let mut rng = Rng::seed_from_u64(7);
    let before = rng.state();
    for (p, train) in [(0.5, false), (0.0, true), (0.0, false), (0.9, false)] {
        let y = dropout(&x, p, train, &mut rng)?;
        assert_eq!(values(&y), values(&x), "p {p} train {train}");
    }
    assert_eq!(
        rng.state(),
        before,
        "eval / p = 0 must not consume randomness"
    );
    Ok(())
}

#[test]
fn training_drops_about_p_and_scales_survivors() -> Result<()> {
    let n = 100_000;
    let x = nonzero(&[100, 1000], 2);
    let xs = values(&x);
    let mut rng = Rng::seed_from_u64(3);
    for p in [0.1, 0.5, 0.9] {
        let y = values(&dropout(&x, p, true, &mut rng)?);
        let zeros = y.iter().filter(|&&v| v == 0.0).count();
        let frac = zeros as f64 / n as f64;
        let sigma = (p * (1.0 - p) / n as f64).sqrt();
        assert!(
            (frac - p).abs() < 5.0 * sigma,
            "p {p}: dropped fraction {frac}"
        );
        for (&yi, &xi) in y.iter().zip(&xs) {
            if yi != 0.0 {
                assert!(
                    (yi - xi / (1.0 - p)).abs() <= 1e-15 * yi.abs(),
                    "p {p}: {yi} vs {xi}"
                );
            }
        }
        // The mean is preserved in expectation.
        let (my, mx) = (
            y.iter().sum::<f64>() / n as f64,
            xs.iter().sum::<f64>() / n as f64,
        );
        assert!(
            (my - mx).abs() < 0.02 * mx / (1.0 - p).sqrt(),
            "p {p}: mean {my} vs {mx}"
        );
    }
    Ok(())
}

#[test]
fn the_mask_is_reproducible_from_the_rng() -> Result<()> {
    let x = nonzero(&[30, 40], 4);
    let run = |seed: u64| -> Result<Vec<f64>> {
        let mut rng = Rng::seed_from_u64(seed);
        Ok(values(&dropout(&x, 0.3, true, &mut rng)?))
    };
    assert_eq!(run(11)?, run(11)?, "same seed, same mask");
    assert_ne!(run(11)?, run(12)?, "different seed, different mask");
    // Successive calls on one generator draw different masks; a restored state replays them.
    let mut rng = Rng::seed_from_u64(13);
    let saved = rng.state();
    let a = values(&dropout(&x, 0.3, true, &mut rng)?);
    let b = values(&dropout(&x, 0.3, true, &mut rng)?);
    assert_ne!(a, b);
    let mut replay = Rng::from_state(saved);
    assert_eq!(values(&dropout(&x, 0.3, true, &mut replay)?), a);
    assert_eq!(values(&dropout(&x, 0.3, true, &mut replay)?), b);
    assert_eq!(replay, rng);
    Ok(())
}

#[test]
fn gradient_is_mask_times_scale() -> Result<()> {
    let x = nonzero(&[50, 30], 5);
    let p = 0.4;
    let seed = 21;
    let f = |t: &[Tensor]| dropout(&t[0], p, true, &mut Rng::seed_from_u64(seed));
    let y = values(&f(std::slice::from_ref(&x))?);
    // x has no zeros, so the forward output shows the mask.
    let mask_scale: Vec<f64> = y
        .iter()
        .map(|&y| if y == 0.0 { 0.0 } else { 1.0 / (1.0 - p) })
        .collect();
    // dL/dx for L = Σ y: exactly the mask times the scale.
    let var = candle_core::Var::from_tensor(&x)?;
    let g = dropout(var.as_tensor(), p, true, &mut Rng::seed_from_u64(seed))?
        .sum_all()?
        .backward()?;
    assert_close(
        &values(g.get(var.as_tensor()).unwrap()),
        &mask_scale,
        1e-15,
        1e-15,
        "grad",
    );
    assert!(mask_scale.contains(&0.0) && mask_scale.iter().any(|&v| v > 1.0));
    // And against finite differences of a weighted sum.
    gradcheck(&[normal(&[6, 7], 6)], |t| {
        dropout(&t[0], 0.3, true, &mut Rng::seed_from_u64(seed))
    });
    Ok(())
}

#[test]
fn fused_and_composed_give_identical_results_across_task_boundaries() -> Result<()> {
    // More elements than one parallel chunk, so chunk offsets matter.
    let x = nonzero(&[7, 10_000], 7);
    let a = dropout(&x, 0.25, true, &mut Rng::seed_from_u64(31))?;
    let b = dropout_composed(&x, 0.25, true, &mut Rng::seed_from_u64(31))?;
    assert_eq!(values(&a), values(&b));
    let ga = analytic_grads(std::slice::from_ref(&x), &|t: &[Tensor]| {
        dropout(&t[0], 0.25, true, &mut Rng::seed_from_u64(31))
    })?;
    let gb = analytic_grads(&[x], &|t: &[Tensor]| {
        dropout_composed(&t[0], 0.25, true, &mut Rng::seed_from_u64(31))
    })?;
    assert_eq!(values(&ga[0]), values(&gb[0]));
    Ok(())
}

#[test]
fn strided_input_is_masked_by_logical_position() -> Result<()> {
    let x = nonzero(&[9, 13], 8);
    let xt = x.t()?;
    assert!(!xt.is_contiguous());
    let a = dropout(&xt, 0.5, true, &mut Rng::seed_from_u64(41))?;
    let b = dropout(&xt.contiguous()?, 0.5, true, &mut Rng::seed_from_u64(41))?;
    assert_eq!(a.dims(), &[13, 9]);
    assert_eq!(values(&a), values(&b));
    gradcheck(&[x], |t| {
        dropout(&t[0].t()?, 0.5, true, &mut Rng::seed_from_u64(41))
    });
    Ok(())
}

#[test]
fn half_precision_inputs_are_accepted_and_differentiable() -> Result<()> {
    let x = nonzero(&[40, 50], 9);
    for dt in [DType::F16, DType::BF16] {
        let xh = x.to_dtype(dt)?;
        let y = dropout(&xh, 0.5, true, &mut Rng::seed_from_u64(51))?;
        assert_eq!(y.dtype(), dt);
        let yv = values(&y);
        let frac = yv.iter().filter(|&&v| v == 0.0).count() as f64 / yv.len() as f64;
        assert!((frac - 0.5).abs() < 0.05, "{dt:?}: {frac}");
        for (&yi, xi) in yv.iter().zip(values(&xh)) {
            assert!(yi == 0.0 || yi == 2.0 * xi, "{dt:?}: {yi} vs 2·{xi}");
        }
        let g = analytic_grads(&[xh], &|t: &[Tensor]| {
            dropout(&t[0], 0.5, true, &mut Rng::seed_from_u64(51))
        })?;
        // Same positions dropped in the gradient as in the output.
        for (gi, &yi) in values(&g[0]).iter().zip(&yv) {
            assert_eq!(*gi == 0.0, yi == 0.0);
        }
    }
    Ok(())
}

#[test]
fn bad_p_is_an_error_in_training_and_in_eval() -> Result<()> {
    let x = Tensor::ones((2, 2), DType::F32, &Device::Cpu)?;
    let mut rng = Rng::seed_from_u64(1);
    for p in [1.0, 1.5, -0.1, f64::NAN, f64::INFINITY] {
        for train in [true, false] {
            assert!(
                dropout(&x, p, train, &mut rng).is_err(),
                "p {p} train {train}"
            );
            assert!(dropout_composed(&x, p, train, &mut rng).is_err());
        }
    }
    let ints = Tensor::ones((2, 2), DType::U32, &Device::Cpu)?;
    assert!(dropout(&ints, 0.5, true, &mut rng).is_err());
    Ok(())
}
