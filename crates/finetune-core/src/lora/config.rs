//! The LoRA settings of a run: rank, alpha, dropout, targets (PEFT's `LoraConfig` fields), and
//! what an adapter records of the run it was trained in.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// PEFT's `LoraConfig`, the fields this project supports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// The rank `r` (≥ 1).
    pub r: usize,
    /// `lora_alpha`: the scale is `alpha / r` (`alpha / √r` with rsLoRA).
    pub alpha: f64,
    /// Dropout on the adapter's input, live only in training, in `[0, 1)`.
    pub dropout: f64,
    /// The targeted modules: names (a module matches a name it equals or ends with after a
    /// dot, as PEFT's list), globs over the module path, or [`super::ALL_LINEAR`].
    pub target: Vec<String>,
    /// rsLoRA's scale `alpha / √r`.
    pub use_rslora: bool,
}

impl LoraConfig {
    /// The factor the adapter's output is multiplied by.
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.r as f64).sqrt()
        } else {
            self.alpha / self.r as f64
        }
    }

    /// Refuses a rank of 0, a dropout outside `[0, 1)`, a non-finite alpha or no target.
    pub fn validate(&self) -> Result<()> {
        if self.r == 0 {
            return Err(Error::config("`lora_r` must be at least 1 (got 0)"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config(format!(
                "`lora_dropout` must be in [0, 1) (got {})",
                self.dropout
            )));
        }
        if !self.alpha.is_finite() {
            return Err(Error::config(format!(
                "`lora_alpha` must be a finite number (got {})",
                self.alpha
            )));
        }
        if self.target.iter().all(|t| t.trim().is_empty()) {
            return Err(Error::config("`lora_target` names no module"));
        }
        Ok(())
    }
}

/// What a store's adapters were made with: the config and the facts PEFT's
/// `adapter_config.json` records.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSettings {
    /// Rank, alpha, dropout, targets.
    pub config: LoraConfig,
    /// The modules given adapters, in build order.
    pub modules: Vec<String>,
    /// The head's modules, trained whole (PEFT's `modules_to_save`: `classifier`, `fc`).
    pub modules_to_save: Vec<String>,
    /// The model the adapters apply to (a Hub id or a path): `base_model_name_or_path`.
    pub base_model: String,
    /// The base model's revision, when it came from the Hub.
    pub revision: Option<String>,
    /// PEFT's `task_type` (`SEQ_CLS`), `None` for a model PEFT has no task for (timm).
    pub task_type: Option<String>,
}
