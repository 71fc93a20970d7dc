//! Knowledge distillation in the learner: the first step's loss against the formula computed
//! by hand from both models' logits, the teacher in eval mode and untouched, cached and
//! per-batch teacher logits giving the same run, α = 0 giving the plain run, a resumed run
//! equal to the uninterrupted one bit for bit, and the settings' bad values.

mod common;

use candle_core::{DType, Tensor};
use common::*;
use finetune_core::Result;
use finetune_train::{Batch, BatchSource, Learner, TeacherModel, TrainConfig, TrainModel};
use std::sync::atomic::Ordering;

/// [`Blobs`] that say whether their training batches are deterministic (what decides whether
/// the teacher's logits are cached).
struct Data(Blobs, bool);

impl BatchSource<Tensor> for Data {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn batch(&self, indices: &[usize], epoch: u64, train: bool) -> Result<Batch<Tensor>> {
        self.0.batch(indices, epoch, train)
    }

    fn deterministic_train(&self) -> bool {
        self.1
    }
}

fn distill_config(alpha: f64, temperature: f64) -> TrainConfig {
    TrainConfig {
        optimizer: "sgd".parse().unwrap(),
        lr: 0.05,
        schedule: "constant".parse().unwrap(),
        teacher: Some("the test teacher".into()),
        distill_alpha: alpha,
        distill_temperature: temperature,
        ..config()
    }
}

/// `(1 − α)·CE + α·T²·KL(softmax(t/T) ‖ softmax(s/T))`, batchmean, from the logits' values.
fn formula(s: &[f64], t: &[f64], y: &[u32], alpha: f64, temp: f64) -> f64 {
    let log_softmax = |row: &[f64], temp: f64| -> Vec<f64> {
        let z: f64 = row.iter().map(|v| (v / temp).exp()).sum();
        row.iter().map(|v| v / temp - z.ln()).collect()
    };
    let n = y.len() as f64;
    let (mut ce, mut kl) = (0.0, 0.0);
    for ((sr, tr), &label) in s.chunks(CLASSES).zip(t.chunks(CLASSES)).zip(y) {
        ce -= log_softmax(sr, 1.0)[label as usize];
        let (lq, lp) = (log_softmax(sr, temp), log_softmax(tr, temp));
        kl += lp
            .iter()
            .zip(&lq)
            .map(|(p, q)| p.exp() * (p - q))
            .sum::<f64>();
    }
    (1.0 - alpha) * ce / n + alpha * temp * temp * kl / n
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn the_first_step_loss_is_the_formula_on_both_models_logits() -> Result<()> {
    let data = Blobs::new(12, 5);
    let all: Vec<usize> = (0..12).collect();
    let batch = data.batch(&all, 0, true)?;
    let y: Vec<u32> = batch.targets.to_vec1()?;
    // The teacher has dropout: only its eval-mode logits give the formula's value.
    let teacher = Mlp::new(21, 0.5);
    let t = values(&teacher.forward_t(&batch.inputs, false)?);
    let s = values(&Mlp::new(3, 0.0).forward_t(&batch.inputs, false)?);
    let before = weights(teacher.store());
    for (alpha, temp, cached) in [(0.3, 2.5, true), (1.0, 1.0, false), (0.5, 4.0, false)] {
        let dir = tempfile::tempdir().unwrap();
        let student = Mlp::new(3, 0.0);
        let cfg = TrainConfig {
            max_steps: Some(1),
            batch_size: 12,
            ..distill_config(alpha, temp)
        };
        let tm = TeacherModel(&teacher);
        let learner = Learner::new(&student, cfg, dir.path())?.with_teacher(&tm);
        let (_, summary) = learner.fit(&Data(Blobs::new(12, 5), cached), None, None)?;
        let want = formula(&s, &t, &y, alpha, temp);
        let got = summary.train_loss.expect("a training loss");
        assert!(
            (got - want).abs() < 1e-5 * want.abs().max(1.0),
            "α {alpha}, T {temp}: loss {got}, formula {want}"
        );
        let report = summary
            .distillation
            .expect("the summary records distillation");
        assert_eq!((report.alpha, report.temperature), (alpha, temp));
        assert_eq!(report.cached, cached);
        assert_eq!(report.teacher, "the test teacher");
    }
    // The teacher never ran in training mode and did not change.
    assert_eq!(teacher.train_forwards.load(Ordering::SeqCst), 0);
    assert_bits_eq(&before, &weights(teacher.store()), "the teacher's weights");
    Ok(())
}

/// Trains a dropout student for 3 epochs of 24 samples in batches of 8, distilled from a
/// teacher; gives the weights and every step's loss.
fn run(data: &dyn BatchSource<Tensor>, cfg: TrainConfig) -> Result<(Weights, Vec<f64>)> {
    let dir = tempfile::tempdir().unwrap();
    let student = Mlp::new(3, 0.2);
    let teacher = Mlp::new(21, 0.0);
    let tm = TeacherModel(&teacher);
    let cfg = TrainConfig {
        epochs: 3,
        batch_size: 8,
        ..cfg
    };
    Learner::new(&student, cfg, dir.path())?
        .with_teacher(&tm)
        .fit(data, None, None)?;
    let losses = metrics_lines(dir.path())
        .iter()
        .filter_map(|r| r.get("loss").and_then(|l| l.as_f64()))
        .collect();
    Ok((weights(student.store()), losses))
}

#[test]
fn cached_and_per_batch_teacher_logits_give_the_same_run() -> Result<()> {
    let cfg = distill_config(0.6, 3.0);
    let (wa, la) = run(&Data(Blobs::new(24, 6), true), cfg.clone())?;
    let (wb, lb) = run(&Data(Blobs::new(24, 6), false), cfg)?;
    assert_eq!(la.len(), 9);
    assert_eq!(la.len(), lb.len());
    for (a, b) in la.iter().zip(&lb) {
        assert!((a - b).abs() < 1e-6, "losses {la:?} vs {lb:?}");
    }
    for (name, a) in &wa {
        assert!(max_abs_diff(a, &wb[name]) < 1e-5, "`{name}` differs");
    }
    Ok(())
}

#[test]
fn alpha_zero_is_the_plain_run_and_any_other_alpha_is_not() -> Result<()> {
    let data = Data(Blobs::new(24, 6), true);
    let (zero, _) = run(&data, distill_config(0.0, 2.0))?;
    let (half, _) = run(&data, distill_config(0.5, 2.0))?;
    let dir = tempfile::tempdir().unwrap();
    let student = Mlp::new(3, 0.2);
    let cfg = TrainConfig {
        epochs: 3,
        batch_size: 8,
        ..distill_config(0.5, 2.0)
    };
    let plain = TrainConfig {
        teacher: None,
        distill_alpha: 0.5,
        ..cfg
    };
    Learner::new(&student, plain, dir.path())?.fit(&data, None, None)?;
    let plain = weights(student.store());
    assert_bits_eq(&zero, &plain, "α = 0 vs no teacher");
    assert!(half.iter().any(|(n, w)| max_abs_diff(w, &plain[n]) > 1e-4));
    Ok(())
}

#[test]
fn a_resumed_distillation_run_equals_the_uninterrupted_one() -> Result<()> {
    for cached in [true, false] {
        let data = Data(Blobs::new(24, 7), cached);
        let teacher = Mlp::new(21, 0.3);
        let tm = TeacherModel(&teacher);
        let cfg = TrainConfig {
            epochs: 2,
            batch_size: 8,
            save_steps: Some(2),
            ..distill_config(0.7, 2.0)
        };
        let full = tempfile::tempdir().unwrap();
        let student = Mlp::new(3, 0.2);
        Learner::new(&student, cfg.clone(), full.path())?
            .with_teacher(&tm)
            .fit(&data, None, None)?;
        let resumed = tempfile::tempdir().unwrap();
        let from = finetune_train::checkpoint::dir_for(full.path(), 2);
        let again = Mlp::new(99, 0.2);
        Learner::new(&again, cfg, resumed.path())?
            .with_teacher(&tm)
            .fit(&data, None, Some(&from))?;
        assert_bits_eq(
            &weights(student.store()),
            &weights(again.store()),
            &format!("resumed (cached teacher: {cached})"),
        );
    }
    Ok(())
}

#[test]
fn bad_distillation_settings_are_one_clear_error_each() {
    let check = |cfg: TrainConfig, needle: &str| {
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(needle), "`{needle}` missing: {e}");
        assert!(!e.contains('\n'), "one line: {e}");
    };
    for alpha in [-0.1, 1.5, f64::NAN] {
        check(
            distill_config(alpha, 2.0),
            "--distill-alpha must be in [0, 1]",
        );
    }
    for temp in [0.0, -2.0, f64::INFINITY, f64::NAN] {
        check(
            distill_config(0.5, temp),
            "--distill-temperature must be > 0",
        );
    }
    let no_teacher = TrainConfig {
        teacher: None,
        ..distill_config(0.9, 2.0)
    };
    check(no_teacher, "need --teacher");
    assert!(distill_config(1.0, 0.5).validate().is_ok());
    assert!(config().validate().is_ok());
    // A config naming a teacher the learner was not given is refused at the start.
    let dir = tempfile::tempdir().unwrap();
    let student = Mlp::new(3, 0.0);
    let e = Learner::new(&student, distill_config(0.5, 2.0), dir.path())
        .unwrap()
        .fit(&Data(Blobs::new(12, 5), true), None, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no teacher model was given"), "{e}");
}
