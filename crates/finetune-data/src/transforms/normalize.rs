//! `Normalize(mean, std)` (torchvision): `(x - mean[c]) / std[c]` per channel of a CHW tensor.

use super::{Sample, Transform};
use finetune_core::{Error, Result, Rng};

#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalize {
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
