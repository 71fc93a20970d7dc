//! A token classification run's data: the splits' sentences read (a validation split held
//! out and a seeded sample when asked), the tags resolved into the run's labels, and each
//! sentence's tags as class ids — a tag outside the training labels is an error naming its
//! file and row.

use crate::families::ModelSource;
use crate::settings::RunSettings;
use crate::tasks::labels::{self, Resolved};
use crate::tasks::splits::{sample_indices, split_files};
use anyhow::{Context, Result};
use finetune_data::split::random_split;
use finetune_data::tokens::{read_tagged, TaggedSentence, TaggedTable, TokenColumns};
use finetune_data::{LabelMap, OnBadSample};
use std::path::PathBuf;

/// One sentence ready for tokenising: its words and their tags' class ids.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRecord {
    /// The words.
    pub words: Vec<String>,
    /// One class id per word.
    pub tags: Vec<usize>,
}

/// The sentences of each split, tags still raw.
pub(super) struct Splits {
    pub(super) train: TaggedTable,
    pub(super) eval: Option<TaggedTable>,
    pub(super) test: Option<TaggedTable>,
}

impl Splits {
    /// Reads the files of each split as `s` says.
    pub(super) fn read(s: &RunSettings) -> Result<Self> {
        let d = &s.data;
        let (train, eval, test) = split_files(d.dataset.as_deref(), &d.train, &d.eval, &d.test)?;
        let columns = s.token.columns();
        let read = |paths: &[PathBuf]| -> Result<Option<TaggedTable>> {
            if paths.is_empty() {
                return Ok(None);
            }
            Ok(Some(read_tagged(paths, &columns, d.on_bad())?))
        };
        let mut train = read(&train)?.context("no training sentences")?;
        if train.sentences.is_empty() {
            anyhow::bail!("no training sentences in {:?}", d.train);
        }
        let mut eval = read(&eval)?;
        let seed = s.train.seed;
        if let (None, Some(f)) = (&eval, d.validation_split) {
            let (t, v) = random_split(train.sentences.len(), f, seed)?;
            eval = Some(train.select(&v));
            train = train.select(&t);
        }
        if let Some(idx) = sample_indices(train.sentences.len(), d.max_train_samples, seed) {
            train = train.select(&idx);
        }
        Ok(Self {
            train,
            eval,
            test: read(&test)?,
        })
    }

    /// Bad sentences skipped over all splits.
    pub(super) fn skipped(&self) -> usize {
        [Some(&self.train), self.eval.as_ref(), self.test.as_ref()]
            .into_iter()
            .flatten()
            .flat_map(|t| t.skipped.messages())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    }

    /// The run's tags, from the training tags, the flags and the checkpoint's head.
    pub(super) fn labels(&self, s: &RunSettings, source: &ModelSource) -> Result<Resolved> {
        let data = || {
            let tags = self.train.sentences.iter().flat_map(|s| &s.tags);
            Ok(LabelMap::fit(tags.map(String::as_str))?)
        };
        labels::resolve(data, &s.data, source.labels()?.as_ref())
    }
}

/// The class id of a raw tag: its name, or an integer id of the labels.
fn class_of(labels: &LabelMap, raw: &str) -> Option<usize> {
    labels
        .id(raw)
        .or_else(|| raw.parse::<usize>().ok().filter(|&i| i < labels.len()))
}

/// Each sentence's tags as class ids of `labels`; a tag it lacks is an error naming the file,
/// row and tag.
pub fn encode(table: &TaggedTable, labels: &LabelMap) -> Result<Vec<TagRecord>> {
    table
        .sentences
        .iter()
        .map(|s| encode_one(s, labels))
        .collect()
}

fn encode_one(s: &TaggedSentence, labels: &LabelMap) -> Result<TagRecord> {
    let tags = s
        .tags
        .iter()
        .map(|t| {
            class_of(labels, t).ok_or_else(|| {
                s.loc.error(format!(
                    "tag `{t}` is not among the training labels {}",
                    labels.describe()
                ))
            })
        })
        .collect::<finetune_core::Result<Vec<usize>>>()?;
    Ok(TagRecord {
        words: s.words.clone(),
        tags,
    })
}

/// Labelled files read and encoded with a fine-tuned model's labels (for `eval`).
pub fn read_labelled(
    files: &[PathBuf],
    columns: &TokenColumns,
    labels: &LabelMap,
) -> Result<Vec<TagRecord>> {
    let table = read_tagged(files, columns, OnBadSample::Error)?;
    encode(&table, labels)
}
