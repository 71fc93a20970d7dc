//! JSON Lines text files: one object per line; blank lines are ignored. Labels may be strings,
//! integers or booleans, or lists of them (multi-label).

use super::{Fields, RawTable, RowLoc, TextReadOptions};
use finetune_core::{Error, Result};
use serde_json::Value;
use std::io::BufRead;
use std::path::Path;

fn scalar(v: Option<&Value>) -> std::result::Result<Option<String>, String> {
    Ok(match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(Value::Number(n)) => Some(match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 1e15 => {
                format!("{}", f as i64)
            }
            _ => n.to_string(),
        }),
        Some(other) => return Err(format!("expected a string or number, got {other}")),
    })
}

/// A label: a scalar, or a list of them (multi-label) `;`-joined.
fn label_value(v: Option<&Value>) -> std::result::Result<Option<String>, String> {
    match v {
        Some(Value::Array(items)) => {
            let parts = items
                .iter()
                .map(|i| scalar(Some(i)).map(Option::unwrap_or_default))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(Some(parts.join(";")))
        }
        other => scalar(other),
    }
}

pub(crate) fn read(path: &Path, opts: &TextReadOptions, table: &mut RawTable) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let c = &opts.columns;
    let mut row = 0usize;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let loc_line = Some(i as u64 + 1);
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                let loc = RowLoc {
                    path: path.to_path_buf(),
                    row: row + 1,
                    line: loc_line,
                };
                row += 1;
                table
                    .skipped
                    .handle(opts.on_bad, loc.error(format!("unreadable line: {e}")))?;
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        row += 1;
        let loc = RowLoc {
            path: path.to_path_buf(),
            row,
            line: loc_line,
        };
        let fields = (|| {
            let obj: Value = serde_json::from_str(&line)
                .map_err(|e| loc.error(format!("not valid JSON: {e}")))?;
            let obj = obj
                .as_object()
                .ok_or_else(|| loc.error("expected a JSON object"))?;
            let get =
                |name: &str| scalar(obj.get(name)).map_err(|m| loc.error(format!("`{name}`: {m}")));
            Ok::<_, Error>(Fields {
                text: get(&c.text)?,
                pair: c.pair.as_deref().map(get).transpose()?.flatten(),
                label: super::row_label(c, &loc, |n| {
                    label_value(obj.get(n)).map_err(|m| loc.error(format!("`{n}`: {m}")))
                })?,
                group: c.group.as_deref().map(get).transpose()?.flatten(),
            })
        })();
        match fields {
            Ok(f) => table.push(loc, f, opts)?,
            Err(e) => table.skipped.handle(opts.on_bad, e)?,
        }
    }
    Ok(())
}
