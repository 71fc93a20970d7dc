//! Gradients by parameter name: taken from a backward pass, clipped, accumulated over
//! micro-batches, then handed to an optimizer.
//!
//! Clipping follows `torch.nn.utils.clip_grad_norm_` (returns the pre-clip total norm, scales
//! every gradient by `min(1, max_norm / (total_norm + 1e-6))`) and `clip_grad_value_`.

use crate::error::{Error, Result};
use crate::params::ParamStore;
use candle_core::backprop::GradStore;
use candle_core::Tensor;
use std::collections::BTreeMap;

/// Gradients of trainable parameters, keyed by parameter name.
#[derive(Debug, Clone, Default)]
pub struct Grads {
    map: BTreeMap<String, Tensor>,
}

impl Grads {
    /// No gradients.
    pub fn new() -> Self {
        Self::default()
    }

    /// Picks the gradient of every trainable parameter of `store` out of a backward pass.
    /// Trainable parameters that the loss did not reach simply have no entry.
    pub fn from_backward(store: &ParamStore, grads: &GradStore) -> Self {
        let map = store
            .trainable_vars()
            .into_iter()
            .filter_map(|(name, var)| grads.get(var.as_tensor()).map(|g| (name, g.clone())))
            .collect();
        Self { map }
    }

    /// The gradient of parameter `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.map.get(name)
    }

    /// Sets the gradient of `name`, replacing any previous one. Nothing is checked here; the
    /// optimizer checks names and shapes against its groups and the store.
    pub fn insert(&mut self, name: impl Into<String>, grad: Tensor) {
        self.map.insert(name.into(), grad);
    }

    /// How many parameters have a gradient.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no parameter has a gradient.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// `(name, gradient)` in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.map.iter()
    }

    /// Multiplies every gradient by `factor`.
    pub fn scale(&mut self, factor: f64) -> Result<()> {
        for g in self.map.values_mut() {
            *g = g.affine(factor, 0.0)?;
        }
        Ok(())
    }

    /// The total `norm_type`-norm of all gradients taken together (`f64::INFINITY` for the
    /// max-norm), accumulated in f64 in name order so it is deterministic (gradients off the
    /// host: reduced on their device, one read for all of them).
    pub fn global_norm(&self, norm_type: f64) -> Result<f64> {
        if !crate::error::positive(norm_type) {
            return Err(Error::config(format!(
                "norm type must be > 0, got {norm_type}"
            )));
        }
        let acc = crate::grad_stats::norm_sum(self.map.values(), norm_type)?;
        Ok(if norm_type.is_infinite() {
            acc
        } else {
            acc.powf(1.0 / norm_type)
        })
    }

    /// Scales gradients so their total norm is at most `max_norm`; returns the norm before
    /// clipping, like `clip_grad_norm_`.
    pub fn clip_norm(&mut self, max_norm: f64, norm_type: f64) -> Result<f64> {
        if !crate::error::positive(max_norm) {
            return Err(Error::config(format!(
                "max grad norm must be > 0, got {max_norm}"
            )));
        }
        let total = self.global_norm(norm_type)?;
        let coef = max_norm / (total + 1e-6);
        if coef < 1.0 {
            self.scale(coef)?;
        }
        Ok(total)
    }

    /// Clamps every gradient element to `[-clip, clip]`, like `clip_grad_value_`.
    pub fn clip_value(&mut self, clip: f64) -> Result<()> {
        if !crate::error::positive(clip) {
            return Err(Error::config(format!("clip value must be > 0, got {clip}")));
        }
        for g in self.map.values_mut() {
            *g = g.clamp(-clip, clip)?;
        }
        Ok(())
    }

    /// Names of parameters whose gradient holds a NaN or an infinity (gradients off the host
    /// are checked on their device, one read for all of them).
    pub fn non_finite(&self) -> Result<Vec<String>> {
        let gs: Vec<&Tensor> = self.map.values().collect();
        let ok = crate::grad_stats::all_finite_each(&gs)?;
        Ok(self
            .map
            .keys()
            .zip(ok)
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| n.clone())
            .collect())
    }
}

/// Sums weighted gradients over micro-batches. For a mean loss over a batch split into
/// micro-batches of sizes `b_i` (total `B`), accumulating each micro-batch's gradient with weight
/// `b_i / B` gives exactly the full-batch gradient.
#[derive(Debug, Default)]
pub struct GradAccumulator {
    sum: Grads,
    micro_batches: usize,
}

impl GradAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `weight × grads` to the running sum and counts one micro-batch (for a mean loss,
    /// `weight` is the micro-batch's share of the batch, `b_i / B`). A parameter absent from
    /// `grads` contributes nothing, as a zero gradient would.
    pub fn add(&mut self, grads: &Grads, weight: f64) -> Result<()> {
        for (name, g) in grads.iter() {
            let next = match self.sum.map.remove(name) {
                Some(acc) => (acc + g.affine(weight, 0.0)?)?,
                // A step of one micro-batch (weight 1): the gradient itself, not a copy.
                None if weight == 1.0 => g.clone(),
                None => g.affine(weight, 0.0)?,
            };
            self.sum.map.insert(name.clone(), next);
        }
        self.micro_batches += 1;
        Ok(())
    }

    /// How many micro-batches were added since the last `take`.
    pub fn micro_batches(&self) -> usize {
        self.micro_batches
    }

    /// The accumulated gradients; the accumulator starts over.
    pub fn take(&mut self) -> Grads {
        self.micro_batches = 0;
        std::mem::take(&mut self.sum)
    }
}
