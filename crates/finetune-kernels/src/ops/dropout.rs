//! Inverted dropout (as `torch.nn.functional.dropout`): in training each element is kept
//! with probability `1 - p` and scaled by `1 / (1 - p)`, otherwise zeroed; in evaluation (or
//! with `p == 0`) it is the identity and returns the very same tensor.
//!
//! Reproducible from [`Rng`]: each training call draws exactly one `u64` seed, and element
//! `i` (row-major index in the logical shape) is kept iff the SplitMix64 output for counter
//! `i` under that seed lands at or above `p` (a counter-based hash). Nothing is stored for
//! the backward pass: it regenerates the same mask from the seed, `dx = dy · mask / (1 - p)`.

use candle_core::{Layout, Shape, Tensor};

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
    let y = crate::tape::apply_op1(&xs, kernel::Fused(Mask { p, seed }))?;
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
    // One byte an element crosses to the device (a GPU's), not eight; scaled there.
    let mask: Vec<u8> = (0..x.elem_count() as u64)
        .map(|i| u8::from(keep(seed, i, threshold)))
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), &candle_core::Device::Cpu)?
        .to_device(x.device())?
        .to_dtype(x.dtype())?
        .affine(scale, 0.0)?;
    Ok(x.mul(&mask)?)
}

pub(crate) fn check_p(p: f64) -> Result<()> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::config(format!(
            "{NAME}: p must be in [0, 1), got {p}"
        )))
    }
}

/// Elements whose 53-bit uniform falls below this are dropped: `P(drop) = p`.
pub(crate) fn threshold(p: f64) -> u64 {
    (p * (1u64 << 53) as f64) as u64
}

/// Counter-based hash: the SplitMix64 output for counter `i` under state `seed`.
#[inline(always)]
pub(crate) fn keep(seed: u64, i: u64, threshold: u64) -> bool {
    let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) >= threshold
}

/// Multiplication by the mask: the forward on `x` and, unchanged, the backward on `dy` (the
/// op is linear with a fixed diagonal).
#[derive(Clone, Copy)]
struct Mask {
    p: f64,
    seed: u64,
}

/// `x` times the mask of `(p, seed)` (what [`dropout`] computes in training), as a new buffer.
pub(crate) fn masked<T: Real>(x: &[T], p: f64, seed: u64) -> Vec<T> {
    Mask { p, seed }.apply(x)
}

impl Mask {
    fn apply<T: Real>(&self, x: &[T]) -> Vec<T> {
        let threshold = threshold(self.p);
        let scale = T::c(1.0 / (1.0 - self.p));
        let seed = self.seed;
        let c = kernel::ELEMWISE_CHUNK;
        // Not forced inline (so it stays at the baseline level): vectorised at AVX-512 the 64-bit
        // hash multiplies made this pass about 1.7× slower.
        kernel::par_build(x.len(), c, 1, |chunk, yc| {
            let base = (chunk * c) as u64;
            for (i, (y, &x)) in yc.iter_mut().zip(&x[chunk * c..]).enumerate() {
                let kept = keep(seed, base + i as u64, threshold);
                y.write(if kept { x * scale } else { T::ZERO });
            }
        })
    }
}

impl kernel::UnaryKernel for Mask {
    fn op_names(&self) -> (&'static str, &'static str) {
        ("finetune-dropout", "finetune-dropout-bwd")
    }

    /// The backward reads neither (only `dy`); the input is the cheaper one to hold on to.
    fn bwd_reads_input(&self) -> bool {
        true
    }

    fn fwd<T: Real>(&self, x: &[T], l: &Layout) -> candle_core::Result<(Vec<T>, Shape)> {
        Ok((self.apply(x), l.shape().clone()))
    }

    fn bwd<T: Real>(&self, x: &[T], _l: &Layout, dy: &[T]) -> candle_core::Result<Vec<T>> {
        if x.len() != dy.len() {
            candle_core::bail!("{NAME} backward: gradient size mismatch");
        }
        Ok(self.apply(dy))
    }
}
