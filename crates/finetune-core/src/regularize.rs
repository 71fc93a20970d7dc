//! Penalty terms added to the loss: L1 (`λ·Σ|w|`) and L2 (`½·λ·Σw²`, whose gradient `λ·w` equals
//! coupled weight decay `λ`), over the trainable parameters matching chosen patterns.

use crate::error::Result;
use crate::params::ParamStore;
use crate::pattern::PatternSet;
use candle_core::Tensor;

/// Which parameters a penalty covers: trainable ones matching `patterns` (all trainable
/// parameters when `patterns` is empty).
fn covered(store: &ParamStore, patterns: &PatternSet) -> Result<Vec<Tensor>> {
    store
        .infos()
        .into_iter()
        .filter(|i| i.trainable && (patterns.is_empty() || patterns.matches(&i.name)))
        .map(|i| store.get(&i.name))
        .collect()
}

fn penalty(
    store: &ParamStore,
    patterns: &PatternSet,
    f: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
    scale: f64,
) -> Result<Option<Tensor>> {
    let mut total: Option<Tensor> = None;
    for t in covered(store, patterns)? {
        let term = f(&t)?.sum_all()?;
        total = Some(match total {
            Some(acc) => (acc + term)?,
            None => term,
        });
    }
    Ok(match total {
        Some(t) => Some(t.affine(scale, 0.0)?),
        None => None,
    })
}

/// `λ·Σ|w|`, differentiable; `None` when no trainable parameter is covered.
pub fn l1_penalty(
    store: &ParamStore,
    patterns: &PatternSet,
    lambda: f64,
) -> Result<Option<Tensor>> {
    penalty(store, patterns, |t| t.abs(), lambda)
}

/// `½·λ·Σw²`, differentiable; `None` when no trainable parameter is covered.
pub fn l2_penalty(
    store: &ParamStore,
    patterns: &PatternSet,
    lambda: f64,
) -> Result<Option<Tensor>> {
    penalty(store, patterns, |t| t.sqr(), 0.5 * lambda)
}
