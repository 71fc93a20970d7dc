//! The preprocessing a checkpoint expects, for the data pipeline: input size, per-channel
//! mean/std, crop fraction and mode, interpolation. Read from timm's `pretrained_cfg` or from a
//! transformers `preprocessor_config.json`; written back into `pretrained_cfg` (timm) or a
//! `preprocessor_config.json` (transformers' ViT) on export. Shared by the image families.
//!
//! Eval transform in timm's terms: resize the shorter edge to [`Preprocessing::scale_size`]
//! with `interpolation`, centre-crop `input_size[1..]`, scale to `[0, 1]`, normalise.

use crate::error::{Error, Result};
use serde_json::{json, Map, Value};
use std::path::Path;

/// ImageNet's per-channel RGB mean of `[0, 1]`-scaled pixels (timm's `IMAGENET_DEFAULT_MEAN`).
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet's per-channel RGB standard deviation (timm's `IMAGENET_DEFAULT_STD`).
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

const INTERPOLATIONS: [&str; 7] = [
    "bilinear", "bicubic", "nearest", "lanczos", "box", "hamming", "random",
];
const CROP_MODES: [&str; 3] = ["center", "squash", "border"];

/// How images must be prepared for a checkpoint, in timm's `pretrained_cfg` terms: the eval
/// transform resizes, crops to `input_size`, scales to `[0, 1]` and normalises
/// `(x − mean) / std` per channel. Validated by every constructor ([`Preprocessing::validate`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessing {
    /// `[channels, height, width]` of the network input.
    pub input_size: [usize; 3],
    /// Per-channel mean and std of `[0, 1]`-scaled pixels.
    pub mean: Vec<f64>,
    /// Per-channel standard deviation, same scale; every entry > 0.
    pub std: Vec<f64>,
    /// Fraction of the resized image kept by the eval crop.
    pub crop_pct: f64,
    /// `center`, `squash` or `border`, as timm.
    pub crop_mode: String,
    /// `bilinear`, `bicubic`, `nearest`, … (PIL names, as timm).
    pub interpolation: String,
}

impl Default for Preprocessing {
    /// timm's ResNet defaults: 3×224×224, ImageNet mean/std, crop 0.875, bilinear.
    fn default() -> Self {
        Self::imagenet(3)
    }
}

impl Preprocessing {
    /// The keys of `pretrained_cfg` this type owns.
    pub const KEYS: &'static [&'static str] = &[
        "input_size",
        "mean",
        "std",
        "crop_pct",
        "crop_mode",
        "interpolation",
    ];

    /// timm's defaults for `in_chans` channels: ImageNet statistics for 3, their channel
    /// average repeated otherwise.
    pub fn imagenet(in_chans: usize) -> Self {
        let (mean, std) = if in_chans == 3 {
            (IMAGENET_MEAN.to_vec(), IMAGENET_STD.to_vec())
        } else {
            (
                vec![IMAGENET_MEAN.iter().sum::<f64>() / 3.0; in_chans],
                vec![IMAGENET_STD.iter().sum::<f64>() / 3.0; in_chans],
            )
        };
        Self {
            input_size: [in_chans, 224, 224],
            mean,
            std,
            crop_pct: 0.875,
            crop_mode: "center".into(),
            interpolation: "bilinear".into(),
        }
    }

    /// Reads timm's `pretrained_cfg`; missing keys take the defaults for `in_chans`.
    pub fn from_pretrained_cfg(cfg: &Map<String, Value>, in_chans: usize) -> Result<Self> {
        let mut p = Self::imagenet(in_chans);
        if let Some(v) = cfg.get("input_size") {
            let s = floats(v, "input_size")?;
            if s.len() != 3 || s.iter().any(|x| *x < 1.0 || x.fract() != 0.0) {
                return Err(Error::config(format!(
                    "pretrained_cfg.input_size must be [C, H, W], got {v}"
                )));
            }
            // timm takes the channel count from the model's in_chans.
            p.input_size = [in_chans, s[1] as usize, s[2] as usize];
        }
        if let Some(v) = cfg.get("mean") {
            p.mean = floats(v, "mean")?;
        }
        if let Some(v) = cfg.get("std") {
            p.std = floats(v, "std")?;
        }
        if let Some(v) = cfg.get("crop_pct") {
            p.crop_pct = v
                .as_f64()
                .ok_or_else(|| Error::config(format!("crop_pct must be a number, got {v}")))?;
        }
        for (key, slot) in [
            ("crop_mode", &mut p.crop_mode),
            ("interpolation", &mut p.interpolation),
        ] {
            if let Some(v) = cfg.get(key) {
                *slot = v
                    .as_str()
                    .ok_or_else(|| Error::config(format!("{key} must be a string, got {v}")))?
                    .to_string();
            }
        }
        p.validate()?;
        Ok(p)
    }

    /// Reads a transformers `preprocessor_config.json` (`image_mean`, `image_std`, `size`,
    /// `crop_size`, `crop_pct`, `resample`). Errors name the file.
    pub fn from_preprocessor_config(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let parsed = serde_json::from_str::<Value>(&text)
            .map_err(|e| e.to_string())
            .and_then(|v| v.as_object().cloned().ok_or_else(|| "not an object".into()))
            .map_err(|msg| Error::Record {
                path: path.to_path_buf(),
                msg: format!("not a valid preprocessor config: {msg}"),
            })?;
        Self::from_preprocessor_json(&parsed).map_err(|e| Error::Record {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })
    }

    /// The parsed object of a transformers `preprocessor_config.json` (see
    /// [`Preprocessing::from_preprocessor_config`]): `image_mean`/`image_std` (zero mean and
    /// unit std when `do_normalize` is false), PIL's `resample` number, and the input size
    /// and crop fraction from `size`, `crop_size`, `crop_pct` and `do_center_crop`.
    pub fn from_preprocessor_json(cfg: &Map<String, Value>) -> Result<Self> {
        let mut p = Self::imagenet(3);
        if cfg.get("do_normalize").and_then(Value::as_bool) == Some(false) {
            p.mean = vec![0.0; 3];
            p.std = vec![1.0; 3];
        } else {
            if let Some(v) = cfg.get("image_mean") {
                p.mean = floats(v, "image_mean")?;
            }
            if let Some(v) = cfg.get("image_std") {
                p.std = floats(v, "image_std")?;
            }
        }
        p.input_size[0] = p.mean.len();
        if let Some(r) = cfg.get("resample").and_then(Value::as_u64) {
            // PIL's Resampling enum.
            p.interpolation = match r {
                0 => "nearest",
                1 => "lanczos",
                2 => "bilinear",
                3 => "bicubic",
                4 => "box",
                5 => "hamming",
                _ => return Err(Error::config(format!("unknown resample {r}"))),
            }
            .into();
        }
        let hw = |v: &Value| -> Option<(usize, usize, bool)> {
            if let Some(s) = v.as_u64() {
                return Some((s as usize, s as usize, true));
            }
            if let Some(s) = v.get("shortest_edge").and_then(Value::as_u64) {
                return Some((s as usize, s as usize, true));
            }
            let h = v.get("height")?.as_u64()?;
            let w = v.get("width")?.as_u64()?;
            Some((h as usize, w as usize, false))
        };
        let size = cfg.get("size").and_then(hw);
        let crop = cfg.get("crop_size").and_then(hw);
        match (size, crop, cfg.get("crop_pct").and_then(Value::as_f64)) {
            (_, Some((ch, cw, _)), _)
                if cfg.get("do_center_crop").and_then(Value::as_bool) != Some(false) =>
            {
                // Resize, then centre-crop `crop_size`.
                p.input_size = [p.input_size[0], ch, cw];
                p.crop_pct = match size {
                    Some((s, _, true)) if s > 0 => ch as f64 / s as f64,
                    Some((h, _, false)) if h > 0 => ch as f64 / h as f64,
                    _ => 1.0,
                };
            }
            (Some((s, _, true)), _, pct) => {
                // ConvNext-style: below 384 resize to s / crop_pct then crop s; else warp.
                p.input_size = [p.input_size[0], s, s];
                if s < 384 {
                    p.crop_pct = pct.unwrap_or(224.0 / 256.0);
                } else {
                    p.crop_pct = 1.0;
                    p.crop_mode = "squash".into();
                }
            }
            (Some((h, w, false)), _, _) => {
                p.input_size = [p.input_size[0], h, w];
                p.crop_pct = 1.0;
                p.crop_mode = "squash".into();
            }
            (None, _, _) => {}
        }
        p.validate()?;
        Ok(p)
    }

    /// Refuses settings no transform can follow: a zero dimension, mean/std not one value per
    /// channel, a std <= 0 or non-finite mean, `crop_pct` outside `(0, 1]`, an unknown
    /// `interpolation` or `crop_mode`. Errors are [`Error::Config`].
    pub fn validate(&self) -> Result<()> {
        let c = self.input_size[0];
        if self.input_size.contains(&0) {
            return Err(Error::config(format!(
                "input_size {:?} has a zero dimension",
                self.input_size
            )));
        }
        if self.mean.len() != c || self.std.len() != c {
            return Err(Error::config(format!(
                "mean {:?} / std {:?} need one value per input channel ({c})",
                self.mean, self.std
            )));
        }
        if self.std.iter().any(|s| !crate::error::positive(*s))
            || self.mean.iter().any(|m| !m.is_finite())
        {
            return Err(Error::config(format!(
                "std {:?} must be > 0 and mean {:?} finite",
                self.std, self.mean
            )));
        }
        if !(self.crop_pct > 0.0 && self.crop_pct <= 1.0) {
            return Err(Error::config(format!(
                "crop_pct {} must be in (0, 1]",
                self.crop_pct
            )));
        }
        if !INTERPOLATIONS.contains(&self.interpolation.as_str()) {
            return Err(Error::config(format!(
                "interpolation `{}` is not one of {}",
                self.interpolation,
                INTERPOLATIONS.join(", ")
            )));
        }
        if !CROP_MODES.contains(&self.crop_mode.as_str()) {
            return Err(Error::config(format!(
                "crop_mode `{}` is not one of {}",
                self.crop_mode,
                CROP_MODES.join(", ")
            )));
        }
        Ok(())
    }

    /// Size the shorter edge is resized to before the centre crop: `floor(size / crop_pct)`
    /// per dimension, as timm's `transforms_factory`.
    pub fn scale_size(&self) -> (usize, usize) {
        let f = |s: usize| (s as f64 / self.crop_pct).floor() as usize;
        (f(self.input_size[1]), f(self.input_size[2]))
    }

    /// These settings as `pretrained_cfg` entries.
    pub fn to_pretrained_cfg(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("input_size".into(), json!(self.input_size));
        m.insert("mean".into(), json!(self.mean));
        m.insert("std".into(), json!(self.std));
        m.insert("crop_pct".into(), json!(self.crop_pct));
        m.insert("crop_mode".into(), json!(self.crop_mode));
        m.insert("interpolation".into(), json!(self.interpolation));
        m
    }
}

impl Preprocessing {
    /// These settings as a transformers `preprocessor_config.json` of ViT's image processor
    /// (`ViTImageProcessor`: resize straight to `size`, rescale, normalise). That processor has
    /// no crop, so a centre-cropping preprocessing is written as the resize to the input size
    /// its crop ends at (what a model fine-tuned at that size then sees at most).
    pub fn to_vit_processor_json(&self) -> Value {
        let resample = match self.interpolation.as_str() {
            "nearest" => 0,
            "lanczos" => 1,
            "bicubic" => 3,
            "box" => 4,
            "hamming" => 5,
            _ => 2,
        };
        json!({
            "do_normalize": true,
            "do_rescale": true,
            "do_resize": true,
            "image_mean": self.mean,
            "image_processor_type": "ViTImageProcessor",
            "image_std": self.std,
            "resample": resample,
            "rescale_factor": 1.0 / 255.0,
            "size": {"height": self.input_size[1], "width": self.input_size[2]},
        })
    }
}

fn floats(v: &Value, k: &str) -> Result<Vec<f64>> {
    v.as_array()
        .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<_>>>())
        .ok_or_else(|| Error::config(format!("`{k}` must be a list of numbers, got {v}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transformers_preprocessor_configs() -> Result<()> {
        // microsoft/resnet-50's file.
        let v = json!({
            "crop_pct": 0.875, "do_normalize": true, "do_resize": true,
            "feature_extractor_type": "ConvNextFeatureExtractor",
            "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
            "resample": 3, "size": 224
        });
        let p = Preprocessing::from_preprocessor_json(v.as_object().unwrap())?;
        assert_eq!(p.input_size, [3, 224, 224]);
        assert_eq!(p.interpolation, "bicubic");
        assert_eq!(p.crop_pct, 0.875);
        assert_eq!(p.scale_size(), (256, 256));
        let v = json!({"size": {"shortest_edge": 256}, "crop_size": {"height": 224, "width": 224},
                       "resample": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]});
        let p = Preprocessing::from_preprocessor_json(v.as_object().unwrap())?;
        assert_eq!((p.input_size, p.crop_pct), ([3, 224, 224], 0.875));
        assert_eq!(p.interpolation, "bilinear");
        Ok(())
    }

    #[test]
    fn a_vit_processor_config_reads_back_as_written() -> Result<()> {
        let mut p = Preprocessing::imagenet(3);
        p.input_size = [3, 48, 32];
        p.interpolation = "bicubic".into();
        p.crop_pct = 1.0;
        p.crop_mode = "squash".into();
        let v = p.to_vit_processor_json();
        assert_eq!(
            Preprocessing::from_preprocessor_json(v.as_object().unwrap())?,
            p
        );
        Ok(())
    }

    #[test]
    fn bad_values_are_named() {
        for (v, needle) in [
            (json!({"mean": [0.5]}), "mean"),
            (json!({"std": [0.5, 0.0, 0.5]}), "std"),
            (json!({"crop_pct": 1.5}), "crop_pct"),
            (json!({"interpolation": "fancy"}), "fancy"),
            (json!({"input_size": [3, 224]}), "input_size"),
        ] {
            let e = Preprocessing::from_pretrained_cfg(v.as_object().unwrap(), 3)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{v}: {e}");
        }
    }
}
