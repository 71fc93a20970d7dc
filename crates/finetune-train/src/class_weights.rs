//! `--class-weights`: a weight per class for single-label cross-entropy, with PyTorch's
//! `CrossEntropyLoss(weight=…)` semantics (the loss is the weighted mean `Σ w_y·ℓ / Σ w_y`).
//! `auto` weighs each class by its inverse frequency in the training labels, normalised so the
//! weights average 1 over the classes (a class the training data lacks gets 0); the task
//! resolves `auto` from its data, and the run records the weights it used.

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
        if s.trim() == "auto" {
            return Ok(Self::Auto);
        }
        let bad = || {
            Error::config(format!(
                "`class_weights` must be `auto` or comma-separated non-negative numbers, got `{s}`"
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
}
