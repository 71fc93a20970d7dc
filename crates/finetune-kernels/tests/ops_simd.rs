//! `ops::set_simd_level`: every vector level the CPU runs gives bit-identical forwards and
//! gradients to the baseline build of the same kernels (Rust neither contracts `a·b + c`
//! into an FMA nor reorders a reduction, so only the speed may differ).
//!
//! The level is process-wide, so this file holds one test that switches it.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::{normal, uniform};
use finetune_kernels::ops::{self, SimdLevel};
use finetune_kernels::{Result, Rng};

/// The forward and the gradients of `sum(f(inputs) · ramp)` w.r.t. every input, as f32 bits.
fn run(inputs: &[Tensor], f: &dyn Fn(&[Tensor]) -> Result<Tensor>) -> Result<Vec<Vec<u32>>> {
    let vars = inputs
        .iter()
        .map(Var::from_tensor)
        .collect::<candle_core::Result<Vec<_>>>()?;
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(&ts)?;
    let n = y.elem_count();
    let ramp: Vec<f32> = (0..n).map(|i| 1.0 + (i % 13) as f32 * 0.25).collect();
    let ramp = Tensor::from_vec(ramp, y.shape(), &Device::Cpu)?;
    let grads = y.mul(&ramp)?.sum_all()?.backward()?;
    let bits = |t: &Tensor| -> Result<Vec<u32>> {
        Ok(t.flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .map(|v| v.to_bits())
            .collect())
    };
    let mut out = vec![bits(&y)?];
    for t in &ts {
        let g = grads.get(t).expect("every input gets a gradient");
        out.push(bits(g)?);
    }
    Ok(out)
}

type Case = (
    &'static str,
    Vec<Tensor>,
    Box<dyn Fn(&[Tensor]) -> Result<Tensor>>,
);

fn f32s(shape: &[usize], seed: u64) -> Tensor {
    normal(shape, seed)
        .to_dtype(DType::F32)
        .expect("f32 test input")
}

fn cases() -> Vec<Case> {
    vec![
        (
            "gelu",
            vec![f32s(&[3, 1000], 1)],
            Box::new(|t| ops::gelu(&t[0])),
        ),
        (
            "gelu_new",
            vec![f32s(&[3, 1000], 2)],
            Box::new(|t| ops::gelu_new(&t[0])),
        ),
        (
            "softmax_last_dim",
            vec![f32s(&[7, 131], 3)],
            Box::new(|t| ops::softmax_last_dim(&t[0])),
        ),
        (
            "layer_norm",
            vec![f32s(&[9, 97], 4), f32s(&[97], 5), f32s(&[97], 6)],
            Box::new(|t| ops::layer_norm(&t[0], &t[1], &t[2], 1e-5)),
        ),
        (
            "max_pool2d 3x3 s2 p1",
            vec![f32s(&[2, 3, 17, 45], 7)],
            Box::new(|t| ops::max_pool2d(&t[0], (3, 3), (2, 2), (1, 1))),
        ),
        (
            "batch_norm_train + relu",
            vec![
                f32s(&[3, 4, 9, 21], 8),
                uniform(&[4], 0.5, 1.5, 9)
                    .to_dtype(DType::F32)
                    .expect("f32"),
                f32s(&[4], 10),
            ],
            Box::new(|t| Ok(ops::batch_norm_train(&t[0], &t[1], &t[2], 1e-5, true)?.y)),
        ),
        (
            "add_relu",
            vec![f32s(&[5, 3001], 11), f32s(&[5, 3001], 12)],
            Box::new(|t| ops::add_relu(&t[0], &t[1])),
        ),
        (
            "attention, 2 heads, dropout 0.2",
            vec![
                f32s(&[2, 19, 8], 17),
                f32s(&[2, 19, 8], 18),
                f32s(&[2, 19, 8], 19),
            ],
            Box::new(|t| {
                let mut rng = Rng::seed_from_u64(7);
                ops::attention(&t[0], &t[1], &t[2], 2, None, 0.2, true, &mut rng)
            }),
        ),
        (
            // im2col + col2im with stride 2 (the shifted path needs stride 1).
            "conv2d 3x3 s2",
            vec![f32s(&[2, 3, 19, 23], 13), f32s(&[4, 3, 3, 3], 14)],
            Box::new(|t| ops::conv2d(&t[0], &t[1], 2, 1, 1)),
        ),
        (
            "conv2d 3x3 s1 (shifted)",
            vec![f32s(&[2, 3, 30, 30], 15), f32s(&[4, 3, 3, 3], 16)],
            Box::new(|t| ops::conv2d(&t[0], &t[1], 1, 1, 1)),
        ),
    ]
}

#[test]
fn every_level_matches_the_baseline_bit_for_bit() -> Result<()> {
    let detected = ops::detected_simd_level();
    let levels: Vec<SimdLevel> = [SimdLevel::Avx2, SimdLevel::Avx512]
        .into_iter()
        .filter(|&l| l <= detected)
        .collect();
    eprintln!(
        "comparing the baseline with {:?} (this CPU runs up to {})",
        levels,
        detected.name()
    );
    for (name, inputs, f) in cases() {
        assert_eq!(
            ops::set_simd_level(SimdLevel::Baseline),
            SimdLevel::Baseline
        );
        let want = run(&inputs, f.as_ref())?;
        for &level in &levels {
            assert_eq!(ops::set_simd_level(level), level);
            assert_eq!(ops::simd_level(), level);
            let got = run(&inputs, f.as_ref())?;
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                let what = if k == 0 {
                    "forward".to_string()
                } else {
                    format!("gradient {k}")
                };
                assert_eq!(
                    g.len(),
                    w.len(),
                    "{name} {what} at {}: length",
                    level.name()
                );
                if let Some(i) = (0..g.len()).find(|&i| g[i] != w[i]) {
                    panic!(
                        "{name} {what} at {}: element {i} is {} (baseline {})",
                        level.name(),
                        f32::from_bits(g[i]),
                        f32::from_bits(w[i])
                    );
                }
            }
        }
    }
    // A level above the CPU's is capped at what it runs.
    assert_eq!(ops::set_simd_level(SimdLevel::Avx512), detected);
    Ok(())
}
