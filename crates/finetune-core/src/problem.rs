//! transformers' `problem_type`: what a classifier's logits mean, and so which loss trains
//! them. One enum for every model crate (the `problem_type` key of their `config.json`) and
//! for the `--problem-type` setting, with the losses PyTorch computes for each.

use crate::{Error, Result};
use candle_core::Tensor;
use finetune_kernels::ops;
use serde::{Deserialize, Serialize};

/// transformers' `problem_type` (see [`ProblemType::loss`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemType {
    /// One class per example: softmax cross-entropy over class ids (`CrossEntropyLoss`).
    SingleLabelClassification,
    /// Any number of classes per example: sigmoid binary cross-entropy over 0/1 targets
    /// (`BCEWithLogitsLoss`).
    MultiLabelClassification,
    /// One real value per output: mean squared error (`MSELoss`).
    Regression,
}

impl ProblemType {
    /// Every problem type, in the order messages list them.
    pub const ALL: [ProblemType; 3] = [
        Self::SingleLabelClassification,
        Self::MultiLabelClassification,
        Self::Regression,
    ];

    /// transformers' spelling (`multi_label_classification`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SingleLabelClassification => "single_label_classification",
            Self::MultiLabelClassification => "multi_label_classification",
            Self::Regression => "regression",
        }
    }

    /// The loss transformers computes for this problem: cross-entropy (with label smoothing)
    /// over class ids `[B]`; BCE-with-logits over `[B, num_labels]` 0/1 targets; MSE over `[B]`
    /// targets for regression.
    pub fn loss(self, logits: &Tensor, targets: &Tensor, label_smoothing: f64) -> Result<Tensor> {
        match self {
            Self::SingleLabelClassification => {
                Ok(ops::cross_entropy(logits, targets, label_smoothing, None)?)
            }
            Self::MultiLabelClassification => Ok(ops::binary_cross_entropy_with_logits(
                logits,
                &targets.to_dtype(logits.dtype())?,
            )?),
            Self::Regression => {
                let pred = logits.flatten_all()?;
                Ok(ops::mse(
                    &pred,
                    &targets.flatten_all()?.to_dtype(pred.dtype())?,
                )?)
            }
        }
    }

    /// [`Self::loss`] with one weight per label: `CrossEntropyLoss(weight=…)`'s class weights
    /// for single-label classification, `BCEWithLogitsLoss(pos_weight=…)`'s positive-example
    /// weights for multi-label; regression has no per-label weight.
    pub fn weighted_loss(
        self,
        logits: &Tensor,
        targets: &Tensor,
        label_smoothing: f64,
        weights: &[f64],
    ) -> Result<Tensor> {
        match self {
            Self::SingleLabelClassification => Ok(ops::weighted_cross_entropy(
                logits,
                targets,
                label_smoothing,
                None,
                weights,
            )?),
            Self::MultiLabelClassification => Ok(ops::binary_cross_entropy_with_logits_weighted(
                logits,
                &targets.to_dtype(logits.dtype())?,
                weights,
            )?),
            Self::Regression => Err(Error::config(
                "per-label weights (--class-weights, --pos-weight) do not apply to regression",
            )),
        }
    }
}

impl std::fmt::Display for ProblemType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProblemType {
    type Err = Error;

    /// transformers' spellings; `-` for `_` is accepted too.
    fn from_str(s: &str) -> Result<Self> {
        let want = s.trim().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == want)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
                Error::config(format!(
                    "unknown problem type `{s}` (expected one of {})",
                    names.join(", ")
                ))
            })
    }
}
