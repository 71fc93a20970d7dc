//! A CSV listing images: a path column (relative paths are relative to the CSV's folder) and a
//! label column, both chosen by name. Labels map through a [`LabelMap`] (fitted on this file, or
//! given — then an unknown label is an error naming file and row). A multi-label list
//! ([`open_multi`]) holds each image's labels `;`-separated in the label column
//! (`red;circle`), possibly none; the shared [`crate::target`] rules split and encode them.

use super::{ImageDataset, Source};
use crate::bad::{record_error, OnBadSample, SkipLog};
use crate::labels::LabelMap;
use crate::target::{split_labels, Target, TargetSpec};
use crate::text::csv::column;
use finetune_core::{Error, Result};
use std::path::{Path, PathBuf};

/// The rows of a list: `(image path, raw label, data row)`.
type Rows = Vec<(PathBuf, String, usize)>;

/// Opens a list CSV: `path_column` holds image paths (relative ones resolved against the CSV's
/// folder), `label_column` the raw labels. Labels go through `labels` when given (an unknown
/// label is an error naming the row), else through a [`LabelMap`] fitted on this file. A row
/// with an empty path or label is a bad sample under `on_bad`; the images themselves are only
/// read when loaded, so a missing or undecodable file shows up then. The file must list at least
/// one image.
pub fn open(
    csv_path: &Path,
    path_column: &str,
    label_column: &str,
    labels: Option<&LabelMap>,
    on_bad: OnBadSample,
    skipped: &SkipLog,
) -> Result<ImageDataset> {
    let rows = read_rows(csv_path, path_column, label_column, false, on_bad, skipped)?;
    let map = match labels {
        Some(m) => m.clone(),
        None => LabelMap::fit(rows.iter().map(|r| r.1.as_str()))?,
    };
    let spec = TargetSpec::Single(map.clone());
    let ids = encode(csv_path, &rows, &spec)?
        .into_iter()
        .map(|t| t.class().unwrap_or(0))
        .collect();
    ImageDataset::new(source(csv_path, rows), ids, map.names().to_vec())
}

/// [`open`] for multi-label data: each label cell holds `;`-separated labels (an empty cell is
/// an image with none); `labels` when given, else every label the file names, sorted.
pub fn open_multi(
    csv_path: &Path,
    path_column: &str,
    label_column: &str,
    labels: Option<&LabelMap>,
    on_bad: OnBadSample,
    skipped: &SkipLog,
) -> Result<ImageDataset> {
    let rows = read_rows(csv_path, path_column, label_column, true, on_bad, skipped)?;
    let map = match labels {
        Some(m) => m.clone(),
        None => LabelMap::fit(rows.iter().flat_map(|r| split_labels(&r.1)))?,
    };
    let sets = encode(csv_path, &rows, &TargetSpec::Multi(map.clone()))?
        .into_iter()
        .map(|t| match t {
            Target::Labels(ids) => ids,
            _ => Vec::new(),
        })
        .collect();
    ImageDataset::new_multi(source(csv_path, rows), sets, map.names().to_vec())
}

/// The raw labels of a list CSV (empty cells and bad rows left out), to tell its problem type
/// ([`crate::target::infer_problem`]) before opening it.
pub fn raw_labels(csv_path: &Path, path_column: &str, label_column: &str) -> Result<Vec<String>> {
    let rows = read_rows(
        csv_path,
        path_column,
        label_column,
        true,
        OnBadSample::Skip,
        &SkipLog::new(),
    )?;
    Ok(rows
        .into_iter()
        .map(|r| r.1)
        .filter(|l| !l.is_empty())
        .collect())
}

/// Every row's target under `spec`; an unknown label is an error naming file and row.
fn encode(csv_path: &Path, rows: &Rows, spec: &TargetSpec) -> Result<Vec<Target>> {
    rows.iter()
        .map(|(_, l, row)| {
            spec.encode_label(l, |m| record_error(csv_path, format!("row {row}"), m))
        })
        .collect()
}

fn source(csv_path: &Path, rows: Rows) -> Source {
    let list_rows = rows.iter().map(|r| r.2).collect();
    let paths = rows.into_iter().map(|r| r.0).collect();
    Source::Files {
        paths,
        listed: Some((csv_path.to_path_buf(), list_rows)),
    }
}

/// The rows of the CSV, paths resolved; a row with no path (or no label, unless
/// `empty_labels`) is a bad sample under `on_bad`. At least one row must remain.
fn read_rows(
    csv_path: &Path,
    path_column: &str,
    label_column: &str,
    empty_labels: bool,
    on_bad: OnBadSample,
    skipped: &SkipLog,
) -> Result<Rows> {
    let base = csv_path.parent().unwrap_or(Path::new("."));
    let mut rdr = ::csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(csv_path)
        .map_err(|e| record_error(csv_path, "header", e))?;
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| record_error(csv_path, "header", e))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let pc = column(csv_path, &headers, path_column)?;
    let lc = column(csv_path, &headers, label_column)?;
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let row = i + 1;
        let entry = (|| {
            let rec = rec.map_err(|e| record_error(csv_path, format!("row {row}"), e))?;
            let get = |c: usize, what: &str, optional: bool| match rec
                .get(c)
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                Some(v) => Ok(v.to_string()),
                None if optional => Ok(String::new()),
                None => Err(record_error(
                    csv_path,
                    format!("row {row}"),
                    format!("missing {what}"),
                )),
            };
            let path = get(pc, "image path", false)?;
            Ok::<_, Error>((path, get(lc, "label", empty_labels)?))
        })();
        match entry {
            Ok((p, l)) => rows.push((base.join(p), l, row)),
            Err(e) => skipped.handle(on_bad, e)?,
        }
    }
    if rows.is_empty() {
        return Err(Error::config(format!(
            "{}: lists no images",
            csv_path.display()
        )));
    }
    Ok(rows)
}
