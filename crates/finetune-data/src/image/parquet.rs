//! Parquet image datasets as the Hub stores them: an image column that is either a struct
//! `{bytes, path}` (the `datasets` `Image` feature) or plain binary, and a label column (integer
//! `ClassLabel` ids or strings). The encoded bytes are held in memory and decoded lazily.

use super::{ImageDataset, Source};
use crate::bad::{record_error, OnBadSample, SkipLog};
use crate::labels::LabelMap;
use crate::parquet_rows::{class_label_names, field_to_string, for_each_row};
use finetune_core::{Error, Result};
use parquet::record::Field;
use std::path::{Path, PathBuf};

fn image_bytes(f: &Field) -> std::result::Result<Vec<u8>, String> {
    match f {
        Field::Bytes(b) => Ok(b.data().to_vec()),
        Field::Group(row) => {
            for (name, v) in row.get_column_iter() {
                if name == "bytes" {
                    return match v {
                        Field::Bytes(b) => Ok(b.data().to_vec()),
                        Field::Null => Err("image struct has null `bytes` (images stored by path only are not supported)".into()),
                        other => Err(format!("image `bytes` is {other:?}, expected binary")),
                    };
                }
            }
            Err("image struct has no `bytes` field".into())
        }
        Field::Null => Err("missing image".into()),
        other => Err(format!(
            "image column holds {other:?}, expected binary or a {{bytes, path}} struct"
        )),
    }
}

/// Opens one or more Parquet files (a split's shards). Label names: the given map, else the
/// `ClassLabel` names in the files' `huggingface` metadata, else [`LabelMap::fit`] on the raw
/// labels (integers stay ids).
pub fn open(
    files: &[PathBuf],
    image_column: &str,
    label_column: &str,
    labels: Option<&LabelMap>,
    on_bad: OnBadSample,
    skipped: &SkipLog,
) -> Result<ImageDataset> {
    let mut blobs = Vec::new();
    let mut at = Vec::new();
    let mut raw = Vec::new(); // (label, file, row)
    for (fi, path) in files.iter().enumerate() {
        for_each_row(
            path,
            &[(image_column, true), (label_column, true)],
            |i, fields| {
                let loc = format!("row {}", i + 1);
                let parsed = (|| {
                    let img = fields[0]
                        .as_ref()
                        .map(image_bytes)
                        .unwrap_or(Err("missing image".into()));
                    let img = img.map_err(|m| record_error(path, &loc, m))?;
                    let label = fields[1]
                        .as_ref()
                        .map(field_to_string)
                        .transpose()
                        .map_err(|m| record_error(path, &loc, m))?
                        .flatten()
                        .filter(|s| !s.trim().is_empty())
                        .ok_or_else(|| {
                            record_error(path, &loc, format!("missing label (`{label_column}`)"))
                        })?;
                    Ok::<_, Error>((img, label))
                })();
                match parsed {
                    Ok((img, label)) => {
                        blobs.push(img);
                        at.push((fi as u32, i));
                        raw.push((label, fi, i));
                        Ok(())
                    }
                    Err(e) => skipped.handle(on_bad, e),
                }
            },
        )?;
    }
    if blobs.is_empty() {
        return Err(Error::config(format!(
            "{}: no images",
            files.first().map_or(Path::new("?"), |p| p).display()
        )));
    }
    let map = match (labels, class_label_names(&files[0], label_column)?) {
        (Some(m), _) => m.clone(),
        (None, Some(names)) => LabelMap::from_class_label(names)?,
        (None, None) => LabelMap::fit(raw.iter().map(|r| r.0.as_str()))?,
    };
    let ids = raw
        .iter()
        .map(|(l, fi, i)| {
            map.id(l).ok_or_else(|| {
                record_error(
                    &files[*fi],
                    format!("row {}", i + 1),
                    format!("label `{l}` is not one of the labels {}", map.describe()),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    ImageDataset::new(
        Source::Encoded {
            files: files.to_vec(),
            at,
            blobs,
        },
        ids,
        map.names().to_vec(),
    )
}
