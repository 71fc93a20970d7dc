//! Folding adapters into the weights they adapt: `W + s · B A` (a conv's `B A` over its
//! flattened kernel), for an export that loads without PEFT.

use super::Adapter;
use crate::error::Result;
use crate::params::ParamStore;
use candle_core::{DType, Tensor};

/// Module `m`'s weight with `adapter` folded in, in the weight's dtype (computed in f32, or
/// f64 for an f64 weight).
pub fn merged_weight(w: &Tensor, adapter: &Adapter) -> Result<Tensor> {
    let wide = match w.dtype() {
        DType::F64 => DType::F64,
        _ => DType::F32,
    };
    let a = adapter.a.tensor().detach().to_dtype(wide)?;
    let b = adapter.b.tensor().detach().to_dtype(wide)?;
    let r = a.dim(0)?;
    let a = a.reshape((r, a.elem_count() / r))?;
    let b = b.reshape((b.dim(0)?, r))?;
    let delta = (b.matmul(&a)? * adapter.scale)?.reshape(w.dims())?;
    Ok((w.detach().to_dtype(wide)? + delta)?.to_dtype(w.dtype())?)
}

/// Every tensor of the store as an export without adapters has it: adapted weights merged,
/// adapter tensors left out, in store order. Without adapters, the store's tensors.
pub fn merged_tensors(store: &ParamStore) -> Result<Vec<(String, Tensor)>> {
    let adapters = store.adapters();
    if adapters.is_empty() {
        return Ok(store.tensors());
    }
    let by_weight: std::collections::HashMap<String, &Adapter> = adapters
        .iter()
        .map(|(m, a)| (format!("{m}.weight"), a))
        .collect();
    store
        .tensors()
        .into_iter()
        .filter(|(n, _)| !super::is_adapter_tensor(n))
        .map(|(n, t)| match by_weight.get(&n) {
            Some(a) => Ok((n.clone(), merged_weight(&t, a)?)),
            None => Ok((n, t)),
        })
        .collect()
}
