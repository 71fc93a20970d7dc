//! JSONL and Parquet files holding a sentence per row: a list column of words and one of tags
//! (strings, or integer ids).

use super::{TaggedSentence, TaggedTable, TokenColumns};
use crate::bad::OnBadSample;
use crate::parquet_rows::{field_to_string, for_each_row};
use crate::text::RowLoc;
use finetune_core::{Error, Result};
use parquet::record::Field;
use serde_json::Value;
use std::io::BufRead;
use std::path::Path;

pub(crate) fn read(
    path: &Path,
    columns: &TokenColumns,
    on_bad: OnBadSample,
    table: &mut TaggedTable,
) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext.eq_ignore_ascii_case("parquet") {
        read_parquet(path, columns, on_bad, table)
    } else {
        read_jsonl(path, columns, on_bad, table)
    }
}

/// A JSON list of strings or numbers as strings.
fn json_list(v: Option<&Value>, name: &str) -> std::result::Result<Vec<String>, String> {
    let items = match v {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => return Err(format!("no `{name}` list")),
        Some(other) => return Err(format!("`{name}` must be a list, got {other}")),
    };
    items
        .iter()
        .map(|x| match x {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(format!("`{name}` holds {other}, not a string or number")),
        })
        .collect()
}

fn read_jsonl(
    path: &Path,
    c: &TokenColumns,
    on_bad: OnBadSample,
    table: &mut TaggedTable,
) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut row = 0usize;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        row += 1;
        let loc = RowLoc {
            path: path.to_path_buf(),
            row,
            line: Some(i as u64 + 1),
        };
        let parsed = serde_json::from_str::<Value>(&line)
            .map_err(|e| format!("not valid JSON: {e}"))
            .and_then(|obj| {
                Ok((
                    json_list(obj.get(&c.tokens), &c.tokens)?,
                    json_list(obj.get(&c.tags), &c.tags)?,
                ))
            });
        match parsed {
            Ok((words, tags)) => table.push(TaggedSentence { words, tags, loc }, on_bad)?,
            Err(msg) => table.skipped.handle(on_bad, loc.error(msg))?,
        }
    }
    Ok(())
}

/// A Parquet list field as strings.
fn parquet_list(f: Option<&Field>, name: &str) -> std::result::Result<Vec<String>, String> {
    match f {
        Some(Field::ListInternal(list)) => list
            .elements()
            .iter()
            .map(|e| field_to_string(e).map(Option::unwrap_or_default))
            .collect(),
        Some(Field::Null) | None => Err(format!("no `{name}` list")),
        Some(other) => Err(format!("`{name}` must be a list, got {other:?}")),
    }
}

fn read_parquet(
    path: &Path,
    c: &TokenColumns,
    on_bad: OnBadSample,
    table: &mut TaggedTable,
) -> Result<()> {
    let cols = [(c.tokens.as_str(), true), (c.tags.as_str(), true)];
    for_each_row(path, &cols, |i, fields| {
        let loc = RowLoc {
            path: path.to_path_buf(),
            row: i + 1,
            line: None,
        };
        let parsed = parquet_list(fields[0].as_ref(), &c.tokens)
            .and_then(|w| Ok((w, parquet_list(fields[1].as_ref(), &c.tags)?)));
        match parsed {
            Ok((words, tags)) => table.push(TaggedSentence { words, tags, loc }, on_bad),
            Err(msg) => table.skipped.handle(on_bad, loc.error(msg)),
        }
    })
}
