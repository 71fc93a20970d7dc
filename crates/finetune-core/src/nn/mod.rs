//! Generic layers over [`Param`] handles, named like PyTorch modules so their
//! parameters carry state-dict names (`{prefix}.weight`, `{prefix}.bias`). Constructors are free
//! functions taking the store and a prefix, as candle-nn's take a `VarBuilder`; they check that
//! each tensor exists with the expected shape.

mod embedding;
pub mod init;
mod layer_norm;
mod linear;

pub use embedding::{embedding, Embedding};
pub use layer_norm::{layer_norm, LayerNorm};
pub use linear::{linear, Linear};

use crate::error::{Error, Result};
use crate::params::{Param, ParamStore};

/// The named tensor, checked to have `shape`.
pub fn param(store: &ParamStore, name: &str, shape: &[usize]) -> Result<Param> {
    let p = store.param(name).map_err(|_| {
        Error::config(format!(
            "missing tensor `{name}` (expected shape {shape:?})"
        ))
    })?;
    let got = p.tensor().dims().to_vec();
    if got != shape {
        return Err(Error::Shape {
            name: name.to_string(),
            expected: shape.to_vec(),
            got,
        });
    }
    Ok(p)
}

/// `{prefix}.{leaf}`, or `leaf` when the prefix is empty.
pub fn join(prefix: &str, leaf: &str) -> String {
    if prefix.is_empty() {
        leaf.to_string()
    } else {
        format!("{prefix}.{leaf}")
    }
}
