//! Training losses, all reduced by the mean like their PyTorch namesakes.
//!
//! - [`cross_entropy`]: `torch.nn.functional.cross_entropy(logits, targets,
//!   ignore_index=..., label_smoothing=ε)` for `[N, C]` logits and `[N]` class indices:
//!   per row `(1 - ε)·(-log p_t) + ε·mean_c(-log p_c)`, averaged over the rows whose target is
//!   not `ignore_index` (ignored rows take no part, not even in the count; if every row is
//!   ignored the result is NaN, as in PyTorch). Built on the fused [`log_softmax_last_dim`].
//! - [`soft_target_cross_entropy`]: timm's `SoftTargetCrossEntropy` for `[N, C]` logits and
//!   `[N, C]` target distributions (mixup / cutmix): per row `Σ_c −t_c·log p_c`, averaged over
//!   the rows.
//! - [`weighted_cross_entropy`]: the same with a weight per class (PyTorch's `weight=`):
//!   a weighted mean, divided by the sum of the counted rows' target weights.
//! - [`binary_cross_entropy_with_logits`]: the stable form
//!   `max(x, 0) - x·t + ln(1 + exp(-|x|))`, mean over all elements.
//! - [`mse`]: mean of `(pred - target)²`.
//! - [`distillation_kl`]: knowledge distillation's soft term (Hinton et al.), PyTorch's
//!   `F.kl_div(log_softmax(s/T), softmax(t/T), reduction='batchmean') · T²`; the teacher's
//!   logits are constants (no gradient reaches them).
//!
//! All are compositions of differentiable ops; half-precision inputs are computed in
//! f32 and the loss returned in the input dtype.

use candle_core::{DType, Tensor};

use super::kernel;
use super::softmax::log_softmax_last_dim;
use crate::{Error, Result};

/// Mean cross-entropy of `logits` `[N, C]` against class indices `targets` `[N]` (any integer
/// dtype, e.g. u32 or i64), with label smoothing `label_smoothing` in `[0, 1]` and optional
/// `ignore_index`. A non-ignored target outside `0..C` is an error.
pub fn cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    label_smoothing: f64,
    ignore_index: Option<i64>,
) -> Result<Tensor> {
    let rows = match Rows::of(logits, targets, label_smoothing, ignore_index)? {
        Ok(rows) => rows,
        Err(nan) => return Ok(nan),
    };
    let nv = rows.classes.len() as f64;
    let eps = label_smoothing;
    let nll = rows
        .log_p
        .gather(&rows.index()?, 1)?
        .sum_all()?
        .affine(-(1.0 - eps) / nv, 0.0)?;
    let loss = if eps == 0.0 {
        nll
    } else {
        let smooth = rows
            .log_p
            .sum_all()?
            .affine(-eps / (rows.c as f64 * nv), 0.0)?;
        (nll + smooth)?
    };
    Ok(loss.to_dtype(rows.dtype)?)
}

/// [`cross_entropy`] with a weight per class, as PyTorch's `cross_entropy(weight=w)`: per
/// row `(1 - ε)·w_t·(-log p_t) + (ε / C)·Σ_c w_c·(-log p_c)`, summed and divided by the
/// weights of the rows' targets `Σ w_t` (a weighted mean).
pub fn weighted_cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    label_smoothing: f64,
    ignore_index: Option<i64>,
    weights: &[f64],
) -> Result<Tensor> {
    let rows = match Rows::of(logits, targets, label_smoothing, ignore_index)? {
        Ok(rows) => rows,
        Err(nan) => return Ok(nan),
    };
    if weights.len() != rows.c {
        return Err(Error::config(format!(
            "cross_entropy: {} class weights for {} classes",
            weights.len(),
            rows.c
        )));
    }
    let device = rows.log_p.device().clone();
    let ct = rows.log_p.dtype();
    let target_w: Vec<f64> = rows.classes.iter().map(|&t| weights[t as usize]).collect();
    let denom: f64 = target_w.iter().sum();
    let n = target_w.len();
    let target_w = Tensor::from_vec(target_w, (n, 1), &device)?.to_dtype(ct)?;
    let eps = label_smoothing;
    let nll = (rows.log_p.gather(&rows.index()?, 1)? * target_w)?
        .sum_all()?
        .affine(-(1.0 - eps) / denom, 0.0)?;
    let loss = if eps == 0.0 {
        nll
    } else {
        let w = Tensor::from_vec(weights.to_vec(), (1, rows.c), &device)?.to_dtype(ct)?;
        let smooth = rows
            .log_p
            .broadcast_mul(&w)?
            .sum_all()?
            .affine(-eps / (rows.c as f64 * denom), 0.0)?;
        (nll + smooth)?
    };
    Ok(loss.to_dtype(rows.dtype)?)
}

/// The log-probabilities of the rows whose target counts, and those targets.
struct Rows {
    log_p: Tensor,
    classes: Vec<u32>,
    c: usize,
    dtype: DType,
}

impl Rows {
    /// The counted rows of `logits`, or (when every row is ignored) PyTorch's NaN loss.
    fn of(
        logits: &Tensor,
        targets: &Tensor,
        label_smoothing: f64,
        ignore_index: Option<i64>,
    ) -> Result<std::result::Result<Self, Tensor>> {
        let (n, c) = logits.dims2().map_err(|_| {
            Error::config(format!(
                "cross_entropy: logits must be [N, C], got {:?}",
                logits.dims()
            ))
        })?;
        if targets.dims() != [n] {
            return Err(Error::config(format!(
                "cross_entropy: targets must be [{n}] for logits {:?}, got {:?}",
                logits.dims(),
                targets.dims()
            )));
        }
        if !targets.dtype().is_int() {
            return Err(Error::config(format!(
                "cross_entropy: targets must be class indices (an integer dtype), got {:?}",
                targets.dtype()
            )));
        }
        if !(0.0..=1.0).contains(&label_smoothing) {
            return Err(Error::config(format!(
                "cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}"
            )));
        }
        let dtype = logits.dtype();
        let logits = logits.to_dtype(kernel::compute_dtype(dtype, "cross_entropy")?)?;
        let t: Vec<i64> = targets.to_dtype(DType::I64)?.to_vec1()?;
        let (mut rows, mut classes) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (i, &ti) in t.iter().enumerate() {
            if Some(ti) == ignore_index {
                continue;
            }
            if ti < 0 || ti >= c as i64 {
                return Err(Error::config(format!(
                    "cross_entropy: target {ti} of row {i} is out of range for {c} classes"
                )));
            }
            rows.push(i as u32);
            classes.push(ti as u32);
        }
        if rows.is_empty() {
            // PyTorch's mean over zero rows: NaN, and no gradient reaches the logits.
            return Ok(Err(logits
                .sum_all()?
                .affine(0.0, f64::NAN)?
                .to_dtype(dtype)?));
        }
        let device = logits.device().clone();
        let logits = if rows.len() == n {
            logits
        } else {
            // candle's index_select needs a contiguous source.
            logits
                .contiguous()?
                .index_select(&Tensor::new(rows.as_slice(), &device)?, 0)?
        };
        Ok(Ok(Self {
            log_p: log_softmax_last_dim(&logits)?,
            classes,
            c,
            dtype,
        }))
    }

    /// The targets as a gather index `[n, 1]`.
    fn index(&self) -> Result<Tensor> {
        let n = self.classes.len();
        Ok(Tensor::from_vec(
            self.classes.clone(),
            (n, 1),
            self.log_p.device(),
        )?)
    }
}

/// Mean soft-target cross-entropy of `logits` `[N, C]` against `targets` `[N, C]` (each row a
/// distribution over the classes, e.g. mixed one-hot rows): `mean_n Σ_c −t_nc·log_softmax(x)_nc`,
/// timm's `SoftTargetCrossEntropy`. With one-hot rows it is [`cross_entropy`] without
/// smoothing; with rows `ε/C` off and `1 − ε + ε/C` on, it is [`cross_entropy`] with label
/// smoothing `ε`. Gradients reach the logits (and the targets, when they are variables).
pub fn soft_target_cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (n, _) = logits.dims2().map_err(|_| {
        Error::config(format!(
            "soft_target_cross_entropy: logits must be [N, C], got {:?}",
            logits.dims()
        ))
    })?;
    same_shape("soft_target_cross_entropy", logits, targets)?;
    if n == 0 {
        return Err(Error::config("soft_target_cross_entropy: an empty batch"));
    }
    let dtype = logits.dtype();
    let cdt = kernel::compute_dtype(dtype, "soft_target_cross_entropy")?;
    let log_p = log_softmax_last_dim(&logits.to_dtype(cdt)?)?;
    let loss = log_p
        .mul(&targets.to_dtype(cdt)?)?
        .sum_all()?
        .affine(-1.0 / n as f64, 0.0)?;
    Ok(loss.to_dtype(dtype)?)
}

/// Knowledge distillation's soft loss of `student` logits `[N, C]` against `teacher` logits
/// `[N, C]` at temperature `t > 0`: `T² · (1/N) Σ_n KL(softmax(teacher_n/T) ‖ softmax(student_n/T))`
/// = `T²/N · Σ_n Σ_c p_nc·(log p_nc − log q_nc)` with `p = softmax(teacher/T)`,
/// `q = softmax(student/T)`: PyTorch's `F.kl_div(q.log(), p, reduction='batchmean') · T²`.
/// The teacher's logits are detached: gradients reach the student only, `T·(q − p)/N`.
/// Composed of the fused, differentiable [`log_softmax_last_dim`]; half-precision inputs are
/// computed in f32 and the loss returned in the student's dtype.
pub fn distillation_kl(student: &Tensor, teacher: &Tensor, temperature: f64) -> Result<Tensor> {
    let (n, _) = student.dims2().map_err(|_| {
        Error::config(format!(
            "distillation_kl: logits must be [N, C], got {:?}",
            student.dims()
        ))
    })?;
    same_shape("distillation_kl", student, teacher)?;
    if n == 0 {
        return Err(Error::config("distillation_kl: an empty batch"));
    }
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(Error::config(format!(
            "distillation_kl: the temperature must be > 0, got {temperature}"
        )));
    }
    let dtype = student.dtype();
    let cdt = kernel::compute_dtype(dtype, "distillation_kl")?;
    let inv_t = 1.0 / temperature;
    let log_q = log_softmax_last_dim(&student.to_dtype(cdt)?.affine(inv_t, 0.0)?)?;
    let log_p = log_softmax_last_dim(&teacher.detach().to_dtype(cdt)?.affine(inv_t, 0.0)?)?;
    // p·(log p − log q): where p underflows to 0, log p stays finite, so the term is 0.
    let loss = log_p
        .exp()?
        .mul(&(&log_p - &log_q)?)?
        .sum_all()?
        .affine(temperature * temperature / n as f64, 0.0)?;
    Ok(loss.to_dtype(dtype)?)
}

/// Mean binary cross-entropy of `logits` against `targets` (same shape, probabilities in
/// `[0, 1]`, soft labels allowed), in the numerically stable form.
pub fn binary_cross_entropy_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    same_shape("binary_cross_entropy_with_logits", logits, targets)?;
    let dtype = logits.dtype();
    let cdt = kernel::compute_dtype(dtype, "binary_cross_entropy_with_logits")?;
    let x = logits.to_dtype(cdt)?;
    let t = targets.to_dtype(cdt)?;
    let softplus_neg_abs = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let loss = ((x.relu()? - x.mul(&t)?)? + softplus_neg_abs)?;
    Ok(loss.mean_all()?.to_dtype(dtype)?)
}

/// [`binary_cross_entropy_with_logits`] with PyTorch's `pos_weight`: one weight per label (the
/// last dimension) on the positive term, `ℓ = −[p·t·log σ(x) + (1 − t)·log(1 − σ(x))]`,
/// averaged over every element. Weights of 1 give the unweighted loss.
pub fn binary_cross_entropy_with_logits_weighted(
    logits: &Tensor,
    targets: &Tensor,
    pos_weight: &[f64],
) -> Result<Tensor> {
    let op = "binary_cross_entropy_with_logits";
    same_shape(op, logits, targets)?;
    let labels = logits.dims().last().copied().unwrap_or(0);
    if pos_weight.len() != labels || pos_weight.iter().any(|w| !w.is_finite() || *w < 0.0) {
        return Err(Error::config(format!(
            "{op}: pos_weight needs {labels} finite non-negative weights (one per label), got \
             {pos_weight:?}"
        )));
    }
    let dtype = logits.dtype();
    let cdt = kernel::compute_dtype(dtype, op)?;
    let x = logits.to_dtype(cdt)?;
    let t = targets.to_dtype(cdt)?;
    let p = Tensor::new(pos_weight, x.device())?.to_dtype(cdt)?;
    // softplus(±x) = relu(±x) + log(1 + e^(−|x|)): −log σ(x) = softplus(−x),
    // −log(1 − σ(x)) = softplus(x).
    let log1p_exp = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let sp_pos = (x.relu()? + &log1p_exp)?;
    let sp_neg = (x.neg()?.relu()? + &log1p_exp)?;
    let positive = t.broadcast_mul(&p)?.mul(&sp_neg)?;
    let negative = t.affine(-1.0, 1.0)?.mul(&sp_pos)?;
    Ok((positive + negative)?.mean_all()?.to_dtype(dtype)?)
}

/// Mean squared error between `pred` and `target` (same shape).
pub fn mse(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    same_shape("mse", pred, target)?;
    let dtype = pred.dtype();
    let cdt = kernel::compute_dtype(dtype, "mse")?;
    let diff = (pred.to_dtype(cdt)? - target.to_dtype(cdt)?)?;
    Ok(diff.sqr()?.mean_all()?.to_dtype(dtype)?)
}

fn same_shape(op: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.dims() != b.dims() {
        return Err(Error::config(format!(
            "{op}: shapes differ: {:?} vs {:?}",
            a.dims(),
            b.dims()
        )));
    }
    Ok(())
}
