//! Which files of a local dataset-repo snapshot (a Hub download, or any folder laid out the same
//! way) belong to which split, by name, following the `datasets` library's conventions:
//!
//! - a folder named after the split: `default/train/0000.parquet` (the Hub's parquet export);
//! - a file name starting with the split: `data/train-00000-of-00001.parquet`, `test.parquet`,
//!   `valid_0.parquet`;
//! - aliases: `training` → train; `valid`, `val`, `dev` → validation; `testing`, `eval`,
//!   `evaluation` → test;
//! - any other `NAME-00000-of-00003.parquet` is split `NAME` (e.g. imdb's `unsupervised`);
//! - files matching no split, when no file matches one, all form `train` (as `datasets` does);
//!   when some do, the rest are reported as an error rather than silently ignored.

use finetune_core::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ALIASES: &[(&str, &[&str])] = &[
    ("train", &["train", "training"]),
    ("validation", &["validation", "valid", "val", "dev"]),
    ("test", &["test", "testing", "eval", "evaluation"]),
];

/// The canonical name of a split (`val` → `validation`); unknown names come back unchanged.
pub fn canonical_split(name: &str) -> &str {
    canonical(name).unwrap_or(name)
}

fn canonical(word: &str) -> Option<&'static str> {
    let w = word.to_ascii_lowercase();
    ALIASES
        .iter()
        .find(|(_, names)| names.contains(&w.as_str()))
        .map(|(c, _)| *c)
}

/// `train-00000-of-00001` → `train`.
fn sharded_name(stem: &str) -> Option<&str> {
    let (head, tail) = stem.split_once("-of-")?;
    let (name, idx) = head.rsplit_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let tail_digits = tail.split('-').next().unwrap_or("");
    (digits(idx) && digits(tail_digits) && !name.is_empty()).then_some(name)
}

fn split_of(rel: &Path) -> Option<String> {
    let comps: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let (file, dirs) = comps.split_last()?;
    let stem = file.split('.').next().unwrap_or(file);
    // The file name first: `data/train-*.parquet` under a folder called `data`.
    let prefix: String = stem
        .split(|c: char| c == '-' || c == '_' || c == ' ' || c.is_ascii_digit())
        .next()
        .unwrap_or("")
        .to_string();
    if let Some(c) = canonical(&prefix) {
        return Some(c.to_string());
    }
    if let Some(name) = sharded_name(stem) {
        return Some(canonical(name).map_or_else(|| name.to_string(), str::to_string));
    }
    dirs.iter()
        .rev()
        .find_map(|d| canonical(d))
        .map(str::to_string)
}

fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue; // .git, .cache, .huggingface
        }
        let path = entry.path();
        if path.is_dir() {
            walk(&path, ext, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case(ext))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Files with extension `ext` under `root`, by split name, each list sorted.
pub fn split_files(root: &Path, ext: &str) -> Result<BTreeMap<String, Vec<PathBuf>>> {
    let mut files = Vec::new();
    walk(root, ext, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(Error::config(format!(
            "{}: holds no .{ext} files",
            root.display()
        )));
    }
    let mut splits: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut unmatched = Vec::new();
    for f in files {
        let rel = f.strip_prefix(root).unwrap_or(&f);
        match split_of(rel) {
            Some(s) => splits.entry(s).or_default().push(f),
            None => unmatched.push(f),
        }
    }
    if splits.is_empty() {
        splits.insert("train".into(), unmatched);
    } else if !unmatched.is_empty() {
        return Err(Error::config(format!(
            "{}: cannot tell the split of {} (splits found: {})",
            root.display(),
            unmatched
                .iter()
                .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            splits.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(splits)
}

/// The files of one split (`validation` also answers to `valid`, `val`, `dev`, …).
pub fn files_of_split(root: &Path, ext: &str, split: &str) -> Result<Vec<PathBuf>> {
    let mut splits = split_files(root, ext)?;
    let key = canonical(split).unwrap_or(split).to_string();
    let names = splits.keys().cloned().collect::<Vec<_>>().join(", ");
    splits.remove(&key).ok_or_else(|| {
        Error::config(format!(
            "{}: no split `{split}` (splits: {names})",
            root.display()
        ))
    })
}
