//! When a run evaluates during training: transformers' `eval_strategy` (`no`, `steps`,
//! `epoch`), resolved from `--eval-strategy` and `--eval-steps`.

finetune_core::named_enum! {
    /// When to evaluate during training (transformers' `IntervalStrategy`).
    pub enum EvalStrategy("evaluation strategy") {
        /// Never during training (a `--test` set is still evaluated after it).
        No = "no",
        /// Every `--eval-steps` optimizer steps (default: `--logging-steps`), counted over
        /// the whole run, and at the last step.
        Steps = "steps",
        /// At the end of each epoch, and at the last step.
        Epoch = "epoch",
    }
}

impl EvalStrategy {
    /// The strategy a run follows: the one given, else `steps` when an interval is given,
    /// else `epoch`.
    pub fn resolve(given: Option<Self>, eval_steps: Option<u64>) -> Self {
        match (given, eval_steps) {
            (Some(s), _) => s,
            (None, Some(_)) => EvalStrategy::Steps,
            (None, None) => EvalStrategy::Epoch,
        }
    }

    /// Whether to evaluate after global step `done` (counted from 1) of a run of `total`
    /// steps, `per_epoch` an epoch, every `interval` steps under `steps`.
    pub fn is_due(self, done: u64, interval: u64, per_epoch: u64, total: u64) -> bool {
        let on_schedule = match self {
            EvalStrategy::No => return false,
            EvalStrategy::Steps => done.is_multiple_of(interval.max(1)),
            EvalStrategy::Epoch => done.is_multiple_of(per_epoch.max(1)),
        };
        on_schedule || done == total
    }
}

#[cfg(test)]
mod tests {
    use super::EvalStrategy::{self, *};

    fn due_steps(s: EvalStrategy, interval: u64, per_epoch: u64, total: u64) -> Vec<u64> {
        (1..=total)
            .filter(|&d| s.is_due(d, interval, per_epoch, total))
            .collect()
    }

    #[test]
    fn steps_follow_the_interval_not_the_epochs() {
        // 2-step epochs, every 4 steps: not at the epoch ends 2 and 6.
        assert_eq!(due_steps(Steps, 4, 2, 8), [4, 8]);
        // The last step is evaluated even off the interval.
        assert_eq!(due_steps(Steps, 4, 2, 6), [4, 6]);
    }

    #[test]
    fn epoch_and_no() {
        assert_eq!(due_steps(Epoch, 4, 3, 9), [3, 6, 9]);
        assert_eq!(due_steps(Epoch, 4, 3, 7), [3, 6, 7]);
        assert!(due_steps(No, 1, 1, 5).is_empty());
    }

    #[test]
    fn resolve_prefers_the_given_strategy() {
        assert_eq!(EvalStrategy::resolve(None, None), Epoch);
        assert_eq!(EvalStrategy::resolve(None, Some(3)), Steps);
        assert_eq!(EvalStrategy::resolve(Some(Epoch), None), Epoch);
        assert_eq!(EvalStrategy::resolve(Some(No), Some(3)), No);
    }
}
