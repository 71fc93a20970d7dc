//! `ops::cross_entropy` (label smoothing, ignore_index), `ops::soft_target_cross_entropy`,
//! `ops::binary_cross_entropy_with_logits`, `ops::distillation_kl`
//! and `ops::mse`: values against PyTorch's formulas written out here, against candle's losses
//! where they coincide, gradients against finite differences, and bad input.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{
    analytic_grads, assert_close, check_f32_matches_f64, gradcheck, normal, uniform, values,
};
use finetune_kernels::ops::{
    binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_weighted, cross_entropy,
    distillation_kl, mse, soft_target_cross_entropy,
};
use finetune_kernels::Result;

/// `torch.nn.functional.cross_entropy(x, t, ignore_index=ii, label_smoothing=eps)` with mean
/// reduction, from its documented definition: for each kept row (target != ignore_index)
/// `l_n = (1 - eps)·(-log p_{t_n}) + eps/C · Σ_c (-log p_c)`, with `log p = log_softmax(x)`;
/// the loss is `Σ_n l_n / #kept`.
fn torch_cross_entropy(x: &[f64], c: usize, t: &[i64], eps: f64, ii: Option<i64>) -> f64 {
    let (mut total, mut kept) = (0.0, 0usize);
    for (row, &tn) in x.chunks(c).zip(t) {
        if Some(tn) == ii {
            continue;
        }
        let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
        let nll = lse - row[tn as usize];
        let smooth: f64 = row.iter().map(|v| lse - v).sum::<f64>() / c as f64;
        total += (1.0 - eps) * nll + eps * smooth;
        kept += 1;
    }
    total / kept as f64
}

fn scalar(t: &Tensor) -> f64 {
    values(t)[0]
}

/// Logits and targets with about a third of the targets set to -100.
fn batch(n: usize, c: usize, seed: u64) -> (Tensor, Vec<i64>) {
    let x = (normal(&[n, c], seed) * 2.0).unwrap();
    let mut rng = finetune_kernels::Rng::seed_from_u64(seed + 1);
    let t = (0..n)
        .map(|i| {
            if i % 3 == 1 {
                -100
            } else {
                rng.below(c as u64) as i64
            }
        })
        .collect();
    (x, t)
}

#[test]
fn cross_entropy_matches_the_torch_formula() -> Result<()> {
    let dev = Device::Cpu;
    for (n, c, seed) in [(7, 5, 1), (12, 3, 2), (4, 40, 3), (1, 2, 4)] {
        let (x, t) = batch(n, c, seed);
        let xs = values(&x);
        let t_kept: Vec<i64> = t.iter().map(|&v| if v < 0 { 0 } else { v }).collect();
        for eps in [0.0, 0.1, 0.37, 1.0] {
            // With ignore_index.
            let targets = Tensor::new(t.as_slice(), &dev)?;
            let got = scalar(&cross_entropy(&x, &targets, eps, Some(-100))?);
            let want = torch_cross_entropy(&xs, c, &t, eps, Some(-100));
            assert!(
                (got - want).abs() < 1e-12,
                "n {n} c {c} eps {eps}: {got} vs {want}"
            );
            // Without: every row counts.
            let targets = Tensor::new(t_kept.as_slice(), &dev)?;
            let got = scalar(&cross_entropy(&x, &targets, eps, None)?);
            let want = torch_cross_entropy(&xs, c, &t_kept, eps, None);
            assert!(
                (got - want).abs() < 1e-12,
                "n {n} c {c} eps {eps}: {got} vs {want}"
            );
        }
    }
    Ok(())
}

#[test]
fn cross_entropy_accepts_any_integer_target_dtype_and_in_range_ignore_index() -> Result<()> {
    let dev = Device::Cpu;
    let x = normal(&[6, 4], 5);
    let t: Vec<i64> = vec![0, 3, 1, 0, 2, 3];
    let want = torch_cross_entropy(&values(&x), 4, &t, 0.2, None);
    let tu: Vec<u32> = t.iter().map(|&v| v as u32).collect();
    let t8: Vec<u8> = t.iter().map(|&v| v as u8).collect();
    for targets in [
        Tensor::new(t.as_slice(), &dev)?,
        Tensor::new(tu.as_slice(), &dev)?,
        Tensor::new(t8.as_slice(), &dev)?,
    ] {
        assert!((scalar(&cross_entropy(&x, &targets, 0.2, None)?) - want).abs() < 1e-12);
    }
    // ignore_index may be a real class: its rows drop out.
    let want = torch_cross_entropy(&values(&x), 4, &t, 0.2, Some(0));
    let got = scalar(&cross_entropy(
        &x,
        &Tensor::new(t.as_slice(), &dev)?,
        0.2,
        Some(0),
    )?);
    assert!((got - want).abs() < 1e-12);
    Ok(())
}

#[test]
fn cross_entropy_matches_candle_without_smoothing() -> Result<()> {
    let x = (normal(&[9, 13], 6) * 3.0)?.to_dtype(DType::F32)?;
    let t: Vec<u32> = (0..9).map(|i| (i * 5 % 13) as u32).collect();
    let targets = Tensor::new(t.as_slice(), &Device::Cpu)?;
    let ours = cross_entropy(&x, &targets, 0.0, None)?;
    assert_eq!(ours.dtype(), DType::F32);
    let candle = candle_nn::loss::cross_entropy(&x, &targets)?;
    assert!((scalar(&ours) - scalar(&candle)).abs() < 1e-5);
    Ok(())
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() -> Result<()> {
    let dev = Device::Cpu;
    for (n, c, seed) in [(7, 5, 11), (5, 1, 12), (3, 17, 13)] {
        let (x, t) = batch(n, c, seed);
        let targets = Tensor::new(t.as_slice(), &dev)?;
        for eps in [0.0, 0.1, 1.0] {
            gradcheck(std::slice::from_ref(&x), |v| {
                cross_entropy(&v[0], &targets, eps, Some(-100))
            });
        }
        // Logits stored class-major and transposed: a strided input.
        let xt = x.t()?.contiguous()?;
        gradcheck(&[xt], |v| {
            let l = v[0].t()?;
            assert!(c == 1 || !l.is_contiguous());
            cross_entropy(&l, &targets, 0.1, Some(-100))
        });
    }
    Ok(())
}

#[test]
fn ignored_rows_receive_zero_gradient() -> Result<()> {
    let (x, t) = batch(9, 4, 21);
    let targets = Tensor::new(t.as_slice(), &Device::Cpu)?;
    let g = analytic_grads(&[x], &|v: &[Tensor]| {
        cross_entropy(&v[0], &targets, 0.1, Some(-100))
    })?;
    let g = values(&g[0]);
    for (row, &tn) in g.chunks(4).zip(&t) {
        if tn == -100 {
            assert!(row.iter().all(|&v| v == 0.0), "{row:?}");
        } else {
            assert!(row.iter().any(|&v| v != 0.0));
        }
    }
    Ok(())
}

#[test]
fn cross_entropy_with_every_row_ignored_is_nan_like_torch() -> Result<()> {
    let x = normal(&[3, 4], 22);
    let targets = Tensor::new(&[-100i64, -100, -100], &Device::Cpu)?;
    assert!(scalar(&cross_entropy(&x, &targets, 0.0, Some(-100))?).is_nan());
    Ok(())
}

#[test]
fn cross_entropy_f32_matches_f64_and_half_precision_is_accepted() -> Result<()> {
    let (x, t) = batch(8, 30, 23);
    let targets = Tensor::new(t.as_slice(), &Device::Cpu)?;
    check_f32_matches_f64(std::slice::from_ref(&x), 1e-5, |v| {
        cross_entropy(&v[0], &targets, 0.1, Some(-100))
    });
    for dt in [DType::F16, DType::BF16] {
        let xh = x.to_dtype(dt)?;
        let loss = cross_entropy(&xh, &targets, 0.1, Some(-100))?;
        assert_eq!(loss.dtype(), dt);
        let want = torch_cross_entropy(&values(&xh), 30, &t, 0.1, Some(-100));
        assert!((scalar(&loss) - want).abs() < 2e-2 * want.abs().max(1.0));
        let g = analytic_grads(std::slice::from_ref(&xh), &|v: &[Tensor]| {
            cross_entropy(&v[0], &targets, 0.1, Some(-100))
        })?;
        let g64 = analytic_grads(&[xh.to_dtype(DType::F64)?], &|v: &[Tensor]| {
            cross_entropy(&v[0], &targets, 0.1, Some(-100))
        })?;
        assert_close(
            &values(&g[0]),
            &values(&g64[0]),
            1e-3,
            2e-2,
            "half gradient",
        );
    }
    Ok(())
}

#[test]
fn cross_entropy_bad_input_is_an_error() -> Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::zeros((3, 4), DType::F32, &dev)?;
    let t = Tensor::new(&[0u32, 1, 3], &dev)?;
    assert!(cross_entropy(&x, &t, 0.0, None).is_ok());
    for (what, r) in [
        (
            "1-d logits",
            cross_entropy(&x.flatten_all()?, &t, 0.0, None),
        ),
        ("3-d logits", cross_entropy(&x.unsqueeze(0)?, &t, 0.0, None)),
        (
            "targets too short",
            cross_entropy(&x, &Tensor::new(&[0u32, 1], &dev)?, 0.0, None),
        ),
        (
            "2-d targets",
            cross_entropy(&x, &t.unsqueeze(1)?, 0.0, None),
        ),
        (
            "float targets",
            cross_entropy(&x, &t.to_dtype(DType::F32)?, 0.0, None),
        ),
        (
            "target == C",
            cross_entropy(&x, &Tensor::new(&[0u32, 4, 1], &dev)?, 0.0, None),
        ),
        (
            "negative target, not ignored",
            cross_entropy(&x, &Tensor::new(&[0i64, -100, 1], &dev)?, 0.0, None),
        ),
        (
            "negative target, other ignore_index",
            cross_entropy(&x, &Tensor::new(&[0i64, -1, 1], &dev)?, 0.0, Some(-100)),
        ),
        ("smoothing < 0", cross_entropy(&x, &t, -0.1, None)),
        ("smoothing > 1", cross_entropy(&x, &t, 1.5, None)),
        ("smoothing NaN", cross_entropy(&x, &t, f64::NAN, None)),
        (
            "integer logits",
            cross_entropy(&x.to_dtype(DType::U32)?, &t, 0.0, None),
        ),
    ] {
        assert!(r.is_err(), "{what}: expected an error");
    }
    Ok(())
}

/// `t·log σ(x) + (1 - t)·log(1 - σ(x))`, negated and averaged: the textbook form, fine for
/// moderate logits.
fn bce_naive(x: &[f64], t: &[f64]) -> f64 {
    let s: f64 = x
        .iter()
        .zip(t)
        .map(|(&x, &t)| {
            let p = 1.0 / (1.0 + (-x).exp());
            -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
        })
        .sum();
    s / x.len() as f64
}

#[test]
fn bce_with_logits_matches_formula_candle_and_is_stable() -> Result<()> {
    let x = (normal(&[5, 6], 31) * 3.0)?;
    let t = uniform(&[5, 6], 0.0, 1.0, 32); // soft labels
    let got = scalar(&binary_cross_entropy_with_logits(&x, &t)?);
    assert!((got - bce_naive(&values(&x), &values(&t))).abs() < 1e-12);
    let (x32, t32) = (x.to_dtype(DType::F32)?, t.to_dtype(DType::F32)?);
    let candle = candle_nn::loss::binary_cross_entropy_with_logit(&x32, &t32)?;
    let ours = binary_cross_entropy_with_logits(&x32, &t32)?;
    assert_eq!(ours.dtype(), DType::F32);
    assert!((scalar(&ours) - scalar(&candle)).abs() < 1e-5);
    // Saturated logits: the naive form gives inf/NaN, the stable one the right values.
    let x = Tensor::new(&[100f32, -100.0, 100.0, -100.0], &Device::Cpu)?;
    let t = Tensor::new(&[0f32, 1.0, 1.0, 0.0], &Device::Cpu)?;
    let got = scalar(&binary_cross_entropy_with_logits(&x, &t)?);
    assert!((got - 50.0).abs() < 1e-4, "{got}");
    Ok(())
}

#[test]
fn bce_with_logits_gradients_match_finite_differences() {
    let x = (normal(&[4, 5], 33) * 2.0).unwrap();
    let t = uniform(&[4, 5], 0.0, 1.0, 34);
    gradcheck(&[x.clone(), t.clone()], |v| {
        binary_cross_entropy_with_logits(&v[0], &v[1])
    });
    gradcheck(&[x, t], |v| {
        binary_cross_entropy_with_logits(&v[0].t()?, &v[1].t()?)
    });
}

/// PyTorch's documented `pos_weight` loss, `−[p_c·t·log σ(x) + (1 − t)·log(1 − σ(x))]` per
/// element (label `c` = the column), averaged.
fn bce_pos_weight_naive(x: &[f64], t: &[f64], p: &[f64]) -> f64 {
    let s: f64 = x
        .iter()
        .zip(t)
        .enumerate()
        .map(|(i, (&x, &t))| {
            let s = 1.0 / (1.0 + (-x).exp());
            -(p[i % p.len()] * t * s.ln() + (1.0 - t) * (1.0 - s).ln())
        })
        .sum();
    s / x.len() as f64
}

#[test]
fn bce_pos_weight_matches_pytorchs_formula_and_finite_differences() -> Result<()> {
    let x = (normal(&[4, 3], 35) * 2.0)?;
    let t = uniform(&[4, 3], 0.0, 1.0, 36);
    let p = [3.0, 0.5, 1.0];
    let got = scalar(&binary_cross_entropy_with_logits_weighted(&x, &t, &p)?);
    let want = bce_pos_weight_naive(&values(&x), &values(&t), &p);
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    // All ones is the unweighted loss.
    let ones = scalar(&binary_cross_entropy_with_logits_weighted(
        &x, &t, &[1.0; 3],
    )?);
    assert!((ones - scalar(&binary_cross_entropy_with_logits(&x, &t)?)).abs() < 1e-12);
    // Saturated logits stay finite: a wrong positive at −100 costs p·100.
    let x = Tensor::new(&[[-100f64, 100.0]], &Device::Cpu)?;
    let t = Tensor::new(&[[1f64, 0.0]], &Device::Cpu)?;
    let got = scalar(&binary_cross_entropy_with_logits_weighted(
        &x,
        &t,
        &[3.0, 1.0],
    )?);
    assert!((got - (300.0 + 100.0) / 2.0).abs() < 1e-9, "{got}");
    let (x, t) = ((normal(&[4, 3], 37) * 2.0)?, uniform(&[4, 3], 0.0, 1.0, 38));
    gradcheck(&[x, t], |v| {
        binary_cross_entropy_with_logits_weighted(&v[0], &v[1], &p)
    });
    // One weight per label, finite and non-negative.
    let (a, b) = (normal(&[2, 3], 39), uniform(&[2, 3], 0.0, 1.0, 40));
    for bad in [&[1.0, 1.0][..], &[1.0, -1.0, 1.0], &[1.0, f64::NAN, 1.0]] {
        assert!(binary_cross_entropy_with_logits_weighted(&a, &b, bad).is_err());
    }
    Ok(())
}

#[test]
fn mse_matches_formula_candle_and_finite_differences() -> Result<()> {
    let p = normal(&[3, 7], 41);
    let t = normal(&[3, 7], 42);
    let want: f64 = values(&p)
        .iter()
        .zip(values(&t))
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        / 21.0;
    assert!((scalar(&mse(&p, &t)?) - want).abs() < 1e-12);
    let (p32, t32) = (p.to_dtype(DType::F32)?, t.to_dtype(DType::F32)?);
    let candle = candle_nn::loss::mse(&p32, &t32)?;
    assert!((scalar(&mse(&p32, &t32)?) - scalar(&candle)).abs() < 1e-5);
    gradcheck(&[p.clone(), t.clone()], |v| mse(&v[0], &v[1]));
    gradcheck(&[p, t], |v| mse(&v[0].t()?, &v[1].t()?));
    Ok(())
}

#[test]
fn bce_and_mse_bad_input_is_an_error() -> Result<()> {
    let dev = Device::Cpu;
    let a = Tensor::zeros((2, 3), DType::F32, &dev)?;
    let b = Tensor::zeros((3, 2), DType::F32, &dev)?;
    let ints = Tensor::zeros((2, 3), DType::U32, &dev)?;
    assert!(binary_cross_entropy_with_logits(&a, &b).is_err());
    assert!(mse(&a, &b).is_err());
    assert!(binary_cross_entropy_with_logits(&ints, &ints).is_err());
    assert!(mse(&ints, &ints).is_err());
    Ok(())
}

/// timm's `SoftTargetCrossEntropy` written out: `mean_n Σ_c −t_nc·(x_nc − logsumexp(x_n))`.
fn soft_ce_formula(x: &[f64], t: &[f64], c: usize) -> f64 {
    let n = x.len() / c;
    let mut total = 0.0;
    for (row, tr) in x.chunks(c).zip(t.chunks(c)) {
        let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
        total += row
            .iter()
            .zip(tr)
            .map(|(v, tc)| -tc * (v - lse))
            .sum::<f64>();
    }
    total / n as f64
}

/// Rows that are distributions: two mixed, smoothed one-hot rows as mixup makes them.
fn mixed_targets(n: usize, c: usize, lam: f64, eps: f64) -> Vec<f64> {
    let (off, on) = (eps / c as f64, 1.0 - eps + eps / c as f64);
    let mut t = vec![off; n * c];
    for i in 0..n {
        let (a, b) = (i % c, (n - 1 - i) % c);
        t[i * c + a] += (on - off) * lam;
        t[i * c + b] += (on - off) * (1.0 - lam);
    }
    t
}

#[test]
fn soft_target_cross_entropy_matches_the_formula_and_the_hard_loss() -> Result<()> {
    let dev = Device::Cpu;
    for (n, c, seed) in [(6, 5, 51), (3, 10, 52), (1, 2, 53)] {
        let x = (normal(&[n, c], seed) * 2.0)?;
        for (lam, eps) in [(0.7, 0.0), (0.3, 0.1), (1.0, 0.0)] {
            let t = mixed_targets(n, c, lam, eps);
            let tt = Tensor::from_vec(t.clone(), (n, c), &dev)?;
            let got = scalar(&soft_target_cross_entropy(&x, &tt)?);
            let want = soft_ce_formula(&values(&x), &t, c);
            assert_close(&[got], &[want], 1e-12, 1e-12, "soft CE vs formula");
        }
        // One-hot rows smoothed by ε: the hard loss with label smoothing ε.
        let hard: Vec<i64> = (0..n).map(|i| (i % c) as i64).collect();
        for eps in [0.0, 0.1] {
            let soft = Tensor::from_vec(mixed_targets(n, c, 1.0, eps), (n, c), &dev)?;
            let a = scalar(&soft_target_cross_entropy(&x, &soft)?);
            let b = scalar(&cross_entropy(
                &x,
                &Tensor::new(hard.as_slice(), &dev)?,
                eps,
                None,
            )?);
            assert_close(&[a], &[b], 1e-12, 1e-12, "one-hot soft CE vs cross_entropy");
        }
    }
    Ok(())
}

#[test]
fn soft_target_cross_entropy_gradient_matches_finite_differences() -> Result<()> {
    let dev = Device::Cpu;
    for (n, c, seed) in [(6, 5, 61), (4, 3, 62)] {
        let x = (normal(&[n, c], seed) * 2.0)?;
        let t = Tensor::from_vec(mixed_targets(n, c, 0.35, 0.1), (n, c), &dev)?;
        gradcheck(&[x.clone(), t.clone()], |v| {
            soft_target_cross_entropy(&v[0], &v[1])
        });
        // Strided logits.
        gradcheck(&[x.t()?.contiguous()?, t.clone()], |v| {
            soft_target_cross_entropy(&v[0].t()?, &v[1])
        });
        // The gradient wrt the logits is (softmax(x) − t) / N, written out.
        let var = candle_core::Var::from_tensor(&x)?;
        let grads = soft_target_cross_entropy(var.as_tensor(), &t)?.backward()?;
        let g = grads
            .get(var.as_tensor())
            .expect("a gradient for the logits");
        let (xv, tv) = (values(&x), values(&t));
        let mut want = Vec::new();
        for (row, tr) in xv.chunks(c).zip(tv.chunks(c)) {
            let z: f64 = row.iter().map(|v| v.exp()).sum();
            want.extend(
                row.iter()
                    .zip(tr)
                    .map(|(v, tc)| (v.exp() / z - tc) / n as f64),
            );
        }
        assert_close(&values(g), &want, 1e-12, 1e-10, "softmax − t over N");
    }
    let bad = soft_target_cross_entropy(&normal(&[2, 3], 1), &normal(&[2, 4], 2));
    assert!(bad.unwrap_err().to_string().contains("shapes differ"));
    Ok(())
}

/// Class weights: PyTorch's `cross_entropy(weight=w, ignore_index=-100, label_smoothing=ε)`,
/// by the formula (Σ_i (1-ε)·w_{y_i}·(-log p_{y_i}) + (ε/C)·Σ_c w_c·(-log p_{i,c})) / Σ_i w_{y_i}
/// computed here by hand, and by the values torch 2.15 printed for these inputs; a gradient
/// reaches the logits.
#[test]
fn weighted_cross_entropy_is_pytorchs_weighted_mean() {
    use candle_core::{Device, Tensor, Var};
    use finetune_kernels::ops::weighted_cross_entropy;
    let x = [
        [1.0f64, 2.0, 0.5],
        [0.1, -1.0, 2.0],
        [0.3, 0.3, 0.3],
        [2.0, 0.0, -1.0],
    ];
    let y = [1i64, 2, -100, 0];
    let w = [0.5, 2.0, 1.5];
    let hand = |eps: f64| {
        let (mut num, mut den) = (0.0, 0.0);
        for (row, &t) in x.iter().zip(&y).filter(|(_, &t)| t != -100) {
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            let nll = |c: usize| lse - row[c];
            num += (1.0 - eps) * w[t as usize] * nll(t as usize);
            num += eps / 3.0 * (0..3).map(|c| w[c] * nll(c)).sum::<f64>();
            den += w[t as usize];
        }
        num / den
    };
    let dev = Device::Cpu;
    let logits = Var::from_tensor(&Tensor::new(&x, &dev).unwrap()).unwrap();
    let targets = Tensor::new(&y, &dev).unwrap();
    for (eps, torch) in [(0.0, 0.3215843439102173), (0.2, 0.6150007843971252)] {
        let loss =
            weighted_cross_entropy(logits.as_tensor(), &targets, eps, Some(-100), &w).unwrap();
        let got = loss.to_scalar::<f64>().unwrap();
        assert!(
            (got - hand(eps)).abs() < 1e-12,
            "ε {eps}: {got} vs {}",
            hand(eps)
        );
        assert!(
            (got - torch).abs() < 1e-6,
            "ε {eps}: {got} vs torch {torch}"
        );
        let g = loss.backward().unwrap();
        let g = g.get(&logits).unwrap().to_vec2::<f64>().unwrap();
        assert!(
            g[2].iter().all(|v| *v == 0.0),
            "the ignored row gets no gradient"
        );
        assert!(g[0].iter().any(|v| *v != 0.0));
    }
    // Equal weights are the unweighted loss.
    let plain = finetune_kernels::ops::cross_entropy(logits.as_tensor(), &targets, 0.1, Some(-100))
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let even = weighted_cross_entropy(logits.as_tensor(), &targets, 0.1, Some(-100), &[2.0; 3])
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!((plain - even).abs() < 1e-12);
    let e = weighted_cross_entropy(logits.as_tensor(), &targets, 0.0, None, &[1.0; 2]);
    assert!(e.is_err());
}

/// Knowledge distillation's soft term written out from its definition (Hinton et al.; PyTorch's
/// `F.kl_div(log_softmax(s/T), softmax(t/T), reduction='batchmean') * T**2`): per row
/// `p = softmax(t/T)`, `q = softmax(s/T)`, `Σ_c p_c·(ln p_c − ln q_c)`, summed over the rows,
/// divided by N and multiplied by T².
fn kd_formula(s: &[f64], t: &[f64], c: usize, temp: f64) -> f64 {
    let softmax = |row: &[f64]| -> Vec<f64> {
        let e: Vec<f64> = row.iter().map(|v| (v / temp).exp()).collect();
        let z: f64 = e.iter().sum();
        e.iter().map(|v| v / z).collect()
    };
    let n = s.len() / c;
    let mut total = 0.0;
    for (sr, tr) in s.chunks(c).zip(t.chunks(c)) {
        let (q, p) = (softmax(sr), softmax(tr));
        total += p
            .iter()
            .zip(&q)
            .map(|(pc, qc)| pc * (pc.ln() - qc.ln()))
            .sum::<f64>();
    }
    total / n as f64 * temp * temp
}

#[test]
fn distillation_kl_matches_the_formula_and_pytorchs_kl_div() -> Result<()> {
    let dev = Device::Cpu;
    // The values torch 2.x printed for
    // `F.kl_div(F.log_softmax(s/T, -1), F.softmax(t/T, -1), reduction='batchmean') * T*T`
    // with these float64 logits.
    let s = Tensor::new(&[[1.0f64, -0.5, 2.0], [0.3, 0.1, -1.2]], &dev)?;
    let t = Tensor::new(&[[0.5f64, 0.2, 1.5], [-1.0, 2.0, 0.0]], &dev)?;
    for (temp, torch) in [
        (1.0, 0.3028011593626219),
        (2.0, 0.45223703248945335),
        (4.0, 0.5150951739311778),
    ] {
        let got = scalar(&distillation_kl(&s, &t, temp)?);
        assert_close(&[got], &[torch], 1e-12, 1e-12, "KD vs torch's kl_div");
        let want = kd_formula(&values(&s), &values(&t), 3, temp);
        assert_close(&[got], &[want], 1e-12, 1e-12, "KD vs the formula");
    }
    for (n, c, seed, temp) in [(6, 5, 71, 2.0), (3, 10, 72, 0.5), (1, 2, 73, 3.0)] {
        let x = (normal(&[n, c], seed) * 2.0)?;
        let y = (normal(&[n, c], seed + 100) * 3.0)?;
        let got = scalar(&distillation_kl(&x, &y, temp)?);
        let want = kd_formula(&values(&x), &values(&y), c, temp);
        assert_close(&[got], &[want], 1e-12, 1e-11, "KD vs the formula");
        // A student equal to its teacher has nothing to learn; otherwise KL > 0.
        assert!(scalar(&distillation_kl(&y, &y, temp)?).abs() < 1e-12);
        assert!(got > 0.0);
        // f32 agrees with f64.
        let got32 = distillation_kl(&x.to_dtype(DType::F32)?, &y.to_dtype(DType::F32)?, temp)?;
        assert_eq!(got32.dtype(), DType::F32);
        assert_close(&[scalar(&got32)], &[want], 1e-5, 1e-5, "KD in f32");
    }
    // A saturated teacher (probabilities that underflow to 0) stays finite.
    let x = Tensor::new(&[[0.0f32, 1.0, 2.0]], &dev)?;
    let y = Tensor::new(&[[0.0f32, 500.0, -500.0]], &dev)?;
    assert!(scalar(&distillation_kl(&x, &y, 1.0)?).is_finite());
    Ok(())
}

#[test]
fn distillation_kl_gradient_matches_finite_differences_and_skips_the_teacher() -> Result<()> {
    for (n, c, seed, temp) in [(6, 5, 81, 2.0), (4, 3, 82, 0.7), (2, 7, 83, 4.0)] {
        let x = (normal(&[n, c], seed) * 2.0)?;
        let y = (normal(&[n, c], seed + 100) * 2.0)?;
        gradcheck(std::slice::from_ref(&x), |v| {
            distillation_kl(&v[0], &y, temp)
        });
        // Strided student logits.
        gradcheck(&[x.t()?.contiguous()?], |v| {
            distillation_kl(&v[0].t()?, &y, temp)
        });
        // The gradient wrt the student is T·(softmax(s/T) − softmax(t/T)) / N, written out; the
        // teacher, even as a variable, receives none.
        let (xs, ys) = (
            candle_core::Var::from_tensor(&x)?,
            candle_core::Var::from_tensor(&y)?,
        );
        let grads = distillation_kl(xs.as_tensor(), ys.as_tensor(), temp)?.backward()?;
        assert!(
            grads.get(ys.as_tensor()).is_none(),
            "the teacher got a gradient"
        );
        let g = grads
            .get(xs.as_tensor())
            .expect("a gradient for the student");
        let soft = |row: &[f64]| -> Vec<f64> {
            let z: f64 = row.iter().map(|v| (v / temp).exp()).sum();
            row.iter().map(|v| (v / temp).exp() / z).collect()
        };
        let (xv, yv) = (values(&x), values(&y));
        let mut want = Vec::new();
        for (sr, tr) in xv.chunks(c).zip(yv.chunks(c)) {
            let (q, p) = (soft(sr), soft(tr));
            want.extend(q.iter().zip(&p).map(|(qc, pc)| temp * (qc - pc) / n as f64));
        }
        assert_close(&values(g), &want, 1e-12, 1e-10, "T·(q − p) / N");
    }
    Ok(())
}

#[test]
fn distillation_kl_bad_input_is_an_error() {
    let (a, b) = (normal(&[2, 3], 1), normal(&[2, 4], 2));
    let e = distillation_kl(&a, &b, 2.0).unwrap_err().to_string();
    assert!(e.contains("shapes differ"), "{e}");
    for temp in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = distillation_kl(&a, &a, temp).unwrap_err().to_string();
        assert!(e.contains("temperature must be > 0"), "{e}");
    }
    let e = distillation_kl(&normal(&[6], 3), &normal(&[6], 3), 1.0).unwrap_err();
    assert!(e.to_string().contains("[N, C]"), "{e}");
}
