//! What a text run trains its head to predict: the problem type (`--problem-type`, else told
//! from the training labels: `--label-columns` or `;`-separated labels are multi-label, numbers
//! with a fraction regression), the labels of a classification resolved against the checkpoint
//! as every task's are ([`labels::resolve`]); the per-label loss weights are
//! [`crate::tasks::class_weights::for_targets`]'s.

use crate::families::ModelSource;
use crate::settings::RunSettings;
use crate::tasks::labels::{self, Resolved};
use anyhow::{bail, Result};
use finetune_core::ProblemType;
use finetune_data::text::{infer_problem, target::REGRESSION_LABEL, RawTable, TargetSpec};
use finetune_data::LabelMap;

/// The problem the run trains for: the setting, else what the labels say.
pub(super) fn problem_type(s: &RunSettings, train: &RawTable) -> ProblemType {
    if let Some(p) = s.data.problem_type {
        return p;
    }
    if !s.text.label_columns.is_empty() {
        return ProblemType::MultiLabelClassification;
    }
    // A row without a label is one of a multi-label set (or a bad row, refused later).
    let labels = train.rows.iter().map(|r| r.label.as_str());
    infer_problem(labels.filter(|l| !l.is_empty()))
}

/// The targets' spec of the run, and whether the head is new (see [`labels::resolve`]).
pub(super) fn resolve(
    s: &RunSettings,
    problem: ProblemType,
    train: &RawTable,
    source: &ModelSource,
) -> Result<(TargetSpec, bool)> {
    let ckpt = source.labels()?;
    let resolved = |data: &dyn Fn() -> Result<LabelMap>| -> Result<Resolved> {
        let r = labels::resolve(data, &s.data, ckpt.as_ref())?;
        r.announce();
        Ok(r)
    };
    Ok(match problem {
        ProblemType::SingleLabelClassification => {
            if !s.text.label_columns.is_empty() {
                bail!("--label-columns gives multi-label data, not {problem}");
            }
            let r = resolved(&|| Ok(train.fit_labels()?))?;
            (TargetSpec::Single(r.map), r.new_head)
        }
        ProblemType::MultiLabelClassification => {
            let r = resolved(&|| Ok(train.fit_multi_labels(&s.text.label_columns)?))?;
            (TargetSpec::Multi(r.map), r.new_head)
        }
        ProblemType::Regression => {
            if s.data.labels.is_some() || !s.text.label_columns.is_empty() {
                bail!("--labels and --label-columns name classes; regression has none");
            }
            let r = resolved(&|| Ok(LabelMap::from_names(vec![REGRESSION_LABEL.into()])?))?;
            (TargetSpec::Regression, r.new_head)
        }
    })
}
