//! The reductions gradient clipping and the NaN check run over every gradient each step — a
//! norm's per-tensor part and "all finite" — in one pass over the values. A contiguous `f32`
//! tensor in host memory is read where it lies (no `f64` copy, no temporary per op: on a
//! 22M-parameter model those copies cost more than a tenth of a second a step); any other
//! tensor goes through candle's ops on its own device.

use crate::error::Result;
use candle_core::{CpuStorage, DType, Storage, Tensor};

/// Runs `f` on the values of `t` when it is a contiguous `f32` tensor in host memory.
fn with_host_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(v)), Some((start, end))) => Some(f(&v[start..end])),
        _ => None,
    }
}

/// `Σ |g|^p` of one gradient in f64 (`max |g|` for `p = ∞`), summed in a fixed order so the
/// result is deterministic.
pub(crate) fn norm_part(g: &Tensor, p: f64) -> Result<f64> {
    let fast = with_host_f32(g, |v| {
        if p.is_infinite() {
            v.iter().fold(0f64, |m, &x| m.max(f64::from(x.abs())))
        } else if p == 2.0 {
            lanes(v, |x| x * x)
        } else {
            lanes(v, |x| x.abs().powf(p))
        }
    });
    if let Some(s) = fast {
        return Ok(s);
    }
    let g = g.to_dtype(DType::F64)?;
    Ok(if p.is_infinite() {
        g.abs()?.max_all()?.to_scalar::<f64>()?
    } else if p == 2.0 {
        g.sqr()?.sum_all()?.to_scalar::<f64>()?
    } else {
        g.abs()?.powf(p)?.sum_all()?.to_scalar::<f64>()?
    })
}

/// Whether every value of `g` is finite (no NaN, no infinity).
pub(crate) fn all_finite(g: &Tensor) -> Result<bool> {
    // Blocks checked whole (no early exit inside one) so the check vectorises.
    let finite = |v: &[f32]| {
        v.chunks(4096)
            .all(|c| c.iter().fold(true, |ok, x| ok & x.is_finite()))
    };
    if let Some(ok) = with_host_f32(g, finite) {
        return Ok(ok);
    }
    let s = g
        .to_dtype(DType::F64)?
        .abs()?
        .sum_all()?
        .to_scalar::<f64>()?;
    Ok(s.is_finite())
}

/// `Σ f(x)` in f64 over eight interleaved partial sums (independent adds the CPU overlaps),
/// added up in a fixed order at the end.
fn lanes(v: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0f64; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f(f64::from(x));
        }
    }
    let tail: f64 = rest.iter().map(|&x| f(f64::from(x))).sum();
    acc.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The host pass and candle's ops agree, for contiguous tensors and views.
    #[test]
    fn host_pass_equals_candles_ops() -> Result<()> {
        let v: Vec<f32> = (0..1003)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let t = Tensor::from_vec(v, (17, 59), &Device::Cpu)?;
        let view = t.t()?; // not contiguous: candle's path
        for p in [1.0, 2.0, 3.0, f64::INFINITY] {
            let host = norm_part(&t, p)?;
            let ops = norm_part(&view, p)?;
            assert!(
                (host - ops).abs() <= 1e-9 * ops.abs().max(1.0),
                "p={p}: {host} vs {ops}"
            );
        }
        assert!(all_finite(&t)? && all_finite(&view)?);
        let bad = Tensor::new(&[1f32, f32::NAN, 2.0], &Device::Cpu)?;
        let inf = Tensor::new(&[[1f32, f32::INFINITY]], &Device::Cpu)?;
        assert!(!all_finite(&bad)? && !all_finite(&inf)? && !all_finite(&inf.t()?)?);
        assert!(norm_part(&bad, 2.0)?.is_nan());
        Ok(())
    }
}
