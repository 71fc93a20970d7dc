//! Images stored as CSV rows of 8-bit gray pixel values plus a label (e.g. the 5k MNIST digits:
//! 784 pixels then the label, no header; Kaggle's MNIST: a header with a `label` column first).
//! Gzipped or not. The image is square unless a shape is given.

use super::idx::read_maybe_gz;
use super::{ImageDataset, Source};
use crate::bad::{record_error, OnBadSample, SkipLog};
use crate::labels::LabelMap;
use finetune_core::{Error, Result};
use std::path::Path;

/// Opens a pixel CSV. The label column is the header's `label` column, or the last column when
/// there is no header (a first row that is all numbers). `shape` = (width, height).
pub fn open(
    path: &Path,
    shape: Option<(u32, u32)>,
    labels: Option<&LabelMap>,
    on_bad: OnBadSample,
    skipped: &SkipLog,
) -> Result<ImageDataset> {
    let bytes = read_maybe_gz(path)?;
    let mut rdr = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&bytes[..]);
    let mut records = rdr.records().enumerate().peekable();
    let first = match records.peek() {
        Some((_, Ok(r))) => r.clone(),
        Some((_, Err(e))) => return Err(record_error(path, "row 1", e)),
        None => return Err(Error::config(format!("{}: empty", path.display()))),
    };
    let has_header = first.iter().any(|f| f.trim().parse::<f64>().is_err());
    let ncols = first.len();
    let label_col = if has_header {
        let c = first
            .iter()
            .position(|f| f.trim() == "label")
            .ok_or_else(|| record_error(path, "header", "has no `label` column"))?;
        records.next();
        c
    } else {
        ncols - 1
    };
    let npix = ncols - 1;
    let (w, h) = match shape {
        Some(s) => s,
        None => {
            let side = (npix as f64).sqrt().round() as u32;
            if (side * side) as usize != npix {
                return Err(Error::config(format!(
                    "{}: {npix} pixel columns is not a square image; give the shape",
                    path.display()
                )));
            }
            (side, side)
        }
    };
    if (w * h) as usize != npix {
        return Err(Error::config(format!(
            "{}: {npix} pixel columns, expected {w}x{h}",
            path.display()
        )));
    }
    let (mut pixels, mut raw_labels) = (Vec::new(), Vec::new());
    for (i, rec) in records {
        let loc = format!(
            "row {} (line {})",
            if has_header { i } else { i + 1 },
            i + 1
        );
        let parsed = (|| {
            let rec = rec.map_err(|e| record_error(path, &loc, e))?;
            if rec.len() != ncols {
                return Err(record_error(
                    path,
                    &loc,
                    format!("has {} fields, expected {ncols}", rec.len()),
                ));
            }
            let mut px = Vec::with_capacity(npix);
            for (c, f) in rec.iter().enumerate() {
                if c == label_col {
                    continue;
                }
                px.push(f.trim().parse::<u8>().map_err(|_| {
                    record_error(
                        path,
                        &loc,
                        format!("column {}: `{f}` is not a pixel value 0..=255", c + 1),
                    )
                })?);
            }
            let label = rec[label_col].trim().to_string();
            if label.is_empty() {
                return Err(record_error(path, &loc, "missing label"));
            }
            Ok((px, label, loc.clone()))
        })();
        match parsed {
            Ok((px, l, loc)) => {
                pixels.extend_from_slice(&px);
                raw_labels.push((l, loc));
            }
            Err(e) => skipped.handle(on_bad, e)?,
        }
    }
    let map = match labels {
        Some(m) => m.clone(),
        None => LabelMap::fit(raw_labels.iter().map(|(l, _)| l.as_str()))?,
    };
    let ids = raw_labels
        .iter()
        .map(|(l, loc)| {
            map.id(l).ok_or_else(|| {
                record_error(
                    path,
                    loc,
                    format!("label `{l}` is not one of the labels {}", map.describe()),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let n = ids.len();
    ImageDataset::new(
        Source::Raw {
            parts: vec![(path.to_path_buf(), n)],
            width: w,
            height: h,
            channels: 1,
            planar: false,
            pixels,
        },
        ids,
        map.names().to_vec(),
    )
}
