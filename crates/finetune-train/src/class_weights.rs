//! `--class-weights`: a weight per class for single-label cross-entropy, with PyTorch's
//! `CrossEntropyLoss(weight=…)` semantics (the loss is the weighted mean `Σ w_y·ℓ / Σ w_y`).
//! `auto` weighs each class by its inverse frequency in the training labels, normalised so the
//! weights average 1 over the classes (a class the training data lacks gets 0).
//! `--pos-weight`: multi-label BCE's `pos_weight=`, one weight per label on its positive
//! examples; `auto` is each label's negatives / positives, as PyTorch's documentation
//! suggests (1 for a label with no positive or no negative example). The task resolves `auto`
//! from its data, and the run records the weights it used.

use finetune_core::{Error, Result};

/// What `--class-weights` says.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassWeights {
    /// Inverse class frequency, normalised to mean 1.
    Auto,
    /// One weight per class, in class order.
    Given(Vec<f64>),
}

impl ClassWeights {
    /// `auto`, or comma-separated non-negative numbers (not all zero).
    pub fn parse(s: &str) -> Result<Self> {
        Self::parse_for("class_weights", s)
    }

    /// [`Self::parse`] of the setting `key` (which messages name).
    pub fn parse_for(key: &str, s: &str) -> Result<Self> {
        if s.trim() == "auto" {
            return Ok(Self::Auto);
        }
        let bad = || {
            Error::config(format!(
                "`{key}` must be `auto` or comma-separated non-negative numbers, got `{s}`"
            ))
        };
        let w: Vec<f64> = s
            .split(',')
            .map(|x| x.trim().parse::<f64>().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        if w.iter().any(|x| !x.is_finite() || *x < 0.0) || w.iter().all(|x| *x == 0.0) {
            return Err(bad());
        }
        Ok(Self::Given(w))
    }

    /// The weights for `counts[c]` training labels of each class: the given ones (one per
    /// class), or `auto`'s.
    pub fn resolve(&self, counts: &[usize]) -> Result<Vec<f64>> {
        match self {
            Self::Given(w) if w.len() == counts.len() => Ok(w.clone()),
            Self::Given(w) => Err(Error::config(format!(
                "`class_weights` has {} weights for {} classes",
                w.len(),
                counts.len()
            ))),
            Self::Auto => Ok(inverse_frequency(counts)),
        }
    }
}

/// `pos_weight` for `positives[l]` positive examples of each label among `total` rows: the
/// given weights (one per label), or `auto`'s negatives / positives.
pub fn resolve_pos_weight(
    given: &ClassWeights,
    positives: &[usize],
    total: usize,
) -> Result<Vec<f64>> {
    match given {
        ClassWeights::Given(w) if w.len() == positives.len() => Ok(w.clone()),
        ClassWeights::Given(w) => Err(Error::config(format!(
            "`pos_weight` has {} weights for {} labels",
            w.len(),
            positives.len()
        ))),
        ClassWeights::Auto => Ok(positives
            .iter()
            .map(|&p| {
                let n = total.saturating_sub(p);
                if p == 0 || n == 0 {
                    1.0
                } else {
                    n as f64 / p as f64
                }
            })
            .collect()),
    }
}

/// `1 / n_c` for each class present, 0 for the absent ones, scaled to mean 1 over the classes.
pub fn inverse_frequency(counts: &[usize]) -> Vec<f64> {
    let inv: Vec<f64> = counts
        .iter()
        .map(|&n| if n > 0 { 1.0 / n as f64 } else { 0.0 })
        .collect();
    let mean = inv.iter().sum::<f64>() / inv.len().max(1) as f64;
    inv.iter()
        .map(|w| if mean > 0.0 { w / mean } else { 0.0 })
        .collect()
}

/// The weights as the setting's value (`0.5,2,1.5`), which reads back with [`ClassWeights::parse`].
pub fn format(weights: &[f64]) -> String {
    weights
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_inverse_frequency_with_mean_one() {
        // Counts 1, 3, 0, 6: inverse 1, 1/3, 0, 1/6 (sum 1.5, mean 0.375).
        let w = ClassWeights::Auto.resolve(&[1, 3, 0, 6]).unwrap();
        let want = [1.0 / 0.375, (1.0 / 3.0) / 0.375, 0.0, (1.0 / 6.0) / 0.375];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{w:?}");
        }
        assert!((w.iter().sum::<f64>() / 4.0 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn given_weights_parse_check_and_read_back() {
        let w = ClassWeights::parse("0.5, 2,1.5").unwrap();
        assert_eq!(w, ClassWeights::Given(vec![0.5, 2.0, 1.5]));
        assert_eq!(ClassWeights::parse(&format(&[0.5, 2.0, 1.5])).unwrap(), w);
        let e = w.resolve(&[1, 2]).unwrap_err().to_string();
        assert!(e.contains("3 weights for 2 classes"), "{e}");
        for bad in ["", "a,b", "-1,2", "0,0", "inf"] {
            assert!(ClassWeights::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn auto_pos_weight_is_negatives_over_positives() {
        // PyTorch's documented example: 100 positives and 300 negatives give 3.
        let w = resolve_pos_weight(&ClassWeights::Auto, &[100, 400, 0, 10], 400).unwrap();
        assert_eq!(w, vec![3.0, 1.0, 1.0, 39.0]);
        let given = ClassWeights::parse_for("pos_weight", "2,1").unwrap();
        assert_eq!(
            resolve_pos_weight(&given, &[1, 1], 4).unwrap(),
            vec![2.0, 1.0]
        );
        let e = resolve_pos_weight(&given, &[1, 1, 1], 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 weights for 3 labels"), "{e}");
        let e = ClassWeights::parse_for("pos_weight", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`pos_weight`"), "{e}");
    }
}
