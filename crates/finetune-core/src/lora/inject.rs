//! Putting adapters into a store: their tensors (A kaiming-uniform, B zero), the training
//! mask of a LoRA run, what its checkpoints hold, and PEFT's parameter counts.

use super::{a_name, b_name, Adapter, LoraSettings};
use crate::error::{Error, Result};
use crate::freeze::FreezeSpec;
use crate::nn::init;
use crate::params::{ParamCounts, ParamStore, TensorKind};
use crate::Rng;

/// Adds an adapter to each of `settings.modules` (registered layers of `store`): `lora_A`
/// drawn kaiming-uniform with a = √5 (U(±1/√fan_in), `nn.Linear`'s default, as PEFT), `lora_B`
/// zero, in the layer weight's dtype and device. Records `settings` in the store.
pub fn add_adapters(store: &ParamStore, settings: LoraSettings, rng: &mut Rng) -> Result<()> {
    settings.config.validate()?;
    let registered = store.modules();
    let (r, scale) = (settings.config.r, settings.config.scale());
    for m in &settings.modules {
        let kind = registered
            .iter()
            .find(|(n, _)| n == m)
            .map(|(_, k)| *k)
            .ok_or_else(|| Error::config(format!("the model has no layer `{m}` to adapt")))?;
        let w = store.get(&format!("{m}.weight"))?;
        let (a_shape, b_shape) = kind.adapter_shapes(r);
        let bound = 1.0 / (kind.fan_in() as f64).sqrt();
        let a = init::uniform(&a_shape, -bound, bound, rng, w.dtype(), w.device())?;
        let b = candle_core::Tensor::zeros(b_shape.as_slice(), w.dtype(), w.device())?;
        let adapter = Adapter {
            a: store.insert(&a_name(m), &a, TensorKind::Parameter)?,
            b: store.insert(&b_name(m), &b, TensorKind::Parameter)?,
            scale,
            dropout: settings.config.dropout,
            kind,
        };
        store.set_adapter(m, adapter);
    }
    store.set_lora(settings);
    Ok(())
}

/// The first freeze rules of a LoRA run (the user's come after them): everything frozen but
/// the adapters and the head, which trains whole (PEFT's `modules_to_save`). `None` when the
/// store carries no adapter.
pub fn train_rules(store: &ParamStore) -> Result<Option<FreezeSpec>> {
    let Some(lora) = store.lora() else {
        return Ok(None);
    };
    let mut spec = FreezeSpec::new()
        .freeze("*")?
        .unfreeze("*.lora_A.weight")?
        .unfreeze("*.lora_B.weight")?;
    for m in &lora.modules_to_save {
        spec = spec.unfreeze(&format!("{m}.*"))?;
    }
    Ok(Some(spec))
}

/// The tensors a checkpoint must hold to resume: everything, or with adapters only what the
/// run changes — the adapters, the head and any parameter trainable now — so a LoRA
/// checkpoint stays small (the rest is the base model, loaded again).
pub fn checkpoint_names(store: &ParamStore) -> Vec<String> {
    let Some(lora) = store.lora() else {
        return store.names();
    };
    store
        .infos()
        .into_iter()
        .filter(|i| super::is_adapter_tensor(&i.name) || i.trainable || in_head(&lora, &i.name))
        .map(|i| i.name)
        .collect()
}

/// Trainable and total parameter counts as PEFT's `print_trainable_parameters` gives them: with
/// adapters, the head is counted twice in the total (PEFT keeps the original module beside
/// the trained copy).
pub fn counts(store: &ParamStore) -> ParamCounts {
    let mut c = store.counts();
    if let Some(lora) = store.lora() {
        for i in store.infos() {
            if in_head(&lora, &i.name) && i.kind == TensorKind::Parameter {
                c.total += i.numel;
            }
        }
    }
    c
}

/// Whether a tensor belongs to one of the head's modules (`modules_to_save`).
pub(super) fn in_head(lora: &LoraSettings, name: &str) -> bool {
    lora.modules_to_save.iter().any(|m| {
        name.strip_prefix(m.as_str())
            .is_some_and(|r| r.starts_with('.'))
    })
}
