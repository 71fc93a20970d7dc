//! The model's dropout stream: one seedable [`Rng`] shared by every dropout site, drawn in a
//! fixed order per forward, so a run is reproducible and its state can be checkpointed.

use candle_core::Tensor;
use finetune_core::{Result, Rng};
use finetune_kernels::ops::OpSet;
use std::sync::Mutex;

/// The dropout stream (see the module).
pub struct DropoutRng(Mutex<Rng>);

impl DropoutRng {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(Rng::seed_from_u64(seed)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rng> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Dropout with probability `p` in training, the identity otherwise, through `ops`.
    pub fn dropout(&self, x: &Tensor, p: f64, train: bool, ops: OpSet) -> Result<Tensor> {
        if !train || p == 0.0 {
            return Ok(x.clone());
        }
        Ok(ops.dropout(x, p, train, &mut self.lock())?)
    }

    /// Runs `f` with the stream (for ops that draw dropout seeds themselves).
    pub fn with<R>(&self, f: impl FnOnce(&mut Rng) -> R) -> R {
        f(&mut self.lock())
    }

    /// The stream's state, for checkpoints.
    pub fn state(&self) -> Rng {
        self.lock().clone()
    }

    /// Restores a state saved with [`Self::state`].
    pub fn set_state(&self, rng: Rng) {
        *self.lock() = rng;
    }
}
