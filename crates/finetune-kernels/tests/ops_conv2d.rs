//! `ops::conv2d`: forward and both gradients against candle's own `conv2d` (f32 at ResNet's
//! geometries, f64 elsewhere), finite differences in f64 for every geometry ResNet uses plus
//! dilation and odd sizes, strided inputs, a single image (multithreaded GEMM path), the
//! gradients skipped for inputs that need none, f32 vs f64, half precision, and bad input.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::{
    analytic_grads, assert_tensors_close, check_f32_matches_f64, gradcheck, normal, values,
};
use finetune_kernels::ops::{conv2d, conv2d_candle};
use finetune_kernels::Result;

/// (input [N, C, H, W], weights [Co, C, k, k], stride, padding, dilation).
type Case = ([usize; 4], [usize; 4], usize, usize, usize);

/// What ResNet runs (stem 7×7/2 p3, 3×3/1 and /2 p1, 1×1/1 and /2) and a few others, at small
/// sizes. Output rows up to 8 wide take the gather-table im2col, wider ones the row copies
/// (with phases under a stride); maps of 1×1, 2×2 under a stride and 1 row drop the kernel
/// taps that read only padding.
const CASES: [Case; 18] = [
    ([2, 3, 12, 11], [4, 3, 7, 7], 2, 3, 1),
    ([2, 3, 13, 13], [4, 3, 7, 7], 2, 3, 1),
    ([2, 4, 6, 6], [5, 4, 3, 3], 1, 1, 1),
    ([3, 4, 7, 6], [3, 4, 3, 3], 2, 1, 1),
    ([2, 5, 5, 4], [6, 5, 1, 1], 1, 0, 1),
    ([2, 5, 7, 7], [3, 5, 1, 1], 2, 0, 1),
    ([1, 3, 9, 8], [2, 3, 3, 3], 1, 2, 2),
    ([2, 2, 7, 5], [3, 2, 2, 2], 3, 0, 1),
    ([2, 2, 5, 5], [2, 2, 5, 5], 1, 0, 1),
    ([3, 2, 4, 4], [2, 2, 3, 3], 1, 0, 1),
    ([2, 3, 3, 20], [2, 3, 3, 3], 2, 1, 1),
    ([2, 3, 5, 21], [3, 3, 3, 3], 2, 1, 1),
    ([2, 2, 5, 19], [3, 2, 3, 3], 1, 1, 1),
    ([2, 4, 1, 1], [3, 4, 3, 3], 1, 1, 1),
    ([2, 4, 2, 2], [3, 4, 3, 3], 2, 1, 1),
    ([2, 3, 1, 5], [2, 3, 3, 3], 1, 1, 1),
    ([1, 2, 1, 12], [2, 2, 3, 3], 1, 1, 1),
    ([1, 2, 1, 1], [2, 2, 1, 1], 3, 2, 1),
];

fn inputs(case: &Case, seed: u64, dtype: DType) -> Result<(Tensor, Tensor)> {
    let (xs, ws, ..) = case;
    Ok((
        normal(xs, seed).to_dtype(dtype)?,
        normal(ws, seed + 1).to_dtype(dtype)?,
    ))
}

/// Output and both gradients of `Σ r·f(x, w)` for a fixed random `r`.
fn out_and_grads(
    x: &Tensor,
    w: &Tensor,
    f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<(Tensor, Tensor, Tensor)> {
    let y = f(x, w)?;
    let g = analytic_grads(&[x.clone(), w.clone()], &|t: &[Tensor]| f(&t[0], &t[1]))?;
    Ok((y, g[0].clone(), g[1].clone()))
}

/// Our forward and both gradients against candle's in f64, for `case`.
fn check_against_candle_f64(case: &Case, seed: u64) -> Result<()> {
    let (x, w) = inputs(case, seed, DType::F64)?;
    let (s, p, d) = (case.2, case.3, case.4);
    let what = format!("{case:?}");
    if case.0[2] != case.0[3] {
        // candle 0.11.1's conv2d backward sizes the input gradient's width with the
        // height's output padding, so it fails on non-square inputs whose two remainders
        // differ: compare the forward only (finite differences check our gradients).
        assert_tensors_close(
            &conv2d(&x, &w, s, p, d)?,
            &conv2d_candle(&x, &w, s, p, d)?,
            1e-12,
            1e-12,
            &format!("{what}: y"),
        );
        return Ok(());
    }
    let ours = out_and_grads(&x, &w, |x, w| conv2d(x, w, s, p, d))?;
    let theirs = out_and_grads(&x, &w, |x, w| conv2d_candle(x, w, s, p, d))?;
    assert_tensors_close(&ours.0, &theirs.0, 1e-12, 1e-12, &format!("{what}: y"));
    assert_tensors_close(&ours.1, &theirs.1, 1e-12, 1e-12, &format!("{what}: dx"));
    assert_tensors_close(&ours.2, &theirs.2, 1e-12, 1e-12, &format!("{what}: dw"));
    Ok(())
}

#[test]
fn matches_candle_forward_and_gradients_in_f64() -> Result<()> {
    for (i, case) in CASES.iter().enumerate() {
        check_against_candle_f64(case, 10 * i as u64)?;
    }
    Ok(())
}

#[test]
fn tap_gemms_match_candle_and_finite_differences() -> Result<()> {
    // Stride-1 convolutions into maps up to 28 wide run as GEMMs per kernel tap and output
    // row: "same" padding on a non-square map (the centre column's taps make one run of whole
    // rows), no padding (input rows longer than output rows: a run per row for every tap), a
    // dilated kernel, a 3×2 kernel whose rows differ in length on both sides, a 2×2 map where
    // each tap of a 3×3 kernel sees part of it, and a 1×1 map where only the centre tap does.
    let cases: [Case; 7] = [
        ([2, 3, 5, 7], [4, 3, 3, 3], 1, 1, 1),
        ([2, 3, 6, 6], [4, 3, 3, 3], 1, 1, 1),
        ([3, 2, 6, 5], [3, 2, 3, 3], 1, 0, 1),
        ([2, 2, 7, 7], [3, 2, 3, 3], 1, 2, 2),
        ([2, 3, 4, 6], [2, 3, 3, 2], 1, 1, 1),
        ([4, 3, 2, 2], [5, 3, 3, 3], 1, 1, 1),
        ([3, 4, 1, 1], [2, 4, 3, 3], 1, 1, 1),
    ];
    for (i, case) in cases.iter().enumerate() {
        check_against_candle_f64(case, 800 + 10 * i as u64)?;
        let (x, w) = inputs(case, 900 + 10 * i as u64, DType::F64)?;
        gradcheck(&[x, w], |t| conv2d(&t[0], &t[1], 1, case.3, case.4));
    }
    Ok(())
}

#[test]
fn matches_candle_in_f32_at_resnet_shapes() -> Result<()> {
    // Stem, a 3×3 at 56×56 (shifted GEMMs), 28×28 and 7×7 (tap GEMMs), a stride-2 3×3 and its
    // 1×1/2 downsample, a bottleneck 1×1.
    let cases: [Case; 7] = [
        ([2, 3, 64, 64], [16, 3, 7, 7], 2, 3, 1),
        ([2, 8, 56, 56], [8, 8, 3, 3], 1, 1, 1),
        ([2, 16, 28, 28], [16, 16, 3, 3], 1, 1, 1),
        ([3, 64, 7, 7], [64, 64, 3, 3], 1, 1, 1),
        ([2, 16, 28, 28], [32, 16, 3, 3], 2, 1, 1),
        ([2, 16, 28, 28], [32, 16, 1, 1], 2, 0, 1),
        ([2, 32, 14, 14], [64, 32, 1, 1], 1, 0, 1),
    ];
    for (i, case) in cases.iter().enumerate() {
        let (x, w) = inputs(case, 100 + i as u64, DType::F32)?;
        let (s, p, d) = (case.2, case.3, case.4);
        let ours = out_and_grads(&x, &w, |x, w| conv2d(x, w, s, p, d))?;
        let theirs = out_and_grads(&x, &w, |x, w| conv2d_candle(x, w, s, p, d))?;
        // Sums of up to 16·9·784 products of O(1) values: relative 1e-4 of the magnitude.
        let what = format!("case {i} {case:?}");
        assert_tensors_close(&ours.0, &theirs.0, 1e-4, 1e-4, &format!("{what}: y"));
        assert_tensors_close(&ours.1, &theirs.1, 1e-4, 1e-4, &format!("{what}: dx"));
        assert_tensors_close(&ours.2, &theirs.2, 1e-3, 1e-4, &format!("{what}: dw"));
        assert_eq!(ours.0.dtype(), DType::F32);
    }
    Ok(())
}

#[test]
fn gradients_match_finite_differences() {
    for (i, case) in CASES.iter().enumerate() {
        let (x, w) = inputs(case, 200 + 10 * i as u64, DType::F64).unwrap();
        let (s, p, d) = (case.2, case.3, case.4);
        gradcheck(&[x, w], |t| conv2d(&t[0], &t[1], s, p, d));
    }
}

#[test]
fn shifted_gemm_gradients_match_finite_differences() {
    // 34×34, 3×3, no padding: outputs 32 wide (wider than the tap GEMMs take), 1024 of 1156
    // padded columns, enough for the shifted GEMMs; a dilated 2×2 kernel with padding too
    // (1156 of 1296).
    let x = normal(&[2, 2, 34, 34], 311);
    gradcheck(&[x.clone(), normal(&[2, 2, 3, 3], 312)], |t| {
        conv2d(&t[0], &t[1], 1, 0, 1)
    });
    gradcheck(&[x, normal(&[2, 2, 2, 2], 313)], |t| {
        conv2d(&t[0], &t[1], 1, 1, 2)
    });
}

#[test]
fn strided_inputs_are_differentiable() {
    let x = normal(&[2, 3, 7, 6], 301);
    let w = normal(&[3, 4, 3, 3], 302);
    gradcheck(&[x, w], |t| {
        // x as [N, C, W, H] and w with its in/out channels swapped: both strided.
        let xt = t[0].transpose(2, 3)?;
        let wt = t[1].transpose(0, 1)?;
        assert!(!xt.is_contiguous() && !wt.is_contiguous());
        conv2d(&xt, &wt, 2, 1, 1)
    });
}

#[test]
fn grouped_and_single_images_in_one_thread_agree() -> Result<()> {
    // Two threads, five images: thread 0 takes images 0..3 and thread 1 images 3..5. 24×24
    // outputs (576 columns) group two images per GEMM, so thread 0 runs a group of two and
    // then one image alone (written in place), thread 1 one group of two. These stride-1
    // convs run as shifted GEMMs over the padded images (no im2col), the dilated, non-square
    // and unpadded kernels included; 1×1 stride-1 convs take the direct path, per image.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a rayon pool");
    let cases: [Case; 4] = [
        ([5, 3, 24, 24], [4, 3, 3, 3], 1, 1, 1),
        ([5, 2, 38, 38], [3, 2, 3, 2], 1, 1, 2),
        ([5, 2, 40, 40], [3, 2, 3, 3], 1, 0, 1),
        ([5, 3, 40, 40], [4, 3, 1, 1], 1, 0, 1),
    ];
    for (i, case) in cases.iter().enumerate() {
        let (x, w) = inputs(case, 450 + 2 * i as u64, DType::F64)?;
        let (s, p, d) = (case.2, case.3, case.4);
        let ours = pool.install(|| out_and_grads(&x, &w, |x, w| conv2d(x, w, s, p, d)))?;
        let theirs = out_and_grads(&x, &w, |x, w| conv2d_candle(x, w, s, p, d))?;
        let what = format!("{case:?}");
        assert_tensors_close(&ours.0, &theirs.0, 1e-12, 1e-12, &format!("{what}: y"));
        assert_tensors_close(&ours.1, &theirs.1, 1e-12, 1e-12, &format!("{what}: dx"));
        assert_tensors_close(&ours.2, &theirs.2, 1e-12, 1e-12, &format!("{what}: dw"));
    }
    Ok(())
}

#[test]
fn one_image_takes_the_multithreaded_gemm_path_and_agrees() -> Result<()> {
    // Fewer images than threads: images run in turn, each GEMM on every thread.
    let case: Case = ([1, 8, 15, 15], [12, 8, 3, 3], 1, 1, 1);
    let (x, w) = inputs(&case, 401, DType::F64)?;
    let ours = out_and_grads(&x, &w, |x, w| conv2d(x, w, 1, 1, 1))?;
    let theirs = out_and_grads(&x, &w, |x, w| conv2d_candle(x, w, 1, 1, 1))?;
    assert_tensors_close(&ours.0, &theirs.0, 1e-12, 1e-12, "y");
    assert_tensors_close(&ours.1, &theirs.1, 1e-12, 1e-12, "dx");
    assert_tensors_close(&ours.2, &theirs.2, 1e-12, 1e-12, "dw");
    Ok(())
}

#[test]
fn only_inputs_that_need_a_gradient_get_one() -> Result<()> {
    let (x, w) = inputs(&CASES[1], 501, DType::F64)?;
    // Frozen weights (a plain tensor): the image still gets its gradient, the weights none.
    let xv = Var::from_tensor(&x)?;
    let g = conv2d(xv.as_tensor(), &w, 1, 1, 1)?.sum_all()?.backward()?;
    assert!(g.get(xv.as_tensor()).is_some());
    assert!(g.get(&w).is_none());
    // The network's input image (a plain tensor): only the weights.
    let wv = Var::from_tensor(&w)?;
    let g = conv2d(&x, wv.as_tensor(), 1, 1, 1)?.sum_all()?.backward()?;
    let dw = g.get(wv.as_tensor()).expect("weight gradient");
    assert!(g.get(&x).is_none());
    let want = conv2d_candle(&x, wv.as_tensor(), 1, 1, 1)?
        .sum_all()?
        .backward()?;
    assert_tensors_close(dw, want.get(wv.as_tensor()).unwrap(), 1e-12, 1e-12, "dw");
    Ok(())
}

#[test]
fn f32_path_matches_f64_path() {
    let x = normal(&[2, 4, 10, 9], 601);
    let w = normal(&[5, 4, 3, 3], 602);
    check_f32_matches_f64(&[x, w], 1e-5, |t| conv2d(&t[0], &t[1], 2, 1, 1));
}

#[test]
fn half_precision_inputs_compute_in_f32() -> Result<()> {
    let (x, w) = inputs(&CASES[1], 701, DType::F32)?;
    for dt in [DType::F16, DType::BF16] {
        let (xh, wh) = (x.to_dtype(dt)?, w.to_dtype(dt)?);
        let y = conv2d(&xh, &wh, 1, 1, 1)?;
        assert_eq!(y.dtype(), dt);
        // Same rounded inputs, computed in f32: equal up to the output's own rounding.
        let want = conv2d_candle(
            &xh.to_dtype(DType::F32)?,
            &wh.to_dtype(DType::F32)?,
            1,
            1,
            1,
        )?;
        let tol = if dt == DType::F16 { 1e-2 } else { 6e-2 };
        assert_tensors_close(&y, &want, tol, tol, &format!("{dt:?}"));
        let xv = Var::from_tensor(&xh)?;
        let g = conv2d(xv.as_tensor(), &wh, 1, 1, 1)?
            .sum_all()?
            .backward()?;
        assert_eq!(g.get(xv.as_tensor()).expect("gradient").dtype(), dt);
    }
    Ok(())
}

#[test]
fn padding_contributes_zeros() -> Result<()> {
    // All-ones 3×3 kernel over an all-ones image with padding 1: each output counts the real
    // pixels under its window (4 in a corner, 6 on an edge, 9 inside).
    let x = Tensor::ones((1, 1, 4, 4), DType::F64, &Device::Cpu)?;
    let w = Tensor::ones((1, 1, 3, 3), DType::F64, &Device::Cpu)?;
    #[rustfmt::skip]
    let want = [
        4.0, 6.0, 6.0, 4.0,
        6.0, 9.0, 9.0, 6.0,
        6.0, 9.0, 9.0, 6.0,
        4.0, 6.0, 6.0, 4.0,
    ];
    assert_eq!(values(&conv2d(&x, &w, 1, 1, 1)?), want);
    Ok(())
}

#[test]
fn bad_input_is_an_error() -> Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::zeros((1, 2, 4, 4), DType::F32, &dev)?;
    let w = Tensor::zeros((3, 2, 3, 3), DType::F32, &dev)?;
    assert!(conv2d(&x, &w, 1, 1, 1).is_ok());
    for (what, r) in [
        ("rank 3 input", conv2d(&x.squeeze(0)?, &w, 1, 1, 1)),
        ("rank 3 weights", conv2d(&x, &w.flatten_from(2)?, 1, 1, 1)),
        ("channel mismatch", conv2d(&x, &w.narrow(1, 0, 1)?, 1, 1, 1)),
        ("zero stride", conv2d(&x, &w, 0, 1, 1)),
        ("zero dilation", conv2d(&x, &w, 1, 1, 0)),
        ("kernel larger than input", conv2d(&x, &w, 1, 0, 3)),
        ("empty width (all padding)", {
            let empty = Tensor::zeros((1, 2, 16, 0), DType::F32, &dev)?;
            conv2d(
                &empty,
                &Tensor::zeros((3, 2, 3, 1), DType::F32, &dev)?,
                1,
                1,
                1,
            )
        }),
        (
            "dtype mismatch",
            conv2d(&x, &w.to_dtype(DType::F64)?, 1, 1, 1),
        ),
        ("integer input", {
            let (xi, wi) = (x.to_dtype(DType::U32)?, w.to_dtype(DType::U32)?);
            conv2d(&xi, &wi, 1, 1, 1)
        }),
    ] {
        assert!(r.is_err(), "{what}: expected an error");
    }
    Ok(())
}
