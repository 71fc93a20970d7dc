//! Pillow's colour operations on 8-bit images, as RandAugment uses them (Pillow 13's
//! `ImageOps` and `ImageEnhance`), each a function of the image and its argument:
//! - [`invert`]: `255 − v`; [`posterize`]`(bits)`: `v & !(2^(8−bits) − 1)`;
//!   [`solarize`]`(t)`: `v < t ? v : 255 − v`; [`solarize_add`]`(add)`: `v < 128 ? min(255,
//!   v + add) : v` (timm's own);
//! - [`autocontrast`]: per channel, the darkest present value to 0 and the brightest to 255
//!   (`⌊v·s + o⌋` clipped, `s = 255/(hi − lo)`, `o = −lo·s`); [`equalize`]: per channel,
//!   Pillow's histogram equalisation LUT;
//! - [`enhance`]: `ImageEnhance`'s `Image.blend(degenerate, img, f)`, `degenerate + f·(img −
//!   degenerate)` truncated and clipped to `0..=255`, where the degenerate image is black
//!   (brightness), the mean of the gray image as a flat image (contrast: `⌊mean + 0.5⌋`), the
//!   gray image (colour) or the [`smooth`]ed image (sharpness). Gray is Pillow's `L`: `(19595 R + 38470 G + 7471 B + 2^15) >> 16`.

use crate::image::Image;

/// `img.filter(ImageFilter.SMOOTH)`: the 3×3 kernel `[1 1 1; 1 5 1; 1 1 1] / 13` on the inner
/// pixels, rounded; the border pixels kept (Pillow's 3×3 filter).
pub fn smooth(img: &Image) -> Vec<u8> {
    let (w, h, c) = (
        img.width as usize,
        img.height as usize,
        img.channels as usize,
    );
    let mut out = img.data.clone();
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            for ch in 0..c {
                let mut sum = 0u32;
                for (dy, dx) in (0..3).flat_map(|dy| (0..3).map(move |dx| (dy, dx))) {
                    let v = img.data[((y + dy - 1) * w + x + dx - 1) * c + ch] as u32;
                    sum += if (dy, dx) == (1, 1) { 5 * v } else { v };
                }
                out[(y * w + x) * c + ch] = (sum as f64 / 13.0 + 0.5) as u8;
            }
        }
    }
    out
}

/// Which `ImageEnhance` class [`enhance`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enhance {
    /// `ImageEnhance.Brightness`: blend with black.
    Brightness,
    /// `ImageEnhance.Contrast`: blend with the gray mean.
    Contrast,
    /// `ImageEnhance.Color`: blend with the gray image.
    Color,
    /// `ImageEnhance.Sharpness`: blend with the [`smooth`]ed image.
    Sharpness,
}

fn lut(img: &mut Image, table: impl Fn(u8) -> u8) {
    let t: Vec<u8> = (0..=255u8).map(table).collect();
    img.data.iter_mut().for_each(|v| *v = t[*v as usize]);
}

/// `ImageOps.invert`.
pub fn invert(img: &mut Image) {
    lut(img, |v| 255 - v);
}

/// `ImageOps.posterize(img, bits)`: keeps the top `bits` bits (8 or more: unchanged).
pub fn posterize(img: &mut Image, bits: u32) {
    if bits >= 8 {
        return;
    }
    let mask = !((1u16 << (8 - bits)) - 1) as u8;
    lut(img, |v| v & mask);
}

/// `ImageOps.solarize(img, threshold)`: values at or above `threshold` inverted.
pub fn solarize(img: &mut Image, threshold: u32) {
    lut(img, |v| if (v as u32) < threshold { v } else { 255 - v });
}

/// timm's `solarize_add(img, add)`: `add` added to values below 128, capped at 255.
pub fn solarize_add(img: &mut Image, add: u32) {
    lut(img, |v| {
        if v < 128 {
            (v as u32 + add).min(255) as u8
        } else {
            v
        }
    });
}

/// The values of channel `ch` of every pixel.
fn channel(img: &Image, ch: usize) -> impl Iterator<Item = u8> + '_ {
    let c = img.channels as usize;
    img.data.iter().skip(ch).step_by(c).copied()
}

/// Applies one table per channel.
fn lut_per_channel(img: &mut Image, tables: &[Vec<u8>]) {
    let c = img.channels as usize;
    for (k, v) in img.data.iter_mut().enumerate() {
        *v = tables[k % c][*v as usize];
    }
}

fn histogram(img: &Image, ch: usize) -> [u64; 256] {
    let mut h = [0u64; 256];
    channel(img, ch).for_each(|v| h[v as usize] += 1);
    h
}

/// `ImageOps.autocontrast(img)` (no cutoff).
pub fn autocontrast(img: &mut Image) {
    let tables: Vec<Vec<u8>> = (0..img.channels as usize)
        .map(|ch| {
            let h = histogram(img, ch);
            let lo = h.iter().position(|&n| n > 0).unwrap_or(0);
            let hi = h.iter().rposition(|&n| n > 0).unwrap_or(255);
            if hi <= lo {
                return (0..=255u8).collect();
            }
            let scale = 255.0 / (hi - lo) as f64;
            let offset = -(lo as f64) * scale;
            (0..256)
                .map(|ix| ((ix as f64 * scale + offset) as i64).clamp(0, 255) as u8)
                .collect()
        })
        .collect();
    lut_per_channel(img, &tables);
}

/// `ImageOps.equalize(img)`.
pub fn equalize(img: &mut Image) {
    let tables: Vec<Vec<u8>> = (0..img.channels as usize)
        .map(|ch| {
            let h = histogram(img, ch);
            let present: Vec<u64> = h.iter().copied().filter(|&n| n > 0).collect();
            let identity: Vec<u8> = (0..=255u8).collect();
            if present.len() <= 1 {
                return identity;
            }
            let step = (present.iter().sum::<u64>() - present[present.len() - 1]) / 255;
            if step == 0 {
                return identity;
            }
            let mut n = step / 2;
            (0..256)
                .map(|i| {
                    let v = (n / step).min(255) as u8;
                    n += h[i];
                    v
                })
                .collect()
        })
        .collect();
    lut_per_channel(img, &tables);
}

/// Pillow's `L` value of an RGB pixel.
fn gray(p: &[u8]) -> u8 {
    ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8
}

/// `ImageEnhance.{Brightness, Contrast, Color}(img).enhance(factor)`.
pub fn enhance(img: &mut Image, kind: Enhance, factor: f64) {
    let c = img.channels as usize;
    let rgb = c == 3;
    let degenerate: Vec<u8> = match kind {
        Enhance::Brightness => vec![0; img.data.len()],
        Enhance::Contrast => {
            let grays: Vec<u64> = if rgb {
                img.data.chunks_exact(3).map(|p| gray(p) as u64).collect()
            } else {
                img.data.iter().map(|&v| v as u64).collect()
            };
            let mean = grays.iter().sum::<u64>() as f64 / grays.len().max(1) as f64;
            vec![(mean + 0.5) as u8; img.data.len()]
        }
        Enhance::Color if rgb => img
            .data
            .chunks_exact(3)
            .flat_map(|p| [gray(p); 3])
            .collect(),
        Enhance::Color => img.data.clone(),
        Enhance::Sharpness => smooth(img),
    };
    let f = factor as f32;
    for (v, &d) in img.data.iter_mut().zip(&degenerate) {
        let t = d as f32 + f * (*v as f32 - d as f32);
        *v = if t <= 0.0 {
            0
        } else if t >= 255.0 {
            255
        } else {
            t as u8
        };
    }
}
