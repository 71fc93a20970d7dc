//! [`ScheduleConfig`]: a schedule by name with all its arguments, as a run's config and
//! checkpoints store it, validated with errors that name the offending argument (its config key).

use serde::{Deserialize, Serialize};

use super::cosine::CosineFloor;
use super::{
    Anneal, Constant, Cosine, CosineWithHardRestarts, ExponentialLr, InverseSqrt, Linear,
    MultiStepLr, OneCycleLr, PlateauConfig, PolynomialDecay, Schedule, StepLr,
};
use crate::error::{Error, Result};

crate::named_enum! {
    /// The schedules by name (`--schedule`, `schedule = "..."`).
    pub enum ScheduleKind("schedule") {
        /// [`Constant`]: the base lr after the warm-up.
        Constant = "constant",
        /// [`Linear`]: linear decay to 0 at the last step.
        Linear = "linear",
        /// [`Cosine`]: cosine decay, optionally to a floor.
        Cosine = "cosine",
        /// [`CosineWithHardRestarts`]: cosine decays restarting at the base lr.
        CosineRestarts = "cosine-restarts",
        /// [`PolynomialDecay`]: polynomial decay to `lr_end`.
        Polynomial = "polynomial",
        /// [`InverseSqrt`]: inverse-square-root decay.
        InverseSqrt = "inverse-sqrt",
        /// [`StepLr`]: times `gamma` every `step_size` steps.
        Step = "step",
        /// [`MultiStepLr`]: times `gamma` at each milestone.
        MultiStep = "multistep",
        /// [`ExponentialLr`]: times `gamma` every step.
        Exponential = "exponential",
        /// [`OneCycleLr`]: up to the base lr and down again.
        OneCycle = "one-cycle",
    }
}

/// A schedule by name, its arguments (`None`: the reference default, or required), the run
/// length and the warm-up. Optionally [`ReduceLROnPlateau`](super::ReduceLrOnPlateau) on top.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    /// One of [`ScheduleKind`]'s names.
    pub name: String,
    /// Optimizer steps in the run.
    pub total_steps: u64,
    /// Linear warm-up steps (not for `one-cycle`); see [`super::warmup_from_ratio`].
    #[serde(default)]
    pub warmup_steps: u64,
    /// `cosine`: absolute floor of the lr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_lr: Option<f64>,
    /// `cosine`: floor as a fraction of each group's lr (transformers' `min_lr_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_lr_rate: Option<f64>,
    /// `cosine` (default 0.5) and `cosine-restarts` (default 1, a whole number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_cycles: Option<f64>,
    /// `polynomial` (default 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<f64>,
    /// `polynomial` (default 1e-7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_end: Option<f64>,
    /// `inverse-sqrt` (default: the warm-up steps, or 10 000 without warm-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timescale: Option<u64>,
    /// `step` (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_size: Option<u64>,
    /// `step`, `multistep` (default 0.1) and `exponential` (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
    /// `multistep` (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milestones: Option<Vec<u64>>,
    /// `one-cycle` (default 0.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pct_start: Option<f64>,
    /// `one-cycle` (default 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub div_factor: Option<f64>,
    /// `one-cycle` (default 1e4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_div_factor: Option<f64>,
    /// `one-cycle` (default cos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anneal: Option<Anneal>,
    /// `one-cycle`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub three_phase: bool,
    /// Reduce-on-plateau on top of the schedule (see [`super::LrScheduler::lr`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plateau: Option<PlateauConfig>,
}

impl ScheduleConfig {
    /// A config with every argument at its default and no warm-up.
    pub fn new(name: impl Into<String>, total_steps: u64) -> Self {
        Self {
            name: name.into(),
            total_steps,
            warmup_steps: 0,
            min_lr: None,
            min_lr_rate: None,
            num_cycles: None,
            power: None,
            lr_end: None,
            timescale: None,
            step_size: None,
            gamma: None,
            milestones: None,
            pct_start: None,
            div_factor: None,
            final_div_factor: None,
            anneal: None,
            three_phase: false,
            plateau: None,
        }
    }

    /// The schedule's kind, or an error listing the valid names.
    pub fn kind(&self) -> Result<ScheduleKind> {
        self.name.parse()
    }

    /// Checks everything that does not depend on the base lr.
    pub fn validate(&self) -> Result<()> {
        self.build().map(|_| ())
    }

    /// Checks the config and that it suits a param group with this base lr (`polynomial` needs
    /// `lr_end < lr`, `cosine` `min_lr <= lr`).
    pub fn check_base_lr(&self, base_lr: f64) -> Result<()> {
        self.build()?.check_base_lr(base_lr)
    }

    /// The lr at every step `0..total_steps` for a group with this base lr.
    pub fn curve(&self, base_lr: f64) -> Result<Vec<f64>> {
        let schedule = self.build()?;
        schedule.check_base_lr(base_lr)?;
        Ok((0..self.total_steps)
            .map(|step| schedule.lr(step, base_lr))
            .collect())
    }

    /// Validates and builds the schedule.
    pub fn build(&self) -> Result<Box<dyn Schedule>> {
        let kind = self.kind()?;
        self.check_structure(kind)?;
        if let Some(p) = &self.plateau {
            p.validate()?;
        }
        let (w, total) = (self.warmup_steps, self.total_steps);
        let gamma = self.gamma.unwrap_or(StepLr::DEFAULT_GAMMA);
        Ok(match kind {
            ScheduleKind::Constant => Box::new(Constant::new(w)),
            ScheduleKind::Linear => Box::new(Linear::new(w, total)?),
            ScheduleKind::Cosine => {
                let floor = match (self.min_lr, self.min_lr_rate) {
                    (Some(m), _) => CosineFloor::MinLr(m),
                    (None, Some(r)) => CosineFloor::Rate(r),
                    (None, None) => CosineFloor::Zero,
                };
                let cycles = self.num_cycles.unwrap_or(Cosine::DEFAULT_NUM_CYCLES);
                Box::new(Cosine::new(w, total, cycles, floor)?)
            }
            ScheduleKind::CosineRestarts => {
                let cycles = match self.num_cycles {
                    None => CosineWithHardRestarts::DEFAULT_NUM_CYCLES,
                    Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => n as u64,
                    Some(n) => {
                        return Err(Error::config(format!(
                            "`num_cycles` for cosine-restarts must be a whole number >= 1, got {n}"
                        )))
                    }
                };
                Box::new(CosineWithHardRestarts::new(w, total, cycles)?)
            }
            ScheduleKind::Polynomial => Box::new(PolynomialDecay::new(
                w,
                total,
                self.lr_end.unwrap_or(PolynomialDecay::DEFAULT_LR_END),
                self.power.unwrap_or(PolynomialDecay::DEFAULT_POWER),
            )?),
            ScheduleKind::InverseSqrt => Box::new(InverseSqrt::new(w, self.timescale)?),
            ScheduleKind::Step => Box::new(StepLr::new(w, self.required_step_size()?, gamma)?),
            ScheduleKind::MultiStep => {
                let milestones = self.milestones.as_deref().ok_or_else(|| {
                    Error::config("multistep needs `milestones` (comma-separated steps)")
                })?;
                Box::new(MultiStepLr::new(w, milestones, gamma)?)
            }
            ScheduleKind::Exponential => {
                let gamma = self.gamma.ok_or_else(|| {
                    Error::config("exponential needs `gamma` (the per-step lr multiplier)")
                })?;
                Box::new(ExponentialLr::new(w, gamma)?)
            }
            ScheduleKind::OneCycle => Box::new(OneCycleLr::new(
                total,
                self.pct_start.unwrap_or(OneCycleLr::DEFAULT_PCT_START),
                self.div_factor.unwrap_or(OneCycleLr::DEFAULT_DIV_FACTOR),
                self.final_div_factor
                    .unwrap_or(OneCycleLr::DEFAULT_FINAL_DIV_FACTOR),
                self.anneal.unwrap_or_default(),
                self.three_phase,
            )?),
        })
    }

    fn required_step_size(&self) -> Result<u64> {
        self.step_size
            .ok_or_else(|| Error::config("step needs `step_size` (steps between lr decays)"))
    }

    /// Run length, warm-up, and arguments that do not belong to the schedule.
    fn check_structure(&self, kind: ScheduleKind) -> Result<()> {
        if self.total_steps == 0 {
            return Err(Error::config(
                "a schedule needs at least 1 step (`total_steps`)",
            ));
        }
        if kind == ScheduleKind::OneCycle && self.warmup_steps > 0 {
            return Err(Error::config(
                "one-cycle has its own warm-up phase: use `pct_start`",
            ));
        }
        if self.warmup_steps > self.total_steps {
            return Err(Error::config(format!(
                "`warmup_steps` ({}) is larger than the run's {} steps",
                self.warmup_steps, self.total_steps
            )));
        }
        for (flag, given, owners) in self.arguments() {
            if given && !owners.contains(&kind) {
                let owners: Vec<&str> = owners.iter().map(|k| k.as_str()).collect();
                return Err(Error::config(format!(
                    "{kind} takes no {flag} (it is an argument of {})",
                    owners.join(", ")
                )));
            }
        }
        if self.min_lr.is_some() && self.min_lr_rate.is_some() {
            return Err(Error::config(
                "`min_lr` and `min_lr_rate` both set the cosine floor: give one",
            ));
        }
        Ok(())
    }

    /// Each optional argument: its flag, whether it is set, and the schedules it belongs to.
    fn arguments(&self) -> [(&'static str, bool, &'static [ScheduleKind]); 14] {
        use ScheduleKind as K;
        [
            ("`min_lr`", self.min_lr.is_some(), &[K::Cosine]),
            ("`min_lr_rate`", self.min_lr_rate.is_some(), &[K::Cosine]),
            (
                "`num_cycles`",
                self.num_cycles.is_some(),
                &[K::Cosine, K::CosineRestarts],
            ),
            ("`power`", self.power.is_some(), &[K::Polynomial]),
            ("`lr_end`", self.lr_end.is_some(), &[K::Polynomial]),
            ("`timescale`", self.timescale.is_some(), &[K::InverseSqrt]),
            ("`step_size`", self.step_size.is_some(), &[K::Step]),
            (
                "`gamma`",
                self.gamma.is_some(),
                &[K::Step, K::MultiStep, K::Exponential],
            ),
            ("`milestones`", self.milestones.is_some(), &[K::MultiStep]),
            ("`pct_start`", self.pct_start.is_some(), &[K::OneCycle]),
            ("`div_factor`", self.div_factor.is_some(), &[K::OneCycle]),
            (
                "`final_div_factor`",
                self.final_div_factor.is_some(),
                &[K::OneCycle],
            ),
            ("`anneal`", self.anneal.is_some(), &[K::OneCycle]),
            ("`three_phase`", self.three_phase, &[K::OneCycle]),
        ]
    }
}
