//! Text classification data: CSV, TSV, JSONL and Parquet files with columns chosen by name.
//!
//! Reading is two steps so eval data is checked against the training labels:
//! [`read_table`] gives a [`RawTable`] (text, optional pair, raw label, optional group, and where
//! each row came from); [`RawTable::encode_targets`] maps labels through a [`TargetSpec`] (a
//! [`LabelMap`] for single- or multi-label classification, or regression) into a
//! [`TextDataset`] of [`TextRecord`]s, failing on a label the map does not know with file and
//! row. Empty text or a missing label is a bad sample: an error naming file and row, or skipped
//! and counted under [`OnBadSample::Skip`]. Multi-label rows hold `;`-separated labels in one
//! column, or come from several 0/1 columns ([`TextColumns::label_columns`]); see [`target`].

pub mod csv;
pub mod jsonl;
pub mod parquet;
pub mod target;

pub use target::{infer_problem, split_labels, Target, TargetSpec};

use crate::bad::{record_error, OnBadSample, SkipLog};
use crate::dataset::Dataset;
use crate::labels::LabelMap;
use finetune_core::{Error, Result, Rng};
use std::path::{Path, PathBuf};

/// Which columns hold what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextColumns {
    /// The text to classify (`--text-column`, default `text`).
    pub text: String,
    /// The second text of a pair task (`--text-pair-column`).
    pub pair: Option<String>,
    /// The raw label: a string, or an integer id (`--label-column`, default `label`); for
    /// multi-label data `;`-separated names (a JSON or Parquet list too).
    pub label: String,
    /// Multi-label data as several 0/1 columns, one per label (`--label-columns`); when set,
    /// [`Self::label`] is not read.
    pub label_columns: Vec<String>,
    /// Rows sharing this column's value stay on one side of a split (`--group-column`).
    pub group: Option<String>,
}

impl Default for TextColumns {
    fn default() -> Self {
        Self {
            text: "text".into(),
            pair: None,
            label: "label".into(),
            label_columns: Vec::new(),
            group: None,
        }
    }
}

/// The file formats the text readers understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    /// Comma-separated, with a header row naming the columns; quoted fields may span lines.
    Csv,
    /// Tab-separated, otherwise as [`TextFormat::Csv`].
    Tsv,
    /// One JSON object per line; blank lines are ignored.
    Jsonl,
    /// A Parquet file with scalar columns (e.g. a Hub dataset's shard).
    Parquet,
}

impl TextFormat {
    /// From the file extension: `.csv`, `.tsv`/`.tab`, `.jsonl`/`.ndjson`/`.json`, `.parquet`.
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        Ok(match ext.as_str() {
            "csv" => Self::Csv,
            "tsv" | "tab" => Self::Tsv,
            "jsonl" | "ndjson" | "json" => Self::Jsonl,
            "parquet" => Self::Parquet,
            _ => {
                return Err(Error::config(format!(
                    "{}: cannot tell the format from the extension (expected .csv, .tsv, \
                     .jsonl, .json or .parquet)",
                    path.display()
                )))
            }
        })
    }
}

/// How to read a text file: which columns, which format, and what to do with bad rows.
#[derive(Debug, Clone, Default)]
pub struct TextReadOptions {
    /// The columns to read; every named column must exist in the file.
    pub columns: TextColumns,
    /// `None`: from the extension.
    pub format: Option<TextFormat>,
    /// A row with empty text or pair, no label, or a missing group: an error, or skipped and
    /// recorded in [`RawTable::skipped`].
    pub on_bad: OnBadSample,
    /// Multi-label data: an empty label cell is a row with no label (not a bad row).
    pub empty_labels: bool,
}

/// Where a row came from, for messages: the file and `row N` (1-based data row), with the line
/// when the format has lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowLoc {
    /// The file the row was read from.
    pub path: PathBuf,
    /// The 1-based data row (the header is not counted; JSONL's blank lines are not rows).
    pub row: usize,
    /// The 1-based line where the row starts (CSV, TSV, JSONL); `None` for Parquet.
    pub line: Option<u64>,
}

impl std::fmt::Display for RowLoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "row {} (line {l})", self.row),
            None => write!(f, "row {}", self.row),
        }
    }
}

impl RowLoc {
    /// The error for a bad row here: `{path}: row N (line L): {msg}`.
    pub fn error(&self, msg: impl std::fmt::Display) -> Error {
        record_error(&self.path, self, msg)
    }
}

/// One row as read, before labels are mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// The text, as read (not trimmed); never empty or only whitespace.
    pub text: String,
    /// The second text, when [`TextColumns::pair`] is set; never empty then.
    pub pair: Option<String>,
    /// The raw label, trimmed; non-empty unless [`TextReadOptions::empty_labels`] (JSONL and
    /// Parquet numbers and booleans as text, lists `;`-joined).
    pub label: String,
    /// The group value, when [`TextColumns::group`] is set.
    pub group: Option<String>,
    /// Where the row came from.
    pub loc: RowLoc,
}

/// The rows of one or more files, and the bad rows that were skipped.
#[derive(Debug, Clone, Default)]
pub struct RawTable {
    /// The kept rows, in file order (files in the order they were read).
    pub rows: Vec<RawRow>,
    /// Rows skipped as bad under [`OnBadSample::Skip`]; shared with tables and datasets made
    /// from this one.
    pub skipped: SkipLog,
    /// Class names a Parquet file's `ClassLabel` metadata gave for the label column.
    pub class_names: Option<Vec<String>>,
}

/// What a format reader found in one row; `None` = the column is empty or null.
pub(crate) struct Fields {
    pub text: Option<String>,
    pub pair: Option<String>,
    pub label: Option<String>,
    pub group: Option<String>,
}

/// The raw label of a row: the label column's value, or the 0/1 label columns' names
/// `;`-joined (`get` reads a column by name).
pub(crate) fn row_label(
    c: &TextColumns,
    loc: &RowLoc,
    get: impl Fn(&str) -> Result<Option<String>>,
) -> Result<Option<String>> {
    if c.label_columns.is_empty() {
        return get(&c.label);
    }
    let values = c
        .label_columns
        .iter()
        .map(|n| get(n))
        .collect::<Result<Vec<_>>>()?;
    target::from_columns(&c.label_columns, &values, loc).map(Some)
}

impl RawTable {
    /// Validates one row (non-empty text and pair, a label) and keeps it, or applies `on_bad`.
    pub(crate) fn push(&mut self, loc: RowLoc, f: Fields, opts: &TextReadOptions) -> Result<()> {
        let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let c = &opts.columns;
        let row = (|| {
            let text = nonempty(f.text).ok_or_else(|| loc.error(format!("empty `{}`", c.text)))?;
            let pair = match &c.pair {
                Some(col) => {
                    Some(nonempty(f.pair).ok_or_else(|| loc.error(format!("empty `{col}`")))?)
                }
                None => None,
            };
            let label = match nonempty(f.label) {
                Some(l) => l.trim().to_string(),
                None if opts.empty_labels => String::new(),
                None => return Err(loc.error(format!("missing label (`{}`)", c.label))),
            };
            let group = match &c.group {
                Some(col) => Some(
                    f.group
                        .ok_or_else(|| loc.error(format!("missing group (`{col}`)")))?,
                ),
                None => None,
            };
            Ok(RawRow {
                text,
                pair,
                label,
                group,
                loc: loc.clone(),
            })
        })();
        match row {
            Ok(r) => {
                self.rows.push(r);
                Ok(())
            }
            Err(e) => self.skipped.handle(opts.on_bad, e),
        }
    }

    /// Rows with an empty label (read under [`TextReadOptions::empty_labels`]) as bad rows
    /// of a problem that needs a label per row: an error naming the first, or skipped and
    /// counted under [`OnBadSample::Skip`].
    pub fn require_labels(&mut self, column: &str, on_bad: OnBadSample) -> Result<()> {
        let mut kept = Vec::with_capacity(self.rows.len());
        for r in std::mem::take(&mut self.rows) {
            if r.label.is_empty() {
                let e = r.loc.error(format!("missing label (`{column}`)"));
                self.skipped.handle(on_bad, e)?;
            } else {
                kept.push(r);
            }
        }
        self.rows = kept;
        Ok(())
    }

    /// The number of kept rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row was kept.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows at `indices`, in that order (for validation splits).
    pub fn select(&self, indices: &[usize]) -> RawTable {
        RawTable {
            rows: indices.iter().map(|&i| self.rows[i].clone()).collect(),
            skipped: self.skipped.clone(),
            class_names: self.class_names.clone(),
        }
    }

    /// The label map of these rows: the `ClassLabel` names when the files carry them, else
    /// [`LabelMap::fit`] on the raw labels.
    pub fn fit_labels(&self) -> Result<LabelMap> {
        match &self.class_names {
            Some(names) => LabelMap::from_class_label(names.clone()),
            None => LabelMap::fit(self.rows.iter().map(|r| r.label.as_str())),
        }
    }

    /// The labels of multi-label rows: the `label_columns` in their order when given, else
    /// [`LabelMap::fit`] on every `;`-separated label.
    pub fn fit_multi_labels(&self, label_columns: &[String]) -> Result<LabelMap> {
        if !label_columns.is_empty() {
            return LabelMap::from_names(label_columns.to_vec());
        }
        LabelMap::fit(self.rows.iter().flat_map(|r| split_labels(&r.label)))
    }

    /// Maps every label through `labels` as single-label classes ([`Self::encode_targets`]).
    pub fn encode(&self, labels: &LabelMap) -> Result<TextDataset> {
        self.encode_targets(&TargetSpec::Single(labels.clone()))
    }

    /// Every row's [`Target`] under `spec`; a label it does not know (or a regression label
    /// that is no number) is an error naming the file and row (always: an unseen eval label
    /// is a configuration problem, not a bad sample).
    pub fn encode_targets(&self, spec: &TargetSpec) -> Result<TextDataset> {
        let records = self
            .rows
            .iter()
            .map(|r| {
                Ok(TextRecord {
                    text: r.text.clone(),
                    pair: r.pair.clone(),
                    target: spec.encode(r)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TextDataset {
            records,
            spec: spec.clone(),
            skipped: self.skipped.clone(),
        })
    }
}

/// Reads one file (format from `opts.format` or the extension).
pub fn read_table(path: &Path, opts: &TextReadOptions) -> Result<RawTable> {
    let mut table = RawTable::default();
    read_into(path, opts, &mut table)?;
    Ok(table)
}

/// Reads several files (e.g. a split's Parquet shards) into one table, in the order given.
pub fn read_tables(paths: &[PathBuf], opts: &TextReadOptions) -> Result<RawTable> {
    let mut table = RawTable::default();
    for p in paths {
        read_into(p, opts, &mut table)?;
    }
    Ok(table)
}

fn read_into(path: &Path, opts: &TextReadOptions, table: &mut RawTable) -> Result<()> {
    let format = match opts.format {
        Some(f) => f,
        None => TextFormat::from_path(path)?,
    };
    target::check_column_names(&opts.columns.label_columns)?;
    let before = table.rows.len();
    match format {
        TextFormat::Csv => csv::read(path, b',', opts, table),
        TextFormat::Tsv => csv::read(path, b'\t', opts, table),
        TextFormat::Jsonl => jsonl::read(path, opts, table),
        TextFormat::Parquet => parquet::read(path, opts, table),
    }?;
    if table.rows.len() == before {
        return Err(Error::Record {
            path: path.to_path_buf(),
            msg: "holds no usable row (no data rows, or every row was skipped as bad)".into(),
        });
    }
    Ok(())
}

/// One example.
#[derive(Debug, Clone, PartialEq)]
pub struct TextRecord {
    /// The text to tokenise.
    pub text: String,
    /// The second text of a pair task, if any.
    pub pair: Option<String>,
    /// What the model learns to predict.
    pub target: Target,
}

/// Records with their targets' spec; a [`Dataset`] whose items are the records themselves (the
/// model's tokenizer collates them).
#[derive(Debug, Clone)]
pub struct TextDataset {
    /// The examples, in table order.
    pub records: Vec<TextRecord>,
    /// How the labels were encoded (its names are the model's `id2label`).
    pub spec: TargetSpec,
    /// Rows skipped while reading (shared with the table it came from).
    pub skipped: SkipLog,
}

impl TextDataset {
    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl Dataset for TextDataset {
    type Item = TextRecord;

    fn len(&self) -> usize {
        self.records.len()
    }

    fn get(&self, index: usize, _rng: &mut Rng) -> Result<TextRecord> {
        Ok(self.records[index].clone())
    }
}
