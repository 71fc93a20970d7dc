//! `Normalize(mean, std)` (torchvision): `(x - mean[c]) / std[c]` per channel of a CHW tensor.

use super::{Sample, Transform};
use finetune_core::{Error, Result, Rng};

/// `transforms.Normalize(mean, std)` on a CHW tensor, after [`super::ToTensor`]. Its channel
/// count must match the image's. It draws nothing from the generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    /// Per-channel mean subtracted first (e.g. ImageNet's `[0.485, 0.456, 0.406]`).
    pub mean: Vec<f32>,
    /// Per-channel divisor, each `> 0` (e.g. ImageNet's `[0.229, 0.224, 0.225]`).
    pub std: Vec<f32>,
}

impl Normalize {
    /// A checked `Normalize`: `mean` and `std` must be non-empty and of equal length, and every
    /// `std` positive (not NaN); otherwise a configuration error.
    pub fn new(mean: Vec<f32>, std: Vec<f32>) -> Result<Self> {
        if mean.len() != std.len() || mean.is_empty() {
            return Err(Error::config(format!(
                "Normalize needs one mean and one std per channel, got {} and {}",
                mean.len(),
                std.len()
            )));
        }
        if let Some(s) = std
            .iter()
            .find(|s| !finetune_core::error::positive(**s as f64))
        {
            return Err(Error::config(format!("Normalize std must be > 0, got {s}")));
        }
        Ok(Self { mean, std })
    }
}

impl Transform for Normalize {
    fn apply(&self, x: Sample, _rng: &mut Rng) -> Result<Sample> {
        let mut t = x.into_tensor("Normalize")?;
        if self.mean.len() != t.channels {
            return Err(Error::config(format!(
                "Normalize has {} channels of mean/std, the image {}",
                self.mean.len(),
                t.channels
            )));
        }
        let plane = t.height * t.width;
        for (c, chunk) in t.data.chunks_exact_mut(plane).enumerate() {
            // torchvision's `sub_(mean).div_(std)`: a division, not a multiplication by 1/std,
            // so the values agree bit for bit.
            let (m, sd) = (self.mean[c], self.std[c]);
            chunk.iter_mut().for_each(|v| *v = (*v - m) / sd);
        }
        Ok(Sample::Tensor(t))
    }
}
