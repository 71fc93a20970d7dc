//! One input's prediction: the `predict --json` schema, the same for every task.

use serde::Serialize;

/// One input's prediction (the `predict --json` schema).
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    /// The most likely label.
    pub label: String,
    /// Its softmax probability.
    pub score: f64,
    /// The top-k labels' probabilities.
    pub scores: serde_json::Map<String, serde_json::Value>,
    /// The raw logits, in label id order.
    pub logits: Vec<f64>,
}

impl Prediction {
    /// The softmax of `logits` over `labels`, with the `top_k` most likely.
    pub fn from_logits(labels: &[String], logits: Vec<f64>, top_k: usize) -> Self {
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
        let z: f64 = exp.iter().sum();
        let mut ranked: Vec<(usize, f64)> = exp.iter().map(|e| e / z).enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let name = |i: usize| {
            labels
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("LABEL_{i}"))
        };
        Self {
            label: name(ranked[0].0),
            score: ranked[0].1,
            scores: ranked
                .iter()
                .take(top_k.max(1))
                .map(|&(i, p)| (name(i), serde_json::json!(p)))
                .collect(),
            logits,
        }
    }

    /// The predictions of a batch of logits `[N, L]`.
    pub fn batch(
        labels: &[String],
        logits: &candle_core::Tensor,
        top_k: usize,
    ) -> finetune_core::Result<Vec<Self>> {
        Ok(logits
            .to_dtype(candle_core::DType::F64)?
            .to_vec2::<f64>()?
            .into_iter()
            .map(|row| Self::from_logits(labels, row, top_k))
            .collect())
    }
}
