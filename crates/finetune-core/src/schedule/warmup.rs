//! Linear warm-up, shared by every schedule except `one-cycle`.
//!
//! During the first `warmup_steps` optimizer steps the lr factor is
//! `step / max(1, warmup_steps)`, transformers' formula: it starts at 0 and reaches 1 at step
//! `warmup_steps`, where the schedule proper takes over.

use crate::error::{Error, Result};

/// The warm-up factor at `step`, or `None` once warm-up is over (`step >= warmup_steps`).
pub fn warmup_factor(step: u64, warmup_steps: u64) -> Option<f64> {
    (step < warmup_steps).then(|| step as f64 / warmup_steps.max(1) as f64)
}

/// Warm-up steps from a fraction of the run: `ceil(ratio * total_steps)`, as transformers'
/// `TrainingArguments.get_warmup_steps`. `ratio` must lie in `[0, 1]`.
pub fn warmup_from_ratio(ratio: f64, total_steps: u64) -> Result<u64> {
    if !(0.0..=1.0).contains(&ratio) {
        return Err(Error::config(format!(
            "`warmup_ratio` must lie in [0, 1], got {ratio}"
        )));
    }
    Ok((total_steps as f64 * ratio).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_and_ratio() {
        assert_eq!(warmup_factor(0, 4), Some(0.0));
        assert_eq!(warmup_factor(3, 4), Some(0.75));
        assert_eq!(warmup_factor(4, 4), None);
        assert_eq!(warmup_factor(0, 0), None);
        assert_eq!(warmup_from_ratio(0.1, 95).unwrap(), 10);
        assert_eq!(warmup_from_ratio(0.1, 100).unwrap(), 10);
        assert_eq!(warmup_from_ratio(0.0, 100).unwrap(), 0);
        assert_eq!(warmup_from_ratio(1.0, 7).unwrap(), 7);
        assert!(warmup_from_ratio(1.5, 7).is_err());
        assert!(warmup_from_ratio(-0.1, 7).is_err());
        assert!(warmup_from_ratio(f64::NAN, 7).is_err());
    }
}
