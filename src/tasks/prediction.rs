//! One input's prediction: the `predict --json` schema, the same for every task, scored as
//! transformers' `text-classification` pipeline scores the model's `problem_type`: softmax for
//! single-label, a sigmoid per label for multi-label, the raw output for regression.

use finetune_core::Problem;
use serde::Serialize;

/// The probability at which a multi-label prediction includes a label, when not told.
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// One input's prediction (the `predict --json` schema).
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    /// The most likely label (regression: the output's name, `LABEL_0`).
    pub label: String,
    /// Its probability: softmax for single-label, sigmoid for multi-label; for regression
    /// the predicted value.
    pub score: f64,
    /// The top-k labels' scores.
    pub scores: serde_json::Map<String, serde_json::Value>,
    /// Multi-label: every label whose probability reaches the threshold, most likely first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Regression: the predicted value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The raw logits, in label id order.
    pub logits: Vec<f64>,
}

impl Prediction {
    /// The softmax of `logits` over `labels`, with the `top_k` most likely.
    pub fn from_logits(labels: &[String], logits: Vec<f64>, top_k: usize) -> Self {
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
        let z: f64 = exp.iter().sum();
        let probs = exp.iter().map(|e| e / z).collect();
        Self::ranked(labels, probs, logits, top_k)
    }

    /// A sigmoid per label of `logits`, with the `top_k` most likely and every label whose
    /// probability is at least `threshold`.
    pub fn multi_label(labels: &[String], logits: Vec<f64>, top_k: usize, threshold: f64) -> Self {
        let probs: Vec<f64> = logits.iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect();
        let mut p = Self::ranked(labels, probs.clone(), logits, top_k);
        let mut on: Vec<(usize, f64)> = probs
            .into_iter()
            .enumerate()
            .filter(|&(_, p)| p >= threshold)
            .collect();
        on.sort_by(|a, b| b.1.total_cmp(&a.1));
        p.labels = Some(on.into_iter().map(|(i, _)| name(labels, i)).collect());
        p
    }

    /// A regression output: the value itself.
    pub fn regression(labels: &[String], logits: Vec<f64>) -> Self {
        let value = logits.first().copied().unwrap_or(f64::NAN);
        let label = name(labels, 0);
        Self {
            scores: [(label.clone(), serde_json::json!(value))]
                .into_iter()
                .collect(),
            label,
            score: value,
            labels: None,
            value: Some(value),
            logits,
        }
    }

    /// `probs` ranked: the best as the label, the `top_k` best as the scores.
    fn ranked(labels: &[String], probs: Vec<f64>, logits: Vec<f64>, top_k: usize) -> Self {
        let mut ranked: Vec<(usize, f64)> = probs.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        Self {
            label: name(labels, ranked[0].0),
            score: ranked[0].1,
            scores: ranked
                .iter()
                .take(top_k.max(1))
                .map(|&(i, p)| (name(labels, i), serde_json::json!(p)))
                .collect(),
            labels: None,
            value: None,
            logits,
        }
    }

    /// The predictions of a batch of logits `[N, L]` of a model solving `problem`
    /// (`threshold`: multi-label's).
    pub fn batch(
        problem: &Problem,
        logits: &candle_core::Tensor,
        top_k: usize,
        threshold: f64,
    ) -> finetune_core::Result<Vec<Self>> {
        let rows = logits.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()?;
        Ok(rows
            .into_iter()
            .map(|row| match problem {
                Problem::SingleLabel { labels } => Self::from_logits(labels, row, top_k),
                Problem::MultiLabel { labels } => Self::multi_label(labels, row, top_k, threshold),
                Problem::Regression => Self::regression(&[], row),
            })
            .collect())
    }
}

/// The name of label `i` (`LABEL_i` past the names, as transformers' placeholders).
fn name(labels: &[String], i: usize) -> String {
    labels
        .get(i)
        .cloned()
        .unwrap_or_else(|| format!("LABEL_{i}"))
}
