//! `ops::max_pool2d`: forward and backward against a direct loop implementation of PyTorch's
//! semantics (implicit -inf padding, first maximum wins ties), candle's own max pool where it
//! applies (kernel == stride), finite differences for any kernel/stride/padding (contiguous
//! and strided input), the composed twin, f32 vs f64, half precision, and bad input.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{
    analytic_grads, assert_close, assert_tensors_close, check_f32_matches_f64, gradcheck, normal,
    values,
};
use finetune_kernels::ops::{max_pool2d, max_pool2d_composed};
use finetune_kernels::Result;

type Pair = (usize, usize);

/// Output dims and, for every output element, the flat input index it selects: windows scanned
/// row-major over the real (unpadded) elements, a strictly larger value replacing the current
/// one, so the first maximum wins.
fn reference_argmax(
    dims: &[usize],
    x: &[f64],
    k: Pair,
    s: Pair,
    p: Pair,
) -> (Vec<usize>, Vec<usize>) {
    let (n, c, h, w) = (dims[0], dims[1], dims[2], dims[3]);
    let oh = (h + 2 * p.0 - k.0) / s.0 + 1;
    let ow = (w + 2 * p.1 - k.1) / s.1 + 1;
    let mut sel = Vec::new();
    for plane in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best: Option<(usize, f64)> = None;
                for ky in 0..k.0 {
                    for kx in 0..k.1 {
                        let iy = (oy * s.0 + ky) as isize - p.0 as isize;
                        let ix = (ox * s.1 + kx) as isize - p.1 as isize;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            continue;
                        }
                        let idx = plane * h * w + iy as usize * w + ix as usize;
                        if best.is_none_or(|(_, v)| x[idx] > v) {
                            best = Some((idx, x[idx]));
                        }
                    }
                }
                sel.push(best.expect("every window holds a real element").0);
            }
        }
    }
    (vec![n, c, oh, ow], sel)
}

/// Forward values and the input gradient for upstream gradient `dy`, from [`reference_argmax`].
fn reference(
    x: &Tensor,
    dy: &[f64],
    k: Pair,
    s: Pair,
    p: Pair,
) -> (Vec<usize>, Vec<f64>, Vec<f64>) {
    let xs = values(x);
    let (dims, sel) = reference_argmax(x.dims(), &xs, k, s, p);
    let y = sel.iter().map(|&i| xs[i]).collect();
    let mut dx = vec![0.0; xs.len()];
    for (o, &i) in sel.iter().enumerate() {
        dx[i] += dy[o];
    }
    (dims, y, dx)
}

/// Checks forward and backward (with upstream gradient `dy` = a fixed ramp) against
/// [`reference`].
fn check_against_reference(x: &Tensor, k: Pair, s: Pair, p: Pair) -> Result<()> {
    let what = format!("x {:?} k {k:?} s {s:?} p {p:?}", x.dims());
    let var = candle_core::Var::from_tensor(x)?;
    let y = max_pool2d(var.as_tensor(), k, s, p)?;
    let dy_vals: Vec<f64> = (0..y.elem_count()).map(|i| 1.0 + (i % 7) as f64).collect();
    let (dims, want_y, want_dx) = reference(x, &dy_vals, k, s, p);
    assert_eq!(y.dims(), dims.as_slice(), "{what}: output shape");
    assert_close(&values(&y), &want_y, 0.0, 0.0, &format!("{what}: forward"));
    let dy = Tensor::from_vec(dy_vals, y.shape(), &Device::Cpu)?.to_dtype(y.dtype())?;
    let grads = y.mul(&dy)?.sum_all()?.backward()?;
    let dx = grads.get(var.as_tensor()).expect("gradient");
    assert_close(
        &values(dx),
        &want_dx,
        0.0,
        0.0,
        &format!("{what}: backward"),
    );
    Ok(())
}

const CONFIGS: [(Pair, Pair, Pair); 6] = [
    ((3, 3), (2, 2), (1, 1)), // the ResNet stem
    ((2, 2), (2, 2), (0, 0)),
    ((3, 3), (1, 1), (1, 1)),
    ((2, 3), (1, 2), (1, 1)),
    ((3, 2), (3, 1), (0, 1)),
    ((1, 1), (2, 2), (0, 0)),
];

#[test]
fn forward_and_backward_match_reference_on_random_input() -> Result<()> {
    for (i, (k, s, p)) in CONFIGS.into_iter().enumerate() {
        for (j, shape) in [[2, 3, 9, 9], [1, 2, 8, 11], [1, 1, 5, 4]]
            .iter()
            .enumerate()
        {
            let x = normal(shape, (10 * i + j) as u64);
            check_against_reference(&x, k, s, p)?;
        }
    }
    Ok(())
}

#[test]
fn wide_rows_match_reference_in_f32_and_f64() -> Result<()> {
    // Rows long enough for full vector registers plus a remainder (the kernel scans each
    // kernel tap across a whole output row at once), with clipped windows at both ends.
    // Horizontal strides 3 and 4 as well: strided rows are scanned as phases of the row.
    let more = [
        ((2, 4), (1, 3), (1, 2)),
        ((3, 3), (3, 3), (1, 1)),
        ((1, 5), (2, 4), (0, 2)),
    ];
    for (i, (k, s, p)) in CONFIGS.into_iter().chain(more).enumerate() {
        for shape in [[1, 2, 7, 75], [2, 1, 12, 40]] {
            let x = normal(&shape, 100 + i as u64);
            check_against_reference(&x, k, s, p)?;
            check_against_reference(&x.to_dtype(DType::F32)?, k, s, p)?;
        }
    }
    Ok(())
}

#[test]
fn windows_of_minus_infinity_route_the_gradient_to_their_first_real_element() -> Result<()> {
    // Whole windows of -inf: no value beats the initial -inf, so the first real element of
    // each such window must be selected, as the reference does.
    let mut v = values(&normal(&[1, 2, 6, 40], 7));
    for (i, x) in v.iter_mut().enumerate() {
        if (i / 40) % 6 < 3 {
            *x = f64::NEG_INFINITY;
        }
    }
    let x = Tensor::from_vec(v, (1, 2, 6, 40), &Device::Cpu)?;
    for (k, s, p) in CONFIGS {
        check_against_reference(&x, k, s, p)?;
    }
    Ok(())
}

#[test]
fn nan_in_a_window_propagates_to_its_output() -> Result<()> {
    let mut v = values(&normal(&[1, 1, 5, 33], 11));
    v[2 * 33 + 20] = f64::NAN;
    let x = Tensor::from_vec(v, (1, 1, 5, 33), &Device::Cpu)?;
    for dtype in [DType::F64, DType::F32] {
        let y = values(&max_pool2d(&x.to_dtype(dtype)?, (3, 3), (2, 2), (1, 1))?);
        // Output windows holding input (2, 20): rows oy = 1 (rows 1..=3), columns ox = 10
        // (columns 19..=21); of a 3 × 17 output.
        for (i, v) in y.iter().enumerate() {
            assert_eq!(v.is_nan(), i == 17 + 10, "{dtype:?} output {i}: {v}");
        }
    }
    Ok(())
}

#[test]
fn ties_route_the_whole_gradient_to_the_first_maximum() -> Result<()> {
    // Constant input: every window is one big tie.
    let x = Tensor::ones((1, 1, 4, 4), DType::F64, &Device::Cpu)?;
    let var = candle_core::Var::from_tensor(&x)?;
    let g = max_pool2d(var.as_tensor(), (2, 2), (2, 2), (0, 0))?
        .sum_all()?
        .backward()?;
    #[rustfmt::skip]
    let want = [
        1.0, 0.0, 1.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
        1.0, 0.0, 1.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
    ];
    assert_close(
        &values(g.get(var.as_tensor()).unwrap()),
        &want,
        0.0,
        0.0,
        "2x2 ties",
    );
    // Overlapping padded windows with ties, and inputs with few distinct values.
    for (k, s, p) in CONFIGS {
        check_against_reference(
            &Tensor::ones((1, 2, 5, 5), DType::F64, &Device::Cpu)?,
            k,
            s,
            p,
        )?;
        let few: Vec<f64> = (0..2 * 3 * 7 * 6).map(|i| ((i * 7) % 3) as f64).collect();
        let x = Tensor::from_vec(few, (2, 3, 7, 6), &Device::Cpu)?;
        check_against_reference(&x, k, s, p)?;
    }
    // Row-major order, not column-major: (0, 2) wins over (1, 0).
    let x = Tensor::new(&[[[[0.0f64, 0.0, 5.0], [5.0, 0.0, 0.0]]]], &Device::Cpu)?;
    let var = candle_core::Var::from_tensor(&x)?;
    let g = max_pool2d(var.as_tensor(), (2, 3), (1, 1), (0, 0))?
        .sum_all()?
        .backward()?;
    assert_close(
        &values(g.get(var.as_tensor()).unwrap()),
        &[0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        0.0,
        0.0,
        "first in row-major order",
    );
    Ok(())
}

#[test]
fn padding_is_never_selected() -> Result<()> {
    // All-negative input: a zero (or -inf) from the padding must never come out.
    let x = (normal(&[1, 2, 6, 6], 3).abs()? * -1.0)?.affine(1.0, -2.0)?;
    let y = values(&max_pool2d(&x, (3, 3), (2, 2), (1, 1))?);
    assert!(y.iter().all(|&v| v <= -2.0 && v.is_finite()), "{y:?}");
    check_against_reference(&x, (3, 3), (2, 2), (1, 1))?;
    Ok(())
}

#[test]
fn forward_matches_candle_when_kernel_equals_stride() -> Result<()> {
    let x = normal(&[2, 3, 8, 12], 5).to_dtype(DType::F32)?;
    assert_tensors_close(
        &max_pool2d(&x, (2, 2), (2, 2), (0, 0))?,
        &x.max_pool2d(2)?,
        1e-6,
        0.0,
        "2x2",
    );
    assert_tensors_close(
        &max_pool2d(&x, (2, 3), (2, 3), (0, 0))?,
        &x.max_pool2d_with_stride((2, 3), (2, 3))?,
        1e-6,
        0.0,
        "2x3",
    );
    Ok(())
}

#[test]
fn gradients_match_finite_differences() {
    for (i, (k, s, p)) in CONFIGS.into_iter().enumerate() {
        let x = normal(&[2, 2, 7, 6], 40 + i as u64);
        gradcheck(&[x], |t| max_pool2d(&t[0], k, s, p));
    }
}

#[test]
fn gradients_match_finite_differences_for_strided_inputs() {
    let x = normal(&[2, 6, 7, 3], 51);
    gradcheck(std::slice::from_ref(&x), |t| {
        // [N, C, W, H] -> [N, C, H, W] and [N, H, C, W]-like permutations.
        let xt = t[0].transpose(2, 3)?;
        assert!(!xt.is_contiguous());
        max_pool2d(&xt, (3, 3), (2, 2), (1, 1))
    });
    gradcheck(std::slice::from_ref(&x), |t| {
        let xt = t[0].transpose(1, 2)?.narrow(1, 1, 4)?;
        assert!(!xt.is_contiguous());
        max_pool2d(&xt, (2, 2), (1, 2), (1, 0))
    });
}

#[test]
fn fused_and_composed_agree_including_ties() -> Result<()> {
    let few: Vec<f64> = (0..2 * 3 * 9 * 8).map(|i| ((i * 5) % 4) as f64).collect();
    let tied = Tensor::from_vec(few, (2, 3, 9, 8), &Device::Cpu)?;
    for x in [normal(&[2, 3, 9, 8], 61), tied] {
        for (k, s, p) in CONFIGS {
            let inputs = [x.clone()];
            let fused = |t: &[Tensor]| max_pool2d(&t[0], k, s, p);
            let composed = |t: &[Tensor]| max_pool2d_composed(&t[0], k, s, p);
            assert_tensors_close(&fused(&inputs)?, &composed(&inputs)?, 0.0, 0.0, "forward");
            let a = analytic_grads(&inputs, &fused)?;
            let b = analytic_grads(&inputs, &composed)?;
            assert_tensors_close(
                &a[0],
                &b[0],
                1e-15,
                0.0,
                &format!("gradient {k:?} {s:?} {p:?}"),
            );
        }
    }
    Ok(())
}

#[test]
fn f32_path_matches_f64_path() {
    let x = normal(&[2, 3, 10, 10], 71);
    check_f32_matches_f64(&[x], 1e-6, |t| max_pool2d(&t[0], (3, 3), (2, 2), (1, 1)));
}

#[test]
fn half_precision_inputs_are_accepted_and_differentiable() -> Result<()> {
    let x = normal(&[1, 2, 6, 6], 81);
    for dt in [DType::F16, DType::BF16] {
        // Pooling only moves values, so half precision is exact against its own input.
        let xh = x.to_dtype(dt)?;
        check_against_reference(&xh, (3, 3), (2, 2), (1, 1))?;
        assert_eq!(max_pool2d(&xh, (3, 3), (2, 2), (1, 1))?.dtype(), dt);
    }
    Ok(())
}

#[test]
fn bad_input_is_an_error() -> Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::zeros((1, 1, 4, 4), DType::F32, &dev)?;
    assert!(max_pool2d(&x, (3, 3), (2, 2), (1, 1)).is_ok());
    for (what, r) in [
        ("rank 3", max_pool2d(&x.squeeze(0)?, (2, 2), (2, 2), (0, 0))),
        ("zero kernel", max_pool2d(&x, (0, 2), (2, 2), (0, 0))),
        ("zero stride", max_pool2d(&x, (2, 2), (2, 0), (0, 0))),
        (
            "padding over half the kernel",
            max_pool2d(&x, (3, 3), (1, 1), (2, 1)),
        ),
        (
            "kernel larger than input",
            max_pool2d(&x, (5, 5), (1, 1), (0, 0)),
        ),
        (
            "empty input",
            max_pool2d(
                &Tensor::zeros((1, 1, 0, 4), DType::F32, &dev)?,
                (1, 1),
                (1, 1),
                (0, 0),
            ),
        ),
        (
            "integer input",
            max_pool2d(&x.to_dtype(DType::U32)?, (2, 2), (2, 2), (0, 0)),
        ),
        (
            "composed, rank 3",
            max_pool2d_composed(&x.squeeze(0)?, (2, 2), (2, 2), (0, 0)),
        ),
    ] {
        assert!(r.is_err(), "{what}: expected an error");
    }
    Ok(())
}
