//! `RandomHorizontalFlip(p)` (torchvision): mirrors left-right when a uniform draw is below `p`.

use super::{Sample, Transform};
use crate::image::Image;
use finetune_core::{Result, Rng};

/// `transforms.RandomHorizontalFlip(p)` on 8-bit images. It draws one uniform `f64` per
/// sample, whether or not it flips.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomHorizontalFlip {
    /// The probability of a flip: 0 never flips, 1 always does (not range-checked).
    pub p: f64,
}

impl RandomHorizontalFlip {
    /// A flip with probability `p` (torchvision's default is 0.5).
    pub fn new(p: f64) -> Self {
        Self { p }
    }
}

/// The mirror image.
pub fn hflip(img: &Image) -> Image {
    let c = img.channels as usize;
    let w = img.width as usize;
    let mut data = Vec::with_capacity(img.data.len());
    for row in img.data.chunks_exact(w * c) {
        for px in row.chunks_exact(c).rev() {
            data.extend_from_slice(px);
        }
    }
    Image::new(img.width, img.height, img.channels, data)
}

impl Transform for RandomHorizontalFlip {
    fn apply(&self, x: Sample, rng: &mut Rng) -> Result<Sample> {
        let img = x.into_pixels("RandomHorizontalFlip")?;
        Ok(Sample::Pixels(if rng.next_f64() < self.p {
            hflip(&img)
        } else {
            img
        }))
    }
}
