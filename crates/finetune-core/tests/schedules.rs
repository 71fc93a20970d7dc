//! LR schedules against references written here, independently of the library, from
//! transformers' `optimization.py` lambdas (constant, linear, cosine, cosine with min lr, hard
//! restarts, polynomial, inverse sqrt) and PyTorch's `torch.optim.lr_scheduler` (StepLR,
//! MultiStepLR and ExponentialLR in their chainable, step-by-step form; OneCycleLR's phase walk;
//! ReduceLROnPlateau's `step`). Values must agree to a relative error of 1e-9.

use std::f64::consts::PI;

use finetune_core::optim::OptimizerConfig;
use finetune_core::schedule::{warmup_from_ratio, Anneal, InverseSqrt, PlateauMode, ThresholdMode};
use finetune_core::{
    LrScheduler, ParamGroup, PlateauConfig, ReduceLrOnPlateau, ScheduleConfig, SchedulerState,
};

const LR: f64 = 3e-4;

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (step, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w == 0.0 {
            g.abs() <= 1e-15
        } else {
            ((g - w) / w).abs() <= 1e-9
        };
        assert!(ok, "{what}: step {step}: got {g:e}, want {w:e}");
    }
}

fn curve(c: &ScheduleConfig, lr: f64) -> Vec<f64> {
    c.curve(lr).unwrap_or_else(|e| panic!("{}: {e}", c.name))
}

fn config(name: &str, total: u64, warmup: u64) -> ScheduleConfig {
    let mut c = ScheduleConfig::new(name, total);
    c.warmup_steps = warmup;
    c
}

// ---- references: transformers (multipliers of the lr, as its LambdaLR lambdas) ----

fn tf_warmup(step: u64, warmup: u64) -> Option<f64> {
    if step < warmup {
        Some(step as f64 / (warmup.max(1)) as f64)
    } else {
        None
    }
}

fn tf_progress(step: u64, warmup: u64, total: u64) -> f64 {
    (step as f64 - warmup as f64) / (1.0f64).max(total as f64 - warmup as f64)
}

fn tf_constant(step: u64, warmup: u64) -> f64 {
    tf_warmup(step, warmup).unwrap_or(1.0)
}

fn tf_linear(step: u64, warmup: u64, total: u64) -> f64 {
    tf_warmup(step, warmup).unwrap_or_else(|| {
        0.0f64.max((total as f64 - step as f64) / (1.0f64).max(total as f64 - warmup as f64))
    })
}

fn tf_cosine(step: u64, warmup: u64, total: u64, num_cycles: f64) -> f64 {
    tf_warmup(step, warmup).unwrap_or_else(|| {
        let p = tf_progress(step, warmup, total);
        0.0f64.max(0.5 * (1.0 + (PI * num_cycles * 2.0 * p).cos()))
    })
}

fn tf_cosine_min_lr(step: u64, warmup: u64, total: u64, num_cycles: f64, rate: f64) -> f64 {
    tf_warmup(step, warmup).unwrap_or_else(|| {
        let p = tf_progress(step, warmup, total);
        let f = 0.5 * (1.0 + (PI * num_cycles * 2.0 * p).cos());
        0.0f64.max(f * (1.0 - rate) + rate)
    })
}

fn tf_hard_restarts(step: u64, warmup: u64, total: u64, num_cycles: u64) -> f64 {
    tf_warmup(step, warmup).unwrap_or_else(|| {
        let p = tf_progress(step, warmup, total);
        if p >= 1.0 {
            return 0.0;
        }
        0.0f64.max(0.5 * (1.0 + (PI * ((num_cycles as f64 * p) % 1.0)).cos()))
    })
}

fn tf_polynomial(step: u64, warmup: u64, total: u64, lr_init: f64, lr_end: f64, power: f64) -> f64 {
    if let Some(w) = tf_warmup(step, warmup) {
        return w;
    }
    if step > total {
        return lr_end / lr_init;
    }
    let lr_range = lr_init - lr_end;
    let decay_steps = (total - warmup) as f64;
    let pct_remaining = 1.0 - (step - warmup) as f64 / decay_steps;
    (lr_range * pct_remaining.powf(power) + lr_end) / lr_init
}

fn tf_inverse_sqrt(step: u64, warmup: u64, timescale: Option<u64>) -> f64 {
    let timescale = timescale.unwrap_or(if warmup > 0 { warmup } else { 10_000 }) as i64;
    if let Some(w) = tf_warmup(step, warmup) {
        return w;
    }
    let shift = timescale - warmup as i64;
    1.0 / ((step as i64 + shift) as f64 / timescale as f64).sqrt()
}

fn scaled(lr: f64, n: u64, f: impl Fn(u64) -> f64) -> Vec<f64> {
    (0..n).map(|s| lr * f(s)).collect()
}

// ---- references: PyTorch's chainable StepLR / MultiStepLR / ExponentialLR ----

/// Runs a chainable PyTorch scheduler: `lr_0 = base`, then `lr_e = update(e, lr_{e-1})`.
/// After `warmup` linear warm-up steps the scheduler starts (its epoch 0 at step `warmup`).
fn torch_chain(base: f64, n: u64, warmup: u64, update: impl Fn(u64, f64) -> f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut lr = base;
    for step in 0..n {
        if step < warmup {
            out.push(base * step as f64 / warmup as f64);
            continue;
        }
        let epoch = step - warmup;
        if epoch > 0 {
            lr = update(epoch, lr);
        }
        out.push(lr);
    }
    out
}

fn torch_step(base: f64, n: u64, warmup: u64, step_size: u64, gamma: f64) -> Vec<f64> {
    // StepLR.get_lr: `if last_epoch == 0 or last_epoch % step_size != 0: lr else lr * gamma`.
    torch_chain(base, n, warmup, |e, lr| {
        if e % step_size != 0 {
            lr
        } else {
            lr * gamma
        }
    })
}

fn torch_multistep(base: f64, n: u64, warmup: u64, milestones: &[u64], gamma: f64) -> Vec<f64> {
    // MultiStepLR.get_lr: `lr * gamma ** milestones[last_epoch]` (a Counter) at a milestone.
    torch_chain(base, n, warmup, |e, lr| {
        let count = milestones.iter().filter(|&&m| m == e).count();
        if count == 0 {
            lr
        } else {
            lr * gamma.powi(count as i32)
        }
    })
}

fn torch_exponential(base: f64, n: u64, warmup: u64, gamma: f64) -> Vec<f64> {
    torch_chain(base, n, warmup, |_, lr| lr * gamma)
}

// ---- reference: PyTorch OneCycleLR.get_lr ----

fn torch_one_cycle(
    max_lr: f64,
    total: u64,
    pct_start: f64,
    div_factor: f64,
    final_div_factor: f64,
    anneal_linear: bool,
    three_phase: bool,
) -> Vec<f64> {
    let initial_lr = max_lr / div_factor;
    let min_lr = initial_lr / final_div_factor;
    let t = total as f64;
    // (end_step, start_lr, end_lr)
    let phases: Vec<(f64, f64, f64)> = if three_phase {
        vec![
            (pct_start * t - 1.0, initial_lr, max_lr),
            (2.0 * pct_start * t - 2.0, max_lr, initial_lr),
            (t - 1.0, initial_lr, min_lr),
        ]
    } else {
        vec![
            (pct_start * t - 1.0, initial_lr, max_lr),
            (t - 1.0, max_lr, min_lr),
        ]
    };
    let anneal = |start: f64, end: f64, pct: f64| {
        if anneal_linear {
            (end - start) * pct + start
        } else {
            let cos_out = (PI * pct).cos() + 1.0;
            end + (start - end) / 2.0 * cos_out
        }
    };
    (0..total)
        .map(|step_num| {
            let step_num = step_num as f64;
            let mut start_step = 0.0;
            for (i, &(end_step, start_lr, end_lr)) in phases.iter().enumerate() {
                if step_num <= end_step || i == phases.len() - 1 {
                    let pct = (step_num - start_step) / (end_step - start_step);
                    return anneal(start_lr, end_lr, pct);
                }
                start_step = end_step;
            }
            unreachable!()
        })
        .collect()
}

// ---- every schedule, with and without warm-up ----

#[test]
fn constant_matches_transformers() {
    for w in [0, 1, 7] {
        let c = config("constant", 30, w);
        assert_close(
            &curve(&c, LR),
            &scaled(LR, 30, |s| tf_constant(s, w)),
            "constant",
        );
    }
}

#[test]
fn linear_matches_transformers() {
    for (total, w) in [(50, 0), (50, 10), (13, 13), (1, 0), (7, 1)] {
        let c = config("linear", total, w);
        let want = scaled(LR, total, |s| tf_linear(s, w, total));
        assert_close(&curve(&c, LR), &want, &format!("linear {total}/{w}"));
    }
    // Past the end the factor stays 0 (`max(0, ...)`).
    let s = LrScheduler::new(config("linear", 10, 2)).unwrap();
    assert_eq!(s.lr_at(10, LR), 0.0);
    assert_eq!(s.lr_at(25, LR), 0.0);
}

#[test]
fn cosine_matches_transformers() {
    for (total, w, cycles) in [
        (100, 0, None),
        (100, 10, None),
        (37, 5, Some(2.0)),
        (40, 0, Some(0.3)),
    ] {
        let mut c = config("cosine", total, w);
        c.num_cycles = cycles;
        let n = cycles.unwrap_or(0.5);
        let want = scaled(LR, total, |s| tf_cosine(s, w, total, n));
        assert_close(&curve(&c, LR), &want, &format!("cosine {total}/{w}/{n}"));
    }
    // Not clamped after the run, like transformers: the half-wave rises again.
    let s = LrScheduler::new(config("cosine", 10, 0)).unwrap();
    assert_close(
        &[s.lr_at(15, LR)],
        &[LR * tf_cosine(15, 0, 10, 0.5)],
        "cosine after the end",
    );
    assert!(s.lr_at(15, LR) > 0.4 * LR);
}

#[test]
fn cosine_with_a_floor_matches_transformers_min_lr() {
    // transformers' get_cosine_with_min_lr_schedule_with_warmup: `min_lr` becomes the rate
    // `min_lr / lr`, `min_lr_rate` is given directly.
    for (w, min_lr) in [(0, 3e-5), (8, 1.5e-4)] {
        let mut c = config("cosine", 60, w);
        c.min_lr = Some(min_lr);
        let want = scaled(LR, 60, |s| tf_cosine_min_lr(s, w, 60, 0.5, min_lr / LR));
        let got = curve(&c, LR);
        assert_close(&got, &want, "cosine min_lr");
        assert!(got[w as usize..]
            .iter()
            .all(|&x| x >= min_lr * (1.0 - 1e-12)));
    }
    let mut c = config("cosine", 60, 6);
    c.min_lr_rate = Some(0.1);
    c.num_cycles = Some(1.5);
    let want = scaled(LR, 60, |s| tf_cosine_min_lr(s, 6, 60, 1.5, 0.1));
    assert_close(&curve(&c, LR), &want, "cosine min_lr_rate");
}

#[test]
fn cosine_restarts_matches_transformers() {
    for (total, w, cycles) in [(60, 0, None), (60, 6, Some(3.0)), (45, 4, Some(4.0))] {
        let mut c = config("cosine-restarts", total, w);
        c.num_cycles = cycles;
        let n = cycles.unwrap_or(1.0) as u64;
        let want = scaled(LR, total, |s| tf_hard_restarts(s, w, total, n));
        let got = curve(&c, LR);
        assert_close(&got, &want, &format!("cosine-restarts {total}/{w}/{n}"));
    }
    // The restarts really happen: with 3 cycles over 60 steps the lr jumps back at 20 and 40.
    let mut c = config("cosine-restarts", 60, 0);
    c.num_cycles = Some(3.0);
    let got = curve(&c, LR);
    assert!(got[20] > got[19] && got[40] > got[39]);
    assert_close(&[got[20], got[40]], &[LR, LR], "restart peaks");
    let s = LrScheduler::new(c).unwrap();
    assert_eq!(s.lr_at(60, LR), 0.0);
}

#[test]
fn polynomial_matches_transformers() {
    for (total, w, lr_end, power) in [
        (50, 0, None, None),
        (50, 5, Some(1e-5), Some(2.0)),
        (33, 3, Some(0.0), Some(0.5)),
        (20, 0, Some(1e-4), Some(3.0)),
    ] {
        let mut c = config("polynomial", total, w);
        c.lr_end = lr_end;
        c.power = power;
        let (e, p) = (lr_end.unwrap_or(1e-7), power.unwrap_or(1.0));
        let want = scaled(LR, total, |s| tf_polynomial(s, w, total, LR, e, p));
        assert_close(
            &curve(&c, LR),
            &want,
            &format!("polynomial {total}/{w}/{e}/{p}"),
        );
    }
    // At and after the end: lr_end.
    let mut c = config("polynomial", 10, 2);
    c.lr_end = Some(1e-5);
    let s = LrScheduler::new(c).unwrap();
    assert_close(
        &[s.lr_at(10, LR), s.lr_at(99, LR)],
        &[1e-5, 1e-5],
        "polynomial end",
    );
}

#[test]
fn inverse_sqrt_matches_transformers() {
    assert_eq!(InverseSqrt::DEFAULT_TIMESCALE, 10_000);
    for (total, w, timescale) in [
        (40, 0, None),
        (40, 10, None),
        (40, 10, Some(4)),
        (40, 3, Some(25)),
        (30, 0, Some(5)),
    ] {
        let mut c = config("inverse-sqrt", total, w);
        c.timescale = timescale;
        let want = scaled(LR, total, |s| tf_inverse_sqrt(s, w, timescale));
        assert_close(
            &curve(&c, LR),
            &want,
            &format!("inverse-sqrt {w}/{timescale:?}"),
        );
    }
    // Without warm-up the default timescale 10 000 makes the decay very slow at first.
    let c = config("inverse-sqrt", 3, 0);
    let got = curve(&c, 1.0);
    assert_close(
        &got[2..],
        &[1.0 / (10_002.0f64 / 10_000.0).sqrt()],
        "slow decay",
    );
}

#[test]
fn step_matches_pytorch() {
    for (w, step_size, gamma) in [
        (0, 7, None),
        (0, 1, Some(0.5)),
        (5, 4, Some(0.9)),
        (3, 10, Some(1.5)),
    ] {
        let mut c = config("step", 40, w);
        c.step_size = Some(step_size);
        c.gamma = gamma;
        let want = torch_step(LR, 40, w, step_size, gamma.unwrap_or(0.1));
        assert_close(&curve(&c, LR), &want, &format!("step {w}/{step_size}"));
    }
}

#[test]
fn multistep_matches_pytorch() {
    let cases: [(u64, Vec<u64>, Option<f64>); 4] = [
        (0, vec![5, 12], None),
        (0, vec![12, 5, 20], Some(0.5)),
        (4, vec![3, 9], Some(0.3)),
        // A repeated milestone decays twice, as PyTorch's Counter.
        (2, vec![6, 6, 15], Some(0.5)),
    ];
    for (w, milestones, gamma) in cases {
        let mut c = config("multistep", 30, w);
        c.milestones = Some(milestones.clone());
        c.gamma = gamma;
        let want = torch_multistep(LR, 30, w, &milestones, gamma.unwrap_or(0.1));
        assert_close(
            &curve(&c, LR),
            &want,
            &format!("multistep {w}/{milestones:?}"),
        );
    }
}

#[test]
fn exponential_matches_pytorch() {
    for (w, gamma) in [(0, 0.9), (6, 0.95), (2, 1.01)] {
        let mut c = config("exponential", 80, w);
        c.gamma = Some(gamma);
        let want = torch_exponential(LR, 80, w, gamma);
        assert_close(&curve(&c, LR), &want, &format!("exponential {w}/{gamma}"));
    }
}

#[test]
fn one_cycle_matches_pytorch() {
    // (total, pct_start, div, final_div, linear, three_phase)
    let cases = [
        (100, None, None, None, false, false),
        (100, Some(0.25), Some(10.0), Some(100.0), true, false),
        (57, Some(0.3), None, None, false, true),
        (57, Some(0.4), Some(5.0), Some(1e3), true, true),
        // Fractional phase ends (0.3 × 17 − 1 = 4.1).
        (17, None, None, None, false, false),
        // An empty first phase (pct_start 0) and a run of a single step.
        (10, Some(0.0), None, None, false, false),
        (1, None, None, None, false, false),
    ];
    for (total, pct, div, fdiv, linear, three) in cases {
        let mut c = config("one-cycle", total, 0);
        c.pct_start = pct;
        c.div_factor = div;
        c.final_div_factor = fdiv;
        c.anneal = linear.then_some(Anneal::Linear);
        c.three_phase = three;
        let want = torch_one_cycle(
            LR,
            total,
            pct.unwrap_or(0.3),
            div.unwrap_or(25.0),
            fdiv.unwrap_or(1e4),
            linear,
            three,
        );
        let got = curve(&c, LR);
        assert_close(
            &got,
            &want,
            &format!("one-cycle {total}/{pct:?}/{linear}/{three}"),
        );
    }
    // The defaults: starts at max_lr / 25, peaks at max_lr, ends at max_lr / 25 / 1e4.
    let got = curve(&config("one-cycle", 100, 0), LR);
    assert_close(
        &[got[0], got[29], got[99]],
        &[LR / 25.0, LR, LR / 25.0 / 1e4],
        "one-cycle ends",
    );
    let peak = got.iter().cloned().fold(0.0, f64::max);
    assert_eq!(peak, got[29]);
}

#[test]
fn warmup_ratio_is_ceil_of_the_run() {
    assert_eq!(warmup_from_ratio(0.1, 95).unwrap(), 10);
    assert_eq!(warmup_from_ratio(0.06, 1000).unwrap(), 60);
    assert_eq!(warmup_from_ratio(0.0, 10).unwrap(), 0);
    let w = warmup_from_ratio(0.1, 95).unwrap();
    let c = config("linear", 95, w);
    assert_close(
        &curve(&c, LR),
        &scaled(LR, 95, |s| tf_linear(s, 10, 95)),
        "linear ratio",
    );
}

// ---- per-group lrs on an optimizer ----

fn group(name: &str, base_lr: f64) -> ParamGroup {
    ParamGroup {
        name: name.into(),
        params: vec![],
        base_lr,
        lr: base_lr,
        weight_decay: 0.0,
    }
}

#[test]
fn drives_every_param_group_from_its_base_lr() {
    let groups = vec![group("body", 1e-4), group("head", 1e-3)];
    let mut opt = OptimizerConfig::default_for("adamw")
        .unwrap()
        .build(groups)
        .unwrap();
    let mut s = LrScheduler::new(config("cosine", 20, 4)).unwrap();
    s.check_optimizer(opt.as_ref()).unwrap();
    for step in 0..20 {
        s.apply(opt.as_mut());
        let lrs: Vec<f64> = opt.groups().iter().map(|g| g.lr).collect();
        let f = tf_cosine(step, 4, 20, 0.5);
        assert_close(&lrs, &[1e-4 * f, 1e-3 * f], &format!("groups at {step}"));
        // The base lrs stay put.
        assert_eq!(opt.groups()[1].base_lr, 1e-3);
        s.step();
    }
    assert_eq!(s.current_step(), 20);

    // A group whose base lr is not above polynomial's lr_end is refused.
    let mut c = config("polynomial", 20, 0);
    c.lr_end = Some(5e-4);
    let s = LrScheduler::new(c).unwrap();
    let err = s.check_optimizer(opt.as_ref()).unwrap_err().to_string();
    assert!(
        err.contains("param group 0") && err.contains("`lr_end`"),
        "{err}"
    );
}

// ---- checkpoint and resume ----

fn all_configs() -> Vec<ScheduleConfig> {
    let mut out = vec![
        config("constant", 40, 5),
        config("linear", 40, 5),
        config("inverse-sqrt", 40, 5),
    ];
    let mut c = config("cosine", 40, 5);
    c.min_lr = Some(1e-5);
    c.num_cycles = Some(0.7);
    out.push(c);
    let mut c = config("cosine-restarts", 40, 3);
    c.num_cycles = Some(3.0);
    out.push(c);
    let mut c = config("polynomial", 40, 4);
    c.power = Some(2.0);
    c.lr_end = Some(1e-6);
    out.push(c);
    let mut c = config("step", 40, 2);
    c.step_size = Some(6);
    c.gamma = Some(0.3);
    out.push(c);
    let mut c = config("multistep", 40, 2);
    c.milestones = Some(vec![10, 25]);
    out.push(c);
    let mut c = config("exponential", 40, 0);
    c.gamma = Some(0.97);
    out.push(c);
    let mut c = config("one-cycle", 40, 0);
    c.three_phase = true;
    c.anneal = Some(Anneal::Linear);
    c.pct_start = Some(0.35);
    out.push(c);
    let mut c = config("linear", 40, 4);
    c.plateau = Some(PlateauConfig {
        patience: 1,
        factor: 0.5,
        cooldown: 1,
        ..PlateauConfig::default()
    });
    out.push(c);
    out
}

/// A metric that improves, then stalls: enough to trigger plateau reductions.
fn metric(step: u64) -> f64 {
    if step < 8 {
        1.0 / (1.0 + step as f64)
    } else {
        0.2
    }
}

#[test]
fn resumes_exactly_from_a_serialised_state() {
    let bases = [LR, 1.7e-3];
    for cfg in all_configs() {
        let name = cfg.name.clone();
        let mut straight = LrScheduler::new(cfg.clone()).unwrap();
        let mut resumed: Option<LrScheduler> = None;
        for step in 0..40u64 {
            if step == 17 {
                // Save mid-run, through JSON, and continue from the copy.
                let json = straight.state().to_json().unwrap();
                let state = SchedulerState::from_json(&json).unwrap();
                assert_eq!(state, straight.state(), "{name}: state round trip");
                let mut fresh = LrScheduler::new(cfg.clone()).unwrap();
                fresh.load_state(state).unwrap();
                resumed = Some(fresh);
            }
            if let Some(r) = &resumed {
                assert_eq!(r.current_step(), straight.current_step());
                for b in bases {
                    // Bit-for-bit.
                    assert_eq!(
                        r.lr(b).to_bits(),
                        straight.lr(b).to_bits(),
                        "{name} at {step}"
                    );
                }
            }
            if step % 2 == 1 {
                let a = straight.observe_metric(metric(step));
                if let Some(r) = &mut resumed {
                    assert_eq!(
                        r.observe_metric(metric(step)),
                        a,
                        "{name}: reduction at {step}"
                    );
                }
            }
            straight.step();
            if let Some(r) = &mut resumed {
                r.step();
            }
        }
        if cfg.plateau.is_some() {
            assert!(straight.plateau().unwrap().state().num_reductions > 0);
        }
    }
}

#[test]
fn plateau_state_before_any_metric_round_trips() {
    // `best` starts at ±inf, which JSON numbers cannot hold.
    for mode in [PlateauMode::Min, PlateauMode::Max] {
        let mut c = config("constant", 5, 0);
        c.plateau = Some(PlateauConfig {
            mode,
            ..PlateauConfig::default()
        });
        let s = LrScheduler::new(c).unwrap();
        let back = SchedulerState::from_json(&s.state().to_json().unwrap()).unwrap();
        assert_eq!(back, s.state());
        let best = back.plateau.unwrap().best;
        assert!(best.is_infinite() && (best > 0.0) == (mode == PlateauMode::Min));
    }
}

#[test]
fn resume_refuses_another_schedule() {
    let mut a = LrScheduler::new(config("linear", 40, 5)).unwrap();
    let b = LrScheduler::new(config("linear", 40, 6)).unwrap();
    let err = a.load_state(b.state()).unwrap_err().to_string();
    assert!(err.contains("differs"), "{err}");
    // Plateau state without a plateau in the config.
    let mut with = config("constant", 5, 0);
    with.plateau = Some(PlateauConfig::default());
    let mut state = LrScheduler::new(with).unwrap().state();
    state.config.plateau = None;
    assert!(LrScheduler::from_state(state).is_err());
}

// ---- reduce on plateau ----

fn plateau(c: PlateauConfig) -> ReduceLrOnPlateau {
    ReduceLrOnPlateau::new(c).unwrap()
}

/// Feeds metrics; returns the 0-based indices of the metrics that reduced the lr.
fn reductions(p: &mut ReduceLrOnPlateau, metrics: &[f64]) -> Vec<usize> {
    metrics
        .iter()
        .enumerate()
        .filter_map(|(i, &m)| p.observe(m).then_some(i))
        .collect()
}

#[test]
fn plateau_patience_counts_bad_evaluations() {
    let mut p = plateau(PlateauConfig {
        patience: 2,
        factor: 0.5,
        ..PlateauConfig::default()
    });
    // 10 and 9 improve; three 9s are bad, the third exceeds patience 2.
    let r = reductions(&mut p, &[10.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0]);
    assert_eq!(r, vec![4, 7]);
    assert_eq!(p.lr(1.0), 0.25);
    assert_eq!(p.lr(0.1), 0.025);
    // An improvement resets the count.
    let mut p = plateau(PlateauConfig {
        patience: 2,
        ..PlateauConfig::default()
    });
    assert!(reductions(&mut p, &[5.0, 5.0, 5.0, 4.0, 4.0, 4.0]).is_empty());
    assert_eq!(p.state().num_bad_epochs, 2);
    assert_eq!(p.lr(1.0), 1.0);
}

#[test]
fn plateau_cooldown_ignores_evaluations() {
    let mut p = plateau(PlateauConfig {
        patience: 0,
        cooldown: 2,
        factor: 0.5,
        ..PlateauConfig::default()
    });
    // Reduce at 1; 2 and 3 are in cooldown; 4 reduces again; 5, 6 cooldown; 7 reduces.
    let r = reductions(&mut p, &[1.0; 8]);
    assert_eq!(r, vec![1, 4, 7]);
    assert_close(&[p.lr(2.0)], &[0.25], "after 3 reductions");
    // Without cooldown every bad evaluation reduces.
    let mut p = plateau(PlateauConfig {
        patience: 0,
        factor: 0.5,
        ..PlateauConfig::default()
    });
    assert_eq!(reductions(&mut p, &[1.0; 5]), vec![1, 2, 3, 4]);
    assert!(!p.in_cooldown());
}

#[test]
fn plateau_min_lr_and_eps() {
    let mut p = plateau(PlateauConfig {
        patience: 0,
        factor: 0.1,
        min_lr: 0.02,
        ..PlateauConfig::default()
    });
    let r = reductions(&mut p, &[1.0, 1.0]);
    assert_eq!(r, vec![1]);
    assert_close(&[p.lr(1.0)], &[0.1], "one reduction");
    reductions(&mut p, &[1.0, 1.0, 1.0]);
    // max(0.1 × 0.1, 0.02) = 0.02, then it stays.
    assert_close(&[p.lr(1.0)], &[0.02], "floored");
    // A group already below min_lr is never raised (PyTorch: old − new < 0 ≤ eps).
    assert_eq!(p.lr(0.01), 0.01);
    // A change smaller than eps is not applied.
    let mut p = plateau(PlateauConfig {
        patience: 0,
        factor: 0.5,
        ..PlateauConfig::default()
    });
    reductions(&mut p, &[1.0, 1.0, 1.0]);
    assert_eq!(p.lr(1.5e-8), 1.5e-8);
    assert_eq!(p.lr(1.0), 0.25);
    // ... but with eps 0 it is.
    let mut p = plateau(PlateauConfig {
        patience: 0,
        factor: 0.5,
        eps: 0.0,
        ..PlateauConfig::default()
    });
    reductions(&mut p, &[1.0, 1.0]);
    assert_eq!(p.lr(1.5e-8), 0.75e-8);
}

#[test]
fn plateau_threshold_modes() {
    // Best 100, threshold 0.01: rel needs < 99, abs needs < 99.99. 99.5 tells them apart.
    let metrics = [100.0, 99.5, 99.5];
    let base = PlateauConfig {
        patience: 1,
        threshold: 0.01,
        factor: 0.5,
        ..PlateauConfig::default()
    };
    let mut rel = plateau(PlateauConfig {
        threshold_mode: ThresholdMode::Rel,
        ..base.clone()
    });
    assert_eq!(reductions(&mut rel, &metrics), vec![2]);
    assert_eq!(rel.state().best, 100.0);
    let mut abs = plateau(PlateauConfig {
        threshold_mode: ThresholdMode::Abs,
        ..base.clone()
    });
    assert!(reductions(&mut abs, &metrics).is_empty());
    assert_eq!(abs.state().best, 99.5);

    // Max mode (an accuracy): rel needs > 0.5 × 1.1 = 0.55, abs > 0.5 + 0.1 = 0.6.
    let metrics = [0.5, 0.58, 0.58];
    let base = PlateauConfig {
        mode: PlateauMode::Max,
        patience: 1,
        threshold: 0.1,
        factor: 0.5,
        ..PlateauConfig::default()
    };
    let mut rel = plateau(PlateauConfig {
        threshold_mode: ThresholdMode::Rel,
        ..base.clone()
    });
    assert!(reductions(&mut rel, &metrics).is_empty());
    assert_eq!(rel.state().best, 0.58);
    let mut abs = plateau(PlateauConfig {
        threshold_mode: ThresholdMode::Abs,
        ..base
    });
    assert_eq!(reductions(&mut abs, &metrics), vec![2]);
    assert_eq!(abs.state().best, 0.5);
    assert_eq!(abs.lr(1.0), 0.5);

    // Max mode, a falling accuracy is bad; min mode, a rising loss is bad.
    let mut p = plateau(PlateauConfig {
        mode: PlateauMode::Max,
        patience: 0,
        ..PlateauConfig::default()
    });
    assert_eq!(reductions(&mut p, &[0.9, 0.8]), vec![1]);
    let mut p = plateau(PlateauConfig {
        patience: 0,
        ..PlateauConfig::default()
    });
    assert_eq!(reductions(&mut p, &[0.9, 1.0]), vec![1]);
    // A NaN metric is never an improvement.
    let mut p = plateau(PlateauConfig {
        patience: 0,
        ..PlateauConfig::default()
    });
    assert_eq!(reductions(&mut p, &[f64::NAN]), vec![0]);
}

#[test]
fn plateau_scales_the_schedule() {
    // Plateau on top of linear: the schedule's lr × (reduced base lr / base lr).
    let mut c = config("linear", 20, 0);
    c.plateau = Some(PlateauConfig {
        patience: 0,
        factor: 0.5,
        min_lr: 0.3,
        ..PlateauConfig::default()
    });
    let mut s = LrScheduler::new(c).unwrap();
    for _ in 0..4 {
        s.step();
    }
    assert!(!s.observe_metric(1.0));
    assert!(s.observe_metric(1.0));
    let f = tf_linear(4, 0, 20);
    assert_close(&s.lrs(&[1.0, 0.4]), &[0.5 * f, 0.3 * f], "reduced once");
    assert!(s.observe_metric(1.0));
    // 1.0 → 0.5 → max(0.25, 0.3); 0.4 → 0.3 → stays (0.3 − 0.3 = 0 ≤ eps).
    assert_close(&s.lrs(&[1.0, 0.4]), &[0.3 * f, 0.3 * f], "floored");
    // Without a plateau metrics are ignored.
    let mut s = LrScheduler::new(config("linear", 20, 0)).unwrap();
    assert!(!s.observe_metric(1.0) && !s.observe_metric(1.0));
}

// ---- bad arguments ----

fn err_of(c: &ScheduleConfig, lr: f64) -> String {
    match c.curve(lr) {
        Ok(_) => panic!("{c:?} at lr {lr} should be refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_arguments_are_refused_with_clear_messages() {
    let expect = |c: ScheduleConfig, lr: f64, needle: &str| {
        let e = err_of(&c, lr);
        assert!(e.contains(needle), "`{e}` should mention `{needle}`");
        assert!(!e.contains('\n'), "one line: {e}");
    };
    expect(config("cosinus", 10, 0), LR, "unknown schedule `cosinus`");
    expect(config("linear", 0, 0), LR, "total_steps");
    expect(config("linear", 10, 11), LR, "`warmup_steps`");
    expect(config("one-cycle", 10, 2), LR, "`pct_start`");
    expect(config("step", 10, 0), LR, "`step_size`");
    expect(config("multistep", 10, 0), LR, "`milestones`");
    expect(config("exponential", 10, 0), LR, "`gamma`");
    expect(config("constant", 10, 0), 0.0, "learning rate");
    expect(config("constant", 10, 0), -1.0, "learning rate");
    expect(config("constant", 10, 0), f64::NAN, "learning rate");

    let with = |name: &str, f: &dyn Fn(&mut ScheduleConfig)| {
        let mut c = config(name, 10, 0);
        f(&mut c);
        c
    };
    expect(with("step", &|c| c.step_size = Some(0)), LR, "`step_size`");
    expect(
        with("step", &|c| {
            c.step_size = Some(2);
            c.gamma = Some(0.0)
        }),
        LR,
        "`gamma`",
    );
    expect(
        with("exponential", &|c| c.gamma = Some(f64::NAN)),
        LR,
        "`gamma`",
    );
    expect(
        with("multistep", &|c| c.milestones = Some(vec![])),
        LR,
        "`milestones`",
    );
    expect(
        with("cosine", &|c| c.num_cycles = Some(0.0)),
        LR,
        "`num_cycles`",
    );
    expect(with("cosine", &|c| c.min_lr = Some(1.0)), LR, "`min_lr`");
    expect(with("cosine", &|c| c.min_lr = Some(-1.0)), LR, "`min_lr`");
    expect(
        with("cosine", &|c| {
            c.min_lr = Some(0.0);
            c.min_lr_rate = Some(0.1)
        }),
        LR,
        "`min_lr_rate`",
    );
    expect(
        with("cosine-restarts", &|c| c.num_cycles = Some(1.5)),
        LR,
        "`num_cycles`",
    );
    expect(with("polynomial", &|c| c.lr_end = Some(LR)), LR, "`lr_end`");
    expect(
        with("polynomial", &|c| c.lr_end = Some(1e-3)),
        LR,
        "`lr_end`",
    );
    expect(with("polynomial", &|c| c.power = Some(0.0)), LR, "`power`");
    expect(config("polynomial", 10, 10), LR, "warm-up");
    expect(
        with("inverse-sqrt", &|c| c.timescale = Some(0)),
        LR,
        "`timescale`",
    );
    expect(
        with("one-cycle", &|c| c.pct_start = Some(1.5)),
        LR,
        "`pct_start`",
    );
    expect(
        with("one-cycle", &|c| c.pct_start = Some(0.1)),
        LR,
        "`pct_start`",
    ); // 0/0 phase
    expect(
        with("one-cycle", &|c| c.div_factor = Some(0.0)),
        LR,
        "`div_factor`",
    );
    expect(
        with("one-cycle", &|c| c.final_div_factor = Some(-2.0)),
        LR,
        "`final_div_factor`",
    );
    // An argument of another schedule.
    expect(
        with("linear", &|c| c.power = Some(2.0)),
        LR,
        "linear takes no `power`",
    );
    expect(
        with("cosine", &|c| c.three_phase = true),
        LR,
        "`three_phase`",
    );
    expect(
        with("step", &|c| {
            c.step_size = Some(2);
            c.milestones = Some(vec![3])
        }),
        LR,
        "`milestones`",
    );
    // Plateau arguments.
    for bad in [
        PlateauConfig {
            factor: 1.0,
            ..PlateauConfig::default()
        },
        PlateauConfig {
            factor: 0.0,
            ..PlateauConfig::default()
        },
        PlateauConfig {
            min_lr: -1.0,
            ..PlateauConfig::default()
        },
        PlateauConfig {
            threshold: f64::NAN,
            ..PlateauConfig::default()
        },
    ] {
        assert!(ReduceLrOnPlateau::new(bad.clone()).is_err(), "{bad:?}");
        let mut c = config("constant", 10, 0);
        c.plateau = Some(bad);
        assert!(LrScheduler::new(c).is_err());
    }
    assert!(warmup_from_ratio(1.5, 10).is_err());
    assert!(warmup_from_ratio(-0.5, 10).is_err());
    assert!("sine".parse::<Anneal>().is_err());
}
