//! Timing of the fused ops against candle's differentiable compositions, forward + backward,
//! at BERT-base and ResNet-stem shapes (`finetune bench ops`).
//!
//! Each measurement is the median wall time of `runs` repetitions (after [`WARMUP`] untimed
//! ones, so that the allocator has reached the steady state of a training loop) of
//! `op(inputs).backward()`, on CPU in f32, with all inputs as `Var`s; a non-scalar output is
//! seeded with ones by candle's `backward`, the same way for both sides. Fused and composed
//! calls alternate, so both see the same machine load. Baselines:
//!
//! | op | composed baseline |
//! |---|---|
//! | layer_norm | `candle_nn::ops::layer_norm_slow` |
//! | softmax_last_dim / log_softmax_last_dim | `candle_nn::ops::softmax` / `log_softmax` |
//! | gelu / gelu_new | `Tensor::gelu_erf` / `Tensor::gelu` (candle op + composed backward) |
//! | cross_entropy | `candle_nn::loss::cross_entropy` |
//! | max_pool2d | this crate's [`max_pool2d_composed`]: candle's own `max_pool2d` cannot backprop with kernel != stride |
//! | dropout | `candle_nn::ops::dropout` |
//! | conv2d | candle's `Tensor::conv2d` (3×3, stride 1, padding 1: a ResNet layer1 conv) |
//! | batch_norm_train+relu | this crate's [`batch_norm_train_composed`] (candle tensor ops) |

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var, D};
use serde::Serialize;

use crate::ops::{
    batch_norm_train, batch_norm_train_composed, conv2d, conv2d_candle, cross_entropy, dropout,
    gelu, gelu_new, layer_norm, log_softmax_last_dim, max_pool2d, max_pool2d_composed,
    softmax_last_dim,
};
use crate::{Result, Rng};

/// One op's forward+backward timing, fused vs composed, in seconds.
#[derive(Debug, Clone, Serialize)]
pub struct OpTiming {
    /// The op as the report names it, with its settings where it has any (`layer_norm`,
    /// `conv2d(3x3,s1,p1)`, `dropout(p=0.1)`, …).
    pub op: String,
    /// The shape of the op's main input (`[N, C, H, W]` for the image ops, `[N, classes]` for
    /// cross-entropy).
    pub shape: Vec<usize>,
    /// Median seconds of one forward + backward through this crate's fused op.
    pub fused_s: f64,
    /// Median seconds of one forward + backward through the composed baseline.
    pub composed_s: f64,
    /// What `composed_s` measured (not serialised).
    #[serde(skip)]
    pub baseline: &'static str,
}

impl OpTiming {
    /// `composed_s / fused_s`.
    pub fn speedup(&self) -> f64 {
        self.composed_s / self.fused_s
    }
}

/// Which shapes to run: the real ones, or tiny ones that only check the bench runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchScale {
    /// BERT-base (batch 16, seq 128) and ResNet stem (batch 32) shapes.
    Full,
    /// Tiny shapes, for smoke tests.
    Tiny,
}

const LN_EPS: f64 = 1e-12;
const DROPOUT_P: f64 = 0.1;

/// Times every op (fused and composed, forward + backward), median of `runs` runs each.
pub fn bench_ops(scale: BenchScale, runs: usize) -> Result<Vec<OpTiming>> {
    let full = scale == BenchScale::Full;
    let pick = |f: &[usize], t: &[usize]| if full { f.to_vec() } else { t.to_vec() };
    let mut rng = Rng::seed_from_u64(0x0062_656e_6368);
    let mut out = Vec::new();

    // Layer norm.
    let shape = pick(&[16, 128, 768], &[2, 4, 32]);
    let d = *shape.last().unwrap_or(&1);
    let x = random_var(&shape, &mut rng)?;
    let gamma = random_var(&[d], &mut rng)?;
    let beta = random_var(&[d], &mut rng)?;
    let (x, gamma, beta) = (x.as_tensor(), gamma.as_tensor(), beta.as_tensor());
    out.push(measure(
        ("layer_norm", &shape, "candle_nn::ops::layer_norm_slow"),
        runs,
        || backward(layer_norm(x, gamma, beta, LN_EPS)?),
        || {
            let y = candle_nn::ops::layer_norm_slow(x, gamma, beta, LN_EPS as f32)?;
            backward(y)
        },
    )?);

    // Softmax and log-softmax over attention scores.
    let shape = pick(&[16, 12, 128, 128], &[2, 2, 8, 8]);
    let x = random_var(&shape, &mut rng)?;
    let x = x.as_tensor();
    out.push(measure(
        ("softmax_last_dim", &shape, "candle_nn::ops::softmax"),
        runs,
        || backward(softmax_last_dim(x)?),
        || backward(candle_nn::ops::softmax(x, D::Minus1)?),
    )?);
    out.push(measure(
        (
            "log_softmax_last_dim",
            &shape,
            "candle_nn::ops::log_softmax",
        ),
        runs,
        || backward(log_softmax_last_dim(x)?),
        || backward(candle_nn::ops::log_softmax(x, D::Minus1)?),
    )?);

    // GELU on the intermediate activations.
    let shape = pick(&[16, 128, 3072], &[2, 4, 64]);
    let x = random_var(&shape, &mut rng)?;
    let x = x.as_tensor();
    out.push(measure(
        ("gelu", &shape, "Tensor::gelu_erf"),
        runs,
        || backward(gelu(x)?),
        || backward(x.gelu_erf()?),
    )?);
    out.push(measure(
        ("gelu_new", &shape, "Tensor::gelu"),
        runs,
        || backward(gelu_new(x)?),
        || backward(x.gelu()?),
    )?);

    // Cross-entropy over the MLM vocabulary.
    let shape = pick(&[16, 30522], &[4, 50]);
    let logits = random_var(&shape, &mut rng)?;
    let logits = logits.as_tensor();
    let targets: Vec<u32> = (0..shape[0])
        .map(|_| rng.below(shape[1] as u64) as u32)
        .collect();
    let targets = Tensor::new(targets.as_slice(), &Device::Cpu)?;
    out.push(measure(
        ("cross_entropy", &shape, "candle_nn::loss::cross_entropy"),
        runs,
        || backward(cross_entropy(logits, &targets, 0.0, None)?),
        || backward(candle_nn::loss::cross_entropy(logits, &targets)?),
    )?);

    // Max-pool of the ResNet stem: kernel 3, stride 2, padding 1.
    let shape = pick(&[32, 64, 112, 112], &[2, 3, 9, 9]);
    let x = random_var(&shape, &mut rng)?;
    let x = x.as_tensor();
    let (k, s, p) = ((3, 3), (2, 2), (1, 1));
    out.push(measure(
        (
            "max_pool2d(k3,s2,p1)",
            &shape,
            "finetune max_pool2d_composed (candle's max_pool2d cannot backprop k != s)",
        ),
        runs,
        || backward(max_pool2d(x, k, s, p)?),
        || backward(max_pool2d_composed(x, k, s, p)?),
    )?);

    // Dropout on the hidden states.
    let shape = pick(&[16, 128, 768], &[2, 4, 32]);
    let x = random_var(&shape, &mut rng)?;
    let x = x.as_tensor();
    let mut drng = Rng::seed_from_u64(1);
    out.push(measure(
        ("dropout(p=0.1)", &shape, "candle_nn::ops::dropout"),
        runs,
        || backward(dropout(x, DROPOUT_P, true, &mut drng)?),
        || backward(candle_nn::ops::dropout(x, DROPOUT_P as f32)?),
    )?);

    // A ResNet layer1 convolution: 64 → 64 channels, 3×3, stride 1, padding 1, at 56×56.
    let shape = pick(&[8, 64, 56, 56], &[2, 4, 9, 9]);
    let x = random_var(&shape, &mut rng)?;
    let w = random_var(&[shape[1], shape[1], 3, 3], &mut rng)?;
    let (x, w) = (x.as_tensor(), w.as_tensor());
    out.push(measure(
        ("conv2d(3x3,s1,p1)", &shape, "candle Tensor::conv2d"),
        runs,
        || backward(conv2d(x, w, 1, 1, 1)?),
        || backward(conv2d_candle(x, w, 1, 1, 1)?),
    )?);

    // Training-mode BatchNorm + ReLU after that convolution.
    let c = shape[1];
    let gamma = random_var(&[c], &mut rng)?;
    let beta = random_var(&[c], &mut rng)?;
    let (gamma, beta) = (gamma.as_tensor(), beta.as_tensor());
    out.push(measure(
        (
            "batch_norm_train+relu",
            &shape,
            "finetune batch_norm_train_composed (candle tensor ops)",
        ),
        runs,
        || backward(batch_norm_train(x, gamma, beta, 1e-5, true)?.y),
        || backward(batch_norm_train_composed(x, gamma, beta, 1e-5, true)?.y),
    )?);
    Ok(out)
}

/// Times `fused` and `composed` (see [`time_pair`]) for the op named by `(op, shape,
/// baseline)`.
fn measure(
    (op, shape, baseline): (&str, &[usize], &'static str),
    runs: usize,
    fused: impl FnMut() -> Result<()>,
    composed: impl FnMut() -> Result<()>,
) -> Result<OpTiming> {
    let (fused_s, composed_s) = time_pair(runs, fused, composed)?;
    Ok(OpTiming {
        op: op.to_string(),
        shape: shape.to_vec(),
        fused_s,
        composed_s,
        baseline,
    })
}

fn random_var(shape: &[usize], rng: &mut Rng) -> Result<Var> {
    let n = shape.iter().product::<usize>();
    let v: Vec<f32> = (0..n).map(|_| 2.0 * rng.next_f32() - 1.0).collect();
    let t = Tensor::from_vec(v, shape, &Device::Cpu)?;
    debug_assert_eq!(t.dtype(), DType::F32);
    Ok(Var::from_tensor(&t)?)
}

fn backward(y: Tensor) -> Result<()> {
    let grads = y.backward()?;
    drop(grads);
    Ok(())
}

/// Untimed calls before each measurement. The first calls at a new shape fault fresh pages
/// in from the kernel (many milliseconds at these sizes); a training step repeats its shapes.
pub const WARMUP: usize = 3;

/// Median seconds of `runs` calls of `fused` and of `composed`, after [`WARMUP`] untimed
/// calls of each. The two alternate call by call, so that a machine whose load changes
/// during the run (other processes on a shared host) slows both sides alike and the ratio
/// stays meaningful.
fn time_pair(
    runs: usize,
    mut fused: impl FnMut() -> Result<()>,
    mut composed: impl FnMut() -> Result<()>,
) -> Result<(f64, f64)> {
    for _ in 0..WARMUP {
        fused()?;
        composed()?;
    }
    let runs = runs.max(1);
    let (mut tf, mut tc) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        tf.push(seconds(&mut fused)?);
        tc.push(seconds(&mut composed)?);
    }
    Ok((median(tf), median(tc)))
}

fn seconds(f: &mut impl FnMut() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64())
}

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    let m = t.len() / 2;
    if t.len() % 2 == 1 {
        t[m]
    } else {
        (t[m - 1] + t[m]) / 2.0
    }
}

/// Threads rayon's global pool gives the fused kernels.
pub fn rayon_threads() -> usize {
    rayon::current_num_threads()
}
