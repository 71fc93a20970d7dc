//! Inverted dropout (as `torch.nn.functional.dropout`): in training each element is kept
//! with probability `1 - p` and scaled by `1 / (1 - p)`, otherwise zeroed; in evaluation (or
//! with `p == 0`) it is the identity and returns the very same tensor.
//!
//! Reproducible from [`Rng`]: each training call draws exactly one `u64` seed, and element
//! `i` (row-major index in the logical shape) is kept iff the SplitMix64 output for counter
//! `i` under that seed lands at or above `p` (a counter-based hash). Nothing is stored for
//! the backward pass: it regenerates the same mask from the seed, `dx = dy · mask / (1 - p)`.

use candle_core::{backend::BackendStorage, CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::kernel::{self, Real};
use crate::{Error, Result, Rng};

const NAME: &str = "dropout";

/// Dropout with drop probability `p` in `[0, 1)`; an error otherwise.
///
/// In training (and `p > 0`) draws one `u64` from `rng`; otherwise leaves `rng` untouched and
/// returns `x` itself. Differentiable; fused on CPU, composed (mask built on the host from the
/// same seed, so bit-identical) elsewhere.
pub fn dropout(x: &Tensor, p: f64, train: bool, rng: &mut Rng) -> Result<Tensor> {
    check_p(p)?;
    if !train || p == 0.0 {
        return Ok(x.clone());
    }
    let seed = rng.next_u64();
    if !kernel::fused_on(x) {
        return dropout_with_seed_composed(x, p, seed);
    }
    let dtype = x.dtype();
    let xs = kernel::kernel_input(x, kernel::compute_dtype(dtype, NAME)?)?;
    let y = xs.apply_op1(DropoutOp { p, seed })?;
    Ok(y.to_dtype(dtype)?)
}

/// [`dropout`] as a composition of candle ops (any device): the mask is built on the host with
/// the same hash and multiplied in, so for the same `rng` state it gives the same result.
pub fn dropout_composed(x: &Tensor, p: f64, train: bool, rng: &mut Rng) -> Result<Tensor> {
    check_p(p)?;
    if !train || p == 0.0 {
        return Ok(x.clone());
    }
    let seed = rng.next_u64();
    dropout_with_seed_composed(x, p, seed)
}

fn dropout_with_seed_composed(x: &Tensor, p: f64, seed: u64) -> Result<Tensor> {
    let threshold = threshold(p);
    let scale = 1.0 / (1.0 - p);
    let mask: Vec<f64> = (0..x.elem_count() as u64)
        .map(|i| if keep(seed, i, threshold) { scale } else { 0.0 })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), &candle_core::Device::Cpu)?
        .to_device(x.device())?
        .to_dtype(x.dtype())?;
    Ok(x.mul(&mask)?)
}

fn check_p(p: f64) -> Result<()> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::config(format!(
            "{NAME}: p must be in [0, 1), got {p}"
        )))
    }
}

/// Elements whose 53-bit uniform falls below this are dropped: `P(drop) = p`.
fn threshold(p: f64) -> u64 {
    (p * (1u64 << 53) as f64) as u64
}

/// Counter-based hash: the SplitMix64 output for counter `i` under state `seed`.
#[inline(always)]
fn keep(seed: u64, i: u64, threshold: u64) -> bool {
    let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) >= threshold
}

/// Multiplies by the mask: used for the forward on `x` and, unchanged, for the backward on
/// `dy` (the op is linear with a fixed diagonal).
struct DropoutOp {
    p: f64,
    seed: u64,
}

impl DropoutOp {
    fn fwd<T: Real>(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = kernel::slice::<T>(s, l, NAME)?;
        let threshold = threshold(self.p);
        let scale = T::c(1.0 / (1.0 - self.p));
        let seed = self.seed;
        let mut y = vec![T::ZERO; x.len()];
        y.par_chunks_mut(kernel::ELEMWISE_CHUNK)
            .zip(x.par_chunks(kernel::ELEMWISE_CHUNK))
            .enumerate()
            .for_each(|(c, (yc, xc))| {
                let base = (c * kernel::ELEMWISE_CHUNK) as u64;
                for (i, (y, &x)) in yc.iter_mut().zip(xc).enumerate() {
                    if keep(seed, base + i as u64, threshold) {
                        *y = x * scale;
                    }
                }
            });
        Ok((T::to_cpu_storage_owned(y), l.shape().clone()))
    }
}

impl CustomOp1 for DropoutOp {
    fn name(&self) -> &'static str {
        "finetune-dropout"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        match s.dtype() {
            DType::F32 => self.fwd::<f32>(s, l),
            DType::F64 => self.fwd::<f64>(s, l),
            dt => candle_core::bail!("{NAME}: unsupported dtype {dt:?}"),
        }
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let op = DropoutOp {
            p: self.p,
            seed: self.seed,
        };
        Ok(Some(grad.apply_op1_no_bwd(&op)?))
    }
}
