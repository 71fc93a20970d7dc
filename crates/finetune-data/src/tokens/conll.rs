//! CoNLL files: one `word [… ] tag` line per token (columns split on whitespace, the tag in the
//! last column), a blank line between sentences, `-DOCSTART-` lines skipped. A line with
//! another number of columns than the line before it is an error naming the file and line.

use super::{TaggedSentence, TaggedTable};
use crate::bad::OnBadSample;
use crate::text::RowLoc;
use finetune_core::{Error, Result};
use std::io::BufRead;
use std::path::Path;

/// The sentence being read: its words, tags and first line.
#[derive(Default)]
struct Open {
    words: Vec<String>,
    tags: Vec<String>,
    line: u64,
}

pub(crate) fn read(path: &Path, on_bad: OnBadSample, table: &mut TaggedTable) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let (mut open, mut row, mut columns) = (Open::default(), 0usize, None::<(usize, u64)>);
    let mut close = |open: &mut Open, table: &mut TaggedTable| -> Result<()> {
        let s = std::mem::take(open);
        if s.words.is_empty() {
            return Ok(());
        }
        row += 1;
        let loc = RowLoc {
            path: path.to_path_buf(),
            row,
            line: Some(s.line),
        };
        table.push(
            TaggedSentence {
                words: s.words,
                tags: s.tags,
                loc,
            },
            on_bad,
        )
    };
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let n = i as u64 + 1;
        let line = line.map_err(|e| Error::Record {
            path: path.to_path_buf(),
            msg: format!("line {n}: unreadable: {e}"),
        })?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() || fields[0] == "-DOCSTART-" {
            close(&mut open, table)?;
            continue;
        }
        if fields.len() < 2 {
            return Err(bad_line(
                path,
                n,
                "expected `word [… ] tag`, found one column",
            ));
        }
        match columns {
            Some((c, at)) if c != fields.len() => {
                let msg = format!(
                    "{} columns, but line {at} has {c}: every line needs the same columns",
                    fields.len()
                );
                return Err(bad_line(path, n, msg));
            }
            _ => columns = Some((fields.len(), n)),
        }
        if open.words.is_empty() {
            open.line = n;
        }
        open.words.push(fields[0].to_string());
        open.tags.push(fields[fields.len() - 1].to_string());
    }
    close(&mut open, table)
}

fn bad_line(path: &Path, line: u64, msg: impl std::fmt::Display) -> Error {
    Error::Record {
        path: path.to_path_buf(),
        msg: format!("line {line}: {msg}"),
    }
}
