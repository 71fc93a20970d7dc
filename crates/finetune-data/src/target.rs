//! What a record (a text row, an image) is trained to predict, for each of transformers'
//! problem types: a class id (single-label), a set of labels (multi-label: `;`-separated names
//! in one cell), or a number (regression) — and how the problem type is told from the raw
//! labels when no one says. Text data ([`crate::text`]) and image lists ([`crate::image::list`])
//! share it.

use crate::labels::LabelMap;
use candle_core::{Device, Tensor};
use finetune_core::{Error, ProblemType, Result};

/// The separator of several labels in one cell of a multi-label column (`sports;politics`).
pub const LABEL_SEPARATOR: char = ';';

/// The name transformers gives the one output of a regression head (`id2label`).
pub const REGRESSION_LABEL: &str = "LABEL_0";

/// One record's target.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A class id, below the label map's size.
    Class(usize),
    /// The ids of every label the record has (sorted, distinct; possibly none).
    Labels(Vec<usize>),
    /// A real value.
    Value(f32),
}

impl Target {
    /// A batch's targets as the loss takes them: class ids `[B]` (u32), multi-hot `[B,
    /// outputs]` (f32) or values `[B]` (f32); every target must be of one kind.
    pub fn collate(targets: &[&Target], outputs: usize, device: &Device) -> Result<Tensor> {
        let mixed = || Error::config("a batch mixes targets of different problem types");
        Ok(match targets.first() {
            Some(Target::Labels(_)) => {
                let mut hot = vec![0f32; targets.len() * outputs];
                for (row, t) in targets.iter().enumerate() {
                    let Target::Labels(ids) = t else {
                        return Err(mixed());
                    };
                    for &i in ids {
                        if i >= outputs {
                            return Err(Error::config(format!(
                                "label id {i} is not below the model's {outputs} outputs"
                            )));
                        }
                        hot[row * outputs + i] = 1.0;
                    }
                }
                Tensor::from_vec(hot, (targets.len(), outputs), device)?
            }
            Some(Target::Value(_)) => {
                let v = targets.iter().map(|t| match t {
                    Target::Value(v) => Ok(*v),
                    _ => Err(mixed()),
                });
                Tensor::new(v.collect::<Result<Vec<f32>>>()?, device)?
            }
            _ => {
                let c = targets
                    .iter()
                    .map(|t| t.class().map(|c| c as u32).ok_or_else(mixed));
                Tensor::new(c.collect::<Result<Vec<u32>>>()?, device)?
            }
        })
    }

    /// The class id of a single-label target.
    pub fn class(&self) -> Option<usize> {
        match self {
            Self::Class(c) => Some(*c),
            _ => None,
        }
    }
}

/// How raw labels become [`Target`]s: the problem type, with the labels of a classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// One class per record, through this map.
    Single(LabelMap),
    /// Any number of these labels per record.
    Multi(LabelMap),
    /// One number per record.
    Regression,
}

impl TargetSpec {
    /// transformers' `problem_type` of this spec.
    pub fn problem_type(&self) -> ProblemType {
        match self {
            Self::Single(_) => ProblemType::SingleLabelClassification,
            Self::Multi(_) => ProblemType::MultiLabelClassification,
            Self::Regression => ProblemType::Regression,
        }
    }

    /// The head's output names in id order (`id2label`): the labels, or [`REGRESSION_LABEL`].
    pub fn names(&self) -> Vec<String> {
        match self {
            Self::Single(m) | Self::Multi(m) => m.names().to_vec(),
            Self::Regression => vec![REGRESSION_LABEL.to_string()],
        }
    }

    /// The label map of a classification.
    pub fn labels(&self) -> Option<&LabelMap> {
        match self {
            Self::Single(m) | Self::Multi(m) => Some(m),
            Self::Regression => None,
        }
    }

    /// The target of one raw label; a label the map does not know, or a regression label
    /// that is not a finite number, is an error made by `at` (which names the row).
    pub fn encode_label(&self, raw: &str, at: impl Fn(String) -> Error) -> Result<Target> {
        let unknown = |l: &str, m: &LabelMap| {
            at(format!(
                "label `{l}` is not one of the training labels {}",
                m.describe()
            ))
        };
        match self {
            Self::Single(m) => Ok(Target::Class(m.id(raw).ok_or_else(|| unknown(raw, m))?)),
            Self::Multi(m) => {
                let mut ids = split_labels(raw)
                    .map(|l| m.id(l).ok_or_else(|| unknown(l, m)))
                    .collect::<Result<Vec<_>>>()?;
                ids.sort_unstable();
                ids.dedup();
                Ok(Target::Labels(ids))
            }
            Self::Regression => Ok(Target::Value(value(raw, &at)?)),
        }
    }
}

/// The labels of one multi-label cell: `;`-separated, trimmed, empty parts left out.
pub fn split_labels(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(LABEL_SEPARATOR)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A regression label: a finite number.
fn value(raw: &str, at: impl Fn(String) -> Error) -> Result<f32> {
    match raw.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v as f32),
        _ => Err(at(format!(
            "regression label `{raw}` is not a finite number"
        ))),
    }
}

/// The problem type the raw labels suggest when nothing says: multi-label when a cell holds
/// several `;`-separated labels, regression when every label is a number and one of them is
/// not an integer (`0.5`, `3.0`, `1e-3`: integers alone are class ids, as HF datasets'
/// `ClassLabel`), else single-label.
pub fn infer_problem<'a>(labels: impl IntoIterator<Item = &'a str>) -> ProblemType {
    let mut all_numbers = true;
    let mut fractional = false;
    for l in labels {
        if l.contains(LABEL_SEPARATOR) {
            return ProblemType::MultiLabelClassification;
        }
        let t = l.trim();
        match t.parse::<f64>() {
            Ok(v) if v.is_finite() => fractional |= t.parse::<i64>().is_err(),
            _ => all_numbers = false,
        }
    }
    if all_numbers && fractional {
        ProblemType::Regression
    } else {
        ProblemType::SingleLabelClassification
    }
}
