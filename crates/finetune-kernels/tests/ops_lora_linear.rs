//! `ops::lora_linear`: the forward equals its composition (linear + dropout + two adapter
//! products + sum) with and without dropout for the same random stream; the gradients of the
//! input, weight, bias, `lora_A` and `lora_B` match central finite differences (dropout on:
//! the mask regenerated from its seed); a frozen weight gets no gradient; bad shapes are one
//! clear error.

mod common;

use candle_core::{DType, Tensor, Var};
use common::{assert_tensors_close, gradcheck, normal, uniform};
use finetune_kernels::ops::{lora_linear, lora_linear_composed, LoraArgs};
use finetune_kernels::{Result, Rng};

fn args<'a>(a: &'a Tensor, b: &'a Tensor, p: f64) -> LoraArgs<'a> {
    LoraArgs {
        a,
        b,
        scale: 1.75,
        p,
    }
}

#[test]
fn forward_matches_the_composition_with_and_without_dropout() -> Result<()> {
    let x = normal(&[2, 5, 9], 1);
    let w = normal(&[7, 9], 2);
    let bias = uniform(&[7], -1.0, 1.0, 3);
    let (a, b) = (normal(&[3, 9], 4), normal(&[7, 3], 5));
    for (p, train) in [(0.0, true), (0.4, false), (0.4, true)] {
        for bias in [Some(&bias), None] {
            let (mut r1, mut r2) = (Rng::seed_from_u64(9), Rng::seed_from_u64(9));
            let y = lora_linear(&x, &w, bias, args(&a, &b, p), train, &mut r1)?;
            let want = lora_linear_composed(&x, &w, bias, args(&a, &b, p), train, &mut r2)?;
            assert_eq!(y.dims(), [2, 5, 7]);
            let what = format!("p {p}, train {train}, bias {}", bias.is_some());
            assert_tensors_close(&y, &want, 1e-12, 1e-12, &what);
            // Both drew the same number of seeds from the stream.
            assert_eq!(r1.next_u64(), r2.next_u64(), "{what}");
        }
    }
    // f32 through the same kernels.
    let f = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    let (x32, w32, a32, b32) = (f(&x), f(&w), f(&a), f(&b));
    let y32 = lora_linear(
        &x32,
        &w32,
        None,
        args(&a32, &b32, 0.0),
        false,
        &mut Rng::seed_from_u64(0),
    )?;
    let want = lora_linear_composed(
        &x,
        &w,
        None,
        args(&a, &b, 0.0),
        false,
        &mut Rng::seed_from_u64(0),
    )?;
    assert_tensors_close(&y32, &want, 1e-4, 1e-4, "f32");
    Ok(())
}

#[test]
fn gradients_match_finite_differences() {
    let inputs = [
        normal(&[2, 3, 6], 6),
        normal(&[5, 6], 7),
        uniform(&[5], -1.0, 1.0, 8),
        normal(&[2, 6], 9),
        normal(&[5, 2], 10),
    ];
    for p in [0.0, 0.3] {
        gradcheck(&inputs, |t| {
            // The same seed every call: the same mask for every finite difference.
            let mut rng = Rng::seed_from_u64(11);
            lora_linear(
                &t[0],
                &t[1],
                Some(&t[2]),
                args(&t[3], &t[4], p),
                true,
                &mut rng,
            )
        });
    }
}

#[test]
fn a_frozen_weight_gets_no_gradient_and_the_rest_match_the_composition() -> Result<()> {
    let x = Var::from_tensor(&normal(&[4, 6], 12))?;
    let w = normal(&[5, 6], 13);
    let a = Var::from_tensor(&normal(&[2, 6], 14))?;
    let b = Var::from_tensor(&normal(&[5, 2], 15))?;
    let g = normal(&[4, 5], 16);
    let run = |fused: bool| -> Result<Vec<Tensor>> {
        let mut rng = Rng::seed_from_u64(17);
        let l = args(a.as_tensor(), b.as_tensor(), 0.25);
        let y = if fused {
            lora_linear(&x, &w, None, l, true, &mut rng)?
        } else {
            lora_linear_composed(&x, &w, None, l, true, &mut rng)?
        };
        let grads = (y * &g)?.sum_all()?.backward()?;
        assert!(grads.get(&w).is_none(), "the frozen weight got a gradient");
        Ok([x.as_tensor(), a.as_tensor(), b.as_tensor()]
            .map(|v| grads.get(v).expect("a gradient").clone())
            .into())
    };
    for (got, want) in run(true)?.iter().zip(run(false)?) {
        assert_tensors_close(got, &want, 1e-12, 1e-12, "fused vs composed gradient");
    }
    Ok(())
}

#[test]
fn bad_shapes_are_one_clear_error() {
    let x = normal(&[3, 6], 1);
    let w = normal(&[5, 6], 2);
    let mut rng = Rng::seed_from_u64(0);
    for (a, b, p, needle) in [
        (
            normal(&[2, 7], 3),
            normal(&[5, 2], 4),
            0.0,
            "lora_A must be [r ≥ 1, 6]",
        ),
        (
            normal(&[2, 6], 3),
            normal(&[5, 3], 4),
            0.0,
            "lora_B must be [5, 2]",
        ),
        (
            normal(&[2, 6], 3),
            normal(&[5, 2], 4),
            1.0,
            "p must be in [0, 1)",
        ),
    ] {
        let err = lora_linear(&x, &w, None, args(&a, &b, p), true, &mut rng)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
    let (a, b) = (normal(&[2, 6], 3), normal(&[5, 2], 4));
    let bad_bias = normal(&[4], 5);
    let err = lora_linear(&x, &w, Some(&bad_bias), args(&a, &b, 0.0), true, &mut rng).unwrap_err();
    assert!(err.to_string().contains("bias must be [5]"), "{err}");
    let err = lora_linear(
        &normal(&[3, 4], 6),
        &w,
        None,
        args(&a, &b, 0.0),
        true,
        &mut rng,
    )
    .unwrap_err();
    assert!(err.to_string().contains("input must end in 6"), "{err}");
    let a32 = a.to_dtype(DType::F32).unwrap();
    let err = lora_linear(&x, &w, None, args(&a32, &b, 0.0), true, &mut rng).unwrap_err();
    assert!(err.to_string().contains("x's dtype"), "{err}");
}
