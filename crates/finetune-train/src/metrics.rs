//! Evaluation metrics: accuracy, macro precision/recall/F1, per-class F1 and the confusion
//! matrix for classification (scikit-learn's definitions, zero where a ratio is 0/0, macro
//! averages over the classes that occur in the truth or the predictions); MSE and
//! Pearson's r for regression; for multi-label problems exact-match accuracy, micro-averaged
//! precision/recall/F1 (scikit-learn's `average="micro"`), macro F1 over the labels present in
//! the truth or the predictions, and each label's F1.

use serde::{Deserialize, Serialize};

finetune_core::named_enum! {
    /// What `--metric` picks the best checkpoint and early stopping by. For multi-label
    /// problems `accuracy` is the exact-match accuracy and `f1`, `precision`, `recall` are the
    /// micro averages; for token classification they are the entity-level micro averages
    /// (seqeval's) and the token accuracy.
    pub enum Metric("metric") {
        /// The mean evaluation loss (lower is better).
        Loss = "loss",
        /// Share of samples predicted right (multi-label: the whole label set).
        Accuracy = "accuracy",
        /// Macro-averaged F1 (multi-label: micro-averaged).
        F1 = "f1",
        /// Macro-averaged precision (multi-label: micro-averaged).
        Precision = "precision",
        /// Macro-averaged recall (multi-label: micro-averaged).
        Recall = "recall",
        /// Mean squared error of a regression (lower is better).
        Mse = "mse",
        /// Pearson's r between a regression's predictions and truths.
        Pearson = "pearson",
        /// Mean absolute error of a regression (lower is better).
        Mae = "mae",
        /// Spearman's rank correlation between a regression's predictions and truths.
        Spearman = "spearman",
    }
}

impl Metric {
    /// Whether a larger value is better (all but the losses).
    pub fn greater_is_better(self) -> bool {
        !matches!(self, Metric::Loss | Metric::Mse | Metric::Mae)
    }
}

/// The metrics of a single-label classification (scikit-learn's `accuracy_score` and
/// `precision_recall_fscore_support(average="macro")`, see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// Share of samples whose predicted class is the true one.
    pub accuracy: f64,
    /// Precision averaged over the classes present in the truth or the predictions.
    pub precision: f64,
    /// Recall averaged over the classes present in the truth or the predictions.
    pub recall: f64,
    /// F1 averaged over the classes present in the truth or the predictions (the mean of the
    /// per-class F1s, not the F1 of the mean precision and recall).
    pub f1: f64,
    /// F1 of each class, by label name.
    pub per_class_f1: Vec<(String, f64)>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
}

impl ClassificationMetrics {
    /// Metrics of predicted class ids against true ones, over `labels.len()` classes.
    ///
    /// # Panics
    ///
    /// If a class id is not below `labels.len()`.
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

/// The metrics of a regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    /// Mean squared error of the predictions.
    pub mse: f64,
    /// Mean absolute error of the predictions.
    #[serde(default)]
    pub mae: f64,
    /// Pearson's correlation coefficient of predictions and truths; 0 when either is
    /// constant.
    pub pearson: f64,
    /// Spearman's rank correlation (Pearson's r of the ranks, ties given their average rank,
    /// as `scipy.stats.spearmanr`); 0 when either is constant.
    #[serde(default)]
    pub spearman: f64,
}

impl RegressionMetrics {
    /// Metrics of predicted values against true ones, pair by pair (0 for all on no data).
    pub fn compute(truth: &[f64], predicted: &[f64]) -> Self {
        let n = truth.len().max(1) as f64;
        let pairs = || truth.iter().zip(predicted);
        Self {
            mse: pairs().map(|(t, p)| (t - p).powi(2)).sum::<f64>() / n,
            mae: pairs().map(|(t, p)| (t - p).abs()).sum::<f64>() / n,
            pearson: pearson(truth, predicted),
            spearman: pearson(&ranks(truth), &ranks(predicted)),
        }
    }
}

/// Pearson's r of two series; 0 when either is constant.
fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().max(1) as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sxy += (x - ma) * (y - mb);
        sxx += (x - ma).powi(2);
        syy += (y - mb).powi(2);
    }
    if sxx > 0.0 && syy > 0.0 {
        sxy / (sxx * syy).sqrt()
    } else {
        0.0
    }
}

/// 1-based ranks of `v`, ties sharing their average rank.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        order[i..=j].iter().for_each(|&k| out[k] = avg);
        i = j + 1;
    }
    out
}

/// The metrics of a multi-label classification, a label predicted when its logit is positive
/// (sigmoid > 0.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiLabelMetrics {
    /// Share of samples whose whole label set is predicted exactly (scikit-learn's
    /// `accuracy_score` on multi-label data). Its own name, not `accuracy`: the JSON of an
    /// evaluation is flat and must say which kind of metrics it holds.
    pub exact_match: f64,
    /// Precision over every (sample, label) pair: true positives over predicted positives.
    pub micro_precision: f64,
    /// Recall over every (sample, label) pair: true positives over actual positives.
    pub micro_recall: f64,
    /// F1 of the micro-averaged counts.
    pub micro_f1: f64,
    /// F1 averaged over the labels present in the truth or the predictions.
    pub macro_f1: f64,
    /// F1 of each label, by name.
    pub per_label_f1: Vec<(String, f64)>,
}

impl MultiLabelMetrics {
    /// Metrics of 0/1 predictions against 0/1 truths, both `[samples][labels]`.
    ///
    /// # Panics
    ///
    /// If a row is shorter than `labels`.
    pub fn compute(labels: &[String], truth: &[Vec<bool>], predicted: &[Vec<bool>]) -> Self {
        let k = labels.len();
        let (mut tp, mut fp, mut fnn) = (vec![0u64; k], vec![0u64; k], vec![0u64; k]);
        let mut exact = 0u64;
        for (t, p) in truth.iter().zip(predicted) {
            exact += u64::from(t == p);
            for c in 0..k {
                match (t[c], p[c]) {
                    (true, true) => tp[c] += 1,
                    (false, true) => fp[c] += 1,
                    (true, false) => fnn[c] += 1,
                    (false, false) => {}
                }
            }
        }
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let f1 = |tp: u64, fp: u64, fnn: u64| ratio(2.0 * tp as f64, (2 * tp + fp + fnn) as f64);
        let per_label_f1: Vec<(String, f64)> = labels
            .iter()
            .enumerate()
            .map(|(c, l)| (l.clone(), f1(tp[c], fp[c], fnn[c])))
            .collect();
        let present: Vec<f64> = (0..k)
            .filter(|&c| tp[c] + fp[c] + fnn[c] > 0)
            .map(|c| per_label_f1[c].1)
            .collect();
        let (stp, sfp, sfn) = (
            tp.iter().sum::<u64>(),
            fp.iter().sum::<u64>(),
            fnn.iter().sum::<u64>(),
        );
        Self {
            exact_match: ratio(exact as f64, truth.len() as f64),
            micro_precision: ratio(stp as f64, (stp + sfp) as f64),
            micro_recall: ratio(stp as f64, (stp + sfn) as f64),
            micro_f1: f1(stp, sfp, sfn),
            macro_f1: ratio(present.iter().sum(), present.len() as f64),
            per_label_f1,
        }
    }
}

/// One evaluation: the mean loss, the sample count and the problem's metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// The model's loss (without label smoothing), batch means weighted by their samples
    /// (transformers' `eval_loss`).
    pub loss: f64,
    /// Samples evaluated.
    pub samples: usize,
    /// A single-label problem's metrics (their fields at the top level of the JSON).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub classification: Option<ClassificationMetrics>,
    /// A regression's metrics (their fields at the top level of the JSON).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub regression: Option<RegressionMetrics>,
    /// A multi-label problem's metrics (their fields at the top level of the JSON).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub multi_label: Option<MultiLabelMetrics>,
    /// A token classification's entity-level metrics (seqeval's; their fields at the top
    /// level of the JSON).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<crate::entities::EntityMetrics>,
}

impl EvalMetrics {
    /// The value of a metric named by `--metric`, if this evaluation has it.
    pub fn get(&self, metric: Metric) -> Option<f64> {
        let c = self.classification.as_ref();
        let r = self.regression.as_ref();
        let m = self.multi_label.as_ref();
        let e = self.entities.as_ref();
        match metric {
            Metric::Loss => Some(self.loss),
            // Multi-label: exact-match accuracy and micro-averaged precision/recall/F1;
            // tokens: token accuracy and entity-level micro averages.
            Metric::Accuracy => c
                .map(|c| c.accuracy)
                .or(m.map(|m| m.exact_match))
                .or(e.map(|e| e.accuracy)),
            Metric::F1 => c
                .map(|c| c.f1)
                .or(m.map(|m| m.micro_f1))
                .or(e.map(|e| e.f1)),
            Metric::Precision => c
                .map(|c| c.precision)
                .or(m.map(|m| m.micro_precision))
                .or(e.map(|e| e.precision)),
            Metric::Recall => c
                .map(|c| c.recall)
                .or(m.map(|m| m.micro_recall))
                .or(e.map(|e| e.recall)),
            Metric::Mse => r.map(|r| r.mse),
            Metric::Pearson => r.map(|r| r.pearson),
            Metric::Mae => r.map(|r| r.mae),
            Metric::Spearman => r.map(|r| r.spearman),
        }
    }
}
