//! Image transforms with torchvision's semantics, composable in order and seeded: each random
//! transform draws from the [`Rng`] it is handed (the loader derives one per sample from seed,
//! epoch and index), so an augmentation is reproducible whatever thread runs it.
//!
//! Pixel-stage transforms ([`Resize`], [`CenterCrop`], [`RandomResizedCrop`],
//! [`RandomHorizontalFlip`], [`RandomRotation`], [`ColorJitter`]) act on 8-bit images as
//! torchvision's PIL path does; [`ToTensor`] turns HWC `u8` into CHW `f32` in `[0, 1]`;
//! [`Normalize`] and [`RandomErasing`] act on that tensor. [`Compose`] chains them; [`preset`] builds timm's train
//! and eval pipelines from a `pretrained_cfg`.

pub mod center_crop;
pub mod color_jitter;
pub mod compose;
pub mod erasing;
pub mod flip;
pub mod normalize;
pub mod pil_ops;
pub mod preset;
pub mod rand_augment;
pub mod random_resized_crop;
pub mod resize;
pub mod rotation;
pub mod to_tensor;

pub use center_crop::CenterCrop;
pub use color_jitter::ColorJitter;
pub use compose::Compose;
pub use erasing::{EraseMode, RandomErasing};
pub use flip::RandomHorizontalFlip;
pub use normalize::Normalize;
pub use preset::{eval_transforms, train_transforms, PretrainedCfg, TrainAugment};
pub use rand_augment::RandAugment;
pub use random_resized_crop::RandomResizedCrop;
pub use resize::{Interpolation, Resize, ResizeTo};
pub use rotation::RandomRotation;
pub use to_tensor::ToTensor;

use crate::image::Image;
use finetune_core::{Error, Result, Rng};

/// A CHW `f32` image (after [`ToTensor`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorImage {
    /// Channels (C): 1 or 3.
    pub channels: usize,
    /// Height (H) in pixels.
    pub height: usize,
    /// Width (W) in pixels.
    pub width: usize,
    /// `C * H * W` values, one channel plane after another (PyTorch's contiguous layout).
    pub data: Vec<f32>,
}

/// What flows through a pipeline: 8-bit pixels, then (after [`ToTensor`]) a float tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    /// An 8-bit HWC image (torchvision's PIL stage).
    Pixels(Image),
    /// A CHW `f32` image (torchvision's tensor stage).
    Tensor(TensorImage),
}

impl Sample {
    /// The 8-bit image, or an error naming the transform that needed it.
    pub fn into_pixels(self, who: &str) -> Result<Image> {
        match self {
            Sample::Pixels(i) => Ok(i),
            Sample::Tensor(_) => Err(Error::config(format!(
                "{who} works on 8-bit images: put it before ToTensor"
            ))),
        }
    }

    /// The float tensor, or an error naming the transform that needed it.
    pub fn into_tensor(self, who: &str) -> Result<TensorImage> {
        match self {
            Sample::Tensor(t) => Ok(t),
            Sample::Pixels(_) => Err(Error::config(format!(
                "{who} works on tensors: put it after ToTensor"
            ))),
        }
    }
}

/// One step of a pipeline.
pub trait Transform: Send + Sync + std::fmt::Debug {
    /// Transforms one sample, drawing any randomness from `rng` only (so the result depends on
    /// the input and the generator's state alone). A sample of the wrong stage (pixels where a
    /// tensor is needed, or the reverse) is an error.
    fn apply(&self, x: Sample, rng: &mut Rng) -> Result<Sample>;
}

/// Copies the `w`x`h` rectangle at (`x0`, `y0`) (which must lie inside the image).
pub fn crop(img: &Image, x0: u32, y0: u32, w: u32, h: u32) -> Image {
    let c = img.channels as usize;
    let mut data = Vec::with_capacity(w as usize * h as usize * c);
    for y in y0..y0 + h {
        let start = (y as usize * img.width as usize + x0 as usize) * c;
        data.extend_from_slice(&img.data[start..start + w as usize * c]);
    }
    Image::new(w, h, img.channels, data)
}

/// Python's `round` (half to even), which torchvision's size arithmetic uses.
pub fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}
