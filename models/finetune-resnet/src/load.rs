//! Loading a checkpoint into a [`ParamStore`] under torchvision names, with a report of the
//! naming found, what was newly initialised, what was replaced and what went unused.

use crate::config::ResNetConfig;
use crate::init::init_tensor;
use crate::naming::{canonical_name, expected_tensors, naming_of, transformers_name, Naming, Role};
use candle_core::{DType, Device};
use finetune_core::model_io::{load_float, Sources};
use finetune_core::safetensors_io::Checkpoint;
use finetune_core::{Error, ParamStore, Result, Rng};

/// What loading did besides copying tensors, with the checkpoint's [`Naming`].
pub type LoadReport = finetune_core::model_io::LoadReport<Naming>;

/// How the head is treated on load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadPolicy {
    /// Load `fc` when its shape fits; a misfit is an error (the user asked for nothing new).
    Keep,
    /// Load `fc` when its shape fits, else initialise it and report (new number of classes).
    ReplaceIfMismatched,
    /// Always initialise a fresh `fc` (new classes, same count).
    Replace,
}

/// Loads `ckpt` for `config` into a new store of `dtype` (floating tensors; the counters stay
/// `i64`) on `device`. A fresh `fc` draws from `rng` like `torch.nn.Linear`.
pub fn load_checkpoint(
    ckpt: &Checkpoint,
    config: &ResNetConfig,
    head: HeadPolicy,
    device: &Device,
    dtype: DType,
    rng: &mut Rng,
) -> Result<(ParamStore, LoadReport)> {
    let transformers = ckpt
        .headers()
        .iter()
        .any(|h| naming_of(&h.name) == Naming::Transformers);
    let naming = if transformers {
        Naming::Transformers
    } else {
        Naming::Torchvision
    };
    let mut report = LoadReport::new("ResNet", naming);
    let mut sources = Sources::map(ckpt, canonical_name)?;
    let store = ParamStore::new();
    for e in expected_tensors(config) {
        let loaded = match sources.take(&e.name) {
            Some(src) if !(e.role == Role::Head && head == HeadPolicy::Replace) => {
                let t = if e.role == Role::Counter {
                    ckpt.load(&src, device)?
                } else {
                    load_float(ckpt, &src, device)?
                };
                if t.dims() == e.shape.as_slice() {
                    Some(if e.role == Role::Counter {
                        t.to_dtype(DType::I64)?
                    } else {
                        t.to_dtype(dtype)?
                    })
                } else if e.role == Role::Head && head == HeadPolicy::ReplaceIfMismatched {
                    report
                        .resized
                        .push((e.name.clone(), t.dims().to_vec(), e.shape.clone()));
                    None
                } else {
                    let hint = if e.role == Role::Head {
                        " (ask for the new number of classes or labels to replace the head)"
                    } else {
                        ""
                    };
                    return Err(Error::Shape {
                        name: format!("{src} (checkpoint) for {}{hint}", e.name),
                        expected: e.shape.clone(),
                        got: t.dims().to_vec(),
                    });
                }
            }
            Some(src) => {
                let shape = ckpt
                    .headers()
                    .iter()
                    .find(|h| h.name == src)
                    .map(|h| h.shape.clone())
                    .unwrap_or_default();
                report
                    .resized
                    .push((e.name.clone(), shape, e.shape.clone()));
                None
            }
            None if e.role == Role::Backbone => {
                let alt = match (report.naming, transformers_name(&e.name)) {
                    (Naming::Transformers, Some(n)) => format!(" (transformers name `{n}`)"),
                    _ => String::new(),
                };
                return Err(Error::config(format!(
                    "checkpoint lacks tensor `{}`{alt} (shape {:?}) for {} ({:?} blocks {:?}, \
                     widths {:?}); is it another architecture?",
                    e.name,
                    e.shape,
                    config.architecture,
                    config.block,
                    config.layers,
                    config.channels
                )));
            }
            None => {
                report.newly_initialized.push(e.name.clone());
                None
            }
        };
        let t = match loaded {
            Some(t) => t,
            None => init_tensor(&e, config, rng, dtype, device)?,
        };
        store.insert(&e.name, &t, e.kind)?;
    }
    (report.unused, report.unused_buffers) = sources.unused();
    Ok((store, report))
}
