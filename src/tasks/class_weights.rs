//! `--class-weights` and `--pos-weight` resolved for a run: `auto` from the training labels'
//! counts, given weights checked against the number of classes; the weights used go into
//! `run_config.json`. Text and image classification share it.

use crate::settings::RunSettings;
use anyhow::{bail, Context, Result};
use finetune_core::ProblemType;
use finetune_data::target::{Target, TargetSpec};
use finetune_train::class_weights::{format, resolve_pos_weight, ClassWeights};

/// `settings` with `class_weights` as the numbers the run uses, given how many training labels
/// each of the `classes` has (`labels`: every training label's class id).
pub fn resolve(
    settings: &RunSettings,
    classes: usize,
    labels: impl IntoIterator<Item = usize>,
) -> Result<RunSettings> {
    let mut s = settings.clone();
    let Some(given) = &settings.train.class_weights else {
        return Ok(s);
    };
    let mut counts = vec![0usize; classes];
    for l in labels {
        if let Some(c) = counts.get_mut(l) {
            *c += 1;
        }
    }
    let weights = ClassWeights::parse(given)?
        .resolve(&counts)
        .context("--class-weights")?;
    eprintln!("class weights: {}", format(&weights));
    s.train.class_weights = Some(format(&weights));
    Ok(s)
}

/// `s` with `--class-weights` / `--pos-weight` as the numbers the run uses, counted on the
/// training targets; each refused where its loss is not the run's.
pub fn for_targets(s: &RunSettings, spec: &TargetSpec, train: &[Target]) -> Result<RunSettings> {
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
        return resolve(s, outputs, classes);
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
