//! Every fused op on the test device against the same op on the CPU: the forward values and
//! the gradient of every input (through `Σ w·f(x)` with fixed random `w`), in f32.
//!
//! `FINETUNE_TEST_DEVICE` picks the device: `cpu` (the default), or `cuda`, `cuda:N`,
//! `metal` in a build with that feature (`scripts/gpu-check.sh` runs this file on a GPU). Off
//! the CPU the fused ops fall back to their candle compositions, the path a GPU trains on; on
//! the CPU the device side calls those compositions (`ops::*_composed`) itself, so the same
//! pairing — fused kernels against what a GPU runs — is checked in CI every day (for the
//! losses, which have no separate composition, their formulas written with composed ops).

mod common;

use candle_core::{DType, Device, Tensor};
use common::{analytic_grads, assert_tensors_close, normal};
use finetune_kernels::ops::{self, LoraArgs};
use finetune_kernels::{Result, Rng};

/// The device under test, from `FINETUNE_TEST_DEVICE`.
fn device() -> Device {
    let spec = std::env::var("FINETUNE_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let ordinal = |s: &str| s.parse::<usize>().expect("FINETUNE_TEST_DEVICE: cuda:N");
    let dev = match spec.as_str() {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Device::new_cuda(0),
        "metal" => Device::new_metal(0),
        s if s.starts_with("cuda:") => Device::new_cuda(ordinal(&s[5..])),
        s => panic!("FINETUNE_TEST_DEVICE: expected cpu, cuda, cuda:N or metal, got `{s}`"),
    };
    dev.unwrap_or_else(|e| panic!("FINETUNE_TEST_DEVICE={spec}: {e}"))
}

/// An op under test: the inputs, and whether it runs as on a GPU (the composition).
type Op<'a> = dyn Fn(&[Tensor], bool) -> Result<Tensor> + 'a;

/// Runs `f` on `inputs` (f32, on the CPU) with the fused kernels, and on the same values on
/// the test device as a GPU runs it; compares outputs and every input's gradient.
fn check(name: &str, inputs: &[Tensor], tol: f64, f: &Op<'_>) {
    let dev = device();
    let cpu: Vec<Tensor> = inputs.iter().map(f32).collect();
    let on_dev: Vec<Tensor> = cpu.iter().map(|t| t.to_device(&dev).unwrap()).collect();
    let composed = dev.is_cpu();
    let want = f(&cpu, false).unwrap_or_else(|e| panic!("{name}, fused on the CPU: {e}"));
    let got = f(&on_dev, composed).unwrap_or_else(|e| panic!("{name}, on {dev:?}: {e}"));
    assert!(
        got.device().same_device(&dev),
        "{name}: output left the device"
    );
    assert_tensors_close(&got, &want, tol, tol, &format!("{name}: forward"));
    let gw = analytic_grads(&cpu, &|xs| f(xs, false)).expect("CPU backward");
    let gg = analytic_grads(&on_dev, &|xs| f(xs, composed)).expect("device backward");
    for (i, (g, w)) in gg.iter().zip(&gw).enumerate() {
        assert!(
            g.device().same_device(&dev),
            "{name}: gradient {i} left the device"
        );
        assert_tensors_close(g, w, tol, tol, &format!("{name}: gradient of input {i}"));
    }
}

fn f32(t: &Tensor) -> Tensor {
    t.to_dtype(DType::F32).expect("to f32")
}

const TOL: f64 = 1e-4;

#[test]
fn linear_layer_norm_and_activations() {
    let x = normal(&[3, 5, 16], 1);
    let (w, b) = (normal(&[12, 16], 2), normal(&[12], 3));
    check("linear", &[x.clone(), w, b], TOL, &|t, gpu| match gpu {
        true => ops::linear_composed(&t[0], &t[1], Some(&t[2])),
        false => ops::linear(&t[0], &t[1], Some(&t[2])),
    });
    let (g, beta) = (normal(&[16], 4), normal(&[16], 5));
    check(
        "layer_norm",
        &[x.clone(), g, beta],
        TOL,
        &|t, gpu| match gpu {
            true => ops::layer_norm_composed(&t[0], &t[1], &t[2], 1e-12),
            false => ops::layer_norm(&t[0], &t[1], &t[2], 1e-12),
        },
    );
    type Unary = fn(&Tensor) -> Result<Tensor>;
    let unary: [(&str, Unary, Unary); 4] = [
        (
            "softmax",
            ops::softmax_last_dim,
            ops::softmax_last_dim_composed,
        ),
        (
            "log_softmax",
            ops::log_softmax_last_dim,
            ops::log_softmax_last_dim_composed,
        ),
        ("gelu", ops::gelu, ops::gelu_composed),
        ("gelu_new", ops::gelu_new, ops::gelu_new_composed),
    ];
    for (name, fused, composed) in unary {
        check(
            name,
            std::slice::from_ref(&x),
            TOL,
            &move |t, gpu| match gpu {
                true => composed(&t[0]),
                false => fused(&t[0]),
            },
        );
    }
    check(
        "add_relu",
        &[x.clone(), normal(&[3, 5, 16], 6)],
        TOL,
        &|t, gpu| match gpu {
            true => ops::add_relu_composed(&t[0], &t[1]),
            false => ops::add_relu(&t[0], &t[1]),
        },
    );
}

#[test]
fn attention_dropout_and_lora() {
    let qkv = [
        normal(&[2, 5, 16], 7),
        normal(&[2, 5, 16], 8),
        normal(&[2, 5, 16], 9),
    ];
    // The second sequence's last two positions are padding.
    let mask = Tensor::new(&[[0f32; 5], [0., 0., 0., -1e4, -1e4]], &Device::Cpu).unwrap();
    check("attention", &qkv, TOL, &|t, gpu| {
        let m = mask.to_device(t[0].device())?;
        let mut rng = Rng::seed_from_u64(3);
        match gpu {
            true => ops::attention_composed(&t[0], &t[1], &t[2], 4, Some(&m), 0.0, false, &mut rng),
            false => ops::attention(&t[0], &t[1], &t[2], 4, Some(&m), 0.0, false, &mut rng),
        }
    });
    // Dropout draws its mask from the same stream on every device.
    check("dropout", &qkv[..1], TOL, &|t, gpu| {
        let mut rng = Rng::seed_from_u64(4);
        match gpu {
            true => ops::dropout_composed(&t[0], 0.3, true, &mut rng),
            false => ops::dropout(&t[0], 0.3, true, &mut rng),
        }
    });
    let lora = [
        normal(&[2, 5, 16], 10),
        normal(&[12, 16], 11),
        normal(&[12], 12),
        normal(&[4, 16], 13),
        normal(&[12, 4], 14),
    ];
    check("lora_linear", &lora, TOL, &|t, gpu| {
        let args = LoraArgs {
            a: &t[3],
            b: &t[4],
            scale: 2.0,
            p: 0.1,
        };
        let mut rng = Rng::seed_from_u64(5);
        match gpu {
            true => ops::lora_linear_composed(&t[0], &t[1], Some(&t[2]), args, true, &mut rng),
            false => ops::lora_linear(&t[0], &t[1], Some(&t[2]), args, true, &mut rng),
        }
    });
}

#[test]
fn convolution_batch_norm_and_pooling() {
    let x = normal(&[2, 3, 9, 9], 15);
    let w = normal(&[4, 3, 3, 3], 16);
    check("conv2d", &[x.clone(), w], TOL, &|t, gpu| match gpu {
        true => ops::conv2d_candle(&t[0], &t[1], 2, 1, 1),
        false => ops::conv2d(&t[0], &t[1], 2, 1, 1),
    });
    let (g, b) = (normal(&[3], 17), normal(&[3], 18));
    check("batch_norm", &[x.clone(), g, b], TOL, &|t, gpu| {
        let out = match gpu {
            true => ops::batch_norm_train_composed(&t[0], &t[1], &t[2], 1e-5, true)?,
            false => ops::batch_norm_train(&t[0], &t[1], &t[2], 1e-5, true)?,
        };
        Ok(out.y)
    });
    check("max_pool2d 3/2", &[x], TOL, &|t, gpu| match gpu {
        true => ops::max_pool2d_composed(&t[0], (3, 3), (2, 2), (1, 1)),
        false => ops::max_pool2d(&t[0], (3, 3), (2, 2), (1, 1)),
    });
}

/// `mean_n Σ_c −t_nc · log_softmax(x_n)_c` from candle's composed log-softmax: the formula the
/// losses below reduce to (PyTorch's, with label smoothing folded into `t`).
fn soft_ce_formula(x: &Tensor, t: &Tensor) -> Result<Tensor> {
    let lp = ops::log_softmax_last_dim_composed(x)?;
    Ok(((t * lp)?.sum_all()?.neg()? / x.dim(0)? as f64)?)
}

/// The losses on the device against, on the CPU, their formulas written with composed ops.
#[test]
fn losses() {
    let logits = normal(&[6, 5], 19);
    let targets = [3u32, 0, 4, 1, 1, 2];
    // Label smoothing 0.1 over 5 classes: 0.02 off, 0.92 on (PyTorch's).
    let mut smoothed = vec![0.02f32; 30];
    for (n, &c) in targets.iter().enumerate() {
        smoothed[n * 5 + c as usize] = 0.92;
    }
    let smoothed = Tensor::from_vec(smoothed, (6, 5), &Device::Cpu).unwrap();
    check(
        "cross_entropy",
        std::slice::from_ref(&logits),
        TOL,
        &|t, formula| match formula {
            true => soft_ce_formula(&t[0], &smoothed),
            false => {
                let y = Tensor::new(&targets, t[0].device())?;
                ops::cross_entropy(&t[0], &y, 0.1, None)
            }
        },
    );
    let soft = ops::softmax_last_dim(&f32(&normal(&[6, 5], 20))).unwrap();
    check(
        "soft_target_cross_entropy",
        std::slice::from_ref(&logits),
        TOL,
        &|t, formula| match formula {
            true => soft_ce_formula(&t[0], &soft),
            false => ops::soft_target_cross_entropy(&t[0], &soft.to_device(t[0].device())?),
        },
    );
    // T² · KL(softmax(teacher/T) ‖ softmax(student/T)), batch mean, T = 2.
    let teacher = f32(&normal(&[6, 5], 21));
    let p_t = ops::softmax_last_dim_composed(&(&teacher / 2.0).unwrap()).unwrap();
    let entropy = soft_ce_formula(&(&teacher / 2.0).unwrap(), &p_t).unwrap();
    check(
        "distillation_kl",
        &[logits],
        TOL,
        &|t, formula| match formula {
            true => Ok(((soft_ce_formula(&(&t[0] / 2.0)?, &p_t)? - &entropy)? * 4.0)?),
            false => ops::distillation_kl(&t[0], &teacher.to_device(t[0].device())?, 2.0),
        },
    );
}
