//! `RandomErasing` with timm's semantics (`timm.data.RandomErasing`, its `train.py` flags
//! `--reprob`, `--remode`, `--recount`), on a normalised CHW tensor (it comes after
//! [`super::Normalize`], as in timm's train transform).
//!
//! With probability `probability` the image gets `n` boxes, `n` uniform in `1..=max_count`.
//! For each box, up to 10 attempts: target area `U(0.02, 1/3)·H·W / n`, aspect ratio
//! `exp(U(ln 0.3, ln (1/0.3)))`, height `round(√(area·aspect))`, width `round(√(area/aspect))`
//! (Python's rounding); the first attempt whose box fits strictly inside (`h < H`, `w < W`) is
//! placed at a uniform top-left corner (`0..=H − h`, `0..=W − w`) and filled: `pixel` mode with
//! a standard normal value per pixel and channel, `rand` with one per channel, `const` with 0.
//! Every draw comes from the sample's generator.

use super::{round_half_even, Sample, Transform};
use finetune_core::{Error, Result, Rng};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What fills an erased box (timm's `--remode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EraseMode {
    /// A standard normal value per pixel and channel.
    #[default]
    Pixel,
    /// One standard normal value per channel.
    Rand,
    /// Zeros (the normalised mean).
    Const,
}

impl FromStr for EraseMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "pixel" => Ok(Self::Pixel),
            "rand" => Ok(Self::Rand),
            "const" => Ok(Self::Const),
            other => Err(format!("unknown mode `{other}` (pixel, rand or const)")),
        }
    }
}

impl fmt::Display for EraseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pixel => "pixel",
            Self::Rand => "rand",
            Self::Const => "const",
        })
    }
}

/// Smallest and largest share of the image one erasing covers (timm's defaults).
pub const AREA: (f64, f64) = (0.02, 1.0 / 3.0);
/// Smallest aspect ratio (height / width) of a box; the largest is its inverse.
pub const MIN_ASPECT: f64 = 0.3;
const ATTEMPTS: usize = 10;

/// timm's `RandomErasing` (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct RandomErasing {
    /// Probability that an image is erased at all.
    pub probability: f64,
    /// What fills a box.
    pub mode: EraseMode,
    /// Most boxes per image (at least 1).
    pub max_count: usize,
}

/// One erased box: rows `top..top + h`, columns `left..left + w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EraseBox {
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
    /// Rows.
    pub h: usize,
    /// Columns.
    pub w: usize,
}

impl RandomErasing {
    /// A checked `RandomErasing`: a probability in `[0, 1]`, at least one box.
    pub fn new(probability: f64, mode: EraseMode, max_count: usize) -> Result<Self> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(Error::config(format!(
                "--reprob must be in [0, 1], got {probability}"
            )));
        }
        if max_count == 0 {
            return Err(Error::config("--recount must be at least 1"));
        }
        Ok(Self {
            probability,
            mode,
            max_count,
        })
    }

    /// The boxes one image of `height × width` gets (drawn in the order timm draws them), each
    /// followed by the fill draws of `fill(box)` before the next box is drawn.
    pub fn boxes(
        &self,
        height: usize,
        width: usize,
        rng: &mut Rng,
        mut fill: impl FnMut(EraseBox, &mut Rng),
    ) {
        if rng.next_f64() > self.probability {
            return;
        }
        let count = if self.max_count == 1 {
            1
        } else {
            1 + rng.below(self.max_count as u64) as usize
        };
        let area = (height * width) as f64;
        let log_aspect = (MIN_ASPECT.ln(), (1.0 / MIN_ASPECT).ln());
        for _ in 0..count {
            for _ in 0..ATTEMPTS {
                let target = rng.uniform(AREA.0, AREA.1) * area / count as f64;
                let aspect = rng.uniform(log_aspect.0, log_aspect.1).exp();
                let h = round_half_even((target * aspect).sqrt()) as usize;
                let w = round_half_even((target / aspect).sqrt()) as usize;
                if w < width && h < height {
                    let top = rng.below((height - h + 1) as u64) as usize;
                    let left = rng.below((width - w + 1) as u64) as usize;
                    fill(EraseBox { top, left, h, w }, rng);
                    break;
                }
            }
        }
    }
}

impl Transform for RandomErasing {
    fn apply(&self, x: Sample, rng: &mut Rng) -> Result<Sample> {
        let mut t = x.into_tensor("RandomErasing")?;
        let (c, height, width) = (t.channels, t.height, t.width);
        let mode = self.mode;
        let data = &mut t.data;
        self.boxes(height, width, rng, |b, rng| {
            let per_channel: Vec<f32> = match mode {
                EraseMode::Rand => (0..c).map(|_| rng.normal() as f32).collect(),
                _ => vec![0.0; c],
            };
            for (ch, &value) in per_channel.iter().enumerate() {
                for y in b.top..b.top + b.h {
                    let row = (ch * height + y) * width;
                    for v in &mut data[row + b.left..row + b.left + b.w] {
                        *v = match mode {
                            EraseMode::Pixel => rng.normal() as f32,
                            _ => value,
                        };
                    }
                }
            }
        });
        Ok(Sample::Tensor(t))
    }
}
