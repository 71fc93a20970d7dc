//! CSV and TSV text files: a header row names the columns; quoted fields may span lines.

use super::{Fields, RawTable, RowLoc, TextReadOptions};
use finetune_core::{Error, Result};
use std::path::Path;

/// Index of `name` in the header, or an error listing the header's columns.
pub(crate) fn column(path: &Path, headers: &[String], name: &str) -> Result<usize> {
    headers
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| Error::Record {
            path: path.to_path_buf(),
            msg: format!("no column `{name}` (columns: {})", headers.join(", ")),
        })
}

pub(crate) fn read(
    path: &Path,
    delimiter: u8,
    opts: &TextReadOptions,
    table: &mut RawTable,
) -> Result<()> {
    let mut rdr = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_path(path)
        .map_err(|e| Error::Record {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::Record {
            path: path.to_path_buf(),
            msg: format!("cannot read the header row: {e}"),
        })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let c = &opts.columns;
    let text = column(path, &headers, &c.text)?;
    let pair = c
        .pair
        .as_deref()
        .map(|p| column(path, &headers, p))
        .transpose()?;
    let label_names: Vec<&str> = match c.label_columns.is_empty() {
        true => vec![c.label.as_str()],
        false => c.label_columns.iter().map(String::as_str).collect(),
    };
    let labels = label_names
        .iter()
        .map(|n| Ok((*n, column(path, &headers, n)?)))
        .collect::<Result<std::collections::HashMap<&str, usize>>>()?;
    let group = c
        .group
        .as_deref()
        .map(|g| column(path, &headers, g))
        .transpose()?;
    let mut record = ::csv::ByteRecord::new();
    let mut row = 0usize;
    loop {
        row += 1;
        let mut loc = RowLoc {
            path: path.to_path_buf(),
            row,
            line: None,
        };
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                loc.line = e.position().map(|p| p.line());
                table
                    .skipped
                    .handle(opts.on_bad, loc.error(format!("unreadable CSV: {e}")))?;
                continue;
            }
        }
        loc.line = record.position().map(|p| p.line());
        if record.len() != headers.len() {
            let e = loc.error(format!(
                "has {} fields, the header has {}",
                record.len(),
                headers.len()
            ));
            table.skipped.handle(opts.on_bad, e)?;
            continue;
        }
        let field = |i: usize| -> Result<Option<String>> {
            std::str::from_utf8(&record[i])
                .map(|s| Some(s.to_string()))
                .map_err(|_| loc.error(format!("column `{}` is not valid UTF-8", headers[i])))
        };
        let fields = (|| {
            Ok(Fields {
                text: field(text)?,
                pair: pair.map(field).transpose()?.flatten(),
                label: super::row_label(c, &loc, |n| field(labels[n]))?,
                group: group.map(field).transpose()?.flatten(),
            })
        })();
        match fields {
            Ok(f) => table.push(loc, f, opts)?,
            Err(e) => table.skipped.handle(opts.on_bad, e)?,
        }
    }
    Ok(())
}
