//! A text run's data: the splits read (with a validation split held out and a seeded sample
//! when asked), and encoded with the run's targets (see [`super::targets`]).

use crate::settings::RunSettings;
use crate::tasks::splits::{sample_indices, split_files};
use anyhow::{Context, Result};
use finetune_core::ProblemType;
use finetune_data::split::{grouped_split, random_split};
use finetune_data::text::{read_tables, RawTable, TargetSpec, TextReadOptions, TextRecord};
use std::path::PathBuf;

/// The rows of each split, labels still raw.
pub(super) struct Splits {
    pub(super) train: RawTable,
    pub(super) eval: Option<RawTable>,
    pub(super) test: Option<RawTable>,
}

/// The splits' records encoded with one label map.
pub(super) struct Encoded {
    pub(super) train: Vec<TextRecord>,
    pub(super) eval: Option<Vec<TextRecord>>,
    pub(super) test: Option<Vec<TextRecord>>,
}

impl Splits {
    /// Reads the files of each split as `s` says.
    pub(super) fn read(s: &RunSettings) -> Result<Self> {
        let opts = TextReadOptions {
            columns: s.text.columns(&s.data),
            format: None,
            on_bad: s.data.on_bad(),
            // Multi-label rows may have no label; whether the data is multi-label is known
            // once it is read ([`Splits::require_labels`]).
            empty_labels: true,
        };
        let d = &s.data;
        let (train, eval, test) = split_files(d.dataset.as_deref(), &d.train, &d.eval, &d.test)?;
        let read = |paths: &[PathBuf]| -> Result<Option<RawTable>> {
            if paths.is_empty() {
                return Ok(None);
            }
            Ok(Some(read_tables(paths, &opts)?))
        };
        let (mut train, mut eval) = (read(&train)?.context("no training rows")?, read(&eval)?);
        let seed = s.train.seed;
        if let (None, Some(f)) = (&eval, d.validation_split) {
            let (t, v) = match &s.text.group_column {
                Some(_) => {
                    let groups: Vec<String> = train
                        .rows
                        .iter()
                        .map(|r| r.group.clone().unwrap_or_default())
                        .collect();
                    grouped_split(&groups, f, seed)?
                }
                None => random_split(train.len(), f, seed)?,
            };
            eval = Some(train.select(&v));
            train = train.select(&t);
        }
        if let Some(idx) = sample_indices(train.len(), d.max_train_samples, seed) {
            train = train.select(&idx);
        }
        Ok(Self {
            train,
            eval,
            test: read(&test)?,
        })
    }

    /// Bad rows skipped over all splits (they share one log: distinct messages, each naming
    /// its file and row).
    pub(super) fn skipped(&self) -> usize {
        [Some(&self.train), self.eval.as_ref(), self.test.as_ref()]
            .into_iter()
            .flatten()
            .flat_map(|t| t.skipped.messages())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    }

    /// Refuses (or skips) rows without a label unless the run is multi-label.
    pub(super) fn require_labels(&mut self, s: &RunSettings, problem: ProblemType) -> Result<()> {
        if problem == ProblemType::MultiLabelClassification {
            return Ok(());
        }
        let (column, on_bad) = (&s.data.label_column, s.data.on_bad());
        for t in [
            Some(&mut self.train),
            self.eval.as_mut(),
            self.test.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            t.require_labels(column, on_bad)?;
        }
        Ok(())
    }

    pub(super) fn encode(&self, spec: &TargetSpec) -> Result<Encoded> {
        let encode =
            |t: &RawTable| -> Result<Vec<TextRecord>> { Ok(t.encode_targets(spec)?.records) };
        Ok(Encoded {
            train: encode(&self.train)?,
            eval: self.eval.as_ref().map(encode).transpose()?,
            test: self.test.as_ref().map(encode).transpose()?,
        })
    }
}
