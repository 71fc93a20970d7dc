//! Shared helpers of the `ops_*` tests: seeded random tensors, element-wise comparison, and a
//! gradient check of candle's backward against central finite differences in f64.
//!
//! Each test file uses only some of these.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor, Var};
use finetune_kernels::{Result, Rng};

/// A differentiable unary op under test, e.g. `ops::gelu`.
pub type UnaryOp = fn(&Tensor) -> Result<Tensor>;

/// A `[shape]` f64 tensor of uniform values in `[lo, hi)`, determined by `seed`.
pub fn uniform(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor {
    let mut rng = Rng::seed_from_u64(seed);
    let n = shape.iter().product::<usize>();
    let v: Vec<f64> = (0..n).map(|_| rng.uniform(lo, hi)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("building a test tensor")
}

/// A `[shape]` f64 tensor of standard normal values, determined by `seed`.
pub fn normal(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::seed_from_u64(seed);
    let n = shape.iter().product::<usize>();
    let v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("building a test tensor")
}

/// All elements of `t` (any shape, any float dtype, any layout) as f64, row-major.
pub fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .expect("reading a test tensor")
}

/// Asserts `|a - e| <= atol + rtol·|e|` element-wise, naming the worst element on failure.
pub fn assert_close(actual: &[f64], expected: &[f64], atol: f64, rtol: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length mismatch");
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let err = (a - e).abs();
        let ok = err <= atol + rtol * e.abs() || (a.is_nan() && e.is_nan()) || a == e;
        if !ok && worst.is_none_or(|(_, w)| err > w) {
            worst = Some((i, err));
        }
    }
    if let Some((i, err)) = worst {
        panic!(
            "{what}: element {i}: got {}, expected {} (|diff| = {err:e}, atol {atol:e}, rtol {rtol:e})",
            actual[i], expected[i]
        );
    }
}

/// [`assert_close`] on two tensors (compared as f64) of the same shape.
pub fn assert_tensors_close(actual: &Tensor, expected: &Tensor, atol: f64, rtol: f64, what: &str) {
    assert_eq!(actual.dims(), expected.dims(), "{what}: shape mismatch");
    assert_close(&values(actual), &values(expected), atol, rtol, what);
}

/// A fixed random weighting of an output, so that the checked scalar `Σ w·f(x)` depends on
/// every output element differently (a plain sum would hide errors: e.g. a softmax row always
/// sums to 1, so its gradient under a plain sum is zero whatever the kernel does).
/// A scalar output (a loss) is taken as is.
fn weights(shape: &[usize], dtype: DType) -> Tensor {
    if shape.is_empty() {
        return Tensor::new(1f64, &Device::Cpu)
            .and_then(|t| t.to_dtype(dtype))
            .expect("weights");
    }
    uniform(shape, -1.0, 1.0, 0x005e_ed0f_ce11)
        .to_dtype(dtype)
        .expect("weights")
}

fn weighted_sum(y: &Tensor) -> Result<Tensor> {
    let w = weights(y.dims(), y.dtype()).to_device(y.device())?;
    Ok(y.mul(&w)?.sum_all()?)
}

/// The analytic gradient (from candle's backward) of `Σ w·f(inputs)` with respect to each of
/// `inputs`, in f64. Panics if some input receives no gradient.
pub fn analytic_grads<F>(inputs: &[Tensor], f: &F) -> Result<Vec<Tensor>>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let vars: Vec<Var> = inputs
        .iter()
        .map(Var::from_tensor)
        .collect::<candle_core::Result<_>>()?;
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let loss = weighted_sum(&f(&ts)?)?;
    let grads = loss.backward()?;
    let mut out = Vec::with_capacity(vars.len());
    for (i, v) in vars.iter().enumerate() {
        let g = grads
            .get(v.as_tensor())
            .unwrap_or_else(|| panic!("input {i} received no gradient"));
        assert_eq!(
            g.dims(),
            v.dims(),
            "gradient of input {i} has the wrong shape"
        );
        assert_eq!(
            g.dtype(),
            v.dtype(),
            "gradient of input {i} has the wrong dtype"
        );
        out.push(g.clone());
    }
    Ok(out)
}

/// The central finite-difference gradient of `Σ w·f(inputs)` with respect to input `which`,
/// with step `h`, computed in f64 (inputs must be f64).
pub fn numeric_grad<F>(inputs: &[Tensor], which: usize, h: f64, f: &F) -> Result<Vec<f64>>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let base = values(&inputs[which]);
    let shape = inputs[which].dims().to_vec();
    let eval = |flat: Vec<f64>| -> Result<f64> {
        let mut xs = inputs.to_vec();
        xs[which] = Tensor::from_vec(flat, shape.as_slice(), &Device::Cpu)?;
        Ok(weighted_sum(&f(&xs)?)?.to_scalar::<f64>()?)
    };
    let mut g = Vec::with_capacity(base.len());
    for j in 0..base.len() {
        let mut plus = base.clone();
        plus[j] += h;
        let mut minus = base.clone();
        minus[j] -= h;
        g.push((eval(plus)? - eval(minus)?) / (2.0 * h));
    }
    Ok(g)
}

/// Checks candle's backward through `f` against central finite differences in f64 for every
/// input (all f64, contiguous; `f` may make them strided before calling the op under test).
pub fn gradcheck<F>(inputs: &[Tensor], f: F)
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    gradcheck_tol(inputs, 1e-6, 1e-6, f)
}

/// [`gradcheck`] with explicit tolerances.
pub fn gradcheck_tol<F>(inputs: &[Tensor], atol: f64, rtol: f64, f: F)
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    for (i, x) in inputs.iter().enumerate() {
        assert_eq!(x.dtype(), DType::F64, "gradcheck input {i} must be f64");
    }
    let analytic = analytic_grads(inputs, &f).expect("backward");
    for (i, a) in analytic.iter().enumerate() {
        let n = numeric_grad(inputs, i, 1e-6, &f).expect("finite differences");
        assert_close(
            &values(a),
            &n,
            atol,
            rtol,
            &format!("gradient of input {i} vs finite differences"),
        );
    }
}

/// Runs `f` (output and gradients) once on f64 `inputs` and once on the same values in f32,
/// and checks that the two agree to `tol` (relative to the largest magnitude, plus absolute).
pub fn check_f32_matches_f64<F>(inputs: &[Tensor], tol: f64, f: F)
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let in32: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_dtype(DType::F32).expect("to f32"))
        .collect();
    // Round the f64 inputs through f32 so that both paths see the very same values.
    let in64: Vec<Tensor> = in32
        .iter()
        .map(|t| t.to_dtype(DType::F64).expect("to f64"))
        .collect();
    let y32 = f(&in32).expect("f32 forward");
    let y64 = f(&in64).expect("f64 forward");
    assert_eq!(y32.dtype(), DType::F32, "f32 input must give an f32 output");
    assert_eq!(y64.dtype(), DType::F64, "f64 input must give an f64 output");
    assert_tensors_close(&y32, &y64, tol, tol, "f32 forward vs f64 forward");
    let g32 = analytic_grads(&in32, &f).expect("f32 backward");
    let g64 = analytic_grads(&in64, &f).expect("f64 backward");
    for (i, (a, b)) in g32.iter().zip(&g64).enumerate() {
        assert_tensors_close(a, b, tol, tol, &format!("f32 vs f64 gradient of input {i}"));
    }
}

/// erf by its Maclaurin series, summed in f64 (independent of libm / candle). Cancellation
/// between the alternating terms limits it to ~1e-10 absolute near |x| = 4.
pub fn erf_series(x: f64) -> f64 {
    assert!(x.abs() <= 4.0, "erf_series is only accurate for |x| <= 4");
    // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
    let mut term = x; // (-1)^n x^(2n+1) / n!
    let mut sum = x;
    for n in 1..200 {
        term *= -x * x / n as f64;
        let add = term / (2 * n + 1) as f64;
        sum += add;
        if add.abs() < 1e-18 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}
