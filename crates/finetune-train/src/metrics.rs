//! Evaluation metrics: accuracy, macro precision/recall/F1, per-class F1 and the confusion
//! matrix for classification (scikit-learn's definitions, zero where a ratio is 0/0, macro
//! averages over the classes that occur in the truth or the predictions); MSE and
//! Pearson's r for regression.

use finetune_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// Names accepted by `--metric`.
pub const METRIC_NAMES: [&str; 7] = [
    "loss",
    "accuracy",
    "f1",
    "precision",
    "recall",
    "mse",
    "pearson",
];

pub fn check_metric_name(name: &str) -> Result<()> {
    if METRIC_NAMES.contains(&name) {
        Ok(())
    } else {
        Err(Error::config(format!(
            "unknown metric `{name}`: expected one of {}",
            METRIC_NAMES.join(", ")
        )))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// F1 of each class, by label name.
    pub per_class_f1: Vec<(String, f64)>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
}

impl ClassificationMetrics {
    /// Metrics of predicted class ids against true ones, over `labels.len()` classes.
    pub fn compute(labels: &[String], truth: &[usize], predicted: &[usize]) -> Self {
        let k = labels.len();
        let mut confusion = vec![vec![0u64; k]; k];
        for (&t, &p) in truth.iter().zip(predicted) {
            confusion[t][p] += 1;
        }
        let n = truth.len() as f64;
        let correct: u64 = (0..k).map(|i| confusion[i][i]).sum();
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let (mut ps, mut rs, mut fs, mut present) = (0.0, 0.0, 0.0, 0usize);
        let mut per_class_f1 = Vec::with_capacity(k);
        for (c, label) in labels.iter().enumerate() {
            let tp = confusion[c][c] as f64;
            let predicted_c: u64 = (0..k).map(|t| confusion[t][c]).sum();
            let actual_c: u64 = confusion[c].iter().sum();
            let p = ratio(tp, predicted_c as f64);
            let r = ratio(tp, actual_c as f64);
            let f = ratio(2.0 * p * r, p + r);
            // Macro averages run over the classes present in the truth or the predictions,
            // as scikit-learn's do by default (`labels=None`).
            if predicted_c + actual_c > 0 {
                ps += p;
                rs += r;
                fs += f;
                present += 1;
            }
            per_class_f1.push((label.clone(), f));
        }
        let kf = present as f64;
        Self {
            accuracy: ratio(correct as f64, n),
            precision: ratio(ps, kf),
            recall: ratio(rs, kf),
            f1: ratio(fs, kf),
            per_class_f1,
            confusion,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    pub mse: f64,
    pub pearson: f64,
}

impl RegressionMetrics {
    pub fn compute(truth: &[f64], predicted: &[f64]) -> Self {
        let n = truth.len().max(1) as f64;
        let mse = truth
            .iter()
            .zip(predicted)
            .map(|(t, p)| (t - p).powi(2))
            .sum::<f64>()
            / n;
        let mt = truth.iter().sum::<f64>() / n;
        let mp = predicted.iter().sum::<f64>() / n;
        let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
        for (t, p) in truth.iter().zip(predicted) {
            sxy += (t - mt) * (p - mp);
            sxx += (t - mt).powi(2);
            syy += (p - mp).powi(2);
        }
        let pearson = if sxx > 0.0 && syy > 0.0 {
            sxy / (sxx * syy).sqrt()
        } else {
            0.0
        };
        Self { mse, pearson }
    }
}

/// One evaluation: the mean loss, the sample count and the problem's metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    pub loss: f64,
    pub samples: usize,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub classification: Option<ClassificationMetrics>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub regression: Option<RegressionMetrics>,
}

impl EvalMetrics {
    /// The value of a metric named by `--metric`, if this evaluation has it.
    pub fn get(&self, name: &str) -> Option<f64> {
        let c = self.classification.as_ref();
        let r = self.regression.as_ref();
        match name {
            "loss" => Some(self.loss),
            "accuracy" => c.map(|c| c.accuracy),
            "f1" => c.map(|c| c.f1),
            "precision" => c.map(|c| c.precision),
            "recall" => c.map(|c| c.recall),
            "mse" => r.map(|r| r.mse),
            "pearson" => r.map(|r| r.pearson),
            _ => None,
        }
    }
}
