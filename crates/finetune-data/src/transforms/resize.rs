//! `Resize` (torchvision): the shorter side to a size (aspect kept, the longer side
//! `int(size * long / short)`), or an exact (height, width). Resampling is Pillow's (which
//! torchvision uses for PIL images, and matches with `antialias=True` on tensors): separable
//! convolution with the filter widened by the scale factor when shrinking (antialiasing),
//! two 8-bit passes in Pillow's order; nearest samples
//! `floor((x + 0.5) * scale)`.

use super::{Sample, Transform};
use crate::image::Image;
use finetune_core::{Error, Result, Rng};

/// Resampling filter, as torchvision's `InterpolationMode` / PIL's `Image.Resampling`. Parsed
/// from `nearest`, `bilinear` / `linear` or `bicubic` / `cubic` (any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interpolation {
    /// The nearest source pixel (`NEAREST`), no antialiasing.
    Nearest,
    /// Triangle filter of support 1 (`BILINEAR`); the default, as in torchvision.
    #[default]
    Bilinear,
    /// Keys cubic filter with `a = -0.5` and support 2 (`BICUBIC`).
    Bicubic,
}

impl std::str::FromStr for Interpolation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "nearest" => Ok(Self::Nearest),
            "bilinear" | "linear" => Ok(Self::Bilinear),
            "bicubic" | "cubic" => Ok(Self::Bicubic),
            _ => Err(Error::config(format!(
                "unknown interpolation `{s}` (nearest, bilinear, bicubic)"
            ))),
        }
    }
}

impl Interpolation {
    fn support(self) -> f64 {
        match self {
            Self::Nearest => 0.0,
            Self::Bilinear => 1.0,
            Self::Bicubic => 2.0,
        }
    }

    fn filter(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Self::Nearest => 0.0,
            Self::Bilinear => (1.0 - x).max(0.0),
            Self::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

/// Per output position: first input index and the weights of the following inputs.
struct Coeffs {
    start: Vec<usize>,
    len: Vec<usize>,
    ksize: usize,
    weights: Vec<f32>,
}

/// Pillow's `precompute_coeffs` for resampling `in_size` samples to `out_size`.
fn coeffs(in_size: usize, out_size: usize, interp: Interpolation) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = interp.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut c = Coeffs {
        start: Vec::with_capacity(out_size),
        len: Vec::with_capacity(out_size),
        ksize,
        weights: vec![0.0; out_size * ksize],
    };
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let w = &mut c.weights[xx * ksize..xx * ksize + n];
        let mut total = 0.0;
        let ws: Vec<f64> = (0..n)
            .map(|x| interp.filter((x as f64 + xmin as f64 - center + 0.5) / filterscale))
            .collect();
        for v in &ws {
            total += v;
        }
        for (dst, v) in w.iter_mut().zip(&ws) {
            *dst = if total != 0.0 {
                (v / total) as f32
            } else {
                0.0
            };
        }
        c.start.push(xmin);
        c.len.push(n);
    }
    c
}

fn to_u8(v: f32) -> u8 {
    (v + 0.5).floor().clamp(0.0, 255.0) as u8
}

/// Resamples `img` to `out_w` x `out_h` (see the module doc).
pub fn resample(img: &Image, out_w: u32, out_h: u32, interp: Interpolation) -> Image {
    let (w, h, c) = (
        img.width as usize,
        img.height as usize,
        img.channels as usize,
    );
    let (ow, oh) = (out_w as usize, out_h as usize);
    if ow == w && oh == h {
        return img.clone();
    }
    if interp == Interpolation::Nearest {
        let (sx, sy) = (w as f64 / ow as f64, h as f64 / oh as f64);
        let xs: Vec<usize> = (0..ow)
            .map(|x| (((x as f64 + 0.5) * sx) as usize).min(w - 1))
            .collect();
        let mut data = Vec::with_capacity(ow * oh * c);
        for y in 0..oh {
            let yi = (((y as f64 + 0.5) * sy) as usize).min(h - 1);
            let row = &img.data[yi * w * c..(yi + 1) * w * c];
            for &xi in &xs {
                data.extend_from_slice(&row[xi * c..xi * c + c]);
            }
        }
        return Image::new(out_w, out_h, img.channels, data);
    }
    // Pillow (checked against 13.0) runs the vertical pass first when it shrinks the image and
    // leaves the smaller intermediate; otherwise horizontal first. The order matters: the
    // intermediate is rounded and clipped to 8 bits.
    let data = if ow != w && oh != h && oh < h && w * oh < ow * h {
        let tmp = vertical(&img.data, w, h, c, oh, interp);
        horizontal(&tmp, w, oh, c, ow, interp)
    } else {
        let tmp = if ow != w {
            horizontal(&img.data, w, h, c, ow, interp)
        } else {
            img.data.clone()
        };
        if oh != h {
            vertical(&tmp, ow, h, c, oh, interp)
        } else {
            tmp
        }
    };
    Image::new(out_w, out_h, img.channels, data)
}

/// Resamples each row of a `w` x `h` x `c` image to `ow` columns.
fn horizontal(
    src: &[u8],
    w: usize,
    h: usize,
    c: usize,
    ow: usize,
    interp: Interpolation,
) -> Vec<u8> {
    let k = coeffs(w, ow, interp);
    let mut out = vec![0u8; ow * h * c];
    for y in 0..h {
        let row = &src[y * w * c..(y + 1) * w * c];
        let orow = &mut out[y * ow * c..(y + 1) * ow * c];
        for xx in 0..ow {
            let ws = &k.weights[xx * k.ksize..xx * k.ksize + k.len[xx]];
            let base = k.start[xx] * c;
            for ch in 0..c {
                let mut acc = 0.0f32;
                for (t, &wt) in ws.iter().enumerate() {
                    acc += row[base + t * c + ch] as f32 * wt;
                }
                orow[xx * c + ch] = to_u8(acc);
            }
        }
    }
    out
}

/// Resamples each column of a `w` x `h` x `c` image to `oh` rows.
fn vertical(src: &[u8], w: usize, h: usize, c: usize, oh: usize, interp: Interpolation) -> Vec<u8> {
    let k = coeffs(h, oh, interp);
    let stride = w * c;
    let mut out = vec![0u8; oh * stride];
    let mut acc = vec![0f32; stride];
    for yy in 0..oh {
        acc.iter_mut().for_each(|a| *a = 0.0);
        let ws = &k.weights[yy * k.ksize..yy * k.ksize + k.len[yy]];
        for (t, &wt) in ws.iter().enumerate() {
            let src = &src[(k.start[yy] + t) * stride..(k.start[yy] + t + 1) * stride];
            for (a, &s) in acc.iter_mut().zip(src) {
                *a += s as f32 * wt;
            }
        }
        for (o, &a) in out[yy * stride..(yy + 1) * stride].iter_mut().zip(&acc) {
            *o = to_u8(a);
        }
    }
    out
}

/// The target of a [`Resize`]: torchvision's `size` argument as an int or as `(h, w)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeTo {
    /// The shorter side becomes this; the longer keeps the aspect ratio (truncated).
    Shorter(u32),
    /// Exactly (height, width).
    Exact {
        /// Output height in pixels.
        height: u32,
        /// Output width in pixels.
        width: u32,
    },
}

/// `transforms.Resize(size, interpolation)` on 8-bit images (see the module doc). It draws
/// nothing from the generator; an image already of the output size is returned unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resize {
    /// The output size rule.
    pub to: ResizeTo,
    /// The resampling filter.
    pub interpolation: Interpolation,
}

impl Resize {
    /// A resize to `to` with `interpolation`.
    pub fn new(to: ResizeTo, interpolation: Interpolation) -> Self {
        Self { to, interpolation }
    }

    /// Output (width, height) for an input of (w, h), as torchvision computes it.
    pub fn output_size(&self, w: u32, h: u32) -> (u32, u32) {
        match self.to {
            ResizeTo::Exact { height, width } => (width, height),
            ResizeTo::Shorter(s) => {
                let (short, long) = if w <= h { (w, h) } else { (h, w) };
                let new_long = (s as u64 * long as u64 / short as u64) as u32;
                if w <= h {
                    (s, new_long)
                } else {
                    (new_long, s)
                }
            }
        }
    }
}

impl Transform for Resize {
    fn apply(&self, x: Sample, _rng: &mut Rng) -> Result<Sample> {
        let img = x.into_pixels("Resize")?;
        let (w, h) = self.output_size(img.width, img.height);
        Ok(Sample::Pixels(resample(&img, w, h, self.interpolation)))
    }
}
