//! The embedding block (`vit.embeddings`): the image cut into `patch_size`² patches, each
//! flattened and projected by one GEMM (transformers' stride-`patch_size` convolution,
//! `patch_embeddings.projection`, on the unfolded patches), the class token in front, the
//! position embeddings added, dropout.

use crate::config::ViTConfig;
use candle_core::Tensor;
use finetune_bert::Pass;
use finetune_core::nn::param;
use finetune_core::{Error, Param, ParamStore, Result};

/// The embedding block of a [`ViTConfig`].
pub struct Embeddings {
    cls: Param,
    position: Param,
    weight: Param,
    bias: Param,
    patch: usize,
    image: usize,
    channels: usize,
    dropout: f64,
}

impl Embeddings {
    /// The block `vit.embeddings` of the store.
    pub fn new(store: &ParamStore, c: &ViTConfig) -> Result<Self> {
        let h = c.hidden_size;
        let p =
            |leaf: &str, shape: &[usize]| param(store, &format!("vit.embeddings.{leaf}"), shape);
        Ok(Self {
            cls: p("cls_token", &[1, 1, h])?,
            position: p("position_embeddings", &[1, c.tokens(), h])?,
            weight: p(
                "patch_embeddings.projection.weight",
                &[h, c.num_channels, c.patch_size, c.patch_size],
            )?,
            bias: p("patch_embeddings.projection.bias", &[h])?,
            patch: c.patch_size,
            image: c.image_size,
            channels: c.num_channels,
            dropout: c.hidden_dropout_prob,
        })
    }

    /// `[B, C, S, S]` images (`S` the config's `image_size`) → the patches as rows
    /// `[B·g², C·p²]`, each flattened channel-major as the convolution's weight is.
    fn unfold(&self, images: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = images.dims4()?;
        if (c, h, w) != (self.channels, self.image, self.image) {
            return Err(Error::config(format!(
                "images are {c}×{h}×{w}; the model takes {}×{}×{} (its image_size)",
                self.channels, self.image, self.image
            )));
        }
        let (p, g) = (self.patch, self.image / self.patch);
        Ok(images
            .reshape((b, c, g, p, g, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((b * g * g, c * p * p))?)
    }

    /// `[B, C, S, S]` images → `[B, 1 + g², H]` token embeddings.
    pub fn forward(&self, images: &Tensor, pass: &Pass) -> Result<Tensor> {
        let b = images.dim(0)?;
        let w = self.weight.tensor();
        let hidden = w.dim(0)?;
        let rows = self.unfold(&images.to_dtype(w.dtype())?)?;
        let w = w.reshape((hidden, rows.dim(1)?))?;
        let patches = pass.ops.linear(&rows, &w, Some(&self.bias.tensor()))?;
        let patches = patches.reshape((b, rows.dim(0)? / b, hidden))?;
        let cls = self.cls.tensor().broadcast_as((b, 1, hidden))?;
        let x = Tensor::cat(&[&cls, &patches], 1)?.broadcast_add(&self.position.tensor())?;
        pass.dropout(&x, self.dropout)
    }
}
