//! Parquet text files (e.g. a Hub dataset's `data/train-*.parquet`): scalar columns by name;
//! integer `ClassLabel` columns arrive as integers, list columns (multi-label) as `;`-joined
//! labels.

use super::{Fields, RawTable, RowLoc, TextReadOptions};
use crate::parquet_rows::{class_label_names, field_to_string, for_each_row};
use finetune_core::Result;
use parquet::record::Field;
use std::path::Path;

/// A label cell: a scalar, or a list of them (a multi-label `Sequence(ClassLabel)` column)
/// `;`-joined.
fn label_to_string(field: &Field) -> std::result::Result<Option<String>, String> {
    match field {
        Field::ListInternal(list) => {
            let parts = list
                .elements()
                .iter()
                .map(|f| field_to_string(f).map(Option::unwrap_or_default))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(Some(parts.join(";")))
        }
        other => field_to_string(other),
    }
}

pub(crate) fn read(path: &Path, opts: &TextReadOptions, table: &mut RawTable) -> Result<()> {
    let c = &opts.columns;
    if c.label_columns.is_empty() {
        if let Some(names) = class_label_names(path, &c.label)? {
            table.class_names = Some(names);
        }
    }
    let mut cols: Vec<(&str, bool)> = vec![(&c.text, true)];
    if let Some(p) = &c.pair {
        cols.push((p, true));
    }
    if let Some(g) = &c.group {
        cols.push((g, true));
    }
    let first_label = cols.len();
    match c.label_columns.is_empty() {
        true => cols.push((&c.label, true)),
        false => cols.extend(c.label_columns.iter().map(|n| (n.as_str(), true))),
    }
    for_each_row(path, &cols, |i, fields| {
        let loc = RowLoc {
            path: path.to_path_buf(),
            row: i + 1,
            line: None,
        };
        let mut strs = Vec::with_capacity(fields.len());
        for (i, (f, (name, _))) in fields.iter().zip(&cols).enumerate() {
            let convert = if i >= first_label {
                label_to_string
            } else {
                field_to_string
            };
            let s = match f {
                Some(f) => convert(f).map_err(|m| loc.error(format!("`{name}`: {m}"))),
                None => Ok(None),
            };
            match s {
                Ok(s) => strs.push(s),
                Err(e) => return table.skipped.handle(opts.on_bad, e),
            }
        }
        let labels = strs.split_off(first_label);
        let mut it = strs.into_iter();
        let text = it.next().flatten();
        let pair = if c.pair.is_some() {
            it.next().flatten()
        } else {
            None
        };
        let group = if c.group.is_some() {
            it.next().flatten()
        } else {
            None
        };
        let by_name = |n: &str| {
            let i = cols[first_label..].iter().position(|(c, _)| *c == n);
            Ok(i.and_then(|i| labels[i].clone()))
        };
        let label = match super::row_label(c, &loc, by_name) {
            Ok(l) => l,
            Err(e) => return table.skipped.handle(opts.on_bad, e),
        };
        table.push(
            loc,
            Fields {
                text,
                pair,
                label,
                group,
            },
            opts,
        )
    })
}
