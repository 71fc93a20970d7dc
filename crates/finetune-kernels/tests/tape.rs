//! The recorded backward (`finetune_kernels::tape`) against candle's own `backward` on the same
//! forward graph: every parameter's gradient must come out the same, whether the tape covers
//! everything below the cut, hands part of the graph back to candle, or is not used at all.

mod common;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use common::{assert_close, normal, values};
use finetune_kernels::ops::{self, OpSet};
use finetune_kernels::tape::{self, BackwardReport, Recording};
use finetune_kernels::Result;

/// The trainable tensors of the test network, as f32 `Var`s.
struct Net {
    w1: Var,
    bn_w: Var,
    bn_b: Var,
    w2: Var,
    w3: Var,
    fc_w: Var,
    fc_b: Var,
}

fn var(shape: &[usize], scale: f64, seed: u64) -> Var {
    let t = (normal(shape, seed) * scale)
        .and_then(|t| t.to_dtype(DType::F32))
        .expect("test tensor");
    Var::from_tensor(&t).expect("test var")
}

impl Net {
    fn new() -> Self {
        Self {
            w1: var(&[4, 3, 3, 3], 0.3, 1),
            bn_w: var(&[4], 0.2, 2),
            bn_b: var(&[4], 0.1, 3),
            w2: var(&[4, 4, 3, 3], 0.2, 4),
            w3: var(&[4, 4, 1, 1], 0.4, 5),
            fc_w: var(&[5, 4], 0.5, 6),
            fc_b: var(&[5], 0.1, 7),
        }
    }

    fn all(&self) -> Vec<(&str, &Var)> {
        vec![
            ("w1", &self.w1),
            ("bn_w", &self.bn_w),
            ("bn_b", &self.bn_b),
            ("w2", &self.w2),
            ("w3", &self.w3),
            ("fc_w", &self.fc_w),
            ("fc_b", &self.fc_b),
        ]
    }

    /// conv → BN+ReLU → conv, residual add+ReLU, 1×1 conv, recorded residual add → max pool
    /// → [`tape::cut`] → mean pool, linear, cross-entropy. `mid` runs between the first conv
    /// and the BN (a stock op there is unknown to the tape).
    fn loss(&self, x: &Tensor, mid: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
        let h = ops::conv2d(x, self.w1.as_tensor(), 1, 1, 1)?;
        let h = mid(&h)?;
        let h =
            ops::batch_norm_train(&h, self.bn_w.as_tensor(), self.bn_b.as_tensor(), 1e-5, true)?.y;
        let r = ops::conv2d(&h, self.w2.as_tensor(), 1, 1, 1)?;
        let s = ops::add_relu(&r, &h)?;
        let v = ops::conv2d(&s, self.w3.as_tensor(), 1, 0, 1)?;
        let o = OpSet::Fused.add(&v, &s)?;
        let p = ops::max_pool2d(&o, (2, 2), (2, 2), (0, 0))?;
        let f = tape::cut(&p)?.mean((2, 3))?;
        let logits = ops::linear(&f, self.fc_w.as_tensor(), Some(self.fc_b.as_tensor()))?;
        ops::cross_entropy(&logits, &targets(), 0.1, None)
    }
}

fn images() -> Tensor {
    normal(&[3, 3, 6, 6], 11)
        .to_dtype(DType::F32)
        .expect("images")
}

fn targets() -> Tensor {
    Tensor::new(&[1u32, 4, 0], &Device::Cpu).expect("targets")
}

/// Runs candle's backward on one forward of `loss` and the recorded backward on a recorded
/// forward (while recording, [`tape::cut`] cuts candle's graph); compares every parameter's
/// gradient (`exact`: bit for bit, else to 1e-5 relative) and returns the report.
fn compare(net: &Net, loss: impl Fn() -> Result<Tensor>, exact: bool) -> BackwardReport {
    let reference = loss()
        .and_then(|l| Ok(l.backward()?))
        .expect("candle backward");
    let recording = Recording::start();
    let loss = loss().expect("forward");
    let (grads, report) = recording.backward_report(&loss).expect("recorded backward");
    for (name, v) in net.all() {
        let want = values(reference.get(v.as_tensor()).expect("candle gradient"));
        let got = values(
            grads
                .get(v.as_tensor())
                .unwrap_or_else(|| panic!("no recorded gradient for {name}")),
        );
        if exact {
            assert_eq!(got, want, "{name}");
        } else {
            assert_close(&got, &want, 1e-7, 1e-5, name);
        }
    }
    report
}

#[test]
fn the_tape_covers_the_fused_part_and_matches_candle_bit_for_bit() {
    let net = Net::new();
    let x = images();
    let report = compare(&net, || net.loss(&x, |h| Ok(h.clone())), true);
    assert_eq!(
        report,
        BackwardReport {
            // conv, BN, conv, add+ReLU, 1×1 conv, add, max pool (linear and log-softmax above
            // the cut are candle's).
            tape_nodes: 7,
            handed_to_candle: 0,
            all_candle: false,
        }
    );
}

#[test]
fn an_op_the_tape_does_not_know_is_handed_to_candle_and_the_sum_is_unchanged() {
    let net = Net::new();
    let x = images();
    let report = compare(&net, || net.loss(&x, |h| Ok((h.sqr()? * 0.5)?)), false);
    assert_eq!(report.handed_to_candle, 1, "{report:?}");
    assert!(report.tape_nodes >= 6, "{report:?}");
}

#[test]
fn without_a_cut_or_a_recorded_loss_candle_does_everything() {
    let net = Net::new();
    let x = images();
    let report = compare(
        &net,
        || {
            let h = ops::conv2d(&x, net.w1.as_tensor(), 1, 1, 1)?;
            let all = [&net.bn_w, &net.bn_b, &net.w2, &net.w3, &net.fc_w, &net.fc_b]
                .iter()
                .map(|v| v.as_tensor().sqr()?.sum_all())
                .collect::<candle_core::Result<Vec<_>>>()?;
            let mut loss = h.sqr()?.mean_all()?;
            for t in all {
                loss = (loss + t)?;
            }
            Ok(loss)
        },
        true,
    );
    assert!(report.all_candle, "{report:?}");
}

#[test]
fn a_loss_made_by_a_recorded_op_starts_the_tape_itself() -> Result<()> {
    let w = var(&[2, 3, 3, 3], 0.3, 21);
    let x = images();
    let recording = Recording::start();
    let y = ops::relu(&ops::conv2d(&x, w.as_tensor(), 2, 1, 1)?)?;
    let want = values(y.backward()?.get(w.as_tensor()).expect("candle gradient"));
    let (grads, report) = recording.backward_report(&y)?;
    let got = values(grads.get(w.as_tensor()).expect("recorded gradient"));
    assert_eq!(got, want);
    assert_eq!(report.tape_nodes, 2, "{report:?}");
    assert!(!report.all_candle);
    Ok(())
}

#[test]
fn frozen_inputs_get_no_gradient_and_the_rest_still_match() -> Result<()> {
    let frozen = var(&[4, 3, 3, 3], 0.3, 31).as_tensor().detach();
    let w = var(&[4, 4, 3, 3], 0.2, 32);
    let fc_w = var(&[5, 4], 0.5, 33);
    let x = images();
    let loss = || -> Result<Tensor> {
        let a = ops::relu(&ops::conv2d(&x, &frozen, 1, 1, 1)?)?;
        let b = ops::conv2d(&a, w.as_tensor(), 1, 1, 1)?;
        let f = tape::cut(&b)?.mean((2, 3))?;
        Ok(ops::linear(&f, fc_w.as_tensor(), None)?.sqr()?.mean_all()?)
    };
    let reference = loss()?.backward()?;
    let recording = Recording::start();
    let (grads, report) = recording.backward_report(&loss()?)?;
    assert!(
        grads.get(&frozen).is_none(),
        "a frozen input got a gradient"
    );
    for v in [&w, &fc_w] {
        let want = values(reference.get(v.as_tensor()).expect("candle gradient"));
        assert_eq!(
            values(grads.get(v.as_tensor()).expect("recorded gradient")),
            want
        );
    }
    // Only the conv on the trainable weight is in the graph.
    assert_eq!(report.tape_nodes, 1, "{report:?}");
    assert_eq!(report.handed_to_candle, 0, "{report:?}");
    Ok(())
}

#[test]
fn recording_is_scoped_and_a_cut_outside_it_is_the_tensor_itself() -> Result<()> {
    let w = var(&[2, 3, 3, 3], 0.3, 41);
    let y = ops::conv2d(&images(), w.as_tensor(), 1, 1, 1)?;
    assert!(!tape::is_recording());
    assert_eq!(tape::cut(&y)?.id(), y.id());
    {
        let _recording = Recording::start();
        assert!(tape::is_recording());
        let leaf = tape::cut(&y)?;
        assert_ne!(leaf.id(), y.id());
        assert!(leaf.is_variable());
        assert_eq!(values(&leaf), values(&y));
    }
    assert!(!tape::is_recording(), "a dropped recording stays live");
    Ok(())
}

#[test]
fn compare_names_each_parameter_whose_gradient_differs_or_is_missing() -> Result<()> {
    let dev = Device::Cpu;
    let params: Vec<(String, Var)> = ["same", "nudged", "one_sided", "neither"]
        .into_iter()
        .map(|name| Ok((name.to_string(), Var::zeros(3, DType::F32, &dev)?)))
        .collect::<Result<_>>()?;
    let v = |name: &str| -> Result<Tensor> {
        Ok(params
            .iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
            .as_tensor()
            .clone())
    };
    let (mut reference, mut recorded) = (GradStore::default(), GradStore::default());
    let g = Tensor::new(&[1f32, 2., 3.], &dev)?;
    reference.insert(&v("same")?, g.clone());
    recorded.insert(&v("same")?, g.clone());
    reference.insert(&v("nudged")?, g.clone());
    // One ulp off in one element: only a bitwise comparison sees it.
    recorded.insert(&v("nudged")?, Tensor::new(&[1f32, 2., 3.0000002], &dev)?);
    recorded.insert(&v("one_sided")?, g);
    let cmp = tape::compare(params.clone(), &reference, &recorded)?;
    assert_eq!(cmp.identical, 1, "{cmp:?}");
    let mut differing = cmp.differing.clone();
    differing.sort();
    assert_eq!(differing, ["nudged", "one_sided"], "{cmp:?}");
    Ok(())
}
