//! Which parameters train in each epoch: the freeze rules of the settings (with `--freeze-bn`
//! keeping the frozen layers' batch statistics fixed), changed from epoch to epoch by gradual
//! unfreezing. A function of the epoch alone, so a resumed run gets the same mask.

use super::run::Run;
use super::Learner;
use crate::{TrainConfig, UnfreezeSchedule};
use finetune_core::{FreezeSpec, ParamLayout, ParamStore, Result, TrainModel};

/// The initial freeze rules and the gradual-unfreezing schedule of `config` over a model with
/// these parameter `names`. `--unfreeze-every` starts ULMFiT-style: every parameter with a
/// depth frozen, then the user's patterns.
pub(super) fn rules(
    config: &TrainConfig,
    layout: &ParamLayout,
    store: &ParamStore,
) -> Result<(FreezeSpec, Option<UnfreezeSchedule>)> {
    let names = &store.names();
    let mut freeze: Vec<String> = match (&config.unfreeze_schedule, config.unfreeze_every) {
        (None, Some(_)) => names
            .iter()
            .filter(|n| (layout.depth)(n).is_some())
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    // A user's pattern may use the family's other naming (see `ParamLayout::alias`).
    let expand = |p: &str| layout.patterns_for(p, names);
    let expand_all = |ps: &[String]| -> Result<Vec<String>> {
        let mut out = Vec::new();
        for p in ps {
            out.extend(expand(p)?);
        }
        Ok(out)
    };
    freeze.extend(expand_all(&config.freeze)?);
    let user = FreezeSpec::from_patterns(&freeze, &expand_all(&config.unfreeze)?)?;
    user.check_patterns_match(names)?;
    // A LoRA run trains its adapters and the head; the user's rules apply on top.
    let base = match finetune_core::lora::train_rules(store)? {
        Some(lora) => lora.then(&user),
        None => user,
    };
    let unfreeze = match (&config.unfreeze_schedule, config.unfreeze_every) {
        (Some(s), _) => Some(UnfreezeSchedule::parse(s)?.expand(expand)?),
        (None, Some(k)) => Some(UnfreezeSchedule::by_layer(k, names, layout.depth.as_ref())?),
        (None, None) => None,
    };
    if let Some(u) = &unfreeze {
        u.check_patterns_match(names)?;
    }
    Ok((base, unfreeze))
}

impl<M: TrainModel + ?Sized> Learner<'_, M> {
    /// Applies the freeze rules in force during `epoch`; returns the trainable count.
    pub fn apply_mask(&self, epoch: u64) -> Result<usize> {
        let spec = match &self.unfreeze {
            Some(u) => u.spec_at(&self.base_freeze, epoch)?,
            None => self.base_freeze.clone(),
        };
        let store = self.model.store();
        let n = spec.apply_fresh(store)?;
        // A LoRA run leaves the base model as it is, batch statistics included: its adapter
        // then reproduces the merged model on the base.
        if self.config.freeze_bn || store.lora().is_some() {
            let frozen = |name: &str| !store.is_trainable(name).unwrap_or(true);
            self.model.set_batch_norm_frozen(&frozen)?;
        }
        Ok(n)
    }

    /// At the first step of each epoch, the epoch's mask (said when gradual unfreezing
    /// changes it).
    pub(super) fn enter_epoch(&self, run: &mut Run, epoch: u64) -> Result<()> {
        if run.mask_epoch == Some(epoch) {
            return Ok(());
        }
        let trainable = self.apply_mask(epoch)?;
        if run.mask_epoch.is_some() && self.unfreeze.as_ref().is_some_and(|u| u.changes_at(epoch)) {
            run.progress.say(format!(
                "epoch {epoch}: gradual unfreezing, {trainable} trainable tensors"
            ));
        }
        run.mask_epoch = Some(epoch);
        Ok(())
    }
}
