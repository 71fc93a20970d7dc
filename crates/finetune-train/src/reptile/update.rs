//! Reptile's outer update (Nichol et al. 2018): from the meta weights φ and the weights
//! `W_1 … W_n` the inner loop reached on each of a meta-batch's tasks,
//! `φ ← φ + ε · (1/n) Σᵢ (Wᵢ − φ)`. The weights are the model's floating-point tensors, its
//! parameters and its float buffers (batch-norm running statistics) alike; integer buffers
//! (batch norm's `num_batches_tracked`) are restored with φ before each task and keep φ's
//! values, so the tasks seen leave no count behind.

use candle_core::Tensor;
use finetune_core::{ParamStore, Result};

/// A copy of some of a store's tensors, by name, in store order.
#[derive(Debug, Clone)]
pub struct Weights {
    tensors: Vec<(String, Tensor)>,
}

impl Weights {
    /// Copies the tensors of `store` whose name `include` accepts (copies: later in-place
    /// updates of the store do not reach them).
    pub fn capture(store: &ParamStore, include: &dyn Fn(&str) -> bool) -> Result<Self> {
        let tensors = store
            .tensors()
            .into_iter()
            .filter(|(n, _)| include(n))
            .map(|(n, t)| Ok((n, t.copy()?)))
            .collect::<Result<_>>()?;
        Ok(Self { tensors })
    }

    /// Writes these values back into `store` (in place).
    pub fn restore(&self, store: &ParamStore) -> Result<()> {
        for (name, t) in &self.tensors {
            store.set(name, t)?;
        }
        Ok(())
    }

    /// The tensors, by name.
    pub fn tensors(&self) -> &[(String, Tensor)] {
        &self.tensors
    }
}

/// The sum of a meta-batch's task weights `Σᵢ Wᵢ`, then the Reptile step from φ.
#[derive(Debug, Default)]
pub struct TaskAverage {
    sum: Option<Vec<Tensor>>,
    tasks: usize,
}

impl TaskAverage {
    /// An empty sum.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one task's adapted weights (the same names as φ's, in the same order).
    pub fn add(&mut self, adapted: &Weights) -> Result<()> {
        self.sum = Some(match self.sum.take() {
            None => adapted
                .tensors
                .iter()
                .map(|(_, t)| t.copy())
                .collect::<candle_core::Result<_>>()?,
            Some(sum) => sum
                .iter()
                .zip(&adapted.tensors)
                .map(|(s, (_, t))| {
                    if s.dtype().is_float() {
                        s + t
                    } else {
                        Ok(s.clone())
                    }
                })
                .collect::<candle_core::Result<_>>()?,
        });
        self.tasks += 1;
        Ok(())
    }

    /// The tasks added so far.
    pub fn tasks(&self) -> usize {
        self.tasks
    }

    /// `φ + ε · (mean_i Wᵢ − φ)`, which is `φ + ε · mean_i (Wᵢ − φ)`, for each float tensor;
    /// φ's own value for the others, and φ itself when no task was added.
    pub fn step(&self, phi: &Weights, meta_lr: f64) -> Result<Weights> {
        let Some(sum) = &self.sum else {
            return Ok(phi.clone());
        };
        let n = self.tasks as f64;
        let tensors = phi
            .tensors
            .iter()
            .zip(sum)
            .map(|((name, p), s)| {
                if !p.dtype().is_float() {
                    return Ok((name.clone(), p.clone()));
                }
                let toward = ((s / n)? - p)?;
                Ok((name.clone(), (p + (toward * meta_lr)?)?))
            })
            .collect::<Result<_>>()?;
        Ok(Weights { tensors })
    }
}
