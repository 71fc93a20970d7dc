//! Entity-level metrics of tag sequences, as `seqeval`'s default (conlleval-compatible) mode
//! computes them: entities are read from IOB1, IOB2 or BIOES tags (`B-PER`, `I-PER`, `E-PER`,
//! `S-PER`, `O`; a tag's first character is its prefix, what follows the first `-` its type),
//! an entity may start with `I-` (or `E-`), and a predicted entity counts when its type,
//! start and end all match a true one. Precision, recall and F1 are micro averages over all
//! types (0 where a ratio is 0/0); each type gets its own with its support (true entities);
//! accuracy is the share of tags predicted right.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One entity: its type and the first and last positions of its tags.
pub type Entity = (String, usize, usize);

/// Precision, recall, F1 and support of one entity type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeScores {
    /// Correct predicted entities of the type over all predicted ones.
    pub precision: f64,
    /// Correct predicted entities of the type over all true ones.
    pub recall: f64,
    /// Harmonic mean of the two.
    pub f1: f64,
    /// True entities of the type.
    pub support: usize,
}

/// The entity-level metrics of a token classification (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityMetrics {
    /// Micro-averaged precision over every entity type.
    pub precision: f64,
    /// Micro-averaged recall over every entity type.
    pub recall: f64,
    /// Micro-averaged F1 over every entity type.
    pub f1: f64,
    /// Share of (labelled) tokens whose tag is predicted right.
    pub accuracy: f64,
    /// Each entity type's scores, by type name.
    pub per_type: BTreeMap<String, TypeScores>,
}

/// A tag's prefix character and entity type, as seqeval splits it (`_` for no type).
fn split(tag: &str) -> (char, &str) {
    let mut chars = tag.chars();
    let prefix = chars.next().unwrap_or('O');
    let rest = chars.as_str();
    let ty = rest.split_once('-').map_or(rest, |(_, t)| t);
    (prefix, if ty.is_empty() { "_" } else { ty })
}

fn ends(prev: char, tag: char, prev_ty: &str, ty: &str) -> bool {
    matches!(prev, 'E' | 'S')
        || (matches!(prev, 'B' | 'I') && matches!(tag, 'B' | 'S' | 'O'))
        || (prev != 'O' && prev != '.' && prev_ty != ty)
}

fn starts(prev: char, tag: char, prev_ty: &str, ty: &str) -> bool {
    matches!(tag, 'B' | 'S')
        || (matches!(prev, 'E' | 'S' | 'O') && matches!(tag, 'E' | 'I'))
        || (tag != 'O' && tag != '.' && prev_ty != ty)
}

/// The entities of tag sequences, positions counted over the sequences joined with an `O`
/// between them (as seqeval joins a list of sentences).
pub fn entities<S: AsRef<str>>(sentences: &[Vec<S>]) -> Vec<Entity> {
    let mut flat: Vec<&str> = Vec::new();
    for s in sentences {
        flat.extend(s.iter().map(AsRef::as_ref));
        flat.push("O");
    }
    flat.push("O");
    let (mut prev, mut prev_ty, mut begin) = ('O', String::new(), 0);
    let mut out = Vec::new();
    for (i, tag) in flat.iter().enumerate() {
        let (p, ty) = split(tag);
        if ends(prev, p, &prev_ty, ty) {
            out.push((prev_ty.clone(), begin, i - 1));
        }
        if starts(prev, p, &prev_ty, ty) {
            begin = i;
        }
        prev = p;
        prev_ty = ty.to_string();
    }
    out
}

impl EntityMetrics {
    /// The metrics of predicted tag sequences against true ones (sentence by sentence, of
    /// equal lengths).
    pub fn compute<S: AsRef<str>>(truth: &[Vec<S>], predicted: &[Vec<S>]) -> Self {
        let by_type = |sents: &[Vec<S>]| {
            let mut m: BTreeMap<String, BTreeSet<(usize, usize)>> = BTreeMap::new();
            for (ty, b, e) in entities(sents) {
                m.entry(ty).or_default().insert((b, e));
            }
            m
        };
        let (t, p) = (by_type(truth), by_type(predicted));
        let ratio = |a: usize, b: usize| if b > 0 { a as f64 / b as f64 } else { 0.0 };
        let f1 = |tp: usize, np: usize, nt: usize| ratio(2 * tp, np + nt);
        let empty = BTreeSet::new();
        let mut per_type = BTreeMap::new();
        let (mut tp_all, mut np_all, mut nt_all) = (0, 0, 0);
        for ty in t.keys().chain(p.keys()).collect::<BTreeSet<_>>() {
            let (ts, ps) = (t.get(ty).unwrap_or(&empty), p.get(ty).unwrap_or(&empty));
            let tp = ts.intersection(ps).count();
            let scores = TypeScores {
                precision: ratio(tp, ps.len()),
                recall: ratio(tp, ts.len()),
                f1: f1(tp, ps.len(), ts.len()),
                support: ts.len(),
            };
            per_type.insert(ty.clone(), scores);
            (tp_all, np_all, nt_all) = (tp_all + tp, np_all + ps.len(), nt_all + ts.len());
        }
        let pairs = truth
            .iter()
            .zip(predicted)
            .flat_map(|(a, b)| a.iter().zip(b));
        let (mut right, mut all) = (0, 0);
        for (a, b) in pairs {
            right += usize::from(a.as_ref() == b.as_ref());
            all += 1;
        }
        Self {
            precision: ratio(tp_all, np_all),
            recall: ratio(tp_all, nt_all),
            f1: f1(tp_all, np_all, nt_all),
            accuracy: ratio(right, all),
            per_type,
        }
    }
}
