//! Position embeddings for another input size: the patch grid's embeddings resampled bicubically
//! as PyTorch's `interpolate(mode="bicubic", align_corners=False)` does it (Keys' kernel with
//! a = −0.75, source index `(o + 0.5)·in/out − 0.5`, taps clamped at the border) — the
//! computation of transformers' `interpolate_pos_encoding` and timm's
//! `resample_abs_pos_embed`. The class token's embedding is kept as it is.

use candle_core::{DType, Tensor};
use finetune_core::{Error, Result};

const A: f64 = -0.75;

fn near(x: f64) -> f64 {
    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
}

fn far(x: f64) -> f64 {
    ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
}

/// The `[out, in]` matrix resampling a line of `n_in` values to `n_out`.
pub fn bicubic_weights(n_in: usize, n_out: usize) -> Vec<Vec<f64>> {
    let scale = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|o| {
            let real = scale * (o as f64 + 0.5) - 0.5;
            let base = real.floor();
            let t = real - base;
            let mut row = vec![0.0; n_in];
            for (k, w) in [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
                .into_iter()
                .enumerate()
            {
                let i = (base as i64 - 1 + k as i64).clamp(0, n_in as i64 - 1) as usize;
                row[i] += w;
            }
            row
        })
        .collect()
}

/// `pos` `[1, 1 + g·g, D]` (class token first, then a square `g×g` patch grid row by row)
/// resampled to a `grid×grid` patch grid: `[1, 1 + grid², D]`, in `pos`'s dtype and device.
pub fn resample(pos: &Tensor, grid: usize) -> Result<Tensor> {
    let (_, n, d) = pos.dims3()?;
    let g = ((n - 1) as f64).sqrt().round() as usize;
    if g * g + 1 != n {
        return Err(Error::config(format!(
            "position embeddings of {n} rows are not a class token and a square patch grid"
        )));
    }
    let values = pos.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let (cls, grid_in) = values.split_at(d);
    let w = bicubic_weights(g, grid);
    // Rows first: [g, g, D] → [grid, g, D]; then columns → [grid, grid, D].
    let mut rows = vec![0.0; grid * g * d];
    for (oy, wy) in w.iter().enumerate() {
        for (iy, &a) in wy.iter().enumerate().filter(|(_, a)| **a != 0.0) {
            let src = &grid_in[iy * g * d..(iy + 1) * g * d];
            let dst = &mut rows[oy * g * d..(oy + 1) * g * d];
            dst.iter_mut().zip(src).for_each(|(o, s)| *o += a * s);
        }
    }
    let mut out = cls.to_vec();
    out.resize(d + grid * grid * d, 0.0);
    for oy in 0..grid {
        for (ox, wx) in w.iter().enumerate() {
            let dst = d + (oy * grid + ox) * d;
            for (ix, &a) in wx.iter().enumerate().filter(|(_, a)| **a != 0.0) {
                let src = &rows[(oy * g + ix) * d..(oy * g + ix + 1) * d];
                out[dst..dst + d]
                    .iter_mut()
                    .zip(src)
                    .for_each(|(o, s)| *o += a * s);
            }
        }
    }
    Ok(Tensor::from_vec(out, (1, 1 + grid * grid, d), pos.device())?.to_dtype(pos.dtype())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_and_the_same_size_is_the_identity() {
        for (i, o) in [(4, 7), (14, 24), (7, 3)] {
            for row in bicubic_weights(i, o) {
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }
        let id = bicubic_weights(5, 5);
        for (r, row) in id.iter().enumerate() {
            for (c, w) in row.iter().enumerate() {
                assert!((w - f64::from(u8::from(r == c))).abs() < 1e-12);
            }
        }
    }
}
