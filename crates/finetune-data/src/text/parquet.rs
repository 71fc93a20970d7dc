//! Parquet text files (e.g. a Hub dataset's `data/train-*.parquet`): scalar columns by name;
//! integer `ClassLabel` columns arrive as integers.

use super::{Fields, RawTable, RowLoc, TextReadOptions};
use crate::parquet_rows::{class_label_names, field_to_string, for_each_row};
use finetune_core::Result;
use std::path::Path;

pub(crate) fn read(path: &Path, opts: &TextReadOptions, table: &mut RawTable) -> Result<()> {
    let c = &opts.columns;
    if let Some(names) = class_label_names(path, &c.label)? {
        table.class_names = Some(names);
    }
    let mut cols: Vec<(&str, bool)> = vec![(&c.text, true), (&c.label, true)];
    if let Some(p) = &c.pair {
        cols.push((p, true));
    }
    if let Some(g) = &c.group {
        cols.push((g, true));
    }
    for_each_row(path, &cols, |i, fields| {
        let loc = RowLoc {
            path: path.to_path_buf(),
            row: i + 1,
            line: None,
        };
        let mut strs = Vec::with_capacity(fields.len());
        for (f, (name, _)) in fields.iter().zip(&cols) {
            let s = match f {
                Some(f) => field_to_string(f).map_err(|m| loc.error(format!("`{name}`: {m}"))),
                None => Ok(None),
            };
            match s {
                Ok(s) => strs.push(s),
                Err(e) => return table.skipped.handle(opts.on_bad, e),
            }
        }
        let mut it = strs.into_iter();
        let text = it.next().flatten();
        let label = it.next().flatten();
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
