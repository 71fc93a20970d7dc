//! What a text run trains its head to predict: the problem type (`--problem-type`, else told
//! from the training labels: `--label-columns` or `;`-separated labels are multi-label, numbers
//! with a fraction regression), the labels of a classification resolved against the checkpoint
//! as every task's are ([`labels::resolve`]), and the per-label loss weights
//! (`--class-weights` for single-label, `--pos-weight` for multi-label) from the training rows.

use crate::families::ModelSource;
use crate::settings::RunSettings;
use crate::tasks::labels::{self, Resolved};
use anyhow::{bail, Context, Result};
use finetune_core::ProblemType;
use finetune_data::text::{infer_problem, target::REGRESSION_LABEL, RawTable, Target, TargetSpec};
use finetune_data::LabelMap;
use finetune_train::class_weights::{format, resolve_pos_weight, ClassWeights};

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

/// `s` with `--class-weights` / `--pos-weight` as the numbers the run uses, counted on the
/// training targets; each refused where its loss is not the run's.
pub(super) fn weights(s: &RunSettings, spec: &TargetSpec, train: &[Target]) -> Result<RunSettings> {
    let problem = spec.problem_type();
    let t = &s.train;
    if t.class_weights.is_some() && problem != ProblemType::SingleLabelClassification {
        bail!("--class-weights weighs single-label cross-entropy; this run is {problem} (use --pos-weight for multi-label)");
    }
    if t.pos_weight.is_some() && problem != ProblemType::MultiLabelClassification {
        bail!("--pos-weight weighs multi-label binary cross-entropy; this run is {problem}");
    }
    let outputs = spec.names().len();
    if problem == ProblemType::SingleLabelClassification {
        let classes = train.iter().filter_map(Target::class);
        return crate::tasks::class_weights::resolve(s, outputs, classes);
    }
    let mut s = s.clone();
    if let Some(given) = &s.train.pos_weight {
        let mut positives = vec![0usize; outputs];
        for ids in train.iter().filter_map(|t| match t {
            Target::Labels(ids) => Some(ids),
            _ => None,
        }) {
            ids.iter().for_each(|&i| positives[i] += 1);
        }
        let parsed = ClassWeights::parse_for("pos_weight", given)?;
        let w = resolve_pos_weight(&parsed, &positives, train.len()).context("--pos-weight")?;
        eprintln!("pos weight: {}", format(&w));
        s.train.pos_weight = Some(format(&w));
    }
    Ok(s)
}
