//! Mixup and CutMix over a training batch, with timm's `Mixup` semantics (its `train.py`
//! flags `--mixup`, `--cutmix`, `--cutmix-minmax`, `--mixup-prob`, `--mixup-switch-prob`,
//! `--mixup-mode`, `--smoothing`).
//!
//! Each sample `i` is paired with sample `j = N − 1 − i` (the batch reversed). With `λ` drawn
//! from `Beta(α, α)`:
//! - mixup: `x_i ← λ·x_i + (1 − λ)·x_j`;
//! - cutmix: a box of `x_i` is replaced by the same box of `x_j`; the box covers about `1 − λ`
//!   of the image (sides `⌊side·√(1 − λ)⌋`, centred at a uniform pixel, clipped to the image)
//!   or, with `--cutmix-minmax LO,HI`, has sides drawn uniformly in `[⌊side·LO⌋, ⌊side·HI⌋)`;
//!   `λ` is then corrected to the share of the image left uncovered (timm's `correct_lam`).
//!
//! A batch mixes with probability `prob`; when both α are set, cutmix is chosen with
//! probability `switch_prob`. Modes: `batch` (one `λ` and box for the whole batch), `pair`
//! (one per pair `i`, `N − 1 − i`, both mixed with each other), `elem` (one per sample).
//!
//! Targets: smoothed one-hot rows (`ε/C` off, `1 − ε + ε/C` on, `ε` = `--smoothing`),
//! `t_i = λ_i·y_i + (1 − λ_i)·y_j`, the soft targets of a soft-target cross-entropy. Every draw
//! comes from the generator handed in (the loader's per-batch one), so a batch mixes the same
//! way whenever it is rebuilt. Unlike timm, an odd batch is accepted: in `pair` mode its middle
//! sample stays as it is (in `batch` and `elem` modes it is mixed with itself).

use finetune_core::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How `λ` and the box are shared over a batch (timm's `--mixup-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MixMode {
    /// One `λ` (and box) for the whole batch.
    #[default]
    Batch,
    /// One per pair of samples `i` and `N − 1 − i`.
    Pair,
    /// One per sample.
    Elem,
}

impl FromStr for MixMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "batch" => Ok(Self::Batch),
            "pair" => Ok(Self::Pair),
            "elem" => Ok(Self::Elem),
            other => Err(format!("unknown mode `{other}` (batch, pair or elem)")),
        }
    }
}

impl fmt::Display for MixMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Batch => "batch",
            Self::Pair => "pair",
            Self::Elem => "elem",
        })
    }
}

/// A box of rows `y0..y1` and columns `x0..x1` (half-open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutBox {
    /// First row.
    pub y0: usize,
    /// One past the last row.
    pub y1: usize,
    /// First column.
    pub x0: usize,
    /// One past the last column.
    pub x1: usize,
}

impl CutBox {
    /// Pixels covered.
    pub fn area(&self) -> usize {
        (self.y1 - self.y0) * (self.x1 - self.x0)
    }
}

/// The mixing of a batch (see the module doc). Built from checked settings: α ≥ 0, not both 0
/// unless `cutmix_minmax` is set, probabilities in `[0, 1]`, `0 ≤ LO < HI ≤ 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixup {
    /// Mixup's α (0: no mixup).
    pub mixup_alpha: f64,
    /// CutMix's α (0: no cutmix; 1 whenever `cutmix_minmax` is set, as timm forces it).
    pub cutmix_alpha: f64,
    /// CutMix box sides as fractions of the image's, instead of from `λ`.
    pub cutmix_minmax: Option<(f64, f64)>,
    /// Probability that a batch (sample, pair) is mixed at all.
    pub prob: f64,
    /// Probability of cutmix rather than mixup when both are on.
    pub switch_prob: f64,
    /// How `λ` is shared.
    pub mode: MixMode,
    /// Correct `λ` to the box's real area (timm's default, `correct_lam=True`).
    pub correct_lam: bool,
    /// Label smoothing folded into the targets.
    pub smoothing: f64,
    /// Classes: the targets' width.
    pub num_classes: usize,
    /// The epoch (counted from 0) from which batches are no longer mixed (timm's
    /// `--mixup-off-epoch`, which turns its `Mixup.mixup_enabled` off): their targets stay
    /// the smoothed one-hot distributions, so the loss is unchanged in form.
    pub off_epoch: Option<u64>,
}

impl Mixup {
    /// Whether batches of `epoch` (from 0) are mixed.
    pub fn enabled(&self, epoch: u64) -> bool {
        self.off_epoch.is_none_or(|off| epoch < off)
    }

    /// [`Self::apply`] for a batch of `epoch`: from [`Self::off_epoch`] on, the images stay as
    /// they are and the targets are `labels` smoothed (timm's `Mixup` with `λ = 1`); `rng` is
    /// then not drawn from.
    pub fn apply_in_epoch(
        &self,
        images: &mut [Vec<f32>],
        chw: (usize, usize, usize),
        labels: &[usize],
        epoch: u64,
        rng: &mut Rng,
    ) -> Vec<f32> {
        if self.enabled(epoch) {
            self.apply(images, chw, labels, rng)
        } else {
            soft_targets(
                labels,
                &vec![1.0; labels.len()],
                self.num_classes,
                self.smoothing,
            )
        }
    }

    /// Mixes `images` (each `C·H·W` values, CHW) in place and returns the soft targets
    /// (`N × num_classes`, row-major) of `labels`.
    pub fn apply(
        &self,
        images: &mut [Vec<f32>],
        chw: (usize, usize, usize),
        labels: &[usize],
        rng: &mut Rng,
    ) -> Vec<f32> {
        let n = images.len();
        let params: Vec<Option<(f64, bool)>> = match self.mode {
            MixMode::Batch => vec![Some(self.draw(rng)); n],
            MixMode::Elem => (0..n).map(|_| Some(self.draw(rng))).collect(),
            MixMode::Pair => {
                let half: Vec<_> = (0..n / 2).map(|_| Some(self.draw(rng))).collect();
                let mut params = half.clone();
                params.resize(n - n / 2, None);
                params.extend(half.iter().rev().cloned());
                params
            }
        };
        self.mix_with(images, chw, labels, &params, rng)
    }

    /// [`Self::apply`] with each sample's (`λ`, cutmix?) given (`None`: left as it is); the
    /// cutmix boxes are still drawn from `rng`. In `pair` mode `params` must be symmetric
    /// (`params[i] == params[N − 1 − i]`).
    pub fn mix_with(
        &self,
        images: &mut [Vec<f32>],
        chw: (usize, usize, usize),
        labels: &[usize],
        params: &[Option<(f64, bool)>],
        rng: &mut Rng,
    ) -> Vec<f32> {
        let original: Vec<Vec<f32>> = images.to_vec();
        let shared = self.mode == MixMode::Batch;
        let lam = self.mix_each(images, &original, chw, params, rng, shared);
        soft_targets(labels, &lam, self.num_classes, self.smoothing)
    }

    /// Mixes sample `i` with `N − 1 − i` as `params[i]` says (`None` or `λ = 1`: unchanged);
    /// `shared`: one box for all (batch mode), else a box per sample, the second sample of a
    /// pair taking its partner's box. Returns each sample's (corrected) `λ`.
    fn mix_each(
        &self,
        images: &mut [Vec<f32>],
        original: &[Vec<f32>],
        (_, h, w): (usize, usize, usize),
        params: &[Option<(f64, bool)>],
        rng: &mut Rng,
        shared: bool,
    ) -> Vec<f64> {
        let n = images.len();
        let mut lams = vec![1.0; n];
        let mut boxes: Vec<Option<(CutBox, f64)>> = vec![None; n];
        for i in 0..n {
            let Some((lam, cut)) = params[i] else {
                continue;
            };
            if lam == 1.0 {
                continue;
            }
            let j = n - 1 - i;
            if !cut {
                mix_pixels(&mut images[i], &original[i], &original[j], lam);
                lams[i] = lam;
                continue;
            }
            let pair_first = self.mode == MixMode::Pair && i > j;
            // The batch's box (drawn at sample 0) or the pair's (drawn at its first sample).
            let drawn = match (shared && i > 0, pair_first) {
                (true, _) => boxes[0],
                (_, true) => boxes[j],
                _ => None,
            };
            let (bx, corrected) = match drawn {
                Some(b) => b,
                None => self.cutmix_box(h, w, lam, rng),
            };
            boxes[i] = Some((bx, corrected));
            paste_box(&mut images[i], &original[j], h, w, bx);
            lams[i] = corrected;
        }
        lams
    }

    /// One draw of (`λ`, cutmix?) as timm's `_params_per_batch`: `λ = 1` (no mixing) with
    /// probability `1 − prob`.
    pub fn draw(&self, rng: &mut Rng) -> (f64, bool) {
        if rng.next_f64() >= self.prob {
            return (1.0, false);
        }
        let (mix, cut) = (self.mixup_alpha > 0.0, self.cutmix_alpha > 0.0);
        let use_cut = match (mix, cut) {
            (true, true) => rng.next_f64() < self.switch_prob,
            (false, true) => true,
            _ => false,
        };
        let alpha = if use_cut {
            self.cutmix_alpha
        } else {
            self.mixup_alpha
        };
        (beta(alpha, rng), use_cut)
    }

    /// The cutmix box for `λ` in an `h × w` image and the `λ` it gives (timm's
    /// `cutmix_bbox_and_lam`).
    pub fn cutmix_box(&self, h: usize, w: usize, lam: f64, rng: &mut Rng) -> (CutBox, f64) {
        let bx = match self.cutmix_minmax {
            Some((lo, hi)) => box_minmax(h, w, lo, hi, rng),
            None => box_for_lam(h, w, lam, rng),
        };
        let lam = if self.correct_lam || self.cutmix_minmax.is_some() {
            1.0 - bx.area() as f64 / (h * w) as f64
        } else {
            lam
        };
        (bx, lam)
    }
}

/// timm's `rand_bbox`: sides `cut = ⌊side·√(1 − λ)⌋`, centre uniform, from `centre − ⌊cut/2⌋`
/// to `centre + ⌈cut/2⌉`, clipped to the image.
pub fn box_for_lam(h: usize, w: usize, lam: f64, rng: &mut Rng) -> CutBox {
    let ratio = (1.0 - lam).max(0.0).sqrt();
    let (cut_h, cut_w) = ((h as f64 * ratio) as i64, (w as f64 * ratio) as i64);
    let cy = rng.below(h as u64) as i64;
    let cx = rng.below(w as u64) as i64;
    let clip = |v: i64, hi: usize| v.clamp(0, hi as i64) as usize;
    CutBox {
        y0: clip(cy - cut_h / 2, h),
        y1: clip(cy + (cut_h + 1) / 2, h),
        x0: clip(cx - cut_w / 2, w),
        x1: clip(cx + (cut_w + 1) / 2, w),
    }
}

/// timm's `rand_bbox_minmax`: sides uniform in `[⌊side·lo⌋, ⌊side·hi⌋)`, placed uniformly
/// inside the image.
pub fn box_minmax(h: usize, w: usize, lo: f64, hi: f64, rng: &mut Rng) -> CutBox {
    let mut int_in = |a: usize, b: usize| {
        if b > a {
            a + rng.below((b - a) as u64) as usize
        } else {
            a
        }
    };
    let cut_h = int_in((h as f64 * lo) as usize, (h as f64 * hi) as usize).min(h);
    let cut_w = int_in((w as f64 * lo) as usize, (w as f64 * hi) as usize).min(w);
    let y0 = int_in(0, h - cut_h + 1);
    let x0 = int_in(0, w - cut_w + 1);
    CutBox {
        y0,
        y1: y0 + cut_h,
        x0,
        x1: x0 + cut_w,
    }
}

/// `dst ← λ·a + (1 − λ)·b`, element by element.
fn mix_pixels(dst: &mut [f32], a: &[f32], b: &[f32], lam: f64) {
    let (l, r) = (lam as f32, (1.0 - lam) as f32);
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        *d = x * l + y * r;
    }
}

/// Copies `bx` of every channel of `src` into `dst` (both CHW, `h × w` planes).
fn paste_box(dst: &mut [f32], src: &[f32], h: usize, w: usize, bx: CutBox) {
    for (d, s) in dst.chunks_exact_mut(h * w).zip(src.chunks_exact(h * w)) {
        for y in bx.y0..bx.y1 {
            let row = y * w;
            d[row + bx.x0..row + bx.x1].copy_from_slice(&s[row + bx.x0..row + bx.x1]);
        }
    }
}

/// timm's `mixup_target`: smoothed one-hot rows of `labels` and of the reversed batch, mixed by
/// each sample's `λ`; `N × classes`, row-major.
pub fn soft_targets(labels: &[usize], lam: &[f64], classes: usize, smoothing: f64) -> Vec<f32> {
    let n = labels.len();
    let off = smoothing / classes as f64;
    let on = 1.0 - smoothing + off;
    let mut out = vec![0f32; n * classes];
    for i in 0..n {
        let (a, b) = (labels[i], labels[n - 1 - i]);
        for (c, t) in out[i * classes..(i + 1) * classes].iter_mut().enumerate() {
            let ya = if c == a { on } else { off };
            let yb = if c == b { on } else { off };
            *t = (ya * lam[i] + yb * (1.0 - lam[i])) as f32;
        }
    }
    out
}

/// A draw from `Beta(α, α)`, as `X / (X + Y)` of two `Gamma(α)` draws.
pub fn beta(alpha: f64, rng: &mut Rng) -> f64 {
    let x = gamma(alpha, rng);
    let y = gamma(alpha, rng);
    if x + y == 0.0 {
        // Both underflowed (tiny α): the distribution sits at 0 and 1 with equal weight.
        return if rng.next_f64() < 0.5 { 0.0 } else { 1.0 };
    }
    x / (x + y)
}

/// A draw from `Gamma(α, 1)` (Marsaglia and Tsang; for `α < 1` boosted by `U^(1/α)`).
fn gamma(alpha: f64, rng: &mut Rng) -> f64 {
    if alpha < 1.0 {
        let u = 1.0 - rng.next_f64();
        return gamma(alpha + 1.0, rng) * u.powf(1.0 / alpha);
    }
    let d = alpha - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = rng.normal();
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = 1.0 - rng.next_f64();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}
