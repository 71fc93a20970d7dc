//! Evaluation metrics against values worked out by hand from scikit-learn's definitions
//! (`precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)`,
//! `confusion_matrix`, `f1_score(average=None)`) and from the MSE / Pearson formulas.

use finetune_train::{
    ClassificationMetrics, EvalMetrics, Metric, MultiLabelMetrics, RegressionMetrics,
};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

fn labels(n: usize) -> Vec<String> {
    ["a", "b", "c", "d"][..n]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

// truth: 0 0 0 1 1 2 2 2 2 0, predicted: 0 1 0 1 2 2 2 0 1 0.
//   confusion (rows true, columns predicted): [3 1 0] [0 1 1] [1 1 2]
//   precision: 3/4, 1/3, 2/3; recall: 3/4, 1/2, 2/4; F1: 3/4, 2/5, 4/7
const TRUTH: [usize; 10] = [0, 0, 0, 1, 1, 2, 2, 2, 2, 0];
const PRED: [usize; 10] = [0, 1, 0, 1, 2, 2, 2, 0, 1, 0];

#[test]
fn classification_matches_scikit_learn() {
    let m = ClassificationMetrics::compute(&labels(3), &TRUTH, &PRED);
    assert_eq!(
        m.confusion,
        vec![vec![3, 1, 0], vec![0, 1, 1], vec![1, 1, 2]]
    );
    assert!(close(m.accuracy, 0.6));
    assert!(
        close(m.precision, (0.75 + 1.0 / 3.0 + 2.0 / 3.0) / 3.0),
        "{}",
        m.precision
    );
    assert!(close(m.recall, (0.75 + 0.5 + 0.5) / 3.0), "{}", m.recall);
    assert!(close(m.f1, (0.75 + 0.4 + 4.0 / 7.0) / 3.0), "{}", m.f1);
    let per_class: Vec<(&str, f64)> = m
        .per_class_f1
        .iter()
        .map(|(l, f)| (l.as_str(), *f))
        .collect();
    let want = [("a", 0.75), ("b", 0.4), ("c", 4.0 / 7.0)];
    for ((l, f), (wl, wf)) in per_class.iter().zip(want) {
        assert_eq!(*l, wl);
        assert!(close(*f, wf), "{l}: {f} vs {wf}");
    }
    // Macro F1 is the mean of the per-class F1s, not the F1 of the macro precision and recall.
    let f1_of_means = 2.0 * m.precision * m.recall / (m.precision + m.recall);
    assert!((m.f1 - f1_of_means).abs() > 1e-3);
}

#[test]
fn a_class_absent_from_truth_and_predictions_is_left_out_of_the_macro_average() {
    // scikit-learn's default (`labels=None`) averages over the labels present in y_true or
    // y_pred; `d` is in neither. It still has its row, column and (zero) F1.
    let m = ClassificationMetrics::compute(&labels(4), &TRUTH, &PRED);
    assert_eq!(m.confusion.len(), 4);
    assert_eq!(m.confusion[3], vec![0, 0, 0, 0]);
    assert!(m.confusion.iter().all(|r| r.len() == 4 && r[3] == 0));
    assert!(close(m.precision, 1.75 / 3.0), "{}", m.precision);
    assert!(close(m.recall, 1.75 / 3.0), "{}", m.recall);
    assert!(close(m.f1, (0.75 + 0.4 + 4.0 / 7.0) / 3.0), "{}", m.f1);
    assert_eq!(m.per_class_f1[3], ("d".to_string(), 0.0));

    // A class predicted but never true counts (precision 0, recall 0/0 = 0), as in sklearn.
    let m = ClassificationMetrics::compute(&labels(4), &[0, 1, 1, 2], &[0, 1, 3, 2]);
    // precision 1, 1, 1, 0; recall 1, 1/2, 1, 0; F1 1, 2/3, 1, 0 over 4 labels.
    assert!(close(m.precision, 3.0 / 4.0));
    assert!(close(m.recall, 2.5 / 4.0));
    assert!(close(m.f1, (3.0 - 1.0 / 3.0) / 4.0), "{}", m.f1);
    assert!(close(m.accuracy, 0.75));
}

#[test]
fn perfect_and_empty_predictions() {
    let m = ClassificationMetrics::compute(&labels(2), &[0, 1, 1], &[0, 1, 1]);
    assert_eq!(
        (m.accuracy, m.precision, m.recall, m.f1),
        (1.0, 1.0, 1.0, 1.0)
    );
    let m = ClassificationMetrics::compute(&labels(2), &[], &[]);
    assert_eq!((m.accuracy, m.f1), (0.0, 0.0));
    assert!(m.accuracy.is_finite() && m.precision.is_finite());
}

#[test]
fn regression_mse_and_pearson_follow_their_formulas() {
    let truth = [1.0, 2.0, 3.0, 4.0];
    let pred = [1.5, 1.5, 3.5, 5.0];
    let m = RegressionMetrics::compute(&truth, &pred);
    // (0.25 + 0.25 + 0.25 + 1) / 4
    assert!(close(m.mse, 0.4375));
    // Σ(t−t̄)(p−p̄) / √(Σ(t−t̄)² Σ(p−p̄)²) = 6.25 / √(5 · 8.6875)
    assert!(
        close(m.pearson, 6.25 / (5.0f64 * 8.6875).sqrt()),
        "{}",
        m.pearson
    );
    assert!(close(m.pearson, 0.948_304_052_263_601_9));
    let m = RegressionMetrics::compute(&truth, &[8.0, 6.0, 4.0, 2.0]);
    assert!(close(m.pearson, -1.0));
    // Constant predictions: r is undefined; reported as 0.
    assert_eq!(RegressionMetrics::compute(&truth, &[2.0; 4]).pearson, 0.0);
}

#[test]
fn regression_mae_and_spearman_match_their_formula_and_scipy() {
    let m = RegressionMetrics::compute(&[1.0, 2.0, 3.0, 4.0], &[1.5, 1.5, 3.5, 5.0]);
    // (0.5 + 0.5 + 0.5 + 1) / 4
    assert!(close(m.mae, 0.625));
    // scipy.stats.spearmanr([1, 2, 3, 4], [1.5, 1.5, 3.5, 5.0]) (a tie: average ranks)
    assert!(close(m.spearman, 0.948_683_298_050_513_9), "{}", m.spearman);
    let m = RegressionMetrics::compute(&[3.0, 1.0, 2.0, 2.0, 5.0], &[0.1, 0.4, 0.2, 0.2, 0.9]);
    // scipy.stats.spearmanr([3, 1, 2, 2, 5], [0.1, 0.4, 0.2, 0.2, 0.9])
    assert!(
        close(m.spearman, 0.052_631_578_947_368_425),
        "{}",
        m.spearman
    );
    // A monotone but non-linear relation is a perfect rank correlation.
    let m = RegressionMetrics::compute(&[1.0, 2.0, 3.0], &[1.0, 4.0, 27.0]);
    assert!(close(m.spearman, 1.0) && m.pearson < 0.99);
}

#[test]
fn eval_metrics_by_name_and_as_json() {
    let c = ClassificationMetrics::compute(&labels(3), &TRUTH, &PRED);
    let m = EvalMetrics {
        loss: 0.5,
        samples: 10,
        classification: Some(c.clone()),
        regression: None,
        multi_label: None,
        entities: None,
    };
    assert_eq!(m.get(Metric::Loss), Some(0.5));
    assert_eq!(m.get(Metric::Accuracy), Some(c.accuracy));
    assert_eq!(m.get(Metric::F1), Some(c.f1));
    assert_eq!(m.get(Metric::Precision), Some(c.precision));
    assert_eq!(m.get(Metric::Recall), Some(c.recall));
    assert_eq!(m.get(Metric::Pearson), None);
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["accuracy"], c.accuracy);
    assert_eq!(json["confusion"][0], serde_json::json!([3, 1, 0]));
    assert!(json.get("mse").is_none());
    let back: EvalMetrics = serde_json::from_value(json).unwrap();
    assert_eq!(back, m);

    let r = EvalMetrics {
        loss: 1.0,
        samples: 4,
        classification: None,
        regression: Some(RegressionMetrics::compute(&[1.0, 2.0], &[1.0, 3.0])),
        multi_label: None,
        entities: None,
    };
    assert_eq!(r.get(Metric::Mse), Some(0.5));
    assert_eq!(r.get(Metric::Accuracy), None);
    assert_eq!("f1".parse::<Metric>().unwrap(), Metric::F1);
    let err = "auc".parse::<Metric>().unwrap_err().to_string();
    assert!(err.contains("auc") && err.contains("accuracy"), "{err}");
}

// Multi-label, labels a b c d (d in neither truth nor predictions):
//   truth 1010 0100 1100 0000, predicted 1010 1100 1000 0000
//   a: tp 2, fp 1, fn 0 -> F1 4/5; b: tp 1, fp 0, fn 1 -> 2/3; c: tp 1 -> 1
//   micro: tp 4, fp 1, fn 1 -> P = R = F1 = 4/5; exact match 2 of 4.
#[test]
fn multi_label_matches_scikit_learn_micro_and_macro() {
    let rows = |r: [[u8; 4]; 4]| -> Vec<Vec<bool>> {
        r.iter()
            .map(|x| x.iter().map(|&b| b == 1).collect())
            .collect()
    };
    let truth = rows([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]);
    let pred = rows([[1, 0, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]);
    let m = MultiLabelMetrics::compute(&labels(4), &truth, &pred);
    assert!(close(m.exact_match, 0.5), "{}", m.exact_match);
    assert!(close(m.micro_precision, 0.8) && close(m.micro_recall, 0.8));
    assert!(close(m.micro_f1, 0.8), "{}", m.micro_f1);
    let f: Vec<f64> = m.per_label_f1.iter().map(|(_, f)| *f).collect();
    for (got, want) in f.iter().zip([0.8, 2.0 / 3.0, 1.0, 0.0]) {
        assert!(close(*got, want), "{f:?}");
    }
    assert!(
        close(m.macro_f1, (0.8 + 2.0 / 3.0 + 1.0) / 3.0),
        "{}",
        m.macro_f1
    );

    let e = EvalMetrics {
        loss: 0.3,
        samples: 4,
        classification: None,
        regression: None,
        multi_label: Some(m.clone()),
        entities: None,
    };
    assert_eq!(e.get(Metric::Accuracy), Some(0.5));
    assert_eq!(e.get(Metric::F1), Some(m.micro_f1));
    assert_eq!(e.get(Metric::Mse), None);
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["micro_f1"], m.micro_f1);
    assert!(json.get("confusion").is_none());
    let back: EvalMetrics = serde_json::from_value(json).unwrap();
    assert_eq!(back, e);
}

/// A "model" whose logits are its inputs: evaluation must turn positive logits into predicted
/// labels and score them against the multi-hot targets.
struct Passthrough(finetune_core::ParamStore);

impl finetune_train::TrainModel for Passthrough {
    type Inputs = candle_core::Tensor;
    fn store(&self) -> &finetune_core::ParamStore {
        &self.0
    }
    fn forward_t(
        &self,
        x: &candle_core::Tensor,
        _: bool,
    ) -> finetune_core::Result<candle_core::Tensor> {
        Ok(x.clone())
    }
    fn loss(
        &self,
        logits: &candle_core::Tensor,
        targets: &candle_core::Tensor,
        _: f64,
    ) -> finetune_core::Result<candle_core::Tensor> {
        Ok(finetune_kernels::ops::binary_cross_entropy_with_logits(
            logits, targets,
        )?)
    }
    fn problem(&self) -> finetune_train::Problem {
        finetune_train::Problem::MultiLabel { labels: labels(4) }
    }
    fn layout(&self) -> finetune_train::ParamLayout {
        finetune_train::ParamLayout::new(Vec::<String>::new(), |_| None)
    }
    fn export(&self, _: &std::path::Path) -> finetune_core::Result<()> {
        Ok(())
    }
}

struct Rows {
    logits: Vec<[f32; 4]>,
    truth: Vec<[f32; 4]>,
}

impl finetune_train::BatchSource<candle_core::Tensor> for Rows {
    fn len(&self) -> usize {
        self.logits.len()
    }
    fn batch(
        &self,
        idx: &[usize],
        _: u64,
        _: bool,
    ) -> finetune_core::Result<finetune_train::Batch<candle_core::Tensor>> {
        let pick = |v: &[[f32; 4]]| {
            let flat: Vec<f32> = idx.iter().flat_map(|&i| v[i]).collect();
            candle_core::Tensor::from_vec(flat, (idx.len(), 4), &candle_core::Device::Cpu)
        };
        Ok(finetune_train::Batch {
            inputs: pick(&self.logits)?,
            targets: pick(&self.truth)?,
            teacher: None,
        })
    }
}

#[test]
fn evaluate_scores_multi_label_models_by_the_sign_of_each_logit() {
    // The same sets as `multi_label_matches_scikit_learn_micro_and_macro`, as logits.
    let (p, n) = (2.0f32, -1.5f32);
    let rows = Rows {
        logits: vec![[p, n, p, n], [p, p, n, n], [p, n, n, n], [n, n, n, n]],
        truth: vec![
            [1., 0., 1., 0.],
            [0., 1., 0., 0.],
            [1., 1., 0., 0.],
            [0., 0., 0., 0.],
        ],
    };
    let model = Passthrough(finetune_core::ParamStore::new());
    // Batches of 3 so the last batch is partial.
    let m = finetune_train::learner::evaluate(&model, &rows, 3).unwrap();
    let ml = m.multi_label.as_ref().expect("multi-label metrics");
    assert!(
        close(ml.exact_match, 0.5) && close(ml.micro_f1, 0.8),
        "{ml:?}"
    );
    assert!(m.classification.is_none() && m.regression.is_none());
    // The loss is the mean BCE over all 16 entries, ln(1 + e^-z) for a 1 and ln(1 + e^z) for
    // a 0, averaged over the samples (batch means weighted by batch size).
    let sp = |z: f64| (1.0 + (-z).exp()).ln();
    let mut total = 0.0;
    for (l, t) in rows.logits.iter().zip(&rows.truth) {
        for (z, y) in l.iter().zip(t) {
            let z = *z as f64;
            total += if *y == 1.0 { sp(z) } else { sp(-z) };
        }
    }
    assert!(
        (m.loss - total / 16.0).abs() < 1e-5,
        "{} vs {}",
        m.loss,
        total / 16.0
    );
    assert!(finetune_train::learner::describe(&m).contains("micro F1 0.8000"));
}

/// A token-level "model" whose logits `[N, S, 3]` are its inputs: evaluation must score only
/// the tokens whose target is not -100, as transformers' token classification does.
struct PerToken(finetune_core::ParamStore);

impl finetune_train::TrainModel for PerToken {
    type Inputs = candle_core::Tensor;
    fn store(&self) -> &finetune_core::ParamStore {
        &self.0
    }
    fn forward_t(
        &self,
        x: &candle_core::Tensor,
        _: bool,
    ) -> finetune_core::Result<candle_core::Tensor> {
        Ok(x.clone())
    }
    fn loss(
        &self,
        logits: &candle_core::Tensor,
        _targets: &candle_core::Tensor,
        _: f64,
    ) -> finetune_core::Result<candle_core::Tensor> {
        Ok(logits.sum_all()?.affine(0.0, 1.0)?)
    }
    fn problem(&self) -> finetune_train::Problem {
        finetune_train::Problem::SingleLabel { labels: labels(3) }
    }
    fn output(&self) -> finetune_train::Output {
        finetune_train::Output::PerToken
    }
    fn layout(&self) -> finetune_train::ParamLayout {
        finetune_train::ParamLayout::new(Vec::<String>::new(), |_| None)
    }
    fn export(&self, _: &std::path::Path) -> finetune_core::Result<()> {
        Ok(())
    }
}

/// Two sentences of three tokens; each token's logits put their maximum on one class.
struct Tokens;

impl finetune_train::BatchSource<candle_core::Tensor> for Tokens {
    fn len(&self) -> usize {
        2
    }
    fn batch(
        &self,
        idx: &[usize],
        _: u64,
        _: bool,
    ) -> finetune_core::Result<finetune_train::Batch<candle_core::Tensor>> {
        // Predicted classes per token, and the targets (-100: no label).
        let pred = [[0usize, 2, 1], [1, 1, 0]];
        let truth = [[0i64, -100, 2], [1, -100, -100]];
        let mut logits = Vec::new();
        let mut targets = Vec::new();
        for &i in idx {
            for t in 0..3 {
                logits.extend((0..3).map(|c| if c == pred[i][t] { 1f32 } else { 0.0 }));
                targets.push(truth[i][t]);
            }
        }
        let dev = &candle_core::Device::Cpu;
        Ok(finetune_train::Batch {
            inputs: candle_core::Tensor::from_vec(logits, (idx.len(), 3, 3), dev)?,
            targets: candle_core::Tensor::from_vec(targets, (idx.len(), 3), dev)?,
            teacher: None,
        })
    }
}

#[test]
fn per_token_evaluation_scores_the_labelled_tokens_only() {
    let model = PerToken(finetune_core::ParamStore::new());
    let m = finetune_train::learner::evaluate(&model, &Tokens, 1).unwrap();
    assert!(m.classification.is_none());
    let e = m.entities.unwrap();
    // Labelled tokens: (truth, pred) = (0, 0), (2, 1), (1, 1): two of three right.
    assert!(close(e.accuracy, 2.0 / 3.0), "{}", e.accuracy);
    assert_eq!(m.samples, 2);
}
