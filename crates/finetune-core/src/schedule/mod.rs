//! Learning-rate schedules: the lr each param group uses at each optimizer step.
//!
//! A [`Schedule`] is a pure function of `(optimizer step, base lr)`: every param group keeps its
//! own base (peak) lr and gets its own curve, exactly as PyTorch's `LambdaLR` multiplies each
//! group's `initial_lr` by the same factor. The formulas reproduce transformers' and PyTorch's:
//!
//! | name | reference | file |
//! |---|---|---|
//! | `constant` | transformers `get_constant_schedule_with_warmup` | [`constant`] |
//! | `linear` | transformers `get_linear_schedule_with_warmup` | [`linear`] |
//! | `cosine` | transformers `get_cosine_schedule_with_warmup` (+ `get_cosine_with_min_lr_schedule_with_warmup`) | [`cosine`] |
//! | `cosine-restarts` | transformers `get_cosine_with_hard_restarts_schedule_with_warmup` | [`cosine_restarts`] |
//! | `polynomial` | transformers `get_polynomial_decay_schedule_with_warmup` | [`polynomial`] |
//! | `inverse-sqrt` | transformers `get_inverse_sqrt_schedule` | [`inverse_sqrt`] |
//! | `step` | PyTorch `StepLR` (after an optional linear warm-up) | [`step`] |
//! | `multistep` | PyTorch `MultiStepLR` (after an optional linear warm-up) | [`multistep`] |
//! | `exponential` | PyTorch `ExponentialLR` (after an optional linear warm-up) | [`exponential`] |
//! | `one-cycle` | PyTorch `OneCycleLR` (lr only) | [`one_cycle`] |
//!
//! [`ReduceLrOnPlateau`] (PyTorch `ReduceLROnPlateau`) is driven by metrics rather than steps;
//! [`LrScheduler`] ties a [`ScheduleConfig`], the step counter and the optional plateau state
//! together into one checkpointable object ([`SchedulerState`], serde), and holds no reference
//! to the optimizer: [`LrScheduler::apply`] sets each group's lr from its `base_lr`.
//!
//! Choices where the references leave room:
//! - warm-up is transformers': linear from 0, `lr * step / warmup_steps`; for the PyTorch-style
//!   decays (`step`, `multistep`, `exponential`) the decay clock starts at the end of warm-up
//!   (milestones count from there); `one-cycle` refuses a warm-up (its first phase is one);
//! - a floor or end lr given as an absolute value (`cosine`'s `min_lr`, `polynomial`'s `lr_end`,
//!   the plateau's `min_lr`) is the same absolute value in every group; everything else is the
//!   group's base lr times the schedule's factor;
//! - `--min-lr` belongs to `cosine` only (transformers' `get_cosine_with_min_lr_schedule_with_warmup`);
//!   an argument given to a schedule that does not take it is an error, not ignored.

pub mod config;
pub mod constant;
pub mod cosine;
pub mod cosine_restarts;
pub mod exponential;
pub mod inverse_sqrt;
pub mod linear;
pub mod multistep;
pub mod one_cycle;
pub mod plateau;
pub mod polynomial;
pub mod scheduler;
pub mod step;
pub mod warmup;

mod float_serde;

pub use config::{ScheduleConfig, ScheduleKind};
pub use constant::Constant;
pub use cosine::{Cosine, CosineFloor};
pub use cosine_restarts::CosineWithHardRestarts;
pub use exponential::ExponentialLr;
pub use inverse_sqrt::InverseSqrt;
pub use linear::Linear;
pub use multistep::MultiStepLr;
pub use one_cycle::{Anneal, OneCycleLr};
pub use plateau::{PlateauConfig, PlateauMode, PlateauState, ReduceLrOnPlateau, ThresholdMode};
pub use polynomial::PolynomialDecay;
pub use scheduler::{LrScheduler, SchedulerState};
pub use step::StepLr;
pub use warmup::{warmup_factor, warmup_from_ratio};

use crate::error::Result;

/// A learning-rate curve: the lr at optimizer step `step` (0-based: step 0 is the lr of the
/// first update) for a param group whose base (peak) lr is `base_lr`.
pub trait Schedule: Send + Sync {
    /// The lr at `step`. Never fails: the arguments were checked when the schedule was built,
    /// and the base lr is checked by [`Schedule::check_base_lr`].
    fn lr(&self, step: u64, base_lr: f64) -> f64;

    /// Checks that the schedule makes sense for a group with this base lr (e.g. `polynomial`
    /// needs `lr_end < base_lr`). [`Schedule::lr`] itself never fails.
    fn check_base_lr(&self, base_lr: f64) -> Result<()> {
        check_positive_lr(base_lr)
    }
}

/// A base lr must be a finite positive number.
pub(crate) fn check_positive_lr(base_lr: f64) -> Result<()> {
    if base_lr.is_finite() && base_lr > 0.0 {
        Ok(())
    } else {
        Err(crate::Error::config(format!(
            "the learning rate must be a finite number > 0, got {base_lr}"
        )))
    }
}
