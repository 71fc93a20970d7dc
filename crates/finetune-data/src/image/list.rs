//! A CSV listing images: a path column (relative paths are relative to the CSV's folder) and a
//! label column, both chosen by name. Labels map through a [`LabelMap`] (fitted on this file, or
//! given — then an unknown label is an error naming file and row).

use super::{ImageDataset, Source};
use crate::bad::{record_error, OnBadSample, SkipLog};
use crate::labels::LabelMap;
use crate::text::csv::column;
use finetune_core::{Error, Result};
use std::path::Path;

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
    let mut rows = Vec::new(); // (path, raw label, row)
    for (i, rec) in rdr.records().enumerate() {
        let row = i + 1;
        let entry = (|| {
            let rec = rec.map_err(|e| record_error(csv_path, format!("row {row}"), e))?;
            let get = |c: usize, what: &str| {
                rec.get(c)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        record_error(csv_path, format!("row {row}"), format!("missing {what}"))
                    })
            };
            Ok::<_, Error>((get(pc, "image path")?, get(lc, "label")?))
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
    let map = match labels {
        Some(m) => m.clone(),
        None => LabelMap::fit(rows.iter().map(|r| r.1.as_str()))?,
    };
    let mut ids = Vec::with_capacity(rows.len());
    for (_, l, row) in &rows {
        ids.push(map.id(l).ok_or_else(|| {
            record_error(
                csv_path,
                format!("row {row}"),
                format!(
                    "label `{l}` is not one of the training labels {}",
                    map.describe()
                ),
            )
        })?);
    }
    let list_rows = rows.iter().map(|r| r.2).collect();
    let paths = rows.into_iter().map(|r| r.0).collect();
    ImageDataset::new(
        Source::Files {
            paths,
            listed: Some((csv_path.to_path_buf(), list_rows)),
        },
        ids,
        map.names().to_vec(),
    )
}
