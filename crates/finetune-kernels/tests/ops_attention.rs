//! `ops::attention`: the fused multi-head attention against its composition (with and without
//! key mask and dropout, same random stream), gradients of q, k and v against finite
//! differences, f32 vs f64, and shape errors.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{assert_tensors_close, check_f32_matches_f64, gradcheck_tol, normal};
use finetune_kernels::ops::{attention, attention_composed};
use finetune_kernels::{Result, Rng};

/// An additive key mask `[b, t]`: the last `pad[i]` keys of sequence `i` are masked.
fn key_mask(b: usize, t: usize, pad: &[usize]) -> Tensor {
    let v: Vec<f64> = (0..b * t)
        .map(|i| {
            if i % t >= t - pad[i / t] {
                f32::MIN as f64
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(v, (b, t), &Device::Cpu).unwrap()
}

fn qkv(shape: &[usize], seed: u64) -> [Tensor; 3] {
    [
        normal(shape, seed),
        normal(shape, seed + 1),
        normal(shape, seed + 2),
    ]
}

#[test]
fn forward_and_backward_match_the_composition() -> Result<()> {
    let (b, t, heads, d) = (2, 7, 3, 4);
    let [q, k, v] = qkv(&[b, t, heads * d], 1);
    let mask = key_mask(b, t, &[0, 3]);
    for (p, train) in [(0.0, true), (0.3, true), (0.3, false)] {
        for m in [None, Some(&mask)] {
            let fused = |x: &[Tensor]| {
                attention(
                    &x[0],
                    &x[1],
                    &x[2],
                    heads,
                    m,
                    p,
                    train,
                    &mut Rng::seed_from_u64(9),
                )
            };
            let composed = |x: &[Tensor]| {
                attention_composed(
                    &x[0],
                    &x[1],
                    &x[2],
                    heads,
                    m,
                    p,
                    train,
                    &mut Rng::seed_from_u64(9),
                )
            };
            let what = format!("p {p} train {train} mask {}", m.is_some());
            let inputs = [q.clone(), k.clone(), v.clone()];
            assert_tensors_close(&fused(&inputs)?, &composed(&inputs)?, 1e-12, 1e-12, &what);
            let gf = common::analytic_grads(&inputs, &fused)?;
            let gc = common::analytic_grads(&inputs, &composed)?;
            for (i, (a, c)) in gf.iter().zip(&gc).enumerate() {
                assert_tensors_close(a, c, 1e-12, 1e-10, &format!("{what}: gradient {i}"));
            }
        }
    }
    Ok(())
}

#[test]
fn dropout_draws_one_seed_like_the_dropout_op() -> Result<()> {
    let [q, k, v] = qkv(&[1, 4, 4], 5);
    let mut rng = Rng::seed_from_u64(3);
    attention(&q, &k, &v, 2, None, 0.5, true, &mut rng)?;
    let mut expected = Rng::seed_from_u64(3);
    expected.next_u64();
    assert_eq!(rng.next_u64(), expected.next_u64());
    // No draw in evaluation or with p = 0.
    let mut rng = Rng::seed_from_u64(3);
    attention(&q, &k, &v, 2, None, 0.5, false, &mut rng)?;
    attention(&q, &k, &v, 2, None, 0.0, true, &mut rng)?;
    assert_eq!(rng.next_u64(), Rng::seed_from_u64(3).next_u64());
    Ok(())
}

#[test]
fn gradients_match_finite_differences() {
    let (b, t, heads, d) = (2, 5, 2, 3);
    let [q, k, v] = qkv(&[b, t, heads * d], 20);
    let mask = key_mask(b, t, &[1, 0]);
    for p in [0.0, 0.25] {
        gradcheck_tol(&[q.clone(), k.clone(), v.clone()], 1e-6, 1e-5, |x| {
            attention(
                &x[0],
                &x[1],
                &x[2],
                heads,
                Some(&mask),
                p,
                true,
                &mut Rng::seed_from_u64(4),
            )
        });
    }
}

#[test]
fn gradients_through_strided_inputs() {
    // q, k, v as transposed views: the op makes them contiguous first.
    let [q, k, v] = qkv(&[4, 3, 2], 30);
    gradcheck_tol(&[q, k, v], 1e-6, 1e-5, |x| {
        let tr = |t: &Tensor| t.transpose(0, 2).and_then(|t| t.transpose(0, 1));
        attention(
            &tr(&x[0])?,
            &tr(&x[1])?,
            &tr(&x[2])?,
            2,
            None,
            0.0,
            true,
            &mut Rng::seed_from_u64(1),
        )
    });
}

#[test]
fn f32_matches_f64() {
    let [q, k, v] = qkv(&[2, 16, 24], 40);
    let mask = key_mask(2, 16, &[5, 0]);
    check_f32_matches_f64(&[q, k, v], 1e-4, |x| {
        let m = mask.to_dtype(x[0].dtype())?;
        attention(
            &x[0],
            &x[1],
            &x[2],
            4,
            Some(&m),
            0.1,
            true,
            &mut Rng::seed_from_u64(2),
        )
    });
}

#[test]
fn frozen_inputs_get_no_gradient() -> Result<()> {
    let [q, k, v] = qkv(&[1, 3, 4], 50);
    let vq = candle_core::Var::from_tensor(&q)?;
    let y = attention(
        vq.as_tensor(),
        &k,
        &v,
        2,
        None,
        0.0,
        true,
        &mut Rng::seed_from_u64(1),
    )?;
    let grads = y.sum_all()?.backward()?;
    assert!(grads.get(vq.as_tensor()).is_some());
    assert!(grads.get(&k).is_none() && grads.get(&v).is_none());
    Ok(())
}

#[test]
fn bad_shapes_are_errors() {
    let [q, k, v] = qkv(&[2, 3, 6], 60);
    let mut rng = Rng::seed_from_u64(1);
    let err = attention(&q, &k, &v, 4, None, 0.0, true, &mut rng)
        .unwrap_err()
        .to_string();
    assert!(err.contains("multiple of 4 heads"), "{err}");
    let bad_mask = Tensor::zeros((2, 4), DType::F64, &Device::Cpu).unwrap();
    let err = attention(&q, &k, &v, 2, Some(&bad_mask), 0.0, true, &mut rng)
        .unwrap_err()
        .to_string();
    assert!(err.contains("key mask"), "{err}");
    let err = attention(
        &q,
        &k.narrow(1, 0, 2).unwrap(),
        &v,
        2,
        None,
        0.0,
        true,
        &mut rng,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("one shape"), "{err}");
}
