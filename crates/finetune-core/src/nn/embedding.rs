//! `Embedding`: rows of a `[num_embeddings, dim]` table looked up by integer ids.

use super::{join, param};
use crate::error::Result;
use crate::params::{Param, ParamStore};
use candle_core::{Module, Tensor};

/// A lookup table, as `torch.nn.Embedding`: integer ids of any shape `[..]` give rows
/// `[.., dim]` (through [`Module::forward`]).
#[derive(Debug, Clone)]
pub struct Embedding {
    weight: Param,
    dim: usize,
}

/// The `Embedding` whose table is `{prefix}.weight` `[num, dim]`.
pub fn embedding(store: &ParamStore, prefix: &str, num: usize, dim: usize) -> Result<Embedding> {
    Ok(Embedding {
        weight: param(store, &join(prefix, "weight"), &[num, dim])?,
        dim,
    })
}

impl Embedding {
    /// The table, `{prefix}.weight` `[num, dim]`.
    pub fn weight(&self) -> &Param {
        &self.weight
    }
}

impl Module for Embedding {
    fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let mut dims = ids.dims().to_vec();
        let rows = self.weight.tensor().index_select(&ids.flatten_all()?, 0)?;
        dims.push(self.dim);
        rows.reshape(dims)
    }
}
