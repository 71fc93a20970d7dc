//! Best-metric tracking and early stopping (transformers' `EarlyStoppingCallback`: stop after
//! `patience` evaluations in a row without improvement).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestTracker {
    pub greater_is_better: bool,
    pub best: Option<f64>,
    pub best_step: Option<u64>,
    /// Evaluations since the last improvement.
    pub bad_evals: usize,
}

impl BestTracker {
    pub fn new(greater_is_better: bool) -> Self {
        Self {
            greater_is_better,
            best: None,
            best_step: None,
            bad_evals: 0,
        }
    }

    /// Records an evaluation; returns whether it is a new best.
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
