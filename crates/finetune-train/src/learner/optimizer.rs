//! The optimizer and LR schedule of a run: param groups from the settings and the model's
//! layout (the head's own lr, layer-wise decay by depth), the optimizer's hyper-parameters
//! from the settings over PyTorch's defaults.

use crate::TrainConfig;
use finetune_core::groups::{GroupSpec, LrSpec};
use finetune_core::optim::{Optimizer, OptimizerConfig};
use finetune_core::schedule::LrScheduler;
use finetune_core::{GroupBuilder, ParamLayout, ParamStore, Result};

/// The optimizer over every parameter of `store` (frozen ones too, so unfreezing needs no
/// regrouping).
pub(super) fn build(
    c: &TrainConfig,
    layout: &ParamLayout,
    store: &ParamStore,
) -> Result<Box<dyn Optimizer>> {
    let mut builder = GroupBuilder::new(c.lr, c.weight_decay);
    if let Some(head_lr) = c.head_lr {
        builder = builder.spec(GroupSpec::new("head", &layout.head)?.lr(LrSpec::Absolute(head_lr)));
    }
    if let Some(decay) = c.layer_lr_decay {
        let layers = layout.layers(&store.names());
        builder = builder.layer_decay(decay, layers, layout.depth.clone());
    }
    let groups = builder.build(store)?;
    let betas = c.betas.as_deref().map(|b| (b[0], b[1]));
    let mut oc = OptimizerConfig::defaults(c.optimizer);
    match &mut oc {
        OptimizerConfig::Sgd(s) => {
            s.momentum = c.momentum.unwrap_or(s.momentum);
            s.nesterov = c.nesterov;
        }
        OptimizerConfig::Adam(a) | OptimizerConfig::AdamW(finetune_core::optim::AdamW(a)) => {
            a.betas = betas.unwrap_or(a.betas);
            a.eps = c.eps.unwrap_or(a.eps);
        }
        OptimizerConfig::RmsProp(r) => {
            r.momentum = c.momentum.unwrap_or(r.momentum);
            r.eps = c.eps.unwrap_or(r.eps);
        }
        OptimizerConfig::Lion(l) => l.betas = betas.unwrap_or(l.betas),
    }
    oc.build(groups)
}

/// The schedule of a run of `total_steps` steps, checked against the optimizer's groups.
pub(super) fn scheduler(
    c: &TrainConfig,
    total_steps: u64,
    optimizer: &dyn Optimizer,
) -> Result<LrScheduler> {
    let scheduler = LrScheduler::new(c.schedule_config(total_steps)?)?;
    scheduler.check_optimizer(optimizer)?;
    Ok(scheduler)
}
