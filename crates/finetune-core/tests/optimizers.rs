//! Optimizer trajectories against references written from PyTorch's documented algorithms
//! (torch.optim.SGD / Adam / AdamW / RMSprop pseudocode; Lion from its paper), in f64.

use candle_core::{Device, Tensor};
use finetune_core::optim::{
    Adam, AdamW, Lion, Optimizer, OptimizerConfig, OptimizerState, RmsProp, Sgd,
};
use finetune_core::{
    Grads, GroupBuilder, GroupSpec, LrSpec, ParamGroup, ParamStore, Result, TensorKind,
};

const P0: [f64; 5] = [0.5, -1.25, 2.0, 0.0, -0.3];
const TARGET: [f64; 5] = [1.0, 1.0, -1.0, 0.25, 0.0];
const STEPS: usize = 8;

/// Gradient of a quadratic bowl with a non-uniform curvature, so trajectories differ per element.
fn grad_of(p: &[f64]) -> Vec<f64> {
    p.iter()
        .zip(TARGET)
        .enumerate()
        .map(|(i, (x, t))| (1.0 + i as f64) * (x - t) + 0.1 * (i as f64 - 2.0))
        .collect()
}

fn one_group(lr: f64, wd: f64) -> Vec<ParamGroup> {
    vec![ParamGroup {
        name: "all".into(),
        params: vec!["w".into()],
        base_lr: lr,
        lr,
        weight_decay: wd,
    }]
}

fn store() -> ParamStore {
    let s = ParamStore::new();
    let p: Vec<f32> = P0.iter().map(|&x| x as f32).collect();
    s.insert(
        "w",
        &Tensor::new(p.as_slice(), &Device::Cpu).unwrap(),
        TensorKind::Parameter,
    )
    .unwrap();
    s
}

fn run(opt: &mut dyn Optimizer, s: &ParamStore, steps: usize) -> Result<Vec<Vec<f64>>> {
    let mut traj = Vec::new();
    for _ in 0..steps {
        let p: Vec<f64> = s
            .get("w")?
            .to_vec1::<f32>()?
            .iter()
            .map(|&x| x as f64)
            .collect();
        let g: Vec<f32> = grad_of(&p).iter().map(|&x| x as f32).collect();
        let mut grads = Grads::new();
        grads.insert("w", Tensor::new(g.as_slice(), &Device::Cpu)?);
        opt.step(s, &grads)?;
        traj.push(
            s.get("w")?
                .to_vec1::<f32>()?
                .iter()
                .map(|&x| x as f64)
                .collect(),
        );
    }
    Ok(traj)
}

fn check(name: &str, got: &[Vec<f64>], want: &[Vec<f64>]) {
    assert_eq!(got.len(), want.len());
    for (t, (g, w)) in got.iter().zip(want).enumerate() {
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            let tol = 2e-5 * (1.0 + b.abs());
            assert!(
                (a - b).abs() <= tol,
                "{name}: step {} elem {i}: got {a}, want {b}",
                t + 1
            );
        }
    }
    // The trajectory must actually move.
    assert!(
        got.last().unwrap() != &P0.to_vec(),
        "{name}: parameters never changed"
    );
}

fn reference(steps: usize, mut update: impl FnMut(usize, &mut [f64], &[f64])) -> Vec<Vec<f64>> {
    let mut p = P0.to_vec();
    (1..=steps)
        .map(|t| {
            let g = grad_of(&p);
            update(t, &mut p, &g);
            p.clone()
        })
        .collect()
}

#[test]
fn sgd_variants_match_torch_algorithm() -> Result<()> {
    for (mu, damp, nesterov, wd) in [
        (0.0, 0.0, false, 0.0),
        (0.0, 0.0, false, 0.02),
        (0.9, 0.0, false, 0.01),
        (0.9, 0.1, false, 0.0),
        (0.8, 0.0, true, 0.05),
        (0.8, 0.0, true, 0.0),
    ] {
        let lr = 0.05;
        let s = store();
        let mut opt = OptimizerConfig::Sgd(Sgd {
            momentum: mu,
            dampening: damp,
            nesterov,
        })
        .build(one_group(lr, wd))?;
        let got = run(opt.as_mut(), &s, STEPS)?;
        let mut b = [0.0; 5];
        let want = reference(STEPS, |t, p, g| {
            for i in 0..5 {
                let mut gt = g[i] + wd * p[i];
                if mu != 0.0 {
                    b[i] = if t > 1 {
                        mu * b[i] + (1.0 - damp) * gt
                    } else {
                        gt
                    };
                    gt = if nesterov { gt + mu * b[i] } else { b[i] };
                }
                p[i] -= lr * gt;
            }
        });
        check(
            &format!("sgd mu={mu} damp={damp} nesterov={nesterov}"),
            &got,
            &want,
        );
    }
    Ok(())
}

fn adam_reference(
    lr: f64,
    wd: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    amsgrad: bool,
    decoupled: bool,
) -> Vec<Vec<f64>> {
    let (mut m, mut v, mut vmax) = (vec![0.0; 5], vec![0.0; 5], vec![0.0; 5]);
    reference(STEPS, |t, p, g| {
        for i in 0..5 {
            let mut gt = g[i];
            if decoupled {
                p[i] *= 1.0 - lr * wd;
            } else {
                gt += wd * p[i];
            }
            m[i] = b1 * m[i] + (1.0 - b1) * gt;
            v[i] = b2 * v[i] + (1.0 - b2) * gt * gt;
            let mhat = m[i] / (1.0 - b1.powi(t as i32));
            let vhat = if amsgrad {
                vmax[i] = f64::max(vmax[i], v[i]);
                vmax[i] / (1.0 - b2.powi(t as i32))
            } else {
                v[i] / (1.0 - b2.powi(t as i32))
            };
            p[i] -= lr * mhat / (vhat.sqrt() + eps);
        }
    })
}

#[test]
fn adam_and_adamw_match_torch_algorithm() -> Result<()> {
    for amsgrad in [false, true] {
        for wd in [0.0, 0.1] {
            let (lr, betas, eps) = (0.1, (0.8, 0.95), 1e-6);
            let cfg = Adam {
                betas,
                eps,
                amsgrad,
            };
            let s = store();
            let mut opt = OptimizerConfig::Adam(cfg.clone()).build(one_group(lr, wd))?;
            let got = run(opt.as_mut(), &s, STEPS)?;
            check(
                &format!("adam ams={amsgrad} wd={wd}"),
                &got,
                &adam_reference(lr, wd, betas.0, betas.1, eps, amsgrad, false),
            );
            let s = store();
            let mut opt = OptimizerConfig::AdamW(AdamW(cfg)).build(one_group(lr, wd))?;
            let got = run(opt.as_mut(), &s, STEPS)?;
            check(
                &format!("adamw ams={amsgrad} wd={wd}"),
                &got,
                &adam_reference(lr, wd, betas.0, betas.1, eps, amsgrad, true),
            );
        }
    }
    Ok(())
}

#[test]
fn rmsprop_variants_match_torch_algorithm() -> Result<()> {
    for (centered, mu, wd) in [
        (false, 0.0, 0.0),
        (true, 0.0, 0.01),
        (false, 0.9, 0.0),
        (true, 0.5, 0.1),
    ] {
        let (lr, alpha, eps) = (0.01, 0.9, 1e-8);
        let s = store();
        let mut opt = OptimizerConfig::RmsProp(RmsProp {
            alpha,
            eps,
            momentum: mu,
            centered,
        })
        .build(one_group(lr, wd))?;
        let got = run(opt.as_mut(), &s, STEPS)?;
        let (mut v, mut ga, mut b) = (vec![0.0; 5], vec![0.0; 5], vec![0.0; 5]);
        let want = reference(STEPS, |_, p, g| {
            for i in 0..5 {
                let gt = g[i] + wd * p[i];
                v[i] = alpha * v[i] + (1.0 - alpha) * gt * gt;
                let mut vt = v[i];
                if centered {
                    ga[i] = alpha * ga[i] + (1.0 - alpha) * gt;
                    vt -= ga[i] * ga[i];
                }
                if mu > 0.0 {
                    b[i] = mu * b[i] + gt / (vt.sqrt() + eps);
                    p[i] -= lr * b[i];
                } else {
                    p[i] -= lr * gt / (vt.sqrt() + eps);
                }
            }
        });
        check(&format!("rmsprop centered={centered} mu={mu}"), &got, &want);
    }
    Ok(())
}

#[test]
fn lion_matches_paper_algorithm() -> Result<()> {
    let (lr, wd, b1, b2) = (0.02, 0.5, 0.9, 0.99);
    let s = store();
    let mut opt = OptimizerConfig::Lion(Lion { betas: (b1, b2) }).build(one_group(lr, wd))?;
    let got = run(opt.as_mut(), &s, STEPS)?;
    let mut m = [0.0; 5];
    let want = reference(STEPS, |_, p, g| {
        for i in 0..5 {
            let c = b1 * m[i] + (1.0 - b1) * g[i];
            let sgn = if c > 0.0 {
                1.0
            } else if c < 0.0 {
                -1.0
            } else {
                0.0
            };
            p[i] = p[i] * (1.0 - lr * wd) - lr * sgn;
            m[i] = b2 * m[i] + (1.0 - b2) * g[i];
        }
    });
    check("lion", &got, &want);
    Ok(())
}

#[test]
fn state_round_trip_resumes_bit_identically() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("ft-optstate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["sgd", "adam", "adamw", "rmsprop", "lion"] {
        let mut cfg = OptimizerConfig::default_for(name)?;
        if let OptimizerConfig::Sgd(s) = &mut cfg {
            s.momentum = 0.9;
        }
        let lr = 0.01;
        let s_full = store();
        let mut full = cfg.build(one_group(lr, 0.01))?;
        let want = run(full.as_mut(), &s_full, 6)?;

        let s = store();
        let mut first = cfg.build(one_group(lr, 0.01))?;
        run(first.as_mut(), &s, 3)?;
        first.state()?.save(&dir)?;
        let mut second = cfg.build(one_group(lr, 0.01))?;
        second.load_state(OptimizerState::load(&dir)?)?;
        let got = run(second.as_mut(), &s, 3)?;
        assert_eq!(got.last(), want.last(), "{name}: resumed run differs");
    }
    // A state of another optimizer is refused with a clear message.
    let mut sgd = OptimizerConfig::default_for("sgd")?.build(one_group(0.1, 0.0))?;
    let e = sgd
        .load_state(OptimizerState::load(&dir)?)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`lion`") && e.contains("`sgd`"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn frozen_parameters_get_no_gradient_and_no_update() -> Result<()> {
    let dev = Device::Cpu;
    let s = ParamStore::new();
    s.insert(
        "a.weight",
        &Tensor::new(&[1f32, 2.0], &dev)?,
        TensorKind::Parameter,
    )?;
    s.insert(
        "b.weight",
        &Tensor::new(&[3f32, 4.0], &dev)?,
        TensorKind::Parameter,
    )?;
    finetune_core::FreezeSpec::new()
        .freeze("a.*")?
        .apply_fresh(&s)?;
    let groups = GroupBuilder::new(0.1, 0.0).build(&s)?;
    let mut opt = OptimizerConfig::AdamW(AdamW::default()).build(groups)?;
    let loss = (s.get("a.weight")?.sqr()?.sum_all()? + s.get("b.weight")?.sqr()?.sum_all()?)?;
    let grads = Grads::from_backward(&s, &loss.backward()?);
    assert!(
        grads.get("a.weight").is_none(),
        "frozen parameter received a gradient"
    );
    assert!(grads.get("b.weight").is_some());
    // Even a gradient supplied by hand for a frozen parameter is ignored.
    let mut grads = grads;
    grads.insert("a.weight", Tensor::new(&[1f32, 1.0], &dev)?);
    opt.step(&s, &grads)?;
    assert_eq!(s.get("a.weight")?.to_vec1::<f32>()?, vec![1.0, 2.0]);
    assert_ne!(s.get("b.weight")?.to_vec1::<f32>()?, vec![3.0, 4.0]);
    Ok(())
}

#[test]
fn groups_apply_their_own_lr_and_decay() -> Result<()> {
    let dev = Device::Cpu;
    let s = ParamStore::new();
    s.insert(
        "body.weight",
        &Tensor::new(&[[1f32, 1.0]], &dev)?,
        TensorKind::Parameter,
    )?;
    s.insert(
        "head.weight",
        &Tensor::new(&[[1f32, 1.0]], &dev)?,
        TensorKind::Parameter,
    )?;
    let groups = GroupBuilder::new(0.1, 0.0)
        .spec(GroupSpec::new("head", &["head.*"])?.lr(LrSpec::Scale(10.0)))
        .build(&s)?;
    let mut opt = OptimizerConfig::Sgd(Sgd::default()).build(groups)?;
    let mut grads = Grads::new();
    grads.insert("body.weight", Tensor::new(&[[1f32, 1.0]], &dev)?);
    grads.insert("head.weight", Tensor::new(&[[1f32, 1.0]], &dev)?);
    opt.step(&s, &grads)?;
    let body = s.get("body.weight")?.flatten_all()?.to_vec1::<f32>()?;
    let head = s.get("head.weight")?.flatten_all()?.to_vec1::<f32>()?;
    assert!(
        (body[0] - 0.9).abs() < 1e-6 && (head[0] - 0.0).abs() < 1e-6,
        "{body:?} {head:?}"
    );
    // set_lr (what a schedule does) changes the next step.
    opt.set_lr(0, 0.0);
    opt.step(&s, &grads)?;
    assert!((s.get("body.weight")?.flatten_all()?.to_vec1::<f32>()?[0] - 0.9).abs() < 1e-6);
    Ok(())
}

#[test]
fn large_parameters_take_the_parallel_path_identically() -> Result<()> {
    // Over one chunk, the update is split across threads: it must equal a per-element reference.
    let n = 100_003;
    let dev = Device::Cpu;
    let p0: Vec<f32> = (0..n).map(|i| ((i % 97) as f32 - 48.0) / 50.0).collect();
    let g: Vec<f32> = (0..n).map(|i| ((i % 13) as f32 - 6.0) / 7.0).collect();
    let s = ParamStore::new();
    s.insert(
        "w",
        &Tensor::new(p0.as_slice(), &dev)?,
        TensorKind::Parameter,
    )?;
    let mut opt = OptimizerConfig::AdamW(AdamW::default()).build(one_group(1e-3, 0.01))?;
    let mut grads = Grads::new();
    grads.insert("w", Tensor::new(g.as_slice(), &dev)?);
    opt.step(&s, &grads)?;
    let got = s.get("w")?.to_vec1::<f32>()?;
    for i in (0..n).step_by(4999) {
        let p = p0[i] as f64 * (1.0 - 1e-3 * 0.01);
        let gi = g[i] as f64;
        let m = 0.1 * gi / (1.0 - 0.9);
        let v = 0.001 * gi * gi / (1.0 - 0.999);
        let want = p - 1e-3 * m / (v.sqrt() + 1e-8);
        assert!(
            (got[i] as f64 - want).abs() < 1e-6,
            "elem {i}: {} vs {want}",
            got[i]
        );
    }
    Ok(())
}

#[test]
fn invalid_hyper_parameters_are_rejected() {
    let bad = [
        OptimizerConfig::Sgd(Sgd {
            momentum: 0.0,
            dampening: 0.0,
            nesterov: true,
        }),
        OptimizerConfig::Adam(Adam {
            betas: (1.0, 0.999),
            ..Adam::default()
        }),
        OptimizerConfig::RmsProp(RmsProp {
            alpha: -0.1,
            ..RmsProp::default()
        }),
        OptimizerConfig::Lion(Lion { betas: (0.9, 1.5) }),
    ];
    for cfg in bad {
        assert!(cfg.build(one_group(0.1, 0.0)).is_err(), "{cfg:?} accepted");
    }
    assert!(OptimizerConfig::default_for("adagrad").is_err());
    assert!(OptimizerConfig::default_for("sgd")
        .unwrap()
        .build(one_group(-1.0, 0.0))
        .is_err());
}

/// Every optimizer and option, updated with tensor ops on the device path (what a GPU runs),
/// follows the in-place CPU path's trajectory; a device-path state saved and loaded resumes
/// exactly.
#[test]
fn the_device_path_follows_the_in_place_path_and_resumes() -> Result<()> {
    let mut configs = Vec::new();
    for (momentum, dampening, nesterov) in [(0.0, 0.0, false), (0.9, 0.1, false), (0.8, 0.0, true)]
    {
        configs.push(OptimizerConfig::Sgd(Sgd {
            momentum,
            dampening,
            nesterov,
        }));
    }
    for amsgrad in [false, true] {
        let adam = Adam {
            amsgrad,
            ..Adam::default()
        };
        configs.push(OptimizerConfig::Adam(adam.clone()));
        configs.push(OptimizerConfig::AdamW(AdamW(adam)));
    }
    for (centered, momentum) in [(false, 0.0), (true, 0.5)] {
        configs.push(OptimizerConfig::RmsProp(RmsProp {
            centered,
            momentum,
            ..RmsProp::default()
        }));
    }
    configs.push(OptimizerConfig::Lion(Lion::default()));
    let dir = std::env::temp_dir().join(format!("ft-optdevice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for cfg in configs {
        let name = format!("{cfg:?}");
        let (a, b) = (store(), store());
        let want = run(cfg.build(one_group(0.01, 0.02))?.as_mut(), &a, STEPS)?;
        let got = run(
            cfg.build_device_path(one_group(0.01, 0.02))?.as_mut(),
            &b,
            STEPS,
        )?;
        check(&name, &got, &want);

        let straight = run(
            cfg.build_device_path(one_group(0.01, 0.02))?.as_mut(),
            &store(),
            6,
        )?;
        let s = store();
        let mut first = cfg.build_device_path(one_group(0.01, 0.02))?;
        run(first.as_mut(), &s, 3)?;
        first.state()?.save(&dir)?;
        let mut second = cfg.build_device_path(one_group(0.01, 0.02))?;
        second.load_state(OptimizerState::load(&dir)?)?;
        let resumed = run(second.as_mut(), &s, 3)?;
        assert_eq!(
            resumed.last(),
            straight.last(),
            "{name}: resumed run differs"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
