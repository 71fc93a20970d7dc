//! Word-piece alignment, as transformers' token-classification example does it: the first
//! piece of a word carries the word's tag; its other pieces carry [`IGNORE_INDEX`] (or, with
//! `--label-all-tokens`, the word's tag, `B-X` turned into `I-X` where the labels have it);
//! special tokens carry [`IGNORE_INDEX`]. A word cut off by truncation has no piece, and so
//! no target.

use finetune_bert::WordPieces;
use finetune_core::model::IGNORE_INDEX;

/// For each class, the class a word's later pieces get under `--label-all-tokens`: `I-X` for
/// `B-X` when `I-X` is a class, else the class itself.
pub fn inside_classes(labels: &[String]) -> Vec<usize> {
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            l.strip_prefix("B-")
                .and_then(|t| labels.iter().position(|m| *m == format!("I-{t}")))
                .unwrap_or(i)
        })
        .collect()
}

/// The targets of a sentence's pieces for the class ids of its words' tags; `inside` (from
/// [`inside_classes`]) labels the later pieces of a word, `None` leaves them unlabelled.
pub fn align(pieces: &WordPieces, tags: &[usize], inside: Option<&[usize]>) -> Vec<i64> {
    let mut previous = None;
    pieces
        .words
        .iter()
        .map(|&word| {
            let target = match (word, inside) {
                (None, _) => IGNORE_INDEX,
                (Some(w), _) if Some(w) != previous => tags[w] as i64,
                (Some(w), Some(inside)) => inside[tags[w]] as i64,
                (Some(_), None) => IGNORE_INDEX,
            };
            previous = word;
            target
        })
        .collect()
}
