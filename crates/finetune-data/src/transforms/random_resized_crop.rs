//! `RandomResizedCrop` (torchvision): up to 10 attempts at a box with area fraction uniform in
//! `scale` and aspect ratio log-uniform in `ratio` (width = round(sqrt(area * ratio)),
//! height = round(sqrt(area / ratio)), Python rounding); the first that fits is placed uniformly
//! at random; after 10 misses, a centre crop with the ratio clamped to the range. The box is
//! then resized to the output size.
//!
//! Draw order per attempt: area fraction, log-ratio; then, for a fitting box, the top offset
//! in `0..=h-ch` and the left offset in `0..=w-cw`.

use super::resize::{resample, Interpolation};
use super::{crop, round_half_even, Sample, Transform};
use finetune_core::{Error, Result, Rng};

/// `transforms.RandomResizedCrop((height, width), scale, ratio, interpolation)` on 8-bit images
/// (see the module doc for the draws).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomResizedCrop {
    /// Output height in pixels.
    pub height: u32,
    /// Output width in pixels.
    pub width: u32,
    /// Range of the box's area as a fraction of the image's.
    pub scale: (f64, f64),
    /// Range of the box's aspect ratio, width / height (drawn log-uniformly).
    pub ratio: (f64, f64),
    /// How the box is resampled to the output size.
    pub interpolation: Interpolation,
}

/// A crop box: left, top, width, height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// Column of the box's left edge.
    pub left: u32,
    /// Row of the box's top edge.
    pub top: u32,
    /// Width in pixels, at least 1 for a non-empty image.
    pub width: u32,
    /// Height in pixels, at least 1 for a non-empty image.
    pub height: u32,
}

impl RandomResizedCrop {
    /// torchvision's defaults: scale (0.08, 1), ratio (3/4, 4/3).
    pub fn new(height: u32, width: u32, interpolation: Interpolation) -> Self {
        Self {
            height,
            width,
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            interpolation,
        }
    }

    /// Sets the area fraction range; an error unless `0 < lo <= hi`.
    pub fn with_scale(mut self, lo: f64, hi: f64) -> Result<Self> {
        if !(lo > 0.0 && lo <= hi) {
            return Err(Error::config(format!(
                "scale range ({lo}, {hi}) must satisfy 0 < lo <= hi"
            )));
        }
        self.scale = (lo, hi);
        Ok(self)
    }

    /// Sets the aspect-ratio range; an error unless `0 < lo <= hi`.
    pub fn with_ratio(mut self, lo: f64, hi: f64) -> Result<Self> {
        if !(lo > 0.0 && lo <= hi) {
            return Err(Error::config(format!(
                "ratio range ({lo}, {hi}) must satisfy 0 < lo <= hi"
            )));
        }
        self.ratio = (lo, hi);
        Ok(self)
    }

    /// torchvision's `get_params` for an image of (w, h).
    pub fn params(&self, w: u32, h: u32, rng: &mut Rng) -> CropBox {
        let area = w as f64 * h as f64;
        let (lr0, lr1) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target = area * rng.uniform(self.scale.0, self.scale.1);
            let aspect = rng.uniform(lr0, lr1).exp();
            let cw = round_half_even((target * aspect).sqrt());
            let ch = round_half_even((target / aspect).sqrt());
            if cw > 0.0 && cw <= w as f64 && ch > 0.0 && ch <= h as f64 {
                let (cw, ch) = (cw as u32, ch as u32);
                let top = rng.below((h - ch + 1) as u64) as u32;
                let left = rng.below((w - cw + 1) as u64) as u32;
                return CropBox {
                    left,
                    top,
                    width: cw,
                    height: ch,
                };
            }
        }
        let in_ratio = w as f64 / h as f64;
        let (cw, ch) = if in_ratio < self.ratio.0 {
            (w, round_half_even(w as f64 / self.ratio.0) as u32)
        } else if in_ratio > self.ratio.1 {
            (round_half_even(h as f64 * self.ratio.1) as u32, h)
        } else {
            (w, h)
        };
        CropBox {
            left: (w - cw) / 2,
            top: (h - ch) / 2,
            width: cw,
            height: ch,
        }
    }
}

impl Transform for RandomResizedCrop {
    fn apply(&self, x: Sample, rng: &mut Rng) -> Result<Sample> {
        let img = x.into_pixels("RandomResizedCrop")?;
        let b = self.params(img.width, img.height, rng);
        let region = crop(&img, b.left, b.top, b.width, b.height);
        Ok(Sample::Pixels(resample(
            &region,
            self.width,
            self.height,
            self.interpolation,
        )))
    }
}
