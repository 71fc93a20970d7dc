//! Image classification samples for the loader: decode, transform, and collate into an
//! `images [B, C, H, W] f32` and `labels [B] u32` pair on the target device.

use super::{ColorMode, ImageDataset};
use crate::bad::record_error;
use crate::dataset::Dataset;
use crate::transforms::{Compose, TensorImage};
use candle_core::{Device, Tensor};
use finetune_core::{Error, Result, Rng};

/// An [`ImageDataset`] with the pipeline its samples go through.
#[derive(Debug, Clone)]
pub struct ImageClassification {
    /// The images and their class ids.
    pub data: ImageDataset,
    /// The per-sample pipeline: pixels in, tensor out (it must contain
    /// [`ToTensor`](crate::transforms::ToTensor)).
    pub transform: Compose,
    /// The channels images are decoded to before the pipeline runs.
    pub color: ColorMode,
}

impl Dataset for ImageClassification {
    type Item = (TensorImage, usize);

    fn len(&self) -> usize {
        self.data.len()
    }

    fn get(&self, index: usize, rng: &mut Rng) -> Result<Self::Item> {
        let img = self.data.load(index, self.color)?;
        let t = self.transform.run(img, rng).map_err(|e| {
            let (path, loc) = self.data.location(index);
            record_error(&path, loc, e)
        })?;
        Ok((t, self.data.labels()[index]))
    }
}

/// A collated batch of images and their class ids, ready for the model and the loss.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// `[B, C, H, W]`, `f32`.
    pub images: Tensor,
    /// `[B]`, `u32` class ids.
    pub labels: Tensor,
}

/// Stacks transformed images (all of one size) into tensors on `device`.
pub fn collate(items: Vec<(TensorImage, usize)>, device: &Device) -> Result<ImageBatch> {
    let first = items
        .first()
        .ok_or_else(|| Error::config("cannot collate an empty batch"))?;
    let (c, h, w) = (first.0.channels, first.0.height, first.0.width);
    let mut data = Vec::with_capacity(items.len() * c * h * w);
    let mut labels = Vec::with_capacity(items.len());
    for (t, l) in &items {
        if (t.channels, t.height, t.width) != (c, h, w) {
            return Err(Error::config(format!(
                "images of one batch differ in size ({c}x{h}x{w} and {}x{}x{}): \
                 the pipeline needs a fixed-size crop or resize",
                t.channels, t.height, t.width
            )));
        }
        data.extend_from_slice(&t.data);
        labels.push(*l as u32);
    }
    let n = items.len();
    Ok(ImageBatch {
        images: Tensor::from_vec(data, (n, c, h, w), device)?,
        labels: Tensor::from_vec(labels, n, device)?,
    })
}
