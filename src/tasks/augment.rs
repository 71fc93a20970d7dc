//! Image pipelines: the eval transform a model's preprocessing asks for (resize to
//! `input_size / crop_pct`, centre crop, normalise, as timm), and the training augmentation
//! chosen by `--augment`.
//!
//! `--augment PRESET[,KEY=VALUE...]`:
//!
//! | preset | what it does |
//! |---|---|
//! | `none` | the eval pipeline (nothing random) |
//! | `light` (default) | RandomResizedCrop scale (0.5, 1), horizontal flip p = 0.5 |
//! | `timm` | timm's default train transform: RandomResizedCrop scale (0.08, 1), flip p = 0.5 |
//! | `strong` | `timm` + rotation ±15° + colour jitter 0.4 |
//!
//! Keys override a preset: `scale=LO:HI` (random resized crop; `scale=none` for the eval
//! geometry), `ratio=LO:HI`, `hflip=P`, `rotation=DEG`, `jitter=X` (brightness, contrast and
//! saturation), `hue=X`. E.g. digits, which must not be mirrored: `light,hflip=0,rotation=10`.
//!
//! Order: crop (random resized, or resize + centre crop), flip, rotation (bilinear, black
//! fill), colour jitter,
//! ToTensor, Normalize. Every random draw comes from the per-sample generator the batch source
//! derives from (seed, epoch, index), so a resumed run sees the same augmented images.

use anyhow::{bail, Context, Result};
use finetune_data::transforms::{
    eval_transforms, CenterCrop, ColorJitter, Compose, Interpolation, Normalize, PretrainedCfg,
    RandAugment, RandomHorizontalFlip, RandomResizedCrop, RandomRotation, Resize, ResizeTo,
    ToTensor,
};
use finetune_resnet::Preprocessing;
use std::fmt;
use std::str::FromStr;

/// A training augmentation (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct Augment {
    /// Random resized crop area range; `None`: the eval geometry (resize + centre crop).
    pub scale: Option<(f64, f64)>,
    /// Random resized crop aspect-ratio range (width / height); 3/4 to 4/3 in every preset.
    pub ratio: (f64, f64),
    /// Probability of a horizontal flip (0: none).
    pub hflip: f64,
    /// Rotation range ±degrees (0: none).
    pub rotation: f64,
    /// Colour jitter strength for brightness, contrast and saturation (0: none).
    pub jitter: f64,
    /// Colour jitter strength for hue (0: none), as torchvision's `ColorJitter(hue=...)`.
    pub hue: f64,
}

/// Written as its canonical string (`scale=0.5:1,ratio=...`), read from any form `--augment`
/// takes.
impl serde::Serialize for Augment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Augment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The presets `--augment` names (see the module doc).
pub const PRESETS: [&str; 4] = ["none", "light", "timm", "strong"];

impl Augment {
    /// The augmentation of a preset (one of [`PRESETS`]); an unknown name is an error.
    pub fn preset(name: &str) -> Result<Self> {
        let base = Self {
            scale: None,
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            hflip: 0.0,
            rotation: 0.0,
            jitter: 0.0,
            hue: 0.0,
        };
        Ok(match name {
            "none" => base,
            "light" => Self {
                scale: Some((0.5, 1.0)),
                hflip: 0.5,
                ..base
            },
            "timm" => Self {
                scale: Some((0.08, 1.0)),
                hflip: 0.5,
                ..base
            },
            "strong" => Self {
                scale: Some((0.08, 1.0)),
                hflip: 0.5,
                rotation: 15.0,
                jitter: 0.4,
                ..base
            },
            other => bail!(
                "--augment: unknown preset `{other}` (one of {})",
                PRESETS.join(", ")
            ),
        })
    }

    /// Whether the pipeline draws anything at random.
    pub fn is_random(&self) -> bool {
        self.scale.is_some()
            || self.hflip > 0.0
            || self.rotation > 0.0
            || self.jitter > 0.0
            || self.hue > 0.0
    }

    /// The training pipeline for a model expecting `pre`.
    pub fn train_pipeline(&self, pre: &Preprocessing) -> Result<Compose> {
        self.train_pipeline_with(pre, None)
    }

    /// [`Self::train_pipeline`] with RandAugment (`--aa`) on the 8-bit image after the
    /// augmentation's own steps, before `ToTensor`, where timm's train transform has it.
    pub fn train_pipeline_with(
        &self,
        pre: &Preprocessing,
        rand_augment: Option<RandAugment>,
    ) -> Result<Compose> {
        let cfg = pretrained_cfg(pre)?;
        let (h, w) = cfg.size();
        let interp = cfg.interpolation()?;
        let mut c = match self.scale {
            Some((lo, hi)) => Compose::new().then(
                RandomResizedCrop::new(h, w, interp)
                    .with_scale(lo, hi)?
                    .with_ratio(self.ratio.0, self.ratio.1)?,
            ),
            None => eval_geometry(pre, &cfg)?,
        };
        if self.hflip > 0.0 {
            c = c.then(RandomHorizontalFlip::new(self.hflip));
        }
        if self.rotation > 0.0 {
            c = c.then(
                RandomRotation::new(self.rotation)?.with_interpolation(Interpolation::Bilinear),
            );
        }
        if self.jitter > 0.0 || self.hue > 0.0 {
            c = c.then(ColorJitter::new(
                self.jitter,
                self.jitter,
                self.jitter,
                self.hue,
            )?);
        }
        if let Some(ra) = rand_augment {
            c = c.then(ra.with_mean_fill(&cfg.mean));
        }
        Ok(c.then(ToTensor)
            .then(Normalize::new(cfg.mean.clone(), cfg.std.clone())?))
    }
}

impl Default for Augment {
    fn default() -> Self {
        Self::preset("light").expect("a known preset")
    }
}

fn range(key: &str, v: &str) -> Result<(f64, f64)> {
    let (lo, hi) = v
        .split_once(':')
        .with_context(|| format!("--augment {key}={v}: expected LO:HI"))?;
    let p = |s: &str| {
        s.trim()
            .parse::<f64>()
            .with_context(|| format!("--augment {key}={v}: `{s}` is not a number"))
    };
    Ok((p(lo)?, p(hi)?))
}

impl FromStr for Augment {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let mut parts = s.split(',').map(str::trim).filter(|p| !p.is_empty());
        let first = parts.next().unwrap_or("light");
        let (mut aug, rest): (Self, Vec<&str>) = if first.contains('=') {
            (
                Self::default(),
                std::iter::once(first).chain(parts).collect(),
            )
        } else {
            (Self::preset(first)?, parts.collect())
        };
        for kv in rest {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--augment: `{kv}` is not KEY=VALUE"))?;
            let num = || {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .with_context(|| format!("--augment {k}={v}: expected a number >= 0"))
            };
            match k {
                "scale" if v == "none" => aug.scale = None,
                "scale" => aug.scale = Some(range(k, v)?),
                "ratio" => aug.ratio = range(k, v)?,
                "hflip" => aug.hflip = num()?,
                "rotation" => aug.rotation = num()?,
                "jitter" => aug.jitter = num()?,
                "hue" => aug.hue = num()?,
                other => bail!(
                    "--augment: unknown key `{other}` (scale, ratio, hflip, rotation, jitter, hue)"
                ),
            }
        }
        if aug.hflip > 1.0 {
            bail!("--augment hflip={} must be a probability", aug.hflip);
        }
        Ok(aug)
    }
}

impl fmt::Display for Augment {
    /// The canonical form, which [`FromStr`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scale {
            Some((lo, hi)) => write!(f, "scale={lo}:{hi}")?,
            None => write!(f, "scale=none")?,
        }
        write!(
            f,
            ",ratio={}:{},hflip={},rotation={},jitter={},hue={}",
            self.ratio.0, self.ratio.1, self.hflip, self.rotation, self.jitter, self.hue
        )
    }
}

/// The data crate's view of a model's preprocessing. Interpolations it lacks map to the
/// nearest it has (lanczos → bicubic, others → bilinear).
pub fn pretrained_cfg(pre: &Preprocessing) -> Result<PretrainedCfg> {
    let interpolation = match pre.interpolation.as_str() {
        i @ ("nearest" | "bilinear" | "bicubic") => i,
        "lanczos" => "bicubic",
        _ => "bilinear",
    };
    let [c, h, w] = pre.input_size;
    Ok(PretrainedCfg {
        input_size: [c as u32, h as u32, w as u32],
        mean: pre.mean.iter().map(|&m| m as f32).collect(),
        std: pre.std.iter().map(|&s| s as f32).collect(),
        crop_pct: pre.crop_pct,
        interpolation: interpolation.into(),
    })
}

/// Resize + crop of the eval pipeline (timm: `squash` resizes to the input size exactly).
fn eval_geometry(pre: &Preprocessing, cfg: &PretrainedCfg) -> Result<Compose> {
    let (h, w) = cfg.size();
    let interp: Interpolation = cfg.interpolation()?;
    if pre.crop_mode == "squash" {
        return Ok(Compose::new().then(Resize::new(
            ResizeTo::Exact {
                height: h,
                width: w,
            },
            interp,
        )));
    }
    let scale = |s: u32| (s as f64 / cfg.crop_pct).floor() as u32;
    Ok(Compose::new()
        .then(Resize::new(ResizeTo::Shorter(scale(h.min(w))), interp))
        .then(CenterCrop::new(h, w)))
}

/// The eval pipeline for a model expecting `pre`: resize to `input_size / crop_pct`, centre
/// crop, ToTensor, Normalize (timm's `transforms_factory` eval transform).
pub fn eval_pipeline(pre: &Preprocessing) -> Result<Compose> {
    let cfg = pretrained_cfg(pre)?;
    if pre.crop_mode == "squash" {
        return Ok(eval_geometry(pre, &cfg)?
            .then(ToTensor)
            .then(Normalize::new(cfg.mean.clone(), cfg.std.clone())?));
    }
    Ok(eval_transforms(&cfg)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_keys_parse_and_round_trip() -> Result<()> {
        let a: Augment = "light,hflip=0,rotation=10".parse()?;
        assert_eq!(a.scale, Some((0.5, 1.0)));
        assert_eq!((a.hflip, a.rotation), (0.0, 10.0));
        assert_eq!(a.to_string().parse::<Augment>()?, a);
        let none: Augment = "none".parse()?;
        assert!(!none.is_random());
        assert!("strong".parse::<Augment>()?.jitter > 0.0);
        assert_eq!("scale=0.2:1".parse::<Augment>()?.scale, Some((0.2, 1.0)));
        for bad in ["wild", "light,zoom=2", "light,hflip=2", "light,scale=1"] {
            assert!(bad.parse::<Augment>().is_err(), "{bad}");
        }
        Ok(())
    }
}
