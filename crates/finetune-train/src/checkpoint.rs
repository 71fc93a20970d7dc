//! Checkpoints: `output/checkpoint-STEP/` holding the model's tensors (`model.safetensors`,
//! the store's names), the optimizer state (`optimizer.json` + `optimizer.safetensors`), the
//! scheduler (`scheduler.json`) and the learner's own state (`trainer_state.json`: step,
//! epoch, model RNG, best metric, log history, config). A checkpoint is written into a
//! temporary folder and renamed into place, so a crash never leaves a half checkpoint under a
//! `checkpoint-*` name.

use crate::early_stop::BestTracker;
use crate::TrainConfig;
use finetune_core::fsutil::write_bytes_atomically;
use finetune_core::optim::OptimizerState;
use finetune_core::safetensors_io::Checkpoint;
use finetune_core::schedule::SchedulerState;
use finetune_core::{Error, ParamStore, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The model's tensors in a checkpoint folder, under the store's names (what a resume reads;
/// the export may have written the same file first, in its own names).
pub const MODEL_FILE: &str = "model.safetensors";
/// The LR scheduler's state in a checkpoint folder (transformers' `scheduler.pt`).
pub const SCHEDULER_FILE: &str = "scheduler.json";
/// The learner's [`TrainerState`] in a checkpoint folder; a folder without it is not a
/// complete checkpoint (transformers' `trainer_state.json`).
pub const STATE_FILE: &str = "trainer_state.json";
const PREFIX: &str = "checkpoint-";

/// The learner's state at an optimizer-step boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps done.
    pub global_step: u64,
    /// Optimizer steps of the whole run (`--max-steps`, or epochs × steps per epoch); a
    /// checkpoint resumes only a run of the same length.
    pub total_steps: u64,
    /// Optimizer steps per epoch (batches per epoch over `--grad-accum`, rounded up).
    pub steps_per_epoch: u64,
    /// Training samples consumed so far, skipped steps included.
    pub samples_seen: u64,
    /// The model's dropout RNG, when it has one.
    pub model_rng: Option<[u64; 4]>,
    /// The best evaluation so far and the early-stopping count.
    pub best: BestTracker,
    /// Every logged record so far (also in `metrics.jsonl`).
    pub log_history: Vec<serde_json::Value>,
    /// The train loss summed over the samples of the steps since the last train record, and
    /// their count: a resumed run's next record averages over the same steps as the
    /// uninterrupted run's.
    #[serde(default)]
    pub pending_loss: f64,
    /// The number of samples summed in `pending_loss`.
    #[serde(default)]
    pub pending_samples: u64,
    /// `--fp16`'s loss scale and its count of finite steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scaler: Option<crate::grad_scaler::GradScaler>,
    /// The number of ranks of a distributed run (absent for one process): a checkpoint
    /// resumes with the same number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world_size: Option<usize>,
    /// Every rank's dropout RNG, in rank order, for a distributed run (`model_rng` is rank
    /// 0's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rank_rngs: Vec<[u64; 4]>,
    /// The settings of the run that wrote the checkpoint.
    pub config: TrainConfig,
}

/// The checkpoint folder for `step` under `output`.
pub fn dir_for(output: &Path, step: u64) -> PathBuf {
    output.join(format!("{PREFIX}{step}"))
}

/// Complete checkpoints under `output`, by step.
pub fn list(output: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(output)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix(PREFIX)?.parse::<u64>().ok()?;
            let p = e.path();
            p.join(STATE_FILE).is_file().then_some((step, p))
        })
        .collect();
    out.sort();
    out
}

/// Resolves `--resume PATH|latest`.
pub fn resolve(output: &Path, which: &str) -> Result<PathBuf> {
    if which == "latest" {
        return list(output).pop().map(|(_, p)| p).ok_or_else(|| {
            Error::config(format!(
                "--resume latest: no checkpoint-* folder with {STATE_FILE} under {}",
                output.display()
            ))
        });
    }
    let p = PathBuf::from(which);
    if !p.join(STATE_FILE).is_file() {
        return Err(Error::config(format!(
            "--resume {which}: not a checkpoint folder (no {STATE_FILE})"
        )));
    }
    Ok(p)
}

/// Writes a checkpoint for `state.global_step`, atomically; returns its folder. `export`
/// first writes the model in its ecosystem's format (so a checkpoint folder loads like any
/// exported model); the store's tensors then (re)write `model.safetensors` under the store's
/// names, so resuming never depends on the export format.
pub fn save(
    output: &Path,
    export: &dyn Fn(&Path) -> Result<()>,
    store: &ParamStore,
    optimizer: &OptimizerState,
    scheduler: &SchedulerState,
    state: &TrainerState,
) -> Result<PathBuf> {
    let final_dir = dir_for(output, state.global_step);
    let tmp = output.join(format!(
        ".{PREFIX}{}.tmp-{}",
        state.global_step,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let written = (|| {
        export(&tmp)?;
        let kept: std::collections::HashSet<String> = finetune_core::lora::checkpoint_names(store)
            .into_iter()
            .collect();
        store.save(&tmp.join(MODEL_FILE), |n| {
            kept.contains(n).then(|| n.to_string())
        })?;
        optimizer.save(&tmp)?;
        write_bytes_atomically(&tmp.join(SCHEDULER_FILE), scheduler.to_json()?.as_bytes())?;
        let json = serde_json::to_vec_pretty(state)
            .map_err(|e| Error::config(format!("cannot serialise the trainer state: {e}")))?;
        write_bytes_atomically(&tmp.join(STATE_FILE), &json)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| Error::io(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
    Ok(final_dir)
}

/// Removes what a killed run left half written in `output`: temporary checkpoint folders
/// (`.checkpoint-STEP.tmp-PID`) and temporary files (`.NAME.tmp-PID`) of other processes. Returns
/// the paths removed.
pub fn remove_stale_temps(output: &Path) -> Result<Vec<PathBuf>> {
    let own = std::process::id().to_string();
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(output).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, pid)) = name.rsplit_once(".tmp-") else {
            continue;
        };
        if !name.starts_with('.') || pid == own || pid.parse::<u32>().is_err() {
            continue;
        }
        let p = entry.path();
        let gone = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        gone.map_err(|e| Error::io(&p, e))?;
        removed.push(p);
    }
    Ok(removed)
}

/// What a checkpoint folder holds, read back.
pub struct Loaded {
    /// The optimizer's state (`optimizer.json` + `optimizer.safetensors`).
    pub optimizer: OptimizerState,
    /// The LR scheduler's state ([`SCHEDULER_FILE`]).
    pub scheduler: SchedulerState,
    /// The learner's state ([`STATE_FILE`]).
    pub state: TrainerState,
}

/// Loads a checkpoint: copies its tensors into `store` (every tensor a checkpoint of this store
/// holds, see [`finetune_core::lora::checkpoint_names`], must be there with its shape) and
/// returns the rest.
pub fn load(dir: &Path, store: &ParamStore) -> Result<Loaded> {
    let ckpt = Checkpoint::open(&dir.join(MODEL_FILE))?;
    let device = store.device();
    for name in finetune_core::lora::checkpoint_names(store) {
        if !ckpt.contains(&name) {
            return Err(Error::Record {
                path: dir.join(MODEL_FILE),
                msg: format!("tensor `{name}` of the model is missing"),
            });
        }
        let want = store.get(&name)?;
        let t = ckpt.load(&name, &device)?.to_dtype(want.dtype())?;
        if t.dims() != want.dims() {
            return Err(Error::Shape {
                name,
                expected: want.dims().to_vec(),
                got: t.dims().to_vec(),
            });
        }
        store.set(&name, &t)?;
    }
    let optimizer = OptimizerState::load(dir)?;
    let read = |f: &str| {
        let p = dir.join(f);
        std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))
    };
    let scheduler = SchedulerState::from_json(&read(SCHEDULER_FILE)?)?;
    let state: TrainerState =
        serde_json::from_str(&read(STATE_FILE)?).map_err(|e| Error::Record {
            path: dir.join(STATE_FILE),
            msg: e.to_string(),
        })?;
    Ok(Loaded {
        optimizer,
        scheduler,
        state,
    })
}

/// Deletes the oldest checkpoints beyond `limit`, never the newest (what a resume continues
/// from) nor the one at `keep` (the best): with `limit` 1 and an older best, both stay, as in
/// transformers.
pub fn rotate(output: &Path, limit: Option<usize>, keep: Option<u64>) -> Result<()> {
    let Some(limit) = limit else { return Ok(()) };
    let mut all = list(output);
    let mut excess = all.len().saturating_sub(limit);
    all.pop();
    for (step, p) in all {
        if excess == 0 {
            break;
        }
        if Some(step) == keep {
            continue;
        }
        std::fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        excess -= 1;
    }
    Ok(())
}
