//! What every model family does the same way when it reads a Hub checkpoint into its store and
//! writes it back: mapping the file's tensor names onto the model's ([`Sources`]), taking a
//! floating-point tensor ([`load_float`]), reporting what was initialised, replaced or left
//! unused ([`LoadReport`], as transformers prints on `from_pretrained`), and writing an export
//! folder ([`export_folder`]: `model.safetensors` with `format: pt`, `config.json`, the
//! checkpoint's side files).
//!
//! The names themselves (which file names map to which model names, which tensors a model
//! expects) are each model crate's.

use crate::fsutil::write_bytes_atomically;
use crate::safetensors_io::{save_tensors, Checkpoint, SINGLE_FILE};
use crate::{Error, ParamStore, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// A checkpoint's tensors under the model's names.
#[derive(Debug, Default)]
pub struct Sources {
    /// Model name → the checkpoint's name for it.
    by_model_name: HashMap<String, String>,
    /// Checkpoint names the model has no use for.
    unused: Vec<String>,
    /// Unused checkpoint tensors that are not weights (integer buffers such as BERT's
    /// `position_ids`, which the model computes itself).
    unused_buffers: Vec<String>,
}

impl Sources {
    /// Maps every tensor of `ckpt` through `canonical` (checkpoint name → model name, `None`:
    /// the model does not use it). Two checkpoint tensors for one model name are an error.
    pub fn map(ckpt: &Checkpoint, canonical: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut s = Self::default();
        for h in ckpt.headers() {
            match canonical(&h.name) {
                Some(c) => {
                    if let Some(prev) = s.by_model_name.insert(c.clone(), h.name.clone()) {
                        return Err(Error::config(format!(
                            "checkpoint holds both `{prev}` and `{}` for `{c}`",
                            h.name
                        )));
                    }
                }
                None if h.dtype.is_float() => s.unused.push(h.name.clone()),
                None => s.unused_buffers.push(h.name.clone()),
            }
        }
        Ok(s)
    }

    /// The checkpoint's name for model tensor `name`, taken out of the map.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.by_model_name.remove(name)
    }

    /// The checkpoint names left unused, weights first — those no model name maps from, then
    /// (sorted) those mapped to a name the model does not have (a deeper checkpoint's extra
    /// layers) — and then the unused non-float buffers.
    pub fn unused(self) -> (Vec<String>, Vec<String>) {
        let mut extra: Vec<String> = self.by_model_name.into_values().collect();
        extra.sort();
        let mut out = self.unused;
        out.extend(extra);
        (out, self.unused_buffers)
    }
}

/// Tensor `src` of `ckpt` on `device`; it must hold floating-point values.
pub fn load_float(ckpt: &Checkpoint, src: &str, device: &Device) -> Result<Tensor> {
    let t = ckpt.load(src, device)?;
    if !t.dtype().is_float() {
        return Err(Error::config(format!(
            "tensor `{src}` has dtype {:?}; a floating-point dtype is expected",
            t.dtype()
        )));
    }
    Ok(t)
}

/// What loading did besides copying tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport<N> {
    /// What kind of checkpoint it was (`BERT`, `ResNet`).
    pub family: &'static str,
    /// The checkpoint's naming.
    pub naming: N,
    /// Model tensors not in the checkpoint, initialised fresh.
    pub newly_initialized: Vec<String>,
    /// Head tensors replaced by fresh ones because another number of labels was asked for:
    /// `(name, checkpoint shape, model shape)`.
    pub resized: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// Checkpoint weights (floating-point tensors) the model does not use, under their
    /// checkpoint names.
    pub unused: Vec<String>,
    /// Checkpoint buffers (integer tensors, e.g. `position_ids`) the model does not use: not
    /// reported, as transformers ignores them.
    pub unused_buffers: Vec<String>,
}

impl<N> LoadReport<N> {
    /// A report for a `family` checkpoint under `naming`, with nothing initialised, replaced or
    /// unused yet.
    pub fn new(family: &'static str, naming: N) -> Self {
        Self {
            family,
            naming,
            newly_initialized: Vec::new(),
            resized: Vec::new(),
            unused: Vec::new(),
            unused_buffers: Vec::new(),
        }
    }
}

impl<N: fmt::Display> fmt::Display for LoadReport<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loaded a {}-named {} checkpoint",
            self.naming, self.family
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

/// transformers' `torch_dtype` name of a floating-point dtype.
pub fn torch_dtype(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::F64 => "float64",
        _ => "float32",
    }
}

/// Writes a model folder into `dir` (created if needed): the store's tensors as
/// `model.safetensors` (floating ones in `dtype` when given; LoRA adapters merged into their
/// weights), `config` as `config.json`, and the files `side_files` names copied from `from`
/// where it has them (tokenizer or preprocessing files). A store carrying adapters also gets
/// them in PEFT's format under [`ADAPTER_DIR`]. Each file is written atomically.
pub fn export_folder(
    dir: &Path,
    store: &ParamStore,
    dtype: Option<DType>,
    config: &serde_json::Value,
    from: Option<&Path>,
    side_files: &[&str],
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tensors = crate::lora::merged_tensors(store)?
        .into_iter()
        .map(|(n, t)| match dtype {
            Some(d) if t.dtype().is_float() => Ok((n, t.to_dtype(d)?)),
            _ => Ok((n, t)),
        })
        .collect::<Result<Vec<_>>>()?;
    save_tensors(&dir.join(SINGLE_FILE), &tensors)?;
    let text = serde_json::to_vec_pretty(config).map_err(|e| Error::config(e.to_string()))?;
    write_bytes_atomically(&dir.join("config.json"), &text)?;
    if let Some(src) = from {
        for f in side_files {
            let from = src.join(f);
            if from.is_file() && from != dir.join(f) {
                let bytes = std::fs::read(&from).map_err(|e| Error::io(&from, e))?;
                write_bytes_atomically(&dir.join(f), &bytes)?;
            }
        }
    }
    if store.lora().is_some() {
        crate::lora::peft::save(store, &dir.join(ADAPTER_DIR), dtype)?;
    }
    Ok(())
}

/// Where an export of a model carrying LoRA adapters puts them in PEFT's format (beside the
/// merged model at the top).
pub const ADAPTER_DIR: &str = "adapter";
