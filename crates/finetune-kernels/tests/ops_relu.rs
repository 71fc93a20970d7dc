//! `ops::relu` and `ops::add_relu` (a residual block's `relu(branch + shortcut)`): forward
//! against candle, derivatives against finite differences (contiguous and strided), PyTorch's
//! zero gradient at 0, one input without a gradient, f32 vs f64, half precision, bad input.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::{analytic_grads, assert_tensors_close, check_f32_matches_f64, gradcheck, normal};
use finetune_kernels::ops::{add_relu, add_relu_composed, relu};
use finetune_kernels::Result;

#[test]
fn forward_matches_candle() -> Result<()> {
    // Several element-wise chunks and a ragged tail.
    let a = normal(&[3, 5, 41, 37], 1).to_dtype(DType::F32)?;
    let b = normal(&[3, 5, 41, 37], 2).to_dtype(DType::F32)?;
    assert_tensors_close(&relu(&a)?, &a.relu()?, 0.0, 0.0, "relu");
    assert_tensors_close(
        &add_relu(&a, &b)?,
        &(&a + &b)?.relu()?,
        0.0,
        0.0,
        "add_relu",
    );
    Ok(())
}

#[test]
fn gradients_match_candles_composition() -> Result<()> {
    let a = normal(&[3, 5, 41, 37], 3);
    let b = normal(&[3, 5, 41, 37], 4);
    let fused = analytic_grads(&[a.clone(), b.clone()], &|t| add_relu(&t[0], &t[1]))?;
    let composed = analytic_grads(&[a, b], &|t| add_relu_composed(&t[0], &t[1]))?;
    for (i, (f, c)) in fused.iter().zip(&composed).enumerate() {
        assert_tensors_close(f, c, 0.0, 0.0, &format!("gradient of input {i}"));
    }
    Ok(())
}

#[test]
fn derivatives_match_finite_differences() {
    let a = normal(&[2, 3, 4, 5], 5);
    let b = normal(&[2, 3, 4, 5], 6);
    gradcheck(&[a.clone(), b.clone()], |t| add_relu(&t[0], &t[1]));
    gradcheck(std::slice::from_ref(&a), |t| relu(&t[0]));
    // Strided operands are made contiguous first; the gradient still reaches them.
    gradcheck(&[a, b], |t| {
        let at = t[0].transpose(1, 3)?;
        assert!(!at.is_contiguous());
        add_relu(&at, &t[1].transpose(1, 3)?)
    });
}

#[test]
fn gradient_is_zero_where_the_output_is_zero() -> Result<()> {
    let dev = Device::Cpu;
    let x = Var::new(&[-1.0f32, 0.0, 2.0, 1.0], &dev)?;
    let g = relu(&x)?.sum_all()?.backward()?;
    assert_eq!(g.get(&x).unwrap().to_vec1::<f32>()?, [0.0, 0.0, 1.0, 1.0]);
    let y = Var::new(&[1.0f32, -3.0, 0.5, -1.0], &dev)?;
    let g = add_relu(&x, &y)?.sum_all()?.backward()?;
    for v in [&x, &y] {
        assert_eq!(g.get(v).unwrap().to_vec1::<f32>()?, [0.0, 0.0, 1.0, 0.0]);
    }
    Ok(())
}

#[test]
fn an_untracked_operand_gets_no_gradient() -> Result<()> {
    let dev = Device::Cpu;
    let x = Var::new(&[-1.0f64, 0.5, 2.0], &dev)?;
    let c = Tensor::new(&[3.0f64, -1.0, -4.0], &dev)?;
    let g = add_relu(&x, &c)?.sum_all()?.backward()?;
    assert_eq!(g.get(&x).unwrap().to_vec1::<f64>()?, [1.0, 0.0, 0.0]);
    assert!(g.get(&c).is_none());
    Ok(())
}

#[test]
fn f32_matches_f64_and_half_precision_runs_in_f32() -> Result<()> {
    let a = normal(&[2, 4, 9, 9], 7);
    let b = normal(&[2, 4, 9, 9], 8);
    check_f32_matches_f64(&[a.clone(), b.clone()], 1e-6, |t| add_relu(&t[0], &t[1]));
    let (ah, bh) = (a.to_dtype(DType::BF16)?, b.to_dtype(DType::BF16)?);
    let y = add_relu(&ah, &bh)?;
    assert_eq!(y.dtype(), DType::BF16);
    let want = (ah.to_dtype(DType::F32)? + bh.to_dtype(DType::F32)?)?.relu()?;
    assert_tensors_close(&y.to_dtype(DType::F32)?, &want, 1e-2, 1e-2, "bf16");
    Ok(())
}

#[test]
fn mismatched_operands_are_errors() -> Result<()> {
    let dev = Device::Cpu;
    let a = Tensor::zeros((2, 3), DType::F32, &dev)?;
    let err = add_relu(&a, &Tensor::zeros((3, 2), DType::F32, &dev)?).unwrap_err();
    assert!(err.to_string().contains("[2, 3] and [3, 2]"), "{err}");
    let err = add_relu(&a, &Tensor::zeros((2, 3), DType::F64, &dev)?).unwrap_err();
    assert!(err.to_string().contains("F32 and F64"), "{err}");
    Ok(())
}
