//! Raw labels (strings or integers, as read from a file) ↔ class ids.
//!
//! - Training data whose labels are all non-negative integers keeps them as ids (`"3"` → 3,
//!   names `"0"..="max"`), as HF datasets' `ClassLabel` columns do.
//! - Otherwise the distinct strings, sorted, get ids `0..n`.
//! - A model config's `label2id` fixes the mapping instead; a raw label that is not one of its
//!   names but an integer in `0..n` is taken as an id (a `ClassLabel` column against a config
//!   with named labels).
//!
//! Looking up a label the map does not know is the caller's error to report with file and row.

use finetune_core::{Error, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A bijection between class names and ids `0..n` (see the module doc for how it is built).
/// Build it on the training data and reuse it for eval data, so ids mean the same classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMap {
    names: Vec<String>,
    ids: HashMap<String, usize>,
    /// When raw integers in `0..n` are accepted: the class id of each (the identity unless
    /// the map was [reordered](LabelMap::reordered)).
    integer_ids: Option<Vec<usize>>,
}

fn as_index(raw: &str) -> Option<usize> {
    let t = raw.trim();
    if t.is_empty() || t.starts_with('+') {
        return None;
    }
    t.parse::<usize>().ok()
}

impl LabelMap {
    /// The map fitted on training labels (see the module doc for the rules).
    pub fn fit<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let distinct: BTreeSet<&str> = raw.into_iter().collect();
        if distinct.is_empty() {
            return Err(Error::config("no labels to build a label map from"));
        }
        let ints: Option<Vec<usize>> = distinct.iter().map(|s| as_index(s)).collect();
        if let Some(ints) = ints {
            let max = *ints.iter().max().expect("non-empty");
            if max > 1_000_000 {
                return Err(Error::config(format!(
                    "integer label {max} is too large to be a class id"
                )));
            }
            let names = (0..=max).map(|i| i.to_string()).collect();
            return Ok(Self::from_parts(names, true));
        }
        Ok(Self::from_parts(
            distinct.into_iter().map(str::to_string).collect(),
            false,
        ))
    }

    /// The map given by names in id order (e.g. a folder dataset's sorted class folders).
    pub fn from_names(names: Vec<String>) -> Result<Self> {
        let set: BTreeSet<&String> = names.iter().collect();
        if set.len() != names.len() || names.is_empty() {
            return Err(Error::config(format!(
                "label names must be distinct and non-empty, got {names:?}"
            )));
        }
        Ok(Self::from_parts(names, false))
    }

    /// The names of a `datasets` `ClassLabel` column (id order); raw integer labels are ids.
    pub fn from_class_label(names: Vec<String>) -> Result<Self> {
        let mut m = Self::from_names(names)?;
        m.integer_ids = Some((0..m.len()).collect());
        Ok(m)
    }

    /// The map of a model config's `label2id` (ids must be exactly `0..n`).
    pub fn from_label2id(label2id: &BTreeMap<String, usize>) -> Result<Self> {
        let n = label2id.len();
        let mut names = vec![None; n];
        for (name, &id) in label2id {
            match names.get_mut(id) {
                Some(slot @ None) => *slot = Some(name.clone()),
                _ => {
                    return Err(Error::config(format!(
                        "label2id must map its {n} labels onto the ids 0..{n} once each; \
                         `{name}` has id {id}"
                    )))
                }
            }
        }
        let names = names.into_iter().map(|n| n.expect("all filled")).collect();
        Ok(Self::from_parts(names, true))
    }

    /// The same classes in the id order `names` gives (a permutation of [`Self::names`]): each
    /// raw label keeps its class, only the ids change (raw integer ids included).
    pub fn reordered(&self, names: Vec<String>) -> Result<Self> {
        let mut sorted = names.clone();
        sorted.sort();
        let mut own = self.names.clone();
        own.sort();
        if sorted != own {
            return Err(Error::config(format!(
                "internal: {names:?} is not an order of the labels {}",
                self.describe()
            )));
        }
        let mut m = Self::from_parts(names, false);
        m.integer_ids = self
            .integer_ids
            .as_ref()
            .map(|old| old.iter().map(|&id| m.ids[&self.names[id]]).collect());
        Ok(m)
    }

    fn from_parts(names: Vec<String>, integer_ids: bool) -> Self {
        let ids = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let integer_ids = integer_ids.then(|| (0..names.len()).collect());
        Self {
            names,
            ids,
            integer_ids,
        }
    }

    /// Whether the classes are the integer ids themselves: names `"0"`, `"1"`, … in id order.
    pub fn are_ids(&self) -> bool {
        self.names
            .iter()
            .enumerate()
            .all(|(i, n)| *n == i.to_string())
    }

    /// The id of a raw label, or `None` when the map does not know it.
    pub fn id(&self, raw: &str) -> Option<usize> {
        if let Some(&id) = self.ids.get(raw) {
            return Some(id);
        }
        if let Some(table) = &self.integer_ids {
            if let Some(i) = as_index(raw) {
                return table.get(i).copied();
            }
        }
        None
    }

    /// The number of classes `n`; ids are `0..n`.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Always `false` for a map built by this type's constructors, which reject empty maps.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Class names in id order (`id2label`).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The name of class `id` (`id2label[id]`), or `None` when `id >= len()`.
    pub fn name(&self, id: usize) -> Option<&str> {
        self.names.get(id).map(String::as_str)
    }

    /// `label2id` for a model config.
    pub fn label2id(&self) -> BTreeMap<String, usize> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect()
    }

    /// A short description of the known labels for error messages.
    pub fn describe(&self) -> String {
        let shown: Vec<&str> = self.names.iter().take(10).map(String::as_str).collect();
        let more = if self.names.len() > 10 { ", …" } else { "" };
        format!("[{}{more}]", shown.join(", "))
    }
}
