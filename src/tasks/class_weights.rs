//! `--class-weights` resolved for a run: `auto` from the training labels' counts, given
//! weights checked against the number of classes; the weights used go into `run_config.json`.

use crate::settings::RunSettings;
use anyhow::{Context, Result};
use finetune_train::class_weights::{format, ClassWeights};

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
