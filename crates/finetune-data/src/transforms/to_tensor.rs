//! `ToTensor` (torchvision): HWC `u8` → CHW `f32` in `[0, 1]` (value / 255).

use super::{Sample, TensorImage, Transform};
use crate::image::Image;
use finetune_core::{Result, Rng};

/// `transforms.ToTensor()`: the step from the pixel stage to the tensor stage (see
/// [`to_tensor`]). It draws nothing from the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ToTensor;

/// HWC `u8` → CHW `f32`, each value divided by 255 (torchvision's `to_tensor` on a PIL image).
pub fn to_tensor(img: &Image) -> TensorImage {
    let (c, plane) = (
        img.channels as usize,
        img.width as usize * img.height as usize,
    );
    let mut data = vec![0f32; c * plane];
    for (p, px) in img.data.chunks_exact(c).enumerate() {
        for (ch, &v) in px.iter().enumerate() {
            data[ch * plane + p] = v as f32 / 255.0;
        }
    }
    TensorImage {
        channels: c,
        height: img.height as usize,
        width: img.width as usize,
        data,
    }
}

impl Transform for ToTensor {
    fn apply(&self, x: Sample, _rng: &mut Rng) -> Result<Sample> {
        Ok(Sample::Tensor(to_tensor(&x.into_pixels("ToTensor")?)))
    }
}
