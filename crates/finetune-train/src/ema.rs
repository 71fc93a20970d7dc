//! Model EMA: an exponential moving average of every tensor of a [`ParamStore`], updated after
//! each optimizer step, as timm's `ModelEmaV3` (its `train.py --model-ema`) keeps one.
//!
//! After optimizer update number `k` (counted from 1) the average moves towards the live
//! weights: `ema ← ema + (1 − d)·(w − ema)` (i.e. `d·ema + (1 − d)·w`, computed as PyTorch's
//! `lerp_`) for every floating-point tensor, parameters and buffers alike (BatchNorm's running
//! statistics are averaged); integer buffers (`num_batches_tracked`) are copied. The decay `d`
//! is timm's `get_decay(k)`:
//! - `k = 1`: `d = 0`, the average starts as a copy of the weights after the first step;
//! - otherwise `d = --model-ema-decay`, or with `--model-ema-warmup`
//!   `d = min(decay, 1 − (1 + (k − 1))^(−2/3))` (timm's warmup with `warmup_gamma = 1`,
//!   `warmup_power = 2/3`, `min_decay = 0`).
//!
//! The average is kept in f32 whatever the store's dtype (a half-precision average would round
//! most updates away). It is saved in each checkpoint as [`EMA_FILE`] (the store's names), so a
//! resumed run continues it bit for bit.

use candle_core::{DType, Tensor};
use finetune_core::safetensors_io::{save_tensors, Checkpoint};
use finetune_core::{Error, ParamStore, Result};
use std::path::Path;

/// The averaged tensors in a checkpoint folder.
pub const EMA_FILE: &str = "ema.safetensors";

/// timm's warm-up exponent (`warmup_power`).
const WARMUP_POWER: f64 = 2.0 / 3.0;

/// The moving average of a store's tensors (see the module doc).
#[derive(Debug, Clone)]
pub struct ModelEma {
    decay: f64,
    warmup: bool,
    /// Every tensor of the store, by name, in store order: floats as f32 averages, the rest
    /// as copies.
    tensors: Vec<(String, Tensor)>,
}

impl ModelEma {
    /// An average starting at the store's current values. `decay` must lie in `[0, 1]`.
    pub fn new(store: &ParamStore, decay: f64, warmup: bool) -> Result<Self> {
        check_decay(decay)?;
        let tensors = store
            .tensors()
            .into_iter()
            .map(|(name, t)| Ok((name, own_copy(&t)?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            decay,
            warmup,
            tensors,
        })
    }

    /// The decay of update number `k` (1 for the update after the first optimizer step):
    /// timm's `ModelEmaV3.get_decay(k)`.
    pub fn decay_at(&self, k: u64) -> f64 {
        let step = k.saturating_sub(1);
        if step == 0 {
            return 0.0;
        }
        if !self.warmup {
            return self.decay;
        }
        let warm = 1.0 - (1.0 + step as f64).powf(-WARMUP_POWER);
        warm.min(self.decay).max(0.0)
    }

    /// Moves the average towards the store's values: update number `k`.
    pub fn update(&mut self, store: &ParamStore, k: u64) -> Result<()> {
        let weight = 1.0 - self.decay_at(k);
        for (name, ema) in &mut self.tensors {
            let live = store.get(name)?.detach();
            *ema = if ema.dtype().is_float() {
                lerp(ema, &live.to_dtype(DType::F32)?, weight)?
            } else {
                own_copy(&live)?
            };
        }
        Ok(())
    }

    /// The averaged tensors, by name.
    pub fn tensors(&self) -> &[(String, Tensor)] {
        &self.tensors
    }

    /// Puts the average into the store and returns copies of the values it replaced, for
    /// [`Self::restore`].
    pub fn swap_in(&self, store: &ParamStore) -> Result<Vec<(String, Tensor)>> {
        let mut live = Vec::with_capacity(self.tensors.len());
        for (name, ema) in &self.tensors {
            live.push((name.clone(), own_copy(&store.get(name)?)?));
            store.set(name, ema)?;
        }
        Ok(live)
    }

    /// Writes back what [`Self::swap_in`] returned.
    pub fn restore(store: &ParamStore, live: &[(String, Tensor)]) -> Result<()> {
        for (name, t) in live {
            store.set(name, t)?;
        }
        Ok(())
    }

    /// Writes the average into `dir` ([`EMA_FILE`]).
    pub fn save(&self, dir: &Path) -> Result<()> {
        save_tensors(&dir.join(EMA_FILE), &self.tensors)
    }

    /// Replaces the average by the one saved in `dir`; `false` (nothing changed) when `dir`
    /// holds none. Every tensor must be there, with its shape.
    pub fn load(&mut self, dir: &Path) -> Result<bool> {
        let path = dir.join(EMA_FILE);
        if !path.is_file() {
            return Ok(false);
        }
        let file = Checkpoint::open(&path)?;
        let mut loaded = Vec::with_capacity(self.tensors.len());
        for (name, t) in &self.tensors {
            if !file.contains(name) {
                return Err(Error::Record {
                    path: path.clone(),
                    msg: format!("tensor `{name}` of the model is missing"),
                });
            }
            let got = file.load(name, t.device())?.to_dtype(t.dtype())?;
            if got.dims() != t.dims() {
                return Err(Error::Shape {
                    name: name.clone(),
                    expected: t.dims().to_vec(),
                    got: got.dims().to_vec(),
                });
            }
            loaded.push((name.clone(), got));
        }
        self.tensors = loaded;
        Ok(true)
    }
}

/// `--model-ema-decay` must lie in `[0, 1]`.
pub fn check_decay(decay: f64) -> Result<()> {
    if (0.0..=1.0).contains(&decay) {
        Ok(())
    } else {
        Err(Error::config(format!(
            "--model-ema-decay must be in [0, 1], got {decay}"
        )))
    }
}

/// A copy with storage of its own (floats in f32), never a view of the store's.
fn own_copy(t: &Tensor) -> Result<Tensor> {
    let t = t.detach();
    Ok(if t.dtype().is_float() {
        t.to_dtype(DType::F32)?.copy()?
    } else {
        t.copy()?
    })
}

/// PyTorch's `ema.lerp_(w, weight)`: `ema + weight·(w − ema)` for `weight < 0.5`, else
/// `w − (1 − weight)·(w − ema)`, so that `weight = 1` gives `w` exactly.
fn lerp(ema: &Tensor, w: &Tensor, weight: f64) -> Result<Tensor> {
    let diff = (w - ema)?;
    Ok(if weight < 0.5 {
        (ema + diff.affine(weight, 0.0)?)?
    } else {
        (w - diff.affine(1.0 - weight, 0.0)?)?
    })
}
