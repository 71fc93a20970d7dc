//! Best-metric tracking and early stopping (transformers' `EarlyStoppingCallback`: stop after
//! `patience` evaluations in a row without improvement).

use serde::{Deserialize, Serialize};

/// The best value of the chosen metric so far, and how many evaluations have not beaten it
/// (transformers' `best_metric`, `best_model_checkpoint` and the early-stopping counter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestTracker {
    /// Whether a larger value is better (see [`crate::Metric::greater_is_better`]).
    pub greater_is_better: bool,
    /// The best value seen; `None` until a finite one is.
    pub best: Option<f64>,
    /// The optimizer step of the best value (the checkpoint `--load-best-at-end` loads).
    pub best_step: Option<u64>,
    /// Evaluations since the last improvement.
    pub bad_evals: usize,
}

impl BestTracker {
    /// A tracker that has seen nothing yet.
    pub fn new(greater_is_better: bool) -> Self {
        Self {
            greater_is_better,
            best: None,
            best_step: None,
            bad_evals: 0,
        }
    }

    /// Records an evaluation; returns whether it is a new best. Only a strict improvement
    /// counts (an equal value is not better), and a first value must be finite.
    pub fn observe(&mut self, value: f64, step: u64) -> bool {
        let better = match self.best {
            None => value.is_finite(),
            Some(b) if self.greater_is_better => value > b,
            Some(b) => value < b,
        };
        if better {
            self.best = Some(value);
            self.best_step = Some(step);
            self.bad_evals = 0;
        } else {
            self.bad_evals += 1;
        }
        better
    }

    /// Whether `patience` evaluations in a row have brought no improvement (never when
    /// `patience` is `None`).
    pub fn should_stop(&self, patience: Option<usize>) -> bool {
        patience.is_some_and(|p| self.bad_evals >= p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_after_patience_evaluations_without_improvement() {
        let mut t = BestTracker::new(true);
        assert!(t.observe(0.5, 10));
        assert!(!t.observe(0.5, 20), "equal is not better");
        assert!(!t.should_stop(Some(2)));
        assert!(!t.observe(0.4, 30));
        assert!(t.should_stop(Some(2)));
        assert!(t.observe(0.6, 40));
        assert_eq!((t.best, t.best_step, t.bad_evals), (Some(0.6), Some(40), 0));
        let mut l = BestTracker::new(false);
        assert!(l.observe(1.0, 1) && l.observe(0.9, 2) && !l.observe(0.95, 3));
        assert!(!l.should_stop(None));
    }
}
