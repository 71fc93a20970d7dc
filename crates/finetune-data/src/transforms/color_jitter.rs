//! `ColorJitter(brightness, contrast, saturation, hue)` (torchvision). A scalar `b` means a factor
//! uniform in `[max(0, 1 - b), 1 + b]` (hue: a shift uniform in `[-h, h]`, `h <= 0.5`). Per
//! sample: a random order of the four (a permutation drawn first), then the factors drawn in the
//! fixed order brightness, contrast, saturation, hue (each only when enabled), then the
//! adjustments applied in the drawn order. Adjustments follow torchvision's tensor formulas on
//! values in `[0, 1]`, clamped after each: brightness `f·x`; contrast `f·x + (1-f)·mean(gray)`;
//! saturation `f·x + (1-f)·gray`; hue rotates the HSV hue. Gray is `0.2989 R + 0.587 G +
//! 0.114 B`; on 1-channel images saturation and hue do nothing.

use super::{Sample, Transform};
use crate::image::Image;
use finetune_core::{Error, Result, Rng};

/// `transforms.ColorJitter` on 8-bit images (see the module doc for the draws and formulas).
/// Each field is the `[lo, hi]` range a factor is drawn from, `None` to leave that property
/// alone; the default changes nothing (and draws only the permutation).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ColorJitter {
    /// Brightness factor range (1 = unchanged, 0 = black).
    pub brightness: Option<(f64, f64)>,
    /// Contrast factor range (1 = unchanged, 0 = uniform gray at the image's mean).
    pub contrast: Option<(f64, f64)>,
    /// Saturation factor range (1 = unchanged, 0 = grayscale); RGB only.
    pub saturation: Option<(f64, f64)>,
    /// Hue shift range, in turns of the colour wheel, within `[-0.5, 0.5]`; RGB only.
    pub hue: Option<(f64, f64)>,
}

fn factor_range(name: &str, v: f64) -> Result<Option<(f64, f64)>> {
    if !finetune_core::error::non_negative(v) {
        return Err(Error::config(format!(
            "ColorJitter {name} must be >= 0, got {v}"
        )));
    }
    Ok((v > 0.0).then(|| ((1.0 - v).max(0.0), 1.0 + v)))
}

impl ColorJitter {
    /// From torchvision's scalar arguments (0 disables one).
    pub fn new(brightness: f64, contrast: f64, saturation: f64, hue: f64) -> Result<Self> {
        if !(0.0..=0.5).contains(&hue) {
            return Err(Error::config(format!(
                "ColorJitter hue must be in [0, 0.5], got {hue}"
            )));
        }
        Ok(Self {
            brightness: factor_range("brightness", brightness)?,
            contrast: factor_range("contrast", contrast)?,
            saturation: factor_range("saturation", saturation)?,
            hue: (hue > 0.0).then_some((-hue, hue)),
        })
    }

    /// The order and factors for one sample: `(order, [b, c, s, h])` (`None` = disabled).
    pub fn params(&self, rng: &mut Rng) -> ([usize; 4], [Option<f64>; 4]) {
        let mut order = [0, 1, 2, 3];
        rng.shuffle(&mut order);
        let mut draw = |r: Option<(f64, f64)>| r.map(|(lo, hi)| rng.uniform(lo, hi));
        let f = [
            draw(self.brightness),
            draw(self.contrast),
            draw(self.saturation),
            draw(self.hue),
        ];
        (order, f)
    }
}

fn gray(p: &[f32]) -> f32 {
    0.2989 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

fn blend(x: f32, y: f32, f: f32) -> f32 {
    (f * x + (1.0 - f) * y).clamp(0.0, 1.0)
}

fn rgb_to_hsv(p: &[f32]) -> [f32; 3] {
    let (r, g, b) = (p[0], p[1], p[2]);
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let cr = maxc - minc;
    let s = if maxc > 0.0 { cr / maxc } else { 0.0 };
    if cr == 0.0 {
        return [0.0, s, maxc];
    }
    let (rc, gc, bc) = ((maxc - r) / cr, (maxc - g) / cr, (maxc - b) / cr);
    let h = if maxc == r {
        bc - gc
    } else if maxc == g {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    [(h / 6.0).rem_euclid(1.0), s, maxc]
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> [f32; 3] {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let (p, q, t) = (
        (v * (1.0 - s)).clamp(0.0, 1.0),
        (v * (1.0 - s * f)).clamp(0.0, 1.0),
        (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0),
    );
    match (i as i64).rem_euclid(6) {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// Applies adjustment `which` (0 brightness, 1 contrast, 2 saturation, 3 hue) with factor `f`
/// to `x` (HWC values in [0, 1], `c` channels).
pub fn adjust(x: &mut [f32], c: usize, which: usize, f: f32) {
    match which {
        0 => x.iter_mut().for_each(|v| *v = blend(*v, 0.0, f)),
        1 => {
            let mean = if c == 3 {
                x.chunks_exact(3).map(gray).sum::<f32>() / (x.len() / 3) as f32
            } else {
                x.iter().sum::<f32>() / x.len() as f32
            };
            x.iter_mut().for_each(|v| *v = blend(*v, mean, f));
        }
        2 if c == 3 => {
            for p in x.chunks_exact_mut(3) {
                let g = gray(p);
                p.iter_mut().for_each(|v| *v = blend(*v, g, f));
            }
        }
        3 if c == 3 => {
            for p in x.chunks_exact_mut(3) {
                let [h, s, v] = rgb_to_hsv(p);
                let rgb = hsv_to_rgb((h + f).rem_euclid(1.0), s, v);
                p.copy_from_slice(&rgb);
            }
        }
        _ => {}
    }
}

impl Transform for ColorJitter {
    fn apply(&self, x: Sample, rng: &mut Rng) -> Result<Sample> {
        let img = x.into_pixels("ColorJitter")?;
        let (order, f) = self.params(rng);
        if f.iter().all(Option::is_none) {
            return Ok(Sample::Pixels(img));
        }
        let c = img.channels as usize;
        let mut v: Vec<f32> = img.data.iter().map(|&b| b as f32 / 255.0).collect();
        for which in order {
            if let Some(f) = f[which] {
                adjust(&mut v, c, which, f as f32);
            }
        }
        let data = v
            .iter()
            .map(|x| (x * 255.0).round().clamp(0.0, 255.0) as u8)
            .collect();
        Ok(Sample::Pixels(Image::new(
            img.width,
            img.height,
            img.channels,
            data,
        )))
    }
}
