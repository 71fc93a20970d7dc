//! LoRA, low-rank adaptation, with PEFT's semantics and file format.
//!
//! A targeted layer keeps its weight `W` frozen and gains two small trainable matrices: for a
//! linear layer `lora_A` `[r, in]` and `lora_B` `[out, r]`, and its output becomes
//! `W x + b + s · B(A(dropout(x)))` with `s = lora_alpha / r` (`lora_alpha / √r` with rsLoRA).
//! A conv layer's `lora_A` is a conv with the layer's kernel, stride and padding and `r` output
//! channels, its `lora_B` a 1×1 conv. `A` starts kaiming-uniform and `B` at zero, so an
//! untrained adapter leaves the model exactly as it was.
//!
//! Layers register themselves with the [`ParamStore`](crate::ParamStore) when they are built
//! ([`ModuleKind`]); [`add_adapters`] puts the adapter tensors into the store next to the
//! layer's own (`{module}.lora_A.weight`, `{module}.lora_B.weight`) and each layer picks its
//! adapter up at the next forward. So a model family gets LoRA by building its layers through
//! [`crate::nn`]; nothing here knows a model.
//!
//! [`peft`] reads and writes PEFT's adapter folders (`adapter_config.json` +
//! `adapter_model.safetensors`); [`merged_tensors`] folds the adapters into the weights for an
//! export that loads without PEFT.

mod adapter;
mod config;
mod inject;
mod merge;
mod module;
pub mod peft;
mod target;

pub use adapter::Adapter;
pub use config::{LoraConfig, LoraSettings};
pub use inject::{add_adapters, checkpoint_names, counts, train_rules};
pub use merge::{merged_tensors, merged_weight};
pub use module::ModuleKind;
pub use target::{select_modules, ALL_LINEAR};

/// The name of module `m`'s `lora_A` tensor (`{m}.lora_A.weight`).
pub fn a_name(module: &str) -> String {
    format!("{module}.lora_A.weight")
}

/// The name of module `m`'s `lora_B` tensor (`{m}.lora_B.weight`).
pub fn b_name(module: &str) -> String {
    format!("{module}.lora_B.weight")
}

/// The base tensor an adapter's tensor changes: `{m}.weight` for `{m}.lora_A.weight` and
/// `{m}.lora_B.weight`, the tensor itself for a head tensor (replaced whole).
pub fn modified_tensor(name: &str) -> String {
    match name
        .strip_suffix(".lora_A.weight")
        .or_else(|| name.strip_suffix(".lora_B.weight"))
    {
        Some(m) => format!("{m}.weight"),
        None => name.to_string(),
    }
}

/// Whether a store tensor is a LoRA adapter's (`….lora_A.weight` / `….lora_B.weight`).
pub fn is_adapter_tensor(name: &str) -> bool {
    name.ends_with(".lora_A.weight") || name.ends_with(".lora_B.weight")
}
