//! Optimizers with PyTorch semantics, per-group learning rate and weight decay, and a
//! serialisable state for exact resume.
//!
//! Every optimizer here is an elementwise [`UpdateRule`] run by [`ElementwiseOptimizer`]: on a
//! CPU f32 parameter the update happens in place, in one parallel pass over parameter,
//! gradient and state (no tensor allocated per step); elsewhere (a GPU, another dtype, or
//! `FINETUNE_OPS=generic`) the rule's tensor form runs on the parameter's own device with its
//! state kept there, so no parameter or gradient crosses to the host. Frozen parameters (and parameters without a gradient) are skipped
//! and their state is not created, so a parameter unfrozen later starts at step 1 as in PyTorch.

mod adam;
mod adamw;
mod driver;
mod lion;
mod rmsprop;
mod sgd;
mod state;

pub use adam::Adam;
pub use adamw::AdamW;
pub use driver::{ElementwiseOptimizer, StepHyper, UpdateRule};
pub use lion::Lion;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;
pub use state::{OptimizerState, SlotState};

use crate::error::Result;
use crate::grads::Grads;
use crate::groups::ParamGroup;
use crate::params::ParamStore;
use serde::{Deserialize, Serialize};

/// What the trainer needs of an optimizer.
pub trait Optimizer: Send {
    /// `sgd`, `adam`, `adamw`, `rmsprop` or `lion`.
    fn name(&self) -> &'static str;
    /// The param groups, each with the lr the next step uses.
    fn groups(&self) -> &[ParamGroup];
    /// Sets the lr of group `group` for the next step (what a schedule does).
    fn set_lr(&mut self, group: usize, lr: f64);
    /// One update of every trainable parameter that has a gradient in `grads`.
    fn step(&mut self, store: &ParamStore, grads: &Grads) -> Result<()>;
    /// Everything a resumed run needs: hyper-parameters, groups (lrs included), per-parameter
    /// step counts and state buffers.
    fn state(&self) -> Result<OptimizerState>;
    /// Restores what [`Optimizer::state`] returned. The state must be of the same optimizer
    /// and of groups holding the same parameters (same freezing and group flags); its
    /// hyper-parameters and groups then replace this optimizer's.
    fn load_state(&mut self, state: OptimizerState) -> Result<()>;
}

crate::named_enum! {
    /// The optimizers by name (`--optimizer`, `optimizer = "..."`).
    pub enum OptimizerKind("optimizer") {
        /// `sgd`: [`Sgd`], `torch.optim.SGD`.
        Sgd = "sgd",
        /// `adam`: [`Adam`], `torch.optim.Adam` (coupled weight decay).
        Adam = "adam",
        /// `adamw`: [`AdamW`], `torch.optim.AdamW` (decoupled weight decay).
        AdamW = "adamw",
        /// `rmsprop`: [`RmsProp`], `torch.optim.RMSprop`.
        RmsProp = "rmsprop",
        /// `lion`: [`Lion`] (Chen et al. 2023).
        Lion = "lion",
    }
}

/// An optimizer by name with its hyper-parameters (lr and weight decay live in the groups).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum OptimizerConfig {
    /// `torch.optim.SGD`.
    Sgd(Sgd),
    /// `torch.optim.Adam`.
    Adam(Adam),
    /// `torch.optim.AdamW`.
    #[serde(rename = "adamw")]
    AdamW(AdamW),
    /// `torch.optim.RMSprop`.
    #[serde(rename = "rmsprop")]
    RmsProp(RmsProp),
    /// Lion (Chen et al. 2023).
    Lion(Lion),
}

impl OptimizerConfig {
    /// The optimizer of that name with PyTorch's default hyper-parameters.
    pub fn default_for(name: &str) -> Result<Self> {
        Ok(Self::defaults(name.parse()?))
    }

    /// The optimizer of that kind with PyTorch's default hyper-parameters.
    pub fn defaults(kind: OptimizerKind) -> Self {
        match kind {
            OptimizerKind::Sgd => Self::Sgd(Sgd::default()),
            OptimizerKind::Adam => Self::Adam(Adam::default()),
            OptimizerKind::AdamW => Self::AdamW(AdamW::default()),
            OptimizerKind::RmsProp => Self::RmsProp(RmsProp::default()),
            OptimizerKind::Lion => Self::Lion(Lion::default()),
        }
    }

    /// The optimizer over `groups` (see [`GroupBuilder`](crate::GroupBuilder)), with no state
    /// yet. Fails on hyper-parameters PyTorch's constructor would reject, a group's negative
    /// lr or weight decay, or a parameter in two groups.
    pub fn build(&self, groups: Vec<ParamGroup>) -> Result<Box<dyn Optimizer>> {
        Ok(match self.clone() {
            Self::Sgd(r) => Box::new(ElementwiseOptimizer::new(r, groups)?),
            Self::Adam(r) => Box::new(ElementwiseOptimizer::new(r, groups)?),
            Self::AdamW(r) => Box::new(ElementwiseOptimizer::new(r, groups)?),
            Self::RmsProp(r) => Box::new(ElementwiseOptimizer::new(r, groups)?),
            Self::Lion(r) => Box::new(ElementwiseOptimizer::new(r, groups)?),
        })
    }

    /// [`Self::build`], updating every parameter with tensor ops on its own device (the path
    /// a GPU takes) even on the CPU: for the device-generic checks.
    pub fn build_device_path(&self, groups: Vec<ParamGroup>) -> Result<Box<dyn Optimizer>> {
        fn on<R: UpdateRule>(r: R, g: Vec<ParamGroup>) -> Result<Box<dyn Optimizer>> {
            let mut o = ElementwiseOptimizer::new(r, g)?;
            o.set_device_path(true);
            Ok(Box::new(o))
        }
        match self.clone() {
            Self::Sgd(r) => on(r, groups),
            Self::Adam(r) => on(r, groups),
            Self::AdamW(r) => on(r, groups),
            Self::RmsProp(r) => on(r, groups),
            Self::Lion(r) => on(r, groups),
        }
    }
}
