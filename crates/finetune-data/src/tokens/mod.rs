//! Token classification data (named entity recognition): sentences as words with one tag each.
//!
//! - CoNLL files (`.conll`, `.txt`, `.iob`, `.bio`): one `word [… ] tag` per line, the tag in
//!   the last column, a blank line between sentences, `-DOCSTART-` lines skipped; every line of
//!   a file has as many columns as the one before it ([`conll`]);
//! - JSONL and Parquet files with a list column of words (`tokens`) and one of tags
//!   (`ner_tags`), tags as strings or integer ids ([`columns`]).
//!
//! Tags stay raw strings here (IOB1, IOB2 or BIOES alike); the task maps them to class ids.
//! A sentence whose words and tags differ in number is an error naming its file and row.

pub mod columns;
pub mod conll;

use crate::bad::OnBadSample;
use crate::text::RowLoc;
use crate::SkipLog;
use finetune_core::{Error, Result};
use std::path::{Path, PathBuf};

/// One sentence: its words and their tags, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedSentence {
    /// The words, as the file splits them.
    pub words: Vec<String>,
    /// One raw tag per word (`B-PER`, `O`, or an integer id).
    pub tags: Vec<String>,
    /// The file and row (CoNLL: the sentence's first line).
    pub loc: RowLoc,
}

/// Which columns of a JSONL or Parquet file hold the words and the tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenColumns {
    /// The list of words (default `tokens`).
    pub tokens: String,
    /// The list of tags (default `ner_tags`).
    pub tags: String,
}

impl Default for TokenColumns {
    fn default() -> Self {
        Self {
            tokens: "tokens".into(),
            tags: "ner_tags".into(),
        }
    }
}

/// The sentences of a set of files, with the bad ones skipped (when asked).
#[derive(Debug, Clone, Default)]
pub struct TaggedTable {
    /// Sentences in file order.
    pub sentences: Vec<TaggedSentence>,
    /// Bad sentences skipped under [`OnBadSample::Skip`].
    pub skipped: SkipLog,
}

impl TaggedTable {
    /// The sentences at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Self {
        Self {
            sentences: idx.iter().map(|&i| self.sentences[i].clone()).collect(),
            skipped: self.skipped.clone(),
        }
    }

    /// Adds a sentence, checking that it has words and a tag for each.
    fn push(&mut self, s: TaggedSentence, on_bad: OnBadSample) -> Result<()> {
        let problem = if s.words.is_empty() {
            Some("no words".to_string())
        } else if s.words.len() != s.tags.len() {
            Some(format!(
                "{} tokens but {} tags: each token needs one tag",
                s.words.len(),
                s.tags.len()
            ))
        } else {
            None
        };
        match problem {
            Some(msg) => self.skipped.handle(on_bad, s.loc.error(msg)),
            None => {
                self.sentences.push(s);
                Ok(())
            }
        }
    }
}

/// Whether `path` is read as CoNLL (by its extension: anything but JSONL and Parquet).
pub fn is_conll(path: &Path) -> bool {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    !matches!(ext.as_str(), "jsonl" | "ndjson" | "json" | "parquet")
}

/// Reads every file into one table (CoNLL, JSONL or Parquet by extension).
pub fn read_tagged(
    paths: &[PathBuf],
    columns: &TokenColumns,
    on_bad: OnBadSample,
) -> Result<TaggedTable> {
    let mut table = TaggedTable::default();
    for path in paths {
        if !path.is_file() {
            return Err(Error::config(format!("{}: no such file", path.display())));
        }
        if is_conll(path) {
            conll::read(path, on_bad, &mut table)?;
        } else {
            columns::read(path, columns, on_bad, &mut table)?;
        }
    }
    Ok(table)
}
