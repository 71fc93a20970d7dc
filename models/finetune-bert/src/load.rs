//! Loading a checkpoint into a [`ParamStore`] under the model's names, with a report of what was
//! newly initialised and what went unused, as transformers prints on `from_pretrained`.

use crate::config::BertConfig;
use crate::naming::{canonical_name, expected_tensors, Role};
use candle_core::{DType, Device, Tensor};
use finetune_core::nn::init;
use finetune_core::safetensors_io::Checkpoint;
use finetune_core::{Error, ParamStore, Result, Rng, TensorKind};
use std::collections::HashMap;

/// What loading did besides copying tensors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// `"prefixed"` (`bert.*`) or `"bare"` (`embeddings.*`, `encoder.*`).
    pub naming: &'static str,
    /// Model tensors not in the checkpoint, initialised fresh.
    pub newly_initialized: Vec<String>,
    /// Head tensors whose checkpoint shape did not fit the requested labels:
    /// `(name, checkpoint shape, model shape)`; they were initialised fresh.
    pub resized: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// Checkpoint tensors the classifier does not use (`cls.*`, `position_ids`, …).
    pub unused: Vec<String>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "loaded a {} BERT checkpoint", self.naming)?;
        if !self.newly_initialized.is_empty() {
            write!(
                f,
                "; newly initialised: {}",
                self.newly_initialized.join(", ")
            )?;
        }
        for (n, from, to) in &self.resized {
            write!(
                f,
                "; `{n}` resized from {from:?} to {to:?} (re-initialised)"
            )?;
        }
        if !self.unused.is_empty() {
            write!(f, "; unused checkpoint tensors: {}", self.unused.join(", "))?;
        }
        Ok(())
    }
}

/// Loads `ckpt` for `config` into a new store of `dtype` on `device`. Tensors to initialise
/// draw from `rng` (normal(0, initializer_range) weights, zero biases, as transformers'
/// `_init_weights`).
pub fn load_checkpoint(
    ckpt: &Checkpoint,
    config: &BertConfig,
    device: &Device,
    dtype: DType,
    rng: &mut Rng,
) -> Result<(ParamStore, LoadReport)> {
    let mut sources: HashMap<String, String> = HashMap::new();
    let mut report = LoadReport {
        naming: "bare",
        ..LoadReport::default()
    };
    for h in ckpt.headers() {
        if h.name.starts_with("bert.") {
            report.naming = "prefixed";
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
    let store = ParamStore::new();
    let expected = expected_tensors(config);
    for (name, shape, role) in &expected {
        let loaded = match sources.remove(name) {
            Some(src) => {
                let t = ckpt.load(&src, device)?;
                if !t.dtype().is_float() {
                    return Err(Error::config(format!(
                        "tensor `{src}` has dtype {:?}; a floating-point dtype is expected",
                        t.dtype()
                    )));
                }
                if t.dims() == shape.as_slice() {
                    Some(t.to_dtype(dtype)?)
                } else if *role == Role::Head {
                    report
                        .resized
                        .push((name.clone(), t.dims().to_vec(), shape.clone()));
                    None
                } else {
                    return Err(Error::Shape {
                        name: format!("{src} (checkpoint) for {name}"),
                        expected: shape.clone(),
                        got: t.dims().to_vec(),
                    });
                }
            }
            None if *role == Role::Encoder => {
                return Err(Error::config(format!(
                    "checkpoint lacks tensor `{name}` (shape {shape:?}; bare name `{}`)",
                    name.trim_start_matches("bert.")
                )))
            }
            None => {
                report.newly_initialized.push(name.clone());
                None
            }
        };
        let t = match loaded {
            Some(t) => t,
            None if name.ends_with(".bias") => Tensor::zeros(shape.as_slice(), dtype, device)?,
            None => init::normal(shape, 0.0, config.initializer_range, rng, dtype, device)?,
        };
        store.insert(name, &t, TensorKind::Parameter)?;
    }
    // Canonical names no model tensor wants (e.g. a deeper checkpoint's extra layers).
    let mut extra: Vec<String> = sources.into_values().collect();
    extra.sort();
    report.unused.extend(extra);
    report
        .newly_initialized
        .retain(|n| !report.resized.iter().any(|r| &r.0 == n));
    Ok((store, report))
}
