//! The reductions gradient clipping and the NaN check run over every gradient each step — a
//! norm's per-tensor part and "all finite" — in one pass over the values. A contiguous `f32`
//! tensor in host memory is read where it lies (no `f64` copy, no temporary per op: on a
//! 22M-parameter model those copies cost more than a tenth of a second a step); any other
//! tensor is reduced on its own device with candle's ops, all of a device's tensors read back
//! together (one read a step, not one per tensor).

use crate::error::Result;
use candle_core::{CpuStorage, DType, Storage, Tensor};

/// Runs `f` on the values of `t` when it is a contiguous `f32` tensor in host memory (read
/// where they lie, no copy); `None` for any other tensor.
pub fn with_host_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(v)), Some((start, end))) => Some(f(&v[start..end])),
        _ => None,
    }
}

/// `Σ |g|^p` of one host `f32` gradient in f64 (`max |g|` for `p = ∞`), summed in a fixed
/// order so the result is deterministic; `None` for any other tensor.
fn host_norm_part(g: &Tensor, p: f64) -> Option<f64> {
    with_host_f32(g, |v| {
        if p.is_infinite() {
            v.iter().fold(0f64, |m, &x| m.max(f64::from(x.abs())))
        } else if p == 2.0 {
            lanes(v, |x| x * x)
        } else {
            lanes(v, |x| x.abs().powf(p))
        }
    })
}

/// `Σ_g Σ |g|^p` over every gradient (`max |g|` for `p = ∞`): host `f32` tensors read where they
/// lie, the others reduced on their own device, each tensor to one value, and those values
/// combined there, so a device costs one scalar read however many tensors it holds.
pub(crate) fn norm_sum<'a>(gs: impl IntoIterator<Item = &'a Tensor>, p: f64) -> Result<f64> {
    let combine = |a: f64, b: f64| if p.is_infinite() { a.max(b) } else { a + b };
    let mut acc = 0f64;
    let mut on_device = Vec::new();
    for (i, g) in gs.into_iter().enumerate() {
        match host_norm_part(g, p) {
            Some(part) => acc = combine(acc, part),
            None => on_device.push((i, device_norm_part(g, p)?)),
        }
    }
    for (_, parts) in by_device(on_device) {
        let parts = Tensor::stack(&parts, 0)?;
        let total = if p.is_infinite() {
            parts.max_all()?
        } else {
            parts.sum_all()?
        };
        acc = combine(acc, f64::from(total.to_scalar::<f32>()?));
    }
    Ok(acc)
}

/// One gradient's norm part as a 0-d `f32` tensor on its device (f32: Metal has no f64).
fn device_norm_part(g: &Tensor, p: f64) -> Result<Tensor> {
    let g = g.to_dtype(DType::F32)?;
    Ok(if p.is_infinite() {
        g.abs()?.max_all()?
    } else if p == 2.0 {
        g.sqr()?.sum_all()?
    } else {
        g.abs()?.powf(p)?.sum_all()?
    })
}

/// For each of `gs`, whether every value is finite (no NaN, no infinity), in order: host
/// `f32` tensors scanned in place; on any other device `0·g` (0 where finite, NaN at a NaN
/// or an infinity) summed per tensor on the device and read back once for all of them.
pub(crate) fn all_finite_each(gs: &[&Tensor]) -> Result<Vec<bool>> {
    // Blocks checked whole (no early exit inside one) so the check vectorises.
    let finite = |v: &[f32]| {
        v.chunks(4096)
            .all(|c| c.iter().fold(true, |ok, x| ok & x.is_finite()))
    };
    let mut out: Vec<Option<bool>> = gs.iter().map(|g| with_host_f32(g, finite)).collect();
    let rest: Vec<(usize, Tensor)> = out
        .iter()
        .enumerate()
        .filter(|(_, ok)| ok.is_none())
        .map(|(i, _)| {
            let g = gs[i].to_dtype(DType::F32)?;
            Ok((i, (g * 0.0)?.sum_all()?))
        })
        .collect::<Result<_>>()?;
    for (is, ts) in by_device(rest) {
        let sums = Tensor::stack(&ts, 0)?.to_vec1::<f32>()?;
        for (i, s) in is.into_iter().zip(sums) {
            out[i] = Some(s.is_finite());
        }
    }
    Ok(out.into_iter().map(|ok| ok.unwrap_or(false)).collect())
}

/// Indexed tensors grouped by device (first appearance first): each group's indices and
/// tensors, in order.
fn by_device(ts: Vec<(usize, Tensor)>) -> Vec<(Vec<usize>, Vec<Tensor>)> {
    let mut groups: Vec<(Vec<usize>, Vec<Tensor>)> = Vec::new();
    for (i, t) in ts {
        match groups
            .iter_mut()
            .find(|(_, g)| g[0].device().same_device(t.device()))
        {
            Some((is, g)) => {
                is.push(i);
                g.push(t);
            }
            None => groups.push((vec![i], vec![t])),
        }
    }
    groups
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

    /// The host pass and the device pass (here a view or a non-f32 tensor, which the host
    /// pass does not take) agree, tensor by tensor and over several tensors.
    #[test]
    fn host_pass_equals_the_device_pass() -> Result<()> {
        let v: Vec<f32> = (0..1003)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let t = Tensor::from_vec(v, (17, 59), &Device::Cpu)?;
        let view = t.t()?; // not contiguous: the device pass
        let wide = t.to_dtype(DType::F64)?; // not f32: the device pass
        let small = (&t * 0.5)?;
        for p in [1.0, 2.0, 3.0, f64::INFINITY] {
            let host = norm_sum([&t], p)?;
            for other in [&view, &wide] {
                let dev = norm_sum([other], p)?;
                assert!(
                    (host - dev).abs() <= 1e-5 * dev.abs().max(1.0),
                    "p={p}: {host} vs {dev}"
                );
            }
            // Mixed: host parts and one device group combine as one sum (max for ∞).
            let mixed = norm_sum([&small, &view, &wide], p)?;
            let want = if p.is_infinite() {
                host
            } else {
                norm_sum([&small], p)? + 2.0 * host
            };
            assert!(
                (mixed - want).abs() <= 1e-5 * want,
                "p={p}: {mixed} vs {want}"
            );
        }
        let bad = Tensor::new(&[1f32, f32::NAN, 2.0], &Device::Cpu)?;
        let inf = Tensor::new(&[[1f32, f32::INFINITY]], &Device::Cpu)?;
        let all = [
            &t,
            &view,
            &bad,
            &inf,
            &inf.t()?,
            &bad.to_dtype(DType::F64)?,
            &wide,
        ];
        assert_eq!(
            all_finite_each(&all)?,
            [true, true, false, false, false, false, true]
        );
        assert!(norm_sum([&bad], 2.0)?.is_nan());
        assert!(norm_sum([&bad.to_dtype(DType::F64)?], 2.0)?.is_nan());
        Ok(())
    }
}
