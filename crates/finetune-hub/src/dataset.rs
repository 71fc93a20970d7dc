//! Dataset repositories: which data files make which split, following the Hub's layouts
//! (`data/train-00000-of-00003.parquet`, `{config}/{split}/0000.parquet` on
//! `refs/convert/parquet`, `{config}/test-00000-of-00001.parquet`, `train.csv`, …) the way the
//! `datasets` library assigns splits: a split keyword delimited by `-._ /` or digits, looked for
//! in the file name first, then in the folders from the deepest up.
//!
//! Parquet files win when a repo holds several formats. Shards named `…-NNNNN-of-MMMMM.*` must
//! all be present. Every name from a listing is checked to stay inside the snapshot folder.

use crate::error::{Error, Result};
use crate::safe_name::is_safe;
use crate::Origin;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// File extensions read as data.
pub const DATA_EXTENSIONS: &[&str] = &["parquet", "csv", "tsv", "jsonl", "json"];

/// Split names and the words that mean them (as in `datasets`).
const SPLIT_KEYWORDS: &[(&str, &[&str])] = &[
    ("train", &["train", "training"]),
    ("validation", &["validation", "valid", "dev", "val"]),
    ("test", &["test", "testing", "eval", "evaluation"]),
];

/// What to take from a dataset repository.
#[derive(Debug, Clone, Default)]
pub struct DatasetOptions {
    /// The subset (first folder, as in `{config}/{split}/…`); needed when there are several.
    pub config: Option<String>,
    /// Splits to fetch; empty = every split found.
    pub splits: Vec<String>,
}

/// A dataset as local files per split.
#[derive(Debug, Clone)]
pub struct DatasetFiles {
    /// The folder holding the files: a snapshot folder in the cache, the user's folder, or the
    /// folder of the user's single file.
    pub dir: PathBuf,
    /// Where the files came from.
    pub origin: Origin,
    /// Split name (`train`, `validation`, `test`) → its files in name order.
    pub splits: BTreeMap<String, Vec<PathBuf>>,
}

/// The split a data file belongs to, if its path names one.
pub fn split_of(path: &str) -> Option<&'static str> {
    let mut components: Vec<&str> = path.split('/').collect();
    components.reverse(); // file name first, then folders from the deepest up
    for c in components {
        let words = c
            .split(|ch: char| "-._ ".contains(ch) || ch.is_ascii_digit())
            .filter(|w| !w.is_empty())
            .map(|w| w.to_ascii_lowercase());
        for w in words {
            if let Some((split, _)) = SPLIT_KEYWORDS
                .iter()
                .find(|(_, kw)| kw.contains(&w.as_str()))
            {
                return Some(split);
            }
        }
    }
    None
}

fn has_data_extension(name: &str) -> bool {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    ext.is_some_and(|e| DATA_EXTENSIONS.contains(&e.as_str()))
}

fn is_hidden(name: &str) -> bool {
    name.split('/').any(|c| c.starts_with('.'))
}

/// The subset a file lives in: its first folder, unless that is `data` or a split folder.
fn config_of(name: &str) -> Option<&str> {
    let (first, rest) = name.split_once('/')?;
    (!rest.is_empty() && first != "data" && split_of(first).is_none()).then_some(first)
}

/// Chooses the data files of each split from `listing`.
pub fn select(
    listing: &[String],
    opts: &DatasetOptions,
    label: &str,
) -> Result<BTreeMap<String, Vec<String>>> {
    let mut data: Vec<&String> = Vec::new();
    for name in listing.iter().filter(|n| has_data_extension(n)) {
        // Checked before anything else: `../x.parquet` must be refused, not skipped as hidden.
        if !is_safe(name) {
            return Err(Error::UnsafePath {
                repo: label.to_string(),
                name: name.clone(),
                origin: "the dataset's file listing".into(),
            });
        }
        if !is_hidden(name) {
            data.push(name);
        }
    }
    if data
        .iter()
        .any(|n| n.to_ascii_lowercase().ends_with(".parquet"))
    {
        data.retain(|n| n.to_ascii_lowercase().ends_with(".parquet"));
    }
    let configs: BTreeSet<&str> = data.iter().filter_map(|n| config_of(n)).collect();
    match &opts.config {
        Some(c) => {
            if !configs.contains(c.as_str()) {
                return Err(Error::repo(
                    label,
                    format!("has no config `{c}` (configs: {})", join(&configs)),
                ));
            }
            data.retain(|n| config_of(n) == Some(c.as_str()));
        }
        None if configs.len() > 1 => {
            return Err(Error::repo(
                label,
                format!("has several configs ({}); choose one", join(&configs)),
            ));
        }
        None => {}
    }
    if data.is_empty() {
        return Err(Error::repo(
            label,
            format!("has no data files ({})", DATA_EXTENSIONS.join(", ")),
        ));
    }
    let mut splits: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in &data {
        if let Some(s) = split_of(n) {
            splits.entry(s.to_string()).or_default().push(n.to_string());
        }
    }
    if splits.is_empty() {
        // No split named anywhere: everything is training data, as `datasets` does.
        splits.insert("train".into(), data.iter().map(|n| n.to_string()).collect());
    }
    if !opts.splits.is_empty() {
        let found: BTreeSet<&str> = splits.keys().map(String::as_str).collect();
        if let Some(missing) = opts.splits.iter().find(|s| !found.contains(s.as_str())) {
            return Err(Error::repo(
                label,
                format!(
                    "has no files for split `{missing}` (splits: {})",
                    join(&found)
                ),
            ));
        }
        splits.retain(|k, _| opts.splits.contains(k));
    }
    for (split, files) in &mut splits {
        files.sort();
        check_shards_complete(files)
            .map_err(|m| Error::repo(label, format!("split `{split}`: {m}")))?;
    }
    Ok(splits)
}

fn join(set: &BTreeSet<&str>) -> String {
    set.iter().copied().collect::<Vec<_>>().join(", ")
}

/// `…-00001-of-00003.ext` → (`…|3|ext` group key, index 1, total 3).
fn shard_number(name: &str) -> Option<(String, usize, usize)> {
    let (stem, ext) = name.rsplit_once('.')?;
    let (head, total) = stem.rsplit_once("-of-")?;
    let (prefix, index) = head.rsplit_once('-')?;
    let is_num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !is_num(index) || !is_num(total) {
        return None;
    }
    let (index, total) = (index.parse().ok()?, total.parse().ok()?);
    Some((format!("{prefix}|{total}|{ext}"), index, total))
}

fn check_shards_complete(files: &[String]) -> std::result::Result<(), String> {
    let mut groups: BTreeMap<String, (usize, BTreeSet<usize>)> = BTreeMap::new();
    for f in files {
        if let Some((key, i, n)) = shard_number(f) {
            groups
                .entry(key)
                .or_insert((n, BTreeSet::new()))
                .1
                .insert(i);
        }
    }
    for (key, (n, have)) in groups {
        if (0..n).any(|i| !have.contains(&i)) {
            let prefix = key.split('|').next().unwrap_or_default();
            return Err(format!(
                "only {} of the {n} shards of `{prefix}` are present",
                have.len()
            ));
        }
    }
    Ok(())
}

/// A local folder (splits chosen by file name) or a single file (the `train` split).
pub(crate) fn local_dataset(path: &Path, opts: &DatasetOptions) -> Result<DatasetFiles> {
    if path.is_file() {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        return Ok(DatasetFiles {
            dir,
            origin: Origin::Local,
            splits: BTreeMap::from([("train".to_string(), vec![path.to_path_buf()])]),
        });
    }
    let listing = crate::cache::list_files(path);
    let splits = select(&listing, opts, &path.display().to_string())?;
    Ok(DatasetFiles {
        dir: path.to_path_buf(),
        origin: Origin::Local,
        splits: splits
            .into_iter()
            .map(|(k, v)| (k, v.iter().map(|f| path.join(f)).collect()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(files: &[&str]) -> Vec<String> {
        files.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn splits_from_hub_layouts() {
        assert_eq!(split_of("data/train-00000-of-00002.parquet"), Some("train"));
        assert_eq!(
            split_of("plain_text/validation/0000.parquet"),
            Some("validation")
        );
        assert_eq!(split_of("dev.csv"), Some("validation"));
        assert_eq!(split_of("data/test.jsonl"), Some("test"));
        assert_eq!(split_of("trainer.csv"), None);
        assert_eq!(split_of("contest/x.parquet"), None);
    }

    #[test]
    fn selects_parquet_per_split_and_checks_shards() {
        let listing = l(&[
            "README.md",
            ".gitattributes",
            "data/train-00000-of-00002.parquet",
            "data/train-00001-of-00002.parquet",
            "data/test-00000-of-00001.parquet",
            "raw/train.csv",
        ]);
        let s = select(&listing, &DatasetOptions::default(), "d").unwrap();
        assert_eq!(s.keys().collect::<Vec<_>>(), ["test", "train"]);
        assert_eq!(s["train"].len(), 2);
        let only_test = DatasetOptions {
            splits: vec!["test".into()],
            ..Default::default()
        };
        assert_eq!(select(&listing, &only_test, "d").unwrap().len(), 1);
        let one_missing: Vec<String> = listing
            .iter()
            .filter(|f| !f.contains("00001-of"))
            .cloned()
            .collect();
        let e = select(&one_missing, &DatasetOptions::default(), "d")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only 1 of the 2 shards"), "{e}");
        let want_val = DatasetOptions {
            splits: vec!["validation".into()],
            ..Default::default()
        };
        let e = select(&listing, &want_val, "d").unwrap_err().to_string();
        assert!(e.contains("no files for split `validation`"), "{e}");
    }

    #[test]
    fn configs_must_be_chosen_when_several() {
        let listing = l(&[
            "cola/train/0000.parquet",
            "sst2/train/0000.parquet",
            "sst2/test/0000.parquet",
        ]);
        let e = select(&listing, &DatasetOptions::default(), "glue")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cola, sst2"), "{e}");
        let sst2 = DatasetOptions {
            config: Some("sst2".into()),
            ..Default::default()
        };
        let s = select(&listing, &sst2, "glue").unwrap();
        assert_eq!(s["train"], l(&["sst2/train/0000.parquet"]));
        assert_eq!(s["test"], l(&["sst2/test/0000.parquet"]));
    }

    #[test]
    fn unnamed_files_are_train_and_escapes_are_refused() {
        let s = select(&l(&["reviews.csv"]), &DatasetOptions::default(), "d").unwrap();
        assert_eq!(s["train"], l(&["reviews.csv"]));
        let e = select(
            &l(&["../../escape.parquet"]),
            &DatasetOptions::default(),
            "d",
        )
        .unwrap_err();
        assert!(matches!(e, Error::UnsafePath { .. }), "{e}");
    }
}
