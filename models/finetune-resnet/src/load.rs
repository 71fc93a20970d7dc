//! Loading a checkpoint into a [`ParamStore`] under torchvision names, with a report of the
//! naming found, what was newly initialised, what was replaced and what went unused.

use crate::config::ResNetConfig;
use crate::init::init_tensor;
use crate::naming::{canonical_name, expected_tensors, naming_of, transformers_name, Naming, Role};
use candle_core::{DType, Device};
use finetune_core::safetensors_io::Checkpoint;
use finetune_core::{Error, ParamStore, Result, Rng};
use std::collections::HashMap;

/// What loading did besides copying tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// The checkpoint's naming.
    pub naming: Naming,
    /// Model tensors not in the checkpoint, initialised fresh (the head, or
    /// `num_batches_tracked` of very old checkpoints).
    pub newly_initialized: Vec<String>,
    /// Head tensors replaced by fresh ones because another number of classes was asked for:
    /// `(name, checkpoint shape, model shape)`.
    pub resized: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// Checkpoint tensors the model does not use, under their checkpoint names.
    pub unused: Vec<String>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "loaded a {}-named ResNet checkpoint",
            self.naming.as_str()
        )?;
        if !self.newly_initialized.is_empty() {
            write!(
                f,
                "; newly initialised: {}",
                self.newly_initialized.join(", ")
            )?;
        }
        for (n, from, to) in &self.resized {
            write!(f, "; `{n}` replaced: {from:?} -> {to:?} (new head)")?;
        }
        if !self.unused.is_empty() {
            write!(f, "; unused checkpoint tensors: {}", self.unused.join(", "))?;
        }
        Ok(())
    }
}

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
    let mut sources: HashMap<String, String> = HashMap::new();
    let mut report = LoadReport {
        naming: Naming::Torchvision,
        newly_initialized: Vec::new(),
        resized: Vec::new(),
        unused: Vec::new(),
    };
    let mut namings = (false, false);
    for h in ckpt.headers() {
        match naming_of(&h.name) {
            Naming::Transformers => namings.1 = true,
            Naming::Torchvision => namings.0 = true,
        }
        match canonical_name(&h.name) {
            Some(c) => {
                if let Some(prev) = sources.insert(c.clone(), h.name.clone()) {
                    return Err(Error::config(format!(
                        "checkpoint holds both `{prev}` and `{}` for `{c}`",
                        h.name
                    )));
                }
            }
            None => report.unused.push(h.name.clone()),
        }
    }
    if namings.1 {
        report.naming = Naming::Transformers;
    }
    let store = ParamStore::new();
    for e in expected_tensors(config) {
        let src = sources.remove(&e.name);
        let loaded = match src {
            Some(src) if !(e.role == Role::Head && head == HeadPolicy::Replace) => {
                let t = ckpt.load(&src, device)?;
                if e.role != Role::Counter && !t.dtype().is_float() {
                    return Err(Error::config(format!(
                        "tensor `{src}` has dtype {:?}; a floating-point dtype is expected",
                        t.dtype()
                    )));
                }
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
    let mut extra: Vec<String> = sources.into_values().collect();
    extra.sort();
    report.unused.extend(extra);
    Ok((store, report))
}
