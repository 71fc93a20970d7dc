//! The LR schedules' own arguments, one schema for `finetune train` (flags and settings-file
//! keys) and `finetune lr-schedule`: each goes into the [`ScheduleConfig`], which checks that
//! the chosen schedule takes it.

use finetune_core::schedule::{Anneal, ScheduleConfig};
use finetune_core::Result;
use serde::{Deserialize, Serialize};

/// The arguments of the schedules beyond warm-up (PyTorch's and transformers' names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct ScheduleArgs {
    /// cosine: absolute floor of the lr.
    #[arg(long, allow_negative_numbers = true)]
    pub min_lr: Option<f64>,
    /// cosine: floor as a fraction of the base lr (instead of --min-lr).
    #[arg(long, allow_negative_numbers = true)]
    pub min_lr_rate: Option<f64>,
    /// cosine (default 0.5: a half-wave to 0) and cosine-restarts (default 1, whole number).
    #[arg(long, allow_negative_numbers = true)]
    pub num_cycles: Option<f64>,
    /// polynomial: the exponent (default 1).
    #[arg(long, allow_negative_numbers = true)]
    pub power: Option<f64>,
    /// polynomial: the final lr (default 1e-7), below the base lr.
    #[arg(long, allow_negative_numbers = true)]
    pub lr_end: Option<f64>,
    /// inverse-sqrt: the timescale (default: the warm-up steps, or 10000 without warm-up).
    #[arg(long)]
    pub timescale: Option<u64>,
    /// step: decay every this many steps (required).
    #[arg(long)]
    pub step_size: Option<u64>,
    /// step, multistep (default 0.1), exponential (required): the decay multiplier.
    #[arg(long, allow_negative_numbers = true)]
    pub gamma: Option<f64>,
    /// multistep: the steps at which the lr decays, comma-separated (counted from the end of
    /// warm-up).
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub milestones: Option<Vec<u64>>,
    /// one-cycle: fraction of the run spent increasing the lr (default 0.3).
    #[arg(long, allow_negative_numbers = true)]
    pub pct_start: Option<f64>,
    /// one-cycle: initial lr = base lr / div-factor (default 25).
    #[arg(long, allow_negative_numbers = true)]
    pub div_factor: Option<f64>,
    /// one-cycle: final lr = initial lr / final-div-factor (default 1e4).
    #[arg(long, allow_negative_numbers = true)]
    pub final_div_factor: Option<f64>,
    /// one-cycle: go back down to the initial lr before annealing to the final one.
    #[arg(long)]
    pub three_phase: bool,
    /// one-cycle: `cos` (default) or `linear` annealing.
    #[arg(long, value_name = "cos|linear")]
    pub anneal: Option<String>,
}

impl ScheduleArgs {
    /// Writes every argument given into `c` (a malformed `anneal` is an error).
    pub fn apply(&self, c: &mut ScheduleConfig) -> Result<()> {
        c.min_lr = self.min_lr;
        c.min_lr_rate = self.min_lr_rate;
        c.num_cycles = self.num_cycles;
        c.power = self.power;
        c.lr_end = self.lr_end;
        c.timescale = self.timescale;
        c.step_size = self.step_size;
        c.gamma = self.gamma;
        c.milestones = self.milestones.clone();
        c.pct_start = self.pct_start;
        c.div_factor = self.div_factor;
        c.final_div_factor = self.final_div_factor;
        c.three_phase = self.three_phase;
        c.anneal = self
            .anneal
            .as_deref()
            .map(str::parse::<Anneal>)
            .transpose()?;
        Ok(())
    }
}
