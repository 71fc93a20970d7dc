//! [`LrScheduler`]: the stateful side of a schedule — the optimizer-step counter and the
//! reduce-on-plateau state — saved and restored as a [`SchedulerState`] record so a resumed
//! run continues with exactly the lrs it would have used.
//!
//! Per-group lrs: every param group gets the schedule evaluated at its own base lr
//! ([`ParamGroup::base_lr`](crate::ParamGroup), PyTorch's `initial_lr`). For the schedules that
//! are a pure multiplier of the base lr (all but `cosine` with an absolute `--min-lr`,
//! `polynomial`'s absolute `lr_end`, and the plateau's `min_lr`) this is `base_lr × factor(step)`,
//! exactly PyTorch's `LambdaLR` over several groups; the absolute floors stay absolute in every
//! group. Before each update the trainer sets the lrs, then advances the counter:
//!
//! ```text
//! scheduler.apply(&mut optimizer);   // group.lr = scheduler.lr(group.base_lr)
//! optimizer.step(&store, &grads)?;
//! scheduler.step();
//! ```
//!
//! The scheduler holds no reference to the optimizer and does not save the base lrs: they
//! belong to the optimizer's groups, which a checkpoint saves with the optimizer.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{PlateauState, ReduceLrOnPlateau, Schedule, ScheduleConfig};
use crate::error::{Error, Result};
use crate::optim::Optimizer;

/// What a checkpoint stores of an [`LrScheduler`]: its config and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerState {
    /// The schedule; a resumed run must use the same one.
    pub config: ScheduleConfig,
    /// Optimizer steps taken (the lr in use is the schedule's at this step).
    pub step: u64,
    /// Present exactly when the config has a plateau.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plateau: Option<PlateauState>,
}

impl SchedulerState {
    /// The state as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::config(format!("cannot serialise the scheduler state: {e}")))
    }

    /// Parses what [`SchedulerState::to_json`] wrote.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json)
            .map_err(|e| Error::config(format!("invalid scheduler state: {e}")))
    }
}

/// A schedule with its step counter and optional reduce-on-plateau.
pub struct LrScheduler {
    config: ScheduleConfig,
    schedule: Box<dyn Schedule>,
    step: u64,
    plateau: Option<ReduceLrOnPlateau>,
}

impl fmt::Debug for LrScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LrScheduler")
            .field("config", &self.config)
            .field("step", &self.step)
            .field("plateau", &self.plateau)
            .finish()
    }
}

impl LrScheduler {
    /// A scheduler at step 0; fails if the config is invalid.
    pub fn new(config: ScheduleConfig) -> Result<Self> {
        let schedule = config.build()?;
        let plateau = config
            .plateau
            .clone()
            .map(ReduceLrOnPlateau::new)
            .transpose()?;
        Ok(Self {
            config,
            schedule,
            step: 0,
            plateau,
        })
    }

    /// Rebuilds a scheduler from a checkpoint's record.
    pub fn from_state(state: SchedulerState) -> Result<Self> {
        let mut s = Self::new(state.config)?;
        s.step = state.step;
        match (&mut s.plateau, state.plateau) {
            (Some(p), Some(ps)) => p.load_state(ps),
            (None, None) => {}
            (Some(_), None) => {
                return Err(Error::config(
                    "scheduler state: the config has a plateau but the state has none",
                ))
            }
            (None, Some(_)) => {
                return Err(Error::config(
                    "scheduler state: plateau state without a plateau in the config",
                ))
            }
        }
        Ok(s)
    }

    /// The state of a checkpoint.
    pub fn state(&self) -> SchedulerState {
        SchedulerState {
            config: self.config.clone(),
            step: self.step,
            plateau: self.plateau.as_ref().map(|p| p.state().clone()),
        }
    }

    /// Resumes from a checkpoint's state, which must have been saved under the same config.
    pub fn load_state(&mut self, state: SchedulerState) -> Result<()> {
        if state.config != self.config {
            return Err(Error::config(format!(
                "the checkpoint's lr schedule ({}) differs from this run's ({}); \
                 resume with the same schedule arguments",
                describe(&state.config),
                describe(&self.config)
            )));
        }
        *self = Self::from_state(state)?;
        Ok(())
    }

    /// The schedule's config.
    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// Optimizer steps taken so far.
    pub fn current_step(&self) -> u64 {
        self.step
    }

    /// The reduce-on-plateau part, when the config has one.
    pub fn plateau(&self) -> Option<&ReduceLrOnPlateau> {
        self.plateau.as_ref()
    }

    /// Checks every group's base lr against the schedule (e.g. `polynomial`'s `lr_end`).
    pub fn check_base_lrs(&self, base_lrs: &[f64]) -> Result<()> {
        for (group, &lr) in base_lrs.iter().enumerate() {
            self.schedule
                .check_base_lr(lr)
                .map_err(|e| Error::config(format!("param group {group}: {e}")))?;
        }
        Ok(())
    }

    /// [`LrScheduler::check_base_lrs`] over an optimizer's groups.
    pub fn check_optimizer<O: Optimizer + ?Sized>(&self, optimizer: &O) -> Result<()> {
        let base: Vec<f64> = optimizer.groups().iter().map(|g| g.base_lr).collect();
        self.check_base_lrs(&base)
    }

    /// The lr at the current step for a group whose base lr is `base_lr`.
    ///
    /// With a plateau, the schedule's lr is scaled by the plateau's reduction of the base lr
    /// (`reduced / base_lr`, PyTorch's per-group reductions and `min_lr` clamp applied to the
    /// base lr): with `constant` this is exactly PyTorch's `ReduceLROnPlateau`.
    pub fn lr(&self, base_lr: f64) -> f64 {
        self.lr_at(self.step, base_lr)
    }

    /// [`LrScheduler::lr`] for every group.
    pub fn lrs(&self, base_lrs: &[f64]) -> Vec<f64> {
        base_lrs.iter().map(|&b| self.lr(b)).collect()
    }

    /// The lr at any step under the current plateau state.
    pub fn lr_at(&self, step: u64, base_lr: f64) -> f64 {
        let scheduled = self.schedule.lr(step, base_lr);
        match &self.plateau {
            None => scheduled,
            Some(p) => {
                let reduced = p.lr(base_lr);
                if reduced == base_lr {
                    scheduled
                } else {
                    scheduled / base_lr * reduced
                }
            }
        }
    }

    /// Sets every group's lr for the next update to [`LrScheduler::lr`] of its base lr.
    pub fn apply<O: Optimizer + ?Sized>(&self, optimizer: &mut O) {
        let lrs: Vec<f64> = optimizer
            .groups()
            .iter()
            .map(|g| self.lr(g.base_lr))
            .collect();
        for (group, lr) in lrs.into_iter().enumerate() {
            optimizer.set_lr(group, lr);
        }
    }

    /// Advances one optimizer step.
    pub fn step(&mut self) {
        self.step = self.step.saturating_add(1);
    }

    /// Feeds an evaluation metric to the plateau; returns whether the lrs were reduced.
    /// Without a plateau in the config the metric is ignored (returns `false`).
    pub fn observe_metric(&mut self, metric: f64) -> bool {
        self.plateau.as_mut().is_some_and(|p| p.observe(metric))
    }
}

fn describe(c: &ScheduleConfig) -> String {
    serde_json::to_string(c).unwrap_or_else(|_| c.name.clone())
}
