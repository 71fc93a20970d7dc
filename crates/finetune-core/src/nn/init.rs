//! Parameter initialisers driven by the project's seedable [`Rng`], matching PyTorch's
//! distributions (not its random streams).

use crate::error::Result;
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor};

/// Normal(mean, std) samples, as `torch.nn.init.normal_`.
pub fn normal(
    shape: &[usize],
    mean: f64,
    std: f64,
    rng: &mut Rng,
    dtype: DType,
    dev: &Device,
) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| (mean + std * rng.normal()) as f32).collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?
        .to_dtype(dtype)?
        .to_device(dev)?)
}

/// Uniform(lo, hi) samples, as `torch.nn.init.uniform_`.
pub fn uniform(
    shape: &[usize],
    lo: f64,
    hi: f64,
    rng: &mut Rng,
    dtype: DType,
    dev: &Device,
) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.uniform(lo, hi) as f32).collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?
        .to_dtype(dtype)?
        .to_device(dev)?)
}

/// `torch.nn.Linear`'s default initialisation for a `[out, in]` weight and its bias:
/// both U(−1/√in, 1/√in) (kaiming-uniform with a = √5 reduces to this bound for the weight).
pub fn torch_linear(
    out_dim: usize,
    in_dim: usize,
    rng: &mut Rng,
    dtype: DType,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let bound = 1.0 / (in_dim as f64).sqrt();
    let w = uniform(&[out_dim, in_dim], -bound, bound, rng, dtype, dev)?;
    let b = uniform(&[out_dim], -bound, bound, rng, dtype, dev)?;
    Ok((w, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_match_the_requested_distributions() -> Result<()> {
        let mut rng = Rng::seed_from_u64(5);
        let t = normal(&[200, 200], 0.0, 0.02, &mut rng, DType::F32, &Device::Cpu)?;
        let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(
            mean.abs() < 5e-4 && (var.sqrt() - 0.02).abs() < 5e-4,
            "{mean} {var}"
        );
        let (w, _) = torch_linear(10, 64, &mut rng, DType::F32, &Device::Cpu)?;
        let w: Vec<f32> = w.flatten_all()?.to_vec1()?;
        assert!(w.iter().all(|x| x.abs() <= 0.125) && w.iter().any(|x| x.abs() > 0.1));
        Ok(())
    }
}
