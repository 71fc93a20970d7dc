//! `output/train_summary.json`: what a run achieved and what it cost.

use crate::metrics::EvalMetrics;
use serde::{Deserialize, Serialize};

/// What [`Learner::fit`](crate::Learner::fit) returns and writes to `train_summary.json`
/// (transformers' `TrainOutput` and its `metrics`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Optimizer steps done, those before a resume included (transformers' `global_step`).
    pub global_step: u64,
    /// `global_step` over the steps per epoch: epochs done, as a fraction (transformers'
    /// `epoch`).
    pub epochs_completed: f64,
    /// The mean training loss over the optimizer steps this process trained: the sum of each
    /// step's mean loss over the step count (transformers' `train_loss`, total loss / steps).
    /// A resumed run averages over the steps after the checkpoint only; steps skipped under
    /// `--on-nan skip` are not counted. `None` when no step trained.
    pub train_loss: Option<f64>,
    /// The last evaluation (of the best checkpoint under `--load-best-at-end`); `None` without
    /// an evaluation set, or after an interrupt (it may predate the last steps).
    pub final_eval: Option<EvalMetrics>,
    /// The best value of `--metric` over the evaluations (transformers' `best_metric`).
    pub best_metric: Option<f64>,
    /// The optimizer step of `best_metric`: its checkpoint is `checkpoint-STEP`.
    pub best_step: Option<u64>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Whether the interrupt flag (Ctrl-C) ended the run: its checkpoint was saved, but the
    /// model was not exported.
    pub interrupted: bool,
    /// Wall-clock seconds of this process's run, from the end of set-up (resume and feature
    /// cache done) to the summary, evaluations, checkpoints and export included
    /// (transformers' `train_runtime`).
    pub runtime_s: f64,
    /// Training samples per second of `runtime_s`: the steps this process trained times the
    /// run's mean samples per step (transformers' `train_samples_per_second`).
    pub train_samples_per_s: f64,
    /// Peak resident memory of the process (Linux `VmHWM`), when known.
    pub peak_memory_bytes: Option<u64>,
    /// Elements of the parameters that train under the first epoch's freeze mask, as the run's
    /// first line says (PEFT's `trainable params`).
    pub trainable_params: usize,
    /// Elements of every parameter, frozen ones included (buffers excluded).
    pub total_params: usize,
    /// Whether frozen-feature caching served the run (see [`crate::feature_cache`]).
    #[serde(default)]
    pub feature_cache: Option<crate::FeatureCacheReport>,
    /// The run's distillation (`--teacher`), when it distilled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distillation: Option<crate::DistillReport>,
    /// A data-parallel run's ranks (`--distributed`); absent for one process. Samples per
    /// second count every rank's samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed: Option<DistributedReport>,
}

/// How a data-parallel run was spread.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DistributedReport {
    /// The collective engine: `mpi`, `nccl`.
    pub backend: String,
    /// The number of ranks (processes).
    pub world_size: usize,
    /// Samples per micro-batch over every rank: `world_size` × `--batch-size`.
    pub global_batch_size: usize,
}

/// The process's peak resident set size, from `/proc/self/status`.
pub fn peak_memory_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
