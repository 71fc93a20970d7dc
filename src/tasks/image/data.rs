//! An image run's data: the splits opened (a validation split held out, seeded samples when
//! asked), the problem (`--problem-type`, else multi-label when a list CSV's labels hold `;`)
//! and the classes, decided from the flags, the checkpoint and the training data.

use crate::families::ModelSource;
use crate::settings::RunSettings;
use crate::tasks::labels::{self, Resolved};
use crate::tasks::splits::{sample_indices, split_files};
use anyhow::{bail, Context, Result};
use finetune_core::ProblemType;
use finetune_data::image::open::is_list;
use finetune_data::image::{list, open, parquet, ImageDataset, ImageOpenOptions};
use finetune_data::split::random_split;
use finetune_data::target::infer_problem;
use finetune_data::{LabelMap, SkipLog};
use std::path::PathBuf;

/// The images of each split, the problem and the classes.
pub(super) struct Splits {
    pub(super) problem: ProblemType,
    pub(super) labels: Resolved,
    pub(super) train: ImageDataset,
    pub(super) eval: Option<ImageDataset>,
    pub(super) test: Option<ImageDataset>,
}

impl Splits {
    /// Opens the data of each split as `s` says; bad samples skipped go to `skipped`.
    pub(super) fn read(s: &RunSettings, source: &ModelSource, skipped: &SkipLog) -> Result<Self> {
        let d = &s.data;
        let (train, eval, test) = split_files(d.dataset.as_deref(), &d.train, &d.eval, &d.test)?;
        let problem = problem_type(s, &train)?;
        let multi = problem == ProblemType::MultiLabelClassification;
        let (labels, read_map, mut train) = labels_and_train(s, source, &train, multi, skipped)?;
        // Read with the data's own order (formats with integer labels take a map's ids as
        // theirs), then give each image its class in the run's order.
        let other = |paths: &[PathBuf], split: &str| -> Result<Option<ImageDataset>> {
            let ds = open_split(s, paths, split, Some(&read_map), multi, skipped)?;
            Ok(ds.map(|d| d.relabel(&labels.map)).transpose()?)
        };
        let mut eval = other(&eval, "validation")?;
        let test = other(&test, "test")?;
        let seed = s.train.seed;
        if let (None, Some(f)) = (&eval, d.validation_split) {
            let (t, v) = random_split(train.len(), f, seed)?;
            eval = Some(train.select(&v));
            train = train.select(&t);
        }
        let subset = |ds: ImageDataset, max| match sample_indices(ds.len(), max, seed) {
            Some(idx) => ds.select(&idx),
            None => ds,
        };
        let max_eval = s.image.max_eval_samples;
        Ok(Self {
            problem,
            labels,
            train: subset(train, d.max_train_samples),
            eval: eval.map(|e| subset(e, max_eval)),
            test: test.map(|t| subset(t, max_eval)),
        })
    }
}

/// The problem the run trains for: `--problem-type`, else multi-label when the training data
/// is one list CSV whose labels hold `;` (see [`infer_problem`]), else single-label.
pub(super) fn problem_type(s: &RunSettings, train: &[PathBuf]) -> Result<ProblemType> {
    if let Some(p) = s.data.problem_type {
        return Ok(p);
    }
    let path_column = ImageOpenOptions::default().path_column;
    Ok(match train {
        [one] if is_list(one, &path_column)? => {
            let raw = list::raw_labels(one, &path_column, &s.data.label_column)?;
            match infer_problem(raw.iter().map(String::as_str)) {
                ProblemType::MultiLabelClassification => ProblemType::MultiLabelClassification,
                _ => ProblemType::SingleLabelClassification,
            }
        }
        _ => ProblemType::SingleLabelClassification,
    })
}

/// The classes (see [`labels::resolve`]), the map the files are read with (the data's own
/// order when the run's is a reordering of it, else the run's), and the training data in the
/// run's classes.
fn labels_and_train(
    s: &RunSettings,
    source: &ModelSource,
    paths: &[PathBuf],
    multi: bool,
    skipped: &SkipLog,
) -> Result<(Resolved, LabelMap, ImageDataset)> {
    let read = |labels: Option<&LabelMap>| {
        open_split(s, paths, "train", labels, multi, skipped)?.context("no training data")
    };
    let mut own = None;
    let data = || {
        let train = read(None)?;
        let map = LabelMap::from_names(train.class_names().to_vec())?;
        own = Some((train, map.clone()));
        Ok(map)
    };
    let resolved = labels::resolve(data, &s.data, source.labels()?.as_ref())?;
    let map = &resolved.map;
    let (read_map, train) = match own {
        Some((train, own_map)) if own_map.reordered(map.names().to_vec()).is_ok() => {
            let train = train.relabel(map)?;
            (own_map, train)
        }
        _ => (map.clone(), read(Some(map))?),
    };
    Ok((resolved, read_map, train))
}

/// Opens one split: a single path (any format; a list CSV when `multi`), or several parquet
/// shards.
pub(super) fn open_split(
    s: &RunSettings,
    paths: &[PathBuf],
    split: &str,
    labels: Option<&LabelMap>,
    multi: bool,
    skipped: &SkipLog,
) -> Result<Option<ImageDataset>> {
    open_paths(
        paths,
        &ImageOpenOptions {
            split: split.into(),
            labels: labels.cloned(),
            label_column: s.data.label_column.clone(),
            image_column: s.image.image_column.clone(),
            on_bad: s.data.on_bad(),
            skipped: skipped.clone(),
            multi_label: multi,
            ..ImageOpenOptions::default()
        },
    )
}

/// One dataset from `paths` (a single path of any format, or parquet shards); `None` without
/// paths.
pub(super) fn open_paths(paths: &[PathBuf], o: &ImageOpenOptions) -> Result<Option<ImageDataset>> {
    let ds = match paths {
        [] => return Ok(None),
        [one] => open(one, o)?,
        many if !o.multi_label
            && many
                .iter()
                .all(|p| p.extension().is_some_and(|e| e == "parquet")) =>
        {
            parquet::open(
                many,
                &o.image_column,
                &o.label_column,
                o.labels.as_ref(),
                o.on_bad,
                &o.skipped,
            )?
        }
        many if o.multi_label => bail!(
            "give one multi-label image list (a `path,label` CSV) per split; got {}",
            many.len()
        ),
        many => bail!(
            "give one image dataset per split (a folder or a file), or parquet shards; got {}",
            many.len()
        ),
    };
    if ds.is_empty() {
        bail!("{}: no images", paths[0].display());
    }
    Ok(Some(ds))
}
