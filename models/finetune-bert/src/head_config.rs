//! The keys every transformers sequence classifier's `config.json` shares: the labels
//! (`id2label`, `label2id`, `num_labels`) and `problem_type`, which decides the loss. Each
//! family's config holds one [`ClassifierConfig`] flattened among its own keys.

pub use finetune_core::ProblemType;
use finetune_core::{Error, Problem, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The labels and problem type of a sequence classifier's `config.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// Label names by class index; keys are the strings "0", "1", … as in transformers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id2label: Option<BTreeMap<String, String>>,
    /// The inverse of `id2label`; kept for export, not read by this crate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label2id: Option<BTreeMap<String, usize>>,
    /// Number of labels when `id2label` is absent (see [`ClassifierConfig::num_labels`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_labels: Option<usize>,
    /// The loss family, when set explicitly (see [`ClassifierConfig::problem`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<ProblemType>,
}

impl ClassifierConfig {
    /// Refuses `id2label` keys other than `0..n`, `num_labels` disagreeing with `id2label`, and
    /// zero labels; errors are [`Error::Config`] naming the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::config(m));
        if let Some(map) = &self.id2label {
            for k in map.keys() {
                if k.parse::<usize>().map_or(true, |i| i >= map.len()) {
                    return bad(format!(
                        "id2label key `{k}` is not a class index 0..{}",
                        map.len()
                    ));
                }
            }
        }
        if let (Some(n), Some(map)) = (self.num_labels, &self.id2label) {
            if n != map.len() {
                return bad(format!(
                    "num_labels {n} disagrees with id2label's {} labels",
                    map.len()
                ));
            }
        }
        if self.num_labels() == 0 {
            return bad("the classifier needs at least one label".into());
        }
        Ok(())
    }

    /// Number of classifier outputs: `id2label`'s size, else `num_labels`, else 2 (transformers'
    /// default).
    pub fn num_labels(&self) -> usize {
        self.id2label
            .as_ref()
            .map(|m| m.len())
            .or(self.num_labels)
            .unwrap_or(2)
    }

    /// Label names in class order (`LABEL_i` where none are given, as transformers does).
    pub fn labels(&self) -> Vec<String> {
        (0..self.num_labels())
            .map(|i| {
                self.id2label
                    .as_ref()
                    .and_then(|m| m.get(&i.to_string()).cloned())
                    .unwrap_or_else(|| format!("LABEL_{i}"))
            })
            .collect()
    }

    /// Sets the classification labels (names in class order).
    pub fn set_labels<S: AsRef<str>>(&mut self, labels: &[S]) {
        let names = || labels.iter().map(|l| l.as_ref().to_string()).enumerate();
        self.id2label = Some(names().map(|(i, l)| (i.to_string(), l)).collect());
        self.label2id = Some(names().map(|(i, l)| (l, i)).collect());
        self.num_labels = None;
    }

    /// The loss family, as transformers infers it: an explicit `problem_type`, else regression
    /// for one label and single-label classification otherwise (multi-label must be explicit).
    pub fn problem(&self) -> ProblemType {
        self.problem_type.unwrap_or(if self.num_labels() == 1 {
            ProblemType::Regression
        } else {
            ProblemType::SingleLabelClassification
        })
    }

    /// The problem as the trainer sees it, with the label names.
    pub fn train_problem(&self) -> Problem {
        let labels = self.labels();
        match self.problem() {
            ProblemType::Regression => Problem::Regression,
            ProblemType::MultiLabelClassification => Problem::MultiLabel { labels },
            ProblemType::SingleLabelClassification => Problem::SingleLabel { labels },
        }
    }

    /// The exported form: the labels written out (`id2label` and `label2id`) and the problem
    /// type made explicit, as transformers' `save_pretrained` writes them.
    pub fn for_export(&self) -> Self {
        let mut c = self.clone();
        c.set_labels(&self.labels());
        c.problem_type = Some(self.problem());
        c
    }
}
