//! The files of each split (given, or a Hub dataset's), and seeded samples of a data set.

use anyhow::Result;
use std::path::PathBuf;

/// The files of the training, evaluation and test splits, in that order.
pub type SplitFiles = (Vec<PathBuf>, Vec<PathBuf>, Vec<PathBuf>);

/// The files of each split: the given ones, completed from a Hub dataset (or a local snapshot
/// folder) when one is named — its `train` split, the first of `validation`, `valid` and `dev`,
/// and `test` — for each split given no files. Training files are required: an error when
/// there are none.
pub fn split_files(
    dataset: Option<&str>,
    train: &[PathBuf],
    eval: &[PathBuf],
    test: &[PathBuf],
) -> Result<SplitFiles> {
    let (mut train, mut eval, mut test) = (train.to_vec(), eval.to_vec(), test.to_vec());
    if let Some(ds) = dataset {
        let files = finetune_hub::resolve_dataset(
            ds,
            &finetune_hub::HubConfig::from_env(),
            &finetune_hub::DatasetOptions::default(),
        )?;
        let take = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| files.splits.get(*n).cloned())
                .unwrap_or_default()
        };
        if train.is_empty() {
            train = take(&["train"]);
        }
        if eval.is_empty() {
            eval = take(&["validation", "valid", "dev"]);
        }
        if test.is_empty() {
            test = take(&["test"]);
        }
    }
    if train.is_empty() {
        anyhow::bail!("no training data: give --train FILE or --dataset ID");
    }
    Ok((train, eval, test))
}

/// A seeded sample of at most `max` of `n` indices, in increasing order (`None`: keep all).
pub fn sample_indices(n: usize, max: Option<usize>, seed: u64) -> Option<Vec<usize>> {
    let max = max.filter(|&m| m < n)?;
    let mut idx: Vec<usize> = (0..n).collect();
    finetune_core::Rng::seed_from_u64(seed ^ 0x7a11).shuffle(&mut idx);
    idx.truncate(max);
    idx.sort_unstable();
    Some(idx)
}
