//! RandAugment with timm's policy strings (`--aa rand-m9-mstd0.5-inc1`) on 8-bit images, before
//! `ToTensor` as in timm's train transform, over timm's fifteen operations.
//!
//! The string: `rand`, then `-`-separated sections in any order: `mN` magnitude (default 10),
//! `nN` operations per image (2), `pP` probability of each (0.5), `mstdS` magnitude noise
//! (`S > 100`: uniform in `[0, m]`), `mmaxN` magnitude cap (10), `incN` the "increasing"
//! variants (0). Per image: `n` operations chosen uniformly with replacement; each applies with
//! probability `p`, at magnitude `m`, or `N(m, S)` / `U(0, m)` with noise, clamped to
//! `[0, mmax]`, mapped to its argument as timm's level functions do (`L = magnitude / 10`):
//!
//! | operation | argument |
//! |---|---|
//! | `AutoContrast`, `Equalize`, `Invert` | none |
//! | `Rotate` | `±30L` degrees (sign at random), about the centre |
//! | `Posterize` | `⌊4L⌋` bits; increasing: `4 − ⌊4L⌋` |
//! | `Solarize` | threshold `⌊256L⌋`; increasing: `256 − ⌊256L⌋` |
//! | `SolarizeAdd` | `min(128, ⌊110L⌋)` |
//! | `Color`, `Contrast`, `Brightness`, `Sharpness` | factor `1.8L + 0.1`; increasing: `1 ± 0.9L` (sign at random) |
//! | `ShearX`, `ShearY` | shear `±0.3L` (affine `(1, s, 0, 0, 1, 0)` / `(1, 0, 0, s, 1, 0)`) |
//! | `TranslateXRel`, `TranslateYRel` | `±0.45L` of the width / height |
//!
//! The geometric operations sample bilinearly (timm picks bilinear or bicubic at random; bicubic
//! is not here) and fill with the model's mean colour (`round(255·mean)`, timm's `img_mean`).
//! `t` (transform sets) and weighted choice are not read.

use super::pil_ops::{self, Enhance};
use super::resize::Interpolation;
use super::rotation::{affine, rotate};
use super::{Sample, Transform};
use crate::image::Image;
use finetune_core::{Error, Result, Rng};

/// timm's RandAugment operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RandOp {
    /// `ImageOps.autocontrast`.
    AutoContrast,
    /// `ImageOps.equalize`.
    Equalize,
    /// `ImageOps.invert`.
    Invert,
    /// `ImageOps.posterize`.
    Posterize,
    /// `ImageOps.solarize`.
    Solarize,
    /// timm's `solarize_add`.
    SolarizeAdd,
    /// `ImageEnhance.Color`.
    Color,
    /// `ImageEnhance.Contrast`.
    Contrast,
    /// `ImageEnhance.Brightness`.
    Brightness,
    /// `ImageEnhance.Sharpness`.
    Sharpness,
    /// `Image.rotate`.
    Rotate,
    /// Horizontal shear.
    ShearX,
    /// Vertical shear.
    ShearY,
    /// Horizontal shift, a share of the width.
    TranslateXRel,
    /// Vertical shift, a share of the height.
    TranslateYRel,
}

/// Every operation, in timm's list order (`_RAND_TRANSFORMS`).
pub const OPS: [RandOp; 15] = [
    RandOp::AutoContrast,
    RandOp::Equalize,
    RandOp::Invert,
    RandOp::Rotate,
    RandOp::Posterize,
    RandOp::Solarize,
    RandOp::SolarizeAdd,
    RandOp::Color,
    RandOp::Contrast,
    RandOp::Brightness,
    RandOp::Sharpness,
    RandOp::ShearX,
    RandOp::ShearY,
    RandOp::TranslateXRel,
    RandOp::TranslateYRel,
];

/// timm's fill colour when the model's mean is not known (`_FILL`).
const DEFAULT_FILL: [u8; 3] = [128, 128, 128];

/// timm's `_LEVEL_DENOM`.
const LEVEL_DENOM: f64 = 10.0;

/// A parsed RandAugment policy (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct RandAugment {
    /// Magnitude `m`.
    pub magnitude: f64,
    /// Operations per image.
    pub num_layers: usize,
    /// Probability of each chosen operation.
    pub prob: f64,
    /// Magnitude noise (`inf`: uniform in `[0, m]`; 0: none).
    pub magnitude_std: f64,
    /// Magnitude cap.
    pub magnitude_max: f64,
    /// The "increasing" variants.
    pub increasing: bool,
    /// What the geometric operations fill with, per channel.
    pub fill: Vec<u8>,
}

impl std::str::FromStr for RandAugment {
    type Err = Error;

    /// Reads `rand-m9-mstd0.5-inc1` and the like; anything else is an error naming `--aa`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: String| Error::config(format!("--aa {s}: {why}"));
        let mut parts = s.split('-');
        if parts.next() != Some("rand") {
            return Err(bad(
                "only RandAugment policies (`rand-...`) are supported".into()
            ));
        }
        let mut ra = Self {
            magnitude: LEVEL_DENOM,
            num_layers: 2,
            prob: 0.5,
            magnitude_std: 0.0,
            magnitude_max: LEVEL_DENOM,
            increasing: false,
            fill: DEFAULT_FILL.to_vec(),
        };
        for part in parts.filter(|p| !p.is_empty()) {
            let split = part
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(part.len());
            let (key, val) = part.split_at(split);
            let num = || {
                val.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| bad(format!("`{part}`: `{key}` needs a number >= 0")))
            };
            match key {
                "m" => ra.magnitude = num()?,
                "n" => ra.num_layers = num()? as usize,
                "p" => ra.prob = num()?,
                "mstd" => {
                    ra.magnitude_std = num().map(|v| if v > 100.0 { f64::INFINITY } else { v })?
                }
                "mmax" => ra.magnitude_max = num()?,
                "inc" => ra.increasing = num()? != 0.0,
                _ => {
                    return Err(bad(format!(
                        "unknown section `{part}` (m, n, p, mstd, mmax, inc)"
                    )))
                }
            }
        }
        if ra.prob > 1.0 {
            return Err(bad(format!("p{} is not a probability", ra.prob)));
        }
        Ok(ra)
    }
}

impl RandAugment {
    /// Fills with the colour of a model's normalisation mean (values in [0, 1]), as timm's
    /// `img_mean`: `min(255, round(255·m))` per channel.
    pub fn with_mean_fill(mut self, mean: &[f32]) -> Self {
        self.fill = mean
            .iter()
            .map(|&m| (255.0 * m as f64).round().clamp(0.0, 255.0) as u8)
            .collect();
        self
    }

    /// The magnitude one application uses (timm's `AugmentOp`: noise, then the clamp).
    fn draw_magnitude(&self, rng: &mut Rng) -> f64 {
        let m = if self.magnitude_std == f64::INFINITY {
            rng.uniform(0.0, self.magnitude)
        } else if self.magnitude_std > 0.0 {
            self.magnitude + self.magnitude_std * rng.normal()
        } else {
            self.magnitude
        };
        m.clamp(0.0, self.magnitude_max)
    }

    /// An enhancement factor at level `l` (timm's `_enhance_level` / `_enhance_increasing_level`).
    fn factor(&self, l: f64, rng: &mut Rng) -> f64 {
        if !self.increasing {
            return l * 1.8 + 0.1;
        }
        1.0 + negate_at_random(l * 0.9, rng)
    }

    /// `op` with an affine matrix, filled with [`Self::fill`].
    fn warp(&self, img: &mut Image, m: [f64; 6]) {
        *img = affine(img, m, Interpolation::Bilinear, &self.fill);
    }

    /// Applies `op` at `magnitude` (drawing the sign of an increasing enhancement from `rng`).
    pub fn apply_op(
        &self,
        img: &mut crate::image::Image,
        op: RandOp,
        magnitude: f64,
        rng: &mut Rng,
    ) {
        let l = magnitude / LEVEL_DENOM;
        match op {
            RandOp::AutoContrast => pil_ops::autocontrast(img),
            RandOp::Equalize => pil_ops::equalize(img),
            RandOp::Invert => pil_ops::invert(img),
            RandOp::Posterize => {
                let bits = (l * 4.0) as u32;
                pil_ops::posterize(
                    img,
                    if self.increasing {
                        4 - bits.min(4)
                    } else {
                        bits
                    },
                )
            }
            RandOp::Solarize => {
                let t = (l * 256.0) as u32;
                pil_ops::solarize(img, if self.increasing { 256 - t.min(256) } else { t })
            }
            RandOp::SolarizeAdd => pil_ops::solarize_add(img, ((l * 110.0) as u32).min(128)),
            RandOp::Color => pil_ops::enhance(img, Enhance::Color, self.factor(l, rng)),
            RandOp::Contrast => pil_ops::enhance(img, Enhance::Contrast, self.factor(l, rng)),
            RandOp::Brightness => pil_ops::enhance(img, Enhance::Brightness, self.factor(l, rng)),
            RandOp::Sharpness => pil_ops::enhance(img, Enhance::Sharpness, self.factor(l, rng)),
            RandOp::Rotate => {
                let degrees = negate_at_random(l * 30.0, rng);
                *img = rotate(img, degrees, Interpolation::Bilinear, &self.fill);
            }
            RandOp::ShearX => self.warp(
                img,
                [1.0, negate_at_random(l * 0.3, rng), 0.0, 0.0, 1.0, 0.0],
            ),
            RandOp::ShearY => self.warp(
                img,
                [1.0, 0.0, 0.0, negate_at_random(l * 0.3, rng), 1.0, 0.0],
            ),
            RandOp::TranslateXRel => {
                let px = negate_at_random(l * TRANSLATE_PCT, rng) * img.width as f64;
                self.warp(img, [1.0, 0.0, px, 0.0, 1.0, 0.0])
            }
            RandOp::TranslateYRel => {
                let px = negate_at_random(l * TRANSLATE_PCT, rng) * img.height as f64;
                self.warp(img, [1.0, 0.0, 0.0, 0.0, 1.0, px])
            }
        }
    }
}

/// timm's `translate_pct`.
const TRANSLATE_PCT: f64 = 0.45;

/// timm's `_randomly_negate`: `−v` with probability ½.
fn negate_at_random(v: f64, rng: &mut Rng) -> f64 {
    if rng.next_f64() > 0.5 {
        -v
    } else {
        v
    }
}

impl Transform for RandAugment {
    fn apply(&self, x: Sample, rng: &mut Rng) -> Result<Sample> {
        let mut img = x.into_pixels("RandAugment")?;
        for _ in 0..self.num_layers {
            let op = OPS[rng.below(OPS.len() as u64) as usize];
            if self.prob < 1.0 && rng.next_f64() > self.prob {
                continue;
            }
            let m = self.draw_magnitude(rng);
            self.apply_op(&mut img, op, m, rng);
        }
        Ok(Sample::Pixels(img))
    }
}
