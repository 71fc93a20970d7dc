//! `RandomRotation(degrees, interpolation, fill)` (torchvision, PIL path, `expand=False`, centre
//! of the image): an angle uniform in `degrees`, counter-clockwise, about (w/2, h/2). Each output
//! pixel centre maps back through the inverse rotation (Pillow's affine transform, with cos/sin
//! rounded to 15 decimals as Pillow does, so right angles are exact); a point outside the image
//! gives `fill`. Nearest takes the pixel the point falls in; bilinear blends the four around it
//! (clamped to the edge) and truncates, as Pillow does. Both agree exactly with Pillow 13.

use super::resize::Interpolation;
use super::{Sample, Transform};
use crate::image::Image;
use finetune_core::{Error, Result, Rng};

/// `transforms.RandomRotation(degrees, interpolation, fill=fill)` on 8-bit images (see the
/// module doc). It draws one uniform angle per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomRotation {
    /// The `(min, max)` angle range in degrees, counter-clockwise positive.
    pub degrees: (f64, f64),
    /// Nearest, or bilinear; [`Interpolation::Bicubic`] is treated as bilinear.
    pub interpolation: Interpolation,
    /// Per channel (one value is used for all).
    pub fill: Vec<u8>,
}

impl RandomRotation {
    /// Angles uniform in `(-degrees, degrees)`, nearest, black fill (torchvision's defaults).
    pub fn new(degrees: f64) -> Result<Self> {
        if !finetune_core::error::non_negative(degrees) {
            return Err(Error::config(format!(
                "rotation degrees must be >= 0, got {degrees}"
            )));
        }
        Ok(Self {
            degrees: (-degrees, degrees),
            interpolation: Interpolation::Nearest,
            fill: vec![0],
        })
    }

    /// Draws angles from `(lo, hi)` instead (torchvision's `degrees=(lo, hi)`); not checked.
    pub fn with_range(mut self, lo: f64, hi: f64) -> Self {
        self.degrees = (lo, hi);
        self
    }

    /// Sets the interpolation (torchvision's default is nearest).
    pub fn with_interpolation(mut self, i: Interpolation) -> Self {
        self.interpolation = i;
        self
    }

    /// Sets the value of pixels rotated in from outside the image: one value for all channels,
    /// or one per channel (a missing channel takes the first value; an empty list is black).
    pub fn with_fill(mut self, fill: Vec<u8>) -> Self {
        self.fill = fill;
        self
    }
}

fn round15(x: f64) -> f64 {
    (x * 1e15).round() / 1e15
}

/// `img` rotated by `angle` degrees counter-clockwise about its centre.
pub fn rotate(img: &Image, angle: f64, interp: Interpolation, fill: &[u8]) -> Image {
    let (w, h) = (img.width as f64, img.height as f64);
    let a = -(angle % 360.0).to_radians();
    let (cos, sin) = (round15(a.cos()), round15(a.sin()));
    let (cx, cy) = (w / 2.0, h / 2.0);
    // Pillow: matrix [cos, sin, tx; -sin, cos, ty] maps output → input.
    let tx = cos * -cx + sin * -cy + cx;
    let ty = -sin * -cx + cos * -cy + cy;
    affine(img, [cos, sin, tx, -sin, cos, ty], interp, fill)
}

/// Pillow's `img.transform(img.size, AFFINE, m, resample, fillcolor=fill)`: each output pixel
/// centre `(x + ½, y + ½)` maps to the input point `(m0·x + m1·y + m2, m3·x + m4·y + m5)`; a
/// point outside the image gives `fill` (per channel, or its one value for all).
pub fn affine(img: &Image, m: [f64; 6], interp: Interpolation, fill: &[u8]) -> Image {
    let (w, h, c) = (
        img.width as usize,
        img.height as usize,
        img.channels as usize,
    );
    let fillc = |ch: usize| *fill.get(ch).or(fill.first()).unwrap_or(&0);
    let mut data = vec![0u8; w * h * c];
    for y in 0..h {
        for x in 0..w {
            let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
            let xin = m[0] * px + m[1] * py + m[2];
            let yin = m[3] * px + m[4] * py + m[5];
            let out = &mut data[(y * w + x) * c..(y * w + x + 1) * c];
            let inside = match interp {
                Interpolation::Nearest => {
                    xin >= 0.0 && yin >= 0.0 && (xin as usize) < w && (yin as usize) < h
                }
                _ => xin >= 0.0 && yin >= 0.0 && xin < w as f64 && yin < h as f64,
            };
            if !inside {
                for (ch, o) in out.iter_mut().enumerate() {
                    *o = fillc(ch);
                }
                continue;
            }
            match interp {
                Interpolation::Nearest => {
                    let i = (yin as usize * w + xin as usize) * c;
                    out.copy_from_slice(&img.data[i..i + c]);
                }
                // Pillow's bilinear: the four neighbours clamped to the edge.
                _ => bilinear(img, xin, yin, out),
            }
        }
    }
    Image::new(img.width, img.height, img.channels, data)
}

/// Pillow's bilinear sample of `img` at input point (`xin`, `yin`) (inside the image), into
/// `out`: the four pixels around it, clamped to the edge, blended and truncated.
fn bilinear(img: &Image, xin: f64, yin: f64, out: &mut [u8]) {
    let (w, h, c) = (
        img.width as usize,
        img.height as usize,
        img.channels as usize,
    );
    let (fx, fy) = (xin - 0.5, yin - 0.5);
    let (x0, y0) = (fx.floor(), fy.floor());
    let (dx, dy) = (fx - x0, fy - y0);
    let clampx = |v: f64| v.clamp(0.0, (w - 1) as f64) as usize;
    let clampy = |v: f64| v.clamp(0.0, (h - 1) as f64) as usize;
    let (xa, xb, ya, yb) = (clampx(x0), clampx(x0 + 1.0), clampy(y0), clampy(y0 + 1.0));
    for (ch, o) in out.iter_mut().enumerate() {
        let get = |xx: usize, yy: usize| img.data[(yy * w + xx) * c + ch] as f64;
        let top = get(xa, ya) + (get(xb, ya) - get(xa, ya)) * dx;
        let bot = get(xa, yb) + (get(xb, yb) - get(xa, yb)) * dx;
        *o = (top + (bot - top) * dy).clamp(0.0, 255.0) as u8; // truncated, as Pillow
    }
}

impl Transform for RandomRotation {
    fn apply(&self, x: Sample, rng: &mut Rng) -> Result<Sample> {
        let img = x.into_pixels("RandomRotation")?;
        let angle = rng.uniform(self.degrees.0, self.degrees.1);
        Ok(Sample::Pixels(rotate(
            &img,
            angle,
            self.interpolation,
            &self.fill,
        )))
    }
}
