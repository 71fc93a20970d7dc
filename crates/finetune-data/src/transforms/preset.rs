//! The train and eval pipelines of a model's timm-style `pretrained_cfg` (`mean`, `std`,
//! `input_size` = [C, H, W], `crop_pct`, `interpolation`), as timm builds them:
//!
//! - eval: resize to `floor(size / crop_pct)` (the shorter side when H = W, else each side with
//!   the aspect kept, as timm's `ResizeKeepRatio`), centre crop to (H, W), ToTensor, Normalize;
//! - train: RandomResizedCrop(H, W) (scale (0.08, 1), ratio (3/4, 4/3)), horizontal flip with
//!   p = 0.5, optional ColorJitter, ToTensor, Normalize.

use super::resize::resample;
use super::{
    CenterCrop, ColorJitter, Compose, Interpolation, Normalize, RandomHorizontalFlip,
    RandomResizedCrop, Resize, ResizeTo, Sample, ToTensor, Transform,
};
use finetune_core::{Error, Result, Rng};
use serde::Deserialize;

/// The data fields of a timm `pretrained_cfg` (other keys are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PretrainedCfg {
    /// `[C, H, W]` of the model's input, e.g. `[3, 224, 224]`.
    pub input_size: [u32; 3],
    /// Per-channel mean for [`Normalize`].
    pub mean: Vec<f32>,
    /// Per-channel std for [`Normalize`].
    pub std: Vec<f32>,
    /// The fraction of the eval resize that the centre crop keeps, in `(0, 1]`; default 0.875.
    #[serde(default = "default_crop_pct")]
    pub crop_pct: f64,
    /// `nearest`, `bilinear` (the default) or `bicubic`; parsed by
    /// [`PretrainedCfg::interpolation()`].
    #[serde(default = "default_interpolation")]
    pub interpolation: String,
}

fn default_crop_pct() -> f64 {
    0.875
}

fn default_interpolation() -> String {
    "bilinear".into()
}

impl PretrainedCfg {
    /// From a timm `config.json` (its `pretrained_cfg` object) or a bare `pretrained_cfg`.
    pub fn from_json(v: &serde_json::Value) -> Result<Self> {
        let cfg = v.get("pretrained_cfg").unwrap_or(v);
        let c: Self = serde_json::from_value(cfg.clone())
            .map_err(|e| Error::config(format!("invalid pretrained_cfg: {e}")))?;
        if !(c.crop_pct > 0.0 && c.crop_pct <= 1.0) {
            return Err(Error::config(format!(
                "crop_pct must be in (0, 1], got {}",
                c.crop_pct
            )));
        }
        Ok(c)
    }

    /// The `interpolation` field parsed; an unknown name is a configuration error.
    pub fn interpolation(&self) -> Result<Interpolation> {
        self.interpolation.parse()
    }

    /// (height, width) of the model's input.
    pub fn size(&self) -> (u32, u32) {
        (self.input_size[1], self.input_size[2])
    }
}

/// The training augmentation knobs (timm's `scale`, `ratio`, `hflip`, `color_jitter`); the
/// default is timm's: scale (0.08, 1), ratio (3/4, 4/3), flip with p = 0.5, no colour jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainAugment {
    /// [`RandomResizedCrop`]'s area fraction range, `0 < lo <= hi`.
    pub scale: (f64, f64),
    /// [`RandomResizedCrop`]'s aspect-ratio (width / height) range, `0 < lo <= hi`.
    pub ratio: (f64, f64),
    /// The horizontal flip probability; 0 leaves the flip out of the pipeline.
    pub hflip: f64,
    /// timm's `color_jitter` (brightness = contrast = saturation), `None` for off.
    pub color_jitter: Option<f64>,
}

impl Default for TrainAugment {
    fn default() -> Self {
        Self {
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            hflip: 0.5,
            color_jitter: None,
        }
    }
}

/// timm's eval pipeline for `cfg` (see the module doc): resize, centre crop to the input size,
/// ToTensor, Normalize. Deterministic: it draws nothing from the generator. Errors on an unknown
/// interpolation or an invalid mean/std.
pub fn eval_transforms(cfg: &PretrainedCfg) -> Result<Compose> {
    let (h, w) = cfg.size();
    let interp = cfg.interpolation()?;
    let scale = |s: u32| (s as f64 / cfg.crop_pct).floor() as u32;
    if h == w {
        return Ok(Compose::new()
            .then(Resize::new(ResizeTo::Shorter(scale(h)), interp))
            .then(CenterCrop::new(h, w))
            .then(ToTensor)
            .then(Normalize::new(cfg.mean.clone(), cfg.std.clone())?));
    }
    Ok(Compose::new()
        .then(KeepRatio {
            target: (scale(h), scale(w)),
            interp,
        })
        .then(CenterCrop::new(h, w))
        .then(ToTensor)
        .then(Normalize::new(cfg.mean.clone(), cfg.std.clone())?))
}

/// timm's `ResizeKeepRatio`: scale by the smaller of the two target/source ratios, rounded.
#[derive(Debug, Clone, Copy)]
struct KeepRatio {
    target: (u32, u32),
    interp: Interpolation,
}

impl Transform for KeepRatio {
    fn apply(&self, x: Sample, _rng: &mut Rng) -> Result<Sample> {
        let img = x.into_pixels("Resize")?;
        let (h, w) = (img.height as f64, img.width as f64);
        let ratio = (h / self.target.0 as f64).min(w / self.target.1 as f64);
        let (nh, nw) = ((h / ratio).round() as u32, (w / ratio).round() as u32);
        Ok(Sample::Pixels(resample(&img, nw, nh, self.interp)))
    }
}

/// timm's train pipeline for `cfg` with the augmentation `aug` (see the module doc). Errors on
/// an unknown interpolation, invalid scale or ratio ranges, a negative colour jitter, or an
/// invalid mean/std.
pub fn train_transforms(cfg: &PretrainedCfg, aug: &TrainAugment) -> Result<Compose> {
    let (h, w) = cfg.size();
    let rrc = RandomResizedCrop::new(h, w, cfg.interpolation()?)
        .with_scale(aug.scale.0, aug.scale.1)?
        .with_ratio(aug.ratio.0, aug.ratio.1)?;
    let mut c = Compose::new().then(rrc);
    if aug.hflip > 0.0 {
        c = c.then(RandomHorizontalFlip::new(aug.hflip));
    }
    if let Some(j) = aug.color_jitter {
        c = c.then(ColorJitter::new(j, j, j, 0.0)?);
    }
    Ok(c.then(ToTensor)
        .then(Normalize::new(cfg.mean.clone(), cfg.std.clone())?))
}
