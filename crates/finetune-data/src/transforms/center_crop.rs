//! `CenterCrop` (torchvision): top = round((h - ch) / 2), left = round((w - cw) / 2) with
//! Python's rounding; an image smaller than the crop is first padded with zeros
//! ((cw - w) / 2 on the left, the rest on the right; likewise vertically).

use super::{crop, round_half_even, Sample, Transform};
use crate::image::Image;
use finetune_core::{Result, Rng};

/// `transforms.CenterCrop((height, width))` on 8-bit images (see the module doc for the
/// offsets and padding). It draws nothing from the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CenterCrop {
    /// Output height in pixels.
    pub height: u32,
    /// Output width in pixels.
    pub width: u32,
}

impl CenterCrop {
    /// A crop to `height` x `width` (torchvision's order: height first).
    pub fn new(height: u32, width: u32) -> Self {
        Self { height, width }
    }

    /// The crop's (left, top) in an image of (w, h) that is at least as large.
    pub fn offsets(&self, w: u32, h: u32) -> (u32, u32) {
        let left = round_half_even((w - self.width) as f64 / 2.0) as u32;
        let top = round_half_even((h - self.height) as f64 / 2.0) as u32;
        (left, top)
    }
}

fn pad(img: &Image, w: u32, h: u32) -> Image {
    let (pl, pt) = ((w - img.width) / 2, (h - img.height) / 2);
    let c = img.channels as usize;
    let mut data = vec![0u8; w as usize * h as usize * c];
    for y in 0..img.height as usize {
        let src = &img.data[y * img.width as usize * c..(y + 1) * img.width as usize * c];
        let at = ((y + pt as usize) * w as usize + pl as usize) * c;
        data[at..at + src.len()].copy_from_slice(src);
    }
    Image::new(w, h, img.channels, data)
}

impl Transform for CenterCrop {
    fn apply(&self, x: Sample, _rng: &mut Rng) -> Result<Sample> {
        let mut img = x.into_pixels("CenterCrop")?;
        if img.width < self.width || img.height < self.height {
            img = pad(&img, img.width.max(self.width), img.height.max(self.height));
        }
        let (left, top) = self.offsets(img.width, img.height);
        Ok(Sample::Pixels(crop(
            &img,
            left,
            top,
            self.width,
            self.height,
        )))
    }
}
