//! A checkpoint (transformers', `ViTModel`'s or timm's naming) into a [`ParamStore`] under
//! transformers' names: timm's stacked `qkv` split into query, key and value; position
//! embeddings for another patch grid resampled to the config's (see [`crate::interpolate`]);
//! the head kept, replaced or initialised; a report of what was done.

use crate::config::ViTConfig;
use crate::interpolate::resample;
use crate::naming::{expected_tensors, source, Naming, Role};
use candle_core::{DType, Device, Tensor};
use finetune_core::model_io::load_float;
use finetune_core::nn::init;
use finetune_core::safetensors_io::Checkpoint;
use finetune_core::{Error, ParamStore, Result, Rng, TensorKind};
use std::collections::HashSet;

/// What loading did besides copying tensors, with the checkpoint's [`Naming`].
pub type LoadReport = finetune_core::model_io::LoadReport<Naming>;

/// The patch grid sides the checkpoint's position embeddings were resampled from and to, when
/// the model's input size asked for another grid.
pub type Resampled = Option<(usize, usize)>;

/// A fresh tensor for `name`, as transformers' `_init_weights` makes them: LayerNorm weights
/// one, biases zero, everything else normal(0, `initializer_range`).
pub fn init_tensor(
    name: &str,
    shape: &[usize],
    c: &ViTConfig,
    rng: &mut Rng,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let norm = name.contains("layernorm");
    Ok(if name.ends_with(".bias") {
        Tensor::zeros(shape, dtype, device)?
    } else if norm {
        Tensor::ones(shape, dtype, device)?
    } else {
        init::normal(shape, 0.0, c.initializer_range, rng, dtype, device)?
    })
}

/// Model tensor `name` from the checkpoint (`None`: the checkpoint lacks it), timm's `qkv`
/// thirds cut out.
fn take(
    ckpt: &Checkpoint,
    name: &str,
    naming: Naming,
    device: &Device,
) -> Result<Option<(String, Tensor)>> {
    let Some((src, part)) = source(name, naming) else {
        return Ok(None);
    };
    if !ckpt.contains(&src) {
        return Ok(None);
    }
    let t = load_float(ckpt, &src, device)?;
    let t = match part {
        Some(k) => {
            let rows = t.dim(0)?;
            if rows % 3 != 0 {
                return Err(Error::Shape {
                    name: format!("{src} (query, key and value stacked)"),
                    expected: vec![3 * (rows / 3 + 1)],
                    got: t.dims().to_vec(),
                });
            }
            t.narrow(0, k * rows / 3, rows / 3)?
        }
        None => t,
    };
    Ok(Some((src, t)))
}

/// Loads `ckpt` for `config` into a new store of `dtype` on `device`. A fresh head draws from
/// `rng`; `new_head` asks for one even when the checkpoint's fits. A head of another number of
/// labels is replaced (reported); any other tensor of the wrong shape, or a backbone tensor
/// the checkpoint lacks, is an error naming it. The last value is the patch grid side the
/// checkpoint's position embeddings were resampled from and to, when they were.
pub fn load_checkpoint(
    ckpt: &Checkpoint,
    config: &ViTConfig,
    new_head: bool,
    device: &Device,
    dtype: DType,
    rng: &mut Rng,
) -> Result<(ParamStore, LoadReport, Resampled)> {
    let naming = Naming::of(ckpt.headers().iter().map(|h| h.name.as_str()));
    let mut report = LoadReport::new("ViT", naming);
    let store = ParamStore::new();
    let mut used = HashSet::new();
    let mut resampled = None;
    for (name, shape, role) in expected_tensors(config) {
        let found = take(ckpt, &name, naming, device)?;
        let t = match (found, role) {
            (Some((src, t)), Role::Head) if new_head => {
                used.insert(src);
                report
                    .resized
                    .push((name.clone(), t.dims().to_vec(), shape.clone()));
                None
            }
            (Some((src, t)), _) if t.dims() == shape.as_slice() => {
                used.insert(src);
                Some(t)
            }
            (Some((src, t)), Role::Head) => {
                used.insert(src);
                report
                    .resized
                    .push((name.clone(), t.dims().to_vec(), shape.clone()));
                None
            }
            (Some((src, t)), _) if name.ends_with("position_embeddings") => {
                used.insert(src);
                let from = ((t.dim(1)? - 1) as f64).sqrt().round() as usize;
                resampled = Some((from, config.grid()));
                Some(resample(&t, config.grid())?)
            }
            (Some((src, t)), _) => {
                return Err(Error::Shape {
                    name: format!("{src} (checkpoint) for {name}"),
                    expected: shape,
                    got: t.dims().to_vec(),
                })
            }
            (None, Role::Backbone) => {
                let alt = source(&name, naming)
                    .filter(|(s, _)| *s != name)
                    .map(|(s, _)| format!(" ({naming} name `{s}`)"))
                    .unwrap_or_default();
                return Err(Error::config(format!(
                    "checkpoint lacks tensor `{name}`{alt} (shape {shape:?}) for a ViT of \
                     {} layers, hidden size {}",
                    config.num_hidden_layers, config.hidden_size
                )));
            }
            (None, Role::Head) => {
                report.newly_initialized.push(name.clone());
                None
            }
        };
        let t = match t {
            Some(t) => t.to_dtype(dtype)?,
            None => init_tensor(&name, &shape, config, rng, dtype, device)?,
        };
        store.insert(&name, &t, TensorKind::Parameter)?;
    }
    for h in ckpt.headers() {
        if !used.contains(&h.name) {
            if h.dtype.is_float() {
                report.unused.push(h.name.clone());
            } else {
                report.unused_buffers.push(h.name.clone());
            }
        }
    }
    Ok((store, report, resampled))
}
