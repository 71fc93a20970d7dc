//! timm's training recipes for images, under timm's flag names: mixup and cutmix over each
//! training batch (`--mixup`, `--cutmix`, `--cutmix-minmax`, `--mixup-prob`,
//! `--mixup-switch-prob`, `--mixup-mode`, `--mixup-off-epoch`; the targets smoothed by `--label-smoothing`, alias
//! `--smoothing`) and random erasing of each training image after normalisation (`--reprob`,
//! `--remode`, `--recount`) and RandAugment (`--aa`). All off by default. The numerics live in `finetune-data`
//! ([`Mixup`], [`RandomErasing`]); this file holds their settings and hands them to the
//! batch source.

use crate::settings::IMAGE_HEADING;
use anyhow::{bail, Result};
use finetune_data::image::mixup::{MixMode, Mixup};
use finetune_data::transforms::{EraseMode, RandAugment, RandomErasing};
use serde::{Deserialize, Serialize};

/// The recipe settings (timm's names and defaults; see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct ImageRecipes {
    /// Mixup α (timm's --mixup): each training batch blended with itself reversed,
    /// λ ~ Beta(α, α), targets mixed alike (0: off).
    #[arg(long, default_value_t = 0.0, help_heading = IMAGE_HEADING)]
    pub mixup: f64,
    /// CutMix α: a box of the reversed batch pasted in, λ the uncovered share (0: off).
    #[arg(long, default_value_t = 0.0, help_heading = IMAGE_HEADING)]
    pub cutmix: f64,
    /// CutMix box sides as fractions of the image's, `LO,HI` (turns cutmix on, α 1).
    #[arg(long, value_delimiter = ',', num_args = 1..=2, help_heading = IMAGE_HEADING)]
    pub cutmix_minmax: Option<Vec<f64>>,
    /// Probability that a batch (pair, sample) is mixed when mixup or cutmix is on.
    #[arg(long, default_value_t = 1.0, help_heading = IMAGE_HEADING)]
    pub mixup_prob: f64,
    /// Probability of cutmix rather than mixup when both are on.
    #[arg(long, default_value_t = 0.5, help_heading = IMAGE_HEADING)]
    pub mixup_switch_prob: f64,
    /// Stop mixing from this epoch on (counted from 0, as timm's --mixup-off-epoch; 0: never):
    /// later batches train on the smoothed labels alone.
    #[arg(long, default_value_t = 0, help_heading = IMAGE_HEADING)]
    pub mixup_off_epoch: u64,
    /// `batch` (one λ per batch), `pair` (per pair of samples) or `elem` (per sample).
    #[arg(long, default_value_t = MixMode::Batch, help_heading = IMAGE_HEADING)]
    pub mixup_mode: MixMode,
    /// Random erasing probability per training image (timm's --reprob; 0: off).
    #[arg(long, default_value_t = 0.0, help_heading = IMAGE_HEADING)]
    pub reprob: f64,
    /// What fills an erased box: `pixel` (normal noise per pixel), `rand` (per channel) or
    /// `const` (0, the normalised mean).
    #[arg(long, default_value_t = EraseMode::Pixel, help_heading = IMAGE_HEADING)]
    pub remode: EraseMode,
    /// Most erased boxes per image (each image gets 1 to N).
    #[arg(long, default_value_t = 1, help_heading = IMAGE_HEADING)]
    pub recount: usize,
    /// RandAugment policy in timm's form, e.g. `rand-m9-mstd0.5-inc1` (timm's operations;
    /// the geometric ones sample bilinearly).
    #[arg(long, help_heading = IMAGE_HEADING)]
    pub aa: Option<String>,
}

impl Default for ImageRecipes {
    /// The flags' defaults: every recipe off.
    fn default() -> Self {
        finetune_train::settings::defaults()
    }
}

impl ImageRecipes {
    /// Checks the values on their own; each error names its flag.
    pub fn validate(&self) -> Result<()> {
        for (flag, alpha) in [("--mixup", self.mixup), ("--cutmix", self.cutmix)] {
            if !(alpha >= 0.0 && alpha.is_finite()) {
                bail!("{flag} must be >= 0, got {alpha}");
            }
        }
        for (flag, p) in [
            ("--mixup-prob", self.mixup_prob),
            ("--mixup-switch-prob", self.mixup_switch_prob),
            ("--reprob", self.reprob),
        ] {
            if !(0.0..=1.0).contains(&p) {
                bail!("{flag} must be in [0, 1], got {p}");
            }
        }
        if let Some(mm) = &self.cutmix_minmax {
            let ok = matches!(mm.as_slice(), [lo, hi] if 0.0 <= *lo && lo < hi && *hi <= 1.0);
            if !ok {
                bail!("--cutmix-minmax takes LO,HI with 0 <= LO < HI <= 1, got {mm:?}");
            }
        }
        if self.mixup_off_epoch > 0 && !self.mixes() {
            bail!("--mixup-off-epoch needs --mixup, --cutmix or --cutmix-minmax");
        }
        if self.recount == 0 {
            bail!("--recount must be at least 1");
        }
        self.rand_augment()?;
        Ok(())
    }

    /// The RandAugment of `--aa`, when given.
    pub fn rand_augment(&self) -> Result<Option<RandAugment>> {
        Ok(match &self.aa {
            Some(policy) => Some(policy.parse()?),
            None => None,
        })
    }

    /// Refuses mixup and cutmix for a multi-label run: they blend single-label targets into
    /// class distributions (timm's `Mixup`), which BCE over label sets cannot take.
    pub fn check_multi_label(&self) -> Result<()> {
        if self.mixes() {
            bail!(
                "--mixup / --cutmix mix single-label targets; a multi_label_classification \
                 image run cannot use them"
            );
        }
        Ok(())
    }

    /// Whether mixup or cutmix is on (timm's `mixup_active`).
    pub fn mixes(&self) -> bool {
        self.mixup > 0.0 || self.cutmix > 0.0 || self.cutmix_minmax.is_some()
    }

    /// The batch mixing, when on, for `classes` classes and label smoothing `smoothing`.
    pub fn mixup(&self, classes: usize, smoothing: f64) -> Option<Mixup> {
        let minmax = self.cutmix_minmax.as_ref().map(|v| (v[0], v[1]));
        self.mixes().then(|| Mixup {
            mixup_alpha: self.mixup,
            // timm forces cutmix's α to 1 under --cutmix-minmax.
            cutmix_alpha: if minmax.is_some() { 1.0 } else { self.cutmix },
            cutmix_minmax: minmax,
            prob: self.mixup_prob,
            switch_prob: self.mixup_switch_prob,
            mode: self.mixup_mode,
            correct_lam: true,
            smoothing,
            num_classes: classes,
            off_epoch: (self.mixup_off_epoch > 0).then_some(self.mixup_off_epoch),
        })
    }

    /// The random erasing, when on.
    pub fn erasing(&self) -> Result<Option<RandomErasing>> {
        if self.reprob == 0.0 {
            return Ok(None);
        }
        Ok(Some(RandomErasing::new(
            self.reprob,
            self.remode,
            self.recount,
        )?))
    }
}
