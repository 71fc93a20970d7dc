//! Evaluation metrics against values worked out by hand from scikit-learn's definitions
//! (`precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)`,
//! `confusion_matrix`, `f1_score(average=None)`) and from the MSE / Pearson formulas.

use finetune_train::metrics::check_metric_name;
use finetune_train::{ClassificationMetrics, EvalMetrics, RegressionMetrics};

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
fn eval_metrics_by_name_and_as_json() {
    let c = ClassificationMetrics::compute(&labels(3), &TRUTH, &PRED);
    let m = EvalMetrics {
        loss: 0.5,
        samples: 10,
        classification: Some(c.clone()),
        regression: None,
    };
    assert_eq!(m.get("loss"), Some(0.5));
    assert_eq!(m.get("accuracy"), Some(c.accuracy));
    assert_eq!(m.get("f1"), Some(c.f1));
    assert_eq!(m.get("precision"), Some(c.precision));
    assert_eq!(m.get("recall"), Some(c.recall));
    assert_eq!(m.get("pearson"), None);
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
    };
    assert_eq!(r.get("mse"), Some(0.5));
    assert_eq!(r.get("accuracy"), None);
    assert!(check_metric_name("f1").is_ok());
    let err = check_metric_name("auc").unwrap_err().to_string();
    assert!(err.contains("auc") && err.contains("accuracy"), "{err}");
}
