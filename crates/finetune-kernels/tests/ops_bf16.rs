//! bf16 matrix products (`set_matmul_precision(Bf16)`, what `--bf16` switches on): the fused
//! linear layer's forward and its input and weight gradients equal the f64 products of the
//! bf16-rounded operands (rounded by candle's own f32 → bf16 conversion, an independent
//! reference), attention stays within bf16's precision of its f32 result, and f64 products and
//! convolutions are untouched. On a CPU without AMX-BF16 or AVX512-BF16 the switch is refused instead.
//!
//! One test: the precision is process-wide, so this binary holds nothing else.

mod common;

use candle_core::{DType, Tensor, Var};
use common::{assert_close, assert_tensors_close, normal, values};
use finetune_kernels::ops::{
    attention, bf16_kernel, conv2d, linear, linear_composed, lora_linear, lora_linear_composed,
    matmul_precision, set_matmul_precision, LoraArgs, MatmulPrecision,
};
use finetune_kernels::{Result, Rng};

/// `t` (f32) rounded to bf16 and back, as f64 values with `t`'s shape.
fn rounded(t: &Tensor) -> Result<Tensor> {
    Ok(t.to_dtype(DType::BF16)?.to_dtype(DType::F64)?)
}

#[test]
fn bf16_products_are_the_products_of_rounded_operands() -> Result<()> {
    if bf16_kernel().is_err() {
        let err = set_matmul_precision(MatmulPrecision::Bf16)
            .unwrap_err()
            .to_string();
        assert!(err.contains("AMX-BF16 or AVX512-BF16"), "{err}");
        assert_eq!(matmul_precision(), MatmulPrecision::F32);
        return Ok(());
    }
    let f32 = |t: Tensor| t.to_dtype(DType::F32);
    let x = Var::from_tensor(&f32(normal(&[3, 37, 70], 1))?)?;
    let w = Var::from_tensor(&f32(normal(&[45, 70], 2))?)?;
    let b = Var::from_tensor(&f32(normal(&[45], 3))?)?;
    let g = f32(normal(&[3, 37, 45], 4))?;
    // The f32 attention result, before the switch.
    let (q, k, v) = (
        f32(normal(&[2, 33, 64], 5))?,
        f32(normal(&[2, 33, 64], 6))?,
        f32(normal(&[2, 33, 64], 7))?,
    );
    let (img, kernel) = (
        f32(normal(&[2, 8, 9, 9], 8))?,
        f32(normal(&[16, 8, 3, 3], 9))?,
    );
    let conv_f32 = conv2d(&img, &kernel, 1, 1, 1)?;
    let att_f32 = attention(&q, &k, &v, 4, None, 0.0, false, &mut Rng::seed_from_u64(0))?;

    set_matmul_precision(MatmulPrecision::Bf16)?;
    let y = linear(&x, &w, Some(&b))?;
    let grads = (&y * &g)?.sum_all()?.backward()?;
    let att_bf16 = attention(&q, &k, &v, 4, None, 0.0, false, &mut Rng::seed_from_u64(0))?;
    let conv_bf16 = conv2d(&img, &kernel, 1, 1, 1)?;
    let (la, lb) = (f32(normal(&[4, 70], 10))?, f32(normal(&[45, 4], 11))?);
    let lora = LoraArgs {
        a: &la,
        b: &lb,
        scale: 2.0,
        p: 0.0,
    };
    let mut rng = Rng::seed_from_u64(0);
    let lora_bf16 = lora_linear(&x, &w, Some(&b), lora, false, &mut rng)?;
    let lora_f32 = lora_linear_composed(
        &x.to_dtype(DType::F64)?,
        &w.to_dtype(DType::F64)?,
        Some(&b.to_dtype(DType::F64)?),
        LoraArgs {
            a: &la.to_dtype(DType::F64)?,
            b: &lb.to_dtype(DType::F64)?,
            scale: 2.0,
            p: 0.0,
        },
        false,
        &mut rng,
    )?;
    let f64_y = linear(
        &x.to_dtype(DType::F64)?,
        &w.to_dtype(DType::F64)?,
        Some(&b.to_dtype(DType::F64)?),
    )?;
    set_matmul_precision(MatmulPrecision::F32)?;

    let (xr, wr, gr) = (rounded(&x)?, rounded(&w)?, rounded(&g)?);
    let want_y = linear_composed(&xr, &wr, Some(&b.to_dtype(DType::F64)?))?;
    assert_tensors_close(&y, &want_y, 1e-5, 1e-5, "forward");
    let want_dx = gr.matmul(&wr.unsqueeze(0)?.broadcast_as((3, 45, 70))?.contiguous()?)?;
    assert_tensors_close(
        grads.get(&x).unwrap(),
        &want_dx,
        1e-5,
        1e-5,
        "input gradient",
    );
    let (g2, x2) = (gr.reshape((111, 45))?, xr.reshape((111, 70))?);
    let want_dw = g2.t()?.matmul(&x2)?;
    assert_tensors_close(
        grads.get(&w).unwrap(),
        &want_dw,
        1e-5,
        1e-5,
        "weight gradient",
    );
    let want_db = g.to_dtype(DType::F64)?.reshape((111, 45))?.sum(0)?;
    assert_tensors_close(
        grads.get(&b).unwrap(),
        &want_db,
        1e-5,
        1e-5,
        "bias gradient",
    );
    // The rounding is real: the f32 forward differs from the bf16 one.
    let f32_y = linear_composed(
        &x.to_dtype(DType::F64)?,
        &w.to_dtype(DType::F64)?,
        Some(&b.to_dtype(DType::F64)?),
    )?;
    let diff = values(&y)
        .iter()
        .zip(values(&f32_y))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff > 1e-4, "bf16 and f32 forwards agree to {diff}");
    // f64 products are not rounded.
    assert_tensors_close(&f64_y, &f32_y, 1e-12, 1e-12, "f64 forward under bf16");
    // Attention: every product in bf16, within bf16's relative precision of the f32 result.
    assert_close(
        &values(&att_bf16),
        &values(&att_f32),
        3e-2,
        3e-2,
        "attention",
    );
    // A LoRA layer: every product in bf16 (the rank-4 intermediate rounded again for the
    // second), within bf16's precision of the f64 result at the output's scale, and not equal
    // to it.
    let lora_diff = values(&lora_bf16)
        .iter()
        .zip(values(&lora_f32))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let lora_scale = values(&lora_f32).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(
        lora_diff > 1e-4 && lora_diff < 2e-2 * lora_scale,
        "bf16 LoRA layer {lora_diff} from f64 at scale {lora_scale}"
    );
    // Convolutions stay f32: the very same bits.
    assert_eq!(
        values(&conv_bf16),
        values(&conv_f32),
        "a convolution under bf16"
    );
    Ok(())
}
