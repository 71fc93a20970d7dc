//! `output/train_summary.json`: what a run achieved and what it cost.

use crate::metrics::EvalMetrics;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    pub global_step: u64,
    pub epochs_completed: f64,
    pub train_loss: Option<f64>,
    pub final_eval: Option<EvalMetrics>,
    pub best_metric: Option<f64>,
    pub best_step: Option<u64>,
    pub stopped_early: bool,
    pub interrupted: bool,
    pub runtime_s: f64,
    pub train_samples_per_s: f64,
    /// Peak resident memory of the process (Linux `VmHWM`), when known.
    pub peak_memory_bytes: Option<u64>,
    pub trainable_params: usize,
    pub total_params: usize,
    /// Whether frozen-feature caching served the run (see [`crate::feature_cache`]).
    #[serde(default)]
    pub feature_cache: Option<crate::FeatureCacheReport>,
}

/// The process's peak resident set size, from `/proc/self/status`.
pub fn peak_memory_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
